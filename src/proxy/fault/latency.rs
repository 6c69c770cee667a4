//! `latency`: each piece leaves `latency` (± `jitter`) after it reached the
//! proxy, as toxiproxy's latency toxic times its chunks: pieces that came
//! together leave together, a piece never waits for the delay of the one
//! before it, and order is kept (a piece with less jitter waits behind an
//! earlier one).

use std::sync::Arc;
use std::time::Duration;

use super::params::{Args, Kind, Msg, Need, Param, Unit};
use super::stage::{Cx, Init, Piece, Stage};
use super::{Fault, FaultDef, Scope};

pub(crate) const DEF: FaultDef = FaultDef {
    name: "latency",
    help: "delay each chunk by latency +- jitter from its arrival (chunks that came together leave together)",
    params: &[
        Param::new(
            "latency",
            Kind::Duration(Unit::Millis),
            Need::Required,
            "added delay",
        )
        .alias_ms("ms"),
        Param::new(
            "jitter",
            Kind::Duration(Unit::Millis),
            Need::Default("0s"),
            "random +- on top",
        ),
    ],
    scope: Scope::Each,
    frames: false,
    build,
};

#[derive(Debug)]
struct Latency {
    latency: Duration,
    jitter: Duration,
}

fn build(a: &Args) -> Result<Arc<dyn Fault>, Msg> {
    Ok(Arc::new(Latency {
        latency: a.duration("latency"),
        jitter: a.duration("jitter"),
    }))
}

impl Fault for Latency {
    fn stage(&self, _: &Init) -> Option<Box<dyn Stage>> {
        Some(Box::new(LatencyStage {
            latency: self.latency,
            jitter: self.jitter,
            rng: fastrand::Rng::new(),
        }))
    }
}

struct LatencyStage {
    latency: Duration,
    jitter: Duration,
    rng: fastrand::Rng,
}

impl Stage for LatencyStage {
    fn shapes(&self) -> bool {
        true
    }

    fn data(&mut self, mut p: Piece, out: &mut Vec<Piece>, cx: &mut Cx<'_>) {
        let mut delay = self.latency.as_secs_f64();
        if !self.jitter.is_zero() {
            delay += self.jitter.as_secs_f64() * (self.rng.f64() * 2.0 - 1.0);
        }
        p.due += Duration::from_secs_f64(delay.max(0.0));
        cx.count();
        out.push(p);
    }
}
