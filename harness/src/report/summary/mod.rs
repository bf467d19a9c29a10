//! `harness summary`: one table of the newest run of each scenario it reads, a column per
//! variant: correctness (`stop`, upstream's selftests), normal-path cost (`overhead`), stop
//! cost (`stop`, `throw`), load-time cost and coverage of resource kinds (`stop`).
//!
//! `build` makes the model (`model`), the renderers lay it out; neither knows the other's parts.

mod build;
mod correctness;
mod cost;
mod coverage;
mod model;
mod render;

pub use model::{Cell, Group, Row, RunInfo, Summary};
pub use render::html;

use crate::results::store::StoredRun;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned plain text.
    Terminal,
    /// A GitHub / mailing-list table with the runs it comes from.
    Markdown,
    /// The model: rows with a cell per variant {value, display, source, delta}.
    Json,
}

/// The summary of `runs` (as `store::latest` gives them; of several runs of a scenario, the
/// last one given counts), a column for each of the `known` variants (those defined in the
/// repository: a variant without a run shows as `missing`) and for each variant the runs name.
pub fn build(runs: &[StoredRun], known: &[String]) -> Summary {
    let runs = build::Runs::new(runs, known);
    let mut rows = correctness::rows(&runs);
    rows.extend(cost::normal_path(&runs));
    rows.extend(cost::stop(&runs));
    rows.extend(cost::load_time(&runs));
    rows.extend(coverage::rows(&runs));
    Summary { variants: runs.variants.clone(), rows, runs: runs.used() }
}

pub fn render(summary: &Summary, format: Format) -> String {
    match format {
        Format::Terminal => render::terminal(summary),
        Format::Markdown => render::markdown(summary),
        Format::Json => render::json(summary),
    }
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
