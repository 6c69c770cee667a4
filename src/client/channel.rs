//! The channel: resolves the target, keeps one subchannel per address
//! (round_robin) or one for the whole list (pick_first, trying addresses in
//! order), aggregates their states (grpc-go's rules), and picks a READY
//! connection for each call. As a tower `Service` it runs generated tonic
//! clients and `tonic::client::Grpc` with any codec.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;

use crate::time::sleep_until_opt;

use super::backoff::{Backoff, BackoffConfig};
use super::body::StreamBody;
use super::conn::{set_origin, stream_status, Conn, ConnectCtx};
use super::keepalive::KeepaliveConfig;
use super::subchannel::{Reconnect, Subchannel, SubchannelConfig, Transition};
use super::tls::{self, TlsConfigError, TlsOptions};
use crate::connectivity::{aggregate, sticky, State};
use crate::event::{EventKind, EventSink};
use crate::target::{Address, Target};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lb {
    PickFirst,
    RoundRobin,
}

#[derive(Clone, Debug)]
pub struct ChannelConfig {
    pub target: Target,
    pub lb: Lb,
    pub backoff: BackoffConfig,
    pub keepalive: KeepaliveConfig,
    pub tls: TlsOptions,
    pub reconnect: Reconnect,
    /// How often `dns:///` targets are resolved again.
    pub resolve_interval: Duration,
    pub health_service: Option<String>,
    /// Report every frame, not only control frames.
    pub frames: bool,
    /// Subchannels per address (round_robin), so load can spread over
    /// several connections to one server.
    pub connections_per_address: usize,
    /// Write every connection's cleartext bytes to this capture.
    pub pcap: Option<Arc<crate::pcap::writer::PcapFile>>,
    /// Metadata the client layer's own calls send (health checks), as the
    /// user's calls do (`-H`).
    pub metadata: http::HeaderMap,
}

impl ChannelConfig {
    /// The channel of a client with the default settings.
    pub fn new(target: Target) -> Self {
        super::ClientSettings::default().channel_config(target, false)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
    #[error("`{0}` is not a valid authority for requests")]
    Authority(String),
}

struct Inner {
    target: Target,
    lb: Lb,
    per_address: usize,
    sc_cfg: Arc<SubchannelConfig>,
    events: EventSink,
    subchannels: Mutex<Vec<Arc<Subchannel>>>,
    /// The READY connections, in subchannel order, rebuilt after every state
    /// change: what a call picks from without touching the subchannels.
    ready: std::sync::RwLock<Arc<Vec<Arc<Conn>>>>,
    /// Bumped whenever the READY set changes.
    ready_gen: AtomicU64,
    transitions: mpsc::UnboundedSender<Transition>,
    /// Bumped after every state change: what pickers wait on.
    generation: watch::Sender<u64>,
    state: watch::Sender<State>,
    resolve_now: Arc<Notify>,
    resolve_error: Mutex<Option<String>>,
    /// Connections were asked for: new subchannels connect at once.
    active: std::sync::atomic::AtomicBool,
    rr: AtomicUsize,
    shutdown: watch::Sender<bool>,
}

/// A gRPC channel over grpcdoc's own connections. Cheap to clone.
#[derive(Clone)]
pub struct Channel(Arc<Inner>);

impl Channel {
    /// Builds the channel and starts resolving; no connection is made until
    /// [`Channel::connect`] or a call.
    pub fn new(cfg: ChannelConfig, events: EventSink) -> Result<Self, ChannelError> {
        let tls = if cfg.target.tls {
            Some(tls::client_config(&cfg.tls, cfg.target.server_name())?)
        } else {
            None
        };
        let authority: http::uri::Authority = cfg
            .target
            .authority
            .parse()
            .map_err(|_| ChannelError::Authority(cfg.target.authority.clone()))?;
        let scheme = if cfg.target.tls {
            http::uri::Scheme::HTTPS
        } else {
            http::uri::Scheme::HTTP
        };
        let reconnect = match cfg.lb {
            // round_robin keeps every subchannel connected (grpc-go exits
            // IDLE on its subchannels at once).
            Lb::RoundRobin => Reconnect::Eager,
            Lb::PickFirst => cfg.reconnect,
        };
        let sc_cfg = Arc::new(SubchannelConfig {
            backoff: cfg.backoff.clone(),
            connect: ConnectCtx {
                events: events.clone(),
                tls,
                keepalive: cfg.keepalive,
                frames: cfg.frames,
                pcap: cfg.pcap.clone(),
            },
            reconnect,
            health_service: cfg.health_service.clone(),
            metadata: cfg.metadata.clone(),
            scheme,
            authority,
        });
        let (transitions, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            target: cfg.target.clone(),
            lb: cfg.lb,
            per_address: cfg.connections_per_address.max(1),
            sc_cfg,
            events,
            subchannels: Mutex::new(Vec::new()),
            ready: std::sync::RwLock::new(Arc::new(Vec::new())),
            ready_gen: AtomicU64::new(0),
            transitions,
            generation: watch::channel(0).0,
            state: watch::channel(State::Idle).0,
            resolve_now: Arc::new(Notify::new()),
            resolve_error: Mutex::new(None),
            active: false.into(),
            rr: AtomicUsize::new(0),
            shutdown: watch::channel(false).0,
        });
        tokio::spawn(aggregate_states(inner.clone(), rx));
        tokio::spawn(resolve_loop(
            inner.clone(),
            cfg.resolve_interval,
            cfg.backoff,
        ));
        Ok(Self(inner))
    }

    /// Changes whenever a connection joins or leaves the READY set: a
    /// caller that keeps a connection between calls picks again then.
    pub fn ready_generation(&self) -> u64 {
        self.0.ready_gen.load(Ordering::Acquire)
    }

    /// The aggregate connectivity state.
    pub fn state(&self) -> State {
        *self.0.state.borrow()
    }

    pub fn subscribe_state(&self) -> watch::Receiver<State> {
        self.0.state.subscribe()
    }

    /// Asks every IDLE subchannel to connect (like grpc's `Connect()`).
    pub fn connect(&self) {
        self.0.active.store(true, Ordering::Release);
        for sc in self.0.subchannels() {
            sc.request_connection();
        }
    }

    /// Cuts every subchannel's reconnect backoff short: those in
    /// TRANSIENT_FAILURE connect now (grpc-go's `ResetConnectBackoff`).
    pub fn reset_connect_backoff(&self) {
        for sc in self.0.subchannels() {
            sc.reset_backoff();
        }
    }

    /// A resolver update from outside (a name service that now returns
    /// these addresses): subchannels for new addresses are made, those for
    /// addresses gone are shut down, as on a re-resolution.
    pub fn set_addresses(&self, addrs: Vec<Address>) {
        self.0.events.emit(
            None,
            None,
            EventKind::Resolve {
                addrs: addrs.iter().map(|a| a.to_string()).collect(),
                error: None,
            },
        );
        self.0.update_addresses(addrs);
    }

    /// When no subchannel could connect: the last error and its cause
    /// (with the address), for a message that says the server is not
    /// reachable and why.
    pub fn connect_failure(&self) -> Option<(String, crate::event::ConnectCause, String)> {
        let subs = self.0.subchannels();
        if subs.iter().any(|s| s.state() == State::Ready) {
            return None;
        }
        subs.iter().find_map(|s| {
            let (cause, addr) = s.last_cause()?;
            Some((s.last_error()?, cause, addr))
        })
    }

    /// Every subchannel's id, addresses and state.
    pub fn subchannels(&self) -> Vec<(u64, Vec<Address>, State)> {
        self.0
            .subchannels()
            .iter()
            .map(|s| (s.id, s.addresses(), s.state()))
            .collect()
    }

    /// Shuts every subchannel down and waits (briefly) for SHUTDOWN.
    pub async fn shutdown(&self) {
        let _ = self.0.shutdown.send(true);
        let subs = self.0.subchannels();
        for s in &subs {
            s.shutdown();
        }
        let mut state = self.0.state.subscribe();
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            state.wait_for(|s| *s == State::Shutdown || subs.is_empty()),
        )
        .await;
    }

    /// A READY connection for a new stream, connecting if needed. Without
    /// wait-for-ready, fails fast with UNAVAILABLE while the channel is in
    /// TRANSIENT_FAILURE (gRPC's default).
    pub async fn pick(
        &self,
        wait_for_ready: bool,
        deadline: Option<Instant>,
    ) -> Result<Arc<Conn>, tonic::Status> {
        let inner = &self.0;
        if let Some(c) = inner.pick_ready() {
            return Ok(c);
        }
        inner.active.store(true, Ordering::Release);
        let mut gen = inner.generation.subscribe();
        loop {
            gen.borrow_and_update();
            let subs = inner.subchannels();
            if let Some(c) = inner.choose(&subs) {
                return Ok(c);
            }
            for s in &subs {
                s.request_connection();
            }
            if !wait_for_ready && self.state() == State::TransientFailure {
                return Err(tonic::Status::unavailable(inner.failure_text(&subs)));
            }
            tokio::select! {
                changed = gen.changed() => if changed.is_err() {
                    return Err(tonic::Status::unavailable("channel shut down"));
                },
                _ = sleep_until_opt(deadline) => {
                    return Err(tonic::Status::deadline_exceeded(format!(
                        "no READY connection before the deadline; channel {}: {}",
                        self.state(), inner.failure_text(&subs)
                    )));
                }
            }
        }
    }
}

impl Inner {
    fn subchannels(&self) -> Vec<Arc<Subchannel>> {
        self.subchannels
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// The fast path of a pick: one of the READY connections, round robin
    /// (or the first, for pick_first), that still takes new streams.
    fn pick_ready(&self) -> Option<Arc<Conn>> {
        let list = self.ready.read().ok()?.clone();
        let n = list.len();
        if n == 0 {
            return None;
        }
        let start = match self.lb {
            Lb::PickFirst => 0,
            Lb::RoundRobin => self.rr.fetch_add(1, Ordering::Relaxed),
        };
        // Prefer a connection with a free stream slot (MAX_CONCURRENT_STREAMS);
        // else any that takes new streams (the call then waits its turn).
        let order = (0..n).map(|i| &list[(start + i) % n]);
        order
            .clone()
            .find(|c| c.usable() && c.has_free_slot())
            .or_else(|| order.clone().find(|c| c.usable()))
            .cloned()
    }

    fn refresh_ready(&self) {
        let list: Vec<Arc<Conn>> = self
            .subchannels()
            .iter()
            .filter_map(|s| s.ready_conn())
            .collect();
        if let Ok(mut r) = self.ready.write() {
            let same = r.len() == list.len() && r.iter().zip(&list).all(|(a, b)| Arc::ptr_eq(a, b));
            if !same {
                *r = Arc::new(list);
                self.ready_gen.fetch_add(1, Ordering::AcqRel);
            }
        }
    }

    fn choose(&self, subs: &[Arc<Subchannel>]) -> Option<Arc<Conn>> {
        match self.lb {
            Lb::PickFirst => subs.iter().find_map(|s| s.ready_conn()),
            Lb::RoundRobin => {
                let n = subs.len();
                let start = self.rr.fetch_add(1, Ordering::Relaxed);
                (0..n).find_map(|i| subs[(start + i) % n].ready_conn())
            }
        }
    }

    fn failure_text(&self, subs: &[Arc<Subchannel>]) -> String {
        if let Some(e) = self.resolve_error.lock().ok().and_then(|e| e.clone()) {
            return e;
        }
        let errs: Vec<String> = subs.iter().filter_map(|s| s.last_error()).collect();
        if errs.is_empty() {
            "no connection is READY".into()
        } else {
            errs.join("; ")
        }
    }

    fn bump(&self) {
        self.refresh_ready();
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
    }

    fn set_channel_state(&self, to: State, reason: String) {
        let from = *self.state.borrow();
        if from == to {
            return;
        }
        self.state.send_replace(to);
        self.events.emit(
            None,
            None,
            EventKind::State {
                from,
                to,
                reason,
                channel: true,
                subchannel: None,
            },
        );
    }

    /// Applies a resolver result to the subchannels.
    fn update_addresses(&self, addrs: Vec<Address>) {
        let mut added = Vec::new();
        let mut removed = Vec::new();
        if let Ok(mut subs) = self.subchannels.lock() {
            match self.lb {
                Lb::PickFirst => match subs.first() {
                    Some(sc) => sc.set_addresses(addrs),
                    None => added.push(self.spawn_subchannel(addrs)),
                },
                Lb::RoundRobin => {
                    subs.retain(|s| {
                        let keep = s.addresses().first().is_some_and(|a| addrs.contains(a));
                        if !keep {
                            removed.push(s.clone());
                        }
                        keep
                    });
                    for a in addrs {
                        let have = subs
                            .iter()
                            .filter(|s| s.addresses().first() == Some(&a))
                            .count();
                        for _ in have..self.per_address {
                            added.push(self.spawn_subchannel(vec![a.clone()]));
                        }
                    }
                }
            }
            subs.extend(added.iter().cloned());
        }
        for s in removed {
            s.shutdown();
        }
        if self.active.load(Ordering::Acquire) {
            for s in &added {
                s.request_connection();
            }
        }
        self.bump();
    }

    fn spawn_subchannel(&self, addrs: Vec<Address>) -> Arc<Subchannel> {
        Subchannel::spawn(
            addrs,
            self.sc_cfg.clone(),
            self.events.clone(),
            self.transitions.clone(),
            self.resolve_now.clone(),
        )
    }
}

/// Recomputes the channel state after each subchannel move, in order.
async fn aggregate_states(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<Transition>) {
    let mut states: std::collections::BTreeMap<u64, State> = Default::default();
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        let t = tokio::select! {
            t = rx.recv() => t,
            _ = shutdown.changed() => None,
        };
        let Some(t) = t else {
            // Shutting down: wait for the subchannels' last moves.
            let deadline = Instant::now() + Duration::from_millis(500);
            while !states.is_empty() {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(t)) if t.to == State::Shutdown => {
                        states.remove(&t.subchannel);
                    }
                    Ok(Some(t)) => {
                        states.insert(t.subchannel, t.to);
                    }
                    _ => break,
                }
            }
            inner.set_channel_state(State::Shutdown, "channel shut down".into());
            inner.bump();
            return;
        };
        if t.to == State::Shutdown {
            states.remove(&t.subchannel);
        } else {
            states.insert(t.subchannel, t.to);
        }
        let to = if states.is_empty() && inner.resolve_error.lock().is_ok_and(|e| e.is_none()) {
            *inner.state.borrow()
        } else {
            sticky(*inner.state.borrow(), aggregate(states.values().copied()))
        };
        inner.set_channel_state(to, format!("subchannel {} is {}", t.subchannel, t.to));
        inner.bump();
    }
}

/// Resolves the target at start, again on connection loss (after a failed
/// resolution) and, for `dns:///`, every `interval`.
async fn resolve_loop(inner: Arc<Inner>, interval: Duration, backoff: BackoffConfig) {
    let mut shutdown = inner.shutdown.subscribe();
    let mut backoff = Backoff::new(backoff);
    let mut last: Option<Vec<Address>> = None;
    loop {
        let wait = match inner.target.resolve().await {
            Ok(addrs) => {
                backoff.reset();
                if let Ok(mut e) = inner.resolve_error.lock() {
                    *e = None;
                }
                if last.as_ref() != Some(&addrs) {
                    inner.events.emit(
                        None,
                        None,
                        EventKind::Resolve {
                            addrs: addrs.iter().map(|a| a.to_string()).collect(),
                            error: None,
                        },
                    );
                    inner.update_addresses(addrs.clone());
                    last = Some(addrs);
                }
                inner.target.periodic_resolution().then_some(interval)
            }
            Err(e) => {
                inner.events.emit(
                    None,
                    None,
                    EventKind::Resolve {
                        addrs: vec![],
                        error: Some(e.clone()),
                    },
                );
                if let Ok(mut le) = inner.resolve_error.lock() {
                    *le = Some(e.clone());
                }
                if last.is_none() {
                    let from = *inner.state.borrow();
                    if from != State::TransientFailure {
                        if from == State::Idle {
                            inner.set_channel_state(State::Connecting, "resolving".into());
                        }
                        inner.set_channel_state(State::TransientFailure, e);
                    }
                    inner.bump();
                }
                Some(backoff.next_delay())
            }
        };
        let periodic = async {
            match wait {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = periodic => {}
            _ = inner.resolve_now.notified(), if inner.target.periodic_resolution() || last.is_none() => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// A call option: wait for a READY connection instead of failing fast.
#[derive(Clone, Copy, Debug)]
pub struct WaitForReady;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl tower_service::Service<http::Request<tonic::body::Body>> for Channel {
    type Response = http::Response<StreamBody>;
    type Error = tonic::Status;
    type Future = BoxFuture<Result<Self::Response, tonic::Status>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), tonic::Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: http::Request<tonic::body::Body>) -> Self::Future {
        let ch = self.clone();
        let cfg = &self.0.sc_cfg;
        set_origin(&mut req, &cfg.scheme, &cfg.authority);
        let wait_for_ready = req.extensions().get::<WaitForReady>().is_some();
        let deadline = req
            .headers()
            .get("grpc-timeout")
            .and_then(|v| crate::grpc::parse_timeout(v.to_str().ok()?))
            .map(|d| Instant::now() + d);
        Box::pin(async move {
            let conn = ch.pick(wait_for_ready, deadline).await?;
            // The GOAWAY as it stands when the call fails, not when it began.
            conn.send(req)
                .await
                .map_err(|e| stream_status(&e, conn.shared.goaway()))
        })
    }
}
