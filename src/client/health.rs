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
use super::wire::StreamError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    Serving,
    /// NOT_SERVING, SERVICE_UNKNOWN or UNKNOWN, by name.
    NotServing(String),
    /// The server has no health service: taken as serving.
    Unimplemented,
    /// The Watch stream ended with this status.
    Ended(String),
}

/// Sends every request on one connection (scheme and authority filled in).
#[derive(Clone)]
pub struct ConnService {
    pub conn: Arc<Conn>,
    pub scheme: http::uri::Scheme,
    pub authority: http::uri::Authority,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl tower_service::Service<http::Request<tonic::body::Body>> for ConnService {
    type Response = http::Response<StreamBody>;
    type Error = StreamError;
    type Future = BoxFuture<Result<Self::Response, StreamError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), StreamError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: http::Request<tonic::body::Body>) -> Self::Future {
        super::conn::set_origin(&mut req, &self.scheme, &self.authority);
        Box::pin(self.conn.send(req))
    }
}

/// Watches `service` on `conn` and reports each status change.
pub fn watch(svc: ConnService, service: String) -> mpsc::Receiver<Health> {
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        let mut client = HealthClient::new(svc);
        let mut stream = match client.watch(HealthCheckRequest { service }).await {
            Ok(s) => s.into_inner(),
            Err(s) if s.code() == tonic::Code::Unimplemented => {
                let _ = tx.send(Health::Unimplemented).await;
                return;
            }
            Err(s) => {
                let _ = tx
                    .send(Health::Ended(format!("{:?}: {}", s.code(), s.message())))
                    .await;
                return;
            }
        };
        loop {
            let h = match stream.message().await {
                Ok(Some(r)) => match r.status() {
                    ServingStatus::Serving => Health::Serving,
                    other => Health::NotServing(other.as_str_name().to_string()),
                },
                Ok(None) => Health::Ended("stream ended".into()),
                Err(s) => Health::Ended(format!("{:?}: {}", s.code(), s.message())),
            };
            let end = matches!(h, Health::Ended(_));
            if tx.send(h).await.is_err() || end {
                return;
            }
        }
    });
    rx
}
