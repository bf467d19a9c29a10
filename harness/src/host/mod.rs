//! What every stage leans on: the cache, atomic file writes, the host's prerequisites, the
//! repository's paths and running a command into a log.

pub mod cache;
pub mod command;
pub mod fsutil;
pub mod prereq;
pub mod repo;
