//! End to end, baseline only: scenarios/upstream.yaml compiles upstream's selftest programs from
//! the Linux 6.12.117 tree, loads (and where they have a `__retval`, runs) each in the guest and
//! checks them as upstream's test_loader.c does. Linux as released must pass every program it
//! does not skip, and every skip must say why.

mod support;

use bpfh_protocol::Verdict;

#[test]
fn baseline_passes_every_upstream_program_it_does_not_skip() {
    let results = tempfile::tempdir().unwrap();
    let (run, _) = support::run("upstream.yaml", &support::icount(&["baseline"], results.path()));

    let baseline = &run.variants[0];
    assert_eq!(baseline.name, "baseline");
    assert!(baseline.complete, "guest did not finish: {:?}", baseline.failure);
    assert!(baseline.kernel_warnings.is_empty(), "{:?}", baseline.kernel_warnings);
    assert!(baseline.guest_errors.is_empty(), "{:?}", baseline.guest_errors);

    let upstream: Vec<_> = baseline.programs.iter().filter(|p| p.upstream.is_some()).collect();
    for file in [
        "exceptions.c",
        "exceptions_fail.c",
        "task_kfunc_success.c",
        "task_kfunc_failure.c",
        "cpumask_success.c",
        "cpumask_failure.c",
    ] {
        assert!(upstream.iter().any(|p| p.object == file), "no program of {file} was checked");
    }
    for p in &upstream {
        match &p.skipped {
            Some(reason) => assert!(!reason.trim().is_empty(), "{}: skipped without a reason", p.id),
            None => {
                assert!(p.passed(), "{}: {:?}", p.id, p.checks.iter().filter(|c| !c.ok).collect::<Vec<_>>());
                assert!(p.checks.iter().any(|c| c.what == "upstream" && c.ok), "{}: nothing was checked", p.id);
            }
        }
    }
    let checked = upstream.iter().filter(|p| p.skipped.is_none()).count();
    assert!(checked * 10 >= upstream.len() * 9, "only {checked} of {} programs were checked", upstream.len());

    // Both verdicts and the runs are exercised: __failure programs were rejected, and the
    // __retval programs ran as test_loader runs them.
    let rejected = |id: &str| {
        let p = upstream.iter().find(|p| p.id == id).unwrap_or_else(|| panic!("no program {id}"));
        matches!(&p.verdict, Some(Verdict::Rejected { log, .. }) if log.contains("Unreleased reference"))
    };
    assert!(rejected("exceptions_fail/reject_with_reference"));
    assert!(rejected("task_kfunc_failure/task_kfunc_acquire_unreleased"));
    let ran = upstream.iter().filter(|p| p.upstream.as_ref().unwrap().expected.retval.is_some() && p.retval.is_some());
    assert!(ran.count() > 0, "no __retval program ran");
}
