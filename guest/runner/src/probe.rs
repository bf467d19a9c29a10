//! Probes of kernel state taken around a program's runs, to show what the program left behind.

use anyhow::{bail, ensure, Result};
use bpfh_protocol::{ProgType, ProgramPlan, PROBES_OBJECT, TASK_REFS_PROBE};

use crate::load::{self, Loaded, Outcome};
use crate::run;

/// pid 1's task reference count, read by a syscall program (guest/bpf/probes.bpf.c).
pub struct TaskRefs {
    loaded: Loaded,
}

impl TaskRefs {
    pub fn load() -> Result<TaskRefs> {
        let plan = ProgramPlan {
            id: "task reference probe".into(),
            object: PROBES_OBJECT.into(),
            program: TASK_REFS_PROBE.into(),
            prog_type: ProgType::Syscall,
            repeat: 1,
            packet_bytes: None,
            samples: 1,
            load_only: false,
            count_task_refs: false,
            sysctls: Default::default(),
            trace_events: Vec::new(),
        };
        match load::load(&plan, &[])? {
            Outcome::Accepted(loaded) => Ok(TaskRefs { loaded }),
            Outcome::Rejected { errno, log } => bail!("the task reference probe was rejected (errno {errno}):\n{log}"),
        }
    }

    pub fn read(&self) -> Result<i64> {
        // The probe returns an int; -1 means pid 1 was not found.
        let count = run::retval_of_one_run(self.loaded.fd())? as i32;
        ensure!(count >= 0, "the task reference probe found no pid 1");
        Ok(i64::from(count))
    }
}
