//! `harness compare OLD NEW`: what changed between two runs of each scenario, and whether that is
//! a regression. A metric regresses when it rises beyond the threshold the (new) scenario sets
//! for it; under wallclock the rise must also be statistically significant. Any change of a
//! correctness outcome (verdict, failed checks, references, a guest or kernel problem) fails.

pub mod format;

use crate::results::metrics;
use crate::results::schema::{distinct_programs, ProgramResult, RunResult, VariantResult};
use crate::results::stats;
use crate::results::store::StoredRun;
use crate::scenario::metric::RUN;
use crate::scenario::Threshold;
use crate::verdict::outcome::{variant_health, Outcome};
use crate::vm::qemu::Mode;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Same,
    /// Lower than before (every metric is smaller-is-better).
    Better,
    /// Higher, by no more than the threshold allows.
    WithinThreshold,
    /// Higher, and no threshold applies: reported, not gated.
    Worse,
    /// Higher beyond the threshold: fails the gate.
    Regressed,
    /// A wall-clock difference that is not significant.
    Noise,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct MetricChange {
    pub variant: String,
    pub program: String,
    pub metric: String,
    pub old: f64,
    pub new: f64,
    pub threshold: Option<Threshold>,
    /// Mann-Whitney p-value, for wall-clock time metrics.
    pub p: Option<f64>,
    pub status: Status,
}

/// One program's (or, with program `(kernel)`, one variant's) correctness in both runs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutcomeRow {
    pub variant: String,
    pub program: String,
    /// None: not in that run.
    pub old: Option<String>,
    pub new: Option<String>,
    /// Whether the new run met its expectations.
    pub passed: bool,
    /// Failed checks and their details in the new run, for JUnit.
    pub detail: String,
}

impl OutcomeRow {
    pub fn changed(&self) -> bool {
        self.old.is_some() && self.old != self.new
    }
}

#[derive(Debug, Clone)]
pub struct ScenarioComparison {
    pub scenario: String,
    pub old_path: Option<PathBuf>,
    pub new_path: PathBuf,
    pub mode: Mode,
    pub unit: String,
    /// Every metric of every program on every variant in the new run, with its old value.
    pub metrics: Vec<MetricChange>,
    pub outcomes: Vec<OutcomeRow>,
    /// Why parts could not be compared (no previous run, different measurement modes).
    pub notes: Vec<String>,
    /// The runs, for formats that report values rather than changes.
    pub old: Option<RunResult>,
    pub new: RunResult,
}

impl ScenarioComparison {
    pub fn regressions(&self) -> impl Iterator<Item = &MetricChange> {
        self.metrics.iter().filter(|m| m.status == Status::Regressed)
    }

    pub fn outcome_changes(&self) -> impl Iterator<Item = &OutcomeRow> {
        self.outcomes.iter().filter(|o| o.changed())
    }

    pub fn failed(&self) -> bool {
        self.regressions().next().is_some() || self.outcome_changes().next().is_some()
    }
}

#[derive(Debug, Clone)]
pub struct Comparison {
    pub scenarios: Vec<ScenarioComparison>,
}

impl Comparison {
    pub fn failed(&self) -> bool {
        self.scenarios.iter().any(ScenarioComparison::failed)
    }
}

/// Pairs every new run with the old run of the same scenario (if any) and compares them.
pub fn compare(old: &[StoredRun], new: &[StoredRun]) -> Comparison {
    let scenarios = new
        .iter()
        .map(|n| {
            let o = old.iter().find(|o| o.run.scenario.name == n.run.scenario.name);
            compare_scenario(o, n)
        })
        .collect();
    Comparison { scenarios }
}

fn compare_scenario(old: Option<&StoredRun>, new: &StoredRun) -> ScenarioComparison {
    let n = &new.run;
    let mut cmp = ScenarioComparison {
        scenario: n.scenario.name.clone(),
        old_path: old.map(|o| o.path.clone()),
        new_path: new.path.clone(),
        mode: n.provenance.mode,
        unit: n.provenance.unit.clone(),
        metrics: Vec::new(),
        outcomes: Vec::new(),
        notes: Vec::new(),
        old: old.map(|o| o.run.clone()),
        new: n.clone(),
    };
    let Some(old) = old else {
        cmp.notes.push("no previous run of this scenario: nothing to compare with".into());
        cmp.outcomes = outcome_rows(None, n);
        return cmp;
    };
    let o = &old.run;
    cmp.outcomes = outcome_rows(Some(o), n);
    if (o.provenance.mode, &o.provenance.unit) != (n.provenance.mode, &n.provenance.unit) {
        cmp.notes.push(format!(
            "measured differently ({:?} in {} against {:?} in {}): metrics are not compared",
            o.provenance.mode, o.provenance.unit, n.provenance.mode, n.provenance.unit
        ));
        return cmp;
    }
    for nv in &n.variants {
        let Some(ov) = o.variant(&nv.name) else {
            cmp.notes.push(format!("variant {} is new", nv.name));
            continue;
        };
        for np in &nv.programs {
            if let Some(op) = ov.program(&np.id) {
                cmp.metrics.extend(metric_changes(&nv.name, op, np, n.provenance.mode, &n.scenario.thresholds));
            }
        }
    }
    cmp
}

fn metric_changes(
    variant: &str,
    old: &ProgramResult,
    new: &ProgramResult,
    mode: Mode,
    thresholds: &std::collections::BTreeMap<String, Threshold>,
) -> Vec<MetricChange> {
    let old_values = metrics::values(old);
    metrics::values(new)
        .into_iter()
        .filter_map(|(key, new_value)| {
            let (_, old_value) = old_values.iter().find(|(k, _)| *k == key)?;
            let threshold = thresholds.get(&key).copied();
            // Only the run cost has samples; a load-time clock is one reading per boot.
            let p = (mode == Mode::Wallclock && key == RUN)
                .then(|| stats::difference(&old.samples, &new.samples).map(|d| d.p))
                .flatten();
            let status = status(*old_value, new_value, threshold, p);
            Some(MetricChange {
                variant: variant.into(),
                program: new.id.clone(),
                metric: key,
                old: *old_value,
                new: new_value,
                threshold,
                p,
                status,
            })
        })
        .collect()
}

fn status(old: f64, new: f64, threshold: Option<Threshold>, p: Option<f64>) -> Status {
    let delta = new - old;
    if delta == 0.0 {
        Status::Same
    } else if p.is_some_and(|p| p >= stats::ALPHA) {
        Status::Noise
    } else if delta < 0.0 {
        Status::Better
    } else {
        match threshold {
            None => Status::Worse,
            Some(t) if delta > t.allowed(old) => Status::Regressed,
            Some(_) => Status::WithinThreshold,
        }
    }
}

fn outcome_rows(old: Option<&RunResult>, new: &RunResult) -> Vec<OutcomeRow> {
    let mut rows = Vec::new();
    let find_variant =
        |run: Option<&RunResult>, name: &str| -> Option<VariantResult> { run.and_then(|r| r.variant(name).cloned()) };
    let mut names: Vec<String> = new.variants.iter().map(|v| v.name.clone()).collect();
    // A variant the old run had and the new one lost is a change too.
    for v in old.iter().flat_map(|o| &o.variants) {
        if !names.contains(&v.name) {
            names.push(v.name.clone());
        }
    }
    for name in names {
        let (ov, nv) = (find_variant(old, &name), find_variant(Some(new), &name));
        let health = |v: &VariantResult| variant_health(v);
        rows.push(OutcomeRow {
            variant: name.clone(),
            program: "(kernel)".into(),
            old: ov.as_ref().map(health),
            new: nv.as_ref().map(health),
            passed: nv.as_ref().is_some_and(|v| health(v) == "ok"),
            detail: nv.as_ref().map(variant_detail).unwrap_or_else(|| "missing from the new run".into()),
        });
        let programs = nv.iter().chain(ov.iter()).flat_map(|v| &v.programs);
        let ids: Vec<String> = distinct_programs(programs).into_iter().map(|p| p.id.clone()).collect();
        for id in ids {
            let prog = |v: &Option<VariantResult>| v.as_ref().and_then(|v| v.program(&id).cloned());
            let (op, np) = (prog(&ov), prog(&nv));
            rows.push(OutcomeRow {
                variant: name.clone(),
                program: id.clone(),
                old: op.as_ref().map(|p| Outcome::of(p).short()),
                new: np.as_ref().map(|p| Outcome::of(p).short()),
                passed: np.as_ref().is_some_and(ProgramResult::passed),
                detail: match &np {
                    Some(p) => p
                        .checks
                        .iter()
                        .filter(|c| !c.ok)
                        .map(|c| format!("{}: {}", c.what, c.detail))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    None => "missing from the new run".into(),
                },
            });
        }
    }
    rows
}

fn variant_detail(v: &VariantResult) -> String {
    let mut lines: Vec<String> = v.failure.iter().map(|f| f.to_string()).collect();
    lines.extend(v.kernel_warnings.iter().cloned());
    lines.extend(v.guest_errors.iter().cloned());
    lines.join("\n")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::results::schema::Summary;
    use crate::testing::{fixture, new_run, old_run, stored};

    pub(crate) fn comparison() -> Comparison {
        compare(&[stored(old_run(), "20260101T000000Z-aaaa")], &[stored(new_run(), "20260102T000000Z-bbbb")])
    }

    #[test]
    fn thresholds_decide_what_regresses() {
        let t = Some(Threshold { relative: Some(0.02), absolute: None });
        assert_eq!(status(320.0, 326.0, t, None), Status::WithinThreshold);
        assert_eq!(status(320.0, 330.0, t, None), Status::Regressed);
        assert_eq!(status(320.0, 300.0, t, None), Status::Better);
        assert_eq!(status(320.0, 330.0, None, None), Status::Worse);
        assert_eq!(status(320.0, 320.0, t, None), Status::Same);
        assert_eq!(status(320.0, 330.0, t, Some(0.3)), Status::Noise);
        assert_eq!(status(320.0, 330.0, t, Some(0.001)), Status::Regressed);
    }

    #[test]
    fn regressions_and_outcome_changes_fail_the_gate() {
        let c = comparison();
        assert!(c.failed());
        let s = &c.scenarios[0];
        let regressed: Vec<(&str, &str, &str)> =
            s.regressions().map(|m| (m.variant.as_str(), m.program.as_str(), m.metric.as_str())).collect();
        assert_eq!(
            regressed,
            [("exception-unwind", "task_ref_tc", "run"), ("exception-unwind", "task_ref_tc", "verified_insns")]
        );
        let changed: Vec<(&str, &str)> =
            s.outcome_changes().map(|o| (o.variant.as_str(), o.program.as_str())).collect();
        assert_eq!(
            changed,
            [
                ("exception-unwind", "(kernel)"),
                ("exception-unwind", "task_ref_tc"),
                ("exception-unwind", "task_ref_syscall")
            ]
        );
    }

    #[test]
    fn identical_runs_pass_and_a_first_run_has_nothing_to_compare() {
        let run = fixture();
        let c = compare(&[stored(run.clone(), "a")], &[stored(run.clone(), "b")]);
        assert!(!c.failed());
        assert!(c.scenarios[0].metrics.iter().all(|m| m.status == Status::Same));
        let first = compare(&[], &[stored(run, "b")]);
        assert!(!first.failed());
        assert!(first.scenarios[0].notes[0].contains("no previous run"));
    }

    #[test]
    fn a_lost_program_or_variant_is_an_outcome_change() {
        let old = fixture();
        let mut new = fixture();
        new.variants[0].programs.pop();
        let c = compare(&[stored(old.clone(), "a")], &[stored(new, "b")]);
        assert!(c.failed());
        let mut renamed = fixture();
        renamed.variants[0].name = "other".into();
        let c = compare(&[stored(old, "a")], &[stored(renamed, "b")]);
        assert!(c.scenarios[0].outcome_changes().any(|o| o.variant == "baseline" && o.new.is_none()));
    }

    #[test]
    fn wallclock_noise_does_not_fail_but_a_significant_rise_does() {
        let mut old = fixture();
        old.provenance.mode = Mode::Wallclock;
        old.provenance.unit = "ns".into();
        old.scenario.thresholds.insert("run".into(), Threshold { relative: Some(0.01), absolute: None });
        let mut noisy = old.clone();
        let mut slower = old.clone();
        let spread = |base: u64| (0..15).map(|i| base + (i * 7) % 23).collect::<Vec<u64>>();
        for (run, shift) in [(&mut old, 0), (&mut noisy, 2), (&mut slower, 100)] {
            let p = &mut run.variants[0].programs[2];
            p.samples = spread(1000 + shift);
            p.summary = Summary::of(&p.samples);
        }
        let c = compare(&[stored(old.clone(), "a")], &[stored(noisy, "b")]);
        assert!(!c.failed());
        assert!(c.scenarios[0].metrics.iter().any(|m| m.metric == "run" && m.status == Status::Noise));
        let c = compare(&[stored(old, "a")], &[stored(slower, "b")]);
        assert!(c.failed());
    }
}
