//! Upstream's own annotated selftest programs (`tools/testing/selftests/bpf/progs/*.c` in each
//! variant's tree), checked the way upstream's `test_loader.c` checks them.
//!
//! Each file is compiled with the tree's own headers and flags (as the selftests Makefile does;
//! `guest::objects`), its programs are read from the object's ELF symbols and their annotations
//! from the BTF decl tags `bpf_misc.h` writes (`object`). Every program becomes one case
//! (`annotations`), loaded alone in the guest; a case with `__retval` on a type the runner can
//! run (tc, syscall) also runs once as test_loader runs it. A case the harness or the guest
//! cannot check is skipped with the reason, never passed; `verdict::selftest` judges the rest.
//!
//! A variant may declare where it knowingly differs from upstream (`upstream_differences` in its
//! `variant.yaml`); a declared difference must happen, and any other difference fails.

pub mod annotations;
pub mod disasm;
pub mod drivers;
pub mod object;
pub mod options;

/// Where the BPF selftests live in a kernel tree.
pub const SELFTESTS_DIR: &str = "tools/testing/selftests/bpf";
/// Where the selftest programs live in a kernel tree.
pub const PROGS_DIR: &str = "tools/testing/selftests/bpf/progs";

/// A skip reason's kind, for counting skips by reason: the reason without what names the case
/// (the driver, the kfunc, the program type).
pub fn skip_kind(reason: &str) -> &str {
    const KINDS: &[(&str, &str)] = &[
        ("driven by hand by prog_tests/", "driven by hand by a prog_tests/ driver, not test_loader"),
        ("no prog_tests/ driver", "no prog_tests/ driver runs it"),
        ("not in prog_tests/", "not in its driver's RUN_SUCCESS table"),
        ("its tail call target", "set up by its driver"),
        ("its __retval run needs the maps", "maps filled by prog_tests/verifier.c before the run"),
        ("bpf_testmod", "needs bpf_testmod"),
        ("only unprivileged-mode", "unprivileged mode only"),
        ("__arch(", "not for x86_64"),
        ("uses ", "annotations the harness does not check (__jited, __btf_path)"),
        ("a freplace", "freplace/struct_ops target set up by its test"),
        ("a struct_ops", "freplace/struct_ops target set up by its test"),
        ("this kernel does not support", "a program type this kernel lacks (e.g. netfilter)"),
        ("attach target not in this kernel", "an attach target this kernel lacks (e.g. lsm/audit_rule_known)"),
        (
            "a kfunc the object uses is not in this kernel",
            "a kfunc this kernel lacks (e.g. bpf_verify_pkcs7_signature)",
        ),
        ("does not compile", "does not compile, on baseline either"),
        ("a map the object declares cannot be created", "a map type this kernel lacks"),
        ("needs CONFIG_", "a kernel option the base config leaves out"),
    ];
    KINDS
        .iter()
        .find(|(marker, _)| match *marker {
            // Anywhere in the reason: the case's names come first.
            "bpf_testmod" | "does not compile" => reason.contains(marker),
            _ => reason.starts_with(marker),
        })
        .map_or(reason, |(_, kind)| kind)
}

/// test_loader's annotations in a program's source (`bpf_misc.h`'s macros): a file with none is
/// not an annotated file.
const ANNOTATIONS: &[&str] = &["__success", "__failure", "__msg(", "__retval(", "__description("];

/// The scenario's `upstream` entries with each pattern (`*` for any run of characters) replaced
/// by the annotated files of `progs` it matches, in name order; a file named outright stays,
/// once.
pub fn expand(entries: &[String], progs: &std::path::Path) -> anyhow::Result<Vec<String>> {
    use anyhow::Context;
    let mut files: Vec<String> = Vec::new();
    let mut annotated: Option<Vec<String>> = None;
    for entry in entries {
        if !entry.contains('*') {
            if !files.contains(entry) {
                files.push(entry.clone());
            }
            continue;
        }
        if annotated.is_none() {
            let mut found = Vec::new();
            for dirent in std::fs::read_dir(progs).with_context(|| format!("reading {}", progs.display()))? {
                let path = dirent?.path();
                let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
                if !name.ends_with(".c") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                if ANNOTATIONS.iter().any(|a| text.contains(a)) {
                    found.push(name);
                }
            }
            found.sort();
            annotated = Some(found);
        }
        for name in annotated.iter().flatten() {
            if matches(entry, name) && !files.contains(name) {
                files.push(name.clone());
            }
        }
    }
    Ok(files)
}

/// Whether `name` matches `pattern`, where `*` stands for any run of characters.
fn matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else { return false };
            (0..=rest.len()).filter(|&i| rest.is_char_boundary(i)).any(|i| matches(tail, &rest[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_are_counted_by_kind() {
        let hand = "driven by hand by prog_tests/linked_list.c, not by test_loader: what it expects is C code";
        assert_eq!(skip_kind(hand), "driven by hand by a prog_tests/ driver, not test_loader");
        let testmod = "calls bpf_kfunc_call_test1, a kfunc only bpf_testmod (the selftests' module) provides";
        assert_eq!(skip_kind(testmod), "needs bpf_testmod");
        assert_eq!(skip_kind("something new"), "something new", "an unknown reason is its own kind");
    }

    #[test]
    fn patterns_name_the_annotated_files_they_match() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("verifier_and.c", "SEC(\"socket\") __success int f(void) { return 0; }"),
            ("verifier_or.c", "__failure __msg(\"x\") int g(void);"),
            ("verifier_plain.c", "int h(void) { return 0; }"),
            ("cpumask_success.c", "__success int c(void);"),
            ("notes.h", "__success"),
        ] {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let expand =
            |entries: &[&str]| expand(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>(), dir.path()).unwrap();
        assert_eq!(expand(&["verifier_*.c"]), ["verifier_and.c", "verifier_or.c"]);
        assert_eq!(expand(&["cpumask_success.c", "*.c"]), ["cpumask_success.c", "verifier_and.c", "verifier_or.c"]);
        assert_eq!(expand(&["*_or.c"]), ["verifier_or.c"]);
        assert_eq!(expand(&["missing.c"]), ["missing.c"], "a named file is checked when it is compiled");
        assert!(matches("a*b*c", "aXbYc") && !matches("a*b", "ab_") && matches("*", ""));
    }
}
