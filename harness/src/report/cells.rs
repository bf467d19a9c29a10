//! Cells the terminal table, the HTML report and `compare` share: aligned columns, numbers as
//! counted, exact and noisy differences, and which variant is the baseline.

use crate::results::schema::RunResult;
use crate::results::stats;

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

/// A number as `num` writes it, thousands separated by commas (`6,000,000`): for charts, where
/// long digit strings are hard to compare at a glance.
pub fn grouped(x: f64) -> String {
    let text = num(x.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut out = if x < 0.0 { String::from("-") } else { String::new() };
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    out
}

/// An exact difference: `=`, or `+18 (+5.77%)` (no percentage against a zero baseline).
pub fn exact_delta(base: f64, value: f64) -> String {
    delta_as(base, value, num)
}

/// As `exact_delta`, thousands grouped (`+300,000 (+5.00%)`): for charts.
pub fn grouped_delta(base: f64, value: f64) -> String {
    delta_as(base, value, grouped)
}

fn delta_as(base: f64, value: f64, number: fn(f64) -> String) -> String {
    let d = value - base;
    if d == 0.0 {
        return "=".into();
    }
    let sign = if d > 0.0 { "+" } else { "" };
    match relative(base, value) {
        Some(r) => format!("{sign}{} ({sign}{:.2}%)", number(d), r * 100.0),
        None => format!("{sign}{}", number(d)),
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

/// Escapes text for XML and HTML (JUnit reports, the HTML page); drops control characters XML
/// cannot carry.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters, even escaped.
            c if c.is_control() && !matches!(c, '\n' | '\t' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text for a Markdown table cell: a `|` would end the cell, a newline the row.
pub fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn thousands_are_grouped() {
        assert_eq!(grouped(6_000_000.0), "6,000,000");
        assert_eq!(grouped(123_456.5), "123,456.5");
        assert_eq!(grouped(-1234.0), "-1,234");
        assert_eq!(grouped(60.0), "60");
        assert_eq!(grouped(0.0), "0");
        assert_eq!(grouped_delta(6_000_000.0, 6_300_000.0), "+300,000 (+5.00%)");
    }
}
