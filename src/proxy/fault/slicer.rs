//! `slicer`: forwards each piece in slices of about `average_size` bytes
//! (± `size_variation`), `delay` apart - toxiproxy's slicer toxic (whose
//! API takes the delay in microseconds). The slices always add up to the
//! piece, whatever the sizes asked.

use std::sync::Arc;
use std::time::Duration;

use super::params::{Args, Kind, Msg, Need, Param, Unit};
use super::stage::{Cx, Init, Piece, Stage};
use super::{Fault, FaultDef, Scope};

pub(crate) const DEF: FaultDef = FaultDef {
    name: "slicer",
    help: "forward in small slices",
    params: &[
        Param::new(
            "average_size",
            Kind::Bytes(1),
            Need::Default("16"),
            "bytes per slice",
        )
        .alias("size"),
        Param::new(
            "size_variation",
            Kind::Bytes(1),
            Need::Default("0"),
            "random +- on the size",
        ),
        Param::new(
            "delay",
            Kind::Duration(Unit::Micros),
            Need::Default("1ms"),
            "pause between slices (the API: microseconds)",
        ),
    ],
    scope: Scope::Each,
    frames: false,
    build,
};

#[derive(Debug)]
struct Slicer {
    size: u64,
    variation: u64,
    delay: Duration,
}

fn build(a: &Args) -> Result<Arc<dyn Fault>, Msg> {
    Ok(Arc::new(Slicer {
        size: a.int("average_size").max(1),
        variation: a.int("size_variation"),
        delay: a.duration("delay"),
    }))
}

impl Fault for Slicer {
    fn stage(&self, _: &Init) -> Option<Box<dyn Stage>> {
        Some(Box::new(SlicerStage {
            size: self.size,
            variation: self.variation,
            delay: self.delay,
            rng: fastrand::Rng::new(),
        }))
    }
}

struct SlicerStage {
    size: u64,
    variation: u64,
    delay: Duration,
    rng: fastrand::Rng,
}

impl SlicerStage {
    /// The next slice's size: average ± variation, at least one byte.
    fn next_size(&mut self) -> usize {
        let lo = self.size.saturating_sub(self.variation).max(1);
        let hi = self.size.saturating_add(self.variation).max(lo);
        self.rng.u64(lo..=hi) as usize
    }
}

impl Stage for SlicerStage {
    fn shapes(&self) -> bool {
        true
    }

    fn data(&mut self, p: Piece, out: &mut Vec<Piece>, cx: &mut Cx<'_>) {
        let mut at = p.due;
        let mut rest = p.data;
        let mut first = true;
        while !rest.is_empty() {
            if !first {
                at += self.delay;
            }
            first = false;
            let n = self.next_size().min(rest.len());
            out.push(Piece::new(at, rest.split_to(n)));
        }
        if let Some(last) = out.last_mut() {
            last.then = p.then;
        }
        cx.count();
    }
}
