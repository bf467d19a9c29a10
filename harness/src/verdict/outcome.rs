//! A program's correctness outcome and a variant's health, as the table, `compare` and `report`
//! show them and as the correctness gate compares them.

use crate::results::schema::{ProgramResult, RefCount, VariantResult};
use bpfh_protocol::Verdict;

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
    /// The variant whose expectations the failed checks are, when they are only differences
    /// from it rather than failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub differs_from: Option<String>,
    /// Whether the program met its expectations (or only differs from them).
    #[serde(skip)]
    passed: bool,
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
            differs_from: p.differs_from.clone(),
            passed: p.passed(),
        }
    }

    pub fn passed(&self) -> bool {
        self.passed
    }

    /// `accept ok`, `reject ok, refs balanced`, `accept FAILED retval`,
    /// `accept differs from baseline: verdict`, `skip`.
    pub fn short(&self) -> String {
        if self.verdict == SKIPPED {
            return SKIPPED.into();
        }
        let mut s = self.verdict.clone();
        match (&self.differs_from, self.failed.is_empty()) {
            (_, true) => s.push_str(" ok"),
            (Some(other), false) if self.passed => {
                s.push_str(&format!(" differs from {other}: {}", self.failed.join(",")))
            }
            (_, false) => s.push_str(&format!(" FAILED {}", self.failed.join(","))),
        }
        if let Some(refs) = &self.refs {
            s.push_str(&format!(", refs {refs}"));
        }
        s
    }
}

/// A variant's own correctness: the guest finished and the kernel did not warn (what warned,
/// by detector, if it did).
pub fn variant_health(v: &VariantResult) -> String {
    let mut parts = Vec::new();
    if !v.complete {
        parts.push("INCOMPLETE".to_string());
    }
    if !v.kernel_warnings.is_empty() {
        // Named by their detectors: "2 kernel warnings (lockdep, RCU stall)".
        let kinds = crate::vm::console::kinds(&v.kernel_warnings).join(", ");
        parts.push(format!("{} kernel warnings ({kinds})", v.kernel_warnings.len()));
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
    use crate::results::schema::Check;

    #[test]
    fn outcomes_name_the_verdict_failed_checks_and_references() {
        let run = crate::testing::fixture();
        let mut p = run.variants[0].programs[0].clone();
        assert_eq!(Outcome::of(&p).short(), "accept ok");
        p.checks.push(Check { what: "retval".into(), ok: false, detail: String::new() });
        p.task_refs = Some(RefCount { before: 3, after: 5 });
        let o = Outcome::of(&p);
        assert!(!o.passed());
        assert_eq!(o.short(), "accept FAILED retval, refs leaked 2");
        p.differs_from = Some("baseline".into());
        let differs = Outcome::of(&p);
        assert!(differs.passed() && p.passed(), "a difference is not a failure");
        assert_eq!(differs.short(), "accept differs from baseline: retval, refs leaked 2");
        p.checks.push(Check { what: "guest".into(), ok: false, detail: "libbpf failed".into() });
        assert!(!Outcome::of(&p).passed(), "the guest's own errors still fail it");
        assert_eq!(variant_health(&run.variants[0]), "ok");
    }
}
