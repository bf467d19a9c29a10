//! Terminal rendering of a run: one row per program and variant, with how it was measured.

use crate::results::RunResult;
use bpfh_protocol::Verdict;

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

pub fn render(run: &RunResult) -> String {
    let p = &run.provenance;
    let mut out = format!(
        "scenario {}: {}\nmeasured: {}\naccel {:?}, mode {:?}, {}; harness {}{}\n\n",
        run.scenario.name,
        run.scenario.description,
        p.measurement,
        p.accel,
        p.mode,
        p.qemu_version,
        &p.harness_commit[..p.harness_commit.len().min(12)],
        if p.harness_dirty { " (dirty)" } else { "" }
    );
    let mut rows = vec![[
        "program",
        "type",
        "variant",
        "verdict",
        "retval",
        "median",
        "min",
        "max",
        "n",
        "unit",
        "accel/mode",
        "checks",
    ]
    .map(String::from)
    .to_vec()];
    for v in &run.variants {
        for prog in &v.programs {
            let verdict = match &prog.verdict {
                Some(Verdict::Accepted) => "accept".to_string(),
                Some(Verdict::Rejected { errno, .. }) => format!("reject({errno})"),
                None => "-".to_string(),
            };
            let num = |f: Option<String>| f.unwrap_or_else(|| "-".into());
            let s = prog.summary;
            let label = if prog.fixed_overhead_reference {
                format!("{} (empty: fixed cost)", prog.id)
            } else {
                prog.id.clone()
            };
            let failed: Vec<&str> = prog.checks.iter().filter(|c| !c.ok).map(|c| c.what.as_str()).collect();
            rows.push(vec![
                label,
                prog.prog_type.as_str().into(),
                v.name.clone(),
                verdict,
                num(prog.retval.map(|r| r.to_string())),
                num(s.map(|s| format!("{}", s.median))),
                num(s.map(|s| s.min.to_string())),
                num(s.map(|s| s.max.to_string())),
                num(s.map(|s| s.n.to_string())),
                p.unit.clone(),
                format!("{:?}/{:?}", p.accel, p.mode).to_lowercase(),
                if failed.is_empty() { "ok".into() } else { format!("FAILED: {}", failed.join(",")) },
            ]);
        }
    }
    out.push_str(&render_rows(&rows));
    for v in &run.variants {
        if let Some(failure) = &v.failure {
            out.push_str(&format!("\n[{}] INCOMPLETE: {failure}\nconsole: {}\n", v.name, v.console_log.display()));
        }
        for w in &v.kernel_warnings {
            out.push_str(&format!("\n[{}] KERNEL WARNING (console: {}):\n{w}\n", v.name, v.console_log.display()));
        }
        for e in &v.guest_errors {
            out.push_str(&format!("\n[{}] guest error: {e}\n", v.name));
        }
        for prog in &v.programs {
            for c in prog.checks.iter().filter(|c| !c.ok) {
                out.push_str(&format!("\n[{}] {} {}: {}\n", v.name, prog.id, c.what, c.detail));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_are_aligned() {
        let rows = vec![vec!["a".to_string(), "bb".into()], vec!["ccc".into(), "d".into()]];
        assert_eq!(super::render_rows(&rows), "a    bb\nccc  d\n");
    }
}
