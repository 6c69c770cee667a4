//! Checking the expectations of a scenario over what was recorded. Each
//! result says what was checked, the value found, and for failures what the
//! recorded failures point to.

use super::model::Filter;
use super::plan::Check;
use super::recorded::{Recorded, Tagged};
use crate::event::{CallCause, CloseReason, EventKind};
use crate::grpc::code_name;
use crate::h2wire::Dir;
use crate::history::{Change, History};

#[derive(Clone, Debug, serde::Serialize)]
pub struct CheckResult {
    /// The check, as written.
    pub check: String,
    /// What it measures (the check without its bounds): the same in every
    /// variant, so results line up side by side.
    pub measure: String,
    pub passed: bool,
    /// What was found.
    pub value: String,
    /// For failures: cause and fix, from the recorded events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<String>,
    /// The run was interrupted before the check's window closed: it was
    /// not made (never a failure).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub not_reached: bool,
}

impl CheckResult {
    /// PASS, FAIL or NOT REACHED, for people.
    pub fn mark(&self) -> &'static str {
        if self.not_reached {
            "NOT REACHED"
        } else if self.passed {
            "PASS"
        } else {
            "FAIL"
        }
    }
}

/// Whether a check's window closed in the run: always in a run that ended,
/// and in an interrupted one only when its `before` mark was set (and its
/// `after` mark, if any).
pub fn reached(c: &Check, r: &Recorded) -> bool {
    if !r.interrupted {
        return true;
    }
    let (after, before) = c.window();
    after.is_none_or(|m| r.marks.contains_key(m)) && before.is_some_and(|m| r.marks.contains_key(m))
}

/// What a check found, in words: `85 calls failed UNAVAILABLE between
/// `back` and `naive-still-waiting``.
pub fn words(c: &Check, value: &str) -> String {
    let window = |after: &Option<String>, before: &Option<String>| match (after, before) {
        (Some(a), Some(b)) => format!(" between `{a}` and `{b}`"),
        (Some(a), None) => format!(" after `{a}`"),
        (None, Some(b)) => format!(" before `{b}`"),
        (None, None) => String::new(),
    };
    let client = |c: &Option<String>| c.as_ref().map(|c| format!(" on `{c}`")).unwrap_or_default();
    match c {
        Check::Rpcs(f) => {
            let what = match f.code.as_deref() {
                None => "calls".to_string(),
                Some("error") => "calls failed".to_string(),
                Some(x) if x.eq_ignore_ascii_case("OK") => "calls succeeded".to_string(),
                Some(x) => format!("calls failed {}", x.to_ascii_uppercase()),
            };
            format!(
                "{value} {what}{}{}",
                client(&f.client),
                window(&f.after, &f.before)
            )
        }
        Check::SuccessRate(f) => format!(
            "success rate {value}{}{}",
            client(&f.client),
            window(&f.after, &f.before)
        ),
        Check::Goaways(f) => {
            let debug = f
                .debug
                .as_ref()
                .map(|d| format!(" {d:?}"))
                .unwrap_or_default();
            format!(
                "{value} GOAWAY drains{debug}{}{}",
                client(&f.client),
                window(&f.after, &f.before)
            )
        }
        Check::StateChanges(f) => format!(
            "{value} moves to {}{}{}",
            f.to.map_or("any state".to_string(), |s| s.to_string()),
            client(&f.client),
            window(&f.after, &f.before)
        ),
        Check::ConnectionLosses(f) => format!(
            "{value} connections lost{}{}",
            client(&f.client),
            window(&f.after, &f.before)
        ),
        Check::Latency(l) => format!(
            "p{} latency {value}{}{}",
            l.percentile,
            client(&l.client),
            window(&l.after, &l.before)
        ),
        _ => format!("{}: {value}", describe_check(c)),
    }
}

fn describe_check(c: &Check) -> String {
    match c {
        Check::ExitCode(e) => format!("exit code of `{}`", e.client),
        Check::Output(o, _) => format!("matching output lines of `{}`", o.client),
        Check::Order(o) => format!("order of {} and {}", o.first, o.then),
        _ => String::new(),
    }
}

fn in_window(t: f64, after: &Option<String>, before: &Option<String>, r: &Recorded) -> bool {
    let after_ok = after
        .as_ref()
        .is_none_or(|m| r.marks.get(m).is_some_and(|at| t >= *at));
    let before_ok = before
        .as_ref()
        .is_none_or(|m| r.marks.get(m).is_some_and(|at| t < *at));
    after_ok && before_ok
}

fn who_ok(t: &Tagged, client: &Option<String>) -> bool {
    // A client's name also takes in the calls of the probes through it.
    t.is_client()
        && client
            .as_ref()
            .is_none_or(|c| &t.who == c || t.via.as_ref() == Some(c))
}

fn code_ok(code: &str, want: &Option<String>) -> bool {
    match want.as_deref() {
        None => true,
        Some("error") => code != "OK",
        Some(w) => code.eq_ignore_ascii_case(w),
    }
}

fn bounds(f: &Filter, v: f64) -> bool {
    f.at_least.is_none_or(|x| v >= x)
        && f.at_most.is_none_or(|x| v <= x)
        && f.exactly.is_none_or(|x| (v - x).abs() < 1e-9)
}

/// The check as written, and what it measures (without the bounds).
fn describe(kind: &str, f: &Filter) -> (String, String) {
    let field = |k: &str, v: Option<String>| v.map(|v| format!(" {k}={v}"));
    let measure: String = std::iter::once(Some(kind.to_string()))
        .chain([
            field("client", f.client.clone()),
            field("code", f.code.clone()),
            field("debug", f.debug.clone()),
            field("to", f.to.map(|s| s.to_string())),
            field("backend", f.backend.map(|b| b.to_string())),
            field("after", f.after.clone()),
            field("before", f.before.clone()),
        ])
        .flatten()
        .collect();
    let bounds: String = [
        field("at_least", f.at_least.map(|v| v.to_string())),
        field("at_most", f.at_most.map(|v| v.to_string())),
        field("exactly", f.exactly.map(|v| v.to_string())),
    ]
    .into_iter()
    .flatten()
    .collect();
    (format!("{measure}{bounds}"), measure)
}

/// The connections (who, conn) that clients made to backend `b`
/// (1-based): those whose connect reached its address.
fn backend_conns(r: &Recorded, b: u32) -> std::collections::HashSet<(&str, u64)> {
    let Some(front) = r.fronts.get(b as usize - 1).map(|a| a.to_string()) else {
        return Default::default();
    };
    r.events
        .iter()
        .filter(|t| t.is_client())
        .filter_map(|t| match (&t.event.kind, t.event.conn, &t.event.addr) {
            (
                EventKind::Connect {
                    result: crate::event::ConnectResult::Ok,
                    ..
                },
                Some(c),
                Some(a),
            ) if **a == *front => Some((t.who.as_str(), c)),
            _ => None,
        })
        .collect()
}

/// The rpc events a filter selects: (code, latency_ms, cause); with a
/// backend, only calls made on a connection to it.
fn rpcs<'a>(
    r: &'a Recorded,
    client: &'a Option<String>,
    after: &'a Option<String>,
    before: &'a Option<String>,
    backend: Option<u32>,
) -> impl Iterator<Item = (tonic::Code, f64, Option<&'a CallCause>)> + 'a {
    let conns = backend.map(|b| backend_conns(r, b));
    r.events.iter().filter_map(move |t| match &t.event.kind {
        // A program's calls cut by its stop at the end are not its failures.
        EventKind::Rpc { .. }
            if t.event.t_ms >= r.duration_ms && r.programs.contains_key(&t.who) =>
        {
            None
        }
        EventKind::Rpc {
            code,
            latency_ms,
            cause,
            ..
        } if who_ok(t, client)
            && in_window(t.event.t_ms, after, before, r)
            && conns.as_ref().is_none_or(|set| {
                t.event
                    .conn
                    .is_some_and(|c| set.contains(&(t.via_client(), c)))
            }) =>
        {
            Some((*code, *latency_ms, cause.as_ref()))
        }
        _ => None,
    })
}

/// What the failed calls in a window point to: the most frequent cause.
fn failure_diagnosis(r: &Recorded, f: &Filter) -> Option<String> {
    let mut counts = std::collections::BTreeMap::<Option<&CallCause>, u64>::new();
    for (code, _, cause) in rpcs(r, &f.client, &f.after, &f.before, f.backend) {
        if code != tonic::Code::Ok {
            *counts.entry(cause).or_default() += 1;
        }
    }
    let (cause, n) = counts.into_iter().max_by_key(|(_, n)| *n)?;
    let (name, text) = match cause {
        Some(c) => (
            match crate::diagnose::cause_id(c) {
                Some(id) => format!("{} [{id}]", c.key()),
                None => c.key(),
            },
            crate::diagnose::cause_detail(c),
        ),
        None => ("unknown".into(), "see the failed calls' messages".into()),
    };
    Some(format!("{n} failed calls were {name}: {text}"))
}

fn first_t(r: &Recorded, kind: &str, client: &Option<String>) -> Option<f64> {
    r.events.iter().filter(|t| who_ok(t, client)).find_map(|t| {
        let hit = match (&t.event.kind, kind) {
            (
                EventKind::Goaway {
                    dir: Dir::Received, ..
                },
                "goaway",
            ) => true,
            (EventKind::Rpc { code, .. }, "rpc_error") => *code != tonic::Code::Ok,
            (
                EventKind::State {
                    to: crate::connectivity::State::TransientFailure,
                    channel: false,
                    ..
                },
                "transient_failure",
            ) => true,
            (EventKind::Closed { reason, .. }, "closed") => *reason != CloseReason::Local,
            _ => false,
        };
        hit.then_some(t.event.t_ms)
    })
}

pub fn check(c: &Check, r: &Recorded) -> CheckResult {
    match c {
        Check::Rpcs(f) => rpcs_check(f, r),
        Check::Goaways(f) => goaways_check(f, r),
        Check::StateChanges(f) => state_changes_check(f, r),
        Check::ConnectionLosses(f) => losses_check(f, r),
        Check::SuccessRate(f) => success_rate_check(f, r),
        Check::Latency(l) => latency_check(l, r),
        Check::ExitCode(e) => exit_code_check(e, r),
        Check::Output(o, pattern) => output_check(o, pattern, r),
        Check::Order(o) => order_check(o, r),
    }
}

/// A count's result: met when within the bounds; for a failed one, what
/// the failed calls point to.
fn counted(r: &Recorded, kind: &str, f: &Filter, n: usize, diagnose: bool) -> CheckResult {
    let v = n as f64;
    let passed = bounds(f, v);
    let (check, measure) = describe(kind, f);
    CheckResult {
        check,
        measure,
        passed,
        value: n.to_string(),
        not_reached: false,
        diagnosis: (!passed && diagnose)
            .then(|| failure_diagnosis(r, f))
            .flatten(),
    }
}

fn rpcs_check(f: &Filter, r: &Recorded) -> CheckResult {
    let count = |kind: &str, f: &Filter, n: usize, diagnose: bool| counted(r, kind, f, n, diagnose);
    let n = rpcs(r, &f.client, &f.after, &f.before, f.backend)
        .filter(|(c, _, _)| code_ok(code_name(*c), &f.code))
        .count();
    count("rpcs", f, n, true)
}

fn goaways_check(f: &Filter, r: &Recorded) -> CheckResult {
    // Drains, not frames, as each connection's one history folds them
    // (grpc-go's graceful drain sends two GOAWAYs); one history per
    // client, whose connection ids are its own. A drain counts where its
    // first GOAWAY came.
    let mut histories: std::collections::HashMap<&str, History> = Default::default();
    let mut n = 0;
    for t in r.events.iter().filter(|t| who_ok(t, &f.client)) {
        let h = histories.entry(t.who.as_str()).or_default();
        let Change::DrainBegan(id) = h.observe(&t.event) else {
            continue;
        };
        let Some(d) = h.conn(id).and_then(|c| c.drain()) else {
            continue;
        };
        if d.dir == Dir::Received
            && code_ok(&d.code.to_string(), &f.code)
            && f.debug.as_ref().is_none_or(|want| *want == d.debug)
            && in_window(d.at_ms, &f.after, &f.before, r)
        {
            n += 1;
        }
    }
    counted(r, "goaways", f, n, false)
}

fn state_changes_check(f: &Filter, r: &Recorded) -> CheckResult {
    let count = |kind: &str, f: &Filter, n: usize, diagnose: bool| counted(r, kind, f, n, diagnose);
    let n = r
        .events
        .iter()
        .filter(|t| who_ok(t, &f.client) && in_window(t.event.t_ms, &f.after, &f.before, r))
        .filter(|t| matches!(&t.event.kind, EventKind::State { channel: false, to, .. } if f.to.is_none_or(|w| w == *to)))
        .count();
    count("state_changes", f, n, false)
}

fn losses_check(f: &Filter, r: &Recorded) -> CheckResult {
    let count = |kind: &str, f: &Filter, n: usize, diagnose: bool| counted(r, kind, f, n, diagnose);
    let n = r
        .events
        .iter()
        .filter(|t| who_ok(t, &f.client) && in_window(t.event.t_ms, &f.after, &f.before, r) && t.event.t_ms < r.duration_ms)
        .filter(|t| matches!(&t.event.kind, EventKind::Closed { reason, .. } if *reason != CloseReason::Local))
        .count();
    count("connection_losses", f, n, false)
}

fn success_rate_check(f: &Filter, r: &Recorded) -> CheckResult {
    let (mut ok, mut all) = (0u64, 0u64);
    for (code, _, _) in rpcs(r, &f.client, &f.after, &f.before, f.backend) {
        all += 1;
        ok += u64::from(code == tonic::Code::Ok);
    }
    let rate = if all == 0 {
        0.0
    } else {
        ok as f64 / all as f64
    };
    let passed = all > 0 && bounds(f, rate);
    let (check, measure) = describe("success_rate", f);
    CheckResult {
        check,
        measure,
        passed,
        value: format!("{rate:.4} ({ok} of {all})"),
        not_reached: false,
        diagnosis: if passed {
            None
        } else if all == 0 {
            Some("no call was made in this window".into())
        } else {
            failure_diagnosis(r, f)
        },
    }
}

fn latency_check(l: &super::model::LatencyCheck, r: &Recorded) -> CheckResult {
    let mut v: Vec<f64> = rpcs(r, &l.client, &l.after, &l.before, None)
        .map(|(_, ms, _)| ms)
        .collect();
    v.sort_by(f64::total_cmp);
    let value = if v.is_empty() {
        None
    } else {
        let i = ((l.percentile / 100.0) * v.len() as f64).ceil() as usize;
        Some(v[i.clamp(1, v.len()) - 1])
    };
    let limit = l.at_most.0.as_secs_f64() * 1e3;
    let passed = value.is_some_and(|x| x <= limit);
    let window = [
        ("client", &l.client),
        ("after", &l.after),
        ("before", &l.before),
    ]
    .iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| format!(" {k}={v}")))
    .collect::<String>();
    let measure = format!("latency p{}{window}", l.percentile);
    CheckResult {
        check: format!(
            "{measure} at_most {}",
            humantime::format_duration(l.at_most.0)
        ),
        measure,
        passed,
        value: value.map_or("no calls".into(), |x| format!("{x:.2}ms")),
        not_reached: false,
        diagnosis: None,
    }
}

fn exit_code_check(e: &super::model::ExitCodeCheck, r: &Recorded) -> CheckResult {
    let ended = r.programs.get(&e.client).map(|p| &p.ended);
    let passed = ended.is_some_and(|x| x.code == Some(e.equals));
    let value = match ended {
        Some(x) if x.stopped && x.code.is_none() => {
            format!("{} (stopped at the end of the run)", x.describe())
        }
        Some(x) => x.describe(),
        None => "never started".into(),
    };
    let check = format!("exit_code client={} equals {}", e.client, e.equals);
    CheckResult {
        measure: format!("exit_code client={}", e.client),
        check,
        passed,
        value,
        not_reached: false,
        diagnosis: None,
    }
}

fn output_check(
    o: &super::model::OutputCheck,
    pattern: &super::plan::OutputPattern,
    r: &Recorded,
) -> CheckResult {
    let out = r
        .programs
        .get(&o.client)
        .map(|p| p.output.as_str())
        .unwrap_or("");
    let n = out.lines().filter(|l| pattern.hits(l)).count();
    let f = Filter {
        at_least: o.at_least,
        at_most: o.at_most,
        exactly: o.exactly,
        ..Filter::default()
    };
    let passed = bounds(&f, n as f64);
    let what = match (&o.contains, &o.matches) {
        (Some(t), _) => format!("contains={t:?}"),
        (_, Some(m)) => format!("matches={m:?}"),
        _ => String::new(),
    };
    let measure = format!("output client={} {what}", o.client);
    let (full, _) = describe("", &f);
    CheckResult {
        check: format!("{measure}{full}"),
        measure,
        passed,
        value: format!("{n} lines"),
        not_reached: false,
        diagnosis: (!passed && n == 0 && !out.is_empty()).then(|| {
            let last: Vec<&str> = out.lines().rev().take(3).collect();
            format!(
                "its last lines: {}",
                last.into_iter().rev().collect::<Vec<_>>().join(" / ")
            )
        }),
    }
}

fn order_check(o: &super::model::OrderCheck, r: &Recorded) -> CheckResult {
    let (a, b) = (
        first_t(r, &o.first, &o.client),
        first_t(r, &o.then, &o.client),
    );
    let passed = matches!((a, b), (Some(a), Some(b)) if a <= b);
    let at = |x: Option<f64>| x.map_or("never".to_string(), |t| format!("{:.0}ms", t));
    let check = format!(
        "order {} before {}{}",
        o.first,
        o.then,
        o.client
            .as_ref()
            .map(|c| format!(" client={c}"))
            .unwrap_or_default()
    );
    CheckResult {
        measure: check.clone(),
        check,
        passed,
        value: format!("{} at {}, {} at {}", o.first, at(a), o.then, at(b)),
        not_reached: false,
        diagnosis: None,
    }
}

/// Calls by client (and probe) and status code, as the checks count them.
pub fn calls_by_client(
    r: &Recorded,
) -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>> {
    let mut out: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>> =
        Default::default();
    for t in &r.events {
        if let EventKind::Rpc { code, .. } = &t.event.kind {
            if t.event.t_ms >= r.duration_ms && r.programs.contains_key(&t.who) {
                continue;
            }
            *out.entry(t.who.clone())
                .or_default()
                .entry(code_name(*code).to_string())
                .or_default() += 1;
        }
    }
    out
}

/// A file's variants side by side: every check any variant makes, measured
/// on each variant's run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Comparison {
    pub scenario: String,
    pub variants: Vec<String>,
    pub rows: Vec<ComparisonRow>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct ComparisonRow {
    /// What is measured (the check without its bounds).
    pub measure: String,
    /// One per variant, in order.
    pub cells: Vec<Cell>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Cell {
    /// The value found; none where the variant has no such client or mark.
    pub value: Option<String>,
    /// Where the check is one of this variant's expectations: whether it
    /// was met.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passed: Option<bool>,
    /// The run was interrupted before this check's window closed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub not_reached: bool,
}

/// Every variant's checks side by side: each variant's own results
/// (`results`, in plan order), and the checks of the others measured on its
/// run where it has their client and marks.
pub fn compare(
    c: &super::plan::Checked,
    runs: &[Recorded],
    results: &[&[CheckResult]],
) -> Comparison {
    let mut rows: Vec<(&str, &Check)> = Vec::new();
    for (plan, own) in c.plans.iter().zip(results) {
        for (ch, r) in plan.checks.iter().zip(own.iter()) {
            if !rows.iter().any(|(m, _)| *m == r.measure) {
                rows.push((&r.measure, ch));
            }
        }
    }
    let rows = rows
        .into_iter()
        .map(|(measure, ch)| ComparisonRow {
            cells: c
                .plans
                .iter()
                .zip(runs)
                .zip(results)
                .map(
                    |((plan, run), own)| match own.iter().find(|r| r.measure == measure) {
                        Some(r) => Cell {
                            value: Some(r.value.clone()),
                            passed: Some(r.passed),
                            not_reached: r.not_reached,
                        },
                        None if plan.can_measure(ch) => Cell {
                            value: Some(check(ch, run).value),
                            passed: None,
                            not_reached: false,
                        },
                        None => Cell {
                            value: None,
                            passed: None,
                            not_reached: false,
                        },
                    },
                )
                .collect(),
            measure: measure.to_string(),
        })
        .collect();
    Comparison {
        scenario: c.name.clone(),
        variants: c
            .plans
            .iter()
            .map(|p| p.variant.clone().unwrap_or_default())
            .collect(),
        rows,
    }
}
