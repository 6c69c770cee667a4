//! The faults in force, shared by every connection of a proxy and changed at
//! run time (add, remove, list); connections watch for changes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use super::spec::FaultSpec;

/// A fault in force, with its use counter (for `count=N` faults).
#[derive(Debug)]
pub struct ActiveFault {
    pub id: u64,
    pub spec: FaultSpec,
    /// When it came into force.
    pub added: std::time::Instant,
    used: AtomicU64,
}

impl ActiveFault {
    /// Whether the fault acts this time: by its probability, and for faults
    /// with a count while uses remain (taking one).
    pub fn fires(&self, limit: Option<u64>, rng: &mut fastrand::Rng) -> bool {
        if self.spec.probability < 1.0 && rng.f64() >= self.spec.probability {
            return false;
        }
        match limit {
            None => true,
            Some(n) => self
                .used
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                    (u < n).then_some(u + 1)
                })
                .is_ok(),
        }
    }
}

#[derive(Clone)]
pub struct Faults {
    list: Arc<RwLock<Arc<Vec<Arc<ActiveFault>>>>>,
    next_id: Arc<AtomicU64>,
    changed: Arc<watch::Sender<u64>>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            list: Arc::default(),
            next_id: Arc::new(AtomicU64::new(1)),
            changed: Arc::new(watch::channel(0).0),
        }
    }
}

impl Faults {
    pub fn new(specs: impl IntoIterator<Item = FaultSpec>) -> Self {
        let f = Self::default();
        for s in specs {
            f.add(s);
        }
        f
    }

    /// The faults in force now (cheap: one shared list).
    pub fn snapshot(&self) -> Arc<Vec<Arc<ActiveFault>>> {
        self.list.read().map(|l| l.clone()).unwrap_or_default()
    }

    fn update(&self, f: impl FnOnce(&mut Vec<Arc<ActiveFault>>)) {
        if let Ok(mut l) = self.list.write() {
            let mut v = (**l).clone();
            f(&mut v);
            *l = Arc::new(v);
        }
        self.changed.send_modify(|g| *g += 1);
    }

    /// Adds a fault; returns its id.
    pub fn add(&self, spec: FaultSpec) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.update(|v| {
            v.push(Arc::new(ActiveFault {
                id,
                spec,
                added: std::time::Instant::now(),
                used: AtomicU64::new(0),
            }))
        });
        id
    }

    /// Removes the fault with this id; false if there was none.
    pub fn remove(&self, id: u64) -> bool {
        let mut found = false;
        self.update(|v| {
            let before = v.len();
            v.retain(|f| f.id != id);
            found = v.len() != before;
        });
        found
    }

    pub fn clear(&self) {
        self.update(|v| v.clear());
    }

    /// (id, spec text) of every fault in force.
    pub fn list(&self) -> Vec<(u64, String)> {
        self.snapshot()
            .iter()
            .map(|f| (f.id, f.spec.text.clone()))
            .collect()
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}
