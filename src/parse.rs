//! Value parsers shared by the command line and the files grpcdoc reads
//! (scenario YAML, fault specs, thresholds): durations, counts, listen
//! addresses and metadata. A leaf: it imports nothing of grpcdoc.

use std::net::SocketAddr;
use std::time::Duration;

/// A whole number from 1 to MAX.
pub fn count<const MAX: u32>(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u64>() {
        Ok(n) if (1..=u64::from(MAX)).contains(&n) => Ok(n as u32),
        Ok(n) => Err(format!(
            "{n} is out of range; expected a whole number from 1 to {MAX}"
        )),
        Err(_) => Err(format!(
            "`{s}` is not a number; expected a whole number from 1 to {MAX}"
        )),
    }
}

/// A number of calls, 1 or more.
pub fn total(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "`{s}` is not a number of calls; expected a whole number, 1 or more"
        )),
    }
}

/// `key: value` metadata; keys are lowercased as HTTP/2 requires.
pub fn parse_metadata(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}` is not `key: value`"))?;
    let k = k.trim().to_ascii_lowercase();
    let v = v.trim().to_string();
    http::header::HeaderName::from_bytes(k.as_bytes())
        .map_err(|_| format!("`{k}` is not a valid metadata key"))?;
    if k.starts_with(':') || k.starts_with("grpc-") && k != "grpc-timeout" {
        return Err(format!("`{k}` is reserved by gRPC"));
    }
    http::HeaderValue::from_str(&v)
        .map_err(|_| format!("the value of `{k}` is not a valid header value"))?;
    Ok((k, v))
}

/// A humantime duration (`500ms`, `2s`, `1m30s`); a bare `0` is zero.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{e}; expected a duration like 500ms, 2s or 1m30s"))
}

/// A call deadline: a duration above zero (a zero deadline would fail
/// every call at once; no flag at all means no deadline).
pub fn parse_deadline(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(
            "a zero deadline fails every call at once; leave the flag out for no deadline".into(),
        );
    }
    Ok(d)
}

/// `HOST:PORT` with an IP address, `localhost:PORT`, or `:PORT` (loopback).
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Some(port) = s.strip_prefix(':') {
        return parse_port(port).map(|p| SocketAddr::from(([127, 0, 0, 1], p)));
    }
    if let Some(port) = s.strip_prefix("localhost:") {
        return parse_port(port).map(|p| SocketAddr::from(([127, 0, 0, 1], p)));
    }
    s.parse().map_err(|_| {
        "expected IP:PORT (127.0.0.1:50051, [::1]:50051), localhost:PORT or :PORT".to_string()
    })
}

fn parse_port(p: &str) -> Result<u16, String> {
    p.parse()
        .map_err(|_| format!("`{p}` is not a port; expected a number from 0 to 65535"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("1x")
            .unwrap_err()
            .contains("expected a duration"));
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen(":0").unwrap().to_string(), "127.0.0.1:0");
        assert_eq!(
            parse_listen("localhost:7").unwrap().to_string(),
            "127.0.0.1:7"
        );
        assert_eq!(parse_listen("[::1]:80").unwrap().to_string(), "[::1]:80");
        assert!(parse_listen("nohost").is_err());
        assert!(parse_listen(":99999").unwrap_err().contains("not a port"));
    }
}
