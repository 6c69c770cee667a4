//! `slow-close`: when one side ends its direction (FIN), the end reaches
//! the other side `delay` later (toxiproxy's slow_close toxic).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::params::{fmt_duration, Args, Kind, Msg, Need, Param, Unit};
use super::stage::{Cx, Init, Stage};
use super::{Fault, FaultDef, Scope};

pub(crate) const DEF: FaultDef = FaultDef {
    name: "slow-close",
    help: "pass each side's close (FIN) on delay later",
    params: &[Param::new(
        "delay",
        Kind::Duration(Unit::Millis),
        Need::Required,
        "how long the other side stays open",
    )],
    scope: Scope::Each,
    frames: false,
    build,
};

#[derive(Debug)]
struct SlowClose {
    delay: Duration,
}

fn build(a: &Args) -> Result<Arc<dyn Fault>, Msg> {
    Ok(Arc::new(SlowClose {
        delay: a.duration("delay"),
    }))
}

impl Fault for SlowClose {
    fn stage(&self, _: &Init) -> Option<Box<dyn Stage>> {
        Some(Box::new(SlowCloseStage { delay: self.delay }))
    }
}

struct SlowCloseStage {
    delay: Duration,
}

impl Stage for SlowCloseStage {
    fn shapes(&self) -> bool {
        true
    }

    fn eof(&mut self, due: &mut Instant, cx: &mut Cx<'_>) -> bool {
        *due += self.delay;
        let way = cx.way();
        cx.tell(format!(
            "holding the close {way} for {}",
            fmt_duration(self.delay)
        ));
        true
    }
}
