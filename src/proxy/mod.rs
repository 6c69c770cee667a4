//! grpcdoc's chaos proxy: forwards TCP connections to an upstream and
//! applies faults, byte-level (toxiproxy's kind: latency, bandwidth, slicer,
//! blackhole, reset, close, down, limit-data, slow-close) and, on cleartext
//! HTTP/2, frame-level (drop or delay PINGs, inject or drop GOAWAYs, reset
//! streams, rewrite MAX_CONCURRENT_STREAMS, drop control frames), changed at
//! run time through [`RunningProxy`].

pub mod api;
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
#[derive(Clone, Debug, Default)]
pub struct ProxyOptions {
    /// Read the calls on cleartext HTTP/2 connections: an `rpc` event per
    /// stream and the client's GOAWAY, PING and RST_STREAM frames.
    pub calls: bool,
    /// With `calls`: tell the calls that ended OK too (else only failures).
    pub ok_calls: bool,
    /// Tell closes as the client saw them: `local` when it closed first
    /// (a scenario's tap in front of a client program).
    pub as_client: bool,
    /// Write the client side's traffic to this capture.
    pub pcap: Option<Arc<crate::pcap::writer::PcapFile>>,
}

/// Serves on `listener`, forwarding to `upstream`, until `stop` turns true;
/// open connections are then closed.
pub async fn serve(
    listener: TcpListener,
    upstream: SocketAddr,
    faults: Faults,
    events: EventSink,
    options: ProxyOptions,
    stop: watch::Receiver<bool>,
) {
    let (_open, open) = watch::channel(true);
    serve_pausable(listener, upstream, faults, events, options, stop, open).await
}

/// As [`serve`]; while `open` is false the listener is closed (new
/// connections are refused, as by a server that is down), and bound again
/// on the same address when it turns true.
async fn serve_pausable(
    listener: TcpListener,
    upstream: SocketAddr,
    faults: Faults,
    events: EventSink,
    options: ProxyOptions,
    mut stop: watch::Receiver<bool>,
    mut open: watch::Receiver<bool>,
) {
    let addr = listener.local_addr().ok();
    let mut listener = Some(listener);
    let shared = Arc::new(conn::ProxyShared {
        upstream,
        faults,
        events: events.clone(),
        calls: options.calls,
        ok_calls: options.ok_calls,
        as_client: options.as_client,
        tls_told: false.into(),
        pcap: options.pcap.clone(),
    });
    let mut conns = JoinSet::new();
    let mut next_id = 0u64;
    loop {
        let accept = async {
            match &listener {
                Some(l) => l.accept().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = open.changed() => {
                if changed.is_err() {
                    continue;
                }
                let want = *open.borrow_and_update();
                if !want {
                    listener = None;
                } else if listener.is_none() {
                    if let Some(a) = addr {
                        for _ in 0..40 {
                            if let Ok(l) = TcpListener::bind(a).await {
                                listener = Some(l);
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(25)).await;
                        }
                    }
                }
            }
            accepted = accept => {
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
    open: watch::Sender<bool>,
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
        let (open, open_rx) = watch::channel(true);
        events.emit(None, None, EventKind::Listening { listen: addr });
        let task = tokio::spawn(serve_pausable(
            listener,
            upstream,
            faults.clone(),
            events,
            options,
            rx,
            open_rx,
        ));
        Ok(Self {
            addr,
            faults,
            stop,
            open,
            task: Some(task),
        })
    }

    /// Stops listening (new connections are refused) or listens again on
    /// the same address: a tap that stands for a server that is down.
    pub fn set_listening(&self, on: bool) {
        let _ = self.open.send(on);
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
