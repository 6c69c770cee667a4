//! `grpcdoc doctor TARGET`: checks the inputs, runs the measurements with a
//! progress line on a terminal, prints the report, and exits 1 when a
//! client setting conflicts with what was measured.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Context as _;
use tokio::signal::unix::{signal, SignalKind};

use crate::cli::{ColorChoice, DoctorArgs, ReportOutput};
use crate::client::tls::client_config;
use crate::doctor::{ClientConfig, DoctorConfig, Progress};
use crate::exit::Exit;
use crate::report::style::Style;

/// A spinner on stderr naming what runs, only when stderr is a terminal.
fn progress_line(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Progress>,
    budget: Duration,
) -> Option<(indicatif::ProgressBar, tokio::task::JoinHandle<()>)> {
    if !std::io::stderr().is_terminal() {
        // Nobody reads it: the measurements' sends are dropped.
        return None;
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        None,
        indicatif::ProgressDrawTarget::stderr_with_hz(4),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed} of {prefix}  {wide_msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.set_prefix(humantime::format_duration(budget).to_string());
    bar.enable_steady_tick(Duration::from_millis(250));
    let b = bar.clone();
    let task = tokio::spawn(async move {
        let mut parts: Vec<(&'static str, String)> = Vec::new();
        while let Some(p) = rx.recv().await {
            match parts.iter_mut().find(|(k, _)| *k == p.part) {
                Some(e) => e.1 = p.text,
                None => parts.push((p.part, p.text)),
            }
            b.set_message(
                parts
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(" | "),
            );
        }
    });
    Some((bar, task))
}

pub async fn run(args: DoctorArgs, color: ColorChoice) -> anyhow::Result<Exit> {
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    super::lower::check_plaintext(&args.tls, &args.target)?;
    if args.budget < Duration::from_secs(1) {
        anyhow::bail!(
            "--budget {} is too short; give at least 1s (2m measures most policies)",
            humantime::format_duration(args.budget)
        );
    }
    let service_config = args
        .service_config
        .as_deref()
        .map(|a| super::load::read_text("the service config", a))
        .transpose()?;
    let retries_unavailable = match &service_config {
        Some(sc) => crate::load::retry::retries_anywhere(sc, tonic::Code::Unavailable)?,
        None => false,
    };
    let tls = if args.target.tls {
        let opts = super::lower::tls_options(&args.tls);
        Some(client_config(&opts, args.target.server_name())?)
    } else {
        None
    };
    let mut metadata = crate::load::call::request_headers(&args.metadata, None);
    metadata.remove("content-type");
    metadata.remove("te");
    let cfg = DoctorConfig {
        target: args.target.clone(),
        tls,
        metadata,
        budget: args.budget,
        connect_timeout: args.connect_timeout,
        provoke: !args.no_provoke,
        hold_method: args.hold_method.clone(),
        echo_method: args.echo_method.clone(),
        client: ClientConfig {
            keepalive_time: args.client_keepalive_time,
            keepalive_timeout: args.client_keepalive_timeout,
            permit_without_stream: args.client_permit_without_stream,
            idle_timeout: args.client_idle_timeout,
            service_config,
            retries_unavailable,
        },
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (ptx, prx) = tokio::sync::mpsc::unbounded_channel();
    let bar = progress_line(prx, args.budget);
    let run = tokio::spawn(crate::doctor::run(cfg, stop_rx, ptx));
    tokio::pin!(run);
    let mut interrupted = false;
    let report = loop {
        tokio::select! {
            r = &mut run => break r.context("the measurements stopped")?,
            _ = super::signalled(&mut term), if !interrupted => {
                interrupted = true;
                let _ = stop_tx.send(true);
            }
        }
    };
    if let Some((bar, task)) = bar {
        task.abort();
        bar.finish_and_clear();
    }
    let mut out = std::io::stdout().lock();
    let written = match args.output {
        ReportOutput::Json => serde_json::to_writer_pretty(&mut out, &report)
            .map_err(std::io::Error::from)
            .and_then(|_| out.write_all(b"\n")),
        ReportOutput::Human => out.write_all(
            crate::report::doctor::render(&report, &Style::for_stdout(color.forced())).as_bytes(),
        ),
    };
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(e).context("cannot write the report"),
    }
    Ok(if interrupted {
        Exit::Interrupted
    } else if report.failure.is_some() {
        Exit::Input
    } else if report.conflict {
        Exit::CheckFailed
    } else if report.incomplete {
        Exit::Incomplete
    } else {
        Exit::Success
    })
}
