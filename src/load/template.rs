//! Request data that varies per call: placeholders in `-d`'s JSON, filled
//! for each call. `{{call}}` (the call's number, from 0), `{{worker}}`
//! (the worker's, from 0), `{{uuid}}` (a random v4 UUID), `{{rand A B}}`
//! (a random whole number from A to B), `{{unix}}`, `{{unix_ms}}`,
//! `{{unix_ns}}`, `{{now}}` (RFC 3339, UTC), `{{one_of a b c}}` (one of the
//! words, at random). ghz's spellings are accepted too (`{{.RequestNumber}}`,
//! `{{.WorkerID}}`, `{{.UUID}}`, `{{.TimestampUnix}}`, ...). Inside a JSON
//! string a value is inserted escaped; outside one, as it is (a number).
//! Mistakes are found before the run, with their line and column.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// What a placeholder stands for.
#[derive(Clone, Debug, PartialEq)]
enum Var {
    Call,
    Worker,
    Uuid,
    Rand(i64, i64),
    Unix,
    UnixMs,
    UnixNs,
    Now,
    OneOf(Vec<String>),
}

#[derive(Clone, Debug, PartialEq)]
enum Part {
    Text(String),
    Var { var: Var, in_string: bool },
}

/// The values a call's placeholders draw on.
pub(crate) struct Fill<'a> {
    pub(crate) call: u64,
    pub(crate) worker: usize,
    pub(crate) rng: &'a mut fastrand::Rng,
}

/// A text with placeholders, checked.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

const NAMES: &str = "call, worker, uuid, rand A B, unix, unix_ms, unix_ns, now, one_of A B ...";

/// `line:column` of byte `at` in `text` (1-based).
fn position(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn var(inner: &str) -> Result<Var, String> {
    let words: Vec<&str> = inner.split_whitespace().collect();
    let (name, args) = match words.split_first() {
        Some((n, a)) => (*n, a),
        None => return Err(format!("an empty placeholder; expected one of {NAMES}")),
    };
    let no_args = |v: Var| {
        if args.is_empty() {
            Ok(v)
        } else {
            Err(format!("`{name}` takes no arguments"))
        }
    };
    match name {
        "call" | ".RequestNumber" => no_args(Var::Call),
        "worker" | ".WorkerID" => no_args(Var::Worker),
        "uuid" | ".UUID" => no_args(Var::Uuid),
        "unix" | ".TimestampUnix" => no_args(Var::Unix),
        "unix_ms" | ".TimestampUnixMilli" => no_args(Var::UnixMs),
        "unix_ns" | ".TimestampUnixNano" => no_args(Var::UnixNs),
        "now" | ".Timestamp" => no_args(Var::Now),
        "rand" | "randomInt" => match args {
            [a, b] => match (a.parse::<i64>(), b.parse::<i64>()) {
                (Ok(a), Ok(b)) if a <= b => Ok(Var::Rand(a, b)),
                _ => Err(format!(
                    "`{name} {a} {b}` wants two whole numbers, the first not above the second"
                )),
            },
            _ => Err(format!("`{name}` takes two numbers: {{{{rand 1 100}}}}")),
        },
        "one_of" => {
            if args.is_empty() {
                Err("`one_of` needs the values to choose from: {{one_of a b c}}".into())
            } else {
                Ok(Var::OneOf(args.iter().map(|s| s.to_string()).collect()))
            }
        }
        _ => Err(format!(
            "unknown placeholder `{name}`; expected one of {NAMES}"
        )),
    }
}

impl Template {
    /// Reads `text`; `Ok(None)` when it has no placeholder. Errors say
    /// `origin:line:column`.
    pub(crate) fn parse(origin: &str, text: &str) -> Result<Option<Self>, String> {
        Self::parse_at(origin, text, 1)
    }

    /// As [`Template::parse`], for a text that starts on line `first` of
    /// its origin (a line of a JSONL file).
    pub(crate) fn parse_at(origin: &str, text: &str, first: usize) -> Result<Option<Self>, String> {
        let position = |at: usize| {
            let (l, c) = position(text, at);
            (l + first - 1, c)
        };
        if !text.contains("{{") {
            return Ok(None);
        }
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut in_string = false;
        let mut escaped = false;
        let mut i = 0;
        while i < text.len() {
            let rest = &text[i..];
            if rest.starts_with("{{") {
                let Some(end) = rest.find("}}") else {
                    let (l, c) = position(i);
                    return Err(format!("{origin}:{l}:{c}: `{{{{` is not closed by `}}}}`"));
                };
                let v = var(&rest[2..end]).map_err(|e| {
                    let (l, c) = position(i);
                    format!("{origin}:{l}:{c}: {e}")
                })?;
                if let (Var::OneOf(list), false) = (&v, in_string) {
                    if let Some(bad) = list
                        .iter()
                        .find(|a| serde_json::from_str::<serde_json::Value>(a).is_err())
                    {
                        let (l, c) = position(i);
                        return Err(format!("{origin}:{l}:{c}: `{bad}` is not a JSON value (outside a string, one_of chooses numbers, true, false or \"quoted\" strings)"));
                    }
                }
                if !lit.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut lit)));
                }
                parts.push(Part::Var { var: v, in_string });
                i += end + 2;
                continue;
            }
            let Some(ch) = rest.chars().next() else { break };
            // Track JSON strings, so values inside one are escaped.
            match ch {
                '\\' if in_string => escaped = !escaped,
                '"' if !escaped => in_string = !in_string,
                _ => {}
            }
            if ch != '\\' {
                escaped = false;
            }
            lit.push(ch);
            i += ch.len_utf8();
        }
        if !lit.is_empty() {
            parts.push(Part::Text(lit));
        }
        Ok(Some(Self { parts }))
    }

    /// The text for one call.
    pub(crate) fn render(&self, f: &mut Fill<'_>) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Var { var, in_string } => {
                    let v = value(var, f);
                    if *in_string {
                        // A JSON string's content: its quotes stripped.
                        let quoted = serde_json::to_string(&v).unwrap_or_default();
                        let inner = quoted.get(1..quoted.len().saturating_sub(1));
                        out.push_str(inner.unwrap_or_default());
                    } else {
                        out.push_str(&v);
                    }
                }
            }
        }
        out
    }
}

fn value(v: &Var, f: &mut Fill<'_>) -> String {
    let since = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    };
    match v {
        Var::Call => f.call.to_string(),
        Var::Worker => f.worker.to_string(),
        Var::Uuid => uuid(f.rng),
        Var::Rand(a, b) => f.rng.i64(*a..=*b).to_string(),
        Var::Unix => since().as_secs().to_string(),
        Var::UnixMs => since().as_millis().to_string(),
        Var::UnixNs => since().as_nanos().to_string(),
        Var::Now => rfc3339(since()),
        Var::OneOf(list) => list[f.rng.usize(..list.len())].clone(),
    }
}

/// A random (version 4) UUID.
fn uuid(rng: &mut fastrand::Rng) -> String {
    let mut b = rng.u128(..).to_be_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut s = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// `2024-05-01T12:00:00.123Z` for a time since the Unix epoch.
fn rfc3339(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(call: u64, rng: &mut fastrand::Rng) -> Fill<'_> {
        Fill {
            call,
            worker: 3,
            rng,
        }
    }

    #[test]
    fn fills_every_placeholder() {
        let t = Template::parse(
            "-d",
            r#"{"id": {{call}}, "name": "w{{worker}}-{{ .WorkerID }}", "u": "{{uuid}}", "r": {{rand 5 5}}, "c": "{{one_of a}}"}"#,
        )
        .unwrap()
        .unwrap();
        let mut rng = fastrand::Rng::with_seed(1);
        let text = t.render(&mut fill(7, &mut rng));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["name"], "w3-3");
        assert_eq!(v["r"], 5);
        assert_eq!(v["c"], "a");
        let u = v["u"].as_str().unwrap();
        assert_eq!((u.len(), &u[14..15]), (36, "4"), "{u}");
        assert_ne!(
            t.render(&mut fill(7, &mut rng)),
            text,
            "a new uuid each call"
        );
    }

    #[test]
    fn values_inside_strings_are_escaped() {
        let t = Template::parse("-d", r#"{"q": "say {{one_of a"b}}"}"#)
            .unwrap()
            .unwrap();
        let mut rng = fastrand::Rng::with_seed(1);
        let v: serde_json::Value = serde_json::from_str(&t.render(&mut fill(0, &mut rng))).unwrap();
        assert_eq!(v["q"], "say a\"b");
        // An escaped quote does not end the string.
        let t = Template::parse("-d", r#"{"q": "\"{{call}}\""}"#)
            .unwrap()
            .unwrap();
        assert_eq!(t.render(&mut fill(4, &mut rng)), r#"{"q": "\"4\""}"#);
    }

    #[test]
    fn times_read_as_times() {
        assert_eq!(
            rfc3339(std::time::Duration::from_millis(1_714_564_800_123)),
            "2024-05-01T12:00:00.123Z"
        );
        assert_eq!(
            rfc3339(std::time::Duration::ZERO),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn mistakes_have_their_place() {
        assert_eq!(Template::parse("-d", r#"{"a": 1}"#).unwrap(), None);
        for (text, says) in [
            ("{\"a\":\n  {{cal}}}", "-d:2:3: unknown placeholder `cal`"),
            ("{\"a\": {{call}", "-d:1:7: `{{` is not closed"),
            (
                "{\"a\": {{rand 9 1}}}",
                "-d:1:7: `rand 9 1` wants two whole numbers",
            ),
            ("{\"a\": {{uuid 4}}}", "`uuid` takes no arguments"),
            ("{\"a\": {{one_of}}}", "`one_of` needs the values"),
            ("{\"a\": {{ }}}", "an empty placeholder"),
            ("{\"a\": {{one_of 1 x}}}", "`x` is not a JSON value"),
        ] {
            let e = Template::parse("-d", text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
