//! The run's payload (plan and BPF objects, see [`bpfh_protocol::payload`]): read from QEMU's
//! fw_cfg device and unpacked into the root.
//!
//! fw_cfg is read through its I/O ports from user space (`ioperm`, `rep insb`): port I/O is
//! synchronous, so under icount the read takes the same guest instructions in every run, and it
//! reads the file QEMU was started with even after a restore (the kernel's fw_cfg driver would
//! know only the directory it read at boot, before the save).

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{bail, Context, Result};
use bpfh_protocol::payload::{read_newc, Entry, FW_CFG_NAME};

/// x86's fw_cfg registers: the 16-bit selector and the 8-bit data port after it.
const SELECTOR_PORT: u16 = 0x510;
const DATA_PORT: u16 = 0x511;
const KEY_SIGNATURE: u16 = 0x0000;
const KEY_FILE_DIR: u16 = 0x0019;
/// A directory entry: size (u32), select key (u16), reserved (u16), name (56 bytes, NUL-padded);
/// integers big-endian.
const DIR_ENTRY_LEN: usize = 64;

/// Reads the payload from fw_cfg and unpacks it into `root`; returns the archive's size.
pub fn fetch_and_unpack(root: &Path) -> Result<usize> {
    let archive = fetch().with_context(|| format!("reading the payload from fw_cfg file {FW_CFG_NAME}"))?;
    unpack(&read_newc(&archive)?, root)?;
    Ok(archive.len())
}

fn fetch() -> Result<Vec<u8>> {
    // SAFETY: ioperm only changes this process's I/O permission bitmap.
    if unsafe { libc::ioperm(libc::c_ulong::from(SELECTOR_PORT), 2, 1) } != 0 {
        return Err(std::io::Error::last_os_error())
            .context("ioperm on fw_cfg's ports (the kernel needs CONFIG_X86_IOPL_IOPERM)");
    }
    let ports = Ports(());
    if ports.read(KEY_SIGNATURE, 4) != b"QEMU" {
        bail!("no fw_cfg device at port {SELECTOR_PORT:#x}");
    }
    let count = u32::from_be_bytes(ports.read(KEY_FILE_DIR, 4).try_into().expect("4 bytes")) as usize;
    // The count is read again with the entries: a new selection starts at offset 0.
    let directory = ports.read(KEY_FILE_DIR, 4 + count * DIR_ENTRY_LEN);
    let (key, size) = find_file(&directory[4..], FW_CFG_NAME)
        .with_context(|| format!("QEMU has no fw_cfg file {FW_CFG_NAME} (started without the payload?)"))?;
    Ok(ports.read(key, size))
}

/// Access to the fw_cfg ports, once `ioperm` allowed it.
struct Ports(());

impl Ports {
    /// Selects `key` and reads its first `len` bytes.
    fn read(&self, key: u16, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        // SAFETY: ioperm granted these ports; `rep insb` writes exactly `len` bytes to `buf`, and
        // the direction flag is clear, as the ABI guarantees on entry.
        unsafe {
            std::arch::asm!("out dx, ax", in("dx") SELECTOR_PORT, in("ax") key, options(nomem, nostack, preserves_flags));
            std::arch::asm!(
                "rep insb",
                inout("rcx") len => _,
                inout("rdi") buf.as_mut_ptr() => _,
                in("dx") DATA_PORT,
                options(nostack, preserves_flags)
            );
        }
        buf
    }
}

/// The select key and size of the file `name` in fw_cfg's directory entries.
fn find_file(entries: &[u8], name: &str) -> Option<(u16, usize)> {
    entries.chunks_exact(DIR_ENTRY_LEN).find_map(|entry| {
        let entry_name = &entry[8..];
        let end = entry_name.iter().position(|&b| b == 0).unwrap_or(entry_name.len());
        (&entry_name[..end] == name.as_bytes()).then(|| {
            let size = u32::from_be_bytes(entry[..4].try_into().expect("4 bytes")) as usize;
            (u16::from_be_bytes([entry[4], entry[5]]), size)
        })
    })
}

/// Creates the archive's directories and files under `root` (existing directories are kept).
fn unpack(entries: &[Entry], root: &Path) -> Result<()> {
    for entry in entries {
        match *entry {
            Entry::Dir { path, mode } => match std::fs::DirBuilder::new().mode(mode).create(root.join(path)) {
                Err(err) if err.kind() != std::io::ErrorKind::AlreadyExists => {
                    return Err(err).with_context(|| format!("creating {path}"))
                }
                _ => {}
            },
            Entry::File { path, mode, data } => {
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(mode)
                    .open(root.join(path))
                    .with_context(|| format!("creating {path}"))?;
                std::io::Write::write_all(&mut file, data).with_context(|| format!("writing {path}"))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_entry(size: u32, key: u16, name: &str) -> Vec<u8> {
        let mut entry = [size.to_be_bytes().as_slice(), &key.to_be_bytes(), &[0, 0], name.as_bytes()].concat();
        entry.resize(DIR_ENTRY_LEN, 0);
        entry
    }

    #[test]
    fn the_payload_is_found_by_its_full_name() {
        let entries = [
            dir_entry(4096, 0x20, "etc/e820"),
            dir_entry(12, 0x21, "opt/bpfh/payload.old"),
            dir_entry(123_456, 0x22, FW_CFG_NAME),
        ]
        .concat();
        assert_eq!(find_file(&entries, FW_CFG_NAME), Some((0x22, 123_456)));
        assert_eq!(find_file(&entries[..2 * DIR_ENTRY_LEN], FW_CFG_NAME), None);
    }

    #[test]
    fn an_archive_is_unpacked_into_the_root() {
        let root = std::env::temp_dir().join(format!("bpfh-payload-test-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let entries =
            [Entry::Dir { path: "bpf", mode: 0o755 }, Entry::File { path: "bpf/x.o", mode: 0o644, data: b"abc" }];
        unpack(&entries, &root).unwrap();
        assert_eq!(std::fs::read(root.join("bpf/x.o")).unwrap(), b"abc");
        unpack(&entries, &root).expect("unpacking again keeps the directory and rewrites the file");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
