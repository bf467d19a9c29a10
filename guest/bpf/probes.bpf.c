// SPDX-License-Identifier: GPL-2.0
/*
 * Probes the runner uses around a scenario's programs to see what they leave behind.
 *
 * task_rcu_users: pid 1's task_struct reference count (rcu_users), without the reference this
 * probe takes to read it. A live task has 2; every reference a program leaked adds one.
 *
 * count_cpumask_*: count the cpumask references taken (bpf_cpumask_create, bpf_cpumask_acquire)
 * and dropped (bpf_cpumask_release, which the exception unwinder reaches through
 * bpf_cpumask_release_dtor). Attached only around an untimed run: a trampoline on a kfunc
 * would add its cost to every sample.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "kfuncs.h"

__u64 cpumask_acquired;
__u64 cpumask_released;

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

SEC("fexit/bpf_cpumask_create")
int BPF_PROG(count_cpumask_create, struct bpf_cpumask *ret)
{
	if (ret)
		__sync_fetch_and_add(&cpumask_acquired, 1);
	return 0;
}

SEC("fexit/bpf_cpumask_acquire")
int BPF_PROG(count_cpumask_acquire, struct bpf_cpumask *cpumask, struct bpf_cpumask *ret)
{
	if (ret)
		__sync_fetch_and_add(&cpumask_acquired, 1);
	return 0;
}

SEC("fentry/bpf_cpumask_release")
int BPF_PROG(count_cpumask_release, struct bpf_cpumask *cpumask)
{
	if (cpumask)
		__sync_fetch_and_add(&cpumask_released, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
