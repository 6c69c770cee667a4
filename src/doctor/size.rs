//! Max message size, by bisection over calls to a method that echoes
//! (`--echo-method`). gRPC servers refuse a request above their limit with
//! RESOURCE_EXHAUSTED and say the limit in the message (grpc-go: "grpc:
//! received message larger than max (N vs. M)", C-core: "Received message
//! larger than max (N vs. M)"; tonic: OUT_OF_RANGE "... the limit is: M
//! bytes"): then two calls confirm it exactly.

use std::time::Duration;

use super::link::{message_of_size, CallOutcome, Link};
use super::model::{Confidence, Finding, Outcome};
use super::Budget;

/// The largest message tried.
pub const CAP: usize = 16 << 20;

/// The message field filled: 1 (a string or bytes field in the usual echo
/// request: EchoRequest.message, HelloRequest.name), or, when the method
/// will not parse that, a field number no message uses (kept as unknown).
const FIELDS: [u32; 2] = [1, 536_870_911];

fn refused(c: &CallOutcome) -> bool {
    c.grpc_status == Some(tonic::Code::ResourceExhausted)
        // tonic: OUT_OF_RANGE "decoded message length too large".
        || (c.grpc_status == Some(tonic::Code::OutOfRange) && c.grpc_message.contains("too large"))
        || (c.grpc_status.is_none() && c.http_status.is_some_and(|s| s == 413 || s >= 400))
}

/// The limit in a "larger than max (N vs. M)" message (grpc-go, C-core)
/// or a "the limit is: M bytes" one (tonic).
pub fn stated_limit(message: &str) -> Option<usize> {
    if let Some(i) = message.find("the limit is: ") {
        let rest = &message[i + "the limit is: ".len()..];
        return rest.split_whitespace().next()?.parse().ok();
    }
    let i = message.find("larger than max (")?;
    let rest = &message[i + "larger than max (".len()..];
    let (_, after) = rest.split_once(" vs. ")?;
    let m = after.split(')').next()?;
    m.trim().parse().ok()
}

pub async fn measure(link: &Link, path: &str, budget: &Budget) -> Finding {
    let f = Finding::new(
        "max_message_size",
        "max request message size",
        Outcome::Measured,
    );
    let wait = Duration::from_secs(20);
    let call = |field: u32, size: usize| async move {
        match message_of_size(field, size) {
            Some(m) => (m.len(), link.call(path, &m, wait).await),
            None => (0, CallOutcome::default()),
        }
    };
    // A small message must work first.
    let mut field = FIELDS[0];
    let mut first = call(field, 1024).await;
    if first.1.grpc_status != Some(tonic::Code::Ok) {
        field = FIELDS[1];
        first = call(field, 1024).await;
    }
    if first.1.grpc_status != Some(tonic::Code::Ok) {
        return Finding {
            outcome: Outcome::NotMeasured,
            ..f
        }
        .result(format!(
            "{path} fails with a 1 KiB message: {} {}",
            first.1.describe(),
            first.1.grpc_message
        ))
        .how("a 1 KiB request");
    }
    let how_field = if field == 1 {
        "field 1"
    } else {
        "an unknown field"
    };
    let (size, top) = call(field, CAP).await;
    if top.grpc_status == Some(tonic::Code::Ok) {
        let echoed = top.response_len >= size;
        return Finding {
            outcome: Outcome::NoneSeen,
            bytes: Some(size as u64),
            ..f
        }
        .result(format!(
            "accepts {} (the largest tried){}",
            bytes_text(size),
            if echoed { ", and echoes it" } else { "" }
        ))
        .how(format!("one {} request ({how_field})", bytes_text(size)));
    }
    if !refused(&top) {
        return Finding {
            outcome: Outcome::NotMeasured,
            ..f
        }
        .result(format!(
            "a {} request got {} {}",
            bytes_text(size),
            top.describe(),
            top.grpc_message
        ))
        .how(format!("one {} request", bytes_text(size)));
    }
    let refusal = format!("{} {}", top.describe(), top.grpc_message);
    // The stated limit, confirmed: M passes, M + 1 is refused.
    if let Some(m) = stated_limit(&top.grpc_message).filter(|m| *m >= 1024 && *m < CAP) {
        let (a, at) = call(field, m).await;
        let (b, above) = call(field, m + 1).await;
        if a == m && b == m + 1 && at.grpc_status == Some(tonic::Code::Ok) && refused(&above) {
            return Finding {
                bytes: Some(m as u64),
                ..f
            }
            .result(format!(
                "{} ({m} bytes); above it: {refusal}",
                bytes_text(m)
            ))
            .how(format!(
                "the limit the refusal states, confirmed: {m} bytes accepted, {} refused",
                m + 1
            ));
        }
    }
    // Bisection to 1%.
    let (mut ok, mut bad) = (1024usize, size);
    let mut calls = 2;
    while bad - ok > (ok / 100).max(1) {
        if budget.over() || link.is_closed() {
            return Finding {
                outcome: Outcome::OutOfBudget,
                bytes: Some(ok as u64),
                ..f
            }
            .result(format!(
                "between {} and {}",
                bytes_text(ok),
                bytes_text(bad)
            ))
            .how(format!("bisection, {calls} calls"));
        }
        let mid = ok + (bad - ok) / 2;
        let (n, c) = call(field, mid).await;
        calls += 1;
        if n <= ok {
            break;
        }
        if c.grpc_status == Some(tonic::Code::Ok) {
            ok = n;
        } else {
            bad = n;
        }
    }
    Finding {
        bytes: Some(ok as u64),
        ..f
    }
    .result(format!(
        "about {} (accepted), {} refused: {refusal}",
        bytes_text(ok),
        bytes_text(bad)
    ))
    .how(format!("bisection, {calls} calls ({how_field})"))
    .confidence(Confidence::Medium)
}

pub fn bytes_text(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 20 {
        format!("{:.2} MiB", n as f64 / f64::from(1u32 << 20))
    } else if n >= 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_read_from_both_stacks_messages() {
        assert_eq!(
            stated_limit("grpc: received message larger than max (16777216 vs. 4194304)"),
            Some(4_194_304)
        );
        assert_eq!(
            stated_limit("Received message larger than max (5000000 vs. 4194304)"),
            Some(4_194_304)
        );
        assert_eq!(
            stated_limit("Error, decoded message length too large: found 16777216 bytes, the limit is: 4194304 bytes"),
            Some(4_194_304)
        );
        assert_eq!(stated_limit("too big"), None);
    }
}
