//! Loading one program of an object with libbpf, and the verifier's verdict on it.
//!
//! libbpf loads with `log_level` 0 first; when the kernel refuses the program it retries with
//! `log_level` 1 and a log buffer it grows until the whole verifier log fits, then prints that log
//! through its print callback between `-- BEGIN PROG LOAD LOG --` and `-- END PROG LOAD LOG --`.
//! Capturing the callback therefore gives the complete log and the kernel's original errno
//! (a caller-supplied fixed buffer could overflow, and the kernel then answers ENOSPC instead).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::Path;
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context, Result};
use bpfh_protocol::{LoadInfo, ProgType, ProgramPlan, BPF_DIR};
use libbpf_rs::{AsRawLibbpf, Object, ObjectBuilder, PrintLevel, ProgramType};

/// Longest verifier log sent back; longer logs keep their tail, where the error is.
pub const MAX_LOG_BYTES: usize = 512 * 1024;

const LOG_BEGIN: &str = "-- BEGIN PROG LOAD LOG --\n";
const LOG_END: &str = "-- END PROG LOAD LOG --";
/// libbpf's warning when the kernel's BPF_PROG_LOAD failed (as opposed to libbpf's own steps).
const LOAD_FAILED: &str = "BPF program load failed";

/// Everything libbpf printed (warnings and info) since the last [`take_libbpf_output`].
static LIBBPF_OUTPUT: Mutex<String> = Mutex::new(String::new());

fn capture(_level: PrintLevel, msg: String) {
    LIBBPF_OUTPUT.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push_str(&msg);
}

fn take_libbpf_output() -> String {
    std::mem::take(&mut *LIBBPF_OUTPUT.lock().unwrap_or_else(|p| p.into_inner()))
}

/// Routes libbpf's messages into our buffer instead of stderr. Call once, before any load.
pub fn capture_libbpf_output() {
    libbpf_rs::set_print(Some((PrintLevel::Info, capture)));
}

/// A loaded object with the one program the plan asked for.
pub struct Loaded {
    /// Owns the program's descriptor: closing the object closes it.
    _object: Object,
    fd: RawFd,
    pub info: LoadInfo,
}

impl Loaded {
    pub fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: `fd` stays open as long as `self._object`, which outlives the borrow.
        unsafe { BorrowedFd::borrow_raw(self.fd) }
    }
}

pub enum Outcome {
    Accepted(Loaded),
    Rejected { errno: i32, log: String },
}

/// Opens `BPF_DIR/<object>`, loads only `plan.program` and reports the verifier's verdict.
/// Errors are failures that are not a verdict: missing file or program, wrong type, libbpf
/// failing before the kernel saw the program (e.g. an unknown kfunc).
pub fn load(plan: &ProgramPlan) -> Result<Outcome> {
    let path = Path::new(BPF_DIR).join(&plan.object);
    let _ = take_libbpf_output();
    let mut open = ObjectBuilder::default()
        .open_file(&path)
        .with_context(|| format!("opening {}: {}", path.display(), take_libbpf_output().trim()))?;

    let mut names = Vec::new();
    let mut found = None;
    for mut prog in open.progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        let wanted = name == plan.program;
        prog.set_autoload(wanted);
        if wanted {
            found = Some(prog.prog_type());
        }
        names.push(name);
    }
    let Some(prog_type) = found else {
        bail!("no program {:?} in {} (it has: {})", plan.program, plan.object, names.join(", "));
    };
    let expected = match plan.prog_type {
        ProgType::Tc => ProgramType::SchedCls,
        ProgType::Syscall => ProgramType::Syscall,
    };
    if prog_type != expected {
        bail!(
            "program {} has type {prog_type:?}, the plan says {} ({expected:?})",
            plan.program,
            plan.prog_type.as_str()
        );
    }

    // bpf_object__load directly: it returns the kernel's errno, which the verdict needs.
    // SAFETY: `open` owns a valid, not yet loaded bpf_object.
    let rc = unsafe { libbpf_sys::bpf_object__load(open.as_libbpf_object().as_ptr()) };
    let output = take_libbpf_output();
    if rc < 0 {
        let errno = -rc;
        if !output.contains(LOAD_FAILED) {
            bail!(
                "libbpf failed before the verifier ran ({}): {}",
                std::io::Error::from_raw_os_error(errno),
                output.trim()
            );
        }
        let log = verifier_log(&output).unwrap_or(&output);
        return Ok(Outcome::Rejected { errno, log: keep_tail(log, MAX_LOG_BYTES) });
    }
    // SAFETY: the object was loaded successfully and is owned by `open` alone.
    let object = unsafe { Object::from_ptr(open.take_ptr()) };
    let fd = object
        .progs()
        .find(|prog| prog.name() == plan.program.as_str())
        .map(|prog| prog.as_fd().as_raw_fd())
        .ok_or_else(|| anyhow!("program {} missing after loading", plan.program))?;
    let loaded = Loaded { _object: object, fd, info: LoadInfo::default() };
    let info = prog_info(loaded.fd())?;
    Ok(Outcome::Accepted(Loaded {
        info: LoadInfo {
            verified_insns: info.verified_insns,
            xlated_len: info.xlated_prog_len,
            jited_len: info.jited_prog_len,
        },
        ..loaded
    }))
}

/// `BPF_OBJ_GET_INFO_BY_FD` for a program.
pub fn prog_info(fd: BorrowedFd<'_>) -> Result<libbpf_sys::bpf_prog_info> {
    // SAFETY: bpf_prog_info is plain data; the kernel fills at most `len` bytes.
    unsafe {
        let mut info: libbpf_sys::bpf_prog_info = std::mem::zeroed();
        let mut len = std::mem::size_of_val(&info) as u32;
        let rc = libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len);
        if rc < 0 {
            return Err(std::io::Error::from_raw_os_error(-rc)).context("bpf_prog_get_info_by_fd");
        }
        Ok(info)
    }
}

/// The verifier log inside libbpf's output (the last one, if several were printed).
fn verifier_log(output: &str) -> Option<&str> {
    let start = output.rfind(LOG_BEGIN)? + LOG_BEGIN.len();
    let end = output[start..].find(LOG_END).map_or(output.len(), |i| start + i);
    Some(&output[start..end])
}

/// At most `max` bytes of `text`, from its end, marked when cut.
fn keep_tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut cut = text.len() - max;
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    format!("[... {cut} bytes cut ...]\n{}", &text[cut..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verifier_log_is_found_between_libbpf_markers() {
        let output = "libbpf: prog 'p': BPF program load failed: -EINVAL\n\
                      libbpf: prog 'p': -- BEGIN PROG LOAD LOG --\n\
                      0: R1=ctx() R10=fp0\nUnreleased reference id=2 alloc_insn=3\n\
                      -- END PROG LOAD LOG --\n\
                      libbpf: prog 'p': failed to load: -EINVAL\n";
        assert_eq!(verifier_log(output), Some("0: R1=ctx() R10=fp0\nUnreleased reference id=2 alloc_insn=3\n"));
        assert_eq!(verifier_log("libbpf: no log here\n"), None);
    }

    #[test]
    fn long_logs_keep_their_tail_on_a_char_boundary() {
        assert_eq!(keep_tail("short", 10), "short");
        let cut = keep_tail("aaaaéz", 3);
        assert!(cut.ends_with("éz"), "{cut}");
        assert!(cut.starts_with("[... 4 bytes cut ...]\n"), "{cut}");
    }
}
