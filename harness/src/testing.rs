//! Fixtures the unit tests of several stages share: a stored run of `simple.yaml` on the
//! baseline and runs derived from it; selftest programs, cases and declared differences.

use crate::kernel::variant::Difference;
use crate::results::schema::Expected;
use crate::results::schema::{Check, RefCount, RunResult, Summary};
use crate::results::store::StoredRun;
use crate::scenario::ExpectedVerdict;
use crate::scenario::Threshold;
use crate::selftests::annotations::{Annotations, Case, Program, RunAs};
use bpfh_protocol::{ProgType, Verdict};
use std::path::PathBuf;

pub fn fixture() -> RunResult {
    serde_json::from_str(include_str!("../tests/fixtures/simple-baseline.json")).unwrap()
}

/// The stored baseline run plus a patched variant that costs 18 more instructions per task
/// reference run, rejects the syscall program and leaks on the tc program.
pub fn two_variants() -> RunResult {
    let mut run = fixture();
    let mut patched = run.variants[0].clone();
    patched.name = "exception-unwind".into();
    for p in &mut patched.programs {
        if p.id == "task_ref_tc" {
            p.samples = vec![330; 5];
            p.summary = Summary::of(&p.samples);
            p.task_refs = Some(RefCount { before: 2, after: 3 });
            p.load_info.as_mut().unwrap().verified_insns = 12;
            p.load_info.as_mut().unwrap().extra.insert("exc_desc_bytes".into(), 24);
        }
        if p.id == "task_ref_syscall" {
            p.verdict = Some(Verdict::Rejected { errno: 22, log: "Unreleased reference".into() });
            p.load_info = None;
            p.samples.clear();
            p.summary = None;
            p.checks = vec![Check { what: "verdict".into(), ok: false, detail: "rejected".into() }];
        }
    }
    patched.kernel_warnings = vec!["WARNING: CPU: 0 PID: 1 at kernel/bpf/core.c".into()];
    run.variants.push(patched);
    run
}

pub fn stored(run: RunResult, name: &str) -> StoredRun {
    StoredRun { path: PathBuf::from(format!("results/simple/{name}.json")), run }
}

/// The old run: both variants correct and without warnings; thresholds on run and insns.
pub fn old_run() -> RunResult {
    let mut old = two_variants();
    let base = old.variants[0].clone();
    let patched = &mut old.variants[1];
    patched.kernel_warnings.clear();
    patched.programs = base.programs.clone();
    for p in &mut patched.programs {
        if p.id == "task_ref_tc" {
            p.samples = vec![320; 5];
            p.summary = Summary::of(&p.samples);
        }
    }
    old.scenario.thresholds.insert("run".into(), Threshold { relative: Some(0.02), absolute: None });
    old.scenario.thresholds.insert("verified_insns".into(), Threshold { relative: None, absolute: Some(0.0) });
    old
}

/// The new run: the patched variant's task_ref_tc costs 330 (+3.1%, beyond 2%) and
/// processes 2 more instructions; its syscall program is now rejected, its kernel warns.
pub fn new_run() -> RunResult {
    let mut new = two_variants();
    new.scenario.thresholds = old_run().scenario.thresholds;
    new
}

/// A selftest program with these decl tags.
pub fn program(name: &str, section: &str, tags: &[&str]) -> Program {
    Program {
        name: name.into(),
        section: section.into(),
        annotations: Annotations::parse(tags.iter().copied()).unwrap(),
    }
}

/// Case `f/p` of `f.c`: what upstream expects of it; it runs when it has a retval.
pub fn case(verdict: ExpectedVerdict, msgs: &[&str], retval: Option<i32>) -> Case {
    Case {
        id: "f/p".into(),
        file: "f.c".into(),
        program: "p".into(),
        section: "tc".into(),
        prog_type: if retval.is_some() { ProgType::Tc } else { ProgType::Any },
        run: retval.map(|_| RunAs::TestLoader),
        log_level: 0,
        expected: Expected { verdict, msgs: msgs.iter().map(|s| s.to_string()).collect(), retval },
        description: None,
        skip: None,
        prog_flags: 0,
        auxiliary: Vec::new(),
        testmod_kfuncs: Vec::new(),
        lacking_options: Default::default(),
        drop_caps: 0,
        xlated: Vec::new(),
        helpers: Default::default(),
    }
}

/// A declared difference for `f.c: p`.
pub fn difference(expect: ExpectedVerdict) -> Difference {
    Difference { file: "f.c".into(), program: "p".into(), expect, reason: "unwinding releases it".into() }
}
