//! Fault specs: `name:key=value,key=value`, the same words on the command
//! line (`--fault drop-ping:direction=upstream,acks=true,count=1`) and in
//! scenario files. Every fault takes `direction` (upstream = client to
//! server, downstream, both) and `probability` (0..1, default 1).

use std::fmt;
use std::time::Duration;

use crate::h2wire::{ErrorCode, FrameType};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Upstream,
    Downstream,
    Both,
}

impl Direction {
    pub fn covers(self, d: Direction) -> bool {
        self == Direction::Both || self == d
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Delay each chunk by `latency` +- `jitter`.
    Latency { latency: Duration, jitter: Duration },
    /// At most `rate` bytes per second.
    Bandwidth { rate: u64 },
    /// Forward in slices of `size` bytes, `delay` apart.
    Slicer { size: usize, delay: Duration },
    /// Stop forwarding, keep both sockets open (a half-open peer); with
    /// `existing`, only on connections open when the fault was added (a
    /// NAT or peer that forgot them while new connections work).
    Blackhole { existing: bool },
    /// An L4 load balancer's idle timeout: a connection idle (no byte
    /// either way) for `idle` is forgotten - blackholed or reset.
    IdleExpiry { idle: Duration, reset: bool },
    /// Reset open connections (RST: SO_LINGER 0).
    Reset,
    /// Close open connections (FIN).
    Close,
    /// Reset new connections at once: the server looks down.
    Down,
    /// Close a connection after `bytes` in this direction.
    LimitData { bytes: u64 },
    /// Hold the close of a connection `delay` after one side ended.
    SlowClose { delay: Duration },
    /// Drop PING frames (`acks`: only acks / only pings / both), the next
    /// `count` of them or all.
    DropPing {
        acks: Option<bool>,
        count: Option<u64>,
    },
    /// Delay PING frames by `delay`.
    DelayPing { acks: Option<bool>, delay: Duration },
    /// Send a GOAWAY (once, or `every`).
    InjectGoaway {
        code: ErrorCode,
        last_stream_id: Option<u32>,
        debug: String,
        every: Option<Duration>,
    },
    /// Drop GOAWAY frames.
    DropGoaway,
    /// Reset streams (`stream` = one id, else any new stream), both ways.
    InjectRstStream {
        code: ErrorCode,
        stream: Option<u32>,
    },
    /// Rewrite SETTINGS_MAX_CONCURRENT_STREAMS in SETTINGS frames.
    MaxConcurrentStreams { value: u32 },
    /// Drop frames of a control type, the next `count` or all.
    DropFrame {
        frame_type: FrameType,
        count: Option<u64>,
    },
}

/// A fault with where and how often it acts.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultSpec {
    pub text: String,
    pub fault: Fault,
    pub direction: Direction,
    pub probability: f64,
    /// Comes into force this long after it was added.
    pub after: Option<std::time::Duration>,
    /// Is removed this long after it came into force.
    pub lasts: Option<std::time::Duration>,
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FaultSpec {
    pub fn name(&self) -> &'static str {
        self.fault.name()
    }

    /// Frame-level faults need cleartext HTTP/2 (h2c).
    pub fn is_frame_level(&self) -> bool {
        matches!(
            self.fault,
            Fault::DropPing { .. }
                | Fault::DelayPing { .. }
                | Fault::InjectGoaway { .. }
                | Fault::DropGoaway
                | Fault::InjectRstStream { .. }
                | Fault::MaxConcurrentStreams { .. }
                | Fault::DropFrame { .. }
        )
    }
}

impl Fault {
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Latency { .. } => "latency",
            Fault::Bandwidth { .. } => "bandwidth",
            Fault::Slicer { .. } => "slicer",
            Fault::Blackhole { .. } => "blackhole",
            Fault::IdleExpiry { .. } => "idle-expiry",
            Fault::Reset => "reset",
            Fault::Close => "close",
            Fault::Down => "down",
            Fault::LimitData { .. } => "limit-data",
            Fault::SlowClose { .. } => "slow-close",
            Fault::DropPing { .. } => "drop-ping",
            Fault::DelayPing { .. } => "delay-ping",
            Fault::InjectGoaway { .. } => "inject-goaway",
            Fault::DropGoaway => "drop-goaway",
            Fault::InjectRstStream { .. } => "inject-rst-stream",
            Fault::MaxConcurrentStreams { .. } => "max-concurrent-streams",
            Fault::DropFrame { .. } => "drop-frame",
        }
    }
}

/// One parameter of a fault, for parsing and `--list-faults`.
pub struct Param {
    pub name: &'static str,
    pub values: &'static str,
    pub default: &'static str,
    pub meaning: &'static str,
}

const fn p(
    name: &'static str,
    values: &'static str,
    default: &'static str,
    meaning: &'static str,
) -> Param {
    Param {
        name,
        values,
        default,
        meaning,
    }
}

/// Every fault: name, what it does, its own parameters (besides direction
/// and probability, which all take).
pub const CATALOGUE: &[(&str, &str, &[Param])] = &[
    (
        "latency",
        "delay every chunk",
        &[
            p("latency", "duration", "(required)", "added delay"),
            p("jitter", "duration", "0s", "random +- on top"),
        ],
    ),
    (
        "bandwidth",
        "limit the throughput",
        &[p(
            "rate",
            "bytes per second",
            "(required)",
            "at most this many bytes a second",
        )],
    ),
    (
        "slicer",
        "forward in small slices",
        &[
            p("size", "bytes", "16", "bytes per slice"),
            p("delay", "duration", "1ms", "pause between slices"),
        ],
    ),
    (
        "idle-expiry",
        "forget a connection idle this long, as L4 load balancers do (AWS NLB 350s, Azure LB 4m, GCP 10m)",
        &[
            p("idle", "duration", "(required)", "no byte either way this long"),
            p(
                "then",
                "blackhole|reset",
                "blackhole",
                "drop its packets from then on, or reset it",
            ),
        ],
    ),
    (
        "blackhole",
        "stop forwarding, keep both sockets open (a half-open peer)",
        &[p(
            "existing",
            "true|false",
            "false",
            "only connections open when the fault was added",
        )],
    ),
    (
        "reset",
        "reset open connections (TCP RST via SO_LINGER 0)",
        &[],
    ),
    ("close", "close open connections (TCP FIN)", &[]),
    (
        "down",
        "reset new connections at once: the server looks restarted",
        &[],
    ),
    (
        "limit-data",
        "close a connection after some bytes",
        &[p(
            "bytes",
            "bytes",
            "(required)",
            "bytes forwarded before the close",
        )],
    ),
    (
        "slow-close",
        "hold a close for a while",
        &[p(
            "delay",
            "duration",
            "(required)",
            "how long the other side stays open",
        )],
    ),
    (
        "drop-ping",
        "drop HTTP/2 PING frames (h2c)",
        &[
            p(
                "acks",
                "true|false|all",
                "all",
                "only acks, only pings, or both",
            ),
            p("count", "number", "all", "drop the next N only (0: none)"),
        ],
    ),
    (
        "delay-ping",
        "delay HTTP/2 PING frames (h2c)",
        &[
            p(
                "acks",
                "true|false|all",
                "all",
                "only acks, only pings, or both",
            ),
            p("delay", "duration", "(required)", "how long each is held"),
        ],
    ),
    (
        "inject-goaway",
        "send a GOAWAY (h2c)",
        &[
            p(
                "code",
                "NO_ERROR|ENHANCE_YOUR_CALM|... or a number",
                "NO_ERROR",
                "error code",
            ),
            p(
                "last_stream_id",
                "number",
                "the last stream seen",
                "last-stream-id",
            ),
            p("debug", "text", "chaos", "debug data"),
            p(
                "every",
                "duration",
                "once",
                "send one every D (the first after D), not one at once",
            ),
        ],
    ),
    ("drop-goaway", "drop GOAWAY frames (h2c)", &[]),
    (
        "inject-rst-stream",
        "reset streams both ways (h2c)",
        &[
            p(
                "code",
                "CANCEL|REFUSED_STREAM|... or a number",
                "CANCEL",
                "error code",
            ),
            p("stream", "number", "any new stream", "only this stream id"),
        ],
    ),
    (
        "max-concurrent-streams",
        "rewrite SETTINGS_MAX_CONCURRENT_STREAMS (h2c)",
        &[p("value", "number", "(required)", "the value announced")],
    ),
    (
        "drop-frame",
        "drop control frames of one type (h2c)",
        &[
            p(
                "type",
                "PING|SETTINGS|WINDOW_UPDATE|PRIORITY|RST_STREAM|GOAWAY",
                "(required)",
                "frame type",
            ),
            p("count", "number", "all", "drop the next N only"),
        ],
    ),
];

const COMMON: &[Param] = &[
    p(
        "direction",
        "upstream|downstream|both",
        "both",
        "upstream = client to server",
    ),
    p(
        "probability",
        "0..1",
        "1",
        "chance the fault acts on a chunk, frame or connection",
    ),
    p(
        "after",
        "duration",
        "0s",
        "come into force this long after it is added",
    ),
    p("for", "duration", "always", "then act this long, and stop"),
];

/// The `--list-faults` text.
pub fn list() -> String {
    let mut out = String::from("Faults (--fault NAME:KEY=VALUE,...); every fault also takes:\n");
    for c in COMMON {
        out.push_str(&format!(
            "    {:<16} {:<28} default {:<10} {}\n",
            c.name, c.values, c.default, c.meaning
        ));
    }
    for (name, what, params) in CATALOGUE {
        out.push_str(&format!("\n  {name}: {what}\n"));
        for c in *params {
            out.push_str(&format!(
                "    {:<16} {:<28} default {:<10} {}\n",
                c.name, c.values, c.default, c.meaning
            ));
        }
    }
    out
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct SpecError(pub String);

fn duration(fault: &str, key: &str, v: &str) -> Result<Duration, SpecError> {
    crate::parse::parse_duration(v).map_err(|_| {
        SpecError(format!(
            "{fault}: `{key}={v}` is not a duration; expected 500ms, 2s or 1m30s"
        ))
    })
}

fn number<T: std::str::FromStr>(
    fault: &str,
    key: &str,
    v: &str,
    what: &str,
) -> Result<T, SpecError> {
    v.parse()
        .map_err(|_| SpecError(format!("{fault}: `{key}={v}` is not {what}")))
}

impl std::str::FromStr for FaultSpec {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, SpecError> {
        let text = text.trim();
        let (name, rest) = text.split_once(':').unwrap_or((text, ""));
        let Some((_, _, params)) = CATALOGUE.iter().find(|(n, _, _)| *n == name) else {
            let names: Vec<&str> = CATALOGUE.iter().map(|c| c.0).collect();
            return Err(SpecError(format!(
                "unknown fault `{name}`; the faults are: {} (grpcdoc proxy --list-faults)",
                names.join(", ")
            )));
        };
        let mut kv: Vec<(&str, &str)> = Vec::new();
        for item in rest.split(',').filter(|s| !s.trim().is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| SpecError(format!("{name}: `{item}` is not key=value")))?;
            let (k, v) = (k.trim(), v.trim());
            if !params.iter().chain(COMMON).any(|p| p.name == k) {
                let accepted: Vec<&str> = params.iter().chain(COMMON).map(|p| p.name).collect();
                return Err(SpecError(format!(
                    "{name}: unknown parameter `{k}`; it takes {}",
                    accepted.join(", ")
                )));
            }
            kv.push((k, v));
        }
        let get = |k: &str| kv.iter().rev().find(|(key, _)| *key == k).map(|(_, v)| *v);
        let need = |k: &str| get(k).ok_or_else(|| SpecError(format!("{name}: `{k}` is required")));
        let acks = |v: Option<&str>| match v {
            None | Some("all") => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(SpecError(format!(
                "{name}: `acks={other}` must be true, false or all"
            ))),
        };
        let count = |v: Option<&str>| match v {
            None | Some("all") => Ok(None),
            Some(n) => number(name, "count", n, "a number or all").map(Some),
        };
        let code = |v: Option<&str>, default: ErrorCode| {
            match v {
            None => Ok(default),
            Some(c) => ErrorCode::from_name(c).ok_or_else(|| {
                SpecError(format!("{name}: `code={c}` is not an HTTP/2 error code (NO_ERROR, CANCEL, REFUSED_STREAM, ENHANCE_YOUR_CALM, ... or a number)"))
            }),
        }
        };
        let fault = match name {
            "latency" => Fault::Latency {
                latency: duration(name, "latency", need("latency")?)?,
                jitter: get("jitter")
                    .map(|v| duration(name, "jitter", v))
                    .transpose()?
                    .unwrap_or_default(),
            },
            "bandwidth" => {
                let rate: u64 =
                    number(name, "rate", need("rate")?, "a number of bytes per second")?;
                if rate == 0 {
                    return Err(SpecError(format!(
                        "{name}: `rate` must be above 0 (blackhole stops forwarding)"
                    )));
                }
                Fault::Bandwidth { rate }
            }
            "slicer" => Fault::Slicer {
                size: get("size")
                    .map(|v| number(name, "size", v, "a number of bytes"))
                    .transpose()?
                    .unwrap_or(16)
                    .max(1),
                delay: get("delay")
                    .map(|v| duration(name, "delay", v))
                    .transpose()?
                    .unwrap_or(Duration::from_millis(1)),
            },
            "idle-expiry" => Fault::IdleExpiry {
                idle: duration(name, "idle", need("idle")?)?,
                reset: match get("then") {
                    None | Some("blackhole") => false,
                    Some("reset") => true,
                    Some(v) => {
                        return Err(SpecError(format!(
                            "{name}: `then={v}` must be blackhole or reset"
                        )))
                    }
                },
            },
            "blackhole" => Fault::Blackhole {
                existing: match get("existing") {
                    None | Some("false") => false,
                    Some("true") => true,
                    Some(v) => {
                        return Err(SpecError(format!(
                            "{name}: `existing={v}` must be true or false"
                        )))
                    }
                },
            },
            "reset" => Fault::Reset,
            "close" => Fault::Close,
            "down" => Fault::Down,
            "limit-data" => Fault::LimitData {
                bytes: number(name, "bytes", need("bytes")?, "a number of bytes")?,
            },
            "slow-close" => Fault::SlowClose {
                delay: duration(name, "delay", need("delay")?)?,
            },
            "drop-ping" => Fault::DropPing {
                acks: acks(get("acks"))?,
                count: count(get("count"))?,
            },
            "delay-ping" => Fault::DelayPing {
                acks: acks(get("acks"))?,
                delay: duration(name, "delay", need("delay")?)?,
            },
            "inject-goaway" => Fault::InjectGoaway {
                code: code(get("code"), ErrorCode::NO_ERROR)?,
                last_stream_id: get("last_stream_id")
                    .map(|v| number(name, "last_stream_id", v, "a stream id"))
                    .transpose()?,
                debug: get("debug").unwrap_or("chaos").to_string(),
                every: get("every")
                    .map(|v| duration(name, "every", v))
                    .transpose()?,
            },
            "drop-goaway" => Fault::DropGoaway,
            "inject-rst-stream" => Fault::InjectRstStream {
                code: code(get("code"), ErrorCode::CANCEL)?,
                stream: get("stream")
                    .map(|v| number(name, "stream", v, "a stream id"))
                    .transpose()?,
            },
            "max-concurrent-streams" => Fault::MaxConcurrentStreams {
                value: number(name, "value", need("value")?, "a number")?,
            },
            "drop-frame" => {
                let t = need("type")?.to_ascii_uppercase();
                let frame_type = [
                    FrameType::Ping,
                    FrameType::Settings,
                    FrameType::WindowUpdate,
                    FrameType::Priority,
                    FrameType::RstStream,
                    FrameType::GoAway,
                ]
                .into_iter()
                .find(|f| f.name() == t)
                .ok_or_else(|| {
                    SpecError(format!(
                        "{name}: `type={t}` cannot be dropped whole; it takes PING, SETTINGS, WINDOW_UPDATE, PRIORITY, RST_STREAM or GOAWAY (dropping HEADERS or DATA would break the stream)"
                    ))
                })?;
                Fault::DropFrame {
                    frame_type,
                    count: count(get("count"))?,
                }
            }
            _ => unreachable!("every catalogued fault is parsed"),
        };
        let direction = match get("direction").unwrap_or("both") {
            "upstream" | "up" => Direction::Upstream,
            "downstream" | "down" => Direction::Downstream,
            "both" => Direction::Both,
            other => {
                return Err(SpecError(format!(
                    "{name}: `direction={other}` must be upstream, downstream or both"
                )))
            }
        };
        let probability: f64 = match get("probability") {
            None => 1.0,
            Some(v) => v
                .parse()
                .ok()
                .filter(|x: &f64| (0.0..=1.0).contains(x))
                .ok_or_else(|| {
                    SpecError(format!(
                        "{name}: `probability={v}` must be a number from 0 to 1"
                    ))
                })?,
        };
        let after = get("after")
            .map(|v| duration(name, "after", v))
            .transpose()?;
        let lasts = get("for").map(|v| duration(name, "for", v)).transpose()?;
        Ok(FaultSpec {
            text: text.to_string(),
            fault,
            direction,
            probability,
            after: after.filter(|d| !d.is_zero()),
            lasts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let s: FaultSpec = "drop-ping:direction=upstream,acks=true,count=1"
            .parse()
            .unwrap();
        assert_eq!(
            s.fault,
            Fault::DropPing {
                acks: Some(true),
                count: Some(1)
            }
        );
        assert_eq!(s.direction, Direction::Upstream);
        assert!(s.is_frame_level());
        let s: FaultSpec = "inject-goaway:debug=chaos,code=ENHANCE_YOUR_CALM"
            .parse()
            .unwrap();
        assert!(
            matches!(s.fault, Fault::InjectGoaway { code: ErrorCode::ENHANCE_YOUR_CALM, ref debug, every: None, .. } if debug == "chaos")
        );
        let s: FaultSpec = "latency:latency=50ms,jitter=10ms,probability=0.5"
            .parse()
            .unwrap();
        assert_eq!(s.probability, 0.5);
        assert!(!s.is_frame_level());
        assert_eq!(
            "blackhole".parse::<FaultSpec>().unwrap().fault,
            Fault::Blackhole { existing: false }
        );
        assert_eq!(
            "blackhole:existing=true"
                .parse::<FaultSpec>()
                .unwrap()
                .fault,
            Fault::Blackhole { existing: true }
        );
        assert!("blackhole:existing=maybe".parse::<FaultSpec>().is_err());
    }

    #[test]
    fn errors_name_the_fault_the_parameter_and_the_values() {
        for (bad, says) in [
            ("wobble", "unknown fault `wobble`; the faults are: latency"),
            ("latency", "latency: `latency` is required"),
            ("latency:latency=fast", "not a duration"),
            (
                "latency:latency=1s,speed=2",
                "unknown parameter `speed`; it takes latency, jitter, direction, probability",
            ),
            ("drop-ping:acks=maybe", "must be true, false or all"),
            (
                "drop-ping:direction=sideways",
                "must be upstream, downstream or both",
            ),
            ("drop-ping:probability=2", "from 0 to 1"),
            ("inject-goaway:code=OOPS", "not an HTTP/2 error code"),
            ("drop-frame:type=DATA", "cannot be dropped whole"),
            ("bandwidth:rate=0", "above 0"),
            ("slicer:size", "not key=value"),
        ] {
            let e = bad.parse::<FaultSpec>().unwrap_err().0;
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn every_catalogued_fault_parses_with_its_required_params() {
        for (name, _, params) in CATALOGUE {
            let req: Vec<String> = params
                .iter()
                .filter(|p| p.default == "(required)")
                .map(|p| {
                    format!(
                        "{}={}",
                        p.name,
                        match p.values {
                            "duration" => "1s",
                            v if v.starts_with("PING") => "PING",
                            _ => "5",
                        }
                    )
                })
                .collect();
            let text = if req.is_empty() {
                name.to_string()
            } else {
                format!("{name}:{}", req.join(","))
            };
            let s: FaultSpec = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(s.name(), *name);
        }
        assert!(list().contains("inject-goaway: send a GOAWAY"));
    }
}
