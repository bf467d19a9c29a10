//! Every detector of the debug kernel proven for real: a lockdep splat, an RCU stall, a hung
//! task, a soft lockup and a kmemleak leak, each provoked in a guest of the debug baseline kernel
//! (the one `e2e_faults` builds), through LKDTM where 6.12 has the fault (HUNG_TASK, SOFTLOCKUP)
//! and otherwise through the debug kernel's own LKDTM crash types
//! (`kernel-config/debug-patches/`: LOCK_INVERSION, RCU_STALL, KMEMLEAK). Each run must fail,
//! carry the detector's report and name it, and no other report (but the soft lockup's panic).
//!
//! The runner makes each detector quick (`guest/runner/src/faults.rs`: a 1 s hung-task timeout,
//! a 1 s watchdog threshold, the shortest RCU stall timeout). Under icount a guest's clock is its
//! instruction count and its idle time is skipped, so waiting for khungtaskd or for kmemleak's
//! minimum age costs little; but a CPU that spins for N guest seconds costs tens of wall seconds
//! per guest second. The two spinning faults (RCU stall: 10 s; soft lockup: 2 s) therefore run
//! under TCG in wallclock mode, where their seconds are real ones.

use harness::events::Terminal;
use harness::pipeline::Options;
use harness::results::schema::{RunResult, VariantResult};
use harness::verdict::outcome::variant_health;
use harness::vm::console;
use harness::vm::qemu::{GuestFailure, Mode};
use std::time::Instant;

/// Runs a one-program scenario on the debug baseline that provokes `crash_type` after its
/// program; returns the run and its table.
fn provoke(crash_type: &str, mode: Mode) -> (RunResult, String) {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("detector.yaml");
    let name = format!("detect-{}", crash_type.to_lowercase().replace('_', "-"));
    std::fs::write(
        &scenario,
        format!(
            "name: {name}\n\
             description: {crash_type} provoked through LKDTM, for its detector\n\
             variants: [baseline]\n\
             timeouts: {{ run: 120 }}\n\
             provoke: [{crash_type}]\n\
             programs:\n  - {{ object: empty, program: empty_syscall, type: syscall, samples: 1, expect: {{ retval: 0 }} }}\n"
        ),
    )
    .unwrap();
    let mut opts = Options { debug_kernel: true, ..Options::icount(dir.path().join("results")) };
    if mode == Mode::Wallclock {
        opts = Options { mode: Some(mode), allow_emulated_wallclock: true, boots: Some(1), ..opts };
    }
    let started = Instant::now();
    let (run, _) = harness::pipeline::run_scenario(&Terminal, &scenario, &opts).expect("scenario runs");
    let table = harness::report::text::render(&run);
    println!("{table}");
    println!("{crash_type} ({mode:?}): {:.1} s", started.elapsed().as_secs_f64());
    (run, table)
}

/// The run failed, the baseline's kernel reports are `kind`'s (one of them starting with
/// `first_line`) and then `also`'s, and the verdict names the detector, in the table too.
/// Returns the report.
fn failed_with(run: &RunResult, table: &str, kind: &str, also: &[&str], first_line: &str) -> String {
    assert!(!run.passed(), "a {kind} report must fail the run");
    let baseline = &run.variants[0];
    let warnings = &baseline.kernel_warnings;
    let expected: Vec<&str> = [kind].iter().chain(also).copied().collect();
    assert_eq!(console::kinds(warnings), expected, "only the provoked detector reports: {warnings:#?}");
    let report = warnings
        .iter()
        .find(|w| w.lines().next().unwrap().contains(first_line))
        .unwrap_or_else(|| panic!("no report starting with {first_line:?}: {warnings:#?}"))
        .clone();
    let health = variant_health(baseline);
    assert!(health.contains(&format!("kernel warnings ({})", expected.join(", "))), "{health}");
    assert!(table.contains(&format!("KERNEL WARNING: {kind} (console: {}", baseline.console_log.display())), "{table}");
    report
}

/// The guest ran its plan to the end and the program passed: only the kernel report fails it.
fn finished(variant: &VariantResult) {
    assert!(variant.complete, "the runner outlives the fault: {:?}", variant.failure);
    assert!(variant.programs.iter().all(|p| p.passed()));
}

/// Lockdep: two locks taken in both orders by one task (no deadlock, but a possible one).
#[test]
fn e2e_debug_kernel_reports_a_lockdep_splat() {
    let (run, table) = provoke("LOCK_INVERSION", Mode::Icount);
    finished(&run.variants[0]);
    let report = failed_with(&run, &table, "lockdep", &[], "WARNING: possible circular locking dependency detected");
    assert!(report.contains("lkdtm_LOCK_INVERSION"), "{report}");
}

/// A real leak: 64 bytes kmalloc'ed and forgotten, found by the scan the runner asks for.
#[test]
fn e2e_debug_kernel_reports_a_kmemleak_leak() {
    let (run, table) = provoke("KMEMLEAK", Mode::Icount);
    finished(&run.variants[0]);
    let report = failed_with(&run, &table, "kmemleak", &[], "new suspected memory leaks");
    assert!(report.contains("unreferenced object") && report.contains("lkdtm leak"), "{report}");
}

/// A task blocked for good in D state (from a thread of the runner, which goes on and ends).
#[test]
fn e2e_debug_kernel_reports_a_hung_task() {
    let (run, table) = provoke("HUNG_TASK", Mode::Icount);
    finished(&run.variants[0]);
    let report = failed_with(&run, &table, "hung task", &[], "INFO: task provoke:");
    assert!(report.contains("blocked for more than 1 seconds"), "{report}");
}

/// A grace period held up for 10 s, past the shortest stall timeout, then let go.
#[test]
fn e2e_debug_kernel_reports_an_rcu_stall() {
    let (run, table) = provoke("RCU_STALL", Mode::Wallclock);
    finished(&run.variants[0]);
    failed_with(&run, &table, "RCU stall", &[], "rcu: INFO: rcu_sched");
}

/// The only CPU spinning for good with preemption off: nothing else runs again, so the soft
/// lockup report panics the guest (`kernel.softlockup_panic`), which ends QEMU at once.
#[test]
fn e2e_debug_kernel_reports_a_soft_lockup() {
    let (run, table) = provoke("SOFTLOCKUP", Mode::Wallclock);
    let baseline = &run.variants[0];
    match &baseline.failure {
        Some(GuestFailure::Panic { excerpt }) => assert!(excerpt.contains("softlockup: hung tasks"), "{excerpt}"),
        other => panic!("expected the soft lockup's panic, got {other:?}"),
    }
    // The panic's own message follows the report.
    let report = failed_with(&run, &table, "soft lockup", &["panic"], "watchdog: BUG: soft lockup - CPU#0 stuck for");
    assert!(report.contains("lkdtm_SOFTLOCKUP"), "{report}");
}
