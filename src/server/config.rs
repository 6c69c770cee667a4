//! The built-in server's settings, with grpc-go's defaults.

use std::sync::Arc;
use std::time::Duration;

/// Connection management and behaviour of the built-in server. `None` means
/// "off" (grpc-go's infinity).
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// GOAWAY `max_idle` after this long without an active stream (gRFC A9).
    pub max_connection_idle: Option<Duration>,
    /// How an idle connection is ended.
    pub idle_drain: IdleDrain,
    /// GOAWAY `max_age` after this long (with +-10% jitter, gRFC A9).
    pub max_connection_age: Option<Duration>,
    /// After the `max_age` drain began, close hard after this long.
    pub max_connection_age_grace: Option<Duration>,
    /// Ping the client after this long without reading anything from it.
    pub keepalive_time: Duration,
    /// Close the connection when nothing was read this long after a ping.
    pub keepalive_timeout: Duration,
    /// Enforcement: the shortest client ping interval allowed (gRFC A8).
    pub keepalive_min_time: Duration,
    /// Enforcement: allow client pings while no stream is active.
    pub keepalive_permit_without_stream: bool,
    /// SETTINGS_MAX_CONCURRENT_STREAMS; `None` sends no limit.
    pub max_concurrent_streams: Option<u32>,
    /// Default handler delay for Echo and Greeter calls.
    pub delay: Duration,
    /// TLS, when set; ALPN `h2`.
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
}

/// How MAX_CONNECTION_IDLE ends a connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdleDrain {
    /// grpc-go: GOAWAY 2^31-1 and a PING, then, once the PING is acked,
    /// GOAWAY with the last processed stream; a call that crossed the first
    /// GOAWAY on the wire is still served.
    #[default]
    Graceful,
    /// Like grpcio (C-core): one GOAWAY and a close, no drain PING. grpcdoc
    /// names the last stream opened (C-core 1.85 sends last stream 0,
    /// INTERNAL_ERROR, "connection idle"); a call that crossed it on the
    /// wire is never processed and fails unless the client retries it.
    Immediate,
}

/// grpc-go's server keepalive time default (`keepalive.ServerParameters.Time`).
pub const DEFAULT_KEEPALIVE_TIME: Duration = Duration::from_secs(2 * 60 * 60);
/// grpc-go's server keepalive timeout default.
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// grpc-go's `EnforcementPolicy.MinTime` default.
pub const DEFAULT_KEEPALIVE_MIN_TIME: Duration = Duration::from_secs(5 * 60);

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_connection_idle: None,
            idle_drain: IdleDrain::Graceful,
            max_connection_age: None,
            max_connection_age_grace: None,
            keepalive_time: DEFAULT_KEEPALIVE_TIME,
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
            keepalive_min_time: DEFAULT_KEEPALIVE_MIN_TIME,
            keepalive_permit_without_stream: false,
            max_concurrent_streams: None,
            delay: Duration::ZERO,
            tls: None,
        }
    }
}
