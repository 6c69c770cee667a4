//! A checked scenario, lowered from the file's model into what the run and
//! the checks interpret: one `Plan` per variant, its timeline a list of
//! `Action`s in time order and its expectations a list of `Check`s.

use std::time::Duration;

use super::model::{
    ClientSpec, ExitCodeCheck, Filter, HealthStatus, LatencyCheck, LoadSpec, MiddleboxPosition,
    OrderCheck, OutputCheck, Scenario, ServerSet, StopMode,
};
use crate::event::StepAction;
use crate::proxy::FaultSpec;

/// A named client, ready to run.
#[derive(Clone, Debug)]
pub struct NamedClient {
    pub name: String,
    pub spec: ClientSpec,
}

impl NamedClient {
    /// A program of the user's (`command`), not grpcdoc's client.
    pub fn is_program(&self) -> bool {
        self.spec.command.is_some()
    }
}

/// A probe, ready to run: a load through client `client` (an index).
#[derive(Clone, Debug)]
pub struct NamedProbe {
    pub name: String,
    pub client: usize,
    pub load: LoadSpec,
}

/// What a timeline step does.
#[derive(Clone, Debug)]
pub enum Action {
    ServerRestart {
        backend: Option<u32>,
        mode: StopMode,
        downtime: Duration,
    },
    ServerStop {
        backend: Option<u32>,
        mode: StopMode,
    },
    ServerStart {
        backend: Option<u32>,
    },
    /// Built-in server settings for the connections accepted after.
    ServerSet {
        backend: Option<u32>,
        change: ServerSet,
    },
    Health {
        backend: Option<u32>,
        service: Option<String>,
        status: HealthStatus,
    },
    FaultAdd {
        id: Option<String>,
        fault: FaultSpec,
    },
    FaultRemove {
        id: String,
    },
    /// One more server; the name service returns it from now on.
    BackendAdd,
    /// A server stopped for good and taken out of the name service.
    BackendRemove {
        backend: u32,
        mode: StopMode,
    },
    /// Every client resolves now.
    Resolve,
    Mark(String),
}

impl Action {
    /// The step's action, as its key in the file says it.
    pub fn kind(&self) -> StepAction {
        match self {
            Action::ServerRestart { .. } => StepAction::ServerRestart,
            Action::ServerStop { .. } => StepAction::ServerStop,
            Action::ServerStart { .. } => StepAction::ServerStart,
            Action::ServerSet { .. } => StepAction::ServerSet,
            Action::Health { .. } => StepAction::Health,
            Action::FaultAdd { .. } => StepAction::FaultAdd,
            Action::FaultRemove { .. } => StepAction::FaultRemove,
            Action::BackendAdd => StepAction::BackendAdd,
            Action::BackendRemove { .. } => StepAction::BackendRemove,
            Action::Resolve => StepAction::Resolve,
            Action::Mark(_) => StepAction::Mark,
        }
    }

    /// The step's key in the file.
    pub fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The backend the step names (1-based), if it names one.
    pub fn backend(&self) -> Option<u32> {
        match self {
            Action::ServerRestart { backend, .. }
            | Action::ServerStop { backend, .. }
            | Action::ServerStart { backend }
            | Action::ServerSet { backend, .. }
            | Action::Health { backend, .. } => *backend,
            Action::BackendRemove { backend, .. } => Some(*backend),
            _ => None,
        }
    }
}

/// A step: an action at a time from the start.
#[derive(Clone, Debug)]
pub struct Timed {
    pub at: Duration,
    pub action: Action,
}

/// An expectation.
#[derive(Clone, Debug)]
pub enum Check {
    /// Calls (from load and probes), by code.
    Rpcs(Filter),
    /// GOAWAYs received by clients (drains, not frames).
    Goaways(Filter),
    /// Subchannel state changes.
    StateChanges(Filter),
    /// Connections closed under clients (any reason but their own shutdown).
    ConnectionLosses(Filter),
    /// The share of calls that succeeded.
    SuccessRate(Filter),
    Latency(LatencyCheck),
    Order(OrderCheck),
    /// How a client program ended.
    ExitCode(ExitCodeCheck),
    /// Lines of a client program's output, counted (the pattern compiled).
    Output(OutputCheck, OutputPattern),
}

/// What an `output` check looks for in each line.
#[derive(Clone, Debug)]
pub enum OutputPattern {
    Contains(String),
    Matches(regex::Regex),
}

impl OutputPattern {
    pub fn hits(&self, line: &str) -> bool {
        match self {
            OutputPattern::Contains(t) => line.contains(t.as_str()),
            OutputPattern::Matches(r) => r.is_match(line),
        }
    }
}

impl Check {
    /// The client or probe it looks at, if it names one.
    pub fn client(&self) -> Option<&str> {
        match self {
            Check::Rpcs(f)
            | Check::Goaways(f)
            | Check::StateChanges(f)
            | Check::ConnectionLosses(f)
            | Check::SuccessRate(f) => f.client.as_deref(),
            Check::Latency(l) => l.client.as_deref(),
            Check::Order(o) => o.client.as_deref(),
            Check::ExitCode(e) => Some(&e.client),
            Check::Output(o, _) => Some(&o.client),
        }
    }

    /// Its window: the `after` and `before` marks.
    pub fn window(&self) -> (Option<&str>, Option<&str>) {
        let (a, b) = match self {
            Check::Rpcs(f)
            | Check::Goaways(f)
            | Check::StateChanges(f)
            | Check::ConnectionLosses(f)
            | Check::SuccessRate(f) => (&f.after, &f.before),
            Check::Latency(l) => (&l.after, &l.before),
            Check::Order(_) | Check::ExitCode(_) | Check::Output(..) => (&None, &None),
        };
        (a.as_deref(), b.as_deref())
    }

    /// The marks its window names.
    pub fn marks(&self) -> Vec<&str> {
        let (a, b) = self.window();
        [a, b].into_iter().flatten().collect()
    }
}

/// The middlebox program and what goes into its configuration.
#[derive(Clone, Debug)]
pub enum MiddleboxKind {
    Nginx(Vec<String>),
    Haproxy(Vec<String>),
    Command(Vec<String>),
}

#[derive(Clone, Debug)]
pub struct Middlebox {
    pub kind: MiddleboxKind,
    pub position: MiddleboxPosition,
    pub ready: Duration,
}

impl Middlebox {
    /// The program it runs, and the package that has it.
    pub fn program(&self) -> (&str, &str) {
        match &self.kind {
            MiddleboxKind::Nginx(_) => ("nginx", "nginx (apt-get install nginx)"),
            MiddleboxKind::Haproxy(_) => ("haproxy", "haproxy (apt-get install haproxy)"),
            MiddleboxKind::Command(argv) => {
                let p = argv.first().map_or("", String::as_str);
                (p, p)
            }
        }
    }

    pub fn describe(&self) -> String {
        match &self.kind {
            MiddleboxKind::Nginx(d) => format!("nginx {}", d.join(" ")),
            MiddleboxKind::Haproxy(d) => format!("haproxy {}", d.join("; ")),
            MiddleboxKind::Command(argv) => argv.join(" "),
        }
        .trim()
        .to_string()
    }
}

/// One variant (or the scenario itself when it has none), ready to run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The variant's name; `None` for a scenario without variants.
    pub variant: Option<String>,
    pub about: String,
    /// The scenario with the variant's sections in place.
    pub scenario: Scenario,
    pub clients: Vec<NamedClient>,
    pub probes: Vec<NamedProbe>,
    /// Servers at the start.
    pub backends: u32,
    pub initial_faults: Vec<FaultSpec>,
    pub middlebox: Option<Middlebox>,
    /// In time order.
    pub steps: Vec<Timed>,
    /// The scenario's expectations, then the variant's.
    pub checks: Vec<Check>,
    /// The directory of the scenario file (`{dir}` in commands).
    pub dir: String,
}

impl Plan {
    pub fn duration(&self) -> Duration {
        self.scenario.duration.value.0
    }

    /// Whether a check can be measured on this plan's run: the client and
    /// marks it names exist here.
    pub fn can_measure(&self, c: &Check) -> bool {
        let names = || {
            self.clients
                .iter()
                .map(|c| c.name.as_str())
                .chain(self.probes.iter().map(|p| p.name.as_str()))
        };
        let marks: Vec<&str> = self
            .steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::Mark(m) => Some(m.as_str()),
                _ => None,
            })
            .collect();
        c.client().is_none_or(|n| names().any(|x| x == n))
            && c.marks().iter().all(|m| marks.contains(m))
    }
}

/// A checked scenario file.
#[derive(Clone, Debug)]
pub struct Checked {
    pub path: String,
    pub name: String,
    pub about: String,
    pub plans: Vec<Plan>,
}

impl Checked {
    /// Programs a plan needs that are not on PATH: (program, what to
    /// install).
    pub fn missing_programs(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut need = |prog: &str, pkg: &str| {
            if !on_path(prog) && !out.iter().any(|(p, _)| p == prog) {
                out.push((prog.to_string(), pkg.to_string()));
            }
        };
        for p in &self.plans {
            if let Some(m) = &p.middlebox {
                let (prog, pkg) = m.program();
                need(prog, pkg);
            }
            for c in &p.clients {
                if let Some(prog) = c.spec.command.as_ref().and_then(|c| c.first()) {
                    // A program named by `{...}` is filled in at run time.
                    if !prog.contains('{') {
                        need(prog, prog);
                    }
                }
            }
        }
        out
    }
}

/// Whether `prog` runs: a path that exists, or a name found on PATH (and in
/// the sbin directories, where nginx and haproxy live).
pub fn find_program(prog: &str) -> Option<std::path::PathBuf> {
    if prog.is_empty() {
        return None;
    }
    if prog.contains('/') {
        let p = std::path::PathBuf::from(prog);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(Into::into))
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

fn on_path(prog: &str) -> bool {
    find_program(prog).is_some()
}
