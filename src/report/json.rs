//! `--output json`: one event object per line (schema: DESIGN §4). With an
//! explainer (watch), a notable event is followed by an `explanation` line:
//! the catalogue entry (`id`, `also`, `title`, `cause`, `fix`) and the facts
//! of this case (`note`).

use std::io::{self, Write};

use super::note::NoteJson;
use super::EventWriter;
use crate::diagnose::Explainer;
use crate::event::Event;

#[derive(Default)]
pub struct JsonEvents {
    pub explainer: Option<Explainer>,
}

impl EventWriter for JsonEvents {
    fn write(&mut self, out: &mut dyn Write, event: &Event) -> io::Result<()> {
        serde_json::to_writer(&mut *out, event)?;
        out.write_all(b"\n")?;
        if let Some(n) = self.explainer.as_mut().and_then(|x| x.explain(event)) {
            serde_json::to_writer(&mut *out, &NoteJson::new(event.t_ms, event.conn, &n))?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }
}
