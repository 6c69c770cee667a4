//! Rendering: events to human lines or JSON lines. Producers never see this
//! module; it only reads [`crate::event::Event`]s.

pub mod doctor;
pub mod explain;
pub mod fold;
pub mod html;
pub mod human;
mod json;
pub mod load;
pub mod note;
pub mod printer;
pub mod progress;
pub mod scenario;
pub mod style;
pub mod summary;
pub mod timeline;
pub mod wrap;

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

/// The terminal's size when stdout is one.
pub fn terminal_width() -> Option<(u16, u16)> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills the winsize struct it is given.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_col > 0).then_some((ws.ws_col, ws.ws_row))
}

/// The widest human output: 100 columns, or a narrower terminal.
pub const WIDTH: u16 = 100;

/// A table for people: condensed lines, as wide as the terminal or 100
/// columns (long cells wrap); full text stays in `-o json`. Colour codes
/// in cells do not count towards widths.
pub fn table() -> comfy_table::Table {
    // As wide as the terminal, or 100 columns (COLUMNS) in a file or a pipe.
    let pipe = u16::try_from(wrap::width()).unwrap_or(WIDTH);
    table_of_width(terminal_width().map_or(pipe, |(w, _)| w))
}

/// A table at most [`WIDTH`] columns wide, or the terminal's width when
/// narrower (long cells wrap).
pub fn narrow_table() -> comfy_table::Table {
    table_of_width(terminal_width().map_or(WIDTH, |(w, _)| w.min(WIDTH)))
}

/// Keeps a table to [`WIDTH`] columns (or a narrower terminal's).
pub fn cap(t: &mut comfy_table::Table) {
    t.set_width(terminal_width().map_or(WIDTH, |(w, _)| w.min(WIDTH)));
    t.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
}

/// A table at most `width` columns wide.
pub fn table_of_width(width: u16) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_width(width);
    t.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    t
}

/// A report file's format, by its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    Html,
    Junit,
    Json,
}

impl FileFormat {
    /// `.html`, `.xml` (JUnit) or `.json`; `allowed` lists what a command
    /// writes.
    pub fn of(path: &std::path::Path, allowed: &[FileFormat]) -> Result<Self, String> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let choices = || {
            allowed
                .iter()
                .map(|f| f.describe())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let f = match ext.as_str() {
            "html" | "htm" => FileFormat::Html,
            "xml" => FileFormat::Junit,
            "json" => FileFormat::Json,
            _ => {
                return Err(format!(
                    "--report {}: name the format by the extension: {}",
                    path.display(),
                    choices()
                ))
            }
        };
        if !allowed.contains(&f) {
            return Err(format!(
                "--report {}: this command writes {}",
                path.display(),
                choices()
            ));
        }
        Ok(f)
    }

    fn describe(self) -> &'static str {
        match self {
            FileFormat::Html => ".html (a page)",
            FileFormat::Junit => ".xml (JUnit)",
            FileFormat::Json => ".json",
        }
    }
}
