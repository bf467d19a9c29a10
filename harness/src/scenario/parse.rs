//! Reading a scenario file: the file as written (`Raw*`, with positions), checked part by part
//! into a [`Scenario`]; every mistake is an error at its `file:line:column`.

use super::*;
use bpfh_protocol::{MAX_PACKET_BYTES, MIN_PACKET_BYTES, WATCHDOG_SYSCTL};

/// Extra measurements a program can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Check {
    /// pid 1's task reference count before and after the runs.
    TaskRefs,
    /// cpumask references taken and dropped during the warm-up run.
    Cpumasks,
}

/// The file as written; `Spanned` keeps the positions that semantic errors point at.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Spanned<String>,
    description: String,
    variants: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    timeouts: RawTimeouts,
    #[serde(default)]
    defaults: RawDefaults,
    programs: Option<Spanned<Vec<Spanned<RawProgram>>>>,
    upstream: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    thresholds: HashMap<Spanned<String>, Spanned<Threshold>>,
    #[serde(default)]
    allow_kernel_messages: Vec<Spanned<String>>,
    #[serde(default)]
    provoke: Vec<Spanned<String>>,
    stop: Option<Spanned<RawStop>>,
}

/// `stop: { budget_ns: N }`: the stop contract's budget for every program of the scenario.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStop {
    budget_ns: Spanned<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    boot: Option<Spanned<u64>>,
    run: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    repeat: Option<Spanned<u32>>,
    samples: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProgram {
    id: Option<Spanned<String>>,
    object: Spanned<String>,
    program: String,
    #[serde(rename = "type")]
    prog_type: ProgType,
    repeat: Option<Spanned<u32>>,
    samples: Option<Spanned<u32>>,
    packet_bytes: Option<Spanned<u32>>,
    #[serde(default)]
    checks: Vec<Check>,
    #[serde(default)]
    expect: RawExpect,
    #[serde(default)]
    expect_on: BTreeMap<String, RawExpect>,
    #[serde(default)]
    sysctls: HashMap<Spanned<String>, SysctlValue>,
    #[serde(default)]
    sysctls_on: BTreeMap<String, HashMap<Spanned<String>, SysctlValue>>,
    trace: Option<RawTrace>,
    holds: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    auxiliary: Vec<Spanned<String>>,
    #[serde(default)]
    not_stoppable: BTreeMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrace {
    events: Spanned<Vec<Spanned<String>>>,
}

/// sysctl values are written as text; YAML numbers are accepted for convenience.
#[derive(Deserialize)]
#[serde(untagged)]
enum SysctlValue {
    Number(u64),
    Text(String),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    #[serde(default)]
    verdict: ExpectedVerdict,
    message: Option<Spanned<String>>,
    retval: Option<Spanned<u32>>,
    task_refs: Option<Spanned<Balance>>,
    cpumasks: Option<Spanned<Balance>>,
    run_error: Option<RunError>,
    #[serde(default)]
    prog_info: BTreeMap<String, u64>,
    trace: Option<Spanned<Vec<Spanned<String>>>>,
}

const STOP_REPEAT: &str =
    "repeat: a stop scenario times each test run's system call, so each runs the program once (omit repeat)";

/// `kernel.bpf_stats_enabled`: dot-separated words, as sysctl(8) writes them.
fn is_sysctl_name(name: &str) -> bool {
    name.split('.').count() >= 2
        && name.split('.').all(|w| !w.is_empty() && w.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_')))
}

/// `bpf_ref` or `bpf_ref/bpf_ref_acquire`: a tracefs event group or event.
fn is_trace_event(name: &str) -> bool {
    name.split('/').count() <= 2
        && name.split('/').all(|w| !w.is_empty() && w.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_')))
}

/// Scenario and object names become file and directory names (results, BPF sources and objects).
fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
}

impl Scenario {
    /// Reads and validates the scenario at `path`; BPF sources are looked up in `bpf_source_dir`.
    pub fn load(path: &Path, bpf_source_dir: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| ScenarioError::at(path, Location::UNKNOWN, format!("cannot read the scenario: {err}")))?;
        Scenario::parse(&text, path, bpf_source_dir)
    }

    /// Validates scenario `text`; `path` names the file in errors and in the result.
    pub fn parse(text: &str, path: &Path, bpf_source_dir: &Path) -> Result<Scenario, ScenarioError> {
        let raw: RawScenario = serde_saphyr::from_str(text).map_err(|err| ScenarioError::yaml(path, &err))?;
        let check = Checker { path, bpf_source_dir };

        let name = raw.name.value;
        if !is_plain_name(&name) {
            return Err(check.fail(
                raw.name.referenced,
                format!("name {name:?}: use only a-z, 0-9, '_' and '-' (it names the results directory)"),
            ));
        }
        let variants = raw.variants.map(|list| check.variants(list)).transpose()?;
        let allowed_kernel_messages = check.kernel_messages(raw.allow_kernel_messages)?;
        let provoke = check.provoke(raw.provoke)?;
        let thresholds = check.thresholds(raw.thresholds)?;
        let boot_timeout = check.at_least_one(raw.timeouts.boot, "timeouts.boot", DEFAULT_BOOT_TIMEOUT_S)?;
        let run_timeout = check.at_least_one(raw.timeouts.run, "timeouts.run", DEFAULT_RUN_TIMEOUT_S)?;
        // A stop scenario times each test run's system call: one run of the program each.
        let default_repeat = if raw.stop.is_some() { 1 } else { DEFAULT_REPEAT };
        if let (Some(_), Some(repeat)) = (&raw.stop, &raw.defaults.repeat) {
            if repeat.value > 1 {
                return Err(check.fail(repeat.referenced, STOP_REPEAT));
            }
        }
        let defaults = Defaults {
            repeat: check.at_least_one(raw.defaults.repeat, "defaults.repeat", default_repeat)?,
            samples: check.at_least_one(raw.defaults.samples, "defaults.samples", DEFAULT_SAMPLES)?,
            stop_budget_ns: raw
                .stop
                .map(|stop| check.at_least_one(Some(stop.value.budget_ns), "stop.budget_ns", 0))
                .transpose()?,
        };

        let upstream = match raw.upstream {
            Some(list) => check.upstream(list)?,
            None => Vec::new(),
        };
        let raw_programs = match raw.programs {
            Some(list) if list.value.is_empty() => {
                return Err(check.fail(list.referenced, "programs: empty list; a scenario needs at least one program"))
            }
            Some(list) => list.value,
            None if upstream.is_empty() => {
                return Err(check
                    .fail(Location::UNKNOWN, "no programs: give `programs` or `upstream` (selftest files), or both"))
            }
            None => Vec::new(),
        };
        let mut first_line_of_id: HashMap<String, u64> = HashMap::new();
        let mut programs = Vec::with_capacity(raw_programs.len());
        for entry in raw_programs {
            // An id defaults to the program name; a clash is then reported at the program's entry.
            let id_location = entry.value.id.as_ref().map_or(entry.referenced, |id| id.referenced);
            let program = check.program(entry, defaults)?;
            if let Some(first) = first_line_of_id.insert(program.id.clone(), id_location.line()) {
                return Err(check
                    .fail(id_location, format!("duplicate program id {:?} (first used on line {first})", program.id)));
            }
            programs.push(program);
        }

        Ok(Scenario {
            path: path.to_path_buf(),
            name,
            description: raw.description,
            variants,
            boot_timeout: Duration::from_secs(boot_timeout),
            run_timeout: Duration::from_secs(run_timeout),
            programs,
            upstream,
            thresholds,
            allowed_kernel_messages,
            provoke,
        })
    }
}

/// Which leak counters a program asked for (`checks:`).
#[derive(Clone, Copy)]
struct Counted {
    task_refs: bool,
    cpumasks: bool,
}

#[derive(Clone, Copy)]
struct Defaults {
    repeat: u32,
    samples: u32,
    /// The scenario's stop budget (`stop.budget_ns`), which every program gets.
    stop_budget_ns: Option<u64>,
}

/// Validates parts of one file and builds errors that point into it.
struct Checker<'a> {
    path: &'a Path,
    bpf_source_dir: &'a Path,
}

impl Checker<'_> {
    fn fail(&self, location: Location, message: impl Into<String>) -> ScenarioError {
        ScenarioError::at(self.path, location, message)
    }

    /// Zero is refused: every consumer would accept it and silently do nothing, or time out at once.
    fn at_least_one<T: Copy + PartialEq + From<u8>>(
        &self,
        field: Option<Spanned<T>>,
        key: &str,
        default: T,
    ) -> Result<T, ScenarioError> {
        match field {
            Some(field) if field.value == T::from(0) => {
                Err(self.fail(field.referenced, format!("{key}: must be at least 1")))
            }
            Some(field) => Ok(field.value),
            None => Ok(default),
        }
    }

    fn thresholds(
        &self,
        raw: HashMap<Spanned<String>, Spanned<Threshold>>,
    ) -> Result<BTreeMap<String, Threshold>, ScenarioError> {
        // In file order, so that the first mistake is the one reported.
        let mut entries: Vec<(Spanned<String>, Spanned<Threshold>)> = raw.into_iter().collect();
        entries.sort_by_key(|(key, _)| (key.referenced.line(), key.referenced.column()));
        let mut out = BTreeMap::new();
        for (key, threshold) in entries {
            if !metric::is_known(&key.value) {
                return Err(self.fail(
                    key.referenced,
                    format!("thresholds: unknown metric {:?} (known: {})", key.value, metric::known_keys()),
                ));
            }
            let Threshold { relative, absolute } = threshold.value;
            if relative.is_none() && absolute.is_none() {
                return Err(self.fail(
                    threshold.referenced,
                    format!("thresholds.{}: give `relative` (a fraction, 0.02 = 2%) or `absolute`, or both", key.value),
                ));
            }
            if [relative, absolute].into_iter().flatten().any(|v| !v.is_finite() || v < 0.0) {
                return Err(self.fail(
                    threshold.referenced,
                    format!("thresholds.{}: bounds must be finite and not negative", key.value),
                ));
            }
            out.insert(key.value, threshold.value);
        }
        Ok(out)
    }

    /// A pattern must say something: an empty one would allow every warning.
    fn kernel_messages(&self, list: Vec<Spanned<String>>) -> Result<Vec<String>, ScenarioError> {
        list.into_iter()
            .map(|m| match m.value.trim() {
                "" => Err(self.fail(m.referenced, "allow_kernel_messages: an empty pattern would allow every warning")),
                _ => Ok(m.value),
            })
            .collect()
    }

    /// LKDTM crash type names are upper-case words; the guest writes them to a debugfs file.
    fn provoke(&self, list: Vec<Spanned<String>>) -> Result<Vec<String>, ScenarioError> {
        list.into_iter()
            .map(|t| match !t.value.is_empty() && t.value.bytes().all(|b| matches!(b, b'A'..=b'Z' | b'0'..=b'9' | b'_')) {
                true => Ok(t.value),
                false => Err(self.fail(
                    t.referenced,
                    format!("provoke: {:?} is not an LKDTM crash type (e.g. WARNING, REFCOUNT_DEC_ZERO, READ_AFTER_FREE)", t.value),
                )),
            })
            .collect()
    }

    /// Upstream file names: `exceptions_fail.c`, found under the tree's selftest `progs/` (the tree
    /// exists only once a variant is prepared, so existence is checked then), or patterns with
    /// `*` (`verifier_*.c`, `*.c`), which name the annotated files that match
    /// ([`crate::selftests::expand`]).
    fn upstream(&self, list: Spanned<Vec<Spanned<String>>>) -> Result<Vec<String>, ScenarioError> {
        if list.value.is_empty() {
            return Err(self.fail(list.referenced, "upstream: empty list; omit the key instead"));
        }
        let mut files: Vec<String> = Vec::with_capacity(list.value.len());
        for file in list.value {
            let stem = file.value.strip_suffix(".c").unwrap_or_default();
            let name_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'*';
            if stem.is_empty() || !stem.bytes().all(name_byte) {
                return Err(self.fail(
                    file.referenced,
                    format!(
                        "upstream: {:?} is not a file name like exceptions_fail.c (in tools/testing/selftests/bpf/progs/)",
                        file.value
                    ),
                ));
            }
            if files.contains(&file.value) {
                return Err(self.fail(file.referenced, format!("upstream: {:?} is listed twice", file.value)));
            }
            files.push(file.value);
        }
        Ok(files)
    }

    fn variants(&self, list: Spanned<Vec<Spanned<String>>>) -> Result<Vec<String>, ScenarioError> {
        if list.value.is_empty() {
            return Err(self.fail(list.referenced, "variants: empty list; omit the key to run every variant"));
        }
        let mut names: Vec<String> = Vec::with_capacity(list.value.len());
        for variant in list.value {
            if names.contains(&variant.value) {
                return Err(self.fail(variant.referenced, format!("variants: {:?} is listed twice", variant.value)));
            }
            names.push(variant.value);
        }
        Ok(names)
    }

    fn program(&self, entry: Spanned<RawProgram>, defaults: Defaults) -> Result<ProgramSpec, ScenarioError> {
        let p = entry.value;

        let object = p.object.value;
        if !is_plain_name(&object) {
            return Err(self.fail(
                p.object.referenced,
                format!("object {object:?}: use only a-z, 0-9, '_' and '-' (it names a file under the BPF source directory)"),
            ));
        }
        let source = self.bpf_source_dir.join(format!("{object}.bpf.c"));
        if !source.is_file() {
            return Err(
                self.fail(p.object.referenced, format!("object {object:?}: no BPF source {}", source.display()))
            );
        }

        if p.prog_type == ProgType::Any {
            return Err(self.fail(
                entry.referenced,
                "type: any is for upstream programs (the `upstream` key); a scenario program is tc, syscall or fentry",
            ));
        }
        if let (Some(_), Some(repeat)) = (defaults.stop_budget_ns, &p.repeat) {
            if repeat.value > 1 {
                return Err(self.fail(repeat.referenced, STOP_REPEAT));
            }
        }
        let repeat = match (p.prog_type, p.repeat) {
            // BPF_PROG_TEST_RUN rejects a repeat count for syscall and tracing programs.
            (ty @ (ProgType::Syscall | ProgType::Fentry), Some(repeat)) if repeat.value > 1 => {
                return Err(self.fail(
                    repeat.referenced,
                    format!(
                        "repeat: {} on a {ty} program; the kernel runs a {ty} program once per test run (omit repeat)",
                        repeat.value,
                        ty = ty.as_str()
                    ),
                ));
            }
            (ProgType::Syscall | ProgType::Fentry | ProgType::Any, _) => 1,
            (ProgType::Tc, repeat) => self.at_least_one(repeat, "repeat", defaults.repeat)?,
        };
        let samples = self.at_least_one(p.samples, "samples", defaults.samples)?;
        let packet_bytes = match p.packet_bytes {
            Some(n) if p.prog_type != ProgType::Tc => {
                return Err(self.fail(n.referenced, "packet_bytes: only tc programs run on a packet"))
            }
            Some(n) if !(MIN_PACKET_BYTES..=MAX_PACKET_BYTES).contains(&(n.value as usize)) => {
                return Err(self.fail(
                    n.referenced,
                    format!("packet_bytes: {} is outside {MIN_PACKET_BYTES}..={MAX_PACKET_BYTES}", n.value),
                ))
            }
            n => n.map(|n| n.value),
        };

        let counted =
            Counted { task_refs: p.checks.contains(&Check::TaskRefs), cpumasks: p.checks.contains(&Check::Cpumasks) };
        let budgeted = defaults.stop_budget_ns.is_some();
        let sysctls = self.sysctls(p.sysctls, budgeted)?;
        let sysctls_on = p
            .sysctls_on
            .into_iter()
            .map(|(variant, raw)| Ok((variant, self.sysctls(raw, budgeted)?)))
            .collect::<Result<_, ScenarioError>>()?;
        let mut trace_events = Vec::new();
        if let Some(trace) = p.trace {
            if trace.events.value.is_empty() {
                return Err(self.fail(trace.events.referenced, "trace.events: empty list; omit trace instead"));
            }
            for event in trace.events.value {
                if !is_trace_event(&event.value) {
                    return Err(self.fail(
                        event.referenced,
                        format!("trace.events: {:?} is not a tracefs event group or group/event", event.value),
                    ));
                }
                trace_events.push(event.value);
            }
        }
        let stop = self.stop(defaults.stop_budget_ns, p.holds, p.not_stoppable)?;
        let auxiliary = self.auxiliary(p.auxiliary, &p.program)?;
        let traced = !trace_events.is_empty();
        let expect = self.expectation(p.expect, counted, traced)?;
        let expect_on = p
            .expect_on
            .into_iter()
            .map(|(variant, raw)| Ok((variant, self.expectation(raw, counted, traced)?)))
            .collect::<Result<_, ScenarioError>>()?;

        Ok(ProgramSpec {
            id: p.id.map_or_else(|| p.program.clone(), |id| id.value),
            object,
            program: p.program,
            prog_type: p.prog_type,
            repeat,
            packet_bytes,
            samples,
            count_task_refs: counted.task_refs,
            count_cpumasks: counted.cpumasks,
            sysctls,
            sysctls_on,
            trace_events,
            expect,
            expect_on,
            stop,
            auxiliary,
            line: entry.referenced.line() as usize,
        })
    }

    /// Programs of the same object loaded beside the program (a tail call's target): C names.
    fn auxiliary(&self, list: Vec<Spanned<String>>, program: &str) -> Result<Vec<String>, ScenarioError> {
        let mut names: Vec<String> = Vec::with_capacity(list.len());
        for name in list {
            let c_name = name
                .value
                .bytes()
                .enumerate()
                .all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()));
            if name.value.is_empty() || !c_name || name.value == program || names.contains(&name.value) {
                return Err(self.fail(
                    name.referenced,
                    format!("auxiliary: {:?} must name another program of the object, once", name.value),
                ));
            }
            names.push(name.value);
        }
        Ok(names)
    }

    /// A program's part of the stop contract; `holds` and `not_stoppable` only where the
    /// scenario has a budget, which the program must not set on its own.
    fn stop(
        &self,
        budget_ns: Option<u64>,
        holds: Option<Spanned<Vec<Spanned<String>>>>,
        not_stoppable: BTreeMap<String, Spanned<String>>,
    ) -> Result<Option<StopSpec>, ScenarioError> {
        let Some(budget_ns) = budget_ns else {
            if let Some(holds) = holds {
                return Err(self.fail(holds.referenced, "holds: only in a scenario with `stop: { budget_ns: N }`"));
            }
            if let Some(reason) = not_stoppable.values().next() {
                return Err(
                    self.fail(reason.referenced, "not_stoppable: only in a scenario with `stop: { budget_ns: N }`")
                );
            }
            return Ok(None);
        };
        let mut kinds: Vec<String> = Vec::new();
        for kind in holds.map(|h| h.value).unwrap_or_default() {
            if !HELD_KINDS.contains(&kind.value.as_str()) {
                return Err(self.fail(
                    kind.referenced,
                    format!("holds: {:?} is not a resource kind (one of {})", kind.value, HELD_KINDS.join(", ")),
                ));
            }
            if !kinds.contains(&kind.value) {
                kinds.push(kind.value);
            }
        }
        let mut reasons = BTreeMap::new();
        for (variant, reason) in not_stoppable {
            if reason.value.trim().is_empty() {
                return Err(self.fail(reason.referenced, format!("not_stoppable.{variant}: say why")));
            }
            reasons.insert(variant, reason.value);
        }
        Ok(Some(StopSpec { budget_ns, holds: kinds, not_stoppable: reasons }))
    }

    fn expectation(&self, raw: RawExpect, counted: Counted, traced: bool) -> Result<Expectation, ScenarioError> {
        let RawExpect { verdict, message, retval, task_refs, cpumasks, run_error, prog_info, trace } = raw;
        let trace = match trace {
            None => None,
            Some(list) if !traced => {
                return Err(self.fail(list.referenced, "expect.trace: needs `trace: { events: [...] }` on the program"))
            }
            Some(list) => Some(
                list.value
                    .into_iter()
                    .map(|line| {
                        TracePattern::parse(&line.value).ok_or_else(|| {
                            self.fail(
                                line.referenced,
                                format!("expect.trace: {:?} is not `event: key=value ...`", line.value),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        match (verdict, &message, &retval) {
            (ExpectedVerdict::Accept, Some(message), _) => {
                return Err(self.fail(
                    message.referenced,
                    "expect.message: only with verdict: reject (it is matched against the verifier log of a rejection)",
                ));
            }
            (ExpectedVerdict::Reject, _, Some(retval)) => {
                return Err(self.fail(
                    retval.referenced,
                    "expect.retval: only with verdict: accept (a rejected program never runs)",
                ));
            }
            _ => {}
        }
        let task_refs = self.balance(task_refs, "task_refs", counted.task_refs, verdict)?;
        let cpumasks = self.balance(cpumasks, "cpumasks", counted.cpumasks, verdict)?;
        Ok(Expectation {
            verdict,
            message: message.map(|m| m.value),
            retval: retval.map(|r| r.value),
            task_refs,
            cpumasks,
            run_error,
            prog_info,
            trace,
        })
    }

    /// `budgeted`: the scenario's `stop.budget_ns` owns the watchdog's sysctl.
    fn sysctls(
        &self,
        raw: HashMap<Spanned<String>, SysctlValue>,
        budgeted: bool,
    ) -> Result<BTreeMap<String, String>, ScenarioError> {
        let mut sysctls = BTreeMap::new();
        for (name, value) in raw {
            if budgeted && name.value == WATCHDOG_SYSCTL {
                return Err(self.fail(
                    name.referenced,
                    format!("sysctls: {WATCHDOG_SYSCTL} is the scenario's `stop.budget_ns`; do not set it per program"),
                ));
            }
            if !is_sysctl_name(&name.value) {
                return Err(self.fail(
                    name.referenced,
                    format!("sysctls: {:?} is not a sysctl name (like kernel.bpf_stats_enabled)", name.value),
                ));
            }
            let value = match value {
                SysctlValue::Number(n) => n.to_string(),
                SysctlValue::Text(t) => t,
            };
            sysctls.insert(name.value, value);
        }
        Ok(sysctls)
    }

    /// A counted program that states nothing about references must not leak any.
    fn balance(
        &self,
        stated: Option<Spanned<Balance>>,
        key: &str,
        counted: bool,
        verdict: ExpectedVerdict,
    ) -> Result<Option<Balance>, ScenarioError> {
        if let Some(stated) = &stated {
            if !counted {
                return Err(
                    self.fail(stated.referenced, format!("expect.{key}: needs `checks: [{key}]` on the program"))
                );
            }
            if verdict == ExpectedVerdict::Reject {
                return Err(self.fail(stated.referenced, format!("expect.{key}: a rejected program never runs")));
            }
        }
        Ok(stated.map(|r| r.value).or((counted && verdict == ExpectedVerdict::Accept).then_some(Balance::Balanced)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BPF source directory holding `simple.bpf.c` and `empty.bpf.c`.
    fn bpf_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for object in ["simple", "empty"] {
            std::fs::write(dir.path().join(format!("{object}.bpf.c")), "").unwrap();
        }
        dir
    }

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        let dir = bpf_dir();
        Scenario::parse(text, Path::new("scenarios/t.yaml"), dir.path())
    }

    fn error(text: &str) -> String {
        parse(text).expect_err("the scenario should be rejected").to_string()
    }

    /// A valid scenario whose first program's lines can be replaced by the tests.
    fn with_program(program: &str) -> String {
        format!("name: t\ndescription: d\nprograms:\n  - object: simple\n{program}")
    }

    #[test]
    fn valid_file_parses_with_defaults_applied() {
        let s = parse(
            "name: simple-1\n\
             description: two programs\n\
             programs:\n\
             \x20 - object: simple\n\
             \x20   program: task_ref_tc\n\
             \x20   type: tc\n\
             \x20 - id: sys\n\
             \x20   object: empty\n\
             \x20   program: empty_syscall\n\
             \x20   type: syscall\n\
             \x20   samples: 3\n\
             \x20   expect: { verdict: reject, message: Unreleased reference }\n",
        )
        .unwrap();
        assert_eq!(s.path, Path::new("scenarios/t.yaml"));
        assert_eq!((s.name.as_str(), s.description.as_str()), ("simple-1", "two programs"));
        assert_eq!(s.variants, None);
        assert_eq!((s.boot_timeout, s.run_timeout), (Duration::from_secs(120), Duration::from_secs(600)));
        assert_eq!(
            s.programs,
            vec![
                ProgramSpec {
                    id: "task_ref_tc".into(),
                    object: "simple".into(),
                    program: "task_ref_tc".into(),
                    prog_type: ProgType::Tc,
                    repeat: 1000,
                    packet_bytes: None,
                    samples: 5,
                    count_task_refs: false,
                    count_cpumasks: false,
                    sysctls: BTreeMap::new(),
                    sysctls_on: BTreeMap::new(),
                    trace_events: vec![],
                    expect: Expectation::default(),
                    expect_on: BTreeMap::new(),
                    stop: None,
                    auxiliary: Vec::new(),
                    line: 4,
                },
                ProgramSpec {
                    id: "sys".into(),
                    object: "empty".into(),
                    program: "empty_syscall".into(),
                    prog_type: ProgType::Syscall,
                    repeat: 1,
                    packet_bytes: None,
                    samples: 3,
                    count_task_refs: false,
                    count_cpumasks: false,
                    sysctls: BTreeMap::new(),
                    sysctls_on: BTreeMap::new(),
                    trace_events: vec![],
                    expect: Expectation {
                        verdict: ExpectedVerdict::Reject,
                        message: Some("Unreleased reference".into()),
                        ..Expectation::default()
                    },
                    expect_on: BTreeMap::new(),
                    stop: None,
                    auxiliary: Vec::new(),
                    line: 7,
                },
            ]
        );
    }

    #[test]
    fn scenario_settings_override_defaults_but_syscall_repeat_stays_one() {
        let s = parse(
            "name: t\ndescription: d\nvariants: [baseline, fixed]\ntimeouts: { boot: 5, run: 7 }\n\
             defaults: { repeat: 100000, samples: 9 }\n\
             programs:\n\
             \x20 - { object: simple, program: a, type: tc, expect: { retval: 3 } }\n\
             \x20 - { object: simple, program: b, type: tc, repeat: 10, samples: 2 }\n\
             \x20 - { object: empty, program: c, type: syscall }\n",
        )
        .unwrap();
        assert_eq!(s.variants, Some(vec!["baseline".to_string(), "fixed".to_string()]));
        assert_eq!((s.boot_timeout, s.run_timeout), (Duration::from_secs(5), Duration::from_secs(7)));
        let counts: Vec<(u32, u32)> = s.programs.iter().map(|p| (p.repeat, p.samples)).collect();
        assert_eq!(counts, [(100000, 9), (10, 2), (1, 9)]);
        assert_eq!(s.programs[0].expect.retval, Some(3));
    }

    #[test]
    fn a_stop_budget_gives_every_program_its_part_of_the_stop_contract() {
        let with_budget = |budget: u64, program: &str| {
            format!(
                "name: t\ndescription: d\nstop: {{ budget_ns: {budget} }}\nprograms:\n  - object: simple\n{program}"
            )
        };
        let stop = |program: &str| with_budget(1000, program);
        let s = parse(&stop(
            "    program: p\n    type: syscall\n    checks: [task_refs]\n    holds: [task, iterator, task]\n\
             \x20   not_stoppable: { v: no checkpoint at may_goto }\n    expect: { retval: 7 }\n",
        ))
        .unwrap();
        let p = &s.programs[0];
        let spec = p.stop.as_ref().unwrap();
        assert_eq!((spec.budget_ns, spec.holds.as_slice()), (1000, ["task", "iterator"].map(String::from).as_slice()));
        assert_eq!(spec.not_stoppable.get("v").map(String::as_str), Some("no checkpoint at may_goto"));
        assert!(p.variants_named().any(|v| v == "v"), "a not_stoppable variant must exist");
        // Stopped: ECANCELED, the leak check kept, the run to the end's return value dropped.
        let stopped = p.expectation_when_stopped("w");
        assert_eq!((stopped.retval, stopped.run_error), (None, Some(RunError::ECANCELED)));
        assert_eq!(stopped.task_refs, Some(Balance::Balanced));
        assert_eq!(p.expectation_for("w").retval, Some(7));

        let e = error(&stop("    program: p\n    type: syscall\n    holds: [tasks]\n"));
        assert!(e.ends_with(":8:13: holds: \"tasks\" is not a resource kind (one of task, cgroup, cpumask, local_object, kptr_in_map, iterator, dynptr, socket, rcu, lock)"), "{e}");
        let e = error(&stop("    program: p\n    type: syscall\n    sysctls: { kernel.bpf_watchdog_budget_ns: 5 }\n"));
        assert!(e.contains(":8:16: sysctls: kernel.bpf_watchdog_budget_ns is the scenario's `stop.budget_ns`"), "{e}");
        let e = error(&stop("    program: p\n    type: syscall\n    not_stoppable: { v: \" \" }\n"));
        assert!(e.contains(":8:25: not_stoppable.v: say why"), "{e}");
        let e = error(&with_program("    program: p\n    type: syscall\n    holds: [task]\n"));
        assert!(e.contains(":7:12: holds: only in a scenario with `stop: { budget_ns: N }`"), "{e}");
        let e = error(&stop("    program: p\n    type: tc\n    repeat: 10\n"));
        assert!(e.contains(":8:13: repeat: a stop scenario times each test run's system call"), "{e}");
        let e = error(&with_budget(0, "    program: p\n    type: syscall\n"));
        assert!(e.contains("stop.budget_ns: must be at least 1"), "{e}");
    }

    #[test]
    fn auxiliary_programs_name_other_programs_once() {
        let s = parse(&with_program("    program: p\n    type: tc\n    auxiliary: [target]\n")).unwrap();
        assert_eq!(s.programs[0].auxiliary, ["target"]);
        for bad in ["[p]", "[t, t]", "[\"a b\"]"] {
            let e = error(&with_program(&format!("    program: p\n    type: tc\n    auxiliary: {bad}\n")));
            assert!(e.contains("auxiliary: ") && e.contains("must name another program of the object, once"), "{e}");
        }
    }

    #[test]
    fn sysctls_and_traces_are_validated() {
        let s = parse(&with_program(
            "    program: p\n    type: tc\n    sysctls: { kernel.bpf_watchdog_budget_ns: 10000000 }\n\
             \x20   trace: { events: [bpf_ref] }\n\
             \x20   expect:\n      trace:\n        - \"bpf_ref_acquire: kfunc=bpf_task_from_pid held=1\"\n\
             \x20       - \"bpf_ref_table: entries=0\"\n",
        ))
        .unwrap();
        let p = &s.programs[0];
        assert_eq!(p.sysctls.get("kernel.bpf_watchdog_budget_ns").map(String::as_str), Some("10000000"));
        assert_eq!(p.trace_events, ["bpf_ref"]);
        let trace = p.expect.trace.as_ref().unwrap();
        assert_eq!(trace[0].fields, [("kfunc".into(), "bpf_task_from_pid".into()), ("held".into(), "1".into())]);
        assert!(trace[1].matches("bpf_ref_table: prog_id=3 entries=0"));

        let per_variant = parse(&with_program(
            "    program: p\n    type: tc\n    sysctls: { kernel.a: 1, kernel.b: x }\n    sysctls_on: { v: { kernel.a: 2 } }\n",
        ))
        .unwrap();
        let p = &per_variant.programs[0];
        assert_eq!(
            p.sysctls_for("v").into_iter().collect::<Vec<_>>(),
            [("kernel.a".into(), "2".into()), ("kernel.b".into(), "x".into())]
        );
        assert_eq!(p.sysctls_for("w").get("kernel.a").map(String::as_str), Some("1"));
        assert_eq!(p.variants_named().collect::<Vec<_>>(), ["v"]);
        let e = error(&with_program("    program: p\n    type: tc\n    sysctls: { /etc/passwd: 1 }\n"));
        assert!(e.starts_with("scenarios/t.yaml:7:16: sysctls: \"/etc/passwd\""), "{e}");
        let e = error(&with_program("    program: p\n    type: tc\n    trace: { events: [../x] }\n"));
        assert!(e.starts_with("scenarios/t.yaml:7:23: trace.events"), "{e}");
        let e = error(&with_program("    program: p\n    type: tc\n    expect: { trace: [\"a: b=c\"] }\n"));
        assert!(e.contains("expect.trace: needs `trace"), "{e}");
        let e = error(&with_program(
            "    program: p\n    type: tc\n    trace: { events: [bpf_ref] }\n    expect: { trace: [\"a: nokey\"] }\n",
        ));
        assert!(e.contains("is not `event: key=value ...`"), "{e}");
        let e = error(&with_program("    program: p\n    type: tc\n    expect: { run_error: ECANCELLED }\n"));
        assert!(e.starts_with("scenarios/t.yaml:7:"), "{e}");
    }

    #[test]
    fn thresholds_name_known_metrics_and_a_bound() {
        let program = "  - { object: simple, program: p, type: tc }\n";
        let s = parse(&format!(
            "name: t\ndescription: d\nprograms:\n{program}thresholds:\n  run: {{ relative: 0.02 }}\n  \
             verified_insns: {{ absolute: 0 }}\n  prog_info.exc_desc_bytes: {{ relative: 0.1, absolute: 8 }}\n"
        ))
        .unwrap();
        assert_eq!(s.thresholds["run"], Threshold { relative: Some(0.02), absolute: None });
        assert_eq!(s.thresholds["verified_insns"].allowed(100.0), 0.0);
        let both = s.thresholds["prog_info.exc_desc_bytes"];
        assert_eq!((both.allowed(24.0), both.allowed(200.0)), (8.0, 20.0));
        let cases = [
            ("  median: { relative: 0.02 }\n", "6:3: thresholds: unknown metric \"median\""),
            ("  run: {}\n", "6:8: thresholds.run: give `relative`"),
            ("  run: { relative: -1 }\n", "6:8: thresholds.run: bounds must be"),
            ("  run: { relativ: 1 }\n", "6:10: unknown field `relativ`"),
        ];
        for (entry, expected) in cases {
            let e = error(&format!("name: t\ndescription: d\nprograms:\n{program}thresholds:\n{entry}"));
            assert!(e.starts_with(&format!("scenarios/t.yaml:{expected}")), "{e}");
        }
        assert!(parse(&format!("name: t\ndescription: d\nprograms:\n{program}")).unwrap().thresholds.is_empty());
    }

    #[test]
    fn unknown_top_level_key_is_named_with_its_position() {
        let e = error("name: t\ndescription: d\nvarients: [baseline]\nprograms: []\n");
        assert!(e.starts_with("scenarios/t.yaml:3:1: "), "{e}");
        assert!(e.contains("unknown field `varients`"), "{e}");
    }

    #[test]
    fn unknown_program_key_is_named_with_its_position() {
        let e = error(&with_program("    program: p\n    type: tc\n    repat: 5\n"));
        assert!(e.starts_with("scenarios/t.yaml:7:5: "), "{e}");
        assert!(e.contains("unknown field `repat`"), "{e}");
    }

    #[test]
    fn wrong_type_points_at_the_value() {
        let e = error(&with_program("    program: p\n    type: tc\n    repeat: lots\n"));
        assert!(e.starts_with("scenarios/t.yaml:7:13: "), "{e}");
        assert!(e.contains("u32"), "{e}");
        let e = error(&with_program("    program: p\n    type: xdp\n"));
        assert!(e.starts_with("scenarios/t.yaml:6:11: "), "{e}");
    }

    #[test]
    fn duplicate_id_names_both_lines() {
        // The second program's id defaults to its program name, which collides with the first id.
        let e = error(&with_program(
            "    id: a\n    program: p\n    type: tc\n  - object: simple\n    program: a\n    type: tc\n",
        ));
        assert!(e.starts_with("scenarios/t.yaml:8:5: "), "{e}");
        assert!(e.contains("duplicate program id \"a\" (first used on line 5)"), "{e}");
    }

    #[test]
    fn missing_object_source_names_the_expected_path() {
        let dir = bpf_dir();
        let text = "name: t\ndescription: d\nprograms:\n  - { object: nosuch, program: p, type: tc }\n";
        let e = Scenario::parse(text, Path::new("t.yaml"), dir.path()).unwrap_err().to_string();
        assert!(e.starts_with("t.yaml:4:15: "), "{e}");
        assert!(e.contains(&dir.path().join("nosuch.bpf.c").display().to_string()), "{e}");
    }

    #[test]
    fn repeat_on_a_syscall_program_is_rejected() {
        let e = error(&with_program("    program: p\n    type: syscall\n    repeat: 10\n"));
        assert!(e.starts_with("scenarios/t.yaml:7:13: repeat: 10 on a syscall program"), "{e}");
        // A repeat of 1 states what the kernel does anyway.
        assert_eq!(
            parse(&with_program("    program: p\n    type: syscall\n    repeat: 1\n")).unwrap().programs[0].repeat,
            1
        );
    }

    #[test]
    fn message_needs_a_reject_verdict_and_retval_an_accept_verdict() {
        let e = error(&with_program("    program: p\n    type: tc\n    expect: { message: Unreleased }\n"));
        assert!(e.starts_with("scenarios/t.yaml:7:24: expect.message"), "{e}");
        let e =
            error(&with_program("    program: p\n    type: tc\n    expect:\n      verdict: reject\n      retval: 0\n"));
        assert!(e.starts_with("scenarios/t.yaml:9:15: expect.retval"), "{e}");
    }

    #[test]
    fn other_semantic_errors_point_at_the_offending_value() {
        let program = "  - { object: simple, program: p, type: tc }\n";
        let cases = [
            (format!("name: Bad/Name\ndescription: d\nprograms:\n{program}"), "1:7: name \"Bad/Name\""),
            ("name: t\ndescription: d\nprograms: []\n".to_string(), "3:11: programs: empty list"),
            (format!("name: t\ndescription: d\nvariants: []\nprograms:\n{program}"), "3:11: variants: empty list"),
            (
                format!("name: t\ndescription: d\nvariants: [a, a]\nprograms:\n{program}"),
                "3:15: variants: \"a\" is listed twice",
            ),
            (
                format!("name: t\ndescription: d\ntimeouts: {{ run: 0 }}\nprograms:\n{program}"),
                "3:18: timeouts.run: must be at least 1",
            ),
            (
                format!("name: t\ndescription: d\ndefaults: {{ samples: 0 }}\nprograms:\n{program}"),
                "3:22: defaults.samples",
            ),
            (with_program("    program: p\n    type: tc\n    samples: 0\n"), "7:14: samples: must be at least 1"),
            (
                with_program("    program: p\n    type: tc\n  - { object: ../x, program: q, type: tc }\n"),
                "7:15: object \"../x\"",
            ),
        ];
        for (text, expected) in cases {
            let e = error(&text);
            assert!(e.starts_with(&format!("scenarios/t.yaml:{expected}")), "{e}");
        }
    }

    #[test]
    fn upstream_files_stand_alone_or_beside_programs() {
        let s = parse("name: t\ndescription: d\nupstream: [exceptions_fail.c, cpumask_success.c]\n").unwrap();
        assert_eq!((s.upstream.len(), s.programs.len()), (2, 0));
        let both = format!("{}upstream: [exceptions.c]\n", with_program("    program: p\n    type: tc\n"));
        assert_eq!(parse(&both).unwrap().upstream, ["exceptions.c"]);
        let pattern = parse("name: t\ndescription: d\nupstream: [\"verifier_*.c\", \"*.c\"]\n").unwrap();
        assert_eq!(pattern.upstream, ["verifier_*.c", "*.c"]);
        let cases = [
            ("upstream: [../x.c]\n", "3:12: upstream: \"../x.c\" is not a file name"),
            ("upstream: [exceptions]\n", "3:12: upstream: \"exceptions\""),
            ("upstream: [a.c, a.c]\n", "3:17: upstream: \"a.c\" is listed twice"),
            ("upstream: [\"*\"]\n", "3:12: upstream: \"*\" is not a file name"),
            ("upstream: []\n", "3:11: upstream: empty list"),
            ("", "no programs: give `programs` or `upstream`"),
            ("programs:\n  - { object: simple, program: p, type: any }\n", "4:5: type: any is for upstream programs"),
        ];
        for (rest, expected) in cases {
            let e = error(&format!("name: t\ndescription: d\n{rest}"));
            assert!(e.contains(expected), "{e}");
        }
    }

    #[test]
    fn unreadable_file_names_the_file_and_the_os_error() {
        let dir = bpf_dir();
        let path = dir.path().join("absent.yaml");
        let e = Scenario::load(&path, dir.path()).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: cannot read the scenario: ", path.display())), "{e}");
        assert!(e.contains("No such file or directory"), "{e}");
    }

    #[test]
    fn load_reads_the_file() {
        let dir = bpf_dir();
        let path = dir.path().join("s.yaml");
        std::fs::write(&path, "name: s\ndescription: d\nprograms:\n  - { object: empty, program: e, type: tc }\n")
            .unwrap();
        let s = Scenario::load(&path, dir.path()).unwrap();
        assert_eq!((s.path, s.name), (path, "s".to_string()));
    }

    #[test]
    fn per_variant_expectations_and_task_reference_checks() {
        let yaml = [
            "name: t",
            "description: d",
            "programs:",
            "  - id: leak",
            "    object: simple",
            "    program: task_ref_tc",
            "    type: tc",
            "    checks: [task_refs]",
            "    expect: { retval: 7 }",
            "    expect_on:",
            "      baseline: { task_refs: leaked }",
            "      other: { verdict: reject, message: m }",
        ];
        let s = parse(&yaml.join("\n")).unwrap();
        let p = &s.programs[0];
        assert!(p.count_task_refs);
        assert_eq!(p.expectation_for("fixed").task_refs, Some(Balance::Balanced), "counted means balanced by default");
        assert_eq!(p.expectation_for("fixed").retval, Some(7));
        assert_eq!(p.expectation_for("baseline").task_refs, Some(Balance::Leaked));
        assert_eq!(p.expectation_for("other").verdict, ExpectedVerdict::Reject);
        assert_eq!(p.expectation_for("other").task_refs, None);
    }

    #[test]
    fn task_refs_expectation_needs_the_check() {
        let yaml = [
            "name: t",
            "description: d",
            "programs:",
            "  - object: simple",
            "    program: task_ref_tc",
            "    type: tc",
            "    expect: { task_refs: leaked }",
        ];
        let err = parse(&yaml.join("\n")).unwrap_err().to_string();
        assert!(err.contains(":7:") && err.contains("checks: [task_refs]"), "{err}");
        let err = parse(&yaml.join("\n").replace("task_refs: leaked", "cpumasks: leaked")).unwrap_err().to_string();
        assert!(err.contains(":7:") && err.contains("checks: [cpumasks]"), "{err}");
        let counted = yaml.join("\n").replace("    expect: { task_refs: leaked }", "    checks: [cpumasks]");
        let p = &parse(&counted).unwrap().programs[0];
        assert!(p.count_cpumasks && !p.count_task_refs);
        assert_eq!(p.expect.cpumasks, Some(Balance::Balanced), "counted means balanced by default");
    }

    #[test]
    fn allowed_kernel_messages_and_provoked_faults_are_read_and_checked() {
        let s = parse(&format!(
            "allow_kernel_messages: [\"at drivers/misc/lkdtm/bugs.c\"]\nprovoke: [WARNING, READ_AFTER_FREE]\n{}",
            with_program("    program: task_ref_tc\n    type: tc\n")
        ))
        .unwrap();
        assert_eq!(s.provoke, ["WARNING", "READ_AFTER_FREE"]);
        assert!(s.allows_kernel_message("WARNING: CPU: 0 PID: 1 at drivers/misc/lkdtm/bugs.c:350 lkdtm_WARNING"));
        assert!(!s.allows_kernel_message("BUG: KASAN: slab-use-after-free in lkdtm_READ_AFTER_FREE"));

        let program = with_program("    program: p\n    type: tc\n");
        assert_eq!(
            error(&format!("allow_kernel_messages: [\"ok\", \" \"]\n{program}")),
            "scenarios/t.yaml:1:31: allow_kernel_messages: an empty pattern would allow every warning"
        );
        assert!(error(&format!("provoke: [warning]\n{program}"))
            .starts_with("scenarios/t.yaml:1:11: provoke: \"warning\" is not an LKDTM crash type"));
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        const VALID: &str = "name: t\n\
                             description: d\n\
                             variants: [baseline]\n\
                             timeouts: { boot: 60, run: 30 }\n\
                             allow_kernel_messages: [\"lkdtm\"]\n\
                             thresholds:\n  run: { relative: 0.02 }\n\
                             programs:\n\
                             \x20 - object: simple\n\
                             \x20   program: task_ref_tc\n\
                             \x20   type: tc\n\
                             \x20   checks: [task_refs]\n\
                             \x20   sysctls: { kernel.bpf_stats_enabled: 1 }\n\
                             \x20   trace: { events: [bpf_ref] }\n\
                             \x20   expect: { retval: 0, task_refs: balanced, trace: [\"e: a=1\"] }\n\
                             \x20   expect_on: { baseline: { verdict: reject, message: m } }\n";

        #[test]
        fn the_seed_is_valid() {
            parse(VALID).unwrap();
        }

        /// Every error must point into the file: a position beyond it would mislead the reader.
        fn check(text: &str) -> Result<(), TestCaseError> {
            if let Err(err) = parse(text) {
                if let Some((line, _)) = err.position {
                    prop_assert!(line as usize <= text.lines().count() + 1, "{err} for {text:?}");
                }
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn arbitrary_text_never_panics(text in any::<String>()) {
                check(&text)?;
            }

            // Mutations of a valid file reach far deeper than random text: every key, value
            // type and validation is one edit away.
            #[test]
            fn edits_of_a_valid_file_never_panic(
                edits in proptest::collection::vec((any::<prop::sample::Index>(), 0..3u8, "[ -~\n]{0,6}"), 1..4)
            ) {
                let mut text = VALID.to_string();
                for (at, kind, insert) in edits {
                    let mut at = at.index(text.len() + 1);
                    while !text.is_char_boundary(at) { at -= 1; }
                    match kind {
                        0 => text.insert_str(at, &insert),
                        1 => { let end = (at + insert.len()).min(text.len()); if text.is_char_boundary(end) { text.replace_range(at..end, ""); } }
                        _ => { let end = (at + insert.len()).min(text.len()); if text.is_char_boundary(end) { text.replace_range(at..end, &insert); } }
                    }
                }
                check(&text)?;
            }
        }
    }
}
