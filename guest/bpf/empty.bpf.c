// SPDX-License-Identifier: GPL-2.0
/* Baselines: the cost of running a program that does nothing. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("tc")
int empty_tc(struct __sk_buff *skb)
{
	return 0;
}

SEC("syscall")
int empty_syscall(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
