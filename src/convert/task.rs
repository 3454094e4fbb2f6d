//! dmctl `task.yaml` (`TaskConfig` / `MySQLInstance`) → [`TaskSpec`] (semantics §7, first table).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value};

use super::{ConvertError, Cx, join};
use crate::config::model::{
    BinlogFilterRuleSpec, CheckLevel, Consistency, DesiredStage, ForeignKeyChecks, FullMigrateConfSpec, ImportMode,
    IncrMigrateConfSpec, OnDuplicate, OnDuplicatePhysical, ShardMode, TableMigrateRuleSpec, TableRuleSourceSpec,
    TableRuleTargetSpec, TargetConfigSpec, TargetSessionSpec, TaskMode, TaskSourceConfSpec, TaskSourceConfigSpec,
    TaskSpec,
};

const TOP_KEYS: &[&str] = &[
    "name",
    "task-mode",
    "shard-mode",
    "is-sharding",
    "strict-optimistic-shard-mode",
    "meta-schema",
    "timezone",
    "online-ddl",
    "online-ddl-scheme",
    "ignore-checking-items",
    "target-database",
    "mysql-instances",
    "routes",
    "filters",
    "block-allow-list",
    "black-white-list",
    "mydumpers",
    "loaders",
    "syncers",
];

const INSTANCE_KEYS: &[&str] = &[
    "source-id",
    "meta",
    "route-rules",
    "filter-rules",
    "block-allow-list",
    "black-white-list",
    "mydumper-config-name",
    "mydumper",
    "mydumper-thread",
    "loader-config-name",
    "loader",
    "loader-thread",
    "syncer-config-name",
    "syncer",
    "syncer-thread",
];

fn explain_top(key: &str) -> Option<String> {
    let why = match key {
        "case-sensitive" => "DM's OpenAPI detects case sensitivity from the upstream's `lower_case_table_names`",
        "collation_compatible" => "DM's OpenAPI task has no collation setting (the server uses `loose`)",
        "clean-dump-file" => "DM's OpenAPI task has no clean-dump-file setting (the server default is used)",
        "expression-filter" => "expression filters are not part of DM's OpenAPI task",
        "column-mappings" => "column mappings are not part of DM's OpenAPI task (and are deprecated in DM)",
        "validators" => "continuous validators are not part of DM's OpenAPI task (validation stays off)",
        "shadow-table-rules" | "trash-table-rules" => "online-DDL table name rules are not part of DM's OpenAPI task",
        "ansi-quotes"
        | "experimental"
        | "enable-heartbeat"
        | "heartbeat-update-interval"
        | "heartbeat-report-interval" => "not part of DM's OpenAPI task",
        "remove-meta" => {
            return Some(
                "`remove-meta` is not a task setting in dm-apply: it corresponds to dmctl `start-task --remove-meta` \
                 (OpenAPI `POST /tasks/{name}/start` with `remove_meta: true`); not converted"
                    .to_owned(),
            );
        }
        _ => return None,
    };
    Some(format!("`{key}` is not representable: {why}; not converted"))
}

fn explain_instance(key: &str) -> Option<String> {
    let why = match key {
        "column-mapping-rules" => "column mappings are not part of DM's OpenAPI task",
        "expression-filters" => "expression filters are not part of DM's OpenAPI task",
        "validator-config-name" => "continuous validators are not part of DM's OpenAPI task (validation stays off)",
        _ => return None,
    };
    Some(format!("`{key}` is not representable: {why}; not converted"))
}

/// Named global blocks and which of them instances referenced.
struct Named<'a> {
    kind: &'static str,
    ptr: &'static str,
    map: Option<&'a Map<String, Value>>,
    used: BTreeSet<String>,
}

impl<'a> Named<'a> {
    fn new(root: &'a Map<String, Value>, key: &'static str, ptr: &'static str, kind: &'static str) -> Self {
        Named { kind, ptr, map: root.get(key).and_then(Value::as_object), used: BTreeSet::new() }
    }

    /// The named block, or a warning at `at` when it does not exist.
    fn get(&mut self, cx: &mut Cx<'_>, name: &str, at: &str) -> Option<(&'a Map<String, Value>, String)> {
        match self.map.and_then(|m| m.get(name)) {
            Some(Value::Object(o)) => {
                self.used.insert(name.to_owned());
                Some((o, join(self.ptr, name)))
            }
            Some(Value::Null) => {
                self.used.insert(name.to_owned());
                None
            }
            _ => {
                cx.warn(at, format!("{} `{name}` is not defined; reference not converted", self.kind));
                None
            }
        }
    }

    fn warn_unused(&self, cx: &mut Cx<'_>) {
        if let Some(m) = self.map {
            for k in m.keys() {
                if !self.used.contains(k) {
                    cx.warn(
                        &join(self.ptr, k),
                        format!("{} `{k}` is not referenced by any mysql-instance; not converted", self.kind),
                    );
                }
            }
        }
    }
}

type RuleKey = (String, String, String);

/// The task's table rules in creation order, indexed by (source, schema, table).
#[derive(Default)]
struct Rules {
    list: Vec<TableMigrateRuleSpec>,
    index: HashMap<RuleKey, usize>,
}

impl Rules {
    fn find(&self, key: &RuleKey) -> Option<usize> {
        self.index.get(key).copied()
    }

    fn push(&mut self, rule: TableMigrateRuleSpec) -> usize {
        let key = (rule.source.source_name.clone(), rule.source.schema.clone(), rule.source.table.clone());
        let i = self.list.len();
        self.list.push(rule);
        self.index.insert(key, i);
        i
    }
}

pub(super) fn convert(cx: &mut Cx<'_>, root: &Map<String, Value>) -> Result<TaskSpec, ConvertError> {
    let name = cx.req_str(root, "", "name")?;
    let mode_text = cx.req_str(root, "", "task-mode")?;
    let task_mode = match mode_text.as_str() {
        "full" => TaskMode::Full,
        "incremental" => TaskMode::Incremental,
        "all" => TaskMode::All,
        "dump" => TaskMode::Dump,
        "load" => TaskMode::Load,
        other => {
            return Err(
                cx.invalid("/task-mode", format!("task-mode `{other}` is not full, incremental, all, dump or load"))
            );
        }
    };
    let shard_mode = match cx.opt_str(root, "", "shard-mode").filter(|s| !s.is_empty()).as_deref() {
        Some("pessimistic") => Some(ShardMode::Pessimistic),
        Some("optimistic") => Some(ShardMode::Optimistic),
        Some(other) => {
            return Err(cx.invalid("/shard-mode", format!("shard-mode `{other}` is not pessimistic or optimistic")));
        }
        // `is-sharding: true` without a mode is pessimistic (DM's backward-compatible default).
        None => cx.opt_bool(root, "", "is-sharding").unwrap_or(false).then_some(ShardMode::Pessimistic),
    };
    let strict_optimistic_shard_mode = cx.opt_bool(root, "", "strict-optimistic-shard-mode");
    let meta_schema = cx.opt_str(root, "", "meta-schema").filter(|s| !s.is_empty()).unwrap_or_else(|| "dm_meta".into());
    let timezone = cx.opt_str(root, "", "timezone").filter(|s| !s.is_empty());
    let mut enhance_online_schema_change = cx.opt_bool(root, "", "online-ddl");
    match cx.opt_str(root, "", "online-ddl-scheme").as_deref() {
        None | Some("") => {}
        Some("pt") | Some("gh-ost") => enhance_online_schema_change = Some(true),
        Some(other) => {
            cx.warn("/online-ddl-scheme", format!("online-ddl-scheme `{other}` is not pt or gh-ost; not converted"))
        }
    }
    let ignore_checking_items = cx.opt_str_list(root, "", "ignore-checking-items").filter(|v| !v.is_empty());

    let target_config = target(cx, root, &name)?;

    let mut routes = Named::new(root, "routes", "/routes", "route rule");
    let mut filters = Named::new(root, "filters", "/filters", "binlog filter rule");
    let (ba_key, ba_ptr) = if root.get("block-allow-list").and_then(Value::as_object).is_some_and(|m| !m.is_empty()) {
        ("block-allow-list", "/block-allow-list")
    } else {
        ("black-white-list", "/black-white-list")
    };
    let mut balists = Named::new(root, ba_key, ba_ptr, "block-allow list");
    let mut mydumpers = Named::new(root, "mydumpers", "/mydumpers", "mydumper config");
    let mut loaders = Named::new(root, "loaders", "/loaders", "loader config");
    let mut syncers = Named::new(root, "syncers", "/syncers", "syncer config");

    for key in ["routes", "filters", "block-allow-list", "black-white-list", "mydumpers", "loaders", "syncers"] {
        if root.get(key).is_some_and(|v| !v.is_object() && !v.is_null()) {
            cx.warn(&join("", key), format!("`{key}` should be a mapping of named rules; not converted"));
        }
    }
    let instances = match root.get("mysql-instances") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        _ => return Err(cx.invalid("/mysql-instances", "`mysql-instances` must list at least one source")),
    };

    let mut rules = Rules::default();
    let mut filter_defs: BTreeMap<String, BinlogFilterRuleSpec> = BTreeMap::new();
    let mut source_conf = Vec::new();
    let mut seen_sources = BTreeSet::new();
    // (full, incremental, on_duplicate) of the first instance; later instances are compared with it.
    let mut first: Option<(FullMigrateConfSpec, IncrMigrateConfSpec, String)> = None;

    for (i, inst) in instances.iter().enumerate() {
        let ip = format!("/mysql-instances/{i}");
        let Value::Object(inst) = inst else {
            return Err(cx.invalid(&ip, "a mysql-instance must be a mapping"));
        };
        let sid = cx.req_str(inst, &ip, "source-id")?;
        if !seen_sources.insert(sid.clone()) {
            return Err(cx.invalid(&join(&ip, "source-id"), format!("source `{sid}` is listed twice")));
        }

        // Binlog position.
        let mut sc = TaskSourceConfSpec { source_name: sid.clone(), ..Default::default() };
        if inst.get("meta").is_some_and(|m| !m.is_object() && !m.is_null()) {
            cx.warn(&join(&ip, "meta"), "`meta` should be a mapping; not converted");
        }
        if let Some(Value::Object(meta)) = inst.get("meta") {
            let mp = join(&ip, "meta");
            let bn = cx.opt_str(meta, &mp, "binlog-name").filter(|s| !s.is_empty());
            let bp = cx.opt_i64(meta, &mp, "binlog-pos");
            let bg = cx.opt_str(meta, &mp, "binlog-gtid").filter(|s| !s.is_empty());
            cx.leftovers(meta, &mp, &["binlog-name", "binlog-pos", "binlog-gtid"], &|_| None, "meta");
            if matches!(task_mode, TaskMode::Full | TaskMode::All | TaskMode::Dump) {
                if bn.is_some() || bp.is_some() || bg.is_some() {
                    cx.warn(
                        &mp,
                        format!(
                            "`meta` is ignored by DM for task-mode {mode_text} (the dump's own position is used); not converted"
                        ),
                    );
                }
            } else {
                sc.binlog_name = bn;
                sc.binlog_pos = bp;
                sc.binlog_gtid = bg;
            }
        }
        source_conf.push(sc);

        // Allow list.
        let ba_name = cx
            .opt_str(inst, &ip, "block-allow-list")
            .filter(|s| !s.is_empty())
            .map(|n| (n, "block-allow-list"))
            .or_else(|| {
                cx.opt_str(inst, &ip, "black-white-list").filter(|s| !s.is_empty()).map(|n| (n, "black-white-list"))
            });
        let mut ba_entries: Vec<(RuleKey, String)> = Vec::new();
        if let Some((ba_name, key)) = &ba_name
            && let Some((ba, bp)) = balists.get(cx, ba_name, &join(&ip, key))
        {
            for (j, d) in cx.opt_str_list(ba, &bp, "do-dbs").unwrap_or_default().into_iter().enumerate() {
                ba_entries.push(((sid.clone(), d, String::new()), format!("{bp}/do-dbs/{j}")));
            }
            if let Some(Value::Array(tables)) = ba.get("do-tables") {
                for (j, t) in tables.iter().enumerate() {
                    let tp = format!("{bp}/do-tables/{j}");
                    let (Some(db), Some(tbl)) =
                        (t.get("db-name").and_then(Value::as_str), t.get("tbl-name").and_then(Value::as_str))
                    else {
                        cx.warn(&tp, "a do-tables entry needs `db-name` and `tbl-name`; not converted");
                        continue;
                    };
                    ba_entries.push(((sid.clone(), db.to_owned(), tbl.to_owned()), tp));
                }
            }
            for k in ["ignore-dbs", "ignore-tables"] {
                if ba.get(k).is_some_and(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty())) {
                    cx.warn(
                        &join(&bp, k),
                        format!(
                            "`{k}` is not representable: DM's OpenAPI task has only an allow list (do-dbs/do-tables); \
                             the ignored objects would be migrated if the allow list covers them; not converted"
                        ),
                    );
                }
            }
            cx.leftovers(
                ba,
                &bp,
                &["do-dbs", "do-tables", "ignore-dbs", "ignore-tables"],
                &|_| None,
                "block-allow-list",
            );
        }
        let has_allow_list = !ba_entries.is_empty();
        let covered =
            |k: &RuleKey| ba_entries.iter().any(|(b, _)| b == k || (b.0 == k.0 && b.1 == k.1 && b.2.is_empty()));
        let mut narrow_warned = false;
        let mut scope_warn = |cx: &mut Cx<'_>, key: &RuleKey, at: &str, what: &str| {
            if !has_allow_list {
                if !narrow_warned {
                    cx.warn(
                        at,
                        format!(
                            "source `{sid}` has no block-allow list, so dmctl migrates every schema; in DM's OpenAPI \
                             every {what} is also an allow-list entry, so only the tables the rules match will be \
                             migrated (NARROWER); add table_migrate_rule entries for everything else to keep it"
                        ),
                    );
                    narrow_warned = true;
                }
            } else if !covered(key) {
                cx.warn(
                    at,
                    format!(
                        "{what} `{}`.`{}` of source `{sid}` is not inside the block-allow list; in DM's OpenAPI it \
                         becomes an allow-list entry too, so it may migrate more than before (WIDER)",
                        key.1, key.2
                    ),
                );
            }
        };

        // Route rules first, as DM lists them.
        for (j, rname) in cx.opt_str_list(inst, &ip, "route-rules").unwrap_or_default().into_iter().enumerate() {
            let at = format!("{}/{j}", join(&ip, "route-rules"));
            let Some((r, rp)) = routes.get(cx, &rname, &at) else { continue };
            let Some(schema) = cx.opt_str(r, &rp, "schema-pattern").filter(|s| !s.is_empty()) else {
                cx.warn(&rp, format!("route rule `{rname}` has no schema-pattern; not converted"));
                continue;
            };
            let table = cx.opt_str(r, &rp, "table-pattern").unwrap_or_default();
            let t_schema = cx.opt_str(r, &rp, "target-schema").filter(|s| !s.is_empty());
            let t_table = cx.opt_str(r, &rp, "target-table").filter(|s| !s.is_empty());
            for k in ["extract-table", "extract-schema", "extract-source"] {
                if r.contains_key(k) {
                    cx.warn(
                        &join(&rp, k),
                        format!("route extractor `{k}` is not representable in DM's OpenAPI task; not converted"),
                    );
                }
            }
            cx.leftovers(
                r,
                &rp,
                &[
                    "schema-pattern",
                    "table-pattern",
                    "target-schema",
                    "target-table",
                    "extract-table",
                    "extract-schema",
                    "extract-source",
                ],
                &|_| None,
                "route",
            );
            if t_schema.is_none() {
                cx.warn(
                    &rp,
                    format!(
                        "route rule `{rname}` has no target-schema: DM's OpenAPI keeps a route only with a target \
                         schema; converted as an allow-list entry without a target"
                    ),
                );
            }
            let key = (sid.clone(), schema.clone(), table.clone());
            if rules.find(&key).is_some() {
                cx.warn(&at, format!("route rule `{rname}` has the same patterns as an earlier rule of source `{sid}`; DM keeps only one (the first)"));
                continue;
            }
            scope_warn(cx, &key, &at, "route rule");
            let target = t_schema.map(|s| TableRuleTargetSpec { schema: Some(s), table: t_table });
            rules.push(TableMigrateRuleSpec {
                source: TableRuleSourceSpec { source_name: sid.clone(), schema, table },
                target,
                binlog_filter_rule: None,
            });
        }
        // Then the allow list.
        for ((s, sch, tbl), _) in &ba_entries {
            let key = (s.clone(), sch.clone(), tbl.clone());
            if rules.find(&key).is_none() {
                rules.push(TableMigrateRuleSpec {
                    source: TableRuleSourceSpec { source_name: s.clone(), schema: sch.clone(), table: tbl.clone() },
                    target: None,
                    binlog_filter_rule: None,
                });
            }
        }
        // Binlog filters attach to the rule with the same patterns (a new rule when there is none).
        for (j, fname) in cx.opt_str_list(inst, &ip, "filter-rules").unwrap_or_default().into_iter().enumerate() {
            let at = format!("{}/{j}", join(&ip, "filter-rules"));
            let Some((f, fp)) = filters.get(cx, &fname, &at) else { continue };
            let action = cx.opt_str(f, &fp, "action").unwrap_or_default();
            if !action.eq_ignore_ascii_case("ignore") {
                cx.warn(
                    &join(&fp, "action"),
                    format!(
                        "binlog filter `{fname}` has action `{action}`: DM's OpenAPI filters always Ignore, so \
                         converting it would invert its meaning; not converted (the events it selects are no \
                         longer {})",
                        if action.eq_ignore_ascii_case("error") { "refused" } else { "the only ones replicated" }
                    ),
                );
                continue;
            }
            let Some(schema) = cx.opt_str(f, &fp, "schema-pattern").filter(|s| !s.is_empty()) else {
                cx.warn(&fp, format!("binlog filter `{fname}` has no schema-pattern; not converted"));
                continue;
            };
            let table = cx.opt_str(f, &fp, "table-pattern").unwrap_or_default();
            let spec = BinlogFilterRuleSpec {
                ignore_event: cx.opt_str_list(f, &fp, "events").filter(|v| !v.is_empty()),
                ignore_sql: cx.opt_str_list(f, &fp, "sql-pattern").filter(|v| !v.is_empty()),
            };
            cx.leftovers(
                f,
                &fp,
                &["schema-pattern", "table-pattern", "events", "sql-pattern", "action"],
                &|_| None,
                "filter",
            );
            filter_defs.entry(fname.clone()).or_insert(spec);
            let key = (sid.clone(), schema.clone(), table.clone());
            let idx = match rules.find(&key) {
                Some(idx) => idx,
                None => {
                    scope_warn(cx, &key, &at, "binlog filter rule");
                    rules.push(TableMigrateRuleSpec {
                        source: TableRuleSourceSpec { source_name: sid.clone(), schema, table },
                        target: None,
                        binlog_filter_rule: None,
                    })
                }
            };
            let list = rules.list[idx].binlog_filter_rule.get_or_insert_with(Vec::new);
            if !list.contains(&fname) {
                list.push(fname);
            }
        }

        // Dump / load / sync settings.
        let mut full = FullMigrateConfSpec::default();
        let mut incr = IncrMigrateConfSpec::default();
        if let Some((m, mp)) = unit_block(cx, inst, &ip, "mydumper", &mut mydumpers) {
            mydumper(cx, m, &mp, &mut full);
        }
        if let Some(t) = cx.opt_i64(inst, &ip, "mydumper-thread").filter(|t| *t != 0) {
            full.export_threads = Some(t);
        }
        if let Some((l, lp)) = unit_block(cx, inst, &ip, "loader", &mut loaders) {
            loader(cx, l, &lp, &mut full);
        }
        if let Some(t) = cx.opt_i64(inst, &ip, "loader-thread").filter(|t| *t != 0) {
            full.import_threads = Some(t);
        }
        if let Some((s, sp)) = unit_block(cx, inst, &ip, "syncer", &mut syncers) {
            syncer(cx, s, &sp, &mut incr);
        }
        if let Some(t) = cx.opt_i64(inst, &ip, "syncer-thread").filter(|t| *t != 0) {
            incr.repl_threads = Some(t);
        }
        match &first {
            None => first = Some((full, incr, sid.clone())),
            Some((f0, i0, s0)) => {
                if *f0 != full || *i0 != incr {
                    cx.warn(
                        &ip,
                        format!(
                            "source `{sid}` has different dump/load/sync settings from source `{s0}`: DM's OpenAPI \
                             task has one full_migrate_conf/incr_migrate_conf for all sources; `{s0}`'s are used"
                        ),
                    );
                }
            }
        }
        cx.leftovers(inst, &ip, INSTANCE_KEYS, &explain_instance, "mysql-instance");
    }
    for n in [&routes, &filters, &balists, &mydumpers, &loaders, &syncers] {
        n.warn_unused(cx);
    }
    if ba_key == "block-allow-list" && root.contains_key("black-white-list") {
        cx.warn(
            "/black-white-list",
            "`black-white-list` is ignored by DM when `block-allow-list` is set; not converted",
        );
    }
    cx.leftovers(root, "", TOP_KEYS, &explain_top, "task");

    let (full, incr, _) = first.unwrap_or_default();
    let on_duplicate = full.on_duplicate_logical;
    Ok(TaskSpec {
        name,
        task_mode,
        shard_mode,
        strict_optimistic_shard_mode,
        meta_schema: Some(meta_schema),
        timezone,
        enhance_online_schema_change,
        on_duplicate,
        ignore_checking_items,
        target_config,
        binlog_filter_rule: filter_defs,
        table_migrate_rule: rules.list,
        source_config: TaskSourceConfigSpec {
            full_migrate_conf: (full != FullMigrateConfSpec::default()).then_some(full),
            incr_migrate_conf: (incr != IncrMigrateConfSpec::default()).then_some(incr),
            source_conf,
        },
        stage: DesiredStage::Running,
        lifecycle: Default::default(),
        write_only_version: None,
    })
}

/// The instance's `<unit>-config-name` block or its inline `<unit>` block.
fn unit_block<'a>(
    cx: &mut Cx<'_>,
    inst: &'a Map<String, Value>,
    ip: &str,
    unit: &str,
    named: &mut Named<'a>,
) -> Option<(&'a Map<String, Value>, String)> {
    let key = format!("{unit}-config-name");
    if let Some(n) = cx.opt_str(inst, ip, &key).filter(|s| !s.is_empty()) {
        return named.get(cx, &n, &join(ip, &key));
    }
    match inst.get(unit) {
        Some(Value::Object(o)) => Some((o, join(ip, unit))),
        _ => None,
    }
}

fn mydumper(cx: &mut Cx<'_>, m: &Map<String, Value>, mp: &str, full: &mut FullMigrateConfSpec) {
    if let Some(t) = cx.opt_i64(m, mp, "threads") {
        full.export_threads = Some(t);
    }
    if let Some(args) = cx.opt_str(m, mp, "extra-args") {
        let mut rest = Vec::new();
        let mut tokens = args.split_whitespace();
        while let Some(tok) = tokens.next() {
            let value = if tok == "--consistency" {
                tokens.next().map(str::to_owned)
            } else if let Some(v) = tok.strip_prefix("--consistency=") {
                Some(v.to_owned())
            } else {
                rest.push(tok.to_owned());
                continue;
            };
            match value.as_deref() {
                Some("auto") => full.consistency = Some(Consistency::Auto),
                Some("none") => full.consistency = Some(Consistency::None),
                Some("flush") => full.consistency = Some(Consistency::Flush),
                Some("lock") => full.consistency = Some(Consistency::Lock),
                Some("snapshot") => full.consistency = Some(Consistency::Snapshot),
                other => cx.warn(
                    &join(mp, "extra-args"),
                    format!(
                        "`--consistency {}` is not auto, none, flush, lock or snapshot; not converted",
                        other.unwrap_or("")
                    ),
                ),
            }
        }
        if !rest.is_empty() {
            cx.warn(
                &join(mp, "extra-args"),
                format!(
                    "mydumper extra-args `{}` are not representable (only `--consistency` is); not converted",
                    rest.join(" ")
                ),
            );
        }
    }
    cx.leftovers(
        m,
        mp,
        &["threads", "extra-args"],
        &|k| Some(format!("mydumper `{k}` is not representable in DM's OpenAPI task; not converted")),
        "mydumper",
    );
}

fn check_level(cx: &mut Cx<'_>, obj: &Map<String, Value>, ptr: &str, key: &str) -> Option<CheckLevel> {
    match cx.opt_str(obj, ptr, key)?.to_ascii_lowercase().as_str() {
        "" => None,
        "required" => Some(CheckLevel::Required),
        "optional" => Some(CheckLevel::Optional),
        "off" => Some(CheckLevel::Off),
        other => {
            cx.warn(&join(ptr, key), format!("`{other}` is not required, optional or off; not converted"));
            None
        }
    }
}

fn loader(cx: &mut Cx<'_>, l: &Map<String, Value>, lp: &str, full: &mut FullMigrateConfSpec) {
    if let Some(t) = cx.opt_i64(l, lp, "pool-size") {
        full.import_threads = Some(t);
    }
    if let Some(d) = cx.opt_str(l, lp, "dir").filter(|s| !s.is_empty()) {
        full.data_dir = Some(d);
    }
    if let Some(m) = cx.opt_str(l, lp, "import-mode").filter(|s| !s.is_empty()) {
        match m.to_ascii_lowercase().as_str() {
            "sql" | "loader" | "logical" => full.import_mode = Some(ImportMode::Logical),
            "physical" => full.import_mode = Some(ImportMode::Physical),
            "import-into" => full.import_mode = Some(ImportMode::ImportInto),
            other => cx.warn(&join(lp, "import-mode"), format!("import-mode `{other}` is unknown; not converted")),
        }
    }
    let deprecated = cx.opt_str(l, lp, "on-duplicate").filter(|s| !s.is_empty());
    let logical = cx.opt_str(l, lp, "on-duplicate-logical").filter(|s| !s.is_empty());
    let (od_key, od) = match (logical, deprecated) {
        (Some(v), _) => ("on-duplicate-logical", Some(v)),
        (None, Some(v)) => ("on-duplicate", Some(v)),
        (None, None) => ("", None),
    };
    if let Some(v) = od {
        match v.to_ascii_lowercase().as_str() {
            "replace" => full.on_duplicate_logical = Some(OnDuplicate::Replace),
            "error" => full.on_duplicate_logical = Some(OnDuplicate::Error),
            "ignore" => full.on_duplicate_logical = Some(OnDuplicate::Ignore),
            other => cx.warn(&join(lp, od_key), format!("`{other}` is not replace, error or ignore; not converted")),
        }
    }
    if let Some(v) = cx.opt_str(l, lp, "on-duplicate-physical").filter(|s| !s.is_empty()) {
        match v.to_ascii_lowercase().as_str() {
            "none" => full.on_duplicate_physical = Some(OnDuplicatePhysical::None),
            "manual" => full.on_duplicate_physical = Some(OnDuplicatePhysical::Manual),
            other => {
                cx.warn(&join(lp, "on-duplicate-physical"), format!("`{other}` is not none or manual; not converted"))
            }
        }
    }
    full.disk_quota = cx.opt_str(l, lp, "disk-quota-physical").filter(|s| !s.is_empty()).or(full.disk_quota.take());
    if let Some(c) = check_level(cx, l, lp, "checksum-physical") {
        full.checksum = Some(c);
    }
    if let Some(c) = check_level(cx, l, lp, "analyze") {
        full.analyze = Some(c);
    }
    if let Some(r) = cx.opt_i64(l, lp, "range-concurrency") {
        full.range_concurrency = Some(r);
    }
    if let Some(c) = cx.opt_str(l, lp, "compress-kv-pairs").filter(|s| !s.is_empty()) {
        full.compress_kv_pairs = Some(c);
    }
    if let Some(s) = cx.opt_str(l, lp, "sorting-dir-physical").filter(|s| !s.is_empty()) {
        full.sorting_dir = Some(s);
    }
    if let Some(p) = cx.opt_str(l, lp, "pd-addr").filter(|s| !s.is_empty()) {
        full.pd_addr = Some(p);
    }
    cx.leftovers(
        l,
        lp,
        &[
            "pool-size",
            "dir",
            "import-mode",
            "on-duplicate",
            "on-duplicate-logical",
            "on-duplicate-physical",
            "disk-quota-physical",
            "checksum-physical",
            "analyze",
            "range-concurrency",
            "compress-kv-pairs",
            "sorting-dir-physical",
            "pd-addr",
        ],
        &|k| Some(format!("loader `{k}` is not representable in DM's OpenAPI task; not converted")),
        "loader",
    );
}

fn syncer(cx: &mut Cx<'_>, s: &Map<String, Value>, sp: &str, incr: &mut IncrMigrateConfSpec) {
    if let Some(w) = cx.opt_i64(s, sp, "worker-count") {
        incr.repl_threads = Some(w);
    }
    if let Some(b) = cx.opt_i64(s, sp, "batch") {
        incr.repl_batch = Some(b);
    }
    if let Some(b) = cx.opt_bool(s, sp, "safe-mode") {
        incr.safe_mode = Some(b);
    }
    cx.leftovers(
        s,
        sp,
        &["worker-count", "batch", "safe-mode"],
        &|k| Some(format!("syncer `{k}` is not representable in DM's OpenAPI task; not converted")),
        "syncer",
    );
}

fn target(cx: &mut Cx<'_>, root: &Map<String, Value>, task: &str) -> Result<TargetConfigSpec, ConvertError> {
    let Some(Value::Object(t)) = root.get("target-database") else {
        return Err(cx.invalid("/target-database", "`target-database` (the downstream TiDB) is required"));
    };
    let tp = "/target-database";
    let host = cx.req_str(t, tp, "host")?;
    let port = cx.port(t, tp)?;
    let user = cx.req_str(t, tp, "user")?;
    let password = cx
        .password(
            t.get("password"),
            "/target-database/password",
            &format!("target:{user}@{host}:{port}"),
            &format!("DM_TARGET_{user}_PASSWORD"),
            &format!("password of target user `{user}` on {host}:{port} (task `{task}`)"),
        )
        .unwrap_or_default();
    let session = match t.get("session") {
        Some(Value::Object(s)) => {
            let sp = "/target-database/session";
            let fkc = match s.get("foreign_key_checks") {
                None | Some(Value::Null) => None,
                Some(v) => match v.as_str().map(str::to_owned).or_else(|| v.as_i64().map(|n| n.to_string())).as_deref()
                {
                    Some("0") | Some("OFF") | Some("off") => Some(ForeignKeyChecks::Off),
                    Some("1") | Some("ON") | Some("on") => Some(ForeignKeyChecks::On),
                    _ => {
                        cx.warn(&join(sp, "foreign_key_checks"), "foreign_key_checks must be 0 or 1; not converted");
                        None
                    }
                },
            };
            cx.leftovers(
                s,
                sp,
                &["foreign_key_checks"],
                &|k| {
                    Some(format!(
                        "session variable `{k}` is not representable (DM's OpenAPI keeps only foreign_key_checks); not converted"
                    ))
                },
                "session",
            );
            fkc.map(|f| TargetSessionSpec { foreign_key_checks: Some(f) })
        }
        None | Some(Value::Null) => None,
        Some(_) => {
            cx.warn("/target-database/session", "`session` should be a mapping; not converted");
            None
        }
    };
    let security = match t.get("security") {
        Some(Value::Object(sec)) => Some(cx.security(
            sec,
            "/target-database/security",
            &format!("DM_TARGET_{user}_SSL_KEY"),
            &format!("target of task `{task}`"),
        )),
        None | Some(Value::Null) => None,
        Some(_) => {
            cx.warn("/target-database/security", "`security` should be a mapping; not converted");
            None
        }
    };
    cx.leftovers(
        t,
        tp,
        &["host", "port", "user", "password", "session", "security"],
        &|k| Some(format!("target-database `{k}` is not representable in DM's OpenAPI task; not converted")),
        "target-database",
    );
    Ok(TargetConfigSpec { host, port, user, password, security, session })
}
