//! Sources: create, read, update, delete, enable/disable bookkeeping and the schema lists of a source
//! (docs/dm-behaviour.md §3, §13).

use super::*;

impl State {
    // ------------------------------------------------------------------------------------------ sources

    /// The upstream checks of `CheckAndAdjustSourceConfigFunc`: connect, detect flavor, check GTID.
    pub(super) fn check_upstream(&self, src: &Source) -> Result<String, SimError> {
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
    pub(super) fn adjust_source(&mut self, mut src: Source, flavor: String) -> (Source, u32) {
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
            let relaying: BTreeSet<&str> = self.workers.values().filter_map(|w| w.relay.as_deref()).collect();
            names.retain(|n| relaying.contains(n.as_str()) == want);
        }
        names.shuffle(&mut self.rng);
        // Looked up once for the whole list, not per source (see `status_workers_by_source`).
        let mut index =
            with_status.then(|| Index { workers: self.status_workers_by_source(), tasks: self.tasks_by_source() });
        let data: Vec<Value> = names.iter().map(|n| self.source_view_with(n, with_status, index.as_mut())).collect();
        Ok(Out::Json(200, list_answer(data)))
    }

    pub fn get_source(&mut self, name: &str, with_status: bool) -> R {
        // The only handler answer that is not 400: 404 with an empty body (docs/dm-behaviour.md §2).
        if !self.sources.contains_key(name) {
            return Ok(Out::NotFoundEmpty);
        }
        Ok(Out::Json(200, self.source_view(name, with_status)))
    }

    pub(super) fn source_view(&mut self, name: &str, with_status: bool) -> Value {
        self.source_view_with(name, with_status, None)
    }

    fn source_view_with(&mut self, name: &str, with_status: bool, index: Option<&mut Index>) -> Value {
        let Some(s) = self.sources.get(name) else { return Value::Null };
        let mut v = project::source_view(&s.cfg);
        if with_status {
            let (status, mut tasks) = match index {
                Some(ix) => (
                    self.source_status_list_with(name, ix.workers.remove(name).unwrap_or_default()),
                    ix.tasks.remove(name).unwrap_or_default(),
                ),
                None => (self.source_status_list(name), self.tasks_on(name)),
            };
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
        Ok(Out::Json(200, list_answer(data)))
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
}

/// Per-source lookups made once for a list answer.
struct Index {
    workers: HashMap<String, Vec<String>>,
    tasks: HashMap<String, Vec<String>>,
}
