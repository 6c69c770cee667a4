//! Writing the traffic grpcdoc carries as a pcap file Wireshark and tshark
//! open (`watch --pcap`, `proxy --pcap`): each connection's cleartext bytes
//! (HTTP/2 after TLS, when grpcdoc did the TLS) in synthesised Ethernet,
//! IPv4 or IPv6 and TCP headers - a three-way handshake, segments with
//! consistent sequence and acknowledgment numbers, FIN or RST at the end -
//! built with etherparse (checksums included). Times are the moments
//! grpcdoc passed the bytes on.

use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::SystemTime;

use etherparse::PacketBuilder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The largest TCP payload a segment carries here (a 16 KiB HTTP/2 frame
/// and its header fit in one).
const SEGMENT: usize = 16 * 1024 + 64;
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

/// A pcap file being written; shared by every connection.
#[derive(Debug)]
pub struct PcapFile {
    out: Mutex<BufWriter<std::fs::File>>,
    /// Client ports handed out for connections with no port of their own
    /// (Unix sockets).
    next_port: AtomicU16,
}

impl PcapFile {
    /// Creates `path` and writes the pcap header (microseconds, Ethernet).
    pub fn create(path: &std::path::Path) -> io::Result<Arc<Self>> {
        let f = std::fs::File::create(path)?;
        let mut out = BufWriter::with_capacity(256 * 1024, f);
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&[0; 8])?;
        out.write_all(&262_144u32.to_le_bytes())?;
        out.write_all(&1u32.to_le_bytes())?;
        out.flush()?;
        Ok(Arc::new(Self {
            out: Mutex::new(out),
            next_port: AtomicU16::new(40_000),
        }))
    }

    /// Writes what is buffered.
    pub fn flush(&self) -> io::Result<()> {
        self.out
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?
            .flush()
    }

    fn record(&self, frame: &[u8]) {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let Ok(mut out) = self.out.lock() else {
            return;
        };
        let len = frame.len() as u32;
        let mut head = [0u8; 16];
        head[0..4].copy_from_slice(&(now.as_secs() as u32).to_le_bytes());
        head[4..8].copy_from_slice(&now.subsec_micros().to_le_bytes());
        head[8..12].copy_from_slice(&len.to_le_bytes());
        head[12..16].copy_from_slice(&len.to_le_bytes());
        // A file that cannot be written loses the capture, not the run.
        // Written through at once: a run ended by a signal leaves a whole
        // file.
        let _ = out
            .write_all(&head)
            .and_then(|()| out.write_all(frame))
            .and_then(|()| out.flush());
    }

    /// A connection from `client` to `server`: its handshake is written
    /// now. `client` may be `None` (a Unix socket): a loopback address with
    /// a port of its own stands in.
    pub fn connection(
        self: &Arc<Self>,
        client: Option<SocketAddr>,
        server: SocketAddr,
    ) -> PcapConn {
        let client = client.unwrap_or_else(|| {
            let port = self.next_port.fetch_add(1, Ordering::Relaxed).max(1024);
            let ip = match server.ip() {
                IpAddr::V4(_) => IpAddr::from([127, 0, 0, 1]),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            };
            SocketAddr::new(ip, port)
        });
        let conn = PcapConn {
            file: self.clone(),
            client,
            server,
            state: Mutex::new(ConnState {
                seq: [fastrand::u32(..), fastrand::u32(..)],
                fin: [false, false],
                closed: false,
            }),
        };
        conn.handshake();
        conn
    }
}

struct ConnState {
    /// Next sequence number of the client, the server.
    seq: [u32; 2],
    fin: [bool; 2],
    closed: bool,
}

/// One connection in a [`PcapFile`].
pub struct PcapConn {
    file: Arc<PcapFile>,
    client: SocketAddr,
    server: SocketAddr,
    state: Mutex<ConnState>,
}

#[derive(Clone, Copy)]
enum Flag {
    Syn,
    SynAck,
    Ack,
    Psh,
    Fin,
    Rst,
}

/// Both ends' addresses in one family.
enum Ends {
    V4([u8; 4], [u8; 4]),
    V6([u8; 16], [u8; 16]),
}

/// Both ends in one family (an IPv4 end is mapped into IPv6 when the
/// other is IPv6).
fn ips(a: IpAddr, b: IpAddr) -> Ends {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => Ends::V4(a.octets(), b.octets()),
        (a, b) => {
            let v6 = |ip: IpAddr| match ip {
                IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
                IpAddr::V6(v6) => v6.octets(),
            };
            Ends::V6(v6(a), v6(b))
        }
    }
}

impl PcapConn {
    fn segment(&self, from_client: bool, flag: Flag, seq: u32, ack: u32, payload: &[u8]) {
        let (src, dst, smac, dmac) = if from_client {
            (self.client, self.server, CLIENT_MAC, SERVER_MAC)
        } else {
            (self.server, self.client, SERVER_MAC, CLIENT_MAC)
        };
        let eth = PacketBuilder::ethernet2(smac, dmac);
        let ip = match ips(src.ip(), dst.ip()) {
            Ends::V4(s, d) => eth.ipv4(s, d, 64),
            Ends::V6(s, d) => eth.ipv6(s, d, 64),
        };
        let tcp = ip.tcp(src.port(), dst.port(), seq, 65_535);
        let tcp = match flag {
            Flag::Syn => tcp.syn(),
            Flag::SynAck => tcp.syn().ack(ack),
            Flag::Ack => tcp.ack(ack),
            Flag::Psh => tcp.psh().ack(ack),
            Flag::Fin => tcp.fin().ack(ack),
            Flag::Rst => tcp.rst().ack(ack),
        };
        let mut frame = Vec::with_capacity(tcp.size(payload.len()));
        if tcp.write(&mut frame, payload).is_ok() {
            self.file.record(&frame);
        }
    }

    fn handshake(&self) {
        let Ok(mut s) = self.state.lock() else { return };
        let [c, sv] = s.seq;
        self.segment(true, Flag::Syn, c, 0, &[]);
        self.segment(false, Flag::SynAck, sv, c.wrapping_add(1), &[]);
        self.segment(true, Flag::Ack, c.wrapping_add(1), sv.wrapping_add(1), &[]);
        s.seq = [c.wrapping_add(1), sv.wrapping_add(1)];
    }

    /// Bytes one side sent.
    pub fn data(&self, from_client: bool, bytes: &[u8]) {
        let Ok(mut s) = self.state.lock() else { return };
        let (i, o) = if from_client { (0, 1) } else { (1, 0) };
        if s.closed || s.fin[i] {
            return;
        }
        for chunk in bytes.chunks(SEGMENT) {
            self.segment(from_client, Flag::Psh, s.seq[i], s.seq[o], chunk);
            s.seq[i] = s.seq[i].wrapping_add(chunk.len() as u32);
        }
    }

    /// One side closed (FIN), once; the other side's ACK of it follows.
    pub fn fin(&self, from_client: bool) {
        let Ok(mut s) = self.state.lock() else { return };
        let (i, o) = if from_client { (0, 1) } else { (1, 0) };
        if s.closed || s.fin[i] {
            return;
        }
        self.segment(from_client, Flag::Fin, s.seq[i], s.seq[o], &[]);
        s.seq[i] = s.seq[i].wrapping_add(1);
        s.fin[i] = true;
        self.segment(!from_client, Flag::Ack, s.seq[o], s.seq[i], &[]);
        if s.fin == [true, true] {
            s.closed = true;
        }
    }

    /// One side reset the connection.
    pub fn rst(&self, from_client: bool) {
        let Ok(mut s) = self.state.lock() else { return };
        let (i, o) = if from_client { (0, 1) } else { (1, 0) };
        if s.closed {
            return;
        }
        self.segment(from_client, Flag::Rst, s.seq[i], s.seq[o], &[]);
        s.closed = true;
    }
}

/// A client's byte stream that writes what passes to a [`PcapConn`]:
/// writes are the client's bytes, reads the server's; end of stream is the
/// server's FIN, a reset its RST, shutdown or drop the client's FIN.
pub struct Recorded<T> {
    inner: T,
    conn: PcapConn,
}

impl<T> Recorded<T> {
    pub fn new(inner: T, conn: PcapConn) -> Self {
        Self { inner, conn }
    }
}

impl<T> Drop for Recorded<T> {
    fn drop(&mut self) {
        self.conn.fin(true);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Recorded<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        match &r {
            Poll::Ready(Ok(())) if buf.filled().len() == before && buf.remaining() > 0 => {
                this.conn.fin(false)
            }
            Poll::Ready(Ok(())) => this.conn.data(false, &buf.filled()[before..]),
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::ConnectionReset => {
                this.conn.rst(false)
            }
            _ => {}
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Recorded<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = &r {
            this.conn.data(true, &data[..*n]);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        if let Poll::Ready(Ok(())) = &r {
            this.conn.fin(true);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back_as_the_same_bytes_and_closes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pcap");
        let file = PcapFile::create(&path).unwrap();
        let conn = file.connection(None, "127.0.0.1:50051".parse().unwrap());
        let mut up = crate::h2wire::frame::CLIENT_PREFACE.to_vec();
        up.extend(vec![0u8; 40_000]);
        conn.data(true, &up);
        conn.data(false, b"server bytes");
        conn.fin(false);
        conn.fin(true);
        file.flush().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let mut seen = Vec::new();
        crate::pcap::source::read_packets(&bytes[..], &mut |p| {
            let s = crate::pcap::link::segment(p.link, p.data, p.orig_len).unwrap();
            seen.push((s.flags, s.payload.len()));
        })
        .unwrap();
        // SYN, SYN-ACK, ACK, 3 client segments, 1 server, FIN+ACK twice.
        assert_eq!(seen.len(), 3 + 3 + 1 + 4, "{seen:?}");
        assert!(seen[0].0.syn && !seen[0].0.ack);
        assert_eq!(seen[3..6].iter().map(|s| s.1).sum::<usize>(), up.len());
    }
}
