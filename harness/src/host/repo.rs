//! The checkout the harness works in: where the guest sources, BPF programs, variants and
//! scenarios live, and which commit the numbers come from. Found at run time, so an installed
//! binary (`cargo install --path harness`) works in whichever checkout it is run from.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Names the checkout explicitly (for a binary run from outside one).
pub const REPO_ENV: &str = "BPF_HARNESS_REPO";

/// `$BPF_HARNESS_REPO`; else the nearest directory at or above the current one that is a
/// checkout; else the checkout the binary was built from.
pub fn root() -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let cwd = std::env::current_dir().ok();
        find(std::env::var_os(REPO_ENV).map(PathBuf::from), cwd.as_deref())
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("harness/ has a parent").into())
    })
    .clone()
}

/// A checkout holds the variants and the guest runner's sources.
fn is_checkout(dir: &Path) -> bool {
    dir.join("kernel-config/variants").is_dir() && dir.join("guest/runner/Cargo.toml").is_file()
}

fn find(named: Option<PathBuf>, cwd: Option<&Path>) -> Option<PathBuf> {
    named.or_else(|| cwd?.ancestors().find(|d| is_checkout(d)).map(Path::to_path_buf))
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
    let sh = xshell::Shell::new().ok()?;
    let root = root();
    xshell::cmd!(sh, "git -C {root} {args...}").quiet().ignore_stderr().read().ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkout_is_named_or_found_above_the_current_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("kernel-config/variants")).unwrap();
        std::fs::create_dir_all(dir.path().join("guest/runner")).unwrap();
        std::fs::write(dir.path().join("guest/runner/Cargo.toml"), "").unwrap();
        let deep = dir.path().join("scenarios/sub");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(find(None, Some(&deep)).as_deref(), Some(dir.path()));
        assert_eq!(find(Some("/named".into()), Some(&deep)), Some(PathBuf::from("/named")));
        assert_eq!(find(None, Some(Path::new("/"))), None);
    }
}
