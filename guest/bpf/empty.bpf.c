// SPDX-License-Identifier: GPL-2.0
/* Baselines: the cost of running a program that does nothing, one per program type. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

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

/* Run by a tracing test run, which calls bpf_fentry_test1() once. */
SEC("fentry/bpf_fentry_test1")
int BPF_PROG(empty_fentry, int a)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
