//! The proxy as a gRPC-aware tap: the frames of one cleartext HTTP/2
//! connection, on the client's side, read as calls. Each stream becomes
//! one `rpc` event - method, status and message from the trailers (or the
//! HTTP status mapped as grpc does), a reset either way, a stream the
//! server never processed, the connection lost under it - with its latency
//! from the client's HEADERS to its end; and the control frames the client
//! got or sent (GOAWAY, PING, RST_STREAM) become events as the client saw
//! them (`received` is what reached the client).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::event::{CallCause, EventKind, EventSink};
use crate::h2wire::frame::flags;
use crate::h2wire::{ControlFrame, Dir, ErrorCode, FrameHeader, FrameType};

/// A header block being collected (HEADERS then CONTINUATION frames).
struct Block {
    stream: u32,
    end_stream: bool,
    bytes: Vec<u8>,
}

/// The fields of a header block a call needs.
#[derive(Default)]
struct Fields {
    path: Option<String>,
    timeout: Option<Duration>,
    status: Option<u16>,
    content_type: Option<String>,
    grpc_status: Option<i32>,
    grpc_message: Option<String>,
}

/// One call, from its request HEADERS on.
struct Call {
    method: String,
    start: Instant,
    /// The request's grpc-timeout.
    timeout: Option<Duration>,
    status: Option<u16>,
    content_type: Option<String>,
    grpc_status: Option<i32>,
    grpc_message: Option<String>,
}

pub struct CallTap {
    conn: u64,
    addr: Arc<str>,
    events: EventSink,
    /// Header blocks from the client, and to it: one HPACK context each.
    from_client: loona_hpack::Decoder<'static>,
    to_client: loona_hpack::Decoder<'static>,
    block_in: Option<Block>,
    block_out: Option<Block>,
    calls: HashMap<u32, Call>,
    /// The last GOAWAY the client got: its debug data.
    drained: Option<String>,
    /// A header block did not decode: the HPACK context is lost, calls on
    /// this connection can no longer be read.
    lost: bool,
    /// Tell calls that ended OK too (else only the others).
    ok_calls: bool,
}

/// Whether a call that began (here) at `start` has reached its
/// grpc-timeout `t`: the client's clock started before ours and its timer
/// may be read a little early here, so with a margin (a tenth, at least
/// 50 ms).
fn at_deadline(start: Instant, t: Duration) -> bool {
    start.elapsed() + (t / 10).max(Duration::from_millis(50)) >= t
}

/// The header block fragment of a HEADERS frame (padding and priority
/// taken off).
fn fragment<'a>(h: &FrameHeader, payload: &'a [u8]) -> Option<&'a [u8]> {
    let mut p = payload;
    let mut pad = 0usize;
    if h.has_flag(flags::PADDED) {
        pad = *p.first()? as usize;
        p = &p[1..];
    }
    if h.has_flag(flags::PRIORITY) {
        p = p.get(5..)?;
    }
    p.get(..p.len().checked_sub(pad)?)
}

impl CallTap {
    pub fn new(conn: u64, addr: Arc<str>, events: EventSink, ok_calls: bool) -> Self {
        Self {
            conn,
            addr,
            events,
            from_client: loona_hpack::Decoder::new(),
            to_client: loona_hpack::Decoder::new(),
            block_in: None,
            block_out: None,
            calls: HashMap::new(),
            drained: None,
            lost: false,
            ok_calls,
        }
    }

    fn emit(&self, kind: EventKind) {
        self.events
            .emit(Some(self.conn), Some(self.addr.clone()), kind);
    }

    /// A frame read from the client (`Dir::Received`) or written to it
    /// (`Dir::Sent`), with its payload.
    pub fn frame(&mut self, dir: Dir, h: &FrameHeader, payload: &[u8]) {
        let from_client = dir == Dir::Received;
        match h.kind {
            FrameType::Headers => {
                let Some(frag) = fragment(h, payload) else {
                    return;
                };
                let (stream, end_stream) = (h.stream_id, h.has_flag(flags::END_STREAM));
                if h.has_flag(flags::END_HEADERS) {
                    // The usual case: one frame, decoded where it lies.
                    self.block(from_client, stream, end_stream, frag);
                } else {
                    let block = Some(Block {
                        stream,
                        end_stream,
                        bytes: frag.to_vec(),
                    });
                    if from_client {
                        self.block_in = block;
                    } else {
                        self.block_out = block;
                    }
                }
            }
            FrameType::Continuation => {
                let slot = if from_client {
                    &mut self.block_in
                } else {
                    &mut self.block_out
                };
                if let Some(b) = slot.as_mut() {
                    b.bytes.extend_from_slice(payload);
                }
                if h.has_flag(flags::END_HEADERS) {
                    if let Some(b) = slot.take() {
                        self.block(from_client, b.stream, b.end_stream, &b.bytes);
                    }
                }
            }
            FrameType::Data if from_client => {}
            FrameType::RstStream | FrameType::GoAway | FrameType::Ping => {
                let Ok(frame) = ControlFrame::parse(h, payload) else {
                    return;
                };
                // As the client saw it: what the proxy sent it, it received.
                let seen = if from_client {
                    Dir::Sent
                } else {
                    Dir::Received
                };
                if let Some(kind) = EventKind::from_frame(seen, &frame) {
                    self.emit(kind);
                }
                match frame {
                    ControlFrame::RstStream { stream_id, code } => {
                        self.reset(stream_id, code, from_client)
                    }
                    ControlFrame::GoAway {
                        last_stream_id,
                        debug,
                        ..
                    } if !from_client => {
                        let debug = String::from_utf8_lossy(&debug).into_owned();
                        self.goaway(last_stream_id, debug);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// A whole header block: always decoded (the HPACK table must stay in
    /// step), keeping only the fields a call needs.
    fn block(&mut self, from_client: bool, stream: u32, end_stream: bool, bytes: &[u8]) {
        if self.lost {
            return;
        }
        let dec = if from_client {
            &mut self.from_client
        } else {
            &mut self.to_client
        };
        let mut f = Fields::default();
        let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
        let decoded = dec.decode_with_cb(bytes, |n, v| match &n[..] {
            b":path" if from_client => f.path = Some(text(&v)),
            b"grpc-timeout" if from_client => f.timeout = crate::grpc::parse_timeout(&text(&v)),
            b":status" => f.status = std::str::from_utf8(&v).ok().and_then(|s| s.parse().ok()),
            b"content-type" => f.content_type = Some(text(&v)),
            b"grpc-status" => {
                f.grpc_status = std::str::from_utf8(&v).ok().and_then(|s| s.parse().ok())
            }
            b"grpc-message" => f.grpc_message = Some(text(&v)),
            _ => {}
        });
        if decoded.is_err() {
            self.lost = true;
            self.emit(EventKind::Fault {
                name: "tap".into(),
                detail: "a header block did not decode (over 64 KiB, or broken): the calls on this connection cannot be read from here on".into(),
            });
            return;
        }
        if from_client {
            if self.calls.contains_key(&stream) {
                return; // the client's trailers (client streaming): nothing to read
            }
            let method = f
                .path
                .map(|p| p.trim_start_matches('/').to_string())
                .unwrap_or_default();
            self.calls.insert(
                stream,
                Call {
                    method,
                    start: Instant::now(),
                    timeout: f.timeout,
                    status: None,
                    content_type: None,
                    grpc_status: None,
                    grpc_message: None,
                },
            );
            return;
        }
        let Some(call) = self.calls.get_mut(&stream) else {
            return;
        };
        if call.status.is_none() {
            if matches!(f.status, Some(100..=199)) && !end_stream {
                return;
            }
            call.status = f.status;
            call.content_type = f.content_type;
        }
        if let Some(s) = f.grpc_status {
            call.grpc_status = Some(s);
            call.grpc_message = f.grpc_message.map(|m| crate::grpc::percent_decode(&m));
        }
        if end_stream {
            self.end(stream);
        }
    }

    /// The call's trailers reached the client: its status.
    fn end(&mut self, id: u32) {
        let Some(c) = self.calls.remove(&id) else {
            return;
        };
        let grpc_type = c
            .content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("application/grpc"));
        let foreign = c.status.is_some_and(|s| s != 200) || (!grpc_type && c.grpc_status.is_none());
        let (code, message, cause) = match (c.grpc_status, foreign) {
            (Some(s), _) if !foreign || c.status == Some(200) => {
                let code = tonic::Code::from_i32(s);
                let cause = (code != tonic::Code::Ok).then_some(CallCause::Status { code });
                (code, c.grpc_message.clone().unwrap_or_default(), cause)
            }
            _ => {
                let status = c.status.unwrap_or(0);
                let (code, message) =
                    crate::grpc::foreign_status(status, c.content_type.as_deref(), &[]);
                (code, message, Some(CallCause::Http { status }))
            }
        };
        self.rpc(&c, code, message, cause);
    }

    fn rpc(&self, c: &Call, code: tonic::Code, message: String, cause: Option<CallCause>) {
        if code == tonic::Code::Ok && !self.ok_calls {
            return;
        }
        self.emit(EventKind::Rpc {
            method: c.method.clone(),
            code,
            message,
            latency_ms: c.start.elapsed().as_secs_f64() * 1e3,
            cause,
        });
    }

    /// RST_STREAM from the client (it cancelled: its deadline, or its app)
    /// or to it (the server or a hop reset the stream).
    fn reset(&mut self, id: u32, code: ErrorCode, from_client: bool) {
        let Some(c) = self.calls.remove(&id) else {
            return;
        };
        let (code, message, cause) = if from_client {
            // A cancel at or after the call's deadline is the deadline.
            let late = c.timeout.is_some_and(|t| at_deadline(c.start, t));
            if code == ErrorCode::CANCEL && late {
                (
                    tonic::Code::DeadlineExceeded,
                    "the client's deadline passed: it reset the stream (CANCEL)".to_string(),
                    Some(CallCause::Deadline),
                )
            } else if code == ErrorCode::NO_ERROR {
                // Not a cancel: C-core resets its open streams with NO_ERROR
                // as its transport closes under them, and reports them
                // UNAVAILABLE.
                let (why, cause) = match &self.drained {
                    Some(debug) => (
                        format!(" after a GOAWAY ({debug:?})"),
                        CallCause::Draining {
                            debug: debug.clone(),
                        },
                    ),
                    None => ("".to_string(), CallCause::ConnectionLost),
                };
                (
                    tonic::Code::Unavailable,
                    format!("the connection closed under the call{why}: the client reset the stream with NO_ERROR"),
                    Some(cause),
                )
            } else {
                (
                    tonic::Code::Cancelled,
                    format!("the client reset the stream with {code}"),
                    Some(CallCause::Reset { code }),
                )
            }
        } else if code == ErrorCode::REFUSED_STREAM {
            (
                tonic::Code::Unavailable,
                format!("{} (REFUSED_STREAM)", crate::grpc::NEVER_PROCESSED),
                Some(CallCause::NeverProcessed),
            )
        } else {
            let (status, message) = crate::grpc::reset_status(code);
            (status, message, Some(CallCause::Reset { code }))
        };
        self.rpc(&c, code, message, cause);
    }

    /// A GOAWAY reached the client: streams above its last stream id were
    /// never processed (a client retries them, on a new stream).
    fn goaway(&mut self, last: u32, debug: String) {
        let refused: Vec<u32> = self.calls.keys().copied().filter(|id| *id > last).collect();
        for id in refused {
            if let Some(c) = self.calls.remove(&id) {
                self.rpc(
                    &c,
                    tonic::Code::Unavailable,
                    format!(
                        "{} (GOAWAY \"{debug}\" last stream {last})",
                        crate::grpc::NEVER_PROCESSED
                    ),
                    Some(CallCause::NeverProcessed),
                );
            }
        }
        self.drained = Some(debug);
    }

    /// The connection ended: calls still open were cut, as clients report
    /// them (UNAVAILABLE); those whose deadline had passed ended at it, and
    /// those the client gave up on by closing a connection that was not
    /// draining were cancelled.
    pub fn finish(&mut self, why: &str, by_client: bool) {
        let open: Vec<(u32, Call)> = self.calls.drain().collect();
        for (_, c) in open {
            if c.timeout.is_some_and(|t| at_deadline(c.start, t)) {
                self.rpc(
                    &c,
                    tonic::Code::DeadlineExceeded,
                    format!("the deadline passed; then the connection closed ({why})"),
                    Some(CallCause::Deadline),
                );
                continue;
            }
            // The client closed a connection that was not draining, with
            // the call open: it went away (its process ended, it gave up).
            // One that was draining it closes as the drain ends, and
            // reports the call UNAVAILABLE like any drain cut.
            if by_client && self.drained.is_none() {
                self.rpc(
                    &c,
                    tonic::Code::Cancelled,
                    format!("the client closed the connection with the call open ({why})"),
                    None,
                );
                continue;
            }
            let (message, cause) = match &self.drained {
                Some(debug) => (
                    format!("the connection closed after a GOAWAY ({debug:?}): {why}"),
                    CallCause::Draining {
                        debug: debug.clone(),
                    },
                ),
                None => (
                    format!("the connection closed under the call: {why}"),
                    CallCause::ConnectionLost,
                ),
            };
            self.rpc(&c, tonic::Code::Unavailable, message, Some(cause));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(flags: u8, len: usize) -> FrameHeader {
        FrameHeader {
            length: len as u32,
            kind: FrameType::Headers,
            flags,
            stream_id: 1,
        }
    }

    #[test]
    fn a_header_block_fragment_loses_its_padding_and_priority() {
        let plain = [1u8, 2, 3];
        assert_eq!(fragment(&header(0, 3), &plain), Some(&plain[..]));
        // PADDED: pad length 2, block, 2 bytes of padding.
        let padded = [2u8, 7, 8, 0, 0];
        assert_eq!(
            fragment(&header(flags::PADDED, 5), &padded),
            Some(&[7u8, 8][..])
        );
        // PRIORITY: 4 bytes of dependency, 1 of weight, then the block.
        let prio = [0u8, 0, 0, 0, 16, 9];
        assert_eq!(
            fragment(&header(flags::PRIORITY, 6), &prio),
            Some(&[9u8][..])
        );
        // More padding than payload: nothing to read.
        assert_eq!(fragment(&header(flags::PADDED, 2), &[5u8, 1]), None);
    }

    #[test]
    fn a_cancel_near_the_grpc_timeout_is_the_deadline() {
        let t = Duration::from_secs(1);
        let now = Instant::now();
        assert!(!at_deadline(now, t));
        assert!(at_deadline(now - Duration::from_millis(950), t));
        assert!(!at_deadline(now - Duration::from_millis(500), t));
        // Short deadlines get 50 ms of slack.
        assert!(at_deadline(
            now - Duration::from_millis(60),
            Duration::from_millis(100)
        ));
    }
}
