//! `max-concurrent-streams`: rewrites SETTINGS_MAX_CONCURRENT_STREAMS in
//! the SETTINGS frames of its direction (a hop that announces its own
//! stream limit).

use std::sync::Arc;

use super::params::{Args, Kind, Msg, Need, Param};
use super::stage::{mask, Cx, FrameMask, Init, Stage};
use super::{Fault, FaultDef, Scope};
use crate::h2wire::frame::setting;
use crate::h2wire::{ControlFrame, FrameHeader, FrameType, Verdict};

pub(crate) const DEF: FaultDef = FaultDef {
    name: "max-concurrent-streams",
    help: "rewrite SETTINGS_MAX_CONCURRENT_STREAMS",
    params: &[Param::new(
        "value",
        Kind::Number,
        Need::Required,
        "the value announced",
    )],
    scope: Scope::Each,
    frames: true,
    build,
};

#[derive(Debug)]
struct MaxStreams {
    value: u32,
}

fn build(a: &Args) -> Result<Arc<dyn Fault>, Msg> {
    let value = u32::try_from(a.int("value")).map_err(|_| "`value` is above 2^32-1".to_string())?;
    Ok(Arc::new(MaxStreams { value }))
}

impl Fault for MaxStreams {
    fn stage(&self, _: &Init) -> Option<Box<dyn Stage>> {
        Some(Box::new(MaxStreamsStage { value: self.value }))
    }
}

struct MaxStreamsStage {
    value: u32,
}

impl Stage for MaxStreamsStage {
    fn frames(&self) -> FrameMask {
        mask(FrameType::Settings)
    }

    fn frame(&mut self, h: &FrameHeader, payload: &[u8], cx: &mut Cx<'_>) -> Verdict {
        let Ok(ControlFrame::Settings {
            ack: false,
            mut params,
        }) = ControlFrame::parse(h, payload)
        else {
            return Verdict::Forward;
        };
        params.retain(|(id, _)| *id != setting::MAX_CONCURRENT_STREAMS);
        params.push((setting::MAX_CONCURRENT_STREAMS, self.value));
        let (way, value) = (cx.way(), self.value);
        cx.tell(format!(
            "SETTINGS {way}: MAX_CONCURRENT_STREAMS set to {value}"
        ));
        Verdict::Replace(ControlFrame::Settings { ack: false, params }.encode())
    }
}
