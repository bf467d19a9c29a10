//! What the guest kernel said that a run must not pass over: warnings, bugs, oopses, refcount
//! complaints, RCU stalls, lockdep and KASAN reports, hung tasks, soft lockups and memory leaks,
//! and which detector each one comes from.

/// Console markers of a kernel problem, each with the detector or kind of report it names, as
/// 6.12 prints them: WARN(), BUG(), refcount_t, RCU's stall detector ("rcu: INFO: rcu_sched
/// self-detected stall on CPU", "... detected stalls on CPUs/tasks:"), lockdep (its report
/// titles), KASAN, UBSAN, the hung-task detector ("INFO: task init:1 blocked for more than 1
/// seconds."), the soft-lockup detector ("watchdog: BUG: soft lockup - CPU#0 stuck for 2s!")
/// and kmemleak. A report is named by the first marker its line holds, so the specific ones come
/// before `WARNING:` and `BUG:`, which lockdep's and others' reports begin with.
const MARKERS: &[(&str, &str)] = &[
    ("watchdog: BUG: soft lockup", "soft lockup"),
    ("KASAN:", "KASAN"),
    ("UBSAN:", "UBSAN"),
    ("refcount_t:", "refcount_t"),
    ("rcu: INFO:", "RCU stall"),
    ("detected stall", "RCU stall"),
    ("INFO: task ", "hung task"),
    ("possible circular locking dependency", "lockdep"),
    ("possible recursive locking", "lockdep"),
    ("inconsistent lock state", "lockdep"),
    ("possible irq lock inversion", "lockdep"),
    ("-unsafe lock order detected", "lockdep"),
    ("bad unlock balance", "lockdep"),
    ("held lock freed", "lockdep"),
    ("lock held when returning to user space", "lockdep"),
    ("suspicious RCU usage", "lockdep"),
    // kmemleak's scan result ("kmemleak: 2 new suspected memory leaks (see ...)") and the
    // suspects the runner copies from its file; its other lines ("kmemleak: Kernel memory leak
    // detector initialized") are not problems.
    ("new suspected memory leaks", "kmemleak"),
    ("unreferenced object", "kmemleak"),
    ("Kernel panic", "panic"),
    ("general protection fault", "oops"),
    ("Oops:", "oops"),
    ("WARNING:", "WARN"),
    ("BUG:", "BUG"),
];

/// What a report is, by the first marker its first line holds (`lockdep`, `RCU stall`, `hung
/// task`, `soft lockup`, `kmemleak`, `KASAN`, `WARN`...): how the verdict names it.
pub fn kind(excerpt: &str) -> &'static str {
    let first = excerpt.lines().next().unwrap_or_default();
    MARKERS.iter().find(|(m, _)| first.contains(m)).map_or("kernel report", |(_, kind)| kind)
}

/// The kinds of `reports` ([`kind`]), each once, in order of first appearance.
pub fn kinds<'a>(reports: impl IntoIterator<Item = &'a String>) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    for report in reports {
        let k = kind(report);
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    kinds
}

/// Lines of context kept after a marker: enough for the report's first frames.
const EXCERPT_LINES: usize = 12;

/// Each problem the console shows, as an excerpt starting at its marker line.
pub fn kernel_warnings(console: &str) -> Vec<String> {
    let lines: Vec<&str> = console.lines().collect();
    let mut found = Vec::new();
    let mut skip_until = 0;
    for (i, line) in lines.iter().enumerate() {
        if i < skip_until || !MARKERS.iter().any(|(m, _)| line.contains(m)) {
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

    /// The first line of each kind of report, as 6.12 prints it, each followed by unrelated lines
    /// beyond the excerpt: every one is found, and named by its detector.
    #[test]
    fn every_kind_of_report_is_found_and_named() {
        let reports = [
            ("WARNING: possible circular locking dependency detected", "lockdep"),
            ("WARNING: lock held when returning to user space!", "lockdep"),
            ("BUG: KASAN: slab-use-after-free in lkdtm_READ_AFTER_FREE+0x1a/0x90", "KASAN"),
            ("rcu: INFO: rcu_sched self-detected stall on CPU", "RCU stall"),
            ("rcu: INFO: rcu_sched detected stalls on CPUs/tasks:", "RCU stall"),
            ("INFO: task init:1 blocked for more than 1 seconds.", "hung task"),
            ("kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)", "kmemleak"),
            ("bpfh: kmemleak report: unreferenced object 0xffff888005a1c000 (size 64):", "kmemleak"),
            ("watchdog: BUG: soft lockup - CPU#0 stuck for 26s! [init:1]", "soft lockup"),
            ("BUG: sleeping function called from invalid context at kernel/locking/mutex.c:283", "BUG"),
            ("refcount_t: underflow; use-after-free.", "refcount_t"),
            ("WARNING: CPU: 0 PID: 1 at kernel/bpf/core.c:100 f+0x1/0x2", "WARN"),
        ];
        let filler = "[    2.0] ordinary line\n".repeat(EXCERPT_LINES);
        let console: String = reports.iter().map(|(r, _)| format!("[    1.0] {r}\n{filler}")).collect();
        let found = kernel_warnings(&console);
        assert_eq!(found.len(), reports.len(), "{found:#?}");
        for (excerpt, (report, named)) in found.iter().zip(reports) {
            assert!(excerpt.lines().next().unwrap().ends_with(report), "{excerpt}");
            assert_eq!(kind(excerpt), named, "{excerpt}");
        }
        assert_eq!(kinds(&found[..3]), ["lockdep", "KASAN"]);
    }

    #[test]
    fn a_clean_boot_has_none() {
        let console = "[    0.1] BPF: 'struct module' btf id not found. Is CONFIG_MODULES enabled?\n\
                       [    0.2] kmemleak: Kernel memory leak detector initialized (mem pool available: 15000)\n\
                       [    0.5] Run /init as init process\nplan simple/baseline: 4 programs\n";
        assert!(kernel_warnings(console).is_empty());
    }
}
