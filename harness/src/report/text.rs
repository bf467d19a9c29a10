//! Terminal rendering of a run, variants side by side: for every program, each variant's
//! correctness outcome and run cost with its difference to the baseline, then the load-time
//! metrics the same way. Under icount a difference is exact; under wallclock it comes with a
//! confidence interval and a p-value, and a difference inside the noise is called that.

use crate::report::cells::{baseline_index, exact_delta, noisy_delta, num, render_rows};
use crate::results::metrics;
use crate::results::schema::{distinct_programs, Origin, ProgramResult, RunResult};
use crate::results::stats;
use crate::scenario::metric;
use crate::verdict::outcome::{variant_health, Outcome};
use crate::vm::qemu::Mode;
use std::collections::BTreeMap;

/// Program ids in first-seen order over all variants, with their type and fixed-cost flag
/// (upstream selftest programs have a table of their own).
fn program_ids(run: &RunResult) -> Vec<(String, String)> {
    distinct_programs(run.variants.iter().flat_map(|v| &v.programs).filter(|p| p.upstream.is_none()))
        .into_iter()
        .map(|p| {
            let label = if p.fixed_overhead_reference { " (empty: fixed cost)" } else { "" };
            (p.id.clone(), format!("{}{label}", p.prog_type.as_str()))
        })
        .collect()
}

pub fn render(run: &RunResult) -> String {
    let p = &run.provenance;
    let mut out = format!(
        "scenario {}: {}\nmeasured: {}\naccel {:?}, mode {:?}, unit {}, {}; harness {}{}\n",
        run.scenario.name,
        run.scenario.description,
        p.measurement,
        p.accel,
        p.mode,
        p.unit,
        p.qemu_version,
        p.short_commit(),
        if p.harness_dirty { " (dirty)" } else { "" }
    );
    let base = baseline_index(run);
    let base_name = run.variants.get(base).map_or("-", |v| v.name.as_str());
    if run.variants.len() > 1 {
        let how = match p.mode {
            Mode::Icount => "exact differences of instruction counts",
            Mode::Wallclock => "differences of medians with a 95% bootstrap CI and a Mann-Whitney p-value",
        };
        out.push_str(&format!("each variant against {base_name}: {how}\n"));
    }
    out.push('\n');
    out.push_str(&render_rows(&run_rows(run, base)));
    out.push_str(&render_load(run, base));
    out.push_str(&selftests_table(run));
    out.push_str(&details(run));
    out
}

/// One row per program: each variant's outcome, run cost and difference to the baseline.
fn run_rows(run: &RunResult, base: usize) -> Vec<Vec<String>> {
    let mode = run.provenance.mode;
    let unit = &run.provenance.unit;
    let mut header = vec!["program".to_string(), "type".into()];
    for (i, v) in run.variants.iter().enumerate() {
        header.push(v.name.clone());
        header.push(match mode {
            Mode::Icount => format!("run ({unit})"),
            Mode::Wallclock => format!("median {unit} [95% CI]"),
        });
        if i != base {
            header.push(format!("vs {}", run.variants[compared_with(run, i, base)].name));
        }
    }
    let mut rows = vec![header];
    for (id, ty) in program_ids(run) {
        let mut row = vec![id.clone(), ty];
        for (i, v) in run.variants.iter().enumerate() {
            let prog = v.program(&id);
            row.push(prog.map_or("-".into(), |p| Outcome::of(p).short()));
            row.push(prog.map_or("-".into(), |p| run_cell(p, mode)));
            if i != base {
                let reference = run.variants[compared_with(run, i, base)].program(&id);
                row.push(match (reference, prog) {
                    (Some(b), Some(p)) => run_delta(b, p, mode),
                    _ => "-".into(),
                });
            }
        }
        rows.push(row);
    }
    let mut health = vec!["(kernel)".to_string(), String::new()];
    for (i, v) in run.variants.iter().enumerate() {
        health.push(variant_health(v));
        health.push(if v.boots > 1 { format!("{} boots", v.boots) } else { String::new() });
        if i != base {
            health.push(String::new());
        }
    }
    rows.push(health);
    rows
}

/// The variant variant `i` is compared with: the shipped variant it is a revision of, when the
/// run has it; else the baseline.
fn compared_with(run: &RunResult, i: usize, base: usize) -> usize {
    let original = run.variants[i].revision_of.as_deref();
    original.and_then(|name| run.variants.iter().position(|v| v.name == name)).unwrap_or(base)
}

fn run_cell(p: &ProgramResult, mode: Mode) -> String {
    match mode {
        Mode::Icount => metrics::run_median(p).map_or("-".into(), num),
        Mode::Wallclock => match stats::estimate(&p.samples) {
            Some(e) => format!("{} [{}, {}] n={}", num(e.median), num(e.ci.lo), num(e.ci.hi), e.n),
            None => "-".into(),
        },
    }
}

fn run_delta(base: &ProgramResult, p: &ProgramResult, mode: Mode) -> String {
    match mode {
        Mode::Icount => match (metrics::run_median(base), metrics::run_median(p)) {
            (Some(b), Some(v)) => exact_delta(b, v),
            _ => "-".into(),
        },
        Mode::Wallclock => stats::difference(&base.samples, &p.samples).map_or("-".into(), |d| noisy_delta(&d)),
    }
}

/// Load-time metrics, one row per program and metric, variants side by side.
fn render_load(run: &RunResult, base: usize) -> String {
    let mut header = vec!["program".to_string(), "metric".into()];
    for (i, v) in run.variants.iter().enumerate() {
        header.push(v.name.clone());
        if i != base {
            header.push(format!("vs {}", run.variants[compared_with(run, i, base)].name));
        }
    }
    let mut rows = vec![header];
    for (id, _) in program_ids(run) {
        let per_variant: Vec<Vec<(String, f64)>> = run
            .variants
            .iter()
            .map(|v| {
                v.program(&id).filter(|p| !p.fixed_overhead_reference).map(metrics::load_values).unwrap_or_default()
            })
            .collect();
        let mut keys: Vec<&String> = Vec::new();
        for (k, _) in per_variant.iter().flatten() {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        for (n, key) in keys.iter().enumerate() {
            let get = |i: usize| per_variant[i].iter().find(|(k, _)| k == *key).map(|(_, v)| *v);
            let mut row = vec![if n == 0 { id.clone() } else { String::new() }, metric::label(key)];
            for i in 0..run.variants.len() {
                row.push(get(i).map_or("-".into(), num));
                if i != base {
                    row.push(match (get(compared_with(run, i, base)), get(i)) {
                        (Some(b), Some(v)) => exact_delta(b, v),
                        _ => "-".into(),
                    });
                }
            }
            rows.push(row);
        }
    }
    if rows.len() == 1 {
        return String::new();
    }
    let clock = if run.provenance.mode == Mode::Icount {
        "verifier clock in guest us: thousands of guest instructions under icount"
    } else {
        "verifier clock in guest us, from one boot"
    };
    format!("\nload (accepted programs; {clock}):\n{}", render_rows(&rows))
}

/// What failed, in full: incomplete guests, kernel warnings, guest errors, failed checks.
fn details(run: &RunResult) -> String {
    let mut out = String::new();
    for v in &run.variants {
        if let Some(failure) = &v.failure {
            out.push_str(&format!("\n[{}] INCOMPLETE: {failure}\n", v.name));
            if !v.console_log.as_os_str().is_empty() {
                out.push_str(&format!("console: {}\n", v.console_log.display()));
            }
        }
        for w in &v.kernel_warnings {
            let kind = crate::vm::console::kind(w);
            out.push_str(&format!(
                "\n[{}] KERNEL WARNING: {kind} (console: {}):\n{w}\n",
                v.name,
                v.console_log.display()
            ));
        }
        for e in &v.guest_errors {
            out.push_str(&format!("\n[{}] guest error: {e}\n", v.name));
        }
        // Upstream programs' failures are listed under their own table.
        for prog in v.programs.iter().filter(|p| p.upstream.is_none()) {
            for c in prog.checks.iter().filter(|c| !c.ok) {
                out.push_str(&format!("\n[{}] {} {}: {}\n", v.name, prog.id, c.what, c.detail));
            }
        }
    }
    out
}

/// Upstream selftest cases of a run, one row each: every variant's pass, FAIL or skip; then the reasons
/// of skips, failures and declared differences.
fn selftests_table(run: &RunResult) -> String {
    let ids: Vec<(&str, &Origin)> =
        distinct_programs(run.variants.iter().flat_map(|v| &v.programs).filter(|p| p.upstream.is_some()))
            .into_iter()
            .filter_map(|p| Some((p.id.as_str(), p.upstream.as_ref()?)))
            .collect();
    if ids.is_empty() {
        return String::new();
    }
    let mut header = vec!["upstream program".to_string(), "section".into()];
    header.extend(run.variants.iter().map(|v| v.name.clone()));
    header.push("description".into());
    let mut rows = vec![header];
    let mut notes = Vec::new();
    for (id, origin) in &ids {
        let mut row = vec![id.to_string(), origin.section.trim_start_matches('?').to_string()];
        // A case every variant skips for the same reason gets one note, not one per variant.
        let reasons: Vec<Option<&str>> =
            run.variants.iter().map(|v| v.program(id).and_then(|p| p.skipped.as_deref())).collect();
        let skipped_alike = run.variants.len() > 1 && reasons.iter().all(|r| r.is_some() && *r == reasons[0]);
        if let (true, Some(reason)) = (skipped_alike, reasons[0]) {
            notes.push(format!("{id}: skipped on every variant: {reason}"));
        }
        for v in &run.variants {
            let cell = match v.program(id) {
                None => "-".to_string(),
                Some(p) if p.skipped.is_some() => {
                    if !skipped_alike {
                        notes.push(format!(
                            "{id} on {}: skipped: {}",
                            v.name,
                            p.skipped.as_deref().unwrap_or_default()
                        ));
                    }
                    "skip".into()
                }
                Some(p) => {
                    for c in p.checks.iter().filter(|c| !c.ok) {
                        notes.push(format!("{id} on {}: FAILED {}: {}", v.name, c.what, c.detail));
                    }
                    let differs = p.upstream.as_ref().and_then(|o| o.declared_difference.as_ref());
                    match (p.passed(), differs) {
                        (true, Some(reason)) => {
                            notes.push(format!("{id} on {}: differs from upstream as declared: {reason}", v.name));
                            "pass (declared difference)".into()
                        }
                        (true, None) => "pass".into(),
                        (false, _) => "FAIL".into(),
                    }
                }
            };
            row.push(cell);
        }
        row.push(origin.description.clone().unwrap_or_default());
        rows.push(row);
    }
    let mut totals = vec!["(totals)".to_string(), String::new()];
    for v in &run.variants {
        let upstream: Vec<&ProgramResult> = v.programs.iter().filter(|p| p.upstream.is_some()).collect();
        let skipped = upstream.iter().filter(|p| p.skipped.is_some()).count();
        let failed = upstream.iter().filter(|p| p.skipped.is_none() && !p.passed()).count();
        totals.push(format!("{} pass, {failed} fail, {skipped} skip", upstream.len() - skipped - failed));
    }
    rows.push(totals);
    let mut out = format!("\nupstream selftest programs (checked as test_loader.c does)\n{}", render_rows(&rows));
    for note in notes {
        out.push_str(&format!("  {note}\n"));
    }
    for v in &run.variants {
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for reason in v.programs.iter().filter(|p| p.upstream.is_some()).filter_map(|p| p.skipped.as_deref()) {
            *kinds.entry(crate::selftests::skip_kind(reason)).or_default() += 1;
        }
        if !kinds.is_empty() {
            let counts: Vec<String> = kinds.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
            out.push_str(&format!("  skipped on {}, by reason: {}\n", v.name, counts.join("; ")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::two_variants;

    #[test]
    fn variants_side_by_side_under_icount() {
        insta::assert_snapshot!(render(&two_variants()));
    }

    #[test]
    fn a_revision_is_compared_with_the_variant_it_revises() {
        let mut run = two_variants();
        let mut mine = run.variants[1].clone();
        mine.name = "mine".into();
        mine.revision_of = Some("exception-unwind".into());
        for p in &mut mine.programs {
            p.samples = p.samples.iter().map(|s| s + 2).collect();
            p.summary = crate::results::schema::Summary::of(&p.samples);
        }
        run.variants.push(mine);
        let text = render(&run);
        let words = |prefix: &str| {
            let line = text.lines().find(|l| l.starts_with(prefix)).unwrap();
            line.split_whitespace().collect::<Vec<_>>().join(" ")
        };
        let header = words("program");
        assert!(header.ends_with("mine run (insns) vs exception-unwind"), "{header}");
        let row = words("task_ref_tc");
        assert!(row.ends_with("332 +2 (+0.61%)"), "{row}");
    }

    #[test]
    fn wallclock_differences_say_whether_they_are_noise() {
        let mut run = two_variants();
        run.provenance.mode = Mode::Wallclock;
        run.provenance.unit = "ns".into();
        for v in &mut run.variants {
            v.boots = 3;
        }
        let spread = |base: u64| (0..15).map(|i| base + (i * 7) % 23).collect::<Vec<u64>>();
        run.variants[0].programs[0].samples = spread(1000);
        run.variants[1].programs[0].samples = spread(1002);
        run.variants[0].programs[2].samples = spread(1000);
        run.variants[1].programs[2].samples = spread(1100);
        let text = render(&run);
        let line = |id: &str| text.lines().find(|l| l.starts_with(id)).unwrap().to_string();
        assert!(line("empty_tc").contains("~ noise: +"), "{text}");
        let slower = line("task_ref_tc");
        assert!(slower.contains("+100 (+9.") && slower.contains("p=0.000"), "{text}");
        assert!(text.contains("median ns [95% CI]") && text.contains("3 boots"), "{text}");
    }
}
