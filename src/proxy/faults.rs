//! The faults in force on one proxy, shared by its connections and changed
//! at run time (add, remove, list, with `after=` and `for=` timing); each
//! connection watches for changes and starts or stops its stages.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use super::FaultSpec;

/// A fault in force.
#[derive(Debug)]
pub struct ActiveFault {
    pub id: u64,
    pub spec: FaultSpec,
    /// When it came into force.
    pub added: std::time::Instant,
}

#[derive(Clone)]
pub struct Faults {
    list: Arc<RwLock<Arc<Vec<Arc<ActiveFault>>>>>,
    next_id: Arc<AtomicU64>,
    changed: Arc<watch::Sender<u64>>,
    /// Faults added with `after=`, not yet in force.
    pending: Arc<std::sync::Mutex<std::collections::HashSet<u64>>>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            list: Arc::default(),
            next_id: Arc::new(AtomicU64::new(1)),
            changed: Arc::new(watch::channel(0).0),
            pending: Arc::default(),
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

    /// Adds a fault; with `after=` it comes into force later, with `for=`
    /// it is removed once it has acted that long. Returns its id.
    pub fn add(&self, spec: FaultSpec) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let timed = spec.after.is_some() || spec.lasts.is_some();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) if timed => {
                if let Ok(mut p) = self.pending.lock() {
                    p.insert(id);
                }
                let (this, after, lasts) = (self.clone(), spec.after, spec.lasts);
                rt.spawn(async move {
                    if let Some(a) = after {
                        tokio::time::sleep(a).await;
                    }
                    let still = this.pending.lock().is_ok_and(|mut p| p.remove(&id));
                    if !still {
                        return; // removed before it came into force
                    }
                    this.activate(id, spec);
                    if let Some(l) = lasts {
                        tokio::time::sleep(l).await;
                        this.remove(id);
                    }
                });
            }
            _ => self.activate(id, spec),
        }
        id
    }

    fn activate(&self, id: u64, spec: FaultSpec) {
        self.update(|v| {
            v.push(Arc::new(ActiveFault {
                id,
                spec,
                added: std::time::Instant::now(),
            }))
        });
    }

    /// Removes the fault with this id; false if there was none.
    pub fn remove(&self, id: u64) -> bool {
        let mut found = self.pending.lock().is_ok_and(|mut p| p.remove(&id));
        self.update(|v| {
            let before = v.len();
            v.retain(|f| f.id != id);
            found |= v.len() != before;
        });
        found
    }

    pub fn clear(&self) {
        if let Ok(mut p) = self.pending.lock() {
            p.clear();
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(f: &Faults) -> Vec<u64> {
        f.snapshot().iter().map(|a| a.id).collect()
    }

    /// `after=` brings a fault into force later, `for=` ends it; removing a
    /// fault that is not in force yet keeps it from coming.
    #[tokio::test]
    async fn faults_start_late_and_stop() {
        let f = Faults::default();
        let id = f.add("close:after=100ms,for=300ms".parse().unwrap());
        let gone = f.add("reset:after=100ms".parse().unwrap());
        assert!(f.remove(gone), "a pending fault can be removed");
        assert!(ids(&f).is_empty(), "not in force yet");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        assert_eq!(
            ids(&f),
            [id],
            "in force after 100 ms; the removed one never came"
        );
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        assert!(ids(&f).is_empty(), "gone 300 ms later");
    }

    #[test]
    fn after_and_for_parse_on_every_fault() {
        let s: FaultSpec = "blackhole:after=1500ms,for=2s".parse().unwrap();
        assert_eq!(s.after, Some(std::time::Duration::from_millis(1500)));
        assert_eq!(s.lasts, Some(std::time::Duration::from_secs(2)));
        let e = "blackhole:after=soon".parse::<FaultSpec>().unwrap_err();
        assert!(e.to_string().contains("after=soon"), "{e}");
    }
}
