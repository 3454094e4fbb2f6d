//! The simulated cluster: workers, sources, tasks and their subtasks, templates; and the state-changing rules
//! of docs/dm-behaviour.md §3–§13 (relay and enable/disable live in `relay.rs`, templates in `templates.rs`).
//! Handlers call one method per endpoint with already validated input; each returns the answer or a
//! [`SimError`] and changes nothing when it fails, unless the server itself leaves a partial change behind.

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
    pub tasks: BTreeMap<String, TaskEntry>,
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
            tasks: BTreeMap::new(),
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
        }
    }

    fn head(&self) -> bool {
        self.generation.head()
    }

    /// Time a full/all task spends in each of Dump and Load.
    pub(crate) fn phase(&self) -> Duration {
        self.stage_delay.saturating_mul(3).max(Duration::from_millis(3))
    }

    // ------------------------------------------------------------------------------------------ time

    /// Land the asynchronous transitions that are due and move running subtasks through their units.
    pub fn advance(&mut self, now: Instant) {
        let phase = self.phase();
        let State { tasks, sources, binlog, .. } = self;
        for t in tasks.values_mut() {
            for sub in t.subtasks.values_mut() {
                let starts = matches!(&sub.pending, Some((due, Stage::Running)) if now >= *due);
                advance_sub(sub, now, phase);
                if starts {
                    run_started(binlog, sources, &t.cli_args, sub, phase);
                }
            }
        }
    }

    // ------------------------------------------------------------------------------------------ binding

    pub fn bound_worker(&self, source: &str) -> Option<&Worker> {
        self.workers.values().find(|w| w.bound.as_deref() == Some(source))
    }

    /// Bind a source to a worker in DM's order of preference (docs/dm-behaviour.md §12): a relay worker of the source,
    /// its last-bound worker if free, any free worker.
    fn try_bind(&mut self, source: &str) -> bool {
        if self.bound_worker(source).is_some() {
            return true;
        }
        let last = self.sources.get(source).and_then(|s| s.last_bound.clone());
        let pick = self
            .workers
            .values()
            .find(|w| !w.offline && w.bound.is_none() && w.relay.as_deref() == Some(source))
            .or_else(|| last.as_ref().and_then(|l| self.workers.get(l)).filter(|w| w.is_free()))
            .or_else(|| self.workers.values().find(|w| w.is_free()))
            .map(|w| w.name.clone());
        match pick {
            Some(w) => {
                self.bind(source, &w);
                true
            }
            None => false,
        }
    }

    fn bind(&mut self, source: &str, worker: &str) {
        if let Some(w) = self.workers.get_mut(worker) {
            w.bound = Some(source.to_string());
        }
        if let Some(s) = self.sources.get_mut(source) {
            s.last_bound = Some(worker.to_string());
        }
    }

    /// A freed worker binds an unbound source (sources in name order).
    fn bind_unbound(&mut self) {
        let unbound: Vec<String> = self.sources.keys().filter(|s| self.bound_worker(s).is_none()).cloned().collect();
        for s in unbound {
            if !self.try_bind(&s) {
                break;
            }
        }
    }

    /// Workers relaying for `source` because they were named in `/relay/enable` (the scheduler's relay workers).
    pub(crate) fn relay_workers(&self, source: &str) -> Vec<String> {
        self.workers.values().filter(|w| w.relay.as_deref() == Some(source)).map(|w| w.name.clone()).collect()
    }

    pub(crate) fn tasks_on(&self, source: &str) -> Vec<String> {
        self.tasks.iter().filter(|(_, t)| t.subtasks.contains_key(source)).map(|(n, _)| n.clone()).collect()
    }

    pub(crate) fn set_expected_on_source(&mut self, source: &str, exp: Expected, now: Instant) {
        let delay = self.stage_delay;
        for t in self.tasks.values_mut() {
            if let Some(sub) = t.subtasks.get_mut(source) {
                set_expected(sub, exp, now, delay);
            }
        }
    }

    // ------------------------------------------------------------------------------------------ sources

    /// The upstream checks of `CheckAndAdjustSourceConfigFunc`: connect, detect flavor, check GTID.
    fn check_upstream(&self, src: &Source) -> Result<String, SimError> {
        if src.source_name.is_empty() {
            return Err(SimError::new(40005, "source-id is empty").workaround("Please set the `source_name`."));
        }
        if src.source_name.chars().count() > 32 {
            return Err(SimError::new(
                40006,
                format!("the length of source-id {} is longer than 32, which is not supported", src.source_name),
            ));
        }
        downstream::connect_upstream(&src.host, src.port)?;
        let flavor = match src.flavor.as_deref() {
            None | Some("") => catalog::flavor(&src.host).to_string(),
            Some(f @ ("mysql" | "mariadb")) => f.to_string(),
            Some(f) => {
                return Err(SimError::new(11010, format!("flavor {f} not supported"))
                    .workaround("Please use `mysql` or `mariadb`."));
            }
        };
        if src.enable_gtid && catalog::gtid_off(&src.host) {
            return Err(SimError::new(26007, "gtid mode of the upstream is OFF but `enable_gtid` is true")
                .workaround("Please enable GTID_MODE on the upstream, or set `enable_gtid` to false."));
        }
        Ok(flavor)
    }

    /// The stored form of a source config: server-filled flavor, purge and relay_config.
    fn adjust_source(&mut self, mut src: Source, flavor: String) -> (Source, u32) {
        src.flavor = Some(flavor);
        let p = src.purge.take().unwrap_or_default();
        src.purge = Some(Purge {
            interval: Some(p.interval.unwrap_or(3600)),
            expires: Some(p.expires.unwrap_or(0)),
            remain_space: Some(p.remain_space.unwrap_or(15)),
        });
        let r = src.relay_config.take().unwrap_or_default();
        src.relay_config = Some(RelayConfig {
            enable_relay: Some(r.enable_relay.unwrap_or(false)),
            relay_binlog_name: Some(r.relay_binlog_name.unwrap_or_default()),
            relay_binlog_gtid: Some(r.relay_binlog_gtid.unwrap_or_default()),
            // `CheckAndAdjust` sets "relay-dir" when empty; the spec's "./relay_log" comes only from injection.
            relay_dir: Some(r.relay_dir.filter(|d| !d.is_empty()).unwrap_or_else(|| "relay-dir".into())),
        });
        src.status_list = None;
        src.task_name_list = None;
        let server_id = self.rng.random_range(1u32..u32::MAX);
        (src, server_id)
    }

    pub fn create_source(&mut self, req: CreateSourceRequest, echo: Value) -> R {
        let flavor = self.check_upstream(&req.source)?;
        let name = req.source.source_name.clone();
        // With a worker named, the worker is checked before the name (`AddSourceCfgWithWorker`: 46004, 46033, then
        // 46007; docs/dm-behaviour.md R3.1).
        if let Some(w) = req.worker_name.as_deref() {
            let worker = self.workers.get(w).ok_or_else(|| e::worker_not_exist(w))?;
            if !worker.is_free() {
                return Err(SimError::new(46033, format!("dm-worker with name {w} not free")));
            }
        }
        if self.sources.contains_key(&name) {
            return Err(e::source_exists(&name));
        }
        let enable_relay = req.source.relay_config.as_ref().and_then(|r| r.enable_relay).unwrap_or(false);
        let (cfg, server_id) = self.adjust_source(req.source, flavor);
        self.sources.insert(name.clone(), SourceEntry { cfg, server_id, last_bound: None });
        match req.worker_name.as_deref() {
            Some(w) => self.bind(&name, w),
            None => {
                self.try_bind(&name);
            }
        }
        // `enable_relay` at create time runs `/relay/enable` for the bound worker *after* the source was persisted:
        // 40070 when unbound, else 46030 because the config itself has `enable_relay` (docs/dm-behaviour.md §3,
        // upstream #4985).
        if enable_relay {
            self.enable_relay(&name, EnableRelayRequest::default())?;
        }
        Ok(Out::Json(201, echo))
    }

    pub fn list_sources(&mut self, with_status: bool, enable_relay: Option<bool>) -> R {
        let mut names: Vec<String> = self.sources.keys().cloned().collect();
        if let Some(want) = enable_relay {
            names.retain(|n| self.relay_workers(n).is_empty() != want);
        }
        names.shuffle(&mut self.rng);
        let data: Vec<Value> = names.iter().map(|n| self.source_view(n, with_status)).collect();
        Ok(Out::Json(200, json!({"total": data.len(), "data": data})))
    }

    pub fn get_source(&mut self, name: &str, with_status: bool) -> R {
        // The only handler answer that is not 400: 404 with an empty body (docs/dm-behaviour.md §2).
        if !self.sources.contains_key(name) {
            return Ok(Out::NotFoundEmpty);
        }
        Ok(Out::Json(200, self.source_view(name, with_status)))
    }

    fn source_view(&mut self, name: &str, with_status: bool) -> Value {
        let Some(s) = self.sources.get(name) else { return Value::Null };
        let mut v = project::source_view(&s.cfg);
        if with_status {
            let status = self.source_status_list(name);
            let mut tasks = self.tasks_on(name);
            tasks.shuffle(&mut self.rng);
            v["status_list"] = json!(status);
            v["task_name_list"] = json!(tasks);
        }
        v
    }

    pub fn update_source(&mut self, path_name: &str, req: UpdateSourceRequest, echo: Value, now: Instant) -> R {
        let old = self.sources.get(path_name).ok_or_else(|| e::source_not_exist(path_name))?;
        let mut src = req.source;
        // v6.1+: an absent (or null) password keeps the stored one; "******" is stored literally (docs/dm-behaviour.md
        // §3).
        if src.password.is_none() {
            src.password = old.cfg.password.clone();
        }
        let flavor = self.check_upstream(&src)?;
        // The body's source_name decides which config is written (docs/dm-behaviour.md §3).
        let target = src.source_name.clone();
        let old_target = self.sources.get(&target).ok_or_else(|| e::source_not_exist(&target))?;
        let old_enable = old_target.cfg.enable;
        // `UpdateSourceCfg`: 46025 while a task on it is expected Running or relay is started (docs/dm-behaviour.md
        // §3).
        self.check_source_cfg_update(&target)?;
        let new_enable = src.enable;
        let last_bound = old_target.last_bound.clone();
        let (cfg, server_id) = self.adjust_source(src, flavor);
        self.sources.insert(target.clone(), SourceEntry { cfg, server_id, last_bound });
        if new_enable != old_enable && self.bound_worker(path_name).is_some() {
            let exp = if new_enable { Expected::Running } else { Expected::Stopped };
            self.set_expected_on_source(path_name, exp, now);
        }
        Ok(Out::Json(200, echo))
    }

    pub fn delete_source(&mut self, name: &str, force: bool) -> R {
        if !self.sources.contains_key(name) {
            return Err(e::source_not_exist(name));
        }
        let tasks = self.tasks_on(name);
        if !tasks.is_empty() && !force {
            return Err(e::source_has_tasks(name, &tasks));
        }
        let relay = self.relay_workers(name);
        if !relay.is_empty() {
            return Err(SimError::new(
                46023,
                format!("source {name} can only be removed after relay is stopped on workers {relay:?}"),
            )
            .workaround("Please disable relay of the source first."));
        }
        // With force, the source's subtask leaves every task; a task with no subtask left is gone.
        for t in &tasks {
            if let Some(entry) = self.tasks.get_mut(t) {
                entry.subtasks.remove(name);
                if entry.subtasks.is_empty() {
                    self.tasks.remove(t);
                }
            }
        }
        self.sources.remove(name);
        let mut freed = false;
        for w in self.workers.values_mut() {
            if w.bound.as_deref() == Some(name) {
                w.bound = None;
                freed = true;
            }
        }
        if freed {
            self.bind_unbound();
        }
        Ok(Out::Empty(204))
    }

    pub fn source_status(&mut self, name: &str) -> R {
        if !self.sources.contains_key(name) {
            return Err(e::source_not_exist(name));
        }
        let data = self.source_status_list(name);
        Ok(Out::Json(200, json!({"total": data.len(), "data": data})))
    }

    pub fn transfer_source(&mut self, name: &str, worker: &str, now: Instant) -> R {
        if !self.sources.contains_key(name) {
            return Err(e::source_not_exist(name));
        }
        let w = self.workers.get(worker).ok_or_else(|| e::worker_not_exist(worker))?;
        let current = self.bound_worker(name).map(|w| w.name.clone());
        if current.as_deref() == Some(worker) {
            return Ok(Out::Empty(200));
        }
        if w.offline || w.bound.is_some() {
            return Err(SimError::new(
                46006,
                format!("invalid stage transformation for dm-worker {worker}, from {} to bound", w.stage()),
            ));
        }
        if let Some(r) = &w.relay
            && r != name
        {
            return Err(SimError::new(
                46027,
                format!(
                    "require DM worker [{worker}] to be bound to source [{name}], but it has been started relay for \
                     source [{r}]"
                ),
            )
            .workaround("If you intend to bind the source with worker, you can stop-relay for current source."));
        }
        // With any task expected Running, every subtask on the old worker must be in the Sync unit, the stopped ones
        // too: DM asks the worker for all its subtasks (docs/dm-behaviour.md R3.12).
        let any_running =
            self.tasks.values().any(|t| t.subtasks.get(name).is_some_and(|s| s.expected == Expected::Running));
        let subtasks: Vec<(String, Unit)> =
            self.tasks.iter().filter_map(|(n, t)| t.subtasks.get(name).map(|s| (n.clone(), s.unit.clone()))).collect();
        if any_running && current.is_some() && subtasks.iter().any(|(_, u)| *u != Unit::Sync) {
            let running: Vec<String> = self
                .tasks
                .iter()
                .filter(|(_, t)| t.subtasks.get(name).is_some_and(|s| s.expected == Expected::Running))
                .map(|(n, _)| n.clone())
                .collect();
            return Err(SimError::new(
                46019,
                format!(
                    "running tasks {} to be transferred on source {name} should in sync unit",
                    e::go_list(&running)
                ),
            )
            .workaround("Please use `pause-task [-s source ...] task` to pause them first."));
        }
        if let Some(c) = current
            && let Some(cw) = self.workers.get_mut(&c)
        {
            cw.bound = None;
        }
        self.bind(name, worker);
        // Running tasks are paused, re-bound, then resumed asynchronously (observed Running again after a delay).
        let delay = self.stage_delay;
        for t in self.tasks.values_mut() {
            if let Some(sub) = t.subtasks.get_mut(name)
                && sub.expected == Expected::Running
                && sub.observed == Stage::Running
            {
                if let Some(since) = sub.run_since.take() {
                    sub.worked += now.saturating_duration_since(since);
                }
                sub.observed = Stage::Paused;
                sub.pending = Some((now + delay, Stage::Running));
            }
        }
        self.bind_unbound();
        Ok(Out::Empty(200))
    }

    pub fn catalog(&self, source: &str) -> BTreeMap<String, Vec<String>> {
        let cat = self.catalogs.get(source).cloned().unwrap_or_else(|| catalog::default_catalog(source));
        if !self.case_insensitive(source) {
            return cat;
        }
        // `lower_case_table_names=1` stores every schema and table name in lower case.
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (db, tables) in cat {
            let t = out.entry(db.to_lowercase()).or_default();
            t.extend(tables.iter().map(|x| x.to_lowercase()));
            t.sort();
            t.dedup();
        }
        out
    }

    pub fn source_schemas(&mut self, name: &str) -> R {
        let src = self.sources.get(name).ok_or_else(|| e::source_not_exist(name))?;
        downstream::connect_upstream(&src.cfg.host, src.cfg.port)?;
        let v: Vec<String> = self.catalog(name).keys().cloned().collect();
        Ok(Out::Json(200, json!(v)))
    }

    pub fn source_tables(&mut self, name: &str, schema: &str) -> R {
        let src = self.sources.get(name).ok_or_else(|| e::source_not_exist(name))?;
        downstream::connect_upstream(&src.cfg.host, src.cfg.port)?;
        let v = self.catalog(name).get(schema).cloned().unwrap_or_default();
        Ok(Out::Json(200, json!(v)))
    }

    // ------------------------------------------------------------------------------------------ tasks

    pub(crate) fn case_insensitive(&self, source: &str) -> bool {
        self.sources.get(source).is_some_and(|s| catalog::case_insensitive(&s.cfg.host))
    }

    /// `Task.Adjust`, downstream connect, source existence, conversion (docs/dm-behaviour.md §5) and
    /// `SubTaskConfig.Adjust`, precheck: the checks create and update share (docs/dm-behaviour.md §5, §6). Returns
    /// the adjusted task, each source's converted config and the `check_result` text.
    fn prepare_task(&mut self, mut task: Task) -> Result<(Task, BTreeMap<String, SubCfg>, String), SimError> {
        // Fields the generation's Task struct lacks are silently dropped by the binding (docs/dm-behaviour.md §15).
        bound::strip_task(&mut task, self.generation);
        task.status_list = None;
        if task.meta_schema.as_deref().is_none_or(str::is_empty) {
            // Server-side default (Task.Adjust); Head's validator has already injected "dm-meta" when absent.
            task.meta_schema = Some("dm_meta".into());
        }
        if let Some(tz) = task.timezone.as_deref()
            && !valid_timezone(tz)
        {
            return Err(SimError::new(20008, format!("invalid timezone string: {tz}"))
                .workaround("Please check the `timezone` config in task configuration file."));
        }
        // The downstream connect of `AdjustTargetDBSessionCfg`: unresolvable, refusing or wrong password → 10001
        // (docs/dm-behaviour.md §5).
        self.connect_target(&task.target_config)?;
        let mut cfgs = BTreeMap::new();
        for sc in &task.source_config.source_conf {
            if !self.sources.contains_key(&sc.source_name) {
                return Err(e::source_not_exist(&sc.source_name));
            }
        }
        for sc in &task.source_config.source_conf {
            let cfg = project::to_subcfg(&task, &sc.source_name, self.case_insensitive(&sc.source_name))?;
            cfgs.insert(sc.source_name.clone(), cfg);
        }
        if task.strict_optimistic_shard_mode == Some(true) && task.shard_mode.as_deref() != Some("optimistic") {
            return Err(SimError::new(
                20066,
                "cannot enable `strict-optimistic-shard-mode` while `shard-mode` is not `optimistic`",
            ));
        }
        let import_mode = task.source_config.full_migrate_conf.as_ref().and_then(|f| f.import_mode.clone());
        if import_mode.as_deref() == Some("import-into") {
            if task.shard_mode.is_some() || task.source_config.source_conf.len() > 1 {
                return Err(SimError::new(20068, "import-into mode does not support sharding"));
            }
            let dir =
                task.source_config.full_migrate_conf.as_ref().and_then(|f| f.data_dir.clone()).unwrap_or_default();
            if !dir.contains("://") {
                return Err(SimError::new(20069, "import-into mode requires shared storage"));
            }
        }
        for sc in &task.source_config.source_conf {
            let src = &self.sources[&sc.source_name].cfg;
            downstream::connect_upstream(&src.host, src.port)?;
        }
        if cfgs.is_empty() {
            // No subtask config: DM's checker returns at once with an empty result.
            return Ok((task, cfgs, String::new()));
        }
        let metas: Vec<(String, Option<checkpoint::BinlogMeta>)> = task
            .source_config
            .source_conf
            .iter()
            .map(|sc| (sc.source_name.clone(), cfgs[&sc.source_name].meta.clone()))
            .collect();
        let physical =
            task.source_config.full_migrate_conf.as_ref().and_then(|f| f.import_mode.as_deref()) == Some("physical");
        let ignore = task.ignore_checking_items.clone().unwrap_or_default();
        let check = self.precheck(&task.task_mode, &ignore, task.enhance_online_schema_change, physical, &metas)?;
        Ok((task, cfgs, check))
    }

    /// DM's precheck over the task's sources, each with its start position (docs/dm-behaviour.md §5).
    pub(crate) fn precheck(
        &mut self,
        mode: &str,
        ignore: &[String],
        online_ddl: bool,
        physical: bool,
        metas: &[(String, Option<checkpoint::BinlogMeta>)],
    ) -> Result<String, SimError> {
        let checks: Vec<MetaCheck> = metas.iter().map(|(s, m)| self.meta_check(mode, s, m.as_ref())).collect();
        let instances: Vec<precheck::Instance> = metas
            .iter()
            .zip(checks)
            .filter_map(|((source, _), meta_check)| {
                let src = &self.sources.get(source)?.cfg;
                let relay = src.relay_config.as_ref().and_then(|r| r.enable_relay).unwrap_or(false)
                    || !self.relay_workers(source).is_empty();
                Some(precheck::Instance { host: &src.host, port: src.port, relay, meta_check })
            })
            .collect();
        precheck::run(mode, ignore, online_ddl, physical, &instances)
    }

    /// Whether DM's meta position checker runs for this source and what it finds: it runs for modes without a
    /// dump when a start position is set (a binlog name, or a GTID on a GTID source) and opens a binlog stream
    /// there, which fails once that binlog is purged upstream (docs/dm-behaviour.md §5).
    fn meta_check(&mut self, mode: &str, source: &str, meta: Option<&(String, i64, String)>) -> MetaCheck {
        let Some(src) = self.sources.get(source) else { return MetaCheck::Skip };
        let Some(m) = meta else { return MetaCheck::Skip };
        let enable_gtid = src.cfg.enable_gtid;
        if matches!(mode, "all" | "full" | "dump") || !(!m.0.is_empty() || (enable_gtid && !m.2.is_empty())) {
            return MetaCheck::Skip;
        }
        let id = upstream_id(source, src);
        let start = self.binlog.pos_of_meta(&id, m);
        // With GTIDs the checker asks for the meta's GTID set as given (an empty one when only a file is set).
        let gtid = enable_gtid.then_some(m.2.as_str());
        match self.binlog.purged_error(&id, start, gtid) {
            Some(err) => MetaCheck::Fails(err),
            None => MetaCheck::Passes,
        }
    }

    /// Connect to a task's target as `AdjustTargetDBSessionCfg` does (docs/dm-behaviour.md §5).
    pub(crate) fn connect_target(&self, t: &TargetConfig) -> Result<(), SimError> {
        self.downstream.connect(&t.host, t.port, &t.user, t.password.expose())
    }

    /// 201 `{task, check_result}` (v6.1+), not the docs' 200 `Task` (docs/dm-behaviour.md §5).
    pub fn create_task(&mut self, task: Task) -> R {
        let (task, cfgs, check) = self.prepare_task(task)?;
        let name = task.name.clone();
        let echo = bound::task_json(&task, self.generation);
        if cfgs.is_empty() {
            // `AddSubTasks` with no subtask config returns early without error: 201, and nothing is created.
            return Ok(Out::Json(201, json!({"task": echo, "check_result": check})));
        }
        // `AddSubTasks` checks 46014 (every subtask exists) before 46009, and 46009 only for the sources it would
        // add; a physical import refuses even a partial create with 46014 (docs/dm-behaviour.md §5).
        let existing: Vec<String> = cfgs
            .keys()
            .filter(|s| self.tasks.get(&name).is_some_and(|t| t.subtasks.contains_key(*s)))
            .cloned()
            .collect();
        let physical = cfgs.values().next().is_some_and(|c| c.full.import_mode == "physical")
            && matches!(task.task_mode.as_str(), "all" | "full" | "load");
        if existing.len() == cfgs.len() || (physical && !existing.is_empty()) {
            return Err(e::task_exists(&name, &existing));
        }
        let unbound: Vec<String> =
            cfgs.keys().filter(|s| !existing.contains(s) && self.bound_worker(s).is_none()).cloned().collect();
        if !unbound.is_empty() {
            return Err(e::sources_unbound(&unbound));
        }
        let task = self.stored_form(task);
        // Checkpoints left in the downstream meta by an earlier task of the same name are picked up
        // (docs/dm-behaviour.md §7).
        let kept = self.binlog.meta.remove(&meta_key(&task));
        let phase = self.phase();
        let lowers: BTreeMap<String, bool> = cfgs.keys().map(|s| (s.clone(), self.case_insensitive(s))).collect();
        let entry = self
            .tasks
            .entry(name.clone())
            .or_insert_with(|| TaskEntry { subtasks: BTreeMap::new(), cli_args: BTreeMap::new() });
        // A partial create adds only the missing sources; existing subtasks keep their config (docs/dm-behaviour.md
        // §5).
        for (source, _) in cfgs {
            if entry.subtasks.contains_key(&source) {
                continue;
            }
            let saved = kept.as_ref().and_then(|k| k.get(&source)).copied().unwrap_or_default();
            let worked = saved.worked;
            let lower = lowers.get(&source).copied().unwrap_or(false);
            let (unit, _) = unit_for(&task.task_mode, worked, phase);
            entry.subtasks.insert(
                source.clone(),
                SubTask {
                    source,
                    cfg: task.clone(),
                    expected: Expected::Stopped,
                    observed: Stage::Stopped,
                    unit,
                    pending: None,
                    run_since: None,
                    worked,
                    error_msg: None,
                    lower,
                    tables: BTreeMap::new(),
                    ckpt: SubCkpt { restored: saved.pos, ..Default::default() },
                    shard: ShardDdlState::default(),
                    dmctl: None,
                },
            );
        }
        Ok(Out::Json(201, json!({"task": echo, "check_result": check})))
    }

    pub(crate) fn task_view(&mut self, name: &str) -> Value {
        let generation = self.generation;
        let Some(entry) = self.tasks.get(name) else { return Value::Null };
        project::task_view(entry, generation, &mut self.rng)
    }

    /// `getTaskStatus` (docs/dm-behaviour.md §8): DM asks, per source, the named relay workers and the bound worker. A
    /// relay worker other than the bound one has no subtask at all and answers an empty list, which fails the whole
    /// call with 49001 for as long as that relay runs. An unbound source without relay workers gives an entry with a
    /// 38029 error; a worker that does not answer gives one with the gRPC error (worker name empty before v26.3).
    fn status_list(&mut self, name: &str) -> Result<Vec<Value>, SimError> {
        self.status_glitch()?;
        let phase = self.phase();
        let now = Instant::now();
        // Positions first: reading them moves the upstream heads.
        let mut views = BTreeMap::new();
        if let Some(entry) = self.tasks.get(name) {
            for sub in entry.subtasks.values().filter(|s| s.unit == Unit::Sync) {
                if let Some(src) = self.sources.get(&sub.source) {
                    let id = upstream_id(&sub.source, src);
                    let worked = total_worked(sub, now);
                    views.insert(
                        sub.source.clone(),
                        self.binlog.sync_view(&sub.ckpt, &id, &sub.cfg.task_mode, worked, phase),
                    );
                }
            }
        }
        let Some(entry) = self.tasks.get(name) else { return Ok(vec![]) };
        let mut out = vec![];
        for sub in entry.subtasks.values() {
            let workers = self.status_workers(&sub.source);
            if workers.is_empty() {
                out.push(json!({
                    "name": name, "source_name": sub.source, "worker_name": "", "stage": "", "unit": "",
                    "error_msg": relay::no_worker_msg(&sub.source),
                }));
                continue;
            }
            for w in &workers {
                let wk = &self.workers[w];
                let bound = wk.bound.as_deref() == Some(sub.source.as_str());
                // An offline relay worker is still asked (DM keeps it as a relay worker), and does not answer.
                if wk.unreachable || wk.offline {
                    let shown = if self.generation.v26() { w.as_str() } else { "" };
                    out.push(project::unreachable_status(name, sub, shown, &relay::rpc_error_msg(&wk.addr)));
                } else if !bound {
                    return Err(e::openapi("worker's query-status response is nil"));
                } else {
                    out.push(project::subtask_status(
                        name,
                        sub,
                        Some(w),
                        self.generation,
                        phase,
                        views.get(&sub.source),
                    ));
                }
            }
        }
        out.shuffle(&mut self.rng);
        Ok(out)
    }

    /// `stage` keeps a task only if every status entry has exactly that stage; `source_name_list` only if the
    /// task's source set equals it (docs/dm-behaviour.md §8). With `stage` or `with_status`, the status of every
    /// task is fetched first and one failure fails the whole call.
    pub fn list_tasks(&mut self, with_status: bool, stage: Option<&str>, sources: &[String]) -> R {
        let mut names: Vec<String> = self.tasks.keys().cloned().collect();
        let mut statuses: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        if with_status || stage.is_some() {
            for n in &names {
                let st = self.status_list(n)?;
                statuses.insert(n.clone(), st);
            }
        }
        if let Some(stage) = stage {
            names.retain(|n| statuses[n].iter().all(|s| s["stage"].as_str() == Some(stage)));
        }
        if !sources.is_empty() {
            // As `listTask` does: same count, and every source of the task in the list.
            let want: BTreeSet<&String> = sources.iter().collect();
            names.retain(|n| {
                let subs = &self.tasks[n].subtasks;
                subs.len() == sources.len() && subs.keys().all(|s| want.contains(s))
            });
        }
        names.shuffle(&mut self.rng);
        let mut data = vec![];
        for n in &names {
            let mut v = self.task_view(n);
            if with_status {
                v["status_list"] = json!(statuses.remove(n).unwrap_or_default());
            }
            data.push(v);
        }
        Ok(Out::Json(200, json!({"total": data.len(), "data": data})))
    }

    pub fn get_task(&mut self, name: &str, with_status: bool) -> R {
        // The real server answers 400/46018, not the spec's 404 (docs/dm-behaviour.md §9).
        if !self.tasks.contains_key(name) {
            return Err(e::task_not_exist(name));
        }
        let mut v = self.task_view(name);
        if with_status {
            v["status_list"] = json!(self.status_list(name)?);
        }
        Ok(Out::Json(200, v))
    }

    pub fn update_task(&mut self, task: Task) -> R {
        // The whole precheck runs again, with the body's settings (docs/dm-behaviour.md §6).
        let (task, cfgs, check) = self.prepare_task(task)?;
        // The path name is ignored; the body's name decides (docs/dm-behaviour.md §6).
        let name = task.name.clone();
        let entry = self.tasks.get(&name).ok_or_else(|| e::task_not_exist(&name))?;
        let body_sources: Vec<String> = task.source_config.source_conf.iter().map(|c| c.source_name.clone()).collect();
        let extra: Vec<String> = body_sources.iter().filter(|s| !entry.subtasks.contains_key(*s)).cloned().collect();
        if !extra.is_empty() {
            return Err(e::subtask_not_exist(&name, &extra));
        }
        if let Some(first) = body_sources.first()
            && entry.subtasks[first].expected == Expected::Running
        {
            return Err(e::subtask_cfg_update(&name, first, "the task is running, please stop it before updating"));
        }
        for s in &body_sources {
            if self.bound_worker(s).is_none() {
                return Err(e::subtask_cfg_update(&name, s, &format!("source {s} is not bound to any worker")));
            }
            let sub = &entry.subtasks[s];
            if sub.unit != Unit::Sync {
                return Err(e::subtask_cfg_update(
                    &name,
                    s,
                    &format!(
                        "[code=40081:class=dm-worker:scope=internal:level=high], Message: current unit of subtask {name} is {}, only Sync unit can be updated",
                        sub.unit
                    ),
                ));
            }
            // A pessimistic shard group waiting on DDLs refuses any update (docs/dm-behaviour.md §6).
            if let Some(err) = sub.shard.refuse_update(sub.cfg.shard_mode.as_deref()) {
                return Err(err);
            }
            // A dmctl-created subtask never matches what the OpenAPI conversion produces (docs/dm-behaviour.md §11).
            if let Some(d) = &sub.dmctl {
                return Err(e::subtask_cfg_update(&name, s, &d.update_refusal()));
            }
            let old = project::to_subcfg(&sub.cfg, s, self.case_insensitive(s))?;
            if let Some(field) = project::non_updatable_diff(&old, &cfgs[s]) {
                return Err(e::subtask_cfg_update(
                    &name,
                    s,
                    &format!(
                        "[code=40081:class=dm-worker:scope=internal:level=high], Message: new config contains some fields that should not be changed ({field})"
                    ),
                ));
            }
        }
        let entry = self.tasks.get_mut(&name).ok_or_else(|| e::task_not_exist(&name))?;
        for s in &body_sources {
            if let Some(sub) = entry.subtasks.get_mut(s) {
                sub.cfg = task.clone();
            }
        }
        let echo = serde_json::to_value(&task).unwrap_or(Value::Null);
        Ok(Out::Json(200, json!({"task": echo, "check_result": check})))
    }

    pub fn delete_task(&mut self, name: &str, force: bool, keep_meta: bool) -> R {
        let entry = self.tasks.get(name).ok_or_else(|| e::task_not_exist(name))?;
        if !force && entry.subtasks.values().any(|s| s.expected == Expected::Running) {
            return Err(e::openapi(format!(
                "task {name} have running subtasks, please stop them or delete task with force."
            )));
        }
        // v8.5 connects to the target to drop the checkpoints and fails the delete on any error but "connection
        // refused" under force; v26.3+ only logs it (docs/dm-behaviour.md §7).
        if self.generation.is_v85()
            && let Some(sub) = entry.subtasks.values().next()
            && let Err(err) = self.connect_target(&sub.cfg.target_config)
            && !(force && err.raw_cause.as_deref().is_some_and(|c| c.contains("connect: connection refused")))
        {
            return Err(err);
        }
        let phase = self.phase();
        let now = Instant::now();
        if let Some(entry) = self.tasks.remove(name)
            && let Some(first) = entry.subtasks.values().next()
        {
            // The checkpoint tables survive with `keep_meta` (Head), and whenever the downstream cannot be reached
            // to drop them (v8.5 gets here only with force; Head only logs the failure) (docs/dm-behaviour.md §7).
            let key = meta_key(&first.cfg);
            let keep = (keep_meta && self.head()) || self.connect_target(&first.cfg.target_config).is_err();
            if keep {
                let progress = entry
                    .subtasks
                    .iter()
                    .map(|(s, sub)| {
                        let worked = total_worked(sub, now);
                        (s.clone(), self.binlog.saved(&sub.ckpt, s, &sub.cfg.task_mode, worked, phase))
                    })
                    .collect();
                self.binlog.meta.insert(key, progress);
            } else {
                self.binlog.meta.remove(&key);
            }
        }
        Ok(Out::Empty(204))
    }

    /// A transient failure of the workers' query-status (docs/dm-behaviour.md §8): the whole call answers 400 49001.
    fn status_glitch(&mut self) -> Result<(), SimError> {
        if self.status_glitches > 0 {
            self.status_glitches -= 1;
            return Err(e::openapi("worker's query-status response is nil"));
        }
        Ok(())
    }

    pub fn task_status(&mut self, name: &str) -> R {
        if !self.tasks.contains_key(name) {
            return Err(e::task_not_exist(name));
        }
        let data = self.status_list(name)?;
        Ok(Out::Json(200, json!({"total": data.len(), "data": data})))
    }

    /// Answers 200 with an empty body, not the docs' 204 (docs/dm-behaviour.md §8); asynchronous: only the expected
    /// stage is written here.
    pub fn start_task(&mut self, name: &str, req: StartTaskRequest, now: Instant) -> R {
        let all: Vec<String> = self.tasks.get(name).map(|t| t.subtasks.keys().cloned().collect()).unwrap_or_default();
        let list = req.source_name_list.clone().filter(|l| !l.is_empty()).unwrap_or_else(|| all.clone());
        // One pass per source, in list order, as `startTask` does: 46008, 20022, 46008, 38058.
        for s in &list {
            let Some(sub) = self.tasks.get(name).and_then(|t| t.subtasks.get(s)) else {
                return Err(e::source_not_exist(s));
            };
            if sub.cfg.task_mode == "incremental"
                && req.start_time.is_none()
                && project::to_subcfg(&sub.cfg, s, false).map(|c| c.meta.is_none()).unwrap_or(true)
            {
                return Err(e::meta_not_set(s));
            }
            match self.sources.get(s) {
                None => return Err(e::source_not_exist(s)),
                Some(src) if !src.cfg.enable => return Err(e::start_on_disabled(name, s)),
                _ => {}
            }
        }
        if list.is_empty() {
            // An unknown task (or one without subtasks): nothing to start, 200.
            return Ok(Out::Empty(200));
        }
        let phase = self.phase();
        let delay = self.stage_delay;
        if req.remove_meta == Some(true) {
            // The checkpoints are dropped in the first listed subtask's target before the args are checked, so a bad
            // `start_time` still leaves them dropped; a target that cannot be reached fails the start
            // (docs/dm-behaviour.md §8).
            if let Some(sub) = list.first().and_then(|s| self.tasks.get(name).and_then(|t| t.subtasks.get(s))) {
                self.connect_target(&sub.cfg.target_config).map_err(|mut err| {
                    err.message = format!("while removing metadata: {}", err.message);
                    err
                })?;
            }
            if let Some(entry) = self.tasks.get_mut(name) {
                for s in &list {
                    if let Some(sub) = entry.subtasks.get_mut(s) {
                        // Checkpoints and metadata are dropped: the migration starts over.
                        sub.ckpt.line = None;
                        sub.ckpt.restored = None;
                        sub.worked = Duration::ZERO;
                        sub.run_since = sub.run_since.map(|_| now);
                        if sub.observed == Stage::Finished {
                            sub.observed = Stage::Paused;
                        }
                        sub.unit = unit_for(&sub.cfg.task_mode, Duration::ZERO, phase).0;
                    }
                }
            }
        }
        // Empty strings count as absent here but are stored; a bad value is a plain error (code 0)
        // (docs/dm-behaviour.md §8).
        let args = taskargs::start_args(&req, self.generation)?;
        let Some(entry) = self.tasks.get_mut(name) else { return Ok(Out::Empty(200)) };
        // The stored CLI args are replaced as a whole, or deleted when the request carries none.
        entry.cli_args = args.unwrap_or_default();
        for s in &list {
            if let Some(sub) = entry.subtasks.get_mut(s) {
                set_expected(sub, Expected::Running, now, delay);
            }
        }
        Ok(Out::Empty(200))
    }

    /// `stopTask` (docs/dm-behaviour.md §8): the CLI args first (a bad `timeout_duration` is a plain error, code 0),
    /// then the expected stage. Without `source_name_list` an unknown task has no sources and nothing happens (200);
    /// with one, the scheduler does not know the task: 46016. Unknown sources of a known task: 46017.
    pub fn stop_task(&mut self, name: &str, req: StopTaskRequest, now: Instant) -> R {
        let args = taskargs::stop_args(&req)?;
        let listed = req.source_name_list.clone().filter(|l| !l.is_empty());
        let Some(entry) = self.tasks.get(name) else {
            return match listed {
                Some(_) => Err(e::subtask_op_task_not_exist(name)),
                None => Ok(Out::Empty(200)),
            };
        };
        let list = listed.unwrap_or_else(|| entry.subtasks.keys().cloned().collect());
        let unknown: Vec<String> = list.iter().filter(|s| !entry.subtasks.contains_key(*s)).cloned().collect();
        if !unknown.is_empty() {
            return Err(e::subtask_op_source_not_exist(&unknown));
        }
        let delay = self.stage_delay;
        let Some(entry) = self.tasks.get_mut(name) else { return Ok(Out::Empty(200)) };
        // Stop also replaces the stored CLI args (only `timeout_duration`), or deletes them.
        entry.cli_args = args.unwrap_or_default();
        for s in &list {
            if let Some(sub) = entry.subtasks.get_mut(s) {
                set_expected(sub, Expected::Stopped, now, delay);
            }
        }
        Ok(Out::Empty(200))
    }

    /// The checks of the table-structure and migrate-target endpoints: they call the bound worker.
    /// They ask the source's bound worker (40070 when there is none, unknown sources included), whose answer
    /// errors come back as 49001 around the worker's own error: the subtask must exist (40054), be in the Sync
    /// unit (40056) and be Paused (40051); listing migrate targets also accepts Running (docs/dm-behaviour.md §13).
    fn worker_subtask(&self, task: &str, source: &str) -> Result<&SubTask, SimError> {
        self.worker_subtask_in(task, source, &[Stage::Paused])
    }

    fn worker_subtask_in(&self, task: &str, source: &str, stages: &[Stage]) -> Result<&SubTask, SimError> {
        if self.bound_worker(source).is_none() {
            return Err(e::worker_no_start());
        }
        let worker_err = |code: i64, msg: String| e::openapi(SimError::new(code, msg).error_msg());
        let sub = self
            .tasks
            .get(task)
            .and_then(|t| t.subtasks.get(source))
            .ok_or_else(|| worker_err(40054, format!("sub task with name {task} not found")))?;
        if !stages.contains(&sub.observed) {
            return Err(worker_err(
                40051,
                format!("current stage is {} but not paused, invalid", sub.observed.as_str()),
            ));
        }
        if sub.unit != Unit::Sync {
            return Err(worker_err(
                40056,
                format!(
                    "such operation is only available for syncer, but now syncer is not running. current unit is {}",
                    sub.unit
                ),
            ));
        }
        Ok(sub)
    }

    /// (schema, table) pairs of the source's upstream the subtask migrates.
    fn migrated_tables(&self, task: &str, source: &str) -> Result<Vec<(String, String)>, SimError> {
        self.migrated_tables_in(task, source, &[Stage::Paused])
    }

    fn migrated_tables_in(
        &self,
        task: &str,
        source: &str,
        stages: &[Stage],
    ) -> Result<Vec<(String, String)>, SimError> {
        let sub = self.worker_subtask_in(task, source, stages)?;
        let cfg = project::to_subcfg(&sub.cfg, source, self.case_insensitive(source))?;
        let m = cfg.matcher().map_err(e::openapi)?;
        let mut out = vec![];
        for (db, tables) in self.catalog(source) {
            for t in tables {
                if m.allows(&db, &t) {
                    out.push((db.clone(), t));
                }
            }
        }
        // The schema tracker also knows every table whose structure was set through the schema endpoints, whatever
        // the rules say (the structure goes into the checkpoint, which the tracker loads; docs/dm-behaviour.md R13.6).
        for key in sub.tables.keys() {
            if !out.contains(key) {
                out.push(key.clone());
            }
        }
        out.sort();
        Ok(out)
    }

    pub fn task_schemas(&mut self, task: &str, source: &str) -> R {
        let mut dbs: Vec<String> = self.migrated_tables(task, source)?.into_iter().map(|(d, _)| d).collect();
        dbs.dedup();
        Ok(Out::Json(200, json!(dbs)))
    }

    pub fn task_tables(&mut self, task: &str, source: &str, schema: &str) -> R {
        let t: Vec<String> =
            self.migrated_tables(task, source)?.into_iter().filter(|(d, _)| d == schema).map(|(_, t)| t).collect();
        Ok(Out::Json(200, json!(t)))
    }

    pub fn get_table(&mut self, task: &str, source: &str, schema: &str, table: &str) -> R {
        let key = (schema.to_string(), table.to_string());
        let sql = match self.worker_subtask(task, source)?.tables.get(&key) {
            Some(sql) => sql.clone(),
            None => {
                if !self.migrated_tables(task, source)?.contains(&key) {
                    return Err(e::openapi(format!("table `{schema}`.`{table}` not found in the schema tracker")));
                }
                catalog::create_table_sql(table)
            }
        };
        // The spec requires `table_create_sql` by mistake; the server sends `schema_create_sql` (its own property).
        Ok(Out::Json(200, json!({"schema_name": schema, "table_name": table, "schema_create_sql": sql})))
    }

    pub fn put_table(
        &mut self,
        task: &str,
        source: &str,
        schema: &str,
        table: &str,
        req: OperateTableStructureRequest,
    ) -> R {
        // HEAD checks `schema_source` against `sql_content` before asking the worker; earlier generations have
        // no `schema_source` and always set the schema from `sql_content` (docs/dm-behaviour.md §13).
        let from_sql = if self.head() {
            match req.schema_source.as_deref().unwrap_or("sql") {
                "sql" if req.sql_content.as_deref().is_none_or(|s| s.trim().is_empty()) => {
                    return Err(e::openapi(
                        "`sql_content` must be provided and non-empty when `schema_source` is `sql`",
                    ));
                }
                "sql" => true,
                other if req.sql_content.is_some() => {
                    return Err(e::openapi(format!("`sql_content` must be omitted when `schema_source` is `{other}`")));
                }
                _ => false,
            }
        } else {
            true
        };
        self.worker_subtask(task, source)?;
        let sql = if from_sql {
            let sql = req.sql_content.unwrap_or_default();
            if !sql.trim_start().to_ascii_lowercase().starts_with("create table") {
                let inner = SimError::new(44009, format!("{sql} is not a valid `CREATE TABLE` statement"));
                return Err(e::openapi(inner.error_msg()));
            }
            sql
        } else {
            catalog::create_table_sql(table)
        };
        if let Some(sub) = self.tasks.get_mut(task).and_then(|t| t.subtasks.get_mut(source)) {
            sub.tables.insert((schema.to_string(), table.to_string()), sql);
        }
        Ok(Out::Empty(200))
    }

    pub fn delete_table(&mut self, task: &str, source: &str, schema: &str, table: &str) -> R {
        self.worker_subtask(task, source)?;
        if let Some(sub) = self.tasks.get_mut(task).and_then(|t| t.subtasks.get_mut(source)) {
            sub.tables.remove(&(schema.to_string(), table.to_string()));
        }
        Ok(Out::Empty(204))
    }

    pub fn migrate_targets(
        &mut self,
        task: &str,
        source: &str,
        schema_pattern: Option<&str>,
        table_pattern: Option<&str>,
    ) -> R {
        let tables = self.migrated_tables_in(task, source, &[Stage::Running, Stage::Paused])?;
        let sub = self.worker_subtask_in(task, source, &[Stage::Running, Stage::Paused])?;
        let cfg = project::to_subcfg(&sub.cfg, source, self.case_insensitive(source))?;
        let m = cfg.matcher().map_err(e::openapi)?;
        // The patterns are Go regular expressions, searched anywhere in the name (docs/dm-behaviour.md R13.6).
        let re = |p: Option<&str>| -> Result<Option<regex::Regex>, SimError> {
            match p.filter(|p| !p.is_empty()) {
                None => Ok(None),
                Some(p) => {
                    regex::Regex::new(p).map(Some).map_err(|err| e::openapi(format!("error parsing regexp: {err}")))
                }
            }
        };
        let (sp, tp) = (re(schema_pattern)?, re(table_pattern)?);
        let data: Vec<Value> = tables
            .into_iter()
            .filter(|(d, t)| sp.as_ref().is_none_or(|r| r.is_match(d)) && tp.as_ref().is_none_or(|r| r.is_match(t)))
            .map(|(d, t)| {
                let (ts, tt) = m.route(&d, &t);
                json!({"source_schema": d, "source_table": t, "target_schema": ts, "target_table": tt})
            })
            .collect();
        Ok(Out::Json(200, json!({"total": data.len(), "data": data})))
    }

    pub fn convert(&mut self, req: Value) -> R {
        super::project::convert(self, req)
    }

    // ------------------------------------------------------------------------------------------ cluster

    pub fn list_masters(&mut self) -> R {
        let mut m = self.masters.clone();
        m.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Out::Json(200, json!({"total": m.len(), "data": m})))
    }

    pub fn offline_master(&mut self, name: &str) -> R {
        let before = self.masters.len();
        self.masters.retain(|m| m.name != name);
        if self.masters.len() == before {
            // `ErrMasterMasterNameNotExist` (docs/dm-behaviour.md §12).
            return Err(SimError::new(38048, format!("dm-master with name {name} not exists"))
                .workaround("Please use list-member command to see masters."));
        }
        Ok(Out::Empty(204))
    }

    pub fn list_workers(&mut self) -> R {
        let data: Vec<Value> = self
            .workers
            .values()
            .map(|w| {
                json!({
                    "name": w.name,
                    "addr": w.addr,
                    "bound_stage": w.stage(),
                    // Only the bound source: a worker in the `relay` stage shows `""` (docs/dm-behaviour.md R12.1).
                    "bound_source_name": w.bound.clone().unwrap_or_default(),
                })
            })
            .collect();
        Ok(Out::Json(200, json!({"total": data.len(), "data": data})))
    }

    pub fn offline_worker(&mut self, name: &str) -> R {
        let w = self.workers.get(name).ok_or_else(|| e::worker_not_exist(name))?;
        if !w.offline {
            return Err(SimError::new(
                46005,
                format!("dm-worker with name {name} is still online, must shut it down first"),
            ));
        }
        self.workers.remove(name);
        Ok(Out::Empty(204))
    }

    pub fn cluster_info(&mut self) -> R {
        let mut v = json!({"cluster_id": self.cluster_id});
        if let Some(t) = &self.topology {
            v["topology"] = t.clone();
        }
        Ok(Out::Json(200, v))
    }

    pub fn update_cluster_info(&mut self, topology: Value) -> R {
        self.topology = Some(topology);
        self.cluster_info()
    }

    // ------------------------------------------------------------------------------------------ controls

    pub fn pause_with_error(&mut self, task: &str, source: &str, msg: &str) {
        let now = Instant::now();
        self.advance(now);
        if let Some(sub) = self.tasks.get_mut(task).and_then(|t| t.subtasks.get_mut(source)) {
            if sub.observed == Stage::Running
                && let Some(since) = sub.run_since.take()
            {
                sub.worked += now.saturating_duration_since(since);
            }
            sub.observed = Stage::Paused;
            sub.pending = None;
            sub.error_msg = Some(msg.to_string());
        }
    }

    pub fn set_relay_error(&mut self, worker: &str, error: Option<String>) -> Result<(), String> {
        let w = self.workers.get_mut(worker).ok_or_else(|| format!("no worker {worker}"))?;
        w.relay_error = error;
        Ok(())
    }

    pub fn set_worker_unreachable(&mut self, worker: &str, unreachable: bool) -> Result<(), String> {
        let w = self.workers.get_mut(worker).ok_or_else(|| format!("no worker {worker}"))?;
        w.unreachable = unreachable;
        Ok(())
    }

    pub fn set_worker_offline(&mut self, worker: &str, offline: bool) -> Result<(), String> {
        let w = self.workers.get_mut(worker).ok_or_else(|| format!("no worker {worker}"))?;
        w.offline = offline;
        if offline {
            // DM unbinds an offline worker but keeps its relay (`handleWorkerOffline`, docs/dm-behaviour.md R12.5).
            if let Some(s) = w.bound.take() {
                // The source moves to another free worker if there is one.
                self.try_bind(&s);
            }
        } else {
            self.bind_unbound();
        }
        Ok(())
    }

    pub fn patch_source(&mut self, source: &str, patch: &Value) -> Result<(), String> {
        let s = self.sources.get_mut(source).ok_or_else(|| format!("no source {source}"))?;
        let mut v = serde_json::to_value(&s.cfg).map_err(|e| e.to_string())?;
        merge_patch(&mut v, patch);
        s.cfg = serde_json::from_value(v).map_err(|e| format!("patched source is not a Source: {e}"))?;
        Ok(())
    }

    pub fn patch_task(&mut self, task: &str, source: Option<&str>, patch: &Value) -> Result<(), String> {
        let t = self.tasks.get_mut(task).ok_or_else(|| format!("no task {task}"))?;
        let mut hit = false;
        for (s, sub) in t.subtasks.iter_mut() {
            if source.is_some_and(|x| x != s) {
                continue;
            }
            let mut v = serde_json::to_value(&sub.cfg).map_err(|e| e.to_string())?;
            merge_patch(&mut v, patch);
            sub.cfg = serde_json::from_value(v).map_err(|e| format!("patched task is not a Task: {e}"))?;
            hit = true;
        }
        if hit { Ok(()) } else { Err(format!("task {task} has no subtask on {}", source.unwrap_or("?"))) }
    }

    pub fn remove_task_raw(&mut self, task: &str) -> bool {
        self.tasks.remove(task).is_some()
    }

    pub fn set_shard_ddl(&mut self, task: &str, source: &str, state: ShardDdlState) -> Result<(), String> {
        let sub = self
            .tasks
            .get_mut(task)
            .and_then(|t| t.subtasks.get_mut(source))
            .ok_or_else(|| format!("task {task} has no subtask on {source}"))?;
        sub.shard = state;
        Ok(())
    }

    pub fn snapshot(&mut self) -> Value {
        let now = Instant::now();
        self.advance(now);
        let phase = self.phase();
        let mut ckpts = BTreeMap::new();
        for (n, t) in &self.tasks {
            for (s, sub) in &t.subtasks {
                let Some(src) = self.sources.get(s) else { continue };
                let id = upstream_id(s, src);
                let worked = total_worked(sub, now);
                let v = self.binlog.snapshot_sub(&sub.ckpt, &id, &sub.cfg.task_mode, worked, phase);
                ckpts.insert((n.clone(), s.clone()), v);
            }
        }
        let source_names: BTreeSet<String> = self.sources.keys().cloned().collect();
        let (upstreams, downstream_meta) = self.binlog.snapshot(&source_names);
        let workers: Vec<Value> = self
            .workers
            .values()
            .map(|w| json!({"name": w.name, "addr": w.addr, "stage": w.stage(), "bound_source": w.bound, "relay_source": w.relay}))
            .collect();
        let sources: serde_json::Map<String, Value> = self
            .sources
            .iter()
            .map(|(n, s)| {
                let mut cfg = serde_json::to_value(&s.cfg).unwrap_or(Value::Null);
                cfg["password"] = s.cfg.password.as_ref().map(|p| json!(p.expose())).unwrap_or(Value::Null);
                (
                    n.clone(),
                    json!({
                        "config": cfg,
                        "server_id": s.server_id,
                        "bound_worker": self.bound_worker(n).map(|w| w.name.clone()),
                        "relay_workers": self.relay_workers(n),
                    }),
                )
            })
            .collect();
        let tasks: serde_json::Map<String, Value> = self
            .tasks
            .iter()
            .map(|(n, t)| {
                let subs: serde_json::Map<String, Value> = t
                    .subtasks
                    .iter()
                    .map(|(s, sub)| {
                        (
                            s.clone(),
                            json!({
                                "expected": match sub.expected { Expected::Running => "Running", Expected::Stopped => "Stopped" },
                                "observed": sub.observed.as_str(),
                                "unit": sub.unit.as_str(),
                                "pending": sub.pending.as_ref().map(|(_, st)| st.as_str()),
                                "error_msg": sub.error_msg,
                                "config": serde_json::to_value(&sub.cfg).unwrap_or(Value::Null),
                                "checkpoint": ckpts.get(&(n.clone(), s.clone())).cloned().unwrap_or(Value::Null),
                                "shard_ddl": (!sub.shard.is_empty()).then(|| json!(sub.shard)),
                            }),
                        )
                    })
                    .collect();
                // Filter rules the workers never apply (an event type the generation does not know,
                // docs/dm-behaviour.md §15).
                let inactive: BTreeSet<String> = t
                    .subtasks
                    .values()
                    .flat_map(|s| super::filters::inactive_rules(&s.cfg, self.generation))
                    .collect();
                (n.clone(), json!({"subtasks": subs, "cli_args": t.cli_args, "inactive_filter_rules": inactive}))
            })
            .collect();
        let kept: Vec<Value> = self.binlog.meta.keys().map(|(_, m, t)| json!({"task": t, "meta_schema": m})).collect();
        json!({
            "generation": self.generation,
            "workers": workers,
            "sources": sources,
            "tasks": tasks,
            "templates": self.templates,
            "kept_meta": kept,
            "upstreams": upstreams,
            "downstream_meta": downstream_meta,
            "downstream": self.downstream.snapshot(),
        })
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

fn advance_sub(sub: &mut SubTask, now: Instant, phase: Duration) {
    if let Some((due, target)) = sub.pending.clone()
        && now >= due
    {
        if sub.observed == Stage::Running
            && let Some(since) = sub.run_since.take()
        {
            sub.worked += due.saturating_duration_since(since);
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

pub(crate) fn valid_timezone(tz: &str) -> bool {
    if tz.is_empty() {
        return true;
    }
    // `SYSTEM` and `Local` are rejected by Task.Adjust (docs/dm-behaviour.md §5); anything Go's LoadLocation knows is
    // accepted.
    if matches!(tz, "SYSTEM" | "Local") {
        return false;
    }
    // A UTC offset within [-12:59, +14:00] is accepted too (`ParseTimeZone`, docs/dm-behaviour.md §15).
    if let Some((sign, rest)) = tz.strip_prefix('+').map(|r| (1, r)).or_else(|| tz.strip_prefix('-').map(|r| (-1, r))) {
        let Some((h, m)) = rest.split_once(':') else { return false };
        let (Ok(h), Ok(m)) = (h.parse::<u32>(), m.parse::<u32>()) else { return false };
        let minutes = h * 60 + m;
        return m < 60 && if sign > 0 { minutes <= 14 * 60 } else { minutes <= 12 * 60 + 59 };
    }
    matches!(tz, "UTC" | "GMT")
        || (tz.contains('/')
            && tz.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'))
            && !tz.starts_with('/')
            && !tz.ends_with('/'))
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

    #[test]
    fn merge_patch_rfc7386() {
        let mut v = json!({"a": 1, "b": {"c": 2, "d": 3}});
        merge_patch(&mut v, &json!({"a": null, "b": {"c": 5}}));
        assert_eq!(v, json!({"b": {"c": 5, "d": 3}}));
    }
}
