//! Booting once: a kernel's boot is saved (QEMU migration to a file) where the runner waits for
//! the host, before its first record and before it reads the run's payload, and every run on
//! that kernel, whatever its scenario, restores it instead of booting. Under icount a paused
//! guest's clock stands still, so a restored run executes what a booted one would from that
//! point: the same instructions, the same counts.
//!
//! The saved state belongs to one kernel, one initramfs and one QEMU command line: its key (a
//! hash of all three and QEMU's version) names it, and a state whose key differs is made anew.
//! States of the two measurement modes (their command lines differ) are kept side by side.

use crate::host::fsutil::hash_parts;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One saved boot of an image: the migration stream and the console up to the save, named by
/// the key they were saved with, so that a state is never paired with another key's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedBoot {
    pub state: PathBuf,
}

impl SavedBoot {
    /// The saved boot of the image `initrd` booted as `kind` (the measurement mode) with `key`
    /// (beside the image).
    pub fn of_image(initrd: &Path, kind: &str, key: &str) -> SavedBoot {
        let stem = initrd.file_stem().unwrap_or_default().to_string_lossy();
        SavedBoot { state: initrd.with_file_name(format!("{stem}-{kind}-{}.state", &key[..16.min(key.len())])) }
    }

    /// The console of the boot that was saved, which every restored run's console begins with.
    /// Written before the state, so that a state always has its console.
    pub fn console_file(&self) -> PathBuf {
        self.state.with_extension("console")
    }

    /// Whether the state is there (it is renamed into place only once complete).
    pub fn exists(&self) -> bool {
        self.state.is_file() && self.console_file().is_file()
    }

    /// Holds the image's saved boots of this kind for this process until the file is dropped:
    /// a run that finds no state waits while another saves it, then restores it, instead of
    /// booting too and replacing the other's state and console (they pair only by name).
    pub fn lock(&self) -> Result<std::fs::File> {
        let name = self.state.file_name().unwrap_or_default().to_string_lossy();
        let image_kind =
            saved_image(&name).with_context(|| format!("{} is no saved boot's name", self.state.display()))?;
        let path = self.state.with_file_name(format!("{image_kind}.lock"));
        let file = std::fs::File::options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        file.lock().with_context(|| format!("locking {}", path.display()))?;
        Ok(file)
    }

    /// Removes this state (one QEMU could not load) and its console.
    pub fn discard(&self) {
        let _ = std::fs::remove_file(&self.state);
        let _ = std::fs::remove_file(self.console_file());
    }

    /// Removes the states of the same image and kind saved with other keys (an older kernel or
    /// runner), states of other images (each scenario had its own before the runner read its
    /// payload from fw_cfg), and temporary files a run that died left behind. The same image's
    /// states of another kind stay.
    pub fn discard_others(&self) {
        let Some(dir) = self.state.parent() else { return };
        let name = self.state.file_name().unwrap_or_default().to_string_lossy();
        let Some(this) = saved_image(&name) else { return };
        let image_file = this.rsplit_once('-').map_or(this, |(file, _)| file);
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let superseded = saved_image(&name).is_some_and(|saved| {
                let other_key = saved == this && path.with_extension("state") != self.state;
                other_key || !saved.starts_with(&format!("{image_file}-"))
            });
            let abandoned = name.starts_with(".tmp") && entry.metadata().is_ok_and(|m| stale(&m));
            if superseded || abandoned {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// The image and kind a saved boot's file belongs to: `runner-icount` for
/// `runner-icount-<16 hex>.state` or `.console`.
fn saved_image(file_name: &str) -> Option<&str> {
    let stem = file_name.strip_suffix(".state").or_else(|| file_name.strip_suffix(".console"))?;
    let (image, key) = stem.rsplit_once('-')?;
    (key.len() == 16 && key.bytes().all(|b| b.is_ascii_hexdigit())).then_some(image)
}

/// A temporary file no run has written to for an hour.
fn stale(metadata: &std::fs::Metadata) -> bool {
    metadata.modified().ok().and_then(|m| m.elapsed().ok()).is_some_and(|age| age > Duration::from_secs(3600))
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
        // QEMU reports completion before `cat` has written the end: `cat` says when it has.
        let written = file.with_extension("written");
        let uri = format!("exec:cat > {} && touch {}", shell_quote(file), shell_quote(&written));
        self.execute("migrate", json!({ "uri": uri }))?;
        let start = Instant::now();
        loop {
            let state = self.execute("query-migrate", json!({}))?;
            match state.get("status").and_then(Value::as_str) {
                Some("completed") if written.exists() => {
                    let _ = std::fs::remove_file(&written);
                    return Ok(());
                }
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

/// A path for a QEMU's QMP socket, unique to this process and call (concurrent runs may share
/// a work directory's name; a Unix socket's path must stay short).
pub fn qmp_socket() -> PathBuf {
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("bpfh-qmp-{}-{call}.sock", std::process::id()))
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
    fn a_saved_boot_is_named_by_its_key_and_replaces_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("runner.cpio");
        let (old, new) = (
            SavedBoot::of_image(&image, "icount", "aaaa1111bbbb2222cc"),
            SavedBoot::of_image(&image, "icount", "dddd1111bbbb2222"),
        );
        assert_eq!(old.state, dir.path().join("runner-icount-aaaa1111bbbb2222.state"));
        assert_eq!(old.console_file(), dir.path().join("runner-icount-aaaa1111bbbb2222.console"));
        // The other kind of the same image stays; a scenario's image of old goes.
        let other_kind = SavedBoot::of_image(&image, "wallclock", "aaaa1111bbbb2222");
        let scenario_image = SavedBoot::of_image(&dir.path().join("simple.cpio"), "x", "aaaa1111bbbb2222");
        let legacy = SavedBoot { state: dir.path().join("upstream-all-aaaa1111bbbb2222.state") };
        for saved in [&old, &new, &other_kind, &scenario_image, &legacy] {
            std::fs::write(&saved.state, "state").unwrap();
            assert!(!saved.exists(), "a state without its console is not there");
            std::fs::write(saved.console_file(), "console").unwrap();
            assert!(saved.exists());
        }
        std::fs::write(dir.path().join("runner.cpio"), "image").unwrap();
        new.discard_others();
        assert!(!old.exists() && new.exists() && other_kind.exists());
        assert!(!scenario_image.exists() && !legacy.exists());
        assert!(image.exists());
        new.discard();
        assert!(!new.exists());
    }

    #[test]
    fn saving_an_images_boot_of_one_kind_is_one_run_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("runner.cpio");
        let held = SavedBoot::of_image(&image, "icount", "aaaa1111bbbb2222").lock().unwrap();
        let lock_file = dir.path().join("runner-icount.lock");
        let other = std::fs::File::open(&lock_file).unwrap();
        assert!(other.try_lock().is_err(), "another key's run must wait too");
        SavedBoot::of_image(&image, "wallclock", "aaaa1111bbbb2222").lock().unwrap();
        drop(held);
        other.try_lock().unwrap();
        // Not a saved boot's file: discard_others leaves it.
        SavedBoot::of_image(&image, "icount", "dddd1111bbbb2222").discard_others();
        assert!(lock_file.exists());
    }

    /// A QMP server that answers each command with the next of `answers` (events first).
    fn fake_qemu(socket: &Path, answers: Vec<&'static str>) -> std::thread::JoinHandle<()> {
        let listener = std::os::unix::net::UnixListener::bind(socket).unwrap();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut writer = stream;
            writeln!(writer, r#"{{"QMP": {{"version": {{}}, "capabilities": []}}}}"#).unwrap();
            for answer in std::iter::once(r#"{"return": {}}"#).chain(answers) {
                let mut command = String::new();
                if reader.read_line(&mut command).unwrap() == 0 {
                    return;
                }
                writeln!(writer, "{answer}").unwrap();
            }
        })
    }

    #[test]
    fn qmp_skips_events_and_reports_errors_and_a_closed_socket() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("qmp.sock");
        let server = fake_qemu(
            &socket,
            vec![
                "{\"event\": \"STOP\"}\n{\"return\": {\"status\": \"paused\"}}",
                r#"{"error": {"class": "GenericError", "desc": "no migration"}}"#,
            ],
        );
        let mut qmp = Qmp::connect(&socket, Duration::from_secs(5)).unwrap();
        assert_eq!(qmp.status().unwrap(), "paused");
        let err = qmp.execute("migrate", json!({})).unwrap_err().to_string();
        assert_eq!(err, "QMP migrate: no migration");
        server.join().unwrap();
        let err = qmp.status().unwrap_err().to_string();
        assert!(err.contains("closed") || err.contains("reset") || err.contains("pipe"), "{err}");
    }

    #[test]
    fn qmp_sockets_are_unique_per_call() {
        assert_ne!(qmp_socket(), qmp_socket());
    }

    #[test]
    fn paths_are_quoted_for_the_shell_that_runs_cat() {
        assert_eq!(shell_quote(Path::new("/a b/it's")), r"'/a b/it'\''s'");
    }
}
