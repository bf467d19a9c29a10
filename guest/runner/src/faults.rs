//! Kernel faults on purpose, and the leak scan: what lets the host prove that it catches kernel
//! warnings, and what makes kmemleak report before the guest ends.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use bpfh_protocol::{KMEMLEAK_PATH, PROVOKE_PATH};

use crate::io::{self, say};

const DEBUGFS: &str = "/sys/kernel/debug";

/// What provoking a crash type takes besides writing its name: the detector that must report
/// it made quick, the write made from a thread of its own when it never returns, and a wait
/// for the detector afterwards. Settings are kept for the rest of the boot, which ends soon.
struct Provocation {
    /// Files under /proc/sys or /sys/module and the values written to them first.
    settings: &'static [(&'static str, &'static str)],
    /// The write never returns: made from a thread, so that the runner goes on.
    from_thread: bool,
    /// How long to wait afterwards for the detector (guest time: free under icount, where
    /// the idle guest's clock jumps to its next timer).
    settle: Duration,
}

fn provocation(crash_type: &str) -> Provocation {
    let plain = Provocation { settings: &[], from_thread: false, settle: Duration::ZERO };
    match crash_type {
        // The writer blocks for good (D state). khungtaskd checks every timeout and reports a
        // task that did not run between two checks: within two timeouts. Once, not every second.
        "HUNG_TASK" => Provocation {
            settings: &[("/proc/sys/kernel/hung_task_timeout_secs", "1"), ("/proc/sys/kernel/hung_task_warnings", "1")],
            from_thread: true,
            settle: Duration::from_secs(5),
        },
        // Spins for good with preemption off on the guest's only CPU: nothing else runs again,
        // so the report (after 2 x watchdog_thresh seconds) ends the guest with a panic instead
        // of leaving it to the run timeout.
        "SOFTLOCKUP" => Provocation {
            settings: &[("/proc/sys/kernel/watchdog_thresh", "1"), ("/proc/sys/kernel/softlockup_panic", "1")],
            ..plain
        },
        // The debug kernel's own trigger (kernel-config/debug-patches/) holds up a grace period
        // for 10 s; the shortest stall timeout is 3 s (plus 5 s under PROVE_RCU).
        "RCU_STALL" => {
            Provocation { settings: &[("/sys/module/rcupdate/parameters/rcu_cpu_stall_timeout", "3")], ..plain }
        }
        // KMEMLEAK (the debug kernel's own trigger) needs nothing: the scans after the
        // provocations are far enough apart for kmemleak to report its object.
        _ => plain,
    }
}

/// Triggers each LKDTM crash type in turn. A WARN or a KASAN report returns here; a panic does
/// not, nor does a soft lockup, which is the point of provoking one. A hung task blocks a
/// thread of its own.
pub fn provoke(crash_types: &[String]) -> Result<()> {
    io::mount("debugfs", DEBUGFS)?;
    anyhow::ensure!(
        Path::new(PROVOKE_PATH).exists(),
        "cannot provoke {crash_types:?}: {PROVOKE_PATH} is missing (CONFIG_LKDTM: use --debug-kernel)"
    );
    for crash_type in crash_types {
        let how = provocation(crash_type);
        for (path, value) in how.settings {
            std::fs::write(path, value)
                .with_context(|| format!("provoking {crash_type}: writing {value} to {path}"))?;
        }
        say(&format!("provoking {crash_type} through LKDTM"));
        if how.from_thread {
            // Named, so that the report names it: "INFO: task provoke:31 blocked ...".
            let crash_type = crash_type.clone();
            std::thread::Builder::new()
                .name("provoke".into())
                .spawn(move || std::fs::write(PROVOKE_PATH, crash_type))
                .context("starting a thread to provoke from")?;
        } else {
            std::fs::write(PROVOKE_PATH, crash_type)
                .with_context(|| format!("writing {crash_type} to {PROVOKE_PATH}"))?;
        }
        if !how.settle.is_zero() {
            say(&format!("waiting {} s for the kernel to report {crash_type}", how.settle.as_secs()));
            std::thread::sleep(how.settle);
        }
    }
    Ok(())
}

/// kmemleak reports an object only once it is this old (MSECS_MIN_AGE), and only if its
/// contents did not change since the previous scan: a second scan this long after the first
/// reports every leak made before the first.
const KMEMLEAK_MIN_AGE: Duration = Duration::from_secs(5);

/// Asks kmemleak to scan, when the kernel has it (the debug kernel has no auto-scan), twice,
/// [`KMEMLEAK_MIN_AGE`] apart: the first scan to see a new object only takes note of its
/// contents, so a single one misses nearly every leak. The wait is idle time, which icount
/// skips. The kernel prints only "kmemleak: N new suspected memory
/// leaks"; the suspects themselves ("unreferenced object ..." with their allocation backtraces)
/// are copied to the console too, where the host finds them and quotes them.
pub fn kmemleak_scan() -> Result<()> {
    io::mount("debugfs", DEBUGFS)?;
    if !Path::new(KMEMLEAK_PATH).exists() {
        return Ok(());
    }
    say("scanning for memory leaks (kmemleak), twice");
    for pass in 0..2 {
        if pass > 0 {
            std::thread::sleep(KMEMLEAK_MIN_AGE + Duration::from_secs(1));
        }
        // The write returns when the scan is done.
        std::fs::write(KMEMLEAK_PATH, "scan").with_context(|| format!("writing scan to {KMEMLEAK_PATH}"))?;
    }
    let suspects = std::fs::read_to_string(KMEMLEAK_PATH).with_context(|| format!("reading {KMEMLEAK_PATH}"))?;
    for line in suspects.lines() {
        say(&format!("kmemleak report: {line}"));
    }
    Ok(())
}
