//! From edit to numbers: how long the steps a developer repeats take on this machine, as wall
//! time of the `harness` binary (TCG; run the scenarios once first so that the kernels are
//! built, and the images' boots saved):
//!
//! - boot to the runner's first record, restored from the saved boot and booted
//!   (`boot_seconds` of `scenario simple.yaml --only baseline`, `--cold-boot` for the latter);
//! - a warm `scenario simple.yaml` on every variant, restored and booted, and on the three
//!   variants of the first comparison (baseline, exception-unwind, runtime-tracking), restored;
//! - three scenarios on one command line (`simple.yaml branch.yaml loop.yaml`), which restore
//!   the one saved boot of each kernel;
//! - `simple.yaml` with `--accel auto`, which adds the KVM verdict: remembered per host, and
//!   proved again (the remembered verdict removed first).
//!
//! `cargo bench -p harness --bench speed`; these are benchmarks, not tests: nothing fails on a
//! figure.

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `harness scenario SCENARIOS ARGS` into `results`; its wall time.
fn run(scenarios: &[&str], results: &Path, args: &[&str]) -> Duration {
    let start = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("scenario")
        .args(scenarios)
        .arg("--results-dir")
        .arg(results)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("harness runs");
    let wall = start.elapsed();
    assert!(status.success(), "harness scenario {scenarios:?} {args:?} failed: run it once by hand to see why");
    wall
}

/// Runs `harness scenario simple.yaml ARGS` into `results`; its wall time and the baseline's
/// `boot_seconds`.
fn simple(results: &Path, args: &[&str]) -> (Duration, Duration) {
    let wall = run(&["simple.yaml"], results, args);
    let newest = std::fs::read_dir(results.join("simple"))
        .expect("a stored run")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .max()
        .expect("a stored run");
    let run: harness::results::schema::RunResult =
        serde_json::from_slice(&std::fs::read(newest).unwrap()).expect("a result file");
    let boot = run.variant("baseline").and_then(|v| v.boot_seconds).unwrap_or_default();
    (wall, Duration::from_secs_f64(boot))
}

fn speed(c: &mut Criterion) {
    let results = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("edit-to-numbers");
    // Flat: ten runs of each, not criterion's 1+2+...+10 (each run takes seconds).
    group.sample_size(10).sampling_mode(SamplingMode::Flat).measurement_time(Duration::from_secs(30));
    for (name, args) in [("restored", &["--accel", "tcg"][..]), ("booted", &["--accel", "tcg", "--cold-boot"][..])] {
        let only = [args, &["--only", "baseline"]].concat();
        group.bench_function(format!("boot to runner, {name}"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| simple(results.path(), &only).1).sum())
        });
        group.bench_function(format!("warm simple.yaml, every variant, {name}"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| simple(results.path(), args).0).sum())
        });
    }
    group.bench_function("warm simple.yaml, three variants, restored", |b| {
        let three =
            ["--accel", "tcg", "--only", "baseline", "--only", "exception-unwind", "--only", "runtime-tracking"];
        b.iter_custom(|iters| (0..iters).map(|_| simple(results.path(), &three).0).sum())
    });
    group.bench_function("warm simple.yaml branch.yaml loop.yaml, every variant, restored", |b| {
        let three = ["simple.yaml", "branch.yaml", "loop.yaml"];
        b.iter_custom(|iters| (0..iters).map(|_| run(&three, results.path(), &["--accel", "tcg"])).sum())
    });
    group.bench_function("warm simple.yaml, every variant, --accel auto, verdict remembered", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| simple(results.path(), &["--accel", "auto"]).0).sum())
    });
    let cache = harness::host::cache::Cache::resolve(None).unwrap();
    let verdict = harness::vm::accel::KvmMemory::in_dir(cache.root());
    group.bench_function("warm simple.yaml, baseline, --accel auto, verdict proved again", |b| {
        let only = ["--accel", "auto", "--only", "baseline"];
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    verdict.forget().expect("the remembered KVM verdict can be removed");
                    simple(results.path(), &only).0
                })
                .sum()
        })
    });
    group.bench_function("warm simple.yaml, baseline, --accel auto, verdict remembered", |b| {
        let only = ["--accel", "auto", "--only", "baseline"];
        b.iter_custom(|iters| (0..iters).map(|_| simple(results.path(), &only).0).sum())
    });
    group.finish();
}

criterion_group!(benches, speed);
criterion_main!(benches);
