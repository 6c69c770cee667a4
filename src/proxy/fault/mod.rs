//! The proxy's faults: one file per fault (its parameters, its help line,
//! its stage), and the registry that lists them. A fault is written
//! `NAME:KEY=VALUE,...` on the command line and in scenario strings, as a
//! toxic in toxiproxy's API (`type`, `stream`, `toxicity`, `attributes`)
//! and as `{NAME: {KEY: VALUE}}` in scenario YAML; all three are read by
//! the one description in each fault's file, and rendered back from it.
//! Every fault also takes `direction` (upstream = client to server,
//! downstream, both), `probability` (toxiproxy's toxicity: the chance it
//! acts on a connection), `after` and `for`.
//!
//! Adding a fault: a new file here and a line in [`REGISTRY`].

mod bandwidth;
mod blackhole;
mod close;
mod delay_ping;
mod down;
mod drop_frame;
mod drop_goaway;
mod drop_ping;
mod idle_expiry;
mod inject_goaway;
mod inject_rst_stream;
mod latency;
mod limit_data;
mod max_concurrent_streams;
pub(crate) mod params;
mod reset;
mod reset_peer;
mod slicer;
mod slow_close;
pub(crate) mod stage;
mod timeout;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value as Json};

use params::{Args, Msg, Param};
pub(crate) use stage::{Init, Stage};

/// Every fault, in the order `--list-faults` shows them.
pub(crate) const REGISTRY: &[&FaultDef] = &[
    &latency::DEF,
    &bandwidth::DEF,
    &slicer::DEF,
    &slow_close::DEF,
    &timeout::DEF,
    &reset_peer::DEF,
    &limit_data::DEF,
    &blackhole::DEF,
    &idle_expiry::DEF,
    &reset::DEF,
    &close::DEF,
    &down::DEF,
    &drop_ping::DEF,
    &delay_ping::DEF,
    &inject_goaway::DEF,
    &drop_goaway::DEF,
    &inject_rst_stream::DEF,
    &max_concurrent_streams::DEF,
    &drop_frame::DEF,
];

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

    pub fn name(self) -> &'static str {
        match self {
            Direction::Upstream => "upstream",
            Direction::Downstream => "downstream",
            Direction::Both => "both",
        }
    }

    fn parse(v: &str) -> Option<Self> {
        match v.trim() {
            "upstream" | "up" => Some(Direction::Upstream),
            "downstream" | "down" => Some(Direction::Downstream),
            "both" => Some(Direction::Both),
            _ => None,
        }
    }
}

/// Where a fault's stages go on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// One stage in each direction the fault covers.
    Each,
    /// One stage in the client-to-server chain, whatever the direction
    /// (faults on the client's streams).
    ClientStreams,
    /// One stage for the whole connection.
    Connection,
}

/// A fault type: the registry's entry.
pub(crate) struct FaultDef {
    pub name: &'static str,
    /// One line for `--list-faults` and the docs.
    pub help: &'static str,
    pub params: &'static [Param],
    pub scope: Scope,
    /// Acts on HTTP/2 frames: needs cleartext HTTP/2 (h2c).
    pub frames: bool,
    /// The typed fault, from its parameters (checked here).
    pub build: fn(&Args) -> Result<Arc<dyn Fault>, Msg>,
}

/// A fault with its parameters: makes its stage on each connection.
pub(crate) trait Fault: Send + Sync + fmt::Debug {
    /// Its stage on one connection (per direction for [`Scope::Each`]);
    /// `None` when it has nothing to do there.
    fn stage(&self, init: &Init) -> Option<Box<dyn Stage>>;
}

/// A fault with where, how often and when it acts.
#[derive(Clone)]
pub struct FaultSpec {
    /// As given (the command line's text), or rendered.
    pub text: String,
    pub(crate) def: &'static FaultDef,
    pub(crate) args: Args,
    pub direction: Direction,
    /// The chance it acts on a connection (toxiproxy's toxicity).
    pub probability: f64,
    /// Comes into force this long after it was added.
    pub after: Option<Duration>,
    /// Is removed this long after it came into force.
    pub lasts: Option<Duration>,
    pub(crate) fault: Arc<dyn Fault>,
}

impl fmt::Debug for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultSpec")
            .field("text", &self.text)
            .field("fault", &self.fault)
            .field("direction", &self.direction)
            .field("probability", &self.probability)
            .field("after", &self.after)
            .field("lasts", &self.lasts)
            .finish()
    }
}

/// Equal when they act the same (the text they came from aside).
impl PartialEq for FaultSpec {
    fn eq(&self, o: &Self) -> bool {
        self.def.name == o.def.name
            && self.args == o.args
            && self.direction == o.direction
            && self.probability == o.probability
            && self.after == o.after
            && self.lasts == o.lasts
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct SpecError(pub String);

/// The parameters every fault takes, for messages and `--list-faults`.
const COMMON: [(&str, &str, &str, &str); 4] = [
    (
        "direction",
        "upstream|downstream|both",
        "both",
        "upstream = client to server",
    ),
    (
        "probability",
        "0..1",
        "1",
        "chance it acts on a connection (toxicity)",
    ),
    (
        "after",
        "duration",
        "0s",
        "comes into force this long after it is added",
    ),
    (
        "for",
        "duration",
        "always",
        "then acts this long, and stops",
    ),
];

/// A registered fault by name (`slow-close` or toxiproxy's `slow_close`).
pub(crate) fn def(name: &str) -> Option<&'static FaultDef> {
    let name = name.trim().replace('_', "-");
    REGISTRY.iter().copied().find(|d| d.name == name)
}

fn unknown(name: &str) -> SpecError {
    let names: Vec<&str> = REGISTRY.iter().map(|d| d.name).collect();
    SpecError(format!(
        "unknown fault `{name}`; the faults are: {} (grpcdoc proxy --list-faults)",
        names.join(", ")
    ))
}

/// The common parameters, read from their text values.
struct Common {
    direction: Direction,
    probability: f64,
    after: Option<Duration>,
    lasts: Option<Duration>,
}

impl Common {
    fn new(default_direction: Direction) -> Self {
        Self {
            direction: default_direction,
            probability: 1.0,
            after: None,
            lasts: None,
        }
    }

    /// Takes `k=v` if it is a common parameter.
    fn take(&mut self, k: &str, v: &str) -> Result<bool, Msg> {
        let dur = |v: &str| {
            crate::parse::parse_duration(v)
                .map_err(|_| format!("`{k}={v}` is not a duration; expected 500ms, 2s or 1m30s"))
        };
        match k {
            "direction" => {
                self.direction = Direction::parse(v).ok_or_else(|| {
                    format!("`direction={v}` must be upstream, downstream or both")
                })?
            }
            "probability" | "toxicity" => {
                self.probability = v
                    .trim()
                    .parse()
                    .ok()
                    .filter(|x: &f64| (0.0..=1.0).contains(x))
                    .ok_or_else(|| format!("`{k}={v}` must be a number from 0 to 1"))?
            }
            "after" => self.after = Some(dur(v)?).filter(|d| !d.is_zero()),
            "for" => self.lasts = Some(dur(v)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn build(self, def: &'static FaultDef, args: Args, text: String) -> Result<FaultSpec, Msg> {
        let fault = (def.build)(&args)?;
        Ok(FaultSpec {
            text,
            def,
            args,
            direction: self.direction,
            probability: self.probability,
            after: self.after,
            lasts: self.lasts,
            fault,
        })
    }
}

/// `name: message`, and for an unknown parameter the ones it takes.
fn named(def: &FaultDef, e: Msg) -> SpecError {
    if e.starts_with("unknown parameter") {
        let takes: Vec<&str> = def
            .params
            .iter()
            .map(|p| p.name)
            .chain(COMMON.iter().map(|c| c.0))
            .collect();
        return SpecError(format!("{}: {e}; it takes {}", def.name, takes.join(", ")));
    }
    SpecError(format!("{}: {e}", def.name))
}

impl std::str::FromStr for FaultSpec {
    type Err = SpecError;

    /// `NAME:KEY=VALUE,...`.
    fn from_str(text: &str) -> Result<Self, SpecError> {
        let text = text.trim();
        let (name, rest) = text.split_once(':').unwrap_or((text, ""));
        let def = def(name).ok_or_else(|| unknown(name))?;
        let mut pairs = Vec::new();
        for item in rest.split(',').filter(|s| !s.trim().is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| SpecError(format!("{}: `{item}` is not key=value", def.name)))?;
            pairs.push((k.trim(), v.trim()));
        }
        FaultSpec::from_pairs(def, &pairs, Direction::Both, text.to_string())
    }
}

impl FaultSpec {
    fn from_pairs(
        def: &'static FaultDef,
        pairs: &[(&str, &str)],
        direction: Direction,
        text: String,
    ) -> Result<Self, SpecError> {
        let mut common = Common::new(direction);
        let mut own = Vec::new();
        for (k, v) in pairs {
            if !common.take(k, v).map_err(|e| named(def, e))? {
                own.push((*k, *v));
            }
        }
        let args = Args::from_pairs(def.params, &own).map_err(|e| named(def, e))?;
        common.build(def, args, text).map_err(|e| named(def, e))
    }

    pub fn name(&self) -> &'static str {
        self.def.name
    }

    /// Acts on HTTP/2 frames: needs cleartext HTTP/2 (h2c).
    pub fn is_frame_level(&self) -> bool {
        self.def.frames
    }

    /// The canonical `NAME:KEY=VALUE,...` (only what differs from the
    /// defaults).
    pub fn render(&self) -> String {
        let mut pairs = self.args.text_pairs();
        pairs.extend(self.common_pairs());
        if pairs.is_empty() {
            self.def.name.to_string()
        } else {
            format!("{}:{}", self.def.name, pairs.join(","))
        }
    }

    fn common_pairs(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.direction != Direction::Both {
            v.push(format!("direction={}", self.direction.name()));
        }
        if self.probability != 1.0 {
            v.push(format!("probability={}", self.probability));
        }
        if let Some(a) = self.after {
            v.push(format!("after={}", params::fmt_duration(a)));
        }
        if let Some(l) = self.lasts {
            v.push(format!("for={}", params::fmt_duration(l)));
        }
        v
    }

    /// From a toxic of toxiproxy's API: its type (a grpcdoc fault name,
    /// `_` for `-`), stream, toxicity and attributes (toxiproxy's units).
    pub(crate) fn from_toxic(
        kind: &str,
        stream: Direction,
        toxicity: f64,
        attributes: &serde_json::Map<String, Json>,
    ) -> Result<Self, ToxicError> {
        let def = def(kind).ok_or(ToxicError::UnknownType)?;
        let mut common = Common::new(stream);
        common.probability = toxicity;
        let mut own = serde_json::Map::new();
        for (k, v) in attributes {
            let text = match v {
                Json::String(s) => s.clone(),
                Json::Number(n) if k == "after" || k == "for" => format!("{n}ms"),
                other => other.to_string(),
            };
            let common_key = matches!(k.as_str(), "after" | "for");
            if common_key {
                common
                    .take(k, &text)
                    .map_err(|e| ToxicError::Bad(named(def, e).0))?;
            } else {
                own.insert(k.clone(), v.clone());
            }
        }
        let args =
            Args::from_json(def.params, &own).map_err(|e| ToxicError::Bad(named(def, e).0))?;
        let mut spec = common
            .build(def, args, String::new())
            .map_err(|e| ToxicError::Bad(named(def, e).0))?;
        spec.text = spec.render();
        Ok(spec)
    }

    /// As a toxic's body for toxiproxy's API (`name` left to the caller).
    pub(crate) fn toxic(&self) -> Json {
        let mut attributes = self.args.json();
        if let Some(a) = self.after {
            attributes.insert("after".into(), Json::String(params::fmt_duration(a)));
        }
        if let Some(l) = self.lasts {
            attributes.insert("for".into(), Json::String(params::fmt_duration(l)));
        }
        json!({
            "type": self.def.name.replace('-', "_"),
            "stream": self.direction.name(),
            "toxicity": self.probability,
            "attributes": attributes,
        })
    }

    /// From a scenario file's fault: the text form or the mapping.
    pub(crate) fn from_yaml(y: &FaultYaml) -> Result<Self, SpecError> {
        match y {
            FaultYaml::Text(t) => t.parse(),
            FaultYaml::Map { name, params } => {
                let def = def(name).ok_or_else(|| unknown(name))?;
                let texts: Vec<(&str, String)> =
                    params.iter().map(|(k, v)| (k.as_str(), v.text())).collect();
                let pairs: Vec<(&str, &str)> =
                    texts.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let mut spec = FaultSpec::from_pairs(def, &pairs, Direction::Both, String::new())?;
                spec.text = spec.render();
                Ok(spec)
            }
        }
    }

    /// As a scenario file's mapping, `{NAME: {KEY: VALUE}}` (flow style).
    pub fn yaml(&self) -> String {
        let mut pairs: Vec<(String, String)> = self
            .args
            .yaml_pairs()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        for p in self.common_pairs() {
            if let Some((k, v)) = p.split_once('=') {
                pairs.push((k.to_string(), v.to_string()));
            }
        }
        let body: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{k}: {}", yaml_scalar(v)))
            .collect();
        format!("{{{}: {{{}}}}}", self.def.name, body.join(", "))
    }
}

/// A YAML scalar: plain when that reads back as the same string.
fn yaml_scalar(v: &str) -> String {
    let plain = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && !matches!(v, "null" | "Null" | "NULL" | "~");
    if plain {
        v.to_string()
    } else {
        serde_json::to_string(v).unwrap_or_default()
    }
}

/// Why toxiproxy's API refuses a toxic.
#[derive(Debug)]
pub(crate) enum ToxicError {
    UnknownType,
    Bad(String),
}

/// A fault in a scenario file: `"NAME:KEY=VALUE,..."` or
/// `{NAME: {KEY: VALUE, ...}}`.
#[derive(Clone, Debug)]
pub enum FaultYaml {
    Text(String),
    Map {
        name: String,
        params: Vec<(String, Scalar)>,
    },
}

/// A YAML scalar value of a fault parameter, read as its text.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Text(t) => t.clone(),
        }
    }
}

impl<'de> serde::Deserialize<'de> for FaultYaml {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = FaultYaml;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a fault: \"NAME:KEY=VALUE,...\" or {NAME: {KEY: VALUE, ...}}")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<FaultYaml, E> {
                Ok(FaultYaml::Text(v.to_string()))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<FaultYaml, A::Error> {
                let Some((name, params)) =
                    m.next_entry::<String, Option<std::collections::BTreeMap<String, Scalar>>>()?
                else {
                    return Err(serde::de::Error::custom(
                        "a fault mapping names the fault: {NAME: {KEY: VALUE}}",
                    ));
                };
                if m.next_key::<String>()?.is_some() {
                    return Err(serde::de::Error::custom(
                        "a fault mapping has one key, the fault's name: {NAME: {KEY: VALUE}}",
                    ));
                }
                Ok(FaultYaml::Map {
                    name,
                    params: params.unwrap_or_default().into_iter().collect(),
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// `text` in lines of at most 100 columns, the later ones indented.
fn wrap(text: &str, indent: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.trim().is_empty() && line.chars().count() + word.chars().count() >= 100 {
            out.push_str(line.trim_end());
            out.push('\n');
            line = " ".repeat(indent);
        }
        line.push_str(word);
        line.push(' ');
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

/// The `--list-faults` text: a line per fault and per parameter, within
/// 100 columns.
pub fn list() -> String {
    // KEY, VALUES and DEFAULT columns, then the meaning wrapped within 100
    // columns; a values text too wide for its column gets a line of its own.
    let row = |name: &str, values: &str, default: &str, help: &str| {
        let mut lines = Vec::new();
        let values = if values.chars().count() > 26 {
            lines.push(format!("    {name:<15} {values}"));
            ""
        } else {
            values
        };
        let key = if lines.is_empty() { name } else { "" };
        let lead = format!("    {key:<15} {values:<26} {default:<10} ");
        let mut line = lead.clone();
        for word in help.split(' ') {
            if line.len() > lead.len() && line.chars().count() + word.chars().count() > 100 {
                lines.push(line.trim_end().to_string());
                line = " ".repeat(lead.len());
            }
            line.push_str(word);
            line.push(' ');
        }
        lines.push(line.trim_end().to_string());
        lines.join("\n")
    };
    let mut out = String::from("Faults: --fault NAME:KEY=VALUE,... Every fault also takes:\n");
    out.push_str(&row("KEY", "VALUES", "DEFAULT", "MEANING"));
    out.push('\n');
    for (n, v, d, h) in COMMON {
        out.push_str(&row(n, v, d, h));
        out.push('\n');
    }
    for d in REGISTRY {
        let h2 = if d.frames { " (h2c)" } else { "" };
        out.push('\n');
        out.push_str(&wrap(&format!("  {}: {}{h2}", d.name, d.help), 4));
        for p in d.params {
            let mut help = p.help.to_string();
            if let Some(a) = p.alias_ms {
                help.push_str(&format!(" (or {a}=N: milliseconds)"));
            }
            out.push_str(&row(p.name, &p.values(), p.default_text(), &help));
            out.push('\n');
        }
    }
    out
}

/// The README's table of faults (a test keeps the README's copy equal).
pub fn markdown() -> String {
    let mut out = String::from("| fault | parameters (default) | what it does |\n|---|---|---|\n");
    for d in REGISTRY {
        let params: Vec<String> = d
            .params
            .iter()
            .map(|p| match p.need {
                params::Need::Required => format!("`{}`", p.name),
                params::Need::Default(v) | params::Need::Optional(v) => {
                    format!("`{}` ({v})", p.name)
                }
            })
            .collect();
        let h2 = if d.frames { " (h2c)" } else { "" };
        out.push_str(&format!(
            "| `{}` | {} | {}{h2} |\n",
            d.name,
            params.join(", ").replace('|', "\\|"),
            d.help.replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests;
