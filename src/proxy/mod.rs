//! grpcdoc's chaos proxy: forwards TCP connections to an upstream and
//! applies faults, byte-level (toxiproxy's kind: latency, bandwidth, slicer,
//! blackhole, reset, close, down, limit-data, slow-close) and, on cleartext
//! HTTP/2, frame-level (drop or delay PINGs, inject or drop GOAWAYs, reset
//! streams, rewrite MAX_CONCURRENT_STREAMS, drop control frames), changed at
//! run time through [`RunningProxy`].

mod calls;
mod conn;
pub mod faults;
mod frames;
pub mod spec;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use faults::Faults;
pub use spec::{Direction, Fault, FaultSpec};

use crate::event::{EventKind, EventSink};

/// How a proxy runs besides its faults.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProxyOptions {
    /// Read the calls on cleartext HTTP/2 connections: an `rpc` event per
    /// stream and the client's GOAWAY, PING and RST_STREAM frames.
    pub calls: bool,
}

/// Serves on `listener`, forwarding to `upstream`, until `stop` turns true;
/// open connections are then closed.
pub async fn serve(
    listener: TcpListener,
    upstream: SocketAddr,
    faults: Faults,
    events: EventSink,
    options: ProxyOptions,
    mut stop: watch::Receiver<bool>,
) {
    let shared = Arc::new(conn::ProxyShared {
        upstream,
        faults,
        events: events.clone(),
        calls: options.calls,
        tls_told: false.into(),
    });
    let mut conns = JoinSet::new();
    let mut next_id = 0u64;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, peer)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                next_id += 1;
                events.emit(Some(next_id), Some(peer.to_string().into()), EventKind::Accepted { tls: false });
                conns.spawn(conn::handle(tcp, peer, next_id, shared.clone()));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { break },
        }
    }
    conns.shutdown().await;
}

/// A proxy running in the background; dropping it stops it.
pub struct RunningProxy {
    pub addr: SocketAddr,
    pub faults: Faults,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningProxy {
    /// Binds `listen` and forwards to `upstream` with `faults` in force.
    pub async fn start(
        listen: SocketAddr,
        upstream: SocketAddr,
        faults: Vec<FaultSpec>,
        events: EventSink,
    ) -> std::io::Result<Self> {
        Self::start_with(listen, upstream, faults, events, ProxyOptions::default()).await
    }

    /// As [`RunningProxy::start`], with options (the call tap).
    pub async fn start_with(
        listen: SocketAddr,
        upstream: SocketAddr,
        faults: Vec<FaultSpec>,
        events: EventSink,
        options: ProxyOptions,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let faults = Faults::new(faults);
        let (stop, rx) = watch::channel(false);
        events.emit(None, None, EventKind::Listening { listen: addr });
        let task = tokio::spawn(serve(
            listener,
            upstream,
            faults.clone(),
            events,
            options,
            rx,
        ));
        Ok(Self {
            addr,
            faults,
            stop,
            task: Some(task),
        })
    }

    /// Adds a fault to every connection, open and new; returns its id.
    pub fn add(&self, spec: FaultSpec) -> u64 {
        self.faults.add(spec)
    }

    pub fn remove(&self, id: u64) -> bool {
        self.faults.remove(id)
    }

    pub fn list(&self) -> Vec<(u64, String)> {
        self.faults.list()
    }

    /// Stops accepting, closes every connection, and waits.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
