//! One direction of an HTTP/2 connection in a capture, as frames: the
//! h2wire scanner follows frame boundaries while every byte is there; a
//! gap inside a frame's payload keeps the boundaries (the frame is marked
//! damaged), a gap across boundaries loses them until a segment starts
//! with frames that chain (the same test finds the frames of a
//! connection the capture joined midway).

use crate::h2wire::frame::{FrameHeader, FrameType, CLIENT_PREFACE, FRAME_HEADER_LEN};
use crate::h2wire::scan::Scanner;

/// The largest frame payload HTTP/2 allows (SETTINGS_MAX_FRAME_SIZE's
/// ceiling, 2^24-1).
const MAX_FRAME: u32 = (1 << 24) - 1;

/// A frame as the scanner reports it, with whether a gap fell inside it.
pub(crate) struct Seen<'a> {
    pub header: FrameHeader,
    /// Control and header-block payloads (others are not collected).
    pub payload: &'a [u8],
    /// Part of the frame was not in the capture.
    pub damaged: bool,
}

enum Sync {
    /// Following frames.
    InStep(Box<Scanner>),
    /// Looking for a segment that starts with frames.
    Lost,
}

pub(crate) struct Framing {
    sync: Sync,
    /// Bytes of this direction passed so far (gaps included).
    at: u64,
    /// Where the next frame starts (while in step).
    frame_at: u64,
    /// The last gap kept in step: [from, to).
    damage: Option<(u64, u64)>,
    /// Segments looked at while lost, and given up after.
    tries: u32,
}

/// Whether a frame header could start an HTTP/2 frame: a defined type with
/// a length and stream its type allows.
pub(crate) fn plausible(h: &FrameHeader) -> bool {
    let conn = h.stream_id == 0;
    h.length <= MAX_FRAME
        && match h.kind {
            FrameType::Data | FrameType::Headers | FrameType::Continuation => !conn,
            FrameType::Priority => !conn && h.length == 5,
            FrameType::RstStream => !conn && h.length == 4,
            FrameType::Settings => conn && h.length.is_multiple_of(6) && h.flags & !1 == 0,
            FrameType::PushPromise => !conn,
            FrameType::Ping => conn && h.length == 8 && h.flags & !1 == 0,
            FrameType::GoAway => conn && h.length >= 8,
            FrameType::WindowUpdate => h.length == 4,
            FrameType::Unknown(_) => false,
        }
}

/// Whether `bytes` start with whole plausible frames that end exactly at
/// its end, or with at least two before a last one that runs past it.
pub(crate) fn frames_chain(bytes: &[u8]) -> bool {
    let mut at = 0usize;
    let mut n = 0;
    while at < bytes.len() {
        let Some(h) = FrameHeader::parse_prefix(&bytes[at..]) else {
            return false;
        };
        if !plausible(&h) {
            return false;
        }
        n += 1;
        at += FRAME_HEADER_LEN + h.length as usize;
        if at > bytes.len() {
            return n >= 2;
        }
    }
    n >= 1
}

/// Segments looked at for a frame boundary before a direction is called
/// not HTTP/2 (or lost for good).
pub(crate) const MAX_TRIES: u32 = 256;

impl Framing {
    /// A direction followed from its start (`preface`: the client's, which
    /// starts with the connection preface).
    pub(crate) fn from_start(preface: bool) -> Self {
        let scanner = Scanner::new(preface).with_header_blocks(true);
        Self {
            sync: Sync::InStep(Box::new(scanner)),
            at: 0,
            frame_at: if preface {
                CLIENT_PREFACE.len() as u64
            } else {
                0
            },
            damage: None,
            tries: 0,
        }
    }

    /// A direction joined midway: frames are looked for.
    pub(crate) fn midway() -> Self {
        Self {
            sync: Sync::Lost,
            at: 0,
            frame_at: 0,
            damage: None,
            tries: 0,
        }
    }

    pub(crate) fn in_step(&self) -> bool {
        matches!(self.sync, Sync::InStep(_))
    }

    /// Lost for longer than finding frames again is worth.
    pub(crate) fn given_up(&self) -> bool {
        !self.in_step() && self.tries >= MAX_TRIES
    }

    /// The next bytes (one segment's, usually); each frame to `on_frame`.
    /// Returns true when this call found the frames again.
    pub(crate) fn feed(&mut self, bytes: &[u8], on_frame: &mut dyn FnMut(Seen<'_>)) -> bool {
        let mut found = false;
        if let Sync::Lost = self.sync {
            if self.tries >= MAX_TRIES || !frames_chain(bytes) {
                self.tries = self.tries.saturating_add(1);
                self.at += bytes.len() as u64;
                return false;
            }
            let scanner = Scanner::new(false).with_header_blocks(true);
            self.sync = Sync::InStep(Box::new(scanner));
            self.frame_at = self.at;
            found = true;
        }
        let Sync::InStep(scanner) = &mut self.sync else {
            return found;
        };
        let frame_at = &mut self.frame_at;
        let damage = self.damage;
        scanner.feed(bytes, &mut |h, payload| {
            let start = *frame_at;
            let end = start + (FRAME_HEADER_LEN as u64) + u64::from(h.length);
            *frame_at = end;
            let damaged = damage.is_some_and(|(from, to)| from < end && start < to);
            on_frame(Seen {
                header: *h,
                payload,
                damaged,
            });
        });
        self.at += bytes.len() as u64;
        found
    }

    /// `n` bytes of this direction are missing. Returns false when the
    /// frame boundaries were lost with them.
    pub(crate) fn gap(&mut self, n: u64) -> bool {
        let from = self.at;
        self.at += n;
        let Sync::InStep(scanner) = &mut self.sync else {
            return false;
        };
        let under_way = scanner.committed_len(&[]) as u64;
        if scanner.at_boundary() || under_way < n {
            self.sync = Sync::Lost;
            self.tries = 0;
            return false;
        }
        // Inside one payload: stand in zeros for the missing bytes (in
        // pieces, to keep memory flat), the frame is marked damaged.
        self.damage = Some((from, from + n));
        let zeros = [0u8; 4096];
        let mut left = n;
        self.at = from;
        while left > 0 {
            let k = left.min(zeros.len() as u64) as usize;
            // No frame ends inside the gap but the one under way, which
            // ends at its last byte at the earliest: nothing to report
            // until the next real bytes, except that frame itself.
            let frame_at = &mut self.frame_at;
            scanner.feed(&zeros[..k], &mut |h, _| {
                *frame_at += (FRAME_HEADER_LEN as u64) + u64::from(h.length);
            });
            left -= k as u64;
            self.at += k as u64;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h2wire::frame::ControlFrame;

    fn data(stream: u32, len: u32) -> Vec<u8> {
        let mut v = FrameHeader {
            length: len,
            kind: FrameType::Data,
            flags: 0,
            stream_id: stream,
        }
        .encode()
        .to_vec();
        v.extend(std::iter::repeat_n(7u8, len as usize));
        v
    }

    fn ping() -> Vec<u8> {
        ControlFrame::Ping {
            ack: false,
            data: *b"12345678",
        }
        .encode()
        .to_vec()
    }

    fn kinds(f: &mut Framing, bytes: &[u8]) -> Vec<(FrameType, bool)> {
        let mut v = Vec::new();
        f.feed(bytes, &mut |s| v.push((s.header.kind, s.damaged)));
        v
    }

    #[test]
    fn frames_that_chain_are_found_and_noise_is_not() {
        let mut b = data(1, 10);
        b.extend(ping());
        assert!(frames_chain(&b));
        assert!(!frames_chain(&b[3..]));
        assert!(!frames_chain(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(!frames_chain(&[
            0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0, 0, 0
        ]));
    }

    #[test]
    fn a_gap_inside_a_payload_keeps_the_frames_in_step() {
        let mut f = Framing::from_start(false);
        let d = data(1, 100);
        assert_eq!(kinds(&mut f, &d[..20]), [(FrameType::Data, false)]);
        assert!(f.gap(50));
        let mut rest = d[70..].to_vec();
        rest.extend(ping());
        assert_eq!(kinds(&mut f, &rest), [(FrameType::Ping, false)]);
    }

    #[test]
    fn a_gap_across_frames_loses_them_until_a_segment_starts_with_frames() {
        let mut f = Framing::from_start(false);
        let d = data(1, 10);
        kinds(&mut f, &d);
        assert!(!f.gap(100));
        assert!(kinds(&mut f, &d[5..]).is_empty());
        let mut next = ping();
        next.extend(data(3, 4));
        assert_eq!(
            kinds(&mut f, &next),
            [(FrameType::Ping, false), (FrameType::Data, false)]
        );
        assert!(f.in_step());
    }
}
