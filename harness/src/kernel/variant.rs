//! Variants: a variant is a directory under `kernel-config/variants/` with a `variant.yaml`
//! and an ordered git format-patch series.

use crate::host::fsutil::{hash_parts, write_atomic};
use crate::scenario::{ExpectedVerdict, Scenario};
use anyhow::Context;
use bpfh_protocol::{InfoField, MAX_PROG_INFO_BYTES};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VariantFile {
    description: String,
    /// Extra config fragment, relative to the variant directory.
    #[serde(default)]
    config: Option<PathBuf>,
    /// Fields the series appends to `struct bpf_prog_info`, reported with every program's load.
    #[serde(default)]
    prog_info: BTreeMap<String, InfoFieldSpec>,
    /// Where the variant knowingly differs from upstream's selftest expectations.
    #[serde(default)]
    upstream_differences: Vec<Difference>,
    /// The shipped variant this series is a revision of: held to its expectations.
    #[serde(default)]
    revision_of: Option<String>,
}

/// A difference from upstream that a variant declares in its `variant.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Difference {
    /// The selftest file, e.g. `exceptions_fail.c`.
    pub file: String,
    pub program: String,
    /// What the variant's verifier does instead of what upstream expects.
    pub expect: ExpectedVerdict,
    /// Why: shown with the result.
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InfoFieldSpec {
    offset: u32,
    size: u32,
}

#[derive(Debug, Clone)]
pub struct Variant {
    pub name: String,
    pub description: String,
    pub config_fragment: Option<PathBuf>,
    /// `*.patch` files in name order (format-patch numbering gives the series order).
    pub patches: Vec<PathBuf>,
    pub prog_info: Vec<InfoField>,
    pub upstream_differences: Vec<Difference>,
    pub judged_as: JudgedAs,
}

/// Whose expectations a variant is held to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JudgedAs {
    /// One of this project's variants: its own (`expect_on.<name>`, else the default).
    Itself,
    /// A revision of a shipped variant: that variant's expectations, and compared with it.
    RevisionOf(String),
    /// A series that says nothing about itself: where it does not do what baseline is expected to
    /// do, that is shown as a difference from baseline, not as a failure.
    DifferencesFromBaseline,
}

impl Variant {
    /// The variant whose expectations (and sysctls) apply, and whether an unmet one is only a
    /// difference.
    pub fn expectations(&self) -> (&str, bool) {
        match &self.judged_as {
            JudgedAs::Itself => (&self.name, false),
            JudgedAs::RevisionOf(original) => (original, false),
            JudgedAs::DifferencesFromBaseline => ("baseline", true),
        }
    }

    /// The shipped variant it is a revision of, if it is one.
    pub fn revision_of(&self) -> Option<&str> {
        match &self.judged_as {
            JudgedAs::RevisionOf(original) => Some(original),
            _ => None,
        }
    }

    pub fn load(dir: &Path) -> anyhow::Result<Variant> {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{}: not a variant directory", dir.display()))?
            .to_string();
        let manifest = dir.join("variant.yaml");
        let text =
            std::fs::read_to_string(&manifest).with_context(|| format!("{}: cannot read", manifest.display()))?;
        let file: VariantFile =
            serde_saphyr::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", manifest.display()))?;
        let config_fragment = match file.config {
            Some(rel) => {
                let path = dir.join(rel);
                anyhow::ensure!(
                    path.is_file(),
                    "{}: config fragment {} does not exist",
                    manifest.display(),
                    path.display()
                );
                Some(path)
            }
            None => None,
        };
        let patches = patch_files(dir)?;
        let mut prog_info = Vec::new();
        for (field, spec) in file.prog_info {
            anyhow::ensure!(
                matches!(spec.size, 4 | 8) && spec.offset % spec.size == 0 && spec.offset + spec.size <= MAX_PROG_INFO_BYTES,
                "{}: prog_info.{field}: offset {} size {}: a field is 4 or 8 bytes, naturally aligned, within the first {MAX_PROG_INFO_BYTES} bytes",
                manifest.display(),
                spec.offset,
                spec.size
            );
            prog_info.push(InfoField { name: field, offset: spec.offset, size: spec.size });
        }
        for d in &file.upstream_differences {
            anyhow::ensure!(
                !d.reason.trim().is_empty(),
                "{}: upstream_differences: {}: {}: give the reason the variant differs",
                manifest.display(),
                d.file,
                d.program
            );
        }
        Ok(Variant {
            name,
            description: file.description,
            config_fragment,
            patches,
            prog_info,
            upstream_differences: file.upstream_differences,
            judged_as: file.revision_of.map_or(JudgedAs::Itself, JudgedAs::RevisionOf),
        })
    }

    /// A variant from the command line (`--variant NAME=PATH`): a directory of format-patch files
    /// (with or without a `variant.yaml`), or an mbox of the series, which is split into one
    /// patch per message under `scratch`.
    pub fn from_series(name: &str, path: &Path, scratch: &Path) -> anyhow::Result<Variant> {
        anyhow::ensure!(
            !name.is_empty() && name.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-')),
            "--variant {name}={}: use only a-z, 0-9, '_' and '-' in the name (it names directories)",
            path.display()
        );
        let description = format!("patch series from {}", path.display());
        let variant = if path.is_dir() {
            if path.join("variant.yaml").is_file() {
                let loaded = Variant::load(path)?;
                let judged_as = match loaded.judged_as {
                    JudgedAs::Itself => JudgedAs::DifferencesFromBaseline,
                    declared => declared,
                };
                Variant { name: name.to_string(), judged_as, ..loaded }
            } else {
                let patches = patch_files(path)?;
                Variant {
                    name: name.to_string(),
                    description,
                    config_fragment: None,
                    patches,
                    prog_info: Vec::new(),
                    upstream_differences: Vec::new(),
                    judged_as: JudgedAs::DifferencesFromBaseline,
                }
            }
        } else {
            let mbox =
                std::fs::read(path).with_context(|| format!("--variant {name}: cannot read {}", path.display()))?;
            let dir = scratch.join(format!("{name}-{}", &hash_parts([("mbox", mbox.as_slice())])[..16]));
            let patches =
                patches_of_mbox(path, &dir).with_context(|| format!("--variant {name}={}", path.display()))?;
            Variant {
                name: name.to_string(),
                description,
                config_fragment: None,
                patches,
                prog_info: Vec::new(),
                upstream_differences: Vec::new(),
                judged_as: JudgedAs::DifferencesFromBaseline,
            }
        };
        anyhow::ensure!(
            !variant.patches.is_empty(),
            "--variant {name}={}: no patches found (expected *.patch files or an mbox of git format-patch messages)",
            path.display()
        );
        Ok(variant)
    }

    /// Every variant defined under `root`, by name.
    pub fn discover(root: &Path) -> anyhow::Result<Vec<Variant>> {
        let mut variants = Vec::new();
        for entry in std::fs::read_dir(root).with_context(|| format!("{}: cannot list variants", root.display()))? {
            let path = entry?.path();
            if path.join("variant.yaml").is_file() {
                variants.push(Variant::load(&path)?);
            }
        }
        variants.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(variants)
    }
}

/// `*.patch` files in name order (format-patch numbering gives the series order).
/// The variants a scenario runs: those it names, or every variant defined under `root`, then
/// the command line's own series (`extra`); `only` narrows them down. Every variant a program's
/// `expect_on` or `sysctls_on` names must be defined, or a typo would silently apply the default.
pub fn select(scenario: &Scenario, only: &[String], root: &Path, extra: &[Variant]) -> anyhow::Result<Vec<Variant>> {
    let all = Variant::discover(root)?;
    for variant in extra {
        anyhow::ensure!(
            !all.iter().any(|v| v.name == variant.name),
            "--variant {}: a variant of that name is already defined under {}",
            variant.name,
            root.display()
        );
    }
    for program in &scenario.programs {
        for name in program.variants_named() {
            anyhow::ensure!(
                all.iter().any(|v| &v.name == name),
                "{}:{}: program {:?}: expect_on or sysctls_on names unknown variant {name:?}",
                scenario.path.display(),
                program.line,
                program.id
            );
        }
    }
    let mut names: Vec<String> =
        scenario.variants.clone().unwrap_or_else(|| all.iter().map(|v| v.name.clone()).collect());
    names.extend(extra.iter().map(|v| v.name.clone()));
    let mut revisions = Vec::new();
    for variant in extra {
        let mut variant = variant.clone();
        if let Some(original) = variant.revision_of() {
            let Some(shipped) = all.iter().find(|v| v.name == original) else {
                let known: Vec<&str> = all.iter().map(|v| v.name.as_str()).collect();
                anyhow::bail!(
                    "--variant {}: revision of {original:?}, which is not defined under {} ({})",
                    variant.name,
                    root.display(),
                    known.join(", ")
                );
            };
            // What the series does not declare, it has as the variant it revises.
            if variant.prog_info.is_empty() {
                variant.prog_info = shipped.prog_info.clone();
            }
            if variant.upstream_differences.is_empty() {
                variant.upstream_differences = shipped.upstream_differences.clone();
            }
        }
        revisions.push(variant);
    }
    let all: Vec<Variant> = all.into_iter().chain(revisions).collect();
    for name in only {
        anyhow::ensure!(
            names.contains(name),
            "--only {name}: {} runs only these variants: {}",
            scenario.path.display(),
            names.join(", ")
        );
    }
    names
        .iter()
        .filter(|name| only.is_empty() || only.contains(name))
        .map(|name| {
            all.iter().find(|v| &v.name == name).cloned().ok_or_else(|| {
                let known: Vec<&str> = all.iter().map(|v| v.name.as_str()).collect();
                anyhow::anyhow!(
                    "{}: unknown variant {name:?} (defined under {}: {})",
                    scenario.path.display(),
                    root.display(),
                    known.join(", ")
                )
            })
        })
        .collect()
}

/// The `*.patch` files of `dir` (a cover letter left out), in file name order.
pub(crate) fn patch_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut patches = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))? {
        let path = entry?.path();
        // `git format-patch --cover-letter` writes 0000-cover-letter.patch: no diff, no patch.
        // Any other file without a diff is kept, and fails to apply with its name.
        if path.extension().is_some_and(|e| e == "patch") && !is_cover_letter(&path) {
            patches.push(path);
        }
    }
    patches.sort();
    Ok(patches)
}

/// A cover letter: `[PATCH ... 0/N]` (or format-patch's file name for one) and no diff. A file
/// that cannot be read is no cover letter: the build names it, failing that variant alone.
fn is_cover_letter(path: &Path) -> bool {
    let Ok(text) = std::fs::read(path) else { return false };
    let named = path.file_name().is_some_and(|n| n.to_string_lossy().ends_with("-cover-letter.patch"));
    let subject = String::from_utf8_lossy(&text).lines().find_map(|l| l.strip_prefix("Subject: ").map(str::to_string));
    !has_diff(&text) && (named || subject.is_some_and(|s| patch_number(&s) == Some(0)))
}

/// Whether a message or file carries a change: a unified diff with a hunk, or a binary patch.
fn has_diff(text: &[u8]) -> bool {
    let text = String::from_utf8_lossy(text);
    crate::kernel::patch::parse_unified(&text).iter().any(|f| !f.hunks.is_empty())
        || text.contains("\nGIT binary patch\n")
}

/// `n` of a subject's `[PATCH v2 n/N]`.
fn patch_number(subject: &str) -> Option<u32> {
    let tag = subject.strip_prefix('[')?.split(']').next()?;
    let (n, _total) = tag.split_whitespace().last()?.split_once('/')?;
    n.parse().ok()
}

/// The patches of an mbox, one file per message that carries a diff, in series order: `git
/// mailsplit` splits it (a lore thread, a plain diff), `git mailinfo` decodes each message
/// (quoted-printable, base64) into its subject, message and patch. A cover letter (no hunk) and
/// the replies of a thread (`Re:`, even with a suggested diff) are left out; numbered patches
/// (`[PATCH n/N]`) are taken in their order.
fn patches_of_mbox(mbox: &Path, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mails = dir.join("mails");
    if mails.exists() {
        std::fs::remove_dir_all(&mails)?;
    }
    std::fs::create_dir_all(&mails).with_context(|| format!("creating {}", mails.display()))?;
    let sh = xshell::Shell::new()?;
    let into = format!("-o{}", mails.display());
    // -b: a file that is one message without a `From ` line (a plain diff) is that message.
    let split = xshell::cmd!(sh, "git mailsplit -b {into} {mbox}").ignore_status().output()?;
    anyhow::ensure!(split.status.success(), "git mailsplit: {}", String::from_utf8_lossy(&split.stderr).trim());
    let mut names: Vec<PathBuf> = std::fs::read_dir(&mails)?.map(|e| Ok(e?.path())).collect::<std::io::Result<_>>()?;
    names.sort();
    let mut found: Vec<(Option<u32>, Vec<u8>)> = Vec::new();
    for mail in names {
        let (msg, diff) = (mail.with_extension("msg"), mail.with_extension("diff"));
        let text = std::fs::read(&mail)?;
        let info = xshell::cmd!(sh, "git mailinfo -k {msg} {diff}").stdin(text).ignore_status().output()?;
        anyhow::ensure!(info.status.success(), "git mailinfo: {}", String::from_utf8_lossy(&info.stderr).trim());
        let diff = std::fs::read(&diff)?;
        let info = String::from_utf8_lossy(&info.stdout);
        let subject = info.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or_default().to_string();
        let reply = subject.to_ascii_lowercase().starts_with("re:");
        if reply || !has_diff(&diff) {
            continue;
        }
        let mut patch = format!("Subject: {subject}\n\n").into_bytes();
        patch.extend(std::fs::read(&msg)?);
        patch.extend(b"---\n");
        patch.extend(diff);
        found.push((patch_number(&subject), patch));
    }
    std::fs::remove_dir_all(&mails)?;
    if found.iter().all(|(n, _)| n.is_some()) {
        found.sort_by_key(|(n, _)| *n);
    }
    let mut patches = Vec::new();
    for (_, text) in found {
        let patch = dir.join(format!("{:04}.patch", patches.len() + 1));
        write_atomic(&patch, &text)?;
        patches.push(patch);
    }
    Ok(patches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::repo;

    #[test]
    fn a_variant_lists_its_patches_in_series_order() {
        let dir = tempfile::tempdir().unwrap();
        let v = dir.path().join("demo");
        std::fs::create_dir(&v).unwrap();
        std::fs::write(v.join("variant.yaml"), "description: demo\nconfig: extra.config\n").unwrap();
        std::fs::write(v.join("extra.config"), "CONFIG_X=y\n").unwrap();
        for name in ["0002-b.patch", "0001-a.patch", "notes.txt"] {
            std::fs::write(v.join(name), "").unwrap();
        }
        let variant = Variant::load(&v).unwrap();
        let names: Vec<_> = variant.patches.iter().map(|p| p.file_name().unwrap().to_owned()).collect();
        assert_eq!(names, ["0001-a.patch", "0002-b.patch"]);
        assert_eq!(variant.config_fragment, Some(v.join("extra.config")));
    }

    #[test]
    fn unknown_keys_and_missing_fragments_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("variant.yaml"), "description: d\nconfg: x\n").unwrap();
        let err = Variant::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("variant.yaml"), "{err}");
        std::fs::write(dir.path().join("variant.yaml"), "description: d\nconfig: nope.config\n").unwrap();
        let err = Variant::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("nope.config"), "{err}");
    }

    #[test]
    fn appended_prog_info_fields_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("variant.yaml");
        std::fs::write(
            &manifest,
            "description: d\nprog_info:\n  refs: { offset: 228, size: 4 }\n  cancels: { offset: 232, size: 8 }\n",
        )
        .unwrap();
        let v = Variant::load(dir.path()).unwrap();
        let fields: Vec<_> = v.prog_info.iter().map(|f| (f.name.as_str(), f.offset, f.size)).collect();
        assert_eq!(fields, [("cancels", 232, 8), ("refs", 228, 4)]);
        for bad in ["{ offset: 228, size: 2 }", "{ offset: 228, size: 8 }", "{ offset: 1024, size: 4 }"] {
            std::fs::write(&manifest, format!("description: d\nprog_info:\n  refs: {bad}\n")).unwrap();
            let err = Variant::load(dir.path()).unwrap_err().to_string();
            assert!(err.contains("prog_info.refs"), "{bad}: {err}");
        }
    }

    #[test]
    fn upstream_differences_need_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("variant.yaml");
        let declare = |reason: &str| {
            format!("description: d\nupstream_differences:\n  - {{ file: exceptions_fail.c, program: reject_with_reference, expect: accept, reason: {reason:?} }}\n")
        };
        std::fs::write(&manifest, declare("bpf_throw releases it")).unwrap();
        let v = Variant::load(dir.path()).unwrap();
        assert_eq!(v.upstream_differences[0].program, "reject_with_reference");
        assert_eq!(v.upstream_differences[0].expect, crate::scenario::ExpectedVerdict::Accept);
        std::fs::write(&manifest, declare(" ")).unwrap();
        let err = Variant::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("give the reason"), "{err}");
    }

    #[test]
    fn a_series_comes_from_a_directory_or_an_mbox() {
        let dir = tempfile::tempdir().unwrap();
        let series = dir.path().join("series");
        std::fs::create_dir(&series).unwrap();
        std::fs::write(series.join("0001-a.patch"), "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n")
            .unwrap();
        let v = Variant::from_series("mine", &series, dir.path()).unwrap();
        assert_eq!((v.name.as_str(), v.patches.len()), ("mine", 1));

        let mbox = dir.path().join("series.mbox");
        let message = |n: u32| {
            format!("From 0123abcd Mon Sep 17 00:00:00 2001\nSubject: [PATCH {n}/2] x\n\n>From the body\n---\n x | 1 +\ndiff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n")
        };
        std::fs::write(&mbox, message(1) + &message(2)).unwrap();
        let v = Variant::from_series("mbox", &mbox, dir.path()).unwrap();
        assert_eq!(v.patches.len(), 2);
        assert!(std::fs::read_to_string(&v.patches[1]).unwrap().contains("[PATCH 2/2]"));

        // A lore thread: a quoted-printable patch and a reply to it.
        let thread = dir.path().join("thread.mbox");
        std::fs::write(
            &thread,
            "From 1 Mon Sep 17 00:00:00 2001\nFrom: A <a@example.org>\nSubject: [PATCH] f: b\n\
             Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: quoted-printable\n\n\
             Why.\n---\ndiff --git a/f.c b/f.c\n--- a/f.c\n+++ b/f.c\n@@ -1 +1 @@\n-a =3D 1;\n+b =3D 2;\n\n\
             From 2 Mon Sep 17 00:00:00 2001\nFrom: R <r@example.org>\nSubject: Re: [PATCH] f: b\n\n\
             > -a =3D 1;\nLooks good.\n",
        )
        .unwrap();
        let v = Variant::from_series("thread", &thread, dir.path()).unwrap();
        assert_eq!(v.patches.len(), 1, "the reply carries no patch");

        // A b4 thread: the cover letter (with a `---` but no diff), patch 2 before patch 1, and a
        // reply suggesting a diff of its own; and a plain diff with no mail around it.
        let mail = |from: u32, subject: &str, body: &str| {
            format!("From {from} Mon Sep 17 00:00:00 2001\nFrom: A <a@example.org>\nSubject: {subject}\n\n{body}\n")
        };
        let change = |old: &str, new: &str| {
            format!("---\ndiff --git a/f.c b/f.c\n--- a/f.c\n+++ b/f.c\n@@ -1 +1 @@\n-{old}\n+{new}\n")
        };
        let b4 = dir.path().join("b4.mbox");
        std::fs::write(
            &b4,
            [
                mail(0, "[PATCH v2 0/2] f: two steps", "Changes in v2:\n---\n- none"),
                mail(2, "[PATCH v2 2/2] f: c", &change("b", "c")),
                mail(1, "[PATCH v2 1/2] f: b", &change("a", "b")),
                mail(3, "Re: [PATCH v2 1/2] f: b", &change("b", "x")),
            ]
            .concat(),
        )
        .unwrap();
        let b4_series = Variant::from_series("b4", &b4, dir.path()).unwrap();
        assert_eq!(b4_series.patches.len(), 2, "neither the cover letter nor the reply is a patch of the series");
        let b4_tree = dir.path().join("b4-tree");
        std::fs::create_dir(&b4_tree).unwrap();
        std::fs::write(b4_tree.join("f.c"), "a\n").unwrap();
        crate::kernel::patch::apply_series(&b4_tree, &b4_series.patches).unwrap();
        assert_eq!(std::fs::read_to_string(b4_tree.join("f.c")).unwrap(), "c\n", "1/2 before 2/2");
        let plain = dir.path().join("plain.diff");
        std::fs::write(&plain, change("a", "b").trim_start_matches("---\n")).unwrap();
        assert_eq!(Variant::from_series("plain", &plain, dir.path()).unwrap().patches.len(), 1);
        let cover = series.join("0000-cover-letter.patch");
        std::fs::write(&cover, "Subject: [PATCH 0/1] x\n\n---\n x | 1 +\n").unwrap();
        let covered = Variant::from_series("mine", &series, dir.path()).unwrap();
        assert_eq!(covered.patches.len(), 1, "format-patch's cover letter is not a patch");
        let tree = dir.path().join("tree");
        std::fs::create_dir(&tree).unwrap();
        std::fs::write(tree.join("f.c"), "a = 1;\n").unwrap();
        crate::kernel::patch::apply_series(&tree, &v.patches).unwrap();
        assert_eq!(std::fs::read_to_string(tree.join("f.c")).unwrap(), "b = 2;\n", "decoded, then applied");

        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let err = Variant::from_series("e", &empty, dir.path()).unwrap_err().to_string();
        assert!(err.contains("no patches found"), "{err}");
        assert!(Variant::from_series("Bad Name", &series, dir.path()).is_err());
    }

    #[test]
    fn every_shipped_scenario_is_valid_and_names_defined_variants() {
        let dir = repo::scenarios_dir();
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let scenario = Scenario::load(&path, &repo::bpf_source_dir()).unwrap_or_else(|e| panic!("{e}"));
                select(&scenario, &[], &repo::variants_dir(), &[])
                    .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                checked += 1;
            }
        }
        assert!(checked >= 2, "found only {checked} scenarios in {}", dir.display());
    }

    #[test]
    fn a_series_from_the_command_line_runs_beside_the_scenario_variants() {
        let scenario = Scenario::load(&repo::scenarios_dir().join("throw.yaml"), &repo::bpf_source_dir()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("0001-x.patch"), "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n")
            .unwrap();
        let mine = Variant::from_series("mine", dir.path(), dir.path()).unwrap();
        let names: Vec<String> = select(&scenario, &[], &repo::variants_dir(), std::slice::from_ref(&mine))
            .unwrap()
            .into_iter()
            .map(|v| v.name)
            .collect();
        assert_eq!(names, ["baseline", "exception-unwind", "mine"]);
        let only: Vec<String> = select(&scenario, &["mine".into()], &repo::variants_dir(), &[mine])
            .unwrap()
            .into_iter()
            .map(|v| v.name)
            .collect();
        assert_eq!(only, ["mine"]);
        let clash = Variant::from_series("baseline", dir.path(), dir.path()).unwrap();
        let err = select(&scenario, &[], &repo::variants_dir(), &[clash]).unwrap_err().to_string();
        assert!(err.contains("already defined"), "{err}");
    }

    #[test]
    fn a_revision_is_judged_as_the_variant_it_revises_and_a_bare_series_as_differing_from_baseline() {
        let scenario = Scenario::load(&repo::scenarios_dir().join("throw.yaml"), &repo::bpf_source_dir()).unwrap();
        let shipped = repo::variants_dir().join("exception-unwind");
        let mut mine = Variant::from_series("mine", &shipped, &repo::variants_dir()).unwrap();
        assert_eq!(mine.judged_as, JudgedAs::DifferencesFromBaseline, "a series that says nothing");
        assert_eq!(mine.expectations(), ("baseline", true));
        mine.judged_as = JudgedAs::RevisionOf("exception-unwind".into());
        mine.prog_info.clear();
        mine.upstream_differences.clear();
        let selected = select(&scenario, &[], &repo::variants_dir(), &[mine.clone()]).unwrap();
        let revision = selected.iter().find(|v| v.name == "mine").unwrap();
        let original = selected.iter().find(|v| v.name == "exception-unwind").unwrap();
        assert_eq!(revision.expectations(), ("exception-unwind", false));
        assert_eq!(revision.prog_info, original.prog_info, "what it does not declare, it has as the original");
        assert_eq!(revision.upstream_differences, original.upstream_differences);
        mine.judged_as = JudgedAs::RevisionOf("exception-unwnd".into());
        let err = select(&scenario, &[], &repo::variants_dir(), &[mine]).unwrap_err().to_string();
        assert!(err.contains("revision of \"exception-unwnd\", which is not defined"), "{err}");
    }
}
