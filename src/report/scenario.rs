//! Scenario output: live lines while it plays (steps, notable events, calls
//! failing and recovering), the results (human), one JSON report, and JUnit
//! XML (a testsuite per scenario variant, a testcase per expectation) for
//! CI, and the variants side by side.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::human::HumanEvents;
use super::style::{Style, Tone};
use crate::event::{CloseReason, EventKind};
use crate::h2wire::Dir;
use crate::scenario::expect::{CheckResult, Comparison};
use crate::scenario::recorded::Tagged;
use crate::scenario::verdict::Outcome;

/// One scenario's outcome.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ScenarioResult {
    pub name: String,
    /// The variant, in a file that has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub file: String,
    /// The scenario's `about:` (the variant's, when it has its own).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub about: String,
    /// Reproduced, fixed, passed, ... with the figure that shows it.
    pub verdict: crate::scenario::verdict::Verdict,
    pub passed: bool,
    pub duration_ms: f64,
    pub interrupted: bool,
    pub expectations: Vec<CheckResult>,
    pub events: usize,
    /// Events lost before they were recorded (a full producer sink), and
    /// producers that had not stopped when the run ended: either makes the
    /// verdict uncertain.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped_events: Vec<(String, u64)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unfinished: Vec<String>,
    /// What the run could not do as asked (a load's rate not held).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// How things were seen (a client program's calls, read on the wire).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Each client program's end and the size of its output.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub programs: Vec<ProgramResult>,
    /// Calls by client (and probe) and status code.
    pub calls: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct ProgramResult {
    pub client: String,
    pub ended: crate::scenario::process::Ended,
    /// Its output (stdout and stderr; the last 64 KiB), secrets redacted.
    pub output: String,
}

impl ScenarioResult {
    /// `restart`, or `restart [fixed]` for a variant.
    pub fn title(&self) -> String {
        match &self.variant {
            Some(v) => format!("{} [{v}]", self.name),
            None => self.name.clone(),
        }
    }
}

/// The variants side by side: a row per measure, a column per variant;
/// PASS/FAIL where the measure is one of that variant's expectations.
pub fn render_comparison(c: &Comparison, style: &Style) -> String {
    let mut t = super::narrow_table();
    let mut head = vec!["expectation".to_string()];
    head.extend(c.variants.iter().cloned());
    t.set_header(head);
    for row in &c.rows {
        let mut cells = vec![row.measure.clone()];
        for cell in &row.cells {
            cells.push(match (&cell.value, cell.passed) {
                (None, _) => "-".into(),
                (Some(v), None) => v.clone(),
                (Some(v), Some(true)) => format!("{} {v}", style.paint(Tone::Good, "PASS")),
                (Some(v), Some(false)) if cell.not_reached => {
                    format!("{} {v}", style.paint(Tone::Warn, "NOT REACHED"))
                }
                (Some(v), Some(false)) => format!("{} {v}", style.paint(Tone::Bad, "FAIL")),
            });
        }
        t.add_row(cells);
    }
    format!(
        "{}\n{t}\n",
        style.paint(
            Tone::Bold,
            &format!("{}: the variants side by side", c.scenario)
        )
    )
}

/// Prints what matters as a scenario plays.
pub struct Live {
    pub human: HumanEvents,
    /// Per client: failures in the current burst of errors.
    failing: BTreeMap<String, u64>,
}

impl Live {
    pub fn new(style: Style) -> Self {
        Self {
            human: HumanEvents::new(style, None),
            failing: BTreeMap::new(),
        }
    }

    /// The line for an event, if it is worth one.
    pub fn line(&mut self, t: &Tagged) -> Option<String> {
        let notable = match &t.event.kind {
            EventKind::Step { .. } | EventKind::Fault { .. } => true,
            EventKind::State { channel: false, .. }
            | EventKind::Goaway {
                dir: Dir::Received, ..
            } => t.is_client(),
            EventKind::Closed { reason, .. } => t.is_client() && *reason != CloseReason::Local,
            EventKind::Drain { .. } => t.who == "server",
            EventKind::Rpc { code, message, .. } => {
                let n = self.failing.entry(t.who.clone()).or_default();
                return match (*code == tonic::Code::Ok, *n) {
                    (false, 0) => {
                        *n = 1;
                        Some(self.format(
                            t,
                            &self.human.style.paint(
                                Tone::Bad,
                                &format!(
                                    "calls failing: {} {message}",
                                    crate::grpc::code_name(*code)
                                ),
                            ),
                        ))
                    }
                    (false, _) => {
                        *n += 1;
                        None
                    }
                    (true, 0) => None,
                    (true, k) => {
                        *n = 0;
                        Some(self.format(
                            t,
                            &self.human.style.paint(
                                Tone::Good,
                                &format!("calls succeed again after {k} failures"),
                            ),
                        ))
                    }
                };
            }
            _ => false,
        };
        notable.then(|| self.format(t, &self.human.describe(&t.event)))
    }

    fn format(&self, t: &Tagged, what: &str) -> String {
        let ts = self
            .human
            .style
            .paint(Tone::Dim, &format!("{:>8.3}s", t.event.t_ms / 1e3));
        format!("{ts}  {:<10} {what}", t.who)
    }
}

/// Text wrapped at `width` columns, lines after the first indented by
/// `indent` spaces.
pub fn wrap(text: &str, width: usize, indent: usize) -> String {
    let mut out = String::new();
    let mut col = 0;
    for w in text.split(' ') {
        let len = w.chars().count();
        if col > indent && col + 1 + len > width {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            col = indent;
        } else if !out.is_empty() {
            out.push(' ');
            col += 1;
        }
        out.push_str(w);
        col += len;
    }
    out
}

fn mark(c: &CheckResult, style: &Style) -> String {
    let tone = if c.not_reached {
        Tone::Warn
    } else if c.passed {
        Tone::Good
    } else {
        Tone::Bad
    };
    style.paint(tone, c.mark())
}

pub fn render_result(r: &ScenarioResult, style: &Style) -> String {
    let mut out = expectations(r, style, true);
    let met = r.expectations.iter().filter(|c| c.passed).count();
    let _ = writeln!(out, "{}", verdict_line(r, style));
    let _ = writeln!(
        out,
        "{}",
        style.paint(
            Tone::Dim,
            &format!(
                "  ({met} of {} expectations met in {:.1}s)",
                r.expectations.len(),
                r.duration_ms / 1e3
            )
        )
    );
    out
}

/// The verdict, after what did not pass (the side-by-side table shows the
/// rest).
pub fn render_verdict(r: &ScenarioResult, style: &Style) -> String {
    let mut out = expectations(r, style, false);
    let _ = writeln!(out, "{}", verdict_line(r, style));
    out
}

/// The expectations (`all`, or those not passed), the calls, notes and
/// warnings.
fn expectations(r: &ScenarioResult, style: &Style, all: bool) -> String {
    let mut out = String::new();
    for c in r.expectations.iter().filter(|c| all || !c.passed) {
        let line = format!("{}  {}  (found {})", c.mark(), c.check, c.value);
        let line = wrap(&line, WIDTH - 2, 8).replacen(c.mark(), &mark(c, style), 1);
        let _ = writeln!(out, "  {line}");
        if let Some(d) = &c.diagnosis {
            let _ = writeln!(out, "        -> {}", wrap(d, WIDTH - 11, 11));
        }
    }
    if let Some(mut t) = super::load::client_totals(&r.calls) {
        super::cap(&mut t);
        let _ = writeln!(out, "{t}");
    }
    for n in &r.notes {
        let _ = writeln!(
            out,
            "{}",
            style.paint(Tone::Dim, &wrap(&format!("note: {n}"), WIDTH, 2))
        );
    }
    for p in &r.programs {
        let _ = writeln!(
            out,
            "{}",
            style.paint(
                Tone::Dim,
                &format!("client `{}` (program): {}", p.client, p.ended.describe())
            )
        );
    }
    for w in &r.warnings {
        let _ = writeln!(
            out,
            "{}",
            style.paint(Tone::Warn, &wrap(&format!("warning: {w}"), WIDTH, 2))
        );
    }
    for (who, n) in &r.dropped_events {
        let line = format!("warning: {n} events of {who} were dropped before they were recorded; the verdict may be wrong");
        let _ = writeln!(out, "{}", style.paint(Tone::Warn, &wrap(&line, WIDTH, 2)));
    }
    if !r.unfinished.is_empty() {
        let line = format!(
            "warning: {} had not stopped 5s after the run; their last events are not counted",
            r.unfinished.join(", ")
        );
        let _ = writeln!(out, "{}", style.paint(Tone::Warn, &wrap(&line, WIDTH, 2)));
    }
    out
}

/// `restart [broken]: reproduced: ...`, wrapped, the outcome coloured.
pub fn verdict_line(r: &ScenarioResult, style: &Style) -> String {
    let o = r.verdict.outcome;
    let tone = match o {
        Outcome::Interrupted => Tone::Warn,
        _ if o.good() => Tone::Good,
        _ => Tone::Bad,
    };
    let mut text = wrap(&format!("{}: {}", r.title(), r.verdict.sentence), WIDTH, 2);
    if let Some(a) = &r.verdict.advice {
        text.push('\n');
        text.push_str(&wrap(&format!("  fix: {a}"), WIDTH, 7));
    }
    let word = o.word();
    let at = r.title().len() + 2;
    if text.get(at..at + word.len()) == Some(word) {
        format!(
            "{}{}{}",
            &text[..at],
            style.paint(tone, word),
            &text[at + word.len()..]
        )
    } else {
        text
    }
}

/// The width human output keeps to.
const WIDTH: usize = super::WIDTH as usize;

fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => o.push(c),
        }
    }
    o
}

/// JUnit XML: a testsuite per scenario, a testcase per expectation.
pub fn junit(results: &[ScenarioResult]) -> String {
    let tests: usize = results.iter().map(|r| r.expectations.len()).sum();
    let failures: usize = results
        .iter()
        .map(|r| {
            r.expectations
                .iter()
                .filter(|c| !c.passed && !c.not_reached)
                .count()
        })
        .sum();
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        "<testsuites name=\"grpcdoc scenario\" tests=\"{tests}\" failures=\"{failures}\">"
    );
    for r in results {
        let f = r
            .expectations
            .iter()
            .filter(|c| !c.passed && !c.not_reached)
            .count();
        let _ = writeln!(
            o,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\" time=\"{:.3}\" file=\"{}\">",
            xml(&r.title()),
            r.expectations.len(),
            r.duration_ms / 1e3,
            xml(&r.file)
        );
        for c in &r.expectations {
            let _ = write!(
                o,
                "    <testcase classname=\"{}\" name=\"{}\"",
                xml(&r.title()),
                xml(&c.check)
            );
            if c.passed {
                let _ = writeln!(o, "/>");
            } else if c.not_reached {
                let _ = writeln!(
                    o,
                    ">\n      <skipped message=\"not reached: the run was interrupted\"/>\n    </testcase>"
                );
            } else {
                let _ = writeln!(
                    o,
                    ">\n      <failure message=\"found {}\">{}</failure>\n    </testcase>",
                    xml(&c.value),
                    xml(c.diagnosis.as_deref().unwrap_or(""))
                );
            }
        }
        let _ = writeln!(o, "  </testsuite>");
    }
    o.push_str("</testsuites>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::expect::{Cell, ComparisonRow};

    /// Display width: characters, colour codes left out.
    fn width(line: &str) -> usize {
        let mut n = 0;
        let mut esc = false;
        for c in line.chars() {
            match (esc, c) {
                (false, '\x1b') => esc = true,
                (true, 'm') => esc = false,
                (true, _) => {}
                (false, _) => n += 1,
            }
        }
        n
    }

    /// Every line of a table as wide as the others (aligned) and at most
    /// 100 columns.
    fn aligned(text: &str) {
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| l.contains('│') || l.contains('┌'))
            .collect();
        assert!(!rows.is_empty(), "{text}");
        let w = width(rows[0]);
        assert!(w <= 100, "{w} columns:\n{text}");
        for r in &rows {
            assert_eq!(width(r), w, "misaligned: {r:?}\n{text}");
        }
    }

    #[test]
    fn tables_with_colour_on_stay_aligned_within_100_columns() {
        let style = Style::new(true);
        let cell = |v: &str, p: Option<bool>| Cell {
            value: Some(v.into()),
            passed: p,
            not_reached: false,
        };
        let cmp = Comparison {
            scenario: "restart".into(),
            variants: vec!["broken".into(), "fixed".into(), "fixed-retry-policy".into()],
            rows: vec![
                ComparisonRow {
                    measure:
                        "rpcs code=UNAVAILABLE after=back before=naive-still-waiting client=pool"
                            .into(),
                    cells: vec![
                        cell("85", Some(true)),
                        cell("0", None),
                        cell("0", Some(false)),
                    ],
                },
                ComparisonRow {
                    measure: "success_rate after=back".into(),
                    cells: vec![
                        cell("0.5277 (124 of 235)", None),
                        cell("1.0000 (235 of 235)", Some(true)),
                        Cell {
                            not_reached: true,
                            ..cell("0.9000 (9 of 10)", Some(false))
                        },
                    ],
                },
            ],
        };
        let text = render_comparison(&cmp, &style);
        assert!(text.contains("\x1b[32mPASS\x1b[0m"), "colour is on: {text}");
        aligned(&text);

        let mut calls = BTreeMap::new();
        for who in ["client", "probe-with-a-long-name"] {
            let mut codes = BTreeMap::new();
            codes.insert("OK".to_string(), 1000u64);
            codes.insert("UNAVAILABLE".to_string(), 226);
            codes.insert("DEADLINE_EXCEEDED".to_string(), 3);
            calls.insert(who.to_string(), codes);
        }
        let mut t = super::super::load::client_totals(&calls).unwrap();
        super::super::cap(&mut t);
        aligned(&t.to_string());
    }
}
