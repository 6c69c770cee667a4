//! grpcdoc's own HTTP/2 client connection, for load: what a call costs is
//! one lock, its frames appended to the connection's buffer (the request
//! head HPACK-encoded once per connection, a few bytes a call after the
//! first), and one wake when its response ends; the driver task writes
//! every queued frame in one write and reads responses in big reads. It
//! speaks the same wire as h2 (flow control both ways, SETTINGS, PING,
//! GOAWAY, RST_STREAM, CONTINUATION) and sits on the same [`FrameIo`] tap,
//! so events, keepalive and the GOAWAY bookkeeping are the same.
//!
//! [`FrameIo`]: crate::h2wire::FrameIo

mod driver;
pub mod hpack;
mod state;

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use http::HeaderMap;
use tokio::io::{AsyncRead, AsyncWrite};

pub use driver::{Ending, WireError};
pub use hpack::RequestHead;
use state::State;
pub use state::{Block, Foreign, MessageCounter, StreamError, FOREIGN_BODY_MAX};

pub(crate) struct Shared {
    state: Mutex<State>,
    driver: AtomicWaker,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes the driver when frames were queued since it last looked.
    fn kick(&self, mut st: MutexGuard<'_, State>) {
        let wake = !st.out.is_empty() && !st.kicked;
        st.kicked |= wake;
        drop(st);
        if wake {
            self.driver.wake();
        }
    }
}

/// A handle to the connection: opens streams. When the last one is
/// dropped the connection closes once its streams are done.
#[derive(Clone)]
pub struct Wire(Arc<Handle>);

struct Handle(Arc<Shared>);

impl Drop for Handle {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.abandoned = true;
        drop(st);
        self.0.driver.wake();
    }
}

/// Starts a connection over `io` (the preface and SETTINGS go first);
/// returns the handle and the future that runs it.
pub fn handshake<T>(
    io: T,
) -> (
    Wire,
    impl std::future::Future<Output = Result<Ending, WireError>>,
)
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let shared = Arc::new(Shared {
        state: Mutex::new(State::new()),
        driver: AtomicWaker::new(),
    });
    let wire = Wire(Arc::new(Handle(shared.clone())));
    (wire, driver::run(io, shared))
}

/// How a load call's stream ended.
#[derive(Debug)]
pub struct Finished {
    pub status: Option<u16>,
    pub grpc_status: Option<i32>,
    pub grpc_message: Option<String>,
    pub messages: u64,
    pub error: Option<StreamError>,
    /// The response was not gRPC.
    pub foreign: Option<Box<Foreign>>,
}

impl Wire {
    /// Closes the connection now: open streams fail, our GOAWAY goes out,
    /// then the socket closes.
    pub fn close(&self) {
        let shared = &self.0 .0;
        let mut st = shared.lock();
        st.close_now = true;
        drop(st);
        shared.driver.wake();
    }

    /// Opens a stream: its headers, and `data` (with END_STREAM when
    /// `end`), go out with the driver's next write. `keep`: keep the
    /// response's headers and DATA (generic requests) instead of counting
    /// its messages (load calls).
    pub fn open(
        &self,
        block: Block<'_>,
        keep: bool,
        data: Option<Bytes>,
        end: bool,
    ) -> Result<WireStream, StreamError> {
        let shared = &self.0 .0;
        let mut st = shared.lock();
        let id = st.open(block, keep, data, end)?;
        shared.kick(st);
        Ok(WireStream {
            shared: shared.clone(),
            id,
        })
    }
}

/// One stream. Dropped before both sides ended, it is reset (CANCEL).
pub struct WireStream {
    shared: Arc<Shared>,
    id: u32,
}

impl WireStream {
    /// Sends DATA (within flow control, queued until the windows allow).
    /// Fails when the stream or the connection has ended.
    pub fn send(&self, data: Bytes, end: bool) -> Result<(), StreamError> {
        let mut st = self.shared.lock();
        match st.streams.get(&self.id).map(|s| &s.resp.end) {
            Some(None) => {}
            Some(Some(Err(e))) => return Err(e.clone()),
            Some(Some(Ok(()))) => return Ok(()),
            None => {
                let why = st.ended.clone().unwrap_or_else(|| "stream closed".into());
                return Err(StreamError::Lost(why));
            }
        }
        st.send_data(self.id, data, end);
        self.shared.kick(st);
        Ok(())
    }

    /// Waits for the end of a load call's stream; the stream is then done.
    pub fn poll_finish(&self, cx: &mut Context<'_>) -> Poll<Finished> {
        let mut st = self.shared.lock();
        let lost = || Finished {
            status: None,
            grpc_status: None,
            grpc_message: None,
            messages: 0,
            error: Some(StreamError::Lost("stream closed".into())),
            foreign: None,
        };
        let Some(s) = st.streams.get_mut(&self.id) else {
            return Poll::Ready(lost());
        };
        if s.resp.end.is_none() {
            s.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let r = match st.drop_stream(self.id) {
            Some(s) => s.resp,
            None => return Poll::Ready(lost()),
        };
        self.shared.kick(st);
        Poll::Ready(Finished {
            status: r.status,
            grpc_status: r.grpc_status,
            grpc_message: r.grpc_message,
            messages: r.messages.count,
            error: r.end.and_then(|e| e.err()),
            foreign: r.foreign,
        })
    }

    /// Waits for the response head of a generic request.
    pub fn poll_head(&self, cx: &mut Context<'_>) -> Poll<Result<(u16, HeaderMap), StreamError>> {
        let mut st = self.shared.lock();
        let Some(s) = st.streams.get_mut(&self.id) else {
            return Poll::Ready(Err(StreamError::Lost("stream closed".into())));
        };
        let head = s.resp.kept.as_mut().and_then(|k| k.headers.take());
        if let (Some(code), Some(h)) = (s.resp.status, head) {
            return Poll::Ready(Ok((code, h)));
        }
        if let Some(Err(e)) = &s.resp.end {
            return Poll::Ready(Err(e.clone()));
        }
        if s.resp.end.is_some() {
            return Poll::Ready(Err(StreamError::Lost("the response has no head".into())));
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// A generic request's response that is not gRPC, once its first body
    /// bytes (or its end) arrived; `None` for a gRPC response.
    pub fn poll_foreign(&self, cx: &mut Context<'_>) -> Poll<Option<Box<Foreign>>> {
        let mut st = self.shared.lock();
        let Some(s) = st.streams.get_mut(&self.id) else {
            return Poll::Ready(None);
        };
        let Some(f) = &s.resp.foreign else {
            return Poll::Ready(None);
        };
        if s.resp.end.is_some() || f.body.len() >= FOREIGN_BODY_MAX {
            return Poll::Ready(Some(f.clone()));
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// The next DATA of a generic request's response; its flow-control
    /// capacity goes back to the server as it is taken.
    pub fn poll_data(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, StreamError>>> {
        let mut st = self.shared.lock();
        let Some(s) = st.streams.get_mut(&self.id) else {
            return Poll::Ready(None);
        };
        if let Some(b) = s.resp.kept.as_mut().and_then(|k| k.data.pop_front()) {
            st.release(self.id, b.len() as u32);
            self.shared.kick(st);
            return Poll::Ready(Some(Ok(b)));
        }
        match &s.resp.end {
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
            Some(Ok(())) => Poll::Ready(None),
            Some(Err(e)) => Poll::Ready(Some(Err(e.clone()))),
        }
    }

    /// The trailers, once the DATA is read.
    pub fn poll_trailers(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<HeaderMap>, StreamError>> {
        let mut st = self.shared.lock();
        let Some(s) = st.streams.get_mut(&self.id) else {
            return Poll::Ready(Ok(None));
        };
        match &s.resp.end {
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
            Some(Ok(())) => Poll::Ready(Ok(s.resp.kept.as_mut().and_then(|k| k.trailers.take()))),
            Some(Err(e)) => Poll::Ready(Err(e.clone())),
        }
    }

    /// Whether the response has ended and all its DATA was taken.
    pub fn is_end(&self) -> bool {
        let st = self.shared.lock();
        st.streams.get(&self.id).is_none_or(|s| {
            s.resp.end.is_some()
                && s.resp
                    .kept
                    .as_ref()
                    .is_none_or(|k| k.data.is_empty() && k.trailers.is_none())
        })
    }
}

impl Drop for WireStream {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.drop_stream(self.id);
        self.shared.kick(st);
    }
}

#[cfg(test)]
mod tests;
