//! `reset-peer`: toxiproxy's reset_peer toxic. The first data in its
//! direction after it starts on a connection is not forwarded, and
//! `timeout` later both sides are reset (RST: SO_LINGER 0, so the peer
//! reads ECONNRESET).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::params::{fmt_duration, Args, Kind, Msg, Need, Param, Unit};
use super::stage::{Cx, Init, Piece, Stage};
use super::{Fault, FaultDef, Scope};
use crate::proxy::state::{End, State};

pub(crate) const DEF: FaultDef = FaultDef {
    name: "reset-peer",
    help: "reset the connection (TCP RST) timeout after its first data",
    params: &[Param::new(
        "timeout",
        Kind::Duration(Unit::Millis),
        Need::Default("0s"),
        "from the first data",
    )],
    scope: Scope::Each,
    frames: false,
    build,
};

#[derive(Debug)]
struct ResetPeer {
    timeout: Duration,
}

fn build(a: &Args) -> Result<Arc<dyn Fault>, Msg> {
    Ok(Arc::new(ResetPeer {
        timeout: a.duration("timeout"),
    }))
}

impl Fault for ResetPeer {
    fn stage(&self, _: &Init) -> Option<Box<dyn Stage>> {
        Some(Box::new(ResetPeerStage {
            timeout: self.timeout,
            reset_at: None,
        }))
    }
}

struct ResetPeerStage {
    timeout: Duration,
    reset_at: Option<Instant>,
}

impl Stage for ResetPeerStage {
    fn shapes(&self) -> bool {
        true
    }

    fn data(&mut self, _p: Piece, _out: &mut Vec<Piece>, cx: &mut Cx<'_>) {
        if self.reset_at.is_none() {
            self.reset_at = Some(cx.now + self.timeout);
            let way = cx.way();
            cx.tell(format!(
                "first data {way}: resetting in {}",
                fmt_duration(self.timeout)
            ));
        }
    }

    fn eof(&mut self, _due: &mut Instant, _cx: &mut Cx<'_>) -> bool {
        // After the first data nothing more passes, the end neither.
        self.reset_at.is_none()
    }

    fn wake_at(&self, _: &State) -> Option<Instant> {
        self.reset_at
    }

    fn wake(&mut self, cx: &mut Cx<'_>) {
        self.reset_at = None;
        cx.tell("reset both sides (RST)".into());
        cx.end(End::Reset("reset-peer".into()));
    }
}
