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

pub(super) fn explain(c: &Conn) -> Option<Note> {
    let close = c.close.as_ref()?;
    // A failed handshake is explained by its connect event.
    c.ready_ms?;
    let age = c
        .age_at(close.at_ms)
        .map(|a| format!(" after {}", dur(a)))
        .unwrap_or_default();
    let lost = match close.streams {
        0 => " (no call was lost here)".to_string(),
        1 => ", with 1 call in flight".to_string(),
        n => format!(", with {n} calls in flight"),
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
            if let Some(note) = peer_keepalive(c, close.at_ms, &how, &lost) {
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
fn peer_keepalive(c: &Conn, at_ms: f64, how: &str, lost: &str) -> Option<Note> {
    let p = c.last_peer_ping_before(at_ms)?;
    let gap = at_ms - p.at_ms;
    let quiet_since = c.calls.last_end_ms.is_none_or(|e| e <= p.at_ms);
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
