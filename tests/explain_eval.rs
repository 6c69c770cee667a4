//! `grpcdoc explain` scored on real messages: tests/data/explain/*.jsonl
//! hold error texts users pasted into public issue threads and Q&A pages
//! (grpc-go, C-core from Python/Ruby/C++/PHP, grpc-java, grpc-js and the
//! old node `grpc`, .NET, Envoy/Istio, nginx, HAProxy, cloud balancers),
//! each with its source and the cause the thread established. A message
//! the thread found generic (it fits several causes) must not be read as
//! one cause, and the established cause, if any, must be among those
//! listed. `eval.jsonl` is the set the catalogue's evidence was tuned on
//! (two rounds of collection); `holdout.jsonl` (a third round, from other
//! threads) was kept apart and only scored.

use std::collections::BTreeMap;

use grpcdoc::catalogue::EntryId;
use grpcdoc::explain::{read, Verdict};

#[derive(serde::Deserialize)]
struct Item {
    text: String,
    source: String,
    stack: String,
    entry: Option<String>,
    generic: bool,
    #[serde(default)]
    fits: Vec<String>,
}

/// Right answers per family, and the misses.
fn score(file: &str) -> (BTreeMap<String, (u32, u32)>, Vec<String>) {
    let path = format!("{}/tests/data/explain/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut families: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    let mut misses = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let item: Item =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{file}:{}: {e}", n + 1));
        let want: Option<EntryId> = item.entry.as_deref().map(|e| {
            e.parse()
                .unwrap_or_else(|e| panic!("{file}:{}: {e}", n + 1))
        });
        for f in &item.fits {
            f.parse::<EntryId>()
                .unwrap_or_else(|e| panic!("{file}:{}: {e}", n + 1));
        }
        let r = read(&item.text);
        let ids: Vec<EntryId> = r.findings.iter().map(|f| f.id).collect();
        let right = if item.generic {
            r.verdict != Verdict::One && want.is_none_or(|w| ids.contains(&w))
        } else {
            r.verdict != Verdict::None && ids.first() == want.as_ref()
        };
        let fam = families.entry(item.stack.clone()).or_default();
        fam.1 += 1;
        if right {
            fam.0 += 1;
        } else {
            let want = match (item.generic, &want) {
                (true, Some(w)) => format!("several incl. {w}"),
                (true, None) => "several".into(),
                (false, Some(w)) => w.to_string(),
                (false, None) => "?".into(),
            };
            let got: Vec<&str> = ids.iter().map(|i| i.as_str()).collect();
            misses.push(format!(
                "{file}:{} [{}] want {want}, got {:?} {got:?}\n    {:?}\n    {}",
                n + 1,
                item.stack,
                r.verdict,
                item.text.chars().take(300).collect::<String>(),
                item.source
            ));
        }
    }
    (families, misses)
}

fn report(file: &str, min_total: f64, min_family: f64) {
    let (families, misses) = score(file);
    let (right, all) = families
        .values()
        .fold((0, 0), |(r, a), (fr, fa)| (r + fr, a + fa));
    for m in &misses {
        eprintln!("miss {m}");
    }
    for (f, (r, a)) in &families {
        eprintln!(
            "explain-eval {file} {f}: {r}/{a} ({:.0}%)",
            100.0 * f64::from(*r) / f64::from(*a)
        );
    }
    let total = f64::from(right) / f64::from(all);
    eprintln!(
        "explain-eval {file} all: {right}/{all} ({:.1}%)",
        100.0 * total
    );
    assert!(total >= min_total, "{file}: {right}/{all} right at rank 1");
    for (f, (r, a)) in &families {
        let share = f64::from(*r) / f64::from(*a);
        assert!(share >= min_family, "{file}: family {f} {r}/{a}");
    }
}

#[test]
fn the_evaluation_set_is_read_right() {
    report("eval.jsonl", 0.90, 0.80);
}

#[test]
fn the_held_out_set_is_read_right() {
    report("holdout.jsonl", 0.85, 0.70);
}

#[test]
fn the_sets_are_real_and_large_enough() {
    for file in ["eval.jsonl", "holdout.jsonl"] {
        let path = format!("{}/tests/data/explain/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            let item: Item = serde_json::from_str(line).unwrap();
            assert!(item.source.starts_with("https://"), "{}", item.source);
        }
    }
    let n = |f: &str| {
        std::fs::read_to_string(format!(
            "{}/tests/data/explain/{f}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
        .lines()
        .count()
    };
    assert!(n("eval.jsonl") + n("holdout.jsonl") >= 120);
}
