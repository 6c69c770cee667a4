//! `blackhole`: nothing is forwarded in its direction while it lasts and
//! both sockets stay open: a half-open peer, or a NAT that forgot the
//! flow. With `existing=true` only connections open when it came act so
//! (new connections work).

use std::sync::Arc;

use super::params::{Args, Kind, Msg, Need, Param};
use super::stage::{Cx, Init, Stage};
use super::{Fault, FaultDef, Scope};

pub(crate) const DEF: FaultDef = FaultDef {
    name: "blackhole",
    help: "stop forwarding, keep both sockets open (a half-open peer)",
    params: &[Param::new(
        "existing",
        Kind::Choice(&["true", "false"]),
        Need::Default("false"),
        "only connections open when the fault was added",
    )],
    scope: Scope::Each,
    frames: false,
    build,
};

#[derive(Debug)]
struct Blackhole {
    existing: bool,
}

fn build(a: &Args) -> Result<Arc<dyn Fault>, Msg> {
    Ok(Arc::new(Blackhole {
        existing: a.word("existing") == "true",
    }))
}

impl Fault for Blackhole {
    fn stage(&self, init: &Init) -> Option<Box<dyn Stage>> {
        (!(self.existing && init.at_open)).then(|| Box::new(Hole) as Box<dyn Stage>)
    }
}

struct Hole;

impl Stage for Hole {
    fn start(&mut self, cx: &mut Cx<'_>) {
        let way = cx.way();
        cx.tell(format!("forwarding stopped {way}"));
    }

    fn holds(&self) -> bool {
        true
    }
}
