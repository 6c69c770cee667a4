//! Diagnosis: from the events seen (never from message text), what a
//! notable event means and how to fix it (DESIGN §7).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::catalogue::EntryId;
use crate::event::ConnectCause;
use crate::event::{CloseReason, Event, EventKind};
use crate::h2wire::{Dir, ErrorCode};

/// What a notable event means: the text, and the catalogue entry it is an
/// instance of, when it is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub id: Option<EntryId>,
    pub text: String,
}

fn note(id: Option<EntryId>, text: impl Into<String>) -> Note {
    Note {
        id,
        text: text.into(),
    }
}

/// Keeps the context explanations need (the client's keepalive, when the
/// last call ended) and says each connection-failure cause once.
#[derive(Debug, Default)]
pub struct Explainer {
    /// The client's keepalive time, when it pings.
    pub keepalive_time: Option<Duration>,
    last_call_end_ms: Option<f64>,
    said: HashSet<String>,
    /// Connections that reached READY, and when: only their closes are
    /// explained (a failed handshake is explained by its connect event).
    connected: HashMap<u64, f64>,
    /// Connections this client sent a PING on.
    pinged: HashSet<u64>,
    /// When the current drain's GOAWAY came (until a call it cut is told).
    drain_ms: Option<f64>,
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

    fn once(&mut self, key: String, note: Note) -> Option<Note> {
        self.said.insert(key).then_some(note)
    }

    pub fn explain(&mut self, e: &Event) -> Option<Note> {
        match &e.kind {
            EventKind::Ping {
                dir: Dir::Sent,
                ack: false,
                ..
            } => {
                self.pinged.extend(e.conn);
                None
            }
            EventKind::Rpc {
                code,
                method,
                message,
                latency_ms,
                ..
            } => {
                self.last_call_end_ms = Some(e.t_ms);
                // A call that was running when a drain began and then failed
                // UNAVAILABLE (not refused unprocessed): the drain cut it.
                let started = e.t_ms - latency_ms;
                if *code == tonic::Code::Unavailable
                    && !message.starts_with(crate::client::conn::NEVER_PROCESSED)
                    && self.drain_ms.is_some_and(|g| g >= started)
                {
                    self.drain_ms = None;
                    return Some(note(
                        Some(EntryId::DrainCut),
                        format!("{method} was in flight when the server began draining and was cut when the drain's grace ran out (a graceful stop's timeout, MaxConnectionAgeGrace, C-core's max connection age grace). Fix: a grace longer than the longest call; retry UNAVAILABLE."),
                    ));
                }
                if *code != tonic::Code::Unimplemented {
                    return None;
                }
                self.once(
                    format!("unimplemented {method}"),
                    note(None, format!(
                        "the server does not implement {method}, so the transport works; use --probe METHOD to call a method it has"
                    )),
                )
            }
            EventKind::Goaway {
                dir: Dir::Received,
                code,
                debug,
                last_stream_id,
            } => {
                // One explanation per drain: grpc-go's two GOAWAYs (2^31-1,
                // then the last stream) are one drain.
                let pinged = e.conn.is_some_and(|c| self.pinged.contains(&c));
                if *code == ErrorCode::NO_ERROR {
                    self.drain_ms.get_or_insert(e.t_ms);
                }
                // How long nothing had run on the connection.
                let quiet = e.conn.and_then(|c| self.connected.get(&c)).map(|ready| {
                    e.t_ms - self.last_call_end_ms.map_or(*ready, |l| l.max(*ready))
                });
                let n = self.goaway(e.t_ms, *code, debug, *last_stream_id, pinged, quiet);
                let conn = e.conn.unwrap_or(0);
                self.once(format!("goaway {conn} {code} {debug}"), n)
            }
            EventKind::Closed {
                reason: CloseReason::KeepaliveTimeout,
                ..
            } => Some(note(
                Some(EntryId::KeepaliveTimeout),
                "the server did not answer a keepalive PING in time: it is stopped or overloaded, or the network drops packets (a half-open connection). Without keepalive, calls on this connection would hang until their deadline.",
            )),
            EventKind::Connect {
                result: crate::event::ConnectResult::Ok,
                ..
            } => {
                if let Some(c) = e.conn {
                    self.connected.insert(c, e.t_ms);
                }
                None
            }
            // No GOAWAY came before (a close after one is `goaway`).
            EventKind::Closed {
                reason: CloseReason::Reset | CloseReason::Error | CloseReason::Eof,
                streams,
                ..
            } if e.conn.is_some_and(|c| self.connected.contains_key(&c)) => Some(note(
                Some(EntryId::ServerCrash),
                format!(
                    "the connection ended without GOAWAY: the server crashed or was killed, or something in between cut it{}. Calls in flight fail with UNAVAILABLE (grpc-go 1.33 \"transport is closing\", newer \"error reading from server: EOF\", C-core \"Socket closed\"); retry UNAVAILABLE and use wait-for-ready.",
                    if *streams > 0 { "" } else { " (no call was lost here)" }
                ),
            )),

            EventKind::Connect {
                cause: Some(cause),
                ..
            } => {
                let addr = e.addr.as_deref().unwrap_or("the server").to_string();
                let text = connect_note(*cause, &addr);
                let id = connect_entry(*cause);
                self.once(format!("{cause:?} {addr}"), note(id, text))
            }
            EventKind::State {
                channel: false,
                to: crate::connectivity::State::TransientFailure,
                reason,
                subchannel,
                ..
            } if reason.contains("SERVICE_UNKNOWN")
                || (reason.contains("health check RPC error") && reason.contains("NotFound")) =>
            {
                self.once(
                    format!("health unknown {subchannel:?}"),
                    note(
                        Some(EntryId::HealthNotServing),
                        "the server's health service does not know the service name asked for (--health-service, or healthCheckConfig.serviceName in a service config): grpc-go answers SERVICE_UNKNOWN, tonic NOT_FOUND, and the client keeps the connection in TRANSIENT_FAILURE. Ask for a name the server registers its health under, or an empty name for the whole server.",
                    ),
                )
            }
            EventKind::State {
                channel: false,
                to: crate::connectivity::State::TransientFailure,
                reason,
                subchannel,
                ..
            } if reason.starts_with("health check: ") => self.once(
                format!("health {subchannel:?} {reason}"),
                note(
                    Some(EntryId::HealthNotServing),
                    format!(
                        "the connection works, but the server's health service says {}: health-checking clients send it no calls until it says SERVING again. Look at why the server reports it (starting, draining, a dependency down).",
                        reason.trim_start_matches("health check: ")
                    ),
                ),
            ),
            EventKind::Resolve { error: Some(_), .. } => self.once(
                "resolve".into(),
                note(Some(EntryId::NameResolution), "the name does not resolve: check the host name and the DNS; the channel keeps retrying with backoff"),
            ),
            _ => None,
        }
    }

    fn goaway(
        &self,
        t_ms: f64,
        code: ErrorCode,
        debug: &str,
        last_stream_id: u32,
        pinged: bool,
        quiet_ms: Option<f64>,
    ) -> Note {
        let since_call = self
            .last_call_end_ms
            .map(|end| format!("; the last call here ended {} before", dur_ms(t_ms - end)))
            .unwrap_or_default();
        let ka = self
            .keepalive_time
            .map(|k| format!("the client pings every {}", humantime::format_duration(k)))
            .unwrap_or_else(|| "the client pings".into());
        match (code.name().unwrap_or_default(), debug) {
            ("ENHANCE_YOUR_CALM", "too_many_pings") if !pinged => note(
                Some(EntryId::MiddleboxGoaway),
                "too_many_pings, but this client sent no PING on this connection: the GOAWAY was not about its pings. Another client sharing the connection (a proxy multiplexing clients onto it), or a proxy in the path, sent or injected it; look at the hops between client and server.",
            ),
            ("ENHANCE_YOUR_CALM", "too_many_pings") => note(
                Some(EntryId::TooManyPings),
                format!("too_many_pings: {ka}, more often than the server's keepalive enforcement allows (grpc-go EnforcementPolicy.MinTime, 5m by default; pings without calls need PermitWithoutStream). Fix: a client keepalive time at or above the server's MinTime, or relax the server's policy."),
            ),
            // grpc-go: NO_ERROR "max_idle" (or empty); C-core: INTERNAL_ERROR
            // "connection idle".
            (_, d) if d == "max_idle" || d.contains("idle") => note(
                Some(EntryId::IdleTimeout),
                format!("the server closed a connection that had no call for its idle timeout (grpc-go MaxConnectionIdle, C-core grpc.max_connection_idle_ms){since_call}. Harmless, but a call racing it fails with UNAVAILABLE unless retried: keep the connection busy with client keepalive below that idle time (with permit-without-stream), or retry UNAVAILABLE."),
            ),
            ("NO_ERROR", "max_age") => note(
                Some(EntryId::MaxAgeDrain),
                "the server recycles connections after its MaxConnectionAge (so load spreads after scaling): calls in flight get MaxConnectionAgeGrace to finish and are cut when it runs out; new calls go to a new connection, and calls racing the GOAWAY are never processed (safe to retry).",
            ),
            // grpc-go before 1.4x sends its idle GOAWAY without debug data
            // (2^31-1, then the last stream), grpc-js one GOAWAY without it
            // (the last stream processed, 0 on a connection nothing ran
            // on): a drain of a connection nothing ran on for a second or
            // more.
            ("NO_ERROR", "")
                if (last_stream_id == crate::h2wire::frame::MAX_STREAM_ID || last_stream_id == 0)
                    && quiet_ms.is_some_and(|q| q >= 1000.0) =>
            {
                note(
                    Some(EntryId::IdleTimeout),
                    format!(
                        "the server began draining a connection nothing had run on for {}: most likely its idle timeout (grpc-go MaxConnectionIdle, grpc-js grpc.max_connection_idle_ms; grpc-go before 1.4x and grpc-js send it without debug data), else a graceful stop. Harmless, but a call racing it fails with UNAVAILABLE unless retried: client keepalive below the idle time (with permit-without-stream), or retry UNAVAILABLE.",
                        dur_ms(quiet_ms.unwrap_or_default())
                    ),
                )
            }
            ("NO_ERROR", _) if last_stream_id == crate::h2wire::frame::MAX_STREAM_ID => note(
                Some(EntryId::GracefulStop),
                format!(
                    "the server is draining this connection{}: new calls go to a new connection; calls in flight finish unless the drain has a deadline (a graceful stop's timeout, MaxConnectionAgeGrace) that cuts them.",
                    if debug.is_empty() { String::new() } else { format!(" ({debug})") }
                ),
            ),
            ("NO_ERROR", _) => note(
                Some(EntryId::GoawayRace),
                format!("the server processed streams up to {last_stream_id} and closes the connection; later streams were never processed and are safe to retry."),
            ),
            (_, debug) => note(
                None,
                format!(
                    "the server ended the connection with {code}{}: calls in flight fail; look at the server's logs.",
                    if debug.is_empty() { String::new() } else { format!(" ({debug:?})") }
                ),
            ),
        }
    }
}

/// The catalogue entry of a failed connection attempt, by cause.
pub fn connect_entry(cause: ConnectCause) -> Option<EntryId> {
    match cause {
        ConnectCause::Refused => Some(EntryId::ConnectionRefused),
        ConnectCause::PlaintextServer | ConnectCause::TlsServer | ConnectCause::Closed => {
            Some(EntryId::TlsMismatch)
        }
        _ => None,
    }
}

/// What a failed connection attempt means, in a sentence.
pub fn connect_note(cause: ConnectCause, addr: &str) -> String {
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

/// The catalogue entry a load failure cause is an instance of.
pub fn cause_id(c: &crate::event::CallCause) -> Option<EntryId> {
    use crate::event::CallCause as C;
    Some(match c {
        C::Draining { debug } if debug.contains("idle") => EntryId::IdleTimeout,
        C::Draining { .. } => EntryId::DrainCut,
        C::DrainEnded { .. } => EntryId::MaxAgeGraceCCore,
        C::NeverProcessed => EntryId::GoawayRace,
        C::ConnectionLost => EntryId::ServerCrash,
        C::Deadline => EntryId::Deadline,
        C::QueuedDeadline => EntryId::StreamLimitQueue,
        C::Reset { code } if *code == ErrorCode::REFUSED_STREAM => EntryId::RefusedStream,
        C::Reset { .. } => EntryId::RstStream,
        C::Http { status: 502 | 503 } => EntryId::ProxyNoUpstream,
        C::Http { status: 504 } => EntryId::ProxyTimeout,
        C::Http { .. } => EntryId::HttpErrorPage,
        C::NoConnection | C::Status { .. } => return None,
    })
}

/// What a load failure cause means and how to fix it (one line).
pub fn load_cause(c: &crate::load::stats::Cause) -> String {
    use crate::load::stats::Cause;
    match c {
        Cause::Draining { debug } if debug == "max_age" => "stream started on a connection the server was draining (GOAWAY max_age) and cut when the drain's grace ran out (\"transport is closing\"); fix: retry UNAVAILABLE or raise MaxConnectionAgeGrace above the longest call".into(),
        Cause::Draining { debug } if debug.contains("idle") => "the server's idle timeout (GOAWAY max_idle) raced the call; fix: retry UNAVAILABLE, or client keepalive below MaxConnectionIdle".into(),
        Cause::Draining { debug } if debug.is_empty() => "the server was draining the connection (GOAWAY NO_ERROR without a reason: MaxConnectionAge, a graceful stop, or an idle timeout) and closed it under the call (\"transport is closing\"); fix: retry UNAVAILABLE, and give the drain a grace (MaxConnectionAgeGrace, graceful-stop timeout) longer than the longest call".into(),
        Cause::Draining { debug } => format!("the server was draining the connection (GOAWAY {debug:?}) and closed it under the call; fix: retry UNAVAILABLE, and stop servers gracefully with a grace longer than the longest call"),
        Cause::DrainEnded { debug } => format!("the server ended the call UNAVAILABLE while draining the connection (GOAWAY {debug:?}): C-core's max connection age grace ran out (\"max connection age\"); fix: grpc.max_connection_age_grace_ms longer than the longest call, retry UNAVAILABLE"),
        Cause::NeverProcessed => "the server refused the stream unprocessed (GOAWAY last-stream-id or REFUSED_STREAM); safe to retry: keep transparent retry on".into(),
        Cause::ConnectionLost => "the connection failed under the call without GOAWAY (crash, kill, network cut): \"transport is closing\"; fix: retry UNAVAILABLE, and keepalive to notice dead peers".into(),
        Cause::NoConnection => "no READY connection to start the call on (server down, refused, TLS failure): fail-fast UNAVAILABLE; fix: --wait-for-ready or retry UNAVAILABLE".into(),
        Cause::QueuedDeadline => "the call's deadline passed while it waited for a stream slot: the connection had as many calls as the server's MAX_CONCURRENT_STREAMS allows; fix: more connections (--connections), fewer calls in flight, or a higher server limit".into(),
        Cause::Deadline => "the call outlived --timeout: the server was too slow, or calls queued for stream slots (MAX_CONCURRENT_STREAMS)".into(),
        Cause::Status { code } => format!("the server's handler answered {}", crate::grpc::code_name(*code)),
        Cause::Reset { code } if *code == ErrorCode::CANCEL => "the server (or a proxy) cancelled the stream with RST_STREAM(CANCEL); the connection lived on: CANCELLED \"stream terminated by RST_STREAM with error code: CANCEL\". The server gave up on the call: look for its own deadline or cancellation, or a proxy's stream timeout".into(),
        Cause::Reset { code } => format!("the server (or a proxy) reset the stream with RST_STREAM({code}); the connection lived on: look at the server's or the proxy's logs"),
        Cause::Http { status } => format!("an HTTP hop (proxy, load balancer, ingress) answered HTTP {status} with no gRPC status: an error page, not the gRPC server; for 504 a proxy read timeout below the call's duration, for 502/503 a dead or unready upstream. Fix the proxy's gRPC timeouts or its upstream"),
    }
}
