// SPDX-License-Identifier: GPL-2.0
/*
 * Programs holding 1, 2, 8 and 32 task references at once (bpf_task_from_pid
 * then bpf_task_release, N pairs), as tc and as syscall programs, to measure
 * the cost of an acquire/release pair with and without runtime tracking.
 * max_acquired_refs (bpf_prog_info, runtime-tracking variant) must be N.
 *
 * Also: a bpf_obj_new/bpf_obj_drop pair
 * (tc) and a bpf_cpumask_create/bpf_cpumask_release pair (syscall only:
 * cpumask kfuncs are not available to tc programs), and three loops of 1000
 * empty iterations (tc), with bpf_iter_num, bpf_loop() and may_goto, for
 * the cost per iteration of the iterator next hook and of the watchdog's
 * checks.
 *
 * Every reference program returns 0 when all acquisitions succeeded,
 * otherwise the number of failed ones; the loops return their iteration
 * count.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "kfuncs.h"

#define RT_ACQ(i)	struct task_struct *t##i = bpf_task_from_pid(1);
#define RT_REL(i)			\
	do {				\
		if (t##i)		\
			bpf_task_release(t##i); \
		else			\
			fails++;	\
	} while (0);

#define RT_X1(M)	M(0)
#define RT_X2(M)	M(0) M(1)
#define RT_X8(M)	M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7)
#define RT_X32(M)	RT_X8(M) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15) \
			M(16) M(17) M(18) M(19) M(20) M(21) M(22) M(23) \
			M(24) M(25) M(26) M(27) M(28) M(29) M(30) M(31)

#define RT_HOLD(n)				\
static __always_inline int rt_hold##n(void)	\
{						\
	int fails = 0;				\
	RT_X##n(RT_ACQ)				\
	RT_X##n(RT_REL)				\
	return fails;				\
}						\
SEC("tc")					\
int rt_hold##n##_tc(struct __sk_buff *skb)	\
{						\
	return rt_hold##n();			\
}						\
SEC("syscall")					\
int rt_hold##n##_sys(void *ctx)			\
{						\
	return rt_hold##n();			\
}

RT_HOLD(1)
RT_HOLD(2)
RT_HOLD(8)
RT_HOLD(32)

struct rt_obj {
	__u64 a;
	__u64 b;
};

SEC("tc")
int rt_obj_tc(struct __sk_buff *skb)
{
	struct rt_obj *o = bpf_obj_new(struct rt_obj);

	if (!o)
		return 1;
	o->a = 1;
	bpf_obj_drop(o);
	return 0;
}

SEC("syscall")
int rt_cpumask_sys(void *ctx)
{
	struct bpf_cpumask *m = bpf_cpumask_create();

	if (!m)
		return 1;
	bpf_cpumask_release(m);
	return 0;
}

SEC("tc")
int rt_iter1k_tc(struct __sk_buff *skb)
{
	struct bpf_iter_num it;
	int *v, n = 0;

	bpf_iter_num_new(&it, 0, 1000);
	while ((v = bpf_iter_num_next(&it)))
		n++;
	bpf_iter_num_destroy(&it);
	return n;
}

static int rt_loop_cb(__u32 i, void *data)
{
	return 0;
}

SEC("tc")
int rt_loop1k_tc(struct __sk_buff *skb)
{
	return bpf_loop(1000, rt_loop_cb, NULL, 0);
}

/* A may_goto loop of 1000 iterations: the may_goto count (and a stop check) per iteration */
SEC("tc")
int rt_maygoto1k_tc(struct __sk_buff *skb)
{
	int n = 0;

	while (n < 1000 && can_loop)
		n++;
	return n;
}

char LICENSE[] SEC("license") = "GPL";
