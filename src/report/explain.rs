//! `grpcdoc explain`'s report: the catalogue entries a message or a log
//! points to, for people and as JSON.

use serde::Serialize;

use super::style::{Style, Tone};
use crate::catalogue::{Entry, Stack};

#[derive(Debug, Serialize)]
pub struct Explanation {
    pub kind: &'static str,
    /// `message`, `stdin`, or the log file's path.
    pub source: String,
    pub lines: u64,
    pub matched_lines: u64,
    /// Best first.
    pub matches: Vec<Match>,
}

#[derive(Debug, Serialize)]
pub struct Match {
    pub id: &'static str,
    pub title: &'static str,
    /// Lines that point to it (1 for a message).
    pub count: u64,
    /// Literal characters of the best matching known message.
    pub score: usize,
    /// The stacks known to print the message.
    pub stacks: Vec<&'static str>,
    pub cause: &'static str,
    pub wire: &'static str,
    pub watch: &'static str,
    pub fix: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenario: Option<&'static str>,
}

impl Match {
    pub fn new(e: &'static Entry, count: u64, score: usize, stacks: Vec<Stack>) -> Self {
        Self {
            id: e.id,
            title: e.title,
            count,
            score,
            stacks: stacks.into_iter().map(Stack::name).collect(),
            cause: e.cause,
            wire: e.wire,
            watch: e.watch,
            fix: e.fix,
            scenario: e.scenario,
        }
    }
}

pub fn render(x: &Explanation, s: &Style) -> String {
    if x.matches.is_empty() {
        return format!(
            "no known failure prints that ({} line{} read); `grpcdoc watch TARGET` shows what the connection does\n",
            x.lines,
            if x.lines == 1 { "" } else { "s" }
        );
    }
    let mut out = String::new();
    if x.source != "message" {
        out.push_str(&format!(
            "{}: {} of {} lines point to a known failure\n\n",
            x.source, x.matched_lines, x.lines
        ));
    } else if x.matches.len() > 1 {
        out.push_str("several failures print this; the likeliest first:\n\n");
    }
    for (i, m) in x.matches.iter().enumerate() {
        let count = if x.source == "message" {
            String::new()
        } else {
            format!(", {} line{}", m.count, if m.count == 1 { "" } else { "s" })
        };
        out.push_str(&format!(
            "{}. {} [{}]{count}\n",
            i + 1,
            s.paint(Tone::Bold, m.title),
            m.id
        ));
        if !m.stacks.is_empty() {
            out.push_str(&format!("   printed by: {}\n", m.stacks.join(", ")));
        }
        out.push_str(&format!("   cause:      {}\n", m.cause));
        out.push_str(&format!("   on the wire: {}\n", m.wire));
        out.push_str(&format!("   see it:     {}\n", m.watch));
        out.push_str(&format!("   fix:        {}\n", s.paint(Tone::Good, m.fix)));
        if let Some(sc) = m.scenario {
            out.push_str(&format!("   reproduce:  grpcdoc scenario {sc}\n"));
        }
        out.push('\n');
    }
    out
}
