//! `--output json`: one event object per line (schema: DESIGN §4).

use std::io::{self, Write};

use super::EventWriter;
use crate::event::Event;

pub struct JsonEvents;

impl EventWriter for JsonEvents {
    fn write(&mut self, out: &mut dyn Write, event: &Event) -> io::Result<()> {
        serde_json::to_writer(&mut *out, event)?;
        out.write_all(b"\n")
    }
}
