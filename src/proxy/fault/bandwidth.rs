//! `bandwidth`: at most `rate` bytes a second, per direction and
//! connection (toxiproxy's bandwidth toxic, whose rate is KB/s in its
//! API): a piece leaves once the ones before it had their time on the
//! link; pieces larger than a tenth of a second's worth go in tenth-second
//! slices.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::params::{Args, Kind, Msg, Need, Param};
use super::stage::{Cx, Init, Piece, Stage};
use super::{Fault, FaultDef, Scope};

pub(crate) const DEF: FaultDef = FaultDef {
    name: "bandwidth",
    help: "at most rate bytes a second, per direction and connection",
    params: &[Param::new(
        "rate",
        Kind::Bytes(1000),
        Need::Required,
        "bytes a second (100KB = 100000; the API's rate is KB/s)",
    )
    .shown("bytes per second")],
    scope: Scope::Each,
    frames: false,
    build,
};

#[derive(Debug)]
struct Bandwidth {
    rate: u64,
}

fn build(a: &Args) -> Result<Arc<dyn Fault>, Msg> {
    let rate = a.int("rate");
    if rate == 0 {
        return Err("`rate` must be above 0 (blackhole stops forwarding)".into());
    }
    Ok(Arc::new(Bandwidth { rate }))
}

impl Fault for Bandwidth {
    fn stage(&self, _: &Init) -> Option<Box<dyn Stage>> {
        Some(Box::new(BandwidthStage {
            rate: self.rate as f64,
            free_at: None,
        }))
    }
}

struct BandwidthStage {
    rate: f64,
    /// When the link has sent what it was given.
    free_at: Option<Instant>,
}

impl Stage for BandwidthStage {
    fn shapes(&self) -> bool {
        true
    }

    fn data(&mut self, p: Piece, out: &mut Vec<Piece>, cx: &mut Cx<'_>) {
        let mut at = self.free_at.map_or(p.due, |f| f.max(p.due));
        let slice = ((self.rate / 10.0) as usize).max(1);
        let mut rest = p.data;
        while !rest.is_empty() {
            let part = rest.split_to(slice.min(rest.len()));
            at += Duration::from_secs_f64(part.len() as f64 / self.rate);
            out.push(Piece::new(at, part));
        }
        if let Some(last) = out.last_mut() {
            last.then = p.then;
        }
        self.free_at = Some(at);
        cx.count();
    }
}
