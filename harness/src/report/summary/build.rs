//! What the rows share: the newest run of each scenario they read, the columns, a cell per
//! variant (`missing` where a run or variant is absent), and differences to baseline.

use super::model::{signed, Cell, RunInfo};
use crate::results::schema::{ProgramResult, RunResult, VariantResult};
use crate::results::store::StoredRun;

pub const BASELINE: &str = "baseline";
pub const STOP: &str = "stop";
pub const OVERHEAD: &str = "overhead";
pub const THROW: &str = "throw";
/// Upstream's selftests: every file (`upstream-all`) where that ran, else the shipped subset.
const UPSTREAM: [&str; 2] = ["upstream-all", "upstream"];

pub struct Runs<'a> {
    /// One per scenario: the last given of each name (`store::list` orders oldest first).
    newest: Vec<&'a StoredRun>,
    pub variants: Vec<String>,
}

impl<'a> Runs<'a> {
    /// `known`: the variants defined in the repository, each a column even without a run.
    pub fn new(runs: &'a [StoredRun], known: &[String]) -> Runs<'a> {
        let mut newest: Vec<&StoredRun> = Vec::new();
        for run in runs {
            newest.retain(|r| r.run.scenario.name != run.run.scenario.name);
            newest.push(run);
        }
        Runs { variants: columns(known, &newest), newest }
    }

    pub fn run(&self, scenario: &str) -> Option<&'a RunResult> {
        self.newest.iter().find(|r| r.run.scenario.name == scenario).map(|r| &r.run)
    }

    /// The upstream run the rows read, and its name (the preferred one when neither ran).
    pub fn upstream(&self) -> (&'static str, Option<&'a RunResult>) {
        let found = UPSTREAM.iter().find_map(|&name| Some((name, Some(self.run(name)?))));
        found.unwrap_or((UPSTREAM[0], None))
    }

    /// A cell per column: `f` of the variant's result in `run`; `missing` (named after `source`)
    /// where the scenario or the variant has no run.
    pub fn cells(&self, run: Option<&RunResult>, source: &str, f: impl Fn(&VariantResult) -> Cell) -> Vec<Cell> {
        let cell = |name: &String| match run.and_then(|r| r.variant(name)) {
            Some(v) => f(v),
            None => Cell::missing(name, source),
        };
        self.variants.iter().map(cell).collect()
    }

    /// The runs the rows read, in the order the rows do.
    pub fn used(&self) -> Vec<RunInfo> {
        let upstream = self.upstream().0;
        let read = [STOP, OVERHEAD, THROW, upstream];
        let info = |r: &&StoredRun| RunInfo {
            scenario: r.run.scenario.name.clone(),
            date: r.run.provenance.date.clone(),
            harness_commit: r.run.provenance.short_commit().to_string(),
            unit: r.run.provenance.unit.clone(),
            path: r.path.clone(),
        };
        read.iter().filter_map(|name| self.newest.iter().find(|r| r.run.scenario.name == *name)).map(info).collect()
    }
}

/// `baseline` first, then the known variants, then those only the runs name, in the order met.
fn columns(known: &[String], runs: &[&StoredRun]) -> Vec<String> {
    let mut names: Vec<String> = vec![];
    for name in known.iter().chain(runs.iter().flat_map(|r| r.run.variants.iter().map(|v| &v.name))) {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names.sort_by_key(|n| n != BASELINE);
    names
}

/// The scenario's own programs: not the empty programs the harness adds to show a run's fixed cost.
pub fn scenario_programs(v: &VariantResult) -> impl Iterator<Item = &ProgramResult> {
    v.programs.iter().filter(|p| !p.fixed_overhead_reference)
}

pub fn at(scenario: &str, id: &str) -> String {
    format!("{scenario}/{id}")
}

/// Durations are exact counts only under icount.
pub fn counts_instructions(run: Option<&RunResult>) -> bool {
    run.is_some_and(|r| r.provenance.unit == "insns")
}

/// The label in the unit of the run the row reads: `label (unit)`, `label (how; unit)`.
pub fn in_unit(label: &str, run: Option<&RunResult>) -> String {
    match (run, label.strip_suffix(')')) {
        (None, _) => label.to_string(),
        (Some(r), Some(open)) => format!("{open}; {})", r.provenance.unit),
        (Some(r), None) => format!("{label} ({})", r.provenance.unit),
    }
}

/// Adds each number's exact difference to baseline's, where baseline has a number.
fn with_deltas(mut cells: Vec<Cell>) -> Vec<Cell> {
    let base = cells.iter().find(|c| c.variant == BASELINE).and_then(|c| c.value);
    for cell in cells.iter_mut().filter(|c| c.variant != BASELINE) {
        if let (Some(base), Some(value)) = (base, cell.value) {
            // Rounded to drop binary noise of scaled counts (a median / 1000), not real digits.
            let delta = ((value - base) * 1e6).round() / 1e6;
            cell.delta = Some(delta);
            cell.display = format!("{} ({})", cell.display, signed(delta));
        }
    }
    cells
}

/// Deltas where they are exact: counts always, durations under icount.
pub fn deltas_if(exact: bool, cells: Vec<Cell>) -> Vec<Cell> {
    if exact {
        with_deltas(cells)
    } else {
        cells
    }
}
