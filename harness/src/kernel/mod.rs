//! Source -> patch -> configure -> build: one kernel per variant.

pub mod build;
pub mod kconfig;
pub mod patch;
pub mod prune;
pub mod seed;
pub mod source;
pub mod variant;
