//! The load engine: a thread's workers share its ticket counter and call
//! when [`Pace`] says (closed loop, constant rate, stages). Retries (gRFC
//! A6) and transparent retries of streams the server never processed
//! happen inside one call's deadline.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::call::{self, Outcome};
use super::pace::Pace;
pub use super::pace::Share;
pub use super::plan::LoadPlan;
use super::stats::{Call, Cause, Counters, Recorder, SecondStats};
use super::template::Fill;
use crate::client::conn::Conn;
use crate::client::Channel;

/// Transparent retries of never-processed streams per call, at most.
const MAX_TRANSPARENT_RETRIES: u32 = 10;

/// How the run went, beside what the recorder holds.
#[derive(Clone, Debug)]
pub struct RunInfo {
    pub elapsed: Duration,
    pub interrupted: bool,
}

fn cause_of(o: &Outcome, conn: Option<&Arc<Conn>>) -> Option<Cause> {
    if o.ok() {
        return None;
    }
    if o.code == tonic::Code::DeadlineExceeded {
        return Some(Cause::Deadline);
    }
    if let Some(status) = o.http_status {
        return Some(Cause::Http { status });
    }
    if let (Some(code), false) = (o.reset, o.never_processed) {
        return Some(Cause::Reset { code });
    }
    let goaway = conn.and_then(|c| c.shared.goaway());
    if o.transport {
        if o.never_processed {
            return Some(Cause::NeverProcessed);
        }
        return Some(match goaway {
            Some(g) => Cause::Draining {
                debug: g.debug_text(),
            },
            None => Cause::ConnectionLost,
        });
    }
    if conn.is_none() {
        return Some(Cause::NoConnection);
    }
    // UNAVAILABLE on a connection the server is draining: C-core ends the
    // calls its max-age grace cuts with trailers `14 "max connection age"`.
    if let (tonic::Code::Unavailable, Some(g)) = (o.code, goaway) {
        return Some(Cause::DrainEnded {
            debug: g.debug_text(),
        });
    }
    Some(Cause::Status { code: o.code })
}

/// A worker's connection between calls (`LoadPlan::sticky`), with the
/// channel's READY generation when it was picked.
type Home = Option<(u64, Arc<Conn>)>;

/// The worker's own connection, when it may still be used.
fn home_conn(home: &Home, channel: &Channel) -> Option<Arc<Conn>> {
    let (gen, conn) = home.as_ref()?;
    (*gen == channel.ready_generation() && conn.usable() && conn.has_free_slot())
        .then(|| conn.clone())
}

/// How long a call waited for a stream slot (MAX_CONCURRENT_STREAMS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Queued {
    No,
    /// More of its deadline than it had left when it got one.
    Mostly,
    /// Until its deadline: it never got one.
    Expired,
}

/// One attempt on `conn`: a stream slot in turn, then the call, within
/// the call's deadline.
async fn on_conn(
    conn: &Arc<Conn>,
    plan: &LoadPlan,
    rec: &Counters,
    fill: &mut Fill<'_>,
    deadline: Option<Instant>,
) -> (Outcome, Queued) {
    let mut queued = Queued::No;
    // The permit is held until the call ends.
    let _slot = match conn.try_slot() {
        Some(p) => Some(p),
        None => {
            let t0 = Instant::now();
            let p = match deadline {
                Some(d) => tokio::time::timeout_at(d, conn.wait_slot())
                    .await
                    .ok()
                    .flatten(),
                None => conn.wait_slot().await,
            };
            rec.slot_waits.fetch_add(1, Ordering::Relaxed);
            let waited = t0.elapsed();
            rec.slot_wait_us
                .fetch_add(waited.as_micros() as u64, Ordering::Relaxed);
            if deadline.is_some_and(|d| waited > d.saturating_duration_since(Instant::now())) {
                queued = Queued::Mostly;
            }
            if p.is_none() && deadline.is_some_and(|d| Instant::now() >= d) {
                let o = Outcome::local(
                    tonic::Code::DeadlineExceeded,
                    "deadline exceeded waiting for a stream slot (MAX_CONCURRENT_STREAMS)".into(),
                );
                return (o, Queued::Expired);
            }
            p
        }
    };
    let o = match deadline {
        Some(d) => match tokio::time::timeout_at(d, call::call(conn, &plan.template, fill)).await {
            Ok(o) => o,
            Err(_) => Outcome::local(
                tonic::Code::DeadlineExceeded,
                "deadline exceeded (client side)".into(),
            ),
        },
        None => call::call(conn, &plan.template, fill).await,
    };
    (o, queued)
}

/// One call with its retries; returns the last attempt's outcome, the
/// connection it ran on, and why it failed.
async fn run_call(
    plan: &LoadPlan,
    channel: &Channel,
    rec: &Counters,
    fill: &mut Fill<'_>,
    deadline: Option<Instant>,
    home: &mut Home,
) -> (Outcome, Option<u64>, Option<Cause>) {
    let mut attempt = 1u32;
    let mut transparent = 0u32;
    loop {
        if plan.redial_unready && channel.state() == crate::connectivity::State::TransientFailure {
            channel.reset_connect_backoff();
        }
        let picked = match home_conn(home, channel) {
            Some(c) => Ok(c),
            None => {
                let gen = channel.ready_generation();
                let p = channel.pick(plan.wait_for_ready, deadline).await;
                if let (Ok(c), true) = (&p, plan.sticky) {
                    *home = Some((gen, c.clone()));
                }
                p
            }
        };
        let (outcome, conn, queued) = match picked {
            Err(s) => (
                Outcome::local(s.code(), s.message().to_string()),
                None,
                Queued::No,
            ),
            Ok(conn) => {
                let (o, queued) = on_conn(&conn, plan, rec, fill, deadline).await;
                if queued == Queued::Expired {
                    return (o, Some(conn.shared.id), Some(Cause::QueuedDeadline));
                }
                (o, Some(conn), queued)
            }
        };
        if outcome.never_processed
            && plan.transparent_retry
            && transparent < MAX_TRANSPARENT_RETRIES
        {
            transparent += 1;
            rec.transparent_retries.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if let Some(p) = &plan.retry {
            if attempt < p.max_attempts && p.retries(outcome.code) {
                let wait = p.backoff(attempt, fill.rng);
                let late = deadline.is_some_and(|d| Instant::now() + wait >= d);
                if !late {
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                    rec.retries.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            }
        }
        let cause = match cause_of(&outcome, conn.as_ref()) {
            Some(Cause::Deadline) if queued == Queued::Mostly => Some(Cause::QueuedDeadline),
            c => c,
        };
        return (outcome, conn.map(|c| c.shared.id), cause);
    }
}

async fn worker(
    local: usize,
    share: Share,
    plan: Arc<LoadPlan>,
    pace: Arc<Pace>,
    channel: Channel,
    rec: Arc<Recorder>,
) {
    // Stopped by abort (see `run_share`): nothing per call waits on a stop
    // signal.
    let id = share.worker(local);
    let mut rng = fastrand::Rng::with_seed(id as u64 ^ 0x9e37_79b9_7f4a_7c15);
    let mut home: Home = None;
    let slot = rec.slot(share.index);
    let c = &slot.c;
    loop {
        let ticket = share.ticket(c.started.fetch_add(1, Ordering::Relaxed));
        let Some(begin) = pace.begin(local, ticket, c).await else {
            return;
        };
        let deadline = plan.timeout.map(|t| Instant::now() + t);
        c.in_flight.fetch_add(1, Ordering::Relaxed);
        let mut fill = Fill {
            call: ticket,
            worker: id,
            rng: &mut rng,
        };
        let (outcome, conn, cause) =
            run_call(&plan, &channel, c, &mut fill, deadline, &mut home).await;
        c.in_flight.fetch_sub(1, Ordering::Relaxed);
        let latency = begin.at.elapsed();
        if let Some(ev) = &plan.events {
            ev.emit(
                conn,
                None,
                crate::event::EventKind::Rpc {
                    method: plan.method.to_string(),
                    code: outcome.code,
                    message: outcome.message.clone(),
                    latency_ms: latency.as_secs_f64() * 1e3,
                    cause: cause.clone(),
                    attempts: Vec::new(),
                },
            );
        }
        let call = Call {
            latency,
            stage: begin.stage,
            conn,
            cause,
        };
        rec.record(share.index, &outcome, call);
    }
}

/// Records how many calls completed and failed in each second, and the
/// latency percentiles of the calls that ended in it.
pub async fn seconds(rec: Arc<Recorder>, start: Instant) {
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let (mut done, mut errs) = (0, 0);
    for t in 1.. {
        tick.tick().await;
        let (d, e) = (rec.completed(), rec.errors());
        let (p50_ms, p90_ms, p99_ms) = rec.second_percentiles();
        rec.push_second(SecondStats {
            t_s: t,
            completed: d - done,
            errors: e - errs,
            p50_ms,
            p90_ms,
            p99_ms,
        });
        (done, errs) = (d, e);
    }
}

/// Runs the plan until its total or duration is reached, or `stop` turns
/// true (the run is then interrupted: calls in flight are abandoned).
pub async fn run(
    plan: LoadPlan,
    channel: Channel,
    rec: Arc<Recorder>,
    stop: watch::Receiver<bool>,
) -> RunInfo {
    let start = Instant::now();
    let series = tokio::spawn(seconds(rec.clone(), start));
    let info = run_share(Arc::new(plan), Share::ALL, channel, rec, stop, start).await;
    series.abort();
    info
}

/// Runs this thread's share of the plan from `start` (the run's clock,
/// the same on every thread) on its own channel.
pub async fn run_share(
    plan: Arc<LoadPlan>,
    share: Share,
    channel: Channel,
    rec: Arc<Recorder>,
    mut stop: watch::Receiver<bool>,
    start: Instant,
) -> RunInfo {
    let pace = Arc::new(Pace::new(&plan, share, start));
    let gate = {
        let pace = pace.clone();
        tokio::spawn(async move { pace.drive().await })
    };
    let workers: Vec<_> = (0..share.part(plan.concurrency.max(1)))
        .map(|local| {
            tokio::spawn(worker(
                local,
                share,
                plan.clone(),
                pace.clone(),
                channel.clone(),
                rec.clone(),
            ))
        })
        .collect();
    let aborts: Vec<_> = workers.iter().map(|w| w.abort_handle()).collect();
    let all = async {
        for w in workers {
            let _ = w.await;
        }
    };
    tokio::select! {
        _ = all => {}
        _ = stop.wait_for(|s| *s) => {
            // Calls in flight are abandoned: the report covers finished ones.
            for a in aborts {
                a.abort();
            }
        }
    }
    gate.abort();
    RunInfo {
        elapsed: start.elapsed(),
        interrupted: *stop.borrow(),
    }
}
