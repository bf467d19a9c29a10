//! End to end on the real thing: builds the baseline kernel (or reuses the cached build), boots it
//! under TCG in icount mode, runs scenarios/simple.yaml and checks what came back.
//! Needs the host prerequisites (`cargo run -- doctor`); CI installs them in .ci/run.

mod support;

use bpfh_protocol::Verdict;
use harness::vm::qemu::{Accel, Mode};

#[test]
fn simple_scenario_runs_on_the_baseline_kernel() {
    let results = tempfile::tempdir().unwrap();
    let (run, stored) = support::run("simple.yaml", &support::icount(&["baseline"], results.path()));

    assert_eq!(run.provenance.accel, Accel::Tcg);
    assert_eq!(run.provenance.mode, Mode::Icount);
    assert_eq!(run.provenance.unit, "insns");
    let baseline = run.variant("baseline").expect("baseline variant ran");
    assert!(baseline.complete, "guest did not finish: {:?}", baseline.failure);
    assert!(baseline.guest_errors.is_empty(), "{:?}", baseline.guest_errors);
    assert_eq!(baseline.kernel_version, "6.12.117");

    let ids: Vec<&str> = baseline.programs.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["empty_tc", "empty_syscall", "task_ref_tc", "task_ref_syscall", "seed_simple"]);
    for prog in &baseline.programs {
        assert_eq!(prog.verdict, Some(Verdict::Accepted), "{} was not loaded", prog.id);
        assert_eq!(prog.retval, Some(0), "{} returned {:?}", prog.id, prog.retval);
        assert_eq!(prog.samples.len(), 5, "{}", prog.id);
        assert!(prog.samples[0] > 0, "{}: zero duration", prog.id);
        assert!(prog.passed(), "{}: {:?}", prog.id, prog.checks);
    }
    // Icount: the same instruction count in every sample of the simple programs (the cpumask
    // allocator of seed_simple may refill its cache in one run and not another).
    for id in ["empty_tc", "empty_syscall", "task_ref_tc", "task_ref_syscall"] {
        let samples = &baseline.program(id).unwrap().samples;
        assert!(samples.iter().all(|&s| s == samples[0]), "{id}: icount samples differ: {samples:?}");
    }
    let seed = baseline.program("seed_simple").unwrap();
    let masks = seed.cpumasks.expect("cpumask references counted");
    assert_eq!((masks.acquired, masks.released), (1, 1), "one cpumask taken and dropped by the warm-up run");
    let cost = |id: &str| baseline.program(id).unwrap().samples[0];
    assert!(cost("task_ref_tc") > cost("empty_tc"), "taking a reference must cost instructions");
    assert!(cost("task_ref_syscall") > cost("empty_syscall"));

    let stored: harness::results::schema::RunResult = serde_json::from_slice(&std::fs::read(&stored).unwrap()).unwrap();
    assert_eq!(stored.schema_version, harness::results::schema::SCHEMA_VERSION);
    assert!(stored.provenance.measurement.starts_with("icount"));
    assert!(baseline.console_log.is_file());
}

/// Under icount a paused guest's clock stands still: a run restored from the kernel's saved boot
/// executes what a booted run executes, so every sample is the same count.
#[test]
fn a_restored_boot_counts_what_a_cold_boot_counts() {
    let results = tempfile::tempdir().unwrap();
    let icount = support::icount(&["baseline"], results.path());
    let (cold, _) = support::run("simple.yaml", &harness::pipeline::Options { cold_boot: true, ..icount.clone() });
    // The first restoring run may have to save the boot first; both restore it.
    let (first, _) = support::run("simple.yaml", &icount);
    let (second, _) = support::run("simple.yaml", &icount);
    let cold = cold.variant("baseline").unwrap();
    assert!(!cold.restored_boot);
    for restored in [first.variant("baseline").unwrap(), second.variant("baseline").unwrap()] {
        assert!(restored.restored_boot, "a run must restore the saved boot");
        assert!(restored.complete, "{:?}", restored.failure);
        for p in &cold.programs {
            let r = restored.program(&p.id).unwrap();
            assert_eq!((&r.samples, r.retval), (&p.samples, p.retval), "{}: restored differs from booted", p.id);
        }
    }
    let restored = second.variant("baseline").unwrap();
    // The restored console begins with the saved boot's, so boot warnings are still seen.
    let console = std::fs::read_to_string(&restored.console_log).unwrap();
    assert!(console.starts_with("[    0.000000] Linux version"), "{}", &console[..200.min(console.len())]);

    // Another scenario restores the same saved boot: no new boot is saved for it.
    let state = saved_state(&restored.build_key);
    let saved_at = std::fs::metadata(&state).unwrap().modified().unwrap();
    let (branch, _) = support::run("branch.yaml", &icount);
    let branch = branch.variant("baseline").unwrap();
    assert!(branch.complete && branch.restored_boot, "{:?}", branch.failure);
    assert_eq!(saved_state(&restored.build_key), state);
    assert_eq!(std::fs::metadata(&state).unwrap().modified().unwrap(), saved_at, "branch.yaml saved a boot again");

    // A state QEMU cannot load is not a failure of the run: it boots, and says why. (Replaced,
    // not overwritten: a test restoring it at this moment keeps reading the good one.)
    let bad = state.with_extension("bad");
    std::fs::write(&bad, b"not a state").unwrap();
    std::fs::rename(&bad, &state).unwrap();
    let (fallback, _) = support::run("simple.yaml", &icount);
    let fallback = fallback.variant("baseline").unwrap();
    assert!(fallback.complete && !fallback.restored_boot, "{:?}", fallback.failure);
    let console = std::fs::read_to_string(&fallback.console_log).unwrap();
    assert!(console.starts_with("harness: the saved boot could not be restored, booting:"), "{}", &console[..300]);
    // Removed; a test running beside this one on the baseline kernel may have saved a good one since.
    let left = std::fs::read(&state).unwrap_or_default();
    assert_ne!(left, b"not a state", "the state that could not be loaded must be removed");
}

/// The saved boot of the runner's image in the build directory with `build_key`.
fn saved_state(build_key: &str) -> std::path::PathBuf {
    let cache = harness::host::cache::Cache::resolve(None).unwrap();
    let builds = std::fs::read_dir(cache.trees())
        .unwrap()
        .flatten()
        .map(|t| t.path().join(format!("build-{}", &build_key[..16])));
    let run = builds.map(|b| b.join("run")).find(|r| r.is_dir()).expect("the build's run directory");
    std::fs::read_dir(run)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("runner-icount-") && name.ends_with(".state")
        })
        .expect("a saved boot of the image")
}
