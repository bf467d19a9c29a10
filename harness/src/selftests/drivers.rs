//! Who runs a selftest file upstream, read from the tree's `prog_tests/*.c`: test_loader (which
//! checks the annotations), a hand-written driver (whose expectations are C code), or nobody;
//! and the kfuncs that only the selftests' `bpf_testmod` module provides.

use anyhow::Context;
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// How upstream runs one selftest file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Driver {
    /// `RUN_TESTS(<stem>)`, or `prog_tests/verifier.c`'s `RUN(<stem>)`: test_loader checks the
    /// annotations. `pre_execution`: a callback fills maps before each `__retval` run.
    TestLoader { pre_execution: bool },
    /// A hand-written driver whose `RUN_SUCCESS(prog, retval)` lines run a program once on
    /// `pkt_v4` and check its return value (`prog_tests/exceptions.c`); its other checks are C
    /// code.
    RunSuccess { driver: String, retvals: BTreeMap<String, i32> },
    /// A hand-written driver: what it expects is C code, not annotations.
    ByHand { driver: String },
    /// No `prog_tests/` file opens it.
    Undriven,
}

/// Programs in a `RUN_SUCCESS` table that need set-up the driver does before the runs and the
/// runner does not, with what it is.
pub const DRIVER_SET_UP: &[(&str, &str, &str)] = &[(
    "exceptions.c",
    "exception_tail_call",
    "its tail call target is put into jmp_table by prog_tests/exceptions.c before the run",
)];

/// What the tree's `prog_tests/` drivers and `bpf_testmod` say about the files of `progs/`.
#[derive(Debug, Default)]
pub struct Drivers {
    /// File stem -> whether a pre-execution callback fills its maps.
    test_loader: BTreeMap<String, bool>,
    /// File stem -> the driver that opens its skeleton by hand, and its `RUN_SUCCESS` table.
    by_hand: BTreeMap<String, (String, BTreeMap<String, i32>)>,
    /// Kfuncs `bpf_testmod` registers.
    pub testmod_kfuncs: BTreeSet<String>,
    /// File stem -> the capabilities its driver drops before test_loader loads it (a mask of
    /// `CAP_*` bits): `prog_tests/verifier.c` runs without CAP_SYS_ADMIN, and some of its tests
    /// drop more.
    dropped_caps: BTreeMap<String, u64>,
}

/// The capabilities a driver names, by number (linux/capability.h).
fn capability(name: &str) -> Option<u32> {
    Some(match name {
        "CAP_NET_ADMIN" => 12,
        "CAP_SYS_ADMIN" => 21,
        "CAP_PERFMON" => 38,
        "CAP_BPF" => 39,
        _ => return None,
    })
}

impl Drivers {
    /// Reads `<selftests>/prog_tests/*.c` and `<selftests>/bpf_testmod/*.c`.
    pub fn read(selftests: &Path) -> anyhow::Result<Drivers> {
        let mut sources = Vec::new();
        let dir = selftests.join("prog_tests");
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "c") {
                let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
                let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                sources.push((name, text));
            }
        }
        sources.sort();
        let mut testmod = String::new();
        let testmod_dir = selftests.join("bpf_testmod");
        if let Ok(entries) = std::fs::read_dir(&testmod_dir) {
            for entry in entries {
                let path = entry?.path();
                if path.extension().is_some_and(|e| e == "c") {
                    testmod.push_str(&std::fs::read_to_string(&path)?);
                }
            }
        }
        Ok(Drivers::parse(&sources, &testmod))
    }

    /// `sources`: each `prog_tests/` file's name and text; `testmod`: bpf_testmod's C code.
    pub fn parse(sources: &[(String, String)], testmod: &str) -> Drivers {
        let run_tests = Regex::new(r"\bRUN_TESTS\(\s*(\w+)\s*\)").expect("valid");
        let verifier_run = Regex::new(r"\bRUN\(\s*(\w+)\s*\)").expect("valid");
        let with_callback = Regex::new(r#"\brun_tests_aux\(\s*"(\w+)"\s*,\s*\w+\s*,\s*(\w+)\s*\)"#).expect("valid");
        let skeleton = Regex::new(r#"#include\s+"(\w+)\.skel\.h""#).expect("valid");
        let run_success = Regex::new(r"\bRUN_SUCCESS\(\s*(\w+)\s*,\s*(-?\w+)\s*\)").expect("valid");
        let kfunc = Regex::new(r"\bBTF_ID_FLAGS\(\s*func\s*,\s*(\w+)").expect("valid");
        let test_function = Regex::new(r"(?s)\nvoid test_\w+\(void\)\n\{(.*?)\n\}").expect("valid");
        let cap_drop = Regex::new(r"(?s)cap_disable_effective\((.*?)\)\s*;").expect("valid");
        let cap_name = Regex::new(r"CAP_[A-Z_]+").expect("valid");
        let mut drivers = Drivers::default();
        for (name, text) in sources {
            for c in run_tests.captures_iter(text) {
                drivers.test_loader.insert(c[1].to_string(), false);
            }
            if name == "verifier.c" {
                // run_tests_aux() drops CAP_SYS_ADMIN around every file it runs.
                let sys_admin = 1u64 << capability("CAP_SYS_ADMIN").expect("known");
                for c in verifier_run.captures_iter(text) {
                    drivers.test_loader.insert(c[1].to_string(), false);
                    drivers.dropped_caps.insert(c[1].to_string(), sys_admin);
                }
                for c in with_callback.captures_iter(text) {
                    drivers.test_loader.insert(c[1].to_string(), &c[2] != "NULL");
                    drivers.dropped_caps.insert(c[1].to_string(), sys_admin);
                }
                // A test function that drops more before its RUN() (test_verifier_mtu).
                for body in test_function.captures_iter(text) {
                    let Some(drop) = cap_drop.captures(&body[1]) else { continue };
                    let mask = cap_name
                        .find_iter(&drop[1])
                        .filter_map(|m| capability(m.as_str()))
                        .fold(0u64, |mask, bit| mask | 1 << bit);
                    for run in verifier_run.captures_iter(&body[1]) {
                        *drivers.dropped_caps.entry(run[1].to_string()).or_default() |= mask;
                    }
                }
            }
        }
        for (name, text) in sources {
            // RUN_SUCCESS is the driver's own macro: only a driver that defines it has the table.
            let defines_run_success = text.contains("#define RUN_SUCCESS(") && text.contains("pkt_v4");
            for c in skeleton.captures_iter(text) {
                let stem = &c[1];
                if drivers.test_loader.contains_key(stem) || drivers.by_hand.contains_key(stem) {
                    continue;
                }
                // A program's first RUN_SUCCESS: later ones run it with extensions attached.
                let mut retvals = BTreeMap::new();
                if defines_run_success {
                    for c in run_success.captures_iter(text) {
                        if let Some(value) = parse_c_int(&c[2]) {
                            retvals.entry(c[1].to_string()).or_insert(value);
                        }
                    }
                }
                drivers.by_hand.insert(stem.to_string(), (name.clone(), retvals));
            }
        }
        drivers.testmod_kfuncs = kfunc.captures_iter(testmod).map(|c| c[1].to_string()).collect();
        drivers
    }

    /// The capabilities (a mask of `CAP_*` bits) upstream's driver drops before loading `file`.
    pub fn dropped_caps(&self, file: &str) -> u64 {
        self.dropped_caps.get(file.trim_end_matches(".c")).copied().unwrap_or(0)
    }

    /// Who runs `file` (`name.c` of `progs/`) upstream.
    pub fn of(&self, file: &str) -> Driver {
        let stem = file.trim_end_matches(".c");
        if let Some(&pre_execution) = self.test_loader.get(stem) {
            return Driver::TestLoader { pre_execution };
        }
        match self.by_hand.get(stem) {
            Some((driver, retvals)) if !retvals.is_empty() => {
                Driver::RunSuccess { driver: driver.clone(), retvals: retvals.clone() }
            }
            Some((driver, _)) => Driver::ByHand { driver: driver.clone() },
            None => Driver::Undriven,
        }
    }
}

/// A C integer literal (decimal or 0x hex, maybe negative).
fn parse_c_int(text: &str) -> Option<i32> {
    let (negative, digits) = text.strip_prefix('-').map_or((false, text), |d| (true, d));
    let value = match digits.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).ok()?,
        None => digits.parse::<i64>().ok()?,
    };
    i32::try_from(if negative { -value } else { value }).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(name: &str, text: &str) -> (String, String) {
        (name.to_string(), text.to_string())
    }

    #[test]
    fn drivers_are_read_from_prog_tests_as_upstream_runs_them() {
        let sources = [
            source("cpumask.c", "#include \"cpumask_success.skel.h\"\nRUN_TESTS(cpumask_success);\n"),
            source(
                "verifier.c",
                "#include \"verifier_and.skel.h\"\nvoid test_verifier_and(void) { RUN(verifier_and); }\n\
                 run_tests_aux(\"verifier_array_access\", verifier_array_access__elf_bytes, init_array_access_maps);\n\
                 run_tests_aux(\"verifier_plain\", verifier_plain__elf_bytes, NULL);\n\
                 \nvoid test_verifier_mtu(void)\n{\n\tret = cap_disable_effective(1ULL << CAP_SYS_ADMIN | 1ULL << CAP_PERFMON, NULL);\n\
                 \tRUN(verifier_mtu);\n}\n",
            ),
            source(
                "exceptions.c",
                "#include \"exceptions.skel.h\"\n#include \"exceptions_fail.skel.h\"\nRUN_TESTS(exceptions_fail);\n\
                 LIBBPF_OPTS(bpf_test_run_opts, ropts, .data_in = &pkt_v4);\n\
                 #define RUN_SUCCESS(_prog, return_val) ...\n\
                 RUN_SUCCESS(exception_throw_always_1, 64);\nRUN_SUCCESS(exception_bad, -0x10);\n\
                 RUN_SUCCESS(exception_throw_always_1, 128);\n",
            ),
            source("linked_list.c", "#include \"linked_list_fail.skel.h\"\nstatic struct { ... } fail_tests[];\n"),
        ];
        let drivers = Drivers::parse(&sources, "BTF_ID_FLAGS(func, bpf_kfunc_call_test1)\n");
        assert_eq!(drivers.of("cpumask_success.c"), Driver::TestLoader { pre_execution: false });
        assert_eq!(drivers.of("verifier_and.c"), Driver::TestLoader { pre_execution: false });
        assert_eq!(drivers.of("verifier_array_access.c"), Driver::TestLoader { pre_execution: true });
        assert_eq!(drivers.of("verifier_plain.c"), Driver::TestLoader { pre_execution: false });
        assert_eq!(drivers.of("exceptions_fail.c"), Driver::TestLoader { pre_execution: false });
        let Driver::RunSuccess { driver, retvals } = drivers.of("exceptions.c") else { panic!("a RUN_SUCCESS table") };
        assert_eq!(driver, "exceptions.c");
        assert_eq!((retvals["exception_throw_always_1"], retvals["exception_bad"]), (64, -16));
        assert_eq!(drivers.of("linked_list_fail.c"), Driver::ByHand { driver: "linked_list.c".into() });
        assert_eq!(drivers.of("nobody.c"), Driver::Undriven);
        assert!(drivers.testmod_kfuncs.contains("bpf_kfunc_call_test1"));
        assert_eq!(drivers.dropped_caps("verifier_and.c"), 1 << 21, "verifier.c runs without CAP_SYS_ADMIN");
        assert_eq!(
            drivers.dropped_caps("verifier_mtu.c"),
            1 << 21 | 1 << 38,
            "and test_verifier_mtu without CAP_PERFMON"
        );
        assert_eq!(drivers.dropped_caps("cpumask_success.c"), 0);
    }
}
