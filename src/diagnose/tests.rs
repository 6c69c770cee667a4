//! Notes read from the history: idle told from age by the traffic, the
//! peer's keepalive told from a crash, a cut call told from a refused one.

use super::*;
use crate::event::CloseReason;
use crate::h2wire::frame::MAX_STREAM_ID;

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

fn goaway(debug: &str, open: u64, quiet: f64) -> EventKind {
    EventKind::Goaway {
        dir: Dir::Received,
        code: ErrorCode::NO_ERROR,
        last_stream_id: MAX_STREAM_ID,
        debug: debug.into(),
        open_streams: Some(open),
        quiet_ms: Some(quiet),
    }
}

/// The notes of drains on successive connections: (ready at, drain at,
/// open streams, quiet ms).
fn drains(x: &mut Explainer, list: &[(f64, f64, u64, f64)]) -> Vec<Note> {
    list.iter()
        .enumerate()
        .filter_map(|(i, (r, d, open, quiet))| {
            let c = i as u64 + 1;
            x.explain(&ev(*r, c, ready()));
            x.explain(&ev(*d, c, goaway("", *open, *quiet)))
        })
        .collect()
}

#[test]
fn a_busy_drain_is_never_idle_and_a_steady_age_is_max_age() {
    let mut x = Explainer::default();
    // grpc-go 1.33, MaxConnectionAge 4s with +-10% jitter, probes running.
    let notes = drains(
        &mut x,
        &[
            (0.0, 3900.0, 1, 0.0),
            (3910.0, 8010.0, 0, 300.0),
            (8020.0, 11820.0, 0, 800.0),
        ],
    );
    for n in &notes {
        assert!(!n.entries().any(|e| e == EntryId::IdleTimeout), "{n:?}");
    }
    assert_eq!(
        notes[0].entries().collect::<Vec<_>>(),
        [EntryId::MaxAgeDrain, EntryId::GracefulStop]
    );
    assert_eq!(
        (notes[1].entry, notes[1].also.len()),
        (Some(EntryId::MaxAgeDrain), 0)
    );
    assert_eq!(
        (notes[2].entry, notes[2].also.len()),
        (Some(EntryId::MaxAgeDrain), 0)
    );
}

#[test]
fn the_same_quiet_before_drains_of_differing_age_is_idle() {
    let mut x = Explainer::default();
    // MaxConnectionIdle 2s, a call every 3s: each drain 2s after a call.
    let notes = drains(
        &mut x,
        &[
            (0.0, 2100.0, 0, 2000.0),
            (2200.0, 5200.0, 0, 2000.0),
            (5300.0, 9300.0, 0, 2010.0),
        ],
    );
    // The first cannot tell (never a call before it on that connection).
    assert!(
        notes[0].also.contains(&EntryId::MaxAgeDrain),
        "{:?}",
        notes[0]
    );
    for n in &notes[1..] {
        assert_eq!(
            (n.entry, n.also.len()),
            (Some(EntryId::IdleTimeout), 0),
            "{n:?}"
        );
    }
}

#[test]
fn debug_data_names_the_policy() {
    let mut x = Explainer::default();
    x.explain(&ev(0.0, 1, ready()));
    let n = x
        .explain(&ev(3000.0, 1, goaway("max_idle", 0, 3000.0)))
        .unwrap();
    assert_eq!((n.entry, n.also.len()), (Some(EntryId::IdleTimeout), 0));
    x.explain(&ev(0.0, 2, ready()));
    let n = x
        .explain(&ev(3000.0, 2, goaway("max_age", 3, 0.0)))
        .unwrap();
    assert_eq!(n.entry, Some(EntryId::MaxAgeDrain));
    // The drain's second GOAWAY says nothing more.
    let second = EventKind::Goaway {
        dir: Dir::Received,
        code: ErrorCode::NO_ERROR,
        last_stream_id: 5,
        debug: "max_age".into(),
        open_streams: Some(3),
        quiet_ms: Some(0.0),
    };
    assert!(x.explain(&ev(3001.0, 2, second)).is_none());
}

#[test]
fn too_many_pings_needs_this_clients_pings() {
    let calm = |debug: &str| EventKind::Goaway {
        dir: Dir::Received,
        code: ErrorCode::ENHANCE_YOUR_CALM,
        last_stream_id: 0,
        debug: debug.into(),
        open_streams: Some(0),
        quiet_ms: Some(100.0),
    };
    let mut x = Explainer::new(Some(Duration::from_secs(1)));
    x.explain(&ev(0.0, 1, ready()));
    let n = x.explain(&ev(500.0, 1, calm("too_many_pings"))).unwrap();
    assert_eq!(n.entry, Some(EntryId::MiddleboxGoaway));
    x.explain(&ev(0.0, 2, ready()));
    for t in [1000.0, 2000.0, 3000.0] {
        x.explain(&ev(
            t,
            2,
            EventKind::Ping {
                dir: Dir::Sent,
                ack: false,
                rtt_ms: None,
            },
        ));
    }
    let n = x.explain(&ev(3001.0, 2, calm("too_many_pings"))).unwrap();
    assert_eq!(n.entry, Some(EntryId::TooManyPings));
}

#[test]
fn the_servers_keepalive_is_not_called_a_crash() {
    let mut x = Explainer::default();
    x.explain(&ev(0.0, 1, ready()));
    let ping = |dir, ack| EventKind::Ping {
        dir,
        ack,
        rtt_ms: None,
    };
    x.explain(&ev(5000.0, 1, ping(Dir::Received, false)));
    x.explain(&ev(5000.2, 1, ping(Dir::Sent, true)));
    let closed = EventKind::Closed {
        reason: CloseReason::Eof,
        error: None,
        detail: None,
        lifetime_ms: 6000.0,
        streams: 0,
    };
    let n = x.explain(&ev(6000.0, 1, closed.clone())).unwrap();
    assert_eq!(n.entry, Some(EntryId::KeepaliveTimeout), "{n:?}");
    assert!(n.also.contains(&EntryId::ServerCrash));
    assert!(
        n.detail.contains("did not reach the server"),
        "{}",
        n.detail
    );
    // Without a PING before it, a close without GOAWAY is a loss.
    x.explain(&ev(0.0, 2, ready()));
    let n = x.explain(&ev(6000.0, 2, closed.clone())).unwrap();
    assert_eq!((n.entry, n.also.len()), (Some(EntryId::ServerCrash), 0));
    // A probe (its connection not known) answered after the PING: the
    // server was at work, not waiting for an ACK (grpc-go's BDP pings
    // every 200 ms, then a kill).
    x.explain(&ev(7000.0, 3, ready()));
    x.explain(&ev(8000.0, 3, ping(Dir::Received, false)));
    x.explain(&ev(8000.1, 3, ping(Dir::Sent, true)));
    x.explain(&Event {
        t_ms: 8000.3,
        kind: EventKind::Rpc {
            method: "grpc.health.v1.Health/Check".into(),
            code: tonic::Code::Ok,
            message: String::new(),
            latency_ms: 1.0,
            cause: None,
            attempts: Vec::new(),
        },
        conn: None,
        addr: None,
    });
    let n = x.explain(&ev(8130.0, 3, closed.clone())).unwrap();
    assert_eq!((n.entry, n.also.len()), (Some(EntryId::ServerCrash), 0));
    // The call's answer just before the PING (the BDP PING follows the
    // data): not a quiet connection's keepalive either.
    x.explain(&ev(9000.0, 4, ready()));
    x.explain(&Event {
        t_ms: 9500.0,
        kind: EventKind::Rpc {
            method: "grpc.health.v1.Health/Check".into(),
            code: tonic::Code::Ok,
            message: String::new(),
            latency_ms: 1.0,
            cause: None,
            attempts: Vec::new(),
        },
        conn: Some(4),
        addr: None,
    });
    x.explain(&ev(9500.2, 4, ping(Dir::Received, false)));
    x.explain(&ev(9500.3, 4, ping(Dir::Sent, true)));
    let n = x.explain(&ev(9700.0, 4, closed)).unwrap();
    assert_eq!((n.entry, n.also.len()), (Some(EntryId::ServerCrash), 0));
}

#[test]
fn a_call_in_flight_when_a_drain_began_was_cut() {
    let mut x = Explainer::default();
    x.explain(&ev(0.0, 1, ready()));
    x.explain(&ev(1000.0, 1, goaway("max_age", 1, 0.0)));
    let rpc = |cause| EventKind::Rpc {
        method: "a.B/C".into(),
        code: tonic::Code::Unavailable,
        message: String::new(),
        latency_ms: 1500.0,
        cause,
        attempts: Vec::new(),
    };
    let n = x.explain(&ev(2000.0, 1, rpc(None))).unwrap();
    assert_eq!(n.entry, Some(EntryId::DrainCut));
    assert!(n.detail.contains("was in flight"), "{}", n.detail);
    // A call the server never processed was refused, not cut.
    assert!(x
        .explain(&ev(2001.0, 1, rpc(Some(CallCause::NeverProcessed))))
        .is_none());
}

fn refused(t_ms: f64) -> Event {
    Event {
        t_ms,
        kind: EventKind::Connect {
            result: ConnectResult::Error,
            error: Some("connection refused".into()),
            cause: Some(ConnectCause::Refused),
            elapsed_ms: 0.2,
            subchannel: 1,
        },
        conn: None,
        addr: Some("127.0.0.1:1".into()),
    }
}

#[test]
fn a_refused_redial_after_a_drain_is_a_graceful_stop() {
    // grpc-go GracefulStop: GOAWAY on a busy connection, then the port
    // closes. Once drained, nothing listens: not max age.
    let mut x = Explainer::default();
    let first = drains(&mut x, &[(0.0, 800.0, 1, 0.0)]);
    assert_eq!(first[0].entry, Some(EntryId::MaxAgeDrain));
    let n = x.explain(&refused(1200.0)).expect("a note");
    assert_eq!((n.entry, n.also.len()), (Some(EntryId::GracefulStop), 0));
    // Said once; the next refusals say nothing new.
    assert_eq!(x.explain(&refused(2200.0)), None);
}

#[test]
fn a_refusal_without_a_drain_or_after_max_age_is_only_a_refusal() {
    let mut x = Explainer::default();
    let n = x.explain(&refused(100.0)).expect("a note");
    assert_eq!(n.entry, Some(EntryId::ConnectionRefused));
    let mut x = Explainer::default();
    x.explain(&ev(0.0, 1, ready()));
    x.explain(&ev(4000.0, 1, goaway("max_age", 1, 0.0)));
    let n = x.explain(&refused(4100.0)).expect("a note");
    assert_eq!(n.entry, Some(EntryId::ConnectionRefused));
}
