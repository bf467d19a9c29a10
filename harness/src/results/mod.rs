//! What a run produced, with its provenance: the stored schema, reading and writing stored runs,
//! merging shards, statistics, and the metrics a result is judged by.

pub mod merge;
pub mod metrics;
pub mod schema;
pub mod stats;
pub mod store;
