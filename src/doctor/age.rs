//! Max connection age and grace: a connection kept busy (a call every
//! second, and a call held open when there is a method to hold) until the
//! server's GOAWAY; the held call then stays open across the drain until
//! the server cuts the connection: that is the grace. A stream answered
//! and kept open beside it shows a timeout on quiet streams.

use std::time::Duration;

use super::link::{Dialer, GoawaySeen};
use super::setup::UNKNOWN_METHOD;
use super::Budget;

pub struct AgeRun {
    pub ready_ms: f64,
    pub goaway: Option<GoawaySeen>,
    pub closed: Option<(f64, String)>,
    /// A call was held open when the GOAWAY came.
    pub held_across: bool,
    pub held_method: Option<String>,
    /// The held call was ended before any GOAWAY or close: after how long
    /// (ms) and how (an HTTP status, a gRPC status, a reset).
    pub held_ended: Option<(f64, String)>,
    /// How long the held call was watched (ms) when it did not end.
    pub held_open_ms: f64,
    /// A stream whose request was sent whole and which the server answered
    /// and keeps open (health Watch), when there is one.
    pub stream_method: Option<String>,
    /// It was ended before any GOAWAY or close: after how long no message
    /// (ms), how, and whether it had been answered first (a stream never
    /// answered, such as a Watch the server does not implement, shows no
    /// timeout).
    pub stream_ended: Option<(f64, String, bool)>,
    /// How long the stream was watched (ms).
    pub stream_open_ms: f64,
}

/// How a call ended, in the words of the wire.
fn ending(f: &crate::client::wire::Finished) -> String {
    if let Some(e) = &f.error {
        return e.to_string();
    }
    match (f.status, f.grpc_status) {
        (Some(s), None) if s != 200 => format!("HTTP {s} without gRPC status"),
        (_, Some(g)) => format!(
            "grpc-status {} ({}){}",
            g,
            tonic::Code::from_i32(g).description(),
            f.grpc_message
                .as_deref()
                .filter(|m| !m.is_empty())
                .map(|m| format!(" {m:?}"))
                .unwrap_or_default()
        ),
        _ => "ended without a status".into(),
    }
}

/// The held call's end (never, without one).
async fn held_end(held: &Option<crate::client::wire::WireStream>) -> crate::client::wire::Finished {
    match held {
        Some(s) => std::future::poll_fn(|cx| s.poll_finish(cx)).await,
        None => std::future::pending().await,
    }
}

const CALL_EVERY: Duration = Duration::from_secs(1);

/// `stream`: a server-streaming method that answers an empty request and
/// stays open (health Watch). A call held without its request shows a
/// per-call timeout; only a stream whose request is complete shows a
/// per-read one (nginx's grpc_read_timeout starts once the request is
/// sent), so both are watched.
pub async fn measure(
    dialer: &Dialer,
    hold: Option<String>,
    stream: Option<String>,
    budget: &Budget,
) -> Result<AgeRun, String> {
    let link = dialer.open().await.map_err(|e| e.to_string())?;
    let held = hold.as_deref().and_then(|h| link.hold(h).ok());
    let held_at = budget.now_ms();
    let stream_method = stream.clone();
    let streamed = async {
        match &stream {
            Some(m) => link.stream_to_end(m, &[]).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(streamed);
    let mut stream_lost = stream.is_none();
    let mut stream_ended = None;
    // The held call ended before any GOAWAY (the server or a proxy ended
    // it): it cannot show the grace.
    let mut hold_lost = held.is_none();
    let mut held_ended = None;
    loop {
        if link.goaway().is_some() || link.is_closed() {
            break;
        }
        if held.as_ref().is_some_and(|s| s.is_end()) {
            hold_lost = true;
        }
        let changed = link.conn.shared.changed.notified();
        let call = link.call(UNKNOWN_METHOD, &[], Duration::from_secs(2));
        let tick = tokio::time::sleep(CALL_EVERY);
        tokio::select! {
            done = budget.run(async { tokio::join!(call, tick) }) => if done.is_none() { break },
            _ = changed => {}
            f = held_end(&held), if !hold_lost => {
                hold_lost = true;
                // Ended by itself, not by the connection's end.
                if link.goaway().is_none() && !link.is_closed() {
                    held_ended = Some((budget.now_ms() - held_at, ending(&f)));
                }
            }
            (quiet, how, data) = &mut streamed, if !stream_lost => {
                stream_lost = true;
                if link.goaway().is_none() && !link.is_closed() {
                    stream_ended = Some((quiet.as_secs_f64() * 1e3, how, data > 0));
                }
            }
        }
    }
    let stream_open_ms = budget.now_ms() - held_at;
    let held_across = link.goaway().is_some() && !hold_lost;
    let held_open_ms = budget.now_ms() - held_at;
    if link.goaway().is_some() {
        link.wait_closed(budget).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(AgeRun {
        ready_ms: link.ready_ms,
        goaway: link.goaway(),
        closed: link.closed(),
        held_across,
        held_method: held.map(|_| hold.unwrap_or_default()),
        held_ended,
        held_open_ms,
        stream_method,
        stream_ended,
        stream_open_ms,
    })
}
