//! `harness gate`: whether a night passed. It fails on every unmet expectation of the night's
//! runs (not only on changes from the previous night, so an expectation that fails every night,
//! or on the first night, fails it too) and on every regression against the previous night; it
//! is broken (exit 2) when a planned shard is missing or a variant did not run to its end.

use crate::ci::plan::Plan;
use crate::ci::Exit;
use crate::compare::{self, Comparison};
use crate::results::store::StoredRun;

#[derive(Debug, Clone)]
pub struct Gate {
    /// The night against the previous one (every run compared with nothing on the first night).
    pub comparison: Comparison,
    /// Expectations the night's runs did not meet: `scenario/variant: what`.
    pub unmet: Vec<String>,
    /// What makes the night's numbers incomplete: missing shards, variants that did not finish.
    pub broken: Vec<String>,
}

pub fn gate(previous: &[StoredRun], current: &[StoredRun], plan: Option<&Plan>) -> Gate {
    let mut unmet = Vec::new();
    let mut broken = Vec::new();
    if current.is_empty() {
        broken.push("no runs at all: every job failed before storing results".to_string());
    }
    for stored in current {
        let run = &stored.run;
        for v in &run.variants {
            let at = format!("{}/{}", run.scenario.name, v.name);
            if let Some(failure) = &v.failure {
                let first = failure.to_string().lines().next().unwrap_or_default().to_string();
                broken.push(format!("{at}: did not run to its end: {first}"));
            }
            unmet.extend(
                v.kernel_warnings
                    .iter()
                    .map(|w| format!("{at}: kernel warning: {}", w.lines().next().unwrap_or_default())),
            );
            unmet.extend(v.guest_errors.iter().map(|e| format!("{at}: guest error: {e}")));
            for p in &v.programs {
                for c in p.checks.iter().filter(|c| !c.ok) {
                    let detail = c.detail.lines().next().unwrap_or_default();
                    unmet.push(format!("{at}: {} {}: {detail}", p.id, c.what));
                }
            }
        }
    }
    if let Some(plan) = plan {
        let present: Vec<(String, String)> = current
            .iter()
            .flat_map(|s| s.run.variants.iter().map(|v| (s.run.scenario.name.clone(), v.name.clone())))
            .collect();
        broken.extend(
            plan.missing(&present)
                .into_iter()
                .map(|s| format!("{}/{}: no results (its job failed before storing any)", s.name, s.variant)),
        );
    }
    Gate { comparison: compare::compare(previous, current), unmet, broken }
}

impl Gate {
    pub fn exit(&self) -> Exit {
        if !self.broken.is_empty() {
            Exit::Broken
        } else if !self.unmet.is_empty() || self.comparison.failed() {
            Exit::Failed
        } else {
            Exit::Passed
        }
    }

    /// The verdict and its reasons, one per line (Markdown list items read as lines too).
    pub fn render(&self) -> String {
        let regressions = self.comparison.scenarios.iter().map(|s| s.regressions().count()).sum::<usize>();
        let changes = self.comparison.scenarios.iter().map(|s| s.outcome_changes().count()).sum::<usize>();
        let verdict = match self.exit() {
            Exit::Passed => "passed",
            Exit::Failed => "FAILED",
            Exit::Broken => "BROKEN (incomplete numbers)",
        };
        let mut out = format!(
            "night {verdict}: {} unmet expectations, {regressions} regressions, {changes} changed outcomes, {} incomplete\n",
            self.unmet.len(),
            self.broken.len()
        );
        for line in self.broken.iter().chain(&self.unmet) {
            out.push_str(&format!("- {line}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::plan::Shard;
    use crate::testing::{fixture, new_run, old_run, stored, two_variants};

    #[test]
    fn a_night_fails_on_unmet_expectations_even_without_a_previous_night() {
        let clean = stored(fixture(), "a");
        assert_eq!(gate(&[], std::slice::from_ref(&clean), None).exit(), Exit::Passed);
        assert_eq!(gate(&[], &[], None).exit(), Exit::Broken, "a night without runs is broken");
        let failing = stored(two_variants(), "b");
        let first_night = gate(&[], std::slice::from_ref(&failing), None);
        assert_eq!(first_night.exit(), Exit::Failed, "{}", first_night.render());
        assert!(first_night.unmet.iter().any(|u| u.starts_with("simple/exception-unwind: task_ref_syscall verdict")));
        assert!(first_night.unmet.iter().any(|u| u.contains("kernel warning")));
        // The same failure on the next night is no change, and still fails the night.
        let again = gate(std::slice::from_ref(&failing), std::slice::from_ref(&failing), None);
        assert!(!again.comparison.failed());
        assert_eq!(again.exit(), Exit::Failed);
    }

    #[test]
    fn regressions_fail_and_missing_or_incomplete_shards_break_the_night() {
        let regressed = gate(&[stored(old_run(), "old")], &[stored(new_run(), "new")], None);
        assert!(regressed.comparison.failed());
        assert!(regressed.exit() >= Exit::Failed, "{}", regressed.render());

        let clean = stored(fixture(), "a");
        let plan = Plan {
            shards: vec![
                Shard { scenario: "scenarios/simple.yaml".into(), name: "simple".into(), variant: "baseline".into() },
                Shard { scenario: "scenarios/simple.yaml".into(), name: "simple".into(), variant: "mine".into() },
            ],
            jobs: Vec::new(),
            debug: Vec::new(),
        };
        let missing = gate(&[], std::slice::from_ref(&clean), Some(&plan));
        assert_eq!(missing.exit(), Exit::Broken);
        assert_eq!(missing.broken, ["simple/mine: no results (its job failed before storing any)"]);
        let mut incomplete = fixture();
        incomplete.variants[0].complete = false;
        incomplete.variants[0].failure =
            Some(crate::vm::qemu::GuestFailure::NotRun { stage: "build".into(), error: "patch does not apply".into() });
        let night = gate(&[], &[stored(incomplete, "a")], None);
        assert_eq!(night.exit(), Exit::Broken);
        assert!(night.render().starts_with("night BROKEN"), "{}", night.render());
    }
}
