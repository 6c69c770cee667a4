//! The `--output json` line format is API: one object of every event kind,
//! checked against `tests/golden/events.jsonl`. A change in the format shows
//! here as a diff; write the new file with `UPDATE_GOLDEN=1 cargo test`
//! when the change is meant (and say so in the changelog).

use std::collections::BTreeMap;

use grpcdoc::connectivity::State;
use grpcdoc::event::ConnectCause;
use grpcdoc::event::{CloseReason, ConnectResult, Event, EventKind};
use grpcdoc::h2wire::Dir;

fn every_kind() -> Vec<EventKind> {
    vec![
        EventKind::Listening {
            listen: "127.0.0.1:50051".parse().unwrap(),
        },
        EventKind::State {
            from: State::Ready,
            to: State::Idle,
            reason: "GOAWAY NO_ERROR \"max_idle\" received".into(),
            channel: false,
            subchannel: Some(1),
        },
        EventKind::State {
            from: State::Connecting,
            to: State::Ready,
            reason: "subchannel 1 is READY".into(),
            channel: true,
            subchannel: None,
        },
        EventKind::Connect {
            result: ConnectResult::Error,
            error: Some("connect to 127.0.0.1:1: Connection refused (os error 111)".into()),
            cause: Some(ConnectCause::Refused),
            elapsed_ms: 0.25,
            subchannel: 1,
        },
        EventKind::Backoff {
            delay_ms: 1000.0,
            attempt: 1,
            subchannel: 1,
        },
        EventKind::Resolve {
            addrs: vec!["127.0.0.1:50051".into()],
            error: None,
        },
        EventKind::Accepted { tls: false },
        EventKind::Settings {
            dir: Dir::Received,
            ack: false,
            settings: BTreeMap::from([("max_concurrent_streams".to_string(), 100)]),
        },
        EventKind::Goaway {
            dir: Dir::Received,
            code: grpcdoc::h2wire::ErrorCode::ENHANCE_YOUR_CALM,
            last_stream_id: 0,
            debug: "too_many_pings".into(),
            open_streams: Some(1),
            quiet_ms: Some(0.0),
        },
        EventKind::Ping {
            dir: Dir::Received,
            ack: true,
            rtt_ms: Some(0.5),
        },
        EventKind::RstStream {
            dir: Dir::Sent,
            stream_id: 3,
            code: grpcdoc::h2wire::ErrorCode::CANCEL,
        },
        EventKind::PingStrike {
            strikes: 1,
            max_strikes: 2,
            since_last_ping_ms: Some(200.0),
            min_interval_ms: 300000.0,
        },
        EventKind::Drain {
            reason: grpcdoc::event::DrainReason::MaxAge,
        },
        EventKind::Closed {
            reason: CloseReason::KeepaliveTimeout,
            error: None,
            detail: Some("keepalive ping not acknowledged within 1s".into()),
            lifetime_ms: 4000.0,
            streams: 2,
        },
        EventKind::Rpc {
            method: "grpc.health.v1.Health/Check".into(),
            code: tonic::Code::Unavailable,
            message: "no connection is READY".into(),
            latency_ms: 1.5,
            cause: Some(grpcdoc::event::CallCause::NoConnection),
            attempts: vec![],
        },
        EventKind::Rpc {
            method: "helloworld.Greeter/SayHello".into(),
            code: tonic::Code::Ok,
            message: String::new(),
            latency_ms: 3.25,
            cause: None,
            attempts: vec![grpcdoc::event::CallAttempt {
                conn: 1,
                stream: 9,
                end: "never processed: above the GOAWAY's last stream 7".into(),
            }],
        },
        EventKind::Step {
            action: grpcdoc::event::StepAction::ServerRestart,
            detail: "hard, down for 500ms".into(),
        },
        EventKind::Frame {
            dir: Dir::Sent,
            frame_type: grpcdoc::h2wire::FrameType::Headers,
            flags: 4,
            stream_id: 1,
            length: 42,
        },
        EventKind::Fault {
            name: "drop-ping".into(),
            detail: "dropped a PING ack upstream".into(),
        },
        EventKind::Shutdown {
            mode: grpcdoc::event::ShutdownMode::Graceful,
        },
        EventKind::Dropped { count: 7 },
        EventKind::Capture {
            what: grpcdoc::event::CaptureWhat::Idle,
            detail: "no byte either way for 5m50s before the close".into(),
            ms: Some(350000.0),
            bytes: None,
        },
    ]
}

#[test]
fn json_lines_match_the_golden_file() {
    let lines: Vec<String> = every_kind()
        .into_iter()
        .enumerate()
        .map(|(i, kind)| {
            // Server-, channel- and output-wide events have no connection.
            let wide = matches!(
                kind,
                EventKind::Listening { .. }
                    | EventKind::Resolve { .. }
                    | EventKind::Shutdown { .. }
                    | EventKind::Dropped { .. }
                    | EventKind::State { channel: true, .. }
            );
            let conn = (!wide).then_some(i as u64);
            serde_json::to_string(&Event {
                t_ms: i as f64 * 10.0,
                kind,
                conn,
                addr: conn.map(|_| "127.0.0.1:50051".into()),
            })
            .unwrap()
        })
        .collect();
    let got = lines.join("\n") + "\n";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/events.jsonl");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, &got).unwrap();
    }
    let want = std::fs::read_to_string(path)
        .expect("tests/golden/events.jsonl (UPDATE_GOLDEN=1 writes it)");
    for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(g, w, "line {} of the event format changed", i + 1);
    }
    assert_eq!(
        got.lines().count(),
        want.lines().count(),
        "number of event kinds changed"
    );
}
