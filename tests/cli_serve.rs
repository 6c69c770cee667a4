//! `grpcdoc serve` as a user runs it: the built binary, its stdout, its exit
//! codes and its signals.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_grpcdoc");

/// A `grpcdoc serve` child killed on drop, with its stdout lines on a channel.
struct Serve {
    child: Child,
    lines: mpsc::Receiver<String>,
    addr: SocketAddr,
}

impl Serve {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn grpcdoc");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = lines
            .recv_timeout(Duration::from_secs(10))
            .expect("first line");
        // -o json: the first line is the listening event.
        let addr = match first.strip_prefix("listening on ") {
            Some(a) => a.to_string(),
            None => serde_json::from_str::<serde_json::Value>(&first)
                .ok()
                .and_then(|v| v["listen"].as_str().map(str::to_string))
                .unwrap_or_else(|| panic!("unexpected first line {first:?}")),
        };
        let addr = addr.parse().expect("address");
        Self { child, lines, addr }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([format!("-{sig}"), self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    fn wait(&mut self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "grpcdoc serve did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn rest(&self) -> Vec<String> {
        std::iter::from_fn(|| self.lines.recv_timeout(Duration::from_secs(2)).ok()).collect()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run grpcdoc");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn first_line_is_listening_and_for_stops_it() {
    let mut s = Serve::start(&["--for", "1s"]);
    assert!(s.addr.port() > 0);
    assert_eq!(s.wait(Duration::from_secs(10)), 0);
    assert!(s
        .rest()
        .iter()
        .any(|l| l.contains("server stopping (graceful)")));
}

#[test]
fn json_output_is_one_object_per_line() {
    let mut s = Serve::start(&[
        "-o",
        "json",
        "--for",
        "1500ms",
        "--max-connection-idle",
        "300ms",
    ]);
    // One connection so there is something to report.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let _c = common::RawClient::connect(s.addr).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
    });
    assert_eq!(s.wait(Duration::from_secs(10)), 0);
    let lines = s.rest();
    let kinds: Vec<String> = lines
        .iter()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
            assert!(v["t_ms"].is_f64(), "{l}");
            v["kind"].as_str().unwrap().to_string()
        })
        .collect();
    for k in [
        "accepted", "settings", "drain", "goaway", "closed", "shutdown",
    ] {
        assert!(kinds.iter().any(|x| x == k), "no {k} in {kinds:?}");
    }
    let goaway: serde_json::Value = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["kind"] == "goaway")
        .unwrap();
    assert_eq!(goaway["dir"], "sent");
    assert_eq!(goaway["code"], "NO_ERROR");
    assert_eq!(goaway["debug"], "max_idle");
    assert_eq!(goaway["last_stream_id"], 2147483647u32);
    assert!(goaway["conn"].is_u64() && goaway["addr"].is_string());
}

#[test]
fn sigterm_drains_and_exits_zero() {
    let mut s = Serve::start(&[]);
    s.signal("TERM");
    assert_eq!(s.wait(Duration::from_secs(10)), 0);
}

#[test]
fn second_signal_stops_at_once_with_130() {
    let mut s = Serve::start(&[]);
    // A client that never reads: the graceful drain cannot finish.
    let mut tcp = std::net::TcpStream::connect(s.addr).unwrap();
    use std::io::Write;
    tcp.write_all(grpcdoc::h2wire::frame::CLIENT_PREFACE)
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    s.signal("INT");
    std::thread::sleep(Duration::from_millis(500));
    assert!(s.child.try_wait().unwrap().is_none(), "still draining");
    s.signal("INT");
    assert_eq!(s.wait(Duration::from_secs(10)), 130);
}

#[test]
fn closed_stdout_ends_the_server_quietly() {
    let mut s = Serve::start(&[]);
    // Close our end of the pipe, then make events happen.
    let addr = s.addr;
    drop(std::mem::replace(&mut s.lines, mpsc::channel().1));
    std::thread::sleep(Duration::from_millis(100));
    for _ in 0..20 {
        if s.child.try_wait().unwrap().is_some() {
            break;
        }
        let _ = std::net::TcpStream::connect(addr);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(s.wait(Duration::from_secs(10)), 0);
}

#[test]
fn bad_duration_is_exit_2_naming_the_flag() {
    let (code, _, err) = run(&["serve", "--max-connection-idle", "1x"]);
    assert_eq!(code, 2);
    assert!(err.contains("--max-connection-idle"), "{err}");
    assert!(err.contains("expected a duration"), "{err}");
}

#[test]
fn bad_listen_address_is_exit_2() {
    let (code, _, err) = run(&["serve", "--listen", "nowhere"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--listen") && err.contains("expected IP:PORT"),
        "{err}"
    );
}

#[test]
fn busy_port_is_one_line_and_exit_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, out, err) = run(&["serve", "--listen", &addr]);
    assert_eq!(code, 2);
    assert!(out.is_empty(), "{out}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    assert!(err.contains("--listen"), "says how to fix it: {err}");
}

#[test]
fn unreadable_tls_files_are_exit_2() {
    let (code, _, err) = run(&[
        "serve",
        "--tls-cert",
        "/nonexistent/cert.pem",
        "--tls-key",
        "/nonexistent/key.pem",
    ]);
    assert_eq!(code, 2);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot read the TLS certificate /nonexistent/cert.pem"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a pem file").unwrap();
    let junk = junk.to_str().unwrap();
    let (code, _, err) = run(&["serve", "--tls-cert", junk, "--tls-key", junk]);
    assert_eq!(code, 2);
    assert!(err.contains("no PEM certificate"), "{err}");

    let (code, _, err) = run(&["serve", "--tls-cert", junk]);
    assert_eq!(code, 2);
    assert!(err.contains("--tls-key"), "{err}");
}

#[test]
fn serves_tls_with_alpn_h2() {
    use tokio_rustls::rustls;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let s = Serve::start(&[
        "--tls-cert",
        cert_path.to_str().unwrap(),
        "--tls-key",
        key_path.to_str().unwrap(),
    ]);

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let mut cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
            .connect("localhost".try_into().unwrap(), tcp)
            .await
            .expect("TLS handshake with a verified certificate");
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut send, conn) = h2::client::handshake(tls).await.unwrap();
        tokio::spawn(conn);
        let req = http::Request::post("https://localhost/helloworld.Greeter/SayHello")
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap();
        let (resp, mut body) = send.send_request(req, false).unwrap();
        body.send_data(common::grpc_frame(&common::hello("tls")), true)
            .unwrap();
        let mut rbody = resp.await.unwrap().into_body();
        while rbody.data().await.is_some() {}
        let trailers = rbody.trailers().await.unwrap().unwrap();
        trailers["grpc-status"].to_str().unwrap().to_string()
    });
    assert_eq!(status, "0");
}

#[test]
fn help_documents_exit_codes() {
    let (code, out, _) = run(&["serve", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("130") && out.contains("Exit codes"), "{out}");
}
