//! The simulated cluster: workers, sources, tasks and their subtasks, templates; and the state-changing rules
//! of docs/dm-behaviour.md §3–§13 (relay and enable/disable live in `relay.rs`, templates in `templates.rs`).
//! Handlers call one method per endpoint with already validated input; each returns the answer or a
//! [`SimError`] and changes nothing when it fails, unless the server itself leaves a partial change behind.
//!
//! `State` is one type, its methods split by resource: `sources.rs`, `tasks.rs` (create, read, update, delete),
//! `status.rs` (the clock, start, stop, query-status), `tables.rs` (what subtasks report through their worker),
//! `workers.rs` (binding, masters and workers), `controls.rs` (test-only controls), `goformat.rs` (Go formats).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::bound;
use super::catalog;
use super::checkpoint::{self, Binlogs, RunStart, SubCkpt, UpstreamId};
use super::downstream::{self, Accounts};
use super::errors::{SimError, e};
use super::legacy::FullCfg;
use super::precheck::{self, MetaCheck};
use super::project::{self, SubCfg};
use super::relay;
use super::shard::ShardDdlState;
use super::taskargs;
use super::{Generation, SimOptions};
use crate::dm::types::*;

mod controls;
mod goformat;
mod sources;
mod status;
mod tables;
mod tasks;
mod tracked;
mod workers;

pub(crate) use goformat::valid_timezone;

/// An answer of a successful operation.
#[derive(Debug)]
pub(crate) enum Out {
    Json(u16, Value),
    /// A status with an empty body (200 from handlers that never set one, 204 from deletes).
    Empty(u16),
    /// `GET /sources/{unknown}`: 404 with an empty body (docs/dm-behaviour.md §2).
    NotFoundEmpty,
}

pub(crate) type R = Result<Out, SimError>;

/// What DM-master wants a subtask to be (etcd); the worker's observed stage follows asynchronously.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expected {
    Running,
    Stopped,
}

#[derive(Debug, Clone)]
pub(crate) struct Worker {
    pub name: String,
    pub addr: String,
    pub offline: bool,
    /// Registered (and still bound) but not answering RPCs: status shows 38008 (docs/dm-behaviour.md §8).
    pub unreachable: bool,
    pub bound: Option<String>,
    /// Source this worker relays for (started through `/relay/enable`). Kept while the worker is offline, as DM's
    /// scheduler keeps it (docs/dm-behaviour.md R4.3).
    pub relay: Option<String>,
    /// The worker's relay stopped on this error (a test control): its relay status shows `Paused` with it.
    pub relay_error: Option<String>,
}

impl Worker {
    pub fn stage(&self) -> &'static str {
        if self.offline {
            "offline"
        } else if self.bound.is_some() {
            "bound"
        } else if self.relay.is_some() {
            "relay"
        } else {
            "free"
        }
    }
    fn is_free(&self) -> bool {
        !self.offline && self.bound.is_none() && self.relay.is_none()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct SourceEntry {
    /// Stored config: password as last written, server-filled flavor/purge/relay_config.
    pub cfg: Source,
    pub server_id: u32,
    pub last_bound: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct SubTask {
    pub source: String,
    /// The stored task config for this source, as an OpenAPI task (converted on read, docs/dm-behaviour.md §9).
    pub cfg: Task,
    pub expected: Expected,
    pub observed: Stage,
    pub unit: Unit,
    /// An observed-stage change in flight: (when it lands, to what).
    pub pending: Option<(Instant, Stage)>,
    pub run_since: Option<Instant>,
    /// Running time accumulated before `run_since` (the migration's progress).
    pub worked: Duration,
    pub error_msg: Option<String>,
    /// The upstream is case-insensitive: allow-list patterns are stored lowercased (docs/dm-behaviour.md §9).
    pub lower: bool,
    /// Table structures set through PUT table-structure: (schema, table) → SQL.
    pub tables: BTreeMap<(String, String), String>,
    /// The syncer's checkpoint and where each run began (docs/dm-behaviour.md §7, §8).
    pub ckpt: SubCkpt,
    /// Shard DDL coordination state set by a test control (docs/dm-behaviour.md §8).
    pub shard: ShardDdlState,
    /// The full configuration of a task created the dmctl way; `cfg` then holds its OpenAPI projection
    /// (docs/dm-behaviour.md §11).
    pub dmctl: Option<Box<FullCfg>>,
}

#[derive(Debug, Clone)]
pub(crate) struct TaskEntry {
    pub subtasks: BTreeMap<String, SubTask>,
    /// `start_time`, `safe_mode_time_duration`, `timeout_duration` as stored task CLI args.
    pub cli_args: BTreeMap<String, String>,
}

pub(crate) struct State {
    pub generation: Generation,
    pub stage_delay: Duration,
    pub rng: StdRng,
    pub workers: BTreeMap<String, Worker>,
    pub sources: BTreeMap<String, SourceEntry>,
    pub tasks: tracked::Tasks,
    pub templates: BTreeMap<String, Value>,
    /// The upstreams' binlogs and the checkpoints left in downstream meta schemas after deletes.
    pub binlog: Binlogs,
    pub catalogs: HashMap<String, BTreeMap<String, Vec<String>>>,
    pub cluster_id: u64,
    pub topology: Option<Value>,
    pub masters: Vec<ClusterMaster>,
    /// The next N status reads fail like a worker without subtasks yet (49001, docs/dm-behaviour.md §8).
    pub status_glitches: u32,
    /// The fake downstream's accounts (docs/dm-behaviour.md §10).
    pub downstream: Accounts,
    /// No subtask changes by itself before this instant (computed by `advance`); `None`: walk them on the next
    /// `advance`. Whoever may change subtasks resets it ([`State::unsettle`]).
    pub settled_until: Option<Instant>,
}

/// Keeps `Instant + delay` far from overflow whatever a knob says.
pub(crate) const MAX_STAGE_DELAY: Duration = Duration::from_secs(24 * 3600);

impl State {
    pub fn new(opts: &SimOptions, listen: &str) -> State {
        let seed = opts.seed.unwrap_or_else(rand::random);
        let mut rng = StdRng::seed_from_u64(seed);
        let workers = (1..=opts.workers)
            .map(|i| {
                let name = format!("worker{i}");
                (
                    name.clone(),
                    Worker {
                        name,
                        addr: format!("127.0.0.1:{}", 8262 + i),
                        offline: false,
                        unreachable: false,
                        bound: None,
                        relay: None,
                        relay_error: None,
                    },
                )
            })
            .collect();
        let cluster_id = rng.random_range(1_000_000_000_000_000u64..9_000_000_000_000_000u64);
        State {
            generation: opts.generation,
            stage_delay: opts.stage_delay.min(MAX_STAGE_DELAY),
            rng,
            workers,
            sources: BTreeMap::new(),
            tasks: tracked::Tasks::default(),
            templates: BTreeMap::new(),
            binlog: Binlogs::new(seed),
            catalogs: HashMap::new(),
            cluster_id,
            topology: None,
            masters: vec![ClusterMaster {
                name: "master1".into(),
                alive: true,
                leader: true,
                addr: listen.to_string(),
            }],
            status_glitches: 0,
            downstream: Accounts::default(),
            settled_until: None,
        }
    }

    /// Something may have changed a subtask (a stage, a pending change, its mode): the next `advance` walks them all.
    pub(crate) fn unsettle(&mut self) {
        self.settled_until = None;
    }

    fn head(&self) -> bool {
        self.generation.head()
    }

    /// Time a full/all task spends in each of Dump and Load.
    pub(crate) fn phase(&self) -> Duration {
        self.stage_delay.saturating_mul(3).max(Duration::from_millis(3))
    }
}

/// Who the upstream of a source is, for positions and GTIDs.
fn upstream_id<'a>(source: &'a str, src: &SourceEntry) -> UpstreamId<'a> {
    UpstreamId {
        source,
        mariadb: src.cfg.flavor.as_deref() == Some("mariadb"),
        server_id: src.server_id,
        gtid_mode: !catalog::gtid_off(&src.cfg.host),
        enable_gtid: src.cfg.enable_gtid,
    }
}

/// Where a task's checkpoints live: its target database, meta schema and name.
fn meta_key(task: &Task) -> checkpoint::MetaKey {
    let t = &task.target_config;
    (format!("{}:{}", t.host, t.port), task.meta_schema.clone().unwrap_or_default(), task.name.clone())
}

/// Running time of a subtask up to `now`.
fn total_worked(sub: &SubTask, now: Instant) -> Duration {
    sub.worked + sub.run_since.map(|t| now.saturating_duration_since(t)).unwrap_or_default()
}

/// A subtask's worker (re)starts it: record where its syncer begins and with which safe mode; a start position
/// purged upstream pauses it with the syncer's error (docs/dm-behaviour.md §7, §8).
fn run_started(
    binlog: &mut Binlogs,
    sources: &BTreeMap<String, SourceEntry>,
    cli_args: &BTreeMap<String, String>,
    sub: &mut SubTask,
    phase: Duration,
) {
    let Some(src) = sources.get(&sub.source) else { return };
    let meta = project::to_subcfg(&sub.cfg, &sub.source, false).ok().and_then(|c| c.meta);
    let rs = RunStart {
        id: upstream_id(&sub.source, src),
        mode: &sub.cfg.task_mode,
        meta,
        cli_args,
        cfg_safe_mode: sub.cfg.source_config.incr_migrate_conf.as_ref().and_then(|i| i.safe_mode).unwrap_or(false),
        safe_mode_duration: sub.dmctl.as_ref().and_then(|d| d.safe_mode_duration()),
        worked: sub.worked,
        phase,
    };
    if let Some(err) = binlog.on_run_start(&mut sub.ckpt, rs) {
        sub.observed = Stage::Paused;
        sub.run_since = None;
        sub.error_msg = Some(format!(
            "[code=36069:class=sync-unit:scope=upstream:level=high], Message: get binlog event error: {err}, Workaround: Please check that the start position is still present upstream.\n"
        ));
    }
}

/// The unit a subtask of `mode` is in after `worked` of running, and whether it has finished.
pub(crate) fn unit_for(mode: &str, worked: Duration, phase: Duration) -> (Unit, bool) {
    match mode {
        "incremental" => (Unit::Sync, false),
        "dump" => (Unit::Dump, worked >= phase),
        "load" => (Unit::Load, worked >= phase),
        "full" => {
            if worked < phase {
                (Unit::Dump, false)
            } else {
                (Unit::Load, worked >= phase * 2)
            }
        }
        // all
        _ => {
            if worked < phase {
                (Unit::Dump, false)
            } else if worked < phase * 2 {
                (Unit::Load, false)
            } else {
                (Unit::Sync, false)
            }
        }
    }
}

/// The running time a subtask keeps when it stops after `worked`: all of it, except in an unfinished dump, which
/// DM's dump unit cannot resume (its `Resume` runs the whole dump again): the next run dumps from the start
/// (docs/dm-behaviour.md R8.16).
pub(crate) fn kept_work(mode: &str, worked: Duration, phase: Duration) -> Duration {
    match unit_for(mode, worked, phase) {
        (Unit::Dump, false) => Duration::ZERO,
        _ => worked,
    }
}

/// Whether `advance_sub(sub, now, _)` would leave `sub` unchanged: no stage change due, and not running in a unit
/// that time moves on (only an incremental subtask stays in Sync for ever).
fn at_rest(sub: &SubTask, now: Instant) -> bool {
    let due = matches!(&sub.pending, Some((due, _)) if now >= *due);
    let timed = sub.observed == Stage::Running
        && sub.run_since.is_some()
        && !(sub.unit == Unit::Sync && sub.cfg.task_mode == "incremental");
    !due && !timed
}

/// When a subtask at rest would next change by itself.
enum Change {
    Never,
    At(Instant),
    /// Running through units that time moves on: every `advance` must look at it.
    Continuous,
}

fn next_change(sub: &SubTask) -> Change {
    let timed = sub.observed == Stage::Running
        && sub.run_since.is_some()
        && !(sub.unit == Unit::Sync && sub.cfg.task_mode == "incremental");
    match (&sub.pending, timed) {
        (_, true) => Change::Continuous,
        (Some((due, _)), false) => Change::At(*due),
        (None, false) => Change::Never,
    }
}

fn advance_sub(sub: &mut SubTask, now: Instant, phase: Duration) {
    if let Some((due, target)) = sub.pending.clone()
        && now >= due
    {
        if sub.observed == Stage::Running
            && let Some(since) = sub.run_since.take()
        {
            sub.worked += due.saturating_duration_since(since);
            if target != Stage::Running {
                sub.worked = kept_work(&sub.cfg.task_mode, sub.worked, phase);
            }
        }
        sub.pending = None;
        sub.observed = target.clone();
        if target == Stage::Running {
            sub.run_since = Some(due);
            sub.error_msg = None;
        }
    }
    if sub.observed == Stage::Running
        && let Some(since) = sub.run_since
    {
        let total = sub.worked + now.saturating_duration_since(since);
        let (unit, finished) = unit_for(&sub.cfg.task_mode, total, phase);
        sub.unit = unit;
        if finished {
            sub.worked = total;
            sub.run_since = None;
            sub.observed = Stage::Finished;
        }
    }
}

/// Write the expected stage and schedule the observed change the worker will make.
pub(crate) fn set_expected(sub: &mut SubTask, exp: Expected, now: Instant, delay: Duration) {
    sub.expected = exp;
    let in_flight = sub.pending.as_ref().map(|(_, s)| s.clone());
    let target = match exp {
        // A finished subtask stays finished; everything else resumes.
        Expected::Running => match sub.observed {
            Stage::Finished => Stage::Finished,
            _ => Stage::Running,
        },
        // The worker pauses a running subtask: observed Paused; a never-started one stays Stopped.
        Expected::Stopped => match (&sub.observed, in_flight) {
            (Stage::Finished, _) => Stage::Finished,
            (Stage::Stopped, Some(Stage::Running)) => Stage::Paused,
            (Stage::Stopped, _) => Stage::Stopped,
            _ => Stage::Paused,
        },
    };
    if target == sub.observed && !(target == Stage::Running && sub.error_msg.is_some()) {
        sub.pending = None;
    } else if sub.pending.as_ref().map(|(_, s)| s) != Some(&target) {
        sub.pending = Some((now + delay, target));
    }
}

/// A list answer, `{"total": N, "data": [...]}` (keys in that order), moving the items in: `json!` would copy every
/// item through the serializer, which for the task list of a large fleet is megabytes.
pub(crate) fn list_answer(data: Vec<Value>) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("total".into(), Value::from(data.len()));
    m.insert("data".into(), Value::Array(data));
    Value::Object(m)
}

/// RFC 7386 JSON merge patch.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_by_mode() {
        let p = Duration::from_millis(10);
        assert_eq!(unit_for("all", Duration::ZERO, p), (Unit::Dump, false));
        assert_eq!(unit_for("all", Duration::from_millis(25), p), (Unit::Sync, false));
        assert_eq!(unit_for("full", Duration::from_millis(25), p), (Unit::Load, true));
        assert_eq!(unit_for("incremental", Duration::ZERO, p), (Unit::Sync, false));
        assert_eq!(unit_for("load", Duration::ZERO, p), (Unit::Load, false));
    }

    /// The per-list lookups answer what the per-item ones do, for every source: relay workers first (worker
    /// order), then the bound worker unless it is one of them; sources without a worker are absent (empty).
    #[test]
    fn list_lookups_equal_the_per_item_ones() {
        let opts = SimOptions { workers: 6, seed: Some(1), ..SimOptions::default() };
        let mut st = State::new(&opts, "127.0.0.1:8261");
        let set = |st: &mut State, w: &str, relay: Option<&str>, bound: Option<&str>| {
            let wk = st.workers.get_mut(w).unwrap();
            wk.relay = relay.map(String::from);
            wk.bound = bound.map(String::from);
        };
        set(&mut st, "worker1", Some("a"), Some("a"));
        set(&mut st, "worker2", Some("a"), None);
        set(&mut st, "worker3", None, Some("b"));
        set(&mut st, "worker4", Some("c"), None);
        set(&mut st, "worker5", Some("b"), Some("d"));
        for (task, sources) in [("t1", &["a", "b"][..]), ("t2", &["b"]), ("t3", &["e"])] {
            let entry = st.tasks.get_or_insert(task);
            for s in sources {
                entry.subtasks.insert((*s).to_string(), SubTask { source: (*s).to_string(), ..test_subtask() });
            }
        }
        let workers = st.status_workers_by_source();
        let tasks = st.tasks_by_source();
        for source in ["a", "b", "c", "d", "e", "f"] {
            assert_eq!(workers.get(source).cloned().unwrap_or_default(), st.status_workers(source), "{source}");
            assert_eq!(tasks.get(source).cloned().unwrap_or_default(), st.tasks_on(source), "{source}");
        }
        assert_eq!(st.status_workers("b"), ["worker5", "worker3"], "relay workers, then the bound one");
    }

    fn test_subtask() -> SubTask {
        SubTask {
            source: String::new(),
            cfg: Task::default(),
            expected: Expected::Stopped,
            observed: Stage::Stopped,
            unit: Unit::Sync,
            pending: None,
            run_since: None,
            worked: Duration::ZERO,
            error_msg: None,
            lower: false,
            tables: BTreeMap::new(),
            ckpt: SubCkpt::default(),
            shard: ShardDdlState::default(),
            dmctl: None,
        }
    }

    /// DM's dump unit cannot resume: a subtask paused in its dump starts it over; in Load or Sync it keeps its
    /// progress (docs/dm-behaviour.md R8.16).
    #[test]
    fn a_subtask_paused_in_its_dump_dumps_again_from_the_start() {
        let phase = Duration::from_millis(300);
        let t0 = Instant::now();
        for (mode, ran, kept) in [
            ("all", 100, 0),
            ("all", 400, 400),
            ("all", 700, 700),
            ("full", 100, 0),
            ("dump", 100, 0),
            ("load", 100, 100),
            ("incremental", 100, 100),
        ] {
            let ran = Duration::from_millis(ran);
            let mut sub = SubTask {
                cfg: Task { task_mode: mode.to_string(), ..Default::default() },
                expected: Expected::Stopped,
                observed: Stage::Running,
                run_since: Some(t0),
                pending: Some((t0 + ran, Stage::Paused)),
                ..test_subtask()
            };
            advance_sub(&mut sub, t0 + ran, phase);
            assert_eq!(sub.observed, Stage::Paused, "{mode}");
            assert_eq!(sub.worked, Duration::from_millis(kept), "{mode} after {ran:?}");
            // Started again: the unit follows from the kept progress.
            sub.pending = Some((t0 + ran, Stage::Running));
            advance_sub(&mut sub, t0 + ran, phase);
            assert_eq!(sub.unit, unit_for(mode, Duration::from_millis(kept), phase).0, "{mode}");
        }
    }

    /// The fast path of `State::advance` skips exactly the subtasks `advance_sub` would not change.
    #[test]
    fn at_rest_subtasks_are_unchanged_by_advance_sub() {
        let now = Instant::now() + Duration::from_secs(10);
        let phase = Duration::from_millis(15);
        let mut skipped = 0;
        for mode in ["incremental", "all", "full", "dump", "load"] {
            for observed in [Stage::Running, Stage::Paused, Stage::Stopped, Stage::Finished] {
                for unit in [Unit::Sync, Unit::Dump, Unit::Load, Unit::Invalid] {
                    for pending in [None, Some(now), Some(now - Duration::from_secs(1)), Some(now + phase)] {
                        for since in [None, Some(now - Duration::from_millis(1)), Some(now - Duration::from_secs(5))] {
                            let cfg = Task { task_mode: mode.to_string(), ..Default::default() };
                            let sub = SubTask {
                                source: "s".into(),
                                cfg,
                                expected: Expected::Running,
                                observed: observed.clone(),
                                unit: unit.clone(),
                                pending: pending.map(|due| (due, Stage::Running)),
                                run_since: since,
                                worked: Duration::from_millis(2),
                                ..test_subtask()
                            };
                            let mut advanced = sub.clone();
                            advance_sub(&mut advanced, now, phase);
                            if at_rest(&sub, now) {
                                skipped += 1;
                                assert_eq!(format!("{advanced:?}"), format!("{sub:?}"), "{mode} {observed:?} {unit:?}");
                            }
                        }
                    }
                }
            }
        }
        assert!(skipped > 100, "the fast path is taken: {skipped}");
    }

    #[test]
    fn merge_patch_rfc7386() {
        let mut v = json!({"a": 1, "b": {"c": 2, "d": 3}});
        merge_patch(&mut v, &json!({"a": null, "b": {"c": 5}}));
        assert_eq!(v, json!({"b": {"c": 5, "d": 3}}));
    }
}
