//! Configure: config fragments merged on top of `tinyconfig` by the kernel's own
//! `merge_config.sh` and `olddefconfig`, then checked option by option, because kconfig silently
//! drops a requested value whose dependencies are not met.

use crate::events::Sink;
use crate::host::command::run_logged;
use anyhow::Context;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A config fragment: the options a file requests, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    pub path: PathBuf,
    pub options: Vec<RequestedOption>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedOption {
    /// With its prefix, as in `.config`: "CONFIG_BPF".
    pub name: String,
    pub value: OptionValue,
    /// 1-based line in the fragment.
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionValue {
    /// As `.config` writes it: `y`, `m`, `123`, `0x1000`, `"a string"` (quotes kept).
    Set(String),
    /// `# CONFIG_X is not set`; also what `CONFIG_X=n` means, since `.config` never says `=n`.
    NotSet,
}

impl fmt::Display for OptionValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionValue::Set(value) => f.write_str(value),
            OptionValue::NotSet => f.write_str("is not set"),
        }
    }
}

impl Fragment {
    pub fn load(path: &Path) -> anyhow::Result<Fragment> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("config fragment {}: cannot read", path.display()))?;
        Fragment::parse(&text, path)
    }

    /// Parses fragment text; `path` is where it came from, for messages.
    pub fn parse(text: &str, path: &Path) -> anyhow::Result<Fragment> {
        let mut options = Vec::new();
        for (index, line) in text.lines().enumerate() {
            match parse_line(line) {
                Some((name, value)) => options.push(RequestedOption { name: name.to_string(), value, line: index + 1 }),
                None if line.trim().is_empty() || line.trim_start().starts_with('#') => {}
                None => anyhow::bail!(
                    "{}:{}: not a config line: {line:?} (expected CONFIG_NAME=value or \"# CONFIG_NAME is not set\")",
                    path.display(),
                    index + 1
                ),
            }
        }
        Ok(Fragment { path: path.to_path_buf(), options })
    }
}

/// The options a `.config` sets or explicitly leaves unset; other lines are ignored.
pub fn parse_dotconfig(text: &str) -> BTreeMap<String, OptionValue> {
    text.lines().filter_map(parse_line).map(|(name, value)| (name.to_string(), value)).collect()
}

/// `CONFIG_X=value` or `# CONFIG_X is not set`; anything else (comments included) is `None`.
fn parse_line(line: &str) -> Option<(&str, OptionValue)> {
    let line = line.trim();
    if let Some(name) = line.strip_prefix("# ").and_then(|rest| rest.strip_suffix(" is not set")) {
        return is_option_name(name).then_some((name, OptionValue::NotSet));
    }
    let (name, value) = line.split_once('=')?;
    // A value kconfig would not read back whole (an unquoted space, a stray quote) is a typo that
    // would otherwise only surface as a mismatch after the merge.
    let quoted = value.len() >= 2 && value.starts_with('"') && value.ends_with('"');
    let plain = !value.is_empty() && !value.contains(|c: char| c.is_whitespace() || c == '"');
    if !is_option_name(name) || !(quoted || plain) {
        return None;
    }
    Some((name, if value == "n" { OptionValue::NotSet } else { OptionValue::Set(value.to_string()) }))
}

fn is_option_name(name: &str) -> bool {
    name.strip_prefix("CONFIG_")
        .is_some_and(|symbol| !symbol.is_empty() && symbol.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// A requested option that `.config` does not have as requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionMismatch {
    pub name: String,
    pub wanted: OptionValue,
    /// What `.config` has; `NotSet` when the option is absent.
    pub got: OptionValue,
    /// The fragment (and line) whose request counts: the last one to name the option.
    pub fragment: PathBuf,
    pub line: usize,
}

impl fmt::Display for OptionMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.wanted {
            OptionValue::Set(value) => write!(f, "{}={value}", self.name)?,
            OptionValue::NotSet => write!(f, "{} is not set", self.name)?,
        }
        write!(f, " ({}:{}) became: {}", self.fragment.display(), self.line, self.got)
    }
}

/// Every requested option that did not stick, in fragment order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigMismatch {
    pub options: Vec<OptionMismatch>,
}

impl fmt::Display for ConfigMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "requested config options that did not stick (unmet dependencies or conflicts):")?;
        self.options.iter().try_for_each(|option| write!(f, "\n  {option}"))
    }
}

impl std::error::Error for ConfigMismatch {}

/// Checks that `.config` has every requested option with its requested value; for an option
/// named in several fragments the last one wins, as it does in `merge_config.sh`.
pub fn verify(fragments: &[Fragment], dotconfig: &str) -> Result<(), ConfigMismatch> {
    let actual = parse_dotconfig(dotconfig);
    let mut seen = HashSet::new();
    let mut requested: Vec<_> = fragments
        .iter()
        .rev()
        .flat_map(|fragment| fragment.options.iter().rev().map(move |option| (fragment, option)))
        .filter(|(_, option)| seen.insert(option.name.as_str()))
        .collect();
    requested.reverse();
    let options: Vec<_> = requested
        .into_iter()
        .filter_map(|(fragment, option)| {
            let got = actual.get(&option.name).cloned().unwrap_or(OptionValue::NotSet);
            (got != option.value).then(|| OptionMismatch {
                name: option.name.clone(),
                wanted: option.value.clone(),
                got,
                fragment: fragment.path.clone(),
                line: option.line,
            })
        })
        .collect();
    if options.is_empty() {
        Ok(())
    } else {
        Err(ConfigMismatch { options })
    }
}

/// Writes `objdir/.config`: `tinyconfig`, then the fragments in order, then `olddefconfig` to
/// resolve dependencies, then [`verify`]. Every step's output is appended to `log`; `who` names
/// the variant in events.
pub fn configure(
    sink: &dyn Sink,
    who: &str,
    src: &Path,
    objdir: &Path,
    fragments: &[Fragment],
    log: &Path,
) -> anyhow::Result<()> {
    // make -C and merge_config.sh run in other directories: relative paths would point elsewhere.
    let src = std::path::absolute(src)?;
    let objdir = std::path::absolute(objdir)?;
    std::fs::create_dir_all(&objdir).with_context(|| format!("cannot create {}", objdir.display()))?;
    let dotconfig = objdir.join(".config");
    let make = |target: &str| {
        let mut command = Command::new("make");
        command.arg("-C").arg(&src).arg(format!("O={}", objdir.display())).arg(target);
        command
    };

    run_logged(sink, who, "make tinyconfig", &mut make("tinyconfig"), log)?;
    let mut merge = Command::new(src.join("scripts/kconfig/merge_config.sh"));
    // -m: merge only, because merge_config.sh would otherwise run alldefconfig, not olddefconfig.
    // It creates its temporary files in the working directory: keep them in the objdir.
    merge.current_dir(&objdir).arg("-m").arg("-O").arg(&objdir).arg(&dotconfig);
    for fragment in fragments {
        merge.arg(std::path::absolute(&fragment.path)?);
    }
    run_logged(sink, who, "merge_config.sh", &mut merge, log)?;
    run_logged(sink, who, "make olddefconfig", &mut make("olddefconfig"), log)?;

    let text = std::fs::read_to_string(&dotconfig).with_context(|| format!("cannot read {}", dotconfig.display()))?;
    verify(fragments, &text).with_context(|| format!("checking {}", dotconfig.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(value: &str) -> OptionValue {
        OptionValue::Set(value.to_string())
    }

    fn fragment(path: &str, text: &str) -> Fragment {
        Fragment::parse(text, Path::new(path)).unwrap()
    }

    #[test]
    fn fragments_parse_values_unset_options_comments_and_blanks() {
        let text = "# A comment\n\nCONFIG_A=y\nCONFIG_B=m\n  CONFIG_C=\"console=ttyS0 quiet\"  \n\
                    CONFIG_D=17\n# CONFIG_E is not set\nCONFIG_F=n\n#CONFIG_G=y commented out\n";
        let options: Vec<_> =
            fragment("f.config", text).options.into_iter().map(|o| (o.name, o.value, o.line)).collect();
        let expected = [
            ("CONFIG_A", set("y"), 3),
            ("CONFIG_B", set("m"), 4),
            ("CONFIG_C", set("\"console=ttyS0 quiet\""), 5),
            ("CONFIG_D", set("17"), 6),
            ("CONFIG_E", OptionValue::NotSet, 7),
            ("CONFIG_F", OptionValue::NotSet, 8),
        ]
        .map(|(name, value, line)| (name.to_string(), value, line));
        assert_eq!(options, expected);
    }

    #[test]
    fn malformed_lines_are_errors_with_file_and_line() {
        for (text, line) in
            [("CONFIG_A=y\nBPF_JIT=y\n", 2), ("CONFIG_A\n", 1), ("\n\nCONFIG_A=y y\n", 3), ("CONFIG_A=\n", 1)]
        {
            let err = Fragment::parse(text, Path::new("kernel-config/base.config")).unwrap_err().to_string();
            assert!(err.starts_with(&format!("kernel-config/base.config:{line}: ")), "{text:?}: {err}");
        }
    }

    #[test]
    fn dotconfig_keeps_options_and_skips_comments() {
        let text = "#\n# Automatically generated file; DO NOT EDIT.\n#\nCONFIG_64BIT=y\n# CONFIG_SMP is not set\n\
                    CONFIG_LOG_BUF_SHIFT=17\nCONFIG_DEFAULT_HOSTNAME=\"(none)\"\n# end of General setup\n";
        let expected = [
            ("CONFIG_64BIT", set("y")),
            ("CONFIG_DEFAULT_HOSTNAME", set("\"(none)\"")),
            ("CONFIG_LOG_BUF_SHIFT", set("17")),
            ("CONFIG_SMP", OptionValue::NotSet),
        ]
        .map(|(name, value)| (name.to_string(), value));
        assert_eq!(parse_dotconfig(text), BTreeMap::from(expected));
    }

    #[test]
    fn verify_accepts_a_config_with_every_requested_option() {
        let base = fragment("base.config", "CONFIG_A=y\n# CONFIG_B is not set\n# CONFIG_ABSENT is not set\n");
        assert_eq!(verify(&[base], "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_OTHER=m\n"), Ok(()));
    }

    #[test]
    fn verify_names_every_option_that_did_not_stick() {
        let base = fragment("kernel-config/base.config", "CONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\nCONFIG_D=y\n");
        let err = verify(&[base], "CONFIG_A=y\nCONFIG_B=m\nCONFIG_C=y\n").unwrap_err();
        let got: Vec<_> = err.options.iter().map(|o| (o.name.as_str(), o.got.clone(), o.line)).collect();
        assert_eq!(got, [("CONFIG_B", set("m"), 2), ("CONFIG_C", set("y"), 3), ("CONFIG_D", OptionValue::NotSet, 4)]);
        let lines: Vec<_> = err.to_string().lines().skip(1).map(str::trim).map(String::from).collect();
        assert_eq!(
            lines,
            [
                "CONFIG_B=y (kernel-config/base.config:2) became: m",
                "CONFIG_C is not set (kernel-config/base.config:3) became: y",
                "CONFIG_D=y (kernel-config/base.config:4) became: is not set",
            ]
        );
    }

    #[test]
    fn a_later_fragment_overrides_an_earlier_one() {
        let base = fragment("base.config", "CONFIG_A=y\nCONFIG_B=y\n");
        let variant = fragment("variant.config", "# CONFIG_A is not set\n");
        assert_eq!(verify(&[base.clone(), variant.clone()], "CONFIG_B=y\n"), Ok(()));
        let err = verify(&[variant, base], "CONFIG_B=y\n").unwrap_err();
        assert_eq!(err.options.len(), 1);
        assert_eq!((err.options[0].fragment.as_path(), err.options[0].line), (Path::new("base.config"), 1));
    }

    #[test]
    fn a_failing_step_reports_the_step_the_log_tail_and_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("configure.log");
        // An empty directory is no kernel tree: the first step fails.
        let err = configure(&crate::events::Collect::default(), "v", dir.path(), &dir.path().join("obj"), &[], &log)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("make tinyconfig failed"), "{err}");
        assert!(err.contains("No rule to make target") && err.contains(&log.display().to_string()), "{err}");
    }

    /// The real kconfig on the real tree (about 20 s): options whose dependencies fail must be named.
    #[test]
    fn configure_on_the_kernel_tree_names_options_that_did_not_stick() {
        let src = std::env::var_os("BPF_HARNESS_TEST_KSRC")
            .map(PathBuf::from)
            .or_else(|| {
                let extracted = PathBuf::from(std::env::var_os("HOME")?).join(".cache/bpf-harness/src");
                std::fs::read_dir(extracted)
                    .ok()?
                    .flatten()
                    .map(|e| e.path())
                    .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("linux-source-6.12")))
            })
            .filter(|src| src.join("scripts/kconfig/merge_config.sh").is_file());
        let Some(src) = src else {
            eprintln!(
                "skipped: no kernel tree (BPF_HARNESS_TEST_KSRC, else ~/.cache/bpf-harness/src/linux-source-6.12-*)"
            );
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.config");
        // BPF_JIT depends on BPF, which nothing here selects; LOG_BUF_SHIFT's range starts at 12.
        std::fs::write(&path, "CONFIG_64BIT=y\nCONFIG_PRINTK=y\nCONFIG_BPF_JIT=y\nCONFIG_LOG_BUF_SHIFT=5\n").unwrap();
        let objdir = dir.path().join("obj");
        let log = dir.path().join("configure.log");
        let err =
            configure(&crate::events::Collect::default(), "v", &src, &objdir, &[Fragment::load(&path).unwrap()], &log)
                .unwrap_err();
        let mismatch = err.downcast_ref::<ConfigMismatch>().unwrap_or_else(|| panic!("{err:#}"));
        let got: Vec<_> = mismatch.options.iter().map(|o| (o.name.as_str(), o.got.clone(), o.line)).collect();
        assert_eq!(got, [("CONFIG_BPF_JIT", OptionValue::NotSet, 3), ("CONFIG_LOG_BUF_SHIFT", set("12"), 4)]);
        let dotconfig = parse_dotconfig(&std::fs::read_to_string(objdir.join(".config")).unwrap());
        assert_eq!(dotconfig.get("CONFIG_64BIT"), Some(&set("y")));
        let log = std::fs::read_to_string(&log).unwrap();
        assert!(["tinyconfig", "merge_config.sh", "olddefconfig"].iter().all(|step| log.contains(step)), "{log}");
    }
}
