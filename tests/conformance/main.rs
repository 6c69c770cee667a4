//! Conformance tier: the failure catalogue checked against the real gRPC
//! stacks. For each catalogue entry a loopback setup can produce, the real
//! clients from `../shared/peers` - `gogrpc-watch` (grpc-go 1.33),
//! `grpcurl` (grpc-go 1.44), `k6` (grpc-go 1.73), `pygrpc-watch` (C-core
//! 1.85) - make one call each against the real servers (or `grpcdoc serve`),
//! through `grpcdoc proxy` or real nginx where the entry is a middlebox, and
//! the test checks that
//!   (a) each client printed the message (and code) the catalogue lists for
//!       its stack, so the table cannot drift from reality;
//!   (b) `grpcdoc explain` on that message names the entry first;
//!   (c) grpcdoc's own `load` or `watch` on the same setup names the entry.
//! Each case prints its row (stack, code, message, a/b) on stderr.
//! Needs the peers (`PEERS_HOME`); without them each case says so and
//! returns, unless `GRPCDOC_REQUIRE_PEERS=1` (set by `.ci/run`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[path = "../common/mod.rs"]
mod common;

use common::{free_addr, peer, wait_listening};
use grpcdoc::catalogue::{entry, find, EntryId, Stack};
use grpcdoc::explain::{read, Verdict};

const BIN: &str = env!("CARGO_BIN_EXE_grpcdoc");
/// helloworld.proto: grpcdoc's own copy of the wire definition the peers
/// serve, so no test depends on where the peers' sources are.
const PROTO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/proto/helloworld");
/// Every peer the tier uses, or None (skipped).
struct Peers {
    go133: PathBuf,
    grpcurl: PathBuf,
    k6: PathBuf,
    core: PathBuf,
    go_server: PathBuf,
    core_server: PathBuf,
    nginx: PathBuf,
    haproxy: PathBuf,
}

fn peers() -> Option<Peers> {
    Some(Peers {
        go133: peer("gogrpc-watch")?,
        grpcurl: peer("grpcurl")?,
        k6: peer("k6")?,
        core: peer("pygrpc-watch")?,
        go_server: peer("gogrpc-server")?,
        core_server: peer("pygrpc-server")?,
        nginx: peer("nginx-grpc")?,
        haproxy: peer("haproxy-grpc")?,
    })
}
/// A server or proxy process, killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(bin: &PathBuf, args: &[String], listens: SocketAddr) -> Proc {
    let child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let p = Proc(child);
    wait_listening(listens, &format!("{bin:?}"));
    p
}

/// The grpc-go peer server with these extra flags, on a free port.
fn go_server(p: &Peers, extra: &[&str]) -> (Proc, SocketAddr) {
    let addr = free_addr();
    let mut args = vec![
        "-addr".to_string(),
        addr.to_string(),
        "-connlog=false".into(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    (spawn(&p.go_server, &args, addr), addr)
}

/// The grpc-go peer server behind `grpcdoc proxy --fault FAULT`; the
/// processes (kept alive while held) and the proxy's address.
fn go_behind_proxy(p: &Peers, fault: &str) -> (Proc, Proc, SocketAddr) {
    let (server, up) = go_server(p, &[]);
    let (proxy, listen) = proxy_to(up, fault);
    (server, proxy, listen)
}

/// `grpcdoc proxy --fault FAULT` in front of `up`; the process and its
/// address.
fn proxy_to(up: SocketAddr, fault: &str) -> (Proc, SocketAddr) {
    let listen = free_addr();
    let args = [
        "proxy",
        "--listen",
        &listen.to_string(),
        "--upstream",
        &up.to_string(),
    ]
    .into_iter()
    .chain(["--fault", fault, "--for", "60s"])
    .map(String::from)
    .collect::<Vec<_>>();
    (spawn(&PathBuf::from(BIN), &args, listen), listen)
}

/// One client's failed call: the status code (canonical name, empty when
/// the client printed none) and the message.
#[derive(Clone, Debug)]
struct Said {
    stack: Stack,
    code: String,
    message: String,
}

/// `DeadlineExceeded` or `Canceled` (grpc-go) as the canonical name.
fn canonical(code: &str) -> String {
    if code == "Canceled" {
        return "CANCELLED".into();
    }
    let mut out = String::new();
    for (i, c) in code.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 && !code.contains('_') {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn unescape(s: &str, quote: char) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n) if n == quote || n == '\\' => out.push(n),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%' && i + 2 < b.len())
            .then(|| std::str::from_utf8(&b[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn go133(out: &str) -> Option<Said> {
    let line = out.lines().find(|l| l.contains(" ERROR code="))?;
    let rest = &line[line.find(" ERROR code=")? + 12..];
    let (code, rest) = rest.split_once(" desc=\"")?;
    let end = rest.rfind("\" (")?;
    Some(Said {
        stack: Stack::GrpcGo133,
        code: canonical(code),
        message: unescape(&rest[..end], '"'),
    })
}

fn grpcurl(out: &str) -> Option<Said> {
    let code = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Code: "))
        .map(canonical)
        .unwrap_or_default();
    let message = match out.lines().find_map(|l| l.trim().strip_prefix("Message: ")) {
        Some(m) => m.to_string(),
        None => out.lines().find(|l| l.starts_with("Failed"))?.to_string(),
    };
    Some(Said {
        stack: Stack::GrpcGo144,
        code,
        message,
    })
}

fn k6_said(out: &str) -> Option<Said> {
    let line = out.lines().find(|l| l.contains("RESULT "))?;
    let rest = &line[line.find("RESULT ")? + 7..];
    let mut parts = rest.split_whitespace();
    let code = parts.next()?;
    let msg = parts.next().unwrap_or("");
    let code = code
        .parse::<i32>()
        .map(|c| grpcdoc::grpc::code_name(tonic::Code::from_i32(c)).to_string())
        .unwrap_or_default();
    Some(Said {
        stack: Stack::GrpcGo173,
        code,
        message: pct_decode(msg.trim_end_matches('"')),
    })
}

fn core(out: &str) -> Option<Said> {
    let line = out.lines().find(|l| l.contains(" ERROR code="))?;
    let rest = &line[line.find(" ERROR code=")? + 12..];
    let (code, rest) = rest.split_once(" details=")?;
    let quote = rest.chars().next()?;
    let body = &rest[1..];
    let end = body.find(&format!("{quote} debug_error_string="))?;
    Some(Said {
        stack: Stack::CCore185,
        code: code.to_string(),
        message: unescape(&body[..end], quote),
    })
}

const K6_SCRIPT: &str = r#"
import grpc from 'k6/net/grpc';
const client = new grpc.Client();
client.load([__ENV.PROTO_DIR], 'helloworld.proto');
export const options = { vus: 1, iterations: 1 };
export default function () {
  try {
    client.connect(__ENV.ADDR, { plaintext: true, timeout: '3s' });
  } catch (e) {
    const m = String(e.message || e).replace(/^GoError: /, '');
    console.log(`RESULT none ${encodeURIComponent(m)}`);
    return;
  }
  const md = {};
  if (__ENV.DELAY !== '0') { md['x-delay-ms'] = __ENV.DELAY; }
  const res = client.invoke('helloworld.Greeter/SayHello', { name: 'x' },
    { metadata: md, timeout: __ENV.TIMEOUT });
  const m = res.error ? res.error.message : '';
  const c = res.error ? res.error.code : 0;
  console.log(`RESULT ${c} ${encodeURIComponent(m)}`);
  client.close();
}
"#;

/// Starts the four clients, one call each to `addr` with the server delay
/// `delay_ms` and the deadline `timeout_s`; `during` runs while they call.
/// Returns what each printed.
fn four_clients(
    p: &Peers,
    addr: &str,
    delay_ms: u64,
    timeout_s: u64,
    during: impl FnOnce(),
) -> Vec<Said> {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("call.js");
    std::fs::write(&script, K6_SCRIPT).unwrap();
    let run = |mut c: Command| {
        std::thread::spawn(move || {
            let out = c.stdin(Stdio::null()).output().expect("run client");
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    };
    let d = delay_ms.to_string();
    let mut go = Command::new(&p.go133);
    go.args(["-addr", addr, "-interval", "100ms", "-n", "1"])
        .args(["-duration", &format!("{}s", timeout_s + 3)])
        .args(["-timeout", &format!("{timeout_s}s")])
        .args(["-delay-ms", &d]);
    let mut curl = Command::new(&p.grpcurl);
    curl.args(["-plaintext", "-max-time", &timeout_s.to_string()])
        .args(["-import-path", PROTO_DIR, "-proto", "helloworld.proto"])
        .args(["-H", &format!("x-delay-ms: {d}")])
        .args(["-d", r#"{"name":"x"}"#, addr, "helloworld.Greeter/SayHello"]);
    let mut k6 = Command::new(&p.k6);
    k6.args(["run", "-q", "--no-usage-report"])
        .arg(&script)
        .env("PROTO_DIR", PROTO_DIR)
        .env("ADDR", addr)
        .env("DELAY", &d)
        .env("TIMEOUT", format!("{timeout_s}s"));
    let mut py = Command::new(&p.core);
    py.args(["--addr", addr, "--interval", "0.1", "-n", "1"])
        .args(["--duration", &(timeout_s + 3).to_string()])
        .args(["--timeout", &timeout_s.to_string()])
        .args(["--delay-ms", &d]);
    let threads = [run(go), run(curl), run(k6), run(py)];
    during();
    let outs: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let parsed = [
        go133(&outs[0]),
        grpcurl(&outs[1]),
        k6_said(&outs[2]),
        core(&outs[3]),
    ];
    parsed
        .into_iter()
        .zip(&outs)
        .map(|(s, out)| s.unwrap_or_else(|| panic!("no failed call in:\n{out}")))
        .collect()
}

/// Checks (a) and (b) for every client; prints the rows.
fn check_clients(id: &str, said: &[Said]) {
    let eid: EntryId = id.parse().unwrap_or_else(|e| panic!("{e}"));
    let e = entry(eid);
    for s in said {
        let listed: Vec<_> = e.says.iter().filter(|x| x.stack == s.stack).collect();
        let a = (!listed.is_empty()).then(|| {
            listed.iter().any(|l| {
                find(l.message, &s.message).is_some()
                    && (s.code.is_empty() || l.code.is_empty() || l.code == s.code)
            })
        });
        // (b): a message that proves one entry names this one; a generic
        // message lists it among the entries it fits.
        let found = read(&s.message);
        let b = match found.verdict {
            Verdict::One => found.findings.first().is_some_and(|f| f.id == eid),
            Verdict::Several => found.findings.iter().any(|f| f.id == eid),
            Verdict::None => false,
        };
        eprintln!(
            "conformance | {id} | {} | {} | {:?} | a={} b={b}",
            s.stack.name(),
            s.code,
            s.message,
            match a {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "not listed",
            }
        );
        if let Some(a) = a {
            assert!(
                a,
                "{id}: {} said {} {:?}; the catalogue lists {:?}",
                s.stack.name(),
                s.code,
                s.message,
                listed
            );
            assert!(b, "{id}: explain on {:?} ranks {found:?}", s.message);
        }
    }
}

/// `grpcdoc load` (JSON report) with these extra arguments.
fn load(addr: &str, extra: &[&str]) -> serde_json::Value {
    let out = Command::new(BIN)
        .args(["load", addr, "--proto"])
        .arg(format!("{PROTO_DIR}/helloworld.proto"))
        .args(["--call", "helloworld.Greeter/SayHello", "-o", "json"])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "load report ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// (c): the load report's causes name the entry.
fn load_names(id: &str, r: &serde_json::Value) {
    let ids: Vec<&str> = r["causes"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["id"].as_str()).collect())
        .unwrap_or_default();
    eprintln!(
        "conformance | {id} | grpcdoc load | causes {ids:?} | c={}",
        ids.contains(&id)
    );
    assert!(ids.contains(&id), "{id}: grpcdoc load named {ids:?}: {r}");
}

/// (c): `grpcdoc watch` explains with the entry.
fn watch_names(id: &str, addr: &str) {
    let out = Command::new(BIN)
        .args(["watch", addr, "--for", "1500ms", "-o", "json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let ids: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["kind"] == "explanation")
        .filter_map(|e| e["id"].as_str().map(String::from))
        .collect();
    eprintln!(
        "conformance | {id} | grpcdoc watch | explanations {ids:?} | c={}",
        ids.iter().any(|i| i == id)
    );
    assert!(
        ids.iter().any(|i| i == id),
        "{id}: grpcdoc watch named {ids:?}:\n{text}"
    );
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn connection_refused() {
    let Some(p) = peers() else { return };
    let addr = free_addr().to_string();
    let said = four_clients(&p, &addr, 0, 3, || {});
    check_clients("connection-refused", &said);
    watch_names("connection-refused", &addr);
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn server_crash() {
    let Some(p) = peers() else { return };
    let addr = free_addr();
    let args = |a: SocketAddr| vec!["-addr".to_string(), a.to_string(), "-connlog=false".into()];
    let mut server = spawn(&p.go_server, &args(addr), addr);
    let said = four_clients(&p, &addr.to_string(), 4000, 8, || {
        std::thread::sleep(Duration::from_millis(1500));
        let _ = server.0.kill();
    });
    check_clients("server-crash", &said);
    // grpcdoc load, its calls in flight when the server is killed.
    let mut server = spawn(&p.go_server, &args(addr), addr);
    let target = addr.to_string();
    let load = std::thread::spawn(move || {
        load(
            &target,
            &[
                "-H",
                "x-delay-ms: 4000",
                "-n",
                "4",
                "-c",
                "4",
                "--timeout",
                "8s",
            ],
        )
    });
    std::thread::sleep(Duration::from_millis(1500));
    let _ = server.0.kill();
    load_names("server-crash", &load.join().unwrap());
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn rst_stream_cancel() {
    let Some(p) = peers() else { return };
    let (_server, _proxy, listen) = go_behind_proxy(&p, "inject-rst-stream:code=CANCEL");
    let said = four_clients(&p, &listen.to_string(), 0, 5, || {});
    check_clients("rst-stream", &said);
    load_names("rst-stream", &load(&listen.to_string(), &["-n", "5"]));
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn proxy_timeout_from_nginx() {
    let Some(p) = peers() else { return };
    let (_server, up) = go_server(&p, &[]);
    let listen = free_addr();
    let _nginx = spawn(
        &p.nginx,
        &[
            listen.to_string(),
            up.to_string(),
            "grpc_read_timeout 1s;".into(),
        ],
        listen,
    );
    let said = four_clients(&p, &listen.to_string(), 3000, 8, || {});
    check_clients("proxy-timeout", &said);
    load_names(
        "proxy-timeout",
        &load(
            &listen.to_string(),
            &["-H", "x-delay-ms: 3000", "-n", "2", "-c", "2"],
        ),
    );
}

/// A server started with `flags` (its address flag first); the four clients
/// call it with the server delay `delay_ms` and the deadline `timeout_s`,
/// (a) and (b) for `id`; then (c): grpcdoc load, the same calls, names it.
fn server_case(bin: &PathBuf, flags: &[&str], id: &str, delay_ms: u64, timeout_s: u64) {
    let p = peers().expect("peers");
    let addr = free_addr();
    let mut args = vec![flags[0].to_string(), addr.to_string()];
    args.extend(flags[1..].iter().map(|f| f.to_string()));
    let _server = spawn(bin, &args, addr);
    let said = four_clients(&p, &addr.to_string(), delay_ms, timeout_s, || {});
    check_clients(id, &said);
    let delay = format!("x-delay-ms: {delay_ms}");
    let timeout = format!("{timeout_s}s");
    let extra = ["-H", &delay, "-n", "2", "-c", "2", "--timeout", &timeout];
    load_names(id, &load(&addr.to_string(), &extra));
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn max_age_grace_on_c_core() {
    let Some(p) = peers() else { return };
    let flags = [
        "--addr",
        "--max-connection-age-ms",
        "1000",
        "--max-connection-age-grace-ms",
        "1000",
    ];
    server_case(&p.core_server, &flags, "max-age-grace-c-core", 4000, 8);
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn drain_cut_by_grpc_go_max_age_grace() {
    let Some(p) = peers() else { return };
    let flags = [
        "-addr",
        "-connlog=false",
        "-max-conn-age",
        "1s",
        "-max-conn-age-grace",
        "1s",
    ];
    server_case(&p.go_server, &flags, "drain-cut", 4000, 8);
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn deadline_exceeded() {
    let Some(p) = peers() else { return };
    server_case(
        &p.go_server,
        &["-addr", "-connlog=false"],
        "deadline",
        3000,
        1,
    );
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn plaintext_client_to_a_tls_server() {
    let Some(p) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (c, k) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    let addr = free_addr();
    let _server = spawn(
        &PathBuf::from(BIN),
        &[
            "serve".into(),
            "--listen".into(),
            addr.to_string(),
            "--tls-cert".into(),
            c.display().to_string(),
            "--tls-key".into(),
            k.display().to_string(),
            "--for".into(),
            "60s".into(),
        ],
        addr,
    );
    let said = four_clients(&p, &addr.to_string(), 0, 3, || {});
    check_clients("tls-mismatch", &said);
    watch_names("tls-mismatch", &addr.to_string());
}

/// C-core's idle timeout (GOAWAY INTERNAL_ERROR "connection idle") and
/// grpc-go's (NO_ERROR "max_idle"): no client prints an error for them
/// unless a call races them, so (a) and (b) have nothing to check; (c)
/// grpcdoc watch names the idle timeout for both, not "look at the
/// server's logs".
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn idle_timeouts_of_c_core_and_grpc_go() {
    let Some(p) = peers() else { return };
    let core = free_addr();
    let _core = spawn(
        &p.core_server,
        &[
            "--addr".into(),
            core.to_string(),
            "--max-connection-idle-ms".into(),
            "1500".into(),
        ],
        core,
    );
    let go = free_addr();
    let _go = spawn(
        &p.go_server,
        &[
            "-addr".into(),
            go.to_string(),
            "-connlog=false".into(),
            "-max-conn-idle".into(),
            "1500ms".into(),
        ],
        go,
    );
    for addr in [core, go] {
        let out = Command::new(BIN)
            .args([
                "watch",
                &addr.to_string(),
                "--probe",
                "none",
                "--for",
                "2500ms",
                "-o",
                "json",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let goaway = text
            .lines()
            .find(|l| l.contains("\"kind\":\"goaway\",\"dir\":\"received\""))
            .unwrap_or_else(|| panic!("an idle GOAWAY from {addr}:\n{text}"));
        let ids: Vec<String> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["kind"] == "explanation")
            .filter_map(|e| e["id"].as_str().map(String::from))
            .collect();
        eprintln!("conformance | idle-timeout | grpcdoc watch | {goaway} | ids {ids:?}");
        assert!(
            ids.iter().any(|i| i == "idle-timeout"),
            "{addr}: {ids:?}\n{text}"
        );
    }
}

/// A grpc-go 1.33 client (the one stack here that pings every second: grpcurl
/// raises keepalive to 10 s, k6 has no keepalive, C-core throttles pings on a
/// call without data) with one call in flight.
fn go133_call(bin: &PathBuf, addr: &str, extra: &[&str]) -> Said {
    let out = Command::new(bin)
        .args([
            "-addr",
            addr,
            "-interval",
            "100ms",
            "-n",
            "1",
            "-duration",
            "8s",
        ])
        .args(["-timeout", "7s", "-delay-ms", "6000"])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    go133(&text).unwrap_or_else(|| panic!("no failed call:\n{text}"))
}

/// `grpcdoc watch` with these flags; the catalogue ids it explained with.
fn watch_ids(addr: &str, flags: &[&str], during: impl FnOnce()) -> Vec<String> {
    let child = Command::new(BIN)
        .args(["watch", addr, "-o", "json"])
        .args(flags)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    during();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["kind"] == "explanation")
        .filter_map(|e| e["id"].as_str().map(String::from))
        .collect()
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn too_many_pings_from_grpc_go() {
    let Some(p) = peers() else { return };
    let (_server, addr) = go_server(&p, &[]);
    let said = go133_call(&p.go133, &addr.to_string(), &["-ka-time", "1s"]);
    check_clients("too-many-pings", &[said]);
    let ids = watch_ids(
        &addr.to_string(),
        &[
            "--probe",
            "none",
            "--keepalive-time",
            "1s",
            "--keepalive-permit-without-stream",
            "--for",
            "5s",
        ],
        || {},
    );
    eprintln!("conformance | too-many-pings | grpcdoc watch | explanations {ids:?}");
    assert!(ids.iter().any(|i| i == "too-many-pings"), "{ids:?}");
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn keepalive_timeout_against_a_stopped_grpc_go_server() {
    let Some(p) = peers() else { return };
    let addr = free_addr();
    let args: Vec<String> = [
        "-addr",
        &addr.to_string(),
        "-connlog=false",
        "-ka-min-time",
        "1ns",
        "-ka-permit-without-stream",
    ]
    .map(String::from)
    .to_vec();
    let server = spawn(&p.go_server, &args, addr);
    let pid = server.0.id().to_string();
    let stop = |sig: &str| {
        let _ = Command::new("kill").args([sig, &pid]).status();
    };
    let target = addr.to_string();
    let go = {
        let (bin, target) = (p.go133.clone(), target.clone());
        std::thread::spawn(move || {
            go133_call(&bin, &target, &["-ka-time", "1s", "-ka-timeout", "1s"])
        })
    };
    let ids = watch_ids(
        &target,
        &[
            "--probe",
            "none",
            "--keepalive-time",
            "1s",
            "--keepalive-timeout",
            "1s",
            "--keepalive-permit-without-stream",
            "--for",
            "5s",
        ],
        || {
            std::thread::sleep(Duration::from_millis(1000));
            stop("-STOP");
        },
    );
    let said = go.join().unwrap();
    stop("-CONT");
    check_clients("keepalive-timeout", &[said]);
    eprintln!("conformance | keepalive-timeout | grpcdoc watch | explanations {ids:?}");
    assert!(ids.iter().any(|i| i == "keepalive-timeout"), "{ids:?}");
}

/// (c) only: `grpcdoc watch` with `flags` against a grpc-go server that gets
/// `signal` `after_ms` into the watch names `id`.
fn signalled_grpc_go_names(id: &str, flags: &[&str], signal: &str, after_ms: u64) {
    let p = peers().expect("peers");
    let (server, addr) = go_server(&p, &[]);
    let pid = server.0.id().to_string();
    let ids = watch_ids(&addr.to_string(), flags, || {
        std::thread::sleep(Duration::from_millis(after_ms));
        let _ = Command::new("kill").args([signal, &pid]).status();
    });
    eprintln!("conformance | {id} | grpcdoc watch | explanations {ids:?}");
    assert!(ids.iter().any(|i| i == id), "{ids:?}");
}

/// A grpc-go server whose health service says NOT_SERVING (SIGUSR1): no
/// client prints an error for it (health-checking clients just send no
/// calls); (c) grpcdoc watch with health checking names it.
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn health_not_serving_from_grpc_go() {
    if peers().is_none() {
        return;
    }
    let flags = ["--health-service", "", "--for", "2s"];
    signalled_grpc_go_names("health-not-serving", &flags, "-USR1", 700);
}

/// A grpc-go server stopping gracefully (SIGTERM: GracefulStop) while watch
/// probes it: GOAWAY 2^31-1 without debug data on a busy connection, then
/// the last stream; (c) watch names a graceful stop. No client prints an
/// error for it.
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn graceful_stop_of_grpc_go() {
    if peers().is_none() {
        return;
    }
    let flags = ["--probe-interval", "200ms", "--for", "2s"];
    signalled_grpc_go_names("graceful-stop", &flags, "-TERM", 800);
}

/// More calls than the grpc-go server's stream limit on one connection:
/// the ones that spend their deadline queued for a slot are the stream
/// limit (c); grpc-go's client says only "context deadline exceeded" (the
/// deadline entry's message).
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn stream_limit_queue_at_grpc_go() {
    let Some(p) = peers() else { return };
    let addr = free_addr();
    let _server = spawn(
        &p.go_server,
        &[
            "-addr".into(),
            addr.to_string(),
            "-connlog=false".into(),
            "-max-concurrent-streams".into(),
            "1".into(),
        ],
        addr,
    );
    let extra = [
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
    ];
    load_names("stream-limit-queue", &load(&addr.to_string(), &extra));
}

/// Calls that cross a GOAWAY (the proxy sends one as each connection
/// starts, announcing the last stream it gave the grpc-go server, and
/// refuses the rest): never processed, safe to
/// retry; gRPC clients retry them transparently, so none prints an error;
/// (c) grpcdoc load without transparent retry names the race.
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn goaway_race_through_a_proxy() {
    let Some(p) = peers() else { return };
    let (_server, _proxy, listen) = go_behind_proxy(&p, "inject-goaway:direction=downstream");
    let extra = ["--no-transparent-retry", "-c", "4", "-z", "1s"];
    load_names("goaway-race", &load(&listen.to_string(), &extra));
}

/// A 5 MB request against the grpc-go and C-core servers' 4 MiB limit,
/// sent with grpcurl (the gogrpc and pygrpc watchers send small requests):
/// each server's own message, relayed, is the catalogue's.
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn message_too_large_for_grpc_go_and_c_core_servers() {
    let Some(p) = peers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.json");
    std::fs::write(&big, format!("{{\"name\":\"{}\"}}", "x".repeat(5_000_000))).unwrap();
    let (_go, go) = go_server(&p, &[]);
    let core = free_addr();
    let _core = spawn(&p.core_server, &["--addr".into(), core.to_string()], core);
    for addr in [go, core] {
        let out = Command::new(&p.grpcurl)
            .args(["-plaintext", "-max-time", "10"])
            .args(["-import-path", PROTO_DIR, "-proto", "helloworld.proto"])
            .args(["-d", "@", &addr.to_string(), "helloworld.Greeter/SayHello"])
            .stdin(std::fs::File::open(&big).unwrap())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let said = grpcurl(&text).unwrap_or_else(|| panic!("grpcurl said:\n{text}"));
        check_clients("message-too-large", &[said]);
    }
}

// The middlebox scenarios (`scenarios/*.yaml` with `middlebox:` or a
// middlebox fault), each setup run with the four real clients: every one
// fails its call with the code the scenario's broken variant shows for
// grpcdoc's own client. Rows: `middlebox | scenario | stack | code | message`.

fn middlebox_rows(scenario: &str, said: &[Said], want: &str) {
    for s in said {
        eprintln!(
            "middlebox | {scenario} | {} | {} | {:?}",
            s.stack.name(),
            s.code,
            s.message
        );
    }
    for s in said {
        assert_eq!(s.code, want, "{scenario}: {} said {s:?}", s.stack.name());
    }
}

/// nginx-upstream-down.yaml: nginx whose upstream is gone answers 502.
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn nginx_with_its_upstream_down() {
    let Some(p) = peers() else { return };
    let (listen, dead) = (free_addr(), free_addr());
    let _nginx = spawn(&p.nginx, &[listen.to_string(), dead.to_string()], listen);
    let said = four_clients(&p, &listen.to_string(), 0, 5, || {});
    middlebox_rows("nginx-upstream-down", &said, "UNAVAILABLE");
}

/// proxy-answers-pings.yaml: nginx in front of a blackholed path; each
/// call hangs until its deadline.
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn nginx_in_front_of_a_blackholed_server() {
    let Some(p) = peers() else { return };
    let (_server, up) = go_server(&p, &[]);
    let (_proxy, hole) = proxy_to(up, "blackhole");
    let listen = free_addr();
    let _nginx = spawn(&p.nginx, &[listen.to_string(), hole.to_string()], listen);
    let said = four_clients(&p, &listen.to_string(), 0, 2, || {});
    middlebox_rows("proxy-answers-pings", &said, "DEADLINE_EXCEEDED");
}

/// goaway-swallowed.yaml: the server drains (max age 1 s, grace 1 s) but
/// the proxy drops its GOAWAYs; calls of 3 s die at the hard close.
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn a_proxy_that_swallows_goaway() {
    let Some(p) = peers() else { return };
    let (_server, up) = go_server(&p, &["-max-conn-age", "1s", "-max-conn-age-grace", "1s"]);
    let (_proxy, listen) = proxy_to(up, "drop-goaway");
    let said = four_clients(&p, &listen.to_string(), 3000, 8, || {});
    middlebox_rows("goaway-swallowed", &said, "UNAVAILABLE");
}

/// haproxy-timeouts.yaml: `timeout server 1s` ends a 2 s call with 504.
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn haproxy_timeout_server() {
    let Some(p) = peers() else { return };
    let (_server, up) = go_server(&p, &[]);
    let listen = free_addr();
    let args = [
        listen.to_string(),
        up.to_string(),
        "timeout server 1s".into(),
    ];
    let _haproxy = spawn(&p.haproxy, &args, listen);
    let said = four_clients(&p, &listen.to_string(), 2000, 5, || {});
    middlebox_rows("haproxy-timeouts", &said, "UNAVAILABLE");
}

const K6_TWO_CALLS: &str = r#"
import grpc from 'k6/net/grpc';
import { sleep } from 'k6';
const client = new grpc.Client();
client.load([__ENV.PROTO_DIR], 'helloworld.proto');
export const options = { vus: 1, iterations: 1 };
export default function () {
  client.connect(__ENV.ADDR, { plaintext: true, timeout: '3s' });
  for (let i = 0; i < 2; i++) {
    const res = client.invoke('helloworld.Greeter/SayHello', { name: 'x' }, { timeout: '1s' });
    const m = res.error ? res.error.message : '';
    const c = res.error ? res.error.code : 0;
    if (c !== 0) { console.log(`RESULT ${c} ${encodeURIComponent(m)}`); }
    sleep(2.5);
  }
  client.close();
}
"#;

/// l4-idle-drop.yaml: a flow idle for 1 s is blackholed; the second call,
/// 2.5 s after the first on the same connection, hangs to its deadline.
/// grpcurl makes one call per connection and cannot show it.
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn an_l4_balancer_that_forgets_idle_flows() {
    let Some(p) = peers() else { return };
    let (_server, up) = go_server(&p, &[]);
    let (_proxy, listen) = proxy_to(up, "idle-expiry:idle=1s,then=blackhole");
    let addr = listen.to_string();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("two.js");
    std::fs::write(&script, K6_TWO_CALLS).unwrap();
    let out = |c: &mut Command| {
        let o = c.stdin(Stdio::null()).output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
    };
    let go = out(Command::new(&p.go133)
        .args(["-addr", &addr, "-interval", "2500ms", "-n", "2"])
        .args(["-timeout", "1s", "-duration", "7s"]));
    let k6 = out(Command::new(&p.k6)
        .args(["run", "-q", "--no-usage-report"])
        .arg(&script)
        .env("PROTO_DIR", PROTO_DIR)
        .env("ADDR", &addr));
    let py = out(Command::new(&p.core)
        .args(["--addr", &addr, "--interval", "2.5", "-n", "2"])
        .args(["--timeout", "1", "--duration", "7"]));
    let said: Vec<Said> = [
        go133(&go).unwrap_or_else(|| panic!("grpc-go 1.33:\n{go}")),
        k6_said(&k6).unwrap_or_else(|| panic!("k6:\n{k6}")),
        core(&py).unwrap_or_else(|| panic!("C-core:\n{py}")),
    ]
    .into();
    middlebox_rows("l4-idle-drop", &said, "DEADLINE_EXCEEDED");
}
