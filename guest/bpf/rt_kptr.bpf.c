// SPDX-License-Identifier: GPL-2.0
/*
 * A program that stashes a task reference in a map with bpf_kptr_xchg()
 * while it loops, then takes it back and releases it. bpf_kptr_xchg() moves
 * references where runtime tracking cannot follow them: on the
 * runtime-tracking variant the verifier marks the program
 * (bpf_prog_info.ref_track_flags has BPF_REF_TRACK_F_NO_RELEASE, 0x2), and
 * a cancelled run releases nothing on the program's behalf; the program
 * still releases what it holds on its way out.
 *
 * Returns the number of loop iterations (8M when not cancelled).
 *
 * Note: the object has a map; libbpf 1.5 needs memfd_create() to open it,
 * which a tinyconfig guest kernel lacks (ENOSYS).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "kfuncs.h"

#define RT_WD_LOOPS (1 << 20)

struct rt_stash {
	struct task_struct __kptr *task;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rt_stash);
} rt_stash_map SEC(".maps");

SEC("syscall")
int rt_wd_kptr(void *ctx)
{
	struct task_struct *t, *held;
	struct bpf_iter_num it;
	struct rt_stash *s;
	__u32 key = 0;
	int *v, n = 0;

	s = bpf_map_lookup_elem(&rt_stash_map, &key);
	if (!s)
		return -1;
	held = bpf_task_from_pid(2);
	if (!held)
		return -1;
	t = bpf_task_from_pid(1);
	if (t) {
		t = bpf_kptr_xchg(&s->task, t);
		if (t)
			bpf_task_release(t);
	}

	bpf_iter_num_new(&it, 0, RT_WD_LOOPS);
	while ((v = bpf_iter_num_next(&it)))
		n++;
	bpf_iter_num_destroy(&it);

	t = bpf_kptr_xchg(&s->task, NULL);
	if (t)
		bpf_task_release(t);
	bpf_task_release(held);
	return n;
}

char LICENSE[] SEC("license") = "GPL";
