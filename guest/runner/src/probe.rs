//! Probes of kernel state taken around a program's runs, to show what the program left behind.

use std::path::Path;

use anyhow::{anyhow, bail, ensure, Context, Result};
use bpfh_protocol::{ObjectCount, ProgType, BPF_DIR, PROBES_OBJECT, TASK_REFS_PROBE};
use libbpf_rs::{Link, MapCore, MapFlags, Object, ObjectBuilder};

use crate::load::{self, Loaded, Outcome, Target};
use crate::run;

/// pid 1's task reference count, read by a syscall program (guest/bpf/probes.bpf.c).
pub struct TaskRefs {
    loaded: Loaded,
}

impl TaskRefs {
    pub fn load() -> Result<TaskRefs> {
        let target = Target {
            object: PROBES_OBJECT,
            program: TASK_REFS_PROBE,
            prog_type: ProgType::Syscall,
            prog_flags: 0,
            auxiliary: &[],
            log_level: 0,
            drop_caps: 0,
            may_be_unloadable: false,
        };
        match load::load(target, &[])? {
            Outcome::Accepted(loaded) => Ok(TaskRefs { loaded }),
            Outcome::Rejected { errno, log } => bail!("the task reference probe was rejected (errno {errno}):\n{log}"),
            Outcome::Skipped(reason) => bail!("the task reference probe was not loaded: {reason}"),
        }
    }

    pub fn read(&self) -> Result<i64> {
        // The probe returns an int; -1 means pid 1 was not found.
        let count = run::retval_of_one_run(self.loaded.fd())? as i32;
        ensure!(count >= 0, "the task reference probe found no pid 1");
        Ok(i64::from(count))
    }
}

/// Counts of cpumask references taken and dropped while attached (guest/bpf/probes.bpf.c).
pub struct CpumaskCounter {
    object: Object,
    _links: Vec<Link>,
}

const CPUMASK_COUNTERS: [&str; 3] = ["count_cpumask_create", "count_cpumask_acquire", "count_cpumask_release"];

impl CpumaskCounter {
    /// Loads and attaches the counting programs; they count until the counter is dropped.
    pub fn attach() -> Result<CpumaskCounter> {
        let path = Path::new(BPF_DIR).join(PROBES_OBJECT);
        let mut open =
            ObjectBuilder::default().open_file(&path).with_context(|| format!("opening {}", path.display()))?;
        for mut prog in open.progs_mut() {
            let name = prog.name().to_string_lossy().into_owned();
            prog.set_autoload(CPUMASK_COUNTERS.contains(&name.as_str()));
        }
        let object = open.load().context("loading the cpumask counters")?;
        let links = object
            .progs_mut()
            .filter(|p| CPUMASK_COUNTERS.contains(&p.name().to_string_lossy().as_ref()))
            .map(|p| p.attach().with_context(|| format!("attaching {}", p.name().to_string_lossy())))
            .collect::<Result<Vec<_>>>()?;
        Ok(CpumaskCounter { object, _links: links })
    }

    pub fn read(&self) -> Result<ObjectCount> {
        let bss = load::map_ending(&self.object, PROBES_OBJECT, ".bss")?;
        let value = bss.lookup(&0u32.to_ne_bytes(), MapFlags::ANY)?.ok_or_else(|| anyhow!("empty .bss map"))?;
        ensure!(value.len() >= 16, ".bss of {PROBES_OBJECT} is {} bytes, expected 16", value.len());
        let word = |i: usize| u64::from_ne_bytes(value[i * 8..i * 8 + 8].try_into().unwrap());
        // Declaration order in probes.bpf.c: cpumask_acquired, cpumask_released.
        Ok(ObjectCount { acquired: word(0), released: word(1) })
    }
}
