//! `drop-frame`: drops control frames of one type in its direction, the
//! next `count` on each connection or all (never HEADERS or DATA: the
//! stream would break).

use std::sync::Arc;

use super::params::{Args, Kind, Msg, Need, Param};
use super::stage::{mask, Cx, FrameMask, Init, Stage};
use super::{Fault, FaultDef, Scope};
use crate::h2wire::{FrameHeader, FrameType, Verdict};

pub(crate) const DEF: FaultDef = FaultDef {
    name: "drop-frame",
    help: "drop control frames of one type, the next count on each connection or all",
    params: &[
        Param::new("type", Kind::Frame, Need::Required, "frame type"),
        Param::new(
            "count",
            Kind::Number,
            Need::Optional("all"),
            "drop the next N only",
        ),
    ],
    scope: Scope::Each,
    frames: true,
    build,
};

#[derive(Debug)]
struct DropFrame {
    kind: FrameType,
    count: Option<u64>,
}

fn build(a: &Args) -> Result<Arc<dyn Fault>, Msg> {
    Ok(Arc::new(DropFrame {
        kind: a.frame("type"),
        count: a.opt_int("count"),
    }))
}

impl Fault for DropFrame {
    fn stage(&self, _: &Init) -> Option<Box<dyn Stage>> {
        Some(Box::new(DropFrameStage {
            kind: self.kind,
            left: self.count,
        }))
    }
}

struct DropFrameStage {
    kind: FrameType,
    left: Option<u64>,
}

impl Stage for DropFrameStage {
    fn frames(&self) -> FrameMask {
        mask(self.kind)
    }

    fn frame(&mut self, h: &FrameHeader, _: &[u8], cx: &mut Cx<'_>) -> Verdict {
        if h.kind != self.kind || self.left == Some(0) {
            return Verdict::Forward;
        }
        if let Some(n) = &mut self.left {
            *n -= 1;
        }
        let way = cx.way();
        cx.tell(format!("dropped a {} frame {way}", h.kind.name()));
        Verdict::Drop
    }
}
