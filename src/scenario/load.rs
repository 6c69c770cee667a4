//! Reading and checking a scenario file: YAML errors and meaning errors
//! (exactly one action per step, steps within the duration, faults that
//! parse, marks and clients that exist, ...) are reported as
//! `file:line:column: what` with the offending line, before anything starts.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::model::*;
use super::plan::*;
use crate::proxy::FaultSpec;

#[derive(Debug)]
pub struct ScenarioError {
    pub path: String,
    pub line: u32,
    pub column: u32,
    pub message: String,
    /// The offending line with a caret under the column.
    pub snippet: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path, self.line, self.column, self.message
        )?;
        if !self.snippet.is_empty() {
            write!(f, "\n{}", self.snippet)?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}

/// The lines of a file as YAML counts them: a line ends at LF, CRLF or a
/// lone CR (which `str::lines` does not split on).
pub fn yaml_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text).filter(|t| !t.is_empty());
    std::iter::from_fn(move || {
        let t = rest?;
        match t.find(['\n', '\r']) {
            Some(i) => {
                let skip = if t[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&t[i + skip..]).filter(|r| !r.is_empty());
                Some(&t[..i])
            }
            None => {
                rest = None;
                Some(t)
            }
        }
    })
}

fn snippet(text: &str, line: u32, column: u32) -> String {
    let Some(l) = yaml_lines(text).nth(line.saturating_sub(1) as usize) else {
        return String::new();
    };
    let caret = " ".repeat(column.saturating_sub(1) as usize);
    let l = crate::redact::text(l);
    format!("  {line:>4} | {l}\n       | {caret}^")
}

/// Tags of the scenario's own events; no client or probe name starts so.
const RESERVED: [&str; 3] = ["server", "proxy", "timeline"];

/// Checks a method name (and, on the built-in server, that the method
/// exists and the data fits its request message).
fn check_call(
    cx: &Ctx,
    builtin: bool,
    call: &Spanned<String>,
    data: Option<&serde_json::Value>,
    part: &str,
) -> Result<(), ScenarioError> {
    let path = crate::rpc::method_path(&call.value).map_err(|e| cx.err(pos(call), e))?;
    if !builtin {
        return Ok(());
    }
    // The built-in server's methods are known: check now.
    let pool = prost_reflect::DescriptorPool::decode(crate::pb::FILE_DESCRIPTOR_SET)
        .map_err(|e| cx.err(pos(call), e.to_string()))?;
    let m = crate::rpc::descriptors::find_method(&pool, &path).map_err(|e| cx.err(pos(call), e))?;
    if let Some(data) = data {
        crate::rpc::payload::encode(&m.input(), "data", &data.to_string()).map_err(|e| {
            cx.err(
                pos(call),
                format!(
                    "the {part}'s data does not fit {}: {e}",
                    m.input().full_name()
                ),
            )
        })?;
    }
    Ok(())
}

struct Ctx<'a> {
    path: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(&self, at: (u32, u32), message: impl Into<String>) -> ScenarioError {
        ScenarioError {
            path: self.path.to_string(),
            line: at.0,
            column: at.1,
            message: message.into(),
            snippet: snippet(self.text, at.0, at.1),
        }
    }
}

fn pos<T>(s: &Spanned<T>) -> (u32, u32) {
    (s.referenced.line() as u32, s.referenced.column() as u32)
}

/// The 1-based position of the first line starting with `key:` (for parts
/// that are not spanned), or the top of the file.
fn key_pos(text: &str, key: &str) -> (u32, u32) {
    yaml_lines(text)
        .position(|l| l.starts_with(&format!("{key}:")))
        .map(|i| (i as u32 + 1, 1))
        .unwrap_or((1, 1))
}

/// The first `quoted` word of a message.
fn backticked(msg: &str) -> Option<&str> {
    let (_, rest) = msg.split_once('`')?;
    rest.split_once('`')
        .map(|(w, _)| w)
        .filter(|w| !w.is_empty())
}

/// The 0-based line of client `name`'s `service_config:` (after its
/// `name:` when it has one), or 0.
fn service_config_line(text: &str, name: &str) -> usize {
    let named = text.lines().position(|l| {
        let t = l.trim_start().trim_start_matches("- ").trim_start();
        t.strip_prefix("name:")
            .map(|v| v.trim().trim_matches(|c| c == '"' || c == '\'') == name)
            .unwrap_or(false)
    });
    let from = named.unwrap_or(0);
    text.lines()
        .enumerate()
        .skip(from)
        .find(|(_, l)| l.contains("service_config"))
        .map_or(0, |(i, _)| i)
}

/// The 1-based line and column where `word` first stands in the file, at
/// or after line `from` (0-based).
fn text_pos(text: &str, from: usize, word: &str) -> Option<(u32, u32)> {
    text.lines().enumerate().skip(from).find_map(|(i, l)| {
        l.find(word)
            .map(|c| (i as u32 + 1, l[..c].chars().count() as u32 + 1))
    })
}

pub fn parse(path: &str, text: &str) -> Result<Checked, ScenarioError> {
    let cx = Ctx { path, text };
    let scenario: Scenario = serde_saphyr::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line() as u32, l.column() as u32))
            .unwrap_or((1, 1));
        // The library's own message, without its rendering of the place.
        let text = e.to_string();
        let mut message = text.lines().next().unwrap_or_default();
        message = message.strip_prefix("error: ").unwrap_or(message);
        if let Some(rest) = message.strip_prefix("line ") {
            if let Some((_, m)) = rest.split_once(": ") {
                message = m;
            }
        }
        let message = message.to_string();
        cx.err((line, column), message)
    })?;
    lower(&cx, scenario)
}

/// One plan per variant (or one for a scenario without variants).
fn lower(cx: &Ctx, mut s: Scenario) -> Result<Checked, ScenarioError> {
    let name = s.name.clone();
    let about = s.about.clone();
    let Some(variants) = s.variants.take() else {
        let plan = check(cx, s, None, &[])?;
        return Ok(Checked {
            path: cx.path.to_string(),
            name,
            about,
            plans: vec![plan],
        });
    };
    if variants.value.0.is_empty() {
        return Err(cx.err(
            pos(&variants),
            "variants is empty; give each one a name and the sections it changes, e.g. broken: {} and fixed: { server: ... }",
        ));
    }
    let vpos = pos(&variants);
    let mut plans = Vec::new();
    for (vname, v) in variants.value.0 {
        if vname.trim().is_empty() || vname.contains(char::is_whitespace) {
            return Err(cx.err(
                vpos,
                format!("the variant name `{vname}` needs to be one word"),
            ));
        }
        let mut flat = s.clone();
        flat.about = v.about.clone().unwrap_or_else(|| s.about.clone());
        if let Some(x) = v.server {
            flat.server = x;
        }
        if let Some(x) = v.backends {
            flat.backends = Some(x);
        }
        if let Some(x) = v.proxy {
            flat.proxy = Some(x);
        }
        if let Some(x) = v.middlebox {
            flat.middlebox = Some(x);
        }
        // A variant's client or clients replace the scenario's, whichever
        // form either uses.
        if v.client.is_some() || v.clients.is_some() {
            flat.client = v.client;
            flat.clients = v.clients.unwrap_or_default();
        }
        if let Some(x) = v.probes {
            flat.probes = x;
        }
        if let Some(x) = v.timeline {
            flat.timeline = x;
        }
        let plan = check(cx, flat, Some(vname.clone()), &v.expect).map_err(|mut e| {
            e.message = format!("variant `{vname}`: {}", e.message);
            e
        })?;
        plans.push(plan);
    }
    Ok(Checked {
        path: cx.path.to_string(),
        name,
        about,
        plans,
    })
}

/// The one action of a step.
fn lower_step(v: &Step, fault: Option<FaultSpec>) -> Result<Action, String> {
    let mut found: Vec<Action> = Vec::new();
    if let Some(r) = &v.server_restart {
        found.push(Action::ServerRestart {
            backend: r.backend,
            mode: r.mode,
            downtime: r.downtime.0,
        });
    }
    if let Some(x) = &v.server_stop {
        found.push(Action::ServerStop {
            backend: x.backend,
            mode: x.mode,
        });
    }
    if let Some(x) = &v.server_start {
        found.push(Action::ServerStart { backend: x.backend });
    }
    if let Some(x) = &v.server_set {
        found.push(Action::ServerSet {
            backend: x.backend,
            change: x.clone(),
        });
    }
    if let Some(h) = &v.health {
        found.push(Action::Health {
            backend: h.backend,
            service: h.service.clone(),
            status: h.status,
        });
    }
    if let (Some(fa), Some(fault)) = (&v.fault_add, fault) {
        found.push(Action::FaultAdd {
            id: fa.id.clone(),
            fault,
        });
    }
    if let Some(fr) = &v.fault_remove {
        found.push(Action::FaultRemove { id: fr.id.clone() });
    }
    if v.backend_add.is_some() {
        found.push(Action::BackendAdd);
    }
    if let Some(r) = &v.backend_remove {
        found.push(Action::BackendRemove {
            backend: r.backend,
            mode: r.mode,
        });
    }
    if v.resolve.is_some() {
        found.push(Action::Resolve);
    }
    if let Some(m) = &v.mark {
        found.push(Action::Mark(m.clone()));
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        n => Err(format!(
            "a step has exactly one action ({ACTIONS}); this one has {}",
            if n == 0 {
                "none".to_string()
            } else {
                found
                    .iter()
                    .map(Action::name)
                    .collect::<Vec<_>>()
                    .join(" and ")
            }
        )),
    }
}

/// The one check of an expectation.
fn lower_expectation(v: &Expectation) -> Result<Check, String> {
    let mut found: Vec<Check> = [
        v.rpcs.clone().map(Check::Rpcs),
        v.goaways.clone().map(Check::Goaways),
        v.state_changes.clone().map(Check::StateChanges),
        v.connection_losses.clone().map(Check::ConnectionLosses),
        v.success_rate.clone().map(Check::SuccessRate),
        v.latency.clone().map(Check::Latency),
        v.order.clone().map(Check::Order),
        v.exit_code.clone().map(Check::ExitCode),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let Some(o) = &v.output {
        let pattern = match (&o.contains, &o.matches) {
            (Some(t), None) => OutputPattern::Contains(t.clone()),
            (None, Some(r)) => OutputPattern::Matches(
                regex::Regex::new(r)
                    .map_err(|e| format!("output.matches is not a regular expression: {e}"))?,
            ),
            _ => return Err("output: give one of contains or matches".into()),
        };
        if o.at_least.is_none() && o.at_most.is_none() && o.exactly.is_none() {
            return Err("output counts lines: give at_least, at_most or exactly".into());
        }
        found.push(Check::Output(o.clone(), pattern));
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        n => Err(format!(
            "an expectation has exactly one check (rpcs, goaways, state_changes, connection_losses, success_rate, latency, order, exit_code, output); this one has {n}"
        )),
    }
}

fn check(
    cx: &Ctx,
    s: Scenario,
    variant: Option<String>,
    extra: &[Spanned<Expectation>],
) -> Result<Plan, ScenarioError> {
    let duration = s.duration.value.0;
    if duration.is_zero() {
        return Err(cx.err(pos(&s.duration), "duration must be above 0"));
    }
    // Server: one kind.
    let kinds = [
        s.server.builtin.is_some(),
        s.server.command.is_some(),
        s.server.address.is_some(),
    ]
    .iter()
    .filter(|k| **k)
    .count();
    if kinds > 1 {
        return Err(cx.err(
            key_pos(cx.text, "server"),
            "server: give one of builtin, command or address",
        ));
    }
    if s.server.command.as_ref().is_some_and(|c| c.is_empty()) {
        return Err(cx.err(
            key_pos(cx.text, "server"),
            "server.command is empty; expected [program, arg, ...] with {port} where the port goes",
        ));
    }
    let builtin = s.server.command.is_none() && s.server.address.is_none();
    let restartable = s.server.address.is_none();
    let backends =
        match &s.backends {
            None => 1,
            Some(b) if b.value == 0 => return Err(cx.err(pos(b), "backends must be 1 or more")),
            Some(b) if b.value > 64 => {
                return Err(cx.err(
                    pos(b),
                    "backends is at most 64 (each is a server on loopback)",
                ))
            }
            Some(b) if b.value > 1 && !restartable => return Err(cx.err(
                pos(b),
                "several backends need servers grpcdoc starts (builtin or command), not `address`",
            )),
            Some(b) => b.value,
        };
    // Clients: one or a list, unique names.
    if s.client.is_some() && !s.clients.is_empty() {
        return Err(cx.err(
            key_pos(cx.text, "clients"),
            "give `client` or `clients`, not both",
        ));
    }
    let specs: Vec<ClientSpec> = match &s.client {
        Some(c) => vec![c.clone()],
        None => s.clients.clone(),
    };
    let mut clients = Vec::new();
    let mut names = BTreeSet::new();
    for (i, c) in specs.into_iter().enumerate() {
        let name = c.name.clone().unwrap_or_else(|| {
            if i == 0 {
                "client".into()
            } else {
                format!("client{}", i + 1)
            }
        });
        if !names.insert(name.clone()) {
            return Err(cx.err(
                key_pos(cx.text, "clients"),
                format!("two clients are named `{name}`"),
            ));
        }
        if RESERVED.iter().any(|r| name.starts_with(r)) {
            return Err(cx.err(
                key_pos(cx.text, "clients"),
                format!("the client name `{name}` is taken: names starting with server, proxy or timeline tag the scenario's own events"),
            ));
        }
        if let Some(b) = &c.backoff {
            let bad = b.multiplier.is_some_and(|m| m.is_nan() || m < 1.0)
                || b.jitter.is_some_and(|j| !(0.0..=1.0).contains(&j));
            if bad {
                return Err(cx.err(
                    text_pos(cx.text, 0, "backoff").unwrap_or((1, 1)),
                    format!("client `{name}`: backoff.multiplier must be 1 or more and backoff.jitter from 0 to 1"),
                ));
            }
        }
        if let Some(sc) = &c.service_config {
            crate::load::retry::validate(&sc.to_string()).map_err(|e| {
                let msg = e.to_string();
                let reason = msg
                    .split_once(": ")
                    .map_or(msg.as_str(), |(_, r)| r)
                    .trim_start_matches(|ch: char| ch.is_ascii_digit() || ch == ':')
                    .trim_start();
                // Where the file says what the message names (an unknown
                // key, a bad value), else the clients.
                let at = backticked(reason)
                    .and_then(|word| text_pos(cx.text, service_config_line(cx.text, &name), word))
                    .unwrap_or_else(|| {
                        key_pos(
                            cx.text,
                            if s.client.is_some() {
                                "client"
                            } else {
                                "clients"
                            },
                        )
                    });
                cx.err(at, format!("client `{name}`: service_config: {reason}"))
            })?;
        }
        if let Some(argv) = &c.command {
            let at = text_pos(cx.text, 0, "command").unwrap_or((1, 1));
            if argv.is_empty() {
                return Err(cx.err(at, format!("client `{name}`: command is empty; expected [program, arg, ...] with {{target}} where the address goes")));
            }
            let told = argv
                .iter()
                .chain(c.env.values())
                .any(|a| a.contains("{target}") || a.contains("{port}"));
            if !told {
                return Err(cx.err(at, format!("client `{name}`: the program is not told where to connect: put {{target}} (or {{host}} and {{port}}) in its command or env")));
            }
            let ours = [
                ("pool", c.pool != Pool::Channel),
                ("connections", c.connections != 1),
                ("lb", c.lb != LbSpec::PickFirst),
                ("keepalive", c.keepalive.is_some()),
                ("backoff", c.backoff.is_some()),
                ("resolve_interval", c.resolve_interval.is_some()),
                ("service_config", c.service_config.is_some()),
                ("wait_for_ready", c.wait_for_ready),
                ("transparent_retry", !c.transparent_retry),
                ("health_service", c.health_service.is_some()),
                ("load", c.load.is_some()),
            ];
            if let Some((k, _)) = ours.iter().find(|(_, on)| *on) {
                return Err(cx.err(at, format!("client `{name}` runs a program of yours: `{k}` is a setting of grpcdoc's own client; give it to your program instead")));
            }
            if let Some(sig) = &c.stop_signal {
                if super::process::signal_number(sig).is_none() {
                    return Err(cx.err(at, format!("client `{name}`: stop_signal `{sig}` is not a signal (TERM, INT, HUP, KILL, ...)")));
                }
            }
        } else if !c.env.is_empty() || c.stop_signal.is_some() || c.stop_timeout.is_some() {
            return Err(cx.err(
                key_pos(
                    cx.text,
                    if s.client.is_some() {
                        "client"
                    } else {
                        "clients"
                    },
                ),
                format!("client `{name}`: env, stop_signal and stop_timeout go with a command"),
            ));
        }
        if let Some(l) = &c.load {
            check_call(cx, builtin, &l.call, l.data.as_ref(), "load")?;
            if l.rps.is_some_and(|r| r <= 0.0) {
                return Err(cx.err(pos(&l.call), "load.rps must be above 0"));
            }
        }
        clients.push(NamedClient { name, spec: c });
    }
    // Probes: through a client, under a name of their own.
    let mut probes = Vec::new();
    for (i, p) in s.probes.iter().enumerate() {
        let at = pos(p);
        let v = &p.value;
        let name = v.name.clone().unwrap_or_else(|| {
            if i == 0 {
                "probe".into()
            } else {
                format!("probe{}", i + 1)
            }
        });
        if RESERVED.iter().any(|r| name.starts_with(r)) || !names.insert(name.clone()) {
            return Err(cx.err(
                at,
                format!(
                    "the probe name `{name}` is taken by a client, another probe or the scenario"
                ),
            ));
        }
        let client = match &v.client {
            Some(c) => clients
                .iter()
                .position(|n| &n.name == c)
                .ok_or_else(|| cx.err(at, format!("probe `{name}`: no client is named `{c}`")))?,
            None if clients.is_empty() => {
                return Err(cx.err(
                    at,
                    "a probe calls through a client: add `client:` or `clients:`",
                ))
            }
            None => 0,
        };
        if clients[client].is_program() {
            return Err(cx.err(
                at,
                format!("probe `{name}`: client `{}` is a program of yours; probes call through grpcdoc's own clients", clients[client].name),
            ));
        }
        if v.every.0.is_zero() {
            return Err(cx.err(at, "probe.every must be above 0"));
        }
        check_call(cx, builtin, &v.call, v.data.as_ref(), "probe")?;
        probes.push(NamedProbe {
            name,
            client,
            load: v.as_load(),
        });
    }
    // Proxy faults.
    let mut initial_faults = Vec::new();
    if let Some(p) = &s.proxy {
        for f in &p.faults {
            initial_faults.push(FaultSpec::from_yaml(&f.value).map_err(|e| cx.err(pos(f), e.0))?);
        }
    }
    // The middlebox.
    let middlebox = match &s.middlebox {
        None => None,
        Some(m) => {
            let at = key_pos(cx.text, "middlebox");
            let kinds: Vec<MiddleboxKind> = [
                m.nginx.clone().map(MiddleboxKind::Nginx),
                m.haproxy.clone().map(MiddleboxKind::Haproxy),
                m.command.clone().map(MiddleboxKind::Command),
            ]
            .into_iter()
            .flatten()
            .collect();
            let [kind] = <[MiddleboxKind; 1]>::try_from(kinds)
                .map_err(|_| cx.err(at, "middlebox: give one of nginx, haproxy or command"))?;
            if let MiddleboxKind::Command(argv) = &kind {
                if argv.is_empty() || !argv.iter().any(|a| a.contains("{listen")) {
                    return Err(cx.err(at, "middlebox.command is [program, arg, ...] with {listen} (or {listen_port}) and {upstream} where they go"));
                }
            }
            if !restartable && s.proxy.is_none() && m.position == MiddleboxPosition::AfterProxy {
                return Err(cx.err(at, "middlebox.position after-proxy needs a proxy"));
            }
            Some(Middlebox {
                kind,
                position: m.position,
                ready: m.ready_timeout.map_or(Duration::from_secs(10), |d| d.0),
            })
        }
    };
    // Steps.
    let mut marks = BTreeSet::new();
    let mut fault_ids = BTreeSet::new();
    let mut steps = Vec::new();
    let mut backends_now = backends;
    let mut removed = BTreeSet::new();
    let mut timeline: Vec<&Spanned<Step>> = s.timeline.iter().collect();
    timeline.sort_by_key(|st| st.value.at);
    for st in timeline {
        let at = pos(st);
        let v = &st.value;
        let fault = match &v.fault_add {
            Some(fa) => Some(FaultSpec::from_yaml(&fa.fault).map_err(|e| cx.err(at, e.0))?),
            None => None,
        };
        let action = lower_step(v, fault).map_err(|e| cx.err(at, e))?;
        if v.at.0 > duration {
            return Err(cx.err(
                at,
                format!(
                    "the step at {} is after the end of the scenario ({})",
                    humantime::format_duration(v.at.0),
                    humantime::format_duration(duration)
                ),
            ));
        }
        match &action {
            Action::ServerRestart { .. }
            | Action::ServerStop { .. }
            | Action::ServerStart { .. }
                if !restartable =>
            {
                return Err(cx.err(at, "a server given by `address` cannot be stopped or restarted; use builtin or command"));
            }
            Action::Health { .. } | Action::ServerSet { .. } if !builtin => {
                return Err(cx.err(
                    at,
                    format!("{} steps need the builtin server", action.name()),
                ));
            }
            Action::BackendAdd | Action::BackendRemove { .. } if !restartable => {
                return Err(cx.err(at, "backends can be added and removed only for servers grpcdoc starts (builtin or command)"));
            }
            Action::BackendAdd => backends_now += 1,
            Action::FaultAdd { id, .. } => {
                if s.proxy.is_none() {
                    return Err(cx.err(at, "fault_add needs a proxy: add `proxy: {}`"));
                }
                if let Some(id) = id {
                    if !fault_ids.insert(id.clone()) {
                        return Err(cx.err(at, format!("fault id `{id}` is used twice")));
                    }
                }
            }
            Action::FaultRemove { id } if !fault_ids.contains(id) => {
                return Err(cx.err(
                    at,
                    format!("fault_remove: no earlier fault_add has id `{id}`"),
                ));
            }
            Action::Mark(m) if !marks.insert(m.clone()) => {
                return Err(cx.err(at, format!("mark `{m}` is set twice")));
            }
            _ => {}
        }
        if let Some(b) = action.backend() {
            if b == 0 || b > backends_now {
                return Err(cx.err(
                    at,
                    format!("there is no backend {b}: backends are numbered from 1 to {backends_now} at this time"),
                ));
            }
            if removed.contains(&b) {
                return Err(cx.err(at, format!("backend {b} was removed by an earlier step")));
            }
            if matches!(action, Action::BackendRemove { .. }) {
                removed.insert(b);
            }
        }
        steps.push(Timed { at: v.at.0, action });
    }
    // Expectations: the scenario's, then the variant's.
    let mut checks = Vec::new();
    for e in s.expect.iter().chain(extra) {
        let at = pos(e);
        let check = lower_expectation(&e.value).map_err(|m| cx.err(at, m))?;
        let (client, after, before) = match &check {
            Check::Rpcs(f)
            | Check::Goaways(f)
            | Check::StateChanges(f)
            | Check::ConnectionLosses(f)
            | Check::SuccessRate(f) => {
                if f.at_least.is_none() && f.at_most.is_none() && f.exactly.is_none() {
                    return Err(cx.err(at, "a count or rate needs at_least, at_most or exactly"));
                }
                let bounds = [f.at_least, f.at_most, f.exactly];
                let rate = matches!(check, Check::SuccessRate(_));
                let goaways = matches!(check, Check::Goaways(_));
                if rate && bounds.iter().flatten().any(|b| !(0.0..=1.0).contains(b)) {
                    return Err(cx.err(
                        at,
                        "success_rate is a fraction from 0 to 1: for 99% write 0.99",
                    ));
                }
                if bounds.iter().flatten().any(|b| *b < 0.0 || b.is_nan()) {
                    return Err(cx.err(at, "a count cannot be negative"));
                }
                if let Some(b) = f.backend {
                    if !matches!(check, Check::Rpcs(_) | Check::SuccessRate(_)) {
                        return Err(cx.err(
                            at,
                            "`backend` selects calls: it goes with rpcs and success_rate",
                        ));
                    }
                    if b == 0 || b > backends_now {
                        return Err(cx.err(at, format!("there is no backend {b}: backends are numbered from 1 to {backends_now}")));
                    }
                }
                if let Some(code) = &f.code {
                    let known = if goaways {
                        crate::h2wire::ErrorCode::from_name(code).is_some()
                    } else {
                        code == "error" || crate::grpc::code_by_name(code).is_some()
                    };
                    if !known {
                        let what = if goaways {
                            "an HTTP/2 error code (NO_ERROR, ENHANCE_YOUR_CALM, ...)"
                        } else {
                            "a status code name (OK, UNAVAILABLE, ... or error)"
                        };
                        return Err(cx.err(at, format!("`{code}` is not {what}")));
                    }
                }
                (&f.client, &f.after, &f.before)
            }
            Check::Latency(l) => {
                if !(0.0..=100.0).contains(&l.percentile) || l.percentile == 0.0 {
                    return Err(cx.err(
                        at,
                        "latency.percentile is a number from 0 to 100, like 99 or 99.9",
                    ));
                }
                (&l.client, &l.after, &l.before)
            }
            Check::ExitCode(_) | Check::Output(..) => {
                let c = check.client().unwrap_or_default();
                if !clients.iter().any(|n| n.name == c && n.is_program()) {
                    return Err(cx.err(
                        at,
                        format!("no client named `{c}` runs a program (`command:`): exit_code and output look at a program"),
                    ));
                }
                (&None, &None, &None)
            }
            Check::Order(o) => {
                for k in [&o.first, &o.then] {
                    if !["goaway", "rpc_error", "transient_failure", "closed"].contains(&k.as_str())
                    {
                        return Err(cx.err(at, format!("order: `{k}` is not one of goaway, rpc_error, transient_failure, closed")));
                    }
                }
                (&o.client, &None, &None)
            }
        };
        for m in [after, before].into_iter().flatten() {
            if !marks.contains(m) {
                return Err(cx.err(at, format!("no step sets the mark `{m}`")));
            }
        }
        if let Some(c) = client {
            if !names.contains(c) {
                return Err(cx.err(at, format!("no client or probe is named `{c}`")));
            }
        }
        // A program's client is seen on the wire only: no connectivity
        // states.
        let program = check
            .client()
            .is_some_and(|c| clients.iter().any(|n| n.name == c && n.is_program()));
        let states = matches!(check, Check::StateChanges(_))
            || matches!(&check, Check::Order(o) if o.first == "transient_failure" || o.then == "transient_failure");
        if program && states {
            return Err(cx.err(at, "this client is a program of yours: its connectivity states are not visible on the wire (its calls, GOAWAYs, PINGs and closes are); count what it logs with `output:`"));
        }
        checks.push(check);
    }
    Ok(Plan {
        variant,
        about: s.about.clone(),
        scenario: s,
        clients,
        probes,
        backends,
        initial_faults,
        middlebox,
        steps,
        checks,
        // Absolute: a program may resolve paths from its own directory.
        dir: std::path::Path::new(cx.path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| std::path::PathBuf::from("."), |d| d.to_path_buf())
            .canonicalize()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|_| ".".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_end_at_lf_crlf_and_cr() {
        let v: Vec<&str> = yaml_lines("a\nb\r\nc\rd").collect();
        assert_eq!(v, ["a", "b", "c", "d"]);
        assert_eq!(yaml_lines("a\n").count(), 1);
        assert_eq!(yaml_lines("").count(), 0);
        // An error in a file with CR line breaks shows the right line.
        let e = parse("cr.yaml", "name: x\rduration: soon\r").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.snippet.contains("duration: soon"), "{}", e.snippet);
    }
}
