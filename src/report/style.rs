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

    /// `auto`: color when stdout is a terminal and NO_COLOR is not set.
    pub fn for_stdout(choice: crate::cli::ColorChoice) -> Self {
        use crate::cli::ColorChoice;
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self::new(match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => !no_color && std::io::stdout().is_terminal(),
        })
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
