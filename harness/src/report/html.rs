//! `harness report`: one self-contained HTML page (inline CSS and SVG, no scripts, nothing
//! fetched) from the stored runs: per scenario, the newest run's variants side by side with
//! their correctness, run cost against the number of held references, and the history of runs.
//!
//! Held references: a program whose id has a `_`-separated token `refs<N>` (`throw_refs4`,
//! `throw_depth1_refs1`) holds N references; the id without that token names the series, and
//! each series is one line per variant in the "cost against held references" chart.

use crate::report::cells::{baseline_index, exact_delta, num, xml_escape as esc};
use crate::results::metrics;
use crate::results::schema::{distinct_programs, RunResult};
use crate::results::store::StoredRun;
use crate::verdict::outcome::{variant_health, Outcome};
use std::fmt::Write;

const PALETTE: [&str; 6] = ["#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2"];

fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// `throw_depth1_refs4` -> (`throw_depth1`, 4).
pub fn refs_hint(id: &str) -> Option<(String, u32)> {
    let tokens: Vec<&str> = id.split('_').collect();
    let (index, n) = tokens.iter().enumerate().find_map(|(i, t)| Some((i, t.strip_prefix("refs")?.parse().ok()?)))?;
    let series: Vec<&str> = tokens.iter().enumerate().filter(|(i, _)| *i != index).map(|(_, t)| *t).collect();
    Some((series.join("_"), n))
}

/// The page; `runs` as `store::list` returns them (by scenario, oldest first).
pub fn render(runs: &[StoredRun]) -> String {
    let mut scenarios: Vec<&str> = runs.iter().map(|r| r.run.scenario.name.as_str()).collect();
    scenarios.dedup();
    let mut body = String::new();
    for name in &scenarios {
        let history: Vec<&RunResult> = runs.iter().filter(|r| r.run.scenario.name == *name).map(|r| &r.run).collect();
        let latest = history.last().expect("a scenario comes from a run");
        body.push_str(&scenario_section(latest, &history));
    }
    if scenarios.is_empty() {
        body.push_str("<p>No stored runs.</p>");
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>BPF harness report</title>\n<style>{CSS}</style></head>\n<body>\n<h1>BPF harness report</h1>\n<p>{} stored runs of {} scenarios. Lower is better everywhere.</p>\n{body}</body></html>\n",
        runs.len(),
        scenarios.len()
    )
}

const CSS: &str =
    "body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}\
td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}td.fail{background:#fdd}td.ok{background:#efe}\
svg{display:block;margin:1em 0;background:#fff}svg text{font-size:11px;font-family:sans-serif}\
.small{display:inline-block;margin-right:1em;vertical-align:top}.small svg{margin:0}";

fn scenario_section(run: &RunResult, history: &[&RunResult]) -> String {
    let p = &run.provenance;
    let mut out = format!(
        "<section><h2>{}</h2>\n<p>{}</p>\n<p><b>Measured:</b> {} (accel {:?}, mode {:?}, unit {}; harness {}, {}).</p>\n",
        esc(&run.scenario.name),
        esc(&run.scenario.description),
        esc(&p.measurement),
        p.accel,
        p.mode,
        esc(&p.unit),
        esc(p.short_commit()),
        esc(&p.date)
    );
    out.push_str(&correctness_table(run));
    out.push_str(&format!("<h3>Run cost ({}), variants side by side</h3>\n", esc(&p.unit)));
    out.push_str(&side_by_side(run));
    let refs = refs_chart(run);
    if !refs.is_empty() {
        out.push_str(&format!("<h3>Run cost ({}) against held references</h3>\n{refs}", esc(&p.unit)));
    }
    out.push_str(&format!("<h3>History ({} runs)</h3>\n", history.len()));
    out.push_str(&history_charts(history));
    out.push_str("</section>\n");
    out
}

fn correctness_table(run: &RunResult) -> String {
    let mut out = String::from("<table><tr><th>program</th>");
    for v in &run.variants {
        let _ = write!(out, "<th>{}</th>", esc(&v.name));
    }
    out.push_str("</tr>\n<tr><td>(kernel)</td>");
    for v in &run.variants {
        let health = variant_health(v);
        let class = if health == "ok" { "ok" } else { "fail" };
        let _ = write!(out, "<td class=\"{class}\">{}</td>", esc(&health));
    }
    out.push_str("</tr>\n");
    for id in program_ids(run) {
        let _ = write!(out, "<tr><td>{}</td>", esc(&id));
        for v in &run.variants {
            match v.program(&id) {
                Some(p) => {
                    let o = Outcome::of(p);
                    let class = if o.passed() { "ok" } else { "fail" };
                    let _ = write!(out, "<td class=\"{class}\">{}</td>", esc(&o.short()));
                }
                None => out.push_str("<td>-</td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    out
}

fn program_ids(run: &RunResult) -> Vec<String> {
    distinct_programs(run.variants.iter().flat_map(|v| &v.programs)).into_iter().map(|p| p.id.clone()).collect()
}

fn legend(run_variants: &[String], x: f64, y: f64) -> String {
    let mut out = String::new();
    for (i, name) in run_variants.iter().enumerate() {
        let yy = y + i as f64 * 14.0;
        let _ = write!(
            out,
            "<rect x=\"{x}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{}</text>",
            yy - 9.0,
            color(i),
            x + 14.0,
            yy,
            esc(name)
        );
    }
    out
}

/// Grouped horizontal bars: one group per program, one bar per variant.
fn side_by_side(run: &RunResult) -> String {
    let names: Vec<String> = run.variants.iter().map(|v| v.name.clone()).collect();
    let ids = program_ids(run);
    let value = |v: usize, id: &str| run.variants[v].program(id).and_then(metrics::run_median);
    let max = ids.iter().flat_map(|id| (0..names.len()).filter_map(|v| value(v, id))).fold(0.0_f64, f64::max);
    let (label_w, bar_w, bar_h) = (210.0, 560.0, 12.0);
    let group_h = bar_h * names.len() as f64 + 8.0;
    let height = 20.0 + group_h * ids.len() as f64 + 14.0 * names.len() as f64 + 10.0;
    let base = baseline_index(run);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart side-by-side\" width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"run cost per program and variant\">",
        label_w + bar_w + 200.0
    );
    for (g, id) in ids.iter().enumerate() {
        let y0 = 10.0 + g as f64 * group_h;
        let _ = write!(out, "<text x=\"0\" y=\"{}\">{}</text>", y0 + group_h / 2.0, esc(id));
        for (v, name) in names.iter().enumerate() {
            let y = y0 + v as f64 * bar_h;
            match value(v, id) {
                Some(x) => {
                    let w = if max > 0.0 { x / max * bar_w } else { 0.0 };
                    let delta = match (v != base).then(|| value(base, id)).flatten() {
                        Some(b) => format!(" ({})", exact_delta(b, x)),
                        None => String::new(),
                    };
                    let _ = write!(
                        out,
                        "<rect x=\"{label_w}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{}\"><title>{} {}: {}</title></rect><text x=\"{:.1}\" y=\"{}\">{}{}</text>",
                        bar_h - 2.0,
                        color(v),
                        esc(name),
                        esc(id),
                        num(x),
                        label_w + w + 4.0,
                        y + bar_h - 3.0,
                        num(x),
                        esc(&delta)
                    );
                }
                None => {
                    let why = run.variants[v].program(id).map_or("absent".to_string(), |p| Outcome::of(p).verdict);
                    let why = if why == "reject" {
                        "rejected by the verifier".to_string()
                    } else {
                        format!("no runs ({why})")
                    };
                    let _ = write!(
                        out,
                        "<text x=\"{label_w}\" y=\"{}\" fill=\"{}\">{}: {}</text>",
                        y + bar_h - 3.0,
                        color(v),
                        esc(name),
                        why
                    );
                }
            }
        }
    }
    out.push_str(&legend(&names, label_w, height - 14.0 * names.len() as f64));
    out.push_str("</svg>\n");
    out
}

/// One variant's line in a chart.
struct Line {
    label: String,
    colour: &'static str,
    points: Vec<(f64, f64)>,
}

/// Axes and polylines; x and y are scaled to the frame.
fn line_chart(class: &str, title: &str, x_label: &str, lines: &[Line]) -> String {
    let (w, h, left, bottom, top, right) = (420.0, 220.0, 60.0, 30.0, 20.0, 130.0);
    let pts = lines.iter().flat_map(|l| l.points.iter());
    let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0.0_f64);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        return String::new();
    }
    let xspan = if x1 > x0 { x1 - x0 } else { 1.0 };
    let yspan = if y1 > 0.0 { y1 * 1.1 } else { 1.0 };
    let sx = |x: f64| left + (x - x0) / xspan * (w - left - right);
    let sy = |y: f64| h - bottom - y / yspan * (h - bottom - top);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart {class}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{}\">",
        esc(title)
    );
    let _ = write!(
        out,
        "<text x=\"{left}\" y=\"12\">{}</text><line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/><line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"#333\"/>",
        esc(title),
        h - bottom,
        w - right,
        h - bottom,
        h - bottom
    );
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><text x=\"{left}\" y=\"{}\" text-anchor=\"middle\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">0</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
        w - right,
        h - 2.0,
        esc(x_label),
        h - bottom + 14.0,
        num(x0),
        w - right,
        h - bottom + 14.0,
        num(x1),
        left - 4.0,
        h - bottom,
        left - 4.0,
        top + 4.0,
        num((yspan).round())
    );
    for (i, Line { label, colour, points }) in lines.iter().enumerate() {
        let path: Vec<String> = points.iter().map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y))).collect();
        let _ = write!(
            out,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            path.join(" ")
        );
        for &(x, y) in points {
            let _ = write!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"><title>{}</title></circle>",
                sx(x),
                sy(y),
                num(y)
            );
        }
        let ly = top + 10.0 + i as f64 * 14.0;
        let _ = write!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"3\" fill=\"{colour}\"/><text x=\"{}\" y=\"{ly}\">{}</text>",
            w - right + 8.0,
            ly - 5.0,
            w - right + 22.0,
            esc(label)
        );
    }
    out.push_str("</svg>");
    out
}

fn refs_chart(run: &RunResult) -> String {
    let mut series: Vec<String> = Vec::new();
    for id in program_ids(run) {
        if let Some((s, _)) = refs_hint(&id) {
            if !series.contains(&s) {
                series.push(s);
            }
        }
    }
    let mut out = String::new();
    for s in series {
        let lines: Vec<Line> = run
            .variants
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let mut points: Vec<(f64, f64)> = v
                    .programs
                    .iter()
                    .filter_map(|p| {
                        let (ps, n) = refs_hint(&p.id)?;
                        (ps == s).then_some((f64::from(n), metrics::run_median(p)?))
                    })
                    .collect();
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                Line { label: v.name.clone(), colour: color(i), points }
            })
            .filter(|l| !l.points.is_empty())
            .collect();
        let chart = line_chart("refs", &s, "held references", &lines);
        if !chart.is_empty() {
            let _ = writeln!(out, "<div class=\"small\">{chart}</div>");
        }
    }
    out
}

/// One small chart per program: its run cost in each stored run, one line per variant.
fn history_charts(history: &[&RunResult]) -> String {
    let latest = history.last().expect("at least one run");
    let mut out = String::new();
    let dates: Vec<String> = history.iter().map(|r| r.provenance.date.chars().take(10).collect()).collect();
    for id in program_ids(latest) {
        let lines: Vec<Line> = latest
            .variants
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let points = history
                    .iter()
                    .enumerate()
                    .filter_map(|(n, run)| {
                        let rv = run.variant(&v.name)?;
                        let p = rv.program(&id)?;
                        Some((n as f64 + 1.0, metrics::run_median(p)?))
                    })
                    .collect();
                Line { label: v.name.clone(), colour: color(i), points }
            })
            .filter(|l| !l.points.is_empty())
            .collect();
        let x_label = format!("run # ({} .. {})", dates[0], dates[dates.len() - 1]);
        let chart = line_chart("history", &id, &x_label, &lines);
        if !chart.is_empty() {
            let _ = writeln!(out, "<div class=\"small\">{chart}</div>");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{new_run, old_run, stored};

    #[test]
    fn reference_counts_come_from_the_program_id() {
        assert_eq!(refs_hint("throw_refs4"), Some(("throw".into(), 4)));
        assert_eq!(refs_hint("throw_depth1_refs1"), Some(("throw_depth1".into(), 1)));
        assert_eq!(refs_hint("keep_refs0"), Some(("keep".into(), 0)));
        assert_eq!(refs_hint("task_ref_tc"), None);
        assert_eq!(refs_hint("refsx_a"), None);
    }

    #[test]
    fn the_page_has_every_chart_and_no_outside_reference() {
        let mut latest = new_run();
        for (n, p) in latest.variants[1].programs.iter_mut().enumerate() {
            p.id = format!("throw_refs{n}");
        }
        let runs = vec![stored(old_run(), "a"), stored(latest, "b")];
        let html = render(&runs);
        assert_eq!(html.matches("class=\"chart side-by-side\"").count(), 1);
        assert_eq!(html.matches("class=\"chart refs\"").count(), 1, "one refs series: throw");
        // Programs of the latest run: the baseline's 4 plus the 4 renamed ones, less the
        // rejected one, which never ran.
        assert_eq!(html.matches("class=\"chart history\"").count(), 7);
        assert!(html.contains("rejected by the verifier") || html.contains("no runs"));
        assert!(!html.contains("http://") || html.matches("http://").count() == html.matches("xmlns=").count());
        assert!(!html.contains("<script"));
    }
}
