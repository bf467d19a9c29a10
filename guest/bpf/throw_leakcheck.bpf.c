// SPDX-License-Identifier: GPL-2.0
/*
 * Scenario "throw", leak detection.
 *
 * rcu_users_pid1 returns pid 1's task_struct rcu_users (read with CO-RE). A live task has 2;
 * the program's own reference makes it 3, and every reference leaked by a program adds one.
 *
 * cpumask_created / cpumask_released count bpf_cpumask_create() results and
 * bpf_cpumask_release() calls (the exception unwinder releases cpumasks through
 * bpf_cpumask_release_dtor(), which calls bpf_cpumask_release()). The two tracing programs
 * must be attached by the loader; a difference between the counters is a leak.
 */
#include "kfuncs.h"
#include <bpf/bpf_tracing.h>

SEC("syscall")
int rcu_users_pid1(void *ctx)
{
	struct task_struct *t = bpf_task_from_pid(1);
	int users;

	if (!t)
		return -1;
	users = t->rcu_users.refs.counter;
	bpf_task_release(t);
	return users;
}

__u64 cpumask_created;
__u64 cpumask_released;

SEC("fexit/bpf_cpumask_create")
int BPF_PROG(count_cpumask_create, struct bpf_cpumask *ret)
{
	if (ret)
		__sync_fetch_and_add(&cpumask_created, 1);
	return 0;
}

SEC("fentry/bpf_cpumask_release")
int BPF_PROG(count_cpumask_release, struct bpf_cpumask *cpumask)
{
	__sync_fetch_and_add(&cpumask_released, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
