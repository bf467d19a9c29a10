//! Loading one program of an object with libbpf, and the verifier's verdict on it.
//!
//! libbpf allocates the log buffer itself and grows it until the whole verifier log fits, then
//! prints that log through its print callback between `-- BEGIN PROG LOAD LOG --` and
//! `-- END PROG LOAD LOG --` (at debug level after a successful load, as a warning after a
//! failed one). Capturing the callback therefore gives the complete log and the kernel's original
//! errno (a caller-supplied fixed buffer could overflow, and the kernel then answers ENOSPC).

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::Path;
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context, Result};
use bpfh_protocol::{Action, InfoField, LoadInfo, ProgType, ProgramPlan, BPF_DIR, MAX_PROG_INFO_BYTES};
use libbpf_rs::{
    AsRawLibbpf, Link, MapCore, MapFlags, MapType, Object, ObjectBuilder, OpenObject, PrintLevel, ProgramType,
};

/// Longest verifier log sent back; longer logs keep their tail, where the error is. As long as
/// test_loader's buffer (`TEST_LOADER_LOG_BUF_SZ`): a longer log fails the load upstream.
pub const MAX_LOG_BYTES: usize = 2 * 1024 * 1024;

const LOG_BEGIN: &str = "-- BEGIN PROG LOAD LOG --\n";
const LOG_END: &str = "-- END PROG LOAD LOG --";
/// libbpf's warning when the kernel's BPF_PROG_LOAD failed (as opposed to libbpf's own steps).
pub(crate) const LOAD_FAILED: &str = "BPF program load failed";

/// Everything libbpf printed (warnings and info) since the last [`take_libbpf_output`].
static LIBBPF_OUTPUT: Mutex<String> = Mutex::new(String::new());

fn capture(_level: PrintLevel, msg: String) {
    LIBBPF_OUTPUT.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push_str(&msg);
}

pub(crate) fn take_libbpf_output() -> String {
    std::mem::take(&mut *LIBBPF_OUTPUT.lock().unwrap_or_else(|p| p.into_inner()))
}

/// Routes libbpf's messages into our buffer instead of stderr. Call once, before any load.
/// Debug level: libbpf prints the log of a successful load (the statistics) only at that level.
pub fn capture_libbpf_output() {
    libbpf_rs::set_print(Some((PrintLevel::Debug, capture)));
}

/// Which program of which object to load, and the type it must have.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub object: &'a str,
    pub program: &'a str,
    pub prog_type: ProgType,
    /// `BPF_F_*` flags or'ed into the program's.
    pub prog_flags: u32,
    /// Programs of the object loaded beside it.
    pub auxiliary: &'a [String],
    /// The verifier log level asked for (`__log_level`); 0: a log only for a rejection.
    pub log_level: u32,
    /// Effective capabilities dropped around the load (a mask of `CAP_*` bits).
    pub drop_caps: u64,
    /// An upstream selftest program, which this kernel may be unable to load at all (no such
    /// program type, attach target or kfunc): then it is skipped, not an error.
    pub may_be_unloadable: bool,
}

impl<'a> From<&'a ProgramPlan> for Target<'a> {
    fn from(plan: &'a ProgramPlan) -> Target<'a> {
        Target {
            object: &plan.object,
            program: &plan.program,
            prog_type: plan.prog_type,
            prog_flags: plan.prog_flags,
            auxiliary: &plan.auxiliary,
            log_level: plan.log_level,
            drop_caps: plan.drop_caps,
            may_be_unloadable: !matches!(plan.action, Action::Measure(_)),
        }
    }
}

/// A loaded object with the one program the plan asked for.
pub struct Loaded {
    /// An fentry program's attachment (fields drop in order: detached before it is closed).
    _link: Option<Link>,
    /// Owns the program's descriptor: closing the object closes it.
    _object: Object,
    fd: RawFd,
    pub info: LoadInfo,
    /// The verifier log, when the target asked for a log level.
    pub log: Option<String>,
}

impl Loaded {
    pub fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: `fd` stays open as long as `self._object`, which outlives the borrow.
        unsafe { BorrowedFd::borrow_raw(self.fd) }
    }

    /// Zeroes the object's array maps (not its global-variable maps), which releases what their
    /// values own, such as a task a program stashed with `bpf_kptr_xchg()`, as closing the object
    /// would later: a reference count read afterwards counts what the runs leaked, not what a
    /// map still owns (a design may stop a program before it takes its stash back).
    pub fn release_map_values(&self) -> Result<()> {
        for map in self._object.maps() {
            // SAFETY: the map belongs to the object, which outlives the call.
            let internal = unsafe { libbpf_sys::bpf_map__is_internal(map.as_libbpf_object().as_ptr()) };
            if map.map_type() != MapType::Array || internal {
                continue;
            }
            let zeros = vec![0u8; map.value_size() as usize];
            for key in 0..map.max_entries() {
                map.update(&key.to_ne_bytes(), &zeros, MapFlags::ANY)
                    .with_context(|| format!("emptying map {:?}", map.name()))?;
            }
        }
        Ok(())
    }
}

pub enum Outcome {
    Accepted(Loaded),
    Rejected {
        errno: i32,
        log: String,
    },
    /// A `ProgType::Any` program this kernel cannot load at all: why.
    Skipped(String),
}

/// libbpf's message when a kfunc an object calls is not in the kernel's BTF.
const NO_KFUNC: &str = "not found in kernel or module BTFs";
/// libbpf's message when a tracing program's attach target is not in the kernel's BTF.
const NO_ATTACH_TARGET: &str = "failed to find kernel BTF type ID of";
/// libbpf's message when a map of the object cannot be created (its type is not in this
/// kernel: an xskmap without CONFIG_XDP_SOCKETS), before any program is loaded.
const NO_MAP: &str = "': failed to create:";

/// Opens `BPF_DIR/<object>`, loads only `target.program` and reports the verifier's verdict.
/// Errors are failures that are not a verdict: missing file or program, wrong type, libbpf
/// failing before the kernel saw the program (e.g. an unknown kfunc).
///
/// The load asks for the verifier's statistics (`log_level` 4), which cost nothing measurable,
/// beside the target's own level; a rejected program loaded without a level is loaded once more
/// with `log_level` 1 for the full log, as libbpf retries.
pub fn load(target: Target<'_>, info_fields: &[InfoField]) -> Result<Outcome> {
    let (open, rc, output, prog_type) = open_and_load(target, target.log_level | BPF_LOG_STATS)?;
    if rc < 0 {
        let errno = -rc;
        if target.may_be_unloadable {
            if let Some(reason) = unloadable_here(prog_type, &output) {
                return Ok(Outcome::Skipped(reason));
            }
        }
        if !output.contains(LOAD_FAILED) {
            bail!(
                "libbpf failed before the verifier ran ({}): {}",
                std::io::Error::from_raw_os_error(errno),
                output.trim()
            );
        }
        // libbpf retries only a load without any log level: a `__log_level(4)` rejection keeps
        // its statistics log (the error is in it), and is not verified a second time with a
        // level-1 log, which for a program the verifier gives up on after a million
        // instructions takes minutes under TCG.
        let output = match target.log_level {
            0 => {
                drop(open);
                let (_, rc, full, _) = open_and_load(target, BPF_LOG_LEVEL1)?;
                if rc < 0 {
                    full
                } else {
                    output
                }
            }
            _ => output,
        };
        let log = verifier_log(&output).unwrap_or(&output);
        return Ok(Outcome::Rejected { errno, log: keep_tail(log, MAX_LOG_BYTES) });
    }
    // SAFETY: the object was loaded successfully and is owned by `open` alone.
    let object = unsafe { Object::from_ptr(open.take_ptr()) };
    let fd = object
        .progs()
        .find(|prog| prog.name() == target.program)
        .map(|prog| prog.as_fd().as_raw_fd())
        .ok_or_else(|| anyhow!("program {} missing after loading", target.program))?;
    // A tracing program runs only through its trampoline: the test run calls the hooked function.
    let link = match target.prog_type {
        ProgType::Fentry => Some(
            object
                .progs_mut()
                .find(|prog| prog.name() == target.program)
                .ok_or_else(|| anyhow!("program {} missing after loading", target.program))?
                .attach()
                .with_context(|| format!("attaching {}", target.program))?,
        ),
        ProgType::Tc | ProgType::Syscall | ProgType::Any => None,
    };
    let log = (target.log_level != 0).then(|| verifier_log(&output).map(|log| keep_tail(log, MAX_LOG_BYTES))).flatten();
    let loaded = Loaded { _link: link, _object: object, fd, info: LoadInfo::default(), log };
    let (info, raw) = prog_info_with_tail(loaded.fd())?;
    let mut load_info = LoadInfo {
        verified_insns: info.verified_insns,
        xlated_len: info.xlated_prog_len,
        jited_len: info.jited_prog_len,
        extra: extra_fields(&raw, info_fields),
        ..LoadInfo::default()
    };
    if let Some(log) = verifier_log(&output) {
        parse_stats(log, &mut load_info);
    }
    Ok(Outcome::Accepted(Loaded { info: load_info, ..loaded }))
}

/// `log_level` bits of BPF_PROG_LOAD.
const BPF_LOG_LEVEL1: u32 = 1;
pub(crate) const BPF_LOG_STATS: u32 = 4;

/// Why a failed load of a selftest program says nothing about the verifier: the kernel lacks the
/// program type (libbpf's feature probe), the attach target (a module's function, say), or a
/// kfunc the object calls (libbpf resolves every program's, loaded or not).
fn unloadable_here(prog_type: ProgramType, output: &str) -> Option<String> {
    if let Ok(false) = prog_type.is_supported() {
        return Some(format!("this kernel does not support {prog_type:?} programs (libbpf's feature probe)"));
    }
    if let Some(line) = output.lines().find(|l| l.contains(NO_ATTACH_TARGET)) {
        return Some(format!("attach target not in this kernel's BTF: {}", line.trim()));
    }
    if let Some(line) = output.lines().find(|l| l.contains(NO_MAP)) {
        return Some(format!("a map the object declares cannot be created in this kernel: {}", line.trim()));
    }
    let line = output.lines().find(|l| l.contains(NO_KFUNC))?;
    Some(format!("a kfunc the object uses is not in this kernel (a config option it lacks): {}", line.trim()))
}

/// Opens the object, keeps only `target.program` loadable and loads it with `log_level`.
/// Returns the object (loaded when rc >= 0), libbpf's return code, what libbpf printed and the
/// program's type.
pub(crate) fn open_and_load(target: Target<'_>, log_level: u32) -> Result<(OpenObject, i32, String, ProgramType)> {
    let path = Path::new(BPF_DIR).join(target.object);
    let _ = take_libbpf_output();
    let mut open = ObjectBuilder::default()
        .open_file(&path)
        .with_context(|| format!("opening {}: {}", path.display(), take_libbpf_output().trim()))?;

    let mut names = Vec::new();
    let mut found = None;
    for mut prog in open.progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        let wanted = name == target.program;
        prog.set_autoload(wanted || target.auxiliary.contains(&name));
        if wanted {
            prog.set_log_level(log_level);
            // SAFETY: `prog` is a valid program of the open object.
            let flags = unsafe { libbpf_sys::bpf_program__flags(prog.as_libbpf_object().as_ptr()) };
            prog.set_flags(flags | target.prog_flags);
            found = Some(prog.prog_type());
        }
        names.push(name);
    }
    let Some(prog_type) = found else {
        bail!("no program {:?} in {} (it has: {})", target.program, target.object, names.join(", "));
    };
    let expected = match target.prog_type {
        ProgType::Tc => ProgramType::SchedCls,
        ProgType::Syscall => ProgramType::Syscall,
        ProgType::Fentry => ProgramType::Tracing,
        ProgType::Any => prog_type,
    };
    if prog_type != expected {
        bail!(
            "program {} has type {prog_type:?}, the plan says {} ({expected:?})",
            target.program,
            target.prog_type.as_str()
        );
    }

    // bpf_object__load directly: it returns the kernel's errno, which the verdict needs.
    let dropped = crate::caps::Dropped::drop(target.drop_caps)?;
    // SAFETY: `open` owns a valid, not yet loaded bpf_object.
    let rc = unsafe { libbpf_sys::bpf_object__load(open.as_libbpf_object().as_ptr()) };
    drop(dropped);
    Ok((open, rc, take_libbpf_output(), prog_type))
}

/// Reads the statistics lines `log_level` 4 adds to the verifier log.
fn parse_stats(log: &str, info: &mut LoadInfo) {
    for line in log.lines() {
        if let Some(rest) = line.strip_prefix("verification time ") {
            info.verification_time_us = rest.split_whitespace().next().and_then(|n| n.parse().ok());
        } else if line.starts_with("processed ") {
            let words: Vec<&str> = line.split_whitespace().collect();
            let after = |key: &str| {
                words.iter().position(|w| *w == key).and_then(|i| words.get(i + 1)).and_then(|n| n.parse().ok())
            };
            info.max_states_per_insn = after("max_states_per_insn");
            info.total_states = after("total_states");
            info.peak_states = after("peak_states");
        }
    }
}

/// The variant's `bpf_prog_info` fields, from the raw buffer the kernel filled.
fn extra_fields(raw: &[u8], fields: &[InfoField]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for field in fields {
        let start = field.offset as usize;
        let bytes = raw.get(start..start + field.size as usize);
        let value = match bytes {
            Some(b) if b.len() == 4 => u64::from(u32::from_ne_bytes(b.try_into().unwrap())),
            Some(b) if b.len() == 8 => u64::from_ne_bytes(b.try_into().unwrap()),
            _ => continue, // beyond what this kernel filled, or a size the harness rejects
        };
        out.insert(field.name.clone(), value);
    }
    out
}

/// The map of `object` (the file `name`) whose name ends with `suffix`: libbpf names a global
/// variables map `<object>.bss`.
pub fn map_ending<'o>(object: &'o Object, name: &str, suffix: &str) -> Result<libbpf_rs::Map<'o>> {
    object
        .maps()
        .find(|m| m.name().to_string_lossy().ends_with(suffix))
        .ok_or_else(|| anyhow!("{name} has no map {suffix}"))
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

/// The program's instructions after the verifier's rewrites, each as a little-endian u64.
pub fn xlated_insns(fd: BorrowedFd<'_>) -> Result<Vec<u64>> {
    let len = prog_info(fd)?.xlated_prog_len as usize;
    let mut insns = vec![0u64; len / 8];
    // SAFETY: bpf_prog_info is plain data; the kernel writes at most xlated_prog_len bytes to
    // the buffer, which is that long.
    unsafe {
        let mut info: libbpf_sys::bpf_prog_info = std::mem::zeroed();
        info.xlated_prog_len = (insns.len() * 8) as u32;
        info.xlated_prog_insns = insns.as_mut_ptr() as u64;
        let mut info_len = std::mem::size_of_val(&info) as u32;
        let rc = libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut info_len);
        if rc < 0 {
            return Err(std::io::Error::from_raw_os_error(-rc)).context("bpf_prog_get_info_by_fd (xlated)");
        }
        anyhow::ensure!(info.xlated_prog_insns != 0, "the kernel withheld the xlated instructions");
    }
    Ok(insns.into_iter().map(u64::from_le).collect())
}

/// `BPF_OBJ_GET_INFO_BY_FD` into a buffer longer than this libbpf's `bpf_prog_info`: the parsed
/// struct and the raw bytes the kernel filled (fields a patched kernel appends included).
fn prog_info_with_tail(fd: BorrowedFd<'_>) -> Result<(libbpf_sys::bpf_prog_info, Vec<u8>)> {
    let mut raw = vec![0u8; MAX_PROG_INFO_BYTES as usize];
    let mut len = MAX_PROG_INFO_BYTES;
    // SAFETY: the buffer is `len` bytes long and zeroed, as the kernel requires of a tail it
    // does not know.
    let rc = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), raw.as_mut_ptr().cast(), &mut len) };
    if rc < 0 {
        return Err(std::io::Error::from_raw_os_error(-rc)).context("bpf_prog_get_info_by_fd");
    }
    raw.truncate(len as usize);
    let mut info: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    let n = raw.len().min(std::mem::size_of_val(&info));
    // SAFETY: bpf_prog_info is plain data; at most its size is copied.
    unsafe { std::ptr::copy_nonoverlapping(raw.as_ptr(), (&mut info as *mut libbpf_sys::bpf_prog_info).cast(), n) };
    Ok((info, raw))
}

/// The verifier log inside libbpf's output (the last one, if several were printed).
fn verifier_log(output: &str) -> Option<&str> {
    let start = output.rfind(LOG_BEGIN)? + LOG_BEGIN.len();
    let end = output[start..].find(LOG_END).map_or(output.len(), |i| start + i);
    Some(&output[start..end])
}

/// At most `max` bytes of `text`, from its end, marked when cut.
pub(crate) fn keep_tail(text: &str, max: usize) -> String {
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
    fn verifier_statistics_are_read_from_the_log() {
        let log = "func#0 @0\nverification time 253 usec\nstack depth 8\n\
                   processed 24 insns (limit 1000000) max_states_per_insn 1 total_states 3 peak_states 2 mark_read 1\n";
        let mut info = LoadInfo::default();
        parse_stats(log, &mut info);
        assert_eq!(info.verification_time_us, Some(253));
        assert_eq!((info.max_states_per_insn, info.total_states, info.peak_states), (Some(1), Some(3), Some(2)));
    }

    #[test]
    fn appended_info_fields_are_read_when_the_kernel_filled_them() {
        let mut raw = vec![0u8; 240];
        raw[228..232].copy_from_slice(&7u32.to_ne_bytes());
        raw[232..240].copy_from_slice(&(1u64 << 40).to_ne_bytes());
        let field = |name: &str, offset, size| InfoField { name: name.into(), offset, size };
        let fields = [field("refs", 228, 4), field("cancels", 232, 8), field("beyond", 240, 4)];
        let got = extra_fields(&raw, &fields);
        assert_eq!(got.get("refs"), Some(&7));
        assert_eq!(got.get("cancels"), Some(&(1u64 << 40)));
        assert!(!got.contains_key("beyond"), "a field past what the kernel filled is not reported");
    }

    #[test]
    fn long_logs_keep_their_tail_on_a_char_boundary() {
        assert_eq!(keep_tail("short", 10), "short");
        let cut = keep_tail("aaaaéz", 3);
        assert!(cut.ends_with("éz"), "{cut}");
        assert!(cut.starts_with("[... 4 bytes cut ...]\n"), "{cut}");
    }
}
