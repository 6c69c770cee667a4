//! Checking the expectations of a scenario over what was recorded. Each
//! result says what was checked, the value found, and for failures what the
//! recorded failures point to.

use super::model::{Expectation, Filter};
use super::run::{Recorded, Tagged};
use crate::event::{CallCause, CloseReason, EventKind};
use crate::grpc::code_name;
use crate::h2wire::Dir;

#[derive(Clone, Debug, serde::Serialize)]
pub struct CheckResult {
    /// The check, as written.
    pub check: String,
    pub passed: bool,
    /// What was found.
    pub value: String,
    /// For failures: cause and fix, from the recorded events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<String>,
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

fn describe(kind: &str, f: &Filter) -> String {
    let mut parts = vec![kind.to_string()];
    let mut add = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            parts.push(format!("{k}={v}"));
        }
    };
    add("client", f.client.clone());
    add("code", f.code.clone());
    add("debug", f.debug.clone());
    add("to", f.to.map(|s| s.to_string()));
    add("after", f.after.clone());
    add("before", f.before.clone());
    add("at_least", f.at_least.map(|v| v.to_string()));
    add("at_most", f.at_most.map(|v| v.to_string()));
    add("exactly", f.exactly.map(|v| v.to_string()));
    parts.join(" ")
}

/// The rpc events a filter selects: (t_ms, code, latency_ms, cause).
fn rpcs<'a>(
    r: &'a Recorded,
    client: &'a Option<String>,
    after: &'a Option<String>,
    before: &'a Option<String>,
) -> impl Iterator<Item = (tonic::Code, f64, Option<&'a CallCause>)> + 'a {
    r.events.iter().filter_map(move |t| match &t.event.kind {
        EventKind::Rpc {
            code,
            latency_ms,
            cause,
            ..
        } if who_ok(t, client) && in_window(t.event.t_ms, after, before, r) => {
            Some((*code, *latency_ms, cause.as_ref()))
        }
        _ => None,
    })
}

/// What the failed calls in a window point to: the most frequent cause.
fn failure_diagnosis(r: &Recorded, f: &Filter) -> Option<String> {
    let mut counts = std::collections::BTreeMap::<Option<&CallCause>, u64>::new();
    for (code, _, cause) in rpcs(r, &f.client, &f.after, &f.before) {
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
            crate::diagnose::load_cause(c),
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

pub fn check(e: &Expectation, r: &Recorded) -> CheckResult {
    let count = |kind: &str, f: &Filter, n: usize, diagnose: bool| {
        let v = n as f64;
        let passed = bounds(f, v);
        CheckResult {
            check: describe(kind, f),
            passed,
            value: n.to_string(),
            diagnosis: (!passed && diagnose)
                .then(|| failure_diagnosis(r, f))
                .flatten(),
        }
    };
    if let Some(f) = &e.rpcs {
        let n = rpcs(r, &f.client, &f.after, &f.before)
            .filter(|(c, _, _)| code_ok(code_name(*c), &f.code))
            .count();
        return count("rpcs", f, n, true);
    }
    if let Some(f) = &e.goaways {
        // Drains, not frames: a connection's GOAWAYs with the same code and
        // debug data are one drain (grpc-go's graceful drain sends two).
        let n = r
            .events
            .iter()
            .filter(|t| who_ok(t, &f.client) && in_window(t.event.t_ms, &f.after, &f.before, r))
            .filter_map(|t| match &t.event.kind {
                EventKind::Goaway {
                    dir: Dir::Received,
                    code,
                    debug,
                    ..
                } if code_ok(&code.to_string(), &f.code)
                    && f.debug.as_ref().is_none_or(|d| d == debug) =>
                {
                    Some((t.who.as_str(), t.event.conn, *code, debug.as_str()))
                }
                _ => None,
            })
            .collect::<std::collections::HashSet<_>>()
            .len();
        return count("goaways", f, n, false);
    }
    if let Some(f) = &e.state_changes {
        let n = r
            .events
            .iter()
            .filter(|t| who_ok(t, &f.client) && in_window(t.event.t_ms, &f.after, &f.before, r))
            .filter(|t| matches!(&t.event.kind, EventKind::State { channel: false, to, .. } if f.to.is_none_or(|w| w == *to)))
            .count();
        return count("state_changes", f, n, false);
    }
    if let Some(f) = &e.connection_losses {
        let n = r
            .events
            .iter()
            .filter(|t| who_ok(t, &f.client) && in_window(t.event.t_ms, &f.after, &f.before, r) && t.event.t_ms < r.duration_ms)
            .filter(|t| matches!(&t.event.kind, EventKind::Closed { reason, .. } if *reason != CloseReason::Local))
            .count();
        return count("connection_losses", f, n, false);
    }
    if let Some(f) = &e.success_rate {
        let (mut ok, mut all) = (0u64, 0u64);
        for (code, _, _) in rpcs(r, &f.client, &f.after, &f.before) {
            all += 1;
            ok += u64::from(code == tonic::Code::Ok);
        }
        let rate = if all == 0 {
            0.0
        } else {
            ok as f64 / all as f64
        };
        let passed = all > 0 && bounds(f, rate);
        return CheckResult {
            check: describe("success_rate", f),
            passed,
            value: format!("{rate:.4} ({ok} of {all})"),
            diagnosis: if passed {
                None
            } else if all == 0 {
                Some("no call was made in this window".into())
            } else {
                failure_diagnosis(r, f)
            },
        };
    }
    if let Some(l) = &e.latency {
        let mut v: Vec<f64> = rpcs(r, &l.client, &l.after, &l.before)
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
        return CheckResult {
            check: format!(
                "latency p{} at_most {}{}",
                l.percentile,
                humantime::format_duration(l.at_most.0),
                l.client
                    .as_ref()
                    .map(|c| format!(" client={c}"))
                    .unwrap_or_default()
            ),
            passed,
            value: value.map_or("no calls".into(), |x| format!("{x:.2}ms")),
            diagnosis: None,
        };
    }
    if let Some(o) = &e.order {
        let (a, b) = (
            first_t(r, &o.first, &o.client),
            first_t(r, &o.then, &o.client),
        );
        let passed = matches!((a, b), (Some(a), Some(b)) if a <= b);
        let at = |x: Option<f64>| x.map_or("never".to_string(), |t| format!("{:.0}ms", t));
        return CheckResult {
            check: format!("order {} before {}", o.first, o.then),
            passed,
            value: format!("{} at {}, {} at {}", o.first, at(a), o.then, at(b)),
            diagnosis: None,
        };
    }
    CheckResult {
        check: "(empty)".into(),
        passed: false,
        value: String::new(),
        diagnosis: None,
    }
}
