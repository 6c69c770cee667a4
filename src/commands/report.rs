//! `grpcdoc report merge FILE...`: reads `load -o json` reports and prints
//! their merge.

use anyhow::Context as _;

use crate::cli::{ColorChoice, ReportCommand, ReportOutput};
use crate::exit::Exit;
use crate::load::report::LoadReport;
use crate::report::style::Style;

pub fn run(cmd: ReportCommand, color: ColorChoice) -> anyhow::Result<Exit> {
    let ReportCommand::Merge { files, output } = cmd;
    let mut reports = Vec::new();
    for f in &files {
        let name = f.display().to_string();
        let text =
            std::fs::read_to_string(f).with_context(|| format!("cannot read the report {name}"))?;
        let report: LoadReport = serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{name}:{}:{}: not a `grpcdoc load -o json` report: {}",
                e.line(),
                e.column(),
                crate::rpc::payload::json_reason(&e)
            )
        })?;
        reports.push((name, report));
    }
    let n = reports.len();
    let merged = crate::load::merge::merge(reports)?;
    let text = match output {
        ReportOutput::Json => serde_json::to_string(&merged)? + "\n",
        ReportOutput::Human => format!(
            "merged {n} reports\n{}",
            crate::report::load::render(&merged, &Style::for_stdout(color.forced()))
        ),
    };
    print!("{text}");
    Ok(Exit::Success)
}
