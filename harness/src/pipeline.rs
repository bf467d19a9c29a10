//! Runs one scenario on its variants: sequences the stages so that a failing variant loses
//! nothing that another produced. The stages that need a kernel (building
//! an image, booting it) sit behind [`Stages`], so the ordering, pooling, not-run handling and
//! KVM fallback are tested without one.

use crate::events::{Event, Sink, Steps};
use crate::guest::{self, BuildError, GuestImage};
use crate::host::cache::Cache;
use crate::host::{prereq, repo};
use crate::kernel::source::{self, KernelSource};
use crate::kernel::variant::{self, JudgedAs, Variant};
use crate::results::schema::{Provenance, RunResult, ScenarioInfo, VariantResult, SCHEMA_VERSION};
use crate::results::store;
use crate::scenario::Scenario;
use crate::selftests;
use crate::verdict::pool::pool_boots;
use crate::verdict::{self, subject, Boot};
use crate::vm::accel::{self, AccelChoice};
use crate::vm::qemu::{self, Accel, BootOutcome, BootSpec, GuestFailure, Mode};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A KVM guest reaches user space in about a second; one that has not after this has failed
/// (on hosts with broken nested virtualisation it hangs rather than erroring).
const KVM_PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// A scenario's boot timeout is for the kernels it measures: the debug kernel (KASAN, lockdep,
/// kmemleak) takes several times as long to boot (60-100 s under TCG where the others take
/// 10-15 s), more with other guests sharing the host.
const DEBUG_BOOT_SLOWDOWN: u32 = 3;

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
    /// Boots per variant in wallclock mode (default [`accel::DEFAULT_WALLCLOCK_BOOTS`]).
    pub boots: Option<u32>,
    /// Build with `kernel-config/debug.config` on top (KASAN, lockdep, kmemleak, LKDTM).
    pub debug_kernel: bool,
    /// Where variants are defined (default: `kernel-config/variants` in the repository).
    pub variants_dir: Option<PathBuf>,
    /// Variants from the command line (`--variant NAME=PATH`): a directory of format-patch files
    /// or an mbox, run beside the scenario's own variants.
    pub extra_variants: Vec<(String, PathBuf)>,
    /// `--revision-of NAME=VARIANT`: the command line's series NAME revises shipped VARIANT.
    pub revisions: Vec<(String, String)>,
    /// Boot every run instead of restoring the image's saved boot (`--cold-boot`).
    pub cold_boot: bool,
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
            revisions: Vec::new(),
            cold_boot: false,
        }
    }
}

/// The stages that need a kernel: making a variant's image, and booting an image.
pub trait Stages: Sync {
    fn prepare(&self, variant: &Variant) -> Result<GuestImage, BuildError>;
    fn boot(&self, variant: &str, spec: &BootSpec) -> anyhow::Result<BootOutcome>;
    fn kvm_device_usable(&self) -> bool;
    /// Whether a guest ran under KVM when this host last proved it (None: never proved).
    fn remembered_kvm(&self) -> Option<bool>;
    fn remember_kvm(&self, runs_guests: bool);
}

/// The real stages: kernels built from source, QEMU.
struct Host<'a> {
    sink: &'a dyn Sink,
    inputs: guest::Inputs<'a>,
}

impl Stages for Host<'_> {
    fn prepare(&self, variant: &Variant) -> Result<GuestImage, BuildError> {
        guest::prepare(self.sink, &self.inputs, variant)
    }

    fn boot(&self, variant: &str, spec: &BootSpec) -> anyhow::Result<BootOutcome> {
        let _core = self.inputs.cache.guest_slot(self.sink, variant)?;
        qemu::boot(spec)
    }

    fn kvm_device_usable(&self) -> bool {
        accel::kvm_device_usable()
    }

    fn remembered_kvm(&self) -> Option<bool> {
        accel::KvmMemory::in_dir(self.inputs.cache.root()).get(&accel::host_key())
    }

    fn remember_kvm(&self, runs_guests: bool) {
        let memory = accel::KvmMemory::in_dir(self.inputs.cache.root());
        if let Err(err) = memory.put(&accel::host_key(), runs_guests) {
            self.sink.warning(format!("cannot remember the KVM verdict: {err:#}"));
        }
    }
}

/// Builds, boots and measures every variant of the scenario; stores and returns the result.
/// A variant that cannot be built or booted is recorded as not run (with why) and the others
/// go on; the stored result then says which variants are incomplete.
pub fn run_scenario(sink: &dyn Sink, scenario_path: &Path, opts: &Options) -> anyhow::Result<(RunResult, PathBuf)> {
    prereq::ensure(sink, opts.kernel_src.is_none())?;
    let mut scenario = Scenario::load(scenario_path, &repo::bpf_source_dir())?;
    let cache = Cache::resolve(opts.cache_dir.as_deref())?;
    let mut extra = opts
        .extra_variants
        .iter()
        .map(|(name, path)| Variant::from_series(name, path, &cache.root().join("series")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for (name, original) in &opts.revisions {
        let variant = extra.iter_mut().find(|v| &v.name == name).ok_or_else(|| {
            anyhow::anyhow!("--revision-of {name}={original}: no --variant {name}=PATH on the command line")
        })?;
        variant.judged_as = JudgedAs::RevisionOf(original.clone());
    }
    let variants_dir = opts.variants_dir.clone().unwrap_or_else(repo::variants_dir);
    let variants = variant::select(&scenario, &opts.only, &variants_dir, &extra)?;
    let source: KernelSource = {
        let _held = cache.lock(sink, "source")?;
        source::prepare(sink, &cache, opts.kernel_src.as_deref())?
    };
    // Patterns name the same files for every variant: those of the release's tree.
    scenario.upstream = selftests::expand(&scenario.upstream, &source.path.join(selftests::PROGS_DIR))?;
    let runner = guest::objects::build_runner(sink)?;
    let base_fragment = repo::base_fragment();
    let debug_fragment = opts.debug_kernel.then(repo::debug_fragment);
    let stages = Host {
        sink,
        inputs: guest::Inputs {
            cache: &cache,
            source: &source,
            base_fragment: &base_fragment,
            debug_fragment: debug_fragment.as_deref(),
            runner: &runner,
            scenario: &scenario,
        },
    };
    let date = chrono::Utc::now().to_rfc3339();
    let commit = repo::commit();
    let stamp = store::stamp(&date, &commit)?;
    let run_dir = opts.results_dir.join(&scenario.name).join(&stamp);
    let measured = measure(sink, &stages, &scenario, &variants, &source.version, opts, &run_dir)?;
    let run = RunResult {
        schema_version: SCHEMA_VERSION,
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            description: scenario.description.clone(),
            file: scenario_path.to_path_buf(),
            thresholds: scenario.thresholds.clone(),
        },
        provenance: Provenance {
            date,
            harness_commit: commit,
            harness_dirty: repo::dirty(),
            host_cpu: repo::host_cpu(),
            qemu_version: qemu::qemu_version(),
            accel: measured.accel,
            mode: measured.mode,
            unit: measured.mode.unit().into(),
            measurement: accel::measurement(measured.accel, measured.mode),
        },
        variants: measured.variants,
    };
    let path = store::write(&run, &opts.results_dir)?;
    Ok((run, path))
}

/// What the boots measured, and how.
pub struct Measured {
    pub accel: Accel,
    pub mode: Mode,
    /// One per variant, in the order given, boots pooled.
    pub variants: Vec<VariantResult>,
}

/// Every kernel is built (and its image written) before the first measuring boot, so that
/// wallclock boots of different variants can alternate (A B A B): slow drift of the host then
/// spreads over every variant instead of biasing the one measured last. Icount counts do not
/// depend on what else the host runs, so there the variants' guests run side by side (as many
/// at a time as [`crate::host::cache::guest_slots`] allows).
pub fn measure(
    sink: &dyn Sink,
    stages: &dyn Stages,
    scenario: &Scenario,
    variants: &[Variant],
    source_version: &str,
    opts: &Options,
    run_dir: &Path,
) -> anyhow::Result<Measured> {
    let failures = Failures { sink, scenario: &scenario.name };
    let mut steps = Steps::new(sink, variants.len());
    let prepared: Vec<Result<GuestImage, GuestFailure>> = variants
        .iter()
        .map(|variant| {
            steps.begin(&variant.name, &format!("building: {}", variant.description));
            stages.prepare(variant).map_err(|e| failures.not_run(variant, "build", e.to_string()))
        })
        .collect();
    let (accel, mode) = match prepared.iter().find_map(|p| p.as_ref().ok()) {
        Some(first) => {
            let mut proved = None;
            let probe = || {
                let outcome = probe_kvm(sink, stages, first)?;
                proved = Some(outcome.failure.is_none());
                Ok(outcome)
            };
            let usable = stages.kvm_device_usable();
            // Only `auto` on a usable /dev/kvm has a verdict to look up (its key runs QEMU).
            let remembered = (opts.accel == AccelChoice::Auto && usable).then(|| stages.remembered_kvm()).flatten();
            let accel = accel::choose(sink, opts.accel, usable, remembered, probe)?;
            if let Some(runs_guests) = proved {
                stages.remember_kvm(runs_guests);
            }
            (accel, accel::choose_mode(accel, opts.mode, opts.allow_emulated_wallclock)?)
        }
        // Nothing to boot: the result records only the build failures.
        None => (Accel::Tcg, Mode::Icount),
    };
    let boots = accel::boots_per_variant(mode, opts.boots)?;
    let built: Vec<(usize, &GuestImage)> =
        prepared.iter().enumerate().filter_map(|(i, image)| Some((i, image.as_ref().ok()?))).collect();
    steps.add_boots(boots as usize * built.len());
    let steps = std::sync::Mutex::new(steps);
    let boot = |i: usize, image: &GuestImage, round: u32| {
        let variant = &variants[i];
        let planned = image.subjects.iter().filter(|s| s.plan(variant.expectations().0).is_some()).count();
        let round_label = if boots > 1 { format!(" (boot {} of {boots})", round + 1) } else { String::new() };
        steps.lock().unwrap_or_else(|p| p.into_inner()).begin(
            &variant.name,
            &format!("booting ({accel:?}, {mode:?}) and running {planned} programs{round_label}"),
        );
        let workdir = match boots {
            1 => run_dir.join(&variant.name),
            _ => run_dir.join(&variant.name).join(format!("boot{}", round + 1)),
        };
        let outcome = stages.boot(
            &variant.name,
            &BootSpec {
                accel,
                mode,
                kernel: image.kernel.boot_image.clone(),
                initrd: image.initrd.clone(),
                payload: Some(image.payload.to_path_buf()),
                workdir,
                boot_timeout: scenario.boot_timeout * if opts.debug_kernel { DEBUG_BOOT_SLOWDOWN } else { 1 },
                run_timeout: scenario.run_timeout,
                restore: !opts.cold_boot,
            },
        );
        if let Ok(BootOutcome { failure: Some(failure), console_log, .. }) = &outcome {
            failures.report(variant, failure, Some(console_log));
        }
        outcome.map_err(|err| failures.not_run(variant, "boot", format!("{err:#}")))
    };
    let mut outcomes: Vec<Vec<Result<BootOutcome, GuestFailure>>> = prepared.iter().map(|_| Vec::new()).collect();
    for round in 0..boots {
        let round_outcomes: Vec<(usize, Result<BootOutcome, GuestFailure>)> = if mode == Mode::Icount {
            std::thread::scope(|scope| {
                let guests: Vec<_> =
                    built.iter().map(|&(i, image)| scope.spawn(move || (i, boot(i, image, round)))).collect();
                guests.into_iter().map(|guest| guest.join().expect("a boot panicked")).collect()
            })
        } else {
            built.iter().map(|&(i, image)| (i, boot(i, image, round))).collect()
        };
        for (i, outcome) in round_outcomes {
            outcomes[i].push(outcome);
        }
    }
    let steps = steps.into_inner().unwrap_or_else(|p| p.into_inner());
    steps.finish();
    let results = judge(scenario, variants, source_version, &prepared, outcomes);
    Ok(Measured { accel, mode, variants: results })
}

/// Boots the first image under KVM with the probe plan: does a guest really run under it?
fn probe_kvm(sink: &dyn Sink, stages: &dyn Stages, image: &GuestImage) -> anyhow::Result<BootOutcome> {
    sink.phase(&image.variant.name, "probing whether KVM really runs a guest");
    stages.boot(
        &image.variant.name,
        &BootSpec {
            accel: Accel::Kvm,
            mode: Mode::Wallclock,
            kernel: image.kernel.boot_image.clone(),
            initrd: image.initrd.clone(),
            payload: Some(image.probe_payload.to_path_buf()),
            workdir: image.kernel.objdir.join("kvm-probe"),
            boot_timeout: KVM_PROBE_TIMEOUT,
            run_timeout: KVM_PROBE_TIMEOUT,
            restore: false,
        },
    )
}

/// Each variant's boots judged and pooled; a variant that was not built is judged on its
/// scenario programs, none of which ran.
fn judge(
    scenario: &Scenario,
    variants: &[Variant],
    source_version: &str,
    prepared: &[Result<GuestImage, GuestFailure>],
    outcomes: Vec<Vec<Result<BootOutcome, GuestFailure>>>,
) -> Vec<VariantResult> {
    let scenario_subjects = subject::of_scenario(scenario);
    let mut results = variants
        .iter()
        .zip(prepared)
        .zip(outcomes)
        .map(|((variant, image), outcomes)| {
            let boot = Boot {
                variant,
                kernel: image.as_ref().ok().map(|i| &i.kernel),
                source_version,
                scenario,
                subjects: image.as_ref().map_or(&scenario_subjects[..], |i| &i.subjects[..]),
            };
            let mut per_boot: Vec<VariantResult> = outcomes.iter().map(|o| boot.judge(o.as_ref())).collect();
            if let Err(failure) = image {
                per_boot.push(boot.judge(Err(failure)));
            }
            pool_boots(per_boot)
        })
        .collect::<Vec<_>>();
    verdict::uncompiled_on_baseline_skipped(&mut results);
    results
}

/// Tells the sink about a variant that failed; the run goes on without it.
struct Failures<'a> {
    sink: &'a dyn Sink,
    scenario: &'a str,
}

impl Failures<'_> {
    fn report(&self, variant: &Variant, failure: &GuestFailure, console: Option<&Path>) {
        let reason = match failure {
            GuestFailure::NotRun { .. } => failure.to_string(),
            _ => format!("guest failed: {failure}"),
        };
        self.sink.emit(Event::VariantFailed {
            scenario: self.scenario.into(),
            variant: variant.name.clone(),
            reason,
            console: console.map(Path::to_path_buf),
        });
    }

    fn not_run(&self, variant: &Variant, stage: &str, error: String) -> GuestFailure {
        let failure = GuestFailure::NotRun { stage: stage.into(), error };
        self.report(variant, &failure, None);
        failure
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Collect;
    use crate::kernel::build::KernelBuild;
    use crate::verdict::subject;
    use bpfh_protocol::{Record, Timing, Verdict};
    use std::sync::Arc;
    use std::sync::{Condvar, Mutex};
    use tempfile::TempPath;

    /// Stages without kernels: `broken` does not build, `hangs` times out in the guest, a KVM
    /// probe fails unless `kvm_runs`; every other boot reports every planned program. A boot
    /// waits up to `patience` until `meet` boots have been in flight at once.
    struct Fake {
        scenario: Scenario,
        kvm_runs: bool,
        calls: Mutex<Vec<String>>,
        boots: Mutex<u64>,
        remembered: Mutex<Option<bool>>,
        meet: usize,
        patience: Duration,
        boot_timeouts: Mutex<Vec<Duration>>,
        in_flight: (Mutex<(usize, usize)>, Condvar),
    }

    impl Fake {
        fn new(kvm_runs: bool) -> Fake {
            let scenario = Scenario::load(&repo::scenarios_dir().join("simple.yaml"), &repo::bpf_source_dir()).unwrap();
            Fake {
                scenario,
                kvm_runs,
                calls: Mutex::new(Vec::new()),
                boots: Mutex::new(0),
                remembered: Mutex::new(None),
                meet: 1,
                patience: Duration::ZERO,
                boot_timeouts: Mutex::new(Vec::new()),
                in_flight: (Mutex::new((0, 0)), Condvar::new()),
            }
        }

        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }

        /// The most boots that were in flight at once.
        fn most_in_flight(&self) -> usize {
            self.in_flight.0.lock().unwrap().1
        }

        fn enter(&self) {
            let (lock, changed) = &self.in_flight;
            let mut in_flight = lock.lock().unwrap();
            in_flight.0 += 1;
            in_flight.1 = in_flight.1.max(in_flight.0);
            changed.notify_all();
            drop(changed.wait_timeout_while(in_flight, self.patience, |(_, most)| *most < self.meet).unwrap());
        }

        fn leave(&self) {
            self.in_flight.0.lock().unwrap().0 -= 1;
        }
    }

    fn variant(name: &str) -> Variant {
        Variant {
            name: name.into(),
            description: format!("{name} series"),
            config_fragment: None,
            patches: Vec::new(),
            prog_info: Vec::new(),
            upstream_differences: Vec::new(),
            judged_as: JudgedAs::Itself,
        }
    }

    impl Stages for Fake {
        fn prepare(&self, variant: &Variant) -> Result<GuestImage, BuildError> {
            self.calls.lock().unwrap().push(format!("prepare {}", variant.name));
            if variant.name == "broken" {
                return Err(BuildError::Kernel(anyhow::anyhow!("0001-x.patch does not apply")));
            }
            let dir = PathBuf::from("/fake").join(&variant.name);
            Ok(GuestImage {
                variant: variant.clone(),
                kernel: KernelBuild {
                    variant: variant.name.clone(),
                    kernel_version: "6.12.117".into(),
                    tree: dir.clone(),
                    objdir: dir.clone(),
                    vmlinux: dir.join("vmlinux"),
                    boot_image: dir.join("vmlinux.boot"),
                    build_key: "k".into(),
                    patch_hash: "p".into(),
                    config_hash: "c".into(),
                    compiler: "gcc".into(),
                    log: dir.join("build.log"),
                },
                initrd: dir.join("runner.cpio"),
                payload: Arc::new(TempPath::try_from_path(dir.join("run.payload.cpio")).unwrap()),
                probe_payload: Arc::new(TempPath::try_from_path(dir.join("probe.payload.cpio")).unwrap()),
                subjects: subject::of_scenario(&self.scenario),
                in_use: None,
            })
        }

        fn boot(&self, name: &str, spec: &BootSpec) -> anyhow::Result<BootOutcome> {
            let probe = spec.payload.as_ref().is_some_and(|p| p.ends_with("probe.payload.cpio"));
            self.calls.lock().unwrap().push(format!("{} {name}", if probe { "probe" } else { "boot" }));
            self.boot_timeouts.lock().unwrap().push(spec.boot_timeout);
            self.enter();
            let outcome = self.outcome(name, spec, probe);
            self.leave();
            outcome
        }

        fn kvm_device_usable(&self) -> bool {
            true
        }

        fn remembered_kvm(&self) -> Option<bool> {
            *self.remembered.lock().unwrap()
        }

        fn remember_kvm(&self, runs_guests: bool) {
            self.calls.lock().unwrap().push(format!("remember {runs_guests}"));
            *self.remembered.lock().unwrap() = Some(runs_guests);
        }
    }

    impl Fake {
        fn outcome(&self, name: &str, spec: &BootSpec, probe: bool) -> anyhow::Result<BootOutcome> {
            let outcome = |records: Vec<Record>, failure: Option<GuestFailure>| BootOutcome {
                console_log: spec.workdir.join("console.log"),
                records,
                kernel_warnings: Vec::new(),
                failure,
                boot_seconds: Some(1.0),
                restored: false,
                total_seconds: 2.0,
            };
            if probe {
                let hang = GuestFailure::BootTimeout { seconds: 15, console_tail: String::new() };
                return Ok(outcome(Vec::new(), (!self.kvm_runs).then_some(hang)));
            }
            if name == "hangs" {
                let hang = GuestFailure::RunTimeout { seconds: 600, console_tail: "...".into() };
                return Ok(outcome(Vec::new(), Some(hang)));
            }
            let sample = {
                let mut boots = self.boots.lock().unwrap();
                *boots += 1;
                100 + *boots
            };
            let mut records = vec![Record::Hello {
                kernel_release: "6.12.117".into(),
                runner_version: bpfh_protocol::VERSION.into(),
            }];
            for s in subject::of_scenario(&self.scenario) {
                let plan = s.plan(name).unwrap();
                records.push(Record::Loaded { id: plan.id.clone(), verdict: Verdict::Accepted, info: None });
                records.push(Record::Ran {
                    id: plan.id,
                    retval: 0,
                    retval_mismatch: false,
                    timing: Timing::TestRunDuration,
                    repeat: 1,
                    samples: vec![sample; 2],
                    run_errno: None,
                    failed_runs: 0,
                    watchdog: None,
                    call_ns: Vec::new(),
                });
            }
            records.push(Record::Done);
            Ok(outcome(records, None))
        }
    }

    fn measure_with(fake: &Fake, sink: &Collect, names: &[&str], opts: &Options) -> Measured {
        let variants: Vec<Variant> = names.iter().map(|n| variant(n)).collect();
        measure(sink, fake, &fake.scenario, &variants, "6.12.117", opts, Path::new("/fake/results")).unwrap()
    }

    #[test]
    fn every_variant_is_built_before_the_first_boot_and_wallclock_boots_alternate() {
        let fake = Fake::new(true);
        let opts = Options { accel: AccelChoice::Kvm, boots: Some(2), ..Options::icount("/fake".into()) };
        let measured = measure_with(&fake, &Collect::default(), &["baseline", "mine"], &opts);
        assert_eq!((measured.accel, measured.mode), (Accel::Kvm, Mode::Wallclock));
        assert_eq!(
            fake.calls(),
            ["prepare baseline", "prepare mine", "boot baseline", "boot mine", "boot baseline", "boot mine"]
        );
        let baseline = &measured.variants[0];
        assert_eq!(baseline.boots, 2, "the two boots are pooled");
        assert!(baseline.complete && baseline.guest_errors.is_empty(), "{:?}", baseline.guest_errors);
        let first = &baseline.programs[0];
        assert_eq!(first.samples, [101, 101, 103, 103], "both boots' samples, in boot order");
    }

    #[test]
    fn icount_guests_run_side_by_side_and_wallclock_ones_one_at_a_time() {
        let names = ["baseline", "mine", "theirs"];
        let fake = Fake { meet: 3, patience: Duration::from_secs(10), ..Fake::new(true) };
        let measured = measure_with(&fake, &Collect::default(), &names, &Options::icount("/fake".into()));
        assert_eq!(fake.most_in_flight(), 3, "each variant's guest runs beside the others");
        assert!(measured.variants.iter().all(|v| v.complete && v.boots == 1));
        let samples: Vec<u64> = measured.variants.iter().map(|v| v.programs[0].samples[0]).collect();
        assert!(samples.iter().all(|s| (101..=103).contains(s)), "each variant keeps its own boot: {samples:?}");

        let fake = Fake { meet: 3, patience: Duration::from_millis(100), ..Fake::new(true) };
        let opts = Options { accel: AccelChoice::Kvm, boots: Some(2), ..Options::icount("/fake".into()) };
        measure_with(&fake, &Collect::default(), &names, &opts);
        assert_eq!(fake.most_in_flight(), 1, "a wallclock guest must have the host to itself");
    }

    #[test]
    fn the_debug_kernel_has_longer_to_boot() {
        let release = Fake::new(true);
        measure_with(&release, &Collect::default(), &["baseline"], &Options::icount("/fake".into()));
        let debug = Fake::new(true);
        let opts = Options { debug_kernel: true, ..Options::icount("/fake".into()) };
        measure_with(&debug, &Collect::default(), &["baseline"], &opts);
        let timeout = release.scenario.boot_timeout;
        assert_eq!(*release.boot_timeouts.lock().unwrap(), [timeout]);
        assert_eq!(*debug.boot_timeouts.lock().unwrap(), [timeout * DEBUG_BOOT_SLOWDOWN]);
    }

    #[test]
    fn a_variant_that_does_not_build_or_run_is_recorded_and_the_others_go_on() {
        let fake = Fake::new(false);
        let sink = Collect::default();
        let measured = measure_with(&fake, &sink, &["broken", "baseline", "hangs"], &Options::icount("/fake".into()));
        let mut calls = fake.calls();
        calls[3..].sort();
        assert_eq!(calls, ["prepare broken", "prepare baseline", "prepare hangs", "boot baseline", "boot hangs"]);
        let [broken, baseline, hangs] = &measured.variants[..] else { panic!("three variants") };
        assert!(!broken.complete && broken.boots == 0);
        assert!(matches!(&broken.failure, Some(GuestFailure::NotRun { stage, error })
            if stage == "build" && error.contains("does not apply")));
        assert_eq!(broken.programs.len(), baseline.programs.len(), "its programs are listed, not run");
        assert!(broken.programs.iter().all(|p| !p.passed()));
        assert!(baseline.complete && baseline.boots == 1);
        assert!(!hangs.complete && matches!(hangs.failure, Some(GuestFailure::RunTimeout { .. })));
        let mut failures: Vec<String> = sink
            .events()
            .iter()
            .filter_map(|e| match e {
                Event::VariantFailed { variant, reason, .. } => Some(format!("{variant}: {reason}")),
                _ => None,
            })
            .collect();
        assert_eq!(failures.len(), 2, "{failures:?}");
        failures.sort();
        assert!(failures[0].starts_with("broken: not run: the build failed: kernel: "), "{failures:?}");
        assert!(failures[1].starts_with("hangs: guest failed: the runner did not finish"), "{failures:?}");
    }

    #[test]
    fn kvm_that_does_not_run_the_guest_means_icount_under_tcg() {
        let fake = Fake::new(false);
        let sink = Collect::default();
        let opts = Options { accel: AccelChoice::Auto, ..Options::icount("/fake".into()) };
        let measured = measure_with(&fake, &sink, &["baseline"], &opts);
        assert_eq!((measured.accel, measured.mode), (Accel::Tcg, Mode::Icount));
        assert_eq!(fake.calls(), ["prepare baseline", "probe baseline", "remember false", "boot baseline"]);
        assert!(sink.events().iter().any(|e| matches!(e, Event::Warning { .. })));
        // The next run knows: no probe.
        let again = measure_with(&fake, &Collect::default(), &["baseline"], &opts);
        assert_eq!(again.accel, Accel::Tcg);
        assert_eq!(fake.calls().iter().filter(|c| c.starts_with("probe")).count(), 1, "{:?}", fake.calls());
        let fake = Fake::new(true);
        let measured = measure_with(&fake, &Collect::default(), &["baseline"], &opts);
        assert_eq!((measured.accel, measured.mode), (Accel::Kvm, Mode::Wallclock));
    }

    #[test]
    fn nothing_built_means_nothing_booted() {
        let fake = Fake::new(true);
        let measured = measure_with(&fake, &Collect::default(), &["broken"], &Options::icount("/fake".into()));
        assert_eq!(fake.calls(), ["prepare broken"]);
        assert_eq!((measured.accel, measured.mode), (Accel::Tcg, Mode::Icount));
    }

    /// The real probe: QEMU under KVM on a "kernel" that is no kernel must end in TCG, not an
    /// error; where /dev/kvm is usable, QEMU really ran and left its console.
    #[test]
    fn a_failing_kvm_probe_falls_back_to_tcg() {
        let dir = tempfile::tempdir().unwrap();
        let not_a_kernel = dir.path().join("vmlinux.boot");
        std::fs::write(&not_a_kernel, "not a kernel").unwrap();
        let workdir = dir.path().join("kvm-probe");
        let probe = || {
            qemu::boot(&BootSpec {
                accel: Accel::Kvm,
                mode: Mode::Wallclock,
                kernel: not_a_kernel.clone(),
                initrd: not_a_kernel.clone(),
                payload: None,
                workdir: workdir.clone(),
                boot_timeout: KVM_PROBE_TIMEOUT,
                run_timeout: KVM_PROBE_TIMEOUT,
                restore: false,
            })
        };
        let sink = Collect::default();
        assert_eq!(
            accel::choose(&sink, AccelChoice::Auto, accel::kvm_device_usable(), None, probe).unwrap(),
            Accel::Tcg
        );
        if accel::kvm_device_usable() {
            assert!(workdir.join("console.log").exists(), "the probe must really have booted QEMU under KVM");
        }
    }
}
