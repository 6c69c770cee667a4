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
