//! A scenario file's shape, checked against its JSON Schema (`schema.json`)
//! before serde reads it, so that every mistake of this kind is reported at
//! once, each at its value: unknown keys (with the known key one is likely
//! a misspelling of), numbers of the wrong type or out of bounds, durations
//! that do not parse or are zero where zero means nothing, values not among
//! those allowed.

use std::sync::OnceLock;

use serde_json::Value;

use super::yaml::{Kind, Node};

/// A mistake in the file's shape.
#[derive(Debug)]
pub struct Problem {
    pub at: (u32, u32),
    pub message: String,
    /// Characters to blank out so serde can read the rest of the file (an
    /// unknown key and its value).
    pub blank: Option<(usize, usize)>,
    /// The mapping it was in has no other key: `{}` goes in its place.
    pub fill: bool,
}

/// Durations for which zero means nothing (an interval, a timeout, a
/// length); others (a grace, a delay, a downtime) may be zero.
const NONZERO: &[&str] = &[
    "duration",
    "every",
    "timeout",
    "time",
    "initial",
    "max",
    "resolve_interval",
    "ready_timeout",
    "max_connection_idle",
    "max_connection_age",
    "keepalive_time",
    "keepalive_timeout",
    "at_most",
];

fn schema() -> &'static Value {
    static S: OnceLock<Value> = OnceLock::new();
    S.get_or_init(|| serde_json::from_str(super::SCHEMA).unwrap_or(Value::Null))
}

/// Every shape mistake in the file, in file order.
pub fn check(tree: &Node) -> Vec<Problem> {
    let mut out = Vec::new();
    walk(tree, schema(), "", &mut out);
    out.sort_by_key(|p| p.at);
    out
}

/// `#/$defs/x` followed; the name of the definition, if any.
fn resolve(s: &Value) -> (&Value, Option<&str>) {
    match s.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap_or_default();
            (&schema()["$defs"][name], Some(name))
        }
        None => (s, None),
    }
}

fn walk(n: &Node, s: &Value, key: &str, out: &mut Vec<Problem>) {
    let (s, def) = resolve(s);
    if matches!(n.kind, Kind::Alias) || s.get("oneOf").is_some() || s.get("anyOf").is_some() {
        return;
    }
    let mut bad = |message: String| {
        out.push(Problem {
            at: n.at,
            message,
            blank: None,
            fill: false,
        })
    };
    let scalar = match &n.kind {
        Kind::Scalar(v) => Some(v.as_str()),
        _ => None,
    };
    if def == Some("duration") {
        if let Some(v) = scalar {
            match crate::parse::parse_duration(v) {
                Err(_) => bad(format!(
                    "`{v}` is not a duration; expected one like 500ms, 2s or 1m30s"
                )),
                Ok(d) if d.is_zero() && NONZERO.contains(&key) => {
                    bad(format!("{key} must be above 0"))
                }
                Ok(_) => {}
            }
        }
        return;
    }
    if let (Some(v), Some(allowed)) = (scalar, s.get("enum").and_then(Value::as_array)) {
        let norm = |x: &str| x.to_ascii_lowercase().replace('-', "_");
        let known = allowed
            .iter()
            .filter_map(Value::as_str)
            .any(|a| norm(a) == norm(v));
        if !known && allowed.iter().all(Value::is_string) {
            let names: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
            bad(format!(
                "{key}: `{v}` is not one of {}{}",
                names.join(", "),
                did_you_mean(v, &names)
            ));
        }
        return;
    }
    match (s.get("type").and_then(Value::as_str), &n.kind) {
        (Some("integer" | "number"), Kind::Scalar(v)) => {
            let int = s["type"] == "integer";
            if let Some(m) = number(v, int, key) {
                bad(m);
            } else if let Some(m) = bounds(v, s, key) {
                bad(m);
            }
        }
        (_, Kind::Map(entries)) => map(entries, s, key, out),
        (_, Kind::Seq(items)) => {
            if let Some(item) = s.get("items") {
                for i in items {
                    walk(i, item, key, out);
                }
            }
        }
        _ => {}
    }
}

/// A mapping's keys: each known one walked, each unknown one reported.
fn map(entries: &[super::yaml::Entry], s: &Value, key: &str, out: &mut Vec<Problem>) {
    let props = s.get("properties").and_then(Value::as_object);
    let extra = s.get("additionalProperties");
    let before = out.len();
    for e in entries.iter().filter(|e| e.key != "<<") {
        match (props.and_then(|p| p.get(&e.key)), extra) {
            (Some(p), _) => walk(&e.value, p, &e.key, out),
            (None, Some(x)) if x.is_object() => walk(&e.value, x, &e.key, out),
            (None, Some(Value::Bool(false))) => {
                let names: Vec<&str> = props
                    .map(|p| p.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                let place = if key.is_empty() {
                    "at the top".to_string()
                } else {
                    format!("in {key}")
                };
                out.push(Problem {
                    at: e.key_at,
                    message: format!(
                        "unknown key `{}` {place}{}",
                        e.key,
                        match did_you_mean(&e.key, &names) {
                            s if s.is_empty() => format!("; known: {}", names.join(", ")),
                            s => s,
                        }
                    ),
                    blank: Some((e.key_start, e.value.span.1)),
                    fill: false,
                });
            }
            _ => {}
        }
    }
    let unknown = out[before..].iter().filter(|p| p.blank.is_some()).count();
    if unknown > 0 && unknown == entries.len() {
        if let Some(p) = out[before..].iter_mut().find(|p| p.blank.is_some()) {
            p.fill = true;
        }
    }
}

/// Why `v` is not a number of the kind wanted, if it is not.
fn number(v: &str, int: bool, key: &str) -> Option<String> {
    let ok = if int {
        v.parse::<i64>().is_ok()
    } else {
        v.parse::<f64>().is_ok_and(f64::is_finite)
    };
    (!ok).then(|| {
        format!(
            "{key}: `{v}` is not {}",
            if int { "a whole number" } else { "a number" }
        )
    })
}

/// Why `v` is out of the schema's bounds, if it is.
fn bounds(v: &str, s: &Value, key: &str) -> Option<String> {
    let x: f64 = v.parse().ok()?;
    let lim = |k: &str| s.get(k).and_then(Value::as_f64);
    if let Some(m) = lim("exclusiveMinimum") {
        if x <= m {
            return Some(format!("{key} must be above {m}"));
        }
    }
    if let Some(m) = lim("minimum") {
        if x < m {
            return Some(if m == 0.0 {
                format!("{key} cannot be negative")
            } else {
                format!("{key} must be {m} or more")
            });
        }
    }
    if let Some(m) = lim("maximum") {
        if x > m {
            return Some(format!("{key} is at most {m}"));
        }
    }
    None
}

/// `; did you mean `concurrency`?` when a known name is close to `word`.
pub fn did_you_mean(word: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (distance(word, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| format!("; did you mean `{k}`?"))
        .unwrap_or_default()
}

/// Edit distance (insertions, deletions, substitutions).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The text with the unknown keys blanked out (spaces, line breaks kept, a
/// following comma in a flow mapping too): serde reads the rest, and every
/// place in it stays where it was.
pub fn without_unknown(text: &str, problems: &[Problem]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for p in problems {
        let Some((from, to)) = p.blank else { continue };
        let mut end = to.min(chars.len());
        let mut k = end;
        while k < chars.len() && chars[k] == ' ' {
            k += 1;
        }
        if chars.get(k) == Some(&',') {
            end = k + 1;
        }
        for c in chars.iter_mut().take(end).skip(from) {
            if !matches!(c, '\n' | '\r') {
                *c = ' ';
            }
        }
        if p.fill && end >= from + 2 {
            chars[from] = '{';
            chars[from + 1] = '}';
        }
    }
    chars.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        check(&super::super::yaml::read(text).unwrap())
            .into_iter()
            .map(|p| format!("{}:{} {}", p.at.0, p.at.1, p.message))
            .collect()
    }

    #[test]
    fn every_mistake_at_its_value_and_a_misspelling_named() {
        let p = problems(
            "name: x\nduration: 0s\nclient:\n  load: { call: a/b, concurency: 5, rps: 0 }\n",
        );
        assert_eq!(p.len(), 3, "{p:?}");
        assert_eq!(p[0], "2:11 duration must be above 0");
        assert!(
            p[1].starts_with("4:22 unknown key `concurency` in load; did you mean `concurrency`?"),
            "{p:?}"
        );
        assert_eq!(p[2], "4:42 rps must be above 0");
    }

    #[test]
    fn unknown_keys_are_blanked_and_places_kept() {
        let text = "a: { b: 1, concurency: 5, c: 2 }\nd: 1\n";
        let p = vec![Problem {
            at: (1, 12),
            message: String::new(),
            blank: Some((11, 24)),
            fill: false,
        }];
        let t = without_unknown(text, &p);
        assert_eq!(t, format!("a: {{ b: 1,{}c: 2 }}\nd: 1\n", " ".repeat(16)));
    }
}
