//! Running a loaded program with `BPF_PROG_TEST_RUN` and timing it.
//!
//! - tc: the kernel runs the program `repeat` times on a synthetic packet and reports the average
//!   duration per run (`duration`, ns): one sample per test run.
//! - syscall: the kernel runs it once and rejects `repeat`/`duration`; a sample is the delta of
//!   the program's BPF run-time statistics (`run_time_ns`, needs `kernel.bpf_stats_enabled=1`).
//!
//! Under QEMU's `-icount shift=0` a guest nanosecond is one guest instruction, so the samples
//! are instruction counts and repeat exactly.

use std::os::fd::{AsRawFd, BorrowedFd};

use anyhow::{bail, ensure, Context, Result};
use bpfh_protocol::{
    Measure, ObjectCount, ProgType, Record, Timing, MAX_PACKET_BYTES, MIN_PACKET_BYTES, TEST_DATA_LEN,
};

use crate::knobs;
use crate::load::prog_info;
use crate::probe;

/// The outcome of all samples of one program (the fields of `Record::Ran`, and the trace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runs {
    pub retval: u32,
    pub retval_mismatch: bool,
    pub timing: Timing,
    /// Runs per sample.
    pub repeat: u32,
    pub samples: Vec<u64>,
    pub run_errno: Option<i32>,
    pub failed_runs: u32,
    /// Trace lines of the traced run, when the plan asked for one.
    pub trace: Option<Vec<String>>,
    /// cpumask references taken and dropped by the warm-up run, when counted.
    pub cpumasks: Option<ObjectCount>,
    /// With a stop budget: whether the kernel has the watchdog, and each sample's system call
    /// time (`Record::Ran`).
    pub watchdog: Option<bool>,
    pub call_ns: Vec<u64>,
}

impl Runs {
    /// The `Ran` record of program `id`.
    pub fn record(&self, id: &str) -> Record {
        Record::Ran {
            id: id.into(),
            retval: self.retval,
            retval_mismatch: self.retval_mismatch,
            timing: self.timing,
            repeat: self.repeat,
            samples: self.samples.clone(),
            run_errno: self.run_errno,
            failed_runs: self.failed_runs,
            watchdog: self.watchdog,
            call_ns: self.call_ns.clone(),
        }
    }
}

/// One `BPF_PROG_TEST_RUN`: what the kernel answered.
struct TestRun {
    retval: u32,
    /// Per-run duration; None when the kernel failed the run and gave none.
    ns: Option<u64>,
    errno: Option<i32>,
    /// The system call's own duration on the guest clock: what a stop costs is measured from
    /// the deadline to the call's return, cleanup after the program included.
    call_ns: u64,
}

/// How a program type's runs are timed. A program of type any runs only once, as test_loader
/// runs it, on data, like tc.
fn runner_for(prog_type: ProgType) -> Timing {
    match prog_type {
        ProgType::Tc | ProgType::Any => Timing::TestRunDuration,
        ProgType::Syscall | ProgType::Fentry => Timing::BpfStats,
    }
}

fn run_once(fd: BorrowedFd<'_>, prog_type: ProgType, packet: &[u8], repeat: u32) -> Result<TestRun> {
    match prog_type {
        ProgType::Tc | ProgType::Any => run_on_data(fd, packet, repeat),
        ProgType::Syscall | ProgType::Fentry => run_once_timed_by_stats(fd),
    }
}

/// One run and no warm-up, as upstream's test_loader runs a `__retval` program: a stateful
/// program's `__retval` describes its first run. A program with a context (tc, xdp...) runs on
/// [`TEST_DATA_LEN`] zero bytes (its `__retval` values, such as TEST_DATA_LEN itself, assume
/// that input).
pub fn test_loader_run(fd: BorrowedFd<'_>, prog_type: ProgType) -> Result<Runs> {
    run_once_on(fd, prog_type, &[0; TEST_DATA_LEN])
}

/// One run on `data` (a syscall program runs without), no warm-up.
pub fn run_once_on(fd: BorrowedFd<'_>, prog_type: ProgType, data: &[u8]) -> Result<Runs> {
    let timing = runner_for(prog_type);
    let one = run_once(fd, prog_type, data, 1).context("test run")?;
    let mut failures = Failures::default();
    failures.note(&one);
    Ok(Runs {
        retval: one.retval,
        retval_mismatch: false,
        timing,
        repeat: 1,
        samples: one.ns.into_iter().collect(),
        run_errno: failures.errno,
        failed_runs: failures.count,
        trace: None,
        cpumasks: None,
        watchdog: None,
        call_ns: Vec::new(),
    })
}

/// A warm-up run (with the cpumask counters attached, when asked), a traced run (when asked),
/// then the samples.
pub fn measure(fd: BorrowedFd<'_>, prog_type: ProgType, plan: &Measure) -> Result<Runs> {
    ensure!(plan.samples > 0, "the plan asks for 0 samples");
    let timing = runner_for(prog_type);
    // The kernel runs a tc program at least once, whatever `repeat` says.
    let repeat = if prog_type == ProgType::Tc { plan.repeat.max(1) } else { 1 };
    let packet = test_packet(plan.packet_bytes.map_or(MAX_PACKET_BYTES, |n| n as usize));
    let run_once = |repeat| run_once(fd, prog_type, &packet, repeat);
    let mut failures = Failures::default();
    // One unrecorded run first: the first call of some kfuncs pays one-off costs (a cold
    // allocator cache, say) that would otherwise show in the first sample only.
    // The cpumask counters watch only this run: their trampolines would slow every sample.
    let counter = plan.count_cpumasks.then(probe::CpumaskCounter::attach).transpose()?;
    failures.note(&run_once(1).context("warm-up run")?);
    let cpumasks = counter.as_ref().map(probe::CpumaskCounter::read).transpose()?;
    drop(counter);
    // The traced run is not a sample: tracing costs time.
    let trace = if plan.trace_events.is_empty() {
        None
    } else {
        let (one, lines) = knobs::traced(&plan.trace_events, || run_once(1)).context("traced run")?;
        failures.note(&one);
        Some(lines)
    };
    let mut retvals = Vec::with_capacity(plan.samples as usize);
    let mut samples = Vec::with_capacity(plan.samples as usize);
    let mut call_ns = Vec::new();
    for sample in 0..plan.samples {
        let one = without_interrupts(|| run_once(repeat)).with_context(|| format!("sample {sample}"))?;
        failures.note(&one);
        retvals.push(one.retval);
        samples.extend(one.ns);
        if plan.stop_budget_ns.is_some() {
            call_ns.push(one.call_ns);
        }
    }
    let (retval, retval_mismatch) = aggregate_retvals(&retvals);
    Ok(Runs {
        retval,
        retval_mismatch,
        timing,
        repeat,
        samples,
        run_errno: failures.errno,
        failed_runs: failures.count,
        trace,
        cpumasks,
        watchdog: None,
        call_ns,
    })
}

/// How often a sample is taken again when an interrupt landed in it.
const INTERRUPTED_SAMPLE_RETRIES: u32 = 3;

/// `sample`, taken again (at most [`INTERRUPTED_SAMPLE_RETRIES`] times) while the guest served an
/// interrupt during it. The kernel's duration counts the handler's instructions too: a timer tick
/// (every 4 ms of guest time: 4 million instructions under icount) in one sample of 10,000 runs
/// adds 2 to its count, and whether one lands there depends only on where the boot put the
/// ticks, so such a sample differs from its siblings and from the same sample of another boot.
/// A sample longer than the tick period always holds one; the last try is kept.
fn without_interrupts(mut sample: impl FnMut() -> Result<TestRun>) -> Result<TestRun> {
    let mut tries = 0;
    loop {
        let before = interrupts_served()?;
        let one = sample()?;
        if interrupts_served()? == before || tries == INTERRUPTED_SAMPLE_RETRIES {
            return Ok(one);
        }
        tries += 1;
    }
}

/// Interrupts the guest has served since boot: the first number of `/proc/stat`'s `intr` line.
fn interrupts_served() -> Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    interrupts_in(&stat).context("/proc/stat has no intr line")
}

fn interrupts_in(stat: &str) -> Option<u64> {
    stat.lines().find_map(|line| line.strip_prefix("intr ")?.split_whitespace().next()?.parse().ok())
}

/// Test runs the kernel failed: the first errno and how many.
#[derive(Default)]
struct Failures {
    errno: Option<i32>,
    count: u32,
}

impl Failures {
    fn note(&mut self, run: &TestRun) {
        if let Some(errno) = run.errno {
            self.errno.get_or_insert(errno);
            self.count += 1;
        }
    }
}

/// One `BPF_PROG_TEST_RUN` of a tc program: the kernel's average ns per run.
fn run_on_data(fd: BorrowedFd<'_>, packet: &[u8], repeat: u32) -> Result<TestRun> {
    let mut opts = test_run_opts();
    opts.data_in = packet.as_ptr().cast();
    opts.data_size_in = packet.len() as u32;
    opts.repeat = i32::try_from(repeat).context("repeat too large")?;
    let (errno, call_ns) = test_run(fd, &mut opts);
    // A failed tc run copies nothing out: no duration, and the retval is not the program's.
    Ok(TestRun { retval: opts.retval, ns: errno.is_none().then_some(u64::from(opts.duration)), errno, call_ns })
}

/// One `BPF_PROG_TEST_RUN` without context (syscall programs; tracing, which runs an attached
/// fentry program once), timed by BPF stats. The program ran even when the kernel fails the run
/// afterwards (a cancelled run), so it still has a duration.
fn run_once_timed_by_stats(fd: BorrowedFd<'_>) -> Result<TestRun> {
    let before = prog_info(fd)?;
    let mut opts = test_run_opts();
    let (errno, call_ns) = test_run(fd, &mut opts);
    let after = prog_info(fd)?;
    let runs = after.run_cnt.wrapping_sub(before.run_cnt);
    if runs != 1 {
        bail!("BPF stats counted {runs} runs for one test run (is kernel.bpf_stats_enabled=1?)");
    }
    let ns = Some(after.run_time_ns.wrapping_sub(before.run_time_ns));
    Ok(TestRun { retval: opts.retval, ns, errno, call_ns })
}

/// One untimed test run without input; the program's return value.
pub fn retval_of_one_run(fd: BorrowedFd<'_>) -> Result<u32> {
    let mut opts = test_run_opts();
    if let (Some(errno), _) = test_run(fd, &mut opts) {
        return Err(std::io::Error::from_raw_os_error(errno)).context("BPF_PROG_TEST_RUN");
    }
    Ok(opts.retval)
}

fn test_run_opts() -> libbpf_sys::bpf_test_run_opts {
    libbpf_sys::bpf_test_run_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _,
        ..Default::default()
    }
}

/// The errno of a failed run, which is the kernel's answer and reported as such, and the guest
/// ns the call took (CLOCK_MONOTONIC: under icount, guest instructions).
fn test_run(fd: BorrowedFd<'_>, opts: &mut libbpf_sys::bpf_test_run_opts) -> (Option<i32>, u64) {
    let start = std::time::Instant::now();
    // SAFETY: `opts` is sized and its data pointers, if any, outlive the call.
    let rc = unsafe { libbpf_sys::bpf_prog_test_run_opts(fd.as_raw_fd(), opts) };
    let call_ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    ((rc < 0).then_some(-rc), call_ns)
}

/// The retval to report (the last one) and whether the runs disagreed.
fn aggregate_retvals(retvals: &[u32]) -> (u32, bool) {
    let last = retvals.last().copied().unwrap_or(0);
    (last, retvals.iter().any(|&r| r != last))
}

/// Ethernet + IPv4 + UDP headers: shorter packets cannot be IPv4/UDP.
const IPV4_UDP_HEADERS: usize = 14 + 20 + 8;

/// The tc test packet, `len` bytes ([`MIN_PACKET_BYTES`] to [`MAX_PACKET_BYTES`]). From 42 bytes on: Ethernet (14) + IPv4 (20, valid
/// checksum) + UDP (8, no checksum) + payload, 10.0.0.1:12345 -> 10.0.0.2:8080. Shorter: an
/// Ethernet frame with EtherType 0, which the kernel passes on without looking into it.
pub fn test_packet(len: usize) -> Vec<u8> {
    assert!((MIN_PACKET_BYTES..=MAX_PACKET_BYTES).contains(&len), "packet length {len} out of range");
    let mut p = vec![0u8; len];
    p[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]); // destination MAC
    p[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]); // source MAC
    if len < IPV4_UDP_HEADERS {
        return p;
    }
    p[12..14].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    let ip = &mut p[14..34];
    ip[0] = 0x45; // version 4, 5 words
    ip[2..4].copy_from_slice(&((len - 14) as u16).to_be_bytes()); // total length
    ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // don't fragment
    ip[8] = 64; // TTL
    ip[9] = 17; // UDP
    ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
    ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
    let checksum = internet_checksum(ip);
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    let udp = &mut p[34..42];
    udp[0..2].copy_from_slice(&12345u16.to_be_bytes());
    udp[2..4].copy_from_slice(&8080u16.to_be_bytes());
    udp[4..6].copy_from_slice(&((len - 34) as u16).to_be_bytes());
    for (i, byte) in p[42..].iter_mut().enumerate() {
        *byte = i as u8;
    }
    p
}

/// RFC 1071 ones' complement sum of 16-bit words (even length).
fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupts_are_the_first_number_of_the_intr_line() {
        let stat = "cpu  12 0 340 9000 0 0 3 0 0 0\ncpu0 12 0 340 9000 0 0 3 0 0 0\n\
                    intr 48211 37 9 0 0 0 0 0 0 0\nctxt 2210\nbtime 1764770000\n";
        assert_eq!(interrupts_in(stat), Some(48211));
        assert_eq!(interrupts_in("cpu  1 2 3\nctxt 5\n"), None);
    }

    #[test]
    fn short_packets_are_plain_ethernet_frames() {
        let p = test_packet(24);
        assert_eq!(p.len(), 24);
        assert_eq!(&p[12..14], &[0, 0]);
        let p = test_packet(42);
        assert_eq!(u16::from_be_bytes([p[16], p[17]]), 28);
        assert_eq!(internet_checksum(&p[14..34]), 0);
    }

    #[test]
    fn the_packet_is_a_well_formed_ipv4_udp_frame() {
        let p = test_packet(MAX_PACKET_BYTES);
        assert_eq!(p.len(), 64);
        assert_eq!(&p[12..14], &[0x08, 0x00]);
        // A header with its checksum in place sums to zero.
        assert_eq!(internet_checksum(&p[14..34]), 0);
        let total = u16::from_be_bytes([p[16], p[17]]) as usize;
        assert_eq!(14 + total, p.len());
        let udp_len = u16::from_be_bytes([p[38], p[39]]) as usize;
        assert_eq!(34 + udp_len, p.len());
    }

    #[test]
    fn checksum_matches_a_known_header() {
        // The example from Wikipedia's "IPv4 header checksum" article.
        let header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
            0x00, 0xc7,
        ];
        assert_eq!(internet_checksum(&header), 0xb861);
    }

    #[test]
    fn retvals_agree_or_are_flagged() {
        assert_eq!(aggregate_retvals(&[0, 0, 0]), (0, false));
        assert_eq!(aggregate_retvals(&[0, 2, 1]), (1, true));
        assert_eq!(aggregate_retvals(&[7]), (7, false));
    }
}
