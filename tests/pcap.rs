//! `grpcdoc pcap` on the committed captures (tests/data/pcap/, made by
//! make.sh with tcpdump on loopback: one session of watch against serve
//! with a 1s max age, in every link type), on bad input, and on the files
//! `watch --pcap` and `proxy --pcap` write.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_grpcdoc");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/pcap")
        .join(name)
}

fn pcap(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("pcap")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run grpcdoc pcap")
}

fn json(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn kinds<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|v| v["kind"] == kind).collect()
}

fn events(file: &str) -> Vec<Value> {
    json(&pcap(&[
        fixture(file).to_str().unwrap(),
        "-o",
        "json",
        "--calls",
        "all",
    ]))
}

/// What every capture of the fixture session shows: connections drained
/// by GOAWAY "max_age", explained as watch explains them, calls that
/// ended OK.
fn the_session(lines: &[Value], conns: usize) {
    let summary = lines.last().unwrap();
    assert_eq!(summary["kind"], "summary", "{summary}");
    assert_eq!(summary["connections_h2"], conns as u64, "{summary}");
    let goaways = kinds(lines, "goaway");
    assert!(
        goaways.iter().any(|g| g["dir"] == "received"
            && g["debug"] == "max_age"
            && g["last_stream_id"] == 2147483647u64),
        "{goaways:?}"
    );
    assert!(kinds(lines, "explanation")
        .iter()
        .any(|e| e["id"] == "max-age-drain"));
    let ok = kinds(lines, "rpc")
        .iter()
        .filter(|r| r["code"] == "OK" && r["method"] == "grpc.health.v1.Health/Check")
        .count();
    assert!(ok >= 3, "{ok} OK calls");
    assert!(kinds(lines, "closed")
        .iter()
        .any(|c| c["reason"] == "goaway"));
}

#[test]
fn every_link_type_gives_the_same_events() {
    let base = events("ethernet.pcap");
    the_session(&base, 3);
    let strip = |v: &[Value]| -> Vec<Value> {
        v.iter()
            .filter(|l| l["kind"] != "summary")
            .cloned()
            .collect()
    };
    for f in ["rawip.pcap", "null.pcap", "vlan.pcap", "ethernet.pcapng"] {
        let got = events(f);
        assert_eq!(strip(&got), strip(&base), "{f}");
    }
    for (f, conns) in [("sll.pcap", 2), ("sll2.pcap", 3), ("ipv6.pcap", 3)] {
        let got = events(f);
        let summary = got.last().unwrap();
        the_session(
            &got,
            summary["connections_h2"].as_u64().unwrap_or(0) as usize,
        );
        assert!(
            summary["connections_h2"].as_u64().unwrap() >= conns as u64 - 1,
            "{f}"
        );
    }
    let v6 = events("ipv6.pcap");
    assert!(v6
        .iter()
        .any(|l| l["addr"].as_str().is_some_and(|a| a.starts_with("[::1]:"))));
}

#[test]
fn a_capture_joined_midway_still_yields_its_frames() {
    let lines = events("midway.pcap");
    let first: Vec<&Value> = lines.iter().filter(|l| l["conn"] == 1).collect();
    assert!(first
        .iter()
        .any(|l| l["kind"] == "capture" && l["what"] == "midway"));
    assert!(!first.iter().any(|l| l["kind"] == "connect"), "{first:?}");
    assert!(first
        .iter()
        .any(|l| l["kind"] == "goaway" && l["debug"] == "max_age"));
    assert!(first.iter().any(|l| l["kind"] == "closed"));
    // The next connection starts in the capture.
    assert!(lines
        .iter()
        .any(|l| l["conn"] == 2 && l["kind"] == "connect" && l["result"] == "ok"));
}

#[test]
fn snap_length_cuts_are_reported_and_small_frames_still_read() {
    let lines = events("snaplen.pcap");
    let cut = kinds(&lines, "capture")
        .into_iter()
        .filter(|c| c["what"] == "truncated")
        .count();
    assert!(cut > 0);
    let summary = lines.last().unwrap();
    assert!(
        summary["truncated_bytes"].as_u64().unwrap() > 0,
        "{summary}"
    );
    assert!(!kinds(&lines, "goaway").is_empty());
}

#[test]
fn bad_input_is_a_clear_error_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "GET / HTTP/1.1\r\n").unwrap();
    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, "").unwrap();
    for (file, says) in [
        (dir.path().join("missing.pcap"), "cannot open the capture"),
        (text, "not a pcap or pcapng file"),
        (empty, "empty"),
    ] {
        let out = pcap(&[file.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{err}");
        assert!(err.lines().count() <= 3, "{err}");
    }
    let out = pcap(&[
        fixture("ethernet.pcap").to_str().unwrap(),
        "--report",
        "x.txt",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn stdin_and_a_file_cut_mid_packet_are_read() {
    let bytes = std::fs::read(fixture("ethernet.pcap")).unwrap();
    let mut child = Command::new(BIN)
        .args(["pcap", "-", "-o", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Cut 10 bytes into a record: the packets before it are read.
    let cut = bytes.len() - 30;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&bytes[..cut])
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let lines = json(&out);
    assert!(!kinds(&lines, "goaway").is_empty());
    let summary = lines.last().unwrap();
    assert!(summary["packets"].as_u64().unwrap() >= 70, "{summary}");
}

#[test]
fn human_output_is_a_timeline_per_connection_and_a_summary() {
    let out = pcap(&[fixture("ethernet.pcap").to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for c in 1..=3 {
        assert!(
            text.contains(&format!("conn {c}: client 127.0.0.1:")),
            "{text}"
        );
    }
    assert!(text.contains("[max-age-drain]"), "{text}");
    assert!(text.contains("3 HTTP/2, 0 TLS"), "{text}");
    // Tables fit 100 columns.
    for l in text
        .lines()
        .filter(|l| l.starts_with('│') || l.starts_with('┌'))
    {
        assert!(l.chars().count() <= 100, "{l}");
    }
}

#[test]
fn the_html_report_draws_a_lane_per_connection() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("x.html");
    let out = pcap(&[
        fixture("ethernet.pcap").to_str().unwrap(),
        "--report",
        page.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(html.matches("<g class=\"lane\"").count(), 3, "lanes");
    assert!(html.contains("class=\"mark goaway\""));
    assert!(html.contains("max-age-drain"));
}

/// watch's live explanations and `grpcdoc pcap` on the file `watch --pcap`
/// wrote name the same catalogue entries, and the capture holds the
/// GOAWAYs watch saw.
#[test]
fn watch_pcap_writes_what_watch_saw() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("watch.pcap");
    let (mut server, addr) = common::spawn_listening(
        BIN,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--max-connection-idle",
            "700ms",
            "--idle-drain",
            "graceful",
        ],
    );
    let live = Command::new(BIN)
        .args([
            "watch", &addr, "--for", "2s", "--probe", "none", "-o", "json",
        ])
        .arg("--pcap")
        .arg(&file)
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let live = json(&live);
    let read = json(&pcap(&[file.to_str().unwrap(), "-o", "json"]));
    let ids = |v: &[Value]| -> std::collections::BTreeSet<String> {
        kinds(v, "explanation")
            .iter()
            .filter_map(|e| e["id"].as_str().map(str::to_string))
            .collect()
    };
    assert!(ids(&live).contains("idle-timeout"), "{live:?}");
    assert_eq!(ids(&read), ids(&live));
    let goaways = |v: &[Value]| -> Vec<(Value, Value)> {
        kinds(v, "goaway")
            .iter()
            .map(|g| (g["last_stream_id"].clone(), g["debug"].clone()))
            .collect()
    };
    assert_eq!(goaways(&read), goaways(&live));
}

#[test]
fn proxy_pcap_writes_the_calls_that_passed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("proxy.pcap");
    let (mut server, addr) = common::spawn_listening(BIN, &["serve", "--listen", "127.0.0.1:0"]);
    let (mut proxy, front) = common::spawn_listening(
        BIN,
        &[
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &addr,
            "--for",
            "10s",
            "--pcap",
            file.to_str().unwrap(),
        ],
    );
    let live = Command::new(BIN)
        .args([
            "watch",
            &front,
            "--for",
            "1500ms",
            "--probe-interval",
            "300ms",
        ])
        .output()
        .unwrap();
    assert!(live.status.success());
    std::thread::sleep(std::time::Duration::from_millis(300));
    for c in [&mut proxy, &mut server] {
        let _ = c.kill();
        let _ = c.wait();
    }
    let read = json(&pcap(&[
        file.to_str().unwrap(),
        "-o",
        "json",
        "--calls",
        "all",
    ]));
    let ok = kinds(&read, "rpc")
        .iter()
        .filter(|r| r["code"] == "OK" && r["method"] == "grpc.health.v1.Health/Check")
        .count();
    assert!(ok >= 3, "{read:?}");
}

#[test]
fn a_tls_connection_shows_what_tcp_shows() {
    let lines = events("tls.pcap");
    let c: Vec<&Value> = lines.iter().filter(|l| l["conn"] == 1).collect();
    assert!(c
        .iter()
        .any(|l| l["kind"] == "capture" && l["what"] == "tls"));
    assert!(c
        .iter()
        .any(|l| l["kind"] == "connect" && l["result"] == "ok"));
    assert!(!c
        .iter()
        .any(|l| l["kind"] == "settings" || l["kind"] == "rpc"));
    let closed = c.iter().find(|l| l["kind"] == "closed").expect("its close");
    assert!(
        closed["detail"].as_str().unwrap().contains("FIN"),
        "{closed}"
    );
    assert_eq!(lines.last().unwrap()["connections_tls"], 1);
    // Whether a GOAWAY came inside cannot be seen: no verdict on the close.
    assert!(
        !lines.iter().any(|l| l["kind"] == "explanation"),
        "{lines:?}"
    );
}

/// grpc-go's requests index HPACK's dynamic table: joined midway, they
/// are said to be unreadable, and the frames are still read.
#[test]
fn headers_that_need_the_table_from_before_the_capture_are_told_unreadable() {
    let lines = events("midway-go.pcap");
    assert!(lines
        .iter()
        .any(|l| l["kind"] == "capture" && l["what"] == "headers_unknown"));
    assert!(lines.iter().filter(|l| l["kind"] == "ping").count() >= 4);
    assert!(lines.last().unwrap()["calls_unreadable"].as_u64().unwrap() > 0);
}

/// `tcpdump -w - | grpcdoc pcap -` stopped by Ctrl-C: grpcdoc keeps
/// reading until tcpdump closes the pipe, prints everything, exits 130.
#[test]
fn ctrl_c_on_stdin_reads_to_the_end_and_exits_130() {
    let bytes = std::fs::read(fixture("ethernet.pcap")).unwrap();
    let mut child = Command::new(BIN)
        .args(["pcap", "-", "-o", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&bytes[..bytes.len() / 2]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: a signal to the child this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    stdin.write_all(&bytes[bytes.len() / 2..]).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let text = String::from_utf8_lossy(&out.stdout);
    let summary: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(summary["packets"], 79, "{summary}");
}
