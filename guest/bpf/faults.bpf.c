// SPDX-License-Identifier: GPL-2.0
/* Programs for testing the harness itself, not the kernel: a run that does not end in any time a
 * test would wait for (a hung run must be stopped by the harness's run timeout). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

static long spin_inner(u64 index, void *ctx)
{
	return 0;
}

static long spin_outer(u64 index, void *ctx)
{
	bpf_loop(1 << 23, spin_inner, NULL, 0);
	return 0;
}

/* 2^46 callback calls: about a day of emulated guest time per run. The verifier accepts it
 * (bpf_loop bounds each level), and BPF_PROG_TEST_RUN cannot interrupt it. */
SEC("syscall")
int spin_syscall(void *ctx)
{
	bpf_loop(1 << 23, spin_outer, NULL, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
