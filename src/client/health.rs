//! Client-side health checking (gRFC A17): a `grpc.health.v1.Health/Watch`
//! stream on each connection; the subchannel counts as READY only while it
//! says SERVING. A server without the health service (UNIMPLEMENTED) is
//! taken as healthy, as A17 says.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::mpsc;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use super::body::StreamBody;
use super::conn::Conn;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    Serving,
    /// NOT_SERVING, SERVICE_UNKNOWN or UNKNOWN.
    NotServing(ServingStatus),
    /// The server has no health service: taken as serving.
    Unimplemented,
    /// The Watch call failed or ended (it is started again after a
    /// backoff): the subchannel is not READY meanwhile. The status code,
    /// when a status ended it.
    Failed(Option<tonic::Code>, String),
}

impl Health {
    /// The answer as events say it.
    pub fn answer(&self) -> crate::event::HealthAnswer {
        use crate::event::HealthAnswer as A;
        match self {
            Health::Serving => A::Serving,
            Health::NotServing(ServingStatus::ServiceUnknown) => A::ServiceUnknown,
            Health::NotServing(ServingStatus::NotServing) => A::NotServing,
            Health::NotServing(_) => A::Unknown,
            Health::Unimplemented => A::Unimplemented,
            // tonic's health service answers NOT_FOUND for a service name
            // it does not know.
            Health::Failed(Some(tonic::Code::NotFound), _) => A::ServiceUnknown,
            Health::Failed(..) => A::Failed,
        }
    }
}

/// Sends every request on one connection (scheme and authority filled in).
#[derive(Clone)]
pub struct ConnService {
    pub conn: Arc<Conn>,
    pub scheme: http::uri::Scheme,
    pub authority: http::uri::Authority,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A response body whose failures are gRPC statuses.
pub type StatusBody =
    http_body_util::combinators::MapErr<StreamBody, fn(super::wire::StreamError) -> tonic::Status>;

fn body_status(e: super::wire::StreamError) -> tonic::Status {
    super::conn::stream_status(&e, None)
}

impl tower_service::Service<http::Request<tonic::body::Body>> for ConnService {
    type Response = http::Response<StatusBody>;
    /// A failed stream as the status grpc gives it (a reset's code, a
    /// GOAWAY, an HTTP error page), as for every other call.
    type Error = tonic::Status;
    type Future = BoxFuture<Result<Self::Response, tonic::Status>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), tonic::Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: http::Request<tonic::body::Body>) -> Self::Future {
        super::conn::set_origin(&mut req, &self.scheme, &self.authority);
        let conn = self.conn.clone();
        Box::pin(async move {
            let resp = conn
                .send(req)
                .await
                .map_err(|e| super::conn::stream_status(&e, conn.shared.goaway()))?;
            Ok(resp.map(|b| http_body_util::BodyExt::map_err(b, body_status as fn(_) -> _)))
        })
    }
}

/// Watches `service` on `conn` and reports each status change. A Watch
/// that fails (other than UNIMPLEMENTED) or ends reports `Failed` and is
/// started again after a backoff that a received message resets, as
/// grpc-go's health client does.
pub fn watch(
    svc: ConnService,
    service: String,
    metadata: http::HeaderMap,
    backoff: super::backoff::BackoffConfig,
) -> mpsc::Receiver<Health> {
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        let mut client = HealthClient::new(svc);
        let mut backoff = super::backoff::Backoff::new(backoff);
        let mut retry = false;
        let failed = |code: Option<tonic::Code>, what: String| {
            Health::Failed(
                code,
                format!("connection active but received health check RPC error: {what}"),
            )
        };
        loop {
            if retry {
                tokio::select! {
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                    _ = tx.closed() => return,
                }
            }
            retry = true;
            let mut req = tonic::Request::new(HealthCheckRequest {
                service: service.clone(),
            });
            *req.metadata_mut() = tonic::metadata::MetadataMap::from_headers(metadata.clone());
            let mut stream = match client.watch(req).await {
                Ok(s) => s.into_inner(),
                Err(s) if s.code() == tonic::Code::Unimplemented => {
                    let _ = tx.send(Health::Unimplemented).await;
                    return;
                }
                Err(s) => {
                    if tx
                        .send(failed(Some(s.code()), status_text(&s)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    continue;
                }
            };
            loop {
                let h = match stream.message().await {
                    Ok(Some(r)) => {
                        backoff.reset();
                        match r.status() {
                            ServingStatus::Serving => Health::Serving,
                            other => Health::NotServing(other),
                        }
                    }
                    Ok(None) => failed(None, "the Watch stream ended".into()),
                    Err(s) if s.code() == tonic::Code::Unimplemented => {
                        let _ = tx.send(Health::Unimplemented).await;
                        return;
                    }
                    Err(s) => failed(Some(s.code()), status_text(&s)),
                };
                let end = matches!(h, Health::Failed(..));
                if tx.send(h).await.is_err() {
                    return;
                }
                if end {
                    break;
                }
            }
        }
    });
    rx
}

fn status_text(s: &tonic::Status) -> String {
    format!("rpc error: code = {:?} desc = {}", s.code(), s.message())
}
