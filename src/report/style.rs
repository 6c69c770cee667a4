//! Terminal colors, decided once: `--color`, `NO_COLOR`, and whether the
//! stream is a terminal.

use std::io::IsTerminal;

#[derive(Clone, Copy, Debug)]
pub struct Style {
    enabled: bool,
}

#[derive(Clone, Copy, Debug)]
pub enum Tone {
    Good,
    Warn,
    Bad,
    Dim,
    Bold,
}

impl Style {
    pub fn new(enabled: bool) -> Self {
        Self { enabled }
    }

    /// Color as `forced` says, or (`None`, `--color auto`) when stdout is a
    /// terminal and NO_COLOR is not set.
    pub fn for_stdout(forced: Option<bool>) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self::new(forced.unwrap_or_else(|| !no_color && std::io::stdout().is_terminal()))
    }

    /// As [`Style::for_stdout`], for lines on stderr.
    pub fn for_stderr(forced: Option<bool>) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self::new(forced.unwrap_or_else(|| !no_color && std::io::stderr().is_terminal()))
    }

    pub fn paint(&self, tone: Tone, text: &str) -> String {
        if !self.enabled {
            return text.to_string();
        }
        let code = match tone {
            Tone::Good => "32",
            Tone::Warn => "33",
            Tone::Bad => "31",
            Tone::Dim => "2",
            Tone::Bold => "1",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }
}
