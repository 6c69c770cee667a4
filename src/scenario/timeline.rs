//! The timeline: each step's action, done on the stage at its time, and
//! told as a `step` event.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use tokio::sync::watch;

use super::model::{HealthStatus, StopMode};
use super::plan::{Action, Plan, Timed};
use super::record::Recording;
use super::recorded::RunError;
use super::servers::{chosen, start_backend, which, Backend};
use crate::client::Channel;
use crate::event::{EventKind, EventSink, StepAction};
use crate::server::ServerConfig;
use crate::target::{Address, NameService};

/// Everything a step can act on.
pub struct Stage<'a> {
    pub plan: &'a Plan,
    pub backends: Vec<Backend>,
    /// The built-in server's settings for backends started from now on.
    pub template: ServerConfig,
    pub channels: Vec<Channel>,
    /// What clients get when they resolve: the backends not removed.
    pub names: NameService,
    pub start: Instant,
    pub timeline: EventSink,
    /// Several backends (or some added later): events are tagged
    /// `server1`, `proxy2`, ...
    pub multi: bool,
    pub marks: BTreeMap<String, f64>,
    /// Client programs still running.
    pub programs: Vec<super::clients::RunningProgram>,
    fault_ids: BTreeMap<String, Vec<(usize, u64)>>,
}

impl<'a> Stage<'a> {
    pub fn new(
        plan: &'a Plan,
        template: ServerConfig,
        start: Instant,
        timeline: EventSink,
    ) -> Self {
        let multi = plan.backends > 1
            || plan
                .steps
                .iter()
                .any(|s| matches!(s.action, Action::BackendAdd));
        Stage {
            plan,
            backends: Vec::new(),
            template,
            channels: Vec::new(),
            names: NameService::default(),
            start,
            timeline,
            multi,
            marks: BTreeMap::new(),
            programs: Vec::new(),
            fault_ids: BTreeMap::new(),
        }
    }

    pub fn step(&self, action: StepAction, detail: String) {
        self.timeline
            .emit(None, None, EventKind::Step { action, detail });
    }

    /// The addresses clients dial: one per backend not removed.
    pub fn fronts(&self) -> Vec<SocketAddr> {
        self.backends
            .iter()
            .filter(|b| !b.removed)
            .map(Backend::front)
            .collect()
    }

    /// Starts backend `i` and tells the name service.
    pub async fn add_backend(&mut self, rec: &mut Recording) -> Result<SocketAddr, RunError> {
        let i = self.backends.len();
        // `server`, or `server2` when there are several.
        let tag = if self.multi {
            format!("{}", i + 1)
        } else {
            String::new()
        };
        let b = start_backend(self.plan, &tag, &self.template, rec).await?;
        let addr = b.ctl.addr();
        if let Some(m) = &b.middlebox {
            self.step(
                StepAction::Middlebox,
                format!(
                    "{} listening on {} -> {}",
                    self.plan
                        .middlebox
                        .as_ref()
                        .map(|m| m.describe())
                        .unwrap_or_default(),
                    m.addr,
                    m.upstream
                ),
            );
        }
        self.backends.push(b);
        self.names.set(self.fronts());
        Ok(addr)
    }

    /// Client programs' taps stand in front of backend 1 with nothing
    /// between: while its server is down they refuse connections too, as
    /// the server would (a middlebox or proxy in the path keeps listening).
    fn taps_listen(&self, picked: &[usize], on: bool) {
        let direct = self.plan.middlebox.is_none() && self.plan.scenario.proxy.is_none();
        if direct && picked.contains(&0) {
            for p in &self.programs {
                p.tap.set_listening(on);
            }
        }
    }

    /// Does one action.
    pub async fn perform(&mut self, action: &Action, rec: &mut Recording) -> Result<(), RunError> {
        let picked = chosen(&self.backends, action.backend());
        let which = which(action.backend());
        match action {
            Action::ServerRestart { mode, downtime, .. } => {
                self.restart(&picked, &which, *mode, *downtime).await?;
            }
            Action::ServerStop { mode, .. } => {
                self.step(action.kind(), format!("{which}{mode:?}").to_lowercase());
                for &i in &picked {
                    self.backends[i].ctl.stop(*mode).await;
                }
                self.taps_listen(&picked, false);
            }
            Action::ServerStart { .. } => {
                for &i in &picked {
                    self.backends[i].ctl.start().await?;
                    let addr = self.backends[i].ctl.addr();
                    self.step(action.kind(), format!("listening on {addr}"));
                }
                self.taps_listen(&picked, true);
            }
            Action::ServerSet { backend, change } => {
                for &i in &picked {
                    self.backends[i].ctl.set(change);
                }
                if backend.is_none() {
                    change.apply(&mut self.template);
                }
                self.step(action.kind(), format!("{which}{}", change.describe()));
            }
            Action::Health {
                service, status, ..
            } => {
                self.health(&picked, &which, service.as_deref(), *status)
                    .await
            }
            Action::FaultAdd { id, fault } => {
                let mut ids = Vec::new();
                for (i, b) in self.backends.iter().enumerate() {
                    if let Some(p) = &b.proxy {
                        ids.push((i, p.add(fault.clone())));
                    }
                }
                if let Some(name) = id {
                    self.fault_ids.insert(name.clone(), ids);
                }
                self.step(action.kind(), fault.text.clone());
            }
            Action::FaultRemove { id } => {
                for (i, fid) in self.fault_ids.remove(id).unwrap_or_default() {
                    if let Some(p) = &self.backends[i].proxy {
                        p.remove(fid);
                    }
                }
                self.step(action.kind(), id.clone());
            }
            Action::BackendAdd => {
                let addr = self.add_backend(rec).await?;
                let n = self.backends.len();
                self.step(
                    action.kind(),
                    format!("backend {n} listening on {addr}; the name service returns it"),
                );
            }
            Action::BackendRemove { backend, mode } => {
                self.step(
                    action.kind(),
                    format!("backend {backend} ({mode:?})").to_lowercase(),
                );
                for &i in &picked {
                    self.backends[i].shutdown(*mode).await;
                    self.backends[i].removed = true;
                }
                self.names.set(self.fronts());
            }
            Action::Resolve => self.resolve(),
            Action::Mark(m) => {
                self.marks
                    .insert(m.clone(), self.start.elapsed().as_secs_f64() * 1e3);
                self.step(action.kind(), m.clone());
            }
        }
        Ok(())
    }

    /// A restart: the servers stopped, down for `downtime`, started again.
    async fn restart(
        &mut self,
        picked: &[usize],
        which: &str,
        mode: StopMode,
        downtime: std::time::Duration,
    ) -> Result<(), RunError> {
        self.step(
            StepAction::ServerRestart,
            format!(
                "{which}{mode:?}, down for {}",
                humantime::format_duration(downtime)
            )
            .to_lowercase(),
        );
        for &i in picked {
            self.backends[i].ctl.stop(mode).await;
        }
        self.taps_listen(picked, false);
        tokio::time::sleep(downtime).await;
        for &i in picked {
            self.backends[i].ctl.start().await?;
            let addr = self.backends[i].ctl.addr();
            self.step(
                StepAction::ServerStart,
                format!("listening on {addr} again"),
            );
        }
        self.taps_listen(picked, true);
        Ok(())
    }

    /// What the servers' health services answer from now on.
    async fn health(
        &mut self,
        picked: &[usize],
        which: &str,
        service: Option<&str>,
        status: HealthStatus,
    ) {
        for &i in picked {
            self.backends[i].ctl.health(service, status).await;
        }
        self.step(
            StepAction::Health,
            format!(
                "{which}{} {}",
                service.unwrap_or("(all services)"),
                match status {
                    HealthStatus::Serving => "SERVING",
                    HealthStatus::NotServing => "NOT_SERVING",
                }
            ),
        );
    }

    /// Every client resolves now: it gets the current addresses.
    fn resolve(&mut self) {
        let addrs = self.fronts();
        self.step(
            StepAction::Resolve,
            addrs
                .iter()
                .map(SocketAddr::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        );
        for ch in &self.channels {
            ch.set_addresses(addrs.iter().map(|a| Address::Tcp(*a)).collect());
        }
    }

    /// Plays the steps at their times; `true` when interrupted.
    pub async fn play(
        &mut self,
        steps: &[Timed],
        interrupt: &mut watch::Receiver<bool>,
        rec: &mut Recording,
    ) -> Result<bool, RunError> {
        for st in steps {
            let due = tokio::time::Instant::from_std(self.start + st.at);
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = interrupt.wait_for(|i| *i) => return Ok(true),
            }
            self.perform(&st.action, rec).await?;
        }
        Ok(false)
    }

    /// Stops everything started.
    pub async fn teardown(&mut self) {
        for mut p in std::mem::take(&mut self.programs) {
            p.program.stop(p.signal, p.grace).await;
            p.tap.shutdown().await;
        }
        for b in &mut self.backends {
            b.shutdown(StopMode::Hard).await;
        }
    }
}
