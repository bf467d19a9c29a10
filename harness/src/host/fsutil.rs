//! Small file-system helpers shared by the stages: atomic writes, hashing, text tails.

use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

/// Writes `data` to `path` through a temporary file in the same directory, renamed into place
/// and the directory synced, so a reader never sees a half-written file and an interrupted run
/// or a crash leaves the old one intact. A failure (a full disk, a file size limit) names the
/// file and leaves no temporary behind (it is removed when dropped unpersisted).
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let named = |e: std::io::Error| std::io::Error::new(e.kind(), format!("writing {}: {e}", path.display()));
    std::fs::create_dir_all(dir).map_err(named)?;
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(named)?;
    // Readable by all, as a file written directly would be (tempfile creates 0600): results a
    // root run stores are read by a user's `compare`, reports by a web server.
    let readable = std::os::unix::fs::PermissionsExt::from_mode(0o644);
    file.as_file().set_permissions(readable).map_err(named)?;
    file.write_all(data).and_then(|()| file.as_file().sync_all()).map_err(named)?;
    file.persist(path).map_err(|e| named(e.error))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(named)
}

/// Hex SHA-256 of a sequence of labelled parts (labels keep "ab"+"c" distinct from "a"+"bc").
pub fn hash_parts<'a>(parts: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut hasher = Sha256::new();
    for (label, bytes) in parts {
        hasher.update(label.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The last `n` lines of a text (a console, a verifier log), for messages that show how it ends.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The last `n` lines of a text file, for error messages that point at a full log.
pub fn tail_lines(path: &Path, n: usize) -> String {
    let text = std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    last_lines(&text, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/result.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644);
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn hash_parts_separates_boundaries() {
        let a = hash_parts([("x", b"ab".as_slice()), ("y", b"c".as_slice())]);
        let b = hash_parts([("x", b"a".as_slice()), ("y", b"bc".as_slice())]);
        assert_ne!(a, b);
    }
}
