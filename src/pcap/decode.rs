//! From reassembled TCP streams to grpcdoc's events, per connection: which
//! protocol it carries (HTTP/2 from its preface or from frames that chain,
//! TLS from its first record, else nothing grpcdoc reads), its HTTP/2
//! frames as `watch` reports them, its calls, and its close with who sent
//! the FIN or RST. Directions are the client's: `sent` is client to
//! server. Times are capture times, in ms since the capture's first packet.

use std::collections::HashMap;
use std::sync::Arc;

use super::calls::{Calls, Outcome};
use super::framing::{frames_chain, Framing, Seen};
use super::tcp::{Flow, GapCause, Side, StreamSink};
use crate::event::{CaptureWhat, CloseReason, ConnectCause, ConnectResult, Event, EventKind};
use crate::h2wire::frame::{flags, CLIENT_PREFACE};
use crate::h2wire::{ControlFrame, Dir, FrameType};

/// What grpcdoc reads from a capture.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Options {
    /// Every frame as a `frame` event (DATA, HEADERS, ...), as `watch
    /// --frames`.
    pub frames: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Proto {
    /// No payload yet.
    Unknown,
    H2,
    Tls,
    /// Something grpcdoc does not read (HTTP/1, a database, ...).
    Other,
}

/// grpc-go's ping enforcement (gRFC A8, `http2_server.go` handlePing) with
/// its defaults: MinTime 5 min, PermitWithoutStream false (then 2 h), more
/// than 2 strikes is GOAWAY ENHANCE_YOUR_CALM "too_many_pings". A HEADERS or
/// DATA frame from the server resets the count.
#[derive(Default)]
struct PingPolicy {
    last_ping_ns: Option<u64>,
    strikes: u32,
    reset: bool,
}

const MIN_TIME_NS: u64 = 300 * 1_000_000_000;
const NO_STREAM_MIN_NS: u64 = 7200 * 1_000_000_000;
const MAX_STRIKES: u32 = 2;

impl PingPolicy {
    /// A client PING at `ts_ns` with `streams` open: the strike event, if it
    /// is one.
    fn ping(&mut self, ts_ns: u64, streams: usize) -> Option<EventKind> {
        let last = self.last_ping_ns.replace(ts_ns);
        if std::mem::take(&mut self.reset) {
            self.strikes = 0;
            return None;
        }
        let min = if streams == 0 {
            NO_STREAM_MIN_NS
        } else {
            MIN_TIME_NS
        };
        let since = ts_ns.saturating_sub(last?);
        if since >= min {
            return None;
        }
        self.strikes += 1;
        Some(EventKind::PingStrike {
            strikes: self.strikes,
            max_strikes: MAX_STRIKES,
            since_last_ping_ms: Some(since as f64 / 1e6),
            min_interval_ms: min as f64 / 1e6,
        })
    }
}

/// Gap events told per connection; later gaps are counted only.
const GAP_EVENTS: u32 = 8;
/// Silence before a close worth telling.
const IDLE_NS: u64 = 1_000_000_000;
/// PINGs waiting for their ACK, per connection.
const MAX_PINGS: usize = 64;

struct ConnState {
    flow: Flow,
    addr: Arc<str>,
    opened_ns: u64,
    proto: Proto,
    /// The TCP side that is the HTTP/2 client (the preface's sender).
    client: Side,
    framing: [Option<Framing>; 2],
    calls: Calls,
    /// Segments with payload before the protocol was known.
    undecided: u32,
    told_open: bool,
    accepted: bool,
    connected: bool,
    midway_told: bool,
    /// The client's connection preface is in the capture.
    preface_seen: bool,
    headers_told: bool,
    last_byte_ns: u64,
    fin: [Option<u64>; 2],
    rst: Option<Side>,
    goaway_received: bool,
    /// PINGs waiting for their ACK: (who sent it, payload) -> when.
    pings: Vec<((Side, [u8; 8]), u64)>,
    policy: PingPolicy,
    gap_events: u32,
}

fn idx(s: Side) -> usize {
    match s {
        Side::Client => 0,
        Side::Server => 1,
    }
}

/// Counts for the summary.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub(crate) struct Counts {
    pub connections_h2: u64,
    pub connections_tls: u64,
    pub connections_other: u64,
    pub gap_bytes: u64,
    pub gaps: u64,
    pub truncated_bytes: u64,
    pub frames: u64,
    pub calls_unreadable: u64,
    pub calls_open_at_end: u64,
}

/// The layer above reassembly: events out, per connection in order.
pub(crate) struct Decoder {
    opts: Options,
    conns: HashMap<u64, ConnState>,
    /// The capture's first packet (t_ms = 0).
    pub origin_ns: u64,
    /// Events not yet taken.
    pub out: Vec<Event>,
    pub counts: Counts,
    outcomes: Vec<Outcome>,
}

fn starts_preface(b: &[u8]) -> bool {
    let n = b.len().min(CLIENT_PREFACE.len());
    n >= 4 && b[..n] == CLIENT_PREFACE[..n]
}

/// A TLS record header: handshake, alert, change-cipher-spec or
/// application data, version 3.x.
fn starts_tls(b: &[u8]) -> bool {
    matches!(b, [0x14..=0x17, 0x03, ..])
}

fn dur(ns: u64) -> String {
    let d = std::time::Duration::from_millis(ns / 1_000_000);
    humantime::format_duration(d).to_string()
}

impl Decoder {
    pub(crate) fn new(opts: Options) -> Self {
        Self {
            opts,
            conns: HashMap::new(),
            origin_ns: 0,
            out: Vec::new(),
            counts: Counts::default(),
            outcomes: Vec::new(),
        }
    }

    fn t_ms(&self, ts_ns: u64) -> f64 {
        (ts_ns as f64 - self.origin_ns as f64) / 1e6
    }

    fn emit(&mut self, id: u64, ts_ns: u64, kind: EventKind) {
        let addr = self.conns.get(&id).map(|c| c.addr.clone());
        self.out.push(Event {
            t_ms: self.t_ms(ts_ns),
            kind,
            conn: Some(id),
            addr,
        });
    }

    fn capture(&mut self, id: u64, ts_ns: u64, what: CaptureWhat, detail: String) {
        self.emit(
            id,
            ts_ns,
            EventKind::Capture {
                what,
                detail,
                ms: None,
                bytes: None,
            },
        );
    }

    /// The connection's first event, once it is known to be worth telling.
    fn tell_open(&mut self, id: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.told_open {
            return;
        }
        c.told_open = true;
        let (client, server) = if c.client == Side::Client {
            (c.flow.client, c.flow.server)
        } else {
            (c.flow.server, c.flow.client)
        };
        let start = if c.flow.syn {
            "SYN in the capture"
        } else {
            "already open when the capture began"
        };
        let ts = c.opened_ns;
        self.capture(
            id,
            ts,
            CaptureWhat::Open,
            format!("client {client}, server {server} ({start})"),
        );
    }

    fn set_proto(&mut self, id: u64, proto: Proto, ts_ns: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.proto = proto;
        match proto {
            Proto::H2 => self.counts.connections_h2 += 1,
            Proto::Tls => self.counts.connections_tls += 1,
            Proto::Other => self.counts.connections_other += 1,
            Proto::Unknown => {}
        }
        if matches!(proto, Proto::H2 | Proto::Tls) {
            self.tell_open(id);
        }
        if proto == Proto::Tls {
            self.capture(
                id,
                ts_ns,
                CaptureWhat::Tls,
                "TLS: calls and frames cannot be read; what TCP shows is told (open, silences, FIN/RST, who closed)".into(),
            );
        }
    }

    /// The protocol of a connection from a direction's first bytes.
    fn detect(&mut self, id: u64, from: Side, bytes: &[u8], ts_ns: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if starts_preface(bytes) {
            c.client = from;
            self.set_proto(id, Proto::H2, ts_ns);
        } else if starts_tls(bytes) && c.undecided == 0 {
            self.set_proto(id, Proto::Tls, ts_ns);
        } else if frames_chain(bytes) {
            self.set_proto(id, Proto::H2, ts_ns);
        } else {
            c.undecided += 1;
            // A client that opened with something else is not HTTP/2; a
            // connection joined midway gets a few segments to show frames.
            let opened_else = c.flow.syn && from == c.client && c.undecided == 1;
            if opened_else || c.undecided > 16 {
                self.set_proto(id, Proto::Other, ts_ns);
            }
        }
    }

    fn on_h2_data(&mut self, id: u64, from: Side, bytes: &[u8], ts_ns: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let i = idx(from);
        let mut midway = false;
        if c.framing[i].is_none() {
            // From its start: the client's preface, or the server's side of
            // a connection whose SYN or preface is in the capture.
            let f = if starts_preface(bytes) {
                c.preface_seen = true;
                Framing::from_start(true)
            } else if c.flow.syn || c.preface_seen {
                Framing::from_start(false)
            } else {
                midway = true;
                Framing::midway()
            };
            c.framing[i] = Some(f);
        }
        if midway && !c.midway_told {
            c.midway_told = true;
            // Up before the capture: no connect to tell.
            c.connected = true;
            self.capture(
                id,
                ts_ns,
                CaptureWhat::Midway,
                "the capture joined this connection midway: frames are read, but headers only where HPACK's table allows".into(),
            );
        }
        let mut frames: Vec<(crate::h2wire::FrameHeader, Vec<u8>, bool)> = Vec::new();
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let Some(framing) = c.framing[i].as_mut() else {
            return;
        };
        let was_lost = !framing.in_step();
        framing.feed(bytes, &mut |s: Seen<'_>| {
            frames.push((s.header, s.payload.to_vec(), s.damaged));
        });
        let given_up = was_lost && framing.given_up();
        let _ = given_up;
        for (h, payload, damaged) in frames {
            self.frame(id, from, &h, &payload, damaged, ts_ns);
        }
    }

    fn dir_of(c: &ConnState, from: Side) -> Dir {
        if from == c.client {
            Dir::Sent
        } else {
            Dir::Received
        }
    }

    /// One frame of a connection.
    fn frame(
        &mut self,
        id: u64,
        from: Side,
        h: &crate::h2wire::FrameHeader,
        payload: &[u8],
        damaged: bool,
        ts_ns: u64,
    ) {
        self.counts.frames += 1;
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let dir = Self::dir_of(c, from);
        let from_client = dir == Dir::Sent;
        let mut events: Vec<EventKind> = Vec::new();
        let control = if h.kind.is_control() && !damaged {
            ControlFrame::parse(h, payload).ok()
        } else {
            None
        };
        if !from_client && matches!(h.kind, FrameType::Headers | FrameType::Data) {
            c.policy.reset = true;
        }
        match h.kind {
            FrameType::Headers | FrameType::Continuation => {
                if damaged {
                    c.calls.lose(from_client);
                    if !c.headers_told {
                        c.headers_told = true;
                        events.push(headers_unknown(
                            from_client,
                            "bytes of it are missing from the capture",
                        ));
                    }
                } else if c
                    .calls
                    .header_frame(from_client, h, payload, ts_ns, &mut self.outcomes)
                    && !c.headers_told
                {
                    c.headers_told = true;
                    let why = if c.flow.syn {
                        "HPACK's table is out of step (bytes before it are missing)"
                    } else {
                        "it refers to HPACK table entries sent before the capture began"
                    };
                    events.push(headers_unknown(from_client, why));
                }
            }
            FrameType::Data if h.has_flag(flags::END_STREAM) => {
                c.calls
                    .data_end(from_client, h.stream_id, ts_ns, &mut self.outcomes);
            }
            _ => {}
        }
        if self.opts.frames && control.is_none() {
            events.push(EventKind::Frame {
                dir,
                frame_type: h.kind,
                flags: h.flags,
                stream_id: h.stream_id,
                length: h.length,
            });
        }
        if let Some(frame) = control {
            self.control(id, (from, dir), h, &frame, ts_ns, &mut events);
        }
        let outcomes = std::mem::take(&mut self.outcomes);
        for o in &outcomes {
            events.push(rpc(o, ts_ns));
        }
        for e in events {
            self.emit(id, ts_ns, e);
        }
    }

    fn control(
        &mut self,
        id: u64,
        (from, dir): (Side, Dir),
        h: &crate::h2wire::FrameHeader,
        frame: &ControlFrame,
        ts_ns: u64,
        events: &mut Vec<EventKind>,
    ) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let from_client = dir == Dir::Sent;
        let mut rtt_ms = None;
        match frame {
            // The server's first SETTINGS: READY, as watch tells it (the
            // time from the SYN, or from the connection's first packet).
            ControlFrame::Settings { ack: false, .. } if !from_client && !c.connected => {
                c.connected = true;
                events.push(EventKind::Connect {
                    result: ConnectResult::Ok,
                    error: None,
                    cause: None,
                    elapsed_ms: ts_ns.saturating_sub(c.opened_ns) as f64 / 1e6,
                    subchannel: id,
                });
            }
            ControlFrame::Ping { ack: false, data } => {
                if c.pings.len() >= MAX_PINGS {
                    c.pings.remove(0);
                }
                c.pings.push(((from, *data), ts_ns));
                if from_client {
                    let streams = c.calls.open_calls();
                    if let Some(strike) = c.policy.ping(ts_ns, streams) {
                        events.push(EventKind::Ping {
                            dir,
                            ack: false,
                            rtt_ms: None,
                        });
                        events.push(strike);
                        return;
                    }
                }
            }
            ControlFrame::Ping { ack: true, data } => {
                let other = from.other();
                if let Some(i) = c.pings.iter().position(|(k, _)| *k == (other, *data)) {
                    let (_, sent) = c.pings.remove(i);
                    rtt_ms = Some(ts_ns.saturating_sub(sent) as f64 / 1e6);
                }
            }
            ControlFrame::GoAway {
                last_stream_id,
                debug,
                ..
            } if !from_client => {
                c.goaway_received = true;
                let debug = String::from_utf8_lossy(debug).into_owned();
                c.calls.goaway(*last_stream_id, debug, &mut self.outcomes);
            }
            ControlFrame::RstStream { stream_id, code } => {
                c.calls
                    .reset(*stream_id, *code, from_client, ts_ns, &mut self.outcomes);
            }
            _ => {}
        }
        match EventKind::from_frame(dir, frame) {
            Some(EventKind::Ping { dir, ack, .. }) => {
                events.push(EventKind::Ping { dir, ack, rtt_ms })
            }
            Some(kind) => events.push(kind),
            None if self.opts.frames => events.push(EventKind::Frame {
                dir,
                frame_type: h.kind,
                flags: h.flags,
                stream_id: h.stream_id,
                length: h.length,
            }),
            None => {}
        }
    }

    /// A SYN answered by RST: nothing listens there.
    fn refused(&mut self, id: u64, ts_ns: u64) {
        let Some(c) = self.conns.get(&id) else {
            return;
        };
        let elapsed_ms = ts_ns.saturating_sub(c.opened_ns) as f64 / 1e6;
        let server = c.flow.server;
        self.tell_open(id);
        self.emit(
            id,
            ts_ns,
            EventKind::Connect {
                result: ConnectResult::Error,
                error: Some(format!(
                    "connection refused: {server} answered the SYN with RST"
                )),
                cause: Some(ConnectCause::Refused),
                elapsed_ms,
                subchannel: id,
            },
        );
    }

    /// The close: who sent FIN or RST, and what it did to the calls.
    fn close(&mut self, id: u64, ts_ns: u64) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if !matches!(c.proto, Proto::H2 | Proto::Tls) {
            if c.proto == Proto::Unknown && c.flow.syn && !c.accepted && c.rst == Some(Side::Server)
            {
                self.refused(id, ts_ns);
            }
            return;
        }
        let (reason, detail, by_client) = ending(c);
        let silent = ts_ns.saturating_sub(c.last_byte_ns.max(c.opened_ns));
        let lifetime_ms = ts_ns.saturating_sub(c.opened_ns) as f64 / 1e6;
        c.calls
            .finish(&detail, by_client, ts_ns, &mut self.outcomes);
        self.counts.calls_unreadable += c.calls.unreadable;
        let streams = c.calls.streams;
        let outcomes = std::mem::take(&mut self.outcomes);
        for o in &outcomes {
            self.emit(id, ts_ns, rpc(o, ts_ns));
        }
        if silent >= IDLE_NS {
            self.emit(
                id,
                ts_ns,
                EventKind::Capture {
                    what: CaptureWhat::Idle,
                    detail: format!("no byte either way for {} before the close", dur(silent)),
                    ms: Some(silent as f64 / 1e6),
                    bytes: None,
                },
            );
        }
        self.emit(
            id,
            ts_ns,
            EventKind::Closed {
                reason,
                error: None,
                detail: Some(detail),
                lifetime_ms,
                streams,
            },
        );
    }
}

/// How a connection ended, from the client's side: the reason, who sent
/// FIN and RST (`client FIN first, then server RST`), and whether the
/// client ended it.
fn ending(c: &ConnState) -> (CloseReason, String, bool) {
    let client = c.client;
    let who = |s: Side| if s == client { "client" } else { "server" };
    let first_fin = match (c.fin[0], c.fin[1]) {
        (Some(a), Some(b)) if b < a => Some(Side::Server),
        (Some(_), _) => Some(Side::Client),
        (None, Some(_)) => Some(Side::Server),
        (None, None) => None,
    };
    let fin_text = first_fin.map(|s| format!("{} FIN first", who(s)));
    match (c.rst, first_fin) {
        (Some(s), f) => {
            let rst = format!("{} RST", who(s));
            let detail = match fin_text {
                Some(fin) => format!("{fin}, then {rst}"),
                None => rst,
            };
            let reason = if c.goaway_received && s == client {
                CloseReason::Goaway
            } else if s == client || f == Some(client) {
                CloseReason::Local
            } else {
                CloseReason::Reset
            };
            (reason, detail, f.unwrap_or(s) == client)
        }
        (None, Some(s)) => {
            let reason = if c.goaway_received {
                CloseReason::Goaway
            } else if s == client {
                CloseReason::Local
            } else {
                CloseReason::Eof
            };
            (reason, fin_text.unwrap_or_default(), s == client)
        }
        (None, None) => (CloseReason::Eof, "closed".to_string(), false),
    }
}

fn headers_unknown(from_client: bool, why: &str) -> EventKind {
    let whose = if from_client {
        "the client's requests (methods)"
    } else {
        "the server's responses (statuses)"
    };
    EventKind::Capture {
        what: CaptureWhat::HeadersUnknown,
        detail: format!("a header block could not be decoded: {why}; {whose} on this connection cannot be read from here on"),
        ms: None,
        bytes: None,
    }
}

fn rpc(o: &Outcome, ts_ns: u64) -> EventKind {
    EventKind::Rpc {
        method: if o.method.is_empty() {
            "(unknown method)".into()
        } else {
            o.method.clone()
        },
        code: o.code,
        message: o.message.clone(),
        latency_ms: ts_ns.saturating_sub(o.start_ns) as f64 / 1e6,
        cause: o.cause.clone(),
        attempts: Vec::new(),
    }
}

impl StreamSink for Decoder {
    fn opened(&mut self, flow: &Flow, ts_ns: u64) {
        let addr: Arc<str> = flow.server.to_string().into();
        self.conns.insert(
            flow.id,
            ConnState {
                flow: flow.clone(),
                addr,
                opened_ns: ts_ns,
                proto: Proto::Unknown,
                client: Side::Client,
                framing: [None, None],
                calls: Calls::new(),
                undecided: 0,
                told_open: false,
                accepted: false,
                connected: false,
                midway_told: false,
                preface_seen: false,
                headers_told: false,
                last_byte_ns: ts_ns,
                fin: [None, None],
                rst: None,
                goaway_received: false,
                pings: Vec::new(),
                policy: PingPolicy::default(),
                gap_events: 0,
            },
        );
    }

    fn accepted(&mut self, flow: &Flow, _ts_ns: u64) {
        if let Some(c) = self.conns.get_mut(&flow.id) {
            c.accepted = true;
        }
    }

    fn data(&mut self, flow: &Flow, from: Side, ts_ns: u64, bytes: &[u8]) {
        let id = flow.id;
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.last_byte_ns = ts_ns;
        if c.proto == Proto::Unknown {
            self.detect(id, from, bytes, ts_ns);
        }
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        match c.proto {
            Proto::H2 => self.on_h2_data(id, from, bytes, ts_ns),
            Proto::Tls if from != c.client && !c.connected => {
                c.connected = true;
                if c.flow.syn {
                    let elapsed_ms = ts_ns.saturating_sub(c.opened_ns) as f64 / 1e6;
                    self.emit(
                        id,
                        ts_ns,
                        EventKind::Connect {
                            result: ConnectResult::Ok,
                            error: None,
                            cause: None,
                            elapsed_ms,
                            subchannel: id,
                        },
                    );
                }
            }
            _ => {}
        }
    }

    fn gap(&mut self, flow: &Flow, from: Side, ts_ns: u64, bytes: u64, why: GapCause) {
        let id = flow.id;
        match why {
            GapCause::SnapLength => self.counts.truncated_bytes += bytes,
            GapCause::NotCaptured => {
                self.counts.gap_bytes += bytes;
                self.counts.gaps += 1;
            }
        }
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if !matches!(c.proto, Proto::H2 | Proto::Tls) {
            return;
        }
        let kept = c.framing[idx(from)]
            .as_mut()
            .map(|f| f.gap(bytes))
            .unwrap_or(true);
        let whose = if from == c.client { "client" } else { "server" };
        let tell = c.gap_events < GAP_EVENTS;
        c.gap_events += 1;
        if !kept {
            c.calls.lose(from == c.client);
        }
        if !tell {
            return;
        }
        let (what, text) = match why {
            GapCause::SnapLength => (
                CaptureWhat::Truncated,
                format!("{bytes} bytes from the {whose} cut by the capture's snap length (capture with -s 0 to keep them)"),
            ),
            GapCause::NotCaptured => (
                CaptureWhat::Gap,
                format!("{bytes} bytes from the {whose} are not in the capture (dropped by the capture, or captured elsewhere)"),
            ),
        };
        let text = if kept {
            text
        } else {
            format!("{text}; frame boundaries lost with them, looked for again in later segments")
        };
        self.emit(
            id,
            ts_ns,
            EventKind::Capture {
                what,
                detail: text,
                ms: None,
                bytes: Some(bytes),
            },
        );
    }

    fn fin(&mut self, flow: &Flow, from: Side, ts_ns: u64) {
        if let Some(c) = self.conns.get_mut(&flow.id) {
            c.fin[idx(from)].get_or_insert(ts_ns);
        }
    }

    fn rst(&mut self, flow: &Flow, from: Side, _ts_ns: u64) {
        if let Some(c) = self.conns.get_mut(&flow.id) {
            c.rst.get_or_insert(from);
        }
    }

    fn closed(&mut self, flow: &Flow, ts_ns: u64) {
        self.close(flow.id, ts_ns);
        self.conns.remove(&flow.id);
    }

    fn still_open(&mut self, flow: &Flow, ts_ns: u64) {
        let id = flow.id;
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if matches!(c.proto, Proto::H2 | Proto::Tls) {
            let open = c.calls.abandon();
            self.counts.calls_open_at_end += open as u64;
            self.counts.calls_unreadable += c.calls.unreadable;
            let ms = ts_ns.saturating_sub(c.opened_ns) as f64 / 1e6;
            let calls = if open > 0 {
                format!(", {open} call(s) still running")
            } else {
                String::new()
            };
            self.emit(
                id,
                ts_ns,
                EventKind::Capture {
                    what: CaptureWhat::OpenAtEnd,
                    detail: format!("still open when the capture ended{calls}"),
                    ms: Some(ms),
                    bytes: None,
                },
            );
        }
        self.conns.remove(&id);
    }
}
