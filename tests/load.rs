//! `grpcdoc load` as a user runs it (the built binary) against the built-in
//! server on loopback: every call kind, every descriptor source, the report
//! (JSON and human), thresholds, rate correction, GOAWAY classification and
//! retries, Ctrl-C, and bad input.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use grpcdoc::server::ServerConfig;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_grpcdoc");

async fn load(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .arg("load")
            .args(&args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .expect("run grpcdoc load")
    })
    .await
    .unwrap()
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not a JSON report ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn unary_report_has_every_part() {
    let t = common::start(ServerConfig::default()).await;
    let addr = t.addr.to_string();
    let out = load(args(&[
        &addr,
        "--call",
        "helloworld.Greeter/SayHello",
        "-d",
        r#"{"name":"x"}"#,
        "-n",
        "300",
        "-c",
        "10",
        "-o",
        "json",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(r["kind"], "load_report");
    // The report's fields are API: a change here is a change for users.
    let mut keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "call_kind",
            "calls_without_connection",
            "causes",
            "codes",
            "concurrency",
            "connections",
            "connections_table",
            "connects_failed",
            "cpu",
            "dropped_events",
            "duration_ms",
            "error_rate",
            "errors",
            "fail_on",
            "format",
            "histogram",
            "interrupted",
            "kind",
            "latency_ms",
            "method",
            "ok",
            "rate",
            "responses",
            "retries",
            "rps",
            "series",
            "slot_wait_ms",
            "slot_waits",
            "started_unix_ms",
            "target",
            "threads",
            "total",
            "transparent_retries",
        ]
    );
    assert_eq!(r["total"], 300);
    assert_eq!(r["ok"], 300);
    assert_eq!(r["codes"]["OK"]["count"], 300);
    assert_eq!(r["call_kind"], "unary");
    let l = &r["latency_ms"];
    for k in ["min", "mean", "p50", "p90", "p99", "p99_9", "max"] {
        assert!(l[k].as_f64().unwrap() > 0.0, "{k}");
    }
    assert!(l["min"].as_f64() <= l["p50"].as_f64() && l["p50"].as_f64() <= l["max"].as_f64());
    // The serialized HDR histogram holds every call.
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(r["histogram"].as_str().unwrap())
        .unwrap();
    let h: hdrhistogram::Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut raw.as_slice())
        .unwrap();
    assert_eq!(h.len(), 300);
    // A connection per thread (the cores available), every call on one.
    let conns = r["connections_table"].as_array().unwrap();
    assert_eq!(Some(conns.len() as u64), r["threads"].as_u64());
    assert_eq!(r["connections"], r["threads"]);
    let calls: u64 = conns.iter().map(|c| c["rpcs"].as_u64().unwrap()).sum();
    assert_eq!(calls, 300);
    assert!(r["cpu"]["per_rpc_us"].as_f64().unwrap() > 0.0);
    assert!(r["series"].is_array());
}

#[tokio::test(flavor = "multi_thread")]
async fn every_call_kind_by_reflection() {
    let t = common::start(ServerConfig::default()).await;
    let addr = t.addr.to_string();
    let ss = load(args(&[
        &addr,
        "--call",
        "grpcdoc.echo.v1.Echo/ServerStream",
        "-d",
        r#"{"message":"s","stream_count":3,"stream_interval":"0.001s"}"#,
        "-n",
        "20",
        "-o",
        "json",
    ]))
    .await;
    let r = report(&ss);
    assert_eq!(
        (r["ok"].as_u64(), r["responses"].as_u64()),
        (Some(20), Some(60)),
        "{r}"
    );
    assert_eq!(r["call_kind"], "server streaming");

    let cs = load(args(&[
        &addr,
        "--call",
        "grpcdoc.echo.v1.Echo.ClientStream",
        "-d",
        r#"[{"message":"a"},{"message":"b"}]"#,
        "--stream-messages",
        "4",
        "-n",
        "20",
        "-o",
        "json",
    ]))
    .await;
    let r = report(&cs);
    assert_eq!(
        (r["ok"].as_u64(), r["responses"].as_u64()),
        (Some(20), Some(20)),
        "{r}"
    );

    let bidi = load(args(&[
        &addr,
        "--call",
        "grpcdoc.echo.v1.Echo/BidiStream",
        "-d",
        r#"{"message":"b"}"#,
        "--stream-messages",
        "5",
        "--stream-interval",
        "1ms",
        "-n",
        "10",
        "-o",
        "json",
    ]))
    .await;
    let r = report(&bidi);
    assert_eq!(
        (r["ok"].as_u64(), r["responses"].as_u64()),
        (Some(10), Some(50)),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn descriptors_from_proto_files_and_protosets() {
    let t = common::start(ServerConfig::default()).await;
    let addr = t.addr.to_string();
    let proto = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/proto/grpcdoc/echo/v1/echo.proto"
    );
    let out = load(args(&[
        &addr,
        "--proto",
        proto,
        "-I",
        concat!(env!("CARGO_MANIFEST_DIR"), "/proto"),
        "--call",
        "grpcdoc.echo.v1.Echo/Unary",
        "-d",
        r#"{"message":"p","delay":"0.01s"}"#,
        "-n",
        "20",
        "-o",
        "json",
    ]))
    .await;
    assert_eq!(report(&out)["ok"], 20, "{}", stderr(&out));

    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("all.protoset");
    std::fs::write(&set, grpcdoc::pb::FILE_DESCRIPTOR_SET).unwrap();
    let out = load(args(&[
        &addr,
        "--protoset",
        set.to_str().unwrap(),
        "--call",
        "helloworld.Greeter/SayHello",
        "-n",
        "20",
        "-o",
        "json",
    ]))
    .await;
    assert_eq!(report(&out)["ok"], 20, "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_exit_2_before_any_call() {
    let t = common::start(ServerConfig::default()).await;
    let addr = t.addr.to_string();
    let dir = tempfile::tempdir().unwrap();
    let bad_proto = dir.path().join("bad.proto");
    std::fs::write(
        &bad_proto,
        "syntax = \"proto3\";\nmessage X { string a = ; }\n",
    )
    .unwrap();
    for (a, says) in [
        (
            vec!["--call", "helloworld.Greeter/Nope"],
            "no method helloworld.Greeter/Nope",
        ),
        (
            vec![
                "--call",
                "helloworld.Greeter/SayHello",
                "-d",
                "{\n  \"name\": 5\n}",
            ],
            "-d:2:",
        ),
        (
            vec![
                "--call",
                "helloworld.Greeter/SayHello",
                "-d",
                "{\"nmae\": \"x\"}",
            ],
            "nmae",
        ),
        (
            vec![
                "--call",
                "helloworld.Greeter/SayHello",
                "-d",
                "@/nonexistent.json",
            ],
            "cannot read /nonexistent.json",
        ),
        (
            vec![
                "--call",
                "helloworld.Greeter/SayHello",
                "--proto",
                bad_proto.to_str().unwrap(),
            ],
            "bad.proto",
        ),
        (
            vec![
                "--call",
                "helloworld.Greeter/SayHello",
                "--service-config",
                "{\"methodConfig\": 5}",
            ],
            "--service-config:1:",
        ),
        (vec!["--call", "x"], "not a method"),
        (
            vec!["--call", "helloworld.Greeter/SayHello", "-H", "nocolon"],
            "key: value",
        ),
        (
            vec!["--call", "helloworld.Greeter/SayHello", "--fail-on", "p99"],
            "no comparison",
        ),
        (
            vec!["--call", "helloworld.Greeter/SayHello", "--rps", "0"],
            "above 0",
        ),
        (
            vec!["--call", "helloworld.Greeter/SayHello", "-c", "0"],
            "-c",
        ),
    ] {
        let mut full = vec![addr.clone()];
        full.extend(a.iter().map(|s| s.to_string()));
        let out = load(full).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{a:?}: {err}");
        assert!(err.contains(says), "{a:?}: {err}");
        assert!(out.stdout.is_empty(), "{a:?}");
    }
    // Without --call: the methods found, by reflection.
    let out = load(vec![addr.clone()]).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("--call is required"), "{err}");
    assert!(err.contains("helloworld.Greeter/SayHello (unary)"), "{err}");
    assert!(
        err.contains("grpcdoc.echo.v1.Echo/BidiStream (bidi streaming)"),
        "{err}"
    );
    // Nothing was called: only reflection streams reached the server.
    let calls: u64 = t
        .log
        .all()
        .iter()
        .filter_map(|e| match e.kind {
            grpcdoc::event::EventKind::Closed { streams, .. } => Some(streams),
            _ => None,
        })
        .sum();
    assert!(calls < 40, "only reflection calls: {calls}");
}

#[tokio::test(flavor = "multi_thread")]
async fn fail_on_thresholds_and_no_success_exit_1() {
    let t = common::start(ServerConfig::default()).await;
    let addr = t.addr.to_string();
    let ok = load(args(&[
        &addr,
        "--call",
        "helloworld.Greeter/SayHello",
        "-n",
        "50",
        "--fail-on",
        "error_rate>0.1%",
        "--fail-on",
        "p99>10s",
    ]))
    .await;
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(
        text.contains("--fail-on error_rate>0.1%: value 0.000 -> ok"),
        "{text}"
    );

    let slow = load(args(&[
        &addr,
        "--call",
        "helloworld.Greeter/SayHello",
        "-H",
        "x-delay-ms: 20",
        "-n",
        "20",
        "--fail-on",
        "p50>5ms",
        "-o",
        "json",
    ]))
    .await;
    assert_eq!(slow.status.code(), Some(1));
    let r = report(&slow);
    assert_eq!(r["fail_on"][0]["breached"], true);
    assert!(r["fail_on"][0]["value"].as_f64().unwrap() >= 20.0);

    let failing = load(args(&[
        &addr,
        "--call",
        "grpcdoc.echo.v1.Echo/Unary",
        "-d",
        r#"{"status_code":14,"status_message":"down"}"#,
        "-n",
        "20",
        "--fail-on",
        "code:UNAVAILABLE>0",
        "-o",
        "json",
    ]))
    .await;
    assert_eq!(failing.status.code(), Some(1));
    let r = report(&failing);
    assert_eq!(r["codes"]["UNAVAILABLE"]["messages"]["down"], 20);
    assert_eq!(r["causes"][0]["cause"], "status");
}

#[tokio::test(flavor = "multi_thread")]
async fn constant_rate_corrects_for_coordinated_omission() {
    let t = common::start(ServerConfig {
        delay: Duration::from_millis(100),
        ..Default::default()
    })
    .await;
    let addr = t.addr.to_string();
    let out = load(args(&[
        &addr,
        "--call",
        "helloworld.Greeter/SayHello",
        "--rps",
        "200",
        "-c",
        "1",
        "-z",
        "2s",
        "-o",
        "json",
    ]))
    .await;
    let r = report(&out);
    // 100 ms per call, 5 ms apart: each call waits for all before it.
    assert!(
        r["latency_ms"]["p50"].as_f64().unwrap() > 500.0,
        "{}",
        r["latency_ms"]
    );
    assert!(
        r["latency_ms"]["max"].as_f64().unwrap() > 1500.0,
        "{}",
        r["latency_ms"]
    );
    assert_eq!(r["rate"]["held"], false);
    assert!(r["rate"]["not_started"].as_u64().unwrap() > 300);
    assert!(
        r["duration_ms"].as_f64().unwrap() < 3500.0,
        "stops at its duration"
    );
    let human = load(args(&[
        &addr,
        "--call",
        "helloworld.Greeter/SayHello",
        "--rps",
        "100",
        "-c",
        "1",
        "-z",
        "1s",
    ]))
    .await;
    assert!(String::from_utf8_lossy(&human.stdout)
        .contains("warning: the rate of 100.0/s was not held"));
    // A rate that can be held is said to be.
    let fine = load(args(&[
        &addr,
        "--call",
        "helloworld.Greeter/SayHello",
        "--threads",
        "1",
        "--rps",
        "20",
        "-c",
        "10",
        "-z",
        "1s",
        "-o",
        "json",
    ]))
    .await;
    assert_eq!(
        report(&fine)["rate"]["held"],
        true,
        "{}",
        report(&fine)["rate"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn age_drains_are_counted_and_classified_and_retries_help() {
    let t = common::start(ServerConfig {
        max_connection_age: Some(Duration::from_secs(1)),
        max_connection_age_grace: Some(Duration::from_millis(500)),
        ..Default::default()
    })
    .await;
    let addr = t.addr.to_string();
    // Calls held 1.5 s outlive a connection's age + grace: cut.
    let out = load(args(&[
        &addr,
        "--call",
        "helloworld.Greeter/SayHello",
        "-H",
        "x-delay-ms: 1500",
        // Calls started across each connection's life (not all at its
        // start): nearly every one outlives age + grace, whatever the jitter.
        "--rps",
        "10",
        "-c",
        "40",
        "-z",
        "3500ms",
        "-o",
        "json",
    ]))
    .await;
    let r = report(&out);
    assert!(r["errors"].as_u64().unwrap() > 0, "{r}");
    let draining = r["causes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cause"] == "draining")
        .expect("draining cause");
    assert_eq!(draining["debug"], "max_age");
    // The facts of this run, the catalogue entry and its fix beside them.
    assert!(draining["diagnosis"]
        .as_str()
        .unwrap()
        .contains("draining (GOAWAY \"max_age\")"));
    assert_eq!(draining["id"], "drain-cut");
    assert!(draining["fix"].as_str().unwrap().contains("grace"));
    let goaways: u64 = r["connections_table"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["goaways"]["NO_ERROR \"max_age\""].as_u64())
        .sum();
    assert!(goaways >= 2, "{}", r["connections_table"]);

    // Calls held 1 s, started every 50 ms: those started late in a
    // connection's life are cut; a retry on UNAVAILABLE moves them to a new
    // connection, and the failures go.
    // One connection, so each retry meets the drain it follows.
    let base = [
        "--call",
        "helloworld.Greeter/SayHello",
        "--threads",
        "1",
        "-H",
        "x-delay-ms: 1000",
        "--rps",
        "20",
        "-c",
        "40",
        "-z",
        "4s",
        "-o",
        "json",
    ];
    let mut plain = vec![addr.clone()];
    plain.extend(base.iter().map(|s| s.to_string()));
    let without = report(&load(plain.clone()).await);
    let mut retried = plain;
    retried.extend(args(&[
        "--service-config",
        r#"{"methodConfig":[{"name":[{"service":"helloworld.Greeter"}],"retryPolicy":{"maxAttempts":5,"initialBackoff":"0.05s","maxBackoff":"0.5s","backoffMultiplier":2,"retryableStatusCodes":["UNAVAILABLE"]}}]}"#,
    ]));
    let with = report(&load(retried).await);
    let rate = |r: &Value| r["error_rate"].as_f64().unwrap();
    assert!(rate(&without) > 0.1, "{without}");
    assert!(
        rate(&with) < rate(&without) / 2.0,
        "retries: {} -> {}",
        rate(&without),
        rate(&with)
    );
    assert!(with["retries"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_prints_the_partial_report_and_exits_130() {
    let t = common::start(ServerConfig::default()).await;
    let addr = t.addr.to_string();
    let out = tokio::task::spawn_blocking(move || {
        let child = Command::new(BIN)
            .args([
                "load",
                &addr,
                "--call",
                "helloworld.Greeter/SayHello",
                "-c",
                "5",
                "-z",
                "60s",
                "-o",
                "json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(r["interrupted"], true);
    assert!(r["ok"].as_u64().unwrap() > 0);
    assert!(r["duration_ms"].as_f64().unwrap() < 10_000.0);
}

/// Ctrl-C during `--rps`: the rate is judged on the time the run had,
/// not against the plan it did not finish.
#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_rate_run_is_judged_on_the_time_it_ran() {
    let t = common::start(ServerConfig::default()).await;
    let addr = t.addr.to_string();
    let out = tokio::task::spawn_blocking(move || {
        let child = Command::new(BIN)
            .args(["load", &addr, "--call", "helloworld.Greeter/SayHello"])
            .args(["--rps", "100", "-c", "20", "-z", "60s", "-o", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(2500));
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(r["interrupted"], true);
    let rate = &r["rate"];
    // 100/s for about 2.5 s of a 60 s plan: held, nothing "never started".
    assert_eq!(rate["held"], true, "{rate:#}");
    assert!(rate["not_started"].as_u64().unwrap() < 30, "{rate:#}");
    assert!(rate["achieved"].as_f64().unwrap() > 80.0, "{rate:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn many_connections_and_stream_limits() {
    let t = common::start(ServerConfig {
        max_concurrent_streams: Some(2),
        ..Default::default()
    })
    .await;
    let addr = t.addr.to_string();
    let out = load(args(&[
        &addr,
        "--call",
        "helloworld.Greeter/SayHello",
        "-H",
        "x-delay-ms: 5",
        "-c",
        "40",
        "--connections",
        "4",
        "-n",
        "400",
        "-o",
        "json",
    ]))
    .await;
    let r = report(&out);
    assert_eq!(r["ok"], 400, "{}", stderr(&out));
    let conns = r["connections_table"].as_array().unwrap();
    assert_eq!(conns.len(), 4);
    for c in conns {
        assert!(c["rpcs"].as_u64().unwrap() >= 50, "spread: {c}");
    }
    // 40 in flight over 4 x 2 stream slots: calls waited for slots.
    assert!(r["slot_waits"].as_u64().unwrap() > 0, "{r}");
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_follow_connections_that_replace_drained_ones() {
    // Workers keep their connection between calls; a connection that
    // drains, and one that joins, makes them pick again: every connection
    // of the run carries its share.
    let t = common::start(ServerConfig {
        max_connection_age: Some(Duration::from_millis(700)),
        max_connection_age_grace: Some(Duration::from_millis(300)),
        ..Default::default()
    })
    .await;
    let addr = t.addr.to_string();
    let out = load(args(&[
        &addr,
        "--call",
        "helloworld.Greeter/SayHello",
        "-H",
        "x-delay-ms: 20",
        "-c",
        "20",
        "--connections",
        "2",
        "-z",
        "3s",
        "-o",
        "json",
    ]))
    .await;
    let r = report(&out);
    assert_eq!(r["errors"], 0, "{r}");
    let conns = r["connections_table"].as_array().unwrap();
    assert!(
        conns.len() >= 5,
        "connections were replaced: {}",
        conns.len()
    );
    for c in conns {
        if c["lifetime_ms"].as_f64().unwrap() >= 500.0 {
            assert!(c["rpcs"].as_u64().unwrap() >= 50, "calls moved here: {c}");
        }
    }

    // A backend that comes up after the run started takes its share: the
    // workers settled on the first one pick again when it joins.
    let first = common::start(ServerConfig::default()).await;
    let spare = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let late = spare.local_addr().unwrap();
    drop(spare);
    let starter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (sink, rx) = grpcdoc::event::EventSink::channel(1024);
        let server = grpcdoc::server::Server::start(late, ServerConfig::default(), sink)
            .await
            .expect("the late backend starts");
        (server, rx)
    });
    let out = load(args(&[
        &format!("{},{late}", first.addr),
        "--lb",
        "round_robin",
        "--call",
        "helloworld.Greeter/SayHello",
        "-H",
        "x-delay-ms: 5",
        "-c",
        "20",
        "-z",
        "4s",
        "-o",
        "json",
    ]))
    .await;
    let _late_server = starter.await.unwrap();
    let r = report(&out);
    let total = r["ok"].as_u64().unwrap();
    let on_late: u64 = r["connections_table"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["addr"] == late.to_string())
        .map(|c| c["rpcs"].as_u64().unwrap())
        .sum();
    assert!(
        on_late * 20 >= total,
        "the late backend took {on_late} of {total} calls: {}",
        r["connections_table"]
    );
}

/// Against a port where nothing listens, the counters say what happened:
/// every dial that failed is counted, and so is every call that failed fast
/// because there was no connection to start it on.
#[tokio::test]
async fn a_refused_port_counts_failed_dials_and_fast_failures() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let base = [
        addr.as_str(),
        "--proto",
        "proto/helloworld/helloworld.proto",
        "--call",
        "helloworld.Greeter/SayHello",
        "-n",
        "5",
    ];
    let mut a = args(&base);
    a.extend(args(&["-o", "json"]));
    let out = load(a).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let r = report(&out);
    assert!(r["connects_failed"].as_u64() >= Some(1), "{r}");
    assert_eq!(r["calls_without_connection"], 5, "{r}");
    assert_eq!(r["errors"], 5, "{r}");
    assert_eq!(r["codes"]["UNAVAILABLE"]["count"], 5, "{r}");
    let out = load(args(&base)).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("failed connection attempts 0"), "{text}");
    assert!(
        text.contains("calls failed fast without a connection 5"),
        "{text}"
    );
}

/// Calls whose deadline passes while they wait for a stream slot (the
/// server allows one stream per connection) are told apart from calls the
/// server was slow to answer: the queue behind MAX_CONCURRENT_STREAMS.
#[tokio::test(flavor = "multi_thread")]
async fn deadlines_spent_waiting_for_a_stream_slot_are_the_stream_limit() {
    let t = common::start(ServerConfig {
        max_concurrent_streams: Some(1),
        ..Default::default()
    })
    .await;
    let out = load(args(&[
        &t.addr.to_string(),
        "--call",
        "helloworld.Greeter/SayHello",
        "-H",
        "x-delay-ms: 400",
        "-c",
        "4",
        "--connections",
        "1",
        "-n",
        "4",
        "--timeout",
        "300ms",
        "-o",
        "json",
    ]))
    .await;
    let r = report(&out);
    let causes = r["causes"].as_array().expect("causes");
    let queued = causes
        .iter()
        .find(|c| c["cause"] == "queued_deadline")
        .unwrap_or_else(|| panic!("{r}"));
    assert_eq!(queued["id"], "stream-limit-queue", "{r}");
    assert!(
        queued["count"].as_u64() >= Some(2),
        "three waited for the one slot: {r}"
    );
    let slow = causes.iter().find(|c| c["cause"] == "deadline");
    assert!(
        slow.is_none_or(|c| c["count"] == 1),
        "only the call on the slot was slow: {r}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn threads_share_the_connections_the_calls_and_the_rate() {
    let t = common::start(ServerConfig::default()).await;
    let addr = t.addr.to_string();
    let out = load(args(&[
        &addr,
        "--call",
        "helloworld.Greeter/SayHello",
        "--threads",
        "2",
        "--connections",
        "4",
        "-c",
        "8",
        "--rps",
        "300",
        "-z",
        "2s",
        "-o",
        "json",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(
        (r["threads"].as_u64(), r["connections"].as_u64()),
        (Some(2), Some(4))
    );
    let conns = r["connections_table"].as_array().unwrap();
    assert_eq!(conns.len(), 4, "{r}");
    for c in conns {
        assert!(
            c["rpcs"].as_u64().unwrap() > 50,
            "every thread's connections carry calls: {c}"
        );
    }
    // The rate is the run's, split between the threads: 600 due in 2 s
    // (timers on a busy machine may start some late, none early or twice).
    let total = r["total"].as_u64().unwrap();
    assert!((540..=600).contains(&total), "{total} calls: {}", r["rate"]);
    assert_eq!(r["rate"]["target"], 300.0, "{}", r["rate"]);

    // Without --connections each thread gets one, and the report says so.
    let human = load(args(&[
        &addr,
        "--call",
        "helloworld.Greeter/SayHello",
        "--threads",
        "2",
        "-n",
        "200",
    ]))
    .await;
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("2 threads"), "{text}");
    assert!(
        text.contains("2 connections per address: one per thread"),
        "{text}"
    );

    // Fewer connections than threads, both given: refused before a call.
    let bad = load(args(&[
        &addr,
        "--call",
        "helloworld.Greeter/SayHello",
        "--threads",
        "3",
        "--connections",
        "2",
    ]))
    .await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("--connections 2 is fewer than --threads 3"),
        "{}",
        stderr(&bad)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stages_set_the_calls_in_flight_and_the_rate_over_time() {
    let t = common::start(ServerConfig {
        delay: Duration::from_millis(50),
        ..Default::default()
    })
    .await;
    let addr = t.addr.to_string();
    let out = load(args(&[
        &addr,
        "--call",
        "helloworld.Greeter/SayHello",
        "--stages",
        "1s:4,1s:4,1s:0",
        "-o",
        "json",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    assert_eq!(r["schedule"], "1s:4,1s:4,1s:0");
    let stages = r["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 3);
    let calls: Vec<u64> = stages
        .iter()
        .map(|s| s["calls"].as_u64().unwrap())
        .collect();
    // 4 in flight for 1 s at 50 ms a call: at most 80 calls begin (and
    // those in flight at its start), fewer while ramping up and down.
    assert!((30..=84).contains(&calls[1]), "{calls:?}");
    assert!(calls[0] < calls[1] && calls[2] < calls[1], "{calls:?}");
    assert!(r["duration_ms"].as_f64().unwrap() < 4500.0);

    // Rates: 0 -> 100/s over 1 s (50 calls due), then 100/s (100 more).
    let out = load(args(&[
        &addr,
        "--call",
        "helloworld.Greeter/SayHello",
        "--stages",
        "1s:100/s,1s:100/s",
        "-c",
        "20",
        "-o",
        "json",
    ]))
    .await;
    let r = report(&out);
    let stages = r["stages"].as_array().unwrap();
    assert_eq!(stages[0]["calls"], 50, "{stages:?}");
    assert!(stages[1]["calls"].as_u64().unwrap() >= 95, "{stages:?}");
    assert_eq!(stages[1]["planned"], 100.0);
    assert_eq!(r["rate"]["target"], 75.0, "{}", r["rate"]);

    // A mistake in the schedule is named before anything is sent.
    let bad = load(args(&[
        &addr,
        "--call",
        "helloworld.Greeter/SayHello",
        "--stages",
        "10s:100,30x:5",
    ]))
    .await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("stage 2 (`30x:5`): `30x` is not a duration"),
        "{}",
        stderr(&bad)
    );
}

/// What a ghz or k6 user reaches for, in one run as a user sees it on a
/// 100-column terminal (a pty from util-linux's `script`): three stages,
/// request data that varies per call, checks on the responses; the
/// progress line shows the stage, the report a row per stage and per
/// check, and every table fits.
#[tokio::test(flavor = "multi_thread")]
async fn stages_a_template_and_checks_in_one_run() {
    let t = common::start(ServerConfig {
        delay: Duration::from_millis(10),
        ..Default::default()
    })
    .await;
    let cmd = format!(
        "stty cols 100 rows 50; {BIN} load {} --call grpcdoc.echo.v1.Echo/Unary \
         -d '{{\"message\": \"n{{{{call}}}}\"}}' --stages 1s:10,1s:20,1s:0 \
         --expect 'message matches ^n[0-9]+$' --expect 'message == n0'",
        t.addr
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env("NO_COLOR", "1")
            .output()
            .expect("run script")
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let plain = regex::Regex::new(r"\x1b\[[0-9;?]*[a-zA-Z]")
        .unwrap()
        .replace_all(&text, "")
        .replace('\r', "\n");
    assert!(
        plain.contains("stage 2/3 (0:01.0-0:02.0 10 -> 20 in flight) at"),
        "{plain}"
    );
    let row = |start: &str| {
        plain
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no row {start}: {plain}"))
            .split(['│', '┆'])
            .map(|c| c.trim().to_string())
            .collect::<Vec<_>>()
    };
    for (stage, target) in [
        ("1/3", "0 -> 10 in flight"),
        ("2/3", "10 -> 20 in flight"),
        ("3/3", "20 -> 0 in flight"),
    ] {
        let r = row(&format!("│ {stage}"));
        assert_eq!(r[3], target, "{r:?}");
        assert!(r[4].parse::<u64>().unwrap() > 0, "{r:?}");
    }
    let head = plain.lines().find(|l| l.starts_with("load:")).unwrap();
    let total: u64 = head
        .split(": ")
        .nth(2)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // Every call's message is its own: the pattern held on each, the
    // first call's text on one only.
    let every = row("│ message matches");
    assert_eq!(every[2], format!("{total} (100.00%)"), "{every:?}");
    let first = row("│ message == n0");
    assert!(first[2].starts_with("1 ("), "{first:?}");
    assert_eq!(first[3], (total - 1).to_string());
    for line in plain
        .lines()
        .filter(|l| l.starts_with(['│', '┌', '└', '╞', '├']))
    {
        assert!(
            line.chars().count() <= 100,
            "{} columns: {line}",
            line.chars().count()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_per_address_when_the_target_names_several() {
    let a = common::start(ServerConfig::default()).await;
    let b = common::start(ServerConfig::default()).await;
    let target = format!("{},{}", a.addr, b.addr);
    let out = load(args(&[
        &target,
        "--call",
        "helloworld.Greeter/SayHello",
        "--lb",
        "round_robin",
        "--threads",
        "1",
        "-n",
        "200",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("│ address"), "{text}");
    for addr in [a.addr, b.addr] {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("│ {addr} ")) && l.matches('┆').count() == 3)
            .unwrap_or_else(|| panic!("no totals for {addr}: {text}"));
        let calls: u64 = row.split('┆').nth(2).unwrap().trim().parse().unwrap();
        assert!(calls > 20, "round robin over both: {row}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn request_data_that_varies_and_response_checks() {
    let t = common::start(ServerConfig::default()).await;
    let addr = t.addr.to_string();
    let dir = tempfile::tempdir().unwrap();
    let lines = dir.path().join("reqs.jsonl");
    std::fs::write(
        &lines,
        "{\"message\": \"a\"}\n{\"message\": \"b\"}\n\n{\"message\": \"c{{call}}\"}\n",
    )
    .unwrap();
    let data = format!("@{}", lines.display());
    let echo = |extra: &[&str]| {
        let mut a = args(&[&addr, "--call", "grpcdoc.echo.v1.Echo/Unary"]);
        a.extend(extra.iter().map(|s| s.to_string()));
        load(a)
    };
    // One message a line, in turn: the server echoes each back.
    let out = echo(&[
        "-d",
        &data,
        "-n",
        "30",
        "--expect",
        "message == a",
        "--expect",
        "message matches ^c[0-9]+$",
        "--fail-on",
        "check:1<30%",
        "-o",
        "json",
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = report(&out);
    let checks = r["checks"].as_array().unwrap();
    assert_eq!(
        (checks[0]["passed"].as_u64(), checks[0]["failed"].as_u64()),
        (Some(10), Some(20))
    );
    assert_eq!(checks[1]["passed"], 10);
    assert_eq!(checks[1]["not_made"], 0);
    // A check that does not hold everywhere fails the run when asked to.
    let strict = echo(&[
        "-d",
        &data,
        "-n",
        "30",
        "--expect",
        "message == a",
        "--fail-on",
        "checks<100%",
    ])
    .await;
    assert_eq!(strict.status.code(), Some(1), "{}", stderr(&strict));
    // A failed call makes no check: not made, never passed.
    let failing = echo(&[
        "-d",
        r#"{"status_code": 14}"#,
        "-n",
        "5",
        "--expect",
        "message == a",
        "-o",
        "json",
    ])
    .await;
    let r = report(&failing);
    assert_eq!(r["checks"][0]["not_made"], 5, "{}", r["checks"]);
    assert_eq!(r["checks"][0]["passed"], 0);

    // Mistakes are placed before a call is made.
    std::fs::write(&lines, "{\"message\": \"a\"}\n{\"mesage\": \"b\"}\n").unwrap();
    for (extra, says) in [
        (
            vec!["-d", r#"{"message": "{{cal}}"}"#],
            "-d:1:14: unknown placeholder `cal`",
        ),
        (vec!["-d", &data], "reqs.jsonl:2:"),
        (
            vec!["--expect", "mesage == a"],
            "`mesage` is not a field of grpcdoc.echo.v1.EchoResponse",
        ),
        (vec!["--expect", "message"], "has no comparison"),
    ] {
        let mut all = extra.clone();
        all.extend(["-n", "1"]);
        let bad = echo(&all).await;
        assert_eq!(bad.status.code(), Some(2), "{extra:?}: {}", stderr(&bad));
        assert!(stderr(&bad).contains(says), "{extra:?}: {}", stderr(&bad));
    }
}
