//! What both directions of one proxied connection and its stages share:
//! the HTTP/2 streams the client opened and the proxy forwarded or
//! refused, frames waiting to be injected, a requested end, idle-expiry's
//! verdict, and the connection's own counters. Owned by the connection's
//! task and handed to each direction and stage in turn: no lock.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::fault::Direction;
use crate::event::{EventKind, EventSink};

/// How a fault ends a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// Both sides closed (FIN), as toxiproxy closes a link; the detail
    /// names the fault.
    Close(String),
    /// Both sides reset (RST: SO_LINGER 0).
    Reset(String),
}

/// idle-expiry forgot the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Forgotten {
    /// Nothing goes through any more.
    Blackhole,
    /// The next packet either way gets a reset.
    Reset,
}

/// The cleartext HTTP/2 side of a connection.
#[derive(Debug)]
pub(crate) struct H2 {
    /// Each side's SETTINGS passed (client's, server's): frames may be
    /// injected (a peer's first frame must be its SETTINGS).
    pub settings: (bool, bool),
    /// The highest stream the client opened.
    pub last_stream: u32,
    /// The highest stream whose HEADERS went on to the server.
    pub forwarded: u32,
    /// After an injected GOAWAY toward the client: streams above this id
    /// are refused (RST_STREAM REFUSED_STREAM to the client) and none of
    /// their frames reach the server, as a real GOAWAY's sender does.
    pub refuse_above: u32,
}

impl Default for H2 {
    fn default() -> Self {
        Self {
            settings: (false, false),
            last_stream: 0,
            forwarded: 0,
            refuse_above: u32::MAX,
        }
    }
}

impl H2 {
    pub fn handshaken(&self) -> bool {
        self.settings.0 && self.settings.1
    }
}

/// One connection's shared state.
pub(crate) struct State {
    pub id: u64,
    pub addr: Arc<str>,
    pub events: EventSink,
    pub opened: Instant,
    /// Cleartext HTTP/2 (h2c): frames are followed.
    pub h2c: bool,
    pub h2: H2,
    /// A fault ended the connection.
    pub end: Option<End>,
    /// Frames to inject, toward the server and toward the client, each
    /// with the time it is due.
    injects: [Vec<(Instant, Bytes)>; 2],
    /// When a byte last went either way.
    pub last_active: Instant,
    pub forgotten: Option<Forgotten>,
    /// Each fault's actions on this connection: (name, times).
    applied: Vec<(&'static str, u64)>,
}

fn slot(d: Direction) -> usize {
    match d {
        Direction::Downstream => 1,
        _ => 0,
    }
}

impl State {
    pub fn new(id: u64, addr: Arc<str>, events: EventSink, opened: Instant, h2c: bool) -> Self {
        Self {
            id,
            addr,
            events,
            opened,
            h2c,
            h2: H2::default(),
            end: None,
            injects: [Vec::new(), Vec::new()],
            last_active: opened,
            forgotten: None,
            applied: Vec::new(),
        }
    }

    pub fn event(&self, kind: EventKind) {
        self.events
            .emit(Some(self.id), Some(self.addr.clone()), kind);
    }

    pub fn fault_event(&self, name: &str, detail: String) {
        self.event(EventKind::Fault {
            name: name.to_string(),
            detail,
        });
    }

    pub fn applied(&mut self, name: &'static str) {
        match self.applied.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => *c += 1,
            None => self.applied.push((name, 1)),
        }
    }

    pub fn take_applied(&mut self) -> Vec<(&'static str, u64)> {
        std::mem::take(&mut self.applied)
    }

    /// The first end asked for wins.
    pub fn request_end(&mut self, end: End) {
        self.end.get_or_insert(end);
    }

    pub fn inject(&mut self, dir: Direction, at: Instant, frame: Bytes) {
        if dir.covers(Direction::Upstream) {
            self.injects[0].push((at, frame.clone()));
        }
        if dir.covers(Direction::Downstream) {
            self.injects[1].push((at, frame));
        }
    }

    /// Whether frames wait to go `dir`.
    pub fn has_injects(&self, dir: Direction) -> bool {
        !self.injects[slot(dir)].is_empty()
    }

    /// The frames due by `now` to go `dir`, in the order they were asked.
    pub fn take_injects(&mut self, dir: Direction, now: Instant, out: &mut Vec<Bytes>) {
        let q = &mut self.injects[slot(dir)];
        let mut i = 0;
        while i < q.len() {
            if q[i].0 <= now {
                out.push(q.remove(i).1);
            } else {
                i += 1;
            }
        }
    }

    /// The next injection due later than now.
    pub fn next_inject(&self) -> Option<Instant> {
        self.injects.iter().flatten().map(|(at, _)| *at).min()
    }
}
