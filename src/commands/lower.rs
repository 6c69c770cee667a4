//! Lowers the flags several commands share into the configs of the layers
//! below (`commands` is the only place that sees clap types).

use crate::cli::{ConnArgs, LbPolicy, ReconnectMode, TlsArgs};
use crate::client::backoff::BackoffConfig;
use crate::client::keepalive::KeepaliveConfig;
use crate::client::tls::TlsOptions;
use crate::client::{ChannelConfig, ClientSettings, Lb, Reconnect};
use crate::target::Target;

/// The connection flags as a channel config; `frames` logs every frame.
pub fn channel_config(target: Target, c: &ConnArgs, frames: bool) -> ChannelConfig {
    client_settings(c).channel_config(target, frames)
}

/// The connection flags as the client's settings (the calls' settings,
/// which only `load` has flags for, keep their defaults).
pub fn client_settings(c: &ConnArgs) -> ClientSettings {
    ClientSettings {
        lb: match c.lb {
            LbPolicy::PickFirst => Lb::PickFirst,
            LbPolicy::RoundRobin => Lb::RoundRobin,
        },
        backoff: BackoffConfig {
            initial: c.backoff_initial,
            multiplier: c.backoff_multiplier,
            jitter: c.backoff_jitter,
            max: c.backoff_max,
            min_connect_timeout: c.connect_timeout,
        },
        keepalive: KeepaliveConfig {
            time: c.keepalive_time,
            timeout: c.keepalive_timeout,
            permit_without_stream: c.keepalive_permit_without_stream,
        },
        tls: tls_options(&c.tls),
        reconnect: match c.reconnect {
            ReconnectMode::OnDemand => Reconnect::OnDemand,
            ReconnectMode::Eager => Reconnect::Eager,
        },
        resolve_interval: c.resolve_interval,
        health_service: c.health_service.clone(),
        ..ClientSettings::default()
    }
}

/// The TLS flags as client TLS options.
pub fn tls_options(t: &TlsArgs) -> TlsOptions {
    TlsOptions {
        cacert: t.cacert.clone(),
        cert: t.cert.clone(),
        key: t.key.clone(),
        server_name: t.server_name.clone(),
        insecure: t.insecure,
    }
}

/// `-H` metadata (and a deadline's grpc-timeout) as the headers grpcdoc's
/// own calls add to tonic's requests (tonic sets content-type and te).
pub fn metadata(
    pairs: &[(String, String)],
    timeout: Option<std::time::Duration>,
) -> http::HeaderMap {
    let mut h = crate::load::call::request_headers(pairs, timeout);
    h.remove("content-type");
    h.remove("te");
    h
}

/// `--plaintext` with an https:// target is a contradiction.
pub fn check_plaintext(t: &TlsArgs, target: &Target) -> anyhow::Result<()> {
    if t.plaintext && target.tls {
        anyhow::bail!(
            "--plaintext contradicts the https:// target `{}`: drop one (HOST:PORT is plaintext already)",
            target.text
        );
    }
    Ok(())
}

/// Client settings that a grpc-go client would not use as given: said on
/// stderr, the command still runs.
pub fn client_warnings(c: &ConnArgs) {
    if let Some(t) = c
        .keepalive_time
        .filter(|t| *t < std::time::Duration::from_secs(10))
    {
        eprintln!(
            "grpcdoc: warning: --keepalive-time {} is below 10s: grpc-go clients raise it to 10s (C-core does not); grpcdoc uses it as given",
            humantime::format_duration(t)
        );
    }
}
