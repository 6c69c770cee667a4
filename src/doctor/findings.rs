//! Findings: what the measurements saw, turned into the report's rows -
//! each with its outcome, how it was measured, a confidence and who it is
//! attributed to (the server, a proxy in front, the network).

use super::link::{ms, GoawaySeen};
use super::model::{secs, Confidence, Finding, Outcome, Party};
use super::{age, enforce, idle};

/// Debug data of an idle drain: grpc-go's `max_idle`, C-core's
/// `connection idle`.
fn is_idle_debug(d: &str) -> bool {
    d.contains("idle")
}

fn goaway_text(g: &GoawaySeen) -> String {
    if g.debug.is_empty() {
        format!("GOAWAY {} (no debug data)", g.code)
    } else {
        format!("GOAWAY {} \"{}\"", g.code, g.debug)
    }
}

/// A connection that a GOAWAY or a close ended `start_ms` into its quiet:
/// the idle finding it makes (or, when the GOAWAY was the max age's, a
/// "not measured").
/// How far apart two drains of one max age can be: grpc-go and grpc-java
/// add +-10% of jitter to each connection's age.
const AGE_SPREAD: f64 = 0.25;

/// How a quiet connection was watched: since when it was quiet, since
/// when it was open, and the longest quiet it had already survived.
struct Watched {
    start_ms: f64,
    ready_ms: f64,
    survived_ms: Option<f64>,
}

fn ended_finding(
    f: &Finding,
    how: &str,
    w: Watched,
    goaway: Option<&GoawaySeen>,
    closed: Option<&(f64, String)>,
    age_ms: Option<f64>,
    proxy: bool,
) -> Option<Finding> {
    let f = f.clone().how(how);
    if let Some(g) = goaway {
        let after = g.at_ms - w.start_ms;
        let conn_age = g.at_ms - w.ready_ms;
        let named_idle = is_idle_debug(&g.debug);
        // A drain that came while a call was running is not idle.
        if !named_idle && after < 0.0 {
            return Some(
                Finding {
                    outcome: Outcome::NotMeasured,
                    ..f
                }
                .result(format!(
                    "{} came while a call was running (connection age {}): not an idle timeout (max age or a stop)",
                    goaway_text(g),
                    secs(conn_age)
                )),
            );
        }
        // A drain after less quiet than the connection had already
        // survived is not an idle timeout.
        if let Some(s) = w.survived_ms.filter(|s| !named_idle && after + 50.0 < *s) {
            return Some(
                Finding {
                    outcome: Outcome::NotMeasured,
                    lower_ms: Some(s),
                    ..f
                }
                .result(format!(
                    "{} after {} without calls, though {} without calls had passed before: not an idle timeout (max age or a stop, at connection age {})",
                    goaway_text(g),
                    secs(after),
                    secs(s),
                    secs(conn_age)
                )),
            );
        }
        let is_age = g.debug.contains("max_age")
            || (!named_idle && age_ms.is_some_and(|a| (conn_age - a).abs() <= AGE_SPREAD * a));
        if is_age {
            return Some(
                Finding {
                    outcome: Outcome::NotMeasured,
                    lower_ms: Some(after),
                    ..f
                }
                .result(format!(
                    "the max age (connection age {}) ended the quiet connection first, after {} without calls: an idle timeout, if any, is longer",
                    secs(conn_age),
                    secs(after)
                )),
            );
        }
        let by = if is_idle_debug(&g.debug) || !proxy {
            Party::Server
        } else {
            Party::Proxy
        };
        return Some(
            Finding {
                value_ms: Some(after),
                by: Some(by),
                goaway: Some(g.clone()),
                ..f
            }
            .result(format!(
                "{} after {} without calls",
                goaway_text(g),
                secs(after)
            )),
        );
    }
    let (at, reason) = closed?;
    let after = at - w.start_ms;
    Some(
        Finding {
            value_ms: Some(after),
            by: Some(if proxy { Party::Proxy } else { Party::Network }),
            ..f
        }
        .result(format!(
            "closed without GOAWAY ({reason}) after {} without calls",
            secs(after)
        ))
        .confidence(Confidence::Medium),
    )
}

pub(super) fn idle_finding(
    q: &Result<idle::Quiet, String>,
    age_ms: Option<f64>,
    proxy: bool,
) -> Finding {
    let f = Finding::new(
        "idle_timeout",
        "idle timeout (no call yet)",
        Outcome::Measured,
    );
    let q = match q {
        Ok(q) => q,
        Err(e) => {
            return Finding {
                outcome: Outcome::NotMeasured,
                ..f
            }
            .result(format!("no quiet connection: {e}"))
        }
    };
    let how = "a new connection left quiet (no calls, no PINGs) until it was ended";
    if let Some(found) = ended_finding(
        &f,
        how,
        Watched {
            start_ms: q.ready_ms,
            ready_ms: q.ready_ms,
            survived_ms: None,
        },
        q.goaway.as_ref(),
        q.closed.as_ref(),
        age_ms,
        proxy,
    ) {
        return found;
    }
    match q.final_ping {
        Some(false) => Finding {
            outcome: Outcome::Measured,
            upper_ms: Some(q.quiet_ms),
            by: Some(Party::Network),
            ..f
        }
        .result(format!(
            "silently dropped: a PING after {} quiet got no answer (no GOAWAY, no close)",
            secs(q.quiet_ms)
        ))
        .how(how)
        .confidence(Confidence::Medium),
        Some(true) => Finding {
            outcome: Outcome::NoneSeen,
            lower_ms: Some(q.quiet_ms),
            ..f
        }
        .result(format!(
            "none within {}: still open, a PING answered",
            secs(q.quiet_ms)
        ))
        .how(how),
        None => Finding {
            outcome: Outcome::OutOfBudget,
            lower_ms: Some(q.quiet_ms),
            ..f
        }
        .result(format!("none within {}", secs(q.quiet_ms)))
        .how(how),
    }
}

pub(super) fn idle_after_call_finding(
    l: &idle::Ladder,
    age_ms: Option<f64>,
    proxy: bool,
) -> Finding {
    let f = Finding::new(
        "idle_after_call",
        "idle timeout after a call",
        Outcome::Measured,
    );
    let how = "calls after quiet gaps of 1, 2, 4, 8, ... s on one connection, until it was ended";
    if let Some(found) = ended_finding(
        &f,
        how,
        Watched {
            start_ms: l.last_call_end_ms,
            ready_ms: l.ready_ms,
            survived_ms: l.last_ok_s.map(|s| s * 1e3),
        },
        l.goaway.as_ref(),
        l.closed.as_ref(),
        age_ms,
        proxy,
    ) {
        return found;
    }
    let longest = l.last_ok_s.unwrap_or(0.0) * 1e3;
    Finding {
        outcome: if l.unanswered_s.is_some() {
            Outcome::NotMeasured
        } else {
            Outcome::NoneSeen
        },
        lower_ms: Some(longest),
        ..f
    }
    .result(if l.unanswered_s.is_some() {
        "a call went unanswered (see silent idle drop)".to_string()
    } else {
        format!("none: a call after {} quiet was answered", secs(longest))
    })
    .how(how)
}

pub(super) fn drop_finding(l: &idle::Ladder, q: &Result<idle::Quiet, String>) -> Finding {
    let f = Finding::new("silent_idle_drop", "silent idle drop", Outcome::Measured);
    let how =
        "calls after quiet gaps of 1, 2, 4, 8, ... s on one connection; a PING on the quiet one";
    if let Some(bad) = l.unanswered_s {
        let lo = l.last_ok_s.unwrap_or(0.0);
        return Finding {
            lower_ms: Some(lo * 1e3),
            upper_ms: Some(bad * 1e3),
            by: Some(Party::Network),
            ..f
        }
        .result(format!(
            "a call after {} quiet got no answer (one after {} did): something in the path forgets a connection idle for {}-{}",
            secs(bad * 1e3),
            secs(lo * 1e3),
            secs(lo * 1e3),
            secs(bad * 1e3)
        ))
        .how(how)
        .confidence(Confidence::Medium);
    }
    if let Ok(q) = q {
        if q.final_ping == Some(false) {
            return Finding {
                lower_ms: l.last_ok_s.map(|s| s * 1e3),
                upper_ms: Some(q.quiet_ms),
                by: Some(Party::Network),
                ..f
            }
            .result(format!(
                "a PING after {} quiet got no answer: something in the path forgets idle connections",
                secs(q.quiet_ms)
            ))
            .how(how)
            .confidence(Confidence::Medium);
        }
    }
    let longest = l.last_ok_s.map(|s| s * 1e3).unwrap_or(0.0).max(match q {
        Ok(q) if q.final_ping == Some(true) => q.quiet_ms,
        _ => 0.0,
    });
    let ended = l
        .ended_in_s
        .map(|g| {
            format!(
                "; the gaps' connection was ended during a {} gap",
                secs(g * 1e3)
            )
        })
        .unwrap_or_default();
    Finding {
        outcome: Outcome::NoneSeen,
        lower_ms: Some(longest),
        ..f
    }
    .result(format!(
        "still answered after {} quiet{ended}",
        secs(longest)
    ))
    .how(how)
}

pub(super) fn age_findings(a: &Result<age::AgeRun, String>, proxy: bool) -> (Finding, Finding) {
    let f = Finding::new("max_age", "max connection age", Outcome::Measured);
    let g = Finding::new(
        "max_age_grace",
        "max connection age grace",
        Outcome::Measured,
    );
    let how = "a connection with a call every second (and one held open), until a GOAWAY";
    let a = match a {
        Ok(a) => a,
        Err(e) => {
            let r = format!("no busy connection: {e}");
            return (
                Finding {
                    outcome: Outcome::NotMeasured,
                    ..f
                }
                .result(r.clone()),
                Finding {
                    outcome: Outcome::NotMeasured,
                    ..g
                }
                .result(r),
            );
        }
    };
    let Some(goaway) = &a.goaway else {
        let watched = a
            .closed
            .as_ref()
            .map(|(t, _)| t - a.ready_ms)
            .unwrap_or(0.0);
        let (age, grace) = match &a.closed {
            Some((_, reason)) => (
                Finding {
                    outcome: Outcome::Measured,
                    value_ms: Some(watched),
                    by: Some(if proxy { Party::Proxy } else { Party::Network }),
                    ..f
                }
                .result(format!(
                    "closed without GOAWAY ({reason}) after {} while busy",
                    secs(watched)
                ))
                .how(how)
                .confidence(Confidence::Medium),
                Finding {
                    outcome: Outcome::NotMeasured,
                    ..g
                }
                .result("no GOAWAY: no drain"),
            ),
            None => (
                Finding {
                    outcome: Outcome::NoneSeen,
                    ..f
                }
                .result("no GOAWAY within the budget")
                .how(how),
                Finding {
                    outcome: Outcome::NotMeasured,
                    ..g
                }
                .result("no max-age GOAWAY to measure it from"),
            ),
        };
        return (age, grace);
    };
    let after = goaway.at_ms - a.ready_ms;
    let party = if goaway.debug.contains("max_age") || !proxy {
        Party::Server
    } else {
        Party::Proxy
    };
    let is_idle = is_idle_debug(&goaway.debug);
    let age = if is_idle {
        Finding {
            outcome: Outcome::NotMeasured,
            ..f
        }
        .result(format!(
            "the busy connection got an idle GOAWAY ({}) after {}",
            goaway_text(goaway),
            secs(after)
        ))
        .how(how)
    } else {
        Finding {
            value_ms: Some(after),
            goaway: Some(goaway.clone()),
            by: Some(party),
            ..f
        }
        .result(format!("{} after {}", goaway_text(goaway), secs(after)))
        .how(how)
        .confidence(if goaway.debug.contains("max_age") {
            Confidence::High
        } else {
            Confidence::Medium
        })
    };
    let grace = match (&a.closed, a.held_across) {
        (Some((closed, _)), true) => Finding {
            value_ms: Some(closed - goaway.at_ms),
            by: Some(party),
            ..g
        }
        .result(format!(
            "{}: a call held open across the drain was cut when the connection closed",
            secs(closed - goaway.at_ms)
        ))
        .how(format!(
            "the GOAWAY to the close, with {} held open",
            a.held_method.as_deref().unwrap_or("a call").trim_start_matches('/')
        )),
        (None, true) => Finding {
            outcome: Outcome::OutOfBudget,
            ..g
        }
        .result("the connection was still draining when the budget ran out"),
        (_, false) => Finding {
            outcome: Outcome::NotMeasured,
            ..g
        }
        .result("no call was held open across the drain (name a streaming or slow method with --hold-method)"),
    };
    (age, grace)
}

pub(super) fn enforce_findings(
    e: Option<Result<enforce::Enforcement, String>>,
    hold: &Option<String>,
    provoke: bool,
    proxy: bool,
) -> Vec<Finding> {
    let f = Finding::new(
        "ping_min_interval",
        "keepalive: minimum PING interval",
        Outcome::Measured,
    );
    let p = Finding::new(
        "pings_without_calls",
        "keepalive: PINGs without calls",
        Outcome::Measured,
    );
    let not = |why: String| {
        vec![
            Finding {
                outcome: if provoke {
                    Outcome::NotMeasured
                } else {
                    Outcome::Skipped
                },
                ..f.clone()
            }
            .result(why.clone()),
            Finding {
                outcome: if provoke {
                    Outcome::NotMeasured
                } else {
                    Outcome::Skipped
                },
                ..p.clone()
            }
            .result(why),
        ]
    };
    if !provoke {
        return not("--no-provoke".into());
    }
    let e = match (e, hold) {
        (Some(Ok(e)), _) => e,
        (Some(Err(err)), _) => return not(format!("failed: {err}")),
        (None, None) => return not("no method to hold a call open on (pass --hold-method)".into()),
        (None, Some(_)) => return not("the probe did not run".into()),
    };
    let how = format!(
        "PINGs on connections of their own with a call held open: 2 strikes, then one PING after the interval; {} probes on {} connections",
        e.probes, e.connections
    );
    let who = if proxy { Party::Proxy } else { Party::Server };
    let min = match (e.struck_max, e.accepted_min) {
        (_, _) if e.error.is_some() => Finding {
            outcome: Outcome::NotMeasured,
            lower_ms: e.struck_max.map(ms),
            ..f
        }
        .result(e.error.clone().unwrap_or_default())
        .how(how.clone()),
        (None, Some(a)) => Finding {
            outcome: Outcome::NoneSeen,
            upper_ms: Some(ms(a)),
            by: Some(who),
            ..f
        }
        .result(format!(
            "no too_many_pings: PINGs {} apart are accepted{}",
            secs(ms(a)),
            if proxy {
                " (by the proxy, which answers PINGs itself)"
            } else {
                ""
            }
        ))
        .how(how.clone()),
        (Some(s), Some(a)) => Finding {
            value_ms: Some(ms(a)),
            lower_ms: Some(ms(s)),
            upper_ms: Some(ms(a)),
            by: Some(who),
            ..f
        }
        .result(format!(
            "about {}: PINGs {} apart get GOAWAY ENHANCE_YOUR_CALM \"too_many_pings\", {} apart are accepted",
            secs(ms(a)),
            secs(ms(s)),
            secs(ms(a))
        ))
        .how(how.clone()),
        (Some(s), None) => Finding {
            outcome: Outcome::OutOfBudget,
            lower_ms: Some(ms(s)),
            by: Some(who),
            ..f
        }
        .result(format!(
            "above {}: PINGs {} apart still get too_many_pings (grpc-go's default is 5m)",
            secs(ms(s)),
            secs(ms(s))
        ))
        .how(how.clone()),
        (None, None) => Finding {
            outcome: Outcome::OutOfBudget,
            ..f
        }
        .result("the budget ran out before the first probe")
        .how(how.clone()),
    };
    let without = match e.without_calls {
        Ok(permitted) => Finding {
            permitted: Some(permitted),
            by: Some(who),
            ..p
        }
        .result(if permitted {
            "permitted".to_string()
        } else {
            "not permitted: a PING on a connection without calls after more than the minimum interval got too_many_pings".to_string()
        })
        .how("2 strikes on a connection without calls, then a PING 1.25x the minimum interval later"),
        Err(why) => Finding {
            outcome: if e.out_of_budget {
                Outcome::OutOfBudget
            } else {
                Outcome::NotMeasured
            },
            ..p
        }
        .result(why),
    };
    vec![min, without]
}

pub(super) fn server_pings(q: &idle::Quiet) -> Finding {
    let f = Finding::new(
        "server_pings",
        "server keepalive PINGs",
        if q.server_pings > 0 {
            Outcome::Measured
        } else {
            Outcome::NoneSeen
        },
    )
    .how("PINGs the server sent on the quiet connection");
    if q.server_pings > 1 {
        let every = q.watched_ms / q.server_pings as f64;
        Finding {
            value_ms: Some(every),
            ..f
        }
        .result(format!(
            "{} PINGs in {} (about one every {})",
            q.server_pings,
            secs(q.watched_ms),
            secs(every)
        ))
        .confidence(Confidence::Medium)
    } else if q.server_pings == 1 {
        // One PING is no interval: "none seen" would be false.
        f.result(format!("1 PING in {}: too few to time", secs(q.watched_ms)))
            .confidence(Confidence::Low)
    } else {
        f.result(format!("none in {}", secs(q.watched_ms)))
    }
}

/// The busy connection's run for finding `f`, when it had what `f` needs
/// (`has`); else `f` as skipped (`missing` says why) or, without a busy
/// connection, not measured.
fn busy<'a>(
    a: &'a Result<age::AgeRun, String>,
    f: &Finding,
    has: fn(&age::AgeRun) -> bool,
    missing: &str,
) -> Result<&'a age::AgeRun, Box<Finding>> {
    match a {
        Ok(a) if has(a) => Ok(a),
        Ok(_) => Err(Box::new(
            Finding {
                outcome: Outcome::Skipped,
                ..f.clone()
            }
            .result(missing),
        )),
        Err(e) => Err(Box::new(
            Finding {
                outcome: Outcome::NotMeasured,
                ..f.clone()
            }
            .result(format!("no busy connection: {e}")),
        )),
    }
}

/// The call held open on the busy connection, waiting for a response that
/// never comes: ended before any GOAWAY, it shows a per-call timeout (a
/// proxy's read timeout: nginx grpc_read_timeout, HAProxy timeout server,
/// Envoy's route timeout), else none within what was watched.
pub(super) fn held_call_finding(a: &Result<age::AgeRun, String>, proxy: bool) -> Finding {
    let f = Finding::new(
        "held_call_end",
        "a call waiting for its response",
        Outcome::Measured,
    )
    .how("a call whose request never ends, held open on the busy connection");
    let a = match busy(
        a,
        &f,
        |a| a.held_method.is_some(),
        "no method to hold a call open on (--hold-method)",
    ) {
        Ok(a) => a,
        Err(skipped) => return *skipped,
    };
    match &a.held_ended {
        Some((after, how)) => {
            let by = if proxy || how.starts_with("HTTP") {
                Party::Proxy
            } else {
                Party::Server
            };
            Finding {
                value_ms: Some(*after),
                by: Some(by),
                ..f
            }
            .result(format!(
                "ended after {} with no response: {how}",
                secs(*after)
            ))
        }
        None => Finding {
            outcome: Outcome::NoneSeen,
            lower_ms: Some(a.held_open_ms),
            ..f
        }
        .result(format!("still open after {}", secs(a.held_open_ms))),
    }
}

/// The stream answered and kept open on the busy connection (health
/// Watch): ended before any GOAWAY, after a quiet time, it shows a timeout
/// on quiet streams (nginx's grpc_read_timeout resets it with
/// INTERNAL_ERROR; HAProxy's timeout server, Envoy's stream idle timeout),
/// else none within what was watched.
pub(super) fn quiet_stream_finding(a: &Result<age::AgeRun, String>, proxy: bool) -> Finding {
    let f = Finding::new(
        "quiet_stream_end",
        "a stream waiting for its next message",
        Outcome::Measured,
    )
    .how("health Watch on the busy connection: answered once, then quiet");
    let a = match busy(
        a,
        &f,
        |a| a.stream_method.is_some(),
        "no health service to watch",
    ) {
        Ok(a) => a,
        Err(skipped) => return *skipped,
    };
    match &a.stream_ended {
        Some((_, how, false)) => Finding {
            outcome: Outcome::Skipped,
            ..f
        }
        .result(format!(
            "the server did not keep a health Watch open: {how}"
        )),
        Some((quiet, how, true)) => Finding {
            value_ms: Some(*quiet),
            by: Some(if proxy { Party::Proxy } else { Party::Server }),
            ..f
        }
        .result(format!(
            "ended after {} without a message: {how}",
            secs(*quiet)
        )),
        None => Finding {
            outcome: Outcome::NoneSeen,
            lower_ms: Some(a.stream_open_ms),
            ..f
        }
        .result(format!("still open after {}", secs(a.stream_open_ms))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stream_ended: Option<(f64, String, bool)>) -> Result<age::AgeRun, String> {
        Ok(age::AgeRun {
            ready_ms: 0.0,
            goaway: None,
            closed: None,
            held_across: false,
            held_method: None,
            held_ended: None,
            held_open_ms: 5000.0,
            stream_method: Some("/grpc.health.v1.Health/Watch".into()),
            stream_ended,
            stream_open_ms: 5000.0,
        })
    }

    /// Server PINGs: none is "none seen", one is too few to time (not
    /// "none"), several give an interval.
    #[test]
    fn server_pings_are_counted_as_seen() {
        let quiet = |n: usize| idle::Quiet {
            ready_ms: 0.0,
            goaway: None,
            closed: None,
            quiet_ms: 6000.0,
            final_ping: Some(true),
            server_pings: n,
            watched_ms: 6000.0,
        };
        let f = server_pings(&quiet(0));
        assert_eq!(f.outcome, Outcome::NoneSeen);
        assert_eq!(f.result, "none in 6s");
        let f = server_pings(&quiet(1));
        assert_eq!(f.outcome, Outcome::Measured);
        assert!(f.result.contains("too few to time"), "{}", f.result);
        assert_eq!(f.value_ms, None);
        let f = server_pings(&quiet(3));
        assert_eq!(f.value_ms, Some(2000.0));
    }

    /// A Watch reset after it was answered and then quiet is a timeout on
    /// quiet streams; one ended before any answer (a server without Watch)
    /// shows none and says so; one still open is none seen.
    #[test]
    fn a_quiet_stream_is_a_timeout_only_after_an_answer() {
        let reset = "stream reset by the server with INTERNAL_ERROR".to_string();
        let f = quiet_stream_finding(&run(Some((2000.0, reset.clone(), true))), true);
        assert_eq!(f.outcome, Outcome::Measured);
        assert_eq!(f.value_ms, Some(2000.0));
        assert_eq!(f.by, Some(Party::Proxy));
        let unimplemented = "grpc-status 12 (Operation is not implemented or not supported)";
        let f = quiet_stream_finding(&run(Some((0.4, unimplemented.into(), false))), false);
        assert_eq!(f.outcome, Outcome::Skipped, "{}", f.result);
        assert!(
            f.result.contains("did not keep a health Watch open"),
            "{}",
            f.result
        );
        let f = quiet_stream_finding(&run(None), false);
        assert_eq!(f.outcome, Outcome::NoneSeen);
        assert_eq!(f.lower_ms, Some(5000.0));
    }
}
