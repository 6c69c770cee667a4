//! Diagnosis: what a notable event means, read from the one history of
//! each connection (`crate::history`), never from message text. A note
//! carries the catalogue entry and the facts of this case; the words of
//! the cause and the fix are the catalogue's, looked up by whoever renders
//! the note. A note names one entry only when the history proves it;
//! where several fit it says which, and what would tell them apart.

mod calls;
mod closes;
mod drains;

use std::collections::HashSet;
use std::time::Duration;

use crate::catalogue::EntryId;
use crate::event::{CallCause, ConnectCause, ConnectResult, Event, EventKind, HealthAnswer};
use crate::h2wire::{Dir, ErrorCode};
use crate::history::{Change, History};

pub use calls::{cause_detail, cause_id};

/// What a notable event means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The catalogue entry it is an instance of, when the history proves
    /// one; the likeliest first when several fit.
    pub entry: Option<EntryId>,
    /// Other entries that fit as well: not proved apart.
    pub also: Vec<EntryId>,
    /// The facts of this case (what was seen, when, on which connection),
    /// and what would tell the entries apart when several fit.
    pub detail: String,
}

impl Note {
    fn one(entry: EntryId, detail: impl Into<String>) -> Self {
        Self {
            entry: Some(entry),
            also: Vec::new(),
            detail: detail.into(),
        }
    }

    fn several(entries: &[EntryId], detail: impl Into<String>) -> Self {
        Self {
            entry: entries.first().copied(),
            also: entries.get(1..).unwrap_or_default().to_vec(),
            detail: detail.into(),
        }
    }

    fn plain(detail: impl Into<String>) -> Self {
        Self {
            entry: None,
            also: Vec::new(),
            detail: detail.into(),
        }
    }

    /// Every entry the note names, the likeliest first.
    pub fn entries(&self) -> impl Iterator<Item = EntryId> + '_ {
        self.entry.into_iter().chain(self.also.iter().copied())
    }
}

/// A duration for people: `3.02s`, `850ms`.
pub(crate) fn dur(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2}s", ms / 1e3)
    } else {
        format!("{ms:.0}ms")
    }
}

/// Reads the event stream into the history and says what notable events
/// mean, each cause once.
#[derive(Debug, Default)]
pub struct Explainer {
    /// The client's keepalive time, when it pings.
    pub keepalive_time: Option<Duration>,
    history: History,
    said: HashSet<String>,
}

impl Explainer {
    pub fn new(keepalive_time: Option<Duration>) -> Self {
        Self {
            keepalive_time,
            ..Self::default()
        }
    }

    /// The history read so far.
    pub fn history(&self) -> &History {
        &self.history
    }

    fn once(&mut self, key: String, note: Note) -> Option<Note> {
        self.said.insert(key).then_some(note)
    }

    pub fn explain(&mut self, e: &Event) -> Option<Note> {
        let change = self.history.observe(e);
        let h = &self.history;
        match (&e.kind, change) {
            (
                EventKind::Goaway {
                    dir: Dir::Received, ..
                },
                Change::DrainBegan(conn),
            ) => {
                let d = h.conn(conn)?.drain()?.clone();
                let note = drains::explain(h, &d, self.keepalive_time);
                self.once(format!("drain {conn}"), note)
            }
            (EventKind::Rpc { .. }, _) => calls::explain(h, e),
            (EventKind::Closed { .. }, Change::Closed(conn)) => {
                let c = h.conn(conn)?;
                closes::explain(c, h.last_call_end_ms)
            }
            (
                EventKind::Connect {
                    result: ConnectResult::Error,
                    cause: Some(cause),
                    ..
                },
                _,
            ) => {
                let addr = e.addr.as_deref().unwrap_or("the server").to_string();
                if *cause == ConnectCause::Refused {
                    if let Some(note) = stopped_after_drain(h, e) {
                        // It says nothing listens: the refusal's own note
                        // would repeat it.
                        self.said.insert(format!("{cause:?} {addr}"));
                        return self.once(format!("stopped {addr}"), note);
                    }
                }
                let note = Note {
                    entry: connect_entry(*cause),
                    also: Vec::new(),
                    detail: match cause {
                        // A channel retries; a one-shot command says so
                        // itself.
                        ConnectCause::Refused => format!(
                            "{}. The channel backs off (1s, 1.6s, 2.56s, ... up to 2m) and tries again",
                            connect_detail(*cause, &addr)
                        ),
                        _ => connect_detail(*cause, &addr),
                    },
                };
                self.once(format!("{cause:?} {addr}"), note)
            }
            (EventKind::Health { answer, detail }, _) => {
                let note = health(*answer, detail)?;
                self.once(format!("health {:?} {answer:?}", e.conn), note)
            }
            (
                EventKind::Resolve {
                    error: Some(err), ..
                },
                _,
            ) => self.once(
                "resolve".into(),
                Note::one(
                    EntryId::NameResolution,
                    format!(
                        "the name does not resolve ({err}); the channel keeps trying with backoff"
                    ),
                ),
            ),
            _ => None,
        }
    }
}

/// How soon after a drain a refused redial shows the server stopped.
const STOP_WINDOW_MS: f64 = 30_000.0;

/// A redial refused by the address whose connection drained (NO_ERROR, no
/// policy named in its debug data) shortly before: the server said goodbye
/// and stopped listening, a graceful stop. Max age and idle timeouts leave
/// the server listening, so a refusal tells them apart.
fn stopped_after_drain(h: &History, e: &Event) -> Option<Note> {
    let addr = e.addr.as_deref()?;
    let d = h.recent_drains().rev().find(|d| {
        d.dir == Dir::Received
            && d.code == ErrorCode::NO_ERROR
            && !["max_age", "idle", "too_many_pings"]
                .iter()
                .any(|w| d.debug.contains(w))
            && e.t_ms - d.at_ms <= STOP_WINDOW_MS
            && h.conn(d.conn)
                .and_then(|c| c.addr.as_deref())
                .is_some_and(|a| a == addr)
    })?;
    Some(Note::one(
        EntryId::GracefulStop,
        format!(
            "connection {} got {} {} ago, and now nothing listens on {addr} (connection refused): the server stopped after draining its connections, a graceful stop, not max age or an idle timeout",
            d.conn,
            goaway_words(d.code, &d.debug),
            dur(e.t_ms - d.at_ms)
        ),
    ))
}

/// What a health answer means, when it is notable.
fn health(answer: HealthAnswer, detail: &str) -> Option<Note> {
    match answer {
        HealthAnswer::ServiceUnknown => Some(Note::one(
            EntryId::HealthNotServing,
            "the server's health service does not know the service name asked for (--health-service, or healthCheckConfig.serviceName in a service config); the client keeps the connection in TRANSIENT_FAILURE. An empty name asks about the whole server",
        )),
        HealthAnswer::NotServing | HealthAnswer::Unknown => Some(Note::one(
            EntryId::HealthNotServing,
            format!(
                "the connection works, but the server's health service says {}: health-checking clients send it no calls until it says SERVING again",
                if detail.is_empty() { "NOT_SERVING" } else { detail }
            ),
        )),
        _ => None,
    }
}

/// The catalogue entry of a failed connection attempt, by cause.
pub fn connect_entry(cause: ConnectCause) -> Option<EntryId> {
    Some(match cause {
        ConnectCause::Refused => EntryId::ConnectionRefused,
        ConnectCause::Timeout | ConnectCause::Unreachable => EntryId::ConnectTimeout,
        ConnectCause::PlaintextServer | ConnectCause::TlsServer | ConnectCause::Closed => {
            EntryId::TlsMismatch
        }
        ConnectCause::TlsCertificate => EntryId::TlsUntrusted,
        ConnectCause::NotHttp2 => EntryId::NotGrpcEndpoint,
        ConnectCause::Tls | ConnectCause::Io => return None,
    })
}

/// What happened to a failed connection attempt: the facts, for the entry
/// [`connect_entry`] names.
pub fn connect_detail(cause: ConnectCause, addr: &str) -> String {
    match cause {
        ConnectCause::Refused => format!("{addr} refused the connection: no process listens on that port (or a firewall rule rejects it)"),
        ConnectCause::Timeout => format!("no answer from {addr} in time"),
        ConnectCause::Unreachable => format!("{addr} is unreachable: no route to that network or host"),
        ConnectCause::TlsCertificate => "the server's certificate was not accepted: pass --cacert with its CA, --server-name if it was issued for another name, or --insecure to skip verification (testing only)".into(),
        ConnectCause::PlaintextServer => "TLS was spoken but the server answered in plaintext: it does not serve TLS here; use HOST:PORT or http:// instead of https://".into(),
        ConnectCause::TlsServer => "plaintext HTTP/2 was spoken but the server answered with TLS: use https://HOST:PORT".into(),
        ConnectCause::NotHttp2 => "the server did not answer with HTTP/2 (an HTTP/1.1 server, or another protocol on that port)".into(),
        ConnectCause::Tls => "the TLS handshake failed: check the protocol versions, ALPN h2 and the client certificate the server needs".into(),
        ConnectCause::Closed => "the server closed the connection during the handshake: it may expect TLS (try https://) or reject this client".into(),
        ConnectCause::Io => format!("the connection to {addr} failed; see the error"),
    }
}

/// A call's cause, typed, from what the client that made it knows: its own
/// never-processed status is a [`CallCause::NeverProcessed`].
pub fn probe_cause(status: &tonic::Status) -> Option<CallCause> {
    crate::client::conn::never_processed(status).then_some(CallCause::NeverProcessed)
}

/// A GOAWAY's code and debug data, as the wire shows them.
pub(crate) fn goaway_words(code: ErrorCode, debug: &str) -> String {
    if debug.is_empty() {
        format!("GOAWAY {code} (no debug data)")
    } else {
        format!("GOAWAY {code} {debug:?}")
    }
}

#[cfg(test)]
mod tests;
