//! Reading messages: spellings, log shapes, generic words, cause chains.

use super::*;
use crate::catalogue::EntryId::{self, *};

fn top(text: &str) -> (Verdict, Option<EntryId>) {
    let r = read(text);
    (r.verdict, r.findings.first().map(|f| f.id))
}

#[test]
fn every_spelling_of_a_status_is_read() {
    for t in [
        "rpc error: code = DeadlineExceeded desc = context deadline exceeded",
        "Status(StatusCode=\"DeadlineExceeded\", Detail=\"Deadline Exceeded\")",
        "Error: 4 DEADLINE_EXCEEDED: Deadline exceeded after 4.999s",
        "io.grpc.StatusRuntimeException: DEADLINE_EXCEEDED: deadline exceeded after 4.999s",
        "<_InactiveRpcError of RPC that terminated with: status = StatusCode.DEADLINE_EXCEEDED details = \"Deadline Exceeded\">",
    ] {
        // The deadline passed; why is open (a slow server, a queue, a
        // dead connection), so it is the first of several.
        assert_eq!(top(t), (Verdict::Several, Some(Deadline)), "{t}");
    }
}

#[test]
fn the_stable_words_of_a_cause_count() {
    assert_eq!(
        top("rpc error: code = Unavailable desc = transport is closing; server sent GOAWAY ENHANCE_YOUR_CALM too_many_pings"),
        (Verdict::One, Some(TooManyPings))
    );
    assert_eq!(
        top("Keepalive failed. The connection is likely gone"),
        (Verdict::One, Some(KeepaliveTimeout))
    );
    assert_eq!(
        top("rpc error: code = Unavailable desc = name resolver error: produced zero addresses"),
        (Verdict::One, Some(NameResolution))
    );
    assert_eq!(
        top("dial tcp 10.0.0.5:443: connectex: No connection could be made because the target machine actively refused it."),
        (Verdict::One, Some(ConnectionRefused))
    );
}

#[test]
fn a_generic_message_never_picks_one_cause() {
    for t in [
        "rpc error: code = Unavailable desc = transport is closing",
        "Stream removed (Socket closed)",
        "read: Connection reset by peer",
        "connection closed",
        "UNAVAILABLE: Network closed for unknown reason",
        "Error: 14 UNAVAILABLE: Connection dropped",
    ] {
        let r = read(t);
        assert_eq!(r.verdict, Verdict::Several, "{t}: {r:?}");
        assert!(r.findings.len() >= 2, "{t}");
        assert!(r.tell.is_some(), "{t}");
    }
    // The other evidence ranks the fits.
    let r = read(
        "rpc error: code = Unavailable desc = transport is closing (after the pod was OOMKilled)",
    );
    assert_eq!(r.findings[0].id, ServerCrash);
}

#[test]
fn json_log_lines_and_cause_chains() {
    let zap = r#"{"level":"error","ts":1700000000.1,"msg":"call failed","error":"rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing dial tcp 10.0.0.1:50051: connect: connection refused\""}"#;
    assert_eq!(top(zap), (Verdict::One, Some(ConnectionRefused)));
    let java = "io.grpc.StatusRuntimeException: UNAVAILABLE: io exception\n\tat io.grpc.stub.ClientCalls.toStatusRuntimeException(ClientCalls.java:262)\nCaused by: io.netty.channel.AbstractChannel$AnnotatedConnectException: Connection refused: /127.0.0.1:50054\nCaused by: java.net.ConnectException: Connection refused";
    let r = read(java);
    assert_eq!(
        (r.verdict, r.findings[0].id),
        (Verdict::One, ConnectionRefused)
    );
    assert_eq!(r.family, Some(Family::Java));
}

#[test]
fn a_length_that_is_text_is_a_wrong_endpoint() {
    assert_eq!(
        top("rpc error: code = ResourceExhausted desc = grpc: received message larger than max (1213486160 vs. 4194304)"),
        (Verdict::One, Some(NotGrpcEndpoint))
    );
    assert_eq!(
        top("rpc error: code = ResourceExhausted desc = grpc: received message larger than max (4561623 vs. 4194304)"),
        (Verdict::One, Some(MessageTooLarge))
    );
}

#[test]
fn proxies_by_their_words_and_flags() {
    assert_eq!(
        top("upstream connect error or disconnect/reset before headers. reset reason: connection failure"),
        (Verdict::One, Some(ProxyNoUpstream))
    );
    assert_eq!(
        top("upstream connect error or disconnect/reset before headers. reset reason: overflow"),
        (Verdict::One, Some(ProxyOverflow))
    );
    assert_eq!(
        top("[2026-12-01T10:00:00.000Z] \"POST /pkg.Svc/M HTTP/2\" 200 UC 0 0 12 - \"-\""),
        (Verdict::One, Some(ProxyUpstreamReset))
    );
    assert_eq!(
        top("2026/12/01 10:00:00 [error] 31#31: *5 upstream prematurely closed connection while reading response header from upstream, client: 10.0.0.2"),
        (Verdict::One, Some(ProxyUpstreamReset))
    );
}

#[test]
fn every_recorded_message_reads_as_its_entry() {
    for e in crate::catalogue::CATALOGUE {
        for s in e.says {
            let text = s.message.replace('*', " 127.0.0.1:50051 ");
            let r = read(&text);
            let ids: Vec<EntryId> = r.findings.iter().map(|f| f.id).collect();
            match r.verdict {
                Verdict::One => assert_eq!(
                    ids[0],
                    e.id,
                    "{} ({}): {text:?} reads {r:?}",
                    e.id,
                    s.stack.name()
                ),
                Verdict::Several => assert!(
                    ids.contains(&e.id),
                    "{} ({}): {text:?} reads {r:?}",
                    e.id,
                    s.stack.name()
                ),
                Verdict::None => panic!("{} ({}): {text:?} reads nothing", e.id, s.stack.name()),
            }
        }
    }
}

#[test]
fn lines_without_evidence_are_passed_over_cheaply() {
    let ix = index();
    for line in [
        "2026-12-01T10:00:11.123Z INFO handled request path=/api/v1/items status=200 duration_ms=123",
        "{\"level\":\"info\",\"msg\":\"request finished\",\"method\":\"GET\",\"status\":200}",
        "127.0.0.1 - - [01/Dec/2026:10:00:11] \"POST /a.B/C HTTP/2.0\" 200 12 \"-\"",
    ] {
        assert!(!worth_reading(ix, line), "{line}");
    }
    for line in [
        "rpc error: code = Unavailable desc = transport is closing",
        "ObjectDisposedException: Cannot access a disposed object",
        "127.0.0.1 - - [01/Dec/2026:10:00:11] \"POST /a.B/C HTTP/2.0\" 504 12 \"-\"",
    ] {
        assert!(worth_reading(ix, line), "{line}");
    }
}
