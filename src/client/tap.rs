//! The client's view of one connection's frames: events for every control
//! frame (and every frame with `--frames`), the server's SETTINGS (the
//! connection is READY, backoff resets), the first GOAWAY (stop new streams
//! on this connection at once), read activity and ping round trips for
//! keepalive.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::event::{EventKind, HeldSink};
use crate::h2wire::frame::setting;
use crate::h2wire::{ControlFrame, Dir, ErrorCode, FrameHeader, FrameHook, FrameType};

/// Payload of grpcdoc's own keepalive PINGs.
pub const KEEPALIVE_PING: [u8; 8] = *b"gdoc-kap";

/// The GOAWAY that ended new streams on a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoAway {
    pub code: ErrorCode,
    pub last_stream_id: u32,
    pub debug: Bytes,
}

impl GoAway {
    pub fn debug_text(&self) -> String {
        String::from_utf8_lossy(&self.debug).into_owned()
    }
}

/// State of one client connection, shared by its tap (inside the driver's poll),
/// its driver task, the subchannel and the calls on it.
pub struct ConnShared {
    pub id: u64,
    pub addr: Arc<str>,
    start: Instant,
    last_read_ns: AtomicU64,
    /// Streams open on this connection, and opened in all.
    pub active: AtomicUsize,
    /// When a stream last opened or ended (ns since `start`; 0: none yet).
    last_stream_ns: AtomicU64,
    total: AtomicU64,
    /// The first bytes the server sent (up to 9), to tell TLS or HTTP/1
    /// from HTTP/2 when the handshake fails.
    first_bytes: Mutex<Vec<u8>>,
    /// Set on the first GOAWAY: no new stream may start here.
    pub draining: AtomicBool,
    pub goaway: Mutex<Option<GoAway>>,
    settings_seen: AtomicBool,
    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS (u32::MAX: none).
    pub max_concurrent_streams: AtomicU32,
    /// Woken on the server's SETTINGS, on GOAWAY, on close.
    pub changed: Notify,
    /// Round-trip times of our keepalive pings, most recent last (bounded).
    pub rtts: Mutex<Vec<Duration>>,
    /// PING ACKs received (payload and when), most recent last (bounded),
    /// for pings sent by hand ([`super::conn::Conn::ping`]).
    acks: Mutex<std::collections::VecDeque<([u8; 8], Instant)>>,
    /// Woken on every PING ACK received.
    pub acked: Notify,
}

impl ConnShared {
    pub fn new(id: u64, addr: Arc<str>) -> Self {
        Self {
            id,
            addr,
            start: Instant::now(),
            last_read_ns: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            last_stream_ns: AtomicU64::new(0),
            total: AtomicU64::new(0),
            first_bytes: Mutex::new(Vec::new()),
            draining: AtomicBool::new(false),
            goaway: Mutex::new(None),
            settings_seen: AtomicBool::new(false),
            max_concurrent_streams: AtomicU32::new(u32::MAX),
            changed: Notify::new(),
            rtts: Mutex::new(Vec::new()),
            acks: Mutex::new(std::collections::VecDeque::new()),
            acked: Notify::new(),
        }
    }

    /// When the ACK of a PING with this payload arrived, if it has.
    pub fn ack_of(&self, data: &[u8; 8]) -> Option<Instant> {
        let acks = self.acks.lock().ok()?;
        acks.iter().rev().find(|(d, _)| d == data).map(|(_, t)| *t)
    }

    pub fn last_read(&self) -> Instant {
        self.start + Duration::from_nanos(self.last_read_ns.load(Ordering::Acquire))
    }

    pub fn settings_seen(&self) -> bool {
        self.settings_seen.load(Ordering::Acquire)
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    pub fn goaway(&self) -> Option<GoAway> {
        self.goaway.lock().ok().and_then(|g| g.clone())
    }

    pub fn active_streams(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    pub fn total_streams(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub fn stream_started(&self) {
        self.active.fetch_add(1, Ordering::AcqRel);
        self.total.fetch_add(1, Ordering::Relaxed);
        self.touch_streams();
    }

    pub fn stream_ended(&self) {
        self.active.fetch_sub(1, Ordering::AcqRel);
        self.touch_streams();
    }

    fn touch_streams(&self) {
        let ns = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last_stream_ns.store(ns.max(1), Ordering::Release);
    }

    /// How long no stream has been open here: zero while one is, the
    /// connection's age when none ever was.
    pub fn quiet(&self) -> Duration {
        if self.active_streams() > 0 {
            return Duration::ZERO;
        }
        let last = Duration::from_nanos(self.last_stream_ns.load(Ordering::Acquire));
        self.start.elapsed().saturating_sub(last)
    }

    /// What the server sent first, if anything.
    pub fn first_bytes(&self) -> Option<Vec<u8>> {
        self.first_bytes
            .lock()
            .ok()
            .map(|f| f.clone())
            .filter(|f| !f.is_empty())
    }
}

pub struct ClientTap {
    pub shared: Arc<ConnShared>,
    pub events: HeldSink,
    /// Report every frame, not only control frames.
    pub frames: bool,
    ping_sent: Option<Instant>,
}

impl ClientTap {
    pub fn new(shared: Arc<ConnShared>, events: HeldSink, frames: bool) -> Self {
        Self {
            shared,
            events,
            frames,
            ping_sent: None,
        }
    }

    fn emit(&self, kind: EventKind) {
        self.events
            .emit(Some(self.shared.id), Some(self.shared.addr.clone()), kind);
    }
}

impl FrameHook for ClientTap {
    fn first_bytes(&mut self, dir: Dir, bytes: &[u8]) {
        if dir == Dir::Received {
            if let Ok(mut f) = self.shared.first_bytes.lock() {
                f.extend_from_slice(bytes);
            }
        }
    }

    fn observe(&mut self, dir: Dir, header: &FrameHeader, payload: &[u8]) {
        let s = &self.shared;
        if dir == Dir::Received {
            let ns = u64::try_from(s.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            s.last_read_ns.store(ns, Ordering::Release);
        }
        let frame = if header.kind.is_control() {
            ControlFrame::parse(header, payload).ok()
        } else {
            None
        };
        let Some(frame) = frame else {
            if self.frames {
                self.emit(EventKind::Frame {
                    dir,
                    frame_type: header.kind,
                    flags: header.flags,
                    stream_id: header.stream_id,
                    length: header.length,
                });
            }
            return;
        };
        let mut rtt = None;
        match (&frame, dir) {
            (ControlFrame::Settings { ack: false, params }, Dir::Received) => {
                for (id, v) in params {
                    if *id == setting::MAX_CONCURRENT_STREAMS {
                        s.max_concurrent_streams.store(*v, Ordering::Release);
                    }
                }
                s.settings_seen.store(true, Ordering::Release);
                s.changed.notify_waiters();
            }
            (
                ControlFrame::GoAway {
                    last_stream_id,
                    code,
                    debug,
                },
                Dir::Received,
            ) => {
                if let Ok(mut g) = s.goaway.lock() {
                    if g.is_none() {
                        *g = Some(GoAway {
                            code: *code,
                            last_stream_id: *last_stream_id,
                            debug: debug.clone(),
                        });
                    }
                }
                s.draining.store(true, Ordering::Release);
                s.changed.notify_waiters();
            }
            (ControlFrame::Ping { ack: false, data }, Dir::Sent) if *data == KEEPALIVE_PING => {
                self.ping_sent = Some(Instant::now());
            }
            (ControlFrame::Ping { ack: true, data }, Dir::Received) if *data != KEEPALIVE_PING => {
                if let Ok(mut a) = s.acks.lock() {
                    if a.len() >= 64 {
                        a.pop_front();
                    }
                    a.push_back((*data, Instant::now()));
                }
                s.acked.notify_waiters();
            }
            (ControlFrame::Ping { ack: true, data }, Dir::Received) if *data == KEEPALIVE_PING => {
                rtt = self.ping_sent.take().map(|t| t.elapsed());
                if let (Some(d), Ok(mut v)) = (rtt, s.rtts.lock()) {
                    if v.len() >= 1024 {
                        v.remove(0);
                    }
                    v.push(d);
                }
            }
            _ => {}
        }
        match EventKind::from_frame(dir, &frame) {
            Some(EventKind::Ping { dir, ack, .. }) => self.emit(EventKind::Ping {
                dir,
                ack,
                rtt_ms: rtt.map(|d| d.as_secs_f64() * 1e3),
            }),
            Some(EventKind::Goaway {
                dir: Dir::Received,
                code,
                last_stream_id,
                debug,
                ..
            }) => self.emit(EventKind::Goaway {
                dir: Dir::Received,
                code,
                last_stream_id,
                debug,
                open_streams: Some(s.active_streams() as u64),
                quiet_ms: Some(s.quiet().as_secs_f64() * 1e3),
            }),
            Some(kind) => self.emit(kind),
            None if self.frames => self.emit(EventKind::Frame {
                dir,
                frame_type: FrameType::WindowUpdate,
                flags: header.flags,
                stream_id: header.stream_id,
                length: header.length,
            }),
            None => {}
        }
    }
}
