//! `drop-ping`: drops HTTP/2 PING frames in its direction - pings, acks or
//! both - the next `count` of them on each connection, or all.

use std::sync::Arc;

use super::params::{Args, Kind, Msg, Need, Param};
use super::stage::{mask, ping_matches, Cx, FrameMask, Init, Stage};
use super::{Fault, FaultDef, Scope};
use crate::h2wire::{FrameHeader, FrameType, Verdict};

pub(crate) const DEF: FaultDef = FaultDef {
    name: "drop-ping",
    help: "drop HTTP/2 PING frames, the next count on each connection or all",
    params: &[
        Param::new(
            "acks",
            Kind::Choice(&["true", "false", "all"]),
            Need::Default("all"),
            "only acks, only pings, or both",
        ),
        Param::new(
            "count",
            Kind::Number,
            Need::Optional("all"),
            "drop the next N only (0: none)",
        ),
    ],
    scope: Scope::Each,
    frames: true,
    build,
};

#[derive(Debug)]
struct DropPing {
    acks: &'static str,
    count: Option<u64>,
}

fn build(a: &Args) -> Result<Arc<dyn Fault>, Msg> {
    Ok(Arc::new(DropPing {
        acks: a.word("acks"),
        count: a.opt_int("count"),
    }))
}

impl Fault for DropPing {
    fn stage(&self, _: &Init) -> Option<Box<dyn Stage>> {
        Some(Box::new(DropPingStage {
            acks: self.acks,
            left: self.count,
        }))
    }
}

struct DropPingStage {
    acks: &'static str,
    left: Option<u64>,
}

impl Stage for DropPingStage {
    fn frames(&self) -> FrameMask {
        mask(FrameType::Ping)
    }

    fn frame(&mut self, h: &FrameHeader, _: &[u8], cx: &mut Cx<'_>) -> Verdict {
        if !ping_matches(self.acks, h) || self.left == Some(0) {
            return Verdict::Forward;
        }
        if let Some(n) = &mut self.left {
            *n -= 1;
        }
        let what = if h.has_flag(crate::h2wire::frame::flags::ACK) {
            "PING ack"
        } else {
            "PING"
        };
        let way = cx.way();
        cx.tell(format!("dropped a {what} {way}"));
        Verdict::Drop
    }
}
