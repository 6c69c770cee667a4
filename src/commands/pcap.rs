//! `grpcdoc pcap FILE`: reads a packet capture (or stdin) and shows its
//! HTTP/2 connections as per-connection timelines or watch's JSON lines,
//! explained, with a summary; `--report FILE.html` draws the timelines.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context as _;

use crate::cli::{ColorChoice, Output, PcapArgs};
use crate::exit::Exit;
use crate::pcap::render::Renderer;
use crate::report::style::Style;

/// Stops reading a file at the first Ctrl-C; stdin is read to its end
/// (`tcpdump -w - | grpcdoc pcap -`: tcpdump gets the Ctrl-C too, writes
/// its last packets and closes the pipe). A second Ctrl-C exits at once.
struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    fn watch() -> Self {
        let flag = Arc::new(AtomicBool::new(false));
        let set = flag.clone();
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::spawn(async move {
                super::signalled(&mut term).await;
                set.store(true, Ordering::Release);
            });
        }
        Self(flag)
    }

    fn fired(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// A reader that ends when interrupted.
struct Stoppable<R> {
    inner: R,
    stop: Option<Arc<AtomicBool>>,
}

impl<R: io::Read> io::Read for Stoppable<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self
            .stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Acquire))
        {
            return Ok(0);
        }
        self.inner.read(buf)
    }
}

fn input(args: &PcapArgs, stop: &Interrupt) -> anyhow::Result<Box<dyn io::Read>> {
    if args.file.as_os_str() == "-" {
        return Ok(Box::new(io::stdin().lock()));
    }
    let f = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot open the capture {}", args.file.display()))?;
    Ok(Box::new(Stoppable {
        inner: f,
        stop: Some(stop.0.clone()),
    }))
}

pub fn run(args: PcapArgs, color: ColorChoice) -> anyhow::Result<Exit> {
    if let Some(r) = &args.report {
        crate::report::FileFormat::of(r, &[crate::report::FileFormat::Html])
            .map_err(anyhow::Error::msg)?;
    }
    let stop = Interrupt::watch();
    let reader = input(&args, &stop)?;
    let style = Style::for_stdout(color.forced());
    let mut r = Renderer::new(
        args.output == Output::Json,
        style,
        args.calls,
        args.report.is_some(),
    );
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let mut write_err: Option<io::Error> = None;
    let opts = crate::pcap::Options {
        frames: args.frames,
    };
    let read = crate::pcap::read(reader, opts, &mut |e| {
        if write_err.is_none() {
            if let Err(err) = r.event(&mut out, e) {
                write_err = Some(err);
            }
        }
    });
    let name = if args.file.as_os_str() == "-" {
        "stdin".to_string()
    } else {
        args.file.display().to_string()
    };
    let stats = match read {
        Ok(s) => s,
        Err(e) => {
            let _ = out.flush();
            anyhow::bail!("{name}: {e}");
        }
    };
    r.summary.file = name;
    r.summary.start_unix_ms = stats.first_ns.map(|n| n as f64 / 1e6);
    r.summary.duration_ms = stats.last_ns.saturating_sub(stats.first_ns.unwrap_or(0)) as f64 / 1e6;
    r.summary.stats = stats;
    let written = match write_err {
        Some(e) => Err(e),
        None => r.finish(&mut out).and_then(|()| out.flush()),
    };
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(Exit::Success),
        Err(e) => anyhow::bail!("cannot write to stdout: {e}"),
    }
    if let Some(path) = &args.report {
        write_report(&r, path)?;
    }
    Ok(if stop.fired() {
        Exit::Interrupted
    } else {
        Exit::Success
    })
}

fn write_report(r: &Renderer, path: &std::path::Path) -> anyhow::Result<()> {
    let s = &r.summary;
    let events = r.timeline.as_deref().unwrap_or_default();
    let t = crate::report::timeline::build(events, &Default::default(), s.duration_ms.max(1.0));
    let c = &s.stats.counts;
    let sub = format!(
        "{}: {} packets over {:.2}s; {} HTTP/2, {} TLS connections",
        s.file,
        s.stats.packets,
        s.duration_ms / 1e3,
        c.connections_h2,
        c.connections_tls
    );
    let entries: Vec<(String, u64)> = s.entries.iter().map(|(k, v)| (k.clone(), *v)).collect();
    let head = [
        "conn", "server", "kind", "from", "lifetime", "calls", "failed", "ended",
    ];
    let rows: Vec<Vec<String>> = s
        .connections_table
        .iter()
        .take(Renderer::max_rows())
        .map(|r| {
            vec![
                r.conn.to_string(),
                r.server.clone(),
                r.kind.to_string(),
                format!("{:.3}s", r.start_ms / 1e3),
                format!("{:.3}s", r.lifetime_ms / 1e3),
                r.calls.to_string(),
                r.failed_calls.to_string(),
                r.ended.clone(),
            ]
        })
        .collect();
    let page = crate::report::html::capture_page(
        &format!("grpcdoc pcap {}", s.file),
        &sub,
        &t,
        &entries,
        &head,
        &rows,
    );
    std::fs::write(path, page)
        .with_context(|| format!("cannot write the report {}", path.display()))?;
    eprintln!("grpcdoc: wrote {}", path.display());
    Ok(())
}
