//! grpcdoc, the gRPC connection doctor: sees every connectivity state change
//! and HTTP/2 control frame of a real connection, reproduces the classic gRPC
//! connection failures on loopback, and explains them.

/// `0.1.0 (commit 1a2b3c4d5e6f)`: the version every output names.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("GRPCDOC_COMMIT"), ")");

pub mod body;
pub mod call;
pub mod catalogue;
pub mod cli;
pub mod client;
pub mod commands;
pub mod connectivity;
pub mod diagnose;
pub mod doctor;
pub mod event;
pub mod exit;
pub mod explain;
pub mod fuzzing;
pub mod grpc;
pub mod h2wire;
pub mod history;
pub mod load;
pub mod parse;
pub mod pb;
pub mod pcap;
pub mod pem;
pub mod proxy;
pub mod redact;
pub mod report;
pub mod rpc;
pub mod scenario;
pub mod server;
pub mod target;
pub mod time;
