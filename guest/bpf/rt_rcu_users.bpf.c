// SPDX-License-Identifier: GPL-2.0
/*
 * Read task->rcu_users (CO-RE) to see leaked task references: a live task
 * has rcu_users == 2, and each reference a program leaks adds one. The
 * reader holds a reference of its own while reading, so it returns
 * 2 + 1 + leaked references: 3 on a clean system.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "kfuncs.h"

static __always_inline int read_rcu_users(s32 pid)
{
	struct task_struct *t = bpf_task_from_pid(pid);
	int users;

	if (!t)
		return -1;
	users = t->rcu_users.refs.counter;
	bpf_task_release(t);
	return users;
}

/* rcu_users of pid 1 (init), as returned value */
SEC("syscall")
int rt_rcu_users(void *ctx)
{
	return read_rcu_users(1);
}

/* rcu_users of pid 2 (kthreadd), as returned value */
SEC("syscall")
int rt_rcu_users_pid2(void *ctx)
{
	return read_rcu_users(2);
}

char LICENSE[] SEC("license") = "GPL";
