// SPDX-License-Identifier: GPL-2.0
/*
 * Scenario "throw", correctness cases: programs that throw a BPF exception while they hold
 * references. On Linux 6.12 the verifier rejects them ("Unreleased reference"), except the
 * global-subprog loophole (case f), which it accepts and which then leaks. With the
 * exception-unwind variant they are accepted and bpf_throw releases what they hold.
 *
 * Every program throws on the runner's synthetic packet (skb->len is 64 > 10): the return
 * value is the cookie passed to bpf_throw (the default exception callback returns it), unless
 * a program has its own callback. Leaks are seen through pid 1's task reference count and the
 * cpumask counters (the scenario's `checks: [task_refs, cpumasks]`, guest/bpf/probes.bpf.c).
 */
#include "throw_common.h"

/* (a) A task reference kept only in a stack slot: the volatile variable makes clang store it
 * to the stack and reload it for every use, so no register holds it across bpf_throw.
 */
SEC("tc")
int throw_task_stack(struct __sk_buff *skb)
{
	struct task_struct *volatile t;

	t = bpf_task_from_pid(1);
	if (!t)
		return 1;
	if (skb->len > 10)
		bpf_throw(0xA);
	bpf_task_release(t);
	return 0;
}

/* (b) A task reference in a callee-saved register (R6): it is live across the bpf_throw call. */
SEC("tc")
int throw_task_reg(struct __sk_buff *skb)
{
	struct task_struct *t = bpf_task_from_pid(1);

	if (!t)
		return 1;
	if (skb->len > 10)
		bpf_throw(0xB);
	bpf_task_release(t);
	return 0;
}

/* (c) References held across two frames: the main program and the static subprog that throws
 * each keep two task references in callee-saved registers. The subprog's prologue saved the
 * main program's values of the registers it reuses, and the unwinder has to find them there.
 */
static __noinline int two_frames_inner(struct __sk_buff *skb)
{
	struct task_struct *a = bpf_task_from_pid(1);
	struct task_struct *b = bpf_task_from_pid(1);

	if (skb->len > 10)
		bpf_throw(0xC);
	if (a)
		bpf_task_release(a);
	if (b)
		bpf_task_release(b);
	return 0;
}

SEC("tc")
int throw_two_frames(struct __sk_buff *skb)
{
	struct task_struct *a = bpf_task_from_pid(1);
	struct task_struct *b = bpf_task_from_pid(1);
	int ret;

	ret = two_frames_inner(skb);
	if (a)
		bpf_task_release(a);
	if (b)
		bpf_task_release(b);
	return ret;
}

/* (d) Seed 001's example: an object that may be NULL reaches bpf_throw along two paths (not
 * allocated when skb->len <= 32, allocated otherwise). Both paths must merge into one frame
 * descriptor: NULL on one, a local object on the other.
 */
SEC("tc")
int throw_maybe_null(struct __sk_buff *skb)
{
	struct holder *p = NULL;

	if (skb->len > 32)
		p = holder_new();
	if (skb->len > 10)
		bpf_throw(0xD);
	if (p)
		bpf_obj_drop(p);
	return 0;
}

/* The loader's task is not the idle task: this is true at run time, and the verifier cannot
 * tell (the programs do not use global variables, which need CONFIG_SHMEM in libbpf).
 */
static __always_inline bool may_throw(void)
{
	return bpf_get_current_pid_tgid() != 0;
}

/* (e) A cpumask, a bpf_obj_new() object (holding a task) and a task reference, in a syscall
 * program (cpumask kfuncs are not available to tc programs).
 */
SEC("syscall")
int throw_cpumask_obj(void *ctx)
{
	struct bpf_cpumask *m;
	struct task_struct *t;
	struct holder *h;

	m = bpf_cpumask_create();
	if (!m)
		return 1;
	h = holder_new();
	if (!h) {
		bpf_cpumask_release(m);
		return 2;
	}
	t = bpf_task_from_pid(1);
	if (may_throw())
		bpf_throw(0xE);
	if (t)
		bpf_task_release(t);
	bpf_obj_drop(h);
	bpf_cpumask_release(m);
	return 0;
}

/* (e') A cpumask and a task reference held by a tracing program (fentry, run by
 * BPF_PROG_TEST_RUN through bpf_fentry_test1): bpf_throw ends the program and the trampoline
 * carries on.
 */
SEC("fentry/bpf_fentry_test1")
int BPF_PROG(throw_fentry, int a)
{
	struct bpf_cpumask *m;
	struct task_struct *t;

	m = bpf_cpumask_create();
	if (!m)
		return 0;
	t = bpf_task_from_pid(1);
	if (may_throw())
		bpf_throw(0);	/* fentry programs must return 0 */
	if (t)
		bpf_task_release(t);
	bpf_cpumask_release(m);
	return 0;
}

/* (f) The global-subprog loophole: the caller holds a task reference across a call of a global
 * subprog that throws. Linux 6.12 verifies the global subprog on its own, accepts the program
 * and leaks one reference per run; the exception-unwind variant checks the throwing path of the
 * call and releases the reference.
 */
__noinline int loophole_global_throw(int len)
{
	if (len > 10)
		bpf_throw(0xF);
	return len;
}

SEC("tc")
int throw_global_loophole(struct __sk_buff *skb)
{
	struct task_struct *t = bpf_task_from_pid(1);
	int ret;

	if (!t)
		return 1;
	ret = loophole_global_throw(skb->len);
	bpf_task_release(t);
	return ret;
}

/* (f') The same with a global subprog that also holds a reference of its own when it throws:
 * the global subprog is verified on its own, and its frame gets its own descriptor.
 */
__noinline int loophole_global_throw_ref(int len)
{
	struct task_struct *t = bpf_task_from_pid(1);

	if (len > 10)
		bpf_throw(0xF2);
	if (t)
		bpf_task_release(t);
	return len;
}

SEC("tc")
int throw_global_ref(struct __sk_buff *skb)
{
	struct task_struct *t = bpf_task_from_pid(1);
	int ret;

	if (!t)
		return 1;
	ret = loophole_global_throw_ref(skb->len);
	bpf_task_release(t);
	return ret;
}

/* (g) Descriptors that cannot merge: the same stack slot holds a task reference on one path
 * and a bpf_obj_new() object on the other when the program throws. There is no single way to
 * release what the slot holds, so the verifier must reject the program.
 */
SEC("tc")
int throw_unmergeable(struct __sk_buff *skb)
{
	void *volatile p;

	if (skb->len > 32)
		p = bpf_task_from_pid(1);
	else
		p = bpf_obj_new(struct holder);
	if (!p)
		return 1;
	bpf_throw(0x6);
	return 0;
}

/* (g'') NULL merges with an object, a non-NULL scalar does not: the register holding t is a task
 * reference on one path, NULL on a second and an arbitrary number on a third, which the verifier
 * explores in this order. The third path must not be pruned against the second one at the point
 * where they join (t is not read on either afterwards): the verifier marks the NULL it recorded
 * at bpf_throw as read and precise, sees the number at bpf_throw and rejects the program.
 * Accepting it would make bpf_throw call the task destructor on that number.
 */
SEC("tc")
int throw_null_or_scalar(struct __sk_buff *skb)
{
	struct task_struct *t = NULL;
	__u32 len = skb->len;
	volatile __u64 kind = 0;	/* on the stack: clang cannot recompute it from len */
	volatile int marker __attribute__((unused));	/* written only: keeps the NULL path */

	if (len > 100) {
		t = bpf_task_from_pid(1);
		kind = 1;
	} else if (len <= 50) {
		marker = 2;
	} else {
		t = (struct task_struct *)(unsigned long)(len | 1);
	}
	if (skb->mark > 5)
		bpf_throw(0x8);
	if (kind == 1 && t)
		bpf_task_release(t);
	return 0;
}

/* (g') An open-coded iterator is released through its _destroy kfunc, its type's cleanup
 * destructor in the exception-unwind variant; 6.12 rejects the throw.
 */
SEC("tc")
int throw_with_iter(struct __sk_buff *skb)
{
	struct bpf_iter_num it;
	int *v;

	bpf_iter_num_new(&it, 0, 3);
	v = bpf_iter_num_next(&it);
	if (v && skb->len > 10)
		bpf_throw(0x7);
	bpf_iter_num_destroy(&it);
	return 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} throw_records SEC(".maps");

/* (g''') A ring buffer record reserved as a dynptr is discarded in the exception-unwind variant;
 * 6.12 rejects the throw.
 */
SEC("tc")
int throw_with_dynptr(struct __sk_buff *skb)
{
	struct bpf_dynptr record;

	bpf_ringbuf_reserve_dynptr(&throw_records, 64, 0, &record);
	if (skb->len > 10)
		bpf_throw(0x8);
	bpf_ringbuf_discard_dynptr(&record, 0);
	return 0;
}

/* (g'''') What cannot be released on an exception is still rejected: a socket reference has no
 * cleanup destructor.
 */
SEC("tc")
int throw_with_socket(struct __sk_buff *skb)
{
	struct bpf_sock_tuple tuple = {};
	struct bpf_sock *sk;

	/* -1: BPF_F_CURRENT_NETNS, a uapi #define that vmlinux.h lacks */
	sk = bpf_sk_lookup_tcp(skb, &tuple, sizeof(tuple.ipv4), -1, 0);
	if (!sk)
		return 0;
	if (skb->len > 10)
		bpf_throw(0x9);
	bpf_sk_release(sk);
	return 0;
}

/* (x) An own exception callback runs after the cleanup: it sees the cookie and its return value
 * is the program's.
 */
__noinline int throw_cb(u64 cookie)
{
	return cookie + 0x100;
}

SEC("tc")
__exception_cb(throw_cb)
int throw_task_reg_cb(struct __sk_buff *skb)
{
	struct task_struct *t = bpf_task_from_pid(1);

	if (!t)
		return 1;
	if (skb->len > 10)
		bpf_throw(0x11);
	bpf_task_release(t);
	return 0;
}

/* (h) A throw that is the main program's last instruction: the verifier removes the unreachable
 * code after it, so its call returns to the end of the JITed function, and appending the hidden
 * subprogs patches that instruction. Written in assembly, because clang always follows a call
 * with the rest of the function. The task is in R6 when the program throws.
 */
SEC("tc")
__attribute__((naked)) int throw_last_insn(void)
{
	asm volatile("r1 = 1;"
		     "call %[bpf_task_from_pid];"
		     "if r0 != 0 goto 1f;"
		     "r0 = 1;"
		     "exit;"
		     "1: r6 = r0;"
		     "r1 = 0x9;"
		     "call %[bpf_throw];"
		     "r1 = r6;"
		     "call %[bpf_task_release];"
		     "r0 = 0;"
		     "exit;"
		     :
		     : [bpf_task_from_pid] "i"(bpf_task_from_pid), [bpf_throw] "i"(bpf_throw),
		       [bpf_task_release] "i"(bpf_task_release)
		     : "memory");
}

char LICENSE[] SEC("license") = "GPL";
