//! What the executor tells the world: events while it runs (sent over a channel to one reporter) and the final
//! report listing every planned step with its outcome.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::graph::{Effect, Step, StepId, StepKind};
use crate::dm::DmError;
use crate::ui::sanitize::inline;

/// Why a step failed: DM's answer (HTTP status, DM error code, message) or dm-apply's own reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dm_code: Option<i64>,
    /// The step did not fail: the interruption (SIGINT/SIGTERM/SIGHUP) cut it short; reported as
    /// [`Outcome::Interrupted`].
    #[serde(skip)]
    pub interrupted: bool,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Failure { message: message.into(), http_status: None, dm_code: None, interrupted: false }
    }

    /// A step cut short by the interruption; `message` says what had happened by then.
    pub fn interrupted(message: impl Into<String>) -> Self {
        Failure { interrupted: true, ..Failure::new(message) }
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
        Failure { message: e.to_string(), http_status: e.status(), dm_code: e.code(), interrupted: false }
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
    /// Started, then cut short by the interruption (a wait for a task's stage): `detail` says what had happened
    /// (e.g. the start was sent, the task had not reached Running yet).
    Interrupted {
        detail: String,
    },
}

impl Outcome {
    pub fn is_done(&self) -> bool {
        matches!(self, Outcome::Done { .. })
    }

    /// The word shown for the outcome in reports (`done`, `FAILED`, ...).
    pub fn mark(&self) -> &'static str {
        match self {
            Outcome::Done { .. } => "done",
            Outcome::Failed { .. } => "FAILED",
            Outcome::Skipped { .. } => "skipped",
            Outcome::NotStarted { .. } => "not started",
            Outcome::Interrupted { .. } => "interrupted",
        }
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
    /// What the step does to a task's runtime, for the list of tasks left stopped.
    #[serde(skip)]
    pub task_op: Option<(TaskOp, String)>,
    /// The sources a stop or start is limited to (`None`: the whole task).
    #[serde(skip)]
    pub task_sources: Option<Vec<String>>,
}

/// Steps that decide whether a task runs after the apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TaskOp {
    Create,
    Start,
    Stop,
    Delete,
}

impl TaskOp {
    /// The op of a step kind, with the task's name.
    pub fn of(kind: &StepKind) -> Option<(TaskOp, String)> {
        match kind {
            StepKind::CreateTask { task } => Some((TaskOp::Create, task.name.clone())),
            StepKind::StartTask { name, .. } => Some((TaskOp::Start, name.clone())),
            StepKind::StopTask { name, .. } => Some((TaskOp::Stop, name.clone())),
            StepKind::DeleteTask { name, .. } => Some((TaskOp::Delete, name.clone())),
            _ => None,
        }
    }

    /// The sources a stop or start step is limited to (`None`: the whole task, or not such a step).
    pub fn sources_of(kind: &StepKind) -> Option<Vec<String>> {
        match kind {
            StepKind::StartTask { request, .. } => request.source_name_list.clone(),
            StepKind::StopTask { sources, .. } => sources.clone(),
            _ => None,
        }
    }
}

/// A task the configuration wants running that the apply leaves not running: its start step did not happen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeftStopped {
    pub task: String,
    pub address: String,
    pub reason: LeftReason,
    /// Stopped by this apply on these sources only (for a source's update); the task's other sources run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeftReason {
    /// This apply stopped it (to update it or its source) and did not start it again.
    StoppedByApply,
    /// This apply created it (DM creates tasks stopped) and did not start it.
    CreatedNotStarted,
    /// This apply deleted it to replace it and did not create it again.
    DeletedNotRecreated,
    /// It was not running before the apply, which was to start it.
    NotStarted,
}

impl fmt::Display for LeftReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LeftReason::StoppedByApply => "stopped by this apply",
            LeftReason::CreatedNotStarted => "created by this apply, not started",
            LeftReason::DeletedNotRecreated => "deleted to be replaced, not created again",
            LeftReason::NotStarted => "was not running; its start did not happen",
        })
    }
}

/// How the run ended, for the closing line, the JSON report and the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Complete,
    Failed,
    Interrupted,
    StoppedAtDeadline,
}

impl Status {
    /// SGR colour of the closing line: green, red, yellow.
    pub fn color_code(self) -> &'static str {
        match self {
            Status::Complete => "32;1",
            Status::Failed => "31;1",
            Status::Interrupted | Status::StoppedAtDeadline => "33;1",
        }
    }
}

/// The plan made after applying to check that nothing is left to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Verification {
    /// Not run: a step did not succeed, or the apply was interrupted before it.
    NotRun,
    /// `--no-verify`.
    Skipped,
    Passed,
    /// A new plan still shows changes for these resources (`address (actions)`).
    ChangesLeft {
        changes: Vec<String>,
    },
    /// The interruption cut it short.
    Interrupted,
    /// It could not be made (e.g. DM-master unreachable).
    Error {
        message: String,
    },
}

/// Version of the JSON apply report (`apply -o json`): minor versions only add fields.
pub const REPORT_FORMAT_VERSION: &str = "1.1";

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

    /// How the run ended. Interrupted wins: an interrupted run is never reported complete, even when every step it
    /// started finished (the interruption came during a wait or the verification).
    pub fn status(&self) -> Status {
        let interrupted = self.stopped == Some(StopReason::Interrupted)
            || self.steps.iter().any(|s| matches!(s.outcome, Outcome::Interrupted { .. }));
        if interrupted {
            Status::Interrupted
        } else if self.success() {
            Status::Complete
        } else if self.stopped == Some(StopReason::Deadline) {
            Status::StoppedAtDeadline
        } else {
            Status::Failed
        }
    }

    /// Record that the run was interrupted after the executor finished (during the verification).
    pub fn mark_interrupted(&mut self) {
        self.stopped = Some(StopReason::Interrupted);
    }

    /// Tasks the configuration wants running that this run leaves not running because their start step did not
    /// happen (failed, skipped, not started or interrupted before it). Computed from the step outcomes alone.
    pub fn left_stopped(&self) -> Vec<LeftStopped> {
        use std::collections::BTreeMap;
        // Per task: the outcome of each op.
        let mut ops: BTreeMap<&str, BTreeMap<TaskOp, bool>> = BTreeMap::new();
        let mut stopped_on: BTreeMap<&str, Option<Vec<String>>> = BTreeMap::new();
        for s in &self.steps {
            if let Some((op, name)) = &s.task_op {
                ops.entry(name.as_str()).or_default().insert(*op, s.outcome.is_done());
                if *op == TaskOp::Stop {
                    stopped_on.insert(name.as_str(), s.task_sources.clone());
                }
            }
        }
        let mut out = Vec::new();
        for (task, ops) in ops {
            let done = |op: TaskOp| ops.get(&op).copied();
            if done(TaskOp::Start) != Some(false) {
                continue; // no start planned, or it happened
            }
            let reason = match (done(TaskOp::Create), done(TaskOp::Delete), done(TaskOp::Stop)) {
                (Some(true), _, _) => LeftReason::CreatedNotStarted,
                (Some(false), Some(true), _) => LeftReason::DeletedNotRecreated,
                // A new task that was never created does not exist: nothing is left stopped.
                (Some(false), _, _) => continue,
                (None, _, Some(true)) => LeftReason::StoppedByApply,
                // The stop itself did not happen: the task still runs as before.
                (None, _, Some(false)) => continue,
                (None, _, None) => LeftReason::NotStarted,
            };
            let sources = match reason {
                LeftReason::StoppedByApply => stopped_on.get(task).cloned().flatten(),
                _ => None,
            };
            out.push(LeftStopped { task: task.to_string(), address: format!("task.{task}"), reason, sources });
        }
        out
    }

    /// `Apply complete! Resources: X added, Y changed, Z destroyed.` (Terraform's wording, which tools parse), or
    /// `Apply failed: ...` / `Apply interrupted: ...` / `Apply stopped at the deadline: ...` with what happened to the
    /// steps.
    pub fn summary_line(&self) -> String {
        let c = self.counts();
        let resources = format!("Resources: {} added, {} changed, {} destroyed.", c.added, c.changed, c.destroyed);
        let status = self.status();
        if status == Status::Complete {
            return format!("Apply complete! {resources}");
        }
        let failed = self.count(|o| matches!(o, Outcome::Failed { .. }));
        let interrupted = self.count(|o| matches!(o, Outcome::Interrupted { .. }));
        let skipped = self.count(|o| matches!(o, Outcome::Skipped { .. }));
        let not_started = self.count(|o| matches!(o, Outcome::NotStarted { .. }));
        let done = self.count(Outcome::is_done);
        let mut parts = vec![format!("{failed} of {} steps failed", self.steps.len())];
        if interrupted > 0 {
            parts.push(format!("{interrupted} interrupted"));
        }
        if skipped > 0 {
            parts.push(format!("{skipped} skipped"));
        }
        if not_started > 0 {
            parts.push(format!("{not_started} not started"));
        }
        parts.push(format!("{done} done"));
        let head = match status {
            Status::Interrupted => "Apply interrupted",
            Status::StoppedAtDeadline => "Apply stopped at the deadline",
            _ => "Apply failed",
        };
        format!("{head}: {}. {resources}", parts.join(", "))
    }

    /// `Tasks left stopped that the configuration wants running: a, b (run `dm-apply apply` again to converge)`, or
    /// `None` when there is none.
    pub fn left_stopped_line(&self) -> Option<String> {
        let left = self.left_stopped();
        if left.is_empty() {
            return None;
        }
        let names: Vec<String> = left
            .iter()
            .map(|l| match (&l.reason, &l.sources) {
                (LeftReason::DeletedNotRecreated, _) => format!("{} ({})", inline(&l.task), l.reason),
                (_, Some(on)) => format!("{} (on {})", inline(&l.task), inline(&on.join(", "))),
                _ => inline(&l.task).into_owned(),
            })
            .collect();
        Some(format!(
            "Tasks left stopped that the configuration wants running: {} (run `dm-apply apply` again to converge)",
            names.join(", ")
        ))
    }

    /// The full listing for people, without colour: see [`ApplyReport::render_text_with`].
    pub fn render_text(&self) -> String {
        self.render_text_with(false)
    }

    /// The full listing for people: every step with its outcome, the tasks left stopped, then the closing line
    /// (green, red or yellow when `color`). Names and messages from DM are shown with control characters escaped.
    pub fn render_text_with(&self, color: bool) -> String {
        let style = crate::ui::style::Style::new(color);
        let paint = |code: &str, s: &str| style.paint(code, s);
        let mut out = String::new();
        for s in &self.steps {
            let detail = match &s.outcome {
                Outcome::Done { note } => note.clone(),
                Outcome::Failed { failure } => Some(failure.to_string()),
                Outcome::Skipped { because_label, .. } => Some(format!("because `{because_label}` did not succeed")),
                Outcome::NotStarted { reason } => Some(reason.to_string()),
                Outcome::Interrupted { detail } => Some(detail.clone()),
            };
            out.push_str(&format!("  {:<12} {}", s.outcome.mark(), inline(&s.step.label())));
            if let Some(d) = detail {
                out.push_str(&format!(": {}", inline(&d)));
            }
            out.push('\n');
        }
        out.push('\n');
        if let Some(line) = self.left_stopped_line() {
            out.push_str(&paint("33", &line));
            out.push('\n');
        }
        out.push_str(&paint(self.status().color_code(), &self.summary_line()));
        out.push('\n');
        out
    }

    /// The machine-readable report (`apply -o json`), versioned by `format_version` (see docs/apply.md).
    pub fn render_json(&self, verification: &Verification, exit_code: u8) -> String {
        let c = self.counts();
        let n = |f: fn(&Outcome) -> bool| self.count(f);
        let steps: Vec<serde_json::Value> = self
            .steps
            .iter()
            .map(|s| {
                let mut v = serde_json::json!({
                    "id": s.step.id.0,
                    "resource": s.step.resource,
                    "action": s.step.action,
                    "outcome": match &s.outcome {
                        Outcome::Done { .. } => "done",
                        Outcome::Failed { .. } => "failed",
                        Outcome::Skipped { .. } => "skipped",
                        Outcome::NotStarted { .. } => "not_started",
                        Outcome::Interrupted { .. } => "interrupted",
                    },
                    "elapsed_ms": s.elapsed_ms.as_millis() as u64,
                });
                let m = v.as_object_mut().expect("an object");
                if let Some(note) = &s.step.note {
                    m.insert("step_note".into(), note.clone().into());
                }
                match &s.outcome {
                    Outcome::Done { note } => {
                        m.insert("message".into(), note.clone().into());
                    }
                    Outcome::Failed { failure } => {
                        m.insert("message".into(), failure.message.clone().into());
                        m.insert("http_status".into(), failure.http_status.into());
                        m.insert("dm_code".into(), failure.dm_code.into());
                    }
                    Outcome::Skipped { because, because_label } => {
                        m.insert("message".into(), format!("because `{because_label}` did not succeed").into());
                        m.insert("because_step".into(), because.0.into());
                    }
                    Outcome::NotStarted { reason } => {
                        m.insert("message".into(), reason.to_string().into());
                        m.insert("reason".into(), serde_json::to_value(reason).unwrap_or_default());
                    }
                    Outcome::Interrupted { detail } => {
                        m.insert("message".into(), detail.clone().into());
                    }
                }
                v
            })
            .collect();
        let doc = serde_json::json!({
            "format_version": REPORT_FORMAT_VERSION,
            "dm_apply_version": env!("CARGO_PKG_VERSION"),
            "status": self.status(),
            "summary": self.summary_line(),
            "exit_code": exit_code,
            "resources": { "added": c.added, "changed": c.changed, "destroyed": c.destroyed },
            "step_counts": {
                "total": self.steps.len(),
                "done": n(Outcome::is_done),
                "failed": n(|o| matches!(o, Outcome::Failed { .. })),
                "skipped": n(|o| matches!(o, Outcome::Skipped { .. })),
                "not_started": n(|o| matches!(o, Outcome::NotStarted { .. })),
                "interrupted": n(|o| matches!(o, Outcome::Interrupted { .. })),
            },
            "steps": steps,
            "left_stopped": self.left_stopped(),
            "verification": verification,
        });
        let mut text = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into());
        text.push('\n');
        text
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
            task_op: None,
            task_sources: None,
        }
    }

    fn op(task: &str, op: TaskOp, outcome: Outcome) -> StepReport {
        StepReport { task_op: Some((op, task.to_string())), ..rep(&format!("task.{task}"), Effect::None, outcome) }
    }

    const DONE: Outcome = Outcome::Done { note: None };

    #[test]
    fn summary_counts_only_successful_steps() {
        let r = ApplyReport {
            steps: vec![
                rep("source.a", Effect::Add, DONE),
                rep("task.t", Effect::Change, DONE),
                rep("task.t", Effect::Change, DONE),
                rep("task.u", Effect::Destroy, DONE),
                rep("task.u", Effect::None, DONE),
            ],
            stopped: None,
        };
        assert_eq!(r.summary_line(), "Apply complete! Resources: 1 added, 1 changed, 1 destroyed.");
        assert_eq!(r.status(), Status::Complete);
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
                rep("task.u", Effect::Destroy, DONE),
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
        assert!(r.render_text_with(true).contains("\x1b[31;1mApply failed"));
    }

    #[test]
    fn an_interrupted_run_is_never_complete() {
        let mut r = ApplyReport { steps: vec![rep("task.t", Effect::Change, DONE)], stopped: None };
        r.mark_interrupted();
        assert_eq!(r.status(), Status::Interrupted);
        assert!(
            r.summary_line().starts_with("Apply interrupted: 0 of 1 steps failed, 1 done."),
            "{}",
            r.summary_line()
        );
        assert!(r.render_text_with(true).contains("\x1b[33;1mApply interrupted"));
        let r = ApplyReport {
            steps: vec![rep("task.t", Effect::None, Outcome::Interrupted { detail: "the start was sent".into() })],
            stopped: None,
        };
        assert_eq!(r.status(), Status::Interrupted);
        assert!(r.render_text().contains("  interrupted  task.t: x: the start was sent"));
    }

    #[test]
    fn tasks_left_stopped_come_from_the_step_outcomes() {
        let not_started = || Outcome::NotStarted { reason: StopReason::Interrupted };
        let failed = || Outcome::Failed { failure: Failure::new("boom") };
        let r = ApplyReport {
            steps: vec![
                // Stopped for an update, never started again.
                op("upd", TaskOp::Stop, DONE),
                op("upd", TaskOp::Start, not_started()),
                // Created, start failed.
                op("new", TaskOp::Create, DONE),
                op("new", TaskOp::Start, failed()),
                // Replaced: deleted, not created again.
                op("rep", TaskOp::Stop, DONE),
                op("rep", TaskOp::Delete, DONE),
                op("rep", TaskOp::Create, failed()),
                op("rep", TaskOp::Start, not_started()),
                // Stage drift: was paused, the start did not happen.
                op("drift", TaskOp::Start, not_started()),
                // The stop never happened: still running.
                op("untouched", TaskOp::Stop, not_started()),
                op("untouched", TaskOp::Start, not_started()),
                // Never created: does not exist.
                op("ghost", TaskOp::Create, failed()),
                op("ghost", TaskOp::Start, not_started()),
                // Converged.
                op("ok", TaskOp::Stop, DONE),
                op("ok", TaskOp::Start, DONE),
                // Stopped on one source for that source's update: its other sources still run.
                StepReport { task_sources: Some(vec!["s1".into()]), ..op("shard", TaskOp::Stop, DONE) },
                StepReport { task_sources: Some(vec!["s1".into()]), ..op("shard", TaskOp::Start, not_started()) },
            ],
            stopped: Some(StopReason::Interrupted),
        };
        let left: Vec<(String, LeftReason)> = r.left_stopped().into_iter().map(|l| (l.task, l.reason)).collect();
        assert_eq!(
            left,
            vec![
                ("drift".into(), LeftReason::NotStarted),
                ("new".into(), LeftReason::CreatedNotStarted),
                ("rep".into(), LeftReason::DeletedNotRecreated),
                ("shard".into(), LeftReason::StoppedByApply),
                ("upd".into(), LeftReason::StoppedByApply),
            ]
        );
        assert_eq!(
            r.left_stopped_line().unwrap(),
            "Tasks left stopped that the configuration wants running: drift, new, rep (deleted to be replaced, not \
             created again), shard (on s1), upd (run `dm-apply apply` again to converge)"
        );
        let json: serde_json::Value = serde_json::from_str(&r.render_json(&Verification::NotRun, 130)).unwrap();
        assert_eq!(json["format_version"], REPORT_FORMAT_VERSION);
        assert_eq!(json["status"], "interrupted");
        assert_eq!(json["exit_code"], 130);
        assert_eq!(json["left_stopped"][4]["task"], "upd");
        assert_eq!(json["left_stopped"][4]["reason"], "stopped_by_apply");
        assert!(json["left_stopped"][4].get("sources").is_none(), "the whole task");
        assert_eq!(json["left_stopped"][3]["sources"], serde_json::json!(["s1"]));
        assert_eq!(json["steps"][3]["outcome"], "failed");
        assert_eq!(json["steps"][3]["message"], "boom");
        assert_eq!(json["step_counts"]["not_started"], 7);
        assert_eq!(json["verification"]["status"], "not_run");
    }

    #[test]
    fn names_and_messages_from_dm_cannot_drive_the_terminal() {
        let r = ApplyReport {
            steps: vec![rep(
                "task.\u{1b}]0;pwned\u{7}",
                Effect::None,
                Outcome::Failed { failure: Failure::new("no\nApply complete! \u{1b}[2J") },
            )],
            stopped: None,
        };
        let text = r.render_text();
        assert!(!text.contains('\u{1b}') && !text.contains('\u{7}'), "{text:?}");
        assert!(!text.contains("\nApply complete!"), "a forged line: {text}");
    }

    #[test]
    fn failure_display_adds_missing_status_and_code() {
        let f = Failure { dm_code: Some(38032), ..Failure::new("task paused") };
        assert_eq!(f.to_string(), "task paused (DM error 38032)");
        let f =
            Failure { http_status: Some(400), dm_code: Some(46025), ..Failure::new("HTTP 400, DM error 46025: no") };
        assert_eq!(f.to_string(), "HTTP 400, DM error 46025: no");
    }
}
