//! Dialing one address: TCP or a Unix socket, then TLS when the target asks
//! for it; and why an attempt failed, by kind ([`ConnectCause`]), read from
//! the error's sources, never from its text.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::event::ConnectCause;
use crate::target::Address;

/// A dialed byte stream.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// TLS settings for every dial of a channel.
pub type TlsDial = Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connect to {addr}: {source}")]
    Tcp { addr: String, source: io::Error },
    #[error("TLS handshake with {addr}: {source}")]
    Tls { addr: String, source: io::Error },
    #[error("{addr} closed the connection before sending HTTP/2 SETTINGS{}", .first.as_ref().map(|b| format!(" (first bytes: {})", hex(b))).unwrap_or_default())]
    NoSettings {
        addr: String,
        first: Option<Vec<u8>>,
    },
    #[error("no HTTP/2 connection to {addr} within {}", humantime::format_duration(*.timeout))]
    Timeout { addr: String, timeout: Duration },
}

/// Bytes as hex, and as text too when they are printable (`HTTP/1.1 `).
fn hex(b: &[u8]) -> String {
    let hex = b
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ");
    if !b.is_empty() && b.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
        format!("{hex} = \"{}\"", String::from_utf8_lossy(b))
    } else {
        hex
    }
}

impl ConnectError {
    pub fn cause(&self) -> ConnectCause {
        match self {
            ConnectError::Tcp { source, .. } => match source.kind() {
                io::ErrorKind::ConnectionRefused => ConnectCause::Refused,
                io::ErrorKind::TimedOut => ConnectCause::Timeout,
                io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
                    ConnectCause::Unreachable
                }
                _ => ConnectCause::Io,
            },
            ConnectError::Tls { source, .. } => {
                match source
                    .get_ref()
                    .and_then(|e| e.downcast_ref::<rustls::Error>())
                {
                    Some(rustls::Error::InvalidCertificate(_)) => ConnectCause::TlsCertificate,
                    Some(rustls::Error::InvalidMessage(_)) => ConnectCause::PlaintextServer,
                    Some(_) => ConnectCause::Tls,
                    None if source.kind() == io::ErrorKind::UnexpectedEof => ConnectCause::Closed,
                    None => ConnectCause::Tls,
                }
            }
            ConnectError::NoSettings { first, .. } => match first.as_deref() {
                // A TLS record: alert (0x15) or handshake (0x16), version 3.x.
                Some([0x15 | 0x16, 0x03, ..]) => ConnectCause::TlsServer,
                Some([]) | None => ConnectCause::Closed,
                Some(_) => ConnectCause::NotHttp2,
            },
            ConnectError::Timeout { .. } => ConnectCause::Timeout,
        }
    }
}

/// Connects to a Unix socket: a path, or an abstract name kept as
/// `"\0name"` (`unix-abstract:name`).
pub async fn unix_connect(p: &std::path::Path) -> io::Result<tokio::net::UnixStream> {
    let Some(name) = p.to_str().and_then(|p| p.strip_prefix('\0')) else {
        return tokio::net::UnixStream::connect(p).await;
    };
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    // Connecting a Unix socket does not wait on the network.
    let s = std::os::unix::net::UnixStream::connect_addr(&addr)?;
    s.set_nonblocking(true)?;
    tokio::net::UnixStream::from_std(s)
}

/// Opens the byte stream to `addr`: TCP (no Nagle) or Unix, then TLS.
pub async fn dial(addr: &Address, tls: &TlsDial) -> Result<Box<dyn Io>, ConnectError> {
    let name = addr.to_string();
    let tcp_err = |source| ConnectError::Tcp {
        addr: name.clone(),
        source,
    };
    let io: Box<dyn Io> = match addr {
        Address::Tcp(a) => {
            let s = tokio::net::TcpStream::connect(a).await.map_err(tcp_err)?;
            let _ = s.set_nodelay(true);
            Box::new(s)
        }
        Address::Unix(p) => Box::new(unix_connect(p).await.map_err(tcp_err)?),
    };
    match tls {
        None => Ok(io),
        Some((cfg, server_name)) => {
            let tls = tokio_rustls::TlsConnector::from(cfg.clone())
                .connect(server_name.clone(), io)
                .await
                .map_err(|source| ConnectError::Tls {
                    addr: name.clone(),
                    source,
                })?;
            Ok(Box::new(tls))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn abstract_sockets_are_dialed_by_name() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("grpcdoc-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
        let path = std::path::PathBuf::from(format!("\0{name}"));
        let conn = unix_connect(&path).await.unwrap();
        assert!(listener.accept().is_ok());
        drop(conn);
        let missing = std::path::PathBuf::from("\0grpcdoc-no-such-socket");
        assert!(unix_connect(&missing).await.is_err());
    }

    #[test]
    fn first_bytes_show_as_text_when_printable() {
        assert_eq!(hex(b"HTTP"), "48 54 54 50 = \"HTTP\"");
        assert_eq!(hex(&[0x16, 0x03]), "16 03");
    }

    #[test]
    fn causes_come_from_what_the_server_sent_first() {
        let e = |first: &[u8]| ConnectError::NoSettings {
            addr: "a".into(),
            first: Some(first.to_vec()),
        };
        assert_eq!(e(&[0x15, 0x03, 0x01]).cause(), ConnectCause::TlsServer);
        assert_eq!(e(b"HTTP/1.1 ").cause(), ConnectCause::NotHttp2);
        assert_eq!(e(b"").cause(), ConnectCause::Closed);
    }
}
