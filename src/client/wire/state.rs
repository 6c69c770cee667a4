//! What a lean connection's calls and its driver task share: the frames
//! waiting to be written, the open streams, and flow control both ways.
//! Calls write their frames here under one lock; the driver writes them out
//! in one go and applies what it reads.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::task::Waker;

use bytes::{BufMut, Bytes, BytesMut};
use http::HeaderMap;

use super::hpack::RequestHead;
use crate::h2wire::frame::{flags, setting, MAX_STREAM_ID};
use crate::h2wire::{ErrorCode, FrameType};

/// HTTP/2's initial flow-control window and frame size (RFC 9113 6.5.2).
pub const DEFAULT_WINDOW: i64 = 65_535;
pub const DEFAULT_MAX_FRAME: usize = 16_384;
/// Our receive windows, as hyper's client sets them.
pub const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
pub const CONN_WINDOW: u32 = 5 * 1024 * 1024;
const MAX_WINDOW: i64 = (1 << 31) - 1;

/// Hashes stream ids (odd, in sequence) by one multiplication: SipHash was
/// a visible part of a call's cost, and no peer chooses these keys.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Why a stream ended without its response.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("stream reset by the server with {0}")]
    Reset(ErrorCode),
    #[error("the server's GOAWAY (last stream {0}) came before it processed this stream")]
    GoAway(u32),
    #[error("no stream ids left on this connection")]
    Exhausted,
    #[error("{0}")]
    Lost(Arc<str>),
    #[error("the response is not gRPC (HTTP {})", .0.status)]
    Foreign(Box<Foreign>),
}

impl StreamError {
    /// The server never processed the stream: safe to retry anywhere.
    pub fn never_processed(&self) -> bool {
        matches!(
            self,
            StreamError::GoAway(_)
                | StreamError::Exhausted
                | StreamError::Reset(ErrorCode::REFUSED_STREAM)
        )
    }
}

/// A connection error of ours: the GOAWAY code we send and why.
#[derive(Clone, Debug)]
pub struct ConnFault {
    pub code: ErrorCode,
    pub why: String,
}

/// The response as it arrives.
#[derive(Default)]
pub struct Resp {
    /// `:status` of the response head, once it arrived.
    pub status: Option<u16>,
    pub grpc_status: Option<i32>,
    pub grpc_message: Option<String>,
    /// Whole messages counted (load calls) in the DATA.
    pub messages: MessageCounter,
    /// Kept only for generic requests (reflection, health checks); boxed
    /// so that a load call's stream stays small to move.
    pub kept: Option<Box<Kept>>,
    /// Set when the server ended the stream (Ok) or it failed.
    pub end: Option<Result<(), StreamError>>,
    /// A response that is not gRPC: its head and first body bytes.
    pub foreign: Option<Box<Foreign>>,
}

/// A response that is not gRPC (an HTTP status other than 200, or another
/// content-type): what gRPC clients quote of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Foreign {
    pub status: u16,
    pub content_type: Option<String>,
    /// The body's first [`FOREIGN_BODY_MAX`] bytes.
    pub body: Vec<u8>,
}

/// How much of a foreign body is kept.
pub const FOREIGN_BODY_MAX: usize = 128;

/// A generic request's response, kept for its reader.
#[derive(Default)]
pub struct Kept {
    pub headers: Option<HeaderMap>,
    pub trailers: Option<HeaderMap>,
    pub data: VecDeque<Bytes>,
}

/// Counts whole gRPC messages in DATA (5-byte prefixes), not decoding them.
#[derive(Default)]
pub struct MessageCounter {
    skip: u64,
    prefix: [u8; 5],
    have: usize,
    pub count: u64,
}

impl MessageCounter {
    pub fn feed(&mut self, mut b: &[u8]) {
        while !b.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(b.len() as u64) as usize;
                b = &b[n..];
                self.skip -= n as u64;
                continue;
            }
            let n = (5 - self.have).min(b.len());
            self.prefix[self.have..self.have + n].copy_from_slice(&b[..n]);
            b = &b[n..];
            self.have += n;
            if self.have == 5 {
                self.have = 0;
                self.count += 1;
                let [_, a, b2, c, d] = self.prefix;
                self.skip = u64::from(u32::from_be_bytes([a, b2, c, d]));
            }
        }
    }
}

pub struct Stream {
    send_window: i64,
    queued: VecDeque<Bytes>,
    end_queued: bool,
    pub end_sent: bool,
    in_blocked: bool,
    recv_window: i64,
    recv_unacked: u32,
    /// Keep headers and DATA (generic requests) or count messages (load).
    pub keep: bool,
    pub resp: Resp,
    pub waker: Option<Waker>,
}

/// A request head as encoded on this connection.
struct HeadEnc {
    head: Arc<RequestHead>,
    /// The block that indexes the fields, until it has been sent once.
    first: Option<Vec<u8>>,
    then: Vec<u8>,
}

/// How a stream's headers are given.
pub enum Block<'a> {
    /// A load run's head: indexed after the first use where it fits.
    Head(&'a Arc<RequestHead>),
    /// A ready block of literals.
    Raw(Vec<u8>),
}

pub struct State {
    /// Frames waiting for the driver.
    pub out: BytesMut,
    /// The driver was woken since it last took `out`.
    pub kicked: bool,
    pub streams: HashMap<u32, Stream, BuildHasherDefault<IdHasher>>,
    /// Streams the server has not ended yet.
    live: usize,
    next_id: u32,
    peer_window: i64,
    pub peer_max_frame: usize,
    peer_table: u32,
    conn_window: i64,
    blocked: VecDeque<u32>,
    recv_conn_window: i64,
    recv_conn_unacked: u32,
    /// The last stream id of the server's GOAWAY: no new streams here.
    pub goaway: Option<u32>,
    /// The connection is over, and why (streams then fail with this).
    pub ended: Option<Arc<str>>,
    /// Every handle but the streams' is gone: close when they are.
    pub abandoned: bool,
    /// Close now, whatever is open (grpcdoc shuts the connection down).
    pub close_now: bool,
    heads: Vec<HeadEnc>,
    indexed_used: bool,
    /// Send a dynamic table size update (to 0) before the next block.
    size_update: bool,
    indexing_off: bool,
}

pub fn frame_head(out: &mut BytesMut, len: usize, kind: FrameType, flags: u8, id: u32) {
    out.put_uint(len as u64, 3);
    out.put_u8(kind.as_u8());
    out.put_u8(flags);
    out.put_u32(id);
}

impl State {
    /// A new connection's state, its preface, SETTINGS and connection
    /// WINDOW_UPDATE queued.
    pub fn new() -> Self {
        let mut out = BytesMut::with_capacity(16 * 1024);
        out.extend_from_slice(crate::h2wire::frame::CLIENT_PREFACE);
        let settings = [
            (setting::ENABLE_PUSH, 0),
            (setting::INITIAL_WINDOW_SIZE, STREAM_WINDOW),
        ];
        frame_head(&mut out, settings.len() * 6, FrameType::Settings, 0, 0);
        for (k, v) in settings {
            out.put_u16(k);
            out.put_u32(v);
        }
        frame_head(&mut out, 4, FrameType::WindowUpdate, 0, 0);
        out.put_u32(CONN_WINDOW - DEFAULT_WINDOW as u32);
        Self {
            out,
            kicked: false,
            streams: HashMap::default(),
            live: 0,
            next_id: 1,
            peer_window: DEFAULT_WINDOW,
            peer_max_frame: DEFAULT_MAX_FRAME,
            peer_table: 4096,
            conn_window: DEFAULT_WINDOW,
            blocked: VecDeque::new(),
            recv_conn_window: i64::from(CONN_WINDOW),
            recv_conn_unacked: 0,
            goaway: None,
            ended: None,
            abandoned: false,
            close_now: false,
            heads: Vec::new(),
            indexed_used: false,
            size_update: false,
            indexing_off: false,
        }
    }

    /// Opens a stream: HEADERS (and CONTINUATION) written, then `data`.
    pub fn open(
        &mut self,
        block: Block<'_>,
        keep: bool,
        data: Option<Bytes>,
        end: bool,
    ) -> Result<u32, StreamError> {
        if let Some(why) = &self.ended {
            return Err(StreamError::Lost(why.clone()));
        }
        if let Some(last) = self.goaway {
            return Err(StreamError::GoAway(last));
        }
        if self.next_id > MAX_STREAM_ID {
            return Err(StreamError::Exhausted);
        }
        let id = self.next_id;
        self.next_id += 2;
        let mut update = [0u8; 1];
        let prefix: &[u8] = if std::mem::take(&mut self.size_update) {
            update[0] = 0x20;
            &update
        } else {
            &[]
        };
        let raw;
        let block: &[u8] = match block {
            Block::Raw(b) => {
                raw = b;
                &raw
            }
            Block::Head(h) => {
                let i = self.head_index(h);
                let enc = &mut self.heads[i];
                match enc.first.take() {
                    Some(first) => {
                        raw = first;
                        &raw
                    }
                    None => &self.heads[i].then,
                }
            }
        };
        let end_headers_now = data.is_none() && end;
        write_headers(
            &mut self.out,
            id,
            prefix,
            block,
            self.peer_max_frame,
            end_headers_now,
        );
        self.live += 1;
        self.streams.insert(
            id,
            Stream {
                send_window: self.peer_window,
                queued: VecDeque::new(),
                end_queued: end_headers_now,
                end_sent: end_headers_now,
                in_blocked: false,
                recv_window: i64::from(STREAM_WINDOW),
                recv_unacked: 0,
                keep,
                resp: Resp {
                    kept: keep.then(Box::default),
                    ..Resp::default()
                },
                waker: None,
            },
        );
        if let Some(d) = data {
            self.send_data(id, d, end);
        }
        Ok(id)
    }

    /// This connection's encoding of a head, made on first use.
    fn head_index(&mut self, h: &Arc<RequestHead>) -> usize {
        if let Some(i) = self.heads.iter().position(|e| Arc::ptr_eq(&e.head, h)) {
            return i;
        }
        // One head at most is indexed: its entries' indices stay put only
        // while nothing else enters the server's table.
        let enc = if !self.indexed_used
            && !self.indexing_off
            && h.table_size() <= self.peer_table as usize
        {
            self.indexed_used = true;
            let (first, then) = h.indexed_blocks();
            HeadEnc {
                head: h.clone(),
                first: Some(first),
                then,
            }
        } else {
            HeadEnc {
                head: h.clone(),
                first: None,
                then: h.literal_block(),
            }
        };
        self.heads.push(enc);
        self.heads.len() - 1
    }

    /// Queues DATA on a stream and writes what flow control allows.
    pub fn send_data(&mut self, id: u32, data: Bytes, end: bool) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if s.end_queued {
            return;
        }
        let n = data.len();
        if s.queued.is_empty()
            && n <= self.peer_max_frame
            && n as i64 <= self.conn_window.min(s.send_window)
        {
            // Within both windows and one frame: straight out, no queue.
            let fl = if end { flags::END_STREAM } else { 0 };
            frame_head(&mut self.out, n, FrameType::Data, fl, id);
            self.out.extend_from_slice(&data);
            self.conn_window -= n as i64;
            s.send_window -= n as i64;
            s.end_queued = end;
            s.end_sent = end;
            return;
        }
        s.queued.push_back(data);
        s.end_queued = end;
        self.flush_stream(id);
    }

    /// Writes a stream's queued DATA within both send windows.
    fn flush_stream(&mut self, id: u32) {
        let max = self.peer_max_frame;
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        loop {
            let queued = s.queued.len();
            let Some(front) = s.queued.front_mut() else {
                if s.end_queued && !s.end_sent {
                    frame_head(&mut self.out, 0, FrameType::Data, flags::END_STREAM, id);
                    s.end_sent = true;
                }
                return;
            };
            if front.is_empty() && queued > 1 {
                s.queued.pop_front();
                continue;
            }
            let n = (front.len() as i64)
                .min(max as i64)
                .min(self.conn_window)
                .min(s.send_window)
                .max(0) as usize;
            if n == 0 && !front.is_empty() {
                if self.conn_window <= 0 && !s.in_blocked {
                    s.in_blocked = true;
                    self.blocked.push_back(id);
                }
                return;
            }
            let chunk = front.split_to(n);
            let last = front.is_empty() && queued == 1 && s.end_queued;
            let fl = if last { flags::END_STREAM } else { 0 };
            frame_head(&mut self.out, n, FrameType::Data, fl, id);
            self.out.extend_from_slice(&chunk);
            self.conn_window -= n as i64;
            s.send_window -= n as i64;
            if front.is_empty() {
                s.queued.pop_front();
            }
            if last {
                s.end_sent = true;
                return;
            }
        }
    }

    /// Streams blocked on the connection window write again.
    fn flush_blocked(&mut self) {
        while self.conn_window > 0 {
            let Some(id) = self.blocked.pop_front() else {
                return;
            };
            if let Some(s) = self.streams.get_mut(&id) {
                s.in_blocked = false;
            }
            self.flush_stream(id);
        }
    }

    /// Removes a stream the caller is done with: RST_STREAM when either
    /// side has not finished (the caller gave it up).
    pub fn drop_stream(&mut self, id: u32) -> Option<Stream> {
        let s = self.streams.remove(&id)?;
        let reset = match &s.resp.end {
            None => {
                self.live -= 1;
                Some(ErrorCode::CANCEL)
            }
            Some(Ok(())) if !s.end_sent => Some(ErrorCode::NO_ERROR),
            _ => None,
        };
        if let (Some(code), None) = (reset, &self.ended) {
            frame_head(&mut self.out, 4, FrameType::RstStream, 0, id);
            self.out.put_u32(code.0);
        }
        // Capacity the server used on this stream is the connection's again.
        self.release_conn(s.recv_unacked);
        Some(s)
    }

    /// Gives `n` received bytes of a stream back to the server.
    pub fn release(&mut self, id: u32, n: u32) {
        self.release_conn(n);
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        s.recv_unacked += n;
        if s.recv_unacked >= STREAM_WINDOW / 2 && s.resp.end.is_none() {
            frame_head(&mut self.out, 4, FrameType::WindowUpdate, 0, id);
            self.out.put_u32(s.recv_unacked);
            s.recv_window += i64::from(s.recv_unacked);
            s.recv_unacked = 0;
        }
    }

    fn release_conn(&mut self, n: u32) {
        self.recv_conn_unacked += n;
        if self.recv_conn_unacked >= CONN_WINDOW / 2 {
            frame_head(&mut self.out, 4, FrameType::WindowUpdate, 0, 0);
            self.out.put_u32(self.recv_conn_unacked);
            self.recv_conn_window += i64::from(self.recv_conn_unacked);
            self.recv_conn_unacked = 0;
        }
    }

    /// Ends a stream with `end` and wakes its caller.
    pub fn finish(&mut self, id: u32, end: Result<(), StreamError>) {
        if let Some(s) = self.streams.get_mut(&id) {
            if s.resp.end.is_none() {
                s.resp.end = Some(end);
                self.live -= 1;
            }
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        }
    }

    /// DATA received: flow control, then the payload to its stream.
    /// `flow` is the frame's whole length (padding counts).
    /// A frame on a stream grpcdoc never opened (an idle one, or a
    /// server-initiated even id with push off) is a connection error
    /// PROTOCOL_ERROR (RFC 9113 5.1); one on a stream that has ended is not.
    pub fn check_opened(&self, kind: FrameType, id: u32) -> Result<(), ConnFault> {
        if id == 0 || id.is_multiple_of(2) || id >= self.next_id {
            return Err(ConnFault {
                code: ErrorCode::PROTOCOL_ERROR,
                why: format!("{} on stream {id}, which grpcdoc never opened", kind.name()),
            });
        }
        Ok(())
    }

    pub fn on_data(&mut self, id: u32, flow: u32, data: &[u8], end: bool) -> Result<(), ConnFault> {
        self.check_opened(FrameType::Data, id)?;
        self.recv_conn_window -= i64::from(flow);
        if self.recv_conn_window < 0 {
            return Err(ConnFault {
                code: ErrorCode::FLOW_CONTROL_ERROR,
                why: "the server sent more DATA than the connection window allows".into(),
            });
        }
        let Some(s) = self.streams.get_mut(&id) else {
            self.release_conn(flow);
            return Ok(());
        };
        if s.resp.end.is_some() {
            self.release_conn(flow);
            return Ok(());
        }
        s.recv_window -= i64::from(flow);
        if s.recv_window < 0 || s.resp.status.is_none() {
            let code = if s.recv_window < 0 {
                ErrorCode::FLOW_CONTROL_ERROR
            } else {
                ErrorCode::PROTOCOL_ERROR
            };
            self.release_conn(flow);
            frame_head(&mut self.out, 4, FrameType::RstStream, 0, id);
            self.out.put_u32(code.0);
            let why = format!("the server broke HTTP/2 on this stream ({code}); grpcdoc reset it");
            self.finish(id, Err(StreamError::Lost(why.into())));
            return Ok(());
        }
        let padding = flow - data.len() as u32;
        if let Some(f) = &mut s.resp.foreign {
            let room = FOREIGN_BODY_MAX.saturating_sub(f.body.len());
            f.body.extend_from_slice(&data[..data.len().min(room)]);
        }
        if let Some(k) = &mut s.resp.kept {
            if !data.is_empty() {
                k.data.push_back(Bytes::copy_from_slice(data));
            }
            // The payload is given back as the caller reads it.
            self.release(id, padding);
        } else {
            if s.resp.foreign.is_none() {
                s.resp.messages.feed(data);
            }
            self.release(id, flow);
        }
        if end {
            self.finish(id, Ok(()));
        } else if let Some(s) = self.streams.get_mut(&id) {
            if s.keep {
                if let Some(w) = s.waker.take() {
                    w.wake();
                }
            }
        }
        Ok(())
    }

    pub fn on_rst(&mut self, id: u32, code: ErrorCode) -> Result<(), ConnFault> {
        self.check_opened(FrameType::RstStream, id)?;
        if let Some(s) = self.streams.get_mut(&id) {
            // Nothing more to send on a reset stream.
            s.end_sent = true;
            s.queued.clear();
            self.finish(id, Err(StreamError::Reset(code)));
        }
        Ok(())
    }

    pub fn on_goaway(&mut self, last: u32) {
        let last = self.goaway.map_or(last, |l| l.min(last));
        self.goaway = Some(last);
        let refused: Vec<u32> = self
            .streams
            .keys()
            .copied()
            .filter(|&id| id > last)
            .collect();
        for id in refused {
            if let Some(s) = self.streams.get_mut(&id) {
                s.end_sent = true;
                s.queued.clear();
            }
            self.finish(id, Err(StreamError::GoAway(last)));
        }
    }

    pub fn on_settings(&mut self, params: &[(u16, u32)]) -> Result<(), ConnFault> {
        for &(k, v) in params {
            match k {
                setting::INITIAL_WINDOW_SIZE => {
                    if i64::from(v) > MAX_WINDOW {
                        return Err(ConnFault {
                            code: ErrorCode::FLOW_CONTROL_ERROR,
                            why: format!("SETTINGS_INITIAL_WINDOW_SIZE {v} is over 2^31-1"),
                        });
                    }
                    let delta = i64::from(v) - self.peer_window;
                    self.peer_window = i64::from(v);
                    for s in self.streams.values_mut() {
                        s.send_window += delta;
                    }
                    let ids: Vec<u32> = self.streams.keys().copied().collect();
                    for id in ids {
                        self.flush_stream(id);
                    }
                }
                setting::MAX_FRAME_SIZE => {
                    if !(16_384..=16_777_215).contains(&v) {
                        return Err(ConnFault {
                            code: ErrorCode::PROTOCOL_ERROR,
                            why: format!("SETTINGS_MAX_FRAME_SIZE {v} is outside 2^14..2^24-1"),
                        });
                    }
                    self.peer_max_frame = v as usize;
                }
                setting::HEADER_TABLE_SIZE => {
                    if v < self.peer_table || (self.indexed_used && v != self.peer_table) {
                        // Shrunk, or changed under our entries: say the
                        // table is empty and send literals from now on.
                        self.size_update = true;
                        self.indexing_off = true;
                        for h in &mut self.heads {
                            h.first = None;
                            h.then = h.head.literal_block();
                        }
                    }
                    self.peer_table = v;
                }
                _ => {}
            }
        }
        frame_head(&mut self.out, 0, FrameType::Settings, flags::ACK, 0);
        Ok(())
    }

    pub fn on_window_update(&mut self, id: u32, inc: u32) -> Result<(), ConnFault> {
        if id == 0 {
            if inc == 0 || self.conn_window + i64::from(inc) > MAX_WINDOW {
                return Err(ConnFault {
                    code: if inc == 0 {
                        ErrorCode::PROTOCOL_ERROR
                    } else {
                        ErrorCode::FLOW_CONTROL_ERROR
                    },
                    why: format!("connection WINDOW_UPDATE of {inc} is invalid"),
                });
            }
            self.conn_window += i64::from(inc);
            self.flush_blocked();
            return Ok(());
        }
        self.check_opened(FrameType::WindowUpdate, id)?;
        let Some(s) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        if inc == 0 || s.send_window + i64::from(inc) > MAX_WINDOW {
            let code = if inc == 0 {
                ErrorCode::PROTOCOL_ERROR
            } else {
                ErrorCode::FLOW_CONTROL_ERROR
            };
            frame_head(&mut self.out, 4, FrameType::RstStream, 0, id);
            self.out.put_u32(code.0);
            s.end_sent = true;
            s.queued.clear();
            let why =
                format!("the server sent a bad WINDOW_UPDATE ({code}); grpcdoc reset the stream");
            self.finish(id, Err(StreamError::Lost(why.into())));
            return Ok(());
        }
        s.send_window += i64::from(inc);
        self.flush_stream(id);
        Ok(())
    }

    /// The connection is over: every stream fails with `why`.
    pub fn fail_all(&mut self, why: &str) {
        let why: Arc<str> = why.into();
        self.ended.get_or_insert(why.clone());
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        for id in ids {
            self.finish(id, Err(StreamError::Lost(why.clone())));
        }
    }

    /// Streams still open on the wire (not ended by the server).
    pub fn live_streams(&self) -> usize {
        self.live
    }

    /// Queues a GOAWAY of ours.
    pub fn goaway_frame(&mut self, code: ErrorCode, debug: &[u8]) {
        frame_head(&mut self.out, 8 + debug.len(), FrameType::GoAway, 0, 0);
        self.out.put_u32(0);
        self.out.put_u32(code.0);
        self.out.extend_from_slice(debug);
    }
}

/// HEADERS then CONTINUATION frames, each at most `max` bytes of block.
fn write_headers(out: &mut BytesMut, id: u32, prefix: &[u8], block: &[u8], max: usize, end: bool) {
    let total = prefix.len() + block.len();
    let end_flag = if end { flags::END_STREAM } else { 0 };
    if total <= max {
        frame_head(
            out,
            total,
            FrameType::Headers,
            flags::END_HEADERS | end_flag,
            id,
        );
        out.extend_from_slice(prefix);
        out.extend_from_slice(block);
        return;
    }
    let mut all = Vec::with_capacity(total);
    all.extend_from_slice(prefix);
    all.extend_from_slice(block);
    let mut chunks = all.chunks(max).peekable();
    let mut kind = FrameType::Headers;
    let mut fl = end_flag;
    while let Some(c) = chunks.next() {
        if chunks.peek().is_none() {
            fl |= flags::END_HEADERS;
        }
        frame_head(out, c.len(), kind, fl, id);
        out.extend_from_slice(c);
        kind = FrameType::Continuation;
        fl = 0;
    }
}
