//! Stage 2, patch: a variant is a directory under `kernel-config/variants/` with a `variant.yaml`
//! and an ordered git format-patch series.

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
    pub dir: PathBuf,
    pub description: String,
    pub config_fragment: Option<PathBuf>,
    /// `*.patch` files in name order (format-patch numbering gives the series order).
    pub patches: Vec<PathBuf>,
    pub prog_info: Vec<InfoField>,
}

impl Variant {
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
        let mut patches = Vec::new();
        for entry in std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "patch") {
                patches.push(path);
            }
        }
        patches.sort();
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
        Ok(Variant { name, dir: dir.to_path_buf(), description: file.description, config_fragment, patches, prog_info })
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
