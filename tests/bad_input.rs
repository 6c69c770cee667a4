//! The bad-input catalogue: every kind of input a user gives (addresses,
//! durations, numbers, JSON, protos, YAML, fault specs, metadata, file
//! paths) across every command, each rejected with exit 2, a message that
//! names the input and what was expected, nothing on stdout, no panic, and
//! before anything is sent. The README's troubleshooting section lists the
//! same cases.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_grpcdoc");

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn every_bad_input_is_exit_2_with_a_message_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad_proto = write(dir.path(), "bad.proto", "syntax = \"proto3\";\nmessage {\n");
    let not_protoset = write(dir.path(), "set.pb", "{\"not\": \"a protoset\"}");
    let bad_yaml = write(
        dir.path(),
        "bad.yaml",
        "name: x\nduration: 2s\nserver:\n  builtin: { delay: slow }\n",
    );
    let misspelt_sc = write(
        dir.path(),
        "sc.yaml",
        "name: x\nduration: 2s\nserver:\n  builtin: {}\nclients:\n  - name: c\n    service_config:\n      methodConfig:\n        - name: [{}]\n          retryPolcy: { maxAttempts: 3 }\n    load: { call: helloworld.Greeter/SayHello }\n",
    );
    let bad_code_sc = write(
        dir.path(),
        "code.yaml",
        "name: x\nduration: 2s\nserver:\n  builtin: {}\nclients:\n  - name: c\n    service_config: { methodConfig: [{ name: [{}], retryPolicy: { maxAttempts: 3, initialBackoff: 0.1s, maxBackoff: 1s, backoffMultiplier: 2, retryableStatusCodes: [UNAVALABLE] } }] }\n    load: { call: helloworld.Greeter/SayHello }\n",
    );
    let percent_rate = write(
        dir.path(),
        "rate.yaml",
        "name: x\nduration: 2s\nserver:\n  builtin: {}\nclients:\n  - name: c\n    load: { call: helloworld.Greeter/SayHello }\nexpect:\n  - success_rate: { at_least: 99 }\n",
    );
    let bad_percentile = write(
        dir.path(),
        "pct.yaml",
        "name: x\nduration: 2s\nserver:\n  builtin: {}\nclients:\n  - name: c\n    load: { call: helloworld.Greeter/SayHello }\nexpect:\n  - latency: { percentile: fast, at_most: 100ms }\n",
    );
    let proto = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/proto/helloworld/helloworld.proto"
    );
    let include = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");
    let greeter = [
        "load",
        "127.0.0.1:1",
        "--proto",
        proto,
        "-I",
        include,
        "--call",
        "helloworld.Greeter/SayHello",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        greeter.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let s = |v: &[&str]| -> Vec<String> { v.iter().map(|s| s.to_string()).collect() };
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        // Addresses.
        ("target bracket", s(&["watch", "http://[::1"]), "`[::1` opens [ but does not close it; expected HOST:PORT"),
        ("target scheme", s(&["watch", "ftp://x:1"]), "unknown scheme `ftp`"),
        ("target port", s(&["watch", "localhost:http"]), "localhost:http"),
        ("listen address", s(&["proxy", "--listen", "127.0.0.1:99999", "--upstream", "127.0.0.1:1"]), "'127.0.0.1:99999' for '--listen <ADDR>': expected IP:PORT"),
        // Durations.
        ("duration unit", s(&["watch", "127.0.0.1:1", "--keepalive-time", "1x"]), "'1x' for '--keepalive-time <DURATION>'"),
        ("duration word", s(&["serve", "--max-connection-idle", "soon"]), "expected a duration like 500ms, 2s or 1m30s"),
        // Numbers.
        ("count word", with(&["-c", "many"]), "`many` is not a number; expected a whole number from 1 to 1000000"),
        ("count zero", with(&["-c", "0"]), "0 is out of range; expected a whole number from 1 to 1000000"),
        ("total", with(&["-n", "none"]), "`none` is not a number of calls"),
        ("rate", with(&["--rps", "0"]), "expected calls per second above 0"),
        ("threshold", with(&["--fail-on", "p99>>5"]), "`>5` in `p99>>5` is not a duration like 50ms"),
        // Methods and metadata.
        ("method", s(&["load", "127.0.0.1:1", "--call", "nope"]), "`nope` is not a method; expected pkg.Service/Method"),
        ("unknown method", s(&["load", "127.0.0.1:1", "--proto", proto, "-I", include, "--call", "helloworld.Greeter/Nope"]), "no method helloworld.Greeter/Nope; the methods found are"),
        ("metadata form", with(&["-H", "nocolon"]), "`nocolon` is not `key: value`"),
        ("metadata reserved", with(&["-H", "grpc-status: 1"]), "`grpc-status` is reserved by gRPC"),
        // JSON.
        ("json syntax", with(&["-d", "{\"name\": "]), "-d:1:"),
        ("json type", with(&["-d", "{\"name\": 1}"]), "-d:1:10: invalid type: integer `1`, expected a string (the request type is helloworld.HelloRequest)"),
        ("json field", with(&["-d", "{\"name\": \"x\",\n \"extra\": 1}"]), "-d:2:8: unrecognized field name 'extra'"),
        ("service config", with(&["--service-config", "{\"methodConfig\": [}"]), "--service-config:1:19:"),
        ("service config key", with(&["--service-config", "{\"methodConfig\": [{\"name\": [{}], \"retryPolcy\": {}}]}"]), "unknown field `retryPolcy`, expected one of"),
        ("service config attempts", with(&["--service-config", "{\"methodConfig\": [{\"name\": [{\"service\": \"other.Svc\"}], \"retryPolicy\": {\"maxAttempts\": 1, \"initialBackoff\": \"0.1s\", \"maxBackoff\": \"1s\", \"backoffMultiplier\": 2, \"retryableStatusCodes\": [\"UNAVAILABLE\"]}}]}"]), "retryPolicy.maxAttempts must be at least 2"),
        // Protos.
        ("proto syntax", s(&["load", "127.0.0.1:1", "--proto", &bad_proto, "--call", "a.B/C"]), "cannot compile the .proto files: bad.proto"),
        ("proto missing", s(&["load", "127.0.0.1:1", "--proto", "/nonexistent/x.proto", "--call", "a.B/C"]), "cannot read --proto /nonexistent/x.proto: no such file"),
        ("protoset", s(&["load", "127.0.0.1:1", "--protoset", &not_protoset, "--call", "a.B/C"]), "cannot read the protoset"),
        // YAML.
        ("scenario yaml", s(&["scenario", &bad_yaml]), "bad.yaml:4:21: `slow` is not a duration"),
        ("scenario service config key", s(&["scenario", "--check", &misspelt_sc]), "sc.yaml:10:11: client `c`: service_config: unknown field `retryPolcy`"),
        ("scenario success rate", s(&["scenario", "--check", &percent_rate]), "rate.yaml:9:31: success_rate is a fraction from 0 to 1: for 99% write 0.99"),
        ("scenario percentile", s(&["scenario", "--check", &bad_percentile]), "pct.yaml:9:28: `fast` is not a percentile; write 99, 99.9 or p99"),
        ("scenario service config code", s(&["scenario", "--check", &bad_code_sc]), "unknown status code `UNAVALABLE` in retryableStatusCodes"),
        // Fault specs.
        ("fault name", s(&["proxy", "--upstream", "127.0.0.1:1", "--fault", "wobble"]), "unknown fault `wobble`; the faults are: latency"),
        ("fault value", s(&["proxy", "--upstream", "127.0.0.1:1", "--fault", "latency:latency=fast"]), "latency: `latency=fast` is not a duration"),
        ("fault key", s(&["proxy", "--upstream", "127.0.0.1:1", "--fault", "latency:speed=1"]), "latency: unknown parameter `speed`"),
        // File paths.
        ("data file", with(&["-d", "@/nonexistent/data.json"]), "cannot read /nonexistent/data.json"),
        ("service config file", with(&["--service-config", "@/nonexistent/sc.json"]), "cannot read the service config /nonexistent/sc.json"),
        ("tls cert", s(&["serve", "--listen", "127.0.0.1:0", "--tls-cert", "/nonexistent/c.pem", "--tls-key", "/nonexistent/k.pem"]), "cannot read the TLS certificate /nonexistent/c.pem"),
        ("ca file", s(&["watch", "https://127.0.0.1:1", "--cacert", "/nonexistent/ca.pem"]), "/nonexistent/ca.pem"),
        ("scenario file", s(&["scenario", "/nonexistent/s.yaml"]), "cannot read the scenario /nonexistent/s.yaml"),
        // Flags.
        ("unknown flag", s(&["watch", "127.0.0.1:1", "--keepalive"]), "unexpected argument '--keepalive'"),
        ("unknown shell", s(&["completions", "cmd.exe"]), "'cmd.exe'"),
    ];
    let mut failures = Vec::new();
    for (what, args, says) in &cases {
        let out = Command::new(BIN)
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let ok = out.status.code() == Some(2)
            && stderr.contains(says)
            && out.stdout.is_empty()
            && !stderr.contains("panicked")
            && stderr.lines().count() <= 25;
        if !ok {
            failures.push(format!(
                "{what}: exit {:?}, wanted {says:?} in\n{stderr}stdout: {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stdout)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
}

#[test]
fn secrets_in_metadata_never_reach_an_output() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = write(
        dir.path(),
        "secret.yaml",
        "name: x\nduration: 2s\nclient:\n  load: { call: a.B/C, metadata: { authorization: \"Bearer s3cr3t-yaml\" } }\n",
    );
    let runs: Vec<Vec<&str>> = vec![
        // clap quotes a value it rejects.
        vec![
            "load",
            "127.0.0.1:1",
            "--call",
            "a.B/C",
            "-H",
            "authorization: Bearer s3cr3t\u{7f}",
        ],
        vec![
            "load",
            "127.0.0.1:1",
            "--call",
            "a.B/C",
            "-H",
            "x-api-key: s3cr3t\u{7f}",
        ],
        // A scenario error quotes the line.
        vec!["scenario", &yaml],
        // A good secret on a call that fails.
        vec![
            "load",
            "127.0.0.1:1",
            "--call",
            "a.B/C",
            "-H",
            "cookie: s3cr3t",
            "-n",
            "1",
        ],
    ];
    for args in runs {
        let out = Command::new(BIN).args(&args).output().unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(2), "{args:?}: {all}");
        assert!(!all.contains("s3cr3t"), "{args:?} leaked: {all}");
        if args[0] != "load" || args.len() < 8 {
            assert!(all.contains("[redacted]"), "{args:?}: {all}");
        }
    }
}

#[test]
fn version_completions_and_man_page() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        v.starts_with(&format!("grpcdoc {} (", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("scenario") && text.contains("keepalive-time"),
            "{shell}"
        );
    }
    let out = Command::new(BIN).arg("man").output().unwrap();
    assert!(out.status.success());
    let man = String::from_utf8_lossy(&out.stdout);
    assert!(man.contains(".TH grpcdoc 1"), "{man}");
    assert!(man.contains("scenario"), "{man}");
    let out = Command::new(BIN).args(["man", "load"]).output().unwrap();
    assert!(out.status.success());
    let man = String::from_utf8_lossy(&out.stdout);
    assert!(
        man.contains(".TH grpcdoc-load 1") && man.contains("fail\\-on"),
        "{man}"
    );
    assert!(man.contains("Examples:"), "{man}");
    // A command's page lists grpcdoc's version flag nowhere.
    assert!(!man.contains("\\-V"), "{man}");
    let out = Command::new(BIN).args(["man", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    // Every page at once, as packagers install them.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["man", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    for page in [
        "grpcdoc.1",
        "grpcdoc-load.1",
        "grpcdoc-doctor.1",
        "grpcdoc-explain.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
        assert!(text.contains(".TH grpcdoc"), "{page}");
    }
    // The completions know `grpcdoc man <command>`.
    let out = Command::new(BIN)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("serve watch load proxy scenario doctor explain"),
        "{text}"
    );
}
