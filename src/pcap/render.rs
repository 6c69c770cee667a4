//! Showing a capture's events: per-connection timelines for people (each
//! connection's lines, in watch's format with its notes, printed when the
//! connection ends), or watch's JSON lines with `explanation` lines; a
//! summary at the end; and the events the HTML timeline needs.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};

use serde::Serialize;

use super::notes::CaptureNotes;
use super::PcapCalls;
use super::Stats;
use crate::diagnose::Note;
use crate::event::{micros, CaptureWhat, ConnectResult, Event, EventKind};
use crate::report::style::{Style, Tone};
use crate::report::{EventWriter, HumanEvents};
use crate::scenario::run::Tagged;

/// Lines of one connection's timeline shown before the rest are counted
/// (notable ones are always shown).
const MAX_LINES: usize = 1000;
/// Timeline text held for open connections in all; past it, every held
/// timeline is printed as it stands and goes on later ("continued").
const MAX_HELD_BYTES: usize = 16 << 20;
/// Events kept for the HTML timeline (it folds them; this bounds memory).
const MAX_TIMELINE_EVENTS: usize = 100_000;
/// Connections listed in the summary's human table.
const MAX_ROWS: usize = 200;
/// Connections kept for the summary's table (`-o json` lists them all up
/// to this many; more are counted).
const MAX_KEPT_ROWS: usize = 10_000;

/// One connection's timeline while it is open.
struct Block {
    human: HumanEvents,
    text: Vec<u8>,
    lines: usize,
    hidden: u64,
    header: String,
    /// Part of this timeline was printed already.
    continued: bool,
}

/// One connection in the summary.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Row {
    pub conn: u64,
    pub server: String,
    pub kind: &'static str,
    #[serde(serialize_with = "micros")]
    pub start_ms: f64,
    #[serde(serialize_with = "micros")]
    pub lifetime_ms: f64,
    pub streams: u64,
    /// Calls that ended here.
    pub calls: u64,
    pub failed_calls: u64,
    pub ended: String,
}

/// What the capture held, for the end.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Summary {
    pub kind: &'static str,
    pub file: String,
    /// The first packet's time, ms since the Unix epoch.
    pub start_unix_ms: Option<f64>,
    #[serde(serialize_with = "micros")]
    pub duration_ms: f64,
    #[serde(flatten)]
    pub stats: Stats,
    /// Close reason -> connections.
    pub closes: BTreeMap<String, u64>,
    /// "CODE debug" -> GOAWAY frames the clients received.
    pub goaways: BTreeMap<String, u32>,
    /// Status -> calls.
    pub calls: BTreeMap<String, u64>,
    /// Cause -> failed calls.
    pub causes: BTreeMap<String, u64>,
    /// Catalogue entry -> notes naming it.
    pub entries: BTreeMap<String, u64>,
    pub connections_table: Vec<Row>,
    /// Connections beyond those in the table.
    pub connections_not_listed: u64,
}

pub(crate) struct Renderer {
    json: bool,
    style: Style,
    calls: PcapCalls,
    notes: CaptureNotes,
    note_lines: crate::report::note::NoteLines,
    blocks: HashMap<u64, Block>,
    /// Timeline text held in `blocks`, bytes.
    held: usize,
    rows: HashMap<u64, Row>,
    pub summary: Summary,
    /// Events for the HTML timeline, when one is written.
    pub timeline: Option<Vec<Tagged>>,
    pub timeline_dropped: u64,
}

/// Events a long timeline never hides.
fn notable(e: &EventKind) -> bool {
    !matches!(
        e,
        EventKind::Ping { .. }
            | EventKind::Settings { .. }
            | EventKind::Frame { .. }
            | EventKind::Rpc {
                code: tonic::Code::Ok,
                ..
            }
    )
}

impl Renderer {
    pub(crate) fn new(json: bool, style: Style, calls: PcapCalls, timeline: bool) -> Self {
        Self {
            json,
            style,
            calls,
            notes: CaptureNotes::default(),
            note_lines: Default::default(),
            blocks: HashMap::new(),
            held: 0,
            rows: HashMap::new(),
            summary: Summary {
                kind: "summary",
                ..Summary::default()
            },
            timeline: timeline.then(Vec::new),
            timeline_dropped: 0,
        }
    }

    fn shown(&self, e: &EventKind) -> bool {
        match e {
            EventKind::Rpc { code, .. } => match self.calls {
                PcapCalls::None => false,
                PcapCalls::Failed => *code != tonic::Code::Ok,
                PcapCalls::All => true,
            },
            _ => true,
        }
    }

    /// Counts an event into the summary and the connection's row.
    fn count(&mut self, e: &Event, notes: &[Note]) {
        let s = &mut self.summary;
        for n in notes {
            if let Some(id) = n.entry {
                *s.entries.entry(id.to_string()).or_default() += 1;
            }
        }
        let Some(id) = e.conn else { return };
        if !self.rows.contains_key(&id) && self.rows.len() >= MAX_KEPT_ROWS {
            if matches!(
                e.kind,
                EventKind::Capture {
                    what: CaptureWhat::Open,
                    ..
                }
            ) {
                s.connections_not_listed += 1;
            }
            return;
        }
        let row = self.rows.entry(id).or_insert_with(|| Row {
            conn: id,
            server: e.addr.as_deref().unwrap_or_default().to_string(),
            kind: "h2c",
            start_ms: e.t_ms,
            ..Row::default()
        });
        match &e.kind {
            EventKind::Capture { what, .. } => match what {
                CaptureWhat::Tls => row.kind = "TLS",
                CaptureWhat::Midway => row.kind = "h2c (midway)",
                CaptureWhat::OpenAtEnd => {
                    row.ended = "open at the end".into();
                    row.lifetime_ms = e.t_ms - row.start_ms;
                }
                _ => {}
            },
            EventKind::Goaway {
                dir: crate::h2wire::Dir::Received,
                code,
                debug,
                ..
            } => crate::event::count_capped(
                &mut s.goaways,
                crate::event::goaway_key(*code, debug),
                1,
                32,
            ),
            EventKind::Rpc { code, cause, .. } => {
                row.calls += 1;
                *s.calls
                    .entry(crate::grpc::code_name(*code).to_string())
                    .or_default() += 1;
                if *code != tonic::Code::Ok {
                    row.failed_calls += 1;
                }
                if let Some(c) = cause {
                    let key = c.key();
                    if s.causes.len() < 64 || s.causes.contains_key(&key) {
                        *s.causes.entry(key).or_default() += 1;
                    }
                }
            }
            EventKind::Closed {
                reason,
                detail,
                lifetime_ms,
                streams,
                ..
            } => {
                *s.closes.entry(reason.as_str().to_string()).or_default() += 1;
                row.lifetime_ms = *lifetime_ms;
                row.streams = *streams;
                row.ended = match detail {
                    Some(d) => format!("{} ({})", reason.as_str(), short_close(d)),
                    None => reason.as_str().to_string(),
                };
            }
            EventKind::Connect {
                result: ConnectResult::Error,
                ..
            } => {
                row.kind = "refused";
                row.ended = "connection refused".into();
            }
            _ => {}
        }
    }

    /// Keeps an event for the HTML timeline: a lane from the TCP open.
    fn keep(&mut self, e: &Event) {
        let Some(t) = self.timeline.as_mut() else {
            return;
        };
        let event = match &e.kind {
            EventKind::Capture {
                what: CaptureWhat::Open,
                ..
            } => Event {
                kind: EventKind::Connect {
                    result: ConnectResult::Ok,
                    error: None,
                    cause: None,
                    elapsed_ms: 0.0,
                    subchannel: e.conn.unwrap_or(0),
                },
                ..e.clone()
            },
            EventKind::Connect {
                result: ConnectResult::Ok,
                ..
            }
            | EventKind::Frame { .. }
            | EventKind::Settings { .. }
            | EventKind::Capture { .. } => return,
            EventKind::Rpc { code, .. } if *code == tonic::Code::Ok => return,
            _ => e.clone(),
        };
        if t.len() >= MAX_TIMELINE_EVENTS {
            self.timeline_dropped += 1;
            return;
        }
        t.push(Tagged {
            who: "capture".into(),
            via: None,
            event,
        });
    }

    pub(crate) fn event(&mut self, out: &mut dyn Write, e: Event) -> io::Result<()> {
        let notes = self.notes.notes(&e);
        self.count(&e, &notes);
        self.keep(&e);
        if !self.shown(&e.kind) && notes.is_empty() {
            return Ok(());
        }
        if self.json {
            return json_lines(out, &e, &notes);
        }
        let Some(id) = e.conn else {
            return Ok(());
        };
        let style = self.style;
        let block = self.blocks.entry(id).or_insert_with(|| Block {
            human: HumanEvents {
                who: false,
                ..HumanEvents::new(style, None)
            },
            text: Vec::new(),
            lines: 0,
            hidden: 0,
            header: String::new(),
            continued: false,
        });
        if let EventKind::Capture {
            what: CaptureWhat::Open,
            detail,
            ..
        } = &e.kind
        {
            block.header = format!("conn {id}: {detail}");
        }
        if block.lines >= MAX_LINES && !notable(&e.kind) && notes.is_empty() {
            block.hidden += 1;
        } else {
            let before = block.text.len();
            block.human.write(&mut block.text, &e)?;
            for n in &notes {
                for line in self.note_lines.lines(n, &style) {
                    writeln!(block.text, "{line}")?;
                }
            }
            block.lines += block.text[before..].iter().filter(|b| **b == b'\n').count();
            self.held += block.text.len() - before;
        }
        let ended = matches!(
            e.kind,
            EventKind::Closed { .. }
                | EventKind::Connect {
                    result: ConnectResult::Error,
                    ..
                }
                | EventKind::Capture {
                    what: CaptureWhat::OpenAtEnd,
                    ..
                }
        );
        if ended {
            if let Some(b) = self.blocks.remove(&id) {
                self.held = self.held.saturating_sub(b.text.len());
                self.print_block(out, b)?;
            }
        } else if self.held > MAX_HELD_BYTES {
            self.print_held(out)?;
        }
        Ok(())
    }

    /// Too much held: every open connection's timeline so far is printed;
    /// each goes on under a "continued" header.
    fn print_held(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let mut ids: Vec<u64> = self.blocks.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(b) = self.blocks.get_mut(&id) else {
                continue;
            };
            if b.text.is_empty() {
                continue;
            }
            let header = if b.continued {
                format!("conn {id} (continued)")
            } else {
                b.header.clone()
            };
            writeln!(out, "{}", self.style.paint(Tone::Bold, &header))?;
            out.write_all(&b.text)?;
            writeln!(out)?;
            b.text.clear();
            b.continued = true;
        }
        self.held = 0;
        Ok(())
    }

    fn print_block(&self, out: &mut dyn Write, mut b: Block) -> io::Result<()> {
        b.human.finish(&mut b.text, 0.0)?;
        if b.continued {
            let id = b.header.split(':').next().unwrap_or_default().to_string();
            writeln!(
                out,
                "{}",
                self.style.paint(Tone::Bold, &format!("{id} (continued)"))
            )?;
        } else if !b.header.is_empty() {
            writeln!(out, "{}", self.style.paint(Tone::Bold, &b.header))?;
        }
        out.write_all(&b.text)?;
        if b.hidden > 0 {
            writeln!(
                out,
                "{:>12}({} more PING, SETTINGS, frame and OK call lines not shown; -o json has them)",
                "", b.hidden
            )?;
        }
        writeln!(out)
    }

    /// The rest of the timelines, and the summary.
    pub(crate) fn finish(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let mut rest: Vec<(u64, Block)> = self.blocks.drain().collect();
        rest.sort_by_key(|(id, _)| *id);
        for (_, b) in rest {
            self.print_block(out, b)?;
        }
        let mut rows: Vec<Row> = self.rows.drain().map(|(_, r)| r).collect();
        rows.sort_by_key(|r| r.conn);
        self.summary.connections_table = rows;
        if self.json {
            serde_json::to_writer(&mut *out, &self.summary)?;
            return out.write_all(b"\n");
        }
        out.write_all(super::summary::render(&self.summary).as_bytes())
    }

    /// Connections in the summary table.
    pub(crate) fn max_rows() -> usize {
        MAX_ROWS
    }
}

/// A close's detail in a table cell: `client FIN, server RST`.
fn short_close(detail: &str) -> String {
    detail.replace(" first", "").replace(", then ", ", ")
}

fn json_lines(out: &mut dyn Write, e: &Event, notes: &[Note]) -> io::Result<()> {
    serde_json::to_writer(&mut *out, e)?;
    out.write_all(b"\n")?;
    for n in notes {
        let line = crate::report::note::NoteJson::new(e.t_ms, e.conn, n);
        serde_json::to_writer(&mut *out, &line)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
