//! A new build of a variant seeded from its previous one: after an edit to one patch, make
//! rebuilds what the edit changed instead of the whole kernel.
//!
//! A changed series gets a new tree (its key hashes the patches), and a new tree's build
//! directory would start empty: every file compiled again (ccache hits, but kbuild still runs
//! the preprocessor and a compiler driver per file, minutes on two cores). Instead, the objects
//! of the closest complete build (the variant's previous one, or a sibling's with nearly the
//! same config; make rebuilds what the options that differ touch) are copied in, and
//! the new tree's files get modification times that tell make exactly what differs: a file
//! whose content is what the seed was built from keeps the seed's time (nothing to rebuild), any
//! other file the two series touch gets the present time (rebuilt, with everything that
//! includes it). Unpatched files are hard links to the pristine tree in both trees, with its
//! times, older than any object.

use crate::host::cache::{Cache, CacheLock};
use crate::kernel::build::{build_lock, tree_lock_of, KernelBuild, COMPLETE_STAMP};
use anyhow::Context;
use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Parts of a build directory that are not make's: a run's saved boots, the guest's BPF
/// objects, the log and the stamp of the seed's own build.
const NOT_COPIED: &[&str] = &["run", "bpf", "build.log", COMPLETE_STAMP];

/// The build a new one starts from, locked so that nothing removes or changes it meanwhile.
pub struct Seed {
    pub objdir: PathBuf,
    tree: PathBuf,
    _locks: [CacheLock; 2],
}

/// A seed shares too little with a build whose config differs in more lines than this (a debug
/// kernel's differs in hundreds): make would rebuild nearly everything anyway.
const MAX_CONFIG_DIFFERENCES: usize = 16;

/// A complete build that could seed the new one.
struct Candidate {
    objdir: PathBuf,
    same_variant: bool,
    /// `CONFIG_` lines in which its config and the new build's differ.
    config_differences: usize,
    /// When it was last used (its stamp's time).
    used: SystemTime,
}

/// How many of another variant's newest builds [`closest`] compares file by file.
const COMPARED_SIBLINGS: usize = 4;

/// The candidate that shares most with the build to make: the fewest config differences (none:
/// an edited series, or a sibling series with the same fragments), then the same variant (its
/// newest build: the series before the edit); among other variants' builds, the one whose tree
/// differs from `tree` in the fewest files (`differing_files`, for the newest few), then the
/// newest. None differs in more than [`MAX_CONFIG_DIFFERENCES`] config lines.
fn closest(
    candidates: Vec<Candidate>,
    differing_files: &dyn Fn(&Candidate) -> anyhow::Result<usize>,
) -> anyhow::Result<Option<Candidate>> {
    let mut candidates: Vec<Candidate> =
        candidates.into_iter().filter(|c| c.config_differences <= MAX_CONFIG_DIFFERENCES).collect();
    candidates.sort_by_key(|c| (c.config_differences, !c.same_variant, std::cmp::Reverse(c.used)));
    let Some(first) = candidates.first() else { return Ok(None) };
    if first.same_variant {
        return Ok(candidates.into_iter().next());
    }
    let key = first.config_differences;
    let mut best: Option<(usize, Candidate)> = None;
    for c in candidates.into_iter().take_while(|c| c.config_differences == key).take(COMPARED_SIBLINGS) {
        let files = differing_files(&c)?;
        if best.as_ref().is_none_or(|(f, _)| files < *f) {
            best = Some((files, c));
        }
    }
    Ok(best.map(|(_, c)| c))
}

/// How many files make must see as changed if `tree` is built from `seed_tree`'s objects.
fn differing_files(tree: &Path, seed_tree: &Path, pristine: &Path) -> anyhow::Result<usize> {
    let mut differing = 0;
    for rel in &patched_in_either(tree, seed_tree, pristine)? {
        if std::fs::read(tree.join(rel)).ok() != std::fs::read(seed_tree.join(rel)).ok() {
            differing += 1;
        }
    }
    Ok(differing)
}

/// How many `CONFIG_` lines one config has and the other has not (an option set differently
/// counts twice).
fn config_differences(a: &str, b: &str) -> usize {
    let set = |text: &str| -> BTreeSet<String> {
        text.lines().filter(|l| l.starts_with("CONFIG_")).map(str::to_string).collect()
    };
    set(a).symmetric_difference(&set(b)).count()
}

/// The complete build, in another tree than `tree`, with the same compiler and a config close
/// to `config` (see `closest`), to start the build of `variant` from; None if there is none,
/// or another run holds it. make rebuilds what the options that differ touch. `pristine` is the
/// unpatched tree every tree links to.
pub fn find(
    cache: &Cache,
    variant: &str,
    tree: &Path,
    pristine: &Path,
    config: &str,
    compiler: &str,
) -> anyhow::Result<Option<Seed>> {
    let mut candidates = Vec::new();
    let Ok(trees) = std::fs::read_dir(cache.trees()) else { return Ok(None) };
    for other in trees.flatten().map(|e| e.path()) {
        let name = other.file_name().unwrap_or_default().to_string_lossy().into_owned();
        if other == tree || name.starts_with('.') {
            continue;
        }
        let Ok(builds) = std::fs::read_dir(&other) else { continue };
        for objdir in builds.flatten().map(|e| e.path()) {
            let stamp = objdir.join(COMPLETE_STAMP);
            let Ok(text) = std::fs::read_to_string(&stamp) else { continue };
            let Ok(done) = serde_json::from_str::<KernelBuild>(&text) else { continue };
            let Ok(seed_config) = std::fs::read_to_string(objdir.join(".config")) else { continue };
            if done.compiler != compiler {
                continue;
            }
            candidates.push(Candidate {
                same_variant: name.rsplit_once('-').map(|(v, _)| v) == Some(variant),
                config_differences: config_differences(config, &seed_config),
                used: std::fs::metadata(&stamp)?.modified()?,
                objdir,
            });
        }
    }
    let tree_of = |c: &Candidate| c.objdir.parent().map(Path::to_path_buf).unwrap_or_default();
    let compare = |c: &Candidate| differing_files(tree, &tree_of(c), pristine);
    let Some(Candidate { objdir, .. }) = closest(candidates, &compare)? else { return Ok(None) };
    let tree = objdir.parent().context("a build directory has its tree above it")?.to_path_buf();
    let (Some(tree_lock), Some(build_lock)) =
        (cache.try_lock(&tree_lock_of(&tree))?, cache.try_lock(&build_lock(&objdir))?)
    else {
        return Ok(None);
    };
    Ok(Some(Seed { objdir, tree, _locks: [tree_lock, build_lock] }))
}

/// Copies the seed's objects into the empty build directory `objdir` of `tree` and dates the
/// files of `tree` for make (see the module comment); `pristine` is the unpatched tree both
/// trees link to. Returns how many files make must see as changed.
pub fn plant(seed: &Seed, tree: &Path, pristine: &Path, objdir: &Path) -> anyhow::Result<usize> {
    let sh = xshell::Shell::new()?;
    let from = seed.objdir.join(".");
    xshell::cmd!(sh, "cp -a {from} {objdir}").quiet().run()?;
    for part in NOT_COPIED {
        let path = objdir.join(part);
        if path.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else if path.exists() {
            std::fs::remove_file(&path)?;
        }
    }
    let now = SystemTime::now();
    let mut changed = 0;
    for rel in &patched_in_either(tree, &seed.tree, pristine)? {
        changed += date(&tree.join(rel), &seed.tree.join(rel), &pristine.join(rel), now)? as usize;
    }
    Ok(changed)
}

/// Gives `new` the seed's time if it has the seed's content, else the time `now` (as a file of
/// its own: a hard link to the pristine tree is replaced by a copy, whose time is not the
/// pristine tree's). Returns whether make must see the file as changed.
fn date(new: &Path, seed: &Path, pristine: &Path, now: SystemTime) -> anyhow::Result<bool> {
    let Ok(meta) = std::fs::symlink_metadata(new) else { return Ok(false) }; // gone: nothing to date
    if !meta.is_file() {
        return Ok(false);
    }
    let linked = std::fs::metadata(pristine).is_ok_and(|p| p.dev() == meta.dev() && p.ino() == meta.ino());
    let same = match std::fs::read(seed) {
        Ok(old) => std::fs::read(new).with_context(|| format!("reading {}", new.display()))? == old,
        Err(_) => false,
    };
    if same && linked {
        return Ok(false);
    }
    if linked {
        let copy = new.with_extension("seed-copy");
        std::fs::copy(new, &copy)?;
        std::fs::rename(&copy, new)?;
    }
    let time = if same { std::fs::metadata(seed)?.modified()? } else { now };
    std::fs::File::options().write(true).open(new)?.set_modified(time)?;
    Ok(!same)
}

/// The files either series changed: the only ones that can differ between `a` and `b`.
fn patched_in_either(a: &Path, b: &Path, pristine: &Path) -> anyhow::Result<BTreeSet<PathBuf>> {
    let mut files = not_pristine(a, pristine)?;
    files.extend(not_pristine(b, pristine)?);
    Ok(files)
}

/// Relative paths of the files of `tree` that are not the pristine tree's (patched or added),
/// and of the pristine files `tree` lacks (deleted), build directories and stamps left out.
fn not_pristine(tree: &Path, pristine: &Path) -> anyhow::Result<BTreeSet<PathBuf>> {
    let mut found = BTreeSet::new();
    walk(tree, Path::new(""), &mut |rel, meta| {
        let linked =
            std::fs::metadata(pristine.join(rel)).is_ok_and(|p| p.dev() == meta.dev() && p.ino() == meta.ino());
        if !linked {
            found.insert(rel.to_path_buf());
        }
    })?;
    walk(pristine, Path::new(""), &mut |rel, _| {
        if std::fs::symlink_metadata(tree.join(rel)).is_err() {
            found.insert(rel.to_path_buf());
        }
    })?;
    Ok(found)
}

/// Calls `visit` with every regular file under `root` (relative path, metadata), except the top
/// level's build directories and dot files (a tree's stamp).
fn walk(root: &Path, rel: &Path, visit: &mut dyn FnMut(&Path, &std::fs::Metadata)) -> anyhow::Result<()> {
    let dir = root.join(rel);
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        if rel.as_os_str().is_empty() && (name_str.starts_with("build-") || name_str.starts_with('.')) {
            continue;
        }
        let path = rel.join(&name);
        let meta = entry.metadata()?;
        if meta.is_dir() {
            walk(root, &path, visit)?;
        } else if meta.is_file() {
            visit(&path, &meta);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn mtime(path: &Path) -> SystemTime {
        std::fs::metadata(path).unwrap().modified().unwrap()
    }

    /// A pristine tree, and a variant tree linked to it with `patched` files of its own.
    fn tree(root: &Path, name: &str, pristine: &Path, patched: &[(&str, &str)]) -> PathBuf {
        let tree = root.join(name);
        let sh = xshell::Shell::new().unwrap();
        xshell::cmd!(sh, "cp -al {pristine} {tree}").quiet().run().unwrap();
        for (rel, text) in patched {
            let path = tree.join(rel);
            let _ = std::fs::remove_file(&path);
            write(&path, text);
        }
        tree
    }

    #[test]
    fn only_what_differs_from_the_seed_looks_changed_to_make() {
        let dir = tempfile::tempdir().unwrap();
        let pristine = dir.path().join("pristine");
        for (rel, text) in [("a.c", "a"), ("b.c", "b"), ("include/h.h", "h"), ("gone.c", "g")] {
            write(&pristine.join(rel), text);
        }
        let old = SystemTime::now() - Duration::from_secs(3600);
        for rel in ["a.c", "b.c", "include/h.h", "gone.c"] {
            std::fs::File::options().write(true).open(pristine.join(rel)).unwrap().set_modified(old).unwrap();
        }
        // The seed's series patched a.c and h.h and added new.c; the new one patches h.h the
        // same way, a.c differently, b.c for the first time, no longer adds new.c, deletes gone.c.
        let seed_tree = tree(dir.path(), "v-seed", &pristine, &[("a.c", "a1"), ("include/h.h", "h1"), ("new.c", "n")]);
        let seed_objdir = seed_tree.join("build-1");
        write(&seed_objdir.join("a.o"), "object");
        write(&seed_objdir.join("run/state"), "saved boot");
        let seed_time = SystemTime::now() - Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(seed_tree.join("include/h.h"))
            .unwrap()
            .set_modified(seed_time)
            .unwrap();
        let new_tree = tree(dir.path(), "v-new", &pristine, &[("a.c", "a2"), ("include/h.h", "h1"), ("b.c", "b2")]);
        std::fs::remove_file(new_tree.join("gone.c")).unwrap();
        let objdir = new_tree.join("build-2");
        std::fs::create_dir(&objdir).unwrap();

        let cache = Cache::resolve(Some(&dir.path().join("cache"))).unwrap();
        let seed = Seed {
            objdir: seed_objdir,
            tree: seed_tree.clone(),
            _locks: [cache.try_lock("t").unwrap().unwrap(), cache.try_lock("b").unwrap().unwrap()],
        };
        let before = SystemTime::now() - Duration::from_secs(1);
        let changed = plant(&seed, &new_tree, &pristine, &objdir).unwrap();

        assert_eq!(std::fs::read_to_string(objdir.join("a.o")).unwrap(), "object", "the objects are copied");
        assert!(!objdir.join("run").exists(), "a saved boot is not");
        assert!(mtime(&new_tree.join("a.c")) >= before, "a.c differs from the seed's: rebuilt");
        assert!(mtime(&new_tree.join("b.c")) >= before, "b.c is patched now: rebuilt");
        assert_eq!(mtime(&new_tree.join("include/h.h")), seed_time, "h.h is as the seed had it: not rebuilt");
        assert_eq!(changed, 2, "a.c and b.c");
        assert_eq!(mtime(&pristine.join("a.c")), old, "the pristine tree keeps its times");
        // new.c, added by the seed's series only, is not in the new tree: nothing to date.
        assert!(!new_tree.join("new.c").exists());
    }

    #[test]
    fn the_seed_is_the_build_with_the_closest_config_then_the_same_variant_then_the_newest() {
        let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        let c = |dir: &str, same_variant, config_differences, used| Candidate {
            objdir: PathBuf::from(dir),
            same_variant,
            config_differences,
            used: at(used),
        };
        let pick = |cands| closest(cands, &|_| Ok(0)).unwrap().map(|c: Candidate| c.objdir);
        assert_eq!(pick(vec![c("old", true, 0, 1), c("new", true, 0, 2)]), Some("new".into()));
        assert_eq!(pick(vec![c("sibling", false, 0, 9), c("mine", true, 0, 1)]), Some("mine".into()));
        assert_eq!(pick(vec![c("mine-other-config", true, 3, 9), c("sibling", false, 0, 1)]), Some("sibling".into()));
        assert_eq!(pick(vec![c("baseline", false, 1, 1)]), Some("baseline".into()));
        assert_eq!(pick(vec![c("debug", true, 400, 9)]), None, "too far to be worth copying");
        assert_eq!(
            config_differences(
                "CONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\n",
                "CONFIG_A=y\nCONFIG_B=m\nCONFIG_D=y\n"
            ),
            3,
            "B set differently (counted once per side) and D set only in one"
        );
    }

    #[test]
    fn among_other_variants_the_seed_is_the_one_whose_tree_differs_in_fewest_files() {
        let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        let c = |dir: &str, used| Candidate {
            objdir: PathBuf::from(dir).join("build-1"),
            same_variant: false,
            config_differences: 0,
            used: at(used),
        };
        let files = |c: &Candidate| Ok(if c.objdir.starts_with("near") { 1 } else { 30 });
        let pick = closest(vec![c("far-but-newest", 9), c("near", 1)], &files).unwrap();
        assert_eq!(pick.unwrap().objdir, PathBuf::from("near/build-1"));

        let dir = tempfile::tempdir().unwrap();
        let pristine = dir.path().join("pristine");
        for rel in ["a.c", "b.c", "c.c"] {
            write(&pristine.join(rel), rel);
        }
        let new = tree(dir.path(), "new", &pristine, &[("a.c", "a1"), ("b.c", "b1")]);
        let near = tree(dir.path(), "near", &pristine, &[("a.c", "a1"), ("b.c", "b0")]);
        let far = tree(dir.path(), "far", &pristine, &[("c.c", "c1")]);
        assert_eq!(differing_files(&new, &near, &pristine).unwrap(), 1, "b.c");
        assert_eq!(differing_files(&new, &far, &pristine).unwrap(), 3, "a.c, b.c and c.c");
    }

    #[test]
    fn a_file_the_seed_patched_and_the_new_series_does_not_is_unlinked_from_the_pristine_tree() {
        let dir = tempfile::tempdir().unwrap();
        let pristine = dir.path().join("pristine");
        write(&pristine.join("k.c"), "pristine");
        let old = SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::options().write(true).open(pristine.join("k.c")).unwrap().set_modified(old).unwrap();
        let seed_tree = tree(dir.path(), "v-seed", &pristine, &[("k.c", "patched")]);
        let new_tree = tree(dir.path(), "v-new", &pristine, &[]);
        let before = SystemTime::now() - Duration::from_secs(1);
        let changed = date(&new_tree.join("k.c"), &seed_tree.join("k.c"), &pristine.join("k.c"), SystemTime::now());
        assert!(changed.unwrap(), "the object was built from the seed's patched k.c");
        assert!(mtime(&new_tree.join("k.c")) >= before);
        assert_eq!(std::fs::read_to_string(new_tree.join("k.c")).unwrap(), "pristine");
        assert_eq!(mtime(&pristine.join("k.c")), old, "a copy was dated, not the pristine file");
    }
}
