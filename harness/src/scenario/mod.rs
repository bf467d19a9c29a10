//! The scenario file: which BPF programs to load and run, on which variants, and what the verifier
//! and the runs are expected to do. Every mistake in a file is reported as `file:line:column`.

pub mod metric;
mod parse;

use bpfh_protocol::ProgType;
use serde::Deserialize;
use serde_saphyr::{Location, MessageFormatter, Spanned, UserMessageFormatter};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

const DEFAULT_BOOT_TIMEOUT_S: u64 = 120;
const DEFAULT_RUN_TIMEOUT_S: u64 = 600;
const DEFAULT_REPEAT: u32 = 1000;
const DEFAULT_SAMPLES: u32 = 5;

/// A validated scenario: defaults applied, every program's BPF source known to exist.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub path: PathBuf,
    pub name: String,
    pub description: String,
    /// The variants to run; `None` means every defined variant.
    pub variants: Option<Vec<String>>,
    pub boot_timeout: Duration,
    pub run_timeout: Duration,
    pub programs: Vec<ProgramSpec>,
    /// Upstream selftest program files (`tools/testing/selftests/bpf/progs/<file>` in each
    /// variant's tree), whose annotated programs are checked as upstream's test loader does.
    pub upstream: Vec<String>,
    /// How far each metric may rise before `harness compare` fails, by metric key.
    pub thresholds: BTreeMap<String, Threshold>,
    /// Kernel warnings the scenario expects: a console excerpt containing one of these texts is
    /// recorded but does not fail the run.
    pub allowed_kernel_messages: Vec<String>,
    /// LKDTM crash types (`WARNING`, `REFCOUNT_DEC_ZERO`, `READ_AFTER_FREE`, `PANIC`...) the
    /// runner triggers after the programs, to prove that the harness catches kernel faults
    /// (needs CONFIG_LKDTM: `--debug-kernel`).
    pub provoke: Vec<String>,
}

impl Scenario {
    /// Whether a kernel warning excerpt is one the scenario expects.
    pub fn allows_kernel_message(&self, excerpt: &str) -> bool {
        self.allowed_kernel_messages.iter().any(|m| excerpt.contains(m.as_str()))
    }
}

/// How much a metric may rise between two runs before it is a regression: the increase must
/// exceed every bound given (so `{ relative: 0.02, absolute: 5 }` tolerates 5 units on small
/// values and 2% on large ones). Decreases never fail; they are reported as improvements.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// Fraction of the old value (0.02: 2%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative: Option<f64>,
    /// In the metric's unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absolute: Option<f64>,
}

impl Threshold {
    /// The largest increase from `old` that is not a regression.
    pub fn allowed(&self, old: f64) -> f64 {
        let relative = self.relative.map_or(0.0, |r| r * old.abs());
        relative.max(self.absolute.unwrap_or(0.0))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramSpec {
    /// Unique in the scenario; labels the program in plans, records and results.
    pub id: String,
    /// Stem of the BPF source `<bpf_source_dir>/<object>.bpf.c`.
    pub object: String,
    /// Function (program) name inside the object.
    pub program: String,
    pub prog_type: ProgType,
    /// Test runs per sample; always 1 for syscall programs.
    pub repeat: u32,
    /// Length of the tc test packet (default: a 64-byte IPv4/UDP frame).
    pub packet_bytes: Option<u32>,
    pub samples: u32,
    /// Read pid 1's task reference count around the runs (`checks: [task_refs]`).
    pub count_task_refs: bool,
    /// Count cpumask references during the warm-up run (`checks: [cpumasks]`).
    pub count_cpumasks: bool,
    pub expect: Expectation,
    /// sysctls set from the load to the end of the runs (names like `kernel.bpf_stats_enabled`).
    pub sysctls: BTreeMap<String, String>,
    /// sysctls for the named variants only (a patched kernel's own knobs), over `sysctls`.
    pub sysctls_on: BTreeMap<String, BTreeMap<String, String>>,
    /// tracefs events recorded during one extra run (`trace.events`).
    pub trace_events: Vec<String>,
    /// Expectations that replace `expect` on the named variants.
    pub expect_on: BTreeMap<String, Expectation>,
    /// In a scenario with a stop budget (`stop:`): the budget, what the program holds when it
    /// expires, and the variants that cannot stop it.
    pub stop: Option<StopSpec>,
    /// Programs of the same object loaded beside it (`auxiliary:`): a tail call's targets, which
    /// libbpf puts into the object's program arrays.
    pub auxiliary: Vec<String>,
    /// Line of the program's entry in the scenario file (0 for programs the harness adds).
    pub line: usize,
}

/// The stop contract applied to one program: every test run gets `budget_ns`
/// (`kernel.bpf_watchdog_budget_ns`) on a kernel that has the watchdog. There the run must be
/// stopped (ECANCELED, nothing leaked) unless the variant is declared `not_stoppable`; a kernel
/// without the watchdog runs the program to its end, as `expect` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopSpec {
    pub budget_ns: u64,
    /// Resource kinds held when the budget expires (one of [`HELD_KINDS`]).
    pub holds: Vec<String>,
    /// Variants whose watchdog cannot stop this program, with why: it must then run to its end.
    pub not_stoppable: BTreeMap<String, String>,
}

/// What a stopped program can hold, as the summary's coverage rows name them.
pub const HELD_KINDS: [&str; 10] =
    ["task", "cgroup", "cpumask", "local_object", "kptr_in_map", "iterator", "dynptr", "socket", "rcu", "lock"];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expectation {
    pub verdict: ExpectedVerdict,
    /// Text the verifier log must contain (reject only).
    pub message: Option<String>,
    /// Return value every run must produce (accept only).
    pub retval: Option<u32>,
    /// What the runs must do to pid 1's task reference count (needs `checks: [task_refs]`).
    pub task_refs: Option<Balance>,
    /// What the warm-up run must do to cpumask references (needs `checks: [cpumasks]`).
    pub cpumasks: Option<Balance>,
    /// The errno every failed test run must have failed with (and some run must have failed);
    /// None: every run must succeed.
    pub run_error: Option<RunError>,
    /// Values of the variant's own `bpf_prog_info` fields after loading.
    pub prog_info: BTreeMap<String, u64>,
    /// The traced run's events, in order, one pattern per line (needs `trace.events`).
    pub trace: Option<Vec<TracePattern>>,
}

/// An errno a test run may fail with, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum RunError {
    /// A watchdog cancelled the run.
    ECANCELED,
    EINVAL,
    ENOMEM,
    EFAULT,
    ENOSPC,
    E2BIG,
}

impl RunError {
    pub fn errno(self) -> i32 {
        match self {
            RunError::ECANCELED => 125,
            RunError::EINVAL => 22,
            RunError::ENOMEM => 12,
            RunError::EFAULT => 14,
            RunError::ENOSPC => 28,
            RunError::E2BIG => 7,
        }
    }
}

/// One expected trace line: `event: key=value ...`. A line matches when its event is the same and
/// it carries every given `key=value` (other fields, such as addresses, are not compared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracePattern {
    pub event: String,
    pub fields: Vec<(String, String)>,
}

impl TracePattern {
    pub fn parse(text: &str) -> Option<TracePattern> {
        let (event, rest) = text.split_once(':').unwrap_or((text, ""));
        let event = event.trim();
        if event.is_empty() || event.contains(char::is_whitespace) {
            return None;
        }
        let fields = rest
            .split_whitespace()
            .map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).filter(|(k, _)| !k.is_empty()))
            .collect::<Option<Vec<_>>>()?;
        Some(TracePattern { event: event.to_string(), fields })
    }

    /// Whether a trace line (as the runner reports it: `event: fields`) matches.
    pub fn matches(&self, line: &str) -> bool {
        let Some((event, rest)) = line.split_once(':') else { return false };
        event.trim() == self.event
            && self.fields.iter().all(|(k, v)| rest.split_whitespace().any(|kv| kv.split_once('=') == Some((k, v))))
    }
}

impl fmt::Display for TracePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.event)?;
        for (k, v) in &self.fields {
            write!(f, " {k}={v}")?;
        }
        Ok(())
    }
}

impl ProgramSpec {
    /// The expectation that holds on `variant`.
    pub fn expectation_for(&self, variant: &str) -> &Expectation {
        self.expect_on.get(variant).unwrap_or(&self.expect)
    }

    /// The sysctls to set on `variant`.
    pub fn sysctls_for(&self, variant: &str) -> BTreeMap<String, String> {
        let mut all = self.sysctls.clone();
        all.extend(self.sysctls_on.get(variant).cloned().unwrap_or_default());
        all
    }

    /// What `variant` must do when its kernel stops the program: what the scenario expects of
    /// the variant, else the run to the end's expectation without its return value (a stopped
    /// program returns what its design makes it return); and the run fails with ECANCELED.
    pub fn expectation_when_stopped(&self, variant: &str) -> Expectation {
        let mut expect = match self.expect_on.get(variant) {
            Some(own) => own.clone(),
            None => Expectation { retval: None, ..self.expect.clone() },
        };
        expect.run_error.get_or_insert(RunError::ECANCELED);
        expect
    }

    /// Every variant this program names (`expect_on`, `sysctls_on`, `not_stoppable`).
    pub fn variants_named(&self) -> impl Iterator<Item = &String> {
        let not_stoppable = self.stop.iter().flat_map(|s| s.not_stoppable.keys());
        self.expect_on.keys().chain(self.sysctls_on.keys()).chain(not_stoppable)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Balance {
    /// Back where it started: nothing leaked.
    Balanced,
    /// More taken than dropped: the program leaks references.
    Leaked,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpectedVerdict {
    #[default]
    Accept,
    Reject,
}

/// What is wrong with a scenario file, and where.
#[derive(Debug)]
pub struct ScenarioError {
    path: PathBuf,
    /// Line and column, when the mistake has a place in the file.
    position: Option<(u64, u64)>,
    message: String,
}

impl ScenarioError {
    fn at(path: &Path, location: Location, message: impl Into<String>) -> Self {
        // serde-saphyr marks "no location" with line 0.
        let position = (location.line() != 0).then(|| (location.line(), location.column()));
        ScenarioError { path: path.to_path_buf(), position, message: message.into() }
    }

    fn yaml(path: &Path, err: &serde_saphyr::Error) -> Self {
        // The bare message, without the library's snippet and "at line X, column Y" suffix, so
        // that the position is written once, in the `file:line:col` form editors understand. The
        // user formatter speaks to whoever edits the file (the default one suggests library
        // options). The library's renderer would neutralise control characters copied from the
        // document (e.g. in an unknown key); bypassing it, we do that here.
        let message = UserMessageFormatter.format_message(err.without_snippet()).replace(char::is_control, " ");
        ScenarioError::at(path, err.location().unwrap_or(Location::UNKNOWN), message)
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some((line, column)) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// The scenario file a command-line argument names: the path itself when it exists, else a bare
/// name (`loop`, `loop.yaml`) in `scenarios_dir`; an unknown name lists the scenarios there.
pub fn resolve(arg: &Path, scenarios_dir: &Path) -> anyhow::Result<PathBuf> {
    if arg.exists() {
        return Ok(arg.to_path_buf());
    }
    let bare = arg.components().count() == 1;
    if bare {
        let name = arg.to_string_lossy();
        for candidate in [scenarios_dir.join(&*name), scenarios_dir.join(format!("{name}.yaml"))] {
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    let known = shipped(scenarios_dir)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(", ");
    anyhow::bail!(
        "{}: no such scenario file{} (scenarios in {}: {known})",
        arg.display(),
        if bare { ", and no scenario of that name" } else { "" },
        scenarios_dir.display()
    )
}

/// The `*.yaml` files in `dir`, by name.
pub fn shipped(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_name_resolves_to_the_shipped_scenario_and_an_unknown_one_lists_them() {
        let dir = crate::host::repo::scenarios_dir();
        assert_eq!(resolve(Path::new("loop.yaml"), &dir).unwrap(), dir.join("loop.yaml"));
        assert_eq!(resolve(Path::new("loop"), &dir).unwrap(), dir.join("loop.yaml"));
        let given = dir.join("simple.yaml");
        assert_eq!(resolve(&given, &dir).unwrap(), given);
        let err = resolve(Path::new("lop.yaml"), &dir).unwrap_err().to_string();
        assert!(err.starts_with("lop.yaml: no such scenario file, and no scenario of that name"), "{err}");
        assert!(err.contains("branch, ") && err.contains("loop, "), "{err}");
        let err = resolve(Path::new("elsewhere/loop.yaml"), &dir).unwrap_err().to_string();
        assert!(err.starts_with("elsewhere/loop.yaml: no such scenario file (scenarios in"), "{err}");
    }
}
