//! End to end, two kernels: seed 000's three cases, the watchdog and the overhead scenarios on
//! Linux 6.12.117 and on the runtime-tracking series (builds both kernels or reuses the cached builds), under TCG in
//! icount mode. Asserts what the design does with a cancelled program's references.

use bpfh_protocol::Verdict;
use harness::results::schema::RunResult;
use support::{program, run_clean, variant};

mod support;

const ECANCELED: i32 = 125;
const LOOPS: u32 = 1 << 20;

fn run(scenario: &str, results: &std::path::Path) -> RunResult {
    run_clean(scenario, &["baseline", "runtime-tracking"], results)
}

#[test]
fn the_watchdog_cancels_long_programs_and_releases_what_they_hold() {
    let results = tempfile::tempdir().unwrap();

    // Seed 000's three cases: each traced run matched the seed's sequence (a check of the
    // scenario, asserted passed by run_clean) and ends with the table empty.
    for (scenario, id) in [("simple.yaml", "seed_simple"), ("branch.yaml", "seed_branch"), ("loop.yaml", "seed_loop")] {
        let seed = run(scenario, results.path());
        let traced = program(variant(&seed, "runtime-tracking"), id);
        let trace = traced.trace.as_ref().expect("trace recorded");
        assert!(traced.checks.iter().any(|c| c.what == "trace" && c.ok), "{id}: trace not checked");
        assert!(trace.last().is_some_and(|l| l.contains("entries=0")), "{trace:#?}");
        assert!(traced.load_info.as_ref().is_some_and(|i| i.extra.get("max_acquired_refs") == Some(&2)));
        assert!(program(variant(&seed, "baseline"), id).trace.is_none(), "baseline is not traced");
    }

    // The overhead figures: every pair count measured on both kernels, tracked and untracked.
    let overhead = run("overhead.yaml", results.path());
    for n in [1u64, 2, 8, 32] {
        for suffix in ["", "_untracked", "_armed"] {
            let id = format!("hold{n}_tc{suffix}");
            for v in ["baseline", "runtime-tracking"] {
                let p = program(variant(&overhead, v), &id);
                assert!(p.summary.is_some_and(|s| s.median > 0.0), "{v} {id}: no figure");
            }
        }
        let tracked = program(variant(&overhead, "runtime-tracking"), &format!("hold{n}_tc"));
        assert_eq!(tracked.load_info.as_ref().and_then(|i| i.extra.get("max_acquired_refs")), Some(&n));
    }

    let run = run("watchdog.yaml", results.path());
    let (baseline, tracking) = (variant(&run, "baseline"), variant(&run, "runtime-tracking"));
    for id in ["held_across_iter", "held_across_bpf_loop", "acquire_in_loop", "obj_new_held", "tc_held_across_iter"] {
        let base = program(baseline, id);
        assert_eq!((base.retval, base.run_errno), (Some(LOOPS), None), "baseline {id} runs to its end");
        let p = program(tracking, id);
        assert_eq!(p.verdict, Some(Verdict::Accepted), "{id}");
        assert_eq!(p.run_errno, Some(ECANCELED), "runtime-tracking {id} was not cancelled");
        let refs = p.task_refs.expect("task references counted");
        assert_eq!(refs.after, refs.before, "runtime-tracking {id} leaked task references");
    }
    let masks = program(tracking, "held_across_iter").cpumasks.expect("cpumasks counted");
    assert!(masks.acquired > 0 && masks.acquired == masks.released, "{masks:?}");
    // With the budget unset the watchdog stays out of the way.
    let free = program(tracking, "held_across_iter_no_budget");
    assert_eq!((free.retval, free.run_errno), (Some(LOOPS), None));
}
