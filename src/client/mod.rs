//! grpcdoc's own client connection layer (tonic's `Channel` exposes no
//! connectivity state, has no backoff and fails calls with `Cancelled`
//! during a GOAWAY drain; DESIGN §1). Data flows one way: subchannels and
//! connection taps emit events; nothing here renders them.

pub mod backoff;
pub mod body;
pub mod channel;
pub mod conn;
pub mod dial;
pub mod health;
pub mod keepalive;
pub mod settings;
pub mod subchannel;
pub mod tap;
pub mod tls;
pub mod wire;

pub use channel::{Channel, ChannelConfig, Lb, WaitForReady};
pub use settings::ClientSettings;
pub use subchannel::Reconnect;
