//! The bodies of the fuzz targets in `fuzz/` (cargo-fuzz), here so that
//! `cargo test` replays the committed corpus and every regression input
//! through exactly the code the fuzzer runs. Each takes arbitrary bytes and
//! checks properties beyond "does not panic".

use std::sync::OnceLock;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::h2wire::scan::Scanner;
use crate::h2wire::{ControlFrame, Dir, FrameHeader, FrameHook, FrameIo, Role, Verdict};

/// Splits `data` into chunks whose sizes come from `data` itself, so the
/// fuzzer also explores where reads and writes are cut.
fn chunks(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0usize;
    while !rest.is_empty() {
        let n = (usize::from(data[i % data.len()]) % 61 + 1).min(rest.len());
        out.push(&rest[..n]);
        rest = &rest[n..];
        i += 1;
    }
    out
}

/// The frame scanner over bytes cut anywhere: every frame it reports is
/// consistent with the bytes, and every control frame that parses encodes
/// back to a frame that parses to the same value.
pub fn frames(data: &[u8]) {
    let preface = data.first().is_some_and(|b| b & 1 == 1);
    let mut s = Scanner::new(preface);
    for c in chunks(data) {
        s.feed(c, &mut |h: &FrameHeader, p: &[u8]| {
            assert!(p.len() <= h.length as usize, "payload beyond the frame");
            if let Ok(f) = ControlFrame::parse(h, p) {
                let bytes = f.encode();
                let mut hdr = [0u8; 9];
                hdr.copy_from_slice(&bytes[..9]);
                let h2 = FrameHeader::parse(&hdr);
                let again = ControlFrame::parse(&h2, &bytes[9..]).expect("an encoded frame parses");
                assert_eq!(again, f, "encode/parse round trip");
            }
        });
    }
}

/// A hook that intercepts control frames and, by the fuzzer's choice,
/// forwards, drops or replaces them.
struct Choosy {
    choice: u8,
}

impl FrameHook for Choosy {
    fn observe(&mut self, _: Dir, _: &FrameHeader, _: &[u8]) {}
    fn intercept(&mut self, h: &FrameHeader) -> bool {
        self.choice != 0 && h.kind.is_control()
    }
    fn rewrite(&mut self, h: &FrameHeader, p: &[u8]) -> Verdict {
        match self.choice % 3 {
            0 => Verdict::Forward,
            1 => Verdict::Drop,
            _ => match ControlFrame::parse(h, p) {
                Ok(f) => Verdict::Replace(f.encode()),
                Err(_) => Verdict::Drop,
            },
        }
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

/// FrameIo in both directions over an in-memory pipe, with bytes cut
/// anywhere: reading passes every byte through unchanged; writing through a
/// hook that forwards everything is a pass-through too; with a hook that
/// drops or rewrites, it never panics or stalls.
pub fn frame_io(data: &[u8]) {
    let Some((&choice, data)) = data.split_first() else {
        return;
    };
    let data = Bytes::copy_from_slice(data);
    runtime().block_on(async move {
        let forward_all = choice == 0;
        // Write side: what the endpoint writes goes through the hook.
        let (near, mut far) = tokio::io::duplex(1 << 20);
        let (mut io, _inj) = FrameIo::new(near, Role::Client, Choosy { choice });
        for c in chunks(&data) {
            if io.write_all(c).await.is_err() {
                break;
            }
        }
        let _ = io.flush().await;
        drop(io);
        let mut written = Vec::new();
        let _ = far.read_to_end(&mut written).await;
        if forward_all {
            // A forwarding hook changes nothing; it may hold back the start
            // of a frame header the endpoint has not finished writing.
            let mut whole = Scanner::new(true);
            whole.feed(&data, &mut |_, _| {});
            if whole.at_boundary() {
                assert_eq!(written, data.as_ref(), "a forwarding hook changes nothing");
            } else {
                assert!(
                    data.starts_with(&written),
                    "a forwarding hook changes nothing"
                );
                assert!(
                    data.len() - written.len() < 9,
                    "only a partial header is held"
                );
            }
        }
        // Read side: bytes from the peer reach the endpoint unchanged.
        let (near, mut far) = tokio::io::duplex(1 << 20);
        let (mut io, _inj) = FrameIo::new(near, Role::Server, ());
        let feed = data.clone();
        let writer = tokio::spawn(async move {
            for c in chunks(&feed) {
                if far.write_all(c).await.is_err() {
                    break;
                }
            }
        });
        let mut read = Vec::new();
        let _ = io.read_to_end(&mut read).await;
        let _ = writer.await;
        assert_eq!(read, data.as_ref(), "reading is a pass-through");
    });
}

/// grpcdoc's own HTTP/2 client with any bytes as the server's side, cut
/// anywhere, while three calls are open (one still sending, one keeping its
/// response): it never panics, every call ends, and the connection ends
/// once the bytes do.
pub fn wire(data: &[u8]) {
    use crate::client::wire::{self, Block, RequestHead};
    let data = Bytes::copy_from_slice(data);
    runtime().block_on(async move {
        let (near, far) = tokio::io::duplex(1 << 20);
        let (w, drive) = wire::handshake(near);
        let driver = tokio::spawn(drive);
        let head = std::sync::Arc::new(RequestHead {
            https: false,
            authority: Bytes::from_static(b"fuzz"),
            path: Bytes::from_static(b"/a.B/C"),
            fields: vec![(Bytes::from_static(b"te"), Bytes::from_static(b"trailers"))],
        });
        let streams: Vec<_> = (0..3)
            .filter_map(|i| {
                let msg = Bytes::from_static(b"\0\0\0\0\x01x");
                w.open(Block::Head(&head), i == 2, Some(msg), i != 1).ok()
            })
            .collect();
        let (mut r, mut wr) = tokio::io::split(far);
        let drain = tokio::spawn(async move {
            let mut sink = vec![0; 1 << 16];
            while let Ok(n) = r.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        });
        let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            for c in chunks(&data) {
                if wr.write_all(c).await.is_err() {
                    break;
                }
            }
            let _ = wr.shutdown().await;
            for s in &streams {
                std::future::poll_fn(|cx| s.poll_finish(cx)).await;
            }
            drop(streams);
            drop(w);
            driver.await
        })
        .await;
        drain.abort();
        assert!(
            ended.is_ok(),
            "the connection ends when the server's bytes do"
        );
    });
}

/// The scenario loader: any text gives a checked scenario or an error with a
/// position inside the file.
pub fn scenario(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(errors) = crate::scenario::load::parse("fuzz.yaml", text) {
        let lines = crate::scenario::load::yaml_lines(text).count().max(1) as u32;
        assert!(!errors.0.is_empty());
        for e in &errors.0 {
            assert!(
                e.line >= 1 && e.line <= lines + 1,
                "line {} of {lines}",
                e.line
            );
            assert!(!e.message.is_empty());
        }
    }
}

/// The fault-spec parser: a spec that parses prints back as the text given.
pub fn fault_spec(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = text.parse::<crate::proxy::FaultSpec>() {
        assert_eq!(spec.to_string(), spec.text);
        assert!((0.0..=1.0).contains(&spec.probability));
    }
}

/// Targets, listen addresses, durations, metadata and thresholds as typed on
/// the command line.
pub fn target(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = crate::target::Target::parse(text) {
        assert!(
            !t.authority.is_empty() || matches!(t.endpoints, crate::target::Endpoints::Unix(_))
        );
        let _ = t.server_name();
    }
    let _ = crate::parse::parse_listen(text);
    let _ = crate::parse::parse_duration(text);
    let _ = crate::parse::parse_metadata(text);
    let _ = crate::load::failon::Threshold::parse(text);
    let _ = crate::redact::text(text);
}

/// Every target, by the name of its directory under `fuzz/corpus`.
/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// A capture from arbitrary bytes (the seeds are real captures): read to
/// its end or a clean error, never a panic; every event serialises as a
/// JSON line, and the notes of every event are made.
pub fn pcap(data: &[u8]) {
    let opts = crate::pcap::Options { frames: true };
    let mut notes = crate::pcap::notes::CaptureNotes::default();
    let _ = crate::pcap::read(data, opts, &mut |e| {
        serde_json::to_string(&e).expect("an event serialises");
        notes.notes(&e);
    });
}

pub const TARGETS: [(&str, Target); 7] = [
    ("frames", frames),
    ("frame_io", frame_io),
    ("wire", wire),
    ("scenario", scenario),
    ("fault_spec", fault_spec),
    ("target", target),
    ("pcap", pcap),
];
