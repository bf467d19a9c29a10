//! End to end, two kernels: scenarios/throw.yaml on Linux 6.12.117 and on the exception-unwind
//! series (builds both kernels or reuses the cached builds), under TCG in icount mode.
//! Asserts what each design does with references held at a throw, not what it costs.

mod support;

use bpfh_protocol::Verdict;
use harness::results::schema::ProgramResult;
use support::program;

fn rejected_with(p: &ProgramResult, text: &str) -> bool {
    matches!(&p.verdict, Some(Verdict::Rejected { log, .. }) if log.contains(text))
}

#[test]
fn bpf_throw_releases_held_references_only_with_the_exception_unwind_series() {
    let results = tempfile::tempdir().unwrap();
    let (run, _) = support::run("throw.yaml", &support::icount(&[], results.path()));

    let variant = |name: &str| run.variant(name).expect("variant ran");
    let (baseline, unwind) = (variant("baseline"), variant("exception-unwind"));
    for v in [baseline, unwind] {
        assert!(v.complete, "{}: guest did not finish: {:?}", v.name, v.failure);
        assert!(v.kernel_warnings.is_empty(), "{}: {:?}", v.name, v.kernel_warnings);
        for p in &v.programs {
            assert!(p.passed(), "{} {}: {:?}", v.name, p.id, p.checks.iter().filter(|c| !c.ok).collect::<Vec<_>>());
        }
    }

    // 6.12 refuses to throw with a reference held; the series releases it while unwinding.
    for id in ["a_task_stack", "b_task_reg", "c_two_frames", "d_maybe_null", "e_cpumask_obj"] {
        assert!(rejected_with(program(baseline, id), "Unreleased reference"), "baseline {id}");
        let p = program(unwind, id);
        assert_eq!(p.verdict, Some(Verdict::Accepted), "exception-unwind {id}");
        let refs = p.task_refs.expect("task references counted");
        assert_eq!(refs.after, refs.before, "exception-unwind {id} leaked task references");
    }
    let masks = program(unwind, "e_cpumask_obj").cpumasks.expect("cpumasks counted");
    assert!(masks.acquired > 0 && masks.acquired == masks.released, "{masks:?}");

    // The global-subprog loophole: 6.12 accepts it and leaks one reference per run.
    let leak = program(baseline, "f_global_loophole").task_refs.unwrap();
    assert!(leak.after > leak.before, "baseline loophole did not leak: {leak:?}");
    let fixed = program(unwind, "f_global_loophole").task_refs.unwrap();
    assert_eq!(fixed.after, fixed.before);

    // Descriptors that cannot merge are refused with the series' own message.
    assert!(rejected_with(program(unwind, "g_unmergeable"), "cannot be merged"));

    // The series reports its descriptor memory through bpf_prog_info.
    let info = program(unwind, "throw_refs8").load_info.clone().expect("load info");
    assert!(info.extra.get("exc_desc_bytes").is_some_and(|&b| b > 0), "{info:?}");
}
