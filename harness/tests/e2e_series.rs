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

/// A developer edits one line of one patch's C code and runs again. The edited series is a new
/// tree, whose build starts from exception-unwind's (the same config): make compiles the one
/// file the edit changed and links, instead of building the kernel again, and the kernel runs.
#[test]
fn an_edited_series_rebuilds_only_the_file_it_changed() {
    let results = tempfile::tempdir().unwrap();
    let original = harness::host::repo::variants_dir().join("exception-unwind");
    // exception-unwind's build, the one to start from (reused when the cache has it)
    support::run_clean("simple.yaml", &["exception-unwind"], results.path());

    let edited = tempfile::tempdir().unwrap();
    let mut changed = None;
    for entry in std::fs::read_dir(&original).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let mut in_c_file = false;
        let mut lines: Vec<String> = Vec::new();
        for line in text.lines() {
            in_c_file = match line.strip_prefix("+++ b/") {
                Some(path) => path.starts_with("kernel/") && path.ends_with(".c"),
                None => in_c_file,
            };
            // an added comment line of a C file: the kernel's code stays the same
            if changed.is_none() && in_c_file && line.starts_with("+ * ") {
                changed = Some(entry.file_name());
                lines.push(format!("{line} (edited)"));
            } else {
                lines.push(line.to_string());
            }
        }
        std::fs::write(edited.path().join(entry.file_name()), lines.join("\n") + "\n").unwrap();
    }
    assert!(changed.is_some(), "no patch adds a comment line to a C file under kernel/");

    let opts = harness::pipeline::Options {
        extra_variants: vec![("edited".into(), edited.path().to_path_buf())],
        ..support::icount(&["exception-unwind", "edited"], results.path())
    };
    let (run, _) = support::run("simple.yaml", &opts);
    let (original, edited) = (variant(&run, "exception-unwind"), variant(&run, "edited"));
    for v in [original, edited] {
        assert!(v.complete, "{}: {:?}", v.name, v.failure);
        assert!(v.programs.iter().all(|p| p.passed()), "{}", v.name);
    }
    assert_ne!(edited.build_key, original.build_key, "the edited series is a build of its own");
    assert_eq!(edited.config_hash, original.config_hash);

    let cache = harness::host::cache::Cache::resolve(None).unwrap();
    let objdir = format!("build-{}", &edited.build_key[..16]);
    let log = std::fs::read_dir(cache.trees())
        .unwrap()
        .flatten()
        .map(|tree| tree.path().join(&objdir).join("build.log"))
        .find(|log| log.exists())
        .expect("the edited series' build log");
    let log = std::fs::read_to_string(log).unwrap();
    // Kernel objects are named relative to the build directory (tools/ ones by absolute path).
    let compiled: Vec<&str> =
        log.lines().filter_map(|l| l.strip_prefix("  CC      ")).filter(|o| !o.starts_with('/')).collect();
    assert!(compiled.iter().any(|o| o.starts_with("kernel/")), "the edited file compiled: {compiled:?}");
    assert!(compiled.len() <= 2, "only it (and the version stamp) compiled: {compiled:?}");
    assert!(log.contains("LD      vmlinux"), "and the kernel linked again");
}
