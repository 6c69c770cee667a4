//! The end-of-watch summary: time in each state and transitions per
//! subchannel, drains and closes as the one connection history
//! (`crate::history`) folds them, keepalive ping round trips, probes by
//! status. comfy-table lives here.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::connectivity::State;
use crate::event::{Event, EventKind};
use crate::h2wire::Dir;
use crate::history::{Change, History};

#[derive(Debug, Default, Serialize)]
pub struct SubchannelStats {
    pub addr: String,
    pub state: Option<State>,
    #[serde(skip)]
    since_ms: f64,
    /// Milliseconds spent in each state.
    pub time_ms: BTreeMap<State, f64>,
    pub transitions: u32,
}

#[derive(Debug, Default, Serialize)]
pub struct WatchSummary {
    pub duration_ms: f64,
    pub subchannels: BTreeMap<u64, SubchannelStats>,
    /// "CODE debug" -> count, GOAWAY frames received.
    pub goaways: BTreeMap<String, u32>,
    /// "CODE debug" -> count, drains the peer began: a connection's
    /// GOAWAYs of one drain are one (grpc-go sends two), as the history
    /// folds them.
    pub drains: BTreeMap<String, u32>,
    #[serde(skip)]
    history: History,
    pub connections: u32,
    pub connect_errors: u32,
    /// Close reason -> count.
    pub closes: BTreeMap<String, u32>,
    pub ping_rtt_ms: Vec<f64>,
    /// Probe status code -> count.
    pub probes: BTreeMap<String, u32>,
    pub dropped_events: u64,
}

impl WatchSummary {
    pub fn record(&mut self, e: &Event) {
        match self.history.observe(e) {
            Change::DrainBegan(id) => {
                let conn = self.history.conn(id);
                if let Some(d) = conn.and_then(|c| c.drain()) {
                    if d.dir == Dir::Received {
                        let key = crate::event::goaway_key(d.code, &d.debug);
                        crate::event::count_capped(&mut self.drains, key, 1, 32);
                    }
                }
            }
            Change::Closed(id) => {
                if let Some(c) = self.history.conn(id).and_then(|c| c.close.as_ref()) {
                    *self
                        .closes
                        .entry(c.reason.as_str().to_string())
                        .or_default() += 1;
                }
            }
            _ => {}
        }
        match &e.kind {
            EventKind::State {
                channel: false,
                subchannel: Some(id),
                from,
                to,
                ..
            } => {
                let s = self.subchannels.entry(*id).or_default();
                if s.addr.is_empty() {
                    s.addr = e.addr.as_deref().unwrap_or_default().to_string();
                }
                // The first state of a subchannel is IDLE from its creation.
                let was = s.state.unwrap_or(*from);
                *s.time_ms.entry(was).or_default() += e.t_ms - s.since_ms;
                s.state = Some(*to);
                s.since_ms = e.t_ms;
                s.transitions += 1;
            }
            EventKind::Goaway {
                dir: Dir::Received,
                code,
                debug,
                ..
            } => {
                let key = crate::event::goaway_key(*code, debug);
                crate::event::count_capped(&mut self.goaways, key, 1, 32);
            }
            EventKind::Connect { result, .. } => match result {
                crate::event::ConnectResult::Ok => self.connections += 1,
                crate::event::ConnectResult::Error => self.connect_errors += 1,
            },
            EventKind::Ping {
                rtt_ms: Some(rtt), ..
            } => {
                // Bounded: a watch that runs for days keeps the last 10,000.
                if self.ping_rtt_ms.len() >= 10_000 {
                    self.ping_rtt_ms.remove(0);
                }
                self.ping_rtt_ms.push(*rtt);
            }
            EventKind::Rpc { code, .. } => {
                *self
                    .probes
                    .entry(crate::grpc::code_name(*code).to_string())
                    .or_default() += 1
            }
            EventKind::Dropped { count } => self.dropped_events += count,
            _ => {}
        }
    }

    /// Closes the books at `end_ms`.
    pub fn finish(&mut self, end_ms: f64) {
        self.duration_ms = end_ms;
        for s in self.subchannels.values_mut() {
            if let Some(st) = s.state {
                *s.time_ms.entry(st).or_default() += end_ms - s.since_ms;
                s.since_ms = end_ms;
            }
        }
    }

    fn rtt_stats(&self) -> Option<(f64, f64, f64)> {
        let mut v = self.ping_rtt_ms.clone();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some((v[0], v[v.len() / 2], v[v.len() - 1]))
    }

    pub fn render(&self) -> String {
        let secs = |ms: f64| format!("{:.2}s", ms / 1e3);
        let mut out = String::new();
        let mut t = super::table();
        let mut header = vec!["subchannel".to_string(), "address".into(), "now".into()];
        header.extend(State::ALL[..4].iter().map(|s| s.as_str().to_string()));
        header.push("transitions".into());
        t.set_header(header);
        for (id, s) in &self.subchannels {
            let mut row = vec![
                id.to_string(),
                s.addr.clone(),
                s.state.map(|s| s.as_str()).unwrap_or("-").to_string(),
            ];
            row.extend(
                State::ALL[..4]
                    .iter()
                    .map(|st| secs(s.time_ms.get(st).copied().unwrap_or(0.0))),
            );
            row.push(s.transitions.to_string());
            t.add_row(row);
        }
        out.push_str(&format!("{t}\n"));

        let mut t = super::table();
        t.set_header(["", "count"]);
        t.add_row(vec!["watched for".to_string(), secs(self.duration_ms)]);
        t.add_row(vec![
            "connections made".to_string(),
            self.connections.to_string(),
        ]);
        t.add_row(vec![
            "connect failures".to_string(),
            self.connect_errors.to_string(),
        ]);
        for (reason, n) in &self.closes {
            t.add_row(vec![format!("closed: {reason}"), n.to_string()]);
        }
        for (g, n) in &self.drains {
            let frames = self.goaways.get(g).copied().unwrap_or(0);
            t.add_row(vec![
                format!("drains by GOAWAY {g}"),
                if frames == *n {
                    n.to_string()
                } else {
                    format!("{n} ({frames} GOAWAY frames)")
                },
            ]);
        }
        if let Some((min, med, max)) = self.rtt_stats() {
            t.add_row(vec![
                format!("ping RTT min/median/max ({} pings)", self.ping_rtt_ms.len()),
                format!("{min:.3}ms / {med:.3}ms / {max:.3}ms"),
            ]);
        }
        for (code, n) in &self.probes {
            t.add_row(vec![format!("probes {code}"), n.to_string()]);
        }
        if self.dropped_events > 0 {
            t.add_row(vec![
                "events dropped".to_string(),
                self.dropped_events.to_string(),
            ]);
        }
        out.push_str(&format!("{t}\n"));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t_ms: f64, kind: EventKind) -> Event {
        Event {
            t_ms,
            kind,
            conn: None,
            addr: Some("127.0.0.1:1".into()),
        }
    }

    fn st(from: State, to: State) -> EventKind {
        EventKind::State {
            from,
            to,
            reason: String::new(),
            channel: false,
            subchannel: Some(1),
        }
    }

    #[test]
    fn time_in_states() {
        let mut s = WatchSummary::default();
        s.record(&ev(0.0, st(State::Idle, State::Connecting)));
        s.record(&ev(10.0, st(State::Connecting, State::Ready)));
        s.record(&ev(1010.0, st(State::Ready, State::Idle)));
        s.finish(2010.0);
        let sc = &s.subchannels[&1];
        assert_eq!(sc.time_ms[&State::Connecting], 10.0);
        assert_eq!(sc.time_ms[&State::Ready], 1000.0);
        assert_eq!(sc.time_ms[&State::Idle], 1000.0);
        assert_eq!(sc.transitions, 3);
        let text = s.render();
        assert!(text.contains("1.00s") && text.contains("READY"), "{text}");
    }

    fn goaway(t_ms: f64, conn: u64, last: u32) -> Event {
        Event {
            conn: Some(conn),
            ..ev(
                t_ms,
                EventKind::Goaway {
                    dir: Dir::Received,
                    code: crate::h2wire::ErrorCode::NO_ERROR,
                    last_stream_id: last,
                    debug: "max_age".into(),
                    open_streams: None,
                    quiet_ms: None,
                },
            )
        }
    }

    /// grpc-go's two GOAWAYs are one drain; a second drain of the same
    /// connection after a new one is counted (the history's fold).
    #[test]
    fn drains_are_the_historys() {
        let mut s = WatchSummary::default();
        s.record(&goaway(1.0, 1, crate::h2wire::frame::MAX_STREAM_ID));
        s.record(&goaway(2.0, 1, 3));
        s.record(&goaway(1000.0, 2, crate::h2wire::frame::MAX_STREAM_ID));
        s.record(&goaway(1001.0, 2, 5));
        s.finish(2000.0);
        assert_eq!(s.drains["NO_ERROR \"max_age\""], 2, "{:?}", s.drains);
        assert_eq!(s.goaways["NO_ERROR \"max_age\""], 4, "{:?}", s.goaways);
        assert!(s.render().contains("2 (4 GOAWAY frames)"), "{}", s.render());
    }
}
