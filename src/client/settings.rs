//! What a user sets about grpcdoc's client, with the one set of defaults:
//! the command line (`--lb`, `--keepalive-time`, ...), a scenario's
//! `client:` and the channel's own defaults all start from
//! [`ClientSettings::default()`], so a client behaves the same however it
//! was described.

use std::time::Duration;

use super::backoff::BackoffConfig;
use super::keepalive::KeepaliveConfig;
use super::tls::TlsOptions;
use super::{ChannelConfig, Lb, Reconnect};
use crate::target::Target;

/// A client's settings; the channel's and the calls'.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// The balancing policy with one connection per address; more
    /// connections are always spread round robin.
    pub lb: Lb,
    /// Connections (subchannels) per address.
    pub connections: usize,
    pub backoff: BackoffConfig,
    pub keepalive: KeepaliveConfig,
    pub reconnect: Reconnect,
    /// How often a name is resolved again when nothing else makes it (a
    /// lost or drained connection always does).
    pub resolve_interval: Duration,
    /// Client-side health checking (gRFC A17) of this service.
    pub health_service: Option<String>,
    pub tls: TlsOptions,
    /// The gRPC service config (JSON), as given to grpc-go's
    /// `WithDefaultServiceConfig`.
    pub service_config: Option<String>,
    /// Calls wait for a READY connection instead of failing fast.
    pub wait_for_ready: bool,
    /// Calls the server never processed are retried at once (gRFC A6).
    pub transparent_retry: bool,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            lb: Lb::PickFirst,
            connections: 1,
            backoff: BackoffConfig::default(),
            keepalive: KeepaliveConfig::default(),
            reconnect: Reconnect::OnDemand,
            // grpc-go's DNS resolver: 30 minutes, so a client sees new
            // backends only when a connection is lost or drained (the
            // scale-up failure), as the clients grpcdoc stands in for do.
            resolve_interval: Duration::from_secs(30 * 60),
            health_service: None,
            tls: TlsOptions::default(),
            service_config: None,
            wait_for_ready: false,
            transparent_retry: true,
        }
    }
}

impl ClientSettings {
    /// The channel for `target`; `frames` reports every frame, not only
    /// control frames.
    pub fn channel_config(&self, target: Target, frames: bool) -> ChannelConfig {
        ChannelConfig {
            target,
            lb: if self.connections > 1 {
                Lb::RoundRobin
            } else {
                self.lb
            },
            backoff: self.backoff.clone(),
            keepalive: self.keepalive,
            tls: self.tls.clone(),
            reconnect: self.reconnect,
            resolve_interval: self.resolve_interval,
            health_service: self.health_service.clone(),
            frames,
            connections_per_address: self.connections.max(1),
            pcap: None,
            metadata: http::HeaderMap::new(),
        }
    }
}
