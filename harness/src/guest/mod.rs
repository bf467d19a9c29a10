//! What the guest gets: the static runner, the BPF objects built against the variant's BTF
//! (`objects`), the plan of what to do with each subject, and the initramfs that carries them
//! (`initramfs`). [`prepare`] makes a variant's [`GuestImage`], kernel included.

pub mod initramfs;
pub mod objects;

use crate::events::Sink;
use crate::host::cache::{Cache, CacheLock};
use crate::kernel::build::{self, in_use_lock, KernelBuild};
use crate::kernel::source::KernelSource;
use crate::kernel::variant::Variant;
use crate::scenario::Scenario;
use crate::selftests::annotations::{cases, check_differences, object_name, FileContext};
use crate::selftests::disasm;
use crate::selftests::drivers::Drivers;
use crate::selftests::object::{externs, programs};
use crate::selftests::options;
use crate::selftests::SELFTESTS_DIR;
use crate::verdict::subject::{self, Subject};
use bpfh_protocol::{Plan, BPF_DIR, PLAN_PATH};
use initramfs::Initramfs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tempfile::TempPath;

/// A variant ready to boot: its kernel, the initramfs (the runner alone, the same for every
/// scenario, so that one saved boot serves them all), the run's payload for the scenario, a
/// payload that only proves the guest boots (the KVM probe), and the subjects the plan names.
/// The payloads are this run's own files (another run of the same scenario and kernel may
/// carry another variant's name), removed when the image is dropped.
#[derive(Debug, Clone)]
pub struct GuestImage {
    pub variant: Variant,
    pub kernel: KernelBuild,
    pub initrd: PathBuf,
    pub payload: Arc<TempPath>,
    pub probe_payload: Arc<TempPath>,
    pub subjects: Vec<Subject>,
    /// A shared hold on the build directory for as long as the image lives: `cache prune`
    /// leaves it alone while a run boots from it. None where no cache is involved (tests).
    pub in_use: Option<Arc<CacheLock>>,
}

/// Where making a guest image failed, with why; stored as the variant's `not run` failure.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("kernel: {0:#}")]
    Kernel(anyhow::Error),
    #[error("BPF objects: {0:#}")]
    Objects(anyhow::Error),
    #[error("upstream selftests: {0:#}")]
    Selftests(anyhow::Error),
    #[error("image: {0:#}")]
    Image(anyhow::Error),
}

/// What every variant's image is made from.
pub struct Inputs<'a> {
    pub cache: &'a Cache,
    pub source: &'a KernelSource,
    pub base_fragment: &'a Path,
    pub debug_fragment: Option<&'a Path>,
    pub runner: &'a Path,
    pub scenario: &'a Scenario,
}

/// Builds the variant's kernel, its BPF objects, the scenario's upstream selftest objects, and
/// the images. The build directory stays locked until the images are written.
pub fn prepare(sink: &dyn Sink, inputs: &Inputs, variant: &Variant) -> Result<GuestImage, BuildError> {
    let locked = build::build(sink, inputs.cache, inputs.source, variant, inputs.base_fragment, inputs.debug_fragment)
        .map_err(BuildError::Kernel)?;
    let kernel = &locked.kernel;
    let in_use = inputs.cache.lock_shared(&in_use_lock(&kernel.objdir)).map_err(BuildError::Kernel)?;
    let mut subjects = subject::of_scenario(inputs.scenario);
    let mut objects =
        objects::build_bpf_objects(sink, inputs.cache, inputs.source, kernel, &subject::bpf_objects(&subjects))
            .map_err(BuildError::Objects)?;
    let mut selftests = || -> anyhow::Result<Vec<Subject>> {
        let mut all = Vec::new();
        let files = &inputs.scenario.upstream;
        let mut uncompiled = Vec::new();
        let drivers = Drivers::read(&kernel.tree.join(SELFTESTS_DIR))?;
        let helpers = Arc::new(disasm::helper_names(&kernel.tree)?);
        let dotconfig = kernel.objdir.join(".config");
        let lacking: Arc<[_]> =
            options::lacking(&anyhow::Context::with_context(std::fs::read_to_string(&dotconfig), || {
                format!("reading {}", dotconfig.display())
            })?)
            .into();
        for (file, compiled) in
            files.iter().zip(objects::compile_selftests(sink, inputs.cache, inputs.source, kernel, files)?)
        {
            match compiled {
                Ok((name, object)) => {
                    debug_assert_eq!(name, object_name(file));
                    let context = FileContext {
                        driver: drivers.of(file),
                        testmod_kfuncs: externs(&object)?
                            .into_iter()
                            .filter(|e| drivers.testmod_kfuncs.contains(e))
                            .collect(),
                        drop_caps: drivers.dropped_caps(file),
                        lacking_options: lacking.clone(),
                        helpers: helpers.clone(),
                    };
                    all.extend(cases(file, &programs(&object)?, &context));
                    objects.push((name, object));
                }
                Err(error) => uncompiled.push(Subject::uncompiled(file, error)),
            }
        }
        check_differences(&variant.name, &variant.upstream_differences, &all)?;
        let mut subjects = subject::of_selftests(all, &variant.upstream_differences);
        subjects.extend(uncompiled);
        Ok(subjects)
    };
    subjects.extend(selftests().map_err(BuildError::Selftests)?);

    let plan = Plan {
        scenario: inputs.scenario.name.clone(),
        variant: variant.name.clone(),
        probe_only: false,
        info_fields: variant.prog_info.clone(),
        provoke: inputs.scenario.provoke.clone(),
        programs: subjects.iter().filter_map(|s| s.plan(variant.expectations().0)).collect(),
    };
    let run_dir = kernel.objdir.join("run");
    let initrd = run_dir.join("runner.cpio");
    let probe =
        Plan { scenario: "kvm-probe".into(), probe_only: true, programs: vec![], provoke: vec![], ..plan.clone() };
    let (payload, probe_payload) = write_runner_image(&initrd, inputs.runner)
        .and_then(|()| Ok((write_payload(&run_dir, &objects, &plan)?, write_payload(&run_dir, &[], &probe)?)))
        .map_err(BuildError::Image)?;
    Ok(GuestImage {
        variant: variant.clone(),
        kernel: kernel.clone(),
        initrd,
        payload: Arc::new(payload),
        probe_payload: Arc::new(probe_payload),
        subjects,
        in_use: Some(Arc::new(in_use)),
    })
}

/// The initramfs: the runner as /init, and the nodes it needs before it can mount anything.
fn write_runner_image(path: &Path, runner: &Path) -> anyhow::Result<()> {
    let mut image = Initramfs::new();
    image.add_file("init", 0o755, std::fs::read(runner)?);
    image.add_char_dev("dev/console", 0o600, 5, 1);
    for dir in ["proc", "sys"] {
        image.add_dir(dir, 0o755);
    }
    Ok(image.write(path)?)
}

/// The run's payload, the BPF objects (guest file name, host path) and the plan, in a file of
/// its own in `dir` (named `.tmp*`: one a killed run leaves is removed with the stale saved-boot
/// files).
fn write_payload(dir: &Path, objects: &[(String, PathBuf)], plan: &Plan) -> anyhow::Result<TempPath> {
    let mut payload = Initramfs::new();
    let bpf_dir = BPF_DIR.trim_start_matches('/');
    payload.add_dir(bpf_dir, 0o755);
    for (name, obj) in objects {
        payload.add_file(&format!("{bpf_dir}/{name}"), 0o644, std::fs::read(obj)?);
    }
    payload.add_file(PLAN_PATH.trim_start_matches('/'), 0o644, serde_json::to_vec_pretty(plan)?);
    let mut file = tempfile::Builder::new().suffix(".payload.cpio").tempfile_in(dir)?;
    std::io::Write::write_all(&mut file, &payload.to_bytes())?;
    Ok(file.into_temp_path())
}
