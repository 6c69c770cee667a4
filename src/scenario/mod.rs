//! `grpcdoc scenario`: a failure replayed from a YAML file on loopback (a
//! server, optionally a chaos proxy and a middlebox, clients with load, a
//! timeline of steps) and expectations checked over what happened; with
//! variants, the failure and its fix side by side.

/// The JSON Schema of the file format (`grpcdoc scenario --schema`).
pub const SCHEMA: &str = include_str!("schema.json");

mod check;
pub mod clients;
pub mod expect;
pub mod load;
pub mod model;
pub mod plan;
pub mod process;
pub mod record;
pub mod recorded;
pub mod run;
pub mod servers;
mod shape;
pub mod shipped;
pub mod timeline;
pub mod verdict;
mod yaml;
