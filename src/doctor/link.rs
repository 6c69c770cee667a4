//! The connections `doctor` measures with: dialed by hand (TCP connect and
//! TLS handshake timed, the certificate read), each with a log of its own
//! events on the run's clock, and the few things done on them - a raw gRPC
//! call, a PING, a call held open without a request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use serde::Serialize;
use tokio_rustls::rustls;

use crate::client::conn::{establish, set_origin, Conn, ConnectCtx};
use crate::client::dial::{ConnectError, Io, TlsDial};
use crate::client::keepalive::KeepaliveConfig;
use crate::client::wire::{hpack, Block, StreamError, WireStream};
use crate::event::{Event, EventKind, EventSink, HeldSink};
use crate::h2wire::Dir;
use crate::target::Address;

/// What every connection of a run is dialed with.
#[derive(Clone)]
pub struct Dialer {
    pub addr: Address,
    pub tls: TlsDial,
    /// `:authority` of requests.
    pub authority: http::uri::Authority,
    /// Request metadata sent with every call (`-H`).
    pub metadata: http::HeaderMap,
    pub connect_timeout: Duration,
    /// The run's clock: every event time counts from here.
    pub start: Instant,
    /// Log every frame (HEADERS, DATA, WINDOW_UPDATE too).
    pub frames: bool,
}

/// How the TCP connection and TLS session of a dial went.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DialTiming {
    /// TCP connect (SYN to established), ms; `None` on a Unix socket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_connect_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsInfo>,
    /// From the first byte to the server's SETTINGS, ms.
    pub http2_ready_ms: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct TlsInfo {
    pub handshake_ms: f64,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// RFC 3339, and the days left (negative: expired).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_left: Option<i64>,
    /// The negotiated cipher suite (`TLS13_AES_256_GCM_SHA384`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cipher: String,
    /// Every certificate the server sent, its own first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<CertInfo>,
}

/// One certificate of the chain a server sent.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// Validity, RFC 2822.
    pub not_before: String,
    pub not_after: String,
    /// Days until `not_after` (negative: expired).
    pub days_left: i64,
}

impl CertInfo {
    /// Reads a DER certificate; `None` when it does not parse.
    fn read(der: &[u8], now: i64) -> Option<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let v = cert.validity();
        Some(Self {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            not_before: v.not_before.to_rfc2822().unwrap_or_default(),
            not_after: v.not_after.to_rfc2822().unwrap_or_default(),
            days_left: (v.not_after.timestamp() - now).div_euclid(86_400),
        })
    }
}

/// Events kept per connection before frames and PINGs are dropped.
const MAX_LOGGED: usize = 4096;

/// The events of one connection, with times on the run's clock.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<Event>>>);

impl Log {
    fn spawn(mut rx: tokio::sync::mpsc::Receiver<Event>) -> Self {
        let log = Log::default();
        let l = log.clone();
        tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                if let Ok(mut v) = l.0.lock() {
                    // Bounded: past the cap, frames and PINGs are dropped,
                    // never what a measurement waits for (GOAWAY, close).
                    let chatty = matches!(e.kind, EventKind::Frame { .. } | EventKind::Ping { .. });
                    if v.len() < MAX_LOGGED || !chatty {
                        v.push(e);
                    }
                }
            }
        });
        log
    }

    /// The first event `pick` accepts, with its time.
    pub fn find<T>(&self, pick: impl Fn(&EventKind) -> Option<T>) -> Option<(f64, T)> {
        let v = self.0.lock().ok()?;
        v.iter().find_map(|e| pick(&e.kind).map(|t| (e.t_ms, t)))
    }

    /// Every event logged so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// How many events `pred` accepts.
    pub fn count(&self, pred: impl Fn(&Event) -> bool) -> usize {
        self.0
            .lock()
            .map(|v| v.iter().filter(|e| pred(e)).count())
            .unwrap_or(0)
    }

    /// Frames received after which a server forgets ping strikes: HEADERS
    /// and DATA (grpc-go, C-core), WINDOW_UPDATE (C-core). Needs a
    /// connection that logs every frame.
    pub fn strike_resets(&self) -> usize {
        self.count(|e| {
            matches!(&e.kind, EventKind::Frame { dir: Dir::Received, frame_type, .. }
                if matches!(frame_type, crate::h2wire::FrameType::Headers | crate::h2wire::FrameType::Data | crate::h2wire::FrameType::WindowUpdate))
        })
    }

    /// PINGs the server sent on its own (not ACKs) between two times, ms.
    pub fn server_pings(&self, from_ms: f64, to_ms: f64) -> usize {
        self.count(|e| {
            (from_ms..to_ms).contains(&e.t_ms)
                && matches!(
                    e.kind,
                    EventKind::Ping {
                        dir: Dir::Received,
                        ack: false,
                        ..
                    }
                )
        })
    }
}

/// The first GOAWAY the server sent: time, code, last stream id, debug.
#[derive(Clone, Debug, Serialize)]
pub struct GoawaySeen {
    pub at_ms: f64,
    pub code: String,
    pub last_stream_id: u32,
    pub debug: String,
}

/// A call held open ([`Link::hold`]): reset when dropped.
pub type HeldCall = WireStream;

/// One connection of the run.
pub struct Link {
    pub conn: Arc<Conn>,
    pub log: Log,
    /// When it was READY, on the run's clock (ms).
    pub ready_ms: f64,
    pub timing: DialTiming,
    dialer: Dialer,
    /// When the last PING went out.
    last_ping: Mutex<Option<Instant>>,
}

/// The outcome of one raw gRPC call.
#[derive(Clone, Debug, Default)]
pub struct CallOutcome {
    /// Time to the response's end (or failure).
    pub rtt: Duration,
    /// HTTP status of the response, when one came.
    pub http_status: Option<u16>,
    pub content_type: Option<String>,
    /// The response's `server` header.
    pub server: Option<String>,
    pub grpc_status: Option<tonic::Code>,
    pub grpc_message: String,
    /// Bytes of response DATA.
    pub response_len: usize,
    /// The stream or connection failed (no status).
    pub error: Option<String>,
    /// No answer within the wait.
    pub timed_out: bool,
}

impl CallOutcome {
    /// A gRPC answer of any status came back.
    pub fn answered(&self) -> bool {
        self.grpc_status.is_some() || self.http_status.is_some()
    }

    /// The answer, short: `UNIMPLEMENTED`, `HTTP 404 text/html`, an error.
    pub fn describe(&self) -> String {
        match (self.grpc_status, self.http_status, &self.error) {
            (Some(c), _, _) => crate::grpc::code_name(c).to_string(),
            (None, Some(s), _) => format!(
                "HTTP {s}{} (not gRPC)",
                self.content_type
                    .as_deref()
                    .map(|c| format!(" {c}"))
                    .unwrap_or_default()
            ),
            (None, None, Some(e)) => e.clone(),
            (None, None, None) if self.timed_out => "no answer".into(),
            (None, None, None) => "no status".into(),
        }
    }
}

static NEXT_PING: AtomicU64 = AtomicU64::new(1);

impl Dialer {
    fn ctx(&self, events: EventSink) -> ConnectCtx {
        ConnectCtx {
            events,
            tls: self.tls.clone(),
            keepalive: KeepaliveConfig::default(),
            frames: self.frames,
            pcap: None,
        }
    }

    /// Dials, timing TCP and TLS apart, and waits for the server's SETTINGS.
    pub async fn open(&self) -> Result<Link, DialError> {
        let began = tokio::time::Instant::now();
        let deadline = began + self.connect_timeout;
        let timeout = |tls, tcp_connect_ms, waited| DialError {
            error: ConnectError::Timeout {
                addr: self.addr.to_string(),
                timeout: waited,
            },
            tls,
            tcp_connect_ms,
        };
        let mut timing = DialTiming::default();
        let connected = tokio::time::timeout_at(deadline, self.connect(&mut timing)).await;
        let io = match connected {
            Ok(Ok(io)) => io,
            Ok(Err(error)) => {
                return Err(DialError {
                    error,
                    tls: None,
                    tcp_connect_ms: timing.tcp_connect_ms,
                })
            }
            Err(_) => return Err(timeout(None, timing.tcp_connect_ms, self.connect_timeout)),
        };
        // A TLS server that did not choose h2 may not speak HTTP/2 at all
        // (an HTTPS server waits for an HTTP/1.1 request): a short wait.
        let no_h2 = timing
            .tls
            .as_ref()
            .is_some_and(|t| t.alpn.as_deref() != Some("h2"));
        let h2_deadline = if no_h2 {
            deadline.min(tokio::time::Instant::now() + NO_H2_WAIT)
        } else {
            deadline
        };
        let waited = h2_deadline - began;
        let tls = timing.tls.clone();
        let tcp_connect_ms = timing.tcp_connect_ms;
        match tokio::time::timeout_at(h2_deadline, self.establish(io, timing)).await {
            Ok(Ok(link)) => Ok(link),
            Ok(Err(error)) => Err(DialError {
                error,
                tls,
                tcp_connect_ms,
            }),
            Err(_) => Err(timeout(tls, tcp_connect_ms, waited)),
        }
    }

    /// TCP (or Unix) and TLS, timed apart.
    async fn connect(&self, timing: &mut DialTiming) -> Result<Box<dyn Io>, ConnectError> {
        let name = self.addr.to_string();
        let tcp_err = |source| ConnectError::Tcp {
            addr: name.clone(),
            source,
        };
        let begin = Instant::now();
        Ok(match &self.addr {
            Address::Tcp(a) => {
                let s = tokio::net::TcpStream::connect(a).await.map_err(tcp_err)?;
                let _ = s.set_nodelay(true);
                timing.tcp_connect_ms = Some(ms(begin.elapsed()));
                match &self.tls {
                    None => Box::new(s),
                    Some((cfg, server_name)) => {
                        let t = Instant::now();
                        let tls = tokio_rustls::TlsConnector::from(cfg.clone())
                            .connect(server_name.clone(), s)
                            .await
                            .map_err(|source| ConnectError::Tls {
                                addr: name.clone(),
                                source,
                            })?;
                        timing.tls = Some(tls_info(tls.get_ref().1, t.elapsed()));
                        Box::new(tls)
                    }
                }
            }
            Address::Unix(p) => Box::new(
                crate::client::dial::unix_connect(p)
                    .await
                    .map_err(tcp_err)?,
            ),
        })
    }

    /// HTTP/2 over `io`, until the server's SETTINGS.
    async fn establish(
        &self,
        io: Box<dyn Io>,
        mut timing: DialTiming,
    ) -> Result<Link, ConnectError> {
        let h2 = Instant::now();
        let (sink, rx) = EventSink::channel_at(1024, self.start);
        let log = Log::spawn(rx);
        let held = HeldSink::new(sink.clone());
        let conn = establish(io, self.addr.to_string(), &self.ctx(sink), held).await?;
        conn.release_events();
        timing.http2_ready_ms = ms(h2.elapsed());
        Ok(Link {
            conn,
            log,
            ready_ms: ms(self.start.elapsed()),
            timing,
            dialer: self.clone(),
            last_ping: Mutex::new(None),
        })
    }
}

/// How long a TLS server that did not choose h2 in ALPN gets to send
/// HTTP/2 SETTINGS.
const NO_H2_WAIT: Duration = Duration::from_secs(3);

/// A dial that failed, and the TLS session when the handshake succeeded.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct DialError {
    pub error: ConnectError,
    pub tls: Option<TlsInfo>,
    /// The TCP connect, ms, when it succeeded.
    pub tcp_connect_ms: Option<f64>,
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// What the TLS session says: version, ALPN, and the leaf certificate.
fn tls_info(c: &rustls::ClientConnection, took: Duration) -> TlsInfo {
    let mut info = TlsInfo {
        handshake_ms: ms(took),
        version: c
            .protocol_version()
            .map(|v| match v {
                rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3".to_string(),
                rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2".to_string(),
                other => format!("{other:?}"),
            })
            .unwrap_or_default(),
        alpn: c
            .alpn_protocol()
            .map(|a| String::from_utf8_lossy(a).into_owned()),
        ..TlsInfo::default()
    };
    info.cipher = c
        .negotiated_cipher_suite()
        .map(|cs| format!("{:?}", cs.suite()))
        .unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    info.chain = c
        .peer_certificates()
        .unwrap_or_default()
        .iter()
        .filter_map(|der| CertInfo::read(der.as_ref(), now))
        .collect();
    if let Some(leaf) = info.chain.first() {
        info.subject = Some(leaf.subject.clone());
        info.issuer = Some(leaf.issuer.clone());
        info.not_after = Some(leaf.not_after.clone());
        info.days_left = Some(leaf.days_left);
    }
    info
}

impl Link {
    pub fn tls(&self) -> bool {
        self.dialer.tls.is_some()
    }

    /// The scheme its requests carry: https over TLS, else http.
    pub fn scheme(&self) -> http::uri::Scheme {
        if self.tls() {
            http::uri::Scheme::HTTPS
        } else {
            http::uri::Scheme::HTTP
        }
    }

    pub fn authority(&self) -> &http::uri::Authority {
        &self.dialer.authority
    }

    pub fn metadata(&self) -> &http::HeaderMap {
        &self.dialer.metadata
    }

    fn request(&self, path: &str, body: tonic::body::Body) -> http::Request<tonic::body::Body> {
        let mut req = http::Request::new(body);
        *req.method_mut() = http::Method::POST;
        if let Ok(p) = http::uri::PathAndQuery::try_from(path) {
            *req.uri_mut() = http::Uri::from(p);
        }
        set_origin(&mut req, &self.scheme(), &self.dialer.authority);
        let h = req.headers_mut();
        h.insert(
            "content-type",
            http::HeaderValue::from_static("application/grpc"),
        );
        h.insert("te", http::HeaderValue::from_static("trailers"));
        for (k, v) in &self.dialer.metadata {
            h.append(k.clone(), v.clone());
        }
        req
    }

    /// One unary call with `message` (serialized protobuf), waiting at
    /// most `wait` for its end.
    pub async fn call(&self, path: &str, message: &[u8], wait: Duration) -> CallOutcome {
        let framed = crate::rpc::payload::frame(message);
        let req = self.request(
            path,
            tonic::body::Body::new(http_body_util::Full::new(framed)),
        );
        let started = Instant::now();
        let mut out = CallOutcome::default();
        let run = async {
            match self.conn.send(req).await {
                Ok(resp) => {
                    out.http_status = Some(resp.status().as_u16());
                    read_head(&mut out, resp.headers());
                    match resp.into_body().collect().await {
                        Ok(c) => {
                            if let Some(t) = c.trailers() {
                                read_head(&mut out, t);
                            }
                            out.response_len = c.to_bytes().len();
                        }
                        Err(e) => out.error = Some(e.to_string()),
                    }
                }
                Err(StreamError::Foreign(f)) => {
                    out.http_status = Some(f.status);
                    out.content_type = f.content_type.clone();
                }
                Err(e) => out.error = Some(e.to_string()),
            }
        };
        if tokio::time::timeout(wait, run).await.is_err() {
            out.timed_out = true;
        }
        out.rtt = started.elapsed();
        out
    }

    /// A call to `path` with `message` as its whole request, read to its
    /// end: how long no message had come when it ended, how it ended, and
    /// how many DATA frames came before.
    /// For a call the server answers and then keeps open (health Watch),
    /// what ends it is a timeout on a quiet stream: a proxy's per-read
    /// timeout (nginx's grpc_read_timeout resets it), an idle timeout.
    pub async fn stream_to_end(&self, path: &str, message: &[u8]) -> (Duration, String, u32) {
        use http_body_util::BodyExt as _;
        let framed = crate::rpc::payload::frame(message);
        let req = self.request(
            path,
            tonic::body::Body::new(http_body_util::Full::new(framed)),
        );
        let mut last = Instant::now();
        let mut data = 0;
        let mut out = CallOutcome::default();
        let resp = match self.conn.send(req).await {
            Ok(r) => r,
            Err(e) => return (last.elapsed(), e.to_string(), data),
        };
        out.http_status = Some(resp.status().as_u16());
        read_head(&mut out, resp.headers());
        let mut body = resp.into_body();
        loop {
            match body.frame().await {
                Some(Ok(f)) => match f.into_data() {
                    Ok(_) => {
                        last = Instant::now();
                        data += 1;
                    }
                    Err(f) => {
                        if let Some(t) = f.trailers_ref() {
                            read_head(&mut out, t);
                        }
                    }
                },
                Some(Err(e)) => return (last.elapsed(), e.to_string(), data),
                None => break,
            }
        }
        let how = match (out.grpc_status, out.http_status) {
            (Some(c), _) => format!(
                "grpc-status {} ({}){}",
                c as i32,
                c.description(),
                Some(out.grpc_message.as_str())
                    .filter(|m| !m.is_empty())
                    .map(|m| format!(" {m:?}"))
                    .unwrap_or_default()
            ),
            (None, Some(s)) if s != 200 => format!("HTTP {s} without gRPC status"),
            _ => "ended without a status".into(),
        };
        (last.elapsed(), how, data)
    }

    /// Opens a call to `path` and sends nothing more: no message, no
    /// END_STREAM. The server waits for the request; the stream stays open
    /// (and the connection busy) until it is dropped.
    pub fn hold(&self, path: &str) -> Result<WireStream, StreamError> {
        let req = self.request(path, tonic::body::Body::empty());
        let block = hpack::request_block(
            self.dialer.tls.is_some(),
            self.dialer.authority.as_str().as_bytes(),
            path.as_bytes(),
            req.headers(),
        );
        self.conn.wire().open(Block::Raw(block), true, None, false)
    }

    /// A PING with a payload of its own; its round trip, or `None` when no
    /// ACK came within `wait`.
    pub async fn ping(&self, wait: Duration) -> Option<Duration> {
        let n = NEXT_PING.fetch_add(1, Ordering::Relaxed);
        let mut data = *b"gdoc\0\0\0\0";
        data[4..].copy_from_slice(&(n as u32).to_be_bytes());
        if let Ok(mut l) = self.last_ping.lock() {
            *l = Some(Instant::now());
        }
        self.conn.ping(data, wait).await
    }

    /// When the last PING went out.
    pub fn last_ping(&self) -> Option<Instant> {
        self.last_ping.lock().ok().and_then(|l| *l)
    }

    /// The server's first GOAWAY on this connection (from the log; from
    /// the connection's state while the log catches up).
    pub fn goaway(&self) -> Option<GoawaySeen> {
        let logged = self
            .log
            .find(|k| match k {
                EventKind::Goaway {
                    dir: Dir::Received,
                    code,
                    last_stream_id,
                    debug,
                    ..
                } => Some(GoawaySeen {
                    at_ms: 0.0,
                    code: code.to_string(),
                    last_stream_id: *last_stream_id,
                    debug: debug.clone(),
                }),
                _ => None,
            })
            .map(|(t, g)| GoawaySeen { at_ms: t, ..g });
        logged.or_else(|| {
            self.conn.shared.goaway().map(|g| GoawaySeen {
                at_ms: ms(self.dialer.start.elapsed()),
                code: g.code.to_string(),
                last_stream_id: g.last_stream_id,
                debug: g.debug_text(),
            })
        })
    }

    /// When and how the connection ended, if it has: (time, reason).
    pub fn closed(&self) -> Option<(f64, String)> {
        self.log.find(|k| match k {
            EventKind::Closed { reason, .. } => Some(reason.as_str().to_string()),
            _ => None,
        })
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.closed().is_some()
    }

    /// The server drained this connection: a GOAWAY NO_ERROR (max age, an
    /// idle timeout, a stop), not a complaint about this client.
    pub fn drained(&self) -> bool {
        self.goaway().is_some_and(|g| g.code == "NO_ERROR")
    }

    /// The connection's age when its drain began.
    pub fn drained_at_age(&self) -> Option<Duration> {
        let g = self.goaway().filter(|g| g.code == "NO_ERROR")?;
        Some(Duration::from_secs_f64(
            ((g.at_ms - self.ready_ms) / 1e3).max(0.0),
        ))
    }

    /// The SETTINGS the server sent first.
    pub fn settings(&self) -> std::collections::BTreeMap<String, u32> {
        self.log
            .find(|k| match k {
                EventKind::Settings {
                    dir: Dir::Received,
                    ack: false,
                    settings,
                } => Some(settings.clone()),
                _ => None,
            })
            .map(|(_, s)| s)
            .unwrap_or_default()
    }

    /// Waits until the connection has ended or `until` passes; true when
    /// it ended.
    pub async fn wait_closed(&self, budget: &super::Budget) -> bool {
        budget.run(self.conn.closed()).await.is_some()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.conn.close();
    }
}

fn read_head(out: &mut CallOutcome, h: &http::HeaderMap) {
    let text = |n: &str| {
        h.get(n)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    if let Some(s) = text("server") {
        out.server = Some(s);
    }
    if let Some(c) = text("content-type") {
        out.content_type = Some(c);
    }
    if let Some(code) = text("grpc-status").and_then(|s| s.trim().parse::<i32>().ok()) {
        out.grpc_status = Some(tonic::Code::from_i32(code));
        out.grpc_message = text("grpc-message")
            .map(|m| crate::grpc::percent_decode(&m))
            .unwrap_or_default();
    }
}

/// A message of `size` serialized bytes (or one less, where the length's
/// varint grows by a byte): one length-delimited field `field`.
pub fn message_of_size(field: u32, size: usize) -> Option<Bytes> {
    let key = u64::from(field) << 3 | 2;
    let tag = varint_len(key);
    let mut n = size.checked_sub(tag + 1)?;
    while tag + varint_len(n as u64) + n > size {
        n = n.checked_sub(1)?;
    }
    let mut out = Vec::with_capacity(size);
    put_varint(&mut out, key);
    put_varint(&mut out, n as u64);
    let len = out.len() + n;
    out.resize(len, b'x');
    Some(Bytes::from(out))
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_the_size_asked_for() {
        for size in [
            3,
            10,
            127,
            128,
            129,
            130,
            16_384,
            16_386,
            4 << 20,
            (4 << 20) + 1,
        ] {
            let m = message_of_size(1, size).expect("a message");
            assert!(
                m.len() == size || m.len() + 1 == size,
                "{size}: {}",
                m.len()
            );
            let m = message_of_size(536_870_911, size + 10).expect("a message");
            assert!(m.len() + 1 >= size + 10);
        }
        assert!(message_of_size(1, 1).is_none());
    }
}
