//! Faults provoked for real, end to end: a guest whose run hangs, a variant whose patch does not
//! apply, a kernel that panics, a build killed half-way and two runs sharing one cache. Each
//! test says what the harness must do about it. They use the baseline kernel (built once, or
//! reused from the cache) and the harness binary itself, so exit codes and messages are real.

use harness::events::{Collect, Terminal};
use harness::host::cache::Cache;
use harness::host::repo;
use harness::results::schema::RunResult;
use harness::vm::qemu::{self as vm, BootSpec, GuestFailure};
use harness::vm::qemu::{Accel, Mode};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

const HARNESS: &str = env!("CARGO_BIN_EXE_harness");

/// A variants directory with the real baseline and `broken`, whose one patch does not apply.
fn variants_with_a_broken_one(dir: &Path) -> PathBuf {
    let variants = dir.join("variants");
    std::fs::create_dir_all(variants.join("baseline")).unwrap();
    std::fs::copy(
        repo::root().join("kernel-config/variants/baseline/variant.yaml"),
        variants.join("baseline/variant.yaml"),
    )
    .unwrap();
    std::fs::create_dir_all(variants.join("broken")).unwrap();
    std::fs::write(variants.join("broken/variant.yaml"), "description: a series that does not apply\n").unwrap();
    std::fs::write(
        variants.join("broken/0001-bpf-Change-a-line-that-is-not-there.patch"),
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n\
         Subject: [PATCH] bpf: Change a line that is not there\n\n\
         ---\n\
         diff --git a/kernel/bpf/syscall.c b/kernel/bpf/syscall.c\n\
         --- a/kernel/bpf/syscall.c\n\
         +++ b/kernel/bpf/syscall.c\n\
         @@ -1,3 +1,3 @@\n\
         -this line is not in syscall.c\n\
         +nor is this one\n\
         \x20context that is not there either\n\
         \x20nor this\n",
    )
    .unwrap();
    variants
}

fn stored_run(results: &Path, scenario: &str) -> RunResult {
    let dir = results.join(scenario);
    let file = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap_or_else(|| panic!("no stored run in {}", dir.display()));
    serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()
}

/// QEMU processes whose command line mentions `path` (their kernel, initrd or records file).
fn qemus_using(path: &Path) -> Vec<String> {
    let needle = path.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(vm::QEMU) && c.contains(&needle))
        .collect()
}

/// A guest whose run never ends (a program looping for days) must be stopped at the run timeout,
/// with its console kept; a variant whose patch does not apply must be recorded as not built;
/// neither may stop the other variants or the next scenario; the exit code says it failed.
#[test]
fn e2e_hung_guest_and_unbuildable_variant_are_recorded_and_the_rest_still_runs() {
    let dir = tempfile::tempdir().unwrap();
    let variants = variants_with_a_broken_one(dir.path());
    let results = dir.path().join("results");
    let hang = dir.path().join("hang.yaml");
    std::fs::write(
        &hang,
        "name: fault-hang\n\
         description: a program that is not there, one that runs for days, and a variant that cannot be built\n\
         variants: [baseline, broken]\n\
         timeouts: { boot: 300, run: 5 }\n\
         programs:\n\
         \x20 - { object: faults, program: not_in_the_object, type: syscall, samples: 1 }\n\
         \x20 - { object: faults, program: spin_syscall, type: syscall, samples: 1 }\n",
    )
    .unwrap();
    let ok = dir.path().join("ok.yaml");
    std::fs::write(
        &ok,
        "name: fault-after\n\
         description: runs after a hung scenario\n\
         variants: [baseline]\n\
         programs:\n  - { object: empty, program: empty_syscall, type: syscall, samples: 1, expect: { retval: 0 } }\n",
    )
    .unwrap();

    let out = Command::new(HARNESS)
        .args(["scenario", hang.to_str().unwrap(), ok.to_str().unwrap(), "--accel", "tcg", "--variants-dir"])
        .arg(&variants)
        .arg("--results-dir")
        .arg(&results)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{}\n{stderr}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(out.status.code(), Some(2), "a hung guest and a failed build: broken, not merely failed");
    assert!(
        stderr.contains("scenario fault-hang, variant baseline: guest failed: the runner did not finish within 5 s"),
        "the error names scenario, variant and why"
    );
    assert!(stderr.contains("scenario fault-hang, variant broken: not run: the build failed"));
    assert!(
        stderr.contains("0001-bpf-Change-a-line-that-is-not-there.patch") && stderr.contains("kernel/bpf/syscall.c")
    );
    assert!(stderr.contains("scenario fault-hang: INCOMPLETE"));
    assert!(qemus_using(&results).is_empty(), "QEMU left running: {:?}", qemus_using(&results));

    let hung = stored_run(&results, "fault-hang");
    assert!(!hung.complete(), "the partial run is stored and marked incomplete");
    let variant = |name: &str| hung.variant(name).unwrap().clone();
    let baseline = variant("baseline");
    assert!(!baseline.complete);
    assert!(matches!(baseline.failure, Some(GuestFailure::RunTimeout { seconds: 5, .. })), "{:?}", baseline.failure);
    let console = std::fs::read_to_string(&baseline.console_log).expect("console kept");
    assert!(console.contains("plan fault-hang/baseline"), "{console}");
    // What came before the hang is kept: the verdict on the program that then hung.
    let verdicts: Vec<_> = baseline.programs.iter().map(|p| (p.id.as_str(), p.verdict.is_some())).collect();
    assert!(verdicts.contains(&("spin_syscall", true)), "{verdicts:?}");
    // A program the object does not have fails alone, naming what the object has.
    let missing = baseline.program("not_in_the_object").unwrap();
    let why: Vec<&str> = missing.checks.iter().filter(|c| !c.ok).map(|c| c.detail.as_str()).collect();
    assert!(why.iter().any(|d| d.contains("no program \"not_in_the_object\" in faults.bpf.o")), "{why:?}");
    let broken = variant("broken");
    assert!(matches!(&broken.failure, Some(GuestFailure::NotRun { stage, .. }) if stage == "build"));
    assert_eq!(broken.boots, 0);

    let after = stored_run(&results, "fault-after");
    assert!(after.complete() && after.passed(), "the next scenario still ran: {:?}", after.variants[0].failure);
}

/// The smallest static x86-64 ELF executable: one PT_LOAD segment whose code is `jmp .`, an
/// init that runs and never says anything.
fn spinning_init() -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    const CODE_AT: u64 = 64 + 56;
    let code = [0xeb, 0xfe]; // jmp .
    let size = CODE_AT + code.len() as u64;
    let mut elf = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    elf.extend(2u16.to_le_bytes()); // ET_EXEC
    elf.extend(0x3eu16.to_le_bytes()); // EM_X86_64
    elf.extend(1u32.to_le_bytes());
    elf.extend((BASE + CODE_AT).to_le_bytes()); // entry
    elf.extend(64u64.to_le_bytes()); // program headers right after this header
    elf.extend(0u64.to_le_bytes()); // no section headers
    elf.extend(0u32.to_le_bytes());
    for half in [64u16, 56, 1, 64, 0, 0] {
        elf.extend(half.to_le_bytes()); // ehsize, phentsize, phnum, shentsize, shnum, shstrndx
    }
    elf.extend(1u32.to_le_bytes()); // PT_LOAD
    elf.extend(5u32.to_le_bytes()); // R+X
    for word in [0, BASE, BASE, size, size, 0x1000] {
        elf.extend(word.to_le_bytes()); // offset, vaddr, paddr, filesz, memsz, align
    }
    elf.extend(code);
    elf
}

/// Two guests that never run the plan, on the real baseline kernel: one whose kernel panics
/// (an initramfs with no init at all) and one whose init runs but never reaches the runner
/// (it spins). The panic ends QEMU at once (`panic=-1 -no-reboot`) and is quoted from the
/// console; the silent guest is stopped at the boot timeout; both consoles are kept.
#[test]
fn e2e_kernel_panic_and_silent_guest_stop_qemu_and_keep_the_console() {
    let cache = Cache::resolve(None).unwrap();
    let source = harness::kernel::source::prepare(&Collect::default(), &cache, None).unwrap();
    let baseline =
        harness::kernel::variant::Variant::load(&repo::root().join("kernel-config/variants/baseline")).unwrap();
    let kernel = harness::kernel::build::build(&Terminal, &cache, &source, &baseline, &repo::base_fragment(), None)
        .unwrap()
        .kernel;
    let dir = tempfile::tempdir().unwrap();
    let boot = |name: &str, init: Option<Vec<u8>>, boot_timeout: u64| {
        let initrd = dir.path().join(format!("{name}.cpio"));
        let mut image = harness::guest::initramfs::Initramfs::new();
        image.add_char_dev("dev/console", 0o600, 5, 1);
        if let Some(init) = init {
            image.add_file("init", 0o755, init);
        }
        image.write(&initrd).unwrap();
        vm::boot(&BootSpec {
            accel: Accel::Tcg,
            mode: Mode::Wallclock,
            kernel: kernel.boot_image.clone(),
            initrd,
            payload: None,
            workdir: dir.path().join(name),
            boot_timeout: Duration::from_secs(boot_timeout),
            run_timeout: Duration::from_secs(boot_timeout),
            restore: false,
        })
        .unwrap()
    };

    let panicked = boot("no-init", None, 300);
    match &panicked.failure {
        Some(GuestFailure::Panic { excerpt }) => assert!(excerpt.contains("No working init found"), "{excerpt}"),
        other => panic!("expected a panic, got {other:?}"),
    }
    assert!(panicked.total_seconds < 200.0, "the panic must end the guest, not a timeout");
    assert!(std::fs::read_to_string(&panicked.console_log).unwrap().contains("Kernel panic - not syncing"));

    let silent = boot("spinning-init", Some(spinning_init()), 30);
    match &silent.failure {
        Some(GuestFailure::BootTimeout { seconds: 30, console_tail }) => {
            assert!(console_tail.contains("Run /init as init process"), "{console_tail}")
        }
        other => panic!("expected a boot timeout, got {other:?}"),
    }
    assert!(silent.console_log.is_file());
    assert!(qemus_using(dir.path()).is_empty(), "QEMU left running: {:?}", qemus_using(dir.path()));
}

/// Lines of a child's stderr, as they come.
fn stderr_lines(child: &mut Child) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("    | {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line containing `text`; returns every line seen until then.
fn wait_for(lines: &Receiver<String>, text: &str, within: Duration) -> Vec<String> {
    let deadline = std::time::Instant::now() + within;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) => {
                let found = line.contains(text);
                seen.push(line);
                if found {
                    return seen;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no line containing {text:?} within {within:?}; saw:\n{}", seen.join("\n"))
}

fn signal_group(child: &Child, signal: libc::c_int) {
    // SAFETY: kill(2) on the process group the child leads (it was started with process_group(0)).
    assert_eq!(unsafe { libc::kill(-(child.id() as libc::pid_t), signal) }, 0);
}

fn completed_builds(cache: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for tree in std::fs::read_dir(cache.join("trees")).into_iter().flatten().flatten() {
        for build in std::fs::read_dir(tree.path()).into_iter().flatten().flatten() {
            if build.path().join("build-complete.json").exists() {
                found.push(build.path());
            }
        }
    }
    found
}

/// Two runs on one cache: the second waits for the first, saying for whom. The first is then
/// interrupted (Ctrl-C: SIGINT to its process group, make and compilers included) in the middle
/// of its kernel build: no build is marked complete, and the second run, getting the lock,
/// builds instead of reusing the half-made build. Then it is killed (SIGKILL) too.
#[test]
fn e2e_interrupted_build_is_never_reused_and_concurrent_runs_wait_for_the_lock() {
    // The pristine source comes from the shared cache (extracted once); trees and builds go to
    // a fresh cache on the same file system (trees are hard-linked copies).
    let shared = Cache::resolve(None).unwrap();
    let source = harness::kernel::source::prepare(&Collect::default(), &shared, None).unwrap();
    let cache = tempfile::tempdir_in(shared.root()).unwrap();
    let scenario = cache.path().join("s.yaml");
    std::fs::write(
        &scenario,
        "name: fault-interrupted\ndescription: d\nvariants: [baseline]\n\
         programs:\n  - { object: empty, program: empty_syscall, type: syscall }\n",
    )
    .unwrap();
    let start = || {
        Command::new(HARNESS)
            .args(["scenario", scenario.to_str().unwrap(), "--accel", "tcg", "--kernel-src"])
            .arg(&source.path)
            .arg("--cache-dir")
            .arg(cache.path())
            .arg("--results-dir")
            .arg(cache.path().join("results"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap()
    };

    let mut first = start();
    let first_lines = stderr_lines(&mut first);
    wait_for(&first_lines, "[baseline] building vmlinux", Duration::from_secs(600));
    let mut second = start();
    let second_lines = stderr_lines(&mut second);
    wait_for(&second_lines, &format!(".lock is held by pid {}", first.id()), Duration::from_secs(300));

    std::thread::sleep(Duration::from_secs(5)); // let make get going
    signal_group(&first, libc::SIGINT);
    assert!(!first.wait().unwrap().success());
    assert!(completed_builds(cache.path()).is_empty(), "an interrupted build was marked complete");

    let seen = wait_for(&second_lines, "[baseline] building vmlinux", Duration::from_secs(600));
    assert!(!seen.iter().any(|l| l.contains("reusing kernel build")), "the interrupted build was reused");
    signal_group(&second, libc::SIGKILL);
    second.wait().unwrap();
    assert!(completed_builds(cache.path()).is_empty(), "a killed build was marked complete");
}

/// Under the debug kernel, faults provoked for real through LKDTM: a WARN the scenario expects
/// (allowed, kept), a refcount_t underflow warning and a KASAN use-after-free report (each fails
/// the run, with its excerpt and the console path). CI builds the debug kernel for the baseline
/// alone; `e2e_detectors` proves the other detectors on the same kernel.
#[test]
fn e2e_debug_kernel_reports_warnings_refcount_and_kasan_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("provoke.yaml");
    std::fs::write(
        &scenario,
        "name: fault-provoke\n\
         description: kernel faults provoked through LKDTM\n\
         variants: [baseline]\n\
         provoke: [WARNING, REFCOUNT_DEC_ZERO, READ_AFTER_FREE]\n\
         allow_kernel_messages: [lkdtm_WARNING]\n\
         programs:\n  - { object: empty, program: empty_syscall, type: syscall, samples: 1, expect: { retval: 0 } }\n",
    )
    .unwrap();
    let opts = harness::pipeline::Options {
        debug_kernel: true,
        ..harness::pipeline::Options::icount(dir.path().join("results"))
    };
    let (run, _) = harness::pipeline::run_scenario(&Terminal, &scenario, &opts).expect("scenario runs");
    let table = harness::report::text::render(&run);
    println!("{table}");
    let baseline = &run.variants[0];
    assert!(baseline.complete, "the runner survives a WARN and a KASAN report: {:?}", baseline.failure);
    assert!(baseline.programs.iter().all(|p| p.passed()));
    assert!(!run.passed(), "unexpected kernel warnings fail the run");
    assert_eq!(baseline.allowed_kernel_warnings.len(), 1, "{:#?}", baseline.allowed_kernel_warnings);
    assert!(baseline.allowed_kernel_warnings[0].contains("lkdtm_WARNING"));
    let first_lines: Vec<&str> = baseline.kernel_warnings.iter().map(|w| w.lines().next().unwrap()).collect();
    assert!(first_lines.iter().any(|l| l.contains("refcount_t: decrement hit 0")), "{first_lines:#?}");
    assert!(first_lines.iter().any(|l| l.contains("BUG: KASAN: slab-use-after-free")), "{first_lines:#?}");
    assert!(
        table.contains("KERNEL WARNING: KASAN (console: ")
            && table.contains(&baseline.console_log.display().to_string())
    );
}
