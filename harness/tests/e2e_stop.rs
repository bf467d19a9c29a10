//! End to end, two kernels: `scenarios/stop.yaml`, the stop contract on the same programs, on
//! Linux 6.12.117 (no watchdog: every program runs to its end) and on the fast-execute series
//! (a watchdog: every program stopped), under TCG in icount mode. Asserts that every program is
//! stopped within the budget with nothing leaked, that the stop latency is measured for every
//! stopped run, that a kernel without the watchdog is reported as unable to stop them, and that
//! `summary` puts all of it into its table; and the same contract on the exception-unwind series,
//! which unwinds a stopped program where it stands.

use harness::report::summary::{self, Format};
use harness::results::schema::{ProgramResult, VariantResult};
use harness::results::store;
use support::{run_clean, variant};

mod support;

const ECANCELED: i32 = 125;
const BUDGET_NS: u64 = 1_000_000;

/// The scenario's own programs (not the empty ones the harness adds).
fn stop_programs(v: &VariantResult) -> Vec<&ProgramResult> {
    v.programs.iter().filter(|p| !p.fixed_overhead_reference).collect()
}

#[test]
fn every_program_is_stopped_where_a_watchdog_exists_and_runs_to_its_end_elsewhere() {
    let results = tempfile::tempdir().unwrap();
    let run = run_clean("stop.yaml", &["baseline", "fast-execute"], results.path());
    let (baseline, fast) = (variant(&run, "baseline"), variant(&run, "fast-execute"));
    assert!(stop_programs(baseline).len() >= 14, "the scenario lost programs");

    for p in stop_programs(baseline) {
        let stop = p.stop.as_ref().unwrap_or_else(|| panic!("baseline {}: no stop result", p.id));
        assert_eq!(stop.budget_ns, BUDGET_NS);
        let reason = stop.not_stoppable.as_deref().unwrap_or_default();
        assert!(reason.contains("kernel.bpf_watchdog_budget_ns"), "baseline {}: {reason:?}", p.id);
        assert_eq!(p.run_errno, None, "baseline {} was stopped", p.id);
        assert!(stop.latency.is_empty(), "baseline {}: a latency without a stop", p.id);
    }

    for p in stop_programs(fast) {
        let stop = p.stop.as_ref().unwrap_or_else(|| panic!("fast-execute {}: no stop result", p.id));
        assert_eq!(stop.not_stoppable, None, "fast-execute {}", p.id);
        assert_eq!(p.run_errno, Some(ECANCELED), "fast-execute {} was not stopped", p.id);
        if let Some(refs) = p.task_refs {
            assert_eq!(refs.after, refs.before, "fast-execute {} leaked task references", p.id);
        }
        assert_eq!(stop.latency.len(), 3, "fast-execute {}: a latency per sample", p.id);
        // Stopped at the next checkpoint and cleaned up: far less than another budget.
        let mut latency = stop.latency.clone();
        latency.sort();
        assert!(latency[1] > 0 && latency[1] < BUDGET_NS / 10, "fast-execute {}: {latency:?}", p.id);
    }
    let masks = fast.program("cpumask_held").and_then(|p| p.cpumasks).expect("cpumasks counted");
    assert!(masks.acquired > 0 && masks.acquired == masks.released, "{masks:?}");
    // Side effects after the stop: the truncated count is written (2), the complete one on
    // baseline (1).
    let side = |v: &VariantResult| v.program("side_effect_after_loop").and_then(|p| p.retval);
    assert_eq!((side(baseline), side(fast)), (Some(1), Some(2)));

    // The summary of the stored run: the counts and the coverage as the run says.
    let summary = summary::build(&store::latest(results.path()).unwrap(), &[]);
    let shown = |label: &str, variant: &str| {
        let row = summary.rows.iter().find(|r| r.label == label).unwrap_or_else(|| panic!("no row {label:?}"));
        row.cell(variant).unwrap_or_else(|| panic!("{label}: no {variant} cell")).display.clone()
    };
    let n = stop_programs(fast).len().to_string();
    assert_eq!(shown("programs stopped", "fast-execute"), n);
    assert_eq!(shown("programs stopped", "baseline"), "0");
    assert!(
        shown("programs not stoppable", "baseline").starts_with(&n),
        "{}",
        shown("programs not stoppable", "baseline")
    );
    assert_eq!(shown("leaks (task_refs, cpumasks)", "fast-execute"), "0");
    for kind in ["task", "cpumask", "local_object", "kptr_in_map", "iterator", "rcu", "dynptr"] {
        assert!(shown(kind, "fast-execute").starts_with("released"), "{kind}: {}", shown(kind, "fast-execute"));
        assert_eq!(shown(kind, "baseline"), "not stopped", "{kind}");
    }
    for kind in ["cgroup", "socket", "lock"] {
        assert_eq!(shown(kind, "fast-execute"), "no program", "{kind}");
    }
    let markdown = summary::render(&summary, Format::Markdown);
    println!("{markdown}");
    assert!(markdown.contains("| programs stopped |"), "{markdown}");
}

/// The exception-unwind series under the same contract: a stop unwinds the program where it
/// stands (inlined bpf_loop() callbacks included), so a stopped program never reaches the code
/// after its loop, and the program it cannot unwind (a loop in an RCU read section) runs to its
/// end with its own result instead of ECANCELED.
#[test]
fn exception_unwind_unwinds_every_program_it_can_describe_and_lets_the_others_finish() {
    let results = tempfile::tempdir().unwrap();
    let run = run_clean("stop.yaml", &["exception-unwind"], results.path());
    let unwind = variant(&run, "exception-unwind");
    let not_stoppable = ["rcu_section"];

    for p in stop_programs(unwind) {
        let stop = p.stop.as_ref().unwrap_or_else(|| panic!("{}: no stop result", p.id));
        if let Some(refs) = p.task_refs {
            assert_eq!(refs.after, refs.before, "{} leaked task references", p.id);
        }
        if not_stoppable.contains(&p.id.as_str()) {
            assert!(stop.not_stoppable.is_some(), "{}", p.id);
            assert_eq!(p.run_errno, None, "{}: not unwound, so not cancelled", p.id);
            continue;
        }
        assert_eq!(stop.not_stoppable, None, "{}", p.id);
        assert_eq!(p.run_errno, Some(ECANCELED), "{} was not stopped", p.id);
        let mut latency = stop.latency.clone();
        latency.sort();
        assert!(latency[1] > 0 && latency[1] < BUDGET_NS / 10, "{}: {latency:?}", p.id);
    }
    // Stopped where it stood: nothing after the loop ran, so nothing was written.
    let side = unwind.program("side_effect_after_loop").and_then(|p| p.retval);
    assert_eq!(side, Some(0));
    let masks = unwind.program("cpumask_held").and_then(|p| p.cpumasks).expect("cpumasks counted");
    assert!(masks.acquired > 0 && masks.acquired == masks.released, "{masks:?}");

    // The watchdog scenario's expectations (every program stopped) and the series' own selftest
    // programs, all checked by run_clean.
    for scenario in ["watchdog.yaml", "exception-unwind-selftests.yaml"] {
        run_clean(scenario, &["exception-unwind"], results.path());
    }
}
