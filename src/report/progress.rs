//! The live progress line of `load` (indicatif lives only here): the stage
//! (`--stages`), elapsed, calls/s over the last second and its p99 (every
//! thread's histograms merged), failures, calls in flight, READY
//! connections. Drawn on stderr, only when stdout is a terminal.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::client::Channel;
use crate::connectivity::State;
use crate::load::stages::Schedule;
use crate::load::stats::Recorder;

fn ready(c: &Channel) -> usize {
    c.subchannels()
        .iter()
        .filter(|s| s.2 == State::Ready)
        .count()
}

/// `stage 2/3 (0:10.0-0:40.0 100 -> 1000 in flight) at 550  `.
fn stage_text(s: &Schedule, t: Duration) -> String {
    match s.stage_at(t) {
        Some((i, _)) => format!(
            "stage {}/{} ({}) at {}  ",
            i + 1,
            s.stages.len(),
            s.describe(i),
            s.level.show(s.level_at(t))
        ),
        None => String::new(),
    }
}

pub struct Progress {
    bar: ProgressBar,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    pub fn start(
        rec: Arc<Recorder>,
        channels: Vec<Channel>,
        stages: Option<Arc<Schedule>>,
    ) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed_precise} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        let b = bar.clone();
        let task = tokio::spawn(async move {
            let begun = std::time::Instant::now();
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            let mut window = std::collections::VecDeque::from([(begun, 0u64)]);
            loop {
                tick.tick().await;
                let done = rec.completed();
                let now = std::time::Instant::now();
                window.push_back((now, done));
                while window.len() > 5 {
                    window.pop_front();
                }
                let (t0, d0) = window[0];
                let secs = now.duration_since(t0).as_secs_f64().max(0.001);
                let ready: usize = channels.iter().map(ready).sum();
                // The last whole second's latency, from every thread's
                // histogram.
                let p99 = rec
                    .last_second()
                    .filter(|s| s.completed > 0)
                    .map(|s| format!("  p99 {:.2}ms", s.p99_ms))
                    .unwrap_or_default();
                let stage = stages
                    .as_deref()
                    .map(|s| stage_text(s, now.duration_since(begun)))
                    .unwrap_or_default();
                b.set_message(format!(
                    "{stage}{done} calls  {:.0}/s{p99}  {} failed  {} in flight  READY connections: {ready}",
                    (done - d0) as f64 / secs,
                    rec.errors(),
                    rec.in_flight(),
                ));
                b.tick();
            }
        });
        Self { bar, task }
    }

    pub fn finish(self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}
