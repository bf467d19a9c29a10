//! Stage 2, patch: applies a variant's format-patch series with GNU patch, without fuzz (like
//! `git am`: a hunk whose context moved is a failure, not a guess). Each patch is tried
//! with `--dry-run` first so a failing one leaves the tree as it was, and a failure names the
//! patch file, the kernel file, the hunk and the hunk's text.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One `@@` hunk of a unified diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    /// The `@@ -a,b +c,d @@` line.
    pub header: String,
    /// Header and body, as in the patch.
    pub text: String,
}

/// The hunks a patch makes to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDiff {
    /// Path relative to the tree (`-p1` applied).
    pub path: String,
    pub hunks: Vec<Hunk>,
}

/// `@@ -12,7 +12,8 @@ ...` -> (7, 8); a missing count means 1.
fn hunk_counts(header: &str) -> Option<(usize, usize)> {
    let mut parts = header.strip_prefix("@@ ")?.split(' ');
    let count = |range: &str| -> Option<usize> {
        match range.split_once(',') {
            Some((_, n)) => n.parse().ok(),
            None => range.parse::<usize>().ok().map(|_| 1),
        }
    };
    let old = count(parts.next()?.strip_prefix('-')?)?;
    let new = count(parts.next()?.strip_prefix('+')?)?;
    Some((old, new))
}

fn strip_component(path: &str) -> String {
    let path = path.split('\t').next().unwrap_or(path).trim();
    path.split_once('/').map_or(path, |(_, rest)| rest).to_string()
}

/// Parses the unified diff in a patch file (mail headers and trailers are skipped). Hunk bodies
/// are consumed by their line counts, so a format-patch signature (`-- `) is never taken for one.
pub fn parse_unified_diff(text: &str) -> Vec<FileDiff> {
    let lines: Vec<&str> = text.lines().collect();
    let mut files: Vec<FileDiff> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.starts_with("--- ") && lines.get(i + 1).is_some_and(|l| l.starts_with("+++ ")) {
            let new = lines[i + 1].trim_start_matches("+++ ");
            let old = line.trim_start_matches("--- ");
            let target = if new.starts_with("/dev/null") { old } else { new };
            files.push(FileDiff { path: strip_component(target), hunks: Vec::new() });
            i += 2;
            continue;
        }
        if let (Some(file), Some((mut old, mut new))) = (files.last_mut(), hunk_counts(line)) {
            let mut text = format!("{line}\n");
            i += 1;
            while (old > 0 || new > 0) && i < lines.len() {
                let body = lines[i];
                match body.chars().next() {
                    Some('-') => old = old.saturating_sub(1),
                    Some('+') => new = new.saturating_sub(1),
                    Some('\\') => {}
                    _ => {
                        old = old.saturating_sub(1);
                        new = new.saturating_sub(1);
                    }
                }
                text.push_str(body);
                text.push('\n');
                i += 1;
            }
            file.hunks.push(Hunk { header: line.to_string(), text });
            continue;
        }
        i += 1;
    }
    files
}

#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("patch {}: cannot read: {source}", patch.display())]
    Unreadable { patch: PathBuf, source: std::io::Error },
    #[error("{}", describe_failure(.patch, .file, *.hunk, .hunk_text, .output))]
    HunkFailed { patch: PathBuf, file: String, hunk: usize, hunk_text: String, output: String },
    #[error("patch {} targets {file}, which does not exist in the tree\n(patch said: {})", patch.display(), output.trim())]
    MissingTarget { patch: PathBuf, file: String, output: String },
    #[error("patch {} is already applied to {file} (it applies in reverse)", patch.display())]
    AlreadyApplied { patch: PathBuf, file: String },
    #[error("patch {} does not apply\n(patch said: {})", patch.display(), output.trim())]
    Other { patch: PathBuf, output: String },
}

fn describe_failure(patch: &Path, file: &str, hunk: usize, hunk_text: &str, output: &str) -> String {
    format!(
        "patch {} does not apply: hunk #{hunk} of {file} failed\n{}(patch said: {})",
        patch.display(),
        hunk_text,
        output.trim()
    )
}

impl PatchError {
    fn from_output(patch: &Path, patch_text: &str, output: &str) -> PatchError {
        let mut file = String::new();
        for line in output.lines() {
            if let Some(f) = line.strip_prefix("checking file ").or_else(|| line.strip_prefix("patching file ")) {
                file = f.trim().to_string();
            } else if line.contains("Reversed (or previously applied) patch detected") {
                return PatchError::AlreadyApplied { patch: patch.into(), file };
            } else if line.starts_with("can't find file to patch") || line.contains("No file to patch") {
                let file = missing_target(patch_text, output).unwrap_or_default();
                return PatchError::MissingTarget { patch: patch.into(), file, output: output.into() };
            } else if let Some(rest) = line.strip_prefix("Hunk #") {
                let Some((number, outcome)) = rest.split_once(' ') else { continue };
                if !outcome.starts_with("FAILED") {
                    continue;
                }
                let hunk: usize = number.parse().unwrap_or(0);
                let hunk_text = parse_unified_diff(patch_text)
                    .into_iter()
                    .find(|d| d.path == file)
                    .and_then(|d| d.hunks.get(hunk.wrapping_sub(1)).cloned())
                    .map(|h| h.text)
                    .unwrap_or_default();
                return PatchError::HunkFailed { patch: patch.into(), file, hunk, hunk_text, output: output.into() };
            }
        }
        PatchError::Other { patch: patch.into(), output: output.into() }
    }
}

/// The file patch could not find: the first diff target absent from what patch reported.
fn missing_target(patch_text: &str, output: &str) -> Option<String> {
    parse_unified_diff(patch_text).into_iter().map(|d| d.path).find(|p| !output.contains(&format!("checking file {p}")))
}

fn run_patch(tree: &Path, patch: &Path, dry_run: bool) -> std::io::Result<(bool, String)> {
    let mut cmd = Command::new("patch");
    cmd.current_dir(tree).args(["-p1", "--forward", "--batch", "--fuzz=0", "--no-backup-if-mismatch", "-i"]).arg(patch);
    if dry_run {
        cmd.arg("--dry-run");
    }
    let out = cmd.output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Ok((out.status.success(), text))
}

/// Applies `patches` in order; stops at the first that does not apply, leaving it unapplied.
pub fn apply_series(tree: &Path, patches: &[PathBuf]) -> Result<(), PatchError> {
    for patch in patches {
        let patch = std::fs::canonicalize(patch).unwrap_or_else(|_| patch.clone());
        let text = std::fs::read_to_string(&patch)
            .map_err(|source| PatchError::Unreadable { patch: patch.clone(), source })?;
        let io = |source| PatchError::Unreadable { patch: patch.clone(), source };
        let (ok, output) = run_patch(tree, &patch, true).map_err(io)?;
        if !ok {
            return Err(PatchError::from_output(&patch, &text, &output));
        }
        let (ok, output) = run_patch(tree, &patch, false).map_err(io)?;
        if !ok {
            return Err(PatchError::from_output(&patch, &text, &output));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGINAL: &str = "one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\neleven\ntwelve\n";

    /// A format-patch file with mail headers, a diffstat and a signature, changing lines 2 and 11.
    fn series_patch(second_context: &str) -> String {
        format!(
            "From 0123 Mon Sep 17 00:00:00 2001\nFrom: Dev <d@example.invalid>\nSubject: [PATCH 1/1] demo\n\n\
             Why.\n---\n a.txt | 4 ++--\n 1 file changed\n\n\
             diff --git a/a.txt b/a.txt\nindex 1..2 100644\n--- a/a.txt\n+++ b/a.txt\n\
             @@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n\
             @@ -10,3 +10,3 @@\n {second_context}\n-eleven\n+ELEVEN\n twelve\n-- \n2.39.5\n"
        )
    }

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), ORIGINAL).unwrap();
        dir
    }

    #[test]
    fn parser_reads_files_and_hunks_and_ignores_the_signature() {
        let files = parse_unified_diff(&series_patch("ten"));
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, "a.txt");
        assert_eq!(files[0].hunks.len(), 2);
        assert_eq!(files[0].hunks[1].text, "@@ -10,3 +10,3 @@\n ten\n-eleven\n+ELEVEN\n twelve\n");
        assert_eq!(hunk_counts("@@ -5 +5,2 @@ fn"), Some((1, 2)));
    }

    #[test]
    fn a_good_series_applies() {
        let tree = tree();
        let patch = tree.path().join("0001-demo.patch");
        std::fs::write(&patch, series_patch("ten")).unwrap();
        apply_series(tree.path(), &[patch]).unwrap();
        let text = std::fs::read_to_string(tree.path().join("a.txt")).unwrap();
        assert!(text.contains("TWO") && text.contains("ELEVEN"));
    }

    #[test]
    fn a_failing_hunk_is_named_with_its_text_and_the_tree_is_untouched() {
        let tree = tree();
        let patch = tree.path().join("0001-demo.patch");
        std::fs::write(&patch, series_patch("TEN-NOT-THERE")).unwrap();
        let err = apply_series(tree.path(), std::slice::from_ref(&patch)).unwrap_err();
        match &err {
            PatchError::HunkFailed { file, hunk, hunk_text, .. } => {
                assert_eq!((file.as_str(), *hunk), ("a.txt", 2));
                assert!(hunk_text.contains("TEN-NOT-THERE"));
            }
            other => panic!("unexpected error: {other}"),
        }
        let text = err.to_string();
        assert!(text.contains("0001-demo.patch") && text.contains("hunk #2 of a.txt"), "{text}");
        assert_eq!(std::fs::read_to_string(tree.path().join("a.txt")).unwrap(), ORIGINAL);
    }

    #[test]
    fn missing_patch_missing_target_and_reapplied_patch_are_distinct_errors() {
        let tree = tree();
        let err = apply_series(tree.path(), &[tree.path().join("nope.patch")]).unwrap_err();
        assert!(matches!(err, PatchError::Unreadable { .. }), "{err}");

        let missing = tree.path().join("m.patch");
        std::fs::write(&missing, series_patch("ten").replace("a.txt", "kernel/gone.c")).unwrap();
        let err = apply_series(tree.path(), &[missing]).unwrap_err();
        assert!(matches!(&err, PatchError::MissingTarget { file, .. } if file == "kernel/gone.c"), "{err}");

        let patch = tree.path().join("p.patch");
        std::fs::write(&patch, series_patch("ten")).unwrap();
        apply_series(tree.path(), std::slice::from_ref(&patch)).unwrap();
        let err = apply_series(tree.path(), &[patch]).unwrap_err();
        assert!(matches!(err, PatchError::AlreadyApplied { .. }), "{err}");
    }
}
