//! Scenarios that run the user's own client programs: the shipped examples
//! with the real clients from `../shared/peers` (grpc-go 1.33, k6 with
//! grpc-go 1.73, C-core), where the calls read on the wire must match what
//! each program logged itself; and no program outlives grpcdoc, even when
//! grpcdoc is killed with SIGKILL.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::peer;

const BIN: &str = env!("CARGO_BIN_EXE_grpcdoc");

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios/examples")
        .join(name)
        .display()
        .to_string()
}

/// PATH with the peers' bin directory first, or None (skipped).
fn peers_path() -> Option<String> {
    for p in ["gogrpc-watch", "k6", "pygrpc-watch"] {
        peer(p)?;
    }
    let bin: PathBuf = peer("gogrpc-watch")?.parent()?.to_path_buf();
    Some(format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    ))
}

/// `final: ok=N errors=M` as each program prints it at the end.
fn final_ok(output: &str) -> Option<u64> {
    let at = output.rfind("final: ok=")?;
    output[at + 10..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The examples run one at a time: three real clients each, on 2 cores.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs an example scenario; per program: (its wire calls by code, its
/// output).
fn run_example(
    name: &str,
    path_env: &str,
) -> Vec<(String, serde_json::Map<String, serde_json::Value>, String)> {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(BIN)
        .args(["scenario", &example(name), "-o", "json"])
        .env("PATH", path_env)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{name}: {e}\n{}", String::from_utf8_lossy(&out.stderr)));
    let s = &report["scenarios"][0];
    let failed: Vec<String> = s["expectations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["passed"] == false)
        .map(|e| format!("{} (found {})", e["check"], e["value"]))
        .collect();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{name}: failed {failed:#?}; calls {:#}",
        s["calls"]
    );
    s["programs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let client = p["client"].as_str().unwrap().to_string();
            assert_eq!(p["ended"]["code"], 0, "{client} ended by itself: {p}");
            let calls = s["calls"][&client].as_object().cloned().unwrap_or_default();
            (client, calls, p["output"].as_str().unwrap().to_string())
        })
        .collect()
}

/// How each stack logs a failed call with UNAVAILABLE.
fn unavailable_lines(client: &str, output: &str) -> usize {
    let pat = match client {
        "go133" => "ERROR code=Unavailable",
        "go173" => "ERROR code=14 ",
        _ => "ERROR code=UNAVAILABLE",
    };
    output.lines().filter(|l| l.contains(pat)).count()
}

fn count(calls: &serde_json::Map<String, serde_json::Value>, code: &str) -> u64 {
    calls.get(code).and_then(|v| v.as_u64()).unwrap_or(0)
}

/// Through a restart every call that succeeded is on the wire, and the
/// failures on the wire are among those each program logged (the rest it
/// failed fast, without touching the wire).
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn real_clients_through_a_restart_match_their_own_logs() {
    let Some(path) = peers_path() else { return };
    for (client, calls, output) in run_example("restart-real-clients.yaml", &path) {
        let ok = final_ok(&output).unwrap_or_else(|| panic!("{client}: no final count:\n{output}"));
        eprintln!(
            "client programs | restart | {client} | wire {calls:?} | logged ok={ok} unavailable={}",
            unavailable_lines(&client, &output)
        );
        assert_eq!(count(&calls, "OK"), ok, "{client}: {calls:?}\n{output}");
        let wire = count(&calls, "UNAVAILABLE") as usize;
        let logged = unavailable_lines(&client, &output);
        assert!(
            wire <= logged && logged > wire,
            "{client}: {wire} on the wire, {logged} logged (most fail fast)"
        );
    }
}

/// Through max-age drains every failure is a call the grace cut, on the
/// wire: the counts on the wire and in each program's log are the same,
/// but for the call in flight when a program's own `-duration` ends. Its
/// deadline is that end (grpc-go derives each call's context from the
/// run's), so the server answers it DEADLINE_EXCEEDED on the wire, and the
/// program does not count it; when a drain cuts it at that same moment the
/// program may log it UNAVAILABLE while the server's DEADLINE_EXCEEDED
/// crossed the tap first, and a last call started in the run's final
/// milliseconds fails DEADLINE_EXCEEDED at once (seen in CI: 2 such calls,
/// one of them logged UNAVAILABLE).
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn real_clients_through_max_age_drains_match_their_own_logs() {
    let Some(path) = peers_path() else { return };
    for (client, calls, output) in run_example("max-age-real-clients.yaml", &path) {
        let ok = final_ok(&output).unwrap_or_else(|| panic!("{client}: no final count:\n{output}"));
        let logged = unavailable_lines(&client, &output);
        eprintln!(
            "client programs | max-age | {client} | wire {calls:?} | logged ok={ok} unavailable={logged}"
        );
        assert_eq!(count(&calls, "OK"), ok, "{client}: {calls:?}\n{output}");
        let wire = count(&calls, "UNAVAILABLE") as usize;
        let at_end = count(&calls, "DEADLINE_EXCEEDED") as usize;
        assert!(
            at_end <= 2,
            "{client}: calls cut by the end: {calls:?}\n{output}"
        );
        assert!(
            wire <= logged && logged <= wire + at_end.min(1),
            "{client}: {wire} UNAVAILABLE on the wire, {logged} logged: {calls:?}\n{output}"
        );
    }
}

/// grpcdoc killed with SIGKILL mid-scenario: the client program (here a
/// shell that starts a child of its own, then becomes another) is gone
/// within 2 s, its whole process group.
#[test]
fn no_client_program_outlives_a_killed_grpcdoc() {
    let dir = tempfile::tempdir().unwrap();
    // Sleeps of lengths no other process has: found by their command line.
    let n = 1000 + std::process::id() % 5000;
    let (child_sleep, exec_sleep) = (format!("sleep {n}.25"), format!("sleep {n}.75"));
    let path = dir.path().join("orphan.yaml");
    std::fs::write(
        &path,
        format!(
            r#"name: orphan
duration: 30s
client:
  name: app
  command: [sh, -c, "{child_sleep} & exec {exec_sleep}", "{{target}}"]
"#
        ),
    )
    .unwrap();
    let find = |what: &str| {
        let out = Command::new("pgrep").args(["-f", what]).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let mut grpcdoc = Command::new(BIN)
        .args(["scenario", path.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while (find(&child_sleep).is_empty() || find(&exec_sleep).is_empty())
        && started.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let pids: Vec<String> = [find(&child_sleep), find(&exec_sleep)].concat();
    assert_eq!(pids.len(), 2, "the program and its child run");
    grpcdoc.kill().unwrap();
    let _ = grpcdoc.wait();
    let killed = Instant::now();
    let alive = |p: &String| {
        // A zombie waiting for init to reap it is gone.
        std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| !s.contains(") Z "))
    };
    while killed.elapsed() < Duration::from_secs(2) && pids.iter().any(alive) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<&String> = pids.iter().filter(|p| alive(p)).collect();
    assert!(left.is_empty(), "still running 2 s after SIGKILL: {left:?}");
}

/// grpcurl (grpc-go 1.44) calling through `grpcdoc proxy`: each call is one
/// line with its method and status (its deadline too).
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn grpcurl_through_the_proxy_is_one_line_per_call() {
    let Some(grpcurl) = peer("grpcurl") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(common::start(grpcdoc::server::ServerConfig::default()));
    let listen = common::free_addr();
    let proxy = Command::new(BIN)
        .args(["proxy", "--listen", &listen.to_string()])
        .args([
            "--upstream",
            &server.addr.to_string(),
            "--calls",
            "all",
            "--for",
            "5s",
        ])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    common::wait_listening(listen, "grpcdoc proxy");
    let proto = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let call = |extra: &[&str]| {
        Command::new(&grpcurl)
            .args(["-plaintext", "-import-path", proto.to_str().unwrap()])
            .args(["-proto", "helloworld/helloworld.proto"])
            .args(extra)
            .args([
                "-d",
                r#"{"name":"x"}"#,
                &listen.to_string(),
                "helloworld.Greeter/SayHello",
            ])
            .output()
            .unwrap()
    };
    assert!(call(&[]).status.success());
    let _ = call(&["-max-time", "1", "-H", "x-delay-ms: 2000"]);
    let out = proxy.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let calls: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("helloworld.Greeter/SayHello"))
        .collect();
    eprintln!("{}", calls.join("\n"));
    assert_eq!(calls.len(), 2, "{text}");
    assert!(
        calls[0].contains("helloworld.Greeter/SayHello OK in "),
        "{text}"
    );
    assert!(
        calls[1].contains("helloworld.Greeter/SayHello DEADLINE_EXCEEDED in "),
        "{text}"
    );
    drop(server);
}
