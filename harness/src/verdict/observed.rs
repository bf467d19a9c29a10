//! What the guest reported, folded once: for each program id, everything the records say about
//! it; and what they say about the run as a whole.

use crate::results::schema::RefCount;
use bpfh_protocol::{LoadInfo, ObjectCount, Record, Timing, Verdict};
use std::collections::BTreeMap;

/// A program's test runs, as the runner reported them (`Record::Ran`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ran {
    pub retval: u32,
    pub retval_mismatch: bool,
    pub timing: Option<Timing>,
    pub repeat: u32,
    pub samples: Vec<u64>,
    pub run_errno: Option<i32>,
    pub failed_runs: u32,
    pub watchdog: Option<bool>,
    pub call_ns: Vec<u64>,
}

/// Everything the guest reported about one program.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedProgram {
    pub verdict: Option<Verdict>,
    pub load_info: Option<LoadInfo>,
    pub ran: Option<Ran>,
    pub trace: Option<Vec<String>>,
    pub task_refs: Option<RefCount>,
    pub cpumasks: Option<ObjectCount>,
    /// Why the guest did not load it (its kernel lacks the type or the attach target).
    pub skipped: Option<String>,
    /// The verifier log of an accepted load, when the plan asked for one.
    pub log: Option<String>,
    /// Its instructions after the verifier's rewrites, when the plan asked for them.
    pub xlated: Option<Vec<u64>>,
    pub errors: Vec<String>,
}

/// The guest's records of one boot, by program.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    programs: BTreeMap<String, ObservedProgram>,
    /// Errors that belong to no program.
    pub global_errors: Vec<String>,
    /// The runner's `Hello`: the kernel release it runs on and its protocol version.
    pub hello: Option<(String, String)>,
    nothing: ObservedProgram,
}

impl Observed {
    pub fn fold(records: &[Record]) -> Observed {
        let mut observed = Observed::default();
        for record in records {
            let programs = &mut observed.programs;
            match record {
                Record::Hello { kernel_release, runner_version } => {
                    observed.hello = Some((kernel_release.clone(), runner_version.clone()))
                }
                Record::Loaded { id, verdict, info } => {
                    let p = entry(programs, id);
                    p.verdict = Some(verdict.clone());
                    p.load_info = info.clone();
                }
                Record::Ran {
                    id,
                    retval,
                    retval_mismatch,
                    timing,
                    repeat,
                    samples,
                    run_errno,
                    failed_runs,
                    watchdog,
                    call_ns,
                } => {
                    entry(programs, id).ran = Some(Ran {
                        retval: *retval,
                        retval_mismatch: *retval_mismatch,
                        timing: Some(*timing),
                        repeat: *repeat,
                        samples: samples.clone(),
                        run_errno: *run_errno,
                        failed_runs: *failed_runs,
                        watchdog: *watchdog,
                        call_ns: call_ns.clone(),
                    })
                }
                Record::Trace { id, lines } => entry(programs, id).trace = Some(lines.clone()),
                Record::TaskRefs { id, before, after } => {
                    entry(programs, id).task_refs = Some(RefCount { before: *before, after: *after })
                }
                Record::Cpumasks { id, count } => entry(programs, id).cpumasks = Some(*count),
                Record::Skipped { id, reason } => entry(programs, id).skipped = Some(reason.clone()),
                Record::Log { id, log } => entry(programs, id).log = Some(log.clone()),
                Record::Xlated { id, insns } => entry(programs, id).xlated = Some(insns.clone()),
                Record::Error { id: Some(id), message } => entry(programs, id).errors.push(message.clone()),
                Record::Error { id: None, message } => observed.global_errors.push(message.clone()),
                Record::Done => {}
            }
        }
        observed
    }

    /// What the guest reported about program `id` (nothing at all if it never mentioned it).
    pub fn program(&self, id: &str) -> &ObservedProgram {
        self.programs.get(id).unwrap_or(&self.nothing)
    }

    /// The run's own errors: the guest's, and a runner that is not the one this harness built
    /// (another protocol version) or runs on another kernel than the one built for it.
    pub fn run_errors(&self, kernel_version: &str) -> Vec<String> {
        let mut errors = self.global_errors.clone();
        if let Some((release, version)) = &self.hello {
            if version != bpfh_protocol::VERSION {
                errors.push(format!(
                    "the guest runner speaks protocol {version}, this harness {}: it was built from another checkout",
                    bpfh_protocol::VERSION
                ));
            }
            // `uname -r` may add a local version (`6.12.117-dirty`), but not another digit.
            let same = release
                .strip_prefix(kernel_version)
                .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()));
            if !same {
                errors.push(format!("the guest runs kernel {release}, but {kernel_version} was built for it"));
            }
        }
        errors
    }
}

fn entry<'a>(programs: &'a mut BTreeMap<String, ObservedProgram>, id: &str) -> &'a mut ObservedProgram {
    programs.entry(id.to_string()).or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_fold_by_program_and_the_hello_is_checked() {
        let records = [
            Record::Hello { kernel_release: "6.12.117".into(), runner_version: bpfh_protocol::VERSION.into() },
            Record::Loaded { id: "a".into(), verdict: Verdict::Accepted, info: None },
            Record::TaskRefs { id: "a".into(), before: 2, after: 3 },
            Record::Error { id: Some("b".into()), message: "libbpf failed".into() },
            Record::Error { id: None, message: "no tracefs".into() },
        ];
        let o = Observed::fold(&records);
        assert_eq!(o.program("a").verdict, Some(Verdict::Accepted));
        assert_eq!(o.program("a").task_refs, Some(RefCount { before: 2, after: 3 }));
        assert_eq!(o.program("b").errors, ["libbpf failed"]);
        assert_eq!(o.program("c"), &ObservedProgram::default());
        assert_eq!(o.run_errors("6.12.117"), ["no tracefs"]);
        assert_eq!(o.run_errors("6.13.0").len(), 2, "another kernel is an error");
        assert_eq!(o.run_errors("6.12.11").len(), 2, "6.12.117 is not 6.12.11");
        let local = Observed::fold(&[Record::Hello {
            kernel_release: "6.12.117-dirty".into(),
            runner_version: bpfh_protocol::VERSION.into(),
        }]);
        assert!(local.run_errors("6.12.117").is_empty(), "a local version suffix is the same kernel");

        let stale =
            Observed::fold(&[Record::Hello { kernel_release: "6.12.117".into(), runner_version: "0.0.1".into() }]);
        assert!(stale.run_errors("6.12.117")[0].contains("another checkout"));
    }
}
