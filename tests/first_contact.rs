//! What a new user meets in the first ten minutes: a typo in a service, a
//! wrong port, TLS against a plaintext server, protoc's and grpcurl's
//! conventions, gRPC's target names, settings that do not do what they
//! seem. Each message says what is wrong and points at the fix.

mod common;

use std::process::{Command, Output};

use common::{free_addr, spawn_listening};

const BIN: &str = env!("CARGO_BIN_EXE_grpcdoc");

struct Serve(std::process::Child, String);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve() -> Serve {
    let (c, addr) = spawn_listening(BIN, &["serve", "--listen", "127.0.0.1:0", "--for", "60s"]);
    Serve(c, addr)
}

fn run(args: &[&str]) -> (i32, String, String) {
    run_in(std::path::Path::new("."), args)
}

fn run_in(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let o: Output = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn a_service_typo_lists_the_services_and_the_closest() {
    let s = serve();
    let (code, _, err) = run(&[
        "load",
        &s.1,
        "--call",
        "helloworld.Greter/SayHello",
        "-n",
        "1",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("the server has no service `helloworld.Greter`"),
        "{err}"
    );
    assert!(err.contains("helloworld.Greeter, "), "{err}");
    assert!(err.contains("Did you mean `helloworld.Greeter`?"), "{err}");
    assert!(!err.contains("--proto"), "{err}");
    let (code, _, err) = run(&["load", &s.1, "--call", "Greeter/SayHello", "-n", "1"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("(--call helloworld.Greeter/SayHello)"),
        "{err}"
    );
}

#[test]
fn an_unreachable_server_is_said_to_be_unreachable() {
    let closed = free_addr().to_string();
    let (code, _, err) = run(&[
        "load",
        &closed,
        "--call",
        "helloworld.Greeter/SayHello",
        "-n",
        "1",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("the server is not reachable"), "{err}");
    assert!(
        err.contains("refused the connection: no process listens on that port"),
        "{err}"
    );
    assert!(!err.contains("--proto"), "{err}");
    let s = serve();
    let port = s.1.rsplit(':').next().unwrap();
    let (code, _, err) = run(&[
        "load",
        &format!("https://127.0.0.1:{port}"),
        "--call",
        "helloworld.Greeter/SayHello",
        "-n",
        "1",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("TLS was spoken but the server answered in plaintext"),
        "{err}"
    );
}

#[test]
fn proto_files_resolve_as_protoc_resolves_them() {
    let s = serve();
    let (code, _, err) = run(&[
        "load",
        &s.1,
        "--call",
        "helloworld.Greeter/SayHello",
        "--proto",
        "/nonexistent/x.proto",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot read --proto /nonexistent/x.proto: no such file"),
        "{err}"
    );
    // protoc's and grpcurl's idiom, from another directory.
    let dir = tempfile::tempdir().unwrap();
    let protos = concat!(env!("CARGO_MANIFEST_DIR"), "/proto/helloworld");
    let (code, out, err) = run_in(
        dir.path(),
        &[
            "load",
            &s.1,
            "--call",
            "helloworld.Greeter/SayHello",
            "--proto",
            "helloworld.proto",
            "-I",
            protos,
            "-n",
            "1",
            "-o",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"ok\":1"), "{out}");
    // grpcurl's single-dash spellings.
    let (code, out, err) = run_in(
        dir.path(),
        &[
            "load",
            "-plaintext",
            &s.1,
            "--call",
            "helloworld.Greeter/SayHello",
            "-proto",
            "helloworld.proto",
            "-import-path",
            protos,
            "-n",
            "1",
            "-o",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"ok\":1"), "{out}");
}

#[test]
fn grpc_target_names_are_accepted() {
    let s = serve();
    let port = s.1.rsplit(':').next().unwrap();
    for t in [
        format!("dns:127.0.0.1:{port}"),
        format!("dns:///127.0.0.1:{port}"),
        format!("ipv4:127.0.0.1:{port}"),
    ] {
        let (code, out, err) = run(&["watch", &t, "--for", "300ms", "-o", "json"]);
        assert_eq!(code, 0, "{t}: {err}");
        assert!(out.contains("\"to\":\"READY\""), "{t}: {out}");
    }
    let (code, _, err) = run(&["watch", "--plaintext", &format!("https://127.0.0.1:{port}")]);
    assert_eq!(code, 2);
    assert!(err.contains("--plaintext contradicts"), "{err}");
}

#[test]
fn settings_that_do_not_do_what_they_seem_are_warned_about() {
    let (_, _, err) = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--for",
        "100ms",
        "--max-connection-age-grace",
        "1s",
        "--keepalive-time",
        "10ms",
    ]);
    assert!(
        err.contains("--max-connection-age-grace does nothing without --max-connection-age"),
        "{err}"
    );
    assert!(
        err.contains("grpc-go raises a server keepalive time below 1s to 1s"),
        "{err}"
    );
    let s = serve();
    let (_, out, err) = run(&[
        "watch",
        &s.1,
        "--for",
        "300ms",
        "--keepalive-time",
        "1s",
        "--health-service",
        "nope",
    ]);
    assert!(err.contains("grpc-go clients raise it to 10s"), "{err}");
    // Wrapped to the terminal: compare without the line breaks.
    let flat = out.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("does not know the service name asked for"),
        "{out}"
    );
}

/// On a 100-column terminal (a pty from util-linux's `script`), every line
/// of load's tables fits; the full text stays in `-o json`.
#[test]
fn tables_fit_a_100_column_terminal() {
    let (c, addr) = spawn_listening(
        BIN,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--for",
            "60s",
            "--max-connection-age",
            "300ms",
            "--max-connection-age-grace",
            "10ms",
            "--delay",
            "50ms",
        ],
    );
    let _s = Serve(c, addr.clone());
    let cmd = format!(
        "stty cols 100 rows 50; {BIN} load {addr} --call helloworld.Greeter/SayHello -z 2s -c 20 --no-transparent-retry"
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let plain = regex::Regex::new(r"\x1b\[[0-9;?]*[a-zA-Z]")
        .unwrap()
        .replace_all(&text, "")
        .replace('\r', "");
    assert!(plain.contains("failures by cause"), "{plain}");
    for line in plain
        .lines()
        .filter(|l| l.starts_with(['│', '┌', '└', '╞', '├']))
    {
        assert!(
            line.chars().count() <= 100,
            "{} columns: {line}",
            line.chars().count()
        );
    }
}

/// watch's lines, notes and tables, and doctor's report, written to a pipe
/// (a CI log): every line fits 100 columns.
#[test]
fn watch_and_doctor_fit_100_columns_in_a_pipe() {
    let (c, addr) = spawn_listening(
        BIN,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--for",
            "60s",
            "--max-connection-age",
            "400ms",
        ],
    );
    let _s = Serve(c, addr.clone());
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let runs: [Vec<&str>; 3] = [
        vec!["watch", &addr, "--for", "1500ms", "--frames"],
        vec!["watch", &refused, "--for", "500ms"],
        vec!["doctor", &addr, "--budget", "3s"],
    ];
    for args in runs {
        let out = Command::new(BIN)
            .args(&args)
            .env("NO_COLOR", "1")
            .env_remove("COLUMNS")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.lines().count() > 3, "{args:?}: {text}");
        for line in text.lines() {
            assert!(
                line.chars().count() <= 100,
                "{args:?}: {} columns: {line}",
                line.chars().count()
            );
        }
    }
}
