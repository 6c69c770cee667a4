//! `grpcdoc proxy --upstream HOST:PORT [--fault SPEC]...`: the chaos proxy in
//! the foreground - a gRPC-aware tap: its connections, the calls that pass,
//! the client's GOAWAY/PING/RST_STREAM frames and fault actions on stdout.

use anyhow::{bail, Context as _};
use tokio::signal::unix::{signal, SignalKind};

use crate::cli::{CallsShown, ColorChoice, ProxyArgs};
use crate::event::{EventKind, EventSink};
use crate::exit::Exit;
use crate::proxy::api::Api;
use crate::proxy::{ProxyOptions, RunningProxy};
use crate::report::printer::Printer;

pub async fn run(args: ProxyArgs, color: ColorChoice) -> anyhow::Result<Exit> {
    if args.list_faults {
        print!("{}", crate::proxy::spec::list());
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
        let api = Api::new(events.clone(), options);
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
    tokio::select! {
        _ = super::signalled(&mut term) => {}
        _ = run_for => {}
        _ = &mut printer.pipe_closed => {}
    }
    if let Some(p) = proxy {
        p.shutdown().await;
    }
    let _ = api_stop.send(true);
    if let Some(t) = api_task {
        let _ = t.await;
    }
    drop(events);
    printer.finish().await;
    Ok(Exit::Success)
}
