//! Coverage: per kind of resource, whether each variant released it when it stopped the `stop`
//! programs holding it.

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

/// `FAILS` when a program holding `kind` did not pass; `released` when each was stopped and
/// passed, or with a count when some could not be stopped (the note says which and why); `not
/// stopped` when none was.
fn cell(v: &VariantResult, kind: &str, source: &str) -> Cell {
    let programs: Vec<&ProgramResult> = holding(v, kind).collect();
    let ids = |ps: &[&ProgramResult]| ps.iter().map(|p| p.id.as_str()).collect::<Vec<_>>().join(", ");
    let cell = |display: &str, note: String| Cell::text(&v.name, display, source).noted(note);
    let failed: Vec<&ProgramResult> = programs.iter().copied().filter(|p| !p.passed()).collect();
    let unstopped: Vec<&ProgramResult> = programs.iter().copied().filter(|p| !p.stopped()).collect();
    let reasons: BTreeSet<&str> = unstopped.iter().filter_map(|p| p.stop.as_ref()?.not_stoppable.as_deref()).collect();
    let reasons = reasons.into_iter().collect::<Vec<_>>().join("; ");
    // The reason alone when nothing was stopped (the same note for every kind), else which.
    let why = |all: bool| match (reasons.is_empty(), all) {
        (true, _) => format!("did not stop: {}", ids(&unstopped)),
        (false, true) => reasons.clone(),
        (false, false) => format!("not stopped: {} ({reasons})", ids(&unstopped)),
    };
    if programs.is_empty() {
        cell("no program", String::new())
    } else if !failed.is_empty() {
        cell("FAILS", format!("failed: {}", ids(&failed)))
    } else if unstopped.len() == programs.len() {
        cell("not stopped", why(true))
    } else if !unstopped.is_empty() {
        cell(&format!("released ({} of {} not stopped)", unstopped.len(), programs.len()), why(false))
    } else {
        cell("released", String::new())
    }
}
