//! What a variant runs, as one type: the scenario's programs, the empty programs that show a
//! run's fixed cost, and upstream's selftest cases. Each is planned into the guest's plan and
//! judged against what the guest observed.

use crate::kernel::variant::Difference;
use crate::results::schema::ProgramResult;
use crate::scenario::{Expectation, ProgramSpec, Scenario};
use crate::selftests::annotations::{object_name, Case, RunAs};
use crate::verdict::observed::ObservedProgram;
use crate::verdict::{scenario, selftest};
use bpfh_protocol::{Action, Measure, ProgType, ProgramPlan, PROBES_OBJECT, VERIFIER_MEM_OBJECT};

/// The program part of the id of a selftest file that did not compile (`<stem>/(compile)`).
pub const UNCOMPILED: &str = "(compile)";

/// Object holding the empty programs that show a run's fixed cost.
const EMPTY_OBJECT: &str = "empty";

#[derive(Debug, Clone)]
pub enum Subject {
    /// A program the scenario names.
    Program(ProgramSpec),
    /// An empty program of a type the scenario uses, measured in the same boot so that the fixed
    /// cost of a run is shown beside the others (nothing is subtracted).
    FixedCost(ProgramSpec),
    /// An upstream selftest program, with the variant's declared difference from upstream.
    Selftest { case: Case, difference: Option<Difference> },
    /// An upstream selftest file that did not compile against this variant: one result for
    /// the file, failed (or skipped where baseline cannot compile it either: `verdict::uncompiled`).
    Uncompiled { id: String, file: String, error: String },
}

impl Subject {
    pub fn id(&self) -> &str {
        match self {
            Subject::Program(p) | Subject::FixedCost(p) => &p.id,
            Subject::Selftest { case, .. } => &case.id,
            Subject::Uncompiled { id, .. } => id,
        }
    }

    pub fn uncompiled(file: &str, error: String) -> Subject {
        let id = format!("{}/{UNCOMPILED}", file.trim_end_matches(".c"));
        Subject::Uncompiled { id, file: file.to_string(), error }
    }

    /// The object file the guest loads it from.
    pub fn object_file(&self) -> String {
        match self {
            Subject::Program(p) | Subject::FixedCost(p) => format!("{}.bpf.o", p.object),
            Subject::Selftest { case, .. } => object_name(&case.file),
            Subject::Uncompiled { file, .. } => object_name(file),
        }
    }

    /// What the guest does with it, with `variant`'s expectations and sysctls; None when it is
    /// not loaded at all (a selftest case the harness cannot check as upstream does). A scenario
    /// program is measured whatever its expected verdict: if a kernel accepts what it was
    /// expected to reject, the run still shows its cost (a rejected program is never run).
    pub fn plan(&self, variant: &str) -> Option<ProgramPlan> {
        let (prog_flags, auxiliary, log_level, drop_caps) = match self {
            Subject::Selftest { case, .. } => (case.prog_flags, case.auxiliary.clone(), case.log_level, case.drop_caps),
            Subject::Program(p) => (0, p.auxiliary.clone(), 0, 0),
            Subject::FixedCost(_) | Subject::Uncompiled { .. } => (0, Vec::new(), 0, 0),
        };
        let (program, prog_type, action) = match self {
            Subject::Program(p) | Subject::FixedCost(p) => {
                let expect = p.expectation_for(variant);
                let action = Action::Measure(Measure {
                    repeat: p.repeat,
                    packet_bytes: p.packet_bytes,
                    samples: p.samples,
                    count_task_refs: p.count_task_refs,
                    count_cpumasks: p.count_cpumasks,
                    sysctls: p.sysctls_for(variant),
                    // Traced only where the scenario says what to expect: other kernels may
                    // not even have the events.
                    trace_events: match expect.trace {
                        Some(_) => p.trace_events.clone(),
                        None => Vec::new(),
                    },
                    stop_budget_ns: p.stop.as_ref().map(|s| s.budget_ns),
                });
                (&p.program, p.prog_type, action)
            }
            Subject::Selftest { case, .. } if case.skip.is_some() => return None,
            Subject::Uncompiled { .. } => return None,
            Subject::Selftest { case, .. } => {
                let action = match case.run {
                    Some(RunAs::TestLoader) => Action::TestLoaderRun,
                    Some(RunAs::PktV4) => Action::RunOnPktV4,
                    None => Action::Load,
                };
                (&case.program, case.prog_type, action)
            }
        };
        Some(ProgramPlan {
            id: self.id().to_string(),
            object: self.object_file(),
            program: program.clone(),
            prog_type,
            action,
            prog_flags,
            auxiliary,
            log_level,
            drop_caps,
            xlated: matches!(self, Subject::Selftest { case, .. } if !case.xlated.is_empty()),
        })
    }

    /// Its result on `variant`, from what the guest observed.
    pub fn judge(&self, variant: &str, observed: &ObservedProgram) -> ProgramResult {
        match self {
            Subject::Program(p) => scenario::judge(p, variant, false, observed),
            Subject::FixedCost(p) => scenario::judge(p, variant, true, observed),
            Subject::Selftest { case, difference } => selftest::judge(case, difference.as_ref(), observed),
            Subject::Uncompiled { id, file, error } => selftest::uncompiled(id, file, error),
        }
    }
}

/// The scenario's programs plus, for each program type it uses, an empty program of that type
/// (unless it has one).
pub fn of_scenario(scenario: &Scenario) -> Vec<Subject> {
    let mut subjects: Vec<Subject> = scenario.programs.iter().cloned().map(Subject::Program).collect();
    let mut types: Vec<ProgType> = Vec::new();
    for p in &scenario.programs {
        if !types.contains(&p.prog_type) {
            types.push(p.prog_type);
        }
    }
    for ty in types {
        let has_empty = scenario.programs.iter().any(|p| p.object == EMPTY_OBJECT && p.prog_type == ty);
        let first = scenario.programs.iter().find(|p| p.prog_type == ty).expect("type comes from a program");
        if !has_empty {
            let name = format!("empty_{}", ty.as_str());
            subjects.push(Subject::FixedCost(ProgramSpec {
                id: name.clone(),
                object: EMPTY_OBJECT.into(),
                program: name,
                prog_type: ty,
                repeat: first.repeat,
                packet_bytes: None,
                samples: first.samples,
                count_task_refs: false,
                count_cpumasks: false,
                sysctls: Default::default(),
                sysctls_on: Default::default(),
                trace_events: Vec::new(),
                expect: Expectation { retval: Some(0), ..Expectation::default() },
                expect_on: Default::default(),
                stop: None,
                auxiliary: Vec::new(),
                line: 0,
            }));
        }
    }
    subjects
}

/// The selftest cases of one variant, each with the difference the variant declares for it.
pub fn of_selftests(cases: Vec<Case>, differences: &[Difference]) -> Vec<Subject> {
    cases
        .into_iter()
        .map(|case| {
            let difference = selftest::difference_for(differences, &case).cloned();
            Subject::Selftest { case, difference }
        })
        .collect()
}

/// The `guest/bpf` objects the subjects need (`<name>` of `<name>.bpf.c`), the probes included
/// when a program counts references, and always the verifier's memory tracer (the runner
/// measures every program's verifier peak memory with it, upstream selftests included).
pub fn bpf_objects(subjects: &[Subject]) -> Vec<String> {
    let mut names: Vec<String> = vec![VERIFIER_MEM_OBJECT.trim_end_matches(".bpf.o").to_string()];
    for subject in subjects {
        if let Subject::Program(p) | Subject::FixedCost(p) = subject {
            names.push(p.object.clone());
            if p.count_task_refs || p.count_cpumasks {
                names.push(PROBES_OBJECT.trim_end_matches(".bpf.o").to_string());
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::repo;
    use crate::selftests::annotations::{cases, FileContext};
    use crate::selftests::drivers::Driver;
    use crate::testing::program;

    #[test]
    fn selftest_cases_plan_a_test_loader_run_or_a_load_and_skips_are_not_planned() {
        let programs = [
            program("reject", "?tc", &["comment:test_expect_failure", "comment:test_expect_msg=0=Unreleased"]),
            program("ret", "tc", &["comment:test_retval=TEST_DATA_LEN"]),
            program("arm", "tc", &["comment:test_arch=ARM64"]),
        ];
        let cases = cases("demo.c", &programs, &FileContext::of(Driver::TestLoader { pre_execution: false }));
        let subjects = of_selftests(cases.clone(), &[]);
        let plan: Vec<ProgramPlan> = subjects.iter().filter_map(|s| s.plan("v")).collect();
        assert_eq!(plan.len(), cases.iter().filter(|c| c.skip.is_none()).count());
        let ret = plan.iter().find(|p| p.program == "ret").unwrap();
        assert!(ret.action == Action::TestLoaderRun && ret.object == "demo.upstream.o");
        let reject = plan.iter().find(|p| p.program == "reject").unwrap();
        assert_eq!((reject.action.clone(), reject.prog_type), (Action::Load, ProgType::Any));
        assert_eq!(reject.prog_flags, crate::selftests::annotations::TESTING_PROG_FLAGS, "test_loader's flags");
        let with_aux = [program("aux", "tc", &["comment:test_auxiliary"]), program("t", "tc", &[])];
        let aux_cases = crate::selftests::annotations::cases(
            "aux.c",
            &with_aux,
            &FileContext::of(Driver::TestLoader { pre_execution: false }),
        );
        let aux_plan = of_selftests(aux_cases, &[])[0].plan("v").unwrap();
        assert_eq!(aux_plan.auxiliary, ["aux"], "loaded beside the case");
    }

    #[test]
    fn scenario_programs_are_measured_whatever_their_verdict_and_fixed_costs_are_added() {
        let scenario = Scenario::load(&repo::scenarios_dir().join("simple.yaml"), &repo::bpf_source_dir()).unwrap();
        let subjects = of_scenario(&scenario);
        let fixed: Vec<&str> =
            subjects.iter().filter(|s| matches!(s, Subject::FixedCost(_))).map(Subject::id).collect();
        assert!(fixed.iter().all(|id| id.starts_with("empty_")), "{fixed:?}");
        for subject in &subjects {
            let plan = subject.plan("baseline").expect("scenario programs are always planned");
            assert_eq!(plan.id, subject.id());
            assert!(plan.object.ends_with(".bpf.o"));
            assert!(matches!(plan.action, Action::Measure(_)), "{plan:?}");
        }
        let objects = bpf_objects(&subjects);
        assert!(objects.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates");
        assert!(objects.iter().any(|o| o == "verifier_mem"), "every image carries the memory tracer: {objects:?}");
        assert_eq!(bpf_objects(&[]), ["verifier_mem"], "upstream-only scenarios too");
    }
}
