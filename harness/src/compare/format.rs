//! The formats `compare` writes: a terminal table, Markdown (a CI step summary), JUnit XML
//! (correctness outcomes as test cases) and github-action-benchmark's `customSmallerIsBetter`
//! JSON (every metric of the new run, for trend dashboards).

use super::{Comparison, MetricChange, ScenarioComparison, Status};
use crate::report::cells::{exact_delta, md_escape, num, render_rows, xml_escape};
use crate::results::metrics;
use crate::scenario::metric::{self, RUN};
use crate::verdict::outcome::Outcome;
use crate::vm::qemu::Mode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Terminal,
    Markdown,
    Junit,
    BenchmarkJson,
    /// The comparison as data: every metric change and outcome row, per scenario.
    Json,
    /// The load-time metrics in veristat's comparison CSV (`veristat -C -o csv`).
    Csv,
}

pub fn render(c: &Comparison, format: Format) -> String {
    match format {
        Format::Terminal => terminal(c),
        Format::Markdown => markdown(c),
        Format::Junit => junit(c),
        Format::BenchmarkJson => benchmark_json(c),
        Format::Json => json(c),
        Format::Csv => veristat_csv(c),
    }
}

#[derive(serde::Serialize)]
struct JsonScenario<'a> {
    scenario: &'a str,
    old: Option<&'a std::path::Path>,
    new: &'a std::path::Path,
    mode: Mode,
    unit: &'a str,
    failed: bool,
    metrics: &'a [MetricChange],
    outcomes: &'a [super::OutcomeRow],
    notes: &'a [String],
}

fn json(c: &Comparison) -> String {
    let scenarios: Vec<JsonScenario> = c
        .scenarios
        .iter()
        .map(|s| JsonScenario {
            scenario: &s.scenario,
            old: s.old_path.as_deref(),
            new: &s.new_path,
            mode: s.mode,
            unit: &s.unit,
            failed: s.failed(),
            metrics: &s.metrics,
            outcomes: &s.outcomes,
            notes: &s.notes,
        })
        .collect();
    let doc = serde_json::json!({ "failed": c.failed(), "scenarios": scenarios });
    serde_json::to_string_pretty(&doc).expect("comparisons always serialise") + "\n"
}

/// veristat's CSV statistics (6.12's default CSV output), by column name, and the metric each
/// is; veristat's `max_mark_read_len` has no counterpart the runner reads, and stays `N/A`.
const VERISTAT_COLUMNS: [(&str, Option<&str>); 6] = [
    ("duration", Some("verification_time_us")),
    ("total_insns", Some("verified_insns")),
    ("total_states", Some("total_states")),
    ("peak_states", Some("peak_states")),
    ("max_states_per_insn", Some("max_states_per_insn")),
    ("max_mark_read_len", None),
];

/// `file_name,prog_name,verdict_base,verdict_comp,verdict_diff,duration_base,...` as
/// `veristat -C base.csv comp.csv -o csv` writes it: the old run is the base, the new one the
/// comparison, joined on (`file_name`, `prog_name`) and sorted by them, a program of one side
/// only with `N/A` on the other; `file_name` is `<scenario>/<variant>/<object>` (one run holds
/// several variants' objects).
fn veristat_csv(c: &Comparison) -> String {
    type Program<'a> = &'a crate::results::schema::ProgramResult;
    let mut header = vec!["file_name".to_string(), "prog_name".into()];
    for name in std::iter::once("verdict").chain(VERISTAT_COLUMNS.iter().map(|(n, _)| *n)) {
        header.extend(["_base", "_comp", "_diff"].map(|sfx| format!("{name}{sfx}")));
    }
    let mut joined: std::collections::BTreeMap<(String, String), (Option<Program>, Option<Program>)> =
        Default::default();
    for s in &c.scenarios {
        let sides = [s.old.as_ref(), Some(&s.new)];
        for (side, run) in sides.into_iter().enumerate() {
            for v in run.iter().flat_map(|r| &r.variants) {
                for p in v.programs.iter().filter(|p| p.verdict.is_some()) {
                    let key = (format!("{}/{}/{}", s.scenario, v.name, p.object), p.id.clone());
                    let entry = joined.entry(key).or_default();
                    if side == 0 {
                        entry.0 = Some(p)
                    } else {
                        entry.1 = Some(p)
                    }
                }
            }
        }
    }
    let verdict = |p: Program| match p.verdict {
        Some(bpfh_protocol::Verdict::Accepted) => "success",
        _ => "failure",
    };
    let mut out = header.join(",") + "\n";
    for ((file, program), (base, comp)) in joined {
        let mut row = vec![file, program];
        row.push(base.map_or("N/A", verdict).into());
        row.push(comp.map_or("N/A", verdict).into());
        row.push(match (base, comp) {
            (Some(b), Some(n)) if verdict(b) == verdict(n) => "MATCH".into(),
            (Some(_), Some(_)) => "MISMATCH".into(),
            _ => "N/A".into(),
        });
        for (_, metric) in VERISTAT_COLUMNS {
            let value = |p: Option<Program>| metrics::value(p?, metric?);
            let (b, n) = (value(base), value(comp));
            let shown = |x: Option<f64>| x.map_or("N/A".to_string(), num);
            row.push(shown(b));
            row.push(shown(n));
            row.push(match (b, n) {
                (Some(b), Some(n)) => {
                    let pct = match b {
                        0.0 if n == 0.0 => 0.0,
                        0.0 => 100f64.copysign(n),
                        _ => (n - b) * 100.0 / b,
                    };
                    format!("{:+} ({pct:+.2}%)", n - b)
                }
                _ => "N/A".into(),
            });
        }
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Same => "same",
        Status::Better => "better",
        Status::WithinThreshold => "within threshold",
        Status::Worse => "worse (no threshold)",
        Status::Regressed => "REGRESSED",
        Status::Noise => "noise",
    }
}

fn threshold_text(m: &MetricChange) -> String {
    let Some(t) = m.threshold else { return "-".into() };
    let mut parts = Vec::new();
    if let Some(r) = t.relative {
        parts.push(format!("{}%", num(r * 100.0)));
    }
    if let Some(a) = t.absolute {
        parts.push(num(a));
    }
    format!("+{}", parts.join(" / "))
}

fn change_text(m: &MetricChange) -> String {
    let mut s = exact_delta(m.old, m.new);
    if let Some(p) = m.p {
        s.push_str(&format!(" p={p:.3}"));
    }
    s
}

fn metric_label(m: &MetricChange, unit: &str) -> String {
    if m.metric == RUN {
        format!("run ({unit})")
    } else {
        metric::label(&m.metric)
    }
}

fn how(s: &ScenarioComparison) -> &'static str {
    match s.mode {
        Mode::Icount => "icount: exact instruction counts",
        Mode::Wallclock => "wallclock: a rise must be significant (Mann-Whitney p < 0.05) and beyond the threshold",
    }
}

fn verdict_line(s: &ScenarioComparison) -> String {
    let (r, o) = (s.regressions().count(), s.outcome_changes().count());
    if r + o == 0 {
        "PASS".into()
    } else {
        format!("FAIL ({r} metric regressions, {o} correctness changes)")
    }
}

fn counts(s: &ScenarioComparison) -> String {
    let mut by: Vec<(Status, usize)> = Vec::new();
    for m in &s.metrics {
        match by.iter_mut().find(|(st, _)| *st == m.status) {
            Some((_, n)) => *n += 1,
            None => by.push((m.status, 1)),
        }
    }
    by.sort_by_key(|(st, _)| *st as u8);
    by.iter().map(|(st, n)| format!("{n} {}", status_word(*st))).collect::<Vec<_>>().join(", ")
}

fn terminal(c: &Comparison) -> String {
    let mut out = String::new();
    for s in &c.scenarios {
        let old = s.old_path.as_ref().map_or("(none)".into(), |p| p.display().to_string());
        out.push_str(&format!("scenario {}: {} -> {}\n{}\n", s.scenario, old, s.new_path.display(), how(s)));
        for note in &s.notes {
            out.push_str(&format!("note: {note}\n"));
        }
        let changed: Vec<&MetricChange> = s.metrics.iter().filter(|m| m.status != Status::Same).collect();
        if !changed.is_empty() {
            let mut rows = vec![["status", "variant", "program", "metric", "old", "new", "change", "threshold"]
                .map(String::from)
                .to_vec()];
            for m in changed {
                rows.push(vec![
                    status_word(m.status).into(),
                    m.variant.clone(),
                    m.program.clone(),
                    metric_label(m, &s.unit),
                    num(m.old),
                    num(m.new),
                    change_text(m),
                    threshold_text(m),
                ]);
            }
            out.push('\n');
            out.push_str(&render_rows(&rows));
        }
        let outcome_changes: Vec<_> = s.outcome_changes().collect();
        if !outcome_changes.is_empty() {
            let mut rows = vec![["correctness", "variant", "program", "old", "new"].map(String::from).to_vec()];
            for o in outcome_changes {
                rows.push(vec![
                    "CHANGED".into(),
                    o.variant.clone(),
                    o.program.clone(),
                    o.old.clone().unwrap_or_else(|| "-".into()),
                    o.new.clone().unwrap_or_else(|| "(missing)".into()),
                ]);
            }
            out.push('\n');
            out.push_str(&render_rows(&rows));
        }
        out.push_str(&format!("\nmetrics: {}\n{}: {}\n\n", counts(s), s.scenario, verdict_line(s)));
    }
    out.push_str(if c.failed() { "compare: FAIL\n" } else { "compare: PASS\n" });
    out
}

fn markdown(c: &Comparison) -> String {
    let mut out = format!("## BPF harness: {}\n\n", if c.failed() { "FAIL" } else { "PASS" });
    for s in &c.scenarios {
        out.push_str(&format!("### `{}`: {}\n\n", s.scenario, verdict_line(s)));
        out.push_str(&format!("Measured with {}.\n\n", how(s)));
        for note in &s.notes {
            out.push_str(&format!("> {}\n\n", md_escape(note)));
        }
        let changed: Vec<&MetricChange> = s.metrics.iter().filter(|m| m.status != Status::Same).collect();
        if !changed.is_empty() {
            out.push_str("| status | variant | program | metric | old | new | change | threshold |\n");
            out.push_str("|---|---|---|---|---:|---:|---:|---|\n");
            for m in changed {
                let status = if m.status == Status::Regressed {
                    format!("**{}**", status_word(m.status))
                } else {
                    status_word(m.status).into()
                };
                out.push_str(&format!(
                    "| {status} | {} | `{}` | {} | {} | {} | {} | {} |\n",
                    m.variant,
                    m.program,
                    metric_label(m, &s.unit),
                    num(m.old),
                    num(m.new),
                    change_text(m),
                    threshold_text(m)
                ));
            }
            out.push('\n');
        }
        let outcome_changes: Vec<_> = s.outcome_changes().collect();
        if !outcome_changes.is_empty() {
            out.push_str("| correctness | variant | program | old | new |\n|---|---|---|---|---|\n");
            for o in outcome_changes {
                out.push_str(&format!(
                    "| **changed** | {} | `{}` | {} | {} |\n",
                    o.variant,
                    o.program,
                    md_escape(o.old.as_deref().unwrap_or("-")),
                    md_escape(o.new.as_deref().unwrap_or("(missing)"))
                ));
            }
            out.push('\n');
        }
        out.push_str(&format!("Metrics: {}.\n\n", counts(s)));
    }
    out
}

/// One test case per program and variant (and per variant's kernel), failing when the new run
/// missed an expectation or the outcome changed; plus one per scenario for the metric thresholds.
fn junit(c: &Comparison) -> String {
    let mut suites = String::new();
    let (mut total, mut total_failures) = (0, 0);
    for s in &c.scenarios {
        let mut cases = String::new();
        let mut failures = 0;
        for o in &s.outcomes {
            let class = xml_escape(&format!("{}.{}", s.scenario, o.variant));
            let mut problems = Vec::new();
            if !o.passed {
                problems.push(format!("now: {}", o.new.as_deref().unwrap_or("missing")));
            }
            if o.changed() {
                problems.push(format!(
                    "outcome changed: {} -> {}",
                    o.old.as_deref().unwrap_or("-"),
                    o.new.as_deref().unwrap_or("missing")
                ));
            }
            cases.push_str(&format!("    <testcase classname=\"{class}\" name=\"{}\"", xml_escape(&o.program)));
            if problems.is_empty() {
                cases.push_str("/>\n");
            } else {
                failures += 1;
                cases.push_str(&format!(
                    ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                    xml_escape(&problems.join("; ")),
                    xml_escape(&o.detail)
                ));
            }
        }
        let regressions: Vec<String> = s
            .regressions()
            .map(|m| {
                format!(
                    "{} {} {}: {} -> {} ({}, threshold {})",
                    m.variant,
                    m.program,
                    m.metric,
                    num(m.old),
                    num(m.new),
                    change_text(m),
                    threshold_text(m)
                )
            })
            .collect();
        cases.push_str(&format!("    <testcase classname=\"{}\" name=\"metric thresholds\"", xml_escape(&s.scenario)));
        if regressions.is_empty() {
            cases.push_str("/>\n");
        } else {
            failures += 1;
            cases.push_str(&format!(
                ">\n      <failure message=\"{} metrics regressed\">{}</failure>\n    </testcase>\n",
                regressions.len(),
                xml_escape(&regressions.join("\n"))
            ));
        }
        let tests = s.outcomes.len() + 1;
        suites.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\">\n{cases}  </testsuite>\n",
            xml_escape(&s.scenario)
        ));
        total += tests;
        total_failures += failures;
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"bpf-harness\" tests=\"{total}\" failures=\"{total_failures}\">\n{suites}</testsuites>\n"
    )
}

#[derive(serde::Serialize)]
struct BenchmarkEntry {
    name: String,
    unit: String,
    value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    range: Option<String>,
    extra: String,
}

/// Every metric of every program on every variant of the new runs, named
/// `<scenario>/<program>/<variant>/<metric>` (the dashboard groups by `/`).
fn benchmark_json(c: &Comparison) -> String {
    let mut entries = Vec::new();
    for s in &c.scenarios {
        let run = &s.new;
        let p = &run.provenance;
        for v in &run.variants {
            for prog in &v.programs {
                for (key, value) in metrics::values(prog) {
                    let range = (key == RUN && p.mode == Mode::Wallclock)
                        .then(|| crate::results::stats::estimate(&prog.samples))
                        .flatten()
                        .map(|e| format!("± {}", num(((e.ci.hi - e.ci.lo) / 2.0).round())));
                    entries.push(BenchmarkEntry {
                        name: format!("{}/{}/{}/{key}", s.scenario, prog.id, v.name),
                        unit: metric::unit(&key, &p.unit),
                        value,
                        range,
                        extra: format!(
                            "{:?}/{:?}; {}; harness {}",
                            p.accel,
                            p.mode,
                            Outcome::of(prog).short(),
                            &p.short_commit()
                        ),
                    });
                }
            }
        }
    }
    serde_json::to_string_pretty(&entries).expect("plain data serialises") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::tests::comparison;

    #[test]
    fn terminal_snapshot() {
        insta::assert_snapshot!(render(&comparison(), Format::Terminal));
    }

    #[test]
    fn markdown_snapshot() {
        insta::assert_snapshot!(render(&comparison(), Format::Markdown));
    }

    #[test]
    fn junit_snapshot() {
        insta::assert_snapshot!(render(&comparison(), Format::Junit));
    }

    #[test]
    fn benchmark_json_snapshot() {
        let text = render(&comparison(), Format::BenchmarkJson);
        let parsed: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        assert!(parsed.iter().all(|e| e["name"].is_string() && e["unit"].is_string() && e["value"].is_number()));
        insta::assert_snapshot!(text);
    }

    #[test]
    fn json_holds_every_row_and_the_verdict() {
        let c = comparison();
        let doc: serde_json::Value = serde_json::from_str(&render(&c, Format::Json)).unwrap();
        assert_eq!(doc["failed"], c.failed());
        let first = &doc["scenarios"][0];
        assert_eq!(first["metrics"].as_array().unwrap().len(), c.scenarios[0].metrics.len());
        assert_eq!(first["outcomes"].as_array().unwrap().len(), c.scenarios[0].outcomes.len());
        assert_eq!(first["metrics"][0]["status"], serde_json::to_value(c.scenarios[0].metrics[0].status).unwrap());
    }

    #[test]
    fn csv_is_veristats_comparison_shape() {
        let text = render(&comparison(), Format::Csv);
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        assert!(header.starts_with(
            "file_name,prog_name,verdict_base,verdict_comp,verdict_diff,duration_base,duration_comp,duration_diff,total_insns_base"
        ));
        let columns = header.split(',').count();
        assert_eq!(columns, 2 + 3 * 7, "veristat's 9 statistics, file and program once");
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        assert!(rows.iter().all(|r| r.len() == columns), "{text}");
        let tc = rows.iter().find(|r| r[0] == "simple/exception-unwind/simple" && r[1] == "task_ref_tc").unwrap();
        assert_eq!(&tc[2..5], ["success", "success", "MATCH"]);
        // total_insns: 10 in the old run, 12 in the new one.
        assert_eq!(&tc[8..11], ["10", "12", "+2 (+20.00%)"]);
        let rejected = rows.iter().find(|r| r[0].contains("exception-unwind") && r[1] == "task_ref_syscall").unwrap();
        assert_eq!(&rejected[2..5], ["success", "failure", "MISMATCH"]);
    }

    #[test]
    fn xml_text_is_escaped() {
        assert_eq!(xml_escape("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot; ");
    }
}
