//! The README as a user reads it: every `grpcdoc` command line in its
//! shell blocks names flags its command has, the lines that can run on
//! loopback without a server run (explain, man, --help, the schema, the
//! fault list, the shipped scenarios checked), and every `--flag` the
//! README names anywhere is grpcdoc's (or one of the few other tools' it
//! shows).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_grpcdoc");
const README: &str = include_str!("../README.md");

/// Flags of other programs the README shows (cargo, the YAML examples'
/// own programs, an error message it quotes).
const OTHERS: [&str; 9] = [
    "--x",
    "--all-targets",
    "--nocapture",
    "--release",
    "--test",
    "--locked",
    "--path",
    "--port",
    "--target",
];

/// The lines of the README's shell code blocks, with their line numbers.
fn shell_lines() -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_sh = false;
    for (i, line) in README.lines().enumerate() {
        let t = line.trim_start();
        if let Some(lang) = t.strip_prefix("```") {
            in_sh = !in_sh && matches!(lang.trim(), "sh" | "bash" | "shell" | "console");
            continue;
        }
        if in_sh {
            out.push((i + 1, line.to_string()));
        }
    }
    out
}

/// The words after `grpcdoc` (or `cargo run ... --`) on a shell line,
/// without its comment, redirections and a trailing `&`.
fn grpcdoc_words(line: &str) -> Option<Vec<String>> {
    let code = match line.find("  #") {
        Some(at) => &line[..at],
        None => line,
    };
    let code = code.rsplit('|').next()?.trim();
    let code = code.trim_end_matches('&').trim();
    let words = shlex::split(code)?;
    let at = words
        .iter()
        .position(|w| w == "grpcdoc")
        .map(|i| i + 1)
        .or_else(|| {
            (words.first()? == "cargo" && words.get(1)? == "run")
                .then(|| words.iter().position(|w| w == "--").map(|i| i + 1))?
        })?;
    let mut rest: Vec<String> = words[at..].to_vec();
    if let Some(r) = rest.iter().position(|w| w.starts_with('>') || w == "<") {
        rest.truncate(r);
    }
    Some(rest)
}

/// The command path a line runs (`proxy ctl`, `load`, ...).
fn command_of(words: &[String]) -> Vec<String> {
    let mut path = Vec::new();
    if let Some(first) = words.first().filter(|w| !w.starts_with('-')) {
        path.push(first.clone());
        if (first == "proxy" && words.get(1).is_some_and(|w| w == "ctl"))
            || (first == "report" && words.get(1).is_some_and(|w| w == "merge"))
        {
            path.push(words[1].clone());
        }
    }
    path
}

fn help(path: &[String], cache: &mut BTreeMap<Vec<String>, String>) -> String {
    cache
        .entry(path.to_vec())
        .or_insert_with(|| {
            let out = Command::new(BIN)
                .args(path)
                .arg("--help")
                .output()
                .expect("grpcdoc --help");
            assert!(
                out.status.success(),
                "grpcdoc {} --help failed",
                path.join(" ")
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
        .clone()
}

/// The flags a usage word names: `--for`, `-o`, `[--check]`,
/// `--calls=all`, `-o human|json` gives `-o`.
fn flags_in(word: &str) -> Vec<String> {
    word.split(['[', ']'])
        .filter(|w| {
            w.starts_with('-') && w.len() > 1 && !w[1..].starts_with(|c: char| c.is_ascii_digit())
        })
        .map(|w| {
            w.split('=')
                .next()
                .unwrap_or(w)
                .trim_end_matches("...")
                .to_string()
        })
        .collect()
}

#[test]
fn every_flag_on_a_readme_command_line_exists() {
    let mut cache = BTreeMap::new();
    let mut wrong = Vec::new();
    for (n, line) in shell_lines() {
        let Some(words) = grpcdoc_words(&line) else {
            continue;
        };
        let path = command_of(&words);
        let text = help(&path, &mut cache);
        for w in words.iter().skip(path.len()) {
            for flag in flags_in(w) {
                let known = if flag.starts_with("--") {
                    text.contains(&format!("{flag} "))
                        || text.contains(&format!("{flag}\n"))
                        || text.contains(&format!("{flag}="))
                        || text.contains(&format!("{flag},"))
                } else {
                    text.contains(&format!("{flag},")) || text.contains(&format!("{flag} "))
                };
                if !known && flag != "--" {
                    wrong.push(format!(
                        "README.md:{n}: `grpcdoc {}` has no {flag}",
                        path.join(" ")
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_flag_the_readme_names_is_grpcdocs() {
    let mut cache = BTreeMap::new();
    let mut known = BTreeSet::new();
    let top = help(&[], &mut cache);
    let commands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 8, "{top}");
    let mut paths: Vec<Vec<String>> = commands.iter().map(|c| vec![c.clone()]).collect();
    paths.push(vec!["proxy".into(), "ctl".into()]);
    paths.push(vec!["report".into(), "merge".into()]);
    paths.push(Vec::new());
    for p in &paths {
        for w in help(p, &mut cache).split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
            if w.starts_with("--") {
                known.insert(w.to_string());
            }
        }
    }
    let mut unknown = Vec::new();
    for (n, line) in README.lines().enumerate() {
        for (at, _) in line.match_indices("--") {
            let before = line[..at].chars().last();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-') {
                continue;
            }
            let flag: String = "--"
                .chars()
                .chain(
                    line[at + 2..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-'),
                )
                .collect();
            if flag.len() <= 2 || !flag[2..].starts_with(|c: char| c.is_ascii_lowercase()) {
                continue;
            }
            if !known.contains(&flag) && !OTHERS.contains(&flag.as_str()) {
                unknown.push(format!("README.md:{}: {flag}", n + 1));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "flags no grpcdoc command has:\n{}",
        unknown.join("\n")
    );
}

/// Runs `grpcdoc ARGS`; its exit code and output.
fn run(args: &[String]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("NO_COLOR", "1")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("grpcdoc");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_readme_lines_that_need_no_server_run() {
    let mut ran = 0;
    for (n, line) in shell_lines() {
        let Some(words) = grpcdoc_words(&line) else {
            continue;
        };
        // Usage synopses and placeholders are not commands to run.
        if words.iter().any(|w| {
            w.contains('[')
                || w.chars().any(|c| c.is_ascii_uppercase())
                    && w.chars()
                        .all(|c| c.is_ascii_uppercase() || c == ':' || c == '.')
        }) {
            continue;
        }
        let path = command_of(&words);
        let runnable = match path.first().map(String::as_str) {
            Some("explain") => !words.iter().any(|w| w.ends_with(".log") || w == "-"),
            Some("man") | Some("completions") => true,
            Some("scenario") => true,
            Some("proxy") => words.iter().any(|w| w == "--list-faults"),
            None => true,
            _ => words.iter().any(|w| w == "--help" || w == "--schema"),
        };
        if !runnable {
            continue;
        }
        let mut args = words.clone();
        // A scenario is checked, not run (tests/scenario.rs runs them).
        if path.first().is_some_and(|c| c == "scenario") && !args.iter().any(|a| a == "--schema") {
            args.push("--check".into());
        }
        let (code, out) = run(&args);
        // explain exits 1 when it matches nothing; both are its answer.
        let ok = code == 0 || (path.first().is_some_and(|c| c == "explain") && code == 1);
        assert!(
            ok,
            "README.md:{n}: grpcdoc {} exited {code}:\n{out}",
            args.join(" ")
        );
        eprintln!("README.md:{n}: grpcdoc {}: exit {code}", args.join(" "));
        ran += 1;
    }
    assert!(ran >= 4, "only {ran} README lines ran");
}

#[test]
fn every_command_has_a_man_page() {
    let mut cache = BTreeMap::new();
    let top = help(&[], &mut cache);
    for c in top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| !matches!(*c, "help" | "man" | "completions"))
    {
        let (code, out) = run(&["man".into(), c.into()]);
        assert_eq!(code, 0, "grpcdoc man {c}: {out}");
        assert!(out.contains(&format!("grpcdoc-{c}")), "{out}");
    }
}
