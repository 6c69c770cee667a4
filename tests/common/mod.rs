//! Test harness: the built-in server in-process with its events recorded,
//! and a raw HTTP/2 client (the third-party `h2` crate) whose socket runs
//! through a recording FrameIo, so tests see every frame the server sends.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use grpcdoc::event::{Event, EventKind, EventSink};
use grpcdoc::h2wire::{ControlFrame, Dir, FrameHeader, FrameHook, FrameIo, Role};
use grpcdoc::server::{RunningServer, Server, ServerConfig};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Every event a server emitted, in order.
#[derive(Clone, Default)]
pub struct EventLog {
    events: Arc<Mutex<Vec<Event>>>,
    changed: Arc<Notify>,
}

impl EventLog {
    pub fn spawn(mut rx: tokio::sync::mpsc::Receiver<Event>) -> Self {
        let log = Self::default();
        let l = log.clone();
        tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                l.events.lock().unwrap().push(e);
                l.changed.notify_waiters();
            }
        });
        log
    }

    pub fn all(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// Waits up to `timeout` for an event matching `pred`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&Event) -> bool,
    ) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            if let Some(e) = self.all().into_iter().find(|e| pred(e)) {
                return Some(e);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.all().into_iter().find(|e| pred(e));
            }
        }
    }
}

pub struct TestServer {
    pub server: RunningServer,
    pub log: EventLog,
    pub addr: SocketAddr,
    /// Where the server's event times (`t_ms`) count from.
    pub start: std::time::Instant,
}

pub async fn start(cfg: ServerConfig) -> TestServer {
    let (sink, rx) = EventSink::channel(64 * 1024);
    let start = sink.start();
    let log = EventLog::spawn(rx);
    let server = Server::start("127.0.0.1:0".parse().unwrap(), cfg, sink)
        .await
        .expect("start server");
    let addr = server.addr;
    TestServer {
        server,
        log,
        addr,
        start,
    }
}

/// A frame the raw client saw, with when.
#[derive(Clone, Debug)]
pub struct Seen {
    pub at: Instant,
    pub dir: Dir,
    pub frame: ControlFrame,
}

#[derive(Clone, Default)]
pub struct FrameLog {
    frames: Arc<Mutex<Vec<Seen>>>,
    changed: Arc<Notify>,
}

impl FrameLog {
    pub fn all(&self) -> Vec<Seen> {
        self.frames.lock().unwrap().clone()
    }

    pub fn received(&self) -> Vec<Seen> {
        self.all()
            .into_iter()
            .filter(|s| s.dir == Dir::Received)
            .collect()
    }

    pub async fn wait_for(&self, timeout: Duration, pred: impl Fn(&Seen) -> bool) -> Option<Seen> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            if let Some(s) = self.all().into_iter().find(|s| pred(s)) {
                return Some(s);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.all().into_iter().find(|s| pred(s));
            }
        }
    }
}

struct Recorder(FrameLog);

impl FrameHook for Recorder {
    fn observe(&mut self, dir: Dir, header: &FrameHeader, payload: &[u8]) {
        if let Ok(frame) = ControlFrame::parse(header, payload) {
            self.0.frames.lock().unwrap().push(Seen {
                at: Instant::now(),
                dir,
                frame,
            });
            self.0.changed.notify_waiters();
        }
    }
}

/// The `h2` crate's client over a recording tap.
pub struct RawClient {
    pub send: h2::client::SendRequest<Bytes>,
    pub frames: FrameLog,
    pub ping: h2::PingPong,
    /// Resolves when the connection ends (Ok on a clean close).
    pub closed: tokio::task::JoinHandle<(Instant, Result<(), h2::Error>)>,
    pub addr: SocketAddr,
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> Self {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let frames = FrameLog::default();
        let (io, _inj) = FrameIo::new(tcp, Role::Client, Recorder(frames.clone()));
        let (send, mut conn) = h2::client::handshake(io).await.expect("h2 handshake");
        let ping = conn.ping_pong().expect("ping_pong");
        let closed = tokio::spawn(async move {
            let r = conn.await;
            (Instant::now(), r)
        });
        Self {
            send,
            frames,
            ping,
            closed,
            addr,
        }
    }

    /// Starts a unary gRPC call; the result resolves to (grpc-status, body).
    pub async fn start_unary(
        &mut self,
        path: &str,
        msg: &impl prost::Message,
        metadata: &[(&str, &str)],
    ) -> tokio::task::JoinHandle<Result<(String, Bytes), String>> {
        let mut req = http::Request::post(format!("http://{}{path}", self.addr))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        for (k, v) in metadata {
            req = req.header(*k, *v);
        }
        let req = req.body(()).unwrap();
        let mut send = self.send.clone().ready().await.expect("ready");
        let (resp, mut body) = send.send_request(req, false).expect("send_request");
        body.send_data(grpc_frame(msg), true).expect("send_data");
        tokio::spawn(async move {
            let resp = resp.await.map_err(|e| format!("{e}"))?;
            // Trailers-only responses (errors) carry grpc-status in the headers.
            let in_headers = resp
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let mut body = resp.into_body();
            let mut data = BytesMut::new();
            while let Some(chunk) = body.data().await {
                let chunk = chunk.map_err(|e| format!("{e}"))?;
                let _ = body.flow_control().release_capacity(chunk.len());
                data.put(chunk);
            }
            let trailers = body.trailers().await.map_err(|e| format!("{e}"))?;
            let status = in_headers.unwrap_or_else(|| {
                trailers
                    .as_ref()
                    .and_then(|t| t.get("grpc-status"))
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("missing")
                    .to_string()
            });
            Ok((status, data.freeze()))
        })
    }
}

/// A gRPC length-prefixed message.
pub fn grpc_frame(msg: &impl prost::Message) -> Bytes {
    let body = msg.encode_to_vec();
    let mut b = BytesMut::with_capacity(5 + body.len());
    b.put_u8(0);
    b.put_u32(body.len() as u32);
    b.put_slice(&body);
    b.freeze()
}

pub fn hello(name: &str) -> grpcdoc::pb::helloworld::HelloRequest {
    grpcdoc::pb::helloworld::HelloRequest { name: name.into() }
}

pub fn is_goaway(s: &Seen, debug: &str) -> bool {
    matches!(&s.frame, ControlFrame::GoAway { debug: d, .. } if d == debug.as_bytes())
}

pub fn closed_event(e: &Event) -> bool {
    matches!(e.kind, EventKind::Closed { .. })
}

/// Asserts `d` is within [lo, hi] with a readable message.
pub fn assert_between(what: &str, d: Duration, lo: Duration, hi: Duration) {
    assert!(
        d >= lo && d <= hi,
        "{what}: {d:?} is not within [{lo:?}, {hi:?}]"
    );
}

/// A peer from `../shared/peers` (`PEERS_HOME`), or None (the test is
/// skipped) - unless `GRPCDOC_REQUIRE_PEERS=1`, where a missing one fails.
pub fn peer(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PEERS_HOME")
        .map(|h| PathBuf::from(h).join("bin").join(name))
        .filter(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var("GRPCDOC_REQUIRE_PEERS").as_deref() != Ok("1"),
            "peer {name} missing: run ../shared/peers/setup.sh and export PEERS_HOME"
        );
        eprintln!("skipped: peer {name} not built (set PEERS_HOME, see ../shared/peers/README.md)");
    }
    found
}

/// A free loopback port.
pub fn free_addr() -> SocketAddr {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    ([127, 0, 0, 1], port).into()
}

/// Waits (at most 15 s) until something accepts connections on `addr`.
pub fn wait_listening(addr: SocketAddr, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not listen on {addr}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts the grpcdoc binary with `args` (a `serve` or `proxy`), reads its
/// `listening on ADDR` line and keeps draining its stdout (a server whose
/// stdout is closed stops by design). The child and the address.
pub fn spawn_listening(bin: &str, args: &[&str]) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(bin)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn grpcdoc");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    out.read_line(&mut first).expect("its first line");
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("not `listening on ADDR`: {first:?}"))
        .to_string();
    std::thread::spawn(move || for _ in out.lines() {});
    (child, addr)
}

/// A child process a test started, stopped with its process group on drop
/// (also when the test panics): its stop signal first (SIGTERM: nginx and
/// HAProxy stop their workers on it; tcpdump writes its last packets on
/// SIGINT), then, after at most 5 s, SIGKILL for what is left of the group
/// (workers that outlived their master).
pub struct Proc {
    pub child: std::process::Child,
    stop: i32,
    stopped: bool,
}

impl Proc {
    /// Spawns `cmd` as the leader of a process group of its own, stopped
    /// by SIGTERM.
    pub fn spawn(cmd: &mut std::process::Command) -> Self {
        Self::spawn_stopped_by(cmd, libc::SIGTERM)
    }

    /// As [`Proc::spawn`], stopped by `stop`.
    pub fn spawn_stopped_by(cmd: &mut std::process::Command, stop: i32) -> Self {
        use std::os::unix::process::CommandExt;
        let child = cmd.process_group(0).spawn().expect("spawn");
        Self {
            child,
            stop,
            stopped: false,
        }
    }

    /// A child spawned elsewhere (leading a group or not), stopped by
    /// SIGTERM.
    pub fn adopt(child: std::process::Child) -> Self {
        Self {
            child,
            stop: libc::SIGTERM,
            stopped: false,
        }
    }

    /// Sends `sig` to its group, or to it alone when it leads none; which
    /// of the two was signalled (a pid, negative for a group).
    pub fn signal(&self, sig: i32) -> i32 {
        let pid = self.child.id() as i32;
        // SAFETY: kill(2) on the group (or the process) this test started.
        match unsafe { libc::kill(-pid, sig) } {
            0 => -pid,
            _ => {
                unsafe { libc::kill(pid, sig) };
                pid
            }
        }
    }

    /// Stops it: its stop signal, then SIGKILL after 5 s for what is left.
    pub fn stop(&mut self) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        let target = self.signal(self.stop);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as in `signal`.
        unsafe { libc::kill(target, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}
