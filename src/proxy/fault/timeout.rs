//! `timeout`: toxiproxy's timeout toxic. From the moment it starts on a
//! connection (the connection's open, or the toxic's arrival on a
//! connection already open) no data goes through in its direction, and
//! after `timeout` the connection is closed (FIN both ways); 0 keeps it
//! open. Removing it closes the connection too, as toxiproxy does: the
//! data it swallowed is gone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::params::{fmt_duration, Args, Kind, Msg, Need, Param, Unit};
use super::stage::{Cx, Init, Piece, Stage};
use super::{Fault, FaultDef, Scope};
use crate::proxy::state::{End, State};

pub(crate) const DEF: FaultDef = FaultDef {
    name: "timeout",
    help: "stop the data; close the connection timeout after it opened (0: never) or when removed",
    params: &[Param::new(
        "timeout",
        Kind::Duration(Unit::Millis),
        Need::Default("0s"),
        "from the connection's open (or the fault's arrival)",
    )],
    scope: Scope::Each,
    frames: false,
    build,
};

#[derive(Debug)]
struct Timeout {
    timeout: Duration,
}

fn build(a: &Args) -> Result<Arc<dyn Fault>, Msg> {
    Ok(Arc::new(Timeout {
        timeout: a.duration("timeout"),
    }))
}

impl Fault for Timeout {
    fn stage(&self, init: &Init) -> Option<Box<dyn Stage>> {
        Some(Box::new(TimeoutStage {
            timeout: self.timeout,
            close_at: (!self.timeout.is_zero()).then(|| init.now + self.timeout),
            told: false,
        }))
    }
}

struct TimeoutStage {
    timeout: Duration,
    close_at: Option<Instant>,
    told: bool,
}

impl Stage for TimeoutStage {
    fn shapes(&self) -> bool {
        true
    }

    fn data(&mut self, _p: Piece, _out: &mut Vec<Piece>, cx: &mut Cx<'_>) {
        if !std::mem::replace(&mut self.told, true) {
            let way = cx.way();
            cx.tell(format!("dropping the data {way}"));
        }
    }

    fn wake_at(&self, _: &State) -> Option<Instant> {
        self.close_at
    }

    fn wake(&mut self, cx: &mut Cx<'_>) {
        self.close_at = None;
        cx.tell(format!(
            "closed the connection {} after it began",
            fmt_duration(self.timeout)
        ));
        cx.end(End::Close("timeout".into()));
    }

    fn removed(&mut self, cx: &mut Cx<'_>) {
        cx.tell("removed: the connection is closed (its data was dropped)".into());
        cx.end(End::Close("timeout removed".into()));
    }
}
