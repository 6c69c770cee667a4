//! `grpcdoc explain`'s report: the catalogue entries a message or a log
//! points to, for people and as JSON. Every word of cause and fix comes
//! from the catalogue.

use serde::Serialize;

use super::style::{Style, Tone};
use crate::catalogue::{entry, EntryId, Family, Fix, Scenario, Stack};
use crate::explain::Verdict;

#[derive(Debug, Serialize)]
pub struct Explanation {
    pub kind: &'static str,
    /// `message`, `stdin`, or the log file's path.
    pub source: String,
    /// Lines read (a message counts its lines too).
    pub lines: u64,
    /// Lines that point to a known failure (proved or generic).
    pub matched_lines: u64,
    /// For a message: one cause proved, several fit, or none.
    pub verdict: Verdict,
    /// The stack the message came from (detected, or `--stack`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<Family>,
    /// The generic words that left several causes open (a message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generic: Option<&'static str>,
    /// How to tell the causes apart, when several fit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tell: Option<&'static str>,
    /// Best first (a log: most lines first).
    pub matches: Vec<Match>,
    /// A log's lines that only fit several causes, by their words.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unresolved: Vec<Unresolved>,
}

#[derive(Debug, Serialize)]
pub struct Match {
    pub id: EntryId,
    pub title: &'static str,
    /// Lines that point to it (1 for a message).
    pub count: u64,
    /// The weight of its evidence in the text (a message).
    pub score: f32,
    /// What in the text points to it.
    pub evidence: Vec<String>,
    /// The stacks recorded printing a message of this entry.
    pub stacks: Vec<&'static str>,
    pub cause: &'static str,
    pub wire: &'static str,
    pub watch: &'static str,
    pub fix: &'static str,
    /// The setting on each stack, the message's stack first.
    pub fixes: Vec<Fix>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenario: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_scenario: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
}

/// Lines of a log that fit several causes.
#[derive(Debug, Serialize)]
pub struct Unresolved {
    /// The generic words, or the causes that tie.
    pub words: String,
    pub count: u64,
    pub fits: Vec<EntryId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tell: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
}

impl Match {
    pub fn new(
        id: EntryId,
        count: u64,
        score: f32,
        evidence: Vec<String>,
        first: Option<Family>,
    ) -> Self {
        let e = entry(id);
        let mut stacks: Vec<&'static str> = Vec::new();
        for s in e
            .says
            .iter()
            .map(|s| s.stack)
            .filter(|s| *s != Stack::Grpcdoc)
        {
            if !stacks.contains(&s.name()) {
                stacks.push(s.name());
            }
        }
        let (scenario, no_scenario) = match e.scenario {
            Scenario::Shipped(p) => (Some(p), None),
            Scenario::None(why) => (None, Some(why)),
        };
        Self {
            id,
            title: e.title,
            count,
            score,
            evidence,
            stacks,
            cause: e.cause,
            wire: e.wire,
            watch: e.watch,
            fix: e.fix,
            fixes: e.fixes_for(first),
            scenario,
            no_scenario,
            first_seen: None,
            last_seen: None,
        }
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// One entry, in full (`full`: every stack's fix and the evidence).
fn entry_block(out: &mut String, i: usize, m: &Match, x: &Explanation, s: &Style, full: bool) {
    let w = super::wrap::width();
    let count = if x.source == "message" {
        String::new()
    } else {
        format!(", {} line{}", m.count, plural(m.count))
    };
    out.push_str(&format!(
        "{}. {} [{}]{count}\n",
        i + 1,
        s.paint(Tone::Bold, m.title),
        m.id
    ));
    if let (Some(a), Some(b)) = (&m.first_seen, &m.last_seen) {
        out.push_str(&format!("   seen:        {a} .. {b}\n"));
    }
    if full && !m.evidence.is_empty() {
        out.push_str(&super::wrap::hanging(
            "   evidence:    ",
            &m.evidence.join(", "),
            w,
        ));
    }
    if !m.stacks.is_empty() && full {
        out.push_str(&super::wrap::hanging(
            "   printed by:  ",
            &m.stacks.join(", "),
            w,
        ));
    }
    out.push_str(&super::wrap::hanging("   cause:       ", m.cause, w));
    if full {
        out.push_str(&super::wrap::hanging("   on the wire: ", m.wire, w));
    }
    out.push_str(&super::wrap::hanging(
        "   fix:         ",
        &s.paint(Tone::Good, m.fix),
        w,
    ));
    let fixes: Vec<&Fix> = if full {
        m.fixes.iter().collect()
    } else {
        // The message's stack, or every stack's when it is not known.
        let mine: Vec<&Fix> = m.fixes.iter().filter(|f| Some(f.on) == x.stack).collect();
        if mine.is_empty() {
            m.fixes.iter().collect()
        } else {
            mine
        }
    };
    for f in fixes {
        let head = format!("   {:<13}", format!("{}:", short(f.on)));
        out.push_str(&super::wrap::hanging(&head, f.text, w));
    }
    out.push_str(&format!("   see it:      {}\n", m.watch));
    match (m.scenario, m.no_scenario) {
        (Some(sc), _) => out.push_str(&format!("   reproduce:   grpcdoc scenario {sc}\n")),
        (None, Some(why)) if full => {
            out.push_str(&super::wrap::hanging("   reproduce:   ", why, w))
        }
        _ => {}
    }
    out.push('\n');
}

/// A family's name, short enough for the fix column.
fn short(f: Family) -> &'static str {
    match f {
        Family::Any => "any stack",
        Family::Core => "C-core",
        Family::Envoy => "Envoy/Istio",
        Family::Cloud => "cloud LB",
        other => other.name(),
    }
}

pub fn render(x: &Explanation, s: &Style, verbose: bool) -> String {
    let w = super::wrap::width();
    if x.matches.is_empty() && x.unresolved.is_empty() {
        return format!(
            "no known failure prints that ({} line{} read); `grpcdoc watch TARGET` shows what the connection does\n",
            x.lines,
            plural(x.lines)
        );
    }
    let mut out = String::new();
    let from = x
        .stack
        .map(|f| format!(" ({})", f.name()))
        .unwrap_or_default();
    if x.source == "message" {
        match x.verdict {
            Verdict::One => out.push_str(&format!("one cause fits this message{from}:\n\n")),
            _ if x.generic.is_none() && x.matches.len() == 1 => {
                out.push_str(&super::wrap::hanging(
                    "",
                    &format!("the evidence points to this cause{from} but does not prove it:\n"),
                    w,
                ))
            }
            _ => {
                let what = x
                    .generic
                    .map(|g| {
                        format!(
                            "`{}` is printed for several causes",
                            g.replace(" + ", " ... ")
                        )
                    })
                    .unwrap_or_else(|| "the evidence fits several causes".into());
                out.push_str(&super::wrap::hanging(
                    "",
                    &format!("{what}{from}; the text alone does not tell which. Likeliest first:"),
                    w,
                ));
                out.push('\n');
            }
        }
    } else {
        out.push_str(&format!(
            "{}: {} of {} lines point to a known failure\n\n",
            x.source, x.matched_lines, x.lines
        ));
    }
    let several = x.source == "message" && x.verdict != Verdict::One && x.matches.len() > 1;
    if several && !verbose {
        // A list, then the likeliest in full.
        for (i, m) in x.matches.iter().enumerate() {
            out.push_str(&super::wrap::hanging(
                &format!("  {}. {:<20} ", i + 1, m.id.as_str()),
                m.title,
                w,
            ));
        }
        out.push('\n');
        if let Some(tell) = x.tell {
            out.push_str(&super::wrap::hanging("To tell them apart: ", tell, w));
            out.push('\n');
        }
        if let Some(m) = x.matches.first() {
            out.push_str("The likeliest, in full (-v shows every one):\n");
            entry_block(&mut out, 0, m, x, s, false);
        }
    } else if x.source == "message" {
        if let Some(m) = x.matches.first() {
            entry_block(&mut out, 0, m, x, s, true);
        }
        if verbose {
            for (i, m) in x.matches.iter().enumerate().skip(1) {
                entry_block(&mut out, i, m, x, s, true);
            }
            if let Some(tell) = x.tell {
                out.push_str(&super::wrap::hanging("To tell them apart: ", tell, w));
            }
        } else if x.matches.len() > 1 {
            let rest: Vec<&str> = x.matches[1..].iter().map(|m| m.id.as_str()).collect();
            out.push_str(&super::wrap::hanging(
                "",
                &format!(
                    "Weaker evidence also points to: {} (-v shows them).",
                    rest.join(", ")
                ),
                w,
            ));
        }
    } else {
        for (i, m) in x.matches.iter().enumerate() {
            entry_block(&mut out, i, m, x, s, verbose);
        }
    }
    for u in &x.unresolved {
        let seen = match (&u.first_seen, &u.last_seen) {
            (Some(a), Some(b)) => format!(" ({a} .. {b})"),
            _ => String::new(),
        };
        let fits: Vec<&str> = u.fits.iter().map(|f| f.as_str()).collect();
        out.push_str(&super::wrap::hanging(
            "",
            &format!(
                "{} line{} `{}`{seen} fit several causes: {}",
                u.count,
                plural(u.count),
                u.words,
                fits.join(", ")
            ),
            w,
        ));
        if let Some(t) = u.tell {
            out.push_str(&super::wrap::hanging("   to tell them apart: ", t, w));
        }
    }
    out
}
