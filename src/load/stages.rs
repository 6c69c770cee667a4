//! `--stages`: the calls in flight, or the rate, over time. k6's form
//! `10s:100,30s:1000,10s:0` ramps linearly from the last target (0 at the
//! start) to each stage's target over its duration; ghz's step form
//! `step:10,10,100,5s` starts at 10 and adds 10 every 5s up to 100. Targets
//! with `/s` are rates (calls started per second, coordinated omission
//! corrected as `--rps`); plain numbers are calls in flight.

use std::time::Duration;

/// What the targets set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Calls in flight.
    Concurrency,
    /// Calls started per second.
    Rate,
}

impl Level {
    /// How a level of this kind reads: `100 in flight`, `100/s`.
    pub fn show(self, v: f64) -> String {
        match self {
            Level::Concurrency => format!("{v:.0} in flight"),
            Level::Rate => format!("{}/s", trim(v)),
        }
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map_or(s.clone(), str::to_string)
}

/// One stage: from `from` to `to`, linearly, over `duration`.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub from: f64,
    pub to: f64,
}

/// The schedule of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    pub level: Level,
    pub stages: Vec<Stage>,
    /// The text it was read from.
    pub text: String,
}

const FORMS: &str = "expected DURATION:TARGET,... (10s:100,30s:1000,10s:0; TARGET/s for a rate) or step:START,STEP,END,EVERY (step:10,10,100,5s)";

/// A target: a count of calls in flight, or `N/s`.
fn target(item: &str, s: &str) -> Result<(f64, Level), String> {
    let (num, level) = match s.trim().strip_suffix("/s") {
        Some(n) => (n, Level::Rate),
        None => (s.trim(), Level::Concurrency),
    };
    let v: f64 = num
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| {
            format!("{item}: `{s}` is not a target (a count like 100, or a rate like 100/s)")
        })?;
    if level == Level::Concurrency && v.fract() != 0.0 {
        return Err(format!(
            "{item}: `{s}` is not a whole number of calls in flight"
        ));
    }
    Ok((v, level))
}

fn duration(item: &str, s: &str) -> Result<Duration, String> {
    crate::parse::parse_duration(s.trim())
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{item}: `{}` is not a duration like 10s", s.trim()))
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let (level, stages) = match t.strip_prefix("step:") {
            Some(rest) => Self::steps(rest)?,
            None => Self::ramps(t)?,
        };
        if stages.iter().all(|s| s.from == 0.0 && s.to == 0.0) {
            return Err(format!("`{text}` never has a call to make"));
        }
        Ok(Self {
            level,
            stages,
            text: t.to_string(),
        })
    }

    fn ramps(t: &str) -> Result<(Level, Vec<Stage>), String> {
        let mut stages = Vec::new();
        let mut kind = None;
        let mut from = 0.0;
        for (i, part) in t.split(',').enumerate() {
            let item = format!("stage {} (`{}`)", i + 1, part.trim());
            let (d, v) = part
                .split_once(':')
                .ok_or_else(|| format!("{item} has no `:`; {FORMS}"))?;
            let (to, level) = target(&item, v)?;
            if kind.is_some_and(|k| k != level) {
                return Err(format!(
                    "{item}: every target is a rate (N/s) or every one a count of calls in flight, not both"
                ));
            }
            kind = Some(level);
            stages.push(Stage {
                duration: duration(&item, d)?,
                from,
                to,
            });
            from = to;
        }
        Ok((kind.unwrap_or(Level::Concurrency), stages))
    }

    fn steps(rest: &str) -> Result<(Level, Vec<Stage>), String> {
        let parts: Vec<&str> = rest.split(',').collect();
        let [start, step, end, every] = parts.as_slice() else {
            return Err(format!("`step:{rest}` has {} values; {FORMS}", parts.len()));
        };
        let (start, level) = target("START", start)?;
        let (end, l2) = target("END", end)?;
        let (step_abs, l3) = target("STEP", step.trim().trim_start_matches('-'))?;
        if l2 != level || l3 != level {
            return Err("START, STEP and END are all rates (N/s) or all counts".into());
        }
        let every = duration("EVERY", every)?;
        if step_abs == 0.0 && start != end {
            return Err("STEP is 0: END is never reached".into());
        }
        let step = if end < start { -step_abs } else { step_abs };
        let n = if step == 0.0 {
            1
        } else {
            ((end - start) / step).floor() as usize + 1
        };
        if n > 10_000 {
            return Err(format!("step:{rest} makes {n} stages; at most 10000"));
        }
        let stages = (0..n)
            .map(|k| {
                let v = start + step * k as f64;
                Stage {
                    duration: every,
                    from: v,
                    to: v,
                }
            })
            .collect();
        Ok((level, stages))
    }

    /// The whole schedule's length.
    pub fn total(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// The stage at `t` into the run and how far into it.
    pub fn stage_at(&self, t: Duration) -> Option<(usize, Duration)> {
        let mut begin = Duration::ZERO;
        for (i, s) in self.stages.iter().enumerate() {
            if t < begin + s.duration {
                return Some((i, t - begin));
            }
            begin += s.duration;
        }
        None
    }

    /// When stage `i` begins, into the run.
    pub fn begins(&self, i: usize) -> Duration {
        self.stages[..i.min(self.stages.len())]
            .iter()
            .map(|s| s.duration)
            .sum()
    }

    /// The level at `t` into the run (0 after the end).
    pub fn level_at(&self, t: Duration) -> f64 {
        match self.stage_at(t) {
            Some((i, into)) => {
                let s = &self.stages[i];
                s.from + (s.to - s.from) * into.as_secs_f64() / s.duration.as_secs_f64()
            }
            None => 0.0,
        }
    }

    /// The most calls in flight (or the highest rate) it asks for.
    pub fn max(&self) -> f64 {
        self.stages
            .iter()
            .flat_map(|s| [s.from, s.to])
            .fold(0.0, f64::max)
    }

    /// Calls due over the whole run (rate stages).
    pub fn calls(&self) -> f64 {
        self.stages
            .iter()
            .map(|s| (s.from + s.to) / 2.0 * s.duration.as_secs_f64())
            .sum()
    }

    /// When call `n` (0-based) is due with rate stages: the time at which
    /// the calls due so far (the integral of the rate) reach `n`; `None`
    /// when the run ends first.
    pub fn due(&self, n: u64) -> Option<Duration> {
        let n = n as f64;
        let (mut begin, mut before) = (0.0, 0.0);
        for s in &self.stages {
            let d = s.duration.as_secs_f64();
            let here = (s.from + s.to) / 2.0 * d;
            if before + here > n {
                // Solve from*x + (to-from)/(2d)*x^2 = n - before for x.
                let (a, b, c) = ((s.to - s.from) / (2.0 * d), s.from, before - n);
                let x = if a.abs() < 1e-12 {
                    -c / b
                } else {
                    (-b + (b * b - 4.0 * a * c).max(0.0).sqrt()) / (2.0 * a)
                };
                return Some(Duration::from_secs_f64(begin + x.clamp(0.0, d)));
            }
            begin += d;
            before += here;
        }
        None
    }

    /// Stage `i` as people read it: `0:10-0:40 100 -> 1000 in flight`.
    pub fn describe(&self, i: usize) -> String {
        let s = &self.stages[i];
        let span = |d: Duration| {
            let t = d.as_secs_f64();
            format!("{}:{:04.1}", (t / 60.0).floor(), t % 60.0)
        };
        let (a, b) = (self.begins(i), self.begins(i) + s.duration);
        let level = if s.from == s.to {
            self.level.show(s.to)
        } else {
            format!("{} -> {}", trim(s.from), self.level.show(s.to))
        };
        format!("{}-{} {level}", span(a), span(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn ramps_from_the_last_target() {
        let s = Schedule::parse("10s:100,30s:1000,10s:0").unwrap();
        assert_eq!(s.level, Level::Concurrency);
        assert_eq!(s.total(), secs(50.0));
        assert_eq!(s.level_at(secs(5.0)), 50.0);
        assert_eq!(s.level_at(secs(25.0)), 550.0);
        assert_eq!(s.level_at(secs(45.0)), 500.0);
        assert_eq!(s.level_at(secs(50.0)), 0.0);
        assert_eq!(s.max(), 1000.0);
        assert_eq!(s.stage_at(secs(10.0)), Some((1, secs(0.0))));
        assert_eq!(s.describe(1), "0:10.0-0:40.0 100 -> 1000 in flight");
    }

    #[test]
    fn steps_as_ghz() {
        let s = Schedule::parse("step:10,10,30,5s").unwrap();
        let levels: Vec<f64> = s.stages.iter().map(|s| s.to).collect();
        assert_eq!(levels, [10.0, 20.0, 30.0]);
        assert_eq!(s.total(), secs(15.0));
        assert_eq!(s.level_at(secs(7.0)), 20.0);
        let down = Schedule::parse("step:100/s,25/s,50/s,1s").unwrap();
        assert_eq!(down.level, Level::Rate);
        assert_eq!(down.stages.len(), 3);
        assert_eq!(down.stages[2].to, 50.0);
    }

    #[test]
    fn rate_stages_place_every_call() {
        // 0 -> 100/s over 10 s: 500 calls, call n due at sqrt(n/5) s.
        let s = Schedule::parse("10s:100/s,10s:100/s").unwrap();
        assert_eq!(s.calls(), 1500.0);
        assert_eq!(s.due(0), Some(secs(0.0)));
        let t = s.due(20).unwrap().as_secs_f64();
        assert!((t - 2.0).abs() < 1e-9, "{t}");
        let t = s.due(600).unwrap().as_secs_f64();
        assert!((t - 11.0).abs() < 1e-9, "{t}");
        assert_eq!(s.due(1500), None);
        // Due times never go back.
        let mut last = Duration::ZERO;
        for n in 0..1500 {
            let d = s.due(n).unwrap();
            assert!(d >= last);
            last = d;
        }
    }

    #[test]
    fn mistakes_are_named() {
        for (bad, says) in [
            (
                "10s:100,30x:5",
                "stage 2 (`30x:5`): `30x` is not a duration",
            ),
            ("10s100", "has no `:`"),
            ("10s:fast", "is not a target"),
            ("10s:10/s,5s:20", "not both"),
            ("10s:1.5", "not a whole number"),
            ("10s:0", "never has a call"),
            ("step:1,2,3", "has 3 values"),
            ("step:1,0,5,1s", "STEP is 0"),
            ("0s:10", "is not a duration"),
        ] {
            let e = Schedule::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
