//! One task per accepted connection: serves it with hyper's HTTP/2 server
//! over a [`FrameIo`] tap and manages it as gRFC A9 and A8 say, with
//! grpc-go's behaviour where the specs leave room:
//!
//! - MAX_CONNECTION_IDLE: no active stream for that long -> graceful drain
//!   with debug data `max_idle`.
//! - MAX_CONNECTION_AGE (+-10% jitter) -> drain with `max_age`; then, after
//!   MAX_CONNECTION_AGE_GRACE, close hard whatever is still running.
//! - Keepalive: nothing read for `keepalive_time` -> PING; still nothing
//!   read `keepalive_timeout` later -> close.
//! - Ping enforcement lives in the tap (`super::tap`).
//!
//! A drain is hyper's graceful shutdown (GOAWAY 2^31-1 + PING, then GOAWAY
//! with the last processed stream once the PING is acked); the tap adds the
//! reason as debug data to both GOAWAYs, as grpc-go does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::time::sleep_until_opt;

use super::config::{IdleDrain, ServerConfig};
use super::streams::CountStreams;
use super::tap::{ConnState, PingPolicy, ServerTap, KEEPALIVE_PING};
use super::Stop;
use crate::event::{CloseReason, EventKind, EventSink};
use crate::h2wire::{ControlFrame, FrameIo, Injector, Role};

/// What a connection task needs from its server.
#[derive(Clone)]
pub struct ConnCtx {
    pub cfg: Arc<ServerConfig>,
    pub routes: tonic::service::Routes,
    pub http2: http2::Builder<TokioExecutor>,
    pub events: EventSink,
    pub stop: watch::Receiver<Stop>,
}

/// The +-10% jitter grpc-go applies to MaxConnectionAge, so that connections
/// made together do not all drain together.
fn jittered(age: Duration) -> Duration {
    age.mul_f64(0.9 + fastrand::f64() * 0.2)
}

struct Outcome {
    reason: CloseReason,
    error: Option<String>,
    detail: Option<&'static str>,
}

impl Outcome {
    fn local(detail: &'static str) -> Self {
        Self {
            reason: CloseReason::Local,
            error: None,
            detail: Some(detail),
        }
    }
}

/// Reads the result of hyper's connection future.
fn classify(
    res: Result<(), hyper::Error>,
    drain: Option<&'static str>,
    by_tap: Option<&'static str>,
) -> Outcome {
    if let Some(detail) = by_tap {
        return Outcome {
            reason: CloseReason::Goaway,
            error: None,
            detail: Some(detail),
        };
    }
    match res {
        Ok(()) => Outcome {
            reason: if drain.is_some() {
                CloseReason::Goaway
            } else {
                CloseReason::Eof
            },
            error: None,
            detail: drain,
        },
        Err(e) => {
            let io_kind = std::error::Error::source(&e)
                .and_then(|s| s.downcast_ref::<std::io::Error>())
                .map(|io| io.kind());
            let reason = match io_kind {
                Some(std::io::ErrorKind::ConnectionReset) => CloseReason::Reset,
                _ if drain.is_some() => CloseReason::Goaway,
                _ => CloseReason::Error,
            };
            Outcome {
                reason,
                error: Some(crate::event::error_chain(&e)),
                detail: drain,
            }
        }
    }
}

/// The immediate idle close: one GOAWAY(NO_ERROR, the last stream
/// processed, `max_idle`), then the socket is shut once it is written. A
/// stream the client opened after that id was never processed. Not done
/// (false) when a stream was opened since the connection became idle.
fn close_now(
    state: &ConnState,
    injector: &Injector,
    events: &EventSink,
    conn: u64,
    peer: &Arc<str>,
) -> bool {
    let Some(last) = state.idle_last_stream() else {
        return false;
    };
    if !state.claim_close("max_idle") {
        return false;
    }
    events.emit(
        Some(conn),
        Some(peer.clone()),
        EventKind::Drain {
            reason: crate::event::DrainReason::MaxIdle,
        },
    );
    injector.inject(
        ControlFrame::GoAway {
            last_stream_id: last,
            code: crate::h2wire::ErrorCode::NO_ERROR,
            debug: bytes::Bytes::from_static(b"max_idle"),
        }
        .encode(),
    );
    injector.close_after_flush();
    true
}

pub async fn serve<IO>(io: IO, conn: u64, peer: SocketAddr, mut ctx: ConnCtx)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let cfg = ctx.cfg.clone();
    let peer: Arc<str> = peer.to_string().into();
    let state = Arc::new(ConnState::new());
    let injector = Injector::new();
    let tap = ServerTap::new(
        conn,
        peer.clone(),
        state.clone(),
        ctx.events.clone(),
        injector.clone(),
        PingPolicy {
            min_time: cfg.keepalive_min_time,
            permit_without_stream: cfg.keepalive_permit_without_stream,
        },
    );
    let io = FrameIo::with_injector(io, Role::Server, tap, &injector);
    let svc = CountStreams {
        inner: ctx.routes.clone(),
        state: state.clone(),
        conn,
    };
    let hyper_conn = ctx
        .http2
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(svc));
    tokio::pin!(hyper_conn);

    let start = Instant::from_std(state.start());
    let age_at = cfg.max_connection_age.map(|a| start + jittered(a));
    let mut drain: Option<&'static str> = None;
    let mut hard_close_at: Option<Instant> = None;
    let mut ka_next = start + cfg.keepalive_time;
    let mut ka_prev_read = start;
    let mut ka_ping_sent: Option<Instant> = None;
    let mut stop_open = true;

    // A drain: hyper's graceful shutdown, with the reason as GOAWAY debug data.
    macro_rules! start_drain {
        ($reason:expr) => {{
            let why: crate::event::DrainReason = $reason;
            let reason = why.as_str();
            state.set_drain_debug(reason);
            ctx.events.emit(
                Some(conn),
                Some(peer.clone()),
                EventKind::Drain { reason: why },
            );
            hyper_conn.as_mut().graceful_shutdown();
            drain = Some(reason);
        }};
    }

    let mut opened_while_idle: Option<Instant> = None;
    let mut idle_not_before: Option<Instant> = None;
    let outcome = loop {
        if state.active_streams() > 0 {
            opened_while_idle = None;
            idle_not_before = None;
        }
        let idle_at = match (drain, cfg.max_connection_idle) {
            (None, Some(max)) => state.idle_since().map(|s| {
                (Instant::from_std(s) + max).max(idle_not_before.unwrap_or(Instant::now()))
            }),
            _ => None,
        };
        tokio::select! {
            res = hyper_conn.as_mut() => {
                let by_tap = state.closed_by_tap.lock().ok().and_then(|c| *c);
                break classify(res, drain, by_tap);
            }
            _ = sleep_until_opt(idle_at) => {
                // Still idle? (A stream may have started since.)
                if let (Some(since), Some(max)) = (state.idle_since(), cfg.max_connection_idle) {
                    if Instant::from_std(since) + max <= Instant::now() {
                        match cfg.idle_drain {
                            IdleDrain::Graceful => start_drain!(crate::event::DrainReason::MaxIdle),
                            IdleDrain::Immediate => {
                                if close_now(&state, &injector, &ctx.events, conn, &peer) {
                                    drain = Some("max_idle");
                                } else {
                                    // A stream read but not started yet: it
                                    // starts within moments (or was reset).
                                    let since = *opened_while_idle.get_or_insert_with(Instant::now);
                                    if since.elapsed() > Duration::from_millis(100) {
                                        state.settle_idle();
                                        opened_while_idle = None;
                                    }
                                    idle_not_before = Some(Instant::now() + Duration::from_millis(5));
                                }
                            }
                        }
                    }
                }
            }
            _ = state.idle.notified(), if idle_at.is_none() && drain.is_none() && cfg.max_connection_idle.is_some() => {}
            _ = sleep_until_opt(age_at), if drain.is_none() => {
                start_drain!(crate::event::DrainReason::MaxAge);
                hard_close_at = cfg.max_connection_age_grace.map(|g| Instant::now() + g);
            }
            _ = sleep_until_opt(hard_close_at) => break Outcome::local("max_age_grace"),
            _ = tokio::time::sleep_until(ka_next) => {
                let last_read = Instant::from_std(state.last_read());
                if last_read > ka_prev_read {
                    ka_prev_read = last_read;
                    ka_ping_sent = None;
                    ka_next = last_read + cfg.keepalive_time;
                    continue;
                }
                let now = Instant::now();
                match ka_ping_sent {
                    Some(sent) if now >= sent + cfg.keepalive_timeout => {
                        break Outcome {
                            reason: CloseReason::KeepaliveTimeout,
                            error: None,
                            detail: Some("keepalive ping not acknowledged"),
                        };
                    }
                    Some(sent) => ka_next = sent + cfg.keepalive_timeout,
                    None => {
                        injector.inject(ControlFrame::Ping { ack: false, data: KEEPALIVE_PING }.encode());
                        ka_ping_sent = Some(now);
                        ka_next = now + cfg.keepalive_time.min(cfg.keepalive_timeout);
                    }
                }
            }
            changed = ctx.stop.changed(), if stop_open => {
                let stop = if changed.is_ok() { *ctx.stop.borrow_and_update() } else { Stop::Now };
                stop_open = changed.is_ok();
                match stop {
                    Stop::Running => {}
                    Stop::Graceful => if drain.is_none() {
                        start_drain!(crate::event::DrainReason::GracefulStop);
                    },
                    Stop::Now => break Outcome::local("forced_stop"),
                }
            }
        }
    };
    ctx.events.emit(
        Some(conn),
        Some(peer),
        EventKind::Closed {
            reason: outcome.reason,
            error: outcome.error,
            detail: outcome.detail.map(str::to_string),
            lifetime_ms: state.start().elapsed().as_secs_f64() * 1e3,
            streams: state.total_streams(),
        },
    );
}
