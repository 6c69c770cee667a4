//! A diagnosis note, rendered: for people, `-> title: the facts [entry]`
//! wrapped to 100 columns, with the catalogue's fix the first time an
//! entry comes up; as JSON, an `explanation` line with the entry's words.
//! The words of causes and fixes come from the catalogue only.

use std::collections::HashSet;

use serde::Serialize;

use super::style::{Style, Tone};
use crate::catalogue::{entry, EntryId};
use crate::diagnose::Note;
use crate::event::micros;

/// Where note lines start: under the event they follow.
const INDENT: usize = 12;

/// Renders notes for people, telling each entry's fix once.
#[derive(Debug, Default)]
pub struct NoteLines {
    fixed: HashSet<EntryId>,
}

impl NoteLines {
    /// The lines of `n` (indented, wrapped; no newline at the end).
    pub fn lines(&mut self, n: &Note, style: &Style) -> Vec<String> {
        let ids: Vec<&str> = n.entries().map(EntryId::as_str).collect();
        let text = match n.entry {
            Some(e) if n.also.is_empty() => {
                format!("-> {}: {} [{}]", entry(e).title, n.detail, ids.join(" | "))
            }
            Some(_) => format!("-> {} [{}]", n.detail, ids.join(" or ")),
            None => format!("-> {}", n.detail),
        };
        let mut out: Vec<String> = super::wrap::lines(&text, super::wrap::width() - INDENT, "   ")
            .into_iter()
            .map(|l| format!("{:>INDENT$}{}", "", style.paint(Tone::Dim, &l)))
            .collect();
        if let Some(e) = n.entry.filter(|_| n.also.is_empty()) {
            if self.fixed.insert(e) {
                let fix = format!("fix: {}", entry(e).fix);
                out.extend(
                    super::wrap::lines(&fix, super::wrap::width() - INDENT - 3, "     ")
                        .into_iter()
                        .map(|l| {
                            format!("{:>w$}{}", "", style.paint(Tone::Good, &l), w = INDENT + 3)
                        }),
                );
            }
        }
        out
    }
}

/// A note as an `explanation` JSON line.
#[derive(Serialize)]
pub struct NoteJson<'a> {
    #[serde(serialize_with = "micros")]
    t_ms: f64,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    conn: Option<u64>,
    /// The entry the history proves, or the likeliest of several.
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<EntryId>,
    /// Other entries that fit as well.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    also: &'a [EntryId],
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<&'static str>,
    /// The facts of this case.
    note: &'a str,
}

impl<'a> NoteJson<'a> {
    pub fn new(t_ms: f64, conn: Option<u64>, n: &'a Note) -> Self {
        let e = n.entry.map(entry);
        Self {
            t_ms,
            kind: "explanation",
            conn,
            id: n.entry,
            also: &n.also,
            title: e.map(|e| e.title),
            cause: e.map(|e| e.cause),
            fix: e.map(|e| e.fix),
            note: &n.detail,
        }
    }
}
