//! What the guest kernel said that a run must not pass over: warnings, bugs, oopses, refcount
//! complaints, RCU stalls, lockdep and KASAN reports, hung tasks and memory leaks.

/// Console markers of a kernel problem (as printed by WARN(), BUG(), refcount_t, RCU, lockdep,
/// KASAN, the hung-task detector and kmemleak).
const MARKERS: &[&str] = &[
    "WARNING:",
    "BUG:",
    "Oops:",
    "general protection fault",
    "Kernel panic",
    "refcount_t:",
    "rcu: INFO:",
    "rcu_sched detected stall",
    "rcu_preempt detected stall",
    "INFO: task ",
    "possible circular locking dependency",
    "possible recursive locking",
    "inconsistent lock state",
    "KASAN:",
    "UBSAN:",
    // kmemleak's scan result ("kmemleak: 2 new suspected memory leaks (see ...)"); its other
    // lines ("kmemleak: Kernel memory leak detector initialized") are not problems.
    "new suspected memory leaks",
    "unreferenced object",
    "watchdog: BUG: soft lockup",
];

/// Lines of context kept after a marker: enough for the report's first frames.
const EXCERPT_LINES: usize = 12;

/// Each problem the console shows, as an excerpt starting at its marker line.
pub fn kernel_warnings(console: &str) -> Vec<String> {
    let lines: Vec<&str> = console.lines().collect();
    let mut found = Vec::new();
    let mut skip_until = 0;
    for (i, line) in lines.iter().enumerate() {
        if i < skip_until || !MARKERS.iter().any(|m| line.contains(m)) {
            continue;
        }
        let end = (i + EXCERPT_LINES).min(lines.len());
        found.push(lines[i..end].join("\n"));
        skip_until = end;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_found_with_their_context() {
        let console = "[    0.5] Run /init as init process\n\
                       [    1.0] ------------[ cut here ]------------\n\
                       [    1.0] refcount_t: underflow; use-after-free.\n\
                       [    1.0] WARNING: CPU: 0 PID: 1 at lib/refcount.c:28\n\
                       [    1.1] Call Trace:\n";
        let found = kernel_warnings(console);
        assert_eq!(found.len(), 1, "one report, not one per line: {found:?}");
        assert!(found[0].starts_with("[    1.0] refcount_t: underflow"));
        assert!(found[0].contains("Call Trace"));
    }

    /// The first line of each kind of report, as 6.12 prints it (lockdep, KASAN, RCU, hung task,
    /// kmemleak, soft lockup), each followed by unrelated lines beyond the excerpt.
    #[test]
    fn every_kind_of_report_is_found() {
        let reports = [
            "WARNING: possible circular locking dependency detected",
            "BUG: KASAN: slab-use-after-free in lkdtm_READ_AFTER_FREE+0x1a/0x90",
            "rcu: INFO: rcu_sched self-detected stall on CPU",
            "INFO: task bpfh:1 blocked for more than 30 seconds.",
            "kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)",
            "watchdog: BUG: soft lockup - CPU#0 stuck for 26s! [init:1]",
            "BUG: sleeping function called from invalid context at kernel/locking/mutex.c:283",
        ];
        let filler = "[    2.0] ordinary line\n".repeat(EXCERPT_LINES);
        let console: String = reports.iter().map(|r| format!("[    1.0] {r}\n{filler}")).collect();
        let found = kernel_warnings(&console);
        assert_eq!(found.len(), reports.len(), "{found:#?}");
        for (excerpt, report) in found.iter().zip(reports) {
            assert!(excerpt.lines().next().unwrap().ends_with(report), "{excerpt}");
        }
    }

    #[test]
    fn a_clean_boot_has_none() {
        let console = "[    0.1] BPF: 'struct module' btf id not found. Is CONFIG_MODULES enabled?\n\
                       [    0.2] kmemleak: Kernel memory leak detector initialized (mem pool available: 15000)\n\
                       [    0.5] Run /init as init process\nplan simple/baseline: 4 programs\n";
        assert!(kernel_warnings(console).is_empty());
    }
}
