//! `grpcdoc pcap` against the real tools: the real gRPC peers run on
//! loopback under `tcpdump -i lo`, with `grpcdoc watch` as the client, and
//! the capture is read twice - by tshark (`-Y http2 -T fields`) and by
//! grpcdoc - which must agree on every HTTP/2 frame of every connection
//! (type, stream, error code, last-stream-id, per direction), while
//! grpcdoc's reading names the catalogue entries `watch` named live in the
//! same run. Cases: grpc-go 1.33 with a max age, C-core's idle GOAWAY, a
//! killed server, too_many_pings, nginx in the path. The committed
//! captures of every link type are compared with tshark too.
//!
//! Needs tcpdump and tshark (Debian packages; root to capture) and the
//! peers (`PEERS_HOME`); listed as ignored without them.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::Proc;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_grpcdoc");

fn peer(name: &str) -> PathBuf {
    common::peer(name).unwrap_or_else(|| panic!("peer {name} is needed"))
}

fn free_port() -> u16 {
    common::free_addr().port()
}

/// tcpdump on lo for these ports, once it says it is listening.
fn tcpdump(file: &Path, ports: &[u16]) -> Proc {
    let filter = ports
        .iter()
        .map(|p| format!("tcp port {p}"))
        .collect::<Vec<_>>()
        .join(" or ");
    let mut p = Proc::spawn_stopped_by(
        Command::new("tcpdump")
            .args(["-i", "lo", "-s", "0", "-U", "-w"])
            .arg(file)
            .arg(filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
        libc::SIGINT,
    );
    let err = p.child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(err).lines();
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("listening on") => break,
            Some(Ok(_)) => continue,
            _ => panic!("tcpdump did not start (root and tcpdump are needed)"),
        }
    }
    std::thread::spawn(move || for _ in lines {});
    p
}

/// A peer server on 127.0.0.1:`port`.
fn server(name: &str, port: u16, args: &[&str]) -> Proc {
    let addr = format!("127.0.0.1:{port}");
    let p = Proc::spawn_stopped_by(
        Command::new(peer(name))
            .args(["--addr".to_string(), addr.clone()].iter().map(|s| {
                if name == "gogrpc-server" && s == "--addr" {
                    "-addr".to_string()
                } else {
                    s.clone()
                }
            }))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        libc::SIGKILL,
    );
    common::wait_listening(addr.parse().unwrap(), name);
    p
}

/// `grpcdoc watch` live, its JSON lines.
fn watch(target: &str, args: &[&str]) -> Vec<Value> {
    let out = Command::new(BIN)
        .arg("watch")
        .arg(target)
        .args(["-o", "json"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("grpcdoc watch");
    lines(&out.stdout)
}

fn lines(b: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(b)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// One direction's HTTP/2 frames as both readers can tell them.
#[derive(Debug, Default, PartialEq, Eq)]
struct Frames {
    /// Frame type and stream of every frame, in order.
    frames: Vec<(u8, u32)>,
    /// GOAWAY error code and last-stream-id, in order.
    goaways: Vec<(u32, u32)>,
    /// RST_STREAM error codes, in order.
    resets: Vec<u32>,
}

/// Client port -> (client to server, server to client).
type ByConn = BTreeMap<u16, (Frames, Frames)>;

fn nums(field: &str) -> Vec<u32> {
    field
        .split(',')
        .filter(|s| !s.is_empty())
        .filter_map(|s| {
            let s = s.trim();
            match s.strip_prefix("0x") {
                Some(h) => u32::from_str_radix(h, 16).ok(),
                None => s.parse().ok(),
            }
        })
        .collect()
}

/// What tshark reads, with HTTP/2 decoded on the servers' ports.
fn tshark(file: &Path, servers: &[u16]) -> ByConn {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(file);
    for p in servers {
        cmd.args(["-d", &format!("tcp.port=={p},http2")]);
    }
    cmd.args([
        "-Y",
        "http2",
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]);
    for f in [
        "tcp.srcport",
        "tcp.dstport",
        "http2.type",
        "http2.streamid",
        "http2.goaway.error",
        "http2.goaway.last_stream_id",
        "http2.rst_stream.error",
    ] {
        cmd.args(["-e", f]);
    }
    let out = cmd.stderr(Stdio::null()).output().expect("tshark");
    assert!(out.status.success(), "tshark failed");
    let mut by: ByConn = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 7 {
            continue;
        }
        let (src, dst): (u16, u16) = (f[0].parse().unwrap(), f[1].parse().unwrap());
        let (client, upstream) = if servers.contains(&dst) {
            (src, true)
        } else {
            (dst, false)
        };
        let e = by.entry(client).or_default();
        let d = if upstream { &mut e.0 } else { &mut e.1 };
        let types = nums(f[2]);
        let streams = nums(f[3]);
        assert_eq!(types.len(), streams.len(), "{line}");
        d.frames.extend(types.iter().map(|t| *t as u8).zip(streams));
        d.goaways.extend(nums(f[4]).into_iter().zip(nums(f[5])));
        d.resets.extend(nums(f[6]));
    }
    by
}

fn code(v: &Value) -> u32 {
    grpcdoc::h2wire::ErrorCode::from_name(v.as_str().unwrap_or_default())
        .expect("an error code")
        .0
}

fn frame_type(name: &str) -> u8 {
    (0u8..=9)
        .find(|t| grpcdoc::h2wire::FrameType::from_u8(*t).name() == name)
        .unwrap_or(0xff)
}

/// What `grpcdoc pcap --frames` reads, and its explanations by client
/// port.
fn grpcdoc_pcap(file: &Path) -> (ByConn, BTreeMap<u16, BTreeSet<String>>, Vec<Value>) {
    let out = Command::new(BIN)
        .arg("pcap")
        .arg(file)
        .args(["-o", "json", "--frames", "--calls", "failed"])
        .output()
        .expect("grpcdoc pcap");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = lines(&out.stdout);
    let mut port_of: BTreeMap<u64, u16> = BTreeMap::new();
    let mut by: ByConn = BTreeMap::new();
    let mut ids: BTreeMap<u16, BTreeSet<String>> = BTreeMap::new();
    for l in &all {
        let Some(conn) = l["conn"].as_u64() else {
            continue;
        };
        if l["kind"] == "capture" && l["what"] == "open" {
            // "client 127.0.0.1:PORT, server ..."
            let detail = l["detail"].as_str().unwrap_or_default();
            let client = detail
                .strip_prefix("client ")
                .and_then(|d| d.split(',').next())
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| p.parse().ok())
                .expect("the client's port");
            port_of.insert(conn, client);
            continue;
        }
        let Some(port) = port_of.get(&conn).copied() else {
            continue;
        };
        if l["kind"] == "explanation" {
            if let Some(id) = l["id"].as_str() {
                ids.entry(port).or_default().insert(id.to_string());
            }
            continue;
        }
        let e = by.entry(port).or_default();
        let d = if l["dir"] == "sent" {
            &mut e.0
        } else {
            &mut e.1
        };
        match l["kind"].as_str().unwrap_or_default() {
            "frame" => d.frames.push((
                frame_type(l["type"].as_str().unwrap_or_default()),
                l["stream_id"].as_u64().unwrap() as u32,
            )),
            "settings" => d.frames.push((4, 0)),
            "ping" => d.frames.push((6, 0)),
            "goaway" => {
                d.frames.push((7, 0));
                d.goaways.push((
                    code(&l["code"]),
                    l["last_stream_id"].as_u64().unwrap() as u32,
                ));
            }
            "rst_stream" => {
                let s = l["stream_id"].as_u64().unwrap() as u32;
                d.frames.push((3, s));
                d.resets.push(code(&l["code"]));
            }
            _ => {}
        }
    }
    by.retain(|_, (a, b)| !a.frames.is_empty() || !b.frames.is_empty());
    (by, ids, all)
}

fn ids(lines: &[Value]) -> BTreeSet<String> {
    lines
        .iter()
        .filter(|l| l["kind"] == "explanation")
        .filter_map(|l| l["id"].as_str().map(str::to_string))
        .collect()
}

/// tshark and grpcdoc agree on every frame of every connection; what
/// grpcdoc read.
fn agree(file: &Path, servers: &[u16]) -> Vec<Value> {
    let theirs = tshark(file, servers);
    let (ours, _, all) = grpcdoc_pcap(file);
    assert!(!theirs.is_empty(), "tshark found no HTTP/2");
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "connections"
    );
    for (port, (up, down)) in &theirs {
        let (our_up, our_down) = &ours[port];
        assert_eq!(our_up, up, "client {port}: client to server");
        assert_eq!(our_down, down, "client {port}: server to client");
    }
    let frames: usize = theirs
        .values()
        .map(|(a, b)| a.frames.len() + b.frames.len())
        .sum();
    eprintln!(
        "{} connections, {frames} frames: tshark and grpcdoc agree",
        theirs.len()
    );
    all
}

/// tshark and grpcdoc agree on every frame; grpcdoc's explanations of
/// the connections `watch` made are the ones it gave live.
fn compare(file: &Path, servers: &[u16], watched: u16, live: &[Value]) -> Vec<Value> {
    let all = agree(file, servers);
    // The connections watch dialed: to `watched`.
    let to_watched: BTreeSet<u64> = all
        .iter()
        .filter(|l| {
            l["addr"]
                .as_str()
                .is_some_and(|a| a.ends_with(&format!(":{watched}")))
        })
        .filter_map(|l| l["conn"].as_u64())
        .collect();
    let ours: BTreeSet<String> = all
        .iter()
        .filter(|l| l["kind"] == "explanation")
        .filter(|l| l["conn"].as_u64().is_some_and(|c| to_watched.contains(&c)))
        .filter_map(|l| l["id"].as_str().map(str::to_string))
        .collect();
    let live_ids = ids(live);
    let story: Vec<String> = all
        .iter()
        .filter(|l| {
            ["ping", "rpc", "closed", "explanation", "goaway"]
                .contains(&l["kind"].as_str().unwrap_or(""))
        })
        .map(|l| format!("{} {} {} {}", l["t_ms"], l["kind"], l["dir"], l["code"]))
        .collect();
    assert_eq!(
        ours,
        live_ids,
        "the entries named live and from the capture; the capture's story:\n{}",
        story.join("\n")
    );
    all
}

const IGNORE: &str = "needs tcpdump and tshark (apt-get install tcpdump tshark; root) and the gRPC peers (PEERS_HOME)";

#[test]
#[cfg_attr(
    not(all(grpcdoc_capture_tools, grpcdoc_peers)),
    ignore = "needs tcpdump, tshark (root) and the gRPC peers"
)]
fn grpc_go_max_age_drains_read_as_tshark_reads_them() {
    let _ = IGNORE;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("age.pcap");
    let port = free_port();
    let _server = server(
        "gogrpc-server",
        port,
        &["-max-conn-age", "1s", "-max-conn-age-grace", "5s"],
    );
    let mut dump = tcpdump(&file, &[port]);
    let live = watch(
        &format!("127.0.0.1:{port}"),
        &["--for", "3500ms", "--probe-interval", "200ms"],
    );
    dump.stop();
    let all = compare(&file, &[port], port, &live);
    assert!(all.iter().filter(|l| l["kind"] == "goaway").count() >= 2);
}

#[test]
#[cfg_attr(
    not(all(grpcdoc_capture_tools, grpcdoc_peers)),
    ignore = "needs tcpdump, tshark (root) and the gRPC peers"
)]
fn c_core_idle_goaway_reads_as_tshark_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("idle.pcap");
    let port = free_port();
    let _server = server("pygrpc-server", port, &["--max-connection-idle-ms", "700"]);
    let mut dump = tcpdump(&file, &[port]);
    let live = watch(
        &format!("127.0.0.1:{port}"),
        &["--for", "2500ms", "--probe", "none"],
    );
    dump.stop();
    compare(&file, &[port], port, &live);
    assert!(ids(&live).contains("idle-timeout"), "{live:?}");
}

#[test]
#[cfg_attr(
    not(all(grpcdoc_capture_tools, grpcdoc_peers)),
    ignore = "needs tcpdump, tshark (root) and the gRPC peers"
)]
fn a_killed_server_reads_as_tshark_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("killed.pcap");
    let port = free_port();
    let mut server = server("gogrpc-server", port, &[]);
    let mut dump = tcpdump(&file, &[port]);
    let target = format!("127.0.0.1:{port}");
    let watcher =
        std::thread::spawn(move || watch(&target, &["--for", "3s", "--probe-interval", "200ms"]));
    std::thread::sleep(Duration::from_millis(1200));
    server.signal(libc::SIGKILL);
    let live = watcher.join().unwrap();
    server.stop();
    dump.stop();
    let all = compare(&file, &[port], port, &live);
    assert!(ids(&live).contains("server-crash"), "{live:?}");
    // The reconnects after the kill were refused: SYN answered by RST.
    assert!(all
        .iter()
        .any(|l| l["kind"] == "connect" && l["cause"] == "refused"));
}

#[test]
#[cfg_attr(
    not(all(grpcdoc_capture_tools, grpcdoc_peers)),
    ignore = "needs tcpdump, tshark (root) and the gRPC peers"
)]
fn too_many_pings_reads_as_tshark_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pings.pcap");
    let port = free_port();
    let _server = server("gogrpc-server", port, &[]);
    let mut dump = tcpdump(&file, &[port]);
    let live = watch(
        &format!("127.0.0.1:{port}"),
        &[
            "--for",
            "5s",
            "--probe",
            "none",
            "--keepalive-time",
            "1s",
            "--keepalive-permit-without-stream",
        ],
    );
    dump.stop();
    let all = compare(&file, &[port], port, &live);
    assert!(ids(&live).contains("too-many-pings"), "{live:?}");
    assert!(all
        .iter()
        .any(|l| l["kind"] == "goaway" && l["debug"] == "too_many_pings"));
    assert!(all.iter().any(|l| l["kind"] == "ping_strike"));
}

#[test]
#[cfg_attr(
    not(all(grpcdoc_capture_tools, grpcdoc_peers)),
    ignore = "needs tcpdump, tshark (root) and the gRPC peers"
)]
fn nginx_in_the_path_reads_as_tshark_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nginx.pcap");
    let (front, back) = (free_port(), free_port());
    let _server = server(
        "gogrpc-server",
        back,
        &["-max-conn-age", "1s", "-max-conn-age-grace", "5s"],
    );
    let mut nginx = Proc::spawn_stopped_by(
        Command::new(peer("nginx-grpc"))
            .args([format!("127.0.0.1:{front}"), format!("127.0.0.1:{back}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        libc::SIGTERM,
    );
    common::wait_listening(([127, 0, 0, 1], front).into(), "nginx");
    let mut dump = tcpdump(&file, &[front, back]);
    let live = watch(
        &format!("127.0.0.1:{front}"),
        &["--for", "2500ms", "--probe-interval", "200ms"],
    );
    nginx.stop();
    dump.stop();
    let all = compare(&file, &[front, back], front, &live);
    // Both hops: the client's connections to nginx and nginx's upstream.
    let servers: BTreeSet<&str> = all
        .iter()
        .filter(|l| l["kind"] == "settings")
        .filter_map(|l| l["addr"].as_str())
        .collect();
    assert_eq!(servers.len(), 2, "{servers:?}");
}

/// The committed captures (tests/data/pcap/, every link type) read the
/// same by tshark and grpcdoc.
#[test]
#[cfg_attr(
    not(grpcdoc_capture_tools),
    ignore = "needs tshark (apt-get install tshark)"
)]
fn the_committed_captures_read_as_tshark_reads_them() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pcap");
    for (file, port) in [
        ("ethernet.pcap", 50301),
        ("ethernet.pcapng", 50301),
        ("rawip.pcap", 50301),
        ("null.pcap", 50301),
        ("vlan.pcap", 50301),
        ("sll.pcap", 50302),
        ("sll2.pcap", 50303),
        ("ipv6.pcap", 50304),
    ] {
        eprint!("{file}: ");
        agree(&dir.join(file), &[port]);
    }
}
