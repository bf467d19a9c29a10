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
                match (failed.is_empty(), prog.run_errno) {
                    (true, None) => "ok".into(),
                    (true, Some(errno)) => format!("ok ({} runs failed, errno {errno}, as expected)", prog.failed_runs),
                    (false, _) => format!("FAILED: {}", failed.join(",")),
                },
            ]);
        }
    }
    out.push_str(&render_rows(&rows));
    out.push_str(&render_load(run));
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

/// Load-time costs of every accepted program, veristat's columns plus the variant's own
/// `bpf_prog_info` fields.
fn render_load(run: &RunResult) -> String {
    let extra: Vec<&String> = {
        let mut names: Vec<&String> = run
            .variants
            .iter()
            .flat_map(|v| &v.programs)
            .filter_map(|p| p.load_info.as_ref())
            .flat_map(|i| i.extra.keys())
            .collect();
        names.sort();
        names.dedup();
        names
    };
    let mut header: Vec<String> = [
        "program",
        "variant",
        "insns processed",
        "total states",
        "peak states",
        "verif time (us)",
        "xlated B",
        "jited B",
    ]
    .map(String::from)
    .to_vec();
    header.extend(extra.iter().map(|n| n.to_string()));
    let mut rows = vec![header];
    for v in &run.variants {
        for prog in v.programs.iter().filter(|p| !p.fixed_overhead_reference) {
            let Some(info) = &prog.load_info else { continue };
            let opt = |n: Option<String>| n.unwrap_or_else(|| "-".into());
            let mut row = vec![
                prog.id.clone(),
                v.name.clone(),
                info.verified_insns.to_string(),
                opt(info.total_states.map(|n| n.to_string())),
                opt(info.peak_states.map(|n| n.to_string())),
                opt(info.verification_time_us.map(|n| n.to_string())),
                info.xlated_len.to_string(),
                info.jited_len.to_string(),
            ];
            row.extend(extra.iter().map(|n| opt(info.extra.get(*n).map(|v| v.to_string()))));
            rows.push(row);
        }
    }
    if rows.len() == 1 {
        return String::new();
    }
    let clock = if run.provenance.unit == "insns" {
        "verifier clock in guest us: thousands of guest instructions under icount"
    } else {
        "verifier clock in guest us"
    };
    format!("\nload (accepted programs; {clock}):\n{}", render_rows(&rows))
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_are_aligned() {
        let rows = vec![vec!["a".to_string(), "bb".into()], vec!["ccc".into(), "d".into()]];
        assert_eq!(super::render_rows(&rows), "a    bb\nccc  d\n");
    }
}
