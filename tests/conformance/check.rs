//! The tier's three checks and the rows it prints:
//!   (a) a client printed what the catalogue's `says` lists for its stack;
//!   (b) `grpcdoc explain` on that message names the entry (first when the
//!       message proves one entry; among those it lists when the message is
//!       generic);
//!   (c) grpcdoc's own `load` or `watch` on the same setup names it.
//! Rows: `conformance | entry | stack | code | message | a=.. b=..`.

use std::process::{Command, Stdio};
use std::time::Duration;

use grpcdoc::catalogue::{entry, find, EntryId};
use grpcdoc::explain::{read, Verdict};

use crate::clients::{output, Said, PROTO_DIR};
use crate::procs::BIN;

/// (a) and (b) for every client's message; prints every row, then fails
/// with all that did not hold.
pub fn clients_say(id: &str, said: &[Said]) {
    let eid: EntryId = id.parse().unwrap_or_else(|e| panic!("{e}"));
    let e = entry(eid);
    let mut wrong = Vec::new();
    for s in said {
        let listed: Vec<_> = e.says.iter().filter(|x| x.stack == s.stack).collect();
        let a = listed.iter().any(|l| {
            find(l.message, &s.message).is_some()
                && (s.code.is_empty() || l.code.is_empty() || l.code == s.code)
        });
        let found = read(&s.message);
        let first = found.findings.first().is_some_and(|f| f.id == eid);
        let listed_too = found.findings.iter().any(|f| f.id == eid);
        let why = match found.generic {
            Some(g) => format!("generic {g:?}"),
            None => "close evidence".into(),
        };
        let b = match found.verdict {
            Verdict::One if first => "first".to_string(),
            Verdict::Several if first => format!("first of several ({why})"),
            Verdict::Several if listed_too => format!("among several ({why})"),
            _ => "NO".into(),
        };
        eprintln!(
            "conformance | {id} | {} | {} | {:?} | a={} b={b}",
            s.stack.name(),
            s.code,
            s.message,
            if a { "yes" } else { "NO" },
        );
        if !a {
            wrong.push(format!(
                "(a) {} said {} {:?}; the catalogue lists {listed:?}",
                s.stack.name(),
                s.code,
                s.message
            ));
        }
        if b == "NO" {
            let ids: Vec<_> = found.findings.iter().map(|f| (f.id, f.score)).collect();
            wrong.push(format!(
                "(b) explain on {:?} ({}) reads {:?} {ids:?}",
                s.message,
                s.stack.name(),
                found.verdict
            ));
        }
    }
    assert!(wrong.is_empty(), "{id}:\n{}", wrong.join("\n"));
}

/// A middlebox scenario's rows: every client failed with `want`.
pub fn middlebox_rows(scenario: &str, said: &[Said], want: &str) {
    for s in said {
        eprintln!(
            "middlebox | {scenario} | {} | {} | {:?}",
            s.stack.name(),
            s.code,
            s.message
        );
    }
    for s in said {
        assert_eq!(s.code, want, "{scenario}: {} said {s:?}", s.stack.name());
    }
}

/// `grpcdoc load` (JSON report) with these extra arguments.
pub fn load(addr: &str, extra: &[&str]) -> serde_json::Value {
    let mut cmd = Command::new(BIN);
    cmd.args(["load", addr, "--proto"])
        .arg(format!("{PROTO_DIR}/helloworld.proto"))
        .args(["--call", "helloworld.Greeter/SayHello", "-o", "json"])
        .args(extra)
        .stdin(Stdio::null());
    let out = output(cmd, Duration::from_secs(60));
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("load report ({e}): {}", out.stderr))
}

/// (c): the load report's causes name the entry.
pub fn load_names(id: &str, r: &serde_json::Value) {
    let ids: Vec<&str> = r["causes"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["id"].as_str()).collect())
        .unwrap_or_default();
    eprintln!(
        "conformance | {id} | grpcdoc load | causes {ids:?} | c={}",
        ids.contains(&id)
    );
    assert!(ids.contains(&id), "{id}: grpcdoc load named {ids:?}: {r}");
}

/// `grpcdoc watch ADDR -o json` with these flags (a `--for` among them),
/// `during` running meanwhile; the catalogue ids it explained with, and
/// its output.
pub fn watch_ids(addr: &str, flags: &[&str], during: impl FnOnce()) -> (Vec<String>, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["watch", addr, "-o", "json"])
        .args(flags)
        .stdin(Stdio::null());
    let out = std::thread::scope(|s| {
        let t = s.spawn(move || output(cmd, Duration::from_secs(60)));
        during();
        t.join().expect("the watch thread")
    });
    let ids = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["kind"] == "explanation")
        .filter_map(|e| e["id"].as_str().map(String::from))
        .collect();
    (ids, out.stdout)
}

/// (c): `grpcdoc watch` with `flags`, while `during` runs, explains with
/// the entry.
pub fn watch_names(id: &str, addr: &str, flags: &[&str], during: impl FnOnce()) {
    let (ids, text) = watch_ids(addr, flags, during);
    let named = ids.iter().any(|i| i == id);
    eprintln!("conformance | {id} | grpcdoc watch {addr} | explanations {ids:?} | c={named}");
    assert!(named, "{id}: grpcdoc watch named {ids:?}:\n{text}");
}
