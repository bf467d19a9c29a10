//! Upstream's own annotated selftest programs (`tools/testing/selftests/bpf/progs/*.c` in each
//! variant's tree), checked the way upstream's `test_loader.c` checks them.
//!
//! Each file is compiled with the tree's own headers and flags (as the selftests Makefile does),
//! its programs are read from the object's ELF symbols and their annotations from the BTF
//! decl tags `bpf_misc.h` writes (`comment:test_expect_failure`, ...). Every program becomes one
//! case, loaded alone in the guest; a case with `__retval` on a type the runner can run (tc,
//! syscall) also runs once as test_loader runs it. A case the harness or the guest cannot check
//! is skipped with the reason, never passed.
//!
//! A variant may declare where it knowingly differs from upstream (`upstream_differences` in its
//! `variant.yaml`); a declared difference must happen, and any other difference fails.

use crate::cache::Cache;
use crate::guestbuild::{self, BPF_CLANG};
use crate::kbuild::KernelBuild;
use crate::progress;
use crate::results::{Check, ProgramResult};
use crate::scenario::ExpectedVerdict;
use crate::source::KernelSource;
use anyhow::Context;
use bpfh_protocol::{ProgType, ProgramPlan, Record, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the selftest programs live in a kernel tree.
pub const PROGS_DIR: &str = "tools/testing/selftests/bpf/progs";
/// test_loader.c's `POINTER_VALUE`: a `__retval` that accepts any return value.
const POINTER_VALUE: i32 = 0xcafe4a;
/// test_loader.c's `TEST_DATA_LEN`, also a `__retval` value.
const TEST_DATA_LEN: i32 = bpfh_protocol::TEST_DATA_LEN as i32;

/// A difference from upstream that a variant declares in its `variant.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Difference {
    /// The selftest file, e.g. `exceptions_fail.c`.
    pub file: String,
    pub program: String,
    /// What the variant's verifier does instead of what upstream expects.
    pub expect: ExpectedVerdict,
    /// Why: shown with the result.
    pub reason: String,
}

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
    /// Annotations the harness does not check, by macro name.
    pub unsupported: Vec<&'static str>,
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
        let mut a = Annotations::default();
        let mut unpriv = false;
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
            } else if dynamic(tag, "comment:test_expect_xlated=").is_some() {
                note(&mut a, "__xlated");
                a.privileged = true;
            } else if dynamic(tag, "comment:test_jited=").is_some() {
                note(&mut a, "__jited");
                a.privileged = true;
            } else if let Some(v) = t.strip_prefix("retval=") {
                a.retval = Some(parse_retval(v).map_err(|e| format!("__retval: {e}"))?);
                a.privileged = true;
            } else if let Some(v) = t.strip_prefix("log_level=") {
                a.log_level = Some(parse_int(v).map_err(|e| format!("__log_level: {e}"))?);
            } else if t.starts_with("prog_flags=") {
                note(&mut a, "__flag");
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

/// What upstream expects of a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    pub verdict: ExpectedVerdict,
    pub msgs: Vec<String>,
    pub retval: Option<i32>,
}

/// One upstream program, planned for one variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// `<file stem>/<program>`: unique in the scenario.
    pub id: String,
    pub file: String,
    pub program: String,
    pub section: String,
    /// Tc or Syscall when it runs; Any (load only) otherwise.
    pub prog_type: ProgType,
    pub runs: bool,
    pub expected: Expected,
    /// `__description`: upstream's name for the test.
    pub description: Option<String>,
    /// Why the harness does not load it at all.
    pub skip: Option<String>,
}

/// The program type the runner can run for a section (libbpf's names), if any.
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
fn skip_reason(p: &Program, object_has_auxiliary: bool) -> Option<String> {
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
    if object_has_auxiliary {
        return Some("needs the file's __auxiliary programs loaded beside it".into());
    }
    if matches!(kind, "freplace" | "struct_ops" | "struct_ops.s") {
        return Some(format!("a {kind} program needs its target (a program or struct_ops map) set up by its test"));
    }
    if let Some(msg) = a.msgs.iter().find(|m| m.contains("{{")) {
        return Some(format!("__msg({msg:?}) has a {{{{regex}}}}, which the harness does not match"));
    }
    if !a.expect_failure && !a.msgs.is_empty() {
        return Some(
            "__msg on a program expected to load: the runner keeps no verifier log of a successful load".into(),
        );
    }
    if let Some(level) = a.log_level.filter(|l| l & 3 > 1 && !a.msgs.is_empty()) {
        return Some(format!("__log_level({level}): the runner matches __msg in a level-1 log"));
    }
    if a.retval.is_some() && !a.expect_failure && runnable_type(&p.section).is_none() {
        return Some(format!(
            "__retval on a {} program: the runner runs only tc and syscall programs",
            p.section.trim_start_matches('?')
        ));
    }
    None
}

/// The cases of one file's programs; `__auxiliary` programs are not cases (upstream loads them
/// beside the others).
pub fn cases(file: &str, programs: &[Program]) -> Vec<Case> {
    let stem = file.trim_end_matches(".c");
    let has_auxiliary = programs.iter().any(|p| p.annotations.auxiliary);
    programs
        .iter()
        .filter(|p| !p.annotations.auxiliary)
        .map(|p| {
            let a = &p.annotations;
            let skip = skip_reason(p, has_auxiliary);
            // test_loader runs only what it expects to load.
            let run_type = a.retval.filter(|_| !a.expect_failure).and(runnable_type(&p.section));
            Case {
                id: format!("{stem}/{}", p.name),
                file: file.to_string(),
                program: p.name.clone(),
                section: p.section.clone(),
                prog_type: run_type.unwrap_or(ProgType::Any),
                runs: run_type.is_some(),
                expected: Expected {
                    verdict: if a.expect_failure { ExpectedVerdict::Reject } else { ExpectedVerdict::Accept },
                    msgs: a.msgs.clone(),
                    retval: a.retval.filter(|_| !a.expect_failure),
                },
                description: a.description.clone(),
                skip,
            }
        })
        .collect()
}

/// The object file name a selftest file gets in the guest.
pub fn object_name(file: &str) -> String {
    format!("{}.upstream.o", file.trim_end_matches(".c"))
}

/// The guest's plan entries: every case the harness does not skip.
pub fn plan(cases: &[Case]) -> Vec<ProgramPlan> {
    cases
        .iter()
        .filter(|c| c.skip.is_none())
        .map(|c| ProgramPlan {
            id: c.id.clone(),
            object: object_name(&c.file),
            program: c.program.clone(),
            prog_type: c.prog_type,
            repeat: 1,
            packet_bytes: None,
            samples: 1,
            load_only: !c.runs,
            test_loader_run: c.runs,
            count_task_refs: false,
            count_cpumasks: false,
            sysctls: BTreeMap::new(),
            trace_events: Vec::new(),
        })
        .collect()
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
        anyhow::ensure!(
            case.expected.verdict != d.expect,
            "variant {variant}: upstream_differences: {}: {} declares {:?}, which is what upstream expects",
            d.file,
            d.program,
            d.expect
        );
    }
    Ok(())
}

/// Where an upstream result came from, and the variant's declared difference, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub file: String,
    pub section: String,
    pub expected: Expected,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The reason of the variant's declared difference for this program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_difference: Option<String>,
}

/// test_loader.c's `validate_msgs` for plain substrings: each after the previous match.
/// Returns the first message not found.
fn first_missing<'a>(log: &str, msgs: &'a [String]) -> Option<&'a str> {
    let mut rest = log;
    for msg in msgs {
        match rest.find(msg.as_str()) {
            Some(at) => rest = &rest[at + msg.len()..],
            None => return Some(msg),
        }
    }
    None
}

/// What the guest reported about one case.
#[derive(Default)]
struct Observed {
    verdict: Option<Verdict>,
    retval: Option<u32>,
    run_errno: Option<i32>,
    samples: Vec<u64>,
    skipped: Option<String>,
    errors: Vec<String>,
}

fn observe(id: &str, records: &[Record]) -> Observed {
    let mut o = Observed::default();
    for record in records {
        match record {
            Record::Loaded { id: i, verdict, .. } if i == id => o.verdict = Some(verdict.clone()),
            Record::Ran { id: i, retval, run_errno, samples, .. } if i == id => {
                o.retval = Some(*retval);
                o.run_errno = *run_errno;
                o.samples = samples.clone();
            }
            Record::Skipped { id: i, reason } if i == id => o.skipped = Some(reason.clone()),
            Record::Error { id: Some(i), message } if i == id => o.errors.push(message.clone()),
            _ => {}
        }
    }
    o
}

/// Whether the observation meets an expectation: Ok(what happened) or Err(how it differs).
fn meets(o: &Observed, verdict: ExpectedVerdict, msgs: &[String], retval: Option<i32>) -> Result<String, String> {
    match (&o.verdict, verdict) {
        (None, _) => Err("no verdict reported".into()),
        (Some(Verdict::Accepted), ExpectedVerdict::Reject) => Err("accepted, expected reject".into()),
        (Some(Verdict::Rejected { errno, log }), ExpectedVerdict::Accept) => {
            let tail: Vec<&str> = log.lines().rev().take(4).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            Err(format!("rejected (errno {errno}), expected accept; the log ends with:\n{}", tail.join("\n")))
        }
        (Some(Verdict::Rejected { log, .. }), ExpectedVerdict::Reject) => match first_missing(log, msgs) {
            Some(msg) => Err(format!("rejected, but the log lacks {msg:?} (after the messages before it)")),
            None if msgs.is_empty() => Ok("rejected".into()),
            None => Ok(format!("rejected with the {} expected messages", msgs.len())),
        },
        (Some(Verdict::Accepted), ExpectedVerdict::Accept) => match (retval, o.retval, o.run_errno) {
            (None, _, _) => Ok("accepted".into()),
            (Some(_), None, _) => Err("accepted, but no test run was reported".into()),
            (Some(_), Some(_), Some(errno)) => Err(format!("the test run failed with errno {errno}")),
            (Some(want), Some(got), None) if want == POINTER_VALUE || got as i32 == want => {
                Ok(format!("accepted, returned {}", got as i32))
            }
            (Some(want), Some(got), None) => Err(format!("returned {}, expected {want}", got as i32)),
        },
    }
}

/// The result of one case on a variant, with the variant's declared difference for it.
pub fn evaluate(case: &Case, difference: Option<&Difference>, records: &[Record]) -> ProgramResult {
    let o = observe(&case.id, records);
    let mut checks = Vec::new();
    let skipped = case.skip.clone().or(o.skipped.clone());
    if skipped.is_none() {
        let e = &case.expected;
        let upstream = meets(&o, e.verdict, &e.msgs, e.retval);
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
            (Some(d), Err(_)) => match meets(&o, d.expect, &[], None) {
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
    checks.extend(o.errors.into_iter().map(|e| Check { what: "guest".into(), ok: false, detail: e }));
    let summary = crate::results::Summary::of(&o.samples);
    ProgramResult {
        id: case.id.clone(),
        object: case.file.clone(),
        program: case.program.clone(),
        prog_type: case.prog_type,
        fixed_overhead_reference: false,
        verdict: o.verdict,
        load_info: None,
        retval: o.retval,
        timing: None,
        repeat: None,
        samples: o.samples,
        summary,
        task_refs: None,
        cpumasks: None,
        run_errno: o.run_errno,
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
    }
}

/// The difference `variant` declares for a case.
pub fn difference_for<'a>(differences: &'a [Difference], case: &Case) -> Option<&'a Difference> {
    differences.iter().find(|d| d.file == case.file && d.program == case.program)
}

/// The host compiler's system include directories, passed as `-idirafter` (the selftests
/// Makefile's `get_sys_includes`: BPF programs include a few libc headers).
fn system_includes() -> anyhow::Result<Vec<String>> {
    let out = Command::new(BPF_CLANG)
        .args(["-v", "-E", "-"])
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("running {BPF_CLANG} -v -E -"))?;
    let text = String::from_utf8_lossy(&out.stderr);
    let mut dirs = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("#include <...> search starts here:") {
            inside = true;
        } else if line.starts_with("End of search list.") {
            break;
        } else if inside {
            dirs.push(line.trim().to_string());
        }
    }
    anyhow::ensure!(!dirs.is_empty(), "{BPF_CLANG} -v -E - listed no system include directories");
    Ok(dirs)
}

/// Compiles the selftest `files` from the variant's tree, as the selftests Makefile compiles
/// them for test_progs; returns object name -> path.
pub fn compile(
    cache: &Cache,
    source: &KernelSource,
    kernel: &KernelBuild,
    files: &[String],
) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let includes = guestbuild::bpf_includes(cache, source, kernel)?;
    let out_dir = kernel.objdir.join("bpf").join("upstream");
    let selftests = kernel.tree.join("tools/testing/selftests/bpf");
    let system = system_includes()?;
    let mut built = Vec::new();
    for file in files {
        let src = kernel.tree.join(PROGS_DIR).join(file);
        anyhow::ensure!(src.is_file(), "upstream: {file}: no {} in {}'s tree", src.display(), kernel.variant);
        let obj = out_dir.join(object_name(file));
        std::fs::create_dir_all(&out_dir)?;
        progress::phase(&kernel.variant, &format!("compiling upstream {file}"));
        // BPF_CFLAGS and CLANG_BPF_BUILD_RULE of the selftests Makefile (test_progs flavour),
        // without -Werror: a newer clang's new warnings must not stop the run.
        let mut cmd = Command::new(BPF_CLANG);
        cmd.args(["-g", "-Wall", "-D__TARGET_ARCH_x86", "-mlittle-endian"])
            .arg("-I")
            .arg(&includes.generated)
            .arg("-I")
            .arg(&includes.libbpf)
            .arg("-I")
            .arg(&selftests)
            .arg("-I")
            .arg(kernel.tree.join("tools/include/uapi"))
            .arg("-Wno-compare-distinct-pointer-types");
        for dir in &system {
            cmd.arg("-idirafter").arg(dir);
        }
        cmd.args(["-DENABLE_ATOMICS_TESTS", "-O2", "--target=bpf", "-mcpu=v3", "-c"]).arg(&src).arg("-o").arg(&obj);
        guestbuild::run_bpf_clang(
            &mut cmd,
            format_args!("upstream {file} does not compile against {}'s headers", kernel.variant),
        )?;
        built.push((object_name(file), obj));
    }
    Ok(built)
}

/// The programs of a compiled selftest object, in libbpf's order, with their annotations.
pub fn programs(object: &Path) -> anyhow::Result<Vec<Program>> {
    let bytes = std::fs::read(object).with_context(|| format!("reading {}", object.display()))?;
    let symbols = elf_programs(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", object.display()))?;
    let tags = decl_tags(object)?;
    symbols
        .into_iter()
        .map(|(section, name)| {
            let annotations = Annotations::parse(tags.get(&name).into_iter().flatten().map(String::as_str))
                .map_err(|e| anyhow::anyhow!("{}: program {name}: {e}", object.display()))?;
            Ok(Program { name, section, annotations })
        })
        .collect()
}

/// Each function's decl tags (component -1: on the function itself), in BTF order, from
/// `bpftool -j btf dump file`.
fn decl_tags(object: &Path) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let out =
        Command::new("bpftool").args(["-j", "btf", "dump", "file"]).arg(object).output().context("running bpftool")?;
    anyhow::ensure!(
        out.status.success(),
        "bpftool btf dump file {} failed: {}",
        object.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    tags_from_btf_json(&String::from_utf8_lossy(&out.stdout))
}

#[derive(Deserialize)]
struct BtfDump {
    types: Vec<BtfType>,
}

#[derive(Deserialize)]
struct BtfType {
    id: u32,
    kind: String,
    name: String,
    #[serde(default)]
    type_id: u32,
    #[serde(default)]
    component_idx: i64,
}

fn tags_from_btf_json(json: &str) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let dump: BtfDump = serde_json::from_str(json).context("parsing bpftool's BTF JSON")?;
    let funcs: BTreeMap<u32, &str> =
        dump.types.iter().filter(|t| t.kind == "FUNC").map(|t| (t.id, t.name.as_str())).collect();
    let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in &dump.types {
        if t.kind != "DECL_TAG" || t.component_idx != -1 {
            continue;
        }
        if let Some(func) = funcs.get(&t.type_id) {
            tags.entry(func.to_string()).or_default().push(t.name.clone());
        }
    }
    Ok(tags)
}

/// libbpf's programs in a BPF ELF object: every function symbol in an executable section other
/// than `.text` (whose functions are subprograms), as (section, name), by section then offset.
fn elf_programs(elf: &[u8]) -> Result<Vec<(String, String)>, String> {
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]])).ok_or("truncated ELF");
    let u32_at = |o: usize| elf.get(o..o + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap())).ok_or("truncated ELF");
    let u64_at = |o: usize| elf.get(o..o + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap())).ok_or("truncated ELF");
    if elf.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1][..]) {
        return Err("not a 64-bit little-endian ELF object".into());
    }
    let shoff = u64_at(0x28)? as usize;
    let (shentsize, shnum, shstrndx) = (u16_at(0x3a)? as usize, u16_at(0x3c)? as usize, u16_at(0x3e)? as usize);
    struct Section {
        name: u32,
        kind: u32,
        flags: u64,
        offset: usize,
        size: usize,
        link: usize,
    }
    let sections = (0..shnum)
        .map(|i| {
            let h = shoff + i * shentsize;
            Ok(Section {
                name: u32_at(h)?,
                kind: u32_at(h + 4)?,
                flags: u64_at(h + 8)?,
                offset: u64_at(h + 0x18)? as usize,
                size: u64_at(h + 0x20)? as usize,
                link: u32_at(h + 0x28)? as usize,
            })
        })
        .collect::<Result<Vec<_>, &str>>()?;
    let string = |table: &Section, at: u32| -> Result<String, String> {
        let start = table.offset + at as usize;
        let bytes = elf.get(start..table.offset + table.size).ok_or("string out of range")?;
        let end = bytes.iter().position(|&b| b == 0).ok_or("unterminated string")?;
        Ok(String::from_utf8_lossy(&bytes[..end]).into_owned())
    };
    let shstr = sections.get(shstrndx).ok_or("no section name table")?;
    const SHT_SYMTAB: u32 = 2;
    const SHF_EXECINSTR: u64 = 4;
    const STT_FUNC: u8 = 2;
    let symtab = sections.iter().find(|s| s.kind == SHT_SYMTAB).ok_or("no symbol table")?;
    let strtab = sections.get(symtab.link).ok_or("no symbol string table")?;
    let mut found = Vec::new();
    for at in (symtab.offset..symtab.offset + symtab.size).step_by(24) {
        let info = *elf.get(at + 4).ok_or("truncated symbol")?;
        let shndx = u16_at(at + 6)? as usize;
        if info & 0xf != STT_FUNC {
            continue;
        }
        let Some(section) = sections.get(shndx) else { continue };
        let section_name = string(shstr, section.name)?;
        if section.flags & SHF_EXECINSTR == 0 || section_name == ".text" {
            continue;
        }
        found.push((shndx, u64_at(at + 8)?, section_name, string(strtab, u32_at(at)?)?));
    }
    found.sort();
    Ok(found.into_iter().map(|(_, _, section, name)| (section, name)).collect())
}

/// Upstream cases of a run, one row each: every variant's pass, FAIL or skip; then the reasons
/// of skips, failures and declared differences.
pub fn render(run: &crate::results::RunResult) -> String {
    let mut ids: Vec<(&str, &Origin)> = Vec::new();
    for p in run.variants.iter().flat_map(|v| &v.programs) {
        if let Some(origin) = &p.upstream {
            if !ids.iter().any(|(id, _)| *id == p.id) {
                ids.push((&p.id, origin));
            }
        }
    }
    if ids.is_empty() {
        return String::new();
    }
    let mut header = vec!["upstream program".to_string(), "section".into()];
    header.extend(run.variants.iter().map(|v| v.name.clone()));
    header.push("description".into());
    let mut rows = vec![header];
    let mut notes = Vec::new();
    for (id, origin) in &ids {
        let mut row = vec![id.to_string(), origin.section.trim_start_matches('?').to_string()];
        for v in &run.variants {
            let cell = match v.programs.iter().find(|p| p.id == *id) {
                None => "-".to_string(),
                Some(p) if p.skipped.is_some() => {
                    notes.push(format!("{id} on {}: skipped: {}", v.name, p.skipped.as_deref().unwrap_or_default()));
                    "skip".into()
                }
                Some(p) => {
                    for c in p.checks.iter().filter(|c| !c.ok) {
                        notes.push(format!("{id} on {}: FAILED {}: {}", v.name, c.what, c.detail));
                    }
                    let differs = p.upstream.as_ref().and_then(|o| o.declared_difference.as_ref());
                    match (p.passed(), differs) {
                        (true, Some(reason)) => {
                            notes.push(format!("{id} on {}: differs from upstream as declared: {reason}", v.name));
                            "pass (declared difference)".into()
                        }
                        (true, None) => "pass".into(),
                        (false, _) => "FAIL".into(),
                    }
                }
            };
            row.push(cell);
        }
        row.push(origin.description.clone().unwrap_or_default());
        rows.push(row);
    }
    let mut totals = vec!["(totals)".to_string(), String::new()];
    for v in &run.variants {
        let upstream: Vec<&ProgramResult> = v.programs.iter().filter(|p| p.upstream.is_some()).collect();
        let skipped = upstream.iter().filter(|p| p.skipped.is_some()).count();
        let failed = upstream.iter().filter(|p| p.skipped.is_none() && !p.passed()).count();
        totals.push(format!("{} pass, {failed} fail, {skipped} skip", upstream.len() - skipped - failed));
    }
    rows.push(totals);
    let mut out =
        format!("\nupstream selftest programs (checked as test_loader.c does)\n{}", crate::table::render_rows(&rows));
    for note in notes {
        out.push_str(&format!("  {note}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(name: &str, section: &str, tags: &[&str]) -> Program {
        Program {
            name: name.into(),
            section: section.into(),
            annotations: Annotations::parse(tags.iter().copied()).unwrap(),
        }
    }

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
        let odd =
            Annotations::parse(["comment:test_expect_xlated=0=r0 = 1", "comment:test_prog_flags=BPF_F_SLEEPABLE"])
                .unwrap();
        assert_eq!(odd.unsupported, ["__xlated", "__flag"]);
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
        let cases = cases("demo.c", &programs);
        let by = |name: &str| cases.iter().find(|c| c.program == name).unwrap();
        assert_eq!(by("reject").id, "demo/reject");
        assert_eq!(by("reject").expected.verdict, ExpectedVerdict::Reject);
        assert_eq!((by("reject").prog_type, by("reject").runs), (ProgType::Any, false));
        assert_eq!((by("ret").prog_type, by("ret").runs, by("ret").expected.retval), (ProgType::Tc, true, Some(64)));
        assert_eq!(by("sys").prog_type, ProgType::Syscall);
        assert!(by("sock").skip.as_deref().unwrap().contains("runs only tc and syscall"));
        assert_eq!((by("tp").prog_type, by("tp").skip.as_ref()), (ProgType::Any, None));
        // test_loader never runs a program it expects to be rejected: its retval is moot.
        assert_eq!((by("fail_ret").skip.as_ref(), by("fail_ret").expected.retval), (None, None));
        for skipped in ["arm", "regex", "ok_msg", "ext"] {
            assert!(by(skipped).skip.is_some(), "{skipped}");
        }
        let plan = plan(&cases);
        assert_eq!(plan.len(), cases.iter().filter(|c| c.skip.is_none()).count());
        let ret = plan.iter().find(|p| p.program == "ret").unwrap();
        assert!(ret.test_loader_run && !ret.load_only && ret.object == "demo.upstream.o");

        let with_aux = [program("aux", "tc", &["comment:test_auxiliary"]), program("t", "tc", &[])];
        let cases = super::cases("aux.c", &with_aux);
        assert_eq!(cases.len(), 1, "an auxiliary program is not a case");
        assert!(cases[0].skip.as_deref().unwrap().contains("__auxiliary"));
    }

    #[test]
    fn messages_match_in_order_as_substrings() {
        let msgs = |m: &[&str]| m.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let log = "0: R1=ctx()\ncall bpf_throw\nUnreleased reference id=2\nprocessed 5 insns";
        assert_eq!(first_missing(log, &msgs(&["bpf_throw", "Unreleased reference"])), None);
        assert_eq!(first_missing(log, &msgs(&["Unreleased reference", "bpf_throw"])), Some("bpf_throw"));
        assert_eq!(first_missing(log, &msgs(&["id=2", "id=2"])), Some("id=2"));
        assert_eq!(first_missing(log, &[]), None);
    }

    fn case(verdict: ExpectedVerdict, msgs: &[&str], retval: Option<i32>) -> Case {
        Case {
            id: "f/p".into(),
            file: "f.c".into(),
            program: "p".into(),
            section: "tc".into(),
            prog_type: if retval.is_some() { ProgType::Tc } else { ProgType::Any },
            runs: retval.is_some(),
            expected: Expected { verdict, msgs: msgs.iter().map(|s| s.to_string()).collect(), retval },
            description: None,
            skip: None,
        }
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
        }
    }

    fn difference(expect: ExpectedVerdict) -> Difference {
        Difference { file: "f.c".into(), program: "p".into(), expect, reason: "unwinding releases it".into() }
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
        assert_eq!(crate::metrics::Outcome::of(&r).short(), "skip");
        let error = Record::Error { id: Some("f/p".into()), message: "libbpf failed".into() };
        assert!(!evaluate(&case(ExpectedVerdict::Accept, &[], None), None, &[error]).passed());
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
    }

    #[test]
    fn decl_tags_are_grouped_by_function_in_btf_order() {
        let json = r#"{"types":[
            {"id":1,"kind":"FUNC","name":"prog","type_id":9,"linkage":"global"},
            {"id":2,"kind":"DECL_TAG","name":"comment:test_expect_failure","type_id":1,"component_idx":-1},
            {"id":3,"kind":"DECL_TAG","name":"comment:test_expect_msg=0=b","type_id":1,"component_idx":-1},
            {"id":4,"kind":"DECL_TAG","name":"arg tag","type_id":1,"component_idx":0},
            {"id":5,"kind":"DECL_TAG","name":"comment:test_expect_msg=1=a","type_id":1,"component_idx":-1},
            {"id":6,"kind":"VAR","name":"x","type_id":7,"linkage":"global"}]}"#;
        let tags = tags_from_btf_json(json).unwrap();
        assert_eq!(
            tags["prog"],
            ["comment:test_expect_failure", "comment:test_expect_msg=0=b", "comment:test_expect_msg=1=a"]
        );
    }

    #[test]
    fn programs_are_the_functions_of_executable_sections_other_than_text() {
        // A minimal ELF: null, .shstrtab, .text, ?tc, .symtab, .strtab.
        let shstr = b"\0.shstrtab\0.text\0?tc\0.symtab\0.strtab\0";
        let strtab = b"\0sub\0second\0first\0";
        let sym = |name: u32, info: u8, shndx: u16, value: u64| {
            let mut s = Vec::new();
            s.extend(name.to_le_bytes());
            s.push(info);
            s.push(0);
            s.extend(shndx.to_le_bytes());
            s.extend(value.to_le_bytes());
            s.extend(0u64.to_le_bytes());
            s
        };
        let symtab: Vec<u8> =
            [sym(0, 0, 0, 0), sym(1, 0x12, 2, 0), sym(5, 0x12, 3, 16), sym(12, 0x12, 3, 0), sym(5, 0x11, 3, 8)]
                .concat();
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1]);
        let mut data_at = Vec::new();
        for part in [&shstr[..], &symtab[..], &strtab[..]] {
            data_at.push(elf.len());
            elf.extend_from_slice(part);
        }
        let shoff = elf.len();
        let header = |name: u32, kind: u32, flags: u64, offset: usize, size: usize, link: u32| {
            let mut h = vec![0u8; 64];
            h[0..4].copy_from_slice(&name.to_le_bytes());
            h[4..8].copy_from_slice(&kind.to_le_bytes());
            h[8..16].copy_from_slice(&flags.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&(offset as u64).to_le_bytes());
            h[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
            h[0x28..0x2c].copy_from_slice(&link.to_le_bytes());
            h
        };
        for h in [
            header(0, 0, 0, 0, 0, 0),
            header(1, 3, 0, data_at[0], shstr.len(), 0),
            header(11, 1, 6, 0, 0, 0),
            header(17, 1, 6, 0, 0, 0),
            header(21, 2, 0, data_at[1], symtab.len(), 5),
            header(29, 3, 0, data_at[2], strtab.len(), 0),
        ] {
            elf.extend(h);
        }
        elf[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&6u16.to_le_bytes());
        elf[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        let programs = elf_programs(&elf).unwrap();
        assert_eq!(programs, [("?tc".to_string(), "first".to_string()), ("?tc".into(), "second".into())]);
        assert!(elf_programs(b"not an elf").is_err());
    }
}
