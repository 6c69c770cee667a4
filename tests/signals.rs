//! Signals and closed pipes as users meet them: SIGTERM stops a scenario
//! and prints its report, like Ctrl-C; `grpcdoc watch ... | head` ends
//! quietly when head exits.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_grpcdoc");

fn wait(child: &mut std::process::Child, within: Duration) -> i32 {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "did not exit within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_stops_a_scenario_and_prints_the_report() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/restart.yaml");
    let mut child = Command::new(BIN)
        .args(["scenario", file, "-o", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(wait(&mut child, Duration::from_secs(5)), 130);
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).expect("the report");
    assert_eq!(v["scenarios"][0]["interrupted"], true);
}

#[test]
fn watch_piped_into_head_ends_quietly() {
    // A server that ends the connection every 300 ms gives watch lines to
    // write after head has gone.
    let mut serve = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--for", "20s"])
        .args([
            "--max-connection-age",
            "300ms",
            "--max-connection-age-grace",
            "100ms",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(serve.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    let mut watch = Command::new(BIN)
        .args(["watch", &addr, "--reconnect", "eager", "--for", "20s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(watch.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    drop(stdout);
    let code = wait(&mut watch, Duration::from_secs(10));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut watch.stderr.take().unwrap(), &mut stderr).unwrap();
    let _ = serve.kill();
    let _ = serve.wait();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{stderr}"
    );
}
