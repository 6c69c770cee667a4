//! Connectivity states and their legal moves (grpc
//! `doc/connectivity-semantics-and-api.md`), and the aggregate state of a
//! channel over its subchannels (grpc-go's `ConnectivityStateEvaluator`).

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    Idle,
    Connecting,
    Ready,
    TransientFailure,
    Shutdown,
}

impl State {
    pub const ALL: [State; 5] = [
        State::Idle,
        State::Connecting,
        State::Ready,
        State::TransientFailure,
        State::Shutdown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Idle => "IDLE",
            State::Connecting => "CONNECTING",
            State::Ready => "READY",
            State::TransientFailure => "TRANSIENT_FAILURE",
            State::Shutdown => "SHUTDOWN",
        }
    }

    /// Whether `self -> to` is a move the spec allows. READY never goes
    /// straight to CONNECTING (it passes through IDLE), and TRANSIENT_FAILURE
    /// leaves only for CONNECTING, after the backoff.
    pub fn can_move_to(self, to: State) -> bool {
        use State::*;
        match (self, to) {
            (_, Shutdown) => self != Shutdown,
            (Idle, Connecting) => true,
            (Connecting, Ready | TransientFailure | Idle) => true,
            (Ready, Idle | TransientFailure) => true,
            (TransientFailure, Connecting) => true,
            _ => false,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The channel's state from its subchannels': READY if any is; else
/// CONNECTING if any is; else IDLE if any is; else TRANSIENT_FAILURE (also
/// with no subchannel at all).
pub fn aggregate(states: impl IntoIterator<Item = State>) -> State {
    let (mut connecting, mut idle) = (false, false);
    for s in states {
        match s {
            State::Ready => return State::Ready,
            State::Connecting => connecting = true,
            State::Idle => idle = true,
            _ => {}
        }
    }
    if connecting {
        State::Connecting
    } else if idle {
        State::Idle
    } else {
        State::TransientFailure
    }
}

/// Sticky TRANSIENT_FAILURE (gRFC A62), as grpc-go 1.73 and C-core 1.85
/// show a watcher: a channel in TRANSIENT_FAILURE stays there while its
/// subchannels try again (CONNECTING, IDLE) and leaves it only when one is
/// READY (or the channel shuts down), instead of flapping
/// TRANSIENT_FAILURE <-> CONNECTING.
pub fn sticky(prev: State, next: State) -> State {
    match (prev, next) {
        (State::TransientFailure, State::Connecting | State::Idle) => State::TransientFailure,
        _ => next,
    }
}

#[cfg(test)]
mod tests {
    use super::State::*;
    use super::*;

    #[test]
    fn legal_moves() {
        assert!(Idle.can_move_to(Connecting));
        assert!(Ready.can_move_to(Idle));
        assert!(!Ready.can_move_to(Connecting));
        assert!(!TransientFailure.can_move_to(Ready));
        assert!(!Idle.can_move_to(Ready));
        assert!(!Shutdown.can_move_to(Shutdown));
        assert!(Ready.can_move_to(Shutdown));
    }

    #[test]
    fn aggregate_rules() {
        assert_eq!(aggregate([TransientFailure, Ready, Idle]), Ready);
        assert_eq!(aggregate([TransientFailure, Connecting, Idle]), Connecting);
        assert_eq!(aggregate([TransientFailure, Idle]), Idle);
        assert_eq!(aggregate([TransientFailure, Shutdown]), TransientFailure);
        assert_eq!(aggregate([]), TransientFailure);
    }

    #[test]
    fn transient_failure_is_sticky_until_ready() {
        assert_eq!(sticky(TransientFailure, Connecting), TransientFailure);
        assert_eq!(sticky(TransientFailure, Idle), TransientFailure);
        assert_eq!(sticky(TransientFailure, Ready), Ready);
        assert_eq!(sticky(TransientFailure, Shutdown), Shutdown);
        assert_eq!(sticky(Connecting, TransientFailure), TransientFailure);
        assert_eq!(sticky(Ready, Idle), Idle);
    }
}
