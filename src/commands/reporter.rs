//! The one place that writes progress: it receives the executor's events and prints one line per event on stderr
//! (workers never print). On a terminal the lines are coloured; without one they are plain, for CI logs. Repeated
//! progress messages of a step (a wait polling) are printed only when they change.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use crate::apply::graph::StepId;
use crate::apply::report::{Event, Outcome, StopReason};
use crate::ui::sanitize::inline;
use crate::ui::{Ui, Verbosity};

/// Turns events into lines. Pure, so it is unit-tested; [`run`] drives it.
pub struct Reporter {
    total: usize,
    finished: usize,
    color: bool,
    verbosity: Verbosity,
    last_progress: HashMap<StepId, String>,
}

impl Reporter {
    pub fn new(ui: &Ui) -> Self {
        Reporter {
            total: 0,
            finished: 0,
            color: ui.color_stderr,
            verbosity: ui.verbosity,
            last_progress: HashMap::new(),
        }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        crate::ui::style::Style::new(self.color).paint(code, s)
    }

    fn counter(&self) -> String {
        let w = self.total.to_string().len();
        format!("[{:>w$}/{}]", self.finished, self.total)
    }

    /// The line to print for an event, if any.
    pub fn line(&mut self, event: &Event) -> Option<String> {
        let quiet = self.verbosity == Verbosity::Quiet;
        match event {
            Event::Begin { total } => {
                self.total = *total;
                (!quiet && *total > 0)
                    .then(|| format!("Applying {total} step{}...", if *total == 1 { "" } else { "s" }))
            }
            Event::Started { step } => (!quiet).then(|| {
                let note = step.note.as_ref().map(|n| format!(" ({})", inline(n))).unwrap_or_default();
                format!("{} {}...{note}", self.counter(), inline(&step.label()))
            }),
            Event::Progress { step, message } => {
                if quiet || self.last_progress.get(&step.id) == Some(message) {
                    return None;
                }
                self.last_progress.insert(step.id, message.clone());
                Some(format!("{} {}: {}", self.counter(), inline(&step.label()), inline(message)))
            }
            Event::Finished { step, outcome, elapsed } => {
                self.finished += 1;
                self.last_progress.remove(&step.id);
                let c = self.counter();
                let label = inline(&step.label()).into_owned();
                match outcome {
                    Outcome::Done { note } => (!quiet).then(|| {
                        let note = note.as_ref().map(|n| format!(" ({})", inline(n))).unwrap_or_default();
                        format!("{c} {label}: {} after {}{note}", self.paint("32", "done"), secs(*elapsed))
                    }),
                    Outcome::Failed { failure } => {
                        Some(format!("{c} {label}: {}: {}", self.paint("31;1", "FAILED"), inline(&failure.to_string())))
                    }
                    Outcome::Skipped { because_label, .. } => (!quiet).then(|| {
                        format!(
                            "{c} {label}: {} because `{}` did not succeed",
                            self.paint("33", "skipped"),
                            inline(because_label)
                        )
                    }),
                    Outcome::NotStarted { reason } => {
                        (!quiet).then(|| format!("{c} {label}: {} ({reason})", self.paint("33", "not started")))
                    }
                    Outcome::Interrupted { detail } => {
                        Some(format!("{c} {label}: {}: {}", self.paint("33", "interrupted"), inline(detail)))
                    }
                }
            }
            Event::Stopping { reason } => Some(match reason {
                StopReason::Interrupted => {
                    "Interrupted: no new step will start; waits end now, and the operations in flight finish before \
                     the report"
                        .to_string()
                }
                StopReason::FailFast => {
                    "A step failed and --fail-fast is set: no new step will start; waiting for the steps in flight"
                        .to_string()
                }
                StopReason::Cycle => "internal error: the remaining steps depend on each other in a cycle".to_string(),
                StopReason::Deadline => {
                    "The --deadline passed: no new step will start; waiting for the steps in flight (their waits end \
                     at the deadline too)"
                        .to_string()
                }
            }),
            Event::End => None,
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Print every event's line to stderr until the executor hangs up. The events already waiting are written
/// together, in one pass through the redaction layer and one write: an apply of 10,000 steps has 20,000 lines, and
/// one write each was a visible share of the client's CPU. Nothing waits for a batch to fill.
pub async fn run(mut rx: UnboundedReceiver<Event>, ui: Ui) {
    const BATCH: usize = 256;
    let mut r = Reporter::new(&ui);
    let mut events = Vec::with_capacity(BATCH);
    let mut text = String::new();
    while rx.recv_many(&mut events, BATCH).await > 0 {
        for e in events.drain(..) {
            if let Some(line) = r.line(&e) {
                text.push_str(&line);
                text.push('\n');
            }
        }
        if !text.is_empty() {
            crate::ui::eprint(&text);
            text.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::report::{Failure, StepInfo};

    fn info(id: u32) -> StepInfo {
        StepInfo { id: StepId(id), resource: "task.t".into(), action: "stop task".into(), note: None }
    }

    #[test]
    fn one_line_per_event_with_a_counter() {
        let mut r = Reporter::new(&Ui::plain());
        assert_eq!(r.line(&Event::Begin { total: 2 }).unwrap(), "Applying 2 steps...");
        assert_eq!(r.line(&Event::Started { step: info(0) }).unwrap(), "[0/2] task.t: stop task...");
        let p = Event::Progress { step: info(0), message: "waiting".into() };
        assert!(r.line(&p).is_some());
        assert!(r.line(&p).is_none(), "repeated progress is printed once");
        let done = Event::Finished {
            step: info(0),
            outcome: Outcome::Done { note: None },
            elapsed: Duration::from_millis(250),
        };
        assert_eq!(r.line(&done).unwrap(), "[1/2] task.t: stop task: done after 0.2s");
        let failed = Event::Finished {
            step: info(1),
            outcome: Outcome::Failed { failure: Failure::new("HTTP 400, DM error 46025: no") },
            elapsed: Duration::ZERO,
        };
        assert_eq!(r.line(&failed).unwrap(), "[2/2] task.t: stop task: FAILED: HTTP 400, DM error 46025: no");
        assert_eq!(r.line(&Event::End), None);
    }

    #[test]
    fn quiet_prints_only_failures_and_stops() {
        let mut ui = Ui::plain();
        ui.verbosity = Verbosity::Quiet;
        let mut r = Reporter::new(&ui);
        assert_eq!(r.line(&Event::Begin { total: 1 }), None);
        assert_eq!(r.line(&Event::Started { step: info(0) }), None);
        assert!(r.line(&Event::Stopping { reason: StopReason::Interrupted }).is_some());
    }
}
