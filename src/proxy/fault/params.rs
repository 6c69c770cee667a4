//! The typed description of a fault's parameters, and the one reader of
//! every form a fault comes in: `KEY=VALUE` text (the command line and
//! scenario strings), toxiproxy's JSON attributes (the API: durations as
//! numbers of milliseconds or microseconds, rates in KB/s) and a YAML
//! mapping (scenario files, read as text values). Each form is also
//! rendered back from the same description, so a fault round-trips
//! through all three.

use std::time::Duration;

use serde_json::Value as Json;

use crate::h2wire::{ErrorCode, FrameType};

/// What a JSON number means for a duration (toxiproxy's units).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    Millis,
    Micros,
}

/// A parameter's type.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    /// `500ms`, `2s`, `1m30s` in text; a number of this unit in JSON.
    Duration(Unit),
    /// `100`, `64KB`, `1MB`, `1MiB` in text; a number of this many bytes
    /// in JSON (bandwidth's rate is KB/s there, as in toxiproxy).
    Bytes(u64),
    /// A whole number.
    Number,
    /// One word of these.
    Choice(&'static [&'static str]),
    /// Free text (no comma in the `KEY=VALUE` form).
    Text,
    /// An HTTP/2 error code: a name or a number.
    Code,
    /// An HTTP/2 control frame type by name.
    Frame,
}

/// When a parameter may be left out.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Need {
    Required,
    /// Absent means this value, given in text.
    Default(&'static str),
    /// Absent means none: this word (`all`, `once`, ...) says so in the
    /// help and may be given in text for it.
    Optional(&'static str),
}

/// One parameter of a fault.
#[derive(Debug)]
pub(crate) struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub need: Need,
    pub help: &'static str,
    /// Another name it answers to (toxiproxy's, or an older one).
    pub alias: Option<&'static str>,
    /// Another name it answers to in text, whose value is a bare number of
    /// milliseconds (`latency:ms=200`).
    pub alias_ms: Option<&'static str>,
    /// The values column of `--list-faults`, when the kind's is not apt.
    pub shown: Option<&'static str>,
}

impl Param {
    pub const fn new(name: &'static str, kind: Kind, need: Need, help: &'static str) -> Self {
        Self {
            name,
            kind,
            need,
            help,
            alias: None,
            alias_ms: None,
            shown: None,
        }
    }

    pub const fn alias(mut self, alias: &'static str) -> Self {
        self.alias = Some(alias);
        self
    }

    pub const fn alias_ms(mut self, alias: &'static str) -> Self {
        self.alias_ms = Some(alias);
        self
    }

    pub const fn shown(mut self, values: &'static str) -> Self {
        self.shown = Some(values);
        self
    }

    /// The values column of `--list-faults`.
    pub fn values(&self) -> String {
        if let Some(s) = self.shown {
            return s.to_string();
        }
        match self.kind {
            Kind::Duration(_) => "duration".into(),
            Kind::Bytes(_) => "bytes".into(),
            Kind::Number => "number".into(),
            Kind::Choice(words) => words.join("|"),
            Kind::Text => "text".into(),
            Kind::Code => "NO_ERROR|CANCEL|... or a number".into(),
            Kind::Frame => FRAMES
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join("|"),
        }
    }

    /// The default column of `--list-faults`.
    pub fn default_text(&self) -> &'static str {
        match self.need {
            Need::Required => "(required)",
            Need::Default(d) | Need::Optional(d) => d,
        }
    }
}

/// The control frames drop-frame takes: dropping HEADERS, DATA or
/// CONTINUATION would break the stream.
pub(crate) const FRAMES: [FrameType; 6] = [
    FrameType::Ping,
    FrameType::Settings,
    FrameType::WindowUpdate,
    FrameType::Priority,
    FrameType::RstStream,
    FrameType::GoAway,
];

/// A parameter's value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Duration(Duration),
    Int(u64),
    Word(&'static str),
    Text(String),
    Code(ErrorCode),
    Frame(FrameType),
}

/// A fault's parameter values, in the order of its description; `None` for
/// an optional one left out. Defaults are filled in.
#[derive(Clone, Debug)]
pub(crate) struct Args {
    params: &'static [Param],
    values: Vec<Option<Value>>,
}

/// Equal values (of the same fault's description).
impl PartialEq for Args {
    fn eq(&self, o: &Self) -> bool {
        std::ptr::eq(self.params, o.params) && self.values == o.values
    }
}

/// `fault: message` errors name the fault; this is the message.
pub(crate) type Msg = String;

fn parse_bytes(v: &str) -> Option<u64> {
    let v = v.trim();
    let split = v
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1000,
        "mb" | "m" => 1_000_000,
        "gb" | "g" => 1_000_000_000,
        "kib" => 1024,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return None,
    };
    if factor == 1 {
        return num.parse().ok();
    }
    let n: f64 = num.parse().ok()?;
    (n >= 0.0).then(|| (n * factor as f64).round() as u64)
}

impl Kind {
    /// A value in text form (command line, YAML).
    fn parse(self, key: &str, v: &str) -> Result<Value, Msg> {
        let bad = |what: &str| format!("`{key}={v}` {what}");
        Ok(match self {
            Kind::Duration(_) => Value::Duration(
                crate::parse::parse_duration(v)
                    .map_err(|_| bad("is not a duration; expected 500ms, 2s or 1m30s"))?,
            ),
            Kind::Bytes(_) => Value::Int(
                parse_bytes(v).ok_or_else(|| bad("is not a number of bytes (100, 64KB, 1MB)"))?,
            ),
            Kind::Number => Value::Int(v.trim().parse().map_err(|_| bad("is not a number"))?),
            Kind::Choice(words) => Value::Word(
                words
                    .iter()
                    .find(|w| w.eq_ignore_ascii_case(v.trim()))
                    .copied()
                    .ok_or_else(|| bad(&format!("must be {}", or_list(words))))?,
            ),
            Kind::Text => Value::Text(v.to_string()),
            Kind::Code => Value::Code(ErrorCode::from_name(v.trim()).ok_or_else(|| {
                bad("is not an HTTP/2 error code (NO_ERROR, CANCEL, REFUSED_STREAM, ENHANCE_YOUR_CALM, ... or a number)")
            })?),
            Kind::Frame => {
                let t = v.trim().to_ascii_uppercase();
                Value::Frame(FRAMES.into_iter().find(|f| f.name() == t).ok_or_else(|| {
                    format!("`{key}={t}` cannot be dropped whole; it takes PING, SETTINGS, WINDOW_UPDATE, PRIORITY, RST_STREAM or GOAWAY (dropping HEADERS or DATA would break the stream)")
                })?)
            }
        })
    }

    /// A value from the API's JSON attributes: numbers in toxiproxy's
    /// units, strings in text form.
    fn read_json(self, key: &str, v: &Json) -> Result<Value, Msg> {
        match (self, v) {
            (_, Json::String(s)) => self.parse(key, s),
            (Kind::Duration(unit), Json::Number(n)) => {
                let n = n.as_f64().filter(|n| *n >= 0.0).ok_or_else(|| {
                    format!(
                        "`{key}={v}` is not a duration (a number of {})",
                        unit.name()
                    )
                })?;
                Ok(Value::Duration(Duration::from_secs_f64(match unit {
                    Unit::Millis => n / 1e3,
                    Unit::Micros => n / 1e6,
                })))
            }
            (Kind::Bytes(factor), Json::Number(n)) => n
                .as_f64()
                .filter(|n| *n >= 0.0)
                .map(|n| Value::Int((n * factor as f64).round() as u64))
                .ok_or_else(|| format!("`{key}={v}` is not a number of bytes")),
            (Kind::Number, Json::Number(n)) => n
                .as_u64()
                .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
                .map(Value::Int)
                .ok_or_else(|| format!("`{key}={v}` is not a number")),
            (_, Json::Bool(b)) => self.parse(key, if *b { "true" } else { "false" }),
            (_, Json::Number(n)) => self.parse(key, &n.to_string()),
            _ => Err(format!("`{key}` cannot be {v}")),
        }
    }
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Millis => "milliseconds",
            Unit::Micros => "microseconds",
        }
    }
}

/// `a, b or c`.
pub(crate) fn or_list(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

impl Value {
    /// Text form.
    pub fn text(&self) -> String {
        match self {
            Value::Duration(d) => fmt_duration(*d),
            Value::Int(n) => n.to_string(),
            Value::Word(w) => w.to_string(),
            Value::Text(t) => t.clone(),
            Value::Code(c) => c.to_string(),
            Value::Frame(f) => f.name().to_string(),
        }
    }

    /// JSON form (toxiproxy's units for durations and byte rates).
    fn json(&self, kind: Kind) -> Json {
        match (self, kind) {
            (Value::Duration(d), Kind::Duration(Unit::Millis)) => number(d.as_secs_f64() * 1e3),
            (Value::Duration(d), Kind::Duration(Unit::Micros)) => number(d.as_secs_f64() * 1e6),
            (Value::Int(n), Kind::Bytes(f)) if f > 1 => number(*n as f64 / f as f64),
            (Value::Int(n), _) => Json::from(*n),
            (Value::Word("true"), _) => Json::Bool(true),
            (Value::Word("false"), _) => Json::Bool(false),
            (other, _) => Json::String(other.text()),
        }
    }
}

/// A whole number as an integer, else a float.
fn number(f: f64) -> Json {
    if f.fract() == 0.0 && f.abs() < 9e15 {
        Json::from(f as i64)
    } else {
        serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)
    }
}

/// `1500ms` rather than humantime's `1s 500ms`: one token, no space.
pub(crate) fn fmt_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    for (unit, per) in [
        ("h", 3_600_000_000_000u128),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
    ] {
        if ns.is_multiple_of(per) {
            return format!("{}{unit}", ns / per);
        }
    }
    format!("{ns}ns")
}

impl Args {
    /// Reads `KEY=VALUE` pairs already split (the common parameters taken
    /// out); every key must be one of `params`.
    pub fn from_pairs(params: &'static [Param], pairs: &[(&str, &str)]) -> Result<Self, Msg> {
        let mut values: Vec<Option<Value>> = vec![None; params.len()];
        for (k, v) in pairs {
            let (i, p) = find(params, k)?;
            let value = if p.alias_ms == Some(*k) {
                let ms: f64 = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("`{k}={v}` is not a number of milliseconds"))?;
                Value::Duration(Duration::from_secs_f64(ms.max(0.0) / 1e3))
            } else if matches!(p.need, Need::Optional(none) if none.eq_ignore_ascii_case(v.trim()))
            {
                values[i] = None;
                continue;
            } else {
                p.kind.parse(p.name, v)?
            };
            values[i] = Some(value);
        }
        Self::complete(params, values)
    }

    /// Reads toxiproxy's JSON attributes (`null` is left out).
    pub fn from_json(
        params: &'static [Param],
        attrs: &serde_json::Map<String, Json>,
    ) -> Result<Self, Msg> {
        let mut values: Vec<Option<Value>> = vec![None; params.len()];
        for (k, v) in attrs {
            if v.is_null() {
                continue;
            }
            let (i, p) = find(params, k)?;
            if let (Some(a), Json::Number(_)) = (p.alias_ms, v) {
                if a == k {
                    values[i] = Some(Kind::Duration(Unit::Millis).read_json(p.name, v)?);
                    continue;
                }
            }
            if matches!((p.need, v), (Need::Optional(none), Json::String(s)) if none.eq_ignore_ascii_case(s))
            {
                continue;
            }
            values[i] = Some(p.kind.read_json(p.name, v)?);
        }
        Self::complete(params, values)
    }

    fn complete(params: &'static [Param], mut values: Vec<Option<Value>>) -> Result<Self, Msg> {
        for (p, v) in params.iter().zip(values.iter_mut()) {
            if v.is_some() {
                continue;
            }
            match p.need {
                Need::Required => return Err(format!("`{}` is required", p.name)),
                Need::Default(d) => *v = Some(p.kind.parse(p.name, d)?),
                Need::Optional(_) => {}
            }
        }
        Ok(Self { params, values })
    }

    fn get(&self, name: &str) -> Option<&Value> {
        let i = self.params.iter().position(|p| p.name == name);
        debug_assert!(
            i.is_some(),
            "a fault reads a parameter it does not describe: {name}"
        );
        i.and_then(|i| self.values[i].as_ref())
    }

    pub fn duration(&self, name: &str) -> Duration {
        self.opt_duration(name).unwrap_or_default()
    }

    pub fn opt_duration(&self, name: &str) -> Option<Duration> {
        match self.get(name) {
            Some(Value::Duration(d)) => Some(*d),
            _ => None,
        }
    }

    pub fn int(&self, name: &str) -> u64 {
        self.opt_int(name).unwrap_or_default()
    }

    pub fn opt_int(&self, name: &str) -> Option<u64> {
        match self.get(name) {
            Some(Value::Int(n)) => Some(*n),
            _ => None,
        }
    }

    pub fn word(&self, name: &str) -> &'static str {
        match self.get(name) {
            Some(Value::Word(w)) => w,
            _ => "",
        }
    }

    pub fn text(&self, name: &str) -> &str {
        match self.get(name) {
            Some(Value::Text(t)) => t,
            _ => "",
        }
    }

    pub fn code(&self, name: &str) -> ErrorCode {
        match self.get(name) {
            Some(Value::Code(c)) => *c,
            _ => ErrorCode::NO_ERROR,
        }
    }

    pub fn frame(&self, name: &str) -> FrameType {
        match self.get(name) {
            Some(Value::Frame(f)) => *f,
            _ => FrameType::Ping,
        }
    }

    /// The values that differ from the defaults, as (name, value).
    fn given(&self) -> impl Iterator<Item = (&'static Param, &Value)> + '_ {
        self.params.iter().zip(&self.values).filter_map(|(p, v)| {
            let v = v.as_ref()?;
            let default = match p.need {
                Need::Default(d) => p.kind.parse(p.name, d).ok(),
                _ => None,
            };
            (default.as_ref() != Some(v)).then_some((p, v))
        })
    }

    /// `key=value,...` of the values that differ from the defaults.
    pub fn text_pairs(&self) -> Vec<String> {
        self.given()
            .map(|(p, v)| format!("{}={}", p.name, v.text()))
            .collect()
    }

    /// toxiproxy's attributes object.
    pub fn json(&self) -> serde_json::Map<String, Json> {
        self.given()
            .map(|(p, v)| (p.name.to_string(), v.json(p.kind)))
            .collect()
    }

    /// (key, text value) pairs for YAML.
    pub fn yaml_pairs(&self) -> Vec<(&'static str, String)> {
        self.given().map(|(p, v)| (p.name, v.text())).collect()
    }
}

fn find<'p>(params: &'p [Param], key: &str) -> Result<(usize, &'p Param), Msg> {
    params
        .iter()
        .enumerate()
        .find(|(_, p)| p.name == key || p.alias == Some(key) || p.alias_ms == Some(key))
        .ok_or_else(|| format!("unknown parameter `{key}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARAMS: &[Param] = &[
        Param::new(
            "latency",
            Kind::Duration(Unit::Millis),
            Need::Required,
            "delay",
        )
        .alias_ms("ms"),
        Param::new("rate", Kind::Bytes(1000), Need::Default("1MB"), "rate"),
        Param::new("count", Kind::Number, Need::Optional("all"), "how many"),
        Param::new(
            "acks",
            Kind::Choice(&["true", "false", "all"]),
            Need::Default("all"),
            "which",
        ),
    ];

    #[test]
    fn text_json_and_defaults() {
        let a = Args::from_pairs(PARAMS, &[("ms", "200"), ("count", "all")]).unwrap();
        assert_eq!(a.duration("latency"), Duration::from_millis(200));
        assert_eq!(a.int("rate"), 1_000_000);
        assert_eq!(a.opt_int("count"), None);
        assert_eq!(a.word("acks"), "all");
        assert_eq!(a.text_pairs(), ["latency=200ms"]);
        let j: serde_json::Map<String, Json> =
            serde_json::from_str(r#"{"latency": 1.5, "rate": 64, "count": 3, "acks": true}"#)
                .unwrap();
        let b = Args::from_json(PARAMS, &j).unwrap();
        assert_eq!(b.duration("latency"), Duration::from_micros(1500));
        assert_eq!(b.int("rate"), 64_000);
        assert_eq!(b.json(), j);
        assert_eq!(
            Args::from_pairs(PARAMS, &[]).unwrap_err(),
            "`latency` is required"
        );
        assert!(Args::from_pairs(PARAMS, &[("latency", "200")])
            .unwrap_err()
            .contains("not a duration"));
        assert!(
            Args::from_pairs(PARAMS, &[("latency", "1s"), ("acks", "maybe")])
                .unwrap_err()
                .contains("must be true, false or all")
        );
    }

    #[test]
    fn bytes_and_durations_in_one_token() {
        assert_eq!(parse_bytes("64KB"), Some(64_000));
        assert_eq!(parse_bytes("1MiB"), Some(1 << 20));
        assert_eq!(parse_bytes("12"), Some(12));
        assert_eq!(parse_bytes("fast"), None);
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(fmt_duration(Duration::from_secs(120)), "2m");
        assert_eq!(fmt_duration(Duration::from_micros(10)), "10us");
    }
}
