//! Follows frame boundaries in one direction of an HTTP/2 byte stream.
//!
//! The scanner is fed the bytes as they pass, in pieces of any size, and calls
//! back once per frame: at the end of the header for frames whose payload it
//! skips (DATA, HEADERS, ...), at the end of the payload for control frames,
//! whose payload it collects (up to [`MAX_CONTROL_PAYLOAD`]) so they can be
//! parsed. Memory per scanner is bounded by that cap whatever the peer sends.

use super::frame::{FrameHeader, CLIENT_PREFACE, FRAME_HEADER_LEN};

/// Control payloads above this size are truncated to it before the callback
/// (a 1 MB GOAWAY debug payload is reported by its first 64 KiB).
pub const MAX_CONTROL_PAYLOAD: usize = 64 * 1024;

#[derive(Debug)]
enum State {
    /// Skipping the client preface; the number of bytes still to come.
    Preface(usize),
    /// Collecting the 9 header bytes.
    Header,
    /// Inside a payload.
    Payload {
        header: FrameHeader,
        remaining: u32,
        collect: bool,
    },
}

#[derive(Debug)]
pub struct Scanner {
    state: State,
    head: [u8; FRAME_HEADER_LEN],
    have: usize,
    payload: Vec<u8>,
    preface_ok: bool,
    /// Also collect HEADERS and CONTINUATION payloads (header blocks).
    header_blocks: bool,
}

impl Scanner {
    /// `preface`: this direction starts with the 24-byte client preface.
    pub fn new(preface: bool) -> Self {
        Self {
            state: if preface {
                State::Preface(CLIENT_PREFACE.len())
            } else {
                State::Header
            },
            head: [0; FRAME_HEADER_LEN],
            have: 0,
            payload: Vec::new(),
            preface_ok: true,
            header_blocks: false,
        }
    }

    /// Collects header block payloads (HEADERS, CONTINUATION) too, for a
    /// hook that decodes them.
    pub fn with_header_blocks(mut self, on: bool) -> Self {
        self.header_blocks = on;
        self
    }

    /// True between two frames (and not inside the preface).
    pub fn at_boundary(&self) -> bool {
        matches!(self.state, State::Header) && self.have == 0
    }

    /// False once the preface bytes seen differ from the client preface.
    pub fn preface_ok(&self) -> bool {
        self.preface_ok
    }

    /// How many bytes, starting at the next byte fed, belong to the frame (or
    /// preface) already under way; 0 at a boundary. For a header cut in two it
    /// is the rest of that header plus its payload, when `next` holds them.
    pub fn committed_len(&self, next: &[u8]) -> usize {
        match &self.state {
            State::Preface(rem) => *rem,
            State::Payload { remaining, .. } => *remaining as usize,
            State::Header if self.have == 0 => 0,
            State::Header => {
                let need = FRAME_HEADER_LEN - self.have;
                let Some(rest) = next.get(..need) else {
                    return next.len();
                };
                let mut head = self.head;
                head[self.have..].copy_from_slice(rest);
                need + FrameHeader::parse(&head).length as usize
            }
        }
    }

    /// Feeds the next bytes of the direction.
    pub fn feed(&mut self, mut bytes: &[u8], on_frame: &mut impl FnMut(&FrameHeader, &[u8])) {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Preface(rem) => {
                    let n = (*rem).min(bytes.len());
                    let at = CLIENT_PREFACE.len() - *rem;
                    if bytes[..n] != CLIENT_PREFACE[at..at + n] {
                        self.preface_ok = false;
                    }
                    *rem -= n;
                    bytes = &bytes[n..];
                    if *rem == 0 {
                        self.state = State::Header;
                    }
                }
                State::Header => {
                    let n = (FRAME_HEADER_LEN - self.have).min(bytes.len());
                    self.head[self.have..self.have + n].copy_from_slice(&bytes[..n]);
                    self.have += n;
                    bytes = &bytes[n..];
                    if self.have == FRAME_HEADER_LEN {
                        self.have = 0;
                        let header = FrameHeader::parse(&self.head);
                        let collect = header.kind.is_control()
                            || (self.header_blocks
                                && matches!(
                                    header.kind,
                                    super::frame::FrameType::Headers
                                        | super::frame::FrameType::Continuation
                                ));
                        if !collect {
                            on_frame(&header, &[]);
                        }
                        self.payload.clear();
                        if header.length == 0 {
                            if collect {
                                on_frame(&header, &[]);
                            }
                        } else {
                            self.state = State::Payload {
                                header,
                                remaining: header.length,
                                collect,
                            };
                        }
                    }
                }
                State::Payload {
                    header,
                    remaining,
                    collect,
                } => {
                    let n = (*remaining as usize).min(bytes.len());
                    if *collect {
                        let room = MAX_CONTROL_PAYLOAD.saturating_sub(self.payload.len());
                        self.payload.extend_from_slice(&bytes[..n.min(room)]);
                    }
                    *remaining -= n as u32;
                    bytes = &bytes[n..];
                    if *remaining == 0 {
                        let header = *header;
                        if *collect {
                            on_frame(&header, &self.payload);
                            if self.payload.capacity() > 4096 {
                                self.payload = Vec::new();
                            }
                        }
                        self.state = State::Header;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h2wire::frame::{ControlFrame, ErrorCode, FrameType};
    use bytes::Bytes;
    use proptest::prelude::*;

    fn stream() -> Vec<u8> {
        let mut v = CLIENT_PREFACE.to_vec();
        v.extend_from_slice(
            &ControlFrame::Settings {
                ack: false,
                params: vec![(3, 100)],
            }
            .encode(),
        );
        // A DATA frame of 20 bytes on stream 1.
        v.extend_from_slice(
            &FrameHeader {
                length: 20,
                kind: FrameType::Data,
                flags: 0,
                stream_id: 1,
            }
            .encode(),
        );
        v.extend_from_slice(&[7; 20]);
        v.extend_from_slice(
            &ControlFrame::GoAway {
                last_stream_id: 1,
                code: ErrorCode::NO_ERROR,
                debug: Bytes::from_static(b"max_idle"),
            }
            .encode(),
        );
        v
    }

    fn frames_seen(pieces: &[&[u8]]) -> Vec<(FrameType, Vec<u8>)> {
        let mut s = Scanner::new(true);
        let mut seen = vec![];
        for p in pieces {
            s.feed(p, &mut |h, p| seen.push((h.kind, p.to_vec())));
        }
        assert!(s.at_boundary());
        assert!(s.preface_ok());
        seen
    }

    #[test]
    fn follows_frames_whole() {
        let v = stream();
        let seen = frames_seen(&[&v]);
        assert_eq!(
            seen.iter().map(|f| f.0).collect::<Vec<_>>(),
            [FrameType::Settings, FrameType::Data, FrameType::GoAway]
        );
        assert!(seen[1].1.is_empty(), "DATA payload is not collected");
        assert!(seen[2].1.ends_with(b"max_idle"));
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_frames(cuts in proptest::collection::vec(0usize..200, 0..10)) {
            let v = stream();
            let whole = frames_seen(&[&v]);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (v.len() + 1)).collect();
            cuts.sort();
            let mut pieces = vec![];
            let mut at = 0;
            for c in cuts { pieces.push(&v[at..c]); at = c; }
            pieces.push(&v[at..]);
            prop_assert_eq!(frames_seen(&pieces), whole);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut s = Scanner::new(true);
            s.feed(&bytes, &mut |_, p| assert!(p.len() <= MAX_CONTROL_PAYLOAD));
            let _ = s.committed_len(&bytes);
        }
    }

    #[test]
    fn huge_control_payload_is_truncated() {
        let mut s = Scanner::new(false);
        let head = FrameHeader {
            length: 1 << 20,
            kind: FrameType::GoAway,
            flags: 0,
            stream_id: 0,
        };
        s.feed(&head.encode(), &mut |_, _| panic!("too early"));
        let chunk = vec![0u8; 4096];
        let mut calls = 0;
        for _ in 0..256 {
            s.feed(&chunk, &mut |h, p| {
                calls += 1;
                assert_eq!(h.length, 1 << 20);
                assert_eq!(p.len(), MAX_CONTROL_PAYLOAD);
            });
        }
        assert_eq!(calls, 1);
        assert!(s.at_boundary());
    }

    #[test]
    fn committed_len_across_a_cut_header() {
        let v = stream();
        let mut s = Scanner::new(true);
        // Feed the preface, the SETTINGS frame and 4 bytes of the DATA header.
        let data_at = CLIENT_PREFACE.len() + 15;
        s.feed(&v[..data_at + 4], &mut |_, _| {});
        assert_eq!(s.committed_len(&v[data_at + 4..]), 5 + 20);
    }
}
