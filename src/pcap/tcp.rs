//! TCP reassembly: segments of every connection in a capture become each
//! direction's byte stream, in order, once. Retransmitted bytes are dropped,
//! segments that come early wait (bounded) for the ones before them, and
//! bytes the capture never saw - acknowledged by the peer, or given up on
//! when too much waits behind them, or cut by the snap length - are told as
//! a gap of so many bytes, never guessed. Opens (SYN), FIN and RST are told
//! with who sent them. A connection is one SYN to its close; a port reused
//! by a new SYN is a new connection.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::link::Segment;

/// Which end of a connection: the one that opened it (sent the SYN) is the
/// client; without a SYN in the capture, the end with the higher port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Side {
    Client,
    Server,
}

impl Side {
    pub(crate) fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }

    fn index(self) -> usize {
        match self {
            Side::Client => 0,
            Side::Server => 1,
        }
    }
}

/// A connection as TCP shows it.
#[derive(Clone, Debug)]
pub(crate) struct Flow {
    pub id: u64,
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// The client's SYN is in the capture: the connection starts here.
    pub syn: bool,
}

/// What reassembly tells the layer above, per connection.
pub(crate) trait StreamSink {
    /// A connection seen for the first time (its SYN, or a segment of a
    /// connection already open when the capture started).
    fn opened(&mut self, flow: &Flow, ts_ns: u64);
    /// The server answered the SYN (SYN-ACK).
    fn accepted(&mut self, _flow: &Flow, _ts_ns: u64) {}
    /// The next bytes of one direction.
    fn data(&mut self, flow: &Flow, from: Side, ts_ns: u64, bytes: &[u8]);
    /// Bytes of one direction the capture does not have.
    fn gap(&mut self, flow: &Flow, from: Side, ts_ns: u64, bytes: u64, why: GapCause);
    fn fin(&mut self, flow: &Flow, from: Side, ts_ns: u64);
    fn rst(&mut self, flow: &Flow, from: Side, ts_ns: u64);
    /// The connection is over (both FINs, or a RST): nothing more of it.
    fn closed(&mut self, flow: &Flow, ts_ns: u64);
    /// The capture ended with the connection still open.
    fn still_open(&mut self, flow: &Flow, ts_ns: u64);
}

/// Why bytes are missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GapCause {
    /// The snap length cut the packet.
    SnapLength,
    /// The segment is not in the capture (the capture dropped it, or saw
    /// only part of the traffic).
    NotCaptured,
}

/// Segments that came early, per direction, before bytes are given up as
/// not captured.
const MAX_PENDING_BYTES: usize = 4 << 20;
const MAX_PENDING_SEGMENTS: usize = 1024;
/// How long a closed connection's late packets (the last ACK, a second
/// RST) are recognised as its own, in capture time.
const TOMBSTONE_NS: u64 = 120 * 1_000_000_000;

/// `a - b` in sequence space (RFC 9293 §3.4: modulo 2^32).
fn seq_diff(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

#[derive(Default)]
struct Direction {
    /// The next sequence number expected (None until a segment came).
    next: Option<u32>,
    /// Early segments: sequence number, captured bytes, bytes cut after them.
    pending: Vec<(u32, Vec<u8>, u32)>,
    pending_bytes: usize,
    /// Sequence number of the FIN, once seen.
    fin_at: Option<u32>,
    fin_told: bool,
}

struct Conn {
    flow: Flow,
    dirs: [Direction; 2],
    closed_at: Option<u64>,
    last_ns: u64,
}

impl Conn {
    fn side_of(&self, src: SocketAddr) -> Side {
        if src == self.flow.client {
            Side::Client
        } else {
            Side::Server
        }
    }
}

/// Every connection of a capture, by its two ends.
pub(crate) struct Reassembler {
    conns: HashMap<(SocketAddr, SocketAddr), Conn>,
    next_id: u64,
    /// Capture time of the last sweep of closed connections.
    swept_ns: u64,
}

fn key(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

impl Default for Reassembler {
    fn default() -> Self {
        Self::new()
    }
}

impl Reassembler {
    pub(crate) fn new() -> Self {
        Self {
            conns: HashMap::new(),
            next_id: 1,
            swept_ns: 0,
        }
    }

    fn new_conn(&mut self, seg: &Segment<'_>, ts_ns: u64, sink: &mut dyn StreamSink) -> Conn {
        let syn = seg.flags.syn && !seg.flags.ack;
        // The SYN's sender, the SYN-ACK's receiver, else the higher port
        // (an ephemeral port against a listening one).
        let src_is_client = if seg.flags.syn {
            !seg.flags.ack
        } else {
            seg.src.port() >= seg.dst.port()
        };
        let (client, server) = if src_is_client {
            (seg.src, seg.dst)
        } else {
            (seg.dst, seg.src)
        };
        let flow = Flow {
            id: self.next_id,
            client,
            server,
            syn,
        };
        self.next_id += 1;
        sink.opened(&flow, ts_ns);
        Conn {
            flow,
            dirs: Default::default(),
            closed_at: None,
            last_ns: ts_ns,
        }
    }

    /// The connection a segment belongs to: a new one for a SYN on ports
    /// whose connection closed (or that carries another ISN), none for a
    /// lone RST or ACK of a connection never seen.
    fn conn_for(
        &mut self,
        seg: &Segment<'_>,
        ts_ns: u64,
        sink: &mut dyn StreamSink,
    ) -> Option<(SocketAddr, SocketAddr)> {
        let k = key(seg.src, seg.dst);
        let fresh_syn = seg.flags.syn && !seg.flags.ack;
        let reuse = match self.conns.get(&k) {
            // A new SYN on a closed connection's ports: a new connection.
            Some(c) => {
                fresh_syn
                    && (c.closed_at.is_some()
                        || c.dirs[c.side_of(seg.src).index()]
                            .next
                            .is_some_and(|n| seq_diff(seg.seq.wrapping_add(1), n) != 0))
            }
            None => true,
        };
        if reuse {
            if let Some(mut old) = self.conns.remove(&k) {
                if old.closed_at.is_none() {
                    finish(&mut old, ts_ns, sink);
                    sink.still_open(&old.flow, ts_ns);
                }
            }
            // A lone RST or the last ACK of a connection never seen: not
            // a connection worth telling.
            if !seg.flags.syn && seg.payload.is_empty() && seg.missing == 0 {
                return None;
            }
            let c = self.new_conn(seg, ts_ns, sink);
            self.conns.insert(k, c);
        }
        Some(k)
    }

    /// One segment, in capture order.
    pub(crate) fn segment(&mut self, seg: &Segment<'_>, ts_ns: u64, sink: &mut dyn StreamSink) {
        if ts_ns > self.swept_ns.saturating_add(TOMBSTONE_NS) {
            self.swept_ns = ts_ns;
            self.conns
                .retain(|_, c| c.closed_at.is_none_or(|t| t + TOMBSTONE_NS > ts_ns));
        }
        let Some(k) = self.conn_for(seg, ts_ns, sink) else {
            return;
        };
        let Some(c) = self.conns.get_mut(&k) else {
            return;
        };
        if c.closed_at.is_some() {
            return;
        }
        c.last_ns = ts_ns;
        let from = c.side_of(seg.src);
        if seg.flags.syn {
            let d = &mut c.dirs[from.index()];
            if d.next.is_none() {
                d.next = Some(seg.seq.wrapping_add(1));
            }
            if seg.flags.ack && from == Side::Server {
                sink.accepted(&c.flow, ts_ns);
            }
        }
        if seg.flags.ack {
            acked(c, from.other(), seg.ack, ts_ns, sink);
        }
        let seq = if seg.flags.syn {
            seg.seq.wrapping_add(1)
        } else {
            seg.seq
        };
        let d = &mut c.dirs[from.index()];
        if d.next.is_none() {
            d.next = Some(seq);
        }
        if !seg.payload.is_empty() || seg.missing > 0 {
            accept(c, from, seq, seg.payload, seg.missing, ts_ns, sink);
        }
        if seg.flags.fin {
            let at = seq
                .wrapping_add(seg.payload.len() as u32)
                .wrapping_add(seg.missing);
            c.dirs[from.index()].fin_at.get_or_insert(at);
            deliver_fin(c, from, ts_ns, sink);
        }
        if seg.flags.rst {
            finish(c, ts_ns, sink);
            sink.rst(&c.flow, from, ts_ns);
            sink.closed(&c.flow, ts_ns);
            c.closed_at = Some(ts_ns);
            return;
        }
        let both = c.dirs.iter().all(|d| d.fin_told);
        if both {
            sink.closed(&c.flow, ts_ns);
            c.closed_at = Some(ts_ns);
        }
    }

    /// The end of the capture: what waits is told as gaps, and the
    /// connections still open are told so.
    pub(crate) fn end(&mut self, ts_ns: u64, sink: &mut dyn StreamSink) {
        let mut open: Vec<Conn> = self
            .conns
            .drain()
            .map(|(_, c)| c)
            .filter(|c| c.closed_at.is_none())
            .collect();
        open.sort_by_key(|c| c.flow.id);
        for mut c in open {
            finish(&mut c, ts_ns, sink);
            sink.still_open(&c.flow, ts_ns);
        }
    }
}

/// Bytes from `from` starting at `seq`.
fn accept(
    c: &mut Conn,
    from: Side,
    seq: u32,
    payload: &[u8],
    missing: u32,
    ts_ns: u64,
    sink: &mut dyn StreamSink,
) {
    let d = &mut c.dirs[from.index()];
    let Some(next) = d.next else { return };
    let rel = seq_diff(seq, next);
    let total = payload.len() as i64 + i64::from(missing);
    if rel + total <= 0 {
        return; // a retransmission of bytes already told
    }
    if rel > 0 {
        if d.pending.len() >= MAX_PENDING_SEGMENTS
            || d.pending_bytes + payload.len() > MAX_PENDING_BYTES
        {
            // Too much waits behind a hole: the hole was not captured.
            skip_to_pending(c, from, ts_ns, sink);
            return accept(c, from, seq, payload, missing, ts_ns, sink);
        }
        d.pending_bytes += payload.len();
        d.pending.push((seq, payload.to_vec(), missing));
        return;
    }
    deliver(c, from, seq, payload, missing, ts_ns, sink);
    drain_pending(c, from, ts_ns, sink);
}

/// Tells the part of a segment past `next` (the segment starts at or before it).
fn deliver(
    c: &mut Conn,
    from: Side,
    seq: u32,
    payload: &[u8],
    missing: u32,
    ts_ns: u64,
    sink: &mut dyn StreamSink,
) {
    let Some(next) = c.dirs[from.index()].next else {
        return;
    };
    let skip = (-seq_diff(seq, next)).max(0) as usize;
    if skip < payload.len() {
        sink.data(&c.flow, from, ts_ns, &payload[skip..]);
    }
    let end = seq.wrapping_add(payload.len() as u32).wrapping_add(missing);
    // Bytes the snap length cut that are past what was told.
    let new_cut = seq_diff(end, next).min(i64::from(missing)).max(0);
    if new_cut > 0 {
        sink.gap(&c.flow, from, ts_ns, new_cut as u64, GapCause::SnapLength);
    }
    if seq_diff(end, next) > 0 {
        c.dirs[from.index()].next = Some(end);
    }
}

/// Early segments that now follow on.
fn drain_pending(c: &mut Conn, from: Side, ts_ns: u64, sink: &mut dyn StreamSink) {
    loop {
        let d = &mut c.dirs[from.index()];
        let Some(next) = d.next else { return };
        let Some(i) = d
            .pending
            .iter()
            .position(|(s, _, _)| seq_diff(*s, next) <= 0)
        else {
            break;
        };
        let (s, bytes, missing) = d.pending.swap_remove(i);
        d.pending_bytes -= bytes.len();
        deliver(c, from, s, &bytes, missing, ts_ns, sink);
    }
    deliver_fin(c, from, ts_ns, sink);
}

/// Gives up on the hole before the earliest early segment: a gap.
fn skip_to_pending(c: &mut Conn, from: Side, ts_ns: u64, sink: &mut dyn StreamSink) {
    let d = &mut c.dirs[from.index()];
    let Some(next) = d.next else { return };
    let Some(first) = d
        .pending
        .iter()
        .map(|(s, _, _)| *s)
        .min_by_key(|s| seq_diff(*s, next))
    else {
        return;
    };
    let hole = seq_diff(first, next);
    if hole > 0 {
        d.next = Some(first);
        sink.gap(&c.flow, from, ts_ns, hole as u64, GapCause::NotCaptured);
    }
    drain_pending(c, from, ts_ns, sink);
}

/// The peer acknowledged `from`'s bytes up to `ack`: any not seen by then
/// were not captured.
fn acked(c: &mut Conn, from: Side, ack: u32, ts_ns: u64, sink: &mut dyn StreamSink) {
    let d = &c.dirs[from.index()];
    let Some(next) = d.next else { return };
    // The FIN takes a sequence number of its own.
    let data_end = match d.fin_at {
        Some(f) if seq_diff(ack, f) > 0 => f,
        _ => ack,
    };
    let ahead = seq_diff(data_end, next);
    if ahead <= 0 || ahead > i64::from(i32::MAX) {
        return;
    }
    let waiting = d
        .pending
        .iter()
        .map(|(s, _, _)| seq_diff(*s, next))
        .filter(|r| *r > 0)
        .min();
    match waiting {
        Some(w) if w <= ahead => skip_to_pending(c, from, ts_ns, sink),
        _ => {
            c.dirs[from.index()].next = Some(data_end);
            sink.gap(&c.flow, from, ts_ns, ahead as u64, GapCause::NotCaptured);
            drain_pending(c, from, ts_ns, sink);
        }
    }
}

fn deliver_fin(c: &mut Conn, from: Side, ts_ns: u64, sink: &mut dyn StreamSink) {
    let d = &mut c.dirs[from.index()];
    if d.fin_told {
        return;
    }
    if let (Some(f), Some(next)) = (d.fin_at, d.next) {
        if seq_diff(f, next) <= 0 {
            d.fin_told = true;
            sink.fin(&c.flow, from, ts_ns);
        }
    }
}

/// Whatever waits in either direction is told, holes as gaps.
fn finish(c: &mut Conn, ts_ns: u64, sink: &mut dyn StreamSink) {
    for from in [Side::Client, Side::Server] {
        while !c.dirs[from.index()].pending.is_empty() {
            skip_to_pending(c, from, ts_ns, sink);
        }
        let d = &mut c.dirs[from.index()];
        if let (Some(f), Some(next), false) = (d.fin_at, d.next, d.fin_told) {
            let hole = seq_diff(f, next);
            if hole > 0 {
                d.next = Some(f);
                sink.gap(&c.flow, from, ts_ns, hole as u64, GapCause::NotCaptured);
            }
            deliver_fin(c, from, ts_ns, sink);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcap::link::Flags;

    #[derive(Default)]
    struct Log(Vec<String>);

    impl StreamSink for Log {
        fn opened(&mut self, f: &Flow, _: u64) {
            self.0.push(format!("open {} syn={}", f.id, f.syn));
        }
        fn data(&mut self, _: &Flow, from: Side, _: u64, b: &[u8]) {
            self.0
                .push(format!("{from:?} {}", String::from_utf8_lossy(b)));
        }
        fn gap(&mut self, _: &Flow, from: Side, _: u64, n: u64, why: GapCause) {
            self.0.push(format!("{from:?} gap {n} {why:?}"));
        }
        fn fin(&mut self, _: &Flow, from: Side, _: u64) {
            self.0.push(format!("{from:?} fin"));
        }
        fn rst(&mut self, _: &Flow, from: Side, _: u64) {
            self.0.push(format!("{from:?} rst"));
        }
        fn closed(&mut self, f: &Flow, _: u64) {
            self.0.push(format!("closed {}", f.id));
        }
        fn still_open(&mut self, f: &Flow, _: u64) {
            self.0.push(format!("open at end {}", f.id));
        }
    }

    const C: &str = "127.0.0.1:55000";
    const S: &str = "127.0.0.1:50051";

    fn seg<'a>(from_client: bool, seq: u32, ack: Option<u32>, f: &str, p: &'a [u8]) -> Segment<'a> {
        let (src, dst) = if from_client { (C, S) } else { (S, C) };
        Segment {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            seq,
            ack: ack.unwrap_or(0),
            flags: Flags {
                syn: f.contains('S'),
                ack: ack.is_some(),
                fin: f.contains('F'),
                rst: f.contains('R'),
            },
            payload: p,
            missing: 0,
        }
    }

    fn run(segs: &[Segment<'_>]) -> Vec<String> {
        let mut r = Reassembler::new();
        let mut log = Log::default();
        for (i, s) in segs.iter().enumerate() {
            r.segment(s, i as u64, &mut log);
        }
        r.end(99, &mut log);
        log.0
    }

    #[test]
    fn out_of_order_and_retransmitted_bytes_come_out_once_in_order() {
        let got = run(&[
            seg(true, 99, None, "S", b""),
            seg(false, 999, Some(100), "S", b""),
            seg(true, 100, Some(1000), "", b"abc"),
            seg(true, 106, Some(1000), "", b"ghi"),
            seg(true, 103, Some(1000), "", b"def"),
            seg(true, 100, Some(1000), "", b"abcdef"),
            seg(true, 109, Some(1000), "F", b""),
            seg(false, 1000, Some(110), "F", b""),
        ]);
        assert_eq!(
            got,
            [
                "open 1 syn=true",
                "Client abc",
                "Client def",
                "Client ghi",
                "Client fin",
                "Server fin",
                "closed 1"
            ]
        );
    }

    #[test]
    fn bytes_the_peer_acknowledged_but_the_capture_lacks_are_a_gap() {
        let got = run(&[
            seg(true, 100, Some(1000), "", b"abc"),
            // 3 bytes at 103 never captured; the server acks 109.
            seg(true, 106, Some(1000), "", b"ghi"),
            seg(false, 1000, Some(109), "R", b""),
        ]);
        assert_eq!(
            got,
            [
                "open 1 syn=false",
                "Client abc",
                "Client gap 3 NotCaptured",
                "Client ghi",
                "Server rst",
                "closed 1"
            ]
        );
    }

    #[test]
    fn a_new_syn_on_a_closed_connections_ports_is_a_new_connection() {
        let got = run(&[
            seg(true, 99, None, "S", b""),
            seg(true, 100, Some(1), "R", b""),
            seg(true, 5000, Some(1), "", b"late"),
            seg(true, 7000, None, "S", b""),
            seg(true, 7001, Some(1), "", b"x"),
        ]);
        assert_eq!(
            got,
            [
                "open 1 syn=true",
                "Client rst",
                "closed 1",
                "open 2 syn=true",
                "Client x",
                "open at end 2"
            ]
        );
    }

    #[test]
    fn sequence_numbers_wrap() {
        let got = run(&[
            seg(true, u32::MAX - 1, Some(1), "", b"ab"),
            seg(true, 0, Some(1), "", b"cd"),
        ]);
        assert_eq!(got[1..3], ["Client ab", "Client cd"]);
    }
}
