//! Playing a checked scenario: start the server (built-in, a command, or an
//! address), the proxy, the clients and their load, all on one clock; play
//! the timeline; record every event tagged by who emitted it; stop
//! everything started, also on failure or interruption.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::load::{Checked, NamedClient};
use super::model::*;
use super::record::Recording;
use crate::client::backoff::BackoffConfig;
use crate::client::keepalive::KeepaliveConfig;
use crate::client::{Channel, ChannelConfig, Lb, Reconnect};
use crate::event::{Event, EventKind, EventSink};
use crate::load::call::{request_headers, CallTemplate};
use crate::load::engine::{self, LoadPlan};
use crate::load::stats::Recorder;
use crate::proxy::RunningProxy;
use crate::server::{RunningServer, Server, ServerConfig, Stop};
use crate::target::Address;

/// An event and who emitted it: `server`, `proxy`, `timeline` or a client.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Tagged {
    pub who: String,
    /// For a probe's calls: the client it calls through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    #[serde(flatten)]
    pub event: Event,
}

impl Tagged {
    /// Emitted by a client or a probe (not a server, a proxy or the timeline;
    /// with several backends those are `server2`, `proxy2`, ...).
    pub fn is_client(&self) -> bool {
        !["server", "proxy", "timeline"]
            .iter()
            .any(|p| self.who.starts_with(p))
    }
}

/// What a run recorded.
pub struct Recorded {
    pub events: Vec<Tagged>,
    /// Mark name -> t_ms.
    pub marks: BTreeMap<String, f64>,
    pub duration_ms: f64,
    pub interrupted: bool,
    /// Events producers could not hand over, by who (none in a sound run).
    pub dropped: Vec<(String, u64)>,
    /// Producers still running when the recording ended.
    pub unfinished: Vec<String>,
    /// What the run could not do as asked (a rate not held).
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot start the built-in server: {0}")]
    Server(String),
    #[error("the server command {command:?} did not start: {reason}")]
    Command { command: String, reason: String },
    #[error("cannot start the proxy: {0}")]
    Proxy(String),
    #[error("client `{client}`: {reason}")]
    Client { client: String, reason: String },
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn wait_listening(addr: SocketAddr, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

/// The server under test and how to stop and start it.
enum ServerCtl {
    Builtin {
        cfg: ServerConfig,
        addr: SocketAddr,
        running: Option<RunningServer>,
        events: EventSink,
    },
    Command {
        argv: Vec<String>,
        addr: SocketAddr,
        child: Option<tokio::process::Child>,
        stop_signal: String,
        ready: Duration,
    },
    Address(SocketAddr),
}

fn builtin_config(b: &BuiltinServer) -> ServerConfig {
    let d = ServerConfig::default();
    ServerConfig {
        max_connection_idle: b.max_connection_idle.map(|x| x.0),
        idle_drain: b.idle_drain,
        max_connection_age: b.max_connection_age.map(|x| x.0),
        max_connection_age_grace: b.max_connection_age_grace.map(|x| x.0),
        keepalive_time: b.keepalive_time.map_or(d.keepalive_time, |x| x.0),
        keepalive_timeout: b.keepalive_timeout.map_or(d.keepalive_timeout, |x| x.0),
        keepalive_min_time: b.keepalive_min_time.map_or(d.keepalive_min_time, |x| x.0),
        keepalive_permit_without_stream: b.keepalive_permit_without_stream,
        max_concurrent_streams: b.max_concurrent_streams,
        delay: b.delay.map_or(d.delay, |x| x.0),
        tls: None,
    }
}

impl ServerCtl {
    fn addr(&self) -> SocketAddr {
        match self {
            ServerCtl::Builtin { addr, .. }
            | ServerCtl::Command { addr, .. }
            | ServerCtl::Address(addr) => *addr,
        }
    }

    async fn start(&mut self) -> Result<(), RunError> {
        match self {
            ServerCtl::Builtin {
                cfg,
                addr,
                running,
                events,
            } => {
                // The same address each time: a restart, as clients see one.
                let mut tries = 0;
                let listener = loop {
                    match tokio::net::TcpListener::bind(*addr).await {
                        Ok(l) => break l,
                        Err(e) if tries < 40 => {
                            let _ = e;
                            tries += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(e) => {
                            return Err(RunError::Server(format!("cannot listen on {addr}: {e}")))
                        }
                    }
                };
                *addr = listener
                    .local_addr()
                    .map_err(|e| RunError::Server(e.to_string()))?;
                let s = Server::start_on(listener, cfg.clone(), events.clone())
                    .await
                    .map_err(|e| RunError::Server(e.to_string()))?;
                *running = Some(s);
                Ok(())
            }
            ServerCtl::Command {
                argv,
                addr,
                child,
                ready,
                ..
            } => {
                let port = addr.port().to_string();
                let args: Vec<String> = argv.iter().map(|a| a.replace("{port}", &port)).collect();
                let spawned = tokio::process::Command::new(&args[0])
                    .args(&args[1..])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .kill_on_drop(true)
                    .spawn()
                    .map_err(|e| RunError::Command {
                        command: args.join(" "),
                        reason: e.to_string(),
                    })?;
                *child = Some(spawned);
                if !wait_listening(*addr, *ready).await {
                    return Err(RunError::Command {
                        command: args.join(" "),
                        reason: format!(
                            "nothing listened on {addr} within {}",
                            humantime::format_duration(*ready)
                        ),
                    });
                }
                Ok(())
            }
            ServerCtl::Address(_) => Ok(()),
        }
    }

    async fn stop(&mut self, mode: StopMode) {
        match self {
            ServerCtl::Builtin { running, .. } => {
                if let Some(mut s) = running.take() {
                    s.stop(match mode {
                        StopMode::Hard => Stop::Now,
                        StopMode::Graceful => Stop::Graceful,
                    });
                    if tokio::time::timeout(Duration::from_secs(5), s.wait())
                        .await
                        .is_err()
                    {
                        s.stop(Stop::Now);
                        let _ = tokio::time::timeout(Duration::from_secs(2), s.wait()).await;
                    }
                }
            }
            ServerCtl::Command {
                child, stop_signal, ..
            } => {
                if let Some(mut c) = child.take() {
                    let sig = match mode {
                        StopMode::Hard => "KILL",
                        StopMode::Graceful => stop_signal.as_str(),
                    };
                    if let Some(pid) = c.id() {
                        let _ = tokio::process::Command::new("kill")
                            .args([format!("-{sig}"), pid.to_string()])
                            .status()
                            .await;
                    }
                    if tokio::time::timeout(Duration::from_secs(5), c.wait())
                        .await
                        .is_err()
                    {
                        let _ = c.kill().await;
                    }
                }
            }
            ServerCtl::Address(_) => {}
        }
    }

    /// Changes the built-in server's settings (for connections accepted
    /// from now on; a restart keeps them).
    fn set(&mut self, change: &ServerSet) {
        if let ServerCtl::Builtin { cfg, running, .. } = self {
            change.apply(cfg);
            if let Some(s) = running {
                s.update(cfg.clone());
            }
        }
    }

    async fn health(&self, service: Option<&str>, status: HealthStatus) {
        if let ServerCtl::Builtin {
            running: Some(s), ..
        } = self
        {
            let st = match status {
                HealthStatus::Serving => tonic_health::ServingStatus::Serving,
                HealthStatus::NotServing => tonic_health::ServingStatus::NotServing,
            };
            match service {
                Some(svc) if !svc.is_empty() => s.health.set_service_status(svc, st).await,
                _ => {
                    s.health.set_service_status("", st).await;
                    for svc in crate::server::SERVICES {
                        s.health.set_service_status(svc, st).await;
                    }
                }
            }
        }
    }
}

/// One server and the proxy in front of it.
struct Backend {
    ctl: ServerCtl,
    proxy: Option<RunningProxy>,
    /// Removed by a `backend_remove` step: stopped, and left out of the
    /// addresses the next `resolve` gives.
    removed: bool,
}

impl Backend {
    /// The address clients dial.
    fn front(&self) -> SocketAddr {
        self.proxy.as_ref().map_or(self.ctl.addr(), |p| p.addr)
    }
}

/// The backends a step acts on: the one it names, or all not removed.
fn chosen(backends: &[Backend], backend: Option<u32>) -> Vec<usize> {
    match backend {
        Some(b) => vec![b as usize - 1],
        None => (0..backends.len())
            .filter(|i| !backends[*i].removed)
            .collect(),
    }
}

/// `backend 2: ` for a step that names one.
fn which(backend: Option<u32>) -> String {
    backend.map_or(String::new(), |b| format!("backend {b}: "))
}

/// Starts server `i` (0-based) as the scenario describes it, and its proxy.
async fn start_backend(
    checked: &Checked,
    i: usize,
    tag: &dyn Fn(&str, usize) -> String,
    builtin: &ServerConfig,
    rec: &mut Recording,
) -> Result<Backend, RunError> {
    let s = &checked.scenario;
    let mut ctl = if let Some(argv) = &s.server.command {
        let port = free_port().map_err(|e| RunError::Command {
            command: argv.join(" "),
            reason: e.to_string(),
        })?;
        ServerCtl::Command {
            argv: argv.clone(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child: None,
            stop_signal: s
                .server
                .stop_signal
                .clone()
                .unwrap_or_else(|| "TERM".into()),
            ready: s
                .server
                .ready_timeout
                .map_or(Duration::from_secs(10), |d| d.0),
        }
    } else if let Some(a) = &s.server.address {
        let addr = tokio::net::lookup_host(a.as_str())
            .await
            .ok()
            .and_then(|mut x| x.next())
            .ok_or_else(|| RunError::Server(format!("cannot resolve server.address {a}")))?;
        ServerCtl::Address(addr)
    } else {
        ServerCtl::Builtin {
            cfg: builtin.clone(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            running: None,
            events: rec.sink(&tag("server", i), None),
        }
    };
    ctl.start().await?;
    let proxy = match &s.proxy {
        Some(_) => Some(
            RunningProxy::start(
                SocketAddr::from(([127, 0, 0, 1], 0)),
                ctl.addr(),
                checked.initial_faults.clone(),
                rec.sink(&tag("proxy", i), None),
            )
            .await
            .map_err(|e| RunError::Proxy(e.to_string()))?,
        ),
        None => None,
    };
    Ok(Backend {
        ctl,
        proxy,
        removed: false,
    })
}

fn channel_config(target: crate::target::Target, c: &ClientSpec) -> ChannelConfig {
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
        health_service: c.health_service.clone().or_else(|| {
            let sc = c.service_config.as_ref()?.to_string();
            crate::load::retry::health_check_service(&sc).ok().flatten()
        }),
        connections_per_address: c.connections.max(1) as usize,
        ..ChannelConfig::new(target)
    }
}

/// Starts one client's load: descriptors (the built-in server's, or by
/// reflection), payload, retry policy, and the engine until `end`.
/// What every client's load shares in a run.
struct LoadRun {
    /// The built-in server: its descriptors are known without reflection.
    builtin: bool,
    /// `http://host:port` of the target.
    origin: String,
    duration: Duration,
    stop: watch::Receiver<bool>,
}

async fn start_load(
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

/// Plays the scenario. `live` gets every event as it happens (for output).
pub async fn play(
    checked: &Checked,
    live: mpsc::Sender<Tagged>,
    mut interrupt: watch::Receiver<bool>,
) -> Result<Recorded, RunError> {
    let s = &checked.scenario;
    let start = Instant::now();
    let mut rec = Recording::start(start, Some(live));
    let timeline = rec.sink("timeline", None);
    let step = |action: &str, detail: String| {
        timeline.emit(
            None,
            None,
            EventKind::Step {
                action: action.into(),
                detail,
            },
        );
    };

    // The servers, each behind its own proxy when there is one.
    let builtin = s.server.command.is_none() && s.server.address.is_none();
    let multi =
        checked.backends > 1 || checked.steps.iter().any(|(st, _)| st.backend_add.is_some());
    let tag = |what: &str, i: usize| {
        if multi {
            format!("{what}{}", i + 1)
        } else {
            what.to_string()
        }
    };
    let mut backends: Vec<Backend> = Vec::new();
    // The built-in server's settings for backends started from now on.
    let mut template = builtin_config(&s.server.builtin.clone().unwrap_or_default());
    let result = async {
        for i in 0..checked.backends as usize {
            let b = start_backend(checked, i, &tag, &template, &mut rec).await;
            backends.push(b?);
            step(
                "server_start",
                format!("listening on {}", backends[i].ctl.addr()),
            );
        }
        let front = |backends: &[Backend]| -> Vec<SocketAddr> {
            backends
                .iter()
                .filter(|b| !b.removed)
                .map(Backend::front)
                .collect()
        };
        let target_addrs = front(&backends);
        let target_text = target_addrs
            .iter()
            .map(SocketAddr::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let target = crate::target::Target::parse(&target_text)
            .map_err(|e| RunError::Proxy(e.to_string()))?;
        // The clients.
        let duration = s.duration.value.0;
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut channels = Vec::new();
        let mut loads = Vec::new();
        let load_run = LoadRun {
            builtin,
            origin: format!("http://{}", target_addrs[0]),
            duration: duration.saturating_sub(start.elapsed()),
            stop: stop_rx.clone(),
        };
        for nc in &checked.clients {
            let sink = rec.sink(&nc.name, None);
            let ch = Channel::new(channel_config(target.clone(), &nc.spec), sink.clone()).map_err(
                |e| RunError::Client {
                    client: nc.name.clone(),
                    reason: e.to_string(),
                },
            )?;
            ch.connect();
            // Calls start once the client's connections are up (bounded),
            // so a scenario does not measure its own start-up.
            let mut st = ch.subscribe_state();
            let _ = tokio::time::timeout(Duration::from_secs(3), async {
                let _ = st
                    .wait_for(|s| *s == crate::connectivity::State::Ready)
                    .await;
                while ch.subchannels().iter().any(|s| {
                    s.2 == crate::connectivity::State::Connecting
                        || s.2 == crate::connectivity::State::Idle
                }) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await;
            if let Some(l) = &nc.spec.load {
                loads.push(start_load(nc, l, &ch, sink, &load_run).await?);
            }
            channels.push(ch);
        }
        for p in &checked.probes {
            let nc = &checked.clients[p.client];
            let sink = rec.sink(&p.name, Some(&nc.name));
            loads.push(start_load(nc, &p.load, &channels[p.client], sink, &load_run).await?);
        }
        // The timeline.
        let mut marks = BTreeMap::new();
        let mut fault_ids: BTreeMap<String, Vec<(usize, u64)>> = BTreeMap::new();
        let mut interrupted = false;
        for (st, fault) in &checked.steps {
            let due = tokio::time::Instant::from_std(start + st.at.0);
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = interrupt.wait_for(|i| *i) => { interrupted = true; break; }
            }
            let chosen = chosen(&backends, st.backend());
            if let Some(r) = &st.server_restart {
                step(
                    "server_restart",
                    format!(
                        "{}{:?}, down for {}",
                        which(st.backend()),
                        r.mode,
                        humantime::format_duration(r.downtime.0)
                    )
                    .to_lowercase(),
                );
                for &i in &chosen {
                    backends[i].ctl.stop(r.mode).await;
                }
                tokio::time::sleep(r.downtime.0).await;
                for &i in &chosen {
                    backends[i].ctl.start().await?;
                    step(
                        "server_start",
                        format!("listening on {} again", backends[i].ctl.addr()),
                    );
                }
            } else if let Some(stop) = &st.server_stop {
                step(
                    "server_stop",
                    format!("{}{:?}", which(st.backend()), stop.mode).to_lowercase(),
                );
                for &i in &chosen {
                    backends[i].ctl.stop(stop.mode).await;
                }
            } else if st.server_start.is_some() {
                for &i in &chosen {
                    backends[i].ctl.start().await?;
                    step(
                        "server_start",
                        format!("listening on {}", backends[i].ctl.addr()),
                    );
                }
            } else if let Some(set) = &st.server_set {
                for &i in &chosen {
                    backends[i].ctl.set(set);
                }
                if st.backend().is_none() {
                    set.apply(&mut template);
                }
                step(
                    "server_set",
                    format!("{}{}", which(st.backend()), set.describe()),
                );
            } else if let Some(h) = &st.health {
                for &i in &chosen {
                    backends[i].ctl.health(h.service.as_deref(), h.status).await;
                }
                step(
                    "health",
                    format!(
                        "{}{} {}",
                        which(st.backend()),
                        h.service.as_deref().unwrap_or("(all services)"),
                        match h.status {
                            HealthStatus::Serving => "SERVING",
                            HealthStatus::NotServing => "NOT_SERVING",
                        }
                    ),
                );
            } else if let (Some(fa), Some(spec)) = (&st.fault_add, fault) {
                let mut ids = Vec::new();
                for (i, b) in backends.iter().enumerate() {
                    if let Some(p) = &b.proxy {
                        ids.push((i, p.add(spec.clone())));
                    }
                }
                if let Some(name) = &fa.id {
                    fault_ids.insert(name.clone(), ids);
                }
                step("fault_add", spec.text.clone());
            } else if let Some(fr) = &st.fault_remove {
                for (i, id) in fault_ids.remove(&fr.id).unwrap_or_default() {
                    if let Some(p) = &backends[i].proxy {
                        p.remove(id);
                    }
                }
                step("fault_remove", fr.id.clone());
            } else if st.backend_add.is_some() {
                let i = backends.len();
                let b = start_backend(checked, i, &tag, &template, &mut rec).await?;
                step(
                    "backend_add",
                    format!("backend {} listening on {}", i + 1, b.ctl.addr()),
                );
                backends.push(b);
            } else if let Some(r) = &st.backend_remove {
                step(
                    "backend_remove",
                    format!("backend {} ({:?})", r.backend, r.mode).to_lowercase(),
                );
                for &i in &chosen {
                    let b = &mut backends[i];
                    b.ctl.stop(r.mode).await;
                    if let Some(p) = b.proxy.take() {
                        p.shutdown().await;
                    }
                    b.removed = true;
                }
            } else if st.resolve.is_some() {
                let addrs = front(&backends);
                step(
                    "resolve",
                    addrs
                        .iter()
                        .map(SocketAddr::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                );
                for ch in &channels {
                    ch.set_addresses(addrs.iter().map(|a| Address::Tcp(*a)).collect());
                }
            } else if let Some(m) = &st.mark {
                marks.insert(m.clone(), start.elapsed().as_secs_f64() * 1e3);
                step("mark", m.clone());
            }
        }
        if !interrupted {
            let end = tokio::time::Instant::from_std(start + duration);
            tokio::select! {
                _ = tokio::time::sleep_until(end) => {}
                _ = interrupt.wait_for(|i| *i) => interrupted = true,
            }
        }
        let duration_ms = start.elapsed().as_secs_f64() * 1e3;
        let _ = stop_tx.send(true);
        let mut warnings = Vec::new();
        for l in loads {
            if let Ok(Ok(Some(w))) = tokio::time::timeout(Duration::from_secs(5), l).await {
                warnings.push(w);
            }
        }
        for ch in &channels {
            ch.shutdown().await;
        }
        Ok::<_, RunError>((marks, duration_ms, interrupted, warnings))
    }
    .await;
    // Everything started is stopped, also on failure.
    for b in &mut backends {
        b.ctl.stop(StopMode::Hard).await;
        if let Some(p) = b.proxy.take() {
            p.shutdown().await;
        }
    }
    drop(timeline);
    drop(backends);
    // Every producer's last event is in before the verdict.
    let got = rec.finish().await;
    let (marks, duration_ms, interrupted, warnings) = result?;
    Ok(Recorded {
        events: got.events,
        marks,
        duration_ms,
        interrupted,
        dropped: got.dropped,
        unfinished: got.unfinished,
        warnings,
    })
}
