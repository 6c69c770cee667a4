//! The built-in server's connection management (gRFC A8/A9) as a raw HTTP/2
//! client sees it, over real loopback sockets. Bounds are generous: the
//! machine may be loaded.

mod common;

use std::time::Duration;

use common::*;
use grpcdoc::event::{CloseReason, EventKind};
use grpcdoc::h2wire::frame::MAX_STREAM_ID;
use grpcdoc::h2wire::{ControlFrame, Dir, ErrorCode};
use grpcdoc::server::{ServerConfig, Stop};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

const SECS: fn(f64) -> Duration = Duration::from_secs_f64;

#[tokio::test]
async fn idle_connection_gets_goaway_max_idle_after_last_stream() {
    let t = start(ServerConfig {
        max_connection_idle: Some(SECS(1.0)),
        ..Default::default()
    })
    .await;
    let mut c = RawClient::connect(t.addr).await;
    // Keep the connection busy for 1.5 s: no GOAWAY while a stream is active.
    let call = c
        .start_unary(
            "/helloworld.Greeter/SayHello",
            &hello("a"),
            &[("x-delay-ms", "1500")],
        )
        .await;
    let (status, _) = call.await.unwrap().expect("call");
    assert_eq!(status, "0");
    let ended = Instant::now();
    let goaway = c
        .frames
        .wait_for(SECS(5.0), |s| {
            s.dir == Dir::Received && is_goaway(s, "max_idle")
        })
        .await
        .expect("GOAWAY max_idle");
    assert_between(
        "GOAWAY after the last stream ended",
        goaway.at - ended,
        SECS(0.8),
        SECS(1.8),
    );
    match goaway.frame {
        ControlFrame::GoAway {
            code,
            last_stream_id,
            ..
        } => {
            assert_eq!(code, ErrorCode::NO_ERROR);
            assert_eq!(last_stream_id, MAX_STREAM_ID, "first GOAWAY of a drain");
        }
        _ => unreachable!(),
    }
    // The drain's PING follows at once (an idle client may close before it
    // acks; the second GOAWAY is checked with a stream open, below).
    let ping = c
        .frames
        .wait_for(SECS(1.0), |s| {
            s.dir == Dir::Received
                && s.at >= goaway.at
                && matches!(s.frame, ControlFrame::Ping { ack: false, .. })
        })
        .await;
    assert!(ping.is_some(), "{:?}", c.frames.received());
    assert!(t.log.wait_for(SECS(3.0), closed_event).await.is_some());
}

#[tokio::test]
async fn immediate_idle_drain_is_one_goaway_with_the_last_stream_then_close() {
    let t = start(ServerConfig {
        max_connection_idle: Some(SECS(1.0)),
        idle_drain: grpcdoc::server::IdleDrain::Immediate,
        ..Default::default()
    })
    .await;
    let mut c = RawClient::connect(t.addr).await;
    let call = c
        .start_unary("/helloworld.Greeter/SayHello", &hello("a"), &[])
        .await;
    let (status, _) = call.await.unwrap().expect("call");
    assert_eq!(status, "0");
    let goaway = c
        .frames
        .wait_for(SECS(5.0), |s| {
            s.dir == Dir::Received && is_goaway(s, "max_idle")
        })
        .await
        .expect("GOAWAY max_idle");
    match goaway.frame {
        ControlFrame::GoAway {
            code,
            last_stream_id,
            ..
        } => {
            assert_eq!(code, ErrorCode::NO_ERROR);
            assert_eq!(last_stream_id, 1, "names the last stream processed");
        }
        _ => unreachable!(),
    }
    // The server closes at once: no drain PING, no second GOAWAY.
    let closed = t
        .log
        .wait_for(SECS(3.0), closed_event)
        .await
        .expect("closed");
    match closed.kind {
        EventKind::Closed { reason, detail, .. } => {
            assert_eq!(reason, CloseReason::Goaway);
            assert_eq!(detail.as_deref(), Some("max_idle"));
        }
        _ => unreachable!(),
    }
    let after: Vec<_> = c
        .frames
        .received()
        .into_iter()
        .filter(|s| s.at >= goaway.at && s.frame != goaway.frame)
        .collect();
    assert!(
        !after.iter().any(|s| matches!(
            s.frame,
            ControlFrame::Ping { ack: false, .. } | ControlFrame::GoAway { .. }
        )),
        "{after:?}"
    );
}

#[tokio::test]
async fn max_age_drains_then_closes_hard_after_grace() {
    let t = start(ServerConfig {
        max_connection_age: Some(SECS(1.0)),
        max_connection_age_grace: Some(SECS(1.0)),
        ..Default::default()
    })
    .await;
    let start = Instant::now();
    let mut c = RawClient::connect(t.addr).await;
    let call = c
        .start_unary(
            "/helloworld.Greeter/SayHello",
            &hello("a"),
            &[("x-delay-ms", "3000")],
        )
        .await;
    let first = c
        .frames
        .wait_for(SECS(5.0), |s| {
            s.dir == Dir::Received && is_goaway(s, "max_age")
        })
        .await
        .expect("GOAWAY max_age");
    // 1 s +-10% jitter, plus scheduling slack.
    assert_between("GOAWAY max_age", first.at - start, SECS(0.85), SECS(1.6));
    let second = c
        .frames
        .wait_for(SECS(3.0), |s| {
            s.dir == Dir::Received
                && matches!(&s.frame, ControlFrame::GoAway { last_stream_id: 1, debug, .. } if debug == "max_age")
        })
        .await;
    assert!(
        second.is_some(),
        "GOAWAY with last stream 1: {:?}",
        c.frames.received()
    );
    let (closed_at, _) = tokio::time::timeout(SECS(5.0), c.closed)
        .await
        .expect("closed")
        .unwrap();
    assert_between(
        "hard close after the drain",
        closed_at - first.at,
        SECS(0.8),
        SECS(1.8),
    );
    // The 3 s call did not get to finish.
    let r = call.await.unwrap();
    assert!(
        r.is_err() || r.as_ref().is_ok_and(|(s, _)| s != "0"),
        "{r:?}"
    );
    let closed = t
        .log
        .wait_for(SECS(3.0), closed_event)
        .await
        .expect("closed event");
    match closed.kind {
        EventKind::Closed { reason, detail, .. } => {
            assert_eq!(reason, CloseReason::Local);
            assert_eq!(detail.as_deref(), Some("max_age_grace"));
        }
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn too_many_pings_get_enhance_your_calm_after_the_third() {
    let t = start(ServerConfig {
        keepalive_min_time: SECS(5.0),
        ..Default::default()
    })
    .await;
    let mut c = RawClient::connect(t.addr).await;
    let mut sent = 0;
    for _ in 0..10 {
        if c.ping.ping(h2::Ping::opaque()).await.is_err() {
            break;
        }
        sent += 1;
        tokio::time::sleep(SECS(0.2)).await;
    }
    let goaway = c
        .frames
        .wait_for(SECS(3.0), |s| {
            s.dir == Dir::Received && is_goaway(s, "too_many_pings")
        })
        .await
        .expect("GOAWAY too_many_pings");
    assert!(matches!(
        goaway.frame,
        ControlFrame::GoAway {
            code: ErrorCode::ENHANCE_YOUR_CALM,
            ..
        }
    ));
    // grpc-go: the first ping sets the clock, pings 2, 3 and 4 are strikes
    // 1-3, and more than 2 strikes is abuse: the GOAWAY answers the 4th.
    let pings_before: usize = c
        .frames
        .all()
        .iter()
        .filter(|s| s.dir == Dir::Sent && s.at <= goaway.at)
        .filter(|s| matches!(s.frame, ControlFrame::Ping { ack: false, .. }))
        .count();
    assert_eq!(pings_before, 4, "pings sent before the GOAWAY");
    assert_eq!(sent, 3, "the 4th ping got no ack");
    let _ = tokio::time::timeout(SECS(3.0), c.closed)
        .await
        .expect("server closes the connection");
    let strikes = t
        .log
        .all()
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::PingStrike { .. }))
        .count();
    assert_eq!(strikes, 3);
}

#[tokio::test]
async fn pings_with_stream_activity_are_not_strikes() {
    // permit_without_stream and a short min time: pings 300 ms apart are fine.
    let t = start(ServerConfig {
        keepalive_min_time: SECS(0.2),
        keepalive_permit_without_stream: true,
        ..Default::default()
    })
    .await;
    let mut c = RawClient::connect(t.addr).await;
    for _ in 0..6 {
        c.ping.ping(h2::Ping::opaque()).await.expect("ping acked");
        tokio::time::sleep(SECS(0.3)).await;
    }
    assert!(t
        .log
        .all()
        .iter()
        .all(|e| !matches!(e.kind, EventKind::PingStrike { .. })));
}

#[tokio::test]
async fn keepalive_closes_a_client_that_stops_reading() {
    let t = start(ServerConfig {
        keepalive_time: SECS(1.0),
        keepalive_timeout: SECS(1.0),
        ..Default::default()
    })
    .await;
    // A client that sends its preface and SETTINGS, then reads nothing ever.
    let mut tcp = tokio::net::TcpStream::connect(t.addr).await.unwrap();
    tcp.write_all(grpcdoc::h2wire::frame::CLIENT_PREFACE)
        .await
        .unwrap();
    tcp.write_all(
        &ControlFrame::Settings {
            ack: false,
            params: vec![],
        }
        .encode(),
    )
    .await
    .unwrap();
    let silent_since = Instant::now();
    let closed = t
        .log
        .wait_for(SECS(6.0), closed_event)
        .await
        .expect("closed");
    match &closed.kind {
        EventKind::Closed { reason, .. } => assert_eq!(*reason, CloseReason::KeepaliveTimeout),
        _ => unreachable!(),
    }
    assert_between(
        "disconnected after",
        silent_since.elapsed(),
        SECS(1.8),
        SECS(3.5),
    );
    let pinged = t.log.all().iter().any(|e| {
        matches!(
            e.kind,
            EventKind::Ping {
                dir: Dir::Sent,
                ack: false,
                ..
            }
        )
    });
    assert!(pinged, "the server pinged before giving up");
}

#[tokio::test]
async fn keepalive_keeps_a_responsive_client() {
    let t = start(ServerConfig {
        keepalive_time: SECS(0.5),
        keepalive_timeout: SECS(0.5),
        ..Default::default()
    })
    .await;
    let c = RawClient::connect(t.addr).await;
    tokio::time::sleep(SECS(2.5)).await;
    let acks_with_rtt = t
        .log
        .all()
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::Ping {
                    dir: Dir::Received,
                    ack: true,
                    rtt_ms: Some(_)
                }
            )
        })
        .count();
    assert!(
        acks_with_rtt >= 2,
        "keepalive pings answered: {acks_with_rtt}"
    );
    assert!(!c.closed.is_finished(), "the connection is still open");
}

#[tokio::test]
async fn graceful_stop_lets_calls_finish() {
    let t = start(ServerConfig::default()).await;
    let mut c = RawClient::connect(t.addr).await;
    let call = c
        .start_unary(
            "/helloworld.Greeter/SayHello",
            &hello("a"),
            &[("x-delay-ms", "700")],
        )
        .await;
    tokio::time::sleep(SECS(0.2)).await;
    t.server.stop(Stop::Graceful);
    let goaway = c
        .frames
        .wait_for(SECS(3.0), |s| {
            s.dir == Dir::Received && is_goaway(s, "graceful_stop")
        })
        .await;
    assert!(goaway.is_some());
    let (status, _) = call.await.unwrap().expect("in-flight call completes");
    assert_eq!(status, "0");
    let mut server = t.server;
    tokio::time::timeout(SECS(5.0), server.wait())
        .await
        .expect("server stops");
    // New connections are refused once stopped.
    assert!(tokio::net::TcpStream::connect(t.addr).await.is_err());
}

#[tokio::test]
async fn forced_stop_closes_at_once() {
    let t = start(ServerConfig::default()).await;
    let mut c = RawClient::connect(t.addr).await;
    let call = c
        .start_unary(
            "/helloworld.Greeter/SayHello",
            &hello("a"),
            &[("x-delay-ms", "5000")],
        )
        .await;
    tokio::time::sleep(SECS(0.2)).await;
    t.server.stop(Stop::Now);
    let r = tokio::time::timeout(SECS(2.0), call)
        .await
        .expect("call ends quickly")
        .unwrap();
    assert!(r.is_err(), "{r:?}");
}

#[tokio::test]
async fn max_concurrent_streams_is_announced() {
    let t = start(ServerConfig {
        max_concurrent_streams: Some(7),
        ..Default::default()
    })
    .await;
    let c = RawClient::connect(t.addr).await;
    let s = c
        .frames
        .wait_for(SECS(3.0), |s| {
            s.dir == Dir::Received
                && matches!(&s.frame, ControlFrame::Settings { ack: false, params } if params.contains(&(3, 7)))
        })
        .await;
    assert!(s.is_some(), "{:?}", c.frames.received());
}

#[tokio::test]
async fn no_stream_limit_by_default_like_grpc_go() {
    let t = start(ServerConfig::default()).await;
    let c = RawClient::connect(t.addr).await;
    let settings = c
        .frames
        .wait_for(SECS(3.0), |s| {
            s.dir == Dir::Received && matches!(&s.frame, ControlFrame::Settings { ack: false, .. })
        })
        .await
        .expect("server SETTINGS");
    match settings.frame {
        ControlFrame::Settings { params, .. } => {
            assert!(params.iter().all(|(id, _)| *id != 3), "{params:?}")
        }
        _ => unreachable!(),
    }
}
