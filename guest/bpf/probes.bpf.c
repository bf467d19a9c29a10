// SPDX-License-Identifier: GPL-2.0
/*
 * Probes the runner uses around a scenario's programs to see what they leave behind.
 *
 * task_rcu_users: pid 1's task_struct reference count (rcu_users), without the reference this
 * probe takes to read it. A live task has 2; every reference a program leaked adds one.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "kfuncs.h"

SEC("syscall")
int task_rcu_users(void *ctx)
{
	struct task_struct *t = bpf_task_from_pid(1);
	int users;

	if (!t)
		return -1;
	users = t->rcu_users.refs.counter;
	bpf_task_release(t);
	return users - 1;
}

char LICENSE[] SEC("license") = "GPL";
