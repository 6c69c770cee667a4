//! The calls of one HTTP/2 connection in a capture: each stream from the
//! client's request HEADERS to its end - trailers with grpc-status, an HTTP
//! status without gRPC (an error page), a reset either way, a GOAWAY that
//! refused it, the connection closing under it - as one `rpc` outcome with
//! capture-time latency. Header blocks are decoded with HPACK (one
//! context per direction, kept in step by decoding every block); once a
//! block cannot be decoded (the capture joined the connection midway, or
//! lost bytes) that direction's headers are unknown from there on.

use std::collections::HashMap;
use std::time::Duration;

use crate::event::CallCause;
use crate::h2wire::frame::flags;
use crate::h2wire::{ErrorCode, FrameHeader};

/// How a call ended.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Outcome {
    pub method: String,
    pub code: tonic::Code,
    pub message: String,
    pub start_ns: u64,
    pub cause: Option<CallCause>,
}

/// The header fields a call needs.
#[derive(Default)]
struct Fields {
    path: Option<String>,
    timeout: Option<Duration>,
    status: Option<u16>,
    content_type: Option<String>,
    grpc_status: Option<i32>,
    grpc_message: Option<String>,
}

struct Call {
    method: String,
    start_ns: u64,
    timeout: Option<Duration>,
    status: Option<u16>,
    content_type: Option<String>,
    grpc_status: Option<i32>,
    grpc_message: Option<String>,
}

/// A header block under way (HEADERS then CONTINUATION).
struct Block {
    stream: u32,
    end_stream: bool,
    bytes: Vec<u8>,
}

/// Header blocks above this size are not gathered (and the direction's
/// HPACK context is lost): a peer cannot grow memory without bound.
const MAX_BLOCK: usize = 256 * 1024;
/// Calls open at once on one connection that are followed.
const MAX_OPEN: usize = 100_000;

pub(crate) struct Calls {
    /// Index 0: the client's blocks; 1: the server's.
    hpack: [loona_hpack::Decoder<'static>; 2],
    blocks: [Option<Block>; 2],
    /// A direction whose header blocks can no longer be decoded.
    pub lost: [bool; 2],
    open: HashMap<u32, Call>,
    /// Streams the client opened whose request could not be read.
    pub unreadable: u64,
    /// Streams opened (request HEADERS seen).
    pub streams: u64,
    /// The last GOAWAY the client got: its debug data.
    drained: Option<String>,
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

/// Whether a call that began at `start_ns` had reached its grpc-timeout by
/// `now_ns` (with a margin: a tenth, at least 50 ms, as the client's clock
/// started before the request left it).
fn at_deadline(start_ns: u64, now_ns: u64, t: Duration) -> bool {
    let elapsed = Duration::from_nanos(now_ns.saturating_sub(start_ns));
    elapsed + (t / 10).max(Duration::from_millis(50)) >= t
}

impl Calls {
    pub(crate) fn new() -> Self {
        Self {
            hpack: [loona_hpack::Decoder::new(), loona_hpack::Decoder::new()],
            blocks: [None, None],
            lost: [false, false],
            open: HashMap::new(),
            unreadable: 0,
            streams: 0,
            drained: None,
        }
    }

    /// Calls still open.
    pub(crate) fn open_calls(&self) -> usize {
        self.open.len()
    }

    /// The client's or the server's headers can no longer be read; the
    /// blocks under way are dropped.
    pub(crate) fn lose(&mut self, from_client: bool) {
        let i = usize::from(!from_client);
        self.lost[i] = true;
        self.blocks[i] = None;
    }

    /// A HEADERS or CONTINUATION frame. Returns true when a block could
    /// not be decoded here (for the first time in this direction).
    pub(crate) fn header_frame(
        &mut self,
        from_client: bool,
        h: &FrameHeader,
        payload: &[u8],
        ts_ns: u64,
        out: &mut Vec<Outcome>,
    ) -> bool {
        let i = usize::from(!from_client);
        let continuation = h.kind == crate::h2wire::FrameType::Continuation;
        if continuation {
            let Some(b) = self.blocks[i].as_mut() else {
                return false;
            };
            if b.bytes.len() + payload.len() > MAX_BLOCK {
                let was = self.lost[i];
                self.lose(from_client);
                return !was;
            }
            b.bytes.extend_from_slice(payload);
            if h.has_flag(flags::END_HEADERS) {
                if let Some(b) = self.blocks[i].take() {
                    return self.block(from_client, b.stream, b.end_stream, &b.bytes, ts_ns, out);
                }
            }
            return false;
        }
        let (stream, end_stream) = (h.stream_id, h.has_flag(flags::END_STREAM));
        let Some(frag) = fragment(h, payload) else {
            return false;
        };
        if h.has_flag(flags::END_HEADERS) {
            return self.block(from_client, stream, end_stream, frag, ts_ns, out);
        }
        self.blocks[i] = Some(Block {
            stream,
            end_stream,
            bytes: frag.to_vec(),
        });
        false
    }

    /// END_STREAM on a DATA frame from the server: the call ended without
    /// trailers (not gRPC).
    pub(crate) fn data_end(
        &mut self,
        from_client: bool,
        stream: u32,
        ts_ns: u64,
        out: &mut Vec<Outcome>,
    ) {
        if !from_client {
            self.end(stream, ts_ns, out);
        }
    }

    /// A whole header block: always decoded (to keep HPACK in step).
    fn block(
        &mut self,
        from_client: bool,
        stream: u32,
        end_stream: bool,
        bytes: &[u8],
        ts_ns: u64,
        out: &mut Vec<Outcome>,
    ) -> bool {
        let i = usize::from(!from_client);
        if from_client && !self.open.contains_key(&stream) {
            self.streams += 1;
        }
        if self.lost[i] {
            if from_client {
                self.unreadable += 1;
            }
            return false;
        }
        let mut f = Fields::default();
        let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
        let decoded = self.hpack[i].decode_with_cb(bytes, |n, v| match &n[..] {
            b":path" => f.path = Some(text(&v)),
            b"grpc-timeout" => f.timeout = crate::grpc::parse_timeout(&text(&v)),
            b":status" => f.status = std::str::from_utf8(&v).ok().and_then(|s| s.parse().ok()),
            b"content-type" => f.content_type = Some(text(&v)),
            b"grpc-status" => {
                f.grpc_status = std::str::from_utf8(&v).ok().and_then(|s| s.parse().ok())
            }
            b"grpc-message" => f.grpc_message = Some(text(&v)),
            _ => {}
        });
        if decoded.is_err() {
            self.lose(from_client);
            if from_client {
                self.unreadable += 1;
            }
            return true;
        }
        if from_client {
            if self.open.contains_key(&stream) || self.open.len() >= MAX_OPEN {
                return false; // the client's trailers: nothing to read
            }
            let method = f
                .path
                .map(|p| p.trim_start_matches('/').to_string())
                .unwrap_or_default();
            self.open.insert(
                stream,
                Call {
                    method,
                    start_ns: ts_ns,
                    timeout: f.timeout,
                    status: None,
                    content_type: None,
                    grpc_status: None,
                    grpc_message: None,
                },
            );
            return false;
        }
        let Some(call) = self.open.get_mut(&stream) else {
            return false;
        };
        if call.status.is_none() {
            if matches!(f.status, Some(100..=199)) && !end_stream {
                return false;
            }
            call.status = f.status;
            call.content_type = f.content_type;
        }
        if let Some(s) = f.grpc_status {
            call.grpc_status = Some(s);
            call.grpc_message = f.grpc_message.map(|m| crate::grpc::percent_decode(&m));
        }
        if end_stream {
            self.end(stream, ts_ns, out);
        }
        false
    }

    /// The server ended the stream: the call's status.
    fn end(&mut self, id: u32, _ts_ns: u64, out: &mut Vec<Outcome>) {
        let Some(c) = self.open.remove(&id) else {
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
        out.push(Outcome {
            method: c.method,
            code,
            message,
            start_ns: c.start_ns,
            cause,
        });
    }

    /// RST_STREAM from the client (it cancelled) or from the server.
    pub(crate) fn reset(
        &mut self,
        id: u32,
        code: ErrorCode,
        from_client: bool,
        ts_ns: u64,
        out: &mut Vec<Outcome>,
    ) {
        let Some(c) = self.open.remove(&id) else {
            return;
        };
        let (status, message, cause) = if from_client {
            let late = c.timeout.is_some_and(|t| at_deadline(c.start_ns, ts_ns, t));
            if code == ErrorCode::CANCEL && late {
                (
                    tonic::Code::DeadlineExceeded,
                    "the client's deadline passed: it reset the stream (CANCEL)".to_string(),
                    Some(CallCause::Deadline),
                )
            } else if code == ErrorCode::NO_ERROR {
                // C-core resets its open streams with NO_ERROR as its
                // transport closes under them (UNAVAILABLE).
                let (why, cause) = match &self.drained {
                    Some(debug) => (
                        format!(" after a GOAWAY ({debug:?})"),
                        CallCause::Draining {
                            debug: debug.clone(),
                        },
                    ),
                    None => (String::new(), CallCause::ConnectionLost),
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
        out.push(Outcome {
            method: c.method,
            code: status,
            message,
            start_ns: c.start_ns,
            cause,
        });
    }

    /// The server's GOAWAY reached the client: streams above its last
    /// stream id were never processed.
    pub(crate) fn goaway(&mut self, last: u32, debug: String, out: &mut Vec<Outcome>) {
        let mut refused: Vec<u32> = self.open.keys().copied().filter(|id| *id > last).collect();
        refused.sort_unstable();
        for id in refused {
            if let Some(c) = self.open.remove(&id) {
                out.push(Outcome {
                    method: c.method,
                    code: tonic::Code::Unavailable,
                    message: format!(
                        "{} (GOAWAY \"{debug}\" last stream {last})",
                        crate::grpc::NEVER_PROCESSED
                    ),
                    start_ns: c.start_ns,
                    cause: Some(CallCause::NeverProcessed),
                });
            }
        }
        self.drained = Some(debug);
    }

    /// The connection ended (`why`, and whether the client closed it):
    /// calls still open were cut.
    pub(crate) fn finish(
        &mut self,
        why: &str,
        by_client: bool,
        ts_ns: u64,
        out: &mut Vec<Outcome>,
    ) {
        let mut open: Vec<(u32, Call)> = self.open.drain().collect();
        open.sort_by_key(|(id, _)| *id);
        for (_, c) in open {
            let (code, message, cause) =
                if c.timeout.is_some_and(|t| at_deadline(c.start_ns, ts_ns, t)) {
                    (
                        tonic::Code::DeadlineExceeded,
                        format!("the deadline passed; then the connection closed ({why})"),
                        Some(CallCause::Deadline),
                    )
                } else if by_client && self.drained.is_none() {
                    (
                        tonic::Code::Cancelled,
                        format!("the client closed the connection with the call open ({why})"),
                        None,
                    )
                } else {
                    match &self.drained {
                        Some(debug) => (
                            tonic::Code::Unavailable,
                            format!("the connection closed after a GOAWAY ({debug:?}): {why}"),
                            Some(CallCause::Draining {
                                debug: debug.clone(),
                            }),
                        ),
                        None => (
                            tonic::Code::Unavailable,
                            format!("the connection closed under the call: {why}"),
                            Some(CallCause::ConnectionLost),
                        ),
                    }
                };
            out.push(Outcome {
                method: c.method,
                code,
                message,
                start_ns: c.start_ns,
                cause,
            });
        }
    }

    /// Calls open at the end of the capture are left untold; their count.
    pub(crate) fn abandon(&mut self) -> usize {
        let n = self.open.len();
        self.open.clear();
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h2wire::FrameType;

    fn headers(stream: u32, flags: u8, len: usize) -> FrameHeader {
        FrameHeader {
            length: len as u32,
            kind: FrameType::Headers,
            flags,
            stream_id: stream,
        }
    }

    fn literal(out: &mut Vec<u8>, name: &str, value: &str) {
        out.push(0x00);
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        out.push(value.len() as u8);
        out.extend_from_slice(value.as_bytes());
    }

    #[test]
    fn a_call_ends_with_its_trailers_status() {
        let mut c = Calls::new();
        let mut out = Vec::new();
        let mut req = Vec::new();
        literal(&mut req, ":path", "/pkg.S/M");
        let h = headers(1, flags::END_HEADERS, req.len());
        assert!(!c.header_frame(true, &h, &req, 1_000_000, &mut out));
        let mut resp = Vec::new();
        literal(&mut resp, ":status", "200");
        literal(&mut resp, "content-type", "application/grpc");
        literal(&mut resp, "grpc-status", "14");
        literal(&mut resp, "grpc-message", "max%20connection%20age");
        let h = headers(1, flags::END_HEADERS | flags::END_STREAM, resp.len());
        c.header_frame(false, &h, &resp, 5_000_000, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].method, "pkg.S/M");
        assert_eq!(out[0].code, tonic::Code::Unavailable);
        assert_eq!(out[0].message, "max connection age");
        assert_eq!(out[0].start_ns, 1_000_000);
    }

    #[test]
    fn a_block_that_does_not_decode_loses_that_direction() {
        let mut c = Calls::new();
        let mut out = Vec::new();
        // An index into a dynamic table this decoder never saw.
        let block = [0x80 | 70u8];
        let h = headers(1, flags::END_HEADERS, 1);
        assert!(c.header_frame(true, &h, &block, 0, &mut out));
        assert!(c.lost[0] && !c.lost[1]);
        assert!(!c.header_frame(
            true,
            &headers(3, flags::END_HEADERS, 1),
            &block,
            0,
            &mut out
        ));
        assert_eq!(c.unreadable, 2);
    }
}
