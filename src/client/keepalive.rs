//! Running one client connection to its end: the driver future, client
//! keepalive pings beside it (gRFC A8), and the `closed` event that says
//! who ended the connection and why.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::tap::{ConnShared, KEEPALIVE_PING};
use super::wire::{Ending, WireError};
use crate::event::{CloseReason, EventKind, HeldSink};
use crate::h2wire::{ControlFrame, Injector};
use crate::time::sleep_until_opt;

/// Client keepalive (gRFC A8).
#[derive(Clone, Copy, Debug)]
pub struct KeepaliveConfig {
    /// Ping after this long without reading anything; `None`: never.
    pub time: Option<Duration>,
    /// Close when nothing is read this long after a ping.
    pub timeout: Duration,
    /// Ping even when no stream is open.
    pub permit_without_stream: bool,
}

impl Default for KeepaliveConfig {
    fn default() -> Self {
        Self {
            time: None,
            timeout: Duration::from_secs(20),
            permit_without_stream: false,
        }
    }
}

/// How a connection ended.
#[derive(Clone, Debug)]
pub struct CloseInfo {
    pub reason: CloseReason,
    pub error: Option<String>,
    pub detail: Option<String>,
}

/// Who ended the connection: `local` when grpcdoc did (its own GOAWAY, a
/// protocol error of the server's that grpcdoc answered with GOAWAY);
/// `eof`, `reset` and `goaway` when the peer or the network did.
fn classify(res: Result<Ending, WireError>, shared: &ConnShared) -> CloseInfo {
    let goaway = shared.goaway();
    let detail = goaway.map(|g| g.debug_text()).filter(|d| !d.is_empty());
    let (reason, error) = match res {
        Ok(Ending::Local) => (CloseReason::Local, None),
        Ok(Ending::AfterGoaway) => (CloseReason::Goaway, None),
        Ok(Ending::PeerClosed) if shared.goaway().is_some() => (CloseReason::Goaway, None),
        Ok(Ending::PeerClosed) => (CloseReason::Eof, None),
        Err(e @ WireError::Protocol { .. }) => (CloseReason::Local, Some(e.to_string())),
        Err(WireError::Io(e)) => {
            let reason = match e.kind() {
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => CloseReason::Reset,
                _ if shared.goaway().is_some() => CloseReason::Goaway,
                _ => CloseReason::Error,
            };
            (reason, Some(e.to_string()))
        }
    };
    CloseInfo {
        reason,
        error,
        detail,
    }
}

/// Runs the connection until it ends; sends keepalive pings as gRFC A8 says:
/// after `time` without reading anything (and, unless permitted, only while
/// a stream is open), and closes when nothing is read `timeout` after one.
pub async fn drive(
    conn: impl std::future::Future<Output = Result<Ending, WireError>>,
    shared: Arc<ConnShared>,
    injector: Injector,
    ka: KeepaliveConfig,
    events: HeldSink,
    closed_tx: watch::Sender<Option<CloseInfo>>,
) {
    tokio::pin!(conn);
    let start = Instant::now();
    let mut ka_next = ka.time.map(|t| start + t);
    let mut ping_sent: Option<Instant> = None;
    let info = loop {
        tokio::select! {
            res = conn.as_mut() => break classify(res, &shared),
            _ = sleep_until_opt(ka_next) => {
                let (Some(time), now) = (ka.time, Instant::now()) else { continue };
                let last_read = Instant::from_std(shared.last_read());
                match ping_sent {
                    Some(sent) if last_read >= sent => {
                        ping_sent = None;
                        ka_next = Some(last_read + time);
                    }
                    Some(sent) if now >= sent + ka.timeout => {
                        break CloseInfo {
                            reason: CloseReason::KeepaliveTimeout,
                            error: None,
                            detail: Some(format!(
                                "keepalive ping not acknowledged within {}",
                                humantime::format_duration(ka.timeout)
                            )),
                        };
                    }
                    Some(sent) => ka_next = Some(sent + ka.timeout),
                    None if now < last_read + time => ka_next = Some(last_read + time),
                    None if shared.active_streams() == 0 && !ka.permit_without_stream => {
                        // Dormant until a stream is open (A8).
                        ka_next = Some(now + time.min(Duration::from_millis(250)));
                    }
                    None => {
                        injector.inject(ControlFrame::Ping { ack: false, data: KEEPALIVE_PING }.encode());
                        ping_sent = Some(now);
                        // Look again after min(time, timeout), as grpc-go:
                        // an early ack restarts the keepalive clock then.
                        ka_next = Some(now + time.min(ka.timeout));
                    }
                }
            }
        }
    };
    shared.draining.store(true, Ordering::Release);
    events.emit(
        Some(shared.id),
        Some(shared.addr.clone()),
        EventKind::Closed {
            reason: info.reason,
            error: info.error.clone(),
            detail: info.detail.clone(),
            lifetime_ms: start.elapsed().as_secs_f64() * 1e3,
            streams: shared.total_streams(),
        },
    );
    let _ = closed_tx.send(Some(info));
    shared.changed.notify_waiters();
}
