//! End to end, two kernels: the watchdog, overhead and upstream scenarios on Linux 6.12.117 and on
//! the fast-execute series (builds both kernels or reuses the cached builds), under TCG in icount
//! mode. Asserts that a stopped program finishes on its own failure paths: stopped with
//! ECANCELED well before its loop's end, every reference back, its side effects done with the
//! truncated result, and nothing changed for programs that are not stopped.

use bpfh_protocol::Verdict;
use harness::results::schema::{RunResult, VariantResult};
use support::{program, run_clean, variant};

mod support;

const ECANCELED: i32 = 125;
const LOOPS: u32 = 1 << 20;
/// may_goto's own limit, which ends the may_goto loop.
const MAY_GOTO_LOOPS: u32 = 8 * 1024 * 1024;

fn run(scenario: &str, results: &std::path::Path) -> RunResult {
    run_clean(scenario, &["baseline", "fast-execute"], results)
}

fn median(variant: &VariantResult, id: &str) -> f64 {
    program(variant, id).summary.unwrap_or_else(|| panic!("{}: {id} has no figure", variant.name)).median
}

#[test]
fn a_stopped_program_finishes_on_its_own_paths_and_releases_what_it_holds() {
    let results = tempfile::tempdir().unwrap();

    let watchdog = run("watchdog.yaml", results.path());
    let (baseline, fast) = (variant(&watchdog, "baseline"), variant(&watchdog, "fast-execute"));
    for id in [
        "held_across_iter",
        "held_across_bpf_loop",
        "acquire_in_loop",
        "obj_new_held",
        "tc_held_across_iter",
        "kptr_stashed",
        "held_across_may_goto",
    ] {
        let base = program(baseline, id);
        let loops = if id == "held_across_may_goto" { MAY_GOTO_LOOPS } else { LOOPS };
        assert_eq!((base.retval, base.run_errno), (Some(loops), None), "baseline {id} runs to its end");
        let p = program(fast, id);
        assert_eq!(p.verdict, Some(Verdict::Accepted), "{id}");
        assert_eq!(p.run_errno, Some(ECANCELED), "fast-execute {id} was not stopped");
        if let Some(refs) = p.task_refs {
            assert_eq!(refs.after, refs.before, "fast-execute {id} leaked task references");
        }
        // A syscall program's count is copied out of a stopped run: far short of the loop's end.
        if let Some(n) = p.retval.filter(|_| p.prog_type == bpfh_protocol::ProgType::Syscall) {
            assert!(n < loops / 2, "fast-execute {id} ran {n} iterations");
        }
    }
    for id in ["held_across_iter", "held_across_may_goto"] {
        let masks = program(fast, id).cpumasks.expect("cpumasks counted");
        assert!(masks.acquired > 0 && masks.acquired == masks.released, "{id}: {masks:?}");
    }
    // bpf_cpumask_acquire() never returns NULL: still called after the stop, on a mask the
    // program still holds (refcount 2).
    assert_eq!(program(fast, "cpumask_refcount_after_cancel").retval, Some(2));
    // The side effect after the loop happens, with the truncated count (2), where baseline
    // writes the complete one (1).
    assert_eq!(program(baseline, "side_effect_after_loop").retval, Some(1));
    let side = program(fast, "side_effect_after_loop");
    assert_eq!((side.retval, side.run_errno), (Some(2), Some(ECANCELED)));
    // Without a budget nothing is stopped.
    let free = program(fast, "held_across_iter_no_budget");
    assert_eq!((free.retval, free.run_errno), (Some(LOOPS), None));

    // The normal path: the acquire/release pairs pay only the checks at the acquisitions, the
    // same per pair however many references are held; loops pay per iteration.
    let overhead = run("overhead.yaml", results.path());
    let (baseline, fast) = (variant(&overhead, "baseline"), variant(&overhead, "fast-execute"));
    let per_pair =
        |v: &VariantResult, n: f64| (median(v, &format!("hold{}_tc", n as u32)) - median(v, "hold1_tc")) / (n - 1.0);
    for n in [2.0, 8.0, 32.0] {
        let extra = per_pair(fast, n) - per_pair(baseline, n);
        assert!(extra > 0.0 && extra < 20.0, "{n} refs: {extra} instructions per pair over baseline");
    }
    for id in ["iter1k_tc", "loop1k_tc", "maygoto1k_tc"] {
        let extra = (median(fast, id) - median(baseline, id)) / 1000.0;
        assert!(extra > 0.0 && extra < 20.0, "{id}: {extra} instructions per iteration over baseline");
    }

    // Programs that are not stopped behave as upstream expects: the kernel's own selftests
    // (baseline passes them in e2e_upstream), and the series' own selftest programs.
    for scenario in ["upstream.yaml", "fast-execute-selftests.yaml"] {
        let upstream = run_clean(scenario, &["fast-execute"], results.path());
        let fast = variant(&upstream, "fast-execute");
        assert!(fast.programs.iter().any(|p| p.skipped.is_none()), "{scenario}: nothing checked");
    }
}
