//! Kernel faults on purpose, and the leak scan: what lets the host prove that it catches kernel
//! warnings, and what makes kmemleak report before the guest ends.

use std::path::Path;

use anyhow::{Context, Result};
use bpfh_protocol::{KMEMLEAK_PATH, PROVOKE_PATH};

use crate::io::{self, say};

const DEBUGFS: &str = "/sys/kernel/debug";

/// Triggers each LKDTM crash type in turn. A WARN or a KASAN report returns here; a panic or a
/// hang does not, which is the point of provoking one.
pub fn provoke(crash_types: &[String]) -> Result<()> {
    io::mount("debugfs", DEBUGFS)?;
    anyhow::ensure!(
        Path::new(PROVOKE_PATH).exists(),
        "cannot provoke {crash_types:?}: {PROVOKE_PATH} is missing (CONFIG_LKDTM: use --debug-kernel)"
    );
    for crash_type in crash_types {
        say(&format!("provoking {crash_type} through LKDTM"));
        std::fs::write(PROVOKE_PATH, crash_type).with_context(|| format!("writing {crash_type} to {PROVOKE_PATH}"))?;
    }
    Ok(())
}

/// Asks kmemleak to scan now, when the kernel has it (the debug kernel has no auto-scan). The
/// kernel prints only "kmemleak: N new suspected memory leaks"; the suspects themselves
/// ("unreferenced object ..." with their allocation backtraces) are copied to the console too,
/// where the host finds them and quotes them.
pub fn kmemleak_scan() -> Result<()> {
    io::mount("debugfs", DEBUGFS)?;
    if !Path::new(KMEMLEAK_PATH).exists() {
        return Ok(());
    }
    say("scanning for memory leaks (kmemleak)");
    // The write returns when the scan is done.
    std::fs::write(KMEMLEAK_PATH, "scan").with_context(|| format!("writing scan to {KMEMLEAK_PATH}"))?;
    let suspects = std::fs::read_to_string(KMEMLEAK_PATH).with_context(|| format!("reading {KMEMLEAK_PATH}"))?;
    for line in suspects.lines() {
        say(&format!("kmemleak report: {line}"));
    }
    Ok(())
}
