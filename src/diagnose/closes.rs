//! A connection's end read against its history: after a drain the drain
//! said it; this side's keepalive gave up; the peer's own keepalive (its
//! PING shortly before, then the close without GOAWAY); or lost without a
//! word (a crash, a kill, a cut).

use super::{dur, Note};
use crate::catalogue::EntryId;
use crate::event::CloseReason;
use crate::history::Conn;

/// A peer PING this close before a close may be its keepalive's last.
const PEER_KEEPALIVE_MS: f64 = 30_000.0;

/// The least quiet before a PING that can be a keepalive PING.
const KEEPALIVE_QUIET_MS: f64 = 1000.0;

/// `last_call_end_ms`: when the last call whose connection is not known
/// (watch's probes) ended, read as this connection's when it has no
/// calls of its own.
pub(super) fn explain(c: &Conn, last_call_end_ms: Option<f64>) -> Option<Note> {
    let close = c.close.as_ref()?;
    // A failed handshake is explained by its connect event.
    c.ready_ms?;
    let age = c
        .age_at(close.at_ms)
        .map(|a| format!(" after {}", dur(a)))
        .unwrap_or_default();
    // `streams` counts every stream the connection carried; the calls it
    // cut are told by their own failures.
    let lost = match close.streams {
        0 => " (it had carried no call)".to_string(),
        1 => ", after 1 stream on it".to_string(),
        n => format!(", after {n} streams on it"),
    };
    match close.reason {
        CloseReason::KeepaliveTimeout => Some(Note::one(
            EntryId::KeepaliveTimeout,
            format!("this client's keepalive PING got no ACK in time; it closed the connection{age}{lost}"),
        )),
        CloseReason::Reset | CloseReason::Eof | CloseReason::Error if c.drain().is_none() => {
            let how = match close.reason {
                CloseReason::Reset => "reset (RST)".to_string(),
                CloseReason::Eof => "closed (FIN)".to_string(),
                _ => format!(
                    "failed ({})",
                    close.error.as_deref().unwrap_or("an I/O error")
                ),
            };
            if let Some(note) = peer_keepalive(c, last_call_end_ms, close.at_ms, &how, &lost) {
                return Some(note);
            }
            Some(Note::one(
                EntryId::ServerCrash,
                format!("the connection was {how} without a GOAWAY{age}{lost}"),
            ))
        }
        _ => None,
    }
}

/// The peer PINGed shortly before it closed without GOAWAY, and no call
/// ended after that PING: its keepalive timeout (the ACK did not reach it)
/// fits as well as a crash.
fn peer_keepalive(
    c: &Conn,
    unplaced_end_ms: Option<f64>,
    at_ms: f64,
    how: &str,
    lost: &str,
) -> Option<Note> {
    let p = c.last_peer_ping_before(at_ms)?;
    let gap = at_ms - p.at_ms;
    let own = c.calls.ok + c.calls.failed > 0;
    let last_end = if own {
        c.calls.last_end_ms
    } else {
        unplaced_end_ms
    };
    // Keepalive pings only a connection quiet for its keepalive time (at
    // least 1 s in grpc-go and grpc-java servers): a PING within a second
    // of a call is the flow control's (BDP), and a call that ended after
    // it shows the peer at work, not waiting for an ACK.
    let quiet_since = last_end.is_none_or(|e| e + KEEPALIVE_QUIET_MS <= p.at_ms);
    if gap > PEER_KEEPALIVE_MS || !quiet_since {
        return None;
    }
    let acked = match p.acked_ms {
        Some(a) => format!(
            "this client answered it {} later, so the ACK did not reach the server (lost or held in the path)",
            dur(a - p.at_ms)
        ),
        None => "this client did not answer it".to_string(),
    };
    Some(Note::several(
        &[EntryId::KeepaliveTimeout, EntryId::ServerCrash],
        format!(
            "the server sent a PING and {how} {} later without a GOAWAY{lost}; {acked}. Its keepalive timeout closes like this; a crash would too: a server still up on the next connection rules the crash out",
            dur(gap)
        ),
    ))
}
