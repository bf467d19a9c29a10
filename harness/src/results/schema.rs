//! The stored schema: what a run measured and how each program fared against its expectations,
//! with the provenance a reader needs to trust or reproduce it. Stored as versioned JSON.

use crate::host::repo::short_commit;
use crate::results::stats;
use crate::scenario::{ExpectedVerdict, Threshold};
use crate::vm::qemu::GuestFailure;
use crate::vm::qemu::{Accel, Mode};
use bpfh_protocol::{LoadInfo, ObjectCount, ProgType, Timing, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub schema_version: u32,
    pub scenario: ScenarioInfo,
    pub provenance: Provenance,
    pub variants: Vec<VariantResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub description: String,
    pub file: PathBuf,
    /// The scenario's regression thresholds when it ran, so that `compare` needs only results.
    #[serde(default)]
    pub thresholds: BTreeMap<String, Threshold>,
}

/// How and where the numbers were obtained.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Provenance {
    pub date: String,
    pub harness_commit: String,
    pub harness_dirty: bool,
    pub host_cpu: String,
    pub qemu_version: String,
    pub accel: Accel,
    pub mode: Mode,
    /// Unit of every duration in this file: "insns" (icount) or "ns" (wallclock).
    pub unit: String,
    /// A sentence a reader can quote: what the numbers are.
    pub measurement: String,
}

impl Provenance {
    /// The harness commit as shown and stamped.
    pub fn short_commit(&self) -> &str {
        short_commit(&self.harness_commit)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VariantResult {
    pub name: String,
    pub description: String,
    pub kernel_version: String,
    pub build_key: String,
    pub patch_hash: String,
    pub config_hash: String,
    pub compiler: String,
    /// Wall time of the emulated boot up to the runner's first record (not a kernel metric); of
    /// the restore of the image's saved boot when `restored_boot`.
    pub boot_seconds: Option<f64>,
    /// The guest was restored from its image's saved boot (where the runner waits for the host)
    /// instead of booted.
    #[serde(default)]
    pub restored_boot: bool,
    pub console_log: PathBuf,
    /// False when the guest did not run its plan to the end; `failure` says why.
    pub complete: bool,
    pub failure: Option<GuestFailure>,
    pub guest_errors: Vec<String>,
    /// Excerpts of kernel warnings, bugs and the like from the console (each fails the run).
    #[serde(default)]
    pub kernel_warnings: Vec<String>,
    /// Kernel warnings the scenario expects (`allow_kernel_messages`): kept, but not failures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_kernel_warnings: Vec<String>,
    pub programs: Vec<ProgramResult>,
    /// How many boots the samples were pooled from (wallclock runs boot each variant several
    /// times, interleaved with the other variants; icount runs boot once).
    #[serde(default = "one")]
    pub boots: u32,
    /// The shipped variant this one (a series from the command line) is a revision of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_of: Option<String>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProgramResult {
    pub id: String,
    pub object: String,
    pub program: String,
    pub prog_type: ProgType,
    /// Added by the harness to show the fixed cost of a run (an empty program of this type).
    pub fixed_overhead_reference: bool,
    pub verdict: Option<Verdict>,
    pub load_info: Option<LoadInfo>,
    pub retval: Option<u32>,
    pub timing: Option<Timing>,
    pub repeat: Option<u32>,
    pub samples: Vec<u64>,
    pub summary: Option<Summary>,
    /// pid 1's task reference count before and after the runs, when counted.
    pub task_refs: Option<RefCount>,
    /// cpumask references the warm-up run took and dropped, when counted.
    #[serde(default)]
    pub cpumasks: Option<ObjectCount>,
    /// errno of the test runs the kernel failed (ECANCELED: cancelled by a watchdog), and how many.
    #[serde(default)]
    pub run_errno: Option<i32>,
    #[serde(default)]
    pub failed_runs: u32,
    /// Events of the traced run, when the scenario asked for a trace.
    #[serde(default)]
    pub trace: Option<Vec<String>>,
    pub checks: Vec<Check>,
    /// Why the program was not checked (an upstream program the harness or the kernel cannot
    /// load as upstream does): neither passed nor failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Set for an upstream selftest program: its file, section and upstream's expectation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Origin>,
    /// The variant whose expectations the checks are, when an unmet one is only a difference
    /// from it (a series from the command line that declares nothing about itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub differs_from: Option<String>,
    /// For a program of a scenario with a stop budget (`stop:`): whether this variant could
    /// stop it, and what the stops cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StopResult>,
}

/// A program run under the stop contract's budget (`kernel.bpf_watchdog_budget_ns`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopResult {
    /// The budget of each test run, in guest ns (instructions under icount).
    pub budget_ns: u64,
    /// The kinds of resource the program holds when the budget expires (`task`, `cpumask`,
    /// `local_object`, `kptr_in_map`, `iterator`, `rcu`, ...), as the scenario declares them.
    pub holds: Vec<String>,
    /// Why this variant cannot stop the program (its kernel has no watchdog sysctl, or the
    /// scenario declares the reason); None when it is expected to stop it.
    pub not_stoppable: Option<String>,
    /// Per stopped sample: guest ns from the deadline (the test run's start plus the budget) to
    /// the return of `BPF_PROG_TEST_RUN`, cleanup included. Empty when no sample was stopped.
    pub latency: Vec<u64>,
}

impl ProgramResult {
    /// The kernel cancelled its test runs (`ECANCELED`): the program was stopped.
    pub fn stopped(&self) -> bool {
        self.run_errno == Some(ECANCELED)
    }
}

/// The errno of a stopped test run (the stop contract).
pub const ECANCELED: i32 = 125;

/// What upstream expects of a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    pub verdict: ExpectedVerdict,
    pub msgs: Vec<String>,
    pub retval: Option<i32>,
}

/// Where an upstream result came from, and the variant's declared difference, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub file: String,
    pub section: String,
    pub expected: Expected,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The reason of the variant's declared difference for this program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_difference: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefCount {
    pub before: i64,
    pub after: i64,
}

impl ProgramResult {
    /// Every check held; for a result that only `differs_from` another variant's expectations,
    /// only the guest's own errors fail it.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.ok || (self.differs_from.is_some() && c.what != "guest"))
    }
}

/// The references a program holds, from its id: a `_`-separated token `refs<N>` holds N, and the
/// id without it names the series (`throw_depth1_refs4` -> (`throw_depth1`, 4)).
pub fn refs_hint(id: &str) -> Option<(String, u32)> {
    let tokens: Vec<&str> = id.split('_').collect();
    let (index, n) = tokens.iter().enumerate().find_map(|(i, t)| Some((i, t.strip_prefix("refs")?.parse().ok()?)))?;
    let series: Vec<&str> = tokens.iter().enumerate().filter(|(i, _)| *i != index).map(|(_, t)| *t).collect();
    Some((series.join("_"), n))
}

/// The first result of each program id, in the order met: the programs of a run, whichever
/// variants have them.
pub fn distinct_programs<'a>(programs: impl IntoIterator<Item = &'a ProgramResult>) -> Vec<&'a ProgramResult> {
    let mut seen: Vec<&ProgramResult> = Vec::new();
    for p in programs {
        if !seen.iter().any(|s| s.id == p.id) {
            seen.push(p);
        }
    }
    seen
}

impl VariantResult {
    /// The result of program `id`, if the variant has one.
    pub fn program(&self, id: &str) -> Option<&ProgramResult> {
        self.programs.iter().find(|p| p.id == id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub median: f64,
    pub min: u64,
    pub max: u64,
    pub n: usize,
}

impl Summary {
    pub fn of(samples: &[u64]) -> Option<Summary> {
        let as_f64: Vec<f64> = samples.iter().map(|&s| s as f64).collect();
        Some(Summary {
            median: stats::median(&as_f64)?,
            min: *samples.iter().min()?,
            max: *samples.iter().max()?,
            n: samples.len(),
        })
    }
}

/// One expectation and whether it held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub what: String,
    pub ok: bool,
    pub detail: String,
}

impl Check {
    pub fn new(what: &str, ok: bool, detail: String) -> Check {
        Check { what: what.into(), ok, detail }
    }
}

impl RunResult {
    /// The result of variant `name`, if the run has it.
    pub fn variant(&self, name: &str) -> Option<&VariantResult> {
        self.variants.iter().find(|v| v.name == name)
    }

    /// Every variant was built and its guest ran its plan to the end; false marks a partial run.
    pub fn complete(&self) -> bool {
        self.variants.iter().all(|v| v.complete)
    }

    /// Every program in every variant met its expectations, and every guest finished.
    pub fn passed(&self) -> bool {
        self.variants.iter().all(|v| {
            v.complete
                && v.guest_errors.is_empty()
                && v.kernel_warnings.is_empty()
                && v.programs.iter().all(|p| p.passed())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_counts_come_from_the_program_id() {
        assert_eq!(refs_hint("throw_refs4"), Some(("throw".into(), 4)));
        assert_eq!(refs_hint("throw_depth1_refs1"), Some(("throw_depth1".into(), 1)));
        assert_eq!(refs_hint("keep_refs0"), Some(("keep".into(), 0)));
        assert_eq!(refs_hint("task_ref_tc"), None);
        assert_eq!(refs_hint("refsx_a"), None);
    }

    #[test]
    fn median_of_even_and_odd_sample_counts() {
        assert_eq!(Summary::of(&[3, 1, 2]).unwrap().median, 2.0);
        let s = Summary::of(&[4, 1, 3, 2]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (2.5, 1, 4, 4));
        assert!(Summary::of(&[]).is_none());
    }
}
