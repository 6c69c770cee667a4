//! Calls: a call cut by a drain's grace, a method the server lacks, and the
//! entry and facts of each failure cause `load` counts.

use super::{dur, Note};
use crate::catalogue::EntryId;
use crate::event::{CallCause, Event, EventKind};
use crate::h2wire::ErrorCode;
use crate::history::History;

pub(super) fn explain(h: &History, e: &Event) -> Option<Note> {
    let EventKind::Rpc {
        code,
        method,
        latency_ms,
        cause,
        ..
    } = &e.kind
    else {
        return None;
    };
    if *code == tonic::Code::Unimplemented {
        return Some(Note::one(
            EntryId::Unimplemented,
            format!("the server answered {method} UNIMPLEMENTED: the transport works; --probe METHOD calls a method it has"),
        ));
    }
    if *code != tonic::Code::Unavailable || cause == &Some(CallCause::NeverProcessed) {
        return None;
    }
    // A call running when a drain began, that then failed UNAVAILABLE.
    let started = e.t_ms - latency_ms;
    let drain = h
        .recent_drains()
        .rev()
        .find(|d| d.at_ms >= started && d.at_ms <= e.t_ms && e.conn.is_none_or(|c| c == d.conn))?;
    Some(Note::one(
        EntryId::DrainCut,
        format!(
            "{method} was in flight when the server began draining ({} on conn {}) and failed {} later, when the connection closed",
            super::goaway_words(drain.code, &drain.debug),
            drain.conn,
            dur(e.t_ms - drain.at_ms)
        ),
    ))
}

/// The catalogue entry a load failure cause is an instance of.
pub fn cause_id(c: &CallCause) -> Option<EntryId> {
    use CallCause as C;
    Some(match c {
        C::Draining { debug } if debug.contains("idle") => EntryId::IdleTimeout,
        C::Draining { .. } => EntryId::DrainCut,
        C::DrainEnded { .. } => EntryId::MaxAgeGraceCCore,
        C::NeverProcessed => EntryId::GoawayRace,
        C::ConnectionLost => EntryId::ServerCrash,
        C::Deadline => EntryId::Deadline,
        C::QueuedDeadline => EntryId::StreamLimitQueue,
        C::Reset { code } if *code == ErrorCode::REFUSED_STREAM => EntryId::RefusedStream,
        C::Reset { .. } => EntryId::RstStream,
        C::Http { status: 502 | 503 } => EntryId::ProxyNoUpstream,
        C::Http { status: 504 } => EntryId::ProxyTimeout,
        C::Http { status: 404 | 415 } => EntryId::NotGrpcEndpoint,
        C::Http { .. } => EntryId::HttpErrorPage,
        C::Status {
            code: tonic::Code::Unimplemented,
        } => EntryId::Unimplemented,
        C::Status {
            code: tonic::Code::Unauthenticated,
        } => EntryId::Unauthenticated,
        C::NoConnection | C::Status { .. } => return None,
    })
}

/// What happened to the calls of a failure cause: the facts, for the entry
/// [`cause_id`] names.
pub fn cause_detail(c: &CallCause) -> String {
    use CallCause as C;
    match c {
        C::Draining { debug } if debug.is_empty() => "the connection was draining (GOAWAY NO_ERROR, no debug data) and closed under the call".into(),
        C::Draining { debug } => format!("the connection was draining (GOAWAY {debug:?}) and closed under the call"),
        C::DrainEnded { debug } => format!("the server ended the call UNAVAILABLE while draining the connection (GOAWAY {debug:?})"),
        C::NeverProcessed => "the server refused the stream unprocessed (above the GOAWAY's last-stream-id, or REFUSED_STREAM) and it was not retried".into(),
        C::ConnectionLost => "the connection failed under the call without a GOAWAY".into(),
        C::NoConnection => "no READY connection to start the call on (the server down, refusing, or a TLS failure): failed fast; --wait-for-ready waits instead".into(),
        C::QueuedDeadline => "the deadline passed while the call waited for a stream slot: the connection had as many calls as the server's MAX_CONCURRENT_STREAMS".into(),
        C::Deadline => "the call outlived --timeout".into(),
        C::Status { code } => format!("the server's handler answered {}", crate::grpc::code_name(*code)),
        C::Reset { code } => format!("the server or a hop reset the stream (RST_STREAM {code}); the connection lived on"),
        C::Http { status } => format!("an HTTP hop answered HTTP {status} without a gRPC status (an error page, not the gRPC server)"),
    }
}
