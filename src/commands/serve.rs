//! `grpcdoc serve`: the built-in server in the foreground, its events on
//! stdout. The first signal (Ctrl-C, SIGTERM) or the end of `--for` drains
//! gracefully; a second signal closes every connection at once.

use std::time::Duration;

use anyhow::Context as _;
use tokio::signal::unix::{signal, SignalKind};

use crate::cli::{ColorChoice, ServeArgs};
use crate::event::EventSink;
use crate::exit::Exit;
use crate::report::printer::Printer;

use crate::server::{tls, Server, ServerConfig, ServerError, Stop};

fn config(args: &ServeArgs) -> anyhow::Result<ServerConfig> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls::server_config(cert, key)?),
        _ => None,
    };
    Ok(ServerConfig {
        max_connection_idle: args.max_connection_idle,
        idle_drain: args.idle_drain.into(),
        max_connection_age: args.max_connection_age,
        max_connection_age_grace: args.max_connection_age_grace,
        keepalive_time: args.keepalive_time,
        keepalive_timeout: args.keepalive_timeout,
        keepalive_min_time: args.keepalive_min_time,
        keepalive_permit_without_stream: args.keepalive_permit_without_stream,
        max_concurrent_streams: args.max_concurrent_streams,
        delay: args.delay,
        tls,
    })
}

/// Settings that do not do what they seem to: said on stderr, the server
/// still starts.
fn warnings(args: &ServeArgs) -> Vec<String> {
    let mut w = Vec::new();
    if args.max_connection_age_grace.is_some() && args.max_connection_age.is_none() {
        w.push("--max-connection-age-grace does nothing without --max-connection-age (the grace follows the age's drain)".into());
    }
    if args.keepalive_time < Duration::from_secs(1) {
        w.push(format!(
            "--keepalive-time {} is below 1s: grpc-go raises a server keepalive time below 1s to 1s; grpcdoc uses it as given",
            humantime::format_duration(args.keepalive_time)
        ));
    }
    w
}

pub async fn run(args: ServeArgs, color: ColorChoice) -> anyhow::Result<Exit> {
    let cfg = config(&args)?;
    for w in warnings(&args) {
        eprintln!("grpcdoc: warning: {w}");
    }
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let (events, rx) = EventSink::channel(16 * 1024);
    let mut server = match Server::start(args.listen, cfg, events.clone()).await {
        Ok(s) => s,
        Err(ServerError::Bind { addr, source }) => {
            let hint = if source.kind() == std::io::ErrorKind::AddrInUse {
                "; another process uses the port: pick another with --listen, or :0 for a free one"
            } else {
                ""
            };
            anyhow::bail!("cannot listen on {addr}: {source}{hint}");
        }
        Err(e) => return Err(e.into()),
    };

    let writer = super::event_writer(args.output, color, None);
    let mut printer = Printer::spawn(rx, writer, &events);
    let run_for = crate::time::sleep_opt(args.run_for);
    let mut exit = Exit::Success;
    let mut pipe_closed = false;
    tokio::select! {
        _ = super::signalled(&mut term) => server.stop(Stop::Graceful),
        _ = run_for => server.stop(Stop::Graceful),
        _ = &mut printer.pipe_closed => {
            pipe_closed = true;
            server.stop(Stop::Now);
        }
    }
    tokio::select! {
        _ = server.wait() => {}
        _ = super::signalled(&mut term) => {
            server.stop(Stop::Now);
            exit = Exit::Interrupted;
            let _ = tokio::time::timeout(Duration::from_secs(5), server.wait()).await;
        }
    }
    let dropped = events.dropped();
    drop(events);
    drop(server);
    printer.finish().await;
    // With stdout gone (`| head`), events not written were not dropped.
    if dropped > 0 && !pipe_closed {
        eprintln!("grpcdoc: {dropped} events were dropped because the output fell behind");
    }
    Ok(exit)
}
