//! What the end-to-end tests of a variant share: run a shipped scenario on some variants and
//! insist that every guest finished, no kernel warning appeared and every check passed; then
//! find a variant's and a program's results by name.

#![allow(dead_code)] // each test crate uses some of these

use harness::events::Terminal;
use harness::host::repo;
use harness::pipeline::{run_scenario, Options};
use harness::results::schema::{ProgramResult, RunResult, VariantResult};
use std::path::{Path, PathBuf};

/// Runs a shipped scenario (`scenarios/<scenario>`), prints its table; returns the run and where
/// it was stored.
pub fn run(scenario: &str, opts: &Options) -> (RunResult, PathBuf) {
    let path = repo::scenarios_dir().join(scenario);
    let (run, stored) = run_scenario(&Terminal, &path, opts).expect("scenario runs");
    println!("{}", harness::report::text::render(&run));
    (run, stored)
}

/// Icount options for `variants` (all of the scenario's when empty), results under `results`.
pub fn icount(variants: &[&str], results: &Path) -> Options {
    Options { only: variants.iter().map(|v| v.to_string()).collect(), ..Options::icount(results.to_path_buf()) }
}

pub fn run_clean(scenario: &str, variants: &[&str], results: &Path) -> RunResult {
    let (run, _) = run(scenario, &icount(variants, results));
    for v in &run.variants {
        assert!(v.complete, "{scenario} {}: guest did not finish: {:?}", v.name, v.failure);
        assert!(v.kernel_warnings.is_empty(), "{scenario} {}: {:?}", v.name, v.kernel_warnings);
        for p in &v.programs {
            let failed: Vec<_> = p.checks.iter().filter(|c| !c.ok).collect();
            assert!(failed.is_empty(), "{scenario} {} {}: {failed:?}", v.name, p.id);
        }
    }
    run
}

pub fn variant<'a>(run: &'a RunResult, name: &str) -> &'a VariantResult {
    run.variant(name).expect("variant ran")
}

pub fn program<'a>(variant: &'a VariantResult, id: &str) -> &'a ProgramResult {
    variant.program(id).unwrap_or_else(|| panic!("{}: no program {id}", variant.name))
}
