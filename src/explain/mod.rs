//! Reading an error message by meaning: which catalogue entries its
//! evidence points to, how strongly, and whether it proves one of them.
//! The evidence is the catalogue's (`Entry::evidence`, `GENERIC`); this
//! module only matches it: any case, inside any log line, through JSON
//! escapes and cause chains (the deepest cause counts most).

pub mod detect;
pub mod log;
pub mod normalize;

use std::collections::HashMap;
use std::sync::OnceLock;

use aho_corasick::AhoCorasick;
use serde::Serialize;

use crate::catalogue::{Entry, EntryId, Ev, Family, Generic, CATALOGUE, GENERIC};

/// What the evidence says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// One entry is proved by the evidence.
    One,
    /// Several entries fit; the text alone does not tell which.
    Several,
    /// Nothing known matches.
    None,
}

/// An entry the text points to.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub id: EntryId,
    /// The weight of the evidence found for it (0 when it is listed only
    /// because a generic message fits it).
    pub score: f32,
    /// The evidence found, as people read it: `"too many pings"`, `HTTP 504`.
    pub evidence: Vec<String>,
    /// The weight of its strongest single piece of evidence.
    #[serde(skip)]
    pub strongest: f32,
}

/// A message, read.
#[derive(Clone, Debug, Serialize)]
pub struct Reading {
    pub verdict: Verdict,
    /// Best first.
    pub findings: Vec<Finding>,
    /// The generic message it contains, when one decided the verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generic: Option<&'static str>,
    /// How to tell the findings apart, when there are several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tell: Option<&'static str>,
    /// The stack that printed it, from its marks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
}

/// Evidence this strong in all can prove an entry...
const PROOF: f32 = 9.0;
/// ... when one piece of it is this strong: words that name one cause
/// (`too_many_pings`, `no healthy upstream`), not words several causes
/// print (`Bad Gateway`, `Deadline Exceeded`).
const DECISIVE: f32 = 9.0;
/// The runner-up must be this much weaker for the first to be proved.
const MARGIN: f32 = 1.5;
/// How many findings a reading of several lists.
const MAX_FINDINGS: usize = 8;

/// Where a piece of evidence comes from.
#[derive(Clone, Copy, Debug)]
enum Owner {
    Entry(EntryId, usize),
    Generic(usize),
}

/// Word evidence compiled once: every part of every phrase in one
/// automaton, and for each phrase the parts it needs.
struct Index {
    automaton: AhoCorasick,
    /// A cheap first look at the raw text, any case: one word of every
    /// phrase and the marks of the other evidence. A line with none of
    /// them cannot match, and most lines of a log have none.
    anchors: AhoCorasick,
    /// The tokens of the catalogue (Envoy's flags, HAProxy's states),
    /// case-sensitive.
    tokens: AhoCorasick,
    /// Per phrase: its owner, its parts (pattern ids).
    phrases: Vec<(Owner, Vec<usize>)>,
    /// Per pattern, the phrases that need it.
    by_pattern: Vec<Vec<usize>>,
    /// Anchors from this index on are the marks of other evidence
    /// (statuses, hex dumps, lengths, tokens), not words of phrases.
    first_mark: usize,
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut patterns: Vec<String> = Vec::new();
        let mut ids: HashMap<String, usize> = HashMap::new();
        let mut phrases: Vec<(Owner, Vec<usize>)> = Vec::new();
        let mut add = |owner: Owner, words: &str| {
            let parts = words
                .split(" + ")
                .map(|p| {
                    let norm = normalize::words(p);
                    *ids.entry(norm.clone()).or_insert_with(|| {
                        patterns.push(norm);
                        patterns.len() - 1
                    })
                })
                .collect();
            phrases.push((owner, parts));
        };
        for e in CATALOGUE {
            for (i, ev) in e.evidence.iter().enumerate() {
                if let Ev::Words { words, .. } = ev {
                    add(Owner::Entry(e.id, i), words);
                }
            }
        }
        for (i, g) in GENERIC.iter().enumerate() {
            add(Owner::Generic(i), g.words);
        }
        let automaton = AhoCorasick::new(&patterns)
            .unwrap_or_else(|e| panic!("the catalogue's evidence does not compile: {e}"));
        let mut anchors: Vec<String> = patterns.iter().filter_map(|p| anchor(p)).collect();
        anchors.sort();
        anchors.dedup();
        // The marks of statuses, hex dumps, lengths and tokens.
        let first_mark = anchors.len();
        for mark in ["status", "http", "hex dump", "frame"] {
            anchors.push(mark.to_string());
        }
        let anchors = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(&anchors)
            .unwrap_or_else(|e| panic!("the catalogue's anchors do not compile: {e}"));
        let tokens: Vec<&str> = CATALOGUE
            .iter()
            .flat_map(|e| e.evidence.iter())
            .filter_map(|ev| match ev {
                Ev::Token { token, .. } => Some(*token),
                _ => None,
            })
            .collect();
        let tokens = AhoCorasick::new(&tokens)
            .unwrap_or_else(|e| panic!("the catalogue's tokens do not compile: {e}"));
        let mut by_pattern: Vec<Vec<usize>> = vec![Vec::new(); patterns.len()];
        for (i, (_, parts)) in phrases.iter().enumerate() {
            for p in parts {
                by_pattern[*p].push(i);
            }
        }
        Index {
            automaton,
            anchors,
            tokens,
            phrases,
            by_pattern,
            first_mark,
        }
    })
}

/// Words every log line has: a phrase is anchored on a rarer one of its
/// words when it has one.
const COMMON: &[&str] = &[
    "error",
    "code",
    "failed",
    "with",
    "from",
    "status",
    "request",
    "response",
    "server",
    "client",
    "connection",
    "call",
    "received",
    "message",
    "debug",
    "info",
    "warn",
    "method",
    "http",
    "post",
    "get",
];

/// The word of a phrase the first look searches for: its longest word that
/// is not in every log line. A phrase of common words only has none: it
/// adds weight to a line that is read for other words, but alone is no
/// reason to read one.
fn anchor(pattern: &str) -> Option<String> {
    let words = pattern
        .split(' ')
        .filter(|w| w.chars().any(|c| c.is_alphabetic()));
    words
        .filter(|w| !COMMON.contains(w))
        .max_by_key(|w| w.len())
        .map(str::to_string)
}

/// The text a reading works on: unescaped, cut into causes, normalised,
/// and what it holds besides words, found once.
struct Text {
    raw: String,
    /// Per cause (outermost first), its words.
    causes: Vec<String>,
    /// HTTP statuses named.
    statuses: Vec<u16>,
    /// A length that is text, and what it says.
    ascii: Option<(u64, String)>,
    hex: Option<detect::HexDump>,
}

impl Text {
    fn new(text: &str) -> Self {
        let raw = normalize::unescape(text);
        let causes = normalize::causes(&raw)
            .into_iter()
            .map(normalize::words)
            .collect();
        let lower = raw.to_lowercase();
        Self {
            statuses: detect::http_statuses(&lower),
            ascii: detect::ascii_length(&raw),
            hex: detect::hex_dump(&lower),
            raw,
            causes,
        }
    }

    fn all_words(&self) -> String {
        self.causes.concat()
    }
}

/// The deepest cause each pattern occurs in (None: absent).
fn matched_patterns(t: &Text) -> HashMap<usize, usize> {
    let ix = index();
    let mut depth: HashMap<usize, usize> = HashMap::new();
    for (d, words) in t.causes.iter().enumerate() {
        for m in ix.automaton.find_overlapping_iter(words.as_str()) {
            let e = depth.entry(m.pattern().as_usize()).or_insert(d);
            *e = (*e).max(d);
        }
    }
    depth
}

/// What a deeper cause's evidence weighs more by.
fn depth_factor(depth: usize, deepest: usize) -> f32 {
    if deepest == 0 {
        1.0
    } else {
        1.0 + 0.5 * depth as f32 / deepest as f32
    }
}

/// A piece of evidence other than words, checked against the text.
fn other_evidence(ev: &Ev, t: &Text) -> Option<String> {
    match *ev {
        Ev::Words { .. } => None,
        Ev::Token { token, .. } => detect::has_token(&t.raw, token).then(|| format!("`{token}`")),
        Ev::Http { lo, hi, .. } => t
            .statuses
            .iter()
            .find(|s| (lo..=hi).contains(*s))
            .map(|s| format!("HTTP {s}")),
        Ev::AsciiLength { .. } => t
            .ascii
            .as_ref()
            .map(|(n, text)| format!("length {n} is {text}: not a gRPC frame")),
        Ev::HexTls { .. } => (t.hex == Some(detect::HexDump::Tls))
            .then(|| "a TLS record in the hex dump".to_string()),
        Ev::HexHttp1 { .. } => (t.hex == Some(detect::HexDump::Http1))
            .then(|| "HTTP/1 text in the hex dump".to_string()),
    }
}

/// Whether `text` can hold evidence at all: a word of some phrase, or the
/// mark of other evidence (a status line that names an error status, a hex
/// dump, a token). Most lines of a log fail here, cheaply.
fn worth_reading(ix: &Index, text: &str) -> bool {
    let mut marks = false;
    let bytes = text.as_bytes();
    // Where words start and end as `normalize::words` cuts them: at a
    // non-letter, where camelCase starts a word (a capital after a
    // lowercase letter), and before the last capital of an acronym that
    // begins a word (`IOException`).
    let upper = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_uppercase);
    let lower = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_lowercase);
    let cut = |i: usize| {
        i == 0
            || i >= bytes.len()
            || !bytes[i - 1].is_ascii_alphabetic()
            || !bytes[i].is_ascii_alphabetic()
            || (upper(i) && lower(i - 1))
            || (upper(i) && upper(i - 1) && lower(i + 1))
    };
    let token_edge = |i: usize| {
        bytes
            .get(i)
            .is_none_or(|b| !(b.is_ascii_alphanumeric() || *b == b'-' || *b == b'<' || *b == b'>'))
    };
    if ix
        .tokens
        .find_overlapping_iter(text)
        .any(|m| (m.start() == 0 || token_edge(m.start() - 1)) && token_edge(m.end()))
    {
        return true;
    }
    for m in ix.anchors.find_overlapping_iter(text) {
        if m.pattern().as_usize() >= ix.first_mark {
            marks = true;
        } else if cut(m.start()) && cut(m.end()) {
            return true;
        }
    }
    // `status=200` and `HTTP/1.1 200` are every access log's: only an
    // error status, or the other marks, count.
    marks && {
        let lower = text.to_ascii_lowercase();
        (detect::has_error_number(bytes) && detect::http_statuses(&lower).iter().any(|s| *s >= 300))
            || lower.contains("hex dump")
            || lower.contains("frame")
    }
}

/// Reads one message (a line, or a pasted multi-line text).
pub fn read(text: &str) -> Reading {
    let ix = index();
    if !worth_reading(ix, text) {
        return Reading {
            verdict: Verdict::None,
            findings: Vec::new(),
            generic: None,
            tell: None,
            family: None,
        };
    }
    let t = Text::new(text);
    let found = matched_patterns(&t);
    let deepest = t.causes.len().saturating_sub(1);
    // Which phrases are whole, and how deep.
    let phrase_depth = |parts: &[usize]| -> Option<usize> {
        parts
            .iter()
            .map(|p| found.get(p).copied())
            .try_fold(0usize, |acc, d| d.map(|d| acc.max(d)))
    };
    let mut generics: Vec<usize> = Vec::new();
    let mut words_found: HashMap<(EntryId, usize), usize> = HashMap::new();
    let mut candidates: Vec<usize> = found
        .keys()
        .flat_map(|p| ix.by_pattern[*p].iter().copied())
        .collect();
    candidates.sort_unstable();
    candidates.dedup();
    for (owner, parts) in candidates.into_iter().map(|i| &ix.phrases[i]) {
        let Some(d) = phrase_depth(parts) else {
            continue;
        };
        match *owner {
            Owner::Generic(g) => generics.push(g),
            Owner::Entry(id, i) => {
                words_found.insert((id, i), d);
            }
        }
    }
    let muted: Vec<EntryId> = generics
        .iter()
        .flat_map(|&g| GENERIC[g].mute.iter().copied())
        .collect();
    let mut findings: Vec<Finding> = Vec::new();
    for e in CATALOGUE.iter().filter(|e| !muted.contains(&e.id)) {
        let f = score(e, &t, &words_found, deepest);
        if f.score > 0.0 {
            findings.push(f);
        }
    }
    let family = detect::family(&t.raw, &t.all_words());
    upstream_of_a_proxy(&mut findings, family);
    findings.sort_by(|a, b| b.score.total_cmp(&a.score));
    decide(findings, &generics, family)
}

/// A proxy that prints `connection refused` or a connect timeout is
/// telling about its own upstream: the server behind it is unreachable.
fn upstream_of_a_proxy(findings: &mut Vec<Finding>, family: Option<Family>) {
    let proxy = matches!(
        family,
        Some(Family::Envoy | Family::Nginx | Family::Haproxy | Family::Caddy)
    );
    if !proxy {
        return;
    }
    let connect: f32 = findings
        .iter()
        .filter(|f| matches!(f.id, EntryId::ConnectionRefused | EntryId::ConnectTimeout))
        .map(|f| f.score)
        .fold(0.0, f32::max);
    if connect <= 0.0 {
        return;
    }
    let note = "printed by a proxy about its upstream".to_string();
    match findings
        .iter_mut()
        .find(|f| f.id == EntryId::ProxyNoUpstream)
    {
        Some(f) => {
            f.score += connect;
            f.evidence.push(note);
        }
        None => findings.push(Finding {
            id: EntryId::ProxyNoUpstream,
            score: connect + 3.0,
            evidence: vec![note],
            strongest: connect,
        }),
    }
}

fn score(
    e: &Entry,
    t: &Text,
    words_found: &HashMap<(EntryId, usize), usize>,
    deepest: usize,
) -> Finding {
    let mut score = 0.0;
    let mut strongest: f32 = 0.0;
    let mut evidence = Vec::new();
    for (i, ev) in e.evidence.iter().enumerate() {
        let (seen, depth) = match ev {
            Ev::Words { words, .. } => match words_found.get(&(e.id, i)) {
                Some(&d) => (Some(format!("{:?}", words.replace(" + ", " ... "))), d),
                None => (None, 0),
            },
            other => (other_evidence(other, t), 0),
        };
        if let Some(s) = seen {
            let weight = f32::from(ev.weight()) * depth_factor(depth, deepest);
            score += weight;
            strongest = strongest.max(weight);
            evidence.push(s);
        }
    }
    Finding {
        id: e.id,
        score,
        evidence,
        strongest,
    }
}

/// The verdict from the ranked findings and the generic messages found.
fn decide(mut findings: Vec<Finding>, generics: &[usize], family: Option<Family>) -> Reading {
    let top = findings.first().map_or(0.0, |f| f.score);
    let second = findings.get(1).map_or(0.0, |f| f.score);
    let decisive = findings.first().is_some_and(|f| f.strongest >= DECISIVE);
    let proved = decisive
        && top >= PROOF
        && (second == 0.0 || (top >= MARGIN * second && top - second >= 3.0));
    if proved {
        findings.truncate(MAX_FINDINGS);
        return Reading {
            verdict: Verdict::One,
            findings,
            generic: None,
            tell: None,
            family,
        };
    }
    // The most specific generic message (the longest words) speaks; the
    // others add the entries they fit after its own.
    let mut matched: Vec<&'static Generic> = generics.iter().map(|&g| &GENERIC[g]).collect();
    matched.sort_by_key(|g| std::cmp::Reverse(g.words.len()));
    let generic = matched.first().copied();
    let Some(g) = generic else {
        if findings.is_empty() {
            return Reading {
                verdict: Verdict::None,
                findings,
                generic: None,
                tell: None,
                family,
            };
        }
        // Evidence for several entries, none proved: the close ones.
        findings.retain(|f| f.score * MARGIN >= top);
        findings.truncate(MAX_FINDINGS);
        let verdict = Verdict::Several;
        return Reading {
            verdict,
            findings,
            generic: None,
            tell: None,
            family,
        };
    };
    // A generic message: its fits, ranked by the other evidence, then in
    // the catalogue's order of likelihood.
    let mut fits: Vec<EntryId> = Vec::new();
    for id in matched.iter().flat_map(|g| g.fits.iter()) {
        if !fits.contains(id) {
            fits.push(*id);
        }
    }
    for (i, id) in fits.iter().enumerate() {
        let prior = (1.5 - 0.25 * i as f32).max(0.1);
        match findings.iter_mut().find(|f| f.id == *id) {
            Some(f) => f.score += prior,
            None => findings.push(Finding {
                id: *id,
                score: prior,
                evidence: Vec::new(),
                strongest: 0.0,
            }),
        }
    }
    findings.sort_by(|a, b| b.score.total_cmp(&a.score));
    findings.truncate(MAX_FINDINGS);
    Reading {
        verdict: Verdict::Several,
        findings,
        generic: Some(g.words),
        tell: Some(g.tell),
        family,
    }
}

#[cfg(test)]
mod tests;
