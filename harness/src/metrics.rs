//! What a program's result is judged by, shared by the table, `compare`, `report` and the
//! scenario's thresholds: its metrics (run cost and load-time costs, by a stable key) and its
//! correctness outcome.

use crate::results::{ProgramResult, RefCount, VariantResult};
use bpfh_protocol::Verdict;

/// The median cost of one run (instructions under icount, nanoseconds under wallclock).
pub const RUN: &str = "run";
/// Prefix of the keys of a variant's own `bpf_prog_info` fields, e.g. `prog_info.exc_desc_bytes`.
pub const PROG_INFO_PREFIX: &str = "prog_info.";

/// Load-time metrics, veristat's columns: key and column label.
pub const LOAD: [(&str, &str); 7] = [
    ("verified_insns", "insns processed"),
    ("total_states", "total states"),
    ("peak_states", "peak states"),
    ("max_states_per_insn", "max states/insn"),
    ("verification_time_us", "verif time (us)"),
    ("xlated_len", "xlated B"),
    ("jited_len", "jited B"),
];

/// Whether `key` names a metric (`prog_info.<field>` names any variant-declared field).
pub fn is_known(key: &str) -> bool {
    key == RUN
        || LOAD.iter().any(|(k, _)| *k == key)
        || key.strip_prefix(PROG_INFO_PREFIX).is_some_and(|f| !f.is_empty())
}

/// Every key a threshold may name, for error messages.
pub fn known_keys() -> String {
    let mut keys: Vec<&str> = vec![RUN];
    keys.extend(LOAD.iter().map(|(k, _)| *k));
    format!("{}, {PROG_INFO_PREFIX}<field>", keys.join(", "))
}

pub fn label(key: &str) -> String {
    match LOAD.iter().find(|(k, _)| *k == key) {
        Some((_, label)) => label.to_string(),
        None => key.to_string(),
    }
}

/// Whether a metric is a duration (and so noisy under wallclock) rather than a count.
pub fn is_time(key: &str) -> bool {
    key == RUN || key == "verification_time_us"
}

/// The load-time metrics of a program, in display order; the run cost is `run_median`.
pub fn load_values(p: &ProgramResult) -> Vec<(String, f64)> {
    let Some(info) = &p.load_info else { return Vec::new() };
    let fixed = [
        Some(f64::from(info.verified_insns)),
        info.total_states.map(f64::from),
        info.peak_states.map(f64::from),
        info.max_states_per_insn.map(f64::from),
        info.verification_time_us.map(|t| t as f64),
        Some(f64::from(info.xlated_len)),
        Some(f64::from(info.jited_len)),
    ];
    let mut out: Vec<(String, f64)> =
        LOAD.iter().zip(fixed).filter_map(|((key, _), v)| v.map(|v| (key.to_string(), v))).collect();
    out.extend(info.extra.iter().map(|(k, v)| (format!("{PROG_INFO_PREFIX}{k}"), *v as f64)));
    out
}

pub fn run_median(p: &ProgramResult) -> Option<f64> {
    p.summary.map(|s| s.median)
}

/// Every metric of a program: the run cost first, then the load-time metrics.
pub fn values(p: &ProgramResult) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = run_median(p).map(|m| (RUN.to_string(), m)).into_iter().collect();
    out.extend(load_values(p));
    out
}

pub fn value(p: &ProgramResult, key: &str) -> Option<f64> {
    values(p).into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// The verdict of a program that was not checked (`ProgramResult::skipped`).
const SKIPPED: &str = "skip";

/// A program's correctness on one variant: what the verifier said, which expectations failed,
/// and what the runs did to pid 1's task references. Two outcomes are equal when nothing a
/// correctness gate cares about changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    /// `accept`, `reject`, `skip` or `-` (no verdict reported).
    pub verdict: String,
    /// Names of the failed checks, in the order they were made.
    pub failed: Vec<String>,
    /// `balanced`, `leaked N` or `freed N`, when references were counted.
    pub refs: Option<String>,
}

impl Outcome {
    pub fn of(p: &ProgramResult) -> Outcome {
        let verdict = match &p.verdict {
            _ if p.skipped.is_some() => SKIPPED,
            Some(Verdict::Accepted) => "accept",
            Some(Verdict::Rejected { .. }) => "reject",
            None => "-",
        };
        let refs = p.task_refs.map(|RefCount { before, after }| match after - before {
            0 => "balanced".to_string(),
            d if d > 0 => format!("leaked {d}"),
            d => format!("freed {}", -d),
        });
        Outcome {
            verdict: verdict.into(),
            failed: p.checks.iter().filter(|c| !c.ok).map(|c| c.what.clone()).collect(),
            refs,
        }
    }

    pub fn passed(&self) -> bool {
        self.failed.is_empty()
    }

    /// `accept ok`, `reject ok, refs balanced`, `accept FAILED retval`, `skip`.
    pub fn short(&self) -> String {
        if self.verdict == SKIPPED {
            return SKIPPED.into();
        }
        let mut s = self.verdict.clone();
        if self.failed.is_empty() {
            s.push_str(" ok");
        } else {
            s.push_str(&format!(" FAILED {}", self.failed.join(",")));
        }
        if let Some(refs) = &self.refs {
            s.push_str(&format!(", refs {refs}"));
        }
        s
    }
}

/// A variant's own correctness: the guest finished and the kernel did not warn.
pub fn variant_health(v: &VariantResult) -> String {
    let mut parts = Vec::new();
    if !v.complete {
        parts.push("INCOMPLETE".to_string());
    }
    if !v.kernel_warnings.is_empty() {
        parts.push(format!("{} kernel warnings", v.kernel_warnings.len()));
    }
    if !v.guest_errors.is_empty() {
        parts.push(format!("{} guest errors", v.guest_errors.len()));
    }
    if parts.is_empty() {
        "ok".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Check, RunResult};

    fn fixture() -> RunResult {
        serde_json::from_str(include_str!("../tests/fixtures/simple-baseline.json")).unwrap()
    }

    #[test]
    fn metrics_come_in_display_order_with_the_run_first() {
        let run = fixture();
        let p = run.variants[0].programs.iter().find(|p| p.id == "task_ref_tc").unwrap();
        let keys: Vec<String> = values(p).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys[0], RUN);
        assert_eq!(value(p, RUN), Some(312.0));
        assert_eq!(value(p, "verified_insns"), Some(10.0));
        assert_eq!(value(p, "verification_time_us"), Some(191.0));
        for key in &keys {
            assert!(is_known(key), "{key}");
        }
        assert!(is_known("prog_info.exc_desc_bytes"));
        assert!(!is_known("prog_info.") && !is_known("median"));
    }

    #[test]
    fn outcomes_name_the_verdict_failed_checks_and_references() {
        let run = fixture();
        let mut p = run.variants[0].programs[0].clone();
        assert_eq!(Outcome::of(&p).short(), "accept ok");
        p.checks.push(Check { what: "retval".into(), ok: false, detail: String::new() });
        p.task_refs = Some(RefCount { before: 3, after: 5 });
        let o = Outcome::of(&p);
        assert!(!o.passed());
        assert_eq!(o.short(), "accept FAILED retval, refs leaked 2");
        assert_eq!(variant_health(&run.variants[0]), "ok");
    }
}
