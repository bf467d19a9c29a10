//! Stage 3, configure: config fragments on top of `tinyconfig`, merged by the kernel's own
//! `merge_config.sh` and `olddefconfig`, then checked option by option: kconfig silently drops
//! what it cannot satisfy, so every requested option is verified against the final `.config`.

use crate::fsutil::tail_lines;
use anyhow::Context;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionValue {
    /// `y`, `m`, a number or a quoted string, as written.
    Set(String),
    /// `# CONFIG_X is not set`.
    NotSet,
}

impl fmt::Display for OptionValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionValue::Set(v) => write!(f, "={v}"),
            OptionValue::NotSet => write!(f, " is not set"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedOption {
    pub name: String,
    pub value: OptionValue,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct Fragment {
    pub path: PathBuf,
    pub options: Vec<RequestedOption>,
}

/// One config line: `CONFIG_X=v`, `# CONFIG_X is not set`, or nothing (comment/blank).
fn parse_line(line: &str) -> Result<Option<(String, OptionValue)>, &'static str> {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("# CONFIG_") {
        return match rest.strip_suffix(" is not set") {
            Some(name) if is_symbol(name) => Ok(Some((format!("CONFIG_{name}"), OptionValue::NotSet))),
            _ => Ok(None),
        };
    }
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (name, value) = line.split_once('=').ok_or("expected CONFIG_NAME=value or '# CONFIG_NAME is not set'")?;
    let symbol = name.strip_prefix("CONFIG_").ok_or("option names start with CONFIG_")?;
    if !is_symbol(symbol) {
        return Err("option name has characters kconfig does not allow");
    }
    if value.is_empty() {
        return Err("missing value after '='");
    }
    Ok(Some((name.to_string(), OptionValue::Set(value.to_string()))))
}

fn is_symbol(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Fragment {
    pub fn load(path: &Path) -> anyhow::Result<Fragment> {
        let text = std::fs::read_to_string(path).with_context(|| format!("config fragment {}", path.display()))?;
        Fragment::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> anyhow::Result<Fragment> {
        let mut options = Vec::new();
        for (index, line) in text.lines().enumerate() {
            match parse_line(line) {
                Ok(Some((name, value))) => options.push(RequestedOption { name, value, line: index + 1 }),
                Ok(None) => {}
                Err(what) => anyhow::bail!("{}:{}: {what}: {line:?}", path.display(), index + 1),
            }
        }
        Ok(Fragment { path: path.to_path_buf(), options })
    }
}

pub fn parse_dotconfig(text: &str) -> BTreeMap<String, OptionValue> {
    text.lines().filter_map(|l| parse_line(l).ok().flatten()).collect()
}

/// One option that did not end up in `.config` as requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub name: String,
    pub wanted: OptionValue,
    pub got: OptionValue,
    pub fragment: PathBuf,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigMismatch {
    pub mismatches: Vec<Mismatch>,
}

impl fmt::Display for ConfigMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} requested config option(s) did not stick:", self.mismatches.len())?;
        for m in &self.mismatches {
            writeln!(f, "  {}{} ({}:{}) became: {}{}", m.name, m.wanted, m.fragment.display(), m.line, m.name, m.got)?;
        }
        write!(f, "(an unmet dependency or a conflicting choice: see the option's Kconfig entry)")
    }
}

/// Checks every requested option against `.config`; later fragments override earlier ones.
pub fn verify(fragments: &[Fragment], dotconfig: &str) -> Result<(), ConfigMismatch> {
    let actual = parse_dotconfig(dotconfig);
    let mut wanted: BTreeMap<&str, (&RequestedOption, &Path)> = BTreeMap::new();
    for fragment in fragments {
        for option in &fragment.options {
            wanted.insert(&option.name, (option, &fragment.path));
        }
    }
    let mismatches: Vec<Mismatch> = wanted
        .into_values()
        .filter_map(|(option, fragment)| {
            let got = actual.get(&option.name).cloned().unwrap_or(OptionValue::NotSet);
            (got != option.value).then(|| Mismatch {
                name: option.name.clone(),
                wanted: option.value.clone(),
                got,
                fragment: fragment.to_path_buf(),
                line: option.line,
            })
        })
        .collect();
    if mismatches.is_empty() {
        Ok(())
    } else {
        Err(ConfigMismatch { mismatches })
    }
}

fn step(what: &str, command: &mut Command, log: &Path) -> anyhow::Result<()> {
    let out = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    let status = command
        .stdout(out.try_clone()?)
        .stderr(out)
        .status()
        .with_context(|| format!("{what}: cannot start {:?}", command.get_program()))?;
    anyhow::ensure!(
        status.success(),
        "{what} failed ({status}); last lines of {}:\n{}",
        log.display(),
        tail_lines(log, 20)
    );
    Ok(())
}

/// tinyconfig, merge the fragments, olddefconfig, verify. Output goes to `log`.
pub fn configure(src: &Path, objdir: &Path, fragments: &[Fragment], log: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(objdir)?;
    let make = |target: &str| {
        let mut cmd = Command::new("make");
        cmd.arg("-C").arg(src).arg(format!("O={}", objdir.display())).arg(target);
        cmd
    };
    step("make tinyconfig", &mut make("tinyconfig"), log)?;
    let mut merge = Command::new(src.join("scripts/kconfig/merge_config.sh"));
    merge.current_dir(src).arg("-m").arg("-O").arg(objdir).arg(objdir.join(".config"));
    merge.args(fragments.iter().map(|f| &f.path));
    step("merge_config.sh", &mut merge, log)?;
    step("make olddefconfig", &mut make("olddefconfig"), log)?;
    let dotconfig = std::fs::read_to_string(objdir.join(".config"))?;
    verify(fragments, &dotconfig)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fragment(text: &str, name: &str) -> Fragment {
        Fragment::parse(text, Path::new(name)).unwrap()
    }

    #[test]
    fn fragments_parse_values_unset_options_and_comments() {
        let f = fragment("# comment\n\nCONFIG_A=y\nCONFIG_B=\"x y\"\n# CONFIG_C is not set\nCONFIG_D=16\n", "f");
        let got: Vec<_> = f.options.iter().map(|o| (o.name.as_str(), o.value.clone(), o.line)).collect();
        assert_eq!(
            got,
            [
                ("CONFIG_A", OptionValue::Set("y".into()), 3),
                ("CONFIG_B", OptionValue::Set("\"x y\"".into()), 4),
                ("CONFIG_C", OptionValue::NotSet, 5),
                ("CONFIG_D", OptionValue::Set("16".into()), 6),
            ]
        );
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        let err = Fragment::parse("CONFIG_A=y\nBPF_JIT=y\n", Path::new("k/base.config")).unwrap_err().to_string();
        assert!(err.starts_with("k/base.config:2:"), "{err}");
        let err = Fragment::parse("CONFIG_A\n", Path::new("f")).unwrap_err().to_string();
        assert!(err.starts_with("f:1:"), "{err}");
    }

    #[test]
    fn verify_names_each_option_that_did_not_stick() {
        let f = fragment("CONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\nCONFIG_D=y\n", "base.config");
        let dotconfig = "CONFIG_A=y\nCONFIG_B=m\nCONFIG_C=y\n";
        let err = verify(&[f], dotconfig).unwrap_err();
        let names: Vec<_> = err.mismatches.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["CONFIG_B", "CONFIG_C", "CONFIG_D"]);
        let text = err.to_string();
        assert!(text.contains("CONFIG_B=y (base.config:2) became: CONFIG_B=m"), "{text}");
        assert!(text.contains("CONFIG_D=y (base.config:4) became: CONFIG_D is not set"), "{text}");
    }

    #[test]
    fn later_fragments_override_earlier_ones() {
        let base = fragment("CONFIG_A=y\n", "base");
        let variant = fragment("# CONFIG_A is not set\n", "variant");
        assert!(verify(&[base.clone(), variant.clone()], "# CONFIG_A is not set\n").is_ok());
        assert!(verify(&[variant, base], "# CONFIG_A is not set\n").is_err());
    }

    /// The real kconfig on the real tree: an option with an unmet dependency must be reported.
    #[test]
    fn configure_reports_options_that_kconfig_dropped() {
        let src = std::env::var_os("BPF_HARNESS_TEST_KSRC")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/bpf-harness/src/linux-source-6.12"))
            })
            .filter(|p| p.join("Makefile").is_file());
        let Some(src) = src else {
            eprintln!("skipped: no extracted kernel tree (set BPF_HARNESS_TEST_KSRC)");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let frag_path = dir.path().join("frag.config");
        // BPF_JIT_ALWAYS_ON depends on BPF_JIT, which this fragment leaves off.
        std::fs::write(&frag_path, "CONFIG_64BIT=y\n# CONFIG_BPF_JIT is not set\nCONFIG_BPF_JIT_ALWAYS_ON=y\n")
            .unwrap();
        let frag = Fragment::load(&frag_path).unwrap();
        let err = configure(&src, &dir.path().join("o"), &[frag], &dir.path().join("log")).unwrap_err();
        let mismatch = err.downcast_ref::<ConfigMismatch>().expect("a config mismatch");
        let names: Vec<_> = mismatch.mismatches.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["CONFIG_BPF_JIT_ALWAYS_ON"]);
    }
}
