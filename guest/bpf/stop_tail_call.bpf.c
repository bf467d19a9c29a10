// SPDX-License-Identifier: GPL-2.0
/*
 * The tail calls of scenarios/stop.yaml. tc programs that only tail-call:
 *
 *   tail_call_entry -> tail_call_target, which holds a task across the loop: the reference is
 *       taken by a program the test run did not start;
 *   tail_call_stash_entry -> tail_call_stash_target, which also moves a second task into a map
 *       value with bpf_kptr_xchg() before the loop and takes it back after it: the map owns that
 *       reference while the budget expires, and a stop must not release it on the map's behalf.
 *
 * Each returns the iteration count, or a negative value when a task cannot be taken (-1, -2)
 * or the tail call fails (-3).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "stop.h"

SEC("tc")
int tail_call_target(struct __sk_buff *skb)
{
	return task_around(spin);
}


SEC("tc")
int tail_call_stash_target(struct __sk_buff *skb)
{
	return stash_and_spin();
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__uint(key_size, sizeof(__u32));
	__array(values, int(struct __sk_buff *));
} targets SEC(".maps") = {
	.values = {
		[0] = (void *)&tail_call_target,
		[1] = (void *)&tail_call_stash_target,
	},
};

SEC("tc")
int tail_call_entry(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &targets, 0);
	/* the tail call failed */
	return -3;
}

SEC("tc")
int tail_call_stash_entry(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &targets, 1);
	return -3;
}

char LICENSE[] SEC("license") = "GPL";
