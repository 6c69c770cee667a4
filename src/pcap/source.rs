//! Reading a capture file: classic pcap (any byte order, micro- or
//! nanosecond timestamps) and pcapng (interfaces with their own link types
//! and timestamp resolutions), streaming, one packet at a time, with
//! `pcap-file` doing the parsing. Packets are lent to a callback: nothing is
//! kept, so memory stays flat whatever the file's size.

use std::io::Read;

use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::Block;
use pcap_file::pcapng::PcapNgReader;
use pcap_file::{DataLink, PcapError, TsResolution};

/// One captured packet, as the file holds it.
pub(crate) struct Packet<'a> {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    pub link: DataLink,
    /// The captured bytes (at most the snap length).
    pub data: &'a [u8],
    /// The packet's length on the wire; more than `data` when the snap
    /// length cut it.
    pub orig_len: u32,
}

/// Why a file could not be read (or stopped being readable).
#[derive(Debug, thiserror::Error)]
pub(crate) enum SourceError {
    #[error("not a pcap or pcapng file (it starts with {0})")]
    NotACapture(String),
    #[error("the file is empty")]
    Empty,
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("broken {what} after packet {packet}: {source}")]
    Broken {
        what: &'static str,
        packet: u64,
        source: PcapError,
    },
}

const PCAP_MAGICS: [[u8; 4]; 4] = [
    [0xd4, 0xc3, 0xb2, 0xa1],
    [0xa1, 0xb2, 0xc3, 0xd4],
    [0x4d, 0x3c, 0xb2, 0xa1],
    [0xa1, 0xb2, 0x3c, 0x4d],
];
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// A reader that gives back the bytes it peeked before the rest.
struct Peeked<R> {
    head: Vec<u8>,
    at: usize,
    inner: R,
}

impl<R: Read> Read for Peeked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at < self.head.len() {
            let n = (self.head.len() - self.at).min(buf.len());
            buf[..n].copy_from_slice(&self.head[self.at..self.at + n]);
            self.at += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

/// What the file's first bytes were, for an error that says so.
fn describe_start(head: &[u8]) -> String {
    let hex: Vec<String> = head.iter().map(|b| format!("{b:02x}")).collect();
    let text: String = head
        .iter()
        .map(|b| {
            if b.is_ascii_graphic() || *b == b' ' {
                *b as char
            } else {
                '.'
            }
        })
        .collect();
    format!("{} = {text:?}", hex.join(" "))
}

/// Reads every packet of a pcap or pcapng stream, in file order, calling
/// `each` with it. Returns the number of packets read. A file cut short
/// (a capture still being written, `tcpdump -w -` stopped) ends cleanly
/// at its last whole packet.
pub(crate) fn read_packets(
    mut input: impl Read,
    each: &mut dyn FnMut(&Packet<'_>),
) -> Result<u64, SourceError> {
    let mut head = vec![0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = input.read(&mut head[got..])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    head.truncate(got);
    if head.is_empty() {
        return Err(SourceError::Empty);
    }
    let magic: Option<[u8; 4]> = head.as_slice().try_into().ok();
    let peeked = Peeked {
        head: head.clone(),
        at: 0,
        inner: input,
    };
    match magic {
        Some(m) if PCAP_MAGICS.contains(&m) => read_pcap(peeked, each),
        Some(PCAPNG_MAGIC) => read_pcapng(peeked, each),
        _ => Err(SourceError::NotACapture(describe_start(&head))),
    }
}

/// A truncated last record is the end of a capture that was cut, not an error.
fn is_cut(e: &PcapError) -> bool {
    matches!(e, PcapError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof)
        || matches!(e, PcapError::IncompleteBuffer)
}

fn read_pcap(input: impl Read, each: &mut dyn FnMut(&Packet<'_>)) -> Result<u64, SourceError> {
    let mut reader = PcapReader::new(input).map_err(|source| SourceError::Broken {
        what: "pcap header",
        packet: 0,
        source,
    })?;
    let header = reader.header();
    let link = header.datalink;
    let nanos = header.ts_resolution == TsResolution::NanoSecond;
    let mut n = 0u64;
    // Raw records: pcap-file's checked packets refuse an original length
    // above the snap length, which is what a cut packet has.
    while let Some(raw) = reader.next_raw_packet() {
        let raw = match raw {
            Ok(r) => r,
            Err(e) if is_cut(&e) => break,
            Err(source) => {
                return Err(SourceError::Broken {
                    what: "pcap record",
                    packet: n,
                    source,
                })
            }
        };
        let frac = u64::from(raw.ts_frac);
        let frac_ns = if nanos {
            frac
        } else {
            frac.saturating_mul(1000)
        };
        let ts_ns = u64::from(raw.ts_sec)
            .saturating_mul(1_000_000_000)
            .saturating_add(frac_ns);
        n += 1;
        each(&Packet {
            ts_ns,
            link,
            data: &raw.data,
            orig_len: raw.orig_len.max(raw.data.len() as u32),
        });
    }
    Ok(n)
}

/// An interface's link type and how many nanoseconds one timestamp unit is
/// (`None`: finer than a nanosecond, as 10^-n or 2^-n).
#[derive(Clone, Copy)]
struct Interface {
    link: DataLink,
    /// Timestamp units per second.
    units_per_s: u64,
}

fn interface(options: &[InterfaceDescriptionOption<'_>], link: DataLink) -> Interface {
    // if_tsresol (pcapng §4.2): 10^-n, or 2^-n with the high bit; 10^-6
    // when absent.
    let mut units_per_s = 1_000_000u64;
    for o in options {
        if let InterfaceDescriptionOption::IfTsResol(r) = o {
            let n = u32::from(r & 0x7f);
            units_per_s = if r & 0x80 == 0 {
                10u64.checked_pow(n).unwrap_or(u64::MAX)
            } else {
                2u64.checked_pow(n).unwrap_or(u64::MAX)
            }
            .max(1);
        }
    }
    Interface { link, units_per_s }
}

fn epb_time(epb: &EnhancedPacketBlock<'_>, i: Interface) -> u64 {
    // pcap-file reads the 64-bit timestamp as nanoseconds; it is in the
    // interface's units.
    let units = epb.timestamp.as_nanos();
    let per = u128::from(i.units_per_s);
    let ns = (units / per) * 1_000_000_000 + (units % per) * 1_000_000_000 / per;
    u64::try_from(ns).unwrap_or(u64::MAX)
}

fn read_pcapng(input: impl Read, each: &mut dyn FnMut(&Packet<'_>)) -> Result<u64, SourceError> {
    let mut reader = PcapNgReader::new(input).map_err(|source| SourceError::Broken {
        what: "pcapng section header",
        packet: 0,
        source,
    })?;
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut n = 0u64;
    while let Some(block) = reader.next_block() {
        let block = match block {
            Ok(b) => b,
            Err(e) if is_cut(&e) => break,
            Err(source) => {
                return Err(SourceError::Broken {
                    what: "pcapng block",
                    packet: n,
                    source,
                })
            }
        };
        match block {
            Block::SectionHeader(_) => interfaces.clear(),
            Block::InterfaceDescription(idb) => {
                interfaces.push(interface(&idb.options, idb.linktype));
            }
            Block::EnhancedPacket(epb) => {
                let Some(i) = interfaces.get(epb.interface_id as usize).copied() else {
                    continue;
                };
                n += 1;
                each(&Packet {
                    ts_ns: epb_time(&epb, i),
                    link: i.link,
                    data: &epb.data,
                    orig_len: epb.original_len.max(epb.data.len() as u32),
                });
            }
            Block::SimplePacket(spb) => {
                let Some(i) = interfaces.first().copied() else {
                    continue;
                };
                n += 1;
                // A simple packet has no time: it is counted at 0.
                each(&Packet {
                    ts_ns: 0,
                    link: i.link,
                    data: &spb.data,
                    orig_len: spb.original_len.max(spb.data.len() as u32),
                });
            }
            _ => {}
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_a_capture_says_what_it_starts_with() {
        let e = read_packets(&b"GET / HTTP/1.1\r\n"[..], &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("\"GET \""), "{e}");
        let e = read_packets(&b""[..], &mut |_| {}).unwrap_err();
        assert!(matches!(e, SourceError::Empty));
    }

    #[test]
    fn a_pcap_cut_mid_record_ends_at_its_last_whole_packet() {
        let mut f = Vec::new();
        f.extend_from_slice(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]);
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&65535u32.to_le_bytes());
        f.extend_from_slice(&1u32.to_le_bytes());
        for _ in 0..2 {
            f.extend_from_slice(&7u32.to_le_bytes());
            f.extend_from_slice(&5u32.to_le_bytes());
            f.extend_from_slice(&4u32.to_le_bytes());
            f.extend_from_slice(&100u32.to_le_bytes());
            f.extend_from_slice(b"abcd");
        }
        f.truncate(f.len() - 2);
        let mut seen = Vec::new();
        let n = read_packets(&f[..], &mut |p| {
            seen.push((p.ts_ns, p.data.to_vec(), p.orig_len))
        })
        .unwrap();
        assert_eq!(n, 1);
        assert_eq!(seen, [(7_000_005_000, b"abcd".to_vec(), 100)]);
    }
}
