//! `harness plan`: the nightly's jobs, from the scenarios and variants as `scenario` selects them.
//! One measuring job per variant runs every scenario that names it (so a night builds each
//! kernel once), and one debug-kernel job per variant does the same under KASAN and lockdep;
//! `shards` lists the (scenario, variant) pairs the merged results must hold.

use crate::host::repo;
use crate::kernel::variant::{self, Variant};
use crate::scenario::Scenario;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// The scenario file, as given.
    pub scenario: PathBuf,
    /// The scenario's name (its results directory).
    pub name: String,
    pub variant: String,
}

/// Every scenario one variant runs, in one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub variant: String,
    pub scenarios: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub shards: Vec<Shard>,
    /// Measuring jobs, one per variant (icount under TCG).
    pub jobs: Vec<Job>,
    /// Debug-kernel jobs, one per variant: a correctness gate, not merged with the numbers.
    pub debug: Vec<Job>,
}

/// The plan for `scenarios` (in the order given) on the variants under `variants_dir`.
pub fn plan(scenarios: &[PathBuf], bpf_source_dir: &Path, variants_dir: &Path) -> anyhow::Result<Plan> {
    let mut shards = Vec::new();
    for path in scenarios {
        let scenario = Scenario::load(path, bpf_source_dir)?;
        // Relative to the repository, so that a job in another checkout finds the same file.
        let shown = path.strip_prefix(repo::root()).unwrap_or(path);
        for v in variant::select(&scenario, &[], variants_dir, &[])? {
            shards.push(Shard { scenario: shown.to_path_buf(), name: scenario.name.clone(), variant: v.name });
        }
    }
    let mut jobs: Vec<Job> = Vec::new();
    for v in Variant::discover(variants_dir)? {
        let scenarios: Vec<PathBuf> =
            shards.iter().filter(|s| s.variant == v.name).map(|s| s.scenario.clone()).collect();
        if !scenarios.is_empty() {
            jobs.push(Job { variant: v.name, scenarios });
        }
    }
    Ok(Plan { shards, debug: jobs.clone(), jobs })
}

impl Plan {
    /// One line per job, for people.
    pub fn render(&self) -> String {
        let line = |kind: &str, j: &Job| {
            let files: Vec<String> = j.scenarios.iter().map(|s| s.display().to_string()).collect();
            format!("{kind} {}: {}\n", j.variant, files.join(" "))
        };
        let mut out: String = self.jobs.iter().map(|j| line("measure", j)).collect();
        out.extend(self.debug.iter().map(|j| line("debug-kernel", j)));
        out.push_str(&format!(
            "{} shards (scenario x variant), {} kernel builds\n",
            self.shards.len(),
            self.jobs.len() + self.debug.len()
        ));
        out
    }

    /// The shards the results in `names` (scenario name, variant name) do not hold.
    pub fn missing<'a>(&'a self, present: &[(String, String)]) -> Vec<&'a Shard> {
        self.shards.iter().filter(|s| !present.iter().any(|(n, v)| *n == s.name && *v == s.variant)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Vec<PathBuf> {
        crate::scenario::shipped(&repo::scenarios_dir()).unwrap()
    }

    #[test]
    fn every_variant_builds_once_and_runs_every_scenario_that_names_it() {
        let plan = plan(&shipped(), &repo::bpf_source_dir(), &repo::variants_dir()).unwrap();
        let variants = Variant::discover(&repo::variants_dir()).unwrap();
        assert_eq!(plan.jobs.len(), variants.len(), "one measuring job per variant");
        assert_eq!(plan.debug, plan.jobs);
        for shard in &plan.shards {
            let job = plan.jobs.iter().find(|j| j.variant == shard.variant).unwrap();
            assert!(job.scenarios.contains(&shard.scenario), "{shard:?} is in its variant's job");
        }
        let throw = plan.shards.iter().filter(|s| s.name == "throw").map(|s| s.variant.as_str()).collect::<Vec<_>>();
        assert_eq!(throw, ["baseline", "exception-unwind"], "a scenario's own variant list is kept");
        let simple = plan.shards.iter().filter(|s| s.name == "simple").count();
        assert_eq!(simple, variants.len(), "a scenario without a list runs on every variant");
        let json: Plan = serde_json::from_str(&serde_json::to_string(&plan).unwrap()).unwrap();
        assert_eq!(json, plan);
        assert!(plan.render().contains(&format!("{} kernel builds", 2 * variants.len())));
    }

    #[test]
    fn missing_shards_are_named() {
        let plan = plan(&shipped(), &repo::bpf_source_dir(), &repo::variants_dir()).unwrap();
        let present: Vec<(String, String)> =
            plan.shards.iter().skip(1).map(|s| (s.name.clone(), s.variant.clone())).collect();
        assert_eq!(plan.missing(&present), [&plan.shards[0]]);
    }
}
