//! Text for people fits the width: the terminal's (60 to 100 columns), or
//! `COLUMNS`, or 100 when stdout is a file or a pipe. Words wrap; colour
//! codes take no room.

/// The width human output wraps to.
pub fn width() -> usize {
    let cols = super::terminal_width()
        .map(|(w, _)| usize::from(w))
        .or_else(|| {
            std::env::var("COLUMNS")
                .ok()
                .and_then(|c| c.trim().parse::<usize>().ok())
        });
    cols.map_or(100, |w| w.clamp(60, 100))
}

/// The columns `s` takes on a terminal: its characters without the ANSI
/// colour sequences.
pub fn visible(s: &str) -> usize {
    let mut n = 0;
    let mut esc = false;
    for c in s.chars() {
        match (esc, c) {
            (false, '\x1b') => esc = true,
            (true, 'm') => esc = false,
            (true, _) => {}
            (false, _) => n += 1,
        }
    }
    n
}

/// `text` word-wrapped to `width` columns, each line after the first
/// starting with `cont` (no newlines).
pub fn lines(text: &str, width: usize, cont: &str) -> Vec<String> {
    let cont_w = visible(cont);
    let room = width.saturating_sub(cont_w).max(20);
    let mut out = Vec::new();
    let mut line = String::new();
    let (mut col, mut empty) = (0, true);
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        // A word longer than a line (a JSON config) is cut where it must.
        let pieces: Vec<String> = if visible(word) > room {
            let chars: Vec<char> = word.chars().collect();
            chars.chunks(room).map(|p| p.iter().collect()).collect()
        } else {
            vec![word.to_string()]
        };
        for piece in pieces {
            let n = visible(&piece);
            if !empty && col + 1 + n > width {
                out.push(std::mem::replace(&mut line, cont.to_string()));
                (col, empty) = (cont_w, true);
            }
            if !empty {
                line.push(' ');
                col += 1;
            }
            line.push_str(&piece);
            (col, empty) = (col + n, false);
        }
    }
    if !empty {
        out.push(line);
    }
    out
}

/// `head` then `text`, wrapped under the end of `head`, with a newline.
pub fn hanging(head: &str, text: &str, width: usize) -> String {
    let indent = " ".repeat(visible(head));
    let body = lines(text, width.saturating_sub(visible(head)), "");
    let mut out = String::from(head);
    for (i, l) in body.iter().enumerate() {
        if i > 0 {
            out.push('\n');
            out.push_str(&indent);
        }
        out.push_str(l);
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_fit_and_colour_takes_no_room() {
        let text = "one two three four five six seven eight nine ten eleven twelve";
        for l in lines(text, 20, "   ") {
            assert!(visible(&l) <= 20, "{l:?}");
        }
        let red = "\x1b[31mred\x1b[0m";
        assert_eq!(visible(red), 3);
        assert_eq!(
            lines(&format!("{red} {red}"), 7, ""),
            [format!("{red} {red}")]
        );
        let h = hanging("  cause: ", "a b c d e f g h i j k l m n o p", 20);
        for l in h.lines() {
            assert!(visible(l) <= 20, "{h}");
        }
        assert!(h.lines().nth(1).unwrap().starts_with("         "), "{h}");
    }
}
