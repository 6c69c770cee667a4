//! The failure catalogue: every connection failure grpcdoc knows, as data.
//! One entry each ([`EntryId`]): what grpcdoc sees on the wire, the cause,
//! the fix on each stack a user may run, the shipped scenario that
//! reproduces it, what each real stack prints (`says`, recorded), and the
//! stable words that point to it in any log line (`evidence`, read by
//! `crate::explain`). Explanation prose lives only here: watch, load,
//! scenario, doctor and the proxy carry an [`EntryId`] and the detail of
//! their case; renderers look the words up.
//!
//! `says` were recorded from the real clients (`../shared/peers`: grpc-go
//! 1.33 `gogrpc-watch`, grpc-go 1.44 `grpcurl`, grpc-go 1.73 `k6`, C-core
//! 1.85 `pygrpc-watch`, grpc-js 1.14 `nodegrpc-watch`, grpc-java 1.41
//! `javagrpc-watch`) in the setup the entry names, directly and through
//! nginx, HAProxy and Caddy; `tests/conformance/` records them again and
//! fails when a stack says something else. Where a stack is not recorded,
//! a comment in `says` says why. A `*` in a message stands for any text (an
//! address, a number); grpc-java's message is its description, then its
//! cause chain as `Caused by:` lines.

mod entries;
mod generic;

use serde::Serialize;

pub use entries::CATALOGUE;
pub use generic::{Generic, GENERIC};

macro_rules! entry_ids {
    ($($(#[$doc:meta])* $v:ident = $s:literal,)*) => {
        /// A catalogue entry: the compiler lists every place that must
        /// know a new one.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EntryId { $($(#[$doc])* $v,)* }

        impl EntryId {
            /// Every entry, in catalogue order.
            pub const ALL: &'static [EntryId] = &[$(EntryId::$v,)*];

            /// The id users see and type: `server-crash`.
            pub fn as_str(self) -> &'static str {
                match self { $(EntryId::$v => $s,)* }
            }
        }
    };
}

entry_ids! {
    ServerCrash = "server-crash",
    GracefulStop = "graceful-stop",
    MaxAgeDrain = "max-age-drain",
    DrainCut = "drain-cut",
    MaxAgeGraceCCore = "max-age-grace-c-core",
    GoawayRace = "goaway-race",
    IdleTimeout = "idle-timeout",
    TooManyPings = "too-many-pings",
    KeepaliveTimeout = "keepalive-timeout",
    HalfOpen = "half-open",
    IdleDrop = "idle-drop",
    MiddleboxGoaway = "middlebox-goaway",
    ClientClosed = "client-closed",
    Deadline = "deadline",
    StreamLimitQueue = "stream-limit-queue",
    RstStream = "rst-stream",
    RefusedStream = "refused-stream",
    MessageTooLarge = "message-too-large",
    Unimplemented = "unimplemented",
    Unauthenticated = "unauthenticated",
    HealthNotServing = "health-not-serving",
    ConnectionRefused = "connection-refused",
    ConnectTimeout = "connect-timeout",
    NameResolution = "name-resolution",
    TlsMismatch = "tls-mismatch",
    TlsUntrusted = "tls-untrusted",
    TlsExpired = "tls-expired",
    TlsWrongName = "tls-wrong-name",
    TlsCaAsServer = "tls-ca-as-server",
    NoAlpnH2 = "no-alpn-h2",
    NotGrpcEndpoint = "not-grpc-endpoint",
    H2cNotEnabled = "h2c-not-enabled",
    HttpErrorPage = "http-error-page",
    ProxyTimeout = "proxy-timeout",
    ProxyNoUpstream = "proxy-no-upstream",
    ProxyUpstreamReset = "proxy-upstream-reset",
    ProxyOverflow = "proxy-overflow",
    ProxyNoRoute = "proxy-no-route",
}

impl std::fmt::Display for EntryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EntryId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EntryId::ALL
            .iter()
            .copied()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| format!("no catalogue entry `{s}`"))
    }
}

impl Serialize for EntryId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for EntryId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A gRPC stack whose messages were recorded (a program and its version).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stack {
    /// grpc-go 1.33 (2020).
    GrpcGo133,
    /// grpc-go 1.44 (grpcurl 1.8.6).
    GrpcGo144,
    /// grpc-go 1.73 (k6 1.1).
    GrpcGo173,
    /// gRPC C-core 1.85 (grpcio; also what C++, Python, Ruby, PHP print).
    CCore185,
    /// @grpc/grpc-js 1.14 (Node.js).
    GrpcJs114,
    /// grpc-java 1.41 on Netty.
    GrpcJava141,
    /// grpcdoc itself (`load`, `watch` probes).
    Grpcdoc,
}

impl Stack {
    pub fn name(self) -> &'static str {
        match self {
            Stack::GrpcGo133 => "grpc-go 1.33",
            Stack::GrpcGo144 => "grpc-go 1.44",
            Stack::GrpcGo173 => "grpc-go 1.73",
            Stack::CCore185 => "C-core 1.85",
            Stack::GrpcJs114 => "grpc-js 1.14",
            Stack::GrpcJava141 => "grpc-java 1.41",
            Stack::Grpcdoc => "grpcdoc",
        }
    }

    /// The family whose settings fix what this stack reports.
    pub fn family(self) -> Family {
        match self {
            Stack::GrpcGo133 | Stack::GrpcGo144 | Stack::GrpcGo173 => Family::Go,
            Stack::CCore185 => Family::Core,
            Stack::GrpcJs114 => Family::Node,
            Stack::GrpcJava141 => Family::Java,
            Stack::Grpcdoc => Family::Grpcdoc,
        }
    }
}

/// Where a user types a fix: a gRPC library or a proxy in the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Any stack: what to do, whatever the code is written in.
    Any,
    Go,
    /// gRPC C-core as Python, C++, Ruby and PHP use it (channel arguments).
    Core,
    Java,
    Node,
    Dotnet,
    Nginx,
    Haproxy,
    Envoy,
    Caddy,
    /// A cloud load balancer (AWS ALB/NLB, GCP, Azure).
    Cloud,
    Grpcdoc,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Any => "any stack",
            Family::Go => "grpc-go",
            Family::Core => "C-core (Python, C++, Ruby, PHP)",
            Family::Java => "grpc-java",
            Family::Node => "grpc-js",
            Family::Dotnet => "grpc-dotnet",
            Family::Nginx => "nginx",
            Family::Haproxy => "HAProxy",
            Family::Envoy => "Envoy / Istio",
            Family::Caddy => "Caddy",
            Family::Cloud => "cloud load balancer",
            Family::Grpcdoc => "grpcdoc",
        }
    }

    /// `--stack` values: the family's usual names.
    pub fn parse(s: &str) -> Option<Family> {
        Some(match s.to_ascii_lowercase().as_str() {
            "go" | "grpc-go" | "golang" => Family::Go,
            "core" | "c-core" | "python" | "py" | "grpcio" | "cpp" | "c++" | "ruby" | "php" => {
                Family::Core
            }
            "java" | "grpc-java" | "kotlin" | "netty" => Family::Java,
            "node" | "nodejs" | "js" | "grpc-js" | "javascript" | "typescript" => Family::Node,
            "dotnet" | ".net" | "csharp" | "c#" | "grpc-dotnet" => Family::Dotnet,
            "nginx" => Family::Nginx,
            "haproxy" => Family::Haproxy,
            "envoy" | "istio" => Family::Envoy,
            "caddy" => Family::Caddy,
            "alb" | "aws" | "nlb" | "gcp" | "azure" | "cloud" => Family::Cloud,
            "grpcdoc" => Family::Grpcdoc,
            _ => return None,
        })
    }

    /// The `--stack` names, for help and errors.
    pub const NAMES: &'static str = "go, core (python, cpp, ruby, php), java, node, dotnet, nginx, haproxy, envoy (istio), caddy, cloud";
}

/// What a stack prints for an entry: the status code and the message.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Says {
    pub stack: Stack,
    pub code: &'static str,
    pub message: &'static str,
}

/// The setting that fixes an entry on one stack.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Fix {
    pub on: Family,
    pub text: &'static str,
}

/// The shipped scenario that reproduces an entry, or why there is none.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// A file under `scenarios/`.
    Shipped(&'static str),
    /// Why loopback cannot reproduce it.
    None(&'static str),
}

/// One piece of evidence: something in a message that points to an entry,
/// with how strongly. Words are matched after normalisation (any case,
/// `_`/`-`/punctuation as spaces, camelCase split), on word boundaries.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Ev {
    /// These words in this order (`+` joins parts that must all occur,
    /// anywhere): `keepalive + timeout`.
    Words { words: &'static str, weight: i16 },
    /// Exactly this text, case-sensitive, as a whole token: Envoy's
    /// response flags (`UF`), HAProxy's termination states (`sD--`).
    Token { token: &'static str, weight: i16 },
    /// An HTTP status in `lo..=hi` named in the text (`status code 502`,
    /// `:status 504`, `502 Bad Gateway`).
    Http { lo: u16, hi: u16, weight: i16 },
    /// A length that is ASCII text read as a number (1213486160 = `HTTP`).
    AsciiLength { weight: i16 },
    /// A hex dump of received bytes that starts with a TLS record.
    HexTls { weight: i16 },
    /// A hex dump of received bytes that is HTTP/1 text.
    HexHttp1 { weight: i16 },
}

impl Ev {
    pub fn weight(&self) -> i16 {
        match *self {
            Ev::Words { weight, .. }
            | Ev::Token { weight, .. }
            | Ev::Http { weight, .. }
            | Ev::AsciiLength { weight }
            | Ev::HexTls { weight }
            | Ev::HexHttp1 { weight } => weight,
        }
    }
}

/// One known failure.
#[derive(Debug, Serialize)]
pub struct Entry {
    pub id: EntryId,
    pub title: &'static str,
    /// What grpcdoc sees on the wire when it happens.
    pub wire: &'static str,
    pub cause: &'static str,
    /// The fix in one sentence, whatever the stack.
    pub fix: &'static str,
    /// The setting to change on each stack it applies to.
    pub fixes: &'static [Fix],
    pub scenario: Scenario,
    /// The grpcdoc command that shows it (TARGET stands for the server).
    pub watch: &'static str,
    pub says: &'static [Says],
    pub evidence: &'static [Ev],
}

impl Entry {
    /// The fixes, the given family's first (then the rest in order).
    pub fn fixes_for(&self, first: Option<Family>) -> Vec<Fix> {
        let mut out: Vec<Fix> = self.fixes.to_vec();
        if let Some(f) = first {
            out.sort_by_key(|x| x.on != f);
        }
        out
    }

    /// The shipped scenario's path, when there is one.
    pub fn scenario_path(&self) -> Option<&'static str> {
        match self.scenario {
            Scenario::Shipped(p) => Some(p),
            Scenario::None(_) => None,
        }
    }
}

/// The entry with this id.
pub fn entry(id: EntryId) -> &'static Entry {
    // CATALOGUE is in EntryId order (a unit test checks it).
    &CATALOGUE[id as usize]
}

/// Whether `pattern` (literal text, `*` for any run of characters) occurs
/// in `text`: how the conformance tier compares a recorded message with
/// what a stack printed.
pub fn find(pattern: &str, text: &str) -> Option<usize> {
    let parts: Vec<&str> = pattern.split('*').collect();
    let literal: usize = parts.iter().map(|p| p.chars().count()).sum();
    let mut rest = text;
    for part in parts.iter().filter(|p| !p.is_empty()) {
        let at = rest.find(part)?;
        rest = &rest[at + part.len()..];
    }
    Some(literal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_in_id_order_and_complete() {
        assert_eq!(CATALOGUE.len(), EntryId::ALL.len());
        for (i, e) in CATALOGUE.iter().enumerate() {
            assert_eq!(e.id as usize, i, "{} out of order", e.id);
            assert_eq!(entry(e.id).id, e.id);
            assert!(!e.title.is_empty() && !e.cause.is_empty() && !e.fix.is_empty());
            assert!(
                !e.wire.is_empty() && e.watch.starts_with("grpcdoc "),
                "{}",
                e.id
            );
            assert!(!e.evidence.is_empty(), "{}: no evidence", e.id);
            assert!(!e.fixes.is_empty(), "{}: no fix per stack", e.id);
            if let Scenario::Shipped(s) = e.scenario {
                let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(s);
                assert!(path.exists(), "{}: no {s}", e.id);
            }
        }
    }

    #[test]
    fn ids_round_trip() {
        for id in EntryId::ALL {
            assert_eq!(id.as_str().parse::<EntryId>(), Ok(*id));
        }
        assert!("no-such".parse::<EntryId>().is_err());
    }

    #[test]
    fn patterns_match_inside_log_lines() {
        assert_eq!(find("a*c", "xx a b c yy"), Some(2));
        assert_eq!(find("a*c", "c then a"), None);
    }
}
