//! The servers of a run: the built-in server, a command or an address,
//! each with the chaos proxy and the middlebox (nginx, HAProxy, a program)
//! in front of it, started, stopped and restarted on the timeline's word.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use super::model::*;
use super::plan::{Middlebox, MiddleboxKind, Plan};
use super::process::Program;
use super::record::Recording;
use super::recorded::RunError;
use crate::event::EventSink;
use crate::proxy::RunningProxy;
use crate::server::{RunningServer, Server, ServerConfig, Stop};

pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub async fn wait_listening(addr: SocketAddr, within: Duration) -> bool {
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
pub enum ServerCtl {
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

pub fn builtin_config(b: &BuiltinServer) -> ServerConfig {
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
    pub fn addr(&self) -> SocketAddr {
        match self {
            ServerCtl::Builtin { addr, .. }
            | ServerCtl::Command { addr, .. }
            | ServerCtl::Address(addr) => *addr,
        }
    }

    pub async fn start(&mut self) -> Result<(), RunError> {
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

    pub async fn stop(&mut self, mode: StopMode) {
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
    pub fn set(&mut self, change: &ServerSet) {
        if let ServerCtl::Builtin { cfg, running, .. } = self {
            change.apply(cfg);
            if let Some(s) = running {
                s.update(cfg.clone());
            }
        }
    }

    pub async fn health(&self, service: Option<&str>, status: HealthStatus) {
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

/// One server, the chaos proxy in front of it and the middlebox.
pub struct Backend {
    pub ctl: ServerCtl,
    pub proxy: Option<RunningProxy>,
    pub middlebox: Option<MiddleboxProc>,
    pub position: MiddleboxPosition,
    /// Removed by a `backend_remove` step: stopped, and out of the name
    /// service.
    pub removed: bool,
}

impl Backend {
    /// The address clients dial.
    pub fn front(&self) -> SocketAddr {
        let (proxy, mb) = (
            self.proxy.as_ref().map(|p| p.addr),
            self.middlebox.as_ref().map(|m| m.addr),
        );
        match self.position {
            MiddleboxPosition::BeforeProxy => mb.or(proxy),
            MiddleboxPosition::AfterProxy => proxy.or(mb),
        }
        .unwrap_or(self.ctl.addr())
    }

    /// Stops the server, the proxy and the middlebox.
    pub async fn shutdown(&mut self, mode: StopMode) {
        self.ctl.stop(mode).await;
        if let Some(p) = self.proxy.take() {
            p.shutdown().await;
        }
        if let Some(mut m) = self.middlebox.take() {
            m.stop().await;
        }
    }
}

/// The backends a step acts on: the one it names, or all not removed.
pub fn chosen(backends: &[Backend], backend: Option<u32>) -> Vec<usize> {
    match backend {
        Some(b) => vec![b as usize - 1],
        None => (0..backends.len())
            .filter(|i| !backends[*i].removed)
            .collect(),
    }
}

/// `backend 2: ` for a step that names one.
pub fn which(backend: Option<u32>) -> String {
    backend.map_or(String::new(), |b| format!("backend {b}: "))
}

/// Starts a server as the plan describes it, and the proxy and middlebox in
/// front of it; their events are tagged `server{n}`, `proxy{n}`.
pub async fn start_backend(
    plan: &Plan,
    n: &str,
    builtin: &ServerConfig,
    rec: &mut Recording,
) -> Result<Backend, RunError> {
    let s = &plan.scenario;
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
            events: rec.sink(&format!("server{n}"), None),
        }
    };
    ctl.start().await?;
    let mut b = Backend {
        ctl,
        proxy: None,
        middlebox: None,
        position: plan
            .middlebox
            .as_ref()
            .map_or(MiddleboxPosition::BeforeProxy, |m| m.position),
        removed: false,
    };
    let after_proxy = b.position == MiddleboxPosition::AfterProxy;
    // Built from the server outwards.
    if let (Some(m), true) = (&plan.middlebox, after_proxy) {
        b.middlebox = Some(MiddleboxProc::start(m, b.ctl.addr()).await?);
    }
    if s.proxy.is_some() {
        let upstream = b.middlebox.as_ref().map_or(b.ctl.addr(), |m| m.addr);
        b.proxy = Some(
            RunningProxy::start(
                SocketAddr::from(([127, 0, 0, 1], 0)),
                upstream,
                plan.initial_faults.clone(),
                rec.sink(&format!("proxy{n}"), None),
            )
            .await
            .map_err(|e| RunError::Proxy(e.to_string()))?,
        );
    }
    if let (Some(m), false) = (&plan.middlebox, after_proxy) {
        let upstream = b.proxy.as_ref().map_or(b.ctl.addr(), |p| p.addr);
        b.middlebox = Some(MiddleboxProc::start(m, upstream).await?);
    }
    Ok(b)
}

/// A middlebox program running in its own process group.
pub struct MiddleboxProc {
    pub addr: SocketAddr,
    pub upstream: SocketAddr,
    program: Program,
    /// Its configuration.
    dir: PathBuf,
}

fn nginx_conf(
    dir: &std::path::Path,
    listen: SocketAddr,
    upstream: SocketAddr,
    directives: &[String],
) -> String {
    let (mut srv, mut loc) = (String::new(), String::new());
    for d in directives {
        let d = d.trim();
        let d = if d.ends_with(';') {
            d.to_string()
        } else {
            format!("{d};")
        };
        let server_level = ["http2_", "keepalive_", "client_", "large_client_"]
            .iter()
            .any(|p| d.starts_with(p));
        let into = if server_level { &mut srv } else { &mut loc };
        into.push_str(&format!("      {d}\n"));
    }
    let d = dir.display();
    format!(
        "daemon off;\nmaster_process on;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
events {{ worker_connections 4096; }}\n\
http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
  server {{\n    listen {listen} http2;\n{srv}    location / {{\n      grpc_pass grpc://{upstream};\n{loc}    }}\n  }}\n}}\n"
    )
}

fn haproxy_conf(listen: SocketAddr, upstream: SocketAddr, lines: &[String]) -> String {
    let mut extra: String = lines.iter().map(|l| format!("  {}\n", l.trim())).collect();
    for (k, v) in [
        ("timeout client", "60s"),
        ("timeout server", "60s"),
        ("timeout connect", "5s"),
    ] {
        if !lines.iter().any(|l| l.trim().starts_with(k)) {
            extra.push_str(&format!("  {k} {v}\n"));
        }
    }
    format!(
        "global\n  log stderr format short local0 info\ndefaults\n  mode http\n  log global\n{extra}\
frontend grpc_in\n  bind {listen} proto h2\n  default_backend grpc_out\n\
backend grpc_out\n  server upstream {upstream} proto h2\n"
    )
}

static MIDDLEBOX_SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl MiddleboxProc {
    pub async fn start(m: &Middlebox, upstream: SocketAddr) -> Result<Self, RunError> {
        let what = m.describe();
        let fail = |reason: String| RunError::Middlebox {
            what: what.clone(),
            reason,
        };
        let port = free_port().map_err(|e| fail(e.to_string()))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let dir = std::env::temp_dir().join(format!(
            "grpcdoc-middlebox-{}-{}",
            std::process::id(),
            MIDDLEBOX_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
        let argv: Vec<String> = match &m.kind {
            MiddleboxKind::Nginx(d) => {
                let conf = dir.join("nginx.conf");
                std::fs::write(&conf, nginx_conf(&dir, addr, upstream, d))
                    .map_err(|e| fail(e.to_string()))?;
                vec![
                    "nginx".into(),
                    "-c".into(),
                    conf.display().to_string(),
                    "-e".into(),
                    dir.join("error.log").display().to_string(),
                ]
            }
            MiddleboxKind::Haproxy(l) => {
                let conf = dir.join("haproxy.cfg");
                std::fs::write(&conf, haproxy_conf(addr, upstream, l))
                    .map_err(|e| fail(e.to_string()))?;
                vec![
                    "haproxy".into(),
                    "-db".into(),
                    "-f".into(),
                    conf.display().to_string(),
                ]
            }
            MiddleboxKind::Command(argv) => argv
                .iter()
                .map(|a| {
                    a.replace("{listen_port}", &port.to_string())
                        .replace("{listen}", &addr.to_string())
                        .replace("{upstream}", &upstream.to_string())
                })
                .collect(),
        };
        let path = super::plan::find_program(&argv[0])
            .ok_or_else(|| fail(format!("`{}` is not installed", argv[0])))?;
        let program = Program::spawn(&path, &argv[1..], &[]).map_err(|e| fail(e.to_string()))?;
        let mut me = MiddleboxProc {
            addr,
            upstream,
            program,
            dir,
        };
        if !wait_listening(addr, m.ready).await {
            me.stop().await;
            let out = me.program.output();
            let tail: Vec<&str> = out.lines().rev().take(5).collect();
            return Err(fail(format!(
                "nothing listened on {addr} within {}{}",
                humantime::format_duration(m.ready),
                if tail.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; it said: {}",
                        tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
                    )
                }
            )));
        }
        Ok(me)
    }

    /// SIGTERM to its process group, a grace, then SIGKILL; its files go.
    pub async fn stop(&mut self) {
        self.program
            .stop(libc::SIGTERM, Duration::from_secs(3))
            .await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for MiddleboxProc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
