//! HTTP/2 frame headers and the control-frame payloads grpcdoc reads and
//! writes (RFC 9113 §4.1, §6). Parsing never panics: every length is checked
//! against the bytes at hand and bad input becomes a [`FrameError`].

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

/// Length of the fixed frame header (RFC 9113 §4.1).
pub const FRAME_HEADER_LEN: usize = 9;

/// The client connection preface (RFC 9113 §3.4) that precedes the client's
/// first frame.
pub const CLIENT_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The largest stream identifier (2^31-1): the last-stream-id of the first
/// GOAWAY of a graceful drain.
pub const MAX_STREAM_ID: u32 = (1 << 31) - 1;

/// Flag bits, by the frame types that define them.
pub mod flags {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// Frame types of RFC 9113 §6; anything else is kept as `Unknown` and must be
/// passed on untouched (§5.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameType {
    Data,
    Headers,
    Priority,
    RstStream,
    Settings,
    PushPromise,
    Ping,
    GoAway,
    WindowUpdate,
    Continuation,
    Unknown(u8),
}

impl FrameType {
    pub fn from_u8(v: u8) -> Self {
        match v {
            0x0 => Self::Data,
            0x1 => Self::Headers,
            0x2 => Self::Priority,
            0x3 => Self::RstStream,
            0x4 => Self::Settings,
            0x5 => Self::PushPromise,
            0x6 => Self::Ping,
            0x7 => Self::GoAway,
            0x8 => Self::WindowUpdate,
            0x9 => Self::Continuation,
            other => Self::Unknown(other),
        }
    }

    pub fn as_u8(self) -> u8 {
        match self {
            Self::Data => 0x0,
            Self::Headers => 0x1,
            Self::Priority => 0x2,
            Self::RstStream => 0x3,
            Self::Settings => 0x4,
            Self::PushPromise => 0x5,
            Self::Ping => 0x6,
            Self::GoAway => 0x7,
            Self::WindowUpdate => 0x8,
            Self::Continuation => 0x9,
            Self::Unknown(v) => v,
        }
    }

    /// Frames whose payload grpcdoc parses: small connection-management frames.
    /// DATA, HEADERS, CONTINUATION and PUSH_PROMISE payloads are never copied.
    pub fn is_control(self) -> bool {
        matches!(
            self,
            Self::Settings
                | Self::Ping
                | Self::GoAway
                | Self::RstStream
                | Self::WindowUpdate
                | Self::Priority
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Data => "DATA",
            Self::Headers => "HEADERS",
            Self::Priority => "PRIORITY",
            Self::RstStream => "RST_STREAM",
            Self::Settings => "SETTINGS",
            Self::PushPromise => "PUSH_PROMISE",
            Self::Ping => "PING",
            Self::GoAway => "GOAWAY",
            Self::WindowUpdate => "WINDOW_UPDATE",
            Self::Continuation => "CONTINUATION",
            Self::Unknown(_) => "UNKNOWN",
        }
    }
}

/// As the event JSON names it: `HEADERS`, `DATA`, ... (`UNKNOWN`).
impl serde::Serialize for FrameType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl fmt::Display for FrameType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The 9-byte frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload length (24 bits).
    pub length: u32,
    pub kind: FrameType,
    pub flags: u8,
    /// Stream identifier (31 bits; the reserved bit is dropped).
    pub stream_id: u32,
}

impl FrameHeader {
    pub fn parse(b: &[u8; FRAME_HEADER_LEN]) -> Self {
        Self {
            length: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: FrameType::from_u8(b[3]),
            flags: b[4],
            stream_id: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & MAX_STREAM_ID,
        }
    }

    /// Parses the header at the start of `b`, if 9 bytes are there.
    pub fn parse_prefix(b: &[u8]) -> Option<Self> {
        let head: &[u8; FRAME_HEADER_LEN] = b.get(..FRAME_HEADER_LEN)?.try_into().ok()?;
        Some(Self::parse(head))
    }

    pub fn encode(&self) -> [u8; FRAME_HEADER_LEN] {
        let len = self.length.min(0x00ff_ffff).to_be_bytes();
        let sid = (self.stream_id & MAX_STREAM_ID).to_be_bytes();
        [
            len[1],
            len[2],
            len[3],
            self.kind.as_u8(),
            self.flags,
            sid[0],
            sid[1],
            sid[2],
            sid[3],
        ]
    }

    pub fn has_flag(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// An HTTP/2 error code (RFC 9113 §7). Unknown codes are kept as numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    pub const NO_ERROR: Self = Self(0x0);
    pub const PROTOCOL_ERROR: Self = Self(0x1);
    pub const INTERNAL_ERROR: Self = Self(0x2);
    pub const FLOW_CONTROL_ERROR: Self = Self(0x3);
    pub const SETTINGS_TIMEOUT: Self = Self(0x4);
    pub const STREAM_CLOSED: Self = Self(0x5);
    pub const FRAME_SIZE_ERROR: Self = Self(0x6);
    pub const REFUSED_STREAM: Self = Self(0x7);
    pub const CANCEL: Self = Self(0x8);
    pub const COMPRESSION_ERROR: Self = Self(0x9);
    pub const CONNECT_ERROR: Self = Self(0xa);
    pub const ENHANCE_YOUR_CALM: Self = Self(0xb);
    pub const INADEQUATE_SECURITY: Self = Self(0xc);
    pub const HTTP_1_1_REQUIRED: Self = Self(0xd);

    const NAMES: [&'static str; 14] = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];

    /// The RFC name, or `None` for a code the RFC does not define.
    pub fn name(self) -> Option<&'static str> {
        Self::NAMES.get(self.0 as usize).copied()
    }

    /// Parses an RFC name (any case) or a number (decimal or 0x-hex).
    pub fn from_name(s: &str) -> Option<Self> {
        if let Some(i) = Self::NAMES.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return u32::try_from(i).ok().map(Self);
        }
        match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            Some(hex) => u32::from_str_radix(hex, 16).ok().map(Self),
            None => s.parse().ok().map(Self),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "0x{:x}", self.0),
        }
    }
}

/// SETTINGS parameter identifiers (RFC 9113 §6.5.2, RFC 8441).
pub mod setting {
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const ENABLE_PUSH: u16 = 0x2;
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
    pub const ENABLE_CONNECT_PROTOCOL: u16 = 0x8;

    /// The snake_case name used in events, or `None` for unknown identifiers.
    pub fn name(id: u16) -> Option<&'static str> {
        Some(match id {
            HEADER_TABLE_SIZE => "header_table_size",
            ENABLE_PUSH => "enable_push",
            MAX_CONCURRENT_STREAMS => "max_concurrent_streams",
            INITIAL_WINDOW_SIZE => "initial_window_size",
            MAX_FRAME_SIZE => "max_frame_size",
            MAX_HEADER_LIST_SIZE => "max_header_list_size",
            ENABLE_CONNECT_PROTOCOL => "enable_connect_protocol",
            _ => return None,
        })
    }
}

/// A parsed control frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlFrame {
    Settings {
        ack: bool,
        params: Vec<(u16, u32)>,
    },
    Ping {
        ack: bool,
        data: [u8; 8],
    },
    GoAway {
        last_stream_id: u32,
        code: ErrorCode,
        debug: Bytes,
    },
    RstStream {
        stream_id: u32,
        code: ErrorCode,
    },
    WindowUpdate {
        stream_id: u32,
        increment: u32,
    },
}

/// Why a control frame payload could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("{kind} frame has length {got}, expected {expected}")]
    BadLength {
        kind: &'static str,
        expected: &'static str,
        got: usize,
    },
    #[error("{kind} frame on stream {stream_id}, which it must not be")]
    BadStream { kind: &'static str, stream_id: u32 },
    #[error("{0} frame is not a control frame grpcdoc parses")]
    NotControl(&'static str),
}

impl ControlFrame {
    /// Parses the payload of a control frame. `payload` must be exactly the
    /// frame's payload (`header.length` bytes).
    pub fn parse(header: &FrameHeader, payload: &[u8]) -> Result<Self, FrameError> {
        let kind = header.kind.name();
        let bad_len = |expected| FrameError::BadLength {
            kind,
            expected,
            got: payload.len(),
        };
        let on_conn = |f: Self| {
            if header.stream_id == 0 {
                Ok(f)
            } else {
                Err(FrameError::BadStream {
                    kind,
                    stream_id: header.stream_id,
                })
            }
        };
        match header.kind {
            FrameType::Settings => {
                let ack = header.has_flag(flags::ACK);
                if !payload.len().is_multiple_of(6) || (ack && !payload.is_empty()) {
                    return Err(bad_len(if ack { "0 with ACK" } else { "a multiple of 6" }));
                }
                let params = payload
                    .chunks_exact(6)
                    .map(|c| {
                        (
                            u16::from_be_bytes([c[0], c[1]]),
                            u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
                        )
                    })
                    .collect();
                on_conn(Self::Settings { ack, params })
            }
            FrameType::Ping => {
                let data: [u8; 8] = payload.try_into().map_err(|_| bad_len("8"))?;
                on_conn(Self::Ping {
                    ack: header.has_flag(flags::ACK),
                    data,
                })
            }
            FrameType::GoAway => {
                if payload.len() < 8 {
                    return Err(bad_len("at least 8"));
                }
                on_conn(Self::GoAway {
                    last_stream_id: u32::from_be_bytes([
                        payload[0], payload[1], payload[2], payload[3],
                    ]) & MAX_STREAM_ID,
                    code: ErrorCode(u32::from_be_bytes([
                        payload[4], payload[5], payload[6], payload[7],
                    ])),
                    debug: Bytes::copy_from_slice(&payload[8..]),
                })
            }
            FrameType::RstStream => {
                let b: [u8; 4] = payload.try_into().map_err(|_| bad_len("4"))?;
                if header.stream_id == 0 {
                    return Err(FrameError::BadStream { kind, stream_id: 0 });
                }
                Ok(Self::RstStream {
                    stream_id: header.stream_id,
                    code: ErrorCode(u32::from_be_bytes(b)),
                })
            }
            FrameType::WindowUpdate => {
                let b: [u8; 4] = payload.try_into().map_err(|_| bad_len("4"))?;
                Ok(Self::WindowUpdate {
                    stream_id: header.stream_id,
                    increment: u32::from_be_bytes(b) & MAX_STREAM_ID,
                })
            }
            other => Err(FrameError::NotControl(other.name())),
        }
    }

    /// Encodes the whole frame, header included.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        match self {
            Self::Settings { ack, params } => {
                put_header(
                    &mut out,
                    params.len() * 6,
                    FrameType::Settings,
                    if *ack { flags::ACK } else { 0 },
                    0,
                );
                for (id, v) in params {
                    out.put_u16(*id);
                    out.put_u32(*v);
                }
            }
            Self::Ping { ack, data } => {
                put_header(
                    &mut out,
                    8,
                    FrameType::Ping,
                    if *ack { flags::ACK } else { 0 },
                    0,
                );
                out.put_slice(data);
            }
            Self::GoAway {
                last_stream_id,
                code,
                debug,
            } => {
                put_header(&mut out, 8 + debug.len(), FrameType::GoAway, 0, 0);
                out.put_u32(last_stream_id & MAX_STREAM_ID);
                out.put_u32(code.0);
                out.put_slice(debug);
            }
            Self::RstStream { stream_id, code } => {
                put_header(&mut out, 4, FrameType::RstStream, 0, *stream_id);
                out.put_u32(code.0);
            }
            Self::WindowUpdate {
                stream_id,
                increment,
            } => {
                put_header(&mut out, 4, FrameType::WindowUpdate, 0, *stream_id);
                out.put_u32(increment & MAX_STREAM_ID);
            }
        }
        out.freeze()
    }
}

fn put_header(out: &mut BytesMut, len: usize, kind: FrameType, flags: u8, stream_id: u32) {
    let header = FrameHeader {
        length: u32::try_from(len).unwrap_or(u32::MAX),
        kind,
        flags,
        stream_id,
    };
    out.put_slice(&header.encode());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn goaway_round_trip() {
        let f = ControlFrame::GoAway {
            last_stream_id: MAX_STREAM_ID,
            code: ErrorCode::ENHANCE_YOUR_CALM,
            debug: Bytes::from_static(b"too_many_pings"),
        };
        let wire = f.encode();
        let h = FrameHeader::parse_prefix(&wire).unwrap();
        assert_eq!(h.kind, FrameType::GoAway);
        assert_eq!(h.length as usize, wire.len() - FRAME_HEADER_LEN);
        assert_eq!(
            ControlFrame::parse(&h, &wire[FRAME_HEADER_LEN..]).unwrap(),
            f
        );
    }

    #[test]
    fn error_code_names() {
        assert_eq!(ErrorCode(0xb).to_string(), "ENHANCE_YOUR_CALM");
        assert_eq!(ErrorCode(0x99).to_string(), "0x99");
        assert_eq!(
            ErrorCode::from_name("enhance_your_calm"),
            Some(ErrorCode::ENHANCE_YOUR_CALM)
        );
        assert_eq!(ErrorCode::from_name("0x7"), Some(ErrorCode::REFUSED_STREAM));
        assert_eq!(ErrorCode::from_name("bogus"), None);
    }

    #[test]
    fn rejects_bad_lengths() {
        let h = |kind, length, stream_id| FrameHeader {
            length,
            kind,
            flags: 0,
            stream_id,
        };
        assert!(ControlFrame::parse(&h(FrameType::Ping, 7, 0), &[0; 7]).is_err());
        assert!(ControlFrame::parse(&h(FrameType::Settings, 5, 0), &[0; 5]).is_err());
        assert!(ControlFrame::parse(&h(FrameType::GoAway, 4, 0), &[0; 4]).is_err());
        assert!(ControlFrame::parse(&h(FrameType::RstStream, 4, 0), &[0; 4]).is_err());
        assert!(ControlFrame::parse(&h(FrameType::Ping, 8, 1), &[0; 8]).is_err());
    }

    fn control_frame() -> impl Strategy<Value = ControlFrame> {
        prop_oneof![
            (
                any::<bool>(),
                proptest::collection::vec(any::<(u16, u32)>(), 0..8)
            )
                .prop_map(|(ack, params)| ControlFrame::Settings {
                    ack,
                    params: if ack { vec![] } else { params }
                }),
            (any::<bool>(), any::<[u8; 8]>())
                .prop_map(|(ack, data)| ControlFrame::Ping { ack, data }),
            (
                0..=MAX_STREAM_ID,
                any::<u32>(),
                proptest::collection::vec(any::<u8>(), 0..64)
            )
                .prop_map(|(l, c, d)| ControlFrame::GoAway {
                    last_stream_id: l,
                    code: ErrorCode(c),
                    debug: Bytes::from(d)
                }),
            (1..=MAX_STREAM_ID, any::<u32>()).prop_map(|(s, c)| ControlFrame::RstStream {
                stream_id: s,
                code: ErrorCode(c)
            }),
            (0..=MAX_STREAM_ID, 0..=MAX_STREAM_ID).prop_map(|(s, i)| ControlFrame::WindowUpdate {
                stream_id: s,
                increment: i
            }),
        ]
    }

    proptest! {
        #[test]
        fn parse_never_panics(head in any::<[u8; 9]>(), payload in proptest::collection::vec(any::<u8>(), 0..128)) {
            let h = FrameHeader::parse(&head);
            let _ = ControlFrame::parse(&h, &payload);
            prop_assert_eq!(FrameHeader::parse(&h.encode()).length, h.length);
        }

        #[test]
        fn encode_parse_round_trip(f in control_frame()) {
            let wire = f.encode();
            let h = FrameHeader::parse_prefix(&wire).unwrap();
            prop_assert_eq!(h.length as usize, wire.len() - FRAME_HEADER_LEN);
            prop_assert_eq!(ControlFrame::parse(&h, &wire[FRAME_HEADER_LEN..]).unwrap(), f);
        }
    }
}
