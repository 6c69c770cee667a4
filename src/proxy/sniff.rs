//! What a proxied connection speaks, from its first bytes, peeked at
//! without taking them: the client's (a TLS handshake record, the whole
//! HTTP/2 client preface, or anything else) and the server's when it
//! speaks first (an HTTP/2 server's first frame is SETTINGS; anything else
//! is another protocol, whose client may wait for the server's greeting).
//! Polled by the connection's task, so the stages' clocks run meanwhile.

use std::io::ErrorKind;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::ReadBuf;
use tokio::net::TcpStream;

/// What the connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Proto {
    /// TLS: bytes only, the calls cannot be read.
    Tls,
    /// Cleartext HTTP/2: frames are followed.
    H2c,
    /// Anything else: bytes only.
    Raw,
}

/// How long the first bytes may take before the connection is taken for
/// bytes only.
const WAIT: Duration = Duration::from_secs(5);

pub(crate) struct Sniffer {
    deadline: Instant,
    /// A part of what is awaited came: look again then.
    retry_at: Option<Instant>,
    /// The server's first bytes are a SETTINGS frame's header.
    server_h2: bool,
}

/// Whether `b` can begin an HTTP/2 SETTINGS frame on stream 0 (RFC 9113
/// §3.4: a server's first frame).
fn settings_start(b: &[u8]) -> bool {
    const WANT: [Option<u8>; 9] = [
        None,
        None,
        None,
        Some(4),
        Some(0),
        Some(0),
        Some(0),
        Some(0),
        Some(0),
    ];
    b.iter().zip(WANT).all(|(x, w)| w.is_none_or(|w| *x == w))
}

/// Peeks; `None` while nothing is there.
fn peek(cx: &mut Context<'_>, s: &TcpStream, buf: &mut [u8]) -> Option<std::io::Result<usize>> {
    let mut rb = ReadBuf::new(buf);
    match s.poll_peek(cx, &mut rb) {
        Poll::Ready(r) => Some(r),
        Poll::Pending => None,
    }
}

impl Sniffer {
    pub fn new(now: Instant) -> Self {
        Self {
            deadline: now + WAIT,
            retry_at: None,
            server_h2: false,
        }
    }

    /// When to be polled again without bytes coming.
    pub fn next_wake(&self) -> Instant {
        self.retry_at.unwrap_or(self.deadline).min(self.deadline)
    }

    /// The protocol, once the first bytes tell it.
    pub fn poll(
        &mut self,
        cx: &mut Context<'_>,
        client: &TcpStream,
        server: &TcpStream,
        now: Instant,
    ) -> Option<Proto> {
        if now >= self.deadline {
            return Some(Proto::Raw);
        }
        if self.retry_at.is_some_and(|t| now < t) {
            return None;
        }
        self.retry_at = None;
        let preface = crate::h2wire::frame::CLIENT_PREFACE;
        let mut c = [0u8; 24];
        match peek(cx, client, &mut c) {
            Some(Ok(0)) => return Some(Proto::Raw),
            Some(Ok(n)) => {
                if c[0] == 0x16 {
                    return Some(Proto::Tls);
                }
                if c[..n] != preface[..n] {
                    return Some(Proto::Raw);
                }
                if n == preface.len() {
                    return Some(Proto::H2c);
                }
                self.retry_at = Some(now + Duration::from_millis(1));
            }
            Some(Err(e)) if e.kind() != ErrorKind::WouldBlock => return Some(Proto::Raw),
            _ => {}
        }
        if !self.server_h2 {
            let mut s = [0u8; 9];
            match peek(cx, server, &mut s) {
                Some(Ok(n)) if n > 0 && settings_start(&s[..n]) => {
                    self.server_h2 = n == s.len();
                    if !self.server_h2 {
                        self.retry_at = Some(now + Duration::from_millis(1));
                    }
                }
                Some(Err(e)) if e.kind() == ErrorKind::WouldBlock => {}
                Some(_) => return Some(Proto::Raw),
                None => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_settings_header_is_http2() {
        let settings = [0, 0, 6, 4, 0, 0, 0, 0, 0];
        assert!(settings_start(&settings));
        assert!(settings_start(&settings[..4]));
        assert!(!settings_start(b"220 smtp.example.com"));
        assert!(!settings_start(&[0, 0, 6, 1, 4, 0, 0, 0, 1]));
    }
}
