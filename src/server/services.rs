//! The built-in server's services: `grpcdoc.echo.v1.Echo`, whose requests ask
//! for the behaviour a test needs, and `helloworld.Greeter`.
//!
//! A handler delay comes from, in order: the request's `delay` field, the
//! `x-delay-ms` metadata (as the grpc-go and C-core peers take it), the
//! server's `--delay`. A delay longer than the call's `grpc-timeout` ends the
//! call with DEADLINE_EXCEEDED at the deadline, like a real handler would.

use std::pin::Pin;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response, Status, Streaming};

use crate::pb::echo::echo_server::Echo;
use crate::pb::echo::{EchoRequest, EchoResponse};
use crate::pb::helloworld::greeter_server::Greeter;
use crate::pb::helloworld::{HelloReply, HelloRequest};

/// Which connection of the server a request came in on (a request extension).
#[derive(Clone, Copy, Debug)]
pub struct ConnId(pub u64);

/// The handler delay of calls that ask for none, shared by the services and
/// the server's handle so that it can change while the server runs.
#[derive(Clone, Debug, Default)]
pub struct DefaultDelay(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl DefaultDelay {
    pub fn new(d: Duration) -> Self {
        let this = Self::default();
        this.set(d);
        this
    }

    pub fn get(&self) -> Duration {
        Duration::from_nanos(self.0.load(std::sync::atomic::Ordering::Relaxed))
    }

    pub fn set(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.0.store(ns, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Responses of a server stream when the request does not say.
const DEFAULT_STREAM_COUNT: u32 = 5;
const DEFAULT_STREAM_INTERVAL: Duration = Duration::from_millis(100);
/// The largest `response_size` served; a client controls it, so it is capped.
pub const MAX_RESPONSE_SIZE: u32 = 16 << 20;

#[derive(Clone, Debug)]
pub struct EchoService {
    pub default_delay: DefaultDelay,
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<EchoResponse, Status>> + Send>>;

fn proto_duration(d: Option<&prost_types::Duration>) -> Option<Duration> {
    let d = d?;
    let secs = u64::try_from(d.seconds).ok()?;
    let nanos = u32::try_from(d.nanos).ok()?;
    Some(Duration::new(secs, nanos.min(999_999_999)))
}

fn metadata_delay(md: &MetadataMap) -> Option<Duration> {
    let ms: u64 = md.get("x-delay-ms")?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_millis(ms))
}

/// The `grpc-timeout` header.
pub fn grpc_timeout(md: &MetadataMap) -> Option<Duration> {
    crate::grpc::parse_timeout(md.get("grpc-timeout")?.to_str().ok()?)
}

/// Sleeps `delay`, or fails with DEADLINE_EXCEEDED at `deadline` if that
/// comes first.
async fn wait(delay: Duration, deadline: Option<tokio::time::Instant>) -> Result<(), Status> {
    if delay.is_zero() {
        return Ok(());
    }
    let until = tokio::time::Instant::now() + delay;
    match deadline {
        Some(d) if d < until => {
            tokio::time::sleep_until(d).await;
            Err(Status::deadline_exceeded(
                "the call's deadline passed during the requested handler delay",
            ))
        }
        _ => {
            tokio::time::sleep_until(until).await;
            Ok(())
        }
    }
}

struct CallCtx {
    conn: u64,
    deadline: Option<tokio::time::Instant>,
    metadata_delay: Option<Duration>,
    default_delay: Duration,
}

impl CallCtx {
    fn of<T>(req: &Request<T>, default_delay: Duration) -> Self {
        Self {
            conn: req.extensions().get::<ConnId>().map_or(0, |c| c.0),
            deadline: grpc_timeout(req.metadata()).map(|t| tokio::time::Instant::now() + t),
            metadata_delay: metadata_delay(req.metadata()),
            default_delay,
        }
    }

    fn delay_for(&self, req: &EchoRequest) -> Duration {
        proto_duration(req.delay.as_ref())
            .or(self.metadata_delay)
            .unwrap_or(self.default_delay)
    }

    fn respond(&self, req: &EchoRequest, received: u32) -> Result<EchoResponse, Status> {
        if req.status_code != 0 {
            return Err(Status::new(
                Code::from_i32(req.status_code),
                req.status_message.clone(),
            ));
        }
        if req.response_size > MAX_RESPONSE_SIZE {
            return Err(Status::invalid_argument(format!(
                "response_size {} is above the limit of {MAX_RESPONSE_SIZE} bytes",
                req.response_size
            )));
        }
        Ok(EchoResponse {
            message: req.message.clone(),
            payload: vec![0x61; req.response_size as usize],
            connection_id: self.conn,
            received,
        })
    }
}

#[tonic::async_trait]
impl Echo for EchoService {
    async fn unary(&self, req: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        let ctx = CallCtx::of(&req, self.default_delay.get());
        let req = req.into_inner();
        wait(ctx.delay_for(&req), ctx.deadline).await?;
        ctx.respond(&req, 1).map(Response::new)
    }

    type ServerStreamStream = ResponseStream;

    async fn server_stream(
        &self,
        req: Request<EchoRequest>,
    ) -> Result<Response<Self::ServerStreamStream>, Status> {
        let ctx = CallCtx::of(&req, self.default_delay.get());
        let req = req.into_inner();
        let count = match req.stream_count {
            0 => DEFAULT_STREAM_COUNT,
            n => n,
        };
        let interval =
            proto_duration(req.stream_interval.as_ref()).unwrap_or(DEFAULT_STREAM_INTERVAL);
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            if let Err(s) = wait(ctx.delay_for(&req), ctx.deadline).await {
                let _ = tx.send(Err(s)).await;
                return;
            }
            for i in 0..count {
                if i > 0 {
                    if let Err(s) = wait(interval, ctx.deadline).await {
                        let _ = tx.send(Err(s)).await;
                        return;
                    }
                }
                let r = ctx.respond(&req, i + 1);
                let failed = r.is_err();
                if tx.send(r).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn client_stream(
        &self,
        req: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoResponse>, Status> {
        let ctx = CallCtx::of(&req, self.default_delay.get());
        let mut stream = req.into_inner();
        let mut last = EchoRequest::default();
        let mut received = 0u32;
        while let Some(msg) = stream.next().await {
            last = msg?;
            received += 1;
        }
        wait(ctx.delay_for(&last), ctx.deadline).await?;
        ctx.respond(&last, received).map(Response::new)
    }

    type BidiStreamStream = ResponseStream;

    async fn bidi_stream(
        &self,
        req: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<Self::BidiStreamStream>, Status> {
        let ctx = CallCtx::of(&req, self.default_delay.get());
        let mut stream = req.into_inner();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let mut received = 0u32;
            while let Some(msg) = stream.next().await {
                let r = match msg {
                    Ok(m) => {
                        received += 1;
                        match wait(ctx.delay_for(&m), ctx.deadline).await {
                            Ok(()) => ctx.respond(&m, received),
                            Err(s) => Err(s),
                        }
                    }
                    Err(s) => Err(s),
                };
                let failed = r.is_err();
                if tx.send(r).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

#[derive(Clone, Debug)]
pub struct GreeterService {
    pub default_delay: DefaultDelay,
}

#[tonic::async_trait]
impl Greeter for GreeterService {
    async fn say_hello(&self, req: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        let deadline = grpc_timeout(req.metadata()).map(|t| tokio::time::Instant::now() + t);
        let delay = metadata_delay(req.metadata()).unwrap_or(self.default_delay.get());
        wait(delay, deadline).await?;
        Ok(Response::new(HelloReply {
            message: format!("Hello {}", req.into_inner().name),
        }))
    }
}
