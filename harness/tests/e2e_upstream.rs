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
    for file in ["exceptions.c", "exceptions_fail.c", "task_kfunc_failure.c", "cpumask_success.c", "cpumask_failure.c"]
    {
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
    // exceptions.c is checked as prog_tests/exceptions.c checks it: each program of its
    // RUN_SUCCESS table runs once on pkt_v4 and returns the table's value; 16 is thrown only
    // when the packet's protocol is ETH_P_IP.
    let unwind = upstream.iter().find(|p| p.id == "exceptions/exception_throw_unwind_1").unwrap();
    assert_eq!((unwind.retval, unwind.passed()), (Some(16), true), "{:?}", unwind.checks);
    let tail = upstream.iter().find(|p| p.id == "exceptions/exception_tail_call").unwrap();
    assert!(tail.skipped.as_deref().is_some_and(|s| s.contains("jmp_table")), "{:?}", tail.skipped);
}

/// Against the real baseline build's BTF and the tree's libbpf headers: a selftest file that
/// does not compile is that file's result alone, and a file with upstream's relative include
/// of `tools/include/linux/filter.h` finds that header, not the kernel's own.
#[test]
fn a_file_that_does_not_compile_hides_no_other_and_relative_includes_resolve_as_upstream() {
    use harness::events::Collect;
    let cache = harness::host::cache::Cache::resolve(None).unwrap();
    let source = harness::kernel::source::prepare(&Collect::default(), &cache, None).unwrap();
    let baseline =
        harness::kernel::variant::Variant::load(&harness::host::repo::variants_dir().join("baseline")).unwrap();
    let fragment = harness::host::repo::base_fragment();
    let built =
        harness::kernel::build::build(&Collect::default(), &cache, &source, &baseline, &fragment, None).unwrap();
    // A tree of its own (the cached one stays untouched): the real tools/include, two programs.
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    let progs = tree.join(harness::selftests::PROGS_DIR);
    std::fs::create_dir_all(&progs).unwrap();
    std::os::unix::fs::symlink(built.kernel.tree.join("tools/include"), tree.join("tools/include")).unwrap();
    std::fs::write(
        progs.join("good.c"),
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n#include \"../../../include/linux/filter.h\"\n\
         SEC(\"tc\") int good(void *ctx) { return 0; }\nchar _license[] SEC(\"license\") = \"GPL\";\n",
    )
    .unwrap();
    std::fs::write(progs.join("bad.c"), "this is not C\n").unwrap();
    // Where the relative include lands from an include directory at another depth than
    // upstream's (as the kernel's own include/linux/filter.h did before).
    std::fs::create_dir_all(dir.path().join("include/linux")).unwrap();
    std::fs::write(dir.path().join("include/linux/filter.h"), "#error not tools/include/linux/filter.h\n").unwrap();
    let kernel = harness::kernel::build::KernelBuild { tree, objdir: dir.path().join("build"), ..built.kernel.clone() };
    drop(built);
    let files = ["bad.c".to_string(), "good.c".to_string()];
    let compiled =
        harness::guest::objects::compile_selftests(&Collect::default(), &cache, &source, &kernel, &files).unwrap();
    let err = compiled[0].as_ref().unwrap_err();
    assert!(err.contains("bad.c does not compile"), "{err}");
    let (name, object) = compiled[1].as_ref().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(name, "good.upstream.o");
    assert!(object.is_file());
}
