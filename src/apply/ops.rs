//! Running one step against DM-master: the re-read guard, retries, and waiting for asynchronous stage changes.
//!
//! Retry rules (docs/dm-behaviour.md §2, §14):
//! - reads are retried by the client; mutations are retried here and only here (`ApplyOptions::retry`, sent at
//!   most `max_attempts` times; the client under the executor sends each mutation once, see `crate::dm::retry`).
//!   Mutations that are safe to repeat (PUT, start, stop, enable, disable) are retried on any transient error:
//!   connection failures, timeouts, 5xx and DM's per-task latch (46024, "in use by other client");
//! - a create or delete whose answer was lost (`DmError::is_ambiguous`) is settled by re-reading: the resource
//!   exists (create) or is gone (delete) → it landed; a later "already exists" / "not exists" answer after such a
//!   lost answer also means our earlier attempt landed.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::ApplyOptions;
use super::graph::{Expect, Guard, RelayTarget, ResourceKind, Step, StepKind, WaitFor};
use super::report::{Event, Failure, StepInfo};
use super::scheduler::StepResult;
use crate::dm::error::codes;
use crate::dm::retry::Backoff;
use crate::dm::types::{DisableRelayRequest, EnableRelayRequest, Source, Stage, StopTaskRequest, SubTaskStatus, Task};
use crate::dm::{DmClient, DmError};
use crate::state::store::{self, Update};

/// Computes the plan's normalized digest of a live resource, so a re-read can be compared with what the plan saw.
/// Implemented over the plan module's digest functions.
pub trait LiveDigest: Send + Sync {
    fn source(&self, source: &Source) -> String;
    fn task(&self, task: &Task) -> String;
}

/// Shared by every step of one apply.
pub(crate) struct Ctx {
    pub client: DmClient,
    pub opts: ApplyOptions,
    pub digests: Option<Arc<dyn LiveDigest>>,
    pub events: UnboundedSender<Event>,
    /// Error messages a task showed right before we started it: seeing one of them again right after the start is
    /// the stale status of before, not a new failure (until `error_grace` has passed).
    pub pre_start_errors: Mutex<HashMap<String, BTreeSet<String>>>,
    /// The state record is read-modify-write: one writer at a time.
    pub record_lock: tokio::sync::Mutex<()>,
    /// `--deadline`: waits end here at the latest.
    pub deadline: Option<tokio::time::Instant>,
    /// Status polls of waits in flight at most (waits do not take a scheduler slot): `--parallelism`.
    pub poll_permits: tokio::sync::Semaphore,
    /// Tasks created by this apply (they have no status from before to remember when started).
    pub created_tasks: Mutex<BTreeSet<String>>,
    /// Record changes waiting for the next write (see `record_state`).
    pub record_queue: Mutex<Vec<PendingRecord>>,
    /// Checkpoints read for tasks that replace a stopped one (by the replacing task's name).
    pub resume: Mutex<HashMap<String, ResumePoint>>,
}

/// Where a stopped task had got to, read for the task that replaces it (a replace or a rename).
#[derive(Debug, Clone)]
pub(crate) struct ResumePoint {
    /// The task the checkpoint was read from.
    pub from: String,
    /// Per source: binlog name, position and GTID set (`""` without GTID).
    pub positions: std::collections::BTreeMap<String, (String, i64, String)>,
    /// The create of the new task puts these positions in its `source_conf`.
    pub set_positions: bool,
}

impl ResumePoint {
    fn describe(&self) -> String {
        self.positions
            .iter()
            .map(
                |(s, (n, p, g))| {
                    if g.is_empty() { format!("{s} ({n}, {p})") } else { format!("{s} ({n}, {p}) gtid {g}") }
                },
            )
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Ctx {
    fn progress(&self, info: &StepInfo, message: impl Into<String>) {
        let _ = self.events.send(Event::Progress { step: info.clone(), message: message.into() });
    }

    /// Retry `f` on transient errors (safe only for operations that may be repeated), as `opts.retry` says.
    async fn retrying<T, F, Fut>(&self, info: &StepInfo, mut f: F) -> Result<T, DmError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, DmError>>,
    {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let Some(delay) = self.opts.retry.next_delay(attempts).filter(|_| e.is_transient()) else {
                        return Err(e);
                    };
                    self.progress(info, format!("retrying in {} ms: {e}", delay.as_millis()));
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// The schedule of status polls while waiting for a stage (polling, not retrying: no attempt limit).
    fn poll_backoff(&self) -> Backoff {
        Backoff { base: self.opts.poll_initial, max: self.opts.poll_max }
    }
}

pub(crate) async fn run_step(ctx: Arc<Ctx>, step: Step) -> StepResult {
    let info = StepInfo::of(&step);
    for g in &step.guards {
        if settled_by_the_create(&step.kind, g) {
            continue;
        }
        check_guard(&ctx, g).await?;
    }
    let c = &ctx.client;
    match &step.kind {
        StepKind::CreateSource { source, worker_name } => {
            let name = source.source_name.clone();
            create_or_delete(
                &ctx,
                &info,
                Op::Create,
                || c.create_source(source, worker_name.as_deref()),
                || async { Ok(c.get_source(&name, false).await?.is_some()) },
                codes::SOURCE_EXISTS,
            )
            .await
        }
        StepKind::UpdateSource { source } => {
            ctx.retrying(&info, || c.update_source(source)).await?;
            Ok(None)
        }
        StepKind::EnableSource { name, keep_running } => enable_source(&ctx, &info, name, keep_running).await,
        StepKind::DisableSource { name } => disable_source(&ctx, &info, name).await,
        StepKind::DeleteSource { name, force } => {
            create_or_delete(
                &ctx,
                &info,
                Op::Delete,
                || c.delete_source(name, *force),
                || async { Ok(c.get_source(name, false).await?.is_some()) },
                codes::SOURCE_NOT_EXIST,
            )
            .await
        }
        StepKind::CreateTask { task } => {
            let resume = ctx.resume.lock().unwrap_or_else(|p| p.into_inner()).get(&task.name).cloned();
            let task = &resume_at(task, resume.as_ref());
            let check = Arc::new(Mutex::new(None::<String>));
            let check2 = check.clone();
            let note = create_or_delete(
                &ctx,
                &info,
                Op::Create,
                || {
                    let check = check2.clone();
                    async move {
                        let r = c.create_task(task).await?;
                        if let Ok(mut g) = check.lock() {
                            *g = Some(r.check_result);
                        }
                        Ok(())
                    }
                },
                || async { Ok(c.get_task(&task.name, false).await?.is_some()) },
                codes::TASK_EXISTS,
            )
            .await
            .map_err(|f| match &resume {
                Some(r) => where_the_task_is(f, r, &task.name),
                None => f,
            })?;
            let check = check.lock().ok().and_then(|g| g.clone());
            ctx.created_tasks.lock().unwrap_or_else(|p| p.into_inner()).insert(task.name.clone());
            Ok(note.or_else(|| precheck_note(check.as_deref())))
        }
        StepKind::UpdateTask { task } => {
            let r = ctx.retrying(&info, || c.update_task(task)).await?;
            Ok(precheck_note(Some(&r.check_result)))
        }
        StepKind::StartTask { name, request } => {
            // Remember the errors shown before the start, so the wait does not mistake them for new ones. A task
            // created by this apply has shown none: no need to ask (one request less per new task).
            let created = ctx.created_tasks.lock().unwrap_or_else(|p| p.into_inner()).contains(name);
            if !created && let Ok(status) = c.task_status(name).await {
                let errs = status.iter().filter_map(|s| s.error_msg.clone()).filter(|m| !m.is_empty()).collect();
                if let Ok(mut m) = ctx.pre_start_errors.lock() {
                    m.insert(name.clone(), errs);
                }
            }
            ctx.retrying(&info, || c.start_task(name, request)).await?;
            Ok(None)
        }
        StepKind::StopTask { name, sources } => {
            let req = StopTaskRequest { source_name_list: sources.clone(), ..StopTaskRequest::default() };
            ctx.retrying(&info, || c.stop_task(name, &req)).await?;
            Ok(None)
        }
        StepKind::WaitTask { name, until, sources } => wait_task(&ctx, &info, name, *until, sources.as_deref()).await,
        StepKind::ReadCheckpoint { name, for_task, set_positions } => {
            read_checkpoint(&ctx, name, for_task, *set_positions).await
        }
        StepKind::DeleteTask { name, force, keep_meta } => {
            let kept = Arc::new(Mutex::new(false));
            let kept2 = kept.clone();
            let note = create_or_delete(
                &ctx,
                &info,
                Op::Delete,
                || {
                    let kept = kept2.clone();
                    async move {
                        let k = c.delete_task(name, *force, *keep_meta).await?;
                        if let Ok(mut g) = kept.lock() {
                            *g = k;
                        }
                        Ok(())
                    }
                },
                || async { Ok(c.get_task(name, false).await?.is_some()) },
                codes::TASK_NOT_EXIST,
            )
            .await?;
            let kept = kept.lock().map(|g| *g).unwrap_or(false);
            Ok(note.or_else(|| match (keep_meta, kept) {
                (true, true) => Some("checkpoints kept (keep_meta)".into()),
                (true, false) => Some("checkpoints dropped: this DM-master does not support keep_meta".into()),
                _ => None,
            }))
        }
        StepKind::RecordState { address, update } => record_state(&ctx, &info, address, update).await,
        StepKind::StopRelay { name, target } => stop_relay(&ctx, &info, name, target).await,
        StepKind::StartRelay { name, target } => start_relay(&ctx, &info, name, target).await,
        StepKind::TransferSource { name, worker } => {
            ctx.retrying(&info, || c.transfer_source(name, worker)).await.map_err(|e| {
                let f = Failure::from(&e);
                if e.has_code(TRANSFER_NOT_SYNC) {
                    f.prefixed(&format!(
                        "DM moves source {name} only while every task running on it is in the Sync unit; apply                          again once they are"
                    ))
                } else {
                    f
                }
            })?;
            Ok(None)
        }
    }
}

/// DM's answer to a transfer while a running task on the source is not in the Sync unit (docs/dm-behaviour.md R3.12).
const TRANSFER_NOT_SYNC: i64 = 46019;

/// `/relay/disable` naming the workers (or `worker_name_list: []` for relay started by the config flag). The body
/// has no field DM fills in by default, so sending one is safe on every version (docs/dm-behaviour.md R4.6).
async fn stop_relay(ctx: &Ctx, info: &StepInfo, name: &str, target: &RelayTarget) -> StepResult {
    let c = &ctx.client;
    let req = match target {
        RelayTarget::Workers(w) => Some(DisableRelayRequest { worker_name_list: Some(w.clone()) }),
        RelayTarget::ConfigFlag => Some(DisableRelayRequest { worker_name_list: Some(vec![]) }),
        RelayTarget::BoundWorker => None,
    };
    ctx.retrying(info, || c.disable_relay(name, req.as_ref())).await?;
    Ok(None)
}

/// `/relay/enable`, then wait until the workers report relay running. On the bound worker no body is sent; naming
/// workers needs a body, into which DM v8.5.4+ writes `relay_dir: ./relay_log` when it is absent, rewriting the
/// source (refused while tasks run, 46025): so the body carries the source's own `relay_dir`, read right before
/// (docs/dm-behaviour.md R4.1, R4.2).
async fn start_relay(ctx: &Ctx, info: &StepInfo, name: &str, target: &RelayTarget) -> StepResult {
    let c = &ctx.client;
    let req = match target {
        RelayTarget::Workers(w) => {
            let Some(src) = c.get_source(name, false).await? else {
                return Err(Failure::new(format!("source {name} does not exist in DM")));
            };
            let relay_dir = src.relay_config.and_then(|r| r.relay_dir).filter(|d| !d.is_empty());
            Some(EnableRelayRequest { worker_name_list: Some(w.clone()), relay_dir, ..Default::default() })
        }
        RelayTarget::BoundWorker | RelayTarget::ConfigFlag => None,
    };
    ctx.retrying(info, || c.enable_relay(name, req.as_ref())).await?;
    wait_relay(ctx, info, name, target).await
}

/// Poll the source's status until each relay worker shows relay Running. A relay that reports an error fails the
/// step with DM's message.
async fn wait_relay(ctx: &Ctx, info: &StepInfo, name: &str, target: &RelayTarget) -> StepResult {
    let c = &ctx.client;
    let start = Instant::now();
    let backoff = ctx.poll_backoff();
    let mut polls = 0u32;
    let mut last = String::from("not polled yet");
    let cancel = ctx.opts.cancel.clone();
    let mut workers: Option<Vec<String>> = match target {
        RelayTarget::Workers(w) => Some(w.clone()),
        _ => None,
    };
    loop {
        if workers.is_none() {
            // The bound worker is the one to watch.
            match c.list_workers().await {
                Ok(list) => match list.iter().find(|w| w.bound_stage == "bound" && w.bound_source_name == name) {
                    Some(w) => workers = Some(vec![w.name.clone()]),
                    None => last = "the source is not bound to any worker".into(),
                },
                Err(e) => last = format!("workers not readable: {e}"),
            }
        }
        if let Some(ws) = &workers {
            match c.source_status(name).await {
                Ok(list) => {
                    let mut pending = vec![];
                    for w in ws {
                        let entry = list.iter().find(|s| &s.worker_name == w);
                        let err = entry.and_then(|s| s.error_msg.as_deref()).map(str::trim).filter(|m| !m.is_empty());
                        match entry.and_then(|s| s.relay_status.as_ref()) {
                            Some(r) if r.stage == Stage::Running && err.is_none() => {}
                            Some(r) if r.stage == Stage::Paused => {
                                return Err(Failure::new(format!(
                                    "relay of source {name} on worker {w} paused with an error: {}",
                                    err.unwrap_or("(DM gave no message)")
                                ))
                                .with_code(err.and_then(dm_code_in)));
                            }
                            Some(r) => pending.push(format!("{w} {}", r.stage)),
                            None => pending.push(format!("{w} not relaying yet")),
                        }
                    }
                    if pending.is_empty() {
                        return Ok(None);
                    }
                    last = pending.join(", ");
                }
                Err(e) => last = format!("source status not readable: {e}"),
            }
        }
        if start.elapsed() >= ctx.opts.wait_timeout {
            return Err(Failure::new(format!(
                "relay of source {name} did not report running within {} (last observed: {last}); the start was sent                  to DM. Check it with `dmctl query-status -s {name}`",
                human_duration(ctx.opts.wait_timeout)
            )));
        }
        if ctx.deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            return Err(Failure::new(format!(
                "relay of source {name} did not report running before the --deadline (last observed: {last}); the                  start was sent to DM"
            )));
        }
        ctx.progress(info, format!("waiting for relay: {last}"));
        tokio::select! {
            () = tokio::time::sleep(backoff.delay(polls)) => {}
            () = cancel.cancelled() => {
                return Err(Failure::interrupted(format!(
                    "interrupted while waiting for relay of source {name}: the start was sent to DM, which may still                      complete it (last observed: {last})"
                )));
            }
        }
        polls = polls.saturating_add(1);
    }
}

/// The task to create, at the checkpoint read for it when there is one (sources without one keep the configured
/// position: they are new to the task).
fn resume_at(task: &Task, resume: Option<&ResumePoint>) -> Task {
    let mut t = task.clone();
    if let Some(r) = resume.filter(|r| r.set_positions) {
        for sc in &mut t.source_config.source_conf {
            if let Some((n, p, g)) = r.positions.get(&sc.source_name) {
                sc.binlog_name = Some(n.clone());
                sc.binlog_pos = Some(*p);
                sc.binlog_gtid = (!g.is_empty()).then(|| g.clone());
            }
        }
    }
    t
}

/// A create at a checkpoint failed: say where the old task is, and the positions to recreate it by hand.
fn where_the_task_is(mut f: Failure, r: &ResumePoint, new: &str) -> Failure {
    let at = r.describe();
    let context = if r.from == new {
        format!(
            "task {new} was deleted for its replacement and is not re-created; it had reached {at}. To re-create it \
             by hand, create it with these positions in source_config.source_conf and start it with \
             safe_mode_time_duration; or fix the cause and run apply again (it then creates the task from the \
             configuration: put these positions there first)"
        )
    } else {
        format!(
            "task {} is stopped and still exists (it was not deleted); it had reached {at}. Start it again to go on \
             replicating under its old name (`dmctl resume-task {}`), or fix the cause and run apply again",
            r.from, r.from
        )
    };
    f.message = format!("{}. {context}", f.message);
    f
}

/// Read the checkpoint of a stopped task, per source, for the task that replaces it. Nothing is changed: when a
/// subtask has no checkpoint to resume from, the step fails and the delete that depends on it does not happen.
async fn read_checkpoint(ctx: &Ctx, name: &str, for_task: &str, set_positions: bool) -> StepResult {
    let c = &ctx.client;
    let not_deleted = format!("task {name} is not deleted, and stays stopped");
    let status = c.task_status(name).await.map_err(|e| {
        Failure::from(&e).prefixed(&format!("cannot read the checkpoint of task {name} ({not_deleted})"))
    })?;
    let task = c
        .get_task(name, false)
        .await
        .map_err(|e| Failure::from(&e).prefixed(&format!("cannot read task {name} ({not_deleted})")))?;
    let stored = |source: &str| {
        task.as_ref().and_then(|t| t.source_config.source_conf.iter().find(|s| s.source_name == source)).and_then(|s| {
            let n = s.binlog_name.clone().filter(|n| !n.is_empty())?;
            Some((n, s.binlog_pos.unwrap_or(4), s.binlog_gtid.clone().unwrap_or_default()))
        })
    };
    let mut positions = std::collections::BTreeMap::new();
    let mut missing = vec![];
    for s in &status {
        // A subtask still as created never ran: it is where its configured position says.
        if s.stage == Stage::Stopped {
            if let Some(p) = stored(&s.source_name) {
                positions.insert(s.source_name.clone(), p);
            }
            continue;
        }
        let read = (s.unit == crate::dm::types::Unit::Sync).then_some(s.sync_status.as_ref()).flatten().and_then(|x| {
            crate::plan::safe::parse_syncer_binlog(&x.syncer_binlog)
                .map(|(n, p)| (n, p, x.syncer_binlog_gtid.trim().to_string()))
        });
        match read {
            Some(p) => {
                positions.insert(s.source_name.clone(), p);
            }
            None => missing.push(format!("{} (unit {}, stage {})", s.source_name, s.unit, s.stage)),
        }
    }
    if status.is_empty() || !missing.is_empty() {
        return Err(Failure::new(format!(
            "task {name} has no checkpoint to resume from on {}: DM reports one only in the Sync unit; {not_deleted}. \
             Start it again, or run apply again once it is in Sync",
            if missing.is_empty() { "any source".to_string() } else { missing.join(", ") }
        )));
    }
    let point = ResumePoint { from: name.to_string(), positions, set_positions };
    let note = format!("checkpoint of task {name}: {}", point.describe());
    ctx.resume.lock().unwrap_or_else(|p| p.into_inner()).insert(for_task.to_string(), point);
    Ok(Some(note))
}

/// `/enable`, then stop again every task of the source that must not run (DM's enable starts all of them).
async fn enable_source(ctx: &Ctx, info: &StepInfo, name: &str, keep_running: &BTreeSet<String>) -> StepResult {
    let c = &ctx.client;
    // Which tasks are on the source right before the enable (the list carries every task's source set).
    let tasks = c.list_tasks(false, None, &[]).await?;
    let on_source: Vec<String> = tasks
        .iter()
        .filter(|t| t.source_config.source_conf.iter().any(|s| s.source_name == name))
        .map(|t| t.name.clone())
        .filter(|t| !keep_running.contains(t))
        .collect();
    ctx.retrying(info, || c.enable_source(name)).await?;
    if on_source.is_empty() {
        return Ok(None);
    }
    let req = StopTaskRequest::default();
    for t in &on_source {
        ctx.progress(info, format!("stopping task.{t} again: DM's /enable started it, but it must stay stopped"));
        ctx.retrying(info, || c.stop_task(t, &req)).await.map_err(|e| {
            Failure::from(&e).prefixed(&format!(
                "source enabled, but task.{t}, which DM's /enable started, could not be stopped again"
            ))
        })?;
    }
    for t in &on_source {
        wait_task(ctx, info, t, WaitFor::Paused, None).await?;
    }
    let list = on_source.iter().map(|t| format!("task.{t}")).collect::<Vec<_>>().join(", ");
    Ok(Some(format!("stopped again {list}: DM's /enable starts every task of the source")))
}

/// `/disable`. DM first sets every task of a bound source to stopped and only then writes `enable=false`, so a
/// refused disable (46025) has already stopped the tasks (docs/dm-behaviour.md R3.11): the failure says which.
async fn disable_source(ctx: &Ctx, info: &StepInfo, name: &str) -> StepResult {
    let c = &ctx.client;
    let Err(e) = ctx.retrying(info, || c.disable_source(name)).await else { return Ok(None) };
    if !e.has_code(codes::SOURCE_CFG_UPDATE) {
        return Err(Failure::from(&e));
    }
    // Which tasks of the source now are expected stopped: DM does not say, so read them.
    let stopped = match c.list_tasks(false, None, &[]).await {
        Ok(tasks) => {
            let names: Vec<String> = tasks
                .iter()
                .filter(|t| t.source_config.source_conf.iter().any(|s| s.source_name == name))
                .map(|t| format!("task.{}", t.name))
                .collect();
            if names.is_empty() {
                "no task is on the source".to_string()
            } else {
                format!(
                    "DM stops every task of a bound source before it refuses, so these are now stopped: {}",
                    names.join(", ")
                )
            }
        }
        Err(le) => format!("DM may have stopped every task of the source before refusing (could not list them: {le})"),
    };
    Err(Failure::from(&e).prefixed(&format!("source {name} stays enabled; {stopped}")))
}

/// One record step's change, queued for the next write of the state record.
pub(crate) struct PendingRecord {
    address: String,
    update: Update,
    done: tokio::sync::oneshot::Sender<StepResult>,
}

/// Read-modify-write of the state record, one writer at a time, as a group commit: whoever holds the lock writes
/// every change queued so far in one read and one write. A step returns only once its own change was written (or
/// failed), but N record steps cost a few round trips instead of 2N serialized ones (docs/performance.md).
async fn record_state(ctx: &Ctx, info: &StepInfo, address: &str, update: &Update) -> StepResult {
    let (done, mut result) = tokio::sync::oneshot::channel();
    let pending = PendingRecord { address: address.to_string(), update: update.clone(), done };
    ctx.record_queue.lock().unwrap_or_else(|p| p.into_inner()).push(pending);
    let _lock = ctx.record_lock.lock().await;
    // An earlier holder of the lock may have written our change already (it answers before unlocking).
    if let Ok(r) = result.try_recv() {
        return r;
    }
    // Record steps become ready together (after every change they record) and the scheduler starts them one by
    // one: let those it is still starting join this batch, or the first write carries only a few and each later
    // one costs another read and write of the whole record. Bounded, and it stops as soon as nobody joined.
    for _ in 0..RECORD_GATHER_ROUNDS {
        let queued = ctx.record_queue.lock().unwrap_or_else(|p| p.into_inner()).len();
        tokio::task::yield_now().await;
        if ctx.record_queue.lock().unwrap_or_else(|p| p.into_inner()).len() == queued {
            break;
        }
    }
    let batch = std::mem::take(&mut *ctx.record_queue.lock().unwrap_or_else(|p| p.into_inner()));
    let written = write_records(ctx, info, &batch).await;
    for p in batch {
        let _ = p.done.send(written.clone().map(|()| None));
    }
    result.await.unwrap_or_else(|_| Err(Failure::new("internal error: the state record write was lost")))
}

/// How many times a record writer yields while record steps keep joining its batch.
const RECORD_GATHER_ROUNDS: usize = 64;

/// One read-modify-write of the state record for `batch`. Only the batch's entries change, so entries another
/// apply wrote meanwhile are kept.
async fn write_records(ctx: &Ctx, info: &StepInfo, batch: &[PendingRecord]) -> Result<(), Failure> {
    let c = &ctx.client;
    let Some(home) = ctx.opts.state.home.clone() else {
        return Err(Failure::new("internal error: no target to keep dm-apply's state record with"));
    };
    let ours = ctx.opts.state.lease_id.as_deref();
    // The lease is read beside the record, not after it: no extra round trip.
    let (view, lease) = tokio::join!(store::read(c), async {
        match ours {
            Some(_) => Some(crate::state::lease::read(c).await),
            None => None,
        }
    });
    if let crate::state::StateView::Unreadable(e) = &view {
        return Err(Failure::new(format!("cannot read dm-apply's state record: {e}")));
    }
    let (mut record, exists) = store::base(&view).map_err(Failure::new)?;
    if let (Some(id), Some(lease)) = (ours, lease) {
        let lease = lease.map_err(|e| Failure::new(format!("cannot read the apply lease: {e}")))?;
        crate::state::lease::still_ours(&lease, &record, id).map_err(Failure::new)?;
    }
    let updates: Vec<(String, Update)> = batch.iter().map(|p| (p.address.clone(), p.update.clone())).collect();
    let before = record.clone();
    let key = ctx.opts.state.key.clone();
    // Argon2id takes tens of milliseconds per value: off the async threads.
    let record = tokio::task::spawn_blocking(move || {
        store::merge(&mut record, &updates, key.as_ref());
        record
    })
    .await
    .map_err(|e| Failure::new(format!("internal error: {e}")))?;
    if exists && record == before {
        return Ok(());
    }
    ctx.retrying(info, || store::write(c, &record, &home, exists)).await?;
    Ok(())
}

/// DM's pre-check answer is `"pre-check is passed. "` or warnings worth showing.
fn precheck_note(check: Option<&str>) -> Option<String> {
    let c = check?.trim();
    if c.is_empty() || c.starts_with("pre-check is passed") { None } else { Some(format!("DM pre-check: {c}")) }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Create,
    Delete,
}

/// A create or delete, which must not be blindly repeated: settle lost answers by re-reading.
/// `settled_code` is DM's answer meaning "already in the end state" (exists for a create, not exists for a
/// delete); it counts as success only after one of our attempts may have landed.
async fn create_or_delete<T, F, Fut, R, RFut>(
    ctx: &Ctx,
    info: &StepInfo,
    op: Op,
    mut attempt_op: F,
    mut exists: R,
    settled_code: i64,
) -> Result<Option<String>, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, DmError>>,
    R: FnMut() -> RFut,
    RFut: Future<Output = Result<bool, DmError>>,
{
    let mut attempts = 0;
    let mut maybe_landed = false;
    loop {
        attempts += 1;
        let err = match attempt_op().await {
            Ok(_) => return Ok(None),
            Err(e) => e,
        };
        if err.has_code(settled_code) {
            if maybe_landed {
                return Ok(Some("confirmed by re-reading after a lost answer".into()));
            }
            if op == Op::Create {
                // The guard of a create is DM's own refusal (`settled_by_the_create`).
                return Err(Failure::from(&err).prefixed(&format!(
                    "{} was created outside this apply since the plan was made; nothing was changed on it. Re-run plan",
                    info.resource
                )));
            }
        }
        if err.is_ambiguous() {
            maybe_landed = true;
            ctx.progress(info, format!("answer lost ({err}); re-reading to find out whether it happened"));
            let present = exists().await.map_err(|e| {
                Failure::new(format!("{err}; and re-reading failed, so it is unknown whether it happened: {e}"))
            })?;
            if present == (op == Op::Create) {
                return Ok(Some("confirmed by re-reading after a lost answer".into()));
            }
        }
        let Some(delay) = ctx.opts.retry.next_delay(attempts).filter(|_| err.is_transient()) else {
            return Err(Failure::from(&err));
        };
        ctx.progress(info, format!("retrying in {} ms: {err}", delay.as_millis()));
        tokio::time::sleep(delay).await;
    }
}

/// Whether `g` only says "the resource this step creates is still absent". DM refuses to create a source or task
/// that exists ("already exists", changing nothing: docs/dm-behaviour.md §3, §5), so the create checks that itself
/// and the re-read would be one request per create for nothing; `create_or_delete` turns DM's refusal into the
/// guard's message.
fn settled_by_the_create(kind: &StepKind, g: &Guard) -> bool {
    let created = match kind {
        StepKind::CreateSource { source, .. } => (ResourceKind::Source, source.source_name.as_str()),
        StepKind::CreateTask { task } => (ResourceKind::Task, task.name.as_str()),
        _ => return false,
    };
    g.expect == Expect::Absent && g.kind == created.0 && g.name == created.1
}

/// Re-read the resource and compare it with what the plan saw.
async fn check_guard(ctx: &Ctx, g: &Guard) -> Result<(), Failure> {
    let addr = g.kind.address(&g.name);
    let current: Option<Option<String>> = match g.kind {
        ResourceKind::Source => ctx
            .client
            .get_source(&g.name, false)
            .await
            .map_err(|e| Failure::from(&e))?
            .map(|s| ctx.digests.as_ref().map(|d| d.source(&s))),
        ResourceKind::Task => ctx
            .client
            .get_task(&g.name, false)
            .await
            .map_err(|e| Failure::from(&e))?
            .map(|t| ctx.digests.as_ref().map(|d| d.task(&t))),
    };
    let what = match (&g.expect, current) {
        (Expect::Absent, None) => return Ok(()),
        (Expect::Absent, Some(_)) => "created",
        (Expect::Digest(_) | Expect::Exists, None) => "deleted",
        (Expect::Digest(want), Some(Some(got))) if *want != got => "changed",
        (Expect::Digest(_) | Expect::Exists, Some(_)) => return Ok(()),
    };
    Err(Failure::new(format!(
        "{addr} was {what} outside this apply since the plan was made; nothing was changed on it. Re-run plan"
    )))
}

/// Poll the task's status until every subtask reached `until`, with backoff (so polling does not dominate), until
/// `wait_timeout`. A subtask paused with an error fails the wait with DM's own message. The interruption
/// (SIGINT/SIGTERM/SIGHUP) ends the wait at once: the start or stop was sent, only its outcome is not known.
async fn wait_task(ctx: &Ctx, info: &StepInfo, name: &str, until: WaitFor, sources: Option<&[String]>) -> StepResult {
    let start = Instant::now();
    let pre_errors = ctx.pre_start_errors.lock().ok().and_then(|m| m.get(name).cloned()).unwrap_or_default();
    let backoff = ctx.poll_backoff();
    let mut polls = 0u32;
    let mut last = String::from("not polled yet");
    let mut unavailable = 0u32;
    let cancel = ctx.opts.cancel.clone();
    let interrupted = |last: &str| {
        let sent = match until {
            WaitFor::Running => "start",
            WaitFor::Paused => "stop",
        };
        Failure::interrupted(format!(
            "interrupted while waiting for {until}: the {sent} was sent to DM, which may still complete it (last \
             observed: {last})"
        ))
    };
    loop {
        if cancel.is_cancelled() {
            return Err(interrupted(&last));
        }
        tokio::select! {
            () = tokio::time::sleep(backoff.delay(polls)) => {}
            () = cancel.cancelled() => return Err(interrupted(&last)),
        }
        polls = polls.saturating_add(1);
        let poll = async {
            let _permit = ctx.poll_permits.acquire().await;
            ctx.client.task_status(name).await
        };
        // A status read is safe to drop half-way.
        let polled = tokio::select! {
            r = poll => r,
            () = cancel.cancelled() => return Err(interrupted(&last)),
        };
        match polled {
            Ok(mut status) => {
                // Limited to some sources: the others are not this wait's business (they may run, or not).
                if let Some(on) = sources {
                    status.retain(|s| on.contains(&s.source_name));
                }
                last = describe_status(&status);
                match judge(&status, until) {
                    Judged::Reached => return Ok(None),
                    Judged::Error { source, message } => {
                        let stale = pre_errors.contains(&message) && start.elapsed() < ctx.opts.error_grace;
                        if !stale {
                            return Err(Failure::new(format!(
                                "task {name} paused with an error on source {source} instead of reaching {until}: \
                                 {message}"
                            ))
                            .with_code(dm_code_in(&message)));
                        }
                    }
                    Judged::NotYet => {}
                }
            }
            Err(e) if e.has_code(codes::TASK_NOT_EXIST) => {
                return Err(Failure::from(&e));
            }
            // DM cannot report this task's status at all while relay runs on a worker other than the bound one
            // (docs/dm-behaviour.md R8.12): that does not pass, so waiting for it would only burn --wait-timeout.
            Err(e) if is_status_unavailable(&e) => {
                unavailable += 1;
                if unavailable >= STATUS_UNAVAILABLE_LIMIT {
                    return Err(Failure::new(format!(
                        "status of task {name} is unavailable, so dm-apply cannot confirm it reached {until}: {e}. \
                         DM answers this while relay runs for one of the task's sources on a worker other than the \
                         source's bound worker; the {} was sent. Check the task with `dmctl query-status {name}`",
                        if until == WaitFor::Running { "start" } else { "stop" }
                    ))
                    .with_code(e.code()));
                }
                last = format!("status unavailable: {e}");
            }
            // One failing worker fails the whole status call or a worker is briefly unbound: poll on.
            Err(e) => {
                unavailable = 0;
                last = format!("status not readable: {e}");
            }
        }
        if start.elapsed() >= ctx.opts.wait_timeout {
            return Err(Failure::new(format!(
                "task {name} did not reach {until} within {} (last observed: {last}); raise --wait-timeout or \
                 check the task with `dmctl query-status {name}`",
                human_duration(ctx.opts.wait_timeout)
            )));
        }
        if ctx.deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            return Err(Failure::new(format!(
                "task {name} did not reach {until} before the --deadline (last observed: {last}); the start or stop \
                 was sent, run apply again to carry on"
            )));
        }
        ctx.progress(info, format!("waiting for {until}: {last}"));
    }
}

/// Consecutive "status unavailable" answers after which a wait gives up (they do not pass by themselves).
const STATUS_UNAVAILABLE_LIMIT: u32 = 3;

/// DM's answer when a worker it asks has no subtask to report (relay on another worker, R8.12).
fn is_status_unavailable(e: &DmError) -> bool {
    e.has_code(codes::OPENAPI_COMMON) && e.to_string().contains("query-status response is nil")
}

enum Judged {
    Reached,
    NotYet,
    Error { source: String, message: String },
}

fn judge(status: &[SubTaskStatus], until: WaitFor) -> Judged {
    if let Some(s) = status.iter().find(|s| {
        until == WaitFor::Running && s.stage == Stage::Paused && s.error_msg.as_deref().is_some_and(|m| !m.is_empty())
    }) {
        return Judged::Error { source: s.source_name.clone(), message: s.error_msg.clone().unwrap_or_default() };
    }
    let ok = |s: &SubTaskStatus| match until {
        WaitFor::Running => matches!(s.stage, Stage::Running | Stage::Finished),
        // A subtask whose worker is gone (unbound source 38029, unreachable worker 38008) runs nowhere: DM has
        // recorded the stop and applies it when a worker takes the source again.
        WaitFor::Paused => {
            matches!(s.stage, Stage::Paused | Stage::Stopped | Stage::Finished)
                || (s.stage == Stage::Empty
                    && s.error_msg.as_deref().is_some_and(|m| m.contains("code=38029") || m.contains("code=38008")))
        }
    };
    if !status.is_empty() && status.iter().all(ok) { Judged::Reached } else { Judged::NotYet }
}

fn describe_status(status: &[SubTaskStatus]) -> String {
    if status.is_empty() {
        return "no subtasks reported".into();
    }
    let mut parts: Vec<String> = status
        .iter()
        .map(|s| {
            let stage = if s.stage.as_str().is_empty() { "unknown" } else { s.stage.as_str() };
            format!("{} {stage}", s.source_name)
        })
        .collect();
    parts.sort();
    parts.join(", ")
}

/// DM's error lines start with `[code=38032:class=...`.
fn dm_code_in(message: &str) -> Option<i64> {
    let rest = &message[message.find("code=")? + 5..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dm::types::Unit;

    fn st(source: &str, stage: Stage, err: Option<&str>) -> SubTaskStatus {
        SubTaskStatus {
            name: "t".into(),
            source_name: source.into(),
            stage,
            unit: Unit::Sync,
            error_msg: err.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn judging_status() {
        use Stage::*;
        assert!(matches!(judge(&[st("a", Running, None), st("b", Finished, None)], WaitFor::Running), Judged::Reached));
        assert!(matches!(judge(&[st("a", Running, None), st("b", Stopped, None)], WaitFor::Running), Judged::NotYet));
        assert!(matches!(judge(&[], WaitFor::Running), Judged::NotYet));
        assert!(matches!(
            judge(&[st("a", Running, None), st("b", Paused, Some("[code=10001:class=x] boom"))], WaitFor::Running),
            Judged::Error { source, .. } if source == "b"
        ));
        // A paused task with an error is paused, which is what a stop waits for.
        assert!(matches!(
            judge(&[st("a", Paused, Some("x")), st("b", Stopped, None)], WaitFor::Paused),
            Judged::Reached
        ));
        assert!(matches!(judge(&[st("a", Empty, None)], WaitFor::Paused), Judged::NotYet));
        let gone = st("a", Empty, Some("[code=38029:class=dm-master] source not bound"));
        assert!(matches!(judge(std::slice::from_ref(&gone), WaitFor::Paused), Judged::Reached));
        assert!(matches!(judge(&[gone], WaitFor::Running), Judged::NotYet));
        assert!(matches!(judge(&[st("a", Unknown("Pausing".into()), None)], WaitFor::Paused), Judged::NotYet));
    }

    #[test]
    fn dm_codes_in_messages() {
        assert_eq!(dm_code_in("[code=38032:class=dm-master:scope=internal], Message: x"), Some(38032));
        assert_eq!(dm_code_in("no code"), None);
        assert_eq!(dm_code_in("code="), None);
    }

    #[test]
    fn durations_for_people() {
        assert_eq!(human_duration(Duration::from_secs(300)), "5m");
        assert_eq!(human_duration(Duration::from_secs(30)), "30s");
        assert_eq!(human_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn precheck_notes() {
        assert_eq!(precheck_note(Some("pre-check is passed. ")), None);
        assert_eq!(precheck_note(None), None);
        assert_eq!(precheck_note(Some("warn: x")), Some("DM pre-check: warn: x".into()));
    }
}
