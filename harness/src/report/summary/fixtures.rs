//! Stored runs of `overhead`, `stop` and `throw` over four variants, built from the stored
//! `simple` run, with numbers chosen so that every row has a known value.
//!
//! - overhead: baseline and runtime-tracking (fast-execute and exception-unwind have no run),
//!   whose empty programs cost differently;
//! - stop: baseline (cannot stop anything, rejects `hold_iter`), runtime-tracking (stops all,
//!   leaks a cpumask, warns of a refcount underflow), fast-execute (cannot stop `hold_iter`,
//!   writes nothing after a stopped loop);
//! - throw: baseline (rejects `throw_refs8`) and exception-unwind.

use crate::results::schema::{Check, ProgramResult, RunResult, StopResult, Summary, VariantResult, ECANCELED};
use crate::results::store::StoredRun;
use bpfh_protocol::{ProgType, Verdict};
use std::path::PathBuf;

pub const NO_WATCHDOG: &str = "no kernel.bpf_watchdog_budget_ns";
pub const UNBOUNDED: &str = "iterator next is not budgeted";

/// An accepted tc program that passed, with a median run cost of `median`.
pub fn program(id: &str, median: u64) -> ProgramResult {
    let mut p = crate::testing::fixture().variants[0].program("task_ref_tc").unwrap().clone();
    p.id = id.into();
    p.program = id.into();
    p.samples = vec![median; 5];
    p.summary = Summary::of(&p.samples);
    let info = p.load_info.as_mut().unwrap();
    (info.verified_insns, info.jited_len, info.total_states, info.verification_time_us) = (100, 200, Some(5), Some(50));
    p
}

pub fn rejected(mut p: ProgramResult) -> ProgramResult {
    p.verdict = Some(Verdict::Rejected { errno: 22, log: "Unreleased reference".into() });
    (p.load_info, p.summary, p.samples, p.run_errno) = (None, None, Vec::new(), None);
    p
}

/// A syscall program of the stop scenario holding `holds`, stopped with these latencies.
pub fn stopped(id: &str, holds: &[&str], latency: &[u64]) -> ProgramResult {
    let mut p = program(id, 10_000);
    p.prog_type = ProgType::Syscall;
    p.run_errno = Some(ECANCELED);
    p.stop = Some(StopResult {
        budget_ns: 10_000,
        holds: holds.iter().map(|h| h.to_string()).collect(),
        not_stoppable: None,
        latency: latency.to_vec(),
    });
    p
}

/// A program of the stop scenario this variant cannot stop: it ran to its end.
pub fn unstoppable(id: &str, holds: &[&str], reason: &str) -> ProgramResult {
    let mut p = stopped(id, holds, &[]);
    p.run_errno = None;
    p.stop.as_mut().unwrap().not_stoppable = Some(reason.into());
    p
}

/// With a leak counter's check (`task_refs`, `cpumasks`) that found nothing left behind.
pub fn counted(mut p: ProgramResult, check: &str) -> ProgramResult {
    p.checks.push(Check::new(check, true, "pid 1 task references 2 -> 2, expected no change".into()));
    p
}

/// With the counter's check failed: a leak.
pub fn failing(mut p: ProgramResult, check: &str) -> ProgramResult {
    p.checks.retain(|c| c.what != check);
    p.checks.push(Check::new(check, false, "warm-up run took 1 cpumask references, dropped 0".into()));
    p
}

/// `side_effect_after_loop`, having returned `retval`: what its previous run wrote.
pub fn side_effect(mut p: ProgramResult, retval: u32) -> ProgramResult {
    p.retval = Some(retval);
    p
}

pub fn with_table_bytes(mut p: ProgramResult, bytes: u64) -> ProgramResult {
    p.load_info.as_mut().unwrap().extra.insert("exc_desc_bytes".into(), bytes);
    p
}

/// The empty tc program the harness adds to every run.
pub fn empty_tc(median: u64) -> ProgramResult {
    let mut p = program("empty_tc", median);
    p.fixed_overhead_reference = true;
    p.prog_type = ProgType::Tc;
    p
}

pub fn variant(name: &str, programs: Vec<ProgramResult>) -> VariantResult {
    let mut v = crate::testing::fixture().variants[0].clone();
    v.name = name.into();
    v.programs = programs;
    v
}

pub fn run(scenario: &str, unit: &str, variants: Vec<VariantResult>) -> StoredRun {
    let mut run: RunResult = crate::testing::fixture();
    run.scenario.name = scenario.into();
    run.provenance.unit = unit.into();
    run.variants = variants;
    StoredRun { path: PathBuf::from(format!("results/{scenario}/20261201T100000Z-b095d9df10fa.json")), run }
}

/// Per variant: the empty tc program's cost, then `hold1_tc`, `hold32_tc`, `iter1k_tc`
/// unarmed and armed: (cost − empty) / N is 160, 10, 16 on baseline (which has no watchdog to
/// arm) and 375, 20, 35.018 unarmed, 470, 50, 117 armed on runtime-tracking.
pub fn overhead() -> StoredRun {
    let costs = |empty, unarmed: [u64; 3], armed: [u64; 3]| {
        let ids = ["hold1_tc", "hold32_tc", "iter1k_tc"];
        let unarmed = ids.iter().zip(unarmed).map(|(id, c)| program(id, c));
        let armed = ids.iter().zip(armed).map(|(id, c)| program(&format!("{id}_armed"), c));
        unarmed.chain(armed).chain([empty_tc(empty)]).collect()
    };
    let baseline = costs(150, [310, 470, 16_150], [310, 470, 16_150]);
    let tracking = costs(190, [565, 830, 35_208], [660, 1790, 117_190]);
    run("overhead", "insns", vec![variant("baseline", baseline), variant("runtime-tracking", tracking)])
}

pub fn stop() -> StoredRun {
    let baseline = vec![
        counted(unstoppable("hold_task_refs1", &["task"], NO_WATCHDOG), "task_refs"),
        counted(unstoppable("hold_task_refs8", &["task"], NO_WATCHDOG), "task_refs"),
        counted(unstoppable("hold_cpumask", &["cpumask"], NO_WATCHDOG), "cpumasks"),
        rejected(unstoppable("hold_iter", &["iterator", "rcu"], NO_WATCHDOG)),
        side_effect(unstoppable("side_effect_after_loop", &[], NO_WATCHDOG), 1),
        empty_tc(153),
    ];
    let mut tracking = variant(
        "runtime-tracking",
        vec![
            with_table_bytes(counted(stopped("hold_task_refs1", &["task"], &[1000, 1010, 1020]), "task_refs"), 24),
            with_table_bytes(counted(stopped("hold_task_refs8", &["task"], &[1700, 1710, 1720]), "task_refs"), 24),
            with_table_bytes(failing(stopped("hold_cpumask", &["cpumask"], &[1100]), "cpumasks"), 24),
            with_table_bytes(stopped("hold_iter", &["iterator", "rcu"], &[900]), 24),
            side_effect(stopped("side_effect_after_loop", &[], &[1050]), 2),
            empty_tc(153),
        ],
    );
    tracking.kernel_warnings = vec![
        "[ 1.0] refcount_t: underflow; use-after-free.\n[ 1.0] WARNING: CPU: 0 PID: 1 at lib/refcount.c:28".into(),
        "[ 2.0] WARNING: CPU: 0 PID: 1 at kernel/bpf/core.c:100".into(),
    ];
    let fast = vec![
        counted(stopped("hold_task_refs1", &["task"], &[500]), "task_refs"),
        counted(stopped("hold_task_refs8", &["task"], &[640]), "task_refs"),
        counted(stopped("hold_cpumask", &["cpumask"], &[520]), "cpumasks"),
        unstoppable("hold_iter", &["iterator", "rcu"], UNBOUNDED),
        side_effect(stopped("side_effect_after_loop", &[], &[510]), 0),
    ];
    run("stop", "insns", vec![variant("baseline", baseline), tracking, variant("fast-execute", fast)])
}

pub fn throw() -> StoredRun {
    let baseline = vec![program("throw_refs0", 60), rejected(program("throw_refs8", 0))];
    let unwind = vec![program("throw_refs0", 80), program("throw_refs8", 400)];
    run("throw", "insns", vec![variant("baseline", baseline), variant("exception-unwind", unwind)])
}

/// As `store::latest` gives them: by scenario name.
pub fn runs() -> Vec<StoredRun> {
    vec![overhead(), stop(), throw()]
}

/// An upstream run: per variant, (passed, failed, skipped) cases.
pub fn upstream(scenario: &str, counts: &[(&str, usize, usize, usize)]) -> StoredRun {
    let case = |i: usize, ok: bool, skip: bool| {
        let mut p = program(&format!("exceptions/case{i}"), 100);
        p.upstream = Some(crate::results::schema::Origin {
            file: "exceptions.c".into(),
            section: "tc".into(),
            expected: crate::results::schema::Expected {
                verdict: crate::scenario::ExpectedVerdict::Accept,
                msgs: Vec::new(),
                retval: None,
            },
            description: None,
            declared_difference: None,
        });
        p.checks = vec![Check::new("verdict", ok, String::new())];
        p.skipped = skip.then(|| "__xlated is not supported".into());
        p
    };
    let variants = counts
        .iter()
        .map(|&(name, passed, failed, skipped)| {
            let cases = (0..passed).map(|i| case(i, true, false));
            let cases = cases.chain((0..failed).map(|i| case(100 + i, false, false)));
            variant(name, cases.chain((0..skipped).map(|i| case(200 + i, true, true))).collect())
        })
        .collect();
    run(scenario, "insns", variants)
}
