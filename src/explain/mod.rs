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
    /// Per phrase: its owner, its parts (pattern ids).
    phrases: Vec<(Owner, Vec<usize>)>,
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut patterns: Vec<String> = Vec::new();
        let mut ids: HashMap<String, usize> = HashMap::new();
        let mut phrases = Vec::new();
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
        Index { automaton, phrases }
    })
}

/// The text a reading works on: unescaped, cut into causes, normalised.
struct Text {
    raw: String,
    lower: String,
    /// Per cause (outermost first), its words.
    causes: Vec<String>,
}

impl Text {
    fn new(text: &str) -> Self {
        let raw = normalize::unescape(text);
        let causes = normalize::causes(&raw)
            .into_iter()
            .map(normalize::words)
            .collect();
        Self {
            lower: raw.to_lowercase(),
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
fn other_evidence(ev: &Ev, t: &Text, statuses: &[u16]) -> Option<String> {
    match *ev {
        Ev::Words { .. } => None,
        Ev::Token { token, .. } => detect::has_token(&t.raw, token).then(|| format!("`{token}`")),
        Ev::Http { lo, hi, .. } => statuses
            .iter()
            .find(|s| (lo..=hi).contains(*s))
            .map(|s| format!("HTTP {s}")),
        Ev::AsciiLength { .. } => detect::ascii_length(&t.raw)
            .map(|(n, text)| format!("length {n} is {text}: not a gRPC frame")),
        Ev::HexTls { .. } => (detect::hex_dump(&t.lower) == Some(detect::HexDump::Tls))
            .then(|| "a TLS record in the hex dump".to_string()),
        Ev::HexHttp1 { .. } => (detect::hex_dump(&t.lower) == Some(detect::HexDump::Http1))
            .then(|| "HTTP/1 text in the hex dump".to_string()),
    }
}

/// Reads one message (a line, or a pasted multi-line text).
pub fn read(text: &str) -> Reading {
    let t = Text::new(text);
    let ix = index();
    let found = matched_patterns(&t);
    let deepest = t.causes.len().saturating_sub(1);
    let statuses = detect::http_statuses(&t.lower);
    // Which phrases are whole, and how deep.
    let phrase_depth = |parts: &[usize]| -> Option<usize> {
        parts
            .iter()
            .map(|p| found.get(p).copied())
            .try_fold(0usize, |acc, d| d.map(|d| acc.max(d)))
    };
    let mut generics: Vec<usize> = Vec::new();
    let mut words_found: HashMap<(EntryId, usize), usize> = HashMap::new();
    for (owner, parts) in &ix.phrases {
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
        let f = score(e, &t, &words_found, &statuses, deepest);
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
    statuses: &[u16],
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
            other => (other_evidence(other, t, statuses), 0),
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
