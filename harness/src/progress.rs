//! Progress of long steps on the terminal, kept apart from the stages that do the work: a stage
//! says which variant and phase it is in, this module decides how that is shown.

use crate::fsutil::tail_lines;
use anyhow::Context;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How often a still-running step reports itself.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// Announces a phase of a variant's pipeline.
pub fn phase(variant: &str, what: &str) {
    eprintln!("[{variant}] {what}");
}

/// Where a run is among its steps (a build per variant, then the boots), so that a long run
/// says what it is doing and how much is left.
pub struct Steps {
    total: usize,
    done: usize,
    start: Instant,
}

impl Steps {
    /// A run that starts with `builds` build steps; boots are added once the mode decides them.
    pub fn new(builds: usize) -> Steps {
        Steps { total: builds, done: 0, start: Instant::now() }
    }

    pub fn add_boots(&mut self, boots: usize) {
        self.total += boots;
    }

    /// Announces the next step.
    pub fn begin(&mut self, variant: &str, what: &str) {
        self.done += 1;
        phase(variant, &self.line(what));
    }

    fn line(&self, what: &str) -> String {
        let left = self.total.saturating_sub(self.done);
        format!(
            "step {} of {} ({} elapsed, {left} more after this): {what}",
            self.done,
            self.total,
            format_elapsed(self.start.elapsed())
        )
    }

    pub fn finish(&self) {
        eprintln!("[run] all {} steps done in {}", self.total, format_elapsed(self.start.elapsed()));
    }
}

pub fn format_elapsed(elapsed: Duration) -> String {
    let secs = elapsed.as_secs();
    if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{:.1}s", elapsed.as_secs_f64())
    }
}

/// Runs `command` with stdout and stderr appended to `log`, printing the phase, a heartbeat with
/// the elapsed time and the log's last line, and the total time. On failure the error carries the
/// last lines of the log and its path.
pub fn run_logged(variant: &str, what: &str, command: &mut Command, log: &Path) -> anyhow::Result<Duration> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let out = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    let err = out.try_clone()?;
    let start = Instant::now();
    phase(variant, &format!("{what} (log: {})", log.display()));
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
            let last = tail_lines(log, 1);
            eprintln!("[{variant}] {what}: {} ({})", format_elapsed(start.elapsed()), last.trim());
            next_beat += HEARTBEAT;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let elapsed = start.elapsed();
    if !status.success() {
        anyhow::bail!(
            "[{variant}] {what} failed ({status}) after {}; last lines of {}:\n{}",
            format_elapsed(elapsed),
            log.display(),
            tail_lines(log, 25)
        );
    }
    phase(variant, &format!("{what}: done in {}", format_elapsed(elapsed)));
    Ok(elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_step_reports_the_log_tail_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("step.log");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo first; echo the-cause >&2; exit 3"]);
        let err = run_logged("v", "step", &mut cmd, &log).unwrap_err().to_string();
        assert!(err.contains("the-cause"), "{err}");
        assert!(err.contains(&log.display().to_string()), "{err}");
    }

    #[test]
    fn steps_count_what_is_left() {
        let mut steps = Steps::new(2);
        steps.add_boots(4);
        steps.done = 2;
        let line = steps.line("booting");
        assert!(line.starts_with("step 2 of 6 (") && line.ends_with("4 more after this): booting"), "{line}");
    }

    #[test]
    fn elapsed_is_readable() {
        assert_eq!(format_elapsed(Duration::from_secs(135)), "2m15s");
        assert_eq!(format_elapsed(Duration::from_millis(1500)), "1.5s");
    }
}
