//! Judging an upstream selftest case as `test_loader.c` would: the verdict, the `__msg`
//! substrings in order, the `__retval` of one run; and a variant's declared difference, which
//! must happen instead.

use crate::host::fsutil::last_lines;
use crate::kernel::variant::Difference;
use crate::results::schema::{Check, Origin, ProgramResult, Summary};
use crate::scenario::ExpectedVerdict;
use crate::selftests::annotations::{Case, XlatedPattern, POINTER_VALUE};
use crate::selftests::disasm;
use crate::selftests::options;
use crate::verdict::observed::ObservedProgram;
use bpfh_protocol::Verdict;

/// How much of a verifier log an unexpected rejection shows.
const LOG_TAIL_LINES: usize = 4;

fn run_errno(o: &ObservedProgram) -> Option<i32> {
    o.ran.as_ref().and_then(|r| r.run_errno)
}

/// One `__msg` as test_loader.c's `compile_regex` reads it: verbatim text, with `{{...}}` parts
/// that are POSIX extended regular expressions, matched with REG_NEWLINE (`.` and `^`/`$` stop
/// at line ends; unlike POSIX, a `[^...]` class can still match a newline here).
enum Pattern<'a> {
    Substring(&'a str),
    Regex(regex::Regex),
}

fn pattern(msg: &str) -> Result<Pattern<'_>, String> {
    if !msg.contains("{{") {
        return Ok(Pattern::Substring(msg));
    }
    let mut expr = String::new();
    let mut rest = msg;
    while let Some(open) = rest.find("{{") {
        expr.push_str(&regex::escape(&rest[..open]));
        let inner = &rest[open + 2..];
        let close = inner.find("}}").ok_or_else(|| format!("__msg({msg:?}): a {{{{ without its }}}}"))?;
        expr.push_str(&inner[..close]);
        rest = &inner[close + 2..];
    }
    expr.push_str(&regex::escape(rest));
    regex::RegexBuilder::new(&expr)
        .multi_line(true)
        .build()
        .map(Pattern::Regex)
        .map_err(|e| format!("__msg({msg:?}): not a regular expression: {e}"))
}

/// test_loader.c's `validate_msgs`: each message found after the previous one's match. Returns
/// the first message not found (or not a valid pattern), with why.
fn first_missing(log: &str, msgs: &[String]) -> Option<String> {
    first_unmatched("log", log, msgs.iter().map(|m| (m.as_str(), false)))
}

/// `validate_msgs` over `text` (named `what`): each pattern matched after the previous match
/// and, when it says so, on the line right after the previous match's line.
fn first_unmatched<'a>(what: &str, text: &str, patterns: impl IntoIterator<Item = (&'a str, bool)>) -> Option<String> {
    let mut at = 0;
    let mut previous_line: Option<usize> = None;
    for (msg, on_next_line) in patterns {
        let rest = &text[at..];
        let found = match pattern(msg) {
            Ok(Pattern::Substring(s)) => rest.find(s).map(|start| (start, start + s.len())),
            Ok(Pattern::Regex(re)) => re.find(rest).map(|m| (m.start(), m.end())),
            Err(why) => return Some(why),
        };
        let Some((start, end)) = found else {
            return Some(format!("the {what} lacks {msg:?} (after the patterns before it)"));
        };
        let line = text[..at + start].matches('\n').count();
        if let (true, Some(previous)) = (on_next_line, previous_line) {
            if line != previous + 1 {
                return Some(format!("the {what} has {msg:?} on line {line}, not on line {}", previous + 1));
            }
        }
        previous_line = Some(line);
        at += end;
    }
    None
}

/// Whether the observation meets an expectation: Ok(what happened) or Err(how it differs).
fn meets(
    o: &ObservedProgram,
    verdict: ExpectedVerdict,
    msgs: &[String],
    retval: Option<i32>,
    xlated: (&[XlatedPattern], &[String]),
) -> Result<String, String> {
    match (&o.verdict, verdict) {
        (None, _) => Err("no verdict reported".into()),
        (Some(Verdict::Accepted), ExpectedVerdict::Reject) => Err("accepted, expected reject".into()),
        (Some(Verdict::Rejected { errno, log }), ExpectedVerdict::Accept) => Err(format!(
            "rejected (errno {errno}), expected accept; the log ends with:\n{}",
            last_lines(log, LOG_TAIL_LINES)
        )),
        (Some(Verdict::Rejected { log, .. }), ExpectedVerdict::Reject) => match first_missing(log, msgs) {
            Some(why) => Err(format!("rejected, but {why}")),
            None if msgs.is_empty() => Ok("rejected".into()),
            None => Ok(format!("rejected with the {} expected messages", msgs.len())),
        },
        (Some(Verdict::Accepted), ExpectedVerdict::Accept) => {
            // As upstream, a load without a log level has no log to find messages in.
            if let Some(why) = first_missing(o.log.as_deref().unwrap_or_default(), msgs) {
                return Err(format!("accepted, but {why}"));
            }
            let (patterns, helpers) = xlated;
            if !patterns.is_empty() {
                let Some(insns) = &o.xlated else {
                    return Err("accepted, but no xlated instructions were reported".into());
                };
                let text = disasm::text(insns, helpers);
                let wanted = patterns.iter().map(|p| (p.pattern.as_str(), p.on_next_line));
                if let Some(why) = first_unmatched("xlated program", &text, wanted) {
                    return Err(format!("accepted, but {why}; it reads:\n{text}"));
                }
            }
            let with_msgs = match (msgs.len(), patterns.len()) {
                (0, 0) => String::new(),
                (m, 0) => format!(" with the {m} expected messages"),
                (m, x) => format!(" with the {m} expected messages and {x} xlated patterns"),
            };
            match (retval, o.ran.as_ref().map(|r| r.retval), run_errno(o)) {
                (None, _, _) => Ok(format!("accepted{with_msgs}")),
                (Some(_), None, _) => Err("accepted, but no test run was reported".into()),
                (Some(_), Some(_), Some(errno)) => Err(format!("the test run failed with errno {errno}")),
                (Some(want), Some(got), None) if want == POINTER_VALUE || got as i32 == want => {
                    Ok(format!("accepted{with_msgs}, returned {}", got as i32))
                }
                (Some(want), Some(got), None) => Err(format!("returned {}, expected {want}", got as i32)),
            }
        }
    }
}

/// The guest's reason for not loading a case, naming `bpf_testmod` where the kfunc the kernel
/// lacks is one the selftests' module provides.
fn skip_reason(case: &Case, guest_reason: &str) -> String {
    let missing = guest_reason.split('\'').nth(1).unwrap_or_default();
    match case.testmod_kfuncs.iter().find(|k| *k == missing) {
        Some(kfunc) => {
            format!("calls {kfunc}, a kfunc only bpf_testmod (the selftests' module, not loaded here) provides")
        }
        None => guest_reason.to_string(),
    }
}

/// The result of one case on a variant, with the variant's declared difference for it.
pub fn judge(case: &Case, difference: Option<&Difference>, o: &ObservedProgram) -> ProgramResult {
    let mut checks = Vec::new();
    let e = &case.expected;
    let upstream = meets(o, e.verdict, &e.msgs, e.retval, (&case.xlated, &case.helpers));
    let skipped = case
        .skip
        .clone()
        .or_else(|| o.skipped.as_deref().map(|r| skip_reason(case, r)))
        .or_else(|| upstream.as_ref().err().and_then(|_| options::shown(&case.lacking_options, &case.section, o)));
    if skipped.is_none() {
        checks.push(match (difference, upstream) {
            (None, Ok(what)) => {
                Check { what: "upstream".into(), ok: true, detail: format!("{what}, as upstream expects") }
            }
            (None, Err(how)) => Check {
                what: "upstream".into(),
                ok: false,
                detail: format!("undeclared difference from upstream: {how}"),
            },
            (Some(d), Ok(what)) => Check {
                what: "declared_difference".into(),
                ok: false,
                detail: format!("{what}, as upstream expects, but the variant declares {:?} ({})", d.expect, d.reason),
            },
            (Some(d), Err(_)) => match meets(o, d.expect, &[], None, (&[], &[])) {
                Ok(what) => Check {
                    what: "declared_difference".into(),
                    ok: true,
                    detail: format!("{what}, as declared: {}", d.reason),
                },
                Err(how) => Check {
                    what: "declared_difference".into(),
                    ok: false,
                    detail: format!("{how} (declared: {})", d.reason),
                },
            },
        });
    }
    checks.extend(o.errors.iter().map(|e| Check::new("guest", false, e.clone())));
    let samples = o.ran.as_ref().map(|r| r.samples.clone()).unwrap_or_default();
    let summary = Summary::of(&samples);
    ProgramResult {
        id: case.id.clone(),
        object: case.file.clone(),
        program: case.program.clone(),
        prog_type: case.prog_type,
        fixed_overhead_reference: false,
        verdict: o.verdict.clone(),
        load_info: o.load_info.clone(),
        retval: o.ran.as_ref().map(|r| r.retval),
        timing: None,
        repeat: None,
        samples,
        summary,
        task_refs: None,
        cpumasks: None,
        run_errno: run_errno(o),
        failed_runs: 0,
        trace: None,
        checks,
        skipped,
        upstream: Some(Origin {
            file: case.file.clone(),
            section: case.section.clone(),
            expected: case.expected.clone(),
            description: case.description.clone(),
            declared_difference: difference.map(|d| d.reason.clone()),
        }),
        differs_from: None,
        stop: None,
    }
}

/// The result of a selftest file that did not compile: its compile check failed, with why.
pub fn uncompiled(id: &str, file: &str, error: &str) -> ProgramResult {
    ProgramResult {
        id: id.into(),
        object: file.into(),
        program: String::new(),
        prog_type: bpfh_protocol::ProgType::Any,
        fixed_overhead_reference: false,
        verdict: None,
        load_info: None,
        retval: None,
        timing: None,
        repeat: None,
        samples: Vec::new(),
        summary: None,
        task_refs: None,
        cpumasks: None,
        run_errno: None,
        failed_runs: 0,
        trace: None,
        checks: vec![Check::new("compile", false, error.to_string())],
        skipped: None,
        upstream: Some(Origin {
            file: file.into(),
            section: String::new(),
            expected: crate::results::schema::Expected {
                verdict: ExpectedVerdict::Accept,
                msgs: Vec::new(),
                retval: None,
            },
            description: None,
            declared_difference: None,
        }),
        differs_from: None,
        stop: None,
    }
}

/// The difference a variant declares for a case.
pub fn difference_for<'a>(differences: &'a [Difference], case: &Case) -> Option<&'a Difference> {
    differences.iter().find(|d| d.file == case.file && d.program == case.program)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{case, difference};
    use crate::verdict::observed::Observed;
    use bpfh_protocol::Record;

    fn evaluate(case: &Case, difference: Option<&Difference>, records: &[Record]) -> ProgramResult {
        judge(case, difference, Observed::fold(records).program(&case.id))
    }

    #[test]
    fn messages_match_in_order_as_substrings() {
        let msgs = |m: &[&str]| m.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let log = "0: R1=ctx()\ncall bpf_throw\nUnreleased reference id=2\nprocessed 5 insns";
        assert_eq!(first_missing(log, &msgs(&["bpf_throw", "Unreleased reference"])), None);
        let missing = |m: &[&str]| first_missing(log, &msgs(m)).unwrap_or_default();
        assert!(missing(&["Unreleased reference", "bpf_throw"]).contains("lacks \"bpf_throw\""));
        assert!(missing(&["id=2", "id=2"]).contains("lacks \"id=2\""));
        assert_eq!(first_missing(log, &[]), None);
    }

    #[test]
    fn a_message_with_a_regex_matches_as_test_loader_compiles_it() {
        let msgs = |m: &[&str]| m.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let log = "0: R1=ctx() R10=fp0\n1: (85) call bpf_throw#12345\nR0=scalar(id=7)\n";
        // Verbatim parts are escaped: `(85)` is text, `{{[0-9]+}}` a regex.
        assert_eq!(first_missing(log, &msgs(&["(85) call bpf_throw#{{[0-9]+}}", "R0=scalar(id={{[0-9]}})"])), None);
        assert!(first_missing(log, &msgs(&["call {{bpf_.*}}R0"])).is_some(), "`.` stops at the line end");
        assert_eq!(first_missing(log, &msgs(&["{{^R0}}"])), None, "`^` matches after a newline");
        assert!(first_missing(log, &msgs(&["{{(}}"])).unwrap().contains("not a regular expression"));
    }

    #[test]
    fn messages_on_a_load_that_succeeds_are_found_in_its_log() {
        let mut expects = case(ExpectedVerdict::Accept, &["safe"], None);
        expects.log_level = 2;
        let accepted = loaded(Verdict::Accepted);
        let log = |text: &str| Record::Log { id: "f/p".into(), log: text.into() };
        assert!(evaluate(&expects, None, &[accepted.clone(), log("processed 3 insns; safe")]).passed());
        let lacks = evaluate(&expects, None, &[accepted.clone(), log("processed 3 insns")]);
        assert!(!lacks.passed() && lacks.checks[0].detail.contains("lacks \"safe\""), "{:?}", lacks.checks);
        // Without a log level there is no log, as upstream: the message cannot be found.
        assert!(!evaluate(&expects, None, &[accepted]).passed());
    }

    #[test]
    fn xlated_patterns_match_line_after_line_unless_freed() {
        let text = "0: r1 = 1\n1: call bpf_get_smp_processor_id\n2: r0 = 0\n3: exit\n";
        let check = |p: &[(&str, bool)]| first_unmatched("xlated program", text, p.iter().copied());
        assert_eq!(check(&[("r1 = 1", true), ("call bpf_get_smp_processor_id", true), ("r0 = 0", true)]), None);
        let gap = check(&[("r1 = 1", true), ("r0 = 0", true)]).unwrap();
        assert!(gap.contains("on line 2, not on line 1"), "{gap}");
        assert_eq!(check(&[("r1 = 1", true), ("r0 = 0", false)]), None, "after `...` any later line will do");
        assert_eq!(check(&[("{{[0-9]}}: exit", true)]), None);

        let mut expects = case(ExpectedVerdict::Accept, &[], None);
        expects.xlated = vec![XlatedPattern { pattern: "0: r0 = 0".into(), on_next_line: true }];
        let xlated = |imm: i32| {
            let mov = 0xb7u64 | (u64::from(imm as u32) << 32);
            Record::Xlated { id: "f/p".into(), insns: vec![mov, 0x95] }
        };
        assert!(evaluate(&expects, None, &[loaded(Verdict::Accepted), xlated(0)]).passed());
        let other = evaluate(&expects, None, &[loaded(Verdict::Accepted), xlated(1)]);
        assert!(!other.passed() && other.checks[0].detail.contains("0: r0 = 1"), "{:?}", other.checks);
    }

    #[test]
    fn a_kfunc_only_bpf_testmod_provides_is_named_in_the_skip() {
        let mut needs = case(ExpectedVerdict::Accept, &[], None);
        needs.testmod_kfuncs = vec!["bpf_kfunc_call_test1".into()];
        let reason = "a kfunc the object uses is not in this kernel (a config option it lacks): \
                      libbpf: extern (func ksym) 'bpf_kfunc_call_test1': not found in kernel or module BTFs";
        let skipped = Record::Skipped { id: "f/p".into(), reason: reason.into() };
        let result = evaluate(&needs, None, std::slice::from_ref(&skipped));
        assert!(result.skipped.as_deref().unwrap().starts_with("calls bpf_kfunc_call_test1, a kfunc only bpf_testmod"));
        let other = evaluate(&case(ExpectedVerdict::Accept, &[], None), None, &[skipped]);
        assert_eq!(other.skipped.as_deref(), Some(reason), "another missing kfunc keeps the guest's reason");
    }

    fn loaded(verdict: Verdict) -> Record {
        Record::Loaded { id: "f/p".into(), verdict, info: None }
    }

    fn rejected(log: &str) -> Record {
        loaded(Verdict::Rejected { errno: 22, log: log.into() })
    }

    fn ran(retval: u32) -> Record {
        Record::Ran {
            id: "f/p".into(),
            retval,
            retval_mismatch: false,
            timing: bpfh_protocol::Timing::TestRunDuration,
            repeat: 1,
            samples: vec![100],
            run_errno: None,
            failed_runs: 0,
            watchdog: None,
            call_ns: Vec::new(),
        }
    }

    #[test]
    fn undeclared_differences_fail_and_declared_ones_must_happen() {
        let reject = case(ExpectedVerdict::Reject, &["Unreleased reference"], None);
        let as_upstream = evaluate(&reject, None, &[rejected("... Unreleased reference id=3")]);
        assert!(as_upstream.passed() && as_upstream.skipped.is_none(), "{:?}", as_upstream.checks);
        assert!(!evaluate(&reject, None, &[rejected("R0 invalid mem access")]).passed(), "wrong message");
        let accepted = evaluate(&reject, None, &[loaded(Verdict::Accepted)]);
        assert!(!accepted.passed(), "an undeclared difference fails");
        assert!(accepted.checks[0].detail.contains("undeclared difference"));

        let declared = difference(ExpectedVerdict::Accept);
        let r = evaluate(&reject, Some(&declared), &[loaded(Verdict::Accepted)]);
        assert!(r.passed(), "{:?}", r.checks);
        assert!(r.checks[0].detail.contains("unwinding releases it"));
        assert_eq!(r.upstream.unwrap().declared_difference.as_deref(), Some("unwinding releases it"));
        let r = evaluate(&reject, Some(&declared), &[rejected("Unreleased reference")]);
        assert!(!r.passed(), "a declared difference that does not happen fails");
        assert!(!evaluate(&reject, Some(&declared), &[]).passed(), "no verdict fails");
    }

    #[test]
    fn retvals_are_checked_like_test_loader_and_skips_never_pass_silently() {
        let run = case(ExpectedVerdict::Accept, &[], Some(-1));
        assert!(evaluate(&run, None, &[loaded(Verdict::Accepted), ran(u32::MAX)]).passed());
        assert!(!evaluate(&run, None, &[loaded(Verdict::Accepted), ran(0)]).passed());
        assert!(!evaluate(&run, None, &[loaded(Verdict::Accepted)]).passed(), "a missing run fails");
        let any = case(ExpectedVerdict::Accept, &[], Some(POINTER_VALUE));
        assert!(evaluate(&any, None, &[loaded(Verdict::Accepted), ran(12345)]).passed());

        let skipped = Record::Skipped { id: "f/p".into(), reason: "no LSM programs".into() };
        let r = evaluate(&case(ExpectedVerdict::Reject, &[], None), None, &[skipped]);
        assert_eq!(r.skipped.as_deref(), Some("no LSM programs"));
        assert!(r.checks.is_empty());
        assert_eq!(crate::verdict::outcome::Outcome::of(&r).short(), "skip");
        let error = Record::Error { id: Some("f/p".into()), message: "libbpf failed".into() };
        assert!(!evaluate(&case(ExpectedVerdict::Accept, &[], None), None, &[error]).passed());
    }
}
