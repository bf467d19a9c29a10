/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Prototypes of the kfuncs the scenarios call.
 *
 * Debian's bpftool 7.1 dumps a vmlinux.h without kfunc prototypes, so they are declared here,
 * with the kernel's own types (from vmlinux.h): libbpf checks each prototype against the
 * kernel's BTF, and a forward-declared struct fails that check.
 *
 * Every declaration is a plain (compatible) redeclaration, so this header may be combined with
 * a vmlinux.h that does carry kfunc prototypes, or with bpf_helpers.h (which declares the
 * bpf_iter_num_* kfuncs itself) in any order. The macros are the kernel selftests' own
 * (tools/testing/selftests/bpf/bpf_experimental.h), guarded against redefinition.
 */
#ifndef BPFH_KFUNCS_H
#define BPFH_KFUNCS_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#ifndef __ksym
#define __ksym __attribute__((section(".ksyms")))
#endif
#ifndef __weak
#define __weak __attribute__((weak))
#endif

/* Tasks: acquire/release a reference to a task_struct. */
extern struct task_struct *bpf_task_from_pid(s32 pid) __ksym;
extern struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;

/* cpumasks (registered for tracing, struct_ops and syscall programs only). */
extern struct bpf_cpumask *bpf_cpumask_create(void) __ksym;
extern void bpf_cpumask_release(struct bpf_cpumask *cpumask) __ksym;

/* Open-coded numeric iterator; declared exactly as libbpf's bpf_helpers.h does (weak). */
extern int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end) __weak __ksym;
extern int *bpf_iter_num_next(struct bpf_iter_num *it) __weak __ksym;
extern void bpf_iter_num_destroy(struct bpf_iter_num *it) __weak __ksym;

/* Local objects (bpf_obj_new/bpf_obj_drop); 'meta' is rewritten by the verifier. */
extern void *bpf_obj_new_impl(__u64 local_type_id, void *meta) __ksym;
extern void bpf_obj_drop_impl(void *kptr, void *meta) __ksym;

#ifndef bpf_obj_new
#define bpf_obj_new(type) ((type *)bpf_obj_new_impl(bpf_core_type_id_local(type), NULL))
#endif
#ifndef bpf_obj_drop
#define bpf_obj_drop(kptr) bpf_obj_drop_impl(kptr, NULL)
#endif

/* Exceptions: bpf_throw needs CONFIG_UNWINDER_ORC=y in the guest kernel (x86-64 JIT). */
extern void bpf_throw(u64 cookie) __ksym;

#ifndef can_loop
/*
 * may_goto: true until the kernel's iteration budget for the loop runs out (8M in 6.12), so the
 * verifier accepts the loop without bounding it; clang >= 19 assembles the mnemonic.
 */
#define can_loop                                                     \
	({                                                           \
		__label__ l_break, l_continue;                       \
		bool ret = true;                                     \
		asm volatile goto("may_goto %l[l_break]" :::: l_break); \
		goto l_continue;                                     \
	l_break:                                                     \
		ret = false;                                         \
	l_continue:;                                                 \
		ret;                                                 \
	})
#endif

#ifndef __exception_cb
/* Marks the exception callback of a main program: SEC("tc") __exception_cb(cb) int prog(...) */
#define __exception_cb(name) __attribute__((btf_decl_tag("exception_callback:" #name)))
#endif

#endif /* BPFH_KFUNCS_H */
