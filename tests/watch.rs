//! `grpcdoc watch` as a user runs it (the built binary, its JSON and human
//! output) against real servers on loopback: the built-in server in-process,
//! or the `grpcdoc serve` binary where the test needs to stop it (SIGSTOP).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use grpcdoc::connectivity::State;
use grpcdoc::server::{ServerConfig, Stop};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_grpcdoc");

/// A running `grpcdoc watch`, its stdout lines with their arrival times.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
}

impl Watch {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .arg("watch")
            .args(args)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn grpcdoc watch");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// Waits for the exit (bounded) and returns the code and every line.
    fn finish(mut self, timeout: Duration) -> (i32, Vec<(Instant, String)>) {
        let deadline = Instant::now() + timeout;
        let code = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "watch did not exit in time");
            std::thread::sleep(Duration::from_millis(20));
        };
        let lines =
            std::iter::from_fn(|| self.lines.recv_timeout(Duration::from_secs(2)).ok()).collect();
        (code, lines)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn json(lines: &[(Instant, String)]) -> Vec<Value> {
    lines
        .iter()
        .map(|(_, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

fn state_of(v: &Value) -> State {
    serde_json::from_value(v.clone()).unwrap()
}

/// Subchannel state moves in order, checked to be legal.
fn sub_moves(events: &[Value]) -> Vec<(State, State, String)> {
    let moves: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "state" && e["channel"] == false)
        .map(|e| {
            (
                state_of(&e["from"]),
                state_of(&e["to"]),
                e["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (from, to, why) in &moves {
        assert!(from.can_move_to(*to), "illegal {from} -> {to} ({why})");
    }
    for e in events
        .iter()
        .filter(|e| e["kind"] == "state" && e["channel"] == true)
    {
        let (from, to) = (state_of(&e["from"]), state_of(&e["to"]));
        assert_ne!(from, to);
    }
    moves
}

fn kinds(events: &[Value], kind: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["kind"] == kind)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_goaway_moves_to_idle_and_the_next_probe_reconnects() {
    let t = common::start(ServerConfig {
        max_connection_idle: Some(Duration::from_secs(1)),
        ..Default::default()
    })
    .await;
    let addr = t.addr.to_string();
    let w = Watch::start(&[
        &addr,
        "-o",
        "json",
        "--probe-interval",
        "2500ms",
        "--for",
        "4s",
    ]);
    let (code, lines) = tokio::task::spawn_blocking(move || w.finish(Duration::from_secs(15)))
        .await
        .unwrap();
    assert_eq!(code, 0);
    let events = json(&lines);
    let moves = sub_moves(&events);
    let seq: Vec<(State, State)> = moves.iter().map(|m| (m.0, m.1)).collect();
    use State::*;
    assert_eq!(
        &seq[..5],
        [
            (Idle, Connecting),
            (Connecting, Ready),
            (Ready, Idle),
            (Idle, Connecting),
            (Connecting, Ready)
        ],
        "{moves:?}"
    );
    assert!(
        moves[2].2.contains("GOAWAY NO_ERROR \"max_idle\""),
        "{:?}",
        moves[2]
    );
    // The GOAWAY comes about 1 s after the first probe ended.
    let probe_end = kinds(&events, "rpc")[0]["t_ms"].as_f64().unwrap();
    let goaways = kinds(&events, "goaway");
    let g = goaways
        .iter()
        .find(|g| g["dir"] == "received")
        .expect("GOAWAY received");
    assert_eq!(
        (g["code"].as_str(), g["debug"].as_str()),
        (Some("NO_ERROR"), Some("max_idle"))
    );
    assert_eq!(g["last_stream_id"], 2147483647u32);
    let after = g["t_ms"].as_f64().unwrap() - probe_end;
    assert!(
        (800.0..1800.0).contains(&after),
        "GOAWAY {after} ms after the last stream"
    );
    // A new connection after the drain (made by the next probe; on a
    // starved machine a call can race the GOAWAY and be retried on a new
    // connection at once: a third one then), each drained when idle.
    let connects = kinds(&events, "connect");
    assert!(
        (2..=3).contains(&connects.len()),
        "{connects:?}\n{events:?}"
    );
    assert_ne!(connects[0]["conn"], connects[1]["conn"]);
    assert!(connects[1]["t_ms"].as_f64().unwrap() > g["t_ms"].as_f64().unwrap());
    let summary = events.last().unwrap();
    assert_eq!(summary["kind"], "summary");
    assert_eq!(summary["connections"], connects.len());
    let drains = summary["goaways"]["NO_ERROR \"max_idle\""]
        .as_u64()
        .unwrap();
    assert!(drains >= 2 && drains <= connects.len() as u64, "{summary}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hard_restart_backs_off_and_recovers() {
    let t = common::start(ServerConfig::default()).await;
    let addr = t.addr;
    let w = Watch::start(&[
        &addr.to_string(),
        "-o",
        "json",
        "--probe-interval",
        "300ms",
        "--for",
        "8s",
    ]);
    tokio::time::sleep(Duration::from_millis(700)).await;
    t.server.stop(Stop::Now);
    let mut server = t.server;
    server.wait().await;
    let down_at = Instant::now();
    // Down for 4.6 s: three failed attempts (after 1, 1.6, 2.56 s backoffs).
    tokio::time::sleep(Duration::from_millis(4600)).await;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("rebind the same port");
    let (sink, _rx) = grpcdoc::event::EventSink::channel(1024);
    let _again = grpcdoc::server::Server::start_on(listener, ServerConfig::default(), sink)
        .await
        .unwrap();
    let up_at = Instant::now();
    let (code, lines) = tokio::task::spawn_blocking(move || w.finish(Duration::from_secs(20)))
        .await
        .unwrap();
    assert_eq!(code, 0);
    let events = json(&lines);
    let moves = sub_moves(&events);
    assert!(
        moves.iter().any(|m| m.1 == State::TransientFailure),
        "{moves:?}"
    );
    let backoffs: Vec<f64> = kinds(&events, "backoff")
        .iter()
        .map(|b| b["delay_ms"].as_f64().unwrap())
        .collect();
    assert!(backoffs.len() >= 3, "{backoffs:?}");
    for (d, want) in backoffs.iter().zip([1000.0, 1600.0, 2560.0]) {
        assert!(
            (want * 0.8..=want * 1.2).contains(d),
            "backoff {d} ms, want {want} +-20%: {backoffs:?}"
        );
    }
    let refused = kinds(&events, "connect")
        .iter()
        .filter(|c| c["cause"] == "refused")
        .count();
    assert!(refused >= 3);
    // READY again within one backoff period (2.56 s +20%) of the restart.
    let restart_ms = up_at.duration_since(down_at).as_secs_f64() * 1e3;
    let first_fail = kinds(&events, "connect")
        .iter()
        .find(|c| c["result"] == "error")
        .unwrap()["t_ms"]
        .as_f64()
        .unwrap();
    let ready_again = events
        .iter()
        .filter(|e| e["kind"] == "state" && e["channel"] == false && e["to"] == "READY")
        .nth(1)
        .expect("READY after the restart")["t_ms"]
        .as_f64()
        .unwrap();
    let ready_after_restart = ready_again - first_fail - restart_ms;
    assert!(
        ready_after_restart < 3100.0,
        "READY {ready_after_restart} ms after the restart"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn too_many_pings_is_shown_and_explained() {
    let t = common::start(ServerConfig {
        keepalive_min_time: Duration::from_secs(5),
        ..Default::default()
    })
    .await;
    let addr = t.addr.to_string();
    let w = Watch::start(&[
        &addr,
        "--probe",
        "none",
        "--keepalive-time",
        "1s",
        "--keepalive-permit-without-stream",
        "--for",
        "6s",
    ]);
    let (code, lines) = tokio::task::spawn_blocking(move || w.finish(Duration::from_secs(15)))
        .await
        .unwrap();
    assert_eq!(code, 0);
    let text: Vec<&str> = lines.iter().map(|l| l.1.as_str()).collect();
    let text = text.join("\n");
    assert!(text.contains("GOAWAY received ENHANCE_YOUR_CALM"), "{text}");
    assert!(text.contains("debug=\"too_many_pings\""), "{text}");
    assert!(
        flat(&text).contains("after 4 PINGs from this client (every 1s) [too-many-pings]")
            || flat(&text).contains("after 3 PINGs from this client (every 1s) [too-many-pings]"),
        "{text}"
    );
    assert!(
        text.contains("PING received ACK rtt="),
        "round trips are measured: {text}"
    );
    assert!(text.contains("ping RTT min/median/max"), "{text}");
}

#[test]
fn keepalive_detects_a_stopped_server() {
    // The grpcdoc serve binary, so it can be stopped with SIGSTOP.
    let (mut server, addr) = common::spawn_listening(BIN, &["serve", "--listen", "127.0.0.1:0"]);
    let w = Watch::start(&[
        &addr,
        "-o",
        "json",
        "--probe",
        "none",
        "--keepalive-time",
        "1s",
        "--keepalive-timeout",
        "1s",
        "--keepalive-permit-without-stream",
        "--for",
        "5s",
    ]);
    std::thread::sleep(Duration::from_millis(1500));
    let pid = server.id().to_string();
    Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    let stopped = Instant::now();
    let (code, lines) = w.finish(Duration::from_secs(15));
    Command::new("kill").args(["-CONT", &pid]).status().unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(code, 0);
    let closed = lines
        .iter()
        .find(|(_, l)| l.contains("\"kind\":\"closed\"") && l.contains("keepalive_timeout"))
        .expect("closed by keepalive timeout");
    let after = closed.0.duration_since(stopped);
    assert!(
        after < Duration::from_millis(3200),
        "detected {after:?} after SIGSTOP"
    );
    let events = json(&lines);
    sub_moves(&events);
}

#[test]
fn refused_port_is_reported_not_a_crash() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let w = Watch::start(&[&addr, "--for", "2500ms"]);
    let (code, lines) = w.finish(Duration::from_secs(10));
    assert_eq!(code, 0);
    let text = lines
        .iter()
        .map(|l| l.1.clone())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(text.contains("CONNECTING -> TRANSIENT_FAILURE"), "{text}");
    assert!(text.contains("nothing listens on"), "{text}");
    assert!(text.contains("backoff"), "{text}");
    assert!(text.contains("UNAVAILABLE"), "probes fail fast: {text}");
}

#[test]
fn unresolvable_host_is_reported_not_a_crash() {
    let w = Watch::start(&["no-such-host.invalid:50051", "--for", "1500ms"]);
    let (code, lines) = w.finish(Duration::from_secs(10));
    assert_eq!(code, 0);
    let text = lines
        .iter()
        .map(|l| l.1.clone())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        text.contains("resolve failed: cannot resolve no-such-host.invalid"),
        "{text}"
    );
    assert!(text.contains("the name does not resolve"), "{text}");
}

#[test]
fn bad_target_and_flags_are_exit_2() {
    for (args, says) in [
        (vec!["localhost"], "no port in `localhost`"),
        (vec!["ftp://x:1"], "unknown scheme"),
        (
            vec!["127.0.0.1:1", "--probe", "nonsense"],
            "expected pkg.Service/Method",
        ),
        (
            vec!["127.0.0.1:1", "--keepalive-time", "soon"],
            "expected a duration",
        ),
        (vec!["127.0.0.1:1", "--backoff-jitter", "2"], "fraction"),
        (vec!["127.0.0.1:1", "--lb", "random"], "pick_first"),
    ] {
        let out = Command::new(BIN).arg("watch").args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_mismatches_and_certificates_are_explained() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let tls = common::start(ServerConfig {
        tls: Some(grpcdoc::server::tls::server_config(&cert_path, &key_path).unwrap()),
        ..Default::default()
    })
    .await;
    let plain = common::start(ServerConfig::default()).await;
    let tls_port = tls.addr.port();
    let cacert = cert_path.to_str().unwrap().to_string();

    let run = |args: Vec<String>| async move {
        tokio::task::spawn_blocking(move || {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let (code, lines) = Watch::start(&a).finish(Duration::from_secs(10));
            assert_eq!(code, 0);
            lines
                .into_iter()
                .map(|l| l.1)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .await
        .unwrap()
    };
    let s = |x: &str| x.to_string();

    let text = run(vec![
        format!("https://localhost:{tls_port}"),
        s("--cacert"),
        cacert.clone(),
        s("--for"),
        s("700ms"),
    ])
    .await;
    assert!(text.contains("CONNECTING -> READY"), "verified TLS: {text}");

    let text = run(vec![
        format!("https://localhost:{tls_port}"),
        s("--for"),
        s("700ms"),
    ])
    .await;
    assert!(
        text.contains("certificate was not accepted"),
        "unknown CA: {text}"
    );

    let text = run(vec![
        format!("https://localhost:{tls_port}"),
        s("--insecure"),
        s("--for"),
        s("700ms"),
    ])
    .await;
    assert!(text.contains("CONNECTING -> READY"), "--insecure: {text}");

    let text = run(vec![
        format!("127.0.0.1:{tls_port}"),
        s("--for"),
        s("700ms"),
    ])
    .await;
    assert!(
        flat(&text).contains("answered with TLS: use https://"),
        "plaintext to TLS: {text}"
    );

    let text = run(vec![
        format!("https://localhost:{}", plain.addr.port()),
        s("--insecure"),
        s("--for"),
        s("700ms"),
    ])
    .await;
    assert!(
        flat(&text).contains("answered in plaintext"),
        "TLS to plaintext: {text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn events_reach_stdout_within_milliseconds() {
    let t = common::start(ServerConfig {
        max_connection_idle: Some(Duration::from_millis(500)),
        ..Default::default()
    })
    .await;
    let addr = t.addr.to_string();
    let w = Watch::start(&[&addr, "-o", "json", "--probe", "none", "--for", "1500ms"]);
    let (_, lines) = tokio::task::spawn_blocking(move || w.finish(Duration::from_secs(10)))
        .await
        .unwrap();
    // When the server wrote the GOAWAY (its event, on this process's clock)...
    let sent = t
        .log
        .wait_for(Duration::from_secs(1), |e| {
            matches!(&e.kind, grpcdoc::event::EventKind::Goaway { dir: grpcdoc::h2wire::Dir::Sent, debug, .. } if debug == "max_idle")
        })
        .await
        .expect("server sent GOAWAY");
    let sent_at = t.start + Duration::from_secs_f64(sent.t_ms / 1e3);
    // ...and when watch's line about it arrived on our end of its stdout.
    let (arrived, _) = lines
        .iter()
        .find(|(_, l)| l.contains("\"kind\":\"goaway\"") && l.contains("\"received\""))
        .expect("GOAWAY line");
    let latency = arrived.saturating_duration_since(sent_at);
    eprintln!("GOAWAY written by the server -> line on watch's stdout: {latency:?}");
    assert!(latency < Duration::from_millis(200), "{latency:?}");
}

fn text_of(lines: &[(Instant, String)]) -> String {
    lines
        .iter()
        .map(|l| l.1.clone())
        .collect::<Vec<_>>()
        .join("\n")
}

async fn watch_to_end(args: Vec<String>) -> (i32, Vec<(Instant, String)>) {
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        Watch::start(&a).finish(Duration::from_secs(20))
    })
    .await
    .unwrap()
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn round_robin_connects_every_address_and_spreads_probes() {
    let a = common::start(ServerConfig::default()).await;
    let b = common::start(ServerConfig::default()).await;
    let target = format!("{},{}", a.addr, b.addr);
    let (code, lines) = watch_to_end(args(&[
        &target,
        "-o",
        "json",
        "--lb",
        "round_robin",
        "--probe-interval",
        "200ms",
        "--for",
        "1500ms",
    ]))
    .await;
    assert_eq!(code, 0);
    let events = json(&lines);
    let ready_subs: std::collections::BTreeSet<u64> = events
        .iter()
        .filter(|e| e["kind"] == "state" && e["to"] == "READY" && e["channel"] == false)
        .map(|e| e["subchannel"].as_u64().unwrap())
        .collect();
    assert_eq!(ready_subs.len(), 2, "both addresses READY");
    // Each server answered some of the probes.
    let streams = |t: &common::TestServer| {
        t.log
            .all()
            .iter()
            .filter(|e| matches!(e.kind, grpcdoc::event::EventKind::Accepted { .. }))
            .count()
    };
    assert_eq!((streams(&a), streams(&b)), (1, 1), "one connection each");
    for t in [&a, &b] {
        t.server.stop(Stop::Now);
    }
    let served = |t: &common::TestServer| {
        t.log
            .all()
            .iter()
            .filter_map(|e| match e.kind {
                grpcdoc::event::EventKind::Closed { streams, .. } => Some(streams),
                _ => None,
            })
            .sum::<u64>()
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        served(&a) >= 2 && served(&b) >= 2,
        "probes spread: {} and {}",
        served(&a),
        served(&b)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dns_target_resolves_every_record() {
    // localhost resolves to 127.0.0.1 and ::1; the server listens on 127.0.0.1 only.
    let t = common::start(ServerConfig::default()).await;
    let target = format!("dns:///localhost:{}", t.addr.port());
    let (code, lines) = watch_to_end(args(&[&target, "-o", "json", "--for", "800ms"])).await;
    assert_eq!(code, 0);
    let events = json(&lines);
    let resolved = events
        .iter()
        .find(|e| e["kind"] == "resolve")
        .expect("resolve event");
    let addrs: Vec<&str> = resolved["addrs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        addrs.contains(&format!("127.0.0.1:{}", t.addr.port()).as_str()),
        "{addrs:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "state" && e["to"] == "READY"),
        "one address works"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn health_checking_gates_ready_on_serving() {
    let t = common::start(ServerConfig::default()).await;
    let health = t.server.health.clone();
    health
        .set_service_status(
            "helloworld.Greeter",
            tonic_health::ServingStatus::NotServing,
        )
        .await;
    let addr = t.addr.to_string();
    let flip = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(800)).await;
        health
            .set_service_status("helloworld.Greeter", tonic_health::ServingStatus::Serving)
            .await;
    });
    let (code, lines) = watch_to_end(args(&[
        &addr,
        "-o",
        "json",
        "--health-service",
        "helloworld.Greeter",
        "--probe",
        "none",
        "--for",
        "1600ms",
    ]))
    .await;
    flip.await.unwrap();
    assert_eq!(code, 0);
    let moves: Vec<(State, State, String)> = sub_moves(&json(&lines));
    let seq: Vec<(State, State)> = moves.iter().map(|m| (m.0, m.1)).collect();
    use State::*;
    assert_eq!(
        &seq[..4],
        [
            (Idle, Connecting),
            (Connecting, TransientFailure),
            (TransientFailure, Connecting),
            (Connecting, Ready)
        ],
        "{moves:?}"
    );
    assert!(
        moves[1].2.contains("health check: NOT_SERVING"),
        "{:?}",
        moves[1]
    );
    assert!(moves[3].2.contains("SERVING"), "{:?}", moves[3]);
}

#[tokio::test(flavor = "multi_thread")]
async fn eager_reconnect_does_not_wait_for_a_call() {
    let t = common::start(ServerConfig {
        max_connection_idle: Some(Duration::from_millis(500)),
        ..Default::default()
    })
    .await;
    let addr = t.addr.to_string();
    let (_, lines) = watch_to_end(args(&[
        &addr,
        "-o",
        "json",
        "--probe",
        "none",
        "--reconnect",
        "eager",
        "--for",
        "1300ms",
    ]))
    .await;
    let events = json(&lines);
    let connects = kinds(&events, "connect");
    assert!(
        connects.len() >= 2,
        "reconnected after the idle GOAWAY without a call: {connects:?}"
    );
    let moves = sub_moves(&events);
    assert!(moves
        .iter()
        .any(|m| m.0 == State::Ready && m.1 == State::Idle));
}

#[tokio::test(flavor = "multi_thread")]
async fn frames_flag_shows_headers_and_data() {
    let t = common::start(ServerConfig::default()).await;
    let addr = t.addr.to_string();
    let (_, lines) = watch_to_end(args(&[&addr, "-o", "json", "--frames", "--for", "500ms"])).await;
    let events = json(&lines);
    let types: std::collections::BTreeSet<(String, String)> = kinds(&events, "frame")
        .iter()
        .map(|f| {
            (
                f["type"].as_str().unwrap().to_string(),
                f["dir"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for want in [
        ("HEADERS", "sent"),
        ("DATA", "sent"),
        ("HEADERS", "received"),
        ("DATA", "received"),
    ] {
        assert!(
            types.contains(&(want.0.to_string(), want.1.to_string())),
            "{want:?} in {types:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unix_socket_targets() {
    // A unix socket in front of the built-in server, bytes copied as they are.
    let t = common::start(ServerConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grpc.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let upstream = t.addr;
    let relay = tokio::spawn(async move {
        while let Ok((mut u, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut tcp) = tokio::net::TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut u, &mut tcp).await;
                }
            });
        }
    });
    let target = format!("unix:{}", path.display());
    let (code, lines) = watch_to_end(args(&[&target, "-o", "json", "--for", "600ms"])).await;
    relay.abort();
    assert_eq!(code, 0);
    let events = json(&lines);
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "state" && e["to"] == "READY"),
        "{}",
        text_of(&lines)
    );
    assert!(kinds(&events, "rpc").iter().any(|r| r["code"] == "OK"));
    assert_eq!(
        kinds(&events, "connect")[0]["addr"],
        format!("unix:{}", path.display())
    );
}

/// A minimal HTTP/2 peer written with grpcdoc's frame codec: answers the
/// client's SETTINGS, then refuses the first stream it sees with `refuse`
/// (frames written by hand), and keeps the connection open for a while.
async fn refusing_server(
    refuse: impl Fn(u32) -> bytes::Bytes + Send + Sync + 'static,
) -> std::net::SocketAddr {
    use grpcdoc::h2wire::frame::ControlFrame;
    use grpcdoc::h2wire::scan::Scanner;
    use grpcdoc::h2wire::FrameType;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let refuse = std::sync::Arc::new(refuse);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let refuse = refuse.clone();
            tokio::spawn(async move {
                let settings = ControlFrame::Settings {
                    ack: false,
                    params: vec![],
                }
                .encode();
                if s.write_all(&settings).await.is_err() {
                    return;
                }
                let mut scan = Scanner::new(true);
                let mut buf = vec![0u8; 16384];
                let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
                    if n == 0 {
                        return;
                    }
                    let mut out = Vec::new();
                    scan.feed(&buf[..n], &mut |h, p| match h.kind {
                        FrameType::Settings if h.flags & 1 == 0 => out.extend_from_slice(
                            &ControlFrame::Settings {
                                ack: true,
                                params: vec![],
                            }
                            .encode(),
                        ),
                        FrameType::Ping if h.flags & 1 == 0 => {
                            if let Ok(ControlFrame::Ping { data, .. }) = ControlFrame::parse(h, p) {
                                out.extend_from_slice(
                                    &ControlFrame::Ping { ack: true, data }.encode(),
                                );
                            }
                        }
                        FrameType::Headers => out.extend_from_slice(&refuse(h.stream_id)),
                        _ => {}
                    });
                    if !out.is_empty() && s.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

async fn probe_messages(addr: std::net::SocketAddr) -> Vec<Value> {
    let (_, lines) = watch_to_end(args(&[
        &addr.to_string(),
        "-o",
        "json",
        "--probe-interval",
        "300ms",
        "--for",
        "700ms",
    ]))
    .await;
    kinds(&json(&lines), "rpc")
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_streams_are_marked_never_processed() {
    use grpcdoc::h2wire::{frame::ControlFrame, ErrorCode};
    let addr = refusing_server(|stream_id| {
        ControlFrame::RstStream {
            stream_id,
            code: ErrorCode::REFUSED_STREAM,
        }
        .encode()
    })
    .await;
    let rpcs = probe_messages(addr).await;
    assert!(!rpcs.is_empty());
    for r in &rpcs {
        assert_eq!(r["code"], "UNAVAILABLE", "{r}");
        assert!(
            r["message"]
                .as_str()
                .unwrap()
                .contains("never processed by the server (REFUSED_STREAM)"),
            "{r}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_above_goaway_last_stream_id_are_marked_never_processed() {
    use grpcdoc::h2wire::{frame::ControlFrame, ErrorCode};
    let addr = refusing_server(|stream_id| {
        ControlFrame::GoAway {
            last_stream_id: stream_id - 1,
            code: ErrorCode::NO_ERROR,
            debug: bytes::Bytes::from_static(b"chaos"),
        }
        .encode()
    })
    .await;
    let rpcs = probe_messages(addr).await;
    let first = rpcs.first().expect("a probe");
    assert_eq!(first["code"], "UNAVAILABLE", "{first}");
    let msg = first["message"].as_str().unwrap();
    assert!(
        msg.contains("never processed by the server (GOAWAY NO_ERROR \"chaos\")"),
        "{msg}"
    );
}

/// When watch ends (`--for`), it closes its connection itself: the last
/// `closed` says `local`, never `eof`, and the server saw a GOAWAY from it.
#[tokio::test(flavor = "multi_thread")]
async fn the_connection_watch_ends_is_closed_local() {
    let t = common::start(ServerConfig::default()).await;
    let (code, lines) =
        watch_to_end(args(&[&t.addr.to_string(), "--for", "2s", "-o", "json"])).await;
    assert_eq!(code, 0);
    let events = json(&lines);
    let closed = kinds(&events, "closed");
    assert_eq!(closed.len(), 1, "{events:?}");
    assert_eq!(closed[0]["reason"], "local", "{events:?}");
    let goaway_from_watch = t.log.wait_for(Duration::from_secs(2), |e| {
        matches!(
            &e.kind,
            grpcdoc::event::EventKind::Goaway { dir, code, .. }
                if *dir == grpcdoc::h2wire::Dir::Received && *code == grpcdoc::h2wire::ErrorCode::NO_ERROR
        )
    });
    assert!(
        goaway_from_watch.await.is_some(),
        "the server got watch's GOAWAY"
    );
}

/// Against a port where nothing listens, the channel goes TRANSIENT_FAILURE
/// and stays there while its subchannel retries (sticky TRANSIENT_FAILURE,
/// gRFC A62, as grpc-go 1.73 and C-core 1.85 show it), while the subchannel
/// moves CONNECTING <-> TRANSIENT_FAILURE with every attempt.
#[tokio::test(flavor = "multi_thread")]
async fn the_channel_stays_in_transient_failure_while_it_retries() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let (code, lines) = watch_to_end(args(&[
        &addr,
        "-o",
        "json",
        "--for",
        "3500ms",
        "--reconnect",
        "eager",
    ]))
    .await;
    assert_eq!(code, 0);
    let events = json(&lines);
    let channel: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["kind"] == "state" && e["channel"] == true)
        .map(|e| (e["from"].to_string(), e["to"].to_string()))
        .collect();
    assert!(
        channel.contains(&("\"CONNECTING\"".into(), "\"TRANSIENT_FAILURE\"".into())),
        "{channel:?}"
    );
    for (from, to) in &channel {
        if from == "\"TRANSIENT_FAILURE\"" {
            assert_eq!(to, "\"SHUTDOWN\"", "sticky: {channel:?}");
        }
    }
    let sub_attempts = events
        .iter()
        .filter(|e| e["kind"] == "state" && e["channel"] == false && e["to"] == "CONNECTING")
        .count();
    assert!(sub_attempts >= 2, "the subchannel kept trying: {events:?}");
}

/// watch (JSON) probing SayHello every `interval` for `run` against a
/// built-in server that recycles connections (`age`, `grace`) and holds
/// each call `delay`.
async fn watch_age_drains(
    age: Duration,
    grace: Duration,
    delay: Duration,
    interval: &str,
    run: &str,
) -> Vec<Value> {
    let t = common::start(ServerConfig {
        max_connection_age: Some(age),
        max_connection_age_grace: Some(grace),
        delay,
        ..Default::default()
    })
    .await;
    let (code, lines) = watch_to_end(args(&[
        &t.addr.to_string(),
        "--probe",
        "helloworld.Greeter/SayHello",
        "--probe-interval",
        interval,
        "--for",
        run,
        "-o",
        "json",
    ]))
    .await;
    assert_eq!(code, 0);
    json(&lines)
}

/// A probe held across a max-age drain whose grace runs out: at the GOAWAY
/// watch says the drain began, and when the grace cuts the probe it says
/// that too, naming the catalogue entry (human and JSON).
#[tokio::test(flavor = "multi_thread")]
async fn a_probe_cut_by_a_drain_grace_is_explained() {
    let events = watch_age_drains(
        Duration::from_millis(800),
        Duration::from_millis(400),
        Duration::from_millis(1800),
        "3s",
        "2500ms",
    )
    .await;
    let cut = events
        .iter()
        .find(|e| e["kind"] == "rpc" && e["code"] == "UNAVAILABLE")
        .unwrap_or_else(|| panic!("the grace cut the probe: {events:?}"));
    assert!(cut["message"].as_str().is_some(), "{cut}");
    let ids: Vec<String> = kinds(&events, "explanation")
        .iter()
        .filter_map(|e| e["id"].as_str().map(String::from))
        .collect();
    let cut_note = kinds(&events, "explanation")
        .into_iter()
        .find(|e| {
            e["note"]
                .as_str()
                .is_some_and(|n| n.contains("was in flight"))
        })
        .unwrap_or_else(|| panic!("the cut is explained: {ids:?}"));
    assert_eq!(cut_note["id"], "drain-cut");
    assert!(cut_note["fix"]
        .as_str()
        .is_some_and(|f| f.contains("grace")));
}

/// grpc-go's graceful drain is two GOAWAY frames (2^31-1, then the last
/// stream): watch explains it once and counts one drain, and the frames
/// apart.
#[tokio::test(flavor = "multi_thread")]
async fn one_drain_of_two_goaways_is_explained_and_counted_once() {
    let events = watch_age_drains(
        Duration::from_millis(600),
        Duration::from_secs(2),
        Duration::from_millis(950),
        "1s",
        "2500ms",
    )
    .await;
    let summary = events.last().expect("a summary");
    assert_eq!(summary["kind"], "summary");
    let key = "NO_ERROR \"max_age\"";
    let drains = summary["drains"][key].as_u64().unwrap_or(0);
    let frames = summary["goaways"][key].as_u64().unwrap_or(0);
    assert!(drains >= 1, "{summary}");
    // Per connection: its GOAWAY frames, one drain.
    let mut per_conn = std::collections::BTreeMap::<u64, u64>::new();
    for g in kinds(&events, "goaway")
        .iter()
        .filter(|g| g["dir"] == "received")
    {
        *per_conn.entry(g["conn"].as_u64().unwrap_or(0)).or_default() += 1;
    }
    assert_eq!(drains, per_conn.len() as u64, "{summary}");
    assert_eq!(frames, per_conn.values().sum::<u64>(), "{summary}");
    assert!(
        per_conn.values().any(|n| *n == 2),
        "a drain with a call in flight gets both frames: {per_conn:?}"
    );
    let explained = kinds(&events, "explanation")
        .iter()
        .filter(|e| e["id"] == "max-age-drain")
        .count() as u64;
    assert_eq!(explained, drains, "one explanation per drain: {events:?}");
}

/// The server killed with a probe in flight (FIN, no GOAWAY): the probe
/// fails saying the server closed the connection without GOAWAY, and watch
/// explains it as a crash or hard stop.
#[test]
fn a_killed_server_with_a_call_in_flight_is_explained() {
    let (mut server, addr) =
        common::spawn_listening(BIN, &["serve", "--listen", "127.0.0.1:0", "--delay", "3s"]);
    let w = Watch::start(&[
        &addr,
        "-o",
        "json",
        "--probe",
        "helloworld.Greeter/SayHello",
        "--probe-interval",
        "5s",
        "--for",
        "2500ms",
    ]);
    std::thread::sleep(Duration::from_millis(1000));
    let _ = server.kill();
    let _ = server.wait();
    let (code, lines) = w.finish(Duration::from_secs(10));
    assert_eq!(code, 0);
    let events = json(&lines);
    let rpc = kinds(&events, "rpc");
    assert_eq!(rpc.len(), 1, "{events:?}");
    assert_eq!(rpc[0]["code"], "UNAVAILABLE");
    let msg = rpc[0]["message"].as_str().unwrap_or_default();
    assert!(
        msg == "the server closed the connection (EOF, no GOAWAY)"
            || msg.starts_with("connection error: Connection reset by peer"),
        "{msg}"
    );
    assert!(
        kinds(&events, "explanation")
            .iter()
            .any(|e| e["id"] == "server-crash"),
        "{events:?}"
    );
}

/// Notes are wrapped to the terminal's width: text without line breaks.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
