//! `inject-goaway`: sends a GOAWAY on each connection, once both sides'
//! SETTINGS have passed: at once, or every `every` (the first after one
//! period). Toward the client, without `last_stream_id` it announces the
//! last stream the server was given and refuses later ones (RST_STREAM
//! REFUSED_STREAM), as a real GOAWAY's sender does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::params::{Args, Kind, Msg, Need, Param, Unit};
use super::stage::{way, Cx, Init, Stage};
use super::{Direction, Fault, FaultDef, Scope};
use crate::h2wire::{ControlFrame, ErrorCode};
use crate::proxy::state::State;

pub(crate) const DEF: FaultDef = FaultDef {
    name: "inject-goaway",
    help: "send a GOAWAY, at once or every D; toward the client, later streams are refused",
    params: &[
        Param::new("code", Kind::Code, Need::Default("NO_ERROR"), "error code")
            .shown("NO_ERROR|ENHANCE_YOUR_CALM|... or a number"),
        Param::new(
            "last_stream_id",
            Kind::Number,
            Need::Optional("the last seen"),
            "last-stream-id",
        ),
        Param::new("debug", Kind::Text, Need::Default("chaos"), "debug data"),
        Param::new(
            "every",
            Kind::Duration(Unit::Millis),
            Need::Optional("once"),
            "one every D (the first after D), not one at once",
        ),
    ],
    scope: Scope::Connection,
    frames: true,
    build,
};

#[derive(Debug)]
struct InjectGoaway {
    code: ErrorCode,
    last_stream_id: Option<u32>,
    debug: String,
    every: Option<Duration>,
}

fn build(a: &Args) -> Result<Arc<dyn Fault>, Msg> {
    let last_stream_id = a
        .opt_int("last_stream_id")
        .map(|s| u32::try_from(s).map_err(|_| "`last_stream_id` is not a stream id".to_string()))
        .transpose()?;
    if a.opt_duration("every").is_some_and(|d| d.is_zero()) {
        return Err("`every` must be above 0".into());
    }
    Ok(Arc::new(InjectGoaway {
        code: a.code("code"),
        last_stream_id,
        debug: a.text("debug").to_string(),
        every: a.opt_duration("every"),
    }))
}

impl Fault for InjectGoaway {
    fn stage(&self, init: &Init) -> Option<Box<dyn Stage>> {
        Some(Box::new(GoawayStage {
            code: self.code,
            last_stream_id: self.last_stream_id,
            debug: self.debug.clone(),
            every: self.every,
            dir: init.dir,
            next: Some(init.now + self.every.unwrap_or_default()),
        }))
    }
}

struct GoawayStage {
    code: ErrorCode,
    last_stream_id: Option<u32>,
    debug: String,
    every: Option<Duration>,
    dir: Direction,
    next: Option<Instant>,
}

impl Stage for GoawayStage {
    fn wake_at(&self, st: &State) -> Option<Instant> {
        (st.h2c && st.h2.handshaken())
            .then_some(self.next)
            .flatten()
    }

    fn wake(&mut self, cx: &mut Cx<'_>) {
        // The last stream the server was given (never more than announced
        // before); later ones are refused from now on.
        let h2 = &mut cx.st.h2;
        let last = self
            .last_stream_id
            .unwrap_or_else(|| h2.forwarded.min(h2.refuse_above));
        if self.dir.covers(Direction::Downstream) {
            h2.refuse_above = h2.refuse_above.min(last);
        }
        let frame = ControlFrame::GoAway {
            last_stream_id: last,
            code: self.code,
            debug: bytes::Bytes::from(self.debug.clone().into_bytes()),
        }
        .encode();
        cx.inject(self.dir, frame);
        cx.tell(format!(
            "sent GOAWAY {} last_stream_id={last} debug={:?} {}",
            self.code,
            self.debug,
            way(self.dir)
        ));
        self.next = self.every.map(|e| cx.now + e);
    }
}
