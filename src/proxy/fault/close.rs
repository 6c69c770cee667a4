//! `close`: closes each connection it finds (FIN both ways), those open
//! when it comes and new ones while it lasts.

use std::sync::Arc;

use super::params::{Args, Msg};
use super::stage::{Cx, Init, Stage};
use super::{Fault, FaultDef, Scope};
use crate::proxy::state::End;

pub(crate) const DEF: FaultDef = FaultDef {
    name: "close",
    help: "close each connection, open and new (TCP FIN)",
    params: &[],
    scope: Scope::Connection,
    frames: false,
    build,
};

#[derive(Debug)]
struct Close;

fn build(_: &Args) -> Result<Arc<dyn Fault>, Msg> {
    Ok(Arc::new(Close))
}

impl Fault for Close {
    fn stage(&self, _: &Init) -> Option<Box<dyn Stage>> {
        Some(Box::new(CloseStage))
    }
}

struct CloseStage;

impl Stage for CloseStage {
    fn start(&mut self, cx: &mut Cx<'_>) {
        cx.tell("closed both sides (FIN)".into());
        cx.end(End::Close("close fault".into()));
    }
}
