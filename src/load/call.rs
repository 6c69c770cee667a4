//! One gRPC call on one connection, on the wire as gRPC over HTTP/2 says:
//! pre-framed request messages (encoded once per payload), the response
//! messages counted (not decoded: load needs their number, not their
//! content), the status read from the trailers (or from the headers of a
//! trailers-only response).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};

use super::data::Data;
use super::expect::Checks;
use super::template::Fill;
use crate::client::conn::{stream_status, Conn};
use crate::client::wire::{Block, RequestHead, StreamError, WireStream};

/// The most of a response's DATA kept for `--expect`.
const MAX_KEPT: usize = 4 << 20;
use crate::h2wire::ErrorCode;

/// What a call sends, built once per run.
#[derive(Clone)]
pub struct CallTemplate {
    /// `scheme://authority/pkg.Service/Method`.
    pub uri: http::Uri,
    /// content-type, te, user metadata, grpc-timeout.
    pub headers: HeaderMap,
    /// The same head for grpcdoc's own HTTP/2 client (see [`request_head`]).
    pub head: Arc<RequestHead>,
    /// The request messages, used in turn (unary, server streaming) or
    /// all in order (client and bidi streaming).
    pub(crate) data: Data,
    pub client_streaming: bool,
    /// Messages per client stream (cycling through `messages`).
    pub stream_messages: usize,
    pub stream_interval: Duration,
    /// `--expect`: the response is kept and checked.
    pub(crate) checks: Option<Arc<Checks>>,
}

/// How a call ended.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub code: tonic::Code,
    pub message: String,
    /// Response messages received.
    pub responses: u64,
    /// The call failed before the server processed it (refused by GOAWAY's
    /// last-stream-id or REFUSED_STREAM): safe to retry.
    pub never_processed: bool,
    /// The connection failed under the call (no gRPC status came back).
    pub transport: bool,
    /// The server reset the stream with this code.
    pub reset: Option<ErrorCode>,
    /// The response was not gRPC: its HTTP status.
    pub http_status: Option<u16>,
    /// `--expect`: a bit per check that held, and one per check that did
    /// not; neither for a check not made (the call failed).
    pub checks: (u64, u64),
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.code == tonic::Code::Ok
    }

    pub fn local(code: tonic::Code, message: String) -> Self {
        Self {
            code,
            message,
            responses: 0,
            never_processed: false,
            transport: false,
            reset: None,
            http_status: None,
            checks: (0, 0),
        }
    }
}

/// Runs one call on `conn`; `fill` (the call's number and worker) picks
/// or makes its messages. Everything happens in the caller's task: no task
/// and no copy per call.
/// The request's frames are queued with the stream, and the response is
/// counted as it arrives.
pub(crate) async fn call(conn: &Arc<Conn>, t: &CallTemplate, fill: &mut Fill<'_>) -> Outcome {
    let w = conn.wire();
    let _guard = conn.guard();
    let message = |i: u64, fill: &mut Fill<'_>| {
        t.data
            .message(i, fill)
            .map_err(|e| Outcome::local(tonic::Code::InvalidArgument, e))
    };
    let (first, end) = if !t.client_streaming {
        match message(fill.call, fill) {
            Ok(m) => (Some(m), true),
            Err(o) => return o,
        }
    } else if t.stream_messages == 0 {
        (None, true)
    } else {
        match message(0, fill) {
            Ok(m) => (Some(m), t.stream_messages == 1),
            Err(o) => return o,
        }
    };
    let keep = t.checks.is_some();
    let stream = match w.open(Block::Head(&t.head), keep, first, end) {
        Ok(s) => s,
        Err(e) => return failed(conn, &e),
    };
    // With checks the response's DATA is kept and read as it comes.
    let mut body = Vec::new();
    let finish = async {
        if t.checks.is_some() {
            read_body(&stream, &mut body).await;
        }
        std::future::poll_fn(|cx| stream.poll_finish(cx)).await
    };
    let done = if end {
        finish.await
    } else {
        // Client streams send while the response may already be coming;
        // a response that ends first ends the sending.
        let sending = async {
            for i in 1..t.stream_messages {
                if !t.stream_interval.is_zero() {
                    tokio::time::sleep(t.stream_interval).await;
                }
                let last = i + 1 == t.stream_messages;
                let Ok(m) = message(i as u64, fill) else {
                    break;
                };
                if stream.send(m, last).is_err() {
                    break;
                }
            }
        };
        tokio::pin!(finish);
        tokio::select! {
            f = &mut finish => f,
            () = sending => finish.await,
        }
    };
    let mut done = done;
    if t.checks.is_some() {
        done.messages = super::expect::count(&body);
    }
    if let Some(e) = done.error {
        let mut o = failed(conn, &e);
        o.responses = done.messages;
        return o;
    }
    let grpc = done.grpc_status.map(|code| {
        let message = done
            .grpc_message
            .as_deref()
            .map(crate::grpc::percent_decode);
        (tonic::Code::from_i32(code), message.unwrap_or_default())
    });
    match done.foreign {
        Some(f) if grpc.is_none() => {
            let (code, message) =
                crate::grpc::foreign_status(f.status, f.content_type.as_deref(), &f.body);
            Outcome {
                http_status: Some(f.status),
                ..Outcome::local(code, message)
            }
        }
        _ => {
            let mut o = ended(grpc, done.messages);
            if let (Some(c), true) = (&t.checks, o.ok()) {
                o.checks = c.judge(&body);
            }
            o
        }
    }
}

/// Reads a kept response's DATA into `body` (at most [`MAX_KEPT`] bytes;
/// the rest is read and dropped) until it ends.
async fn read_body(stream: &WireStream, body: &mut Vec<u8>) {
    while let Some(Ok(b)) = std::future::poll_fn(|cx| stream.poll_data(cx)).await {
        let room = MAX_KEPT.saturating_sub(body.len());
        body.extend_from_slice(&b[..b.len().min(room)]);
    }
}

/// How a call ended by its response: the grpc-status (or its absence).
fn ended(grpc: Option<(tonic::Code, String)>, responses: u64) -> Outcome {
    let (code, message) = grpc.unwrap_or_else(|| {
        (
            tonic::Code::Internal,
            "the response ended without grpc-status".into(),
        )
    });
    Outcome {
        responses,
        ..Outcome::local(code, message)
    }
}

fn failed(conn: &Conn, e: &StreamError) -> Outcome {
    let status = stream_status(e, conn.shared.goaway());
    Outcome {
        code: status.code(),
        message: status.message().to_string(),
        responses: 0,
        never_processed: e.never_processed(),
        // A reset stream ended with a status of its own; the connection
        // lives on.
        transport: !matches!(e, StreamError::Reset(c) if *c != ErrorCode::REFUSED_STREAM),
        reset: match e {
            StreamError::Reset(c) => Some(*c),
            _ => None,
        },
        http_status: None,
        checks: (0, 0),
    }
}

/// The request head for grpcdoc's own HTTP/2 client, from the URI and the
/// headers of [`request_headers`].
pub fn request_head(uri: &http::Uri, headers: &HeaderMap) -> RequestHead {
    RequestHead {
        https: uri.scheme_str() == Some("https"),
        authority: Bytes::copy_from_slice(uri.authority().map_or("", |a| a.as_str()).as_bytes()),
        path: Bytes::copy_from_slice(uri.path_and_query().map_or("/", |p| p.as_str()).as_bytes()),
        fields: headers
            .iter()
            .map(|(n, v)| {
                (
                    Bytes::copy_from_slice(n.as_str().as_bytes()),
                    Bytes::copy_from_slice(v.as_bytes()),
                )
            })
            .collect(),
    }
}

/// The headers of every call: gRPC's content type and trailers, grpcdoc's
/// user-agent, the user's metadata (keys already checked), grpc-timeout.
pub fn request_headers(metadata: &[(String, String)], timeout: Option<Duration>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/grpc"));
    headers.insert("te", HeaderValue::from_static("trailers"));
    headers.insert(
        "user-agent",
        HeaderValue::from_static(concat!("grpcdoc/", env!("CARGO_PKG_VERSION"))),
    );
    for (k, v) in metadata {
        if let (Ok(k), Ok(v)) = (
            http::header::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            headers.append(k, v);
        }
    }
    if let Some(t) = timeout {
        headers.insert("grpc-timeout", timeout_header(t));
    }
    headers
}

/// The grpc-timeout header value for a deadline (at most 8 digits).
pub fn timeout_header(d: Duration) -> HeaderValue {
    let ms = d.as_millis();
    let v = if ms < 100_000_000 {
        format!("{}m", ms.max(1))
    } else {
        format!("{}S", d.as_secs().min(99_999_999))
    };
    HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static("99999999S"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::wire::MessageCounter;

    #[test]
    fn counts_messages_across_chunks() {
        let mut c = MessageCounter::default();
        let mut all = Vec::new();
        for len in [0u32, 3, 70000] {
            all.push(0u8);
            all.extend_from_slice(&len.to_be_bytes());
            all.extend(std::iter::repeat_n(1u8, len as usize));
        }
        for chunk in all.chunks(7) {
            c.feed(chunk);
        }
        assert_eq!(c.count, 3);
    }

    #[test]
    fn grpc_message_is_percent_decoded() {
        assert_eq!(crate::grpc::percent_decode("a%20b%25"), "a b%");
        assert_eq!(crate::grpc::percent_decode("100%"), "100%");
        assert_eq!(crate::grpc::percent_decode("x%zz"), "x%zz");
    }

    #[test]
    fn timeouts_fit_eight_digits() {
        assert_eq!(timeout_header(Duration::from_millis(250)), "250m");
        assert_eq!(timeout_header(Duration::from_secs(200_000)), "200000S");
    }
}
