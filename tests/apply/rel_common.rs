//! Audits of one apply run against the simulator's request log: every change DM made was a step of the run's plan,
//! the report says what really happened, and lost answers were settled by re-reading.

use std::collections::BTreeMap;

use dm_apply::apply::{ApplyReport, CompileOptions, Outcome, StepGraph, StepKind, compile};
use dm_apply::plan::Plan;
use dm_apply::sim::LoggedRequest;

/// What a step may send: its main request (`method`, exact `path`, and for creates the name in the body), and for
/// `/enable` the stops of tasks DM started on its own.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pattern {
    pub method: &'static str,
    pub path: String,
    /// For creates (POST to the collection): the resource name in the body.
    pub body_name: Option<String>,
}

impl Pattern {
    fn new(method: &'static str, path: String) -> Self {
        Pattern { method, path, body_name: None }
    }

    pub fn matches(&self, r: &LoggedRequest) -> bool {
        if r.method != self.method || r.path != self.path {
            return false;
        }
        match &self.body_name {
            None => true,
            Some(name) => body_name(r).as_deref() == Some(name.as_str()),
        }
    }
}

/// `source.source_name` or `task.name` of a create request's body.
pub fn body_name(r: &LoggedRequest) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(r.body.as_deref()?).ok()?;
    let n = v.pointer("/source/source_name").or_else(|| v.pointer("/task/name"))?;
    n.as_str().map(str::to_string)
}

/// The main request of a step (`None` for waits and state-record writes, which are checked separately).
pub fn pattern(kind: &StepKind) -> Option<Pattern> {
    Some(match kind {
        StepKind::CreateSource { source, .. } => {
            Pattern { method: "POST", path: "/api/v1/sources".into(), body_name: Some(source.source_name.clone()) }
        }
        StepKind::UpdateSource { source } => Pattern::new("PUT", format!("/api/v1/sources/{}", source.source_name)),
        StepKind::EnableSource { name, .. } => Pattern::new("POST", format!("/api/v1/sources/{name}/enable")),
        StepKind::DisableSource { name } => Pattern::new("POST", format!("/api/v1/sources/{name}/disable")),
        StepKind::DeleteSource { name, .. } => Pattern::new("DELETE", format!("/api/v1/sources/{name}")),
        StepKind::CreateTask { task } => {
            Pattern { method: "POST", path: "/api/v1/tasks".into(), body_name: Some(task.name.clone()) }
        }
        StepKind::UpdateTask { task } => Pattern::new("PUT", format!("/api/v1/tasks/{}", task.name)),
        StepKind::StartTask { name, .. } => Pattern::new("POST", format!("/api/v1/tasks/{name}/start")),
        StepKind::StopTask { name, .. } => Pattern::new("POST", format!("/api/v1/tasks/{name}/stop")),
        StepKind::DeleteTask { name, .. } => Pattern::new("DELETE", format!("/api/v1/tasks/{name}")),
        StepKind::StopRelay { name, .. } => Pattern::new("POST", format!("/api/v1/sources/{name}/relay/disable")),
        StepKind::StartRelay { name, .. } => Pattern::new("POST", format!("/api/v1/sources/{name}/relay/enable")),
        StepKind::TransferSource { name, .. } => Pattern::new("POST", format!("/api/v1/sources/{name}/transfer")),
        StepKind::WaitTask { .. } | StepKind::RecordState { .. } | StepKind::ReadCheckpoint { .. } => return None,
    })
}

fn is_template(r: &LoggedRequest) -> bool {
    r.path.starts_with("/api/v1/tasks/templates")
}

/// A request that changed DM: mutating, handled, answered with success.
pub fn landed(r: &LoggedRequest) -> bool {
    r.mutating && !r.faulted && (200..300).contains(&r.status)
}

/// The step graph `execute` runs for `plan` with `fast()` options (compilation is deterministic; without a target
/// to keep dm-apply's state record with, the library leaves the record steps out).
pub fn graph_of(plan: &Plan) -> StepGraph {
    compile(plan, &CompileOptions { allow_restart: true, skip_record: true, ..Default::default() }).expect("compiles")
}

/// The audit of one run. `log` is the simulator's request log of exactly this run.
pub fn audit_run(graph: &StepGraph, report: &ApplyReport, log: &[LoggedRequest]) {
    let text = report.render_text();
    let mut patterns: Vec<Pattern> = graph.steps().filter_map(|s| pattern(&s.kind)).collect();
    // DM's /enable starts every task of the source; the enable step may stop some of them again.
    let enables: Vec<&str> = graph
        .steps()
        .filter_map(|s| match &s.kind {
            StepKind::EnableSource { .. } => Some(s.resource.as_str()),
            _ => None,
        })
        .collect();
    let stop_after_enable = |r: &LoggedRequest| {
        !enables.is_empty() && r.method == "POST" && r.path.starts_with("/api/v1/tasks/") && r.path.ends_with("/stop")
    };

    // 1. Never a change outside the plan.
    for r in log.iter().filter(|r| landed(r)) {
        // dm-apply's own template (state record steps, and the apply lease every CLI apply takes and releases).
        let planned = patterns.iter().any(|p| p.matches(r)) || is_template(r) || stop_after_enable(r);
        assert!(planned, "{} {} changed DM but is not a step of this run's plan:\n{text}", r.method, r.path);
    }

    // 2. The report says what happened: per main request, done steps ⇔ a request that landed.
    patterns.sort();
    patterns.dedup();
    let mut by_pattern: BTreeMap<&Pattern, (usize, usize, bool)> = BTreeMap::new();
    for sr in &report.steps {
        let step = graph.step(sr.step.id).expect("step of the graph");
        assert_eq!(step.label(), sr.step.label(), "the graph is the one executed");
        let Some(p) = pattern(&step.kind) else { continue };
        let p = patterns.iter().find(|q| **q == p).expect("pattern");
        let e = by_pattern.entry(p).or_default();
        match &sr.outcome {
            Outcome::Done { note } => {
                e.0 += 1;
                // A step done without a request of its own: confirmed by re-reading after a lost answer.
                e.2 |= note.as_deref().is_some_and(|n| n.contains("confirmed by re-reading"));
            }
            Outcome::Failed { failure } if failure.message.contains("source enabled, but") => e.0 += 1,
            _ => e.1 += 1,
        }
    }
    for (p, (done, not_done, confirmed)) in by_pattern {
        let landed_n = log.iter().filter(|r| landed(r) && p.matches(r)).count();
        if done > 0 && !confirmed {
            assert!(landed_n >= 1, "{p:?}: reported done, but no such request succeeded:\n{text}");
        }
        if done == 0 && not_done > 0 {
            let explained = p.path.ends_with("/stop") && !enables.is_empty();
            assert!(
                landed_n == 0 || explained,
                "{p:?}: reported failed/skipped/not started, but the request succeeded:\n{text}"
            );
        }
    }

    // 3. A create or delete whose answer was lost is settled by re-reading before anything else is sent for it.
    for (i, r) in log.iter().enumerate() {
        let ambiguous = r.mutating && r.faulted;
        let (kind, name) = match (r.method.as_str(), r.path.as_str()) {
            ("POST", "/api/v1/sources") => ("sources", body_name(r)),
            ("POST", "/api/v1/tasks") => ("tasks", body_name(r)),
            ("DELETE", p) if p.starts_with("/api/v1/sources/") => ("sources", p.rsplit('/').next().map(str::to_string)),
            ("DELETE", p) if p.starts_with("/api/v1/tasks/") && !p.contains("/templates") => {
                ("tasks", p.rsplit('/').next().map(str::to_string))
            }
            _ => continue,
        };
        let Some(name) = name else { continue };
        if !ambiguous {
            continue;
        }
        let get = format!("/api/v1/{kind}/{name}");
        let reread = log[i + 1..].iter().position(|x| x.method == "GET" && x.path == get);
        let resent =
            log[i + 1..].iter().position(|x| x.method == r.method && x.path == r.path && body_name(x) == body_name(r));
        match (reread, resent) {
            (Some(g), Some(s)) => assert!(g < s, "{} {} was sent again before re-reading {get}", r.method, r.path),
            (None, Some(_)) => panic!("{} {} was sent again without re-reading {get}", r.method, r.path),
            // No resend: the step either confirmed by re-reading or failed saying it could not tell.
            (_, None) => {}
        }
    }
}
