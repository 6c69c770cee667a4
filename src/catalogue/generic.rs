//! Generic messages: words every stack prints for several causes
//! (`transport is closing`, `Socket closed`, `Connection reset by peer`).
//! Alone they never name one entry: `explain` lists the entries they fit,
//! ranked by the other evidence in the text (then in the order given here,
//! likeliest first), and says how to tell them apart.

use super::EntryId::{self, *};

/// A generic message and the entries it fits.
#[derive(Debug)]
pub struct Generic {
    /// Words, normalised as evidence is (`a + b`: both, anywhere).
    pub words: &'static str,
    /// The entries it fits, likeliest first.
    pub fits: &'static [EntryId],
    /// Entries whose own evidence does not count where these words occur
    /// (`deadline exceeded` while dialing is not a slow call).
    pub mute: &'static [EntryId],
    /// How to tell the entries apart: what to look at, the grpcdoc
    /// command that shows it.
    pub tell: &'static str,
}

const LOST: &[EntryId] = &[
    ServerCrash,
    IdleDrop,
    DrainCut,
    MiddleboxGoaway,
    TooManyPings,
    KeepaliveTimeout,
    MaxAgeDrain,
    NotGrpcEndpoint,
];
const LOST_TELL: &str = "a GOAWAY before the close names its cause (its code and debug data: max_age, max_idle, too_many_pings); a close without one after a quiet period is a silent drop in the path, and during a deploy or a crash the server's own logs show it: `grpcdoc watch TARGET` logs every GOAWAY and close, `grpcdoc doctor TARGET` measures the path's idle timeout";

const CONNECT: &[EntryId] = &[
    ConnectionRefused,
    ConnectTimeout,
    NameResolution,
    TlsMismatch,
    TlsUntrusted,
    NotGrpcEndpoint,
    TlsExpired,
];
const CONNECT_TELL: &str = "the channel never got a working connection; the cause is in the connection attempt's own error (refused, timed out, name not found, a TLS failure), often one line earlier in the log or in the exception's cause: `grpcdoc watch TARGET` shows each attempt and why it failed";

const TLS: &[EntryId] = &[
    TlsUntrusted,
    TlsExpired,
    TlsWrongName,
    TlsMismatch,
    NoAlpnH2,
];
const TLS_TELL: &str = "the TLS library's own reason names it (unknown authority, expired, a name mismatch, a wrong version number): it is often in the next line or the exception's cause; `grpcdoc doctor https://HOST:PORT` shows the certificate chain, names, expiry and ALPN";

const GOAWAY: &[EntryId] = &[
    MaxAgeDrain,
    DrainCut,
    GoawayRace,
    IdleTimeout,
    GracefulStop,
    MiddleboxGoaway,
];
const GOAWAY_TELL: &str = "the GOAWAY's debug data names the policy (max_age, max_idle; grpc-go before 1.56 and proxies send none); whether the server or a proxy sent it, and what the connection carried before, shows in `grpcdoc watch TARGET`; `grpcdoc doctor TARGET` measures the server's max age and idle timeout";

const PROXY_TELL: &str = "an HTTP hop answered instead of the server: its own log (nginx error.log, the Envoy access log's response flags, HAProxy's termination state) says whether it could not reach the server, timed out, or was reset; `grpcdoc call TARGET METHOD -v` shows the answer's headers (`server: envoy`)";

pub static GENERIC: &[Generic] = &[
    Generic {
        words: "the connection is draining",
        fits: GOAWAY,
        mute: &[],
        tell: GOAWAY_TELL,
    },
    Generic {
        words: "closed by goaway",
        fits: GOAWAY,
        mute: &[],
        tell: GOAWAY_TELL,
    },
    Generic {
        words: "received prior goaway",
        fits: GOAWAY,
        mute: &[],
        tell: GOAWAY_TELL,
    },
    Generic {
        words: "unimplemented + not found",
        fits: &[ProxyNoRoute, NotGrpcEndpoint, Unimplemented],
        mute: &[],
        tell: "UNIMPLEMENTED `Not Found` is an HTTP 404 read as a status: a proxy without a route for the call, or a web server; a gRPC server answers an unknown method with its own message. `grpcdoc call TARGET list -v` shows who answered",
    },
    Generic {
        words: "goaway received",
        fits: GOAWAY,
        mute: &[],
        tell: GOAWAY_TELL,
    },
    Generic {
        words: "all sub conns are in transient failure",
        fits: CONNECT,
        mute: &[Deadline],
        tell: CONNECT_TELL,
    },
    Generic {
        words: "transient failure",
        fits: CONNECT,
        mute: &[],
        tell: CONNECT_TELL,
    },
    Generic {
        words: "failed to create subchannel",
        fits: CONNECT,
        mute: &[Deadline],
        tell: CONNECT_TELL,
    },
    Generic {
        words: "before server preface",
        fits: &[TlsMismatch, TlsUntrusted, TlsExpired, ServerCrash, NotGrpcEndpoint],
        mute: &[],
        tell: "the server closed the connection before its first SETTINGS: it expects TLS, refused the TLS handshake (an untrusted or expired client certificate with mTLS), or is not an HTTP/2 server; `grpcdoc watch TARGET` and `grpcdoc doctor https://TARGET` show which",
    },
    Generic {
        words: "http1 x server",
        fits: &[NotGrpcEndpoint, TlsMismatch, H2cNotEnabled],
        mute: &[],
        tell: "the server answered in HTTP/1.x: a web server or the wrong port, or a TLS port answering plaintext with `400 The plain HTTP request was sent to HTTPS port`; `grpcdoc watch TARGET` shows the answer",
    },
    Generic {
        words: "certificate verify failed",
        fits: TLS,
        mute: &[],
        tell: TLS_TELL,
    },
    Generic {
        words: "bad certificate",
        fits: TLS,
        mute: &[],
        tell: TLS_TELL,
    },
    Generic {
        words: "response protocol downgraded to http 1 1",
        fits: &[H2cNotEnabled, NoAlpnH2, NotGrpcEndpoint],
        mute: &[],
        tell: "the server (or a hop) answered in HTTP/1.1: over http:// the endpoint does not take HTTP/2 without TLS, over https:// it did not offer h2 in ALPN; `grpcdoc watch TARGET` and `grpcdoc doctor https://TARGET` show which",
    },
    Generic {
        words: "ssl handshake exception",
        fits: TLS,
        mute: &[],
        tell: TLS_TELL,
    },
    Generic {
        words: "code not found",
        fits: &[Unimplemented, HealthNotServing, NotGrpcEndpoint],
        mute: &[],
        tell: "NOT_FOUND from a health check means the service name is unknown to it, from a call usually the application's own answer; `grpcdoc call TARGET list` shows what the server has",
    },
    Generic {
        words: "unable to establish http 2 connection",
        fits: &[NoAlpnH2, H2cNotEnabled, NotGrpcEndpoint, TlsMismatch],
        mute: &[],
        tell: "whether the endpoint speaks HTTP/2 at all, over TLS (ALPN h2) or without (h2c): `grpcdoc watch TARGET` and `grpcdoc doctor https://TARGET` show what answers",
    },
    Generic {
        words: "response ended prematurely",
        fits: &[ServerCrash, IdleDrop, H2cNotEnabled, NotGrpcEndpoint, TooManyPings],
        mute: &[],
        tell: "the server or a hop closed the connection mid-response; whether it sent a GOAWAY first (and why) shows in `grpcdoc watch TARGET`, and an HTTP/1-only endpoint in `grpcdoc watch` too",
    },
    Generic {
        words: "transport is closing",
        fits: LOST,
        mute: &[],
        tell: LOST_TELL,
    },
    Generic {
        words: "socket closed",
        fits: LOST,
        mute: &[],
        tell: LOST_TELL,
    },
    Generic {
        words: "stream removed",
        fits: &[ServerCrash, IdleDrop, RstStream, MiddleboxGoaway, ProxyUpstreamReset, NotGrpcEndpoint],
        mute: &[],
        tell: LOST_TELL,
    },
    Generic {
        words: "connection reset by peer",
        fits: &[ServerCrash, IdleDrop, ProxyUpstreamReset, MiddleboxGoaway, TlsMismatch],
        mute: &[],
        tell: LOST_TELL,
    },
    Generic {
        words: "econnreset",
        fits: &[ServerCrash, IdleDrop, ProxyUpstreamReset, MiddleboxGoaway],
        mute: &[],
        tell: LOST_TELL,
    },
    Generic {
        words: "connection reset",
        fits: &[ServerCrash, IdleDrop, ProxyUpstreamReset, MiddleboxGoaway],
        mute: &[],
        tell: LOST_TELL,
    },
    Generic {
        words: "broken pipe",
        fits: &[ServerCrash, IdleDrop, ProxyUpstreamReset],
        mute: &[],
        tell: LOST_TELL,
    },
    Generic {
        words: "connection closed",
        fits: &[ServerCrash, IdleDrop, MiddleboxGoaway, TlsMismatch, DrainCut],
        mute: &[],
        tell: LOST_TELL,
    },
    Generic {
        words: "channel closed",
        fits: &[ServerCrash, IdleDrop, MiddleboxGoaway, ClientClosed],
        mute: &[],
        tell: LOST_TELL,
    },
    Generic {
        words: "transport closed",
        fits: LOST,
        mute: &[],
        tell: LOST_TELL,
    },
    Generic {
        words: "closed the connection",
        fits: LOST,
        mute: &[],
        tell: LOST_TELL,
    },
    Generic {
        words: "network closed for unknown reason",
        fits: &[ServerCrash, IdleDrop, MiddleboxGoaway, TlsMismatch, DrainCut],
        mute: &[],
        tell: LOST_TELL,
    },
    Generic {
        words: "connection dropped",
        // grpc-js: a crash, a drain cut, a keepalive timeout alike.
        fits: &[ServerCrash, DrainCut, KeepaliveTimeout, IdleDrop, MiddleboxGoaway],
        mute: &[],
        tell: LOST_TELL,
    },
    Generic {
        words: "error reading from server + eof",
        fits: LOST,
        mute: &[],
        tell: LOST_TELL,
    },
    Generic {
        words: "unexpected eof",
        fits: &[ServerCrash, IdleDrop, TlsMismatch, NotGrpcEndpoint],
        mute: &[],
        tell: LOST_TELL,
    },
    Generic {
        words: "connection closed after goaway",
        fits: &[DrainCut, MiddleboxGoaway, GracefulStop, MaxAgeDrain, IdleTimeout],
        mute: &[],
        tell: "the GOAWAY's debug data names the policy (max_age, max_idle; none from grpc-go before 1.56 and from proxies); whether the server or a proxy sent it shows in `grpcdoc watch TARGET` (the GOAWAY's sender and timing) and `grpcdoc doctor TARGET` (the server's max age and idle)",
    },
    Generic {
        words: "goaway",
        fits: GOAWAY,
        mute: &[],
        tell: GOAWAY_TELL,
    },
    Generic {
        words: "io exception",
        fits: &[ConnectionRefused, ServerCrash, IdleDrop, TlsMismatch, ConnectTimeout],
        mute: &[],
        tell: "grpc-java puts the real error in the exception's cause (`Caused by:` lines): paste them too; `grpcdoc watch TARGET` shows the connection",
    },
    Generic {
        words: "failed to connect to all addresses",
        fits: CONNECT,
        mute: &[Deadline],
        tell: CONNECT_TELL,
    },
    Generic {
        words: "no connection established",
        fits: &[
            ConnectionRefused,
            ConnectTimeout,
            NameResolution,
            TlsMismatch,
            TlsUntrusted,
            ClientClosed,
        ],
        mute: &[Deadline],
        tell: CONNECT_TELL,
    },
    Generic {
        words: "connect failed",
        fits: CONNECT,
        mute: &[],
        tell: CONNECT_TELL,
    },
    Generic {
        words: "failed to connect",
        fits: CONNECT,
        mute: &[],
        tell: CONNECT_TELL,
    },
    Generic {
        words: "failed to connect before the deadline",
        fits: CONNECT,
        mute: &[Deadline],
        tell: CONNECT_TELL,
    },
    Generic {
        words: "failed to dial",
        fits: CONNECT,
        mute: &[Deadline],
        tell: CONNECT_TELL,
    },
    Generic {
        words: "error while dialing",
        fits: CONNECT,
        mute: &[Deadline],
        tell: CONNECT_TELL,
    },
    Generic {
        words: "failed to start call on picked subchannel",
        fits: &[ServerCrash, IdleDrop, GoawayRace],
        mute: &[],
        tell: LOST_TELL,
    },
    Generic {
        words: "authentication handshake failed",
        fits: TLS,
        mute: &[],
        tell: "the TLS error after `authentication handshake failed:` names it (x509: ...); `grpcdoc doctor https://HOST:PORT` shows the certificate chain, names, expiry and ALPN",
    },
    Generic {
        words: "handshake failed",
        fits: TLS,
        mute: &[],
        tell: "the TLS library's own error names it; `grpcdoc doctor https://HOST:PORT` shows the certificate chain, names, expiry and ALPN",
    },
    Generic {
        words: "ssl connection could not be established",
        fits: &[TlsUntrusted, TlsMismatch, TlsWrongName, TlsExpired],
        mute: &[],
        tell: "the inner exception names it (RemoteCertificateChainErrors, NameMismatch, ...): paste it too; `grpcdoc doctor https://HOST:PORT` shows the certificate",
    },
    Generic {
        words: "error starting grpc call",
        fits: &[ConnectionRefused, TlsMismatch, H2cNotEnabled, NotGrpcEndpoint, ServerCrash],
        mute: &[],
        tell: "the HttpRequestException's inner exception names it: paste the whole message; `grpcdoc watch TARGET` shows the connection",
    },
    Generic {
        words: "an error occurred while sending the request",
        fits: &[ServerCrash, IdleDrop, H2cNotEnabled, TlsMismatch, NotGrpcEndpoint],
        mute: &[],
        tell: "the inner IOException names it: paste the whole message; `grpcdoc watch TARGET` shows the connection",
    },
    Generic {
        words: "context deadline exceeded + dial",
        fits: &[ConnectTimeout, ConnectionRefused, TlsMismatch, NotGrpcEndpoint, NameResolution],
        mute: &[Deadline],
        tell: "a blocking dial waited for READY until its deadline: the connection attempts' own errors (grpclog, or `grpcdoc watch TARGET`) say why none succeeded",
    },
    Generic {
        words: "unavailable",
        fits: &[ServerCrash, ConnectionRefused, IdleDrop, DrainCut, HttpErrorPage],
        mute: &[],
        tell: "UNAVAILABLE alone says only that the call could not be carried; the message after it, or `grpcdoc watch TARGET`, tells which",
    },
    Generic {
        words: "http2 connection could not be established",
        fits: &[H2cNotEnabled, NoAlpnH2, NotGrpcEndpoint, TlsMismatch],
        mute: &[],
        tell: "whether the endpoint speaks HTTP/2 at all, and over TLS or not: `grpcdoc watch TARGET` (and https://TARGET) shows what answers",
    },
    Generic {
        words: "tcp read failed",
        fits: &[IdleDrop, ServerCrash, MiddleboxGoaway],
        mute: &[],
        tell: LOST_TELL,
    },
    Generic {
        words: "os error",
        fits: &[IdleDrop, ServerCrash, ConnectionRefused],
        mute: &[],
        tell: LOST_TELL,
    },
    Generic {
        words: "call cancelled",
        fits: &[RstStream, ProxyTimeout, Deadline, ClientClosed],
        mute: &[],
        tell: "CANCELLED comes from a RST_STREAM(CANCEL) by the server or a proxy, or from the application's own cancel: `grpcdoc watch TARGET` and `grpcdoc load` show who reset the stream",
    },
    Generic {
        words: "deadline exceeded",
        fits: &[Deadline, StreamLimitQueue, HalfOpen, ConnectTimeout, IdleDrop, ProxyTimeout],
        mute: &[],
        tell: "DEADLINE_EXCEEDED says the call ran out of time, not why: the server was slow, the call waited for a stream slot or a connection, or the connection was dead (no answer at all). `grpcdoc call TARGET METHOD -v` times each step; `grpcdoc load` shows slot waits; `grpcdoc watch TARGET --keepalive-time 10s` finds a dead connection",
    },
    Generic {
        words: "bad gateway",
        fits: &[ProxyNoUpstream, HttpErrorPage, ProxyUpstreamReset, NotGrpcEndpoint],
        mute: &[],
        tell: PROXY_TELL,
    },
    Generic {
        words: "service unavailable",
        fits: &[ProxyNoUpstream, HealthNotServing, ProxyOverflow, HttpErrorPage],
        mute: &[],
        tell: PROXY_TELL,
    },
    Generic {
        words: "gateway timeout",
        fits: &[ProxyTimeout, HttpErrorPage, Deadline],
        mute: &[],
        tell: PROXY_TELL,
    },
    Generic {
        words: "not found",
        fits: &[NotGrpcEndpoint, ProxyNoRoute, Unimplemented, HealthNotServing],
        mute: &[],
        tell: "an HTTP 404 (or NOT_FOUND) from a web server, a proxy without a route, or the application; a gRPC server answers an unknown method UNIMPLEMENTED with its own message. `grpcdoc call TARGET list -v` shows who answered",
    },
    Generic {
        words: "eof",
        fits: LOST,
        mute: &[],
        tell: LOST_TELL,
    },
    Generic {
        words: "internal client error",
        fits: &[ServerCrash, IdleDrop, MiddleboxGoaway, TooManyPings, RstStream],
        mute: &[RstStream],
        tell: LOST_TELL,
    },
];
