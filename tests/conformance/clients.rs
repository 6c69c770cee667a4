//! The six real clients: how each is told to make a call, and how what it
//! printed is read back (each prints a failed call in its own format).
//!   grpc-go 1.33  `gogrpc-watch`   `RPC w0 #0 ERROR code=Unavailable desc="<%q>"`
//!   grpc-go 1.44  `grpcurl`        `Code: Unavailable` / `Message: ...`
//!   grpc-go 1.73  `k6`             our script's `RESULT <code> <percent-encoded>`
//!   C-core 1.85   `pygrpc-watch`   `ERROR code=UNAVAILABLE details='<repr>'`
//!   grpc-js 1.14  `nodegrpc-watch` `ERROR code=UNAVAILABLE desc="<JSON>"`
//!   grpc-java 1.41 `javagrpc-watch` `ERROR code=UNAVAILABLE desc="<q>" cause="<q>"`
//! Each runs in a process group of its own, bounded in time.

use std::process::{Command, Stdio};
use std::time::Duration;

use grpcdoc::catalogue::Stack;

use crate::procs::{Peers, Proc};

/// helloworld.proto: grpcdoc's own copy of the wire definition the peers
/// serve, so no test depends on where the peers' sources are.
pub const PROTO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/proto/helloworld");

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Client {
    Go133,
    Grpcurl,
    K6,
    Core,
    Node,
    Java,
}

pub const SIX: &[Client] = &[
    Client::Go133,
    Client::Grpcurl,
    Client::K6,
    Client::Core,
    Client::Node,
    Client::Java,
];

/// The clients that can ping every second: grpcurl raises a keepalive
/// below 10 s to 10 s and k6 has no keepalive option.
pub const PINGING: &[Client] = &[Client::Go133, Client::Core, Client::Node, Client::Java];

/// What each client is asked to do: `calls` SayHello calls `interval_ms`
/// apart on one channel, each with the server delay `delay_ms` (metadata
/// `x-delay-ms`) and the deadline `timeout_s`.
#[derive(Clone, Debug)]
pub struct Call {
    pub addr: String,
    pub delay_ms: u64,
    pub timeout_s: u64,
    pub calls: u32,
    pub interval_ms: u64,
    /// Client keepalive: a PING every `.0` ms, its ACK due within `.1` ms.
    pub keepalive: Option<(u64, Option<u64>)>,
}

impl Call {
    pub fn new(addr: impl ToString, delay_ms: u64, timeout_s: u64) -> Call {
        Call {
            addr: addr.to_string(),
            delay_ms,
            timeout_s,
            calls: 1,
            interval_ms: 100,
            keepalive: None,
        }
    }

    pub fn keepalive(mut self, time_ms: u64, timeout_ms: Option<u64>) -> Call {
        self.keepalive = Some((time_ms, timeout_ms));
        self
    }

    pub fn repeated(mut self, calls: u32, interval_ms: u64) -> Call {
        self.calls = calls;
        self.interval_ms = interval_ms;
        self
    }

    /// How long a client may run before it is killed: its calls, a JVM's
    /// start on a busy machine, and slack.
    fn limit(&self) -> Duration {
        let calls = u64::from(self.calls) * (self.interval_ms + self.timeout_s * 1000);
        Duration::from_millis(calls + 15_000)
    }

    /// The watchers' own `-duration`: they exit after their calls anyway.
    fn duration_s(&self) -> u64 {
        self.limit().as_secs() - 3
    }
}

/// One client's failed call: the status code (canonical name, empty when
/// the client printed none) and the message as its users read it
/// (grpc-java's cause chain as `Caused by:` lines).
#[derive(Clone, Debug)]
pub struct Said {
    pub stack: Stack,
    pub code: String,
    pub message: String,
}

const K6_SCRIPT: &str = r#"
import grpc from 'k6/net/grpc';
import { sleep } from 'k6';
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
  for (let i = 0; i < Number(__ENV.CALLS); i++) {
    if (i > 0) { sleep(Number(__ENV.INTERVAL_MS) / 1000); }
    const res = client.invoke('helloworld.Greeter/SayHello', { name: 'x' },
      { metadata: md, timeout: __ENV.TIMEOUT });
    if (res.error) {
      console.log(`RESULT ${res.error.code} ${encodeURIComponent(res.error.message)}`);
    }
  }
  client.close();
}
"#;

impl Client {
    pub fn stack(self) -> Stack {
        match self {
            Client::Go133 => Stack::GrpcGo133,
            Client::Grpcurl => Stack::GrpcGo144,
            Client::K6 => Stack::GrpcGo173,
            Client::Core => Stack::CCore185,
            Client::Node => Stack::GrpcJs114,
            Client::Java => Stack::GrpcJava141,
        }
    }

    /// Whether this client can make `call` (grpcurl makes one call per
    /// process; only the [`PINGING`] clients ping every second).
    fn can(self, call: &Call) -> bool {
        let one_call = self != Client::Grpcurl || call.calls == 1;
        one_call && (call.keepalive.is_none() || PINGING.contains(&self))
    }

    fn command(self, p: &Peers, call: &Call, script: &std::path::Path) -> Command {
        let (d, t) = (call.delay_ms.to_string(), call.timeout_s.to_string());
        let (n, every) = (call.calls.to_string(), format!("{}ms", call.interval_ms));
        let mut c;
        match self {
            Client::Go133 | Client::Node | Client::Java => {
                c = Command::new(match self {
                    Client::Go133 => &p.go133,
                    Client::Node => &p.node,
                    _ => &p.java,
                });
                c.args(["-addr", &call.addr, "-interval", &every, "-n", &n])
                    .args(["-duration", &format!("{}s", call.duration_s())])
                    .args(["-timeout", &format!("{t}s"), "-delay-ms", &d]);
                if let Some((time, timeout)) = call.keepalive {
                    c.args(["-ka-time", &format!("{time}ms")]);
                    if let Some(to) = timeout {
                        c.args(["-ka-timeout", &format!("{to}ms")]);
                    }
                }
            }
            Client::Core => {
                c = Command::new(&p.core);
                c.args(["--addr", &call.addr, "-n", &n])
                    .args([
                        "--interval",
                        &format!("{}", call.interval_ms as f64 / 1000.0),
                    ])
                    .args(["--duration", &call.duration_s().to_string()])
                    .args(["--timeout", &t, "--delay-ms", &d]);
                if let Some((time, timeout)) = call.keepalive {
                    // C-core sends at most two PINGs on a call that sends no
                    // data unless this limit is lifted.
                    c.args(["--keepalive-time-ms", &time.to_string()])
                        .args(["--option", "grpc.http2.max_pings_without_data=0"]);
                    if let Some(to) = timeout {
                        c.args(["--keepalive-timeout-ms", &to.to_string()]);
                    }
                }
            }
            Client::Grpcurl => {
                c = Command::new(&p.grpcurl);
                c.args(["-plaintext", "-max-time", &t])
                    .args(["-import-path", PROTO_DIR, "-proto", "helloworld.proto"])
                    .args(["-H", &format!("x-delay-ms: {d}")])
                    .args(["-d", r#"{"name":"x"}"#, &call.addr])
                    .arg("helloworld.Greeter/SayHello");
            }
            Client::K6 => {
                c = Command::new(&p.k6);
                c.args(["run", "-q", "--no-usage-report"])
                    .arg(script)
                    .env("PROTO_DIR", PROTO_DIR)
                    .env("ADDR", &call.addr)
                    .env("DELAY", &d)
                    .env("CALLS", &n)
                    .env("INTERVAL_MS", call.interval_ms.to_string())
                    .env("TIMEOUT", format!("{t}s"));
            }
        }
        c
    }

    /// Whether the client has made all its calls: pygrpc-watch stops
    /// calling after `-n` but watches on until its `--duration`.
    fn done(self, out: &str, call: &Call) -> bool {
        // Whole lines only: the last may still be being written.
        let lines = out.rsplit_once('\n').map_or("", |(whole, _)| whole);
        self == Client::Core && lines.matches(" RPC #").count() >= call.calls as usize
    }

    /// The first failed call in this client's output.
    pub fn parse(self, out: &str) -> Option<Said> {
        let (code, message) = match self {
            Client::Go133 | Client::Node | Client::Java => watcher(out)?,
            Client::Core => core(out)?,
            Client::Grpcurl => grpcurl(out)?,
            Client::K6 => k6(out)?,
        };
        Some(Said {
            stack: self.stack(),
            code,
            message,
        })
    }
}

/// Runs `clients` (those of them that can make `call`) in parallel, one
/// call each (or `call.calls`); `during` runs meanwhile. What each said.
pub fn run(p: &Peers, clients: &[Client], call: &Call, during: impl FnOnce()) -> Vec<Said> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let script = dir.path().join("call.js");
    std::fs::write(&script, K6_SCRIPT).expect("write the k6 script");
    let chosen: Vec<Client> = clients.iter().copied().filter(|c| c.can(call)).collect();
    let outs: Vec<Output> = std::thread::scope(|s| {
        let threads: Vec<_> = chosen
            .iter()
            .map(|c| {
                let mut cmd = c.command(p, call, &script);
                cmd.stdin(Stdio::null());
                s.spawn(move || output_until(cmd, call.limit(), |out| c.done(out, call)))
            })
            .collect();
        during();
        threads
            .into_iter()
            .map(|t| t.join().expect("a client thread"))
            .collect()
    });
    chosen
        .iter()
        .zip(&outs)
        .map(|(c, out)| {
            let out = out.all();
            c.parse(&out)
                .unwrap_or_else(|| panic!("{}: no failed call in:\n{out}", c.stack().name()))
        })
        .collect()
}

/// What a process printed.
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `cmd` in a process group of its own for at most `limit`; what it
/// printed. Its stdin is the caller's choice.
pub fn output(cmd: Command, limit: Duration) -> Output {
    output_until(cmd, limit, |_| false)
}

/// [`output`], ended early (the group killed) once what it printed so far
/// satisfies `done`.
pub fn output_until(mut cmd: Command, limit: Duration, done: impl Fn(&str) -> bool) -> Output {
    use std::io::Read;
    use std::sync::{Arc, Mutex};
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut proc = Proc::start(cmd);
    let pipes = [
        proc.child()
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        proc.child()
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ];
    let bufs: Vec<Arc<Mutex<Vec<u8>>>> = pipes.iter().map(|_| Arc::default()).collect();
    let readers: Vec<_> = pipes
        .into_iter()
        .zip(&bufs)
        .filter_map(|(pipe, buf)| Some((pipe?, buf.clone())))
        .map(|(mut r, buf)| {
            std::thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                while let Ok(n) = r.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut b) = buf.lock() {
                        b.extend_from_slice(&chunk[..n]);
                    }
                }
            })
        })
        .collect();
    let text = |b: &Arc<Mutex<Vec<u8>>>| {
        String::from_utf8_lossy(&b.lock().map(|b| b.clone()).unwrap_or_default()).into_owned()
    };
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        let exited = matches!(proc.child().try_wait(), Ok(Some(_)));
        if exited || done(&bufs.iter().map(text).collect::<String>()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    proc.kill();
    for r in readers {
        let _ = r.join();
    }
    Output {
        stdout: text(&bufs[0]),
        stderr: text(&bufs[1]),
    }
}

/// `DeadlineExceeded` or `Canceled` (grpc-go) as the canonical name
/// (`DEADLINE_EXCEEDED`); a canonical name stays as it is.
fn canonical(code: &str) -> String {
    if code == "Canceled" {
        return "CANCELLED".into();
    }
    if code.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
        return code.into();
    }
    let mut out = String::new();
    for (i, c) in code.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// A quoted string at the start of `s` (Go's %q, JSON, Java's quoting,
/// Python's repr): its text and what follows it.
fn quoted(s: &str) -> Option<(String, &str)> {
    let quote = s.chars().next().filter(|q| *q == '"' || *q == '\'')?;
    let mut out = String::new();
    let mut chars = s[1..].char_indices();
    while let Some((i, c)) = chars.next() {
        if c == quote {
            return Some((out, &s[1 + i + 1..]));
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let (_, e) = chars.next()?;
        let hex = |n: usize, chars: &mut std::str::CharIndices| {
            let h: String = chars.by_ref().take(n).map(|(_, c)| c).collect();
            u32::from_str_radix(&h, 16).ok().and_then(char::from_u32)
        };
        match e {
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'x' => out.push(hex(2, &mut chars)?),
            'u' => out.push(hex(4, &mut chars)?),
            'U' => out.push(hex(8, &mut chars)?),
            other => out.push(other),
        }
    }
    None
}

/// gogrpc-watch, nodegrpc-watch, javagrpc-watch: the first
/// `ERROR code=C desc="..." [cause="..."]` line.
fn watcher(out: &str) -> Option<(String, String)> {
    let line = out.lines().find(|l| l.contains(" ERROR code="))?;
    let rest = &line[line.find(" ERROR code=")? + 12..];
    let (code, rest) = rest.split_once(" desc=")?;
    let (mut message, rest) = quoted(rest)?;
    if let Some(cause) = rest.strip_prefix(" cause=") {
        // grpc-java's Status cause, as a stack trace shows it.
        for c in quoted(cause)?.0.split("; caused by ") {
            message.push_str("\nCaused by: ");
            message.push_str(c);
        }
    }
    Some((canonical(code), message))
}

fn core(out: &str) -> Option<(String, String)> {
    let line = out.lines().find(|l| l.contains(" ERROR code="))?;
    let rest = &line[line.find(" ERROR code=")? + 12..];
    let (code, rest) = rest.split_once(" details=")?;
    Some((code.to_string(), quoted(rest)?.0))
}

fn grpcurl(out: &str) -> Option<(String, String)> {
    let code = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Code: "))
        .map(canonical)
        .unwrap_or_default();
    let message = match out.lines().find_map(|l| l.trim().strip_prefix("Message: ")) {
        Some(m) => m.to_string(),
        None => out.lines().find(|l| l.starts_with("Failed"))?.to_string(),
    };
    Some((code, message))
}

fn k6(out: &str) -> Option<(String, String)> {
    let line = out.lines().find(|l| l.contains("RESULT "))?;
    let rest = &line[line.find("RESULT ")? + 7..];
    let mut parts = rest.split_whitespace();
    let code = parts.next()?;
    let msg = parts.next().unwrap_or("");
    let code = code
        .parse::<i32>()
        .map(|c| grpcdoc::grpc::code_name(tonic::Code::from_i32(c)).to_string())
        .unwrap_or_default();
    Some((code, pct_decode(msg.trim_end_matches('"'))))
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

#[test]
fn the_formats_read_back() {
    let node = r#"[nodegrpc-watch] 2026/12/06 22:07:41.231789 RPC w0 #0 ERROR code=UNAVAILABLE desc="No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1. Resolution note: " (96.592ms)"#;
    let said = Client::Node.parse(node).unwrap();
    assert_eq!(said.code, "UNAVAILABLE");
    assert!(said.message.ends_with("Resolution note: "), "{said:?}");
    let java = r#"[javagrpc-watch] 2026/12/06 RPC w0 #0 ERROR code=UNAVAILABLE desc="HTTP status code 502\ninvalid \"x\"" cause="a.B: one; caused by c.D: two" (1ms)"#;
    let said = Client::Java.parse(java).unwrap();
    assert_eq!(
        said.message,
        "HTTP status code 502\ninvalid \"x\"\nCaused by: a.B: one\nCaused by: c.D: two"
    );
    let go = r#"[gogrpc-watch] RPC w0 #0 ERROR code=DeadlineExceeded desc="a \"b\" \x01" (1s)"#;
    let said = Client::Go133.parse(go).unwrap();
    assert_eq!(
        (said.code.as_str(), said.message.as_str()),
        ("DEADLINE_EXCEEDED", "a \"b\" \u{1}")
    );
    let core =
        r#"[pygrpc-watch] RPC #0 ERROR code=UNAVAILABLE details='it\'s' debug_error_string='x'"#;
    assert_eq!(Client::Core.parse(core).unwrap().message, "it's");
    assert!(Client::Node.parse("final: ok=1 errors=0").is_none());
}
