//! What a run records and how it fails: the types the runner's parts
//! (servers, clients, the timeline, the recording) and the readers of a run
//! (expectations, verdicts, reports) share. A leaf: it imports none of them.

use std::collections::BTreeMap;

use crate::event::Event;

/// An event and who emitted it: `server`, `proxy`, `timeline` or a client.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Tagged {
    pub who: String,
    /// For a probe's calls: the client it calls through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    #[serde(flatten)]
    pub event: Event,
}

impl Tagged {
    /// The client whose connection carried it (a probe's client).
    pub fn via_client(&self) -> &str {
        self.via.as_deref().unwrap_or(&self.who)
    }

    /// Emitted by a client or a probe (not a server, a proxy or the timeline;
    /// with several backends those are `server2`, `proxy2`, ...).
    pub fn is_client(&self) -> bool {
        !["server", "proxy", "timeline"]
            .iter()
            .any(|p| self.who.starts_with(p))
    }
}

/// What a run recorded.
pub struct Recorded {
    pub events: Vec<Tagged>,
    /// Mark name -> t_ms.
    pub marks: BTreeMap<String, f64>,
    pub duration_ms: f64,
    pub interrupted: bool,
    /// Events producers could not hand over, by who (none in a sound run).
    pub dropped: Vec<(String, u64)>,
    /// Producers still running when the recording ended.
    pub unfinished: Vec<String>,
    /// What the run could not do as asked (a rate not held).
    pub warnings: Vec<String>,
    /// The address clients dialled for each backend (1-based in checks).
    pub fronts: Vec<std::net::SocketAddr>,
    /// The client programs: how each ended and what it printed.
    pub programs: BTreeMap<String, ProgramRun>,
    /// What the report should say about how things were seen.
    pub notes: Vec<String>,
}

/// A client program's run.
#[derive(Clone, Debug)]
pub struct ProgramRun {
    pub ended: super::process::Ended,
    pub output: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot start the built-in server: {0}")]
    Server(String),
    #[error("the server command {command:?} did not start: {reason}")]
    Command { command: String, reason: String },
    #[error("cannot start the proxy: {0}")]
    Proxy(String),
    #[error("client `{client}`: {reason}")]
    Client { client: String, reason: String },
    #[error("the middlebox `{what}` did not start: {reason}")]
    Middlebox { what: String, reason: String },
}
