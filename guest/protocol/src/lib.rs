//! The contract between the host harness and the guest runner.
//!
//! The host writes a [`Plan`] as JSON (`/plan.json`) and the BPF objects into the run's
//! [`payload`], which the runner unpacks into its root. The runner executes the plan and sends
//! [`Record`]s back over a dedicated serial line, one per line, each prefixed with
//! [`RECORD_PREFIX`]. The console is never parsed for results: only this channel is.

pub mod payload;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where the plan lives inside the guest (once the payload is unpacked).
pub const PLAN_PATH: &str = "/plan.json";
/// Where the BPF objects live inside the guest.
pub const BPF_DIR: &str = "/bpf";
/// The guest device of the results channel (QEMU's second serial port).
pub const RESULTS_DEVICE: &str = "/dev/ttyS1";
/// The object and program the runner uses to count pid 1's task references (see
/// [`Measure::count_task_refs`]).
pub const PROBES_OBJECT: &str = "probes.bpf.o";
pub const TASK_REFS_PROBE: &str = "task_rcu_users";
/// The object the runner attaches around an extra, untimed load of each program to measure the
/// verifier's peak memory ([`LoadInfo::verifier_peak_bytes`]; guest/bpf/verifier_mem.bpf.c).
/// Every plan's image carries it.
pub const VERIFIER_MEM_OBJECT: &str = "verifier_mem.bpf.o";
/// The version of this contract, which the runner reports in [`Record::Hello`]: the host checks
/// it, so a runner built from another checkout is noticed instead of misread.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// On the kernel command line: the runner waits, before its first record, until the host writes
/// a line to the console. The host saves the guest there once and restores it for every run.
pub const WAIT_ARG: &str = "bpfh.wait";
/// What the runner prints on the console when it waits (`bpfh: ` + this).
pub const WAITING: &str = "waiting for the host";
/// Marks a record line; anything else on the channel is a protocol error.
pub const RECORD_PREFIX: &str = "@bpfh1 ";

/// What the guest must do in one boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub scenario: String,
    pub variant: String,
    /// Only prove that the guest reaches user space (used to probe KVM), then power off.
    #[serde(default)]
    pub probe_only: bool,
    pub programs: Vec<ProgramPlan>,
    /// Fields a patched kernel appends to `struct bpf_prog_info` (declared by the variant), read
    /// after loading and reported in [`LoadInfo::extra`].
    #[serde(default)]
    pub info_fields: Vec<InfoField>,
    /// LKDTM crash types to trigger after the programs ([`PROVOKE_PATH`]), to prove that the
    /// host catches the kernel faults they cause (a crash type the kernel lacks is an `Error`).
    #[serde(default)]
    pub provoke: Vec<String>,
}

/// LKDTM's trigger: writing a crash type's name here provokes it at once (CONFIG_LKDTM).
pub const PROVOKE_PATH: &str = "/sys/kernel/debug/provoke-crash/DIRECT";
/// kmemleak's control file (CONFIG_DEBUG_KMEMLEAK): the runner writes `scan` to it after the
/// programs; leaks found are printed on the console, where the host looks for them.
pub const KMEMLEAK_PATH: &str = "/sys/kernel/debug/kmemleak";

/// A `struct bpf_prog_info` field that the runner's libbpf headers do not know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfoField {
    pub name: String,
    /// Byte offset in `struct bpf_prog_info`.
    pub offset: u32,
    /// 4 or 8 bytes, native endian, unsigned.
    pub size: u32,
}

/// test_loader.c's input size for a test run (tc programs see a packet this long).
pub const TEST_DATA_LEN: usize = 64;

/// test_progs' `pkt_v4` (`struct ipv4_packet`, filled in network_helpers.c): an Ethernet header
/// (ETH_P_IP), an IPv4 header (ihl 5 but version 0, tot_len MAGIC_BYTES = 123, TCP) and a TCP
/// header (doff 5, urg_ptr 123 in host order, as upstream writes it); every other byte zero.
pub const PKT_V4: [u8; 54] = {
    let mut p = [0u8; 54];
    p[12] = 0x08; // h_proto = htons(ETH_P_IP)
    p[14] = 5; // ihl 5
    p[17] = 123; // tot_len = htons(123)
    p[23] = 6; // protocol = IPPROTO_TCP
    p[34 + 12] = 5 << 4; // doff 5
    p[34 + 18] = 123; // urg_ptr = 123, little endian
    p
};

/// The tc test packet's length range: an Ethernet header at least, at most the default packet
/// (an IPv4/UDP frame with payload).
pub const MIN_PACKET_BYTES: usize = 14;
pub const MAX_PACKET_BYTES: usize = 64;

/// The largest `struct bpf_prog_info` the runner asks the kernel for: room for fields a patched
/// kernel appends (the kernel accepts a longer buffer as long as the tail is zero).
pub const MAX_PROG_INFO_BYTES: u32 = 512;

/// The BPF program types the runner can load and run with `BPF_PROG_TEST_RUN`, and `Any`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProgType {
    /// `SEC("tc")`: BPF_PROG_TYPE_SCHED_CLS, run on a synthetic packet with `repeat`.
    Tc,
    /// `SEC("syscall")`: runs once per test run, timed through the kernel's BPF run-time statistics.
    Syscall,
    /// `SEC("fentry/bpf_fentry_test1")`: attached, then run by a test run of the tracing type
    /// (which calls `bpf_fentry_test1()` once) and timed like a syscall program. The test run's
    /// retval is the kernel's check of the `bpf_fentry_test*` calls, not the program's.
    Fentry,
    /// Any type, as the object's section says: loaded only, for its verdict (upstream selftest
    /// programs of types the runner cannot run, or that need attaching to a live hook). A kernel
    /// without the type, or without the attach target, makes it [`Record::Skipped`].
    Any,
}

impl ProgType {
    pub fn as_str(self) -> &'static str {
        match self {
            ProgType::Tc => "tc",
            ProgType::Syscall => "syscall",
            ProgType::Fentry => "fentry",
            ProgType::Any => "any",
        }
    }
}

/// One program to load and what to do with it once loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramPlan {
    /// Unique label of this program in the scenario (used in every record about it).
    pub id: String,
    /// Object file name under [`BPF_DIR`].
    pub object: String,
    /// Program (function) name inside the object.
    pub program: String,
    pub prog_type: ProgType,
    pub action: Action,
    /// `BPF_F_*` load flags or'ed into the program's (upstream test_loader's `__flag`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prog_flags: u32,
    /// Programs of the same object loaded beside this one (test_loader's `__auxiliary`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auxiliary: Vec<String>,
    /// The verifier log level of the load (test_loader's `__log_level`; 0: no log unless the
    /// load fails, when it is loaded again at level 1, as libbpf does). With any level the log
    /// of an accepted load is reported too ([`Record::Log`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub log_level: u32,
    /// Effective capabilities (a mask of `CAP_*` bits) dropped around the load, as upstream's
    /// driver drops them (`prog_tests/verifier.c` loads without CAP_SYS_ADMIN).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub drop_caps: u64,
    /// Report the program's instructions after the verifier's rewrites ([`Record::Xlated`]),
    /// for test_loader's `__xlated`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub xlated: bool,
}

/// What the runner does with a program the verifier accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Nothing: the verdict is what counts (a program expected to be rejected, or one whose type
    /// the runner cannot run).
    Load,
    /// Run once as upstream's selftest loader (test_loader.c) does for `__retval`: a syscall
    /// program without context, any other type on [`TEST_DATA_LEN`] zero bytes; no warm-up run.
    TestLoaderRun,
    /// Run once on test_progs' `pkt_v4` ([`PKT_V4`]), as a hand-written `prog_tests/` driver
    /// runs a tc program it checks the return value of.
    RunOnPktV4,
    /// A warm-up run, an optional traced run, then `samples` timed runs.
    Measure(Measure),
}

/// How a program is measured, and what is counted around its runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    /// Test runs per sample (tc only; syscall programs always run once per sample).
    pub repeat: u32,
    /// Length of the tc test packet (14 to 64 bytes; default 64, an IPv4/UDP frame).
    #[serde(default)]
    pub packet_bytes: Option<u32>,
    /// Number of samples to take.
    pub samples: u32,
    /// Read pid 1's task reference count (`rcu_users`) before the first run and after the last,
    /// and report both: a program that leaks task references leaves it higher.
    #[serde(default)]
    pub count_task_refs: bool,
    /// Count the cpumask references the program takes and drops during its warm-up run
    /// (counting programs are attached only then, so they add nothing to the samples).
    #[serde(default)]
    pub count_cpumasks: bool,
    /// sysctls (`kernel.foo` names) set before loading (some change what the verifier or the JIT
    /// do: `net.core.bpf_jit_harden`) and restored after the runs.
    #[serde(default)]
    pub sysctls: BTreeMap<String, String>,
    /// tracefs event groups or events (`bpf_ref`, `bpf_ref/bpf_ref_acquire`) to record during one
    /// extra, untimed run before the samples; reported as [`Record::Trace`].
    #[serde(default)]
    pub trace_events: Vec<String>,
    /// The stop contract's budget ([`WATCHDOG_SYSCTL`]) for each test run, set around the runs
    /// when the kernel has the sysctl (a kernel without a watchdog runs the program to its end);
    /// [`Record::Ran`] says whether it was set and times each test run's system call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_budget_ns: Option<u64>,
}

/// The stop contract's budget: a test run of a program that runs longer is stopped and fails
/// with `ECANCELED` (0: no budget). Variants that can stop programs have it.
pub const WATCHDOG_SYSCTL: &str = "kernel.bpf_watchdog_budget_ns";

/// How the guest measured a run's duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Timing {
    /// `BPF_PROG_TEST_RUN`'s `duration`: the kernel's average per run over `repeat` runs.
    TestRunDuration,
    /// `bpf_prog_info.run_time_ns / run_cnt` deltas with `kernel.bpf_stats_enabled=1`.
    BpfStats,
}

/// The verifier's answer for one program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Accepted,
    Rejected {
        /// errno returned by BPF_PROG_LOAD (positive).
        errno: i32,
        /// The verifier log (may be truncated by libbpf to its tail).
        log: String,
    },
}

/// Load-time facts about an accepted program, from `bpf_prog_info` and the verifier's statistics
/// (`log_level` 4, the numbers veristat shows).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadInfo {
    pub verified_insns: u32,
    pub xlated_len: u32,
    pub jited_len: u32,
    /// The verifier's own clock, in guest microseconds (thousands of instructions under icount).
    #[serde(default)]
    pub verification_time_us: Option<u64>,
    #[serde(default)]
    pub total_states: Option<u32>,
    #[serde(default)]
    pub peak_states: Option<u32>,
    #[serde(default)]
    pub max_states_per_insn: Option<u32>,
    /// The most memory the kernel held at once while loading the program (slab objects and
    /// vmalloc areas allocated inside `BPF_PROG_LOAD`: the verifier and the JIT, traced in an extra load with
    /// [`VERIFIER_MEM_OBJECT`]): veristat's `mem_peak`. None where it could not be measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifier_peak_bytes: Option<u64>,
    /// The variant's own `bpf_prog_info` fields ([`Plan::info_fields`]), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, u64>,
}

/// A message from the guest runner to the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    /// The runner started; sent first. `runner_version` is the runner's [`VERSION`].
    Hello { kernel_release: String, runner_version: String },
    /// The verifier's verdict on a program.
    Loaded {
        id: String,
        #[serde(flatten)]
        verdict: Verdict,
        #[serde(default)]
        info: Option<LoadInfo>,
    },
    /// All samples of one program's runs.
    Ran {
        id: String,
        /// Return value of the last run (every run of a sample must agree; see `retval_mismatch`).
        retval: u32,
        /// True when runs returned different values.
        #[serde(default)]
        retval_mismatch: bool,
        timing: Timing,
        /// Runs per sample.
        repeat: u32,
        /// Per-run duration of each sample, in guest nanoseconds (instructions under icount).
        samples: Vec<u64>,
        /// errno of test runs the kernel failed (ECANCELED: a watchdog cancelled them); the
        /// program ran, so for syscall programs the sample still counts; tc gives no duration.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_errno: Option<i32>,
        /// How many of the runs (warm-up and traced runs included) failed with `run_errno`.
        #[serde(default, skip_serializing_if = "is_zero")]
        failed_runs: u32,
        /// With a stop budget ([`Measure::stop_budget_ns`]): whether the kernel has the
        /// watchdog sysctl, so that the budget was set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        watchdog: Option<bool>,
        /// With a stop budget: guest ns (instructions under icount) of each sample's
        /// `BPF_PROG_TEST_RUN` system call, from before it is entered to after it returns.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        call_ns: Vec<u64>,
    },
    /// The tracefs lines recorded during one run ([`Measure::trace_events`]).
    Trace { id: String, lines: Vec<String> },
    /// pid 1's task reference count around a program's runs (warm-up run included).
    TaskRefs { id: String, before: i64, after: i64 },
    /// cpumask references taken and dropped during the warm-up run.
    Cpumasks { id: String, count: ObjectCount },
    /// The program was not loaded, because this kernel cannot load it (lacks its program type or
    /// its attach target); `reason` says which.
    Skipped { id: String, reason: String },
    /// The verifier log of an accepted load, when the plan asked for a log level
    /// ([`ProgramPlan::log_level`]); a rejected load's log is in its [`Verdict`].
    Log { id: String, log: String },
    /// An accepted program's instructions after the verifier's rewrites (`xlated_prog_insns`),
    /// each 8-byte `struct bpf_insn` as a little-endian number, when the plan asked for them.
    Xlated { id: String, insns: Vec<u64> },
    /// Something went wrong for a program (or for the whole run when `id` is None).
    Error { id: Option<String>, message: String },
    /// The plan ran to its end; the host treats a run without it as incomplete.
    Done,
}

/// References of one kind of object taken and dropped while counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectCount {
    pub acquired: u64,
    pub released: u64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

impl Record {
    /// One line, prefix included, newline excluded.
    pub fn encode(&self) -> String {
        let json = serde_json::to_string(self).expect("records always serialise");
        format!("{RECORD_PREFIX}{json}")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("results channel line {line}: not a record (missing {RECORD_PREFIX:?} prefix): {text:?}")]
    NotARecord { line: usize, text: String },
    #[error("results channel line {line}: malformed record: {message}")]
    Malformed { line: usize, message: String },
}

/// Decodes everything the guest sent. Serial lines may carry `\r`; empty lines are ignored.
/// A final line without a newline is decoded only if complete (a cut-off tail is an error).
pub fn decode_stream(text: &str) -> Result<Vec<Record>, DecodeError> {
    let mut records = Vec::new();
    for (index, raw) in text.split('\n').enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let line_no = index + 1;
        let Some(json) = line.strip_prefix(RECORD_PREFIX) else {
            return Err(DecodeError::NotARecord { line: line_no, text: line.chars().take(120).collect() });
        };
        let record = serde_json::from_str(json)
            .map_err(|err| DecodeError::Malformed { line: line_no, message: err.to_string() })?;
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_the_line_encoding() {
        let records = vec![
            Record::Hello { kernel_release: "6.12.117".into(), runner_version: "0.1.0".into() },
            Record::Loaded {
                id: "p".into(),
                verdict: Verdict::Rejected { errno: 22, log: "Unreleased reference id=2\nline two".into() },
                info: None,
            },
            Record::Ran {
                id: "p".into(),
                retval: 7,
                retval_mismatch: false,
                timing: Timing::TestRunDuration,
                repeat: 10,
                samples: vec![83, 83],
                run_errno: Some(125),
                failed_runs: 3,
                watchdog: Some(true),
                call_ns: vec![1_004_321],
            },
            Record::Trace { id: "p".into(), lines: vec!["bpf_ref_acquire: prog_id=5 held=1".into()] },
            Record::TaskRefs { id: "p".into(), before: 2, after: 3 },
            Record::Cpumasks { id: "p".into(), count: ObjectCount { acquired: 2, released: 1 } },
            Record::Skipped { id: "p".into(), reason: "no BPF_PROG_TYPE_LSM in this kernel".into() },
            Record::Done,
        ];
        let text: String = records.iter().map(|r| r.encode() + "\r\n").collect();
        assert_eq!(decode_stream(&text).unwrap(), records);
    }

    #[test]
    fn load_info_without_a_verifier_peak_still_parses_and_a_peak_round_trips() {
        // A record from a runner older than the measurement.
        let old = r#"{"verified_insns":10,"xlated_len":72,"jited_len":57,"verification_time_us":191,
                      "total_states":1,"peak_states":1,"max_states_per_insn":0}"#;
        let info: LoadInfo = serde_json::from_str(old).unwrap();
        assert_eq!((info.verified_insns, info.verifier_peak_bytes), (10, None));
        assert!(!serde_json::to_string(&info).unwrap().contains("verifier_peak_bytes"), "None is left out");
        let measured = LoadInfo { verifier_peak_bytes: Some(73_728), ..info };
        let text = serde_json::to_string(&measured).unwrap();
        assert!(text.contains(r#""verifier_peak_bytes":73728"#), "{text}");
        assert_eq!(serde_json::from_str::<LoadInfo>(&text).unwrap(), measured);
    }

    #[test]
    fn foreign_and_truncated_lines_are_errors_with_line_numbers() {
        let good = Record::Done.encode();
        let err = decode_stream(&format!("{good}\nhello\n")).unwrap_err();
        assert!(matches!(err, DecodeError::NotARecord { line: 2, .. }));
        let cut = &good[..good.len() - 3];
        let err = decode_stream(&format!("{good}\n{cut}")).unwrap_err();
        assert!(matches!(err, DecodeError::Malformed { line: 2, .. }));
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        fn record() -> impl Strategy<Value = Record> {
            prop_oneof![
                (any::<String>(), any::<String>())
                    .prop_map(|(kernel_release, runner_version)| Record::Hello { kernel_release, runner_version }),
                (proptest::option::of(any::<String>()), any::<String>())
                    .prop_map(|(id, message)| Record::Error { id, message }),
                (any::<String>(), any::<i64>(), any::<i64>()).prop_map(|(id, before, after)| Record::TaskRefs {
                    id,
                    before,
                    after
                }),
                (any::<String>(), proptest::collection::vec(any::<String>(), 0..4))
                    .prop_map(|(id, lines)| Record::Trace { id, lines }),
                Just(Record::Done),
            ]
        }

        proptest! {
            // What a guest (or a corrupted serial line) sends is untrusted: decoding returns an
            // error, never panics.
            #[test]
            fn decoding_arbitrary_text_never_panics(text in any::<String>()) {
                let _ = decode_stream(&text);
            }

            #[test]
            fn decoding_arbitrary_record_lines_never_panics(
                lines in proptest::collection::vec("(@bpfh1 )?[{}\\[\\]\":,a-z0-9_ \r\u{80}-\u{10ffff}]{0,80}", 0..8)
            ) {
                let _ = decode_stream(&lines.join("\n"));
            }

            #[test]
            fn records_round_trip_whatever_their_text(records in proptest::collection::vec(record(), 0..6)) {
                let text: String = records.iter().map(|r| r.encode() + "\n").collect();
                prop_assert_eq!(decode_stream(&text).unwrap(), records);
            }

            // A stream cut anywhere decodes or errors, never panics (the host reads it while the
            // guest is still writing).
            #[test]
            fn a_stream_cut_anywhere_never_panics(records in proptest::collection::vec(record(), 1..4), cut in any::<prop::sample::Index>()) {
                let text: String = records.iter().map(|r| r.encode() + "\n").collect();
                let at = cut.index(text.len() + 1);
                if let Some(prefix) = text.get(..at) {
                    let _ = decode_stream(prefix);
                }
            }
        }
    }
}
