//! `grpcdoc proxy --upstream HOST:PORT [--fault SPEC]...`: the chaos proxy in
//! the foreground, its connections and fault actions on stdout.

use anyhow::{bail, Context as _};
use tokio::signal::unix::{signal, SignalKind};

use crate::cli::{ColorChoice, ProxyArgs};
use crate::event::EventSink;
use crate::exit::Exit;
use crate::proxy::RunningProxy;
use crate::report::printer::Printer;

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
    let proxy = RunningProxy::start(args.listen, upstream, args.faults.clone(), events.clone())
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let writer = super::event_writer(args.output, color, None);
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
