//! What the executor tells the world: events while it runs (sent over a channel to one reporter) and the final
//! report listing every planned step with its outcome.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::graph::{Effect, Step, StepId};
use crate::dm::DmError;

/// Why a step failed: DM's answer (HTTP status, DM error code, message) or dm-apply's own reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dm_code: Option<i64>,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Failure { message: message.into(), http_status: None, dm_code: None }
    }

    /// Put context in front of the message.
    pub fn prefixed(mut self, context: &str) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    pub fn with_code(mut self, code: Option<i64>) -> Self {
        self.dm_code = code;
        self
    }
}

impl From<&DmError> for Failure {
    fn from(e: &DmError) -> Self {
        Failure { message: e.to_string(), http_status: e.status(), dm_code: e.code() }
    }
}

impl From<DmError> for Failure {
    fn from(e: DmError) -> Self {
        Failure::from(&e)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        // DmError's message already names the status and code; add them only when it does not.
        let mut extra = vec![];
        if let Some(s) = self.http_status
            && !self.message.contains(&format!("HTTP {s}"))
        {
            extra.push(format!("HTTP {s}"));
        }
        if let Some(c) = self.dm_code
            && !self.message.contains(&c.to_string())
        {
            extra.push(format!("DM error {c}"));
        }
        if !extra.is_empty() {
            write!(f, " ({})", extra.join(", "))?;
        }
        Ok(())
    }
}

/// Why steps were not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Ctrl-C (or a caller's cancellation).
    Interrupted,
    /// `--fail-fast` after the first failure.
    FailFast,
    /// The steps depend on each other in a loop (a bug; reported instead of hanging).
    Cycle,
    /// `--deadline` passed.
    Deadline,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopReason::Interrupted => "interrupted",
            StopReason::FailFast => "stopped after the first failure (--fail-fast)",
            StopReason::Cycle => "internal error: dependency cycle",
            StopReason::Deadline => "the --deadline passed",
        })
    }
}

/// The outcome of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Done {
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    Failed {
        failure: Failure,
    },
    /// A step it requires failed (or was itself skipped).
    Skipped {
        /// The failed step at the root of the chain.
        because: StepId,
        because_label: String,
    },
    NotStarted {
        reason: StopReason,
    },
}

impl Outcome {
    pub fn is_done(&self) -> bool {
        matches!(self, Outcome::Done { .. })
    }
}

/// A step as shown to people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepInfo {
    pub id: StepId,
    pub resource: String,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl StepInfo {
    pub fn of(step: &Step) -> Self {
        StepInfo { id: step.id, resource: step.resource.clone(), action: step.kind.describe(), note: step.note.clone() }
    }

    pub fn label(&self) -> String {
        format!("{}: {}", self.resource, self.action)
    }
}

/// Sent by the executor while it runs; one reporter turns them into lines on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Before anything runs.
    Begin {
        total: usize,
    },
    Started {
        step: StepInfo,
    },
    /// Something worth saying while a step runs (a retry, what a wait observes).
    Progress {
        step: StepInfo,
        message: String,
    },
    /// A step ended (done, failed, skipped or not started).
    Finished {
        step: StepInfo,
        outcome: Outcome,
        elapsed: Duration,
    },
    /// No new steps will be started.
    Stopping {
        reason: StopReason,
    },
    /// After the last step.
    End,
}

/// One line of the final report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepReport {
    #[serde(flatten)]
    pub step: StepInfo,
    pub outcome: Outcome,
    #[serde(serialize_with = "ser_ms")]
    pub elapsed_ms: Duration,
    #[serde(skip)]
    pub effect: Effect,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// Resource counts in Terraform's wording (a replacement counts as one added and one destroyed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub added: usize,
    pub changed: usize,
    pub destroyed: usize,
}

/// Everything the executor did, in execution-graph order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    pub steps: Vec<StepReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<StopReason>,
}

impl ApplyReport {
    pub fn success(&self) -> bool {
        self.steps.iter().all(|s| s.outcome.is_done())
    }

    pub fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.steps.iter().filter(|s| f(&s.outcome)).count()
    }

    pub fn failed(&self) -> impl Iterator<Item = &StepReport> {
        self.steps.iter().filter(|s| matches!(s.outcome, Outcome::Failed { .. }))
    }

    /// Counts of resources actually added, changed and destroyed (only steps that succeeded count; a resource is
    /// "changed" once even when several of its steps changed it).
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        let mut changed = std::collections::BTreeSet::new();
        for s in self.steps.iter().filter(|s| s.outcome.is_done()) {
            match s.effect {
                Effect::Add => c.added += 1,
                Effect::Destroy => c.destroyed += 1,
                Effect::Change => {
                    changed.insert(s.step.resource.as_str());
                }
                Effect::None => {}
            }
        }
        c.changed = changed.len();
        c
    }

    /// `Apply complete! Resources: X added, Y changed, Z destroyed.` (Terraform's wording, which tools parse) or
    /// `Apply failed: ...` with what happened to the steps.
    pub fn summary_line(&self) -> String {
        let c = self.counts();
        let resources = format!("Resources: {} added, {} changed, {} destroyed.", c.added, c.changed, c.destroyed);
        if self.success() {
            return format!("Apply complete! {resources}");
        }
        let failed = self.count(|o| matches!(o, Outcome::Failed { .. }));
        let skipped = self.count(|o| matches!(o, Outcome::Skipped { .. }));
        let not_started = self.count(|o| matches!(o, Outcome::NotStarted { .. }));
        let done = self.count(Outcome::is_done);
        let mut parts = vec![format!("{failed} of {} steps failed", self.steps.len())];
        if skipped > 0 {
            parts.push(format!("{skipped} skipped"));
        }
        if not_started > 0 {
            parts.push(format!("{not_started} not started"));
        }
        parts.push(format!("{done} done"));
        let head = match self.stopped {
            Some(StopReason::Interrupted) => "Apply interrupted",
            Some(StopReason::Deadline) => "Apply stopped at the deadline",
            _ => "Apply failed",
        };
        format!("{head}: {}. {resources}", parts.join(", "))
    }

    /// The full listing for people: every step with its outcome, then the summary line.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for s in &self.steps {
            let (mark, detail) = match &s.outcome {
                Outcome::Done { note } => ("done", note.clone()),
                Outcome::Failed { failure } => ("FAILED", Some(failure.to_string())),
                Outcome::Skipped { because_label, .. } => {
                    ("skipped", Some(format!("because `{because_label}` did not succeed")))
                }
                Outcome::NotStarted { reason } => ("not started", Some(reason.to_string())),
            };
            out.push_str(&format!("  {:<12} {}", mark, s.step.label()));
            if let Some(d) = detail {
                out.push_str(&format!(": {d}"));
            }
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.summary_line());
        out.push('\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(resource: &str, effect: Effect, outcome: Outcome) -> StepReport {
        StepReport {
            step: StepInfo { id: StepId(0), resource: resource.into(), action: "x".into(), note: None },
            outcome,
            elapsed_ms: Duration::ZERO,
            effect,
        }
    }

    #[test]
    fn summary_counts_only_successful_steps() {
        let done = Outcome::Done { note: None };
        let r = ApplyReport {
            steps: vec![
                rep("source.a", Effect::Add, done.clone()),
                rep("task.t", Effect::Change, done.clone()),
                rep("task.t", Effect::Change, done.clone()),
                rep("task.u", Effect::Destroy, done.clone()),
                rep("task.u", Effect::None, done),
            ],
            stopped: None,
        };
        assert_eq!(r.summary_line(), "Apply complete! Resources: 1 added, 1 changed, 1 destroyed.");
    }

    #[test]
    fn failed_summary() {
        let r = ApplyReport {
            steps: vec![
                rep("source.a", Effect::Add, Outcome::Failed { failure: Failure::new("boom") }),
                rep(
                    "task.t",
                    Effect::Add,
                    Outcome::Skipped { because: StepId(0), because_label: "source.a: create source".into() },
                ),
                rep("task.u", Effect::Destroy, Outcome::Done { note: None }),
            ],
            stopped: None,
        };
        assert!(!r.success());
        assert_eq!(
            r.summary_line(),
            "Apply failed: 1 of 3 steps failed, 1 skipped, 1 done. Resources: 0 added, 0 changed, 1 destroyed."
        );
        let text = r.render_text();
        assert!(text.contains("FAILED       source.a: x: boom"), "{text}");
        assert!(text.contains("skipped      task.t: x: because `source.a: create source` did not succeed"));
    }

    #[test]
    fn failure_display_adds_missing_status_and_code() {
        let f = Failure { message: "task paused".into(), http_status: None, dm_code: Some(38032) };
        assert_eq!(f.to_string(), "task paused (DM error 38032)");
        let f =
            Failure { message: "HTTP 400, DM error 46025: no".into(), http_status: Some(400), dm_code: Some(46025) };
        assert_eq!(f.to_string(), "HTTP 400, DM error 46025: no");
    }
}
