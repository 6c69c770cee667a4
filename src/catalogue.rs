//! The failure catalogue: every connection failure grpcdoc knows, as data.
//! One entry each: what grpcdoc recognises on the wire, the cause, the fix,
//! the shipped scenario that reproduces it, and what users read in their
//! logs on each gRPC stack. `watch`, `load`, `scenario` and `explain` all
//! explain by entry id, so an explanation is written once.
//!
//! The messages under `says` were recorded from the real clients
//! (`../shared/peers`: grpc-go 1.33 `gogrpc-watch`, grpc-go 1.44 `grpcurl`,
//! grpc-go 1.73 `k6`, C-core 1.85 `pygrpc-watch`) in the setup the entry
//! names; `tests/conformance.rs` records them again and fails when a stack
//! says something else. A `*` in a message stands for any text (an
//! address, a number). A stack with no message listed was not recorded.

use serde::Serialize;

/// A gRPC stack whose messages the catalogue lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stack {
    /// grpc-go 1.33 (2020).
    GrpcGo133,
    /// grpc-go 1.44 (grpcurl 1.8.6).
    GrpcGo144,
    /// grpc-go 1.73 (k6 1.1).
    GrpcGo173,
    /// gRPC C-core 1.85 (grpcio; also what C++, Python, Ruby, PHP print).
    CCore185,
    /// grpcdoc itself (`load`, `watch` probes).
    Grpcdoc,
}

impl Stack {
    pub fn name(self) -> &'static str {
        match self {
            Stack::GrpcGo133 => "grpc-go 1.33",
            Stack::GrpcGo144 => "grpc-go 1.44",
            Stack::GrpcGo173 => "grpc-go 1.73",
            Stack::CCore185 => "C-core 1.85",
            Stack::Grpcdoc => "grpcdoc",
        }
    }
}

/// What a stack prints for an entry: the status code and the message.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Says {
    pub stack: Stack,
    pub code: &'static str,
    pub message: &'static str,
}

/// One known failure.
#[derive(Debug, Serialize)]
pub struct Entry {
    pub id: &'static str,
    pub title: &'static str,
    /// What grpcdoc sees on the wire when it happens.
    pub wire: &'static str,
    pub cause: &'static str,
    pub fix: &'static str,
    /// The shipped scenario that reproduces it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenario: Option<&'static str>,
    /// The grpcdoc command that shows it (TARGET stands for the server).
    pub watch: &'static str,
    pub says: &'static [Says],
}

const fn says(stack: Stack, code: &'static str, message: &'static str) -> Says {
    Says {
        stack,
        code,
        message,
    }
}

use Stack::{CCore185 as CORE, GrpcGo133 as GO133, GrpcGo144 as GO144, GrpcGo173 as GO173};

pub static CATALOGUE: &[Entry] = &[
    Entry {
        id: "server-crash",
        title: "server crash or hard stop",
        wire: "the connection ends (FIN or RST) with calls in flight and no GOAWAY before it",
        cause: "the server process died or was stopped hard (kill -9, OOM, Stop() instead of GracefulStop()), or a host or network in between went away; calls in flight were lost and the server may or may not have processed them",
        fix: "stop servers gracefully (GOAWAY, then wait for calls: GracefulStop, SIGTERM handling, a preStop hook); retry UNAVAILABLE for idempotent calls; client keepalive to notice a dead peer quickly",
        scenario: Some("scenarios/restart.yaml"),
        watch: "grpcdoc watch TARGET --probe-interval 200ms",
        says: &[
            says(GO133, "UNAVAILABLE", "transport is closing"),
            says(GO144, "UNAVAILABLE", "error reading from server: EOF"),
            says(GO173, "UNAVAILABLE", "error reading from server: EOF"),
            says(CORE, "UNAVAILABLE", "Stream removed (Socket closed)"),
            says(Stack::Grpcdoc, "UNAVAILABLE", "the server closed the connection (EOF, no GOAWAY)"),
            says(Stack::Grpcdoc, "UNAVAILABLE", "connection error: Connection reset by peer*"),
        ],
    },
    Entry {
        id: "max-age-drain",
        title: "the server recycles connections (max connection age)",
        wire: "GOAWAY NO_ERROR `max_age` (grpc-go: 2^31-1, a PING, then the last stream; C-core: one GOAWAY) at a steady age of each connection",
        cause: "the server's MaxConnectionAge (grpc.max_connection_age_ms) ends every connection after a while, so that load spreads after scaling; calls in flight get the grace to finish, new calls go to a new connection",
        fix: "nothing, while no call fails; calls cut by the grace are drain-cut, calls racing the GOAWAY goaway-race",
        scenario: Some("scenarios/max-age-goaway.yaml"),
        watch: "grpcdoc watch TARGET",
        says: &[],
    },
    Entry {
        id: "graceful-stop",
        title: "the server is stopping gracefully",
        wire: "GOAWAY NO_ERROR with last-stream-id 2^31-1 (and often no debug data), then a second GOAWAY with the last stream it processed, then FIN once calls finished",
        cause: "the server is shutting down or restarting gracefully (GracefulStop, SIGTERM in a rolling deploy): it takes no new calls on this connection and finishes the ones in flight",
        fix: "nothing on the client: new calls go to a new connection (another replica); with health checking and retries users do not notice. If calls fail, see drain-cut",
        scenario: Some("scenarios/restart.yaml"),
        watch: "grpcdoc watch TARGET",
        says: &[],
    },
    Entry {
        id: "drain-cut",
        title: "a graceful drain cut calls when its grace ran out",
        wire: "GOAWAY NO_ERROR (debug `max_age`, or empty), then FIN with calls still in flight",
        cause: "the server drained the connection (grpc-go MaxConnectionAge, or GracefulStop with a timeout) and closed it when the grace (MaxConnectionAgeGrace, the stop timeout) ran out, cutting calls that outlived it",
        fix: "a grace longer than the longest call (MaxConnectionAgeGrace, terminationGracePeriodSeconds); retry UNAVAILABLE (the retry goes to a new connection)",
        scenario: Some("scenarios/max-age-goaway.yaml"),
        watch: "grpcdoc watch TARGET --probe helloworld.Greeter/SayHello",
        says: &[
            says(GO133, "UNAVAILABLE", "transport is closing"),
            says(GO144, "UNAVAILABLE", "closing transport due to: connection error: desc = \"error reading from server: EOF\", received prior goaway: code: NO_ERROR*"),
            says(GO173, "UNAVAILABLE", "closing transport due to: connection error: desc = \"error reading from server: EOF\", received prior goaway: code: NO_ERROR*"),
            says(CORE, "UNAVAILABLE", "Stream removed (Socket closed (GOAWAY received; Error code: 0; Debug Text: *))"),
            says(Stack::Grpcdoc, "UNAVAILABLE", "the server closed the connection after its GOAWAY"),
        ],
    },
    Entry {
        id: "max-age-grace-c-core",
        title: "C-core's max connection age grace ran out",
        wire: "GOAWAY NO_ERROR `max_age`, then calls still running end with trailers grpc-status 14 `max connection age`",
        cause: "a C-core server (grpc.max_connection_age_ms) drained the connection and ended the calls that outlived grpc.max_connection_age_grace_ms with UNAVAILABLE",
        fix: "grpc.max_connection_age_grace_ms longer than the longest call; retry UNAVAILABLE",
        scenario: Some("scenarios/max-age-goaway.yaml"),
        watch: "grpcdoc watch TARGET --probe helloworld.Greeter/SayHello",
        says: &[
            says(GO133, "UNAVAILABLE", "max connection age"),
            says(GO144, "UNAVAILABLE", "max connection age"),
            says(GO173, "UNAVAILABLE", "max connection age"),
            says(CORE, "UNAVAILABLE", "max connection age"),
        ],
    },
    Entry {
        id: "goaway-race",
        title: "a call raced a GOAWAY and was never processed",
        wire: "GOAWAY (max_age, max_idle, a graceful stop) whose last-stream-id is below a stream the client had just opened",
        cause: "the call was sent on a connection the server had started closing (MaxConnectionAge, MaxConnectionIdle, a graceful stop); the server never processed it",
        fix: "nothing to fix on the server: the call is safe to retry, and gRPC clients retry it transparently; keep transparent retry on (grpcdoc: no --no-transparent-retry)",
        scenario: Some("scenarios/max-age-goaway.yaml"),
        watch: "grpcdoc watch TARGET --probe helloworld.Greeter/SayHello",
        says: &[says(
            Stack::Grpcdoc,
            "UNAVAILABLE",
            "stream never processed by the server (GOAWAY *): safe to retry",
        )],
    },
    Entry {
        id: "idle-timeout",
        title: "the server's idle timeout raced a call",
        wire: "grpc-go: GOAWAY NO_ERROR `max_idle` (or empty); C-core: GOAWAY INTERNAL_ERROR `connection idle`, then FIN",
        cause: "the server closes connections without calls for its MaxConnectionIdle (grpc.max_connection_idle_ms); a call sent as the GOAWAY crossed it was never processed, and on C-core servers is not retried",
        fix: "client keepalive below the idle time with permit-without-stream, or a longer server idle timeout; retry UNAVAILABLE",
        scenario: Some("scenarios/idle-goaway.yaml"),
        watch: "grpcdoc watch TARGET --probe-interval 1s",
        says: &[],
    },
    Entry {
        id: "too-many-pings",
        title: "the client pings more often than the server allows",
        wire: "GOAWAY ENHANCE_YOUR_CALM `too_many_pings` after client PINGs closer together than the server's enforcement MinTime",
        cause: "the client's keepalive time is below the server's keepalive enforcement (grpc-go EnforcementPolicy.MinTime, 5 minutes by default; pings without calls need PermitWithoutStream)",
        fix: "a client keepalive time at or above the server's MinTime, or relax the server's policy",
        scenario: Some("scenarios/too-many-pings.yaml"),
        watch: "grpcdoc watch TARGET --keepalive-time 1s",
        says: &[says(GO133, "UNAVAILABLE", "transport is closing")],
    },
    Entry {
        id: "keepalive-timeout",
        title: "a keepalive PING got no answer: the peer is gone or stopped",
        wire: "a PING without its ACK within the keepalive timeout, then the connection closed by the side that pinged",
        cause: "the peer is stopped, overloaded, or unreachable without a FIN or RST (a half-open connection behind a NAT or load balancer that forgot it)",
        fix: "client keepalive (time and timeout) so dead connections are found in seconds; look at what stopped the peer",
        scenario: Some("scenarios/lost-keepalive-ping.yaml"),
        watch: "grpcdoc watch TARGET --keepalive-time 1s --keepalive-timeout 1s",
        // Recorded against a SIGSTOPped grpc-go server. grpcurl (1.44)
        // raises keepalive to 10 s and C-core throttles pings on a call
        // without data: both ran into the call's deadline first (half-open).
        says: &[says(GO133, "UNAVAILABLE", "transport is closing")],
    },
    Entry {
        id: "half-open",
        title: "a half-open connection: calls hang until their deadline",
        wire: "requests go out, nothing comes back, no FIN or RST",
        cause: "a NAT, load balancer or crashed host forgot the connection; without keepalive the client keeps using it",
        fix: "client keepalive (gRFC A8)",
        scenario: Some("scenarios/half-open.yaml"),
        watch: "grpcdoc watch TARGET --keepalive-time 1s --keepalive-timeout 1s",
        says: &[],
    },
    Entry {
        id: "deadline",
        title: "the call outlived its deadline",
        wire: "the client resets the stream (RST_STREAM CANCEL) when its deadline passes; the server's answer had not come",
        cause: "the server was slower than the call's deadline, or the call waited for a stream slot (MAX_CONCURRENT_STREAMS) or a connection",
        fix: "find what is slow (grpcdoc load's latency table, slot waits); raise the deadline only if the work really takes that long",
        scenario: Some("scenarios/max-concurrent-streams.yaml"),
        watch: "grpcdoc load TARGET --call pkg.Svc/Method --timeout 1s",
        says: &[
            says(GO133, "DEADLINE_EXCEEDED", "context deadline exceeded"),
            says(GO144, "DEADLINE_EXCEEDED", "context deadline exceeded"),
            says(GO173, "DEADLINE_EXCEEDED", "context deadline exceeded"),
            says(CORE, "DEADLINE_EXCEEDED", "Deadline Exceeded"),
            // The deadline also travels to the server (grpc-timeout): when a
            // grpc-go server's own timer fires first, its status is relayed.
            says(CORE, "DEADLINE_EXCEEDED", "context deadline exceeded"),
        ],
    },
    Entry {
        id: "stream-limit-queue",
        title: "calls queued behind the server's stream limit",
        wire: "SETTINGS_MAX_CONCURRENT_STREAMS from the server, and calls waiting for a slot on a connection that is full",
        cause: "the server allows N concurrent streams per connection and the client has more calls than that on its one connection; the rest wait, and time out",
        fix: "more connections (grpcdoc: --connections; grpc-go: several ClientConns), or a higher server limit",
        scenario: Some("scenarios/max-concurrent-streams.yaml"),
        watch: "grpcdoc load TARGET --call pkg.Svc/Method -c 200",
        says: &[],
    },
    Entry {
        id: "http-error-page",
        title: "an HTTP hop answered with an error page, not gRPC",
        wire: "a response head with :status 502/503/504 (or another non-200) and content-type text/html, no grpc-status",
        cause: "a proxy, load balancer or ingress in front of the server answered itself: 504 when its read timeout (nginx grpc_read_timeout, 60 s by default) is below the call's duration, 502/503 when its upstream is down or not ready",
        fix: "raise the proxy's gRPC timeouts above the longest call (nginx grpc_read_timeout / grpc_send_timeout, HAProxy timeout server), or fix its upstream",
        scenario: Some("scenarios/nginx-read-timeout.yaml"),
        watch: "grpcdoc load TARGET --call pkg.Svc/Method",
        says: &[
            says(GO133, "UNAVAILABLE", "* HTTP status code 50*; transport: received the unexpected content-type \"text/html*\""),
            says(GO144, "UNAVAILABLE", "unexpected HTTP status code received from server: 50* (*); transport: received unexpected content-type \"text/html*\""),
            says(GO173, "UNAVAILABLE", "unexpected HTTP status code received from server: 50* (*); transport: received unexpected content-type \"text/html*\""),
            says(CORE, "UNAVAILABLE", "Received http2 header with status: 50*"),
        ],
    },
    Entry {
        id: "tls-mismatch",
        title: "TLS on one side, plaintext on the other",
        wire: "the server answers the client's first bytes with a TLS alert or an HTTP/1 response, or closes at once",
        cause: "the client speaks plaintext (h2c) to a TLS port, or TLS to a plaintext port",
        fix: "use https:// (or --cacert) for a TLS server, plaintext for an h2c one; check the port",
        scenario: None,
        watch: "grpcdoc watch TARGET",
        says: &[
            says(GO133, "UNAVAILABLE", "connection closed"),
            says(GO173, "UNAVAILABLE", "* connection error: desc = \"error reading server preface: unexpected EOF\""),
            says(CORE, "UNAVAILABLE", "failed to connect to all addresses; last error: UNAVAILABLE: *: Socket closed"),
        ],
    },
    Entry {
        id: "message-too-large",
        title: "a message over the receiver's size limit",
        wire: "the call ends RESOURCE_EXHAUSTED right after a large DATA frame; the connection lives on",
        cause: "a request (or response) larger than the receiver's max receive message size (4 MiB by default in grpc-go and C-core); the message names both sizes, and `SERVER:` (C-core) says the server refused it",
        fix: "raise the limit on the receiving side (grpc-go MaxRecvMsgSize, C-core grpc.max_receive_message_length), or send smaller messages (paging, streaming)",
        scenario: None,
        watch: "grpcdoc load TARGET --call pkg.Svc/Method -d @big.json",
        says: &[
            // Recorded with grpcurl against the grpc-go and C-core servers:
            // the server's own limit, relayed to the client as is.
            says(GO144, "RESOURCE_EXHAUSTED", "grpc: received message larger than max (* vs. *)"),
            says(GO144, "RESOURCE_EXHAUSTED", "SERVER: Received message larger than max (* vs. *)"),
        ],
    },
    Entry {
        id: "rst-stream",
        title: "the server or a proxy reset the stream",
        wire: "RST_STREAM from the peer on the call's stream; the connection lives on",
        cause: "the server (or a proxy) gave up on this call: CANCEL when it cancelled it (its own deadline, a proxy's stream timeout), another code when the stream broke a rule",
        fix: "look at the server's or the proxy's logs for the stream; CANCEL is CANCELLED on the client, ENHANCE_YOUR_CALM RESOURCE_EXHAUSTED, INADEQUATE_SECURITY PERMISSION_DENIED, others INTERNAL (gRPC's PROTOCOL-HTTP2)",
        scenario: None,
        watch: "grpcdoc load TARGET --call pkg.Svc/Method",
        says: &[
            says(GO133, "CANCELLED", "stream terminated by RST_STREAM with error code: *"),
            says(GO144, "CANCELLED", "stream terminated by RST_STREAM with error code: *"),
            says(GO173, "CANCELLED", "stream terminated by RST_STREAM with error code: *"),
            says(CORE, "CANCELLED", "Stream removed (RST_STREAM (Received RST_STREAM with error code *))"),
        ],
    },
    Entry {
        id: "refused-stream",
        title: "the server refused the stream unprocessed",
        wire: "RST_STREAM REFUSED_STREAM on a new stream",
        cause: "the server would not take another stream now (over its limit, or shutting down); it did not process the call",
        fix: "safe to retry: gRPC clients retry it transparently; if it is frequent, more connections or a higher stream limit",
        scenario: None,
        watch: "grpcdoc load TARGET --call pkg.Svc/Method",
        says: &[says(
            Stack::Grpcdoc,
            "UNAVAILABLE",
            "stream never processed by the server (REFUSED_STREAM): safe to retry",
        )],
    },
    Entry {
        id: "connection-refused",
        title: "nothing listens on the address",
        wire: "TCP connect refused (RST to the SYN)",
        cause: "the server is down, not started yet, or listens on another port or interface (127.0.0.1 instead of 0.0.0.0)",
        fix: "start the server, check the port and the listen address; wait-for-ready calls wait for it instead of failing fast",
        scenario: Some("scenarios/restart.yaml"),
        watch: "grpcdoc watch TARGET",
        says: &[
            says(GO133, "UNAVAILABLE", "connection error: desc = \"transport: Error while dialing dial tcp *: connect: connection refused\""),
            says(GO144, "", "Failed to dial target host \"*\": dial tcp *: connect: connection refused"),
            says(GO173, "UNAVAILABLE", "connection error: desc = \"transport: error while dialing: dial tcp *: connect: connection refused\""),
            says(CORE, "UNAVAILABLE", "failed to connect to all addresses; last error: UNKNOWN: *: Failed to connect to remote host: Connection refused"),
            says(Stack::Grpcdoc, "UNAVAILABLE", "connect to *: Connection refused*"),
        ],
    },
    Entry {
        id: "name-resolution",
        title: "the name does not resolve",
        wire: "no connection attempt: DNS has no address for the name",
        cause: "a typo in the host name, a missing DNS record, or a resolver the client cannot reach (a Kubernetes service in another namespace needs its full name)",
        fix: "check the name with dig or getent hosts from where the client runs; use the fully qualified name",
        scenario: None,
        watch: "grpcdoc watch TARGET",
        says: &[
            says(GO133, "UNAVAILABLE", "connection error: desc = \"transport: Error while dialing dial tcp: lookup *: no such host\""),
            says(GO144, "", "Failed to dial target host \"*\": dial tcp: lookup *: no such host"),
            says(GO173, "UNAVAILABLE", "connection error: desc = \"transport: error while dialing: lookup *: no such host\""),
            says(CORE, "UNAVAILABLE", "errors resolving *: [field:hostname lookup error:address lookup failed for *: Domain name not found]"),
        ],
    },
    Entry {
        id: "health-not-serving",
        title: "the server says it is not serving",
        wire: "grpc.health.v1.Health/Check answers NOT_SERVING (or the Watch stream says so)",
        cause: "the server is starting, draining, or one of its dependencies is down, and it said so on its health service; health-checking clients send it no calls",
        fix: "look at why the server reports NOT_SERVING (its logs, its dependencies); this is the health check working",
        scenario: None,
        watch: "grpcdoc watch TARGET --health-service ''",
        says: &[],
    },
    Entry {
        id: "middlebox-goaway",
        title: "a GOAWAY from a proxy, not from the server",
        wire: "GOAWAY whose debug data or timing does not match the server's own policy (no max_age/max_idle it was configured with)",
        cause: "an HTTP/2 proxy or load balancer in the path ended the connection (its own idle or age limit, a reload)",
        fix: "find the hop's idle and connection-age limits (nginx http2_idle_timeout / keepalive_timeout, HAProxy timeout client) and keep them above the client's keepalive or the server's own limits",
        scenario: Some("scenarios/haproxy-timeouts.yaml"),
        watch: "grpcdoc watch TARGET",
        says: &[],
    },
];

/// The entry with this id.
pub fn entry(id: &str) -> Option<&'static Entry> {
    CATALOGUE.iter().find(|e| e.id == id)
}

/// Whether `pattern` (literal text, `*` for any run of characters) occurs
/// in `text`; the number of literal characters it matched when it does.
pub fn find(pattern: &str, text: &str) -> Option<usize> {
    let parts: Vec<&str> = pattern.split('*').collect();
    let literal: usize = parts.iter().map(|p| p.chars().count()).sum();
    // Each part is found after the one before; the first anywhere (the
    // message sits inside a log line).
    let mut rest = text;
    for part in parts.iter().filter(|p| !p.is_empty()) {
        let at = rest.find(part)?;
        rest = &rest[at + part.len()..];
    }
    Some(literal)
}

/// A catalogue entry a message points to, with the stacks that print it.
#[derive(Clone, Debug, Serialize)]
pub struct Candidate {
    pub id: &'static str,
    /// Literal characters of the best matching message: more is surer.
    pub score: usize,
    pub stacks: Vec<Stack>,
}

/// The entries whose messages occur in `text`, best first.
pub fn candidates(text: &str) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    for e in CATALOGUE {
        let mut best = 0;
        let mut stacks = Vec::new();
        for s in e.says {
            if let Some(score) = find(s.message, text) {
                best = best.max(score);
                stacks.push(s.stack);
            }
        }
        if !stacks.is_empty() {
            out.push(Candidate {
                id: e.id,
                score: best,
                stacks,
            });
        }
    }
    out.sort_by_key(|c| std::cmp::Reverse(c.score));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_entries_complete() {
        let mut ids = std::collections::HashSet::new();
        for e in CATALOGUE {
            assert!(ids.insert(e.id), "duplicate id {}", e.id);
            assert!(!e.title.is_empty() && !e.cause.is_empty() && !e.fix.is_empty());
            assert!(!e.wire.is_empty() && e.watch.starts_with("grpcdoc "));
            if let Some(s) = e.scenario {
                let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(s);
                assert!(path.exists(), "{}: no {s}", e.id);
            }
        }
    }

    #[test]
    fn patterns_match_inside_log_lines() {
        assert_eq!(find("a*c", "xx a b c yy"), Some(2));
        assert_eq!(find("a*c", "c then a"), None);
        assert_eq!(
            find("max connection age", "desc = max connection age"),
            Some(18)
        );
    }

    #[test]
    fn every_recorded_message_finds_its_own_entry_first() {
        for e in CATALOGUE {
            for s in e.says {
                // The message as a stack prints it: every `*` filled in.
                let text = s.message.replace('*', "127.0.0.1:50051");
                let got = candidates(&text);
                let first = got.first().map(|c| c.id);
                let tied: Vec<&str> = got
                    .iter()
                    .filter(|c| Some(c.score) == got.first().map(|f| f.score))
                    .map(|c| c.id)
                    .collect();
                assert!(
                    first == Some(e.id) || tied.contains(&e.id),
                    "{} ({}): {text:?} ranks {got:?}",
                    e.id,
                    s.stack.name()
                );
            }
        }
    }
}
