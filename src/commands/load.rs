//! `grpcdoc load TARGET --call METHOD`: checks every input before the first
//! call (method, JSON, protos, service config, open-file limit), runs the
//! load engine over grpcdoc's channel, and reports the calls and the
//! connections under them. Ctrl-C stops, reports what was gathered, exits 130.

use std::sync::Arc;

use anyhow::{bail, Context as _};
use tokio::signal::unix::{signal, SignalKind};

use super::lower::client_settings;
use crate::cli::{ColorChoice, LoadArgs, ReportOutput};
use crate::client::{Channel, ClientSettings};
use crate::event::EventSink;
use crate::exit::Exit;
use crate::load::plan::{CallKind, LoadRequest};
use crate::load::report::{cpu_times, ConnEvents, LoadReport, RunFacts};
use crate::load::stages::Level;
use crate::load::stats::Recorder;
use crate::load::threads::{Layout, Team};
use crate::report::progress::Progress;
use crate::report::style::Style;
use crate::report::FileFormat;
use crate::rpc::descriptors::{self, Source};
use crate::rpc::payload;
use crate::rpc::MethodPath;

/// Raises the open-file soft limit to fit `needed` descriptors, as far as
/// the hard limit allows.
fn raise_nofile(needed: u64, connections: u64) -> anyhow::Result<()> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return Ok(());
    }
    if rl.rlim_cur >= needed {
        return Ok(());
    }
    if rl.rlim_max < needed {
        bail!(
            "{connections} connections need about {needed} open files, but the limit is {} (hard); raise it (ulimit -Hn / limits.conf) or use fewer --connections",
            rl.rlim_max
        );
    }
    let raised = libc::rlimit {
        rlim_cur: rl.rlim_max,
        rlim_max: rl.rlim_max,
    };
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        bail!(
            "cannot raise the open-file limit from {} to {needed}: {}",
            rl.rlim_cur,
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Reflection that failed because the server cannot be reached says so,
/// with what the failure means (not "pass --proto": the calls would fail
/// the same way).
fn unreachable(e: descriptors::DescError, channel: &Channel) -> anyhow::Error {
    match (&e, channel.connect_failure()) {
        (descriptors::DescError::Reflection(_), Some((error, cause, addr))) => anyhow::anyhow!(
            "the server is not reachable: {error}\n  {}",
            crate::diagnose::connect_detail(cause, &addr)
        ),
        _ => e.into(),
    }
}

pub(super) fn read_text(what: &str, arg: &str) -> anyhow::Result<String> {
    match arg.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("cannot read {what} {path}"))
        }
        None => Ok(arg.to_string()),
    }
}

/// What the flags name, read and checked before anything is sent.
struct Inputs {
    data: Option<(String, String)>,
    report_format: Option<FileFormat>,
    source: Source,
    settings: ClientSettings,
    layout: Layout,
    /// Addresses the target names (connections are per address).
    addresses: usize,
}

fn inputs(args: &LoadArgs) -> anyhow::Result<Inputs> {
    super::lower::check_plaintext(&args.conn.tls, &args.target)?;
    super::lower::client_warnings(&args.conn);
    let data = args.data.as_deref().map(payload::read_data).transpose()?;
    let report_format = args
        .report
        .as_deref()
        .map(|p| FileFormat::of(p, &[FileFormat::Html, FileFormat::Json]))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let service_config = args
        .service_config
        .as_deref()
        .map(|a| read_text("the service config", a))
        .transpose()?;
    let source = args.descriptors.source();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let layout = Layout::choose(
        args.threads.map(|t| t as usize),
        args.connections.map(|c| c as usize),
        args.concurrency as usize,
        cores,
    )
    .map_err(anyhow::Error::msg)?;
    let addresses = match &args.target.endpoints {
        crate::target::Endpoints::Hosts(h) | crate::target::Endpoints::Dns(h) => h.len(),
        crate::target::Endpoints::Unix(_) | crate::target::Endpoints::Named(_) => 1,
    };
    let all = (layout.connections * addresses) as u64;
    raise_nofile(all * 2 + 64, all)?;
    let settings = ClientSettings {
        connections: layout.connections,
        service_config,
        wait_for_ready: args.wait_for_ready,
        transparent_retry: !args.no_transparent_retry,
        ..client_settings(&args.conn)
    };
    Ok(Inputs {
        data,
        report_format,
        source,
        settings,
        layout,
        addresses,
    })
}

/// The method `--call` names, from the descriptors (reflection over
/// `channel`, or the files given); without `--call`, an error listing them.
async fn find_method(
    args: &LoadArgs,
    source: &Source,
    channel: &Channel,
) -> anyhow::Result<(MethodPath, prost_reflect::MethodDescriptor)> {
    let Some(path) = args.call.clone() else {
        let pool = descriptors::load(source, channel, None)
            .await
            .map_err(|e| unreachable(e, channel))?;
        bail!(
            "--call is required: name the method, e.g. --call helloworld.Greeter/SayHello; the methods found are:\n{}",
            descriptors::list_methods(&pool)
        );
    };
    let pool = descriptors::load(source, channel, Some(path.service()))
        .await
        .map_err(|e| match &e {
            descriptors::DescError::UnknownService { service, services } => {
                match descriptors::closest(service, services) {
                    Some(c) => anyhow::anyhow!("{e} (--call {c}/{})", path.method()),
                    None => e.into(),
                }
            }
            _ => unreachable(e, channel),
        })?;
    let method = descriptors::find_method(&pool, &path.path()).map_err(anyhow::Error::msg)?;
    Ok((path, method))
}

fn request(args: &LoadArgs, path: MethodPath, data: Option<(String, String)>) -> LoadRequest {
    LoadRequest {
        data,
        metadata: args.metadata.clone(),
        concurrency: args.concurrency as usize,
        total: args.total,
        duration: args.duration,
        rps: args.rps,
        stages: args.stages.clone(),
        expect: args.expect.clone(),
        timeout: args.timeout,
        stream_messages: args.stream_messages as usize,
        stream_interval: args.stream_interval,
        ..LoadRequest::new(path)
    }
}

pub async fn run(args: LoadArgs, color: ColorChoice) -> anyhow::Result<Exit> {
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    // Inputs first: nothing is sent before they are all good.
    let inputs = inputs(&args)?;
    let cfg = crate::load::plan::channel_config(&inputs.settings, args.target.clone())?;
    let (events, mut rx) = EventSink::channel(64 * 1024);
    let channel = Channel::new(inputs.layout.channel_config(&cfg, 0), events.clone())?;
    channel.connect();
    let collector = std::thread::spawn(move || {
        let mut c = ConnEvents::default();
        while let Some(e) = rx.blocking_recv() {
            c.record(&e);
        }
        c
    });
    let (path, method) = find_method(&args, &inputs.source, &channel).await?;
    let scheme = if args.target.tls { "https" } else { "http" };
    let origin = format!("{scheme}://{}", args.target.authority);
    let request = request(&args, path.clone(), inputs.data.clone());
    let plan = crate::load::prepare(request, &inputs.settings, &method, &origin, None)?;
    let duration = plan.duration;
    let plan_stages = plan.stages.clone();

    let rec = Arc::new(Recorder::new(inputs.layout.threads));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let team = Team::assemble(
        &inputs.layout,
        &cfg,
        channel.clone(),
        &events,
        &rec,
        &stop_rx,
    )
    .await?;
    let show_progress =
        args.output == ReportOutput::Human && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let progress = show_progress
        .then(|| Progress::start(rec.clone(), team.channels.clone(), plan_stages.clone()));
    let cpu0 = cpu_times();
    let run = team.run(plan, rec.clone(), stop_rx);
    tokio::pin!(run);
    let info = tokio::select! {
        info = &mut run => info,
        _ = super::signalled(&mut term) => {
            let _ = stop_tx.send(true);
            // A second signal stops at once; otherwise let workers notice.
            tokio::select! {
                info = &mut run => info,
                _ = super::signalled(&mut term) => std::process::exit(130),
            }
        }
    };
    let cpu1 = cpu_times();
    if let Some(p) = progress {
        p.finish();
    }
    channel.shutdown().await;
    drop(channel);
    drop(events);
    let conns = tokio::task::spawn_blocking(move || collector.join())
        .await
        .ok()
        .and_then(|r| r.ok())
        .unwrap_or_default();
    let report = LoadReport::build(
        &rec.snapshot(),
        &conns,
        RunFacts {
            target: args.target.text.clone(),
            method: path.to_string(),
            call_kind: CallKind::of(&method).name().to_string(),
            concurrency: args.concurrency as usize,
            connections: inputs.layout.connections * inputs.addresses,
            threads: inputs.layout.threads,
            notes: inputs.layout.notes.clone(),
            elapsed_s: info.elapsed.as_secs_f64(),
            interrupted: info.interrupted,
            retries: rec.retries(),
            transparent_retries: rec.transparent_retries(),
            slot_waits: rec.slot_waits(),
            slot_wait_us: rec.slot_wait_us(),
            rps_target: args.rps.or_else(|| {
                let st = plan_stages.as_deref()?;
                (st.level == Level::Rate).then(|| st.calls() / st.total().as_secs_f64())
            }),
            late_calls: rec.late(),
            duration_s: duration.map(|d| d.as_secs_f64()),
            cpu: (cpu1.0 - cpu0.0, cpu1.1 - cpu0.1),
            stages: plan_stages,
            checks: args.expect.iter().map(|e| e.text.clone()).collect(),
        },
        &args.fail_on,
    );
    write_report(&report, &args, inputs.report_format, color)?;
    Ok(if info.interrupted {
        Exit::Interrupted
    } else if report.failed() {
        Exit::CheckFailed
    } else {
        Exit::Success
    })
}

/// The report on stdout (tables or JSON), and in `--report FILE`.
fn write_report(
    report: &LoadReport,
    args: &LoadArgs,
    format: Option<FileFormat>,
    color: ColorChoice,
) -> anyhow::Result<()> {
    let text = match args.output {
        ReportOutput::Json => serde_json::to_string(report)? + "\n",
        ReportOutput::Human => {
            crate::report::load::render(report, &Style::for_stdout(color.forced()))
        }
    };
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    // A closed stdout (| head) is not an error worth a message.
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    if let (Some(path), Some(format)) = (&args.report, format) {
        let file = match format {
            FileFormat::Html => crate::report::html::load_page(report),
            FileFormat::Json | FileFormat::Junit => serde_json::to_string(report)? + "\n",
        };
        std::fs::write(path, file)
            .with_context(|| format!("cannot write the report {}", path.display()))?;
    }
    Ok(())
}
