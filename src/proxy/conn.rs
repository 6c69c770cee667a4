//! One proxied connection: accepted, its stages made from the faults in
//! force (those of the whole connection first: `down` answers before the
//! upstream is dialed), the upstream dialed, then both directions driven
//! by one task with no lock between them, stages started and stopped as
//! faults come and go, and the end told: who closed, how, and what the
//! connection carried.

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::watch;

use super::attempts::Attempts;
use super::calls::CallTap;
use super::fault::stage::{Cx, Init};
use super::fault::{Direction, FaultSpec, Scope};
use super::faults::{ActiveFault, Faults};
use super::pump::{Pump, Side, Slot, Stopped};
use super::sniff::{Proto, Sniffer};
use super::state::{End, State};
use super::summary::{ConnCounts, Stats};
use crate::event::{CloseReason, EventKind, EventSink};

/// What every connection of a proxy shares.
pub(crate) struct ProxyShared {
    pub upstream: SocketAddr,
    pub faults: Faults,
    pub events: EventSink,
    /// Read calls on cleartext HTTP/2 connections (the tap).
    pub calls: bool,
    /// Tell the calls that ended OK too.
    pub ok_calls: bool,
    /// Closes as the client saw them (the client closing first is `local`).
    pub as_client: bool,
    /// A TLS connection was told to carry calls that cannot be read.
    pub tls_told: AtomicBool,
    pub stats: Arc<Stats>,
    pub attempts: Arc<Attempts>,
    /// Write the client side's traffic to this capture.
    pub pcap: Option<Arc<crate::pcap::writer::PcapFile>>,
}

/// Makes the next close of this socket a reset (RST), as toxiproxy's
/// reset_peer does with SO_LINGER 0.
fn linger_zero(fd: RawFd) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads the struct given, for a socket we own.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// The stage of `f` for one place on a connection, if its toxicity lets
/// it act there (toxiproxy rolls once per toxic and connection).
fn stage_of(
    f: &ActiveFault,
    dir: Direction,
    at_open: bool,
    now: Instant,
    rng: &mut fastrand::Rng,
) -> Option<Slot> {
    let spec: &FaultSpec = &f.spec;
    if spec.probability < 1.0 && rng.f64() >= spec.probability {
        return None;
    }
    let stage = spec.fault.stage(&Init { now, at_open, dir })?;
    Some(Slot {
        fault: f.id,
        name: spec.name(),
        stage,
    })
}

fn start(slot: &mut Slot, dir: Direction, st: &mut State, now: Instant) {
    let mut cx = Cx {
        now,
        dir,
        name: slot.name,
        st,
    };
    slot.stage.start(&mut cx);
}

/// How a connection ended.
struct Outcome {
    reason: CloseReason,
    detail: Option<String>,
}

/// A connection being driven.
struct Conn {
    shared: Arc<ProxyShared>,
    st: State,
    client: TcpStream,
    server: TcpStream,
    up: Pump,
    down: Pump,
    /// Stages of the whole connection.
    whole: Vec<Slot>,
    tap: Option<CallTap>,
    /// Faults already given their stages (or rolled out by toxicity).
    known: HashSet<u64>,
    /// Which side's input ended first.
    first_close: Option<Direction>,
    timer: Pin<Box<tokio::time::Sleep>>,
    rng: fastrand::Rng,
    peer: SocketAddr,
    /// Until the first bytes tell what the connection speaks.
    sniff: Option<Sniffer>,
    proto: Option<Proto>,
}

pub(crate) async fn handle(
    client: TcpStream,
    peer: SocketAddr,
    id: u64,
    shared: Arc<ProxyShared>,
    mut stop: watch::Receiver<bool>,
) {
    let opened = Instant::now();
    let addr: Arc<str> = peer.to_string().into();
    let mut st = State::new(id, addr, shared.events.clone(), opened, false);
    let mut rng = fastrand::Rng::new();
    let snapshot = shared.faults.snapshot();
    let mut known = HashSet::new();
    let mut whole = Vec::new();
    for f in snapshot.iter() {
        if f.spec.def.scope == Scope::Connection {
            known.insert(f.id);
            if let Some(mut s) = stage_of(f, f.spec.direction, true, opened, &mut rng) {
                start(&mut s, f.spec.direction, &mut st, opened);
                whole.push(s);
            }
        }
    }
    if let Some(end) = st.end.take() {
        // Before the upstream: down (or a reset or close in force).
        if matches!(end, End::Reset(_)) {
            linger_zero(client.as_raw_fd());
        }
        drop(client);
        let (reason, detail) = end_reason(end);
        close(&mut st, &shared, reason, detail);
        return;
    }
    let server =
        match tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(shared.upstream))
            .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                linger_zero(client.as_raw_fd());
                drop(client);
                st.event(EventKind::Closed {
                    reason: CloseReason::Error,
                    error: Some(format!(
                        "cannot reach the upstream {}: {e}",
                        shared.upstream
                    )),
                    detail: None,
                    lifetime_ms: opened.elapsed().as_secs_f64() * 1e3,
                    streams: 0,
                });
                shared
                    .stats
                    .add(counts(0, 0, Default::default(), st.take_applied()));
                return;
            }
            Err(_) => return,
        };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let capture = shared.pcap.as_ref().and_then(|f| {
        let local = client.local_addr().ok()?;
        Some(Arc::new(f.connection(Some(peer), local)))
    });
    let (mut up, mut down) = (
        Pump::new(Direction::Upstream),
        Pump::new(Direction::Downstream),
    );
    up.pcap = capture.clone();
    down.pcap = capture;
    let mut conn = Conn {
        shared: shared.clone(),
        st,
        client,
        server,
        up,
        down,
        whole,
        tap: None,
        known,
        first_close: None,
        timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
        rng,
        peer,
        sniff: Some(Sniffer::new(opened)),
        proto: None,
    };
    conn.sync_faults(Some(opened));
    let mut changes = shared.faults.subscribe();
    let outcome = loop {
        tokio::select! {
            o = std::future::poll_fn(|cx| conn.poll_io(cx)) => break o,
            changed = changes.changed() => {
                if changed.is_err() {
                    break Outcome { reason: CloseReason::Local, detail: Some("the proxy stopped".into()) };
                }
                conn.sync_faults(None);
            }
            _ = stop.wait_for(|s| *s) => {
                break Outcome { reason: CloseReason::Local, detail: Some("the proxy stopped".into()) };
            }
        }
    };
    conn.finish(outcome);
}

fn end_reason(end: End) -> (CloseReason, String) {
    match end {
        End::Reset(d) => (CloseReason::Reset, d),
        End::Close(d) => (CloseReason::Local, d),
    }
}

fn counts(
    up: u64,
    down: u64,
    tap: super::calls::TapCounts,
    applied: Vec<(&'static str, u64)>,
) -> ConnCounts {
    ConnCounts {
        bytes_up: up,
        bytes_down: down,
        calls: tap.calls,
        failed: tap.failed,
        applied,
    }
}

/// Tells a close before the upstream was dialed.
fn close(st: &mut State, shared: &ProxyShared, reason: CloseReason, detail: String) {
    st.event(EventKind::Closed {
        reason,
        error: None,
        detail: Some(detail),
        lifetime_ms: st.opened.elapsed().as_secs_f64() * 1e3,
        streams: 0,
    });
    let applied = st.take_applied();
    shared.stats.add(counts(0, 0, Default::default(), applied));
}

impl Conn {
    /// Gives new faults their stages and stops those of faults removed;
    /// `opened` when the connection is new (its stages' clocks start then).
    fn sync_faults(&mut self, opened: Option<Instant>) {
        let now = opened.unwrap_or_else(Instant::now);
        let snapshot = self.shared.faults.snapshot();
        let live: HashSet<u64> = snapshot.iter().map(|f| f.id).collect();
        self.drop_stages(now, |s| !live.contains(&s.fault), true);
        self.known.retain(|id| live.contains(id));
        let frames_ok = self.proto.is_none_or(|p| p == Proto::H2c);
        let mut refused = Vec::new();
        for f in snapshot.iter() {
            if !self.known.insert(f.id) {
                continue;
            }
            if f.spec.def.frames && !frames_ok {
                refused.push(f.spec.text.clone());
                continue;
            }
            self.add_stages(f, opened.is_some(), now);
        }
        self.refused(&refused);
        self.up.chain_changed(now);
        self.down.chain_changed(now);
    }

    /// The stages of one fault, where its scope puts them.
    fn add_stages(&mut self, f: &ActiveFault, at_open: bool, now: Instant) {
        let spec = &f.spec;
        let places: &[Direction] = match spec.def.scope {
            Scope::Connection => &[Direction::Both],
            Scope::ClientStreams => &[Direction::Upstream],
            Scope::Each => &[Direction::Upstream, Direction::Downstream],
        };
        for &place in places {
            if spec.def.scope == Scope::Each && !spec.direction.covers(place) {
                continue;
            }
            let dir = if place == Direction::Both {
                spec.direction
            } else {
                place
            };
            let Some(mut slot) = stage_of(f, dir, at_open, now, &mut self.rng) else {
                continue;
            };
            start(&mut slot, dir, &mut self.st, now);
            match place {
                Direction::Upstream => self.up.stages.push(slot),
                Direction::Downstream => self.down.stages.push(slot),
                Direction::Both => self.whole.push(slot),
            }
        }
    }

    /// Drops the stages `gone` picks (telling them they were removed when
    /// their fault was).
    fn drop_stages(&mut self, now: Instant, gone: impl Fn(&Slot) -> bool, tell: bool) {
        let st = &mut self.st;
        for (slots, dir) in [
            (&mut self.up.stages, Direction::Upstream),
            (&mut self.down.stages, Direction::Downstream),
            (&mut self.whole, Direction::Both),
        ] {
            slots.retain_mut(|s| {
                if !gone(s) {
                    return true;
                }
                if tell {
                    let mut cx = Cx {
                        now,
                        dir,
                        name: s.name,
                        st,
                    };
                    s.stage.removed(&mut cx);
                }
                false
            });
        }
    }

    /// Frame faults that do not act on this connection, said once.
    fn refused(&self, refused: &[String]) {
        if refused.is_empty() {
            return;
        }
        let what = if self.proto == Some(Proto::Tls) {
            "TLS"
        } else {
            "not HTTP/2"
        };
        self.st.fault_event(
            "refused",
            format!(
                "this connection is {what}: frame-level faults need cleartext HTTP/2 (h2c) and do not act on it ({}); byte-level faults do",
                refused.join(", ")
            ),
        );
    }

    /// The first bytes told what the connection speaks: frames followed
    /// and calls read on cleartext HTTP/2; frame stages dropped otherwise.
    fn decided(&mut self, proto: Proto, now: Instant) {
        self.proto = Some(proto);
        self.st.h2c = proto == Proto::H2c;
        let shared = self.shared.clone();
        if self.st.h2c {
            self.up.follow_frames();
            self.down.follow_frames();
            self.tap = shared.calls.then(|| {
                CallTap::new(
                    self.st.id,
                    self.st.addr.clone(),
                    self.peer.ip(),
                    shared.events.clone(),
                    shared.attempts.clone(),
                    shared.ok_calls,
                )
            });
            return;
        }
        if proto == Proto::Tls && shared.calls && !shared.tls_told.swap(true, Ordering::AcqRel) {
            self.st.fault_event(
                "tap",
                "this connection is TLS: the calls on it (and on every TLS connection after) cannot be read; only cleartext HTTP/2 (h2c) shows calls".into(),
            );
        }
        let frame_faults: HashSet<u64> = shared
            .faults
            .snapshot()
            .iter()
            .filter(|f| f.spec.def.frames)
            .map(|f| f.id)
            .collect();
        let texts: Vec<String> = shared
            .faults
            .snapshot()
            .iter()
            .filter(|f| frame_faults.contains(&f.id))
            .map(|f| f.spec.text.clone())
            .collect();
        self.drop_stages(now, |s| frame_faults.contains(&s.fault), false);
        self.refused(&texts);
        self.up.chain_changed(now);
        self.down.chain_changed(now);
    }

    /// Drives both directions and the stages' clocks until the connection
    /// ends.
    fn poll_io(&mut self, cx: &mut Context<'_>) -> Poll<Outcome> {
        loop {
            let now = Instant::now();
            self.wake_stages(now);
            if let Some(o) = self.ended() {
                return Poll::Ready(o);
            }
            if let Some(sniff) = &mut self.sniff {
                if let Some(proto) = sniff.poll(cx, &self.client, &self.server, now) {
                    self.sniff = None;
                    self.decided(proto, now);
                }
            }
            if self.sniff.is_none() {
                if let Some(o) = self.poll_pumps(cx, now) {
                    return Poll::Ready(o);
                }
            }
            let Some(at) = self.next_wake(now) else {
                return Poll::Pending;
            };
            self.timer
                .as_mut()
                .reset(tokio::time::Instant::from_std(at));
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    /// Runs the stages whose time has come.
    fn wake_stages(&mut self, now: Instant) {
        for s in &mut self.whole {
            if s.stage.wake_at(&self.st).is_some_and(|t| t <= now) {
                let mut scx = Cx {
                    now,
                    dir: Direction::Both,
                    name: s.name,
                    st: &mut self.st,
                };
                s.stage.wake(&mut scx);
            }
        }
        self.up.wake_stages(&mut self.st, now);
        self.down.wake_stages(&mut self.st, now);
    }

    /// Both directions; the outcome once the connection ended.
    fn poll_pumps(&mut self, cx: &mut Context<'_>, now: Instant) -> Option<Outcome> {
        let (c, s, st, tap) = (
            &mut self.client,
            &mut self.server,
            &mut self.st,
            &mut self.tap,
        );
        if let Poll::Ready(Stopped::Failed(e, side)) = self.up.poll(cx, c, s, st, tap, now) {
            return Some(self.failed(Direction::Upstream, e, side));
        }
        if let Poll::Ready(Stopped::Failed(e, side)) = self.down.poll(cx, s, c, st, tap, now) {
            return Some(self.failed(Direction::Downstream, e, side));
        }
        self.note_first_close();
        if let Some(o) = self.ended() {
            return Some(o);
        }
        (self.up.finished() && self.down.finished()).then_some(Outcome {
            reason: CloseReason::Eof,
            detail: None,
        })
    }

    /// When something is due next.
    fn next_wake(&self, now: Instant) -> Option<Instant> {
        [
            self.up.next_wake(&self.st, now),
            self.down.next_wake(&self.st, now),
            self.st.next_inject(),
            self.whole
                .iter()
                .filter_map(|s| s.stage.wake_at(&self.st))
                .min(),
            self.sniff.as_ref().map(Sniffer::next_wake),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn note_first_close(&mut self) {
        if self.first_close.is_some() {
            return;
        }
        if self.up.read_done {
            self.first_close = Some(Direction::Upstream);
        } else if self.down.read_done {
            self.first_close = Some(Direction::Downstream);
            if let Some(t) = self.tap.as_mut() {
                t.server_closed();
            }
        }
    }

    /// A fault ended the connection.
    fn ended(&mut self) -> Option<Outcome> {
        let end = self.st.end.take()?;
        if let End::Reset(_) = end {
            linger_zero(self.client.as_raw_fd());
            linger_zero(self.server.as_raw_fd());
        }
        let (reason, detail) = end_reason(end);
        Some(Outcome {
            reason,
            detail: Some(detail),
        })
    }

    /// A socket failed: a reset on one side is passed on to the other (a
    /// server killed with calls open resets its connections).
    fn failed(&mut self, dir: Direction, e: std::io::Error, side: Side) -> Outcome {
        self.first_close.get_or_insert(dir);
        let other = match dir {
            Direction::Downstream => self.client.as_raw_fd(),
            _ => self.server.as_raw_fd(),
        };
        linger_zero(other);
        if dir == Direction::Downstream || side == Side::Write {
            if let Some(t) = self.tap.as_mut() {
                t.server_closed();
            }
        }
        Outcome {
            reason: CloseReason::Error,
            detail: Some(e.to_string()),
        }
    }

    /// Tells the end: the calls still open, the close, the counts.
    fn finish(mut self, outcome: Outcome) {
        let now = Instant::now();
        let by_client = self.first_close == Some(Direction::Upstream);
        let mut tap_counts = Default::default();
        if let Some(tap) = self.tap.as_mut() {
            let why = match (&outcome.reason, &outcome.detail) {
                (_, Some(d)) => d.clone(),
                (CloseReason::Eof, None) if by_client => "the client closed it".to_string(),
                (CloseReason::Eof, None) => "the server closed it".to_string(),
                (r, None) => format!("{r:?}").to_lowercase(),
            };
            tap.finish(&why, by_client && outcome.reason == CloseReason::Eof, now);
            tap_counts = tap.counts;
        }
        // Who closed first, when both sides ended by themselves.
        let detail = outcome.detail.or_else(|| {
            (outcome.reason == CloseReason::Eof).then(|| match self.first_close {
                Some(Direction::Upstream) => "the client closed first".to_string(),
                _ => "the server closed first".to_string(),
            })
        });
        let reason = if self.shared.as_client && outcome.reason == CloseReason::Eof && by_client {
            CloseReason::Local
        } else {
            outcome.reason
        };
        self.st.event(EventKind::Closed {
            reason,
            error: None,
            detail,
            lifetime_ms: self.st.opened.elapsed().as_secs_f64() * 1e3,
            streams: 0,
        });
        let applied = self.st.take_applied();
        self.shared
            .stats
            .add(counts(self.up.bytes, self.down.bytes, tap_counts, applied));
    }
}
