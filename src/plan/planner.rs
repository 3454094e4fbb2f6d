//! `make_plan`: desired + live → plan. Pure: no I/O, no printing, no clock, no randomness. Linear in the number of
//! resources (plus one fingerprint check per recorded write-only value, run in parallel).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::model::*;
use super::relay;
use super::safe;
use crate::config::{Desired, DesiredStage, Lifecycle, Origin, SourceSpec, TaskSpec};
use crate::dm::types::{Source, Stage, Task, Unit};
use crate::live::{Live, LiveTask};
use crate::normalize::{self, Side, WriteOnlyField};
use crate::secret::{SENSITIVE, Secret};
use crate::state::assess::{self, FieldStatus};
use crate::state::fingerprint::{StateKey, Verdict};
use crate::state::{Entry, STATE_TEMPLATE, StateView};

/// Why an undeclared resource is deleted.
const PRUNE_REASON: &str = "not in the configuration, and --prune deletes undeclared resources";

/// Options of a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Delete resources that exist in DM but are not declared.
    pub prune: bool,
    /// Limit to these resources and what they depend on (a task's sources). Empty: everything.
    pub targets: Vec<Address>,
    /// Allow replacements that restart a migration from scratch.
    pub allow_restart: bool,
    /// `-replace ADDRESS`: re-send these resources' write-only values (a source: PUT with its password; a task:
    /// replace), whatever the state record says.
    pub replace: Vec<Address>,
    /// The state key, to check keyed fingerprints (`None`: only Argon2id entries can be checked).
    pub state_key: Option<StateKey>,
    /// `--accept-loss task.NAME`: replace or update these tasks even though DM holds settings of theirs that
    /// dm-apply's configuration cannot carry (they are lost; see `crate::legacy`).
    pub accept_loss: Vec<Address>,
}

/// One reason a plan is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum PlanProblem {
    #[error(
        "{address} (declared at {origin}) has lifecycle.prevent_destroy set, but the plan would {what} it: {reasons}"
    )]
    #[diagnostic(
        code(plan::prevent_destroy),
        help("change the configuration so that no replacement is needed, or remove prevent_destroy deliberately")
    )]
    PreventDestroy { address: Address, origin: String, what: String, reasons: String },
    #[error("{address} (declared at {origin}) must be replaced, which restarts its migration from scratch: {reasons}")]
    #[diagnostic(
        code(plan::restart),
        help(
            "if a full re-migration is intended, run with --allow-restart or set `lifecycle: {{allow_restart: true}}` \
             on the task; otherwise revert the change (or give binlog positions for an incremental task)"
        )
    )]
    RestartNotAllowed { address: Address, origin: String, reasons: String },
    #[error(
        "{address} (declared at {origin}): binlog filter rule `{rule}` uses the event `{event}`, which DM-master \
         {version} does not know; it would accept the task and silently drop the whole rule"
    )]
    #[diagnostic(
        code(plan::event_version),
        help("DM v8.5.4 and later know this event; upgrade DM-master, or remove the event from the rule")
    )]
    UnsupportedEvent { address: Address, origin: String, rule: String, event: String, version: String },
    #[error("{address} (declared at {origin}): {summary}")]
    #[diagnostic(code(plan::config_loss), help("{help}"))]
    ConfigLoss { address: Address, origin: String, summary: String, help: String },
    #[error("--target {0}: no such resource is declared or exists in DM")]
    #[diagnostic(code(plan::target), help("targets are written `source.NAME` or `task.NAME`"))]
    UnknownTarget(Address),
    #[error("{address} (declared at {origin}): renamed_from cannot be carried out: {detail}")]
    #[diagnostic(
        code(plan::rename),
        help(
            "renamed_from lists former names of this task only: names no other declared task has, of which at most one still exists in DM"
        )
    )]
    BadRename { address: Address, origin: String, detail: String },
    #[error("-replace {0}: no such resource is declared")]
    #[diagnostic(
        code(plan::replace),
        help("-replace re-sends the write-only values of a declared `source.NAME` or `task.NAME`")
    )]
    UnknownReplace(Address),
}

/// The plan cannot be made or would do something the configuration forbids.
#[derive(Debug, Clone, PartialEq, thiserror::Error, miette::Diagnostic)]
#[error("the plan is refused ({} problem{})", problems.len(), if problems.len() == 1 { "" } else { "s" })]
#[diagnostic(code(plan::refused))]
pub struct PlanError {
    #[related]
    pub problems: Vec<PlanProblem>,
    /// The plan that was refused, so the command can still show it.
    pub plan: Option<Box<Plan>>,
}

/// Build the plan and enforce `prevent_destroy` and the restart guard.
pub fn make_plan(desired: &Desired, live: &Live, opts: &PlanOptions) -> Result<Plan, PlanError> {
    let plan = build_plan(desired, live, opts)?;
    finish_plan(plan, desired, live, opts)
}

/// The checks of [`make_plan`] on a built plan: what DM stores beyond the OpenAPI model (when `live.legacy` was
/// read, `crate::legacy::plan`), then the lifecycle guards and version checks.
pub fn finish_plan(mut plan: Plan, desired: &Desired, live: &Live, opts: &PlanOptions) -> Result<Plan, PlanError> {
    let mut problems = check_legacy(&mut plan, desired, live, opts);
    problems.extend(check_guards(&plan, desired, opts));
    problems.extend(check_version(desired, &live.version));
    if problems.is_empty() { Ok(plan) } else { Err(PlanError { problems, plan: Some(Box::new(plan)) }) }
}

/// What to do about DM's own word.
const KEEP_OR_ACCEPT: &str = "keep managing this task with dmctl (remove it from the configuration, or leave it \
unchanged), or accept the loss for this run with --accept-loss {address} (docs/plan.md, \"Tasks created with dmctl\")";

/// Tasks the plan would PUT or replace whose stored configuration holds more than DM's OpenAPI model can carry
/// (docs/dm-behaviour.md R11.5): each loss is a problem unless accepted (`--accept-loss`), and an update DM would
/// refuse (46035, R6.7) becomes a replace. Runs only when the legacy configurations were read.
fn check_legacy(plan: &mut Plan, desired: &Desired, live: &Live, opts: &PlanOptions) -> Vec<PlanProblem> {
    let reads = &live.legacy;
    if !reads.consulted {
        return vec![];
    }
    if let Some(w) = &reads.unserved {
        plan.warnings.push(w.clone());
    }
    let unknown = crate::legacy::unknown_accepts(desired, &opts.accept_loss);
    if !unknown.is_empty() {
        plan.warnings.push(format!(
            "--accept-loss {}: not a declared task; ignored",
            unknown.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let mut problems = vec![];
    for c in plan.changes.iter_mut() {
        if c.address.kind != Kind::Task
            || !matches!(c.action, ConfigAction::Update | ConfigAction::Replace)
            || c.hold.is_some()
            || !live.tasks.contains_key(&c.address.name)
        {
            continue;
        }
        let Some((_, origin)) = desired.tasks.get(&c.address.name) else { continue };
        let accepted = opts.accept_loss.contains(&c.address);
        let what = if c.action == ConfigAction::Update { "update" } else { "replace" };
        let help = KEEP_OR_ACCEPT.replace("{address}", &c.address.to_string());
        let assessment = match reads.tasks.get(&c.address.name) {
            Some(crate::legacy::LegacyRead::Read(subtasks)) => {
                let wire = match &c.desired {
                    Some(DesiredPayload::Task(t)) => Some(t),
                    _ => None,
                };
                crate::legacy::assess(subtasks, wire)
            }
            other => {
                let why = match other {
                    Some(crate::legacy::LegacyRead::Failed(why)) => why.clone(),
                    _ => "it was not read".to_string(),
                };
                if accepted {
                    c.reasons.push(format!(
                        "DM's full configuration of the task could not be read ({why}); whatever DM's OpenAPI does \
                         not show is lost, as accepted (--accept-loss {})",
                        c.address
                    ));
                } else {
                    problems.push(PlanProblem::ConfigLoss {
                        address: c.address.clone(),
                        origin: origin_str(origin),
                        summary: format!(
                            "the plan would {what} it, but DM's full configuration of the task could not be read \
                             ({why}), so dm-apply cannot tell what the {what} would drop"
                        ),
                        help: format!(
                            "check that DM-master serves /apis/v1alpha1/subtasks/{}; or {help}",
                            c.address.name
                        ),
                    });
                }
                continue;
            }
        };
        if c.action == ConfigAction::Update && !assessment.refuses_update.is_empty() {
            c.action = ConfigAction::Replace;
            for a in &mut c.attributes {
                a.forces_replacement = true;
            }
            c.reasons.push(format!(
                "forces replacement: DM refuses an OpenAPI update of this task (46035): {}",
                assessment.refuses_update.join("; ")
            ));
            if let (Some(DesiredPayload::Task(wire)), Some(before), Some(after), Some(lt)) =
                (&c.desired, &c.before, &c.after, live.tasks.get(&c.address.name))
            {
                let (impact, why) = safe::replace_impact(&safe::ReplaceInput {
                    old: lt,
                    new: wire,
                    version: &live.version,
                    same_name: true,
                    same_meta_and_target: same_meta_and_target(before, after),
                });
                c.impact = impact;
                c.reasons.push(why);
            }
        }
        if assessment.losses.is_empty() {
            continue;
        }
        let what = if c.action == ConfigAction::Update { "update" } else { "replace" };
        if accepted {
            c.reasons.push(format!(
                "DM holds settings dm-apply's configuration cannot carry; the {what} drops them, as accepted \
                 (--accept-loss {}): {}",
                c.address,
                assessment.losses.join("; ")
            ));
        } else {
            problems.push(PlanProblem::ConfigLoss {
                address: c.address.clone(),
                origin: origin_str(origin),
                summary: format!(
                    "the plan would {what} it through DM's OpenAPI, which would silently drop or invert settings \
                     DM holds for it (set with dmctl) that dm-apply's configuration cannot carry:\n  - {}",
                    assessment.losses.join("\n  - ")
                ),
                help,
            });
        }
    }
    problems
}

fn origin_str(o: &Origin) -> String {
    format!("{}:{}", o.file, o.line)
}

/// Lifecycle guards on a built plan.
pub fn check_guards(plan: &Plan, desired: &Desired, opts: &PlanOptions) -> Vec<PlanProblem> {
    let mut problems = vec![];
    for c in &plan.changes {
        let (lifecycle, origin): (&Lifecycle, &Origin) = match c.address.kind {
            Kind::Source => match desired.sources.get(&c.address.name) {
                Some((s, o)) => (&s.lifecycle, o),
                None => continue,
            },
            Kind::Task => match desired.tasks.get(&c.address.name) {
                Some((t, o)) => (&t.lifecycle, o),
                None => continue,
            },
        };
        let reasons = c.reasons.join("; ");
        if lifecycle.prevent_destroy && matches!(c.action, ConfigAction::Replace | ConfigAction::Delete) {
            problems.push(PlanProblem::PreventDestroy {
                address: c.address.clone(),
                origin: origin_str(origin),
                what: if c.action == ConfigAction::Replace { "replace" } else { "destroy" }.to_string(),
                reasons: reasons.clone(),
            });
        }
        if matches!(c.impact, Impact::Replace { restarts_migration: true, .. })
            && !opts.allow_restart
            && !lifecycle.allow_restart
        {
            problems.push(PlanProblem::RestartNotAllowed {
                address: c.address.clone(),
                origin: origin_str(origin),
                reasons,
            });
        }
    }
    problems
}

/// What the configuration asks of this DM-master version that it would silently not do.
pub fn check_version(desired: &Desired, version: &crate::dm::ServerVersion) -> Vec<PlanProblem> {
    if version.knows_foreign_key_events() != Some(false) {
        return vec![];
    }
    let mut problems = vec![];
    for (name, (spec, origin)) in &desired.tasks {
        for (rule, r) in &spec.binlog_filter_rule {
            for ev in r.ignore_event.iter().flatten() {
                if crate::config::FOREIGN_KEY_EVENTS.iter().any(|f| f.eq_ignore_ascii_case(ev.trim())) {
                    problems.push(PlanProblem::UnsupportedEvent {
                        address: Address::task(name),
                        origin: origin_str(origin),
                        rule: rule.clone(),
                        event: ev.clone(),
                        version: version.raw.clone(),
                    });
                }
            }
        }
    }
    problems
}

/// A task's DM-updatable fields (docs/dm-behaviour.md §6): block-allow list, routes, binlog filters, repl_threads/batch.
fn updatable(path: &str) -> bool {
    [
        "table_migrate_rule",
        "binlog_filter_rule",
        "source_config.incr_migrate_conf.repl_threads",
        "source_config.incr_migrate_conf.repl_batch",
    ]
    .iter()
    .any(|p| normalize::path_matches(path, p))
}

fn ignored(lifecycle: &Lifecycle, path: &str) -> bool {
    lifecycle.ignore_changes.iter().any(|p| normalize::path_matches(path, p))
}

/// Attribute diff of two comparable values (paths in `after`'s order, then removed ones).
fn diff(before: &Value, after: &Value, lifecycle: &Lifecycle) -> (Vec<AttributeChange>, usize) {
    // Fast path for the common case (nothing changed): no flattening. The unchanged count is then `usize::MAX`
    // ("everything"), resolved by `unchanged_count` only for resources that end up in the plan.
    if lifecycle.ignore_changes.is_empty() && before == after {
        return (vec![], usize::MAX);
    }
    let b: Vec<(String, Value)> = normalize::flatten(before);
    let a: Vec<(String, Value)> = normalize::flatten(after);
    let bmap: BTreeMap<&str, &Value> = b.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let amap: BTreeMap<&str, &Value> = a.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut changes = vec![];
    let mut unchanged = 0;
    for (k, v) in &a {
        if ignored(lifecycle, k) {
            continue;
        }
        match bmap.get(k.as_str()) {
            Some(old) if *old == v => unchanged += 1,
            old => changes.push(AttributeChange {
                path: k.clone(),
                before: old.map(|x| (*x).clone()),
                after: Some(v.clone()),
                sensitive: false,
                forces_replacement: false,
            }),
        }
    }
    for (k, v) in &b {
        if !amap.contains_key(k.as_str()) && !ignored(lifecycle, k) {
            changes.push(AttributeChange {
                path: k.clone(),
                before: Some(v.clone()),
                after: None,
                sensitive: false,
                forces_replacement: false,
            });
        }
    }
    (changes, unchanged)
}

/// Resolve the unchanged count of the fast path.
fn unchanged_count(n: usize, after: &Value) -> usize {
    if n == usize::MAX { normalize::flatten(after).len() } else { n }
}

fn sensitive_attr(path: &str) -> AttributeChange {
    AttributeChange {
        path: path.to_string(),
        before: Some(Value::String(SENSITIVE.into())),
        after: Some(Value::String(SENSITIVE.into())),
        sensitive: true,
        forces_replacement: false,
    }
}

fn with_sensitive(mut v: Value, keys: &[&str]) -> Value {
    for k in keys {
        let mut cur = &mut v;
        let parts: Vec<&str> = k.split('.').collect();
        for (i, p) in parts.iter().enumerate() {
            let Some(obj) = cur.as_object_mut() else { break };
            if i + 1 == parts.len() {
                obj.insert((*p).to_string(), Value::String(SENSITIVE.into()));
                break;
            }
            cur = obj.entry((*p).to_string()).or_insert_with(|| Value::Object(Default::default()));
        }
    }
    v
}

fn with_enable(mut v: Value, enable: bool) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.insert("enable".to_string(), Value::Bool(enable));
    }
    v
}

/// Whether dm-apply can judge write-only values in this plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tracking {
    /// A record (or none yet) and a declared task to keep it with.
    On,
    /// No declared task: no record is kept; write-only values are trusted as they are.
    NoHome,
    /// The record cannot be read (a warning says why): nothing is judged in this run.
    Unusable,
}

/// What the write-only values of one existing resource need.
#[derive(Debug, Default)]
struct WriteOnlyOutcome {
    /// Fields to send, with the reason for each.
    send: Vec<(&'static str, String)>,
    /// Trusted as they are in DM (trust on first use): recorded without sending. The reason, for the note.
    adopt: Option<String>,
}

/// Judge a resource's write-only values against its record entry (see docs/plan.md).
#[allow(clippy::too_many_arguments)]
fn judge_write_only(
    address: &Address,
    fields: &[WriteOnlyField],
    version: Option<u64>,
    entry: Option<&Entry>,
    tracking: Tracking,
    replace: bool,
    verdicts: &BTreeMap<(String, &'static str), Verdict>,
    lifecycle: &Lifecycle,
    removable: &[&'static str],
) -> WriteOnlyOutcome {
    let mut out = WriteOnlyOutcome::default();
    let wanted = |k: &str| !ignored(lifecycle, k);
    if replace {
        for f in fields.iter().filter(|f| wanted(f.key)) {
            out.send.push((f.key, format!("{}: re-sent as asked (-replace {address})", f.label)));
        }
        return out;
    }
    if tracking != Tracking::On {
        return out;
    }
    if let Some(v) = version {
        match entry.map(|e| e.write_only_version) {
            None => out.adopt = Some("no entry in dm-apply's state record".into()),
            Some(None) => out.adopt = Some(format!("write_only_version {v} is new (fingerprints were kept until now)")),
            Some(Some(old)) if old == v => {}
            Some(Some(old)) => {
                for f in fields.iter().filter(|f| wanted(f.key)) {
                    out.send.push((f.key, format!("{}: write_only_version changed from {old} to {v}", f.label)));
                }
                // Nothing write-only to send: the new version is still recorded.
                if out.send.is_empty() {
                    out.adopt = Some(format!("write_only_version changed from {old} to {v}, nothing to send"));
                }
            }
        }
        return out;
    }
    if entry.is_none() {
        out.adopt = Some("no entry in dm-apply's state record".into());
    }
    let statuses = assess::field_statuses(&address.to_string(), entry, fields, verdicts, removable);
    for (key, status) in statuses {
        if !wanted(key) {
            continue;
        }
        let label = fields.iter().find(|f| f.key == key).map(|f| f.label).unwrap_or(key);
        match status {
            FieldStatus::Unchanged => {}
            FieldStatus::Changed => out.send.push((key, format!("{label} changed in the configuration"))),
            FieldStatus::Untracked(why) => {
                out.adopt.get_or_insert(why);
            }
        }
    }
    out
}

/// The attribute line of a write-only field that is sent.
fn write_only_attr(f: Option<&WriteOnlyField>, key: &str) -> AttributeChange {
    match f {
        Some(f) if !f.sensitive => AttributeChange {
            path: key.to_string(),
            before: Some(Value::String("(not returned by DM)".into())),
            after: f.display.clone(),
            sensitive: false,
            forces_replacement: false,
        },
        // A sensitive field, or one removed from the configuration.
        Some(_) => sensitive_attr(key),
        None => AttributeChange {
            path: key.to_string(),
            before: Some(Value::String("(not returned by DM)".into())),
            after: None,
            sensitive: false,
            forces_replacement: false,
        },
    }
}

fn observed_task(lt: &LiveTask) -> Observed {
    Observed::Task {
        subtasks: lt.status.as_ref().map(|l| {
            let mut v: Vec<ObservedSubtask> = l
                .iter()
                .map(|s| ObservedSubtask {
                    source_name: s.source_name.clone(),
                    stage: s.stage.clone(),
                    unit: s.unit.as_str().to_string(),
                    error_msg: s.error_msg.clone().filter(|m| !m.is_empty()),
                })
                .collect();
            v.sort_by(|a, b| a.source_name.cmp(&b.source_name));
            v
        }),
        status_error: lt.status_error.clone(),
    }
}

fn stopped_tasks_of(impact: &Impact) -> &[String] {
    match impact {
        Impact::StopUpdateStart { stopped_tasks } => stopped_tasks,
        _ => &[],
    }
}

/// Whether a subtask is (meant to be) running: Running, or unknown. A Finished subtask of a full/dump/load task
/// still has expected stage Running in DM, which blocks a source update (46025) like a running one, so it counts
/// too.
fn subtask_running(s: &crate::dm::types::SubTaskStatus) -> bool {
    matches!(s.stage, Stage::Running | Stage::Finished | Stage::Empty | Stage::Unknown(_))
}

/// Any subtask (meant to be) running (an unknown status counts), or paused by the worker on an error (its expected
/// stage stays Running, so DM refuses updates as if it ran).
pub(super) fn task_expected_running(lt: &LiveTask) -> bool {
    lt.status.as_deref().is_none_or(|l| l.iter().any(subtask_expected_running))
}

fn subtask_expected_running(s: &crate::dm::types::SubTaskStatus) -> bool {
    subtask_running(s) || (s.stage == Stage::Paused && s.error_msg.as_deref().is_some_and(|m| !m.trim().is_empty()))
}

/// [`task_expected_running`] for the task's subtask on `source` only: DM refuses a source update while that subtask
/// is expected to run, whatever the others do (docs/dm-behaviour.md R3.7). A status without that subtask counts the
/// whole task.
pub(super) fn expected_running_on(lt: &LiveTask, source: &str) -> bool {
    match lt.status.as_deref() {
        Some(l) if l.iter().any(|s| s.source_name == source) => {
            l.iter().filter(|s| s.source_name == source).any(subtask_expected_running)
        }
        _ => task_expected_running(lt),
    }
}

/// Digest of the live object's canonical form (desired-independent), for stale-plan detection.
pub fn source_digest(s: &Source) -> String {
    normalize::digest(&normalize::source_comparable(s, None))
}

pub fn task_digest(t: &Task, version: &crate::dm::ServerVersion) -> String {
    // Secrets are not in the comparable form: digests never carry them.
    normalize::digest_of(&normalize::task_cmp(t, Side::Live, None, version))
}

fn first_line(s: &str) -> String {
    let l = s.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    if l.chars().count() > 300 { format!("{}…", l.chars().take(300).collect::<String>()) } else { l.to_string() }
}

/// DM re-runs the whole precheck on a task update, including the check that the configured binlog start position
/// still exists upstream, for tasks without a dump unit and without relay (docs/dm-behaviour.md R5.8, R6.3).
fn precheck_note(wire: &Task, live: &Live) -> Option<String> {
    if !matches!(wire.task_mode.as_str(), "incremental" | "load") {
        return None;
    }
    let skipped = wire.ignore_checking_items.iter().flatten().any(|i| i == "meta_position" || i == "all");
    if skipped {
        return None;
    }
    let positions: Vec<String> = wire
        .source_config
        .source_conf
        .iter()
        .filter(|sc| {
            let relay = live.relay_sources.as_ref().is_some_and(|r| r.contains(&sc.source_name))
                || live
                    .sources
                    .get(&sc.source_name)
                    .and_then(|s| s.relay_config.as_ref())
                    .is_some_and(|r| r.enable_relay == Some(true));
            !relay
        })
        .filter_map(|sc| {
            let name = sc.binlog_name.as_deref().filter(|n| !n.is_empty());
            let gtid = sc.binlog_gtid.as_deref().filter(|g| !g.is_empty());
            match (name, gtid) {
                (Some(n), _) => Some(format!("{} {n}:{}", sc.source_name, sc.binlog_pos.unwrap_or(4))),
                (None, Some(g)) => Some(format!("{} GTID {g}", sc.source_name)),
                _ => None,
            }
        })
        .collect();
    if positions.is_empty() {
        return None;
    }
    Some(format!(
        "DM prechecks the task again on update, including that its configured start position ({}) is still in the \
         upstream binlog; if that binlog was purged, DM refuses the update (26005) and the task keeps its old \
         configuration (see docs/apply.md, \"Updates are prechecked\")",
        positions.join(", ")
    ))
}

/// DM refuses a source PUT, /enable and /disable while relay workers were started for the source by name
/// (docs/dm-behaviour.md R3.7, R3.10, R3.11, R4.3), and a source delete (R3.9).
pub(super) fn relay_hold(source: &str) -> Hold {
    Hold::blocked(
        format!(
            "relay runs for source {source} (relay workers were started for it); DM refuses to update, enable, \
             disable or delete a source while relay runs (error 46025 / 46023)"
        ),
        format!(
            "stop relay for {source} (`dmctl stop-relay`, or POST /api/v1/sources/{source}/relay/disable naming the \
             relay workers), apply, then start relay again"
        ),
    )
}

/// DM refuses to start a task on a disabled source (docs/dm-behaviour.md R8.2, error 38058).
fn disabled_source_hold(task: &str, sources: &[&str]) -> Hold {
    Hold::blocked(
        format!(
            "task {task} should run, but its source {} is disabled (as declared, or as DM has it when not declared), \
             and DM refuses to start a task on a disabled source (error 38058)",
            sources.join(", ")
        ),
        "enable the source (`enable: true` in its declaration), or declare the task `stage: stopped`",
    )
}

/// Build the plan without enforcing lifecycle guards (`drift` uses this; `plan` and `apply` use [`make_plan`]).
pub fn build_plan(desired: &Desired, live: &Live, opts: &PlanOptions) -> Result<Plan, PlanError> {
    let mut planner = Planner::new(desired, live, opts)?;
    planner.scope()?;
    planner.sources();
    planner.tasks()?;
    planner.undeclared();
    Ok(planner.assemble())
}

/// One plan in the making: the inputs, and what the steps of [`build_plan`] collect. One method per concern (the
/// order of the calls in `build_plan` is the order of the warnings and notes); none does I/O.
struct Planner<'a> {
    desired: &'a Desired,
    live: &'a Live,
    opts: &'a PlanOptions,
    /// `-replace`: re-send these resources' write-only values.
    replace: BTreeSet<&'a Address>,
    /// dm-apply's state record lives with the target of the declared task with the smallest name.
    home: Option<String>,
    tracking: Tracking,
    /// Every fingerprint check of this plan, run at once.
    verdicts: BTreeMap<(String, &'static str), Verdict>,
    /// `--target`: the targets and what they depend on (`None`: everything).
    scope: Option<BTreeSet<Address>>,
    /// Which live tasks use each source, and whether they run (impact of a source update).
    tasks_on_source: BTreeMap<&'a str, Vec<&'a LiveTask>>,
    /// Declared renames to carry out: new name → the old name that exists in DM.
    renames: BTreeMap<String, String>,
    changes: Vec<ResourceChange>,
    unmanaged: Vec<Unmanaged>,
    warnings: Vec<String>,
    notes: Vec<String>,
    /// Resources whose write-only values are trusted as they are in DM, with why (one note each).
    adopted: Vec<(Address, String)>,
    /// Resources without write-only values added to the record (one note for all).
    quietly_adopted: usize,
}

impl<'a> Planner<'a> {
    /// Check `-replace`, decide whether write-only values can be judged, and run every fingerprint check.
    fn new(desired: &'a Desired, live: &'a Live, opts: &'a PlanOptions) -> Result<Self, PlanError> {
        let unknown_replace: Vec<PlanProblem> = opts
            .replace
            .iter()
            .filter(|a| match a.kind {
                Kind::Source => !desired.sources.contains_key(&a.name),
                Kind::Task => !desired.tasks.contains_key(&a.name),
            })
            .map(|a| PlanProblem::UnknownReplace(a.clone()))
            .collect();
        if !unknown_replace.is_empty() {
            return Err(PlanError { problems: unknown_replace, plan: None });
        }
        let home = desired.tasks.keys().next().cloned();
        let tracking = match (&home, live.state.usable()) {
            (None, _) => Tracking::NoHome,
            (Some(_), true) => Tracking::On,
            (Some(_), false) => Tracking::Unusable,
        };
        let mut tasks_on_source: BTreeMap<&str, Vec<&LiveTask>> = BTreeMap::new();
        for lt in live.tasks.values() {
            for sc in &lt.task.source_config.source_conf {
                tasks_on_source.entry(sc.source_name.as_str()).or_default().push(lt);
            }
        }
        let mut planner = Planner {
            desired,
            live,
            opts,
            replace: opts.replace.iter().collect(),
            home,
            tracking,
            verdicts: BTreeMap::new(),
            scope: None,
            tasks_on_source,
            renames: BTreeMap::new(),
            changes: vec![],
            unmanaged: vec![],
            warnings: live.warnings.clone(),
            notes: vec![],
            adopted: vec![],
            quietly_adopted: 0,
        };
        planner.verdicts = planner.fingerprint_checks();
        Ok(planner)
    }

    fn version(&self) -> &'a crate::dm::ServerVersion {
        &self.live.version
    }

    /// The record entry of a resource.
    fn entry(&self, a: &Address) -> Option<&'a Entry> {
        self.live.state.record().and_then(|r| r.entry(a))
    }

    fn in_scope(&self, a: &Address) -> bool {
        self.scope.as_ref().is_none_or(|s| s.contains(a))
    }

    /// Every fingerprint check of this plan, at once and in parallel (Argon2id takes tens of milliseconds each).
    fn fingerprint_checks(&self) -> BTreeMap<(String, &'static str), Verdict> {
        if self.tracking != Tracking::On || self.live.state.record().is_none() {
            return BTreeMap::new();
        }
        let (desired, live, version) = (self.desired, self.live, self.version());
        let mut checks = vec![];
        for (name, (spec, _)) in &desired.sources {
            let a = Address::source(name);
            if spec.write_only_version.is_none() && live.sources.contains_key(name) && !self.replace.contains(&a) {
                let fields = normalize::source_write_only(&normalize::source_to_wire(spec, version));
                checks.extend(assess::checks_for(&a.to_string(), self.entry(&a), &fields));
            }
        }
        for (name, (spec, _)) in &desired.tasks {
            let a = Address::task(name);
            if spec.write_only_version.is_none() && live.tasks.contains_key(name) && !self.replace.contains(&a) {
                let fields = normalize::task_write_only_fields(&normalize::task_to_wire(spec, version), version);
                checks.extend(assess::checks_for(&a.to_string(), self.entry(&a), &fields));
            }
        }
        assess::run_checks(&checks, self.opts.state_key.as_ref())
    }

    /// Scope from --target: the targets and what they depend on.
    fn scope(&mut self) -> Result<(), PlanError> {
        let (desired, live) = (self.desired, self.live);
        if self.opts.targets.is_empty() {
            return Ok(());
        }
        let mut s = BTreeSet::new();
        let mut problems = vec![];
        for t in &self.opts.targets {
            let known = match t.kind {
                Kind::Source => desired.sources.contains_key(&t.name) || live.sources.contains_key(&t.name),
                Kind::Task => desired.tasks.contains_key(&t.name) || live.tasks.contains_key(&t.name),
            };
            if !known {
                problems.push(PlanProblem::UnknownTarget(t.clone()));
            }
            s.insert(t.clone());
            if t.kind == Kind::Task
                && let Some((spec, _)) = desired.tasks.get(&t.name)
            {
                for sc in &spec.source_config.source_conf {
                    if desired.sources.contains_key(&sc.source_name) {
                        s.insert(Address::source(&sc.source_name));
                    }
                }
            }
        }
        if !problems.is_empty() {
            return Err(PlanError { problems, plan: None });
        }
        self.warnings.push(format!(
            "resource targeting is in effect (--target): this plan covers only {} and may not show every change",
            s.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")
        ));
        self.scope = Some(s);
        Ok(())
    }

    /// A resource whose write-only values are trusted as they are: counted in the state-record notes.
    fn count_adopted(&mut self, address: &Address, why: &str, quiet: bool) {
        if quiet {
            self.quietly_adopted += 1;
        } else {
            self.adopted.push((address.clone(), why.to_string()));
        }
    }

    /// Declared sources.
    fn sources(&mut self) {
        let desired = self.desired;
        let placement = relay::Ctx::new(desired, self.live);
        for (name, (spec, origin)) in &desired.sources {
            let address = Address::source(name);
            if self.in_scope(&address) {
                self.source(address, spec, origin, &placement);
            }
        }
    }

    fn source(&mut self, address: Address, spec: &'a SourceSpec, origin: &Origin, placement: &relay::Ctx<'_>) {
        let (live, version) = (self.live, self.version());
        let name = &address.name;
        let wire = normalize::source_to_wire(spec, version);
        let fields = normalize::source_write_only(&wire);
        let all_keys: Vec<String> = fields.iter().map(|f| f.key.to_string()).collect();
        let tracking = self.tracking;
        let recorded = |merge: bool| {
            (tracking == Tracking::On).then(|| RecordPlan::Set {
                fields: all_keys.clone(),
                version: spec.write_only_version,
                merge,
                adopt: false,
            })
        };
        let after = normalize::source_comparable(&wire, Some(spec));
        let mut masked_keys = vec![];
        if wire.password.is_some() {
            masked_keys.push("password");
        }
        // `enable` is a runtime action, not a compared attribute, but readers of before/after want to see it.
        let after_masked = with_enable(with_sensitive(after.clone(), &masked_keys), spec.enable);
        let mut change = ResourceChange {
            after: Some(after_masked),
            desired: Some(DesiredPayload::Source(wire.clone())),
            origin: Some(origin.clone()),
            ..ResourceChange::new(address.clone())
        };
        let Some(l) = live.sources.get(name) else {
            change.action = ConfigAction::Create;
            change.impact = Impact::Create;
            change.send_password = wire.password.is_some();
            change.reasons.push("declared in the configuration but absent from DM".to_string());
            change.record = recorded(false);
            relay::place(&mut change, spec, None, placement, &[], &mut self.warnings);
            self.changes.push(change);
            return;
        };
        let before = normalize::source_comparable(l, Some(spec));
        let (mut attrs, unchanged) = diff(&before, &after, &spec.lifecycle);
        if spec.relay.is_some() {
            // Relay started through the config flag is stopped through DM's relay endpoint, which clears the flag
            // without writing the source (see `relay::place`).
            attrs.retain(|a| !(a.path == "relay_config.enable_relay" && a.after == Some(Value::Bool(false))));
        }
        if !attrs.is_empty() {
            change
                .reasons
                .push(format!("changed: {}", attrs.iter().map(|a| a.path.as_str()).collect::<Vec<_>>().join(", ")));
        }
        // Write-only values: judged against dm-apply's state record.
        let wo = judge_write_only(
            &address,
            &fields,
            spec.write_only_version,
            self.entry(&address),
            tracking,
            self.replace.contains(&address),
            &self.verdicts,
            &spec.lifecycle,
            &[],
        );
        for (key, reason) in &wo.send {
            attrs.push(write_only_attr(fields.iter().find(|f| f.key == *key), key));
            change.reasons.push(reason.clone());
        }
        change.send_password =
            attrs.iter().any(|a| a.path == normalize::SOURCE_PASSWORD_KEY) && wire.password.is_some();
        change.unchanged_attributes = unchanged_count(unchanged, &after);
        change.before = Some(with_enable(with_sensitive(before, &masked_keys), l.enable));
        change.live_digest = Some(source_digest(l));
        change.observed = Some(Observed::Source { enable: l.enable });
        source_stage_drift(&mut change, spec, l);
        let on_source: Vec<&LiveTask> = self.tasks_on_source.get(name.as_str()).cloned().unwrap_or_default();
        if !attrs.is_empty() {
            change.action = ConfigAction::Update;
            change.impact = source_update_impact(name, &on_source);
            // The PUT sends the TLS contents always and the password only when `send_password`.
            if tracking == Tracking::On {
                // An untracked password is trusted (recorded without being sent), as without the update.
                let sent: Vec<String> = fields
                    .iter()
                    .filter(|f| f.key != normalize::SOURCE_PASSWORD_KEY || change.send_password || wo.adopt.is_some())
                    .map(|f| f.key.to_string())
                    .collect();
                if let Some(why) = &wo.adopt {
                    self.adopted.push((address.clone(), why.clone()));
                }
                let merge = self.entry(&address).is_some() && spec.write_only_version.is_none();
                change.record =
                    Some(RecordPlan::Set { fields: sent, version: spec.write_only_version, merge, adopt: false });
            }
        } else if let Some(why) = &wo.adopt {
            change.record = as_adopted(recorded(false));
            self.count_adopted(&address, why, fields.is_empty() && spec.write_only_version.is_none());
        }
        change.attributes = attrs;
        // Relay not declared but running: DM refuses the change, and dm-apply does not touch relay it does not manage.
        if spec.relay.is_none()
            && !change.is_noop()
            && live.relay_sources.as_ref().is_some_and(|r| r.contains(name.as_str()))
        {
            change.hold = Some(relay_hold(name));
        }
        // A change that stops a task in shard DDL coordination waits (see `safe::shard_ddl_hold`).
        if change.hold.is_none() {
            let disable = change.runtime.contains(&RuntimeAction::Disable);
            let stops: Vec<&LiveTask> = on_source
                .iter()
                .copied()
                .filter(|t| disable || stopped_tasks_of(&change.impact).contains(&t.task.name))
                .collect();
            let what = if disable { "disable" } else { "update" };
            change.hold = safe::source_stop_hold(name, &stops, what);
            // Declared disabled, the tasks stop on purpose: only said. An update stops them only because DM
            // requires it (46025), so it waits for their dumps unless restarts are allowed.
            let allowed = |t: &str| {
                self.opts.allow_restart
                    || self.desired.tasks.get(t).is_some_and(|(spec, _)| spec.lifecycle.allow_restart)
            };
            match safe::dump_stop(name, &stops, what, disable, allowed) {
                safe::DumpStop::Nothing => {}
                safe::DumpStop::Allowed(why) => change.reasons.push(why),
                safe::DumpStop::Held(h) if change.hold.is_none() => change.hold = Some(h),
                safe::DumpStop::Held(_) => {}
            }
        }
        relay::place(&mut change, spec, Some(l), placement, &on_source, &mut self.warnings);
        if let Impact::StopUpdateStart { stopped_tasks } = &change.impact {
            let unknown: Vec<&str> = stopped_tasks
                .iter()
                .filter(|t| live.tasks.get(t.as_str()).is_some_and(|lt| lt.status.is_none()))
                .map(String::as_str)
                .collect();
            if !unknown.is_empty() {
                change.reasons.push(format!(
                    "status of {} unavailable: assumed running, so stopped before the update and started again \
                     after it",
                    unknown.join(", ")
                ));
            }
        }
        if !change.is_noop() || change.record.is_some() {
            self.changes.push(change);
        }
    }

    /// Declared tasks. Renames come first: they decide which live task a declared one is compared with.
    fn tasks(&mut self) -> Result<(), PlanError> {
        // Which upstreams keep letter case, as DM's stored patterns show (see `safe::case_sensitive_sources`).
        let case_sensitive = safe::case_sensitive_sources(self.live.tasks.values().map(|t| &t.task));
        self.renames()?;
        let desired = self.desired;
        for (name, (spec, origin)) in &desired.tasks {
            let address = Address::task(name);
            if self.in_scope(&address) {
                self.task(address, spec, origin, &case_sensitive);
            }
        }
        Ok(())
    }

    /// Warnings about the sources a declared task uses.
    fn task_source_warnings(&mut self, address: &Address, spec: &TaskSpec, depends_on: &[Address]) {
        let (desired, live) = (self.desired, self.live);
        let declared_off = |name: &str| desired.sources.get(name).is_some_and(|(s, _)| !s.enable);
        // On its other sources it runs (apply starts it only there): only with none left can it not run.
        let runs_nowhere = depends_on.iter().all(|d| declared_off(&d.name));
        for d in depends_on {
            if spec.stage == DesiredStage::Running && runs_nowhere && declared_off(&d.name) {
                self.warnings.push(format!(
                    "{address} should run but its source {} is declared with `enable: false`: DM cannot start a task on a disabled source (38058)",
                    d.name
                ));
            }
            if !desired.sources.contains_key(&d.name) && !live.sources.contains_key(&d.name) {
                self.warnings.push(format!(
                    "{address} uses source {} which is neither declared nor present in DM: creating or updating \
                     the task will fail",
                    d.name
                ));
            }
        }
    }

    fn task(&mut self, address: Address, spec: &'a TaskSpec, origin: &Origin, case_sensitive: &BTreeSet<String>) {
        let (live, version) = (self.live, self.version());
        let name = &address.name;
        let wire = normalize::task_to_wire(spec, version);
        self.warnings.extend(normalize::unsupported_warnings(spec, version));
        let fields = normalize::task_write_only_fields(&wire, version);
        let record_all = (self.tracking == Tracking::On).then(|| RecordPlan::Set {
            fields: fields.iter().map(|f| f.key.to_string()).collect(),
            version: spec.write_only_version,
            merge: false,
            adopt: false,
        });
        let depends_on: Vec<Address> = {
            let mut d: Vec<Address> =
                spec.source_config.source_conf.iter().map(|s| Address::source(&s.source_name)).collect();
            d.sort();
            d.dedup();
            d
        };
        self.task_source_warnings(&address, spec, &depends_on);
        let after_c = normalize::task_cmp(&wire, Side::Desired, Some(spec), version);
        let secret_keys = ["target_config.password"];
        // `after` is filled in only for resources with something to do (keeps large unchanged plans cheap).
        let mut change = ResourceChange {
            desired_stage: Some(spec.stage),
            depends_on,
            origin: Some(origin.clone()),
            ..ResourceChange::new(address.clone())
        };
        let renamed_from = if live.tasks.contains_key(name) { None } else { self.renames.get(name).cloned() };
        let Some(lt) = live.tasks.get(name).or_else(|| renamed_from.as_ref().and_then(|o| live.tasks.get(o))) else {
            change.action = ConfigAction::Create;
            change.impact = Impact::Create;
            change.after = Some(with_sensitive(after_c.to_value(), &secret_keys));
            let start = (spec.stage == DesiredStage::Running).then(|| self.start_sources(&wire));
            change.desired = Some(DesiredPayload::Task(wire));
            change.reasons.push(format!(
                "declared in the configuration but absent from DM{}",
                if spec.stage == DesiredStage::Running { "; started after creation" } else { "; left stopped" }
            ));
            if let Some(start) = start {
                match start {
                    Ok((on, why)) => {
                        change.start_on = on;
                        change.reasons.extend(why);
                    }
                    Err(disabled) => {
                        let disabled: Vec<&str> = disabled.iter().map(String::as_str).collect();
                        change.hold = Some(disabled_source_hold(name, &disabled));
                    }
                }
            }
            change.record = record_all;
            self.changes.push(change);
            return;
        };
        // Once a task exists, its binlog start positions are no diff (they say where a new task starts), and the
        // patterns of case-insensitive upstreams compare folded (docs/plan.md, "What counts as a difference").
        let folded: BTreeSet<String> = wire
            .source_config
            .source_conf
            .iter()
            .chain(&lt.task.source_config.source_conf)
            .map(|s| s.source_name.clone())
            .filter(|s| !case_sensitive.contains(s))
            .collect();
        let cmp_opts = normalize::CmpOpts { without_positions: true, fold_case: Some(&folded) };
        let before_c = normalize::task_cmp_with(&lt.task, Side::Live, Some(spec), version, &cmp_opts);
        let after_c = normalize::task_cmp_with(&wire, Side::Desired, Some(spec), version, &cmp_opts);
        for (source, want, have) in safe::case_only_differences(&wire, &lt.task, &folded) {
            self.notes.push(format!(
                "{address}: the pattern `{want}` of source {source} differs from DM's `{have}` only in letter case. \
                 DM keeps no pattern of {source} with an upper-case letter, as it does for a case-insensitive upstream \
                 (lower_case_table_names=1), where both match the same schemas: the change has no effect and is not \
                 applied. If that upstream is case-sensitive, run apply with --replace {address}: DM then keeps the \
                 upper case, and later plans compare the patterns of {source} exactly"
            ));
        }
        // Typed comparison first: the JSON forms are built only for tasks that differ.
        let fast_equal = spec.lifecycle.ignore_changes.is_empty() && before_c == after_c && renamed_from.is_none();
        let (before, after) =
            if fast_equal { (Value::Null, Value::Null) } else { (before_c.to_value(), after_c.to_value()) };
        let (mut attrs, unchanged) =
            if fast_equal { (vec![], usize::MAX) } else { diff(&before, &after, &spec.lifecycle) };
        let mut reasons_wo: Vec<String> = vec![];
        for path in normalize::task_secrets_differ(&lt.task, &wire, version) {
            if !ignored(&spec.lifecycle, path) {
                attrs.push(sensitive_attr(path));
            }
        }
        let wo = self.task_write_only(&address, spec, &fields, renamed_from.is_some(), &mut attrs, &mut reasons_wo);
        if let Some(old) = &renamed_from {
            reasons_wo.push(format!("renamed from task.{old} (renamed_from): the task moves to its new name"));
            attrs.push(AttributeChange {
                path: "(rename)".to_string(),
                before: Some(Value::String(old.clone())),
                after: Some(Value::String(name.clone())),
                sensitive: false,
                forces_replacement: true,
            });
        }
        let mut forcing: Vec<String> = vec![];
        // Only secrets or write-only fields differ: the JSON forms are needed from here on.
        let (before, after) = if before.is_null() && !attrs.is_empty() {
            (before_c.to_value(), after_c.to_value())
        } else {
            (before, after)
        };
        let source_set_changed = {
            let keys = |v: &Value| {
                v.pointer("/source_config/source_conf")
                    .and_then(Value::as_object)
                    .map(|m| m.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default()
            };
            keys(&before) != keys(&after)
        };
        for a in &mut attrs {
            if !updatable(&a.path) {
                a.forces_replacement = true;
                if !normalize::path_matches(&a.path, "source_config.source_conf")
                    && a.path != "(replace)"
                    && a.path != "(rename)"
                {
                    forcing.push(a.path.clone());
                }
            }
        }
        let mut reasons = reasons_wo;
        if source_set_changed {
            reasons.push(
                "forces replacement: source set changed (DM cannot add or remove a task's sources in place)"
                    .to_string(),
            );
        }
        if !forcing.is_empty() {
            reasons.push(format!("forces replacement: DM refuses to update {} in place", forcing.join(", ")));
        }
        let mut action = if attrs.is_empty() {
            ConfigAction::NoOp
        } else if attrs.iter().any(|a| a.forces_replacement) {
            ConfigAction::Replace
        } else {
            reasons.push(format!("changed: {}", attrs.iter().map(|a| a.path.as_str()).collect::<Vec<_>>().join(", ")));
            ConfigAction::Update
        };
        let mut hold: Option<Hold> = None;
        let mut start_first = false;
        if action == ConfigAction::Update {
            (action, hold, start_first) = self.task_update_gate(&address, spec, lt, &mut attrs, &mut reasons);
        }
        change.action = action;
        change.impact =
            self.task_impact(&address, action, lt, &wire, renamed_from.is_some(), &before, &after, &mut reasons);
        change.send_password = action != ConfigAction::NoOp;
        if start_first {
            change.runtime.push(RuntimeAction::Start);
        } else if action == ConfigAction::NoOp {
            self.task_stage_drift(&address, spec, lt, &mut change.runtime, &mut reasons);
        }
        let starts = change.runtime.contains(&RuntimeAction::Start)
            || (matches!(action, ConfigAction::Update | ConfigAction::Replace) && spec.stage == DesiredStage::Running);
        if starts {
            match self.start_sources(&wire) {
                Ok((on, why)) => {
                    change.start_on = on;
                    reasons.extend(why);
                }
                Err(disabled) => {
                    let disabled: Vec<&str> = disabled.iter().map(String::as_str).collect();
                    change.hold = Some(disabled_source_hold(name, &disabled));
                }
            }
        }
        if let Some(h) = hold {
            change.hold = Some(h);
        }
        // Shard DDL coordination: nothing that stops the task (docs/apply.md "Shard DDL coordination").
        let stopping = match action {
            ConfigAction::Replace if renamed_from.is_some() => Some("rename"),
            ConfigAction::Replace => Some("replace"),
            ConfigAction::Update => Some("update"),
            _ if change.runtime.contains(&RuntimeAction::Stop) => Some("stop"),
            _ => None,
        };
        if let Some(what) = stopping
            && let Some(h) = safe::shard_ddl_hold(lt, what)
        {
            change.hold = Some(h);
        }
        if action == ConfigAction::Update
            && let Some(note) = precheck_note(&lt.task, live)
        {
            reasons.push(note);
        }
        if action != ConfigAction::NoOp {
            change.record = record_all;
            if let Some(why) = &wo.adopt {
                self.adopted.push((address.clone(), why.clone()));
            }
        } else if let Some(why) = &wo.adopt {
            change.record = as_adopted(record_all);
            self.count_adopted(&address, why, fields.is_empty() && spec.write_only_version.is_none());
        }
        change.live_sources = live_sources(&lt.task);
        if change.is_noop() {
            if change.record.is_some() {
                // Recorded only: apply needs the payload to fingerprint it.
                change.desired = Some(DesiredPayload::Task(wire));
                self.changes.push(change);
            }
            return;
        }
        change.reasons = reasons;
        change.attributes = attrs;
        let (before, after) =
            if before.is_null() { (before_c.to_value(), after_c.to_value()) } else { (before, after) };
        change.unchanged_attributes = unchanged_count(unchanged, &after);
        change.before = Some(with_sensitive(before, &secret_keys));
        change.live_digest = Some(task_digest(&lt.task, version));
        change.observed = Some(observed_task(lt));
        change.after = Some(with_sensitive(after, &secret_keys));
        let mut wire = wire;
        if action == ConfigAction::Update {
            // DM refuses a PUT that changes the stored start positions (R6.7): send the ones DM has.
            keep_live_positions(&mut wire, &lt.task);
        }
        change.desired = Some(DesiredPayload::Task(wire));
        self.changes.push(change);
    }

    /// The write-only values of an existing task, judged against dm-apply's state record (DM cannot update any of
    /// them in place, so a change replaces the task), and `-replace`: the attributes and reasons they add.
    fn task_write_only(
        &self,
        address: &Address,
        spec: &TaskSpec,
        fields: &[WriteOnlyField],
        renamed: bool,
        attrs: &mut Vec<AttributeChange>,
        reasons: &mut Vec<String>,
    ) -> WriteOnlyOutcome {
        let version = self.version();
        // Values DM does not return (on this version): judged against dm-apply's state record. DM cannot update
        // any of them in place, so a change replaces the task.
        let removable: Vec<&'static str> = [
            normalize::TASK_WRITE_ONLY_KEY,
            normalize::TASK_TARGET_SECURITY_KEY,
            normalize::TASK_IMPORT_MODE_KEY,
            normalize::TASK_PD_ADDR_KEY,
        ]
        .into_iter()
        // From v26.3 on only the `full_migrate_conf` write-only fields are tracked; the others are compared.
        .filter(|k| !version.returns_full_task_config() || *k == normalize::TASK_WRITE_ONLY_KEY)
        .collect();
        let wo = if renamed {
            // The task is created under its new name: every value is sent.
            WriteOnlyOutcome::default()
        } else {
            judge_write_only(
                address,
                fields,
                spec.write_only_version,
                self.entry(address),
                self.tracking,
                self.replace.contains(address),
                &self.verdicts,
                &spec.lifecycle,
                &removable,
            )
        };
        let replace_asked = self.replace.contains(address) && !renamed;
        for (key, reason) in &wo.send {
            attrs.push(write_only_attr(fields.iter().find(|f| f.key == *key), key));
            reasons.push(reason.clone());
        }
        if replace_asked && wo.send.is_empty() {
            // Nothing write-only to re-send: -replace still replaces the task, as asked.
            reasons.push(format!("replaced as asked (-replace {address})"));
            attrs.push(AttributeChange {
                path: "(replace)".to_string(),
                before: None,
                after: None,
                sensitive: false,
                forces_replacement: true,
            });
        }
        wo
    }

    /// The impact of a task's update or replace (a replace says why it can or cannot keep the checkpoints), and
    /// the warning about new sources an incremental task cannot start on.
    #[allow(clippy::too_many_arguments)]
    fn task_impact(
        &mut self,
        address: &Address,
        action: ConfigAction,
        lt: &LiveTask,
        wire: &Task,
        renamed: bool,
        before: &Value,
        after: &Value,
        reasons: &mut Vec<String>,
    ) -> Impact {
        let impact = match action {
            ConfigAction::Replace => {
                let (impact, why) = safe::replace_impact(&safe::ReplaceInput {
                    old: lt,
                    new: wire,
                    version: self.version(),
                    same_name: !renamed,
                    same_meta_and_target: same_meta_and_target(before, after),
                });
                reasons.push(why);
                impact
            }
            ConfigAction::Update => Impact::StopUpdateStart {
                stopped_tasks: if task_expected_running(lt) { vec![address.name.clone()] } else { vec![] },
            },
            _ => Impact::RuntimeOnly,
        };
        if let Impact::Replace { new_sources, .. } = &impact
            && !new_sources.is_empty()
            && wire.task_mode == "incremental"
        {
            let unpositioned: Vec<&str> = wire
                .source_config
                .source_conf
                .iter()
                .filter(|s| new_sources.contains(&s.source_name))
                .filter(|s| {
                    s.binlog_name.as_deref().is_none_or(str::is_empty)
                        && s.binlog_gtid.as_deref().is_none_or(str::is_empty)
                })
                .map(|s| s.source_name.as_str())
                .collect();
            if !unpositioned.is_empty() {
                self.warnings.push(format!(
                    "{address}: the new source(s) {} have no checkpoint and no binlog position in the configuration; \
                     DM refuses to start an incremental task without one (20022)",
                    unpositioned.join(", ")
                ));
            }
        }
        impact
    }

    /// Whether an update of a task can be carried out now: DM updates a task only while every subtask is in the Sync
    /// unit (docs/dm-behaviour.md R6.6). Returns the action (a task that never reaches Sync is replaced; one paused
    /// before Sync is started first and updated by a later apply), the hold, and whether the task is started first.
    fn task_update_gate(
        &mut self,
        address: &Address,
        spec: &TaskSpec,
        lt: &LiveTask,
        attrs: &mut Vec<AttributeChange>,
        reasons: &mut Vec<String>,
    ) -> (ConfigAction, Option<Hold>, bool) {
        if !safe::mode_syncs(&lt.task.task_mode)
            && lt.status.as_ref().is_some_and(|st| st.iter().any(|s| s.unit != Unit::Sync))
        {
            // A full/dump/load task never reaches Sync: only a replace can change it.
            for a in attrs.iter_mut() {
                a.forces_replacement = true;
            }
            reasons.push(format!(
                "forces replacement: DM updates a task only in the Sync unit, which a `{}` task never reaches",
                lt.task.task_mode
            ));
            return (ConfigAction::Replace, None, false);
        }
        match safe::sync_gate(lt, spec.stage == DesiredStage::Running) {
            safe::SyncGate::Open => {
                if lt.status.is_none() {
                    self.warnings.push(format!(
                        "{address}: status unknown, assuming the task is in the Sync unit (an update fails otherwise)"
                    ));
                }
                (ConfigAction::Update, None, false)
            }
            safe::SyncGate::Deferred(h) | safe::SyncGate::Blocked(h) => (ConfigAction::Update, Some(h), false),
            safe::SyncGate::StartFirst(why) => {
                // Paused before Sync: start it now; the update waits until it gets there.
                self.warnings
                    .push(format!("{address}: {why}; apply starts it now and the update follows once it is in Sync"));
                attrs.clear();
                (ConfigAction::NoOp, None, true)
            }
        }
    }

    /// Stage drift of a task whose configuration is unchanged (update and replace converge the stage anyway): start
    /// what should run, stop what should not.
    /// A task that starts in this apply, on its sources `wire` names: DM refuses to start a subtask on a disabled
    /// source (38058), and a start without a source list names them all. `Ok(start_on)`: the sources to start on
    /// (empty: all of them), with the reason to show; `Err(disabled)`: every source ends disabled.
    fn start_sources(&self, wire: &Task) -> Result<(Vec<String>, Option<String>), Vec<String>> {
        // Disabled once this apply is done: as declared, else as DM has it.
        let off = |s: &str| match self.desired.sources.get(s) {
            Some((d, _)) => !d.enable,
            None => self.live.sources.get(s).is_some_and(|l| !l.enable),
        };
        let confs = &wire.source_config.source_conf;
        // The common case, on every task of a fleet: nothing disabled, nothing to allocate.
        if !confs.iter().any(|s| off(&s.source_name)) {
            return Ok((vec![], None));
        }
        let on: Vec<String> = confs.iter().map(|s| s.source_name.clone()).collect();
        let (disabled, enabled): (Vec<String>, Vec<String>) = on.into_iter().partition(|s| off(s));
        match (disabled.is_empty(), enabled.is_empty()) {
            (true, _) => Ok((vec![], None)),
            (false, true) => Err(disabled),
            (false, false) => {
                let why = format!(
                    "started on {} only: {} is disabled, and DM starts no task there (38058)",
                    enabled.join(", "),
                    disabled.join(", ")
                );
                Ok((enabled, Some(why)))
            }
        }
    }

    fn task_stage_drift(
        &mut self,
        address: &Address,
        spec: &TaskSpec,
        lt: &LiveTask,
        runtime: &mut Vec<RuntimeAction>,
        reasons: &mut Vec<String>,
    ) {
        if ignored(&spec.lifecycle, "stage") {
            return;
        }
        let Some(st) = &lt.status else { return };
        match spec.stage {
            DesiredStage::Running => {
                // Transitional or unreadable stages (unbound source, worker down): nothing safe to do.
                for sub in st.iter().filter(|x| matches!(x.stage, Stage::Empty | Stage::Unknown(_))) {
                    let err = sub
                        .error_msg
                        .as_deref()
                        .filter(|m| !m.trim().is_empty())
                        .map(|m| format!(" (DM error: {})", first_line(m)))
                        .unwrap_or_default();
                    let shown = if sub.stage == Stage::Empty { "unknown".to_string() } else { sub.stage.to_string() };
                    self.warnings.push(format!(
                        "{address}: stage on {} is {shown}{err}; no start or stop is planned for it",
                        sub.source_name
                    ));
                }
                // A source declared disabled keeps its subtasks paused (DM's /disable pauses them, and DM refuses to
                // start one there, 38058): while the task still runs on another source, that is the configuration,
                // not drift. With every source disabled nothing can run: that stays drift, and says so.
                let declared_off = |source: &str| self.desired.sources.get(source).is_some_and(|(d, _)| !d.enable);
                let runs_somewhere = st.iter().any(|s| !declared_off(&s.source_name));
                let idle: Vec<&crate::dm::types::SubTaskStatus> = st
                    .iter()
                    .filter(|s| matches!(s.stage, Stage::Paused | Stage::Stopped))
                    .filter(|s| !(runs_somewhere && declared_off(&s.source_name)))
                    .collect();
                if !idle.is_empty() {
                    runtime.push(RuntimeAction::Start);
                    for s in idle {
                        let err = s
                            .error_msg
                            .as_deref()
                            .filter(|m| !m.trim().is_empty())
                            .map(|m| format!(", DM error: {}", first_line(m)))
                            .unwrap_or_default();
                        reasons.push(format!(
                            "stage on {} is {} but the configuration wants running{err}",
                            s.source_name, s.stage
                        ));
                    }
                }
            }
            DesiredStage::Stopped => {
                let running: Vec<&str> =
                    st.iter().filter(|s| s.stage == Stage::Running).map(|s| s.source_name.as_str()).collect();
                if !running.is_empty() {
                    runtime.push(RuntimeAction::Stop);
                    reasons.push(format!("running on {} but the configuration wants it stopped", running.join(", ")));
                }
            }
        }
    }

    /// Declared renames (`renamed_from`) to carry out: new name → the old name that exists in DM. A new name that
    /// exists already, or whose old names are all gone, needs no move (a note says so); two old names that both exist
    /// cannot become one task (refused).
    fn renames(&mut self) -> Result<(), PlanError> {
        let (desired, live) = (self.desired, self.live);
        let mut problems = vec![];
        for (name, (spec, origin)) in &desired.tasks {
            if spec.renamed_from.is_empty() || !self.in_scope(&Address::task(name)) {
                continue;
            }
            let mut declared_too = vec![];
            let mut existing = vec![];
            for old in spec.renamed_from.names() {
                if old == name.as_str() || desired.tasks.contains_key(old) {
                    declared_too.push(old.to_string());
                } else if live.tasks.contains_key(old) {
                    existing.push(old.to_string());
                }
            }
            if !declared_too.is_empty() {
                problems.push(PlanProblem::BadRename {
                    address: Address::task(name),
                    origin: origin_str(origin),
                    detail: format!(
                        "{} {} declared as a task too",
                        declared_too.join(", "),
                        if declared_too.len() == 1 { "is" } else { "are" }
                    ),
                });
                continue;
            }
            if live.tasks.contains_key(name) {
                for old in &existing {
                    self.warnings.push(format!(
                        "task.{name} exists in DM, and so does task.{old}, which it was renamed from (renamed_from): \
                         the move is not made again; task.{old} is listed as unmanaged (deleted with --prune). Check \
                         that both do not run"
                    ));
                }
                continue;
            }
            match existing.as_slice() {
                [] => self.notes.push(format!(
                    "task.{name}: renamed_from names no task that exists in DM ({}); it is created from its \
                     configuration. renamed_from changes nothing then and can be removed once no cluster has the old \
                     name",
                    spec.renamed_from.names().collect::<Vec<_>>().join(", ")
                )),
                [old] => {
                    self.renames.insert(name.clone(), old.clone());
                }
                many => problems.push(PlanProblem::BadRename {
                    address: Address::task(name),
                    origin: origin_str(origin),
                    detail: format!("{} all exist in DM, and two tasks cannot be moved into one", many.join(", ")),
                }),
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(PlanError { problems, plan: None }) }
    }

    /// Resources in DM that are not declared: unmanaged, or deleted with --prune. Then the warnings that look at
    /// them (likely renames, missing external sources, a prune of everything).
    fn undeclared(&mut self) {
        let (desired, live, version, opts) = (self.desired, self.live, self.version(), self.opts);
        let moving: BTreeSet<&str> = self.renames.values().map(String::as_str).collect();
        for (name, lt) in &live.tasks {
            if desired.tasks.contains_key(name) || name == STATE_TEMPLATE || moving.contains(name.as_str()) {
                continue;
            }
            let address = Address::task(name);
            if self.scope.is_some() && !self.in_scope(&address) {
                continue;
            }
            if opts.prune {
                let mut deps: Vec<Address> =
                    lt.task.source_config.source_conf.iter().map(|s| Address::source(&s.source_name)).collect();
                deps.sort();
                deps.dedup();
                self.changes.push(ResourceChange {
                    action: ConfigAction::Delete,
                    reasons: vec![PRUNE_REASON.to_string()],
                    impact: Impact::Destroy { drops_checkpoints: true },
                    hold: safe::shard_ddl_hold(lt, "delete"),
                    before: Some(with_sensitive(
                        normalize::task_comparable(&lt.task, Side::Live, None, version),
                        &["target_config.password"],
                    )),
                    live_digest: Some(task_digest(&lt.task, version)),
                    observed: Some(observed_task(lt)),
                    depends_on: deps,
                    live_sources: live_sources(&lt.task),
                    ..ResourceChange::new(address)
                });
            } else {
                self.unmanaged.push(Unmanaged {
                    address,
                    note: "exists in DM but is not declared; run with --prune to delete it".to_string(),
                });
            }
        }
        for (name, s) in &live.sources {
            if desired.sources.contains_key(name) || desired.external_sources.contains(name) {
                continue;
            }
            let address = Address::source(name);
            if self.scope.is_some() && !self.in_scope(&address) {
                continue;
            }
            if opts.prune {
                let users: Vec<&str> = desired
                    .tasks
                    .values()
                    .filter(|(t, _)| t.source_config.source_conf.iter().any(|c| &c.source_name == name))
                    .map(|(t, _)| t.name.as_str())
                    .collect();
                if !users.is_empty() {
                    self.warnings.push(format!(
                        "source.{name} would be deleted (--prune) but declared tasks use it: {}; declare it or list \
                         it in external_sources",
                        users.join(", ")
                    ));
                }
                let mut change = ResourceChange {
                    action: ConfigAction::Delete,
                    reasons: vec![PRUNE_REASON.to_string()],
                    impact: Impact::Destroy { drops_checkpoints: false },
                    before: Some(with_enable(normalize::source_comparable(s, None), s.enable)),
                    live_digest: Some(source_digest(s)),
                    observed: Some(Observed::Source { enable: s.enable }),
                    ..ResourceChange::new(address)
                };
                relay::before_delete(&mut change, name, live);
                self.changes.push(change);
            } else {
                self.unmanaged.push(Unmanaged {
                    address,
                    note: "exists in DM but is not declared; run with --prune to delete it (or list it in \
                           external_sources)"
                        .to_string(),
                });
            }
        }
        rename_hints(&mut self.warnings, &self.changes, &self.unmanaged, desired, live, version);
        for name in &desired.external_sources {
            if !live.sources.contains_key(name) && self.in_scope(&Address::source(name)) {
                self.warnings.push(format!("external source {name} does not exist in DM"));
            }
        }
        if opts.prune
            && desired.sources.is_empty()
            && desired.tasks.is_empty()
            && self.changes.iter().any(|c| c.action == ConfigAction::Delete)
        {
            self.warnings.push(
                "the configuration declares no source and no task, so --prune deletes everything dm-apply can see; check the -f paths"
                    .to_string(),
            );
        }
    }

    /// The plan: worker capacity, the state-record notes, sorted changes.
    fn assemble(mut self) -> Plan {
        let live = self.live;
        relay::capacity(&mut self.changes, live, &mut self.warnings);
        let rewrite = self.state_notes();
        self.changes.sort_by(|a, b| a.address.cmp(&b.address));
        self.unmanaged.sort_by(|a, b| a.address.cmp(&b.address));
        let mut targets = self.opts.targets.clone();
        targets.sort();
        let mut plan = Plan {
            format_version: FORMAT_VERSION.to_string(),
            cluster: ClusterIdentity {
                addr: live.addr.clone(),
                cluster_id: live.cluster_id,
                server_version: live.version.raw.clone(),
            },
            changes: self.changes,
            unmanaged: self.unmanaged,
            warnings: self.warnings,
            targets,
            prune: self.opts.prune,
            notes: self.notes,
            state: StatePlan { home: self.home, rewrite },
            preview: None,
        };
        // How the plan reads in the configuration's terms (display lines, reasons); changes nothing apply reads.
        crate::render::present::annotate(&mut plan, self.desired);
        plan
    }

    /// Notes about dm-apply's state record: trust on first use, where the record lives. Returns whether apply
    /// rewrites the record (an old format).
    fn state_notes(&mut self) -> bool {
        let (desired, live) = (self.desired, self.live);
        let Some(home) = self.home.clone() else {
            let with_secrets = desired
                .sources
                .iter()
                .filter(|(n, (s, _))| live.sources.contains_key(*n) && s.password.is_some())
                .count();
            if with_secrets > 0 {
                self.notes.push(format!(
                    "no task is declared, so dm-apply has nowhere to keep its state record: changes of write-only \
                     values (source passwords, TLS contents) of {with_secrets} existing source(s) are not detected; \
                     use -replace source.NAME to send them"
                ));
            }
            return false;
        };
        if self.tracking != Tracking::On {
            return false;
        }
        const SHOWN: usize = 10;
        for (a, why) in self.adopted.iter().take(SHOWN) {
            self.notes.push(format!(
                "{a}: write-only values trusted as they are in DM ({why}); apply records them without sending \
                 anything (-replace {a} sends them)"
            ));
        }
        if self.adopted.len() > SHOWN {
            self.notes.push(format!(
                "... and {} more resources whose write-only values are trusted as they are in DM",
                self.adopted.len() - SHOWN
            ));
        }
        if self.quietly_adopted > 0 {
            self.notes.push(format!(
                "apply adds {} resource(s) without write-only values to dm-apply's state record (nothing is sent)",
                self.quietly_adopted
            ));
        }
        let Some((home_spec, _)) = desired.tasks.get(&home) else { return false };
        let want = &home_spec.target_config;
        match &live.state {
            StateView::Legacy => {
                self.notes.push(format!(
                    "dm-apply's state record is in an old format whose fast fingerprints are not trusted; apply \
                     replaces it (kept with the target of task.{home})"
                ));
                true
            }
            StateView::Record { target, .. }
                if target.host != want.host || target.port != want.port || target.user != want.user =>
            {
                self.notes.push(format!(
                    "dm-apply's state record moves to the target of task.{home} ({}:{}) at its next write",
                    want.host, want.port
                ));
                false
            }
            _ => false,
        }
    }
}

/// Whether a replaced task keeps its meta schema and target (compared forms), so the new task can resume from the
/// old one's checkpoint.
fn same_meta_and_target(before: &Value, after: &Value) -> bool {
    let same = |p: &str| before.pointer(p) == after.pointer(p);
    same("/meta_schema") && same("/target_config/host") && same("/target_config/port")
}

/// Enable or disable of a declared source that DM holds the other way.
fn source_stage_drift(change: &mut ResourceChange, spec: &SourceSpec, l: &Source) {
    if spec.enable == l.enable || ignored(&spec.lifecycle, "enable") {
        return;
    }
    change.runtime.push(if spec.enable { RuntimeAction::Enable } else { RuntimeAction::Disable });
    change.reasons.push(if spec.enable {
        "source is disabled in DM; enabling it makes DM start every task on it (apply stops again the tasks meant \
         to be stopped)"
            .to_string()
    } else {
        "source is enabled in DM; disabling it stops every task on it".to_string()
    });
}

/// The impact of a source PUT: DM refuses it while a task on the source is (meant to be) running (46025), so those
/// tasks are stopped first and started again after it. The one place that decides which tasks a source update
/// stops; apply's compiler takes the list from here.
fn source_update_impact(source: &str, on_source: &[&LiveTask]) -> Impact {
    let running: Vec<String> =
        on_source.iter().filter(|t| expected_running_on(t, source)).map(|t| t.task.name.clone()).collect();
    if running.is_empty() { Impact::InPlace } else { Impact::StopUpdateStart { stopped_tasks: running } }
}

/// A record entry of a resource whose write-only values are trusted as they are (recorded without sending).
fn as_adopted(r: Option<RecordPlan>) -> Option<RecordPlan> {
    r.map(|r| match r {
        RecordPlan::Set { fields, version, merge, .. } => RecordPlan::Set { fields, version, merge, adopt: true },
        r => r,
    })
}

/// The sources a live task runs on (sorted, once each): a fact for apply's compiler.
fn live_sources(t: &Task) -> Vec<String> {
    let s: BTreeSet<&str> = t.source_config.source_conf.iter().map(|s| s.source_name.as_str()).collect();
    s.into_iter().map(str::to_string).collect()
}

/// A plan that creates one task and leaves as unmanaged (or deletes) another with the same sources and rules looks
/// like an undeclared rename: say what that does and how to declare it.
fn rename_hints(
    warnings: &mut Vec<String>,
    changes: &[ResourceChange],
    unmanaged: &[Unmanaged],
    desired: &Desired,
    live: &Live,
    version: &crate::dm::ServerVersion,
) {
    let fold_all = normalize::CmpOpts { without_positions: true, fold_case: None };
    let key_of = |t: &Task| {
        let mut t = t.clone();
        for r in &mut t.table_migrate_rule {
            r.source.schema = r.source.schema.to_lowercase();
            r.source.table = r.source.table.to_lowercase();
        }
        safe::replication_key(&normalize::task_cmp_with(&t, Side::Live, None, version, &fold_all).to_value())
    };
    let gone: Vec<(&str, bool)> = changes
        .iter()
        .filter(|c| c.address.kind == Kind::Task && c.action == ConfigAction::Delete)
        .map(|c| (c.address.name.as_str(), true))
        .chain(unmanaged.iter().filter(|u| u.address.kind == Kind::Task).map(|u| (u.address.name.as_str(), false)))
        .collect();
    if gone.is_empty() {
        return;
    }
    let mut old_keys: BTreeMap<safe::ReplicationKey, Vec<(&str, bool)>> = BTreeMap::new();
    for (old, deleted) in gone {
        if let Some(k) = live.tasks.get(old).and_then(|lt| key_of(&lt.task)) {
            old_keys.entry(k).or_default().push((old, deleted));
        }
    }
    for c in changes.iter().filter(|c| c.address.kind == Kind::Task && c.action == ConfigAction::Create) {
        let Some(DesiredPayload::Task(t)) = &c.desired else { continue };
        if desired.tasks.get(&c.address.name).is_some_and(|(s, _)| !s.renamed_from.is_empty()) {
            continue;
        }
        let Some(k) = key_of(t) else { continue };
        for (old, deleted) in old_keys.get(&k).into_iter().flatten() {
            let new = &c.address.name;
            warnings.push(format!(
                "task.{new} is created and task.{old}, which has the same sources and rules, is {}: this looks like \
                 a rename. As planned, task.{new} starts from the configured binlog position (not where task.{old} \
                 got to){}. If it is a rename, declare `renamed_from: {old}` on task.{new}: apply then stops \
                 task.{old}, creates task.{new} at its checkpoint and deletes task.{old}, never running both",
                if *deleted { "deleted (--prune): its checkpoint is dropped" } else { "left unmanaged" },
                if *deleted { "" } else { ", and both may run at once" },
            ));
        }
    }
}

/// Keep DM's stored start positions in an update's payload (DM refuses to change them in place; once a task exists
/// the configured ones are not compared).
pub(crate) fn keep_live_positions(wire: &mut Task, live: &Task) {
    for sc in &mut wire.source_config.source_conf {
        // Exactly as read back: DM stores a start meta when any of the three is given (R5.10, R9.5).
        if let Some(l) = live.source_config.source_conf.iter().find(|l| l.source_name == sc.source_name) {
            sc.binlog_name = l.binlog_name.clone();
            sc.binlog_pos = l.binlog_pos;
            sc.binlog_gtid = l.binlog_gtid.clone();
        }
    }
}

/// Convenience for apply: the secret a change needs, never printed.
pub fn payload_password(c: &ResourceChange) -> Option<&Secret> {
    match &c.desired {
        Some(DesiredPayload::Source(s)) => s.password.as_ref(),
        Some(DesiredPayload::Task(t)) => Some(&t.target_config.password),
        None => None,
    }
}
