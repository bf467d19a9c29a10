//! End to end, a developer's own series given on the command line: the exception-unwind series
//! as `--variant mine=... --revision-of mine=exception-unwind` is held to exception-unwind's
//! expectations and compared with it; the same series as `bare`, declaring nothing, is shown
//! where it differs from baseline's expectations, not as failed; and every program that ran
//! shows its cost. Both reuse exception-unwind's kernel build (the same series, the same tree).

mod support;

use harness::verdict::outcome::Outcome;
use support::{program, variant};

#[test]
fn a_series_is_judged_as_what_it_says_it_is_and_every_cost_is_shown() {
    let results = tempfile::tempdir().unwrap();
    let series = harness::host::repo::variants_dir().join("exception-unwind");
    let opts = harness::pipeline::Options {
        extra_variants: vec![("mine".into(), series.clone()), ("bare".into(), series)],
        revisions: vec![("mine".into(), "exception-unwind".into())],
        ..support::icount(&["exception-unwind", "mine", "bare"], results.path())
    };
    let (run, _) = support::run("throw.yaml", &opts);
    for v in &run.variants {
        assert!(v.complete, "{}: {:?}", v.name, v.failure);
        assert!(v.kernel_warnings.is_empty(), "{}: {:?}", v.name, v.kernel_warnings);
    }
    let (original, mine, bare) = (variant(&run, "exception-unwind"), variant(&run, "mine"), variant(&run, "bare"));
    assert_eq!(mine.build_key, original.build_key, "the same series reuses the same kernel build");
    assert_eq!(mine.revision_of.as_deref(), Some("exception-unwind"));
    for p in &mine.programs {
        assert!(p.passed() && p.differs_from.is_none(), "mine {}: {:?}", p.id, p.checks);
        assert_eq!(p.verdict, program(original, &p.id).verdict, "{}", p.id);
    }
    // Baseline rejects a throw with a task held; the series accepts and releases it.
    let task = program(bare, "a_task_stack");
    assert_eq!(task.differs_from.as_deref(), Some("baseline"));
    assert!(task.passed(), "a difference is not a failure: {:?}", task.checks);
    assert!(Outcome::of(task).short().starts_with("accept differs from baseline: verdict"));
    for p in bare.programs.iter().filter(|p| matches!(p.verdict, Some(bpfh_protocol::Verdict::Accepted))) {
        assert!(p.summary.is_some(), "bare {}: a program that ran shows its cost", p.id);
    }
    assert!(run.passed(), "differences do not fail the run");
}
