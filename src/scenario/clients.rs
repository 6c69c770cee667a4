//! The clients of a run: each client's gRPC channel (its balancing,
//! keepalive, backoff, health checking and name resolution) and the load
//! and probes that call through it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::model::*;
use super::plan::NamedClient;
use super::recorded::RunError;
use crate::client::backoff::BackoffConfig;
use crate::client::keepalive::KeepaliveConfig;
use crate::client::{Channel, ChannelConfig, ClientSettings, Lb, Reconnect};
use crate::event::EventSink;
use crate::load::engine;
use crate::load::report::RateCheck;
use crate::load::stats::Recorder;
use crate::load::LoadRequest;
use crate::rpc::MethodPath;

pub fn channel_config(target: crate::target::Target, c: &ClientSpec) -> ChannelConfig {
    let s = settings(c);
    crate::load::plan::channel_config(&s, target.clone())
        .unwrap_or_else(|_| s.channel_config(target, false))
}

/// The client's settings: what it gives, the defaults for the rest.
fn settings(c: &ClientSpec) -> ClientSettings {
    let d = ClientSettings::default();
    let ka = c.keepalive.clone().unwrap_or_default();
    let b = c.backoff.clone().unwrap_or_default();
    ClientSettings {
        lb: match c.lb {
            LbSpec::PickFirst => Lb::PickFirst,
            _ => Lb::RoundRobin,
        },
        connections: c.connections.max(1) as usize,
        backoff: BackoffConfig {
            initial: b.initial.map_or(d.backoff.initial, |x| x.0),
            multiplier: b.multiplier.unwrap_or(d.backoff.multiplier),
            jitter: b.jitter.unwrap_or(d.backoff.jitter),
            max: b.max.map_or(d.backoff.max, |x| x.0),
            ..d.backoff
        },
        keepalive: KeepaliveConfig {
            time: ka.time.map(|t| t.0),
            timeout: ka.timeout.map_or(d.keepalive.timeout, |t| t.0),
            permit_without_stream: ka.permit_without_stream,
        },
        reconnect: Reconnect::OnDemand,
        resolve_interval: c.resolve_interval.map_or(d.resolve_interval, |t| t.0),
        health_service: c.health_service.clone(),
        service_config: c.service_config.as_ref().map(|j| j.to_string()),
        wait_for_ready: c.wait_for_ready,
        transparent_retry: c.transparent_retry,
        ..d
    }
}

/// What every client's load shares in a run.
pub struct LoadRun {
    /// The built-in server: its descriptors are known without reflection.
    pub builtin: bool,
    /// `http://host:port` of the target.
    pub origin: String,
    pub duration: Duration,
    pub stop: watch::Receiver<bool>,
}

/// Starts one client's load: descriptors (the built-in server's, or by
/// reflection), payload, retry policy, and the engine until the run stops.
pub async fn start_load(
    nc: &NamedClient,
    l: &LoadSpec,
    channel: &Channel,
    events: EventSink,
    run: &LoadRun,
) -> Result<tokio::task::JoinHandle<Option<String>>, RunError> {
    let fail = |reason: String| RunError::Client {
        client: nc.name.clone(),
        reason,
    };
    let path = MethodPath::parse(&l.call.value).map_err(&fail)?;
    let pool = if run.builtin {
        prost_reflect::DescriptorPool::decode(crate::pb::FILE_DESCRIPTOR_SET)
            .map_err(|e| fail(e.to_string()))?
    } else {
        crate::rpc::descriptors::load(
            &crate::rpc::descriptors::Source::Reflection,
            channel,
            Some(path.service()),
        )
        .await
        .map_err(|e| fail(e.to_string()))?
    };
    let method = crate::rpc::descriptors::find_method(&pool, &path.path()).map_err(&fail)?;
    let request = LoadRequest {
        data: l.data.as_ref().map(|d| ("data".into(), d.to_string())),
        metadata: l
            .metadata
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect(),
        concurrency: l.concurrency.max(1) as usize,
        duration: Some(run.duration),
        rps: l.rps,
        timeout: l.timeout.map(|d| d.0),
        // Every call picks by the client's policy, as the clients being
        // reproduced do.
        sticky: false,
        redial_unready: nc.spec.pool == Pool::StateChecked,
        ..LoadRequest::new(path)
    };
    let plan = crate::load::prepare(
        request,
        &settings(&nc.spec),
        &method,
        &run.origin,
        Some(events),
    )
    .map_err(|e| fail(e.to_string()))?;
    let (channel, stop) = (channel.clone(), run.stop.clone());
    let (name, rps, planned) = (nc.name.clone(), l.rps, run.duration);
    Ok(tokio::spawn(async move {
        let rec = Arc::new(Recorder::new(1));
        let info = engine::run(plan, channel, rec.clone(), stop).await;
        let target = rps?;
        let secs = info.elapsed.min(planned).as_secs_f64();
        let started = rec.started();
        let rate = RateCheck::judge(target, started, rec.late(), secs);
        (!rate.held).then(|| {
            format!(
                "{name}: the rate of {target:.1}/s was not held ({:.1}/s started, {} calls late); raise its concurrency",
                rate.achieved, rate.late_calls
            )
        })
    }))
}

/// A client program of the user's, running behind its own tap.
pub struct RunningProgram {
    pub name: String,
    pub program: super::process::Program,
    /// The proxy it dials: reads its calls, forwards to the scenario's path.
    pub tap: crate::proxy::RunningProxy,
    pub signal: i32,
    pub grace: Duration,
}

/// Starts client `nc`'s program with `{target}` pointing at a tap in
/// front of `front`; the tap's events (the program's calls and
/// connections) go to `events`.
pub async fn start_program(
    nc: &NamedClient,
    front: std::net::SocketAddr,
    dir: &str,
    events: EventSink,
) -> Result<RunningProgram, RunError> {
    let fail = |reason: String| RunError::Client {
        client: nc.name.clone(),
        reason,
    };
    let argv = nc.spec.command.clone().unwrap_or_default();
    let tap = crate::proxy::RunningProxy::start_with(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        front,
        Vec::new(),
        events,
        crate::proxy::ProxyOptions {
            calls: true,
            ok_calls: true,
            as_client: true,
            pcap: None,
        },
    )
    .await
    .map_err(|e| fail(format!("cannot start its tap: {e}")))?;
    let (target, port) = (tap.addr.to_string(), tap.addr.port().to_string());
    let fill = |a: &str| {
        a.replace("{target}", &target)
            .replace("{host}", "127.0.0.1")
            .replace("{port}", &port)
            .replace("{dir}", dir)
    };
    let args: Vec<String> = argv.iter().map(|a| fill(a)).collect();
    let env: Vec<(String, String)> = nc
        .spec
        .env
        .iter()
        .map(|(k, v)| (k.clone(), fill(v)))
        .collect();
    let first = args.first().cloned().unwrap_or_default();
    let path = super::plan::find_program(&first)
        .ok_or_else(|| fail(format!("`{first}` is not installed")))?;
    let program = super::process::Program::spawn(&path, &args[1..], &env)
        .map_err(|e| fail(format!("cannot start {}: {e}", args.join(" "))))?;
    Ok(RunningProgram {
        name: nc.name.clone(),
        program,
        tap,
        signal: nc
            .spec
            .stop_signal
            .as_deref()
            .and_then(super::process::signal_number)
            .unwrap_or(libc::SIGTERM),
        grace: nc.spec.stop_timeout.map_or(Duration::from_secs(5), |d| d.0),
    })
}
