use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use harness::ci::Exit;
use harness::compare::format::Format;
use harness::events::{JsonLines, Sink, Terminal};
use harness::host::{fsutil, prereq, repo};
use harness::pipeline::{self, Options};
use harness::report;
use harness::results::{merge, store};
use harness::vm::accel::AccelChoice;
use harness::vm::qemu::Mode;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Builds patched Linux kernels, boots them in QEMU and compares how BPF reference-release
/// designs behave and what they cost.
#[derive(Parser)]
#[command(name = "harness", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the host prerequisites and what is missing.
    Doctor {
        /// A kernel tree you already have (then Debian's linux-source is not needed).
        #[arg(long)]
        kernel_src: Option<PathBuf>,
    },
    /// Build every variant the scenario names, boot it, run the scenario and store the results.
    #[command(after_help = harness::ci::EXIT_RULE)]
    Scenario {
        /// Scenario files (YAML), e.g. scenarios/simple.yaml, or shipped scenarios by name (loop.yaml,
        /// loop); each runs even if one before it failed.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Accelerator; `auto` proves KVM runs a guest before using it, else TCG.
        #[arg(long, value_enum, default_value = "auto")]
        accel: AccelChoice,
        /// Measurement mode (default: icount under TCG, wallclock under KVM).
        #[arg(long, value_enum)]
        mode: Option<Mode>,
        /// Allow wallclock mode under TCG; results are labelled as emulation timing.
        #[arg(long)]
        allow_emulated_wallclock: bool,
        /// Use this kernel tree instead of Debian's linux-source-6.12 tarball.
        #[arg(long)]
        kernel_src: Option<PathBuf>,
        /// Cache directory (default: $BPF_HARNESS_CACHE, else $XDG_CACHE_HOME/bpf-harness).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
        /// Where results are stored (default: results/ in the repository).
        #[arg(long)]
        results_dir: Option<PathBuf>,
        /// Run only this variant of the scenario's (repeatable).
        #[arg(long = "only", value_name = "VARIANT")]
        only: Vec<String>,
        /// Boots per variant in wallclock mode, interleaved across variants (default 3); icount
        /// boots once, its counts being deterministic.
        #[arg(long)]
        boots: Option<u32>,
        /// Build with kernel-config/debug.config on top (KASAN, lockdep, kmemleak, LKDTM): a
        /// separate, slower kernel for finding bugs, not for timings.
        #[arg(long)]
        debug_kernel: bool,
        /// Boot every run instead of restoring the kernel's saved boot (under TCG the first run
        /// on a kernel boots it and saves it where the runner waits for the host; every later
        /// run on that kernel, whatever its scenario, restores that in a fraction of a second).
        #[arg(long)]
        cold_boot: bool,
        /// Where variants are defined (default: kernel-config/variants in the repository).
        #[arg(long)]
        variants_dir: Option<PathBuf>,
        /// Add your own series as a variant: NAME=PATH, PATH a directory of git format-patch
        /// files (optionally with a variant.yaml) or an mbox (repeatable).
        #[arg(long = "variant", value_name = "NAME=PATH", value_parser = parse_variant)]
        variant: Vec<(String, PathBuf)>,
        /// NAME (a --variant) is a revision of the shipped VARIANT: held to its expectations and
        /// compared with it (else a series is shown as differing from baseline). A series can also
        /// say so in its variant.yaml (`revision_of: VARIANT`).
        #[arg(long = "revision-of", value_name = "NAME=VARIANT", value_parser = parse_revision)]
        revision_of: Vec<(String, String)>,
        /// How progress is reported on standard error: lines for people, or one JSON object per
        /// event for CI logs and tools.
        #[arg(long, value_enum, default_value = "terminal")]
        progress: Progress,
    },
    /// The nightly's jobs: one per variant running every scenario that names it (and the same
    /// under the debug kernel), and the (scenario, variant) shards the results must hold.
    Plan {
        /// Scenario files (default: every scenarios/*.yaml, by name).
        files: Vec<PathBuf>,
        /// Where variants are defined (default: kernel-config/variants in the repository).
        #[arg(long)]
        variants_dir: Option<PathBuf>,
        /// Print the plan as JSON (the workflow's matrix).
        #[arg(long)]
        json: bool,
    },
    /// Whether a night passed: every expectation of the night's runs met, no regression against
    /// the previous night, every planned shard present and complete.
    #[command(after_help = harness::ci::GATE_EXIT_RULE)]
    Gate {
        /// The night's merged runs (a result file or a directory).
        #[arg(long)]
        current: PathBuf,
        /// The previous night's runs; absent or empty on the first night.
        #[arg(long)]
        previous: Option<PathBuf>,
        /// The plan (`plan --json`) whose shards must all be present.
        #[arg(long)]
        plan: Option<PathBuf>,
        /// Append the verdict and the comparison as Markdown here (a CI step summary).
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// Write the correctness outcomes as JUnit XML here.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Write every metric as github-action-benchmark JSON here.
        #[arg(long)]
        benchmark: Option<PathBuf>,
    },
    /// The cache: what it holds (`du`), and removing old kernel builds (`prune`).
    Cache {
        /// Cache directory (default: $BPF_HARNESS_CACHE, else $XDG_CACHE_HOME/bpf-harness).
        #[arg(long, global = true)]
        cache_dir: Option<PathBuf>,
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Print a shell completion script, e.g. `harness completions bash > /etc/bash_completion.d/harness`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `harness man > harness.1 && man ./harness.1`.
    Man,
    /// Compare stored runs and gate on them: exit 1 when a metric rises beyond the scenario's
    /// threshold or a correctness outcome changes, 2 when the runs cannot be read.
    Compare {
        /// The earlier run: a result file, or a directory (the newest run of each scenario in it).
        old: PathBuf,
        /// The later run, likewise.
        new: PathBuf,
        #[arg(long, value_enum, default_value = "terminal")]
        format: Format,
    },
    /// Write one self-contained HTML page with charts of every stored run.
    Report {
        /// Where runs are stored (default: results/ in the repository).
        #[arg(long)]
        results_dir: Option<PathBuf>,
        /// The page to write (default: <results-dir>/report.html).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// One table of the newest stored runs, a column per variant: correctness, normal-path,
    /// stop and load-time cost, and which resource kinds each variant releases when stopped.
    Summary {
        /// Where runs are stored (default: results/ in the repository).
        #[arg(long)]
        results_dir: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "terminal")]
        format: harness::report::summary::Format,
    },
    /// Merge shards (runs of a scenario on some of its variants) into one run per scenario,
    /// stored like any run.
    Merge {
        /// Result files, or directories of them.
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        /// Where the merged runs are stored (default: results/ in the repository).
        #[arg(long)]
        results_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum CacheAction {
    /// Disk usage of each part of the cache (hard-linked files counted once).
    Du,
    /// Remove kernel builds (and trees left without one), keeping the newest of each variant
    /// and those used recently; a build another run holds is left alone.
    Prune {
        /// Builds kept per variant, the most recently used first.
        #[arg(long, default_value_t = 1)]
        keep: usize,
        /// Also keep every build used within this many days.
        #[arg(long)]
        days: Option<u64>,
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `12.3 GiB`, `512 MiB`.
fn human(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        n if n >= 1 << 30 => format!("{:.1} GiB", b / f64::from(1u32 << 30)),
        n if n >= 1 << 20 => format!("{:.0} MiB", b / f64::from(1u32 << 20)),
        _ => format!("{:.0} KiB", b / 1024.0),
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Progress {
    Terminal,
    Json,
}

fn parse_revision(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((name, original)) if !name.is_empty() && !original.is_empty() => Ok((name.into(), original.into())),
        _ => Err(format!("{arg:?}: expected NAME=VARIANT, e.g. mine=exception-unwind")),
    }
}

fn parse_variant(arg: &str) -> Result<(String, PathBuf), String> {
    match arg.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => Ok((name.to_string(), PathBuf::from(path))),
        _ => Err(format!("{arg:?}: expected NAME=PATH, e.g. mine=../my-series/ or mine=series.mbox")),
    }
}

/// Scenario arguments as files: a path, or a bare name of a shipped scenario (`loop.yaml`).
fn resolve_scenarios(args: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    args.iter().map(|a| harness::scenario::resolve(a, &repo::scenarios_dir())).collect()
}

/// The variants defined in the repository: the summary gives each a column, run or not.
fn defined_variants() -> anyhow::Result<Vec<String>> {
    let variants = harness::kernel::variant::Variant::discover(&repo::variants_dir())?;
    Ok(variants.into_iter().map(|v| v.name).collect())
}

fn results_root(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(repo::results_dir)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A gate must tell "regressed" (1) from "could not tell" (2).
    let judges = matches!(cli.command, Command::Compare { .. } | Command::Gate { .. } | Command::Scenario { .. });
    let error_code = if judges { Exit::Broken.code() } else { 1 };
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(error_code)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Doctor { kernel_src } => {
            let (report, ok) = prereq::doctor(kernel_src.is_none());
            print!("{report}");
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Scenario {
            files,
            accel,
            mode,
            allow_emulated_wallclock,
            kernel_src,
            cache_dir,
            results_dir,
            only,
            boots,
            debug_kernel,
            cold_boot,
            variants_dir,
            variant,
            revision_of,
            progress,
        } => {
            let sink: Box<dyn Sink> = match progress {
                Progress::Terminal => Box::new(Terminal),
                Progress::Json => Box::new(JsonLines::new(std::io::stderr())),
            };
            let opts = Options {
                accel,
                mode,
                allow_emulated_wallclock,
                kernel_src,
                cache_dir,
                results_dir: results_root(results_dir),
                only,
                boots,
                debug_kernel,
                variants_dir,
                extra_variants: variant,
                revisions: revision_of,
                cold_boot,
            };
            run_scenarios(sink.as_ref(), &files, &opts)
        }
        Command::Cache { cache_dir, action } => cache(cache_dir, action),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "harness", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan { files, variants_dir, json } => {
            let files = match files.is_empty() {
                true => harness::scenario::shipped(&repo::scenarios_dir())?,
                false => resolve_scenarios(&files)?,
            };
            let variants_dir = variants_dir.unwrap_or_else(repo::variants_dir);
            let plan = harness::ci::plan::plan(&files, &repo::bpf_source_dir(), &variants_dir)?;
            if json {
                println!("{}", serde_json::to_string(&plan)?);
            } else {
                print!("{}", plan.render());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Gate { current, previous, plan, markdown, junit, benchmark } => {
            gate(&current, previous.as_deref(), plan.as_deref(), GateOutputs { markdown, junit, benchmark })
        }
        Command::Compare { old, new, format } => {
            let comparison = harness::compare::compare(&store::latest(&old)?, &store::latest(&new)?);
            print!("{}", harness::compare::format::render(&comparison, format));
            Ok(if comparison.failed() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
        }
        Command::Report { results_dir: dir, out } => {
            let dir = results_root(dir);
            let out = out.unwrap_or_else(|| dir.join("report.html"));
            let runs = store::list(&dir)?;
            // The page opens with the summary of the newest run of each scenario.
            let summary = report::summary::html(&report::summary::build(&runs, &defined_variants()?));
            fsutil::write_atomic(&out, report::html::render(&runs, Some(&summary)).as_bytes())?;
            println!("report: {} ({} runs)", out.display(), runs.len());
            Ok(ExitCode::SUCCESS)
        }
        Command::Summary { results_dir: dir, format } => {
            let runs = store::latest(&results_root(dir))?;
            let summary = report::summary::build(&runs, &defined_variants()?);
            print!("{}", report::summary::render(&summary, format));
            Ok(ExitCode::SUCCESS)
        }
        Command::Merge { shards, results_dir: dir } => {
            let mut runs = Vec::new();
            for path in &shards {
                runs.extend(if path.is_dir() { store::list(path)? } else { vec![store::load(path)?] });
            }
            let dir = results_root(dir);
            for run in merge::merge(&runs)? {
                let path = store::write(&run, &dir)?;
                let names: Vec<&str> = run.variants.iter().map(|v| v.name.as_str()).collect();
                println!("merged {} ({}): {}", run.scenario.name, names.join(", "), path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs each scenario (a file or a shipped name); the worst exit status of them all.
fn run_scenarios(sink: &dyn Sink, files: &[PathBuf], opts: &Options) -> anyhow::Result<ExitCode> {
    let mut exit = Exit::Passed;
    for file in files {
        let scenario = harness::scenario::resolve(file, &repo::scenarios_dir());
        match scenario.and_then(|path| pipeline::run_scenario(sink, &path, opts)) {
            Ok((result, path)) => {
                println!("{}", report::text::render(&result));
                println!("results: {}", path.display());
                if !result.complete() {
                    eprintln!(
                        "error: scenario {}: INCOMPLETE: not every variant ran to the end (see above); partial results stored in {}",
                        result.scenario.name,
                        path.display()
                    );
                }
                exit = exit.and(Exit::of_run(&result));
            }
            Err(err) if files.len() > 1 => {
                eprintln!("error: {}: {err:#}", file.display());
                exit = Exit::Broken;
            }
            Err(err) => return Err(err),
        }
    }
    Ok(ExitCode::from(exit.code()))
}

fn cache(cache_dir: Option<PathBuf>, action: CacheAction) -> anyhow::Result<ExitCode> {
    let cache = harness::host::cache::Cache::resolve(cache_dir.as_deref())?;
    match action {
        CacheAction::Du => {
            let (parts, total) = cache.du()?;
            for (name, bytes) in parts {
                println!("{:>10}  {name}", human(bytes));
            }
            println!("{:>10}  total ({})", human(total), cache.root().display());
        }
        CacheAction::Prune { keep, days, dry_run } => {
            let policy = harness::kernel::prune::Policy {
                keep,
                used_within: days.map(|d| std::time::Duration::from_secs(d * 86_400)),
                dry_run,
            };
            let pruned = harness::kernel::prune::prune(&cache, &policy)?;
            let verb = if dry_run { "would remove" } else { "removed" };
            for r in &pruned.removed {
                println!("{verb} {} ({})", r.path.display(), human(r.bytes));
            }
            for path in &pruned.held {
                println!("kept {} (in use by another run)", path.display());
            }
            let total: u64 = pruned.removed.iter().map(|r| r.bytes).sum();
            println!("{verb} {} builds, {}", pruned.removed.len(), human(total));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where `gate` writes its verdict besides the terminal.
struct GateOutputs {
    markdown: Option<PathBuf>,
    junit: Option<PathBuf>,
    benchmark: Option<PathBuf>,
}

fn gate(current: &Path, previous: Option<&Path>, plan: Option<&Path>, out: GateOutputs) -> anyhow::Result<ExitCode> {
    let current = store::latest(current)?;
    let previous = match previous {
        Some(dir) if dir.exists() => store::latest(dir)?,
        _ => Vec::new(),
    };
    let plan: Option<harness::ci::plan::Plan> = plan
        .map(|p| -> anyhow::Result<_> {
            let text = std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: not a plan: {e}", p.display()))
        })
        .transpose()?;
    let gate = harness::ci::gate::gate(&previous, &current, plan.as_ref());
    let render = |format| harness::compare::format::render(&gate.comparison, format);
    if let Some(path) = out.markdown {
        let mut out = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        write!(out, "{}\n{}", gate.render(), render(Format::Markdown))?;
    }
    if let Some(path) = out.junit {
        fsutil::write_atomic(&path, render(Format::Junit).as_bytes())?;
    }
    if let Some(path) = out.benchmark {
        fsutil::write_atomic(&path, render(Format::BenchmarkJson).as_bytes())?;
    }
    print!("{}{}", render(Format::Terminal), gate.render());
    Ok(ExitCode::from(gate.exit().code()))
}
