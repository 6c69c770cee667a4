//! Bits of the gRPC-over-HTTP/2 protocol both ends need.

use std::time::Duration;

/// Parses a `grpc-timeout` value: 1-8 digits and a unit (H, M, S, m, u, n).
/// How the status of a call the server never processed begins.
pub const NEVER_PROCESSED: &str = "stream never processed by the server";

/// grpc-message is percent-encoded (gRPC over HTTP/2).
pub fn percent_decode(s: &str) -> String {
    fn hex(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_timeout(v: &str) -> Option<Duration> {
    // A peer's header: not ASCII is not a timeout (and would not split at
    // its last byte).
    if v.len() < 2 || v.len() > 9 || !v.is_ascii() {
        return None;
    }
    let (num, unit) = v.split_at(v.len() - 1);
    if !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The canonical name of a gRPC status code (as grpc-go and C-core print it).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A status code from its name (`UNAVAILABLE`, any case).
pub fn code_by_name(name: &str) -> Option<tonic::Code> {
    (0..=16)
        .map(tonic::Code::from_i32)
        .find(|c| code_name(*c).eq_ignore_ascii_case(name.trim()))
}

/// The status of a response that is not gRPC (gRPC's
/// http-grpc-status-mapping: 400 INTERNAL, 401 UNAUTHENTICATED, 403
/// PERMISSION_DENIED, 404 UNIMPLEMENTED, 429/502/503/504 UNAVAILABLE, any
/// other UNKNOWN; a 200 that is not gRPC is UNKNOWN too), and its message as
/// grpc-go words it, with the first bytes of the body after it.
pub fn foreign_status(
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> (tonic::Code, String) {
    use tonic::Code;
    let code = match status {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    };
    let mut parts = Vec::new();
    if status != 200 {
        let reason = http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        parts.push(format!(
            "unexpected HTTP status code received from server: {status} ({reason})"
        ));
    }
    match content_type {
        Some(ct) if !ct.starts_with("application/grpc") => {
            parts.push(format!(
                "transport: received unexpected content-type {ct:?}"
            ));
        }
        Some(_) => {}
        None => parts.push("malformed header: missing HTTP content-type".into()),
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if !text.is_empty() {
        parts.push(format!("body starts {text:?}"));
    }
    (code, parts.join("; "))
}

/// The status of a call its server reset (gRPC's PROTOCOL-HTTP2: CANCEL is
/// CANCELLED, REFUSED_STREAM UNAVAILABLE, ENHANCE_YOUR_CALM
/// RESOURCE_EXHAUSTED, INADEQUATE_SECURITY PERMISSION_DENIED, any other
/// INTERNAL), with grpc-go's message.
pub fn reset_status(code: crate::h2wire::ErrorCode) -> (tonic::Code, String) {
    use crate::h2wire::ErrorCode as E;
    let status = match code {
        E::CANCEL => tonic::Code::Cancelled,
        E::REFUSED_STREAM => tonic::Code::Unavailable,
        E::ENHANCE_YOUR_CALM => tonic::Code::ResourceExhausted,
        E::INADEQUATE_SECURITY => tonic::Code::PermissionDenied,
        _ => tonic::Code::Internal,
    };
    (
        status,
        format!("stream terminated by RST_STREAM with error code: {code}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        for (v, want) in [
            ("100m", Some(Duration::from_millis(100))),
            ("2S", Some(Duration::from_secs(2))),
            ("1H", Some(Duration::from_secs(3600))),
            ("5", None),
            ("123456789m", None),
            ("10x", None),
            ("+1S", None),
            ("300000\u{fffd}", None),
        ] {
            assert_eq!(parse_timeout(v), want, "{v}");
        }
    }

    #[test]
    fn foreign_responses_map_as_the_spec_says() {
        use tonic::Code;
        let (code, msg) = foreign_status(504, Some("text/html"), b"<html>\r\n<head>");
        assert_eq!(code, Code::Unavailable);
        assert_eq!(
            msg,
            "unexpected HTTP status code received from server: 504 (Gateway Timeout); \
             transport: received unexpected content-type \"text/html\"; body starts \"<html>\\r\\n<head>\""
        );
        for (status, want) in [
            (400, Code::Internal),
            (401, Code::Unauthenticated),
            (403, Code::PermissionDenied),
            (404, Code::Unimplemented),
            (429, Code::Unavailable),
            (502, Code::Unavailable),
            (503, Code::Unavailable),
            (500, Code::Unknown),
            (200, Code::Unknown),
        ] {
            assert_eq!(foreign_status(status, None, b"").0, want, "{status}");
        }
        assert_eq!(
            foreign_status(200, None, b"").1,
            "malformed header: missing HTTP content-type"
        );
    }

    #[test]
    fn resets_map_as_the_spec_says() {
        use crate::h2wire::ErrorCode as E;
        use tonic::Code;
        for (e, want) in [
            (E::CANCEL, Code::Cancelled),
            (E::REFUSED_STREAM, Code::Unavailable),
            (E::ENHANCE_YOUR_CALM, Code::ResourceExhausted),
            (E::INADEQUATE_SECURITY, Code::PermissionDenied),
            (E::INTERNAL_ERROR, Code::Internal),
            (E::NO_ERROR, Code::Internal),
            (E::PROTOCOL_ERROR, Code::Internal),
        ] {
            assert_eq!(reset_status(e).0, want, "{e}");
        }
        assert_eq!(
            reset_status(E::CANCEL).1,
            "stream terminated by RST_STREAM with error code: CANCEL"
        );
    }
}
