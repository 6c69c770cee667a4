//! `idle-expiry`: an L4 load balancer's idle timeout (AWS NLB 350 s, Azure
//! LB 4 min, GCP 10 min): a connection with no byte either way for `idle`
//! is forgotten - from then on nothing goes through (`then=blackhole`), or
//! the next packet either way gets a reset (`then=reset`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::params::{fmt_duration, Args, Kind, Msg, Need, Param};
use super::stage::{Cx, Init, Stage};
use super::{Fault, FaultDef, Scope};
use crate::proxy::state::{Forgotten, State};

pub(crate) const DEF: FaultDef = FaultDef {
    name: "idle-expiry",
    help: "forget a connection idle this long, as L4 load balancers do (NLB 350s, GCP 10m)",
    params: &[
        Param::new(
            "idle",
            Kind::Duration(super::params::Unit::Millis),
            Need::Required,
            "no byte either way this long",
        ),
        Param::new(
            "then",
            Kind::Choice(&["blackhole", "reset"]),
            Need::Default("blackhole"),
            "drop its packets from then on, or reset it",
        ),
    ],
    scope: Scope::Connection,
    frames: false,
    build,
};

#[derive(Debug)]
struct IdleExpiry {
    idle: Duration,
    reset: bool,
}

fn build(a: &Args) -> Result<Arc<dyn Fault>, Msg> {
    Ok(Arc::new(IdleExpiry {
        idle: a.duration("idle"),
        reset: a.word("then") == "reset",
    }))
}

impl Fault for IdleExpiry {
    fn stage(&self, _: &Init) -> Option<Box<dyn Stage>> {
        Some(Box::new(ExpiryStage {
            idle: self.idle,
            reset: self.reset,
        }))
    }
}

struct ExpiryStage {
    idle: Duration,
    reset: bool,
}

impl Stage for ExpiryStage {
    fn wake_at(&self, st: &State) -> Option<Instant> {
        st.forgotten.is_none().then(|| st.last_active + self.idle)
    }

    fn wake(&mut self, cx: &mut Cx<'_>) {
        if cx.st.forgotten.is_some() || cx.st.last_active + self.idle > cx.now {
            return;
        }
        let (state, then) = if self.reset {
            (Forgotten::Reset, "the next packet either way gets a reset")
        } else {
            (Forgotten::Blackhole, "nothing goes through any more")
        };
        cx.st.forgotten = Some(state);
        cx.tell(format!(
            "idle for {}: forgotten; {then}",
            fmt_duration(self.idle)
        ));
    }
}
