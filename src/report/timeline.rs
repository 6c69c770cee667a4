//! What happened to each connection, over time, for the HTML report: one
//! lane per client connection from connect to close (READY, then draining
//! after a GOAWAY), its GOAWAY, PING, RST_STREAM and close as marks, failed
//! calls as marks on the lane that carried them, and the scenario's steps
//! and marks as vertical lines. Built from a run's events; marks of one
//! kind close together are folded into one with a count, so an hour of
//! events stays a small page.

use std::collections::BTreeMap;

use crate::event::{EventKind, StepAction};
use crate::h2wire::Dir;
use crate::scenario::run::Tagged;

/// At most this many lanes are drawn; the rest are counted.
pub const MAX_LANES: usize = 150;
/// Marks of one kind on one lane within 1/BUCKETS of the run are one mark.
const BUCKETS: f64 = 400.0;
/// At most this many marks in all: beyond, marks are folded over wider
/// stretches of time (the page stays small for an hour of events).
pub const MAX_MARKS: usize = 6000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LaneState {
    Ready,
    /// After the server's GOAWAY: no new calls, the old ones finish.
    Draining,
    /// The client's channel in TRANSIENT_FAILURE: calls fail fast.
    TransientFailure,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MarkKind {
    Goaway,
    Ping,
    Reset,
    Close,
    FailedCall,
    ConnectFailed,
}

impl MarkKind {
    pub fn name(self) -> &'static str {
        match self {
            MarkKind::Goaway => "GOAWAY",
            MarkKind::Ping => "PING",
            MarkKind::Reset => "RST_STREAM",
            MarkKind::Close => "closed",
            MarkKind::FailedCall => "failed call",
            MarkKind::ConnectFailed => "connect failed",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Segment {
    pub from_ms: f64,
    pub to_ms: f64,
    pub state: LaneState,
}

#[derive(Clone, Debug)]
pub struct Mark {
    pub t_ms: f64,
    pub kind: MarkKind,
    /// Events folded into this mark.
    pub count: u64,
    /// The first one's details (and how many more).
    pub detail: String,
}

#[derive(Clone, Debug, Default)]
pub struct Lane {
    pub label: String,
    pub segments: Vec<Segment>,
    pub marks: Vec<Mark>,
}

/// A vertical line: a scenario step or mark.
#[derive(Clone, Debug)]
pub struct VLine {
    pub t_ms: f64,
    pub label: String,
    pub step: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Timeline {
    pub duration_ms: f64,
    pub lanes: Vec<Lane>,
    pub lines: Vec<VLine>,
    /// Lanes not drawn (over [`MAX_LANES`]).
    pub hidden_lanes: usize,
}

/// One lane while it is built.
#[derive(Default)]
struct Building {
    label: String,
    first_ms: f64,
    open_since: Option<(f64, LaneState)>,
    segments: Vec<Segment>,
    /// (kind, bucket) -> mark.
    marks: BTreeMap<(MarkKind, u64), Mark>,
}

impl Building {
    fn mark(&mut self, bucket_ms: f64, t_ms: f64, kind: MarkKind, detail: String) {
        let b = (t_ms / bucket_ms).floor().max(0.0) as u64;
        self.marks
            .entry((kind, b))
            .and_modify(|m| m.count += 1)
            .or_insert(Mark {
                t_ms,
                kind,
                count: 1,
                detail,
            });
    }

    fn switch(&mut self, t_ms: f64, to: Option<LaneState>) {
        if let Some((from, state)) = self.open_since.take() {
            self.segments.push(Segment {
                from_ms: from,
                to_ms: t_ms,
                state,
            });
        }
        self.open_since = to.map(|s| (t_ms, s));
    }
}

/// The timeline of a run's events (`marks`: the scenario's marks by name).
pub fn build(events: &[Tagged], marks: &BTreeMap<String, f64>, duration_ms: f64) -> Timeline {
    let bucket_ms = (duration_ms / BUCKETS).max(1.0);
    let mut lanes: BTreeMap<(String, u64), Building> = BTreeMap::new();
    let mut calls: BTreeMap<String, Building> = BTreeMap::new();
    // Connections numbered per client in the order they came, from 1: a
    // run's lanes read alike whatever ids the process gave them.
    let mut numbered: BTreeMap<String, u64> = BTreeMap::new();
    let client_lane = |client: &str, t_ms: f64| Building {
        label: format!("{client}: channel, calls without a connection"),
        first_ms: t_ms,
        ..Building::default()
    };
    let mut lines = Vec::new();
    for t in events {
        let e = &t.event;
        if t.who == "timeline" {
            if let EventKind::Step { action, detail } = &e.kind {
                // A mark step is drawn as its mark's line.
                if *action == StepAction::Mark && marks.contains_key(detail) {
                    continue;
                }
                lines.push(VLine {
                    t_ms: e.t_ms,
                    label: if detail.is_empty() {
                        action.to_string()
                    } else {
                        format!("{action}: {detail}")
                    },
                    step: true,
                });
            }
            continue;
        }
        if !t.is_client() {
            continue;
        }
        let client = t.via_client().to_string();
        let Some(conn) = e.conn else {
            if let EventKind::State {
                channel: true, to, ..
            } = &e.kind
            {
                let lane = calls
                    .entry(client.clone())
                    .or_insert_with(|| client_lane(&client, e.t_ms));
                let failing = *to == crate::connectivity::State::TransientFailure;
                let was = matches!(lane.open_since, Some((_, LaneState::TransientFailure)));
                if failing && !was {
                    lane.switch(e.t_ms, Some(LaneState::TransientFailure));
                } else if !failing && was {
                    lane.switch(e.t_ms, None);
                }
                continue;
            }
            let mark = match &e.kind {
                EventKind::Rpc {
                    code,
                    message,
                    method,
                    ..
                } if *code != tonic::Code::Ok => Some((
                    MarkKind::FailedCall,
                    format!("{method}: {} {message}", crate::grpc::code_name(*code)),
                )),
                EventKind::Connect {
                    error: Some(err), ..
                } => Some((MarkKind::ConnectFailed, err.clone())),
                _ => None,
            };
            if let Some((kind, detail)) = mark {
                calls
                    .entry(client.clone())
                    .or_insert_with(|| client_lane(&client, e.t_ms))
                    .mark(bucket_ms, e.t_ms, kind, detail);
            }
            continue;
        };
        let key = (t.who.clone(), conn);
        let lane = lanes.entry(key).or_insert_with(|| {
            let n = numbered.entry(t.who.clone()).or_insert(0);
            *n += 1;
            Building {
                label: format!(
                    "{} conn {n}{}",
                    t.who,
                    e.addr
                        .as_deref()
                        .map(|a| format!(" to {a}"))
                        .unwrap_or_default()
                ),
                first_ms: e.t_ms,
                ..Building::default()
            }
        });
        match &e.kind {
            EventKind::Connect { error: None, .. } => lane.switch(e.t_ms, Some(LaneState::Ready)),
            EventKind::Goaway {
                dir: Dir::Received,
                code,
                last_stream_id,
                debug,
                ..
            } => {
                lane.mark(
                    bucket_ms,
                    e.t_ms,
                    MarkKind::Goaway,
                    format!("GOAWAY {code} last_stream_id={last_stream_id} debug={debug:?}"),
                );
                if matches!(lane.open_since, Some((_, LaneState::Ready))) {
                    lane.switch(e.t_ms, Some(LaneState::Draining));
                }
            }
            EventKind::Ping { dir, ack, rtt_ms } => {
                let what = match (dir, ack) {
                    (Dir::Sent, false) => "PING sent".to_string(),
                    (Dir::Received, false) => "PING received (the peer's)".to_string(),
                    (Dir::Received, true) => match rtt_ms {
                        Some(r) => format!("PING ACK received, round trip {r:.2} ms"),
                        None => "PING ACK received".to_string(),
                    },
                    // grpcdoc's own ACK of the peer's PING.
                    (Dir::Sent, true) => String::new(),
                };
                if !what.is_empty() {
                    lane.mark(bucket_ms, e.t_ms, MarkKind::Ping, what);
                }
            }
            EventKind::RstStream {
                dir,
                stream_id,
                code,
            } => lane.mark(
                bucket_ms,
                e.t_ms,
                MarkKind::Reset,
                format!(
                    "RST_STREAM {} stream {stream_id} {code}",
                    match dir {
                        Dir::Sent => "sent",
                        Dir::Received => "received",
                    }
                ),
            ),
            EventKind::Closed {
                reason,
                error,
                detail,
                ..
            } => {
                let mut d = format!("closed: {}", reason.as_str());
                for x in [error, detail].into_iter().flatten() {
                    d.push_str(&format!(" ({x})"));
                }
                lane.mark(bucket_ms, e.t_ms, MarkKind::Close, d);
                lane.switch(e.t_ms, None);
            }
            EventKind::Rpc {
                code,
                message,
                method,
                ..
            } if *code != tonic::Code::Ok => lane.mark(
                bucket_ms,
                e.t_ms,
                MarkKind::FailedCall,
                format!("{method}: {} {message}", crate::grpc::code_name(*code)),
            ),
            _ => {}
        }
    }
    for (name, t_ms) in marks {
        lines.push(VLine {
            t_ms: *t_ms,
            label: name.clone(),
            step: false,
        });
    }
    lines.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms).then(b.step.cmp(&a.step)));
    // One label per moment: a mark at a step of the same name (or the
    // same line twice) is drawn once.
    let near = (duration_ms / 200.0).max(1.0);
    let mut kept: Vec<VLine> = Vec::with_capacity(lines.len());
    for l in lines {
        if !kept
            .iter()
            .any(|k| k.label == l.label && (k.t_ms - l.t_ms).abs() <= near)
        {
            kept.push(l);
        }
    }
    let lines = kept;
    let mut all: Vec<Building> = lanes.into_values().collect();
    all.sort_by(|a, b| a.first_ms.total_cmp(&b.first_ms));
    all.extend(calls.into_values());
    let hidden_lanes = all.len().saturating_sub(MAX_LANES);
    all.truncate(MAX_LANES);
    // Too many marks: fold each lane's over twice the stretch, until few
    // enough.
    let mut width = bucket_ms;
    while all.iter().map(|b| b.marks.len()).sum::<usize>() > MAX_MARKS {
        width *= 2.0;
        for b in &mut all {
            let mut folded: BTreeMap<(MarkKind, u64), Mark> = BTreeMap::new();
            for m in std::mem::take(&mut b.marks).into_values() {
                let key = (m.kind, (m.t_ms / width).floor().max(0.0) as u64);
                folded
                    .entry(key)
                    .and_modify(|f| f.count += m.count)
                    .or_insert(m);
            }
            b.marks = folded;
        }
    }
    let lanes = all
        .into_iter()
        .take(MAX_LANES)
        .map(|mut b| {
            b.switch(duration_ms, None);
            Lane {
                label: b.label,
                segments: b.segments,
                marks: b
                    .marks
                    .into_values()
                    .map(|mut m| {
                        if m.count > 1 {
                            m.detail =
                                format!("{} x{} (the first: {})", m.kind.name(), m.count, m.detail);
                        }
                        m
                    })
                    .collect(),
            }
        })
        .collect();
    Timeline {
        duration_ms,
        lanes,
        lines,
        hidden_lanes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    fn tagged(who: &str, t_ms: f64, conn: Option<u64>, kind: EventKind) -> Tagged {
        Tagged {
            who: who.into(),
            via: None,
            event: Event {
                t_ms,
                kind,
                conn,
                addr: None,
            },
        }
    }

    #[test]
    fn lanes_run_from_connect_to_close_and_drain_after_goaway() {
        let connect = EventKind::Connect {
            result: crate::event::ConnectResult::Ok,
            error: None,
            cause: None,
            elapsed_ms: 1.0,
            subchannel: 1,
        };
        let events = vec![
            tagged("client", 100.0, Some(1), connect),
            tagged(
                "client",
                500.0,
                Some(1),
                EventKind::Goaway {
                    dir: Dir::Received,
                    code: crate::h2wire::ErrorCode::NO_ERROR,
                    last_stream_id: 7,
                    debug: "max_age".into(),
                    open_streams: None,
                    quiet_ms: None,
                },
            ),
            tagged(
                "client",
                700.0,
                Some(1),
                EventKind::Closed {
                    reason: crate::event::CloseReason::Goaway,
                    error: None,
                    detail: None,
                    lifetime_ms: 600.0,
                    streams: 3,
                },
            ),
            tagged(
                "timeline",
                400.0,
                None,
                EventKind::Step {
                    action: StepAction::ServerRestart,
                    detail: String::new(),
                },
            ),
            tagged("server", 100.0, Some(1), EventKind::Accepted { tls: false }),
        ];
        let t = build(
            &events,
            &BTreeMap::from([("back".to_string(), 800.0)]),
            1000.0,
        );
        assert_eq!(t.lanes.len(), 1, "the server's view is not a lane");
        let lane = &t.lanes[0];
        assert_eq!(lane.segments.len(), 2);
        assert_eq!(lane.segments[0].state, LaneState::Ready);
        assert_eq!(
            (lane.segments[1].from_ms, lane.segments[1].to_ms),
            (500.0, 700.0)
        );
        assert!(lane
            .marks
            .iter()
            .any(|m| m.kind == MarkKind::Goaway && m.detail.contains("max_age")));
        assert_eq!(t.lines.len(), 2);
    }

    #[test]
    fn an_hour_of_failures_stays_small() {
        let mut events = Vec::new();
        for conn in 0..300u64 {
            for i in 0..200 {
                events.push(tagged(
                    "client",
                    (conn * 12_000 + i * 60) as f64,
                    Some(conn),
                    EventKind::Rpc {
                        method: "a.B/C".into(),
                        code: tonic::Code::Unavailable,
                        message: "x".repeat(40),
                        latency_ms: 1.0,
                        cause: None,
                        attempts: Vec::new(),
                    },
                ));
            }
        }
        let t = build(&events, &BTreeMap::new(), 3_600_000.0);
        assert_eq!(t.lanes.len(), MAX_LANES);
        assert_eq!(t.hidden_lanes, 300 - MAX_LANES);
        let marks: usize = t.lanes.iter().map(|l| l.marks.len()).sum();
        assert!(marks <= MAX_MARKS, "{marks}");
        let page = crate::report::html::timeline_svg(&t).into_string();
        assert!(page.len() < 1_000_000, "{} bytes", page.len());
    }

    #[test]
    fn connections_are_numbered_per_client_failure_is_shaded_and_labels_said_once() {
        use crate::connectivity::State;
        let connect = || EventKind::Connect {
            result: crate::event::ConnectResult::Ok,
            error: None,
            cause: None,
            elapsed_ms: 1.0,
            subchannel: 1,
        };
        let channel = |from, to| EventKind::State {
            from,
            to,
            reason: String::new(),
            channel: true,
            subchannel: None,
        };
        let step = |t| {
            tagged(
                "timeline",
                t,
                None,
                EventKind::Step {
                    action: StepAction::ServerRestart,
                    detail: String::new(),
                },
            )
        };
        let events = vec![
            // Ids as a process gives them across variants: 7 and 9.
            tagged("app", 10.0, Some(7), connect()),
            tagged(
                "app",
                300.0,
                None,
                channel(State::Ready, State::TransientFailure),
            ),
            tagged(
                "app",
                600.0,
                None,
                channel(State::TransientFailure, State::Connecting),
            ),
            tagged("app", 650.0, Some(9), connect()),
            step(200.0),
            step(200.5),
        ];
        let t = build(
            &events,
            &BTreeMap::from([("server_restart".to_string(), 200.0)]),
            1000.0,
        );
        let labels: Vec<&str> = t.lanes.iter().map(|l| l.label.as_str()).collect();
        assert!(
            labels.contains(&"app conn 1") && labels.contains(&"app conn 2"),
            "{labels:?}"
        );
        let shaded: Vec<(f64, f64)> = t
            .lanes
            .iter()
            .flat_map(|l| &l.segments)
            .filter(|s| s.state == LaneState::TransientFailure)
            .map(|s| (s.from_ms, s.to_ms))
            .collect();
        assert_eq!(shaded, [(300.0, 600.0)]);
        assert_eq!(t.lines.len(), 1, "{:?}", t.lines);
        assert!(t.lines[0].step);
    }
}
