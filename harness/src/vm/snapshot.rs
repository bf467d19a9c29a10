//! Booting once: a guest image's boot is saved (QEMU migration to a file) where the runner waits
//! for the host, before its first record, and every run of that image restores it instead of
//! booting. Under icount a paused guest's clock stands still, so a restored run executes what a
//! booted one would from that point: the same instructions, the same counts.
//!
//! The saved state belongs to one kernel, one image and one QEMU command line: its key (a hash of
//! all three and QEMU's version) is stored beside it, and a state whose key differs is made anew.

use crate::host::fsutil::{hash_parts, write_atomic};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The files of one saved boot: the migration stream, its key, and the console up to the save.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedBoot {
    pub state: PathBuf,
}

impl SavedBoot {
    /// The saved boot of the image `initrd` (kept beside it: one per image, replaced when the
    /// image or its kernel changes).
    pub fn of_image(initrd: &Path) -> SavedBoot {
        SavedBoot { state: initrd.with_extension("state") }
    }

    fn key_file(&self) -> PathBuf {
        self.state.with_extension("state.key")
    }

    /// The console of the boot that was saved, which every restored run's console begins with.
    pub fn console_file(&self) -> PathBuf {
        self.state.with_extension("state.console")
    }

    /// Whether a state saved with `key` is there.
    pub fn is_current(&self, key: &str) -> bool {
        self.state.is_file() && std::fs::read_to_string(self.key_file()).is_ok_and(|k| k == key)
    }

    /// Records that the state now on disk was saved with `key`, with the console of its boot.
    pub fn commit(&self, key: &str, console: &str) -> Result<()> {
        write_atomic(&self.console_file(), console.as_bytes())?;
        Ok(write_atomic(&self.key_file(), key.as_bytes())?)
    }
}

/// What a saved state depends on: the kernel and image bytes, QEMU's arguments (but for the
/// files' own paths, which stay the same) and QEMU's version.
pub fn key(kernel: &Path, initrd: &Path, args: &[String], qemu_version: &str) -> Result<String> {
    let read = |file: &Path| std::fs::read(file).with_context(|| format!("reading {}", file.display()));
    let (kernel, initrd, args) = (read(kernel)?, read(initrd)?, args.join("\0"));
    Ok(hash_parts([
        ("kernel", kernel.as_slice()),
        ("initrd", initrd.as_slice()),
        ("args", args.as_bytes()),
        ("qemu", qemu_version.as_bytes()),
    ]))
}

/// QEMU's machine protocol over a Unix socket: commands and their answers (events skipped).
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connects to the socket QEMU listens on (`-qmp unix:PATH,server=on,wait=off`), waiting up to
    /// `timeout` for it to appear.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Qmp> {
        let start = Instant::now();
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(stream) => break stream,
                Err(err) if start.elapsed() > timeout => {
                    return Err(err).with_context(|| format!("connecting to QEMU's QMP socket {}", path.display()))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        stream.set_read_timeout(Some(timeout))?;
        let mut qmp = Qmp { reader: BufReader::new(stream.try_clone()?), writer: stream };
        qmp.read()?; // the greeting
        qmp.execute("qmp_capabilities", json!({}))?;
        Ok(qmp)
    }

    fn read(&mut self) -> Result<Value> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            bail!("QEMU closed its QMP socket");
        }
        Ok(serde_json::from_str(&line)?)
    }

    /// Runs `command`; its `return` value, or its error as one.
    pub fn execute(&mut self, command: &str, arguments: Value) -> Result<Value> {
        writeln!(self.writer, "{}", json!({ "execute": command, "arguments": arguments }))?;
        loop {
            let answer = self.read()?;
            if let Some(value) = answer.get("return") {
                return Ok(value.clone());
            }
            if let Some(error) = answer.get("error") {
                bail!("QMP {command}: {}", error.get("desc").and_then(Value::as_str).unwrap_or("failed"));
            }
        }
    }

    /// The VM's run state (`running`, `paused`, `inmigrate`, `postmigrate`, ...).
    pub fn status(&mut self) -> Result<String> {
        let status = self.execute("query-status", json!({}))?;
        Ok(status.get("status").and_then(Value::as_str).unwrap_or_default().to_string())
    }

    /// Polls `status` until it is one of `wanted`, for up to `timeout`.
    pub fn wait_for_status(&mut self, wanted: &[&str], timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            let status = self.status()?;
            if wanted.contains(&status.as_str()) {
                return Ok(());
            }
            if start.elapsed() > timeout {
                bail!("QEMU stayed {status:?} for {} s, waiting for {wanted:?}", timeout.as_secs());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the guest and writes its whole state to `file` (through `cat`, QEMU's `exec:`
    /// migration); returns once the state is complete.
    pub fn save(&mut self, file: &Path, timeout: Duration) -> Result<()> {
        self.execute("stop", json!({}))?;
        let uri = format!("exec:cat > {}", shell_quote(file));
        self.execute("migrate", json!({ "uri": uri }))?;
        let start = Instant::now();
        loop {
            let state = self.execute("query-migrate", json!({}))?;
            match state.get("status").and_then(Value::as_str) {
                Some("completed") => return Ok(()),
                Some(failed @ ("failed" | "cancelled")) => {
                    let why = state.get("error-desc").and_then(Value::as_str).unwrap_or_default();
                    bail!("saving the guest {failed}: {why}")
                }
                _ if start.elapsed() > timeout => bail!("saving the guest took over {} s", timeout.as_secs()),
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

/// QEMU's arguments that load a saved state instead of booting (the VM then waits, paused).
pub fn restore_args(state: &Path) -> [String; 2] {
    ["-incoming".into(), format!("exec:cat {}", shell_quote(state))]
}

/// `-qmp` on a socket QEMU creates and does not wait for.
pub fn qmp_args(socket: &Path) -> [String; 2] {
    ["-qmp".into(), format!("unix:{},server=on,wait=off", socket.display())]
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// A path for QEMU's QMP socket: in `workdir` when short enough for a Unix socket's name.
pub fn qmp_socket(workdir: &Path) -> PathBuf {
    let path = workdir.join("qmp.sock");
    if path.as_os_str().len() < 100 {
        return path;
    }
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    std::env::temp_dir().join(format!("bpfh-qmp-{}-{nanos}.sock", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_changes_with_the_kernel_the_image_the_arguments_and_qemu() {
        let dir = tempfile::tempdir().unwrap();
        let (kernel, initrd) = (dir.path().join("k"), dir.path().join("i"));
        std::fs::write(&kernel, "kernel").unwrap();
        std::fs::write(&initrd, "image").unwrap();
        let args = vec!["-m".to_string(), "512".to_string()];
        let base = key(&kernel, &initrd, &args, "QEMU 7.2").unwrap();
        assert_eq!(base, key(&kernel, &initrd, &args, "QEMU 7.2").unwrap());
        assert_ne!(base, key(&kernel, &initrd, &args, "QEMU 8.0").unwrap());
        assert_ne!(base, key(&kernel, &initrd, &["-m".into(), "1024".into()], "QEMU 7.2").unwrap());
        std::fs::write(&initrd, "other image").unwrap();
        assert_ne!(base, key(&kernel, &initrd, &args, "QEMU 7.2").unwrap());
    }

    #[test]
    fn a_saved_boot_is_current_only_with_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let saved = SavedBoot::of_image(&dir.path().join("simple.cpio"));
        assert_eq!(saved.state, dir.path().join("simple.state"));
        assert!(!saved.is_current("k1"));
        std::fs::write(&saved.state, "state").unwrap();
        saved.commit("k1", "console\n").unwrap();
        assert!(saved.is_current("k1") && !saved.is_current("k2"));
        assert_eq!(std::fs::read_to_string(saved.console_file()).unwrap(), "console\n");
    }

    #[test]
    fn paths_are_quoted_for_the_shell_that_runs_cat() {
        assert_eq!(shell_quote(Path::new("/a b/it's")), r"'/a b/it'\''s'");
    }
}
