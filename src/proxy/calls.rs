//! The proxy as a gRPC-aware tap: the frames of one cleartext HTTP/2
//! connection, on the client's side, read as calls. Each call becomes one
//! `rpc` event - method, status and message from the trailers (or the HTTP
//! status mapped as grpc does), a reset either way, the connection lost
//! under it - with its latency from the client's HEADERS to its end, and
//! the attempts the client retried beneath it (see [`super::attempts`]);
//! the control frames the client got or sent (GOAWAY, PING, RST_STREAM)
//! become events as the client saw them (`received` is what reached it).
//!
//! Only header blocks are decoded (one HPACK context per direction, kept in
//! step with every block); DATA is never looked at. The fields a call needs
//! are read where they lie: nothing is allocated per frame (a method's name
//! is shared by its calls; a message only for a call that failed).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::attempts::{Attempts, Claimed, Held};
use crate::event::{CallAttempt, CallCause, EventKind, EventSink};
use crate::h2wire::frame::flags;
use crate::h2wire::{ControlFrame, Dir, ErrorCode, FrameHeader, FrameType};

/// A header block cut into HEADERS and CONTINUATION frames.
struct Block {
    stream: u32,
    end_stream: bool,
    bytes: Vec<u8>,
}

/// One call, from its request HEADERS on.
struct Call {
    method: Arc<str>,
    start: Instant,
    /// The request's grpc-timeout.
    timeout: Option<Duration>,
    status: Option<u16>,
    grpc_type: bool,
    /// A content-type that is not gRPC's (an error page's).
    other_type: Option<String>,
    grpc_status: Option<i32>,
    grpc_message: Option<String>,
    /// The attempts before this one, when it is a retry.
    prior: Option<Claimed>,
}

/// What one connection's tap counted.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TapCounts {
    pub calls: u64,
    pub failed: u64,
    /// Attempts held as never processed (told later with their retry, or
    /// as failed calls).
    pub held: u64,
}

pub(crate) struct CallTap {
    conn: u64,
    addr: Arc<str>,
    client: IpAddr,
    events: EventSink,
    attempts: Arc<Attempts>,
    from_client: super::hpack::Decoder,
    to_client: super::hpack::Decoder,
    /// Huffman-decoded values, one at a time.
    scratch: Vec<u8>,
    blocks: [Option<Block>; 2],
    calls: HashMap<u32, Call>,
    /// The last method's path as sent (Huffman-coded or not) and its name,
    /// shared by the calls that use it.
    last_path: (Vec<u8>, bool, Arc<str>),
    /// The last GOAWAY the client got: its debug data.
    drained: Option<String>,
    /// The lowest last-stream-id of the GOAWAYs the client got: streams
    /// above it are never processed, whenever the client opens them.
    goaway_last: Option<u32>,
    /// The client sent GOAWAY: its transport is closing.
    client_closing: bool,
    /// The server's side of the connection ended.
    server_gone: bool,
    /// A header block did not decode: calls can no longer be read.
    lost: bool,
    /// Tell calls that ended OK too.
    ok_calls: bool,
    pub counts: TapCounts,
}

/// Whether a call that began (here) at `start` has reached its
/// grpc-timeout `t`: the client's clock started before ours and its timer
/// may be read a little early here, so with a margin (a tenth, at least
/// 50 ms).
fn at_deadline(start: Instant, now: Instant, t: Duration) -> bool {
    now.duration_since(start) + (t / 10).max(Duration::from_millis(50)) >= t
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

/// The fields of a header block a call needs, read in place.
#[derive(Default)]
struct Fields {
    path: bool,
    timeout: Option<Duration>,
    status: Option<u16>,
    grpc_type: bool,
    other_type: Option<String>,
    grpc_status: Option<i32>,
    grpc_message: Option<String>,
}

fn num<T: std::str::FromStr>(v: &[u8]) -> Option<T> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

impl CallTap {
    pub fn new(
        conn: u64,
        addr: Arc<str>,
        client: IpAddr,
        events: EventSink,
        attempts: Arc<Attempts>,
        ok_calls: bool,
    ) -> Self {
        Self {
            conn,
            addr,
            client,
            events,
            attempts,
            from_client: Default::default(),
            to_client: Default::default(),
            scratch: Vec::new(),
            blocks: [None, None],
            calls: HashMap::new(),
            last_path: (Vec::new(), false, Arc::from("")),
            drained: None,
            goaway_last: None,
            client_closing: false,
            server_gone: false,
            lost: false,
            ok_calls,
            counts: TapCounts::default(),
        }
    }

    /// Still reading calls (header blocks decoded so far).
    pub fn reading(&self) -> bool {
        !self.lost
    }

    fn emit(&self, kind: EventKind) {
        self.events
            .emit(Some(self.conn), Some(self.addr.clone()), kind);
    }

    /// The calls on this connection can no longer be read.
    pub fn lose(&mut self, why: &str) {
        if std::mem::replace(&mut self.lost, true) {
            return;
        }
        self.emit(EventKind::Fault {
            name: "tap".into(),
            detail: format!("{why}: the calls on this connection cannot be read from here on"),
        });
    }

    /// The server's side of the connection ended (FIN or reset): streams
    /// still open were cut by a lost connection, whoever resets them now.
    pub fn server_closed(&mut self) {
        self.server_gone = true;
    }

    /// A whole frame read from the client (`from_client`) or going to it.
    pub fn frame(&mut self, from_client: bool, h: &FrameHeader, payload: &[u8], now: Instant) {
        let side = usize::from(!from_client);
        match h.kind {
            FrameType::Headers => {
                let Some(frag) = fragment(h, payload) else {
                    return;
                };
                let (stream, end_stream) = (h.stream_id, h.has_flag(flags::END_STREAM));
                if h.has_flag(flags::END_HEADERS) {
                    self.block(from_client, stream, end_stream, frag, now);
                } else {
                    self.blocks[side] = Some(Block {
                        stream,
                        end_stream,
                        bytes: frag.to_vec(),
                    });
                }
            }
            FrameType::Continuation => {
                if let Some(b) = self.blocks[side].as_mut() {
                    b.bytes.extend_from_slice(payload);
                }
                if h.has_flag(flags::END_HEADERS) {
                    if let Some(b) = self.blocks[side].take() {
                        self.block(from_client, b.stream, b.end_stream, &b.bytes, now);
                    }
                }
            }
            FrameType::RstStream | FrameType::GoAway | FrameType::Ping => {
                self.control(from_client, h, payload, now)
            }
            _ => {}
        }
    }

    fn control(&mut self, from_client: bool, h: &FrameHeader, payload: &[u8], now: Instant) {
        let Ok(frame) = ControlFrame::parse(h, payload) else {
            return;
        };
        // As the client saw it: what it sent, and what reached it.
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
                self.reset(stream_id, code, from_client, now)
            }
            ControlFrame::GoAway {
                last_stream_id,
                debug,
                ..
            } if !from_client => {
                let debug = String::from_utf8_lossy(&debug).into_owned();
                self.goaway(last_stream_id, debug, now);
            }
            ControlFrame::GoAway { .. } => self.client_closing = true,
            _ => {}
        }
    }

    /// A whole header block: always decoded (the HPACK context must stay
    /// in step), keeping only the fields a call needs.
    fn block(
        &mut self,
        from_client: bool,
        stream: u32,
        end_stream: bool,
        bytes: &[u8],
        now: Instant,
    ) {
        if self.lost {
            return;
        }
        let mut f = Fields::default();
        let (last_path, buf) = (&mut self.last_path, &mut self.scratch);
        let dec = if from_client {
            &mut self.from_client
        } else {
            &mut self.to_client
        };
        let decoded = dec.decode(bytes, |n, v| match n {
            b":path" if from_client => {
                f.path = true;
                let (raw, huffman) = v.raw();
                if (&last_path.0[..], last_path.1) != (raw, huffman) {
                    last_path.0.clear();
                    last_path.0.extend_from_slice(raw);
                    last_path.1 = huffman;
                    let p = v.get(buf).unwrap_or_default();
                    let p = p.strip_prefix(b"/").unwrap_or(p);
                    last_path.2 = Arc::from(String::from_utf8_lossy(p).as_ref());
                }
            }
            b"grpc-timeout" if from_client => {
                f.timeout = v
                    .get(buf)
                    .and_then(|t| std::str::from_utf8(t).ok())
                    .and_then(crate::grpc::parse_timeout)
            }
            b":status" => f.status = v.get(buf).and_then(num),
            b"content-type" => {
                let t = v.get(buf).unwrap_or_default();
                f.grpc_type = t.starts_with(b"application/grpc");
                if !f.grpc_type {
                    f.other_type = Some(String::from_utf8_lossy(t).into_owned());
                }
            }
            b"grpc-status" => f.grpc_status = v.get(buf).and_then(num),
            b"grpc-message" => {
                let m = v.get(buf).unwrap_or_default();
                if !m.is_empty() {
                    f.grpc_message = Some(crate::grpc::percent_decode(&String::from_utf8_lossy(m)));
                }
            }
            _ => {}
        });
        if decoded.is_err() {
            self.lose("a header block did not decode");
            return;
        }
        if from_client {
            if self.calls.contains_key(&stream) {
                return; // the client's trailers (client streaming)
            }
            let method = if f.path {
                self.last_path.2.clone()
            } else {
                Arc::from("")
            };
            let prior = self.attempts.claim(self.client, &method, now);
            let call = Call {
                method,
                start: now,
                timeout: f.timeout,
                status: None,
                grpc_type: false,
                other_type: None,
                grpc_status: None,
                grpc_message: None,
                prior,
            };
            // Opened after a GOAWAY (crossing it on the wire) above its
            // last stream: the server never processes it.
            if let Some(last) = self.goaway_last.filter(|l| stream > *l) {
                let why = format!("above the GOAWAY's last stream {last}");
                return self.never_processed(call, stream, why, now);
            }
            self.calls.insert(stream, call);
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
            call.grpc_type = f.grpc_type;
            call.other_type = f.other_type;
        }
        if f.grpc_status.is_some() {
            call.grpc_status = f.grpc_status;
            call.grpc_message = f.grpc_message;
        }
        if end_stream {
            self.end(stream, now);
        }
    }

    /// The call's trailers reached the client: its status.
    fn end(&mut self, id: u32, now: Instant) {
        let Some(c) = self.calls.remove(&id) else {
            return;
        };
        let foreign =
            c.status.is_some_and(|s| s != 200) || (!c.grpc_type && c.grpc_status.is_none());
        let (code, message, cause) = match (c.grpc_status, foreign) {
            (Some(s), _) if !foreign || c.status == Some(200) => {
                let code = tonic::Code::from_i32(s);
                let cause = (code != tonic::Code::Ok).then_some(CallCause::Status { code });
                (code, c.grpc_message.clone().unwrap_or_default(), cause)
            }
            _ => {
                let status = c.status.unwrap_or(0);
                let ctype = if c.grpc_type {
                    Some("application/grpc")
                } else {
                    c.other_type.as_deref()
                };
                let (code, message) = crate::grpc::foreign_status(status, ctype, &[]);
                (code, message, Some(CallCause::Http { status }))
            }
        };
        self.tell(c, code, message, cause, now);
    }

    /// A call ended: told (if it failed, or with `--calls all`), with the
    /// attempts before it.
    fn tell(
        &mut self,
        c: Call,
        code: tonic::Code,
        message: String,
        cause: Option<CallCause>,
        now: Instant,
    ) {
        self.counts.calls += 1;
        if code != tonic::Code::Ok {
            self.counts.failed += 1;
        }
        if code == tonic::Code::Ok && !self.ok_calls {
            return;
        }
        let (start, attempts) = match c.prior {
            Some(p) => (p.first_start, p.attempts),
            None => (c.start, Vec::new()),
        };
        self.emit(EventKind::Rpc {
            method: c.method.to_string(),
            code,
            message,
            latency_ms: now.duration_since(start).as_secs_f64() * 1e3,
            cause,
            attempts,
        });
    }

    /// The wire proved the server never processed the attempt: held for
    /// the client's retry.
    fn never_processed(&mut self, c: Call, stream: u32, why: String, now: Instant) {
        self.counts.held += 1;
        let (first_start, mut attempts) = match c.prior {
            Some(p) => (p.first_start, p.attempts),
            None => (c.start, Vec::new()),
        };
        let message = format!("{} ({why})", crate::grpc::NEVER_PROCESSED);
        attempts.push(CallAttempt {
            conn: self.conn,
            stream,
            end: format!("never processed: {why}"),
        });
        self.attempts.hold(Held {
            client: self.client,
            method: c.method,
            at: now,
            first_start,
            attempts,
            conn: self.conn,
            addr: self.addr.clone(),
            events: self.events.clone(),
            message,
        });
    }

    /// The connection was lost under a call: UNAVAILABLE, after a GOAWAY
    /// or not.
    fn lost_under(&self, why: &str) -> (tonic::Code, String, Option<CallCause>) {
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
        (tonic::Code::Unavailable, message, Some(cause))
    }

    /// RST_STREAM from the client or to it. Its code maps to a status by
    /// gRPC's table (PROTOCOL-HTTP2.md, "Errors") whichever side sent it:
    /// CANCEL is the client's cancellation (its deadline, when the
    /// grpc-timeout has passed), REFUSED_STREAM an attempt never processed;
    /// a reset after the server's side went away (or once the client's
    /// transport is closing) is the connection lost under the call.
    fn reset(&mut self, id: u32, code: ErrorCode, from_client: bool, now: Instant) {
        let Some(c) = self.calls.remove(&id) else {
            return;
        };
        if !from_client && code == ErrorCode::REFUSED_STREAM {
            return self.never_processed(c, id, "REFUSED_STREAM".into(), now);
        }
        let by = if from_client {
            "the client"
        } else {
            "the server (or a hop)"
        };
        let cut = from_client
            && (self.server_gone || (self.client_closing && code == ErrorCode::NO_ERROR));
        let (status, message, cause) = if cut {
            self.lost_under(&format!("then {by} reset the stream with {code}"))
        } else if from_client
            && code == ErrorCode::CANCEL
            && c.timeout.is_some_and(|t| at_deadline(c.start, now, t))
        {
            (
                tonic::Code::DeadlineExceeded,
                "the client's deadline passed: it reset the stream (CANCEL)".to_string(),
                Some(CallCause::Deadline),
            )
        } else {
            let (status, _) = crate::grpc::reset_status(code);
            (
                status,
                format!("{by} reset the stream with {code}"),
                Some(CallCause::Reset { code }),
            )
        };
        self.tell(c, status, message, cause, now);
    }

    /// A GOAWAY reached the client: streams above its last stream id were
    /// never processed (a client retries them, on a new stream).
    fn goaway(&mut self, last: u32, debug: String, now: Instant) {
        let refused: Vec<u32> = self.calls.keys().copied().filter(|id| *id > last).collect();
        for id in refused {
            if let Some(c) = self.calls.remove(&id) {
                let why = format!("above the GOAWAY's last stream {last} ({debug:?})");
                self.never_processed(c, id, why, now);
            }
        }
        self.drained = Some(debug);
        self.goaway_last = Some(self.goaway_last.map_or(last, |l| l.min(last)));
    }

    /// The connection ended: calls still open were cut, as clients report
    /// them (UNAVAILABLE); those whose deadline had passed ended at it, and
    /// those the client gave up on by closing a connection that was neither
    /// draining nor lost were cancelled.
    pub fn finish(&mut self, why: &str, by_client: bool, now: Instant) {
        let open: Vec<(u32, Call)> = self.calls.drain().collect();
        for (_, c) in open {
            if c.timeout.is_some_and(|t| at_deadline(c.start, now, t)) {
                self.tell(
                    c,
                    tonic::Code::DeadlineExceeded,
                    format!("the deadline passed; then the connection closed ({why})"),
                    Some(CallCause::Deadline),
                    now,
                );
                continue;
            }
            if by_client && self.drained.is_none() && !self.server_gone {
                self.tell(
                    c,
                    tonic::Code::Cancelled,
                    format!("the client closed the connection with the call open ({why})"),
                    None,
                    now,
                );
                continue;
            }
            let (code, message, cause) = self.lost_under(why);
            self.tell(c, code, message, cause, now);
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
        let padded = [2u8, 7, 8, 0, 0];
        assert_eq!(
            fragment(&header(flags::PADDED, 5), &padded),
            Some(&[7u8, 8][..])
        );
        let prio = [0u8, 0, 0, 0, 16, 9];
        assert_eq!(
            fragment(&header(flags::PRIORITY, 6), &prio),
            Some(&[9u8][..])
        );
        assert_eq!(fragment(&header(flags::PADDED, 2), &[5u8, 1]), None);
    }

    #[test]
    fn a_cancel_near_the_grpc_timeout_is_the_deadline() {
        let t = Duration::from_secs(1);
        let now = Instant::now();
        assert!(!at_deadline(now, now, t));
        assert!(at_deadline(now, now + Duration::from_millis(950), t));
        assert!(!at_deadline(now, now + Duration::from_millis(500), t));
        assert!(at_deadline(
            now,
            now + Duration::from_millis(60),
            Duration::from_millis(100)
        ));
    }

    /// A request and a reset, fed as frames: the reset's code maps by
    /// gRPC's table, and after the server's side went away any reset is
    /// the connection lost.
    #[tokio::test]
    async fn resets_map_by_the_table_and_a_lost_server_wins() {
        let mut enc = loona_hpack::Encoder::new();
        let block = enc.encode([
            (&b":method"[..], &b"POST"[..]),
            (b":path", b"/a.B/C"),
            (b"content-type", b"application/grpc"),
        ]);
        let run = |code: ErrorCode, from_client: bool, server_gone: bool| {
            let (events, mut rx) = EventSink::channel(64);
            let mut tap = CallTap::new(
                1,
                "127.0.0.1:1".into(),
                IpAddr::from([127, 0, 0, 1]),
                events,
                Arc::default(),
                true,
            );
            let now = Instant::now();
            let h = FrameHeader {
                length: block.len() as u32,
                kind: FrameType::Headers,
                flags: flags::END_HEADERS,
                stream_id: 1,
            };
            tap.frame(true, &h, &block, now);
            if server_gone {
                tap.server_closed();
            }
            let rst = ControlFrame::RstStream { stream_id: 1, code }.encode();
            let rh = FrameHeader::parse_prefix(&rst).unwrap();
            tap.frame(from_client, &rh, &rst[9..], now);
            let mut code = None;
            while let Ok(e) = rx.try_recv() {
                if let EventKind::Rpc { code: c, .. } = e.kind {
                    code = Some(c);
                }
            }
            code
        };
        use tonic::Code as C;
        for (rst, want) in [
            (ErrorCode::NO_ERROR, C::Internal),
            (ErrorCode::PROTOCOL_ERROR, C::Internal),
            (ErrorCode::INTERNAL_ERROR, C::Internal),
            (ErrorCode::FLOW_CONTROL_ERROR, C::Internal),
            (ErrorCode::SETTINGS_TIMEOUT, C::Internal),
            (ErrorCode::FRAME_SIZE_ERROR, C::Internal),
            (ErrorCode::REFUSED_STREAM, C::Unavailable),
            (ErrorCode::CANCEL, C::Cancelled),
            (ErrorCode::COMPRESSION_ERROR, C::Internal),
            (ErrorCode::CONNECT_ERROR, C::Internal),
            (ErrorCode::ENHANCE_YOUR_CALM, C::ResourceExhausted),
            (ErrorCode::INADEQUATE_SECURITY, C::PermissionDenied),
        ] {
            assert_eq!(run(rst, true, false), Some(want), "{rst} from the client");
            if rst != ErrorCode::REFUSED_STREAM {
                assert_eq!(run(rst, false, false), Some(want), "{rst} to the client");
            }
            assert_eq!(
                run(rst, true, true),
                Some(C::Unavailable),
                "{rst} after the server went"
            );
        }
        // REFUSED_STREAM toward the client is held for the retry.
        assert_eq!(run(ErrorCode::REFUSED_STREAM, false, false), None);
    }
}
