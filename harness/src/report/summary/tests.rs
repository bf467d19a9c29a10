use super::coverage::{NOT_COUNTED, WARNED};
use super::fixtures::{self, NO_WATCHDOG, UNBOUNDED};
use super::model::MISSING;
use super::*;
use crate::results;

fn summary() -> Summary {
    build(&fixtures::runs(), &[])
}

/// Without the repository: the columns are the variants the runs name.
fn of(runs: &[results::store::StoredRun]) -> Summary {
    build(runs, &[])
}

fn row<'a>(s: &'a Summary, label: &str) -> &'a Row {
    s.rows.iter().find(|r| r.label.starts_with(label)).unwrap_or_else(|| panic!("no row {label:?}"))
}

fn cell<'a>(s: &'a Summary, label: &str, variant: &str) -> &'a Cell {
    row(s, label).cell(variant).unwrap_or_else(|| panic!("no {variant} cell in {label:?}"))
}

fn shown<'a>(s: &'a Summary, label: &str, variant: &str) -> &'a str {
    &cell(s, label, variant).display
}

fn value(s: &Summary, label: &str, variant: &str) -> Option<f64> {
    cell(s, label, variant).value
}

fn with_unit(unit: &str) -> Vec<results::store::StoredRun> {
    let mut runs = fixtures::runs();
    runs.iter_mut().for_each(|r| r.run.provenance.unit = unit.into());
    runs
}

#[test]
fn columns_are_baseline_first_then_every_variant_in_the_order_met() {
    assert_eq!(summary().variants, ["baseline", "runtime-tracking", "fast-execute", "exception-unwind"]);
    let mut runs = fixtures::runs();
    runs[0].run.variants.reverse();
    assert_eq!(of(&runs).variants[..2], ["baseline", "runtime-tracking"]);
    let s = summary();
    assert!(s.rows.iter().all(|r| r.cells.len() == s.variants.len()));
}

#[test]
fn every_known_variant_has_a_column_run_or_not() {
    let known = ["exception-unwind", "new-design", "baseline"].map(String::from);
    let s = build(&fixtures::runs(), &known);
    assert_eq!(s.variants, ["baseline", "exception-unwind", "new-design", "runtime-tracking", "fast-execute"]);
    assert!(s.rows.iter().all(|r| r.cell("new-design").is_some_and(|c| c.display == MISSING && c.value.is_none())));
    // No run at all: every known variant, every cell missing.
    let empty = build(&[], &known);
    assert_eq!(empty.variants, ["baseline", "exception-unwind", "new-design"]);
    assert!(empty.rows.iter().flat_map(|r| &r.cells).all(|c| c.display == MISSING));
}

#[test]
fn correctness_counts_the_stop_programs_and_the_kernels_reports() {
    let s = summary();
    let counts = |label| s.variants[..3].iter().map(|v| value(&s, label, v)).collect::<Vec<_>>();
    assert_eq!(counts("programs stopped"), [Some(0.0), Some(5.0), Some(4.0)]);
    assert_eq!(counts("programs not stoppable"), [Some(5.0), Some(0.0), Some(1.0)]);
    assert_eq!(cell(&s, "programs not stoppable", "baseline").note.as_deref(), Some(NO_WATCHDOG));
    assert_eq!(cell(&s, "programs not stoppable", "fast-execute").note.as_deref(), Some(UNBOUNDED));
    assert_eq!(counts("leaks"), [Some(0.0), Some(1.0), Some(0.0)]);
    assert_eq!(cell(&s, "leaks", "runtime-tracking").note.as_deref(), Some("leaked: hold_cpumask"));
    assert_eq!(counts("double releases"), [Some(0.0), Some(1.0), Some(0.0)]);
    assert_eq!(counts("kernel warnings"), [Some(0.0), Some(2.0), Some(0.0)]);
    // The empty program the harness adds is not a scenario program.
    assert_eq!(counts("scenario programs accepted"), [Some(4.0), Some(5.0), Some(5.0)]);
    assert_eq!(counts("scenario programs rejected"), [Some(1.0), Some(0.0), Some(0.0)]);
    assert_eq!(cell(&s, "kernel warnings", "baseline").source, "stop");
}

#[test]
fn side_effects_after_the_stop_say_what_was_written() {
    let s = summary();
    let shown_all =
        |s: &Summary| row(s, "side effects after the stop").cells.iter().map(|c| c.display.clone()).collect::<Vec<_>>();
    assert_eq!(shown_all(&s), ["1 (ran to the end)", "2 (finished on its own paths)", "0 (nothing written)", MISSING]);
    assert!(row(&s, "side effects after the stop").cells.iter().all(|c| c.source == "stop/side_effect_after_loop"));
    assert_eq!(value(&s, "side effects after the stop", "runtime-tracking"), Some(2.0));
    let mut runs = fixtures::runs();
    runs[1].run.variants[2].programs[4].retval = Some(7);
    runs[1].run.variants[1].programs.retain(|p| p.id != "side_effect_after_loop");
    assert_eq!(shown_all(&of(&runs))[1..3], [MISSING, "7"]);
}

#[test]
fn a_missing_scenario_or_variant_is_missing_never_zero() {
    let s = summary();
    // No upstream run at all.
    for label in ["upstream selftests passed", "upstream selftests failed", "upstream selftests skipped"] {
        assert!(row(&s, label).cells.iter().all(|c| c.display == MISSING && c.value.is_none()), "{label}");
        assert_eq!(cell(&s, label, "baseline").source, "upstream-all");
    }
    // exception-unwind ran only `throw`; fast-execute did not run `overhead`.
    assert_eq!(shown(&s, "programs stopped", "exception-unwind"), MISSING);
    assert_eq!(shown(&s, "task", "exception-unwind"), MISSING);
    assert_eq!(shown(&s, "per pair, 1 held (", "fast-execute"), MISSING);
    assert_eq!(shown(&s, "throw, 0 references held", "runtime-tracking"), MISSING);
    for c in s.rows.iter().flat_map(|r| &r.cells).filter(|c| c.display == MISSING) {
        assert_eq!((c.value, c.delta), (None, None), "{c:?}");
    }
    // Only a stop run: every overhead row is missing, for every variant.
    let only_stop = of(&[fixtures::stop()]);
    assert!(row(&only_stop, "empty run").cells.iter().all(|c| c.display == MISSING));
    assert_eq!(cell(&only_stop, "empty run", "baseline").source, "overhead/empty_tc");
}

#[test]
fn upstream_all_is_read_before_upstream() {
    let mut runs = fixtures::runs();
    runs.push(fixtures::upstream("upstream", &[("baseline", 1, 1, 1)]));
    runs.push(fixtures::upstream("upstream-all", &[("baseline", 5, 1, 2), ("runtime-tracking", 4, 2, 2)]));
    let s = of(&runs);
    assert_eq!(value(&s, "upstream selftests passed", "baseline"), Some(5.0));
    assert_eq!(value(&s, "upstream selftests failed", "runtime-tracking"), Some(2.0));
    assert_eq!(value(&s, "upstream selftests skipped", "baseline"), Some(2.0));
    assert_eq!(shown(&s, "upstream selftests passed", "fast-execute"), MISSING);
    assert_eq!(cell(&s, "upstream selftests passed", "baseline").source, "upstream-all");
    assert!(s.runs.iter().any(|r| r.scenario == "upstream-all") && !s.runs.iter().any(|r| r.scenario == "upstream"));
    // Without upstream-all, the shipped subset.
    runs.pop();
    assert_eq!(value(&of(&runs), "upstream selftests passed", "baseline"), Some(1.0));
}

#[test]
fn normal_path_costs_are_per_pair_and_per_iteration_without_the_empty_run() {
    let s = summary();
    let hold1 = row(&s, "per pair, 1 held (");
    assert_eq!(hold1.label, "per pair, 1 held (hold1_tc − empty) / 1 (insns)");
    // (565 - 190) / 1 on runtime-tracking, (310 - 150) / 1 on baseline: each its own empty run.
    let tracking = hold1.cell("runtime-tracking").unwrap();
    assert_eq!((tracking.value, tracking.delta, tracking.display.as_str()), (Some(375.0), Some(215.0), "375 (+215)"));
    assert_eq!(tracking.source, "overhead/hold1_tc − empty_tc");
    let base = hold1.cell("baseline").unwrap();
    assert_eq!((base.display.as_str(), base.delta), ("160", None));
    assert_eq!(row(&s, "per pair, 32 held (").label, "per pair, 32 held (hold32_tc − empty) / 32 (insns)");
    assert_eq!(shown(&s, "per pair, 32 held (", "runtime-tracking"), "20 (+10)"); // (830 - 190) / 32
    let iteration = cell(&s, "loop iteration (", "runtime-tracking");
    assert_eq!(row(&s, "loop iteration (").label, "loop iteration (iter1k_tc − empty) / 1000 (insns)");
    assert_eq!((iteration.value, iteration.delta), (Some(35.018), Some(19.018)));
    assert_eq!(iteration.display, "35.018 (+19.018)");
    assert_eq!(shown(&s, "empty run", "runtime-tracking"), "190 (+40)");
    assert_eq!(cell(&s, "empty run", "baseline").source, "overhead/empty_tc");
}

#[test]
fn normal_path_costs_with_the_watchdog_armed() {
    let s = summary();
    let armed = row(&s, "per pair, 1 held, watchdog armed");
    assert_eq!(armed.label, "per pair, 1 held, watchdog armed (hold1_tc_armed − empty) / 1 (insns)");
    assert_eq!(armed.cell("runtime-tracking").unwrap().display, "470 (+310)");
    assert_eq!(armed.cell("runtime-tracking").unwrap().source, "overhead/hold1_tc_armed − empty_tc");
    assert_eq!(shown(&s, "per pair, 32 held, watchdog armed", "runtime-tracking"), "50 (+40)");
    assert_eq!(shown(&s, "loop iteration, watchdog armed", "runtime-tracking"), "117 (+101)");
    let labels: Vec<&str> =
        s.rows.iter().filter(|r| r.group == Group::NormalPathCost).map(|r| r.label.as_str()).collect();
    assert_eq!(labels.len(), 7, "three measures, unarmed and armed, and the empty run: {labels:?}");
}

#[test]
fn under_wallclock_durations_have_no_difference_but_sizes_do() {
    let s = of(&with_unit("ns"));
    for label in ["per pair, 1 held (", "loop iteration (", "throw, 0 references held", "verification_time_us"] {
        let c = row(&s, label).cells.iter().find(|c| c.variant != "baseline" && c.value.is_some()).unwrap();
        assert_eq!(c.delta, None, "{label}");
        assert!(!c.display.contains('('), "{label}: {}", c.display);
    }
    assert_eq!(shown(&s, "per pair, 1 held (", "runtime-tracking"), "375");
    assert_eq!(row(&s, "stop latency, median").label, "stop latency, median (syscall programs; ns)");
    // Sizes and the verifier's counts do not depend on the clock.
    assert_eq!(shown(&s, "verified_insns", "runtime-tracking"), "400 (±0)");
}

#[test]
fn stop_latency_cleanup_per_reference_and_throw_cost() {
    let s = summary();
    assert_eq!(row(&s, "stop latency, median").label, "stop latency, median (syscall programs; insns)");
    // runtime-tracking: 900 1000 1010 1020 1050 1100 1700 1710 1720.
    assert_eq!(value(&s, "stop latency, median", "runtime-tracking"), Some(1050.0));
    assert_eq!(cell(&s, "stop latency, median", "runtime-tracking").source, "stop: every stopped syscall program");
    let worst = cell(&s, "stop latency, worst", "runtime-tracking");
    assert_eq!((worst.value, worst.source.as_str()), (Some(1720.0), "stop/hold_task_refs8"));
    assert_eq!(value(&s, "stop latency, worst", "fast-execute"), Some(640.0));
    let base = cell(&s, "stop latency, median", "baseline");
    assert_eq!((base.display.as_str(), base.value), ("none stopped", None));
    // No baseline number, so no difference claimed.
    assert_eq!(cell(&s, "stop latency, median", "fast-execute").delta, None);

    let cleanup = row(&s, "cleanup per held reference");
    assert_eq!(cleanup.label, "cleanup per held reference (hold_task; insns)");
    assert_eq!(cleanup.cell("runtime-tracking").unwrap().value, Some(100.0)); // (1710 - 1010) / 7
    assert_eq!(cleanup.cell("fast-execute").unwrap().value, Some(20.0)); // (640 - 500) / 7
    assert_eq!(cleanup.cell("baseline").unwrap().display, "not stopped");
    assert!(cleanup.cells.iter().all(|c| c.source == "stop/hold_task_refs{1,8}"), "{cleanup:?}");
    // One size stopped is no slope.
    let mut runs = fixtures::runs();
    runs[1].run.variants[2].programs[1].run_errno = None;
    assert_eq!(shown(&of(&runs), "cleanup per held reference", "fast-execute"), "not stopped");

    assert_eq!(shown(&s, "throw, 0 references held", "exception-unwind"), "80 (+20)");
    assert_eq!(shown(&s, "throw, 8 references held", "baseline"), "rejected");
    let refs8 = cell(&s, "throw, 8 references held", "exception-unwind");
    assert_eq!((refs8.value, refs8.delta, refs8.source.as_str()), (Some(400.0), None, "throw/throw_refs8"));
}

#[test]
fn stop_latency_leaves_out_tc_programs() {
    // A tc program's system call also builds an skb: its latencies are no stop's.
    let mut runs = fixtures::runs();
    runs[1].run.variants[1].programs[1].prog_type = bpfh_protocol::ProgType::Tc;
    let s = of(&runs);
    let worst = cell(&s, "stop latency, worst", "runtime-tracking");
    assert_eq!((worst.value, worst.source.as_str()), (Some(1100.0), "stop/hold_cpumask"));
    // 900 1000 1010 1020 1050 1100.
    assert_eq!(value(&s, "stop latency, median", "runtime-tracking"), Some(1015.0));
}

#[test]
fn load_time_sums_the_stop_programs_every_variant_accepted() {
    let s = summary();
    // Baseline rejects hold_iter: the sums leave it out on every variant.
    let insns = cell(&s, "verified_insns", "runtime-tracking");
    assert_eq!((insns.value, insns.delta), (Some(400.0), Some(0.0)));
    assert!(row(&s, "verified_insns").cells[..3]
        .iter()
        .all(|c| c.source == "stop: programs every variant accepted: 4"));
    assert_eq!(value(&s, "total_states", "baseline"), Some(20.0));
    assert_eq!(shown(&s, "verification_time_us", "runtime-tracking"), "200 (±0)");
    assert_eq!(value(&s, "jited_len", "fast-execute"), Some(800.0));
    let table = row(&s, "descriptor / table bytes");
    assert_eq!(table.cell("baseline").unwrap().display, "n/a");
    assert_eq!(table.cell("runtime-tracking").unwrap().value, Some(72.0));
    assert_eq!(table.cell("runtime-tracking").unwrap().delta, None);
    assert!(Group::LoadTimeCost.title().contains("every variant accepted"));
    // Accepted everywhere, hold_iter counts.
    let mut runs = fixtures::runs();
    runs[1].run.variants[0].programs[3] = fixtures::unstoppable("hold_iter", &["iterator"], NO_WATCHDOG);
    assert_eq!(value(&of(&runs), "verified_insns", "runtime-tracking"), Some(500.0));
}

#[test]
fn verifier_peak_memory_not_measured_says_why() {
    let s = summary();
    let memory = row(&s, "verifier peak memory");
    assert!(memory.cells[..3].iter().all(|c| c.display == "not measured" && c.value.is_none()));
    let note = memory.cells[0].note.as_deref().unwrap_or_default();
    assert!(note.contains("older") && note.contains("verifier_mem.bpf.c"), "{note}");
}

#[test]
fn verifier_peak_memory_is_the_program_that_needed_most_on_every_variant() {
    let mut runs = fixtures::runs();
    let stop = &mut runs[1].run;
    // hold_task_refs8 needs the most on runtime-tracking; hold_iter more still, but baseline
    // rejects it (not a program every variant accepted); fast-execute's tracer did not attach.
    for (variant, id, bytes) in [
        ("baseline", "hold_task_refs1", 40_000),
        ("baseline", "hold_task_refs8", 60_000),
        ("runtime-tracking", "hold_task_refs1", 41_000),
        ("runtime-tracking", "hold_task_refs8", 65_536),
        ("runtime-tracking", "hold_iter", 900_000),
    ] {
        let v = stop.variants.iter_mut().find(|v| v.name == variant).unwrap();
        let p = v.programs.iter_mut().find(|p| p.id == id).unwrap();
        p.load_info.as_mut().unwrap().verifier_peak_bytes = Some(bytes);
    }
    let s = of(&runs);
    let memory = row(&s, "verifier peak memory");
    assert_eq!(memory.label, "verifier peak memory, most of any program (bytes)");
    assert!(memory.cells.iter().all(|c| c.source == "stop/hold_task_refs8"), "{memory:?}");
    assert_eq!(shown(&s, "verifier peak memory", "baseline"), "60000");
    let tracking = cell(&s, "verifier peak memory", "runtime-tracking");
    assert_eq!((tracking.value, tracking.delta), (Some(65_536.0), Some(5_536.0)));
    let fast = cell(&s, "verifier peak memory", "fast-execute");
    assert_eq!((fast.display.as_str(), fast.value), ("not measured", None));
    assert!(fast.note.is_some());
    assert_eq!(shown(&s, "verifier peak memory", "exception-unwind"), MISSING);
}

fn kind(s: &Summary, k: &str) -> Vec<String> {
    row(s, k).cells.iter().map(|c| c.display.clone()).collect()
}

#[test]
fn coverage_per_kind_of_resource() {
    let s = summary();
    // runtime-tracking's kernel warned: nothing it stopped counts as released.
    assert_eq!(kind(&s, "task"), ["not stopped", "FAILS", "released", MISSING]);
    assert_eq!(cell(&s, "task", "runtime-tracking").note.as_deref(), Some(WARNED));
    assert_eq!(kind(&s, "cpumask"), ["not stopped", "FAILS", "released", MISSING]);
    assert_eq!(kind(&s, "iterator"), ["not stopped", "FAILS", "not stopped", MISSING]);
    assert_eq!(kind(&s, "cgroup"), ["no program", "no program", "no program", MISSING]);
    assert_eq!(cell(&s, "task", "baseline").note.as_deref(), Some(NO_WATCHDOG));
    assert_eq!(cell(&s, "iterator", "fast-execute").note.as_deref(), Some(UNBOUNDED));
    assert_eq!(cell(&s, "cpumask", "runtime-tracking").note.as_deref(), Some("failed: hold_cpumask"));
    assert!(row(&s, "task").cells.iter().all(|c| c.source == "stop: 2 programs holding task"));
    assert_eq!(cell(&s, "cgroup", "baseline").source, "stop: 0 programs holding cgroup");
    let kinds: Vec<&str> = s.rows.iter().filter(|r| r.group == Group::Coverage).map(|r| r.label.as_str()).collect();
    assert_eq!(kinds, crate::scenario::HELD_KINDS);
}

#[test]
fn coverage_says_which_kinds_no_counter_covers() {
    let mut runs = fixtures::runs();
    runs[1].run.variants[1].kernel_warnings.clear();
    let s = of(&runs);
    assert_eq!(kind(&s, "task")[1], "released");
    // No counter sees an iterator or an RCU read section left behind.
    for k in ["iterator", "rcu"] {
        assert_eq!(kind(&s, k)[1], "released (not counted)", "{k}");
        assert_eq!(cell(&s, k, "runtime-tracking").note.as_deref(), Some(NOT_COUNTED));
    }
    // Counted per stopped program: one without its check is not.
    let fast = runs[1].run.variants.iter_mut().find(|v| v.name == "fast-execute").unwrap();
    fast.programs[0].checks.retain(|c| c.what != "task_refs");
    assert_eq!(kind(&of(&runs), "task")[2], "released (not counted)");
}

#[test]
fn coverage_counts_the_programs_not_stopped() {
    let mut runs = fixtures::runs();
    let fast = runs[1].run.variants.iter_mut().find(|v| v.name == "fast-execute").unwrap();
    fast.programs[0].run_errno = None;
    let s = of(&runs);
    assert_eq!(shown(&s, "task", "fast-execute"), "released (1 of 2 not stopped)");
    assert_eq!(cell(&s, "task", "fast-execute").note.as_deref(), Some("did not stop: hold_task_refs1"));
    let fast = runs[1].run.variants.iter_mut().find(|v| v.name == "fast-execute").unwrap();
    fast.programs[1].checks.retain(|c| c.what != "task_refs");
    let s = of(&runs);
    assert_eq!(shown(&s, "task", "fast-execute"), "released (1 of 2 not stopped, not counted)");
    let note = cell(&s, "task", "fast-execute").note.clone().unwrap_or_default();
    assert_eq!(note, format!("did not stop: hold_task_refs1; {NOT_COUNTED}"));
}

#[test]
fn markdown_is_one_table_with_a_cell_per_column_and_names_its_runs() {
    let mut s = summary();
    s.rows[0].cells[0].display = "a | b".into(); // an escaped pipe is no column
    let md = render(&s, Format::Markdown);
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
    let columns = |l: &str| l.replace("\\|", "").matches('|').count() - 1;
    assert_eq!(columns(rows[0]), s.variants.len() + 2);
    assert!(rows.iter().all(|r| columns(r) == columns(rows[0])), "{md}");
    assert_eq!(rows.len(), 2 + s.rows.len() + 5, "header, rule, rows and five group titles");
    assert!(rows[1].starts_with("| --- |"));
    assert!(md.contains("| **Correctness** |"));
    assert!(md.contains(
        "| per pair, 1 held (hold1_tc − empty) / 1 (insns) | 160 | 375 (+215) | missing | missing | `overhead/hold1_tc − empty_tc` |"
    ), "{md}");
    assert!(md.contains(&format!("- [1] {NO_WATCHDOG}")));
    assert!(md.contains("| programs not stoppable | 5 [1] | 0 | 1 [2] | missing | `stop` |"), "{md}");
    assert!(md.contains("`stop` 2026-11-21 20:49 UTC, harness `b095d9df10fa`, insns"), "{md}");
}

#[test]
fn cells_whose_sources_differ_name_their_own() {
    let mut s = summary();
    s.rows[0].cells[1].source = "stop/elsewhere".into();
    let out = render(&s, Format::Terminal);
    let line = out.lines().find(|l| l.starts_with("  programs stopped")).unwrap();
    assert!(line.contains("0 (stop)") && line.contains("5 (stop/elsewhere)"), "{line}");
    assert!(out.lines().find(|l| l.starts_with("  kernel warnings")).unwrap().ends_with("  stop"));
    // Columns line up with the header.
    let header = out.lines().next().unwrap();
    let hold1 = out.lines().find(|l| l.starts_with("  per pair, 1 held (")).unwrap();
    let at = |line: &str, text: &str| line.find(text).map(|i| line[..i].chars().count());
    assert_eq!(at(header, "runtime-tracking"), at(hold1, "375 (+215)"), "{out}");
    assert!(hold1.ends_with("overhead/hold1_tc − empty_tc"));
    assert!(out.contains("runs: stop 2026-11-21 20:49 UTC, harness b095d9df10fa, insns; overhead"), "{out}");
}

#[test]
fn json_round_trips_the_model() {
    let s = summary();
    let text = render(&s, Format::Json);
    assert_eq!(serde_json::from_str::<Summary>(&text).unwrap(), s);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let label = "per pair, 1 held (hold1_tc − empty) / 1 (insns)";
    let hold1 = v["rows"].as_array().unwrap().iter().find(|r| r["label"] == label);
    let cell = &hold1.unwrap()["cells"][1];
    assert_eq!((cell["value"].as_f64(), cell["delta"].as_f64()), (Some(375.0), Some(215.0)));
    assert_eq!(cell["source"], "overhead/hold1_tc − empty_tc");
    assert!(v["rows"][0]["cells"][3]["value"].is_null(), "missing is null, not 0");
}

#[test]
fn html_is_one_escaped_table() {
    let mut runs = fixtures::runs();
    runs[0].run.variants[1].name = "<mine>".into();
    let s = of(&runs);
    let out = html(&s);
    assert!(out.starts_with("<table class=\"summary\">") && out.trim_end().ends_with("</table>"));
    assert!(out.contains("<th>&lt;mine&gt;</th>") && !out.contains("<mine>"));
    assert_eq!(out.matches("<tr><th scope=\"row\">").count(), s.rows.len());
    assert!(out.contains("[1] no kernel.bpf_watchdog_budget_ns"));
}

#[test]
fn stored_runs_are_read_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut older = fixtures::stop();
    older.run.provenance.date = "2026-11-01T00:00:00+00:00".into();
    older.run.variants[0].kernel_warnings = vec!["WARNING: old".into()];
    for run in [older, fixtures::stop(), fixtures::overhead(), fixtures::throw()] {
        results::store::write(&run.run, dir.path()).unwrap();
    }
    let s = of(&results::store::latest(dir.path()).unwrap());
    assert_eq!(s.rows, summary().rows);
    assert_eq!(s.runs.iter().map(|r| r.scenario.as_str()).collect::<Vec<_>>(), ["stop", "overhead", "throw"]);
    // Given every stored run, the last of each scenario counts.
    let all = of(&results::store::list(dir.path()).unwrap());
    assert_eq!(value(&all, "kernel warnings", "baseline"), Some(0.0));
}
