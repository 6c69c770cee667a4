//! Interop tier: the built-in server against the real grpc-go 1.33 and grpc
//! C-core (grpcio) clients, and the same raw-client checks against the real
//! grpc-go and C-core servers, side by side. Needs the peers built by
//! `../shared/peers/setup.sh` (`PEERS_HOME` set, as `.ci/run` does). Without
//! them each test says so and returns, unless `GRPCDOC_REQUIRE_PEERS=1`
//! (set by `.ci/run`), where a missing peer fails the test.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::*;
use grpcdoc::event::EventKind;
use grpcdoc::h2wire::frame::MAX_STREAM_ID;
use grpcdoc::h2wire::{ControlFrame, Dir, ErrorCode};
use grpcdoc::server::ServerConfig;
/// Runs a peer program to completion in a blocking thread.
async fn run_peer(bin: PathBuf, args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run peer")
    })
    .await
    .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A peer server on a free loopback port, killed on drop.
struct PeerServer {
    child: Child,
    addr: SocketAddr,
}

impl PeerServer {
    fn start(bin: PathBuf, addr_flag: &str, extra: &[&str]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let child = Command::new(bin)
            .args([addr_flag, &addr.to_string()])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn peer server");
        wait_listening(addr, "peer server");
        Self { child, addr }
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        // Its process group too, when it leads one (nginx's workers).
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) on a group this test started; no memory is
            // touched (ESRCH when the child leads no group).
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[tokio::test]
async fn grpc_go_client_calls_say_hello() {
    let Some(bin) = peer("gogrpc-watch") else {
        return;
    };
    let t = start(ServerConfig::default()).await;
    let args = [
        "-addr",
        &t.addr.to_string(),
        "-interval",
        "100ms",
        "-n",
        "5",
        "-duration",
        "3s",
    ];
    let out = run_peer(bin, args.map(String::from).to_vec()).await;
    let log = text(&out);
    assert!(log.contains("final: ok=5 errors=0"), "{log}");
    assert!(log.contains("OK \"Hello w0-0\""), "{log}");
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[tokio::test]
async fn c_core_client_calls_say_hello() {
    let Some(bin) = peer("pygrpc-watch") else {
        return;
    };
    let t = start(ServerConfig::default()).await;
    let args = [
        "--addr",
        &t.addr.to_string(),
        "--interval",
        "0.1",
        "-n",
        "5",
        "--duration",
        "3",
    ];
    let out = run_peer(bin, args.map(String::from).to_vec()).await;
    let log = text(&out);
    assert!(log.contains("final: ok=5 errors=0"), "{log}");
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[tokio::test]
async fn c_core_lists_services_by_reflection_and_gets_serving() {
    let Some(bin) = peer("grpc-check-services") else {
        return;
    };
    let t = start(ServerConfig::default()).await;
    let out = run_peer(bin, vec![t.addr.to_string()]).await;
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    for s in [
        "'grpc.health.v1.Health'",
        "'grpc.reflection.v1.ServerReflection'",
        "'grpc.reflection.v1alpha.ServerReflection'",
        "'grpcdoc.echo.v1.Echo'",
        "'helloworld.Greeter'",
    ] {
        assert!(log.contains(s), "{s} missing: {log}");
    }
    assert!(log.contains("health Check(''): SERVING"), "{log}");
    assert!(
        log.contains("health Check('helloworld.Greeter'): SERVING"),
        "{log}"
    );
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[tokio::test]
async fn nghttp_verifies_a_call() {
    let Some(bin) = peer("verify-grpc") else {
        return;
    };
    let t = start(ServerConfig::default()).await;
    let out = run_peer(bin, vec![t.addr.to_string()]).await;
    assert!(text(&out).contains("VERIFY OK"), "{}", text(&out));
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[tokio::test]
async fn grpc_go_client_reconnects_after_idle_goaway() {
    let Some(bin) = peer("gogrpc-watch") else {
        return;
    };
    let t = start(ServerConfig {
        max_connection_idle: Some(Duration::from_secs(1)),
        ..Default::default()
    })
    .await;
    let args = [
        "-addr",
        &t.addr.to_string(),
        "-block",
        "-duration",
        "2500ms",
    ];
    let out = run_peer(bin, args.map(String::from).to_vec()).await;
    let log = text(&out);
    // grpc-go 1.33 goes READY -> CONNECTING on GOAWAY (newer: READY -> IDLE).
    assert!(log.contains("READY -> CONNECTING"), "{log}");
    let goaway = t
        .log
        .all()
        .into_iter()
        .find(|e| matches!(&e.kind, EventKind::Goaway { dir: Dir::Sent, debug, .. } if debug == "max_idle"));
    assert!(goaway.is_some());
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[tokio::test]
async fn grpc_go_client_pinging_too_often_gets_too_many_pings() {
    let Some(bin) = peer("gogrpc-watch") else {
        return;
    };
    let t = start(ServerConfig {
        keepalive_min_time: Duration::from_secs(5),
        ..Default::default()
    })
    .await;
    let args = [
        "-addr",
        &t.addr.to_string(),
        "-block",
        "-duration",
        "6s",
        "-ka-time",
        "1s",
        "-ka-timeout",
        "1s",
        "-ka-permit-without-stream",
    ];
    let out = run_peer(bin, args.map(String::from).to_vec()).await;
    let log = text(&out);
    let calm = t.log.all().into_iter().any(|e| {
        matches!(&e.kind, EventKind::Goaway { dir: Dir::Sent, code, debug, .. }
            if *code == ErrorCode::ENHANCE_YOUR_CALM && debug == "too_many_pings")
    });
    assert!(calm, "no too_many_pings GOAWAY; client log:\n{log}");
    assert!(log.contains("READY -> CONNECTING"), "{log}");
}

/// Counts the pings a raw client sends, 200 ms apart, before the server's
/// GOAWAY ENHANCE_YOUR_CALM.
async fn pings_until_calm(addr: SocketAddr) -> usize {
    let mut c = RawClient::connect(addr).await;
    for _ in 0..10 {
        if c.ping.ping(h2::Ping::opaque()).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let goaway = c
        .frames
        .wait_for(Duration::from_secs(3), |s| {
            s.dir == Dir::Received && is_goaway(s, "too_many_pings")
        })
        .await
        .expect("GOAWAY too_many_pings");
    c.frames
        .all()
        .iter()
        .filter(|s| s.dir == Dir::Sent && s.at <= goaway.at)
        .filter(|s| matches!(s.frame, ControlFrame::Ping { ack: false, .. }))
        .count()
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[tokio::test]
async fn ping_enforcement_matches_grpc_go() {
    let Some(bin) = peer("gogrpc-server") else {
        return;
    };
    let go = PeerServer::start(bin, "-addr", &["-ka-min-time", "5s"]);
    let ours = start(ServerConfig {
        keepalive_min_time: Duration::from_secs(5),
        ..Default::default()
    })
    .await;
    let (go_n, our_n) = (
        pings_until_calm(go.addr).await,
        pings_until_calm(ours.addr).await,
    );
    assert_eq!(
        our_n, go_n,
        "pings before GOAWAY: grpc-go {go_n}, grpcdoc {our_n}"
    );
}

/// The first GOAWAY of an idle drain as a raw client sees it: (code, last
/// stream id, debug, seconds after connect, PING follows).
async fn idle_goaway(addr: SocketAddr) -> (ErrorCode, u32, String, f64, bool) {
    let c = RawClient::connect(addr).await;
    let start = tokio::time::Instant::now();
    let g = c
        .frames
        .wait_for(Duration::from_secs(5), |s| {
            s.dir == Dir::Received && matches!(s.frame, ControlFrame::GoAway { .. })
        })
        .await
        .expect("GOAWAY");
    let ping = c
        .frames
        .wait_for(Duration::from_millis(500), |s| {
            s.dir == Dir::Received
                && s.at >= g.at
                && matches!(s.frame, ControlFrame::Ping { ack: false, .. })
        })
        .await
        .is_some();
    match g.frame {
        ControlFrame::GoAway {
            code,
            last_stream_id,
            debug,
        } => (
            code,
            last_stream_id,
            String::from_utf8_lossy(&debug).into_owned(),
            (g.at - start).as_secs_f64(),
            ping,
        ),
        _ => unreachable!(),
    }
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[tokio::test]
async fn idle_drain_matches_grpc_go_and_c_core() {
    let (Some(go_bin), Some(py_bin)) = (peer("gogrpc-server"), peer("pygrpc-server")) else {
        return;
    };
    let go = PeerServer::start(go_bin, "-addr", &["-max-conn-idle", "1s"]);
    let py = PeerServer::start(py_bin, "--addr", &["--max-connection-idle-ms", "1000"]);
    let ours = start(ServerConfig {
        max_connection_idle: Some(Duration::from_secs(1)),
        ..Default::default()
    })
    .await;
    let go_g = idle_goaway(go.addr).await;
    let py_g = idle_goaway(py.addr).await;
    let our_g = idle_goaway(ours.addr).await;
    eprintln!("idle GOAWAY (code, last_stream_id, debug, after s, ping):\n  grpc-go 1.33 {go_g:?}\n  C-core {py_g:?}\n  grpcdoc {our_g:?}");
    for (who, g) in [("grpc-go", &go_g), ("grpcdoc", &our_g)] {
        assert_eq!(g.0, ErrorCode::NO_ERROR, "{who}");
        assert_eq!(
            g.1, MAX_STREAM_ID,
            "{who}: first GOAWAY of a two-step drain"
        );
        assert!(g.4, "{who}: PING after the first GOAWAY");
        assert!((0.8..2.2).contains(&g.3), "{who}: after {}s", g.3);
    }
    // grpcio 1.85 (C-core) ends an idle connection with one GOAWAY and no
    // drain: INTERNAL_ERROR, last stream 0, debug "connection idle".
    assert_eq!(py_g.2, "connection idle", "C-core");
    assert!((0.8..2.2).contains(&py_g.3), "C-core after {}s", py_g.3);
    // Current grpc-go and C-core name the reason; grpc-go 1.33 sent none.
    assert_eq!(our_g.2, "max_idle");
}

/// Runs `grpcdoc watch` with JSON output to the end and returns its events.
fn grpcdoc_watch(args: &[String]) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_grpcdoc"))
        .arg("watch")
        .args(args)
        .args(["-o", "json"])
        .stderr(Stdio::null())
        .output()
        .expect("run grpcdoc watch");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn sub_states(events: &[serde_json::Value]) -> Vec<(String, String)> {
    use grpcdoc::connectivity::State;
    events
        .iter()
        .filter(|e| e["kind"] == "state" && e["channel"] == false)
        .map(|e| {
            let (from, to): (State, State) = (
                serde_json::from_value(e["from"].clone()).unwrap(),
                serde_json::from_value(e["to"].clone()).unwrap(),
            );
            assert!(from.can_move_to(to), "illegal {from} -> {to}");
            (from.to_string(), to.to_string())
        })
        .collect()
}

/// `STATE A -> B` lines of the grpc-go and C-core watchers: the states named.
fn peer_states(log: &str) -> std::collections::BTreeSet<String> {
    // A state name is the run of capitals and underscores: when the peer's
    // stdout and C-core's stderr interleave, a line may run on into the next
    // one's "[pygrpc-watch]" prefix.
    log.lines()
        .filter_map(|l| l.split_once("STATE ").map(|(_, s)| s))
        .flat_map(|s| {
            s.split(" -> ").map(|x| {
                x.trim_start()
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                    .collect::<String>()
            })
        })
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn watch_beside_grpc_go_and_c_core_through_a_grpc_go_restart() {
    let (Some(server_bin), Some(go_watch), Some(py_watch)) = (
        peer("gogrpc-server"),
        peer("gogrpc-watch"),
        peer("pygrpc-watch"),
    ) else {
        return;
    };
    let server = PeerServer::start(server_bin.clone(), "-addr", &["-connlog=false"]);
    let addr = server.addr;
    let ours = tokio::task::spawn_blocking(move || {
        grpcdoc_watch(&[
            addr.to_string(),
            "--probe-interval".into(),
            "300ms".into(),
            "--for".into(),
            "8s".into(),
        ])
    });
    let go = run_peer(
        go_watch,
        [
            "-addr",
            &addr.to_string(),
            "-interval",
            "300ms",
            "-duration",
            "8s",
            "-quiet-ok",
        ]
        .map(String::from)
        .to_vec(),
    );
    let py = run_peer(
        py_watch,
        [
            "--addr",
            &addr.to_string(),
            "--interval",
            "0.3",
            "--duration",
            "8",
        ]
        .map(String::from)
        .to_vec(),
    );
    let restart = async move {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        drop(server); // SIGKILL
        tokio::time::sleep(Duration::from_millis(4000)).await;
        let port = addr.port().to_string();
        let mut again = Command::new(&server_bin);
        again
            .args(["-addr", &format!("127.0.0.1:{port}"), "-connlog=false"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = again.spawn().expect("restart gogrpc-server");
        (PeerServer { child, addr }, tokio::time::Instant::now())
    };
    let (ours, go, py, (restarted, _)) = tokio::join!(ours, go, py, restart);
    let events = ours.unwrap();
    drop(restarted);
    let moves = sub_states(&events);
    let ours_set: std::collections::BTreeSet<String> = moves
        .iter()
        .flat_map(|(a, b)| [a.clone(), b.clone()])
        .collect();
    // grpcdoc shows the failure, the backoff, and READY again.
    for s in ["READY", "IDLE", "CONNECTING", "TRANSIENT_FAILURE"] {
        assert!(ours_set.contains(s), "grpcdoc never showed {s}: {moves:?}");
    }
    let backoffs: Vec<f64> = events
        .iter()
        .filter(|e| e["kind"] == "backoff")
        .map(|e| e["delay_ms"].as_f64().unwrap())
        .collect();
    for (d, want) in backoffs.iter().zip([1000.0, 1600.0, 2560.0]) {
        assert!((want * 0.8..=want * 1.2).contains(d), "{backoffs:?}");
    }
    assert_eq!(moves.last().map(|m| m.1.as_str()), Some("SHUTDOWN"));
    assert!(
        moves.iter().filter(|m| m.1 == "READY").count() >= 2,
        "READY after the restart: {moves:?}"
    );
    // The states the real clients report are ones grpcdoc shows too.
    let (go_log, py_log) = (text(&go), text(&py));
    let (go_set, py_set) = (peer_states(&go_log), peer_states(&py_log));
    eprintln!(
        "grpc-go 1.33 states {go_set:?}\nC-core states {py_set:?}\ngrpcdoc states {ours_set:?}"
    );
    assert!(
        go_set.contains("TRANSIENT_FAILURE") && py_set.contains("TRANSIENT_FAILURE"),
        "{go_log}\n{py_log}"
    );
    for s in go_set.iter().chain(py_set.iter()) {
        assert!(
            ours_set.contains(s),
            "{s} reported by a peer, not by grpcdoc"
        );
    }
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn watch_explains_too_many_pings_from_grpc_go() {
    let Some(bin) = peer("gogrpc-server") else {
        return;
    };
    let server = PeerServer::start(bin, "-addr", &["-ka-min-time", "5s", "-connlog=false"]);
    let events = grpcdoc_watch(&[
        server.addr.to_string(),
        "--probe".into(),
        "none".into(),
        "--keepalive-time".into(),
        "1s".into(),
        "--keepalive-permit-without-stream".into(),
        "--for".into(),
        "6s".into(),
    ]);
    let g = events
        .iter()
        .find(|e| e["kind"] == "goaway" && e["dir"] == "received")
        .expect("GOAWAY from grpc-go");
    assert_eq!(g["code"], "ENHANCE_YOUR_CALM");
    assert_eq!(g["debug"], "too_many_pings");
    let out = Command::new(env!("CARGO_BIN_EXE_grpcdoc"))
        .args([
            "watch",
            &server.addr.to_string(),
            "--probe",
            "none",
            "--keepalive-time",
            "1s",
        ])
        .args(["--keepalive-permit-without-stream", "--for", "6s"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let human = String::from_utf8_lossy(&out.stdout);
    // The note's words are the catalogue's, its facts this connection's
    // (wrapped to the terminal: compare without the line breaks).
    let flat = human.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("[too-many-pings]"), "{human}");
    assert!(
        flat.contains("PINGs from this client (every 1s)"),
        "{human}"
    );
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn watch_detects_a_sigstopped_grpc_go_server_by_keepalive() {
    let Some(bin) = peer("gogrpc-server") else {
        return;
    };
    let server = PeerServer::start(
        bin,
        "-addr",
        &[
            "-ka-min-time",
            "1ns",
            "-ka-permit-without-stream",
            "-connlog=false",
        ],
    );
    let pid = server.child.id().to_string();
    let addr = server.addr.to_string();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        Command::new("kill").args(["-STOP", &pid]).status().unwrap();
        std::time::Instant::now()
    });
    let started = std::time::Instant::now();
    let events = grpcdoc_watch(&[
        addr,
        "--probe".into(),
        "none".into(),
        "--keepalive-time".into(),
        "1s".into(),
        "--keepalive-timeout".into(),
        "1s".into(),
        "--keepalive-permit-without-stream".into(),
        "--for".into(),
        "5s".into(),
    ]);
    let stopped_at = stopper.join().unwrap();
    let _ = Command::new("kill")
        .args(["-CONT", &server.child.id().to_string()])
        .status();
    let closed = events
        .iter()
        .find(|e| e["kind"] == "closed" && e["reason"] == "keepalive_timeout")
        .expect("closed by keepalive");
    let closed_at = started + Duration::from_secs_f64(closed["t_ms"].as_f64().unwrap() / 1e3);
    let after = closed_at.saturating_duration_since(stopped_at);
    eprintln!("SIGSTOPped grpc-go server detected after {after:?}");
    assert!(after < Duration::from_millis(3200), "{after:?}");
}

fn grpcdoc_load(args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_grpcdoc"))
        .arg("load")
        .args(args)
        .args(["-o", "json"])
        .output()
        .expect("run grpcdoc load");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), report, err)
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn load_grpc_go_by_reflection_v1alpha_alone() {
    let Some(bin) = peer("gogrpc-server") else {
        return;
    };
    let server = PeerServer::start(bin, "-addr", &["-connlog=false"]);
    let addr = server.addr.to_string();
    let (code, r, err) = grpcdoc_load(&[
        &addr,
        "--call",
        "helloworld.Greeter/SayHello",
        "-d",
        r#"{"name":"x"}"#,
        "-n",
        "500",
        "-c",
        "20",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(r["ok"], 500, "{r}");
    // Every call kind against grpc-go's echo service, found by reflection.
    let (_, r, err) = grpcdoc_load(&[
        &addr,
        "--call",
        "grpc.examples.echo.Echo/ServerStreamingEcho",
        "-d",
        r#"{"message":"s"}"#,
        "-n",
        "10",
    ]);
    assert_eq!(
        (r["ok"].as_u64(), r["responses"].as_u64()),
        (Some(10), Some(50)),
        "{r} {err}"
    );
    let (_, r, err) = grpcdoc_load(&[
        &addr,
        "--call",
        "grpc.examples.echo.Echo/BidirectionalStreamingEcho",
        "--stream-messages",
        "3",
        "-n",
        "10",
    ]);
    assert_eq!(
        (r["ok"].as_u64(), r["responses"].as_u64()),
        (Some(10), Some(30)),
        "{r} {err}"
    );
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn load_c_core_by_proto_alone() {
    let Some(bin) = peer("pygrpc-server") else {
        return;
    };
    let server = PeerServer::start(bin, "--addr", &[]);
    let proto = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/proto/helloworld/helloworld.proto"
    );
    let (code, r, err) = grpcdoc_load(&[
        &server.addr.to_string(),
        "--proto",
        proto,
        "--call",
        "helloworld.Greeter/SayHello",
        "-d",
        r#"{"name":"x"}"#,
        "-n",
        "200",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(r["ok"], 200, "{r}");
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn load_classifies_grpc_go_age_drains() {
    let Some(bin) = peer("gogrpc-server") else {
        return;
    };
    let server = PeerServer::start(
        bin,
        "-addr",
        &[
            "-connlog=false",
            "-max-conn-age",
            "1s",
            "-max-conn-age-grace",
            "500ms",
        ],
    );
    let (_, r, err) = grpcdoc_load(&[
        &server.addr.to_string(),
        "--call",
        "helloworld.Greeter/SayHello",
        "-H",
        "x-delay-ms: 1500",
        "-c",
        "10",
        "-z",
        "3500ms",
    ]);
    assert!(r["errors"].as_u64().unwrap_or(0) > 0, "{r} {err}");
    // grpc-go 1.33 names no reason in its GOAWAY: the drain is still seen.
    let causes = r["causes"].as_array().unwrap();
    assert!(
        causes.iter().any(|c| c["cause"] == "draining"),
        "{causes:?}"
    );
    let goaways: u64 = r["connections_table"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["goaways"]["NO_ERROR"].as_u64())
        .sum();
    assert!(goaways >= 2, "{}", r["connections_table"]);
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn proxy_dropping_one_ping_ack_makes_grpc_go_cut_the_connection() {
    let Some(bin) = peer("gogrpc-server") else {
        return;
    };
    let server = PeerServer::start(
        bin,
        "-addr",
        &["-connlog=false", "-ka-time", "1s", "-ka-timeout", "1s"],
    );
    for (count, cut) in [("1", true), ("0", false)] {
        let fault: grpcdoc::proxy::FaultSpec =
            format!("drop-ping:direction=upstream,acks=true,count={count}")
                .parse()
                .unwrap();
        let (sink, _rx) = grpcdoc::event::EventSink::channel(1024);
        let proxy = grpcdoc::proxy::RunningProxy::start(
            "127.0.0.1:0".parse().unwrap(),
            server.addr,
            vec![fault],
            sink,
        )
        .await
        .unwrap();
        let target = proxy.addr.to_string();
        let events = tokio::task::spawn_blocking(move || {
            grpcdoc_watch(&[
                target,
                "--probe".into(),
                "none".into(),
                "--for".into(),
                "5s".into(),
            ])
        })
        .await
        .unwrap();
        // grpc-go's own server keepalive closes the connection: a reset or
        // EOF the client did not ask for, and no GOAWAY before it.
        // (Closes at the end of --for are watch's own.)
        let closed = events
            .iter()
            .find(|e| e["kind"] == "closed" && e["t_ms"].as_f64().unwrap_or(0.0) < 4500.0);
        let states: Vec<String> = events
            .iter()
            .filter(|e| e["kind"] == "state" && e["channel"] == false)
            .map(|e| {
                format!(
                    "{}->{}",
                    e["from"].as_str().unwrap(),
                    e["to"].as_str().unwrap()
                )
            })
            .collect();
        if cut {
            let closed =
                closed.unwrap_or_else(|| panic!("grpc-go did not cut the connection: {states:?}"));
            let t = closed["t_ms"].as_f64().unwrap();
            assert!((1500.0..4500.0).contains(&t), "cut at {t} ms");
            assert!(states.contains(&"READY->IDLE".to_string()), "{states:?}");
        } else {
            assert!(closed.is_none(), "count=0 drops nothing: {closed:?}");
        }
        proxy.shutdown().await;
    }
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn scenario_restarts_a_grpc_go_server_given_by_command() {
    let Some(bin) = peer("gogrpc-server") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("go-restart.yaml");
    std::fs::write(
        &path,
        format!(
            r#"name: go-restart
about: the grpc-go peer, killed and restarted under load
duration: 6s
server:
  command: ["{}", "-addr", "127.0.0.1:{{port}}", "-connlog=false"]
clients:
  - name: naive
    pool: naive
    load: {{ call: helloworld.Greeter/SayHello, data: {{ name: "naive" }}, rps: 40, timeout: 1s }}
  - name: checked
    load: {{ call: helloworld.Greeter/SayHello, data: {{ name: "checked" }}, rps: 40, timeout: 1s }}
timeline:
  - at: 2s
    mark: restarted
  - at: 2s
    server_restart: {{ mode: hard, downtime: 500ms }}
  - at: 4s
    mark: recovered
expect:
  - rpcs: {{ client: naive, code: UNAVAILABLE, after: restarted, at_least: 10 }}
  - success_rate: {{ client: checked, after: recovered, at_least: 0.99 }}
"#,
            bin.display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_grpcdoc"))
        .args(["scenario", path.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let log = text(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(log.contains("step server_restart: hard"), "{log}");
    assert!(
        log.contains("calls failing: UNAVAILABLE"),
        "the failures are reported: {log}"
    );
    assert!(log.contains("go-restart: passed"), "{log}");
}

/// Real nginx in front of a grpc-go server that holds the call longer than
/// nginx's `grpc_read_timeout`: nginx answers HTTP 504 with an HTML body and
/// no grpc-status. Every call ends UNAVAILABLE with that status in its
/// message (the HTTP-to-gRPC mapping of the gRPC spec), the connection to
/// nginx survives, and nothing panics.
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn an_html_504_from_real_nginx_is_unavailable() {
    let (Some(go), Some(nginx)) = (peer("gogrpc-server"), peer("nginx-grpc")) else {
        return;
    };
    let upstream = PeerServer::start(go, "-addr", &["-connlog=false"]);
    let listen = free_addr();
    let proxy = Command::new(nginx)
        .args([
            listen.to_string(),
            upstream.addr.to_string(),
            "grpc_read_timeout 1s;".into(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("spawn nginx");
    let _proxy = PeerServer {
        child: proxy,
        addr: listen,
    };
    wait_listening(listen, "nginx");
    let proto = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/proto/helloworld/helloworld.proto"
    );
    let (code, r, err) = grpcdoc_load(&[
        &listen.to_string(),
        "--proto",
        proto,
        "--call",
        "helloworld.Greeter/SayHello",
        "-H",
        "x-delay-ms: 2500",
        "-n",
        "3",
        "-c",
        "3",
        "--timeout",
        "5s",
    ]);
    assert_eq!(code, Some(1), "no call succeeded: {err}\n{r}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(r["errors"], 3, "{r}");
    assert_eq!(r["codes"]["UNAVAILABLE"]["count"], 3, "{r}");
    let messages = r["codes"]["UNAVAILABLE"]["messages"]
        .as_object()
        .expect("messages")
        .keys()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(messages.len(), 1, "{r}");
    assert_eq!(r["causes"][0]["cause"], "http", "{r}");
    assert_eq!(r["causes"][0]["status"], 504, "{r}");
    // One connection per thread (the cores available).
    assert_eq!(r["connections"], r["threads"], "{r}");
    // What grpc-go (grpcurl, 1.44) prints for the same answer is where
    // grpcdoc's message starts; grpcdoc adds the page's first bytes.
    if let Some(grpcurl) = peer("grpcurl") {
        let out = Command::new(grpcurl)
            .args(["-plaintext", "-import-path"])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/proto/helloworld"))
            .args([
                "-proto",
                "helloworld.proto",
                "-H",
                "x-delay-ms: 2500",
                "-d",
                r#"{"name":"x"}"#,
                &listen.to_string(),
                "helloworld.Greeter/SayHello",
            ])
            .output()
            .expect("run grpcurl");
        let said = text(&out);
        let go = said
            .lines()
            .find_map(|l| l.trim().strip_prefix("Message: "))
            .unwrap_or_else(|| panic!("grpcurl's message: {said}"));
        assert!(said.contains("Code: Unavailable"), "{said}");
        assert!(
            messages[0].starts_with(go),
            "grpc-go said {go:?}, grpcdoc {:?}",
            messages[0]
        );
        assert!(
            messages[0].contains("body starts \"<html>"),
            "{}",
            messages[0]
        );
    }
    // Calls that nginx lets through still work on the same path.
    let (code, r, err) = grpcdoc_load(&[
        &listen.to_string(),
        "--proto",
        proto,
        "--call",
        "helloworld.Greeter/SayHello",
        "-n",
        "20",
    ]);
    assert_eq!(code, Some(0), "{err}\n{r}");
    assert_eq!(r["ok"], 20, "{r}");
}

/// A proxy that resets every new stream with RST_STREAM(CANCEL): grpc-go's
/// client says CANCELLED "stream terminated by RST_STREAM with error code:
/// CANCEL", and so does grpcdoc's load, which blames the reset (not a lost
/// connection: the one connection lives on).
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn rst_stream_cancel_is_cancelled_as_grpc_go_says() {
    let (Some(server_bin), Some(watch_bin)) = (peer("gogrpc-server"), peer("gogrpc-watch")) else {
        return;
    };
    let server = PeerServer::start(server_bin, "-addr", &["-connlog=false"]);
    let fault: grpcdoc::proxy::FaultSpec = "inject-rst-stream:code=CANCEL".parse().unwrap();
    let (sink, _rx) = grpcdoc::event::EventSink::channel(1024);
    let proxy = grpcdoc::proxy::RunningProxy::start(
        "127.0.0.1:0".parse().unwrap(),
        server.addr,
        vec![fault],
        sink,
    )
    .await
    .unwrap();
    let target = proxy.addr.to_string();
    let out = run_peer(
        watch_bin,
        [
            "-addr",
            &target,
            "-interval",
            "100ms",
            "-n",
            "3",
            "-duration",
            "3s",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    let log = text(&out);
    let go = "stream terminated by RST_STREAM with error code: CANCEL";
    assert!(
        log.contains(&format!("code=Canceled desc=\"{go}\"")),
        "{log}"
    );
    let (code, r, err) = tokio::task::spawn_blocking(move || {
        grpcdoc_load(&[
            &target,
            "--proto",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/proto/helloworld/helloworld.proto"
            ),
            "--call",
            "helloworld.Greeter/SayHello",
            "-n",
            "20",
            "-c",
            "2",
        ])
    })
    .await
    .unwrap();
    assert_eq!(code, Some(1), "{err}\n{r}");
    assert_eq!(r["codes"]["CANCELLED"]["count"], 20, "{r}");
    assert_eq!(r["codes"]["CANCELLED"]["messages"][go], 20, "{r}");
    assert_eq!(r["causes"][0]["cause"], "reset", "{r}");
    assert_eq!(r["causes"][0]["code"], "CANCEL", "{r}");
    // One connection per thread (the cores available).
    assert_eq!(r["connections"], r["threads"], "{r}");
    proxy.shutdown().await;
}

/// `inject-goaway` without a last-stream-id announces the last stream the
/// proxy gave the server and refuses the ones above it, so every call
/// grpcdoc counts as never processed really never reached the server: the
/// grpc-go server's own count of answered calls equals the calls load saw
/// succeed.
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn injected_goaways_refuse_what_the_server_never_saw() {
    let Some(bin) = peer("gogrpc-server") else {
        return;
    };
    let up = free_addr();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut server = Command::new(bin)
        .args(["-addr", &up.to_string(), "-connlog=false"])
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    wait_listening(up, "grpc-go");
    let listen = free_addr();
    let mut proxy = Command::new(env!("CARGO_BIN_EXE_grpcdoc"))
        .args([
            "proxy",
            "--listen",
            &listen.to_string(),
            "--upstream",
            &up.to_string(),
        ])
        .args(["--fault", "inject-goaway:every=300ms,direction=downstream"])
        .args(["--for", "30s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(listen, "the proxy");
    let proto = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/proto/helloworld/helloworld.proto"
    );
    let (_, r, err) = grpcdoc_load(&[
        &listen.to_string(),
        "--proto",
        proto,
        "--call",
        "helloworld.Greeter/SayHello",
        "--no-transparent-retry",
        "-c",
        "20",
        "--connections",
        "10",
        "-z",
        "3s",
    ]);
    let _ = proxy.kill();
    let _ = proxy.wait();
    // SIGTERM: grpc-go stops gracefully and prints its counters.
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
    let said = std::fs::read_to_string(log.path()).unwrap();
    let served: u64 = said
        .lines()
        .rev()
        .find_map(|l| l.split("rpcs ok=").nth(1))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("grpc-go's counters: {said}"));
    let ok = r["ok"].as_u64().unwrap_or_else(|| panic!("{err}\n{r}"));
    assert!(ok > 0, "{r}");
    assert_eq!(
        served, ok,
        "grpc-go answered {served} calls, grpcdoc saw {ok} succeed: {r}"
    );
}

/// The explanations of the drains (GOAWAYs received) in watch's events:
/// (first entry, every entry) per drain.
fn drain_notes(events: &[serde_json::Value]) -> Vec<(String, Vec<String>)> {
    let drained: std::collections::BTreeSet<u64> = events
        .iter()
        .filter(|e| e["kind"] == "goaway" && e["dir"] == "received")
        .filter_map(|e| e["conn"].as_u64())
        .collect();
    events
        .iter()
        .filter(|e| e["kind"] == "explanation")
        .filter(|e| e["conn"].as_u64().is_some_and(|c| drained.contains(&c)))
        .map(|e| {
            let id = e["id"].as_str().unwrap_or_default().to_string();
            let mut all = vec![id.clone()];
            all.extend(
                e["also"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.as_str().map(String::from)),
            );
            (id, all)
        })
        .collect()
}

/// grpc-go 1.33 drains by max age with no debug data: with probes every
/// 200 ms (a busy connection) no drain is called an idle timeout, and once
/// two drains show the same age, max age is named alone.
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn ten_max_age_drains_of_grpc_go_are_never_called_idle() {
    let Some(bin) = peer("gogrpc-server") else {
        return;
    };
    let server = PeerServer::start(
        bin,
        "-addr",
        &[
            "-max-conn-age",
            "1s",
            "-max-conn-age-grace",
            "300ms",
            "-connlog=false",
        ],
    );
    let events = grpcdoc_watch(&[
        server.addr.to_string(),
        "--probe-interval".into(),
        "200ms".into(),
        "--for".into(),
        "12s".into(),
    ]);
    let notes = drain_notes(&events);
    eprintln!("max-age drains of grpc-go 1.33, as watch named them: {notes:?}");
    assert!(notes.len() >= 8, "{notes:?}");
    for (_, all) in &notes {
        assert!(!all.iter().any(|e| e == "idle-timeout"), "{notes:?}");
    }
    let alone = notes
        .iter()
        .filter(|(id, all)| id == "max-age-drain" && all.len() == 1)
        .count();
    assert!(alone + 1 >= notes.len(), "{notes:?}");
}

/// grpc-go 1.33 drains idle connections with no debug data: a probe every
/// 2.5 s against a 1.5 s idle timeout; no drain is called max age first.
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn idle_drains_of_grpc_go_are_never_called_max_age() {
    let Some(bin) = peer("gogrpc-server") else {
        return;
    };
    let server = PeerServer::start(
        bin,
        "-addr",
        &["-max-conn-idle", "1500ms", "-connlog=false"],
    );
    let events = grpcdoc_watch(&[
        server.addr.to_string(),
        "--probe-interval".into(),
        "2500ms".into(),
        "--for".into(),
        "13s".into(),
    ]);
    let notes = drain_notes(&events);
    eprintln!("idle drains of grpc-go 1.33, as watch named them: {notes:?}");
    assert!(notes.len() >= 4, "{notes:?}");
    for (id, _) in &notes {
        assert_eq!(id, "idle-timeout", "{notes:?}");
    }
}
