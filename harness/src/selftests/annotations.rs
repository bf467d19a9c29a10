//! A selftest program's annotations, read as upstream's `test_loader.c` reads them, and the
//! cases they make: what upstream expects of each program, and why the harness skips one it
//! cannot check as upstream does.

use crate::kernel::variant::Difference;
use crate::results::schema::Expected;
use crate::scenario::ExpectedVerdict;
use crate::selftests::drivers::{Driver, DRIVER_SET_UP};
use crate::selftests::options::Needs;
use bpfh_protocol::ProgType;
use std::sync::Arc;

/// test_loader.c's `POINTER_VALUE`: a `__retval` that accepts any return value.
pub const POINTER_VALUE: i32 = 0xcafe4a;
/// test_loader.c's `testing_prog_flags()`, set on every program it loads, is
/// BPF_F_TEST_RND_HI32 | BPF_F_TEST_REG_INVARIANTS on 6.12. RND_HI32 is left out: under it a
/// `bpf_loop()` of 8M iterations ends after one callback, on fast-execute and exception-unwind
/// alike (their selftests' `bpf_loop_holding_task` return 1, not 8388608). The callback returns 0
/// with a 32-bit move, and 6.12's `prepare_func_exit()` reads a callback's R0 with
/// `mark_reg_read()`, which, unlike `check_reg_arg()`, does not mark the move for zero extension:
/// the flag then puts random bits in R0's upper half, and the loop's 64-bit test of R0 sees a
/// non-zero return. Upstream's own bpf_loop() tests run one iteration, so they cannot notice.
pub const TESTING_PROG_FLAGS: u32 = BPF_F_TEST_REG_INVARIANTS;
const BPF_F_STRICT_ALIGNMENT: u32 = 1 << 0;
const BPF_F_ANY_ALIGNMENT: u32 = 1 << 1;
const BPF_F_TEST_RND_HI32: u32 = 1 << 2;
const BPF_F_TEST_STATE_FREQ: u32 = 1 << 3;
const BPF_F_SLEEPABLE: u32 = 1 << 4;
const BPF_F_XDP_HAS_FRAGS: u32 = 1 << 5;
const BPF_F_TEST_REG_INVARIANTS: u32 = 1 << 7;

/// test_loader.c's names for `__flag`; anything else is a number.
fn prog_flag(name: &str) -> Result<u32, String> {
    Ok(match name {
        "BPF_F_STRICT_ALIGNMENT" => BPF_F_STRICT_ALIGNMENT,
        "BPF_F_ANY_ALIGNMENT" => BPF_F_ANY_ALIGNMENT,
        "BPF_F_TEST_RND_HI32" => BPF_F_TEST_RND_HI32,
        "BPF_F_TEST_STATE_FREQ" => BPF_F_TEST_STATE_FREQ,
        "BPF_F_SLEEPABLE" => BPF_F_SLEEPABLE,
        "BPF_F_XDP_HAS_FRAGS" => BPF_F_XDP_HAS_FRAGS,
        "BPF_F_TEST_REG_INVARIANTS" => BPF_F_TEST_REG_INVARIANTS,
        number => parse_int(number)? as u32,
    })
}

/// test_loader.c's `TEST_DATA_LEN`, also a `__retval` value.
const TEST_DATA_LEN: i32 = bpfh_protocol::TEST_DATA_LEN as i32;

/// One program's annotations, as test_loader.c's `parse_test_spec` reads them (privileged mode).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotations {
    pub expect_failure: bool,
    /// `__msg` texts in BTF order: each must appear in the verifier log after the previous one.
    pub msgs: Vec<String>,
    /// `__retval`: the program runs and must return this (POINTER_VALUE: anything).
    pub retval: Option<i32>,
    pub description: Option<String>,
    pub log_level: Option<i32>,
    pub auxiliary: bool,
    /// `__arch_*` values; empty: every architecture.
    pub arch: Vec<String>,
    /// Some privileged-mode annotation (or none at all, which implies privileged mode).
    pub privileged: bool,
    /// `BPF_F_*` load flags: test_loader's defaults (`testing_prog_flags()`) as `__flag` changes
    /// them.
    pub prog_flags: u32,
    /// `__xlated` patterns, matched against the disassembled program after the verifier's
    /// rewrites, as test_loader's `push_disasm_msg` reads them.
    pub xlated: Vec<XlatedPattern>,
    /// Annotations the harness does not check, by macro name.
    pub unsupported: Vec<&'static str>,
}

/// One `__xlated` pattern (verbatim text with `{{regex}}` parts, as `__msg`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XlatedPattern {
    pub pattern: String,
    /// Must match on the line right after the previous pattern's match.
    pub on_next_line: bool,
}

/// test_loader.c's `skip_dynamic_pfx`: `<pfx><counter>=<text>` -> `text`.
fn dynamic(tag: &str, prefix: &str) -> Option<String> {
    let rest = tag.strip_prefix(prefix)?;
    rest.split_once('=').map(|(_, text)| text.to_string())
}

/// test_loader.c's `parse_int`: decimal, or hex after `0x` (strtol, so a sign is allowed).
fn parse_int(text: &str) -> Result<i32, String> {
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16),
        None => text.parse::<i64>(),
    };
    // The C code stores a long into an int: the low 32 bits.
    parsed.map(|v| v as i32).map_err(|_| format!("cannot parse {text:?} as a number"))
}

/// test_loader.c's `parse_retval`.
fn parse_retval(text: &str) -> Result<i32, String> {
    match text {
        "INT_MIN" => Ok(i32::MIN),
        "POINTER_VALUE" => Ok(POINTER_VALUE),
        "TEST_DATA_LEN" => Ok(TEST_DATA_LEN),
        _ => parse_int(text),
    }
}

impl Annotations {
    /// Parses one program's decl tags, in BTF order. Tags that are not test annotations
    /// (`exception_callback:...`) are ignored, as upstream ignores them.
    pub fn parse<'a>(tags: impl IntoIterator<Item = &'a str>) -> Result<Annotations, String> {
        let mut a = Annotations { prog_flags: TESTING_PROG_FLAGS, ..Annotations::default() };
        let mut unpriv = false;
        let mut xlated_next_line = true;
        let note = |a: &mut Annotations, name: &'static str| {
            if !a.unsupported.contains(&name) {
                a.unsupported.push(name);
            }
        };
        for tag in tags {
            let Some(t) = tag.strip_prefix("comment:test_") else { continue };
            if let Some(d) = t.strip_prefix("description=") {
                a.description = Some(d.to_string());
            } else if t == "expect_failure" || t == "expect_success" {
                a.expect_failure = t == "expect_failure";
                a.privileged = true;
            } else if t == "expect_failure_unpriv" || t == "expect_success_unpriv" {
                unpriv = true;
            } else if t == "auxiliary" {
                a.auxiliary = true;
                a.privileged = true;
            } else if t == "auxiliary_unpriv" {
                a.auxiliary = true;
                unpriv = true;
            } else if let Some(msg) = dynamic(tag, "comment:test_expect_msg=") {
                a.msgs.push(msg);
                a.privileged = true;
            } else if dynamic(tag, "comment:test_expect_msg_unpriv=").is_some()
                || dynamic(tag, "comment:test_expect_xlated_unpriv=").is_some()
                || dynamic(tag, "comment:test_jited_unpriv=").is_some()
                || t.starts_with("retval_unpriv=")
            {
                unpriv = true;
            } else if let Some(pattern) = dynamic(tag, "comment:test_expect_xlated=") {
                // `...` lets the next pattern match on any later line; otherwise each pattern
                // after the first must match on the line after the previous one's.
                if pattern == "..." {
                    xlated_next_line = false;
                } else {
                    a.xlated.push(XlatedPattern { pattern, on_next_line: xlated_next_line });
                    xlated_next_line = true;
                }
                a.privileged = true;
            } else if dynamic(tag, "comment:test_jited=").is_some() {
                note(&mut a, "__jited");
                a.privileged = true;
            } else if let Some(v) = t.strip_prefix("retval=") {
                a.retval = Some(parse_retval(v).map_err(|e| format!("__retval: {e}"))?);
                a.privileged = true;
            } else if let Some(v) = t.strip_prefix("log_level=") {
                a.log_level = Some(parse_int(v).map_err(|e| format!("__log_level: {e}"))?);
            } else if let Some(value) = t.strip_prefix("prog_flags=") {
                // `__flag(!X)` clears what test_loader sets by default.
                let (clear, name) = value.strip_prefix('!').map_or((false, value), |n| (true, n));
                let flag = prog_flag(name).map_err(|e| format!("__flag: {e}"))?;
                a.prog_flags = if clear { a.prog_flags & !flag } else { a.prog_flags | flag };
            } else if let Some(arch) = t.strip_prefix("arch=") {
                a.arch.push(arch.to_string());
            } else if t.starts_with("btf_path=") {
                note(&mut a, "__btf_path");
            }
        }
        // No mode annotation at all implies privileged mode (test_loader's default).
        if !unpriv {
            a.privileged = true;
        }
        Ok(a)
    }
}

/// A selftest file's programs: name, ELF section (libbpf's program type) and annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub name: String,
    pub section: String,
    pub annotations: Annotations,
}

/// How a case that is expected to load runs once after loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAs {
    /// As test_loader runs a `__retval` program.
    TestLoader,
    /// On test_progs' `pkt_v4`, as a hand-written driver's `RUN_SUCCESS` runs it.
    PktV4,
}

/// One upstream program, planned for one variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// `<file stem>/<program>`: unique in the scenario.
    pub id: String,
    pub file: String,
    pub program: String,
    pub section: String,
    /// Tc or Syscall when the runner knows its type; Any (the section's type) otherwise.
    pub prog_type: ProgType,
    /// Whether, and how, it runs once after loading.
    pub run: Option<RunAs>,
    /// The verifier log level it is loaded with (`__log_level`).
    pub log_level: u32,
    pub expected: Expected,
    /// `__description`: upstream's name for the test.
    pub description: Option<String>,
    /// Why the harness does not load it at all.
    pub skip: Option<String>,
    /// `BPF_F_*` flags it is loaded with.
    pub prog_flags: u32,
    /// The file's `__auxiliary` programs, loaded beside it.
    pub auxiliary: Vec<String>,
    /// Kfuncs the object calls that `bpf_testmod` provides: a load that fails for want of one
    /// is a skip naming the module.
    pub testmod_kfuncs: Vec<String>,
    /// Options this kernel lacks that some selftests need: a failure that shows one is a skip
    /// naming it.
    pub lacking_options: Arc<[Needs]>,
    /// Capabilities upstream's driver drops before loading it (a mask of `CAP_*` bits).
    pub drop_caps: u64,
    /// `__xlated` patterns.
    pub xlated: Vec<XlatedPattern>,
    /// Helper names by id, to disassemble the program for `__xlated`.
    pub helpers: Arc<Vec<String>>,
}

/// What the cases of one file share: who runs the file upstream, and what the object, the tree
/// and this kernel provide.
#[derive(Debug, Clone)]
pub struct FileContext {
    pub driver: Driver,
    /// The kfuncs the object calls that `bpf_testmod` provides.
    pub testmod_kfuncs: Vec<String>,
    /// Capabilities the driver drops before loading (a mask of `CAP_*` bits).
    pub drop_caps: u64,
    pub lacking_options: Arc<[Needs]>,
    pub helpers: Arc<Vec<String>>,
}

#[cfg(test)]
impl FileContext {
    /// A file `driver` runs, with nothing else known (tests build cases from it).
    pub fn of(driver: Driver) -> FileContext {
        FileContext {
            driver,
            testmod_kfuncs: Vec::new(),
            drop_caps: 0,
            lacking_options: Arc::default(),
            helpers: Arc::default(),
        }
    }
}

/// The program type the runner names for a section (libbpf's names), if it has one; a program
/// of another type is loaded, and run, as its section says (`ProgType::Any`).
fn runnable_type(section: &str) -> Option<ProgType> {
    let base = section.trim_start_matches('?');
    let kind = base.split('/').next().unwrap_or(base);
    match kind {
        "tc" | "classifier" | "tcx" => Some(ProgType::Tc),
        "syscall" => Some(ProgType::Syscall),
        _ => None,
    }
}

/// Why the harness cannot check a program as upstream does, if it cannot.
fn skip_reason(p: &Program) -> Option<String> {
    let a = &p.annotations;
    let kind = p.section.trim_start_matches('?').split('/').next().unwrap_or_default();
    if !a.privileged {
        return Some("only unprivileged-mode annotations (__*_unpriv): the runner loads as root".into());
    }
    if !a.arch.is_empty() && !a.arch.iter().any(|arch| arch == "X86_64") {
        return Some(format!("__arch({}): not for x86_64, as upstream skips it", a.arch.join(", ")));
    }
    if !a.unsupported.is_empty() {
        return Some(format!("uses {}, which the harness does not check", a.unsupported.join(", ")));
    }
    if matches!(kind, "freplace" | "struct_ops" | "struct_ops.s") {
        return Some(format!("a {kind} program needs its target (a program or struct_ops map) set up by its test"));
    }
    None
}

/// Why no case of a file is checked, from who drives it upstream, if none is.
fn file_skip(driver: &Driver) -> Option<String> {
    match driver {
        Driver::TestLoader { .. } | Driver::RunSuccess { .. } => None,
        Driver::ByHand { driver } => Some(format!(
            "driven by hand by prog_tests/{driver}, not by test_loader: what it expects is C code there, not annotations"
        )),
        Driver::Undriven => Some("no prog_tests/ driver runs it upstream".into()),
    }
}

/// The cases of one file's programs, judged as its driver judges them upstream; `__auxiliary`
/// programs are not cases: they are loaded beside each case, as upstream does.
pub fn cases(file: &str, programs: &[Program], context: &FileContext) -> Vec<Case> {
    let stem = file.trim_end_matches(".c");
    // Loaded beside every case in privileged mode, as test_loader does.
    let auxiliary: Vec<String> = programs
        .iter()
        .filter(|p| p.annotations.auxiliary && p.annotations.privileged)
        .map(|p| p.name.clone())
        .collect();
    let whole_file = file_skip(&context.driver);
    programs
        .iter()
        .filter(|p| !p.annotations.auxiliary)
        .map(|p| {
            let a = &p.annotations;
            let (expected, run, skip) = match &context.driver {
                Driver::RunSuccess { driver, retvals } => {
                    let retval = retvals.get(&p.name).copied();
                    let set_up = DRIVER_SET_UP.iter().find(|(f, prog, _)| *f == file && *prog == p.name);
                    let skip = match (set_up, retval) {
                        (Some((.., why)), _) => Some(format!("{why}, which the runner does not do")),
                        (None, None) => Some(format!(
                            "not in prog_tests/{driver}'s RUN_SUCCESS table: its driver checks it by hand"
                        )),
                        (None, Some(_)) => testmod_attach(&p.section),
                    };
                    let expected = Expected { verdict: ExpectedVerdict::Accept, msgs: Vec::new(), retval };
                    (expected, retval.map(|_| RunAs::PktV4), skip)
                }
                _ => {
                    let expected = Expected {
                        verdict: if a.expect_failure { ExpectedVerdict::Reject } else { ExpectedVerdict::Accept },
                        msgs: a.msgs.clone(),
                        retval: a.retval.filter(|_| !a.expect_failure),
                    };
                    // test_loader runs only what it expects to load.
                    let run = expected.retval.map(|_| RunAs::TestLoader);
                    let skip = whole_file.clone().or_else(|| skip_reason(p)).or_else(|| testmod_attach(&p.section));
                    let skip = match context.driver {
                        Driver::TestLoader { pre_execution: true } if run.is_some() && skip.is_none() => Some(
                            "its __retval run needs the maps that prog_tests/verifier.c's pre-execution callback fills"
                                .into(),
                        ),
                        _ => skip,
                    };
                    (expected, run, skip)
                }
            };
            Case {
                id: format!("{stem}/{}", p.name),
                file: file.to_string(),
                program: p.name.clone(),
                section: p.section.clone(),
                prog_type: run.and(runnable_type(&p.section)).unwrap_or(ProgType::Any),
                run,
                log_level: a.log_level.map_or(0, |l| l as u32),
                expected,
                description: a.description.clone(),
                skip,
                prog_flags: a.prog_flags,
                auxiliary: auxiliary.clone(),
                testmod_kfuncs: context.testmod_kfuncs.clone(),
                lacking_options: context.lacking_options.clone(),
                drop_caps: context.drop_caps,
                xlated: a.xlated.clone(),
                helpers: context.helpers.clone(),
            }
        })
        .collect()
}

/// A tracing program whose attach target is a `bpf_testmod` function.
fn testmod_attach(section: &str) -> Option<String> {
    let target = section.trim_start_matches('?').split_once('/')?.1;
    target.starts_with("bpf_testmod").then(|| {
        format!("attaches to {target}, which only bpf_testmod (the selftests' module, not loaded here) provides")
    })
}

/// The object file name a selftest file gets in the guest.
pub fn object_name(file: &str) -> String {
    format!("{}.upstream.o", file.trim_end_matches(".c"))
}

/// Checks a variant's declared differences against the scenario's cases: each must name a case
/// (a typo would silently declare nothing) and differ from what upstream expects. Declarations
/// about files the scenario does not include are not checked here.
pub fn check_differences(variant: &str, differences: &[Difference], cases: &[Case]) -> anyhow::Result<()> {
    for d in differences {
        if !cases.iter().any(|c| c.file == d.file) {
            continue;
        }
        let case = cases.iter().find(|c| c.file == d.file && c.program == d.program).ok_or_else(|| {
            anyhow::anyhow!(
                "variant {variant}: upstream_differences names {}: {}, which has no such program",
                d.file,
                d.program
            )
        })?;
        // The same verdict is a difference only where upstream expects more of the load: a log
        // message or the rewritten program (`__msg`, `__xlated`).
        let checks_more = !case.expected.msgs.is_empty() || !case.xlated.is_empty();
        anyhow::ensure!(
            case.expected.verdict != d.expect || checks_more,
            "variant {variant}: upstream_differences: {}: {} declares {:?}, which is what upstream expects",
            d.file,
            d.program,
            d.expect
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{case, difference, program};

    #[test]
    fn annotations_are_read_as_test_loader_reads_them() {
        let a = Annotations::parse([
            "exception_callback:cb",
            "comment:test_expect_failure",
            "comment:test_expect_msg=0=first",
            "comment:test_expect_msg=1=second = with equals",
            "comment:test_description=throw with a lock",
        ])
        .unwrap();
        assert!(a.expect_failure && a.privileged);
        assert_eq!(a.msgs, ["first", "second = with equals"]);
        assert_eq!(a.description.as_deref(), Some("throw with a lock"));
        assert!(a.unsupported.is_empty());

        // No annotation: privileged, expected to load (test_loader's default).
        let none = Annotations::parse([]).unwrap();
        assert!(none.privileged && !none.expect_failure && none.retval.is_none());

        let retval = |v: &str| Annotations::parse([format!("comment:test_retval={v}").as_str()]).unwrap().retval;
        assert_eq!(retval("0x10"), Some(16));
        assert_eq!(retval("-1"), Some(-1));
        assert_eq!(retval("INT_MIN"), Some(i32::MIN));
        assert_eq!(retval("POINTER_VALUE"), Some(POINTER_VALUE));
        assert_eq!(retval("TEST_DATA_LEN"), Some(64));
        assert_eq!(retval("0xffffffff"), Some(-1));
        assert!(Annotations::parse(["comment:test_retval=zero"]).is_err());

        let unpriv =
            Annotations::parse(["comment:test_expect_failure_unpriv", "comment:test_retval_unpriv=1"]).unwrap();
        assert!(!unpriv.privileged);
        let both = Annotations::parse(["comment:test_expect_failure_unpriv", "comment:test_expect_success"]).unwrap();
        assert!(both.privileged && !both.expect_failure);
        let odd = Annotations::parse([
            "comment:test_expect_xlated=0=0: r0 = 1",
            "comment:test_expect_xlated=1=1: exit",
            "comment:test_expect_xlated=2=...",
            "comment:test_expect_xlated=3=r0 = 2",
            "comment:test_jited=0=nop",
            "comment:test_prog_flags=BPF_F_SLEEPABLE",
        ])
        .unwrap();
        assert_eq!(odd.unsupported, ["__jited"]);
        let lines: Vec<(&str, bool)> = odd.xlated.iter().map(|x| (x.pattern.as_str(), x.on_next_line)).collect();
        assert_eq!(lines, [("0: r0 = 1", true), ("1: exit", true), ("r0 = 2", false)], "`...` frees the next one");
        assert_eq!(odd.prog_flags, TESTING_PROG_FLAGS | BPF_F_SLEEPABLE, "on top of test_loader's own");
        let cleared =
            Annotations::parse(["comment:test_prog_flags=!BPF_F_TEST_RND_HI32", "comment:test_prog_flags=0x1"]);
        assert_eq!(cleared.unwrap().prog_flags, BPF_F_TEST_REG_INVARIANTS | BPF_F_STRICT_ALIGNMENT);
        assert_eq!(Annotations::parse([]).unwrap().prog_flags, TESTING_PROG_FLAGS);
    }

    #[test]
    fn cases_skip_what_the_harness_cannot_check_and_run_what_has_a_retval() {
        let programs = [
            program("reject", "?tc", &["comment:test_expect_failure", "comment:test_expect_msg=0=Unreleased"]),
            program("ret", "tc", &["comment:test_retval=TEST_DATA_LEN"]),
            program("sys", "syscall", &["comment:test_retval=0"]),
            program("sock", "socket", &["comment:test_retval=1"]),
            program("tp", "tp_btf/task_newtask", &[]),
            program("fail_ret", "socket", &["comment:test_expect_failure", "comment:test_retval=1"]),
            program("arm", "tc", &["comment:test_arch=ARM64"]),
            program("regex", "tc", &["comment:test_expect_failure", "comment:test_expect_msg=0=R{{[0-9]}}"]),
            program("ok_msg", "tc", &["comment:test_expect_msg=0=safe"]),
            program("ext", "freplace/foo", &[]),
        ];
        let test_loader = Driver::TestLoader { pre_execution: false };
        let cases = cases("demo.c", &programs, &FileContext::of(test_loader.clone()));
        let by = |name: &str| cases.iter().find(|c| c.program == name).unwrap();
        assert_eq!(by("reject").id, "demo/reject");
        assert_eq!(by("reject").expected.verdict, ExpectedVerdict::Reject);
        assert_eq!((by("reject").prog_type, by("reject").run), (ProgType::Any, None));
        let ret = by("ret");
        assert_eq!((ret.prog_type, ret.run, ret.expected.retval), (ProgType::Tc, Some(RunAs::TestLoader), Some(64)));
        assert_eq!(by("sys").prog_type, ProgType::Syscall);
        // Any other type runs as its section says, on test_loader's data.
        let sock = by("sock");
        assert_eq!((sock.prog_type, sock.run, sock.skip.as_ref()), (ProgType::Any, Some(RunAs::TestLoader), None));
        assert_eq!((by("tp").prog_type, by("tp").skip.as_ref()), (ProgType::Any, None));
        // test_loader never runs a program it expects to be rejected: its retval is moot.
        assert_eq!(
            (by("fail_ret").skip.as_ref(), by("fail_ret").expected.retval, by("fail_ret").run),
            (None, None, None)
        );
        for checked in ["regex", "ok_msg"] {
            assert!(by(checked).skip.is_none(), "{checked}");
        }
        for skipped in ["arm", "ext"] {
            assert!(by(skipped).skip.is_some(), "{skipped}");
        }
        let with_aux = [program("aux", "tc", &["comment:test_auxiliary"]), program("t", "tc", &[])];
        let cases = super::cases("aux.c", &with_aux, &FileContext::of(test_loader));
        assert_eq!(cases.len(), 1, "an auxiliary program is not a case");
        assert_eq!((cases[0].skip.as_ref(), cases[0].auxiliary.as_slice()), (None, ["aux".to_string()].as_slice()));
    }

    #[test]
    fn a_file_is_judged_as_its_driver_judges_it() {
        let programs = [
            program("throws", "tc", &[]),
            program("tail", "tc", &[]),
            program("other", "tc", &[]),
            program("reject", "?tc", &["comment:test_expect_failure"]),
            program("retval", "tc", &["comment:test_retval=1"]),
            program("testmod", "fentry/bpf_testmod_test_read", &[]),
        ];
        let by_hand = cases("f.c", &programs, &FileContext::of(Driver::ByHand { driver: "f.c".into() }));
        assert!(by_hand.iter().all(|c| c.skip.as_deref().is_some_and(|s| s.contains("by hand by prog_tests/f.c"))));
        let undriven = cases("f.c", &programs, &FileContext::of(Driver::Undriven));
        assert!(undriven.iter().all(|c| c.skip.as_deref().is_some_and(|s| s.contains("no prog_tests/ driver"))));

        let retvals = [("throws".to_string(), 64), ("exception_tail_call".into(), 24)].into_iter().collect();
        let table = Driver::RunSuccess { driver: "exceptions.c".into(), retvals };
        let listed = [program("throws", "tc", &[]), program("exception_tail_call", "tc", &[]), program("x", "tc", &[])];
        let run_success = cases("exceptions.c", &listed, &FileContext::of(table));
        let throws = &run_success[0];
        assert_eq!((throws.run, throws.expected.retval, throws.skip.as_ref()), (Some(RunAs::PktV4), Some(64), None));
        assert!(run_success[1].skip.as_deref().unwrap().contains("jmp_table"), "set up by the driver");
        assert!(run_success[2].skip.as_deref().unwrap().contains("RUN_SUCCESS table"));

        let with_callback = cases("f.c", &programs, &FileContext::of(Driver::TestLoader { pre_execution: true }));
        let by = |name: &str| with_callback.iter().find(|c| c.program == name).unwrap();
        assert!(by("retval").skip.as_deref().unwrap().contains("pre-execution callback"));
        assert!(by("reject").skip.is_none(), "a case that does not run needs no callback");
        assert!(by("testmod").skip.as_deref().unwrap().contains("bpf_testmod"));
    }

    #[test]
    fn differences_must_name_a_program_and_differ() {
        let cases = vec![case(ExpectedVerdict::Reject, &[], None)];
        assert!(check_differences("v", &[difference(ExpectedVerdict::Accept)], &cases).is_ok());
        let same = check_differences("v", &[difference(ExpectedVerdict::Reject)], &cases).unwrap_err();
        assert!(same.to_string().contains("what upstream expects"), "{same}");
        let typo = Difference { program: "q".into(), ..difference(ExpectedVerdict::Accept) };
        assert!(check_differences("v", &[typo], &cases).unwrap_err().to_string().contains("no such program"));
        let other_file = Difference { file: "g.c".into(), ..difference(ExpectedVerdict::Accept) };
        assert!(check_differences("v", &[other_file], &cases).is_ok(), "files outside the scenario are not checked");
        // Loading as upstream expects but rewritten otherwise (`__xlated`) is a difference too.
        let mut rewritten = case(ExpectedVerdict::Accept, &[], None);
        rewritten.xlated = vec![XlatedPattern { pattern: "0: r0 = 0".into(), on_next_line: true }];
        assert!(check_differences("v", &[difference(ExpectedVerdict::Accept)], &[rewritten]).is_ok());
    }
}
