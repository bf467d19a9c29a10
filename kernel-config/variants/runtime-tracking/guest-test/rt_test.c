// SPDX-License-Identifier: GPL-2.0
/*
 * rt_test: a small static /init that exercises the runtime-tracking variant
 * (and, for comparison, runs the same programs on any 6.12 kernel).
 *
 * It loads the objects in /bpf (rt_seed, rt_watchdog, rt_overhead,
 * rt_rcu_users from guest/bpf/), then
 *   1. prints bpf_prog_info's runtime tracking fields of every program;
 *   2. runs rt_simple/rt_branch/rt_loop with the bpf_ref trace events on
 *      and prints /sys/kernel/tracing/trace after each;
 *   3. runs the watchdog programs with kernel.bpf_watchdog_budget_ns set,
 *      printing the test run's error, retval, task rcu_users before and
 *      after, and the trace;
 *   4. measures the overhead programs: tc with repeat (duration), syscall
 *      with bpf_stats (run_time_ns / run_cnt);
 *   5. scans the kernel log for warnings.
 * Output lines start with "RT "; the machine reboots at the end (QEMU
 * -no-reboot then exits).
 *
 * Build: see build.sh next to this file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define TRACING "/sys/kernel/tracing"
#define BUDGET "/proc/sys/kernel/bpf_watchdog_budget_ns"

static int patched;
static struct bpf_object *objs[8];
static int nr_objs;

static void out(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("RT ", stdout);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static int wfile(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_TRUNC);
	int ret = -1;

	if (fd >= 0) {
		ret = write(fd, val, strlen(val)) < 0 ? -1 : 0;
		close(fd);
	}
	if (ret)
		out("write %s <- %s failed: %s\n", path, val, strerror(errno));
	return ret;
}

static void dump_file(const char *path, const char *prefix)
{
	char line[1024];
	FILE *f = fopen(path, "r");

	if (!f) {
		out("cannot open %s\n", path);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '#')
			continue;
		printf("%s%s", prefix, line);
	}
	fclose(f);
	fflush(stdout);
}

static void trace_clear(void)
{
	if (patched)
		wfile(TRACING "/trace", "");
}

static void trace_dump(const char *title)
{
	if (!patched)
		return;
	out("---- trace: %s\n", title);
	dump_file(TRACING "/trace", "TRACE ");
	trace_clear();
}

static struct bpf_program *prog(const char *name)
{
	struct bpf_program *p;
	int i;

	for (i = 0; i < nr_objs; i++) {
		p = bpf_object__find_program_by_name(objs[i], name);
		if (p)
			return p;
	}
	out("program %s not found\n", name);
	return NULL;
}

static int prog_fd(const char *name)
{
	struct bpf_program *p = prog(name);

	return p ? bpf_program__fd(p) : -1;
}

static int get_info(int fd, struct bpf_prog_info *info)
{
	__u32 len = sizeof(*info);

	memset(info, 0, sizeof(*info));
	return bpf_prog_get_info_by_fd(fd, info, &len);
}

/* Run a syscall program once; returns 0 or -errno, retval in *retval */
static int run_sys(const char *name, __u32 *retval)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts);
	int fd = prog_fd(name), err;

	if (fd < 0)
		return -ENOENT;
	err = bpf_prog_test_run_opts(fd, &opts);
	*retval = opts.retval;
	return err ? -errno : 0;
}

static unsigned char pkt[64] = {
	[12] = 0x08, [13] = 0x00,	/* ETH_P_IP */
};

static int run_tc(const char *name, int repeat, __u32 *retval, __u32 *duration)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts,
		    .data_in = pkt, .data_size_in = sizeof(pkt), .repeat = repeat);
	int fd = prog_fd(name), err;

	if (fd < 0)
		return -ENOENT;
	err = bpf_prog_test_run_opts(fd, &opts);
	*retval = opts.retval;
	*duration = opts.duration;
	return err ? -errno : 0;
}

static int rcu_users(const char *reader)
{
	__u32 retval = 0;
	int err = run_sys(reader, &retval);

	return err ? err : (int)retval;
}

static void print_info(const char *name)
{
	struct bpf_prog_info info;
	int fd = prog_fd(name);

	if (fd < 0 || get_info(fd, &info)) {
		out("info %s: failed\n", name);
		return;
	}
	out("info %-20s id=%u max_acquired_refs=%u ref_track_flags=0x%x watchdog_cancels=%llu jited_len=%u xlated_len=%u\n",
	    name, info.id, info.max_acquired_refs, info.ref_track_flags,
	    (unsigned long long)info.watchdog_cancels, info.jited_prog_len,
	    info.xlated_prog_len);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && !getenv("RT_LIBBPF_DEBUG"))
		return 0;
	printf("RT libbpf: ");
	return vprintf(fmt, ap);
}

static void load_objects(void)
{
	static const char *files[] = {
		"/bpf/rt_seed.bpf.o", "/bpf/rt_rcu_users.bpf.o",
		"/bpf/rt_watchdog.bpf.o", "/bpf/rt_overhead.bpf.o",
	};
	size_t i;

	libbpf_set_print(libbpf_print);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		struct bpf_object *obj = bpf_object__open_file(files[i], NULL);
		int err;

		if (!obj) {
			out("open %s: %s\n", files[i], strerror(errno));
			continue;
		}
		err = bpf_object__load(obj);
		out("load %s: %s\n", files[i], err ? strerror(-err) : "ok");
		if (err) {
			bpf_object__close(obj);
			continue;
		}
		objs[nr_objs++] = obj;
	}
}

static void section_info(void)
{
	static const char *names[] = {
		"rt_simple", "rt_branch", "rt_loop", "rt_rcu_users",
		"rt_wd_iter", "rt_wd_loop", "rt_wd_acq", "rt_wd_obj", "rt_wd_tc",
		"rt_empty_tc", "rt_hold1_tc", "rt_hold2_tc", "rt_hold8_tc", "rt_hold32_tc",
		"rt_empty_sys", "rt_hold1_sys", "rt_hold2_sys", "rt_hold8_sys", "rt_hold32_sys",
		"rt_obj_tc", "rt_cpumask_sys",
	};
	size_t i;

	out("==== bpf_prog_info\n");
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		print_info(names[i]);
}

static void section_seed(void)
{
	static const char *names[] = { "rt_simple", "rt_branch", "rt_loop" };
	__u32 retval;
	size_t i;
	int err;

	out("==== seed 000 cases, bpf_ref trace events\n");
	if (patched && wfile(TRACING "/events/bpf_ref/enable", "1"))
		return;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		trace_clear();
		err = run_sys(names[i], &retval);
		out("run %s: err=%d retval=%u\n", names[i], err, retval);
		trace_dump(names[i]);
	}
	if (patched)
		wfile(TRACING "/events/bpf_ref/enable", "0");
}

static void watchdog_run(const char *name, int tc, const char *budget)
{
	int before1, before2, after1, after2, err;
	struct bpf_prog_info info;
	__u32 retval = 0, duration = 0;

	before1 = rcu_users("rt_rcu_users");
	before2 = rcu_users("rt_rcu_users_pid2");
	if (patched)
		wfile(BUDGET, budget);
	trace_clear();
	if (tc)
		err = run_tc(name, 3, &retval, &duration);
	else
		err = run_sys(name, &retval);
	if (patched)
		wfile(BUDGET, "0");
	after1 = rcu_users("rt_rcu_users");
	after2 = rcu_users("rt_rcu_users_pid2");
	get_info(prog_fd(name), &info);
	out("watchdog %s budget=%s: err=%d (%s) retval=%u rcu_users(pid1) %d -> %d rcu_users(pid2) %d -> %d watchdog_cancels=%llu\n",
	    name, budget, err, err ? strerror(-err) : "ok", retval, before1, after1,
	    before2, after2, (unsigned long long)info.watchdog_cancels);
	trace_dump(name);
}

static void section_watchdog(void)
{
	out("==== watchdog\n");
	if (patched) {
		/* cancel/acquire/release events; no table dumps in loops */
		wfile(TRACING "/events/bpf_ref/enable", "1");
		wfile(TRACING "/events/bpf_ref/bpf_ref_table/enable", "0");
		wfile(TRACING "/events/bpf_ref/bpf_ref_acquire/enable", "0");
	}
	watchdog_run("rt_wd_iter", 0, "10000000");
	watchdog_run("rt_wd_loop", 0, "10000000");
	if (patched)
		wfile(TRACING "/events/bpf_ref/bpf_ref_release/enable", "0");
	/* only refused acquisitions (status 2): one per cancelled run */
	if (patched) {
		wfile(TRACING "/events/bpf_ref/bpf_ref_acquire/filter", "status == 2");
		wfile(TRACING "/events/bpf_ref/bpf_ref_acquire/enable", "1");
	}
	watchdog_run("rt_wd_acq", 0, "10000000");
	if (patched) {
		wfile(TRACING "/events/bpf_ref/bpf_ref_acquire/enable", "0");
		wfile(TRACING "/events/bpf_ref/bpf_ref_acquire/filter", "0");
		wfile(TRACING "/events/bpf_ref/bpf_ref_release/enable", "1");
	}
	watchdog_run("rt_wd_obj", 0, "10000000");
	watchdog_run("rt_wd_tc", 1, "10000000");
	/* the same with the watchdog off: runs to the end */
	watchdog_run("rt_wd_iter", 0, "0");
	if (patched)
		wfile(TRACING "/events/bpf_ref/enable", "0");
}

static void section_overhead(void)
{
	static const char *tc[] = {
		"rt_empty_tc", "rt_hold1_tc", "rt_hold2_tc", "rt_hold8_tc", "rt_hold32_tc",
		"rt_obj_tc",
	};
	static const char *sys[] = {
		"rt_empty_sys", "rt_hold1_sys", "rt_hold2_sys", "rt_hold8_sys", "rt_hold32_sys",
		"rt_cpumask_sys",
	};
	struct bpf_prog_info a, b;
	__u32 retval, duration;
	int i, j, err, fd;

	out("==== overhead (ns per run; instructions under icount)\n");
	for (i = 0; i < 6; i++) {
		for (j = 0; j < 3; j++) {
			err = run_tc(tc[i], 1000, &retval, &duration);
			out("tc %-16s sample=%d err=%d retval=%u duration=%u\n", tc[i], j, err,
			    retval, duration);
		}
	}
	wfile("/proc/sys/kernel/bpf_stats_enabled", "1");
	for (i = 0; i < 6; i++) {
		fd = prog_fd(sys[i]);
		for (j = 0; j < 3; j++) {
			int k;

			get_info(fd, &a);
			for (k = 0; k < 200; k++)
				run_sys(sys[i], &retval);
			get_info(fd, &b);
			out("syscall %-16s sample=%d retval=%u runs=%llu ns_per_run=%llu\n", sys[i], j,
			    retval, (unsigned long long)(b.run_cnt - a.run_cnt),
			    (unsigned long long)((b.run_time_ns - a.run_time_ns) /
						 (b.run_cnt - a.run_cnt ?: 1)));
		}
	}
	wfile("/proc/sys/kernel/bpf_stats_enabled", "0");
}

static void section_klog(void)
{
	int len = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	char *buf, *line, *save;
	int n, bad = 0;

	out("==== kernel log\n");
	if (len <= 0)
		return;
	buf = calloc(1, len + 1);
	n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, len);
	if (n < 0)
		return;
	buf[n] = 0;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strstr(line, "bpf_ref:"))
			out("klog %s\n", line);
		if (strstr(line, "WARNING") || strstr(line, "BUG") || strstr(line, "Oops") ||
		    strstr(line, "Call Trace") || strstr(line, "RIP:")) {
			out("klog-bad %s\n", line);
			bad++;
		}
	}
	out("kernel warnings: %d\n", bad);
}

int main(void)
{
	struct utsname u;

	mkdir("/proc", 0755);
	mkdir("/sys", 0755);
	mkdir("/dev", 0755);
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	mount("tracefs", TRACING, "tracefs", 0, NULL);
	uname(&u);
	patched = access(BUDGET, F_OK) == 0;
	out("kernel %s %s, runtime tracking: %s\n", u.release, u.version,
	    patched ? "yes" : "no");
	if (patched)
		wfile(TRACING "/buffer_size_kb", "4096");

	load_objects();
	section_info();
	section_seed();
	section_watchdog();
	section_info();
	section_overhead();
	section_klog();
	out("done\n");
	sync();
	reboot(RB_AUTOBOOT);
	return 0;
}
