//! Hostile peers: servers that send garbage, oversized frames, floods and
//! broken connections, and TLS servers with bad certificates. `grpcdoc
//! watch` reports each as what it is, keeps working (it is still running
//! and reconnecting at the end), never panics, and its memory stays bounded.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_grpcdoc");

/// An HTTP/2 frame: length, type, flags, stream, payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const RST_STREAM: u8 = 0x3;

/// A server on loopback that treats each of its first 20 connections with
/// `behave` and then stops accepting.
fn hostile(behave: fn(&mut TcpStream)) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in l.incoming().take(20) {
            let Ok(mut c) = conn else { continue };
            std::thread::spawn(move || {
                let _ = c.set_read_timeout(Some(Duration::from_millis(300)));
                let mut buf = [0u8; 4096];
                let _ = c.read(&mut buf); // the client's preface and SETTINGS
                behave(&mut c);
                std::thread::sleep(Duration::from_millis(300));
            });
        }
    });
    addr
}

fn settings_then(c: &mut TcpStream, rest: &[u8]) {
    let mut out = frame(SETTINGS, 0, 0, &[]);
    out.extend_from_slice(&frame(SETTINGS, 1, 0, &[]));
    out.extend_from_slice(rest);
    let _ = c.write_all(&out);
}

/// Runs `grpcdoc watch` for 2.5 s; returns its JSON lines, stderr and the
/// peak RSS it reached (sampled just before it ends).
fn watch(target: &str, extra: &[&str]) -> (String, String, u64) {
    let mut child = Command::new(BIN)
        .args([
            "watch",
            target,
            "-o",
            "json",
            "--for",
            "2500ms",
            "--reconnect",
            "eager",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read stdout as it comes, as a terminal would.
    let mut pipe = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    });
    std::thread::sleep(Duration::from_millis(2200));
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let peak_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    assert!(
        child.try_wait().unwrap().is_none(),
        "watch is still running, not crashed"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "watch did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = reader.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    (stdout, stderr, peak_kb)
}

fn check(name: &str, target: &str, extra: &[&str], says: &[&str]) {
    let (out, err, peak_kb) = watch(target, extra);
    for s in says {
        assert!(out.contains(s), "{name}: wanted {s:?} in\n{out}\n{err}");
    }
    // Reconnect attempts went on: more than one connect.
    assert!(
        out.matches("\"to\":\"CONNECTING\"").count() >= 2,
        "{name}: kept trying\n{out}"
    );
    assert!(peak_kb < 100 * 1024, "{name}: peak RSS {peak_kb} kB");
}

#[test]
fn garbage_instead_of_a_preface() {
    let addr = hostile(|c| {
        let _ = c.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    });
    check("garbage", &addr, &[], &["TRANSIENT_FAILURE", "not_http2"]);
}

#[test]
fn a_frame_with_a_huge_length() {
    let addr = hostile(|c| {
        // DATA on stream 0 claiming 16 MiB.
        settings_then(c, &[0xff, 0xff, 0xff, 0x0, 0x0, 0, 0, 0, 0]);
    });
    check("huge frame", &addr, &[], &["FRAME_SIZE_ERROR"]);
}

#[test]
fn a_goaway_with_a_1_mb_debug_payload() {
    let addr = hostile(|c| {
        let mut p = vec![0, 0, 0, 0, 0, 0, 0, 0];
        p.extend(std::iter::repeat_n(b'x', 1 << 20));
        settings_then(c, &frame(GOAWAY, 0, 0, &p));
    });
    check("1 MB GOAWAY", &addr, &[], &["FRAME_SIZE_ERROR"]);
}

#[test]
fn a_settings_flood() {
    let addr = hostile(|c| {
        let mut flood = Vec::new();
        for _ in 0..100_000 {
            flood.extend_from_slice(&frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]));
        }
        settings_then(c, &flood);
    });
    check("flood", &addr, &[], &["\"kind\":\"closed\""]);
}

#[test]
fn a_ping_flood() {
    let addr = hostile(|c| {
        let mut flood = Vec::new();
        for i in 0..100_000u64 {
            flood.extend_from_slice(&frame(PING, 0, 0, &i.to_be_bytes()));
        }
        settings_then(c, &flood);
    });
    check("flood", &addr, &[], &["\"kind\":\"closed\""]);
}

#[test]
fn an_rst_stream_storm() {
    let addr = hostile(|c| {
        let mut storm = Vec::new();
        for s in (1..20_000u32).step_by(2) {
            storm.extend_from_slice(&frame(RST_STREAM, 0, s, &[0, 0, 0, 8]));
        }
        settings_then(c, &storm);
    });
    check("RST_STREAM storm", &addr, &[], &["PROTOCOL_ERROR"]);
}

#[test]
fn a_connection_closed_mid_frame() {
    let addr = hostile(|c| {
        // Half a GOAWAY header, then the socket closes.
        settings_then(c, &[0, 0, 8, GOAWAY, 0]);
        let _ = c.shutdown(std::net::Shutdown::Both);
    });
    check("closed mid-frame", &addr, &[], &["\"kind\":\"closed\""]);
}

fn tls_server(
    params: rcgen::CertificateParams,
) -> (std::net::SocketAddr, String, tempfile::TempDir) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (c, k) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let addr = rt.block_on(async {
        let s = grpcdoc::server::Server::start(
            "127.0.0.1:0".parse().unwrap(),
            grpcdoc::server::ServerConfig {
                tls: Some(grpcdoc::server::tls::server_config(&c, &k).unwrap()),
                ..Default::default()
            },
            grpcdoc::event::EventSink::channel(1024).0,
        )
        .await
        .unwrap();
        let addr = s.addr;
        // Serve for the rest of the test, then stop by itself.
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(15)).await;
            drop(s);
        });
        addr
    });
    std::thread::spawn(move || {
        rt.block_on(async { tokio::time::sleep(Duration::from_secs(15)).await })
    });
    (addr, c.display().to_string(), dir)
}

#[test]
fn tls_with_an_expired_certificate() {
    let mut p = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let (addr, ca, _dir) = tls_server(p);
    let target = format!("https://localhost:{}", addr.port());
    check("expired", &target, &["--cacert", &ca], &["expired"]);
}

#[test]
fn tls_with_a_certificate_for_another_host() {
    let p = rcgen::CertificateParams::new(vec!["wrong.example".to_string()]).unwrap();
    let (addr, ca, _dir) = tls_server(p);
    let target = format!("https://localhost:{}", addr.port());
    check(
        "wrong host",
        &target,
        &["--cacert", &ca],
        &["not valid for", "localhost"],
    );
}

/// `grpcdoc load` (its own HTTP/2 client) against a server that breaks
/// HTTP/2 once calls are on the way: every call is accounted for as failed
/// with what the server did, the report is printed, the exit code says no
/// call succeeded, and nothing panics.
#[test]
fn load_reports_servers_that_break_http2() {
    type Case = (&'static str, fn(&mut TcpStream), &'static str);
    let cases: [Case; 3] = [
        (
            "huge frame",
            |c| settings_then(c, &[0xff, 0xff, 0xff, 0x0, 0x0, 0, 0, 0, 0]),
            "FRAME_SIZE_ERROR",
        ),
        (
            "1 MiB GOAWAY",
            |c| {
                let mut p = vec![0, 0, 0, 0, 0, 0, 0, 0];
                p.extend(std::iter::repeat_n(b'x', 1 << 20));
                settings_then(c, &frame(GOAWAY, 0, 0, &p));
            },
            "FRAME_SIZE_ERROR",
        ),
        (
            "undecodable headers",
            // An index far past both HPACK tables, on the first stream.
            |c| settings_then(c, &frame(0x1, 0x4, 1, &[0xff, 0xff, 0xff, 0x0f])),
            "COMPRESSION_ERROR",
        ),
    ];
    for (name, behave, says) in cases {
        let addr = hostile(behave);
        let out = Command::new(BIN)
            .args([
                "load",
                &addr,
                "--proto",
                "proto/helloworld/helloworld.proto",
                "--call",
                "helloworld.Greeter/SayHello",
                "-n",
                "30",
                "-c",
                "3",
                "--timeout",
                "2s",
                "-o",
                "json",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}\n{stdout}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        let r: serde_json::Value = serde_json::from_str(&stdout).expect("a JSON report");
        assert_eq!(r["ok"], 0, "{name}: {r}");
        assert_eq!(r["errors"], 30, "{name}: every call accounted: {r}");
        assert!(stdout.contains(says), "{name}: wanted {says} in {r}");
    }
}
