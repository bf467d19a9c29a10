//! Upstream's own annotated selftest programs (`tools/testing/selftests/bpf/progs/*.c` in each
//! variant's tree), checked the way upstream's `test_loader.c` checks them.
//!
//! Each file is compiled with the tree's own headers and flags (as the selftests Makefile does;
//! `guest::objects`), its programs are read from the object's ELF symbols and their annotations
//! from the BTF decl tags `bpf_misc.h` writes (`object`). Every program becomes one case
//! (`annotations`), loaded alone in the guest; a case with `__retval` on a type the runner can
//! run (tc, syscall) also runs once as test_loader runs it. A case the harness or the guest
//! cannot check is skipped with the reason, never passed; `verdict::selftest` judges the rest.
//!
//! A variant may declare where it knowingly differs from upstream (`upstream_differences` in its
//! `variant.yaml`); a declared difference must happen, and any other difference fails.

pub mod annotations;
pub mod object;

/// Where the selftest programs live in a kernel tree.
pub const PROGS_DIR: &str = "tools/testing/selftests/bpf/progs";
