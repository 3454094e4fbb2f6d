//! What the server stores and what it shows: the conversion of an OpenAPI task into a per-source subtask
//! config, and the lossy, randomly ordered read-back of sources and tasks (docs/dm-behaviour.md §3, §9), per
//! server generation.

use std::collections::{BTreeMap, HashSet};

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde_json::{Map, Value, json};

use super::Generation;
use super::errors::{SimError, e};
use super::selector::{AllowFilter, Router};
use super::state::{State, SubTask, TaskEntry};
use crate::dm::types::*;
use crate::secret::Secret;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Route {
    pub schema: String,
    pub table: String,
    pub target_schema: String,
    pub target_table: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Filter {
    pub schema: String,
    pub table: String,
    pub events: Option<Vec<String>>,
    pub sqls: Option<Vec<String>>,
}

/// The loader/mydumper settings a subtask keeps (`full_migrate_conf` after conversion, docs/dm-behaviour.md §5),
/// write-only fields included.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct FullStored {
    pub export_threads: i64,
    pub import_threads: i64,
    /// As stored: with the `.task` / `/task.source` suffix for all/full (docs/dm-behaviour.md §9).
    pub data_dir: String,
    pub consistency: Option<String>,
    pub import_mode: String,
    pub pd_addr: Option<String>,
    pub security: Option<Security>,
    pub on_dup_logical: String,
    pub on_dup_physical: Option<String>,
    pub sorting_dir: Option<String>,
    pub disk_quota: Option<String>,
    pub checksum: Option<String>,
    pub analyze: Option<String>,
    pub range_concurrency: i64,
    pub compress: Option<String>,
}

/// A subtask config (`SubTaskConfig`) as the worker holds it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SubCfg {
    pub name: String,
    pub mode: String,
    pub timezone: String,
    pub meta_schema: String,
    pub meta: Option<(String, i64, String)>,
    pub shard_mode: Option<String>,
    pub strict: bool,
    pub online_ddl: bool,
    pub target: TargetConfig,
    pub full: FullStored,
    pub safe_mode: bool,
    pub ignore_checking: Vec<String>,
    // Updatable through PUT (CheckCanUpdateCfg): allow list, routes, filters, repl_threads, repl_batch.
    pub routes: Vec<Route>,
    pub do_dbs: Vec<String>,
    pub do_tables: Vec<(String, String)>,
    pub filters: Vec<Filter>,
    pub repl_threads: i64,
    pub repl_batch: i64,
    /// The upstream is case-insensitive: patterns were lowercased when stored, names are compared lowercased.
    pub lower: bool,
}

impl SubCfg {
    /// DM's block-allow list and router for this subtask, built as the worker builds them (docs/dm-behaviour.md
    /// R13.7). `Err`: DM refuses a pattern.
    pub fn matcher(&self) -> Result<Matcher, String> {
        let allow = if self.do_dbs.is_empty() && self.do_tables.is_empty() {
            None
        } else {
            Some(AllowFilter::new(self.lower, &self.do_dbs, &self.do_tables)?)
        };
        let routes: Vec<(String, String, String, String)> = self
            .routes
            .iter()
            .map(|r| (r.schema.clone(), r.table.clone(), r.target_schema.clone(), r.target_table.clone()))
            .collect();
        Ok(Matcher { allow, router: Router::new(self.lower, &routes)? })
    }

    /// `SubTaskConfig.Adjust` builds the list and the router and refuses the task when a pattern is invalid
    /// (docs/dm-behaviour.md R13.7).
    fn check_patterns(&self) -> Result<(), SimError> {
        if !(self.do_dbs.is_empty() && self.do_tables.is_empty()) {
            AllowFilter::new(self.lower, &self.do_dbs, &self.do_tables)
                .map_err(|err| SimError::new(20044, format!("generate block allow list error: {err}")))?;
        }
        let routes: Vec<(String, String, String, String)> = self
            .routes
            .iter()
            .map(|r| (r.schema.clone(), r.table.clone(), r.target_schema.clone(), r.target_table.clone()))
            .collect();
        Router::new(self.lower, &routes)
            .map_err(|err| SimError::new(20045, format!("generate table router error: {err}")))?;
        Ok(())
    }

    /// Whether the worker migrates `db.table` (no rules: everything but system schemas).
    #[cfg(test)]
    pub fn allows(&self, db: &str, table: &str) -> bool {
        self.matcher().is_ok_and(|m| m.allows(db, table))
    }

    /// Target of `db.table` as the syncer routes it.
    #[cfg(test)]
    pub fn route(&self, db: &str, table: &str) -> (String, String) {
        match self.matcher() {
            Ok(m) => m.route(db, table),
            Err(_) => (db.to_string(), table.to_string()),
        }
    }
}

/// A subtask's filter and router.
pub(crate) struct Matcher {
    allow: Option<AllowFilter>,
    router: Router,
}

impl Matcher {
    /// System schemas are skipped whatever the rules say (the syncer and the dump both skip them).
    pub fn allows(&self, db: &str, table: &str) -> bool {
        const SYSTEM: [&str; 7] = [
            "DM_HEARTBEAT",
            "SYS",
            "MYSQL",
            "INFORMATION_SCHEMA",
            "INSPECTION_SCHEMA",
            "PERFORMANCE_SCHEMA",
            "METRICS_SCHEMA",
        ];
        if SYSTEM.contains(&db.to_uppercase().as_str()) {
            return false;
        }
        self.allow.as_ref().is_none_or(|a| a.allows(db, table))
    }

    /// The syncer's route: a table that matches two routes on one level keeps its own name (the router's error
    /// is ignored there).
    pub fn route(&self, db: &str, table: &str) -> (String, String) {
        self.router.route(db, table).unwrap_or_else(|_| (db.to_string(), table.to_string()))
    }
}

fn is_remote(dir: &str) -> bool {
    dir.contains("://")
}

/// `OpenAPITaskToSubTaskConfigs` for one source (docs/dm-behaviour.md §5). Errors are those `SubTaskConfig.Adjust`
/// raises.
pub(crate) fn to_subcfg(task: &Task, source: &str, case_insensitive: bool) -> Result<SubCfg, SimError> {
    let sc = task.source_config.source_conf.iter().find(|c| c.source_name == source);
    let meta = sc.and_then(|c| {
        (c.binlog_name.is_some() || c.binlog_pos.is_some() || c.binlog_gtid.is_some()).then(|| {
            (
                c.binlog_name.clone().unwrap_or_default(),
                c.binlog_pos.unwrap_or(0),
                c.binlog_gtid.clone().unwrap_or_default(),
            )
        })
    });
    let f = task.source_config.full_migrate_conf.clone().unwrap_or_default();
    if let Some(sec) = &f.security
        && (sec.ssl_ca_content.is_empty() || sec.ssl_cert_content.is_empty() || sec.ssl_key_content.is_empty())
    {
        return Err(e::openapi("the content of security in full_migrate_conf should not be empty"));
    }
    let mut dir = f.data_dir.clone().filter(|d| !d.is_empty()).unwrap_or_else(|| crate::dm::facts::DATA_DIR.into());
    while dir.len() > 1 && dir.ends_with('/') {
        dir.pop();
    }
    if matches!(task.task_mode.as_str(), "all" | "full") {
        dir = if is_remote(&dir) { format!("{dir}/{}.{source}", task.name) } else { format!("{dir}.{}", task.name) };
    }
    let full = FullStored {
        export_threads: f.export_threads.unwrap_or(crate::dm::facts::EXPORT_THREADS),
        import_threads: f.import_threads.unwrap_or(crate::dm::facts::IMPORT_THREADS),
        data_dir: dir,
        consistency: f.consistency.clone().filter(|c| !c.is_empty()),
        import_mode: f.import_mode.clone().unwrap_or_else(|| crate::dm::facts::IMPORT_MODE.into()),
        pd_addr: f.pd_addr.clone(),
        security: f.security.clone(),
        // v7.6+: task.on_duplicate is ignored on write; only on_duplicate_logical applies (docs/dm-behaviour.md §9).
        on_dup_logical: f.on_duplicate_logical.clone().unwrap_or_else(|| crate::dm::facts::ON_DUPLICATE.into()),
        on_dup_physical: f.on_duplicate_physical.clone(),
        sorting_dir: f.sorting_dir.clone(),
        disk_quota: f.disk_quota.clone(),
        checksum: f.checksum.clone(),
        analyze: f.analyze.clone(),
        range_concurrency: f.range_concurrency.unwrap_or(crate::dm::facts::RANGE_CONCURRENCY),
        compress: f.compress_kv_pairs.clone(),
    };
    let incr = task.source_config.incr_migrate_conf.clone().unwrap_or_default();
    let mut target = task.target_config.clone();
    target.session = target.session.filter(|s| s.foreign_key_checks.is_some());
    let (mut routes, mut do_dbs, mut do_tables, mut filters) = (vec![], vec![], vec![], vec![]);
    let lower = |s: &str| if case_insensitive { s.to_lowercase() } else { s.to_string() };
    for rule in task.table_migrate_rule.iter().filter(|r| r.source.source_name == source) {
        let (db, tbl) = (&rule.source.schema, &rule.source.table);
        if let Some(t) = &rule.target
            && let Some(ts) = t.schema.as_deref().filter(|s| !s.is_empty())
        {
            // Patterns are lowercased in place on a case-insensitive upstream; targets keep their case (R5.10, R9.7).
            routes.push(Route {
                schema: lower(db),
                table: lower(tbl),
                target_schema: ts.to_string(),
                target_table: t.table.clone().unwrap_or_default(),
            });
        }
        if tbl.is_empty() {
            do_dbs.push(lower(db));
        } else {
            do_tables.push((lower(db), lower(tbl)));
        }
        for fname in rule.binlog_filter_rule.iter().flatten() {
            let Some(fr) = task.binlog_filter_rule.as_ref().and_then(|m| m.get(fname)) else {
                return Err(e::openapi(format!("filter rule name {fname} not found.")));
            };
            filters.push(Filter {
                schema: lower(db),
                table: lower(tbl),
                events: fr.ignore_event.clone(),
                sqls: fr.ignore_sql.clone(),
            });
        }
    }
    let cfg = SubCfg {
        name: task.name.clone(),
        mode: task.task_mode.clone(),
        timezone: task.timezone.clone().unwrap_or_default(),
        meta_schema: task.meta_schema.clone().unwrap_or_else(|| crate::dm::facts::META_SCHEMA.into()),
        meta,
        shard_mode: task.shard_mode.clone(),
        strict: task.strict_optimistic_shard_mode.unwrap_or(false),
        online_ddl: task.enhance_online_schema_change,
        target,
        full,
        safe_mode: incr.safe_mode.unwrap_or(false),
        ignore_checking: task.ignore_checking_items.clone().unwrap_or_default(),
        routes,
        do_dbs,
        do_tables,
        filters,
        repl_threads: incr.repl_threads.unwrap_or(crate::dm::facts::REPL_THREADS),
        repl_batch: incr.repl_batch.unwrap_or(crate::dm::facts::REPL_BATCH),
        lower: case_insensitive,
    };
    cfg.check_patterns()?;
    Ok(cfg)
}

/// `CheckCanUpdateCfg`: the first field that differs and may not change through PUT, if any (docs/dm-behaviour.md §6).
pub(crate) fn non_updatable_diff(old: &SubCfg, new: &SubCfg) -> Option<&'static str> {
    let checks: [(&str, bool); 13] = [
        ("task_mode", old.mode != new.mode),
        ("timezone", old.timezone != new.timezone),
        ("meta_schema", old.meta_schema != new.meta_schema),
        ("source_conf binlog position", old.meta != new.meta),
        ("shard_mode", old.shard_mode != new.shard_mode),
        ("strict_optimistic_shard_mode", old.strict != new.strict),
        ("enhance_online_schema_change", old.online_ddl != new.online_ddl),
        (
            "target_config",
            old.target.host != new.target.host
                || old.target.port != new.target.port
                || old.target.user != new.target.user
                || old.target.password != new.target.password
                || old.target.security != new.target.security,
        ),
        ("target_config.session.foreign_key_checks", old.target.session != new.target.session),
        ("full_migrate_conf", old.full != new.full),
        ("incr_migrate_conf.safe_mode", old.safe_mode != new.safe_mode),
        ("ignore_checking_items", old.ignore_checking != new.ignore_checking),
        ("name", old.name != new.name),
    ];
    checks.iter().find(|(_, differs)| *differs).map(|(f, _)| *f)
}

/// `SourceCfgToOpenAPISource` (docs/dm-behaviour.md §3): password always masked, security contents hidden, server
/// fields filled.
pub(crate) fn source_view(cfg: &Source) -> Value {
    let security = match &cfg.security {
        None => Value::Null,
        Some(s) => json!({
            "ssl_ca_content": "",
            "ssl_cert_content": "",
            "ssl_key_content": "",
            "cert_allowed_cn": s.cert_allowed_cn,
        }),
    };
    let purge = cfg.purge.clone().unwrap_or_default();
    let relay = cfg.relay_config.clone().unwrap_or_default();
    json!({
        "source_name": cfg.source_name,
        "host": cfg.host,
        "port": cfg.port,
        "user": cfg.user,
        "password": MASKED_PASSWORD,
        "enable_gtid": cfg.enable_gtid,
        "enable": cfg.enable,
        "flavor": cfg.flavor.clone().unwrap_or_default(),
        "security": security,
        "purge": {
            "interval": purge.interval.unwrap_or(crate::dm::facts::PURGE_INTERVAL),
            "expires": purge.expires.unwrap_or(crate::dm::facts::PURGE_EXPIRES),
            "remain_space": purge.remain_space.unwrap_or(crate::dm::facts::PURGE_REMAIN_SPACE),
        },
        "relay_config": {
            "enable_relay": relay.enable_relay.unwrap_or(false),
            "relay_binlog_name": relay.relay_binlog_name.unwrap_or_default(),
            "relay_binlog_gtid": relay.relay_binlog_gtid.unwrap_or_default(),
            "relay_dir": relay.relay_dir.unwrap_or_else(|| crate::dm::facts::RELAY_DIR_STORED.into()),
        },
    })
}

fn security_json(s: &Option<Security>) -> Value {
    match s {
        None => Value::Null,
        Some(s) => json!({
            "ssl_ca_content": s.ssl_ca_content,
            "ssl_cert_content": s.ssl_cert_content,
            "ssl_key_content": s.ssl_key_content.expose(),
            "cert_allowed_cn": s.cert_allowed_cn,
        }),
    }
}

/// `SubTaskConfigsToOpenAPITask` (docs/dm-behaviour.md §9): global fields from an arbitrary subtask, rules rebuilt per
/// source, filters renamed, lists shuffled, write-only fields dropped. What comes back depends on the generation
/// (docs/dm-behaviour.md §15): v8.5 shows `target_config` as `{host, port, user, password, security: null}` and
/// `full_migrate_conf` as `{export_threads, import_threads, data_dir, consistency?}`; v26.3 adds `import_mode`,
/// `pd_addr` (physical) and the target and import `security`; HEAD adds `safe_mode`, `session` and `timezone`.
pub(crate) fn task_view(entry: &TaskEntry, generation: Generation, rng: &mut StdRng) -> Value {
    let head = generation.head();
    let v26 = generation.v26();
    let mut subs: Vec<(&String, SubCfg)> = entry
        .subtasks
        .iter()
        .filter_map(|(s, sub)| {
            let c = to_subcfg(&sub.cfg, s, sub.lower).ok()?;
            // A dmctl-created subtask reads back from its full configuration (docs/dm-behaviour.md §11).
            Some((
                s,
                match &sub.dmctl {
                    Some(d) => d.view_subcfg(c),
                    None => c,
                },
            ))
        })
        .collect();
    if subs.is_empty() {
        return Value::Null;
    }
    subs.shuffle(rng);
    let pick = rng.random_range(0..subs.len());
    let g = subs[pick].1.clone();

    let mut rules = vec![];
    let mut filters = Map::new();
    let mut source_conf = vec![];
    for (s, c) in &subs {
        let names: Vec<String> = (0..c.filters.len()).map(|i| crate::dm::facts::filter_rule_name(s, i)).collect();
        for (i, f) in c.filters.iter().enumerate() {
            let mut fr = Map::new();
            if let Some(ev) = &f.events {
                fr.insert("ignore_event".into(), json!(ev));
            }
            if let Some(sq) = &f.sqls {
                fr.insert("ignore_sql".into(), json!(sq));
            }
            filters.insert(names[i].clone(), Value::Object(fr));
        }
        let mut seen: HashSet<(String, String)> = HashSet::new();
        let mut push = |schema: &str, table: &str, target: Option<Value>| {
            if !seen.insert((schema.to_string(), table.to_string())) {
                return;
            }
            let mut r = json!({"source": {"source_name": s, "schema": schema, "table": table}});
            if let Some(t) = target {
                r["target"] = t;
            }
            if !names.is_empty() {
                r["binlog_filter_rule"] = json!(names);
            }
            rules.push(r);
        };
        for r in &c.routes {
            let mut t = json!({"schema": r.target_schema});
            // target.table "" reads back as absent.
            if !r.target_table.is_empty() {
                t["table"] = json!(r.target_table);
            }
            push(&r.schema, &r.table, Some(t));
        }
        for db in &c.do_dbs {
            push(db, "", None);
        }
        for (db, t) in &c.do_tables {
            push(db, t, None);
        }
        let mut conf = json!({"source_name": s});
        // Binlog positions come back all-or-none.
        if let Some((name, pos, gtid)) = &c.meta {
            conf["binlog_name"] = json!(name);
            conf["binlog_pos"] = json!(pos);
            conf["binlog_gtid"] = json!(gtid);
        }
        source_conf.push(conf);
    }
    rules.shuffle(rng);
    source_conf.shuffle(rng);

    let mut full = json!({
        "export_threads": g.full.export_threads,
        "import_threads": g.full.import_threads,
        "data_dir": strip_data_dir(&g.full.data_dir, &g.name, &g.mode, subs[pick].0),
    });
    if let Some(c) = &g.full.consistency {
        full["consistency"] = json!(c);
    }
    if v26 {
        full["import_mode"] = json!(g.full.import_mode);
        if g.full.import_mode == "physical" {
            full["pd_addr"] = json!(g.full.pd_addr.clone().unwrap_or_default());
        }
        full["security"] = security_json(&g.full.security);
    }
    let mut incr = json!({"repl_batch": g.repl_batch, "repl_threads": g.repl_threads});
    if head {
        incr["safe_mode"] = json!(g.safe_mode);
    }
    // `security` has no `omitempty`: v8.5 never fills it, so it reads back `null` whatever was sent.
    let mut target = json!({
        "host": g.target.host,
        "port": g.target.port,
        "user": g.target.user,
        "password": g.target.password.expose(),
        "security": if v26 { security_json(&g.target.security) } else { Value::Null },
    });
    if head && let Some(fk) = g.target.session.as_ref().and_then(|s| s.foreign_key_checks.clone()) {
        target["session"] = json!({"foreign_key_checks": fk});
    }
    let mut v = json!({
        "name": g.name,
        "task_mode": g.mode,
    });
    if let Some(sm) = &g.shard_mode {
        v["shard_mode"] = json!(sm);
    }
    v["strict_optimistic_shard_mode"] = json!(g.strict);
    v["meta_schema"] = json!(g.meta_schema);
    if head && !g.timezone.is_empty() {
        v["timezone"] = json!(g.timezone);
    }
    v["enhance_online_schema_change"] = json!(g.online_ddl);
    // v7.6+: on_duplicate reports the stored on_duplicate_logical (docs/dm-behaviour.md §9).
    v["on_duplicate"] = json!(g.full.on_dup_logical);
    v["target_config"] = target;
    if !filters.is_empty() {
        v["binlog_filter_rule"] = Value::Object(filters);
    }
    v["table_migrate_rule"] = json!(rules);
    v["source_config"] = json!({"full_migrate_conf": full, "incr_migrate_conf": incr, "source_conf": source_conf});
    if !g.ignore_checking.is_empty() {
        v["ignore_checking_items"] = json!(g.ignore_checking);
    }
    v
}

fn strip_data_dir(stored: &str, task: &str, mode: &str, source: &str) -> String {
    if !matches!(mode, "all" | "full") {
        return stored.to_string();
    }
    stored
        .strip_suffix(&format!("/{task}.{source}"))
        .or_else(|| stored.strip_suffix(&format!(".{task}")))
        .unwrap_or(stored)
        .to_string()
}

/// A subtask whose worker is registered but does not answer: stage and unit `""` and the gRPC error
/// (docs/dm-behaviour.md §8; `getTaskStatus` fills only name, source, worker and the message when the worker query
/// failed).
pub(crate) fn unreachable_status(task: &str, sub: &SubTask, worker: &str, error_msg: &str) -> Value {
    json!({
        "name": task,
        "source_name": sub.source,
        "worker_name": worker,
        "stage": "",
        "unit": "",
        "error_msg": error_msg,
    })
}

/// One `SubTaskStatus` entry (docs/dm-behaviour.md §8); v26.3 added `bps`/`progress` to dump, `bps` to load and the I/O
/// counters to sync (docs/dm-behaviour.md §15). `sync` carries the positions of a subtask in the Sync unit.
pub(crate) fn subtask_status(
    task: &str,
    sub: &SubTask,
    worker: Option<&str>,
    generation: Generation,
    phase: std::time::Duration,
    sync: Option<&super::checkpoint::SyncView>,
) -> Value {
    let Some(worker) = worker else {
        return json!({
            "name": task,
            "source_name": sub.source,
            "worker_name": "",
            "stage": "",
            "unit": "",
            "error_msg": super::relay::no_worker_msg(&sub.source),
        });
    };
    let mut v = json!({
        "name": task,
        "source_name": sub.source,
        "worker_name": worker,
        "stage": sub.observed.as_str(),
        "unit": sub.unit.as_str(),
        "unresolved_ddl_lock_id": sub.shard.lock_id(task),
    });
    // Progress of the current unit, from the time the subtask has been running.
    let now = std::time::Instant::now();
    let total = sub.worked + sub.run_since.map(|t| now.saturating_duration_since(t)).unwrap_or_default();
    let start = if sub.unit == Unit::Load && sub.cfg.task_mode != "load" { phase } else { Default::default() };
    let frac = if sub.observed == Stage::Finished {
        1.0
    } else {
        (total.saturating_sub(start).as_secs_f64() / phase.as_secs_f64().max(1e-9)).clamp(0.0, 0.99)
    };
    let progress = format!("{:.2} %", frac * 100.0);
    match sub.unit {
        Unit::Dump => {
            v["dump_status"] = json!({
                "total_tables": 4, "completed_tables": 2.0, "finished_bytes": 4096.0, "finished_rows": 100.0,
                "estimate_total_rows": 200.0,
            });
            if generation.v26() {
                v["dump_status"]["bps"] = json!(1024);
                v["dump_status"]["progress"] = json!(progress);
            }
        }
        Unit::Load => {
            v["load_status"] = json!({
                "finished_bytes": 4096, "total_bytes": 8192, "progress": progress,
                "meta_binlog": "(mysql-bin.000001, 4)", "meta_binlog_gtid": "",
            });
            if generation.v26() {
                v["load_status"]["bps"] = json!(1024);
            }
        }
        Unit::Sync => {
            // Positions come from the checkpoint model; blocking DDLs and groups are null unless a control set
            // them (docs/dm-behaviour.md §8).
            let (ddls, groups) = sub.shard.status_fields();
            let mut s = json!({
                "total_events": sync.map(|v| v.total_events).unwrap_or(0), "total_tps": 1, "recent_tps": 1,
                "master_binlog": sync.map(|v| v.master_binlog.as_str()).unwrap_or(""),
                "master_binlog_gtid": sync.map(|v| v.master_binlog_gtid.as_str()).unwrap_or(""),
                "syncer_binlog": sync.map(|v| v.syncer_binlog.as_str()).unwrap_or(""),
                "syncer_binlog_gtid": sync.map(|v| v.syncer_binlog_gtid.as_str()).unwrap_or(""),
                "blocking_ddls": ddls, "unresolved_groups": groups,
                "synced": sync.is_some_and(|v| v.synced),
                "binlog_type": "remote", "seconds_behind_master": sync.map(|v| v.seconds_behind_master).unwrap_or(0),
            });
            if generation.v26() {
                s["io_total_bytes"] = json!(65536);
                s["dump_io_total_bytes"] = json!(65536);
            }
            v["sync_status"] = s;
        }
        _ => {}
    }
    if let Some(msg) = &sub.error_msg {
        v["error_msg"] = json!(msg);
    }
    v
}

// ------------------------------------------------------------------------------------------------ converters

/// `POST /tasks/converters` (docs/dm-behaviour.md §11), a reasonable subset: OpenAPI task → dmctl YAML, and dmctl YAML
/// → OpenAPI task for the common keys. Answers 200 (the spec says 201: docs/dm-behaviour.md §11).
pub(crate) fn convert(state: &mut State, req: Value) -> Result<super::state::Out, SimError> {
    let task_json = req.get("task").filter(|t| !t.is_null()).cloned();
    let file = req.get("task_config_file").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
    // The file wins when both are given (`convertTaskConfig`).
    let mut task: Task = match (task_json, file) {
        (_, Some(yaml)) => yaml_to_task(&yaml)?,
        (Some(t), None) => serde_json::from_value(t).map_err(|e| SimError::new(0, e.to_string()))?,
        (None, None) => {
            return Err(e::openapi("request body is invalid one of `task` or `task_config_file` must be entered."));
        }
    };
    if task.meta_schema.as_deref().is_none_or(str::is_empty) {
        task.meta_schema = Some(crate::dm::facts::META_SCHEMA.into());
    }
    for sc in &task.source_config.source_conf {
        if !state.sources.contains_key(&sc.source_name) {
            return Err(SimError::new(20031, format!("source-id {} in mysql-instances not found", sc.source_name))
                .workaround("Please create the source first."));
        }
    }
    let yaml = task_to_yaml(&task);
    let mut tv = serde_json::to_value(&task).map_err(|e| SimError::new(0, e.to_string()))?;
    if let Some(o) = tv.as_object_mut() {
        o.remove("status_list");
    }
    Ok(super::state::Out::Json(200, json!({"task": tv, "task_config_file": yaml})))
}

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn task_to_yaml(t: &Task) -> String {
    let mut y = String::new();
    y.push_str(&format!("name: {}\n", q(&t.name)));
    y.push_str(&format!("task-mode: {}\n", q(&t.task_mode)));
    if let Some(s) = &t.shard_mode {
        y.push_str(&format!("shard-mode: {}\n", q(s)));
    }
    y.push_str(&format!("meta-schema: {}\n", q(t.meta_schema.as_deref().unwrap_or(crate::dm::facts::META_SCHEMA))));
    y.push_str(&format!("online-ddl: {}\n", t.enhance_online_schema_change));
    let tc = &t.target_config;
    y.push_str(&format!(
        "target-database:\n  host: {}\n  port: {}\n  user: {}\n  password: {}\n",
        q(&tc.host),
        tc.port,
        q(&tc.user),
        q(tc.password.expose())
    ));
    let full = t.source_config.full_migrate_conf.clone().unwrap_or_default();
    let incr = t.source_config.incr_migrate_conf.clone().unwrap_or_default();
    y.push_str("mysql-instances:\n");
    let mut bal = String::new();
    let mut routes = String::new();
    let mut filters = String::new();
    for sc in &t.source_config.source_conf {
        let s = &sc.source_name;
        y.push_str(&format!("- source-id: {}\n", q(s)));
        if sc.binlog_name.is_some() || sc.binlog_gtid.is_some() {
            y.push_str("  meta:\n");
            if let Some(n) = &sc.binlog_name {
                y.push_str(&format!("    binlog-name: {}\n", q(n)));
            }
            if let Some(p) = sc.binlog_pos {
                y.push_str(&format!("    binlog-pos: {p}\n"));
            }
            if let Some(g) = &sc.binlog_gtid {
                y.push_str(&format!("    binlog-gtid: {}\n", q(g)));
            }
        }
        let rules: Vec<&TableMigrateRule> =
            t.table_migrate_rule.iter().filter(|r| &r.source.source_name == s).collect();
        if !rules.is_empty() {
            y.push_str(&format!("  block-allow-list: {}\n", q(&format!("ba-{s}"))));
            bal.push_str(&format!("  {}:\n", q(&format!("ba-{s}"))));
            let dbs: Vec<&str> =
                rules.iter().filter(|r| r.source.table.is_empty()).map(|r| r.source.schema.as_str()).collect();
            let tbls: Vec<(&str, &str)> = rules
                .iter()
                .filter(|r| !r.source.table.is_empty())
                .map(|r| (r.source.schema.as_str(), r.source.table.as_str()))
                .collect();
            if !dbs.is_empty() {
                bal.push_str("    do-dbs:\n");
                for d in dbs {
                    bal.push_str(&format!("    - {}\n", q(d)));
                }
            }
            if !tbls.is_empty() {
                bal.push_str("    do-tables:\n");
                for (d, tb) in tbls {
                    bal.push_str(&format!("    - db-name: {}\n      tbl-name: {}\n", q(d), q(tb)));
                }
            }
            let mut rr = vec![];
            let mut fr = vec![];
            for (i, r) in rules.iter().enumerate() {
                if let Some(tg) = &r.target
                    && let Some(ts) = tg.schema.as_deref().filter(|x| !x.is_empty())
                {
                    let n = format!("route-{s}-{i}");
                    routes.push_str(&format!(
                        "  {}:\n    schema-pattern: {}\n    table-pattern: {}\n    target-schema: {}\n    target-table: {}\n",
                        q(&n),
                        q(&r.source.schema),
                        q(&r.source.table),
                        q(ts),
                        q(tg.table.as_deref().unwrap_or(""))
                    ));
                    rr.push(n);
                }
                for (j, fname) in r.binlog_filter_rule.iter().flatten().enumerate() {
                    if let Some(f) = t.binlog_filter_rule.as_ref().and_then(|m| m.get(fname)) {
                        let n = format!("filter-{s}-{i}-{j}");
                        filters.push_str(&format!(
                            "  {}:\n    schema-pattern: {}\n    table-pattern: {}\n    events: {}\n    sql-pattern: {}\n    action: Ignore\n",
                            q(&n),
                            q(&r.source.schema),
                            q(&r.source.table),
                            serde_json::to_string(&f.ignore_event.clone().unwrap_or_default()).unwrap_or_default(),
                            serde_json::to_string(&f.ignore_sql.clone().unwrap_or_default()).unwrap_or_default(),
                        ));
                        fr.push(n);
                    }
                }
            }
            if !rr.is_empty() {
                y.push_str(&format!("  route-rules: {}\n", serde_json::to_string(&rr).unwrap_or_default()));
            }
            if !fr.is_empty() {
                y.push_str(&format!("  filter-rules: {}\n", serde_json::to_string(&fr).unwrap_or_default()));
            }
        }
        y.push_str(&format!(
            "  mydumper-thread: {}\n",
            full.export_threads.unwrap_or(crate::dm::facts::EXPORT_THREADS)
        ));
        y.push_str(&format!("  loader-thread: {}\n", full.import_threads.unwrap_or(crate::dm::facts::IMPORT_THREADS)));
        y.push_str(&format!("  syncer-thread: {}\n", incr.repl_threads.unwrap_or(crate::dm::facts::REPL_THREADS)));
    }
    if !bal.is_empty() {
        y.push_str("block-allow-list:\n");
        y.push_str(&bal);
    }
    if !routes.is_empty() {
        y.push_str("routes:\n");
        y.push_str(&routes);
    }
    if !filters.is_empty() {
        y.push_str("filters:\n");
        y.push_str(&filters);
    }
    y
}

fn yaml_err(msg: impl std::fmt::Display) -> SimError {
    SimError::new(20001, format!("fail to unmarshal task config: {msg}"))
}

/// dmctl task.yaml → OpenAPI task for the keys of docs/dm-behaviour.md §11 (named mydumper/loader/syncer blocks, thread
/// aliases, allow lists, routes, filters, meta, target database).
fn yaml_to_task(yaml: &str) -> Result<Task, SimError> {
    let doc: Value = serde_saphyr::from_str(yaml).map_err(yaml_err)?;
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let i = |v: &Value, k: &str| v.get(k).and_then(Value::as_i64);
    let name = s(&doc, "name").ok_or_else(|| yaml_err("`name` is missing"))?;
    let mode = s(&doc, "task-mode").unwrap_or_else(|| "all".into());
    let tdb = doc.get("target-database").cloned().unwrap_or(Value::Null);
    let mut task = Task {
        name,
        task_mode: mode,
        shard_mode: s(&doc, "shard-mode")
            .or_else(|| doc.get("is-sharding").and_then(Value::as_bool).filter(|b| *b).map(|_| "pessimistic".into())),
        strict_optimistic_shard_mode: doc.get("strict-optimistic-shard-mode").and_then(Value::as_bool),
        meta_schema: Some(s(&doc, "meta-schema").unwrap_or_else(|| crate::dm::facts::META_SCHEMA.into())),
        timezone: s(&doc, "timezone"),
        enhance_online_schema_change: doc.get("online-ddl").and_then(Value::as_bool).unwrap_or(true),
        on_duplicate: crate::dm::facts::ON_DUPLICATE.into(),
        target_config: TargetConfig {
            host: s(&tdb, "host").unwrap_or_default(),
            port: i(&tdb, "port").and_then(|p| u16::try_from(p).ok()).unwrap_or(4000),
            user: s(&tdb, "user").unwrap_or_default(),
            password: Secret::new(s(&tdb, "password").unwrap_or_default()),
            security: None,
            session: None,
        },
        ..Default::default()
    };
    let named = |section: &str, key: Option<String>| -> Value {
        key.and_then(|k| doc.get(section).and_then(|m| m.get(&k)).cloned()).unwrap_or(Value::Null)
    };
    let mut full = FullMigrateConf::default();
    let mut incr = IncrMigrateConf::default();
    let mut filters = BTreeMap::new();
    let instances = doc.get("mysql-instances").and_then(Value::as_array).cloned().unwrap_or_default();
    for inst in &instances {
        let sid = s(inst, "source-id").ok_or_else(|| yaml_err("mysql-instances[].source-id is missing"))?;
        let meta = inst.get("meta").cloned().unwrap_or(Value::Null);
        task.source_config.source_conf.push(TaskSourceConf {
            source_name: sid.clone(),
            binlog_name: s(&meta, "binlog-name"),
            binlog_pos: i(&meta, "binlog-pos"),
            binlog_gtid: s(&meta, "binlog-gtid"),
        });
        let md = named("mydumpers", s(inst, "mydumper-config-name"));
        let ld = named("loaders", s(inst, "loader-config-name"));
        let sy = named("syncers", s(inst, "syncer-config-name"));
        full.export_threads = i(inst, "mydumper-thread").or(i(&md, "threads")).or(full.export_threads);
        full.import_threads = i(inst, "loader-thread").or(i(&ld, "pool-size")).or(full.import_threads);
        full.data_dir = s(&ld, "dir").or(full.data_dir);
        if let Some(m) = s(&ld, "import-mode") {
            full.import_mode = Some(if m == "sql" || m == "loader" { "logical".into() } else { m });
        }
        if let Some(d) = s(&ld, "on-duplicate-logical").or(s(&ld, "on-duplicate")) {
            full.on_duplicate_logical = Some(d.clone());
            task.on_duplicate = d;
        }
        if let Some(x) =
            s(&md, "extra-args").and_then(|a| a.split("--consistency").nth(1).map(|c| c.trim().to_string()))
        {
            full.consistency = x.split_whitespace().next().map(str::to_string);
        }
        incr.repl_threads = i(inst, "syncer-thread").or(i(&sy, "worker-count")).or(incr.repl_threads);
        incr.repl_batch = i(&sy, "batch").or(incr.repl_batch);
        incr.safe_mode = sy.get("safe-mode").and_then(Value::as_bool).or(incr.safe_mode);
        let ba = named("block-allow-list", s(inst, "block-allow-list").or(s(inst, "black-white-list")));
        let mut rules: Vec<TableMigrateRule> = vec![];
        for d in ba.get("do-dbs").and_then(Value::as_array).into_iter().flatten() {
            if let Some(d) = d.as_str() {
                rules.push(TableMigrateRule {
                    source: TableRuleSource { source_name: sid.clone(), schema: d.into(), table: String::new() },
                    ..Default::default()
                });
            }
        }
        for t in ba.get("do-tables").and_then(Value::as_array).into_iter().flatten() {
            rules.push(TableMigrateRule {
                source: TableRuleSource {
                    source_name: sid.clone(),
                    schema: s(t, "db-name").unwrap_or_default(),
                    table: s(t, "tbl-name").unwrap_or_default(),
                },
                ..Default::default()
            });
        }
        for rn in inst.get("route-rules").and_then(Value::as_array).into_iter().flatten() {
            let r = named("routes", rn.as_str().map(str::to_string));
            if r.is_null() {
                continue;
            }
            rules.push(TableMigrateRule {
                source: TableRuleSource {
                    source_name: sid.clone(),
                    schema: s(&r, "schema-pattern").unwrap_or_default(),
                    table: s(&r, "table-pattern").unwrap_or_default(),
                },
                target: Some(TableRuleTarget {
                    schema: s(&r, "target-schema"),
                    table: s(&r, "target-table").filter(|t| !t.is_empty()),
                }),
                binlog_filter_rule: None,
            });
        }
        for fnm in inst.get("filter-rules").and_then(Value::as_array).into_iter().flatten() {
            let Some(fname) = fnm.as_str() else { continue };
            let f = named("filters", Some(fname.to_string()));
            if f.is_null() {
                continue;
            }
            let strs = |k: &str| {
                f.get(k)
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect::<Vec<_>>())
            };
            filters.insert(
                fname.to_string(),
                BinlogFilterRule { ignore_event: strs("events"), ignore_sql: strs("sql-pattern") },
            );
            let (sp, tp) = (s(&f, "schema-pattern").unwrap_or_default(), s(&f, "table-pattern").unwrap_or_default());
            match rules.iter_mut().find(|r| r.source.schema == sp && r.source.table == tp) {
                Some(r) => r.binlog_filter_rule.get_or_insert_with(Vec::new).push(fname.to_string()),
                None => rules.push(TableMigrateRule {
                    source: TableRuleSource { source_name: sid.clone(), schema: sp, table: tp },
                    target: None,
                    binlog_filter_rule: Some(vec![fname.to_string()]),
                }),
            }
        }
        task.table_migrate_rule.extend(rules);
    }
    if !filters.is_empty() {
        task.binlog_filter_rule = Some(filters);
    }
    if full.on_duplicate_logical.is_none() {
        full.on_duplicate_logical = Some(task.on_duplicate.clone());
    }
    task.source_config.full_migrate_conf = Some(full);
    task.source_config.incr_migrate_conf = Some(incr);
    if let Some(items) = doc.get("ignore-checking-items").and_then(Value::as_array) {
        task.ignore_checking_items = Some(items.iter().filter_map(|x| x.as_str().map(str::to_string)).collect());
    }
    Ok(task)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Task {
        serde_json::from_value(json!({
            "name": "t", "task_mode": "all", "on_duplicate": "replace",
            "target_config": {"host": "h", "port": 4000, "user": "u", "password": ""},
            "binlog_filter_rule": {"f": {"ignore_event": ["drop table"]}},
            "table_migrate_rule": [
                {"source": {"source_name": "a", "schema": "Shop", "table": "Orders"},
                 "target": {"schema": "dst", "table": ""}, "binlog_filter_rule": ["f"]},
                {"source": {"source_name": "a", "schema": "crm", "table": ""}},
                {"source": {"source_name": "b", "schema": "x", "table": ""}}
            ],
            "source_config": {"source_conf": [{"source_name": "a"}], "full_migrate_conf": {"data_dir": "s3://b/d/"}}
        }))
        .unwrap()
    }

    #[test]
    fn conversion_keeps_only_the_sources_rules() {
        let c = to_subcfg(&t(), "a", true).unwrap();
        assert_eq!(c.do_dbs, ["crm"]);
        assert_eq!(c.do_tables, [("shop".to_string(), "orders".to_string())], "lowercased when case-insensitive");
        assert_eq!(c.routes.len(), 1);
        assert_eq!(c.routes[0].schema, "shop", "route patterns are lowercased too");
        assert_eq!(c.routes[0].target_schema, "dst", "targets keep their case");
        assert_eq!(c.filters.len(), 1);
        assert_eq!(c.full.data_dir, "s3://b/d/t.a");
        // Both lists are non-empty: a table must match a do-db and a do-table (R13.7), which no table does here.
        assert!(!c.allows("crm", "anything") && !c.allows("shop", "orders") && !c.allows("x", "y"));
        let only_dbs = to_subcfg(&t(), "b", true).unwrap();
        assert!(only_dbs.allows("X", "anything") && !only_dbs.allows("mysql", "user"));
        assert_eq!(c.route("Shop", "Orders"), ("dst".to_string(), "Orders".to_string()));
    }

    #[test]
    fn updatable_fields_are_not_reported() {
        let old = to_subcfg(&t(), "a", false).unwrap();
        let mut new = old.clone();
        new.repl_batch = 1;
        new.do_dbs.clear();
        assert_eq!(non_updatable_diff(&old, &new), None);
        new.safe_mode = true;
        assert_eq!(non_updatable_diff(&old, &new), Some("incr_migrate_conf.safe_mode"));
    }

    #[test]
    fn data_dir_suffix_round_trip() {
        assert_eq!(strip_data_dir("./d.t", "t", "full", "a"), "./d");
        assert_eq!(strip_data_dir("s3://b/d/t.a", "t", "all", "a"), "s3://b/d");
        assert_eq!(strip_data_dir("./d.t", "t", "incremental", "a"), "./d.t");
    }
}
