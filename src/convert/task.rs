//! dmctl `task.yaml` (`TaskConfig` / `MySQLInstance`) → [`TaskSpec`] (docs/dm-behaviour.md §5, §11).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::pattern::{Case, Pattern};
use super::scope::{self, Action, AllowList, FilterIn, RouteIn};
use super::{ConvertError, Cx, join};
use crate::config::BINLOG_EVENTS;
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
    "case-sensitive",
    "expression-filter",
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
    "expression-filters",
];

fn explain_top(key: &str) -> Option<String> {
    let why = match key {
        "collation_compatible" => "DM's OpenAPI task has no collation setting (the server uses `loose`)",
        "clean-dump-file" => "DM's OpenAPI task has no clean-dump-file setting (the server default is used)",
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
        "validator-config-name" => "continuous validators are not part of DM's OpenAPI task (validation stays off)",
        _ => return None,
    };
    Some(format!("`{key}` is not representable: {why}; not converted"))
}

/// A named block and its JSON pointer.
type Block<'a> = (&'a Map<String, Value>, String);

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

    /// The named block (`None` for an explicit null). A name that is not defined is an error: DM refuses the task.
    fn get(&mut self, cx: &mut Cx<'_>, name: &str, at: &str) -> Result<Option<Block<'a>>, ConvertError> {
        match self.map.and_then(|m| m.get(name)) {
            Some(Value::Object(o)) => {
                self.used.insert(name.to_owned());
                Ok(Some((o, join(self.ptr, name))))
            }
            Some(Value::Null) => {
                self.used.insert(name.to_owned());
                Ok(None)
            }
            Some(_) => Err(cx.invalid(&join(self.ptr, name), format!("{} `{name}` must be a mapping", self.kind))),
            None => Err(cx.invalid(at, format!("{} `{name}` is not defined (DM refuses the task)", self.kind))),
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
    let meta_schema = cx
        .opt_str(root, "", "meta-schema")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| crate::dm::facts::META_SCHEMA.into());
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
    let mut exprs = Named::new(root, "expression-filter", "/expression-filter", "expression filter");
    let case_sensitive = cx.opt_bool(root, "", "case-sensitive").unwrap_or(false);

    for key in ["routes", "filters", "block-allow-list", "black-white-list", "mydumpers", "loaders", "syncers"] {
        if root.get(key).is_some_and(|v| !v.is_object() && !v.is_null()) {
            cx.warn(&join("", key), format!("`{key}` should be a mapping of named rules; not converted"));
        }
    }
    let instances = match root.get("mysql-instances") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        _ => return Err(cx.invalid("/mysql-instances", "`mysql-instances` must list at least one source")),
    };

    let mut rules: Vec<TableMigrateRuleSpec> = Vec::new();
    // Every pattern text the instances use, with where it is (for the case-sensitivity notes).
    let mut patterns_seen: Vec<(String, String)> = Vec::new();
    let mut any_sensitive = false;
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

        // What the instance replicates: carried exactly into table rules, or refused (scope.rs).
        let allow = allow_list(cx, inst, &ip, &mut balists)?;
        let route_ins = instance_routes(cx, inst, &ip, &mut routes)?;
        let mut filter_ins = instance_filters(cx, inst, &ip, &mut filters)?;
        // DM's worker adds the source's own filters after the task's (the task's win for the same patterns).
        filter_ins.extend(cx.shared.source_filters.get(&sid).cloned().unwrap_or_default());
        expression_filters(cx, inst, &ip, &mut exprs)?;
        let sensitive = case_sensitive || cx.source_case_sensitive(&sid);
        any_sensitive |= sensitive;
        let case = if sensitive { Case::Sensitive } else { Case::Insensitive };
        patterns_seen.extend(allow.iter().flat_map(|a| {
            a.do_dbs
                .iter()
                .map(|(d, p)| (d.clone(), p.clone()))
                .chain(a.do_tables.iter().flat_map(|(x, y, p)| [(x.clone(), p.clone()), (y.clone(), p.clone())]))
        }));
        patterns_seen.extend(
            route_ins.iter().flat_map(|r| [(r.schema.clone(), r.ptr.clone()), (r.table.clone(), r.ptr.clone())]),
        );
        patterns_seen.extend(
            filter_ins.iter().flat_map(|f| [(f.schema.clone(), f.ptr.clone()), (f.table.clone(), f.ptr.clone())]),
        );
        let outcome = scope::carry(case, &ip, allow.as_ref(), &route_ins, &filter_ins);
        if let Some((ptr, msg)) = outcome.invalid {
            return Err(cx.invalid(&ptr, msg));
        }
        for (ptr, note) in outcome.notes {
            cx.warn(&ptr, note);
        }
        for r in outcome.refusals {
            cx.refuse(&r.ptr, r.what, r.why, r.help);
        }
        for r in outcome.rules {
            let binlog_filter_rule = match r.filters.as_slice() {
                [] => None,
                [one] => {
                    if let Some(f) = filter_ins.iter().find(|f| &f.name == one) {
                        filter_defs.entry(one.clone()).or_insert_with(|| filter_spec(&f.events, &f.sql));
                    }
                    Some(vec![one.clone()])
                }
                many => {
                    let parts: Vec<(&[String], &[String])> = many
                        .iter()
                        .filter_map(|n| filter_ins.iter().find(|f| &f.name == n))
                        .map(|f| (f.events.as_slice(), f.sql.as_slice()))
                        .collect();
                    let name = scope::merged_name(many);
                    match scope::merge_events(&parts) {
                        Some((events, sql)) => {
                            filter_defs.entry(name.clone()).or_insert_with(|| filter_spec(&events, &sql));
                            cx.warn(
                                &ip,
                                format!(
                                    "binlog filters {} meet on the rule `{}`.`{}` (DM would apply only the first of \
                                     several filters on one rule): merged into one filter `{name}`",
                                    many.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
                                    r.schema,
                                    r.table
                                ),
                            );
                            Some(vec![name])
                        }
                        None => {
                            cx.refuse(
                                &ip,
                                format!(
                                    "binlog filters {} on source `{sid}`",
                                    many.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                                ),
                                format!(
                                    "they meet on the table rule `{}`.`{}`, where DM applies only the first filter; \
                                     merging them is exact only without `none` events",
                                    r.schema, r.table
                                ),
                                "remove the `none...` events, or give the filters the patterns of different \
                                 block-allow-list entries",
                            );
                            None
                        }
                    }
                }
            };
            rules.push(TableMigrateRuleSpec {
                source: TableRuleSourceSpec { source_name: sid.clone(), schema: r.schema, table: r.table },
                target: r.target.map(|(schema, table)| TableRuleTargetSpec { schema, table }),
                binlog_filter_rule,
            });
        }

        // Dump / load / sync settings.
        let mut full = FullMigrateConfSpec::default();
        let mut incr = IncrMigrateConfSpec::default();
        if let Some((m, mp)) = unit_block(cx, inst, &ip, "mydumper", &mut mydumpers)? {
            mydumper(cx, m, &mp, &mut full);
        }
        if let Some(t) = cx.opt_i64(inst, &ip, "mydumper-thread").filter(|t| *t != 0) {
            full.export_threads = Some(t);
        }
        if let Some((l, lp)) = unit_block(cx, inst, &ip, "loader", &mut loaders)? {
            loader(cx, l, &lp, &mut full);
        }
        if let Some(t) = cx.opt_i64(inst, &ip, "loader-thread").filter(|t| *t != 0) {
            full.import_threads = Some(t);
        }
        if let Some((s, sp)) = unit_block(cx, inst, &ip, "syncer", &mut syncers)? {
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
    for n in [&routes, &filters, &balists, &mydumpers, &loaders, &syncers, &exprs] {
        n.warn_unused(cx);
    }
    if ba_key == "block-allow-list" && root.contains_key("black-white-list") {
        cx.warn(
            "/black-white-list",
            "`black-white-list` is ignored by DM when `block-allow-list` is set; not converted",
        );
    }
    case_notes(cx, any_sensitive, &patterns_seen);
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
        table_migrate_rule: rules,
        source_config: TaskSourceConfigSpec {
            full_migrate_conf: (full != FullMigrateConfSpec::default()).then_some(full),
            incr_migrate_conf: (incr != IncrMigrateConfSpec::default()).then_some(incr),
            source_conf,
        },
        stage: DesiredStage::Running,
        lifecycle: Default::default(),
        write_only_version: None,
        renamed_from: Default::default(),
    })
}

/// The instance's block-allow list (`None`: no list, DM replicates every schema).
fn allow_list<'a>(
    cx: &mut Cx<'_>,
    inst: &'a Map<String, Value>,
    ip: &str,
    balists: &mut Named<'a>,
) -> Result<Option<AllowList>, ConvertError> {
    let Some((name, key)) = ["block-allow-list", "black-white-list"]
        .into_iter()
        .find_map(|k| cx.opt_str(inst, ip, k).filter(|s| !s.is_empty()).map(|n| (n, k)))
    else {
        return Ok(None);
    };
    let Some((ba, bp)) = balists.get(cx, &name, &join(ip, key))? else { return Ok(None) };
    let mut list = AllowList { name, ptr: bp.clone(), ..Default::default() };
    for (k, dbs) in [("do-dbs", &mut list.do_dbs), ("ignore-dbs", &mut list.ignore_dbs)] {
        for (j, d) in cx.opt_str_list(ba, &bp, k).unwrap_or_default().into_iter().enumerate() {
            dbs.push((d, format!("{}/{j}", join(&bp, k))));
        }
    }
    for (k, tables) in [("do-tables", &mut list.do_tables), ("ignore-tables", &mut list.ignore_tables)] {
        match ba.get(k) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (j, t) in items.iter().enumerate() {
                    let tp = format!("{}/{j}", join(&bp, k));
                    let part = |f: &str| t.get(f).and_then(Value::as_str).map(str::to_owned);
                    match (part("db-name"), part("tbl-name")) {
                        (Some(db), Some(tbl)) => tables.push((db, tbl, tp)),
                        _ => {
                            return Err(cx.invalid(
                                &tp,
                                format!("a `{k}` entry needs `db-name` and `tbl-name` strings (DM refuses the task)"),
                            ));
                        }
                    }
                }
            }
            Some(_) => return Err(cx.invalid(&join(&bp, k), format!("`{k}` must be a list (DM refuses the task)"))),
        }
    }
    cx.leftovers(ba, &bp, &["do-dbs", "do-tables", "ignore-dbs", "ignore-tables"], &|_| None, "block-allow-list");
    Ok(Some(list))
}

/// The route rules the instance uses, in its order.
fn instance_routes<'a>(
    cx: &mut Cx<'_>,
    inst: &'a Map<String, Value>,
    ip: &str,
    routes: &mut Named<'a>,
) -> Result<Vec<RouteIn>, ConvertError> {
    let mut out = Vec::new();
    for (j, rname) in cx.opt_str_list(inst, ip, "route-rules").unwrap_or_default().into_iter().enumerate() {
        let at = format!("{}/{j}", join(ip, "route-rules"));
        let Some((r, rp)) = routes.get(cx, &rname, &at)? else { continue };
        let Some(schema) = cx.opt_str(r, &rp, "schema-pattern").filter(|s| !s.is_empty()) else {
            return Err(cx.invalid(&rp, format!("route rule `{rname}` has no schema-pattern (DM refuses the task)")));
        };
        let table = cx.opt_str(r, &rp, "table-pattern").unwrap_or_default();
        let target_schema = cx.opt_str(r, &rp, "target-schema").filter(|s| !s.is_empty());
        let target_table = cx.opt_str(r, &rp, "target-table").filter(|s| !s.is_empty());
        for k in ["extract-table", "extract-schema", "extract-source"] {
            if r.get(k).is_some_and(|v| !v.is_null()) {
                cx.warn(
                    &join(&rp, k),
                    format!(
                        "route extractor `{k}` is not representable in DM's OpenAPI task (the target table will not \
                         get its extra column); not converted"
                    ),
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
        out.push(RouteIn { name: rname, ptr: rp, schema, table, target_schema, target_table });
    }
    Ok(out)
}

/// The binlog filters the instance uses that DM actually applies. DM silently drops a rule with an unknown
/// action, an unknown event, an empty or malformed schema pattern: those are reported and left out (an unknown
/// event in an `Ignore` rule: the known events are kept and the change is reported).
fn instance_filters<'a>(
    cx: &mut Cx<'_>,
    inst: &'a Map<String, Value>,
    ip: &str,
    filters: &mut Named<'a>,
) -> Result<Vec<FilterIn>, ConvertError> {
    let mut out = Vec::new();
    for (j, fname) in cx.opt_str_list(inst, ip, "filter-rules").unwrap_or_default().into_iter().enumerate() {
        let at = format!("{}/{j}", join(ip, "filter-rules"));
        let Some((f, fp)) = filters.get(cx, &fname, &at)? else { continue };
        if let Some(fi) = read_filter(cx, &fname, f, &fp, false) {
            out.push(fi);
        }
    }
    Ok(out)
}

/// One binlog filter as DM applies it, or `None` (with a warning) when DM does not apply it. For a task filter DM
/// silently drops a rule with an unknown action or event or an empty or malformed schema pattern; for a
/// source-level one (`source_level`) the worker refuses to start the source's tasks instead.
pub(super) fn read_filter(
    cx: &mut Cx<'_>,
    fname: &str,
    f: &Map<String, Value>,
    fp: &str,
    source_level: bool,
) -> Option<FilterIn> {
    let fname = fname.to_owned();
    cx.leftovers(f, fp, &["schema-pattern", "table-pattern", "events", "sql-pattern", "action"], &|_| None, "filter");
    let drops = |why: &str| {
        if source_level {
            format!(
                "binlog filter `{fname}`: DM's worker refuses to start the source's tasks with this rule ({why}); not converted"
            )
        } else {
            format!("binlog filter `{fname}`: DM drops this rule ({why}), so it has no effect; not converted")
        }
    };
    let action_text = cx.opt_str(f, fp, "action").unwrap_or_default();
    // DM compares the action exactly.
    let action = match action_text.as_str() {
        "Ignore" => Action::Ignore,
        "Do" => Action::Do,
        "Error" => Action::Error,
        other => {
            cx.warn(
                &join(fp, "action"),
                drops(&format!("`action` must be exactly `Ignore`, `Do` or `Error`, not `{other}`")),
            );
            return None;
        }
    };
    let schema = cx.opt_str(f, fp, "schema-pattern").unwrap_or_default();
    let table = cx.opt_str(f, fp, "table-pattern").unwrap_or_default();
    if schema.is_empty() {
        cx.warn(fp, drops("it has no `schema-pattern`"));
        return None;
    }
    if let Some(e) = [&schema, &table]
        .into_iter()
        .filter(|p| !p.is_empty())
        .find_map(|p| Pattern::parse_filter(p, Case::Sensitive).err())
    {
        cx.warn(fp, drops(&e.0));
        return None;
    }
    let sql = cx.opt_str_list(f, fp, "sql-pattern").unwrap_or_default();
    if !sql.is_empty() && regex_syntax::Parser::new().parse(&format!("(?i){}", sql.join("|"))).is_err() {
        cx.refuse(
            &join(fp, "sql-pattern"),
            format!("binlog filter `{fname}`"),
            "its `sql-pattern` does not parse here, so whether DM compiles it (and applies the rule at all) \
             cannot be told",
            "fix the regular expression, then convert again",
        );
        return None;
    }
    let mut events = Vec::new();
    let mut unknown = Vec::new();
    for (k, e) in cx.opt_str_list(f, fp, "events").unwrap_or_default().into_iter().enumerate() {
        let lower = e.to_lowercase();
        if BINLOG_EVENTS.contains(&lower.as_str()) {
            events.push(e);
        } else if !lower.is_empty() {
            unknown.push((e, format!("{}/{k}", join(fp, "events"))));
        }
    }
    if let Some((_, first)) = unknown.first() {
        let list = unknown.iter().map(|(e, _)| format!("`{e}`")).collect::<Vec<_>>().join(", ");
        if source_level || action != Action::Ignore || (events.is_empty() && sql.is_empty()) {
            cx.warn(first, drops(&format!("{list} is not an event type DM knows")));
            return None;
        }
        let hint = unknown
            .iter()
            .filter_map(|(e, _)| did_you_mean_event(e).map(|s| format!("`{e}` → `{s}`?")))
            .collect::<Vec<_>>();
        cx.warn(
            first,
            format!(
                "binlog filter `{fname}`: {list} is not an event type DM knows{}. DM drops a rule with an unknown \
                 event (it only logs it), so under dmctl this filter ignored nothing; the converted filter keeps \
                 its known events ({}) and not {list}, so it WILL ignore them (NARROWER than what dmctl did; \
                 remove the filter if that is not wanted)",
                if hint.is_empty() { String::new() } else { format!(" ({})", hint.join(", ")) },
                if events.is_empty() {
                    "its SQL patterns".to_owned()
                } else {
                    events.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", ")
                }
            ),
        );
    }
    Some(FilterIn { name: fname, ptr: fp.to_owned(), schema, table, action, events, sql })
}

/// A close known event type for an unknown one (`truncate` → `truncate table`).
fn did_you_mean_event(e: &str) -> Option<&'static str> {
    let lower = e.to_lowercase();
    BINLOG_EVENTS
        .iter()
        .copied()
        .find(|k| k.starts_with(&format!("{lower} ")) || k.replace(' ', "") == lower.replace([' ', '_', '-'], ""))
}

/// Expression filters skip rows; DM's OpenAPI task has none, so an instance that uses one cannot be carried.
fn expression_filters<'a>(
    cx: &mut Cx<'_>,
    inst: &'a Map<String, Value>,
    ip: &str,
    exprs: &mut Named<'a>,
) -> Result<(), ConvertError> {
    for (j, name) in cx.opt_str_list(inst, ip, "expression-filters").unwrap_or_default().into_iter().enumerate() {
        let at = format!("{}/{j}", join(ip, "expression-filters"));
        if exprs.get(cx, &name, &at)?.is_some() {
            cx.refuse(
                &at,
                format!("expression filter `{name}`"),
                "DM's OpenAPI task has no expression filters: the rows it skips would be replicated",
                "keep this task in dmctl, or remove the expression filter from the dmctl file if replicating those \
                 rows is intended, then convert again",
            );
        }
    }
    Ok(())
}

fn filter_spec(events: &[String], sql: &[String]) -> BinlogFilterRuleSpec {
    BinlogFilterRuleSpec {
        ignore_event: (!events.is_empty()).then(|| events.to_vec()),
        ignore_sql: (!sql.is_empty()).then(|| sql.to_vec()),
    }
}

/// Notes on case: DM's OpenAPI takes case sensitivity from the upstream (`lower_case_table_names`, docs/dm-behaviour.md
/// §3), the dmctl task from `case-sensitive`.
fn case_notes(cx: &mut Cx<'_>, sensitive: bool, patterns: &[(String, String)]) {
    let upper = patterns.iter().find(|(p, _)| p.bytes().any(|b| b.is_ascii_uppercase()));
    if sensitive {
        cx.warn(
            "/case-sensitive",
            "`case-sensitive: true` is not part of DM's OpenAPI task, which compares names exactly only when the \
             upstream has `lower_case_table_names=0`; check `SELECT @@lower_case_table_names` on each upstream: with \
             1 or 2, patterns would also match names that differ in case",
        );
    } else if let Some((p, ptr)) = upper {
        cx.warn(
            ptr,
            format!(
                "`{p}`: this dmctl task compares names case-insensitively, while DM's OpenAPI takes case sensitivity \
                 from the upstream; with `lower_case_table_names=0` (the Linux default) the converted task compares \
                 exactly, so names that differ from `{p}` only in case are no longer replicated (NARROWER there)"
            ),
        );
    }
}

/// The instance's `<unit>-config-name` block or its inline `<unit>` block.
fn unit_block<'a>(
    cx: &mut Cx<'_>,
    inst: &'a Map<String, Value>,
    ip: &str,
    unit: &str,
    named: &mut Named<'a>,
) -> Result<Option<Block<'a>>, ConvertError> {
    let key = format!("{unit}-config-name");
    if let Some(n) = cx.opt_str(inst, ip, &key).filter(|s| !s.is_empty()) {
        return named.get(cx, &n, &join(ip, &key));
    }
    Ok(match inst.get(unit) {
        Some(Value::Object(o)) => Some((o, join(ip, unit))),
        _ => None,
    })
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
        let scope_flags: Vec<&String> = rest.iter().filter(|t| restricts_dump(t)).collect();
        if !scope_flags.is_empty() {
            cx.refuse(
                &join(mp, "extra-args"),
                format!(
                    "mydumper extra-args {}",
                    scope_flags.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(" ")
                ),
                "they choose which databases, tables or rows the full dump takes (DM lets them replace the \
                 block-allow list for the dump); DM's OpenAPI task has no extra-args, so the dump would take more",
                "express the selection in the block-allow list, then convert again",
            );
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

/// Dumpling flags (as DM parses extra-args) that select what the dump takes: `-B/--database`, `-T/--tables-list`,
/// `-f/--filter`, `--where`. Short flags may be bundled (`-WB db`).
fn restricts_dump(token: &str) -> bool {
    if let Some(long) = token.strip_prefix("--") {
        let name = long.split('=').next().unwrap_or("");
        return matches!(name, "database" | "tables-list" | "filter" | "where");
    }
    let Some(short) = token.strip_prefix('-') else { return false };
    for c in short.chars() {
        match c {
            'B' | 'T' | 'f' => return true,
            // Boolean shorthands may precede others in one token.
            'W' => continue,
            // A flag taking a value: the rest of the token is its value.
            _ => return false,
        }
    }
    false
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
