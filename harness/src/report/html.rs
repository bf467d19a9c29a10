//! `harness report`: one self-contained HTML page (inline CSS and SVG, no scripts, nothing
//! fetched) from the stored runs: per scenario, the newest run's variants side by side with
//! their correctness, run cost against the number of held references, and the history of runs.
//!
//! Held references: a program whose id has a `_`-separated token `refs<N>` (`throw_refs4`,
//! `throw_depth1_refs1`) holds N references; the id without that token names the series, and
//! each series is one line per variant in the "cost against held references" chart.

use crate::report::cells::{baseline_index, grouped, grouped_delta, num, xml_escape as esc};
use crate::results::metrics;
use crate::results::schema::{distinct_programs, refs_hint, RunResult};
use crate::results::store::StoredRun;
use crate::verdict::outcome::{variant_health, Outcome};
use std::fmt::Write;

/// Variant colours, by the variant's place in its run.
pub const PALETTE: [&str; 6] = ["#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2"];

/// The border of every chart. Nothing in a chart touches it, so a label cut at the chart's edge
/// shows in a screenshot as ink beside this colour.
pub const CHART_FRAME: &str = "#aab3bf";

/// Chart text size in px, and a character's width at that size, estimated from DejaVu Sans,
/// the widest common sans-serif (digits 0.64 em), so margins computed from it fit narrower fonts.
const FONT_PX: f64 = 11.0;
const CHAR_PX: f64 = FONT_PX * 0.64;
/// Space between a chart's frame and anything drawn in it.
const PAD: f64 = 8.0;

fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

fn text_width(s: &str) -> f64 {
    s.chars().count() as f64 * CHAR_PX
}

fn widest<S: AsRef<str>>(texts: impl IntoIterator<Item = S>) -> f64 {
    texts.into_iter().map(|s| text_width(s.as_ref())).fold(0.0, f64::max)
}

/// The page; `runs` as `store::list` returns them (by scenario, oldest first). `lead`, an HTML
/// fragment, opens the page right after its title.
pub fn render(runs: &[StoredRun], lead: Option<&str>) -> String {
    let mut scenarios: Vec<&str> = runs.iter().map(|r| r.run.scenario.name.as_str()).collect();
    scenarios.dedup();
    let mut body = String::new();
    for name in &scenarios {
        let history: Vec<&RunResult> = runs.iter().filter(|r| r.run.scenario.name == *name).map(|r| &r.run).collect();
        body.push_str(&scenario_section(&history));
    }
    if scenarios.is_empty() {
        body.push_str("<p>No stored runs.</p>\n");
    }
    let links: Vec<String> = scenarios.iter().map(|s| format!("<a href=\"#{}\">{}</a>", anchor(s), esc(s))).collect();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>BPF harness report</title>\n<style>{CSS}svg.chart{{border:1px solid {CHART_FRAME}}}svg text{{font:{FONT_PX}px sans-serif}}</style></head>\n<body>\n<h1>BPF harness report</h1>\n{}<p class=\"meta\">{} stored runs of {} scenarios. Lower is better everywhere.</p>\n<nav>{}</nav>\n{body}</body></html>\n",
        lead.unwrap_or(""),
        runs.len(),
        scenarios.len(),
        links.join(" · ")
    )
}

const CSS: &str = "body{font:14px/1.45 system-ui,sans-serif;color:#1f2328;background:#f3f4f6;margin:0;padding:24px 32px}\
h1{font-size:24px;margin:0 0 4px}h2{font-size:20px;margin:0 0 4px}h3{font-size:15px;margin:20px 0 6px}\
.meta,figcaption{color:#57606a;font-size:13px}nav a{color:#0b5cad}\
section{background:#fff;border:1px solid #e1e4e8;border-radius:8px;padding:16px 24px;margin:20px 0;max-width:1200px}\
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border:1px solid #d8dee4;padding:3px 8px;text-align:left}\
th{background:#f6f8fa}td.ok{background:#e9f6ec}td.fail{background:#fde7e7;font-weight:600}\
.key{margin-right:18px;white-space:nowrap}.swatch{display:inline-block;width:10px;height:10px;margin-right:6px}\
figure{margin:8px 0}figure.small{display:inline-block;vertical-align:top;margin-right:16px}figcaption{margin-bottom:4px}\
svg.chart{display:block;background:#fff}svg text{fill:#1f2328}\
svg .worse{fill:#b42318}svg .better{fill:#1a7f37}svg .missing{fill:#57606a;font-style:italic}";

/// A fragment identifier for a scenario's section.
fn anchor(scenario: &str) -> String {
    let safe: String = scenario.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    format!("scenario-{safe}")
}

/// A scenario: its newest run in full, and `history`, its runs oldest first.
fn scenario_section(history: &[&RunResult]) -> String {
    let run = history.last().expect("a scenario comes from a run");
    let p = &run.provenance;
    let unit = esc(&p.unit);
    let mut out = format!(
        "<section id=\"{}\"><h2>{}</h2>\n<p>{}</p>\n<p class=\"meta\">Measured: {} (accel {:?}, mode {:?}, unit {unit}; harness {}, {}).</p>\n",
        anchor(&run.scenario.name),
        esc(&run.scenario.name),
        esc(&run.scenario.description),
        esc(&p.measurement),
        p.accel,
        p.mode,
        esc(p.short_commit()),
        esc(&p.date)
    );
    out.push_str(&legend(run));
    out.push_str(&correctness_table(run));
    let _ = write!(
        out,
        "<h3>Run cost ({unit}), variants side by side</h3>\n<figure><figcaption>Each program on its own linear scale, its largest value a full bar: costs of programs differ by orders of magnitude, so compare bars within a program and read the values across programs.</figcaption>{}</figure>\n",
        side_by_side(run)
    );
    let refs = refs_charts(run);
    if !refs.is_empty() {
        let _ = write!(out, "<h3>Run cost ({unit}) against held references</h3>\n{refs}");
    }
    out.push_str(&history_section(history, &unit));
    out.push_str("</section>\n");
    out
}

/// Which colour is which variant, once for every chart of the scenario.
fn legend(run: &RunResult) -> String {
    let keys: String = run
        .variants
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "<span class=\"key\"><span class=\"swatch\" style=\"background:{}\"></span>{}</span>",
                color(i),
                esc(&v.name)
            )
        })
        .collect();
    format!("<p>{keys}</p>\n")
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

fn svg_open(class: &str, width: f64, height: f64, label: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart {class}\" width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"{}\">",
        width.ceil(),
        height.ceil(),
        esc(label)
    )
}

/// Space between a bar's value and its difference to the baseline.
const DELTA_GAP: f64 = 8.0;

/// What a bar says: its value and difference to the baseline, or why there is no bar.
struct BarText {
    value: String,
    delta: String,
    class: &'static str,
}

impl BarText {
    fn of(run: &RunResult, v: usize, id: &str) -> BarText {
        let Some(x) = run_cost(run, v, id) else {
            let why = run.variants[v].program(id).map_or("absent".to_string(), |p| Outcome::of(p).verdict);
            let value = if why == "reject" { "rejected by the verifier".into() } else { format!("no runs ({why})") };
            return BarText { value, delta: String::new(), class: "missing" };
        };
        let base = baseline_index(run);
        let Some(b) = run_cost(run, base, id).filter(|_| v != base) else {
            return BarText { value: grouped(x), delta: String::new(), class: "" };
        };
        // Lower is better: a rise is worse.
        let class = match x.total_cmp(&b) {
            std::cmp::Ordering::Greater => "worse",
            std::cmp::Ordering::Less => "better",
            std::cmp::Ordering::Equal => "",
        };
        BarText { value: grouped(x), delta: grouped_delta(b, x), class }
    }

    fn width(&self) -> f64 {
        text_width(&self.value) + DELTA_GAP + text_width(&self.delta)
    }

    fn svg(&self, x: f64, y: f64) -> String {
        let value_class = if self.class == "missing" { " class=\"missing\"" } else { "" };
        let delta = if self.delta.is_empty() {
            String::new()
        } else {
            format!("<tspan dx=\"{DELTA_GAP}\" class=\"{}\">{}</tspan>", self.class, esc(&self.delta))
        };
        format!("<text x=\"{x:.1}\" y=\"{y:.1}\"{value_class}>{}{delta}</text>", esc(&self.value))
    }
}

fn run_cost(run: &RunResult, v: usize, id: &str) -> Option<f64> {
    run.variants[v].program(id).and_then(metrics::run_median)
}

/// The side-by-side chart's bars: the longest, a bar's height, one bar to the next, the gap
/// between programs, and between a bar's end and its value.
const BAR_W: f64 = 360.0;
const BAR_H: f64 = 14.0;
const BAR_STEP: f64 = 18.0;
const GROUP_GAP: f64 = 14.0;
const VALUE_GAP: f64 = 6.0;
/// Anything above zero shows, however small beside its program's largest value.
const MIN_BAR: f64 = 2.0;

/// Grouped horizontal bars: one group per program, one bar per variant, each labelled with its
/// value. Each group has its own scale, its largest value the full length: costs of programs
/// differ by orders of magnitude, and on one shared scale most bars would vanish.
fn side_by_side(run: &RunResult) -> String {
    let ids = program_ids(run);
    if ids.is_empty() {
        return "<p>No programs.</p>".into();
    }
    let texts: Vec<Vec<BarText>> =
        ids.iter().map(|id| (0..run.variants.len()).map(|v| BarText::of(run, v, id)).collect()).collect();
    let bars_x = PAD + widest(&ids) + PAD;
    let text_w = texts.iter().flatten().map(BarText::width).fold(0.0, f64::max);
    let width = bars_x + BAR_W + VALUE_GAP + text_w + PAD;
    let group_h = run.variants.len() as f64 * BAR_STEP + GROUP_GAP;
    let height = 2.0 * PAD + ids.len() as f64 * group_h - GROUP_GAP;
    let mut out = svg_open("side-by-side", width, height, "run cost per program and variant");
    for (g, (id, texts)) in ids.iter().zip(&texts).enumerate() {
        let y0 = PAD + g as f64 * group_h;
        if g > 0 {
            let y = y0 - GROUP_GAP / 2.0;
            let _ =
                write!(out, "<line x1=\"{PAD}\" y1=\"{y}\" x2=\"{:.1}\" y2=\"{y}\" stroke=\"#e6e9ed\"/>", width - PAD);
        }
        out.push_str(&bar_group(run, id, texts, bars_x, y0));
    }
    out.push_str("</svg>");
    out
}

/// Program `id`'s bars on its own scale, from `bars_x` and below `y0`, its id left of them.
fn bar_group(run: &RunResult, id: &str, texts: &[BarText], bars_x: f64, y0: f64) -> String {
    let middle = y0 + run.variants.len() as f64 * BAR_STEP / 2.0 + 2.0;
    let mut out = format!("<text x=\"{PAD}\" y=\"{middle:.1}\">{}</text>", esc(id));
    let max = (0..run.variants.len()).filter_map(|v| run_cost(run, v, id)).fold(0.0_f64, f64::max);
    for (v, (variant, text)) in run.variants.iter().zip(texts).enumerate() {
        let y = y0 + v as f64 * BAR_STEP;
        let w = match run_cost(run, v, id) {
            Some(x) if x > 0.0 => (x / max * BAR_W).max(MIN_BAR),
            _ => 0.0,
        };
        if w > 0.0 {
            let _ = write!(
                out,
                "<rect x=\"{bars_x:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"{BAR_H}\" fill=\"{}\"><title>{} {}: {}</title></rect>",
                color(v),
                esc(&variant.name),
                esc(id),
                text.value
            );
        }
        out.push_str(&text.svg(bars_x + w + VALUE_GAP, y + BAR_H - 3.0));
    }
    out
}

/// Round y-axis ticks from zero to at least `max`: about four steps of 1, 2 or 5 times a power
/// of ten.
fn ticks(max: f64) -> Vec<f64> {
    let rough = (max / 4.0).max(1.0);
    let magnitude = 10f64.powi(rough.log10().floor() as i32);
    let step = [1.0, 2.0, 5.0].into_iter().map(|m| m * magnitude).find(|s| *s >= rough).unwrap_or(10.0 * magnitude);
    let steps = (max / step).ceil().max(1.0) as usize;
    (0..=steps).map(|i| i as f64 * step).collect()
}

/// One variant's line in a chart.
struct Line {
    variant: String,
    colour: &'static str,
    points: Vec<(f64, f64)>,
}

/// Lines over a gridded frame whose y-axis starts at zero; the left margin fits the longest
/// tick label. `None` without points.
fn line_chart(class: &str, label: &str, x_label: &str, lines: &[Line]) -> Option<String> {
    const PLOT_W: f64 = 280.0;
    const PLOT_H: f64 = 140.0;
    // Keeps the first and last points off the axes.
    const INSET: f64 = 12.0;
    let points = || lines.iter().flat_map(|l| &l.points);
    let mut xs: Vec<f64> = points().map(|p| p.0).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let (&x0, &x1) = (xs.first()?, xs.last()?);
    let y_ticks = ticks(points().map(|p| p.1).fold(0.0, f64::max));
    let y_top = *y_ticks.last().expect("ticks start at zero");
    let y_labels: Vec<String> = y_ticks.iter().map(|&t| grouped(t)).collect();
    let left = PAD + widest(&y_labels) + 6.0;
    let (top, right) = (PAD + 4.0, left + PLOT_W);
    let bottom = top + PLOT_H;
    let width = right + PAD + text_width(&num(x1)) / 2.0;
    let sx = |x: f64| {
        if x1 > x0 {
            left + INSET + (x - x0) / (x1 - x0) * (PLOT_W - 2.0 * INSET)
        } else {
            left + PLOT_W / 2.0
        }
    };
    let sy = |y: f64| bottom - y / y_top * PLOT_H;
    let mut out = svg_open(class, width, bottom + 36.0, label);
    for (t, label) in y_ticks.iter().zip(&y_labels) {
        let y = sy(*t);
        let _ = write!(
            out,
            "<line x1=\"{left:.1}\" y1=\"{y:.1}\" x2=\"{right:.1}\" y2=\"{y:.1}\" stroke=\"#e6e9ed\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>",
            left - 6.0,
            y + 4.0
        );
    }
    for x in xs.iter().step_by(xs.len().div_ceil(10)) {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            sx(*x),
            bottom + 14.0,
            num(*x)
        );
    }
    let _ = write!(
        out,
        "<line x1=\"{left:.1}\" y1=\"{bottom:.1}\" x2=\"{right:.1}\" y2=\"{bottom:.1}\" stroke=\"#57606a\"/><line x1=\"{left:.1}\" y1=\"{top:.1}\" x2=\"{left:.1}\" y2=\"{bottom:.1}\" stroke=\"#57606a\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"missing\">{}</text>",
        left + PLOT_W / 2.0,
        bottom + 30.0,
        esc(x_label)
    );
    for Line { variant, colour, points } in lines {
        let path: Vec<String> = points.iter().map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y))).collect();
        let _ = write!(
            out,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            path.join(" ")
        );
        for &(x, y) in points {
            let _ = write!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"><title>{}: {}</title></circle>",
                sx(x),
                sy(y),
                esc(variant),
                grouped(y)
            );
        }
    }
    out.push_str("</svg>");
    Some(out)
}

/// A small chart under its caption; chart captions are HTML, so long ones wrap, never clip.
fn small_figure(caption: &str, chart: &str) -> String {
    format!("<figure class=\"small\"><figcaption>{}</figcaption>{chart}</figure>\n", esc(caption))
}

fn refs_charts(run: &RunResult) -> String {
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
                Line { variant: v.name.clone(), colour: color(i), points }
            })
            .filter(|l| !l.points.is_empty())
            .collect();
        if let Some(chart) =
            line_chart("refs", &format!("run cost of {s} against held references"), "held references", &lines)
        {
            out.push_str(&small_figure(&s, &chart));
        }
    }
    out
}

/// One small chart per program of the newest run: its run cost in each stored run, one line per
/// variant. A history needs two runs: with fewer, one sentence says so.
fn history_section(history: &[&RunResult], unit: &str) -> String {
    let [first, .., latest] = history else {
        return "<h3>History</h3>\n<p>One stored run so far; its history is drawn from the second run on.</p>\n".into();
    };
    let date = |run: &RunResult| run.provenance.date.chars().take(10).collect::<String>();
    let mut out =
        format!("<h3>History of run cost ({unit}): {} runs, {} .. {}</h3>\n", history.len(), date(first), date(latest));
    let mut short = Vec::new();
    for id in program_ids(latest) {
        let lines = history_lines(history, &id);
        let label = format!("run cost of {id} per stored run");
        let chart =
            lines.iter().any(|l| l.points.len() >= 2).then(|| line_chart("history", &label, "stored run", &lines));
        match chart.flatten() {
            Some(chart) => out.push_str(&small_figure(&id, &chart)),
            None => short.push(esc(&id)),
        }
    }
    if !short.is_empty() {
        let _ = writeln!(out, "<p>Measured in fewer than two runs, so without history: {}.</p>", short.join(", "));
    }
    out
}

/// The run cost of program `id` in each stored run (numbered from 1), per variant of the newest.
fn history_lines(history: &[&RunResult], id: &str) -> Vec<Line> {
    let latest = history.last().expect("a history has runs");
    latest
        .variants
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let points = history
                .iter()
                .enumerate()
                .filter_map(|(n, run)| Some((n as f64 + 1.0, metrics::run_median(run.variant(&v.name)?.program(id)?)?)))
                .collect();
            Line { variant: v.name.clone(), colour: color(i), points }
        })
        .filter(|l| !l.points.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::schema::Summary;
    use crate::testing::{new_run, old_run, stored};

    #[test]
    fn the_page_has_every_chart_and_no_outside_reference() {
        let mut latest = new_run();
        for (n, p) in latest.variants[1].programs.iter_mut().enumerate() {
            p.id = format!("throw_refs{n}");
        }
        let runs = vec![stored(old_run(), "a"), stored(latest, "b")];
        let html = render(&runs, None);
        assert_eq!(html.matches("class=\"chart side-by-side\"").count(), 1);
        assert_eq!(html.matches("class=\"chart refs\"").count(), 1, "one refs series: throw");
        // The baseline's 4 programs ran in both runs; the renamed ones only in the newest.
        assert_eq!(html.matches("class=\"chart history\"").count(), 4);
        assert!(html.contains("without history: throw_refs0, throw_refs1, throw_refs2, throw_refs3."));
        assert!(html.contains("rejected by the verifier") || html.contains("no runs"));
        assert_eq!(html.matches("http://").count(), html.matches("xmlns=").count(), "only the SVG namespace");
        assert!(!html.contains("<script"));
    }

    #[test]
    fn one_run_has_no_history_chart() {
        let html = render(&[stored(old_run(), "a")], None);
        assert_eq!(html.matches("class=\"chart history\"").count(), 0);
        assert!(html.contains("One stored run so far"));
    }

    #[test]
    fn the_lead_opens_the_page() {
        let html = render(&[stored(old_run(), "a")], Some("<table id=\"summary\"></table>"));
        let lead = html.find("<table id=\"summary\">").expect("the lead is on the page");
        assert!(html.find("</h1>").unwrap() < lead && lead < html.find("<section").unwrap());
    }

    #[test]
    fn each_program_has_its_own_scale() {
        let mut run = old_run();
        for v in &mut run.variants {
            for p in &mut v.programs {
                let cost = if p.id == "empty_tc" { 60 } else { 6_000_000 };
                p.samples = vec![cost; 5];
                p.summary = Summary::of(&p.samples);
            }
        }
        let html = side_by_side(&run);
        let widths: Vec<&str> = html.split(" width=\"").skip(2).map(|s| s.split('"').next().unwrap()).collect();
        assert!(widths.iter().all(|w| *w == "360.0"), "the largest bar of each program is full length: {widths:?}");
        assert!(html.contains(">60<") && html.contains(">6,000,000<"), "values are labelled");
    }

    #[test]
    fn margins_fit_the_longest_labels() {
        let long = "a_program_id_much_longer_than_most";
        let mut run = old_run();
        run.variants[0].programs[0].id = long.into();
        let bars = side_by_side(&run);
        let first_bar: f64 = bars.split("<rect x=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
        assert!(first_bar >= PAD + text_width(long), "bars start after the program id");
        let lines = [Line { variant: "v".into(), colour: color(0), points: vec![(1.0, 12_345_678.0)] }];
        let chart = line_chart("history", "run cost", "stored run", &lines).unwrap();
        // The top tick label, right-aligned before the y-axis, starts inside the frame.
        let top = grouped(*ticks(12_345_678.0).last().unwrap());
        let axis: f64 = chart.split("<line x1=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
        assert!(axis - 6.0 - text_width(&top) >= PAD, "y-axis at {axis}, top tick {top}");
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(ticks(6_000_000.0), [0.0, 2e6, 4e6, 6e6]);
        assert_eq!(ticks(330.0), [0.0, 100.0, 200.0, 300.0, 400.0]);
        assert_eq!(ticks(0.0), [0.0, 1.0]);
    }
}
