//! Runs one scenario on its variants: wires the stages together, one variant at a time, so that a
//! failing guest loses nothing that another variant produced.

use crate::cache::Cache;
use crate::console;
use crate::guestbuild;
use crate::image::Initramfs;
use crate::kbuild::{self, KernelBuild};
use crate::progress;
use crate::results::{self, Provenance, RunResult, ScenarioInfo, VariantResult};
use crate::scenario::{Expectation, ExpectedVerdict, ProgramSpec, Scenario};
use crate::source::{self, KernelSource};
use crate::upstream;
use crate::variant::Variant;
use crate::vm::{self, Accel, BootSpec, Mode};
use bpfh_protocol::{Plan, ProgType, ProgramPlan, BPF_DIR, PLAN_PATH, PROBES_OBJECT};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Object holding the empty programs that show a run's fixed cost.
const EMPTY_OBJECT: &str = "empty";
/// A KVM guest reaches user space in about a second; one that has not after this has failed
/// (on hosts with broken nested virtualisation it hangs rather than erroring).
const KVM_PROBE_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccelChoice {
    /// KVM if a guest really runs under it, otherwise TCG (with a warning).
    Auto,
    Kvm,
    Tcg,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub accel: AccelChoice,
    pub mode: Option<Mode>,
    pub allow_emulated_wallclock: bool,
    pub kernel_src: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub results_dir: PathBuf,
    /// Run only these of the scenario's variants (empty: all of them).
    pub only: Vec<String>,
    /// Boots per variant in wallclock mode (default [`DEFAULT_WALLCLOCK_BOOTS`]).
    pub boots: Option<u32>,
    /// Build with `kernel-config/debug.config` on top (KASAN, lockdep, kmemleak, LKDTM).
    pub debug_kernel: bool,
    /// Where variants are defined (default: `kernel-config/variants` in the repository).
    pub variants_dir: Option<PathBuf>,
    /// Variants from the command line (`--variant NAME=PATH`): a directory of format-patch files
    /// or an mbox, run beside the scenario's own variants.
    pub extra_variants: Vec<(String, PathBuf)>,
}

impl Options {
    /// TCG in icount mode (deterministic counts, no KVM probe), every variant, default cache,
    /// results under `results_dir`: what the end-to-end tests and a CI job want.
    pub fn icount(results_dir: PathBuf) -> Options {
        Options {
            accel: AccelChoice::Tcg,
            mode: None,
            allow_emulated_wallclock: false,
            kernel_src: None,
            cache_dir: None,
            results_dir,
            only: Vec::new(),
            boots: None,
            debug_kernel: false,
            variants_dir: None,
            extra_variants: Vec::new(),
        }
    }
}

/// Wallclock samples from one boot share that boot's cache and frequency state; pooling a few
/// boots puts boot-to-boot variation into the interval.
pub const DEFAULT_WALLCLOCK_BOOTS: u32 = 3;

/// Icount counts are deterministic, so a second boot would only repeat them.
fn boots_per_variant(mode: Mode, requested: Option<u32>) -> anyhow::Result<u32> {
    match (mode, requested) {
        (_, Some(0)) => anyhow::bail!("--boots 0: at least one boot per variant is needed"),
        (Mode::Icount, Some(n)) if n > 1 => {
            anyhow::bail!("--boots {n}: icount counts are deterministic, so icount boots each variant once")
        }
        (Mode::Icount, _) => Ok(1),
        (Mode::Wallclock, n) => Ok(n.unwrap_or(DEFAULT_WALLCLOCK_BOOTS)),
    }
}

/// One variant's boots as one result: samples pooled, every boot's failures, warnings and
/// failed checks kept (a check that failed in any boot failed).
fn pool_boots(mut boots: Vec<VariantResult>) -> VariantResult {
    let booted = boots.iter().map(|b| b.boots).sum();
    let rest = boots.split_off(1);
    let mut pooled = boots.pop().expect("at least one boot");
    pooled.boots = booted;
    for (n, boot) in rest.into_iter().enumerate() {
        let label = format!("boot {}", n + 2);
        pooled.complete &= boot.complete;
        if pooled.failure.is_none() {
            pooled.failure = boot.failure;
            if pooled.failure.is_some() {
                pooled.console_log = boot.console_log.clone();
            }
        }
        pooled.guest_errors.extend(boot.guest_errors.into_iter().map(|e| format!("{label}: {e}")));
        pooled.kernel_warnings.extend(boot.kernel_warnings.into_iter().map(|w| format!("{label}: {w}")));
        pooled
            .allowed_kernel_warnings
            .extend(boot.allowed_kernel_warnings.into_iter().map(|w| format!("{label}: {w}")));
        for (p, q) in pooled.programs.iter_mut().zip(boot.programs) {
            p.samples.extend(q.samples);
            p.failed_runs += q.failed_runs;
            for c in q.checks.into_iter().filter(|c| !c.ok) {
                p.checks.push(results::Check { detail: format!("{label}: {}", c.detail), ..c });
            }
        }
    }
    for p in &mut pooled.programs {
        p.summary = results::Summary::of(&p.samples);
    }
    pooled
}

pub fn variants_root() -> PathBuf {
    guestbuild::repo_root().join("kernel-config/variants")
}

pub fn base_fragment() -> PathBuf {
    guestbuild::repo_root().join("kernel-config/base.config")
}

pub fn debug_fragment() -> PathBuf {
    guestbuild::repo_root().join("kernel-config/debug.config")
}

/// The variants a scenario names, or every defined variant. Every variant a program's
/// `expect_on` names must be defined, or a typo would silently apply the default expectation.
fn select_variants(
    scenario: &Scenario,
    only: &[String],
    root: &Path,
    extra: &[Variant],
) -> anyhow::Result<Vec<Variant>> {
    let all = Variant::discover(root)?;
    for variant in extra {
        anyhow::ensure!(
            !all.iter().any(|v| v.name == variant.name),
            "--variant {}: a variant of that name is already defined under {}",
            variant.name,
            root.display()
        );
    }
    for program in &scenario.programs {
        for name in program.variants_named() {
            anyhow::ensure!(
                all.iter().any(|v| &v.name == name),
                "{}:{}: program {:?}: expect_on or sysctls_on names unknown variant {name:?}",
                scenario.path.display(),
                program.line,
                program.id
            );
        }
    }
    let mut names: Vec<String> =
        scenario.variants.clone().unwrap_or_else(|| all.iter().map(|v| v.name.clone()).collect());
    names.extend(extra.iter().map(|v| v.name.clone()));
    let all: Vec<Variant> = all.into_iter().chain(extra.iter().cloned()).collect();
    for name in only {
        anyhow::ensure!(
            names.contains(name),
            "--only {name}: {} runs only these variants: {}",
            scenario.path.display(),
            names.join(", ")
        );
    }
    names
        .iter()
        .filter(|name| only.is_empty() || only.contains(name))
        .map(|name| {
            all.iter().find(|v| &v.name == name).cloned().ok_or_else(|| {
                let known: Vec<&str> = all.iter().map(|v| v.name.as_str()).collect();
                anyhow::anyhow!(
                    "{}: unknown variant {name:?} (defined under {}: {})",
                    scenario.path.display(),
                    root.display(),
                    known.join(", ")
                )
            })
        })
        .collect()
}

/// The scenario's programs plus, for each program type it uses, an empty program of that type
/// (unless it has one), so the fixed cost of a run is measured in the same boot and shown.
fn programs_with_fixed_cost_references(scenario: &Scenario) -> Vec<(ProgramSpec, bool)> {
    let mut programs: Vec<(ProgramSpec, bool)> = scenario.programs.iter().map(|p| (p.clone(), false)).collect();
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
            programs.push((
                ProgramSpec {
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
                    line: 0,
                },
                true,
            ));
        }
    }
    programs
}

fn plan_for(scenario: &Scenario, variant: &Variant, programs: &[(ProgramSpec, bool)]) -> Plan {
    let name = variant.name.as_str();
    Plan {
        scenario: scenario.name.clone(),
        variant: name.into(),
        probe_only: false,
        info_fields: variant.prog_info.clone(),
        provoke: scenario.provoke.clone(),
        programs: programs
            .iter()
            .map(|(p, _)| ProgramPlan {
                id: p.id.clone(),
                object: format!("{}.bpf.o", p.object),
                program: p.program.clone(),
                prog_type: p.prog_type,
                repeat: p.repeat,
                packet_bytes: p.packet_bytes,
                samples: p.samples,
                load_only: p.expectation_for(name).verdict == ExpectedVerdict::Reject,
                test_loader_run: false,
                count_task_refs: p.count_task_refs,
                count_cpumasks: p.count_cpumasks,
                sysctls: p.sysctls_for(name),
                // Traced only where the scenario says what to expect: other kernels may not
                // even have the events.
                trace_events: match p.expectation_for(name).trace {
                    Some(_) => p.trace_events.clone(),
                    None => Vec::new(),
                },
            })
            .collect(),
    }
}

/// Stage 5b, image: the runner as /init, the BPF objects and the plan.
fn write_image(path: &Path, runner: &Path, objects: &[(String, PathBuf)], plan: &Plan) -> anyhow::Result<()> {
    let mut image = Initramfs::new();
    image.add_file("init", 0o755, std::fs::read(runner)?);
    image.add_char_dev("dev/console", 0o600, 5, 1);
    for dir in ["proc", "sys"] {
        image.add_dir(dir, 0o755);
    }
    let bpf_dir = BPF_DIR.trim_start_matches('/');
    for (name, obj) in objects {
        image.add_file(&format!("{bpf_dir}/{name}"), 0o644, std::fs::read(obj)?);
    }
    image.add_file(PLAN_PATH.trim_start_matches('/'), 0o644, serde_json::to_vec_pretty(plan)?);
    image.write(path)?;
    Ok(())
}

/// Decides the accelerator: `auto` boots the first kernel under KVM to prove it works.
fn choose_accel(choice: AccelChoice, kernel: &KernelBuild, runner: &Path) -> anyhow::Result<Accel> {
    match choice {
        AccelChoice::Tcg => Ok(Accel::Tcg),
        AccelChoice::Kvm => {
            anyhow::ensure!(vm::kvm_device_usable(), "--accel kvm: /dev/kvm cannot be opened read-write");
            Ok(Accel::Kvm)
        }
        AccelChoice::Auto if !vm::kvm_device_usable() => {
            eprintln!("warning: no usable /dev/kvm; using TCG (emulation)");
            Ok(Accel::Tcg)
        }
        AccelChoice::Auto => {
            let workdir = kernel.objdir.join("kvm-probe");
            let initrd = workdir.join("initramfs.cpio");
            let plan = Plan {
                scenario: "kvm-probe".into(),
                variant: kernel.variant.clone(),
                probe_only: true,
                programs: vec![],
                info_fields: vec![],
                provoke: vec![],
            };
            write_image(&initrd, runner, &[], &plan)?;
            progress::phase(&kernel.variant, "probing whether KVM really runs a guest");
            let outcome = vm::boot(&BootSpec {
                accel: Accel::Kvm,
                mode: Mode::Wallclock,
                kernel: kernel.boot_image.clone(),
                initrd,
                workdir,
                boot_timeout: KVM_PROBE_TIMEOUT,
                run_timeout: KVM_PROBE_TIMEOUT,
            })?;
            match outcome.failure {
                None => Ok(Accel::Kvm),
                Some(failure) => {
                    let why = failure.to_string();
                    let first = why.lines().next().unwrap_or_default().trim_end_matches([';', ':']);
                    eprintln!(
                        "warning: /dev/kvm exists but a guest does not run under it ({first}); falling back to TCG (emulation). Probe console: {}",
                        outcome.console_log.display()
                    );
                    Ok(Accel::Tcg)
                }
            }
        }
    }
}

fn choose_mode(accel: Accel, requested: Option<Mode>, allow_emulated_wallclock: bool) -> anyhow::Result<Mode> {
    match (accel, requested) {
        (Accel::Tcg, None | Some(Mode::Icount)) => Ok(Mode::Icount),
        (Accel::Kvm, None | Some(Mode::Wallclock)) => Ok(Mode::Wallclock),
        (Accel::Kvm, Some(Mode::Icount)) => {
            anyhow::bail!("--mode icount needs TCG (instruction counting is a TCG feature): add --accel tcg")
        }
        (Accel::Tcg, Some(Mode::Wallclock)) if allow_emulated_wallclock => Ok(Mode::Wallclock),
        (Accel::Tcg, Some(Mode::Wallclock)) => anyhow::bail!(
            "--mode wallclock under TCG would report emulation artefacts as timings; use icount, or pass --allow-emulated-wallclock to get them labelled as emulation timing"
        ),
    }
}

fn measurement(accel: Accel, mode: Mode) -> String {
    match (accel, mode) {
        (_, Mode::Icount) => "icount: TCG with -icount shift=0,sleep=off; each duration is a deterministic count of guest instructions per run (the guest clock advances 1 ns per instruction), not time".into(),
        (Accel::Kvm, Mode::Wallclock) => "wallclock: KVM; guest nanoseconds per run as the guest kernel measured them".into(),
        (Accel::Tcg, Mode::Wallclock) => "EMULATION TIMING: wall-clock nanoseconds under TCG; emulation artefacts, not real costs".into(),
    }
}

fn git(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git").arg("-C").arg(guestbuild::repo_root()).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn host_cpu() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name").map(|r| r.trim_start_matches([' ', '\t', ':']).to_string()))
        })
        .unwrap_or_else(|| "unknown".into())
}

/// One boot's result, or the result of a variant that was not built or booted (`Err`).
fn variant_result(
    variant: &Variant,
    kernel: Option<&KernelBuild>,
    source: &KernelSource,
    scenario: &Scenario,
    programs: &[(ProgramSpec, bool)],
    upstream_cases: &[upstream::Case],
    outcome: Result<vm::BootOutcome, vm::GuestFailure>,
) -> VariantResult {
    let (outcome, failure) = match outcome {
        Ok(outcome) => {
            let failure = outcome.failure.clone();
            (Some(outcome), failure)
        }
        Err(failure) => (None, Some(failure)),
    };
    let records = outcome.as_ref().map_or(&[][..], |o| &o.records[..]);
    let console_log = outcome.as_ref().map(|o| o.console_log.clone()).unwrap_or_default();
    let console = std::fs::read_to_string(&console_log).unwrap_or_default();
    let (kernel_warnings, allowed_kernel_warnings) =
        console::kernel_warnings(&console).into_iter().partition(|w| !scenario.allows_kernel_message(w));
    VariantResult {
        name: variant.name.clone(),
        description: variant.description.clone(),
        kernel_version: kernel.map_or_else(|| source.version.clone(), |k| k.kernel_version.clone()),
        build_key: kernel.map(|k| k.build_key.clone()).unwrap_or_default(),
        patch_hash: kernel.map(|k| k.patch_hash.clone()).unwrap_or_default(),
        config_hash: kernel.map(|k| k.config_hash.clone()).unwrap_or_default(),
        compiler: kernel.map(|k| k.compiler.clone()).unwrap_or_default(),
        boot_seconds: outcome.as_ref().and_then(|o| o.boot_seconds),
        console_log,
        complete: failure.is_none(),
        failure,
        guest_errors: results::global_errors(records),
        kernel_warnings,
        allowed_kernel_warnings,
        programs: programs
            .iter()
            .map(|(p, fixed)| results::evaluate(p, &variant.name, *fixed, records))
            .chain(
                upstream_cases.iter().map(|c| {
                    upstream::evaluate(c, upstream::difference_for(&variant.upstream_differences, c), records)
                }),
            )
            .collect(),
        // A variant that was not built or booted contributes no boot.
        boots: u32::from(outcome.is_some()),
    }
}

/// Builds the variant's kernel, its BPF objects (and the scenario's upstream selftest objects,
/// whose cases it returns) and the scenario's image.
#[allow(clippy::too_many_arguments)]
fn prepare(
    cache: &Cache,
    source: &KernelSource,
    variant: &Variant,
    debug_fragment: Option<&Path>,
    runner: &Path,
    scenario: &Scenario,
    programs: &[(ProgramSpec, bool)],
    object_names: &[String],
) -> anyhow::Result<(KernelBuild, PathBuf, Vec<upstream::Case>)> {
    let kernel = kbuild::build(cache, source, variant, &base_fragment(), debug_fragment)?;
    // The objects and the image go into the build directory: one run at a time.
    let _held = cache.lock(&format!("build-{}", &kernel.build_key[..16]))?;
    let objects = guestbuild::build_bpf_objects(cache, source, &kernel, object_names)?;
    let mut objects: Vec<(String, PathBuf)> = objects.into_iter().map(|(n, p)| (format!("{n}.bpf.o"), p)).collect();
    let mut plan = plan_for(scenario, variant, programs);
    let mut cases = Vec::new();
    for (name, object) in upstream::compile(cache, source, &kernel, &scenario.upstream)? {
        let file = scenario.upstream.iter().find(|f| upstream::object_name(f) == name).expect("compiled from the list");
        cases.extend(upstream::cases(file, &upstream::programs(&object)?));
        objects.push((name, object));
    }
    upstream::check_differences(&variant.name, &variant.upstream_differences, &cases)?;
    plan.programs.extend(upstream::plan(&cases));
    let initrd = kernel.objdir.join("run").join(format!("{}.cpio", scenario.name));
    write_image(&initrd, runner, &objects, &plan)?;
    Ok((kernel, initrd, cases))
}

/// Builds, boots and measures every variant of the scenario; stores and returns the result.
/// A variant that cannot be built or booted is recorded as not run (with why) and the others
/// go on; the stored result then says which variants are incomplete.
pub fn run_scenario(scenario_path: &Path, opts: &Options) -> anyhow::Result<(RunResult, PathBuf)> {
    crate::prereq::ensure(opts.kernel_src.is_none())?;
    let scenario = Scenario::load(scenario_path, &guestbuild::bpf_source_dir())?;
    let cache = Cache::resolve(opts.cache_dir.as_deref())?;
    let extra = opts
        .extra_variants
        .iter()
        .map(|(name, path)| Variant::from_series(name, path, &cache.root().join("series")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let variants =
        select_variants(&scenario, &opts.only, &opts.variants_dir.clone().unwrap_or_else(variants_root), &extra)?;
    let source: KernelSource = {
        let _held = cache.lock("source")?;
        source::prepare(&cache, opts.kernel_src.as_deref())?
    };
    let programs = programs_with_fixed_cost_references(&scenario);
    let mut object_names: Vec<String> = programs.iter().map(|(p, _)| p.object.clone()).collect();
    if programs.iter().any(|(p, _)| p.count_task_refs || p.count_cpumasks) {
        object_names.push(PROBES_OBJECT.trim_end_matches(".bpf.o").to_string());
    }
    object_names.sort();
    object_names.dedup();

    let runner = guestbuild::build_runner()?;
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty());
    let now = chrono::Utc::now();
    let stamp = format!("{}-{}", now.format("%Y%m%dT%H%M%SZ"), &commit[..commit.len().min(12)]);
    let run_dir = opts.results_dir.join(&scenario.name).join(&stamp);
    let debug = opts.debug_kernel.then(debug_fragment);
    let not_run = |variant: &Variant, stage: &str, err: anyhow::Error| {
        let failure = vm::GuestFailure::NotRun { stage: stage.into(), error: format!("{err:#}") };
        eprintln!("error: scenario {}, variant {}: {failure}", scenario.name, variant.name);
        failure
    };

    // Every kernel is built (and its image written) before the first measuring boot, so that
    // wallclock boots of different variants can alternate (A B A B): slow drift of the host
    // then spreads over every variant instead of biasing the one measured last.
    let mut steps = progress::Steps::new(variants.len());
    let mut prepared = Vec::new();
    for variant in &variants {
        steps.begin(&variant.name, &format!("building: {}", variant.description));
        let built = prepare(&cache, &source, variant, debug.as_deref(), &runner, &scenario, &programs, &object_names);
        prepared.push((variant, built.map_err(|err| not_run(variant, "build", err))));
    }
    let (accel, mode) = match prepared.iter().find_map(|(_, built)| built.as_ref().ok()) {
        Some((kernel, _, _)) => {
            let accel = choose_accel(opts.accel, kernel, &runner)?;
            (accel, choose_mode(accel, opts.mode, opts.allow_emulated_wallclock)?)
        }
        // Nothing to boot: the result records only the build failures.
        None => (Accel::Tcg, Mode::Icount),
    };
    let boots = boots_per_variant(mode, opts.boots)?;
    let built = prepared.iter().filter(|(_, b)| b.is_ok()).count();
    steps.add_boots(boots as usize * built);
    let mut outcomes: Vec<Vec<Result<vm::BootOutcome, vm::GuestFailure>>> =
        prepared.iter().map(|_| Vec::new()).collect();
    for round in 0..boots {
        for (i, (variant, built)) in prepared.iter().enumerate() {
            let Ok((kernel, initrd, cases)) = built else { continue };
            let round_label = if boots > 1 { format!(" (boot {} of {boots})", round + 1) } else { String::new() };
            steps.begin(
                &variant.name,
                &format!(
                    "booting ({accel:?}, {mode:?}) and running {} programs{round_label}",
                    programs.len() + cases.len()
                ),
            );
            let workdir = match boots {
                1 => run_dir.join(&variant.name),
                _ => run_dir.join(&variant.name).join(format!("boot{}", round + 1)),
            };
            let outcome = vm::boot(&BootSpec {
                accel,
                mode,
                kernel: kernel.boot_image.clone(),
                initrd: initrd.clone(),
                workdir,
                boot_timeout: scenario.boot_timeout,
                run_timeout: scenario.run_timeout,
            });
            if let Ok(vm::BootOutcome { failure: Some(failure), console_log, .. }) = &outcome {
                eprintln!(
                    "error: scenario {}, variant {}: guest failed: {failure}\nconsole: {}",
                    scenario.name,
                    variant.name,
                    console_log.display()
                );
            }
            outcomes[i].push(outcome.map_err(|err| not_run(variant, "boot", err)));
        }
    }
    steps.finish();
    let mut results = Vec::new();
    for ((variant, built), boots) in prepared.iter().zip(outcomes) {
        let kernel = built.as_ref().ok().map(|(kernel, _, _)| kernel);
        let cases = built.as_ref().map_or(&[][..], |(_, _, cases)| &cases[..]);
        let mut per_boot: Vec<VariantResult> = boots
            .into_iter()
            .map(|outcome| variant_result(variant, kernel, &source, &scenario, &programs, cases, outcome))
            .collect();
        if let Err(failure) = built {
            per_boot.push(variant_result(variant, None, &source, &scenario, &programs, &[], Err(failure.clone())));
        }
        results.push(pool_boots(per_boot));
    }
    let run = RunResult {
        schema_version: results::SCHEMA_VERSION,
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            description: scenario.description.clone(),
            file: scenario_path.to_path_buf(),
            thresholds: scenario.thresholds.clone(),
        },
        provenance: Provenance {
            date: now.to_rfc3339(),
            harness_commit: commit,
            harness_dirty: dirty,
            host_cpu: host_cpu(),
            qemu_version: vm::qemu_version(),
            accel,
            mode,
            unit: mode.unit().into(),
            measurement: measurement(accel, mode),
        },
        variants: results,
    };
    let path = run.store(&opts.results_dir, &stamp)?;
    Ok((run, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_scenario_is_valid_and_names_defined_variants() {
        let dir = guestbuild::repo_root().join("scenarios");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let scenario = Scenario::load(&path, &guestbuild::bpf_source_dir()).unwrap_or_else(|e| panic!("{e}"));
                select_variants(&scenario, &[], &variants_root(), &[])
                    .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                checked += 1;
            }
        }
        assert!(checked >= 2, "found only {checked} scenarios in {}", dir.display());
    }

    #[test]
    fn a_series_from_the_command_line_runs_beside_the_scenario_variants() {
        let scenario =
            Scenario::load(&guestbuild::repo_root().join("scenarios/throw.yaml"), &guestbuild::bpf_source_dir())
                .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("0001-x.patch"), "diff --git a/x b/x\n").unwrap();
        let mine = Variant::from_series("mine", dir.path(), dir.path()).unwrap();
        let names: Vec<String> = select_variants(&scenario, &[], &variants_root(), std::slice::from_ref(&mine))
            .unwrap()
            .into_iter()
            .map(|v| v.name)
            .collect();
        assert_eq!(names, ["baseline", "exception-unwind", "mine"]);
        let only: Vec<String> = select_variants(&scenario, &["mine".into()], &variants_root(), &[mine])
            .unwrap()
            .into_iter()
            .map(|v| v.name)
            .collect();
        assert_eq!(only, ["mine"]);
        let clash = Variant::from_series("baseline", dir.path(), dir.path()).unwrap();
        let err = select_variants(&scenario, &[], &variants_root(), &[clash]).unwrap_err().to_string();
        assert!(err.contains("already defined"), "{err}");
    }

    #[test]
    fn icount_boots_once_and_wallclock_several_times() {
        assert_eq!(boots_per_variant(Mode::Icount, None).unwrap(), 1);
        assert!(boots_per_variant(Mode::Icount, Some(3)).is_err());
        assert_eq!(boots_per_variant(Mode::Wallclock, None).unwrap(), DEFAULT_WALLCLOCK_BOOTS);
        assert_eq!(boots_per_variant(Mode::Wallclock, Some(5)).unwrap(), 5);
        assert!(boots_per_variant(Mode::Wallclock, Some(0)).is_err());
    }

    #[test]
    fn boots_pool_samples_and_keep_every_failure() {
        let run = crate::table::tests::fixture();
        let first = run.variants[0].clone();
        let mut second = first.clone();
        second.programs[0].samples = vec![160, 161];
        second.programs[0].checks.push(results::Check {
            what: "retval".into(),
            ok: false,
            detail: "returned 1".into(),
        });
        second.kernel_warnings.push("WARNING: x".into());
        let pooled = pool_boots(vec![first.clone(), second]);
        assert_eq!(pooled.boots, 2);
        let p = &pooled.programs[0];
        assert_eq!(p.samples, [153, 153, 153, 153, 153, 160, 161]);
        assert_eq!(p.summary.unwrap().max, 161);
        assert!(p.checks.iter().any(|c| !c.ok && c.detail == "boot 2: returned 1"));
        assert_eq!(pooled.kernel_warnings, ["boot 2: WARNING: x"]);
        let single = pool_boots(vec![first.clone()]);
        assert_eq!((single.boots, &single.programs[0].samples), (1, &first.programs[0].samples));
    }

    /// KVM that exists but cannot run this guest (here: QEMU exits at once, the "kernel" being
    /// no kernel) must mean TCG, not an error; without a usable /dev/kvm the probe is skipped.
    #[test]
    fn a_failing_kvm_probe_falls_back_to_tcg() {
        let dir = tempfile::tempdir().unwrap();
        let not_a_kernel = dir.path().join("vmlinux.boot");
        std::fs::write(&not_a_kernel, "not a kernel").unwrap();
        let runner = dir.path().join("runner");
        std::fs::write(&runner, "not a runner either").unwrap();
        let kernel = KernelBuild {
            variant: "baseline".into(),
            kernel_version: "6.12.117".into(),
            tree: dir.path().into(),
            objdir: dir.path().into(),
            vmlinux: not_a_kernel.clone(),
            boot_image: not_a_kernel,
            build_key: String::new(),
            patch_hash: String::new(),
            config_hash: String::new(),
            compiler: String::new(),
            log: dir.path().join("build.log"),
            build_seconds: 0.0,
        };
        assert_eq!(choose_accel(AccelChoice::Auto, &kernel, &runner).unwrap(), Accel::Tcg);
        if vm::kvm_device_usable() {
            let console = dir.path().join("kvm-probe/console.log");
            assert!(console.exists(), "the probe must really have booted QEMU under KVM");
        }
    }

    #[test]
    fn icount_is_refused_under_kvm_and_emulated_wallclock_needs_consent() {
        assert_eq!(choose_mode(Accel::Tcg, None, false).unwrap(), Mode::Icount);
        assert_eq!(choose_mode(Accel::Kvm, None, false).unwrap(), Mode::Wallclock);
        assert!(choose_mode(Accel::Kvm, Some(Mode::Icount), false).is_err());
        assert!(choose_mode(Accel::Tcg, Some(Mode::Wallclock), false).is_err());
        assert_eq!(choose_mode(Accel::Tcg, Some(Mode::Wallclock), true).unwrap(), Mode::Wallclock);
        assert!(measurement(Accel::Tcg, Mode::Wallclock).starts_with("EMULATION"));
    }
}
