//! `grpcdoc call` as users run it, against `grpcdoc serve` on loopback
//! (plaintext and TLS) and, with the peers, grpc-go 1.33's server: every
//! step with its time, each message of a stream, the certificate chain,
//! failures named by their catalogue entry, secrets redacted, list and
//! describe, exit codes.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};
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

/// Runs `grpcdoc call ARGS` (stdin: `input`), bounded to 30 s: exit code,
/// stdout, stderr.
fn call(args: &[&str], input: &str) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .arg("call")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn grpcdoc call");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("write stdin");
    drop(stdin);
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("grpcdoc call {args:?} ran over 30s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("output");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// `call ARGS -o json`: exit code and the record.
fn call_json(args: &[&str]) -> (i32, Value) {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let (code, out, err) = call(&all, "");
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (code, v)
}

/// The step lines of -v output: time and text.
fn step_lines(stderr: &str) -> Vec<(f64, String)> {
    stderr
        .lines()
        .filter_map(|l| {
            let (t, rest) = l.trim_start().split_once("ms  ")?;
            Some((t.parse().ok()?, rest.to_string()))
        })
        .collect()
}

/// The position of the first step line containing `what`, after `from`.
fn find(steps: &[(f64, String)], from: usize, what: &str) -> usize {
    steps[from..]
        .iter()
        .position(|(_, l)| l.contains(what))
        .map(|i| i + from)
        .unwrap_or_else(|| panic!("no step `{what}` after step {from}: {steps:#?}"))
}

#[test]
fn a_unary_call_with_v_shows_every_step_in_order_with_its_time() {
    let (_s, addr) = serve(&[]);
    let (code, out, err) = call(
        &[
            &addr,
            "helloworld.Greeter/SayHello",
            "-d",
            r#"{"name": "x"}"#,
            "-v",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let reply: Value = serde_json::from_str(&out).expect(&out);
    assert_eq!(reply["message"], "Hello x");
    let steps = step_lines(&err);
    let mut at = 0;
    for what in [
        "resolved",
        "TCP connected",
        "SETTINGS sent",
        "descriptors from reflection",
        "request headers",
        "HEADERS sent",
        "DATA sent",
        "HEADERS received",
        "response headers (HTTP 200)",
        "message 1: ",
        "trailers",
        "call ended OK",
        "GOAWAY sent",
        "closed",
    ] {
        at = find(&steps, at, what);
    }
    find(&steps, 0, "SETTINGS received");
    let times: Vec<f64> = steps.iter().map(|(t, _)| *t).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{err}");
    assert!(
        err.contains("> :path: /helloworld.Greeter/SayHello"),
        "{err}"
    );
    assert!(err.contains("< grpc-status: 0"), "{err}");
    assert!(err.lines().all(|l| l.chars().count() <= 100), "{err}");
}

#[test]
fn the_json_record_holds_the_steps_and_redacts_secrets() {
    let (_s, addr) = serve(&[]);
    let args = [
        addr.as_str(),
        "helloworld.Greeter/SayHello",
        "-d",
        r#"{"name": "x"}"#,
        "-H",
        "authorization: Bearer s3cr3t",
        "-H",
        "x-trace: t1",
    ];
    let (code, r) = call_json(&args);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["status"]["code"], "OK");
    assert_eq!(r["responses"][0]["message"], "Hello x");
    let kinds: Vec<&str> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    for k in [
        "resolve",
        "tcp_connect",
        "settings",
        "descriptors",
        "request_headers",
        "frame",
        "response_headers",
        "message",
        "trailers",
        "end",
        "goaway",
        "closed",
    ] {
        assert!(kinds.contains(&k), "{k} not in {kinds:?}");
    }
    let text = r.to_string();
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(text.contains("[redacted]") && text.contains("t1"), "{text}");
    let (code, _, err) = call(&[&args[..], &["-v"]].concat(), "");
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("> authorization: [redacted]"), "{err}");
    assert!(!err.contains("s3cr3t"), "{err}");
}

#[test]
fn a_server_stream_prints_every_message() {
    let (_s, addr) = serve(&[]);
    let (code, out, err) = call(
        &[
            &addr,
            "grpcdoc.echo.v1.Echo/ServerStream",
            "-d",
            r#"{"message": "m", "stream_count": 4}"#,
            "-v",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let msgs: Vec<Value> = serde_json::Deserializer::from_str(&out)
        .into_iter()
        .collect::<Result<_, _>>()
        .expect(&out);
    assert_eq!(msgs.len(), 4, "{out}");
    let received: Vec<u64> = msgs
        .iter()
        .map(|m| m["received"].as_u64().unwrap())
        .collect();
    assert_eq!(received, [1, 2, 3, 4]);
    let steps = step_lines(&err);
    let mut at = 0;
    for i in 1..=4 {
        at = find(&steps, at, &format!("< message {i}: "));
    }
    find(&steps, at, "call ended OK");
}

#[test]
fn a_client_stream_sends_each_message_given_one_after_another() {
    let (_s, addr) = serve(&[]);
    // grpcurl's form: objects one after another, here from stdin.
    let (code, out, err) = call(
        &[&addr, "grpcdoc.echo.v1.Echo/ClientStream", "-d", "-", "-v"],
        "{\"message\": \"a\"}\n{\"message\": \"b\"}\n{\"message\": \"c\"}\n",
    );
    assert_eq!(code, 0, "{err}");
    let reply: Value = serde_json::from_str(&out).expect(&out);
    assert_eq!(reply["received"], 3);
    assert_eq!(reply["message"], "c");
    let steps = step_lines(&err);
    find(&steps, find(&steps, 0, "> message 2: "), "> message 3: ");
}

#[test]
fn a_tls_call_shows_the_certificate_chain() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let (cert_path, key_path) = (cert_path.to_str().unwrap(), key_path.to_str().unwrap());
    let (_s, addr) = serve(&["--tls-cert", cert_path, "--tls-key", key_path]);
    let port = addr.rsplit(':').next().unwrap();
    let target = format!("https://localhost:{port}");
    let args = [
        target.as_str(),
        "helloworld.Greeter/SayHello",
        "--cacert",
        cert_path,
        "-v",
    ];
    let (code, out, err) = call(&args, "");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Hello"), "{out}");
    let steps = step_lines(&err);
    let tls = find(&steps, find(&steps, 0, "TCP connected"), "TLS handshake in");
    find(&steps, tls, "SETTINGS");
    let line = &steps[tls].1;
    assert!(
        line.contains("TLS 1.3") && line.contains("ALPN h2"),
        "{line}"
    );
    assert!(line.contains("TLS13_"), "cipher: {line}");
    for what in [
        "certificate 1: subject CN=rcgen self signed cert",
        "issuer CN=rcgen self signed cert",
        "valid from",
        "valid until",
        "days left",
    ] {
        assert!(err.contains(what), "{what}: {err}");
    }
    let (code, r) = call_json(&args[..4]);
    assert_eq!(code, 0, "{r:#}");
    let tls = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "tls_handshake")
        .expect("a tls_handshake step");
    assert_eq!(tls["alpn"], "h2");
    assert_eq!(tls["chain"].as_array().unwrap().len(), 1);
    assert!(tls["chain"][0]["not_before"].is_string(), "{tls:#}");
}

#[test]
fn a_refused_port_names_connection_refused() {
    let addr = free_addr().to_string();
    let (code, _, err) = call(&[&addr, "helloworld.Greeter/SayHello", "-v"], "");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("ERROR: UNAVAILABLE"), "{err}");
    assert!(err.contains("[connection-refused]"), "{err}");
    assert!(err.contains("no connection to"), "{err}");
    let (code, r) = call_json(&[&addr, "helloworld.Greeter/SayHello"]);
    assert_eq!(code, 1);
    assert_eq!(r["ok"], false);
    assert_eq!(r["explanations"][0]["id"], "connection-refused");
}

#[test]
fn a_tls_mismatch_names_tls_mismatch_both_ways() {
    // TLS to a plaintext server.
    let (_s, addr) = serve(&[]);
    let https = format!("https://{addr}");
    let (code, r) = call_json(&[&https, "helloworld.Greeter/SayHello", "--insecure"]);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["explanations"][0]["id"], "tls-mismatch", "{r:#}");
    // Plaintext to a TLS server.
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (c, k) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&c, cert.cert.pem()).unwrap();
    std::fs::write(&k, cert.key_pair.serialize_pem()).unwrap();
    let (_t, tls_addr) = serve(&[
        "--tls-cert",
        c.to_str().unwrap(),
        "--tls-key",
        k.to_str().unwrap(),
    ]);
    let (code, _, err) = call(&[&tls_addr, "helloworld.Greeter/SayHello", "-v"], "");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("[tls-mismatch]"), "{err}");
    assert!(err.contains("TCP connected"), "{err}");
}

#[test]
fn a_status_and_a_deadline_follow_into_the_exit_code() {
    let (_s, addr) = serve(&[]);
    let (code, _, err) = call(
        &[
            &addr,
            "grpcdoc.echo.v1.Echo/Unary",
            "-d",
            r#"{"status_code": 5, "status_message": "no such row"}"#,
        ],
        "",
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("ERROR: NOT_FOUND: no such row"), "{err}");
    let (code, r) = call_json(&[
        &addr,
        "grpcdoc.echo.v1.Echo/Unary",
        "-d",
        r#"{"delay": "5s"}"#,
        "--deadline",
        "300ms",
    ]);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["status"]["code"], "DEADLINE_EXCEEDED");
    assert_eq!(r["explanations"][0]["id"], "deadline", "{r:#}");
    let timeout = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "request_headers")
        .and_then(|s| {
            s["fields"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["name"] == "grpc-timeout")
                .cloned()
        })
        .expect("grpc-timeout sent");
    assert_eq!(timeout["value"], "300m");
}

#[test]
fn list_and_describe_work_as_grpcurls() {
    let (_s, addr) = serve(&[]);
    let (code, out, err) = call(&[&addr, "list"], "");
    assert_eq!(code, 0, "{err}");
    for s in [
        "grpc.health.v1.Health",
        "grpcdoc.echo.v1.Echo",
        "helloworld.Greeter",
    ] {
        assert!(out.lines().any(|l| l == s), "{s}: {out}");
    }
    let (code, out, _) = call(&[&addr, "list", "helloworld.Greeter"], "");
    assert_eq!((code, out.as_str()), (0, "helloworld.Greeter.SayHello\n"));
    let (code, out, _) = call(&[&addr, "describe", "helloworld.Greeter"], "");
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "helloworld.Greeter is a service:\nservice Greeter {\n  rpc SayHello ( .helloworld.HelloRequest ) returns ( .helloworld.HelloReply );\n}\n"
    );
    let (code, out, _) = call(&[&addr, "describe", "helloworld.HelloRequest"], "");
    assert_eq!(code, 0);
    assert!(
        out.contains("message HelloRequest {\n  string name = 1;\n}"),
        "{out}"
    );
    // From the protos instead of reflection.
    let proto = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/proto/helloworld/helloworld.proto"
    );
    let (code, out, err) = call(&[&addr, "list", "--proto", proto], "");
    assert_eq!((code, out.as_str()), (0, "helloworld.Greeter\n"), "{err}");
    let (code, out, err) = call(
        &[
            &addr,
            "helloworld.Greeter/SayHello",
            "--proto",
            proto,
            "-d",
            r#"{"name":"p"}"#,
            "-v",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Hello p"), "{out}");
    assert!(err.contains("descriptors from 1 .proto file(s)"), "{err}");
}

#[test]
fn bad_input_exits_2_with_what_and_where() {
    let (_s, addr) = serve(&[]);
    let m = "helloworld.Greeter/SayHello";
    for (args, says) in [
        (vec![addr.as_str(), m, "-d", "{\"nam\": 1}"], "-d:1:"),
        (vec![addr.as_str(), m, "-d", "{\"name\": "], "-d:1:"),
        (
            vec![addr.as_str(), "helloworld.Greeter/Nope"],
            "no method helloworld.Greeter/Nope",
        ),
        (vec![addr.as_str(), "nope.Svc/M"], "no service `nope.Svc`"),
        (vec![addr.as_str(), "Greeter"], "is not a method"),
        (
            vec![addr.as_str(), m, "-d", "@/no/such/file.json"],
            "/no/such/file.json",
        ),
        (
            vec![addr.as_str(), "describe", "no.Such"],
            "no symbol `no.Such`",
        ),
        (vec![addr.as_str(), m, "extra"], "unexpected `extra`"),
        (vec![addr.as_str(), m, "--deadline", "soon"], "soon"),
        (
            vec![addr.as_str(), m, "--proto", "/no/such.proto"],
            "cannot read --proto",
        ),
    ] {
        let (code, out, err) = call(&args, "");
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // Found after connecting: with -v the steps until then come first.
    let (code, out, err) = call(&[addr.as_str(), "helloworld.Greeter/Nope", "-v"], "");
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty(), "{out}");
    let steps = step_lines(&err);
    find(&steps, 0, "TCP");
    assert!(err.contains("no method helloworld.Greeter/Nope"), "{err}");
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn a_call_to_grpc_go_shows_every_step() {
    let Some(bin) = peer("gogrpc-server") else {
        return;
    };
    let addr = free_addr().to_string();
    let _go = Proc::spawn(
        Command::new(bin)
            .args(["-addr", &addr])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_listening(addr.parse().unwrap(), "gogrpc-server");
    let (code, out, err) = call(
        &[
            &addr,
            "helloworld.Greeter/SayHello",
            "-d",
            r#"{"name":"go"}"#,
            "-v",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("go"), "{out}");
    let steps = step_lines(&err);
    let mut at = 0;
    for what in [
        "resolved",
        "TCP connected",
        "SETTINGS received",
        "descriptors from reflection",
        "HEADERS sent",
        "response headers (HTTP 200)",
        "message 1: ",
        "trailers",
        "call ended OK",
    ] {
        at = find(&steps, at, what);
    }
    assert!(err.contains("< grpc-status: 0"), "{err}");
    let (code, out, _) = call(&[&addr, "list"], "");
    assert_eq!(code, 0);
    assert!(out.contains("helloworld.Greeter"), "{out}");
}

/// `watch`'s probes carry `-H` as calls do: the built-in server delays
/// its answer by `x-delay-ms` (1.5 s), past the probes' deadline (0.5 s).
#[test]
fn watch_probes_send_the_metadata_given_with_h() {
    let (_s, addr) = serve(&[]);
    let watch = |extra: &[&str]| -> Vec<String> {
        let mut args = vec![
            "watch",
            addr.as_str(),
            "--probe",
            "grpcdoc.echo.v1.Echo/Unary",
            "--probe-interval",
            "500ms",
            "--for",
            "2s",
            "-o",
            "json",
        ];
        args.extend_from_slice(extra);
        let out = Command::new(BIN).args(&args).output().expect("watch");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["kind"] == "rpc")
            .map(|e| e["code"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let plain = watch(&[]);
    // A probe may miss its deadline on a busy machine; most answer.
    assert!(plain.iter().any(|c| c == "OK"), "{plain:?}");
    let delayed = watch(&["-H", "x-delay-ms: 1500"]);
    assert!(
        !delayed.is_empty() && delayed.iter().all(|c| c == "DEADLINE_EXCEEDED"),
        "{delayed:?}"
    );
}

/// Ctrl-C ends a hung call and shows where it hung, exit 130.
#[test]
fn an_interrupted_call_shows_its_steps_so_far() {
    let (_s, addr) = serve(&[]);
    let child = Command::new(BIN)
        .args([
            "call",
            &addr,
            "grpcdoc.echo.v1.Echo/Unary",
            "-d",
            r#"{"delay": "20s"}"#,
            "-v",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut child = Proc::adopt(child);
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: a signal to the process this test started.
    unsafe { libc::kill(child.child.id() as i32, libc::SIGINT) };
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no exit after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    let steps = step_lines(&err);
    let sent = find(&steps, 0, "DATA sent");
    find(&steps, sent, "call ended CANCELLED");
    find(&steps, sent, "RST_STREAM sent stream");
}

/// A drain during the call shows among the steps (GOAWAY, PING, the
/// second GOAWAY), and -v says what it was although the call ended OK.
#[test]
fn a_drain_during_a_stream_shows_in_its_steps() {
    let (_s, addr) = serve(&[
        "--max-connection-age",
        "700ms",
        "--max-connection-age-grace",
        "10s",
    ]);
    let (code, out, err) = call(
        &[
            &addr,
            "grpcdoc.echo.v1.Echo/ServerStream",
            "-d",
            r#"{"stream_count": 5, "stream_interval": "0.3s"}"#,
            "-v",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.matches("\"received\"").count(), 5, "{out}");
    let steps = step_lines(&err);
    let first = find(&steps, 0, "< message 1: ");
    let goaway = find(
        &steps,
        first,
        "GOAWAY received NO_ERROR last_stream_id=2147483647",
    );
    let ping = find(&steps, goaway, "< PING received");
    let last = find(&steps, ping, "GOAWAY received NO_ERROR");
    find(&steps, last, "< message 5: ");
    find(&steps, last, "call ended OK");
    assert!(err.contains("[max-age-drain]"), "{err}");
}

/// `google.rpc.Status`, as a server puts it in grpc-status-details-bin.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

/// A Greeter that fails every call NOT_FOUND with status details.
struct Detailed;

#[tonic::async_trait]
impl grpcdoc::pb::helloworld::greeter_server::Greeter for Detailed {
    async fn say_hello(
        &self,
        _: tonic::Request<grpcdoc::pb::helloworld::HelloRequest>,
    ) -> Result<tonic::Response<grpcdoc::pb::helloworld::HelloReply>, tonic::Status> {
        use prost::Message;
        let why = grpcdoc::pb::helloworld::HelloReply {
            message: "nobody by that name".into(),
        };
        let details = RpcStatus {
            code: tonic::Code::NotFound as i32,
            message: "no such name".into(),
            details: vec![prost_types::Any {
                type_url: "type.googleapis.com/helloworld.HelloReply".into(),
                value: why.encode_to_vec(),
            }],
        };
        Err(tonic::Status::with_details(
            tonic::Code::NotFound,
            "no such name",
            details.encode_to_vec().into(),
        ))
    }
}

/// Status details in the trailers are read as google.rpc.Status, each
/// detail as JSON when the descriptors know its type (a tonic server,
/// in-process, over a loopback socket).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_details_are_read_as_google_rpc_status() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(grpcdoc::pb::helloworld::greeter_server::GreeterServer::new(
                Detailed,
            ))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = stop_rx.await;
                },
            ),
    );
    let proto = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/proto/helloworld/helloworld.proto"
    );
    let (human, json) = tokio::task::spawn_blocking(move || {
        let args = [
            addr.as_str(),
            "helloworld.Greeter/SayHello",
            "--proto",
            proto,
        ];
        let human = call(&[&args[..], &["-v"]].concat(), "");
        let json = call_json(&args);
        (human, json)
    })
    .await
    .unwrap();
    let _ = stop_tx.send(());
    let _ = server.await;
    let (code, _, err) = human;
    assert_eq!(code, 1, "{err}");
    // Trailers-only: the status comes in the response headers.
    assert!(err.contains("< grpc-status-details-bin:"), "{err}");
    assert!(err.contains("= google.rpc.Status"), "{err}");
    assert!(err.contains("ERROR: NOT_FOUND: no such name"), "{err}");
    assert!(err.contains("details (google.rpc.Status)"), "{err}");
    assert!(err.contains("nobody by that name"), "{err}");
    let (code, r) = json;
    assert_eq!(code, 1);
    let d = &r["status"]["details"];
    assert_eq!(d["code"], "NOT_FOUND", "{r:#}");
    assert_eq!(d["message"], "no such name");
    assert_eq!(
        d["details"][0]["@type"],
        "type.googleapis.com/helloworld.HelloReply"
    );
    assert_eq!(d["details"][0]["value"]["message"], "nobody by that name");
}

#[test]
fn a_name_that_does_not_resolve_names_name_resolution() {
    let (code, r) = call_json(&["no-such-host.invalid:50051", "helloworld.Greeter/SayHello"]);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["steps"][0]["kind"], "resolve");
    assert!(r["steps"][0]["error"].is_string(), "{r:#}");
    assert_eq!(r["explanations"][0]["id"], "name-resolution", "{r:#}");
}

/// Through a real nginx whose upstream is down: reflection (and the call)
/// meet nginx's 502 error page, named proxy-no-upstream.
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn an_error_page_from_nginx_names_proxy_no_upstream() {
    let Some(bin) = peer("nginx-grpc") else {
        return;
    };
    let (listen, upstream) = (free_addr().to_string(), free_addr().to_string());
    let _nginx = Proc::spawn(
        Command::new(bin)
            .args([&listen, &upstream])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_listening(listen.parse().unwrap(), "nginx");
    let (code, r) = call_json(&[&listen, "helloworld.Greeter/SayHello"]);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["status"]["cause"], "http:502", "{r:#}");
    assert_eq!(r["explanations"][0]["id"], "proxy-no-upstream", "{r:#}");
    let proto = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/proto/helloworld/helloworld.proto"
    );
    let (code, _, err) = call(
        &[
            &listen,
            "helloworld.Greeter/SayHello",
            "--proto",
            proto,
            "-v",
        ],
        "",
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("< response headers (HTTP 502)"), "{err}");
    assert!(err.contains("< content-type: text/html"), "{err}");
    assert!(err.contains("[proxy-no-upstream]"), "{err}");
}

/// Addresses are tried in turn until one connects, each attempt a step.
#[test]
fn the_addresses_are_tried_in_turn() {
    let (_s, addr) = serve(&[]);
    let port = addr.rsplit(':').next().unwrap();
    // Nothing listens on 127.0.0.2 (the server is bound to 127.0.0.1).
    let target = format!("127.0.0.2:{port},{addr}");
    let (code, out, err) = call(&[&target, "helloworld.Greeter/SayHello", "-v"], "");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Hello"), "{out}");
    let steps = step_lines(&err);
    let refused = find(&steps, 0, &format!("no connection to 127.0.0.2:{port}"));
    find(&steps, refused, &format!("TCP connected to {addr}"));
    assert!(err.contains("[connection-refused]"), "{err}");
}
