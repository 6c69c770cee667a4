//! Packet captures: reading one into grpcdoc's events (`grpcdoc pcap`) and
//! writing the traffic grpcdoc carries as one (`watch --pcap`, `proxy
//! --pcap`). Reading streams the file packet by packet: [`source`] parses
//! pcap/pcapng, [`link`] the link, IP and TCP headers, [`tcp`] reassembles
//! each direction, [`decode`] finds HTTP/2 (or TLS) and turns frames,
//! calls and closes into the events `watch` emits, with capture times;
//! [`notes`] explains them. Memory stays flat: only open connections and
//! bounded out-of-order data are held.

mod calls;
pub(crate) mod decode;
mod framing;
pub(crate) mod link;
pub mod notes;
pub(crate) mod render;

/// Which calls `pcap` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PcapCalls {
    /// None, only the summary's counts.
    None,
    /// Those that did not end OK.
    Failed,
    /// Every call.
    All,
}
pub(crate) mod source;
mod summary;
pub(crate) mod tcp;
pub mod writer;

use std::collections::BTreeMap;
use std::io::Read;

use crate::event::Event;

pub(crate) use decode::{Counts, Options};
pub(crate) use source::SourceError;

/// What reading a capture found besides its events.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub(crate) struct Stats {
    pub packets: u64,
    pub tcp_segments: u64,
    /// Packets that gave no TCP segment, by why.
    pub skipped: BTreeMap<String, u64>,
    /// The first and last packet times (ns since the Unix epoch).
    pub first_ns: Option<u64>,
    pub last_ns: u64,
    #[serde(flatten)]
    pub counts: Counts,
}

/// Reads a capture and hands every event to `each`, in capture order per
/// connection.
pub(crate) fn read(
    input: impl Read,
    opts: Options,
    each: &mut dyn FnMut(Event),
) -> Result<Stats, SourceError> {
    let mut stats = Stats::default();
    let mut tcp = tcp::Reassembler::new();
    let mut dec = decode::Decoder::new(opts);
    let mut skipped: BTreeMap<link::Skip, u64> = BTreeMap::new();
    let result = source::read_packets(input, &mut |p| {
        stats.packets += 1;
        if stats.first_ns.is_none() {
            stats.first_ns = Some(p.ts_ns);
            dec.origin_ns = p.ts_ns;
        }
        stats.last_ns = stats.last_ns.max(p.ts_ns);
        match link::segment(p.link, p.data, p.orig_len) {
            Ok(seg) => {
                stats.tcp_segments += 1;
                tcp.segment(&seg, p.ts_ns, &mut dec);
                for e in dec.out.drain(..) {
                    each(e);
                }
            }
            Err(why) => *skipped.entry(why).or_default() += 1,
        }
    });
    let end = stats.last_ns;
    tcp.end(end, &mut dec);
    for e in dec.out.drain(..) {
        each(e);
    }
    stats.counts = dec.counts.clone();
    stats.skipped = skipped
        .into_iter()
        .map(|(k, v)| (k.describe(), v))
        .collect();
    result.map(|_| stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{CallCause, CloseReason, EventKind};
    use crate::h2wire::frame::{flags, FrameHeader, FrameType, CLIENT_PREFACE};
    use crate::h2wire::{ControlFrame, ErrorCode};

    fn headers(stream: u32, end_stream: bool, block: &[u8]) -> Vec<u8> {
        let mut f = FrameHeader {
            length: block.len() as u32,
            kind: FrameType::Headers,
            flags: flags::END_HEADERS | if end_stream { flags::END_STREAM } else { 0 },
            stream_id: stream,
        }
        .encode()
        .to_vec();
        f.extend_from_slice(block);
        f
    }

    fn request(path: &str, timeout: Option<&str>) -> Vec<u8> {
        let mut fields = http::HeaderMap::new();
        if let Some(t) = timeout {
            fields.insert("grpc-timeout", t.parse().unwrap());
        }
        crate::client::wire::hpack::request_block(false, b"h:1", path.as_bytes(), &fields)
    }

    /// `:status 200` (static index 8), then literal fields.
    fn response(fields: &[(&str, &str)]) -> Vec<u8> {
        let mut b = vec![0x88];
        for (n, v) in fields {
            b.push(0);
            b.push(n.len() as u8);
            b.extend_from_slice(n.as_bytes());
            b.push(v.len() as u8);
            b.extend_from_slice(v.as_bytes());
        }
        b
    }

    fn settings() -> Vec<u8> {
        ControlFrame::Settings {
            ack: false,
            params: vec![],
        }
        .encode()
        .to_vec()
    }

    /// A connection written by the capture writer, read back: calls that
    /// ended OK, raced a GOAWAY, were refused, reset at their deadline.
    #[test]
    fn calls_read_from_a_written_capture_end_as_the_wire_says() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls.pcap");
        let file = writer::PcapFile::create(&path).unwrap();
        let c = file.connection(None, "127.0.0.1:50051".parse().unwrap());
        let mut up = CLIENT_PREFACE.to_vec();
        up.extend(settings());
        for (id, t) in [
            (1, None),
            (3, None),
            (5, None),
            (7, Some("1M")),
            (9, Some("50m")),
        ] {
            up.extend(headers(id, false, &request("/a.B/C", t)));
        }
        c.data(true, &up);
        c.data(false, &settings());
        let grpc = [("content-type", "application/grpc")];
        c.data(false, &headers(1, false, &response(&grpc)));
        let refused = ControlFrame::RstStream {
            stream_id: 3,
            code: ErrorCode::REFUSED_STREAM,
        };
        c.data(false, &refused.encode());
        std::thread::sleep(std::time::Duration::from_millis(80));
        // The client resets stream 7 long before its 1-minute deadline (a
        // cancel) and stream 9 at its 50 ms one (the deadline).
        for stream_id in [7, 9] {
            let cancel = ControlFrame::RstStream {
                stream_id,
                code: ErrorCode::CANCEL,
            };
            c.data(true, &cancel.encode());
        }
        let goaway = ControlFrame::GoAway {
            last_stream_id: 3,
            code: ErrorCode::NO_ERROR,
            debug: bytes::Bytes::from_static(b"max_age"),
        };
        c.data(false, &goaway.encode());
        c.data(false, &headers(1, true, &response(&[("grpc-status", "0")])));
        c.fin(false);
        c.fin(true);
        drop(c);
        file.flush().unwrap();
        let mut events = Vec::new();
        let bytes = std::fs::read(&path).unwrap();
        let stats = read(&bytes[..], Options::default(), &mut |e| events.push(e)).unwrap();
        assert_eq!(stats.counts.connections_h2, 1);
        let calls: Vec<(String, tonic::Code, Option<CallCause>)> = events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Rpc {
                    method,
                    code,
                    cause,
                    ..
                } => Some((method.clone(), *code, cause.clone())),
                _ => None,
            })
            .collect();
        use tonic::Code;
        assert_eq!(
            calls,
            [
                (
                    "a.B/C".into(),
                    Code::Unavailable,
                    Some(CallCause::NeverProcessed)
                ),
                (
                    "a.B/C".into(),
                    Code::Cancelled,
                    Some(CallCause::Reset {
                        code: ErrorCode::CANCEL
                    })
                ),
                (
                    "a.B/C".into(),
                    Code::DeadlineExceeded,
                    Some(CallCause::Deadline)
                ),
                (
                    "a.B/C".into(),
                    Code::Unavailable,
                    Some(CallCause::NeverProcessed)
                ),
                ("a.B/C".into(), Code::Ok, None),
            ]
        );
        assert!(events.iter().any(|e| matches!(
            e.kind,
            EventKind::Closed {
                reason: CloseReason::Goaway,
                streams: 5,
                ..
            }
        )));
        let mut notes = notes::CaptureNotes::default();
        let ids: std::collections::BTreeSet<&str> = events
            .iter()
            .flat_map(|e| notes.notes(e))
            .filter_map(|n| n.entry.map(|i| i.as_str()))
            .collect();
        assert!(ids.contains("max-age-drain"), "{ids:?}");
        for id in ["max-age-drain", "goaway-race", "deadline", "rst-stream"] {
            assert!(ids.contains(id), "{id}: {ids:?}");
        }
    }

    fn read_back(path: &std::path::Path) -> Vec<crate::event::Event> {
        let bytes = std::fs::read(path).unwrap();
        let mut events = Vec::new();
        read(&bytes[..], Options::default(), &mut |e| events.push(e)).unwrap();
        events
    }

    fn ids(events: &[crate::event::Event]) -> Vec<&'static str> {
        let mut notes = notes::CaptureNotes::default();
        events
            .iter()
            .flat_map(|e| notes.notes(e))
            .filter_map(|n| n.entry.map(|i| i.as_str()))
            .collect()
    }

    /// Silence, then the server side resets with no GOAWAY: an idle
    /// timeout in the path, not a crash.
    #[test]
    fn silence_then_an_rst_is_an_idle_timeout_in_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("idle.pcap");
        let file = writer::PcapFile::create(&path).unwrap();
        let c = file.connection(None, "127.0.0.1:50051".parse().unwrap());
        let mut up = CLIENT_PREFACE.to_vec();
        up.extend(settings());
        c.data(true, &up);
        c.data(false, &settings());
        std::thread::sleep(std::time::Duration::from_millis(1100));
        c.rst(false);
        drop(c);
        let events = read_back(&path);
        assert!(events.iter().any(|e| matches!(
            e.kind,
            EventKind::Capture {
                what: crate::event::CaptureWhat::Idle,
                ms: Some(ms),
                ..
            } if ms >= 1000.0
        )));
        assert!(events.iter().any(|e| matches!(
            e.kind,
            EventKind::Closed {
                reason: CloseReason::Reset,
                ..
            }
        )));
        assert_eq!(ids(&events), ["idle-drop"]);
    }

    /// A client pinging with no call data from the server between breaks
    /// grpc-go's default policy: strikes, and the note once.
    #[test]
    fn pings_closer_than_the_servers_minimum_are_strikes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pings.pcap");
        let file = writer::PcapFile::create(&path).unwrap();
        let c = file.connection(None, "127.0.0.1:50051".parse().unwrap());
        let mut up = CLIENT_PREFACE.to_vec();
        up.extend(settings());
        c.data(true, &up);
        c.data(false, &settings());
        for i in 0..4u8 {
            let ping = ControlFrame::Ping {
                ack: false,
                data: [i; 8],
            };
            c.data(true, &ping.encode());
            let ack = ControlFrame::Ping {
                ack: true,
                data: [i; 8],
            };
            c.data(false, &ack.encode());
        }
        drop(c);
        let events = read_back(&path);
        let strikes: Vec<u32> = events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::PingStrike { strikes, .. } => Some(strikes),
                _ => None,
            })
            .collect();
        assert_eq!(strikes, [1, 2, 3]);
        let rtts = events
            .iter()
            .filter(|e| {
                matches!(
                    e.kind,
                    EventKind::Ping {
                        rtt_ms: Some(_),
                        ..
                    }
                )
            })
            .count();
        assert_eq!(rtts, 4);
        assert_eq!(ids(&events), ["too-many-pings"]);
    }
}
