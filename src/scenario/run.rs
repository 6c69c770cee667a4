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

pub use super::recorded::{ProgramRun, Recorded, RunError, Tagged};

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
            stage.step(
                crate::event::StepAction::ServerStart,
                format!("listening on {addr}"),
            );
        }
        let fronts = stage.fronts();
        // Clients ask the scenario's name service, as they would DNS.
        let target = crate::target::Target::named(stage.names.clone(), &fronts[0].to_string());
        let duration = plan.duration();
        let (stop_tx, stop_rx) = watch::channel(false);
        let load_run = LoadRun {
            builtin,
            origin: format!("http://{}", fronts[0]),
            duration: duration.saturating_sub(start.elapsed()),
            stop: stop_rx.clone(),
        };
        let loads =
            start_clients(plan, &mut stage, &mut rec, &target, &load_run, &mut notes).await?;
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
        let warnings = stop_clients(&mut stage, loads, &mut programs).await;
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

/// A load running: what it could not do as asked, when it ends.
type Load = tokio::task::JoinHandle<Option<String>>;

/// Starts the clients (grpcdoc's channels with their load, or programs)
/// and the probes through them: the loads started.
async fn start_clients(
    plan: &Plan,
    stage: &mut Stage<'_>,
    rec: &mut Recording,
    target: &crate::target::Target,
    load_run: &LoadRun,
    notes: &mut Vec<String>,
) -> Result<Vec<Load>, RunError> {
    let fronts = stage.fronts();
    let mut loads = Vec::new();
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
        let ch =
            Channel::new(channel_config(target.clone(), &nc.spec), sink.clone()).map_err(|e| {
                RunError::Client {
                    client: nc.name.clone(),
                    reason: e.to_string(),
                }
            })?;
        ch.connect();
        // Calls start once the client's connections are up (bounded),
        // so a scenario does not measure its own start-up.
        wait_connected(&ch).await;
        if let Some(l) = &nc.spec.load {
            loads.push(start_load(nc, l, &ch, sink, load_run).await?);
        }
        stage.channels.push(ch);
    }
    for p in &plan.probes {
        let nc = &plan.clients[p.client];
        let sink = rec.sink(&p.name, Some(&nc.name));
        loads.push(start_load(nc, &p.load, &stage.channels[p.client], sink, load_run).await?);
    }
    Ok(loads)
}

/// Stops the programs (their signal, a grace, then KILL), waits for the
/// loads (what they could not do as asked) and shuts the channels down.
async fn stop_clients(
    stage: &mut Stage<'_>,
    loads: Vec<Load>,
    programs: &mut BTreeMap<String, ProgramRun>,
) -> Vec<String> {
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
    warnings
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
