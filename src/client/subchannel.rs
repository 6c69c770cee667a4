//! A subchannel: one task that keeps a connection to one address list and
//! moves through the connectivity states with the legal moves only.
//!
//! IDLE -> CONNECTING on request (or at once with eager reconnect);
//! CONNECTING -> READY when a connection's SETTINGS arrive (and, with health
//! checking, once the server says SERVING), -> TRANSIENT_FAILURE when every
//! address failed; TRANSIENT_FAILURE -> CONNECTING after the backoff;
//! READY -> IDLE on the first GOAWAY (new streams go to a new connection
//! while the old one drains, as current grpc-go does) or when the connection
//! closes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{mpsc, watch, Notify};

use super::backoff::{Backoff, BackoffConfig};
use super::conn::{self, Conn, ConnectCtx};
use super::health::{self, ConnService, Health};
use crate::connectivity::State;
use crate::event::{ConnectResult, EventKind, EventSink, HeldSink};
use crate::target::Address;

static NEXT_SUBCHANNEL_ID: AtomicU64 = AtomicU64::new(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reconnect {
    /// Stay IDLE after a connection ends until a call needs one (current
    /// grpc-go and C-core).
    OnDemand,
    /// Reconnect at once (grpc-go 1.33, round_robin).
    Eager,
}

/// Settings every subchannel of a channel shares.
pub struct SubchannelConfig {
    pub backoff: BackoffConfig,
    pub connect: ConnectCtx,
    pub reconnect: Reconnect,
    pub health_service: Option<String>,
    /// Sent with every health check.
    pub metadata: http::HeaderMap,
    pub scheme: http::uri::Scheme,
    pub authority: http::uri::Authority,
}

/// A state change, for the channel to aggregate.
#[derive(Clone, Debug)]
pub struct Transition {
    pub subchannel: u64,
    pub from: State,
    pub to: State,
}

pub struct Subchannel {
    pub id: u64,
    addrs: Mutex<Vec<Address>>,
    state: watch::Sender<State>,
    conn: Mutex<Option<Arc<Conn>>>,
    connect_req: Notify,
    /// Cuts a backoff wait short (grpc-go's ResetConnectBackoff).
    reset_backoff: Notify,
    shutdown: watch::Sender<bool>,
    last_error: Mutex<Option<String>>,
    /// Why the last connection attempt failed, and to which address.
    last_cause: Mutex<Option<(crate::event::ConnectCause, String)>>,
    events: EventSink,
    transitions: mpsc::UnboundedSender<Transition>,
    /// Asked when a connection is lost: resolve the target again.
    resolve_now: Arc<Notify>,
}

impl Subchannel {
    pub fn spawn(
        addrs: Vec<Address>,
        cfg: Arc<SubchannelConfig>,
        events: EventSink,
        transitions: mpsc::UnboundedSender<Transition>,
        resolve_now: Arc<Notify>,
    ) -> Arc<Self> {
        let sc = Arc::new(Self {
            id: NEXT_SUBCHANNEL_ID.fetch_add(1, Ordering::Relaxed),
            addrs: Mutex::new(addrs),
            state: watch::channel(State::Idle).0,
            conn: Mutex::new(None),
            connect_req: Notify::new(),
            reset_backoff: Notify::new(),
            shutdown: watch::channel(false).0,
            last_error: Mutex::new(None),
            last_cause: Mutex::new(None),
            events,
            transitions,
            resolve_now,
        });
        tokio::spawn(sc.clone().run(cfg));
        sc
    }

    pub fn state(&self) -> State {
        *self.state.borrow()
    }

    pub fn addresses(&self) -> Vec<Address> {
        self.addrs.lock().map(|a| a.clone()).unwrap_or_default()
    }

    pub fn set_addresses(&self, addrs: Vec<Address>) {
        if let Ok(mut a) = self.addrs.lock() {
            *a = addrs;
        }
    }

    /// Leave IDLE (no effect in other states).
    /// Ends a backoff wait now and starts over from the first delay; no
    /// effect outside TRANSIENT_FAILURE.
    pub fn reset_backoff(&self) {
        self.reset_backoff.notify_waiters();
    }

    pub fn request_connection(&self) {
        if self.state() == State::Idle {
            self.connect_req.notify_one();
        }
    }

    /// The connection to start a new stream on, if READY.
    pub fn ready_conn(&self) -> Option<Arc<Conn>> {
        if self.state() != State::Ready {
            return None;
        }
        let c = self.conn.lock().ok()?.clone()?;
        c.usable().then_some(c)
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// Why the last connection attempt failed (cause, address), while no
    /// attempt has succeeded since.
    pub fn last_cause(&self) -> Option<(crate::event::ConnectCause, String)> {
        self.last_error()?;
        self.last_cause.lock().ok().and_then(|c| c.clone())
    }

    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    fn set_state(&self, to: State, reason: impl Into<String>, conn: Option<u64>) {
        let from = self.state();
        if from == to {
            return;
        }
        debug_assert!(from.can_move_to(to), "illegal move {from} -> {to}");
        self.state.send_replace(to);
        let addr = self.addresses().first().map(|a| a.to_string().into());
        self.events.emit(
            conn,
            addr,
            EventKind::State {
                from,
                to,
                reason: reason.into(),
                channel: false,
                subchannel: Some(self.id),
            },
        );
        let _ = self.transitions.send(Transition {
            subchannel: self.id,
            from,
            to,
        });
    }

    /// Tries every address once; the first READY connection wins.
    async fn connect_once(
        &self,
        cfg: &SubchannelConfig,
        backoff: &Backoff,
    ) -> Result<Arc<Conn>, String> {
        let timeout = backoff.connect_timeout();
        let mut errors = Vec::new();
        for addr in self.addresses() {
            let started = Instant::now();
            let held = HeldSink::new(self.events.clone());
            let r = conn::connect(&addr, &cfg.connect, timeout, held.clone()).await;
            let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
            let (conn_id, result, error) = match &r {
                Ok(c) => (Some(c.shared.id), ConnectResult::Ok, None),
                Err(e) => (None, ConnectResult::Error, Some(e)),
            };
            self.events.emit(
                conn_id,
                Some(addr.to_string().into()),
                EventKind::Connect {
                    result,
                    error: error.map(|e| e.to_string()),
                    cause: error.map(|e| e.cause()),
                    elapsed_ms,
                    subchannel: self.id,
                },
            );
            match r {
                // Its events follow READY (serve_conn).
                Ok(c) => return Ok(c),
                Err(e) => {
                    held.release();
                    if let Ok(mut c) = self.last_cause.lock() {
                        *c = Some((e.cause(), addr.to_string()));
                    }
                    errors.push(e.to_string());
                }
            }
        }
        if errors.is_empty() {
            errors.push("no address to connect to".into());
        }
        Err(errors.join("; "))
    }

    async fn run(self: Arc<Self>, cfg: Arc<SubchannelConfig>) {
        let mut shutdown = self.shutdown.subscribe();
        let mut backoff = Backoff::new(cfg.backoff.clone());
        loop {
            if *shutdown.borrow() {
                break;
            }
            match self.state() {
                State::Idle => {
                    tokio::select! {
                        _ = self.connect_req.notified() => {}
                        _ = shutdown.changed() => continue,
                    }
                    self.set_state(State::Connecting, "connection requested", None);
                }
                State::Connecting => {
                    let r = tokio::select! {
                        r = self.connect_once(&cfg, &backoff) => r,
                        _ = shutdown.changed() => continue,
                    };
                    match r {
                        Ok(c) => {
                            backoff.reset();
                            if let Ok(mut e) = self.last_error.lock() {
                                *e = None;
                            }
                            self.serve_conn(c, &cfg, &mut shutdown).await;
                        }
                        Err(e) => {
                            if let Ok(mut le) = self.last_error.lock() {
                                *le = Some(e.clone());
                            }
                            self.set_state(State::TransientFailure, e, None);
                        }
                    }
                }
                State::TransientFailure => {
                    let attempt = backoff.attempt();
                    let delay = backoff.next_delay();
                    let addr = self.addresses().first().map(|a| a.to_string().into());
                    self.events.emit(
                        None,
                        addr,
                        EventKind::Backoff {
                            delay_ms: delay.as_secs_f64() * 1e3,
                            attempt: attempt + 1,
                            subchannel: self.id,
                        },
                    );
                    let why = tokio::select! {
                        _ = tokio::time::sleep(delay) => "backoff over",
                        _ = self.reset_backoff.notified() => {
                            backoff.reset();
                            "backoff reset: connecting now"
                        }
                        _ = shutdown.changed() => continue,
                    };
                    self.set_state(State::Connecting, why, None);
                }
                State::Ready | State::Shutdown => break,
            }
        }
        if let Ok(mut c) = self.conn.lock() {
            c.take();
        }
        self.set_state(State::Shutdown, "subchannel shut down", None);
    }

    /// Uses one connection until it stops taking new streams; leaves the
    /// subchannel IDLE, or in TRANSIENT_FAILURE when health checking failed it.
    async fn serve_conn(
        &self,
        c: Arc<Conn>,
        cfg: &SubchannelConfig,
        shutdown: &mut watch::Receiver<bool>,
    ) {
        let id = Some(c.shared.id);
        if let Ok(mut slot) = self.conn.lock() {
            *slot = Some(c.clone());
        }
        let mut health = cfg.health_service.clone().map(|service| {
            health::watch(
                ConnService {
                    conn: c.clone(),
                    scheme: cfg.scheme.clone(),
                    authority: cfg.authority.clone(),
                },
                service,
                cfg.metadata.clone(),
                cfg.backoff.clone(),
            )
        });
        if health.is_none() {
            self.set_state(State::Ready, format!("connected to {}", c.shared.addr), id);
        }
        // The connection's own events (SETTINGS, and a GOAWAY or close that
        // came at once) after its `connect` and READY.
        c.release_events();
        let why = loop {
            let next_health = async {
                match health.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            // Biased: a GOAWAY that is also a close is reported as the GOAWAY.
            tokio::select! {
                biased;
                h = next_health => {
                if let Some(h) = &h {
                    let detail = match h {
                        Health::Failed(_, why) => why.clone(),
                        Health::NotServing(s) => s.as_str_name().to_string(),
                        _ => String::new(),
                    };
                    let addr = self.addresses().first().map(|a| a.to_string().into());
                    self.events.emit(
                        id,
                        addr,
                        EventKind::Health {
                            answer: h.answer(),
                            detail,
                        },
                    );
                }
                match h {
                    Some(Health::Serving) | Some(Health::Unimplemented) => {
                        let note = if h == Some(Health::Unimplemented) {
                            "health service UNIMPLEMENTED: taken as serving"
                        } else {
                            "health check: SERVING"
                        };
                        if self.state() == State::TransientFailure {
                            self.set_state(State::Connecting, note, id);
                        }
                        self.set_state(State::Ready, note, id);
                        if h == Some(Health::Unimplemented) {
                            health = None;
                        }
                    }
                    Some(Health::NotServing(s)) => {
                        self.set_state(
                            State::TransientFailure,
                            format!("health check: {}", s.as_str_name()),
                            id,
                        );
                    }
                    Some(Health::Failed(_, why)) => {
                        self.set_state(State::TransientFailure, why, id);
                    }
                    None => health = None,
                }
                },
                _ = wait_draining(&c) => {
                    let g = c.shared.goaway();
                    break match g {
                        Some(g) => format!("GOAWAY {} {:?} received", g.code, g.debug_text()),
                        None => "connection closed".to_string(),
                    };
                }
                info = c.closed() => {
                    let mut why = format!("connection closed: {}", info.reason.as_str());
                    if let Some(d) = info.detail { why.push_str(&format!(" ({d})")); }
                    break why;
                }
                _ = shutdown.changed() => break "shutting down".into(),
            }
        };
        if let Ok(mut slot) = self.conn.lock() {
            slot.take();
        }
        if *shutdown.borrow() {
            // grpcdoc ends the connection: our GOAWAY, and its `closed`
            // (local) before the subchannel's SHUTDOWN.
            c.close();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), c.closed()).await;
        }
        self.resolve_now.notify_one();
        if *shutdown.borrow() {
            return;
        }
        match self.state() {
            // A connection lost while health checking had failed it: back off
            // and reconnect (TRANSIENT_FAILURE may only go to CONNECTING).
            State::TransientFailure => {}
            State::Ready => self.set_state(State::Idle, why, id),
            // Lost before health said SERVING.
            _ => self.set_state(State::TransientFailure, why, id),
        }
        if self.state() == State::Idle && cfg.reconnect == Reconnect::Eager {
            self.connect_req.notify_one();
        }
    }
}

async fn wait_draining(c: &Conn) {
    loop {
        let notified = c.shared.changed.notified();
        if c.shared.is_draining() {
            return;
        }
        notified.await;
    }
}
