/* SPDX-License-Identifier: GPL-2.0 */
/* What the stop scenario's programs share: the loop they hold references across, the stash. */
#ifndef BPFH_STOP_H
#define BPFH_STOP_H

#include "kfuncs.h"

/* 2^20: tens of millions of guest instructions, against a budget of about a million */
#define STOP_LOOPS (1 << 20)

static __always_inline int spin(void)
{
	struct bpf_iter_num it;
	int *v, n = 0;

	bpf_iter_num_new(&it, 0, STOP_LOOPS);
	while ((v = bpf_iter_num_next(&it)))
		n++;
	bpf_iter_num_destroy(&it);
	return n;
}

/*
 * pid 1's task held across inner(), inlined with it (so the task lives in the caller's frame):
 * what inner() returns, or -1 without the task
 */
static __always_inline int task_around(int (*inner)(void))
{
	struct task_struct *t;
	int n;

	t = bpf_task_from_pid(1);
	if (!t)
		return -1;
	n = inner();
	bpf_task_release(t);
	return n;
}

struct stash {
	struct task_struct __kptr *task;
};

/* one per object that includes this header */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stash);
} stash_map SEC(".maps");

/*
 * A task held, and another moved into stash_map with bpf_kptr_xchg(), across spin(); the stashed
 * one is taken back and released after it. The iteration count, or -1, -2 when the map value or
 * the held task cannot be had.
 */
static __always_inline int stash_and_spin(void)
{
	struct task_struct *t, *held;
	struct stash *s;
	__u32 key = 0;
	int n;

	s = bpf_map_lookup_elem(&stash_map, &key);
	if (!s)
		return -1;
	held = bpf_task_from_pid(1);
	if (!held)
		return -2;
	t = bpf_task_from_pid(1);
	if (t) {
		t = bpf_kptr_xchg(&s->task, t);
		if (t)
			bpf_task_release(t);
	}

	n = spin();

	t = bpf_kptr_xchg(&s->task, NULL);
	if (t)
		bpf_task_release(t);
	bpf_task_release(held);
	return n;
}

#endif /* BPFH_STOP_H */
