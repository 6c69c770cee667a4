//! The processes a case starts: the peers' servers, grpcdoc's own server
//! and proxy, and the real reverse proxies (nginx, HAProxy, Caddy). Each
//! runs in its own process group and the whole group dies with its guard,
//! also when the test panics: nginx's workers and whatever a wrapper script
//! forked go with it, and the proxies' temporary config directories (their
//! TMPDIR) are removed.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{free_addr, peer, wait_listening};

pub const BIN: &str = env!("CARGO_BIN_EXE_grpcdoc");

/// Every peer the tier uses; `None` from [`peers`] skips the case.
pub struct Peers {
    pub go133: PathBuf,
    pub grpcurl: PathBuf,
    pub k6: PathBuf,
    pub core: PathBuf,
    pub node: PathBuf,
    pub java: PathBuf,
    pub go_server: PathBuf,
    pub core_server: PathBuf,
    pub node_server: PathBuf,
    pub java_server: PathBuf,
    pub nginx: PathBuf,
    pub haproxy: PathBuf,
    pub caddy: PathBuf,
}

pub fn peers() -> Option<Peers> {
    Some(Peers {
        go133: peer("gogrpc-watch")?,
        grpcurl: peer("grpcurl")?,
        k6: peer("k6")?,
        core: peer("pygrpc-watch")?,
        node: peer("nodegrpc-watch")?,
        java: peer("javagrpc-watch")?,
        go_server: peer("gogrpc-server")?,
        core_server: peer("pygrpc-server")?,
        node_server: peer("nodegrpc-server")?,
        java_server: peer("javagrpc-server")?,
        nginx: peer("nginx-grpc")?,
        haproxy: peer("haproxy-grpc")?,
        caddy: peer("caddy-grpc")?,
    })
}

/// A process group started by a case: SIGKILLed as a whole on drop.
pub struct Proc {
    child: Child,
    /// The TMPDIR it was given, removed after the group is gone.
    _tmp: Option<tempfile::TempDir>,
}

impl Proc {
    /// Starts `cmd` as the leader of a new process group, with a TMPDIR
    /// of its own.
    pub fn start(mut cmd: Command) -> Proc {
        let tmp = tempfile::tempdir().expect("a TMPDIR");
        cmd.env("TMPDIR", tmp.path()).process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
        Proc {
            child,
            _tmp: Some(tmp),
        }
    }

    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Sends `sig` to the whole group.
    pub fn signal(&self, sig: i32) {
        let Ok(pgid) = i32::try_from(self.child.id()) else {
            return;
        };
        // SAFETY: kill(2) on the process group this test started; no
        // memory is touched.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }

    /// SIGKILL to the group, and reaps the leader.
    pub fn kill(&mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `bin args`, quiet, started and waited for until it accepts on `listens`.
pub fn spawn(bin: &Path, args: &[String], listens: SocketAddr) -> Proc {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let p = Proc::start(cmd);
    wait_listening(listens, &format!("{bin:?}"));
    p
}

/// A peer server: its program and how it spells its listen flag.
#[derive(Clone, Copy, Debug)]
pub enum Server {
    /// grpc-go 1.33 (`gogrpc-server`).
    Go,
    /// C-core 1.85 (`pygrpc-server`).
    Core,
    /// grpc-js 1.14 (`nodegrpc-server`).
    Node,
    /// grpc-java 1.41 (`javagrpc-server`).
    Java,
}

/// `server` with these extra flags, on a free port.
pub fn server(p: &Peers, server: Server, extra: &[&str]) -> (Proc, SocketAddr) {
    let addr = free_addr();
    let (bin, flag, quiet) = match server {
        Server::Go => (&p.go_server, "-addr", Some("-connlog=false")),
        Server::Core => (&p.core_server, "--addr", None),
        Server::Node => (&p.node_server, "-addr", None),
        Server::Java => (&p.java_server, "-addr", Some("-connlog=false")),
    };
    let mut args = vec![flag.to_string(), addr.to_string()];
    args.extend(quiet.map(String::from));
    args.extend(extra.iter().map(|a| a.to_string()));
    (spawn(bin, &args, addr), addr)
}

/// `grpcdoc proxy --fault FAULT` in front of `up`.
pub fn fault_proxy(up: SocketAddr, fault: &str) -> (Proc, SocketAddr) {
    let listen = free_addr();
    let args = [
        "proxy",
        "--listen",
        &listen.to_string(),
        "--upstream",
        &up.to_string(),
        "--fault",
        fault,
        "--for",
        "60s",
    ]
    .map(String::from);
    (spawn(Path::new(BIN), &args, listen), listen)
}

/// A real reverse proxy from the peers.
#[derive(Clone, Copy, Debug)]
pub enum Middlebox {
    Nginx,
    Haproxy,
    Caddy,
}

impl Middlebox {
    pub fn name(self) -> &'static str {
        match self {
            Middlebox::Nginx => "nginx",
            Middlebox::Haproxy => "HAProxy",
            Middlebox::Caddy => "Caddy",
        }
    }
}

/// `which` in front of `up`, with these configuration lines (the peers'
/// `nginx-grpc`, `haproxy-grpc`, `caddy-grpc`).
pub fn middlebox(
    p: &Peers,
    which: Middlebox,
    up: SocketAddr,
    lines: &[&str],
) -> (Proc, SocketAddr) {
    let bin = match which {
        Middlebox::Nginx => &p.nginx,
        Middlebox::Haproxy => &p.haproxy,
        Middlebox::Caddy => &p.caddy,
    };
    let listen = free_addr();
    let mut args = vec![listen.to_string(), up.to_string()];
    args.extend(lines.iter().map(|l| l.to_string()));
    (spawn(bin, &args, listen), listen)
}

/// A loopback port nothing listens on, held (bound, not listening) while
/// the guard lives so that no other process takes it: connecting to it is
/// refused, however many tests pick free ports meanwhile.
pub struct DeadPort(#[allow(dead_code)] tokio::net::TcpSocket);

pub fn dead_port() -> (DeadPort, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind(([127, 0, 0, 1], 0).into())
        .expect("bind 127.0.0.1:0");
    let addr = socket.local_addr().expect("its address");
    (DeadPort(socket), addr)
}

/// Waits (at most `limit`) until `n` connections to `addr` are
/// established, server side: every client has connected and, a moment
/// later, sent its call. Linux: read from /proc/net/tcp.
pub fn wait_connections(addr: SocketAddr, n: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let open = established_to(addr.port());
        if open >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{open} of {n} clients connected to {addr} in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn established_to(port: u16) -> usize {
    let local = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|t| {
            t.lines()
                .skip(1)
                .map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    // local_address, then rem_address, then st (01 = ESTABLISHED)
                    (f.len() > 3 && f[1].ends_with(&local) && f[3] == "01") as usize
                })
                .collect::<Vec<_>>()
        })
        .sum()
}
