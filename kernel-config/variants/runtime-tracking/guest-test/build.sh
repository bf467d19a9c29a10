#!/bin/sh
# Build the rt_test initramfs for a kernel: BPF objects compiled against the
# kernel's own BTF, a static rt_test as /init.
#   build.sh <linux tree (patched)> <vmlinux> <out dir>
# Needs clang-19, bpftool, gcc, cpio, libelf/zlib/zstd static libraries.
set -eu
TREE=$1
VMLINUX=$2
OUT=$3
HERE=$(cd "$(dirname "$0")" && pwd)
BPF=$(cd "$HERE/../../../../guest/bpf" && pwd)
mkdir -p "$OUT/lib/out" "$OUT/lib/hdr" "$OUT/bpf" "$OUT/root/bpf" "$OUT/root/dev"
if [ ! -f "$OUT/lib/out/libbpf.a" ]; then
	make -s -C "$TREE/tools/lib/bpf" OUTPUT="$OUT/lib/out/" DESTDIR="$OUT/lib/hdr" prefix= install_headers
	make -s -C "$TREE/tools/lib/bpf" OUTPUT="$OUT/lib/out/" "$OUT/lib/out/libbpf.a"
fi
bpftool btf dump file "$VMLINUX" format c > "$OUT/bpf/vmlinux.h"
for f in rt_seed rt_rcu_users rt_watchdog rt_overhead; do
	clang-19 -g -O2 -target bpf -D__TARGET_ARCH_x86 -I"$OUT/bpf" -I"$OUT/lib/hdr/include" \
		-I"$BPF" -c "$BPF/$f.bpf.c" -o "$OUT/root/bpf/$f.bpf.o"
done
# the patched uapi header first: bpf_prog_info's new fields
gcc -O2 -static -I"$TREE/tools/include/uapi" -I"$OUT/lib/hdr/include" \
	"$HERE/rt_test.c" "$OUT/lib/out/libbpf.a" -lelf -lz -lzstd -o "$OUT/root/init"
# /dev/console for the kernel's initial console (needs root for mknod)
[ -c "$OUT/root/dev/console" ] || mknod "$OUT/root/dev/console" c 5 1
(cd "$OUT/root" && find . -mindepth 1 | sort | cpio -o -H newc --quiet > ../initramfs.cpio)
echo "$OUT/initramfs.cpio"
