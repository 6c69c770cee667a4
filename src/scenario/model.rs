//! The scenario file, as serde reads it. Every struct denies unknown keys, a
//! step or an expectation is a map with exactly one action or check key (so
//! an unknown one is reported at its line), and durations are humantime
//! strings (`500ms`, `2s`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

/// A duration written like `500ms`, `2s` or `1m30s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        crate::parse::parse_duration(&s).map(Dur).map_err(|_| {
            serde::de::Error::custom(format!(
                "`{s}` is not a duration; expected one like 500ms, 2s or 1m30s"
            ))
        })
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// What failure, which real-world report it mirrors, what the fix is.
    #[serde(default)]
    pub about: String,
    /// How long the scenario runs.
    pub duration: Spanned<Dur>,
    #[serde(default)]
    pub server: ServerSpec,
    /// How many servers like `server` run side by side (default 1); clients
    /// get all their addresses, as from a name service.
    #[serde(default)]
    pub backends: Option<Spanned<u32>>,
    /// A proxy in front of each server.
    #[serde(default)]
    pub proxy: Option<ProxySpec>,
    /// A real reverse proxy or load balancer in the path (nginx, HAProxy or
    /// a program of the user's), before or after the chaos proxy.
    #[serde(default)]
    pub middlebox: Option<MiddleboxSpec>,
    /// One client, or several (`clients`), each with its own connections.
    #[serde(default)]
    pub client: Option<ClientSpec>,
    #[serde(default)]
    pub clients: Vec<ClientSpec>,
    /// Single calls at a steady interval through a client's channel.
    #[serde(default)]
    pub probes: Vec<Spanned<ProbeSpec>>,
    #[serde(default)]
    pub timeline: Vec<Spanned<Step>>,
    #[serde(default)]
    pub expect: Vec<Spanned<Expectation>>,
    /// The same failure under other settings (`broken`, `fixed`), run side
    /// by side, each on its own servers and ports.
    #[serde(default)]
    pub variants: Option<Spanned<Variants>>,
}

/// A variant: the sections it gives replace the scenario's (share the rest
/// with YAML anchors and merge keys); its expectations add to the
/// scenario's.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    #[serde(default)]
    pub about: Option<String>,
    pub server: Option<ServerSpec>,
    pub backends: Option<Spanned<u32>>,
    pub proxy: Option<ProxySpec>,
    pub middlebox: Option<MiddleboxSpec>,
    pub client: Option<ClientSpec>,
    pub clients: Option<Vec<ClientSpec>>,
    pub probes: Option<Vec<Spanned<ProbeSpec>>>,
    pub timeline: Option<Vec<Spanned<Step>>>,
    #[serde(default)]
    pub expect: Vec<Spanned<Expectation>>,
}

/// Variants in the order the file gives them.
#[derive(Clone, Debug, Default)]
pub struct Variants(pub Vec<(String, Variant)>);

impl<'de> Deserialize<'de> for Variants {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Variants;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of variant names to their settings")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Variants, A::Error> {
                let mut out: Vec<(String, Variant)> = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, Variant>()? {
                    if out.iter().any(|(n, _)| *n == k) {
                        return Err(serde::de::Error::custom(format!(
                            "variant `{k}` is given twice"
                        )));
                    }
                    out.push((k, v));
                }
                Ok(Variants(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Exactly one of `builtin`, `command`, `address`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    pub builtin: Option<BuiltinServer>,
    /// A server of the user's: argv with `{port}` replaced by a free port.
    pub command: Option<Vec<String>>,
    /// Signal that stops the command gracefully (default TERM).
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// How long the command may take to listen (default 10s).
    #[serde(default)]
    pub ready_timeout: Option<Dur>,
    /// A server already running (no restart steps then).
    pub address: Option<String>,
}

/// The settings of `grpcdoc serve`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltinServer {
    pub max_connection_idle: Option<Dur>,
    #[serde(default)]
    pub idle_drain: crate::server::IdleDrain,
    pub max_connection_age: Option<Dur>,
    pub max_connection_age_grace: Option<Dur>,
    pub keepalive_time: Option<Dur>,
    pub keepalive_timeout: Option<Dur>,
    pub keepalive_min_time: Option<Dur>,
    #[serde(default)]
    pub keepalive_permit_without_stream: bool,
    pub max_concurrent_streams: Option<u32>,
    pub delay: Option<Dur>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySpec {
    /// Faults in force from the start: `grpcdoc proxy --fault` syntax, or
    /// `{NAME: {KEY: VALUE}}`.
    #[serde(default)]
    pub faults: Vec<Spanned<crate::proxy::fault::FaultYaml>>,
}

/// Exactly one of `nginx`, `haproxy`, `command`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MiddleboxSpec {
    /// nginx as a gRPC reverse proxy (`grpc_pass`, h2c both sides); each
    /// directive goes into `location /`, except `http2_*`, `keepalive_*`
    /// and `client_*` ones, which go into `server`.
    pub nginx: Option<Vec<String>>,
    /// HAProxy as a gRPC reverse proxy (`proto h2` both sides); each line
    /// goes into `defaults` (`timeout client 5s`, ...).
    pub haproxy: Option<Vec<String>>,
    /// Any program: argv with `{listen}` (`127.0.0.1:PORT`), `{listen_port}`
    /// and `{upstream}` (`127.0.0.1:PORT`) replaced.
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub position: MiddleboxPosition,
    /// How long it may take to listen (default 10s).
    pub ready_timeout: Option<Dur>,
}

/// Where the middlebox stands, seen from the client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MiddleboxPosition {
    /// client -> middlebox -> chaos proxy -> server
    #[default]
    BeforeProxy,
    /// client -> chaos proxy -> middlebox -> server
    AfterProxy,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pool {
    /// No pool: calls go through the client's gRPC channel as it is.
    #[default]
    Channel,
    /// The go-micro pool bug: pooled channels are handed out without a look
    /// at their state; one in TRANSIENT_FAILURE fails every call fast until
    /// its reconnect backoff ends, seconds after the server is back.
    Naive,
    /// The fix: a channel that is not READY is closed and dialed anew, so
    /// calls work again as soon as the server listens.
    StateChecked,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LbSpec {
    #[default]
    PickFirst,
    RoundRobin,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackoffSpec {
    pub initial: Option<Dur>,
    pub multiplier: Option<f64>,
    /// 0..1: the +- fraction of each delay.
    pub jitter: Option<f64>,
    pub max: Option<Dur>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeepaliveSpec {
    pub time: Option<Dur>,
    pub timeout: Option<Dur>,
    #[serde(default)]
    pub permit_without_stream: bool,
}

fn yes() -> bool {
    true
}

fn one() -> u32 {
    1
}

/// `grpcdoc load`'s default concurrency (`-c 50`).
fn load_concurrency() -> u32 {
    crate::load::plan::DEFAULT_CONCURRENCY
}

/// A percentile as users write it: `99`, `99.9`, `"p99"`, `"p99.9"`, `"99%"`.
fn percentile<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum P {
        N(f64),
        S(String),
    }
    match P::deserialize(d)? {
        P::N(n) => Ok(n),
        P::S(s) => {
            let t = s.trim();
            let t = t
                .strip_prefix('p')
                .or_else(|| t.strip_prefix('P'))
                .unwrap_or(t);
            let t = t.strip_suffix('%').unwrap_or(t);
            t.parse().map_err(|_| {
                serde::de::Error::custom(format!(
                    "`{s}` is not a percentile; write 99, 99.9 or p99"
                ))
            })
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    /// Name used in expectations (`client: naive`).
    pub name: Option<String>,
    /// A client program of the user's instead of grpcdoc's: argv with
    /// `{target}` (`127.0.0.1:PORT`, the scenario's path through a tap that
    /// reads its calls), `{host}` and `{port}` replaced.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Environment for the command (values take `{target}` too).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Signal that stops the command at the end (default TERM).
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// How long it may take to stop before it is killed (default 5s).
    #[serde(default)]
    pub stop_timeout: Option<Dur>,
    #[serde(default)]
    pub pool: Pool,
    #[serde(default = "one")]
    pub connections: u32,
    #[serde(default)]
    pub lb: LbSpec,
    #[serde(default)]
    pub keepalive: Option<KeepaliveSpec>,
    /// Reconnect backoff (default grpc's: 1s, x1.6, +-20%, at most 120s).
    #[serde(default)]
    pub backoff: Option<BackoffSpec>,
    /// How often the client asks the scenario's name service for the
    /// backends when nothing else makes it (default 30m, grpc-go's DNS
    /// resolver); it also asks whenever a connection is lost or drained
    /// by a GOAWAY, as grpc-go does.
    #[serde(default)]
    pub resolve_interval: Option<Dur>,
    /// The gRPC service config, as YAML or JSON (retryPolicy, timeout, ...).
    #[serde(default)]
    pub service_config: Option<serde_json::Value>,
    #[serde(default)]
    pub wait_for_ready: bool,
    #[serde(default = "yes")]
    pub transparent_retry: bool,
    #[serde(default)]
    pub health_service: Option<String>,
    #[serde(default)]
    pub load: Option<LoadSpec>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    pub call: Spanned<String>,
    /// The request message (YAML or JSON); a list gives one per call in turn.
    #[serde(default)]
    pub data: Option<serde_json::Value>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default = "load_concurrency")]
    pub concurrency: u32,
    /// Calls per second; without it, a closed loop.
    pub rps: Option<f64>,
    pub timeout: Option<Dur>,
}

/// One call every `every` through a client's channel (its connections,
/// keepalive, retry policy and pool), recorded under the probe's name.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    /// Name used in expectations (default `probe`, `probe2`, ...).
    pub name: Option<String>,
    /// The client it calls through (default: the first).
    pub client: Option<String>,
    pub call: Spanned<String>,
    #[serde(default)]
    pub data: Option<serde_json::Value>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    pub every: Dur,
    pub timeout: Option<Dur>,
}

impl ProbeSpec {
    /// A probe is a load of one call at a time at one call per `every`.
    pub fn as_load(&self) -> LoadSpec {
        LoadSpec {
            call: self.call.clone(),
            data: self.data.clone(),
            metadata: self.metadata.clone(),
            concurrency: 1,
            rps: Some(1.0 / self.every.0.as_secs_f64()),
            timeout: self.timeout,
        }
    }
}

/// One step: when (`at`, from the start) and exactly one action.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub at: Dur,
    /// Again every so often after `at`, until the end (or `times` times in
    /// all).
    #[serde(default)]
    pub every: Option<Dur>,
    #[serde(default)]
    pub times: Option<u32>,
    pub server_restart: Option<Restart>,
    pub server_stop: Option<StopSpec>,
    pub server_start: Option<StartSpec>,
    /// Change built-in server settings for the connections accepted after.
    pub server_set: Option<ServerSet>,
    pub health: Option<HealthStep>,
    pub fault_add: Option<FaultAdd>,
    pub fault_remove: Option<FaultRemove>,
    /// Start one more server (clients learn of it at the next `resolve`).
    pub backend_add: Option<Empty>,
    /// Stop a server for good (clients keep its address until `resolve`).
    pub backend_remove: Option<BackendRemove>,
    /// Give every client the current server addresses (a re-resolution).
    pub resolve: Option<Empty>,
    pub mark: Option<String>,
}

/// The names of every step action, for messages.
pub const ACTIONS: &str = "server_restart, server_stop, server_start, server_set, health, fault_add, fault_remove, backend_add, backend_remove, resolve, mark";

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartSpec {
    /// Which server (1-based; default all).
    pub backend: Option<u32>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendRemove {
    /// Which server (1-based).
    pub backend: u32,
    #[serde(default)]
    pub mode: StopMode,
}

/// Built-in server settings to change; those not given stay as they are.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSet {
    /// Which server (1-based; default all).
    pub backend: Option<u32>,
    pub max_connection_idle: Option<Dur>,
    pub idle_drain: Option<crate::server::IdleDrain>,
    pub max_connection_age: Option<Dur>,
    pub max_connection_age_grace: Option<Dur>,
    pub keepalive_time: Option<Dur>,
    pub keepalive_timeout: Option<Dur>,
    pub keepalive_min_time: Option<Dur>,
    pub keepalive_permit_without_stream: Option<bool>,
    pub max_concurrent_streams: Option<u32>,
    pub delay: Option<Dur>,
}

impl ServerSet {
    pub fn apply(&self, c: &mut crate::server::ServerConfig) {
        let d = |x: &Option<Dur>| x.map(|d| d.0);
        if let Some(v) = d(&self.max_connection_idle) {
            c.max_connection_idle = Some(v);
        }
        if let Some(v) = self.idle_drain {
            c.idle_drain = v;
        }
        if let Some(v) = d(&self.max_connection_age) {
            c.max_connection_age = Some(v);
        }
        if let Some(v) = d(&self.max_connection_age_grace) {
            c.max_connection_age_grace = Some(v);
        }
        if let Some(v) = d(&self.keepalive_time) {
            c.keepalive_time = v;
        }
        if let Some(v) = d(&self.keepalive_timeout) {
            c.keepalive_timeout = v;
        }
        if let Some(v) = d(&self.keepalive_min_time) {
            c.keepalive_min_time = v;
        }
        if let Some(v) = self.keepalive_permit_without_stream {
            c.keepalive_permit_without_stream = v;
        }
        if let Some(v) = self.max_concurrent_streams {
            c.max_concurrent_streams = Some(v);
        }
        if let Some(v) = d(&self.delay) {
            c.delay = v;
        }
    }

    /// What changed, for the timeline: `max_connection_age=1s delay=0s`.
    pub fn describe(&self) -> String {
        let d = |x: &Option<Dur>| x.map(|d| humantime::format_duration(d.0).to_string());
        [
            ("max_connection_idle", d(&self.max_connection_idle)),
            (
                "idle_drain",
                self.idle_drain.map(|v| format!("{v:?}").to_lowercase()),
            ),
            ("max_connection_age", d(&self.max_connection_age)),
            (
                "max_connection_age_grace",
                d(&self.max_connection_age_grace),
            ),
            ("keepalive_time", d(&self.keepalive_time)),
            ("keepalive_timeout", d(&self.keepalive_timeout)),
            ("keepalive_min_time", d(&self.keepalive_min_time)),
            (
                "keepalive_permit_without_stream",
                self.keepalive_permit_without_stream.map(|v| v.to_string()),
            ),
            (
                "max_concurrent_streams",
                self.max_concurrent_streams.map(|v| v.to_string()),
            ),
            ("delay", d(&self.delay)),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join(" ")
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopMode {
    /// Close every connection at once (a crash, a kill -9).
    #[default]
    Hard,
    /// Drain: GOAWAY, let calls finish, then stop.
    Graceful,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restart {
    /// Which server (1-based; default all).
    pub backend: Option<u32>,
    #[serde(default)]
    pub mode: StopMode,
    /// How long the server is away.
    #[serde(default)]
    pub downtime: Dur,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopSpec {
    /// Which server (1-based; default all).
    pub backend: Option<u32>,
    #[serde(default)]
    pub mode: StopMode,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthStatus {
    Serving,
    NotServing,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthStep {
    /// Which server (1-based; default all).
    pub backend: Option<u32>,
    /// The service ("" or absent: the whole server and every service).
    #[serde(default)]
    pub service: Option<String>,
    pub status: HealthStatus,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultAdd {
    /// A name to remove it by later.
    pub id: Option<String>,
    pub fault: crate::proxy::fault::FaultYaml,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRemove {
    pub id: String,
}

/// Which events a check looks at.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Only this client's events (by name).
    pub client: Option<String>,
    /// rpcs: a status code name, or `error` for any failure.
    pub code: Option<String>,
    /// goaways: the debug data.
    pub debug: Option<String>,
    /// state_changes: the state moved to.
    pub to: Option<crate::connectivity::State>,
    /// rpcs, success_rate: only calls made on connections to this backend
    /// (1-based).
    pub backend: Option<u32>,
    /// Only after (at or after) this mark.
    pub after: Option<String>,
    /// Only before this mark.
    pub before: Option<String>,
    pub at_least: Option<f64>,
    pub at_most: Option<f64>,
    pub exactly: Option<f64>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyCheck {
    pub client: Option<String>,
    pub after: Option<String>,
    pub before: Option<String>,
    /// 50, 90, 99, 99.9 ... (also `p99`, `99%`)
    #[serde(deserialize_with = "percentile")]
    pub percentile: f64,
    pub at_most: Dur,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderCheck {
    pub client: Option<String>,
    /// goaway | rpc_error | transient_failure | closed
    pub first: String,
    pub then: String,
}

/// How a client program ended.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExitCodeCheck {
    pub client: String,
    pub equals: i32,
}

/// Lines of a client program's output (stdout and stderr) that contain a
/// text or match a regular expression, counted.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputCheck {
    pub client: String,
    pub contains: Option<String>,
    pub matches: Option<String>,
    pub at_least: Option<f64>,
    pub at_most: Option<f64>,
    pub exactly: Option<f64>,
}

/// Exactly one check.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// Calls (from load), by code.
    pub rpcs: Option<Filter>,
    /// GOAWAYs received by clients.
    pub goaways: Option<Filter>,
    /// Subchannel state changes.
    pub state_changes: Option<Filter>,
    /// Connections closed under clients (any reason but their own shutdown).
    pub connection_losses: Option<Filter>,
    /// The share of calls that succeeded.
    pub success_rate: Option<Filter>,
    pub latency: Option<LatencyCheck>,
    pub order: Option<OrderCheck>,
    pub exit_code: Option<ExitCodeCheck>,
    pub output: Option<OutputCheck>,
}
