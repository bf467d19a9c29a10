// SPDX-License-Identifier: GPL-2.0
/*
 * Scenario "throw", the cases review asked for (issue 11): layouts of held references that the
 * descriptors must describe exactly once. Each program throws on the runner's synthetic packet
 * (skb->len is 64 > 10); pid 1's task reference count shows a leak or a double release
 * (`checks: [task_refs]`; a double release also warns on the console).
 */
#include "throw_common.h"

/* The same task in R6 and in a stack slot: recorded once (the register), released once. */
SEC("tc")
int throw_same_ref_reg_and_slot(struct __sk_buff *skb)
{
	struct task_struct *t = bpf_task_from_pid(1);
	struct task_struct *volatile copy;

	if (!t)
		return 1;
	copy = t;
	if (skb->len > 10)
		bpf_throw(0x21);
	bpf_task_release(copy);
	return 0;
}

/* The same task in two stack slots only: released once. */
SEC("tc")
int throw_same_ref_two_slots(struct __sk_buff *skb)
{
	struct task_struct *volatile a, *volatile b;

	a = bpf_task_from_pid(1);
	if (!a)
		return 1;
	b = a;
	if (skb->len > 10)
		bpf_throw(0x22);
	bpf_task_release(b);
	return 0;
}

/* A slot zeroed on one path and holding an object on the other: one descriptor, the object
 * released when present (here: skb->len is 64, so it is).
 */
SEC("tc")
int throw_zero_slot_or_object(struct __sk_buff *skb)
{
	struct holder *volatile p = NULL;

	if (skb->len > 32)
		p = holder_new();
	if (skb->len > 10)
		bpf_throw(0x23);
	if (p)
		bpf_obj_drop(p);
	return 0;
}

/* Two throw sites in one callee: both use the caller's one descriptor at the call. */
static __noinline int two_throws(struct __sk_buff *skb)
{
	if (skb->len > 100)
		bpf_throw(0x24);
	if (skb->len > 10)
		bpf_throw(0x25);
	return 0;
}

SEC("tc")
int throw_two_sites_one_callee(struct __sk_buff *skb)
{
	struct task_struct *t = bpf_task_from_pid(1);
	int ret;

	if (!t)
		return 1;
	ret = two_throws(skb);
	bpf_task_release(t);
	return ret;
}

/* Three frames: the outer one holds tasks in callee-saved registers across a middle frame that
 * uses few registers, which passes them through unsaved to the frame that throws.
 */
static __noinline int throw_inner(struct __sk_buff *skb)
{
	struct task_struct *t = bpf_task_from_pid(1);

	if (skb->len > 10)
		bpf_throw(0x26);
	if (t)
		bpf_task_release(t);
	return 0;
}

static __noinline int pass_through(struct __sk_buff *skb)
{
	return throw_inner(skb);
}

SEC("tc")
int throw_outer_regs_through_middle(struct __sk_buff *skb)
{
	struct task_struct *a = bpf_task_from_pid(1);
	struct task_struct *b = bpf_task_from_pid(1);
	struct task_struct *c = bpf_task_from_pid(1);
	int ret;

	ret = pass_through(skb);
	if (a)
		bpf_task_release(a);
	if (b)
		bpf_task_release(b);
	if (c)
		bpf_task_release(c);
	return ret;
}

/* A global subprog that calls a global subprog that throws, while the main program holds a
 * task: the call sites of both global calls are throw sites.
 */
__noinline int global_throws(struct __sk_buff *skb)
{
	if (skb && skb->len > 10)
		bpf_throw(0x27);
	return 0;
}

__noinline int global_calls_global(struct __sk_buff *skb)
{
	return global_throws(skb) + 1;
}

SEC("tc")
int throw_global_calls_global(struct __sk_buff *skb)
{
	struct task_struct *t = bpf_task_from_pid(1);
	int ret;

	if (!t)
		return 1;
	ret = global_calls_global(skb);
	bpf_task_release(t);
	return ret;
}

/* A global subprog that writes the packet directly, then throws. */
__noinline int write_then_throw(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	if (data + 1 > data_end)
		return 1;
	*(__u8 *)data = 0xaa;
	if (skb->len > 10)
		bpf_throw(0x28);
	return 0;
}

/* Instruction 0 may throw (the call above), and the program writes the packet, so the verifier
 * puts the unclone prologue (a bpf_skb_pull_data() call) in front of instruction 0: the throw
 * site's descriptor must stay on the global call, not move to the prologue's helper call (the
 * unwinder then finds no descriptor for the main frame and warns).
 */
SEC("tc")
int throw_at_insn0(struct __sk_buff *skb)
{
	return write_then_throw(skb);
}

char LICENSE[] SEC("license") = "GPL";
