//! The live progress line of `load` (indicatif lives only here): elapsed,
//! calls/s over the last second, failures, calls in flight, READY
//! connections. Drawn on stderr, only when stdout is a terminal.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::client::Channel;
use crate::connectivity::State;
use crate::load::stats::Recorder;

pub struct Progress {
    bar: ProgressBar,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    pub fn start(rec: Arc<Recorder>, channel: Channel) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        let b = bar.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            let mut window = std::collections::VecDeque::from([(std::time::Instant::now(), 0u64)]);
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
                let ready = channel
                    .subchannels()
                    .iter()
                    .filter(|s| s.2 == State::Ready)
                    .count();
                b.set_message(format!(
                    "{done} calls  {:.0}/s  {} failed  {} in flight  READY connections: {ready}",
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
