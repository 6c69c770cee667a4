//! Writes events to stdout from a thread of its own, so a slow terminal
//! never holds up a connection. Reports events lost to a full channel as a
//! `dropped` event once it catches up, and a closed stdout (a pipe whose
//! reader went away) to the command, which then stops quietly.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::EventWriter;
use crate::event::{Event, EventKind, EventSink};

pub struct Printer {
    thread: std::thread::JoinHandle<()>,
    /// Resolves when stdout can no longer be written.
    pub pipe_closed: oneshot::Receiver<()>,
}

impl Printer {
    pub fn spawn(
        mut rx: mpsc::Receiver<Event>,
        mut writer: Box<dyn EventWriter>,
        sink: &EventSink,
    ) -> Self {
        let (closed_tx, pipe_closed) = oneshot::channel();
        let drops = sink.drop_counter();
        let start = sink.start();
        let thread = std::thread::spawn(move || {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            let mut reported = 0;
            let mut ok = true;
            while let Some(e) = rx.blocking_recv() {
                let written = writer.write(&mut out, &e).and_then(|()| {
                    if !rx.is_empty() {
                        return Ok(());
                    }
                    let dropped = drops.load(Ordering::Relaxed);
                    if dropped > reported {
                        let lost = Event {
                            t_ms: start.elapsed().as_secs_f64() * 1e3,
                            kind: EventKind::Dropped {
                                count: dropped - reported,
                            },
                            conn: None,
                            addr: None,
                        };
                        reported = dropped;
                        writer.write(&mut out, &lost)?;
                    }
                    out.flush()
                });
                if written.is_err() {
                    ok = false;
                    break;
                }
            }
            if ok {
                let end_ms = start.elapsed().as_secs_f64() * 1e3;
                ok = writer
                    .finish(&mut out, end_ms)
                    .and_then(|()| out.flush())
                    .is_ok();
            }
            if !ok {
                let _ = closed_tx.send(());
            }
        });
        Self {
            thread,
            pipe_closed,
        }
    }

    /// Waits (up to 2 s) for the last events and the summary to be written;
    /// the printer ends when every event sender is gone.
    pub async fn finish(self) {
        let thread = self.thread;
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::task::spawn_blocking(move || thread.join()),
        )
        .await;
    }
}
