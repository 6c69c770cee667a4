//! Servers that are unusual but correct. Real servers and proxies answer
//! with every legal HTTP/2 form: header blocks split over CONTINUATION
//! frames, padded HEADERS and DATA, HPACK table size updates and dynamic
//! table references, a 1xx head before the real one, trailers-only
//! responses, a 64 KiB header list. grpcdoc's one HTTP/2 client (the one
//! under `watch`, scenarios, health checks and `load`) completes every call
//! against each of them, over a real socket, with the answer the server gave.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_grpcdoc");

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const CONTINUATION: u8 = 0x9;

const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An HPACK integer with an `n`-bit prefix, `first` holding the pattern bits.
fn int(out: &mut Vec<u8>, n: u32, first: u8, v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(first | v as u8);
        return;
    }
    out.push(first | max as u8);
    let mut v = v - max;
    while v >= 128 {
        out.push((v % 128 + 128) as u8);
        v /= 128;
    }
    out.push(v as u8);
}

fn string(out: &mut Vec<u8>, s: &[u8]) {
    int(out, 7, 0, s.len());
    out.extend_from_slice(s);
}

/// A literal field without indexing, new name.
fn literal(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.push(0x00);
    string(out, name.as_bytes());
    string(out, value);
}

/// A literal field with incremental indexing (enters the dynamic table).
fn indexed_literal(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.push(0x40);
    string(out, name.as_bytes());
    string(out, value);
}

/// `:status 200`, static table entry 8.
const STATUS_200: u8 = 0x88;

fn head_block() -> Vec<u8> {
    let mut b = vec![STATUS_200];
    literal(&mut b, "content-type", b"application/grpc");
    b
}

fn trailer_block(status: u32, message: &str) -> Vec<u8> {
    let mut b = Vec::new();
    literal(&mut b, "grpc-status", status.to_string().as_bytes());
    if !message.is_empty() {
        literal(&mut b, "grpc-message", message.as_bytes());
    }
    b
}

/// A HelloReply { message: "hi" } in a gRPC message frame.
fn reply() -> Vec<u8> {
    let msg = [0x0a, 0x02, b'h', b'i'];
    let mut m = vec![0];
    m.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    m.extend_from_slice(&msg);
    m
}

/// A header block as HEADERS plus CONTINUATION frames of at most `chunk`
/// bytes each.
fn split_block(stream: u32, end_stream: bool, block: &[u8], chunk: usize) -> Vec<u8> {
    let parts: Vec<&[u8]> = block.chunks(chunk.max(1)).collect();
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let end_headers = if last { END_HEADERS } else { 0 };
        if i == 0 {
            let es = if end_stream { END_STREAM } else { 0 };
            out.extend(frame(HEADERS, es | end_headers, stream, p));
        } else {
            out.extend(frame(CONTINUATION, end_headers, stream, p));
        }
    }
    out
}

fn padded(kind: u8, flags: u8, stream: u32, body: &[u8], pad: u8) -> Vec<u8> {
    let mut p = vec![pad];
    p.extend_from_slice(body);
    p.extend(std::iter::repeat_n(0u8, pad as usize));
    frame(kind, flags | PADDED, stream, &p)
}

/// A plain response: head, one message, trailers.
fn plain(stream: u32) -> Vec<u8> {
    let mut out = frame(HEADERS, END_HEADERS, stream, &head_block());
    out.extend(frame(DATA, 0, stream, &reply()));
    out.extend(frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        stream,
        &trailer_block(0, ""),
    ));
    out
}

/// A server on loopback answering every call on its first 8 connections
/// with `respond(stream)`; each connection ends after 5 s.
fn server(respond: fn(u32) -> Vec<u8>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in l.incoming().take(8) {
            let Ok(c) = conn else { continue };
            std::thread::spawn(move || serve(c, respond));
        }
    });
    addr
}

fn serve(mut c: TcpStream, respond: fn(u32) -> Vec<u8>) {
    let until = Instant::now() + Duration::from_secs(5);
    let _ = c.set_read_timeout(Some(Duration::from_millis(200)));
    if c.write_all(&frame(SETTINGS, 0, 0, &[])).is_err() {
        return;
    }
    let mut buf = Vec::new();
    let mut preface = false;
    let mut chunk = [0u8; 16384];
    while Instant::now() < until {
        match c.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return,
        }
        if !preface {
            if buf.len() < 24 {
                continue;
            }
            buf.drain(..24);
            preface = true;
        }
        while buf.len() >= 9 {
            let len =
                (usize::from(buf[0]) << 16) | (usize::from(buf[1]) << 8) | usize::from(buf[2]);
            if buf.len() < 9 + len {
                break;
            }
            let (kind, flags) = (buf[3], buf[4]);
            let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
            let payload: Vec<u8> = buf[9..9 + len].to_vec();
            buf.drain(..9 + len);
            let out = match kind {
                SETTINGS if flags & ACK == 0 => frame(SETTINGS, ACK, 0, &[]),
                PING if flags & ACK == 0 => frame(PING, ACK, 0, &payload),
                // The request is whole: answer it.
                HEADERS | DATA if flags & END_STREAM != 0 => respond(stream),
                _ => continue,
            };
            if c.write_all(&out).is_err() {
                return;
            }
        }
    }
}

/// `grpcdoc load` with 4 calls, one at a time, on one connection; its JSON
/// report.
fn load(addr: &str) -> serde_json::Value {
    let out = Command::new(BIN)
        .args([
            "load",
            addr,
            "--proto",
            "proto/helloworld/helloworld.proto",
            "--call",
            "helloworld.Greeter/SayHello",
            "-n",
            "4",
            "-c",
            "1",
            "--timeout",
            "2s",
            "-o",
            "json",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("a JSON report ({e}): {stderr}"))
}

fn all_ok(name: &str, respond: fn(u32) -> Vec<u8>) {
    let r = load(&server(respond));
    assert_eq!(r["ok"], 4, "{name}: {r}");
    assert_eq!(r["errors"], 0, "{name}: {r}");
    assert_eq!(
        r["connections"], 1,
        "{name}: one connection carried all: {r}"
    );
}

#[test]
fn the_plain_responder_is_a_working_server() {
    all_ok("plain", plain);
}

#[test]
fn header_blocks_split_over_continuation_frames() {
    all_ok("continuation", |s| {
        let mut head = head_block();
        literal(&mut head, "x-note", &[b'n'; 300]);
        let mut out = split_block(s, false, &head, 7);
        out.extend(frame(DATA, 0, s, &reply()));
        out.extend(split_block(s, true, &trailer_block(0, ""), 5));
        out
    });
}

#[test]
fn padded_headers_and_data() {
    all_ok("padding", |s| {
        let mut out = padded(HEADERS, END_HEADERS, s, &head_block(), 17);
        out.extend(padded(DATA, 0, s, &reply(), 200));
        // Padding alone: a DATA frame with no data.
        out.extend(padded(DATA, 0, s, &[], 9));
        out.extend(padded(
            HEADERS,
            END_HEADERS | END_STREAM,
            s,
            &trailer_block(0, ""),
            255,
        ));
        out
    });
}

#[test]
fn hpack_table_size_updates_and_dynamic_entries() {
    all_ok("table size", |s| {
        // Evict everything (size 0), then allow 4096 again: two updates at
        // the start of the block, as RFC 7541 4.2 permits.
        let mut head = vec![0x20];
        int(&mut head, 5, 0x20, 4096);
        head.push(STATUS_200);
        indexed_literal(&mut head, "content-type", b"application/grpc");
        indexed_literal(&mut head, "x-n", b"1");
        let mut out = frame(HEADERS, END_HEADERS, s, &head);
        out.extend(frame(DATA, 0, s, &reply()));
        // The trailers name both dynamic entries by index: 62 is the newest
        // (x-n), 63 the one before (content-type).
        let mut trailers = vec![0x80 | 62, 0x80 | 63];
        indexed_literal(&mut trailers, "grpc-status", b"0");
        out.extend(frame(HEADERS, END_HEADERS | END_STREAM, s, &trailers));
        out
    });
}

#[test]
fn an_informational_head_before_the_response() {
    all_ok("1xx", |s| {
        // `:status 100`: literal, name from static entry 8.
        let mut info = vec![0x08];
        string(&mut info, b"100");
        let mut out = frame(HEADERS, END_HEADERS, s, &info);
        out.extend(plain(s));
        out
    });
}

#[test]
fn a_64_kib_header_list() {
    all_ok("64 KiB headers", |s| {
        let mut head = head_block();
        literal(&mut head, "x-big", &vec![b'a'; 64 * 1024]);
        let mut out = split_block(s, false, &head, 16384);
        out.extend(frame(DATA, 0, s, &reply()));
        out.extend(frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            s,
            &trailer_block(0, ""),
        ));
        out
    });
}

#[test]
fn trailers_only_responses_carry_their_status() {
    let r = load(&server(|s| {
        let mut block = head_block();
        block.extend(trailer_block(5, "no such greeting"));
        frame(HEADERS, END_HEADERS | END_STREAM, s, &block)
    }));
    assert_eq!(r["ok"], 0, "{r}");
    assert_eq!(r["errors"], 4, "{r}");
    assert_eq!(r["codes"]["NOT_FOUND"]["count"], 4, "{r}");
    assert_eq!(
        r["codes"]["NOT_FOUND"]["messages"]["no such greeting"], 4,
        "{r}"
    );
    assert_eq!(
        r["connections"], 1,
        "a call's status never costs the connection: {r}"
    );
}

/// A hop that answers every call with an HTML error page (what nginx or a
/// load balancer sends when its upstream is down or slow).
fn html_502(s: u32) -> Vec<u8> {
    let mut head = Vec::new();
    literal(&mut head, ":status", b"502");
    literal(&mut head, "content-type", b"text/html");
    let mut out = frame(HEADERS, END_HEADERS, s, &head);
    out.extend(frame(
        DATA,
        END_STREAM,
        s,
        b"<html><head><title>502 Bad Gateway</title></head></html>",
    ));
    out
}

const HTML_502_MESSAGE: &str =
    "unexpected HTTP status code received from server: 502 (Bad Gateway); \
     transport: received unexpected content-type \"text/html\"; \
     body starts \"<html><head><title>502 Bad Gateway</title></head></html>\"";

#[test]
fn an_html_error_page_is_unavailable_for_load_calls() {
    let r = load(&server(html_502));
    assert_eq!(r["codes"]["UNAVAILABLE"]["count"], 4, "{r}");
    assert_eq!(
        r["codes"]["UNAVAILABLE"]["messages"][HTML_502_MESSAGE], 4,
        "{r}"
    );
    assert_eq!(r["causes"][0]["cause"], "http", "{r}");
    assert_eq!(r["causes"][0]["status"], 502, "{r}");
    assert_eq!(r["connections"], 1, "{r}");
}

#[test]
fn an_html_error_page_is_unavailable_for_watch_probes() {
    let addr = server(html_502);
    let out = Command::new(BIN)
        .args([
            "watch",
            &addr,
            "--probe",
            "helloworld.Greeter/SayHello",
            "--probe-interval",
            "300ms",
            "--for",
            "1s",
            "-o",
            "json",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rpcs: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["kind"] == "rpc")
        .collect();
    assert!(!rpcs.is_empty(), "{stdout}");
    for e in &rpcs {
        assert_eq!(e["code"], "UNAVAILABLE", "{e}");
        assert_eq!(e["message"], HTML_502_MESSAGE, "{e}");
    }
}
