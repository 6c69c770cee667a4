//! `grpcdoc load`: a plan ([`plan::LoadPlan`], made by [`plan::prepare`]
//! for `load` and scenario clients alike) run by workers over
//! grpcdoc's channel, each call on the wire as gRPC over HTTP/2
//! ([`call`]), recorded into HDR histograms ([`stats`]); retries from the
//! service config ([`retry`]); thresholds for CI ([`failon`]); reports of
//! several machines merged ([`merge`]).

pub mod call;
pub mod data;
pub mod engine;
pub mod expect;
pub mod failon;
pub mod merge;
pub mod pace;
pub mod plan;
pub mod report;
pub mod retry;
pub mod stages;
pub mod stats;
pub mod template;
pub mod threads;

pub(crate) use plan::{prepare, LoadRequest};
