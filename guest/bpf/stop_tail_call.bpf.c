// SPDX-License-Identifier: GPL-2.0
/*
 * The tail call of scenarios/stop.yaml: tail_call_entry, a tc program, tail-calls
 * tail_call_target, which holds a task across the loop: the reference is taken by a program the
 * test run did not start. Returns the iteration count, or a negative value when the task cannot
 * be taken (-1) or the tail call fails (-3).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "stop.h"

SEC("tc")
int tail_call_target(struct __sk_buff *skb)
{
	struct task_struct *t;
	int n;

	t = bpf_task_from_pid(1);
	if (!t)
		return -1;
	n = spin();
	bpf_task_release(t);
	return n;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__array(values, int(struct __sk_buff *));
} targets SEC(".maps") = {
	.values = { [0] = (void *)&tail_call_target },
};

SEC("tc")
int tail_call_entry(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &targets, 0);
	/* the tail call failed */
	return -3;
}

char LICENSE[] SEC("license") = "GPL";
