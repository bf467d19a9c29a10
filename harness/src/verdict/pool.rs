//! Pooling a variant's boots: wallclock runs boot each variant several times, and a variant's
//! result holds every boot's samples and every boot's failures.

use crate::results::schema::{Check, Summary, VariantResult};

/// One variant's boots as one result: samples pooled, every boot's failures, warnings and
/// failed checks kept (a check that failed in any boot failed).
pub fn pool_boots(mut boots: Vec<VariantResult>) -> VariantResult {
    let booted = boots.iter().map(|b| b.boots).sum();
    let rest = boots.split_off(1);
    let mut pooled = boots.pop().expect("at least one boot");
    pooled.boots = booted;
    for (n, boot) in rest.into_iter().enumerate() {
        let label = format!("boot {}", n + 2);
        pooled.complete &= boot.complete;
        if pooled.failure.is_none() {
            pooled.failure = boot.failure;
            if pooled.failure.is_some() {
                pooled.console_log = boot.console_log.clone();
            }
        }
        pooled.guest_errors.extend(boot.guest_errors.into_iter().map(|e| format!("{label}: {e}")));
        pooled.kernel_warnings.extend(boot.kernel_warnings.into_iter().map(|w| format!("{label}: {w}")));
        pooled
            .allowed_kernel_warnings
            .extend(boot.allowed_kernel_warnings.into_iter().map(|w| format!("{label}: {w}")));
        for (p, q) in pooled.programs.iter_mut().zip(boot.programs) {
            p.samples.extend(q.samples);
            p.failed_runs += q.failed_runs;
            for c in q.checks.into_iter().filter(|c| !c.ok) {
                p.checks.push(Check { detail: format!("{label}: {}", c.detail), ..c });
            }
        }
    }
    for p in &mut pooled.programs {
        p.summary = Summary::of(&p.samples);
    }
    pooled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boots_pool_samples_and_keep_every_failure() {
        let run = crate::testing::fixture();
        let first = run.variants[0].clone();
        let mut second = first.clone();
        second.programs[0].samples = vec![160, 161];
        second.programs[0].checks.push(Check { what: "retval".into(), ok: false, detail: "returned 1".into() });
        second.kernel_warnings.push("WARNING: x".into());
        let pooled = pool_boots(vec![first.clone(), second]);
        assert_eq!(pooled.boots, 2);
        let p = &pooled.programs[0];
        assert_eq!(p.samples, [153, 153, 153, 153, 153, 160, 161]);
        assert_eq!(p.summary.unwrap().max, 161);
        assert!(p.checks.iter().any(|c| !c.ok && c.detail == "boot 2: returned 1"));
        assert_eq!(pooled.kernel_warnings, ["boot 2: WARNING: x"]);
        let single = pool_boots(vec![first.clone()]);
        assert_eq!((single.boots, &single.programs[0].samples), (1, &first.programs[0].samples));
    }
}
