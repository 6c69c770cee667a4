//! Conformance tier: the failure catalogue checked against the real gRPC
//! stacks. For each catalogue entry a loopback setup can produce, the six
//! real clients from `../shared/peers` - `gogrpc-watch` (grpc-go 1.33),
//! `grpcurl` (grpc-go 1.44), `k6` (grpc-go 1.73), `pygrpc-watch` (C-core
//! 1.85), `nodegrpc-watch` (grpc-js 1.14), `javagrpc-watch` (grpc-java
//! 1.41) - make a call each against the real servers (grpc-go, C-core,
//! grpc-js, grpc-java, or `grpcdoc serve`), through `grpcdoc proxy` or a
//! real nginx, HAProxy or Caddy where the entry involves a proxy, and the
//! test checks (a), (b) and (c) of `check.rs`: each client printed what the
//! catalogue lists for its stack, `explain` on it names the entry, and
//! grpcdoc's own `load` or `watch` names it. Each case prints its rows on
//! stderr (`--nocapture`). Needs the peers (`PEERS_HOME`); without them
//! each case says so and returns, unless `GRPCDOC_REQUIRE_PEERS=1` (set by
//! `.ci/run`). Every process a case starts dies with it (`procs.rs`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[path = "../common/mod.rs"]
mod common;

mod check;
mod clients;
mod procs;

use clients::{Call, Client, Said, PINGING, PROTO_DIR, SIX};
use common::free_addr;
use procs::{
    dead_port, fault_proxy, middlebox, peers, server, spawn, wait_connections, Middlebox, Server,
    BIN,
};

/// A server with `flags`; the six clients call it with the server delay
/// `delay_ms` and the deadline `timeout_s`, (a) and (b) for `id`; then
/// (c): grpcdoc load, the same calls, names it.
fn server_case(which: Server, flags: &[&str], id: &str, delay_ms: u64, timeout_s: u64) {
    let p = peers().expect("peers");
    let (_server, addr) = server(&p, which, flags);
    let said = clients::run(&p, SIX, &Call::new(addr, delay_ms, timeout_s), || {});
    check::clients_say(id, &said);
    let delay = format!("x-delay-ms: {delay_ms}");
    let timeout = format!("{timeout_s}s");
    let extra = ["-H", &delay, "-n", "2", "-c", "2", "--timeout", &timeout];
    check::load_names(id, &check::load(&addr.to_string(), &extra));
}

/// A grpc-go server behind `which` with `lines`, or (`up: false`) `which`
/// with nothing at its upstream; the six clients call through it, (a) and
/// (b) for `id`, and (c) grpcdoc load through it names `id`.
fn proxy_case(which: Middlebox, lines: &[&str], up: bool, id: &str, delay_ms: u64) {
    let p = peers().expect("peers");
    let (_server, _dead, upstream) = match up {
        true => {
            let (s, a) = server(&p, Server::Go, &[]);
            (Some(s), None, a)
        }
        false => {
            let (d, a) = dead_port();
            (None, Some(d), a)
        }
    };
    let (_proxy, listen) = middlebox(&p, which, upstream, lines);
    eprintln!("conformance | {id} | through {} | {lines:?}", which.name());
    let said = clients::run(&p, SIX, &Call::new(listen, delay_ms, 8), || {});
    check::clients_say(id, &said);
    let delay = format!("x-delay-ms: {delay_ms}");
    let extra = ["-H", &delay, "-n", "2", "-c", "2"];
    check::load_names(id, &check::load(&listen.to_string(), &extra));
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn connection_refused() {
    let Some(p) = peers() else { return };
    let (_dead, addr) = dead_port();
    let said = clients::run(&p, SIX, &Call::new(addr, 0, 3), || {});
    check::clients_say("connection-refused", &said);
    let flags = ["--for", "1500ms"];
    check::watch_names("connection-refused", &addr.to_string(), &flags, || {});
}

/// The grpc-go server SIGKILLed once every client's call is in flight (the
/// server holds each for 20 s: long enough for a JVM to start on a busy
/// machine; the kill ends them).
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn server_crash() {
    let Some(p) = peers() else { return };
    let (mut go, addr) = server(&p, Server::Go, &[]);
    let said = clients::run(&p, SIX, &Call::new(addr, 20_000, 25), || {
        wait_connections(addr, SIX.len(), Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(700));
        go.kill();
    });
    check::clients_say("server-crash", &said);
    // grpcdoc load, its calls in flight when the server is killed.
    let (mut go, addr) = server(&p, Server::Go, &[]);
    let target = addr.to_string();
    let extra = ["-H", "x-delay-ms: 20000", "-n", "4", "-c", "4"];
    let report = std::thread::scope(|s| {
        let load = s.spawn(|| check::load(&target, &[&extra[..], &["--timeout", "25s"]].concat()));
        wait_connections(addr, 1, Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(700));
        go.kill();
        load.join().expect("the load thread")
    });
    check::load_names("server-crash", &report);
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn rst_stream_cancel() {
    let Some(p) = peers() else { return };
    let (_server, up) = server(&p, Server::Go, &[]);
    let (_proxy, listen) = fault_proxy(up, "inject-rst-stream:code=CANCEL");
    let said = clients::run(&p, SIX, &Call::new(listen, 0, 5), || {});
    check::clients_say("rst-stream", &said);
    check::load_names(
        "rst-stream",
        &check::load(&listen.to_string(), &["-n", "5"]),
    );
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn deadline_exceeded() {
    if peers().is_some() {
        server_case(Server::Go, &[], "deadline", 3000, 1);
    }
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
    let args = [
        "serve",
        "--listen",
        &addr.to_string(),
        "--tls-cert",
        &c.display().to_string(),
        "--tls-key",
        &k.display().to_string(),
        "--for",
        "60s",
    ]
    .map(String::from);
    let _server = spawn(Path::new(BIN), &args, addr);
    let said = clients::run(&p, SIX, &Call::new(addr, 0, 3), || {});
    check::clients_say("tls-mismatch", &said);
    let flags = ["--for", "1500ms"];
    check::watch_names("tls-mismatch", &addr.to_string(), &flags, || {});
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn max_age_grace_on_c_core() {
    if peers().is_some() {
        let flags = [
            "--max-connection-age-ms",
            "1000",
            "--max-connection-age-grace-ms",
            "1000",
        ];
        server_case(Server::Core, &flags, "max-age-grace-c-core", 4000, 8);
    }
}

const AGE_AND_GRACE: &[&str] = &["-max-conn-age", "1s", "-max-conn-age-grace", "1s"];

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn drain_cut_by_grpc_go_max_age_grace() {
    if peers().is_some() {
        server_case(Server::Go, AGE_AND_GRACE, "drain-cut", 4000, 8);
    }
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn drain_cut_by_grpc_js_max_age_grace() {
    if peers().is_some() {
        server_case(Server::Node, AGE_AND_GRACE, "drain-cut", 4000, 8);
    }
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn drain_cut_by_grpc_java_max_age_grace() {
    if peers().is_some() {
        server_case(Server::Java, AGE_AND_GRACE, "drain-cut", 4000, 8);
    }
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn proxy_timeout_from_nginx() {
    if peers().is_some() {
        let lines = ["grpc_read_timeout 1s;"];
        proxy_case(Middlebox::Nginx, &lines, true, "proxy-timeout", 3000);
    }
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn proxy_timeout_from_haproxy() {
    if peers().is_some() {
        let lines = ["timeout server 1s"];
        proxy_case(Middlebox::Haproxy, &lines, true, "proxy-timeout", 3000);
    }
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn proxy_timeout_from_caddy() {
    if peers().is_some() {
        let lines = ["response_header_timeout 1s"];
        proxy_case(Middlebox::Caddy, &lines, true, "proxy-timeout", 3000);
    }
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn nginx_with_its_upstream_down() {
    if peers().is_some() {
        proxy_case(Middlebox::Nginx, &[], false, "proxy-no-upstream", 0);
    }
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn haproxy_with_its_upstream_down() {
    if peers().is_some() {
        proxy_case(Middlebox::Haproxy, &[], false, "proxy-no-upstream", 0);
    }
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn caddy_with_its_upstream_down() {
    if peers().is_some() {
        proxy_case(Middlebox::Caddy, &[], false, "proxy-no-upstream", 0);
    }
}

/// Servers with an idle timeout: C-core (GOAWAY INTERNAL_ERROR "connection
/// idle"), grpc-go (NO_ERROR, no debug data in 1.33), grpc-java (NO_ERROR
/// "max_idle"), grpc-js. No client prints an error for them unless a call
/// races the GOAWAY, so (a) and (b) have nothing to check; (c) grpcdoc
/// watch names the idle timeout for each, not "look at the server's logs".
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn idle_timeouts_of_four_servers() {
    let Some(p) = peers() else { return };
    let servers = [
        server(&p, Server::Core, &["--max-connection-idle-ms", "2000"]),
        server(&p, Server::Go, &["-max-conn-idle", "2s"]),
        server(&p, Server::Java, &["-max-conn-idle", "2s"]),
        server(&p, Server::Node, &["--max-connection-idle-ms", "2000"]),
    ];
    std::thread::scope(|s| {
        for (_, addr) in &servers {
            s.spawn(move || {
                // grpc-js checks the idle time (Date.now) when its timer
                // fires and, if that comes out short, waits a whole period
                // more: its GOAWAY came after 4 s of a 2 s idle timeout once.
                let flags = ["--probe", "none", "--for", "5500ms"];
                let (ids, text) = check::watch_ids(&addr.to_string(), &flags, || {});
                let goaway = text
                    .lines()
                    .find(|l| l.contains("\"kind\":\"goaway\",\"dir\":\"received\""))
                    .unwrap_or_else(|| panic!("an idle GOAWAY from {addr}:\n{text}"));
                let named = ids.iter().any(|i| i == "idle-timeout");
                eprintln!("conformance | idle-timeout | grpcdoc watch | {goaway} | ids {ids:?}");
                assert!(named, "{addr}: {ids:?}\n{text}");
            });
        }
    });
}

/// The clients that ping every second, one call in flight, against a server
/// that allows a PING every 5 minutes (grpc-go's default) or 5 s
/// (`javagrpc-server -ka-min-time`); (c) grpcdoc watch pinging every
/// second at the same time. The grpc-js server enforces no ping policy.
fn too_many_pings(which: Server, flags: &[&str]) {
    let p = peers().expect("peers");
    let (_server, addr) = server(&p, which, flags);
    let call = Call::new(addr, 10_000, 12).keepalive(1000, None);
    let mut said = Vec::new();
    let watch = [
        "--probe",
        "none",
        "--keepalive-time",
        "1s",
        "--keepalive-permit-without-stream",
        "--for",
        "6s",
    ];
    check::watch_names("too-many-pings", &addr.to_string(), &watch, || {
        said = clients::run(&p, PINGING, &call, || {});
    });
    check::clients_say("too-many-pings", &said);
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn too_many_pings_from_grpc_go() {
    if peers().is_some() {
        too_many_pings(Server::Go, &[]);
    }
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn too_many_pings_from_grpc_java() {
    if peers().is_some() {
        too_many_pings(Server::Java, &["-ka-min-time", "5s"]);
    }
}

/// A grpc-go server that allows pings, SIGSTOPped once the clients' calls
/// (held 20 s by the server) are in flight and grpcdoc watch has
/// connected: their PINGs go unanswered. C-core 1.85 is not among them:
/// with keepalive 1 s / 1 s its call still ran into the deadline.
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn keepalive_timeout_against_a_stopped_grpc_go_server() {
    let Some(p) = peers() else { return };
    let flags = ["-ka-min-time", "1ns", "-ka-permit-without-stream"];
    let (go, addr) = server(&p, Server::Go, &flags);
    let pinging = [Client::Go133, Client::Node, Client::Java];
    let call = Call::new(addr, 20_000, 25).keepalive(1000, Some(1000));
    let watch = [
        "--probe",
        "none",
        "--keepalive-time",
        "1s",
        "--keepalive-timeout",
        "1s",
        "--keepalive-permit-without-stream",
        "--for",
        "6s",
    ];
    let said = clients::run(&p, &pinging, &call, || {
        wait_connections(addr, pinging.len(), Duration::from_secs(30));
        check::watch_names("keepalive-timeout", &addr.to_string(), &watch, || {
            wait_connections(addr, pinging.len() + 1, Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(700));
            go.signal(libc::SIGSTOP);
        });
    });
    check::clients_say("keepalive-timeout", &said);
}

/// (c) only: `grpcdoc watch` with `flags` against a grpc-go server that gets
/// `signal` `after_ms` into the watch names `id`.
fn signalled_grpc_go_names(id: &str, flags: &[&str], signal: i32, after_ms: u64) {
    let p = peers().expect("peers");
    let (go, addr) = server(&p, Server::Go, &[]);
    check::watch_names(id, &addr.to_string(), flags, || {
        std::thread::sleep(Duration::from_millis(after_ms));
        go.signal(signal);
    });
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
    if peers().is_some() {
        let flags = ["--health-service", "", "--for", "2s"];
        signalled_grpc_go_names("health-not-serving", &flags, libc::SIGUSR1, 700);
    }
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
    if peers().is_some() {
        let flags = ["--probe-interval", "200ms", "--for", "2s"];
        signalled_grpc_go_names("graceful-stop", &flags, libc::SIGTERM, 800);
    }
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
    let (_server, addr) = server(&p, Server::Go, &["-max-concurrent-streams", "1"]);
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
    check::load_names(
        "stream-limit-queue",
        &check::load(&addr.to_string(), &extra),
    );
}

/// Calls that cross a GOAWAY (the proxy sends one as each connection
/// starts, announcing the last stream it gave the grpc-go server, and
/// refuses the rest): never processed, safe to retry; gRPC clients retry
/// them transparently, so none prints an error; (c) grpcdoc load without
/// transparent retry names the race.
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn goaway_race_through_a_proxy() {
    let Some(p) = peers() else { return };
    let (_server, up) = server(&p, Server::Go, &[]);
    let (_proxy, listen) = fault_proxy(up, "inject-goaway:direction=downstream");
    let extra = ["--no-transparent-retry", "-c", "4", "-z", "1s"];
    check::load_names("goaway-race", &check::load(&listen.to_string(), &extra));
}

/// A 5 MB request against the grpc-go and C-core servers' 4 MiB limit,
/// sent with grpcurl (the watchers send small requests): each server's own
/// message, relayed, is the catalogue's.
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
    let (_go, go) = server(&p, Server::Go, &[]);
    let (_core, core) = server(&p, Server::Core, &[]);
    for addr in [go, core] {
        let mut cmd = Command::new(&p.grpcurl);
        cmd.args(["-plaintext", "-max-time", "10"])
            .args(["-import-path", PROTO_DIR, "-proto", "helloworld.proto"])
            .args(["-d", "@", &addr.to_string(), "helloworld.Greeter/SayHello"])
            .stdin(std::fs::File::open(&big).unwrap());
        let text = clients::output(cmd, Duration::from_secs(30)).all();
        let said = Client::Grpcurl
            .parse(&text)
            .unwrap_or_else(|| panic!("grpcurl said:\n{text}"));
        check::clients_say("message-too-large", &[said]);
    }
}

/// Servers that take requests of at most 2 bytes (`grpc.max_receive_message_length`,
/// C-core and grpc-js): every client's SayHello is larger, and each prints
/// the server's refusal.
fn message_too_large_for_a_small_limit(which: Server) {
    let p = peers().expect("peers");
    let (_server, addr) = server(
        &p,
        which,
        &["--option", "grpc.max_receive_message_length=2"],
    );
    let said = clients::run(&p, SIX, &Call::new(addr, 0, 5), || {});
    check::clients_say("message-too-large", &said);
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn message_too_large_for_a_c_core_server_limit() {
    if peers().is_some() {
        message_too_large_for_a_small_limit(Server::Core);
    }
}

#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn message_too_large_for_a_grpc_js_server_limit() {
    if peers().is_some() {
        message_too_large_for_a_small_limit(Server::Node);
    }
}

// The middlebox scenarios (`scenarios/*.yaml` with `middlebox:` or a
// middlebox fault), each setup run with the real clients: every one fails
// its call with the code the scenario's broken variant shows for grpcdoc's
// own client. Rows: `middlebox | scenario | stack | code | message`.

/// proxy-answers-pings.yaml: nginx in front of a blackholed path; each
/// call hangs until its deadline.
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
#[test]
fn nginx_in_front_of_a_blackholed_server() {
    let Some(p) = peers() else { return };
    let (_server, up) = server(&p, Server::Go, &[]);
    let (_hole, hole) = fault_proxy(up, "blackhole");
    let (_nginx, listen) = middlebox(&p, Middlebox::Nginx, hole, &[]);
    let said = clients::run(&p, SIX, &Call::new(listen, 0, 2), || {});
    check::middlebox_rows("proxy-answers-pings", &said, "DEADLINE_EXCEEDED");
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
    let (_server, up) = server(&p, Server::Go, AGE_AND_GRACE);
    let (_proxy, listen) = fault_proxy(up, "drop-goaway");
    let said = clients::run(&p, SIX, &Call::new(listen, 3000, 8), || {});
    check::middlebox_rows("goaway-swallowed", &said, "UNAVAILABLE");
}

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
    let (_server, up) = server(&p, Server::Go, &[]);
    let (_proxy, listen) = fault_proxy(up, "idle-expiry:idle=1s,then=blackhole");
    let said: Vec<Said> = clients::run(&p, SIX, &Call::new(listen, 0, 1).repeated(2, 2500), || {});
    check::middlebox_rows("l4-idle-drop", &said, "DEADLINE_EXCEEDED");
}

/// The tier's own parts: a client's process group dies with its guard.
#[test]
fn a_process_group_dies_with_its_guard() {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "sleep 30 & echo $!; wait"])
        .stdout(std::process::Stdio::piped());
    let mut proc = procs::Proc::start(cmd);
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(proc.child().stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let grandchild: i32 = line.trim().parse().unwrap();
    drop(proc);
    std::thread::sleep(Duration::from_millis(100));
    // Gone, or a zombie waiting for init to reap it.
    let stat = std::fs::read_to_string(format!("/proc/{grandchild}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(") ").map(|(_, s)| &s[..1]);
    assert!(
        matches!(state, None | Some("Z")),
        "the shell's child {grandchild} outlived the group: {stat}"
    );
}
