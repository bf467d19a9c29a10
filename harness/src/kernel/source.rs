//! Source: a pristine Linux tree, either the user's own or Debian's tarball extracted
//! once into the cache.

use crate::events::Sink;
use crate::host::cache::Cache;
use crate::host::command::run_logged;
use crate::host::fsutil::hash_parts;
use crate::host::prereq::{DEBIAN_KERNEL_TARBALL, SERIES_BASE, SERIES_BASE_PACKAGE};
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
    if user_tree.is_none() && version != SERIES_BASE {
        sink.warning(format!(
            "Debian's linux-source-6.12 is {version}, but the variants' series are written for {SERIES_BASE}; \
             for the same numbers: apt-get install --allow-downgrades linux-source-6.12={SERIES_BASE_PACKAGE}"
        ));
    }
    Ok(KernelSource { path, version })
}

/// The extraction of the tarball as it is now: a package upgrade (6.12.117 to 6.12.118) replaces
/// the tarball, and must not leave builds on the old extraction.
fn extract_debian_tarball(sink: &dyn Sink, cache: &Cache) -> anyhow::Result<PathBuf> {
    let tarball = Path::new(DEBIAN_KERNEL_TARBALL);
    let Ok(meta) = tarball.metadata() else {
        bail!("{} not found: install linux-source-6.12 or pass --kernel-src DIR", tarball.display());
    };
    let mtime = meta.modified()?.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos().to_string();
    let id = hash_parts([("size", meta.len().to_le_bytes().as_slice()), ("mtime", mtime.as_bytes())]);
    let target = cache.sources().join(format!("linux-source-6.12-{}", &id[..16]));
    if target.join("Makefile").exists() {
        return Ok(target);
    }
    let staging = cache.sources().join(format!(".extract-{}", std::process::id()));
    std::fs::create_dir_all(&staging)?;
    sink.phase("source", &format!("extracting {} into {} (once)", tarball.display(), target.display()));
    let mut tar = std::process::Command::new("tar");
    tar.arg("-xf").arg(tarball).arg("-C").arg(&staging);
    run_logged(sink, "source", "extracting the kernel source", &mut tar, &cache.sources().join("extract.log"))?;
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
