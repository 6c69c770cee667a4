//! `grpcdoc explain` as a user runs it: a message, a log file, stdin; the
//! exit codes; JSON.

use std::io::Write;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_grpcdoc");

fn explain(args: &[&str], stdin: &str) -> (Option<i32>, String, String) {
    let mut child = Command::new(BIN)
        .arg("explain")
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_message_names_its_failure_with_cause_fix_and_scenario() {
    let (code, out, _) = explain(
        &["UNAVAILABLE: Connection closed after GOAWAY. HTTP/2 error code: ENHANCE_YOUR_CALM (Bandwidth exhausted), debug data: too_many_pings"],
        "",
    );
    assert_eq!(code, Some(0));
    assert!(
        out.starts_with("one cause fits this message (grpc-java)"),
        "{out}"
    );
    assert!(out.contains("[too-many-pings]"), "{out}");
    assert!(
        out.contains("printed by:  grpc-go 1.33, C-core 1.85, grpc-js 1.14, grpc-java 1.41"),
        "{out}"
    );
    // The message's stack first, then the others.
    let java = out.find("grpc-java:   client: keepAliveTime").expect(&out);
    let go = out.find("grpc-go:     client:").expect(&out);
    assert!(java < go, "{out}");
    assert!(
        out.contains("reproduce:   grpcdoc scenario scenarios/too-many-pings.yaml"),
        "{out}"
    );
    for line in out.lines() {
        assert!(line.chars().count() <= 100, "over 100 columns: {line}");
    }
}

#[test]
fn a_generic_message_lists_what_fits_and_how_to_tell() {
    let (code, out, _) = explain(
        &["rpc error: code = Unavailable desc = error reading from server: EOF"],
        "",
    );
    assert_eq!(code, Some(0));
    assert!(
        out.contains("is printed for several causes (grpc-go)"),
        "{out}"
    );
    assert!(out.contains("1. server-crash"), "{out}");
    assert!(out.contains("To tell them apart:"), "{out}");
    let (_, json, _) = explain(
        &[
            "-o",
            "json",
            "rpc error: code = Unavailable desc = error reading from server: EOF",
        ],
        "",
    );
    let r: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(r["verdict"], "several");
    assert!(r["matches"].as_array().is_some_and(|m| m.len() >= 3));
}

#[test]
fn the_stack_flag_orders_the_fixes() {
    let (code, out, _) = explain(
        &["--stack", "dotnet", "-v", "context deadline exceeded"],
        "",
    );
    assert_eq!(code, Some(0));
    let dotnet = out.find("grpc-dotnet:").expect(&out);
    let go = out.find("grpc-go:").expect(&out);
    assert!(dotnet < go, "{out}");
    let (code, _, err) = explain(&["--stack", "cobol", "x"], "");
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown --stack"), "{err}");
}

#[test]
fn a_log_on_stdin_is_counted_per_failure_as_json() {
    let log = "\
I1202 10:00:01 call failed: rpc error: code = Unavailable desc = Received http2 header with status: 502
I1202 10:00:02 call ok
I1202 10:00:03 call failed: rpc error: code = Unavailable desc = Received http2 header with status: 504
I1202 10:00:04 call failed: rpc error: code = Canceled desc = stream terminated by RST_STREAM with error code: CANCEL
";
    let (code, out, _) = explain(&["-", "-o", "json"], log);
    assert_eq!(code, Some(0));
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["kind"], "explanation");
    assert_eq!(
        (r["lines"].as_u64(), r["matched_lines"].as_u64()),
        (Some(4), Some(3))
    );
    assert_eq!(r["matches"][0]["id"], "proxy-timeout");
    assert_eq!(r["matches"][0]["count"], 1);
    assert_eq!(r["matches"][1]["id"], "rst-stream");
    assert_eq!(r["unresolved"][0]["fits"][0], "proxy-no-upstream");
    assert_eq!(r["matches"][0]["first_seen"], "I1202 10:00:03");
    assert!(r["matches"][0]["fixes"]
        .as_array()
        .is_some_and(|f| f.iter().any(|f| f["text"]
            .as_str()
            .is_some_and(|t| t.contains("grpc_read_timeout")))));
}

#[test]
fn a_log_file_is_read_and_nothing_known_is_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    std::fs::write(&path, "all good\nstill good\n").unwrap();
    let (code, out, _) = explain(&[path.to_str().unwrap()], "");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("no known failure"), "{out}");
}

#[test]
fn bad_input_is_exit_2_with_a_clear_error() {
    let (code, _, err) = explain(&["missing/app.log"], "");
    assert_eq!(code, Some(2));
    assert!(err.contains("no file missing/app.log"), "{err}");
    let (code, _, err) = explain(&["-"], "");
    assert_eq!(code, Some(2));
    assert!(err.contains("stdin is empty"), "{err}");
}
