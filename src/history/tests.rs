//! The history folds a connection's events into one record.

use super::*;

fn ev(t_ms: f64, conn: u64, kind: EventKind) -> Event {
    Event {
        t_ms,
        kind,
        conn: Some(conn),
        addr: Some("127.0.0.1:1".into()),
    }
}

fn ready() -> EventKind {
    EventKind::Connect {
        result: ConnectResult::Ok,
        error: None,
        cause: None,
        elapsed_ms: 1.0,
        subchannel: 1,
    }
}

fn goaway(last: u32, debug: &str, open: u64, quiet: f64) -> EventKind {
    EventKind::Goaway {
        dir: Dir::Received,
        code: ErrorCode::NO_ERROR,
        last_stream_id: last,
        debug: debug.into(),
        open_streams: Some(open),
        quiet_ms: Some(quiet),
    }
}

#[test]
fn grpc_go_graceful_pattern_is_one_drain() {
    let mut h = History::default();
    assert_eq!(h.observe(&ev(10.0, 1, ready())), Change::Ready(1));
    assert_eq!(
        h.observe(&ev(4010.0, 1, goaway(MAX_STREAM_ID, "", 1, 0.0))),
        Change::DrainBegan(1)
    );
    assert_eq!(
        h.observe(&ev(4011.0, 1, goaway(7, "", 1, 0.0))),
        Change::DrainGoes(1)
    );
    let c = h.conn(1).unwrap();
    assert_eq!(c.drains.len(), 1);
    let d = c.drain().unwrap();
    assert!(d.announced);
    assert_eq!((d.goaways, d.last_stream_id), (2, 7));
    assert_eq!(d.age_ms, Some(4000.0));
    assert_eq!(d.busy(), Some(true));
}

#[test]
fn peer_pings_are_answered_or_not() {
    let mut h = History::default();
    h.observe(&ev(0.0, 2, ready()));
    let ping = |dir, ack| EventKind::Ping {
        dir,
        ack,
        rtt_ms: None,
    };
    h.observe(&ev(100.0, 2, ping(Dir::Received, false)));
    h.observe(&ev(100.5, 2, ping(Dir::Sent, true)));
    h.observe(&ev(2100.0, 2, ping(Dir::Received, false)));
    let c = h.conn(2).unwrap();
    assert_eq!(c.peer_pings[0].acked_ms, Some(100.5));
    assert_eq!(c.last_peer_ping_before(3000.0).unwrap().acked_ms, None);
}

#[test]
fn closed_connections_are_forgotten_past_a_bound() {
    let mut h = History::default();
    for id in 0..(KEEP_CLOSED as u64 + 10) {
        h.observe(&ev(id as f64, id, ready()));
        h.observe(&ev(
            id as f64 + 0.5,
            id,
            EventKind::Closed {
                reason: CloseReason::Eof,
                error: None,
                detail: None,
                lifetime_ms: 0.5,
                streams: 0,
            },
        ));
    }
    assert!(h.conn(0).is_none());
    assert!(h.conn(KEEP_CLOSED as u64 + 9).is_some());
}
