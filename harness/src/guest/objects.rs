//! Guest objects: the static guest runner and the BPF objects, compiled against the variant's
//! own BTF (vmlinux.h) and the kernel tree's own libbpf headers.

use crate::events::Sink;
use crate::host::cache::Cache;
use crate::host::command::run_logged;
use crate::host::fsutil::{hash_parts, write_atomic};
use crate::host::repo;
use crate::kernel::build::KernelBuild;
use crate::kernel::source::KernelSource;
use crate::selftests::annotations::object_name;
use crate::selftests::PROGS_DIR;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::Command;

const GUEST_TARGET: &str = "x86_64-unknown-linux-gnu";
pub const BPF_CLANG: &str = "clang-19";

/// Builds the guest runner as a fully static binary (it is the guest's /init).
pub fn build_runner(sink: &dyn Sink) -> anyhow::Result<PathBuf> {
    let root = repo::root();
    let target_dir = root.join("target/guest");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--release", "--locked", "-p", "bpfh-guest-runner", "--target", GUEST_TARGET])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("LIBBPF_SYS_LIBRARY_PATH", "/usr/lib/x86_64-linux-gnu");
    run_logged(sink, "guest", "building the static guest runner", &mut cmd, &target_dir.join("build.log"))?;
    let runner = target_dir.join(GUEST_TARGET).join("release/bpfh-guest-runner");
    anyhow::ensure!(runner.is_file(), "guest runner not found at {} after the build", runner.display());
    Ok(runner)
}

/// libbpf's BPF-side headers (bpf_helpers.h, generated bpf_helper_defs.h, ...) installed from
/// the kernel tree, once per tree.
fn libbpf_headers(sink: &dyn Sink, cache: &Cache, source: &KernelSource) -> anyhow::Result<PathBuf> {
    let id = format!("{}@{}", source.version, source.path.display());
    let dir = cache.tools().join(format!("libbpf-headers-{}", &hash_parts([("src", id.as_bytes())])[..16]));
    let include = dir.join("include");
    if include.join("bpf/bpf_helper_defs.h").is_file() {
        return Ok(include);
    }
    let staging = dir.join(format!("staging-{}", std::process::id()));
    let mut make = Command::new("make");
    make.arg("-C")
        .arg(source.path.join("tools/lib/bpf"))
        .arg(format!("OUTPUT={}/", staging.join("out").display()))
        .arg(format!("DESTDIR={}", staging.join("dest").display()))
        .arg("prefix=")
        .arg("install_headers");
    std::fs::create_dir_all(staging.join("out"))?;
    run_logged(sink, "guest", "installing libbpf headers from the kernel tree", &mut make, &dir.join("install.log"))?;
    std::fs::rename(staging.join("dest/include"), &include).context("moving libbpf headers into place")?;
    std::fs::remove_dir_all(&staging)?;
    Ok(include)
}

/// Dumps vmlinux.h from the variant's BTF (Debian's bpftool writes no kfunc prototypes: the
/// programs declare the kfuncs they use in guest/bpf/kfuncs.h).
fn vmlinux_header(kernel: &KernelBuild, include_dir: &Path) -> anyhow::Result<()> {
    let header = include_dir.join("vmlinux.h");
    if header.is_file() {
        return Ok(());
    }
    let sh = xshell::Shell::new()?;
    let vmlinux = &kernel.vmlinux;
    let bpftool = crate::host::prereq::bpftool()?;
    let out = xshell::cmd!(sh, "{bpftool} btf dump file {vmlinux} format c").ignore_status().output()?;
    anyhow::ensure!(
        out.status.success(),
        "bpftool btf dump file {} failed: {}",
        vmlinux.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    write_atomic(&header, &out.stdout)?;
    Ok(())
}

/// The include directories every BPF object of a variant is compiled with.
struct BpfIncludes {
    /// libbpf's BPF-side headers from the kernel tree.
    pub libbpf: PathBuf,
    /// Holds the variant's vmlinux.h.
    pub generated: PathBuf,
}

/// Installs libbpf's headers and dumps the variant's vmlinux.h (each once, then reused).
fn bpf_includes(
    sink: &dyn Sink,
    cache: &Cache,
    source: &KernelSource,
    kernel: &KernelBuild,
) -> anyhow::Result<BpfIncludes> {
    let libbpf = libbpf_headers(sink, cache, source)?;
    let generated = kernel.objdir.join("bpf").join("include");
    std::fs::create_dir_all(&generated)?;
    vmlinux_header(kernel, &generated)?;
    Ok(BpfIncludes { libbpf, generated })
}

/// Runs clang-19 with `args`; `what` says what failed to compile, clang's stderr follows.
fn run_bpf_clang(args: &[std::ffi::OsString], what: impl std::fmt::Display) -> anyhow::Result<()> {
    let sh = xshell::Shell::new()?;
    let out = xshell::cmd!(sh, "{BPF_CLANG} {args...}")
        .ignore_status()
        .output()
        .with_context(|| format!("running {BPF_CLANG}"))?;
    anyhow::ensure!(out.status.success(), "{what}:\n{}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

/// Command-line words from strings and paths alike.
fn words<const N: usize>(parts: [&dyn AsRef<std::ffi::OsStr>; N]) -> Vec<std::ffi::OsString> {
    parts.iter().map(|p| p.as_ref().to_os_string()).collect()
}

/// Compiles `objects` (names of guest/bpf/<name>.bpf.c) for one variant; returns each object's
/// file name in the guest (`<name>.bpf.o`) and its path. An object is compiled again only when
/// its recipe changed: the tools, clang's arguments, or any file clang read for it (its `-MD`
/// list: the source, guest/bpf's headers, libbpf's, the variant's vmlinux.h).
///
/// Each object is then passed through libbpf's static linker (`bpftool gen object`, as
/// libbpf-bootstrap and the selftests link theirs), which keeps BTF and drops the DWARF that
/// `-g` leaves, nine tenths of the file: every object is read into the guest at every run.
pub fn build_bpf_objects(
    sink: &dyn Sink,
    cache: &Cache,
    source: &KernelSource,
    kernel: &KernelBuild,
    objects: &[String],
) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let includes = bpf_includes(sink, cache, source, kernel)?;
    let out_dir = kernel.objdir.join("bpf");
    let src_dir = repo::bpf_source_dir();
    let bpftool = crate::host::prereq::bpftool()?;
    let tools = format!("{}\n{}", clang_version()?, bpftool_version(&bpftool)?);
    let mut built = Vec::new();
    for name in objects {
        let src = src_dir.join(format!("{name}.bpf.c"));
        let obj = out_dir.join(format!("{name}.bpf.o"));
        let args = words([
            &"-g",
            &"-O2",
            &"-target",
            &"bpf",
            &"-D__TARGET_ARCH_x86",
            &"-Wall",
            &"-I",
            &includes.generated,
            &"-I",
            &includes.libbpf,
            &"-I",
            &src_dir,
            &"-c",
            &src,
        ]);
        let recipe = Recipe { tools: &tools, args: &args, bpftool: &bpftool, object: &obj };
        if !recipe.is_made() {
            sink.phase(&kernel.variant, &format!("compiling {}", src.display()));
            recipe.make(format_args!("{} does not compile against {}'s vmlinux.h", src.display(), kernel.variant))?;
        }
        built.push((format!("{name}.bpf.o"), obj));
    }
    Ok(built)
}

/// How one object is made (clang with `args`, then linked by `bpftool`), and whether the object
/// there was made so. Beside `object` lie its dependency list (`.d`) and the key (`.key`) of
/// the recipe that made it.
#[derive(Clone, Copy)]
struct Recipe<'a> {
    /// The versions of clang and bpftool.
    tools: &'a str,
    args: &'a [std::ffi::OsString],
    bpftool: &'a Path,
    object: &'a Path,
}

impl Recipe<'_> {
    fn depfile(&self) -> PathBuf {
        self.object.with_extension("d")
    }

    fn key_file(&self) -> PathBuf {
        self.object.with_extension("key")
    }

    /// The recipe's key with the dependencies `depfile` lists as they are now; None when one
    /// of them cannot be read (a header that is gone).
    fn key(&self, depfile: &Path) -> Option<String> {
        let inputs = depfile_inputs(&std::fs::read_to_string(depfile).ok()?);
        let mut contents = Vec::new();
        for input in &inputs {
            contents.push((input.as_os_str().as_encoded_bytes(), std::fs::read(input).ok()?));
        }
        let args = self.args.join(std::ffi::OsStr::new("\0"));
        let mut parts = vec![("tools", self.tools.as_bytes()), ("args", args.as_encoded_bytes())];
        for (path, text) in &contents {
            parts.extend([("path", *path), ("text", &text[..])]);
        }
        Some(hash_parts(parts))
    }

    /// Whether the object there was made by this recipe from the files as they are now, and
    /// is still what it made (not overwritten since, by an older harness for one).
    fn is_made(&self) -> bool {
        let Ok(stored) = std::fs::read_to_string(self.key_file()) else { return false };
        let Ok(object) = std::fs::read(self.object) else { return false };
        self.key(&self.depfile()).is_some_and(|key| stored == made_key(&key, &object))
    }

    /// Compiles beside the object, then renames into place, the object first: a run reading
    /// the object while another compiles it sees a whole object, and a key that does not match
    /// it only makes it compile again.
    fn make(&self, what: impl std::fmt::Display) -> anyhow::Result<()> {
        let partial = |ext: &str| self.object.with_extension(format!("{ext}.{}.partial", std::process::id()));
        let (compiled, object, depfile) = (partial("c.o"), partial("o"), partial("d"));
        let mut args = self.args.to_vec();
        args.extend(words([&"-MD", &"-MF", &depfile, &"-o", &compiled]));
        let made = run_bpf_clang(&args, what).and_then(|()| {
            let sh = xshell::Shell::new()?;
            let bpftool = self.bpftool;
            let out = xshell::cmd!(sh, "{bpftool} gen object {object} {compiled}").ignore_status().output()?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            anyhow::ensure!(out.status.success(), "bpftool gen object {}: {stderr}", self.object.display());
            let key = self.key(&depfile).context("reading the files clang listed it used")?;
            let made = made_key(&key, &std::fs::read(&object)?);
            std::fs::rename(&object, self.object)?;
            std::fs::rename(&depfile, self.depfile())?;
            write_atomic(&self.key_file(), made.as_bytes())?;
            Ok(())
        });
        for file in [compiled, object, depfile] {
            let _ = std::fs::remove_file(file);
        }
        made
    }
}

/// What a `.key` file holds: the recipe's key and the object it made.
fn made_key(recipe: &str, object: &[u8]) -> String {
    hash_parts([("recipe", recipe.as_bytes()), ("object", object)])
}

/// The files a make-style dependency list (`target: dep dep \<newline> dep`) names after its
/// target, with make's escaped spaces undone.
fn depfile_inputs(text: &str) -> Vec<PathBuf> {
    let text = text.replace("\\\n", " ");
    let Some((_, deps)) = text.split_once(": ") else { return Vec::new() };
    let mut inputs = Vec::new();
    let mut word = String::new();
    let mut chars = deps.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => word.push(chars.next().unwrap()),
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    inputs.push(PathBuf::from(std::mem::take(&mut word)));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        inputs.push(PathBuf::from(word));
    }
    inputs
}

/// The host compiler's system include directories, passed as `-idirafter` (the selftests
/// Makefile's `get_sys_includes`: BPF programs include a few libc headers).
fn system_includes() -> anyhow::Result<Vec<String>> {
    let sh = xshell::Shell::new()?;
    let out = xshell::cmd!(sh, "{BPF_CLANG} -v -E -")
        .stdin("")
        .ignore_status()
        .output()
        .with_context(|| format!("running {BPF_CLANG} -v -E -"))?;
    let text = String::from_utf8_lossy(&out.stderr);
    let mut dirs = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("#include <...> search starts here:") {
            inside = true;
        } else if line.starts_with("End of search list.") {
            break;
        } else if inside {
            dirs.push(line.trim().to_string());
        }
    }
    anyhow::ensure!(!dirs.is_empty(), "{BPF_CLANG} -v -E - listed no system include directories");
    Ok(dirs)
}

/// The selftests Makefile's `INCLUDE_DIR` (vmlinux.h and libbpf's `bpf/` headers in one
/// directory), at the same depth below a directory as upstream's is below the selftests
/// directory: a program's `#include "../../../include/linux/filter.h"` then misses it, as
/// upstream's does, and resolves through the selftests directory to `tools/include`, not to the
/// kernel's own `include/`.
fn selftests_include_dir(includes: &BpfIncludes, kernel: &KernelBuild) -> anyhow::Result<PathBuf> {
    let dir = kernel.objdir.join("bpf/selftests/tools/include");
    std::fs::create_dir_all(&dir)?;
    for (name, target) in [("vmlinux.h", includes.generated.join("vmlinux.h")), ("bpf", includes.libbpf.join("bpf"))] {
        let link = dir.join(name);
        if std::fs::read_link(&link).ok().as_deref() != Some(target.as_path()) {
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&target, &link)?;
        }
    }
    Ok(dir)
}

/// A selftest file's object (its name in the guest, its path), or the compiler's message.
pub type Compiled = Result<(String, PathBuf), String>;

/// Compiles the selftest `files` from the variant's tree, as the selftests Makefile compiles
/// them for test_progs; returns each file's object (name, path), or why it did not compile: one
/// file that does not compile hides nothing else. Objects are kept in the cache under a hash of
/// what makes them (compiler, flags, the file, the tree's patches, vmlinux.h): a later run, or
/// another scenario, reuses them.
pub fn compile_selftests(
    sink: &dyn Sink,
    cache: &Cache,
    source: &KernelSource,
    kernel: &KernelBuild,
    files: &[String],
) -> anyhow::Result<Vec<Compiled>> {
    let includes = bpf_includes(sink, cache, source, kernel)?;
    let include_dir = selftests_include_dir(&includes, kernel)?;
    let vmlinux_h = std::fs::read(include_dir.join("vmlinux.h")).context("reading the selftests' vmlinux.h")?;
    let clang = clang_version()?;
    let out_dir = cache.root().join("selftest-objects");
    std::fs::create_dir_all(&out_dir)?;
    let selftests = kernel.tree.join("tools/testing/selftests/bpf");
    let system = system_includes()?;
    let mut built = Vec::new();
    for file in files {
        let src = kernel.tree.join(PROGS_DIR).join(file);
        anyhow::ensure!(src.is_file(), "upstream: {file}: no {} in {}'s tree", src.display(), kernel.variant);
        // BPF_CFLAGS and CLANG_BPF_BUILD_RULE of the selftests Makefile (test_progs flavour),
        // without -Werror: a newer clang's new warnings must not stop the run.
        // -I$(INCLUDE_DIR) -I$(CURDIR) -I$(APIDIR), in upstream's order.
        let uapi = kernel.tree.join("tools/include/uapi");
        let mut args = words([
            &"-g",
            &"-Wall",
            &"-D__TARGET_ARCH_x86",
            &"-mlittle-endian",
            &"-I",
            &include_dir,
            &"-I",
            &selftests,
            &"-I",
            &uapi,
            &"-Wno-compare-distinct-pointer-types",
        ]);
        for dir in &system {
            args.extend(words([&"-idirafter", dir]));
        }
        args.extend(words([&"-DENABLE_ATOMICS_TESTS", &"-O2", &"--target=bpf", &"-mcpu=v3", &"-c", &src]));
        let text = std::fs::read(&src).with_context(|| format!("reading {}", src.display()))?;
        let joined = args.join(std::ffi::OsStr::new("\0"));
        let key = hash_parts([
            ("clang", clang.as_bytes()),
            ("args", joined.as_encoded_bytes()),
            ("source", &text[..]),
            ("patches", kernel.patch_hash.as_bytes()),
            ("vmlinux.h", &vmlinux_h[..]),
        ]);
        let obj = out_dir.join(format!("{}-{}", &key[..16], object_name(file)));
        if obj.is_file() {
            built.push(Ok((object_name(file), obj)));
            continue;
        }
        sink.phase(&kernel.variant, &format!("compiling upstream {file}"));
        // Written beside, then renamed: an interrupted compile leaves no object to reuse.
        let partial = out_dir.join(format!("{}.{}.partial", &key[..16], std::process::id()));
        args.extend(words([&"-o", &partial]));
        let compiled =
            run_bpf_clang(&args, format_args!("{file} does not compile against {}'s headers", kernel.variant))
                .and_then(|()| std::fs::rename(&partial, &obj).context("keeping the object"));
        let _ = std::fs::remove_file(&partial);
        built.push(compiled.map(|()| (object_name(file), obj)).map_err(|e| format!("{e:#}")));
    }
    Ok(built)
}

/// `bpftool version`'s first line: part of the guest objects' key.
fn bpftool_version(bpftool: &Path) -> anyhow::Result<String> {
    first_line_of(bpftool.as_os_str(), "version")
}

/// `clang --version`'s first line: part of every cached object's key.
fn clang_version() -> anyhow::Result<String> {
    first_line_of(BPF_CLANG.as_ref(), "--version")
}

/// The first line `program arg` writes.
fn first_line_of(program: &std::ffi::OsStr, arg: &str) -> anyhow::Result<String> {
    let out = Command::new(program).arg(arg).output().with_context(|| format!("running {}", program.display()))?;
    Ok(String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dependency_list_names_every_file_after_its_target() {
        let text = "/b/x.bpf.o.1.partial: /src/x.bpf.c /inc/vmlinux.h \\\n  /src/kfuncs.h /odd\\ dir/h.h\n";
        let inputs = depfile_inputs(text);
        let want = ["/src/x.bpf.c", "/inc/vmlinux.h", "/src/kfuncs.h", "/odd dir/h.h"];
        assert_eq!(inputs, want.map(PathBuf::from));
        assert!(depfile_inputs("not a dependency list").is_empty());
    }

    /// With the real clang and bpftool: an object is reused until a header it includes changes, and a
    /// compile that fails leaves the old object and no partial file behind.
    #[test]
    fn an_object_is_compiled_again_only_when_what_it_is_made_of_changes() {
        let dir = tempfile::tempdir().unwrap();
        let (src, header, object) = (dir.path().join("x.bpf.c"), dir.path().join("x.h"), dir.path().join("x.bpf.o"));
        std::fs::write(&header, "#define RET 1\n").unwrap();
        std::fs::write(&src, "#include \"x.h\"\nint f(void) { return RET; }\n").unwrap();
        let tools = clang_version().unwrap();
        let bpftool = crate::host::prereq::bpftool().unwrap();
        let args = words([&"-g", &"-O2", &"-target", &"bpf", &"-c", &src]);
        let recipe = Recipe { tools: &tools, args: &args, bpftool: &bpftool, object: &object };
        assert!(!recipe.is_made());
        recipe.make("x").unwrap();
        assert!(recipe.is_made());
        let made = std::fs::read(&object).unwrap();
        let has = |name: &[u8]| made.windows(name.len()).any(|w| w == name);
        assert!(has(b".BTF\0") && !has(b".debug_info"), "the linked object keeps BTF and drops DWARF");

        std::fs::write(&header, "#define RET 2\n").unwrap();
        assert!(!recipe.is_made(), "an edited header must make the object again");
        recipe.make("x").unwrap();
        assert!(recipe.is_made());
        assert_ne!(std::fs::read(&object).unwrap(), made);
        std::fs::write(&object, b"overwritten").unwrap();
        assert!(!recipe.is_made(), "an object that is not what the recipe made must be made again");
        recipe.make("x").unwrap();
        let other_args = words([&"-O1", &"-target", &"bpf", &"-c", &src]);
        assert!(!Recipe { args: &other_args, ..recipe }.is_made());
        assert!(!Recipe { tools: "another clang", ..recipe }.is_made());

        std::fs::write(&header, "#define RET (\n").unwrap();
        let made = std::fs::read(&object).unwrap();
        let err = recipe.make("x does not compile").unwrap_err().to_string();
        assert!(err.starts_with("x does not compile"), "{err}");
        assert_eq!(std::fs::read(&object).unwrap(), made);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(!left.iter().any(|n| n.to_string_lossy().ends_with(".partial")), "{left:?}");
    }
}
