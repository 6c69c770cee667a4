//! `--fail-on EXPR` thresholds for CI: `p99>50ms`, `p99.9>=1s`, `mean>20ms`,
//! `max>2s`, `error_rate>0.1%`, `errors>0`, `code:UNAVAILABLE>0`, `rps<1000`,
//! `checks<100%` (of the `--expect` checks made, those that held),
//! `check:2<99%` (the second `--expect`).
//! A breached threshold makes the run exit 1.

use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub enum Metric {
    /// Latency at this quantile (0..=1), in ms.
    Quantile(f64),
    Mean,
    Min,
    Max,
    /// Failed calls / all calls (0..=1).
    ErrorRate,
    Errors,
    /// Calls ending with this status code.
    Code(String),
    Rps,
    /// The checks (`--expect`) that held, of those made (0..=1).
    Checks,
    /// Check `n` (1-based, in the order given) that held, of those made.
    Check(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    pub text: String,
    pub metric: Metric,
    pub op: Op,
    /// In ms for latencies, 0..=1 for the error rate, a count otherwise.
    pub limit: f64,
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

const EXPECTED: &str = "expected METRIC OP VALUE: p50/p90/p99/p99.9/pNN, mean, min, max (a duration: 50ms), error_rate (0.1% or 0.001), errors, code:NAME (counts), rps, checks or check:N (--expect passed: 99% or 0.99); OP is >, >=, < or <=";

impl Threshold {
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let (pos, op, len) = [(">=", Op::Ge), ("<=", Op::Le), (">", Op::Gt), ("<", Op::Lt)]
            .iter()
            .find_map(|(sym, op)| t.find(sym).map(|p| (p, *op, sym.len())))
            .ok_or_else(|| format!("`{s}` has no comparison; {EXPECTED}"))?;
        let (name, value) = (t[..pos].trim(), t[pos + len..].trim());
        let bad_value = |what: &str| format!("`{value}` in `{s}` is not {what}");
        let duration_ms = || {
            crate::parse::parse_duration(value)
                .map(|d| d.as_secs_f64() * 1e3)
                .map_err(|_| bad_value("a duration like 50ms"))
        };
        let count = || {
            value
                .parse::<f64>()
                .ok()
                .filter(|v| *v >= 0.0)
                .ok_or_else(|| bad_value("a number"))
        };
        let rate = || {
            match value.strip_suffix('%') {
                Some(p) => p.trim().parse::<f64>().map(|x| x / 100.0),
                None => value.parse::<f64>(),
            }
            .ok()
            .filter(|v| (0.0..=1.0).contains(v))
            .ok_or_else(|| bad_value("a rate like 0.1% or 0.001"))
        };
        let (metric, limit) = match name {
            "mean" => (Metric::Mean, duration_ms()?),
            "min" => (Metric::Min, duration_ms()?),
            "max" => (Metric::Max, duration_ms()?),
            "errors" => (Metric::Errors, count()?),
            "rps" => (Metric::Rps, count()?),
            "error_rate" => (Metric::ErrorRate, rate()?),
            "checks" => (Metric::Checks, rate()?),
            n if n.starts_with("check:") => {
                let k: usize = n["check:".len()..]
                    .trim()
                    .parse()
                    .ok()
                    .filter(|k| *k >= 1)
                    .ok_or_else(|| {
                        format!("`{n}` in `{s}` is not check:N, N the place of an --expect (1 for the first)")
                    })?;
                (Metric::Check(k), rate()?)
            }
            n if n.starts_with("code:") => {
                let code = n["code:".len()..].trim().to_ascii_uppercase();
                if crate::grpc::code_by_name(&code).is_none() {
                    return Err(format!(
                        "`{code}` in `{s}` is not a gRPC status code name (OK, UNAVAILABLE, ...)"
                    ));
                }
                (Metric::Code(code), count()?)
            }
            n if n.starts_with('p') => {
                let q: f64 = n[1..]
                    .parse()
                    .ok()
                    .filter(|q| *q > 0.0 && *q <= 100.0)
                    .ok_or_else(|| {
                        format!("`{n}` in `{s}` is not a percentile like p99 or p99.9")
                    })?;
                (Metric::Quantile(q / 100.0), duration_ms()?)
            }
            _ => return Err(format!("unknown metric `{name}` in `{s}`; {EXPECTED}")),
        };
        Ok(Self {
            text: t.to_string(),
            metric,
            op,
            limit,
        })
    }

    pub fn breached(&self, value: f64) -> bool {
        match self.op {
            Op::Gt => value > self.limit,
            Op::Ge => value >= self.limit,
            Op::Lt => value < self.limit,
            Op::Le => value <= self.limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let p = Threshold::parse("p99>50ms").unwrap();
        assert_eq!(
            (p.metric, p.op, p.limit),
            (Metric::Quantile(0.99), Op::Gt, 50.0)
        );
        assert_eq!(Threshold::parse("p99.9 >= 1s").unwrap().limit, 1000.0);
        assert_eq!(Threshold::parse("error_rate>0.1%").unwrap().limit, 0.001);
        assert_eq!(Threshold::parse("error_rate>0.001").unwrap().limit, 0.001);
        assert_eq!(
            Threshold::parse("code:unavailable>0").unwrap().metric,
            Metric::Code("UNAVAILABLE".into())
        );
        assert_eq!(Threshold::parse("rps<1000").unwrap().op, Op::Lt);
        let c = Threshold::parse("checks<99%").unwrap();
        assert_eq!((c.metric, c.limit), (Metric::Checks, 0.99));
        assert_eq!(
            Threshold::parse("check:2 < 1").unwrap().metric,
            Metric::Check(2)
        );
        assert!(Threshold::parse("rps<1000").unwrap().breached(999.0));
        assert!(!Threshold::parse("errors>0").unwrap().breached(0.0));
    }

    #[test]
    fn errors_say_what_was_expected() {
        for (bad, says) in [
            ("p99", "no comparison"),
            ("p99>fast", "not a duration"),
            ("p0>1ms", "not a percentile"),
            ("error_rate>5", "not a rate"),
            ("code:SOMETIMES>0", "not a gRPC status code"),
            ("latency>1ms", "unknown metric"),
            ("check:0<1", "is not check:N"),
            ("checks<150%", "not a rate"),
        ] {
            let e = Threshold::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
