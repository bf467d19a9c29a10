// SPDX-License-Identifier: GPL-2.0
/*
 * Scenario "throw", cost: tc programs timed with BPF_PROG_TEST_RUN (under icount, the duration
 * is a count of guest instructions per run).
 *
 * - norm_*: normal paths (no exception at run time), accepted by Linux 6.12 as well, to compare
 *   what the exception-unwind variant costs when nothing is thrown.
 * - throw_refsN_*: throw with N task references held (only N = 0 is accepted by 6.12), and
 *   their twins keep_refsN_* which hold the same references and release them normally.
 * - throw_depthD_refR: throw from the D-th frame (main program = frame 1) with R references
 *   held by the main program.
 *
 * The runner's synthetic packet is 64 bytes: "skb->len > 10" is true at run time (throw),
 * "skb->len > 100000" false (no throw); the verifier explores both.
 */
#include "throw_common.h"

#define COOKIE		0xEB9F
#define THROW		10
#define KEEP		100000

/* --- normal paths ------------------------------------------------------------------------ */

/* No bpf_throw in the program at all. */
SEC("tc")
int norm_task_nothrow(struct __sk_buff *skb)
{
	struct task_struct *t = bpf_task_from_pid(1);

	if (!t)
		return 1;
	bpf_task_release(t);
	return 0;
}

/* A bpf_throw that is not taken, with nothing held at it. */
SEC("tc")
int norm_task_throw_unreached(struct __sk_buff *skb)
{
	struct task_struct *t = bpf_task_from_pid(1);

	if (!t)
		return 1;
	bpf_task_release(t);
	if (skb->len > KEEP)
		bpf_throw(COOKIE);
	return 0;
}

/* A reference held across a global subprog that may throw but does not (6.12 accepts this
 * program too: it is the loophole's normal path).
 */
__noinline int norm_global_maybe_throw(int len)
{
	if (len > KEEP)
		bpf_throw(COOKIE);
	return 0;
}

SEC("tc")
int norm_task_global_call(struct __sk_buff *skb)
{
	struct task_struct *t = bpf_task_from_pid(1);
	int ret;

	if (!t)
		return 1;
	ret = norm_global_maybe_throw(skb->len);
	bpf_task_release(t);
	return ret;
}

/* --- throw path: references held --------------------------------------------------------- */

#define ACQ(t)		struct task_struct *t = bpf_task_from_pid(1)
#define REL(t)		do { if (t) bpf_task_release(t); } while (0)

#define DEF_REFS0(name, limit)					\
SEC("tc")							\
int name(struct __sk_buff *skb)					\
{								\
	if (skb->len > (limit))					\
		bpf_throw(COOKIE);				\
	return 0;						\
}

#define DEF_REFS1(name, limit)					\
SEC("tc")							\
int name(struct __sk_buff *skb)					\
{								\
	ACQ(t1);						\
	if (skb->len > (limit))					\
		bpf_throw(COOKIE);				\
	REL(t1);						\
	return 0;						\
}

#define DEF_REFS2(name, limit)					\
SEC("tc")							\
int name(struct __sk_buff *skb)					\
{								\
	ACQ(t1); ACQ(t2);					\
	if (skb->len > (limit))					\
		bpf_throw(COOKIE);				\
	REL(t1); REL(t2);					\
	return 0;						\
}

#define DEF_REFS4(name, limit)					\
SEC("tc")							\
int name(struct __sk_buff *skb)					\
{								\
	ACQ(t1); ACQ(t2); ACQ(t3); ACQ(t4);			\
	if (skb->len > (limit))					\
		bpf_throw(COOKIE);				\
	REL(t1); REL(t2); REL(t3); REL(t4);			\
	return 0;						\
}

#define DEF_REFS8(name, limit)					\
SEC("tc")							\
int name(struct __sk_buff *skb)					\
{								\
	ACQ(t1); ACQ(t2); ACQ(t3); ACQ(t4);			\
	ACQ(t5); ACQ(t6); ACQ(t7); ACQ(t8);			\
	if (skb->len > (limit))					\
		bpf_throw(COOKIE);				\
	REL(t1); REL(t2); REL(t3); REL(t4);			\
	REL(t5); REL(t6); REL(t7); REL(t8);			\
	return 0;						\
}

DEF_REFS0(throw_refs0, THROW)
DEF_REFS1(throw_refs1, THROW)
DEF_REFS2(throw_refs2, THROW)
DEF_REFS4(throw_refs4, THROW)
DEF_REFS8(throw_refs8, THROW)
DEF_REFS0(keep_refs0, KEEP)
DEF_REFS1(keep_refs1, KEEP)
DEF_REFS2(keep_refs2, KEEP)
DEF_REFS4(keep_refs4, KEEP)
DEF_REFS8(keep_refs8, KEEP)

/* --- throw path: frame depth -------------------------------------------------------------- */

static __noinline int depth3(struct __sk_buff *skb)
{
	if (skb->len > THROW)
		bpf_throw(COOKIE);
	return 3;
}

static __noinline int depth2_to3(struct __sk_buff *skb)
{
	return depth3(skb) + 2;
}

static __noinline int depth2(struct __sk_buff *skb)
{
	if (skb->len > THROW)
		bpf_throw(COOKIE);
	return 2;
}

/* Every depth program takes a task reference; with refs = 0 it drops it before throwing. */
#define DEF_DEPTH1(name, refs)					\
SEC("tc")							\
int name(struct __sk_buff *skb)					\
{								\
	ACQ(t1);						\
	if (!(refs)) {						\
		REL(t1);					\
		t1 = NULL;					\
	}							\
	if (skb->len > THROW)					\
		bpf_throw(COOKIE);				\
	REL(t1);						\
	return 0;						\
}

#define DEF_DEPTH(name, callee, refs)				\
SEC("tc")							\
int name(struct __sk_buff *skb)					\
{								\
	int ret;						\
	ACQ(t1);						\
	if (!(refs)) {						\
		REL(t1);					\
		t1 = NULL;					\
	}							\
	ret = callee(skb);					\
	REL(t1);						\
	return ret;						\
}

DEF_DEPTH1(throw_depth1_refs0, 0)
DEF_DEPTH1(throw_depth1_refs1, 1)
DEF_DEPTH(throw_depth2_refs0, depth2, 0)
DEF_DEPTH(throw_depth2_refs1, depth2, 1)
DEF_DEPTH(throw_depth3_refs0, depth2_to3, 0)
DEF_DEPTH(throw_depth3_refs1, depth2_to3, 1)

char LICENSE[] SEC("license") = "GPL";
