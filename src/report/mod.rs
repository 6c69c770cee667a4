//! Rendering: events to human lines or JSON lines. Producers never see this
//! module; it only reads [`crate::event::Event`]s.

pub mod doctor;
pub mod explain;
pub mod human;
mod json;
pub mod load;
pub mod printer;
pub mod progress;
pub mod scenario;
pub mod style;
pub mod summary;

use std::io::{self, Write};

use crate::event::Event;

pub use human::HumanEvents;
pub use json::JsonEvents;

/// Writes a stream of events in one format.
pub trait EventWriter: Send {
    fn write(&mut self, out: &mut dyn Write, event: &Event) -> io::Result<()>;

    /// After the last event (`end_ms` since the start): a summary, if any.
    fn finish(&mut self, _out: &mut dyn Write, _end_ms: f64) -> io::Result<()> {
        Ok(())
    }
}
