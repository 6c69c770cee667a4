//! Counts a connection's active streams for idle detection and ping
//! enforcement: a stream is active from its request until its response body
//! is dropped (finished, reset or abandoned).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::services::ConnId;
use super::tap::ConnState;
use crate::body::Guarded;

/// Marks one stream active while it lives.
struct StreamGuard(Arc<ConnState>);

impl StreamGuard {
    fn new(state: Arc<ConnState>) -> Self {
        state.stream_started();
        Self(state)
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.stream_ended();
    }
}

/// Wraps the router of one connection.
#[derive(Clone)]
pub struct CountStreams<S> {
    pub inner: S,
    pub state: Arc<ConnState>,
    pub conn: u64,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower_service::Service<http::Request<B>> for CountStreams<S>
where
    S: tower_service::Service<
        http::Request<B>,
        Response = http::Response<tonic::body::Body>,
        Error = Infallible,
    >,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        req.extensions_mut().insert(ConnId(self.conn));
        let guard = StreamGuard::new(self.state.clone());
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            Ok(resp.map(|inner| tonic::body::Body::new(Guarded::new(inner, guard))))
        })
    }
}
