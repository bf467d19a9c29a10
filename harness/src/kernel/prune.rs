//! Pruning the cache's kernel builds: every series revision adds a tree and a build directory.
//! Kept: the newest builds of each variant, and any build used within the given days (a reused
//! build's stamp is touched); the rest go, each under its own lock, skipped while a run holds it.
//! A tree left without builds goes with them.

use crate::host::cache::{disk_usage, Cache};
use crate::kernel::build::{build_lock, in_use_lock, tree_lock_of, COMPLETE_STAMP};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Builds kept per variant, newest (last used) first.
    pub keep: usize,
    /// Also keep every build used within this long.
    pub used_within: Option<Duration>,
    /// Only say what would go.
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub path: PathBuf,
    pub bytes: u64,
}

#[derive(Debug, Default)]
pub struct Pruned {
    pub removed: Vec<Removed>,
    /// Builds that would have gone but another run holds.
    pub held: Vec<PathBuf>,
}

struct Build {
    variant: String,
    path: PathBuf,
    /// Last use: the stamp's time; None for a build that never completed (interrupted), which
    /// nothing can reuse as it is and is never among the kept.
    used: Option<SystemTime>,
}

/// `trees/<variant>-<tree hash>/build-<build key>`.
fn builds(cache: &Cache) -> anyhow::Result<Vec<Build>> {
    let mut found = Vec::new();
    let Ok(trees) = std::fs::read_dir(cache.trees()) else { return Ok(found) };
    for tree in trees {
        let tree = tree?.path();
        let name = tree.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let Some((variant, _hash)) = name.rsplit_once('-') else { continue };
        for entry in std::fs::read_dir(&tree)? {
            let path = entry?.path();
            let is_build = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("build-"));
            if !is_build || !path.is_dir() {
                continue;
            }
            let used = std::fs::metadata(path.join(COMPLETE_STAMP)).and_then(|m| m.modified()).ok();
            found.push(Build { variant: variant.to_string(), path, used });
        }
    }
    Ok(found)
}

pub fn prune(cache: &Cache, policy: &Policy) -> anyhow::Result<Pruned> {
    let mut all = builds(cache)?;
    // Per variant, the most recently used first; interrupted builds (None) last.
    all.sort_by(|a, b| (&a.variant, b.used).cmp(&(&b.variant, a.used)));
    let now = SystemTime::now();
    let mut pruned = Pruned::default();
    let mut rank = 0;
    for (i, build) in all.iter().enumerate() {
        rank = if i > 0 && all[i - 1].variant == build.variant { rank + 1 } else { 0 };
        let recent =
            |used: SystemTime| policy.used_within.is_some_and(|d| now.duration_since(used).unwrap_or_default() <= d);
        if build.used.is_some_and(|used| rank < policy.keep || recent(used)) {
            continue;
        }
        let Some(_held) = cache.try_lock(&build_lock(&build.path))? else {
            pruned.held.push(build.path.clone());
            continue;
        };
        // Runs booting from it hold this one, shared.
        let Some(_unused) = cache.try_lock(&in_use_lock(&build.path))? else {
            pruned.held.push(build.path.clone());
            continue;
        };
        let bytes = disk_usage(&build.path, &mut Default::default())?;
        if !policy.dry_run {
            std::fs::remove_dir_all(&build.path)?;
            remove_tree_if_empty(cache, build.path.parent().expect("a build is in a tree"))?;
        }
        pruned.removed.push(Removed { path: build.path.clone(), bytes });
    }
    Ok(pruned)
}

/// A tree with no build left, under the tree's lock.
fn remove_tree_if_empty(cache: &Cache, tree: &Path) -> anyhow::Result<()> {
    let has_build =
        std::fs::read_dir(tree)?.filter_map(Result::ok).any(|e| e.file_name().to_string_lossy().starts_with("build-"));
    if !has_build {
        if let Some(_held) = cache.try_lock(&tree_lock_of(tree))? {
            std::fs::remove_dir_all(tree)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(cache: &Cache, tree: &str, key: &str, days_ago: u64, complete: bool) -> PathBuf {
        let dir = cache.trees().join(tree).join(format!("build-{key}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("vmlinux"), vec![0u8; 8192]).unwrap();
        let when = SystemTime::now() - Duration::from_secs(days_ago * 86_400);
        let marker = if complete { dir.join(COMPLETE_STAMP) } else { dir.clone() };
        if complete {
            std::fs::write(&marker, "{}").unwrap();
        }
        std::fs::File::open(&marker).unwrap().set_modified(when).unwrap();
        dir
    }

    #[test]
    fn the_newest_builds_of_each_variant_stay_and_held_ones_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::resolve(Some(dir.path())).unwrap();
        let old = build(&cache, "exception-unwind-aaaa", "1111", 30, true);
        let newer = build(&cache, "exception-unwind-bbbb", "2222", 2, true);
        let newest = build(&cache, "exception-unwind-bbbb", "3333", 1, true);
        let interrupted = build(&cache, "baseline-cccc", "4444", 40, false);
        let baseline = build(&cache, "baseline-cccc", "5555", 10, true);

        let policy = Policy { keep: 1, used_within: None, dry_run: true };
        let dry = prune(&cache, &policy).unwrap();
        let paths: Vec<&Path> = dry.removed.iter().map(|r| r.path.as_path()).collect();
        assert_eq!(paths, [interrupted.as_path(), newer.as_path(), old.as_path()]);
        assert!(dry.removed.iter().all(|r| r.bytes >= 8192));
        assert!(old.exists(), "a dry run removes nothing");

        let _busy = cache.try_lock("build-2222").unwrap().unwrap();
        let _booting = cache.lock_shared(&in_use_lock(&newest)).unwrap();
        let within = Policy { keep: 1, used_within: Some(Duration::from_secs(3 * 86_400)), dry_run: false };
        let done = prune(&cache, &within).unwrap();
        assert!(done.held.is_empty(), "newer is kept for its recent use, not for its lock");
        assert!(!old.exists() && !interrupted.exists());
        assert!(!cache.trees().join("exception-unwind-aaaa").exists(), "its tree had no other build");
        assert!(newer.exists() && newest.exists() && baseline.exists());

        let all = prune(&cache, &Policy { keep: 0, used_within: None, dry_run: false }).unwrap();
        assert!(all.held.contains(&newer), "a build another run holds is left alone");
        assert_eq!(all.held.len(), 2, "a build a run boots from is left alone too: {:?}", all.held);
        assert!(newer.exists() && newest.exists() && !baseline.exists());
    }

    #[test]
    fn an_interrupted_newest_build_does_not_push_out_the_last_complete_one() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::resolve(Some(dir.path())).unwrap();
        let complete = build(&cache, "mine-aaaa", "1111", 5, true);
        let interrupted = build(&cache, "mine-bbbb", "2222", 0, false);
        let done = prune(&cache, &Policy { keep: 1, used_within: None, dry_run: false }).unwrap();
        assert_eq!(done.removed.iter().map(|r| r.path.clone()).collect::<Vec<_>>(), std::slice::from_ref(&interrupted));
        assert!(complete.exists() && !interrupted.exists());
    }

    #[test]
    fn du_counts_hard_linked_files_once() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::resolve(Some(dir.path())).unwrap();
        std::fs::create_dir_all(cache.sources()).unwrap();
        std::fs::write(cache.sources().join("f"), vec![1u8; 64 * 1024]).unwrap();
        std::fs::create_dir_all(cache.trees()).unwrap();
        std::fs::hard_link(cache.sources().join("f"), cache.trees().join("f")).unwrap();
        let (parts, total) = cache.du().unwrap();
        let size = |name: &str| parts.iter().find(|(n, _)| n == name).unwrap().1;
        assert!(size("src") >= 64 * 1024);
        assert!(size("trees") < 64 * 1024, "the tree's copy is the source's file");
        assert_eq!(total, parts.iter().map(|(_, n)| n).sum::<u64>());
    }
}
