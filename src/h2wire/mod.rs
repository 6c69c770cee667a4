//! The HTTP/2 frame layer shared by the client tap, the built-in server and
//! the chaos proxy: a frame codec ([`frame`]), a boundary follower ([`scan`])
//! and the [`FrameIo`] wrapper that observes, rewrites and injects frames.

pub mod frame;
pub mod io;
pub mod scan;

pub use frame::{ControlFrame, ErrorCode, FrameHeader, FrameType};
pub use io::{Dir, FrameHook, FrameIo, Injector, Role, Verdict};
