// SPDX-License-Identifier: GPL-2.0
/*
 * Programs that run long while holding references, for the
 * runtime-tracking variant's watchdog (kernel.bpf_watchdog_budget_ns).
 *
 * Each one returns the number of loop iterations it ran: RT_WD_LOOPS (2^20) when
 * nothing stopped it. A cancelled run ends with -ECANCELED from
 * BPF_PROG_TEST_RUN; the references must be back to where they were (the
 * scenario's task_refs and cpumasks checks).
 *
 *   rt_wd_iter: tasks pid 1 and 2 and a cpumask held across a bpf_iter_num
 *               loop of RT_WD_LOOPS iterations;
 *   rt_wd_loop: the same held across bpf_loop(RT_WD_LOOPS, ...);
 *   rt_wd_may_goto: the same held across a may_goto loop (can_loop), which
 *               ends after may_goto's own 8M iterations (returns 8388608);
 *   rt_wd_acq:  a bpf_iter_num loop that takes and drops pid 1 in each
 *               iteration while holding pid 2 (after a cancellation the
 *               acquisition returns NULL: bpf_ref_acquire ... refused);
 *   rt_wd_obj:  a task and a bpf_obj_new object held across the loop; the
 *               iteration count is stored into the object after the loop
 *               and read back from it before it is dropped;
 *   rt_wd_tc:   a tc program holding pid 1 across the loop;
 *   rt_wd_reacq: a cpumask held across the loop, then written to and
 *               passed to bpf_cpumask_acquire() (which is not KF_RET_NULL,
 *               so it is still called after a cancellation): the mask must
 *               still be referenced then;
 *   rt_wd_reacq_ref: the same, but returns the mask's refcount seen after
 *               bpf_cpumask_acquire() instead of the iteration count: 2,
 *               whether cancelled or not (a refcount_t saturated by an
 *               addition on 0 shows as 3221225472, and as a refcount_t
 *               warning on the console).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "kfuncs.h"

/* 2^20: about 17M guest instructions, against a budget of 1M */
#define RT_WD_LOOPS (1 << 20)

struct rt_wd_obj {
	__u64 value;
	__u64 pad;
};

struct rt_wd_loop_ctx {
	__u32 n;
};

static __always_inline int spin_iter(void)
{
	struct bpf_iter_num it;
	int *v, n = 0;

	bpf_iter_num_new(&it, 0, RT_WD_LOOPS);
	while ((v = bpf_iter_num_next(&it)))
		n++;
	bpf_iter_num_destroy(&it);
	return n;
}

static int rt_wd_cb(__u32 i, void *data)
{
	struct rt_wd_loop_ctx *lc = data;

	lc->n++;
	return 0;
}

static __always_inline int spin_bpf_loop(void)
{
	struct rt_wd_loop_ctx lc = {};

	bpf_loop(RT_WD_LOOPS, rt_wd_cb, &lc, 0);
	return lc.n;
}

static __always_inline int spin_may_goto(void)
{
	int n = 0;

	while (can_loop)
		n++;
	return n;
}

/*
 * Tasks pid 1 and 2 and a cpumask held across spin(), inlined with it: its
 * iteration count, or -1 when a task cannot be taken.
 */
static __always_inline int hold_across(int (*spin)(void))
{
	struct task_struct *t1, *t2;
	struct bpf_cpumask *m;
	int n;

	t1 = bpf_task_from_pid(1);
	if (!t1)
		return -1;
	t2 = bpf_task_from_pid(2);
	if (!t2) {
		bpf_task_release(t1);
		return -1;
	}
	m = bpf_cpumask_create();

	n = spin();

	if (m)
		bpf_cpumask_release(m);
	bpf_task_release(t2);
	bpf_task_release(t1);
	return n;
}

SEC("syscall")
int rt_wd_iter(void *ctx)
{
	return hold_across(spin_iter);
}

SEC("syscall")
int rt_wd_loop(void *ctx)
{
	return hold_across(spin_bpf_loop);
}

SEC("syscall")
int rt_wd_may_goto(void *ctx)
{
	return hold_across(spin_may_goto);
}

SEC("syscall")
int rt_wd_acq(void *ctx)
{
	struct task_struct *held, *t;
	struct bpf_iter_num it;
	int *v, n = 0;

	held = bpf_task_from_pid(2);
	if (!held)
		return -1;
	bpf_iter_num_new(&it, 0, RT_WD_LOOPS);
	while ((v = bpf_iter_num_next(&it))) {
		n++;
		t = bpf_task_from_pid(1);
		if (!t)
			continue;
		bpf_task_release(t);
	}
	bpf_iter_num_destroy(&it);
	bpf_task_release(held);
	return n;
}

SEC("syscall")
int rt_wd_obj(void *ctx)
{
	struct task_struct *t;
	struct rt_wd_obj *o;
	int n;

	t = bpf_task_from_pid(1);
	if (!t)
		return -1;
	o = bpf_obj_new(struct rt_wd_obj);
	if (!o) {
		bpf_task_release(t);
		return -1;
	}

	n = spin_iter();

	/* the object must still be ours after a cancellation */
	o->value = n;
	n = o->value;
	bpf_obj_drop(o);
	bpf_task_release(t);
	return n;
}

extern struct bpf_cpumask *bpf_cpumask_acquire(struct bpf_cpumask *cpumask) __ksym;
extern void bpf_cpumask_set_cpu(__u32 cpu, struct bpf_cpumask *cpumask) __ksym;

static __always_inline int reacq(int *usage)
{
	struct bpf_cpumask *m, *m2;
	int n;

	m = bpf_cpumask_create();
	if (!m)
		return -1;

	n = spin_iter();

	bpf_cpumask_set_cpu(0, m);
	m2 = bpf_cpumask_acquire(m);
	*usage = m2->usage.refs.counter;
	bpf_cpumask_release(m2);
	bpf_cpumask_release(m);
	return n;
}

SEC("syscall")
int rt_wd_reacq(void *ctx)
{
	int usage;

	return reacq(&usage);
}

SEC("syscall")
int rt_wd_reacq_ref(void *ctx)
{
	int usage = -1;

	if (reacq(&usage) < 0)
		return -1;
	return usage;
}

SEC("tc")
int rt_wd_tc(struct __sk_buff *skb)
{
	struct task_struct *t;
	int n;

	t = bpf_task_from_pid(1);
	if (!t)
		return -1;
	n = spin_iter();
	bpf_task_release(t);
	return n;
}

char LICENSE[] SEC("license") = "GPL";
