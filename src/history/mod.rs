//! One history of each connection, folded from the event stream once: when
//! it became READY, the peer's SETTINGS, its drains (a connection's
//! GOAWAYs of one drain together, with the streams open and the quiet
//! before it), PINGs each way and whether they were answered, resets,
//! calls, faults applied, and how it closed and who closed it. Every
//! reader of a connection's past - the diagnosis first - reads it here
//! instead of keeping its own.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use crate::event::{CloseReason, ConnectResult, Event, EventKind};
use crate::h2wire::frame::MAX_STREAM_ID;
use crate::h2wire::{Dir, ErrorCode};

/// Kept per connection: the last few PINGs and faults, not all of them.
const KEEP: usize = 32;
/// Connections kept after they closed (a long `serve` sees many).
const KEEP_CLOSED: usize = 4096;
/// Drains kept for comparing ages and quiet times.
const KEEP_DRAINS: usize = 64;

/// A connection's GOAWAYs that announce one drain: grpc-go's graceful
/// pattern (2^31-1, a PING, then the last stream processed) is one drain;
/// so is C-core's single GOAWAY.
#[derive(Clone, Debug)]
pub struct Drain {
    pub conn: u64,
    /// Who sent it: `Received` on a client, `Sent` on a server.
    pub dir: Dir,
    /// When its first GOAWAY came.
    pub at_ms: f64,
    pub code: ErrorCode,
    pub debug: String,
    /// The last-stream-id of its latest GOAWAY.
    pub last_stream_id: u32,
    /// The first GOAWAY said 2^31-1 (a drain announced before the last
    /// stream is known: grpc-go's graceful pattern).
    pub announced: bool,
    pub goaways: u32,
    /// The connection's age when it came (from READY).
    pub age_ms: Option<f64>,
    /// Streams open then, and how long none had been (where known).
    pub open_streams: Option<u64>,
    pub quiet_ms: Option<f64>,
    /// The client had sent PINGs on this connection before it.
    pub after_pings: u32,
}

impl Drain {
    /// The connection was in use when the drain came: a stream open, or
    /// one within the last second.
    pub fn busy(&self) -> Option<bool> {
        match (self.open_streams, self.quiet_ms) {
            (Some(n), _) if n > 0 => Some(true),
            (_, Some(q)) => Some(q < 1000.0),
            _ => None,
        }
    }
}

/// A PING from the peer, and when it was answered.
#[derive(Clone, Copy, Debug)]
pub struct PeerPing {
    pub at_ms: f64,
    pub acked_ms: Option<f64>,
}

/// How a connection ended.
#[derive(Clone, Debug)]
pub struct Close {
    pub at_ms: f64,
    pub reason: CloseReason,
    pub detail: Option<String>,
    pub error: Option<String>,
    /// Streams it carried in its life.
    pub streams: u64,
}

/// Calls seen on a connection.
#[derive(Clone, Copy, Debug, Default)]
pub struct Calls {
    pub ok: u64,
    pub failed: u64,
    pub last_end_ms: Option<f64>,
}

/// One connection's history.
#[derive(Clone, Debug, Default)]
pub struct Conn {
    pub id: u64,
    pub addr: Option<Arc<str>>,
    /// When it was READY (connected, accepted, or first seen in a capture).
    pub ready_ms: Option<f64>,
    pub peer_settings: Option<BTreeMap<String, u32>>,
    pub drains: Vec<Drain>,
    /// PINGs this side sent (not ACKs), most recent last.
    pub pings_sent_ms: VecDeque<f64>,
    /// The peer's PINGs, most recent last.
    pub peer_pings: VecDeque<PeerPing>,
    pub resets: u32,
    pub strikes: u32,
    pub calls: Calls,
    pub faults: VecDeque<(f64, String)>,
    pub close: Option<Close>,
}

impl Conn {
    /// The drain in progress, if any.
    pub fn drain(&self) -> Option<&Drain> {
        self.drains.last()
    }

    /// Its age at `t_ms`, from READY.
    pub fn age_at(&self, t_ms: f64) -> Option<f64> {
        self.ready_ms.map(|r| t_ms - r)
    }

    /// The last peer PING before `t_ms` and whether this side answered it.
    pub fn last_peer_ping_before(&self, t_ms: f64) -> Option<PeerPing> {
        self.peer_pings
            .iter()
            .rev()
            .find(|p| p.at_ms <= t_ms)
            .copied()
    }

    fn push_ping(&mut self, t_ms: f64) {
        if self.pings_sent_ms.len() >= KEEP {
            self.pings_sent_ms.pop_front();
        }
        self.pings_sent_ms.push_back(t_ms);
    }
}

/// What an event changed in the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Nothing,
    /// A connection became READY.
    Ready(u64),
    /// A new drain began on this connection (its first GOAWAY).
    DrainBegan(u64),
    /// Another GOAWAY of the drain in progress.
    DrainGoes(u64),
    /// The connection closed.
    Closed(u64),
    /// A call ended.
    Call,
}

/// Every connection's history.
#[derive(Debug, Default)]
pub struct History {
    conns: BTreeMap<u64, Conn>,
    closed: VecDeque<u64>,
    /// The latest drains of every connection, oldest first.
    recent: VecDeque<Drain>,
    /// When the last call (on any connection, or none) ended.
    pub last_call_end_ms: Option<f64>,
}

impl History {
    pub fn conn(&self, id: u64) -> Option<&Conn> {
        self.conns.get(&id)
    }

    /// The latest drains of every connection, oldest first (bounded).
    pub fn recent_drains(&self) -> impl DoubleEndedIterator<Item = &Drain> {
        self.recent.iter()
    }

    fn entry(&mut self, e: &Event) -> Option<&mut Conn> {
        let id = e.conn?;
        let c = self.conns.entry(id).or_insert_with(|| Conn {
            id,
            ..Conn::default()
        });
        if c.addr.is_none() {
            c.addr = e.addr.clone();
        }
        Some(c)
    }

    /// Folds one event in.
    pub fn observe(&mut self, e: &Event) -> Change {
        match &e.kind {
            EventKind::Connect {
                result: ConnectResult::Ok,
                ..
            }
            | EventKind::Accepted { .. } => match self.entry(e) {
                Some(c) => {
                    c.ready_ms.get_or_insert(e.t_ms);
                    Change::Ready(c.id)
                }
                None => Change::Nothing,
            },
            EventKind::Capture {
                what: crate::event::CaptureWhat::Open | crate::event::CaptureWhat::Midway,
                ..
            } => match self.entry(e) {
                Some(c) => {
                    c.ready_ms.get_or_insert(e.t_ms);
                    Change::Ready(c.id)
                }
                None => Change::Nothing,
            },
            EventKind::Settings {
                dir: Dir::Received,
                ack: false,
                settings,
            } => {
                if let Some(c) = self.entry(e) {
                    c.peer_settings = Some(settings.clone());
                    c.ready_ms.get_or_insert(e.t_ms);
                }
                Change::Nothing
            }
            EventKind::Goaway {
                dir,
                code,
                last_stream_id,
                debug,
                open_streams,
                quiet_ms,
            } => self.goaway(
                e,
                *dir,
                *code,
                *last_stream_id,
                debug,
                *open_streams,
                *quiet_ms,
            ),
            EventKind::Ping { dir, ack, .. } => {
                if let Some(c) = self.entry(e) {
                    match (dir, ack) {
                        (Dir::Sent, false) => c.push_ping(e.t_ms),
                        (Dir::Received, false) => {
                            if c.peer_pings.len() >= KEEP {
                                c.peer_pings.pop_front();
                            }
                            c.peer_pings.push_back(PeerPing {
                                at_ms: e.t_ms,
                                acked_ms: None,
                            });
                        }
                        (Dir::Sent, true) => {
                            if let Some(p) =
                                c.peer_pings.iter_mut().rev().find(|p| p.acked_ms.is_none())
                            {
                                p.acked_ms = Some(e.t_ms);
                            }
                        }
                        (Dir::Received, true) => {}
                    }
                }
                Change::Nothing
            }
            EventKind::PingStrike { .. } => {
                if let Some(c) = self.entry(e) {
                    c.strikes += 1;
                }
                Change::Nothing
            }
            EventKind::RstStream { .. } => {
                if let Some(c) = self.entry(e) {
                    c.resets += 1;
                }
                Change::Nothing
            }
            EventKind::Fault { name, .. } => {
                if let Some(c) = self.entry(e) {
                    if c.faults.len() >= KEEP {
                        c.faults.pop_front();
                    }
                    c.faults.push_back((e.t_ms, name.clone()));
                }
                Change::Nothing
            }
            EventKind::Rpc { code, .. } => {
                self.last_call_end_ms = Some(e.t_ms);
                if let Some(c) = self.entry(e) {
                    if *code == tonic::Code::Ok {
                        c.calls.ok += 1;
                    } else {
                        c.calls.failed += 1;
                    }
                    c.calls.last_end_ms = Some(e.t_ms);
                }
                Change::Call
            }
            EventKind::Closed {
                reason,
                error,
                detail,
                streams,
                ..
            } => {
                let Some(c) = self.entry(e) else {
                    return Change::Nothing;
                };
                c.close = Some(Close {
                    at_ms: e.t_ms,
                    reason: *reason,
                    detail: detail.clone(),
                    error: error.clone(),
                    streams: *streams,
                });
                let id = c.id;
                self.closed.push_back(id);
                if self.closed.len() > KEEP_CLOSED {
                    if let Some(old) = self.closed.pop_front() {
                        self.conns.remove(&old);
                    }
                }
                Change::Closed(id)
            }
            _ => Change::Nothing,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn goaway(
        &mut self,
        e: &Event,
        dir: Dir,
        code: ErrorCode,
        last_stream_id: u32,
        debug: &str,
        open_streams: Option<u64>,
        quiet_ms: Option<f64>,
    ) -> Change {
        let Some(c) = self.entry(e) else {
            return Change::Nothing;
        };
        // A later GOAWAY of the same drain: same sender, code and debug
        // data (grpc-go's second one names the last stream).
        if let Some(d) = c.drains.last_mut() {
            if d.dir == dir
                && d.code == code
                && d.debug == debug
                && last_stream_id <= d.last_stream_id
            {
                d.goaways += 1;
                d.last_stream_id = last_stream_id;
                return Change::DrainGoes(c.id);
            }
        }
        let age_ms = c.age_at(e.t_ms);
        let after_pings = c.pings_sent_ms.len() as u32;
        let drain = Drain {
            conn: c.id,
            dir,
            at_ms: e.t_ms,
            code,
            debug: debug.to_string(),
            last_stream_id,
            announced: last_stream_id == MAX_STREAM_ID,
            goaways: 1,
            age_ms,
            open_streams,
            quiet_ms,
            after_pings,
        };
        c.drains.push(drain.clone());
        let id = c.id;
        if self.recent.len() >= KEEP_DRAINS {
            self.recent.pop_front();
        }
        self.recent.push_back(drain);
        Change::DrainBegan(id)
    }
}

#[cfg(test)]
mod tests;
