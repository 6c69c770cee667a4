//! Recording a scenario's events: one bounded [`EventSink`] per producer
//! (server, proxy, timeline, each client and probe), its events tagged with
//! who emitted them and collected in order. Nothing is lost silently: a
//! producer never waits (a full sink counts a drop, reported at the end),
//! and [`Recording::finish`] waits for every producer's last event before
//! the verdict is taken.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::recorded::Tagged;
use crate::event::{Event, EventKind, EventSink};

/// Events each producer may have in flight before it counts drops.
const SINK_CAPACITY: usize = 64 * 1024;

/// How long [`Recording::finish`] waits for producers that still hold a
/// sink (a task that outlived its stop); their later events are not taken.
const FINISH_WAIT: Duration = Duration::from_secs(5);

/// The recorder of one run.
pub struct Recording {
    start: Instant,
    tx: mpsc::Sender<Tagged>,
    forwarders: Vec<JoinHandle<()>>,
    /// Each producer's name and drop counter.
    drops: Vec<(String, Arc<AtomicU64>)>,
    collector: JoinHandle<Vec<Tagged>>,
}

/// What a finished recording holds.
pub struct Collected {
    pub events: Vec<Tagged>,
    /// Events producers could not hand over (their sink was full), by who.
    pub dropped: Vec<(String, u64)>,
    /// Producers still running when the recording ended.
    pub unfinished: Vec<String>,
}

impl Recording {
    /// Starts the collector; `live` sees every event as it is recorded.
    pub fn start(start: Instant, live: Option<mpsc::Sender<Tagged>>) -> Self {
        let (tx, mut rx) = mpsc::channel::<Tagged>(SINK_CAPACITY);
        let collector = tokio::spawn(async move {
            let mut all = Vec::new();
            while let Some(t) = rx.recv().await {
                if let Some(live) = &live {
                    // The printer keeps up; a closed one is no reason to stop.
                    let _ = live.send(t.clone()).await;
                }
                all.push(t);
            }
            all
        });
        Self {
            start,
            tx,
            forwarders: Vec::new(),
            drops: Vec::new(),
            collector,
        }
    }

    /// A sink whose events are recorded as emitted by `who` (and, for a
    /// probe, `via` the client it calls through).
    pub fn sink(&mut self, who: &str, via: Option<&str>) -> EventSink {
        let (sink, mut rx) = EventSink::channel_at(SINK_CAPACITY, self.start);
        let (who, via) = (who.to_string(), via.map(str::to_string));
        self.drops.push((who.clone(), sink.drop_counter()));
        let out = self.tx.clone();
        self.forwarders.push(tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                let t = Tagged {
                    who: who.clone(),
                    via: via.clone(),
                    event,
                };
                if out.send(t).await.is_err() {
                    return;
                }
            }
        }));
        sink
    }

    /// Waits until every producer has dropped its sink and every event is
    /// recorded (bounded by [`FINISH_WAIT`]); call it after everything the
    /// run started has stopped.
    pub async fn finish(self) -> Collected {
        let Self {
            start,
            tx,
            forwarders,
            drops,
            collector,
        } = self;
        let deadline = tokio::time::Instant::now() + FINISH_WAIT;
        let mut unfinished = Vec::new();
        for (mut f, (who, _)) in forwarders.into_iter().zip(&drops) {
            if tokio::time::timeout_at(deadline, &mut f).await.is_err() {
                f.abort();
                unfinished.push(who.clone());
            }
        }
        let dropped: Vec<(String, u64)> = drops
            .iter()
            .map(|(who, n)| (who.clone(), n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect();
        // The drops are events too, so that every view of the run sees them.
        for (who, count) in &dropped {
            let event = Event {
                t_ms: start.elapsed().as_secs_f64() * 1e3,
                kind: EventKind::Dropped { count: *count },
                conn: None,
                addr: None,
            };
            let _ = tx
                .send(Tagged {
                    who: who.clone(),
                    via: None,
                    event,
                })
                .await;
        }
        drop(tx);
        let events = collector.await.unwrap_or_default();
        Collected {
            events,
            dropped,
            unfinished,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flood in the last 100 ms before the end is recorded whole.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_at_the_end_is_recorded_whole() {
        let mut rec = Recording::start(Instant::now(), None);
        let mut producers = Vec::new();
        for i in 0..4 {
            let sink = rec.sink(&format!("client{i}"), None);
            producers.push(tokio::spawn(async move {
                let until = tokio::time::Instant::now() + Duration::from_millis(100);
                let mut n = 0u64;
                while tokio::time::Instant::now() < until {
                    for _ in 0..500 {
                        sink.emit(Some(1), None, EventKind::Accepted { tls: false });
                        n += 1;
                    }
                    tokio::task::yield_now().await;
                }
                n
            }));
        }
        let mut sent = 0;
        for p in producers {
            sent += p.await.unwrap_or(0);
        }
        let got = rec.finish().await;
        let dropped: u64 = got.dropped.iter().map(|d| d.1).sum();
        assert!(sent > 1000, "the flood was {sent} events");
        assert_eq!(
            got.events.len() as u64 + dropped,
            sent + got.dropped.len() as u64
        );
        assert!(got.unfinished.is_empty());
    }
}
