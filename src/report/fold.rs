//! A scenario's live lines, folded: one line per thing that happened, not
//! per event. A client redialing a server that refuses is one line with a
//! count and a span; a burst of failed calls is a line when it begins and
//! one when calls succeed again; every failure line carries the catalogue
//! entry the diagnosis names. Marks, the start-up of a pool's connections
//! and the final shutdown are left out (`-v` prints every event).

use std::collections::{BTreeMap, BTreeSet};

use super::human::HumanEvents;
use super::style::{Style, Tone};
use crate::catalogue::EntryId;
use crate::connectivity::State;
use crate::diagnose::Explainer;
use crate::event::{CallCause, CloseReason, ConnectResult, EventKind, StepAction};
use crate::h2wire::Dir;
use crate::scenario::recorded::Tagged;

/// Folds a run's events into lines.
pub struct Folder {
    human: HumanEvents,
    who: BTreeMap<String, Who>,
}

#[derive(Default)]
struct Who {
    explainer: Explainer,
    /// The entry of the last failed connection attempt.
    connect_entry: Option<EntryId>,
    /// Per subchannel: an attempt to get a connection back, open.
    redial: BTreeMap<u64, Redial>,
    /// Subchannels that were READY once.
    ready_once: BTreeSet<u64>,
    failing: Option<Burst>,
}

/// Connection attempts of one subchannel until it is READY again.
struct Redial {
    start_ms: f64,
    last_ms: f64,
    attempts: u64,
    /// Between one attempt and the next.
    gaps: Vec<f64>,
    /// Failed attempts by kind (`refused`, `timeout`, ...).
    failed: BTreeMap<String, u64>,
    entry: Option<EntryId>,
}

/// Failed calls since the last success.
struct Burst {
    start_ms: f64,
    last_ms: f64,
    n: u64,
}

/// `20ms`, `1.5s`.
fn span(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.1}s", ms / 1e3)
    } else {
        format!("{ms:.0}ms")
    }
}

impl Folder {
    pub fn new(style: Style) -> Self {
        Self {
            human: HumanEvents::new(style, None),
            who: BTreeMap::new(),
        }
    }

    fn style(&self) -> Style {
        self.human.style
    }

    /// `   2.008s  client     what [entry]`, wrapped at 100 columns under
    /// `what`; `what` painted in `tone`.
    fn line(
        &self,
        t_ms: f64,
        who: &str,
        what: &str,
        tone: Option<Tone>,
        entry: Option<EntryId>,
    ) -> String {
        let s = self.style();
        let ts = s.paint(Tone::Dim, &format!("{:>8.3}s", t_ms / 1e3));
        let head = format!("{who:<10} ");
        let indent = 11 + head.chars().count();
        let text = match entry {
            Some(e) => format!("{what} [{e}]"),
            None => what.to_string(),
        };
        let wrapped = super::scenario::wrap(&text, super::WIDTH as usize - indent, 0);
        let pad = format!("\n{}", " ".repeat(indent));
        let body = wrapped
            .lines()
            .map(|l| match (tone, entry) {
                (_, Some(e)) if l.ends_with(&format!("[{e}]")) => {
                    let cut = l.len() - e.as_str().len() - 2;
                    let (a, b) = l.split_at(cut);
                    let a = tone.map_or(a.to_string(), |t| s.paint(t, a));
                    format!("{a}{}", s.paint(Tone::Dim, b))
                }
                (Some(t), _) => s.paint(t, l),
                (None, _) => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join(&pad);
        format!("{ts}  {head}{body}")
    }

    /// The lines an event completes (often none).
    pub fn lines(&mut self, t: &Tagged) -> Vec<String> {
        let e = &t.event;
        match &e.kind {
            EventKind::Step {
                action: StepAction::Mark,
                ..
            } => vec![],
            EventKind::Step { .. } | EventKind::Fault { .. } => {
                vec![self.line(e.t_ms, &t.who, &self.plain(e), None, None)]
            }
            EventKind::Drain { .. } if t.who == "server" => {
                vec![self.line(e.t_ms, &t.who, &self.plain(e), None, None)]
            }
            _ if t.is_client() => self.client(t),
            _ => vec![],
        }
    }

    fn client(&mut self, t: &Tagged) -> Vec<String> {
        let e = &t.event;
        let w = self.who.entry(t.who.clone()).or_default();
        let note = w.explainer.explain(e).and_then(|n| n.entry);
        match &e.kind {
            EventKind::Connect {
                result: ConnectResult::Error,
                cause,
                subchannel,
                ..
            } => {
                let entry = cause.and_then(crate::diagnose::connect_entry).or(note);
                w.connect_entry = entry.or(w.connect_entry);
                let r = w.redial.entry(*subchannel).or_insert(Redial {
                    start_ms: e.t_ms,
                    last_ms: e.t_ms,
                    attempts: 0,
                    gaps: Vec::new(),
                    failed: BTreeMap::new(),
                    entry,
                });
                if r.attempts > 0 {
                    r.gaps.push(e.t_ms - r.last_ms);
                }
                r.attempts += 1;
                r.last_ms = e.t_ms;
                r.entry = entry.or(r.entry);
                let kind = cause.map_or("failed".to_string(), |c| format!("{c:?}").to_lowercase());
                *r.failed.entry(kind).or_default() += 1;
                vec![]
            }
            EventKind::State {
                channel: false,
                subchannel: Some(sc),
                from,
                to,
                reason,
            } => self.state(t, *sc, *from, *to, reason),
            // A close after a GOAWAY is the drain's end: the GOAWAY's line
            // says it.
            EventKind::Closed { reason, .. }
                if !matches!(reason, CloseReason::Local | CloseReason::Goaway) =>
            {
                let what = format!("connection lost: {}", self.plain(e));
                vec![self.line(e.t_ms, &t.who, &what, Some(Tone::Bad), note)]
            }
            EventKind::Goaway {
                dir: Dir::Received, ..
            } => vec![self.line(e.t_ms, &t.who, &self.plain(e), Some(Tone::Warn), note)],
            EventKind::Rpc {
                code,
                message,
                cause,
                ..
            } => {
                let entry = match cause {
                    Some(CallCause::NoConnection) => w.connect_entry,
                    Some(c) => crate::diagnose::cause_id(c).or(note),
                    None => note,
                };
                self.call(t, *code, message, entry)
            }
            _ => vec![],
        }
    }

    /// A subchannel's move: READY ends a redial (its line), a failure
    /// outside READY begins one; the rest is folded.
    fn state(&mut self, t: &Tagged, sc: u64, from: State, to: State, reason: &str) -> Vec<String> {
        let at = t.event.t_ms;
        let w = self.who.entry(t.who.clone()).or_default();
        if to == State::Ready {
            let first = w.ready_once.insert(sc);
            let redial = w.redial.remove(&sc);
            // A pool's other connections coming up at the start.
            let quiet = first && w.ready_once.len() > 1;
            let mut out = Vec::new();
            if let Some(mut r) = redial.filter(|r| r.attempts > 0) {
                // The attempt that connected.
                r.gaps.push(at - r.last_ms);
                out.push(self.redial_line(&t.who, &r, at));
            }
            if !quiet {
                let what = format!("READY: {reason}");
                out.push(self.line(at, &t.who, &what, Some(Tone::Good), None));
            }
            return out;
        }
        if from != State::Ready && to == State::TransientFailure {
            w.redial.entry(sc).or_insert(Redial {
                start_ms: at,
                last_ms: at,
                attempts: 0,
                gaps: Vec::new(),
                failed: BTreeMap::new(),
                entry: None,
            });
        }
        vec![]
    }

    fn call(
        &mut self,
        t: &Tagged,
        code: tonic::Code,
        message: &str,
        entry: Option<EntryId>,
    ) -> Vec<String> {
        let at = t.event.t_ms;
        let w = self.who.entry(t.who.clone()).or_default();
        match (code == tonic::Code::Ok, w.failing.as_mut()) {
            (false, Some(b)) => {
                b.n += 1;
                b.last_ms = at;
                vec![]
            }
            (false, None) => {
                w.failing = Some(Burst {
                    start_ms: at,
                    last_ms: at,
                    n: 1,
                });
                let what = format!("calls failing: {} {message}", crate::grpc::code_name(code));
                vec![self.line(at, &t.who, &what, Some(Tone::Bad), entry)]
            }
            (true, Some(_)) => {
                let b = w
                    .failing
                    .take()
                    .map_or((0, 0.0), |b| (b.n, b.last_ms - b.start_ms));
                let what = match b.0 {
                    1 => "calls succeed again after 1 failure".to_string(),
                    n => format!("calls succeed again after {n} failures over {}", span(b.1)),
                };
                vec![self.line(at, &t.who, &what, Some(Tone::Good), None)]
            }
            (true, None) => vec![],
        }
    }

    /// `redialing every 20ms, refused ×101, 2.0s`, at the first attempt;
    /// `end_ms` when it ended (READY, or the end of the run).
    fn redial_line(&self, who: &str, r: &Redial, end_ms: f64) -> String {
        let took = end_ms.max(r.last_ms) - r.start_ms;
        // Attempts at a steady pace, or the backoff's growing waits.
        let gaps: Vec<f64> = r.gaps.clone();
        let pace = match gaps.len() {
            0 => String::new(),
            _ => {
                let (lo, hi) = gaps
                    .iter()
                    .fold((f64::MAX, 0f64), |(l, h), g| (l.min(*g), h.max(*g)));
                if hi <= lo * 1.5 + 5.0 {
                    format!(
                        "every {}, ",
                        span(gaps.iter().sum::<f64>() / gaps.len() as f64)
                    )
                } else if gaps.len() <= 4 {
                    let waits: Vec<String> = gaps.iter().map(|g| span(*g)).collect();
                    format!("with backoff {}, ", waits.join(", "))
                } else {
                    format!("every {} to {}, ", span(lo), span(hi))
                }
            }
        };
        let failed = r
            .failed
            .iter()
            .map(|(k, n)| format!("{k} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let what = format!("redialing {pace}{failed}, {}", span(took));
        self.line(r.start_ms, who, &what, Some(Tone::Warn), r.entry)
    }

    /// An event as `-v` prints it, without colour (the line paints it).
    fn plain(&self, e: &crate::event::Event) -> String {
        HumanEvents::new(Style::new(false), None).describe(e)
    }

    /// What is still open at the end of the run: redials that never got a
    /// connection, calls still failing.
    pub fn finish(&mut self, end_ms: f64) -> Vec<String> {
        let mut out = Vec::new();
        let who = std::mem::take(&mut self.who);
        for (name, w) in &who {
            for r in w.redial.values().filter(|r| r.attempts > 0) {
                out.push(self.redial_line(name, r, end_ms));
            }
            if let Some(b) = &w.failing {
                let what = format!(
                    "calls still failing at the end: {} failures over {}",
                    b.n,
                    span(end_ms.min(b.last_ms) - b.start_ms)
                );
                out.push(self.line(b.start_ms, name, &what, Some(Tone::Bad), None));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ConnectCause, Event};

    fn client(t_ms: f64, kind: EventKind) -> Tagged {
        Tagged {
            who: "client".into(),
            via: None,
            event: Event {
                t_ms,
                conn: None,
                addr: Some("127.0.0.1:1".into()),
                kind,
            },
        }
    }

    fn state(t: f64, from: State, to: State) -> Tagged {
        client(
            t,
            EventKind::State {
                from,
                to,
                reason: "r".into(),
                channel: false,
                subchannel: Some(1),
            },
        )
    }

    #[test]
    fn a_redial_loop_is_one_line_with_a_count_a_span_and_its_entry() {
        let mut f = Folder::new(Style::new(false));
        let mut lines = f.lines(&state(0.0, State::Connecting, State::Ready));
        assert_eq!(lines.len(), 1, "{lines:?}");
        for i in 0..100 {
            let t = 1000.0 + f64::from(i) * 20.0;
            lines.extend(f.lines(&state(t, State::TransientFailure, State::Connecting)));
            lines.extend(f.lines(&client(
                t,
                EventKind::Connect {
                    result: ConnectResult::Error,
                    error: Some("refused".into()),
                    cause: Some(ConnectCause::Refused),
                    elapsed_ms: 0.1,
                    subchannel: 1,
                },
            )));
            lines.extend(f.lines(&state(t, State::Connecting, State::TransientFailure)));
        }
        lines.extend(f.lines(&state(3000.0, State::Connecting, State::Ready)));
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(
            lines[1].contains("redialing every 20ms, refused ×100, 2.0s [connection-refused]"),
            "{lines:#?}"
        );
        assert!(lines[1].starts_with("   1.000s  client"), "{lines:#?}");
        assert!(lines[2].contains("READY"), "{lines:#?}");
    }
}
