//! The lean client over real loopback sockets: against the built-in server,
//! and against hand-written HTTP/2 peers that send what a server may send
//! (padding, CONTINUATION, informational heads, GOAWAY, REFUSED_STREAM,
//! small windows, a smaller header table) or must not (an oversized frame).

use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::h2wire::frame::{flags, setting, CLIENT_PREFACE};
use crate::h2wire::{ErrorCode, FrameHeader, FrameType};

const LIMIT: Duration = Duration::from_secs(10);

fn frame(kind: FrameType, fl: u8, id: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(9 + payload.len());
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    v.push(kind.as_u8());
    v.push(fl);
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn settings(params: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (k, v) in params {
        p.extend_from_slice(&k.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(FrameType::Settings, 0, 0, &p)
}

fn grpc_message(body: &[u8]) -> Vec<u8> {
    let mut v = vec![0];
    v.extend_from_slice(&(body.len() as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn head() -> Arc<RequestHead> {
    Arc::new(RequestHead {
        https: false,
        authority: Bytes::from_static(b"127.0.0.1"),
        path: Bytes::from_static(b"/helloworld.Greeter/SayHello"),
        fields: vec![
            (
                Bytes::from_static(b"content-type"),
                Bytes::from_static(b"application/grpc"),
            ),
            (Bytes::from_static(b"te"), Bytes::from_static(b"trailers")),
        ],
    })
}

/// A hand-written server end of one connection.
struct Peer {
    sock: TcpStream,
    dec: loona_hpack::Decoder<'static>,
    enc: loona_hpack::Encoder<'static>,
}

/// A received frame.
struct Got {
    h: FrameHeader,
    payload: Vec<u8>,
}

impl Peer {
    /// Accepts the client, checks its preface, sends `first` (SETTINGS).
    async fn accept(l: &TcpListener, first: &[u8]) -> Peer {
        let (mut sock, _) = l.accept().await.expect("accept");
        let mut preface = [0u8; 24];
        sock.read_exact(&mut preface).await.expect("preface");
        assert_eq!(&preface, CLIENT_PREFACE);
        sock.write_all(first).await.expect("settings");
        Peer {
            sock,
            dec: loona_hpack::Decoder::new(),
            enc: loona_hpack::Encoder::new(),
        }
    }

    async fn frame(&mut self) -> Option<Got> {
        let mut h = [0u8; 9];
        self.sock.read_exact(&mut h).await.ok()?;
        let h = FrameHeader::parse(&h);
        let mut payload = vec![0; h.length as usize];
        self.sock.read_exact(&mut payload).await.ok()?;
        Some(Got { h, payload })
    }

    /// The next frame that is not SETTINGS, WINDOW_UPDATE on the connection
    /// or a SETTINGS ack.
    async fn next(&mut self) -> Option<Got> {
        loop {
            let g = self.frame().await?;
            let conn_update = g.h.kind == FrameType::WindowUpdate && g.h.stream_id == 0;
            if g.h.kind != FrameType::Settings && !conn_update {
                return Some(g);
            }
        }
    }

    /// A request's HEADERS: its stream and decoded fields.
    async fn request(&mut self) -> (u32, Vec<(String, String)>) {
        let g = self.next().await.expect("a frame");
        assert_eq!(g.h.kind, FrameType::Headers, "{:?}", g.h);
        assert!(g.h.has_flag(flags::END_HEADERS));
        (g.h.stream_id, self.decode(&g.payload))
    }

    fn decode(&mut self, block: &[u8]) -> Vec<(String, String)> {
        self.dec
            .decode(block)
            .expect("client block decodes")
            .into_iter()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(&n).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect()
    }

    fn block(&mut self, fields: &[(&str, &str)]) -> Vec<u8> {
        self.enc
            .encode(fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.sock.write_all(bytes).await.expect("write");
    }

    /// A whole unary answer: head, one message, trailers.
    async fn answer(&mut self, id: u32, status: &str) {
        let h = self.block(&[(":status", "200"), ("content-type", "application/grpc")]);
        let t = self.block(&[("grpc-status", status)]);
        let mut out = frame(FrameType::Headers, flags::END_HEADERS, id, &h);
        out.extend(frame(FrameType::Data, 0, id, &grpc_message(b"ok")));
        out.extend(frame(
            FrameType::Headers,
            flags::END_HEADERS | flags::END_STREAM,
            id,
            &t,
        ));
        self.send(&out).await;
    }
}

async fn client(
    l: &TcpListener,
) -> (
    Wire,
    tokio::task::JoinHandle<Result<super::Ending, WireError>>,
) {
    let sock = TcpStream::connect(l.local_addr().expect("addr"))
        .await
        .expect("connect");
    let (wire, drive) = handshake(sock);
    (wire, tokio::spawn(drive))
}

async fn finish(s: &WireStream) -> Finished {
    tokio::time::timeout(LIMIT, poll_fn(|cx| s.poll_finish(cx)))
        .await
        .expect("the stream ends in time")
}

async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.expect("bind")
}

#[tokio::test]
async fn padding_continuation_and_an_informational_head_are_read_through() {
    let l = listener().await;
    let (wire, _drive) = client(&l).await;
    let mut p = Peer::accept(&l, &settings(&[])).await;
    let s = wire
        .open(
            Block::Head(&head()),
            false,
            Some(Bytes::from(grpc_message(b"hi"))),
            true,
        )
        .expect("open");
    let (id, fields) = p.request().await;
    assert!(
        fields.contains(&(":path".into(), "/helloworld.Greeter/SayHello".into())),
        "{fields:?}"
    );
    let data = p.next().await.expect("DATA");
    assert_eq!(data.h.kind, FrameType::Data);
    assert!(data.h.has_flag(flags::END_STREAM));
    assert_eq!(data.payload, grpc_message(b"hi"));

    let info = p.block(&[(":status", "100")]);
    let mut out = frame(FrameType::Headers, flags::END_HEADERS, id, &info);
    // The head cut in two, the first part padded.
    let h = p.block(&[(":status", "200"), ("content-type", "application/grpc")]);
    let (a, b) = h.split_at(2);
    let mut padded = vec![3];
    padded.extend_from_slice(a);
    padded.extend_from_slice(&[0, 0, 0]);
    out.extend(frame(FrameType::Headers, flags::PADDED, id, &padded));
    out.extend(frame(FrameType::Continuation, flags::END_HEADERS, id, b));
    // Two messages in padded DATA, cut across frames.
    let mut msgs = grpc_message(b"one");
    msgs.extend(grpc_message(&[7; 40]));
    let (x, y) = msgs.split_at(6);
    let mut pd = vec![5];
    pd.extend_from_slice(x);
    pd.extend_from_slice(&[0; 5]);
    out.extend(frame(FrameType::Data, flags::PADDED, id, &pd));
    out.extend(frame(FrameType::Data, 0, id, y));
    let t = p.block(&[("grpc-status", "3"), ("grpc-message", "bad%20name")]);
    out.extend(frame(
        FrameType::Headers,
        flags::END_HEADERS | flags::END_STREAM,
        id,
        &t,
    ));
    p.send(&out).await;

    let f = finish(&s).await;
    assert_eq!(f.status, Some(200));
    assert_eq!(f.messages, 2);
    assert_eq!(f.grpc_status, Some(3));
    assert_eq!(f.grpc_message.as_deref(), Some("bad%20name"));
    assert!(f.error.is_none(), "{:?}", f.error);
    // Both sides ended: nothing more on the wire for it (no RST_STREAM).
    drop(s);
    let more = tokio::time::timeout(Duration::from_millis(200), p.next()).await;
    assert!(
        more.is_err(),
        "{:?} after a finished stream",
        more.map(|g| g.map(|g| g.h))
    );
}

#[tokio::test]
async fn goaway_refuses_the_streams_above_its_last_id_and_every_new_one() {
    let l = listener().await;
    let (wire, drive) = client(&l).await;
    let mut p = Peer::accept(&l, &settings(&[])).await;
    let h = head();
    let streams: Vec<_> = (0..3)
        .map(|_| {
            wire.open(
                Block::Head(&h),
                false,
                Some(Bytes::from(grpc_message(b""))),
                true,
            )
            .expect("open")
        })
        .collect();
    let mut ids = Vec::new();
    while ids.len() < 3 {
        let g = p.next().await.expect("frame");
        if g.h.kind == FrameType::Headers {
            p.decode(&g.payload);
            ids.push(g.h.stream_id);
        }
    }
    assert_eq!(ids, [1, 3, 5]);
    let mut ga = 1u32.to_be_bytes().to_vec();
    ga.extend_from_slice(&0u32.to_be_bytes());
    ga.extend_from_slice(b"max_age");
    p.send(&frame(FrameType::GoAway, 0, 0, &ga)).await;
    for s in &streams[1..] {
        let e = finish(s).await.error.expect("refused");
        assert_eq!(e, StreamError::GoAway(1));
        assert!(e.never_processed());
    }
    let late = wire
        .open(Block::Head(&h), false, None, true)
        .err()
        .expect("no new stream after GOAWAY");
    assert!(late.never_processed(), "{late}");
    p.answer(1, "0").await;
    let f = finish(&streams[0]).await;
    assert_eq!((f.grpc_status, f.messages), (Some(0), 1));
    drop(streams);
    // The last stream done, the connection closes by itself.
    let end = tokio::time::timeout(LIMIT, drive)
        .await
        .expect("closes")
        .expect("task");
    assert!(end.is_ok(), "{end:?}");
}

#[tokio::test]
async fn a_close_after_a_goaway_is_not_called_an_eof_without_one() {
    let l = listener().await;
    let (wire, drive) = client(&l).await;
    let mut p = Peer::accept(&l, &settings(&[])).await;
    let h = head();
    let s = wire
        .open(
            Block::Head(&h),
            false,
            Some(Bytes::from(grpc_message(b""))),
            true,
        )
        .expect("open");
    loop {
        let g = p.next().await.expect("frame");
        if g.h.kind == FrameType::Headers {
            break;
        }
    }
    // GOAWAY that lets stream 1 finish, then the socket closes under it.
    let mut ga = 1u32.to_be_bytes().to_vec();
    ga.extend_from_slice(&0u32.to_be_bytes());
    p.send(&frame(FrameType::GoAway, 0, 0, &ga)).await;
    // Read what the client sent (unread bytes would make the close an
    // RST), then a FIN.
    while let Ok(Some(_)) =
        tokio::time::timeout(std::time::Duration::from_millis(100), p.frame()).await
    {}
    drop(p);
    let e = finish(&s).await.error.expect("cut");
    let text = e.to_string();
    assert!(text.contains("after its GOAWAY"), "{text}");
    assert!(!text.contains("no GOAWAY"), "{text}");
    assert!(!e.never_processed(), "{e:?}");
    let end = tokio::time::timeout(LIMIT, drive).await.expect("ends");
    assert!(matches!(end, Ok(Ok(super::Ending::AfterGoaway))), "{end:?}");
}

#[tokio::test]
async fn refused_stream_is_never_processed_and_a_reset_one_is_not() {
    let l = listener().await;
    let (wire, _drive) = client(&l).await;
    let mut p = Peer::accept(&l, &settings(&[])).await;
    let h = head();
    let a = wire.open(Block::Head(&h), false, None, true).expect("open");
    let b = wire.open(Block::Head(&h), false, None, true).expect("open");
    let (ia, _) = p.request().await;
    let (ib, _) = p.request().await;
    p.send(&frame(
        FrameType::RstStream,
        0,
        ia,
        &ErrorCode::REFUSED_STREAM.0.to_be_bytes(),
    ))
    .await;
    p.send(&frame(
        FrameType::RstStream,
        0,
        ib,
        &ErrorCode::CANCEL.0.to_be_bytes(),
    ))
    .await;
    assert!(finish(&a).await.error.expect("reset").never_processed());
    let e = finish(&b).await.error.expect("reset");
    assert_eq!(e, StreamError::Reset(ErrorCode::CANCEL));
    assert!(!e.never_processed());
}

#[tokio::test]
async fn the_head_is_indexed_once_then_sent_as_indices_and_literal_when_the_table_shrinks() {
    let l = listener().await;
    let (wire, _drive) = client(&l).await;
    let mut p = Peer::accept(&l, &settings(&[])).await;
    let h = head();
    let mut sizes = Vec::new();
    let mut fields = Vec::new();
    for _ in 0..3 {
        let s = wire.open(Block::Head(&h), false, None, true).expect("open");
        let g = p.next().await.expect("HEADERS");
        sizes.push(g.payload.len());
        fields.push(p.decode(&g.payload));
        // Given up before its answer: a RST_STREAM follows.
        drop(s);
        let r = p.next().await.expect("RST_STREAM");
        assert_eq!(r.h.kind, FrameType::RstStream);
    }
    assert!(fields.iter().all(|f| *f == fields[0]), "{fields:?}");
    assert!(sizes[1] < 10 && sizes[2] == sizes[1], "{sizes:?}");
    // The server shrinks its table: a size update to 0, then literals.
    p.send(&settings(&[(setting::HEADER_TABLE_SIZE, 0)])).await;
    let ack = p.frame().await.expect("ack");
    assert_eq!((ack.h.kind, ack.h.flags), (FrameType::Settings, flags::ACK));
    for i in 0..2 {
        let s = wire.open(Block::Head(&h), false, None, true).expect("open");
        let g = p.next().await.expect("HEADERS");
        assert_eq!(g.payload[0] == 0x20, i == 0, "size update first, once");
        assert_eq!(p.decode(&g.payload), fields[0]);
        drop(s);
        p.next().await.expect("RST_STREAM");
    }
}

#[tokio::test]
async fn a_large_message_waits_for_the_servers_window_updates() {
    let l = listener().await;
    let (wire, _drive) = client(&l).await;
    let mut p = Peer::accept(&l, &settings(&[(setting::INITIAL_WINDOW_SIZE, 1000)])).await;
    let body = vec![9u8; 50_000];
    // The client acknowledges the small window before the stream opens.
    while let Some(g) = p.frame().await {
        if g.h.kind == FrameType::Settings && g.h.has_flag(flags::ACK) {
            break;
        }
    }
    let s = wire
        .open(
            Block::Head(&head()),
            false,
            Some(Bytes::from(grpc_message(&body))),
            true,
        )
        .expect("open");
    let (id, _) = p.request().await;
    let mut got = 0;
    while got < 1000 {
        let g = p.next().await.expect("DATA");
        assert_eq!(g.h.kind, FrameType::Data);
        got += g.payload.len();
    }
    assert_eq!(got, 1000, "no more than the stream window");
    // Nothing more comes until the window grows.
    let more = tokio::time::timeout(Duration::from_millis(200), p.frame()).await;
    assert!(more.is_err(), "DATA beyond the window");
    p.send(&frame(
        FrameType::WindowUpdate,
        0,
        id,
        &100_000u32.to_be_bytes(),
    ))
    .await;
    let mut end = false;
    while !end {
        let g = p.next().await.expect("DATA");
        got += g.payload.len();
        end = g.h.has_flag(flags::END_STREAM);
    }
    assert_eq!(got, body.len() + 5);
    p.answer(id, "0").await;
    assert_eq!(finish(&s).await.grpc_status, Some(0));
}

#[tokio::test]
async fn pings_are_answered_and_an_oversized_frame_ends_the_connection() {
    let l = listener().await;
    let (wire, drive) = client(&l).await;
    let mut p = Peer::accept(&l, &settings(&[])).await;
    p.send(&frame(FrameType::Ping, 0, 0, b"12345678")).await;
    let ack = p.next().await.expect("PING ack");
    assert_eq!(
        (ack.h.kind, ack.h.flags, &ack.payload[..]),
        (FrameType::Ping, flags::ACK, &b"12345678"[..])
    );
    let s = wire
        .open(Block::Head(&head()), false, None, true)
        .expect("open");
    let (id, _) = p.request().await;
    let mut big = frame(FrameType::Data, 0, id, &[]);
    big[..3].copy_from_slice(&[0, 0x50, 0]); // 20480 bytes announced
    p.send(&big).await;
    let ga = p.next().await.expect("GOAWAY");
    assert_eq!(ga.h.kind, FrameType::GoAway);
    assert_eq!(
        &ga.payload[4..8],
        &ErrorCode::FRAME_SIZE_ERROR.0.to_be_bytes()
    );
    let e = finish(&s).await.error.expect("lost");
    assert!(!e.never_processed());
    let end = tokio::time::timeout(LIMIT, drive)
        .await
        .expect("ends")
        .expect("task");
    assert!(
        matches!(
            end,
            Err(WireError::Protocol {
                code: ErrorCode::FRAME_SIZE_ERROR,
                ..
            })
        ),
        "{end:?}"
    );
}

#[tokio::test]
async fn many_calls_and_messages_larger_than_every_window_against_the_built_in_server() {
    use crate::server::{Server, ServerConfig};
    let (events, _rx) = crate::event::EventSink::channel(1024);
    let addr = "127.0.0.1:0".parse().expect("addr");
    let server = Server::start(addr, ServerConfig::default(), events)
        .await
        .expect("server");
    let sock = TcpStream::connect(server.addr).await.expect("connect");
    let (wire, drive) = handshake(sock);
    let _drive = tokio::spawn(drive);
    let h = head();
    // HelloRequest { name } with a 3 MiB name: over the server's windows on
    // the way in and over ours (2 MiB a stream) on the way back.
    let name = vec![b'n'; 3 << 20];
    let mut req = vec![0x0a];
    let mut n = name.len();
    while n >= 0x80 {
        req.push((n as u8) | 0x80);
        n >>= 7;
    }
    req.push(n as u8);
    req.extend_from_slice(&name);
    let big = wire
        .open(
            Block::Head(&h),
            false,
            Some(Bytes::from(grpc_message(&req))),
            true,
        )
        .expect("open");
    let small: Vec<_> = (0..2000)
        .map(|_| {
            wire.open(
                Block::Head(&h),
                false,
                Some(Bytes::from(grpc_message(b"\x0a\x01x"))),
                true,
            )
            .expect("open")
        })
        .collect();
    for s in &small {
        let f = finish(s).await;
        assert_eq!(
            (f.status, f.grpc_status, f.messages),
            (Some(200), Some(0), 1),
            "{:?}",
            f.error
        );
    }
    let f = finish(&big).await;
    assert_eq!((f.grpc_status, f.messages), (Some(0), 1), "{:?}", f.error);
}
