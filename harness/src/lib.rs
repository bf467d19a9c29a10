//! The harness library. A folder per stage of the pipeline, each with a small typed interface:
//!
//! scenario -> kernel (source, patch, configure, build) -> guest (objects, plan, image) ->
//! vm (boot) -> verdict -> results -> report (incl. summary) / compare
//!
//! `pipeline` only sequences the stages; `events` carries what they report to whoever listens.

pub mod ci;
pub mod compare;
pub mod events;
pub mod guest;
pub mod host;
pub mod kernel;
pub mod pipeline;
pub mod report;
pub mod results;
pub mod scenario;
pub mod selftests;
pub mod verdict;
pub mod vm;

#[cfg(test)]
mod testing;
