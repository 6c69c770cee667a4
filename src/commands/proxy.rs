//! `grpcdoc proxy --upstream HOST:PORT [--fault SPEC]...`: the chaos proxy in
//! the foreground - a gRPC-aware tap: its connections, the calls that pass,
//! the client's GOAWAY/PING/RST_STREAM frames and fault actions on stdout.

use anyhow::{bail, Context as _};
use tokio::signal::unix::{signal, SignalKind};

use crate::cli::{CallsShown, ColorChoice, ProxyArgs};
use crate::event::{Event, EventKind, EventSink};
use crate::exit::Exit;
use crate::proxy::{ProxyOptions, RunningProxy};
use crate::report::printer::Printer;
use crate::report::EventWriter;

/// Leaves out the calls that ended OK (`--calls failed`).
struct FailedCallsOnly(Box<dyn EventWriter>);

impl EventWriter for FailedCallsOnly {
    fn write(&mut self, out: &mut dyn std::io::Write, e: &Event) -> std::io::Result<()> {
        match &e.kind {
            EventKind::Rpc { code, .. } if *code == tonic::Code::Ok => Ok(()),
            _ => self.0.write(out, e),
        }
    }

    fn finish(&mut self, out: &mut dyn std::io::Write, end_ms: f64) -> std::io::Result<()> {
        self.0.finish(out, end_ms)
    }
}

pub async fn run(args: ProxyArgs, color: ColorChoice) -> anyhow::Result<Exit> {
    if args.list_faults {
        print!("{}", crate::proxy::spec::list());
        return Ok(Exit::Success);
    }
    let upstream_text = args.upstream.clone().unwrap_or_default();
    let upstream = match tokio::net::lookup_host(upstream_text.as_str()).await {
        Ok(mut addrs) => match addrs.next() {
            Some(a) => a,
            None => bail!("--upstream {upstream_text}: the name has no address"),
        },
        Err(e) => bail!("--upstream {upstream_text}: {e}; expected HOST:PORT"),
    };
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let (events, rx) = EventSink::channel(16 * 1024);
    let options = ProxyOptions {
        calls: args.calls != CallsShown::None,
        as_client: false,
    };
    let proxy = RunningProxy::start_with(
        args.listen,
        upstream,
        args.faults.clone(),
        events.clone(),
        options,
    )
    .await
    .with_context(|| format!("cannot listen on {}", args.listen))?;
    let mut writer = super::event_writer(args.output, color, None);
    if args.calls == CallsShown::Failed {
        writer = Box::new(FailedCallsOnly(writer));
    }
    let mut printer = Printer::spawn(rx, writer, &events);
    let run_for = crate::time::sleep_opt(args.run_for);
    tokio::select! {
        _ = super::signalled(&mut term) => {}
        _ = run_for => {}
        _ = &mut printer.pipe_closed => {}
    }
    proxy.shutdown().await;
    drop(events);
    printer.finish().await;
    Ok(Exit::Success)
}
