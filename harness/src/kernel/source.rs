//! Source: a pristine Linux tree, either the user's own or Debian's tarball extracted
//! once into the cache.

use crate::events::Sink;
use crate::host::cache::Cache;
use crate::host::prereq::DEBIAN_KERNEL_TARBALL;
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct KernelSource {
    pub path: PathBuf,
    /// "6.12.117", read from the tree's Makefile.
    pub version: String,
}

/// Uses `user_tree` when given, otherwise extracts Debian's linux-source tarball into the cache
/// (once: a complete extraction is renamed into place, so an interrupted one is never reused).
pub fn prepare(sink: &dyn Sink, cache: &Cache, user_tree: Option<&Path>) -> anyhow::Result<KernelSource> {
    let path = match user_tree {
        Some(tree) => {
            tree.canonicalize().with_context(|| format!("--kernel-src {}: not a directory", tree.display()))?
        }
        None => extract_debian_tarball(sink, cache)?,
    };
    let version = read_version(&path)?;
    Ok(KernelSource { path, version })
}

fn extract_debian_tarball(sink: &dyn Sink, cache: &Cache) -> anyhow::Result<PathBuf> {
    let tarball = Path::new(DEBIAN_KERNEL_TARBALL);
    let target = cache.sources().join("linux-source-6.12");
    if target.join("Makefile").exists() {
        return Ok(target);
    }
    if !tarball.exists() {
        bail!("{} not found: install linux-source-6.12 or pass --kernel-src DIR", tarball.display());
    }
    let staging = cache.sources().join(format!(".extract-{}", std::process::id()));
    std::fs::create_dir_all(&staging)?;
    sink.phase("source", &format!("extracting {} into {} (once)", tarball.display(), cache.sources().display()));
    let sh = xshell::Shell::new()?;
    xshell::cmd!(sh, "tar -xf {tarball} -C {staging}").run()?;
    std::fs::rename(staging.join("linux-source-6.12"), &target)
        .with_context(|| format!("moving the extracted tree to {}", target.display()))?;
    std::fs::remove_dir_all(&staging)?;
    Ok(target)
}

/// "VERSION.PATCHLEVEL.SUBLEVEL" plus EXTRAVERSION, as the top Makefile defines them.
pub fn read_version(tree: &Path) -> anyhow::Result<String> {
    let makefile = tree.join("Makefile");
    let text = std::fs::read_to_string(&makefile)
        .with_context(|| format!("{}: cannot read (is this a Linux source tree?)", makefile.display()))?;
    parse_version(&text).with_context(|| format!("{}: no kernel version found", makefile.display()))
}

fn parse_version(makefile: &str) -> Option<String> {
    let field = |name: &str| {
        makefile.lines().find_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == name).then(|| value.trim().to_string())
        })
    };
    Some(format!(
        "{}.{}.{}{}",
        field("VERSION")?,
        field("PATCHLEVEL")?,
        field("SUBLEVEL")?,
        field("EXTRAVERSION").unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_comes_from_the_top_makefile() {
        let text = "# SPDX\nVERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 117\nEXTRAVERSION =\nNAME = Baby\n";
        assert_eq!(super::parse_version(text).as_deref(), Some("6.12.117"));
        assert_eq!(super::parse_version("VERSION = 6\n"), None);
    }
}
