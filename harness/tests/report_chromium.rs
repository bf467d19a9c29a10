//! Renders `harness report`'s page in headless Chromium and checks that the charts are in the
//! DOM Chromium built (not merely in the text we wrote): side by side, against held
//! references, and history.

use harness::results::schema::{RunResult, Summary};
use harness::results::store::StoredRun;
use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> Option<PathBuf> {
    let find = || {
        ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
            let out = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().ok()?;
            out.status.success().then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        })
    };
    if let Some(path) = find() {
        return Some(path);
    }
    // As root on Debian, install it (as .ci/run does) rather than skip.
    if unsafe { libc::geteuid() } == 0 && Path::new("/usr/bin/apt-get").exists() {
        eprintln!("chromium is missing: installing it with apt-get (Debian packages chromium, chromium-driver)");
        let _ = Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends", "chromium", "chromium-driver"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
    }
    find()
}

/// The stored baseline run, and a later run with a patched variant whose programs carry
/// reference counts in their ids.
fn runs() -> Vec<StoredRun> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/simple-baseline.json"))
            .unwrap();
    let old: RunResult = serde_json::from_str(&text).unwrap();
    let mut new = old.clone();
    new.provenance.date = "2026-11-22T00:00:00+00:00".into();
    let mut patched = new.variants[0].clone();
    patched.name = "exception-unwind".into();
    for (n, p) in patched.programs.iter_mut().enumerate() {
        p.id = format!("throw_refs{}", 1 << n);
        p.samples = vec![300 + 40 * (1 << n); 5];
        p.summary = Summary::of(&p.samples);
    }
    new.variants.push(patched);
    vec![
        StoredRun { path: "results/simple/a.json".into(), run: old },
        StoredRun { path: "results/simple/b.json".into(), run: new },
    ]
}

#[test]
fn report_renders_its_charts_in_headless_chromium() {
    let Some(chromium) = chromium() else {
        eprintln!(
            "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
             SKIPPED: chromium is not installed and could not be installed; the report\n\
             was NOT checked in a browser. Install it: apt-get install chromium chromium-driver\n\
             !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, harness::report::html::render(&runs())).unwrap();
    let out = Command::new(&chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
        .arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    let count = |needle: &str| dom.matches(needle).count();
    assert_eq!(count("<svg"), 1 + 1 + 8, "side by side, one refs series, 8 program histories:\n{dom}");
    assert_eq!(count("class=\"chart side-by-side\""), 1);
    assert_eq!(count("class=\"chart refs\""), 1);
    // Two variants in the side-by-side chart: one bar per program of each.
    assert!(count("<rect") >= 8, "{dom}");
    assert!(count("<polyline") >= 9, "{dom}");
    assert!(dom.contains("exception-unwind") && dom.contains("held references"));
}
