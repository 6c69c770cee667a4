//! `grpcdoc scenario`: a failure replayed from a YAML file on loopback (a
//! server, optionally a chaos proxy, clients with load, a timeline of steps)
//! and expectations checked over what happened.

/// The JSON Schema of the file format (`grpcdoc scenario --schema`).
pub const SCHEMA: &str = include_str!("schema.json");

pub mod expect;
pub mod load;
pub mod model;
pub mod record;
pub mod run;
