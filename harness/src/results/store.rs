//! Stored runs: `results/<scenario>/<UTC stamp>-<commit>.json`, written atomically and read
//! back. The stamp leads the file name, so name order is time order within a scenario.

use crate::host::fsutil::write_atomic;
use crate::host::repo::short_commit;
use crate::results::schema::{Provenance, RunResult, SCHEMA_VERSION};
use anyhow::Context;
use std::path::{Path, PathBuf};

/// `<UTC stamp>-<commit12>`, the name a run is filed under, from its date (RFC 3339) and commit.
pub fn stamp(date: &str, commit: &str) -> anyhow::Result<String> {
    let parsed = chrono::DateTime::parse_from_rfc3339(date).map_err(|e| anyhow::anyhow!("run date {date:?}: {e}"))?;
    Ok(format!("{}-{}", parsed.with_timezone(&chrono::Utc).format("%Y%m%dT%H%M%SZ"), short_commit(commit)))
}

/// The stamp of a run, from its provenance.
pub fn stamp_of(provenance: &Provenance) -> anyhow::Result<String> {
    stamp(&provenance.date, &provenance.harness_commit)
}

/// Writes `<root>/<scenario>/<stamp>.json`, atomically.
pub fn write(run: &RunResult, root: &Path) -> anyhow::Result<PathBuf> {
    write_as(run, root, &stamp_of(&run.provenance)?)
}

fn write_as(run: &RunResult, root: &Path, stamp: &str) -> anyhow::Result<PathBuf> {
    let path = root.join(&run.scenario.name).join(format!("{stamp}.json"));
    write_atomic(&path, serde_json::to_string_pretty(run)?.as_bytes())?;
    Ok(path)
}

#[derive(Debug, Clone)]
pub struct StoredRun {
    pub path: PathBuf,
    pub run: RunResult,
}

pub fn load(path: &Path) -> anyhow::Result<StoredRun> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let run: RunResult =
        serde_json::from_str(&text).with_context(|| format!("{}: not a stored run", path.display()))?;
    anyhow::ensure!(
        run.schema_version <= SCHEMA_VERSION,
        "{}: schema version {} is newer than this harness reads ({SCHEMA_VERSION}); update the harness",
        path.display(),
        run.schema_version
    );
    Ok(StoredRun { path: path.to_path_buf(), run })
}

/// Every run under `dir`: `*.json` in it and in its subdirectories (one per scenario), oldest
/// first within each scenario, scenarios by name.
pub fn list(dir: &Path) -> anyhow::Result<Vec<StoredRun>> {
    let mut paths = Vec::new();
    collect_json(dir, &mut paths)?;
    for entry in std::fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_json(&path, &mut paths)?;
        }
    }
    let mut runs = paths.iter().map(|p| load(p)).collect::<anyhow::Result<Vec<_>>>()?;
    runs.sort_by(|a, b| {
        (&a.run.scenario.name, file_name(&a.path), &a.path).cmp(&(&b.run.scenario.name, file_name(&b.path), &b.path))
    });
    Ok(runs)
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn collect_json(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))? {
        let path = entry?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

/// A file is one run; a directory gives the newest run of each scenario in it.
pub fn latest(path: &Path) -> anyhow::Result<Vec<StoredRun>> {
    if path.is_file() {
        return Ok(vec![load(path)?]);
    }
    anyhow::ensure!(path.is_dir(), "{}: no such file or directory", path.display());
    let mut newest: Vec<StoredRun> = Vec::new();
    for run in list(path)? {
        match newest.last_mut() {
            // `list` sorts by scenario, oldest first: a later run of the same scenario replaces.
            Some(last) if last.run.scenario.name == run.run.scenario.name => *last = run,
            _ => newest.push(run),
        }
    }
    Ok(newest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, scenario: &str, stamp: &str, run: &RunResult) -> PathBuf {
        let mut run = run.clone();
        run.scenario.name = scenario.into();
        write_as(&run, root, stamp).unwrap()
    }

    #[test]
    fn a_directory_gives_the_newest_run_of_each_scenario() {
        let dir = tempfile::tempdir().unwrap();
        let run = crate::testing::fixture();
        write(dir.path(), "simple", "20260101T000000Z-aaaa", &run);
        let newest = write(dir.path(), "simple", "20260102T000000Z-bbbb", &run);
        let throw = write(dir.path(), "throw", "20251231T000000Z-cccc", &run);
        let latest = latest(dir.path()).unwrap();
        let paths: Vec<&Path> = latest.iter().map(|r| r.path.as_path()).collect();
        assert_eq!(paths, [newest.as_path(), throw.as_path()]);
        // A scenario's own directory works too, and so does a single file.
        assert_eq!(super::latest(&dir.path().join("simple")).unwrap()[0].path, newest);
        assert_eq!(super::latest(&throw).unwrap()[0].path, throw);
        assert_eq!(list(dir.path()).unwrap().len(), 3);
    }

    #[test]
    fn unreadable_and_future_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("x.json");
        std::fs::write(&bad, "{}").unwrap();
        let e = format!("{:#}", load(&bad).unwrap_err());
        assert!(e.contains("x.json: not a stored run"), "{e}");
        let mut run = crate::testing::fixture();
        run.schema_version = SCHEMA_VERSION + 1;
        std::fs::write(&bad, serde_json::to_string(&run).unwrap()).unwrap();
        assert!(format!("{:#}", load(&bad).unwrap_err()).contains("newer than this harness reads"));
        assert!(latest(&dir.path().join("absent")).is_err());
    }
}
