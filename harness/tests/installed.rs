//! The binary installed like a tool (`cargo install --path harness`): a copy outside the checkout
//! it was built from works in whichever checkout it is run from, and ships its completions and
//! manual page.

use std::path::Path;
use std::process::Command;

const HARNESS: &str = env!("CARGO_BIN_EXE_harness");

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn an_installed_copy_works_in_the_checkout_it_runs_in() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin/harness");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(HARNESS, &bin).unwrap();
    // Another checkout than the one the binary was built from: one variant, one scenario.
    let checkout = dir.path().join("checkout");
    write(&checkout.join("kernel-config/variants/mine/variant.yaml"), "description: my series\n");
    write(&checkout.join("guest/runner/Cargo.toml"), "");
    write(&checkout.join("guest/bpf/empty.bpf.c"), "");
    write(
        &checkout.join("scenarios/mine.yaml"),
        "name: mine\ndescription: d\nprograms:\n  - { object: empty, program: empty_tc, type: tc }\n",
    );
    let plan = |cwd: &Path, env: Option<&Path>| {
        let mut cmd = Command::new(&bin);
        cmd.arg("plan").current_dir(cwd).env_remove("BPF_HARNESS_REPO");
        if let Some(repo) = env {
            cmd.env("BPF_HARNESS_REPO", repo);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let found = plan(&checkout.join("scenarios"), None);
    assert!(found.starts_with("measure mine: scenarios/mine.yaml\n"), "found above the current directory: {found}");
    let named = plan(dir.path(), Some(&checkout));
    assert_eq!(named, found, "named by BPF_HARNESS_REPO");
}

#[test]
fn completions_and_the_manual_page_come_from_the_cli() {
    let out = Command::new(HARNESS).args(["completions", "bash"]).output().unwrap();
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && script.contains("_harness()") && script.contains("scenario"), "{script}");
    let out = Command::new(HARNESS).arg("man").output().unwrap();
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && page.contains(".TH harness 1") && page.contains("scenario"), "{page}");
}
