//! The load report as data: built from the recorder's snapshot and the
//! connection events, rendered by `crate::report::load` (human tables) or
//! serialized as the `-o json` report object.

use std::collections::BTreeMap;

use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use serde::Serialize;

use super::failon::{Metric, Threshold};
use super::stages::{Level, Schedule};
use super::stats::{Cause, CodeSummary, SecondStats, Snapshot, StageStats};
use crate::event::{Event, EventKind};
use crate::h2wire::Dir;

#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct Latency {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct CauseRow {
    #[serde(flatten)]
    pub cause: Cause,
    pub count: u64,
    /// The catalogue entry (`grpcdoc explain`), when the cause is a known
    /// failure, and its fix (found again from the cause when read back).
    #[serde(skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub id: Option<crate::catalogue::EntryId>,
    #[serde(skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub fix: Option<&'static str>,
    pub diagnosis: String,
}

impl CauseRow {
    /// A row per cause of failure, most frequent first, with the catalogue
    /// entry and its fix where the cause is a known failure.
    fn of(s: &Snapshot) -> Vec<Self> {
        let mut causes: Vec<Self> = s
            .causes
            .iter()
            .map(|(c, n)| {
                let id = crate::diagnose::cause_id(c);
                Self {
                    cause: c.clone(),
                    count: *n,
                    id,
                    fix: id.map(|i| crate::catalogue::entry(i).fix),
                    diagnosis: crate::diagnose::cause_detail(c),
                }
            })
            .collect();
        causes.sort_by_key(|c| std::cmp::Reverse(c.count));
        causes
    }
}

/// One connection of the run, from its events and the calls on it.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct ConnRow {
    pub conn: u64,
    pub addr: String,
    pub rpcs: u64,
    pub errors: u64,
    /// "CODE debug" -> count, GOAWAYs received.
    pub goaways: BTreeMap<String, u32>,
    pub lifetime_ms: f64,
    /// How it ended, if it did during the run.
    pub closed: Option<String>,
    #[serde(skip)]
    opened_ms: f64,
}

/// Closed connections kept row by row; older ones are folded into one row,
/// so a run of hours against a server that recycles connections stays small.
const MAX_CLOSED_ROWS: usize = 1000;

/// Closed connections folded into one row.
#[derive(Debug, Default)]
struct Folded {
    count: u64,
    lifetime_ms: f64,
    goaways: BTreeMap<String, u32>,
}

/// Connection facts gathered from the channel's events.
#[derive(Debug, Default)]
pub struct ConnEvents {
    rows: BTreeMap<u64, ConnRow>,
    /// Closed rows, oldest first.
    closed: std::collections::VecDeque<u64>,
    folded: Folded,
    pub connects_failed: u64,
    pub dropped: u64,
}

impl ConnEvents {
    pub fn record(&mut self, e: &Event) {
        // A failed attempt has no connection id: count it before the rows.
        if let EventKind::Connect {
            result: crate::event::ConnectResult::Error,
            ..
        } = e.kind
        {
            self.connects_failed += 1;
            return;
        }
        let Some(id) = e.conn else {
            if let EventKind::Dropped { count } = e.kind {
                self.dropped += count;
            }
            return;
        };
        match &e.kind {
            EventKind::Connect { .. } => {
                let row = self.rows.entry(id).or_default();
                row.conn = id;
                row.addr = e.addr.as_deref().unwrap_or_default().to_string();
                row.opened_ms = e.t_ms;
            }
            EventKind::Goaway {
                dir: Dir::Received,
                code,
                debug,
                ..
            } => {
                let key = crate::event::goaway_key(*code, debug);
                let row = self.rows.entry(id).or_default();
                crate::event::count_capped(&mut row.goaways, key, 1, 8);
            }
            EventKind::Closed {
                reason,
                detail,
                error,
                lifetime_ms,
                ..
            } => {
                let row = self.rows.entry(id).or_default();
                row.lifetime_ms = *lifetime_ms;
                // Why it ended: the GOAWAY's debug data, else the error.
                row.closed = Some(match detail.as_ref().or(error.as_ref()) {
                    Some(d) => format!("{} ({d})", reason.as_str()),
                    None => reason.as_str().to_string(),
                });
                self.closed.push_back(id);
                if self.closed.len() > MAX_CLOSED_ROWS {
                    self.fold_oldest();
                }
            }
            _ => {}
        }
    }
}

impl ConnEvents {
    fn fold_oldest(&mut self) {
        let Some(row) = self.closed.pop_front().and_then(|id| self.rows.remove(&id)) else {
            return;
        };
        self.folded.count += 1;
        self.folded.lifetime_ms += row.lifetime_ms;
        for (k, n) in row.goaways {
            crate::event::count_capped(&mut self.folded.goaways, k, n, 32);
        }
    }

    /// The table: a row per connection, the folded ones first as one row
    /// (conn 0) whose calls are those of every connection not listed.
    fn table(&self, per_conn: &BTreeMap<u64, (u64, u64)>, elapsed_ms: f64) -> Vec<ConnRow> {
        // A connection that never became READY (its handshake failed; a
        // failed connect) has events but no row of its own.
        let mut rows: Vec<ConnRow> = self
            .rows
            .values()
            .filter(|r| r.conn != 0)
            .cloned()
            .collect();
        for r in &mut rows {
            if let Some((calls, fails)) = per_conn.get(&r.conn) {
                r.rpcs = *calls;
                r.errors = *fails;
            }
            if r.closed.is_none() {
                r.lifetime_ms = elapsed_ms - r.opened_ms;
            }
        }
        if self.folded.count > 0 {
            let (calls, fails) = per_conn
                .iter()
                .filter(|(id, _)| !self.rows.contains_key(id))
                .fold((0, 0), |a, (_, c)| (a.0 + c.0, a.1 + c.1));
            rows.insert(
                0,
                ConnRow {
                    conn: 0,
                    addr: format!("{} earlier connections", self.folded.count),
                    rpcs: calls,
                    errors: fails,
                    goaways: self.folded.goaways.clone(),
                    lifetime_ms: self.folded.lifetime_ms / self.folded.count as f64,
                    closed: Some("closed (mean lifetime)".into()),
                    opened_ms: 0.0,
                },
            );
        }
        rows
    }
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct RateCheck {
    pub target: f64,
    pub achieved: f64,
    /// Calls that started more than one interval (1/rps, at least 5 ms)
    /// after they were due.
    pub late_calls: u64,
    /// Calls that were due within the run but never started.
    pub not_started: u64,
    /// Calls started within the judged time.
    #[serde(default)]
    pub started: u64,
    pub held: bool,
}

impl RateCheck {
    /// Whether `calls` started in `seconds` held the rate `target`: at
    /// least 95% of the due calls started and at most 1% of them late.
    pub fn judge(target: f64, calls: u64, late: u64, seconds: f64) -> Self {
        let achieved = calls as f64 / seconds.max(1e-9);
        Self {
            target,
            achieved,
            late_calls: late,
            not_started: ((target * seconds).floor() as u64).saturating_sub(calls),
            started: calls,
            held: achieved >= target * 0.95 && late as f64 <= calls as f64 * 0.01,
        }
    }

    /// Which of the two rules failed, with its figure.
    pub fn why_not_held(&self) -> String {
        let mut why = Vec::new();
        if self.achieved < self.target * 0.95 {
            why.push(format!(
                "{:.1}/s achieved (under 95% of it), {} due calls never started",
                self.achieved, self.not_started
            ));
        }
        if self.late_calls as f64 > self.started as f64 * 0.01 {
            why.push(format!(
                "{} calls started late (over 1% of the calls started)",
                self.late_calls
            ));
        }
        if why.is_empty() {
            why.push(format!("{:.1}/s achieved", self.achieved));
        }
        why.join("; ")
    }
}

/// One `--expect`: on how many calls it held, did not, or was not made
/// (the call failed).
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct CheckRow {
    pub expect: String,
    pub passed: u64,
    pub failed: u64,
    pub not_made: u64,
}

impl CheckRow {
    /// A row per `--expect` (`texts`, in order) from the counts of (held,
    /// did not) of `total` calls.
    pub fn of(texts: &[String], counts: &[(u64, u64)], total: u64) -> Vec<Self> {
        texts
            .iter()
            .enumerate()
            .map(|(i, expect)| {
                let (passed, failed) = counts.get(i).copied().unwrap_or_default();
                Self {
                    expect: expect.clone(),
                    passed,
                    failed,
                    not_made: total.saturating_sub(passed + failed),
                }
            })
            .collect()
    }

    /// Passed of the checks made (0 when none was made).
    pub fn rate(&self) -> f64 {
        let made = self.passed + self.failed;
        if made == 0 {
            0.0
        } else {
            self.passed as f64 / made as f64
        }
    }
}

/// The calls that began in one stage of `--stages`.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct StageRow {
    /// 1-based.
    pub stage: usize,
    pub begins_s: f64,
    pub ends_s: f64,
    /// The target at its start and end (calls in flight, or calls/s).
    pub from: f64,
    pub to: f64,
    /// `in_flight` or `per_second`.
    pub unit: String,
    /// `0:10.0-0:40.0 100 -> 1000 in flight`.
    pub text: String,
    pub calls: u64,
    pub errors: u64,
    /// Calls begun per second of the stage.
    pub rps: f64,
    /// Calls due in it (rate stages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planned: Option<f64>,
    pub latency_ms: Latency,
}

impl StageRow {
    /// A row per stage of `schedule`, from the calls each began.
    pub fn of(schedule: &Schedule, stats: &[StageStats]) -> Vec<Self> {
        let empty = StageStats::default();
        schedule
            .stages
            .iter()
            .enumerate()
            .map(|(i, st)| {
                let got = stats.get(i).unwrap_or(&empty);
                let secs = st.duration.as_secs_f64();
                let calls = got.hist.len();
                Self {
                    stage: i + 1,
                    begins_s: schedule.begins(i).as_secs_f64(),
                    ends_s: (schedule.begins(i) + st.duration).as_secs_f64(),
                    from: st.from,
                    to: st.to,
                    unit: match schedule.level {
                        Level::Concurrency => "in_flight",
                        Level::Rate => "per_second",
                    }
                    .into(),
                    text: schedule.describe(i),
                    calls,
                    errors: got.errors,
                    rps: calls as f64 / secs.max(1e-9),
                    planned: (schedule.level == Level::Rate)
                        .then(|| (st.from + st.to) / 2.0 * secs),
                    latency_ms: Latency::of(&got.hist),
                }
            })
            .collect()
    }
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Cpu {
    pub user_s: f64,
    pub system_s: f64,
    /// grpcdoc's CPU time per call, in microseconds.
    pub per_rpc_us: f64,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct CheckResult {
    pub expr: String,
    pub value: f64,
    pub breached: bool,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct LoadReport {
    pub kind: String,
    /// The report format: reports of one format merge
    /// (`grpcdoc report merge`); 0 when absent (an older grpcdoc).
    #[serde(default)]
    pub format: u32,
    /// When the run started, Unix time in ms: merged series align on it.
    #[serde(default)]
    pub started_unix_ms: f64,
    pub target: String,
    pub method: String,
    pub call_kind: String,
    pub concurrency: usize,
    pub connections: usize,
    /// Threads the run used (`--threads`); 1 in reports from before it.
    #[serde(default = "one")]
    pub threads: usize,
    /// What the run changed from what was asked (threads or connections
    /// raised or lowered), for people.
    #[serde(skip)]
    pub notes: Vec<String>,
    pub duration_ms: f64,
    pub interrupted: bool,
    pub total: u64,
    pub ok: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub rps: f64,
    /// Response messages received (server and bidi streaming count many).
    pub responses: u64,
    pub latency_ms: Latency,
    /// The HDR histogram of latencies in microseconds (V2 deflate, base64),
    /// for merging reports from several machines.
    pub histogram: String,
    pub codes: BTreeMap<String, CodeSummary>,
    pub causes: Vec<CauseRow>,
    pub connections_table: Vec<ConnRow>,
    pub connects_failed: u64,
    /// Calls that failed fast: no READY connection to start them on.
    pub calls_without_connection: u64,
    pub retries: u64,
    pub transparent_retries: u64,
    pub slot_waits: u64,
    pub slot_wait_ms: f64,
    pub rate: Option<RateCheck>,
    pub cpu: Cpu,
    pub series: Vec<SecondStats>,
    /// `--stages`: the schedule and the calls of each stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageRow>,
    /// `--expect`, a row per check.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckRow>,
    pub fail_on: Vec<CheckResult>,
    pub dropped_events: u64,
}

/// What the report needs besides the snapshot.
pub struct RunFacts {
    pub target: String,
    pub method: String,
    pub call_kind: String,
    pub concurrency: usize,
    pub connections: usize,
    pub threads: usize,
    pub notes: Vec<String>,
    pub elapsed_s: f64,
    pub interrupted: bool,
    pub retries: u64,
    pub transparent_retries: u64,
    pub slot_waits: u64,
    pub slot_wait_us: u64,
    pub rps_target: Option<f64>,
    pub late_calls: u64,
    /// The planned duration, when the run had one.
    pub duration_s: Option<f64>,
    pub cpu: (f64, f64),
    pub stages: Option<std::sync::Arc<Schedule>>,
    /// The `--expect` texts, in order.
    pub checks: Vec<String>,
}

/// CPU time used by this process so far: (user, system) seconds.
pub fn cpu_times() -> (f64, f64) {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return (0.0, 0.0);
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(ru.ru_utime), secs(ru.ru_stime))
}

fn one() -> usize {
    1
}

/// The load report's format; `report merge` takes reports of this one.
pub const FORMAT: u32 = 1;

impl Latency {
    /// Percentiles of a histogram of microseconds, in ms.
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1e3;
        if h.is_empty() {
            return Self::default();
        }
        Self {
            min: ms(h.min()),
            mean: h.mean() / 1e3,
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p99_9: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// A histogram as the report carries it: HDR V2 deflate, base64.
pub fn encode_histogram(h: &hdrhistogram::Histogram<u64>) -> String {
    let mut raw = Vec::new();
    match V2DeflateSerializer::new().serialize(h, &mut raw) {
        Ok(_) => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(&raw)
        }
        Err(_) => String::new(),
    }
}

/// The histogram of a report (`histogram`), read back.
pub fn decode_histogram(text: &str) -> Result<hdrhistogram::Histogram<u64>, String> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| format!("the histogram is not base64: {e}"))?;
    let mut d = hdrhistogram::serialization::Deserializer::new();
    d.deserialize(&mut raw.as_slice())
        .map_err(|e| format!("the histogram does not decode: {e:?}"))
}

impl LoadReport {
    pub fn build(
        s: &Snapshot,
        conns: &ConnEvents,
        facts: RunFacts,
        thresholds: &[Threshold],
    ) -> Self {
        let h = &s.hist;
        let total = h.len();
        let ok = s.codes.get("OK").map_or(0, |c| c.count);
        let errors = total - ok;
        let latency_ms = Latency::of(h);
        let histogram = encode_histogram(h);
        let rps = if facts.elapsed_s > 0.0 {
            total as f64 / facts.elapsed_s
        } else {
            0.0
        };
        let rows = conns.table(&s.conns, facts.elapsed_s * 1e3);
        let cpu_total = facts.cpu.0 + facts.cpu.1;
        let started_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64() * 1e3 - facts.elapsed_s * 1e3)
            .unwrap_or(0.0);
        let mut report = Self {
            kind: "load_report".into(),
            format: FORMAT,
            started_unix_ms,
            target: facts.target,
            method: facts.method,
            call_kind: facts.call_kind,
            concurrency: facts.concurrency,
            connections: facts.connections,
            threads: facts.threads,
            notes: facts.notes,
            duration_ms: facts.elapsed_s * 1e3,
            interrupted: facts.interrupted,
            total,
            ok,
            errors,
            error_rate: if total > 0 {
                errors as f64 / total as f64
            } else {
                0.0
            },
            rps,
            responses: s.responses,
            latency_ms,
            histogram,
            codes: s.codes.clone(),
            causes: CauseRow::of(s),
            connections_table: rows,
            connects_failed: conns.connects_failed,
            calls_without_connection: s
                .causes
                .iter()
                .filter(|(c, _)| matches!(c, Cause::NoConnection))
                .map(|(_, n)| *n)
                .sum(),
            retries: facts.retries,
            transparent_retries: facts.transparent_retries,
            slot_waits: facts.slot_waits,
            slot_wait_ms: facts.slot_wait_us as f64 / 1e3,
            // Calls started over the planned time (the last ones' tails do
            // not count against the rate).
            rate: facts.rps_target.map(|target| {
                // An interrupted run is judged on the time it ran, not
                // the plan it did not finish.
                let secs = match facts.duration_s {
                    Some(d) if facts.interrupted => d.min(facts.elapsed_s),
                    Some(d) => d,
                    None => facts.elapsed_s,
                };
                let mut r = RateCheck::judge(target, total, facts.late_calls, secs);
                if facts.duration_s.is_none() {
                    r.not_started = 0;
                }
                r
            }),
            cpu: Cpu {
                user_s: facts.cpu.0,
                system_s: facts.cpu.1,
                per_rpc_us: if total > 0 {
                    cpu_total * 1e6 / total as f64
                } else {
                    0.0
                },
            },
            series: s.series.clone(),
            schedule: facts.stages.as_ref().map(|st| st.text.clone()),
            stages: facts
                .stages
                .as_ref()
                .map(|st| StageRow::of(st, &s.stages))
                .unwrap_or_default(),
            checks: CheckRow::of(&facts.checks, &s.checks, total),
            fail_on: Vec::new(),
            dropped_events: conns.dropped,
        };
        report.fail_on = thresholds
            .iter()
            .map(|t| {
                let value = report.value(&t.metric, h);
                CheckResult {
                    expr: t.text.clone(),
                    value,
                    breached: t.breached(value),
                }
            })
            .collect();
        report
    }

    fn value(&self, m: &Metric, h: &hdrhistogram::Histogram<u64>) -> f64 {
        match m {
            Metric::Quantile(q) if h.is_empty() => {
                let _ = q;
                0.0
            }
            Metric::Quantile(q) => h.value_at_quantile(*q) as f64 / 1e3,
            Metric::Mean => self.latency_ms.mean,
            Metric::Min => self.latency_ms.min,
            Metric::Max => self.latency_ms.max,
            Metric::ErrorRate => self.error_rate,
            Metric::Errors => self.errors as f64,
            Metric::Code(c) => self.codes.get(c).map_or(0.0, |s| s.count as f64),
            Metric::Rps => self.rps,
            Metric::Checks => {
                let (passed, made) = self
                    .checks
                    .iter()
                    .fold((0, 0), |a, c| (a.0 + c.passed, a.1 + c.passed + c.failed));
                if made == 0 {
                    0.0
                } else {
                    passed as f64 / made as f64
                }
            }
            Metric::Check(n) => self.checks.get(n - 1).map_or(0.0, CheckRow::rate),
        }
    }

    /// Exit 1 when a threshold was breached or no call succeeded.
    pub fn failed(&self) -> bool {
        self.fail_on.iter().any(|c| c.breached) || (self.total > 0 && self.ok == 0)
    }
}

#[cfg(test)]
mod fold_tests {
    use super::*;
    use crate::event::{CloseReason, ConnectResult};

    fn ev(conn: u64, kind: EventKind) -> Event {
        Event {
            t_ms: 0.0,
            kind,
            conn: Some(conn),
            addr: Some("127.0.0.1:1".into()),
        }
    }

    #[test]
    fn closed_connections_beyond_the_limit_fold_into_one_row() {
        let mut c = ConnEvents::default();
        let mut per_conn = BTreeMap::new();
        let n = MAX_CLOSED_ROWS as u64 + 500;
        for id in 1..=n {
            c.record(&ev(
                id,
                EventKind::Connect {
                    result: ConnectResult::Ok,
                    error: None,
                    cause: None,
                    elapsed_ms: 0.0,
                    subchannel: 1,
                },
            ));
            c.record(&ev(
                id,
                EventKind::Goaway {
                    dir: Dir::Received,
                    code: crate::h2wire::ErrorCode::NO_ERROR,
                    last_stream_id: 1,
                    debug: "max_age".into(),
                    open_streams: None,
                    quiet_ms: None,
                },
            ));
            c.record(&ev(
                id,
                EventKind::Closed {
                    reason: CloseReason::Goaway,
                    error: None,
                    detail: None,
                    lifetime_ms: 10.0,
                    streams: 2,
                },
            ));
            per_conn.insert(id, (2, 1));
        }
        let rows = c.table(&per_conn, 1e3);
        assert_eq!(rows.len(), MAX_CLOSED_ROWS + 1);
        assert_eq!(rows[0].conn, 0);
        assert_eq!(rows[0].addr, "500 earlier connections");
        assert_eq!((rows[0].rpcs, rows[0].errors), (1000, 500));
        assert_eq!(rows[0].goaways.values().sum::<u32>(), 500);
        assert_eq!(rows.iter().map(|r| r.rpcs).sum::<u64>(), 2 * n);
    }

    #[test]
    fn a_connection_that_never_became_ready_has_no_row_and_errors_are_shown() {
        let mut c = ConnEvents::default();
        let closed = |error: &str| EventKind::Closed {
            reason: CloseReason::Error,
            error: Some(error.into()),
            detail: None,
            lifetime_ms: 1.0,
            streams: 0,
        };
        c.record(&ev(
            1,
            EventKind::Connect {
                result: ConnectResult::Ok,
                error: None,
                cause: None,
                elapsed_ms: 0.0,
                subchannel: 1,
            },
        ));
        c.record(&ev(1, closed("FRAME_SIZE_ERROR: too big")));
        // Its handshake failed: a Closed event, no Connect Ok.
        c.record(&ev(2, closed("connection reset")));
        let rows = c.table(&BTreeMap::new(), 1e3);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].closed.as_deref(),
            Some("error (FRAME_SIZE_ERROR: too big)")
        );
    }
}

#[cfg(test)]
mod rate_tests {
    use super::RateCheck;

    #[test]
    fn the_rule_that_failed_is_named_with_its_figure() {
        // The rate reached, but 10% of the calls late: not "300/s achieved".
        let r = RateCheck::judge(300.0, 3000, 300, 10.0);
        assert!(!r.held);
        let why = r.why_not_held();
        assert!(why.contains("300 calls started late"), "{why}");
        assert!(!why.contains("under 95%"), "{why}");
        // Too few calls started.
        let r = RateCheck::judge(300.0, 2000, 0, 10.0);
        assert!(!r.held);
        let why = r.why_not_held();
        assert!(
            why.contains("200.0/s achieved (under 95% of it), 1000 due"),
            "{why}"
        );
        assert!(!why.contains("late"), "{why}");
        assert!(RateCheck::judge(300.0, 2990, 3, 10.0).held);
    }
}
