//! grpcdoc's built-in test server: gRPC services on hyper's HTTP/2 server
//! with connection management that behaves like grpc-go's and C-core's
//! (gRFC A8/A9), which tonic's own server does not do (DESIGN §1).
//!
//! [`Server::start`] binds, spawns the accept loop and returns a
//! [`RunningServer`] handle, which stops the server, sets its health and
//! changes its settings for the connections accepted after.

pub mod config;
mod conn;
pub mod services;
mod streams;
pub mod tap;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

pub use config::{IdleDrain, ServerConfig};

use crate::event::{EventKind, EventSink};
use crate::pb::echo::echo_server::EchoServer;
use crate::pb::helloworld::greeter_server::GreeterServer;
use conn::ConnCtx;
use services::{DefaultDelay, EchoService, GreeterService};

/// The services whose health the server reports (besides the server, "").
pub const SERVICES: [&str; 2] = ["grpcdoc.echo.v1.Echo", "helloworld.Greeter"];

/// How far the server is in stopping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    Running,
    /// Stop accepting, drain every connection (GOAWAY `graceful_stop`) and
    /// end when they are closed.
    Graceful,
    /// Close every connection now.
    Now,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot build server reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// Builds the router with every service the server offers, and the handle
/// that sets their health.
fn routes(delay: &DefaultDelay) -> Result<(tonic::service::Routes, HealthReporter), ServerError> {
    let (health, health_svc) = tonic_health::server::health_reporter();
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .include_reflection_service(false)
            .register_encoded_file_descriptor_set(crate::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            )
    };
    let routes = tonic::service::Routes::new(EchoServer::new(EchoService {
        default_delay: delay.clone(),
    }))
    .add_service(GreeterServer::new(GreeterService {
        default_delay: delay.clone(),
    }))
    .add_service(health_svc)
    .add_service(reflection().build_v1()?)
    .add_service(reflection().build_v1alpha()?);
    Ok((routes, health))
}

fn http2_builder(cfg: &ServerConfig) -> http2::Builder<TokioExecutor> {
    let mut b = http2::Builder::new(TokioExecutor::new());
    // hyper limits streams to 200 unless told; grpc-go sends no limit.
    b.timer(TokioTimer::new())
        .max_concurrent_streams(cfg.max_concurrent_streams);
    b
}

async fn set_health(health: &HealthReporter, status: ServingStatus) {
    health.set_service_status("", status).await;
    for s in SERVICES {
        health.set_service_status(s, status).await;
    }
}

/// Serves on `listener` until `stop` says so; returns when every connection
/// is closed.
async fn serve(
    listener: TcpListener,
    mut settings: watch::Receiver<Arc<ServerConfig>>,
    events: EventSink,
    health: HealthReporter,
    routes: tonic::service::Routes,
    mut stop: watch::Receiver<Stop>,
) {
    let cfg = settings.borrow_and_update().clone();
    let tls = cfg.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let mut ctx = ConnCtx {
        http2: http2_builder(&cfg),
        cfg,
        routes,
        events: events.clone(),
        stop: stop.clone(),
    };
    let mut conns = JoinSet::new();
    let mut next_id = 0u64;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    // Out of file descriptors and the like: wait, keep going.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                next_id += 1;
                let id = next_id;
                // New settings apply to the connections accepted after them.
                if settings.has_changed().unwrap_or(false) {
                    let cfg = settings.borrow_and_update().clone();
                    ctx.http2 = http2_builder(&cfg);
                    ctx.cfg = cfg;
                }
                events.emit(Some(id), Some(peer.to_string().into()), EventKind::Accepted { tls: tls.is_some() });
                let ctx = ctx.clone();
                match tls.clone() {
                    None => { conns.spawn(conn::serve(tcp, id, peer, ctx)); }
                    Some(acceptor) => {
                        conns.spawn(async move {
                            match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                                Ok(Ok(tls)) => conn::serve(tls, id, peer, ctx).await,
                                Ok(Err(e)) => handshake_failed(&ctx.events, id, peer, e.to_string()),
                                Err(_) => handshake_failed(&ctx.events, id, peer, "no TLS handshake within 10s".into()),
                            }
                        });
                    }
                }
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            changed = stop.changed() => {
                let s = if changed.is_ok() { *stop.borrow_and_update() } else { Stop::Now };
                if s == Stop::Running { continue; }
                events.emit(None, None, EventKind::Shutdown {
                    mode: if s == Stop::Now {
                        crate::event::ShutdownMode::Forced
                    } else {
                        crate::event::ShutdownMode::Graceful
                    },
                });
                if s == Stop::Graceful {
                    set_health(&health, ServingStatus::NotServing).await;
                }
                break;
            }
        }
    }
    drop(listener);
    // Each connection holds its own receiver of `stop`: it drains now and
    // closes at once on a later Stop::Now.
    while conns.join_next().await.is_some() {}
}

fn handshake_failed(events: &EventSink, id: u64, peer: SocketAddr, error: String) {
    events.emit(
        Some(id),
        Some(peer.to_string().into()),
        EventKind::Closed {
            reason: crate::event::CloseReason::Error,
            error: Some(format!("TLS handshake failed: {error}")),
            detail: None,
            lifetime_ms: 0.0,
            streams: 0,
        },
    );
}

/// Entry point for in-process use (tests, scenarios).
pub struct Server;

impl Server {
    /// Binds `addr` and serves in a task of the current runtime.
    pub async fn start(
        addr: SocketAddr,
        cfg: ServerConfig,
        events: EventSink,
    ) -> Result<RunningServer, ServerError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        Self::start_on(listener, cfg, events).await
    }

    pub async fn start_on(
        listener: TcpListener,
        cfg: ServerConfig,
        events: EventSink,
    ) -> Result<RunningServer, ServerError> {
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            source,
        })?;
        let delay = DefaultDelay::new(cfg.delay);
        let (routes, health) = routes(&delay)?;
        set_health(&health, ServingStatus::Serving).await;
        let (stop_tx, stop_rx) = watch::channel(Stop::Running);
        let (settings, settings_rx) = watch::channel(Arc::new(cfg));
        events.emit(None, None, EventKind::Listening { listen: addr });
        let task = tokio::spawn(serve(
            listener,
            settings_rx,
            events,
            health.clone(),
            routes,
            stop_rx,
        ));
        Ok(RunningServer {
            addr,
            health,
            stop: stop_tx,
            settings,
            delay,
            task,
        })
    }
}

/// A server serving in the background. Dropping it stops the server at once.
pub struct RunningServer {
    pub addr: SocketAddr,
    /// Sets the status `grpc.health.v1.Health` reports per service.
    pub health: HealthReporter,
    stop: watch::Sender<Stop>,
    settings: watch::Sender<Arc<ServerConfig>>,
    delay: DefaultDelay,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    pub fn stop(&self, how: Stop) {
        let _ = self.stop.send(how);
    }

    /// The server's settings now.
    pub fn settings(&self) -> ServerConfig {
        ServerConfig::clone(&self.settings.borrow())
    }

    /// New settings: the handler delay applies to the next call, the
    /// connection settings to connections accepted from now on (as after a
    /// configuration reload; connections open keep theirs). TLS stays as it
    /// was.
    pub fn update(&self, mut cfg: ServerConfig) {
        self.delay.set(cfg.delay);
        cfg.tls = self.settings.borrow().tls.clone();
        self.settings.send_replace(Arc::new(cfg));
    }

    /// Graceful stop; after `grace`, forced.
    pub async fn shutdown(mut self, grace: Duration) {
        self.stop(Stop::Graceful);
        if tokio::time::timeout(grace, &mut self.task).await.is_err() {
            self.stop(Stop::Now);
            let _ = (&mut self.task).await;
        }
    }

    /// Waits until the server has stopped (after [`RunningServer::stop`]).
    pub async fn wait(&mut self) {
        let _ = (&mut self.task).await;
    }
}
