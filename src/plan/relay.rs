//! Relay and worker binding of sources in a plan (docs/apply.md, "Relay and worker binding").
//!
//! Pure, like the rest of the planner. [`place`] fills in a source change's `relay` and `binding`, its runtime
//! actions, reasons and holds, from the declared `relay` / `worker_name` and what DM reports (relay workers by
//! source, the DM-workers, the tasks on the source). [`capacity`] then looks at the whole plan: which new sources
//! DM will leave unbound for lack of a free worker, and which task creates that blocks (DM refuses a task on an
//! unbound source, 46009).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::{Value, json};

use super::model::*;
use crate::config::{Desired, SourceSpec};
use crate::dm::types::{Source, Unit};
use crate::live::{Live, LiveRelay, LiveTask};

/// What placing every source needs to know about the others.
pub(super) struct Ctx<'a> {
    pub live: &'a Live,
    /// worker → source whose relay on that worker this plan stops for good: the worker can then relay another
    /// source or take a binding (apply stops relay before it starts any or moves a source).
    freed: BTreeMap<String, String>,
}

/// Why a worker cannot take what a source asks of it.
enum Claim {
    /// Relay of the source on the worker (docs/dm-behaviour.md R4.3).
    Relay,
    /// The source moves to the worker (R3.12).
    Transfer,
    /// A new source is created on the worker (R3.1).
    Create,
}

impl<'a> Ctx<'a> {
    pub fn new(desired: &Desired, live: &'a Live) -> Self {
        let mut freed = BTreeMap::new();
        for (name, (spec, _)) in &desired.sources {
            let (Some(r), Some(lr)) = (&spec.relay, live.relay_of(name)) else { continue };
            let want: BTreeSet<String> = match (r.enabled, &r.workers) {
                (false, _) => BTreeSet::new(),
                (true, Some(w)) => w.iter().cloned().collect(),
                (true, None) => match spec.worker_name.as_deref().map(Some).or_else(|| live.bound_worker(name)) {
                    Some(b) => b.into_iter().map(str::to_string).collect(),
                    // Unknown bound worker: nothing is known to be freed.
                    None => continue,
                },
            };
            for w in lr.workers.keys().filter(|w| !want.contains(*w)) {
                freed.insert(w.clone(), name.clone());
            }
        }
        Ctx { live, freed }
    }

    /// The source relaying on `worker` (relay started by name), if known.
    fn relaying(&self, worker: &str) -> Option<&str> {
        self.live.relay.as_ref()?.iter().find(|(_, r)| r.workers.contains_key(worker)).map(|(s, _)| s.as_str())
    }

    /// Whether DM would refuse to let `worker` do `claim` for `source` (with DM's code), judged on the workers as read.
    /// `None` also when the workers could not be read (DM then decides).
    fn worker_problem(&self, worker: &str, source: &str, claim: Claim) -> Option<String> {
        let workers = self.live.workers.as_ref()?;
        let Some(w) = workers.iter().find(|w| w.name == worker) else {
            return Some(format!("DM-worker {worker} does not exist in this cluster (DM answers 46004)"));
        };
        let relaying =
            self.relaying(worker).filter(|s| *s != source && self.freed.get(worker).map(String::as_str) != Some(*s));
        match claim {
            Claim::Relay => {
                if w.bound_stage == "bound" && w.bound_source_name != source {
                    return Some(format!(
                        "DM-worker {worker} is bound to source {}, and a worker relays only its own bound source (DM \
                         answers 46021)",
                        w.bound_source_name
                    ));
                }
                relaying.map(|s| {
                    format!(
                        "DM-worker {worker} relays source {s}, and a worker relays one source only (DM answers 46020)"
                    )
                })
            }
            Claim::Transfer | Claim::Create => {
                let code = if matches!(claim, Claim::Transfer) { "46006" } else { "46033" };
                match w.bound_stage.as_str() {
                    "offline" => Some(format!("DM-worker {worker} is offline (DM answers {code})")),
                    "bound" if w.bound_source_name != source => Some(format!(
                        "DM-worker {worker} is bound to source {} (DM answers {code})",
                        w.bound_source_name
                    )),
                    _ => relaying.map(|s| {
                        let code = if matches!(claim, Claim::Transfer) { "46027" } else { "46033" };
                        format!("DM-worker {worker} relays source {s} (DM answers {code})")
                    }),
                }
            }
        }
    }

    fn is_free(&self, worker: &str) -> bool {
        self.live.worker(worker).is_some_and(|w| w.bound_stage == "free")
    }
}

fn blocked(reason: String, remedy: impl Into<String>) -> Hold {
    Hold::blocked(reason, remedy)
}

fn names(set: &BTreeSet<String>) -> Value {
    json!(set.iter().collect::<Vec<_>>())
}

fn list(v: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    v.into_iter().map(|s| s.as_ref().to_string()).collect::<Vec<_>>().join(", ")
}

fn attr(path: &str, before: Option<Value>, after: Option<Value>) -> AttributeChange {
    AttributeChange { path: path.to_string(), before, after, sensitive: false, forces_replacement: false }
}

/// What the tasks of a source tell a transfer: the ones DM pauses and resumes, and what keeps DM from moving it.
struct TasksOnSource {
    running: Vec<String>,
    not_in_sync: Vec<String>,
    /// The tasks named in `not_in_sync`.
    waiting: BTreeSet<String>,
    status_unknown: Vec<String>,
}

fn tasks_on_source(source: &str, tasks: &[&LiveTask]) -> TasksOnSource {
    let mut out =
        TasksOnSource { running: vec![], not_in_sync: vec![], waiting: BTreeSet::new(), status_unknown: vec![] };
    for lt in tasks {
        let name = lt.task.name.clone();
        // DM pauses and resumes only the subtasks on the source it moves (`TransferSource` asks
        // `GetTaskNameListBySourceName`).
        if super::planner::expected_running_on(lt, source) {
            out.running.push(name.clone());
        }
        match &lt.status {
            None => out.status_unknown.push(name),
            Some(st) => {
                for s in st.iter().filter(|s| s.source_name == source && s.unit != Unit::Sync) {
                    let unit = if s.unit.as_str().is_empty() { "no unit" } else { s.unit.as_str() };
                    out.not_in_sync.push(format!("{name} in {unit}"));
                    out.waiting.insert(name.clone());
                }
            }
        }
    }
    out.running.sort();
    out.running.dedup();
    out
}

/// Fill in the relay and binding part of a declared source's change (`l`: the source in DM, `None` for a create).
/// `tasks`: the tasks in DM that use the source.
pub(super) fn place(
    c: &mut ResourceChange,
    spec: &SourceSpec,
    l: Option<&Source>,
    cx: &Ctx<'_>,
    tasks: &[&LiveTask],
    warnings: &mut Vec<String>,
) {
    let name = spec.source_name.as_str();
    let live = cx.live;
    let mut holds: Vec<Hold> = vec![];
    // Where the source is bound now: `None` unknown, `Some(None)` unbound (a new source too).
    let bound_now: Option<Option<&str>> = if l.is_some() { live.bound_worker(name) } else { Some(None) };
    // Where it will be bound after this plan: `None` unknown. A new source without a declared worker gets one DM
    // picks (unknown by name), or none (see `capacity`).
    let mut bound_after: Option<Option<String>> = bound_now.map(|b| b.map(str::to_string));
    if l.is_none() && spec.worker_name.is_none() {
        bound_after = None;
    }
    // DM writes the source config for an update, enable or disable: refused while relay runs (46025).
    let writes = c.action == ConfigAction::Update
        || c.runtime.iter().any(|r| matches!(r, RuntimeAction::Enable | RuntimeAction::Disable));
    let stopped_by_update: Vec<String> = match (&c.impact, c.runtime.contains(&RuntimeAction::Disable)) {
        // `/disable` stops every task of the source itself.
        (_, true) => tasks_on_source(name, tasks).running,
        (Impact::StopUpdateStart { stopped_tasks }, false) => stopped_tasks.clone(),
        _ => vec![],
    };
    let mut transfer = false;

    // ------------------------------------------------------------------------------------------ binding
    if let Some(w) = &spec.worker_name {
        match (l, bound_now) {
            (None, _) => {
                if let Some(p) = cx.worker_problem(w, name, Claim::Create) {
                    holds.push(blocked(
                        format!("source {name} is declared on DM-worker {w}, but {p}"),
                        format!("free DM-worker {w} (move or delete what it serves), or declare another worker_name"),
                    ));
                }
                c.binding = Some(BindingPlan { to: Some(w.clone()), ..BindingPlan::default() });
                c.reasons.push(format!("created on DM-worker {w} (declared worker_name)"));
                bound_after = Some(Some(w.clone()));
            }
            (Some(_), None) => warnings.push(format!(
                "source.{name}: the DM-workers could not be read, so its binding to {w} is not checked in this run"
            )),
            (Some(_), Some(b)) if b == Some(w.as_str()) => {}
            (Some(_), Some(b)) => {
                transfer = true;
                if let Some(p) = cx.worker_problem(w, name, Claim::Transfer) {
                    holds.push(blocked(
                        format!("source {name} should move to DM-worker {w}, but {p}"),
                        format!(
                            "free DM-worker {w} first (move or delete the source it serves, stop its relay), or \
                             declare another worker_name"
                        ),
                    ));
                }
                let on = tasks_on_source(name, tasks);
                // Tasks this apply stops for the update are moved while stopped: DM neither checks nor pauses them.
                let paused: Vec<String> = match b {
                    Some(_) => on.running.iter().filter(|t| !stopped_by_update.contains(t)).cloned().collect(),
                    None => vec![],
                };
                if !paused.is_empty() {
                    if !on.not_in_sync.is_empty() {
                        holds.push(Hold::deferred(
                            format!(
                                "DM moves a source with running tasks only when every task on it is in the Sync unit \
                                 (46019): {}",
                                list(&on.not_in_sync)
                            ),
                            "apply again once the tasks reach the Sync unit (they get there by themselves after \
                             their full dump and load; `dm-apply apply --wait-for-sync` waits for it and then \
                             applies)",
                            HoldWait { tasks: on.waiting.iter().cloned().collect(), until: WaitUntil::Sync },
                        ));
                    }
                    if !on.status_unknown.is_empty() {
                        warnings.push(format!(
                            "source.{name}: status of {} unavailable, so dm-apply cannot check that they are in the \
                             Sync unit; DM refuses the transfer (46019) if they are not",
                            list(&on.status_unknown)
                        ));
                    }
                }
                c.reasons.push(match (b, paused.is_empty()) {
                    (None, _) => format!("unbound in DM: bound to DM-worker {w} (transfer)"),
                    (Some(old), true) => format!("moves from DM-worker {old} to {w} (transfer); no task runs on it"),
                    (Some(old), false) => format!(
                        "moves from DM-worker {old} to {w} (transfer): DM pauses {} and resumes {} on {w}",
                        list(&paused),
                        if paused.len() == 1 { "it" } else { "them" }
                    ),
                });
                c.attributes.push(attr("worker_name", b.map(|x| json!(x)), Some(json!(w))));
                c.binding = Some(BindingPlan {
                    from: b.map(str::to_string),
                    to: Some(w.clone()),
                    paused_tasks: paused,
                    confirm: true,
                    stays_unbound: false,
                });
                bound_after = Some(Some(w.clone()));
            }
        }
    }

    // ------------------------------------------------------------------------------------------ relay
    // Relay workers (by name) that keep running while the source is moved: DM cannot report task status while relay
    // runs on a worker other than the bound one (R8.12).
    let mut relay_during_transfer: Option<BTreeSet<String>> = None;
    let mut relay_after: Option<BTreeSet<String>> = None;
    match &spec.relay {
        None => {
            if let Some(lr) = live.relay.as_ref().and_then(|m| m.get(name)) {
                relay_during_transfer = Some(lr.names());
                relay_after = Some(lr.names());
            }
        }
        Some(r) => {
            let lr: Option<LiveRelay> = if l.is_some() { live.relay_of(name) } else { Some(LiveRelay::default()) };
            let flag = l.and_then(|s| s.relay_config.as_ref()).and_then(|r| r.enable_relay) == Some(true);
            match lr {
                None => {
                    warnings.push(format!(
                        "source.{name}: DM did not say on which workers relay runs for it, so its relay is not \
                         judged in this run"
                    ));
                    if writes {
                        holds.push(super::planner::relay_hold(name));
                    }
                }
                Some(lr) => {
                    relay_during_transfer = Some(lr.names());
                    let plan = relay_plan(name, r, &lr, flag, writes, bound_after.as_ref(), l.is_none(), warnings);
                    if let Some((p, want)) = plan {
                        let stopped: BTreeSet<String> = p.stop.iter().cloned().collect();
                        relay_during_transfer = Some(lr.names().difference(&stopped).cloned().collect());
                        for w in &p.start {
                            if let Some(problem) = cx.worker_problem(w, name, Claim::Relay) {
                                holds.push(blocked(
                                    format!("relay of source {name} should run on DM-worker {w}, but {problem}"),
                                    format!(
                                        "free DM-worker {w} (stop its relay, move or delete its source), or declare \
                                         other relay workers"
                                    ),
                                ));
                            } else if live.worker(w).is_some_and(|x| x.bound_stage == "offline") {
                                c.reasons.push(format!(
                                    "DM-worker {w} is offline: DM records the relay and the worker starts it when it \
                                     comes back"
                                ));
                            }
                        }
                        describe_relay(c, name, &p, &lr, flag, &want, bound_after.as_ref());
                        relay_after = want.named.clone();
                        if p.stops() {
                            c.runtime.insert(0, RuntimeAction::StopRelay);
                        }
                        let mut p = p;
                        p.claims_free_worker = p.start.iter().any(|w| cx.is_free(w));
                        c.relay = Some(p);
                    } else {
                        relay_after = Some(want_named(r, bound_after.as_ref()).unwrap_or_default());
                    }
                }
            }
        }
    }
    if transfer {
        c.runtime.push(RuntimeAction::Transfer);
        if let Some(b) = c.binding.as_mut() {
            let to = b.to.clone().unwrap_or_default();
            b.confirm = relay_during_transfer.as_ref().is_none_or(|r| r.iter().all(|w| *w == to));
            if !b.confirm && !b.paused_tasks.is_empty() {
                c.reasons.push(format!(
                    "relay keeps running on another worker than {to} during the move, so DM cannot report the status \
                     of {} (49001): apply cannot confirm they run again",
                    list(&b.paused_tasks)
                ));
            }
        }
    }
    if c.relay.as_ref().is_some_and(RelayPlan::starts) {
        c.runtime.push(RuntimeAction::StartRelay);
    }
    // Relay on a worker other than the bound one makes DM fail the status of every task on the source (R8.12).
    if let (Some(after), Some(Some(b))) = (&relay_after, &bound_after) {
        let others: Vec<&String> = after.iter().filter(|w| *w != b).collect();
        if !others.is_empty()
            && !tasks.is_empty()
            && spec.relay.is_some()
            && c.relay.as_ref().is_some_and(RelayPlan::starts)
        {
            c.reasons.push(format!(
                "with relay on {} besides the bound worker {b}, DM cannot report the status of the tasks on this \
                 source (49001): plan and drift show it as unavailable",
                list(others)
            ));
        }
    }
    if c.hold.is_none()
        && let Some(h) = holds.into_iter().next()
    {
        c.hold = Some(h);
    }
}

/// The relay workers wanted, by name (`None`: the bound worker, whose name is not known).
struct Want {
    named: Option<BTreeSet<String>>,
    /// Relay belongs on the bound worker (no `workers` declared): started without naming it.
    on_bound: bool,
}

fn want_named(r: &crate::config::RelaySpec, bound_after: Option<&Option<String>>) -> Option<BTreeSet<String>> {
    match (r.enabled, &r.workers) {
        (false, _) => Some(BTreeSet::new()),
        (true, Some(w)) => Some(w.iter().cloned().collect()),
        (true, None) => match bound_after {
            Some(Some(b)) => Some(BTreeSet::from([b.clone()])),
            Some(None) => Some(BTreeSet::new()),
            None => None,
        },
    }
}

/// Stops and starts for a declared relay, or `None` when nothing is to be done (or nothing can be judged).
#[allow(clippy::too_many_arguments)]
fn relay_plan(
    name: &str,
    r: &crate::config::RelaySpec,
    lr: &LiveRelay,
    flag: bool,
    writes: bool,
    bound_after: Option<&Option<String>>,
    new: bool,
    warnings: &mut Vec<String>,
) -> Option<(RelayPlan, Want)> {
    let have = lr.names();
    let on_bound = r.enabled && r.workers.is_none();
    let want = Want { named: want_named(r, bound_after), on_bound };
    let mut p = RelayPlan { stop_config_flag: flag, ..RelayPlan::default() };
    match &want.named {
        Some(want_set) => {
            if on_bound && matches!(bound_after, Some(None)) && !new {
                // Relay belongs on the bound worker, and there is none (DM answers 40070).
                if have.is_empty() && !flag {
                    warnings.push(format!(
                        "source.{name}: relay should run on the worker the source is bound to, but it is not bound \
                         to any DM-worker (DM answers 40070); relay starts once it is bound (declare worker_name to \
                         bind it)"
                    ));
                }
                return None;
            }
            let stop: BTreeSet<String> =
                if writes { have.clone() } else { have.difference(want_set).cloned().collect() };
            let running_after_stops: BTreeSet<String> = have.difference(&stop).cloned().collect();
            let start: BTreeSet<String> = want_set.difference(&running_after_stops).cloned().collect();
            p.stop = stop.iter().cloned().collect();
            p.restarted = stop.intersection(want_set).cloned().collect();
            if on_bound {
                p.start_on_bound_worker = !start.is_empty() || (flag && r.enabled);
            } else {
                p.start = start.into_iter().collect();
            }
        }
        None if new => p.start_on_bound_worker = r.enabled,
        None => {
            // The bound worker is unknown (the workers could not be read).
            if writes {
                p.stop = have.iter().cloned().collect();
                p.restarted = p.stop.clone();
                p.start_on_bound_worker = r.enabled;
            } else if have.is_empty() && !flag {
                p.start_on_bound_worker = r.enabled;
            } else {
                warnings.push(format!(
                    "source.{name}: the DM-workers could not be read, so whether relay runs on its bound worker is \
                     not judged in this run"
                ));
                return None;
            }
        }
    }
    (p.stops() || p.starts()).then_some((p, want))
}

/// Reasons and attribute lines of a relay plan.
fn describe_relay(
    c: &mut ResourceChange,
    name: &str,
    p: &RelayPlan,
    lr: &LiveRelay,
    flag: bool,
    want: &Want,
    bound_after: Option<&Option<String>>,
) {
    let have = lr.names();
    let before = if flag {
        json!("(the bound worker, through relay_config.enable_relay)")
    } else if have.is_empty() {
        json!(false)
    } else {
        names(&have)
    };
    let after = match (&want.named, want.on_bound) {
        (Some(s), true) if !s.is_empty() => names(s),
        (_, true) => json!("(the bound worker)"),
        (Some(s), false) if s.is_empty() => json!(false),
        (Some(s), false) => names(s),
        (None, false) => json!(false),
    };
    if before != after {
        c.attributes.push(attr("relay.workers", Some(before), Some(after)));
    }
    let only: Vec<&String> = p.stop.iter().filter(|w| !p.restarted.contains(*w)).collect();
    if !only.is_empty() {
        c.reasons.push(format!("relay stops on {}", list(&only)));
    }
    if p.stop_config_flag {
        c.reasons.push(
            "relay started through relay_config.enable_relay is stopped (it cannot be purged nor moved); relay is \
             started again by worker name"
                .to_string(),
        );
    }
    if !p.restarted.is_empty() {
        c.reasons.push(format!(
            "relay on {} stops before the source's configuration is written and starts again after it: DM refuses to \
             update, enable or disable a source while relay runs (46025)",
            list(&p.restarted)
        ));
    }
    let fresh: Vec<&String> = p.start.iter().filter(|w| !p.restarted.contains(*w)).collect();
    if !fresh.is_empty() {
        c.reasons.push(format!("relay starts on {}", list(&fresh)));
    }
    if p.start_on_bound_worker && p.restarted.is_empty() {
        c.reasons.push(match bound_after {
            Some(Some(b)) => format!("relay starts on the bound DM-worker {b}"),
            _ => "relay starts on the DM-worker the source is bound to".to_string(),
        });
    }
    // Relay switching on or off on the bound worker restarts the tasks there from their checkpoints.
    let bound = bound_after.and_then(|b| b.as_deref());
    let touches_bound = p.stop_config_flag
        || p.start_on_bound_worker
        || bound.is_some_and(|b| p.stop.iter().chain(&p.start).any(|w| w == b));
    if touches_bound && c.address.kind == Kind::Source && !c.reasons.iter().any(|r| r.contains("checkpoints")) {
        c.reasons.push(format!(
            "DM restarts the tasks on source {name}'s bound worker from their checkpoints each time relay stops or \
             starts there (they switch between the relay log and the upstream)"
        ));
    }
}

/// Relay workers of an undeclared source that --prune deletes: stopped first (DM refuses the delete while relay
/// runs, 46023).
pub(super) fn before_delete(c: &mut ResourceChange, name: &str, live: &Live) {
    let Some(lr) = live.relay.as_ref().and_then(|m| m.get(name)) else { return };
    if lr.workers.is_empty() {
        return;
    }
    c.relay = Some(RelayPlan { stop: lr.workers.keys().cloned().collect(), ..RelayPlan::default() });
    c.runtime.insert(0, RuntimeAction::StopRelay);
    c.reasons.push(format!(
        "relay stops on {} first: DM refuses to delete a source while relay runs (46023)",
        list(lr.workers.keys())
    ));
}

/// Worker capacity over the whole plan: new sources without a declared worker take the free workers in name order
/// (apply creates them in that order, see `BindingPlan::stays_unbound`); the rest stay unbound, and task creates on
/// unbound sources, or on sources this apply does not create, are blocked (46009).
pub(super) fn capacity(changes: &mut [ResourceChange], live: &Live, warnings: &mut Vec<String>) {
    // Sources a held create leaves absent.
    let absent: BTreeSet<String> = changes
        .iter()
        .filter(|c| c.address.kind == Kind::Source && c.action == ConfigAction::Create && c.hold.is_some())
        .map(|c| c.address.name.clone())
        .collect();
    let mut unbound: BTreeMap<String, String> = BTreeMap::new();
    if let Some(workers) = &live.workers {
        let mut free: BTreeSet<String> =
            workers.iter().filter(|w| w.bound_stage == "free").map(|w| w.name.clone()).collect();
        let total = free.len();
        for c in changes.iter().filter(|c| c.address.kind == Kind::Source && c.hold.is_none()) {
            if let Some(to) = c.binding.as_ref().and_then(|b| b.to.as_ref()) {
                free.remove(to);
            }
            for w in c.relay.iter().flat_map(|r| r.start.iter()) {
                free.remove(w);
            }
        }
        let moved: BTreeSet<&str> = changes
            .iter()
            .filter(|c| c.hold.is_none() && c.runtime.contains(&RuntimeAction::Transfer))
            .map(|c| c.address.name.as_str())
            .collect();
        // `live.bound_worker` of every source, without a scan of the workers per source (1,000 × 1,000 at fleet scale).
        let bound: HashSet<&str> =
            workers.iter().filter(|w| w.bound_stage == "bound").map(|w| w.bound_source_name.as_str()).collect();
        for name in live.sources.keys() {
            if !bound.contains(name.as_str()) && !moved.contains(name.as_str()) {
                unbound.insert(name.clone(), format!("source {name} is not bound to any DM-worker"));
            }
        }
        let mut left = vec![];
        for c in changes.iter_mut().filter(|c| {
            c.address.kind == Kind::Source
                && c.action == ConfigAction::Create
                && c.hold.is_none()
                && c.binding.as_ref().is_none_or(|b| b.to.is_none())
        }) {
            if free.pop_first().is_some() {
                continue;
            }
            let name = c.address.name.clone();
            left.push(name.clone());
            c.binding.get_or_insert_with(BindingPlan::default).stays_unbound = true;
            c.reasons.push(format!(
                "no DM-worker is free for it ({total} free now, taken by the new sources before it in name order or \
                 by this plan): DM creates it unbound, and binds it when a worker is free"
            ));
            if let Some(r) = c.relay.as_mut().filter(|r| r.start_on_bound_worker) {
                r.start_on_bound_worker = false;
                c.reasons.push(
                    "relay cannot start without a bound worker (DM answers 40070): it starts in a later apply, once \
                     the source is bound"
                        .to_string(),
                );
                if !r.starts() {
                    c.runtime.retain(|a| *a != RuntimeAction::StartRelay);
                }
            }
            unbound.insert(name.clone(), format!("source {name} will not be bound to any DM-worker (none is free)"));
        }
        if !left.is_empty() {
            warnings.push(format!(
                "{} new source(s) will stay unbound, for lack of a free DM-worker: {}; tasks on them cannot be created \
                 until a worker is free (DM answers 46009)",
                left.len(),
                list(&left)
            ));
        }
    }
    for c in changes.iter_mut().filter(|c| {
        c.address.kind == Kind::Task
            && matches!(c.action, ConfigAction::Create | ConfigAction::Replace)
            && c.hold.is_none()
    }) {
        let why: Vec<String> = c
            .depends_on
            .iter()
            .filter_map(|a| {
                if absent.contains(&a.name) {
                    Some(format!("its source {} is not created in this apply (see source.{})", a.name, a.name))
                } else {
                    unbound.get(&a.name).cloned()
                }
            })
            .collect();
        if why.is_empty() {
            continue;
        }
        c.hold = Some(blocked(
            format!("{}; DM refuses to create a task on a source without a bound worker (46009)", why.join("; ")),
            "add a DM-worker or free one (delete or move a source, stop a relay), then apply again: DM binds the \
             source as soon as a worker is free",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dm::ServerVersion;
    use crate::dm::types::{ClusterWorker, Stage};
    use crate::live::RelayWorker;
    use crate::plan::testing::{desired_from_yaml, live_after_apply, status, test_key};
    use crate::plan::{PlanOptions, build_plan};

    const SOURCES: &str = r#"
sources:
  - {source_name: s1, host: h1, port: 3306, user: u, password: pw, worker_name: w1, relay: {enabled: true}}
  - {source_name: s2, host: h2, port: 3306, user: u, password: pw, worker_name: w2, relay: {enabled: true, workers: [w3]}}
tasks:
  - name: t1
    task_mode: incremental
    target_config: {host: tidb, port: 4000, user: root, password: tpw}
    source_config:
      source_conf: [{source_name: s1, binlog_name: mysql-bin.000001, binlog_pos: 4}]
"#;

    fn w(name: &str, stage: &str, source: &str) -> ClusterWorker {
        ClusterWorker {
            name: name.into(),
            addr: String::new(),
            bound_stage: stage.into(),
            bound_source_name: source.into(),
        }
    }

    fn running(workers: &[&str]) -> LiveRelay {
        LiveRelay {
            workers: workers
                .iter()
                .map(|w| (w.to_string(), RelayWorker { stage: Some(Stage::Running), error: None }))
                .collect(),
            unattributed: vec![],
        }
    }

    /// DM after an apply of `yaml`: s1 on w1 relaying there, s2 on w2 relaying on w3, w4 free.
    fn applied(yaml: &str) -> (crate::config::Desired, Live) {
        let d = desired_from_yaml("dm.yaml", yaml).unwrap();
        let mut live = live_after_apply(&d, &ServerVersion::parse("v8.5.4"), 0);
        live.workers =
            Some(vec![w("w1", "bound", "s1"), w("w2", "bound", "s2"), w("w3", "relay", ""), w("w4", "free", "")]);
        live.relay = Some(BTreeMap::from([("s1".into(), running(&["w1"])), ("s2".into(), running(&["w3"]))]));
        live.relay_sources = Some(BTreeSet::from(["s1".into(), "s2".into()]));
        (d, live)
    }

    fn plan(d: &crate::config::Desired, live: &Live) -> Plan {
        build_plan(d, live, &PlanOptions { state_key: Some(test_key()), ..PlanOptions::default() }).unwrap()
    }

    fn change<'a>(p: &'a Plan, a: &str) -> &'a ResourceChange {
        p.changes.iter().find(|c| c.address.to_string() == a).unwrap_or_else(|| panic!("no {a}: {p:#?}"))
    }

    #[test]
    fn relay_as_declared_is_no_change() {
        let (d, live) = applied(SOURCES);
        let p = plan(&d, &live);
        assert!(!p.has_changes(), "{:#?}", p.changes);
    }

    #[test]
    fn relay_is_started_where_declared_and_stopped_where_not() {
        let (d, mut live) = applied(SOURCES);
        // s1's relay was stopped by hand; s2 relays on w4 too.
        live.relay = Some(BTreeMap::from([("s2".into(), running(&["w3", "w4"]))]));
        live.relay_sources = Some(BTreeSet::from(["s2".into()]));
        let p = plan(&d, &live);
        let s1 = change(&p, "source.s1");
        assert_eq!(s1.runtime, [RuntimeAction::StartRelay]);
        let r = s1.relay.as_ref().unwrap();
        assert!(r.start_on_bound_worker && r.start.is_empty() && r.stop.is_empty(), "{r:?}");
        let s2 = change(&p, "source.s2");
        assert_eq!(s2.runtime, [RuntimeAction::StopRelay]);
        assert_eq!(s2.relay.as_ref().unwrap().stop, ["w4"]);
        assert!(s1.hold.is_none() && s2.hold.is_none());
        assert_eq!(p.summary().change, 2);
    }

    #[test]
    fn an_update_while_relay_runs_stops_and_restarts_it_instead_of_holding() {
        let (d, live) = applied(SOURCES);
        let d2 = desired_from_yaml("dm.yaml", &SOURCES.replace("host: h1", "host: h1b")).unwrap();
        let p = plan(&d2, &live);
        let s1 = change(&p, "source.s1");
        assert!(s1.hold.is_none(), "{:?}", s1.hold);
        assert_eq!(s1.action, ConfigAction::Update);
        assert_eq!(s1.runtime, [RuntimeAction::StopRelay, RuntimeAction::StartRelay]);
        let r = s1.relay.as_ref().unwrap();
        assert_eq!((r.stop.as_slice(), r.restarted.as_slice()), (&["w1".to_string()][..], &["w1".to_string()][..]));
        assert!(r.start_on_bound_worker);
        assert!(s1.reasons.iter().any(|x| x.contains("46025")), "{:?}", s1.reasons);
        // Without `relay` declared the same update is held, as before.
        let undeclared = SOURCES.replace(", relay: {enabled: true}}", "}").replace("host: h1", "host: h1b");
        let d3 = desired_from_yaml("dm.yaml", &undeclared).unwrap();
        let p = plan(&d3, &live);
        assert_eq!(change(&p, "source.s1").hold.as_ref().unwrap().kind, HoldKind::Blocked);
        let _ = d;
    }

    #[test]
    fn relay_on_a_worker_bound_elsewhere_is_blocked_and_one_freed_by_the_plan_is_not() {
        let (_, live) = applied(SOURCES);
        // s2 asks for w1 (bound to s1): 46021.
        let d = desired_from_yaml("dm.yaml", &SOURCES.replace("workers: [w3]", "workers: [w1]")).unwrap();
        let h = change(&plan(&d, &live), "source.s2").hold.clone().unwrap();
        assert!(h.kind == HoldKind::Blocked && h.reason.contains("46021"), "{h:?}");
        // s1 asks for w3, which relays s2; the same plan moves s2's relay to w4: allowed.
        let yaml = SOURCES
            .replace("relay: {enabled: true}}", "relay: {enabled: true, workers: [w1, w3]}}")
            .replace("workers: [w3]", "workers: [w4]");
        let d = desired_from_yaml("dm.yaml", &yaml).unwrap();
        let p = plan(&d, &live);
        assert!(change(&p, "source.s1").hold.is_none(), "{:?}", change(&p, "source.s1").hold);
        assert_eq!(change(&p, "source.s1").relay.as_ref().unwrap().start, ["w3"]);
        assert_eq!(change(&p, "source.s2").relay.as_ref().unwrap().stop, ["w3"]);
        // ... but not when nothing frees it (46020).
        let yaml = SOURCES.replace("relay: {enabled: true}}", "relay: {enabled: true, workers: [w1, w3]}}");
        let d = desired_from_yaml("dm.yaml", &yaml).unwrap();
        let h = change(&plan(&d, &live), "source.s1").hold.clone().unwrap();
        assert!(h.reason.contains("46020"), "{h:?}");
    }

    #[test]
    fn a_transfer_pauses_running_tasks_and_waits_for_the_sync_unit() {
        let (_, mut live) = applied(SOURCES);
        let d = desired_from_yaml("dm.yaml", &SOURCES.replace("worker_name: w1", "worker_name: w4")).unwrap();
        let p = plan(&d, &live);
        let s1 = change(&p, "source.s1");
        assert_eq!(s1.runtime, [RuntimeAction::StopRelay, RuntimeAction::Transfer, RuntimeAction::StartRelay]);
        let b = s1.binding.as_ref().unwrap();
        assert_eq!((b.from.as_deref(), b.to.as_deref()), (Some("w1"), Some("w4")));
        assert_eq!(b.paused_tasks, ["t1"]);
        assert!(b.confirm, "no relay on another worker while it moves");
        assert!(s1.attributes.iter().any(|a| a.path == "worker_name"));
        // A task still loading: DM would refuse (46019), so the move waits.
        let t = live.tasks["t1"].task.clone();
        live.tasks.get_mut("t1").unwrap().status = Some(status(&t, Stage::Running, Unit::Load));
        let h = change(&plan(&d, &live), "source.s1").hold.clone().unwrap();
        assert!(h.kind == HoldKind::Deferred && h.reason.contains("t1 in Load"), "{h:?}");
        // What `apply --wait-for-sync` waits for before it plans again.
        assert_eq!(h.wait, Some(HoldWait { tasks: vec!["t1".into()], until: WaitUntil::Sync }));
        // To a worker that is bound elsewhere: blocked.
        let d = desired_from_yaml("dm.yaml", &SOURCES.replace("worker_name: w1", "worker_name: w2")).unwrap();
        let h = change(&plan(&d, &live), "source.s1").hold.clone().unwrap();
        assert!(h.kind == HoldKind::Blocked && h.reason.contains("46006"), "{h:?}");
    }

    #[test]
    fn relay_through_the_config_flag_is_stopped_by_the_quick_path_without_a_put() {
        let (d, mut live) = applied(SOURCES);
        live.relay = Some(BTreeMap::from([("s2".into(), running(&["w3"]))]));
        live.relay_sources = Some(BTreeSet::from(["s2".into()]));
        live.sources.get_mut("s1").unwrap().relay_config.as_mut().unwrap().enable_relay = Some(true);
        let p = plan(&d, &live);
        let s1 = change(&p, "source.s1");
        assert_eq!(s1.action, ConfigAction::NoOp, "no PUT for the flag: {:?}", s1.attributes);
        let r = s1.relay.as_ref().unwrap();
        assert!(r.stop_config_flag && r.start_on_bound_worker, "{r:?}");
    }

    #[test]
    fn new_sources_beyond_the_free_workers_stay_unbound_and_block_their_tasks() {
        let yaml = r#"
sources:
  - {source_name: n1, host: h1, port: 3306, user: u}
  - {source_name: n2, host: h2, port: 3306, user: u}
  - {source_name: n3, host: h3, port: 3306, user: u, worker_name: w2}
tasks:
  - name: t1
    task_mode: incremental
    target_config: {host: tidb, port: 4000, user: root, password: tpw}
    source_config:
      source_conf: [{source_name: n2, binlog_name: mysql-bin.000001, binlog_pos: 4}]
"#;
        let d = desired_from_yaml("dm.yaml", yaml).unwrap();
        let mut live = Live::empty("http://x", ServerVersion::parse("v8.5.4"));
        live.workers = Some(vec![w("w1", "free", ""), w("w2", "free", "")]);
        let p = plan(&d, &live);
        // n3 claims w2; n1 takes w1 (name order); n2 finds none.
        assert!(change(&p, "source.n1").binding.is_none());
        assert!(change(&p, "source.n2").binding.as_ref().unwrap().stays_unbound);
        let h = change(&p, "task.t1").hold.clone().unwrap();
        assert!(h.kind == HoldKind::Blocked && h.reason.contains("46009") && h.reason.contains("n2"), "{h:?}");
        assert!(p.warnings.iter().any(|w| w.contains("1 new source(s) will stay unbound") && w.contains("n2")));
        // Unknown workers: nothing is predicted.
        live.workers = None;
        let p = plan(&d, &live);
        assert!(change(&p, "task.t1").hold.is_none());
    }
}
