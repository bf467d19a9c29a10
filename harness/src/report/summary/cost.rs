//! Cost rows: the normal path (`overhead`), stopping (`stop`, and throwing in `throw`) and
//! loading (`stop`'s accepted programs). Durations differ exactly only under icount; sizes and
//! verifier counts always do.

use super::build::{at, counts_instructions, deltas_if, in_unit, scenario_programs, Runs, OVERHEAD, STOP, THROW};
use super::model::{Cell, Group, Row};
use crate::results::metrics::run_median;
use crate::results::schema::{distinct_programs, refs_hint, ProgramResult, RunResult, VariantResult};
use crate::results::stats::median;
use bpfh_protocol::{LoadInfo, ProgType, Verdict};

pub fn normal_path(runs: &Runs) -> Vec<Row> {
    let group = Group::NormalPathCost;
    let empty = runs.run(OVERHEAD).and_then(empty_tc).unwrap_or("empty_tc");
    vec![
        run_cost_row(runs, group, OVERHEAD, "acquire/release pair, 1 held", "hold1_tc", 1.0),
        run_cost_row(runs, group, OVERHEAD, "acquire/release pair, 32 held", "hold32_tc", 1.0),
        run_cost_row(runs, group, OVERHEAD, "loop iteration (median / 1000)", "iter1k_tc", 1000.0),
        run_cost_row(runs, group, OVERHEAD, "empty run (tc)", empty, 1.0),
    ]
}

/// The id of the empty tc program the harness measures beside the scenario's.
fn empty_tc(run: &RunResult) -> Option<&str> {
    let programs = distinct_programs(run.variants.iter().flat_map(|v| &v.programs));
    programs.into_iter().find(|p| p.fixed_overhead_reference && p.prog_type == ProgType::Tc).map(|p| p.id.as_str())
}

/// Program `id`'s median run cost, divided by `per`.
fn run_cost_row(runs: &Runs, group: Group, scenario: &str, label: &str, id: &str, per: f64) -> Row {
    let run = runs.run(scenario);
    let source = at(scenario, id);
    let cells = runs.cells(run, &source, |v| run_cost(v, id, per, &source));
    Row::new(group, in_unit(label, run), deltas_if(counts_instructions(run), cells))
}

fn run_cost(v: &VariantResult, id: &str, per: f64, source: &str) -> Cell {
    let Some(p) = v.program(id) else { return Cell::missing(&v.name, source) };
    match (&p.verdict, run_median(p)) {
        (Some(Verdict::Rejected { .. }), _) => Cell::text(&v.name, "rejected", source),
        (_, Some(m)) => Cell::number(&v.name, m / per, source),
        (_, None) => Cell::text(&v.name, "no samples", source),
    }
}

pub fn stop(runs: &Runs) -> Vec<Row> {
    let group = Group::StopCost;
    let mut rows =
        vec![latency_row(runs, "stop latency, median", median), latency_row(runs, "stop latency, worst", worst)];
    rows.extend(cleanup_rows(runs));
    rows.push(run_cost_row(runs, group, THROW, "throw, 0 references held", "throw_refs0", 1.0));
    rows.push(run_cost_row(runs, group, THROW, "throw, 8 references held", "throw_refs8", 1.0));
    rows
}

const EVERY_STOPPED: &str = "stop: every stopped program";

fn latency_row(runs: &Runs, label: &str, statistic: fn(&[f64]) -> Option<f64>) -> Row {
    let run = runs.run(STOP);
    let cell = |v: &VariantResult| match statistic(&latencies(v)) {
        Some(x) => Cell::number(&v.name, x, EVERY_STOPPED),
        None => Cell::text(&v.name, "none stopped", EVERY_STOPPED),
    };
    let cells = runs.cells(run, EVERY_STOPPED, cell);
    Row::new(Group::StopCost, in_unit(label, run), deltas_if(counts_instructions(run), cells))
}

/// Every stop latency sample of every stopped program.
fn latencies(v: &VariantResult) -> Vec<f64> {
    let stopped = scenario_programs(v).filter(|p| p.stopped()).filter_map(|p| p.stop.as_ref());
    stopped.flat_map(|s| s.latency.iter().map(|&l| l as f64)).collect()
}

fn worst(xs: &[f64]) -> Option<f64> {
    xs.iter().copied().reduce(f64::max)
}

/// Per `refs<N>` series of the stop run: what each further held reference adds to a stop.
fn cleanup_rows(runs: &Runs) -> Vec<Row> {
    let run = runs.run(STOP);
    let series = run.map(series).unwrap_or_default();
    if series.is_empty() {
        let none = |v: &VariantResult| Cell::text(&v.name, "no refs<N> series", STOP);
        return vec![Row::new(Group::StopCost, "cleanup per held reference", runs.cells(run, STOP, none))];
    }
    let row = |(name, source): (String, String)| {
        let cells = runs.cells(run, &source, |v| cleanup(v, &name, &source));
        let label = in_unit(&format!("cleanup per held reference ({name})"), run);
        Row::new(Group::StopCost, label, deltas_if(counts_instructions(run), cells))
    };
    series.into_iter().map(row).collect()
}

/// The stop run's series with at least two sizes, in the order met, each with its source
/// (`stop/hold_task_refs{1,8}`: its smallest and largest size).
fn series(run: &RunResult) -> Vec<(String, String)> {
    let programs = distinct_programs(run.variants.iter().flat_map(|v| &v.programs));
    let sized: Vec<(String, u32, &str)> =
        programs.iter().filter_map(|p| refs_hint(&p.id).map(|(s, n)| (s, n, p.id.as_str()))).collect();
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, _, id) in &sized {
        let sizes = sized.iter().filter(|(s, _, _)| s == name).map(|(_, n, _)| *n);
        let (lo, hi) = (sizes.clone().min().unwrap_or(0), sizes.max().unwrap_or(0));
        if hi > lo && !out.iter().any(|(s, _)| s == name) {
            out.push((name.clone(), at(STOP, &with_sizes(id, lo, hi))));
        }
    }
    out
}

/// `hold_task_refs8` -> `hold_task_refs{1,8}`.
fn with_sizes(id: &str, lo: u32, hi: u32) -> String {
    let sized = |t: &str| t.strip_prefix("refs").is_some_and(|n| n.parse::<u32>().is_ok());
    let tokens: Vec<String> =
        id.split('_').map(|t| if sized(t) { format!("refs{{{lo},{hi}}}") } else { t.to_string() }).collect();
    tokens.join("_")
}

/// (median latency at the most references − at the fewest) / (difference in references), over
/// the series' stopped programs of this variant.
fn cleanup(v: &VariantResult, series: &str, source: &str) -> Cell {
    let points = stopped_sizes(v, series);
    match (points.first(), points.last()) {
        (Some(&(lo, lo_id, lo_median)), Some(&(hi, _, hi_median))) if hi > lo => {
            let per_ref = (hi_median - lo_median) / f64::from(hi - lo);
            Cell::number(&v.name, per_ref, at(STOP, &with_sizes(lo_id, lo, hi)))
        }
        _ => Cell::text(&v.name, "not stopped", source),
    }
}

/// (references held, id, median stop latency) of the series' stopped programs, fewest first.
fn stopped_sizes<'a>(v: &'a VariantResult, series: &str) -> Vec<(u32, &'a str, f64)> {
    let point = |p: &'a ProgramResult| {
        let (name, n) = refs_hint(&p.id)?;
        if name != series || !p.stopped() {
            return None;
        }
        let samples: Vec<f64> = p.stop.as_ref()?.latency.iter().map(|&l| l as f64).collect();
        Some((n, p.id.as_str(), median(&samples)?))
    };
    let mut points: Vec<_> = scenario_programs(v).filter_map(point).collect();
    points.sort_by_key(|&(n, _, _)| n);
    points
}

pub fn load_time(runs: &Runs) -> Vec<Row> {
    let run = runs.run(STOP);
    let not_measured = |v: &VariantResult| Cell::text(&v.name, "not measured", STOP);
    vec![
        load_row(runs, "verified_insns", true, |i| Some(f64::from(i.verified_insns))),
        load_row(runs, "total_states", true, |i| i.total_states.map(f64::from)),
        load_row(runs, "verification_time_us (guest clock)", counts_instructions(run), |i| {
            i.verification_time_us.map(|t| t as f64)
        }),
        Row::new(Group::LoadTimeCost, "verifier peak memory", runs.cells(run, STOP, not_measured)),
        load_row(runs, "descriptor / table bytes (exc_desc_bytes)", true, |i| {
            i.extra.get("exc_desc_bytes").map(|&b| b as f64)
        }),
        load_row(runs, "jited_len (bytes)", true, |i| Some(f64::from(i.jited_len))),
    ]
}

/// Where the load rows come from; how many programs each variant accepted is a correctness row.
const ACCEPTED: &str = "stop: accepted programs";

/// `field` summed over the variant's accepted stop programs; `n/a` where none reports it.
fn load_row(runs: &Runs, label: &str, exact: bool, field: fn(&LoadInfo) -> Option<f64>) -> Row {
    let sum = |v: &VariantResult| {
        let accepted = scenario_programs(v).filter(|p| matches!(p.verdict, Some(Verdict::Accepted)));
        let values: Vec<f64> = accepted.filter_map(|p| field(p.load_info.as_ref()?)).collect();
        match values.is_empty() {
            true => Cell::text(&v.name, "n/a", ACCEPTED),
            false => Cell::number(&v.name, values.iter().sum(), ACCEPTED),
        }
    };
    Row::new(Group::LoadTimeCost, label, deltas_if(exact, runs.cells(runs.run(STOP), ACCEPTED, sum)))
}
