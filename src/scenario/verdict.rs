//! Verdicts in words. A variant named `broken...` exists to show a failure:
//! when its expectations are met it *reproduced* it; one named `fixed...`
//! exists to show the fix: met, it is *fixed*. Each says so with the figure
//! that shows it (the broken variant's own expectations, measured on every
//! run, and the calls that failed), the fixed one with the broken one's
//! figure beside its own. Other scenarios pass or fail.

use std::collections::BTreeMap;

use super::expect::{self, CheckResult};
use super::plan::{Check, Plan};
use super::recorded::Recorded;
use crate::catalogue::EntryId;
use crate::event::{CallCause, ConnectResult, EventKind};

/// What a variant is for, by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `broken`, `broken-...`: shows the failure.
    Broken,
    /// `fixed`, `fixed-...`, `fix-...`: shows the fix.
    Fixed,
    /// A scenario without variants, or a variant named otherwise.
    Plain,
}

impl Role {
    pub fn of(variant: Option<&str>) -> Role {
        match variant {
            Some(v) if v.starts_with("broken") => Role::Broken,
            Some(v) if v.starts_with("fix") => Role::Fixed,
            _ => Role::Plain,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Reproduced,
    NotReproduced,
    Fixed,
    NotFixed,
    Passed,
    Failed,
    Interrupted,
}

impl Outcome {
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Reproduced => "reproduced",
            Outcome::NotReproduced => "not reproduced",
            Outcome::Fixed => "fixed",
            Outcome::NotFixed => "not fixed",
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
        }
    }

    /// Whether the scenario holds with this outcome.
    pub fn good(self) -> bool {
        matches!(self, Outcome::Reproduced | Outcome::Fixed | Outcome::Passed)
    }
}

/// A variant's verdict: the outcome and the sentence that says it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Verdict {
    pub outcome: Outcome,
    /// `reproduced: 85 calls failed UNAVAILABLE between ...`.
    pub sentence: String,
    /// For a fix that did not fix (or a failed scenario): the catalogue's
    /// fix for what failed, less what the scenario already has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
}

/// What a run shows: its failed calls, and the broken variant's own
/// expectations measured on it.
#[derive(Clone, Debug, Default)]
pub struct Figure {
    /// The broken variant's own expectations, in words, as found on this
    /// run: (value, words); `None` where this run cannot measure one.
    pub signature: Vec<Option<(String, String)>>,
    pub calls: u64,
    pub failed: u64,
    /// From the first failed call to the last.
    pub span_ms: f64,
    /// The code most failed calls ended with, and their catalogue entry.
    pub code: Option<String>,
    pub entry: Option<EntryId>,
}

impl Figure {
    /// `226 of 450 calls failed over 4.5s (UNAVAILABLE, connection-refused)`.
    pub fn calls_words(&self) -> Option<String> {
        if self.calls == 0 {
            return None;
        }
        if self.failed == 0 {
            return Some(format!("no call failed (of {})", self.calls));
        }
        let why = [
            self.code.clone(),
            self.entry.map(|e| e.as_str().to_string()),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
        Some(format!(
            "{} of {} calls failed over {:.1}s{}",
            self.failed,
            self.calls,
            self.span_ms / 1e3,
            if why.is_empty() {
                String::new()
            } else {
                format!(" ({why})")
            }
        ))
    }
}

/// The broken variant's own expectations (after the scenario's shared
/// ones): what tells its run from the fix's.
pub fn signature(plans: &[Plan]) -> Vec<&Check> {
    plans
        .iter()
        .find(|p| Role::of(p.variant.as_deref()) == Role::Broken)
        .map(|p| {
            p.checks[p.scenario.expect.len().min(p.checks.len())..]
                .iter()
                .collect()
        })
        .unwrap_or_default()
}

/// What a run shows, measured against the signature.
pub fn figure(plan: &Plan, r: &Recorded, sig: &[&Check]) -> Figure {
    let signature = sig
        .iter()
        .map(|c| {
            plan.can_measure(c).then(|| {
                let v = expect::check(c, r).value;
                let w = expect::words(c, &v);
                (v, w)
            })
        })
        .collect();
    let mut f = Figure {
        signature,
        ..Figure::default()
    };
    let (mut first, mut last) = (f64::MAX, 0f64);
    let mut codes = BTreeMap::<&str, u64>::new();
    let mut entries = BTreeMap::<EntryId, u64>::new();
    let connect = connect_entries(r);
    for t in r.events.iter().filter(|t| t.is_client()) {
        let EventKind::Rpc { code, cause, .. } = &t.event.kind else {
            continue;
        };
        if t.event.t_ms >= r.duration_ms && r.programs.contains_key(&t.who) {
            continue;
        }
        f.calls += 1;
        if *code == tonic::Code::Ok {
            continue;
        }
        f.failed += 1;
        first = first.min(t.event.t_ms);
        last = last.max(t.event.t_ms);
        *codes.entry(crate::grpc::code_name(*code)).or_default() += 1;
        let entry = match cause {
            Some(CallCause::NoConnection) | None => connect.get(t.via_client()).copied(),
            Some(c) => crate::diagnose::cause_id(c),
        };
        if let Some(e) = entry {
            *entries.entry(e).or_default() += 1;
        }
    }
    if f.failed > 0 {
        f.span_ms = last - first;
    }
    f.code = codes
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(c, _)| c.to_string());
    f.entry = entries.into_iter().max_by_key(|(_, n)| *n).map(|(e, _)| e);
    f
}

/// Per client: the catalogue entry of its most frequent failed connection
/// attempt (what a call that found no connection ran into).
pub fn connect_entries(r: &Recorded) -> BTreeMap<String, EntryId> {
    let mut counts = BTreeMap::<(&str, EntryId), u64>::new();
    for t in r.events.iter().filter(|t| t.is_client()) {
        if let EventKind::Connect {
            result: ConnectResult::Error,
            cause: Some(c),
            ..
        } = &t.event.kind
        {
            if let Some(e) = crate::diagnose::connect_entry(*c) {
                *counts.entry((t.who.as_str(), e)).or_default() += 1;
            }
        }
    }
    let mut best = BTreeMap::<String, (EntryId, u64)>::new();
    for ((who, e), n) in counts {
        let b = best.entry(who.to_string()).or_insert((e, n));
        if n > b.1 {
            *b = (e, n);
        }
    }
    best.into_iter().map(|(w, (e, _))| (w, e)).collect()
}

/// The verdict of one variant: `own` its figure, `broken` the broken
/// variant's (for a fixed one), `results` its own expectations.
pub fn judge(
    role: Role,
    interrupted: bool,
    results: &[CheckResult],
    own: &Figure,
    broken: Option<&Figure>,
) -> Verdict {
    let met = results.iter().all(|c| c.passed);
    let outcome = match (interrupted, role, met) {
        (true, ..) => Outcome::Interrupted,
        (_, Role::Broken, true) => Outcome::Reproduced,
        (_, Role::Broken, false) => Outcome::NotReproduced,
        (_, Role::Fixed, true) => Outcome::Fixed,
        (_, Role::Fixed, false) => Outcome::NotFixed,
        (_, Role::Plain, true) => Outcome::Passed,
        (_, Role::Plain, false) => Outcome::Failed,
    };
    let mut parts: Vec<String> = Vec::new();
    let beside = broken.filter(|_| role != Role::Broken);
    for (i, s) in own.signature.iter().enumerate() {
        let Some((_, s)) = s else { continue };
        let theirs = beside.and_then(|b| b.signature.get(i).cloned().flatten());
        parts.push(match theirs {
            Some((v, _)) => format!("{s} (broken: {v})"),
            None => s.clone(),
        });
    }
    if let Some(c) = own.calls_words() {
        let theirs = beside.and_then(|b| {
            (b.calls > 0).then(|| format!("{} over {:.1}s", b.failed, b.span_ms / 1e3))
        });
        parts.push(match theirs {
            Some(t) => format!("{c} (broken: {t})"),
            None => c,
        });
    }
    let unmet: Vec<&CheckResult> = results
        .iter()
        .filter(|c| !c.passed && !c.not_reached)
        .collect();
    if !unmet.is_empty() && !interrupted {
        parts.insert(
            0,
            format!(
                "{} of {} expectations not met ({})",
                unmet.len(),
                results.len(),
                unmet
                    .iter()
                    .map(|c| format!("{}: found {}", c.check, c.value))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        );
    }
    if interrupted {
        let not = results.iter().filter(|c| c.not_reached).count();
        parts.insert(
            0,
            format!("{not} of {} expectations not reached", results.len()),
        );
    }
    let sentence = if parts.is_empty() {
        outcome.word().to_string()
    } else {
        format!("{}: {}", outcome.word(), parts.join("; "))
    };
    Verdict {
        outcome,
        sentence,
        advice: None,
    }
}

/// What the scenario's own clients already have, by the words a fix uses
/// for it.
fn configured(plan: &Plan) -> Vec<(&'static [&'static str], &'static str)> {
    let mut have = Vec::new();
    for c in plan.clients.iter().map(|c| &c.spec) {
        let sc = c
            .service_config
            .as_ref()
            .map(|v| v.to_string())
            .unwrap_or_default();
        let wfr = c.wait_for_ready || sc.contains("\"waitForReady\":true");
        let checks: [(bool, &'static [&'static str], &'static str); 6] = [
            (
                sc.contains("retryPolicy"),
                &["retry UNAVAILABLE", "retries"],
                "a retryPolicy",
            ),
            (
                c.transparent_retry,
                &["transparent retry", "retry it transparently"],
                "transparent retry",
            ),
            (wfr, &["wait-for-ready"], "wait-for-ready"),
            (c.keepalive.is_some(), &["keepalive"], "client keepalive"),
            (
                sc.contains("healthCheckConfig") || c.health_service.is_some(),
                &["health checking"],
                "health checking",
            ),
            (
                c.lb == super::model::LbSpec::RoundRobin,
                &["round_robin"],
                "round_robin",
            ),
        ];
        for (on, words, name) in checks {
            if on && !have.iter().any(|(_, n)| *n == name) {
                have.push((words, name));
            }
        }
    }
    have
}

/// The catalogue's fix for what failed, without what the scenario's own
/// clients already have (said instead): for a variant whose fix did not
/// fix, or a plain scenario that failed.
pub fn advice(plan: &Plan, own: &Figure, outcome: Outcome) -> Option<String> {
    if !matches!(outcome, Outcome::NotFixed | Outcome::Failed) {
        return None;
    }
    let entry = own.entry?;
    let fix = crate::catalogue::entry(entry).fix;
    let have = configured(plan);
    let mut already = Vec::new();
    let keep: Vec<&str> = fix
        .split("; ")
        .flat_map(|part| part.split(", or "))
        .filter(|part| {
            let hit = have
                .iter()
                .find(|(words, _)| words.iter().any(|w| part.contains(w)));
            if let Some((_, name)) = hit {
                if !already.contains(name) {
                    already.push(*name);
                }
            }
            hit.is_none()
        })
        .collect();
    let mut out = format!("[{entry}] ");
    if keep.is_empty() {
        out.push_str("the catalogue's fix is in place here");
    } else {
        out.push_str(&keep.join("; "));
    }
    if !already.is_empty() {
        out.push_str(&format!(
            " (this scenario has {} already)",
            already.join(", ")
        ));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(passed: bool) -> CheckResult {
        CheckResult {
            check: "rpcs code=UNAVAILABLE at_least=40".into(),
            measure: "rpcs code=UNAVAILABLE".into(),
            passed,
            value: "3".into(),
            diagnosis: None,
            not_reached: false,
        }
    }

    fn fig(sig: &str, failed: u64) -> Figure {
        Figure {
            signature: vec![Some((sig.split(' ').next().unwrap().into(), sig.into()))],
            calls: 450,
            failed,
            span_ms: 4500.0,
            code: Some("UNAVAILABLE".into()),
            entry: Some(EntryId::ConnectionRefused),
        }
    }

    #[test]
    fn advice_leaves_out_what_the_scenario_already_has() {
        let text = r#"name: a
duration: 2s
client:
  load: { call: helloworld.Greeter/SayHello }
  service_config:
    methodConfig:
      - name: [{ service: helloworld.Greeter }]
        retryPolicy: { maxAttempts: 3, initialBackoff: 0.1s, maxBackoff: 1s, backoffMultiplier: 2, retryableStatusCodes: [UNAVAILABLE] }
"#;
        let c = super::super::load::parse("a.yaml", text).unwrap();
        let fig = Figure {
            entry: Some(EntryId::DrainCut),
            ..Figure::default()
        };
        // "a grace longer than the longest call; retry UNAVAILABLE (...)"
        let a = advice(&c.plans[0], &fig, Outcome::NotFixed).unwrap();
        assert!(
            a.starts_with("[drain-cut] a grace longer than the longest call"),
            "{a}"
        );
        assert!(!a.contains("retry UNAVAILABLE"), "{a}");
        assert!(a.contains("this scenario has a retryPolicy already"), "{a}");
        assert_eq!(advice(&c.plans[0], &fig, Outcome::Fixed), None);
    }

    #[test]
    fn roles_come_from_the_variant_names() {
        assert_eq!(Role::of(Some("broken")), Role::Broken);
        assert_eq!(Role::of(Some("fixed-drain")), Role::Fixed);
        assert_eq!(Role::of(Some("fast")), Role::Plain);
        assert_eq!(Role::of(None), Role::Plain);
    }

    #[test]
    fn a_broken_variant_says_reproduced_and_a_fixed_one_puts_the_figure_beside() {
        let broken = fig("85 calls failed UNAVAILABLE after `back`", 226);
        let v = judge(Role::Broken, false, &[result(true)], &broken, Some(&broken));
        assert_eq!(v.outcome, Outcome::Reproduced);
        assert!(
            v.sentence.starts_with("reproduced: 85 calls failed"),
            "{}",
            v.sentence
        );
        assert!(
            v.sentence
                .contains("226 of 450 calls failed over 4.5s (UNAVAILABLE, connection-refused)"),
            "{}",
            v.sentence
        );
        let fixed = fig("0 calls failed UNAVAILABLE after `back`", 0);
        let v = judge(Role::Fixed, false, &[result(true)], &fixed, Some(&broken));
        assert_eq!(v.outcome, Outcome::Fixed);
        assert!(
            v.sentence
                .contains("0 calls failed UNAVAILABLE after `back` (broken: 85)"),
            "{}",
            v.sentence
        );
        assert!(
            v.sentence
                .contains("no call failed (of 450) (broken: 226 over 4.5s)"),
            "{}",
            v.sentence
        );
        // Not met: not reproduced, and which expectation says so.
        let v = judge(Role::Broken, false, &[result(false)], &broken, None);
        assert_eq!(v.outcome, Outcome::NotReproduced);
        assert!(
            v.sentence.contains(
                "1 of 1 expectations not met (rpcs code=UNAVAILABLE at_least=40: found 3)"
            ),
            "{}",
            v.sentence
        );
        assert!(!v.outcome.good());
    }

    #[test]
    fn an_interrupted_run_counts_what_it_did_not_reach() {
        let mut r = result(false);
        r.not_reached = true;
        let v = judge(
            Role::Fixed,
            true,
            &[r, result(true)],
            &Figure::default(),
            None,
        );
        assert_eq!(v.outcome, Outcome::Interrupted);
        assert!(
            v.sentence
                .starts_with("interrupted: 1 of 2 expectations not reached"),
            "{}",
            v.sentence
        );
    }
}
