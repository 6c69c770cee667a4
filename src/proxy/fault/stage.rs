//! A fault at work on one connection: a [`Stage`], toxiproxy's model. Each
//! direction of a connection runs a chain of stages, each fed by the one
//! before and keeping its own state for that connection; a stage made when
//! the connection opened, or when its fault was added to a connection
//! already open, starts its clocks then. Stages see the bytes as timed
//! pieces (latency, bandwidth, slicer, limit-data, timeout, reset-peer),
//! whole HTTP/2 frames on cleartext connections (drop-ping, inject-goaway,
//! ...), or the connection as a whole (down, reset, idle-expiry); they act
//! through [`Cx`] and never block.

use std::time::Instant;

use bytes::Bytes;

use super::Direction;
use crate::h2wire::{FrameHeader, FrameType, Verdict};
use crate::proxy::state::{End, State};

/// Bytes on their way out of a direction, with the time they may leave.
#[derive(Debug)]
pub(crate) struct Piece {
    /// Not written before this (toxiproxy's chunk timestamp).
    pub due: Instant,
    pub data: Bytes,
    /// Once these bytes are out, the connection ends so (limit-data).
    pub then: Option<End>,
    /// The direction's end (FIN) follows these bytes.
    pub fin: bool,
}

impl Piece {
    pub fn new(due: Instant, data: Bytes) -> Self {
        Self {
            due,
            data,
            then: None,
            fin: false,
        }
    }
}

/// The frame types a stage wants to see, a bit per type.
pub(crate) type FrameMask = u16;

pub(crate) const fn mask(t: FrameType) -> FrameMask {
    let bit = match t {
        FrameType::Data => 0,
        FrameType::Headers => 1,
        FrameType::Priority => 2,
        FrameType::RstStream => 3,
        FrameType::Settings => 4,
        FrameType::PushPromise => 5,
        FrameType::Ping => 6,
        FrameType::GoAway => 7,
        FrameType::WindowUpdate => 8,
        FrameType::Continuation => 9,
        FrameType::Unknown(_) => 15,
    };
    1 << bit
}

/// How a stage starts on a connection.
pub(crate) struct Init {
    pub now: Instant,
    /// Made as the connection opened (else the fault came later).
    pub at_open: bool,
    /// The direction it acts on: its chain's, or the fault's for stages
    /// of the whole connection.
    pub dir: Direction,
}

/// One fault's behaviour on one connection (and, for faults that act on
/// the bytes or frames, one direction).
pub(crate) trait Stage: Send {
    /// Once, as it starts on the connection.
    fn start(&mut self, _cx: &mut Cx<'_>) {}

    /// Whether the bytes must go through [`Stage::data`]: the direction
    /// then times every piece it writes.
    fn shapes(&self) -> bool {
        false
    }

    /// A piece from the stage before: push what goes on (later, cut,
    /// sliced, or nothing) to `out`.
    fn data(&mut self, piece: Piece, out: &mut Vec<Piece>, _cx: &mut Cx<'_>) {
        out.push(piece);
    }

    /// The direction's input ended (FIN); `due` is when the end is passed
    /// on. False: this stage swallows it.
    fn eof(&mut self, _due: &mut Instant, _cx: &mut Cx<'_>) -> bool {
        true
    }

    /// Reading stops while this holds (blackhole).
    fn holds(&self) -> bool {
        false
    }

    /// The frame types [`Stage::frame`] is asked about (cleartext HTTP/2).
    fn frames(&self) -> FrameMask {
        0
    }

    /// A whole frame on its way; what goes on instead.
    fn frame(&mut self, _h: &FrameHeader, _payload: &[u8], _cx: &mut Cx<'_>) -> Verdict {
        Verdict::Forward
    }

    /// When the stage wants [`Stage::wake`] next.
    fn wake_at(&self, _st: &State) -> Option<Instant> {
        None
    }

    fn wake(&mut self, _cx: &mut Cx<'_>) {}

    /// Its fault was removed while the connection is open.
    fn removed(&mut self, _cx: &mut Cx<'_>) {}
}

/// What a stage may do to its connection.
pub(crate) struct Cx<'a> {
    pub now: Instant,
    pub dir: Direction,
    pub name: &'static str,
    pub st: &'a mut State,
}

impl Cx<'_> {
    /// The fault acted: counted, and told as a `fault` event.
    pub fn tell(&mut self, detail: String) {
        self.st.fault_event(self.name, detail);
        self.count();
    }

    /// The fault acted (counted, not told: per chunk).
    pub fn count(&mut self) {
        self.st.applied(self.name);
    }

    /// Ends the connection now.
    pub fn end(&mut self, end: End) {
        self.st.request_end(end);
    }

    /// Sends a whole frame in `dir` at the next frame boundary.
    pub fn inject(&mut self, dir: Direction, frame: Bytes) {
        self.st.inject(dir, self.now, frame);
    }

    /// Sends a whole frame in `dir` at `at`, between two frames.
    pub fn inject_at(&mut self, dir: Direction, at: Instant, frame: Bytes) {
        self.st.inject(dir, at, frame);
    }

    /// `upstream`, `downstream` or `both ways`, for details.
    pub fn way(&self) -> &'static str {
        way(self.dir)
    }
}

pub(crate) fn way(d: Direction) -> &'static str {
    match d {
        Direction::Upstream => "upstream",
        Direction::Downstream => "downstream",
        Direction::Both => "both ways",
    }
}

/// `acks=true|false|all` of the PING faults: whether a PING frame is one
/// they act on.
pub(crate) fn ping_matches(acks: &str, h: &FrameHeader) -> bool {
    let ack = h.has_flag(crate::h2wire::frame::flags::ACK);
    match acks {
        "true" => ack,
        "false" => !ack,
        _ => true,
    }
}

/// A frame's bytes, header and payload.
pub(crate) fn frame_bytes(h: &FrameHeader, payload: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(crate::h2wire::frame::FRAME_HEADER_LEN + payload.len());
    v.extend_from_slice(&h.encode());
    v.extend_from_slice(payload);
    Bytes::from(v)
}
