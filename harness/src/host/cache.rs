//! Where the harness keeps what is expensive to make: extracted sources, patched trees, kernel
//! builds and their logs. Nothing in here is ever needed for correctness: it can be deleted.

use crate::events::Sink;
use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
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
        // Absolute: commands run inside its trees, and git ignores a relative ceiling.
        let root = root.canonicalize().map_err(|e| anyhow::anyhow!("{}: {e}", root.display()))?;
        Ok(Cache { root })
    }

    /// Takes the part of the cache named `what` (a variant's trees and builds, the extracted
    /// source) for this process, waiting (and saying so) while another harness run holds it: two
    /// runs building into the same directories would corrupt them. The lock is an advisory
    /// `flock` on `<cache>/locks/<what>.lock`, released when the guard drops or the process
    /// dies, however it dies.
    pub fn lock(&self, sink: &dyn Sink, what: &str) -> anyhow::Result<CacheLock> {
        let (path, mut file) = self.lock_file(what)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder =
                    if holder.is_empty() { "another harness run".to_string() } else { format!("pid {holder}") };
                sink.phase("cache", &format!("waiting for {what}: {} is held by {holder}", path.display()));
                file.lock().map_err(|e| anyhow::anyhow!("cannot lock {}: {e}", path.display()))?;
            }
            Err(TryLockError::Error(e)) => anyhow::bail!("cannot lock {}: {e}", path.display()),
        }
        held(file)
    }

    /// A shared hold on `what`: any number of runs may hold it together, and an exclusive
    /// `try_lock` (`cache prune`) fails while one does.
    pub fn lock_shared(&self, what: &str) -> anyhow::Result<CacheLock> {
        let (path, file) = self.lock_file(what)?;
        file.lock_shared().map_err(|e| anyhow::anyhow!("cannot lock {}: {e}", path.display()))?;
        Ok(CacheLock { _file: file })
    }

    /// The lock on `what` if nobody holds it now; None if another run does.
    pub fn try_lock(&self, what: &str) -> anyhow::Result<Option<CacheLock>> {
        let (path, file) = self.lock_file(what)?;
        match file.try_lock() {
            Ok(()) => held(file).map(Some),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => anyhow::bail!("cannot lock {}: {e}", path.display()),
        }
    }

    /// A place for one guest, held until dropped, waiting while [`guest_slots`] guests run (of
    /// this run or of another harness run on the cache: tests run side by side). A TCG guest
    /// keeps a core busy: more guests only stretch each one's wall time towards its timeouts.
    pub fn guest_slot(&self, sink: &dyn Sink, who: &str) -> anyhow::Result<CacheLock> {
        let slots = guest_slots();
        let mut said = false;
        loop {
            for slot in 0..slots {
                if let Some(held) = self.try_lock(&format!("guest-{slot}"))? {
                    return Ok(held);
                }
            }
            if !said {
                sink.phase(who, &format!("waiting for a guest to end: {slots} are running"));
                said = true;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// `<cache>/locks/<what>.lock`, opened (created if need be).
    fn lock_file(&self, what: &str) -> anyhow::Result<(PathBuf, File)> {
        let dir = self.root.join("locks");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{what}.lock"));
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| anyhow::anyhow!("cannot open the cache lock {}: {e}", path.display()))?;
        Ok((path, file))
    }

    /// Bytes on disk under each top-level part of the cache (`src`, `trees`, `ccache`, ...), a
    /// file with several hard links counted once, in the first part that has it (the variants'
    /// trees are hard-linked copies of the extracted source); and the total.
    pub fn du(&self) -> anyhow::Result<(Vec<(String, u64)>, u64)> {
        let mut seen = std::collections::HashSet::new();
        let mut parts = Vec::new();
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(&self.root)?.map(|e| Ok(e?.path())).collect::<std::io::Result<_>>()?;
        entries.sort();
        for path in entries {
            let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
            parts.push((name, disk_usage(&path, &mut seen)?));
        }
        let total = parts.iter().map(|(_, n)| n).sum();
        Ok((parts, total))
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

/// An exclusive hold, with the holder's pid written in, for the message of the next run that waits.
fn held(mut file: File) -> anyhow::Result<CacheLock> {
    file.set_len(0)?;
    file.rewind()?;
    write!(file, "{}", std::process::id())?;
    Ok(CacheLock { _file: file })
}

/// Allocated bytes under `path` (not following links), each inode counted once over `seen`.
pub fn disk_usage(path: &Path, seen: &mut std::collections::HashSet<(u64, u64)>) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path)?;
    let mut bytes = if seen.insert((meta.dev(), meta.ino())) { meta.blocks() * 512 } else { 0 };
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            bytes += disk_usage(&entry?.path(), seen)?;
        }
    }
    Ok(bytes)
}

/// How many guests may run at once: two per core. Three guests on two cores then end
/// together, instead of the third running alone on one core after the others; the counts of
/// icount guests do not depend on how they share the host.
pub fn guest_slots() -> usize {
    2 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Holds the cache lock until dropped.
#[derive(Debug)]
pub struct CacheLock {
    _file: File,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_cache_directory_is_made_absolute() {
        let dir = tempfile::tempdir().unwrap();
        let relative = dir.path().strip_prefix(std::env::current_dir().unwrap()).map(Path::to_path_buf);
        // Relative to the current directory when the temporary directory is below it; else a
        // path with `..` in it, which is not canonical either.
        let given = relative.unwrap_or_else(|_| dir.path().join("sub/..").join("c"));
        let cache = Cache::resolve(Some(&given)).unwrap();
        assert!(cache.root().is_absolute() && !cache.root().components().any(|c| c.as_os_str() == ".."));
    }

    #[test]
    fn a_second_holder_waits_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::resolve(Some(dir.path())).unwrap();
        let first = cache.lock(&crate::events::Collect::default(), "variant-baseline").unwrap();
        let lock_file = dir.path().join("locks/variant-baseline.lock");
        assert_eq!(std::fs::read_to_string(lock_file).unwrap(), std::process::id().to_string());
        let _other = cache.lock(&crate::events::Collect::default(), "variant-other").expect("other parts are not held");
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let cache = cache.clone();
            std::thread::spawn(move || {
                let second = cache.lock(&crate::events::Collect::default(), "variant-baseline").unwrap();
                tx.send(()).unwrap();
                second
            })
        };
        // flock locks belong to open files, so a second open in this process blocks too.
        assert!(rx.recv_timeout(std::time::Duration::from_millis(300)).is_err(), "second lock taken while held");
        drop(first);
        rx.recv_timeout(std::time::Duration::from_secs(5)).expect("second lock taken once released");
        drop(waiter.join().unwrap());
    }

    #[test]
    fn there_are_two_guest_slots_per_core_and_a_freed_one_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::resolve(Some(dir.path())).unwrap();
        let sink = std::sync::Arc::new(crate::events::Collect::default());
        let mut held: Vec<_> = (0..guest_slots()).map(|_| cache.guest_slot(&*sink, "v").unwrap()).collect();
        assert!(sink.events().is_empty(), "a free core is taken without waiting");
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let (cache, sink) = (cache.clone(), sink.clone());
            std::thread::spawn(move || tx.send(cache.guest_slot(&*sink, "v").unwrap()).unwrap())
        };
        assert!(rx.recv_timeout(std::time::Duration::from_millis(300)).is_err(), "a guest beyond the cores ran");
        held.pop();
        rx.recv_timeout(std::time::Duration::from_secs(5)).expect("the freed core is taken");
        waiter.join().unwrap();
        assert!(
            matches!(&sink.events()[..], [crate::events::Event::Phase { what, .. }] if what.starts_with("waiting for a guest to end"))
        );
    }
}
