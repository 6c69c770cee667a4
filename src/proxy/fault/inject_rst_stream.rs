//! `inject-rst-stream`: resets new streams both ways - the client gets
//! RST_STREAM with `code`, and the server, once the stream's HEADERS have
//! reached it, RST_STREAM CANCEL - so the connection stays valid.

use std::sync::Arc;

use super::params::{Args, Kind, Msg, Need, Param};
use super::stage::{frame_bytes, mask, Cx, FrameMask, Init, Stage};
use super::{Direction, Fault, FaultDef, Scope};
use crate::h2wire::{ControlFrame, ErrorCode, FrameHeader, FrameType, Verdict};

pub(crate) const DEF: FaultDef = FaultDef {
    name: "inject-rst-stream",
    help: "reset new streams: the client gets code, the server CANCEL",
    params: &[
        Param::new("code", Kind::Code, Need::Default("CANCEL"), "error code")
            .shown("CANCEL|REFUSED_STREAM|... or a number"),
        Param::new(
            "stream",
            Kind::Number,
            Need::Optional("any"),
            "only this stream id (else every new stream)",
        ),
    ],
    scope: Scope::ClientStreams,
    frames: true,
    build,
};

#[derive(Debug)]
struct InjectRst {
    code: ErrorCode,
    stream: Option<u32>,
}

fn build(a: &Args) -> Result<Arc<dyn Fault>, Msg> {
    let stream = a
        .opt_int("stream")
        .map(|s| u32::try_from(s).map_err(|_| "`stream` is not a stream id".to_string()))
        .transpose()?;
    Ok(Arc::new(InjectRst {
        code: a.code("code"),
        stream,
    }))
}

impl Fault for InjectRst {
    fn stage(&self, _: &Init) -> Option<Box<dyn Stage>> {
        Some(Box::new(InjectRstStage {
            code: self.code,
            stream: self.stream,
        }))
    }
}

struct InjectRstStage {
    code: ErrorCode,
    stream: Option<u32>,
}

fn rst(stream_id: u32, code: ErrorCode) -> bytes::Bytes {
    ControlFrame::RstStream { stream_id, code }.encode()
}

impl Stage for InjectRstStage {
    fn frames(&self) -> FrameMask {
        mask(FrameType::Headers)
    }

    fn frame(&mut self, h: &FrameHeader, payload: &[u8], cx: &mut Cx<'_>) -> Verdict {
        let id = h.stream_id;
        // Only a stream's first HEADERS (the trailers of one seen pass).
        let new = id > cx.st.h2.last_stream;
        if !new || self.stream.is_some_and(|s| s != id) {
            return Verdict::Forward;
        }
        cx.inject(Direction::Downstream, rst(id, self.code));
        let code = self.code;
        cx.tell(format!("reset stream {id} with {code} both ways"));
        let mut both = frame_bytes(h, payload).to_vec();
        both.extend_from_slice(&rst(id, ErrorCode::CANCEL));
        Verdict::Replace(both.into())
    }
}
