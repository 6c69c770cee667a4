//! grpcdoc's chaos proxy: forwards TCP connections to an upstream and
//! applies faults, each a stage on every connection as toxiproxy runs its
//! toxics ([`fault`]): byte-level (latency, bandwidth, slicer, timeout,
//! reset-peer, limit-data, slow-close, blackhole, ...) and, on cleartext
//! HTTP/2, frame-level (drop or delay PINGs, inject or drop GOAWAYs, reset
//! streams, rewrite MAX_CONCURRENT_STREAMS, drop control frames); it reads
//! the calls that pass ([`calls`]), is changed at run time through
//! [`RunningProxy`] or toxiproxy's HTTP API ([`api`], driven from the
//! command line by [`ctl`]), and counts what it did ([`summary`]).

pub mod api;
mod attempts;
mod calls;
mod conn;
pub mod ctl;
pub mod fault;
mod faults;
mod hpack;
mod pump;
mod sniff;
mod state;
pub mod summary;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use fault::{Direction, FaultSpec, SpecError};
pub use faults::Faults;
pub use summary::Summary;

use crate::event::{EventKind, EventSink};

/// How a proxy runs besides its faults.
#[derive(Clone, Debug, Default)]
pub struct ProxyOptions {
    /// Read the calls on cleartext HTTP/2 connections: an `rpc` event per
    /// call and the client's GOAWAY, PING and RST_STREAM frames.
    pub calls: bool,
    /// With `calls`: tell the calls that ended OK too (else only failures).
    pub ok_calls: bool,
    /// Tell closes as the client saw them: `local` when it closed first
    /// (a scenario's tap in front of a client program).
    pub as_client: bool,
    /// Write the client side's traffic to this capture.
    pub pcap: Option<Arc<crate::pcap::writer::PcapFile>>,
}

/// How long connections get to tell their end when the proxy stops.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Serves on `listener`, forwarding to `upstream`, until `stop` turns
/// true; open connections are then closed (each tells its end). While
/// `open` is false the listener is closed (new connections are refused,
/// as by a server that is down), and bound again on the same address when
/// it turns true.
async fn serve(
    listener: TcpListener,
    shared: Arc<conn::ProxyShared>,
    mut stop: watch::Receiver<bool>,
    mut open: watch::Receiver<bool>,
) {
    let addr = listener.local_addr().ok();
    let mut listener = Some(listener);
    let mut conns = JoinSet::new();
    let mut next_id = 0u64;
    let mut sweep = tokio::time::interval(Duration::from_millis(200));
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
                shared.events.emit(Some(next_id), Some(peer.to_string().into()), EventKind::Accepted { tls: false });
                conns.spawn(conn::handle(tcp, peer, next_id, shared.clone(), stop.clone()));
            }
            _ = sweep.tick() => {
                let told = shared.attempts.expire(std::time::Instant::now(), false);
                shared.stats.add_failed(told);
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { break },
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(STOP_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    conns.shutdown().await;
    let told = shared.attempts.expire(std::time::Instant::now(), true);
    shared.stats.add_failed(told);
}

/// A proxy running in the background; dropping it stops it.
pub struct RunningProxy {
    pub addr: SocketAddr,
    pub faults: Faults,
    stats: Arc<summary::Stats>,
    stop: watch::Sender<bool>,
    open: watch::Sender<bool>,
    /// While disabled: the fault that closes the connections still open.
    down: std::sync::Mutex<Option<u64>>,
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
        let (stop, stop_rx) = watch::channel(false);
        let (open, open_rx) = watch::channel(true);
        let stats = Arc::new(summary::Stats::default());
        events.emit(None, None, EventKind::Listening { listen: addr });
        let shared = Arc::new(conn::ProxyShared {
            upstream,
            faults: faults.clone(),
            events,
            calls: options.calls,
            ok_calls: options.ok_calls,
            as_client: options.as_client,
            tls_told: false.into(),
            stats: stats.clone(),
            attempts: Arc::default(),
            pcap: options.pcap.clone(),
        });
        let task = tokio::spawn(serve(listener, shared, stop_rx, open_rx));
        Ok(Self {
            addr,
            faults,
            stats,
            stop,
            open,
            down: Default::default(),
            task: Some(task),
        })
    }

    /// Stops listening (new connections are refused) or listens again on
    /// the same address: a tap that stands for a server that is down.
    pub fn set_listening(&self, on: bool) {
        let _ = self.open.send(on);
    }

    /// toxiproxy's `enabled`: a disabled proxy refuses new connections and
    /// closes those open; enabled again, it listens on the same address.
    pub fn set_enabled(&self, on: bool) {
        self.set_listening(on);
        let Ok(mut down) = self.down.lock() else {
            return;
        };
        match (on, down.take()) {
            (true, Some(id)) => {
                self.faults.remove(id);
            }
            (false, None) => {
                if let Ok(spec) = "close".parse::<FaultSpec>() {
                    *down = Some(self.faults.add(spec));
                }
            }
            (_, keep) => *down = keep,
        }
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

    /// What the proxy did so far (connections that ended).
    pub fn summary(&self) -> Summary {
        self.stats.summary()
    }

    /// Stops accepting, closes every connection, waits for them to tell
    /// their end, and returns the summary.
    pub async fn shutdown(mut self) -> Summary {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        self.stats.summary()
    }
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
