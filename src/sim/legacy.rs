//! DM-master's legacy grpc-gateway endpoints under `/apis/v1alpha1` (served whether or not the OpenAPI is on),
//! and tasks created the dmctl way (docs/dm-behaviour.md §11).
//!
//! A subtask's full configuration ([`FullCfg`], DM's `SubTaskConfig`) is kept for dmctl-created tasks and built
//! from the stored OpenAPI task for the others. `GET /apis/v1alpha1/tasks/{name}?type=TaskType` (`GetCfg`)
//! renders the task as dmctl task YAML from it (target password masked, TLS bytes cleared);
//! `GET /apis/v1alpha1/subtasks/{name}` (`GetSubTaskCfg`) renders each subtask as TOML, passwords included, as
//! the server does. The OpenAPI views of a dmctl-created task are the lossy projection the server makes.

use std::collections::BTreeMap;
use std::time::Instant;

use rand::seq::SliceRandom;
use serde_json::{Map, Value, json};

use super::checkpoint::BinlogMeta;
use super::errors::{SimError, e};
use super::project::{Filter, Route, SubCfg};
use super::shard::ShardDdlState;
use super::state::{Expected, State, SubTask, set_expected, unit_for};
use crate::dm::types::*;
use crate::secret::Secret;

const SHADOW_RULE: &str = "^_(.+)_(?:new|gho)$";
const TRASH_RULE: &str = "^_(.+)_(?:ghc|del|old)$";
const MASKED: &str = "******";

/// The target database of a subtask (`DBConfig`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TargetDb {
    pub host: String,
    pub port: i64,
    pub user: String,
    pub password: String,
    pub session: Map<String, Value>,
    /// `security` as configured (paths and `cert-allowed-cn`); TLS contents are never kept here.
    pub security: Option<Map<String, Value>>,
}

/// A subtask's full configuration, as DM-master stores it (`SubTaskConfig`); sections are kept as ordered JSON
/// objects with DM's keys, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FullCfg {
    pub name: String,
    pub mode: String,
    pub is_sharding: bool,
    pub shard_mode: String,
    pub strict: bool,
    pub ignore: Vec<String>,
    pub meta_schema: String,
    /// Deprecated heartbeat intervals: dmctl tasks carry DM's defaults (1, 10), OpenAPI ones zeros.
    pub heartbeat: (i64, i64),
    pub timezone: String,
    pub case_sensitive: bool,
    pub collation: String,
    pub online_ddl: bool,
    pub shadow_rules: Vec<String>,
    pub trash_rules: Vec<String>,
    pub clean_dump_file: bool,
    pub target: TargetDb,
    pub source_id: String,
    pub meta: Option<BinlogMeta>,
    pub routes: Vec<Value>,
    pub filters: Vec<Value>,
    pub expr_filters: Vec<Value>,
    pub ba: Option<Value>,
    pub mydumper: Value,
    pub loader: Value,
    pub syncer: Value,
    pub validator: Value,
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}
fn strs(v: &Value, k: &str) -> Vec<String> {
    v.get(k)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}
fn has_load(mode: &str) -> bool {
    matches!(mode, "all" | "full" | "load")
}

fn default_mydumper() -> Value {
    json!({"mydumper-path": "./bin/mydumper", "threads": 4, "chunk-filesize": "64", "statement-size": 0, "rows": 0,
           "where": "", "skip-tz-utc": true, "extra-args": ""})
}
fn default_loader() -> Value {
    json!({"pool-size": 16, "dir": "./dumped_data", "sorting-dir-physical": "", "import-mode": "logical",
           "on-duplicate": "", "on-duplicate-logical": "replace", "on-duplicate-physical": "", "disk-quota-physical": 0,
           "checksum-physical": "", "analyze": "", "range-concurrency": 0, "compress-kv-pairs": "", "pd-addr": ""})
}
fn default_syncer() -> Value {
    json!({"meta-file": "", "worker-count": 16, "batch": 100, "queue-size": 1024, "checkpoint-flush-interval": 30,
           "compact": false, "multiple-rows": false, "max-retry": 0, "auto-fix-gtid": false, "enable-gtid": false,
           "disable-detect": false, "safe-mode": false, "safe-mode-duration": "", "enable-ansi-quotes": false})
}
fn default_validator() -> Value {
    json!({"mode": "none", "worker-count": 4, "validate-interval": "10s", "check-interval": "5s",
           "row-error-delay": "30m0s", "meta-flush-interval": "5m0s", "batch-query-size": 100,
           "max-pending-row-size": "500m", "max-pending-row-count": 2147483647})
}

/// `base` with the keys of `over` written in; unknown keys are a YAML decoding error, as DM decodes strictly.
fn overlay(mut base: Value, over: Option<&Value>, what: &str) -> Result<Value, SimError> {
    let Some(over) = over.filter(|v| !v.is_null()) else { return Ok(base) };
    let Some(o) = over.as_object() else { return Err(yaml_err(format!("{what} must be a mapping"))) };
    for (k, v) in o {
        match base.get_mut(k) {
            Some(slot) => *slot = v.clone(),
            None => return Err(yaml_err(format!("field {k} not found in {what}"))),
        }
    }
    Ok(base)
}

fn yaml_err(msg: impl std::fmt::Display) -> SimError {
    SimError::new(20003, format!("decode task config failed: {msg}"))
        .workaround("Please check the configuration file has correct YAML format.")
}

fn cfg_err(code: i64, msg: impl Into<String>) -> SimError {
    SimError::new(code, msg)
}

/// The `SubTaskConfig.Adjust` defaults of the loader, syncer and validator sections.
fn adjust_sections(
    mode: &str,
    name: &str,
    source: &str,
    loader: &mut Value,
    syncer: &mut Value,
    validator: &mut Value,
) -> Result<(), SimError> {
    if has_load(mode) {
        let dir = loader["dir"].as_str().unwrap_or(crate::dm::facts::DATA_DIR).trim_end_matches('/').to_string();
        let dir = if dir.contains("://") { format!("{dir}/{name}.{source}") } else { format!("{dir}.{name}") };
        if loader["sorting-dir-physical"].as_str().is_none_or(str::is_empty) {
            loader["sorting-dir-physical"] =
                json!(if dir.contains("://") { format!("./sorting.{name}") } else { format!("{dir}.sorting") });
        }
        loader["dir"] = json!(dir);
    }
    let im = loader["import-mode"].as_str().unwrap_or("").to_ascii_lowercase();
    loader["import-mode"] = json!(match im.as_str() {
        "" | "sql" | "loader" => "logical".to_string(),
        "logical" | "physical" => im,
        other => return Err(cfg_err(20053, format!("invalid load mode '{other}'"))),
    });
    for (k, d) in [
        ("on-duplicate-logical", "replace"),
        ("on-duplicate-physical", "none"),
        ("checksum-physical", "required"),
        ("analyze", "optional"),
    ] {
        if loader[k].as_str().is_none_or(str::is_empty) {
            loader[k] = json!(d);
        }
    }
    if syncer["queue-size"].as_i64() == Some(0) {
        syncer["queue-size"] = json!(1024);
    }
    if syncer["checkpoint-flush-interval"].as_i64() == Some(0) {
        syncer["checkpoint-flush-interval"] = json!(30);
    }
    if syncer["safe-mode-duration"].as_str().is_none_or(str::is_empty) {
        let cfi = syncer["checkpoint-flush-interval"].as_i64().unwrap_or(30);
        syncer["safe-mode-duration"] = json!(format!("{}s", 2 * cfi));
    }
    let smd = syncer["safe-mode-duration"].as_str().unwrap_or_default().to_string();
    match super::taskargs::go_duration(&smd) {
        Err(_) => return Err(cfg_err(20060, format!("safe-mode-duration '{smd}' parsed failed"))),
        Ok(d) if d.is_zero() && syncer["safe-mode"].as_bool() == Some(true) => {
            return Err(cfg_err(20061, "safe-mode(true) conflicts with safe-mode-duration(0s)"));
        }
        _ => {}
    }
    if !matches!(validator["mode"].as_str(), Some("none" | "fast" | "full")) {
        return Err(cfg_err(20055, "invalid validation mode"));
    }
    Ok(())
}

impl FullCfg {
    /// The full configuration of a subtask created through the OpenAPI (`OpenAPITaskToSubTaskConfigs`).
    pub fn from_openapi(task: &Task, source: &str, c: &SubCfg) -> FullCfg {
        let mut mydumper = default_mydumper();
        mydumper["threads"] = json!(c.full.export_threads);
        if let Some(cons) = &c.full.consistency {
            mydumper["extra-args"] = json!(format!("--consistency {cons}"));
        }
        let mut loader = default_loader();
        loader["pool-size"] = json!(c.full.import_threads);
        loader["dir"] = json!(c.full.data_dir);
        loader["import-mode"] = json!(c.full.import_mode);
        loader["on-duplicate-logical"] = json!(c.full.on_dup_logical);
        loader["on-duplicate-physical"] = json!(c.full.on_dup_physical.clone().unwrap_or_else(|| "none".into()));
        loader["checksum-physical"] = json!(c.full.checksum.clone().unwrap_or_else(|| "required".into()));
        loader["analyze"] = json!(c.full.analyze.clone().unwrap_or_else(|| "optional".into()));
        loader["range-concurrency"] = json!(c.full.range_concurrency);
        loader["compress-kv-pairs"] = json!(c.full.compress.clone().unwrap_or_default());
        loader["pd-addr"] = json!(c.full.pd_addr.clone().unwrap_or_default());
        let sorting = c.full.sorting_dir.clone().unwrap_or_else(|| {
            if !has_load(&c.mode) {
                String::new()
            } else if c.full.data_dir.contains("://") {
                format!("./sorting.{}", c.name)
            } else {
                format!("{}.sorting", c.full.data_dir)
            }
        });
        loader["sorting-dir-physical"] = json!(sorting);
        let mut syncer = default_syncer();
        syncer["worker-count"] = json!(c.repl_threads);
        syncer["batch"] = json!(c.repl_batch);
        syncer["safe-mode"] = json!(c.safe_mode);
        syncer["safe-mode-duration"] = json!("60s");
        let routes = c
            .routes
            .iter()
            .map(|r| json!({"schema-pattern": r.schema, "table-pattern": r.table, "target-schema": r.target_schema, "target-table": r.target_table}))
            .collect();
        let filters = c
            .filters
            .iter()
            .map(|f| {
                json!({"schema-pattern": f.schema, "table-pattern": f.table, "events": f.events, "sql-pattern": f.sqls, "action": "Ignore"})
            })
            .collect();
        let ba = (!c.do_dbs.is_empty() || !c.do_tables.is_empty()).then(|| {
            let mut dbs: Vec<&String> = vec![];
            for d in &c.do_dbs {
                if !dbs.contains(&d) {
                    dbs.push(d);
                }
            }
            json!({
                "do-tables": c.do_tables.iter().map(|(d, t)| json!({"db-name": d, "tbl-name": t})).collect::<Vec<_>>(),
                "do-dbs": dbs,
                "ignore-tables": [],
                "ignore-dbs": [],
            })
        });
        let t = &task.target_config;
        let mut session = Map::new();
        if let Some(fk) = t.session.as_ref().and_then(|s| s.foreign_key_checks.clone()) {
            session.insert("foreign_key_checks".into(), json!(fk));
        }
        FullCfg {
            name: c.name.clone(),
            mode: c.mode.clone(),
            is_sharding: c.shard_mode.is_some(),
            shard_mode: c.shard_mode.clone().unwrap_or_default(),
            strict: c.strict,
            ignore: c.ignore_checking.clone(),
            meta_schema: c.meta_schema.clone(),
            heartbeat: (0, 0),
            timezone: c.timezone.clone(),
            case_sensitive: false,
            collation: String::new(),
            online_ddl: c.online_ddl,
            shadow_rules: vec![SHADOW_RULE.into()],
            trash_rules: vec![TRASH_RULE.into()],
            clean_dump_file: false,
            target: TargetDb {
                host: t.host.clone(),
                port: i64::from(t.port),
                user: t.user.clone(),
                password: t.password.expose().to_string(),
                session,
                security: t.security.as_ref().map(|sec| {
                    let mut m = Map::new();
                    m.insert("cert-allowed-cn".into(), json!(sec.cert_allowed_cn.clone().unwrap_or_default()));
                    m
                }),
            },
            source_id: source.to_string(),
            meta: c.meta.clone(),
            routes,
            filters,
            expr_filters: vec![],
            ba,
            mydumper,
            loader,
            syncer,
            validator: default_validator(),
        }
    }

    /// The syncer's `safe-mode-duration`.
    pub fn safe_mode_duration(&self) -> Option<String> {
        s(&self.syncer, "safe-mode-duration").filter(|d| !d.is_empty())
    }

    /// Why an OpenAPI PUT of this dmctl-created subtask is refused: the worker compares the whole new
    /// configuration with the running one, and the OpenAPI conversion never reproduces a dmctl-created one
    /// (its clean-dump-file, collation_compatible and heartbeat defaults differ, besides every setting the
    /// OpenAPI model cannot carry) (docs/dm-behaviour.md §6, §11).
    pub fn update_refusal(&self) -> String {
        let mut extras = vec![];
        if !self.expr_filters.is_empty() {
            extras.push("expression filters");
        }
        if self.validator["mode"] != json!("none") {
            extras.push("validator");
        }
        if self.filters.iter().any(|f| f["action"] != json!("Ignore")) {
            extras.push("binlog filters with action Do/Error");
        }
        if self.ba.as_ref().is_some_and(|b| {
            b["ignore-dbs"].as_array().is_some_and(|a| !a.is_empty())
                || b["ignore-tables"].as_array().is_some_and(|a| !a.is_empty())
        }) {
            extras.push("ignore lists");
        }
        let what = if extras.is_empty() {
            "a dmctl-created task: clean-dump-file, collation_compatible and heartbeat settings".to_string()
        } else {
            format!(
                "a dmctl-created task: clean-dump-file, collation_compatible, heartbeat settings, {}",
                extras.join(", ")
            )
        };
        format!(
            "[code=40081:class=dm-worker:scope=internal:level=high], Message: can't update subtask config for syncer because new config contains some fields that should not be changed, task: {} ({what})",
            self.name
        )
    }

    /// The OpenAPI task DM shows for this subtask, as stored `cfg` (allow list, routes, filters attached to a
    /// rule with the same patterns, meta, threads); the read-back itself uses [`Self::view_subcfg`].
    pub fn to_task(&self) -> Task {
        let src = &self.source_id;
        let mut rules: Vec<TableMigrateRule> = vec![];
        for r in &self.routes {
            let ts = s(r, "target-schema").unwrap_or_default();
            rules.push(TableMigrateRule {
                source: TableRuleSource {
                    source_name: src.clone(),
                    schema: s(r, "schema-pattern").unwrap_or_default(),
                    table: s(r, "table-pattern").unwrap_or_default(),
                },
                target: (!ts.is_empty()).then(|| TableRuleTarget {
                    schema: Some(ts),
                    table: s(r, "target-table").filter(|t| !t.is_empty()),
                }),
                binlog_filter_rule: None,
            });
        }
        if let Some(ba) = &self.ba {
            for d in strs(ba, "do-dbs") {
                rules.push(TableMigrateRule {
                    source: TableRuleSource { source_name: src.clone(), schema: d, table: String::new() },
                    ..Default::default()
                });
            }
            for t in ba.get("do-tables").and_then(Value::as_array).into_iter().flatten() {
                rules.push(TableMigrateRule {
                    source: TableRuleSource {
                        source_name: src.clone(),
                        schema: s(t, "db-name").unwrap_or_default(),
                        table: s(t, "tbl-name").unwrap_or_default(),
                    },
                    ..Default::default()
                });
            }
        }
        let mut filter_map = BTreeMap::new();
        for (i, f) in self.filters.iter().enumerate() {
            let (sp, tp) = (s(f, "schema-pattern").unwrap_or_default(), s(f, "table-pattern").unwrap_or_default());
            let Some(rule) = rules.iter_mut().find(|r| r.source.schema == sp && r.source.table == tp) else { continue };
            let name = format!("{src}-filter-{i}");
            let ev = strs(f, "events");
            let sq = strs(f, "sql-pattern");
            filter_map.insert(
                name.clone(),
                BinlogFilterRule {
                    ignore_event: (!ev.is_empty()).then_some(ev),
                    ignore_sql: (!sq.is_empty()).then_some(sq),
                },
            );
            rule.binlog_filter_rule.get_or_insert_with(Vec::new).push(name);
        }
        let suffix = if self.loader["dir"].as_str().unwrap_or("").contains("://") {
            format!("/{}.{src}", self.name)
        } else {
            format!(".{}", self.name)
        };
        let dir = self.loader["dir"].as_str().unwrap_or("").to_string();
        let data_dir = if has_load(&self.mode) { dir.strip_suffix(&suffix).unwrap_or(&dir).to_string() } else { dir };
        let consistency = s(&self.mydumper, "extra-args")
            .and_then(|a| a.strip_prefix("--consistency ").map(|c| c.trim().to_string()))
            .filter(|c| !c.is_empty());
        let fk = self.target.session.get("foreign_key_checks").and_then(Value::as_str).map(str::to_string);
        Task {
            name: self.name.clone(),
            task_mode: self.mode.clone(),
            shard_mode: (!self.shard_mode.is_empty()).then(|| self.shard_mode.clone()),
            strict_optimistic_shard_mode: Some(self.strict),
            meta_schema: Some(self.meta_schema.clone()),
            timezone: (!self.timezone.is_empty()).then(|| self.timezone.clone()),
            enhance_online_schema_change: self.online_ddl,
            on_duplicate: s(&self.loader, "on-duplicate-logical")
                .unwrap_or_else(|| crate::dm::facts::ON_DUPLICATE.into()),
            target_config: TargetConfig {
                host: self.target.host.clone(),
                port: u16::try_from(self.target.port).unwrap_or(0),
                user: self.target.user.clone(),
                password: Secret::new(self.target.password.clone()),
                security: None,
                session: fk.map(|fk| TargetSession { foreign_key_checks: Some(fk) }),
            },
            binlog_filter_rule: (!filter_map.is_empty()).then_some(filter_map),
            table_migrate_rule: rules,
            source_config: TaskSourceConfig {
                full_migrate_conf: Some(FullMigrateConf {
                    export_threads: self.mydumper["threads"].as_i64(),
                    import_threads: self.loader["pool-size"].as_i64(),
                    data_dir: Some(data_dir),
                    consistency,
                    import_mode: s(&self.loader, "import-mode"),
                    on_duplicate_logical: s(&self.loader, "on-duplicate-logical"),
                    pd_addr: s(&self.loader, "pd-addr").filter(|p| !p.is_empty()),
                    ..Default::default()
                }),
                incr_migrate_conf: Some(IncrMigrateConf {
                    repl_threads: self.syncer["worker-count"].as_i64(),
                    repl_batch: self.syncer["batch"].as_i64(),
                    safe_mode: self.syncer["safe-mode"].as_bool(),
                }),
                source_conf: vec![TaskSourceConf {
                    source_name: src.clone(),
                    binlog_name: self.meta.as_ref().map(|m| m.0.clone()),
                    binlog_pos: self.meta.as_ref().map(|m| m.1),
                    binlog_gtid: self.meta.as_ref().map(|m| m.2.clone()),
                }],
            },
            ignore_checking_items: (!self.ignore.is_empty()).then(|| self.ignore.clone()),
            status_list: None,
        }
    }

    /// What DM's read-back (`SubTaskConfigsToOpenAPITask`) sees of this subtask: routes, the allow list's do
    /// lists only (ignore lists dropped), every binlog filter whatever its action, read as an ignore rule
    /// (tiflow #8972); validators and expression filters do not exist in that model.
    pub fn view_subcfg(&self, mut base: SubCfg) -> SubCfg {
        base.routes.clear();
        base.do_dbs.clear();
        base.do_tables.clear();
        for r in &self.routes {
            let (schema, table) =
                (s(r, "schema-pattern").unwrap_or_default(), s(r, "table-pattern").unwrap_or_default());
            let ts = s(r, "target-schema").unwrap_or_default();
            if ts.is_empty() {
                // A rule without a target schema reads back as a plain rule.
                if table.is_empty() { base.do_dbs.push(schema) } else { base.do_tables.push((schema, table)) }
            } else {
                base.routes.push(Route {
                    schema,
                    table,
                    target_schema: ts,
                    target_table: s(r, "target-table").unwrap_or_default(),
                });
            }
        }
        if let Some(ba) = &self.ba {
            base.do_dbs.extend(strs(ba, "do-dbs"));
            for t in ba.get("do-tables").and_then(Value::as_array).into_iter().flatten() {
                base.do_tables.push((s(t, "db-name").unwrap_or_default(), s(t, "tbl-name").unwrap_or_default()));
            }
        }
        base.filters = self
            .filters
            .iter()
            .map(|f| {
                let ev = strs(f, "events");
                let sq = strs(f, "sql-pattern");
                Filter {
                    schema: s(f, "schema-pattern").unwrap_or_default(),
                    table: s(f, "table-pattern").unwrap_or_default(),
                    events: (!ev.is_empty()).then_some(ev),
                    sqls: (!sq.is_empty()).then_some(sq),
                }
            })
            .collect();
        base
    }
}

// ---------------------------------------------------------------------------------------------------- dmctl YAML

/// A dmctl task file (a reasonable subset of `TaskConfig`) → one full configuration per `mysql-instances` entry,
/// checked as `TaskConfig.adjust` and `SubTaskConfig.Adjust` check it.
pub(crate) fn parse_dmctl(yaml: &str) -> Result<Vec<FullCfg>, SimError> {
    let doc: Value = serde_saphyr::from_str(yaml).map_err(yaml_err)?;
    if !doc.is_object() {
        return Err(yaml_err("the task file must be a mapping"));
    }
    let name = s(&doc, "name").filter(|n| !n.is_empty()).ok_or_else(|| {
        cfg_err(20004, "task name should not be empty")
            .workaround("Please check the `name` config in task configuration file.")
    })?;
    let mode = s(&doc, "task-mode").unwrap_or_default();
    if !matches!(mode.as_str(), "full" | "incremental" | "all" | "dump" | "load") {
        return Err(cfg_err(20020, "please specify right task-mode, support `full`, `incremental`, `all`"));
    }
    if doc.get("column-mappings").and_then(Value::as_object).is_some_and(|m| !m.is_empty()) {
        return Err(cfg_err(20064, "column-mapping is not supported since v6.6.0"));
    }
    let collation = s(&doc, "collation_compatible").filter(|c| !c.is_empty()).unwrap_or_else(|| "loose".into());
    if !matches!(collation.as_str(), "loose" | "strict") {
        return Err(cfg_err(20052, format!("collation compatible {collation} not supported")));
    }
    let is_sharding = doc.get("is-sharding").and_then(Value::as_bool).unwrap_or(false);
    let shard_mode =
        s(&doc, "shard-mode").filter(|m| !m.is_empty()).or_else(|| is_sharding.then(|| "pessimistic".into()));
    if let Some(m) = &shard_mode
        && !matches!(m.as_str(), "pessimistic" | "optimistic")
    {
        return Err(cfg_err(20033, format!("shard mode {m} not supported")));
    }
    let strict = doc.get("strict-optimistic-shard-mode").and_then(Value::as_bool).unwrap_or(false);
    if strict && shard_mode.as_deref() != Some("optimistic") {
        return Err(cfg_err(
            20066,
            "cannot enable `strict-optimistic-shard-mode` while `shard-mode` is not `optimistic`",
        ));
    }
    let tdb = doc
        .get("target-database")
        .filter(|v| v.is_object())
        .ok_or_else(|| cfg_err(20021, "must specify target-database"))?;
    let target = TargetDb {
        host: s(tdb, "host").unwrap_or_default(),
        port: tdb.get("port").and_then(Value::as_i64).unwrap_or(0),
        user: s(tdb, "user").unwrap_or_default(),
        password: s(tdb, "password").unwrap_or_default(),
        session: tdb.get("session").and_then(Value::as_object).cloned().unwrap_or_default(),
        security: tdb.get("security").and_then(Value::as_object).cloned(),
    };
    let section = |k: &str| doc.get(k).and_then(Value::as_object).cloned().unwrap_or_default();
    let (routes, filters, exprs) = (section("routes"), section("filters"), section("expression-filter"));
    let mut balists = section("black-white-list");
    balists.extend(section("block-allow-list"));
    let (mydumpers, loaders, syncers, validators) =
        (section("mydumpers"), section("loaders"), section("syncers"), section("validators"));
    let instances = doc.get("mysql-instances").and_then(Value::as_array).cloned().unwrap_or_default();
    if instances.is_empty() {
        return Err(cfg_err(20013, "must specify at least one mysql-instances"));
    }
    let mut out: Vec<FullCfg> = vec![];
    for (idx, inst) in instances.iter().enumerate() {
        let sid = s(inst, "source-id")
            .filter(|x| !x.is_empty())
            .ok_or_else(|| cfg_err(20005, "empty source-id not valid"))?;
        if let Some(j) = out.iter().position(|c| c.source_id == sid) {
            return Err(cfg_err(20014, format!("mysql-instance ({j}) and ({idx}) have same source-id ({sid})")));
        }
        if !strs(inst, "column-mapping-rules").is_empty() {
            return Err(cfg_err(20064, "column-mapping is not supported since v6.6.0"));
        }
        let meta = match inst.get("meta").filter(|m| !m.is_null()) {
            None => None,
            Some(m) => {
                let (n, g) = (s(m, "binlog-name").unwrap_or_default(), s(m, "binlog-gtid").unwrap_or_default());
                if n.is_empty() && g.is_empty() {
                    return Err(cfg_err(
                        20011,
                        format!("must specify `binlog-name` or `binlog-gtid` in meta of source {sid}"),
                    ));
                }
                Some((n, m.get("binlog-pos").and_then(Value::as_i64).unwrap_or(0), g))
            }
        };
        let lookup =
            |names: Vec<String>, map: &Map<String, Value>, code: i64, what: &str| -> Result<Vec<Value>, SimError> {
                names
                    .into_iter()
                    .map(|n| {
                        map.get(&n)
                            .cloned()
                            .ok_or_else(|| cfg_err(code, format!("mysql-instance({idx})'s {what} {n} not exist")))
                    })
                    .collect()
            };
        let route_list = lookup(strs(inst, "route-rules"), &routes, 20023, "route-rules")?
            .into_iter()
            .map(|r| {
                let mut o = json!({
                    "schema-pattern": s(&r, "schema-pattern").unwrap_or_default(),
                    "table-pattern": s(&r, "table-pattern").unwrap_or_default(),
                    "target-schema": s(&r, "target-schema").unwrap_or_default(),
                    "target-table": s(&r, "target-table").unwrap_or_default(),
                });
                for k in ["extract-table", "extract-schema", "extract-source"] {
                    if let Some(v) = r.get(k) {
                        o[k] = v.clone();
                    }
                }
                o
            })
            .collect();
        let mut filter_list = vec![];
        for f in lookup(strs(inst, "filter-rules"), &filters, 20024, "filter-rules")? {
            let action = match s(&f, "action").unwrap_or_default().to_ascii_lowercase().as_str() {
                "do" => "Do",
                "ignore" => "Ignore",
                "error" => "Error",
                other => {
                    return Err(cfg_err(
                        20037,
                        format!("generate binlog event filter: action {other:?} is not Do, Ignore or Error"),
                    ));
                }
            };
            let ev = strs(&f, "events");
            let sq = strs(&f, "sql-pattern");
            filter_list.push(json!({
                "schema-pattern": s(&f, "schema-pattern").unwrap_or_default(),
                "table-pattern": s(&f, "table-pattern").unwrap_or_default(),
                "events": (!ev.is_empty()).then_some(ev),
                "sql-pattern": (!sq.is_empty()).then_some(sq),
                "action": action,
            }));
        }
        let expr_list = lookup(strs(inst, "expression-filters"), &exprs, 20040, "expression-filters")?;
        for ef in &expr_list {
            if s(ef, "schema").is_none_or(|x| x.is_empty()) || s(ef, "table").is_none_or(|x| x.is_empty()) {
                return Err(cfg_err(20042, "expression-filter has empty schema or table"));
            }
        }
        let ba_name = s(inst, "block-allow-list").or_else(|| s(inst, "black-white-list")).filter(|n| !n.is_empty());
        let ba = match ba_name {
            None => None,
            Some(n) => {
                let b = balists.get(&n).ok_or_else(|| {
                    cfg_err(20026, format!("mysql-instance({idx})'s list {n} not exist in block allow list"))
                })?;
                let tables = |k: &str| -> Vec<Value> {
                    b.get(k)
                        .and_then(Value::as_array)
                        .map(|a| a.iter().map(|t| json!({"db-name": s(t, "db-name").unwrap_or_default(), "tbl-name": s(t, "tbl-name").unwrap_or_default()})).collect())
                        .unwrap_or_default()
                };
                Some(
                    json!({"do-tables": tables("do-tables"), "do-dbs": strs(b, "do-dbs"), "ignore-tables": tables("ignore-tables"), "ignore-dbs": strs(b, "ignore-dbs")}),
                )
            }
        };
        let named = |key: &str, map: &Map<String, Value>, code: i64, what: &str| -> Result<Option<Value>, SimError> {
            match s(inst, key).filter(|n| !n.is_empty()) {
                None => Ok(None),
                Some(n) => map
                    .get(&n)
                    .cloned()
                    .map(Some)
                    .ok_or_else(|| cfg_err(code, format!("mysql-instance({idx})'s {what} {n} not exist"))),
            }
        };
        // (name key, inline key, named sections, not-found code, conflict code)
        let pick = |name_key: &str,
                    inline_key: &str,
                    map: &Map<String, Value>,
                    codes: (i64, i64),
                    what: &str|
         -> Result<Option<Value>, SimError> {
            let by_name = named(name_key, map, codes.0, what)?;
            match (by_name, inst.get(inline_key).filter(|v| !v.is_null())) {
                (Some(_), Some(_)) => {
                    Err(cfg_err(codes.1, format!("{name_key} and {inline_key} should only specify one")))
                }
                (Some(v), None) => Ok(Some(v)),
                (None, inline) => Ok(inline.cloned()),
            }
        };
        let mut mydumper = overlay(
            default_mydumper(),
            pick("mydumper-config-name", "mydumper", &mydumpers, (20027, 20015), "mydumper config")?.as_ref(),
            "mydumper",
        )?;
        let mut loader = overlay(
            default_loader(),
            pick("loader-config-name", "loader", &loaders, (20029, 20016), "loader config")?.as_ref(),
            "loader",
        )?;
        let mut syncer = overlay(
            default_syncer(),
            pick("syncer-config-name", "syncer", &syncers, (20030, 20017), "syncer config")?.as_ref(),
            "syncer",
        )?;
        let mut validator = overlay(
            default_validator(),
            named("validator-config-name", &validators, 20056, "continuous validator config")?.as_ref(),
            "validator",
        )?;
        // The `*-thread` aliases win over the sections' thread counts.
        for (alias, sec, key) in [
            ("mydumper-thread", &mut mydumper, "threads"),
            ("loader-thread", &mut loader, "pool-size"),
            ("syncer-thread", &mut syncer, "worker-count"),
        ] {
            if let Some(n) = inst.get(alias).and_then(Value::as_i64).filter(|n| *n > 0) {
                sec[key] = json!(n);
            }
        }
        adjust_sections(&mode, &name, &sid, &mut loader, &mut syncer, &mut validator)?;
        let rules = |k: &str, d: &str| {
            let v = strs(&doc, k);
            if v.is_empty() { vec![d.to_string()] } else { v }
        };
        out.push(FullCfg {
            name: name.clone(),
            mode: mode.clone(),
            is_sharding: shard_mode.is_some(),
            shard_mode: shard_mode.clone().unwrap_or_default(),
            strict,
            ignore: strs(&doc, "ignore-checking-items"),
            meta_schema: s(&doc, "meta-schema")
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| crate::dm::facts::META_SCHEMA.into()),
            heartbeat: (
                doc.get("heartbeat-update-interval").and_then(Value::as_i64).unwrap_or(1),
                doc.get("heartbeat-report-interval").and_then(Value::as_i64).unwrap_or(10),
            ),
            timezone: s(&doc, "timezone").unwrap_or_default(),
            case_sensitive: doc.get("case-sensitive").and_then(Value::as_bool).unwrap_or(false),
            collation: collation.clone(),
            online_ddl: doc.get("online-ddl").and_then(Value::as_bool).unwrap_or(true),
            shadow_rules: rules("shadow-table-rules", SHADOW_RULE),
            trash_rules: rules("trash-table-rules", TRASH_RULE),
            clean_dump_file: doc.get("clean-dump-file").and_then(Value::as_bool).unwrap_or(true),
            target: target.clone(),
            source_id: sid,
            meta,
            routes: route_list,
            filters: filter_list,
            expr_filters: expr_list,
            ba,
            mydumper,
            loader,
            syncer,
            validator,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------- rendering

/// `GetCfg` for a task: DM's `SubTaskConfigsToTaskConfig` over the subtasks sorted by source, with the target
/// password masked and TLS contents cleared, as dmctl task YAML.
pub(crate) fn task_yaml(cfgs: &[FullCfg]) -> String {
    let mut cfgs: Vec<&FullCfg> = cfgs.iter().collect();
    cfgs.sort_by(|a, b| a.source_id.cmp(&b.source_id));
    let Some(first) = cfgs.first() else { return String::new() };
    // Named sections, deduplicated by content in order of appearance (`balist-01`, `route-01`, ...).
    #[derive(Default)]
    struct Names {
        by_content: BTreeMap<String, String>,
        next: usize,
        out: Map<String, Value>,
    }
    impl Names {
        fn name(&mut self, prefix: &str, v: &Value) -> String {
            let key = v.to_string();
            if let Some(n) = self.by_content.get(&key) {
                return n.clone();
            }
            self.next += 1;
            let n = format!("{prefix}-{:02}", self.next);
            self.by_content.insert(key, n.clone());
            self.out.insert(n.clone(), v.clone());
            n
        }
    }
    let (mut ba, mut routes, mut filters, mut dumps, mut loads, mut syncs, mut exprs, mut vals) = (
        Names::default(),
        Names::default(),
        Names::default(),
        Names::default(),
        Names::default(),
        Names::default(),
        Names::default(),
        Names::default(),
    );
    let mut instances = vec![];
    for c in &cfgs {
        let ba_name = ba.name("balist", c.ba.as_ref().unwrap_or(&Value::Null));
        let route_names: Vec<String> = c.routes.iter().map(|r| routes.name("route", r)).collect();
        let filter_names: Vec<String> = c.filters.iter().map(|f| filters.name("filter", f)).collect();
        let dump = dumps.name("dump", &c.mydumper);
        let mut loader = c.loader.clone();
        let dir = loader["dir"].as_str().unwrap_or("").to_string();
        let suffix = if dir.contains("://") { format!("/{}.{}", c.name, c.source_id) } else { format!(".{}", c.name) };
        loader["dir"] = json!(dir.strip_suffix(&suffix).unwrap_or(&dir));
        let load = loads.name("load", &loader);
        let sync = syncs.name("sync", &c.syncer);
        let expr_names: Vec<String> = c.expr_filters.iter().map(|f| exprs.name("expr-filter", f)).collect();
        let val = vals.name("validator", &c.validator);
        instances.push(json!({
            "source-id": c.source_id,
            "meta": c.meta.as_ref().map(|(n, p, g)| json!({"binlog-name": n, "binlog-pos": p, "binlog-gtid": g})),
            "filter-rules": filter_names,
            "column-mapping-rules": [],
            "route-rules": route_names,
            "expression-filters": expr_names,
            "black-white-list": "",
            "block-allow-list": ba_name,
            "mydumper-config-name": dump,
            "mydumper": null,
            "mydumper-thread": 0,
            "loader-config-name": load,
            "loader": null,
            "loader-thread": 0,
            "syncer-config-name": sync,
            "syncer": null,
            "syncer-thread": 0,
            "validator-config-name": val,
        }));
    }
    let t = &first.target;
    let security = t.security.as_ref().map(|sec| {
        json!({
            "ssl-ca": sec.get("ssl-ca").cloned().unwrap_or(json!("")),
            "ssl-cert": sec.get("ssl-cert").cloned().unwrap_or(json!("")),
            "ssl-key": sec.get("ssl-key").cloned().unwrap_or(json!("")),
            "cert-allowed-cn": sec.get("cert-allowed-cn").cloned().unwrap_or(json!([])),
            "ssl-ca-bytes": [], "ssl-key-bytes": [], "ssl-cert-bytes": [],
            "ssl-ca-base64": "", "ssl-key-base64": "", "ssl-cert-base64": "",
        })
    });
    let doc = json!({
        "name": first.name,
        "task-mode": first.mode,
        "is-sharding": first.is_sharding,
        "shard-mode": first.shard_mode,
        "strict-optimistic-shard-mode": first.strict,
        "ignore-checking-items": first.ignore,
        "meta-schema": first.meta_schema,
        "enable-heartbeat": false,
        "heartbeat-update-interval": first.heartbeat.0,
        "heartbeat-report-interval": first.heartbeat.1,
        "timezone": first.timezone,
        "case-sensitive": first.case_sensitive,
        "collation_compatible": if first.collation.is_empty() { "loose" } else { first.collation.as_str() },
        "target-database": {
            "host": t.host, "port": t.port, "user": t.user, "password": MASKED,
            "max-allowed-packet": null, "session": t.session, "security": security,
        },
        "mysql-instances": instances,
        "online-ddl": first.online_ddl,
        "shadow-table-rules": [],
        "trash-table-rules": [],
        "online-ddl-scheme": "",
        "routes": routes.out,
        "filters": filters.out,
        "column-mappings": {},
        "expression-filter": exprs.out,
        "black-white-list": {},
        "block-allow-list": ba.out,
        "mydumpers": dumps.out,
        "loaders": loads.out,
        "syncers": syncs.out,
        "validators": vals.out,
        "clean-dump-file": first.clean_dump_file,
        "ansi-quotes": false,
        "remove-meta": false,
        "experimental": {"async-checkpoint-flush": false},
    });
    serde_saphyr::to_string(&doc).unwrap_or_default()
}

/// `GetSubTaskCfg` for one subtask: the stored `SubTaskConfig` as TOML, upstream and downstream passwords
/// included as the server answers them.
pub(crate) fn subtask_toml(c: &FullCfg, from: &Source) -> String {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("is-sharding", json!(c.is_sharding));
    put("shard-mode", json!(c.shard_mode));
    put("strict-optimistic-shard-mode", json!(c.strict));
    put("online-ddl", json!(c.online_ddl));
    put("shadow-table-rules", json!(c.shadow_rules));
    put("trash-table-rules", json!(c.trash_rules));
    put("online-ddl-scheme", json!(""));
    put("case-sensitive", json!(c.case_sensitive));
    put("collation_compatible", json!(c.collation));
    put("name", json!(c.name));
    put("mode", json!(c.mode));
    put("ignore-checking-items", json!(c.ignore));
    put("source-id", json!(c.source_id));
    put("server-id", json!(0));
    put("flavor", json!(""));
    put("meta-schema", json!(c.meta_schema));
    put("heartbeat-update-interval", json!(c.heartbeat.0));
    put("heartbeat-report-interval", json!(c.heartbeat.1));
    put("enable-heartbeat", json!(false));
    put("timezone", json!(c.timezone));
    if let Some((n, p, g)) = &c.meta {
        put("meta", json!({"binlog-name": n, "binlog-pos": p, "binlog-gtid": g}));
    }
    put("relay-dir", json!(""));
    put("use-relay", json!(false));
    put(
        "from",
        json!({"host": from.host, "port": from.port, "user": from.user,
               "password": from.password.as_ref().map(|p| p.expose().to_string()).unwrap_or_default()}),
    );
    let mut to = json!({"host": c.target.host, "port": c.target.port, "user": c.target.user,
                        "password": c.target.password, "session": c.target.session});
    if let Some(sec) = &c.target.security {
        to["security"] = Value::Object(sec.clone());
    }
    put("to", to);
    put("route-rules", json!(c.routes));
    put("filter-rules", json!(c.filters));
    put("mapping-rule", json!([]));
    put("expression-filter", json!(c.expr_filters));
    if let Some(ba) = &c.ba {
        put("block-allow-list", ba.clone());
    }
    for sec in [&c.mydumper, &c.loader, &c.syncer] {
        for (k, v) in sec.as_object().into_iter().flatten() {
            put(k, v.clone());
        }
    }
    put("ValidatorCfg", c.validator.clone());
    put("clean-dump-file", json!(c.clean_dump_file));
    put("ansi-quotes", json!(false));
    put("experimental", json!({"async-checkpoint-flush": false}));
    toml(&m)
}

/// A TOML document the way Go's TOML encoder lays a struct out: plain keys first, then tables and arrays of
/// tables; `null` values are left out.
fn toml(m: &Map<String, Value>) -> String {
    let mut out = String::new();
    toml_table(&mut out, "", m);
    out
}

fn is_table(v: &Value) -> bool {
    v.is_object()
}
fn is_table_array(v: &Value) -> bool {
    v.as_array().is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_object))
}

fn toml_table(out: &mut String, path: &str, m: &Map<String, Value>) {
    for (k, v) in m {
        if v.is_null() || is_table(v) || is_table_array(v) {
            continue;
        }
        out.push_str(&format!("{} = {}\n", toml_key(k), toml_value(v)));
    }
    for (k, v) in m {
        let p = if path.is_empty() { toml_key(k) } else { format!("{path}.{}", toml_key(k)) };
        if let Some(sub) = v.as_object() {
            if sub.is_empty() {
                continue;
            }
            out.push_str(&format!("\n[{p}]\n"));
            toml_table(out, &p, sub);
        } else if is_table_array(v) {
            for item in v.as_array().into_iter().flatten() {
                out.push_str(&format!("\n[[{p}]]\n"));
                if let Some(o) = item.as_object() {
                    toml_table(out, &p, o);
                }
            }
        }
    }
}

fn toml_key(k: &str) -> String {
    if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        k.to_string()
    } else {
        serde_json::to_string(k).unwrap_or_default()
    }
}

fn toml_value(v: &Value) -> String {
    match v {
        Value::Array(a) => {
            format!("[{}]", a.iter().filter(|x| !x.is_null()).map(toml_value).collect::<Vec<_>>().join(", "))
        }
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .filter(|(_, x)| !x.is_null())
                .map(|(k, x)| format!("{} = {}", toml_key(k), toml_value(x)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Null => "\"\"".into(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------------- state

impl State {
    /// Every subtask's full configuration, by source.
    pub(crate) fn full_cfgs(&self, task: &str) -> Option<Vec<FullCfg>> {
        let entry = self.tasks.get(task)?;
        Some(
            entry
                .subtasks
                .iter()
                .filter_map(|(s, sub)| match &sub.dmctl {
                    Some(d) => Some((**d).clone()),
                    None => {
                        let c = super::project::to_subcfg(&sub.cfg, s, sub.lower).ok()?;
                        Some(FullCfg::from_openapi(&sub.cfg, s, &c))
                    }
                })
                .collect(),
        )
    }

    /// Creates a task from a dmctl task file, as `dmctl start-task` does: the same source, downstream and
    /// precheck rules as an OpenAPI create, then stored with its full configuration; `start` also starts it
    /// (docs/dm-behaviour.md §11). Answers the precheck's `check_result`.
    pub(crate) fn create_dmctl_task(&mut self, yaml: &str, start: bool, now: Instant) -> Result<String, SimError> {
        let cfgs = parse_dmctl(yaml)?;
        let Some(first) = cfgs.first().cloned() else {
            return Err(cfg_err(20013, "must specify at least one mysql-instances"));
        };
        // The downstream connect every task create makes (docs/dm-behaviour.md R5.4).
        let port = u16::try_from(first.target.port).unwrap_or(0);
        self.downstream.connect(&first.target.host, port, &first.target.user, &first.target.password)?;
        for c in &cfgs {
            let Some(src) = self.sources.get(&c.source_id) else {
                return Err(cfg_err(20031, format!("source {} in deployment configuration not found", c.source_id))
                    .workaround("Please use `operate-source create source-config-file-path` to add source first."));
            };
            super::downstream::connect_upstream(&src.cfg.host, src.cfg.port)?;
            if start && first.mode == "incremental" && c.meta.is_none() {
                return Err(e::meta_not_set(&c.source_id));
            }
        }
        let metas: Vec<(String, Option<BinlogMeta>)> =
            cfgs.iter().map(|c| (c.source_id.clone(), c.meta.clone())).collect();
        let physical = first.loader["import-mode"] == json!("physical");
        let check = self.precheck(&first.mode, &first.ignore, first.online_ddl, physical, &metas)?;
        let unbound: Vec<String> =
            cfgs.iter().filter(|c| self.bound_worker(&c.source_id).is_none()).map(|c| c.source_id.clone()).collect();
        if !unbound.is_empty() {
            return Err(e::sources_unbound(&unbound));
        }
        if let Some(existing) = self.tasks.get(&first.name)
            && cfgs.iter().all(|c| existing.subtasks.contains_key(&c.source_id))
        {
            return Err(e::task_exists(&first.name, &cfgs.iter().map(|c| c.source_id.clone()).collect::<Vec<_>>()));
        }
        // Checkpoints left in the downstream meta by an earlier task of the same name apply here too (docs/dm-behaviour.md §7).
        let key =
            (format!("{}:{}", first.target.host, first.target.port), first.meta_schema.clone(), first.name.clone());
        let kept = self.binlog.meta.remove(&key).unwrap_or_default();
        let phase = self.phase();
        let delay = self.stage_delay;
        let lowers: BTreeMap<String, bool> =
            cfgs.iter().map(|c| (c.source_id.clone(), self.case_insensitive(&c.source_id))).collect();
        let entry = self.tasks.get_or_insert(&first.name);
        for c in cfgs {
            if entry.subtasks.contains_key(&c.source_id) {
                continue;
            }
            let saved = kept.get(&c.source_id).copied().unwrap_or_default();
            let (unit, _) = unit_for(&c.mode, saved.worked, phase);
            let mut sub = SubTask {
                source: c.source_id.clone(),
                cfg: c.to_task(),
                expected: Expected::Stopped,
                observed: Stage::Stopped,
                unit,
                pending: None,
                run_since: None,
                worked: saved.worked,
                error_msg: None,
                lower: lowers.get(&c.source_id).copied().unwrap_or(false),
                tables: BTreeMap::new(),
                ckpt: super::checkpoint::SubCkpt { restored: saved.pos, ..Default::default() },
                shard: ShardDdlState::default(),
                dmctl: None,
            };
            if start {
                set_expected(&mut sub, Expected::Running, now, delay);
            }
            sub.dmctl = Some(Box::new(c));
            entry.subtasks.insert(sub.source.clone(), sub);
        }
        Ok(check)
    }
}

// ---------------------------------------------------------------------------------------------------- HTTP

/// grpc-gateway's JSON: two-space indentation, every field present (`EmitDefaults`), proto field names.
fn gateway_json(status: u16, v: &Value) -> (u16, String) {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"  ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    let _ = serde::Serialize::serialize(v, &mut ser);
    (status, String::from_utf8_lossy(&buf).into_owned())
}

/// grpc-gateway's error body for a status code.
fn gateway_error(http: u16, code: i64, message: &str) -> (u16, String) {
    gateway_json(http, &json!({"code": code, "message": message, "details": []}))
}

/// Serves `/apis/v1alpha1/...`: `GetCfg` and `GetSubTaskCfg`; the other legacy routes exist on the server but
/// are not simulated (501).
pub(crate) fn serve(st: &mut State, method: &str, path: &str, query: &[(String, String)]) -> (u16, String) {
    let segs: Vec<&str> = path.trim_start_matches("/apis/v1alpha1").split('/').filter(|x| !x.is_empty()).collect();
    match (method, segs.as_slice()) {
        ("GET", ["tasks", name]) => {
            let ty = query.iter().find(|(k, _)| k == "type").map(|(_, v)| v.as_str()).unwrap_or("InvalidType");
            let ty = match ty {
                "0" | "InvalidType" => "InvalidType",
                "1" | "TaskType" => "TaskType",
                "2" | "MasterType" => "MasterType",
                "3" | "WorkerType" => "WorkerType",
                "4" | "SourceType" => "SourceType",
                "5" | "TaskTemplateType" => "TaskTemplateType",
                other => {
                    return gateway_error(400, 3, &format!("type: {other} is not a valid CfgType"));
                }
            };
            let answer =
                |ok: bool, msg: &str, cfg: &str| gateway_json(200, &json!({"result": ok, "msg": msg, "cfg": cfg}));
            match ty {
                "TaskType" => match st.full_cfgs(name) {
                    Some(cfgs) if !cfgs.is_empty() => answer(true, "", &task_yaml(&cfgs)),
                    _ => answer(false, "task not found", ""),
                },
                "TaskTemplateType" => match template_cfg(st, name) {
                    Ok(y) => answer(true, "", &y),
                    Err(m) => answer(false, &m, ""),
                },
                "InvalidType" => answer(false, "invalid config op 'InvalidType'", ""),
                other => answer(false, &format!("config type {other} is not simulated by dm-apply sim"), ""),
            }
        }
        ("GET", ["subtasks", name]) => {
            let cfgs = st.full_cfgs(name).unwrap_or_default();
            if cfgs.is_empty() {
                return gateway_json(200, &json!({"result": false, "msg": "task not found", "cfgs": []}));
            }
            let mut out: Vec<String> = cfgs
                .iter()
                .map(|c| {
                    let from = st.sources.get(&c.source_id).map(|s| s.cfg.clone()).unwrap_or_default();
                    subtask_toml(c, &from)
                })
                .collect();
            // The master iterates a map: the order differs between calls.
            out.shuffle(&mut st.rng);
            gateway_json(200, &json!({"result": true, "msg": "", "cfgs": out}))
        }
        _ => gateway_error(501, 12, &format!("{method} {path} is not simulated by dm-apply sim")),
    }
}

/// `GetCfg` of a task template: the template converted as a create would, then rendered like a task.
fn template_cfg(st: &State, name: &str) -> Result<String, String> {
    let v = st.templates.get(name).ok_or_else(|| "task not found".to_string())?;
    let task: Task = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
    st.connect_target(&task.target_config).map_err(|e| e.error_msg())?;
    let mut cfgs = vec![];
    for sc in &task.source_config.source_conf {
        if !st.sources.contains_key(&sc.source_name) {
            return Err(format!("the source: {} of task not found", sc.source_name));
        }
        let c = super::project::to_subcfg(&task, &sc.source_name, st.case_insensitive(&sc.source_name))
            .map_err(|e| e.error_msg())?;
        cfgs.push(FullCfg::from_openapi(&task, &sc.source_name, &c));
    }
    Ok(task_yaml(&cfgs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
name: legacy
task-mode: incremental
target-database: {host: tidb.internal, port: 4000, user: root, password: secret}
mysql-instances:
  - source-id: a
    meta: {binlog-name: mysql-bin.000001, binlog-pos: 4}
    block-allow-list: bal
    route-rules: [r1]
    filter-rules: [keep-inserts]
    expression-filters: [even]
    syncer-config-name: global
    validator-config-name: v
block-allow-list:
  bal: {do-dbs: [shop], ignore-tables: [{db-name: shop, tbl-name: tmp}]}
routes:
  r1: {schema-pattern: shop, table-pattern: "*", target-schema: dst}
filters:
  keep-inserts: {schema-pattern: shop, table-pattern: "", events: [insert], action: Do}
expression-filter:
  even: {schema: shop, table: orders, insert-value-expr: "id % 2 = 0"}
syncers:
  global: {worker-count: 8, batch: 50, compact: true}
validators:
  v: {mode: full}
"#;

    #[test]
    fn parses_a_dmctl_task_with_extras() {
        let cfgs = parse_dmctl(YAML).unwrap();
        assert_eq!(cfgs.len(), 1);
        let c = &cfgs[0];
        assert_eq!(c.heartbeat, (1, 10));
        assert!(c.clean_dump_file);
        assert_eq!(c.syncer["worker-count"], json!(8));
        assert_eq!(c.syncer["safe-mode-duration"], json!("60s"));
        assert_eq!(c.validator["mode"], json!("full"));
        assert_eq!(c.filters[0]["action"], json!("Do"));
        let t = c.to_task();
        assert_eq!(t.source_config.incr_migrate_conf.unwrap().repl_threads, Some(8));
        // The Do filter becomes an ignore rule in the OpenAPI model.
        assert_eq!(
            t.binlog_filter_rule.unwrap().values().next().unwrap().ignore_event,
            Some(vec!["insert".to_string()])
        );
    }

    #[test]
    fn rejects_what_dm_rejects() {
        assert_eq!(parse_dmctl("name: x\ntask-mode: bad\n").unwrap_err().code, 20020);
        let cm = YAML.replace("validators:", "column-mappings:\n  c: {schema-pattern: shop}\nvalidators:");
        assert_eq!(parse_dmctl(&cm).unwrap_err().code, 20064);
        assert_eq!(parse_dmctl(&YAML.replace("route-rules: [r1]", "route-rules: [nope]")).unwrap_err().code, 20023);
        assert_eq!(parse_dmctl(&YAML.replace("compact: true", "bogus: 1")).unwrap_err().code, 20003);
    }

    #[test]
    fn renders_yaml_and_toml() {
        let cfgs = parse_dmctl(YAML).unwrap();
        let y = task_yaml(&cfgs);
        assert!(y.contains("password: '******'") || y.contains("password: \"******\""), "{y}");
        assert!(!y.contains("secret"), "{y}");
        assert!(y.contains("action: Do"), "{y}");
        assert!(y.contains("insert-value-expr"), "{y}");
        let back: Value = serde_saphyr::from_str(&y).unwrap();
        assert_eq!(back["syncers"]["sync-01"]["compact"], json!(true));
        assert_eq!(back["mysql-instances"][0]["expression-filters"], json!(["expr-filter-01"]));
        let from = Source {
            host: "a.db".into(),
            port: 3306,
            user: "dm".into(),
            password: Some(Secret::new("upw")),
            ..Default::default()
        };
        let t = subtask_toml(&cfgs[0], &from);
        assert!(t.contains("\n[from]\nhost = \"a.db\"\nport = 3306\nuser = \"dm\"\npassword = \"upw\""), "{t}");
        assert!(t.contains("\n[[route-rules]]\nschema-pattern = \"shop\""), "{t}");
        assert!(t.contains("worker-count = 8\n"), "{t}");
        assert!(t.contains("\n[ValidatorCfg]\nmode = \"full\""), "{t}");
    }
}
