//! What the end-to-end tests of a variant share: run a shipped scenario on some variants and
//! insist that every guest finished, no kernel warning appeared and every check passed; then
//! find a variant's and a program's results by name.

use harness::results::{ProgramResult, RunResult, VariantResult};
use harness::run::{run_scenario, Options};
use std::path::Path;

pub fn run_clean(scenario: &str, variants: &[&str], results: &Path) -> RunResult {
    let opts =
        Options { only: variants.iter().map(|v| v.to_string()).collect(), ..Options::icount(results.to_path_buf()) };
    let path = harness::guestbuild::repo_root().join("scenarios").join(scenario);
    let (run, _) = run_scenario(&path, &opts).expect("scenario runs");
    println!("{}", harness::table::render(&run));
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
    run.variants.iter().find(|v| v.name == name).expect("variant ran")
}

pub fn program<'a>(variant: &'a VariantResult, id: &str) -> &'a ProgramResult {
    variant.programs.iter().find(|p| p.id == id).unwrap_or_else(|| panic!("{}: no program {id}", variant.name))
}
