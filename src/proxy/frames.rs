//! Frame-level faults on a cleartext HTTP/2 (h2c) connection: one
//! [`ProxyTap`] on each side's FrameIo decides on the frames written through
//! it (dropped, delayed, rewritten whole: the stream stays valid), and the
//! two share what they see (the last stream, streams to reset).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use super::faults::Faults;
use super::spec::{Direction, Fault};
use crate::event::{EventKind, EventSink};
use crate::h2wire::frame::setting;
use crate::h2wire::{ControlFrame, Dir, FrameHeader, FrameHook, FrameType, Injector, Verdict};

/// What both sides of one proxied connection share.
pub struct ConnFaultCtx {
    pub conn: u64,
    pub addr: Arc<str>,
    pub faults: Faults,
    pub events: EventSink,
    /// Frames injected toward the client (downstream) and the server (upstream).
    pub to_client: Injector,
    pub to_server: Injector,
    /// The highest stream id the client opened.
    pub last_stream: AtomicU32,
    /// The highest stream id whose HEADERS went to the server.
    pub forwarded: AtomicU32,
    /// After an injected GOAWAY toward the client: streams above this id
    /// are refused (RST_STREAM REFUSED_STREAM to the client) and none of
    /// their frames reach the server, as a real GOAWAY's sender does.
    pub refuse_above: AtomicU32,
    /// Streams chosen for inject-rst-stream, reset toward the server once
    /// their HEADERS have gone out.
    pub reset_streams: Mutex<HashSet<u32>>,
    /// Both sides' SETTINGS have passed: frames may be injected (a peer's
    /// first frame must be its SETTINGS).
    pub handshaken: tokio::sync::watch::Sender<(bool, bool)>,
    /// Taken while a stream's HEADERS is let through to the server and
    /// while an injected GOAWAY picks its last stream id.
    pub goaway_lock: Mutex<()>,
    /// The calls read on the client's side (the tap), when asked for.
    pub calls: Option<Mutex<super::calls::CallTap>>,
}

impl ConnFaultCtx {
    pub fn fault_event(&self, name: &str, detail: String) {
        self.events.emit(
            Some(self.conn),
            Some(self.addr.clone()),
            EventKind::Fault {
                name: name.to_string(),
                detail,
            },
        );
    }
}

fn dir_name(d: Direction) -> &'static str {
    match d {
        Direction::Upstream => "upstream",
        Direction::Downstream => "downstream",
        Direction::Both => "both ways",
    }
}

/// The hook of one side: `writes` is the direction of the frames written
/// through its FrameIo (to the client: downstream; to the server: upstream).
pub struct ProxyTap {
    pub ctx: Arc<ConnFaultCtx>,
    pub writes: Direction,
    pub rng: fastrand::Rng,
}

fn ping_matches(acks: Option<bool>, header: &FrameHeader) -> bool {
    acks.is_none_or(|a| a == header.has_flag(crate::h2wire::frame::flags::ACK))
}

impl ProxyTap {
    /// A frame toward the server on a stream the proxy refused.
    fn refused(&self, header: &FrameHeader) -> bool {
        self.writes == Direction::Upstream
            && header.stream_id != 0
            && header.stream_id > self.ctx.refuse_above.load(Ordering::Acquire)
    }

    fn injector(&self) -> &Injector {
        match self.writes {
            Direction::Downstream => &self.ctx.to_client,
            _ => &self.ctx.to_server,
        }
    }
}

impl FrameHook for ProxyTap {
    fn header_blocks(&self) -> bool {
        self.writes == Direction::Downstream && self.ctx.calls.is_some()
    }

    fn observe(&mut self, dir: Dir, header: &FrameHeader, payload: &[u8]) {
        // The client's side, as the client sees it: the calls.
        if self.writes == Direction::Downstream
            && matches!(
                header.kind,
                FrameType::Headers
                    | FrameType::Continuation
                    | FrameType::RstStream
                    | FrameType::GoAway
                    | FrameType::Ping
            )
        {
            if let Some(Ok(mut tap)) = self.ctx.calls.as_ref().map(|c| c.lock()) {
                tap.frame(dir, header, payload);
            }
        }
        if header.kind == FrameType::Settings && dir == Dir::Sent {
            let up = self.writes == Direction::Upstream;
            self.ctx.handshaken.send_if_modified(|(s, c)| {
                let flag = if up { c } else { s };
                !std::mem::replace(flag, true)
            });
        }
        if header.kind != FrameType::Headers {
            return;
        }
        let ctx = &self.ctx;
        match (self.writes, dir) {
            // The client opened a stream (read on the client side).
            (Direction::Downstream, Dir::Received) => {
                let id = header.stream_id;
                if ctx.last_stream.fetch_max(id, Ordering::AcqRel) >= id {
                    return; // trailers of a stream already seen
                }
                if id > ctx.refuse_above.load(Ordering::Acquire) {
                    ctx.to_client.inject(
                        ControlFrame::RstStream {
                            stream_id: id,
                            code: crate::h2wire::ErrorCode::REFUSED_STREAM,
                        }
                        .encode(),
                    );
                    ctx.fault_event(
                        "inject-goaway",
                        format!("refused stream {id}, above the GOAWAY's last stream"),
                    );
                    return;
                }
                for f in ctx.faults.snapshot().iter() {
                    if let Fault::InjectRstStream { code, stream } = f.spec.fault {
                        let chosen = match stream {
                            Some(s) => s == id,
                            None => f.fires(None, &mut self.rng),
                        };
                        if chosen {
                            ctx.to_client.inject(
                                ControlFrame::RstStream {
                                    stream_id: id,
                                    code,
                                }
                                .encode(),
                            );
                            if let Ok(mut s) = ctx.reset_streams.lock() {
                                s.insert(id);
                            }
                            ctx.fault_event(
                                "inject-rst-stream",
                                format!("reset stream {id} with {code} both ways"),
                            );
                            break;
                        }
                    }
                }
            }
            // Its HEADERS reached the server: now the server may be told.
            // (`forwarded` was counted when it was let through; a frame
            // over 64 KiB is never asked about, so it is counted here too.)
            (Direction::Upstream, Dir::Sent) => {
                ctx.forwarded.fetch_max(header.stream_id, Ordering::AcqRel);
                let chosen = ctx
                    .reset_streams
                    .lock()
                    .map(|mut s| s.remove(&header.stream_id))
                    .unwrap_or(false);
                if chosen {
                    ctx.to_server.inject(
                        ControlFrame::RstStream {
                            stream_id: header.stream_id,
                            code: crate::h2wire::ErrorCode::CANCEL,
                        }
                        .encode(),
                    );
                }
            }
            _ => {}
        }
    }

    fn intercept(&mut self, header: &FrameHeader) -> bool {
        // A new stream's HEADERS toward the server: refused, or counted as
        // given to the server, in one step against an injected GOAWAY
        // choosing its last stream id (else a stream could slip through
        // between the two and be announced as never processed).
        if self.writes == Direction::Upstream
            && header.kind == FrameType::Headers
            && header.stream_id != 0
        {
            let _one = self.ctx.goaway_lock.lock();
            if self.refused(header) {
                return true;
            }
            self.ctx
                .forwarded
                .fetch_max(header.stream_id, Ordering::AcqRel);
            return false;
        }
        // A refused stream's frames stay here (one atomic load per frame).
        if self.refused(header) {
            return true;
        }
        if !header.kind.is_control() {
            return false;
        }
        self.ctx.faults.snapshot().iter().any(|f| {
            f.spec.direction.covers(self.writes)
                && match &f.spec.fault {
                    Fault::DropPing { acks, .. } | Fault::DelayPing { acks, .. } => {
                        header.kind == FrameType::Ping && ping_matches(*acks, header)
                    }
                    Fault::DropGoaway => header.kind == FrameType::GoAway,
                    Fault::MaxConcurrentStreams { .. } => {
                        header.kind == FrameType::Settings
                            && !header.has_flag(crate::h2wire::frame::flags::ACK)
                    }
                    Fault::DropFrame { frame_type, .. } => header.kind == *frame_type,
                    _ => false,
                }
        })
    }

    fn rewrite(&mut self, header: &FrameHeader, payload: &[u8]) -> Verdict {
        if self.refused(header) {
            return Verdict::Drop;
        }
        let way = dir_name(self.writes);
        let kind = header.kind.name();
        let is_ping = header.kind == FrameType::Ping;
        for f in self.ctx.faults.snapshot().iter() {
            if !f.spec.direction.covers(self.writes) {
                continue;
            }
            // `fires` counts a use, so it is asked last, once the frame matches.
            match &f.spec.fault {
                Fault::DropPing { acks, count }
                    if is_ping && ping_matches(*acks, header) && f.fires(*count, &mut self.rng) =>
                {
                    let what = if header.has_flag(1) {
                        "PING ack"
                    } else {
                        "PING"
                    };
                    self.ctx
                        .fault_event("drop-ping", format!("dropped a {what} {way}"));
                    return Verdict::Drop;
                }
                Fault::DelayPing { acks, delay }
                    if is_ping && ping_matches(*acks, header) && f.fires(None, &mut self.rng) =>
                {
                    let mut frame = header.encode().to_vec();
                    frame.extend_from_slice(payload);
                    let (inj, delay) = (self.injector().clone(), *delay);
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        inj.inject(Bytes::from(frame));
                    });
                    self.ctx.fault_event(
                        "delay-ping",
                        format!(
                            "held a PING {way} for {}",
                            humantime::format_duration(delay)
                        ),
                    );
                    return Verdict::Drop;
                }
                Fault::DropGoaway
                    if header.kind == FrameType::GoAway && f.fires(None, &mut self.rng) =>
                {
                    self.ctx
                        .fault_event("drop-goaway", format!("dropped a GOAWAY {way}"));
                    return Verdict::Drop;
                }
                Fault::DropFrame { frame_type, count }
                    if header.kind == *frame_type && f.fires(*count, &mut self.rng) =>
                {
                    self.ctx
                        .fault_event("drop-frame", format!("dropped a {kind} frame {way}"));
                    return Verdict::Drop;
                }
                Fault::MaxConcurrentStreams { value } if header.kind == FrameType::Settings => {
                    let Ok(ControlFrame::Settings {
                        ack: false,
                        mut params,
                    }) = ControlFrame::parse(header, payload)
                    else {
                        continue;
                    };
                    if !f.fires(None, &mut self.rng) {
                        continue;
                    }
                    params.retain(|(id, _)| *id != setting::MAX_CONCURRENT_STREAMS);
                    params.push((setting::MAX_CONCURRENT_STREAMS, *value));
                    self.ctx.fault_event(
                        "max-concurrent-streams",
                        format!("SETTINGS {way}: MAX_CONCURRENT_STREAMS set to {value}"),
                    );
                    return Verdict::Replace(
                        ControlFrame::Settings { ack: false, params }.encode(),
                    );
                }
                _ => {}
            }
        }
        Verdict::Forward
    }
}

/// Sends one inject-goaway fault's GOAWAY on a connection: at once, and
/// again every `every`.
pub async fn inject_goaways(
    ctx: Arc<ConnFaultCtx>,
    fault_id: u64,
    direction: Direction,
    code: crate::h2wire::ErrorCode,
    last_stream_id: Option<u32>,
    debug: String,
    every: Option<Duration>,
) {
    let mut shaken = ctx.handshaken.subscribe();
    if shaken.wait_for(|(s, c)| *s && *c).await.is_err() {
        return;
    }
    // `every=D`: the first GOAWAY after D too.
    if let Some(d) = every {
        tokio::time::sleep(d).await;
    }
    loop {
        if !ctx.faults.snapshot().iter().any(|f| f.id == fault_id) {
            return;
        }
        // The last stream the server was given (never more than announced
        // before); later ones are refused from now on.
        let last = {
            let _one = ctx.goaway_lock.lock();
            let last = last_stream_id.unwrap_or_else(|| {
                ctx.forwarded
                    .load(Ordering::Acquire)
                    .min(ctx.refuse_above.load(Ordering::Acquire))
            });
            if direction.covers(Direction::Downstream) {
                ctx.refuse_above.fetch_min(last, Ordering::AcqRel);
            }
            last
        };
        let frame = ControlFrame::GoAway {
            last_stream_id: last,
            code,
            debug: Bytes::from(debug.clone().into_bytes()),
        }
        .encode();
        if direction.covers(Direction::Downstream) {
            ctx.to_client.inject(frame.clone());
        }
        if direction.covers(Direction::Upstream) {
            ctx.to_server.inject(frame);
        }
        ctx.fault_event(
            "inject-goaway",
            format!(
                "sent GOAWAY {code} last_stream_id={last} debug={debug:?} {}",
                dir_name(direction)
            ),
        );
        match every {
            Some(d) => tokio::time::sleep(d).await,
            None => return,
        }
    }
}
