//! The guest's initramfs, written here as a cpio "newc" archive: no external tool is needed, and
//! the same entries always give the same bytes (no timestamps, owners or host inode numbers).

use std::collections::HashMap;
use std::path::Path;

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;
/// The name of the entry that ends a newc archive.
const TRAILER: &str = "TRAILER!!!";
/// Mode of a directory created because something was added inside it.
const IMPLICIT_DIR_MODE: u32 = 0o755;

#[derive(Debug)]
enum Content {
    Dir,
    File(Vec<u8>),
    CharDev { major: u32, minor: u32 },
}

#[derive(Debug)]
struct Entry {
    path: String,
    /// Permission bits only; the file type comes from `content`.
    permissions: u32,
    content: Content,
}

/// An initramfs being assembled. Entries are archived in the order they were added, each after
/// its parent directory, because the kernel creates them in archive order.
///
/// Paths are relative to the guest's root ("init", "bpf/simple.bpf.o"). Paths are program
/// constants, so a malformed or conflicting one is a bug and panics.
#[derive(Debug, Default)]
pub struct Initramfs {
    entries: Vec<Entry>,
    /// Path to position in `entries`, to find parents and conflicts.
    index: HashMap<String, usize>,
}

impl Initramfs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a directory, or sets the mode of one already created as a parent.
    ///
    /// # Panics
    /// If `path` is malformed or is already a file or device.
    pub fn add_dir(&mut self, path: &str, mode: u32) {
        check_path(path);
        match self.index.get(path) {
            Some(&i) if matches!(self.entries[i].content, Content::Dir) => self.entries[i].permissions = mode & 0o7777,
            Some(_) => panic!("initramfs: {path:?} is already a file or device, not a directory"),
            None => self.insert(path, mode, Content::Dir),
        }
    }

    /// Adds a regular file, creating missing parent directories (mode 0755).
    ///
    /// # Panics
    /// If `path` is malformed or already added, or `data` does not fit newc's 32-bit size field.
    pub fn add_file(&mut self, path: &str, mode: u32, data: Vec<u8>) {
        check_path(path);
        assert!(
            u32::try_from(data.len()).is_ok(),
            "initramfs: {path:?} is too large for a newc archive (4 GiB or more)"
        );
        self.insert(path, mode, Content::File(data));
    }

    /// Adds a character device node, creating missing parent directories (mode 0755).
    ///
    /// # Panics
    /// If `path` is malformed or already added.
    pub fn add_char_dev(&mut self, path: &str, mode: u32, major: u32, minor: u32) {
        check_path(path);
        self.insert(path, mode, Content::CharDev { major, minor });
    }

    fn insert(&mut self, path: &str, mode: u32, content: Content) {
        // Each proper prefix ending before a '/' is a parent, outermost first.
        for (end, _) in path.match_indices('/') {
            let parent = &path[..end];
            match self.index.get(parent) {
                Some(&i) => assert!(
                    matches!(self.entries[i].content, Content::Dir),
                    "initramfs: {parent:?} is a file or device, so {path:?} cannot be inside it"
                ),
                None => self.push(parent, IMPLICIT_DIR_MODE, Content::Dir),
            }
        }
        assert!(!self.index.contains_key(path), "initramfs: {path:?} added twice");
        self.push(path, mode, content);
    }

    fn push(&mut self, path: &str, mode: u32, content: Content) {
        self.index.insert(path.to_string(), self.entries.len());
        self.entries.push(Entry { path: path.to_string(), permissions: mode & 0o7777, content });
    }

    /// The archive: every entry in order, then the trailer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (index, entry) in self.entries.iter().enumerate() {
            let (file_type, nlink, rdev, data) = match &entry.content {
                Content::Dir => (S_IFDIR, 2, (0, 0), &[][..]),
                Content::File(data) => (S_IFREG, 1, (0, 0), data.as_slice()),
                Content::CharDev { major, minor } => (S_IFCHR, 1, (*major, *minor), &[][..]),
            };
            Record {
                // Inode numbers only need to be distinct (the kernel pairs regular files with
                // nlink > 1 by inode as hard links); 0 is left to the trailer.
                ino: u32::try_from(index + 1).expect("fewer than 2^32 entries"),
                mode: file_type | entry.permissions,
                nlink,
                rdev,
                name: &entry.path,
                data,
            }
            .write_to(&mut out);
        }
        Record { ino: 0, mode: 0, nlink: 1, rdev: (0, 0), name: TRAILER, data: &[] }.write_to(&mut out);
        out
    }

    /// Writes the archive atomically, so an interrupted run never leaves a truncated image that a
    /// later boot would use; a file that already holds these bytes is left as it is (the runner's
    /// image is shared by every run of a kernel).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let bytes = self.to_bytes();
        if std::fs::read(path).is_ok_and(|old| old == bytes) {
            return Ok(());
        }
        crate::host::fsutil::write_atomic(path, &bytes)
    }
}

/// Archive paths are relative, '/'-separated, without empty, "." or ".." components, and
/// without NUL (which ends a name in the archive).
fn check_path(path: &str) {
    let ok = !path.contains('\0') && path.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
    assert!(ok, "initramfs: bad path {path:?} (want a relative path like \"bpf/x.o\")");
}

/// One newc header with its name and data.
struct Record<'a> {
    ino: u32,
    mode: u32,
    nlink: u32,
    rdev: (u32, u32),
    name: &'a str,
    data: &'a [u8],
}

impl Record<'_> {
    fn write_to(&self, out: &mut Vec<u8>) {
        let fields = [
            self.ino,
            self.mode,
            0, // uid
            0, // gid
            self.nlink,
            0,                      // mtime
            self.data.len() as u32, // checked by add_file
            0,                      // major of the device holding the file
            0,                      // minor of the device holding the file
            self.rdev.0,
            self.rdev.1,
            self.name.len() as u32 + 1, // with its NUL; a path, so far below 4 GiB
            0,                          // checksum, unused in newc ("070701")
        ];
        out.extend_from_slice(b"070701");
        for field in fields {
            out.extend_from_slice(format!("{field:08X}").as_bytes());
        }
        out.extend_from_slice(self.name.as_bytes());
        out.push(0);
        // newc starts the data and the next header on 4-byte boundaries of the archive.
        out.resize(out.len().next_multiple_of(4), 0);
        out.extend_from_slice(self.data);
        out.resize(out.len().next_multiple_of(4), 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One archive member as a newc reader sees it.
    #[derive(Debug, PartialEq, Eq)]
    struct Member {
        ino: u32,
        mode: u32,
        uid: u32,
        gid: u32,
        nlink: u32,
        mtime: u32,
        rdev: (u32, u32),
        name: String,
        data: Vec<u8>,
    }

    /// A strict newc reader: checks magic, alignment, zero padding, the unused fields, and that
    /// the trailer ends the archive.
    fn read_newc(bytes: &[u8]) -> Vec<Member> {
        let mut members = Vec::new();
        let mut pos = 0;
        loop {
            assert_eq!(pos % 4, 0, "member at unaligned offset {pos}");
            let header = &bytes[pos..pos + 110];
            assert_eq!(&header[..6], b"070701", "magic at offset {pos}");
            let field = |i: usize| {
                let hex = std::str::from_utf8(&header[6 + 8 * i..14 + 8 * i]).unwrap();
                u32::from_str_radix(hex, 16).unwrap()
            };
            assert_eq!((field(7), field(8), field(12)), (0, 0, 0), "device of the file and checksum");
            let name_end = pos + 110 + field(11) as usize;
            assert_eq!(bytes[name_end - 1], 0, "name ends with NUL");
            let name = String::from_utf8(bytes[pos + 110..name_end - 1].to_vec()).unwrap();
            let data_start = name_end.next_multiple_of(4);
            let data_end = data_start + field(6) as usize;
            let next = data_end.next_multiple_of(4);
            assert!(bytes[name_end..data_start].iter().all(|&b| b == 0), "name padding of {name}");
            assert!(bytes[data_end..next].iter().all(|&b| b == 0), "data padding of {name}");
            pos = next;
            if name == TRAILER {
                assert_eq!(pos, bytes.len(), "nothing after the trailer");
                return members;
            }
            members.push(Member {
                ino: field(0),
                mode: field(1),
                uid: field(2),
                gid: field(3),
                nlink: field(4),
                mtime: field(5),
                rdev: (field(9), field(10)),
                name,
                data: bytes[data_start..data_end].to_vec(),
            });
        }
    }

    /// An image like the harness's, with names and data of every length modulo 4.
    fn sample() -> Initramfs {
        let mut image = Initramfs::new();
        image.add_file("init", 0o755, b"#!runner\n\x7fELF\x02".to_vec());
        image.add_char_dev("dev/console", 0o600, 5, 1);
        image.add_dir("proc", 0o555);
        image.add_file("bpf/simple.bpf.o", 0o644, vec![1, 2, 3, 4, 5]);
        image.add_file("bpf/empty.bpf.o", 0o644, Vec::new());
        // An explicit mode for a directory first created as a parent replaces the implicit one.
        image.add_dir("bpf", 0o700);
        image.add_file("a", 0o600, b"xyz".to_vec());
        image.add_dir("ab", 0o755);
        image
    }

    /// Name, mode, rdev and data of a member.
    type Summary<'a> = (&'a str, u32, (u32, u32), &'a [u8]);

    #[test]
    fn round_trip_through_a_newc_reader() {
        let members = read_newc(&sample().to_bytes());
        let summary: Vec<Summary> =
            members.iter().map(|m| (m.name.as_str(), m.mode, m.rdev, m.data.as_slice())).collect();
        let expected: Vec<Summary> = vec![
            ("init", 0o100755, (0, 0), b"#!runner\n\x7fELF\x02"),
            ("dev", 0o040755, (0, 0), b""),
            ("dev/console", 0o020600, (5, 1), b""),
            ("proc", 0o040555, (0, 0), b""),
            ("bpf", 0o040700, (0, 0), b""),
            ("bpf/simple.bpf.o", 0o100644, (0, 0), &[1, 2, 3, 4, 5]),
            ("bpf/empty.bpf.o", 0o100644, (0, 0), b""),
            ("a", 0o100600, (0, 0), b"xyz"),
            ("ab", 0o040755, (0, 0), b""),
        ];
        assert_eq!(summary, expected);
        for m in &members {
            assert_eq!((m.uid, m.gid, m.mtime), (0, 0, 0), "{}", m.name);
            assert_eq!(m.nlink, if m.mode & S_IFDIR != 0 { 2 } else { 1 }, "{}", m.name);
            assert!(m.ino != 0, "{}", m.name);
        }
        let mut inos: Vec<u32> = members.iter().map(|m| m.ino).collect();
        inos.sort_unstable();
        inos.dedup();
        assert_eq!(inos.len(), members.len(), "inode numbers are unique");
    }

    #[test]
    fn parents_are_created_once_before_their_children() {
        let mut image = Initramfs::new();
        image.add_file("a/b/c", 0o644, b"c".to_vec());
        image.add_file("a/b/d", 0o644, b"d".to_vec());
        image.add_char_dev("a/e", 0o600, 1, 3);
        let members = read_newc(&image.to_bytes());
        let names: Vec<(&str, u32)> = members.iter().map(|m| (m.name.as_str(), m.mode)).collect();
        assert_eq!(
            names,
            [("a", 0o040755), ("a/b", 0o040755), ("a/b/c", 0o100644), ("a/b/d", 0o100644), ("a/e", 0o020600)]
        );
    }

    #[test]
    fn same_input_gives_identical_bytes_and_file() {
        let bytes = sample().to_bytes();
        assert_eq!(bytes, sample().to_bytes());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("initramfs.cpio");
        sample().write(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    /// The runner reads payloads with the protocol crate's reader: it sees what was added.
    #[test]
    fn the_runners_reader_reads_what_is_written() {
        use bpfh_protocol::payload::{read_newc, Entry};
        let mut payload = Initramfs::new();
        payload.add_file("bpf/simple.bpf.o", 0o644, b"ELF".to_vec());
        payload.add_file("plan.json", 0o600, b"{}".to_vec());
        let bytes = payload.to_bytes();
        assert_eq!(
            read_newc(&bytes).unwrap(),
            [
                Entry::Dir { path: "bpf", mode: 0o755 },
                Entry::File { path: "bpf/simple.bpf.o", mode: 0o644, data: b"ELF" },
                Entry::File { path: "plan.json", mode: 0o600, data: b"{}" },
            ]
        );
    }

    #[test]
    fn cpio_lists_the_expected_names() {
        let cpio = Path::new("/usr/bin/cpio");
        if !cpio.exists() {
            eprintln!("note: {} is absent; skipping the cross-check with cpio", cpio.display());
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("initramfs.cpio");
        sample().write(&path).unwrap();
        let output =
            std::process::Command::new(cpio).arg("-it").stdin(std::fs::File::open(&path).unwrap()).output().unwrap();
        assert!(output.status.success(), "cpio -it: {}", String::from_utf8_lossy(&output.stderr));
        let listed = String::from_utf8(output.stdout).unwrap();
        let names: Vec<&str> = listed.lines().collect();
        assert_eq!(
            names,
            ["init", "dev", "dev/console", "proc", "bpf", "bpf/simple.bpf.o", "bpf/empty.bpf.o", "a", "ab"]
        );
    }

    #[test]
    #[should_panic(expected = "\"bpf/x.o\" added twice")]
    fn adding_a_path_twice_panics() {
        let mut image = Initramfs::new();
        image.add_file("bpf/x.o", 0o644, Vec::new());
        image.add_file("bpf/x.o", 0o644, Vec::new());
    }

    #[test]
    #[should_panic(expected = "bad path \"/init\"")]
    fn absolute_path_panics() {
        Initramfs::new().add_file("/init", 0o755, Vec::new());
    }

    #[test]
    #[should_panic(expected = "\"init\" is a file or device")]
    fn a_file_cannot_be_a_parent() {
        let mut image = Initramfs::new();
        image.add_file("init", 0o755, Vec::new());
        image.add_file("init/x", 0o644, Vec::new());
    }
}
