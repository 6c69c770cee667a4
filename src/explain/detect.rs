//! Evidence that is not words: HTTP statuses named in any spelling, lengths
//! that are ASCII text read as numbers, hex dumps of received bytes,
//! case-sensitive tokens (Envoy's response flags, HAProxy's termination
//! states), and the stack that printed the message.

use std::sync::OnceLock;

use regex::Regex;

use crate::catalogue::Family;

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}")))
}

/// The HTTP statuses a message names: `HTTP status code 502`, `:status
/// 504`, `status: 503`, `502 Bad Gateway`, `HTTP/1.1 404`, `Got status
/// code: 404`.
pub fn http_statuses(lower: &str) -> Vec<u16> {
    static NAMED: OnceLock<Regex> = OnceLock::new();
    static REASON: OnceLock<Regex> = OnceLock::new();
    let named = re(
        &NAMED,
        r#"(?:status(?:[ _]?code)?|http/[0-9.]+|http|response[ _]code|elb[ _]status[ _]code)["']?\s*[:=]?\s*["']?([1-5][0-9][0-9])\b"#,
    );
    let reason = re(
        &REASON,
        r"\b([1-5][0-9][0-9])\s*\(?(?:bad gateway|gateway timeout|gateway time-out|service unavailable|service temporarily unavailable|not found|unsupported media type|bad request|method not allowed|moved permanently|internal server error|upgrade required|forbidden|unauthorized)",
    );
    static ACCESS: OnceLock<Regex> = OnceLock::new();
    // An access log: the request line, then the status.
    let access = re(&ACCESS, r#"http/[0-9.]+"[|,\s]*([1-5][0-9][0-9])\b"#);
    let mut out: Vec<u16> = named
        .captures_iter(lower)
        .chain(reason.captures_iter(lower))
        .chain(access.captures_iter(lower))
        .filter_map(|c| c.get(1)?.as_str().parse().ok())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Whether a number from 300 to 599 stands alone in `text`: a cheap look
/// before the status patterns run.
pub fn has_error_number(text: &[u8]) -> bool {
    let mut i = 0;
    while i < text.len() {
        if !text[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < text.len() && text[i].is_ascii_digit() {
            i += 1;
        }
        let alone = (start == 0 || !text[start - 1].is_ascii_alphanumeric())
            && (i == text.len() || !text[i].is_ascii_alphanumeric());
        if i - start == 3 && alone && (b'3'..=b'5').contains(&text[start]) {
            return true;
        }
    }
    false
}

/// A length that is text: the 4 (or, after `frame`, 3) big-endian bytes of
/// a number that are printable ASCII with letters in them (1213486160 is
/// `HTTP`, 4740180 is `HTT`). Returns the number and its text.
pub fn ascii_length(text: &str) -> Option<(u64, String)> {
    static NUM: OnceLock<Regex> = OnceLock::new();
    let num = re(&NUM, r"\b([0-9]{7,10})\b");
    for m in num.captures_iter(text) {
        let Some(g) = m.get(1) else { continue };
        let Ok(n) = g.as_str().parse::<u64>() else {
            continue;
        };
        let before = &text[g.start().saturating_sub(48)..g.start()].to_ascii_lowercase();
        let bytes: Vec<u8> = if (1 << 24..1 << 32).contains(&n) {
            (n as u32).to_be_bytes().to_vec()
        } else if (0x20_2020..1 << 24).contains(&n) && before.contains("frame") {
            (n as u32).to_be_bytes()[1..].to_vec()
        } else {
            continue;
        };
        if let Some(text) = text_of(&bytes) {
            return Some((n, text));
        }
    }
    None
}

/// What `bytes` (a length's bytes) say when they are the start of an
/// answer that is not gRPC: `HTTP`, `{"`, `<htm`, a TLS record, or words.
fn text_of(bytes: &[u8]) -> Option<String> {
    if bytes.len() >= 2 && (bytes[0] == 0x15 || bytes[0] == 0x16) && bytes[1] == 0x03 {
        return Some("a TLS record".into());
    }
    let printable = bytes.iter().all(|b| (0x20..0x7f).contains(b));
    let known = [
        &b"HTT"[..],
        b"{\"",
        b"<!",
        b"<?",
        b"<h",
        b"<H",
        b"GET",
        b"POS",
        b"PRI",
    ];
    let words = bytes.iter().all(|b| b.is_ascii_alphabetic() || *b == b' ')
        && bytes.iter().filter(|b| b.is_ascii_alphabetic()).count() >= 3;
    (printable && (known.iter().any(|k| bytes.starts_with(k)) || words))
        .then(|| format!("{:?}", String::from_utf8_lossy(bytes)))
}

/// What a hex dump of received bytes holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HexDump {
    /// A TLS record (0x16 0x03: a handshake; 0x15 0x03: an alert).
    Tls,
    /// HTTP/1 text (`GET /`, `HTTP/1.1 400`).
    Http1,
}

/// The first hex dump after `hex dump` (Netty's `Hex dump for received
/// bytes: 16030100...`), read.
pub fn hex_dump(lower: &str) -> Option<HexDump> {
    static HEX: OnceLock<Regex> = OnceLock::new();
    let hex = re(&HEX, r"hex dump[^:]{0,40}:\s*([0-9a-f]{8,})");
    let digits = hex.captures(lower)?.get(1)?.as_str();
    let bytes: Vec<u8> = (0..digits.len() / 2)
        .filter_map(|i| u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).ok())
        .collect();
    if bytes.len() >= 2 && (bytes[0] == 0x16 || bytes[0] == 0x15) && bytes[1] == 0x03 {
        return Some(HexDump::Tls);
    }
    let text = String::from_utf8_lossy(&bytes);
    let http1 = [
        "GET ", "POST ", "PUT ", "HEAD ", "OPTIONS", "HTTP/1", "DELETE ", "CONNECT ",
    ];
    http1
        .iter()
        .any(|m| text.starts_with(m))
        .then_some(HexDump::Http1)
}

/// Whether `token` occurs as a whole token (delimited by anything but
/// letters, digits, `-`, `<`, `>`), case-sensitive.
pub fn has_token(text: &str, token: &str) -> bool {
    let sep = |c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '<' || c == '>');
    text.split(sep).any(|t| t == token)
}

/// The family whose client or proxy printed the text, from its marks: an
/// exception class, a status spelling, a log format.
pub fn family(text: &str, words: &str) -> Option<Family> {
    // (marks in the normalised words, family); the first family with a
    // mark wins, most distinctive first.
    const MARKS: &[(&[&str], Family)] = &[
        (
            &[
                " upstream connect error ",
                " reset reason ",
                " envoy ",
                " istio ",
                " response flags ",
            ],
            Family::Envoy,
        ),
        (
            &[
                " while connecting to upstream ",
                " nginx ",
                " from upstream ",
                " upstream prematurely ",
            ],
            Family::Nginx,
        ),
        (&[" haproxy ", " nosrv "], Family::Haproxy),
        (&[" caddy ", " reverse proxy "], Family::Caddy),
        (
            &[" elb ", " alb ", " target group ", " load balancer status "],
            Family::Cloud,
        ),
        (
            &[
                " io grpc ",
                " status runtime exception ",
                " netty ",
                " java ",
                " kotlin ",
                " http 2 error code ",
            ],
            Family::Java,
        ),
        (
            &[
                " grpc core rpc exception ",
                " rpc exception ",
                " system net ",
                " grpc net client ",
                " sockets http handler ",
                " kestrel ",
            ],
            Family::Dotnet,
        ),
        (
            &[
                " grpc js ",
                " node modules ",
                " call error from status ",
                " grpc node ",
            ],
            Family::Node,
        ),
        (
            &[
                " debug error string ",
                " inactive rpc error ",
                " rendezvous ",
                " grpc channel ",
                " grpc aio ",
                " status code unavailable ",
                " grpc bad status ",
                " grpc core ",
                " chttp2 ",
                " ev epoll ",
            ],
            Family::Core,
        ),
        (
            &[
                " rpc error code ",
                " desc ",
                " transport ",
                " grpc go ",
                " google golang org ",
            ],
            Family::Go,
        ),
    ];
    // A few marks need the original spelling.
    if text.contains("Status(StatusCode") || text.contains("StatusCode=") {
        return Some(Family::Dotnet);
    }
    if text.contains("GRPC::") || text.contains("StatusCode.") {
        return Some(Family::Core);
    }
    static NODE: OnceLock<Regex> = OnceLock::new();
    if re(&NODE, r"\bError: [0-9]{1,2} [A-Z_]{5,}:").is_match(text) {
        return Some(Family::Node);
    }
    MARKS
        .iter()
        .find(|(marks, _)| marks.iter().any(|m| words.contains(m)))
        .map(|(_, f)| *f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::normalize::words;

    #[test]
    fn statuses_in_every_spelling() {
        let s = |t: &str| http_statuses(&t.to_ascii_lowercase());
        assert_eq!(
            s("Bad Gateway: HTTP status code 502; transport: missing"),
            vec![502]
        );
        assert_eq!(s("Received http2 header with status: 504"), vec![504]);
        assert_eq!(
            s("unexpected HTTP status code received from server: 404 (Not Found)"),
            vec![404]
        );
        assert_eq!(s("Got status code: 415"), vec![415]);
        assert_eq!(s("HTTP/1.1 503 Service Unavailable"), vec![503]);
        assert_eq!(s("elb_status_code=464"), vec![464]);
        assert_eq!(
            s("[11:24:40]|| \"POST /a.B/C HTTP/2.0\"|| 502|| 150"),
            vec![502]
        );
        assert!(s("error code 2, code = 14").is_empty());
    }

    #[test]
    fn ascii_lengths_are_found_and_real_sizes_are_not() {
        let (n, t) =
            ascii_length("grpc: received message larger than max (1213486160 vs. 4194304)")
                .unwrap();
        assert_eq!((n, t.as_str()), (1213486160, "\"HTTP\""));
        assert!(ascii_length("\"created\":\"@1597853230.644904813\"").is_none());
        let (_, t) =
            ascii_length("upstream sent too large http2 frame: 4740180 while reading").unwrap();
        assert_eq!(t, "\"HTT\"");
        assert!(ascii_length("received message larger than max (4561623 vs. 4194304)").is_none());
        assert!(ascii_length("larger than max (2097152000 vs. 4194304)").is_none());
    }

    #[test]
    fn hex_dumps_of_tls_and_http1() {
        assert_eq!(
            hex_dump("http/2 client preface string missing or corrupt. hex dump for received bytes: 1603010200010001fc0303"),
            Some(HexDump::Tls)
        );
        assert_eq!(
            hex_dump("hex dump for received bytes: 474554202f20485454502f312e310d0a"),
            Some(HexDump::Http1)
        );
        assert_eq!(hex_dump("hex dump: 505249202a"), None);
    }

    #[test]
    fn tokens_are_whole_and_case_sensitive() {
        assert!(has_token("\"POST /x HTTP/2\" 503 UF,URX 0 91", "UF"));
        assert!(has_token("0/0/5001/-1/5001 504 194 - - sD-- 1/1/0", "sD--"));
        assert!(!has_token("the UFO", "UF"));
        assert!(!has_token("uf", "UF"));
    }

    #[test]
    fn families_from_their_marks() {
        let f = |t: &str| family(t, &words(t));
        assert_eq!(
            f("io.grpc.StatusRuntimeException: UNAVAILABLE: io exception"),
            Some(Family::Java)
        );
        assert_eq!(
            f("Grpc.Core.RpcException: Status(StatusCode=\"Unavailable\", Detail=\"x\")"),
            Some(Family::Dotnet)
        );
        assert_eq!(
            f("Error: 14 UNAVAILABLE: No connection established"),
            Some(Family::Node)
        );
        assert_eq!(
            f("rpc error: code = Unavailable desc = transport is closing"),
            Some(Family::Go)
        );
        assert_eq!(f("grpc._channel._InactiveRpcError: <_InactiveRpcError of RPC that terminated with: status = StatusCode.UNAVAILABLE"), Some(Family::Core));
        assert_eq!(f("upstream connect error or disconnect/reset before headers. reset reason: connection failure"), Some(Family::Envoy));
        assert_eq!(f("all is well"), None);
    }
}
