//! One direction of a proxied connection (client to server = upstream, or
//! back): reads from one socket into its buffer, follows the HTTP/2 frames
//! on cleartext connections (frame stages and the call tap see whole
//! frames; DATA passes as it comes, never copied), runs its chain of
//! stages, and writes to the other socket.
//!
//! With no stage that shapes the bytes, what was read is written straight
//! from the buffer. Once a stage times the bytes (latency, bandwidth, ...),
//! a frame was dropped or replaced, or a frame is injected, the output goes
//! through a queue of timed pieces (cut from the buffer without a copy)
//! until that queue is empty again. Reading goes on while pieces wait, so
//! each piece is timed from its own arrival.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;

use super::calls::CallTap;
use super::fault::stage::{mask, Cx, FrameMask, Piece, Stage};
use super::fault::Direction;
use super::state::{Forgotten, State};
use crate::h2wire::frame::{flags, FRAME_HEADER_LEN};
use crate::h2wire::{ControlFrame, ErrorCode, FrameHeader, FrameType, Verdict};

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 32 * 1024;
/// Bytes held per direction (buffered and queued) before reading stops.
const MAX_HELD: usize = 1 << 20;
/// A frame a stage or the tap must see whole is held until it is, up to
/// this size; a larger one passes unread.
const MAX_FRAME_HELD: usize = 64 * 1024 + FRAME_HEADER_LEN;

/// A stage in a chain, with the fault it came from.
pub(crate) struct Slot {
    pub fault: u64,
    pub name: &'static str,
    pub stage: Box<dyn Stage>,
}

/// Where the reader stands in the HTTP/2 byte stream.
#[derive(Default)]
struct Cursor {
    /// Bytes of the client preface still to pass.
    preface: usize,
    /// Payload bytes of a frame passing unread still to come.
    skip: usize,
}

/// Why a direction stopped.
pub(crate) enum Stopped {
    /// Its input ended and the end was passed on (FIN).
    Done,
    /// Reading or writing failed.
    Failed(io::Error, Side),
}

/// Which socket failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Read,
    Write,
}

pub(crate) struct Pump {
    pub dir: Direction,
    buf: BytesMut,
    /// Bytes at the front of `buf` decided and waiting to be written
    /// straight (the queue is empty then).
    decided: usize,
    /// A place in `buf[..=decided]` where the output is between two frames
    /// (everything before it, the queue included, is whole frames).
    boundary: Option<usize>,
    /// Following frames (cleartext HTTP/2), else raw bytes.
    cursor: Option<Cursor>,
    queue: VecDeque<Piece>,
    queued: usize,
    pub stages: Vec<Slot>,
    shaping: bool,
    holding: bool,
    stage_frames: FrameMask,
    /// The input ended (FIN read, or a read failed).
    pub read_done: bool,
    /// FIN to pass on once the buffer is out (no queue).
    fin_pending: bool,
    /// The end was passed on (the other socket shut down for writing).
    pub shut: bool,
    scratch: Vec<Piece>,
    spare: Vec<Piece>,
    injected: Vec<Bytes>,
    /// Bytes read.
    pub bytes: u64,
    /// `--pcap`: the client side's traffic, as it was read.
    pub pcap: Option<Arc<crate::pcap::writer::PcapConn>>,
}

/// Frames the tap reads.
const TAP_FRAMES: FrameMask = mask(FrameType::Headers)
    | mask(FrameType::Continuation)
    | mask(FrameType::RstStream)
    | mask(FrameType::GoAway)
    | mask(FrameType::Ping);

impl Pump {
    /// A direction that forwards bytes (see [`Pump::follow_frames`]).
    pub fn new(dir: Direction) -> Self {
        Self {
            dir,
            buf: BytesMut::new(),
            decided: 0,
            boundary: Some(0),
            cursor: None,
            queue: VecDeque::new(),
            queued: 0,
            stages: Vec::new(),
            shaping: false,
            holding: false,
            stage_frames: 0,
            read_done: false,
            fin_pending: false,
            shut: false,
            scratch: Vec::new(),
            spare: Vec::new(),
            injected: Vec::new(),
            bytes: 0,
            pcap: None,
        }
    }

    /// Cleartext HTTP/2: follow its frames from the first byte (the
    /// upstream direction starts with the client preface).
    pub fn follow_frames(&mut self) {
        self.cursor = Some(Cursor {
            preface: if self.dir == Direction::Upstream {
                crate::h2wire::frame::CLIENT_PREFACE.len()
            } else {
                0
            },
            skip: 0,
        });
    }

    /// Recomputes what the chain needs after a stage came or went.
    pub fn chain_changed(&mut self, now: Instant) {
        let was_shaping = self.shaping;
        self.shaping = self.stages.iter().any(|s| s.stage.shapes());
        self.holding = self.stages.iter().any(|s| s.stage.holds());
        self.stage_frames = self.stages.iter().fold(0, |m, s| m | s.stage.frames());
        if was_shaping && !self.shaping {
            // As toxiproxy's toxics flush on removal: what waited goes now.
            for p in &mut self.queue {
                p.due = p.due.min(now);
            }
        }
    }

    /// The direction passed its end on, or can pass nothing more.
    pub fn finished(&self) -> bool {
        self.shut
    }

    /// When something in this direction is due next.
    pub fn next_wake(&self, st: &State, now: Instant) -> Option<Instant> {
        let queued = self.queue.front().map(|p| p.due).filter(|d| *d > now);
        let staged = self.stages.iter().filter_map(|s| s.stage.wake_at(st)).min();
        queued.into_iter().chain(staged).min()
    }

    /// Runs the stages whose time has come.
    pub fn wake_stages(&mut self, st: &mut State, now: Instant) {
        for s in &mut self.stages {
            if s.stage.wake_at(st).is_some_and(|t| t <= now) {
                let mut cx = Cx {
                    now,
                    dir: self.dir,
                    name: s.name,
                    st,
                };
                s.stage.wake(&mut cx);
            }
        }
    }

    /// Moves data both ways of this direction until the sockets would
    /// block; `Ready` when the direction stopped.
    pub fn poll(
        &mut self,
        cx: &mut Context<'_>,
        src: &mut TcpStream,
        dst: &mut TcpStream,
        st: &mut State,
        tap: &mut Option<CallTap>,
        now: Instant,
    ) -> Poll<Stopped> {
        loop {
            self.take_injections(st, tap, now);
            let wrote = match self.poll_write_out(cx, dst, st, now) {
                Poll::Ready(Ok(())) => true,
                Poll::Ready(Err(e)) => return Poll::Ready(Stopped::Failed(e, Side::Write)),
                Poll::Pending => false,
            };
            if self.shut {
                return Poll::Ready(Stopped::Done);
            }
            if st.end.is_some() || !self.can_read(st) {
                return Poll::Pending;
            }
            match self.poll_read_in(cx, src, st, tap, now) {
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(e)) => {
                    self.read_done = true;
                    return Poll::Ready(Stopped::Failed(e, Side::Read));
                }
                Poll::Pending if wrote && self.has_due_output(now) => continue,
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn can_read(&self, st: &State) -> bool {
        !self.read_done
            && !self.holding
            && st.forgotten != Some(Forgotten::Blackhole)
            && self.buf.len() + self.queued < MAX_HELD
    }

    fn has_due_output(&self, now: Instant) -> bool {
        self.queue.front().is_some_and(|p| p.due <= now) || self.decided > 0 || self.fin_pending
    }

    fn poll_read_in(
        &mut self,
        cx: &mut Context<'_>,
        src: &mut TcpStream,
        st: &mut State,
        tap: &mut Option<CallTap>,
        now: Instant,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(src.poll_read_ready(cx))?;
            self.buf.reserve(READ_CHUNK);
            let before = self.buf.len();
            let from_client = self.dir == Direction::Upstream;
            match src.try_read_buf(&mut self.buf) {
                Ok(0) => {
                    if let Some(p) = &self.pcap {
                        p.fin(from_client);
                    }
                    self.eof(st, tap, now);
                    return Poll::Ready(Ok(()));
                }
                Ok(n) => {
                    if let Some(p) = &self.pcap {
                        p.data(from_client, &self.buf[before..]);
                    }
                    self.bytes += n as u64;
                    st.last_active = now;
                    if st.forgotten == Some(Forgotten::Reset) {
                        st.fault_event(
                            "idle-expiry",
                            "a packet on a forgotten connection: reset both sides".into(),
                        );
                        st.applied("idle-expiry");
                        st.request_end(super::state::End::Reset("idle-expiry".into()));
                        return Poll::Ready(Ok(()));
                    }
                    self.take_in(st, tap, now);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => {
                    if let Some(p) = &self.pcap {
                        p.rst(from_client);
                    }
                    return Poll::Ready(Err(e));
                }
            }
        }
    }

    /// New bytes are in `buf`: decide what of them goes on.
    fn take_in(&mut self, st: &mut State, tap: &mut Option<CallTap>, now: Instant) {
        if self.cursor.is_some() {
            self.scan(st, tap, now);
        } else {
            self.decided = self.buf.len();
            self.boundary = None;
        }
        self.settle(st, now);
    }

    /// The input ended: what was held goes, then the end (FIN).
    fn eof(&mut self, st: &mut State, tap: &mut Option<CallTap>, now: Instant) {
        self.read_done = true;
        if self.cursor.is_some() {
            self.scan(st, tap, now);
        }
        self.decided = self.buf.len();
        self.settle(st, now);
        if !self.shaping && self.queue.is_empty() {
            self.fin_pending = true;
            return;
        }
        let mut due = now;
        let dir = self.dir;
        let passes = self.stages.iter_mut().all(|s| {
            let mut cx = Cx {
                now,
                dir,
                name: s.name,
                st,
            };
            s.stage.eof(&mut due, &mut cx)
        });
        if passes {
            let mut fin = Piece::new(due, Bytes::new());
            fin.fin = true;
            self.queue.push_back(fin);
        }
    }

    /// Follows frames over the undecided bytes: frames that no stage and
    /// not the tap wants pass as their bytes come; a wanted one waits
    /// until it is whole, then is forwarded, dropped or replaced.
    fn scan(&mut self, st: &mut State, tap: &mut Option<CallTap>, now: Instant) {
        let Some(mut cur) = self.cursor.take() else {
            return;
        };
        let tap_frames = if tap.as_ref().is_some_and(|t| t.reading()) {
            TAP_FRAMES
        } else {
            0
        };
        let mut pos = self.decided;
        loop {
            let avail = self.buf.len() - pos;
            if cur.preface > 0 {
                let n = cur.preface.min(avail);
                pos += n;
                cur.preface -= n;
                if cur.preface == 0 {
                    self.boundary = Some(pos);
                }
                if avail == n {
                    break;
                }
                continue;
            }
            if cur.skip > 0 {
                let n = cur.skip.min(avail);
                pos += n;
                cur.skip -= n;
                if cur.skip == 0 {
                    self.boundary = Some(pos);
                }
                if avail == n {
                    break;
                }
                continue;
            }
            self.boundary = Some(pos);
            let Some(h) = FrameHeader::parse_prefix(&self.buf[pos..]) else {
                break; // a header cut by the read: wait for the rest
            };
            let total = FRAME_HEADER_LEN + h.length as usize;
            let refused = self.dir == Direction::Upstream
                && h.stream_id != 0
                && h.stream_id > st.h2.refuse_above;
            let wanted = (self.stage_frames | tap_frames) & mask(h.kind) != 0 || refused;
            if !wanted || total > MAX_FRAME_HELD {
                if wanted && h.kind == FrameType::Headers {
                    if let Some(t) = tap.as_mut() {
                        t.lose("a header block over 64 KiB");
                    }
                }
                Self::header_only(self.dir, &h, st);
                pos += FRAME_HEADER_LEN;
                cur.skip = h.length as usize;
                if cur.skip == 0 {
                    self.boundary = Some(pos);
                }
                continue;
            }
            if avail < total {
                break; // wanted whole: wait for the rest
            }
            match self.frame(&h, pos, st, tap, now, refused) {
                Verdict::Forward => {
                    pos += total;
                    self.boundary = Some(pos);
                }
                verdict => {
                    let head = self.buf.split_to(pos).freeze();
                    self.buf.advance(total);
                    self.decided = 0;
                    pos = 0;
                    self.boundary = Some(0);
                    self.emit(head, st, now);
                    if let Verdict::Replace(b) = verdict {
                        self.emit(b, st, now);
                    }
                }
            }
        }
        self.decided = pos;
        self.cursor = Some(cur);
    }

    /// What is read from a frame's header alone.
    fn header_only(dir: Direction, h: &FrameHeader, st: &mut State) {
        match (dir, h.kind) {
            (Direction::Upstream, FrameType::Headers) if h.stream_id > st.h2.last_stream => {
                st.h2.last_stream = h.stream_id;
                st.h2.forwarded = st.h2.forwarded.max(h.stream_id);
            }
            (Direction::Upstream, FrameType::Settings) if !h.has_flag(flags::ACK) => {
                st.h2.settings.0 = true
            }
            (Direction::Downstream, FrameType::Settings) if !h.has_flag(flags::ACK) => {
                st.h2.settings.1 = true
            }
            _ => {}
        }
    }

    /// A whole frame at `buf[pos..]`: the tap reads it (from the client as
    /// it came, to the client as it goes on), refused streams stay here,
    /// the stages decide.
    fn frame(
        &mut self,
        h: &FrameHeader,
        pos: usize,
        st: &mut State,
        tap: &mut Option<CallTap>,
        now: Instant,
        refused: bool,
    ) -> Verdict {
        let payload = &self.buf[pos + FRAME_HEADER_LEN..pos + FRAME_HEADER_LEN + h.length as usize];
        let upstream = self.dir == Direction::Upstream;
        if upstream {
            if let Some(t) = tap.as_mut() {
                t.frame(true, h, payload, now);
            }
        }
        if refused {
            if h.kind == FrameType::Headers && h.stream_id > st.h2.last_stream {
                st.h2.last_stream = h.stream_id;
                let rst = ControlFrame::RstStream {
                    stream_id: h.stream_id,
                    code: ErrorCode::REFUSED_STREAM,
                }
                .encode();
                st.inject(Direction::Downstream, now, rst);
                st.fault_event(
                    "inject-goaway",
                    format!(
                        "refused stream {}, above the GOAWAY's last stream",
                        h.stream_id
                    ),
                );
            }
            return Verdict::Drop;
        }
        let m = mask(h.kind);
        let mut verdict = Verdict::Forward;
        for s in self.stages.iter_mut().filter(|s| s.stage.frames() & m != 0) {
            let mut cx = Cx {
                now,
                dir: self.dir,
                name: s.name,
                st,
            };
            verdict = s.stage.frame(h, payload, &mut cx);
            if verdict != Verdict::Forward {
                break;
            }
        }
        if verdict != Verdict::Drop {
            Self::header_only(self.dir, h, st);
        }
        if !upstream {
            if let Some(t) = tap.as_mut() {
                match &verdict {
                    Verdict::Forward => t.frame(false, h, payload, now),
                    Verdict::Replace(b) => each_frame(b, |h, p| t.frame(false, h, p, now)),
                    Verdict::Drop => {}
                }
            }
        }
        verdict
    }

    /// Decided bytes that cannot go straight: through the shaping stages,
    /// into the queue.
    fn emit(&mut self, data: Bytes, st: &mut State, now: Instant) {
        if data.is_empty() {
            return;
        }
        let piece = Piece::new(now, data);
        if !self.shaping {
            self.push(piece);
            return;
        }
        let mut cur = std::mem::take(&mut self.scratch);
        let mut next = std::mem::take(&mut self.spare);
        cur.push(piece);
        let dir = self.dir;
        for s in self.stages.iter_mut().filter(|s| s.stage.shapes()) {
            let mut cx = Cx {
                now,
                dir,
                name: s.name,
                st,
            };
            for p in cur.drain(..) {
                s.stage.data(p, &mut next, &mut cx);
            }
            std::mem::swap(&mut cur, &mut next);
        }
        for p in cur.drain(..) {
            self.push(p);
        }
        self.scratch = cur;
        self.spare = next;
    }

    fn push(&mut self, p: Piece) {
        self.queued += p.data.len();
        self.queue.push_back(p);
    }

    /// Decided bytes go into the queue while it is in use.
    fn settle(&mut self, st: &mut State, now: Instant) {
        if self.decided == 0 || (!self.shaping && self.queue.is_empty()) {
            return;
        }
        let n = self.decided;
        let data = self.buf.split_to(n).freeze();
        self.decided = 0;
        self.boundary = match self.boundary {
            Some(b) if b == n => Some(0),
            _ => None,
        };
        self.emit(data, st, now);
    }

    /// Frames due to be injected go out at the next frame boundary.
    fn take_injections(&mut self, st: &mut State, tap: &mut Option<CallTap>, now: Instant) {
        if !st.has_injects(self.dir) {
            return;
        }
        let Some(b) = self.boundary else {
            return; // mid-frame: after this frame
        };
        let mut frames = std::mem::take(&mut self.injected);
        st.take_injects(self.dir, now, &mut frames);
        if frames.is_empty() {
            self.injected = frames;
            return;
        }
        if b > 0 {
            let head = self.buf.split_to(b).freeze();
            self.decided -= b;
            self.emit(head, st, now);
        }
        self.boundary = Some(0);
        for f in frames.drain(..) {
            if self.dir == Direction::Downstream {
                if let Some(t) = tap.as_mut() {
                    each_frame(&f, |h, p| t.frame(false, h, p, now));
                }
            }
            self.push(Piece::new(now, f));
        }
        self.injected = frames;
        self.settle(st, now);
    }

    /// Writes what is due; `Ready(Ok)` once nothing more is due now.
    fn poll_write_out(
        &mut self,
        cx: &mut Context<'_>,
        dst: &mut TcpStream,
        st: &mut State,
        now: Instant,
    ) -> Poll<io::Result<()>> {
        loop {
            if let Some(front) = self.queue.front() {
                if front.due > now {
                    return Poll::Ready(Ok(()));
                }
                if front.data.is_empty() {
                    if front.fin {
                        ready!(Pin::new(&mut *dst).poll_shutdown(cx))?;
                        self.shut = true;
                    }
                    if let Some(p) = self.queue.pop_front() {
                        if let Some(end) = p.then {
                            st.request_end(end);
                        }
                    }
                    continue;
                }
                let mut slices = [IoSlice::new(&[]); 16];
                let mut n = 0;
                for p in self.queue.iter().take(16) {
                    if p.due > now || p.data.is_empty() {
                        break;
                    }
                    slices[n] = IoSlice::new(&p.data);
                    n += 1;
                    if p.then.is_some() || p.fin {
                        break;
                    }
                }
                let mut w = ready!(Pin::new(&mut *dst).poll_write_vectored(cx, &slices[..n]))?;
                if w == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.queued -= w;
                while w > 0 {
                    let Some(p) = self.queue.front_mut() else {
                        break;
                    };
                    let k = w.min(p.data.len());
                    p.data.advance(k);
                    w -= k;
                    if p.data.is_empty() && p.then.is_none() && !p.fin {
                        self.queue.pop_front();
                    }
                }
                continue;
            }
            if self.decided > 0 {
                let w = ready!(Pin::new(&mut *dst).poll_write(cx, &self.buf[..self.decided]))?;
                if w == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.buf.advance(w);
                self.decided -= w;
                self.boundary = self.boundary.and_then(|b| b.checked_sub(w));
                continue;
            }
            if self.fin_pending {
                ready!(Pin::new(&mut *dst).poll_shutdown(cx))?;
                self.fin_pending = false;
                self.shut = true;
            }
            return Poll::Ready(Ok(()));
        }
    }
}

/// Calls `f` for each whole frame in `bytes` (frames grpcdoc built).
pub(crate) fn each_frame(bytes: &[u8], mut f: impl FnMut(&FrameHeader, &[u8])) {
    let mut rest = bytes;
    while let Some(h) = FrameHeader::parse_prefix(rest) {
        let end = FRAME_HEADER_LEN + h.length as usize;
        let Some(payload) = rest.get(FRAME_HEADER_LEN..end) else {
            return;
        };
        f(&h, payload);
        rest = &rest[end..];
    }
}
