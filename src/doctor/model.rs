//! What a `doctor` run found: the data its reporters render (a table on a
//! terminal, one JSON object with `-o json`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::link::{DialTiming, GoawaySeen};

/// How a measurement ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A value was measured.
    Measured,
    /// Looked for for the whole budget: none happened (a result too).
    NoneSeen,
    /// The budget ran out before the measurement could finish; bounds may
    /// say how far it got.
    OutOfBudget,
    /// Could not be measured (the reason says why).
    NotMeasured,
    /// Not asked for (`--no-provoke`, no `--echo-method`).
    Skipped,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Measured => "measured",
            Outcome::NoneSeen => "none seen",
            Outcome::OutOfBudget => "budget ran out",
            Outcome::NotMeasured => "not measured",
            Outcome::Skipped => "skipped",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    High,
    Medium,
    Low,
}

/// Who a finding is attributed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// The gRPC server itself (its GOAWAY debug data says so).
    Server,
    /// An HTTP/2 proxy in front of it (the evidence says one answers).
    Proxy,
    /// Something in the path that speaks no HTTP/2 (a NAT, an L4 balancer).
    Network,
}

/// One measured policy value.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// Stable key: idle_timeout, idle_after_call, silent_idle_drop, max_age,
    /// max_age_grace, held_call_end, quiet_stream_end, ping_min_interval,
    /// pings_without_calls,
    /// max_message_size, server_pings.
    pub key: &'static str,
    /// The row's title.
    pub title: &'static str,
    pub outcome: Outcome,
    /// The result in words.
    pub result: String,
    /// How it was measured.
    pub how: String,
    pub confidence: Confidence,
    /// The value (a time), when measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_ms: Option<f64>,
    /// Bounds: the value is above `lower_ms` and at most `upper_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lower_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upper_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permitted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goaway: Option<GoawaySeen>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<Party>,
}

impl Finding {
    pub fn new(key: &'static str, title: &'static str, outcome: Outcome) -> Self {
        Self {
            key,
            title,
            outcome,
            result: String::new(),
            how: String::new(),
            confidence: Confidence::High,
            value_ms: None,
            lower_ms: None,
            upper_ms: None,
            bytes: None,
            permitted: None,
            goaway: None,
            by: None,
        }
    }

    pub fn result(mut self, r: impl Into<String>) -> Self {
        self.result = r.into();
        self
    }

    pub fn how(mut self, h: impl Into<String>) -> Self {
        self.how = h.into();
        self
    }

    pub fn confidence(mut self, c: Confidence) -> Self {
        self.confidence = c;
        self
    }

    pub fn measured(&self) -> bool {
        self.outcome == Outcome::Measured
    }
}

/// The connection's setup and what answered it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Setup {
    /// The address measured (the first the target resolves to).
    pub address: String,
    /// How many addresses the target resolved to.
    pub addresses: usize,
    #[serde(flatten)]
    pub timing: DialTiming,
    /// The server's first SETTINGS, by name.
    pub settings: BTreeMap<String, u32>,
    /// The HTTP/2 implementation these SETTINGS are known from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings_like: Option<String>,
    /// `v1`, `v1alpha`, or none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reflection: Option<String>,
    pub services: Vec<String>,
    /// grpc.health.v1 Check of the server as a whole: SERVING, NOT_SERVING,
    /// or the call's failure (UNIMPLEMENTED: no health service).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// The response `server` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_header: Option<String>,
    /// What an unknown method got: `UNIMPLEMENTED`, an HTTP error page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_method: Option<String>,
    /// Medians of 5 PINGs and 5 calls to an unknown method, alternated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping_rtt_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_rtt_ms: Option<f64>,
    /// The method held open to keep connections busy (age, enforcement).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_method: Option<String>,
}

/// Whether something other than the gRPC server answers the connection.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Intermediary {
    /// A proxy answers for the server.
    pub proxy: bool,
    /// What it looks like (`nginx`, `HAProxy`, `envoy`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub summary: String,
    pub evidence: Vec<String>,
}

/// A conclusion for the client configuration given.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// The client's settings will break against this policy.
    pub conflict: bool,
    /// The policy this verdict needs could not be measured: the check was
    /// not made (exit status 3 when nothing conflicts).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_measured: bool,
    /// The failure catalogue entry (src/catalogue.rs) that describes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<crate::catalogue::EntryId>,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// The shipped scenario that shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenario: Option<&'static str>,
}

/// The connection could not be set up: what happened and what it means.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    pub error: String,
    /// The connect cause (`refused`, `plaintext_server`, ...).
    pub cause: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<crate::catalogue::EntryId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
}

/// A whole run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub target: String,
    pub budget_ms: f64,
    pub elapsed_ms: f64,
    /// Stopped by Ctrl-C before the budget ran out.
    pub interrupted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    pub setup: Setup,
    pub intermediary: Intermediary,
    pub findings: Vec<Finding>,
    pub verdicts: Vec<Verdict>,
    /// True when a verdict is a conflict (exit status 1).
    pub conflict: bool,
    /// True when a check asked for could not be made (exit status 3 when
    /// nothing conflicts).
    #[serde(default)]
    pub incomplete: bool,
    /// The client configuration judged.
    pub client: super::ClientConfig,
}

impl Report {
    pub fn finding(&self, key: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.key == key)
    }
}

/// Milliseconds as a short duration: `850ms`, `3.02s`, `2m5s`.
pub fn secs(ms: f64) -> String {
    // A figure just below zero (clocks read a moment apart) is zero.
    let ms = ms.max(0.0);
    if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else if ms < 60_000.0 {
        let s = ms / 1e3;
        if (s - s.round()).abs() < 0.005 {
            format!("{}s", s.round())
        } else {
            format!("{s:.2}s")
        }
    } else {
        let total = (ms / 1e3).round() as u64;
        match total % 60 {
            0 => format!("{}m", total / 60),
            r => format!("{}m{r}s", total / 60),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_short() {
        assert_eq!(secs(850.0), "850ms");
        assert_eq!(secs(3000.0), "3s");
        assert_eq!(secs(3020.0), "3.02s");
        assert_eq!(secs(125_000.0), "2m5s");
        assert_eq!(secs(300_000.0), "5m");
    }
}
