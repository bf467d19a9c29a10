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
    "kmemleak:",
    "unreferenced object",
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

    #[test]
    fn a_clean_boot_has_none() {
        let console = "[    0.1] BPF: 'struct module' btf id not found. Is CONFIG_MODULES enabled?\n\
                       [    0.5] Run /init as init process\nplan simple/baseline: 4 programs\n";
        assert!(kernel_warnings(console).is_empty());
    }
}
