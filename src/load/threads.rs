//! `load --threads N`: a run on N threads, as h2load's `-t`. Each thread is
//! a tokio current-thread runtime that owns its channel (its share of the
//! connections), its workers (its share of the calls in flight) and its
//! slot of the recorder, so a call and its connection never wake each
//! other across threads and nothing on a call's path is shared. Thread 0
//! is the caller's own (its channel already read the descriptors); the
//! others are started here. Every thread's connections are dialed before
//! the clock starts (for at most 2 s), and all threads start on one clock,
//! so the run's rate schedule and duration are the same as on one thread.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::engine::{self, RunInfo, Share};
use super::plan::LoadPlan;
use super::stats::Recorder;
use crate::client::{Channel, ChannelConfig};
use crate::connectivity::State;

/// The longest a run waits for its connections before its clock starts.
const SETTLE: Duration = Duration::from_secs(2);
use crate::event::EventSink;

/// How many threads, connections and calls in flight a run gets, and why
/// when the user did not choose.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Layout {
    pub(crate) threads: usize,
    /// Per address.
    pub(crate) connections: usize,
    /// What the run changed from what was asked, for the report.
    pub(crate) notes: Vec<String>,
}

impl Layout {
    /// Threads and connections from `--threads`, `--connections` and `-c`:
    /// every thread owns at least one connection (per address) and one
    /// call in flight. Unset threads are the `cores` available (fewer when
    /// there are fewer connections or calls to give them); unset
    /// connections are one per thread. Both set and in conflict: an error.
    pub(crate) fn choose(
        threads: Option<usize>,
        connections: Option<usize>,
        concurrency: usize,
        cores: usize,
    ) -> Result<Self, String> {
        let mut notes = Vec::new();
        let threads = match threads {
            Some(t) => {
                if let Some(c) = connections.filter(|c| *c < t) {
                    return Err(format!(
                        "--connections {c} is fewer than --threads {t}: each thread owns its own connections; give --connections {t} or more, or --threads {c}"
                    ));
                }
                if concurrency < t {
                    return Err(format!(
                        "-c {concurrency} is fewer than --threads {t}: each thread needs a call in flight; give -c {t} or more, or --threads {concurrency}"
                    ));
                }
                t
            }
            None => {
                let cap = connections.unwrap_or(usize::MAX).min(concurrency);
                let t = cores.max(1).min(cap);
                if t < cores {
                    notes.push(format!(
                        "{t} thread{} of the {cores} cores: one per {} (--threads to choose)",
                        if t == 1 { "" } else { "s" },
                        if connections.is_some_and(|c| c < concurrency) {
                            "connection"
                        } else {
                            "call in flight"
                        }
                    ));
                }
                t
            }
        };
        let connections = match connections {
            Some(c) => c,
            None => {
                if threads > 1 {
                    notes.push(format!(
                        "{threads} connections per address: one per thread (--connections to choose, --threads 1 for one)"
                    ));
                }
                threads
            }
        };
        Ok(Self {
            threads,
            connections,
            notes,
        })
    }

    /// The channel of thread `index`: its share of the connections.
    pub(crate) fn channel_config(&self, cfg: &ChannelConfig, index: usize) -> ChannelConfig {
        let share = Share {
            index,
            of: self.threads,
        };
        let mut c = cfg.clone();
        c.connections_per_address = share.part(self.connections).max(1);
        c
    }
}

/// The threads beside the caller's, each with its channel made and
/// connecting, waiting for the start.
pub(crate) struct Team {
    /// Every thread's channel, the caller's first.
    pub(crate) channels: Vec<Channel>,
    starts: Vec<oneshot::Sender<(Arc<LoadPlan>, Instant)>>,
    done: Vec<oneshot::Receiver<RunInfo>>,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl Team {
    /// Starts threads 1.. of `layout` beside the caller's (whose channel is
    /// `first`); each makes its channel from `cfg` and connects it.
    pub(crate) async fn assemble(
        layout: &Layout,
        cfg: &ChannelConfig,
        first: Channel,
        events: &EventSink,
        rec: &Arc<Recorder>,
        stop: &watch::Receiver<bool>,
    ) -> anyhow::Result<Self> {
        let mut team = Self {
            channels: vec![first.clone()],
            starts: Vec::new(),
            done: Vec::new(),
            handles: Vec::new(),
        };
        let mut made = Vec::new();
        for index in 1..layout.threads {
            let share = Share {
                index,
                of: layout.threads,
            };
            let (made_tx, made_rx) = oneshot::channel();
            let (start_tx, start_rx) = oneshot::channel();
            let (done_tx, done_rx) = oneshot::channel();
            let member = Member {
                share,
                cfg: layout.channel_config(cfg, index),
                events: events.clone(),
                rec: rec.clone(),
                stop: stop.clone(),
            };
            let handle = std::thread::Builder::new()
                .name(format!("grpcdoc-load-{index}"))
                .spawn(move || member.run(made_tx, start_rx, done_tx))?;
            team.handles.push(handle);
            team.starts.push(start_tx);
            team.done.push(done_rx);
            made.push(made_rx);
        }
        settle(&first).await;
        for (index, made_rx) in (1..).zip(made) {
            match made_rx.await {
                Ok(Ok(ch)) => team.channels.push(ch),
                Ok(Err(e)) => anyhow::bail!("load thread {index}: {e}"),
                Err(_) => anyhow::bail!("load thread {index} ended before its channel was made"),
            }
        }
        Ok(team)
    }

    /// Runs the plan on every thread from now; the caller's share runs on
    /// the caller's runtime. Returns when every thread is done.
    pub(crate) async fn run(
        self,
        plan: LoadPlan,
        rec: Arc<Recorder>,
        stop: watch::Receiver<bool>,
    ) -> RunInfo {
        let plan = Arc::new(plan);
        let start = Instant::now();
        let series = tokio::spawn(engine::seconds(rec.clone(), start));
        for s in self.starts {
            let _ = s.send((plan.clone(), start));
        }
        let share = Share {
            index: 0,
            of: self.channels.len(),
        };
        let first = self.channels[0].clone();
        let mut info = engine::run_share(plan, share, first, rec, stop, start).await;
        for d in self.done {
            if let Ok(i) = d.await {
                info.elapsed = info.elapsed.max(i.elapsed);
                info.interrupted |= i.interrupted;
            }
        }
        series.abort();
        let handles = self.handles;
        // The threads have sent their result; they end as their channels
        // close.
        let _ = tokio::task::spawn_blocking(move || {
            for h in handles {
                let _ = h.join();
            }
        })
        .await;
        info
    }
}

/// Waits (at most [`SETTLE`]) until every connection of `channel` is up or
/// has failed, so the run's clock does not start with its own dialing.
async fn settle(channel: &Channel) {
    let _ = tokio::time::timeout(SETTLE, async {
        loop {
            let subs = channel.subchannels();
            let dialing = subs
                .iter()
                .any(|s| matches!(s.2, State::Idle | State::Connecting));
            if !subs.is_empty() && !dialing {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
}

/// One thread beside the caller's.
struct Member {
    share: Share,
    cfg: ChannelConfig,
    events: EventSink,
    rec: Arc<Recorder>,
    stop: watch::Receiver<bool>,
}

type Made = oneshot::Sender<Result<Channel, String>>;

impl Member {
    fn run(
        self,
        made: Made,
        start: oneshot::Receiver<(Arc<LoadPlan>, Instant)>,
        done: oneshot::Sender<RunInfo>,
    ) {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = made.send(Err(format!("cannot start its runtime: {e}")));
                return;
            }
        };
        rt.block_on(async move {
            let channel = match Channel::new(self.cfg, self.events) {
                Ok(c) => c,
                Err(e) => {
                    let _ = made.send(Err(e.to_string()));
                    return;
                }
            };
            channel.connect();
            settle(&channel).await;
            if made.send(Ok(channel.clone())).is_err() {
                channel.shutdown().await;
                return;
            }
            // No start: the caller gave up before the run.
            if let Ok((plan, at)) = start.await {
                let info =
                    engine::run_share(plan, self.share, channel.clone(), self.rec, self.stop, at)
                        .await;
                let _ = done.send(info);
            }
            channel.shutdown().await;
        });
        // Connection tasks still running (a forced stop) do not hold the
        // thread.
        rt.shutdown_background();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        let l = Layout::choose(None, None, 50, 2).unwrap();
        assert_eq!((l.threads, l.connections), (2, 2));
        assert_eq!(l.notes.len(), 1, "{:?}", l.notes);
        let l = Layout::choose(Some(1), None, 50, 8).unwrap();
        assert_eq!((l.threads, l.connections, l.notes.len()), (1, 1, 0));
        let l = Layout::choose(None, Some(1), 50, 8).unwrap();
        assert_eq!((l.threads, l.connections), (1, 1));
        assert!(l.notes[0].contains("one per connection"), "{:?}", l.notes);
        let l = Layout::choose(None, None, 1, 8).unwrap();
        assert_eq!((l.threads, l.connections), (1, 1));
        assert!(l.notes[0].contains("call in flight"), "{:?}", l.notes);
        let l = Layout::choose(Some(4), Some(10), 100, 2).unwrap();
        assert_eq!((l.threads, l.connections, l.notes.len()), (4, 10, 0));
        let e = Layout::choose(Some(4), Some(2), 100, 8).unwrap_err();
        assert!(
            e.contains("--connections 2 is fewer than --threads 4"),
            "{e}"
        );
        let e = Layout::choose(Some(4), None, 3, 8).unwrap_err();
        assert!(e.contains("-c 3 is fewer than --threads 4"), "{e}");
    }

    #[test]
    fn shares_add_up() {
        for of in 1..6 {
            for n in 0..23 {
                let parts: usize = (0..of).map(|index| Share { index, of }.part(n)).sum();
                assert_eq!(parts, n);
            }
        }
    }
}
