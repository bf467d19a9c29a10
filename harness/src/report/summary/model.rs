//! The summary as data: rows of measures, a cell per variant, each cell naming the scenario and
//! program it comes from. The renderers only lay this out; `--format json` is this, serialised.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What a cell shows for a variant or scenario that has no stored run: never a zero.
pub const MISSING: &str = "missing";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The columns: `baseline` first, then the other variants in the order the runs name them.
    pub variants: Vec<String>,
    pub rows: Vec<Row>,
    /// The stored runs the rows come from.
    pub runs: Vec<RunInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    Correctness,
    NormalPathCost,
    StopCost,
    LoadTimeCost,
    Coverage,
}

impl Group {
    pub fn title(self) -> &'static str {
        match self {
            Group::Correctness => "Correctness",
            Group::NormalPathCost => "Normal-path cost",
            Group::StopCost => "Stop cost",
            Group::LoadTimeCost => "Load-time cost (sums over the stop programs every variant accepted)",
            Group::Coverage => "Coverage (resources held when stopped)",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub group: Group,
    pub label: String,
    /// One per variant, in the order of [`Summary::variants`].
    pub cells: Vec<Cell>,
}

impl Row {
    pub fn new(group: Group, label: impl Into<String>, cells: Vec<Cell>) -> Row {
        Row { group, label: label.into(), cells }
    }

    pub fn cell(&self, variant: &str) -> Option<&Cell> {
        self.cells.iter().find(|c| c.variant == variant)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub variant: String,
    /// The number shown, where the cell is one.
    pub value: Option<f64>,
    /// The text shown, the difference to baseline included.
    pub display: String,
    /// `scenario/program`, or the scenario (and which of its programs) for a count over it.
    pub source: String,
    /// The exact difference to baseline's value: only for counts and under icount.
    pub delta: Option<f64>,
    /// What the display abbreviates (reasons, program ids): a footnote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Cell {
    pub fn text(variant: &str, display: impl Into<String>, source: impl Into<String>) -> Cell {
        Cell {
            variant: variant.into(),
            value: None,
            display: display.into(),
            source: source.into(),
            delta: None,
            note: None,
        }
    }

    pub fn number(variant: &str, value: f64, source: impl Into<String>) -> Cell {
        Cell { value: Some(value), ..Cell::text(variant, number(value), source) }
    }

    pub fn count(variant: &str, n: usize, source: impl Into<String>) -> Cell {
        Cell::number(variant, n as f64, source)
    }

    pub fn missing(variant: &str, source: impl Into<String>) -> Cell {
        Cell::text(variant, MISSING, source)
    }

    /// Attaches a note unless it is empty.
    pub fn noted(self, note: String) -> Cell {
        Cell { note: (!note.is_empty()).then_some(note), ..self }
    }
}

/// A stored run the summary read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub scenario: String,
    pub date: String,
    pub harness_commit: String,
    /// "insns" (icount: exact counts) or "ns" (wallclock).
    pub unit: String,
    pub path: PathBuf,
}

/// Integers as counted; fractions (a per-iteration or per-reference cost) to three decimals.
pub fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        return format!("{}", x as i64);
    }
    let fixed = format!("{x:.3}");
    fixed.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `+215`, `-3`, `±0`.
pub fn signed(d: f64) -> String {
    match d {
        d if d > 0.0 => format!("+{}", number(d)),
        d if d < 0.0 => format!("-{}", number(-d)),
        _ => "±0".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_differences() {
        assert_eq!(number(312.0), "312");
        assert_eq!(number(12.345), "12.345");
        assert_eq!(number(26.857_142), "26.857");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(signed(215.0), "+215");
        assert_eq!(signed(-3.0), "-3");
        assert_eq!(signed(0.0), "±0");
        assert_eq!(signed(-0.018), "-0.018");
    }

    #[test]
    fn an_empty_note_is_no_note() {
        assert_eq!(Cell::count("b", 2, "stop").noted(String::new()).note, None);
        assert_eq!(Cell::count("b", 2, "stop").noted("x".into()).note.as_deref(), Some("x"));
    }
}
