//! Patch: applies a variant's patch series to a copy of the kernel tree with `git apply` (renames,
//! binary hunks, mode changes, exact context), and explains a patch that does not apply in the
//! patch's own terms: file, hunk number, hunk text.

use std::path::{Path, PathBuf};

/// Why a patch of a series was not applied. The tree holds every earlier patch of the series and
/// nothing of this one.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("patch {}: cannot read: {error}", .patch.display())]
    Unreadable { patch: PathBuf, error: std::io::Error },
    #[error("cannot run git apply (is git installed?): {0}")]
    Spawn(std::io::Error),
    #[error("patch {} does not apply: hunk #{hunk} of {file} failed\n{text}\n(patch said: {output})", .patch.display())]
    HunkFailed { patch: PathBuf, file: String, hunk: usize, text: String, output: String },
    #[error(
        "patch {} does not apply: it changes {file}, which is not in the tree\n(patch said: {output})",
        .patch.display()
    )]
    MissingFile { patch: PathBuf, file: String, output: String },
    #[error(
        "patch {} does not apply: it creates {file}, which already exists\n(patch said: {output})",
        .patch.display()
    )]
    FileExists { patch: PathBuf, file: String, output: String },
    #[error(
        "patch {} is already applied: {file} has its change already (it applies in reverse)\n(patch said: {output})",
        .patch.display()
    )]
    AlreadyApplied { patch: PathBuf, file: String, output: String },
    #[error("patch {} does not apply\n(patch said: {output})", .patch.display())]
    Rejected { patch: PathBuf, output: String },
}

/// Applies `patches` to `tree` in the given order, stopping at the first one that does not apply.
pub fn apply_series(tree: &Path, patches: &[PathBuf]) -> Result<(), PatchError> {
    patches.iter().try_for_each(|patch| apply(tree, patch))
}

fn apply(tree: &Path, patch: &Path) -> Result<(), PatchError> {
    let unreadable = |error| PatchError::Unreadable { patch: patch.to_path_buf(), error };
    let text = std::fs::read(patch).map_err(unreadable)?;
    // git runs inside the tree, so a path relative to ours would not resolve there.
    let input = std::path::absolute(patch).map_err(unreadable)?;
    let sh = xshell::Shell::new().map_err(|e| PatchError::Spawn(std::io::Error::other(e)))?;
    let tree = tree.canonicalize().map_err(PatchError::Spawn)?;
    sh.change_dir(&tree);
    // The tree is no repository: a repository around the cache must not make git apply
    // relative to its top (it would skip every path outside it and apply nothing), so the
    // search stops at the tree (git ignores a relative ceiling). `diagnose` reads the messages,
    // so they must be the untranslated ones.
    sh.set_var("GIT_CEILING_DIRECTORIES", tree.parent().unwrap_or(&tree));
    sh.set_var("LC_ALL", "C");
    let git_apply = |reverse_check: bool| {
        let check: &[&str] = if reverse_check { &["--reverse", "--check"] } else { &[] };
        xshell::cmd!(sh, "git apply {check...} {input}").ignore_status().output().map_err(std::io::Error::other)
    };
    // git apply is atomic: a patch that does not apply changes nothing. It uses only exact
    // context (at any offset): fuzz would let a hunk land where its context only roughly matches,
    // a silent misapplication in kernel code.
    let out = git_apply(false).map_err(PatchError::Spawn)?;
    if out.status.success() {
        return Ok(());
    }
    let output = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let already_applied = git_apply(true).map_err(PatchError::Spawn)?.status.success();
    Err(diagnose(patch, &String::from_utf8_lossy(&text), output.trim().to_string(), already_applied))
}

/// Turns git apply's messages about a patch that did not apply into the first problem they report.
fn diagnose(patch: &Path, text: &str, output: String, already_applied: bool) -> PatchError {
    let files = parse_unified(text);
    let patch = patch.to_path_buf();
    for line in output.lines() {
        let Some(message) = line.strip_prefix("error: ") else { continue };
        if let Some(at) = message.strip_prefix("patch failed: ") {
            let Some((file, line)) = at.rsplit_once(':') else { continue };
            let file = file.to_string();
            if already_applied {
                return PatchError::AlreadyApplied { patch, file, output };
            }
            // git names the hunk by the line it starts at in the old file, and a renamed file by
            // its old name.
            let diff = files.iter().find(|f| f.path == file || f.old_path == file);
            let hunks = diff.map(|f| f.hunks.as_slice()).unwrap_or_default();
            let found = hunks.iter().position(|h| hunk_start(h) == line.parse().ok());
            let hunk = found.map_or(0, |i| i + 1);
            let text = found.map_or_else(|| "(hunk text not found in the patch)".to_string(), |i| hunks[i].clone());
            return PatchError::HunkFailed { patch, file, hunk, text, output };
        } else if let Some(file) = message.strip_suffix(": No such file or directory") {
            return PatchError::MissingFile { patch, file: file.to_string(), output };
        } else if let Some(file) = message.strip_suffix(": already exists in working directory") {
            return PatchError::FileExists { patch, file: file.to_string(), output };
        }
    }
    PatchError::Rejected { patch, output }
}

/// The old file's first line of a hunk, from its header "@@ -120,7 +120,8 @@".
fn hunk_start(hunk: &str) -> Option<usize> {
    let old = hunk.strip_prefix("@@ -")?.split([',', ' ']).next()?;
    old.parse().ok()
}

/// One file's part of a unified diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDiff {
    /// The path `-p1` works on: the new name (the old one for a deletion), first component
    /// stripped.
    pub path: String,
    /// The old name (the same as `path` unless the file is renamed or created).
    pub old_path: String,
    /// 1-based line of the `---` header in the patch.
    pub line: usize,
    /// Each hunk's text: its `@@` header and its lines, as in the patch.
    pub hunks: Vec<String>,
}

/// Splits a unified diff into files and hunks, skipping what lies outside them (a format-patch
/// mail header, diffstat and signature). Best effort: git apply decides whether a patch is valid,
/// this only finds the text its messages refer to.
pub fn parse_unified(text: &str) -> Vec<FileDiff> {
    let lines: Vec<&str> = text.lines().collect();
    let mut files: Vec<FileDiff> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let header = lines[i].strip_prefix("--- ").zip(lines.get(i + 1).and_then(|l| l.strip_prefix("+++ ")));
        if let Some((old, new)) = header {
            files.push(FileDiff {
                path: target_path(old, new),
                old_path: target_path(old, old),
                line: i + 1,
                hunks: Vec::new(),
            });
            i += 2;
        } else if let (Some(file), Some((mut old, mut new))) = (files.last_mut(), hunk_lengths(lines[i])) {
            let start = i;
            i += 1;
            // The header's line counts end the hunk, not the look of the lines: the format-patch
            // signature "-- " would otherwise pass for a removed line.
            while (old > 0 || new > 0) && i < lines.len() {
                match lines[i].chars().next() {
                    Some('-') => old = old.saturating_sub(1),
                    Some('+') => new = new.saturating_sub(1),
                    Some('\\') => {}
                    // An empty line is a context line whose leading space a mailer stripped.
                    Some(' ') | None => (old, new) = (old.saturating_sub(1), new.saturating_sub(1)),
                    Some(_) => break,
                }
                i += 1;
            }
            if lines.get(i).is_some_and(|l| l.starts_with('\\')) {
                i += 1; // "\ No newline at end of file" after the last line
            }
            file.hunks.push(lines[start..i].join("\n"));
        } else {
            i += 1;
        }
    }
    files
}

/// What `-p1` patches for a `---`/`+++` pair, without the timestamp some diffs append after
/// a tab.
fn target_path(old: &str, new: &str) -> String {
    let [old, new] = [old, new].map(|s| s.split_once('\t').map_or(s, |(name, _)| name));
    let path = if new == "/dev/null" { old } else { new };
    path.split_once('/').map_or(path, |(_, rest)| rest).to_string()
}

/// Old and new line counts of a hunk header "@@ -12,7 +12,8 @@ fn" (a count of 1 may be omitted).
fn hunk_lengths(line: &str) -> Option<(usize, usize)> {
    let (ranges, _) = line.strip_prefix("@@ -")?.split_once(" @@")?;
    let (old, new) = ranges.split_once(" +")?;
    let length = |range: &str| match range.split_once(',') {
        Some((_, length)) => length.parse().ok(),
        None => range.parse::<usize>().ok().map(|_| 1),
    };
    Some((length(old)?, length(new)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "line 1\n" ... "line N\n": long enough for changes far apart to make separate hunks.
    fn numbered(n: usize) -> String {
        (1..=n).map(|i| format!("line {i}\n")).collect()
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn read(root: &Path, rel: &str) -> String {
        std::fs::read_to_string(root.join(rel)).unwrap()
    }

    /// A unified diff of `path` from `old` to `new` with git's a/ and b/ prefixes.
    fn diff(path: &str, old: &str, new: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "old", old);
        write(dir.path(), "new", new);
        let out = std::process::Command::new("diff")
            .args(["-u", "--label", &format!("a/{path}"), "--label", &format!("b/{path}"), "old", "new"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "diff found no difference");
        String::from_utf8(out.stdout).unwrap()
    }

    /// `numbered(30)` with `lines` (1-based) upper-cased.
    fn shout(lines: &[usize]) -> String {
        let mut text: Vec<String> = numbered(30).lines().map(String::from).collect();
        for &n in lines {
            text[n - 1] = text[n - 1].to_uppercase();
        }
        text.iter().map(|l| format!("{l}\n")).collect()
    }

    /// Writes patch files into their own directory (not the tree) and returns their paths.
    fn patches(dir: &Path, contents: &[(&str, String)]) -> Vec<PathBuf> {
        contents
            .iter()
            .map(|(name, text)| {
                write(dir, name, text);
                dir.join(name)
            })
            .collect()
    }

    #[test]
    fn parser_splits_files_and_hunks() {
        let text = "--- a/kernel/a.c\t2024-01-01 00:00:00\n+++ b/kernel/a.c\t2024-01-01 00:00:00\n\
                    @@ -1,2 +1,2 @@ int f(void)\n-old\n+new\n \n\
                    @@ -10 +10,2 @@\n ctx\n+added\n\\ No newline at end of file\n\
                    --- /dev/null\n+++ b/include/new.h\n@@ -0,0 +1 @@\n+#pragma once\n\
                    --- a/gone.c\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n";
        let files = parse_unified(text);
        let summary: Vec<_> = files.iter().map(|f| (f.path.as_str(), f.line, f.hunks.len())).collect();
        assert_eq!(summary, [("kernel/a.c", 1, 2), ("include/new.h", 11, 1), ("gone.c", 15, 1)]);
        assert_eq!(files[0].hunks[0], "@@ -1,2 +1,2 @@ int f(void)\n-old\n+new\n ");
        assert_eq!(files[0].hunks[1], "@@ -10 +10,2 @@\n ctx\n+added\n\\ No newline at end of file");
    }

    #[test]
    fn parser_skips_format_patch_mail_and_signature() {
        let text = format!("{}\n{}-- \n2.39.5\n", format_patch_header(), diff("f.c", "a\n", "b\n"));
        let files = parse_unified(&text);
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].hunks, ["@@ -1 +1 @@\n-a\n+b"]);
    }

    fn format_patch_header() -> &'static str {
        "From 3f1c0e3a9b Mon Sep 17 00:00:00 2001\nFrom: Dev <dev@example.invalid>\n\
         Date: Mon, 1 Jan 2024 00:00:00 +0000\nSubject: [PATCH 1/1] bpf: demo\n\n\
         Why the change is needed.\n\n---\n f.c | 2 +-\n 1 file changed, 1 insertion(+), 1 deletion(-)\n\n\
         diff --git a/f.c b/f.c\nindex 1111111..2222222 100644"
    }

    #[test]
    fn a_series_applies_in_order() {
        let tree = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        write(tree.path(), "kernel/bpf/verifier.c", &numbered(30));
        // The second patch changes what the first one wrote, so only this order applies.
        let series = patches(
            dir.path(),
            &[
                ("0001-a.patch", diff("kernel/bpf/verifier.c", &numbered(30), &shout(&[3]))),
                ("0002-b.patch", diff("kernel/bpf/verifier.c", &shout(&[3]), &shout(&[3, 25]))),
            ],
        );
        apply_series(tree.path(), &series).unwrap();
        assert_eq!(read(tree.path(), "kernel/bpf/verifier.c"), shout(&[3, 25]));
    }

    #[test]
    fn a_format_patch_file_applies() {
        let tree = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        write(tree.path(), "f.c", "a\n");
        let text = format!("{}\n{}-- \n2.39.5\n\n", format_patch_header(), diff("f.c", "a\n", "b\n"));
        apply_series(tree.path(), &patches(dir.path(), &[("0001-bpf-demo.patch", text)])).unwrap();
        assert_eq!(read(tree.path(), "f.c"), "b\n");
    }

    #[test]
    fn a_failing_second_hunk_is_named_with_its_text_and_leaves_the_tree_untouched() {
        let tree = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = "kernel/bpf/verifier.c";
        // The tree's line 25 differs from what the patch removes: hunk 1 fits, hunk 2 cannot.
        let local = numbered(30).replace("line 25\n", "line 25 changed locally\n");
        write(tree.path(), file, &local);
        let series = patches(dir.path(), &[("0002-foo.patch", diff(file, &numbered(30), &shout(&[3, 25])))]);
        let err = apply_series(tree.path(), &series).unwrap_err();
        let PatchError::HunkFailed { file: failed, hunk, text, .. } = &err else { panic!("{err}") };
        assert_eq!((failed.as_str(), *hunk), (file, 2));
        assert!(text.starts_with("@@ -22,7 +22,7 @@\n") && text.contains("\n-line 25\n+LINE 25\n"), "{text}");
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("patch {} does not apply: hunk #2 of {file} failed\n@@", series[0].display()))
        );
        assert!(message.contains("(patch said: "), "{message}");
        assert_eq!(read(tree.path(), file), local);
    }

    #[test]
    fn a_multi_file_patch_names_the_file_that_failed_and_changes_none() {
        let tree = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        write(tree.path(), "a.c", &numbered(30));
        write(tree.path(), "b.c", "something else\n");
        let text = diff("a.c", &numbered(30), &shout(&[3])) + &diff("b.c", &numbered(30), &shout(&[3]));
        let err = apply_series(tree.path(), &patches(dir.path(), &[("0001-x.patch", text)])).unwrap_err();
        assert!(matches!(&err, PatchError::HunkFailed { file, hunk: 1, .. } if file == "b.c"), "{err}");
        assert_eq!(read(tree.path(), "a.c"), numbered(30));
    }

    #[test]
    fn a_renamed_file_whose_change_fails_is_named_with_its_hunk() {
        let tree = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        write(tree.path(), "old.c", &numbered(30).replace("line 25\n", "line 25 changed locally\n"));
        let change = diff("old.c", &numbered(30), &shout(&[25]));
        let renamed = change.replace("--- a/old.c\n+++ b/old.c\n", "--- a/old.c\n+++ b/new.c\n");
        let text =
            format!("diff --git a/old.c b/new.c\nsimilarity index 90%\nrename from old.c\nrename to new.c\n{renamed}");
        let err = apply_series(tree.path(), &patches(dir.path(), &[("0001-mv.patch", text)])).unwrap_err();
        let PatchError::HunkFailed { hunk, text, .. } = &err else { panic!("{err}") };
        assert_eq!(*hunk, 1, "{err}");
        assert!(text.contains("-line 25\n+LINE 25"), "{text}");
    }

    #[test]
    fn missing_patch_missing_target_and_applied_patches_are_told_apart() {
        let tree = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        write(tree.path(), "a.c", "a\n");
        write(tree.path(), "b.c", "a\n");

        let err = apply_series(tree.path(), &[dir.path().join("0001-nope.patch")]).unwrap_err();
        assert!(matches!(err, PatchError::Unreadable { .. }), "{err}");
        assert!(err.to_string().contains("0001-nope.patch"), "{err}");

        let text = diff("a.c", "a\n", "b\n") + &diff("kernel/gone.c", "a\n", "b\n");
        let err = apply_series(tree.path(), &patches(dir.path(), &[("gone.patch", text)])).unwrap_err();
        assert!(matches!(&err, PatchError::MissingFile { file, .. } if file == "kernel/gone.c"), "{err}");

        let series = patches(dir.path(), &[("twice.patch", diff("b.c", "a\n", "b\n"))]);
        apply_series(tree.path(), &series).unwrap();
        let err = apply_series(tree.path(), &series).unwrap_err();
        assert!(matches!(&err, PatchError::AlreadyApplied { file, .. } if file == "b.c"), "{err}");

        let series =
            patches(dir.path(), &[("new.patch", diff("new.c", "", "x\n").replace("--- a/new.c", "--- /dev/null"))]);
        apply_series(tree.path(), &series).unwrap();
        let err = apply_series(tree.path(), &series).unwrap_err();
        assert!(matches!(&err, PatchError::FileExists { file, .. } if file == "new.c"), "{err}");
    }
}
