//! The repository the harness was built from: where the guest sources, BPF programs, variants
//! and scenarios live, and which commit the numbers come from.

use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("harness/ has a parent").to_path_buf()
}

/// `guest/bpf`: the BPF sources a scenario's `object:` names.
pub fn bpf_source_dir() -> PathBuf {
    root().join("guest/bpf")
}

pub fn variants_dir() -> PathBuf {
    root().join("kernel-config/variants")
}

pub fn base_fragment() -> PathBuf {
    root().join("kernel-config/base.config")
}

pub fn debug_fragment() -> PathBuf {
    root().join("kernel-config/debug.config")
}

pub fn scenarios_dir() -> PathBuf {
    root().join("scenarios")
}

pub fn results_dir() -> PathBuf {
    root().join("results")
}

fn git(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git").arg("-C").arg(root()).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The checked-out commit, or `unknown` outside a git checkout.
pub fn commit() -> String {
    git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into())
}

/// Whether the checkout has changes that are not committed.
pub fn dirty() -> bool {
    git(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty())
}

/// How a commit is shown and stamped: its first 12 characters.
pub fn short_commit(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// The host CPU's model name, for provenance.
pub fn host_cpu() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name").map(|r| r.trim_start_matches([' ', '\t', ':']).to_string()))
        })
        .unwrap_or_else(|| "unknown".into())
}
