//! `delay-ping`: holds HTTP/2 PING frames in its direction for `delay`,
//! then sends them between two frames; the rest of the connection goes on.

use std::sync::Arc;
use std::time::Duration;

use super::params::{fmt_duration, Args, Kind, Msg, Need, Param, Unit};
use super::stage::{frame_bytes, mask, ping_matches, Cx, FrameMask, Init, Stage};
use super::{Fault, FaultDef, Scope};
use crate::h2wire::{FrameHeader, FrameType, Verdict};

pub(crate) const DEF: FaultDef = FaultDef {
    name: "delay-ping",
    help: "hold HTTP/2 PING frames for delay; the rest goes on",
    params: &[
        Param::new(
            "acks",
            Kind::Choice(&["true", "false", "all"]),
            Need::Default("all"),
            "only acks, only pings, or both",
        ),
        Param::new(
            "delay",
            Kind::Duration(Unit::Millis),
            Need::Required,
            "how long each is held",
        ),
    ],
    scope: Scope::Each,
    frames: true,
    build,
};

#[derive(Debug)]
struct DelayPing {
    acks: &'static str,
    delay: Duration,
}

fn build(a: &Args) -> Result<Arc<dyn Fault>, Msg> {
    Ok(Arc::new(DelayPing {
        acks: a.word("acks"),
        delay: a.duration("delay"),
    }))
}

impl Fault for DelayPing {
    fn stage(&self, _: &Init) -> Option<Box<dyn Stage>> {
        Some(Box::new(DelayPingStage {
            acks: self.acks,
            delay: self.delay,
        }))
    }
}

struct DelayPingStage {
    acks: &'static str,
    delay: Duration,
}

impl Stage for DelayPingStage {
    fn frames(&self) -> FrameMask {
        mask(FrameType::Ping)
    }

    fn frame(&mut self, h: &FrameHeader, payload: &[u8], cx: &mut Cx<'_>) -> Verdict {
        if !ping_matches(self.acks, h) {
            return Verdict::Forward;
        }
        let at = cx.now + self.delay;
        cx.inject_at(cx.dir, at, frame_bytes(h, payload));
        let way = cx.way();
        cx.tell(format!(
            "held a PING {way} for {}",
            fmt_duration(self.delay)
        ));
        Verdict::Drop
    }
}
