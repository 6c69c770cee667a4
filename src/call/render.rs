//! `grpcdoc call`'s output: the steps as lines for people (`-v`, on
//! stderr; `*` what the client did, `>` sent, `<` received), the status
//! with what explains a failure, and the JSON record (`-o json`).

use super::steps::{CallStep, Field, Step, What};
use super::Record;
use crate::event::{Event, EventKind};
use crate::h2wire::Dir;
use crate::report::human::HumanEvents;
use crate::report::note::{NoteJson, NoteLines};
use crate::report::style::{Style, Tone};

/// Where the text of a step starts: after the time and the mark.
const TEXT: usize = 16;
/// The width lines are cut to.
const WIDTH: usize = 100;

fn ms(v: f64) -> String {
    format!("{v:.3}ms")
}

fn mark(d: Dir) -> char {
    match d {
        Dir::Sent => '>',
        Dir::Received => '<',
    }
}

/// `text` after `lead`, wrapped to the width; continuation lines start
/// under the text, indented by `more` more.
fn wrapped(out: &mut String, lead: &str, text: &str, more: usize) {
    let width = WIDTH - lead.chars().count();
    for (i, l) in wrap(text, width, more).into_iter().enumerate() {
        if i == 0 {
            out.push_str(lead);
        } else {
            out.push_str(&" ".repeat(lead.chars().count()));
        }
        out.push_str(&l);
        out.push('\n');
    }
}

/// Word-wraps `text` to `width` columns (a word longer than a line is
/// cut into pieces); continuation lines are indented by `more`.
fn wrap(text: &str, width: usize, more: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    let mut len = 0;
    // Where the current line's text starts: 0 on the first line.
    let mut base = 0;
    for word in text.split(' ') {
        let mut chars: Vec<char> = word.chars().collect();
        if len > base && len + 1 + chars.len() > width {
            lines.push(std::mem::replace(&mut line, " ".repeat(more)));
            (len, base) = (more, more);
        }
        if len > base {
            line.push(' ');
            len += 1;
        }
        loop {
            let room = width.saturating_sub(len).max(1);
            if chars.len() <= room {
                len += chars.len();
                line.extend(chars);
                break;
            }
            line.extend(chars.drain(..room));
            lines.push(std::mem::replace(&mut line, " ".repeat(more)));
            (len, base) = (more, more);
        }
    }
    if len > base {
        lines.push(line);
    }
    lines
}

/// Every step, one line each (headers, TLS chain: lines beneath).
pub(crate) fn steps(rec: &Record, style: &Style) -> String {
    let human = HumanEvents::new(*style, None);
    let mut out = String::new();
    for s in &rec.steps {
        let (m, text, more) = describe(s, &human, style);
        // The status details beneath their field, read.
        let details = rec.status.as_ref().and_then(|st| st.details.as_ref());
        let more: Vec<String> = more
            .into_iter()
            .flat_map(|l| {
                let read = details
                    .filter(|_| l.get(2..).is_some_and(|f| f.starts_with(DETAILS)))
                    .map(|d| format!("  = google.rpc.Status {d}"));
                std::iter::once(l).chain(read)
            })
            .collect();
        wrapped(&mut out, &format!("{:>11}  {m} ", ms(s.t_ms)), &text, 2);
        for l in more {
            wrapped(&mut out, &" ".repeat(TEXT), &l, 4);
        }
    }
    out
}

/// The trailer that carries a `google.rpc.Status`.
const DETAILS: &str = "grpc-status-details-bin:";

fn fields(m: char, f: &[Field]) -> Vec<String> {
    f.iter()
        .map(|f| format!("{m} {}: {}", f.name, f.value))
        .collect()
}

/// A step's mark, line and the lines beneath it.
fn describe(s: &Step, human: &HumanEvents, style: &Style) -> (char, String, Vec<String>) {
    let c = match &s.what {
        What::Wire(kind) => return wire(s.t_ms, kind, human),
        What::Call(c) => c,
    };
    match c {
        CallStep::RequestHeaders { fields: f } => ('>', "request headers".into(), fields('>', f)),
        CallStep::ResponseHeaders { status, fields: f } => (
            '<',
            format!("response headers (HTTP {status})"),
            fields('<', f),
        ),
        CallStep::Trailers { fields: f } => ('<', "trailers".into(), fields('<', f)),
        CallStep::Message { dir, index, bytes } => (
            mark(*dir),
            format!("message {index}: {bytes} bytes"),
            Vec::new(),
        ),
        CallStep::TlsHandshake(t) => ('*', tls_line(t), chain(t)),
        other => ('*', client_step(other, style), Vec::new()),
    }
}

fn wire(t_ms: f64, kind: &EventKind, human: &HumanEvents) -> (char, String, Vec<String>) {
    let m = match kind {
        EventKind::Settings { dir, .. }
        | EventKind::Goaway { dir, .. }
        | EventKind::Ping { dir, .. }
        | EventKind::RstStream { dir, .. }
        | EventKind::Frame { dir, .. } => mark(*dir),
        _ => '*',
    };
    let e = Event {
        t_ms,
        kind: kind.clone(),
        conn: None,
        addr: None,
    };
    (m, human.describe(&e), Vec::new())
}

fn tls_line(t: &crate::doctor::link::TlsInfo) -> String {
    let alpn = match &t.alpn {
        Some(a) => format!("ALPN {a}"),
        None => "no ALPN protocol chosen".into(),
    };
    format!(
        "TLS handshake in {}: {}, {}, {alpn}",
        ms(t.handshake_ms),
        t.version,
        t.cipher
    )
}

/// The certificates the server sent, its own first.
fn chain(t: &crate::doctor::link::TlsInfo) -> Vec<String> {
    let mut out = Vec::new();
    for (i, c) in t.chain.iter().enumerate() {
        out.push(format!("certificate {}: subject {}", i + 1, c.subject));
        out.push(format!("  issuer {}", c.issuer));
        let left = if c.days_left < 0 {
            format!("EXPIRED {} days ago", -c.days_left)
        } else {
            format!("{} days left", c.days_left)
        };
        out.push(format!("  valid from {}", c.not_before));
        out.push(format!("  valid until {} ({left})", c.not_after));
    }
    out
}

fn client_step(c: &CallStep, style: &Style) -> String {
    match c {
        CallStep::Resolve {
            target,
            addrs,
            error,
            elapsed_ms,
        } => match error {
            Some(e) => style.paint(Tone::Bad, &format!("resolve {target} failed: {e}")),
            None => format!(
                "resolved {target} in {}: {}",
                ms(*elapsed_ms),
                addrs.join(", ")
            ),
        },
        CallStep::TcpConnect { addr, elapsed_ms } => {
            format!("TCP connected to {addr} in {}", ms(*elapsed_ms))
        }
        CallStep::ConnectFailed { addr, error, .. } => {
            style.paint(Tone::Bad, &format!("no connection to {addr}: {error}"))
        }
        CallStep::Descriptors {
            source,
            elapsed_ms,
            streams,
        } => {
            let mut line = format!("descriptors from {source} in {}", ms(*elapsed_ms));
            if !streams.is_empty() {
                let ids: Vec<String> = streams.iter().map(ToString::to_string).collect();
                line.push_str(&format!(" (its streams {} not shown)", ids.join(", ")));
            }
            line
        }
        CallStep::End {
            code,
            message,
            elapsed_ms,
        } => {
            let tone = if code == "OK" { Tone::Good } else { Tone::Bad };
            let mut line = format!(
                "call ended {} in {}",
                style.paint(tone, code),
                ms(*elapsed_ms)
            );
            if !message.is_empty() {
                line.push_str(&format!(": {message}"));
            }
            line
        }
        _ => String::new(),
    }
}

/// The status of a call that did not end OK and its details, and the
/// notes on what the steps mean: for a failure always, with `-v` also
/// for a call that ended OK (a drain it survived, say).
pub(crate) fn outcome(rec: &Record, style: &Style, verbose: bool) -> String {
    let mut out = String::new();
    if let Some(s) = rec.status.as_ref().filter(|_| !rec.ok()) {
        out = error(s, style);
    } else if !verbose {
        return out;
    }
    let mut notes = NoteLines::default();
    for (_, _, n) in &rec.notes {
        for l in notes.lines(n, style) {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}

fn error(s: &super::StatusRecord, style: &Style) -> String {
    let mut text = format!("ERROR: {}", s.code);
    if !s.message.is_empty() {
        text.push_str(&format!(": {}", crate::redact::text(&s.message)));
    }
    let mut lines = String::new();
    wrapped(&mut lines, "", &text, 2);
    let mut out = style.paint(Tone::Bad, lines.trim_end()) + "\n";
    if let Some(d) = &s.details {
        let text = serde_json::to_string_pretty(d).unwrap_or_default();
        out.push_str("  details (google.rpc.Status):\n");
        for l in text.lines() {
            out.push_str(&format!("    {l}\n"));
        }
    }
    out
}

/// The record as one JSON object, with an `explanations` list.
pub(crate) fn json(rec: &Record) -> serde_json::Value {
    let mut v = serde_json::to_value(rec).unwrap_or_default();
    let notes: Vec<serde_json::Value> = rec
        .notes
        .iter()
        .filter_map(|(t, conn, n)| serde_json::to_value(NoteJson::new(*t, *conn, n)).ok())
        .collect();
    if let Some(o) = v.as_object_mut() {
        o.insert("ok".into(), rec.ok().into());
        o.insert("explanations".into(), notes.into());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_wrap_under_their_text() {
        assert_eq!(wrap("a bb ccc", 4, 1), ["a bb", " ccc"]);
        assert_eq!(wrap("abcdefgh", 4, 1), ["abcd", " efg", " h"]);
        assert_eq!(wrap("short", 10, 2), ["short"]);
        let mut out = String::new();
        wrapped(&mut out, "   1.000ms  < ", &"word ".repeat(40), 2);
        assert!(out.lines().count() > 1, "{out}");
        assert!(out.lines().all(|l| l.chars().count() <= WIDTH), "{out}");
    }
}
