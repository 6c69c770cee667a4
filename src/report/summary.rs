//! The end-of-watch summary, built from events only: time in each state and
//! transitions per subchannel, GOAWAYs by code and debug data, keepalive
//! ping round trips, probes by status. comfy-table lives here.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::connectivity::State;
use crate::event::{Event, EventKind};
use crate::h2wire::Dir;

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
    /// "CODE debug" -> count, drains: a connection's GOAWAYs with the same
    /// code and debug data are one drain (grpc-go sends two).
    pub drains: BTreeMap<String, u32>,
    #[serde(skip)]
    drained: std::collections::HashSet<(u64, String)>,
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
                if self.drained.len() < 100_000
                    && self.drained.insert((e.conn.unwrap_or(0), key.clone()))
                {
                    crate::event::count_capped(&mut self.drains, key.clone(), 1, 32);
                }
                crate::event::count_capped(&mut self.goaways, key, 1, 32);
            }
            EventKind::Connect { result, .. } => match result {
                crate::event::ConnectResult::Ok => self.connections += 1,
                crate::event::ConnectResult::Error => self.connect_errors += 1,
            },
            EventKind::Closed { reason, .. } => {
                *self.closes.entry(reason.as_str().to_string()).or_default() += 1;
            }
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
}
