//! Playing one plan (a variant): start the servers, the proxies and the
//! middleboxes, the clients and their load, all on one clock; play the
//! timeline; record every event tagged by who emitted it; stop everything
//! started, also on failure or interruption.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::clients::{channel_config, start_load, start_program, LoadRun};
use super::plan::Plan;
use super::record::Recording;
use super::servers::builtin_config;
use super::timeline::Stage;
use crate::client::Channel;
use crate::event::Event;

/// An event and who emitted it: `server`, `proxy`, `timeline` or a client.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Tagged {
    pub who: String,
    /// For a probe's calls: the client it calls through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    #[serde(flatten)]
    pub event: Event,
}

impl Tagged {
    /// The client whose connection carried it (a probe's client).
    pub fn via_client(&self) -> &str {
        self.via.as_deref().unwrap_or(&self.who)
    }

    /// Emitted by a client or a probe (not a server, a proxy or the timeline;
    /// with several backends those are `server2`, `proxy2`, ...).
    pub fn is_client(&self) -> bool {
        !["server", "proxy", "timeline"]
            .iter()
            .any(|p| self.who.starts_with(p))
    }
}

/// What a run recorded.
pub struct Recorded {
    pub events: Vec<Tagged>,
    /// Mark name -> t_ms.
    pub marks: BTreeMap<String, f64>,
    pub duration_ms: f64,
    pub interrupted: bool,
    /// Events producers could not hand over, by who (none in a sound run).
    pub dropped: Vec<(String, u64)>,
    /// Producers still running when the recording ended.
    pub unfinished: Vec<String>,
    /// What the run could not do as asked (a rate not held).
    pub warnings: Vec<String>,
    /// The address clients dialled for each backend (1-based in checks).
    pub fronts: Vec<std::net::SocketAddr>,
    /// The client programs: how each ended and what it printed.
    pub programs: BTreeMap<String, ProgramRun>,
    /// What the report should say about how things were seen.
    pub notes: Vec<String>,
}

/// A client program's run.
#[derive(Clone, Debug)]
pub struct ProgramRun {
    pub ended: super::process::Ended,
    pub output: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot start the built-in server: {0}")]
    Server(String),
    #[error("the server command {command:?} did not start: {reason}")]
    Command { command: String, reason: String },
    #[error("cannot start the proxy: {0}")]
    Proxy(String),
    #[error("client `{client}`: {reason}")]
    Client { client: String, reason: String },
    #[error("the middlebox `{what}` did not start: {reason}")]
    Middlebox { what: String, reason: String },
}

/// Plays one plan. `live` gets every event as it happens (for output).
pub async fn play(
    plan: &Plan,
    live: mpsc::Sender<Tagged>,
    mut interrupt: watch::Receiver<bool>,
) -> Result<Recorded, RunError> {
    let s = &plan.scenario;
    let start = Instant::now();
    let mut rec = Recording::start(start, Some(live));
    let template = builtin_config(&s.server.builtin.clone().unwrap_or_default());
    let mut stage = Stage::new(plan, template, start, rec.sink("timeline", None));
    let builtin = s.server.command.is_none() && s.server.address.is_none();
    let mut programs = BTreeMap::new();
    let mut notes = Vec::new();
    let result = async {
        // The servers, each behind its own proxy and middlebox.
        for _ in 0..plan.backends {
            let addr = stage.add_backend(&mut rec).await?;
            stage.step("server_start", format!("listening on {addr}"));
        }
        let fronts = stage.fronts();
        // Clients ask the scenario's name service, as they would DNS.
        let target = crate::target::Target::named(stage.names.clone(), &fronts[0].to_string());
        let duration = plan.duration();
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut loads = Vec::new();
        let load_run = LoadRun {
            builtin,
            origin: format!("http://{}", fronts[0]),
            duration: duration.saturating_sub(start.elapsed()),
            stop: stop_rx.clone(),
        };
        for nc in &plan.clients {
            let sink = rec.sink(&nc.name, None);
            if nc.is_program() {
                let p = start_program(nc, fronts[0], &plan.dir, sink).await?;
                notes.push(format!(
                    "client `{}` is a program ({}): its calls were read on the wire through a tap at {}; calls it failed without touching the wire (failing fast while its channel was in TRANSIENT_FAILURE) are not seen there: count them from its output with `output:`",
                    nc.name,
                    nc.spec.command.as_ref().and_then(|c| c.first()).map_or("", String::as_str),
                    p.tap.addr
                ));
                stage.programs.push(p);
                continue;
            }
            let ch = Channel::new(channel_config(target.clone(), &nc.spec), sink.clone()).map_err(
                |e| RunError::Client {
                    client: nc.name.clone(),
                    reason: e.to_string(),
                },
            )?;
            ch.connect();
            // Calls start once the client's connections are up (bounded),
            // so a scenario does not measure its own start-up.
            wait_connected(&ch).await;
            if let Some(l) = &nc.spec.load {
                loads.push(start_load(nc, l, &ch, sink, &load_run).await?);
            }
            stage.channels.push(ch);
        }
        for p in &plan.probes {
            let nc = &plan.clients[p.client];
            let sink = rec.sink(&p.name, Some(&nc.name));
            loads.push(start_load(nc, &p.load, &stage.channels[p.client], sink, &load_run).await?);
        }
        let mut interrupted = stage.play(&plan.steps, &mut interrupt, &mut rec).await?;
        if !interrupted {
            let end = tokio::time::Instant::from_std(start + duration);
            tokio::select! {
                _ = tokio::time::sleep_until(end) => {}
                _ = interrupt.wait_for(|i| *i) => interrupted = true,
            }
        }
        let duration_ms = start.elapsed().as_secs_f64() * 1e3;
        let _ = stop_tx.send(true);
        // The programs are stopped (their signal, a grace, then KILL).
        for mut p in std::mem::take(&mut stage.programs) {
            let ended = p.program.stop(p.signal, p.grace).await;
            programs.insert(
                p.name.clone(),
                ProgramRun {
                    ended,
                    output: p.program.output(),
                },
            );
            p.tap.shutdown().await;
        }
        let mut warnings = Vec::new();
        for l in loads {
            if let Ok(Ok(Some(w))) = tokio::time::timeout(Duration::from_secs(5), l).await {
                warnings.push(w);
            }
        }
        for ch in &stage.channels {
            ch.shutdown().await;
        }
        Ok::<_, RunError>((duration_ms, interrupted, warnings))
    }
    .await;
    // Everything started is stopped, also on failure.
    let fronts = stage.backends.iter().map(|b| b.front()).collect();
    stage.teardown().await;
    let marks = std::mem::take(&mut stage.marks);
    drop(stage);
    // Every producer's last event is in before the verdict.
    let got = rec.finish().await;
    let (duration_ms, interrupted, warnings) = result?;
    Ok(Recorded {
        events: got.events,
        marks,
        duration_ms,
        interrupted,
        dropped: got.dropped,
        unfinished: got.unfinished,
        warnings,
        fronts,
        programs,
        notes,
    })
}

/// Waits (at most 3 s) until the channel is READY and none of its
/// subchannels is still connecting.
async fn wait_connected(ch: &Channel) {
    let mut st = ch.subscribe_state();
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        let _ = st
            .wait_for(|s| *s == crate::connectivity::State::Ready)
            .await;
        while ch.subchannels().iter().any(|s| {
            s.2 == crate::connectivity::State::Connecting || s.2 == crate::connectivity::State::Idle
        }) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}
