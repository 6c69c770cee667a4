//! `doctor`'s report for people: the setup, who answers, the measured
//! policy in tables by topic (connection lifetime, keepalive, limits: what,
//! result, how, confidence), and the verdicts.

use std::fmt::Write as _;

use super::style::{Style, Tone};
use crate::doctor::fingerprint::settings_text;
use crate::doctor::model::{secs, Confidence, Finding, Outcome, Party, Report};

fn ms_text(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2} ms")
    } else {
        secs(v)
    }
}

/// The findings' groups, in this order, by key (`None`: the rest), so a
/// reader finds the timeouts, the keepalive policy and the limits apart.
const GROUPS: [(&str, Option<&[&str]>); 4] = [
    (
        "connection lifetime",
        Some(&[
            "idle_timeout",
            "idle_after_call",
            "silent_idle_drop",
            "max_age",
            "max_age_grace",
            "held_call_end",
            "quiet_stream_end",
        ]),
    ),
    (
        "keepalive",
        Some(&["ping_min_interval", "pings_without_calls", "server_pings"]),
    ),
    ("limits", Some(&["max_message_size"])),
    ("other", None),
];

/// One finding as a row: what, result, by, how, confidence.
fn row(f: &Finding) -> Vec<String> {
    let result = match f.outcome {
        Outcome::Measured => f.result.clone(),
        o => format!("{}: {}", o.label(), f.result),
    };
    vec![
        f.title.trim_start_matches("keepalive: ").to_string(),
        result,
        match f.by {
            Some(Party::Server) => "server".into(),
            Some(Party::Proxy) => "proxy".into(),
            Some(Party::Network) => "network".into(),
            None => "-".into(),
        },
        f.how.clone(),
        match (f.outcome, f.confidence) {
            (Outcome::Skipped | Outcome::NotMeasured, _) => "-".into(),
            (_, Confidence::High) => "high".into(),
            (_, Confidence::Medium) => "medium".into(),
            (_, Confidence::Low) => "low".into(),
        },
    ]
}

pub fn render(r: &Report, style: &Style) -> String {
    use super::wrap::hanging;
    let w = super::wrap::width();
    let mut out = String::new();
    let bold = |t: &str| style.paint(Tone::Bold, t);
    let _ = writeln!(
        out,
        "{} {} ({}; budget {}, took {}{})",
        bold("grpcdoc doctor"),
        r.target,
        if r.setup.address.is_empty() {
            "not resolved".to_string()
        } else if r.setup.addresses > 1 {
            format!(
                "{} of {} addresses: {}",
                1, r.setup.addresses, r.setup.address
            )
        } else {
            r.setup.address.clone()
        },
        secs(r.budget_ms),
        secs(r.elapsed_ms),
        if r.interrupted { ", interrupted" } else { "" }
    );
    if let Some(f) = &r.failure {
        let _ = writeln!(
            out,
            "\n{} {}",
            style.paint(Tone::Bad, "cannot connect:"),
            f.error
        );
        if let Some(e) = &f.explanation {
            out.push_str(&hanging("  ", e, w));
        }
        if let Some(id) = f.entry {
            let _ = writeln!(out, "  catalogue entry {id}");
        }
        return out;
    }
    let s = &r.setup;
    let _ = writeln!(out, "\n{}", bold("Connection setup"));
    let mut line = |k: &str, v: String| {
        out.push_str(&hanging(&format!("  {k:<15} "), &v, w));
    };
    if let Some(t) = s.timing.tcp_connect_ms {
        line("TCP connect", ms_text(t));
    }
    if let Some(t) = &s.timing.tls {
        let mut v = format!("{} in {}", t.version, ms_text(t.handshake_ms));
        if let Some(a) = &t.alpn {
            let _ = write!(v, ", ALPN {a}");
        }
        if let Some(sub) = &t.subject {
            let _ = write!(v, "; certificate {sub}");
        }
        if let Some(i) = &t.issuer {
            let _ = write!(v, ", issued by {i}");
        }
        if let (Some(n), Some(d)) = (&t.not_after, t.days_left) {
            let _ = write!(
                v,
                ", {} {n} ({d} days)",
                if d < 0 { "expired" } else { "expires" }
            );
        }
        line("TLS", v);
    } else {
        line("TLS", "none (plaintext HTTP/2)".into());
    }
    line(
        "SETTINGS",
        format!(
            "{}{}",
            settings_text(&s.settings),
            s.settings_like
                .as_deref()
                .map(|l| format!(" (as {l} sends them)"))
                .unwrap_or_default()
        ),
    );
    line(
        "reflection",
        match &s.reflection {
            Some(v) => format!("{v}: {}", s.services.join(", ")),
            None => "not offered".into(),
        },
    );
    line("health", s.health.clone().unwrap_or_else(|| "-".into()));
    line(
        "server header",
        s.server_header.clone().unwrap_or_else(|| "none".into()),
    );
    line(
        "unknown method",
        s.unknown_method.clone().unwrap_or_else(|| "-".into()),
    );
    line(
        "round trips",
        format!(
            "PING {}, call {} (medians of 5)",
            s.ping_rtt_ms.map(ms_text).unwrap_or_else(|| "-".into()),
            s.call_rtt_ms.map(ms_text).unwrap_or_else(|| "-".into())
        ),
    );
    line(
        "held open",
        s.held_method
            .as_deref()
            .map(|m| m.trim_start_matches('/').to_string())
            .unwrap_or_else(|| "none (no method the server keeps open; --hold-method)".into()),
    );

    let i = &r.intermediary;
    let _ = writeln!(
        out,
        "\n{} {}",
        bold("Path:"),
        if i.proxy {
            style.paint(Tone::Warn, &i.summary)
        } else {
            i.summary.clone()
        }
    );
    for e in &i.evidence {
        out.push_str(&hanging("  - ", e, w));
    }

    let _ = writeln!(out, "\n{}", bold("Measured policy"));
    for (group, keys) in GROUPS {
        let rows: Vec<&Finding> = r
            .findings
            .iter()
            .filter(|f| match keys {
                Some(keys) => keys.contains(&f.key),
                None => !GROUPS
                    .iter()
                    .any(|(_, k)| k.is_some_and(|k| k.contains(&f.key))),
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        let mut t = super::table();
        t.set_header(vec![group, "result", "by", "how measured", "confidence"]);
        for f in rows {
            t.add_row(row(f));
        }
        let _ = writeln!(out, "{t}");
    }

    let c = &r.client;
    let mut given = Vec::new();
    if let Some(k) = c.keepalive_time {
        given.push(format!("keepalive {}", secs(k.as_secs_f64() * 1e3)));
    }
    if let Some(k) = c.keepalive_timeout {
        given.push(format!("keepalive timeout {}", secs(k.as_secs_f64() * 1e3)));
    }
    if c.permit_without_stream {
        given.push("permit-without-stream".into());
    }
    if let Some(k) = c.idle_timeout {
        given.push(format!("idle timeout {}", secs(k.as_secs_f64() * 1e3)));
    }
    if c.service_config.is_some() {
        given.push("a service config".into());
    }
    let _ = writeln!(
        out,
        "\n{} {}",
        bold("Verdicts"),
        if given.is_empty() {
            "(no client settings given: --client-keepalive-time, ...)".to_string()
        } else {
            format!("for a client with {}", given.join(", "))
        }
    );
    if r.verdicts.is_empty() {
        let _ = writeln!(out, "  nothing to say: no conflict found");
    }
    for v in &r.verdicts {
        let tag = if v.conflict {
            style.paint(Tone::Bad, "CONFLICT")
        } else if v.not_measured {
            style.paint(Tone::Warn, "NOT MEASURED")
        } else {
            style.paint(Tone::Dim, "note")
        };
        out.push_str(&hanging(&format!("  {tag} "), &v.text, w));
        if let Some(f) = &v.fix {
            out.push_str(&hanging("      fix: ", f, w));
        }
        let mut refs = Vec::new();
        if let Some(e) = v.entry {
            refs.push(format!("catalogue entry {e}"));
        }
        if let Some(s) = v.scenario {
            refs.push(format!("grpcdoc scenario {s}"));
        }
        if !refs.is_empty() {
            out.push_str(&hanging("      see: ", &refs.join("; "), w));
        }
    }
    out
}
