//! The accelerator and the measurement mode: KVM only once a guest has proved it runs under it,
//! icount under TCG, and how many boots each variant gets.

use crate::events::Sink;
use crate::vm::qemu::{Accel, BootOutcome, Mode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccelChoice {
    /// KVM if a guest really runs under it, otherwise TCG (with a warning).
    Auto,
    Kvm,
    Tcg,
}

/// Decides the accelerator. `auto` uses KVM only when `/dev/kvm` is usable and a guest booted by
/// `probe` under it reaches the runner (on hosts with broken nested virtualisation it exists
/// but guests die); otherwise TCG, with a warning.
/// `remembered`: the verdict proved by an earlier run on this host, used instead of a probe.
pub fn choose(
    sink: &dyn Sink,
    choice: AccelChoice,
    kvm_device_usable: bool,
    remembered: Option<bool>,
    probe: impl FnOnce() -> anyhow::Result<BootOutcome>,
) -> anyhow::Result<Accel> {
    match choice {
        AccelChoice::Tcg => Ok(Accel::Tcg),
        AccelChoice::Kvm => {
            anyhow::ensure!(kvm_device_usable, "--accel kvm: /dev/kvm cannot be opened read-write");
            Ok(Accel::Kvm)
        }
        AccelChoice::Auto if !kvm_device_usable => {
            sink.warning("no usable /dev/kvm; using TCG (emulation)".into());
            Ok(Accel::Tcg)
        }
        AccelChoice::Auto if remembered == Some(true) => Ok(Accel::Kvm),
        AccelChoice::Auto if remembered == Some(false) => {
            sink.warning("a guest does not run under /dev/kvm here (proved earlier); using TCG (emulation)".into());
            Ok(Accel::Tcg)
        }
        AccelChoice::Auto => {
            let outcome = probe()?;
            match outcome.failure {
                None => Ok(Accel::Kvm),
                Some(failure) => {
                    let why = failure.to_string();
                    let first = why.lines().next().unwrap_or_default().trim_end_matches([';', ':']);
                    sink.warning(format!(
                        "/dev/kvm exists but a guest does not run under it ({first}); falling back to TCG (emulation). Probe console: {}",
                        outcome.console_log.display()
                    ));
                    Ok(Accel::Tcg)
                }
            }
        }
    }
}

/// What decides whether KVM runs a guest here: QEMU's version, the host kernel and the CPU. A
/// verdict proved under one key holds until one of them changes.
pub fn host_key() -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{} | {} | {}", crate::vm::qemu::qemu_version(), kernel.trim(), crate::host::repo::host_cpu())
}

/// The KVM verdict proved on this host, remembered in the cache so that a run does not prove it
/// again (a probe costs up to its timeout where KVM hangs).
pub struct KvmMemory {
    path: std::path::PathBuf,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Remembered {
    key: String,
    runs_guests: bool,
    proved: String,
}

impl KvmMemory {
    pub fn in_dir(dir: &std::path::Path) -> KvmMemory {
        KvmMemory { path: dir.join("kvm-verdict.json") }
    }

    /// The verdict proved under `key`, if any.
    pub fn get(&self, key: &str) -> Option<bool> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        let remembered: Remembered = serde_json::from_str(&text).ok()?;
        (remembered.key == key).then_some(remembered.runs_guests)
    }

    /// Forgets the verdict, so that the next `auto` run proves it again.
    pub fn forget(&self) -> std::io::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }

    pub fn put(&self, key: &str, runs_guests: bool) -> anyhow::Result<()> {
        let proved = chrono::Utc::now().to_rfc3339();
        let text = serde_json::to_string_pretty(&Remembered { key: key.into(), runs_guests, proved })?;
        Ok(crate::host::fsutil::write_atomic(&self.path, text.as_bytes())?)
    }
}

/// Whether /dev/kvm can be opened for use; a guest must still prove that KVM really runs it.
pub fn kvm_device_usable() -> bool {
    std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok()
}

pub fn choose_mode(accel: Accel, requested: Option<Mode>, allow_emulated_wallclock: bool) -> anyhow::Result<Mode> {
    match (accel, requested) {
        (Accel::Tcg, None | Some(Mode::Icount)) => Ok(Mode::Icount),
        (Accel::Kvm, None | Some(Mode::Wallclock)) => Ok(Mode::Wallclock),
        (Accel::Kvm, Some(Mode::Icount)) => {
            anyhow::bail!("--mode icount needs TCG (instruction counting is a TCG feature): add --accel tcg")
        }
        (Accel::Tcg, Some(Mode::Wallclock)) if allow_emulated_wallclock => Ok(Mode::Wallclock),
        (Accel::Tcg, Some(Mode::Wallclock)) => anyhow::bail!(
            "--mode wallclock under TCG would report emulation artefacts as timings; use icount, or pass --allow-emulated-wallclock to get them labelled as emulation timing"
        ),
    }
}

pub fn measurement(accel: Accel, mode: Mode) -> String {
    match (accel, mode) {
        (_, Mode::Icount) => "icount: TCG with -icount shift=0,sleep=off; each duration is a deterministic count of guest instructions per run (the guest clock advances 1 ns per instruction), not time".into(),
        (Accel::Kvm, Mode::Wallclock) => "wallclock: KVM; guest nanoseconds per run as the guest kernel measured them".into(),
        (Accel::Tcg, Mode::Wallclock) => "EMULATION TIMING: wall-clock nanoseconds under TCG; emulation artefacts, not real costs".into(),
    }
}

/// Wallclock samples from one boot share that boot's cache and frequency state; pooling a few
/// boots puts boot-to-boot variation into the interval.
pub const DEFAULT_WALLCLOCK_BOOTS: u32 = 3;

/// Icount counts are deterministic, so a second boot would only repeat them.
pub fn boots_per_variant(mode: Mode, requested: Option<u32>) -> anyhow::Result<u32> {
    match (mode, requested) {
        (_, Some(0)) => anyhow::bail!("--boots 0: at least one boot per variant is needed"),
        (Mode::Icount, Some(n)) if n > 1 => {
            anyhow::bail!("--boots {n}: icount counts are deterministic, so icount boots each variant once")
        }
        (Mode::Icount, _) => Ok(1),
        (Mode::Wallclock, n) => Ok(n.unwrap_or(DEFAULT_WALLCLOCK_BOOTS)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Collect, Event};
    use crate::vm::qemu::GuestFailure;

    fn outcome(failure: Option<GuestFailure>) -> anyhow::Result<BootOutcome> {
        Ok(BootOutcome {
            console_log: "kvm-probe/console.log".into(),
            records: Vec::new(),
            kernel_warnings: Vec::new(),
            failure,
            boot_seconds: None,
            restored: false,
            total_seconds: 1.0,
        })
    }

    /// KVM that exists but cannot run this guest must mean TCG, with a warning, not an error; a
    /// probe that reaches the runner means KVM; without a usable /dev/kvm nothing is probed.
    #[test]
    fn a_failing_kvm_probe_falls_back_to_tcg() {
        let sink = Collect::default();
        let hang = GuestFailure::BootTimeout { seconds: 15, console_tail: String::new() };
        assert_eq!(choose(&sink, AccelChoice::Auto, true, None, || outcome(Some(hang))).unwrap(), Accel::Tcg);
        assert!(matches!(&sink.events()[0], Event::Warning { message } if message.contains("falling back to TCG")));
        assert_eq!(choose(&sink, AccelChoice::Auto, true, None, || outcome(None)).unwrap(), Accel::Kvm);
        let never = || -> anyhow::Result<BootOutcome> { panic!("no probe without /dev/kvm") };
        assert_eq!(choose(&sink, AccelChoice::Auto, false, None, never).unwrap(), Accel::Tcg);
        assert!(choose(&sink, AccelChoice::Kvm, false, None, never).is_err());
        assert_eq!(choose(&sink, AccelChoice::Tcg, true, None, never).unwrap(), Accel::Tcg);
        // A verdict proved before is used, not proved again.
        assert_eq!(choose(&sink, AccelChoice::Auto, true, Some(false), never).unwrap(), Accel::Tcg);
        assert_eq!(choose(&sink, AccelChoice::Auto, true, Some(true), never).unwrap(), Accel::Kvm);
    }

    #[test]
    fn a_verdict_is_remembered_under_its_host_key() {
        let dir = tempfile::tempdir().unwrap();
        let memory = KvmMemory::in_dir(dir.path());
        assert_eq!(memory.get("qemu 7.2 | 6.1.0 | cpu"), None);
        memory.put("qemu 7.2 | 6.1.0 | cpu", false).unwrap();
        assert_eq!(memory.get("qemu 7.2 | 6.1.0 | cpu"), Some(false));
        assert_eq!(memory.get("qemu 8.0 | 6.1.0 | cpu"), None, "another QEMU proves it again");
        assert!(host_key().contains(" | "));
        memory.forget().unwrap();
        assert_eq!(memory.get("qemu 7.2 | 6.1.0 | cpu"), None);
        memory.forget().expect("forgetting nothing is no error");
    }

    #[test]
    fn icount_boots_once_and_wallclock_several_times() {
        assert_eq!(boots_per_variant(Mode::Icount, None).unwrap(), 1);
        assert!(boots_per_variant(Mode::Icount, Some(3)).is_err());
        assert_eq!(boots_per_variant(Mode::Wallclock, None).unwrap(), DEFAULT_WALLCLOCK_BOOTS);
        assert_eq!(boots_per_variant(Mode::Wallclock, Some(5)).unwrap(), 5);
        assert!(boots_per_variant(Mode::Wallclock, Some(0)).is_err());
    }

    #[test]
    fn icount_is_refused_under_kvm_and_emulated_wallclock_needs_consent() {
        assert_eq!(choose_mode(Accel::Tcg, None, false).unwrap(), Mode::Icount);
        assert_eq!(choose_mode(Accel::Kvm, None, false).unwrap(), Mode::Wallclock);
        assert!(choose_mode(Accel::Kvm, Some(Mode::Icount), false).is_err());
        assert!(choose_mode(Accel::Tcg, Some(Mode::Wallclock), false).is_err());
        assert_eq!(choose_mode(Accel::Tcg, Some(Mode::Wallclock), true).unwrap(), Mode::Wallclock);
        assert!(measurement(Accel::Tcg, Mode::Wallclock).starts_with("EMULATION"));
    }
}
