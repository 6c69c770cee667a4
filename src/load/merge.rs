//! `grpcdoc report merge`: `load -o json` reports from several machines as
//! one. Counts add up; latency comes from the sum of the HDR histograms, so
//! its percentiles are exact for the union of the calls; the per-second
//! series are aligned on wall-clock time.

use std::collections::BTreeMap;

use super::report::{
    decode_histogram, encode_histogram, Cpu, Latency, LoadReport, RateCheck, FORMAT,
};
use super::stats::{new_histogram, SecondStats};

/// Why reports do not merge.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{0}: {1}")]
    Refused(String, String),
    #[error("nothing to merge: give two or more reports (one works too)")]
    Empty,
}

/// Merges `(name, report)` pairs (the name says which one in an error).
pub fn merge(reports: Vec<(String, LoadReport)>) -> Result<LoadReport, MergeError> {
    let refuse = |name: &str, why: String| MergeError::Refused(name.to_string(), why);
    let Some((first_name, first)) = reports.first() else {
        return Err(MergeError::Empty);
    };
    let mut hist = new_histogram();
    for (name, r) in &reports {
        if r.kind != "load_report" {
            return Err(refuse(
                name,
                format!("not a load report (kind `{}`)", r.kind),
            ));
        }
        if r.format != FORMAT {
            return Err(refuse(
                name,
                format!(
                    "a load report of format {} (this grpcdoc merges format {FORMAT}): run the loads again with this grpcdoc",
                    r.format
                ),
            ));
        }
        if r.method != first.method {
            return Err(refuse(
                name,
                format!(
                    "calls {}, but {first_name} calls {}: reports of different methods do not merge",
                    r.method, first.method
                ),
            ));
        }
        let h = decode_histogram(&r.histogram).map_err(|e| refuse(name, e))?;
        hist.add(&h)
            .map_err(|e| refuse(name, format!("the histogram does not add up: {e:?}")))?;
    }
    let start = reports
        .iter()
        .map(|(_, r)| r.started_unix_ms)
        .fold(f64::INFINITY, f64::min);
    let end = reports
        .iter()
        .map(|(_, r)| r.started_unix_ms + r.duration_ms)
        .fold(f64::NEG_INFINITY, f64::max);
    let sum = |f: fn(&LoadReport) -> u64| reports.iter().map(|(_, r)| f(r)).sum::<u64>();
    let total = sum(|r| r.total);
    let ok = sum(|r| r.ok);
    let errors = sum(|r| r.errors);
    let duration_ms = (end - start).max(0.0);
    let mut targets: Vec<String> = Vec::new();
    for (_, r) in &reports {
        if !targets.contains(&r.target) {
            targets.push(r.target.clone());
        }
    }
    let mut codes: BTreeMap<String, super::stats::CodeSummary> = BTreeMap::new();
    let mut causes: BTreeMap<String, super::report::CauseRow> = BTreeMap::new();
    for (_, r) in &reports {
        for (code, c) in &r.codes {
            let e = codes.entry(code.clone()).or_default();
            e.count += c.count;
            e.other += c.other;
            for (m, n) in &c.messages {
                *e.messages.entry(m.clone()).or_default() += n;
            }
        }
        for row in &r.causes {
            causes
                .entry(row.cause.key())
                .and_modify(|e| e.count += row.count)
                .or_insert_with(|| {
                    let id = crate::diagnose::cause_id(&row.cause);
                    super::report::CauseRow {
                        cause: row.cause.clone(),
                        count: row.count,
                        id,
                        fix: id.map(|i| crate::catalogue::entry(i).fix),
                        diagnosis: crate::diagnose::cause_detail(&row.cause),
                    }
                });
        }
    }
    let mut causes: Vec<_> = causes.into_values().collect();
    causes.sort_by_key(|c| std::cmp::Reverse(c.count));
    let user_s: f64 = reports.iter().map(|(_, r)| r.cpu.user_s).sum();
    let system_s: f64 = reports.iter().map(|(_, r)| r.cpu.system_s).sum();
    let rate = reports
        .iter()
        .map(|(_, r)| r.rate.clone())
        .collect::<Option<Vec<RateCheck>>>()
        .map(|rates| RateCheck {
            target: rates.iter().map(|r| r.target).sum(),
            achieved: rates.iter().map(|r| r.achieved).sum(),
            late_calls: rates.iter().map(|r| r.late_calls).sum(),
            not_started: rates.iter().map(|r| r.not_started).sum(),
            started: rates.iter().map(|r| r.started).sum(),
            held: rates.iter().all(|r| r.held),
        });
    Ok(LoadReport {
        kind: "load_report".into(),
        format: FORMAT,
        started_unix_ms: start,
        target: targets.join(","),
        method: first.method.clone(),
        call_kind: first.call_kind.clone(),
        concurrency: reports.iter().map(|(_, r)| r.concurrency).sum(),
        connections: reports.iter().map(|(_, r)| r.connections).sum(),
        threads: reports.iter().map(|(_, r)| r.threads).sum(),
        notes: Vec::new(),
        duration_ms,
        interrupted: reports.iter().any(|(_, r)| r.interrupted),
        total,
        ok,
        errors,
        error_rate: if total > 0 {
            errors as f64 / total as f64
        } else {
            0.0
        },
        rps: if duration_ms > 0.0 {
            total as f64 / (duration_ms / 1e3)
        } else {
            0.0
        },
        responses: sum(|r| r.responses),
        latency_ms: Latency::of(&hist),
        histogram: encode_histogram(&hist),
        codes,
        causes,
        connections_table: reports
            .iter()
            .flat_map(|(_, r)| r.connections_table.iter().cloned())
            .collect(),
        connects_failed: sum(|r| r.connects_failed),
        calls_without_connection: sum(|r| r.calls_without_connection),
        retries: sum(|r| r.retries),
        transparent_retries: sum(|r| r.transparent_retries),
        slot_waits: sum(|r| r.slot_waits),
        slot_wait_ms: reports.iter().map(|(_, r)| r.slot_wait_ms).sum(),
        rate,
        cpu: Cpu {
            user_s,
            system_s,
            per_rpc_us: if total > 0 {
                (user_s + system_s) * 1e6 / total as f64
            } else {
                0.0
            },
        },
        series: series(&reports, start),
        // Stages of several machines do not line up: merged reports have
        // the series instead.
        schedule: None,
        stages: Vec::new(),
        checks: checks(&reports),
        fail_on: Vec::new(),
        dropped_events: sum(|r| r.dropped_events),
    })
}

/// The `--expect` rows of reports that made the same checks, added; none
/// when their checks differ.
fn checks(reports: &[(String, LoadReport)]) -> Vec<super::report::CheckRow> {
    let Some((_, first)) = reports.first() else {
        return Vec::new();
    };
    let same = |r: &LoadReport| {
        r.checks.len() == first.checks.len()
            && r.checks
                .iter()
                .zip(&first.checks)
                .all(|(a, b)| a.expect == b.expect)
    };
    if !reports.iter().all(|(_, r)| same(r)) {
        return Vec::new();
    }
    let mut out = first.checks.clone();
    for (_, r) in &reports[1..] {
        for (o, c) in out.iter_mut().zip(&r.checks) {
            o.passed += c.passed;
            o.failed += c.failed;
            o.not_made += c.not_made;
        }
    }
    out
}

/// The per-second series on one wall clock: each run's seconds moved by
/// its start. Counts add; a second's p50 is the mean of the runs' p50s
/// weighted by their calls, its p90 and p99 the largest (an upper bound:
/// the series keeps no histograms).
fn series(reports: &[(String, LoadReport)], start: f64) -> Vec<SecondStats> {
    let mut by_second: BTreeMap<u64, (SecondStats, f64)> = BTreeMap::new();
    for (_, r) in reports {
        let offset = ((r.started_unix_ms - start) / 1e3).round().max(0.0) as u64;
        for s in &r.series {
            let t = s.t_s + offset;
            let (e, weighted) = by_second.entry(t).or_insert_with(|| {
                (
                    SecondStats {
                        t_s: t,
                        ..SecondStats::default()
                    },
                    0.0,
                )
            });
            e.completed += s.completed;
            e.errors += s.errors;
            *weighted += s.p50_ms * s.completed as f64;
            e.p90_ms = e.p90_ms.max(s.p90_ms);
            e.p99_ms = e.p99_ms.max(s.p99_ms);
        }
    }
    by_second
        .into_values()
        .map(|(mut s, weighted)| {
            if s.completed > 0 {
                s.p50_ms = weighted / s.completed as f64;
            }
            s
        })
        .collect()
}
