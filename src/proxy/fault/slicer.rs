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
    help: "forward each chunk in slices of about average_size bytes, delay apart",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventSink;
    use crate::proxy::state::State;
    use bytes::Bytes;
    use std::time::Instant;

    fn slices(size: u64, variation: u64, data: &[u8]) -> Vec<Piece> {
        let mut stage = SlicerStage {
            size: size.max(1),
            variation,
            delay: Duration::from_micros(10),
            rng: fastrand::Rng::with_seed(7),
        };
        let (events, _rx) = EventSink::channel(8);
        let now = Instant::now();
        let mut st = State::new(1, "x".into(), events, now, false);
        let mut cx = Cx {
            now,
            dir: super::super::Direction::Upstream,
            name: "slicer",
            st: &mut st,
        };
        let mut out = Vec::new();
        stage.data(
            Piece::new(now, Bytes::copy_from_slice(data)),
            &mut out,
            &mut cx,
        );
        out
    }

    /// slicer_test.go `TestSlicerToxic`: 480 KB in slices of 1024 ± 512
    /// bytes come out in about 480 slices, whole, `delay` apart.
    #[test]
    fn slices_average_their_size_and_reassemble() {
        let data = "hello world ".repeat(40_000).into_bytes();
        let out = slices(1024, 512, &data);
        assert!(
            (480 / 2..=480 / 2 + 480).contains(&out.len()),
            "{} slices",
            out.len()
        );
        let joined: Vec<u8> = out.iter().flat_map(|p| p.data.to_vec()).collect();
        assert_eq!(joined, data);
        assert!(out.windows(2).all(|w| w[1].due > w[0].due));
    }

    /// slicer_termination_test.go: any sizes asked (zero, a variation
    /// above the size) reassemble exactly.
    #[test]
    fn any_sizes_reassemble() {
        for (avg, var) in [
            (0, 0),
            (0, 5),
            (1, 0),
            (2, 1),
            (5, 10),
            (10, 10),
            (64, 8),
            (1024, 512),
        ] {
            for size in [1usize, 2, 21, 64, 1000, 4096] {
                let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
                let joined: Vec<u8> = slices(avg, var, &data)
                    .iter()
                    .flat_map(|p| p.data.to_vec())
                    .collect();
                assert_eq!(joined, data, "average {avg} variation {var} size {size}");
            }
        }
    }
}
