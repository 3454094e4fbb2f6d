//! The step graph: small DM operations and the order DM needs them in.
//!
//! A plan change becomes several steps (e.g. "update task" is stop → wait until paused → PUT → start → wait until
//! running). Each step names the resource it acts on and the steps it must wait for. Two kinds of dependency exist:
//! [`DepKind::Requires`] (skip this step when that one did not succeed) and [`DepKind::After`] (only ordering: run
//! once that one has finished, whatever its outcome; used to restart a task we stopped even when the change that
//! needed the stop failed, so a failed source update does not leave replication stopped).
//!
//! The order is computed with Kahn's algorithm over `BTreeMap`s, so it is deterministic; a cycle (impossible by
//! construction) is reported instead of hanging.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::dm::types::{Source, StartTaskRequest, Task};

/// Identifies a step within one graph. Ids are assigned in insertion order, which is also the tie-break of the
/// topological order, so the compiler's insertion order is the order people read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct StepId(pub u32);

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DepKind {
    /// Ordering only: run after that step finished, whatever its outcome.
    After,
    /// Run only when that step succeeded; otherwise this step is skipped.
    Requires,
}

/// What a step waits for after an asynchronous start or stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitFor {
    /// Every subtask Running (or Finished, for full/dump/load tasks).
    Running,
    /// Every subtask Paused or Stopped (or Finished).
    Paused,
}

impl fmt::Display for WaitFor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WaitFor::Running => "Running",
            WaitFor::Paused => "Paused",
        })
    }
}

/// Which relay a relay step acts on (docs/dm-behaviour.md R4.1, R4.4, R4.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayTarget {
    /// The worker the source is bound to when the step runs: the request names none and has no body (a JSON body
    /// would make DM v8.5.4+ rewrite the source's `relay_dir`, R4.2).
    BoundWorker,
    /// These workers, named.
    Workers(Vec<String>),
    /// Relay started through the source config's `enable_relay` flag: stopped with `worker_name_list: []`.
    ConfigFlag,
}

impl fmt::Display for RelayTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RelayTarget::BoundWorker => f.write_str("on the bound worker"),
            RelayTarget::Workers(w) => write!(f, "on {}", w.join(", ")),
            RelayTarget::ConfigFlag => f.write_str("started by relay_config.enable_relay"),
        }
    }
}

/// One DM operation. Payloads are the exact wire bodies to send (built by the planner's normalizer).
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// `worker_name`: the worker DM binds the new source to (declared); `None`: DM picks a free one.
    CreateSource {
        source: Box<Source>,
        worker_name: Option<String>,
    },
    /// `source.enable` must equal the live value: enable/disable go through their own endpoints, because a PUT
    /// that flips `enable` would start or stop every task of the source as a side effect.
    UpdateSource {
        source: Box<Source>,
    },
    /// `/enable`. DM then sets *every* task of the source to Running, including ones meant to stay stopped: the
    /// step stops again every task on the source that is not in `keep_running`, and says so.
    EnableSource {
        name: String,
        keep_running: BTreeSet<String>,
    },
    DisableSource {
        name: String,
    },
    DeleteSource {
        name: String,
        force: bool,
    },
    /// `/relay/disable`: named workers that are not relaying count as stopped already.
    StopRelay {
        name: String,
        target: RelayTarget,
    },
    /// `/relay/enable`, then wait until the workers report relay running.
    StartRelay {
        name: String,
        target: RelayTarget,
    },
    /// `/transfer`: DM pauses the tasks expected to run on the source, moves it, and resumes them.
    TransferSource {
        name: String,
        worker: String,
    },
    CreateTask {
        task: Box<Task>,
    },
    UpdateTask {
        task: Box<Task>,
    },
    StartTask {
        name: String,
        request: StartTaskRequest,
    },
    /// `sources`: only the subtasks on these sources (`None`: every subtask). A source update needs only the
    /// subtask on that source stopped (docs/dm-behaviour.md R3.7), so the task's other sources keep replicating.
    StopTask {
        name: String,
        sources: Option<Vec<String>>,
    },
    /// Read the checkpoint a stopped task reached on each source (its status' `sync_status.syncer_binlog` /
    /// `syncer_binlog_gtid`), for the task `for_task` that replaces it; fails, before anything is deleted, when a
    /// subtask has none (not in the Sync unit). With `set_positions`, the create of `for_task` puts these positions
    /// in its `source_conf`.
    ReadCheckpoint {
        name: String,
        for_task: String,
        set_positions: bool,
    },
    /// Waits for the subtasks on `sources` (`None`: every subtask).
    WaitTask {
        name: String,
        until: WaitFor,
        sources: Option<Vec<String>>,
    },
    DeleteTask {
        name: String,
        force: bool,
        keep_meta: bool,
    },
    /// Update dm-apply's state record (`crate::state`) after write-only values (a source password) were written
    /// or trusted, so the next plan knows what DM holds without reading it back. The step fingerprints the values
    /// itself; it runs after every task change of the apply (the record's template connects to a task's target).
    RecordState {
        address: String,
        update: crate::state::store::Update,
    },
}

/// " on s1, s2" for a step limited to some sources of its task; "" for the whole task.
fn on(sources: &Option<Vec<String>>) -> String {
    sources.as_ref().map(|s| format!(" on {}", s.join(", "))).unwrap_or_default()
}

impl StepKind {
    /// A short description for progress lines and the report, e.g. `stop task`.
    pub fn describe(&self) -> String {
        match self {
            StepKind::CreateSource { worker_name: Some(w), .. } => format!("create source on worker {w}"),
            StepKind::CreateSource { .. } => "create source".into(),
            StepKind::UpdateSource { .. } => "update source".into(),
            StepKind::EnableSource { .. } => "enable source".into(),
            StepKind::DisableSource { .. } => "disable source".into(),
            StepKind::DeleteSource { force: true, .. } => "delete source (force)".into(),
            StepKind::DeleteSource { .. } => "delete source".into(),
            StepKind::StopRelay { target, .. } => format!("stop relay {target}"),
            StepKind::StartRelay { target, .. } => format!("start relay {target}"),
            StepKind::TransferSource { worker, .. } => format!("transfer to worker {worker}"),
            StepKind::CreateTask { .. } => "create task".into(),
            StepKind::UpdateTask { .. } => "update task".into(),
            StepKind::StartTask { request, .. } if request.remove_meta == Some(true) => {
                "start task (remove_meta: from scratch)".into()
            }
            StepKind::StartTask { request, .. } => format!("start task{}", on(&request.source_name_list)),
            StepKind::StopTask { sources, .. } => format!("stop task{}", on(sources)),
            StepKind::ReadCheckpoint { .. } => "read checkpoint".into(),
            StepKind::WaitTask { until, sources, .. } => format!("wait until {until}{}", on(sources)),
            StepKind::DeleteTask { force, keep_meta, .. } => match (force, keep_meta) {
                (false, false) => "delete task".into(),
                (false, true) => "delete task (keep checkpoints)".into(),
                (true, false) => "delete task (force)".into(),
                (true, true) => "delete task (force, keep checkpoints)".into(),
            },
            StepKind::RecordState { update: crate::state::store::Update::Forget, .. } => {
                "forget in state record".into()
            }
            StepKind::RecordState { .. } => "record fingerprints in state record".into(),
        }
    }

    /// Whether the step changes DM (everything except waiting and reading).
    pub fn is_mutation(&self) -> bool {
        !matches!(self, StepKind::WaitTask { .. } | StepKind::ReadCheckpoint { .. })
    }
}

/// How a successful step counts in the final `Resources: X added, Y changed, Z destroyed.` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    Add,
    Change,
    Destroy,
    /// Part of a bigger change (a stop before an update, a wait) or a side effect on an unchanged resource.
    None,
}

/// What the resource must look like right before the first mutation of a branch, i.e. what the plan assumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// The plan saw no such resource.
    Absent,
    /// The plan saw the resource with this normalized digest (computed by the plan module).
    Digest(String),
    /// The plan saw the resource but recorded no digest: only its existence is checked.
    Exists,
}

/// A re-read before a mutation, to stop when someone else changed the resource since the plan was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    pub kind: ResourceKind,
    pub name: String,
    pub expect: Expect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    Source,
    Task,
}

impl ResourceKind {
    pub fn address(self, name: &str) -> String {
        match self {
            ResourceKind::Source => format!("source.{name}"),
            ResourceKind::Task => format!("task.{name}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub id: StepId,
    /// The address of the resource acted on, e.g. `task.orders`.
    pub resource: String,
    pub kind: StepKind,
    pub effect: Effect,
    /// Why this step exists when it is not obvious (e.g. "restart: it was stopped to update source.a").
    pub note: Option<String>,
    /// Re-reads done right before the step (the first mutation of a branch), see [`Guard`].
    pub guards: Vec<Guard>,
}

impl Step {
    /// `task.orders: stop task`.
    pub fn label(&self) -> String {
        format!("{}: {}", self.resource, self.kind.describe())
    }
}

/// Error for a graph whose dependencies loop (a compiler bug; reported, never hung on).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("internal error: the apply steps depend on each other in a cycle ({})", .0.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", "))]
pub struct CycleError(pub Vec<StepId>);

#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepGraph {
    steps: BTreeMap<StepId, Step>,
    /// step → the steps it depends on, with the kind of dependency.
    deps: BTreeMap<StepId, BTreeMap<StepId, DepKind>>,
    /// Groups of `After` dependencies of many steps on many steps, stored once (see [`StepGraph::after_all`]).
    barriers: Vec<Barrier>,
}

/// Every waiter comes after every member (ordering only, like [`DepKind::After`]). The same as waiters × members
/// edges, without storing them: every state-record step waits for every task change, which at 1,000 sources and
/// 2,000 tasks would be 6 million edges to build, count and walk.
#[derive(Debug, Clone, Default, PartialEq)]
struct Barrier {
    members: BTreeSet<StepId>,
    waiters: BTreeSet<StepId>,
}

/// The countdown of a run over the graph: how many dependencies each step still waits for, and what finishing a
/// step releases. A barrier counts as one dependency of each waiter, released when its last member finishes.
pub(crate) struct Countdown {
    waiting_on: BTreeMap<StepId, usize>,
    dependents: BTreeMap<StepId, Vec<StepId>>,
    /// member → the barriers it belongs to.
    member_of: BTreeMap<StepId, Vec<usize>>,
    /// Members of each barrier not finished yet.
    barrier_left: Vec<usize>,
    barrier_waiters: Vec<Vec<StepId>>,
}

impl Countdown {
    pub(crate) fn new(g: &StepGraph) -> Self {
        let mut waiting_on: BTreeMap<StepId, usize> = g.deps.iter().map(|(k, d)| (*k, d.len())).collect();
        let mut dependents: BTreeMap<StepId, Vec<StepId>> = BTreeMap::new();
        for (step, deps) in &g.deps {
            for on in deps.keys() {
                dependents.entry(*on).or_default().push(*step);
            }
        }
        let mut member_of: BTreeMap<StepId, Vec<usize>> = BTreeMap::new();
        for (i, b) in g.barriers.iter().enumerate() {
            for m in &b.members {
                member_of.entry(*m).or_default().push(i);
            }
            for w in &b.waiters {
                *waiting_on.entry(*w).or_default() += 1;
            }
        }
        Countdown {
            waiting_on,
            dependents,
            member_of,
            barrier_left: g.barriers.iter().map(|b| b.members.len()).collect(),
            barrier_waiters: g.barriers.iter().map(|b| b.waiters.iter().copied().collect()).collect(),
        }
    }

    /// The steps that wait for nothing.
    pub(crate) fn ready(&self) -> impl Iterator<Item = StepId> + '_ {
        self.waiting_on.iter().filter(|(_, n)| **n == 0).map(|(k, _)| *k)
    }

    /// `id` finished (whatever its outcome): `on_ready` gets every step that now waits for nothing more.
    pub(crate) fn finish(&mut self, id: StepId, mut on_ready: impl FnMut(StepId)) {
        let mut release = |d: StepId, waiting_on: &mut BTreeMap<StepId, usize>| {
            if let Some(n) = waiting_on.get_mut(&d)
                && *n > 0
            {
                *n -= 1;
                if *n == 0 {
                    on_ready(d);
                }
            }
        };
        for d in self.dependents.get(&id).into_iter().flatten() {
            release(*d, &mut self.waiting_on);
        }
        for &b in self.member_of.get(&id).into_iter().flatten() {
            let Some(left) = self.barrier_left.get_mut(b) else { continue };
            *left = left.saturating_sub(1);
            if *left == 0 {
                for w in self.barrier_waiters.get(b).into_iter().flatten() {
                    release(*w, &mut self.waiting_on);
                }
            }
        }
    }

    /// The steps still waiting for something.
    fn blocked(self) -> Vec<StepId> {
        self.waiting_on.into_iter().filter(|(_, n)| *n > 0).map(|(k, _)| k).collect()
    }
}

impl StepGraph {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, resource: impl Into<String>, kind: StepKind, effect: Effect) -> StepId {
        let id = StepId(self.steps.len() as u32);
        self.steps.insert(id, Step { id, resource: resource.into(), kind, effect, note: None, guards: vec![] });
        self.deps.insert(id, BTreeMap::new());
        id
    }

    pub fn set_note(&mut self, id: StepId, note: impl Into<String>) {
        if let Some(s) = self.steps.get_mut(&id) {
            s.note = Some(note.into());
        }
    }

    /// Add a guard (once) to a step.
    pub fn add_guard(&mut self, id: StepId, guard: Guard) {
        if let Some(s) = self.steps.get_mut(&id)
            && !s.guards.contains(&guard)
        {
            s.guards.push(guard);
        }
    }

    pub fn step_mut(&mut self, id: StepId) -> Option<&mut Step> {
        self.steps.get_mut(&id)
    }

    /// `step` waits for `on`. A `Requires` dependency wins over an `After` one between the same pair; self
    /// dependencies and unknown ids are ignored.
    pub fn depend(&mut self, step: StepId, on: StepId, kind: DepKind) {
        if step == on || !self.steps.contains_key(&on) {
            return;
        }
        if let Some(d) = self.deps.get_mut(&step) {
            let e = d.entry(on).or_insert(kind);
            *e = (*e).max(kind);
        }
    }

    /// Every step of `waiters` comes after every step of `members` (ordering only, as [`DepKind::After`]), stored
    /// as one group rather than waiters × members edges. Unknown ids are ignored; a waiter that is also a member
    /// gets plain edges (it does not wait for itself).
    pub fn after_all(&mut self, waiters: impl IntoIterator<Item = StepId>, members: impl IntoIterator<Item = StepId>) {
        let members: BTreeSet<StepId> = members.into_iter().filter(|m| self.steps.contains_key(m)).collect();
        let mut waiters: BTreeSet<StepId> = waiters.into_iter().filter(|w| self.steps.contains_key(w)).collect();
        let inside: Vec<StepId> = waiters.intersection(&members).copied().collect();
        for w in inside {
            waiters.remove(&w);
            for m in &members {
                self.depend(w, *m, DepKind::After);
            }
        }
        if !members.is_empty() && !waiters.is_empty() {
            self.barriers.push(Barrier { members, waiters });
        }
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn step(&self, id: StepId) -> Option<&Step> {
        self.steps.get(&id)
    }

    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.steps.values()
    }

    /// The dependencies of `id`, by id: its own edges and those of the groups it waits on ([`Self::after_all`]).
    pub fn deps_of(&self, id: StepId) -> impl Iterator<Item = (StepId, DepKind)> + '_ {
        let mut all: BTreeMap<StepId, DepKind> = self.deps.get(&id).cloned().unwrap_or_default();
        for b in self.barriers.iter().filter(|b| b.waiters.contains(&id)) {
            for m in &b.members {
                all.entry(*m).or_insert(DepKind::After);
            }
        }
        all.into_iter()
    }

    /// The `Requires` dependencies of `id` (groups are ordering only, so only its own edges).
    pub fn requires_of(&self, id: StepId) -> impl Iterator<Item = StepId> + '_ {
        self.deps.get(&id).into_iter().flatten().filter(|(_, k)| **k == DepKind::Requires).map(|(d, _)| *d)
    }

    /// Kahn's algorithm; among ready steps the lowest id goes first, so the order is deterministic.
    pub fn topo_order(&self) -> Result<Vec<StepId>, CycleError> {
        let mut countdown = Countdown::new(self);
        let mut ready: BTreeSet<StepId> = countdown.ready().collect();
        let mut order = Vec::with_capacity(self.steps.len());
        while let Some(id) = ready.pop_first() {
            order.push(id);
            countdown.finish(id, |d| {
                ready.insert(d);
            });
        }
        if order.len() == self.steps.len() { Ok(order) } else { Err(CycleError(countdown.blocked())) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stop(g: &mut StepGraph, n: &str) -> StepId {
        g.add(format!("task.{n}"), StepKind::StopTask { name: n.into(), sources: None }, Effect::None)
    }

    #[test]
    fn topo_order_respects_dependencies_and_is_deterministic() {
        let mut g = StepGraph::new();
        let a = stop(&mut g, "a");
        let b = stop(&mut g, "b");
        let c = stop(&mut g, "c");
        g.depend(a, c, DepKind::Requires);
        g.depend(b, a, DepKind::After);
        assert_eq!(g.topo_order().unwrap(), vec![c, a, b]);
        assert_eq!(g.topo_order().unwrap(), g.topo_order().unwrap());
    }

    #[test]
    fn cycles_are_reported_not_hung_on() {
        let mut g = StepGraph::new();
        let a = stop(&mut g, "a");
        let b = stop(&mut g, "b");
        let c = stop(&mut g, "c");
        g.depend(a, b, DepKind::Requires);
        g.depend(b, a, DepKind::Requires);
        let err = g.topo_order().unwrap_err();
        assert_eq!(err.0, vec![a, b]);
        assert!(err.to_string().contains("cycle"));
        let _ = c;
    }

    #[test]
    fn requires_wins_over_after_and_self_deps_are_ignored() {
        let mut g = StepGraph::new();
        let a = stop(&mut g, "a");
        let b = stop(&mut g, "b");
        g.depend(b, a, DepKind::After);
        g.depend(b, a, DepKind::Requires);
        g.depend(b, a, DepKind::After);
        g.depend(b, b, DepKind::Requires);
        g.depend(b, StepId(99), DepKind::Requires);
        assert_eq!(g.deps_of(b).collect::<Vec<_>>(), vec![(a, DepKind::Requires)]);
    }

    /// A group of `After` dependencies orders like the edges it stands for, and reads back as them.
    #[test]
    fn after_all_orders_like_the_edges_it_stands_for() {
        let mut g = StepGraph::new();
        let w1 = stop(&mut g, "w1");
        let m1 = stop(&mut g, "m1");
        let w2 = stop(&mut g, "w2");
        let m2 = stop(&mut g, "m2");
        let m3 = stop(&mut g, "m3");
        g.depend(m2, m3, DepKind::Requires);
        g.depend(w1, m1, DepKind::Requires);
        g.after_all([w1, w2, StepId(99)], [m1, m2, m3, StepId(98)]);
        assert_eq!(g.topo_order().unwrap(), vec![m1, m3, m2, w1, w2]);
        assert_eq!(
            g.deps_of(w1).collect::<Vec<_>>(),
            vec![(m1, DepKind::Requires), (m2, DepKind::After), (m3, DepKind::After)]
        );
        assert_eq!(g.requires_of(w1).collect::<Vec<_>>(), vec![m1]);
        assert_eq!(g.deps_of(m1).count(), 0);
        // A waiter that is also a member does not wait for itself.
        let mut h = StepGraph::new();
        let a = stop(&mut h, "a");
        let b = stop(&mut h, "b");
        h.after_all([a, b], [a]);
        assert_eq!(h.topo_order().unwrap(), vec![a, b]);
        // A cycle through a group is reported.
        let mut c = StepGraph::new();
        let x = stop(&mut c, "x");
        let y = stop(&mut c, "y");
        c.depend(y, x, DepKind::Requires);
        c.after_all([x], [y]);
        assert_eq!(c.topo_order().unwrap_err().0, vec![x, y]);
    }

    #[test]
    fn descriptions() {
        assert_eq!(
            StepKind::DeleteTask { name: "t".into(), force: false, keep_meta: true }.describe(),
            "delete task (keep checkpoints)"
        );
        assert_eq!(
            StepKind::WaitTask { name: "t".into(), until: WaitFor::Paused, sources: None }.describe(),
            "wait until Paused"
        );
        assert!(!StepKind::WaitTask { name: "t".into(), until: WaitFor::Running, sources: None }.is_mutation());
        let read = StepKind::ReadCheckpoint { name: "a".into(), for_task: "b".into(), set_positions: true };
        assert_eq!(read.describe(), "read checkpoint");
        assert!(!read.is_mutation());
    }
}
