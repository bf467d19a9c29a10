//! Stage 7, results: what a run measured, checked against the scenario's expectations, with the
//! provenance a reader needs to trust or reproduce it. Stored as versioned JSON.

use crate::fsutil::write_atomic;
use crate::scenario::{ExpectedVerdict, ProgramSpec, TaskRefs};
use crate::vm::{Accel, GuestFailure, Mode};
use bpfh_protocol::{LoadInfo, ProgType, Record, Timing, Verdict};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VariantResult {
    pub name: String,
    pub description: String,
    pub kernel_version: String,
    pub build_key: String,
    pub patch_hash: String,
    pub config_hash: String,
    pub compiler: String,
    /// Wall time of the emulated boot up to the runner's first record (not a kernel metric).
    pub boot_seconds: Option<f64>,
    pub console_log: PathBuf,
    /// False when the guest did not run its plan to the end; `failure` says why.
    pub complete: bool,
    pub failure: Option<GuestFailure>,
    pub guest_errors: Vec<String>,
    /// Excerpts of kernel warnings, bugs and the like from the console (each fails the run).
    pub kernel_warnings: Vec<String>,
    pub programs: Vec<ProgramResult>,
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
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefCount {
    pub before: i64,
    pub after: i64,
}

impl ProgramResult {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
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
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let n = sorted.len();
        let median =
            if n % 2 == 1 { sorted[n / 2] as f64 } else { (sorted[n / 2 - 1] as f64 + sorted[n / 2] as f64) / 2.0 };
        Some(Summary { median, min: sorted[0], max: sorted[n - 1], n })
    }
}

/// One expectation and whether it held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub what: String,
    pub ok: bool,
    pub detail: String,
}

fn check(what: &str, ok: bool, detail: String) -> Check {
    Check { what: what.into(), ok, detail }
}

/// Joins what the guest reported about `spec` with what the scenario expects of it on `variant`.
pub fn evaluate(
    spec: &ProgramSpec,
    variant: &str,
    fixed_overhead_reference: bool,
    records: &[Record],
    mode: Mode,
) -> ProgramResult {
    let mut result = ProgramResult {
        id: spec.id.clone(),
        object: spec.object.clone(),
        program: spec.program.clone(),
        prog_type: spec.prog_type,
        fixed_overhead_reference,
        verdict: None,
        load_info: None,
        retval: None,
        timing: None,
        repeat: None,
        samples: Vec::new(),
        summary: None,
        task_refs: None,
        checks: Vec::new(),
    };
    let mut errors = Vec::new();
    for record in records {
        match record {
            Record::Loaded { id, verdict, info } if *id == spec.id => {
                result.verdict = Some(verdict.clone());
                result.load_info = info.clone();
            }
            Record::Ran { id, retval, retval_mismatch, timing, repeat, samples } if *id == spec.id => {
                result.retval = Some(*retval);
                result.timing = Some(*timing);
                result.repeat = Some(*repeat);
                result.samples = samples.clone();
                if *retval_mismatch {
                    errors.push("runs returned different values".to_string());
                }
            }
            Record::TaskRefs { id, before, after } if *id == spec.id => {
                result.task_refs = Some(RefCount { before: *before, after: *after })
            }
            Record::Error { id: Some(id), message } if *id == spec.id => errors.push(message.clone()),
            _ => {}
        }
    }
    result.summary = Summary::of(&result.samples);

    let expect = spec.expectation_for(variant);
    match (&result.verdict, expect.verdict) {
        (None, _) => result.checks.push(check("verdict", false, "no verdict reported".into())),
        (Some(Verdict::Accepted), ExpectedVerdict::Accept) => {
            result.checks.push(check("verdict", true, "accepted, as expected".into()))
        }
        (Some(Verdict::Rejected { errno, log }), ExpectedVerdict::Accept) => result.checks.push(check(
            "verdict",
            false,
            format!("rejected (errno {errno}), expected accept; verifier log ends with:\n{}", log_tail(log)),
        )),
        (Some(Verdict::Accepted), ExpectedVerdict::Reject) => {
            result.checks.push(check("verdict", false, "accepted, expected reject".into()))
        }
        (Some(Verdict::Rejected { log, .. }), ExpectedVerdict::Reject) => match &expect.message {
            Some(msg) if !log.contains(msg.as_str()) => result.checks.push(check(
                "verdict",
                false,
                format!("rejected, but the log lacks {msg:?}; it ends with:\n{}", log_tail(log)),
            )),
            Some(msg) => result.checks.push(check("verdict", true, format!("rejected with {msg:?}, as expected"))),
            None => result.checks.push(check("verdict", true, "rejected, as expected".into())),
        },
    }
    let ran_expected = expect.verdict == ExpectedVerdict::Accept;
    if ran_expected && matches!(result.verdict, Some(Verdict::Accepted)) {
        if result.samples.len() != spec.samples as usize {
            result.checks.push(check(
                "samples",
                false,
                format!("{} samples reported, {} planned", result.samples.len(), spec.samples),
            ));
        }
        if let (Some(want), got) = (expect.retval, result.retval) {
            let ok = got == Some(want);
            result.checks.push(check("retval", ok, format!("returned {got:?}, expected {want}")));
        }
        if let Some(want) = expect.task_refs {
            let check = match (want, result.task_refs) {
                (_, None) => check("task_refs", false, "pid 1's task references were not counted".into()),
                (TaskRefs::Balanced, Some(RefCount { before, after })) => check(
                    "task_refs",
                    after == before,
                    format!("pid 1 task references {before} -> {after}, expected no change"),
                ),
                (TaskRefs::Leaked, Some(RefCount { before, after })) => check(
                    "task_refs",
                    after > before,
                    format!("pid 1 task references {before} -> {after}, expected a leak"),
                ),
            };
            result.checks.push(check);
        }
        if mode == Mode::Icount {
            if let Some(s) = result.summary {
                // Under icount every sample of one program must be the same instruction count.
                if s.min != s.max {
                    result.checks.push(check(
                        "determinism",
                        false,
                        format!("icount samples differ: min {} max {}", s.min, s.max),
                    ));
                }
            }
        }
    }
    for error in errors {
        result.checks.push(check("guest", false, error));
    }
    result
}

fn log_tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

/// Errors the guest reported that belong to no program.
pub fn global_errors(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Error { id: None, message } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

impl RunResult {
    /// Every program in every variant met its expectations, and every guest finished.
    pub fn passed(&self) -> bool {
        self.variants.iter().all(|v| {
            v.complete
                && v.guest_errors.is_empty()
                && v.kernel_warnings.is_empty()
                && v.programs.iter().all(|p| p.passed())
        })
    }

    /// `results/<scenario>/<date>-<commit>.json`, written atomically.
    pub fn store(&self, results_root: &Path, stamp: &str) -> anyhow::Result<PathBuf> {
        let path = results_root.join(&self.scenario.name).join(format!("{stamp}.json"));
        write_atomic(&path, serde_json::to_string_pretty(self)?.as_bytes())?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Expectation;

    fn spec(verdict: ExpectedVerdict, message: Option<&str>, retval: Option<u32>) -> ProgramSpec {
        ProgramSpec {
            id: "p".into(),
            object: "o".into(),
            program: "p".into(),
            prog_type: ProgType::Tc,
            repeat: 10,
            samples: 2,
            count_task_refs: false,
            expect: Expectation { verdict, message: message.map(str::to_string), retval, task_refs: None },
            expect_on: Default::default(),
            line: 1,
        }
    }

    fn ran(samples: Vec<u64>, retval: u32) -> Record {
        Record::Ran {
            id: "p".into(),
            retval,
            retval_mismatch: false,
            timing: Timing::TestRunDuration,
            repeat: 10,
            samples,
        }
    }

    fn loaded(verdict: Verdict) -> Record {
        Record::Loaded { id: "p".into(), verdict, info: None }
    }

    #[test]
    fn median_of_even_and_odd_sample_counts() {
        assert_eq!(Summary::of(&[3, 1, 2]).unwrap().median, 2.0);
        let s = Summary::of(&[4, 1, 3, 2]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (2.5, 1, 4, 4));
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn accepted_program_with_expected_retval_passes() {
        let r = evaluate(
            &spec(ExpectedVerdict::Accept, None, Some(0)),
            "v",
            false,
            &[loaded(Verdict::Accepted), ran(vec![83, 83], 0)],
            Mode::Icount,
        );
        assert!(r.passed(), "{:?}", r.checks);
        assert_eq!(r.summary.unwrap().median, 83.0);
    }

    #[test]
    fn wrong_retval_unexpected_rejection_and_icount_spread_fail() {
        let r = evaluate(
            &spec(ExpectedVerdict::Accept, None, Some(0)),
            "v",
            false,
            &[loaded(Verdict::Accepted), ran(vec![83, 83], 1)],
            Mode::Icount,
        );
        assert!(!r.passed());
        let rejected = Verdict::Rejected { errno: 22, log: "Unreleased reference id=2".into() };
        let r = evaluate(&spec(ExpectedVerdict::Accept, None, None), "v", false, &[loaded(rejected)], Mode::Icount);
        assert!(!r.passed());
        let r = evaluate(
            &spec(ExpectedVerdict::Accept, None, None),
            "v",
            false,
            &[loaded(Verdict::Accepted), ran(vec![83, 84], 0)],
            Mode::Icount,
        );
        assert!(r.checks.iter().any(|c| c.what == "determinism" && !c.ok));
        let r = evaluate(
            &spec(ExpectedVerdict::Accept, None, None),
            "v",
            false,
            &[loaded(Verdict::Accepted), ran(vec![83, 84], 0)],
            Mode::Wallclock,
        );
        assert!(r.passed());
    }

    #[test]
    fn expected_rejection_needs_the_message() {
        let rejected =
            || loaded(Verdict::Rejected { errno: 22, log: "...\nUnreleased reference id=2 alloc_insn=3\n".into() });
        let ok = evaluate(
            &spec(ExpectedVerdict::Reject, Some("Unreleased reference"), None),
            "v",
            false,
            &[rejected()],
            Mode::Icount,
        );
        assert!(ok.passed(), "{:?}", ok.checks);
        let wrong = evaluate(
            &spec(ExpectedVerdict::Reject, Some("invalid mem access"), None),
            "v",
            false,
            &[rejected()],
            Mode::Icount,
        );
        assert!(!wrong.passed());
        let missing = evaluate(&spec(ExpectedVerdict::Reject, None, None), "v", false, &[], Mode::Icount);
        assert!(!missing.passed());
    }

    #[test]
    fn results_serialise_and_read_back() {
        let r = evaluate(
            &spec(ExpectedVerdict::Accept, None, Some(0)),
            "v",
            true,
            &[loaded(Verdict::Accepted), ran(vec![5, 5], 0)],
            Mode::Icount,
        );
        let json = serde_json::to_string(&r).unwrap();
        let back: ProgramResult = serde_json::from_str(&json).unwrap();
        assert_eq!(back.samples, vec![5, 5]);
        assert!(back.fixed_overhead_reference);
        assert_eq!(back.checks, r.checks);
    }
}
