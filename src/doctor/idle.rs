//! Idle policy, on two connections. A new one left quiet (no call, no
//! PING) until the server or the path ends it, or the budget does, then
//! one PING to see if it is still there. And the first connection, after
//! its setup calls: calls after growing quiet gaps, until one goes
//! unanswered (a silent drop) or the connection is ended.
//!
//! Both are needed: servers and proxies time a connection that never
//! made a call differently from one idle after a call. nginx applies
//! keepalive_timeout only after a request (before it, its header timeout);
//! C-core's idle timer, started when the connection opened, restarts
//! in full when a call came meanwhile (a drain from 1x to 2x its idle
//! time after the last call) and is exact on a connection without calls.

use std::time::Duration;

use super::link::{Dialer, GoawaySeen, Link};
use super::setup::UNKNOWN_METHOD;
use super::Budget;

/// What the quiet connection saw.
pub struct Quiet {
    /// When the quiet began: the connection was READY (ms, run's clock).
    pub ready_ms: f64,
    pub goaway: Option<GoawaySeen>,
    /// When it closed and how (`eof`, `reset`, `goaway`).
    pub closed: Option<(f64, String)>,
    /// How long it was left quiet before the last PING.
    pub quiet_ms: f64,
    /// The last PING got its ACK (`None`: none was sent).
    pub final_ping: Option<bool>,
    /// PINGs the server sent on its own, and over how long.
    pub server_pings: usize,
    pub watched_ms: f64,
}

/// How long to wait for the answer to a probe after a quiet period.
const ANSWER_WAIT: Duration = Duration::from_secs(2);

pub async fn quiet(dialer: &Dialer, budget: &Budget) -> Result<Quiet, String> {
    let link = dialer.open().await.map_err(|e| e.to_string())?;
    let began = link.ready_ms;
    let quiet_for = budget.left().saturating_sub(ANSWER_WAIT);
    let ended = budget
        .run(tokio::time::timeout(quiet_for, link.conn.closed()))
        .await;
    let mut q = Quiet {
        ready_ms: began,
        goaway: None,
        closed: None,
        quiet_ms: budget.now_ms() - began,
        final_ping: None,
        server_pings: 0,
        watched_ms: 0.0,
    };
    match ended {
        Some(Ok(_)) => tokio::time::sleep(Duration::from_millis(20)).await,
        Some(Err(_)) => q.final_ping = Some(link.ping(ANSWER_WAIT).await.is_some()),
        None => {}
    }
    q.goaway = link.goaway();
    q.closed = link.closed();
    // PINGs of the server's keepalive: after the first second (grpc-go
    // sends a flow-control PING at the start) and before any GOAWAY (a
    // graceful drain sends one between its two GOAWAYs).
    let from = began + 1000.0;
    let to = q
        .goaway
        .as_ref()
        .map(|g| g.at_ms)
        .or(q.closed.as_ref().map(|c| c.0))
        .unwrap_or_else(|| budget.now_ms());
    q.server_pings = link.log.server_pings(from, to);
    q.watched_ms = (to - from).max(0.0);
    Ok(q)
}

/// What the calls after growing gaps saw.
#[derive(Default)]
pub struct Ladder {
    /// The longest gap after which a call was answered (s).
    pub last_ok_s: Option<f64>,
    /// The gap after which a call got no answer (s).
    pub unanswered_s: Option<f64>,
    /// The connection ended during this gap (GOAWAY or close).
    pub ended_in_s: Option<f64>,
    /// The next gap did not fit in the budget.
    pub out_of_budget: bool,
    /// When the last answered call ended (ms, run's clock).
    pub last_call_end_ms: f64,
    /// When the connection was READY (ms, run's clock).
    pub ready_ms: f64,
    /// How the connection was ended during a gap.
    pub goaway: Option<GoawaySeen>,
    pub closed: Option<(f64, String)>,
}

/// Calls after quiet gaps of 1, 2, 4, 8, ... s on `link` (the last one as
/// long as the budget allows), until one gets no answer, the connection
/// ends, or the budget does.
pub async fn ladder(link: &Link, budget: &Budget) -> Ladder {
    let mut l = Ladder {
        last_call_end_ms: budget.now_ms(),
        ready_ms: link.ready_ms,
        ..Ladder::default()
    };
    let mut gap = 1.0f64;
    let mut last = 0.0f64;
    loop {
        // The last gap is the longest the budget leaves room for.
        let room = budget.left().saturating_sub(ANSWER_WAIT).as_secs_f64();
        gap = gap.min((room * 10.0).floor() / 10.0);
        if gap <= last {
            l.out_of_budget = true;
            return l;
        }
        last = gap;
        if !budget.sleep(Duration::from_secs_f64(gap)).await {
            l.out_of_budget = true;
            return l;
        }
        if link.goaway().is_some() || link.is_closed() {
            l.ended_in_s = Some(gap);
            l.goaway = link.goaway();
            l.closed = link.closed();
            return l;
        }
        let c = link.call(UNKNOWN_METHOD, &[], ANSWER_WAIT).await;
        if link.goaway().is_some() {
            // The drain came as this call went out: the quiet that ended
            // is the gap before it, from the previous call's end.
            l.ended_in_s = Some(gap);
            l.goaway = link.goaway();
            l.closed = link.closed();
            return l;
        }
        if c.answered() {
            // The quiet starts again; a call that failed (a GOAWAY that
            // crossed it) leaves it where it was.
            l.last_call_end_ms = budget.now_ms();
            l.last_ok_s = Some(gap);
        } else if c.timed_out {
            l.unanswered_s = Some(gap);
            return l;
        } else {
            l.ended_in_s = Some(gap);
            l.goaway = link.goaway();
            l.closed = link.closed();
            return l;
        }
        gap *= 2.0;
    }
}
