//! Judging a scenario's program: what the guest observed against what the scenario expects of
//! it on a variant (verdict and message, return value, run errors, leaks, traces, prog_info).

use crate::host::fsutil::last_lines;
use crate::results::schema::{Check, ProgramResult, RefCount, StopResult, Summary};
use crate::scenario::{Balance, Expectation, ExpectedVerdict, ProgramSpec, RunError, StopSpec, TracePattern};
use crate::verdict::observed::{ObservedProgram, Ran};
use bpfh_protocol::{ObjectCount, ProgType, Verdict, WATCHDOG_SYSCTL};

fn check(what: &str, ok: bool, detail: String) -> Check {
    Check::new(what, ok, detail)
}

/// Joins what the guest reported about `spec` with what the scenario expects of it on `variant`.
pub fn judge(spec: &ProgramSpec, variant: &str, fixed_overhead_reference: bool, o: &ObservedProgram) -> ProgramResult {
    let ran = o.ran.clone().unwrap_or_default();
    let mut result = ProgramResult {
        id: spec.id.clone(),
        object: spec.object.clone(),
        program: spec.program.clone(),
        prog_type: spec.prog_type,
        fixed_overhead_reference,
        verdict: o.verdict.clone(),
        load_info: o.load_info.clone(),
        retval: o.ran.as_ref().map(|r| r.retval),
        timing: ran.timing,
        repeat: o.ran.as_ref().map(|r| r.repeat),
        samples: ran.samples,
        summary: None,
        task_refs: o.task_refs,
        cpumasks: o.cpumasks,
        run_errno: ran.run_errno,
        failed_runs: ran.failed_runs,
        trace: o.trace.clone(),
        checks: Vec::new(),
        skipped: None,
        upstream: None,
        differs_from: None,
        stop: None,
    };
    result.summary = Summary::of(&result.samples);
    result.stop = spec.stop.as_ref().map(|stop| stop_result(spec, stop, variant, o.ran.as_ref(), &result));
    let mut errors = o.errors.clone();
    // Stopped runs end wherever the deadline finds them: their return values may differ.
    if ran.retval_mismatch && !(result.stop.is_some() && result.stopped()) {
        errors.insert(0, "runs returned different values".to_string());
    }

    let expect = match &result.stop {
        Some(stop) if stop.not_stoppable.is_none() => spec.expectation_when_stopped(variant),
        _ => spec.expectation_for(variant).clone(),
    };
    result.checks.push(verdict_check(result.verdict.as_ref(), &expect));
    if expect.verdict == ExpectedVerdict::Accept && matches!(result.verdict, Some(Verdict::Accepted)) {
        result.checks.extend(run_checks(spec, &expect, &result));
        if result.stop.as_ref().is_some_and(|s| s.not_stoppable.is_none()) && result.retval.is_some() {
            result.checks.push(every_run_stopped(test_runs(spec, variant), result.failed_runs));
        }
    }
    for error in errors {
        result.checks.push(check("guest", false, error));
    }
    result
}

/// Whether `variant` can stop the program (its kernel has the watchdog and the scenario does
/// not say otherwise) and, for the samples it stopped, the time from the deadline to the test
/// run's return.
fn stop_result(
    spec: &ProgramSpec,
    stop: &StopSpec,
    variant: &str,
    ran: Option<&Ran>,
    result: &ProgramResult,
) -> StopResult {
    let watchdog = ran.and_then(|r| r.watchdog);
    let not_stoppable = match watchdog {
        Some(false) => Some(format!("the kernel has no {WATCHDOG_SYSCTL}: nothing stops a program")),
        _ => stop.not_stoppable.get(variant).cloned(),
    };
    // Only when every run was stopped is every system call a stop's.
    let latency = match ran {
        Some(ran) if result.stopped() && result.failed_runs == test_runs(spec, variant) => {
            ran.call_ns.iter().map(|ns| ns.saturating_sub(stop.budget_ns)).collect()
        }
        _ => Vec::new(),
    };
    StopResult { budget_ns: stop.budget_ns, holds: stop.holds.clone(), not_stoppable, latency }
}

/// The test runs of a measured program: the warm-up run, the traced run where the variant's
/// expectation has a trace, and the samples.
fn test_runs(spec: &ProgramSpec, variant: &str) -> u32 {
    1 + u32::from(spec.expectation_for(variant).trace.is_some()) + spec.samples
}

/// The stop contract stops every run past its budget, not only some.
fn every_run_stopped(runs: u32, failed: u32) -> Check {
    check("stop", failed == runs, format!("{failed} of {runs} test runs stopped"))
}

/// The verifier's verdict against the expected one (and the rejection's message).
fn verdict_check(got: Option<&Verdict>, expect: &Expectation) -> Check {
    match (got, expect.verdict) {
        (None, _) => check("verdict", false, "no verdict reported".into()),
        (Some(Verdict::Accepted), ExpectedVerdict::Accept) => check("verdict", true, "accepted, as expected".into()),
        (Some(Verdict::Rejected { errno, log }), ExpectedVerdict::Accept) => check(
            "verdict",
            false,
            format!("rejected (errno {errno}), expected accept; verifier log ends with:\n{}", log_tail(log)),
        ),
        (Some(Verdict::Accepted), ExpectedVerdict::Reject) => {
            check("verdict", false, "accepted, expected reject".into())
        }
        (Some(Verdict::Rejected { log, .. }), ExpectedVerdict::Reject) => match &expect.message {
            Some(msg) if !log.contains(msg.as_str()) => check(
                "verdict",
                false,
                format!("rejected, but the log lacks {msg:?}; it ends with:\n{}", log_tail(log)),
            ),
            Some(msg) => check("verdict", true, format!("rejected with {msg:?}, as expected")),
            None => check("verdict", true, "rejected, as expected".into()),
        },
    }
}

/// What an accepted program that was expected to load must also have done: its prog_info
/// fields, its runs (errors, trace, samples, return value) and what it left behind.
fn run_checks(spec: &ProgramSpec, expect: &Expectation, result: &ProgramResult) -> Vec<Check> {
    let mut checks = Vec::new();
    for (field, want) in &expect.prog_info {
        let got = result.load_info.as_ref().and_then(|i| i.extra.get(field));
        checks.push(check(
            "prog_info",
            got == Some(want),
            match got {
                Some(got) => format!("bpf_prog_info.{field} = {got}, expected {want}"),
                None => format!("bpf_prog_info.{field} not reported (does the variant declare it?)"),
            },
        ));
    }
    if result.retval.is_some() {
        checks.push(run_error_check(expect.run_error, result.run_errno, result.failed_runs));
    }
    if let (Some(want), Some(got)) = (&expect.trace, &result.trace) {
        checks.push(trace_check(want, got));
    } else if expect.trace.is_some() {
        checks.push(check("trace", false, "no trace was reported".into()));
    }
    // A tc run the kernel fails has no duration: only expected failures may lack samples.
    let sampled_failures = expect.run_error.is_some() && spec.prog_type == ProgType::Tc;
    if result.samples.len() != spec.samples as usize && !sampled_failures {
        checks.push(check(
            "samples",
            false,
            format!("{} samples reported, {} planned", result.samples.len(), spec.samples),
        ));
    }
    if let (Some(want), got) = (expect.retval, result.retval) {
        let ok = got == Some(want);
        checks.push(check("retval", ok, format!("returned {got:?}, expected {want}")));
    }
    checks.extend(expect.task_refs.map(|want| task_refs_check(want, result.task_refs)));
    checks.extend(expect.cpumasks.map(|want| cpumasks_check(want, result.cpumasks)));
    checks
}

fn task_refs_check(want: Balance, got: Option<RefCount>) -> Check {
    match (want, got) {
        (_, None) => check("task_refs", false, "pid 1's task references were not counted".into()),
        (Balance::Balanced, Some(RefCount { before, after })) => check(
            "task_refs",
            after == before,
            format!("pid 1 task references {before} -> {after}, expected no change"),
        ),
        (Balance::Leaked, Some(RefCount { before, after })) => {
            check("task_refs", after > before, format!("pid 1 task references {before} -> {after}, expected a leak"))
        }
    }
}

fn cpumasks_check(want: Balance, got: Option<ObjectCount>) -> Check {
    let Some(ObjectCount { acquired, released }) = got else {
        return check("cpumasks", false, "cpumask references were not counted".into());
    };
    let (ok, expected) = match want {
        Balance::Balanced => (acquired == released, "as many dropped as taken"),
        Balance::Leaked => (acquired > released, "a leak"),
    };
    check(
        "cpumasks",
        ok,
        format!("warm-up run took {acquired} cpumask references, dropped {released}; expected {expected}"),
    )
}

fn run_error_check(want: Option<RunError>, got: Option<i32>, failed: u32) -> Check {
    let name = |errno: i32| std::io::Error::from_raw_os_error(errno).to_string();
    match (want, got) {
        (None, None) => check("run_error", true, "every test run succeeded".into()),
        (None, Some(errno)) => {
            check("run_error", false, format!("{failed} test runs failed: errno {errno} ({})", name(errno)))
        }
        (Some(want), None) => check("run_error", false, format!("every test run succeeded, expected {want:?}")),
        (Some(want), Some(errno)) => check(
            "run_error",
            errno == want.errno(),
            format!("{failed} test runs failed with errno {errno} ({}), expected {want:?}", name(errno)),
        ),
    }
}

/// The traced run's events must match the expected patterns one for one, in order.
fn trace_check(want: &[TracePattern], got: &[String]) -> Check {
    for (index, pattern) in want.iter().enumerate() {
        match got.get(index) {
            Some(line) if pattern.matches(line) => {}
            Some(line) => {
                return check(
                    "trace",
                    false,
                    format!("event {}: expected `{pattern}`, got `{line}`\n{}", index + 1, numbered(got)),
                )
            }
            None => {
                return check(
                    "trace",
                    false,
                    format!("{} events, expected {}; missing `{pattern}`\n{}", got.len(), want.len(), numbered(got)),
                )
            }
        }
    }
    if got.len() > want.len() {
        return check(
            "trace",
            false,
            format!("{} events, expected {}; first extra: `{}`", got.len(), want.len(), got[want.len()]),
        );
    }
    check("trace", true, format!("{} events in the expected order", got.len()))
}

fn numbered(lines: &[String]) -> String {
    lines.iter().enumerate().map(|(i, l)| format!("  {:>3}  {l}", i + 1)).collect::<Vec<_>>().join("\n")
}

/// How much of a verifier log an unexpected verdict shows.
const LOG_TAIL_LINES: usize = 8;

fn log_tail(log: &str) -> String {
    last_lines(log, LOG_TAIL_LINES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::observed::Observed;
    use bpfh_protocol::{LoadInfo, Record, Timing};

    fn evaluate(spec: &ProgramSpec, variant: &str, fixed: bool, records: &[Record]) -> ProgramResult {
        judge(spec, variant, fixed, Observed::fold(records).program(&spec.id))
    }

    fn spec(verdict: ExpectedVerdict, message: Option<&str>, retval: Option<u32>) -> ProgramSpec {
        ProgramSpec {
            id: "p".into(),
            object: "o".into(),
            program: "p".into(),
            prog_type: ProgType::Tc,
            repeat: 10,
            packet_bytes: None,
            samples: 2,
            count_task_refs: false,
            count_cpumasks: false,
            sysctls: Default::default(),
            sysctls_on: Default::default(),
            trace_events: Vec::new(),
            expect: Expectation { verdict, message: message.map(str::to_string), retval, ..Expectation::default() },
            expect_on: Default::default(),
            stop: None,
            auxiliary: Vec::new(),
            line: 1,
        }
    }

    fn ran(samples: Vec<u64>, retval: u32) -> Record {
        Record::Ran {
            id: "p".into(),
            retval,
            retval_mismatch: false,
            timing: Timing::TestRunDuration,
            repeat: 10,
            samples,
            run_errno: None,
            failed_runs: 0,
            watchdog: None,
            call_ns: Vec::new(),
        }
    }

    fn loaded(verdict: Verdict) -> Record {
        Record::Loaded { id: "p".into(), verdict, info: None }
    }

    #[test]
    fn accepted_program_with_expected_retval_passes() {
        let r = evaluate(
            &spec(ExpectedVerdict::Accept, None, Some(0)),
            "v",
            false,
            &[loaded(Verdict::Accepted), ran(vec![83, 83], 0)],
        );
        assert!(r.passed(), "{:?}", r.checks);
        assert_eq!(r.summary.unwrap().median, 83.0);
    }

    #[test]
    fn wrong_retval_and_unexpected_rejection_fail() {
        let r = evaluate(
            &spec(ExpectedVerdict::Accept, None, Some(0)),
            "v",
            false,
            &[loaded(Verdict::Accepted), ran(vec![83, 83], 1)],
        );
        assert!(!r.passed());
        let rejected = Verdict::Rejected { errno: 22, log: "Unreleased reference id=2".into() };
        let r = evaluate(&spec(ExpectedVerdict::Accept, None, None), "v", false, &[loaded(rejected)]);
        assert!(!r.passed());
        // Icount samples may differ where a timer interrupt lands in one batch and not another:
        // that is the guest's own work, reported (min/max), not a failure.
        let r = evaluate(
            &spec(ExpectedVerdict::Accept, None, None),
            "v",
            false,
            &[loaded(Verdict::Accepted), ran(vec![83, 84], 0)],
        );
        assert!(r.passed());
        assert_eq!((r.summary.unwrap().min, r.summary.unwrap().max), (83, 84));
    }

    #[test]
    fn expected_rejection_needs_the_message() {
        let rejected =
            || loaded(Verdict::Rejected { errno: 22, log: "...\nUnreleased reference id=2 alloc_insn=3\n".into() });
        let ok =
            evaluate(&spec(ExpectedVerdict::Reject, Some("Unreleased reference"), None), "v", false, &[rejected()]);
        assert!(ok.passed(), "{:?}", ok.checks);
        let wrong =
            evaluate(&spec(ExpectedVerdict::Reject, Some("invalid mem access"), None), "v", false, &[rejected()]);
        assert!(!wrong.passed());
        let missing = evaluate(&spec(ExpectedVerdict::Reject, None, None), "v", false, &[]);
        assert!(!missing.passed());
    }

    /// The runs of a syscall program under a stop budget: samples, and system calls of 3500 and 1500.
    fn stop_run(watchdog: bool, run_errno: Option<i32>, retval_mismatch: bool) -> Record {
        Record::Ran {
            id: "p".into(),
            retval: 7,
            retval_mismatch,
            timing: Timing::BpfStats,
            repeat: 1,
            samples: vec![1100, 1200],
            run_errno,
            failed_runs: u32::from(run_errno.is_some()) * 3,
            watchdog: Some(watchdog),
            call_ns: vec![3500, 1500],
        }
    }

    #[test]
    fn a_stop_is_expected_where_the_kernel_has_a_watchdog_and_its_latency_measured() {
        let mut s = spec(ExpectedVerdict::Accept, None, Some(99));
        s.prog_type = ProgType::Syscall;
        s.stop = Some(StopSpec { budget_ns: 1000, holds: vec!["task".into()], not_stoppable: Default::default() });
        let stopped = evaluate(&s, "v", false, &[loaded(Verdict::Accepted), stop_run(true, Some(125), true)]);
        assert!(stopped.passed(), "a stopped run's return values may differ: {:?}", stopped.checks);
        let stop = stopped.stop.as_ref().unwrap();
        assert_eq!((stop.latency.as_slice(), stop.not_stoppable.as_ref()), ([2500, 500].as_slice(), None));

        // A stop of some runs only fails the contract, and has no latency: some calls ran on.
        let mut partial = stop_run(true, Some(125), false);
        if let Record::Ran { failed_runs, .. } = &mut partial {
            *failed_runs = 2;
        }
        let partial = evaluate(&s, "v", false, &[loaded(Verdict::Accepted), partial]);
        assert!(partial.checks.iter().any(|c| c.what == "stop" && !c.ok), "{:?}", partial.checks);
        assert!(partial.stop.unwrap().latency.is_empty());

        // A watchdog that did not stop the program fails the contract.
        let missed = evaluate(&s, "v", false, &[loaded(Verdict::Accepted), stop_run(true, None, false)]);
        assert!(missed.checks.iter().any(|c| c.what == "run_error" && !c.ok), "{:?}", missed.checks);
        assert!(missed.stop.unwrap().latency.is_empty());

        // Without the watchdog the run to the end is expected, return value included.
        let no_watchdog = evaluate(&s, "v", false, &[loaded(Verdict::Accepted), stop_run(false, None, false)]);
        let reason = no_watchdog.stop.as_ref().unwrap().not_stoppable.clone().unwrap();
        assert!(reason.contains("no kernel.bpf_watchdog_budget_ns"), "{reason}");
        assert!(no_watchdog.checks.iter().any(|c| c.what == "retval" && !c.ok), "returned 7, expected 99");

        // Declared not stoppable: must run to its end although the budget is set.
        s.stop.as_mut().unwrap().not_stoppable.insert("v".into(), "no checkpoint at may_goto".into());
        let declared = evaluate(&s, "v", false, &[loaded(Verdict::Accepted), stop_run(true, Some(125), false)]);
        assert_eq!(declared.stop.as_ref().unwrap().not_stoppable.as_deref(), Some("no checkpoint at may_goto"));
        assert!(declared.checks.iter().any(|c| c.what == "run_error" && !c.ok), "{:?}", declared.checks);
    }

    #[test]
    fn cancelled_runs_pass_only_when_expected() {
        let cancelled = Record::Ran {
            id: "p".into(),
            retval: 0,
            retval_mismatch: false,
            timing: Timing::TestRunDuration,
            repeat: 1,
            samples: vec![],
            run_errno: Some(125),
            failed_runs: 3,
            watchdog: None,
            call_ns: Vec::new(),
        };
        let mut s = spec(ExpectedVerdict::Accept, None, None);
        let r = evaluate(&s, "v", false, &[loaded(Verdict::Accepted), cancelled.clone()]);
        assert!(r.checks.iter().any(|c| c.what == "run_error" && !c.ok), "{:?}", r.checks);
        s.expect.run_error = Some(RunError::ECANCELED);
        let r = evaluate(&s, "v", false, &[loaded(Verdict::Accepted), cancelled]);
        assert!(r.passed(), "{:?}", r.checks);
        let r = evaluate(&s, "v", false, &[loaded(Verdict::Accepted), ran(vec![5, 5], 0)]);
        assert!(!r.passed(), "a run that was not cancelled must fail the expectation");
    }

    #[test]
    fn traces_must_match_in_order_and_length() {
        let pats: Vec<TracePattern> = ["bpf_ref_acquire: held=1", "bpf_ref_table: entries=0"]
            .iter()
            .map(|p| TracePattern::parse(p).unwrap())
            .collect();
        let good = ["bpf_ref_acquire: prog_id=5 obj=0xffff held=1 tracked", "bpf_ref_table: prog_id=5 entries=0"]
            .map(String::from);
        assert!(trace_check(&pats, &good).ok);
        assert!(!trace_check(&pats, &good[..1]).ok);
        let swapped = [good[1].clone(), good[0].clone()];
        assert!(!trace_check(&pats, &swapped).ok);
        let extra = [good[0].clone(), good[1].clone(), good[1].clone()];
        assert!(!trace_check(&pats, &extra).ok);
        let held2 = ["bpf_ref_acquire: prog_id=5 held=2".to_string(), good[1].clone()];
        assert!(!trace_check(&pats, &held2).ok);
    }

    #[test]
    fn declared_prog_info_fields_are_compared() {
        let mut s = spec(ExpectedVerdict::Accept, None, None);
        s.expect.prog_info.insert("max_acquired_refs".into(), 2);
        let info = LoadInfo { extra: [("max_acquired_refs".to_string(), 2)].into(), ..LoadInfo::default() };
        let load = Record::Loaded { id: "p".into(), verdict: Verdict::Accepted, info: Some(info) };
        let r = evaluate(&s, "v", false, &[load, ran(vec![5, 5], 0)]);
        assert!(r.passed(), "{:?}", r.checks);
        let r = evaluate(&s, "v", false, &[loaded(Verdict::Accepted), ran(vec![5, 5], 0)]);
        assert!(r.checks.iter().any(|c| c.what == "prog_info" && !c.ok));
    }

    #[test]
    fn results_serialise_and_read_back() {
        let r = evaluate(
            &spec(ExpectedVerdict::Accept, None, Some(0)),
            "v",
            true,
            &[loaded(Verdict::Accepted), ran(vec![5, 5], 0)],
        );
        let json = serde_json::to_string(&r).unwrap();
        let back: ProgramResult = serde_json::from_str(&json).unwrap();
        assert_eq!(back.samples, vec![5, 5]);
        assert!(back.fixed_overhead_reference);
        assert_eq!(back.checks, r.checks);
    }
}
