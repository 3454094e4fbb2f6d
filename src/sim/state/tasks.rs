//! Tasks: prepare and precheck, create, read (with status), update and delete (docs/dm-behaviour.md §5-§7, §9).

use super::*;

impl State {
    // ------------------------------------------------------------------------------------------ tasks

    pub(crate) fn case_insensitive(&self, source: &str) -> bool {
        self.sources.get(source).is_some_and(|s| catalog::case_insensitive(&s.cfg.host))
    }

    /// `Task.Adjust`, downstream connect, source existence, conversion (docs/dm-behaviour.md §5) and
    /// `SubTaskConfig.Adjust`, precheck: the checks create and update share (docs/dm-behaviour.md §5, §6). Returns
    /// the adjusted task, each source's converted config and the `check_result` text.
    pub(super) fn prepare_task(
        &mut self,
        mut task: Task,
    ) -> Result<(Task, BTreeMap<String, SubCfg>, String), SimError> {
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
    pub(super) fn meta_check(&mut self, mode: &str, source: &str, meta: Option<&(String, i64, String)>) -> MetaCheck {
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
        let entry = self.tasks.get_or_insert(&name);
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
    pub(super) fn status_list(&mut self, name: &str) -> Result<Vec<Value>, SimError> {
        self.status_list_with(name, None)
    }

    /// [`State::status_list`], with the status workers of every source looked up already (list answers).
    fn status_list_with(
        &mut self,
        name: &str,
        workers_of: Option<&HashMap<String, Vec<String>>>,
    ) -> Result<Vec<Value>, SimError> {
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
            let workers = match workers_of {
                Some(ix) => ix.get(&sub.source).cloned().unwrap_or_default(),
                None => self.status_workers(&sub.source),
            };
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
            // Looked up once for the whole list, not per subtask (see `status_workers_by_source`).
            let workers_of = self.status_workers_by_source();
            for n in &names {
                let st = self.status_list_with(n, Some(&workers_of))?;
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
                v["status_list"] = Value::Array(statuses.remove(n).unwrap_or_default());
            }
            data.push(v);
        }
        Ok(Out::Json(200, list_answer(data)))
    }

    pub fn get_task(&mut self, name: &str, with_status: bool) -> R {
        // The real server answers 400/46018, not the spec's 404 (docs/dm-behaviour.md §9).
        if !self.tasks.contains_key(name) {
            return Err(e::task_not_exist(name));
        }
        let mut v = self.task_view(name);
        if with_status {
            v["status_list"] = Value::Array(self.status_list(name)?);
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
                        let worked = kept_work(&sub.cfg.task_mode, total_worked(sub, now), phase);
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
}
