//! What a load run records: latencies in HDR histograms (never stored
//! samples), status codes with their messages, failure causes, per
//! connection counts, retries and a per-second series. Each load thread
//! records into a slot of its own (its counters on cache lines of their
//! own, its histograms behind a lock no other thread takes per call), so
//! nothing on a call's path is shared between threads; the once-a-second
//! series, the progress line and the snapshot merge the slots.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::call::Outcome;

/// Distinct messages kept per status code (the rest are counted as "other").
const MAX_MESSAGES_PER_CODE: usize = 20;
/// Latencies are recorded in microseconds, 1 us to 1 hour, 3 significant digits.
const HIST_MAX_US: u64 = 3_600_000_000;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

pub use crate::event::CallCause as Cause;

#[derive(Default)]
struct CodeStat {
    count: u64,
    messages: HashMap<String, u64>,
    other: u64,
}

/// What one call did, beside its outcome.
pub struct Call {
    pub latency: Duration,
    /// The stage it began in (`--stages`).
    pub stage: Option<usize>,
    pub conn: Option<u64>,
    pub cause: Option<Cause>,
}

/// The calls that began in one stage.
#[derive(Clone, Debug)]
pub struct StageStats {
    pub hist: Histogram<u64>,
    pub errors: u64,
}

impl Default for StageStats {
    fn default() -> Self {
        Self {
            hist: new_histogram(),
            errors: 0,
        }
    }
}

struct Shard {
    hist: Histogram<u64>,
    /// By stage (`--stages`), grown as stages begin.
    stages: Vec<StageStats>,
    /// By check (`--expect`): (held, did not hold).
    checks: Vec<(u64, u64)>,
    /// The current second's latencies ([`Recorder::second_percentiles`]).
    second: Histogram<u64>,
    /// By status code number (0..=16).
    codes: Vec<CodeStat>,
    causes: HashMap<Cause, u64>,
    /// By connection id (small, sequential): (calls, failed calls).
    conns: Vec<(u64, u64)>,
    responses: u64,
}

impl Shard {
    fn new() -> Self {
        Self {
            hist: new_histogram(),
            stages: Vec::new(),
            checks: Vec::new(),
            second: new_histogram(),
            codes: (0..=16).map(|_| CodeStat::default()).collect(),
            causes: HashMap::new(),
            conns: Vec::new(),
            responses: 0,
        }
    }
}

/// One second of the run.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct SecondStats {
    pub t_s: u64,
    pub completed: u64,
    pub errors: u64,
    /// Latency percentiles of the calls that ended in this second (ms; 0
    /// when none did).
    #[serde(default)]
    pub p50_ms: f64,
    #[serde(default)]
    pub p90_ms: f64,
    #[serde(default)]
    pub p99_ms: f64,
}

/// A slot's counters, read by the progress line and summed by the report.
#[derive(Default)]
pub struct Counters {
    /// Tickets taken: the calls this slot started or is about to.
    pub started: AtomicU64,
    pub completed: AtomicU64,
    pub errors: AtomicU64,
    pub in_flight: AtomicU64,
    pub retries: AtomicU64,
    pub transparent_retries: AtomicU64,
    /// Calls that began more than one interval (1/rps, at least 5 ms) after
    /// their intended start (--rps).
    pub late: AtomicU64,
    /// Time spent waiting for a stream slot (MAX_CONCURRENT_STREAMS), in us.
    pub slot_wait_us: AtomicU64,
    pub slot_waits: AtomicU64,
}

/// One thread's part of the recorder, on cache lines of its own.
#[repr(align(128))]
pub struct Slot {
    pub c: Counters,
    shard: Mutex<Shard>,
}

pub struct Recorder {
    slots: Vec<Slot>,
    series: Mutex<Vec<SecondStats>>,
}

impl Recorder {
    /// A recorder with a slot for each of `slots` threads.
    pub fn new(slots: usize) -> Self {
        Self {
            slots: (0..slots.max(1))
                .map(|_| Slot {
                    c: Counters::default(),
                    shard: Mutex::new(Shard::new()),
                })
                .collect(),
            series: Mutex::new(Vec::new()),
        }
    }

    /// Slot `i` (wrapping).
    pub fn slot(&self, i: usize) -> &Slot {
        &self.slots[i % self.slots.len()]
    }

    fn sum(&self, f: impl Fn(&Counters) -> &AtomicU64) -> u64 {
        self.slots
            .iter()
            .map(|s| f(&s.c).load(Ordering::Relaxed))
            .sum()
    }

    pub fn started(&self) -> u64 {
        self.sum(|c| &c.started)
    }
    pub fn completed(&self) -> u64 {
        self.sum(|c| &c.completed)
    }
    pub fn errors(&self) -> u64 {
        self.sum(|c| &c.errors)
    }
    pub fn in_flight(&self) -> u64 {
        self.sum(|c| &c.in_flight)
    }
    pub fn retries(&self) -> u64 {
        self.sum(|c| &c.retries)
    }
    pub fn transparent_retries(&self) -> u64 {
        self.sum(|c| &c.transparent_retries)
    }
    pub fn late(&self) -> u64 {
        self.sum(|c| &c.late)
    }
    pub fn slot_waits(&self) -> u64 {
        self.sum(|c| &c.slot_waits)
    }
    pub fn slot_wait_us(&self) -> u64 {
        self.sum(|c| &c.slot_wait_us)
    }

    /// Records one call into slot `slot`.
    pub fn record(&self, slot: usize, o: &Outcome, call: Call) {
        let us = u64::try_from(call.latency.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, HIST_MAX_US);
        let failed = !o.ok();
        let slot = self.slot(slot);
        if let Ok(mut s) = slot.shard.lock() {
            let _ = s.hist.record(us);
            let _ = s.second.record(us);
            if let Some(i) = call.stage {
                if i >= s.stages.len() {
                    s.stages.resize_with(i + 1, StageStats::default);
                }
                let _ = s.stages[i].hist.record(us);
                s.stages[i].errors += u64::from(failed);
            }
            s.responses += o.responses;
            let (held, not) = o.checks;
            if held | not != 0 {
                let n = 64 - (held | not).leading_zeros() as usize;
                if s.checks.len() < n {
                    s.checks.resize(n, (0, 0));
                }
                for (i, c) in s.checks.iter_mut().enumerate() {
                    c.0 += (held >> i) & 1;
                    c.1 += (not >> i) & 1;
                }
            }
            let Some(c) = s.codes.get_mut(o.code as usize) else {
                return;
            };
            c.count += 1;
            if failed {
                if c.messages.contains_key(&o.message) || c.messages.len() < MAX_MESSAGES_PER_CODE {
                    *c.messages.entry(o.message.clone()).or_default() += 1;
                } else {
                    c.other += 1;
                }
            }
            if let Some(cause) = call.cause {
                *s.causes.entry(cause).or_default() += 1;
            }
            if let Some(id) = call.conn.and_then(|c| usize::try_from(c).ok()) {
                if id >= s.conns.len() {
                    s.conns.resize(id + 1, (0, 0));
                }
                s.conns[id].0 += 1;
                s.conns[id].1 += u64::from(failed);
            }
        }
        slot.c.completed.fetch_add(1, Ordering::Relaxed);
        if failed {
            slot.c.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// p50, p90 and p99 (ms) of the calls that ended since the last call
    /// of this, which starts the next second.
    pub fn second_percentiles(&self) -> (f64, f64, f64) {
        let mut h = new_histogram();
        for slot in &self.slots {
            if let Ok(mut s) = slot.shard.lock() {
                let _ = h.add(&s.second);
                s.second.reset();
            }
        }
        if h.is_empty() {
            return (0.0, 0.0, 0.0);
        }
        let q = |q: f64| h.value_at_quantile(q) as f64 / 1e3;
        (q(0.5), q(0.9), q(0.99))
    }

    /// The last whole second of the run, when one has ended.
    pub fn last_second(&self) -> Option<SecondStats> {
        self.series.lock().ok().and_then(|v| v.last().cloned())
    }

    /// Adds the second that just ended (called once a second).
    pub fn push_second(&self, s: SecondStats) {
        if let Ok(mut v) = self.series.lock() {
            v.push(s);
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let mut snap = Snapshot {
            hist: new_histogram(),
            ..Snapshot::default()
        };
        for slot in &self.slots {
            let Ok(s) = slot.shard.lock() else { continue };
            let _ = snap.hist.add(&s.hist);
            if snap.stages.len() < s.stages.len() {
                snap.stages.resize_with(s.stages.len(), StageStats::default);
            }
            if snap.checks.len() < s.checks.len() {
                snap.checks.resize(s.checks.len(), (0, 0));
            }
            for (all, c) in snap.checks.iter_mut().zip(&s.checks) {
                all.0 += c.0;
                all.1 += c.1;
            }
            for (all, st) in snap.stages.iter_mut().zip(&s.stages) {
                let _ = all.hist.add(&st.hist);
                all.errors += st.errors;
            }
            snap.responses += s.responses;
            for (i, c) in s.codes.iter().enumerate().filter(|(_, c)| c.count > 0) {
                let code = tonic::Code::from_i32(i as i32);
                let e = snap
                    .codes
                    .entry(crate::rpc::code_name(code).to_string())
                    .or_default();
                e.count += c.count;
                e.other += c.other;
                for (m, n) in &c.messages {
                    *e.messages.entry(m.clone()).or_default() += n;
                }
            }
            for (cause, n) in &s.causes {
                *snap.causes.entry(cause.clone()).or_default() += n;
            }
            for (id, (calls, fails)) in s.conns.iter().enumerate().filter(|(_, c)| c.0 > 0) {
                let e = snap.conns.entry(id as u64).or_default();
                e.0 += calls;
                e.1 += fails;
            }
        }
        // Each shard kept up to the cap: keep the most frequent overall.
        for c in snap.codes.values_mut() {
            if c.messages.len() > MAX_MESSAGES_PER_CODE {
                let mut all: Vec<(String, u64)> =
                    std::mem::take(&mut c.messages).into_iter().collect();
                all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                for (i, (message, n)) in all.into_iter().enumerate() {
                    if i < MAX_MESSAGES_PER_CODE {
                        c.messages.insert(message, n);
                    } else {
                        c.other += n;
                    }
                }
            }
        }
        snap.series = self.series.lock().map(|v| v.clone()).unwrap_or_default();
        snap
    }
}

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct CodeSummary {
    pub count: u64,
    pub messages: BTreeMap<String, u64>,
    /// Failures whose message was not kept (too many distinct ones).
    pub other: u64,
}

/// Everything recorded, merged.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub hist: Histogram<u64>,
    /// By stage (`--stages`): the calls that began in each.
    pub stages: Vec<StageStats>,
    /// By check (`--expect`): (held, did not hold).
    pub checks: Vec<(u64, u64)>,
    pub codes: BTreeMap<String, CodeSummary>,
    pub causes: BTreeMap<Cause, u64>,
    pub conns: BTreeMap<u64, (u64, u64)>,
    pub responses: u64,
    pub series: Vec<SecondStats>,
}

impl Default for Snapshot {
    fn default() -> Self {
        Self {
            hist: new_histogram(),
            stages: Vec::new(),
            checks: Vec::new(),
            codes: BTreeMap::new(),
            causes: BTreeMap::new(),
            conns: BTreeMap::new(),
            responses: 0,
            series: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(code: tonic::Code, msg: &str) -> Outcome {
        Outcome::local(code, msg.into())
    }

    #[test]
    fn merges_shards_and_caps_messages() {
        let r = Recorder::new(4);
        for i in 0..100u64 {
            r.record(
                i as usize,
                &outcome(tonic::Code::Ok, ""),
                Call {
                    latency: Duration::from_millis(i + 1),
                    stage: Some(0),
                    conn: Some(1),
                    cause: None,
                },
            );
        }
        for i in 0..50 {
            r.record(
                i,
                &outcome(tonic::Code::Unavailable, &format!("m{i}")),
                Call {
                    latency: Duration::from_millis(5),
                    stage: Some(1),
                    conn: Some(2),
                    cause: Some(Cause::ConnectionLost),
                },
            );
        }
        let s = r.snapshot();
        assert_eq!(s.hist.len(), 150);
        // 1..=100 ms and 50 x 5 ms: the 75th of 150 values is 25 ms.
        let p50 = s.hist.value_at_quantile(0.5) as f64;
        assert!((p50 - 25_000.0).abs() < 100.0, "{p50}");
        assert_eq!(s.codes["OK"].count, 100);
        let u = &s.codes["UNAVAILABLE"];
        assert_eq!(u.count, 50);
        assert_eq!(u.messages.len(), MAX_MESSAGES_PER_CODE);
        assert_eq!(u.other, 30);
        assert_eq!(s.conns[&2], (50, 50));
        assert_eq!(s.causes[&Cause::ConnectionLost], 50);
        assert_eq!(s.stages.len(), 2);
        assert_eq!((s.stages[0].hist.len(), s.stages[0].errors), (100, 0));
        assert_eq!((s.stages[1].hist.len(), s.stages[1].errors), (50, 50));
        assert_eq!(r.errors(), 50);
    }
}
