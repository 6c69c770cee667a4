//! Reading a scenario file: its shape against the schema (`shape`), serde's
//! reading, then its meaning (`check`), every mistake of all three reported
//! at once as `file:line:column: what` with the offending line and a caret
//! under the offending value, before anything starts.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;

use serde_saphyr::Spanned;

use super::model::*;
use super::plan::*;
use super::yaml::Node;
use super::{check, shape, yaml};

#[derive(Debug)]
pub struct ScenarioError {
    pub path: String,
    pub line: u32,
    pub column: u32,
    pub message: String,
    /// The offending line with a caret under the column.
    pub snippet: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path, self.line, self.column, self.message
        )?;
        if !self.snippet.is_empty() {
            write!(f, "\n{}", self.snippet)?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}

/// Every mistake found in a file, in file order (at least one).
#[derive(Debug)]
pub struct ScenarioErrors(pub Vec<ScenarioError>);

impl fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        if self.0.len() > 1 {
            if let Some(e) = self.0.first() {
                write!(f, "\n{} mistakes in {}", self.0.len(), e.path)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioErrors {}

/// The lines of a file as YAML counts them: a line ends at LF, CRLF or a
/// lone CR (which `str::lines` does not split on).
pub fn yaml_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text).filter(|t| !t.is_empty());
    std::iter::from_fn(move || {
        let t = rest?;
        match t.find(['\n', '\r']) {
            Some(i) => {
                let skip = if t[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&t[i + skip..]).filter(|r| !r.is_empty());
                Some(&t[..i])
            }
            None => {
                rest = None;
                Some(t)
            }
        }
    })
}

fn snippet(text: &str, line: u32, column: u32) -> String {
    let Some(l) = yaml_lines(text).nth(line.saturating_sub(1) as usize) else {
        return String::new();
    };
    let caret = " ".repeat(column.saturating_sub(1) as usize);
    let l = crate::redact::text(l);
    format!("  {line:>4} | {l}\n       | {caret}^")
}

/// What checking a file needs: where it is, its text and its YAML tree,
/// and the mistakes found so far.
pub(super) struct Ctx<'a> {
    pub path: &'a str,
    pub text: &'a str,
    tree: Option<Node>,
    errors: RefCell<Vec<ScenarioError>>,
    /// `variant `fixed`: ` while a variant is checked.
    prefix: RefCell<String>,
}

impl Ctx<'_> {
    fn err(&self, at: (u32, u32), message: impl Into<String>) -> ScenarioError {
        // A variant's name goes with mistakes in its own section only.
        let variants = self.tree.as_ref().and_then(|t| t.get("variants"));
        let prefix = if variants.is_some_and(|v| at >= v.at) {
            self.prefix.borrow().clone()
        } else {
            String::new()
        };
        ScenarioError {
            path: self.path.to_string(),
            line: at.0,
            column: at.1,
            message: format!("{prefix}{}", message.into()),
            snippet: snippet(self.text, at.0, at.1),
        }
    }

    /// Records a mistake at `at` (line, column).
    pub fn report(&self, at: (u32, u32), message: impl Into<String>) {
        let e = self.err(at, message);
        self.errors.borrow_mut().push(e);
    }

    /// How many mistakes are recorded.
    pub fn errors(&self) -> usize {
        self.errors.borrow().len()
    }

    /// Drops the last `n` mistakes (said already).
    pub fn forget(&self, n: usize) {
        let mut e = self.errors.borrow_mut();
        let keep = e.len().saturating_sub(n);
        e.truncate(keep);
    }

    /// Where the value of the top-level key `key` stands (or the key, or
    /// the top of the file).
    pub fn top(&self, key: &str) -> (u32, u32) {
        self.tree
            .as_ref()
            .and_then(|t| t.get(key))
            .map_or_else(|| key_pos(self.text, key), |n| n.at)
    }

    /// Where the value of `key` stands in the node at `at` (or below it),
    /// else `at`: the caret goes under the offending value.
    pub fn value(&self, at: (u32, u32), key: &str) -> (u32, u32) {
        self.tree
            .as_ref()
            .and_then(|t| t.at(at))
            .and_then(|n| n.find(key))
            .map_or(at, |n| n.at)
    }
}

pub(super) fn pos<T>(s: &Spanned<T>) -> (u32, u32) {
    (s.referenced.line() as u32, s.referenced.column() as u32)
}

/// The 1-based position of the first line starting with `key:` (for parts
/// that are not spanned), or the top of the file.
fn key_pos(text: &str, key: &str) -> (u32, u32) {
    yaml_lines(text)
        .position(|l| l.starts_with(&format!("{key}:")))
        .map(|i| (i as u32 + 1, 1))
        .unwrap_or((1, 1))
}

/// The first `quoted` word of a message.
pub(super) fn backticked(msg: &str) -> Option<&str> {
    let (_, rest) = msg.split_once('`')?;
    rest.split_once('`')
        .map(|(w, _)| w)
        .filter(|w| !w.is_empty())
}

/// The 0-based line of client `name`'s `service_config:` (after its
/// `name:` when it has one), or 0.
pub(super) fn service_config_line(text: &str, name: &str) -> usize {
    let named = text.lines().position(|l| {
        let t = l.trim_start().trim_start_matches("- ").trim_start();
        t.strip_prefix("name:")
            .map(|v| v.trim().trim_matches(|c| c == '"' || c == '\'') == name)
            .unwrap_or(false)
    });
    let from = named.unwrap_or(0);
    text.lines()
        .enumerate()
        .skip(from)
        .find(|(_, l)| l.contains("service_config"))
        .map_or(0, |(i, _)| i)
}

/// The 1-based line and column where `word` first stands in the file, at
/// or after line `from` (0-based).
pub(super) fn text_pos(text: &str, from: usize, word: &str) -> Option<(u32, u32)> {
    text.lines().enumerate().skip(from).find_map(|(i, l)| {
        l.find(word)
            .map(|c| (i as u32 + 1, l[..c].chars().count() as u32 + 1))
    })
}

/// Reads and checks a scenario file: every mistake in it, or one plan per
/// variant.
pub fn parse(path: &str, text: &str) -> Result<Checked, ScenarioErrors> {
    let tree = yaml::read(text);
    let cx = Ctx {
        path,
        text,
        tree,
        errors: RefCell::new(Vec::new()),
        prefix: RefCell::new(String::new()),
    };
    // The shape first: every unknown key, bad number and duration; then
    // serde reads the file without the unknown keys, and the meaning is
    // checked.
    let shape = cx.tree.as_ref().map(shape::check).unwrap_or_default();
    for p in &shape {
        cx.report(p.at, p.message.clone());
    }
    let readable = shape::without_unknown(text, &shape);
    let checked = match serde_saphyr::from_str::<Scenario>(&readable) {
        Ok(scenario) => lower(&cx, scenario),
        Err(e) => {
            cx.errors.borrow_mut().push(serde_error(&cx, &e));
            None
        }
    };
    let mut errors = cx.errors.into_inner();
    // A node with an unknown key in it has that one mistake: what follows
    // from the key's absence (a step without an action) is not another.
    let blanks: Vec<usize> = shape.iter().filter_map(|p| p.blank.map(|b| b.0)).collect();
    let mut i = 0;
    errors.retain(|e| {
        i += 1;
        i <= shape.len()
            || !cx
                .tree
                .as_ref()
                .and_then(|t| t.at((e.line, e.column)))
                .is_some_and(|n| blanks.iter().any(|b| (n.span.0..n.span.1).contains(b)))
    });
    // One mistake once: shared sections are checked for every variant.
    let mut seen = BTreeSet::new();
    errors.retain(|e| seen.insert((e.line, e.column, strip_variant(&e.message).to_string())));
    // Two words about one place: the first (the shape's) says it.
    let mut places = BTreeSet::new();
    errors.retain(|e| places.insert((e.line, e.column)));
    errors.sort_by_key(|e| (e.line, e.column));
    match checked {
        Some(c) if errors.is_empty() => Ok(c),
        _ if errors.is_empty() => Err(ScenarioErrors(vec![cx_err(path, text)])),
        _ => Err(ScenarioErrors(errors)),
    }
}

/// A message without its `variant `x`: ` prefix.
fn strip_variant(m: &str) -> &str {
    m.strip_prefix("variant `")
        .and_then(|r| r.split_once("`: "))
        .map_or(m, |(_, rest)| rest)
}

/// Never expected: no plan and no mistake.
fn cx_err(path: &str, text: &str) -> ScenarioError {
    ScenarioError {
        path: path.to_string(),
        line: 1,
        column: 1,
        message: "the file could not be read as a scenario".into(),
        snippet: snippet(text, 1, 1),
    }
}

/// serde's mistake, at its place, in its words (a misspelt name gets a
/// suggestion).
fn serde_error(cx: &Ctx, e: &serde_saphyr::Error) -> ScenarioError {
    let (line, column) = e
        .location()
        .map(|l| (l.line() as u32, l.column() as u32))
        .unwrap_or((1, 1));
    // The library's own message, without its rendering of the place.
    let text = e.to_string();
    let mut message = text.lines().next().unwrap_or_default();
    message = message.strip_prefix("error: ").unwrap_or(message);
    if let Some(rest) = message.strip_prefix("line ") {
        if let Some((_, m)) = rest.split_once(": ") {
            message = m;
        }
    }
    cx.err((line, column), message.to_string())
}

/// One plan per variant (or one for a scenario without variants); `None`
/// when there are mistakes (reported).
fn lower(cx: &Ctx, mut s: Scenario) -> Option<Checked> {
    let name = s.name.clone();
    let about = s.about.clone();
    let Some(variants) = s.variants.take() else {
        let plan = check::check(cx, s, None, &[])?;
        return Some(Checked {
            path: cx.path.to_string(),
            name,
            about,
            plans: vec![plan],
        });
    };
    if variants.value.0.is_empty() {
        cx.report(
            pos(&variants),
            "variants is empty; give each one a name and the sections it changes, e.g. broken: {} and fixed: { server: ... }",
        );
        return None;
    }
    let vpos = pos(&variants);
    let mut plans = Vec::new();
    for (vname, v) in variants.value.0 {
        if vname.trim().is_empty() || vname.contains(char::is_whitespace) {
            cx.report(
                vpos,
                format!("the variant name `{vname}` needs to be one word"),
            );
            continue;
        }
        let flat = flatten(&s, v.clone());
        *cx.prefix.borrow_mut() = format!("variant `{vname}`: ");
        let plan = check::check(cx, flat, Some(vname.clone()), &v.expect);
        cx.prefix.borrow_mut().clear();
        plans.extend(plan);
    }
    (cx.errors() == 0).then(|| Checked {
        path: cx.path.to_string(),
        name,
        about,
        plans,
    })
}

/// The scenario with a variant's sections in place.
fn flatten(s: &Scenario, v: Variant) -> Scenario {
    let mut flat = s.clone();
    flat.about = v.about.clone().unwrap_or_else(|| s.about.clone());
    if let Some(x) = v.server {
        flat.server = x;
    }
    if let Some(x) = v.backends {
        flat.backends = Some(x);
    }
    if let Some(x) = v.proxy {
        flat.proxy = Some(x);
    }
    if let Some(x) = v.middlebox {
        flat.middlebox = Some(x);
    }
    // A variant's client or clients replace the scenario's, whichever form
    // either uses.
    if v.client.is_some() || v.clients.is_some() {
        flat.client = v.client;
        flat.clients = v.clients.unwrap_or_default();
    }
    if let Some(x) = v.probes {
        flat.probes = x;
    }
    if let Some(x) = v.timeline {
        flat.timeline = x;
    }
    flat
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_end_at_lf_crlf_and_cr() {
        let v: Vec<&str> = yaml_lines("a\nb\r\nc\rd").collect();
        assert_eq!(v, ["a", "b", "c", "d"]);
        assert_eq!(yaml_lines("a\n").count(), 1);
        assert_eq!(yaml_lines("").count(), 0);
        // An error in a file with CR line breaks shows the right line.
        let e = parse("cr.yaml", "name: x\rduration: soon\r").unwrap_err();
        let e = &e.0[0];
        assert_eq!(e.line, 2);
        assert!(e.snippet.contains("duration: soon"), "{}", e.snippet);
    }
}
