//! The payload: what one run gives the guest (the plan and the BPF objects), as a cpio "newc"
//! archive that QEMU exposes as the fw_cfg file [`FW_CFG_NAME`]. The runner reads it after the
//! host's go, so the same saved boot serves every scenario run on its kernel: the initramfs holds
//! only the runner.
//!
//! The host writes the archive (`harness/src/guest/initramfs.rs`, the writer of the initramfs);
//! [`read_newc`] is the runner's side.

/// The fw_cfg file the payload is in (`-fw_cfg name=...,file=...`; QEMU wants `opt/` names).
pub const FW_CFG_NAME: &str = "opt/bpfh/payload";

const NEWC_MAGIC: &[u8; 6] = b"070701";
const HEADER_LEN: usize = 110;
const TRAILER: &str = "TRAILER!!!";
const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;

/// One entry of an archive: a directory or a regular file, by its path relative to the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry<'a> {
    Dir { path: &'a str, mode: u32 },
    File { path: &'a str, mode: u32, data: &'a [u8] },
}

/// A malformed archive: where in it, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("payload archive, byte {offset}: {message}")]
pub struct ArchiveError {
    pub offset: usize,
    pub message: String,
}

/// The entries of a newc archive up to its trailer. Only directories and regular files are
/// expected in a payload; anything else, a truncated archive or one without a trailer is an error.
pub fn read_newc(archive: &[u8]) -> Result<Vec<Entry<'_>>, ArchiveError> {
    let mut entries = Vec::new();
    let mut at = 0;
    loop {
        let err = |offset: usize, message: String| ArchiveError { offset, message };
        let header = archive.get(at..at + HEADER_LEN).ok_or_else(|| err(at, "truncated header".into()))?;
        if &header[..6] != NEWC_MAGIC {
            return Err(err(at, format!("not a newc header (magic {:?})", String::from_utf8_lossy(&header[..6]))));
        }
        // Fields after the magic: ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
        // devminor, rdevmajor, rdevminor, namesize, check; eight hex digits each.
        let field = |index: usize| -> Result<u32, ArchiveError> {
            let start = 6 + 8 * index;
            let text = std::str::from_utf8(&header[start..start + 8]).unwrap_or("");
            u32::from_str_radix(text, 16).map_err(|_| err(at + start, format!("field {index} is not hex: {text:?}")))
        };
        let (mode, file_size, name_size) = (field(1)?, field(6)? as usize, field(11)? as usize);
        let name_start = at + HEADER_LEN;
        let name = archive
            .get(name_start..name_start + name_size)
            .and_then(|n| n.strip_suffix(&[0]))
            .and_then(|n| std::str::from_utf8(n).ok())
            .ok_or_else(|| err(name_start, "truncated or malformed name".into()))?;
        let data_start = align4(name_start + name_size);
        let data = archive
            .get(data_start..data_start + file_size)
            .ok_or_else(|| err(data_start, format!("{name}: truncated")))?;
        if name == TRAILER {
            return Ok(entries);
        }
        if name.is_empty() || name.starts_with('/') || name.split('/').any(|part| part == "..") {
            return Err(err(at, format!("{name:?}: not a path inside the root")));
        }
        entries.push(match mode & S_IFMT {
            S_IFDIR => Entry::Dir { path: name, mode: mode & 0o7777 },
            S_IFREG => Entry::File { path: name, mode: mode & 0o7777, data },
            other => return Err(err(at, format!("{name}: file type {other:o} is not a directory or a file"))),
        });
        at = align4(data_start + file_size);
    }
}

fn align4(n: usize) -> usize {
    n.next_multiple_of(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A newc entry as `cpio -H newc` writes it.
    fn entry(name: &str, mode: u32, data: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "070701{:08x}{mode:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            1,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        )
        .into_bytes();
        out.extend(name.as_bytes());
        out.push(0);
        out.resize(align4(out.len()), 0);
        out.extend(data);
        out.resize(align4(out.len()), 0);
        out
    }

    #[test]
    fn directories_and_files_are_read_up_to_the_trailer() {
        let archive =
            [entry("bpf", S_IFDIR | 0o755, b""), entry("bpf/a.o", S_IFREG | 0o644, b"12345"), entry(TRAILER, 0, b"")]
                .concat();
        assert_eq!(
            read_newc(&archive).unwrap(),
            vec![Entry::Dir { path: "bpf", mode: 0o755 }, Entry::File { path: "bpf/a.o", mode: 0o644, data: b"12345" }]
        );
    }

    #[test]
    fn a_truncated_archive_a_device_and_an_escaping_path_are_errors() {
        let file = entry("plan.json", S_IFREG | 0o644, b"{}");
        let err = read_newc(&file).unwrap_err();
        assert_eq!(err.offset, file.len());
        assert!(err.message.contains("truncated header"), "{err}");
        let cut = [&file[..file.len() - 3]].concat();
        assert!(read_newc(&cut).unwrap_err().message.contains("plan.json: truncated"));
        let device = [entry("dev/console", 0o020000 | 0o600, b""), entry(TRAILER, 0, b"")].concat();
        assert!(read_newc(&device).unwrap_err().message.contains("not a directory or a file"));
        let escaping = [entry("../etc/x", S_IFREG, b""), entry(TRAILER, 0, b"")].concat();
        assert!(read_newc(&escaping).unwrap_err().message.contains("not a path inside the root"));
        assert!(read_newc(b"garbage").unwrap_err().message.contains("truncated header"));
    }
}
