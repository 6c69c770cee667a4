//! `grpcdoc scenario`: a failure replayed from a YAML file on loopback (a
//! server, optionally a chaos proxy, clients with load, a timeline of steps)
//! and expectations checked over what happened.

pub mod expect;
pub mod load;
pub mod model;
pub mod run;
