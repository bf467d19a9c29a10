//! The commands the nightly workflow calls, run as the workflow runs them: `plan --json` gives
//! its matrix, `gate` its verdict through the exit status (0 passed, 1 failed, 2 broken), on
//! stored runs.

use harness::ci::plan::Plan;
use harness::results::schema::RunResult;
use std::path::Path;
use std::process::Command;

const HARNESS: &str = env!("CARGO_BIN_EXE_harness");

fn fixture() -> RunResult {
    serde_json::from_str(include_str!("fixtures/simple-baseline.json")).unwrap()
}

/// Stores `run` under `dir` as `harness` would, as the night's only run of its scenario.
fn store(dir: &Path, run: &RunResult) {
    harness::results::store::write(run, dir).unwrap();
}

fn gate(current: &Path, previous: &Path, plan: Option<&Path>) -> (Option<i32>, String) {
    let mut cmd = Command::new(HARNESS);
    cmd.arg("gate").arg("--current").arg(current).arg("--previous").arg(previous);
    if let Some(plan) = plan {
        cmd.arg("--plan").arg(plan);
    }
    let summary = current.join("summary.md");
    let out = cmd.arg("--markdown").arg(&summary).arg("--junit").arg(current.join("junit.xml")).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read_to_string(&summary).unwrap().contains("night "), "the step summary holds the verdict");
    (out.status.code(), stdout)
}

#[test]
fn plan_json_is_the_matrix_of_one_job_per_variant() {
    let out = Command::new(HARNESS).args(["plan", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plan: Plan = serde_json::from_slice(&out.stdout).unwrap();
    assert!(plan.jobs.iter().any(|j| j.variant == "baseline" && j.scenarios.len() > 3), "{plan:?}");
    assert!(plan.shards.iter().any(|s| s.name == "throw" && s.variant == "exception-unwind"));
    let text = Command::new(HARNESS).arg("plan").output().unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("measure baseline: "));
}

#[test]
fn gate_exits_0_on_a_clean_night_1_on_an_unmet_expectation_2_on_missing_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let previous = dir.path().join("previous");
    let clean = dir.path().join("clean");
    store(&clean, &fixture());
    let (code, stdout) = gate(&clean, &previous, None);
    assert_eq!(code, Some(0), "first night, nothing previous, every expectation met");
    assert!(stdout.contains("night passed"));

    let failed = dir.path().join("failed");
    let mut run = fixture();
    run.variants[0].programs[0].checks[0].ok = false;
    store(&failed, &run);
    // The same failure the night before is no change, and still fails this night.
    store(&previous, &run);
    let (code, stdout) = gate(&failed, &previous, None);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("night FAILED: 1 unmet expectations"), "{stdout}");

    let plan = dir.path().join("plan.json");
    let simple = harness::host::repo::scenarios_dir().join("simple.yaml");
    let out = Command::new(HARNESS).args(["plan", "--json"]).arg(&simple).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(&plan, &out.stdout).unwrap();
    let (code, stdout) = gate(&clean, &previous, Some(&plan));
    assert_eq!(code, Some(2), "the other variants' shards are missing: {stdout}");
    assert!(stdout.contains("simple/runtime-tracking: no results"), "{stdout}");

    let unreadable = dir.path().join("absent");
    let out = Command::new(HARNESS).arg("gate").arg("--current").arg(&unreadable).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "no night to judge is broken, not passed");
}
