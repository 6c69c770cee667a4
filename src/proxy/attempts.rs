//! Calls, not attempts: the tap's pairing of an attempt the server never
//! processed with the client's retry of it, across the proxy's
//! connections.
//!
//! The rule. An attempt is *never processed* only where the wire proves it:
//! the client got RST_STREAM REFUSED_STREAM on it, or a GOAWAY whose
//! last-stream-id is below its stream. gRPC clients retry such attempts by
//! themselves (transparent retry, gRFC A6), on the same or a new
//! connection, with the same method and metadata and no marker. So a
//! never-processed attempt is held, not told, for [`WINDOW`]; the next
//! stream of the same method from the same client address (any port: a
//! new connection has another) that starts within the window is its
//! retry, and the call it ends is told once, with the held attempts
//! beneath it and its latency from the first attempt. An attempt not
//! retried within the window is told as the failed call it was
//! (UNAVAILABLE, never processed). A retry under a retry policy carries
//! `grpc-previous-rpc-attempts`; it claims a held attempt the same way
//! (attempts that ended with a status were told when they ended: the tap
//! cannot know then that the client will retry).

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::event::{CallAttempt, CallCause, EventKind, EventSink};

/// How long a never-processed attempt waits for its retry. grpc clients
/// retry at once, on a connection that is ready or as soon as one is.
pub(crate) const WINDOW: Duration = Duration::from_secs(2);

/// A never-processed attempt waiting for its retry.
pub(crate) struct Held {
    pub client: IpAddr,
    pub method: Arc<str>,
    /// When the attempt was known never processed.
    pub at: Instant,
    /// When the call's first attempt began.
    pub first_start: Instant,
    /// The attempts so far, this one last.
    pub attempts: Vec<CallAttempt>,
    /// How to tell it if it is not retried: on its connection, as this.
    pub conn: u64,
    pub addr: Arc<str>,
    pub events: EventSink,
    pub message: String,
}

/// The proxy's held attempts.
#[derive(Default)]
pub(crate) struct Attempts {
    /// How many are held: the common path (none) takes no lock.
    pending: AtomicUsize,
    held: Mutex<Vec<Held>>,
}

/// What a retry takes over from the attempts before it.
pub(crate) struct Claimed {
    pub first_start: Instant,
    pub attempts: Vec<CallAttempt>,
}

impl Attempts {
    pub fn hold(&self, h: Held) {
        if let Ok(mut held) = self.held.lock() {
            held.push(h);
            self.pending.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The oldest attempt of `method` from `client` still in its window.
    pub fn claim(&self, client: IpAddr, method: &str, now: Instant) -> Option<Claimed> {
        if self.pending.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut held = self.held.lock().ok()?;
        let i = held.iter().position(|h| {
            h.client == client && &*h.method == method && now.duration_since(h.at) <= WINDOW
        })?;
        let h = held.remove(i);
        self.pending.fetch_sub(1, Ordering::AcqRel);
        Some(Claimed {
            first_start: h.first_start,
            attempts: h.attempts,
        })
    }

    /// Tells the attempts whose window passed (all of them with `all`) as
    /// the failed calls they were; returns how many.
    pub fn expire(&self, now: Instant, all: bool) -> u64 {
        if self.pending.load(Ordering::Acquire) == 0 {
            return 0;
        }
        let gone: Vec<Held> = match self.held.lock() {
            Ok(mut held) => {
                let (gone, kept) = std::mem::take(&mut *held)
                    .into_iter()
                    .partition(|h| all || now.duration_since(h.at) > WINDOW);
                *held = kept;
                gone
            }
            Err(_) => return 0,
        };
        self.pending.fetch_sub(gone.len(), Ordering::AcqRel);
        let told = gone.len() as u64;
        for mut h in gone {
            // The call is this attempt; the ones before it go beneath.
            h.attempts.pop();
            h.events.emit(
                Some(h.conn),
                Some(h.addr.clone()),
                EventKind::Rpc {
                    method: h.method.to_string(),
                    code: tonic::Code::Unavailable,
                    message: h.message.clone(),
                    latency_ms: h.at.duration_since(h.first_start).as_secs_f64() * 1e3,
                    cause: Some(CallCause::NeverProcessed),
                    attempts: h.attempts,
                },
            );
        }
        told
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(events: &EventSink, method: &str, at: Instant) -> Held {
        Held {
            client: IpAddr::from([127, 0, 0, 1]),
            method: method.into(),
            at,
            first_start: at,
            attempts: vec![CallAttempt {
                conn: 1,
                stream: 3,
                end: "never processed".into(),
            }],
            conn: 1,
            addr: "127.0.0.1:5".into(),
            events: events.clone(),
            message: "never processed".into(),
        }
    }

    #[tokio::test]
    async fn a_retry_claims_the_attempt_of_its_method_and_client_in_the_window() {
        let (events, mut rx) = EventSink::channel(16);
        let a = Attempts::default();
        let now = Instant::now();
        let me = IpAddr::from([127, 0, 0, 1]);
        assert!(a.claim(me, "a.B/C", now).is_none(), "nothing held");
        a.hold(held(&events, "a.B/C", now));
        assert!(a.claim(me, "a.B/D", now).is_none(), "another method");
        assert!(
            a.claim(IpAddr::from([10, 0, 0, 1]), "a.B/C", now).is_none(),
            "another client"
        );
        let c = a.claim(me, "a.B/C", now).expect("its retry");
        assert_eq!(c.attempts.len(), 1);
        assert!(a.claim(me, "a.B/C", now).is_none(), "claimed once");
        // Not retried: told as a failed call when the window passed.
        a.hold(held(&events, "a.B/C", now));
        a.expire(now + WINDOW / 2, false);
        assert!(rx.try_recv().is_err(), "still in its window");
        assert!(
            a.claim(me, "a.B/C", now + WINDOW + Duration::from_millis(1))
                .is_none(),
            "too late to be its retry"
        );
        a.expire(now + WINDOW + Duration::from_millis(1), false);
        let e = rx.try_recv().expect("told");
        assert!(
            matches!(
                e.kind,
                EventKind::Rpc {
                    code: tonic::Code::Unavailable,
                    cause: Some(CallCause::NeverProcessed),
                    ..
                }
            ),
            "{e:?}"
        );
    }
}
