//! `grpcdoc explain MESSAGE|FILE|-`: the catalogue entries an error message
//! or a log points to, by meaning (`crate::explain`); for a log, how many
//! lines point to each, first and last seen. No network.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use anyhow::{bail, Context as _};

use crate::catalogue::{EntryId, Family};
use crate::cli::{ColorChoice, ExplainArgs, ReportOutput};
use crate::exit::Exit;
use crate::explain::log::{timestamp, Records};
use crate::explain::{read, Reading, Verdict};
use crate::report::explain::{render, Explanation, Match, Unresolved};
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
        return Ok(Input::Log(
            Box::new(BufReader::with_capacity(1 << 16, f)),
            input.to_string(),
        ));
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

/// Counts and times per entry (or per unresolved generic message) in a log.
#[derive(Default)]
struct Tally {
    /// The record it was first seen in: ties in count keep log order.
    order: u64,
    count: u64,
    first: Option<String>,
    last: Option<String>,
    fits: Vec<EntryId>,
    tell: Option<&'static str>,
}

impl Tally {
    fn at(order: u64) -> Self {
        Self {
            order,
            ..Self::default()
        }
    }

    fn add(&mut self, lines: u64, at: Option<&str>) {
        self.count += lines;
        if let Some(t) = at {
            if self.first.is_none() {
                self.first = Some(t.to_string());
            }
            self.last = Some(t.to_string());
        }
    }
}

fn message(m: &str, stack: Option<Family>) -> Explanation {
    let r: Reading = read(m);
    let family = stack.or(r.family);
    let matches = r
        .findings
        .iter()
        .map(|f| Match::new(f.id, 1, f.score, f.evidence.clone(), family))
        .collect::<Vec<_>>();
    Explanation {
        kind: "explanation",
        source: "message".into(),
        lines: m.lines().count().max(1) as u64,
        matched_lines: u64::from(!matches.is_empty()),
        verdict: r.verdict,
        stack: family,
        generic: r.generic,
        tell: r.tell,
        matches,
        unresolved: Vec::new(),
    }
}

fn log(
    mut input: Box<dyn BufRead>,
    name: String,
    stack: Option<Family>,
) -> anyhow::Result<Explanation> {
    let mut records = Records::new(&mut input);
    let (mut lines, mut matched) = (0u64, 0u64);
    let mut proved: HashMap<EntryId, Tally> = HashMap::new();
    let mut open: HashMap<String, Tally> = HashMap::new();
    let mut families: HashMap<Family, u64> = HashMap::new();
    while let Some((record, n)) = records
        .next_record()
        .with_context(|| format!("cannot read {name}"))?
    {
        lines += n;
        let r = read(&record);
        if r.verdict == Verdict::None {
            continue;
        }
        matched += n;
        if let Some(f) = r.family {
            *families.entry(f).or_default() += n;
        }
        let at = timestamp(&record);
        let seq = lines;
        // A line whose evidence leads to one entry without proving it
        // (no generic words, no close runner-up) counts for that entry.
        let leads = r.generic.is_none()
            && match (r.findings.first(), r.findings.get(1)) {
                (Some(a), Some(b)) => a.score >= 1.5 * b.score,
                (Some(_), None) => true,
                _ => false,
            };
        match (r.verdict == Verdict::One || leads, r.findings.first()) {
            (true, Some(top)) => proved
                .entry(top.id)
                .or_insert_with(|| Tally::at(seq))
                .add(n, at),
            _ => {
                let fits: Vec<EntryId> = r.findings.iter().map(|f| f.id).collect();
                let key = r.generic.map(str::to_string).unwrap_or_else(|| {
                    fits.iter()
                        .map(|f| f.as_str())
                        .collect::<Vec<_>>()
                        .join(" or ")
                });
                let t = open.entry(key).or_insert_with(|| Tally::at(seq));
                t.add(n, at);
                if t.fits.is_empty() {
                    t.fits = fits;
                    t.tell = r.tell;
                }
            }
        }
    }
    if lines == 0 {
        bail!("{name} is empty; expected a log or an error message");
    }
    let family = stack.or_else(|| families.into_iter().max_by_key(|(_, n)| *n).map(|(f, _)| f));
    let mut proved: Vec<(EntryId, Tally)> = proved.into_iter().collect();
    proved.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.1.order.cmp(&b.1.order)));
    let matches: Vec<Match> = proved
        .into_iter()
        .map(|(id, t)| {
            let mut m = Match::new(id, t.count, 0.0, Vec::new(), family);
            m.first_seen = t.first;
            m.last_seen = t.last;
            m
        })
        .collect();
    let mut open: Vec<(String, Tally)> = open.into_iter().collect();
    open.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.1.order.cmp(&b.1.order)));
    let unresolved: Vec<Unresolved> = open
        .into_iter()
        .map(|(words, t)| Unresolved {
            words: words.replace(" + ", " ... "),
            count: t.count,
            fits: t.fits,
            tell: t.tell,
            first_seen: t.first,
            last_seen: t.last,
        })
        .collect();
    let verdict = if !matches.is_empty() {
        Verdict::One
    } else if !unresolved.is_empty() {
        Verdict::Several
    } else {
        Verdict::None
    };
    Ok(Explanation {
        kind: "explanation",
        source: name,
        lines,
        matched_lines: matched,
        verdict,
        stack: family,
        generic: None,
        tell: None,
        matches,
        unresolved,
    })
}

fn explain(input: Input, stack: Option<Family>) -> anyhow::Result<Explanation> {
    match input {
        Input::Message(m) => Ok(message(&m, stack)),
        Input::Log(r, name) => log(r, name, stack),
    }
}

pub fn run(args: ExplainArgs, color: ColorChoice) -> anyhow::Result<Exit> {
    let stack = match args.stack.as_deref() {
        None => None,
        Some(s) => match Family::parse(s) {
            Some(f) => Some(f),
            None => bail!("unknown --stack {s:?}; one of: {}", Family::NAMES),
        },
    };
    let x = explain(open(&args.input)?, stack)?;
    let text = match args.output {
        ReportOutput::Json => format!("{}\n", serde_json::to_string(&x)?),
        ReportOutput::Human => render(&x, &Style::for_stdout(color.forced()), args.verbose),
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            bail!("cannot write to stdout: {e}")
        }
        _ => {}
    }
    Ok(if x.verdict == Verdict::None {
        Exit::CheckFailed
    } else {
        Exit::Success
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_counts_lines_per_entry_with_times() {
        let log = "\
2026/12/01 10:00:01 rpc error: code = Canceled desc = stream terminated by RST_STREAM with error code: CANCEL
2026/12/01 10:00:02 ok
2026/12/01 10:00:03 rpc error: code = Unavailable desc = Received http2 header with status: 502
2026/12/01 10:00:04 rpc error: code = Canceled desc = stream terminated by RST_STREAM with error code: CANCEL
2026/12/01 10:00:05 rpc error: code = Unavailable desc = transport is closing
";
        let x = explain(
            Input::Log(Box::new(log.as_bytes()), "test.log".into()),
            None,
        )
        .unwrap();
        assert_eq!((x.lines, x.matched_lines), (5, 4));
        assert_eq!(x.matches[0].id, EntryId::RstStream);
        assert_eq!(x.matches[0].count, 2);
        assert_eq!(
            x.matches[0].first_seen.as_deref(),
            Some("2026/12/01 10:00:01")
        );
        assert_eq!(
            x.matches[0].last_seen.as_deref(),
            Some("2026/12/01 10:00:04")
        );
        // A 502 says a hop answered, not why; transport is closing, not
        // which connection loss.
        assert_eq!(x.unresolved.len(), 2, "{:?}", x.unresolved);
        assert_eq!(x.unresolved[0].fits[0], EntryId::ProxyNoUpstream);
        assert_eq!(x.unresolved[1].words, "transport is closing");
        assert_eq!(x.stack, Some(Family::Go));
    }

    #[test]
    fn nothing_known_matches_nothing() {
        let x = explain(Input::Message("all is well".into()), None).unwrap();
        assert!(x.matches.is_empty());
        assert_eq!(x.verdict, Verdict::None);
    }
}
