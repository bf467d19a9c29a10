/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared by the throw_*.bpf.c programs (scenario "throw"): the objects they hold when they throw.
 *
 * struct holder is a bpf_obj_new() object that carries a referenced task kptr. When the object
 * is released (bpf_obj_drop, or the exception unwinder), the kernel drops the task reference
 * with it, so a leaked object shows up as a leaked task reference (`checks: [task_refs]`).
 */
#ifndef BPFH_THROW_COMMON_H
#define BPFH_THROW_COMMON_H

#include "kfuncs.h"
#include <bpf/bpf_tracing.h>

#ifndef __kptr
#define __kptr __attribute__((btf_type_tag("kptr")))
#endif

struct holder {
	struct task_struct __kptr *task;
	__u64 pad;
};

/* A bpf_obj_new() object holding a reference to pid 1, or NULL. */
static __always_inline struct holder *holder_new(void)
{
	struct task_struct *t;
	struct holder *h;

	h = bpf_obj_new(struct holder);
	if (!h)
		return NULL;
	t = bpf_task_from_pid(1);
	if (t) {
		t = bpf_kptr_xchg(&h->task, t);
		if (t)
			bpf_task_release(t);
	}
	return h;
}

#endif /* BPFH_THROW_COMMON_H */
