//! One client HTTP/2 connection: dial (TCP or Unix, optional TLS), a
//! [`FrameIo`] tap, the h2 client handshake, READY when the server's
//! SETTINGS arrive; then a driver task that runs the connection, sends
//! keepalive pings (gRFC A8) and reports how it ended.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::time::sleep_until_opt;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::ServerName;

use super::tap::{ClientTap, ConnShared, KEEPALIVE_PING};
use super::wire::{self, Block, StreamError, Wire, WireStream};
use crate::event::{CloseReason, EventKind, EventSink};
use crate::h2wire::{ControlFrame, FrameIo, Injector, Role};
use crate::target::Address;

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// Client keepalive (gRFC A8).
#[derive(Clone, Copy, Debug)]
pub struct KeepaliveConfig {
    /// Ping after this long without reading anything; `None`: never.
    pub time: Option<Duration>,
    /// Close when nothing is read this long after a ping.
    pub timeout: Duration,
    /// Ping even when no stream is open.
    pub permit_without_stream: bool,
}

impl Default for KeepaliveConfig {
    fn default() -> Self {
        Self {
            time: None,
            timeout: Duration::from_secs(20),
            permit_without_stream: false,
        }
    }
}

/// What every connection of a channel shares.
#[derive(Clone)]
pub struct ConnectCtx {
    pub events: EventSink,
    pub tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    pub keepalive: KeepaliveConfig,
    pub frames: bool,
    /// Run connections on grpcdoc's own HTTP/2 client (`client::wire`).
    pub wire: bool,
}

/// Why a connection attempt failed, by kind (diagnosis reads this, never the
/// message text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectCause {
    Refused,
    Timeout,
    Unreachable,
    TlsCertificate,
    /// TLS was spoken and plaintext came back.
    PlaintextServer,
    /// Plaintext HTTP/2 was spoken and a TLS record came back.
    TlsServer,
    /// The peer answered with something that is not HTTP/2.
    NotHttp2,
    Tls,
    Closed,
    Io,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connect to {addr}: {source}")]
    Tcp { addr: String, source: io::Error },
    #[error("TLS handshake with {addr}: {source}")]
    Tls { addr: String, source: io::Error },
    #[error("HTTP/2 handshake with {addr}: {source}")]
    Http2 { addr: String, source: h2::Error },
    #[error("{addr} closed the connection before sending HTTP/2 SETTINGS{}", .first.as_ref().map(|b| format!(" (first bytes: {})", hex(b))).unwrap_or_default())]
    NoSettings {
        addr: String,
        first: Option<Vec<u8>>,
    },
    #[error("no HTTP/2 connection to {addr} within {timeout:?}")]
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
        format!("{hex} = {:?}", String::from_utf8_lossy(b))
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
            ConnectError::Http2 { .. } => ConnectCause::Closed,
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

/// How a connection ended.
#[derive(Clone, Debug)]
pub struct CloseInfo {
    pub reason: CloseReason,
    pub error: Option<String>,
    pub detail: Option<String>,
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A connection that reached READY.
pub struct Conn {
    pub shared: Arc<ConnShared>,
    /// One permit per stream the server allows at once (its SETTINGS
    /// MAX_CONCURRENT_STREAMS, known when the connection is READY): calls
    /// that wait for one are served in turn.
    slots: Arc<tokio::sync::Semaphore>,
    transport: Transport,
    closed: watch::Receiver<Option<CloseInfo>>,
}

/// The HTTP/2 client under a connection.
enum Transport {
    H2(h2::client::SendRequest<Bytes>),
    Wire(Wire),
}

/// Why a stream failed, from either HTTP/2 client.
#[derive(Debug, thiserror::Error)]
pub enum StreamFailure {
    #[error(transparent)]
    H2(#[from] h2::Error),
    #[error(transparent)]
    Wire(#[from] StreamError),
}

impl StreamFailure {
    /// Whether the server never processed the stream: refused by GOAWAY's
    /// last-stream-id or with REFUSED_STREAM (safe to retry).
    pub fn never_processed(&self) -> bool {
        match self {
            StreamFailure::H2(e) => (e.is_go_away() && e.is_remote()) || self.refused(),
            StreamFailure::Wire(e) => e.never_processed(),
        }
    }

    fn refused(&self) -> bool {
        match self {
            StreamFailure::H2(e) => e.reason() == Some(h2::Reason::REFUSED_STREAM) && e.is_reset(),
            StreamFailure::Wire(e) => {
                *e == StreamError::Reset(crate::h2wire::ErrorCode::REFUSED_STREAM)
            }
        }
    }

    /// The failure as a gRPC status. A stream the server never processed
    /// (refused by GOAWAY's last-stream-id or REFUSED_STREAM) says so.
    pub fn status(&self, goaway: Option<super::tap::GoAway>) -> tonic::Status {
        if self.never_processed() {
            let why = match (&goaway, self.refused()) {
                (_, true) => "REFUSED_STREAM".to_string(),
                (Some(g), _) => format!("GOAWAY {} {:?}", g.code, g.debug_text()),
                (None, _) => "GOAWAY".to_string(),
            };
            return tonic::Status::unavailable(format!(
                "stream never processed by the server ({why}): safe to retry"
            ));
        }
        match self {
            StreamFailure::H2(e) => tonic::Status::unavailable(crate::event::error_chain(e)),
            StreamFailure::Wire(e) => tonic::Status::unavailable(e.to_string()),
        }
    }
}

async fn dial(addr: &Address, ctx: &ConnectCtx) -> Result<Box<dyn Io>, ConnectError> {
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
        Address::Unix(p) => Box::new(tokio::net::UnixStream::connect(p).await.map_err(tcp_err)?),
    };
    match &ctx.tls {
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

/// Connects to `addr` and waits for the server's SETTINGS, within `timeout`.
pub async fn connect(
    addr: &Address,
    ctx: &ConnectCtx,
    timeout: Duration,
) -> Result<Arc<Conn>, ConnectError> {
    let name = addr.to_string();
    let attempt = async {
        let io = dial(addr, ctx).await?;
        let id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(ConnShared::new(id, name.clone().into()));
        let injector = Injector::new();
        let tap = ClientTap::new(shared.clone(), ctx.events.clone(), ctx.frames);
        let io = FrameIo::with_injector(io, Role::Client, tap, &injector);
        let (closed_tx, mut closed) = watch::channel(None);
        let transport = if ctx.wire {
            let (wire, conn) = wire::handshake(io);
            tokio::spawn(drive(
                conn,
                shared.clone(),
                injector,
                ctx.keepalive,
                ctx.events.clone(),
                closed_tx,
            ));
            Transport::Wire(wire)
        } else {
            // h2 directly, not hyper's client: no task and no channel hop
            // per request (hyper spawns one per stream). Windows as hyper's
            // client sets them.
            let (send, conn) = h2::client::Builder::new()
                .initial_window_size(2 * 1024 * 1024)
                .initial_connection_window_size(5 * 1024 * 1024)
                .max_concurrent_reset_streams(1024)
                .handshake::<_, Bytes>(io)
                .await
                .map_err(|source| ConnectError::Http2 {
                    addr: name.clone(),
                    source,
                })?;
            tokio::spawn(drive(
                conn,
                shared.clone(),
                injector,
                ctx.keepalive,
                ctx.events.clone(),
                closed_tx,
            ));
            Transport::H2(send)
        };
        loop {
            let notified = shared.changed.notified();
            if shared.settings_seen() {
                break;
            }
            if closed.borrow().is_some() {
                return Err(ConnectError::NoSettings {
                    addr: name.clone(),
                    first: shared.first_bytes(),
                });
            }
            tokio::select! {
                _ = notified => {}
                _ = closed.changed() => {}
            }
        }
        let limit = shared.max_concurrent_streams.load(Ordering::Acquire);
        let slots = if limit == u32::MAX {
            tokio::sync::Semaphore::MAX_PERMITS
        } else {
            limit as usize
        };
        Ok(Arc::new(Conn {
            shared,
            slots: Arc::new(tokio::sync::Semaphore::new(slots)),
            transport,
            closed,
        }))
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(ConnectError::Timeout {
            addr: name,
            timeout,
        }),
    }
}

fn classify<E: std::error::Error + 'static>(res: Result<(), E>, shared: &ConnShared) -> CloseInfo {
    let goaway = shared.goaway();
    match res {
        Ok(()) => CloseInfo {
            reason: if goaway.is_some() {
                CloseReason::Goaway
            } else {
                CloseReason::Eof
            },
            error: None,
            detail: goaway.map(|g| g.debug_text()).filter(|d| !d.is_empty()),
        },
        Err(e) => {
            let mut reason = if goaway.is_some() {
                CloseReason::Goaway
            } else {
                CloseReason::Error
            };
            let mut src: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(s) = src {
                if let Some(io) = s.downcast_ref::<io::Error>() {
                    if matches!(
                        io.kind(),
                        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
                    ) {
                        reason = CloseReason::Reset;
                    }
                }
                src = s.source();
            }
            CloseInfo {
                reason,
                error: Some(crate::event::error_chain(&e)),
                detail: goaway.map(|g| g.debug_text()).filter(|d| !d.is_empty()),
            }
        }
    }
}

/// Runs the connection until it ends; sends keepalive pings as gRFC A8 says:
/// after `time` without reading anything (and, unless permitted, only while
/// a stream is open), and closes when nothing is read `timeout` after one.
async fn drive<C, E>(
    conn: C,
    shared: Arc<ConnShared>,
    injector: Injector,
    ka: KeepaliveConfig,
    events: EventSink,
    closed_tx: watch::Sender<Option<CloseInfo>>,
) where
    C: Future<Output = Result<(), E>>,
    E: std::error::Error + 'static,
{
    tokio::pin!(conn);
    let start = Instant::now();
    let mut ka_next = ka.time.map(|t| start + t);
    let mut ping_sent: Option<Instant> = None;
    let info = loop {
        tokio::select! {
            res = conn.as_mut() => break classify(res, &shared),
            _ = sleep_until_opt(ka_next) => {
                let (Some(time), now) = (ka.time, Instant::now()) else { continue };
                let last_read = Instant::from_std(shared.last_read());
                match ping_sent {
                    Some(sent) if last_read >= sent => {
                        ping_sent = None;
                        ka_next = Some(last_read + time);
                    }
                    Some(sent) if now >= sent + ka.timeout => {
                        break CloseInfo {
                            reason: CloseReason::KeepaliveTimeout,
                            error: None,
                            detail: Some(format!(
                                "keepalive ping not acknowledged within {}",
                                humantime::format_duration(ka.timeout)
                            )),
                        };
                    }
                    Some(sent) => ka_next = Some(sent + ka.timeout),
                    None if now < last_read + time => ka_next = Some(last_read + time),
                    None if shared.active_streams() == 0 && !ka.permit_without_stream => {
                        // Dormant until a stream is open (A8).
                        ka_next = Some(now + time.min(Duration::from_millis(250)));
                    }
                    None => {
                        injector.inject(ControlFrame::Ping { ack: false, data: KEEPALIVE_PING }.encode());
                        ping_sent = Some(now);
                        // Look again after min(time, timeout), as grpc-go:
                        // an early ack restarts the keepalive clock then.
                        ka_next = Some(now + time.min(ka.timeout));
                    }
                }
            }
        }
    };
    shared.draining.store(true, Ordering::Release);
    events.emit(
        Some(shared.id),
        Some(shared.addr.clone()),
        EventKind::Closed {
            reason: info.reason,
            error: info.error.clone(),
            detail: info.detail.clone(),
            lifetime_ms: start.elapsed().as_secs_f64() * 1e3,
            streams: shared.total_streams(),
        },
    );
    let _ = closed_tx.send(Some(info));
    shared.changed.notify_waiters();
}

impl Conn {
    /// True while new streams may start here: READY, no GOAWAY, not closed.
    pub fn usable(&self) -> bool {
        !self.shared.is_draining() && self.closed.borrow().is_none()
    }

    /// Resolves when the connection has ended.
    pub async fn closed(&self) -> CloseInfo {
        let mut rx = self.closed.clone();
        loop {
            if let Some(info) = rx.borrow_and_update().clone() {
                return info;
            }
            if rx.changed().await.is_err() {
                return CloseInfo {
                    reason: CloseReason::Local,
                    error: None,
                    detail: None,
                };
            }
        }
    }

    /// A stream slot under the server's MAX_CONCURRENT_STREAMS, first come
    /// first served; `None` when none was free at once (then `wait` one).
    pub fn try_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }

    /// Whether a stream could start here without waiting for a slot.
    pub fn has_free_slot(&self) -> bool {
        self.slots.available_permits() > 0
    }

    /// Waits for a stream slot, in turn.
    pub async fn wait_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.slots.clone().acquire_owned().await.ok()
    }

    /// The connection's own HTTP/2 client, when it runs on one.
    pub fn wire(&self) -> Option<&Wire> {
        match &self.transport {
            Transport::Wire(w) => Some(w),
            Transport::H2(_) => None,
        }
    }

    /// Counts a stream as open on this connection while the guard lives.
    pub fn guard(&self) -> StreamGuard {
        StreamGuard::new(self.shared.clone())
    }

    /// Starts a stream with these headers on an h2 connection; the stream
    /// counts as open until the guard is dropped.
    pub async fn start(
        &self,
        head: http::Request<()>,
        end_of_stream: bool,
    ) -> Result<
        (
            h2::client::ResponseFuture,
            h2::SendStream<Bytes>,
            StreamGuard,
        ),
        StreamFailure,
    > {
        let Transport::H2(send) = &self.transport else {
            return Err(StreamError::Lost("not an h2 connection".into()).into());
        };
        let guard = StreamGuard::new(self.shared.clone());
        let mut send = send.clone().ready().await?;
        let (resp, stream) = send.send_request(head, end_of_stream)?;
        Ok((resp, stream, guard))
    }

    /// Sends a request (for tower clients: probes, reflection, health
    /// checks); its body is piped by a task of its own. The stream counts as
    /// open until the response body is dropped.
    pub fn send(
        &self,
        req: http::Request<tonic::body::Body>,
    ) -> impl Future<Output = Result<http::Response<StreamBody>, StreamFailure>> + Send + 'static
    {
        let guard = StreamGuard::new(self.shared.clone());
        let transport = match &self.transport {
            Transport::H2(s) => Transport::H2(s.clone()),
            Transport::Wire(w) => Transport::Wire(w.clone()),
        };
        async move {
            let (parts, body) = req.into_parts();
            let eos = http_body::Body::is_end_stream(&body);
            match transport {
                Transport::H2(send) => {
                    let mut send = send.ready().await?;
                    let (resp, stream) =
                        send.send_request(http::Request::from_parts(parts, ()), eos)?;
                    if !eos {
                        tokio::spawn(pipe(body, stream));
                    }
                    let resp = resp.await?;
                    Ok(resp.map(|recv| {
                        crate::body::Guarded::new(
                            RecvBody::H2 {
                                recv,
                                data_done: false,
                            },
                            guard,
                        )
                    }))
                }
                Transport::Wire(wire) => {
                    let uri = &parts.uri;
                    let block = wire::hpack::request_block(
                        uri.scheme_str() == Some("https"),
                        uri.authority().map_or("", |a| a.as_str()).as_bytes(),
                        uri.path_and_query().map_or("/", |p| p.as_str()).as_bytes(),
                        &parts.headers,
                    );
                    let stream = Arc::new(wire.open(Block::Raw(block), true, None, eos)?);
                    if !eos {
                        tokio::spawn(pipe_wire(body, stream.clone()));
                    }
                    let (status, headers) = std::future::poll_fn(|cx| stream.poll_head(cx)).await?;
                    let mut resp = http::Response::new(crate::body::Guarded::new(
                        RecvBody::Wire {
                            stream,
                            data_done: false,
                        },
                        guard,
                    ));
                    *resp.status_mut() =
                        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
                    *resp.headers_mut() = headers;
                    Ok(resp)
                }
            }
        }
    }
}

/// Copies a request body onto a wire stream.
async fn pipe_wire(mut body: tonic::body::Body, stream: Arc<WireStream>) {
    use http_body_util::BodyExt;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            // Dropping the last handle resets the stream.
            return;
        };
        if let Ok(data) = frame.into_data() {
            if stream.send(data, false).is_err() {
                return;
            }
        }
    }
    let _ = stream.send(Bytes::new(), true);
}

/// Copies a request body onto its stream.
async fn pipe(mut body: tonic::body::Body, mut stream: h2::SendStream<Bytes>) {
    use http_body_util::BodyExt;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(f) => f,
            Err(_) => {
                stream.send_reset(h2::Reason::CANCEL);
                return;
            }
        };
        match frame.into_data() {
            Ok(data) => {
                if stream.send_data(data, false).is_err() {
                    return;
                }
            }
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    let _ = stream.send_trailers(trailers);
                }
                return;
            }
        }
    }
    let _ = stream.send_data(Bytes::new(), true);
}

/// A response body: DATA (its flow-control capacity given back as it is
/// read), then trailers.
pub enum RecvBody {
    H2 {
        recv: h2::RecvStream,
        data_done: bool,
    },
    Wire {
        stream: Arc<WireStream>,
        data_done: bool,
    },
}

/// Where a response body's DATA and trailers come from.
trait BodySource {
    type Error: Into<StreamFailure>;
    fn poll_data(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Bytes, Self::Error>>>;
    fn poll_trailers(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Option<http::HeaderMap>, Self::Error>>;
}

impl BodySource for h2::RecvStream {
    type Error = h2::Error;
    fn poll_data(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Bytes, h2::Error>>> {
        let p = h2::RecvStream::poll_data(self, cx);
        if let std::task::Poll::Ready(Some(Ok(b))) = &p {
            let _ = self.flow_control().release_capacity(b.len());
        }
        p
    }
    fn poll_trailers(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Option<http::HeaderMap>, h2::Error>> {
        h2::RecvStream::poll_trailers(self, cx)
    }
}

impl BodySource for Arc<WireStream> {
    type Error = StreamError;
    fn poll_data(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Bytes, StreamError>>> {
        WireStream::poll_data(self, cx)
    }
    fn poll_trailers(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Option<http::HeaderMap>, StreamError>> {
        WireStream::poll_trailers(self, cx)
    }
}

/// DATA until there is no more, then the trailers.
fn poll_body<S: BodySource>(
    src: &mut S,
    data_done: &mut bool,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, StreamFailure>>> {
    use std::task::Poll;
    if !*data_done {
        match src.poll_data(cx) {
            Poll::Ready(Some(Ok(b))) => return Poll::Ready(Some(Ok(http_body::Frame::data(b)))),
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => *data_done = true,
            Poll::Pending => return Poll::Pending,
        }
    }
    match src.poll_trailers(cx) {
        Poll::Ready(Ok(Some(t))) => Poll::Ready(Some(Ok(http_body::Frame::trailers(t)))),
        Poll::Ready(Ok(None)) => Poll::Ready(None),
        Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e.into()))),
        Poll::Pending => Poll::Pending,
    }
}

impl http_body::Body for RecvBody {
    type Data = Bytes;
    type Error = StreamFailure;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, StreamFailure>>> {
        match self.get_mut() {
            RecvBody::H2 { recv, data_done } => poll_body(recv, data_done, cx),
            RecvBody::Wire { stream, data_done } => poll_body(stream, data_done, cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RecvBody::H2 { recv, .. } => recv.is_end_stream(),
            RecvBody::Wire { stream, .. } => stream.is_end(),
        }
    }
}

/// Counts one stream of a connection as open while it lives.
pub struct StreamGuard(Arc<ConnShared>);

impl StreamGuard {
    fn new(s: Arc<ConnShared>) -> Self {
        s.stream_started();
        Self(s)
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.stream_ended();
    }
}

/// A response body that keeps its stream counted as open until dropped.
pub type StreamBody = crate::body::Guarded<RecvBody, StreamGuard>;
