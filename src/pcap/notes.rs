//! What a capture's events mean, per connection: events in, notes out.
//! Every event goes through the explainer `watch` uses (and its one
//! history of each connection), and a capture adds what only the whole
//! recording shows: a client pinging more often
//! than grpc-go's default enforcement allows (the strikes), silence and
//! then an RST with no GOAWAY (a middlebox's idle timeout), and why each
//! failed call failed.

use crate::catalogue::EntryId;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::diagnose::{Explainer, Note};
use crate::event::{CaptureWhat, CloseReason, ConnectResult, Event, EventKind};
use crate::h2wire::Dir;

/// Silence before an RST that reads as an idle timeout in the path.
const IDLE_RESET_MS: f64 = 1000.0;

#[derive(Default)]
struct ConnNotes {
    /// The interval of the client's PINGs, once two were seen.
    ping_every: Option<Duration>,
    /// The client's last PING (ms), for its interval.
    last_ping_ms: Option<f64>,
    /// Silence before the close, once told.
    idle_ms: Option<f64>,
    goaway: bool,
    /// TLS: a GOAWAY inside cannot be seen, so a close is not explained
    /// by its absence.
    tls: bool,
    said: HashSet<String>,
}

/// The notes of a capture's connections.
#[derive(Default)]
pub struct CaptureNotes {
    explainer: Explainer,
    conns: HashMap<u64, ConnNotes>,
}

fn dur(ms: f64) -> String {
    humantime::format_duration(Duration::from_millis(ms.max(0.0) as u64)).to_string()
}

impl ConnNotes {
    /// Keeps what later notes need: the connection was up before a
    /// capture joined it, the silence before the close, the client's
    /// ping interval, a GOAWAY received.
    fn observe(&mut self, e: &Event) {
        match &e.kind {
            EventKind::Capture {
                what: CaptureWhat::Idle,
                ms,
                ..
            } => self.idle_ms = *ms,
            EventKind::Capture {
                what: CaptureWhat::Tls,
                ..
            } => self.tls = true,
            EventKind::Ping {
                dir: Dir::Sent,
                ack: false,
                ..
            } => {
                if let Some(last) = self.last_ping_ms.replace(e.t_ms) {
                    self.ping_every = Some(Duration::from_millis((e.t_ms - last).max(0.0) as u64));
                }
            }
            EventKind::Goaway {
                dir: Dir::Received, ..
            } => self.goaway = true,
            _ => {}
        }
    }

    /// What only a capture shows: the first ping strike, silence then RST.
    fn capture_note(&mut self, e: &Event) -> Option<Note> {
        match &e.kind {
            EventKind::PingStrike {
                since_last_ping_ms,
                min_interval_ms,
                ..
            } if self.said.insert("strike".into()) => Some(Note {
                entry: Some(EntryId::TooManyPings),
                also: Vec::new(),
                detail: format!(
                    "the client pinged {} after its previous PING with no HEADERS or DATA from the server between: grpc-go's default enforcement (MinTime 5m; 2h while no call is open, unless PermitWithoutStream) counts that as a strike, and after 2 strikes a grpc-go or grpc-java server sends GOAWAY ENHANCE_YOUR_CALM \"too_many_pings\" and closes. Fix: a client keepalive time at or above the server's minimum (here the limit was {}).",
                    dur(since_last_ping_ms.unwrap_or_default()),
                    dur(*min_interval_ms)
                ),
            }),
            EventKind::Closed {
                reason: CloseReason::Reset,
                ..
            } if !self.goaway && self.idle_ms.is_some_and(|ms| ms >= IDLE_RESET_MS) => Some(Note {
                entry: Some(EntryId::IdleDrop),
                also: Vec::new(),
                detail: format!(
                    "nothing went either way for {}, then an RST came and no GOAWAY: what an idle timeout in the path does (an L4 load balancer, NAT or firewall forgets the idle flow: AWS NLB 350s, Azure 4m, GCP 10m) - or a server that reset an idle connection. Calls on it fail UNAVAILABLE. Fix: client keepalive below that idle time, with permit-without-stream, which the server's ping policy must allow.",
                    dur(self.idle_ms.unwrap_or_default())
                ),
            }),
            _ => None,
        }
    }

    /// A failed call the explainer has no more to say about: the entry of
    /// its cause, once per cause on the connection. A connection lost or
    /// drained under a call is told at its close or its GOAWAY.
    fn call_note(&mut self, e: &Event) -> Option<Note> {
        use crate::event::CallCause as C;
        let EventKind::Rpc {
            cause: Some(cause), ..
        } = &e.kind
        else {
            return None;
        };
        if matches!(cause, C::ConnectionLost | C::Draining { .. }) {
            return None;
        }
        let entry = crate::diagnose::cause_id(cause)?;
        self.said.insert(cause.key()).then(|| Note {
            entry: Some(entry),
            also: Vec::new(),
            detail: crate::diagnose::cause_detail(cause),
        })
    }
}

/// A connection's last event: its notes are forgotten after it.
fn last(e: &EventKind) -> bool {
    matches!(
        e,
        EventKind::Closed { .. }
            | EventKind::Connect {
                result: ConnectResult::Error,
                ..
            }
            | EventKind::Capture {
                what: CaptureWhat::OpenAtEnd,
                ..
            }
    )
}

impl CaptureNotes {
    /// The notes `e` calls for (none for most events).
    pub fn notes(&mut self, e: &Event) -> Vec<Note> {
        let Some(id) = e.conn else {
            return Vec::new();
        };
        let c = self.conns.entry(id).or_default();
        c.observe(e);
        let own = c.capture_note(e);
        // Silence then RST is its own cause: not also a crash; and a TLS
        // connection's close says nothing of a GOAWAY it may have carried.
        let idle_reset = own
            .as_ref()
            .is_some_and(|n| n.entry == Some(EntryId::IdleDrop));
        let unseen = c.tls && matches!(e.kind, EventKind::Closed { .. });
        // The history reads every event; the note is said unless the
        // capture's own says more.
        if c.ping_every.is_some() {
            self.explainer.keepalive_time = c.ping_every;
        }
        let said = self.explainer.explain(e);
        let note = if idle_reset || unseen {
            None
        } else {
            said.or_else(|| c.call_note(e))
        };
        if last(&e.kind) {
            self.conns.remove(&id);
        }
        own.into_iter().chain(note).collect()
    }
}
