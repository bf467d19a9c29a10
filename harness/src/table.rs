//! Terminal rendering of a run, variants side by side: for every program, each variant's
//! correctness outcome and run cost with its difference to the baseline, then the load-time
//! metrics the same way. Under icount a difference is exact; under wallclock it comes with a
//! confidence interval and a p-value, and a difference inside the noise is called that.

use crate::metrics::{self, Outcome};
use crate::results::{ProgramResult, RunResult, VariantResult};
use crate::stats;
use crate::vm::Mode;

/// Pads every column to its widest cell.
pub fn render_rows(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row.iter().enumerate().map(|(c, s)| format!("{s:<w$}", w = widths[c])).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// A number as counted: integers without a fraction, anything else with one decimal.
pub fn num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x:.1}")
    }
}

/// An exact difference: `=`, or `+18 (+5.77%)` (no percentage against a zero baseline).
pub fn exact_delta(base: f64, value: f64) -> String {
    let d = value - base;
    if d == 0.0 {
        return "=".into();
    }
    let sign = if d > 0.0 { "+" } else { "" };
    match relative(base, value) {
        Some(r) => format!("{sign}{} ({sign}{:.2}%)", num(d), r * 100.0),
        None => format!("{sign}{}", num(d)),
    }
}

pub fn relative(base: f64, value: f64) -> Option<f64> {
    (base != 0.0).then(|| (value - base) / base.abs())
}

/// A wall-clock difference: significant ones with their interval and p-value, the others as noise.
pub fn noisy_delta(d: &stats::Difference) -> String {
    let sign = if d.delta > 0.0 { "+" } else { "" };
    let pct = d.relative.map(|r| format!(" ({sign}{:.1}%)", r * 100.0)).unwrap_or_default();
    let ci = format!("CI [{}, {}]", num(d.ci.lo.round()), num(d.ci.hi.round()));
    if d.significant {
        format!("{sign}{}{pct} {ci} p={:.3}", num(d.delta), d.p)
    } else {
        format!("~ noise: {sign}{}{pct} {ci} p={:.2}", num(d.delta), d.p)
    }
}

/// The variant the others are compared with: `baseline` if the run has it, else the first.
pub fn baseline_index(run: &RunResult) -> usize {
    run.variants.iter().position(|v| v.name == "baseline").unwrap_or(0)
}

/// Program ids in first-seen order over all variants, with their type and fixed-cost flag
/// (upstream selftest programs have a table of their own).
fn program_ids(run: &RunResult) -> Vec<(String, String)> {
    let mut ids: Vec<(String, String)> = Vec::new();
    for p in run.variants.iter().flat_map(|v| &v.programs).filter(|p| p.upstream.is_none()) {
        if !ids.iter().any(|(id, _)| *id == p.id) {
            let label = if p.fixed_overhead_reference { " (empty: fixed cost)" } else { "" };
            ids.push((p.id.clone(), format!("{}{label}", p.prog_type.as_str())));
        }
    }
    ids
}

fn find<'a>(v: &'a VariantResult, id: &str) -> Option<&'a ProgramResult> {
    v.programs.iter().find(|p| p.id == id)
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
        &p.harness_commit[..p.harness_commit.len().min(12)],
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
    out.push_str(&crate::upstream::render(run));
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
            header.push(format!("vs {}", run.variants[base].name));
        }
    }
    let mut rows = vec![header];
    for (id, ty) in program_ids(run) {
        let mut row = vec![id.clone(), ty];
        let base_prog = run.variants.get(base).and_then(|v| find(v, &id));
        for (i, v) in run.variants.iter().enumerate() {
            let prog = find(v, &id);
            row.push(prog.map_or("-".into(), |p| Outcome::of(p).short()));
            row.push(prog.map_or("-".into(), |p| run_cell(p, mode)));
            if i != base {
                row.push(match (base_prog, prog) {
                    (Some(b), Some(p)) => run_delta(b, p, mode),
                    _ => "-".into(),
                });
            }
        }
        rows.push(row);
    }
    let mut health = vec!["(kernel)".to_string(), String::new()];
    for (i, v) in run.variants.iter().enumerate() {
        health.push(metrics::variant_health(v));
        health.push(if v.boots > 1 { format!("{} boots", v.boots) } else { String::new() });
        if i != base {
            health.push(String::new());
        }
    }
    rows.push(health);
    rows
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
            header.push(format!("vs {}", run.variants[base].name));
        }
    }
    let mut rows = vec![header];
    for (id, _) in program_ids(run) {
        let per_variant: Vec<Vec<(String, f64)>> = run
            .variants
            .iter()
            .map(|v| find(v, &id).filter(|p| !p.fixed_overhead_reference).map(metrics::load_values).unwrap_or_default())
            .collect();
        let mut keys: Vec<&String> = Vec::new();
        for (k, _) in per_variant.iter().flatten() {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        for (n, key) in keys.iter().enumerate() {
            let get = |i: usize| per_variant[i].iter().find(|(k, _)| k == *key).map(|(_, v)| *v);
            let mut row = vec![if n == 0 { id.clone() } else { String::new() }, metrics::label(key)];
            for i in 0..run.variants.len() {
                row.push(get(i).map_or("-".into(), num));
                if i != base {
                    row.push(match (get(base), get(i)) {
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
            out.push_str(&format!("\n[{}] KERNEL WARNING (console: {}):\n{w}\n", v.name, v.console_log.display()));
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::results::{Check, RefCount, Summary};
    use bpfh_protocol::Verdict;

    pub(crate) fn fixture() -> RunResult {
        serde_json::from_str(include_str!("../tests/fixtures/simple-baseline.json")).unwrap()
    }

    /// The stored baseline run plus a patched variant that costs 18 more instructions per task
    /// reference run, rejects the syscall program and leaks on the tc program.
    pub(crate) fn two_variants() -> RunResult {
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

    #[test]
    fn columns_are_aligned() {
        let rows = vec![vec!["a".to_string(), "bb".into()], vec!["ccc".into(), "d".into()]];
        assert_eq!(render_rows(&rows), "a    bb\nccc  d\n");
    }

    #[test]
    fn exact_differences() {
        assert_eq!(exact_delta(312.0, 330.0), "+18 (+5.77%)");
        assert_eq!(exact_delta(312.0, 300.0), "-12 (-3.85%)");
        assert_eq!(exact_delta(10.0, 10.0), "=");
        assert_eq!(exact_delta(0.0, 24.0), "+24");
        assert_eq!(num(2.5), "2.5");
    }

    #[test]
    fn variants_side_by_side_under_icount() {
        insta::assert_snapshot!(render(&two_variants()));
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
