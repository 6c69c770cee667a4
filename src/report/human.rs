//! Human event lines: a relative timestamp, the connection, what happened,
//! and for notable events a short note on what it means.

use std::io::{self, Write};
use std::time::Duration;

use super::style::{Style, Tone};
use super::EventWriter;
use crate::event::{CloseReason, Event, EventKind};
use crate::grpc::code_name;
use crate::h2wire::Dir;
use crate::h2wire::ErrorCode;

pub struct HumanEvents {
    pub style: Style,
    /// Adds a note on cause and fix after notable events.
    pub explainer: Option<crate::diagnose::Explainer>,
    /// PINGs the peer sends on its own (BDP, keepalive) and their ACKs,
    /// per connection: the first pair is shown, later ones are counted.
    pub peer_pings: std::collections::HashMap<u64, PeerPings>,
    /// Show who (connection, address) on each line; off where the lines
    /// are one connection's, under its own header (`grpcdoc pcap`).
    pub who: bool,
    /// Renders the notes (each entry's fix once).
    pub notes: super::note::NoteLines,
}

impl HumanEvents {
    pub fn new(style: Style, explainer: Option<crate::diagnose::Explainer>) -> Self {
        Self {
            style,
            explainer,
            peer_pings: Default::default(),
            who: true,
            notes: Default::default(),
        }
    }
}

/// The peer's own PINGs on one connection, after the first.
#[derive(Default)]
pub struct PeerPings {
    /// The first PING and its ACK were shown.
    shown: bool,
    /// PINGs counted since, the first of them and the last (ms).
    count: u64,
    since_ms: f64,
    last_ms: f64,
    who: String,
}

fn ms(ms: f64) -> String {
    let d = Duration::from_micros((ms.max(0.0) * 1e3) as u64);
    let d = if d >= Duration::from_secs(1) {
        Duration::from_millis(d.as_millis() as u64)
    } else {
        d
    };
    if d < Duration::from_millis(1) {
        return format!("{:.3}ms", ms.max(0.0));
    }
    humantime::format_duration(Duration::from_millis(d.as_millis() as u64)).to_string()
}

fn dir(d: Dir) -> &'static str {
    match d {
        Dir::Sent => "sent",
        Dir::Received => "received",
    }
}

fn state(s: &Style, st: crate::connectivity::State) -> String {
    use crate::connectivity::State;
    let tone = match st {
        State::Ready => Tone::Good,
        State::Connecting => Tone::Warn,
        State::TransientFailure => Tone::Bad,
        State::Idle => Tone::Dim,
        State::Shutdown => Tone::Bold,
    };
    s.paint(tone, st.as_str())
}

fn drain_note(reason: crate::event::DrainReason) -> &'static str {
    use crate::event::DrainReason as R;
    match reason {
        R::MaxIdle => "no active stream for --max-connection-idle",
        R::MaxAge => "the connection reached --max-connection-age",
        R::GracefulStop => "the server is stopping",
    }
}

impl HumanEvents {
    pub fn describe(&self, e: &Event) -> String {
        let s = &self.style;
        match &e.kind {
            EventKind::Listening { listen } => format!("listening on {listen}"),
            EventKind::Accepted { tls } => {
                format!("accepted{}", if *tls { " (TLS)" } else { "" })
            }
            EventKind::Settings {
                dir: d,
                ack,
                settings,
            } => {
                let mut line = format!("SETTINGS {}", dir(*d));
                if *ack {
                    line.push_str(" ACK");
                }
                for (k, v) in settings {
                    line.push_str(&format!(" {k}={v}"));
                }
                line
            }
            EventKind::Goaway {
                dir: d,
                code,
                last_stream_id,
                debug,
                ..
            } => {
                let tone = if *code == ErrorCode::NO_ERROR {
                    Tone::Warn
                } else {
                    Tone::Bad
                };
                format!(
                    "{} {code} last_stream_id={last_stream_id} debug={debug:?}",
                    s.paint(tone, &format!("GOAWAY {}", dir(*d)))
                )
            }
            EventKind::Ping {
                dir: d,
                ack,
                rtt_ms,
            } => {
                let mut line = format!("PING {}{}", dir(*d), if *ack { " ACK" } else { "" });
                if let Some(rtt) = rtt_ms {
                    line.push_str(&format!(" rtt={}", ms(*rtt)));
                }
                line
            }
            EventKind::RstStream {
                dir: d,
                stream_id,
                code,
            } => format!("RST_STREAM {} stream={stream_id} {code}", dir(*d)),
            EventKind::PingStrike {
                strikes,
                max_strikes,
                since_last_ping_ms,
                min_interval_ms,
            } => {
                let since = since_last_ping_ms.map(ms).unwrap_or_else(|| "-".into());
                let mut line = s.paint(Tone::Warn, &format!("ping strike {strikes}/{max_strikes}"));
                line.push_str(&format!(
                    ": the client pinged {since} after its previous ping; the policy allows one per {}",
                    ms(*min_interval_ms)
                ));
                if strikes > max_strikes {
                    line.push_str(" -> GOAWAY ENHANCE_YOUR_CALM \"too_many_pings\" and close");
                }
                line
            }
            EventKind::Health { answer, detail } => {
                let a = serde_json::to_value(answer)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_uppercase))
                    .unwrap_or_default();
                let tone = match answer {
                    crate::event::HealthAnswer::Serving
                    | crate::event::HealthAnswer::Unimplemented => Tone::Good,
                    _ => Tone::Warn,
                };
                let mut line = s.paint(tone, &format!("health {a}"));
                if !detail.is_empty() && !detail.eq_ignore_ascii_case(&a) {
                    line.push_str(&format!(": {detail}"));
                }
                line
            }
            EventKind::Drain { reason } => {
                let line = format!("drain {}", reason.as_str());
                format!("{}: {}", s.paint(Tone::Warn, &line), drain_note(*reason))
            }
            EventKind::Closed {
                reason,
                error,
                detail,
                lifetime_ms,
                streams,
            } => {
                let tone = match reason {
                    CloseReason::Eof | CloseReason::Goaway => Tone::Dim,
                    _ => Tone::Bad,
                };
                let mut line = s.paint(tone, &format!("closed {}", reason.as_str()));
                if let Some(d) = detail {
                    line.push_str(&format!(" ({d})"));
                }
                line.push_str(&format!(
                    " after {}, {streams} stream{}",
                    ms(*lifetime_ms),
                    if *streams == 1 { "" } else { "s" }
                ));
                if let Some(err) = error {
                    line.push_str(&format!(": {err}"));
                }
                line
            }
            EventKind::State {
                from, to, reason, ..
            } => {
                let mut line = format!("{} -> {}", state(s, *from), state(s, *to));
                if !reason.is_empty() {
                    line.push_str(&format!(": {reason}"));
                }
                line
            }
            EventKind::Connect {
                result,
                error,
                elapsed_ms,
                ..
            } => match (result, error) {
                (crate::event::ConnectResult::Ok, _) => {
                    format!(
                        "{} in {}",
                        s.paint(Tone::Good, "connected"),
                        ms(*elapsed_ms)
                    )
                }
                (_, e) => format!(
                    "{} after {}: {}",
                    s.paint(Tone::Bad, "connect failed"),
                    ms(*elapsed_ms),
                    e.as_deref().unwrap_or("unknown error")
                ),
            },
            EventKind::Backoff {
                delay_ms, attempt, ..
            } => {
                format!("backoff {} before attempt {}", ms(*delay_ms), attempt + 1)
            }
            EventKind::Resolve { addrs, error } => match error {
                Some(e) => s.paint(Tone::Bad, &format!("resolve failed: {e}")),
                None => format!("resolved to {}", addrs.join(", ")),
            },
            EventKind::Rpc {
                method,
                code,
                message,
                latency_ms,
                attempts,
                ..
            } => {
                let tone = if *code == tonic::Code::Ok {
                    Tone::Good
                } else {
                    Tone::Bad
                };
                let mut line = format!(
                    "{method} {} in {}",
                    s.paint(tone, code_name(*code)),
                    ms(*latency_ms)
                );
                if !message.is_empty() {
                    line.push_str(&format!(": {message}"));
                }
                // The attempts the client retried, beneath the call.
                for (i, a) in attempts.iter().enumerate() {
                    line.push_str(&format!(
                        "\n{:12}attempt {}: conn {} stream {}: {}",
                        "",
                        i + 1,
                        a.conn,
                        a.stream,
                        a.end
                    ));
                }
                line
            }
            EventKind::Frame {
                dir: d,
                frame_type,
                flags,
                stream_id,
                length,
            } => format!(
                "{frame_type} {} stream={stream_id} length={length} flags=0x{flags:x}",
                dir(*d)
            ),
            EventKind::Step { action, detail } => {
                let mut line = s.paint(Tone::Bold, &format!("step {action}"));
                if !detail.is_empty() {
                    line.push_str(&format!(": {detail}"));
                }
                line
            }
            EventKind::Fault { name, detail } => {
                format!(
                    "{} {detail}",
                    s.paint(Tone::Warn, &format!("fault {name}:"))
                )
            }
            EventKind::Shutdown { mode } => {
                let mode = match mode {
                    crate::event::ShutdownMode::Graceful => "graceful",
                    crate::event::ShutdownMode::Forced => "forced",
                };
                s.paint(Tone::Bold, &format!("server stopping ({mode})"))
            }
            EventKind::Dropped { count } => s.paint(
                Tone::Bad,
                &format!("{count} events dropped: the output fell behind"),
            ),
            EventKind::Capture { what, detail, .. } => {
                use crate::event::CaptureWhat as W;
                let tone = match what {
                    W::Gap | W::Truncated | W::FramesLost | W::HeadersUnknown => Tone::Warn,
                    W::Idle => Tone::Warn,
                    _ => Tone::Dim,
                };
                format!("{} {detail}", s.paint(tone, what.as_str()))
            }
        }
    }
}

impl HumanEvents {
    /// The count line of the peer's PINGs on `conn`, if some were counted.
    fn flush_pings(&mut self, out: &mut dyn Write, conn: u64) -> io::Result<()> {
        let Some(p) = self.peer_pings.get_mut(&conn) else {
            return Ok(());
        };
        if p.count == 0 {
            return Ok(());
        }
        let t = format!("{:>9.3}s", p.last_ms / 1e3);
        let line = format!(
            "PING received x{} from {:.3}s, each answered with an ACK (the peer's own: BDP or keepalive)",
            p.count,
            p.since_ms / 1e3
        );
        p.count = 0;
        if !self.who {
            return writeln!(out, "{}  {line}", self.style.paint(Tone::Dim, &t));
        }
        writeln!(
            out,
            "{}  {:<30} {line}",
            self.style.paint(Tone::Dim, &t),
            p.who
        )
    }
}

impl EventWriter for HumanEvents {
    fn finish(&mut self, out: &mut dyn Write, _end_ms: f64) -> io::Result<()> {
        let conns: Vec<u64> = self.peer_pings.keys().copied().collect();
        for c in conns {
            self.flush_pings(out, c)?;
        }
        Ok(())
    }

    fn write(&mut self, out: &mut dyn Write, e: &Event) -> io::Result<()> {
        let peer_ping = matches!(
            e.kind,
            EventKind::Ping {
                dir: Dir::Received,
                ack: false,
                ..
            }
        );
        let our_ack = matches!(
            e.kind,
            EventKind::Ping {
                dir: Dir::Sent,
                ack: true,
                ..
            }
        );
        if let Some(c) = e.conn {
            if peer_ping || our_ack {
                let who = match &e.addr {
                    Some(a) => format!("conn {c:<3} {a}"),
                    None => format!("conn {c}"),
                };
                let p = self.peer_pings.entry(c).or_default();
                if p.shown {
                    if peer_ping {
                        if p.count == 0 {
                            p.since_ms = e.t_ms;
                        }
                        p.count += 1;
                        p.last_ms = e.t_ms;
                        p.who = who;
                    }
                    // Counted, unless it has something to say.
                    let note = self.explainer.as_mut().and_then(|x| x.explain(e));
                    if note.is_none() {
                        return Ok(());
                    }
                } else if our_ack {
                    p.shown = true;
                }
            } else {
                self.flush_pings(out, c)?;
                if matches!(e.kind, EventKind::Closed { .. }) {
                    // A long `serve` sees many connections: forget the
                    // ended ones.
                    self.peer_pings.remove(&c);
                }
            }
        }
        let what = self.describe(e);
        if matches!(e.kind, EventKind::Listening { .. }) {
            return writeln!(out, "{what}");
        }
        let who = match (&e.kind, e.conn, &e.addr) {
            (EventKind::State { channel: true, .. }, _, _) => "channel".to_string(),
            (
                EventKind::State {
                    subchannel: Some(sc),
                    ..
                },
                _,
                a,
            )
            | (EventKind::Backoff { subchannel: sc, .. }, _, a) => match a {
                Some(a) => format!("sub {sc:<4} {a}"),
                None => format!("sub {sc}"),
            },
            (_, Some(c), Some(a)) => format!("conn {c:<3} {a}"),
            (_, Some(c), None) => format!("conn {c}"),
            (_, None, Some(a)) => a.to_string(),
            (_, None, None) => String::new(),
        };
        let t = format!("{:>9.3}s", e.t_ms / 1e3);
        let head = if self.who {
            format!("{}  {who:<30} ", self.style.paint(Tone::Dim, &t))
        } else {
            format!("{}  ", self.style.paint(Tone::Dim, &t))
        };
        // Long lines (SETTINGS, errors) wrap under their text.
        out.write_all(super::wrap::hanging(&head, &what, super::wrap::width()).as_bytes())?;
        if let Some(note) = self.explainer.as_mut().and_then(|x| x.explain(e)) {
            for line in self.notes.lines(&note, &self.style) {
                writeln!(out, "{line}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t_ms: f64, kind: EventKind) -> Event {
        Event {
            t_ms,
            kind,
            conn: Some(1),
            addr: Some("127.0.0.1:1".into()),
        }
    }

    #[test]
    fn the_peers_own_pings_are_one_line_with_a_count() {
        let mut h = HumanEvents::new(Style::new(false), None);
        let mut out = Vec::new();
        for i in 0..10 {
            let t = f64::from(i) * 500.0;
            let ping = |dir, ack| EventKind::Ping {
                dir,
                ack,
                rtt_ms: None,
            };
            h.write(&mut out, &ev(t, ping(Dir::Received, false)))
                .unwrap();
            h.write(&mut out, &ev(t, ping(Dir::Sent, true))).unwrap();
        }
        h.finish(&mut out, 5000.0).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[2].contains("PING received x9 from 0.500s"), "{text}");
    }
}
