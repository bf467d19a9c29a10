//! The harness library: one module per pipeline stage, each with a small typed interface.
//!
//! source -> patch -> configure -> build -> guest image -> boot -> run -> results
//! (`source`, `patch`/`variant`, `kconfig`, `kbuild`, `guestbuild`/`image`, `vm`, `run`, `results`/`table`)

pub mod cache;
pub mod compare;
pub mod console;
pub mod fsutil;
pub mod guestbuild;
pub mod image;
pub mod kbuild;
pub mod kconfig;
pub mod merge;
pub mod metrics;
pub mod patch;
pub mod prereq;
pub mod progress;
pub mod report;
pub mod results;
pub mod run;
pub mod scenario;
pub mod source;
pub mod stats;
pub mod store;
pub mod table;
pub mod upstream;
pub mod variant;
pub mod vm;
