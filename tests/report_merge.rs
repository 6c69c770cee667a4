//! Load on many machines: `load -o json` reports merged by `grpcdoc report
//! merge` add up, keep exact percentiles (the HDR histograms add), and
//! refuse what does not belong together. Also checks that the Kubernetes
//! example that runs them is valid YAML of the kinds it claims.

mod common;

use std::process::Command;

use common::spawn_listening;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_grpcdoc");

struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn load(addr: &str, dir: &std::path::Path, name: &str, method: &str) -> std::path::PathBuf {
    let out = Command::new(BIN)
        .args([
            "load", addr, "--call", method, "-n", "3000", "-c", "4", "-o", "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.join(name);
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

fn merge(files: &[&std::path::Path]) -> (i32, Value, String) {
    let out = Command::new(BIN)
        .args(["report", "merge", "-o", "json"])
        .args(files)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn read(p: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn three_runs_merge_into_one_report() {
    let (child, addr) = spawn_listening(BIN, &["serve", "--listen", "127.0.0.1:0", "--for", "60s"]);
    let _s = Serve(child);
    let dir = tempfile::tempdir().unwrap();
    let m = "helloworld.Greeter/SayHello";
    let files: Vec<_> = (0..3)
        .map(|i| load(&addr, dir.path(), &format!("load-{i}.json"), m))
        .collect();
    let runs: Vec<Value> = files.iter().map(|f| read(f)).collect();
    let refs: Vec<&std::path::Path> = files.iter().map(|f| f.as_path()).collect();
    let (code, r, err) = merge(&refs);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r["total"], 9000);
    assert_eq!(r["codes"]["OK"]["count"], 9000);
    let p50s: Vec<f64> = runs
        .iter()
        .map(|r| r["latency_ms"]["p50"].as_f64().unwrap())
        .collect();
    let p50 = r["latency_ms"]["p50"].as_f64().unwrap();
    let (lo, hi) = (
        p50s.iter().cloned().fold(f64::INFINITY, f64::min),
        p50s.iter().cloned().fold(0.0, f64::max),
    );
    assert!(lo <= p50 && p50 <= hi, "{p50} not within {p50s:?}");
    // Every run's connections (one per thread of each), listed by id.
    let conns: u64 = runs
        .iter()
        .map(|r| r["connections"].as_u64().unwrap())
        .sum();
    assert_eq!(
        r["connections_table"].as_array().unwrap().len() as u64,
        conns
    );
    assert_eq!(r["connections"], conns);
    let per_second: u64 = r["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["completed"].as_u64().unwrap())
        .sum();
    let in_runs: u64 = runs
        .iter()
        .flat_map(|r| r["series"].as_array().unwrap().clone())
        .map(|s| s["completed"].as_u64().unwrap())
        .sum();
    assert_eq!(per_second, in_runs);

    // A report merged with itself: twice the counts, the same percentiles.
    let (code, twice, _) = merge(&[&files[0], &files[0]]);
    assert_eq!(code, 0);
    assert_eq!(twice["total"], 6000);
    for q in ["p50", "p90", "p99", "max"] {
        assert_eq!(twice["latency_ms"][q], runs[0]["latency_ms"][q], "{q}");
    }

    // The merge merges again.
    let merged = dir.path().join("merged.json");
    std::fs::write(&merged, serde_json::to_vec(&r).unwrap()).unwrap();
    let (code, again, _) = merge(&[&merged, &files[0]]);
    assert_eq!(code, 0);
    assert_eq!(again["total"], 12000);

    // Another method, another format: refused, saying which and why.
    let other = load(&addr, dir.path(), "echo.json", "grpcdoc.echo.v1.Echo/Unary");
    let (code, _, err) = merge(&[&files[0], &other]);
    assert_eq!(code, 2);
    assert!(
        err.contains("echo.json") && err.contains("different methods"),
        "{err}"
    );
    let mut old = runs[0].clone();
    old.as_object_mut().unwrap().remove("format");
    let old_path = dir.path().join("old.json");
    std::fs::write(&old_path, serde_json::to_vec(&old).unwrap()).unwrap();
    let (code, _, err) = merge(&[&files[0], &old_path]);
    assert_eq!(code, 2);
    assert!(
        err.contains("old.json") && err.contains("format 0"),
        "{err}"
    );
    let (code, _, err) = merge(&[std::path::Path::new("/nonexistent/r.json")]);
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot read the report /nonexistent/r.json"),
        "{err}"
    );
}

#[test]
fn the_kubernetes_example_is_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/kubernetes");
    let mut kinds = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in text.split("\n---\n") {
            let v: Value =
                serde_saphyr::from_str(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(v["apiVersion"].is_string(), "{}: {v}", path.display());
            let kind = v["kind"].as_str().unwrap().to_string();
            if kind == "Job" && v["metadata"]["name"] == "grpcdoc-load" {
                let spec = &v["spec"];
                assert_eq!(spec["completionMode"], "Indexed", "{v}");
                assert!(spec["completions"].as_u64().unwrap() >= 2);
                let text = v.to_string();
                assert!(text.contains("grpcdoc") && text.contains("load"), "{v}");
            }
            kinds.push(kind);
        }
    }
    assert_eq!(
        kinds.iter().filter(|k| *k == "Job").count(),
        2,
        "the load and the merge: {kinds:?}"
    );
    assert!(kinds.iter().any(|k| k == "PersistentVolumeClaim"));
}
