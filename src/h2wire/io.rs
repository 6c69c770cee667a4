//! `FrameIo`: an `AsyncRead + AsyncWrite` wrapper around a connection's byte
//! stream that follows HTTP/2 frame boundaries in both directions.
//!
//! It reports every frame to a [`FrameHook`] (control frames with their
//! payload), lets the hook rewrite or drop control frames the wrapped endpoint
//! writes, and injects whole frames between two frames of the writer through
//! an [`Injector`] handle held by another task. On the data path it parses
//! frame headers only: bytes written by the endpoint go to the socket straight
//! from the endpoint's buffer, and only a frame the hook asked to intercept
//! (or a frame header cut in two) is copied.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::frame::{FrameHeader, FRAME_HEADER_LEN};
use super::scan::{Scanner, MAX_CONTROL_PAYLOAD};

/// Which end of the connection the wrapped endpoint is: the client writes the
/// connection preface, the server reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

/// Direction of a frame, seen from the wrapped endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    Sent,
    Received,
}

/// What to do with a frame the hook intercepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Forward,
    Drop,
    /// Send these bytes (whole frames) instead.
    Replace(Bytes),
}

/// Sees the frames of a connection; runs inside the connection's poll, so it
/// must be quick and must not block.
pub trait FrameHook: Send + Unpin + 'static {
    /// Every frame that went over the wire, in order per direction. `payload`
    /// is the (possibly truncated) payload of control frames (and of header
    /// blocks when [`FrameHook::header_blocks`]), empty otherwise.
    fn observe(&mut self, dir: Dir, header: &FrameHeader, payload: &[u8]);

    /// Whether to hold a frame the endpoint is writing until
    /// [`FrameHook::rewrite`] decides on it (asked for every frame, so it
    /// must be cheap; frames over 64 KiB are never held).
    fn intercept(&mut self, _header: &FrameHeader) -> bool {
        false
    }

    /// Decides on an intercepted frame; what is sent is then observed.
    fn rewrite(&mut self, _header: &FrameHeader, _payload: &[u8]) -> Verdict {
        Verdict::Forward
    }

    /// Whether `observe` gets the payloads of HEADERS and CONTINUATION
    /// frames (header blocks, up to 64 KiB each) too; asked once.
    fn header_blocks(&self) -> bool {
        false
    }

    /// The first raw bytes read, [`FIRST_BYTES`] at most: what a peer that
    /// does not speak HTTP/2 (a TLS server, an HTTP/1 proxy) sent instead.
    fn first_bytes(&mut self, _dir: Dir, _bytes: &[u8]) {}
}

/// How many raw bytes of the received direction [`FrameHook::first_bytes`]
/// is shown.
pub const FIRST_BYTES: usize = 9;

/// A hook that sees nothing: FrameIo as a plain pass-through.
impl FrameHook for () {
    fn observe(&mut self, _: Dir, _: &FrameHeader, _: &[u8]) {}
}

#[derive(Default)]
struct Shared {
    queue: Mutex<VecDeque<Bytes>>,
    queued: AtomicBool,
    close: AtomicBool,
    closed: AtomicBool,
    waker: AtomicWaker,
}

/// Handle to add frames to a connection from outside its task.
#[derive(Clone)]
pub struct Injector(Arc<Shared>);

impl Default for Injector {
    fn default() -> Self {
        Self::new()
    }
}

impl Injector {
    /// A handle to give to [`FrameIo::with_injector`] (and to the hook, which
    /// may then inject frames itself).
    pub fn new() -> Self {
        Self(Arc::default())
    }

    /// Queues whole frames to be written at the next frame boundary of the
    /// writer, and wakes the connection so they go out even when it is idle.
    pub fn inject(&self, frames: Bytes) {
        if let Ok(mut q) = self.0.queue.lock() {
            q.push_back(frames);
            self.0.queued.store(true, Ordering::Release);
        }
        self.0.waker.wake();
    }

    /// Once everything queued has been written, shut the socket down and end
    /// the stream for the endpoint (reads see EOF, writes fail).
    pub fn close_after_flush(&self) {
        self.0.close.store(true, Ordering::Release);
        self.0.waker.wake();
    }

    /// True once the socket was shut down by [`Injector::close_after_flush`].
    pub fn is_closed(&self) -> bool {
        self.0.closed.load(Ordering::Acquire)
    }
}

/// Frames of an intercepted frame being collected.
struct Absorb {
    header: FrameHeader,
    bytes: Vec<u8>,
}

enum Plan {
    /// Write this many bytes straight from the endpoint's buffer.
    Direct(usize),
    /// A frame header cut by the end of the buffer: copy it and wait.
    Hold,
    /// The next frame is to be intercepted.
    Intercept(FrameHeader),
}

pub struct FrameIo<T, H> {
    inner: T,
    hook: H,
    rx: Scanner,
    tx: Scanner,
    held: [u8; FRAME_HEADER_LEN],
    held_len: usize,
    /// Raw bytes read so far, up to FIRST_BYTES.
    rx_first: usize,
    absorb: Option<Absorb>,
    pending: BytesMut,
    shared: Arc<Shared>,
}

impl<T, H: FrameHook> FrameIo<T, H> {
    pub fn new(inner: T, role: Role, hook: H) -> (Self, Injector) {
        let injector = Injector::new();
        (Self::with_injector(inner, role, hook, &injector), injector)
    }

    pub fn with_injector(inner: T, role: Role, hook: H, injector: &Injector) -> Self {
        let shared = injector.0.clone();
        let blocks = hook.header_blocks();
        Self {
            inner,
            hook,
            rx: Scanner::new(role == Role::Server).with_header_blocks(blocks),
            tx: Scanner::new(role == Role::Client).with_header_blocks(blocks),
            held: [0; FRAME_HEADER_LEN],
            held_len: 0,
            rx_first: 0,
            absorb: None,
            pending: BytesMut::new(),
            shared,
        }
    }

    pub fn hook(&self) -> &H {
        &self.hook
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// Adds whole frames to the output, as sent.
    fn queue_out(&mut self, frames: &[u8]) {
        let hook = &mut self.hook;
        self.tx
            .feed(frames, &mut |h, p| hook.observe(Dir::Sent, h, p));
        self.pending.extend_from_slice(frames);
    }

    fn writer_between_frames(&self) -> bool {
        self.tx.at_boundary() && self.held_len == 0 && self.absorb.is_none()
    }

    /// Moves injected frames to the output when the writer is between frames.
    fn take_injections(&mut self) {
        if !self.shared.queued.load(Ordering::Acquire) || !self.writer_between_frames() {
            return;
        }
        let frames: Vec<Bytes> = match self.shared.queue.lock() {
            Ok(mut q) => {
                self.shared.queued.store(false, Ordering::Release);
                q.drain(..).collect()
            }
            Err(_) => return,
        };
        for f in frames {
            self.queue_out(&f);
        }
    }

    fn plan(&mut self, rest: &[u8]) -> Plan {
        let mut pos = self.tx.committed_len(rest);
        while pos < rest.len() {
            if pos > 0 && self.shared.queued.load(Ordering::Acquire) {
                return Plan::Direct(pos);
            }
            let Some(h) = FrameHeader::parse_prefix(&rest[pos..]) else {
                return if pos == 0 {
                    Plan::Hold
                } else {
                    Plan::Direct(pos)
                };
            };
            if h.length as usize <= MAX_CONTROL_PAYLOAD && self.hook.intercept(&h) {
                return if pos == 0 {
                    Plan::Intercept(h)
                } else {
                    Plan::Direct(pos)
                };
            }
            pos += FRAME_HEADER_LEN + h.length as usize;
        }
        Plan::Direct(rest.len())
    }
}

impl<T: AsyncWrite + Unpin, H: FrameHook> FrameIo<T, H> {
    fn poll_drain_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.advance(n);
        }
        Poll::Ready(Ok(()))
    }

    /// Writes injected and pending frames, then carries out a requested close.
    fn poll_service(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.take_injections();
        ready!(self.poll_drain_pending(cx))?;
        if self.shared.close.load(Ordering::Acquire)
            && !self.shared.closed.load(Ordering::Acquire)
            && !self.shared.queued.load(Ordering::Acquire)
        {
            ready!(Pin::new(&mut self.inner).poll_shutdown(cx))?;
            self.shared.closed.store(true, Ordering::Release);
        }
        Poll::Ready(Ok(()))
    }

    fn closed_err() -> io::Error {
        io::Error::new(io::ErrorKind::BrokenPipe, "connection closed by grpcdoc")
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin, H: FrameHook> AsyncRead for FrameIo<T, H> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.shared.waker.register(cx.waker());
        // Injections must go out even when the endpoint has nothing to write;
        // the read side is always polled, so try here (the write side retries).
        if this.shared.queued.load(Ordering::Acquire) || this.shared.close.load(Ordering::Acquire) {
            if let Poll::Ready(Ok(())) = this.poll_service(cx) {
                let _ = Pin::new(&mut this.inner).poll_flush(cx);
            }
        }
        if this.shared.closed.load(Ordering::Acquire) {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let new = &buf.filled()[before..];
        if this.rx_first < FIRST_BYTES && !new.is_empty() {
            let n = (FIRST_BYTES - this.rx_first).min(new.len());
            this.hook.first_bytes(Dir::Received, &new[..n]);
            this.rx_first += n;
        }
        let hook = &mut this.hook;
        this.rx
            .feed(new, &mut |h, p| hook.observe(Dir::Received, h, p));
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin, H: FrameHook> AsyncWrite for FrameIo<T, H> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.shared.closed.load(Ordering::Acquire) {
            return Poll::Ready(Err(Self::closed_err()));
        }
        let mut consumed = 0;
        // Bytes once taken (consumed) are ours to deliver: errors and Pending
        // after that are reported on the next call.
        let done = |consumed: usize, r: Poll<io::Result<usize>>| {
            if consumed > 0 {
                Poll::Ready(Ok(consumed))
            } else {
                r
            }
        };
        loop {
            match this.poll_drain_pending(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return done(consumed, Poll::Ready(Err(e))),
                Poll::Pending => return done(consumed, Poll::Pending),
            }
            let rest = &buf[consumed..];
            if rest.is_empty() {
                return Poll::Ready(Ok(consumed));
            }
            if let Some(abs) = &mut this.absorb {
                let want = FRAME_HEADER_LEN + abs.header.length as usize - abs.bytes.len();
                let n = want.min(rest.len());
                abs.bytes.extend_from_slice(&rest[..n]);
                consumed += n;
                if n == want {
                    let Some(abs) = this.absorb.take() else {
                        continue;
                    };
                    let payload = &abs.bytes[FRAME_HEADER_LEN..];
                    match this.hook.rewrite(&abs.header, payload) {
                        Verdict::Forward => this.queue_out(&abs.bytes),
                        Verdict::Drop => {}
                        Verdict::Replace(b) => this.queue_out(&b),
                    }
                }
                continue;
            }
            if this.held_len > 0 {
                let n = (FRAME_HEADER_LEN - this.held_len).min(rest.len());
                this.held[this.held_len..this.held_len + n].copy_from_slice(&rest[..n]);
                this.held_len += n;
                consumed += n;
                if this.held_len == FRAME_HEADER_LEN {
                    this.held_len = 0;
                    let h = FrameHeader::parse(&this.held);
                    if h.length as usize <= MAX_CONTROL_PAYLOAD && this.hook.intercept(&h) {
                        this.absorb = Some(Absorb {
                            header: h,
                            bytes: this.held.to_vec(),
                        });
                    } else {
                        let held = this.held;
                        this.queue_out(&held);
                    }
                }
                continue;
            }
            if this.shared.queued.load(Ordering::Acquire) && this.writer_between_frames() {
                this.take_injections();
                continue;
            }
            match this.plan(rest) {
                Plan::Hold => {
                    this.held[..rest.len()].copy_from_slice(rest);
                    this.held_len = rest.len();
                    consumed += rest.len();
                }
                Plan::Intercept(h) => {
                    this.absorb = Some(Absorb {
                        header: h,
                        bytes: Vec::with_capacity(FRAME_HEADER_LEN + h.length as usize),
                    });
                }
                Plan::Direct(n) => match Pin::new(&mut this.inner).poll_write(cx, &rest[..n]) {
                    Poll::Ready(Ok(0)) => {
                        return done(consumed, Poll::Ready(Err(io::ErrorKind::WriteZero.into())))
                    }
                    Poll::Ready(Ok(w)) => {
                        let hook = &mut this.hook;
                        this.tx
                            .feed(&rest[..w], &mut |h, p| hook.observe(Dir::Sent, h, p));
                        consumed += w;
                        if w < n {
                            return Poll::Ready(Ok(consumed));
                        }
                    }
                    Poll::Ready(Err(e)) => return done(consumed, Poll::Ready(Err(e))),
                    Poll::Pending => return done(consumed, Poll::Pending),
                },
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.shared.closed.load(Ordering::Acquire) {
            return Poll::Ready(Ok(()));
        }
        ready!(this.poll_service(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.shared.closed.load(Ordering::Acquire) {
            return Poll::Ready(Ok(()));
        }
        ready!(this.poll_service(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h2wire::frame::{ControlFrame, ErrorCode, FrameType, CLIENT_PREFACE};
    use proptest::prelude::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[derive(Default)]
    struct Log {
        seen: Vec<(Dir, FrameType, Vec<u8>)>,
        rewrite_goaway: Option<Bytes>,
    }

    impl FrameHook for Log {
        fn observe(&mut self, dir: Dir, h: &FrameHeader, p: &[u8]) {
            self.seen.push((dir, h.kind, p.to_vec()));
        }
        fn intercept(&mut self, h: &FrameHeader) -> bool {
            h.kind == FrameType::GoAway && self.rewrite_goaway.is_some()
        }
        fn rewrite(&mut self, h: &FrameHeader, p: &[u8]) -> Verdict {
            match (ControlFrame::parse(h, p), &self.rewrite_goaway) {
                (
                    Ok(ControlFrame::GoAway {
                        last_stream_id,
                        code,
                        ..
                    }),
                    Some(debug),
                ) => Verdict::Replace(
                    ControlFrame::GoAway {
                        last_stream_id,
                        code,
                        debug: debug.clone(),
                    }
                    .encode(),
                ),
                _ => Verdict::Forward,
            }
        }
    }

    fn data(stream_id: u32, len: usize) -> Vec<u8> {
        let mut v = FrameHeader {
            length: len as u32,
            kind: FrameType::Data,
            flags: 0,
            stream_id,
        }
        .encode()
        .to_vec();
        v.extend(std::iter::repeat_n(0xab, len));
        v
    }

    fn client_stream() -> Vec<u8> {
        let mut v = CLIENT_PREFACE.to_vec();
        v.extend_from_slice(
            &ControlFrame::Settings {
                ack: false,
                params: vec![],
            }
            .encode(),
        );
        v.extend(data(1, 100));
        v.extend_from_slice(
            &ControlFrame::GoAway {
                last_stream_id: 1,
                code: ErrorCode::NO_ERROR,
                debug: Bytes::new(),
            }
            .encode(),
        );
        v.extend(data(3, 5000));
        v
    }

    /// Writes `input` through a client-role FrameIo in pieces at `cuts`, with
    /// a frame injected after `inject_after` pieces, and returns what reached
    /// the socket and what the hook saw.
    async fn run(input: &[u8], cuts: &[usize], inject_after: usize, hook: Log) -> (Vec<u8>, Log) {
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let (mut io, injector) = FrameIo::new(a, Role::Client, hook);
        let mut at = 0;
        for (i, c) in cuts.iter().chain(std::iter::once(&input.len())).enumerate() {
            if i == inject_after {
                injector.inject(
                    ControlFrame::Ping {
                        ack: false,
                        data: *b"injected",
                    }
                    .encode(),
                );
            }
            let c = (*c).clamp(at, input.len());
            io.write_all(&input[at..c]).await.unwrap();
            at = c;
        }
        io.flush().await.unwrap();
        drop(injector);
        let log = std::mem::take(&mut io.hook);
        drop(io);
        let mut out = vec![];
        b.read_to_end(&mut out).await.unwrap();
        (out, log)
    }

    fn frames(wire: &[u8]) -> Vec<(FrameType, Vec<u8>)> {
        let mut s = Scanner::new(true);
        let mut v = vec![];
        s.feed(wire, &mut |h, p| v.push((h.kind, p.to_vec())));
        assert!(s.at_boundary());
        v
    }

    #[tokio::test]
    async fn passes_bytes_through_and_observes() {
        let input = client_stream();
        let (out, log) = run(&input, &[], usize::MAX, Log::default()).await;
        assert_eq!(out, input);
        let kinds: Vec<_> = log.seen.iter().map(|s| s.1).collect();
        assert_eq!(
            kinds,
            [
                FrameType::Settings,
                FrameType::Data,
                FrameType::GoAway,
                FrameType::Data
            ]
        );
        assert!(log.seen.iter().all(|s| s.0 == Dir::Sent));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn injection_and_rewrite_keep_frames_whole(
            cuts in proptest::collection::vec(0usize..5300, 0..8),
            inject_after in 0usize..9,
            rewrite in any::<bool>(),
        ) {
            let mut cuts = cuts;
            cuts.sort();
            let inject_after = inject_after % (cuts.len() + 1);
            let input = client_stream();
            let hook = Log {
                rewrite_goaway: rewrite.then(|| Bytes::from_static(b"max_idle")),
                ..Log::default()
            };
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let (out, log) = rt.block_on(run(&input, &cuts, inject_after, hook));
            let got = frames(&out);
            let mut want = frames(&input);
            if rewrite {
                let g = want.iter_mut().find(|f| f.0 == FrameType::GoAway).unwrap();
                g.1.extend_from_slice(b"max_idle");
            }
            // The injected PING appears exactly once, between two frames.
            let pings: Vec<_> = got.iter().enumerate().filter(|(_, f)| f.0 == FrameType::Ping).collect();
            prop_assert_eq!(pings.len(), 1);
            let mut without = got.clone();
            without.remove(pings[0].0);
            prop_assert_eq!(&without, &want);
            // The hook saw exactly what went out.
            let seen: Vec<_> = log.seen.iter().map(|s| (s.1, s.2.clone())).collect();
            let observed: Vec<_> = got.iter().map(|f| (f.0, if f.0 == FrameType::Data { vec![] } else { f.1.clone() })).collect();
            prop_assert_eq!(seen, observed);
        }
    }

    #[tokio::test]
    async fn injects_while_the_writer_is_idle_and_closes() {
        let (a, mut b) = tokio::io::duplex(4096);
        let (mut io, injector) = FrameIo::new(a, Role::Server, Log::default());
        // The endpoint only reads; the injection must still reach the wire.
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let n = io.read(&mut buf).await.unwrap();
            (n, io)
        });
        let goaway = ControlFrame::GoAway {
            last_stream_id: 0,
            code: ErrorCode::ENHANCE_YOUR_CALM,
            debug: Bytes::from_static(b"too_many_pings"),
        }
        .encode();
        injector.inject(goaway.clone());
        injector.close_after_flush();
        let mut out = vec![];
        b.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, goaway);
        let (n, io) = reader.await.unwrap();
        assert_eq!(n, 0, "the endpoint reads EOF after the close");
        assert!(injector.is_closed());
        assert_eq!(io.hook().seen.len(), 1);
    }
}
