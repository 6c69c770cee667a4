//! Reconnect backoff per grpc `doc/connection-backoff.md`: the n-th retry
//! waits min(initial * multiplier^n, max) with +-jitter, and a connect attempt
//! gets at least `min_connect_timeout`.

use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub struct BackoffConfig {
    pub initial: Duration,
    pub multiplier: f64,
    pub jitter: f64,
    pub max: Duration,
    pub min_connect_timeout: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            multiplier: 1.6,
            jitter: 0.2,
            max: Duration::from_secs(120),
            min_connect_timeout: Duration::from_secs(20),
        }
    }
}

/// Backoff state of one subchannel.
#[derive(Debug)]
pub struct Backoff {
    cfg: BackoffConfig,
    attempt: u32,
    rng: fastrand::Rng,
}

impl Backoff {
    pub fn new(cfg: BackoffConfig) -> Self {
        Self {
            cfg,
            attempt: 0,
            rng: fastrand::Rng::new(),
        }
    }

    pub fn with_seed(cfg: BackoffConfig, seed: u64) -> Self {
        Self {
            cfg,
            attempt: 0,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// The retries made since the last reset.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The un-jittered delay before the next retry.
    fn base(&self) -> Duration {
        let exp = self.cfg.multiplier.powi(self.attempt.min(1000) as i32);
        let secs = (self.cfg.initial.as_secs_f64() * exp).min(self.cfg.max.as_secs_f64());
        Duration::from_secs_f64(secs.max(0.0))
    }

    /// How long a connect attempt may take now.
    pub fn connect_timeout(&self) -> Duration {
        self.base().max(self.cfg.min_connect_timeout)
    }

    /// The delay before the next retry; counts the retry.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.base().as_secs_f64();
        let j = self.cfg.jitter * (self.rng.f64() * 2.0 - 1.0);
        self.attempt = self.attempt.saturating_add(1);
        Duration::from_secs_f64((base * (1.0 + j)).max(0.0))
    }

    /// A connection worked (its SETTINGS arrived): start over.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_by_the_multiplier_within_jitter() {
        let mut b = Backoff::with_seed(BackoffConfig::default(), 7);
        for want in [1.0, 1.6, 2.56, 4.096, 6.5536] {
            let d = b.next_delay().as_secs_f64();
            assert!((want * 0.8..=want * 1.2).contains(&d), "{d} vs {want}");
        }
        assert_eq!(b.attempt(), 5);
        b.reset();
        let d = b.next_delay().as_secs_f64();
        assert!((0.8..=1.2).contains(&d));
    }

    #[test]
    fn capped_at_max_and_connect_timeout_at_least_min() {
        let cfg = BackoffConfig {
            max: Duration::from_secs(3),
            jitter: 0.0,
            ..Default::default()
        };
        let mut b = Backoff::with_seed(cfg, 1);
        let delays: Vec<f64> = (0..6).map(|_| b.next_delay().as_secs_f64()).collect();
        assert_eq!(delays[5], 3.0);
        assert_eq!(b.connect_timeout(), Duration::from_secs(20));
    }

    #[test]
    fn jitter_spreads_both_ways() {
        let mut lo = f64::MAX;
        let mut hi = 0f64;
        for seed in 0..200 {
            let d = Backoff::with_seed(BackoffConfig::default(), seed)
                .next_delay()
                .as_secs_f64();
            lo = lo.min(d);
            hi = hi.max(d);
        }
        assert!(lo < 0.85 && hi > 1.15, "{lo} {hi}");
        assert!(lo >= 0.8 && hi <= 1.2);
    }
}
