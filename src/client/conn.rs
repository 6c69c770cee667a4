//! One client HTTP/2 connection on grpcdoc's own client ([`super::wire`]):
//! dial, the [`FrameIo`] tap, READY when the server's SETTINGS arrive; a
//! task runs it to its end ([`super::keepalive`]). Calls open streams on it
//! within the server's MAX_CONCURRENT_STREAMS.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use super::body::{ResponseBody, StreamBody, StreamGuard};
use super::dial::{dial, ConnectError, TlsDial};
use super::keepalive::{drive, CloseInfo, KeepaliveConfig};
use super::tap::{ClientTap, ConnShared, GoAway};
use super::wire::{self, Block, StreamError, Wire, WireStream};
use crate::event::{CloseReason, EventSink, HeldSink};
use crate::h2wire::{ErrorCode, FrameIo, Injector, Role};
use crate::target::Address;

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// What every connection of a channel shares.
#[derive(Clone)]
pub struct ConnectCtx {
    pub events: EventSink,
    pub tls: TlsDial,
    pub keepalive: KeepaliveConfig,
    pub frames: bool,
    /// Write the connection's cleartext bytes to this capture.
    pub pcap: Option<Arc<crate::pcap::writer::PcapFile>>,
}

/// A connection that reached READY.
pub struct Conn {
    pub shared: Arc<ConnShared>,
    /// One permit per stream the server allows at once (its SETTINGS
    /// MAX_CONCURRENT_STREAMS, known when the connection is READY): calls
    /// that wait for one are served in turn.
    slots: Arc<tokio::sync::Semaphore>,
    wire: Wire,
    closed: watch::Receiver<Option<CloseInfo>>,
    events: HeldSink,
    injector: Injector,
}

/// Sets a request's scheme and authority (the HTTP/2 client needs
/// both; tonic gives only the path).
pub fn set_origin<B>(
    req: &mut http::Request<B>,
    scheme: &http::uri::Scheme,
    authority: &http::uri::Authority,
) {
    let mut parts = req.uri().clone().into_parts();
    parts.scheme = Some(scheme.clone());
    parts.authority = Some(authority.clone());
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    if let Ok(uri) = http::Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
}

pub use crate::grpc::NEVER_PROCESSED;

/// The call failed before the server processed it: safe to retry anywhere.
pub fn never_processed(s: &tonic::Status) -> bool {
    s.code() == tonic::Code::Unavailable && s.message().starts_with(NEVER_PROCESSED)
}

/// A failed stream as a gRPC status. A stream the server never processed
/// (refused by GOAWAY's last-stream-id or REFUSED_STREAM) says so.
pub fn stream_status(e: &StreamError, goaway: Option<GoAway>) -> tonic::Status {
    if e.never_processed() {
        let why = match (&goaway, e) {
            (_, StreamError::Reset(ErrorCode::REFUSED_STREAM)) => "REFUSED_STREAM".to_string(),
            (_, StreamError::Exhausted) => "stream ids exhausted".to_string(),
            (Some(g), _) => format!("GOAWAY {} \"{}\"", g.code, g.debug_text()),
            (None, _) => "GOAWAY".to_string(),
        };
        return tonic::Status::unavailable(format!("{NEVER_PROCESSED} ({why}): safe to retry"));
    }
    if let StreamError::Foreign(f) = e {
        let (code, message) =
            crate::grpc::foreign_status(f.status, f.content_type.as_deref(), &f.body);
        return tonic::Status::new(code, message);
    }
    if let StreamError::Reset(code) = e {
        let (code, message) = crate::grpc::reset_status(*code);
        return tonic::Status::new(code, message);
    }
    tonic::Status::unavailable(e.to_string())
}

/// Connects to `addr` and waits for the server's SETTINGS, within `timeout`.
/// The connection's events go to `events`, held until the caller has
/// reported the attempt and releases them ([`HeldSink::release`]).
pub async fn connect(
    addr: &Address,
    ctx: &ConnectCtx,
    timeout: Duration,
    events: HeldSink,
) -> Result<Arc<Conn>, ConnectError> {
    let name = addr.to_string();
    let attempt = async {
        let mut io = dial(addr, &ctx.tls).await?;
        if let Some(file) = &ctx.pcap {
            let server = match addr {
                Address::Tcp(a) => *a,
                Address::Unix(_) => std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            };
            let conn = file.connection(None, server);
            io = Box::new(crate::pcap::writer::Recorded::new(io, conn));
        }
        establish(io, name.clone(), ctx, events).await
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(r) => r,
        // The attempt's handle is gone: its connection closes as grpcdoc's.
        Err(_) => Err(ConnectError::Timeout {
            addr: name,
            timeout,
        }),
    }
}

/// Starts HTTP/2 over a dialed byte stream (`name`: its address) and waits
/// for the server's SETTINGS; the caller bounds the wait.
pub async fn establish(
    io: Box<dyn super::dial::Io>,
    name: String,
    ctx: &ConnectCtx,
    events: HeldSink,
) -> Result<Arc<Conn>, ConnectError> {
    let id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
    let shared = Arc::new(ConnShared::new(id, name.clone().into()));
    let injector = Injector::new();
    let tap = ClientTap::new(shared.clone(), events.clone(), ctx.frames);
    let io = FrameIo::with_injector(io, Role::Client, tap, &injector);
    let (closed_tx, mut closed) = watch::channel(None);
    let (wire, conn) = wire::handshake(io);
    tokio::spawn(drive(
        conn,
        shared.clone(),
        injector.clone(),
        ctx.keepalive,
        events.clone(),
        closed_tx,
    ));
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
        wire,
        closed,
        events: events.clone(),
        injector,
    }))
}

impl Conn {
    /// True while new streams may start here: READY, no GOAWAY, not closed.
    pub fn usable(&self) -> bool {
        !self.shared.is_draining() && self.closed.borrow().is_none()
    }

    /// Lets the connection's own events out, after its `connect` and READY.
    pub fn release_events(&self) {
        self.events.release();
    }

    /// Sends a PING with this payload (not grpcdoc's keepalive payload) and
    /// waits up to `wait` for its ACK: the round trip, or `None`.
    pub async fn ping(&self, data: [u8; 8], wait: Duration) -> Option<Duration> {
        use crate::h2wire::ControlFrame;
        let sent = std::time::Instant::now();
        let deadline = tokio::time::Instant::now() + wait;
        self.injector
            .inject(ControlFrame::Ping { ack: false, data }.encode());
        loop {
            let notified = self.shared.acked.notified();
            if let Some(at) = self.shared.ack_of(&data).filter(|t| *t >= sent) {
                return Some(at.duration_since(sent));
            }
            if self.closed.borrow().is_some() {
                return None;
            }
            let mut closed = self.closed.clone();
            tokio::select! {
                _ = notified => {}
                _ = closed.changed() => {}
                _ = tokio::time::sleep_until(deadline) => return None,
            }
        }
    }

    /// Closes the connection now (our GOAWAY, then the socket).
    pub fn close(&self) {
        self.wire.close();
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

    /// The connection's HTTP/2 client.
    pub fn wire(&self) -> &Wire {
        &self.wire
    }

    /// Counts a stream as open on this connection while the guard lives.
    pub fn guard(&self) -> StreamGuard {
        StreamGuard::new(self.shared.clone())
    }

    /// Sends a request (for tower clients: probes, reflection, health
    /// checks); its body is piped by a task of its own. The stream counts as
    /// open until the response body is dropped.
    pub fn send(
        &self,
        req: http::Request<tonic::body::Body>,
    ) -> impl Future<Output = Result<http::Response<StreamBody>, StreamError>> + Send + 'static
    {
        let guard = self.guard();
        let wire = self.wire.clone();
        async move {
            let (parts, body) = req.into_parts();
            let eos = http_body::Body::is_end_stream(&body);
            let uri = &parts.uri;
            let block = wire::hpack::request_block(
                uri.scheme_str() == Some("https"),
                uri.authority().map_or("", |a| a.as_str()).as_bytes(),
                uri.path_and_query().map_or("/", |p| p.as_str()).as_bytes(),
                &parts.headers,
            );
            let stream = Arc::new(wire.open(Block::Raw(block), true, None, eos)?);
            if !eos {
                tokio::spawn(pipe(body, stream.clone()));
            }
            let (status, headers) = std::future::poll_fn(|cx| stream.poll_head(cx)).await?;
            // Not gRPC (an HTTP hop's error page): a status of its own, as
            // for load's calls, with the page's first bytes (waited for at
            // most a second).
            if !headers.contains_key("grpc-status") {
                let foreign = tokio::time::timeout(
                    Duration::from_secs(1),
                    std::future::poll_fn(|cx| stream.poll_foreign(cx)),
                );
                match foreign.await {
                    Ok(Some(f)) => return Err(StreamError::Foreign(f)),
                    Ok(None) => {}
                    Err(_) => {
                        return Err(StreamError::Foreign(Box::new(wire::Foreign {
                            status,
                            content_type: headers
                                .get("content-type")
                                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
                            body: Vec::new(),
                        })))
                    }
                }
            }
            let mut resp =
                http::Response::new(crate::body::Guarded::new(ResponseBody::new(stream), guard));
            *resp.status_mut() =
                http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
            *resp.headers_mut() = headers;
            Ok(resp)
        }
    }
}

/// Copies a request body onto its stream.
async fn pipe(mut body: tonic::body::Body, stream: Arc<WireStream>) {
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
