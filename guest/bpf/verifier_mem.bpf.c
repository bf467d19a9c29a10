// SPDX-License-Identifier: GPL-2.0
/*
 * The verifier's peak memory while it verifies one program: what veristat reports as mem_peak.
 *
 * veristat reads it as a memory cgroup's memory.peak around BPF_PROG_LOAD, but Linux 6.12's
 * verifier allocates with plain GFP_KERNEL (not charged to a memory cgroup), and the guest
 * kernels have no CONFIG_MEMCG either. So this object traces the allocations instead, and the
 * runner attaches it only for extra, untimed loads of each program (a program on the kmalloc
 * tracepoint would add its cost to every sample, and to the verifier clock of the measured load).
 *
 * fentry/fexit on bpf_prog_load (kernel/bpf/syscall.c: BPF_PROG_LOAD, which runs the verifier,
 * bpf_check, and the JIT) mark the runner's load (its tgid is state.target_tgid, set by the
 * runner before attaching); while it lasts, every slab object (kmalloc: bytes_alloc, the slab object's size; kmem_cache_alloc: the
 * cache's object size) and every vmalloc area (alloc_vmap_area: its size, less the guard page no
 * memory backs) the runner's task allocates is counted as live until it is freed (kfree,
 * kmem_cache_free, free_vmap_area_noflush), and state.peak keeps the largest live total. Page
 * allocator tracepoints are not counted: they would count slab pages and large kmallocs twice.
 * Frees of memory allocated before the load (or outside it) are not in the map and are ignored.
 *
 * The kmem tracepoints are raw_tp programs, not tp_btf: 6.12's verifier refuses a tp_btf program
 * that reads a `const void *` argument ("func 'kmalloc' arg1 type UNKNOWN is not a struct"), and
 * every kmem tracepoint passes the object as one. The vmalloc ones pass plain numbers: tp_btf.
 *
 * The whole load, not bpf_check alone: a program with subprograms (a design's hidden subprogs
 * included) is JITed inside bpf_check, one without after it, and the figure must count the JIT
 * the same way for both. Like veristat's cgroup (which also counts the object's maps), it
 * includes what the loaded program keeps; JIT images go to shared 2 MiB packs, allocated
 * before the first program of a boot is measured (the runner's own probes are JITed first).
 *
 * allocs is preallocated (a tracepoint on kmalloc must not allocate); an allocation it has no
 * room for is not counted but counted in state.dropped, and the figure is then a lower bound.
 * The runner empties allocs after each program (what the load left allocated for the program is
 * freed when the runner closes it, outside the load).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

/* The guard page after every vmalloc area (VM_NO_GUARD is not used by kvmalloc and vmalloc). */
#define VMAP_GUARD_BYTES 4096

/* Read and written by the runner as one value of the .bss map: keep the layout in step with
 * guest/runner/src/verifier_mem.rs. */
struct verifier_mem_state {
	__u64 target_tgid;	/* set by the runner */
	__u64 active;		/* inside bpf_prog_load on target_tgid */
	__u64 live;		/* bytes allocated since the load began and not freed */
	__u64 peak;		/* the most live bytes since the load began */
	__u64 dropped;		/* allocations allocs had no room for */
	__u64 loads;		/* bpf_prog_load calls seen on target_tgid */
};

struct verifier_mem_state state;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);	/* address */
	__type(value, __u64);	/* bytes */
} allocs SEC(".maps");

static __always_inline bool on_target_tgid(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == state.target_tgid;
}

static __always_inline void count_alloc(__u64 addr, __u64 bytes)
{
	__u64 *old;

	if (!state.active || !addr || !on_target_tgid())
		return;
	/* The same address again: its earlier object was freed where no tracepoint saw it. */
	old = bpf_map_lookup_elem(&allocs, &addr);
	if (old)
		state.live = state.live > *old ? state.live - *old : 0;
	if (bpf_map_update_elem(&allocs, &addr, &bytes, BPF_ANY)) {
		state.dropped++;
		return;
	}
	state.live += bytes;
	if (state.live > state.peak)
		state.peak = state.live;
}

static __always_inline void count_free(__u64 addr)
{
	__u64 *bytes;

	if (!state.active || !addr || !on_target_tgid())
		return;
	bytes = bpf_map_lookup_elem(&allocs, &addr);
	if (!bytes)
		return;
	state.live = state.live > *bytes ? state.live - *bytes : 0;
	bpf_map_delete_elem(&allocs, &addr);
}

SEC("fentry/bpf_prog_load")
int BPF_PROG(verifier_mem_enter)
{
	if (!on_target_tgid())
		return 0;
	state.live = 0;
	state.peak = 0;
	state.dropped = 0;
	state.loads++;
	state.active = 1;
	return 0;
}

SEC("fexit/bpf_prog_load")
int BPF_PROG(verifier_mem_exit)
{
	if (on_target_tgid())
		state.active = 0;
	return 0;
}

SEC("raw_tp/kmalloc")
int BPF_PROG(verifier_mem_kmalloc, unsigned long call_site, const void *ptr, size_t bytes_req,
	     size_t bytes_alloc, gfp_t gfp_flags, int node)
{
	count_alloc((__u64)ptr, bytes_alloc);
	return 0;
}

SEC("raw_tp/kmem_cache_alloc")
int BPF_PROG(verifier_mem_kmem_cache_alloc, unsigned long call_site, const void *ptr,
	     struct kmem_cache *s, gfp_t gfp_flags, int node)
{
	/* A raw tracepoint's arguments are plain numbers: read the cache's size with CO-RE. */
	if (ptr)
		count_alloc((__u64)ptr, BPF_CORE_READ(s, size));
	return 0;
}

SEC("raw_tp/kfree")
int BPF_PROG(verifier_mem_kfree, unsigned long call_site, const void *ptr)
{
	count_free((__u64)ptr);
	return 0;
}

SEC("raw_tp/kmem_cache_free")
int BPF_PROG(verifier_mem_kmem_cache_free, unsigned long call_site, const void *ptr,
	     const struct kmem_cache *s)
{
	count_free((__u64)ptr);
	return 0;
}

SEC("tp_btf/alloc_vmap_area")
int BPF_PROG(verifier_mem_alloc_vmap_area, unsigned long addr, unsigned long size,
	     unsigned long align, unsigned long vstart, unsigned long vend, int failed)
{
	if (failed)
		return 0;
	count_alloc(addr, size > VMAP_GUARD_BYTES ? size - VMAP_GUARD_BYTES : size);
	return 0;
}

SEC("tp_btf/free_vmap_area_noflush")
int BPF_PROG(verifier_mem_free_vmap_area, unsigned long va_start, unsigned long nr_lazy,
	     unsigned long nr_lazy_max)
{
	count_free(va_start);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
