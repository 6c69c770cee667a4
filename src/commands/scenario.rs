//! `grpcdoc scenario FILE...`: checks every file first (exit 2 on any
//! error, with file:line:column), then plays them one by one - a file's
//! variants side by side - and reports.

use std::io::{IsTerminal as _, Write};

use anyhow::Context as _;
use tokio::signal::unix::{signal, SignalKind};

use crate::cli::{ColorChoice, ScenarioArgs, ScenarioOutput};
use crate::exit::Exit;
use crate::report::fold::Folder;
use crate::report::scenario::{
    junit, render_comparison, render_result, render_verdict, Live, ScenarioResult,
};
use crate::report::style::{Style, Tone};
use crate::report::FileFormat;
use crate::scenario::plan::{Checked, Plan};
use crate::scenario::recorded::Recorded;
use crate::scenario::verdict::{self, Role};
use crate::scenario::{expect, load, run, shipped};

/// A scenario file names a program that is not installed.
#[derive(Debug, thiserror::Error)]
#[error("{path}: this scenario needs {what}, which is not installed here; install {install} (nothing was started)")]
pub struct MissingProgram {
    pub path: String,
    pub what: String,
    pub install: String,
}

pub async fn run(args: ScenarioArgs, color: ColorChoice) -> anyhow::Result<Exit> {
    if let Some(exit) = shipped_only(&args)? {
        return Ok(exit);
    }
    // Check every file before anything starts.
    let mut checked = Vec::new();
    for path in &args.files {
        let (name, text) = read(path)?;
        checked.push(load::parse(&name, &text)?);
    }
    if args.check {
        for c in &checked {
            let _ = writeln!(std::io::stdout(), "{}", checked_line(c));
        }
        return Ok(Exit::Success);
    }
    // Programs the files need, before anything starts.
    for c in &checked {
        if let Some((prog, install)) = c.missing_programs().into_iter().next() {
            return Err(MissingProgram {
                path: c.path.clone(),
                what: prog,
                install,
            }
            .into());
        }
    }
    // The report file's format, known before anything runs.
    let report_format = match (&args.report, args.output) {
        (Some(_), ScenarioOutput::Junit) => Some(FileFormat::Junit),
        (Some(p), _) => Some(
            FileFormat::of(p, &[FileFormat::Html, FileFormat::Junit, FileFormat::Json])
                .map_err(anyhow::Error::msg)?,
        ),
        (None, _) => None,
    };
    let human = args.output != ScenarioOutput::Json;
    let out = Out {
        style: Style::for_stdout(color.forced()),
        human,
        mode: if !human {
            LiveMode::Quiet
        } else if args.verbose || !std::io::stdout().is_terminal() {
            LiveMode::Events
        } else {
            LiveMode::Folded
        },
        html: report_format == Some(FileFormat::Html),
    };
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let (int_tx, int_rx) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(async move {
        super::signalled(&mut term).await;
        let _ = int_tx.send(true);
    });
    let mut all = Played::default();
    for c in &checked {
        play_file(c, &out, &int_rx, &mut all).await?;
        if all.results.iter().any(|r| r.interrupted) {
            break;
        }
    }
    watcher.abort();
    report(&args, report_format, all)
}

/// `--schema`, `--list`, `--show`: what needs no file.
fn shipped_only(args: &ScenarioArgs) -> anyhow::Result<Option<Exit>> {
    if args.schema {
        let _ = write!(std::io::stdout(), "{}", crate::scenario::SCHEMA);
    } else if args.list {
        let _ = write!(std::io::stdout(), "{}", list());
    } else if let Some(name) = &args.show {
        let s = shipped::by_name(name).ok_or_else(|| {
            anyhow::anyhow!(
                "no shipped scenario is named `{name}`; they are: {}",
                shipped::names()
            )
        })?;
        let _ = write!(std::io::stdout(), "{}", s.text);
    } else {
        return Ok(None);
    }
    Ok(Some(Exit::Success))
}

/// `FILE: ok (5 steps, 8 expectations, variants broken, fixed)`.
fn checked_line(c: &Checked) -> String {
    let steps: usize = c.plans.iter().map(|p| p.steps.len()).max().unwrap_or(0);
    let checks: usize = c.plans.iter().map(|p| p.checks.len()).sum();
    let variants = c
        .plans
        .iter()
        .filter_map(|p| p.variant.clone())
        .collect::<Vec<_>>();
    format!(
        "{}: ok ({steps} steps, {checks} expectations{})",
        c.path,
        if variants.is_empty() {
            String::new()
        } else {
            format!(", variants {}", variants.join(", "))
        }
    )
}

/// How results are shown.
struct Out {
    style: Style,
    human: bool,
    mode: LiveMode,
    /// The HTML report wants each run's timeline.
    html: bool,
}

/// What the files' runs gave.
#[derive(Default)]
struct Played {
    results: Vec<ScenarioResult>,
    comparisons: Vec<expect::Comparison>,
    timelines: Vec<crate::report::timeline::Timeline>,
}

/// Plays one file (its variants side by side), prints its results, and
/// adds them to `all`.
async fn play_file(
    c: &Checked,
    out: &Out,
    interrupt: &tokio::sync::watch::Receiver<bool>,
    all: &mut Played,
) -> anyhow::Result<()> {
    let (style, mut stdout) = (out.style, std::io::stdout());
    if out.human {
        let title = format!("scenario {} ({})", c.name, c.path);
        let _ = writeln!(stdout, "{}", style.paint(Tone::Bold, &title));
        if !c.about.is_empty() {
            let about = crate::report::scenario::wrap(c.about.trim(), 100, 0);
            let _ = writeln!(stdout, "{}", style.paint(Tone::Dim, &about));
        }
    }
    let played = play_all(c, out.mode, style, interrupt).await?;
    let results = results(c, &played);
    for ((plan, recorded), result) in c.plans.iter().zip(&played).zip(&results) {
        if out.html {
            all.timelines.push(crate::report::timeline::build(
                &recorded.events,
                &recorded.marks,
                recorded.duration_ms,
            ));
        }
        if out.mode == LiveMode::Folded && c.plans.len() > 1 {
            // The table below shows every expectation.
            let _ = write!(stdout, "{}", render_verdict(result, &style));
        } else if out.human {
            if let Some(v) = &plan.variant {
                let _ = writeln!(
                    stdout,
                    "{}",
                    style.paint(Tone::Bold, &format!("variant {v}"))
                );
            }
            let _ = write!(stdout, "{}", render_result(result, &style));
        }
    }
    if c.plans.len() > 1 {
        let own: Vec<&[expect::CheckResult]> =
            results.iter().map(|r| r.expectations.as_slice()).collect();
        let cmp = expect::compare(c, &played, &own);
        if out.human {
            let _ = write!(stdout, "{}", render_comparison(&cmp, &style));
        }
        all.comparisons.push(cmp);
    }
    all.results.extend(results);
    Ok(())
}

/// Each variant's result and verdict; a fixed variant's figure beside the
/// broken one's.
fn results(c: &Checked, played: &[Recorded]) -> Vec<ScenarioResult> {
    let sig = verdict::signature(&c.plans);
    let figures: Vec<verdict::Figure> = c
        .plans
        .iter()
        .zip(played)
        .map(|(p, r)| verdict::figure(p, r, &sig))
        .collect();
    let broken = c
        .plans
        .iter()
        .position(|p| Role::of(p.variant.as_deref()) == Role::Broken)
        .map(|i| &figures[i]);
    let mut out = Vec::new();
    for ((plan, recorded), fig) in c.plans.iter().zip(played).zip(&figures) {
        let mut result = verdict(c, plan, recorded);
        result.verdict = verdict::judge(
            Role::of(plan.variant.as_deref()),
            recorded.interrupted,
            &result.expectations,
            fig,
            broken,
        );
        result.passed = result.verdict.outcome.good();
        result.verdict.advice = verdict::advice(plan, fig, result.verdict.outcome);
        out.push(result);
    }
    out
}

/// The JSON report or the report file, and the exit code.
fn report(args: &ScenarioArgs, format: Option<FileFormat>, all: Played) -> anyhow::Result<Exit> {
    let Played {
        results,
        comparisons,
        timelines,
    } = all;
    let json = || {
        serde_json::json!({
            "kind": "scenario_report",
            "passed": results.iter().all(|r| r.passed),
            "scenarios": results,
            "comparisons": comparisons,
        })
    };
    if args.output == ScenarioOutput::Json {
        let _ = writeln!(std::io::stdout(), "{}", json());
    }
    if let (Some(path), Some(format)) = (&args.report, format) {
        let text = match format {
            FileFormat::Junit => junit(&results),
            FileFormat::Json => format!("{}\n", json()),
            FileFormat::Html => {
                let runs: Vec<_> = results.iter().cloned().zip(timelines).collect();
                crate::report::html::scenario_page(&runs, &comparisons)
            }
        };
        std::fs::write(path, text)
            .with_context(|| format!("cannot write the report {}", path.display()))?;
    }
    Ok(if results.iter().any(|r| r.interrupted) {
        Exit::Interrupted
    } else if results.iter().all(|r| r.passed) {
        Exit::Success
    } else {
        Exit::CheckFailed
    })
}

/// A scenario's name (for messages) and text: the file, or the shipped
/// scenario a name (`restart`) or a missing path (`restart.yaml`) names.
fn read(path: &std::path::Path) -> anyhow::Result<(String, String)> {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((name, text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let by_name = path
                .to_str()
                .filter(|n| !n.contains('/'))
                .and_then(shipped::by_name);
            if let Some(s) = by_name {
                return Ok((s.path(), s.text.to_string()));
            }
            if let Some(s) = shipped::by_path(path) {
                eprintln!(
                    "grpcdoc: {name} is not here; running the shipped scenario `{}` (`grpcdoc scenario --show {} > {}.yaml` writes it out)",
                    s.name, s.name, s.name
                );
                return Ok((s.path(), s.text.to_string()));
            }
            Err(anyhow::Error::new(e).context(format!(
                "cannot read the scenario {name} (`grpcdoc scenario --list` lists the shipped ones, which run by name)"
            )))
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot read the scenario {name}"))),
    }
}

/// `--list`: each shipped scenario and its `about:`, 100 columns wide.
fn list() -> String {
    let all = shipped::all();
    let w = all.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for s in all {
        let about = match load::parse(&s.path(), s.text) {
            Ok(c) => c.about.trim().to_string(),
            Err(e) => format!(
                "(does not check: {})",
                e.0.first().map_or("", |e| e.message.as_str())
            ),
        };
        let text = crate::report::scenario::wrap(&about, 100 - w - 2, 0);
        let pad = format!("\n{}", " ".repeat(w + 2));
        out.push_str(&format!(
            "{:<w$}  {}\n",
            s.name,
            text.lines().collect::<Vec<_>>().join(&pad)
        ));
    }
    out
}

/// How a run's events are printed while it plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LiveMode {
    /// Nothing (JSON on stdout).
    Quiet,
    /// Every notable event, the variants interleaved under their names.
    Events,
    /// One line per thing that happened, a block per variant: the first
    /// live, the others when it ends.
    Folded,
}

/// Plays a file's plans side by side.
async fn play_all(
    c: &Checked,
    mode: LiveMode,
    style: Style,
    interrupt: &tokio::sync::watch::Receiver<bool>,
) -> Result<Vec<Recorded>, run::RunError> {
    let width = c
        .plans
        .iter()
        .filter_map(|p| p.variant.as_ref().map(String::len))
        .max();
    let runs = c.plans.iter().enumerate().map(|(i, plan)| {
        let (live_tx, live_rx) = tokio::sync::mpsc::channel(4096);
        let prefix = match (&plan.variant, width) {
            (Some(v), Some(w)) => format!("{} ", style.paint(Tone::Bold, &format!("{v:<w$}"))),
            _ => String::new(),
        };
        let header = plan
            .variant
            .as_ref()
            .map(|v| style.paint(Tone::Bold, &format!("variant {v}")));
        // The first block is printed as it happens, the others held.
        let hold = mode == LiveMode::Folded && i > 0;
        let printer = tokio::spawn(print_live(live_rx, mode, style, prefix, header, hold));
        let interrupt = interrupt.clone();
        async move {
            let r = run::play(plan, live_tx, interrupt).await;
            let held = printer.await.unwrap_or_default();
            (r, held)
        }
    });
    let mut out = Vec::new();
    for (r, held) in futures_util::future::join_all(runs).await {
        let mut stdout = std::io::stdout();
        for line in held {
            let _ = writeln!(stdout, "{line}");
        }
        out.push(r?);
    }
    Ok(out)
}

/// Prints (or, with `hold`, returns) a run's live lines.
async fn print_live(
    mut rx: tokio::sync::mpsc::Receiver<run::Tagged>,
    mode: LiveMode,
    style: Style,
    prefix: String,
    header: Option<String>,
    hold: bool,
) -> Vec<String> {
    let mut held = Vec::new();
    let mut out = std::io::stdout();
    let mut emit = |line: String| {
        if hold {
            held.push(line);
        } else {
            let _ = writeln!(out, "{line}");
        }
    };
    match mode {
        LiveMode::Quiet => while rx.recv().await.is_some() {},
        LiveMode::Events => {
            let mut live = Live::new(style);
            while let Some(t) = rx.recv().await {
                if let Some(line) = live.line(&t) {
                    emit(format!("{prefix}{line}"));
                }
            }
        }
        LiveMode::Folded => {
            if let Some(h) = header {
                emit(h);
            }
            let mut fold = Folder::new(style);
            let mut end = 0.0;
            while let Some(t) = rx.recv().await {
                end = t.event.t_ms;
                for line in fold.lines(&t) {
                    emit(line);
                }
            }
            for line in fold.finish(end) {
                emit(line);
            }
        }
    }
    held
}

fn verdict(c: &Checked, plan: &Plan, recorded: &Recorded) -> ScenarioResult {
    let expectations: Vec<_> = plan
        .checks
        .iter()
        .map(|e| {
            let mut r = expect::check(e, recorded);
            if !expect::reached(e, recorded) {
                r.not_reached = true;
                r.passed = false;
                r.diagnosis = None;
            }
            r
        })
        .collect();
    ScenarioResult {
        name: c.name.clone(),
        about: plan.about.trim().to_string(),
        verdict: verdict::Verdict {
            outcome: verdict::Outcome::Failed,
            sentence: String::new(),
            advice: None,
        },
        variant: plan.variant.clone(),
        file: c.path.clone(),
        passed: !recorded.interrupted && expectations.iter().all(|e| e.passed),
        duration_ms: recorded.duration_ms,
        interrupted: recorded.interrupted,
        expectations,
        events: recorded.events.len(),
        dropped_events: recorded.dropped.clone(),
        unfinished: recorded.unfinished.clone(),
        warnings: recorded.warnings.clone(),
        notes: recorded.notes.clone(),
        calls: expect::calls_by_client(recorded),
        programs: recorded
            .programs
            .iter()
            .map(|(name, p)| crate::report::scenario::ProgramResult {
                client: name.clone(),
                ended: p.ended.clone(),
                output: {
                    let o = p.output.as_str();
                    let mut cut = o.len().saturating_sub(64 * 1024);
                    while !o.is_char_boundary(cut) {
                        cut += 1;
                    }
                    crate::redact::text(&o[cut..])
                },
            })
            .collect(),
    }
}
