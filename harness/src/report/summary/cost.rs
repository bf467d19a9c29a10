//! Cost rows: the normal path (`overhead`), stopping (`stop`, and throwing in `throw`) and
//! loading (the `stop` programs every variant accepted). Durations differ exactly only under
//! icount; sizes and verifier counts always do.

use super::build::{at, counts_instructions, deltas_if, in_unit, scenario_programs, Runs, OVERHEAD, STOP, THROW};
use super::model::{Cell, Group, Row, MISSING};
use crate::results::metrics::run_median;
use crate::results::schema::{distinct_programs, refs_hint, ProgramResult, RunResult, VariantResult};
use crate::results::stats::median;
use bpfh_protocol::{LoadInfo, ProgType, Verdict};

/// The normal-path measures: (label, program, what its run repeats).
const NORMAL_PATH: [(&str, &str, u32); 3] = [
    ("per pair, 1 held", "hold1_tc", 1),
    ("per pair, 32 held", "hold32_tc", 32),
    ("loop iteration", "iter1k_tc", 1000),
];

/// Each measure unarmed, then with the watchdog armed (`_armed`; unarmed where a variant has
/// none): a design that can stop a program pays the armed cost on its normal path.
pub fn normal_path(runs: &Runs) -> Vec<Row> {
    let empty = runs.run(OVERHEAD).and_then(empty_tc).unwrap_or("empty_tc");
    let mut rows = Vec::new();
    for (armed, suffix) in [("", ""), (", watchdog armed", "_armed")] {
        for (what, id, per) in NORMAL_PATH {
            let id = format!("{id}{suffix}");
            rows.push(net_cost_row(runs, &format!("{what}{armed} ({id} − empty) / {per}"), &id, empty, per));
        }
    }
    rows.push(run_cost_row(runs, Group::NormalPathCost, OVERHEAD, "empty run (tc)", empty));
    rows
}

/// The id of the empty tc program the harness measures beside the scenario's.
fn empty_tc(run: &RunResult) -> Option<&str> {
    let programs = distinct_programs(run.variants.iter().flat_map(|v| &v.programs));
    programs.into_iter().find(|p| p.fixed_overhead_reference && p.prog_type == ProgType::Tc).map(|p| p.id.as_str())
}

/// (median of `id` − median of the empty program) / `per`, per variant: the run's fixed cost
/// (the system call, the context) is no part of a pair or an iteration.
fn net_cost_row(runs: &Runs, label: &str, id: &str, empty: &str, per: u32) -> Row {
    let run = runs.run(OVERHEAD);
    let source = format!("{} − {empty}", at(OVERHEAD, id));
    let net = |v: &VariantResult| match (median_of(v, id), median_of(v, empty)) {
        (Ok(cost), Ok(fixed)) => Cell::number(&v.name, (cost - fixed) / f64::from(per), &source),
        (Err(why), _) | (_, Err(why)) => Cell::text(&v.name, why, &source),
    };
    let cells = runs.cells(run, &source, net);
    Row::new(Group::NormalPathCost, in_unit(label, run), deltas_if(counts_instructions(run), cells))
}

/// Program `id`'s median run cost.
fn run_cost_row(runs: &Runs, group: Group, scenario: &str, label: &str, id: &str) -> Row {
    let run = runs.run(scenario);
    let source = at(scenario, id);
    let cost = |v: &VariantResult| match median_of(v, id) {
        Ok(m) => Cell::number(&v.name, m, &source),
        Err(why) => Cell::text(&v.name, why, &source),
    };
    let cells = runs.cells(run, &source, cost);
    Row::new(group, in_unit(label, run), deltas_if(counts_instructions(run), cells))
}

/// Program `id`'s median run cost, or what its cell shows instead.
fn median_of(v: &VariantResult, id: &str) -> Result<f64, &'static str> {
    let Some(p) = v.program(id) else { return Err(MISSING) };
    match (&p.verdict, run_median(p)) {
        (Some(Verdict::Rejected { .. }), _) => Err("rejected"),
        (_, Some(m)) => Ok(m),
        (_, None) => Err("no samples"),
    }
}

pub fn stop(runs: &Runs) -> Vec<Row> {
    let group = Group::StopCost;
    let mut rows = vec![
        latency_row(runs, "stop latency, median (syscall programs)", median_latency),
        latency_row(runs, "stop latency, worst (syscall programs)", worst_latency),
    ];
    rows.extend(cleanup_rows(runs));
    rows.push(run_cost_row(runs, group, THROW, "throw, 0 references held", "throw_refs0"));
    rows.push(run_cost_row(runs, group, THROW, "throw, 8 references held", "throw_refs8"));
    rows
}

const EVERY_STOPPED: &str = "stop: every stopped syscall program";

fn latency_row(runs: &Runs, label: &str, cell: fn(&VariantResult) -> Cell) -> Row {
    let run = runs.run(STOP);
    let cells = runs.cells(run, EVERY_STOPPED, cell);
    Row::new(Group::StopCost, in_unit(label, run), deltas_if(counts_instructions(run), cells))
}

fn median_latency(v: &VariantResult) -> Cell {
    let samples: Vec<f64> = latencies(v).map(|(l, _)| l).collect();
    median(&samples).map_or_else(|| none_stopped(v), |m| Cell::number(&v.name, m, EVERY_STOPPED))
}

/// The worst sample, from the program it names.
fn worst_latency(v: &VariantResult) -> Cell {
    let worst = latencies(v).reduce(|a, b| if b.0 > a.0 { b } else { a });
    worst.map_or_else(|| none_stopped(v), |(l, id)| Cell::number(&v.name, l, at(STOP, id)))
}

fn none_stopped(v: &VariantResult) -> Cell {
    Cell::text(&v.name, "none stopped", EVERY_STOPPED)
}

/// Every stop latency sample of every stopped syscall program, with the program's id: a tc
/// program's system call also builds and frees an skb, which would skew the statistics.
fn latencies(v: &VariantResult) -> impl Iterator<Item = (f64, &str)> {
    let stopped = scenario_programs(v).filter(|p| p.stopped() && p.prog_type == ProgType::Syscall);
    stopped.flat_map(|p| p.stop.iter().flat_map(|s| &s.latency).map(move |&l| (l as f64, p.id.as_str())))
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

/// Why the verifier's peak memory is `not measured`.
const PEAK_MEMORY: &str = "no verifier peak memory figure: a run by a runner older than the measurement, or a kernel \
                           the runner's tracer (guest/bpf/verifier_mem.bpf.c) cannot attach to (the guest console \
                           says why)";

pub fn load_time(runs: &Runs) -> Vec<Row> {
    let run = runs.run(STOP);
    let common = run.map(accepted_by_all).unwrap_or_default();
    let source = format!("{STOP}: programs every variant accepted: {}", common.len());
    let row = |label: &str, exact: bool, field: fn(&LoadInfo) -> Option<f64>| {
        let cells = runs.cells(run, &source, |v| load_sum(v, &common, field, &source));
        Row::new(Group::LoadTimeCost, label, deltas_if(exact, cells))
    };
    vec![
        row("verified_insns", true, |i| Some(f64::from(i.verified_insns))),
        row("total_states", true, |i| i.total_states.map(f64::from)),
        row("verification_time_us (guest clock)", counts_instructions(run), |i| {
            i.verification_time_us.map(|t| t as f64)
        }),
        peak_memory_row(runs, run, &common),
        row("descriptor / table bytes (exc_desc_bytes)", true, |i| i.extra.get("exc_desc_bytes").map(|&b| b as f64)),
        row("jited_len (bytes)", true, |i| Some(f64::from(i.jited_len))),
    ]
}

fn peak_bytes(v: &VariantResult, id: &str) -> Option<u64> {
    v.program(id)?.load_info.as_ref()?.verifier_peak_bytes
}

/// The verifier's peak memory (veristat's `mem_peak`) of the one `common` program that needed
/// the most on any variant, on every variant: a peak does not add up over programs, and one
/// program on every variant compares designs.
fn peak_memory_row(runs: &Runs, run: Option<&RunResult>, common: &[&str]) -> Row {
    let label = "verifier peak memory, most of any program (bytes)";
    let most = |id: &&str| run.into_iter().flat_map(|r| &r.variants).filter_map(|v| peak_bytes(v, id)).max();
    let largest = common.iter().filter_map(|id| Some((most(id)?, *id))).max_by_key(|&(bytes, _)| bytes);
    let Some((_, id)) = largest else {
        let not_measured = |v: &VariantResult| Cell::text(&v.name, "not measured", STOP).noted(PEAK_MEMORY.into());
        return Row::new(Group::LoadTimeCost, label, runs.cells(run, STOP, not_measured));
    };
    let source = at(STOP, id);
    let cell = |v: &VariantResult| match peak_bytes(v, id) {
        Some(bytes) => Cell::number(&v.name, bytes as f64, &source),
        None => Cell::text(&v.name, "not measured", &source).noted(PEAK_MEMORY.into()),
    };
    Row::new(Group::LoadTimeCost, label, deltas_if(true, runs.cells(run, &source, cell)))
}

/// The stop programs every variant of the run accepted: a sum over programs another variant
/// rejected would not compare.
fn accepted_by_all(run: &RunResult) -> Vec<&str> {
    let accepted = |v: &VariantResult, id: &str| v.program(id).is_some_and(|p| p.verdict == Some(Verdict::Accepted));
    let ids = run.variants.first().map(|v| scenario_programs(v).map(|p| p.id.as_str()).collect::<Vec<_>>());
    ids.unwrap_or_default().into_iter().filter(|id| run.variants.iter().all(|v| accepted(v, id))).collect()
}

/// `field` summed over the `common` programs; `n/a` where none reports it.
fn load_sum(v: &VariantResult, common: &[&str], field: fn(&LoadInfo) -> Option<f64>, source: &str) -> Cell {
    let info = common.iter().filter_map(|id| v.program(id)?.load_info.as_ref());
    let values: Vec<f64> = info.filter_map(field).collect();
    match values.is_empty() {
        true => Cell::text(&v.name, "n/a", source),
        false => Cell::number(&v.name, values.iter().sum(), source),
    }
}
