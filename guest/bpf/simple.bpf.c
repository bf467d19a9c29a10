// SPDX-License-Identifier: GPL-2.0
/* Acquire and release a task reference: the smallest program that uses kfuncs. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "kfuncs.h"

static __always_inline int task_ref(void)
{
	struct task_struct *t = bpf_task_from_pid(1);

	if (!t)
		return 1;
	bpf_task_release(t);
	return 0;
}

SEC("tc")
int task_ref_tc(struct __sk_buff *skb)
{
	return task_ref();
}

SEC("syscall")
int task_ref_syscall(void *ctx)
{
	return task_ref();
}

char LICENSE[] SEC("license") = "GPL";
