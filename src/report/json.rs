//! `--output json`: one event object per line (schema: DESIGN §4). With an
//! explainer (watch), a notable event is followed by an `explanation` line:
//! the catalogue entry (`id`, `cause`, `fix`) and the note for this case.

use std::io::{self, Write};

use serde::Serialize;

use super::EventWriter;
use crate::diagnose::{Explainer, Note};
use crate::event::{micros, Event};

#[derive(Default)]
pub struct JsonEvents {
    pub explainer: Option<Explainer>,
}

#[derive(Serialize)]
struct Explanation<'a> {
    #[serde(serialize_with = "micros")]
    t_ms: f64,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    conn: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<crate::catalogue::EntryId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<&'static str>,
    note: &'a str,
}

impl EventWriter for JsonEvents {
    fn write(&mut self, out: &mut dyn Write, event: &Event) -> io::Result<()> {
        serde_json::to_writer(&mut *out, event)?;
        out.write_all(b"\n")?;
        if let Some(Note { id, text }) = self.explainer.as_mut().and_then(|x| x.explain(event)) {
            let entry = id.map(crate::catalogue::entry);
            let line = Explanation {
                t_ms: event.t_ms,
                kind: "explanation",
                conn: event.conn,
                id,
                cause: entry.map(|e| e.cause),
                fix: entry.map(|e| e.fix),
                note: &text,
            };
            serde_json::to_writer(&mut *out, &line)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }
}
