//! Running a long host command (make, cargo, tar) into a log: the log is headed by the command
//! line, the sink hears a heartbeat with the log's last line, and a failure carries the log's
//! last lines and its path.

use crate::events::{format_elapsed, Event, Sink};
use crate::host::fsutil::tail_lines;
use anyhow::Context;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How often a still-running command reports itself.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// Lines of the log a failure shows.
const FAILURE_TAIL: usize = 25;

/// Runs `command` with stdout and stderr appended to `log`; `who` and `what` name it in events
/// and errors.
pub fn run_logged(
    sink: &dyn Sink,
    who: &str,
    what: &str,
    command: &mut Command,
    log: &Path,
) -> anyhow::Result<Duration> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open log {}", log.display()))?;
    // The command line heads its output, so the log alone is enough to reproduce a step.
    writeln!(out, "\n### {what}: {command:?}")?;
    let err = out.try_clone()?;
    let start = Instant::now();
    sink.phase(who, &format!("{what} (log: {})", log.display()));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("{what}: cannot start {:?}", command.get_program()))?;
    let mut next_beat = start + HEARTBEAT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= next_beat {
            sink.emit(Event::Heartbeat {
                who: who.into(),
                what: what.into(),
                elapsed_s: start.elapsed().as_secs_f64(),
                last_line: tail_lines(log, 1).trim().to_string(),
            });
            next_beat += HEARTBEAT;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let elapsed = start.elapsed();
    if !status.success() {
        anyhow::bail!(
            "{what} failed ({status}) after {}; last lines of {}:\n{}",
            format_elapsed(elapsed),
            log.display(),
            tail_lines(log, FAILURE_TAIL)
        );
    }
    sink.phase(who, &format!("{what}: done in {}", format_elapsed(elapsed)));
    Ok(elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Collect;

    #[test]
    fn a_failing_step_reports_the_log_tail_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("step.log");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo first; echo the-cause >&2; exit 3"]);
        let err = run_logged(&Collect::default(), "v", "step", &mut cmd, &log).unwrap_err().to_string();
        assert!(err.contains("the-cause"), "{err}");
        assert!(err.contains(&log.display().to_string()), "{err}");
        assert!(std::fs::read_to_string(&log).unwrap().contains("### step: "), "the log names the command");
    }
}
