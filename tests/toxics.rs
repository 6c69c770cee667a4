//! toxiproxy's own toxic tests (`toxics/*_test.go` in Shopify/toxiproxy),
//! ported to grpcdoc's proxy: the same cases over real loopback sockets -
//! an echo server behind the proxy, a TCP client in front - with the
//! delays measured, the bytes counted and the close kinds seen on the
//! socket (EOF, ECONNRESET). Tolerances hold on a busy 2-core machine:
//! a delay is never shorter than asked, and at most a generous margin
//! longer.

mod common;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use grpcdoc::event::{EventKind, EventSink};
use grpcdoc::proxy::{FaultSpec, RunningProxy};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

const MS: fn(u64) -> Duration = Duration::from_millis;
/// How much later than asked a delay may end on a busy machine.
const SLACK: Duration = Duration::from_millis(250);

fn spec(s: &str) -> FaultSpec {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e:?}"))
}

async fn proxy(upstream: SocketAddr, faults: &[&str]) -> (RunningProxy, EventLog) {
    let (sink, rx) = EventSink::channel(16 * 1024);
    let log = EventLog::spawn(rx);
    let p = RunningProxy::start(
        "127.0.0.1:0".parse().unwrap(),
        upstream,
        faults.iter().map(|f| spec(f)).collect(),
        sink,
    )
    .await
    .unwrap();
    (p, log)
}

/// toxiproxy's echo server: each line read is sent to `lines` and
/// written back.
async fn echo_server() -> (SocketAddr, mpsc::UnboundedReceiver<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (r, mut w) = s.into_split();
                let mut r = BufReader::new(r);
                loop {
                    let mut line = Vec::new();
                    match r.read_until(b'\n', &mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {
                            let _ = tx.send(line.clone());
                            if w.write_all(&line).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// A server that hands over each accepted socket.
async fn plain_server() -> (SocketAddr, mpsc::UnboundedReceiver<TcpStream>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let _ = tx.send(s);
        }
    });
    (addr, rx)
}

async fn read_line(c: &mut BufReader<TcpStream>) -> Vec<u8> {
    let mut line = Vec::new();
    timeout(MS(10_000), c.read_until(b'\n', &mut line))
        .await
        .expect("a line within 10 s")
        .expect("read");
    line
}

fn between(what: &str, got: Duration, want: Duration, jitter: Duration) {
    let (lo, hi) = (want.saturating_sub(jitter + MS(2)), want + jitter + SLACK);
    assert!(
        got >= lo && got <= hi,
        "{what}: {got:?}, expected {want:?} (from {lo:?} to {hi:?})"
    );
}

/// latency_test.go `DoLatencyTest`: a 32 KB line to the echo server and
/// back, twice: the server reads it `up` after it was written, the client
/// the echo `down` after that.
async fn latency_round_trips(up: u64, down: u64) {
    let (server, mut lines) = echo_server().await;
    let mut faults = Vec::new();
    if up > 0 || down == 0 {
        faults.push(format!("latency:latency={up}ms,direction=upstream"));
    }
    if down > 0 || up == 0 {
        faults.push(format!("latency:latency={down}ms,direction=downstream"));
    }
    let f: Vec<&str> = faults.iter().map(String::as_str).collect();
    let (p, _log) = proxy(server, &f).await;
    let mut c = BufReader::new(TcpStream::connect(p.addr).await.unwrap());
    let msg = format!("hello world {}\n", "a".repeat(32 * 1024)).into_bytes();
    for round in 0..2 {
        let t0 = Instant::now();
        c.get_mut().write_all(&msg).await.unwrap();
        let got = timeout(MS(10_000), lines.recv()).await.unwrap().unwrap();
        assert_eq!(got, msg);
        between(
            &format!("round {round}: server read (up {up} ms)"),
            t0.elapsed(),
            MS(up),
            MS(0),
        );
        let t1 = Instant::now();
        assert_eq!(read_line(&mut c).await, msg);
        between(
            &format!("round {round}: client read (down {down} ms)"),
            t1.elapsed(),
            MS(down),
            MS(0),
        );
        between(
            &format!("round {round}: round trip"),
            t0.elapsed(),
            MS(up + down),
            MS(0),
        );
    }
}

#[tokio::test]
async fn latency_upstream_downstream_both_biased_and_zero() {
    for (up, down) in [
        (100, 0),
        (0, 100),
        (100, 100),
        (300, 100),
        (100, 300),
        (0, 0),
    ] {
        latency_round_trips(up, down).await;
    }
}

/// latency_test.go `TestTwoLatencyToxics`: two latency toxics on one
/// direction add up.
#[tokio::test]
async fn two_latency_toxics_add_up() {
    let (server, mut lines) = echo_server().await;
    let (p, _log) = proxy(
        server,
        &[
            "latency:latency=200ms,direction=upstream",
            "latency:latency=200ms,direction=upstream",
        ],
    )
    .await;
    let mut c = TcpStream::connect(p.addr).await.unwrap();
    let t0 = Instant::now();
    c.write_all(format!("hello {}\n", "a".repeat(32 * 1024)).as_bytes())
        .await
        .unwrap();
    timeout(MS(10_000), lines.recv()).await.unwrap().unwrap();
    between(
        "two upstream toxics of 200 ms",
        t0.elapsed(),
        MS(400),
        MS(0),
    );
}

/// latency_test.go `TestLatencyToxicBandwidth`: latency delays each chunk
/// from its own arrival, so it does not cap the throughput: 1.2 MB
/// streamed through `latency=100ms` arrives about 100 ms late, not 100 ms
/// per chunk later.
#[tokio::test]
async fn latency_does_not_cap_the_bandwidth() {
    let (server, mut socks) = plain_server().await;
    let (p, _log) = proxy(server, &[]).await;
    let mut c = TcpStream::connect(p.addr).await.unwrap();
    let mut up = socks.recv().await.unwrap();
    let chunk = "hello world ".repeat(1000).into_bytes();
    let writer = tokio::spawn(async move { while up.write_all(&chunk).await.is_ok() {} });
    p.add(spec("latency:latency=100ms"));
    tokio::time::sleep(MS(150)).await;
    let mut buf = vec![0u8; 12_000];
    let t0 = Instant::now();
    let mut count = 0;
    for i in 0..100 {
        c.read_exact(&mut buf).await.unwrap();
        count += buf.len();
        if i < 10 || i % 20 == 0 {
            eprintln!("read {i} at {:?}", t0.elapsed());
        }
    }
    let took = t0.elapsed();
    writer.abort();
    eprintln!("latency toxic bandwidth: {count} bytes in {took:?}");
    // Serialised chunks would take 100 ms each (seconds in all).
    assert!(took < MS(1500), "{count} bytes in {took:?}");
}

/// latency_test.go `TestLatencyToxicCloseRace`: adding and removing a
/// latency toxic around short connections neither hangs nor panics.
#[tokio::test]
async fn latency_toxic_close_race() {
    let (server, _socks) = plain_server().await;
    let (p, _log) = proxy(server, &[]).await;
    let t0 = Instant::now();
    for _ in 0..100 {
        let id = p.add(spec("latency:latency=10ms,direction=upstream"));
        let mut c = TcpStream::connect(p.addr).await.unwrap();
        c.write_all(b"hello").await.unwrap();
        drop(c);
        assert!(p.remove(id));
    }
    assert!(t0.elapsed() < MS(20_000));
    let mut c = BufReader::new(TcpStream::connect(p.addr).await.unwrap());
    c.get_mut().write_all(b"still works").await.unwrap();
}

/// An established connection through the proxy (timeout_test.go
/// `WithEstablishedProxy`): data went both ways.
async fn established(
    p: &RunningProxy,
    socks: &mut mpsc::UnboundedReceiver<TcpStream>,
) -> (TcpStream, TcpStream) {
    let mut c = TcpStream::connect(p.addr).await.unwrap();
    let mut s = socks.recv().await.unwrap();
    let mut buf = [0u8; 6];
    c.write_all(b"foobar").await.unwrap();
    timeout(MS(2000), s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    s.write_all(b"foobar").await.unwrap();
    timeout(MS(2000), c.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    (c, s)
}

/// EOF within `within`, or the error read.
async fn read_end(s: &mut TcpStream, within: Duration) -> std::io::Result<usize> {
    let mut buf = [0u8; 64];
    let mut total = 0;
    loop {
        match timeout(within, s.read(&mut buf)).await {
            Err(_) => panic!("no end within {within:?}"),
            Ok(Ok(0)) => return Ok(total),
            Ok(Ok(n)) => total += n,
            Ok(Err(e)) => return Err(e),
        }
    }
}

/// timeout_test.go `TestTimeoutToxicDoesNotCauseHang`: a timeout toxic
/// behind a latency toxic swallows the data, and the latency toxic is
/// removed at once.
#[tokio::test]
async fn timeout_does_not_cause_a_hang() {
    let (server, mut socks) = plain_server().await;
    let (p, _log) = proxy(server, &[]).await;
    let (mut c, mut s) = established(&p, &mut socks).await;
    let lat = p.add(spec("latency:latency=10ms,direction=upstream"));
    p.add(spec("timeout:timeout=0s,direction=upstream"));
    for _ in 0..5 {
        c.write_all(b"hello").await.unwrap();
        tokio::time::sleep(MS(200)).await;
    }
    let t0 = Instant::now();
    assert!(p.remove(lat));
    assert!(t0.elapsed() < MS(1000));
    let mut buf = [0u8; 5];
    assert!(
        timeout(MS(300), s.read(&mut buf)).await.is_err(),
        "nothing passed the timeout toxic"
    );
}

/// timeout_test.go `TestTimeoutToxicClosesConnectionOnRemove`: removing
/// a timeout toxic closes the connection: both ends read EOF.
#[tokio::test]
async fn removing_a_timeout_closes_the_connection() {
    let (server, mut socks) = plain_server().await;
    let (p, _log) = proxy(server, &[]).await;
    let (mut c, mut s) = established(&p, &mut socks).await;
    let id = p.add(spec("timeout:timeout=0s,direction=upstream"));
    tokio::time::sleep(MS(50)).await;
    assert!(p.remove(id));
    assert_eq!(read_end(&mut c, MS(1000)).await.unwrap(), 0, "client: EOF");
    assert_eq!(read_end(&mut s, MS(1000)).await.unwrap(), 0, "server: EOF");
}

/// The timeout's clock is each connection's own: a connection opened 1.5 s
/// after a `timeout=1000` fault was added lives about 1 s (toxiproxy's
/// toxic runs on each connection's stream), and one already open when the
/// fault came is closed 1 s after it came.
#[tokio::test]
async fn timeout_counts_from_each_connection_open() {
    let (server, mut socks) = plain_server().await;
    let (p, _log) = proxy(server, &[]).await;
    let (mut old, _s1) = established(&p, &mut socks).await;
    let added = Instant::now();
    p.add(spec("timeout:timeout=1000ms"));
    tokio::time::sleep(MS(1500)).await;
    let opened = Instant::now();
    let mut new = TcpStream::connect(p.addr).await.unwrap();
    let _s2 = socks.recv().await.unwrap();
    assert_eq!(read_end(&mut old, MS(3000)).await.unwrap(), 0);
    let old_lived = added.elapsed();
    assert!(
        old_lived >= MS(1000),
        "the open connection closed 1 s after the fault came, not {old_lived:?}"
    );
    assert_eq!(read_end(&mut new, MS(3000)).await.unwrap(), 0);
    between(
        "the new connection's life",
        opened.elapsed(),
        MS(1000),
        MS(0),
    );
}

/// reset_peer_test.go: `reset_peer` without a timeout resets the
/// connection at its first data upstream: the client reads ECONNRESET,
/// then EOF.
#[tokio::test]
async fn reset_peer_resets_at_the_first_data() {
    for (fault, dir) in [
        ("reset-peer:direction=upstream", "upstream"),
        ("reset_peer:timeout=100ms,direction=upstream", "upstream"),
        (
            "reset-peer:timeout=100ms,direction=downstream",
            "downstream",
        ),
    ] {
        let (server, _lines) = echo_server().await;
        let (p, _log) = proxy(server, &[fault]).await;
        let t0 = Instant::now();
        let mut c = TcpStream::connect(p.addr).await.unwrap();
        c.write_all(b"reset toxic payload\n").await.unwrap();
        let mut buf = [0u8; 1000];
        let e = match timeout(MS(5000), c.read(&mut buf)).await.expect("an end") {
            // Downstream: the echo is the first data; it does not arrive.
            Ok(n) => panic!("{fault}: read {n} bytes, expected a reset"),
            Err(e) => e,
        };
        assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{fault}: {e}");
        if fault.contains("100ms") {
            between(
                &format!("reset {dir} after 100 ms"),
                t0.elapsed(),
                MS(100),
                MS(0),
            );
        }
        let n = timeout(MS(1000), c.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(n, 0, "{fault}: EOF after the reset");
    }
}

/// limit_data_test.go: after `bytes` the connection closes; a chunk that
/// would pass the limit is cut at it; data below the limit passes and the
/// connection stays; a limit of 0 passes nothing.
#[tokio::test]
async fn limit_data_counts_bytes_and_closes() {
    for (limit, chunks, want) in [
        (100u64, vec![50usize], 50usize),
        (100, vec![100], 100),
        (100, vec![150], 100),
        (100, vec![25, 25, 25, 25], 100),
        (100, vec![90, 20], 100),
        (0, vec![100], 0),
    ] {
        let (server, mut socks) = plain_server().await;
        let f = format!("limit-data:bytes={limit},direction=downstream");
        let (p, log) = proxy(server, &[&f]).await;
        let mut c = TcpStream::connect(p.addr).await.unwrap();
        c.write_all(b"x").await.unwrap();
        let mut s = socks.recv().await.unwrap();
        let total: usize = chunks.iter().sum();
        for n in &chunks {
            s.write_all(&vec![7u8; *n]).await.unwrap();
            tokio::time::sleep(MS(30)).await;
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        let closed = loop {
            match timeout(MS(600), c.read(&mut buf)).await {
                Err(_) => break false,
                Ok(Ok(0)) => break true,
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                Ok(Err(e)) => panic!("limit {limit} {chunks:?}: {e}"),
            }
        };
        assert_eq!(got.len(), want, "limit {limit}, chunks {chunks:?}");
        assert_eq!(
            closed,
            total >= limit as usize,
            "limit {limit}, chunks {chunks:?}: closed?"
        );
        if closed {
            let told = log
                .wait_for(
                    MS(2000),
                    |e| matches!(&e.kind, EventKind::Fault { name, .. } if name == "limit-data"),
                )
                .await;
            assert!(told.is_some(), "limit-data told");
        }
    }
}

/// bandwidth_test.go: 480 KB through a 1000 KB/s toxic (toxiproxy's API
/// unit) takes about 480 ms.
#[tokio::test]
async fn bandwidth_limits_the_rate() {
    let (server, mut socks) = plain_server().await;
    let (p, _log) = proxy(server, &[]).await;
    let mut c = TcpStream::connect(p.addr).await.unwrap();
    c.write_all(b"x").await.unwrap();
    let mut s = socks.recv().await.unwrap();
    let mut one = [0u8; 1];
    s.read_exact(&mut one).await.unwrap();
    // 1000 KB/s, toxiproxy's rate of 1000 in its API's unit.
    p.add(spec("bandwidth:rate=1000KB,direction=upstream"));
    let payload = "hello world ".repeat(40_000).into_bytes();
    let len = payload.len();
    let w = tokio::spawn(async move {
        c.write_all(&payload).await.unwrap();
        c
    });
    let t0 = Instant::now();
    let mut got = vec![0u8; len];
    timeout(MS(10_000), s.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    between("480 KB at 1000 KB/s", t0.elapsed(), MS(480), MS(0));
    assert!(got
        .iter()
        .zip("hello world ".bytes().cycle())
        .all(|(a, b)| *a == b));
    drop(w);
}

/// slicer over sockets: the bytes arrive whole and in order, sliced with
/// the delay between slices (1000 bytes in 100-byte slices 20 ms apart
/// take at least 180 ms).
#[tokio::test]
async fn slicer_keeps_the_bytes_and_spaces_the_slices() {
    let (server, mut lines) = echo_server().await;
    let (p, _log) = proxy(
        server,
        &["slicer:average_size=100,size_variation=0,delay=20ms,direction=upstream"],
    )
    .await;
    let mut c = BufReader::new(TcpStream::connect(p.addr).await.unwrap());
    let mut msg: Vec<u8> = (0..999u32).map(|i| b'a' + (i % 26) as u8).collect();
    msg.push(b'\n');
    let t0 = Instant::now();
    c.get_mut().write_all(&msg).await.unwrap();
    let got = timeout(MS(10_000), lines.recv()).await.unwrap().unwrap();
    assert_eq!(got, msg);
    assert!(t0.elapsed() >= MS(178), "{:?}", t0.elapsed());
    assert_eq!(read_line(&mut c).await, msg);
}

/// toxic_test.go `TestPersistentConnections` and `TestToxicAddRemove`:
/// faults coming and going (also while data flows) leave the connection
/// up and the bytes intact.
#[tokio::test]
async fn connections_persist_while_faults_come_and_go() {
    let (server, mut lines) = echo_server().await;
    let (p, _log) = proxy(server, &[]).await;
    let mut c = BufReader::new(TcpStream::connect(p.addr).await.unwrap());
    p.add(spec("latency:latency=0ms,direction=upstream"));
    p.add(spec("latency:latency=0ms,direction=downstream"));
    for i in 0..3 {
        c.get_mut().write_all(b"hello world\n").await.unwrap();
        assert_eq!(lines.recv().await.unwrap(), b"hello world\n");
        assert_eq!(read_line(&mut c).await, b"hello world\n");
        if i < 2 {
            p.faults.clear();
        }
    }
    let faults = p.faults.clone();
    let churn = tokio::spawn(async move {
        let mut on = false;
        loop {
            let id = faults.add(
                format!(
                    "latency:latency=0ms,direction={}",
                    if on { "upstream" } else { "downstream" }
                )
                .parse()
                .unwrap(),
            );
            tokio::task::yield_now().await;
            faults.remove(id);
            on = !on;
        }
    });
    for _ in 0..100 {
        c.get_mut().write_all(b"hello world\n").await.unwrap();
        assert_eq!(lines.recv().await.unwrap(), b"hello world\n");
        assert_eq!(read_line(&mut c).await, b"hello world\n");
    }
    churn.abort();
}

/// toxic_test.go `TestProxyLatency`: the proxy itself adds little; 100
/// echo round trips average well under a millisecond each way on an idle
/// machine (here: under 5 ms a round trip, for a busy one).
#[tokio::test]
async fn the_proxy_adds_little_latency() {
    let (server, mut lines) = echo_server().await;
    let (p, _log) = proxy(server, &[]).await;
    let mut c = BufReader::new(TcpStream::connect(p.addr).await.unwrap());
    let t0 = Instant::now();
    for _ in 0..100 {
        c.get_mut().write_all(b"hello world\n").await.unwrap();
        lines.recv().await.unwrap();
        read_line(&mut c).await;
    }
    let each = t0.elapsed() / 100;
    eprintln!("average round trip through the proxy: {each:?}");
    assert!(each < MS(5), "{each:?}");
}

/// toxicity (bidirectional_test.go's toxicity cases): rolled once per
/// connection - 0 never acts, 1 always, 0.5 on about half of them.
#[tokio::test]
async fn toxicity_is_rolled_per_connection() {
    let (server, mut socks) = plain_server().await;
    for (toxicity, lo, hi) in [(0.0, 0, 0), (1.0, 60, 60), (0.5, 15, 45)] {
        let f = format!("reset:probability={toxicity}");
        let (p, log) = proxy(server, &[&f]).await;
        for _ in 0..60 {
            // A reset may come before connect() returns.
            if let Ok(mut c) = TcpStream::connect(p.addr).await {
                let _ = c.write_all(b"x").await;
            }
            while let Ok(s) = socks.try_recv() {
                drop(s);
            }
        }
        tokio::time::sleep(MS(300)).await;
        let resets = log
            .all()
            .iter()
            .filter(|e| matches!(&e.kind, EventKind::Fault { name, .. } if name == "reset"))
            .count();
        assert!(
            (lo..=hi).contains(&resets),
            "toxicity {toxicity}: {resets} of 60 connections reset"
        );
    }
}
