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
use crate::results::schema::VariantResult;
use crate::scenario::Scenario;
use crate::verdict::observed::Observed;
use crate::verdict::subject::Subject;
use crate::vm::qemu::{BootOutcome, GuestFailure};

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
            console_log: outcome.map(|o| o.console_log.clone()).unwrap_or_default(),
            complete: failure.is_none(),
            failure,
            guest_errors: observed.run_errors(kernel_version),
            kernel_warnings,
            allowed_kernel_warnings,
            programs: self
                .subjects
                .iter()
                .map(|s| {
                    let (expectations, differences) = self.variant.expectations();
                    let mut result = s.judge(expectations, observed.program(s.id()));
                    // Only the scenario's expectations are baseline's; a selftest's are
                    // upstream's, and breaking one is a failure whoever runs it.
                    if differences && !matches!(s, Subject::Selftest { .. }) {
                        result.differs_from = Some(expectations.to_string());
                    }
                    result
                })
                .collect(),
            revision_of: self.variant.revision_of().map(str::to_string),
            // A variant that was not built or booted contributes no boot.
            boots: u32::from(outcome.is_some()),
        }
    }
}
