//! The clients of a run: each client's gRPC channel (its balancing,
//! keepalive, backoff, health checking and name resolution) and the load
//! and probes that call through it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::model::*;
use super::plan::NamedClient;
use super::run::RunError;
use crate::client::backoff::BackoffConfig;
use crate::client::keepalive::KeepaliveConfig;
use crate::client::{Channel, ChannelConfig, Lb, Reconnect};
use crate::event::EventSink;
use crate::load::call::{request_headers, CallTemplate};
use crate::load::engine::{self, LoadPlan};
use crate::load::stats::Recorder;

pub fn channel_config(target: crate::target::Target, c: &ClientSpec) -> ChannelConfig {
    let ka = c.keepalive.clone().unwrap_or_default();
    ChannelConfig {
        lb: match c.lb {
            LbSpec::PickFirst if c.connections <= 1 => Lb::PickFirst,
            _ => Lb::RoundRobin,
        },
        backoff: {
            let d = BackoffConfig::default();
            let b = c.backoff.clone().unwrap_or_default();
            BackoffConfig {
                initial: b.initial.map_or(d.initial, |x| x.0),
                multiplier: b.multiplier.unwrap_or(d.multiplier),
                jitter: b.jitter.unwrap_or(d.jitter),
                max: b.max.map_or(d.max, |x| x.0),
                ..d
            }
        },
        keepalive: KeepaliveConfig {
            time: ka.time.map(|d| d.0),
            timeout: ka.timeout.map_or(Duration::from_secs(20), |d| d.0),
            permit_without_stream: ka.permit_without_stream,
        },
        reconnect: Reconnect::OnDemand,
        resolve_interval: c
            .resolve_interval
            .map_or(Duration::from_secs(30 * 60), |d| d.0),
        health_service: c.health_service.clone().or_else(|| {
            let sc = c.service_config.as_ref()?.to_string();
            crate::load::retry::health_check_service(&sc).ok().flatten()
        }),
        connections_per_address: c.connections.max(1) as usize,
        pcap: None,
        ..ChannelConfig::new(target)
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
    let path = crate::rpc::method_path(&l.call.value).map_err(&fail)?;
    let pool = if run.builtin {
        prost_reflect::DescriptorPool::decode(crate::pb::FILE_DESCRIPTOR_SET)
            .map_err(|e| fail(e.to_string()))?
    } else {
        let svc = path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        crate::rpc::descriptors::load(
            &crate::rpc::descriptors::Source::Reflection,
            channel,
            Some(&svc),
        )
        .await
        .map_err(|e| fail(e.to_string()))?
    };
    let method = crate::rpc::descriptors::find_method(&pool, &path).map_err(&fail)?;
    let json = l.data.as_ref().map(|d| d.to_string()).unwrap_or_default();
    let messages = crate::rpc::payload::encode(&method.input(), "data", &json)
        .map_err(|e| fail(e.to_string()))?;
    let (service, mname) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or_default();
    let policy = match &nc.spec.service_config {
        Some(j) => crate::load::retry::method_policy(&j.to_string(), service, mname)
            .map_err(|e| fail(e.to_string()))?,
        None => Default::default(),
    };
    let timeout = l.timeout.map(|d| d.0).or(policy.timeout);
    let metadata: Vec<(String, String)> = l
        .metadata
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    let uri: http::Uri = format!("{}{path}", run.origin)
        .parse()
        .map_err(|_| fail(format!("bad URI for {path}")))?;
    let plan = LoadPlan {
        template: CallTemplate {
            head: Arc::new(crate::load::call::request_head(
                &uri,
                &request_headers(&metadata, timeout),
            )),
            uri,
            headers: request_headers(&metadata, timeout),
            messages: Arc::new(messages),
            client_streaming: method.is_client_streaming(),
            stream_messages: 1,
            stream_interval: Duration::ZERO,
        },
        concurrency: l.concurrency.max(1) as usize,
        total: None,
        duration: Some(run.duration),
        rps: l.rps,
        timeout,
        retry: policy.retry,
        transparent_retry: nc.spec.transparent_retry,
        wait_for_ready: nc.spec.wait_for_ready || policy.wait_for_ready == Some(true),
        method: path.trim_start_matches('/').to_string(),
        events: Some(events),
        // Every call picks by the client's policy, as the clients being
        // reproduced do.
        sticky: false,
        redial_unready: nc.spec.pool == Pool::StateChecked,
    };
    let (channel, stop) = (channel.clone(), run.stop.clone());
    let (name, rps, planned) = (nc.name.clone(), l.rps, run.duration);
    Ok(tokio::spawn(async move {
        let rec = Arc::new(Recorder::new(4));
        let info = engine::run(plan, channel, rec.clone(), stop).await;
        // As grpcdoc load's report: the rate is held when at least 95% of
        // the due calls started and at most 1% of them late.
        let target = rps?;
        let secs = info.elapsed.min(planned).as_secs_f64().max(1e-9);
        let started = rec.started.load(std::sync::atomic::Ordering::Relaxed);
        let late = rec.late.load(std::sync::atomic::Ordering::Relaxed);
        let achieved = started as f64 / secs;
        (achieved < target * 0.95 || late as f64 > started as f64 * 0.01).then(|| {
            format!(
                "{name}: the rate of {target:.1}/s was not held ({achieved:.1}/s started, {late} calls late); raise its concurrency"
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
