//! From a captured frame to its TCP segment: the link layers tcpdump and
//! Wireshark write (Ethernet, with VLAN tags; Linux cooked SLL and SLL2,
//! what `tcpdump -i any` writes; raw IP; BSD loopback), then IPv4 or IPv6
//! and TCP, parsed by `etherparse` leniently so a packet cut by the snap
//! length still gives its headers and the bytes that were kept.

use std::net::{IpAddr, SocketAddr};

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};
use pcap_file::DataLink;

/// TCP flags grpcdoc reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Flags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
}

/// One TCP segment.
#[derive(Debug)]
pub(crate) struct Segment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: Flags,
    /// The payload bytes captured.
    pub payload: &'a [u8],
    /// Payload bytes the snap length cut off (they were on the wire).
    pub missing: u32,
}

/// Why a packet gave no TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Skip {
    /// A link type grpcdoc does not read.
    LinkType(u32),
    /// Not IP (ARP, LLDP, ...), or IP but not TCP (UDP, ICMP).
    NotTcp,
    /// A fragment of an IP packet (TCP over fragmented IP is rare).
    Fragment,
    /// Headers cut short or broken.
    Malformed,
}

fn link_number(l: DataLink) -> u32 {
    u32::from(l)
}

/// Linux cooked capture v1 (16 bytes, protocol at 14) and v2 (20 bytes,
/// protocol at 0): the EtherType and what follows.
fn cooked(data: &[u8], v2: bool) -> Option<(u16, &[u8])> {
    let (proto, rest) = if v2 {
        (data.get(0..2)?, data.get(20..)?)
    } else {
        (data.get(14..16)?, data.get(16..)?)
    };
    Some((u16::from_be_bytes([proto[0], proto[1]]), rest))
}

/// BSD loopback (NULL: the address family in the writer's byte order; LOOP:
/// network order): IPv4 is 2, IPv6 24, 28 or 30 depending on the BSD.
fn bsd_loopback(data: &[u8]) -> Option<&[u8]> {
    data.get(4..)
}

/// The TCP segment in a frame of link type `link`; `orig_len` is the
/// frame's length on the wire.
pub(crate) fn segment(link: DataLink, data: &[u8], orig_len: u32) -> Result<Segment<'_>, Skip> {
    let parsed = match link {
        DataLink::ETHERNET => LaxSlicedPacket::from_ethernet(data).map_err(|_| Skip::Malformed)?,
        DataLink::LINUX_SLL | DataLink::LINUX_SLL2 => {
            let (proto, rest) =
                cooked(data, link == DataLink::LINUX_SLL2).ok_or(Skip::Malformed)?;
            LaxSlicedPacket::from_ether_type(EtherType(proto), rest)
        }
        DataLink::NULL | DataLink::LOOP => {
            let rest = bsd_loopback(data).ok_or(Skip::Malformed)?;
            LaxSlicedPacket::from_ip(rest).map_err(|_| Skip::Malformed)?
        }
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => {
            LaxSlicedPacket::from_ip(data).map_err(|_| Skip::Malformed)?
        }
        other => return Err(Skip::LinkType(link_number(other))),
    };
    let (src_ip, dst_ip, payload) = match &parsed.net {
        Some(LaxNetSlice::Ipv4(ip)) => (
            IpAddr::V4(ip.header().source_addr()),
            IpAddr::V4(ip.header().destination_addr()),
            ip.payload(),
        ),
        Some(LaxNetSlice::Ipv6(ip)) => (
            IpAddr::V6(ip.header().source_addr()),
            IpAddr::V6(ip.header().destination_addr()),
            ip.payload(),
        ),
        _ => return Err(Skip::NotTcp),
    };
    if payload.ip_number != etherparse::IpNumber::TCP {
        return Err(Skip::NotTcp);
    }
    if payload.fragmented {
        return Err(Skip::Fragment);
    }
    let Some(TransportSlice::Tcp(tcp)) = &parsed.transport else {
        return Err(Skip::Malformed);
    };
    let missing = orig_len.saturating_sub(data.len() as u32);
    Ok(Segment {
        src: SocketAddr::new(src_ip, tcp.source_port()),
        dst: SocketAddr::new(dst_ip, tcp.destination_port()),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags: Flags {
            syn: tcp.syn(),
            ack: tcp.ack(),
            fin: tcp.fin(),
            rst: tcp.rst(),
        },
        payload: tcp.payload(),
        missing,
    })
}

impl Skip {
    pub(crate) fn describe(self) -> String {
        match self {
            Skip::LinkType(n) => format!("link type {n} (not read)"),
            Skip::NotTcp => "not TCP".into(),
            Skip::Fragment => "IP fragments".into(),
            Skip::Malformed => "broken or cut headers".into(),
        }
    }
}
