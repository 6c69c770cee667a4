//! The server's view of one connection's frames: keepalive ping enforcement
//! (gRFC A8, as grpc-go's `http2Server.handlePing`), read activity for server
//! keepalive, GOAWAY debug data on hyper's drain, and frame events.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::event::{EventKind, EventSink};
use crate::h2wire::{
    ControlFrame, Dir, ErrorCode, FrameHeader, FrameHook, FrameType, Injector, Verdict,
};

/// Strikes allowed before GOAWAY ENHANCE_YOUR_CALM (grpc-go `maxPingStrikes`).
pub const MAX_PING_STRIKES: u32 = 2;
/// Without active streams and without permit-without-stream, a client should
/// not ping at all; grpc-go then allows one ping per 2 h (`defaultPingTimeout`).
const PING_INTERVAL_WITHOUT_STREAMS: Duration = Duration::from_secs(2 * 60 * 60);
/// The payload of the server's own keepalive PINGs.
pub const KEEPALIVE_PING: [u8; 8] = *b"gdoc-ka\0";

/// State of one connection shared by its tap (inside hyper's poll), the
/// stream counter (inside the service) and its manager task.
pub struct ConnState {
    start: Instant,
    active: AtomicUsize,
    total: AtomicU64,
    /// Nanoseconds since `start` when the last stream ended.
    idle_since_ns: AtomicU64,
    /// Nanoseconds since `start` of the last frame read.
    last_read_ns: AtomicU64,
    /// Woken when the last active stream ends.
    pub idle: Notify,
    /// Debug data for the GOAWAYs of a drain under way.
    drain_debug: Mutex<Option<Bytes>>,
    /// The highest stream id the client opened.
    max_stream_id: AtomicU32,
    /// The highest stream id opened when the connection last became idle:
    /// every stream up to it was processed.
    idle_last_id: AtomicU32,
    /// Set by the tap when it closes the connection itself.
    pub closed_by_tap: Mutex<Option<&'static str>>,
}

impl ConnState {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            active: AtomicUsize::new(0),
            total: AtomicU64::new(0),
            idle_since_ns: AtomicU64::new(0),
            last_read_ns: AtomicU64::new(0),
            idle: Notify::new(),
            drain_debug: Mutex::new(None),
            max_stream_id: AtomicU32::new(0),
            idle_last_id: AtomicU32::new(0),
            closed_by_tap: Mutex::new(None),
        }
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn at(&self, ns: u64) -> Instant {
        self.start + Duration::from_nanos(ns)
    }

    pub fn stream_started(&self) {
        self.active.fetch_add(1, Ordering::AcqRel);
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stream_ended(&self) {
        self.idle_since_ns.store(self.now_ns(), Ordering::Release);
        if self.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle_last_id.store(
                self.max_stream_id.load(Ordering::Acquire),
                Ordering::Release,
            );
            self.idle.notify_one();
        }
    }

    /// A stream opened while idle that never started (reset before it was
    /// dispatched) no longer keeps the connection from being idle.
    pub fn settle_idle(&self) {
        if self.active_streams() == 0 {
            self.idle_last_id.store(
                self.max_stream_id.load(Ordering::Acquire),
                Ordering::Release,
            );
        }
    }

    /// The last stream processed, if the connection is still idle: no
    /// stream was opened since it became idle (one whose HEADERS were read
    /// but that is not dispatched yet counts as opened).
    pub fn idle_last_stream(&self) -> Option<u32> {
        let last = self.idle_last_id.load(Ordering::Acquire);
        (self.active_streams() == 0 && self.max_stream_id() == last).then_some(last)
    }

    pub fn active_streams(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    pub fn total_streams(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// When the connection became idle, if it is.
    pub fn idle_since(&self) -> Option<Instant> {
        (self.active_streams() == 0).then(|| self.at(self.idle_since_ns.load(Ordering::Acquire)))
    }

    /// The highest stream id the client opened so far.
    pub fn max_stream_id(&self) -> u32 {
        self.max_stream_id.load(Ordering::Acquire)
    }

    /// Marks the connection as closed by its own side for `reason`; false
    /// when something else closed it first.
    pub fn claim_close(&self, reason: &'static str) -> bool {
        match self.closed_by_tap.lock() {
            Ok(mut c) if c.is_none() => {
                *c = Some(reason);
                true
            }
            _ => false,
        }
    }

    pub fn last_read(&self) -> Instant {
        self.at(self.last_read_ns.load(Ordering::Acquire))
    }

    /// Arms the GOAWAY rewrite for a drain with this debug data.
    pub fn set_drain_debug(&self, debug: &'static str) {
        if let Ok(mut d) = self.drain_debug.lock() {
            *d = Some(Bytes::from_static(debug.as_bytes()));
        }
    }

    fn drain_debug(&self) -> Option<Bytes> {
        self.drain_debug.lock().ok().and_then(|d| d.clone())
    }
}

impl Default for ConnState {
    fn default() -> Self {
        Self::new()
    }
}

/// Settings of the ping enforcement policy.
#[derive(Clone, Copy, Debug)]
pub struct PingPolicy {
    pub min_time: Duration,
    pub permit_without_stream: bool,
}

pub struct ServerTap {
    pub conn: u64,
    pub peer: std::sync::Arc<str>,
    pub state: std::sync::Arc<ConnState>,
    pub events: EventSink,
    pub injector: Injector,
    pub policy: PingPolicy,
    last_ping: Option<Instant>,
    strikes: u32,
    /// grpc-go resets the strikes when the server sends HEADERS or DATA.
    reset_strikes: bool,
    keepalive_sent: Option<Instant>,
}

impl ServerTap {
    pub fn new(
        conn: u64,
        peer: std::sync::Arc<str>,
        state: std::sync::Arc<ConnState>,
        events: EventSink,
        injector: Injector,
        policy: PingPolicy,
    ) -> Self {
        Self {
            conn,
            peer,
            state,
            events,
            injector,
            policy,
            last_ping: None,
            strikes: 0,
            reset_strikes: false,
            keepalive_sent: None,
        }
    }

    fn emit(&self, kind: EventKind) {
        self.events
            .emit(Some(self.conn), Some(self.peer.clone()), kind);
    }

    /// gRFC A8 enforcement, with grpc-go's arithmetic: a ping closer than the
    /// allowed interval to the previous one is a strike; more than
    /// [`MAX_PING_STRIKES`] strikes get GOAWAY(ENHANCE_YOUR_CALM,
    /// "too_many_pings") and the connection is closed.
    fn enforce(&mut self) {
        let now = Instant::now();
        let last = self.last_ping.replace(now);
        if std::mem::take(&mut self.reset_strikes) {
            self.strikes = 0;
            return;
        }
        let allowed = if self.state.active_streams() == 0 && !self.policy.permit_without_stream {
            PING_INTERVAL_WITHOUT_STREAMS
        } else {
            self.policy.min_time
        };
        let Some(last) = last else { return };
        let since = now.duration_since(last);
        if since >= allowed {
            return;
        }
        self.strikes += 1;
        self.emit(EventKind::PingStrike {
            strikes: self.strikes,
            max_strikes: MAX_PING_STRIKES,
            since_last_ping_ms: Some(since.as_secs_f64() * 1e3),
            min_interval_ms: allowed.as_secs_f64() * 1e3,
        });
        if self.strikes > MAX_PING_STRIKES {
            if !self.state.claim_close("too_many_pings") {
                return;
            }
            self.injector.inject(
                ControlFrame::GoAway {
                    last_stream_id: self.state.max_stream_id(),
                    code: ErrorCode::ENHANCE_YOUR_CALM,
                    debug: Bytes::from_static(b"too_many_pings"),
                }
                .encode(),
            );
            self.injector.close_after_flush();
        }
    }
}

impl FrameHook for ServerTap {
    fn observe(&mut self, dir: Dir, header: &FrameHeader, payload: &[u8]) {
        match dir {
            Dir::Received => {
                self.state
                    .last_read_ns
                    .store(self.state.now_ns(), Ordering::Release);
                if header.kind == FrameType::Headers {
                    self.state
                        .max_stream_id
                        .fetch_max(header.stream_id, Ordering::AcqRel);
                    return;
                }
            }
            Dir::Sent => {
                if matches!(header.kind, FrameType::Headers | FrameType::Data) {
                    self.reset_strikes = true;
                    return;
                }
            }
        }
        if !header.kind.is_control() {
            return;
        }
        let Ok(frame) = ControlFrame::parse(header, payload) else {
            return;
        };
        let mut rtt = None;
        if let ControlFrame::Ping { ack, data } = &frame {
            match (dir, ack) {
                (Dir::Received, false) => self.enforce(),
                (Dir::Sent, false) if *data == KEEPALIVE_PING => {
                    self.keepalive_sent = Some(Instant::now())
                }
                (Dir::Received, true) if *data == KEEPALIVE_PING => {
                    rtt = self.keepalive_sent.take().map(|t| t.elapsed());
                }
                _ => {}
            }
        }
        if let Some(mut kind) = EventKind::from_frame(dir, &frame) {
            if let EventKind::Ping { rtt_ms, .. } = &mut kind {
                *rtt_ms = rtt.map(|d| d.as_secs_f64() * 1e3);
            }
            self.emit(kind);
        }
    }

    fn intercept(&mut self, header: &FrameHeader) -> bool {
        header.kind == FrameType::GoAway && self.state.drain_debug().is_some()
    }

    /// Adds the drain's reason to hyper's own GOAWAYs (which carry no debug
    /// data), as grpc-go does for `max_idle`, `max_age` and `graceful_stop`.
    fn rewrite(&mut self, header: &FrameHeader, payload: &[u8]) -> Verdict {
        match (
            ControlFrame::parse(header, payload),
            self.state.drain_debug(),
        ) {
            (
                Ok(ControlFrame::GoAway {
                    last_stream_id,
                    code,
                    debug,
                }),
                Some(reason),
            ) if debug.is_empty() => Verdict::Replace(
                ControlFrame::GoAway {
                    last_stream_id,
                    code,
                    debug: reason,
                }
                .encode(),
            ),
            _ => Verdict::Forward,
        }
    }
}
