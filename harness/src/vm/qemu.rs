//! Boot: runs one guest in QEMU, keeps its console, reads its records from the dedicated
//! results channel (the second serial port) and stops it on panic or timeout. Guest failures are
//! part of the outcome, with the console, so that what was gathered before them is not lost.

use crate::host::fsutil::{last_lines, write_atomic};
use crate::vm::console;
use crate::vm::snapshot::{self, Qmp, SavedBoot};
use bpfh_protocol::payload::FW_CFG_NAME;
use bpfh_protocol::{decode_stream, Record, WAITING};
use serde::{Deserialize, Serialize};
use std::fs::Permissions;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const QEMU: &str = "qemu-system-x86_64";
const PANIC_MARKER: &str = "Kernel panic - not syncing";
/// Lines of the console a failure shows (its last), and of a panic (from its first line on).
const CONSOLE_TAIL_LINES: usize = 30;
const PANIC_EXCERPT_LINES: usize = 40;
/// How long a guest that reported Done may take to reset before it is stopped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

/// How guest time relates to real time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// TCG with `-icount shift=0,sleep=off`: one guest nanosecond per guest instruction, so
    /// durations are deterministic instruction counts.
    Icount,
    /// Real time: meaningful only under KVM.
    Wallclock,
}

impl Mode {
    /// The mode's name, as `--mode` takes it.
    pub fn name(self) -> String {
        clap::ValueEnum::to_possible_value(&self).expect("no mode is hidden").get_name().to_string()
    }

    /// The unit of a duration the guest reports in this mode.
    pub fn unit(self) -> &'static str {
        match self {
            Mode::Icount => "insns",
            Mode::Wallclock => "ns",
        }
    }
}

#[derive(Debug, Clone)]
pub struct BootSpec {
    pub accel: Accel,
    pub mode: Mode,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// The run's plan and objects, which the runner reads from fw_cfg after the host's go (see
    /// `bpfh_protocol::payload`); not part of what a saved boot is keyed by. None for an
    /// initramfs that is not the runner's.
    pub payload: Option<PathBuf>,
    /// Receives console.log and records.txt.
    pub workdir: PathBuf,
    /// Until the runner's first record.
    pub boot_timeout: Duration,
    /// From the first record until Done.
    pub run_timeout: Duration,
    /// Boot the image once and save it where the runner waits, then restore that state for
    /// this and every later run of the same image and kernel (TCG only; see `snapshot`).
    pub restore: bool,
}

/// Why a guest did not run its plan to the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GuestFailure {
    /// The kernel panicked; `excerpt` is the console from the panic line on.
    Panic { excerpt: String },
    /// No record from the runner within the boot timeout.
    BootTimeout { seconds: u64, console_tail: String },
    /// The runner started but did not finish within the run timeout.
    RunTimeout { seconds: u64, console_tail: String },
    /// QEMU ended before the runner said Done, without a panic.
    QemuExited { status: String, stderr: String, console_tail: String },
    /// The results channel carried something that is not a record.
    Protocol { message: String },
    /// The harness could not build (`stage: build`) or boot (`stage: boot`) this variant.
    NotRun { stage: String, error: String },
}

impl std::fmt::Display for GuestFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GuestFailure::Panic { excerpt } => write!(f, "kernel panic:\n{excerpt}"),
            GuestFailure::BootTimeout { seconds, console_tail } => {
                write!(f, "the guest did not reach the runner within {seconds} s; console ends with:\n{console_tail}")
            }
            GuestFailure::RunTimeout { seconds, console_tail } => {
                write!(f, "the runner did not finish within {seconds} s; console ends with:\n{console_tail}")
            }
            GuestFailure::QemuExited { status, stderr, console_tail } => write!(
                f,
                "QEMU exited ({status}) before the runner finished; QEMU stderr: {stderr}\nconsole ends with:\n{console_tail}"
            ),
            GuestFailure::Protocol { message } => write!(f, "results channel: {message}"),
            GuestFailure::NotRun { stage, error } => write!(f, "not run: the {stage} failed: {error}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct BootOutcome {
    pub console_log: PathBuf,
    pub records: Vec<Record>,
    /// Kernel warnings, bugs and the like the console shows ([`console::kernel_warnings`]).
    pub kernel_warnings: Vec<String>,
    pub failure: Option<GuestFailure>,
    /// Wall time from QEMU start to the runner's first record (emulated boot under TCG; the
    /// restore of the saved boot when `restored`).
    pub boot_seconds: Option<f64>,
    /// The run restored the image's saved boot instead of booting.
    pub restored: bool,
    pub total_seconds: f64,
}

/// The guest's TSC rate under `-icount shift=0`: QEMU's TSC is then the virtual clock, one tick
/// per guest instruction. Left to calibrate against the PIT the kernel finds about 1000.007 MHz,
/// and `sched_clock()` (which BPF stats time syscall programs with) then turns a delta of 202
/// ticks into 201 or 202 ns depending on the absolute time the run started at, which depends on
/// when the host answered the guest: the same program counted differently from run to run.
/// Told the exact rate, the kernel converts ticks to nanoseconds one to one.
const ICOUNT_TSC_KHZ: u32 = 1_000_000;

/// QEMU's arguments; `wait`: the runner waits for the host's go on the console (a boot that is
/// saved, and its restores, which must have the same arguments).
pub fn qemu_args(spec: &BootSpec, records: &Path, wait: bool) -> Vec<String> {
    let mut args: Vec<String> = [
        "-nodefaults",
        "-no-user-config",
        // No network device: nothing in the guest reaches the host or beyond.
        "-nic",
        "none",
        "-display",
        "none",
        "-no-reboot",
        "-machine",
        "pc",
        "-m",
        "512",
        "-smp",
        "1",
    ]
    .map(String::from)
    .to_vec();
    match spec.accel {
        Accel::Kvm => args.extend(["-accel", "kvm", "-cpu", "host"].map(String::from)),
        Accel::Tcg => args.extend(["-accel", "tcg", "-cpu", "max"].map(String::from)),
    }
    if spec.mode == Mode::Icount {
        args.extend(["-icount", "shift=0,sleep=off"].map(String::from));
    }
    args.extend([
        "-kernel".into(),
        spec.kernel.display().to_string(),
        "-initrd".into(),
        spec.initrd.display().to_string(),
        "-append".into(),
        // loglevel=7 (no `quiet`): everything from KERN_INFO up reaches the console, where
        // warnings, lockdep, KASAN and kmemleak reports are looked for. tsc=reliable: QEMU's TSC
        // needs no clocksource watchdog, and without one the TSC is valid for high-resolution
        // timers from the start, not only after its ~1 s refinement (a watchdog budget's timer
        // would otherwise fire at the next 4 ms tick during the first programs).
        // tsc_early_khz under icount: see ICOUNT_TSC_KHZ.
        format!(
            "console=ttyS0 loglevel=7 panic=-1 rdinit=/init tsc=reliable{}{}",
            if spec.mode == Mode::Icount { format!(" tsc_early_khz={ICOUNT_TSC_KHZ}") } else { String::new() },
            if wait { " bpfh.wait" } else { "" }
        ),
        "-serial".into(),
        "stdio".into(),
        "-serial".into(),
        format!("file:{}", records.display()),
    ]);
    if let Some(payload) = &spec.payload {
        // QEMU's option syntax doubles a comma inside a value.
        let file = payload.display().to_string().replace(',', ",,");
        args.extend(["-fw_cfg".into(), format!("name={FW_CFG_NAME},file={file}")]);
    }
    args
}

/// Reads the results channel's file as the guest writes it: each call decodes only the complete
/// lines added since the last (a line being written is left for later).
struct RecordReader {
    file: std::fs::File,
    pending: Vec<u8>,
    records: Vec<Record>,
    /// Lines decoded so far, so that an error names the line of the whole stream.
    lines: usize,
    error: Option<String>,
}

impl RecordReader {
    fn open(path: &Path) -> std::io::Result<RecordReader> {
        Ok(RecordReader {
            file: std::fs::File::open(path)?,
            pending: Vec::new(),
            records: Vec::new(),
            lines: 0,
            error: None,
        })
    }

    fn poll(&mut self) {
        if self.error.is_some() || std::io::Read::read_to_end(&mut self.file, &mut self.pending).is_err() {
            return;
        }
        let Some(end) = self.pending.iter().rposition(|&b| b == b'\n') else { return };
        let complete: Vec<u8> = self.pending.drain(..=end).collect();
        let text = String::from_utf8_lossy(&complete);
        match decode_stream(&text) {
            Ok(records) => self.records.extend(records),
            Err(e) => self.error = Some(shift_line_numbers(e, self.lines).to_string()),
        }
        self.lines += text.matches('\n').count();
    }
}

/// A decode error of a later chunk, numbered as a line of the whole stream.
fn shift_line_numbers(error: bpfh_protocol::DecodeError, before: usize) -> bpfh_protocol::DecodeError {
    use bpfh_protocol::DecodeError::{Malformed, NotARecord};
    match error {
        NotARecord { line, text } => NotARecord { line: line + before, text },
        Malformed { line, message } => Malformed { line: line + before, message },
    }
}

/// Boots the guest (or restores its saved boot, see [`BootSpec::restore`]) and waits for it to
/// finish its plan, fail, or time out. A boot that cannot be saved or restored is booted as it
/// is, with the reason first in its console log (not among what is scanned for warnings).
pub fn boot(spec: &BootSpec) -> anyhow::Result<BootOutcome> {
    std::fs::create_dir_all(&spec.workdir)?;
    if !spec.restore || spec.accel != Accel::Tcg {
        return run(spec, None, None);
    }
    let saved = match save_boot(spec) {
        Ok(saved) => saved,
        Err(err) => return run(spec, None, Some(format!("harness: booting without a saved boot: {err:#}"))),
    };
    run(spec, Some(&saved), None).or_else(|err| {
        // A state QEMU cannot load would fail every later run of the image: make it anew then.
        saved.discard();
        run(spec, None, Some(format!("harness: the saved boot could not be restored, booting: {err:#}")))
    })
}

/// The arguments a saved boot is keyed by: the files' paths replaced by what they are. The
/// payload is read only after the save, so any payload's run restores the same state.
fn key_args(spec: &BootSpec) -> Vec<String> {
    let placeholders = BootSpec {
        kernel: "kernel".into(),
        initrd: "initrd".into(),
        payload: spec.payload.as_ref().map(|_| "payload".into()),
        ..spec.clone()
    };
    qemu_args(&placeholders, Path::new("records"), true)
}

/// QEMU with `args`, killed if the harness dies (a guest waiting for the host never ends).
fn qemu_command(args: Vec<String>) -> Command {
    let mut command = Command::new(QEMU);
    command.args(args);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    command
}

/// The image's saved boot, made first unless there: a boot with the runner waiting, saved
/// once the runner says it waits.
fn save_boot(spec: &BootSpec) -> anyhow::Result<SavedBoot> {
    let key = snapshot::key(&spec.kernel, &spec.initrd, &key_args(spec), &qemu_version())?;
    let saved = SavedBoot::of_image(&spec.initrd, &spec.mode.name(), &key);
    let _saving = saved.lock()?;
    if saved.exists() {
        return Ok(saved);
    }
    saved.discard_others();
    let records = tempfile::tempdir()?;
    let socket = snapshot::qmp_socket();
    let mut args = qemu_args(spec, &records.path().join("records.txt"), true);
    args.extend(snapshot::qmp_args(&socket));
    let mut child = qemu_command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start {QEMU}: {e}"))?;
    let stderr = stderr_reader(child.stderr.take().expect("piped"));
    let result = (|| {
        let waiting = format!("bpfh: {WAITING}");
        let console = read_console_until(child.stdout.take().expect("piped"), &waiting, spec.boot_timeout)?;
        let mut qmp = Qmp::connect(&socket, Duration::from_secs(10))?;
        let dir = saved.state.parent().unwrap_or(Path::new("."));
        let state = tempfile::Builder::new().permissions(Permissions::from_mode(0o644)).tempfile_in(dir)?;
        let state = state.into_temp_path();
        qmp.save(&state, SAVE_TIMEOUT)?;
        let _ = qmp.execute("quit", serde_json::json!({}));
        // The console first: a state is there only with its console.
        write_atomic(&saved.console_file(), console.as_bytes())?;
        state.persist(&saved.state)?;
        Ok(())
    })();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&socket);
    let stderr = stderr.join().unwrap_or_default();
    result.map(|()| saved).map_err(|err: anyhow::Error| match stderr.trim() {
        "" => err,
        stderr => err.context(format!("QEMU stderr: {stderr}")),
    })
}

/// How long saving a guest may take (a few hundred milliseconds for 512 MB, mostly zero pages).
const SAVE_TIMEOUT: Duration = Duration::from_secs(60);

/// The console up to the line that contains `marker`, read within `timeout`.
fn read_console_until(stdout: std::process::ChildStdout, marker: &str, timeout: Duration) -> anyhow::Result<String> {
    let (lines, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in console_lines(stdout) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + timeout;
    let mut console = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let tail = |console: &str| last_lines(console, CONSOLE_TAIL_LINES);
        match receive.recv_timeout(left) {
            Ok(line) => {
                console.push_str(&line);
                console.push('\n');
                if line.contains(marker) {
                    return Ok(console);
                }
            }
            Err(RecvTimeoutError::Timeout) => anyhow::bail!(
                "the runner did not wait for the host within {} s; console ends with:\n{}",
                timeout.as_secs(),
                tail(&console)
            ),
            Err(RecvTimeoutError::Disconnected) => {
                anyhow::bail!(
                    "QEMU ended before the runner waited for the host; console ends with:\n{}",
                    tail(&console)
                )
            }
        }
    }
}

/// QEMU's console output, line by line, without the serial line's carriage returns.
fn console_lines(stdout: std::process::ChildStdout) -> impl Iterator<Item = String> {
    BufReader::new(stdout)
        .split(b'\n')
        .map_while(Result::ok)
        .map(|line| String::from_utf8_lossy(&line).trim_end_matches('\r').to_string())
}

fn stderr_reader(stderr: std::process::ChildStderr) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text);
        text
    })
}

/// One run: a boot, or the restore of `saved` (whose console the run's console begins with);
/// `note` heads the console log only.
fn run(spec: &BootSpec, saved: Option<&SavedBoot>, note: Option<String>) -> anyhow::Result<BootOutcome> {
    let console_log = spec.workdir.join("console.log");
    let records_path = spec.workdir.join("records.txt");
    std::fs::write(&records_path, b"")?;
    let mut reader = RecordReader::open(&records_path)?;
    let head = match saved {
        Some(saved) => std::fs::read_to_string(saved.console_file())?,
        None => String::new(),
    };
    let mut file = std::fs::File::create(&console_log)?;
    file.write_all(note.map(|n| n + "\n").unwrap_or_default().as_bytes())?;
    file.write_all(head.as_bytes())?;
    let socket = snapshot::qmp_socket();
    let mut args = qemu_args(spec, &records_path, saved.is_some());
    if let Some(saved) = saved {
        args.extend(snapshot::restore_args(&saved.state));
        args.extend(snapshot::qmp_args(&socket));
    }
    let start = Instant::now();
    let mut child = qemu_command(args)
        .stdin(if saved.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start {QEMU}: {e}"))?;
    let stderr_reader = stderr_reader(child.stderr.take().expect("piped"));
    if saved.is_some() {
        let resumed = resume(&socket, child.stdin.take().expect("piped"));
        let _ = std::fs::remove_file(&socket);
        if let Err(err) = resumed {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = stderr_reader.join().unwrap_or_default();
            return Err(err.context(format!("restoring the saved boot; QEMU stderr: {}", stderr.trim())));
        }
    }

    let console = Arc::new(Mutex::new(head));
    let stdout = child.stdout.take().expect("piped");
    let console_writer = {
        let console = Arc::clone(&console);
        std::thread::spawn(move || {
            for line in console_lines(stdout) {
                let _ = writeln!(file, "{line}");
                console.lock().expect("console lock").push_str(&(line + "\n"));
            }
        })
    };

    let mut boot_seconds = None;
    let mut done_at: Option<Instant> = None;
    let mut failure = None;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        reader.poll();
        let seen_any = !reader.records.is_empty() || reader.error.is_some();
        if seen_any && boot_seconds.is_none() {
            boot_seconds = Some(start.elapsed().as_secs_f64());
        }
        if done_at.is_none() && reader.error.is_none() && reader.records.contains(&Record::Done) {
            done_at = Some(Instant::now());
        }
        let console_tail = || last_lines(&console.lock().expect("console lock"), CONSOLE_TAIL_LINES);
        if let Some(done) = done_at {
            if done.elapsed() > SHUTDOWN_GRACE {
                break None;
            }
        } else if boot_seconds.is_none() && start.elapsed() > spec.boot_timeout {
            failure =
                Some(GuestFailure::BootTimeout { seconds: spec.boot_timeout.as_secs(), console_tail: console_tail() });
            break None;
        } else if let Some(booted) = boot_seconds {
            if start.elapsed().as_secs_f64() - booted > spec.run_timeout.as_secs_f64() {
                failure = Some(GuestFailure::RunTimeout {
                    seconds: spec.run_timeout.as_secs(),
                    console_tail: console_tail(),
                });
                break None;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = console_writer.join();
    let stderr = stderr_reader.join().unwrap_or_default();
    let console = console.lock().expect("console lock").clone();

    reader.poll();
    let (records, protocol_error) = match reader.error {
        None => (reader.records, None),
        Some(message) => (Vec::new(), Some(GuestFailure::Protocol { message })),
    };
    let finished = records.contains(&Record::Done);
    if failure.is_none() {
        failure = protocol_error;
    }
    if failure.is_none() && !finished {
        failure = Some(match console.find(PANIC_MARKER) {
            // From the panic line on: its reason ("softlockup: hung tasks") comes first, and a
            // long backtrace must not push it out.
            Some(at) => GuestFailure::Panic {
                excerpt: console[at..].lines().take(PANIC_EXCERPT_LINES).collect::<Vec<_>>().join("\n"),
            },
            None => GuestFailure::QemuExited {
                status: status.map(|s| s.to_string()).unwrap_or_else(|| "stopped".into()),
                stderr: stderr.trim().to_string(),
                console_tail: last_lines(&console, CONSOLE_TAIL_LINES),
            },
        });
    }
    Ok(BootOutcome {
        console_log,
        records,
        kernel_warnings: console::kernel_warnings(&console),
        failure,
        boot_seconds,
        restored: saved.is_some(),
        total_seconds: start.elapsed().as_secs_f64(),
    })
}

/// Lets a restored guest go: once QEMU has loaded the state (it then waits, paused), the go is
/// written to the console while the guest is still paused, so that it is there the instant the
/// guest continues (under icount, at the same guest time in every restore).
fn resume(socket: &Path, mut console_input: std::process::ChildStdin) -> anyhow::Result<()> {
    let mut qmp = Qmp::connect(socket, Duration::from_secs(30))?;
    qmp.wait_for_status(&["paused"], SAVE_TIMEOUT)?;
    console_input.write_all(b"go\n")?;
    console_input.flush()?;
    // A round trip lets QEMU's main loop, which also reads the console input, turn once.
    qmp.status()?;
    qmp.execute("cont", serde_json::json!({}))?;
    Ok(())
}

/// QEMU's version line, for provenance.
/// Asked of QEMU once per process: every saved boot's key and every run's provenance use it.
pub fn qemu_version() -> String {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION
        .get_or_init(|| {
            let version = xshell::Shell::new().ok().and_then(|sh| xshell::cmd!(sh, "{QEMU} --version").read().ok());
            version.and_then(|v| v.lines().next().map(str::to_string)).unwrap_or_else(|| "unknown".into())
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(accel: Accel, mode: Mode) -> BootSpec {
        BootSpec {
            accel,
            mode,
            kernel: "/k".into(),
            initrd: "/i".into(),
            payload: Some("/p,q".into()),
            workdir: "/w".into(),
            boot_timeout: Duration::from_secs(1),
            run_timeout: Duration::from_secs(1),
            restore: false,
        }
    }

    #[test]
    fn icount_is_only_requested_in_icount_mode() {
        let joined = |s: &BootSpec| qemu_args(s, Path::new("/r"), false).join(" ");
        let icount = joined(&spec(Accel::Tcg, Mode::Icount));
        assert!(icount.contains("-accel tcg") && icount.contains("-icount shift=0,sleep=off"));
        let kvm = joined(&spec(Accel::Kvm, Mode::Wallclock));
        assert!(kvm.contains("-accel kvm") && !kvm.contains("-icount"));
        assert!(kvm.contains("panic=-1") && kvm.contains("-no-reboot") && kvm.contains("file:/r"));
        assert!(kvm.contains("-nic none") && kvm.contains("loglevel=7") && !kvm.contains("quiet"));
        assert!(kvm.contains("-fw_cfg name=opt/bpfh/payload,file=/p,,q"), "{kvm}");
    }

    /// Only under icount is the TSC's rate known (one tick per instruction); a real or
    /// host-timed TSC is left to the kernel's calibration.
    #[test]
    fn the_tsc_rate_is_given_only_under_icount() {
        let joined = |s: &BootSpec| qemu_args(s, Path::new("/r"), false).join(" ");
        assert!(joined(&spec(Accel::Tcg, Mode::Icount)).contains(" tsc_early_khz=1000000"));
        for (accel, mode) in [(Accel::Tcg, Mode::Wallclock), (Accel::Kvm, Mode::Wallclock)] {
            assert!(!joined(&spec(accel, mode)).contains("tsc_early_khz"), "{accel:?} {mode:?}");
        }
    }

    /// Saved boots are named by the mode (`runner-icount-<key>.state`).
    #[test]
    fn modes_are_named_as_the_command_line_names_them() {
        assert_eq!((Mode::Icount.name(), Mode::Wallclock.name()), ("icount".into(), "wallclock".into()));
    }

    /// Every scenario's run restores the same saved boot: its key leaves the payload out.
    #[test]
    fn the_saved_boot_is_keyed_without_the_payload() {
        let one = spec(Accel::Tcg, Mode::Icount);
        let other = BootSpec { payload: Some("/elsewhere/other.payload.cpio".into()), ..one.clone() };
        assert_eq!(key_args(&one), key_args(&other));
        let none = BootSpec { payload: None, ..one.clone() };
        assert_ne!(key_args(&one), key_args(&none));
    }

    /// A QEMU that ends at once (its "kernel" is a text file) is a failure carrying its stderr.
    #[test]
    fn qemu_exiting_early_is_reported_with_its_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let not_a_kernel = dir.path().join("vmlinux");
        std::fs::write(&not_a_kernel, "not a kernel").unwrap();
        let outcome = boot(&BootSpec {
            kernel: not_a_kernel,
            initrd: dir.path().join("vmlinux"),
            payload: None,
            workdir: dir.path().join("boot"),
            boot_timeout: Duration::from_secs(60),
            ..spec(Accel::Tcg, Mode::Wallclock)
        })
        .unwrap();
        match outcome.failure {
            Some(GuestFailure::QemuExited { stderr, .. }) => assert!(stderr.starts_with("qemu"), "{stderr}"),
            other => panic!("expected QemuExited, got {other:?}"),
        }
        assert!(outcome.console_log.is_file());
    }

    #[test]
    fn a_partly_written_record_is_left_for_later() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.txt");
        let done = Record::Done.encode();
        std::fs::write(&path, format!("{done}\n{}", &done[..5])).unwrap();
        let mut reader = RecordReader::open(&path).unwrap();
        reader.poll();
        assert_eq!(reader.records, vec![Record::Done]);
        // The rest of the line arrives later; a bad line after it is numbered in the stream.
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        writeln!(file, "{}", &done[5..]).unwrap();
        reader.poll();
        assert_eq!(reader.records, vec![Record::Done, Record::Done]);
        writeln!(file, "not a record").unwrap();
        reader.poll();
        assert!(reader.error.as_deref().unwrap().contains("line 3"), "{:?}", reader.error);
    }
}
