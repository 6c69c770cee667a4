//! The event vocabulary: every producer (server connections, and later the
//! client's subchannels, workers, proxy and scenario timeline) emits typed
//! [`Event`]s into one bounded channel; reporters render them. The serde form
//! of `Event` is the `--output json` line format (DESIGN §4): `t_ms`, `kind`,
//! `conn`, `addr` and the kind's own fields.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::connectivity::State;
use crate::grpc::code_name;
use crate::h2wire::{ControlFrame, Dir, ErrorCode};

#[derive(Clone, Debug, Serialize)]
pub struct Event {
    /// Milliseconds since the producer's clock started.
    #[serde(serialize_with = "micros")]
    pub t_ms: f64,
    #[serde(flatten)]
    pub kind: EventKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn: Option<u64>,
    /// The peer's address (`IP:PORT` or `unix:/path`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr: Option<Arc<str>>,
}

/// Why a connection attempt failed, by kind (diagnosis reads this, never the
/// message text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectCause {
    Refused,
    Timeout,
    Unreachable,
    TlsCertificate,
    /// TLS was spoken and plaintext came back.
    PlaintextServer,
    /// Plaintext HTTP/2 was spoken and a TLS record came back.
    TlsServer,
    /// The peer answered with something that is not HTTP/2.
    NotHttp2,
    Tls,
    Closed,
    Io,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectResult {
    Ok,
    Error,
}

/// Why a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The peer closed cleanly (FIN), or a graceful drain completed.
    Eof,
    /// The peer reset the connection.
    Reset,
    /// A keepalive PING was not acknowledged in time.
    KeepaliveTimeout,
    /// GOAWAY then close: a drain finished, or too many pings.
    Goaway,
    /// Closed by this side without GOAWAY: a drain's grace ran out, or a
    /// forced stop.
    Local,
    /// An I/O, TLS or protocol error.
    Error,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eof => "eof",
            Self::Reset => "reset",
            Self::KeepaliveTimeout => "keepalive_timeout",
            Self::Goaway => "goaway",
            Self::Local => "local",
            Self::Error => "error",
        }
    }
}

/// Why a call failed, from what grpcdoc saw (not from message text).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum CallCause {
    /// The call was on a connection that had received GOAWAY (with this
    /// debug data) and the connection went away under it.
    Draining { debug: String },
    /// The server ended the call UNAVAILABLE while draining the connection
    /// (C-core's max-age grace: trailers `14 "max connection age"`).
    DrainEnded { debug: String },
    /// The server refused the stream unprocessed (GOAWAY last-stream-id or
    /// REFUSED_STREAM) and it was not retried.
    NeverProcessed,
    /// The connection failed under the call without a GOAWAY.
    ConnectionLost,
    /// No READY connection to start the call on.
    NoConnection,
    /// The deadline passed.
    Deadline,
    /// The deadline passed while the call waited for a stream slot
    /// (the server's MAX_CONCURRENT_STREAMS).
    QueuedDeadline,
    /// The server answered with this status.
    Status {
        #[serde(serialize_with = "status_code", deserialize_with = "status_code_de")]
        code: tonic::Code,
    },
    /// The server (or a hop) reset the stream with this code; the
    /// connection lived on.
    Reset {
        #[serde(serialize_with = "error_code", deserialize_with = "error_code_de")]
        code: ErrorCode,
    },
    /// An HTTP hop answered with this status and no gRPC (an error page).
    Http { status: u16 },
}

/// Why the built-in server drains a connection (also its GOAWAY's debug
/// data).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrainReason {
    MaxIdle,
    MaxAge,
    GracefulStop,
}

impl DrainReason {
    /// The name on the wire (GOAWAY debug data) and in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            DrainReason::MaxIdle => "max_idle",
            DrainReason::MaxAge => "max_age",
            DrainReason::GracefulStop => "graceful_stop",
        }
    }
}

/// A scenario step's action: the step's key in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepAction {
    ServerRestart,
    ServerStop,
    ServerStart,
    ServerSet,
    Health,
    FaultAdd,
    FaultRemove,
    BackendAdd,
    BackendRemove,
    Resolve,
    Mark,
    /// A middlebox (nginx, HAProxy, Caddy) was started in the path.
    Middlebox,
}

impl StepAction {
    pub fn as_str(self) -> &'static str {
        match self {
            StepAction::ServerRestart => "server_restart",
            StepAction::ServerStop => "server_stop",
            StepAction::ServerStart => "server_start",
            StepAction::ServerSet => "server_set",
            StepAction::Health => "health",
            StepAction::FaultAdd => "fault_add",
            StepAction::FaultRemove => "fault_remove",
            StepAction::BackendAdd => "backend_add",
            StepAction::BackendRemove => "backend_remove",
            StepAction::Resolve => "resolve",
            StepAction::Mark => "mark",
            StepAction::Middlebox => "middlebox",
        }
    }
}

impl std::fmt::Display for StepAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the built-in server stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShutdownMode {
    /// GOAWAY, then the calls finish.
    Graceful,
    /// Connections closed at once.
    Forced,
}

impl CallCause {
    /// A short name: `draining:max_age`, `connection_lost`, `status:INTERNAL`.
    pub fn key(&self) -> String {
        match self {
            CallCause::Draining { debug } => format!("draining:{debug}"),
            CallCause::DrainEnded { debug } => format!("drain_ended:{debug}"),
            CallCause::NeverProcessed => "never_processed".into(),
            CallCause::ConnectionLost => "connection_lost".into(),
            CallCause::NoConnection => "no_connection".into(),
            CallCause::Deadline => "deadline".into(),
            CallCause::QueuedDeadline => "queued_deadline".into(),
            CallCause::Status { code } => format!("status:{}", code_name(*code)),
            CallCause::Reset { code } => format!("reset:{code}"),
            CallCause::Http { status } => format!("http:{status}"),
        }
    }

    /// For people: `draining (max_age)`, `status UNAVAILABLE`, `http 504`.
    pub fn label(&self) -> String {
        match self {
            CallCause::Draining { debug } if !debug.is_empty() => format!("draining ({debug})"),
            CallCause::Draining { .. } => "draining".into(),
            CallCause::DrainEnded { debug } if !debug.is_empty() => {
                format!("drain_ended ({debug})")
            }
            CallCause::DrainEnded { .. } => "drain_ended".into(),
            CallCause::NeverProcessed => "never_processed".into(),
            CallCause::ConnectionLost => "connection_lost".into(),
            CallCause::NoConnection => "no_connection".into(),
            CallCause::Deadline => "deadline".into(),
            CallCause::QueuedDeadline => "queued_deadline".into(),
            CallCause::Status { code } => format!("status {}", code_name(*code)),
            CallCause::Reset { code } => format!("reset {code}"),
            CallCause::Http { status } => format!("http {status}"),
        }
    }

    /// Variant, then its data: the order causes are listed in.
    fn order(&self) -> (u8, &str, i64) {
        match self {
            CallCause::Draining { debug } => (0, debug, 0),
            CallCause::NeverProcessed => (1, "", 0),
            CallCause::ConnectionLost => (2, "", 0),
            CallCause::NoConnection => (3, "", 0),
            CallCause::Deadline => (4, "", 0),
            CallCause::Status { code } => (5, "", *code as i64),
            CallCause::DrainEnded { debug } => (8, debug, 0),
            CallCause::QueuedDeadline => (9, "", 0),
            CallCause::Reset { code } => (6, "", i64::from(code.0)),
            CallCause::Http { status } => (7, "", i64::from(*status)),
        }
    }
}

impl Ord for CallCause {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.order().cmp(&other.order())
    }
}

impl PartialOrd for CallCause {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

fn status_code<S: serde::Serializer>(c: &tonic::Code, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(code_name(*c))
}

fn status_code_de<'de, D: serde::Deserializer<'de>>(d: D) -> Result<tonic::Code, D::Error> {
    let name: String = serde::Deserialize::deserialize(d)?;
    crate::grpc::code_by_name(&name)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown status code `{name}`")))
}

fn error_code_de<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ErrorCode, D::Error> {
    let name: String = serde::Deserialize::deserialize(d)?;
    ErrorCode::from_name(&name)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown HTTP/2 error code `{name}`")))
}

fn cause_key<S: serde::Serializer>(c: &Option<CallCause>, s: S) -> Result<S::Ok, S::Error> {
    match c {
        Some(c) => s.serialize_str(&c.key()),
        None => s.serialize_none(),
    }
}

fn error_code<S: serde::Serializer>(c: &ErrorCode, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(c)
}

/// An attempt of a call that did not end it: the client tried again.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallAttempt {
    pub conn: u64,
    pub stream: u32,
    /// How it ended (`never processed: REFUSED_STREAM`, ...).
    pub end: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// A server or proxy is accepting connections.
    Listening { listen: SocketAddr },
    /// A connectivity state change of a subchannel, or of the whole channel
    /// (`channel: true`).
    State {
        from: State,
        to: State,
        reason: String,
        channel: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        subchannel: Option<u64>,
    },
    /// A connection attempt finished: TCP connect, TLS, HTTP/2 handshake up to
    /// the server's SETTINGS.
    Connect {
        result: ConnectResult,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// What kind of failure, for diagnosis.
        #[serde(skip_serializing_if = "Option::is_none")]
        cause: Option<ConnectCause>,
        #[serde(serialize_with = "micros")]
        elapsed_ms: f64,
        subchannel: u64,
    },
    /// Waiting before the next connection attempt.
    Backoff {
        #[serde(serialize_with = "micros")]
        delay_ms: f64,
        attempt: u32,
        subchannel: u64,
    },
    /// The target's addresses (or why they could not be resolved).
    Resolve {
        addrs: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A call finished (a probe, or a load call).
    Rpc {
        method: String,
        #[serde(serialize_with = "status_code")]
        code: tonic::Code,
        #[serde(skip_serializing_if = "String::is_empty")]
        message: String,
        #[serde(serialize_with = "micros")]
        latency_ms: f64,
        /// Why it failed (load's failure causes), for diagnosis.
        #[serde(skip_serializing_if = "Option::is_none", serialize_with = "cause_key")]
        cause: Option<CallCause>,
        /// Earlier attempts of the same call that the client retried (the
        /// proxy's tap), oldest first.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        attempts: Vec<CallAttempt>,
    },
    /// A scenario step was played.
    Step { action: StepAction, detail: String },
    /// Any other frame, with `--frames`.
    Frame {
        dir: Dir,
        #[serde(rename = "type")]
        frame_type: crate::h2wire::FrameType,
        flags: u8,
        stream_id: u32,
        length: u32,
    },
    /// A connection was accepted.
    Accepted { tls: bool },
    Settings {
        dir: Dir,
        ack: bool,
        settings: BTreeMap<String, u32>,
    },
    Goaway {
        dir: Dir,
        #[serde(serialize_with = "error_code")]
        code: ErrorCode,
        last_stream_id: u32,
        debug: String,
        /// Streams open on the connection when it came (a received GOAWAY,
        /// where the producer knows).
        #[serde(skip_serializing_if = "Option::is_none")]
        open_streams: Option<u64>,
        /// How long no stream had been open on the connection before it
        /// (0 while one was): what tells an idle drain from an age drain.
        #[serde(skip_serializing_if = "Option::is_none", serialize_with = "micros_opt")]
        quiet_ms: Option<f64>,
    },
    Ping {
        dir: Dir,
        ack: bool,
        #[serde(skip_serializing_if = "Option::is_none", serialize_with = "micros_opt")]
        rtt_ms: Option<f64>,
    },
    RstStream {
        dir: Dir,
        stream_id: u32,
        #[serde(serialize_with = "error_code")]
        code: ErrorCode,
    },
    /// A client PING broke the server's keepalive enforcement policy (A8).
    PingStrike {
        strikes: u32,
        max_strikes: u32,
        /// Time since the client's previous PING, if there was one.
        #[serde(skip_serializing_if = "Option::is_none", serialize_with = "micros_opt")]
        since_last_ping_ms: Option<f64>,
        /// The shortest interval the policy allows here.
        #[serde(serialize_with = "micros")]
        min_interval_ms: f64,
    },
    /// What a client-side health check (gRFC A17) answered on a
    /// connection.
    Health {
        answer: HealthAnswer,
        #[serde(skip_serializing_if = "String::is_empty")]
        detail: String,
    },
    /// A connection (or the whole server) started a graceful drain.
    Drain { reason: DrainReason },
    Closed {
        reason: CloseReason,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// Why this side closed, when it did (e.g. `max_age_grace`).
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        #[serde(serialize_with = "micros")]
        lifetime_ms: f64,
        streams: u64,
    },
    /// A chaos proxy fault acted (or was refused).
    Fault { name: String, detail: String },
    /// The server stops: `graceful` (drain) or `forced` (close now).
    Shutdown { mode: ShutdownMode },
    /// Events lost because the reporter fell behind (never blocks producers).
    Dropped { count: u64 },
    /// What a packet capture shows that no live event says (`grpcdoc
    /// pcap`): a connection seen, TLS, bytes the capture lacks, silence
    /// before a close.
    Capture {
        what: CaptureWhat,
        detail: String,
        /// A duration, for `idle` and `open_at_end`.
        #[serde(skip_serializing_if = "Option::is_none", serialize_with = "micros_opt")]
        ms: Option<f64>,
        /// A byte count, for `gap` and `truncated`.
        #[serde(skip_serializing_if = "Option::is_none")]
        bytes: Option<u64>,
    },
}

/// A health check's answer, typed (`health` events).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthAnswer {
    Serving,
    NotServing,
    /// The server does not know the service name asked about (grpc-go's
    /// SERVICE_UNKNOWN, tonic's NOT_FOUND).
    ServiceUnknown,
    Unknown,
    /// The server has no health service: taken as serving (A17).
    Unimplemented,
    /// The Watch call failed or ended.
    Failed,
}

/// What a `capture` event tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureWhat {
    /// A TCP connection: its client and server, and whether its SYN is in
    /// the capture.
    Open,
    /// HTTP/2 found on a connection the capture joined midway: frames are
    /// read, headers only where HPACK allows.
    Midway,
    /// TLS: only what TCP shows (open, silences, FIN/RST, who closed).
    Tls,
    /// Bytes of one direction missing from the capture.
    Gap,
    /// Bytes cut from packets by the capture's snap length.
    Truncated,
    /// Frame boundaries lost after a gap (found again later, or not).
    FramesLost,
    /// A header block could not be decoded: the calls on this direction
    /// cannot be read from here on.
    HeadersUnknown,
    /// No byte either way for `ms` before the close.
    Idle,
    /// The capture ended with the connection open (`ms`: how long it had
    /// been open).
    OpenAtEnd,
}

impl CaptureWhat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Midway => "midway",
            Self::Tls => "tls",
            Self::Gap => "gap",
            Self::Truncated => "truncated",
            Self::FramesLost => "frames_lost",
            Self::HeadersUnknown => "headers_unknown",
            Self::Idle => "idle",
            Self::OpenAtEnd => "open_at_end",
        }
    }
}

impl EventKind {
    /// The event for a control frame, if it is one grpcdoc reports.
    /// WINDOW_UPDATE is left out: it follows every DATA frame and says nothing
    /// about connection health.
    pub fn from_frame(dir: Dir, frame: &ControlFrame) -> Option<Self> {
        Some(match frame {
            ControlFrame::Settings { ack, params } => EventKind::Settings {
                dir,
                ack: *ack,
                settings: params
                    .iter()
                    .map(|(id, v)| {
                        let name = crate::h2wire::frame::setting::name(*id)
                            .map(str::to_string)
                            .unwrap_or_else(|| format!("0x{id:x}"));
                        (name, *v)
                    })
                    .collect(),
            },
            ControlFrame::Ping { ack, .. } => EventKind::Ping {
                dir,
                ack: *ack,
                rtt_ms: None,
            },
            ControlFrame::GoAway {
                last_stream_id,
                code,
                debug,
            } => EventKind::Goaway {
                dir,
                code: *code,
                last_stream_id: *last_stream_id,
                debug: String::from_utf8_lossy(debug).into_owned(),
                open_streams: None,
                quiet_ms: None,
            },
            ControlFrame::RstStream { stream_id, code } => EventKind::RstStream {
                dir,
                stream_id: *stream_id,
                code: *code,
            },
            ControlFrame::WindowUpdate { .. } => return None,
        })
    }
}

/// Milliseconds rounded to the microsecond: what the clocks measure, not
/// the float's noise (`12.345`, not `12.345000000000001`).
pub fn round_micros(ms: f64) -> f64 {
    (ms * 1e3).round() / 1e3
}

pub fn micros<S: serde::Serializer>(ms: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(round_micros(*ms))
}

fn micros_opt<S: serde::Serializer>(ms: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => s.serialize_f64(round_micros(*ms)),
        None => s.serialize_none(),
    }
}

/// Where producers put events. Cloning is cheap; `emit` never waits: when the
/// channel is full the event is counted as dropped.
#[derive(Clone)]
pub struct EventSink {
    tx: mpsc::Sender<Event>,
    start: Instant,
    dropped: Arc<AtomicU64>,
}

impl EventSink {
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel(capacity);
        (
            Self {
                tx,
                start: Instant::now(),
                dropped: Arc::default(),
            },
            rx,
        )
    }

    /// Like [`EventSink::channel`], with times counted from `start` (several
    /// sinks on one clock).
    pub fn channel_at(capacity: usize, start: Instant) -> (Self, mpsc::Receiver<Event>) {
        let (mut sink, rx) = Self::channel(capacity);
        sink.start = start;
        (sink, rx)
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    pub fn emit(&self, conn: Option<u64>, addr: Option<Arc<str>>, kind: EventKind) {
        let event = Event {
            t_ms: self.start.elapsed().as_secs_f64() * 1e3,
            kind,
            conn,
            addr,
        };
        if self.tx.try_send(event).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events lost so far because the channel was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The drop counter, for a consumer that reports losses as they happen
    /// (holding it does not keep the channel open).
    pub fn drop_counter(&self) -> Arc<AtomicU64> {
        self.dropped.clone()
    }
}

/// One connection's events, held back until the connection's start has
/// been reported: a connection's `connect` and READY come before anything
/// else of it, also when its first frames (a GOAWAY right after the
/// SETTINGS, say) arrive before the dialer has said it is up. Once
/// released, events pass straight through.
#[derive(Clone)]
pub struct HeldSink {
    sink: EventSink,
    released: Arc<std::sync::atomic::AtomicBool>,
    held: Arc<std::sync::Mutex<Vec<HeldEvent>>>,
}

/// An event waiting for its connection's release: connection, address, kind.
type HeldEvent = (Option<u64>, Option<Arc<str>>, EventKind);

/// At most this many frame events wait for a release; more are counted as
/// dropped.
const MAX_HELD: usize = 1024;

impl HeldSink {
    pub fn new(sink: EventSink) -> Self {
        Self {
            sink,
            released: Arc::default(),
            held: Arc::default(),
        }
    }

    pub fn emit(&self, conn: Option<u64>, addr: Option<Arc<str>>, kind: EventKind) {
        if self.released.load(Ordering::Acquire) {
            return self.sink.emit(conn, addr, kind);
        }
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        // Released while this waited for the lock: the held ones are out.
        if self.released.load(Ordering::Acquire) {
            drop(held);
            return self.sink.emit(conn, addr, kind);
        }
        // A flood of frames before the release loses frames, never the
        // connection's own story (at most one connect and close, a few states).
        let story = matches!(
            kind,
            EventKind::Connect { .. } | EventKind::Closed { .. } | EventKind::State { .. }
        );
        if held.len() >= MAX_HELD && !story {
            self.sink.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        held.push((conn, addr, kind));
    }

    /// Emits what was held, in order, and lets every later event through.
    pub fn release(&self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        for (conn, addr, kind) in held.drain(..) {
            self.sink.emit(conn, addr, kind);
        }
        self.released.store(true, Ordering::Release);
    }

    /// The sink events go to once released.
    pub fn sink(&self) -> &EventSink {
        &self.sink
    }
}

/// How GOAWAYs are counted in summaries: the code, and the debug data when
/// there is some (`NO_ERROR "max_age"`).
pub fn goaway_key(code: ErrorCode, debug: &str) -> String {
    if debug.is_empty() {
        code.to_string()
    } else if debug.chars().count() > 64 {
        let cut: String = debug.chars().take(64).collect();
        format!("{code} {cut:?}...")
    } else {
        format!("{code} {debug:?}")
    }
}

/// Adds `n` to `key` in a tally that holds at most `cap` keys; the rest are
/// counted under `(other)`, so a peer sending ever new values cannot grow it.
pub fn count_capped(
    tally: &mut std::collections::BTreeMap<String, u32>,
    key: String,
    n: u32,
    cap: usize,
) {
    let key = if tally.len() >= cap && !tally.contains_key(&key) {
        "(other)".to_string()
    } else {
        key
    };
    *tally.entry(key).or_default() += n;
}

/// An error and its causes, `outer: inner: root` (repeats left out): what
/// hyper's own Display leaves out.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let e = Event {
            t_ms: 1.5,
            kind: EventKind::Goaway {
                dir: Dir::Sent,
                code: ErrorCode::NO_ERROR,
                last_stream_id: 2147483647,
                debug: "max_idle".into(),
                open_streams: None,
                quiet_ms: None,
            },
            conn: Some(3),
            addr: Some("127.0.0.1:5000".into()),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"t_ms": 1.5, "kind": "goaway", "dir": "sent", "code": "NO_ERROR",
                "last_stream_id": 2147483647u32, "debug": "max_idle", "conn": 3, "addr": "127.0.0.1:5000"})
        );
    }

    #[test]
    fn held_events_follow_the_release_in_order() {
        let (sink, mut rx) = EventSink::channel(16);
        let held = HeldSink::new(sink.clone());
        held.emit(
            Some(1),
            None,
            EventKind::Fault {
                name: "a".into(),
                detail: String::new(),
            },
        );
        sink.emit(
            Some(1),
            None,
            EventKind::Fault {
                name: "connect".into(),
                detail: String::new(),
            },
        );
        held.release();
        held.emit(
            Some(1),
            None,
            EventKind::Fault {
                name: "b".into(),
                detail: String::new(),
            },
        );
        let order: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|e| match e.kind {
                EventKind::Fault { name, .. } => name,
                _ => String::new(),
            })
            .collect();
        assert_eq!(order, ["connect", "a", "b"]);
    }

    #[test]
    fn a_frame_flood_before_the_release_keeps_the_close() {
        let (sink, mut rx) = EventSink::channel(4 * MAX_HELD);
        let held = HeldSink::new(sink.clone());
        for _ in 0..2 * MAX_HELD {
            held.emit(
                Some(1),
                None,
                EventKind::Fault {
                    name: "f".into(),
                    detail: String::new(),
                },
            );
        }
        held.emit(
            Some(1),
            None,
            EventKind::Closed {
                reason: CloseReason::Local,
                error: Some("PROTOCOL_ERROR".into()),
                detail: None,
                lifetime_ms: 1.0,
                streams: 0,
            },
        );
        held.release();
        let got: Vec<Event> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(got.len(), MAX_HELD + 1);
        assert!(matches!(
            got.last().map(|e| &e.kind),
            Some(EventKind::Closed { .. })
        ));
        assert_eq!(sink.dropped(), MAX_HELD as u64);
    }

    #[test]
    fn full_channel_counts_drops() {
        let (sink, _rx) = EventSink::channel(1);
        sink.emit(None, None, EventKind::Accepted { tls: false });
        sink.emit(None, None, EventKind::Accepted { tls: false });
        assert_eq!(sink.dropped(), 1);
    }
}

#[cfg(test)]
mod tally_tests {
    use super::*;

    #[test]
    fn tallies_and_keys_stay_bounded() {
        let mut t = std::collections::BTreeMap::new();
        for i in 0..1000 {
            count_capped(
                &mut t,
                goaway_key(ErrorCode::NO_ERROR, &format!("reason {i}")),
                1,
                8,
            );
        }
        assert_eq!(t.len(), 9);
        assert_eq!(t["(other)"], 992);
        let long = "x".repeat(100_000);
        assert!(goaway_key(ErrorCode::NO_ERROR, &long).len() < 100);
    }
}
