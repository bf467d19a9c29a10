//! Progress as events: stages say what they are doing to a [`Sink`]; the sink decides whether it
//! is shown on the terminal, written as JSON lines for CI, collected by a test or dropped.
//! Nothing below the CLI prints.

use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// `who` (a variant, or `guest`, `cache`, `host`) starts or finishes a phase.
    Phase { who: String, what: String },
    /// A long command is still running: its elapsed time and the last line of its log.
    Heartbeat { who: String, what: String, elapsed_s: f64, last_line: String },
    /// The run begins its `step`th of `of` steps (a build per variant, then the boots).
    Step { step: usize, of: usize, elapsed_s: f64, who: String, what: String },
    /// Every step of the run is done.
    Finished { steps: usize, elapsed_s: f64 },
    /// Something the user should know that does not stop the run (TCG instead of KVM).
    Warning { message: String },
    /// A variant could not be built or booted, or its guest failed: the run goes on without it.
    VariantFailed { scenario: String, variant: String, reason: String, console: Option<PathBuf> },
}

/// Receives the events of a run.
pub trait Sink: Sync {
    fn emit(&self, event: Event);

    fn phase(&self, who: &str, what: &str) {
        self.emit(Event::Phase { who: who.into(), what: what.into() });
    }

    fn warning(&self, message: String) {
        self.emit(Event::Warning { message });
    }
}

/// Human-readable lines on standard error.
pub struct Terminal;

impl Sink for Terminal {
    fn emit(&self, event: Event) {
        eprintln!("{}", terminal_line(&event));
    }
}

pub fn terminal_line(event: &Event) -> String {
    let elapsed = |s: f64| format_elapsed(Duration::from_secs_f64(s));
    match event {
        Event::Phase { who, what } => format!("[{who}] {what}"),
        Event::Heartbeat { who, what, elapsed_s, last_line } => {
            format!("[{who}] {what}: {} ({last_line})", elapsed(*elapsed_s))
        }
        Event::Step { step, of, elapsed_s, who, what } => format!(
            "[{who}] step {step} of {of} ({} elapsed, {} more after this): {what}",
            elapsed(*elapsed_s),
            of.saturating_sub(*step)
        ),
        Event::Finished { steps, elapsed_s } => format!("[run] all {steps} steps done in {}", elapsed(*elapsed_s)),
        Event::Warning { message } => format!("warning: {message}"),
        Event::VariantFailed { scenario, variant, reason, console } => {
            let console = console.as_ref().map_or(String::new(), |c| format!("\nconsole: {}", c.display()));
            format!("error: scenario {scenario}, variant {variant}: {reason}{console}")
        }
    }
}

/// One JSON object per line, for CI logs and tools.
pub struct JsonLines<W: Write + Send> {
    out: Mutex<W>,
}

impl<W: Write + Send> JsonLines<W> {
    pub fn new(out: W) -> JsonLines<W> {
        JsonLines { out: Mutex::new(out) }
    }
}

impl<W: Write + Send> Sink for JsonLines<W> {
    fn emit(&self, event: Event) {
        let line = serde_json::to_string(&event).expect("events always serialise");
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "{line}");
    }
}

/// Keeps every event, for tests.
#[derive(Default)]
pub struct Collect {
    events: Mutex<Vec<Event>>,
}

impl Collect {
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Sink for Collect {
    fn emit(&self, event: Event) {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).push(event);
    }
}

/// Where a run is among its steps (a build per variant, then the boots), so that a long run
/// says what it is doing and how much is left.
pub struct Steps<'a> {
    sink: &'a dyn Sink,
    total: usize,
    done: usize,
    start: Instant,
}

impl<'a> Steps<'a> {
    /// A run that starts with `builds` build steps; boots are added once the mode decides them.
    pub fn new(sink: &'a dyn Sink, builds: usize) -> Steps<'a> {
        Steps { sink, total: builds, done: 0, start: Instant::now() }
    }

    pub fn add_boots(&mut self, boots: usize) {
        self.total += boots;
    }

    /// Announces the next step.
    pub fn begin(&mut self, who: &str, what: &str) {
        self.done += 1;
        self.sink.emit(Event::Step {
            step: self.done,
            of: self.total,
            elapsed_s: self.start.elapsed().as_secs_f64(),
            who: who.into(),
            what: what.into(),
        });
    }

    pub fn finish(&self) {
        self.sink.emit(Event::Finished { steps: self.total, elapsed_s: self.start.elapsed().as_secs_f64() });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_count_what_is_left() {
        let sink = Collect::default();
        let mut steps = Steps::new(&sink, 2);
        steps.add_boots(4);
        steps.begin("v", "building");
        steps.begin("v", "booting");
        let line = terminal_line(&sink.events()[1]);
        assert!(line.starts_with("[v] step 2 of 6 (") && line.ends_with("4 more after this): booting"), "{line}");
    }

    #[test]
    fn elapsed_is_readable() {
        assert_eq!(format_elapsed(Duration::from_secs(135)), "2m15s");
        assert_eq!(format_elapsed(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn json_lines_are_one_tagged_object_each() {
        let sink = JsonLines::new(Vec::new());
        sink.phase("baseline", "building vmlinux");
        sink.warning("no usable /dev/kvm".into());
        let text = String::from_utf8(sink.out.into_inner().unwrap()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event"], "phase");
        assert_eq!(lines[0]["who"], "baseline");
        assert_eq!(lines[1]["event"], "warning");
    }
}
