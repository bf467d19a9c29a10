//! Build: one out-of-tree kernel build per variant, keyed by
//! everything that decides its output, and reused when nothing changed.

use crate::events::Sink;
use crate::host::cache::{Cache, CacheLock};
use crate::host::command::run_logged;
use crate::host::fsutil::{hash_parts, write_atomic};
use crate::kernel::kconfig::{self, Fragment};
use crate::kernel::patch;
use crate::kernel::seed;
use crate::kernel::source::KernelSource;
use crate::kernel::variant::Variant;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Marks a finished build; written last, so an interrupted build is never taken as complete.
pub const COMPLETE_STAMP: &str = "build-complete.json";
/// Marks a fully prepared (copied and patched) variant tree.
const TREE_STAMP: &str = ".bpf-harness-tree";

/// What a finished kernel build offers the later stages.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KernelBuild {
    pub variant: String,
    pub kernel_version: String,
    /// The (patched) source tree the build used.
    pub tree: PathBuf,
    pub objdir: PathBuf,
    /// vmlinux with its BTF, for vmlinux.h.
    pub vmlinux: PathBuf,
    /// vmlinux without debug info (BTF kept): what QEMU boots through the PVH entry.
    pub boot_image: PathBuf,
    pub build_key: String,
    pub patch_hash: String,
    pub config_hash: String,
    pub compiler: String,
    pub log: PathBuf,
}

/// Held by the one kernel build that runs at a time on this cache.
const KERNEL_MAKE_LOCK: &str = "kernel-make";

/// The lock on a tree: `tree-<tree hash>`, whichever variant's name the tree carries (the hash
/// ends its directory name).
fn tree_lock(tree_hash16: &str) -> String {
    format!("tree-{tree_hash16}")
}

/// The lock on a tree, from its directory (`<variant>-<tree hash>`).
pub fn tree_lock_of(tree: &Path) -> String {
    let name = tree.file_name().unwrap_or_default().to_string_lossy();
    tree_lock(name.rsplit_once('-').map_or(&*name, |(_, hash)| hash))
}

/// The lock on a build directory (`build-<key16>`) while it is built or added to: its name.
pub fn build_lock(objdir: &Path) -> String {
    objdir.file_name().unwrap_or_default().to_string_lossy().into_owned()
}

/// The lock a run holds, shared, on a build directory (`build-<key16>`) while it boots from it,
/// so that `cache prune` leaves it alone.
pub fn in_use_lock(objdir: &Path) -> String {
    format!("use-{}", objdir.file_name().unwrap_or_default().to_string_lossy())
}

/// A kernel build and the lock on its build directory: the objects and images later stages
/// write there are made under the same lock, with no window for another run in between.
#[derive(Debug)]
pub struct LockedBuild {
    pub kernel: KernelBuild,
    _lock: CacheLock,
}

/// Identity of a source tree after patching: version, where it came from, the patches' bytes.
fn tree_key(source: &KernelSource, patches: &[PathBuf]) -> anyhow::Result<(String, String)> {
    let mut patch_bytes = Vec::new();
    for p in patches {
        let bytes = std::fs::read(p).with_context(|| format!("patch {}: cannot read", p.display()))?;
        patch_bytes.push((p.file_name().unwrap_or_default().to_string_lossy().into_owned(), bytes));
    }
    let patch_hash = hash_parts(patch_bytes.iter().map(|(n, b)| (n.as_str(), b.as_slice())));
    let source_id = format!("{}@{}", source.version, source.path.display());
    let tree_hash = hash_parts([("source", source_id.as_bytes()), ("patches", patch_hash.as_bytes())]);
    Ok((tree_hash, patch_hash))
}

/// The debug kernel's own patches, applied after the variant's series: the `*.patch` files of
/// `<fragment stem>-patches/` beside the debug fragment (`kernel-config/debug-patches/`). They
/// add the test triggers its detectors are proven with (LKDTM crash types for a lock inversion,
/// an RCU stall and a memory leak), which a normal kernel must not carry.
pub fn debug_patches(debug_fragment: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let stem = debug_fragment.file_stem().unwrap_or_default().to_string_lossy();
    let dir = debug_fragment.with_file_name(format!("{stem}-patches"));
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    crate::kernel::variant::patch_files(&dir)
}

/// The source tree for a variant: a hard-linked copy of the pristine tree with the series
/// applied (patch replaces the files it changes, so the pristine tree is never modified). Every
/// variant, baseline included, gets one, and builds in a subdirectory of it: kbuild then uses
/// `srctree := ..`, so compile commands are identical across variants and ccache shares them.
fn variant_tree(
    sink: &dyn Sink,
    cache: &Cache,
    source: &KernelSource,
    variant: &Variant,
    patches: &[PathBuf],
    tree_hash: &str,
) -> anyhow::Result<PathBuf> {
    let tree = cache.trees().join(format!("{}-{}", variant.name, &tree_hash[..16]));
    if tree.join(TREE_STAMP).exists() {
        return Ok(tree);
    }
    // The same series under another name (a shipped variant given again with `--variant`) has
    // the same tree: reuse it, and with it its builds.
    let suffix = format!("-{}", &tree_hash[..16]);
    if let Ok(entries) = std::fs::read_dir(cache.trees()) {
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name().to_string_lossy().ends_with(&suffix) && path.join(TREE_STAMP).exists() {
                return Ok(path);
            }
        }
    }
    let staging = cache.trees().join(format!(".staging-{}-{}", variant.name, std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    std::fs::create_dir_all(cache.trees())?;
    sink.phase(&variant.name, &format!("preparing the source tree ({} patches)", patches.len()));
    let sh = xshell::Shell::new()?;
    let pristine = &source.path;
    xshell::cmd!(sh, "cp -al {pristine} {staging}").quiet().run()?;
    if let Err(err) = patch::apply_series(&staging, patches) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(anyhow::Error::new(err).context(format!("variant {}", variant.name)));
    }
    std::fs::write(staging.join(TREE_STAMP), tree_hash)?;
    if tree.exists() {
        // An older, unstamped attempt: never reused.
        std::fs::remove_dir_all(&tree)?;
    }
    std::fs::rename(&staging, &tree)?;
    Ok(tree)
}

fn compiler_version() -> anyhow::Result<String> {
    let sh = xshell::Shell::new()?;
    let version = xshell::cmd!(sh, "gcc --version").read().context("gcc --version")?;
    Ok(version.lines().next().unwrap_or_default().to_string())
}

/// Resolves the variant's config (tinyconfig + fragments), cached by tree and fragment contents.
fn resolve_config(
    sink: &dyn Sink,
    cache: &Cache,
    tree: &Path,
    tree_hash: &str,
    variant: &Variant,
    fragments: &[Fragment],
    fragment_bytes: &[u8],
) -> anyhow::Result<PathBuf> {
    let key = hash_parts([("tree", tree_hash.as_bytes()), ("fragments", fragment_bytes)]);
    let dir = cache.configs().join(format!("{}-{}", variant.name, &key[..16]));
    let resolved = dir.join("resolved.config");
    if resolved.exists() {
        return Ok(resolved);
    }
    sink.phase(&variant.name, "configuring (tinyconfig + fragments + olddefconfig)");
    let work = dir.join("work");
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    std::fs::create_dir_all(&work)?;
    kconfig::configure(sink, &variant.name, tree, &work, fragments, &dir.join("configure.log"))
        .with_context(|| format!("configuring variant {}", variant.name))?;
    let config = std::fs::read(work.join(".config"))?;
    write_atomic(&resolved, &config)?;
    std::fs::remove_dir_all(&work)?;
    Ok(resolved)
}

/// Starts the empty build directory `objdir` from the closest complete build (`kernel::seed`:
/// the variant's previous one after a patch edit, or a sibling's with nearly the same config):
/// make then rebuilds what differs. Should seeding fail halfway, the directory is emptied again and built from scratch.
#[allow(clippy::too_many_arguments)]
fn seed_from_previous(
    sink: &dyn Sink,
    cache: &Cache,
    source: &KernelSource,
    variant: &Variant,
    tree: &Path,
    objdir: &Path,
    config: &str,
    compiler: &str,
) -> anyhow::Result<()> {
    let Some(seed) = seed::find(cache, &variant.name, tree, &source.path, config, compiler)? else { return Ok(()) };
    sink.phase(&variant.name, &format!("starting from the build in {}", seed.objdir.display()));
    match seed::plant(&seed, tree, &source.path, objdir) {
        Ok(changed) => {
            sink.phase(
                &variant.name,
                &format!("{changed} source files differ from that build's: make rebuilds what uses them"),
            );
        }
        Err(err) => {
            sink.warning(format!(
                "variant {}: starting from the previous build failed ({err:#}); building from scratch",
                variant.name
            ));
            std::fs::remove_dir_all(objdir)?;
            std::fs::create_dir_all(objdir)?;
        }
    }
    Ok(())
}

/// Builds (or reuses) the kernel for `variant`: `base_fragment`, then the variant's fragment,
/// then `debug_fragment` (last, so that the debug options win).
pub fn build(
    sink: &dyn Sink,
    cache: &Cache,
    source: &KernelSource,
    variant: &Variant,
    base_fragment: &Path,
    debug_fragment: Option<&Path>,
) -> anyhow::Result<LockedBuild> {
    // A debug kernel's tree carries the debug patches too: a tree (and build key) of its own.
    let mut patches = variant.patches.clone();
    if let Some(fragment) = debug_fragment {
        patches.extend(debug_patches(fragment)?);
    }
    let (tree_hash, patch_hash) = tree_key(source, &patches)?;
    // Another run preparing this tree (or its configs) waits, then finds them made.
    let tree_lock = cache.lock(sink, &tree_lock(&tree_hash[..16]))?;
    let tree = variant_tree(sink, cache, source, variant, &patches, &tree_hash)?;

    let mut fragment_paths = vec![base_fragment.to_path_buf()];
    fragment_paths.extend(variant.config_fragment.clone());
    fragment_paths.extend(debug_fragment.map(Path::to_path_buf));
    let mut fragments = Vec::new();
    let mut fragment_bytes = Vec::new();
    for path in &fragment_paths {
        fragments.push(Fragment::load(path)?);
        fragment_bytes.extend(std::fs::read(path)?);
    }
    let resolved = resolve_config(sink, cache, &tree, &tree_hash, variant, &fragments, &fragment_bytes)?;
    let config = std::fs::read(&resolved)?;
    let config_hash = hash_parts([("config", config.as_slice())]);
    let compiler = compiler_version()?;
    let build_key = hash_parts([
        ("version", source.version.as_bytes()),
        ("tree", tree_hash.as_bytes()),
        ("config", config_hash.as_bytes()),
        ("compiler", compiler.as_bytes()),
    ]);
    let objdir = tree.join(format!("build-{}", &build_key[..16]));
    // Held while building and, through the returned LockedBuild, while the caller adds to the
    // build directory; a run that waited for it then finds the stamp and reuses the build.
    let lock = cache.lock(sink, &build_lock(&objdir))?;
    // The tree is let go only once it has this build directory: `cache prune` removes a tree
    // with none, and must not in between.
    std::fs::create_dir_all(&objdir)?;
    drop(tree_lock);
    let stamp = objdir.join(COMPLETE_STAMP);
    // KASAN kernels do not boot through the PVH entry in 6.12: xen_prepare_pvh() calls the
    // instrumented memcmp() before the KASAN shadow exists, and the guest triple-faults before
    // its first console line. They boot as bzImage, through the normal startup path.
    let via_bzimage = String::from_utf8_lossy(&config).lines().any(|l| l == "CONFIG_KASAN=y");
    let vmlinux = objdir.join("vmlinux");
    let boot_image = match via_bzimage {
        true => objdir.join("arch/x86/boot/bzImage"),
        false => objdir.join("vmlinux.boot"),
    };
    if let Ok(text) = std::fs::read_to_string(&stamp) {
        if let Ok(mut done) = serde_json::from_str::<KernelBuild>(&text) {
            if done.boot_image == boot_image && done.boot_image.exists() && done.vmlinux.exists() {
                // Built for another variant with the same series, maybe: it is this one's now.
                done.variant = variant.name.clone();
                sink.phase(&variant.name, &format!("reusing kernel build {}", objdir.display()));
                // The stamp's time is the build's last use, which `cache prune` keeps by.
                std::fs::File::options().write(true).open(&stamp)?.set_modified(std::time::SystemTime::now())?;
                return Ok(LockedBuild { kernel: done, _lock: lock });
            }
        }
    }

    std::fs::create_dir_all(&objdir)?;
    if std::fs::read_dir(&objdir)?.next().is_none() {
        seed_from_previous(sink, cache, source, variant, &tree, &objdir, &String::from_utf8_lossy(&config), &compiler)?;
    }
    let dot_config = objdir.join(".config");
    if std::fs::read(&dot_config).ok().as_deref() != Some(config.as_slice()) {
        std::fs::write(&dot_config, &config)?;
    }
    // Fragments must have stuck in this very tree: re-verify the config the build will use.
    kconfig::verify(&fragments, &String::from_utf8_lossy(&config))
        .map_err(|e| anyhow::anyhow!("variant {}: {e}", variant.name))?;

    let log = objdir.join("build.log");
    let jobs = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let mut make = Command::new("make");
    make.arg("-C").arg(&tree).arg(format!("O={}", objdir.display())).arg(format!("-j{jobs}")).arg("vmlinux");
    if via_bzimage {
        make.arg("bzImage");
    }
    if crate::host::prereq::has_ccache() {
        // Paths differ between variants' trees and objdirs; hashing relative paths lets them share.
        make.arg("CC=ccache gcc")
            .env("CCACHE_DIR", cache.ccache())
            .env("CCACHE_BASEDIR", cache.root())
            .env("CCACHE_NOHASHDIR", "1");
    }
    // `make -jN` keeps every core busy: two builds at once (two runs, or end-to-end tests side
    // by side) would only slow each other down.
    let compiling = cache.lock(sink, KERNEL_MAKE_LOCK)?;
    run_logged(sink, &variant.name, "building vmlinux", &mut make, &log)?;
    drop(compiling);

    if !via_bzimage {
        let sh = xshell::Shell::new()?;
        xshell::cmd!(sh, "objcopy --strip-debug {vmlinux} {boot_image}").quiet().run()?;
    }

    let done = KernelBuild {
        variant: variant.name.clone(),
        kernel_version: source.version.clone(),
        tree,
        objdir: objdir.clone(),
        vmlinux,
        boot_image,
        build_key,
        patch_hash,
        config_hash,
        compiler,
        log,
    };
    write_atomic(&stamp, serde_json::to_string_pretty(&done)?.as_bytes())?;
    Ok(LockedBuild { kernel: done, _lock: lock })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A debug kernel's patches are the `.patch` files of `<stem>-patches/` beside its fragment, in
    /// order; a fragment without such a directory has none; the shipped one has the triggers.
    #[test]
    fn debug_patches_lie_beside_the_debug_fragment() {
        let dir = tempfile::tempdir().unwrap();
        let fragment = dir.path().join("debug.config");
        std::fs::write(&fragment, "CONFIG_LKDTM=y\n").unwrap();
        assert!(debug_patches(&fragment).unwrap().is_empty());
        let patches = dir.path().join("debug-patches");
        std::fs::create_dir(&patches).unwrap();
        for name in ["0002-b.patch", "0001-a.patch", "README.md"] {
            std::fs::write(patches.join(name), "diff --git a/x b/x\n").unwrap();
        }
        let names: Vec<_> =
            debug_patches(&fragment).unwrap().iter().map(|p| p.file_name().unwrap().to_owned()).collect();
        assert_eq!(names, ["0001-a.patch", "0002-b.patch"]);
        let shipped = debug_patches(&crate::host::repo::debug_fragment()).unwrap();
        assert!(shipped.iter().any(|p| std::fs::read_to_string(p).unwrap().contains("CRASHTYPE(KMEMLEAK)")));
    }
}
