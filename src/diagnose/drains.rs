//! A drain (a connection's GOAWAYs) read against the history: its debug
//! data names the policy when there is any; without it (grpc-go before
//! 1.56, proxies) the traffic tells idle from age. An idle drain comes only
//! after no stream for the idle time; an age drain comes at a steady
//! connection age whatever the traffic. A drain neither can prove lists
//! both and what would tell them apart.

use std::time::Duration;

use super::{dur, goaway_words, Note};
use crate::catalogue::EntryId;
use crate::h2wire::ErrorCode;
use crate::history::{Drain, History};

/// A connection quiet for less than this was in use.
const BUSY_MS: f64 = 1200.0;

/// Whether `x` and `y` are the same figure up to the spread `rel`.
fn close(x: f64, y: f64, rel: f64) -> bool {
    (x - y).abs() <= rel * x.max(y) + 50.0
}

/// The other drains of the same sender, for comparison.
fn others<'a>(h: &'a History, d: &'a Drain) -> impl Iterator<Item = &'a Drain> {
    h.recent_drains()
        .filter(move |o| o.conn != d.conn && o.dir == d.dir && o.debug == d.debug)
}

pub(super) fn explain(h: &History, d: &Drain, keepalive: Option<Duration>) -> Note {
    let words = goaway_words(d.code, &d.debug);
    let age = d
        .age_ms
        .map(|a| format!(" at connection age {}", dur(a)))
        .unwrap_or_default();
    let calm = d.code == ErrorCode::ENHANCE_YOUR_CALM;
    if calm && d.debug == "too_many_pings" {
        if d.after_pings == 0 {
            return Note::one(
                EntryId::MiddleboxGoaway,
                format!("{words}{age}, but this client sent no PING on this connection: the GOAWAY was not about its pings; another client sharing the connection through a proxy, or a proxy in the path, sent it"),
            );
        }
        let ka = keepalive
            .map(|k| format!(" (every {})", humantime::format_duration(k)))
            .unwrap_or_default();
        return Note::one(
            EntryId::TooManyPings,
            format!(
                "{words}{age}, after {} PINGs from this client{ka}",
                d.after_pings
            ),
        );
    }
    if d.debug == "max_age" {
        return Note::one(EntryId::MaxAgeDrain, format!("{words}{age}"));
    }
    if d.debug.contains("idle") {
        let quiet = d
            .quiet_ms
            .map(|q| format!(" after {} without a call", dur(q)))
            .unwrap_or_default();
        return Note::one(EntryId::IdleTimeout, format!("{words}{quiet}{age}"));
    }
    if d.code != ErrorCode::NO_ERROR {
        return Note::plain(format!(
            "the peer ended the connection with {words}{age}: calls in flight fail; its logs say why"
        ));
    }
    if !d.debug.is_empty() {
        let stop = ["shutdown", "stop", "graceful", "app_requested", "deploy"]
            .iter()
            .any(|w| d.debug.to_ascii_lowercase().contains(w));
        return if stop {
            Note::one(EntryId::GracefulStop, format!("{words}{age}"))
        } else {
            Note::several(
                &[EntryId::GracefulStop, EntryId::MaxAgeDrain, EntryId::MiddleboxGoaway],
                format!("{words}{age}: its debug data names no policy grpcdoc knows; a steady age across connections means max age, a server that goes away a stop, a hop's own SETTINGS and `server` header a proxy (`grpcdoc doctor`)"),
            )
        };
    }
    unnamed(h, d, &words, &age)
}

/// NO_ERROR without debug data: the traffic decides.
fn unnamed(h: &History, d: &Drain, words: &str, age: &str) -> Note {
    let steady_age = d.age_ms.is_some_and(|a| {
        others(h, d)
            .filter_map(|o| o.age_ms)
            .any(|oa| close(a, oa, 0.15))
    });
    let ages: Vec<String> = others(h, d).filter_map(|o| o.age_ms).map(dur).collect();
    match d.busy() {
        Some(true) => {
            let open = d.open_streams.unwrap_or(0);
            let busy = if open > 0 {
                format!("{open} stream{} open", if open == 1 { "" } else { "s" })
            } else {
                format!(
                    "a call {} before",
                    dur(d.quiet_ms.unwrap_or_default())
                )
            };
            if steady_age {
                Note::one(
                    EntryId::MaxAgeDrain,
                    format!(
                        "{words}{age} with {busy}, at the same age as earlier drains ({}): a busy connection ended at a steady age",
                        ages.join(", ")
                    ),
                )
            } else {
                Note::several(
                    &[EntryId::MaxAgeDrain, EntryId::GracefulStop],
                    format!("{words}{age} with {busy}: not an idle timeout. Max age if the next connections drain at about the same age; a graceful stop if the server then goes away"),
                )
            }
        }
        Some(false) => quiet_drain(h, d, words, age, steady_age),
        None if steady_age => Note::one(
            EntryId::MaxAgeDrain,
            format!(
                "{words}{age}, the same age as earlier drains ({})",
                ages.join(", ")
            ),
        ),
        None => Note::several(
            &[EntryId::MaxAgeDrain, EntryId::IdleTimeout, EntryId::GracefulStop],
            format!("{words}{age}: max age, an idle timeout or a graceful stop; whether calls were running, and the ages of further drains, tell them apart"),
        ),
    }
}

/// A drain of a connection without a call for a while: idle or age.
fn quiet_drain(h: &History, d: &Drain, words: &str, age: &str, steady_age: bool) -> Note {
    let q = d.quiet_ms.unwrap_or_default();
    let a = d.age_ms.unwrap_or(q);
    let called = q + 250.0 < a;
    let steady_quiet = others(h, d)
        .filter_map(|o| o.quiet_ms)
        .any(|oq| oq >= BUSY_MS && close(q, oq, 0.05));
    let varied_age = others(h, d)
        .filter_map(|o| o.age_ms)
        .any(|oa| !close(a, oa, 0.15));
    let quiet = if called {
        format!(" after {} without a call", dur(q))
    } else {
        " on a connection that never carried a call".to_string()
    };
    if called && steady_quiet && varied_age {
        return Note::one(
            EntryId::IdleTimeout,
            format!("{words}{quiet}{age}: the same quiet time before each drain while the ages differ: an idle timeout of about {}", dur(q)),
        );
    }
    if steady_age && !steady_quiet {
        return Note::one(
            EntryId::MaxAgeDrain,
            format!("{words}{quiet}{age}: the same age as earlier drains, after quiet times that differ"),
        );
    }
    Note::several(
        &[EntryId::IdleTimeout, EntryId::MaxAgeDrain, EntryId::GracefulStop],
        format!("{words}{quiet}{age}: an idle timeout of about {} or max age of about {}; calls more often than that (--probe-interval) tell them apart: a drain while calls run is not idle", dur(q), dur(a)),
    )
}
