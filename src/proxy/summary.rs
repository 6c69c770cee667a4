//! What a proxy did, counted as its connections end: connections, bytes
//! each way, calls read and failed, and each fault's actions (how often,
//! on how many connections). The command prints it when the proxy stops.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

/// Counters shared by a proxy's connections (added to once per
/// connection, as it ends).
#[derive(Default)]
pub(crate) struct Stats {
    connections: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    calls: AtomicU64,
    failed: AtomicU64,
    faults: Mutex<BTreeMap<&'static str, FaultCount>>,
}

/// One fault's actions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FaultCount {
    /// Times it acted (chunks delayed, frames dropped, connections cut).
    pub times: u64,
    /// Connections it acted on.
    pub connections: u64,
}

/// One connection's part.
pub(crate) struct ConnCounts {
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub calls: u64,
    pub failed: u64,
    pub applied: Vec<(&'static str, u64)>,
}

impl Stats {
    pub fn add(&self, c: ConnCounts) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.bytes_up.fetch_add(c.bytes_up, Ordering::Relaxed);
        self.bytes_down.fetch_add(c.bytes_down, Ordering::Relaxed);
        self.calls.fetch_add(c.calls, Ordering::Relaxed);
        self.failed.fetch_add(c.failed, Ordering::Relaxed);
        if c.applied.is_empty() {
            return;
        }
        if let Ok(mut f) = self.faults.lock() {
            for (name, times) in c.applied {
                let e = f.entry(name).or_default();
                e.times += times;
                e.connections += 1;
            }
        }
    }

    /// Calls told failed after their connection ended (held attempts
    /// that were never retried).
    pub fn add_failed(&self, n: u64) {
        self.calls.fetch_add(n, Ordering::Relaxed);
        self.failed.fetch_add(n, Ordering::Relaxed);
    }

    pub fn summary(&self) -> Summary {
        Summary {
            connections: self.connections.load(Ordering::Relaxed),
            bytes_upstream: self.bytes_up.load(Ordering::Relaxed),
            bytes_downstream: self.bytes_down.load(Ordering::Relaxed),
            calls: self.calls.load(Ordering::Relaxed),
            calls_failed: self.failed.load(Ordering::Relaxed),
            faults: self
                .faults
                .lock()
                .map(|f| f.iter().map(|(k, v)| (k.to_string(), *v)).collect())
                .unwrap_or_default(),
        }
    }
}

/// A proxy's summary (`-o json`: `{"kind": "summary", ...}`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    pub connections: u64,
    /// Bytes from the clients to the upstream.
    pub bytes_upstream: u64,
    pub bytes_downstream: u64,
    /// Calls the tap read (cleartext HTTP/2), and those that failed.
    pub calls: u64,
    pub calls_failed: u64,
    pub faults: BTreeMap<String, FaultCount>,
}

fn bytes(n: u64) -> String {
    match n {
        0..=9_999 => format!("{n} B"),
        10_000..=9_999_999 => format!("{:.1} KB", n as f64 / 1e3),
        _ => format!("{:.1} MB", n as f64 / 1e6),
    }
}

impl Summary {
    /// A few lines for a terminal (within 100 columns).
    pub fn human(&self, calls_read: bool) -> String {
        let mut out = format!(
            "proxy summary: {} connection{}, {} upstream, {} downstream\n",
            self.connections,
            if self.connections == 1 { "" } else { "s" },
            bytes(self.bytes_upstream),
            bytes(self.bytes_downstream)
        );
        if calls_read {
            out.push_str(&format!(
                "  calls: {} read, {} failed\n",
                self.calls, self.calls_failed
            ));
        } else {
            out.push_str("  calls: not read (--calls none)\n");
        }
        if self.faults.is_empty() {
            out.push_str("  faults: none acted\n");
        }
        for (name, c) in &self.faults {
            out.push_str(&format!(
                "  fault {name}: acted {} time{} on {} connection{}\n",
                c.times,
                if c.times == 1 { "" } else { "s" },
                c.connections,
                if c.connections == 1 { "" } else { "s" }
            ));
        }
        out
    }
}
