//! `grpcdoc watch TARGET`: dials, keeps the connection in use with probes,
//! and prints every connectivity state change and HTTP/2 control event as it
//! happens, with notes on what notable ones mean; a summary at the end.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use tokio::signal::unix::{signal, SignalKind};

use super::lower::channel_config;
use crate::cli::{ColorChoice, Output, Probe, WatchArgs};
use crate::client::Channel;
use crate::diagnose::Explainer;
use crate::event::{Event, EventKind, EventSink};
use crate::exit::Exit;
use crate::report::printer::Printer;
use crate::report::summary::WatchSummary;
use crate::report::EventWriter;

/// Events as lines (or JSON), counted into the summary printed at the end.
struct WatchWriter {
    inner: Box<dyn EventWriter>,
    summary: WatchSummary,
    json: bool,
}

impl EventWriter for WatchWriter {
    fn write(&mut self, out: &mut dyn Write, e: &Event) -> io::Result<()> {
        self.summary.record(e);
        self.inner.write(out, e)
    }

    fn finish(&mut self, out: &mut dyn Write, end_ms: f64) -> io::Result<()> {
        self.inner.finish(out, end_ms)?;
        self.summary.finish(end_ms);
        if self.json {
            let mut v = serde_json::to_value(&self.summary)?;
            if let Some(o) = v.as_object_mut() {
                o.insert("kind".into(), "summary".into());
            }
            serde_json::to_writer(&mut *out, &v)?;
            out.write_all(b"\n")
        } else {
            writeln!(out)?;
            out.write_all(self.summary.render().as_bytes())
        }
    }
}

/// One probe call; its outcome is an `rpc` event.
async fn probe(
    channel: &Channel,
    probe: &Probe,
    timeout: Duration,
    metadata: &http::HeaderMap,
) -> (String, tonic::Status) {
    let with_metadata = |req: &mut tonic::metadata::MetadataMap| {
        *req = tonic::metadata::MetadataMap::from_headers(metadata.clone());
    };
    let started = Instant::now();
    let (method, result) = match probe {
        Probe::None => unreachable!("no probe task without a probe"),
        Probe::Health => {
            use tonic_health::pb::health_client::HealthClient;
            use tonic_health::pb::HealthCheckRequest;
            let mut req = tonic::Request::new(HealthCheckRequest::default());
            with_metadata(req.metadata_mut());
            req.set_timeout(timeout);
            let call = async {
                HealthClient::new(channel.clone())
                    .check(req)
                    .await
                    .map(|_| ())
            };
            (
                "grpc.health.v1.Health/Check".to_string(),
                tokio::time::timeout(timeout, call).await,
            )
        }
        Probe::Method(path) => {
            let mut req = tonic::Request::new(Bytes::new());
            with_metadata(req.metadata_mut());
            req.set_timeout(timeout);
            let call = async {
                let mut grpc = tonic::client::Grpc::new(channel.clone());
                grpc.ready()
                    .await
                    .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
                let path: http::uri::PathAndQuery = path
                    .parse()
                    .map_err(|_| tonic::Status::invalid_argument("bad method path"))?;
                grpc.unary(req, path, crate::rpc::raw::RawCodec)
                    .await
                    .map(|_| ())
            };
            (
                path.trim_start_matches('/').to_string(),
                tokio::time::timeout(timeout, call).await,
            )
        }
    };
    let status = match result {
        Ok(Ok(())) => tonic::Status::ok(""),
        Ok(Err(s)) => s,
        Err(_) => tonic::Status::deadline_exceeded(format!(
            "no answer within {}",
            humantime::format_duration(timeout)
        )),
    };
    let _ = started;
    (method, status)
}

async fn probe_loop(
    channel: Channel,
    p: Probe,
    interval: Duration,
    events: EventSink,
    metadata: http::HeaderMap,
) {
    let timeout = interval.max(Duration::from_millis(200));
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let started = Instant::now();
        let (method, status) = probe(&channel, &p, timeout, &metadata).await;
        events.emit(
            None,
            None,
            EventKind::Rpc {
                method,
                code: status.code(),
                message: status.message().to_string(),
                latency_ms: started.elapsed().as_secs_f64() * 1e3,
                cause: crate::diagnose::probe_cause(&status),
                attempts: Vec::new(),
            },
        );
    }
}

pub async fn run(args: WatchArgs, color: ColorChoice) -> anyhow::Result<Exit> {
    let mut cfg = channel_config(args.target.clone(), &args.conn, args.frames);
    cfg.metadata = super::lower::metadata(&args.metadata, None);
    let pcap = match &args.pcap {
        Some(p) => Some(
            crate::pcap::writer::PcapFile::create(p)
                .with_context(|| format!("--pcap {}: cannot create it", p.display()))?,
        ),
        None => None,
    };
    cfg.pcap = pcap.clone();
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    super::lower::check_plaintext(&args.conn.tls, &args.target)?;
    super::lower::client_warnings(&args.conn);
    let (events, rx) = EventSink::channel(64 * 1024);
    let cfg_metadata = cfg.metadata.clone();
    let channel = Channel::new(cfg, events.clone())?;
    let inner = super::event_writer(
        args.output,
        color,
        Some(Explainer::new(args.conn.keepalive_time)),
    );
    let mut printer = Printer::spawn(
        rx,
        Box::new(WatchWriter {
            inner,
            summary: WatchSummary::default(),
            json: args.output == Output::Json,
        }),
        &events,
    );

    channel.connect();
    let probes = (args.probe != Probe::None).then(|| {
        tokio::spawn(probe_loop(
            channel.clone(),
            args.probe.clone(),
            args.probe_interval,
            events.clone(),
            cfg_metadata.clone(),
        ))
    });
    let run_for = crate::time::sleep_opt(args.run_for);
    let exit = tokio::select! {
        _ = super::signalled(&mut term) => Exit::Interrupted,
        _ = run_for => Exit::Success,
        _ = &mut printer.pipe_closed => Exit::Success,
    };
    if let Some(p) = probes {
        p.abort();
    }
    // A second signal while shutting down stops at once.
    tokio::select! {
        _ = channel.shutdown() => {}
        _ = super::signalled(&mut term) => {}
    }
    drop(channel);
    drop(events);
    printer.finish().await;
    if let Some(p) = pcap {
        p.flush().context("--pcap: cannot write the capture")?;
    }
    Ok(exit)
}
