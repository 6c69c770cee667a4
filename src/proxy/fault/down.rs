//! `down`: resets new connections as they are accepted, before the
//! upstream is dialed: the server looks down (or restarting).

use std::sync::Arc;

use super::params::{Args, Msg};
use super::stage::{Cx, Init, Stage};
use super::{Fault, FaultDef, Scope};
use crate::proxy::state::End;

pub(crate) const DEF: FaultDef = FaultDef {
    name: "down",
    help: "reset new connections before dialing: the server looks down",
    params: &[],
    scope: Scope::Connection,
    frames: false,
    build,
};

#[derive(Debug)]
struct Down;

fn build(_: &Args) -> Result<Arc<dyn Fault>, Msg> {
    Ok(Arc::new(Down))
}

impl Fault for Down {
    fn stage(&self, init: &Init) -> Option<Box<dyn Stage>> {
        init.at_open.then(|| Box::new(DownStage) as Box<dyn Stage>)
    }
}

struct DownStage;

impl Stage for DownStage {
    fn start(&mut self, cx: &mut Cx<'_>) {
        cx.tell("reset a new connection".into());
        cx.end(End::Reset("down".into()));
    }
}
