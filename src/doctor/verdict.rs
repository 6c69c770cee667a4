//! Verdicts: the client configuration judged against the measured policy.
//! A conflict is a setting that will break (exit 1); a note is a policy
//! the client lives with, and what covers it.

use std::time::Duration;

use super::link::ms;
use super::model::secs;
use super::model::{Finding, Outcome, Party, Report, Verdict};
use super::ClientConfig;
use crate::catalogue::EntryId;

fn conflict(entry: EntryId, text: String, fix: String) -> Verdict {
    Verdict {
        conflict: true,
        not_measured: false,
        entry: Some(entry),
        text,
        fix: Some(fix),
        scenario: crate::catalogue::entry(entry).scenario_path(),
    }
}

fn note(entry: EntryId, text: String, scenario: Option<&'static str>) -> Verdict {
    Verdict {
        conflict: false,
        not_measured: false,
        entry: Some(entry),
        text,
        fix: None,
        scenario: scenario.or_else(|| crate::catalogue::entry(entry).scenario_path()),
    }
}

fn d(x: Duration) -> String {
    secs(ms(x))
}

/// grpc-go clients raise a keepalive time below 10 s to 10 s.
const GRPC_GO_MIN_KEEPALIVE: Duration = Duration::from_secs(10);

pub fn judge(r: &Report, c: &ClientConfig) -> Vec<Verdict> {
    let mut v = Vec::new();
    let get = |k: &str| r.finding(k);
    keepalive(
        &mut v,
        get("ping_min_interval"),
        get("pings_without_calls"),
        c,
    );
    if let (Some(t), Some(rtt)) = (c.keepalive_timeout, r.setup.ping_rtt_ms) {
        if c.keepalive_time.is_some() && ms(t) < 10.0 * rtt {
            v.push(conflict(
                EntryId::KeepaliveTimeout,
                format!(
                    "client keepalive timeout {} is close to the PING round trip ({rtt:.1} ms): one slow ACK closes the connection",
                    d(t)
                ),
                "a keepalive timeout of many round trips (grpc-go's default is 20s)".into(),
            ));
        }
    }
    silent_drop(&mut v, get("silent_idle_drop"), get("idle_timeout"), c);
    // What clients meet is the idle timeout after a call; the one of a
    // connection that never called where that was not seen.
    let drained_idle = |f: &&Finding| f.measured() && f.goaway.is_some();
    let idle = get("idle_after_call")
        .filter(drained_idle)
        .or_else(|| get("idle_timeout").filter(drained_idle));
    drains(&mut v, idle, get("max_age"), get("max_age_grace"), c);
    if let Some(f) = get("held_call_end").filter(|f| f.measured()) {
        if let Some(t) = f.value_ms {
            let who = if f.by == Some(Party::Proxy) {
                "a proxy's per-call timeout (nginx grpc_read_timeout, HAProxy timeout server, Envoy's route timeout)"
            } else {
                "the server's own limit"
            };
            v.push(note(
                EntryId::ProxyTimeout,
                format!(
                    "a call that waits {} for its response is ended ({}): {who}; slower calls and quiet streams need it longer",
                    secs(t),
                    f.result.rsplit(": ").next().unwrap_or_default()
                ),
                None,
            ));
        }
    }
    if let Some(f) = get("quiet_stream_end").filter(|f| f.measured()) {
        if let Some(t) = f.value_ms {
            let who = if f.by == Some(Party::Proxy) {
                "a proxy's timeout on a quiet upstream (nginx grpc_read_timeout resets the stream with INTERNAL_ERROR; HAProxy timeout server; Envoy's stream idle timeout)"
            } else {
                "the server's own limit on a quiet stream"
            };
            v.push(note(
                EntryId::ProxyTimeout,
                format!(
                    "a stream with no message for {} is ended ({}): {who}; long-lived streams (watches, subscriptions) need a message or the timeout raised",
                    secs(t),
                    f.result.rsplit(": ").next().unwrap_or_default()
                ),
                None,
            ));
        }
    }
    if let Some(f) = get("max_message_size").filter(|f| f.measured()) {
        if let Some(b) = f.bytes {
            v.push(note(
                EntryId::MessageTooLarge,
                format!(
                    "requests above {} are refused with RESOURCE_EXHAUSTED",
                    super::size::bytes_text(b as usize)
                ),
                None,
            ));
        }
    }
    v
}

fn keepalive(
    v: &mut Vec<Verdict>,
    min: Option<&Finding>,
    without: Option<&Finding>,
    c: &ClientConfig,
) {
    if let Some(f) = min.filter(|f| f.outcome == Outcome::NotMeasured) {
        let asked = c
            .keepalive_time
            .map(|t| {
                format!(
                    "; whether a client keepalive of {} draws GOAWAY too_many_pings is unknown",
                    d(t)
                )
            })
            .unwrap_or_default();
        v.push(Verdict {
            conflict: false,
            not_measured: true,
            entry: Some(EntryId::TooManyPings),
            text: format!(
                "not measured: the server's minimum PING interval ({}){asked}",
                f.result
            ),
            fix: Some("run again with a longer --budget, or name a method the server keeps open with --hold-method (a streaming method)".into()),
            scenario: None,
        });
    }
    let Some(time) = c.keepalive_time else {
        return;
    };
    // grpc-go clients raise a keepalive time below 10 s to 10 s.
    let go_note = |m: f64| {
        if time >= GRPC_GO_MIN_KEEPALIVE {
            ""
        } else if ms(GRPC_GO_MIN_KEEPALIVE) >= m {
            "; a grpc-go client raises a keepalive time below 10s to 10s and so does not conflict, C-core and grpcdoc clients use it as given"
        } else {
            "; grpc-go clients raise a keepalive time below 10s to 10s, still below"
        }
    };
    if let Some(f) = min {
        let t = ms(time);
        // Measured to within its bounds: at or below the interval that
        // drew too_many_pings breaks; between the bounds is at the limit.
        if let (Outcome::Measured, Some(lo), Some(hi)) = (f.outcome, f.lower_ms, f.upper_ms) {
            if t > lo && t < hi {
                v.push(Verdict {
                    conflict: false,
                    not_measured: false,
                    entry: Some(EntryId::TooManyPings),
                    text: format!(
                        "at the limit: client keepalive {} lies between {} (drew too_many_pings) and {} (accepted), the resolution of the measured minimum: it may draw GOAWAY too_many_pings",
                        d(time),
                        secs(lo),
                        secs(hi)
                    ),
                    fix: Some(format!("a client keepalive Time of {} or more is clear of it", secs(hi))),
                    scenario: crate::catalogue::entry(EntryId::TooManyPings).scenario_path(),
                });
            }
        }
        let breaks = match f.outcome {
            Outcome::Measured => f
                .value_ms
                .filter(|m| t < *m && f.lower_ms.is_none_or(|lo| t <= lo)),
            Outcome::OutOfBudget => f.lower_ms.filter(|m| t <= *m),
            _ => None,
        };
        if let Some(m) = breaks {
            let (above, at_least) = if f.outcome == Outcome::OutOfBudget {
                ("above ", "above ")
            } else {
                ("", "")
            };
            v.push(conflict(
                EntryId::TooManyPings,
                format!(
                    "client keepalive {} < server minimum {above}{}: the server will answer with GOAWAY too_many_pings (entry too-many-pings){}",
                    d(time),
                    secs(m),
                    go_note(m)
                ),
                format!(
                    "set the client's keepalive Time {}{}, or ask for a lower minimum on the server (grpc-go EnforcementPolicy.MinTime, C-core grpc.http2.min_ping_interval_without_data_ms, grpc-java NettyServerBuilder.permitKeepAliveTime)",
                    if at_least.is_empty() { ">= " } else { "well " },
                    format_args!("{at_least}{}", secs(m))
                ),
            ));
        }
    }
    if c.permit_without_stream && without.is_some_and(|f| f.permitted == Some(false)) {
        v.push(conflict(
            EntryId::TooManyPings,
            "the client pings without calls (permit-without-stream) and the server does not permit it: an idle connection gets GOAWAY too_many_pings after its third PING (entry too-many-pings)".into(),
            "drop PermitWithoutStream on the client, or ask for PermitWithoutStream (grpc.keepalive_permit_without_calls) on the server".into(),
        ));
    }
}

fn silent_drop(
    v: &mut Vec<Verdict>,
    drop: Option<&Finding>,
    idle: Option<&Finding>,
    c: &ClientConfig,
) {
    let found = drop.filter(|f| f.measured()).or_else(|| {
        idle.filter(|f| {
            f.measured()
                && f.by == Some(Party::Network)
                && f.goaway.is_none()
                && f.upper_ms.is_some()
        })
    });
    let Some(f) = found else { return };
    let lo = f.lower_ms.unwrap_or(0.0);
    let hi = f.upper_ms.unwrap_or(lo);
    let window = if lo > 0.0 {
        format!("between {} and {}", secs(lo), secs(hi))
    } else {
        format!("within {}", secs(hi))
    };
    if c.idle_timeout.is_some_and(|t| ms(t) < lo) {
        v.push(note(
            EntryId::IdleDrop,
            format!(
                "the path forgets idle connections ({window}); the client's idle timeout closes them first"
            ),
            Some("scenarios/l4-idle-drop.yaml"),
        ));
        return;
    }
    let kept_alive =
        c.permit_without_stream && c.keepalive_time.is_some_and(|t| lo > 0.0 && ms(t) < lo);
    if kept_alive {
        v.push(note(
            EntryId::IdleDrop,
            format!("the path forgets connections idle {window}; the client's keepalive with permit-without-stream keeps them alive"),
            Some("scenarios/l4-idle-drop.yaml"),
        ));
        return;
    }
    v.push(Verdict {
        scenario: Some("scenarios/l4-idle-drop.yaml"),
        ..conflict(
            EntryId::IdleDrop,
            format!(
                "the path silently forgets connections idle {window}: the next call on such a connection hangs until its deadline (entry idle-drop)"
            ),
            format!(
                "client keepalive below {} with permit-without-stream (and a server that permits it), or a client idle timeout below it",
                secs(if lo > 0.0 { lo } else { hi })
            ),
        )
    });
}

fn drains(
    v: &mut Vec<Verdict>,
    idle: Option<&Finding>,
    age: Option<&Finding>,
    grace: Option<&Finding>,
    c: &ClientConfig,
) {
    let covered = if c.retries_unavailable {
        "covered by the retryPolicy of your service config (UNAVAILABLE)"
    } else {
        "harmless with retries (retry UNAVAILABLE)"
    };
    if let Some(f) = idle.filter(|f| f.measured() && f.goaway.is_some()) {
        let t = f.value_ms.unwrap_or(0.0);
        let proxy = f.by == Some(Party::Proxy);
        if c.idle_timeout.is_some_and(|i| ms(i) < t) {
            v.push(note(
                EntryId::IdleTimeout,
                format!(
                    "{} idle timeout {}: the client's own idle timeout closes idle connections first",
                    if proxy { "proxy" } else { "server" },
                    secs(t)
                ),
                None,
            ));
        } else if proxy {
            v.push(note(
                EntryId::MiddleboxGoaway,
                format!(
                    "the proxy in front drains connections idle {}: {covered}",
                    secs(t)
                ),
                None,
            ));
        } else {
            v.push(note(
                EntryId::IdleTimeout,
                format!(
                    "server idle timeout {}: connections idle longer are drained; {covered}",
                    secs(t)
                ),
                None,
            ));
        }
    }
    if let Some(f) = age.filter(|f| f.measured() && f.goaway.is_some()) {
        let t = f.value_ms.unwrap_or(0.0);
        v.push(note(
            EntryId::MaxAgeDrain,
            format!(
                "{} max connection age about {}: every connection is drained that often; {covered}",
                if f.by == Some(Party::Proxy) {
                    "proxy"
                } else {
                    "server"
                },
                secs(t)
            ),
            Some("scenarios/max-age-goaway.yaml"),
        ));
        if let Some(g) = grace.filter(|g| g.measured()).and_then(|g| g.value_ms) {
            v.push(note(
                EntryId::DrainCut,
                format!(
                    "max age grace {}: a call still running that long after the drain began is cut",
                    secs(g)
                ),
                None,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimum measured between `lo` (struck) and `hi` (accepted).
    fn min(lo: f64, hi: f64) -> Finding {
        Finding {
            value_ms: Some(hi),
            lower_ms: Some(lo),
            upper_ms: Some(hi),
            ..Finding::new(
                "ping_min_interval",
                "keepalive: minimum PING interval",
                Outcome::Measured,
            )
        }
    }

    fn judged(time_ms: u64, f: &Finding) -> Vec<Verdict> {
        let c = ClientConfig {
            keepalive_time: Some(Duration::from_millis(time_ms)),
            ..ClientConfig::default()
        };
        let mut v = Vec::new();
        keepalive(&mut v, Some(f), None, &c);
        v
    }

    #[test]
    fn a_keepalive_within_the_resolution_is_at_the_limit_not_a_conflict() {
        let f = min(2900.0, 3300.0);
        let at = judged(3100, &f);
        assert_eq!(at.len(), 1, "{at:?}");
        assert!(
            !at[0].conflict && at[0].text.starts_with("at the limit"),
            "{at:?}"
        );
        let below = judged(2900, &f);
        assert!(below.len() == 1 && below[0].conflict, "{below:?}");
        assert!(judged(3300, &f).is_empty());
    }

    #[test]
    fn a_minimum_not_measured_is_a_verdict_of_its_own() {
        let f = Finding::new(
            "ping_min_interval",
            "keepalive: minimum PING interval",
            Outcome::NotMeasured,
        )
        .result("no method to hold a call open on");
        let v = judged(1000, &f);
        assert!(
            v.iter()
                .any(|v| v.not_measured && v.text.starts_with("not measured")),
            "{v:?}"
        );
        assert!(!v.iter().any(|v| v.conflict), "{v:?}");
    }
}
