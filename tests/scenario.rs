//! `grpcdoc scenario` as CI runs it: the shipped scenarios pass, invalid
//! files of every kind are exit 2 with file:line:column, a failing
//! expectation is exit 1 with a diagnosis, and the JSON and JUnit reports
//! parse.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_grpcdoc");

fn scenario(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("scenario")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run grpcdoc scenario")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Shipped scenarios that put a real middlebox (nginx, HAProxy) in the
/// path, and those that need only grpcdoc.
fn needs_middlebox(path: &str) -> bool {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .any(|l| l.starts_with("middlebox:"))
}

fn shipped() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.display().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn shipped_scenarios_pass_and_the_junit_report_parses() {
    let files: Vec<String> = shipped()
        .into_iter()
        .filter(|f| !needs_middlebox(f))
        .collect();
    assert!(files.len() >= 5, "{files:?}");
    check_shipped(&files);
}

/// The scenarios with real nginx and HAProxy in the path: in the tier with
/// the peers (`GRPCDOC_REQUIRE_PEERS=1`), where both are installed.
#[test]
#[cfg_attr(
    not(grpcdoc_peers),
    ignore = "needs the gRPC peers: run ../shared/peers/setup.sh and set PEERS_HOME (README, Build)"
)]
fn middlebox_scenarios_pass_with_real_nginx_and_haproxy() {
    let files: Vec<String> = shipped()
        .into_iter()
        .filter(|f| needs_middlebox(f))
        .collect();
    assert!(files.len() >= 3, "{files:?}");
    let missing: Vec<&str> = ["nginx", "haproxy"]
        .into_iter()
        .filter(|p| grpcdoc::scenario::plan::find_program(p).is_none())
        .collect();
    if !missing.is_empty() {
        assert!(
            std::env::var_os("GRPCDOC_REQUIRE_PEERS").is_none(),
            "GRPCDOC_REQUIRE_PEERS is set but {missing:?} are not installed"
        );
        eprintln!("skipped: {missing:?} not installed (../shared/peers/setup.sh installs them)");
        return;
    }
    check_shipped(&files);
}

fn check_shipped(files: &[String]) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("junit.xml");
    let mut args: Vec<&str> = files.iter().map(String::as_str).collect();
    args.extend(["-o", "junit", "--report", report.to_str().unwrap()]);
    let out = scenario(&args);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    // Every shipped scenario shows the failure and its fix, side by side.
    for f in files {
        let name = Path::new(f).file_stem().unwrap().to_str().unwrap();
        // The broken variant shows the failure, the fixed one the fix.
        for (variant, word) in [("broken", "reproduced"), ("fixed", "fixed")] {
            assert!(
                stdout.contains(&format!("{name} [{variant}]: {word}: ")),
                "{name} [{variant}]: {stdout}"
            );
        }
        assert!(
            stdout.contains(&format!("{name}: the variants side by side")),
            "{name}: {stdout}"
        );
    }
    let variants = stdout.matches("]: reproduced: ").count() + stdout.matches("]: fixed: ").count();
    // The JUnit XML is well-formed and has one testcase per expectation.
    let xml = std::fs::read_to_string(&report).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("valid XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("failures"), Some("0"));
    let suites: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    // A testsuite per variant.
    assert_eq!(suites.len(), variants);
    assert!(suites
        .iter()
        .any(|s| s.attribute("name").is_some_and(|n| n.ends_with(" [fixed]"))));
    let cases = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .count();
    assert_eq!(
        root.attribute("tests").unwrap().parse::<usize>().unwrap(),
        cases
    );
    assert!(cases >= files.len() * 3);
}

#[test]
fn a_failing_expectation_is_exit_1_with_a_diagnosis_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fails.yaml");
    std::fs::write(
        &path,
        r#"name: fails
duration: 2s
client:
  name: c
  load:
    call: grpcdoc.echo.v1.Echo/Unary
    data: { status_code: 14, status_message: "down for maintenance" }
    rps: 20
expect:
  - success_rate: { client: c, at_least: 0.9 }
  - rpcs: { client: c, code: UNAVAILABLE, at_least: 1 }
"#,
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let out = scenario(&[p]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL  success_rate client=c at_least=0.9  (found 0.0000"),
        "{stdout}"
    );
    assert!(
        stdout.contains("failed calls were status:UNAVAILABLE"),
        "{stdout}"
    );
    assert!(
        stdout.contains("PASS  rpcs client=c code=UNAVAILABLE at_least=1"),
        "{stdout}"
    );

    let out = scenario(&[p, "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON report");
    assert_eq!(v["kind"], "scenario_report");
    assert_eq!(v["passed"], false);
    let e = &v["scenarios"][0]["expectations"];
    assert_eq!(e[0]["passed"], false);
    assert!(e[0]["diagnosis"].as_str().unwrap().contains("UNAVAILABLE"));

    let report = dir.path().join("r.xml");
    let out = scenario(&[p, "-o", "junit", "--report", report.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let xml = std::fs::read_to_string(&report).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let failure = doc
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .expect("a failure element");
    assert!(failure
        .attribute("message")
        .unwrap()
        .starts_with("found 0.0000"));
}

#[test]
fn invalid_files_are_exit_2_with_file_line_column() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &str)] = &[
        ("syntax", "name: x\nduration: 2s\nclient: [\n", ":3:"),
        ("unknown key", "name: x\nduration: 2s\nserver:\n  builtin:\n    max_connection_idel: 1s\n", ":5:5: unknown key `max_connection_idel` in builtin; did you mean `max_connection_idle`?"),
        ("bad duration", "name: x\nduration: soon\n", ":2:11: `soon` is not a duration"),
        ("type", "name: x\nduration: 2s\nclient:\n  connections: many\n", ":4:"),
        ("unknown action", "name: x\nduration: 2s\ntimeline:\n  - at: 1s\n    explode: {}\n", ":5:5: unknown key `explode` in timeline; known: at, backend_add"),
        ("two actions", "name: x\nduration: 2s\ntimeline:\n  - at: 1s\n    mark: a\n    server_start: {}\n", ":4:5: a step has exactly one action"),
        ("after the end", "name: x\nduration: 2s\ntimeline:\n  - at: 3s\n    mark: late\n", ":4:9: the step at 3s is after the end of the scenario (2s)"),
        ("unknown mark", "name: x\nduration: 2s\nclient: {}\nexpect:\n  - rpcs: { after: nope, at_least: 1 }\n", ":5:20: no step sets the mark `nope`"),
        ("unknown client", "name: x\nduration: 2s\nclient: {}\nexpect:\n  - rpcs: { client: who, at_least: 1 }\n", ":5:21: no client or probe is named `who`"),
        ("no bound", "name: x\nduration: 2s\nexpect:\n  - rpcs: { code: OK }\n", ":4:5: a count or rate needs at_least"),
        ("bad fault", "name: x\nduration: 2s\nproxy:\n  faults: [\"wobble\"]\n", ":4:12: unknown fault `wobble`"),
        ("fault without proxy", "name: x\nduration: 2s\ntimeline:\n  - at: 1s\n    fault_add: { fault: blackhole }\n", ":4:5: fault_add needs a proxy"),
        ("bad method", "name: x\nduration: 2s\nclient:\n  load: { call: helloworld.Greeter/Nope }\n", ":4:17: no method helloworld.Greeter/Nope"),
        ("data mismatch", "name: x\nduration: 2s\nclient:\n  load: { call: helloworld.Greeter/SayHello, data: { nmae: x } }\n", "does not fit helloworld.HelloRequest"),
        ("goaway code", "name: x\nduration: 2s\nexpect:\n  - goaways: { code: SOMETIMES, at_least: 1 }\n", ":4:22: `SOMETIMES` is not an HTTP/2 error code"),
        ("no backends", "name: x\nduration: 2s\nbackends: 0\n", ":3:11: backends must be 1 or more"),
        ("backends at an address", "name: x\nduration: 2s\nbackends: 2\nserver: { address: \"127.0.0.1:1\" }\n", ":3:11: several backends need servers grpcdoc starts"),
        ("no such backend", "name: x\nduration: 2s\nbackends: 2\ntimeline:\n  - at: 1s\n    server_stop: { backend: 3 }\n", ":6:29: there is no backend 3: backends are numbered from 1 to 2"),
        ("removed backend", "name: x\nduration: 3s\nbackends: 2\ntimeline:\n  - at: 1s\n    backend_remove: { backend: 2 }\n  - at: 2s\n    health: { backend: 2, status: SERVING }\n", ":8:24: backend 2 was removed by an earlier step"),
        ("set a command server", "name: x\nduration: 2s\nserver: { command: [\"srv\", \"{port}\"] }\ntimeline:\n  - at: 1s\n    server_set: { delay: 1s }\n", ":5:5: server_set steps need the builtin server"),
        ("probe through nobody", "name: x\nduration: 2s\nclient: { name: c }\nprobes:\n  - { client: d, call: helloworld.Greeter/SayHello, every: 1s }\n", ":5:15: probe `probe`: no client is named `d`; did you mean `c`?"),
        ("probe every 0", "name: x\nduration: 2s\nclient: {}\nprobes:\n  - { call: helloworld.Greeter/SayHello, every: 0s }\n", ":5:49: every must be above 0"),
        ("reserved name", "name: x\nduration: 2s\nclients:\n  - { name: server-side }\n", ":4:3: the client name `server-side` is taken"),
        ("bad service config", "name: x\nduration: 2s\nclient:\n  service_config: { healthCheckConfig: { serviceName: 7 } }\n", ":4:55: client `client`: service_config: invalid type: integer `7`, expected a string"),
        ("no variants", "name: x\nduration: 2s\nvariants: {}\n", ":3:11: variants is empty"),
        ("unknown variant key", "name: x\nduration: 2s\nvariants:\n  fixed:\n    severs: {}\n", ":5:5: unknown key `severs` in fixed; did you mean `server`?"),
        ("client of another variant", "name: x\nduration: 2s\nclient: { name: a }\nvariants:\n  broken: {}\n  fixed:\n    client: { name: b }\n    expect:\n      - rpcs: { client: a, at_least: 1 }\n", ":9:25: variant `fixed`: no client or probe is named `a`; did you mean `b`?"),
        ("two middleboxes", "name: x\nduration: 2s\nmiddlebox: { nginx: [], haproxy: [] }\n", ":3:12: middlebox: give one of nginx, haproxy or command"),
        ("middlebox without listen", "name: x\nduration: 2s\nmiddlebox: { command: [socat] }\n", ":3:23: middlebox.command is [program, arg, ...] with {listen}"),
        ("backend of a count", "name: x\nduration: 2s\nexpect:\n  - goaways: { backend: 1, at_least: 1 }\n", ":4:25: `backend` selects calls"),
        ("zero concurrency", "name: x\nduration: 2s\nclient:\n  load: { call: helloworld.Greeter/SayHello, concurrency: 0 }\n", ":4:59: concurrency must be 1 or more"),
        ("negative rate", "name: x\nduration: 2s\nclient:\n  load: { call: helloworld.Greeter/SayHello, rps: -5 }\n", ":4:51: rps must be above 0"),
        ("zero timeout", "name: x\nduration: 2s\nclient:\n  load: { call: helloworld.Greeter/SayHello, timeout: 0s }\n", ":4:55: timeout must be above 0"),
        ("a mark that repeats", "name: x\nduration: 5s\ntimeline:\n  - { at: 1s, every: 1s, mark: tick }\n", ":4:22: a mark names one moment"),
        ("times without every", "name: x\nduration: 5s\ntimeline:\n  - { at: 1s, times: 2, resolve: {} }\n", ":4:22: times goes with every"),
        ("restart of an address", "name: x\nduration: 2s\nserver: { address: \"127.0.0.1:1\" }\ntimeline:\n  - at: 1s\n    server_restart: {}\n", ":5:5: a server given by `address` cannot be stopped"),
    ];
    for (what, yaml, says) in cases {
        let path = dir.path().join(format!("{}.yaml", what.replace(' ', "-")));
        std::fs::write(&path, yaml).unwrap();
        let p = path.to_str().unwrap();
        for extra in [&[][..], &["--check"][..]] {
            let mut args = vec![p];
            args.extend_from_slice(extra);
            let out = scenario(&args);
            let (stdout, stderr) = text(&out);
            assert_eq!(out.status.code(), Some(2), "{what}: {stdout}{stderr}");
            assert!(
                stderr.contains(&format!("{p}{says}")) || stderr.contains(says),
                "{what}: wanted {says:?} in\n{stderr}"
            );
            assert!(
                stderr.contains(" | "),
                "{what}: the offending line is shown:\n{stderr}"
            );
            assert!(stdout.is_empty(), "{what}: nothing ran");
        }
    }
    // A good file checks without running anything.
    let files = shipped();
    let out = scenario(&[files[0].as_str(), "--check"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out).0.contains(": ok ("));
    // A missing file.
    let out = scenario(&["/nonexistent.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out)
        .1
        .contains("cannot read the scenario /nonexistent.yaml"));
}

#[test]
fn the_schema_is_json_and_knows_every_key_of_the_shipped_files() {
    let out = scenario(&["--schema"]);
    assert_eq!(out.status.code(), Some(0));
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let top = schema["properties"].as_object().unwrap();
    for k in [
        "name", "about", "duration", "server", "proxy", "client", "clients", "timeline", "expect",
    ] {
        assert!(top.contains_key(k), "{k}");
    }
    // Every key used in a shipped scenario (and the examples) is known to
    // the schema.
    let text = serde_json::to_string(&schema).unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/examples");
    let examples = std::fs::read_dir(examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.display().to_string());
    for f in shipped().into_iter().chain(examples) {
        let yaml = std::fs::read_to_string(&f).unwrap();
        let mut in_variants = false;
        for line in yaml.lines().filter(|l| !l.trim_start().starts_with('#')) {
            // Variant names (keys right under `variants:`) are the file's own.
            if !line.starts_with(' ') {
                in_variants = line.starts_with("variants:");
            } else if in_variants && !line.starts_with("   ") {
                continue;
            }
            let t = line.trim_start().trim_start_matches("- ");
            if let Some((key, _)) = t.split_once(':') {
                let key = key.trim();
                let is_key =
                    !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_');
                let in_service_config = ["methodconfig", "retrypolicy"]
                    .iter()
                    .any(|k| key.contains(k));
                if is_key && !in_service_config && !["name", "service"].contains(&key) {
                    assert!(
                        text.contains(&format!("\"{key}\"")),
                        "{f}: `{key}` is not in the schema"
                    );
                }
            }
        }
    }
}

#[test]
fn ctrl_c_stops_the_scenario_reports_and_exits_130() {
    let files = shipped();
    let restart = files.iter().find(|f| f.ends_with("restart.yaml")).unwrap();
    let child = Command::new(BIN)
        .args(["scenario", restart, "-o", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let started = std::time::Instant::now();
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "stops promptly"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the report is printed");
    assert_eq!(v["scenarios"][0]["interrupted"], true);
    assert_eq!(v["passed"], false);
    // Expectations whose window never closed were not made: not reached,
    // never failed.
    let e = v["scenarios"][0]["expectations"].as_array().unwrap();
    assert!(e.iter().all(|x| x["not_reached"] == true), "{e:?}");
    assert_eq!(v["scenarios"][0]["verdict"]["outcome"], "interrupted");

    // On a terminal's terms (human lines): the partial report says so.
    let child = Command::new(BIN)
        .args(["scenario", restart])
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("NOT REACHED  success_rate before=restarted"),
        "{stdout}"
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert!(
        stdout.contains("restart [broken]: interrupted: 4 of 4 expectations not reached"),
        "{stdout}"
    );
}

/// Variants run side by side on their own servers: a failing expectation
/// in one is exit 1, the comparison measures every check on every variant,
/// JSON and JUnit name the variant.
#[test]
fn variants_run_side_by_side_and_are_compared() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.yaml");
    std::fs::write(
        &path,
        r#"name: v
about: UNAVAILABLE answers, and the fix that answers OK.
duration: 2s
server:
  builtin: {}
client: &c
  name: c
  load: { call: grpcdoc.echo.v1.Echo/Unary, data: { status_code: 14 }, rps: 20 }
expect:
  - rpcs: { code: UNAVAILABLE, at_least: 1 }
variants:
  broken: {}
  fixed:
    client: { <<: *c, load: { call: grpcdoc.echo.v1.Echo/Unary, rps: 20 } }
    expect:
      - rpcs: { code: error, exactly: 0 }
"#,
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let report = dir.path().join("junit.xml");
    let out = scenario(&[p, "-o", "junit", "--report", report.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    // `fixed` fails the shared expectation: its calls succeed.
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("v [broken]: reproduced: "), "{stdout}");
    assert!(
        stdout.contains("v [fixed]: not fixed: 1 of 2 expectations not met"),
        "{stdout}"
    );
    // Both ran at once: their live lines interleave under their names.
    assert!(stdout.contains("broken"), "{stdout}");
    assert!(stdout.contains("v: the variants side by side"), "{stdout}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with("│ rpcs code=error"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let cells: Vec<&str> = row.split('┆').map(str::trim).collect();
    // Measured on broken too (not one of its expectations: no verdict).
    let broken: u32 = cells[1].parse().unwrap_or_else(|_| panic!("{row}"));
    assert!(broken >= 20, "{row}");
    assert_eq!(cells[2].trim_end_matches('│').trim(), "PASS 0", "{row}");
    let xml = std::fs::read_to_string(&report).unwrap();
    assert!(xml.contains("testsuite name=\"v [broken]\""), "{xml}");
    assert!(
        xml.contains("testsuite name=\"v [fixed]\" tests=\"2\" failures=\"1\""),
        "{xml}"
    );

    let out = scenario(&[p, "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let names: Vec<&str> = v["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["variant"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["broken", "fixed"]);
    let cmp = &v["comparisons"][0];
    assert_eq!(cmp["variants"], serde_json::json!(["broken", "fixed"]));
    let first = &cmp["rows"][0];
    assert_eq!(first["measure"], "rpcs code=UNAVAILABLE");
    assert_eq!(first["cells"][0]["passed"], true);
    assert_eq!(first["cells"][1]["passed"], false);
    assert_eq!(first["cells"][1]["value"], "0");
    // The verdicts in words, with the broken run's figure beside the fix's.
    let verdicts: Vec<&str> = v["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["verdict"]["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["reproduced", "not_fixed"]);
    let fixed = v["scenarios"][1]["verdict"]["sentence"].as_str().unwrap();
    assert!(
        fixed.starts_with("not fixed: 1 of 2 expectations not met"),
        "{fixed}"
    );
    assert!(fixed.contains("no call failed (of "), "{fixed}");
    assert!(fixed.contains("(broken: "), "{fixed}");

    // The page says what the scenario is about and the same sentences.
    let page = dir.path().join("v.html");
    let out = scenario(&[p, "--report", page.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("UNAVAILABLE answers, and the fix that answers OK."),
        "{html}"
    );
    assert!(html.contains("v [broken]: reproduced: "), "{html}");
    assert!(html.contains("v [fixed]: not fixed: "), "{html}");

    // A broken variant that does not show its failure fails the scenario.
    let quiet = dir.path().join("quiet.yaml");
    std::fs::write(
        &quiet,
        r#"name: quiet
duration: 1s
client: &c
  name: c
  load: { call: grpcdoc.echo.v1.Echo/Unary, rps: 20 }
variants:
  broken:
    expect:
      - rpcs: { code: error, at_least: 1 }
  fixed:
    expect:
      - rpcs: { code: error, exactly: 0 }
"#,
    )
    .unwrap();
    let out = scenario(&[quiet.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("quiet [broken]: not reproduced: "),
        "{stdout}"
    );
    assert!(stdout.contains("quiet [fixed]: fixed: "), "{stdout}");
}

/// A middlebox program that is not installed stops the run before
/// anything starts: exit 2, what to install.
#[test]
fn a_missing_middlebox_program_is_exit_2_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mb.yaml");
    std::fs::write(
        &path,
        "name: mb\nduration: 2s\nmiddlebox: { command: [no-such-balancer, \"{listen}\", \"{upstream}\"] }\nclient: {}\n",
    )
    .unwrap();
    let out = scenario(&[path.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("needs no-such-balancer, which is not installed here; install no-such-balancer (nothing was started)"),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
}

/// A program of the user's as the middlebox (here grpcdoc's own proxy),
/// after the chaos proxy: client -> chaos proxy -> program -> server; it
/// is stopped with the run.
#[test]
fn a_command_middlebox_stands_where_the_file_says() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cmd.yaml");
    std::fs::write(
        &path,
        format!(
            r#"name: cmd
duration: 2s
server:
  builtin: {{}}
proxy:
  faults: ["latency:latency=20ms"]
middlebox:
  command: ["{BIN}", proxy, --listen, "{{listen}}", --upstream, "{{upstream}}"]
  position: after-proxy
client:
  name: c
  load: {{ call: helloworld.Greeter/SayHello, rps: 20 }}
expect:
  - rpcs: {{ code: OK, at_least: 20 }}
  - rpcs: {{ code: error, exactly: 0 }}
"#
        ),
    )
    .unwrap();
    let out = scenario(&[path.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    // The middlebox forwards to the server; the client dials the proxy.
    let after = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.split_once(prefix).map(|(_, r)| r.to_string()))
            .unwrap_or_else(|| panic!("no {prefix:?} in {stdout}"))
    };
    let mb = after("step middlebox: ");
    let (_, upstream) = mb.rsplit_once(" -> ").unwrap();
    let server = after("step server_start: listening on ");
    assert_eq!(upstream.trim(), server.trim(), "{stdout}");
    let listen = mb
        .split(" listening on ")
        .nth(1)
        .unwrap()
        .split(" -> ")
        .next()
        .unwrap();
    let dialled = after("CONNECTING -> READY: connected to ");
    assert_ne!(
        dialled.trim(),
        listen.trim(),
        "the chaos proxy is in front: {stdout}"
    );
    // Nothing of it is left running.
    let ps = Command::new("pgrep")
        .args(["-f", &format!("--upstream {}", server.trim())])
        .output()
        .unwrap();
    assert!(
        ps.stdout.is_empty(),
        "still running: {}",
        String::from_utf8_lossy(&ps.stdout)
    );
}

#[test]
fn backends_grow_settings_change_and_probes_call_through_a_client() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grow.yaml");
    std::fs::write(
        &path,
        r#"name: grow
duration: 3s
server:
  builtin: {}
clients:
  - name: c
    lb: round_robin
probes:
  - client: c
    call: grpcdoc.echo.v1.Echo/Unary
    every: 50ms
timeline:
  # Connections accepted from now on are recycled every 300 ms; the one
  # open keeps its settings, and a backend added later takes the new ones.
  - at: 500ms
    server_set: { max_connection_age: 300ms, max_connection_age_grace: 1s }
  - at: 1s
    backend_add: {}
  - at: 1s
    resolve: {}
  - at: 1s
    mark: grown
expect:
  - goaways: { client: c, before: grown, exactly: 0 }
  - goaways: { client: c, debug: max_age, after: grown, at_least: 2 }
  - rpcs: { client: probe, code: OK, after: grown, at_least: 10 }
  - rpcs: { client: c, code: error, exactly: 0 }
"#,
    )
    .unwrap();
    let out = scenario(&[path.to_str().unwrap(), "-o", "json"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    let e = v["scenarios"][0]["expectations"].as_array().unwrap();
    assert!(e.iter().all(|x| x["passed"] == true), "{e:?}");
    // The client now balances over two backends: two READY subchannels.
    let human = scenario(&[path.to_str().unwrap()]);
    let (out, _) = text(&human);
    assert!(
        out.contains("step backend_add: backend 2 listening on 127.0.0.1:"),
        "{out}"
    );
    assert!(out.contains("step resolve: 127.0.0.1:"), "{out}");
    assert!(
        out.contains("step server_set: max_connection_age=300ms max_connection_age_grace=1s"),
        "{out}"
    );
}

/// Percentiles as users write them (`p99`, `"99.9%"`, `99`) are accepted;
/// a load without `concurrency` gets grpcdoc load's default.
#[test]
fn percentiles_are_accepted_as_users_write_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.yaml");
    std::fs::write(
        &path,
        "name: p\nduration: 2s\nserver:\n  builtin: {}\nclients:\n  - name: c\n    load: { call: helloworld.Greeter/SayHello }\nexpect:\n  - latency: { percentile: p99, at_most: 1s }\n  - latency: { percentile: '99.9%', at_most: 1s }\n  - latency: { percentile: 50, at_most: 1s }\n",
    )
    .unwrap();
    let out = scenario(&["--check", path.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("ok (0 steps, 3 expectations)"), "{stdout}");
}

/// A load whose rate cannot be held (one call at a time, each 50 ms, at
/// 100/s) is warned about in the scenario report, human and JSON.
#[test]
fn a_rate_that_is_not_held_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rate.yaml");
    std::fs::write(
        &path,
        "name: rate\nduration: 2s\nserver:\n  builtin: { delay: 50ms }\nclients:\n  - name: slow\n    load: { call: helloworld.Greeter/SayHello, concurrency: 1, rps: 100 }\nexpect:\n  - rpcs: { client: slow, at_least: 1 }\n",
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let out = scenario(&[p]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("warning: slow: the rate of 100.0/s was not held"),
        "{stdout}"
    );
    let out = scenario(&[p, "-o", "json"]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let w = r["scenarios"][0]["warnings"][0]
        .as_str()
        .unwrap_or_default();
    assert!(w.contains("raise its concurrency"), "{r}");
}

/// Runs grpcdoc under `script` (a terminal 100 columns wide): what a user
/// sees. `None` when `script` is not installed.
fn on_a_terminal(args: &str) -> Option<String> {
    let out = Command::new("script")
        .args(["-qec", &format!("stty cols 100; {BIN} {args}"), "/dev/null"])
        .env_remove("NO_COLOR")
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).replace('\r', ""))
}

/// On a terminal the restart scenario reads like a diagnosis: one line per
/// thing that happened (the redial loop folded), a block per variant,
/// failures with their catalogue entry, the verdicts in words; `-v`
/// prints every event.
#[test]
fn on_a_terminal_the_output_is_folded_into_blocks() {
    let files = shipped();
    let restart = files.iter().find(|f| f.ends_with("restart.yaml")).unwrap();
    let Some(out) = on_a_terminal(&format!("scenario {restart}")) else {
        eprintln!("skipped: `script` is not installed");
        return;
    };
    let plain = strip_ansi(&out);
    let lines: Vec<&str> = plain.lines().collect();
    assert!(lines.len() <= 45, "{} lines:\n{plain}", lines.len());
    assert!(out.contains('\x1b'), "colour on a terminal");
    for l in &lines {
        assert!(l.chars().count() <= 100, "{l:?}");
    }
    let broken = lines
        .iter()
        .position(|l| *l == "variant broken")
        .expect(&plain);
    let fixed = lines
        .iter()
        .position(|l| *l == "variant fixed")
        .expect(&plain);
    assert!(broken < fixed, "{plain}");
    // The state-checked pool's redials are one line with a count.
    let redial = lines[fixed..]
        .iter()
        .find(|l| l.contains("redialing every"))
        .unwrap_or_else(|| panic!("{plain}"));
    assert!(redial.contains("refused ×"), "{redial}");
    assert!(redial.contains("[connection-refused]"), "{redial}");
    assert!(
        lines[broken..fixed]
            .iter()
            .any(|l| l.contains("calls failing: UNAVAILABLE")),
        "{plain}"
    );
    assert!(plain.contains("restart [broken]: reproduced: "), "{plain}");
    assert!(plain.contains("restart [fixed]: fixed: "), "{plain}");

    let out = on_a_terminal(&format!("scenario -v {restart}")).unwrap();
    let plain = strip_ansi(&out);
    assert!(
        plain.matches("TRANSIENT_FAILURE -> CONNECTING").count() > 20,
        "{plain}"
    );
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut esc = false;
    for c in s.chars() {
        match (esc, c) {
            (false, '\x1b') => esc = true,
            (true, 'm') => esc = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}

/// The shipped scenarios are in the binary: every file of scenarios/, run
/// by name from any directory, listed with what each is about, printed as
/// written; a path that is not there but names one runs the shipped one
/// and says so.
#[test]
fn shipped_scenarios_run_by_name_from_anywhere() {
    let files = shipped();
    let embedded: Vec<&str> = grpcdoc::scenario::shipped::all()
        .iter()
        .map(|s| s.name)
        .collect();
    let on_disk: Vec<String> = files
        .iter()
        .map(|f| {
            Path::new(f)
                .file_stem()
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(embedded, on_disk, "every file in scenarios/ is embedded");
    let elsewhere = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .arg("scenario")
            .args(args)
            .current_dir(elsewhere.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    for f in &files {
        let name = Path::new(f).file_stem().unwrap().to_str().unwrap();
        let out = run(&["--show", name]);
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(out.stdout, std::fs::read(f).unwrap(), "{name}");
    }
    let out = run(&["--list"]);
    let (list, _) = text(&out);
    assert_eq!(out.status.code(), Some(0));
    assert!(list.lines().all(|l| l.chars().count() <= 100), "{list}");
    assert!(
        list.contains("restart                 A hard restart with 2 s downtime;"),
        "{list}"
    );
    assert_eq!(
        list.lines().filter(|l| !l.starts_with(' ')).count(),
        files.len(),
        "{list}"
    );
    // By name: quietly; by a path that is not here: with a word on stderr.
    let out = run(&["restart", "--check"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.starts_with("scenarios/restart.yaml: ok"), "{stdout}");
    assert!(stderr.is_empty(), "{stderr}");
    let out = run(&["restart.yaml", "--check"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.starts_with("scenarios/restart.yaml: ok"), "{stdout}");
    assert!(
        stderr.contains("running the shipped scenario `restart`"),
        "{stderr}"
    );
    // A file of the user's comes first.
    std::fs::write(elsewhere.path().join("restart.yaml"), "name: mine\n").unwrap();
    let out = run(&["restart.yaml", "--check"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["nothing-like-it.yaml"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("--list"), "{stderr}");
    let out = run(&["--show", "nothing-like-it"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Every mistake of a file in one run, each at its value, a misspelt key
/// with the key it likely means; the run starts nothing.
#[test]
fn a_file_with_three_mistakes_gets_three_errors_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("three.yaml");
    std::fs::write(
        &path,
        "name: three\nduration: 3s\nclient:\n  name: c\n  load: { call: grpcdoc.echo.v1.Echo/Unary, concurency: 5, rps: 20 }\ntimeline:\n  - at: 1s\n    mark: half\nexpect:\n  - rpcs: { code: UNAVAILABLE, after: hlaf, at_least: 1 }\nvariants:\n  broken:\n    client: { name: c, load: { call: grpcdoc.echo.v1.Echo/Unary, concurrency: 0 } }\n  fixed: {}\n",
    )
    .unwrap();
    let p = path.to_str().unwrap();
    for args in [vec![p], vec![p, "--check"]] {
        let out = scenario(&args);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stdout.is_empty(), "nothing ran: {stdout}");
        assert!(
            stderr.contains(&format!(
                "{p}:5:45: unknown key `concurency` in load; did you mean `concurrency`?"
            )),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!(
                "{p}:10:39: no step sets the mark `hlaf`; did you mean `half`?"
            )),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("{p}:13:79: concurrency must be 1 or more")),
            "{stderr}"
        );
        assert!(stderr.contains("3 mistakes in"), "{stderr}");
        // Each with its line and a caret under the value.
        assert_eq!(stderr.matches(" | ").count(), 6, "{stderr}");
    }
}

/// A step with `every:` happens again and again: a server restarted every
/// second loses the client's connection each time.
#[test]
fn a_step_repeats_every_so_often() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("every.yaml");
    std::fs::write(
        &path,
        r#"name: every
duration: 3500ms
client:
  name: c
  backoff: { initial: 50ms, jitter: 0 }
  load: { call: grpcdoc.echo.v1.Echo/Unary, rps: 50, concurrency: 2 }
timeline:
  - at: 500ms
    every: 1s
    server_restart: { mode: hard, downtime: 100ms }
  - at: 100ms
    every: 1s
    times: 2
    resolve: {}
expect:
  - connection_losses: { client: c, at_least: 3 }
"#,
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let out = scenario(&[p, "--check"]);
    let (stdout, _) = text(&out);
    // 0.5, 1.5, 2.5 and 3.5 s; 0.1 and 1.1 s.
    assert!(stdout.contains("ok (6 steps, 1 expectations)"), "{stdout}");
    let out = scenario(&[p, "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(out.status.code(), Some(0), "{v}");
    let found: u32 = v["scenarios"][0]["expectations"][0]["value"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(found >= 3, "{v}");
}
