//! The gRPC service config users pass to grpc-go's `WithDefaultServiceConfig`:
//! per-method `retryPolicy` (gRFC A6), `timeout` and `waitForReady`. Invalid
//! configs are rejected as grpc-go rejects them, with the reason.

use std::time::Duration;

use serde::Deserialize;

// Every field of gRPC's service config is known (a misspelt one, such as
// `retryPolcy`, is an error, not silently ignored); the ones grpcdoc does
// not act on are accepted as they are.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ServiceConfigJson {
    #[serde(default)]
    method_config: Vec<MethodConfigJson>,
    health_check_config: Option<HealthCheckConfigJson>,
    #[allow(dead_code)]
    load_balancing_policy: Option<serde_json::Value>,
    #[allow(dead_code)]
    load_balancing_config: Option<serde_json::Value>,
    #[allow(dead_code)]
    retry_throttling: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HealthCheckConfigJson {
    service_name: Option<String>,
}

fn parse_config(json: &str) -> Result<ServiceConfigJson, ServiceConfigError> {
    serde_json::from_str(json).map_err(|e| ServiceConfigError::Json {
        line: e.line(),
        column: e.column(),
        reason: crate::rpc::payload::json_reason(&e),
    })
}

/// `healthCheckConfig.serviceName` (gRFC A17): the service whose health the
/// client watches on every connection; `Some("")` is the whole server.
pub fn health_check_service(json: &str) -> Result<Option<String>, ServiceConfigError> {
    Ok(parse_config(json)?
        .health_check_config
        .map(|h| h.service_name.unwrap_or_default()))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MethodConfigJson {
    #[serde(default)]
    name: Vec<NameJson>,
    retry_policy: Option<RetryPolicyJson>,
    timeout: Option<String>,
    wait_for_ready: Option<bool>,
    #[allow(dead_code)]
    max_request_message_bytes: Option<serde_json::Value>,
    #[allow(dead_code)]
    max_response_message_bytes: Option<serde_json::Value>,
    #[allow(dead_code)]
    hedging_policy: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NameJson {
    #[serde(default)]
    service: String,
    #[serde(default)]
    method: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RetryPolicyJson {
    max_attempts: u32,
    initial_backoff: String,
    max_backoff: String,
    backoff_multiplier: f64,
    retryable_status_codes: Vec<serde_json::Value>,
    #[allow(dead_code)]
    per_attempt_recv_timeout: Option<serde_json::Value>,
}

/// A retry policy (gRFC A6).
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (2..=5).
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub multiplier: f64,
    pub codes: Vec<tonic::Code>,
}

impl RetryPolicy {
    /// The wait before retry `n` (1 = the first retry): random(0,
    /// min(initial * multiplier^(n-1), max)).
    pub fn backoff(&self, n: u32, rng: &mut fastrand::Rng) -> Duration {
        let cap =
            self.initial_backoff.as_secs_f64() * self.multiplier.powi(n.saturating_sub(1) as i32);
        let cap = cap.min(self.max_backoff.as_secs_f64());
        Duration::from_secs_f64(rng.f64() * cap.max(0.0))
    }

    pub fn retries(&self, code: tonic::Code) -> bool {
        self.codes.contains(&code)
    }
}

/// What the service config says for one method.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MethodPolicy {
    pub retry: Option<RetryPolicy>,
    pub timeout: Option<Duration>,
    pub wait_for_ready: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceConfigError {
    #[error("--service-config:{line}:{column}: {reason}")]
    Json {
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("--service-config: {0}")]
    Invalid(String),
}

/// A protobuf JSON duration: decimal seconds with an `s` ("0.1s", "2s").
fn pb_duration(what: &str, s: &str) -> Result<Duration, ServiceConfigError> {
    let bad =
        || ServiceConfigError::Invalid(format!("{what} `{s}` is not a duration like \"0.5s\""));
    let secs: f64 = s
        .strip_suffix('s')
        .ok_or_else(bad)?
        .parse()
        .map_err(|_| bad())?;
    if !secs.is_finite() || secs < 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

fn code(v: &serde_json::Value) -> Result<tonic::Code, ServiceConfigError> {
    match v {
        serde_json::Value::String(s) => crate::grpc::code_by_name(s).ok_or_else(|| {
            ServiceConfigError::Invalid(format!(
                "unknown status code `{s}` in retryableStatusCodes"
            ))
        }),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i @ 0..=16) => Ok(tonic::Code::from_i32(i as i32)),
            _ => Err(ServiceConfigError::Invalid(format!(
                "status code {n} out of range"
            ))),
        },
        other => Err(ServiceConfigError::Invalid(format!(
            "`{other}` is not a status code"
        ))),
    }
}

/// Parses the config and picks what applies to `service`/`method`: a name
/// with both wins over one with the service only, which wins over the
/// default (an empty name).
pub fn method_policy(
    json: &str,
    service: &str,
    method: &str,
) -> Result<MethodPolicy, ServiceConfigError> {
    let cfg = parse_config(json)?;
    let mut best: Option<(u8, &MethodConfigJson)> = None;
    for mc in &cfg.method_config {
        for n in &mc.name {
            let rank = match (n.service.as_str(), n.method.as_str()) {
                (s, m) if s == service && m == method => 3,
                (s, "") if s == service => 2,
                ("", "") => 1,
                _ => 0,
            };
            if rank > best.map_or(0, |b| b.0) {
                best = Some((rank, mc));
            }
        }
    }
    let Some((_, mc)) = best else {
        return Ok(MethodPolicy::default());
    };
    let retry = mc.retry_policy.as_ref().map(retry_policy).transpose()?;
    Ok(MethodPolicy {
        retry,
        timeout: mc
            .timeout
            .as_deref()
            .map(|t| pb_duration("timeout", t))
            .transpose()?,
        wait_for_ready: mc.wait_for_ready,
    })
}

/// Whether some method config's retry policy retries `code` (the whole
/// config is checked first).
pub fn retries_anywhere(json: &str, code: tonic::Code) -> Result<bool, ServiceConfigError> {
    validate(json)?;
    for mc in parse_config(json)?.method_config {
        if let Some(r) = &mc.retry_policy {
            if retry_policy(r)?.retries(code) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Checks the whole config as a client would on loading it: every method
/// config's retry policy and timeout, not only the one a call uses.
pub fn validate(json: &str) -> Result<(), ServiceConfigError> {
    for mc in parse_config(json)?.method_config {
        if let Some(r) = &mc.retry_policy {
            retry_policy(r)?;
        }
        if let Some(t) = &mc.timeout {
            pb_duration("timeout", t)?;
        }
    }
    Ok(())
}

fn retry_policy(r: &RetryPolicyJson) -> Result<RetryPolicy, ServiceConfigError> {
    if r.max_attempts < 2 {
        return Err(ServiceConfigError::Invalid(
            "retryPolicy.maxAttempts must be at least 2".into(),
        ));
    }
    let initial = pb_duration("retryPolicy.initialBackoff", &r.initial_backoff)?;
    let max = pb_duration("retryPolicy.maxBackoff", &r.max_backoff)?;
    if initial.is_zero() || max.is_zero() {
        return Err(ServiceConfigError::Invalid(
            "retryPolicy backoffs must be above 0".into(),
        ));
    }
    if r.backoff_multiplier.is_nan() || r.backoff_multiplier <= 0.0 {
        return Err(ServiceConfigError::Invalid(
            "retryPolicy.backoffMultiplier must be above 0".into(),
        ));
    }
    if r.retryable_status_codes.is_empty() {
        return Err(ServiceConfigError::Invalid(
            "retryPolicy.retryableStatusCodes must not be empty".into(),
        ));
    }
    Ok(RetryPolicy {
        // gRFC A6: values above 5 are treated as 5.
        max_attempts: r.max_attempts.min(5),
        initial_backoff: initial,
        max_backoff: max,
        multiplier: r.backoff_multiplier,
        codes: r
            .retryable_status_codes
            .iter()
            .map(code)
            .collect::<Result<_, _>>()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = r#"{
      "methodConfig": [
        {"name": [{}], "timeout": "9s"},
        {"name": [{"service": "helloworld.Greeter"}],
         "waitForReady": true,
         "retryPolicy": {"maxAttempts": 9, "initialBackoff": "0.1s", "maxBackoff": "1s",
                         "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE", 4]}}
      ]
    }"#;

    #[test]
    fn most_specific_name_wins() {
        let p = method_policy(CFG, "helloworld.Greeter", "SayHello").unwrap();
        let r = p.retry.unwrap();
        assert_eq!(r.max_attempts, 5, "capped at 5");
        assert_eq!(
            r.codes,
            [tonic::Code::Unavailable, tonic::Code::DeadlineExceeded]
        );
        assert_eq!(p.wait_for_ready, Some(true));
        let d = method_policy(CFG, "other.Svc", "M").unwrap();
        assert_eq!(d.timeout, Some(Duration::from_secs(9)));
        assert!(d.retry.is_none());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = method_policy(CFG, "helloworld.Greeter", "SayHello")
            .unwrap()
            .retry
            .unwrap();
        let mut rng = fastrand::Rng::with_seed(3);
        for n in 1..6 {
            let cap = (0.1 * 2f64.powi(n - 1)).min(1.0);
            let d = p.backoff(n as u32, &mut rng).as_secs_f64();
            assert!(d <= cap, "{n}: {d} > {cap}");
        }
    }

    #[test]
    fn invalid_configs_say_why() {
        let e = method_policy("{\"methodConfig\": [}", "a", "b")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--service-config:1:"), "{e}");
        let bad = r#"{"methodConfig":[{"name":[{}],"retryPolicy":{"maxAttempts":1,"initialBackoff":"1s","maxBackoff":"1s","backoffMultiplier":1,"retryableStatusCodes":["UNAVAILABLE"]}}]}"#;
        assert!(method_policy(bad, "a", "b")
            .unwrap_err()
            .to_string()
            .contains("at least 2"));
        let bad = bad
            .replace("\"maxAttempts\":1", "\"maxAttempts\":2")
            .replace("UNAVAILABLE", "SOMETIMES");
        assert!(method_policy(&bad, "a", "b")
            .unwrap_err()
            .to_string()
            .contains("SOMETIMES"));
    }
}
