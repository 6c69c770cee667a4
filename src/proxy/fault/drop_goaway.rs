//! `drop-goaway`: drops GOAWAY frames in its direction (a proxy that
//! swallows the server's drain, as linkerd 1.x did).

use std::sync::Arc;

use super::params::{Args, Msg};
use super::stage::{mask, Cx, FrameMask, Init, Stage};
use super::{Fault, FaultDef, Scope};
use crate::h2wire::{FrameHeader, FrameType, Verdict};

pub(crate) const DEF: FaultDef = FaultDef {
    name: "drop-goaway",
    help: "drop GOAWAY frames (a proxy that swallows the server's drain)",
    params: &[],
    scope: Scope::Each,
    frames: true,
    build,
};

#[derive(Debug)]
struct DropGoaway;

fn build(_: &Args) -> Result<Arc<dyn Fault>, Msg> {
    Ok(Arc::new(DropGoaway))
}

impl Fault for DropGoaway {
    fn stage(&self, _: &Init) -> Option<Box<dyn Stage>> {
        Some(Box::new(DropGoawayStage))
    }
}

struct DropGoawayStage;

impl Stage for DropGoawayStage {
    fn frames(&self) -> FrameMask {
        mask(FrameType::GoAway)
    }

    fn frame(&mut self, _: &FrameHeader, _: &[u8], cx: &mut Cx<'_>) -> Verdict {
        let way = cx.way();
        cx.tell(format!("dropped a GOAWAY {way}"));
        Verdict::Drop
    }
}
