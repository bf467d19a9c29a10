//! Kernel settings a scenario asks for around a program's runs: sysctls, and tracefs events
//! recorded during one run.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{ensure, Context, Result};
use bpfh_protocol::WATCHDOG_SYSCTL;

const TRACEFS: &str = "/sys/kernel/tracing";

/// sysctls set for as long as the guard lives; dropping it restores the old values.
pub struct Sysctls {
    old: Vec<(PathBuf, String)>,
}

fn sysctl_path(name: &str) -> Result<PathBuf> {
    // The harness validates names too; this keeps the guest from writing outside /proc/sys.
    ensure!(
        !name.is_empty() && name.split('.').all(|p| !p.is_empty() && p != ".." && !p.contains('/')),
        "not a sysctl name: {name:?}"
    );
    Ok(PathBuf::from("/proc/sys").join(name.replace('.', "/")))
}

impl Sysctls {
    pub fn apply(settings: &BTreeMap<String, String>) -> Result<Sysctls> {
        let mut guard = Sysctls { old: Vec::new() };
        for (name, value) in settings {
            let path = sysctl_path(name)?;
            let old = std::fs::read_to_string(&path).with_context(|| format!("reading sysctl {name}"))?;
            std::fs::write(&path, value).with_context(|| format!("setting sysctl {name}={value}"))?;
            guard.old.push((path, old.trim_end().to_string()));
        }
        Ok(guard)
    }
}

impl Drop for Sysctls {
    fn drop(&mut self) {
        for (path, old) in self.old.drain(..).rev() {
            if let Err(err) = std::fs::write(&path, &old) {
                crate::io::say(&format!("restoring {} to {old:?} failed: {err}", path.display()));
            }
        }
    }
}

/// The stop contract's budget, set for as long as the guard lives on a kernel that has the
/// watchdog sysctl; a kernel without it has no watchdog and runs programs to their end.
pub struct Watchdog {
    budget: Option<Sysctls>,
}

impl Watchdog {
    pub fn arm(budget_ns: u64) -> Result<Watchdog> {
        if !sysctl_path(WATCHDOG_SYSCTL)?.exists() {
            return Ok(Watchdog { budget: None });
        }
        let setting = BTreeMap::from([(WATCHDOG_SYSCTL.to_string(), budget_ns.to_string())]);
        Ok(Watchdog { budget: Some(Sysctls::apply(&setting)?) })
    }

    /// Whether the kernel has the watchdog, so that the budget is set.
    pub fn present(&self) -> bool {
        self.budget.is_some()
    }
}

fn event_enable_path(event: &str) -> Result<PathBuf> {
    ensure!(
        !event.is_empty() && event.split('/').count() <= 2 && event.split('/').all(|p| !p.is_empty() && p != ".."),
        "not a tracefs event or group: {event:?}"
    );
    Ok(PathBuf::from(TRACEFS).join("events").join(event).join("enable"))
}

/// Runs `f` with `events` enabled and returns the trace it produced: one line per event, from the
/// event name on (the task, CPU, flags and timestamp columns are dropped).
pub fn traced<T>(events: &[String], f: impl FnOnce() -> Result<T>) -> Result<(T, Vec<String>)> {
    mount_tracefs()?;
    std::fs::write(format!("{TRACEFS}/trace"), "").context("clearing the trace buffer")?;
    let paths = events.iter().map(|e| event_enable_path(e)).collect::<Result<Vec<_>>>()?;
    for (event, path) in events.iter().zip(&paths) {
        std::fs::write(path, "1").with_context(|| format!("enabling trace event {event} ({})", path.display()))?;
    }
    let result = f();
    for path in &paths {
        let _ = std::fs::write(path, "0");
    }
    let value = result?;
    let text = std::fs::read_to_string(format!("{TRACEFS}/trace")).context("reading the trace buffer")?;
    Ok((value, event_lines(&text)))
}

fn mount_tracefs() -> Result<()> {
    if std::path::Path::new(TRACEFS).join("trace").exists() {
        return Ok(());
    }
    crate::io::mount("tracefs", TRACEFS)
}

/// `init-1 [000] ...1. 12.345678: bpf_ref_acquire: prog_id=5 ...` -> `bpf_ref_acquire: prog_id=5 ...`.
fn event_lines(trace: &str) -> Vec<String> {
    trace
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            // The timestamp column is the first "<digits>.<digits>: ".
            let start = l
                .match_indices(": ")
                .find(|(i, _)| {
                    l[..*i]
                        .rsplit(' ')
                        .next()
                        .is_some_and(|t| t.contains('.') && t.chars().all(|c| c.is_ascii_digit() || c == '.'))
                })
                .map_or(0, |(i, _)| i + 2);
            l[start..].to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_names_map_into_proc_sys_only() {
        assert_eq!(
            sysctl_path("kernel.bpf_watchdog_budget_ns").unwrap(),
            PathBuf::from("/proc/sys/kernel/bpf_watchdog_budget_ns")
        );
        assert!(sysctl_path("kernel/../../etc").is_err());
        assert!(sysctl_path("kernel..x").is_err());
        assert!(sysctl_path("").is_err());
    }

    #[test]
    fn event_paths_stay_under_events() {
        assert_eq!(event_enable_path("bpf_ref").unwrap(), PathBuf::from("/sys/kernel/tracing/events/bpf_ref/enable"));
        assert!(event_enable_path("bpf_ref/bpf_ref_acquire").is_ok());
        assert!(event_enable_path("../x").is_err());
        assert!(event_enable_path("a/b/c").is_err());
    }

    #[test]
    fn trace_lines_keep_the_event_and_its_fields() {
        let trace = "# tracer: nop\n#\n           init-1       [000] ...1.    12.345678: bpf_ref_acquire: prog_id=5 kfunc=bpf_task_from_pid obj=0xffff held=1 tracked\n\
                     \n          <idle>-0 [001] d.h2. 3.000001: bpf_ref_table: prog_id=5 entries=0\n";
        assert_eq!(
            event_lines(trace),
            [
                "bpf_ref_acquire: prog_id=5 kfunc=bpf_task_from_pid obj=0xffff held=1 tracked",
                "bpf_ref_table: prog_id=5 entries=0"
            ]
        );
    }
}
