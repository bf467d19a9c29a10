//! What CI needs from the harness, so that the workflow only calls it: the exit status of a run
//! (a regression told from broken infrastructure), the nightly's plan of jobs, and the gate
//! that decides whether a night passed.

pub mod gate;
pub mod plan;

use crate::results::schema::RunResult;

/// How a command that judges runs ends. `scenario`, `gate`: 0 every expectation met; 1 an
/// expectation failed (a check, a kernel warning, a guest error, a regression); 2 something
/// could not be built, booted, run or read, whether or not an expectation also failed: the
/// numbers are incomplete, so nobody can tell whether they would have passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    Passed = 0,
    Failed = 1,
    Broken = 2,
}

impl Exit {
    /// A run: broken when a variant did not run to its end, failed when an expectation failed.
    pub fn of_run(run: &RunResult) -> Exit {
        if !run.complete() {
            Exit::Broken
        } else if !run.passed() {
            Exit::Failed
        } else {
            Exit::Passed
        }
    }

    /// The worse of the two.
    pub fn and(self, other: Exit) -> Exit {
        self.max(other)
    }

    pub fn code(self) -> u8 {
        self as u8
    }
}

/// The rule, for `scenario --help`.
pub const EXIT_RULE: &str = "exit status: 0 every expectation met; 1 an expectation failed; 2 a variant could not be \
built, booted or run (or a file could not be read), also when an expectation failed too";
/// The rule, for `gate --help`.
pub const GATE_EXIT_RULE: &str =
    "exit status: 0 every expectation met and no regression; 1 an expectation failed or a \
metric regressed; 2 a planned shard is missing, a variant did not run to its end, or the runs could not be read, also \
when 1 would apply too";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::two_variants;

    #[test]
    fn an_incomplete_run_is_broken_even_when_an_expectation_failed_too() {
        let mut run = crate::testing::fixture();
        assert_eq!(Exit::of_run(&run), Exit::Passed);
        let failed = two_variants();
        assert_eq!(Exit::of_run(&failed), Exit::Failed);
        run.variants[0].complete = false;
        assert_eq!(Exit::of_run(&run), Exit::Broken);
        let mut both = failed.clone();
        both.variants[1].complete = false;
        assert_eq!(Exit::of_run(&both), Exit::Broken);
        assert_eq!(Exit::Passed.and(Exit::Failed).and(Exit::Passed), Exit::Failed);
        assert_eq!((Exit::Passed.code(), Exit::Failed.code(), Exit::Broken.code()), (0, 1, 2));
    }
}
