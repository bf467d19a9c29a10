//! Laying the summary out: aligned text, a Markdown table to paste into a reply, JSON, and an
//! HTML `<table>` for the report. Each cell names its source: in a `from` column where the
//! row's cells share one, else after the cell.

use super::model::{RunInfo, Summary};
use crate::report::cells::{md_escape, render_rows, xml_escape};

/// The table every format lays out.
struct Grid<'a> {
    lines: Vec<Line>,
    /// Distinct cell notes, in the order met; a cell shows `[n]` for the n-th.
    notes: Vec<&'a str>,
}

enum Line {
    Group(&'static str),
    Row { label: String, cells: Vec<String>, from: String },
}

fn grid(s: &Summary) -> Grid<'_> {
    let mut notes: Vec<&str> = Vec::new();
    for note in s.rows.iter().flat_map(|r| &r.cells).filter_map(|c| c.note.as_deref()) {
        if !notes.contains(&note) {
            notes.push(note);
        }
    }
    let mut lines = Vec::new();
    for (i, row) in s.rows.iter().enumerate() {
        if i == 0 || s.rows[i - 1].group != row.group {
            lines.push(Line::Group(row.group.title()));
        }
        let first = row.cells.first().map(|c| c.source.as_str());
        let shared = first.filter(|src| row.cells.iter().all(|c| c.source == *src));
        let cells = row
            .cells
            .iter()
            .map(|c| {
                let marker = c.note.as_deref().and_then(|n| notes.iter().position(|m| *m == n));
                let marker = marker.map(|i| format!(" [{}]", i + 1)).unwrap_or_default();
                let own = if shared.is_none() { format!(" ({})", c.source) } else { String::new() };
                format!("{}{marker}{own}", c.display)
            })
            .collect();
        lines.push(Line::Row { label: row.label.clone(), cells, from: shared.unwrap_or_default().to_string() });
    }
    Grid { lines, notes }
}

/// `stop 2026-12-01 10:00 UTC, harness 0123456789ab, insns`.
fn run_text(r: &RunInfo) -> String {
    format!("{} {}, harness {}, {}", r.scenario, date(&r.date), r.harness_commit, r.unit)
}

fn date(rfc3339: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(rfc3339) {
        Ok(d) => d.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M UTC").to_string(),
        Err(_) => rfc3339.to_string(),
    }
}

/// What the differences mean, by the units of the runs read.
const UNITS: &str = "Differences to baseline are exact counts under insns (icount) and for sizes and verifier \
                     counts; under ns (wallclock) durations are medians, without a difference.";

pub fn terminal(s: &Summary) -> String {
    let g = grid(s);
    let mut rows = vec![header(s)];
    for line in &g.lines {
        rows.push(match line {
            Line::Group(title) => vec![title.to_string()],
            Line::Row { label, cells, from } => {
                let mut row = vec![format!("  {label}")];
                row.extend(cells.iter().cloned());
                row.push(from.clone());
                row
            }
        });
    }
    let mut out = render_rows(&rows);
    for (i, note) in g.notes.iter().enumerate() {
        out.push_str(&format!("[{}] {note}\n", i + 1));
    }
    out.push_str(&format!("runs: {}\n{UNITS}\n", runs_list(&s.runs, run_text)));
    out
}

fn header(s: &Summary) -> Vec<String> {
    let mut row = vec![String::new()];
    row.extend(s.variants.iter().cloned());
    row.push("from".into());
    row
}

fn runs_list(runs: &[RunInfo], show: impl Fn(&RunInfo) -> String) -> String {
    match runs.is_empty() {
        true => "no stored run of stop, overhead, throw or upstream".into(),
        false => runs.iter().map(show).collect::<Vec<_>>().join("; "),
    }
}

pub fn markdown(s: &Summary) -> String {
    let g = grid(s);
    let columns = s.variants.len() + 2;
    let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
    let mut out = line(header(s).iter().map(|h| md_escape(h)).collect());
    out.push_str(&line(vec!["---".into(); columns]));
    for l in &g.lines {
        out.push_str(&match l {
            Line::Group(title) => {
                let mut cells = vec![format!("**{title}**")];
                cells.resize(columns, String::new());
                line(cells)
            }
            Line::Row { label, cells, from } => {
                let mut row = vec![md_escape(label)];
                row.extend(cells.iter().map(|c| md_escape(c)));
                row.push(if from.is_empty() { String::new() } else { format!("`{}`", md_escape(from)) });
                line(row)
            }
        });
    }
    out.push('\n');
    for (i, note) in g.notes.iter().enumerate() {
        out.push_str(&format!("- [{}] {}\n", i + 1, md_escape(note)));
    }
    if !g.notes.is_empty() {
        out.push('\n');
    }
    let run = |r: &RunInfo| format!("`{}` {}, harness `{}`, {}", r.scenario, date(&r.date), r.harness_commit, r.unit);
    out.push_str(&format!("Runs: {}. {UNITS}\n", runs_list(&s.runs, run)));
    out
}

pub fn json(s: &Summary) -> String {
    serde_json::to_string_pretty(s).expect("a summary serialises") + "\n"
}

/// The table as an HTML fragment (notes and runs in its footer), for the report's first section.
pub fn html(s: &Summary) -> String {
    let g = grid(s);
    let columns = s.variants.len() + 2;
    let th: String = header(s).iter().map(|h| format!("<th>{}</th>", xml_escape(h))).collect();
    let mut body = String::new();
    for line in &g.lines {
        body.push_str(&match line {
            Line::Group(title) => {
                format!("<tr class=\"group\"><th colspan=\"{columns}\">{}</th></tr>\n", xml_escape(title))
            }
            Line::Row { label, cells, from } => {
                let tds: String = cells.iter().map(|c| format!("<td>{}</td>", xml_escape(c))).collect();
                format!(
                    "<tr><th scope=\"row\">{}</th>{tds}<td class=\"from\">{}</td></tr>\n",
                    xml_escape(label),
                    xml_escape(from)
                )
            }
        });
    }
    let mut foot: Vec<String> =
        g.notes.iter().enumerate().map(|(i, n)| format!("[{}] {}", i + 1, xml_escape(n))).collect();
    foot.push(format!("runs: {}. {UNITS}", xml_escape(&runs_list(&s.runs, run_text))));
    format!(
        "<table class=\"summary\">\n<thead><tr>{th}</tr></thead>\n<tbody>\n{body}</tbody>\n<tfoot><tr><td colspan=\"{columns}\">{}</td></tr></tfoot>\n</table>\n",
        foot.join("<br>\n")
    )
}
