//! The load report for people: totals, latency, the stages, status codes,
//! checks, failure causes with a diagnosis, the connections (and the calls
//! per address, or per client when several share a run), grpcdoc's own
//! CPU, thresholds.

use std::collections::BTreeMap;

use super::style::{Style, Tone};
use crate::load::report::LoadReport;

use super::table;

fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2}s", v / 1e3)
    } else {
        format!("{v:.2}ms")
    }
}

/// Calls per client when several share a run (a scenario's clients and
/// probes, by status code): calls, OK, failed and the failures' codes.
/// `None` for one client: the run's totals say it all.
pub fn client_totals(
    calls: &BTreeMap<String, BTreeMap<String, u64>>,
) -> Option<comfy_table::Table> {
    if calls.len() < 2 {
        return None;
    }
    let mut t = table();
    t.set_header(["client", "calls", "OK", "failed", "failures by code"]);
    for (client, codes) in calls {
        let all: u64 = codes.values().sum();
        let ok = codes.get("OK").copied().unwrap_or(0);
        let mut failures: Vec<(&String, &u64)> = codes.iter().filter(|(c, _)| *c != "OK").collect();
        failures.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        let text: Vec<String> = failures.iter().map(|(c, n)| format!("{n} {c}")).collect();
        t.add_row(vec![
            client.clone(),
            all.to_string(),
            ok.to_string(),
            (all - ok).to_string(),
            text.join(", "),
        ]);
    }
    Some(t)
}

/// Calls per address when the target names several: the connections to
/// each and the calls they carried. `None` for one address.
fn address_totals(r: &LoadReport) -> Option<comfy_table::Table> {
    let mut by: BTreeMap<&str, (usize, u64, u64)> = BTreeMap::new();
    // Row 0 folds closed connections of every address: not one address's.
    for c in r.connections_table.iter().filter(|c| c.conn != 0) {
        let e = by.entry(c.addr.as_str()).or_default();
        e.0 += 1;
        e.1 += c.rpcs;
        e.2 += c.errors;
    }
    if by.len() < 2 {
        return None;
    }
    let mut t = table();
    t.set_header(["address", "connections", "calls", "failed"]);
    for (addr, (conns, calls, failed)) in by {
        t.add_row(vec![
            addr.to_string(),
            conns.to_string(),
            calls.to_string(),
            failed.to_string(),
        ]);
    }
    Some(t)
}

/// Seconds into the run, short: `40s`, `1m30s`.
fn at(s: f64) -> String {
    let s = s.round() as u64;
    if s < 60 {
        format!("{s}s")
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{}m{}s", s / 60, s % 60)
    }
}

/// A row per stage of `--stages`: its time, its target, the calls that
/// began in it (and, for rates, the calls due), their latency.
fn stages_table(r: &LoadReport) -> comfy_table::Table {
    let mut t = table();
    t.set_header([
        "stage", "time", "target", "calls", "calls/s", "failed", "p50", "p99",
    ]);
    for st in &r.stages {
        let unit = if st.unit == "per_second" {
            "/s"
        } else {
            " in flight"
        };
        let num = |v: f64| format!("{v:.0}");
        let target = if st.from == st.to {
            format!("{}{unit}", num(st.to))
        } else {
            format!("{} -> {}{unit}", num(st.from), num(st.to))
        };
        let calls = match st.planned {
            Some(p) => format!("{} of {p:.0}", st.calls),
            None => st.calls.to_string(),
        };
        t.add_row(vec![
            format!("{}/{}", st.stage, r.stages.len()),
            format!("{}-{}", at(st.begins_s), at(st.ends_s)),
            target,
            calls,
            format!("{:.0}", st.rps),
            st.errors.to_string(),
            ms(st.latency_ms.p50),
            ms(st.latency_ms.p99),
        ]);
    }
    t
}

pub fn render(r: &LoadReport, style: &Style) -> String {
    let mut out = String::new();
    let head = format!(
        "{} {} ({}) on {}: {} calls in {:.2}s, {:.0} calls/s, {} failed ({:.2}%){}",
        if r.interrupted {
            "interrupted:"
        } else {
            "load:"
        },
        r.method,
        r.call_kind,
        r.target,
        r.total,
        r.duration_ms / 1e3,
        r.rps,
        r.errors,
        r.error_rate * 100.0,
        if r.responses != r.ok {
            format!(", {} responses", r.responses)
        } else {
            String::new()
        },
    );
    out.push_str(&style.paint(Tone::Bold, &head));
    out.push('\n');

    let l = &r.latency_ms;
    let mut t = table();
    t.set_header([
        "latency", "min", "mean", "p50", "p90", "p99", "p99.9", "max",
    ]);
    t.add_row(vec![
        "".to_string(),
        ms(l.min),
        ms(l.mean),
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        ms(l.p99_9),
        ms(l.max),
    ]);
    out.push_str(&format!("{t}\n"));

    if !r.stages.is_empty() {
        out.push_str(&format!("{}\n", stages_table(r)));
    }

    let mut t = table();
    t.set_header(["status", "count", "messages"]);
    for (code, c) in &r.codes {
        let mut msgs: Vec<String> = c
            .messages
            .iter()
            .filter(|(m, _)| !m.is_empty())
            .map(|(m, n)| format!("{n} x {m}"))
            .collect();
        if c.other > 0 {
            msgs.push(format!("{} x (other messages)", c.other));
        }
        t.add_row(vec![code.clone(), c.count.to_string(), msgs.join("\n")]);
    }
    out.push_str(&format!("{t}\n"));

    if !r.checks.is_empty() {
        let mut t = table();
        t.set_header(["--expect", "passed", "failed", "not made (call failed)"]);
        for c in &r.checks {
            t.add_row(vec![
                c.expect.clone(),
                format!("{} ({:.2}%)", c.passed, c.rate() * 100.0),
                c.failed.to_string(),
                c.not_made.to_string(),
            ]);
        }
        out.push_str(&format!("{t}\n"));
    }

    if !r.causes.is_empty() {
        let mut t = table();
        t.set_header(["failures by cause", "count", "diagnosis"]);
        for c in &r.causes {
            let label = match c.id {
                Some(id) => format!("{} [{id}]", c.cause.label()),
                None => c.cause.label(),
            };
            t.add_row(vec![label, c.count.to_string(), c.diagnosis.clone()]);
        }
        out.push_str(&format!("{t}\n"));
    }

    let mut t = table();
    t.set_header([
        "conn",
        "address",
        "calls",
        "failed",
        "GOAWAYs received",
        "lifetime",
        "ended",
    ]);
    for c in &r.connections_table {
        let goaways: Vec<String> = c
            .goaways
            .iter()
            .map(|(g, n)| format!("{n} x {g}"))
            .collect();
        t.add_row(vec![
            c.conn.to_string(),
            c.addr.clone(),
            c.rpcs.to_string(),
            c.errors.to_string(),
            goaways.join("\n"),
            ms(c.lifetime_ms),
            c.closed.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    out.push_str(&format!("{t}\n"));

    if let Some(t) = address_totals(r) {
        out.push_str(&format!("{t}\n"));
    }

    let mut notes = vec![format!(
        "retries {}, transparent retries {}, failed connection attempts {}, calls failed fast without a connection {}, waits for a stream slot {} ({})",
        r.retries,
        r.transparent_retries,
        r.connects_failed,
        r.calls_without_connection,
        r.slot_waits,
        ms(r.slot_wait_ms)
    )];
    notes.push(format!(
        "grpcdoc CPU: {:.2}s user + {:.2}s system, {:.1} us per call, {} thread{}",
        r.cpu.user_s,
        r.cpu.system_s,
        r.cpu.per_rpc_us,
        r.threads,
        if r.threads == 1 { "" } else { "s" }
    ));
    for n in &r.notes {
        notes.push(style.paint(Tone::Dim, &format!("note: {n}")));
    }
    if let Some(rate) = &r.rate {
        if rate.held {
            notes.push(format!(
                "rate held: {:.1}/s of {:.1}/s",
                rate.achieved, rate.target
            ));
        } else {
            notes.push(style.paint(
                Tone::Warn,
                &format!(
                    "warning: the rate of {:.1}/s was not held: {}; latencies count from each call's intended start",
                    rate.target,
                    rate.why_not_held()
                ),
            ));
        }
    }
    if r.dropped_events > 0 {
        notes.push(format!(
            "{} connection events were dropped",
            r.dropped_events
        ));
    }
    for c in &r.fail_on {
        let line = format!(
            "--fail-on {}: value {:.3} -> {}",
            c.expr,
            c.value,
            if c.breached { "BREACHED" } else { "ok" }
        );
        notes.push(style.paint(if c.breached { Tone::Bad } else { Tone::Good }, &line));
    }
    if r.total > 0 && r.ok == 0 {
        notes.push(style.paint(Tone::Bad, "no call succeeded"));
    }
    for n in notes {
        out.push_str(&n);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_sharing_a_run_get_a_row_each() {
        let mut calls: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        calls.insert(
            "naive".into(),
            [("OK".to_string(), 90), ("UNAVAILABLE".to_string(), 10)].into(),
        );
        assert!(
            client_totals(&calls).is_none(),
            "one client: the totals say it"
        );
        calls.insert(
            "probe".into(),
            [
                ("OK".to_string(), 5),
                ("DEADLINE_EXCEEDED".to_string(), 1),
                ("UNAVAILABLE".to_string(), 2),
            ]
            .into(),
        );
        let text = client_totals(&calls).unwrap().to_string();
        let row = |name: &str| {
            text.lines()
                .find(|l| l.contains(name))
                .unwrap()
                .split(['│', '┆'])
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
        };
        assert_eq!(row("naive"), ["naive", "100", "90", "10", "10 UNAVAILABLE"]);
        assert_eq!(
            row("probe"),
            ["probe", "8", "5", "3", "2 UNAVAILABLE, 1 DEADLINE_EXCEEDED"]
        );
    }
}
