//! Where the harness keeps what is expensive to make: extracted sources, patched trees, kernel
//! builds and their logs. Nothing in here is ever needed for correctness: it can be deleted.

use std::path::{Path, PathBuf};

/// Environment variable that overrides the cache location (the `--cache-dir` flag wins over it).
pub const CACHE_ENV: &str = "BPF_HARNESS_CACHE";

#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// Flag, then `$BPF_HARNESS_CACHE`, then `$XDG_CACHE_HOME/bpf-harness`, then `~/.cache/bpf-harness`.
    pub fn resolve(flag: Option<&Path>) -> anyhow::Result<Cache> {
        let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let root = match (flag, env(CACHE_ENV), env("XDG_CACHE_HOME"), env("HOME")) {
            (Some(dir), ..) => dir.to_path_buf(),
            (None, Some(dir), ..) => dir,
            (None, None, Some(xdg), _) => xdg.join("bpf-harness"),
            (None, None, None, Some(home)) => home.join(".cache/bpf-harness"),
            (None, None, None, None) => anyhow::bail!(
                "cannot place the cache: pass --cache-dir or set {CACHE_ENV} (neither XDG_CACHE_HOME nor HOME is set)"
            ),
        };
        std::fs::create_dir_all(&root)
            .map_err(|e| anyhow::anyhow!("cannot create cache directory {}: {e}", root.display()))?;
        Ok(Cache { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Extracted pristine kernel sources.
    pub fn sources(&self) -> PathBuf {
        self.root.join("src")
    }

    /// One tree per variant (a hard-linked copy with its series applied), each holding its
    /// out-of-tree (`O=`) builds, keyed by the build key.
    pub fn trees(&self) -> PathBuf {
        self.root.join("trees")
    }

    /// Resolved kernel configs, keyed by tree and fragments.
    pub fn configs(&self) -> PathBuf {
        self.root.join("configs")
    }

    /// libbpf headers installed from a kernel tree, and the compiler cache.
    pub fn tools(&self) -> PathBuf {
        self.root.join("tools")
    }

    pub fn ccache(&self) -> PathBuf {
        self.root.join("ccache")
    }
}
