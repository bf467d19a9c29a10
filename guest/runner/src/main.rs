//! The guest's `/init` (PID 1): unpacks the run's payload (from QEMU's fw_cfg), runs the plan in
//! `/plan.json` and reports [`Record`]s over the results serial line, then reboots (QEMU's
//! `-no-reboot` turns that into an exit).
//!
//! PID 1 must never die: a panicking or exiting init is a kernel panic. Every failure becomes an
//! `Error` record, a panic included (the hook reports it, `catch_unwind` carries on).

mod caps;
mod faults;
mod io;
mod knobs;
mod load;
mod payload;
mod probe;
mod run;
mod verifier_mem;

use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;

use anyhow::{Context, Result};
use bpfh_protocol::{Action, InfoField, Plan, ProgramPlan, Record, Verdict, PLAN_PATH, RESULTS_DEVICE};

use crate::io::say;

/// The program being handled, for the panic hook's record.
static CURRENT: Mutex<Option<String>> = Mutex::new(None);

fn set_current(id: Option<&str>) {
    *CURRENT.lock().unwrap_or_else(|p| p.into_inner()) = id.map(str::to_owned);
}

fn main() {
    panic::set_hook(Box::new(|info| {
        let id = CURRENT.try_lock().ok().and_then(|id| id.clone());
        let message = format!("guest runner panicked: {info}");
        say(&message);
        io::try_send(&Record::Error { id, message });
    }));
    // The hook has reported the panic; whatever happens, end the boot cleanly.
    let completed = panic::catch_unwind(init).unwrap_or(false);
    if completed {
        io::send(&Record::Done);
    }
    say(if completed { "done" } else { "stopped early" });
    io::reboot()
}

/// Returns whether the plan ran to its end (then `Done` is sent).
fn init() -> bool {
    let mount_errors = io::mount_pseudo_filesystems();
    io::ensure_console();
    if let Err(err) = io::open_results(RESULTS_DEVICE) {
        say(&format!("{err:#}"));
    }
    if let Err(err) = io::wait_for_host() {
        say(&format!("{err:#}"));
    }
    io::send(&Record::Hello { kernel_release: io::kernel_release(), runner_version: bpfh_protocol::VERSION.into() });
    for message in mount_errors {
        global_error(message);
    }
    if let Err(err) = io::enable_bpf_stats() {
        // Only syscall programs need it: they will fail one by one.
        global_error(format!("{err:#}"));
    }
    load::capture_libbpf_output();

    // After the host's go: a restored guest reads the payload its QEMU was started with.
    match payload::fetch_and_unpack(std::path::Path::new("/")) {
        Ok(bytes) => say(&format!("payload: {bytes} bytes")),
        Err(err) => {
            global_error(format!("{err:#}"));
            return false;
        }
    }
    let plan = match read_plan() {
        Ok(plan) => plan,
        Err(err) => {
            global_error(format!("{err:#}"));
            return false;
        }
    };
    say(&format!(
        "plan {}/{}: {} programs{}",
        plan.scenario,
        plan.variant,
        plan.programs.len(),
        if plan.probe_only { " (probe only)" } else { "" }
    ));
    if plan.probe_only {
        return true;
    }
    // Before any program is measured: the tracer is attached only for this pass.
    let peaks = panic::catch_unwind(|| verifier_mem::measure(&plan.programs)).unwrap_or_default();
    for program in &plan.programs {
        set_current(Some(&program.id));
        let peak = peaks.get(&program.id);
        let result = panic::catch_unwind(AssertUnwindSafe(|| handle_program(program, &plan.info_fields, peak)));
        set_current(None);
        match result {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                let message = format!("{err:#}");
                say(&format!("{}: error: {message}", program.id));
                io::send(&Record::Error { id: Some(program.id.clone()), message });
            }
            Err(_) => {} // reported by the panic hook
        }
    }
    if !plan.provoke.is_empty() {
        if let Err(err) = faults::provoke(&plan.provoke) {
            global_error(format!("{err:#}"));
        }
    }
    if let Err(err) = faults::kmemleak_scan() {
        global_error(format!("{err:#}"));
    }
    true
}

fn global_error(message: String) {
    say(&format!("error: {message}"));
    io::send(&Record::Error { id: None, message });
}

fn read_plan() -> Result<Plan> {
    let text = std::fs::read_to_string(PLAN_PATH).with_context(|| format!("reading {PLAN_PATH}"))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {PLAN_PATH}"))
}

/// Load, report the verdict (with the verifier's peak memory `peak`, measured beforehand), run if
/// asked, report the runs.
fn handle_program(
    plan: &ProgramPlan,
    info_fields: &[InfoField],
    peak: Option<&Result<verifier_mem::Peak, String>>,
) -> Result<()> {
    // A scenario's sysctls hold from the load on: some change what the verifier or the JIT do
    // (net.core.bpf_jit_harden).
    let sysctls = match &plan.action {
        Action::Measure(measure) => Some(knobs::Sysctls::apply(&measure.sysctls)?),
        Action::Load | Action::TestLoaderRun | Action::RunOnPktV4 => None,
    };
    let loaded = match load::load(plan.into(), info_fields)? {
        load::Outcome::Rejected { errno, log } => {
            let last = log.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
            say(&format!("{}: rejected, errno {errno}: {last}", plan.id));
            io::send(&Record::Loaded { id: plan.id.clone(), verdict: Verdict::Rejected { errno, log }, info: None });
            return Ok(());
        }
        load::Outcome::Skipped(reason) => {
            say(&format!("{}: skipped: {reason}", plan.id));
            io::send(&Record::Skipped { id: plan.id.clone(), reason });
            return Ok(());
        }
        load::Outcome::Accepted(loaded) => loaded,
    };
    let mut info = loaded.info.clone();
    if let Some(peak) = peak {
        info.verifier_peak_bytes = peak.as_ref().ok().map(|p| p.bytes);
        if let Some(remark) = verifier_mem::remark(&plan.id, peak) {
            say(&remark);
        }
    }
    say(&format!(
        "{}: accepted: {} insns verified, xlated {} B, jited {} B{}",
        plan.id,
        info.verified_insns,
        info.xlated_len,
        info.jited_len,
        info.verifier_peak_bytes.map_or(String::new(), |b| format!(", verifier peak {b} B"))
    ));
    io::send(&Record::Loaded { id: plan.id.clone(), verdict: Verdict::Accepted, info: Some(info) });
    if let Some(log) = &loaded.log {
        io::send(&Record::Log { id: plan.id.clone(), log: log.clone() });
    }
    if plan.xlated {
        io::send(&Record::Xlated { id: plan.id.clone(), insns: load::xlated_insns(loaded.fd())? });
    }
    let measure = match &plan.action {
        Action::Load => return Ok(()),
        Action::TestLoaderRun => {
            let one = run::test_loader_run(loaded.fd(), plan.prog_type)?;
            say(&format!("{}: ran once as test_loader does: retval {}", plan.id, one.retval));
            io::send(&one.record(&plan.id));
            return Ok(());
        }
        Action::RunOnPktV4 => {
            let one = run::run_once_on(loaded.fd(), plan.prog_type, &bpfh_protocol::PKT_V4)?;
            say(&format!("{}: ran once on pkt_v4: retval {}", plan.id, one.retval));
            io::send(&one.record(&plan.id));
            return Ok(());
        }
        Action::Measure(measure) => measure,
    };

    let task_refs = measure.count_task_refs.then(probe::TaskRefs::load).transpose()?;
    let refs_before = task_refs.as_ref().map(probe::TaskRefs::read).transpose()?;
    let watchdog = measure.stop_budget_ns.map(knobs::Watchdog::arm).transpose()?;
    let mut runs = run::measure(loaded.fd(), plan.prog_type, measure)?;
    runs.watchdog = watchdog.as_ref().map(knobs::Watchdog::present);
    drop(watchdog);
    drop(sysctls);
    if let (Some(probe), Some(before)) = (&task_refs, refs_before) {
        loaded.release_map_values()?;
        let after = probe.read()?;
        say(&format!("{}: pid 1 task references {before} -> {after}", plan.id));
        io::send(&Record::TaskRefs { id: plan.id.clone(), before, after });
    }
    say(&format!(
        "{}: ran {} x {}: retval {}{}, ns/run {:?}{}",
        plan.id,
        measure.samples,
        runs.repeat,
        runs.retval,
        if runs.retval_mismatch { " (MISMATCH)" } else { "" },
        runs.samples,
        runs.run_errno.map_or(String::new(), |e| format!(
            ", {} runs failed: {}",
            runs.failed_runs,
            std::io::Error::from_raw_os_error(e)
        ))
    ));
    if let Some(count) = runs.cpumasks {
        say(&format!("{}: cpumask references taken {}, dropped {}", plan.id, count.acquired, count.released));
        io::send(&Record::Cpumasks { id: plan.id.clone(), count });
    }
    if let Some(lines) = &runs.trace {
        io::send(&Record::Trace { id: plan.id.clone(), lines: lines.clone() });
    }
    io::send(&runs.record(&plan.id));
    Ok(())
}
