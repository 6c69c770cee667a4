//! `grpcdoc explain MESSAGE|FILE|-`: the catalogue entries whose messages
//! occur in an error message or a log, ranked; for a log, how many lines
//! point to each. No network.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use anyhow::{bail, Context as _};

use crate::catalogue::{candidates, entry, Stack};
use crate::cli::{ColorChoice, ExplainArgs, ReportOutput};
use crate::exit::Exit;
use crate::report::explain::{render, Explanation, Match};
use crate::report::style::Style;

/// Where the text came from.
enum Input {
    Message(String),
    Log(Box<dyn BufRead>, String),
}

fn open(input: &str) -> anyhow::Result<Input> {
    if input == "-" {
        return Ok(Input::Log(
            Box::new(BufReader::new(std::io::stdin())),
            "stdin".into(),
        ));
    }
    let path = Path::new(input);
    if path.is_file() {
        let f = std::fs::File::open(path).with_context(|| format!("cannot read {input}"))?;
        return Ok(Input::Log(Box::new(BufReader::new(f)), input.to_string()));
    }
    let looks_like_a_path = !input.contains(char::is_whitespace)
        && (input.contains('/') || input.ends_with(".log") || input.ends_with(".txt"));
    if looks_like_a_path {
        bail!("no file {input}; give a log file, `-` for stdin, or the message itself in quotes");
    }
    if input.trim().is_empty() {
        bail!("the message is empty; give the error message your client printed");
    }
    Ok(Input::Message(input.to_string()))
}

/// Adds the entries a line points to (the best ones, ties all) to `counts`.
fn count_line(line: &str, counts: &mut HashMap<&'static str, (u64, usize, Vec<Stack>)>) -> bool {
    let found = candidates(line);
    let Some(top) = found.first().map(|c| c.score) else {
        return false;
    };
    for c in found.into_iter().filter(|c| c.score == top) {
        let e = counts.entry(c.id).or_insert((0, c.score, Vec::new()));
        e.0 += 1;
        e.1 = e.1.max(c.score);
        for s in c.stacks {
            if !e.2.contains(&s) {
                e.2.push(s);
            }
        }
    }
    true
}

fn explain(input: Input) -> anyhow::Result<Explanation> {
    let mut counts = HashMap::new();
    let (source, lines, matched, single) = match input {
        Input::Message(m) => {
            // Every candidate, ranked: a message can come from several.
            let found = candidates(&m);
            for c in &found {
                counts.insert(c.id, (1, c.score, c.stacks.clone()));
            }
            ("message".to_string(), 1, u64::from(!found.is_empty()), true)
        }
        Input::Log(mut r, name) => {
            let (mut lines, mut matched) = (0u64, 0u64);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                let n = r
                    .read_until(b'\n', &mut buf)
                    .with_context(|| format!("cannot read {name}"))?;
                if n == 0 {
                    break;
                }
                lines += 1;
                if count_line(&String::from_utf8_lossy(&buf), &mut counts) {
                    matched += 1;
                }
            }
            if lines == 0 {
                bail!("{name} is empty; expected a log or an error message");
            }
            (name, lines, matched, false)
        }
    };
    let mut matches: Vec<Match> = counts
        .into_iter()
        .filter_map(|(id, (count, score, stacks))| {
            let e = entry(id)?;
            Some(Match::new(e, count, score, stacks))
        })
        .collect();
    // A log: the most frequent first; a message: the surest first.
    matches.sort_by(|a, b| {
        let key = |m: &Match| {
            if single {
                (m.score as u64, m.count)
            } else {
                (m.count, m.score as u64)
            }
        };
        key(b).cmp(&key(a)).then(a.id.cmp(b.id))
    });
    Ok(Explanation {
        kind: "explanation",
        source,
        lines,
        matched_lines: matched,
        matches,
    })
}

pub fn run(args: ExplainArgs, color: ColorChoice) -> anyhow::Result<Exit> {
    let x = explain(open(&args.input)?)?;
    let text = match args.output {
        ReportOutput::Json => format!("{}\n", serde_json::to_string(&x)?),
        ReportOutput::Human => render(&x, &Style::for_stdout(color.forced())),
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            bail!("cannot write to stdout: {e}")
        }
        _ => {}
    }
    Ok(if x.matches.is_empty() {
        Exit::CheckFailed
    } else {
        Exit::Success
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_go_message_names_its_entry_first() {
        let x = explain(Input::Message(
            "rpc error: code = Unavailable desc = max connection age".into(),
        ))
        .unwrap();
        assert_eq!(x.matches[0].id, "max-age-grace-c-core");
    }

    #[test]
    fn a_log_counts_lines_per_entry() {
        let log = "\
2026/12/01 rpc error: code = Canceled desc = stream terminated by RST_STREAM with error code: CANCEL
2026/12/01 ok
2026/12/01 rpc error: code = Unavailable desc = Received http2 header with status: 502
2026/12/01 rpc error: code = Canceled desc = stream terminated by RST_STREAM with error code: CANCEL
";
        let x = explain(Input::Log(Box::new(log.as_bytes()), "test.log".into())).unwrap();
        assert_eq!((x.lines, x.matched_lines), (4, 3));
        assert_eq!(x.matches[0].id, "rst-stream");
        assert_eq!(x.matches[0].count, 2);
        assert_eq!(x.matches[1].id, "http-error-page");
    }

    #[test]
    fn nothing_known_matches_nothing() {
        let x = explain(Input::Message("all is well".into())).unwrap();
        assert!(x.matches.is_empty());
    }
}
