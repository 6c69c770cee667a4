//! Checking what a scenario means, and lowering it into a [`Plan`]: one
//! server kind, clients and probes with unique names, a middlebox that can
//! run, steps in time (repeated with `every:`) that name what exists,
//! expectations whose marks, clients and codes exist. Every mistake is
//! reported (through [`Ctx::report`]), not only the first, each at the
//! value it is about.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::load::{pos, Ctx};
use super::model::*;
use super::plan::*;
use crate::proxy::FaultSpec;

/// Tags of the scenario's own events; no client or probe name starts so.
const RESERVED: [&str; 3] = ["server", "proxy", "timeline"];

/// At most this many steps after `every:` repeats them.
const MAX_STEPS: usize = 10_000;

/// Checks one variant (or the scenario without variants) and lowers it;
/// `None` when it has mistakes (reported).
pub(super) fn check(
    cx: &Ctx,
    s: Scenario,
    variant: Option<String>,
    extra: &[Spanned<Expectation>],
) -> Option<Plan> {
    let before = cx.errors();
    let duration = s.duration.value.0;
    let server = server(cx, &s);
    let specs: Vec<ClientSpec> = match &s.client {
        Some(c) => vec![c.clone()],
        None => s.clients.clone(),
    };
    if s.client.is_some() && !s.clients.is_empty() {
        cx.report(cx.top("clients"), "give `client` or `clients`, not both");
    }
    let mut names = BTreeSet::new();
    let clients = clients(cx, &s, specs, server.builtin, &mut names);
    let probes = probes(cx, &s, &clients, server.builtin, &mut names);
    let mut initial_faults = Vec::new();
    if let Some(p) = &s.proxy {
        for f in &p.faults {
            match FaultSpec::from_yaml(&f.value) {
                Ok(x) => initial_faults.push(x),
                Err(e) => cx.report(pos(f), e.0),
            }
        }
    }
    let middlebox = middlebox(cx, &s, server.restartable);
    let (steps, backends_now) = steps(cx, &s, &server, duration);
    let checks = expectations(cx, &s, extra, &clients, &names, &steps, backends_now);
    if cx.errors() > before {
        return None;
    }
    Some(Plan {
        variant,
        about: s.about.clone(),
        scenario: s,
        clients,
        probes,
        backends: server.backends,
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

/// What the server section allows.
struct Server {
    builtin: bool,
    restartable: bool,
    backends: u32,
}

fn server(cx: &Ctx, s: &Scenario) -> Server {
    let kinds = [
        s.server.builtin.is_some(),
        s.server.command.is_some(),
        s.server.address.is_some(),
    ]
    .iter()
    .filter(|k| **k)
    .count();
    if kinds > 1 {
        cx.report(
            cx.top("server"),
            "server: give one of builtin, command or address",
        );
    }
    if s.server.command.as_ref().is_some_and(|c| c.is_empty()) {
        cx.report(
            cx.value(cx.top("server"), "command"),
            "server.command is empty; expected [program, arg, ...] with {port} where the port goes",
        );
    }
    let builtin = s.server.command.is_none() && s.server.address.is_none();
    let restartable = s.server.address.is_none();
    let backends = match &s.backends {
        None => 1,
        Some(b) if b.value == 0 || b.value > 64 => 1, // the shape check said so
        Some(b) if b.value > 1 && !restartable => {
            cx.report(
                pos(b),
                "several backends need servers grpcdoc starts (builtin or command), not `address`",
            );
            1
        }
        Some(b) => b.value,
    };
    Server {
        builtin,
        restartable,
        backends,
    }
}

/// The clients, named and checked.
fn clients(
    cx: &Ctx,
    s: &Scenario,
    specs: Vec<ClientSpec>,
    builtin: bool,
    names: &mut BTreeSet<String>,
) -> Vec<NamedClient> {
    let section = if s.client.is_some() {
        "client"
    } else {
        "clients"
    };
    let mut out = Vec::new();
    for (i, c) in specs.into_iter().enumerate() {
        let name = c.name.clone().unwrap_or_else(|| {
            if i == 0 {
                "client".into()
            } else {
                format!("client{}", i + 1)
            }
        });
        let at = cx.top(section);
        if !names.insert(name.clone()) {
            cx.report(at, format!("two clients are named `{name}`"));
        }
        if RESERVED.iter().any(|r| name.starts_with(r)) {
            cx.report(at, format!("the client name `{name}` is taken: names starting with server, proxy or timeline tag the scenario's own events"));
        }
        if let Some(b) = &c.backoff {
            let bad = b.multiplier.is_some_and(|m| m.is_nan() || m < 1.0)
                || b.jitter.is_some_and(|j| !(0.0..=1.0).contains(&j));
            if bad {
                cx.report(
                    cx.value(at, "backoff"),
                    format!("client `{name}`: backoff.multiplier must be 1 or more and backoff.jitter from 0 to 1"),
                );
            }
        }
        if let Some(sc) = &c.service_config {
            service_config(cx, &name, sc, section);
        }
        if c.command.is_some() {
            program(cx, &name, &c, at);
        } else if !c.env.is_empty() || c.stop_signal.is_some() || c.stop_timeout.is_some() {
            cx.report(
                at,
                format!("client `{name}`: env, stop_signal and stop_timeout go with a command"),
            );
        }
        if let Some(l) = &c.load {
            check_call(cx, builtin, &l.call, l.data.as_ref(), "load");
        }
        out.push(NamedClient { name, spec: c });
    }
    out
}

/// A service config: checked whole, reported where the file says what the
/// message names (an unknown key, a bad value).
fn service_config(cx: &Ctx, name: &str, sc: &serde_json::Value, section: &str) {
    let Err(e) = crate::load::retry::validate(&sc.to_string()) else {
        return;
    };
    let msg = e.to_string();
    let reason = msg
        .split_once(": ")
        .map_or(msg.as_str(), |(_, r)| r)
        .trim_start_matches(|ch: char| ch.is_ascii_digit() || ch == ':')
        .trim_start();
    let at = super::load::backticked(reason)
        .and_then(|word| {
            super::load::text_pos(
                cx.text,
                super::load::service_config_line(cx.text, name),
                word,
            )
        })
        .unwrap_or_else(|| cx.top(section));
    cx.report(at, format!("client `{name}`: service_config: {reason}"));
}

/// A client that is a program of the user's.
fn program(cx: &Ctx, name: &str, c: &ClientSpec, at: (u32, u32)) {
    let Some(argv) = &c.command else { return };
    let at = cx.value(at, "command");
    if argv.is_empty() {
        cx.report(at, format!("client `{name}`: command is empty; expected [program, arg, ...] with {{target}} where the address goes"));
        return;
    }
    let told = argv
        .iter()
        .chain(c.env.values())
        .any(|a| a.contains("{target}") || a.contains("{port}"));
    if !told {
        cx.report(at, format!("client `{name}`: the program is not told where to connect: put {{target}} (or {{host}} and {{port}}) in its command or env"));
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
    for (k, _) in ours.iter().filter(|(_, on)| *on) {
        cx.report(at, format!("client `{name}` runs a program of yours: `{k}` is a setting of grpcdoc's own client; give it to your program instead"));
    }
    if let Some(sig) = &c.stop_signal {
        if super::process::signal_number(sig).is_none() {
            cx.report(at, format!("client `{name}`: stop_signal `{sig}` is not a signal (TERM, INT, HUP, KILL, ...)"));
        }
    }
}

/// Checks a method name (and, on the built-in server, that the method
/// exists and the data fits its request message).
fn check_call(
    cx: &Ctx,
    builtin: bool,
    call: &Spanned<String>,
    data: Option<&serde_json::Value>,
    part: &str,
) {
    let path = match crate::rpc::method_path(&call.value) {
        Ok(p) => p,
        Err(e) => return cx.report(pos(call), e),
    };
    if !builtin {
        return;
    }
    // The built-in server's methods are known: check now.
    let pool = match prost_reflect::DescriptorPool::decode(crate::pb::FILE_DESCRIPTOR_SET) {
        Ok(p) => p,
        Err(e) => return cx.report(pos(call), e.to_string()),
    };
    let m = match crate::rpc::descriptors::find_method(&pool, &path) {
        Ok(m) => m,
        Err(e) => return cx.report(pos(call), e),
    };
    if let Some(data) = data {
        if let Err(e) = crate::rpc::payload::encode(&m.input(), "data", &data.to_string()) {
            cx.report(
                pos(call),
                format!(
                    "the {part}'s data does not fit {}: {e}",
                    m.input().full_name()
                ),
            );
        }
    }
}

/// Probes: through a client, under a name of their own.
fn probes(
    cx: &Ctx,
    s: &Scenario,
    clients: &[NamedClient],
    builtin: bool,
    names: &mut BTreeSet<String>,
) -> Vec<NamedProbe> {
    let mut out = Vec::new();
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
            cx.report(
                cx.value(at, "name"),
                format!(
                    "the probe name `{name}` is taken by a client, another probe or the scenario"
                ),
            );
        }
        let client = match &v.client {
            Some(c) => match clients.iter().position(|n| &n.name == c) {
                Some(i) => i,
                None => {
                    let known: Vec<&str> = clients.iter().map(|n| n.name.as_str()).collect();
                    cx.report(
                        cx.value(at, "client"),
                        format!(
                            "probe `{name}`: no client is named `{c}`{}",
                            super::shape::did_you_mean(c, &known)
                        ),
                    );
                    continue;
                }
            },
            None if clients.is_empty() => {
                cx.report(
                    at,
                    "a probe calls through a client: add `client:` or `clients:`",
                );
                continue;
            }
            None => 0,
        };
        if clients[client].is_program() {
            cx.report(
                cx.value(at, "client"),
                format!("probe `{name}`: client `{}` is a program of yours; probes call through grpcdoc's own clients", clients[client].name),
            );
        }
        check_call(cx, builtin, &v.call, v.data.as_ref(), "probe");
        if v.every.0.is_zero() {
            continue; // the shape check said so
        }
        out.push(NamedProbe {
            name,
            client,
            load: v.as_load(),
        });
    }
    out
}

fn middlebox(cx: &Ctx, s: &Scenario, restartable: bool) -> Option<Middlebox> {
    let m = s.middlebox.as_ref()?;
    let at = cx.top("middlebox");
    let kinds: Vec<MiddleboxKind> = [
        m.nginx.clone().map(MiddleboxKind::Nginx),
        m.haproxy.clone().map(MiddleboxKind::Haproxy),
        m.command.clone().map(MiddleboxKind::Command),
    ]
    .into_iter()
    .flatten()
    .collect();
    let Ok([kind]) = <[MiddleboxKind; 1]>::try_from(kinds) else {
        cx.report(at, "middlebox: give one of nginx, haproxy or command");
        return None;
    };
    if let MiddleboxKind::Command(argv) = &kind {
        if argv.is_empty() || !argv.iter().any(|a| a.contains("{listen")) {
            cx.report(cx.value(at, "command"), "middlebox.command is [program, arg, ...] with {listen} (or {listen_port}) and {upstream} where they go");
        }
    }
    if !restartable && s.proxy.is_none() && m.position == MiddleboxPosition::AfterProxy {
        cx.report(
            cx.value(at, "position"),
            "middlebox.position after-proxy needs a proxy",
        );
    }
    Some(Middlebox {
        kind,
        position: m.position,
        ready: m.ready_timeout.map_or(Duration::from_secs(10), |d| d.0),
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

/// The times a step happens: `at`, then every `every` (at most `times`
/// times) until the end.
fn occurrences(cx: &Ctx, st: &Spanned<Step>, duration: Duration) -> Vec<Duration> {
    let v = &st.value;
    let at = pos(st);
    if v.at.0 > duration {
        cx.report(
            cx.value(at, "at"),
            format!(
                "the step at {} is after the end of the scenario ({})",
                humantime::format_duration(v.at.0),
                humantime::format_duration(duration)
            ),
        );
        return vec![];
    }
    let Some(every) = v.every.map(|d| d.0).filter(|d| !d.is_zero()) else {
        if v.times.is_some() {
            cx.report(cx.value(at, "times"), "times goes with every");
        }
        return vec![v.at.0];
    };
    let limit = v.times.map_or(usize::MAX, |t| t as usize);
    let out: Vec<Duration> = std::iter::successors(Some(v.at.0), |t| t.checked_add(every))
        .take_while(|t| *t <= duration)
        .take(limit.min(MAX_STEPS + 1))
        .collect();
    if out.len() > MAX_STEPS {
        cx.report(
            cx.value(at, "every"),
            format!("every {} repeats this step more than {MAX_STEPS} times in the scenario; make it longer", humantime::format_duration(every)),
        );
    }
    out
}

/// What a step's checks need as the timeline goes.
struct Timeline<'a> {
    s: &'a Scenario,
    server: &'a Server,
    marks: BTreeSet<String>,
    faults: BTreeSet<String>,
    backends_now: u32,
    removed: BTreeSet<u32>,
}

/// The steps in time order, each repetition of an `every:` step its own;
/// and the number of backends at the end.
fn steps(cx: &Ctx, s: &Scenario, server: &Server, duration: Duration) -> (Vec<Timed>, u32) {
    // (when, the step's place, what)
    let mut timed: Vec<(Duration, (u32, u32), Action)> = Vec::new();
    for st in &s.timeline {
        let at = pos(st);
        let v = &st.value;
        let fault = match &v.fault_add {
            Some(fa) => match FaultSpec::from_yaml(&fa.fault) {
                Ok(f) => Some(f),
                Err(e) => {
                    cx.report(cx.value(at, "fault"), e.0);
                    continue;
                }
            },
            None => None,
        };
        let action = match lower_step(v, fault) {
            Ok(a) => a,
            Err(e) => {
                cx.report(at, e);
                continue;
            }
        };
        let times = occurrences(cx, st, duration);
        if times.len() > 1 && matches!(action, Action::Mark(_)) {
            cx.report(
                cx.value(at, "every"),
                "a mark names one moment: it cannot repeat (mark the first, or steps around it)",
            );
            continue;
        }
        for t in times {
            timed.push((t, at, action.clone()));
        }
    }
    // In time order; at the same time, in file order.
    timed.sort_by_key(|(t, at, ..)| (*t, *at));
    let mut tl = Timeline {
        s,
        server,
        marks: BTreeSet::new(),
        faults: BTreeSet::new(),
        backends_now: server.backends,
        removed: BTreeSet::new(),
    };
    let mut out = Vec::new();
    let mut said = BTreeSet::new();
    for (t, at, action) in timed {
        let n = cx.errors();
        step(cx, &mut tl, at, &action);
        if cx.errors() > n && !said.insert(at) {
            // A repeated step's mistake once.
            cx.forget(cx.errors() - n);
        }
        out.push(Timed { at: t, action });
    }
    (out, tl.backends_now)
}

/// Checks one step against what exists at its time.
fn step(cx: &Ctx, tl: &mut Timeline, at: (u32, u32), action: &Action) {
    let restartable = tl.server.restartable;
    match action {
        Action::ServerRestart { .. } | Action::ServerStop { .. } | Action::ServerStart { .. }
            if !restartable =>
        {
            cx.report(at, "a server given by `address` cannot be stopped or restarted; use builtin or command");
        }
        Action::Health { .. } | Action::ServerSet { .. } if !tl.server.builtin => {
            cx.report(
                at,
                format!("{} steps need the builtin server", action.name()),
            );
        }
        Action::BackendAdd | Action::BackendRemove { .. } if !restartable => {
            cx.report(at, "backends can be added and removed only for servers grpcdoc starts (builtin or command)");
        }
        Action::BackendAdd => tl.backends_now += 1,
        Action::FaultAdd { id, .. } => {
            if tl.s.proxy.is_none() {
                cx.report(at, "fault_add needs a proxy: add `proxy: {}`");
            }
            if let Some(id) = id {
                if !tl.faults.insert(id.clone()) {
                    cx.report(
                        cx.value(at, "id"),
                        format!("fault id `{id}` is in use (added and not removed yet)"),
                    );
                }
            }
        }
        Action::FaultRemove { id } if !tl.faults.remove(id) => {
            cx.report(
                cx.value(at, "id"),
                format!("fault_remove: no earlier fault_add has id `{id}` (still in place)"),
            );
        }
        Action::Mark(m) if !tl.marks.insert(m.clone()) => {
            cx.report(cx.value(at, "mark"), format!("mark `{m}` is set twice"));
        }
        _ => {}
    }
    if let Some(b) = action.backend() {
        let place = cx.value(at, "backend");
        if b == 0 || b > tl.backends_now {
            cx.report(
                place,
                format!(
                    "there is no backend {b}: backends are numbered from 1 to {} at this time",
                    tl.backends_now
                ),
            );
        } else if tl.removed.contains(&b) {
            cx.report(place, format!("backend {b} was removed by an earlier step"));
        } else if matches!(action, Action::BackendRemove { .. }) {
            tl.removed.insert(b);
        }
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

/// The expectations: the scenario's, then the variant's.
fn expectations(
    cx: &Ctx,
    s: &Scenario,
    extra: &[Spanned<Expectation>],
    clients: &[NamedClient],
    names: &BTreeSet<String>,
    steps: &[Timed],
    backends: u32,
) -> Vec<Check> {
    let marks: BTreeSet<&str> = steps
        .iter()
        .filter_map(|t| match &t.action {
            Action::Mark(m) => Some(m.as_str()),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for e in s.expect.iter().chain(extra) {
        let at = pos(e);
        let check = match lower_expectation(&e.value) {
            Ok(c) => c,
            Err(m) => {
                cx.report(at, m);
                continue;
            }
        };
        let n = cx.errors();
        expectation(cx, at, &check, clients, backends);
        for m in check.marks() {
            if !marks.contains(m) {
                let known: Vec<&str> = marks.iter().copied().collect();
                let place = text_value(cx, at, m);
                cx.report(
                    place,
                    format!(
                        "no step sets the mark `{m}`{}",
                        super::shape::did_you_mean(m, &known)
                    ),
                );
            }
        }
        if let Some(c) = check.client() {
            if !names.contains(c) {
                let known: Vec<&str> = names.iter().map(String::as_str).collect();
                cx.report(
                    cx.value(at, "client"),
                    format!(
                        "no client or probe is named `{c}`{}",
                        super::shape::did_you_mean(c, &known)
                    ),
                );
            }
        }
        if cx.errors() == n {
            out.push(check);
        }
    }
    out
}

/// Where `word` stands as a value inside the node at `at` (a mark name in
/// `after:` or `before:`), else `at`.
fn text_value(cx: &Ctx, at: (u32, u32), word: &str) -> (u32, u32) {
    ["after", "before"]
        .iter()
        .map(|k| cx.value(at, k))
        .find(|p| {
            super::load::yaml_lines(cx.text)
                .nth(p.0 as usize - 1)
                .and_then(|l| {
                    l.chars()
                        .skip(p.1 as usize - 1)
                        .collect::<String>()
                        .strip_prefix(word)
                        .map(|_| ())
                })
                .is_some()
        })
        .unwrap_or(at)
}

/// The checks one expectation's own fields need.
fn expectation(cx: &Ctx, at: (u32, u32), check: &Check, clients: &[NamedClient], backends: u32) {
    match check {
        Check::Rpcs(f)
        | Check::Goaways(f)
        | Check::StateChanges(f)
        | Check::ConnectionLosses(f)
        | Check::SuccessRate(f) => filter(cx, at, check, f, backends),
        Check::Latency(l) => {
            if !(0.0..=100.0).contains(&l.percentile) || l.percentile == 0.0 {
                cx.report(
                    cx.value(at, "percentile"),
                    "latency.percentile is a number from 0 to 100, like 99 or 99.9",
                );
            }
        }
        Check::ExitCode(_) | Check::Output(..) => {
            let c = check.client().unwrap_or_default();
            if !clients.iter().any(|n| n.name == c && n.is_program()) {
                cx.report(
                    cx.value(at, "client"),
                    format!("no client named `{c}` runs a program (`command:`): exit_code and output look at a program"),
                );
            }
        }
        Check::Order(o) => {
            for (key, k) in [("first", &o.first), ("then", &o.then)] {
                if !["goaway", "rpc_error", "transient_failure", "closed"].contains(&k.as_str()) {
                    cx.report(cx.value(at, key), format!("order: `{k}` is not one of goaway, rpc_error, transient_failure, closed"));
                }
            }
        }
    }
    // A program's client is seen on the wire only: no connectivity states.
    let program = check
        .client()
        .is_some_and(|c| clients.iter().any(|n| n.name == c && n.is_program()));
    let states = matches!(check, Check::StateChanges(_))
        || matches!(check, Check::Order(o) if o.first == "transient_failure" || o.then == "transient_failure");
    if program && states {
        cx.report(at, "this client is a program of yours: its connectivity states are not visible on the wire (its calls, GOAWAYs, PINGs and closes are); count what it logs with `output:`");
    }
}

/// A count or a rate: bounds, backend and code.
fn filter(cx: &Ctx, at: (u32, u32), check: &Check, f: &Filter, backends: u32) {
    if f.at_least.is_none() && f.at_most.is_none() && f.exactly.is_none() {
        cx.report(at, "a count or rate needs at_least, at_most or exactly");
    }
    let rate = matches!(check, Check::SuccessRate(_));
    for (k, b) in [
        ("at_least", f.at_least),
        ("at_most", f.at_most),
        ("exactly", f.exactly),
    ] {
        let Some(b) = b else { continue };
        if rate && !(0.0..=1.0).contains(&b) {
            cx.report(
                cx.value(at, k),
                "success_rate is a fraction from 0 to 1: for 99% write 0.99",
            );
        } else if b < 0.0 || b.is_nan() {
            cx.report(cx.value(at, k), "a count cannot be negative");
        }
    }
    if let Some(b) = f.backend {
        if !matches!(check, Check::Rpcs(_) | Check::SuccessRate(_)) {
            cx.report(
                cx.value(at, "backend"),
                "`backend` selects calls: it goes with rpcs and success_rate",
            );
        } else if b == 0 || b > backends {
            cx.report(
                cx.value(at, "backend"),
                format!("there is no backend {b}: backends are numbered from 1 to {backends}"),
            );
        }
    }
    if let Some(code) = &f.code {
        let goaways = matches!(check, Check::Goaways(_));
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
            cx.report(cx.value(at, "code"), format!("`{code}` is not {what}"));
        }
    }
}
