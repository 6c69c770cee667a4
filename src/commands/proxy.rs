//! `grpcdoc proxy --upstream HOST:PORT [--fault SPEC]...`: the chaos proxy in
//! the foreground - a gRPC-aware tap: its connections, the calls that pass,
//! the client's GOAWAY/PING/RST_STREAM frames and fault actions on stdout,
//! and a summary when it stops. `grpcdoc proxy ctl ...` drives a running
//! proxy through its API.

use anyhow::{bail, Context as _};
use tokio::signal::unix::{signal, SignalKind};

use crate::cli::{
    CallsShown, ColorChoice, CtlAction, CtlArgs, Output, ProxyArgs, ProxyCommand, ReportOutput,
};
use crate::event::{EventKind, EventSink};
use crate::exit::Exit;
use crate::proxy::api::Api;
use crate::proxy::ctl::{self, CtlError, Request};
use crate::proxy::{ProxyOptions, RunningProxy, Summary};
use crate::report::printer::Printer;

pub async fn run(args: ProxyArgs, color: ColorChoice) -> anyhow::Result<Exit> {
    if let Some(ProxyCommand::Ctl(c)) = args.command {
        return control(c).await;
    }
    if args.list_faults {
        print!("{}", crate::proxy::fault::list());
        return Ok(Exit::Success);
    }
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let (events, rx) = EventSink::channel(16 * 1024);
    let options = ProxyOptions {
        calls: args.calls != CallsShown::None,
        ok_calls: args.calls == CallsShown::All,
        as_client: false,
        pcap: match &args.pcap {
            Some(p) => Some(
                crate::pcap::writer::PcapFile::create(p)
                    .with_context(|| format!("--pcap {}: cannot create it", p.display()))?,
            ),
            None => None,
        },
    };
    // The command line's proxy, when --upstream names one.
    let mut proxy = None;
    if let Some(upstream_text) = &args.upstream {
        let upstream = match tokio::net::lookup_host(upstream_text.as_str()).await {
            Ok(mut addrs) => match addrs.next() {
                Some(a) => a,
                None => bail!("--upstream {upstream_text}: the name has no address"),
            },
            Err(e) => bail!("--upstream {upstream_text}: {e}; expected HOST:PORT"),
        };
        proxy = Some(
            RunningProxy::start_with(
                args.listen,
                upstream,
                args.faults.clone(),
                events.clone(),
                options.clone(),
            )
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?,
        );
    }
    // With --calls failed the tap tells no call that ended OK.
    let writer = super::event_writer(args.output, color, None);
    let mut printer = Printer::spawn(rx, writer, &events);
    // toxiproxy's API: the proxies it makes, and the command line's.
    let (api_stop, api_stop_rx) = tokio::sync::watch::channel(false);
    let mut api_task = None;
    if let Some(at) = args.api {
        let listener = tokio::net::TcpListener::bind(at)
            .await
            .with_context(|| format!("--api {at}: cannot listen"))?;
        let addr = listener.local_addr()?;
        let api = Api::new(events.clone(), options.clone());
        if let (Some(p), Some(up)) = (proxy.take(), &args.upstream) {
            api.adopt("grpcdoc", up, p).await;
        }
        events.emit(
            None,
            None,
            EventKind::Fault {
                name: "api".into(),
                detail: format!("toxiproxy API (v2) on http://{addr}"),
            },
        );
        api_task = Some(tokio::spawn(api.serve(listener, api_stop_rx)));
    }
    let run_for = crate::time::sleep_opt(args.run_for);
    let exit = tokio::select! {
        _ = super::signalled(&mut term) => Exit::Interrupted,
        _ = run_for => Exit::Success,
        _ = &mut printer.pipe_closed => Exit::Success,
    };
    let mut summaries = Vec::new();
    if let Some(p) = proxy {
        summaries.push(("grpcdoc".to_string(), p.shutdown().await));
    }
    let _ = api_stop.send(true);
    if let Some(t) = api_task {
        if let Ok(s) = t.await {
            summaries.extend(s);
        }
    }
    drop(events);
    printer.finish().await;
    print_summaries(&summaries, args.output, options.calls);
    Ok(exit)
}

/// The summary of each proxy, after the events (stdout: it is data).
fn print_summaries(all: &[(String, Summary)], output: Output, calls: bool) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for (name, s) in all {
        let _ = match output {
            Output::Json => {
                let mut v = serde_json::to_value(s).unwrap_or_default();
                v["kind"] = "summary".into();
                v["proxy"] = name.as_str().into();
                writeln!(out, "{v}")
            }
            Output::Human => {
                let text = s.human(calls);
                if all.len() > 1 {
                    write!(out, "{name}: {text}")
                } else {
                    write!(out, "{text}")
                }
            }
        };
    }
    let _ = out.flush();
}

/// `grpcdoc proxy ctl ...`.
async fn control(c: CtlArgs) -> anyhow::Result<Exit> {
    let req = match c.action {
        CtlAction::List => Request::List,
        CtlAction::Add { proxy, fault, name } => Request::Add { proxy, fault, name },
        CtlAction::Rm { proxy, name } => Request::Remove { proxy, name },
        CtlAction::Enable { proxy } => Request::Enable { proxy, on: true },
        CtlAction::Disable { proxy } => Request::Enable { proxy, on: false },
        CtlAction::Reset => Request::Reset,
    };
    match ctl::send(&c.api, &req).await {
        Ok(answer) => {
            match c.output {
                ReportOutput::Json => println!(
                    "{}",
                    if answer.is_null() {
                        serde_json::json!({"ok": true})
                    } else {
                        answer
                    }
                ),
                ReportOutput::Human => print!("{}", ctl::human(&req, &answer)),
            }
            Ok(Exit::Success)
        }
        Err(CtlError::Api { body, .. }) if c.output == ReportOutput::Json => {
            eprintln!("{body}");
            Ok(Exit::Input)
        }
        Err(e) => {
            eprintln!("grpcdoc: {e}");
            Ok(Exit::Input)
        }
    }
}
