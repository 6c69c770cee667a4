//! The run's time limit (`--budget`) and its stop (Ctrl-C): every wait of
//! every measurement goes through it, so the run ends on time.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::watch;

#[derive(Clone)]
pub struct Budget {
    pub start: Instant,
    pub deadline: Instant,
    stop: watch::Receiver<bool>,
}

impl Budget {
    /// A budget of `length` from now, ended early when `stop` turns true.
    pub fn new(length: Duration, stop: watch::Receiver<bool>) -> Self {
        let start = Instant::now();
        Self {
            start,
            deadline: start + length,
            stop,
        }
    }

    /// Time left.
    pub fn left(&self) -> Duration {
        if self.stopped() {
            return Duration::ZERO;
        }
        self.deadline.saturating_duration_since(Instant::now())
    }

    pub fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// The budget is spent (or the run was stopped).
    pub fn over(&self) -> bool {
        self.left().is_zero()
    }

    /// Milliseconds since the run started.
    pub fn now_ms(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * 1e3
    }

    /// Runs `f` until it ends or the budget does (`None`).
    pub async fn run<F: Future>(&self, f: F) -> Option<F::Output> {
        let mut stop = self.stop.clone();
        let deadline = tokio::time::Instant::from_std(self.deadline);
        let stopped = async move {
            // A dropped sender never stops the run.
            if stop.wait_for(|s| *s).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            out = f => Some(out),
            _ = tokio::time::sleep_until(deadline) => None,
            _ = stopped => None,
        }
    }

    /// Sleeps `d`; false when the budget ended first.
    pub async fn sleep(&self, d: Duration) -> bool {
        self.run(tokio::time::sleep(d)).await.is_some()
    }

    /// Sleeps until `ms` on the run's clock; false when the budget ended first.
    pub async fn sleep_until_ms(&self, ms: f64) -> bool {
        let at = self.start + Duration::from_secs_f64(ms.max(0.0) / 1e3);
        self.sleep(at.saturating_duration_since(Instant::now()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_budget_ends_waits_and_a_stop_ends_them_sooner() {
        let ms = Duration::from_millis;
        let (_tx, rx) = watch::channel(false);
        let b = Budget::new(ms(400), rx);
        assert!(b.sleep(ms(50)).await);
        assert!(!b.sleep(ms(2000)).await, "past the budget");
        assert!(b.over());
        let (tx2, rx2) = watch::channel(false);
        let b2 = Budget::new(Duration::from_secs(60), rx2);
        tx2.send(true).unwrap();
        assert!(!b2.sleep(Duration::from_secs(30)).await);
        assert!(b2.stopped());
        // A dropped sender is no stop.
        let (tx3, rx3) = watch::channel(false);
        drop(tx3);
        let b3 = Budget::new(Duration::from_secs(60), rx3);
        assert!(b3.sleep(ms(20)).await);
    }
}
