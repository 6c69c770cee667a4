//! Diagnosis: from the events seen (never from message text), what a
//! notable event means and how to fix it (DESIGN §7).

use std::collections::HashSet;
use std::time::Duration;

use crate::event::ConnectCause;
use crate::event::{CloseReason, Event, EventKind};
use crate::h2wire::{Dir, ErrorCode};

/// Keeps the context explanations need (the client's keepalive, when the
/// last call ended) and says each connection-failure cause once.
#[derive(Debug, Default)]
pub struct Explainer {
    /// The client's keepalive time, when it pings.
    pub keepalive_time: Option<Duration>,
    last_call_end_ms: Option<f64>,
    said: HashSet<String>,
    /// Connections that reached READY: only their closes are explained (a
    /// failed handshake is explained by its connect event).
    connected: HashSet<u64>,
}

fn dur_ms(ms: f64) -> String {
    humantime::format_duration(Duration::from_millis(ms.max(0.0) as u64)).to_string()
}

impl Explainer {
    pub fn new(keepalive_time: Option<Duration>) -> Self {
        Self {
            keepalive_time,
            ..Self::default()
        }
    }

    fn once(&mut self, key: String, note: String) -> Option<String> {
        self.said.insert(key).then_some(note)
    }

    pub fn explain(&mut self, e: &Event) -> Option<String> {
        match &e.kind {
            EventKind::Rpc { code, method, .. } => {
                self.last_call_end_ms = Some(e.t_ms);
                if *code != tonic::Code::Unimplemented {
                    return None;
                }
                self.once(
                    format!("unimplemented {method}"),
                    format!(
                        "the server does not implement {method}, so the transport works; use --probe METHOD to call a method it has"
                    ),
                )
            }
            EventKind::Goaway {
                dir: Dir::Received,
                code,
                debug,
                last_stream_id,
            } => Some(self.goaway(e.t_ms, *code, debug, *last_stream_id)),
            EventKind::Closed {
                reason: CloseReason::KeepaliveTimeout,
                ..
            } => Some(
                "the server did not answer a keepalive PING in time: it is stopped or overloaded, or the network drops packets (a half-open connection). Without keepalive, calls on this connection would hang until their deadline."
                    .into(),
            ),
            EventKind::Connect {
                result: crate::event::ConnectResult::Ok,
                ..
            } => {
                self.connected.extend(e.conn);
                None
            }
            EventKind::Closed {
                reason: CloseReason::Reset | CloseReason::Error,
                streams,
                ..
            } if e.conn.is_some_and(|c| self.connected.contains(&c)) => Some(format!(
                "the connection ended without GOAWAY: the server crashed or was killed, or something in between cut it{}. Calls in flight fail with UNAVAILABLE (\"transport is closing\"); retry UNAVAILABLE and use wait-for-ready.",
                if *streams > 0 { "" } else { " (no call was lost here)" }
            )),
            EventKind::Connect {
                cause: Some(cause),
                ..
            } => {
                let addr = e.addr.as_deref().unwrap_or("the server").to_string();
                let note = connect_note(*cause, &addr);
                self.once(format!("{cause:?} {addr}"), note)
            }
            EventKind::Resolve { error: Some(_), .. } => self.once(
                "resolve".into(),
                "the name does not resolve: check the host name and the DNS; the channel keeps retrying with backoff".into(),
            ),
            _ => None,
        }
    }

    fn goaway(&self, t_ms: f64, code: ErrorCode, debug: &str, last_stream_id: u32) -> String {
        let since_call = self
            .last_call_end_ms
            .map(|end| format!("; the last call here ended {} before", dur_ms(t_ms - end)))
            .unwrap_or_default();
        let ka = self
            .keepalive_time
            .map(|k| format!("the client pings every {}", humantime::format_duration(k)))
            .unwrap_or_else(|| "the client pings".into());
        match (code.name().unwrap_or_default(), debug) {
            ("ENHANCE_YOUR_CALM", "too_many_pings") => format!(
                "too_many_pings: {ka}, more often than the server's keepalive enforcement allows (grpc-go EnforcementPolicy.MinTime, 5m by default; pings without calls need PermitWithoutStream). Fix: a client keepalive time at or above the server's MinTime, or relax the server's policy."
            ),
            ("NO_ERROR", d) if d == "max_idle" || d.contains("idle") => format!(
                "the server closed a connection that had no call for its MaxConnectionIdle{since_call}. Harmless, but a call racing it fails with UNAVAILABLE \"transport is closing\": keep the connection busy with client keepalive below that idle time (with permit-without-stream), or retry UNAVAILABLE."
            ),
            ("NO_ERROR", "max_age") => "the server recycles connections after its MaxConnectionAge (so load spreads after scaling): calls in flight get MaxConnectionAgeGrace to finish, new calls go to a new connection; calls racing the GOAWAY fail with UNAVAILABLE unless retried.".into(),
            ("NO_ERROR", _) if last_stream_id == crate::h2wire::frame::MAX_STREAM_ID => format!(
                "the server is draining this connection{}: new calls go to a new connection, calls in flight finish. With health checking or retries clients do not notice.",
                if debug.is_empty() { String::new() } else { format!(" ({debug})") }
            ),
            ("NO_ERROR", _) => format!(
                "the server processed streams up to {last_stream_id} and closes the connection; later streams were never processed and are safe to retry."
            ),
            (_, debug) => format!(
                "the server ended the connection with {code}{}: calls in flight fail; look at the server's logs.",
                if debug.is_empty() { String::new() } else { format!(" ({debug:?})") }
            ),
        }
    }
}

fn connect_note(cause: ConnectCause, addr: &str) -> String {
    match cause {
        ConnectCause::Refused => format!("nothing listens on {addr}: the server is down or restarting. The channel backs off (1s, 1.6s, 2.56s, ... up to 2m) and tries again."),
        ConnectCause::Timeout => format!("no answer from {addr} in time: a firewall drops packets, the host is down, or the server is overloaded."),
        ConnectCause::Unreachable => format!("{addr} is unreachable: no route to that network or host."),
        ConnectCause::TlsCertificate => "the server's certificate was not accepted: pass --cacert with its CA, --server-name if it was issued for another name, or --insecure to skip verification (testing only).".into(),
        ConnectCause::PlaintextServer => "TLS was spoken but the server answered in plaintext: it does not serve TLS here; use HOST:PORT or http:// instead of https://.".into(),
        ConnectCause::TlsServer => "plaintext HTTP/2 was spoken but the server answered with TLS: use https://HOST:PORT.".into(),
        ConnectCause::NotHttp2 => "the server did not answer with HTTP/2: is it a gRPC server? (HTTP/1.1-only servers and proxies answer like this)".into(),
        ConnectCause::Tls => "the TLS handshake failed: check the protocol versions, ALPN h2 and client certificate the server needs.".into(),
        ConnectCause::Closed => "the server closed the connection during the handshake: it may expect TLS (try https://) or reject this client.".into(),
        ConnectCause::Io => format!("the connection to {addr} failed; see the error."),
    }
}

/// What a load failure cause means and how to fix it (one line).
pub fn load_cause(c: &crate::load::stats::Cause) -> String {
    use crate::load::stats::Cause;
    match c {
        Cause::Draining { debug } if debug == "max_age" => "stream started on a connection the server was draining (GOAWAY max_age) and cut when the drain's grace ran out (\"transport is closing\"); fix: retry UNAVAILABLE or raise MaxConnectionAgeGrace above the longest call".into(),
        Cause::Draining { debug } if debug.contains("idle") => "the server's idle timeout (GOAWAY max_idle) raced the call; fix: retry UNAVAILABLE, or client keepalive below MaxConnectionIdle".into(),
        Cause::Draining { debug } if debug.is_empty() => "the server was draining the connection (GOAWAY NO_ERROR without a reason: MaxConnectionAge, a graceful stop, or an idle timeout) and closed it under the call (\"transport is closing\"); fix: retry UNAVAILABLE, and give the drain a grace (MaxConnectionAgeGrace, graceful-stop timeout) longer than the longest call".into(),
        Cause::Draining { debug } => format!("the server was draining the connection (GOAWAY {debug:?}) and closed it under the call; fix: retry UNAVAILABLE, and stop servers gracefully with a grace longer than the longest call"),
        Cause::NeverProcessed => "the server refused the stream unprocessed (GOAWAY last-stream-id or REFUSED_STREAM); safe to retry: keep transparent retry on".into(),
        Cause::ConnectionLost => "the connection failed under the call without GOAWAY (crash, kill, network cut): \"transport is closing\"; fix: retry UNAVAILABLE, and keepalive to notice dead peers".into(),
        Cause::NoConnection => "no READY connection to start the call on (server down, refused, TLS failure): fail-fast UNAVAILABLE; fix: --wait-for-ready or retry UNAVAILABLE".into(),
        Cause::Deadline => "the call outlived --timeout: the server was too slow, or calls queued for stream slots (MAX_CONCURRENT_STREAMS)".into(),
        Cause::Status { code } => format!("the server's handler answered {}", crate::grpc::code_name(*code)),
        Cause::Reset { code } if *code == ErrorCode::CANCEL => "the server (or a proxy) cancelled the stream with RST_STREAM(CANCEL); the connection lived on: CANCELLED \"stream terminated by RST_STREAM with error code: CANCEL\". The server gave up on the call: look for its own deadline or cancellation, or a proxy's stream timeout".into(),
        Cause::Reset { code } => format!("the server (or a proxy) reset the stream with RST_STREAM({code}); the connection lived on: look at the server's or the proxy's logs"),
        Cause::Http { status } => format!("an HTTP hop (proxy, load balancer, ingress) answered HTTP {status} with no gRPC status: an error page, not the gRPC server; for 504 a proxy read timeout below the call's duration, for 502/503 a dead or unready upstream. Fix the proxy's gRPC timeouts or its upstream"),
    }
}
