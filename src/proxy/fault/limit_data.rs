//! `limit-data`: after `bytes` in its direction the connection is closed
//! (toxiproxy's limit_data toxic): a piece that would pass the limit is
//! cut at it, and the close follows the last byte.

use std::sync::Arc;

use super::params::{Args, Kind, Msg, Need, Param};
use super::stage::{Cx, Init, Piece, Stage};
use super::{Fault, FaultDef, Scope};
use crate::proxy::state::End;

pub(crate) const DEF: FaultDef = FaultDef {
    name: "limit-data",
    help: "close the connection after bytes in this direction",
    params: &[Param::new(
        "bytes",
        Kind::Bytes(1),
        Need::Required,
        "bytes forwarded before the close",
    )],
    scope: Scope::Each,
    frames: false,
    build,
};

#[derive(Debug)]
struct LimitData {
    bytes: u64,
}

fn build(a: &Args) -> Result<Arc<dyn Fault>, Msg> {
    Ok(Arc::new(LimitData {
        bytes: a.int("bytes"),
    }))
}

impl Fault for LimitData {
    fn stage(&self, _: &Init) -> Option<Box<dyn Stage>> {
        Some(Box::new(LimitStage {
            limit: self.bytes,
            sent: 0,
            done: false,
        }))
    }
}

struct LimitStage {
    limit: u64,
    sent: u64,
    done: bool,
}

impl Stage for LimitStage {
    fn shapes(&self) -> bool {
        true
    }

    fn data(&mut self, mut p: Piece, out: &mut Vec<Piece>, cx: &mut Cx<'_>) {
        if self.done {
            return;
        }
        let room = self.limit - self.sent;
        if (p.data.len() as u64) < room {
            self.sent += p.data.len() as u64;
            out.push(p);
            return;
        }
        p.data.truncate(room as usize);
        self.sent = self.limit;
        self.done = true;
        let way = cx.way();
        cx.tell(format!("{} bytes forwarded {way}: closing", self.sent));
        p.then = Some(End::Close("limit-data".into()));
        out.push(p);
    }
}
