//! A response body read from grpcdoc's HTTP/2 client: DATA (its
//! flow-control capacity given back as it is read), then the trailers; and
//! the guard that counts its stream as open until the body is dropped.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;

use super::tap::ConnShared;
use super::wire::{StreamError, WireStream};

/// The body of one response.
pub struct ResponseBody {
    stream: Arc<WireStream>,
    data_done: bool,
}

impl ResponseBody {
    pub fn new(stream: Arc<WireStream>) -> Self {
        Self {
            stream,
            data_done: false,
        }
    }
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = StreamError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, StreamError>>> {
        let this = self.get_mut();
        if !this.data_done {
            match this.stream.poll_data(cx) {
                Poll::Ready(Some(Ok(b))) => {
                    return Poll::Ready(Some(Ok(http_body::Frame::data(b))))
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => this.data_done = true,
                Poll::Pending => return Poll::Pending,
            }
        }
        match this.stream.poll_trailers(cx) {
            Poll::Ready(Ok(Some(t))) => Poll::Ready(Some(Ok(http_body::Frame::trailers(t)))),
            Poll::Ready(Ok(None)) => Poll::Ready(None),
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.stream.is_end()
    }
}

/// Counts one stream of a connection as open while it lives.
pub struct StreamGuard(Arc<ConnShared>);

impl StreamGuard {
    pub fn new(s: Arc<ConnShared>) -> Self {
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
pub type StreamBody = crate::body::Guarded<ResponseBody, StreamGuard>;
