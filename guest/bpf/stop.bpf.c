// SPDX-License-Identifier: GPL-2.0
/*
 * The programs of scenarios/stop.yaml: the same programs for every design, each holding
 * references when the stop contract's budget (kernel.bpf_watchdog_budget_ns) expires, in a loop
 * of STOP_LOOPS iterations that takes far longer than the budget.
 *
 * Each returns its iteration count (STOP_LOOPS when nothing stopped it; may_goto_held: may_goto's
 * own limit, 8M), or a negative value
 * when it could not take what it means to hold, so that a run to its end is recognisable. What
 * a stopped program returns is the design's business; the scenario checks that the test run
 * fails with ECANCELED and that nothing leaked (pid 1's task references, cpumask references,
 * kernel warnings).
 *
 *   tasks_refs1, tasks_refs8: 1 and 8 task references held across a bpf_for loop (one fits in
 *       a callee-saved register; eight cannot, so most live in stack slots): the difference of
 *       their stop latencies is the cleanup's cost per reference;
 *   cpumask_held:       a bpf_cpumask across a bpf_for loop;
 *   obj_holding_task:   a bpf_obj_new object that owns a task (a kptr field) across the loop;
 *   frames2, frames3:   a task held in each of two and three frames (static subprograms), the
 *       loop in the innermost one;
 *   bpf_loop_held:      a task held across bpf_loop();
 *   may_goto_held:      a task held across a may_goto loop (can_loop);
 *   kptr_stashed:       a task moved into a map value with bpf_kptr_xchg(), and a task held,
 *       across the loop; the stashed one is taken back and released after it;
 *   rcu_section:        a task held inside bpf_rcu_read_lock() across the loop;
 *   dynptr_held:        a ring buffer record reserved as a dynptr across the loop, discarded
 *       after it.
 *
 * The tail call is in stop_tail_call.bpf.c: libbpf fills a program array only when its target
 * is loaded too, and the others are loaded one at a time. No cgroup: the one a program can take
 * without a cgroup set up for it, the root (bpf_cgroup_from_id(1)), is not reference counted
 * (CSS_NO_REF), so holding it would prove nothing.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "kfuncs.h"

extern void bpf_rcu_read_lock(void) __ksym;
extern void bpf_rcu_read_unlock(void) __ksym;

#include "stop.h"

SEC("syscall")
int tasks_refs1(void *ctx)
{
	return task_around(spin);
}

SEC("syscall")
int tasks_refs8(void *ctx)
{
	struct task_struct *t[8] = {};
	int i, n = -1;

	for (i = 0; i < 8; i++) {
		t[i] = bpf_task_from_pid(1);
		if (!t[i])
			goto out;
	}
	n = spin();
out:
	for (i = 0; i < 8; i++)
		if (t[i])
			bpf_task_release(t[i]);
	return n;
}

SEC("syscall")
int cpumask_held(void *ctx)
{
	struct bpf_cpumask *m;
	int n;

	m = bpf_cpumask_create();
	if (!m)
		return -1;
	n = spin();
	bpf_cpumask_release(m);
	return n;
}

struct task_box {
	struct task_struct __kptr *task;
	__u64 count;
};

SEC("syscall")
int obj_holding_task(void *ctx)
{
	struct task_struct *t;
	struct task_box *box;
	int n;

	box = bpf_obj_new(struct task_box);
	if (!box)
		return -1;
	t = bpf_task_from_pid(1);
	if (!t) {
		bpf_obj_drop(box);
		return -2;
	}
	t = bpf_kptr_xchg(&box->task, t);
	if (t)
		bpf_task_release(t);

	box->count = spin();

	n = box->count;
	/* dropping the object releases the task it owns */
	bpf_obj_drop(box);
	return n;
}

static __noinline int hold_and_spin(void)
{
	return task_around(spin);
}

static __noinline int hold_and_call(void)
{
	return task_around(hold_and_spin);
}

SEC("syscall")
int frames2(void *ctx)
{
	return task_around(hold_and_spin);
}

SEC("syscall")
int frames3(void *ctx)
{
	return task_around(hold_and_call);
}

struct loop_ctx {
	int n;
};

static int count_one(__u32 i, void *data)
{
	struct loop_ctx *lc = data;

	lc->n++;
	return 0;
}

SEC("syscall")
int bpf_loop_held(void *ctx)
{
	struct loop_ctx lc = {};
	struct task_struct *t;

	t = bpf_task_from_pid(1);
	if (!t)
		return -1;
	bpf_loop(STOP_LOOPS, count_one, &lc, 0);
	bpf_task_release(t);
	return lc.n;
}

SEC("syscall")
int may_goto_held(void *ctx)
{
	struct task_struct *t;
	int n = 0;

	t = bpf_task_from_pid(1);
	if (!t)
		return -1;
	/* may_goto's own budget ends the loop after 8M iterations */
	while (can_loop)
		n++;
	bpf_task_release(t);
	return n;
}


SEC("syscall")
int kptr_stashed(void *ctx)
{
	return stash_and_spin();
}

SEC("syscall")
int rcu_section(void *ctx)
{
	struct task_struct *t;
	int n = -1;

	bpf_rcu_read_lock();
	t = bpf_task_from_pid(1);
	if (t) {
		n = spin();
		bpf_task_release(t);
	}
	bpf_rcu_read_unlock();
	return n;
}

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} records SEC(".maps");

SEC("syscall")
int dynptr_held(void *ctx)
{
	struct bpf_dynptr record;
	int n = -1;

	if (!bpf_ringbuf_reserve_dynptr(&records, 64, 0, &record))
		n = spin();
	/* a reservation must be submitted or discarded, even a failed one */
	bpf_ringbuf_discard_dynptr(&record, 0);
	return n;
}

char LICENSE[] SEC("license") = "GPL";
