// SPDX-License-Identifier: GPL-2.0
/*
 * A program for the stop contract (kernel.bpf_watchdog_budget_ns) that every design must handle,
 * beside rt_watchdog.bpf.c's:
 *
 *   side_effect_after_loop: counts to STOP_LOOPS with bpf_iter_num, then writes into a map value
 *       it looked up before the loop whether the count was complete (1) or
 *       truncated (COUNT_TRUNCATED, 2); returns what the previous run wrote there (0: nothing).
 *       Run after a warm-up run, it shows what a stopped run leaves behind: a design that
 *       stops the program where it stands writes nothing (0); one that lets it finish on its
 *       own paths (fast-execute) writes the truncated result (2); a run that is not stopped
 *       writes 1.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "kfuncs.h"

#define STOP_LOOPS (1 << 20)
#define COUNT_TRUNCATED 2

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} stop_result SEC(".maps");

SEC("syscall")
int side_effect_after_loop(void *ctx)
{
	struct bpf_iter_num it;
	__u64 *result, previous;
	__u32 key = 0;
	int *v, n = 0;

	result = bpf_map_lookup_elem(&stop_result, &key);
	if (!result)
		return -1;
	previous = *result;

	bpf_iter_num_new(&it, 0, STOP_LOOPS);
	while ((v = bpf_iter_num_next(&it)))
		n++;
	bpf_iter_num_destroy(&it);

	/*
	 * 1 when n reached STOP_LOOPS (2^20), else 2; without a branch on n, which would make the
	 * verifier track n precisely and walk all 8M iterations
	 */
	*result = COUNT_TRUNCATED - ((__u32)n >> 20);
	return previous;
}

char LICENSE[] SEC("license") = "GPL";
