//! One proxied connection: two pumps (client to server = upstream, server to
//! client = downstream) applying the byte-level faults, FrameIo on both
//! sockets for the frame-level ones (cleartext HTTP/2 only; TLS passes
//! through untouched), and a supervisor that applies faults added later
//! (reset, close, inject-goaway) and ends the connection.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::calls::CallTap;
use super::faults::Faults;
use super::frames::{self, ConnFaultCtx, ProxyTap};
use super::spec::{Direction, Fault};
use crate::event::{CloseReason, EventKind, EventSink};
use crate::h2wire::{FrameIo, Injector, Role};

/// What every connection of a proxy shares.
pub struct ProxyShared {
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
    pub tls_told: std::sync::atomic::AtomicBool,
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

/// idle-expiry `then=blackhole`: nothing goes through any more.
const FORGOTTEN_BLACKHOLE: u8 = 1;
/// idle-expiry `then=reset`: the next packet either way gets a reset.
const FORGOTTEN_RESET: u8 = 2;

enum PumpEnd {
    /// The reading side ended; the writing side was shut down (FIN).
    Eof,
    /// limit-data was reached: the connection is to be closed.
    Limit,
    /// A packet came on a connection idle-expiry forgot with `then=reset`.
    Forgotten,
    Error(String),
}

struct PumpFaults<'a> {
    faults: &'a Faults,
    ctx: &'a Arc<ConnFaultCtx>,
    dir: Direction,
    /// When this connection was accepted.
    opened: Instant,
    /// When a byte last went either way (ms since `opened`).
    active_ms: &'a AtomicU64,
    /// idle-expiry forgot this connection: [`FORGOTTEN_BLACKHOLE`] or
    /// [`FORGOTTEN_RESET`] (0 while it is remembered).
    forgotten: &'a AtomicU8,
    /// `--pcap`: the client side's bytes, as they were read.
    pcap: Option<&'a crate::pcap::writer::PcapConn>,
}

impl PumpFaults<'_> {
    fn active(&self, pick: impl Fn(&Fault) -> bool) -> Vec<Arc<super::faults::ActiveFault>> {
        self.faults
            .snapshot()
            .iter()
            .filter(|f| f.spec.direction.covers(self.dir) && pick(&f.spec.fault))
            .cloned()
            .collect()
    }
}

/// Copies one direction, applying latency, bandwidth, slicer, blackhole,
/// limit-data and slow-close.
async fn pump<R, W>(mut r: R, mut w: W, pf: PumpFaults<'_>) -> PumpEnd
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut rng = fastrand::Rng::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut sent: u64 = 0;
    let mut changes = pf.faults.subscribe();
    let mut holed = false;
    loop {
        // Blackhole: read nothing, write nothing, keep both sockets open.
        while pf.forgotten.load(Ordering::Acquire) == FORGOTTEN_BLACKHOLE
            || pf
                .active(|f| matches!(f, Fault::Blackhole { .. }))
                .iter()
                .any(|f| {
                    !matches!(f.spec.fault, Fault::Blackhole { existing: true })
                        || pf.opened < f.added
                })
        {
            if !holed {
                holed = true;
                pf.ctx.fault_event(
                    "blackhole",
                    format!("forwarding stopped {:?}", pf.dir).to_lowercase(),
                );
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), changes.changed()).await;
        }
        holed = false;
        let n = match r.read(&mut buf).await {
            Ok(0) => {
                if let Some(d) = pf
                    .active(|f| matches!(f, Fault::SlowClose { .. }))
                    .iter()
                    .find_map(|f| match f.spec.fault {
                        Fault::SlowClose { delay } => Some(delay),
                        _ => None,
                    })
                {
                    pf.ctx.fault_event(
                        "slow-close",
                        format!("holding the close for {}", humantime::format_duration(d)),
                    );
                    tokio::time::sleep(d).await;
                }
                let _ = w.shutdown().await;
                if let Some(p) = pf.pcap {
                    p.fin(pf.dir == Direction::Upstream);
                }
                return PumpEnd::Eof;
            }
            Ok(n) => n,
            Err(e) => {
                if let Some(p) = pf.pcap {
                    p.rst(pf.dir == Direction::Upstream);
                }
                return PumpEnd::Error(e.to_string());
            }
        };
        if let Some(p) = pf.pcap {
            p.data(pf.dir == Direction::Upstream, &buf[..n]);
        }
        match pf.forgotten.load(Ordering::Acquire) {
            // Read while the connection was being forgotten: lost.
            FORGOTTEN_BLACKHOLE => continue,
            FORGOTTEN_RESET => return PumpEnd::Forgotten,
            _ => {}
        }
        pf.active_ms
            .store(pf.opened.elapsed().as_millis() as u64, Ordering::Release);
        let mut chunk = &buf[..n];
        for f in pf.active(|f| matches!(f, Fault::Latency { .. })) {
            if let Fault::Latency { latency, jitter } = f.spec.fault {
                if f.fires(None, &mut rng) {
                    let j = jitter.as_secs_f64() * (rng.f64() * 2.0 - 1.0);
                    tokio::time::sleep(Duration::from_secs_f64(
                        (latency.as_secs_f64() + j).max(0.0),
                    ))
                    .await;
                }
            }
        }
        if let Some(rate) = pf
            .active(|f| matches!(f, Fault::Bandwidth { .. }))
            .iter()
            .filter_map(|f| match f.spec.fault {
                Fault::Bandwidth { rate } => Some(rate),
                _ => None,
            })
            .min()
        {
            tokio::time::sleep(Duration::from_secs_f64(n as f64 / rate as f64)).await;
        }
        let mut limit_hit = false;
        if let Some(limit) = pf
            .active(|f| matches!(f, Fault::LimitData { .. }))
            .iter()
            .filter_map(|f| match f.spec.fault {
                Fault::LimitData { bytes } => Some(bytes),
                _ => None,
            })
            .min()
        {
            let room = limit.saturating_sub(sent) as usize;
            if room <= chunk.len() {
                chunk = &chunk[..room];
                limit_hit = true;
            }
        }
        let slices = pf.active(|f| matches!(f, Fault::Slicer { .. }));
        let written = match slices.first().map(|f| &f.spec.fault) {
            Some(Fault::Slicer { size, delay }) => {
                let mut r = Ok(());
                for (i, part) in chunk.chunks(*size).enumerate() {
                    // tokio's timer rounds up to a millisecond: no sleep for 0.
                    if i > 0 && !delay.is_zero() {
                        tokio::time::sleep(*delay).await;
                    }
                    r = w.write_all(part).await.and(w.flush().await);
                    if r.is_err() {
                        break;
                    }
                }
                r
            }
            _ => w.write_all(chunk).await.and(w.flush().await),
        };
        if let Err(e) = written {
            return PumpEnd::Error(e.to_string());
        }
        sent += chunk.len() as u64;
        if limit_hit {
            pf.ctx.fault_event(
                "limit-data",
                format!("{sent} bytes forwarded {:?}: closing", pf.dir).to_lowercase(),
            );
            return PumpEnd::Limit;
        }
    }
}

fn close_event(
    events: &EventSink,
    id: u64,
    addr: &Arc<str>,
    reason: CloseReason,
    detail: Option<String>,
    start: Instant,
) {
    events.emit(
        Some(id),
        Some(addr.clone()),
        EventKind::Closed {
            reason,
            error: None,
            detail,
            lifetime_ms: start.elapsed().as_secs_f64() * 1e3,
            streams: 0,
        },
    );
}

pub async fn handle(client: TcpStream, peer: SocketAddr, id: u64, shared: Arc<ProxyShared>) {
    let start = Instant::now();
    let addr: Arc<str> = peer.to_string().into();
    let events = &shared.events;
    let mut rng = fastrand::Rng::new();
    let client_fd = client.as_raw_fd();
    let fault_event = |name: &str, detail: String| {
        events.emit(
            Some(id),
            Some(addr.clone()),
            EventKind::Fault {
                name: name.into(),
                detail,
            },
        )
    };
    if shared
        .faults
        .snapshot()
        .iter()
        .any(|f| matches!(f.spec.fault, Fault::Down) && f.fires(None, &mut rng))
    {
        linger_zero(client_fd);
        drop(client);
        fault_event("down", "reset a new connection".into());
        close_event(
            events,
            id,
            &addr,
            CloseReason::Reset,
            Some("down".into()),
            start,
        );
        return;
    }
    let upstream =
        match tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(shared.upstream))
            .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                linger_zero(client_fd);
                drop(client);
                events.emit(
                    Some(id),
                    Some(addr.clone()),
                    EventKind::Closed {
                        reason: CloseReason::Error,
                        error: Some(format!(
                            "cannot reach the upstream {}: {e}",
                            shared.upstream
                        )),
                        detail: None,
                        lifetime_ms: start.elapsed().as_secs_f64() * 1e3,
                        streams: 0,
                    },
                );
                return;
            }
            Err(_) => return,
        };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let up_fd = upstream.as_raw_fd();
    // TLS starts with a handshake record (0x16); HTTP/2 with "PRI".
    let mut first = [0u8; 1];
    let tls = matches!(
        tokio::time::timeout(Duration::from_secs(5), client.peek(&mut first)).await,
        Ok(Ok(1)) if first[0] == 0x16
    );
    let ctx = Arc::new(ConnFaultCtx {
        conn: id,
        addr: addr.clone(),
        faults: shared.faults.clone(),
        events: events.clone(),
        to_client: Injector::new(),
        to_server: Injector::new(),
        last_stream: AtomicU32::new(0),
        forwarded: AtomicU32::new(0),
        refuse_above: AtomicU32::new(u32::MAX),
        reset_streams: Mutex::new(HashSet::new()),
        handshaken: tokio::sync::watch::channel((false, false)).0,
        goaway_lock: Mutex::new(()),
        calls: (shared.calls && !tls).then(|| {
            Mutex::new(CallTap::new(
                id,
                addr.clone(),
                events.clone(),
                shared.ok_calls,
            ))
        }),
    });
    let frame_faults: Vec<String> = shared
        .faults
        .snapshot()
        .iter()
        .filter(|f| f.spec.is_frame_level())
        .map(|f| f.spec.text.clone())
        .collect();
    if tls && shared.calls && !shared.tls_told.swap(true, Ordering::AcqRel) {
        fault_event(
            "tap",
            "this connection is TLS: the calls on it (and on every TLS connection after) cannot be read; only cleartext HTTP/2 (h2c) shows calls".into(),
        );
    }
    if tls && !frame_faults.is_empty() {
        fault_event(
            "refused",
            format!(
                "this connection is TLS: frame-level faults need cleartext HTTP/2 (h2c) and do not act on it ({}); byte-level faults do",
                frame_faults.join(", ")
            ),
        );
    }
    let active_ms = AtomicU64::new(0);
    let forgotten = AtomicU8::new(0);
    let local = client.local_addr().ok();
    let pcap = shared
        .pcap
        .as_ref()
        .and_then(|f| Some(f.connection(Some(peer), local?)));
    let pf = |dir| PumpFaults {
        faults: &shared.faults,
        ctx: &ctx,
        dir,
        opened: start,
        active_ms: &active_ms,
        forgotten: &forgotten,
        pcap: pcap.as_ref(),
    };
    type Pump<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = PumpEnd> + Send + 'a>>;
    let (mut up, mut down): (Pump, Pump) = if tls {
        let (cr, cw) = tokio::io::split(client);
        let (ur, uw) = tokio::io::split(upstream);
        (
            Box::pin(pump(cr, uw, pf(Direction::Upstream))),
            Box::pin(pump(ur, cw, pf(Direction::Downstream))),
        )
    } else {
        let client_io = FrameIo::with_injector(
            client,
            Role::Server,
            ProxyTap {
                ctx: ctx.clone(),
                writes: Direction::Downstream,
                rng: fastrand::Rng::new(),
            },
            &ctx.to_client,
        );
        let up_io = FrameIo::with_injector(
            upstream,
            Role::Client,
            ProxyTap {
                ctx: ctx.clone(),
                writes: Direction::Upstream,
                rng: fastrand::Rng::new(),
            },
            &ctx.to_server,
        );
        let (cr, cw) = tokio::io::split(client_io);
        let (ur, uw) = tokio::io::split(up_io);
        (
            Box::pin(pump(cr, uw, pf(Direction::Upstream))),
            Box::pin(pump(ur, cw, pf(Direction::Downstream))),
        )
    };
    let (mut up_done, mut down_done) = (false, false);
    // Which side closed first: the client (its pump upstream ended) or
    // the server.
    let mut first_close: Option<Direction> = None;
    let mut changes = shared.faults.subscribe();
    let mut applied: HashSet<u64> = HashSet::new();
    let mut goaways = Vec::new();
    let outcome: (CloseReason, Option<String>) = loop {
        // Faults that act on open connections: at start and on every change.
        let mut end = None;
        for f in shared.faults.snapshot().iter() {
            if !applied.insert(f.id) {
                continue;
            }
            match &f.spec.fault {
                Fault::Reset if f.fires(None, &mut rng) => {
                    linger_zero(client_fd);
                    linger_zero(up_fd);
                    fault_event("reset", "reset both sides (RST)".into());
                    end = Some((CloseReason::Reset, Some("reset fault".to_string())));
                }
                Fault::Close if f.fires(None, &mut rng) => {
                    fault_event("close", "closed both sides (FIN)".into());
                    end = Some((CloseReason::Local, Some("close fault".to_string())));
                }
                Fault::InjectGoaway {
                    code,
                    last_stream_id,
                    debug,
                    every,
                } if !tls => {
                    goaways.push(tokio::spawn(frames::inject_goaways(
                        ctx.clone(),
                        f.id,
                        f.spec.direction,
                        *code,
                        *last_stream_id,
                        debug.clone(),
                        *every,
                    )));
                }
                _ => {}
            }
            if end.is_some() {
                break;
            }
        }
        // Dropping the pumps closes both sockets (RST after SO_LINGER 0).
        if let Some(end) = end {
            break end;
        }
        // idle-expiry: when the connection will have been idle long enough.
        let expiry = if forgotten.load(Ordering::Acquire) != 0 {
            None
        } else {
            shared
                .faults
                .snapshot()
                .iter()
                .filter_map(|f| match f.spec.fault {
                    Fault::IdleExpiry { idle, reset } => Some((idle, reset)),
                    _ => None,
                })
                .min_by_key(|(idle, _)| *idle)
        };
        let expires_at = expiry.map(|(idle, _)| {
            start + Duration::from_millis(active_ms.load(Ordering::Acquire)) + idle
        });
        // An EOF half-closes (the other way goes on); a limit or an error
        // ends the connection.
        let ended = tokio::select! {
            _ = crate::time::sleep_until_opt(expires_at.map(tokio::time::Instant::from_std)) => {
                let Some((idle, reset)) = expiry else { continue };
                // Still idle (no byte since the deadline was set)?
                let last = start + Duration::from_millis(active_ms.load(Ordering::Acquire));
                if last + idle > Instant::now() {
                    continue;
                }
                let idle_text = humantime::format_duration(idle);
                let (state, then) = if reset {
                    (FORGOTTEN_RESET, "the next packet either way gets a reset")
                } else {
                    (FORGOTTEN_BLACKHOLE, "nothing goes through any more")
                };
                forgotten.store(state, Ordering::Release);
                fault_event("idle-expiry", format!("idle for {idle_text}: forgotten; {then}"));
                continue;
            }
            end = &mut up, if !up_done => {
                up_done = true;
                first_close.get_or_insert(Direction::Upstream);
                (Direction::Upstream, end)
            }
            end = &mut down, if !down_done => {
                down_done = true;
                first_close.get_or_insert(Direction::Downstream);
                (Direction::Downstream, end)
            }
            changed = changes.changed() => {
                if changed.is_err() {
                    break (CloseReason::Local, None);
                }
                continue;
            }
        };
        let (side, ended) = ended;
        match ended {
            PumpEnd::Limit => break (CloseReason::Local, Some("limit-data".into())),
            PumpEnd::Forgotten => {
                linger_zero(client_fd);
                linger_zero(up_fd);
                fault_event(
                    "idle-expiry",
                    "a packet on a forgotten connection: reset both sides".into(),
                );
                break (CloseReason::Reset, Some("idle-expiry".into()));
            }
            PumpEnd::Error(e) => {
                // A reset on one side is passed on to the other (a server
                // killed with calls open resets its connections).
                linger_zero(match side {
                    Direction::Downstream => client_fd,
                    _ => up_fd,
                });
                break (CloseReason::Error, Some(e));
            }
            PumpEnd::Eof if up_done && down_done => break (CloseReason::Eof, None),
            PumpEnd::Eof => {}
        }
    };
    for g in goaways {
        g.abort();
    }
    if let Some(tap) = &ctx.calls {
        if let Ok(mut tap) = tap.lock() {
            let by_client = first_close == Some(Direction::Upstream);
            let why = match (&outcome.0, &outcome.1) {
                (_, Some(d)) => d.clone(),
                (CloseReason::Eof, None) if by_client => "the client closed it".to_string(),
                (CloseReason::Eof, None) => "the server closed it".to_string(),
                (r, None) => format!("{r:?}").to_lowercase(),
            };
            tap.finish(&why, by_client && outcome.0 == CloseReason::Eof);
        }
    }
    // Who closed first, when both sides ended by themselves.
    let detail = outcome.1.or_else(|| {
        (outcome.0 == CloseReason::Eof).then(|| match first_close {
            Some(Direction::Upstream) => "the client closed first".to_string(),
            _ => "the server closed first".to_string(),
        })
    });
    let reason = if shared.as_client
        && outcome.0 == CloseReason::Eof
        && first_close == Some(Direction::Upstream)
    {
        CloseReason::Local
    } else {
        outcome.0
    };
    close_event(events, id, &addr, reason, detail, start);
}
