//! Bad input and a hostile host, through the harness binary: each must end in a clear error that
//! names the file, line or thing at fault, and a non-zero exit. None of these needs a kernel.

use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

const HARNESS: &str = env!("CARGO_BIN_EXE_harness");

fn harness(args: &[&str]) -> Command {
    let mut cmd = Command::new(HARNESS);
    cmd.args(args);
    cmd
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A disk that fills up: the kernel refuses writes beyond RLIMIT_FSIZE (EFBIG, with SIGXFSZ
/// ignored), as it refuses them on a full disk (ENOSPC), part-way through a write. The report must
/// fail naming its file, keep the previous report whole and leave no temporary file behind.
#[test]
fn a_write_that_runs_out_of_space_names_the_file_and_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.html");
    std::fs::write(&out, "the previous report").unwrap();
    let no_runs = tempfile::tempdir().unwrap();
    let mut cmd = harness(&["report", "--results-dir"]);
    cmd.arg(no_runs.path()).arg("--out").arg(&out);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit { rlim_cur: 512, rlim_max: 512 };
            match libc::setrlimit(libc::RLIMIT_FSIZE, &limit) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    let result = cmd.output().unwrap();
    let message = stderr(&result);
    assert_eq!(result.status.code(), Some(1), "{message}");
    assert!(message.contains(&format!("writing {}", out.display())) && message.contains("File too large"), "{message}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "the previous report");
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 1, "a temporary file was left behind: {names:?}");
}

/// Missing tools are listed with the package that has them and the command that installs them.
#[test]
fn missing_tools_are_named_with_their_packages() {
    let empty = tempfile::tempdir().unwrap();
    let result = harness(&["doctor"]).env("PATH", empty.path()).output().unwrap();
    let listing = String::from_utf8_lossy(&result.stdout);
    assert_eq!(result.status.code(), Some(1), "{listing}");
    assert!(listing.contains("MISSING") && listing.contains("qemu-system-x86_64"), "{listing}");
    assert!(listing.contains("apt-get install") && listing.contains("qemu-system-x86"), "{listing}");
}

/// Malformed YAML, an unknown key and a missing BPF object, each with file:line:column; a
/// scenario that cannot be read does not keep the next one from being checked.
#[test]
fn scenario_mistakes_are_reported_with_their_position() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let program = "programs:\n  - { object: empty, program: empty_tc, type: tc }\n";
    let malformed = write("malformed.yaml", "name: m\ndescription: [unclosed\n");
    let unknown = write("unknown.yaml", &format!("name: u\ndescription: d\nrepeats: 3\n{program}"));
    let missing =
        write("missing.yaml", "name: o\ndescription: d\nprograms:\n  - { object: not_there, program: p, type: tc }\n");
    let result = harness(&["scenario", &malformed, &unknown, &missing, "--accel", "tcg"]).output().unwrap();
    let message = stderr(&result);
    assert_eq!(result.status.code(), Some(2), "{message}");
    assert!(message.contains(&format!("{malformed}:2:")), "{message}");
    assert!(message.contains(&format!("{unknown}:3:1: unknown field `repeats`")), "{message}");
    assert!(message.contains(&format!("{missing}:4:")) && message.contains("no BPF source"), "{message}");
}

/// A patch in the series that cannot be read (a dangling link: the file it names is gone) stops
/// the run naming it, before anything is built.
#[test]
fn a_missing_patch_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let variant = dir.path().join("variants/gone");
    std::fs::create_dir_all(&variant).unwrap();
    std::fs::write(variant.join("variant.yaml"), "description: its patch was deleted\n").unwrap();
    std::os::unix::fs::symlink(dir.path().join("elsewhere.patch"), variant.join("0001-gone.patch")).unwrap();
    // Only its version is read before the series is: nothing gets as far as a build.
    let tree = dir.path().join("linux");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("Makefile"), "VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 117\nEXTRAVERSION =\n").unwrap();
    let scenario = dir.path().join("s.yaml");
    std::fs::write(
        &scenario,
        "name: s\ndescription: d\nprograms:\n  - { object: empty, program: empty_tc, type: tc }\n",
    )
    .unwrap();
    let result = harness(&["scenario", scenario.to_str().unwrap(), "--accel", "tcg", "--variants-dir"])
        .arg(dir.path().join("variants"))
        .args(["--cache-dir", dir.path().join("cache").to_str().unwrap()])
        .arg("--kernel-src")
        .arg(&tree)
        .arg("--results-dir")
        .arg(dir.path().join("results"))
        .output()
        .unwrap();
    let message = stderr(&result);
    assert_eq!(result.status.code(), Some(2), "{message}");
    assert!(message.contains("variant gone: not run: the build failed"), "{message}");
    assert!(message.contains("0001-gone.patch: cannot read"), "{message}");
}
