// SPDX-License-Identifier: GPL-2.0
/*
 * Seed 000's three demonstration cases as syscall programs, for the
 * runtime-tracking variant's table trace (bpf_ref trace events):
 *
 *   rt_simple: a task (pid 1) and a cpumask, released in reverse order;
 *   rt_branch: a second task (pid 2) taken on a branch that depends on a
 *              value read at run time;
 *   rt_loop:   pid 1 held while a bpf_iter_num loop over [1, 3) takes and
 *              drops pid 1 and pid 2, so the same object is held twice.
 *
 * Each returns a value that shows which path ran (see the comments); all
 * of them load and run on any 6.12 kernel.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "kfuncs.h"

/* returns 0 */
SEC("syscall")
int rt_simple(void *ctx)
{
	struct task_struct *t;
	struct bpf_cpumask *m;

	t = bpf_task_from_pid(1);
	if (!t)
		return 1;
	m = bpf_cpumask_create();
	if (!m) {
		bpf_task_release(t);
		return 2;
	}
	bpf_cpumask_release(m);
	bpf_task_release(t);
	return 0;
}

/* returns 2, the pid of the task taken on the branch */
SEC("syscall")
int rt_branch(void *ctx)
{
	struct task_struct *t1, *t2;
	int ret = 0;

	t1 = bpf_task_from_pid(1);
	if (!t1)
		return -1;
	if (t1->pid == 1) {
		t2 = bpf_task_from_pid(2);
		if (t2) {
			ret = t2->pid;
			bpf_task_release(t2);
		}
	}
	bpf_task_release(t1);
	return ret;
}

/* returns 2, the number of tasks taken in the loop */
SEC("syscall")
int rt_loop(void *ctx)
{
	struct task_struct *held, *t;
	struct bpf_iter_num it;
	int *v, n = 0;

	held = bpf_task_from_pid(1);
	if (!held)
		return -1;
	bpf_iter_num_new(&it, 1, 3);
	while ((v = bpf_iter_num_next(&it))) {
		t = bpf_task_from_pid(*v);
		if (!t)
			continue;
		n++;
		bpf_task_release(t);
	}
	bpf_iter_num_destroy(&it);
	bpf_task_release(held);
	return n;
}

char LICENSE[] SEC("license") = "GPL";
