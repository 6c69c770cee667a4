//! When each call begins. In a closed loop a worker starts its next call
//! when the last ends; with `--rps` ticket `i` is due at `start + i / rps`
//! and its latency counts from then, so calls that waited for a free
//! worker show it (coordinated omission corrected); with rate stages the
//! due time follows the schedule's rate the same way; with stages of calls
//! in flight a gate lets only as many of a thread's workers call as the
//! schedule says at the moment. A thread plays its [`Share`] of all this.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::plan::LoadPlan;
use super::stages::{Level, Schedule};
use super::stats::Counters;

/// A call that starts more than one interval (1/rps) after it was due
/// counts as late (--rps): the workers could not keep up. At least this
/// long, as tokio's timers alone may wake a millisecond late.
const LATE_AT_LEAST: Duration = Duration::from_millis(5);

/// How often the gate of stages of calls in flight follows the schedule.
const GATE_TICK: Duration = Duration::from_millis(10);

/// The part of a run one thread plays: thread `index` of `of`. Each thread
/// owns its workers and takes every `of`-th ticket of the run's schedule,
/// so the threads together start the calls one thread would, without
/// sharing a counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    pub index: usize,
    pub of: usize,
}

impl Share {
    /// The whole run on one thread.
    pub const ALL: Share = Share { index: 0, of: 1 };

    /// This thread's part of `n` (workers, connections): as even as can
    /// be, the first threads taking one more.
    pub fn part(&self, n: usize) -> usize {
        n / self.of + usize::from(self.index < n % self.of)
    }

    /// The run's ticket for this thread's `local`-th.
    pub fn ticket(&self, local: u64) -> u64 {
        local * self.of as u64 + self.index as u64
    }

    /// The run's id for this thread's `local`-th worker.
    pub fn worker(&self, local: usize) -> usize {
        local * self.of + self.index
    }
}

/// How many of this thread's workers may call now (stages of calls in
/// flight): read per call without a lock; waited on only by the workers
/// it holds back.
struct Gate {
    open: AtomicUsize,
    changed: watch::Sender<usize>,
}

/// One thread's pacing of a run.
pub(crate) struct Pace {
    start: Instant,
    end: Option<Instant>,
    total: Option<u64>,
    rps: Option<f64>,
    stages: Option<Arc<Schedule>>,
    gate: Option<Gate>,
    share: Share,
}

/// When a call begins and the stage it belongs to.
pub(crate) struct Begin {
    pub(crate) at: Instant,
    pub(crate) stage: Option<usize>,
}

impl Pace {
    pub(crate) fn new(plan: &LoadPlan, share: Share, start: Instant) -> Self {
        let gate = plan
            .stages
            .as_ref()
            .filter(|s| s.level == Level::Concurrency)
            .map(|_| Gate {
                open: AtomicUsize::new(0),
                changed: watch::channel(0).0,
            });
        Self {
            start,
            end: plan.duration.map(|d| start + d),
            total: plan.total,
            rps: plan.rps,
            stages: plan.stages.clone(),
            gate,
            share,
        }
    }

    /// Opens and closes the gate as the schedule says, until the end
    /// (nothing to do without stages of calls in flight).
    pub(crate) async fn drive(&self) {
        let (Some(gate), Some(s)) = (&self.gate, &self.stages) else {
            return;
        };
        let mut tick = tokio::time::interval_at(self.start, GATE_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = Instant::now();
            // After the end every worker is let go, to find the run over.
            let open = if self.end.is_some_and(|e| now >= e) {
                usize::MAX
            } else {
                let level = s.level_at(now - self.start).round() as usize;
                self.share.part(level)
            };
            if gate.open.swap(open, Ordering::Relaxed) != open {
                gate.changed.send_replace(open);
            }
            if open == usize::MAX {
                return;
            }
        }
    }

    /// Waits until this thread's worker `local` may make the call of
    /// `ticket`; `None` when the run is over.
    pub(crate) async fn begin(&self, local: usize, ticket: u64, c: &Counters) -> Option<Begin> {
        if self.total.is_some_and(|t| ticket >= t) {
            return None;
        }
        if let Some(g) = &self.gate {
            if local >= g.open.load(Ordering::Relaxed) {
                let mut rx = g.changed.subscribe();
                let _ = rx.wait_for(|open| *open > local).await;
            }
        }
        let due = match (&self.stages, self.rps) {
            (Some(s), _) if s.level == Level::Rate => {
                let at = s.due(ticket)?;
                let r = s.level_at(at).max(1e-3);
                Some((self.start + at, r))
            }
            (_, Some(r)) => Some((self.start + Duration::from_secs_f64(ticket as f64 / r), r)),
            _ => None,
        };
        let at = match due {
            Some((due, rate)) => self.wait_due(due, rate, c).await?,
            None => {
                let now = Instant::now();
                self.end.is_none_or(|e| now < e).then_some(now)?
            }
        };
        let stage = self
            .stages
            .as_ref()
            .and_then(|s| s.stage_at(at - self.start))
            .map(|(i, _)| i);
        Some(Begin { at, stage })
    }

    /// Sleeps until `due`; counts the call late when no worker was free
    /// for it in time. `None`: the run ends first.
    async fn wait_due(&self, due: Instant, rate: f64, c: &Counters) -> Option<Instant> {
        // The run ends at its duration even with calls still due: those
        // count as not started (the rate was not held).
        if self.end.is_some_and(|e| due >= e || Instant::now() >= e) {
            return None;
        }
        tokio::time::sleep_until(due).await;
        // Late: no worker was free (tokio's timers alone may wake a
        // millisecond after the due time).
        let interval = Duration::from_secs_f64((1.0 / rate).min(1.0));
        if Instant::now() > due + LATE_AT_LEAST.max(interval) {
            c.late.fetch_add(1, Ordering::Relaxed);
        }
        Some(due)
    }
}
