//! Correctness: what the `stop` scenario's programs did when stopped (or not), what the kernel
//! reported, and whether upstream's selftests still pass.

use super::build::{at, scenario_programs, Runs, STOP};
use super::model::{Cell, Group, Row};
use crate::results::schema::{ProgramResult, VariantResult};
use bpfh_protocol::Verdict;
use std::collections::BTreeSet;

/// Checks that count references left behind (see `verdict::scenario`).
const LEAK_CHECKS: [&str; 2] = ["task_refs", "cpumasks"];

/// Console reports of a reference dropped once too often (refcount_t and KASAN, as
/// `vm::console` finds them).
const DOUBLE_RELEASE: [&str; 5] = [
    "refcount_t: underflow",
    "refcount_t: decrement hit 0",
    "refcount_t: addition on 0",
    "KASAN: use-after-free",
    "KASAN: slab-use-after-free",
];

pub fn rows(runs: &Runs) -> Vec<Row> {
    let mut rows = vec![
        stop_row(runs, "programs stopped", |v| counted(v, ProgramResult::stopped)),
        stop_row(runs, "programs not stoppable", not_stoppable),
        stop_row(runs, "leaks (task_refs, cpumasks)", leaks),
        stop_row(runs, "double releases (refcount underflow, use-after-free)", |v| {
            Cell::count(&v.name, v.kernel_warnings.iter().filter(|w| is_double_release(w)).count(), STOP)
        }),
        stop_row(runs, "kernel warnings", |v| Cell::count(&v.name, v.kernel_warnings.len(), STOP)),
        side_effect_row(runs),
    ];
    rows.extend(upstream_rows(runs));
    rows.push(stop_row(runs, "scenario programs accepted by the verifier", |v| {
        counted(v, |p| matches!(p.verdict, Some(Verdict::Accepted)))
    }));
    rows.push(stop_row(runs, "scenario programs rejected by the verifier", |v| {
        counted(v, |p| matches!(p.verdict, Some(Verdict::Rejected { .. })))
    }));
    rows
}

fn stop_row(runs: &Runs, label: &str, f: impl Fn(&VariantResult) -> Cell) -> Row {
    Row::new(Group::Correctness, label, runs.cells(runs.run(STOP), STOP, f))
}

/// How many of the variant's stop programs `pred` holds for.
fn counted(v: &VariantResult, pred: impl Fn(&ProgramResult) -> bool) -> Cell {
    Cell::count(&v.name, scenario_programs(v).filter(|p| pred(p)).count(), STOP)
}

/// The count, and the distinct reasons in a note.
fn not_stoppable(v: &VariantResult) -> Cell {
    let reasons: Vec<&str> = scenario_programs(v).filter_map(|p| p.stop.as_ref()?.not_stoppable.as_deref()).collect();
    let distinct: BTreeSet<&str> = reasons.iter().copied().collect();
    Cell::count(&v.name, reasons.len(), STOP).noted(distinct.into_iter().collect::<Vec<_>>().join("; "))
}

/// Programs a leak check failed for, named in a note.
fn leaks(v: &VariantResult) -> Cell {
    let leaked: Vec<&str> = scenario_programs(v)
        .filter(|p| p.checks.iter().any(|c| !c.ok && LEAK_CHECKS.contains(&c.what.as_str())))
        .map(|p| p.id.as_str())
        .collect();
    let note = if leaked.is_empty() { String::new() } else { format!("leaked: {}", leaked.join(", ")) };
    Cell::count(&v.name, leaked.len(), STOP).noted(note)
}

/// The program that writes a map value after its loop and returns what its previous run wrote.
const SIDE_EFFECT: &str = "side_effect_after_loop";

fn side_effect_row(runs: &Runs) -> Row {
    let source = at(STOP, SIDE_EFFECT);
    Row::new(Group::Correctness, "side effects after the stop", runs.cells(runs.run(STOP), &source, side_effect))
}

/// Whether a stopped run went on to write after its loop: the complete count (1), the
/// truncated one (2), or nothing (0).
fn side_effect(v: &VariantResult) -> Cell {
    let source = at(STOP, SIDE_EFFECT);
    let Some(p) = v.program(SIDE_EFFECT) else { return Cell::missing(&v.name, source) };
    let Some(r) = p.retval.filter(|_| p.verdict == Some(Verdict::Accepted)) else {
        return Cell::text(&v.name, "not run", source);
    };
    let meaning = match r {
        0 => " (nothing written)",
        1 => " (ran to the end)",
        2 => " (finished on its own paths)",
        _ => "",
    };
    Cell { value: Some(f64::from(r)), ..Cell::text(&v.name, format!("{r}{meaning}"), source) }
}

fn is_double_release(warning: &str) -> bool {
    DOUBLE_RELEASE.iter().any(|m| warning.contains(m))
}

/// Passed, failed and skipped upstream cases; a skip is neither passed nor failed.
fn upstream_rows(runs: &Runs) -> Vec<Row> {
    let (name, run) = runs.upstream();
    let row = |label: &str, pred: fn(&ProgramResult) -> bool| {
        let count = |v: &VariantResult| {
            let n = v.programs.iter().filter(|p| p.upstream.is_some() && pred(p)).count();
            Cell::count(&v.name, n, name)
        };
        Row::new(Group::Correctness, label, runs.cells(run, name, count))
    };
    vec![
        row("upstream selftests passed", |p| p.skipped.is_none() && p.passed()),
        row("upstream selftests failed", |p| p.skipped.is_none() && !p.passed()),
        row("upstream selftests skipped", |p| p.skipped.is_some()),
    ]
}
