//! Plan → step graph: DM's rules (docs/dm-behaviour.md §3-§8, §12), encoded once.
//!
//! - Sources are created, updated and enabled before the tasks that use them; tasks are stopped and deleted
//!   before any source is deleted.
//! - A created task is Stopped: it is started (and waited for) when its desired stage is `running`.
//! - Update of a task: stop (when it may be running; DM refuses with 46035 otherwise), PUT, start again when it
//!   should run.
//! - Update of a source: DM refuses while any task on it is Running (46025), so the tasks running on it are
//!   stopped, the source is PUT, and exactly those that should run are started again, one by one. `/enable` is
//!   never used to restart them (it starts every task of the source); when the plan enables a source, the enable
//!   step stops again the tasks that must stay stopped and says so. A PUT always carries the live `enable` value,
//!   so it never starts or stops tasks as a side effect.
//! - Replace: stop, delete (with `keep_meta=true` when the plan says checkpoints can be kept), create, start. A
//!   replace that restarts the migration from scratch needs `--allow-restart` or `lifecycle.allow_restart`.
//! - Deletes need a plan made with `--prune`. A task is stopped before it is deleted (no force needed).
//! - Tasks restarted after a source update restart even when the update failed (`After`, not `Requires`): a failed
//!   change must not leave replication stopped.
//! - The first mutation of each branch carries a guard: the resource is re-read and compared with the plan. A task
//!   PUT or delete that follows our own stop is guarded again (the stop changes only the stage, not the config).
//! - Relay of a source (docs/dm-behaviour.md §4): stopped first in its branch (DM refuses to write a source while
//!   relay runs, 46025, and cannot report task status while relay runs on a worker other than the bound one,
//!   R8.12, so the tasks are stopped and waited for only afterwards), started last, after the waits of the tasks on
//!   the source. Every relay start comes after every relay stop, so a worker can move from one source to another.
//! - A transfer (R3.12) comes after the source's update (tasks stopped for it move while stopped, which DM neither
//!   checks nor pauses); tasks DM pauses and resumes are waited for when status can be read.
//! - New sources without a declared worker are created after everything that claims a particular free worker
//!   (creates on a named worker, transfers, relay starts on free workers), and the ones the plan expects to stay
//!   unbound after the others, so DM gives the free workers to the ones the plan says.

use std::collections::{BTreeMap, BTreeSet};

use super::graph::{DepKind, Effect, Expect, Guard, RelayTarget, ResourceKind, StepGraph, StepId, StepKind, WaitFor};
use crate::config::DesiredStage;
use crate::dm::ServerVersion;
use crate::dm::types::{Stage, StartTaskRequest};
use crate::plan::{
    Address, ConfigAction, DesiredPayload, Impact, Kind, Observed, Plan, RecordPlan, ResourceChange, RuntimeAction,
};
use crate::state::store::Update;

/// What the compiler must know beyond the plan.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    /// `--allow-restart`: replacements that restart a migration from scratch are allowed.
    pub allow_restart: bool,
    /// Tasks whose `lifecycle.allow_restart` is set.
    pub allow_restart_for: BTreeSet<String>,
    /// Leave out dm-apply's state record steps (no target to keep the record with was given: a library caller
    /// that does not track write-only values).
    pub skip_record: bool,
    /// How long a task that resumes from a checkpoint (a replace or rename) keeps safe mode on after its start
    /// (`safe_mode_time_duration`, binlog time from its first event): it covers the events between the last
    /// flushed checkpoint and where the old task stopped. `None`: [`DEFAULT_RESUME_SAFE_MODE`].
    pub resume_safe_mode: Option<std::time::Duration>,
}

/// Default of `--resume-safe-mode`: DM flushes checkpoints every 30 s, so a task can have applied up to that much
/// (more while catching up) past the checkpoint it resumes from; five minutes of binlog time covers that with room.
pub const DEFAULT_RESUME_SAFE_MODE: std::time::Duration = std::time::Duration::from_secs(300);

/// A duration as DM's (Go) parser reads it: `300s`, `1500ms`.
pub fn go_duration(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 { format!("{}s", d.as_secs()) } else { format!("{}ms", d.as_millis()) }
}

/// Why a plan cannot be applied (found before anything is touched).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum CompileError {
    #[error("the plan deletes {address}, but it was made without --prune")]
    #[diagnostic(code(apply::prune), help("deletes happen only with --prune: run `dm-apply apply --prune ...`"))]
    DeleteWithoutPrune { address: String },

    #[error("replacing {address} restarts its migration from scratch (new full dump and load, checkpoints lost)")]
    #[diagnostic(
        code(apply::restart),
        help(
            "if that is intended, pass --allow-restart or set `lifecycle.allow_restart: true` on the task; \
             otherwise change the configuration so the task can be updated in place"
        )
    )]
    RestartNotAllowed { address: String },

    #[error("the plan holds no configuration for {address}")]
    #[diagnostic(
        code(apply::payload),
        help(
            "a saved plan must be applied with `apply --plan FILE`, which reloads the configuration it was made from"
        )
    )]
    MissingPayload { address: String },
}

/// The steps of a source: what tasks that use it must wait for.
#[derive(Default)]
struct SourceNodes {
    /// Create (or the create half of a replace): a task cannot be created or started before it.
    create: Option<StepId>,
    /// PUT, enable, disable: ordering only.
    others: Vec<StepId>,
    enable: Option<StepId>,
    /// The PUT of an in-place update, when the source is enabled at that moment (tasks may run on it).
    put: Option<StepId>,
}

struct Builder<'p> {
    g: StepGraph,
    changes: BTreeMap<Address, &'p ResourceChange>,
    /// task → (stop, wait until paused)
    stops: BTreeMap<String, (StepId, StepId)>,
    /// task → (start, wait until running)
    starts: BTreeMap<String, (StepId, StepId)>,
    sources: BTreeMap<String, SourceNodes>,
    /// task → steps its (re)start must come after (the source updates it was stopped for).
    restart_after: BTreeMap<String, Vec<StepId>>,
    /// Every task delete: source deletes come after all of them.
    task_deletes: Vec<StepId>,
    source_deletes: Vec<StepId>,
    /// State record steps: they come after every task change.
    records: Vec<StepId>,
    /// Steps that change a task (create, update, delete): the record is written after them.
    task_changes: Vec<StepId>,
    version: ServerVersion,
    /// Whether state record steps are made.
    record: bool,
    /// `safe_mode_time_duration` of the start of a task that resumes from a checkpoint.
    resume_safe_mode: String,
    /// Every relay stop: relay starts, transfers and creates on a named worker come after them all.
    relay_stops: Vec<StepId>,
    /// (source, relay start, whether it claims a worker that is free now).
    relay_starts: Vec<(String, StepId, bool)>,
    transfers: Vec<StepId>,
    /// source → waits of tasks DM resumes after a transfer.
    transfer_waits: BTreeMap<String, Vec<StepId>>,
    /// Creates of new sources on a declared worker.
    creates_on_worker: Vec<StepId>,
    /// Creates of new sources DM binds to any free worker: (step, expected to stay unbound).
    creates_anywhere: Vec<(StepId, bool)>,
    /// source → tasks started or waited for in this apply because of the source (restarts, transfers).
    source_tasks: BTreeMap<String, BTreeSet<String>>,
}

/// Compile a plan into the graph of steps that carries it out.
pub fn compile(plan: &Plan, opts: &CompileOptions) -> Result<StepGraph, CompileError> {
    check(plan, opts)?;
    // Deferred and blocked changes get no steps at all: apply leaves them for a later run.
    let active: Vec<&ResourceChange> = plan.changes.iter().filter(|c| c.hold.is_none()).collect();
    let record = plan.state.home.is_some() && !opts.skip_record;
    let mut b = Builder {
        g: StepGraph::new(),
        changes: active.iter().map(|c| (c.address.clone(), *c)).collect(),
        stops: BTreeMap::new(),
        starts: BTreeMap::new(),
        sources: BTreeMap::new(),
        restart_after: BTreeMap::new(),
        task_deletes: vec![],
        source_deletes: vec![],
        records: vec![],
        task_changes: vec![],
        version: ServerVersion::parse(&plan.cluster.server_version),
        record,
        resume_safe_mode: go_duration(opts.resume_safe_mode.unwrap_or(DEFAULT_RESUME_SAFE_MODE)),
        relay_stops: vec![],
        relay_starts: vec![],
        transfers: vec![],
        transfer_waits: BTreeMap::new(),
        creates_on_worker: vec![],
        creates_anywhere: vec![],
        source_tasks: BTreeMap::new(),
    };
    let sources: Vec<&ResourceChange> = active.iter().copied().filter(|c| c.address.kind == Kind::Source).collect();
    let tasks: Vec<&ResourceChange> = active.iter().copied().filter(|c| c.address.kind == Kind::Task).collect();
    for c in &sources {
        b.source(c)?;
    }
    for c in &tasks {
        b.task(c)?;
    }
    b.finish();
    Ok(b.g)
}

fn check(plan: &Plan, opts: &CompileOptions) -> Result<(), CompileError> {
    for c in plan.changes.iter().filter(|c| c.hold.is_none()) {
        let address = c.address.to_string();
        if c.action == ConfigAction::Delete && !plan.prune {
            return Err(CompileError::DeleteWithoutPrune { address });
        }
        if let (ConfigAction::Replace, Impact::Replace { restarts_migration: true, .. }) = (c.action, &c.impact)
            && c.address.kind == Kind::Task
            && !opts.allow_restart
            && !opts.allow_restart_for.contains(&c.address.name)
        {
            return Err(CompileError::RestartNotAllowed { address });
        }
        let needs_payload = matches!(c.action, ConfigAction::Create | ConfigAction::Update | ConfigAction::Replace)
            || (plan.state.home.is_some() && !opts.skip_record && matches!(c.record, Some(RecordPlan::Set { .. })));
        let has_payload = matches!(
            (&c.desired, c.address.kind),
            (Some(DesiredPayload::Source(_)), Kind::Source) | (Some(DesiredPayload::Task(_)), Kind::Task)
        );
        if needs_payload && !has_payload {
            return Err(CompileError::MissingPayload { address });
        }
    }
    Ok(())
}

fn guard_for(c: &ResourceChange) -> Guard {
    let kind = match c.address.kind {
        Kind::Source => ResourceKind::Source,
        Kind::Task => ResourceKind::Task,
    };
    let expect = match (c.action, &c.live_digest) {
        (ConfigAction::Create, _) => Expect::Absent,
        (_, Some(d)) => Expect::Digest(d.clone()),
        (_, None) => Expect::Exists,
    };
    Guard { kind, name: c.address.name.clone(), expect }
}

/// Whether a task may be running now (so it must be stopped before an update or delete). Only a task whose every
/// subtask was seen Stopped, or Paused without an error (i.e. stopped on purpose), is known not to run; a task
/// paused by an error still has expected stage Running in DM and blocks updates.
fn may_be_running(c: &ResourceChange) -> bool {
    match &c.observed {
        Some(Observed::Task { subtasks: Some(subs), .. }) if !subs.is_empty() => subs.iter().any(|s| {
            let stopped_on_purpose = s.stage == Stage::Stopped
                || (s.stage == Stage::Paused && s.error_msg.as_deref().unwrap_or("").is_empty());
            !stopped_on_purpose
        }),
        _ => true,
    }
}

/// The sources a task uses now (the planner's `live_sources`) or will use (`depends_on`).
fn task_sources(c: &ResourceChange) -> BTreeSet<String> {
    let mut out: BTreeSet<String> =
        c.depends_on.iter().filter(|a| a.kind == Kind::Source).map(|a| a.name.clone()).collect();
    out.extend(c.live_sources.iter().cloned());
    out
}

fn stopped_tasks(c: &ResourceChange) -> Vec<String> {
    match &c.impact {
        Impact::StopUpdateStart { stopped_tasks } => stopped_tasks.clone(),
        _ => vec![],
    }
}

impl<'p> Builder<'p> {
    fn add(&mut self, addr: &Address, kind: StepKind, effect: Effect) -> StepId {
        self.g.add(addr.to_string(), kind, effect)
    }

    fn req(&mut self, step: StepId, on: impl IntoIterator<Item = StepId>) {
        for o in on {
            self.g.depend(step, o, DepKind::Requires);
        }
    }

    fn after(&mut self, step: StepId, on: impl IntoIterator<Item = StepId>) {
        for o in on {
            self.g.depend(step, o, DepKind::After);
        }
    }

    /// The shared stop + wait-until-paused pair of a task.
    /// Create a task (DM creates it stopped), record its fingerprints, and start it when it should run. The caller
    /// adds what must come before the create (a guard, or the delete of a replacement).
    fn create_task_node(
        &mut self,
        c: &ResourceChange,
        addr: &Address,
        task: crate::dm::types::Task,
        src_req: &[StepId],
        src_after: &[StepId],
        wants_running: bool,
    ) -> StepId {
        let create = self.add(addr, StepKind::CreateTask { task: Box::new(task) }, Effect::Add);
        self.task_changes.push(create);
        self.req(create, src_req.iter().copied());
        self.after(create, src_after.iter().copied());
        self.record(c, Some(create), false);
        if wants_running {
            let (start, _) = self.own_start(c, Effect::None);
            self.req(start, [create]);
        }
        create
    }

    /// Delete a task (never forced): stopped first when it may run. The guard re-reads the task before the first
    /// step, and again right before the delete when a stop comes first (see Update).
    fn delete_task_node(
        &mut self,
        addr: &Address,
        name: &str,
        keep_meta: bool,
        must_stop: bool,
        guard: Guard,
    ) -> StepId {
        let del =
            self.add(addr, StepKind::DeleteTask { name: name.to_string(), force: false, keep_meta }, Effect::Destroy);
        let mut first = del;
        if must_stop {
            let (stop, wait) = self.stop_node(name);
            self.req(del, [wait]);
            first = stop;
        }
        if first != del {
            self.g.add_guard(del, guard.clone());
        }
        self.g.add_guard(first, guard);
        self.task_deletes.push(del);
        self.task_changes.push(del);
        del
    }

    /// Read a stopped task's checkpoint (after its stop, when it is stopped in this apply).
    fn read_checkpoint_node(&mut self, addr: &Address, old: &str, for_task: &str, set_positions: bool) -> StepId {
        let kind = StepKind::ReadCheckpoint { name: old.to_string(), for_task: for_task.to_string(), set_positions };
        let read = self.add(addr, kind, Effect::None);
        if let Some((_, wait)) = self.stops.get(old).copied() {
            self.req(read, [wait]);
        }
        read
    }

    /// The start of a task that resumes from a checkpoint carries safe mode for the overlap
    /// (docs/dm-behaviour.md R7.6, R8.6).
    fn resume_start(&mut self, task: &str) {
        let duration = self.resume_safe_mode.clone();
        if let Some((start, _)) = self.starts.get(task).copied()
            && let Some(step) = self.g.step_mut(start)
            && let StepKind::StartTask { request, .. } = &mut step.kind
        {
            request.safe_mode_time_duration = Some(duration);
            step.note = Some("safe mode covers the events replayed from the checkpoint".into());
        }
    }

    /// A declared rename: stop the old task, read its checkpoint, create the new one at it, delete the old one, then
    /// start the new one (never both running). A failed create leaves the old task stopped, not deleted.
    #[allow(clippy::too_many_arguments)]
    fn rename(
        &mut self,
        c: &ResourceChange,
        addr: &Address,
        old: &str,
        task: crate::dm::types::Task,
        resumes: bool,
        set_positions: bool,
        must_stop: bool,
        src_req: &[StepId],
        src_after: &[StepId],
    ) {
        let old_addr = Address::task(old);
        let old_guard = Guard {
            kind: ResourceKind::Task,
            name: old.to_string(),
            expect: c.live_digest.clone().map(Expect::Digest).unwrap_or(Expect::Exists),
        };
        let mut entry = None;
        if must_stop {
            let (stop, _) = self.stop_node(old);
            entry = Some(stop);
        }
        let read = resumes.then(|| self.read_checkpoint_node(&old_addr, old, &addr.name, set_positions));
        let create = self.add(addr, StepKind::CreateTask { task: Box::new(task) }, Effect::Add);
        self.task_changes.push(create);
        self.g.add_guard(create, Guard { kind: ResourceKind::Task, name: addr.name.clone(), expect: Expect::Absent });
        self.req(create, src_req.iter().copied());
        self.after(create, src_after.iter().copied());
        if let Some(r) = read {
            self.req(create, [r]);
        } else if let Some((_, wait)) = self.stops.get(old).copied() {
            self.req(create, [wait]);
        }
        let first = entry.or(read).unwrap_or(create);
        self.g.add_guard(first, old_guard.clone());
        self.record(c, Some(create), false);
        // The old task goes only once the new one exists: a refused create leaves it (stopped) in place.
        let del = self.add(
            &old_addr,
            StepKind::DeleteTask { name: old.to_string(), force: false, keep_meta: false },
            Effect::Destroy,
        );
        self.g.add_guard(del, old_guard);
        self.req(del, [create]);
        self.task_deletes.push(del);
        self.task_changes.push(del);
        if self.record {
            let forget = self.add(
                &old_addr,
                StepKind::RecordState { address: old_addr.to_string(), update: Update::Forget },
                Effect::None,
            );
            self.req(forget, [del]);
            self.records.push(forget);
        }
        if c.desired_stage == Some(DesiredStage::Running) {
            let (start, _) = self.own_start(c, Effect::None);
            self.req(start, [create, del]);
            if resumes {
                self.resume_start(&addr.name);
            }
        }
    }

    fn stop_node(&mut self, task: &str) -> (StepId, StepId) {
        self.stop_node_on(task, None)
    }

    /// The stop + wait pair of a task, limited to the subtask on `on` (a source update needs no more), or of
    /// every subtask (`None`). Shared: a second caller widens the pair to cover what it needs too.
    fn stop_node_on(&mut self, task: &str, on: Option<&str>) -> (StepId, StepId) {
        if let Some((stop, wait)) = self.stops.get(task).copied() {
            for id in [stop, wait] {
                if let Some(StepKind::StopTask { sources, .. } | StepKind::WaitTask { sources, .. }) =
                    self.g.step_mut(id).map(|s| &mut s.kind)
                {
                    widen(sources, on);
                }
            }
            return (stop, wait);
        }
        let addr = Address::task(task);
        let sources = on.map(|s| vec![s.to_string()]);
        let stop =
            self.add(&addr, StepKind::StopTask { name: task.to_string(), sources: sources.clone() }, Effect::None);
        let wait = self.add(
            &addr,
            StepKind::WaitTask { name: task.to_string(), until: WaitFor::Paused, sources },
            Effect::None,
        );
        self.req(wait, [stop]);
        self.stops.insert(task.to_string(), (stop, wait));
        (stop, wait)
    }

    /// The shared start + wait-until-running pair of a task.
    fn start_node(&mut self, task: &str, effect: Effect) -> (StepId, StepId) {
        self.start_node_on(task, effect, None)
    }

    /// The start + wait pair of a task, limited to the subtask on `on` (the restart after a source update) or of
    /// every subtask (`None`); widened like [`Self::stop_node_on`].
    fn start_node_on(&mut self, task: &str, effect: Effect, on: Option<&str>) -> (StepId, StepId) {
        if let Some((start, wait)) = self.starts.get(task).copied() {
            for id in [start, wait] {
                match self.g.step_mut(id).map(|s| &mut s.kind) {
                    Some(StepKind::StartTask { request, .. }) => widen(&mut request.source_name_list, on),
                    Some(StepKind::WaitTask { sources, .. }) => widen(sources, on),
                    _ => {}
                }
            }
            return (start, wait);
        }
        let addr = Address::task(task);
        let sources = on.map(|s| vec![s.to_string()]);
        let request = StartTaskRequest { source_name_list: sources.clone(), ..StartTaskRequest::default() };
        let start = self.add(&addr, StepKind::StartTask { name: task.to_string(), request }, effect);
        let wait = self.add(
            &addr,
            StepKind::WaitTask { name: task.to_string(), until: WaitFor::Running, sources },
            Effect::None,
        );
        self.req(wait, [start]);
        self.starts.insert(task.to_string(), (start, wait));
        (start, wait)
    }

    /// The start a task's own change needs: of every subtask, or only on the sources the plan limits it to
    /// (`start_on`: the others are disabled).
    fn own_start(&mut self, c: &ResourceChange, effect: Effect) -> (StepId, StepId) {
        let name = &c.address.name;
        match c.start_on.split_first() {
            None => self.start_node(name, effect),
            Some((first, rest)) => {
                let ids = self.start_node_on(name, effect, Some(first));
                for s in rest {
                    self.start_node_on(name, effect, Some(s));
                }
                ids
            }
        }
    }

    /// The state record step of a change (after `after_step` succeeded, when given). Nothing when the plan keeps
    /// no record (no declared task) or the change records nothing.
    fn record(&mut self, c: &ResourceChange, after_step: Option<StepId>, forget: bool) {
        if !self.record {
            return;
        }
        let update = match (&c.record, forget) {
            (_, true) | (Some(RecordPlan::Forget), _) => Update::Forget,
            (None, false) => return,
            (Some(RecordPlan::Set { fields, version, merge, .. }), false) => {
                let all = match &c.desired {
                    Some(DesiredPayload::Source(s)) => crate::normalize::source_write_only(s),
                    Some(DesiredPayload::Task(t)) => crate::normalize::task_write_only_fields(t, &self.version),
                    None => vec![],
                };
                let values =
                    all.into_iter().filter(|f| fields.iter().any(|k| k == f.key)).map(|f| (f.key.to_string(), f.value));
                Update::Set { values: values.collect(), version: *version, merge: *merge }
            }
        };
        let kind = StepKind::RecordState { address: c.address.to_string(), update };
        let id = self.add(&c.address, kind, Effect::None);
        if let Some(after) = after_step {
            self.req(id, [after]);
        }
        self.records.push(id);
    }

    /// The tasks that the plan wants running on `source` afterwards (DM's /enable must not stop them again).
    fn keep_running(&self, source: &str) -> BTreeSet<String> {
        self.changes
            .values()
            .filter(|c| c.address.kind == Kind::Task)
            .filter(|c| c.action != ConfigAction::Delete && c.desired_stage == Some(DesiredStage::Running))
            .filter(|c| c.depends_on.iter().any(|a| a.kind == Kind::Source && a.name == source))
            .map(|c| c.address.name.clone())
            .collect()
    }

    fn source_payload(&self, c: &ResourceChange, for_update: bool) -> Result<crate::dm::types::Source, CompileError> {
        let Some(DesiredPayload::Source(s)) = &c.desired else { return Err(missing(&c.address)) };
        let mut s = s.clone();
        if for_update {
            if !c.send_password {
                // Absent keeps the stored password; the GET value `******` must never be sent back.
                s.password = None;
            }
            // The PUT keeps the enable value the source has at that moment; enable/disable have their own steps.
            let live_enable = match c.observed {
                Some(Observed::Source { enable }) => Some(enable),
                _ => None,
            };
            if c.runtime.contains(&RuntimeAction::Disable) {
                s.enable = false;
            } else if let Some(e) = live_enable {
                s.enable = e;
            }
        }
        Ok(s)
    }

    fn source(&mut self, c: &'p ResourceChange) -> Result<(), CompileError> {
        let name = c.address.name.clone();
        let addr = c.address.clone();
        let guard = guard_for(c);
        let mut nodes = SourceNodes::default();
        let relay_stop = self.relay_stop(c, &guard);
        let worker_name = c.binding.as_ref().and_then(|b| b.to.clone());
        match c.action {
            ConfigAction::Create => {
                let s = self.source_payload(c, false)?;
                let kind = StepKind::CreateSource { source: Box::new(s), worker_name: worker_name.clone() };
                let id = self.add(&addr, kind, Effect::Add);
                self.g.add_guard(id, guard.clone());
                self.record(c, Some(id), false);
                nodes.create = Some(id);
                if worker_name.is_some() {
                    self.creates_on_worker.push(id);
                } else {
                    self.creates_anywhere.push((id, c.binding.as_ref().is_some_and(|b| b.stays_unbound)));
                }
            }
            ConfigAction::Update => {
                let mut entry = vec![];
                let mut before_put = vec![];
                if c.runtime.contains(&RuntimeAction::Disable) {
                    let d = self.add(&addr, StepKind::DisableSource { name: name.clone() }, Effect::Change);
                    entry.push(d);
                    before_put.push(d);
                    nodes.others.push(d);
                }
                // `/disable` stops every task of the source itself, and none can start again on a disabled source.
                let stopped = if c.runtime.contains(&RuntimeAction::Disable) { vec![] } else { stopped_tasks(c) };
                // Only the subtasks on this source: DM looks at no other (46025), so the tasks' other sources keep
                // replicating.
                for t in &stopped {
                    let (stop, wait) = self.stop_node_on(t, Some(&name));
                    entry.push(stop);
                    before_put.push(wait);
                }
                let s = self.source_payload(c, true)?;
                let put = self.add(&addr, StepKind::UpdateSource { source: Box::new(s) }, Effect::Change);
                // Stopping relay started by the config flag rewrites the source (the flag), so the plan's digest no
                // longer holds for the PUT: only the relay stop is guarded then.
                let flag_stopped = c.relay.as_ref().is_some_and(|r| r.stop_config_flag);
                if !entry.is_empty() && !c.runtime.contains(&RuntimeAction::Disable) && !flag_stopped {
                    // Its tasks were stopped first (which leaves the source as it was): re-read right before the
                    // PUT too, so a change made meanwhile is not overwritten. (After our own /disable the source's
                    // `enable` differs from the plan's view, so there only the first step is guarded.)
                    self.g.add_guard(put, guard.clone());
                }
                if entry.is_empty() {
                    entry.push(put);
                }
                self.req(put, before_put);
                for e in entry {
                    if relay_stop.is_none() {
                        self.g.add_guard(e, guard.clone());
                    }
                    self.req(e, relay_stop);
                }
                self.req(put, relay_stop);
                self.record(c, Some(put), false);
                nodes.others.push(put);
                if !c.runtime.contains(&RuntimeAction::Disable)
                    && !matches!(c.observed, Some(Observed::Source { enable: false }))
                {
                    nodes.put = Some(put);
                }
                let mut restart_after = vec![put];
                if c.runtime.contains(&RuntimeAction::Enable) {
                    let keep = self.keep_running(&name);
                    let e = self.add(
                        &addr,
                        StepKind::EnableSource { name: name.clone(), keep_running: keep },
                        Effect::Change,
                    );
                    self.after(e, [put]);
                    nodes.others.push(e);
                    nodes.enable = Some(e);
                    restart_after.push(e);
                }
                // Tasks stopped for the update start again on the worker the source moves to.
                if let Some(t) = self.transfer(c, &nodes, relay_stop, None) {
                    nodes.others.push(t);
                    restart_after.push(t);
                }
                for t in stopped {
                    self.source_tasks.entry(name.clone()).or_default().insert(t.clone());
                    self.restart_after.entry(t.clone()).or_default().extend(restart_after.iter().copied());
                    // A record-only entry (trust on first use) does not start the task: only a change that
                    // stops or replaces the task itself takes care of its restart.
                    let own = self.changes.get(&Address::task(&t)).copied().filter(|c| !c.is_noop());
                    if own.is_none() {
                        // Not otherwise changed: it ran before, so it runs again afterwards.
                        let (start, _) = self.start_node_on(&t, Effect::None, Some(&name));
                        self.g.set_note(start, format!("restart: stopped to update source.{name}"));
                    }
                }
            }
            ConfigAction::Replace => {
                let stopped = stopped_tasks(c);
                let mut waits = vec![];
                let mut entry = vec![];
                for t in &stopped {
                    let (stop, wait) = self.stop_node(t);
                    entry.push(stop);
                    waits.push(wait);
                }
                let del = self.add(&addr, StepKind::DeleteSource { name: name.clone(), force: false }, Effect::Destroy);
                self.req(del, waits);
                if !entry.is_empty() {
                    // Re-read right before the delete too (see Update).
                    self.g.add_guard(del, guard.clone());
                }
                if entry.is_empty() {
                    entry.push(del);
                }
                for e in entry {
                    self.g.add_guard(e, guard.clone());
                }
                self.source_deletes.push(del);
                let s = self.source_payload(c, false)?;
                let kind = StepKind::CreateSource { source: Box::new(s), worker_name: worker_name.clone() };
                let create = self.add(&addr, kind, Effect::Add);
                self.req(create, [del]);
                self.record(c, Some(create), false);
                nodes.create = Some(create);
                for t in stopped {
                    self.restart_after.entry(t.clone()).or_default().push(create);
                    if self.changes.get(&Address::task(&t)).is_none_or(|c| c.is_noop()) {
                        let (start, _) = self.start_node(&t, Effect::None);
                        self.g.set_note(start, format!("restart: stopped to replace source.{name}"));
                    }
                }
            }
            ConfigAction::Delete => {
                let del = self.add(&addr, StepKind::DeleteSource { name: name.clone(), force: false }, Effect::Destroy);
                self.g.add_guard(del, guard.clone());
                // DM refuses to delete a source while relay runs for it (46023).
                self.req(del, relay_stop);
                self.source_deletes.push(del);
                self.record(c, Some(del), true);
            }
            ConfigAction::NoOp => {
                self.record(c, None, false);
                let first = relay_stop.is_none();
                for r in &c.runtime {
                    let (kind, is_enable) = match r {
                        RuntimeAction::Enable => (
                            StepKind::EnableSource { name: name.clone(), keep_running: self.keep_running(&name) },
                            true,
                        ),
                        RuntimeAction::Disable => (StepKind::DisableSource { name: name.clone() }, false),
                        // Start/stop do not apply to sources; relay and transfer have their own steps.
                        RuntimeAction::Start
                        | RuntimeAction::Stop
                        | RuntimeAction::StopRelay
                        | RuntimeAction::Transfer
                        | RuntimeAction::StartRelay => continue,
                    };
                    let id = self.add(&addr, kind, Effect::Change);
                    if first {
                        self.g.add_guard(id, guard.clone());
                    }
                    self.req(id, relay_stop);
                    self.after(id, nodes.others.clone());
                    nodes.others.push(id);
                    if is_enable {
                        nodes.enable = Some(id);
                    }
                }
                let first = first && nodes.others.is_empty();
                let counted = !c.runtime.iter().any(|r| matches!(r, RuntimeAction::Enable | RuntimeAction::Disable));
                if let Some(t) = self.transfer(c, &nodes, relay_stop, first.then(|| guard.clone())) {
                    if counted && let Some(s) = self.g.step_mut(t) {
                        s.effect = Effect::Change;
                    }
                    nodes.others.push(t);
                }
            }
        }
        if c.action != ConfigAction::Delete {
            self.relay_start(c, &nodes, relay_stop, &guard);
        }
        if c.action == ConfigAction::NoOp
            && !c
                .runtime
                .iter()
                .any(|r| matches!(r, RuntimeAction::Enable | RuntimeAction::Disable | RuntimeAction::Transfer))
        {
            // A relay-only change counts once, on its last relay step.
            let last = self.relay_starts.last().filter(|(s, _, _)| *s == name).map(|(_, id, _)| *id).or(relay_stop);
            if let Some(s) = last.and_then(|id| self.g.step_mut(id)) {
                s.effect = Effect::Change;
            }
        }
        self.sources.insert(name, nodes);
        Ok(())
    }

    /// The relay stop of a source change, first in its branch and guarded.
    fn relay_stop(&mut self, c: &ResourceChange, guard: &Guard) -> Option<StepId> {
        let r = c.relay.as_ref().filter(|r| r.stops())?;
        let target = if r.stop_config_flag { RelayTarget::ConfigFlag } else { RelayTarget::Workers(r.stop.clone()) };
        let id = self.add(&c.address, StepKind::StopRelay { name: c.address.name.clone(), target }, Effect::None);
        self.g.add_guard(id, guard.clone());
        if !r.restarted.is_empty() {
            self.g.set_note(id, format!("started again after the update: {}", r.restarted.join(", ")));
        }
        self.relay_stops.push(id);
        Some(id)
    }

    /// The transfer of a source, after its relay stop and its other steps; then the waits for the tasks DM resumes.
    fn transfer(
        &mut self,
        c: &ResourceChange,
        nodes: &SourceNodes,
        relay_stop: Option<StepId>,
        guard: Option<Guard>,
    ) -> Option<StepId> {
        if !c.runtime.contains(&RuntimeAction::Transfer) {
            return None;
        }
        let b = c.binding.as_ref()?;
        let worker = b.to.clone()?;
        let name = c.address.name.clone();
        let id =
            self.add(&c.address, StepKind::TransferSource { name: name.clone(), worker: worker.clone() }, Effect::None);
        if let Some(g) = guard {
            self.g.add_guard(id, g);
        }
        self.after(id, relay_stop);
        self.after(id, nodes.others.iter().copied());
        if !b.paused_tasks.is_empty() {
            self.g.set_note(id, format!("DM pauses and resumes {}", b.paused_tasks.join(", ")));
        }
        self.transfers.push(id);
        for t in &b.paused_tasks {
            self.source_tasks.entry(name.clone()).or_default().insert(t.clone());
            // A task with its own change here takes care of its stage; the others are waited for when DM can say.
            if !b.confirm || self.changes.get(&Address::task(t)).is_some_and(|c| !c.is_noop()) {
                continue;
            }
            let wait = self.add(
                &Address::task(t),
                // DM resumes only the subtask on the moved source.
                StepKind::WaitTask { name: t.clone(), until: WaitFor::Running, sources: Some(vec![name.clone()]) },
                Effect::None,
            );
            self.g.set_note(wait, format!("DM resumes it on worker {worker} after the transfer"));
            self.req(wait, [id]);
            self.transfer_waits.entry(name.clone()).or_default().push(wait);
        }
        Some(id)
    }

    /// The relay start of a source change, last in its branch.
    fn relay_start(&mut self, c: &ResourceChange, nodes: &SourceNodes, relay_stop: Option<StepId>, guard: &Guard) {
        let Some(r) = c.relay.as_ref().filter(|r| r.starts()) else { return };
        let target =
            if r.start_on_bound_worker { RelayTarget::BoundWorker } else { RelayTarget::Workers(r.start.clone()) };
        let name = c.address.name.clone();
        let id = self.add(&c.address, StepKind::StartRelay { name: name.clone(), target }, Effect::None);
        self.req(id, nodes.create);
        self.after(id, relay_stop);
        self.after(id, nodes.others.iter().copied());
        let transfer = c.runtime.contains(&RuntimeAction::Transfer);
        if r.start_on_bound_worker && transfer {
            // On the bound worker: only once the source is where it belongs.
            let t = self.transfers.last().copied();
            self.req(id, t);
        }
        if relay_stop.is_none() && nodes.create.is_none() && nodes.others.is_empty() && !transfer {
            self.g.add_guard(id, guard.clone());
        }
        if !r.restarted.is_empty() {
            self.g.set_note(id, "relay was stopped for the update".to_string());
        }
        self.relay_starts.push((name, id, r.claims_free_worker));
    }

    /// `step` comes after each of `on` unless that would close a cycle (ordering only).
    fn after_acyclic(&mut self, step: StepId, on: impl IntoIterator<Item = StepId>) {
        for o in on {
            if o != step && !self.reaches(o, step) {
                self.after(step, [o]);
            }
        }
    }

    /// The source steps a task's create/update/start must follow: (required creates, ordering-only others).
    fn source_deps(&self, c: &ResourceChange) -> (Vec<StepId>, Vec<StepId>) {
        let mut req = vec![];
        let mut after = vec![];
        for a in c.depends_on.iter().filter(|a| a.kind == Kind::Source) {
            if let Some(n) = self.sources.get(&a.name) {
                req.extend(n.create);
                after.extend(n.others.iter().copied());
            }
        }
        (req, after)
    }

    fn task(&mut self, c: &'p ResourceChange) -> Result<(), CompileError> {
        let name = c.address.name.clone();
        let addr = c.address.clone();
        let guard = guard_for(c);
        let (src_req, src_after) = self.source_deps(c);
        let wants_running = c.desired_stage == Some(DesiredStage::Running);
        // A task whose source is enabled in this apply is started by DM's /enable.
        // A task on a source enabled in this apply is started by DM's /enable (its live sources count: a replaced
        // task may move away from the source).
        let on_sources = task_sources(c);
        let source_enabled = on_sources.iter().any(|s| self.sources.get(s).is_some_and(|n| n.enable.is_some()));
        let must_stop = may_be_running(c) || source_enabled;
        let payload = match &c.desired {
            Some(DesiredPayload::Task(t)) => Some(t.clone()),
            _ => None,
        };
        match c.action {
            ConfigAction::Create => {
                let Some(t) = payload else { return Err(missing(&addr)) };
                let create = self.create_task_node(c, &addr, t, &src_req, &src_after, wants_running);
                self.g.add_guard(create, guard);
            }
            ConfigAction::Update => {
                let Some(t) = payload else { return Err(missing(&addr)) };
                let put = self.add(&addr, StepKind::UpdateTask { task: Box::new(t) }, Effect::Change);
                self.task_changes.push(put);
                let mut first = put;
                if must_stop {
                    let (stop, wait) = self.stop_node(&name);
                    self.req(put, [wait]);
                    first = stop;
                }
                if first != put {
                    // Re-read again right before the PUT: someone may have changed the task while it was being
                    // stopped (a person with dmctl, another apply); the PUT would overwrite their change.
                    self.g.add_guard(put, guard.clone());
                }
                self.g.add_guard(first, guard);
                self.after(put, src_after.clone());
                self.req(put, src_req.clone());
                self.record(c, Some(put), false);
                if wants_running {
                    let (start, _) = self.own_start(c, Effect::None);
                    match self.stops.get(&name).copied() {
                        // We stopped it: start it again even when the PUT failed (it ran before and should keep
                        // running), but not when the stop itself failed (then it was never stopped).
                        Some((stop, wait)) => {
                            self.req(start, [stop]);
                            self.after(start, [wait, put]);
                        }
                        None => self.req(start, [put]),
                    }
                }
            }
            ConfigAction::Replace => {
                let Some(t) = payload else { return Err(missing(&addr)) };
                let (keep_meta, from_checkpoint, resumes, renamed_from) = match &c.impact {
                    Impact::Replace {
                        keep_meta,
                        from_checkpoint,
                        restarts_migration,
                        not_started,
                        renamed_from,
                        ..
                    } => (
                        *keep_meta,
                        *from_checkpoint,
                        !*restarts_migration && !*not_started && (*from_checkpoint || *keep_meta),
                        renamed_from.clone(),
                    ),
                    _ => (false, false, false, None),
                };
                match renamed_from {
                    Some(old) => {
                        self.rename(c, &addr, &old, t, resumes, from_checkpoint, must_stop, &src_req, &src_after)
                    }
                    None => {
                        let del = self.delete_task_node(&addr, &name, keep_meta, must_stop, guard);
                        if resumes {
                            // Read where it got to after the stop, before anything is deleted.
                            let read = self.read_checkpoint_node(&addr, &name, &name, from_checkpoint);
                            self.req(del, [read]);
                        }
                        let create = self.create_task_node(c, &addr, t, &src_req, &src_after, wants_running);
                        self.req(create, [del]);
                        if resumes {
                            self.resume_start(&name);
                        }
                    }
                }
            }
            ConfigAction::Delete => {
                let del = self.delete_task_node(&addr, &name, false, must_stop, guard);
                self.record(c, Some(del), true);
            }
            ConfigAction::NoOp => {
                self.record(c, None, false);
                for r in &c.runtime {
                    match r {
                        RuntimeAction::Stop => {
                            let (stop, _) = self.stop_node(&name);
                            self.g.add_guard(stop, guard.clone());
                            if let Some(s) = self.g.step_mut(stop) {
                                s.effect = Effect::Change;
                            }
                        }
                        RuntimeAction::Start => {
                            let (start, _) = self.own_start(c, Effect::Change);
                            self.g.add_guard(start, guard.clone());
                            if let Some(s) = self.g.step_mut(start) {
                                s.effect = Effect::Change;
                            }
                            if let Some((_, wait)) = self.stops.get(&name).copied() {
                                self.after(start, [wait]);
                            }
                        }
                        RuntimeAction::Enable
                        | RuntimeAction::Disable
                        | RuntimeAction::StopRelay
                        | RuntimeAction::Transfer
                        | RuntimeAction::StartRelay => {}
                    }
                }
            }
        }
        // Any (re)start follows the steps of the task's sources (a task cannot start on a disabled source).
        if let Some((start, _)) = self.starts.get(&name).copied() {
            self.req(start, src_req);
            self.after(start, src_after);
        }
        // DM's /enable of a source starts this task: a stop needed for this task's own change comes after it.
        if let Some((stop, _)) = self.stops.get(&name).copied() {
            let enables: Vec<StepId> =
                on_sources.iter().filter_map(|s| self.sources.get(s).and_then(|n| n.enable)).collect();
            for e in enables {
                if !self.reaches(e, stop) {
                    self.after(stop, [e]);
                }
            }
        }
        Ok(())
    }

    /// Whether `to` already (transitively) waits for... `from` reaches `to` when `from` depends on `to`.
    fn reaches(&self, from: StepId, to: StepId) -> bool {
        let mut stack = vec![from];
        let mut seen = BTreeSet::new();
        while let Some(s) = stack.pop() {
            if s == to {
                return true;
            }
            if seen.insert(s) {
                stack.extend(self.g.deps_of(s).map(|(d, _)| d));
            }
        }
        false
    }

    /// DM's /enable starts every task of the source; the enable step then stops again, and waits for, the tasks
    /// that must not run. A task on two sources enabled in this apply can be kept running by one enable (it runs
    /// on that source afterwards) and stopped by the other (it leaves that source): run concurrently, the first
    /// enable may start the task again after the second stopped it, and the second waits for a pause that never
    /// comes. So enables of sources that share a task run one after the other (in name order; ordering only). Tasks
    /// outside the plan are stopped by every enable, so they cannot conflict.
    fn serialize_shared_enables(&mut self) {
        let enables: BTreeMap<&str, StepId> =
            self.sources.iter().filter_map(|(n, s)| s.enable.map(|e| (n.as_str(), e))).collect();
        if enables.len() < 2 {
            return;
        }
        let mut pairs = BTreeSet::new();
        for c in self.changes.values().filter(|c| c.address.kind == Kind::Task) {
            let on: Vec<StepId> = task_sources(c).iter().filter_map(|s| enables.get(s.as_str()).copied()).collect();
            pairs.extend(on.windows(2).map(|w| (w[0], w[1])));
        }
        for (first, then) in pairs {
            if !self.reaches(first, then) && !self.reaches(then, first) {
                self.after(then, [first]);
            }
        }
    }

    /// Relay, transfer and worker-claim ordering across sources (see the module doc).
    fn order_placement(&mut self) {
        let stops = self.relay_stops.clone();
        let starts = self.relay_starts.clone();
        // A worker freed by one source's relay stop can relay another source, or take a binding.
        for (_, id, _) in &starts {
            self.after_acyclic(*id, stops.iter().copied());
        }
        for t in self.transfers.clone() {
            self.after_acyclic(t, stops.iter().copied());
        }
        for c in self.creates_on_worker.clone() {
            self.after_acyclic(c, stops.iter().copied());
        }
        // DM binds a new source to any free worker: first let the steps that need a particular one have it.
        let mut claims: Vec<StepId> = self.transfers.clone();
        claims.extend(self.creates_on_worker.iter().copied());
        claims.extend(starts.iter().filter(|(_, _, free)| *free).map(|(_, id, _)| *id));
        let bound_creates: Vec<StepId> =
            self.creates_anywhere.iter().filter(|(_, unbound)| !unbound).map(|(id, _)| *id).collect();
        for (id, unbound) in self.creates_anywhere.clone() {
            self.after_acyclic(id, claims.iter().copied());
            if unbound {
                self.after_acyclic(id, bound_creates.iter().copied());
            }
        }
        // Relay starts last in their source's branch: after the tasks on the source were waited for, because DM cannot
        // report their status while relay runs on a worker other than the bound one (R8.12).
        for (source, id, _) in starts {
            let mut tasks: BTreeSet<String> = self.source_tasks.get(&source).cloned().unwrap_or_default();
            tasks.extend(
                self.changes
                    .values()
                    .filter(|c| c.address.kind == Kind::Task && task_sources(c).contains(&source))
                    .map(|c| c.address.name.clone()),
            );
            let mut waits: Vec<StepId> = tasks.iter().filter_map(|t| self.starts.get(t).map(|(_, w)| *w)).collect();
            waits.extend(self.transfer_waits.get(&source).into_iter().flatten().copied());
            self.after_acyclic(id, waits);
        }
    }

    fn finish(&mut self) {
        self.serialize_shared_enables();
        // Which tasks a source update stops is the planner's decision (`Impact::StopUpdateStart`, made in
        // `source()`); a task stopped for its own change decides that in `task()`. Here only the order: a task of
        // this plan on a source being PUT that is stopped in this apply is stopped before the PUT (DM refuses the
        // PUT while a task on the source runs, 46025), and started again after it by its own steps.
        let puts: Vec<(String, StepId)> =
            self.sources.iter().filter_map(|(n, s)| s.put.map(|p| (n.clone(), p))).collect();
        for (source, put) in puts {
            let tasks: Vec<String> = self
                .changes
                .values()
                .filter(|c| c.address.kind == Kind::Task && c.action != ConfigAction::Create)
                // A record-only entry has no steps of its own to restart it; the source's branch handles the
                // tasks it stops.
                .filter(|c| !c.is_noop())
                .filter(|c| task_sources(c).contains(&source))
                .map(|c| c.address.name.clone())
                .collect();
            for name in tasks {
                let Some((_, wait)) = self.stops.get(&name).copied() else { continue };
                if self.reaches(wait, put) {
                    continue;
                }
                self.req(put, [wait]);
                self.restart_after.entry(name).or_default().push(put);
            }
        }
        // Restarts after source updates.
        let restarts: Vec<(String, Vec<StepId>)> =
            self.restart_after.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for (task, after) in restarts {
            if let Some((start, _)) = self.starts.get(&task).copied() {
                self.after(start, after);
                if let Some((stop, wait)) = self.stops.get(&task).copied() {
                    // Restart only what was stopped; a failed stop (e.g. a guard) left it running.
                    self.req(start, [stop]);
                    self.after(start, [wait]);
                }
            }
        }
        // Sources are deleted after every task delete (DM refuses with 46010 while a task uses the source).
        let (sd, td) = (self.source_deletes.clone(), self.task_deletes.clone());
        for s in sd {
            self.after(s, td.iter().copied());
        }
        // The record is written after every task change (ordering only): its template connects to a task's target,
        // whose credentials may change in this very apply.
        // One group, not records × task changes edges (millions at fleet scale).
        let (records, tasks) = (self.records.clone(), self.task_changes.clone());
        self.g.after_all(records, tasks);
        // Last, so that its cycle checks see every other dependency.
        self.order_placement();
    }
}

/// Make a step's source list cover `on` too: `None` (every subtask) absorbs everything.
fn widen(sources: &mut Option<Vec<String>>, on: Option<&str>) {
    match (sources.as_mut(), on) {
        (None, _) => {}
        (Some(_), None) => *sources = None,
        (Some(list), Some(s)) => {
            if !list.iter().any(|x| x == s) {
                list.push(s.to_string());
                list.sort();
            }
        }
    }
}

fn missing(address: &Address) -> CompileError {
    CompileError::MissingPayload { address: address.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dm::types::{Source, Task};
    use crate::plan::{ClusterIdentity, ObservedSubtask};

    fn change(address: Address, action: ConfigAction) -> ResourceChange {
        let desired = match (address.kind, action) {
            (_, ConfigAction::Delete | ConfigAction::NoOp) => None,
            (Kind::Source, _) => Some(DesiredPayload::Source(Source {
                source_name: address.name.clone(),
                enable: true,
                password: Some(crate::secret::Secret::new("pw")),
                ..Default::default()
            })),
            (Kind::Task, _) => Some(DesiredPayload::Task(Task { name: address.name.clone(), ..Default::default() })),
        };
        ResourceChange {
            action,
            impact: Impact::InPlace,
            desired,
            live_digest: Some("d".into()),
            ..ResourceChange::new(address)
        }
    }

    fn plan(changes: Vec<ResourceChange>) -> Plan {
        Plan {
            format_version: "1.0".into(),
            cluster: ClusterIdentity { addr: "x".into(), cluster_id: None, server_version: "v8.5.3".into() },
            changes,
            unmanaged: vec![],
            warnings: vec![],
            targets: vec![],
            prune: true,
            notes: vec![],
            state: crate::plan::StatePlan { home: Some("t".into()), rewrite: false },
            preview: None,
        }
    }

    /// Labels in one valid execution order (the scheduler may run independent steps in any order), and a lookup
    /// of whether `a` must come before `b`.
    fn labels(g: &StepGraph) -> Vec<String> {
        g.topo_order().unwrap().into_iter().map(|id| g.step(id).unwrap().label()).collect()
    }

    /// Exactly these steps (as a set: `labels` prints one of many valid orders), and the partial order DM requires:
    /// in each pair the first step is done before the second starts (through `Requires` or `After`).
    fn assert_steps(g: &StepGraph, steps: &[&str], order: &[(&str, &str)]) {
        let mut have = labels(g);
        have.sort();
        let mut want: Vec<String> = steps.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(have, want, "steps");
        for (a, b) in order {
            assert!(before(g, a, b), "`{a}` must come before `{b}`: {:?}", labels(g));
        }
    }

    fn id_of(g: &StepGraph, label: &str) -> StepId {
        g.steps().find(|s| s.label() == label).unwrap_or_else(|| panic!("no step {label}: {:?}", labels(g))).id
    }

    fn before(g: &StepGraph, a: &str, b: &str) -> bool {
        let (a, b) = (id_of(g, a), id_of(g, b));
        let mut stack = vec![b];
        let mut seen = BTreeSet::new();
        while let Some(s) = stack.pop() {
            if s == a {
                return true;
            }
            if seen.insert(s) {
                stack.extend(g.deps_of(s).map(|(d, _)| d));
            }
        }
        false
    }

    fn running(c: &mut ResourceChange) {
        c.observed = Some(Observed::Task {
            subtasks: Some(vec![ObservedSubtask {
                source_name: "a".into(),
                stage: Stage::Running,
                unit: "Sync".into(),
                error_msg: None,
            }]),
            status_error: None,
        });
        c.desired_stage = Some(DesiredStage::Running);
    }

    #[test]
    fn create_source_then_task_then_start() {
        let s = change(Address::source("a"), ConfigAction::Create);
        let mut t = change(Address::task("t"), ConfigAction::Create);
        t.depends_on = vec![Address::source("a")];
        t.desired_stage = Some(DesiredStage::Running);
        let g = compile(&plan(vec![s, t]), &CompileOptions::default()).unwrap();
        assert_steps(
            &g,
            &["source.a: create source", "task.t: create task", "task.t: start task", "task.t: wait until Running"],
            &[
                ("source.a: create source", "task.t: create task"),
                ("task.t: create task", "task.t: start task"),
                ("task.t: start task", "task.t: wait until Running"),
            ],
        );
        assert_eq!(g.step(id_of(&g, "task.t: create task")).unwrap().guards[0].expect, Expect::Absent);
    }

    #[test]
    fn update_running_task_is_stop_put_start() {
        let mut t = change(Address::task("t"), ConfigAction::Update);
        running(&mut t);
        let g = compile(&plan(vec![t]), &CompileOptions::default()).unwrap();
        assert_steps(
            &g,
            &[
                "task.t: stop task",
                "task.t: wait until Paused",
                "task.t: update task",
                "task.t: start task",
                "task.t: wait until Running",
            ],
            &[
                // DM refuses to update a running task (46035).
                ("task.t: stop task", "task.t: wait until Paused"),
                ("task.t: wait until Paused", "task.t: update task"),
                ("task.t: update task", "task.t: start task"),
                ("task.t: start task", "task.t: wait until Running"),
            ],
        );
        let stop = g.step(id_of(&g, "task.t: stop task")).unwrap();
        assert_eq!(stop.guards[0].expect, Expect::Digest("d".into()));
        // The PUT re-reads again: the task may have been changed by someone else while it was being stopped.
        assert_eq!(g.step(id_of(&g, "task.t: update task")).unwrap().guards[0].expect, Expect::Digest("d".into()));
        // The start restores the task even when the PUT fails, but only when the stop succeeded.
        let start = id_of(&g, "task.t: start task");
        let deps: BTreeMap<StepId, DepKind> = g.deps_of(start).collect();
        assert_eq!(deps[&id_of(&g, "task.t: stop task")], DepKind::Requires);
        assert_eq!(deps[&id_of(&g, "task.t: update task")], DepKind::After);
        assert_eq!(deps[&id_of(&g, "task.t: wait until Paused")], DepKind::After);
    }

    #[test]
    fn record_steps_follow_every_task_change_and_need_a_home() {
        let mut s = change(Address::source("a"), ConfigAction::NoOp);
        s.record = Some(RecordPlan::Set { fields: vec!["password".into()], version: None, merge: false, adopt: true });
        // Adoption needs the payload to fingerprint.
        assert!(matches!(
            compile(&plan(vec![s.clone()]), &CompileOptions::default()),
            Err(CompileError::MissingPayload { .. })
        ));
        s.desired = change(Address::source("a"), ConfigAction::Update).desired;
        let mut t = change(Address::task("t"), ConfigAction::Create);
        t.record = Some(RecordPlan::Set { fields: vec![], version: Some(3), merge: false, adopt: false });
        let g = compile(&plan(vec![s.clone(), t.clone()]), &CompileOptions::default()).unwrap();
        assert!(before(&g, "task.t: create task", "source.a: record fingerprints in state record"));
        match &g.step(id_of(&g, "task.t: record fingerprints in state record")).unwrap().kind {
            StepKind::RecordState { update: Update::Set { values, version, .. }, .. } => {
                assert!(values.is_empty());
                assert_eq!(*version, Some(3));
            }
            k => panic!("{k:?}"),
        }
        // No declared task: no record is kept, so no record step.
        let mut p = plan(vec![s, t]);
        p.state.home = None;
        let g = compile(&p, &CompileOptions::default()).unwrap();
        assert!(!labels(&g).iter().any(|l| l.contains("state record")), "{:?}", labels(&g));
    }

    #[test]
    fn update_of_a_task_stopped_on_purpose_does_not_stop_it() {
        let mut t = change(Address::task("t"), ConfigAction::Update);
        t.observed = Some(Observed::Task {
            subtasks: Some(vec![ObservedSubtask {
                source_name: "a".into(),
                stage: Stage::Paused,
                unit: "Sync".into(),
                error_msg: None,
            }]),
            status_error: None,
        });
        t.desired_stage = Some(DesiredStage::Stopped);
        let g = compile(&plan(vec![t]), &CompileOptions::default()).unwrap();
        assert_eq!(labels(&g), ["task.t: update task"]);
    }

    #[test]
    fn source_update_stops_and_restarts_exactly_the_running_tasks() {
        let mut s = change(Address::source("a"), ConfigAction::Update);
        s.impact = Impact::StopUpdateStart { stopped_tasks: vec!["t1".into(), "t2".into()] };
        s.observed = Some(Observed::Source { enable: true });
        // The password is not sent (send_password false): only the TLS contents, always sent, are recorded.
        s.record = Some(RecordPlan::Set { fields: vec!["security".into()], version: None, merge: true, adopt: false });
        if let Some(DesiredPayload::Source(p)) = &mut s.desired {
            p.security = Some(crate::dm::types::Security { ssl_ca_content: "ca".into(), ..Default::default() });
        }
        // t2 is also updated and should end stopped.
        let mut t2 = change(Address::task("t2"), ConfigAction::Update);
        running(&mut t2);
        t2.desired_stage = Some(DesiredStage::Stopped);
        t2.depends_on = vec![Address::source("a")];
        let g = compile(&plan(vec![s, t2]), &CompileOptions::default()).unwrap();
        let l = labels(&g);
        // t1 is stopped only on source a (the one DM looks at); t2, updated itself, is stopped whole.
        assert!(before(&g, "task.t1: wait until Paused on a", "source.a: update source"));
        assert!(before(&g, "task.t2: wait until Paused", "source.a: update source"));
        assert!(before(&g, "source.a: update source", "task.t1: start task on a"));
        assert!(before(&g, "source.a: update source", "task.t2: update task"));
        assert!(before(&g, "source.a: update source", "source.a: record fingerprints in state record"));
        // The password was not sent, so its old fingerprint stays recorded (merge).
        match &g.step(id_of(&g, "source.a: record fingerprints in state record")).unwrap().kind {
            StepKind::RecordState { update: Update::Set { values, merge, version }, .. } => {
                assert_eq!(values.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["security"]);
                assert!(*merge && version.is_none());
            }
            k => panic!("{k:?}"),
        }
        assert!(!l.iter().any(|x| x == "task.t2: start task"), "{l:?}");
        assert!(!l.iter().any(|x| x.contains("enable")), "{l:?}");
        // The source guard is checked before its tasks are stopped.
        let stop = g.step(id_of(&g, "task.t1: stop task on a")).unwrap();
        assert_eq!(stop.guards[0].kind, ResourceKind::Source);
        assert!(matches!(&stop.kind, StepKind::StopTask { sources: Some(s), .. } if s == &["a"]));
        assert!(matches!(
            &g.step(id_of(&g, "task.t2: stop task")).unwrap().kind,
            StepKind::StopTask { sources: None, .. }
        ));
        match &g.step(id_of(&g, "task.t1: start task on a")).unwrap().kind {
            StepKind::StartTask { request, .. } => assert_eq!(request.source_name_list, Some(vec!["a".to_string()])),
            k => panic!("{k:?}"),
        }
        // The PUT keeps the stored password (send_password is false) and the live enable value.
        match &g.step(id_of(&g, "source.a: update source")).unwrap().kind {
            StepKind::UpdateSource { source } => {
                assert!(source.password.is_none());
                assert!(source.enable);
            }
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn disable_with_update_does_not_stop_or_restart_tasks_one_by_one() {
        let mut s = change(Address::source("a"), ConfigAction::Update);
        s.impact = Impact::StopUpdateStart { stopped_tasks: vec!["t1".into()] };
        s.observed = Some(Observed::Source { enable: true });
        s.runtime = vec![RuntimeAction::Disable];
        let g = compile(&plan(vec![s]), &CompileOptions::default()).unwrap();
        assert_steps(
            &g,
            &["source.a: disable source", "source.a: update source"],
            &[("source.a: disable source", "source.a: update source")],
        );
        match &g.step(id_of(&g, "source.a: update source")).unwrap().kind {
            StepKind::UpdateSource { source } => assert!(!source.enable),
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn a_task_moving_away_from_a_source_being_enabled_is_stopped_after_the_enable() {
        // Found by the property test: /enable starts the old task, so its delete must come after a stop that
        // follows the enable, although the new task no longer uses that source.
        let mut s = change(Address::source("a"), ConfigAction::NoOp);
        s.runtime = vec![RuntimeAction::Enable];
        s.observed = Some(Observed::Source { enable: false });
        let mut t = change(Address::task("t"), ConfigAction::Replace);
        t.impact = Impact::replace(false, false);
        t.observed = Some(Observed::Task {
            subtasks: Some(vec![ObservedSubtask {
                source_name: "a".into(),
                stage: Stage::Stopped,
                unit: "Sync".into(),
                error_msg: None,
            }]),
            status_error: None,
        });
        t.live_sources = vec!["a".into()];
        t.depends_on = vec![Address::source("b")];
        let g = compile(&plan(vec![s, t]), &CompileOptions::default()).unwrap();
        assert!(before(&g, "source.a: enable source", "task.t: stop task"));
        assert!(before(&g, "task.t: wait until Paused", "task.t: delete task"));
    }

    #[test]
    fn enables_of_sources_sharing_a_task_run_one_after_the_other() {
        // Found by the property test (flaky under load): t moves from {a, b} to {a} and should run. The enable of a
        // keeps t running, the enable of b stops it again and waits for it to pause; run concurrently, a's /enable
        // could land after b's stop, and b's wait never saw t paused.
        let mut changes = vec![];
        for n in ["a", "b", "c"] {
            let mut s = change(Address::source(n), ConfigAction::NoOp);
            s.runtime = vec![RuntimeAction::Enable];
            s.observed = Some(Observed::Source { enable: false });
            changes.push(s);
        }
        let mut t = change(Address::task("t"), ConfigAction::Replace);
        t.impact = Impact::replace(false, false);
        t.observed = Some(Observed::Task {
            subtasks: Some(
                ["a", "b"]
                    .map(|s| ObservedSubtask {
                        source_name: s.into(),
                        stage: Stage::Stopped,
                        unit: "Sync".into(),
                        error_msg: None,
                    })
                    .to_vec(),
            ),
            status_error: None,
        });
        t.live_sources = vec!["a".into(), "b".into()];
        t.depends_on = vec![Address::source("a")];
        t.desired_stage = Some(DesiredStage::Running);
        changes.push(t);
        let g = compile(&plan(changes), &CompileOptions::default()).unwrap();
        let keep = |label: &str| match &g.step(id_of(&g, label)).unwrap().kind {
            StepKind::EnableSource { keep_running, .. } => keep_running.clone(),
            k => panic!("{k:?}"),
        };
        // The precondition of the race: one enable keeps t, the other stops it.
        assert!(keep("source.a: enable source").contains("t"));
        assert!(!keep("source.b: enable source").contains("t"));
        assert!(before(&g, "source.a: enable source", "source.b: enable source"));
        // Ordering only: a failed enable of a must not skip the enable of b.
        let deps: BTreeMap<StepId, DepKind> = g.deps_of(id_of(&g, "source.b: enable source")).collect();
        assert_eq!(deps[&id_of(&g, "source.a: enable source")], DepKind::After);
        // c shares no task with them: it still runs in parallel.
        assert!(!before(&g, "source.a: enable source", "source.c: enable source"));
        assert!(!before(&g, "source.b: enable source", "source.c: enable source"));
        assert!(!before(&g, "source.c: enable source", "source.a: enable source"));
        // The task's own steps still come after both enables.
        assert!(before(&g, "source.b: enable source", "task.t: stop task"));
        assert!(before(&g, "source.a: enable source", "task.t: start task"));
    }

    #[test]
    fn a_source_put_waits_for_the_stops_of_its_changed_tasks() {
        // The planner did not list the task as running (e.g. a Finished full task), but it may block the PUT.
        let mut s = change(Address::source("a"), ConfigAction::Update);
        s.observed = Some(Observed::Source { enable: true });
        let mut t = change(Address::task("t"), ConfigAction::Delete);
        t.observed = Some(Observed::Task {
            subtasks: Some(vec![ObservedSubtask {
                source_name: "a".into(),
                stage: Stage::Finished,
                unit: "Load".into(),
                error_msg: None,
            }]),
            status_error: None,
        });
        t.depends_on = vec![Address::source("a")];
        let g = compile(&plan(vec![s, t]), &CompileOptions::default()).unwrap();
        assert!(before(&g, "task.t: wait until Paused", "source.a: update source"));
        assert!(before(&g, "task.t: wait until Paused", "task.t: delete task"));
    }

    #[test]
    fn enable_keeps_only_tasks_that_should_run() {
        let mut s = change(Address::source("a"), ConfigAction::NoOp);
        s.runtime = vec![RuntimeAction::Enable];
        s.observed = Some(Observed::Source { enable: false });
        let mut t = change(Address::task("t"), ConfigAction::NoOp);
        t.runtime = vec![RuntimeAction::Start];
        t.desired_stage = Some(DesiredStage::Running);
        t.depends_on = vec![Address::source("a")];
        let g = compile(&plan(vec![s, t]), &CompileOptions::default()).unwrap();
        match &g.step(id_of(&g, "source.a: enable source")).unwrap().kind {
            StepKind::EnableSource { keep_running, .. } => assert_eq!(keep_running, &BTreeSet::from(["t".into()])),
            k => panic!("{k:?}"),
        }
        assert!(before(&g, "source.a: enable source", "task.t: start task"));
    }

    #[test]
    fn replace_is_stop_delete_create_start_with_keep_meta() {
        let mut t = change(Address::task("t"), ConfigAction::Replace);
        running(&mut t);
        t.impact = Impact::replace(false, true);
        let g = compile(&plan(vec![t]), &CompileOptions::default()).unwrap();
        assert_steps(
            &g,
            &[
                "task.t: stop task",
                "task.t: wait until Paused",
                "task.t: read checkpoint",
                "task.t: delete task (keep checkpoints)",
                "task.t: create task",
                "task.t: start task",
                "task.t: wait until Running",
            ],
            &[
                ("task.t: stop task", "task.t: wait until Paused"),
                ("task.t: delete task (keep checkpoints)", "task.t: create task"),
                ("task.t: create task", "task.t: start task"),
                ("task.t: start task", "task.t: wait until Running"),
            ],
        );
        // Read after the pause and before the delete; the start carries safe mode for the overlap.
        assert!(before(&g, "task.t: wait until Paused", "task.t: read checkpoint"));
        assert!(before(&g, "task.t: read checkpoint", "task.t: delete task (keep checkpoints)"));
        match &g.step(id_of(&g, "task.t: start task")).unwrap().kind {
            StepKind::StartTask { request, .. } => assert_eq!(request.safe_mode_time_duration.as_deref(), Some("300s")),
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn a_restart_reads_no_checkpoint_and_starts_without_safe_mode() {
        let mut t = change(Address::task("t"), ConfigAction::Replace);
        running(&mut t);
        t.impact = Impact::replace(true, false);
        let g = compile(&plan(vec![t]), &CompileOptions { allow_restart: true, ..Default::default() }).unwrap();
        assert!(!labels(&g).iter().any(|l| l.contains("read checkpoint")), "{:?}", labels(&g));
        match &g.step(id_of(&g, "task.t: start task")).unwrap().kind {
            StepKind::StartTask { request, .. } => assert!(request.is_empty()),
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn a_rename_creates_the_new_task_before_deleting_the_old_and_starts_it_last() {
        let mut t = change(Address::task("new"), ConfigAction::Replace);
        running(&mut t);
        t.impact = Impact::Replace {
            restarts_migration: false,
            keep_meta: false,
            from_checkpoint: true,
            not_started: false,
            renamed_from: Some("old".into()),
            new_sources: vec![],
        };
        let g = compile(
            &plan(vec![t]),
            &CompileOptions { resume_safe_mode: Some(std::time::Duration::from_millis(1500)), ..Default::default() },
        )
        .unwrap();
        assert!(before(&g, "task.old: wait until Paused", "task.old: read checkpoint"));
        assert!(before(&g, "task.old: read checkpoint", "task.new: create task"));
        assert!(before(&g, "task.new: create task", "task.old: delete task"));
        assert!(before(&g, "task.old: delete task", "task.new: start task"));
        assert!(before(&g, "task.old: delete task", "task.old: forget in state record"));
        match &g.step(id_of(&g, "task.old: read checkpoint")).unwrap().kind {
            StepKind::ReadCheckpoint { name, for_task, set_positions } => {
                assert_eq!((name.as_str(), for_task.as_str(), *set_positions), ("old", "new", true));
            }
            k => panic!("{k:?}"),
        }
        match &g.step(id_of(&g, "task.new: start task")).unwrap().kind {
            StepKind::StartTask { request, .. } => {
                assert_eq!(request.safe_mode_time_duration.as_deref(), Some("1500ms"))
            }
            k => panic!("{k:?}"),
        }
        // The old task is guarded against changes since the plan; the new one must still be absent.
        let stop = g.step(id_of(&g, "task.old: stop task")).unwrap();
        assert_eq!(stop.guards[0].name, "old");
        let create = g.step(id_of(&g, "task.new: create task")).unwrap();
        assert!(create.guards.iter().any(|g| g.name == "new" && g.expect == Expect::Absent));
    }

    #[test]
    fn restart_from_scratch_needs_permission() {
        let mut t = change(Address::task("t"), ConfigAction::Replace);
        t.impact = Impact::replace(true, false);
        let p = plan(vec![t]);
        assert!(matches!(
            compile(&p, &CompileOptions::default()),
            Err(CompileError::RestartNotAllowed { address }) if address == "task.t"
        ));
        assert!(compile(&p, &CompileOptions { allow_restart: true, ..Default::default() }).is_ok());
        let per_task = CompileOptions { allow_restart_for: BTreeSet::from(["t".into()]), ..Default::default() };
        assert!(compile(&p, &per_task).is_ok());
    }

    #[test]
    fn deletes_need_prune_and_run_tasks_first() {
        let s = change(Address::source("a"), ConfigAction::Delete);
        let mut t = change(Address::task("t"), ConfigAction::Delete);
        running(&mut t);
        let mut p = plan(vec![s, t]);
        let g = compile(&p, &CompileOptions::default()).unwrap();
        assert!(before(&g, "task.t: wait until Paused", "task.t: delete task"));
        assert!(before(&g, "task.t: delete task", "source.a: delete source"));
        assert!(before(&g, "source.a: delete source", "source.a: forget in state record"));
        p.prune = false;
        assert!(matches!(compile(&p, &CompileOptions::default()), Err(CompileError::DeleteWithoutPrune { .. })));
    }

    #[test]
    fn missing_payload_is_an_error() {
        let mut t = change(Address::task("t"), ConfigAction::Update);
        t.desired = None;
        assert!(matches!(
            compile(&plan(vec![t]), &CompileOptions::default()),
            Err(CompileError::MissingPayload { .. })
        ));
    }

    #[test]
    fn relay_is_stopped_first_and_started_after_the_tasks_run_again() {
        let mut s = change(Address::source("a"), ConfigAction::Update);
        s.impact = Impact::StopUpdateStart { stopped_tasks: vec!["t".into()] };
        s.observed = Some(Observed::Source { enable: true });
        s.runtime = vec![RuntimeAction::StopRelay, RuntimeAction::StartRelay];
        s.relay = Some(crate::plan::RelayPlan {
            stop: vec!["w1".into(), "w2".into()],
            restarted: vec!["w1".into(), "w2".into()],
            start: vec!["w1".into(), "w2".into()],
            ..Default::default()
        });
        let g = compile(&plan(vec![s]), &CompileOptions { skip_record: true, ..Default::default() }).unwrap();
        assert_steps(
            &g,
            &[
                "source.a: stop relay on w1, w2",
                "task.t: stop task on a",
                "task.t: wait until Paused on a",
                "source.a: update source",
                "task.t: start task on a",
                "task.t: wait until Running on a",
                "source.a: start relay on w1, w2",
            ],
            &[
                // DM refuses to write a source while relay runs (46025) and cannot report task status while relay
                // runs on another worker: relay stops first and starts last.
                ("source.a: stop relay on w1, w2", "task.t: stop task on a"),
                ("task.t: stop task on a", "task.t: wait until Paused on a"),
                ("task.t: wait until Paused on a", "source.a: update source"),
                ("source.a: update source", "task.t: start task on a"),
                ("task.t: start task on a", "task.t: wait until Running on a"),
                ("task.t: wait until Running on a", "source.a: start relay on w1, w2"),
            ],
        );
        // The task is not stopped when relay cannot be (DM would refuse the update anyway).
        let deps: BTreeMap<StepId, DepKind> = g.deps_of(id_of(&g, "task.t: stop task on a")).collect();
        assert_eq!(deps[&id_of(&g, "source.a: stop relay on w1, w2")], DepKind::Requires);
        // Only the relay stop re-reads the source; it comes first.
        assert_eq!(g.step(id_of(&g, "source.a: stop relay on w1, w2")).unwrap().guards.len(), 1);
        assert!(g.step(id_of(&g, "task.t: stop task on a")).unwrap().guards.is_empty());
    }

    #[test]
    fn a_transfer_follows_relay_stops_and_its_resumed_tasks_are_waited_for() {
        let mut s = change(Address::source("a"), ConfigAction::NoOp);
        s.desired = None;
        s.runtime = vec![RuntimeAction::StopRelay, RuntimeAction::Transfer, RuntimeAction::StartRelay];
        s.relay =
            Some(crate::plan::RelayPlan { stop: vec!["w1".into()], start_on_bound_worker: true, ..Default::default() });
        s.binding = Some(crate::plan::BindingPlan {
            from: Some("w1".into()),
            to: Some("w3".into()),
            paused_tasks: vec!["t".into()],
            confirm: true,
            stays_unbound: false,
        });
        // Another source's relay stop frees a worker: transfers come after every relay stop.
        let mut b = change(Address::source("b"), ConfigAction::NoOp);
        b.desired = None;
        b.runtime = vec![RuntimeAction::StopRelay];
        b.relay = Some(crate::plan::RelayPlan { stop: vec!["w3".into()], ..Default::default() });
        let g = compile(&plan(vec![s, b]), &CompileOptions { skip_record: true, ..Default::default() }).unwrap();
        assert!(before(&g, "source.a: stop relay on w1", "source.a: transfer to worker w3"));
        assert!(before(&g, "source.b: stop relay on w3", "source.a: transfer to worker w3"));
        assert!(before(&g, "source.a: transfer to worker w3", "task.t: wait until Running on a"));
        assert!(before(&g, "task.t: wait until Running on a", "source.a: start relay on the bound worker"));
        let deps: BTreeMap<StepId, DepKind> =
            g.deps_of(id_of(&g, "source.a: start relay on the bound worker")).collect();
        assert_eq!(deps[&id_of(&g, "source.a: transfer to worker w3")], DepKind::Requires);
        // A relay-only change counts once.
        assert_eq!(g.steps().filter(|x| x.effect == Effect::Change).count(), 2, "{:?}", labels(&g));
    }

    #[test]
    fn new_sources_dm_binds_anywhere_are_created_after_the_ones_on_a_named_worker() {
        let mut named = change(Address::source("n"), ConfigAction::Create);
        named.binding = Some(crate::plan::BindingPlan { to: Some("w2".into()), ..Default::default() });
        let any = change(Address::source("a"), ConfigAction::Create);
        let mut left = change(Address::source("l"), ConfigAction::Create);
        left.binding = Some(crate::plan::BindingPlan { stays_unbound: true, ..Default::default() });
        let g = compile(&plan(vec![any, left, named]), &CompileOptions { skip_record: true, ..Default::default() })
            .unwrap();
        assert!(before(&g, "source.n: create source on worker w2", "source.a: create source"));
        assert!(before(&g, "source.a: create source", "source.l: create source"));
        match &g.step(id_of(&g, "source.n: create source on worker w2")).unwrap().kind {
            StepKind::CreateSource { worker_name, .. } => assert_eq!(worker_name.as_deref(), Some("w2")),
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn stage_drift_is_start_or_stop() {
        let mut a = change(Address::task("a"), ConfigAction::NoOp);
        a.runtime = vec![RuntimeAction::Start];
        let mut b = change(Address::task("b"), ConfigAction::NoOp);
        b.runtime = vec![RuntimeAction::Stop];
        let g = compile(&plan(vec![a, b]), &CompileOptions::default()).unwrap();
        assert_steps(
            &g,
            &["task.a: start task", "task.a: wait until Running", "task.b: stop task", "task.b: wait until Paused"],
            &[("task.a: start task", "task.a: wait until Running"), ("task.b: stop task", "task.b: wait until Paused")],
        );
        assert!(g.steps().filter(|s| s.effect == Effect::Change).count() == 2);
    }
}
