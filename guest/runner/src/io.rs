//! The guest as a tiny Linux system: pseudo filesystems, the console, the results channel and
//! the final reboot.
//!
//! The results channel is a process-wide singleton so that the panic hook can still report.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Mutex, MutexGuard};

use anyhow::{Context, Result};
use bpfh_protocol::{Record, WAITING, WAIT_ARG};

/// Where the results go once [`open_results`] succeeded.
static RESULTS: Mutex<Option<File>> = Mutex::new(None);

fn results() -> MutexGuard<'static, Option<File>> {
    // A panic while the lock was held only poisons it; the file itself is still usable.
    RESULTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One line for the people watching the console. Never fails: the console may be missing.
pub fn say(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "bpfh: {line}");
    let _ = out.flush();
}

/// Mounts /proc, /sys and /dev (an initramfs has only what was packed into it).
/// Returns one message per mount that failed; an already mounted filesystem is not a failure.
pub fn mount_pseudo_filesystems() -> Vec<String> {
    [("proc", "/proc"), ("sysfs", "/sys"), ("devtmpfs", "/dev")]
        .into_iter()
        .filter_map(|(fstype, target)| mount(fstype, target).err())
        .map(|err| format!("{err:#}"))
        .collect()
}

pub fn mount(fstype: &str, target: &str) -> Result<()> {
    match std::fs::create_dir(target) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(err).with_context(|| format!("mkdir {target}")),
    }
    let c_fstype = CString::new(fstype)?;
    let c_target = CString::new(target)?;
    // SAFETY: valid NUL-terminated strings; no mount data.
    let rc = unsafe { libc::mount(c_fstype.as_ptr(), c_target.as_ptr(), c_fstype.as_ptr(), 0, std::ptr::null()) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EBUSY) {
            return Err(err).with_context(|| format!("mount {fstype} on {target}"));
        }
    }
    Ok(())
}

/// With [`WAIT_ARG`] on the kernel command line, says it waits and reads one line from the
/// console: the host saves the guest while it waits here, before anything depends on a run.
pub fn wait_for_host() -> Result<()> {
    let cmdline = std::fs::read_to_string("/proc/cmdline").context("reading /proc/cmdline")?;
    if !cmdline.split_whitespace().any(|arg| arg == WAIT_ARG) {
        return Ok(());
    }
    say(WAITING);
    let mut line = String::new();
    io::BufRead::read_line(&mut io::BufReader::new(File::open("/dev/console")?), &mut line)
        .context("reading the host's go from the console")?;
    Ok(())
}

/// The kernel opens /dev/console as fds 0-2 for /init only if the initramfs has that node.
/// Once devtmpfs is mounted, give ourselves a console if we started without one.
pub fn ensure_console() {
    // SAFETY: F_GETFD on a possibly closed descriptor only reports EBADF.
    if unsafe { libc::fcntl(1, libc::F_GETFD) } != -1 {
        return;
    }
    let Ok(console) = OpenOptions::new().read(true).write(true).custom_flags(libc::O_NOCTTY).open("/dev/console")
    else {
        return;
    };
    for fd in 0..=2 {
        // SAFETY: duplicating a descriptor we own onto the standard ones.
        unsafe { libc::dup2(console.as_raw_fd(), fd) };
    }
}

/// `kernel.bpf_stats_enabled=1`: needed to time `SEC("syscall")` programs.
pub fn enable_bpf_stats() -> Result<()> {
    std::fs::write("/proc/sys/kernel/bpf_stats_enabled", "1").context("writing 1 to /proc/sys/kernel/bpf_stats_enabled")
}

/// `uname -r`.
pub fn kernel_release() -> String {
    // SAFETY: uname fills a zeroed utsname; the release field is NUL-terminated.
    unsafe {
        let mut uts: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut uts) != 0 {
            return "unknown".into();
        }
        std::ffi::CStr::from_ptr(uts.release.as_ptr()).to_string_lossy().into_owned()
    }
}

/// Opens the results serial line in raw mode (no echo, no CR/LF translation, no carrier wait).
pub fn open_results(path: &str) -> Result<()> {
    // O_NONBLOCK: never wait for carrier detect while opening; cleared once CLOCAL is set.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("opening results channel {path}"))?;
    let fd = file.as_raw_fd();
    // SAFETY: plain termios/fcntl calls on a descriptor we own.
    unsafe {
        let mut tio: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd, &mut tio) != 0 {
            return Err(io::Error::last_os_error()).context("tcgetattr on results channel");
        }
        libc::cfmakeraw(&mut tio);
        tio.c_cflag |= libc::CLOCAL;
        if libc::tcsetattr(fd, libc::TCSANOW, &tio) != 0 {
            return Err(io::Error::last_os_error()).context("tcsetattr on results channel");
        }
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags == -1 || libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) == -1 {
            return Err(io::Error::last_os_error()).context("clearing O_NONBLOCK on results channel");
        }
    }
    *results() = Some(file);
    Ok(())
}

/// Sends one record and waits until it has left the UART. Without a channel, only the console
/// sees it.
pub fn send(record: &Record) {
    let mut guard = results();
    write_record(guard.as_mut(), record);
}

/// [`send`] for the panic hook: gives up rather than wait for a lock held by the panicking code.
pub fn try_send(record: &Record) {
    match RESULTS.try_lock() {
        Ok(mut guard) => write_record(guard.as_mut(), record),
        Err(std::sync::TryLockError::Poisoned(poisoned)) => write_record(poisoned.into_inner().as_mut(), record),
        Err(std::sync::TryLockError::WouldBlock) => {}
    }
}

fn write_record(file: Option<&mut File>, record: &Record) {
    let Some(file) = file else {
        say(&format!("no results channel, dropped: {}", record.encode()));
        return;
    };
    let line = record.encode() + "\n";
    let result = file.write_all(line.as_bytes()).and_then(|()| file.flush()).and_then(|()| drain(file));
    if let Err(err) = result {
        say(&format!("writing to the results channel failed: {err}"));
    }
}

/// Waits until everything written has been transmitted (so a record survives a crash right after).
fn drain(file: &File) -> io::Result<()> {
    // SAFETY: tcdrain on our own tty descriptor.
    if unsafe { libc::tcdrain(file.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Ends the guest: flush the filesystems and reboot (QEMU runs with -no-reboot, so it exits;
/// tinyconfig kernels have no ACPI, so power-off would hang). Never returns.
pub fn reboot() -> ! {
    // SAFETY: sync and reboot take no pointers.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_AUTOBOOT);
    }
    say(&format!("reboot failed: {}", io::Error::last_os_error()));
    // Exiting PID 1 panics the kernel, which reboots at once with panic=-1.
    std::process::exit(1)
}
