//! Coverage: per kind of resource, whether each variant released it when it stopped the `stop`
//! programs holding it, and whether a leak of it would have been counted at all.

use super::build::{scenario_programs, Runs, STOP};
use super::model::{Cell, Group, Row};
use crate::results::schema::{ProgramResult, VariantResult};
use crate::scenario::HELD_KINDS;
use std::collections::BTreeSet;

pub fn rows(runs: &Runs) -> Vec<Row> {
    let run = runs.run(STOP);
    let variants = run.map_or(&[][..], |r| r.variants.as_slice());
    let row = |kind: &&str| {
        let source = source(variants, kind);
        Row::new(Group::Coverage, *kind, runs.cells(run, &source, |v| cell(v, kind, &source)))
    };
    HELD_KINDS.iter().map(row).collect()
}

/// `stop: 11 programs holding task`: the programs are many, and the notes name those that matter.
fn source(variants: &[VariantResult], kind: &str) -> String {
    let mut ids: Vec<&str> = variants.iter().flat_map(|v| holding(v, kind)).map(|p| p.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    match ids.len() {
        1 => format!("{STOP}: 1 program holding {kind}"),
        n => format!("{STOP}: {n} programs holding {kind}"),
    }
}

fn holding<'a>(v: &'a VariantResult, kind: &'a str) -> impl Iterator<Item = &'a ProgramResult> {
    scenario_programs(v).filter(move |p| p.stop.as_ref().is_some_and(|s| s.holds.iter().any(|h| h == kind)))
}

/// The leak counter covering each counted kind: pid 1's task references cover tasks and, in
/// the stop programs, the local objects and map slots that own a task; cpumasks are counted as
/// the warm-up run takes and drops them. No counter covers the other kinds.
const COUNTERS: [(&str, &str); 4] =
    [("task", "task_refs"), ("local_object", "task_refs"), ("kptr_in_map", "task_refs"), ("cpumask", "cpumasks")];

/// Why a stopped kind shows `released (not counted)`: nothing would have shown its leak.
pub const NOT_COUNTED: &str = "no leak counter covers this kind: only kernel reports (refcount_t; lockdep and \
                               KASAN under --debug-kernel) would show a fault";

/// A released kind is a failure still when the kernel warned during the run: the warning may be
/// the release going wrong.
pub const WARNED: &str = "kernel warnings in the stop run";

/// `no program`; `FAILS` when a program holding `kind` did not pass or the kernel warned;
/// `not stopped` when none was stopped; else `released`, qualified by how many were not stopped
/// and whether any counter would have seen a leak.
fn cell(v: &VariantResult, kind: &str, source: &str) -> Cell {
    let programs: Vec<&ProgramResult> = holding(v, kind).collect();
    let text = |display: &str, note: String| Cell::text(&v.name, display, source).noted(note);
    let failed: Vec<&ProgramResult> = programs.iter().copied().filter(|p| !p.passed()).collect();
    let (stopped, unstopped): (Vec<&ProgramResult>, Vec<&ProgramResult>) = programs.iter().partition(|p| p.stopped());
    if programs.is_empty() {
        text("no program", String::new())
    } else if !failed.is_empty() {
        text("FAILS", format!("failed: {}", ids(&failed)))
    } else if stopped.is_empty() {
        text("not stopped", not_stopped(&unstopped, true))
    } else if !v.kernel_warnings.is_empty() {
        text("FAILS", WARNED.into())
    } else {
        released(v, kind, &stopped, &unstopped, source)
    }
}

fn released(
    v: &VariantResult,
    kind: &str,
    stopped: &[&ProgramResult],
    unstopped: &[&ProgramResult],
    source: &str,
) -> Cell {
    let mut qualifiers = Vec::new();
    let mut notes = Vec::new();
    if !unstopped.is_empty() {
        qualifiers.push(format!("{} of {} not stopped", unstopped.len(), stopped.len() + unstopped.len()));
        notes.push(not_stopped(unstopped, false));
    }
    if !counted(kind, stopped) {
        qualifiers.push("not counted".into());
        notes.push(NOT_COUNTED.into());
    }
    let display = match qualifiers.is_empty() {
        true => "released".to_string(),
        false => format!("released ({})", qualifiers.join(", ")),
    };
    Cell::text(&v.name, display, source).noted(notes.join("; "))
}

/// Whether a leak of `kind` would have shown: every stopped program holding it has the check
/// of the counter covering it.
fn counted(kind: &str, stopped: &[&ProgramResult]) -> bool {
    let Some(&(_, counter)) = COUNTERS.iter().find(|(k, _)| *k == kind) else { return false };
    stopped.iter().all(|p| p.checks.iter().any(|c| c.what == counter))
}

/// The reasons the `unstopped` programs give; the reason alone when `all` of the kind's were
/// not stopped (the same note for every kind), else which programs.
fn not_stopped(unstopped: &[&ProgramResult], all: bool) -> String {
    let reasons: BTreeSet<&str> = unstopped.iter().filter_map(|p| p.stop.as_ref()?.not_stoppable.as_deref()).collect();
    let reasons = reasons.into_iter().collect::<Vec<_>>().join("; ");
    match (reasons.is_empty(), all) {
        (true, _) => format!("did not stop: {}", ids(unstopped)),
        (false, true) => reasons,
        (false, false) => format!("not stopped: {} ({reasons})", ids(unstopped)),
    }
}

fn ids(programs: &[&ProgramResult]) -> String {
    programs.iter().map(|p| p.id.as_str()).collect::<Vec<_>>().join(", ")
}
