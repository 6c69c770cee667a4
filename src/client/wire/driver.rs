//! The task that runs a lean connection: writes what the calls queued in
//! one write, reads and applies the server's frames, answers SETTINGS and
//! PING, and ends the connection on EOF, on an error, after a GOAWAY once
//! its streams are done, or when nobody holds it any more.

use std::future::poll_fn;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{BufMut, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::state::{frame_head, ConnFault};
use super::Shared;
use crate::h2wire::frame::{flags, FRAME_HEADER_LEN};
use crate::h2wire::{ControlFrame, ErrorCode, FrameHeader, FrameType};

/// The largest frame we take (SETTINGS_MAX_FRAME_SIZE left at its default).
const MAX_FRAME: usize = 16_384;
const READ_BUF: usize = 64 * 1024;
/// A header block (HEADERS and its CONTINUATIONs) longer than this ends the
/// connection: nothing a gRPC server sends is that long.
const MAX_BLOCK: usize = 1024 * 1024;
/// Loop turns before the driver yields to the calls it woke.
const TURNS: u32 = 16;

/// How a connection that ended without an error of its own ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The server closed it (EOF).
    PeerClosed,
    /// grpcdoc closed it after the server's GOAWAY, its streams done.
    AfterGoaway,
    /// grpcdoc closed it (nobody held it any more, or it was told to): our
    /// GOAWAY went out first.
    Local,
}

/// How the connection failed.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("grpcdoc closed the connection with {code}: {why}")]
    Protocol { code: ErrorCode, why: String },
}

struct Driver<T> {
    io: T,
    shared: Arc<Shared>,
    rbuf: Vec<u8>,
    rstart: usize,
    rend: usize,
    wbuf: BytesMut,
    /// How much of `wbuf` is written.
    wpos: usize,
    decoder: loona_hpack::Decoder<'static>,
    /// A header block waiting for CONTINUATION: stream, END_STREAM, bytes.
    partial: Option<(u32, bool, Vec<u8>)>,
    /// Reading is over (EOF or error); then: the result to end with once
    /// everything queued is written.
    closing: Option<Result<Ending, WireError>>,
}

/// Runs the connection over `io` until it ends.
pub async fn run<T: AsyncRead + AsyncWrite + Unpin>(
    io: T,
    shared: Arc<Shared>,
) -> Result<Ending, WireError> {
    let mut decoder = loona_hpack::Decoder::new();
    decoder.set_max_allowed_table_size(4096);
    let mut d = Driver {
        io,
        shared,
        rbuf: vec![0; READ_BUF],
        rstart: 0,
        rend: 0,
        wbuf: BytesMut::new(),
        wpos: 0,
        decoder,
        partial: None,
        closing: None,
    };
    poll_fn(|cx| d.poll(cx)).await
}

/// Header fields grpcdoc reads from a response block.
#[derive(Default)]
struct Fields {
    status: Option<u16>,
    /// Any content-type but gRPC's (a gRPC one is not copied).
    foreign_type: Option<String>,
    grpc_type: bool,
    grpc_status: Option<i32>,
    grpc_message: Option<String>,
    map: Option<HeaderMap>,
}

fn parse_num<N: std::str::FromStr>(v: &[u8]) -> Option<N> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

impl<T: AsyncRead + AsyncWrite + Unpin> Driver<T> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<Ending, WireError>> {
        self.shared.driver.register(cx.waker());
        for _ in 0..TURNS {
            let mut busy = false;
            if self.closing.is_none() {
                match self.poll_read(cx) {
                    Poll::Ready(Ok(())) => busy = true,
                    Poll::Ready(Err(e)) => self.close(Err(e)),
                    Poll::Pending => {}
                }
            }
            match self.poll_write(cx) {
                Poll::Ready(Ok(wrote)) => busy |= wrote,
                Poll::Ready(Err(e)) => {
                    let mut st = self.shared.lock();
                    st.fail_all(&format!("writing to the server failed: {e}"));
                    drop(st);
                    return Poll::Ready(match self.closing.take() {
                        Some(Err(first)) => Err(first),
                        // Closing ourselves, and the peer had gone already.
                        Some(Ok(Ending::Local)) => Ok(Ending::Local),
                        _ => Err(WireError::Io(e)),
                    });
                }
                Poll::Pending => {}
            }
            if let Some(done) = self.finished() {
                return Poll::Ready(done);
            }
            if !busy {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Reading stopped: fail the streams, and end once the queue is out.
    fn close(&mut self, res: Result<Ending, WireError>) {
        let why = match &res {
            Ok(Ending::PeerClosed) => {
                "the server closed the connection (EOF, no GOAWAY)".to_string()
            }
            Ok(Ending::AfterGoaway) => {
                "the server closed the connection after its GOAWAY".to_string()
            }
            Ok(Ending::Local) => "grpcdoc closed the connection".to_string(),
            Err(WireError::Io(e)) => format!("connection error: {e}"),
            Err(e) => e.to_string(),
        };
        let mut st = self.shared.lock();
        if let Err(WireError::Protocol { code, why }) = &res {
            st.goaway_frame(*code, why.as_bytes());
        }
        st.fail_all(&why);
        drop(st);
        self.closing = Some(res);
    }

    fn finished(&mut self) -> Option<Result<Ending, WireError>> {
        let mut st = self.shared.lock();
        let drained = st.out.is_empty() && self.wbuf.is_empty();
        if self.closing.is_some() {
            return drained.then(|| self.closing.take().unwrap_or(Ok(Ending::PeerClosed)));
        }
        let idle = st.live_streams() == 0;
        if (st.close_now || (idle && st.abandoned)) && self.closing.is_none() {
            // Our GOAWAY first, as grpc-go's and h2's clients do; the
            // connection ends once it is written.
            st.fail_all("the connection was closed by grpcdoc");
            st.goaway_frame(ErrorCode::NO_ERROR, b"");
            drop(st);
            self.closing = Some(Ok(Ending::Local));
            self.shared.driver.wake();
            return None;
        }
        if idle && st.goaway.is_some() && drained {
            st.fail_all("the connection was closed after the server's GOAWAY");
            return Some(Ok(Ending::AfterGoaway));
        }
        None
    }

    /// Writes everything queued; Ready(true) when something was written.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        if self.wbuf.is_empty() {
            let mut st = self.shared.lock();
            st.kicked = false;
            if st.out.is_empty() {
                return Poll::Ready(Ok(false));
            }
            std::mem::swap(&mut self.wbuf, &mut st.out);
        }
        while self.wpos < self.wbuf.len() {
            let rest = &self.wbuf[self.wpos..];
            let n = match std::pin::Pin::new(&mut self.io).poll_write(cx, rest) {
                Poll::Ready(r) => r?,
                Poll::Pending => return Poll::Pending,
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.wpos += n;
        }
        // Emptied in place: the buffer keeps its whole capacity.
        self.wbuf.clear();
        self.wpos = 0;
        match std::pin::Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Ready(r) => r?,
            Poll::Pending => return Poll::Pending,
        }
        Poll::Ready(Ok(true))
    }

    /// Reads once and applies every whole frame read.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WireError>> {
        if self.rstart > 0 && self.rbuf.len() - self.rend < MAX_FRAME + FRAME_HEADER_LEN {
            self.rbuf.copy_within(self.rstart..self.rend, 0);
            self.rend -= self.rstart;
            self.rstart = 0;
        }
        let mut rb = ReadBuf::new(&mut self.rbuf[self.rend..]);
        match std::pin::Pin::new(&mut self.io).poll_read(cx, &mut rb) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(r) => r?,
        }
        let n = rb.filled().len();
        if n == 0 {
            let mid = self.rend > self.rstart || self.partial.is_some();
            self.close(if mid {
                Err(WireError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection in the middle of a frame",
                )))
            } else if self.shared.lock().goaway.is_some() {
                // The close a GOAWAY announced: not an unexplained EOF.
                Ok(Ending::AfterGoaway)
            } else {
                Ok(Ending::PeerClosed)
            });
            return Poll::Ready(Ok(()));
        }
        self.rend += n;
        if let Err(f) = self.frames() {
            self.close(Err(WireError::Protocol {
                code: f.code,
                why: f.why,
            }));
        }
        Poll::Ready(Ok(()))
    }

    /// Applies the whole frames in the read buffer.
    fn frames(&mut self) -> Result<(), ConnFault> {
        let shared = self.shared.clone();
        let mut st = shared.lock();
        while self.rend - self.rstart >= FRAME_HEADER_LEN {
            let Some(h) = FrameHeader::parse_prefix(&self.rbuf[self.rstart..self.rend]) else {
                break;
            };
            let len = h.length as usize;
            if len > MAX_FRAME {
                return Err(ConnFault {
                    code: ErrorCode::FRAME_SIZE_ERROR,
                    why: format!(
                        "{} frame of {len} bytes, over the 16384 allowed",
                        h.kind.name()
                    ),
                });
            }
            if self.rend - self.rstart < FRAME_HEADER_LEN + len {
                break;
            }
            let at = self.rstart + FRAME_HEADER_LEN;
            self.rstart = at + len;
            let payload = &self.rbuf[at..at + len];
            if let Some((sid, _, _)) = &self.partial {
                if h.kind != FrameType::Continuation || h.stream_id != *sid {
                    return Err(ConnFault {
                        code: ErrorCode::PROTOCOL_ERROR,
                        why: "a header block was interrupted by another frame".into(),
                    });
                }
            }
            match h.kind {
                FrameType::Data => {
                    let data = strip_padding(&h, payload)?;
                    st.on_data(h.stream_id, len as u32, data, h.has_flag(flags::END_STREAM))?;
                }
                FrameType::Headers => {
                    let mut block = strip_padding(&h, payload)?;
                    if h.has_flag(flags::PRIORITY) {
                        block = block.get(5..).ok_or_else(|| ConnFault {
                            code: ErrorCode::PROTOCOL_ERROR,
                            why: "HEADERS too short for its priority fields".into(),
                        })?;
                    }
                    let end = h.has_flag(flags::END_STREAM);
                    if h.has_flag(flags::END_HEADERS) {
                        headers(&mut self.decoder, &mut st, h.stream_id, end, block)?;
                    } else {
                        self.partial = Some((h.stream_id, end, block.to_vec()));
                    }
                }
                FrameType::Continuation => {
                    let Some((sid, end, mut block)) = self.partial.take() else {
                        return Err(ConnFault {
                            code: ErrorCode::PROTOCOL_ERROR,
                            why: "CONTINUATION without a header block under way".into(),
                        });
                    };
                    block.extend_from_slice(payload);
                    if block.len() > MAX_BLOCK {
                        return Err(ConnFault {
                            code: ErrorCode::ENHANCE_YOUR_CALM,
                            why: "a header block over 1 MiB".into(),
                        });
                    }
                    if h.has_flag(flags::END_HEADERS) {
                        headers(&mut self.decoder, &mut st, sid, end, &block)?;
                    } else {
                        self.partial = Some((sid, end, block));
                    }
                }
                FrameType::PushPromise => {
                    return Err(ConnFault {
                        code: ErrorCode::PROTOCOL_ERROR,
                        why: "PUSH_PROMISE, which grpcdoc turned off".into(),
                    })
                }
                FrameType::Settings
                | FrameType::Ping
                | FrameType::GoAway
                | FrameType::RstStream
                | FrameType::WindowUpdate => {
                    let f = ControlFrame::parse(&h, payload).map_err(|e| ConnFault {
                        code: if matches!(e, crate::h2wire::frame::FrameError::BadLength { .. }) {
                            ErrorCode::FRAME_SIZE_ERROR
                        } else {
                            ErrorCode::PROTOCOL_ERROR
                        },
                        why: e.to_string(),
                    })?;
                    match f {
                        ControlFrame::Settings { ack: true, .. } => {}
                        ControlFrame::Settings { ack: false, params } => st.on_settings(&params)?,
                        ControlFrame::Ping { ack: false, data } => {
                            frame_head(&mut st.out, 8, FrameType::Ping, flags::ACK, 0);
                            st.out.put_slice(&data);
                        }
                        // Our keepalive pings' acks: the tap times them.
                        ControlFrame::Ping { ack: true, .. } => {}
                        ControlFrame::GoAway { last_stream_id, .. } => st.on_goaway(last_stream_id),
                        ControlFrame::RstStream { stream_id, code } => {
                            st.on_rst(stream_id, code)?
                        }
                        ControlFrame::WindowUpdate {
                            stream_id,
                            increment,
                        } => st.on_window_update(stream_id, increment)?,
                    }
                }
                // PRIORITY and unknown frame types are ignored (RFC 9113 5.5).
                _ => {}
            }
        }
        if self.rstart == self.rend {
            self.rstart = 0;
            self.rend = 0;
        }
        Ok(())
    }
}

/// A whole header block: decoded (always: the table must stay in step),
/// then given to its stream as the response head or its trailers.
fn headers(
    decoder: &mut loona_hpack::Decoder<'static>,
    st: &mut super::state::State,
    id: u32,
    end: bool,
    block: &[u8],
) -> Result<(), ConnFault> {
    let keep = st.streams.get(&id).map(|s| s.keep);
    let mut f = Fields {
        map: keep.unwrap_or(false).then(HeaderMap::new),
        ..Fields::default()
    };
    decoder
        .decode_with_cb(block, |n, v| {
            match &n[..] {
                b":status" => f.status = parse_num(&v),
                b"grpc-status" => f.grpc_status = parse_num(&v),
                b"grpc-message" => f.grpc_message = Some(String::from_utf8_lossy(&v).into_owned()),
                b"content-type" if v.starts_with(b"application/grpc") => f.grpc_type = true,
                b"content-type" => f.foreign_type = Some(String::from_utf8_lossy(&v).into_owned()),
                _ => {}
            }
            if let Some(m) = &mut f.map {
                if let (false, Ok(n), Ok(v)) = (
                    n.starts_with(b":"),
                    HeaderName::from_bytes(&n),
                    HeaderValue::from_bytes(&v),
                ) {
                    m.append(n, v);
                }
            }
        })
        .map_err(|e| ConnFault {
            code: ErrorCode::COMPRESSION_ERROR,
            why: format!("the server's header block does not decode: {e:?}"),
        })?;
    // Decoded first: a block that does not decode is a COMPRESSION_ERROR
    // whatever stream it names.
    st.check_opened(FrameType::Headers, id)?;
    let Some(s) = st.streams.get_mut(&id) else {
        return Ok(());
    };
    if s.resp.end.is_some() {
        return Ok(());
    }
    if s.resp.status.is_none() {
        match f.status {
            // Informational: the real head follows.
            Some(100..=199) if !end => return Ok(()),
            Some(code) => {
                s.resp.status = Some(code);
                // Not gRPC (an HTTP hop's error page, say): kept apart for
                // the call's status, never counted as messages.
                if code != 200 || !f.grpc_type && f.grpc_status.is_none() {
                    s.resp.foreign = Some(Box::new(super::Foreign {
                        status: code,
                        content_type: f.foreign_type.take(),
                        body: Vec::new(),
                    }));
                }
            }
            None => {
                let why = "the server's response has no :status";
                st.finish(id, Err(super::StreamError::Lost(why.into())));
                return Ok(());
            }
        }
        if let Some(k) = &mut s.resp.kept {
            k.headers = f.map;
        }
    } else {
        if let Some(k) = &mut s.resp.kept {
            k.trailers = f.map;
        }
    }
    if f.grpc_status.is_some() {
        s.resp.grpc_status = f.grpc_status;
        s.resp.grpc_message = f.grpc_message;
    }
    if end {
        st.finish(id, Ok(()));
    } else if let Some(w) = s.waker.take() {
        // A generic request's caller waits for the head.
        w.wake();
    }
    Ok(())
}

/// The payload without its padding (PADDED flag).
fn strip_padding<'a>(h: &FrameHeader, payload: &'a [u8]) -> Result<&'a [u8], ConnFault> {
    if !h.has_flag(flags::PADDED) {
        return Ok(payload);
    }
    let bad = || ConnFault {
        code: ErrorCode::PROTOCOL_ERROR,
        why: format!("{} frame with more padding than payload", h.kind.name()),
    };
    let pad = *payload.first().ok_or_else(bad)? as usize;
    if pad + 1 > payload.len() {
        return Err(bad());
    }
    Ok(&payload[1..payload.len() - pad])
}
