//! Verdict: what the guest observed, judged against what each subject was expected to do, and a
//! variant's boots pooled into one result.

pub mod observed;
pub mod outcome;
pub mod pool;
pub mod scenario;
pub mod selftest;
pub mod subject;

use crate::kernel::build::KernelBuild;
use crate::kernel::variant::Variant;
use crate::results::schema::{ProgramResult, VariantResult};
use crate::scenario::Scenario;
use crate::verdict::observed::Observed;
use crate::verdict::subject::Subject;
use crate::vm::qemu::{BootOutcome, GuestFailure};

/// A selftest file that does not compile on baseline either is no variant's failure: it is
/// skipped, with the compiler's reason, on every variant of the run. One that compiles on
/// baseline and not on a variant stays that variant's failure.
pub fn uncompiled_on_baseline_skipped(variants: &mut [VariantResult]) {
    let failing_on_baseline: Vec<String> = variants
        .iter()
        .filter(|v| v.name == "baseline")
        .flat_map(|v| &v.programs)
        .filter(|p| p.id.ends_with(subject::UNCOMPILED) && !p.passed())
        .map(|p| p.id.clone())
        .collect();
    for p in variants.iter_mut().flat_map(|v| &mut v.programs) {
        if failing_on_baseline.contains(&p.id) {
            let why = p.checks.first().map_or("", |c| c.detail.lines().next().unwrap_or_default());
            p.skipped = Some(format!("does not compile here, on baseline either: {why}"));
            p.checks.clear();
        }
    }
}

/// What a boot judges: the variant, its kernel (None when it was not built) and its subjects.
pub struct Boot<'a> {
    pub variant: &'a Variant,
    pub kernel: Option<&'a KernelBuild>,
    /// The version of the kernel source, for a variant that was not built.
    pub source_version: &'a str,
    pub scenario: &'a Scenario,
    pub subjects: &'a [Subject],
}

impl Boot<'_> {
    fn judge_subject(&self, subject: &Subject, observed: &Observed) -> ProgramResult {
        let (expectations, differences) = self.variant.expectations();
        let mut result = subject.judge(expectations, observed.program(subject.id()));
        // Only the scenario's expectations are baseline's; a selftest's (and whether its file
        // compiles) are upstream's, and breaking one is a failure whoever runs it.
        if differences && matches!(subject, Subject::Program(_) | Subject::FixedCost(_)) {
            result.differs_from = Some(expectations.to_string());
        }
        result
    }

    /// One boot's result, or the result of a variant that was not built or booted (`Err`).
    pub fn judge(&self, outcome: Result<&BootOutcome, &GuestFailure>) -> VariantResult {
        let (outcome, failure) = match outcome {
            Ok(outcome) => (Some(outcome), outcome.failure.clone()),
            Err(failure) => (None, Some(failure.clone())),
        };
        let observed = Observed::fold(outcome.map_or(&[][..], |o| &o.records[..]));
        let (kernel_warnings, allowed_kernel_warnings) = outcome
            .map(|o| o.kernel_warnings.clone())
            .unwrap_or_default()
            .into_iter()
            .partition(|w| !self.scenario.allows_kernel_message(w));
        let kernel = self.kernel;
        let kernel_version = kernel.map_or(self.source_version, |k| &k.kernel_version);
        VariantResult {
            name: self.variant.name.clone(),
            description: self.variant.description.clone(),
            kernel_version: kernel_version.to_string(),
            build_key: kernel.map(|k| k.build_key.clone()).unwrap_or_default(),
            patch_hash: kernel.map(|k| k.patch_hash.clone()).unwrap_or_default(),
            config_hash: kernel.map(|k| k.config_hash.clone()).unwrap_or_default(),
            compiler: kernel.map(|k| k.compiler.clone()).unwrap_or_default(),
            boot_seconds: outcome.and_then(|o| o.boot_seconds),
            restored_boot: outcome.is_some_and(|o| o.restored),
            console_log: outcome.map(|o| o.console_log.clone()).unwrap_or_default(),
            complete: failure.is_none(),
            failure,
            guest_errors: observed.run_errors(kernel_version),
            kernel_warnings,
            allowed_kernel_warnings,
            programs: self.subjects.iter().map(|s| self.judge_subject(s, &observed)).collect(),
            revision_of: self.variant.revision_of().map(str::to_string),
            // A variant that was not built or booted contributes no boot.
            boots: u32::from(outcome.is_some()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::observed::ObservedProgram;

    #[test]
    fn a_file_that_does_not_compile_fails_its_variant_unless_baseline_cannot_compile_it_either() {
        let broken = Subject::uncompiled("verifier_x.c", "verifier_x.c does not compile: error: ...".into());
        assert_eq!(broken.id(), "verifier_x/(compile)");
        assert!(broken.plan("baseline").is_none(), "nothing to load");
        let failed = broken.judge("mine", &ObservedProgram::default());
        assert!(!failed.passed() && failed.upstream.is_some());

        let mut run = crate::testing::two_variants();
        run.variants[1].programs.push(failed.clone());
        uncompiled_on_baseline_skipped(&mut run.variants);
        assert!(!run.variants[1].program("verifier_x/(compile)").unwrap().passed(), "only the variant fails it");

        run.variants[0].programs.push(failed);
        uncompiled_on_baseline_skipped(&mut run.variants);
        for v in &run.variants {
            let p = v.program("verifier_x/(compile)").unwrap();
            assert!(p.skipped.as_deref().unwrap().starts_with("does not compile here, on baseline either"), "{p:?}");
            assert!(p.passed());
        }
    }
}
