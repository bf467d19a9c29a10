// SPDX-License-Identifier: GPL-2.0
/*
 * Scenario "throw", leak detection.
 *
 * rcu_users_pid1 returns pid 1's task_struct rcu_users (read with CO-RE). A live task has 2;
 * the program's own reference makes it 3, and every reference leaked by a program adds one.
 *
 * count_cpumask_create and count_cpumask_release run on every bpf_cpumask_create() and
 * bpf_cpumask_release() call; the exception unwinder releases cpumasks through
 * bpf_cpumask_release_dtor(), which calls bpf_cpumask_release(). The loader attaches them and,
 * with kernel.bpf_stats_enabled=1, reads how often each ran from bpf_prog_info.run_cnt: a
 * difference between the two counts is a leak. (No maps or global variables: libbpf >= 1.4
 * creates map placeholder fds with memfd_create(), which the project's kernel config, without
 * CONFIG_MEMFD_CREATE, does not provide, so objects with maps fail to open.)
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

SEC("fexit/bpf_cpumask_create")
int BPF_PROG(count_cpumask_create, struct bpf_cpumask *ret)
{
	return 0;
}

SEC("fentry/bpf_cpumask_release")
int BPF_PROG(count_cpumask_release, struct bpf_cpumask *cpumask)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
