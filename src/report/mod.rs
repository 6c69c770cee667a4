//! Rendering: events to human lines or JSON lines. Producers never see this
//! module; it only reads [`crate::event::Event`]s.

mod human;
mod json;
pub mod style;

use std::io::{self, Write};

use crate::event::Event;

pub use human::HumanEvents;
pub use json::JsonEvents;

/// Writes a stream of events in one format.
pub trait EventWriter: Send {
    fn write(&mut self, out: &mut dyn Write, event: &Event) -> io::Result<()>;
}
