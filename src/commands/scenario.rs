//! `grpcdoc scenario FILE...`: checks every file first (exit 2 on any
//! error, with file:line:column), then plays them one by one and reports.

use std::io::Write;

use anyhow::Context as _;
use tokio::signal::unix::{signal, SignalKind};

use crate::cli::{ColorChoice, ScenarioArgs, ScenarioOutput};
use crate::exit::Exit;
use crate::report::scenario::{junit, render_result, Live, ScenarioResult};
use crate::report::style::{Style, Tone};
use crate::scenario::{expect, load, run};

pub async fn run(args: ScenarioArgs, color: ColorChoice) -> anyhow::Result<Exit> {
    if args.schema {
        print!("{}", crate::scenario::SCHEMA);
        return Ok(Exit::Success);
    }
    // Check every file before anything starts.
    let mut checked = Vec::new();
    for path in &args.files {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the scenario {name}"))?;
        checked.push(load::parse(&name, &text)?);
    }
    if args.check {
        for c in &checked {
            println!(
                "{}: ok ({} steps, {} expectations)",
                c.path,
                c.steps.len(),
                c.scenario.expect.len()
            );
        }
        return Ok(Exit::Success);
    }
    let style = Style::for_stdout(color.forced());
    let human = args.output != ScenarioOutput::Json;
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let (int_tx, int_rx) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(async move {
        super::signalled(&mut term).await;
        let _ = int_tx.send(true);
    });
    let mut results = Vec::new();
    let mut out = std::io::stdout();
    for c in &checked {
        if human {
            let _ = writeln!(
                out,
                "{}",
                style.paint(
                    Tone::Bold,
                    &format!("scenario {} ({})", c.scenario.name, c.path)
                )
            );
            if !c.scenario.about.is_empty() {
                let _ = writeln!(out, "{}", style.paint(Tone::Dim, c.scenario.about.trim()));
            }
        }
        let (live_tx, mut live_rx) = tokio::sync::mpsc::channel(4096);
        let printer = tokio::spawn(async move {
            let mut live = Live::new(style);
            let mut out = std::io::stdout();
            while let Some(t) = live_rx.recv().await {
                if human {
                    if let Some(line) = live.line(&t) {
                        let _ = writeln!(out, "{line}");
                    }
                }
            }
        });
        let recorded = run::play(c, live_tx, int_rx.clone()).await?;
        let _ = printer.await;
        let expectations: Vec<_> = c
            .scenario
            .expect
            .iter()
            .map(|e| expect::check(&e.value, &recorded))
            .collect();
        let result = ScenarioResult {
            name: c.scenario.name.clone(),
            file: c.path.clone(),
            passed: !recorded.interrupted && expectations.iter().all(|e| e.passed),
            duration_ms: recorded.duration_ms,
            interrupted: recorded.interrupted,
            expectations,
            events: recorded.events.len(),
            dropped_events: recorded.dropped.clone(),
            unfinished: recorded.unfinished.clone(),
            warnings: recorded.warnings.clone(),
        };
        if human {
            let _ = write!(out, "{}", render_result(&result, &style));
        }
        let stop = result.interrupted;
        results.push(result);
        if stop {
            break;
        }
    }
    watcher.abort();
    if args.output == ScenarioOutput::Json {
        let report = serde_json::json!({
            "kind": "scenario_report",
            "passed": results.iter().all(|r| r.passed),
            "scenarios": results,
        });
        let _ = writeln!(out, "{report}");
    }
    if let Some(path) = &args.report {
        std::fs::write(path, junit(&results))
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
