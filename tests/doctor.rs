//! `grpcdoc doctor` as users run it, against real servers on loopback:
//! the built-in server (with its idle timeout, keepalive enforcement, TLS,
//! message limit), grpcdoc's chaos proxy playing a load balancer that
//! forgets idle flows, and - with the peers of `../shared/peers` - grpc-go
//! 1.33, C-core (grpcio) and a real nginx in front. Each measured value is
//! checked within 10% of the configured one.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_addr, peer, spawn_listening, wait_listening, Proc};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_grpcdoc");

/// `grpcdoc serve` with `args` for at most a minute: the guard and address.
fn serve(args: &[&str]) -> (Proc, String) {
    let mut all = vec!["serve", "--listen", "127.0.0.1:0", "--for", "60s"];
    all.extend_from_slice(args);
    let (child, addr) = spawn_listening(BIN, &all);
    (Proc::adopt(child), addr)
}

/// A peer server on a free port: `flag ADDR extra...`.
fn peer_server(bin: &std::path::Path, flag: &str, extra: &[&str]) -> (Proc, String) {
    let addr = free_addr();
    let guard = Proc::spawn(
        Command::new(bin)
            .arg(flag)
            .arg(addr.to_string())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_listening(addr, "peer server");
    (guard, addr.to_string())
}

/// Runs `grpcdoc doctor ARGS -o json`: exit code, report, stderr, wall time.
fn doctor(args: &[&str]) -> (i32, Value, String, Duration) {
    let started = Instant::now();
    let out = Command::new(BIN)
        .arg("doctor")
        .args(args)
        .args(["-o", "json"])
        .output()
        .expect("run grpcdoc doctor");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), report, stderr, took)
}

fn finding<'a>(r: &'a Value, key: &str) -> &'a Value {
    r["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["key"] == key))
        .unwrap_or_else(|| panic!("no finding {key} in {r:#}"))
}

/// `value` (ms) is within 10% of `want` (ms).
fn near(what: &str, value: &Value, want: f64) {
    let v = value
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: no value ({value})"));
    assert!(
        (v - want).abs() <= want * 0.1,
        "{what}: {v} ms is not within 10% of {want} ms"
    );
}

fn conflicts(r: &Value) -> Vec<String> {
    r["verdicts"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter(|v| v["conflict"] == true)
                .map(|v| format!("{} {}", v["entry"], v["text"]))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn idle_timeout_of_the_built_in_server() {
    let (_s, addr) = serve(&["--max-connection-idle", "3s"]);
    let (code, r, err, took) = doctor(&[&addr, "--budget", "10s", "--no-provoke"]);
    assert_eq!(code, 0, "{err}\n{r:#}");
    let idle = finding(&r, "idle_timeout");
    assert_eq!(idle["outcome"], "measured", "{idle:#}");
    near("idle timeout", &idle["value_ms"], 3000.0);
    assert_eq!(idle["goaway"]["code"], "NO_ERROR");
    assert_eq!(idle["goaway"]["debug"], "max_idle");
    assert_eq!(idle["by"], "server");
    let after_call = finding(&r, "idle_after_call");
    near("idle timeout after a call", &after_call["value_ms"], 3000.0);
    assert_eq!(r["setup"]["settings_like"], "grpcdoc serve");
    assert_eq!(r["intermediary"]["proxy"], false);
    assert!(took < Duration::from_secs(13), "took {took:?}");
    let notes: Vec<&Value> = r["verdicts"].as_array().unwrap().iter().collect();
    assert!(
        notes
            .iter()
            .any(|v| v["entry"] == "idle-timeout" && v["conflict"] == false),
        "{notes:?}"
    );
}

#[test]
fn keepalive_enforcement_of_the_built_in_server() {
    let (_s, addr) = serve(&["--keepalive-min-time", "1s"]);
    let (code, r, err, _) = doctor(&[&addr, "--budget", "15s", "--client-keepalive-time", "500ms"]);
    let min = finding(&r, "ping_min_interval");
    assert_eq!(min["outcome"], "measured", "{err}\n{min:#}");
    near("minimum PING interval", &min["value_ms"], 1000.0);
    assert!(min["lower_ms"].as_f64().unwrap() < 1000.0, "{min:#}");
    assert_eq!(finding(&r, "pings_without_calls")["permitted"], false);
    assert_eq!(code, 1, "{r:#}");
    let c = conflicts(&r);
    assert!(
        c.iter()
            .any(|c| c.contains("too-many-pings") && c.contains("too_many_pings")),
        "{c:?}"
    );
}

#[test]
fn setup_over_tls_and_the_message_limit() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let (_s, addr) = serve(&[
        "--tls-cert",
        cert_path.to_str().unwrap(),
        "--tls-key",
        key_path.to_str().unwrap(),
    ]);
    let port = addr.rsplit(':').next().unwrap();
    let target = format!("https://localhost:{port}");
    let (code, r, err, _) = doctor(&[
        &target,
        "--cacert",
        cert_path.to_str().unwrap(),
        "--budget",
        "5s",
        "--no-provoke",
        "--echo-method",
        "grpcdoc.echo.v1.Echo/Unary",
    ]);
    assert_eq!(code, 0, "{err}\n{r:#}");
    let tls = &r["setup"]["tls"];
    assert_eq!(tls["version"], "TLS 1.3", "{tls:#}");
    assert_eq!(tls["alpn"], "h2");
    assert!(tls["subject"].as_str().unwrap().contains("CN="), "{tls:#}");
    assert!(tls["days_left"].as_i64().unwrap() > 0);
    assert!(r["setup"]["tcp_connect_ms"].as_f64().is_some());
    assert_eq!(r["setup"]["health"], "SERVING");
    assert_eq!(r["setup"]["reflection"], "v1");
    // tonic's limit, stated in its refusal and confirmed at the byte.
    let size = finding(&r, "max_message_size");
    assert_eq!(size["outcome"], "measured", "{size:#}");
    assert_eq!(size["bytes"], 4 * 1024 * 1024);
}

#[test]
fn a_target_that_cannot_be_reached_is_explained() {
    let (_s, addr) = serve(&[]);
    let port = addr.rsplit(':').next().unwrap();
    let (code, r, _, _) = doctor(&[&format!("https://127.0.0.1:{port}"), "--budget", "5s"]);
    assert_eq!(code, 2);
    assert_eq!(r["failure"]["cause"], "plaintext_server", "{r:#}");
    assert_eq!(r["failure"]["entry"], "tls-mismatch");
    let closed = free_addr().to_string();
    let (code, r, _, _) = doctor(&[&closed, "--budget", "5s"]);
    assert_eq!(code, 2);
    assert_eq!(r["failure"]["entry"], "connection-refused", "{r:#}");
}

#[test]
fn bad_input_exits_2_with_a_reason() {
    let (code, _, err, _) = doctor(&["127.0.0.1:1", "--budget", "0s"]);
    assert_eq!(code, 2);
    assert!(err.contains("--budget"), "{err}");
    let (code, _, err, _) = doctor(&["127.0.0.1:1", "--service-config", "{\"methodConfig\": [}"]);
    assert_eq!(code, 2);
    assert!(err.contains("--service-config:1:"), "{err}");
    let (code, _, err, _) = doctor(&["127.0.0.1:1", "--hold-method", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("--hold-method"), "{err}");
}

#[test]
fn a_silent_idle_drop_is_found() {
    let (_s, upstream) = serve(&[]);
    let (_p, addr) = {
        let (child, addr) = spawn_listening(
            BIN,
            &[
                "proxy",
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                &upstream,
                "--for",
                "60s",
                "--fault",
                "idle-expiry:idle=2s,then=blackhole",
            ],
        );
        (Proc::adopt(child), addr)
    };
    let (code, r, err, _) = doctor(&[&addr, "--budget", "12s", "--no-provoke"]);
    let drop = finding(&r, "silent_idle_drop");
    assert_eq!(drop["outcome"], "measured", "{err}\n{drop:#}");
    assert!(drop["upper_ms"].as_f64().unwrap() <= 4000.0, "{drop:#}");
    assert_eq!(drop["by"], "network");
    assert_eq!(code, 1, "a client without keepalive conflicts: {r:#}");
    assert!(
        conflicts(&r).iter().any(|c| c.contains("idle-drop")),
        "{:?}",
        conflicts(&r)
    );
    // Keepalive below the drop with permit-without-stream keeps it alive.
    let (code, r, _, _) = doctor(&[
        &addr,
        "--budget",
        "6s",
        "--no-provoke",
        "--client-keepalive-time",
        "500ms",
        "--client-permit-without-stream",
    ]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(finding(&r, "silent_idle_drop")["outcome"], "measured");
    let notes = r["verdicts"].as_array().unwrap();
    assert!(
        notes
            .iter()
            .any(|v| v["entry"] == "idle-drop" && v["conflict"] == false),
        "the drop is noted as covered: {notes:?}"
    );
}

#[test]
fn ctrl_c_prints_what_was_measured() {
    let (_s, addr) = serve(&[]);
    let mut child = Command::new(BIN)
        .args(["doctor", &addr, "--budget", "60s", "-o", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(8);
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "doctor did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, 130);
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    let r: Value = serde_json::from_str(&out).expect("the report");
    assert_eq!(r["interrupted"], true);
    assert_eq!(r["setup"]["health"], "SERVING");
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn grpc_go_max_age_and_grace() {
    let Some(bin) = peer("gogrpc-server") else {
        return;
    };
    let (_s, addr) = peer_server(
        &bin,
        "-addr",
        &["-max-conn-age", "4s", "-max-conn-age-grace", "1s"],
    );
    let (code, r, err, _) = doctor(&[&addr, "--budget", "12s", "--no-provoke"]);
    assert_eq!(code, 0, "{err}\n{r:#}");
    let age = finding(&r, "max_age");
    assert_eq!(age["outcome"], "measured", "{age:#}");
    // grpc-go adds +-10% of jitter to the age.
    near("max age", &age["value_ms"], 4000.0);
    let grace = finding(&r, "max_age_grace");
    assert_eq!(grace["outcome"], "measured", "{grace:#}");
    near("grace", &grace["value_ms"], 1000.0);
    assert_eq!(r["setup"]["settings_like"], "grpc-go");
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn grpc_go_keepalive_enforcement() {
    let Some(bin) = peer("gogrpc-server") else {
        return;
    };
    let (_s, addr) = peer_server(&bin, "-addr", &["-ka-min-time", "2s"]);
    let (code, r, err, took) = doctor(&[&addr, "--budget", "30s", "--client-keepalive-time", "1s"]);
    let min = finding(&r, "ping_min_interval");
    assert_eq!(min["outcome"], "measured", "{err}\n{min:#}");
    near("minimum PING interval", &min["value_ms"], 2000.0);
    assert_eq!(finding(&r, "pings_without_calls")["permitted"], false);
    assert_eq!(code, 1);
    let c = conflicts(&r);
    assert!(c.iter().any(|c| c.contains("too_many_pings")), "{c:?}");
    assert!(took < Duration::from_secs(33), "took {took:?}");
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn c_core_idle_timeout() {
    let Some(bin) = peer("pygrpc-server") else {
        return;
    };
    let (_s, addr) = peer_server(&bin, "--addr", &["--max-connection-idle-ms", "3000"]);
    let (code, r, err, _) = doctor(&[&addr, "--budget", "8s", "--no-provoke"]);
    assert_eq!(code, 0, "{err}\n{r:#}");
    let idle = finding(&r, "idle_timeout");
    assert_eq!(idle["outcome"], "measured", "{idle:#}");
    near("idle timeout", &idle["value_ms"], 3000.0);
    // C-core's own words, not grpc-go's.
    assert_eq!(idle["goaway"]["debug"], "connection idle", "{idle:#}");
    assert_eq!(idle["by"], "server");
    assert_eq!(r["setup"]["settings_like"], "gRPC C-core");
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn nginx_in_front_answers_for_the_server() {
    let (Some(go), Some(nginx)) = (peer("gogrpc-server"), peer("nginx-grpc")) else {
        return;
    };
    // The server drains idle connections after 2 s; nginx, in front,
    // after 3 s: the client sees nginx's.
    let (_s, backend) = peer_server(&go, "-addr", &["-max-conn-idle", "2s"]);
    let listen = free_addr().to_string();
    let _nginx = Proc::spawn(
        Command::new(nginx)
            .args([&listen, &backend, "keepalive_timeout 3s;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_listening(listen.parse().unwrap(), "nginx");
    let (code, r, err, _) = doctor(&[&listen, "--budget", "12s", "--no-provoke"]);
    assert_eq!(code, 0, "{err}\n{r:#}");
    let i = &r["intermediary"];
    assert_eq!(i["proxy"], true, "{i:#}");
    assert_eq!(i["kind"], "nginx");
    assert!(i["summary"]
        .as_str()
        .unwrap()
        .contains("a proxy answers for the server"));
    // nginx applies keepalive_timeout once a request has been served.
    let idle = finding(&r, "idle_after_call");
    near("nginx idle timeout", &idle["value_ms"], 3000.0);
    assert_eq!(idle["by"], "proxy", "{idle:#}");
    assert_eq!(idle["goaway"]["debug"], "", "nginx sends no debug data");
    // Not the server's 2 s (`max_idle`), which nginx's upstream
    // connections hide.
    assert_eq!(finding(&r, "idle_timeout")["outcome"], "none_seen");
    assert!(r["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["entry"] == "middlebox-goaway"));
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn a_default_grpc_go_run_stays_within_its_budget() {
    let Some(bin) = peer("gogrpc-server") else {
        return;
    };
    let (_s, addr) = peer_server(&bin, "-addr", &[]);
    let (code, r, err, took) = doctor(&[&addr, "--budget", "10s"]);
    assert_eq!(code, 0, "{err}\n{r:#}");
    assert!(took < Duration::from_secs(13), "took {took:?}");
    assert!(
        r["elapsed_ms"].as_f64().unwrap() <= 12_000.0,
        "{}",
        r["elapsed_ms"]
    );
    // grpc-go's default minimum is 5 minutes: the budget ends the probe.
    let min = finding(&r, "ping_min_interval");
    assert_eq!(min["outcome"], "out_of_budget", "{min:#}");
    assert!(min["lower_ms"].as_f64().unwrap() >= 800.0, "{min:#}");
    assert_eq!(finding(&r, "idle_timeout")["outcome"], "none_seen");
    assert_eq!(finding(&r, "max_age")["outcome"], "none_seen");
}

/// A self-signed certificate for localhost (a CA when `ca`), as PEM files.
fn localhost_cert(ca: bool) -> (tempfile::TempDir, String, String, rcgen::CertifiedKey) {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    if ca {
        // What `openssl req -x509` makes by default.
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    }
    let key_pair = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key_pair).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (c, k) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key_pair.serialize_pem()).unwrap();
    let (c, k) = (c.display().to_string(), k.display().to_string());
    (dir, c, k, rcgen::CertifiedKey { cert, key_pair })
}

#[test]
fn a_self_signed_ca_given_with_cacert_is_accepted() {
    let (_dir, cert, key, _) = localhost_cert(true);
    let (_s, addr) = serve(&["--tls-cert", &cert, "--tls-key", &key]);
    let port = addr.rsplit(':').next().unwrap();
    let target = format!("https://localhost:{port}");
    let (code, r, err, _) = doctor(&[&target, "--cacert", &cert, "--budget", "2s", "--no-provoke"]);
    assert_eq!(code, 0, "{err}\n{r:#}");
    assert!(r.get("failure").is_none(), "{r:#}");
    assert_eq!(r["setup"]["tls"]["alpn"], "h2");
    assert_eq!(r["setup"]["health"], "SERVING");
}

/// An HTTPS server that speaks HTTP/1.1 only (hyper's, no ALPN), on
/// loopback while the guard lives.
fn https_h1_server(key: &rcgen::CertifiedKey) -> (tokio::runtime::Runtime, String) {
    use tokio_rustls::rustls;
    let chain = vec![key.cert.der().clone()];
    let private = rustls::pki_types::PrivateKeyDer::try_from(key.key_pair.serialize_der()).unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, private)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    rt.spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let page = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from_static(b"<html>hi</html>")),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), page)
                    .await;
            });
        }
    });
    (rt, addr)
}

#[test]
fn an_https_server_that_is_not_grpc_is_named() {
    let (_dir, cert, _, key) = localhost_cert(false);
    let (_rt, addr) = https_h1_server(&key);
    let port = addr.rsplit(':').next().unwrap();
    let target = format!("https://localhost:{port}");
    let (code, r, err, took) = doctor(&[&target, "--cacert", &cert, "--budget", "30s"]);
    assert_eq!(code, 2, "{err}\n{r:#}");
    let f = &r["failure"];
    assert_eq!(f["entry"], "no-alpn-h2", "{f:#}");
    let text = f["explanation"].as_str().unwrap();
    assert!(text.contains("TLS handshake succeeded"), "{text}");
    assert!(
        !text.contains("firewall") && !text.contains("https://"),
        "{text}"
    );
    // It waits a few seconds for HTTP/2, not the whole connect timeout.
    assert!(took < Duration::from_secs(8), "took {took:?}");
}

/// grpc-java counts a PING from the connection's start (its first PING on
/// a new connection is already a strike): the minimum is still measured,
/// with a call held open, and a client keepalive below it is a conflict.
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn grpc_java_keepalive_enforcement() {
    let Some(bin) = peer("javagrpc-server") else {
        return;
    };
    let (_s, addr) = peer_server(&bin, "--addr", &["--ka-min-time", "2s"]);
    let (code, r, err, _) = doctor(&[&addr, "--budget", "25s", "--client-keepalive-time", "1s"]);
    let min = finding(&r, "ping_min_interval");
    assert_eq!(min["outcome"], "measured", "{err}\n{min:#}");
    within("minimum PING interval", &min["value_ms"], 2000.0, 0.2);
    assert_eq!(code, 1, "{r:#}");
    let c = conflicts(&r);
    assert!(c.iter().any(|c| c.contains("too_many_pings")), "{c:?}");
}

/// A server whose max age is shorter than the probes: every run measures
/// the keepalive minimum or says it did not (exit 3, a NOT MEASURED
/// verdict), and no drain of the max age is called an idle timeout.
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn a_short_max_age_is_not_idle_and_the_minimum_is_measured_or_said_not_to_be() {
    let Some(bin) = peer("gogrpc-server") else {
        return;
    };
    let (_s, addr) = peer_server(
        &bin,
        "-addr",
        &["-max-conn-age", "3s", "-ka-min-time", "2s"],
    );
    for run in 0..2 {
        let (code, r, err, _) = doctor(&[&addr, "--budget", "20s"]);
        for key in ["idle_timeout", "idle_after_call"] {
            let f = finding(&r, key);
            assert_ne!(
                f["outcome"], "measured",
                "run {run}: max age called idle: {f:#}"
            );
        }
        assert_eq!(finding(&r, "max_age")["outcome"], "measured", "{r:#}");
        let min = finding(&r, "ping_min_interval");
        let not_measured = r["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["not_measured"] == true);
        match min["outcome"].as_str() {
            Some("measured") => {
                within("minimum PING interval", &min["value_ms"], 2000.0, 0.2);
                assert_eq!(code, 0, "run {run}: {err}\n{r:#}");
            }
            Some("not_measured") => {
                assert!(not_measured, "run {run}: {r:#}");
                assert_eq!(code, 3, "run {run}: {err}\n{r:#}");
            }
            other => panic!("run {run}: {other:?}: {min:#}"),
        }
    }
}

/// `value` within `rel` of `want` (probes that bisect to 10% land a step
/// either side of it).
fn within(what: &str, value: &Value, want: f64, rel: f64) {
    let v = value
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: no value ({value})"));
    assert!(
        (v - want).abs() <= want * rel,
        "{what}: {v} ms is not within {rel} of {want} ms"
    );
}

/// HAProxy's `timeout server` ends a call that waits for its response:
/// doctor's held call finds it, with the 504 HAProxy answers, and names
/// the proxy-timeout entry.
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn haproxy_timeout_server_ends_a_waiting_call() {
    let (Some(go), Some(haproxy)) = (peer("gogrpc-server"), peer("haproxy-grpc")) else {
        return;
    };
    let (_s, backend) = peer_server(&go, "-addr", &["-connlog=false"]);
    let listen = free_addr().to_string();
    let _haproxy = Proc::spawn(
        Command::new(haproxy)
            .args([&listen, &backend, "timeout server 2s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_listening(listen.parse().unwrap(), "haproxy");
    let (code, r, err, _) = doctor(&[&listen, "--budget", "8s", "--no-provoke"]);
    assert_eq!(code, 0, "{err}\n{r:#}");
    let f = finding(&r, "held_call_end");
    assert_eq!(f["outcome"], "measured", "{f:#}");
    within("held call", &f["value_ms"], 2000.0, 0.2);
    assert_eq!(f["by"], "proxy", "{f:#}");
    assert!(f["result"].as_str().unwrap().contains("504"), "{f:#}");
    let notes: Vec<&Value> = r["verdicts"].as_array().unwrap().iter().collect();
    assert!(
        notes.iter().any(|v| v["entry"] == "proxy-timeout"),
        "{notes:#?}"
    );
}

/// nginx's `grpc_read_timeout` ends a stream that waits for its next
/// message: it starts once the request is sent, so the held call (whose
/// request never ends) stays open, and the health Watch beside it (its
/// request sent whole, answered once, then quiet) is reset with
/// INTERNAL_ERROR after the timeout; doctor names the proxy-timeout entry.
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn nginx_grpc_read_timeout_ends_a_quiet_stream() {
    let (Some(go), Some(nginx)) = (peer("gogrpc-server"), peer("nginx-grpc")) else {
        return;
    };
    let (_s, backend) = peer_server(&go, "-addr", &["-connlog=false"]);
    let listen = free_addr().to_string();
    let _nginx = Proc::spawn(
        Command::new(nginx)
            .args([&listen, &backend, "grpc_read_timeout 2s;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_listening(listen.parse().unwrap(), "nginx");
    let (code, r, err, _) = doctor(&[&listen, "--budget", "8s", "--no-provoke"]);
    assert_eq!(code, 0, "{err}\n{r:#}");
    let f = finding(&r, "quiet_stream_end");
    assert_eq!(f["outcome"], "measured", "{f:#}");
    within("quiet stream", &f["value_ms"], 2000.0, 0.2);
    assert_eq!(f["by"], "proxy", "{f:#}");
    assert!(
        f["result"].as_str().unwrap().contains("INTERNAL_ERROR"),
        "{f:#}"
    );
    assert_eq!(finding(&r, "held_call_end")["outcome"], "none_seen");
    let notes: Vec<&Value> = r["verdicts"].as_array().unwrap().iter().collect();
    assert!(
        notes.iter().any(|v| v["entry"] == "proxy-timeout"
            && v["text"]
                .as_str()
                .unwrap()
                .contains("stream with no message")),
        "{notes:#?}"
    );
}
