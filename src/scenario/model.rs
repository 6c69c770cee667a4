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
        crate::cli::parse_duration(&s).map(Dur).map_err(|_| {
            serde::de::Error::custom(format!(
                "`{s}` is not a duration; expected one like 500ms, 2s or 1m30s"
            ))
        })
    }
}

#[derive(Debug, Deserialize)]
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
    #[serde(default)]
    pub proxy: Option<ProxySpec>,
    /// One client, or several (`clients`), each with its own connections.
    #[serde(default)]
    pub client: Option<ClientSpec>,
    #[serde(default)]
    pub clients: Vec<ClientSpec>,
    #[serde(default)]
    pub timeline: Vec<Spanned<Step>>,
    #[serde(default)]
    pub expect: Vec<Spanned<Expectation>>,
}

/// Exactly one of `builtin`, `command`, `address`.
#[derive(Debug, Default, Deserialize)]
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySpec {
    /// Faults in force from the start (`grpcdoc proxy --fault` syntax).
    #[serde(default)]
    pub faults: Vec<Spanned<String>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pool {
    /// Hands out the connection it made first, never checking its state
    /// (the go-micro pool bug): after a restart every call fails.
    Naive,
    /// Asks the channel for a READY connection each time.
    #[default]
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

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    /// Name used in expectations (`client: naive`).
    pub name: Option<String>,
    #[serde(default)]
    pub pool: Pool,
    #[serde(default = "one")]
    pub connections: u32,
    #[serde(default)]
    pub lb: LbSpec,
    #[serde(default)]
    pub keepalive: Option<KeepaliveSpec>,
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
    #[serde(default = "one")]
    pub concurrency: u32,
    /// Calls per second; without it, a closed loop.
    pub rps: Option<f64>,
    pub timeout: Option<Dur>,
}

/// One step: when (`at`, from the start) and exactly one action.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub at: Dur,
    pub server_restart: Option<Restart>,
    pub server_stop: Option<StopSpec>,
    pub server_start: Option<Empty>,
    pub health: Option<HealthStep>,
    pub fault_add: Option<FaultAdd>,
    pub fault_remove: Option<FaultRemove>,
    pub mark: Option<String>,
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
    #[serde(default)]
    pub mode: StopMode,
    /// How long the server is away.
    #[serde(default)]
    pub downtime: Dur,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopSpec {
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
    pub fault: String,
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
    pub to: Option<crate::client::state::State>,
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
    /// 50, 90, 99, 99.9 ...
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
}
