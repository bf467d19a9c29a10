//! Host prerequisites: what the pipeline runs on the host, how to tell it is there, and which
//! Debian package provides it.

use crate::events::Sink;
use crate::host::command::run_logged;
use std::path::{Path, PathBuf};

/// How to tell that a requirement is met.
#[derive(Debug, Clone, Copy)]
enum Probe {
    /// An executable on PATH.
    Command(&'static str),
    /// A file (a header or a static library) that must exist.
    File(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub struct Requirement {
    probe: Probe,
    /// The Debian package that provides it.
    pub package: &'static str,
    /// Why the pipeline needs it.
    pub why: &'static str,
    /// Only needed when the kernel source comes from Debian's package (no `--kernel-src`).
    only_for_packaged_source: bool,
}

const fn cmd(name: &'static str, package: &'static str, why: &'static str) -> Requirement {
    Requirement { probe: Probe::Command(name), package, why, only_for_packaged_source: false }
}

const fn file(path: &'static str, package: &'static str, why: &'static str) -> Requirement {
    Requirement { probe: Probe::File(path), package, why, only_for_packaged_source: false }
}

pub const DEBIAN_KERNEL_TARBALL: &str = "/usr/src/linux-source-6.12.tar.xz";
/// The release the shipped series are written for, and the version of Debian's package that
/// holds it (the security archive has moved on to 6.12.118).
pub const SERIES_BASE: &str = "6.12.117";
pub const SERIES_BASE_PACKAGE: &str = "6.12.117-1~deb12u1";
const SOURCE_PACKAGE: &str = "linux-source-6.12";

/// What apt-get is asked for: the source package pinned to the series' base release.
fn apt_spec(package: &str) -> String {
    match package {
        SOURCE_PACKAGE => format!("{package}={SERIES_BASE_PACKAGE}"),
        _ => package.to_string(),
    }
}

const REQUIREMENTS: &[Requirement] = &[
    cmd("qemu-system-x86_64", "qemu-system-x86", "boots each kernel"),
    cmd("clang-19", "clang-19", "compiles the BPF programs (older clangs lack the BTF features used)"),
    Requirement {
        probe: Probe::File(DEBIAN_KERNEL_TARBALL),
        package: SOURCE_PACKAGE,
        why: "Linux 6.12.117 source (unless --kernel-src is given)",
        only_for_packaged_source: true,
    },
    cmd("make", "make", "kernel build"),
    cmd("gcc", "gcc", "kernel build"),
    cmd("flex", "flex", "kernel build (kconfig, dtc)"),
    cmd("bison", "bison", "kernel build (kconfig, dtc)"),
    cmd("bc", "bc", "kernel build (timeconst)"),
    cmd("pahole", "dwarves", "generates the kernel's BTF (CONFIG_DEBUG_INFO_BTF)"),
    cmd("objcopy", "binutils", "strips debug info from the boot image"),
    cmd("python3", "python3", "generates libbpf's helper definitions from the kernel tree"),
    cmd("bpftool", "bpftool", "dumps vmlinux.h from each variant's BTF"),
    cmd("pkg-config", "pkg-config", "libbpf-sys build of the guest runner"),
    file("/usr/include/libelf.h", "libelf-dev", "kernel build (objtool, resolve_btfids) and the static guest runner"),
    file("/usr/include/openssl/ssl.h", "libssl-dev", "kernel build (certificate tooling)"),
    file("/usr/lib/x86_64-linux-gnu/libz.a", "zlib1g-dev", "static link of the guest runner"),
    file("/usr/lib/x86_64-linux-gnu/libzstd.a", "libzstd-dev", "static link of the guest runner (libelf uses zstd)"),
    cmd("ccache", "ccache", "shares compiled files between the variants' kernel builds"),
    cmd("git", "git", "applies series (git apply, mailsplit, mailinfo), stamps results with the commit"),
];

/// ccache is used when present (a kernel tree given with --kernel-src needs no packages).
pub fn has_ccache() -> bool {
    on_path("ccache")
}

/// The oldest Rust the workspace builds with (`rust-version` in Cargo.toml).
pub const MIN_RUST: (u32, u32) = (1, 89);

/// `rustc 1.95.0 (f2d3ce0bd 2026-03-21)` -> (1, 95).
fn rust_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split_whitespace().nth(1)?.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// The Rust toolchain: rustc new enough for the workspace (it builds the guest runner too), and
/// cargo-nextest for the test command. Not Debian packages: Debian 12's cargo is too old.
fn toolchain_report() -> (String, bool) {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let version = xshell::Shell::new().ok().and_then(|sh| xshell::cmd!(sh, "{rustc} --version").read().ok());
    let (min_major, min_minor) = MIN_RUST;
    let rust_ok = version.as_deref().and_then(rust_version).is_some_and(|v| v >= MIN_RUST);
    let found = version.unwrap_or_else(|| "not found".into());
    let mut report = format!(
        "{} {:<40} {:<18} {found}; the workspace needs {min_major}.{min_minor} or later (rustup: https://rustup.rs)\n",
        if rust_ok { "ok     " } else { "MISSING" },
        "rustc",
        "rustup"
    );
    let nextest = on_path("cargo-nextest");
    report.push_str(&format!(
        "{} {:<40} {:<18} the test command (cargo install --locked cargo-nextest)\n",
        if nextest { "ok     " } else { "absent " },
        "cargo-nextest",
        "cargo"
    ));
    (report, rust_ok)
}

fn on_path(name: &str) -> bool {
    find_command(name).is_some()
}

/// Where `name` is: on `PATH`, else in the system directories Debian installs administration
/// tools into (bpftool is `/usr/sbin/bpftool`), which an ordinary user's `PATH` leaves out.
pub fn find_command(name: &str) -> Option<PathBuf> {
    const SYSTEM_DIRS: [&str; 3] = ["/usr/local/sbin", "/usr/sbin", "/sbin"];
    find_in(name, &std::env::var_os("PATH").unwrap_or_default(), &SYSTEM_DIRS.map(Path::new))
}

fn find_in(name: &str, path: &std::ffi::OsStr, system_dirs: &[&Path]) -> Option<PathBuf> {
    std::env::split_paths(path)
        .chain(system_dirs.iter().map(|dir| dir.to_path_buf()))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// bpftool's path: see [`find_command`].
pub fn bpftool() -> anyhow::Result<PathBuf> {
    find_command("bpftool").ok_or_else(|| anyhow::anyhow!("bpftool is not installed (package bpftool)"))
}

impl Requirement {
    pub fn what(&self) -> &'static str {
        match self.probe {
            Probe::Command(name) | Probe::File(name) => name,
        }
    }

    fn present(&self) -> bool {
        match self.probe {
            Probe::Command(name) => on_path(name),
            Probe::File(path) => Path::new(path).exists(),
        }
    }
}

/// The requirements for this run, each with whether it is met.
pub fn check(packaged_source: bool) -> Vec<(Requirement, bool)> {
    REQUIREMENTS.iter().filter(|r| packaged_source || !r.only_for_packaged_source).map(|r| (*r, r.present())).collect()
}

/// The Debian packages that provide the missing requirements, deduplicated, in table order.
pub fn missing_packages(status: &[(Requirement, bool)]) -> Vec<&'static str> {
    let mut packages: Vec<&'static str> = Vec::new();
    for (req, present) in status {
        if !present && !packages.contains(&req.package) {
            packages.push(req.package);
        }
    }
    packages
}

pub fn install_command(packages: &[&str]) -> String {
    let specs: Vec<String> = packages.iter().map(|p| apt_spec(p)).collect();
    format!("apt-get update && apt-get install -y --no-install-recommends --allow-downgrades {}", specs.join(" "))
}

/// Makes sure every requirement is met: as root on Debian, installs what is missing (saying what
/// and why); otherwise prints the exact command and fails.
pub fn ensure(sink: &dyn Sink, packaged_source: bool) -> anyhow::Result<()> {
    let status = check(packaged_source);
    let packages = missing_packages(&status);
    if packages.is_empty() {
        return Ok(());
    }
    let mut missing = String::from("missing host prerequisites:");
    for (req, present) in &status {
        if !present {
            missing.push_str(&format!("\n  {:<40} (package {}): {}", req.what(), req.package, req.why));
        }
    }
    sink.phase("host", &missing);
    let is_root = unsafe { libc::geteuid() } == 0;
    let is_debian = Path::new("/etc/debian_version").exists();
    if !(is_root && is_debian) {
        anyhow::bail!("install them first (as root):\n  {}\nthen run this command again", install_command(&packages));
    }
    sink.phase("host", &format!("installing with apt-get: {}", packages.join(" ")));
    let log = std::env::temp_dir().join("bpf-harness-apt-get.log");
    let apt = |args: &[&str]| {
        let mut cmd = std::process::Command::new("apt-get");
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    run_logged(sink, "host", "apt-get update", &mut apt(&["update", "-q"]), &log)?;
    let mut install = apt(&["install", "-y", "-q", "--no-install-recommends", "--allow-downgrades"]);
    install.args(packages.iter().map(|p| apt_spec(p)));
    run_logged(sink, "host", "apt-get install", &mut install, &log)?;
    let still_missing = missing_packages(&check(packaged_source));
    anyhow::ensure!(
        still_missing.is_empty(),
        "apt-get finished but these are still missing: {}",
        still_missing.join(" ")
    );
    Ok(())
}

/// The `doctor` report: every requirement, met or not, and whether all are met.
pub fn doctor(packaged_source: bool) -> (String, bool) {
    let status = check(packaged_source);
    let mut report = String::new();
    for (req, present) in &status {
        let mark = if *present { "ok     " } else { "MISSING" };
        report.push_str(&format!("{mark} {:<40} {:<18} {}\n", req.what(), req.package, req.why));
    }
    let (toolchain, rust_ok) = toolchain_report();
    report.push_str(&toolchain);
    let packages = missing_packages(&status);
    if packages.is_empty() && rust_ok {
        report.push_str("\nall prerequisites are present\n");
    }
    if !packages.is_empty() {
        report.push_str(&format!("\nto install what is missing:\n  {}\n", install_command(&packages)));
    }
    (report, packages.is_empty() && rust_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_found_on_path_first_then_in_the_system_directories() {
        let (on_path, sbin) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::write(sbin.path().join("bpftool"), "").unwrap();
        let path = on_path.path().as_os_str();
        assert_eq!(find_in("bpftool", path, &[sbin.path()]), Some(sbin.path().join("bpftool")));
        std::fs::write(on_path.path().join("bpftool"), "").unwrap();
        assert_eq!(find_in("bpftool", path, &[sbin.path()]), Some(on_path.path().join("bpftool")));
        assert_eq!(find_in("absent", path, &[sbin.path()]), None);
    }

    #[test]
    fn rust_versions_are_read_from_rustc() {
        assert_eq!(rust_version("rustc 1.95.0 (f2d3ce0bd 2026-03-21)"), Some((1, 95)));
        assert_eq!(rust_version("rustc 1.63.0"), Some((1, 63)));
        assert!(rust_version("rustc 1.63.0").unwrap() < MIN_RUST, "Debian 12's rustc is too old");
        assert_eq!(rust_version("not rustc"), None);
        let (report, ok) = toolchain_report();
        assert!(ok, "the toolchain running this test is new enough: {report}");
        let (doctor, _) = doctor(true);
        for line in ["git ", "ccache ", "rustc ", "cargo-nextest "] {
            assert!(
                doctor.lines().any(|l| l.get(8..).is_some_and(|r| r.starts_with(line))),
                "doctor checks {line}: {doctor}"
            );
        }
    }

    #[test]
    fn missing_packages_are_deduplicated_and_ordered() {
        let status: Vec<_> = REQUIREMENTS.iter().map(|r| (*r, r.package == "make")).collect();
        let packages = missing_packages(&status);
        assert!(!packages.contains(&"make"));
        assert_eq!(packages[0], "qemu-system-x86");
        let unique: std::collections::BTreeSet<_> = packages.iter().collect();
        assert_eq!(unique.len(), packages.len());
    }

    #[test]
    fn the_source_package_is_installed_at_the_series_base_release() {
        let line = install_command(&["qemu-system-x86", SOURCE_PACKAGE]);
        assert!(line.ends_with("qemu-system-x86 linux-source-6.12=6.12.117-1~deb12u1"), "{line}");
    }

    #[test]
    fn source_package_is_only_required_without_a_user_tree() {
        let named = |v: &[(Requirement, bool)]| v.iter().any(|(r, _)| r.package == "linux-source-6.12");
        assert!(named(&check(true)));
        assert!(!named(&check(false)));
    }
}
