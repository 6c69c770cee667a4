//! `reset`: resets each connection it finds (TCP RST via SO_LINGER 0, as
//! toxiproxy's reset_peer does), those open when it comes and new ones
//! while it lasts.

use std::sync::Arc;

use super::params::{Args, Msg};
use super::stage::{Cx, Init, Stage};
use super::{Fault, FaultDef, Scope};
use crate::proxy::state::End;

pub(crate) const DEF: FaultDef = FaultDef {
    name: "reset",
    help: "reset each connection, open and new (TCP RST via SO_LINGER 0)",
    params: &[],
    scope: Scope::Connection,
    frames: false,
    build,
};

#[derive(Debug)]
struct Reset;

fn build(_: &Args) -> Result<Arc<dyn Fault>, Msg> {
    Ok(Arc::new(Reset))
}

impl Fault for Reset {
    fn stage(&self, _: &Init) -> Option<Box<dyn Stage>> {
        Some(Box::new(ResetStage))
    }
}

struct ResetStage;

impl Stage for ResetStage {
    fn start(&mut self, cx: &mut Cx<'_>) {
        cx.tell("reset both sides (RST)".into());
        cx.end(End::Reset("reset fault".into()));
    }
}
