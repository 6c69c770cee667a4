//! The steps of one call on one clock: what the connection's tap saw
//! (SETTINGS, the call's HEADERS and DATA frames, PING, GOAWAY,
//! RST_STREAM, the close) and what the dial and the call know (name
//! resolution, TCP, TLS, the headers, each message, the trailers), put in
//! the order they happened. Metadata values are redacted when recorded.

use serde::Serialize;

use crate::doctor::link::TlsInfo;
use crate::event::{micros, ConnectCause, Event, EventKind};
use crate::h2wire::Dir;

/// One step and when it happened (ms since the command started).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Step {
    #[serde(serialize_with = "micros")]
    pub t_ms: f64,
    #[serde(flatten)]
    pub what: What,
}

/// A step seen on the wire, or known to the dial or the call.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum What {
    /// An event of the connection's tap, as `watch` reports it.
    Wire(EventKind),
    Call(CallStep),
}

/// A header or trailer field, its value redacted where it is a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Field {
    pub name: String,
    pub value: String,
}

impl Field {
    pub fn new(name: &str, value: &[u8]) -> Self {
        let text = String::from_utf8_lossy(value);
        Self {
            name: name.to_string(),
            value: crate::redact::value(name, &text).to_string(),
        }
    }

    /// The fields of a header map, in order, values redacted.
    pub fn all(h: &http::HeaderMap) -> Vec<Self> {
        h.iter()
            .map(|(k, v)| Self::new(k.as_str(), v.as_bytes()))
            .collect()
    }
}

/// What the dial and the call know that no frame says.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum CallStep {
    /// The target's name, resolved to every address.
    Resolve {
        target: String,
        addrs: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        #[serde(serialize_with = "micros")]
        elapsed_ms: f64,
    },
    /// The TCP connection (or Unix socket) is open.
    TcpConnect {
        addr: String,
        #[serde(serialize_with = "micros")]
        elapsed_ms: f64,
    },
    /// The TLS handshake finished: version, cipher, ALPN, the chain.
    TlsHandshake(TlsInfo),
    /// The connection could not be made.
    ConnectFailed {
        addr: String,
        error: String,
        cause: ConnectCause,
    },
    /// The method's descriptors were read (by reflection, on this
    /// connection: its streams are left out of the steps).
    Descriptors {
        source: String,
        #[serde(serialize_with = "micros")]
        elapsed_ms: f64,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        streams: Vec<u32>,
    },
    RequestHeaders {
        fields: Vec<Field>,
    },
    ResponseHeaders {
        status: u16,
        fields: Vec<Field>,
    },
    /// A request message went out, or a response message was read.
    Message {
        dir: Dir,
        index: usize,
        bytes: usize,
    },
    Trailers {
        fields: Vec<Field>,
    },
    /// The call ended with this status.
    End {
        code: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        message: String,
        #[serde(serialize_with = "micros")]
        elapsed_ms: f64,
    },
}

/// The steps of the call: the call's own and the connection's events,
/// where frames of other streams (reflection's) and WINDOW_UPDATEs are
/// left out. `call_from_ms`: when the call (after reflection) began.
pub(crate) fn merge(mut own: Vec<Step>, events: &[Event], call_from_ms: f64) -> Vec<Step> {
    let stream = call_stream(events, call_from_ms);
    let mut other = Vec::new();
    for e in events {
        let keep = match &e.kind {
            EventKind::Frame {
                frame_type,
                stream_id,
                ..
            } => {
                *frame_type != crate::h2wire::FrameType::WindowUpdate && Some(*stream_id) == stream
            }
            EventKind::RstStream { stream_id, .. } => Some(*stream_id) == stream,
            _ => true,
        };
        if keep {
            own.push(Step {
                t_ms: e.t_ms,
                what: What::Wire(e.kind.clone()),
            });
        } else if let EventKind::Frame { stream_id, .. } = e.kind {
            other.push(stream_id);
        }
    }
    own.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
    other.sort_unstable();
    other.dedup();
    other.retain(|s| *s != 0);
    for s in &mut own {
        if let What::Call(CallStep::Descriptors { streams, .. }) = &mut s.what {
            *streams = other.clone();
        }
    }
    own
}

/// The call's stream: the first one whose HEADERS went out after it began.
pub(crate) fn call_stream(events: &[Event], call_from_ms: f64) -> Option<u32> {
    events.iter().find_map(|e| match &e.kind {
        EventKind::Frame {
            dir: Dir::Sent,
            frame_type,
            stream_id,
            ..
        } if *frame_type == crate::h2wire::FrameType::Headers && e.t_ms >= call_from_ms => {
            Some(*stream_id)
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(t_ms: f64, dir: Dir, frame_type: crate::h2wire::FrameType, stream_id: u32) -> Event {
        Event {
            t_ms,
            kind: EventKind::Frame {
                dir,
                frame_type,
                flags: 0,
                stream_id,
                length: 1,
            },
            conn: Some(1),
            addr: None,
        }
    }

    #[test]
    fn only_the_calls_stream_is_kept_and_in_time_order() {
        let events = vec![
            frame(1.0, Dir::Sent, crate::h2wire::FrameType::Headers, 1),
            frame(2.0, Dir::Received, crate::h2wire::FrameType::Data, 1),
            frame(3.0, Dir::Sent, crate::h2wire::FrameType::WindowUpdate, 0),
            frame(5.0, Dir::Sent, crate::h2wire::FrameType::Headers, 3),
            frame(6.0, Dir::Received, crate::h2wire::FrameType::Data, 3),
        ];
        let own = vec![
            Step {
                t_ms: 4.0,
                what: What::Call(CallStep::Descriptors {
                    source: "reflection".into(),
                    elapsed_ms: 3.0,
                    streams: Vec::new(),
                }),
            },
            Step {
                t_ms: 4.5,
                what: What::Call(CallStep::RequestHeaders { fields: Vec::new() }),
            },
        ];
        let steps = merge(own, &events, 4.2);
        let times: Vec<f64> = steps.iter().map(|s| s.t_ms).collect();
        assert_eq!(times, [4.0, 4.5, 5.0, 6.0]);
        let What::Call(CallStep::Descriptors { streams, .. }) = &steps[0].what else {
            panic!("descriptors first");
        };
        assert_eq!(streams, &[1]);
    }

    #[test]
    fn secret_values_are_redacted_when_recorded() {
        let mut h = http::HeaderMap::new();
        h.insert("authorization", "Bearer s3cr3t".parse().unwrap());
        h.insert("x-trace", "abc".parse().unwrap());
        let f = Field::all(&h);
        assert_eq!(f[0].value, crate::redact::REDACTED);
        assert_eq!(f[1].value, "abc");
    }
}
