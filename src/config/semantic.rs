//! Semantic checks: what the JSON Schema cannot express, across all files, and what DM-master would refuse (or
//! silently get wrong) that can be known offline. See docs/config-format.md for the list.

use std::collections::{BTreeMap, BTreeSet};

use super::diag::{Problem, did_you_mean};
use super::loader::{Item, LoadedFile};
use super::model::{DesiredStage, ImportMode, ShardMode, SourceSpec, TaskMode, TaskSpec};

pub(crate) struct Context<'a> {
    pub files: &'a [LoadedFile],
    pub sources: &'a [Item<SourceSpec>],
    pub tasks: &'a [Item<TaskSpec>],
    /// (file, pointer, name)
    pub external: &'a [(usize, String, String)],
    /// Names of sources that failed the schema: still declared, for reference checks.
    pub broken_sources: &'a BTreeSet<String>,
}

/// A source's `relay` block: what DM would refuse or misread (docs/dm-behaviour.md §4).
fn relay_checks(item: &Item<SourceSpec>, lf: &LoadedFile, errors: &mut Vec<Problem>) {
    let Some(r) = &item.spec.relay else { return };
    let ptr = format!("{}/relay/workers", item.pointer);
    let Some(workers) = &r.workers else { return };
    if !r.enabled {
        errors.push(
            Problem::error("relay_workers", "`relay.workers` is given with `enabled: false`")
                .at(&lf.file, lf.key_pos(&ptr), "no relay runs, so no worker can be named")
                .with_help("remove `workers`, or set `enabled: true`"),
        );
    }
    if workers.is_empty() {
        errors.push(
            Problem::error("relay_workers", "`relay.workers` must name at least one DM-worker")
                .at(&lf.file, lf.value_pos(&ptr), "empty")
                .with_help("leave `workers` out to relay on the worker the source is bound to"),
        );
    }
    let mut seen = BTreeSet::new();
    for (i, w) in workers.iter().enumerate() {
        let wp = format!("{ptr}/{i}");
        if w.trim().is_empty() {
            errors.push(Problem::error("relay_workers", "a relay worker name must not be empty").at(
                &lf.file,
                lf.value_pos(&wp),
                "empty",
            ));
        } else if !seen.insert(w.as_str()) {
            errors.push(
                Problem::error("relay_workers", format!("DM-worker `{w}` is listed twice in `relay.workers`")).at(
                    &lf.file,
                    lf.value_pos(&wp),
                    "listed again here",
                ),
            );
        }
    }
}

/// Across sources: a DM-worker is bound to one source and relays one source, and relays only its own bound source
/// (docs/dm-behaviour.md R4.3, R12.1).
fn placement_checks(ctx: &Context<'_>, errors: &mut Vec<Problem>) {
    // worker → (source, file, pointer) of the first claim, by kind.
    let mut bound: BTreeMap<&str, (&str, usize, String)> = BTreeMap::new();
    let mut relay: BTreeMap<&str, (&str, usize, String)> = BTreeMap::new();
    for item in ctx.sources {
        let name = item.spec.source_name.as_str();
        if let Some(w) = item.spec.worker_name.as_deref() {
            let ptr = format!("{}/worker_name", item.pointer);
            if let Some((other, fi, fp)) = bound.get(w) {
                let (lf, fl) = (&ctx.files[item.file], &ctx.files[*fi]);
                errors.push(
                    Problem::error(
                        "worker_name",
                        format!("DM-worker `{w}` is declared for sources `{other}` and `{name}`"),
                    )
                    .at(&lf.file, lf.value_pos(&ptr), "declared again here")
                    .with_related(Problem::note("first_declared", format!("first declared for `{other}` here")).at(
                        &fl.file,
                        fl.value_pos(fp),
                        "first declared here",
                    ))
                    .with_help("a DM-worker is bound to one source at a time"),
                );
            } else {
                bound.insert(w, (name, item.file, ptr));
            }
        }
        let workers = item.spec.relay.as_ref().filter(|r| r.enabled).and_then(|r| r.workers.as_ref());
        for (i, w) in workers.into_iter().flatten().enumerate() {
            let ptr = format!("{}/relay/workers/{i}", item.pointer);
            if let Some((other, fi, fp)) = relay.get(w.as_str()) {
                if *other == name {
                    continue;
                }
                let (lf, fl) = (&ctx.files[item.file], &ctx.files[*fi]);
                errors.push(
                    Problem::error(
                        "relay_workers",
                        format!("DM-worker `{w}` is declared to relay sources `{other}` and `{name}`"),
                    )
                    .at(&lf.file, lf.value_pos(&ptr), "declared again here")
                    .with_related(Problem::note("first_declared", format!("first declared for `{other}` here")).at(
                        &fl.file,
                        fl.value_pos(fp),
                        "first declared here",
                    ))
                    .with_help("a DM-worker relays one source (DM answers 46020)"),
                );
            } else {
                relay.insert(w.as_str(), (name, item.file, ptr));
            }
        }
    }
    for (w, (source, fi, ptr)) in &relay {
        if let Some((b, bfi, bptr)) = bound.get(w)
            && b != source
        {
            let (lf, bl) = (&ctx.files[*fi], &ctx.files[*bfi]);
            errors.push(
                Problem::error(
                    "relay_workers",
                    format!(
                        "DM-worker `{w}` should relay source `{source}` but is declared as the worker of source `{b}`"
                    ),
                )
                .at(&lf.file, lf.value_pos(ptr), "relay declared here")
                .with_related(Problem::note("bound_here", format!("bound to `{b}` here")).at(
                    &bl.file,
                    bl.value_pos(bptr),
                    "bound here",
                ))
                .with_help("a DM-worker relays only the source it is bound to, or none (DM answers 46021)"),
            );
        }
    }
}

/// `ignore_checking_items` values DM accepts (`dm/config/checking_item.go`).
pub const CHECKING_ITEMS: &[&str] = &[
    "all",
    "dump_privilege",
    "replication_privilege",
    "version",
    "server_id",
    "binlog_enable",
    "binlog_format",
    "binlog_row_image",
    "table_schema",
    "schema_of_shard_tables",
    "auto_increment_ID",
    "online_ddl",
    "binlog_db",
    "meta_position",
    "conn_number",
    "target_privilege",
    "empty_region",
    "region_distribution",
    "downstream_version",
    "free_space",
    "downstream_mutex_features",
    "downstream_table_empty",
    "primary_key",
];

/// `ignore_event` values of DM's binlog filter (the event types of tiflow's `pkg/binlog-filter`). DM drops a rule
/// with an unknown event (it only logs it), so a typo would silently filter nothing: dm-apply refuses them.
pub const BINLOG_EVENTS: &[&str] = &[
    "all",
    "all dml",
    "all ddl",
    "none",
    "none ddl",
    "none dml",
    "insert",
    "update",
    "delete",
    "create database",
    "drop database",
    "alter database",
    "create schema",
    "drop schema",
    "alter schema",
    "create table",
    "drop table",
    "truncate table",
    "rename table",
    "create index",
    "drop index",
    "create view",
    "drop view",
    "alter table",
    "add table partition",
    "drop table partition",
    "truncate table partition",
    "incompatible ddl changes",
    "value range decrease",
    "precision decrease",
    "modify column",
    "rename column",
    "rename index",
    "drop column",
    "drop primary key",
    "drop unique key",
    "modify default value",
    "modify constraint",
    "modify columns order",
    "modify charset",
    "modify collation",
    "remove auto increment",
    "modify storage engine",
    "reorganize table partition",
    "rebuild table partition",
    "coalesce table partition",
    "split table partition",
    "exchange table partition",
    "modify schema charset and collate",
    "modify table charset and collate",
    "modify table comment",
    "recover table",
    "alter table partitioning",
    "remove table partitioning",
    "add column",
    "set default value",
    "rebase auto id",
    "add primary key",
    "alter index visibility",
    "alter ttl info",
    "alter ttl remove",
    "multi schema change",
    // Only DM v8.5.4 and later know these two; `plan` refuses them against an older DM-master.
    "add foreign key",
    "drop foreign key",
];

/// Binlog filter events that only some DM versions know (docs/dm-behaviour.md R5.11).
pub const FOREIGN_KEY_EVENTS: &[&str] = &["add foreign key", "drop foreign key"];

const MAX_SOURCE_NAME: usize = 32;

/// Why DM refuses a task `timezone` (`ParseTimeZone`): `SYSTEM`/`Local`, or a UTC offset outside
/// [-12:59, +14:00]. IANA names cannot be checked offline; DM checks them (20008).
fn timezone_problem(tz: &str) -> Option<&'static str> {
    if tz.eq_ignore_ascii_case("system") || tz.eq_ignore_ascii_case("local") {
        return Some("the server's own zone is not supported");
    }
    let (sign, rest) = match tz.as_bytes().first() {
        Some(b'+') => (1, &tz[1..]),
        Some(b'-') => (-1, &tz[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (Ok(h), Ok(m)) = (h.parse::<u32>(), m.parse::<u32>()) else { return Some("not a UTC offset like +08:00") };
    if m >= 60 {
        return Some("not a UTC offset like +08:00");
    }
    let minutes = h * 60 + m;
    let too_far = if sign > 0 { minutes > 14 * 60 } else { minutes > 12 * 60 + 59 };
    too_far.then_some("UTC offsets range from -12:59 to +14:00")
}

/// Task names DM-master's router takes for its own routes under `/api/v1/tasks/` (task templates, the dmctl task
/// converter): a task of that name could be created but never read, updated, started or deleted by name.
pub const RESERVED_TASK_NAMES: &[&str] = &["templates", "converters"];

/// Why DM-master cannot route `name` as one path segment of `/api/v1/sources/{name}` or `/api/v1/tasks/{name}`, if
/// it cannot. URL normalization turns `.` and `..` into "this" and "the parent" directory (`GET
/// /api/v1/sources/..` reaches `GET /api/v1/`); the server decodes `%2F` before routing, so a `/` splits the
/// segment whatever the encoding; control characters have no place in a name that ends up in logs and terminals.
pub fn unroutable_name(name: &str, task: bool) -> Option<String> {
    if name == "." || name == ".." {
        return Some(format!(
            "`{name}` cannot be a name: in the URL path of the resource it means the current or parent directory, so \
             DM-master would receive a request for another path"
        ));
    }
    if name.contains('/') {
        return Some(format!(
            "`{name}` contains `/`: DM-master routes the name as one URL path segment, and a `/` splits it"
        ));
    }
    if name.chars().any(char::is_control) {
        return Some(format!("`{}` contains a control character", crate::ui::sanitize::inline(name)));
    }
    if task && RESERVED_TASK_NAMES.contains(&name) {
        return Some(format!(
            "`{name}` is taken by DM-master's own route `/api/v1/tasks/{name}`: a task of that name could never be \
             read, updated, started or deleted"
        ));
    }
    None
}

const ROUTE_HELP: &str = "use letters, digits, `-`, `_` and `.` (not `.` or `..` alone); task names other than \
                          `templates` and `converters`";

pub(crate) fn check(ctx: &Context<'_>, errors: &mut Vec<Problem>, warnings: &mut Vec<Problem>) {
    let f = |i: usize| &ctx.files[i];

    // Unique source names across files.
    let mut first_source: BTreeMap<&str, &Item<SourceSpec>> = BTreeMap::new();
    for item in ctx.sources {
        let name = item.spec.source_name.as_str();
        let lf = f(item.file);
        let name_ptr = format!("{}/source_name", item.pointer);
        if let Some(first) = first_source.get(name) {
            let fl = f(first.file);
            let first_ptr = format!("{}/source_name", first.pointer);
            errors.push(
                Problem::error("duplicate_source", format!("source `{name}` is declared more than once"))
                    .at(&lf.file, lf.value_pos(&name_ptr), "declared again here")
                    .with_related(
                        Problem::note("first_declared", format!("source `{name}` is first declared here")).at(
                            &fl.file,
                            fl.value_pos(&first_ptr),
                            "first declared here",
                        ),
                    )
                    .with_help("source names must be unique across all configuration files"),
            );
        } else {
            first_source.insert(name, item);
        }
        let n = name.chars().count();
        if n == 0 || n > MAX_SOURCE_NAME {
            errors.push(
                Problem::error(
                    "source_name",
                    format!("`source_name` must have 1-{MAX_SOURCE_NAME} characters (it has {n})"),
                )
                .at(&lf.file, lf.value_pos(&name_ptr), "here")
                .with_help("DM refuses longer names (error 40005/40006)"),
            );
        }
        if let Some(why) = unroutable_name(name, false) {
            errors.push(
                Problem::error("name_route", format!("source name {why}"))
                    .at(&lf.file, lf.value_pos(&name_ptr), "DM-master cannot route this name")
                    .with_help(ROUTE_HELP),
            );
        }
        if item.spec.relay_config.as_ref().and_then(|r| r.enable_relay) == Some(true) {
            let p = format!("{}/relay_config/enable_relay", item.pointer);
            if item.spec.relay.is_some() {
                errors.push(
                    Problem::error("enable_relay", "`relay_config.enable_relay: true` conflicts with `relay`")
                        .at(&lf.file, lf.key_pos(&p), "relay through the config flag")
                        .with_help("DM refuses to start relay by worker name while the flag is set (46030): remove `relay_config.enable_relay`; `relay` manages relay"),
                );
            } else {
                warnings.push(
                    Problem::warning("enable_relay", "`relay_config.enable_relay: true` fails when DM creates the source, and relay started by it cannot be purged")
                        .at(&lf.file, lf.key_pos(&p), "known DM-master bug at create time")
                        .with_help("DM persists the source and then refuses (40070/46030); remove it and declare `relay: {enabled: true}` on the source: dm-apply then starts relay the way DM accepts (docs/config-format.md, \"Relay and worker binding\")"),
                );
            }
        }
        relay_checks(item, lf, errors);
    }
    placement_checks(ctx, errors);

    // External sources: valid names, not also declared here.
    let declared: BTreeSet<&str> = ctx
        .sources
        .iter()
        .map(|s| s.spec.source_name.as_str())
        .chain(ctx.broken_sources.iter().map(String::as_str))
        .collect();
    let mut external: BTreeSet<&str> = BTreeSet::new();
    for (fi, ptr, name) in ctx.external {
        let lf = f(*fi);
        if let Some(decl) = first_source.get(name.as_str()) {
            let dl = f(decl.file);
            errors.push(
                Problem::error(
                    "external_declared",
                    format!("source `{name}` is both declared and listed in `external_sources`"),
                )
                .at(&lf.file, lf.value_pos(ptr), "listed as external here")
                .with_related(Problem::note("declared_here", format!("source `{name}` is declared here")).at(
                    &dl.file,
                    dl.value_pos(&format!("{}/source_name", decl.pointer)),
                    "declared here",
                ))
                .with_help(
                    "a source is either managed by this repository (declared) or outside it (external), not both",
                ),
            );
        }
        let n = name.chars().count();
        if n == 0 || n > MAX_SOURCE_NAME {
            errors.push(
                Problem::error(
                    "source_name",
                    format!("external source names must have 1-{MAX_SOURCE_NAME} characters (this has {n})"),
                )
                .at(&lf.file, lf.value_pos(ptr), "here"),
            );
        }
        if let Some(why) = unroutable_name(name, false) {
            errors.push(
                Problem::error("name_route", format!("external source name {why}"))
                    .at(&lf.file, lf.value_pos(ptr), "DM-master cannot route this name")
                    .with_help(ROUTE_HELP),
            );
        }
        external.insert(name.as_str());
    }

    // Tasks.
    let mut first_task: BTreeMap<&str, &Item<TaskSpec>> = BTreeMap::new();
    for item in ctx.tasks {
        let t = &item.spec;
        let lf = f(item.file);
        let file = &lf.file;
        let base = item.pointer.as_str();
        let p = |rest: &str| format!("{base}/{rest}");
        let name = t.name.as_str();
        if let Some(first) = first_task.get(name) {
            let fl = f(first.file);
            errors.push(
                Problem::error("duplicate_task", format!("task `{name}` is declared more than once"))
                    .at(file, lf.value_pos(&p("name")), "declared again here")
                    .with_related(Problem::note("first_declared", format!("task `{name}` is first declared here")).at(
                        &fl.file,
                        fl.value_pos(&format!("{}/name", first.pointer)),
                        "first declared here",
                    ))
                    .with_help("task names must be unique across all configuration files"),
            );
        } else {
            first_task.insert(name, item);
        }
        if name.is_empty() {
            errors.push(Problem::error("task_name", "a task `name` must not be empty").at(
                file,
                lf.value_pos(&p("name")),
                "empty",
            ));
        }
        if let Some(why) = unroutable_name(name, true) {
            errors.push(
                Problem::error("name_route", format!("task name {why}"))
                    .at(file, lf.value_pos(&p("name")), "DM-master cannot route this name")
                    .with_help(ROUTE_HELP),
            );
        }

        // source_conf: at least one, no duplicates, each declared or external.
        let confs = &t.source_config.source_conf;
        if confs.is_empty() {
            errors.push(
                Problem::error("no_sources", format!("task `{name}` has no source in `source_config.source_conf`"))
                    .at(file, lf.key_pos(&p("source_config/source_conf")), "empty")
                    .with_help("list at least one source: `source_conf: [{source_name: mysql-01}]`"),
            );
        }
        let mut task_sources: BTreeSet<&str> = BTreeSet::new();
        // A task runs on its enabled sources (apply starts it only there): only with none left can it not run.
        let runs_nowhere =
            confs.iter().all(|sc| first_source.get(sc.source_name.as_str()).is_some_and(|src| !src.spec.enable));
        for (i, sc) in confs.iter().enumerate() {
            // Built only for a problem (as every pointer here): these loops run for every task of a large fleet.
            let sp = || p(&format!("source_config/source_conf/{i}/source_name"));
            let sname = sc.source_name.as_str();
            if !task_sources.insert(sname) {
                errors.push(
                    Problem::error(
                        "duplicate_task_source",
                        format!("source `{sname}` appears twice in task `{name}`'s `source_conf`"),
                    )
                    .at(file, lf.value_pos(&sp()), "listed again here")
                    .with_help("each source may appear once per task; merge the two entries"),
                );
            }
            if !declared.contains(sname) && !external.contains(sname) {
                let mut pr = Problem::error(
                    "unknown_source",
                    format!("task `{name}` uses source `{sname}`, which is not declared"),
                )
                .at(file, lf.value_pos(&sp()), "not declared in any file");
                pr = match did_you_mean(sname, declared.iter().chain(external.iter()).copied()) {
                    Some(s) => pr.with_help(format!("did you mean `{s}`? Otherwise declare it under `sources:`, or list it under `external_sources:` if it is managed elsewhere")),
                    None => pr.with_help("declare it under `sources:`, or list it under `external_sources:` if it is managed outside this repository"),
                };
                errors.push(pr);
            }
            if sc.binlog_pos.is_some() && sc.binlog_name.is_none() {
                errors.push(
                    Problem::error("binlog_pos", "`binlog_pos` needs `binlog_name`")
                        .at(
                            file,
                            lf.key_pos(&p(&format!("source_config/source_conf/{i}/binlog_pos"))),
                            "position without a file",
                        )
                        .with_help("set `binlog_name` (e.g. mysql-bin.000001) next to `binlog_pos`"),
                );
            }
            if sc.binlog_pos.is_some_and(|pos| pos < 0) {
                errors.push(Problem::error("binlog_pos", "`binlog_pos` must not be negative").at(
                    file,
                    lf.value_pos(&p(&format!("source_config/source_conf/{i}/binlog_pos"))),
                    "negative",
                ));
            }
            if t.task_mode == TaskMode::Incremental && sc.binlog_name.is_none() && sc.binlog_gtid.is_none() {
                warnings.push(
                    Problem::warning("no_binlog_position", format!("incremental task `{name}` has no binlog position for source `{sname}`"))
                        .at(file, lf.value_pos(&sp()), "no binlog_name/binlog_pos or binlog_gtid")
                        .with_help("DM creates the task but refuses to start it (20022 `must set meta for task-mode incremental`) unless a checkpoint exists; set `binlog_name` + `binlog_pos` or `binlog_gtid`"),
                );
            }
            if t.stage == DesiredStage::Running
                && runs_nowhere
                && let Some(src) = first_source.get(sname)
                && !src.spec.enable
            {
                warnings.push(
                    Problem::warning("disabled_source", format!("task `{name}` should run, but its source `{sname}` is disabled (`enable: false`)"))
                        .at(file, lf.value_pos(&sp()), "disabled source")
                        .with_help("DM cannot start a task on a disabled source (38058); enable the source or set `stage: stopped`"),
                );
            }
        }

        // table_migrate_rule: sources among the task's, filters defined.
        for (i, rule) in t.table_migrate_rule.iter().enumerate() {
            let sp = || p(&format!("table_migrate_rule/{i}/source/source_name"));
            let rs = rule.source.source_name.as_str();
            if !task_sources.contains(rs) {
                let help = if task_sources.is_empty() {
                    "DM silently drops rules for sources the task does not have; list the task's sources first"
                        .to_owned()
                } else {
                    format!(
                        "DM silently drops rules for other sources; use one of: {}",
                        task_sources.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
                    )
                };
                errors.push(
                    Problem::error(
                        "rule_source",
                        format!("rule uses source `{rs}`, which is not one of task `{name}`'s sources"),
                    )
                    .at(file, lf.value_pos(&sp()), "not in source_config.source_conf")
                    .with_help(help),
                );
            }
            for (j, fname) in rule.binlog_filter_rule.iter().flatten().enumerate() {
                if !t.binlog_filter_rule.contains_key(fname) {
                    let mut pr = Problem::error(
                        "unknown_filter",
                        format!("binlog filter rule `{fname}` is not defined in task `{name}`"),
                    )
                    .at(
                        file,
                        lf.value_pos(&p(&format!("table_migrate_rule/{i}/binlog_filter_rule/{j}"))),
                        "not defined",
                    )
                    .with_help("define it under the task's `binlog_filter_rule:` (DM refuses the task with 49001)");
                    if let Some(s) = did_you_mean(fname, t.binlog_filter_rule.keys().map(String::as_str)) {
                        pr = pr.with_help(format!("did you mean `{s}`?"));
                    }
                    errors.push(pr);
                }
            }
        }
        let used: BTreeSet<&str> = t
            .table_migrate_rule
            .iter()
            .flat_map(|r| r.binlog_filter_rule.iter().flatten())
            .map(String::as_str)
            .collect();
        for (fname, rule) in &t.binlog_filter_rule {
            let fp = p(&format!("binlog_filter_rule/{}", fname.replace('~', "~0").replace('/', "~1")));
            if !used.contains(fname.as_str()) {
                warnings.push(
                    Problem::warning(
                        "unused_filter",
                        format!("binlog filter rule `{fname}` is not used by any table_migrate_rule"),
                    )
                    .at(file, lf.key_pos(&fp), "defined but unused")
                    .with_help("DM applies a filter only through a rule's `binlog_filter_rule` list"),
                );
            }
            for (k, ev) in rule.ignore_event.iter().flatten().enumerate() {
                let norm = ev.trim().to_ascii_lowercase();
                if !BINLOG_EVENTS.contains(&norm.as_str()) {
                    let mut pr = Problem::error("ignore_event", format!("`{ev}` is not a binlog event type DM knows"))
                        .at(file, lf.value_pos(&format!("{fp}/ignore_event/{k}")), "unknown event type");
                    pr = match did_you_mean(&norm, BINLOG_EVENTS.iter().copied()) {
                        Some(s) => pr.with_help(format!(
                            "did you mean `{s}`? (DM would only log an unknown event and filter nothing)"
                        )),
                        None => {
                            pr.with_help("e.g. `all dml`, `drop table`, `truncate table`; see docs/config-format.md")
                        }
                    };
                    errors.push(pr);
                }
            }
        }

        // Shard mode and strict optimistic.
        if t.strict_optimistic_shard_mode == Some(true) && t.shard_mode != Some(ShardMode::Optimistic) {
            errors.push(
                Problem::error("strict_optimistic", "`strict_optimistic_shard_mode` needs `shard_mode: optimistic`")
                    .at(file, lf.key_pos(&p("strict_optimistic_shard_mode")), "optimistic shard mode is not set")
                    .with_help(
                        "set `shard_mode: optimistic` or remove `strict_optimistic_shard_mode` (DM error 20066)",
                    ),
            );
        }

        // Timezone: DM takes an IANA name or a UTC offset within [-12:59, +14:00], never SYSTEM/Local (20008).
        if let Some(tz) = &t.timezone
            && let Some(why) = timezone_problem(tz)
        {
            errors.push(
                Problem::error("timezone", format!("timezone `{tz}` is refused by DM: {why}"))
                    .at(file, lf.value_pos(&p("timezone")), "not allowed")
                    .with_help("use an IANA name such as `Asia/Shanghai` or `UTC`, or a UTC offset such as `+08:00`, or leave it out to use the downstream's zone (DM error 20008)"),
            );
        }

        // ignore_checking_items.
        for (i, item) in t.ignore_checking_items.iter().flatten().enumerate() {
            if !CHECKING_ITEMS.contains(&item.as_str()) {
                let mut pr = Problem::error("checking_item", format!("`{item}` is not a DM pre-check item")).at(
                    file,
                    lf.value_pos(&p(&format!("ignore_checking_items/{i}"))),
                    "unknown check",
                );
                pr = match did_you_mean(item, CHECKING_ITEMS.iter().copied()) {
                    Some(s) => pr.with_help(format!("did you mean `{s}`?")),
                    None => pr.with_help(format!("one of: {}", CHECKING_ITEMS.join(", "))),
                };
                errors.push(pr);
            }
        }

        // Full migration settings.
        if let Some(full) = &t.source_config.full_migrate_conf {
            let fp = |rest: &str| p(&format!("source_config/full_migrate_conf/{rest}"));
            if full.import_mode == Some(ImportMode::ImportInto) {
                if t.shard_mode.is_some() {
                    errors.push(
                        Problem::error("import_into", "`import_mode: import-into` cannot be used with `shard_mode`")
                            .at(file, lf.value_pos(&fp("import_mode")), "import-into")
                            .also(file, lf.value_pos(&p("shard_mode")), "sharding")
                            .with_help("use `logical` or `physical` import for sharded tasks (DM error 20068)"),
                    );
                } else if confs.len() > 1 {
                    errors.push(
                        Problem::error("import_into", "`import_mode: import-into` supports a single source only")
                            .at(file, lf.value_pos(&fp("import_mode")), "import-into")
                            .with_help("split the task per source or use `logical`/`physical` import (DM error 20068)"),
                    );
                }
                match &full.data_dir {
                    Some(dir) if !dir.contains("://") => errors.push(
                        Problem::error("import_into", "`import_mode: import-into` needs `data_dir` on external storage")
                            .at(file, lf.value_pos(&fp("data_dir")), "a local directory")
                            .with_help("TiDB's IMPORT INTO reads the dump itself: use an `s3://`, `gs://` or `azure://` URL (DM error 20069)"),
                    ),
                    None => warnings.push(
                        Problem::warning("import_into", "`import_mode: import-into` without `data_dir` uses DM's local default `./dumped_data`")
                            .at(file, lf.value_pos(&fp("import_mode")), "import-into")
                            .with_help("set `data_dir` to an `s3://`, `gs://` or `azure://` URL that TiDB can read"),
                    ),
                    _ => {}
                }
            }
            if let Some(sec) = &full.security {
                for (key, empty) in [
                    ("ssl_ca_content", sec.ssl_ca_content.is_empty()),
                    ("ssl_cert_content", sec.ssl_cert_content.is_empty()),
                    ("ssl_key_content", sec.ssl_key_content.is_empty()),
                ] {
                    if empty {
                        errors.push(
                            Problem::error("security", format!("`full_migrate_conf.security.{key}` is empty"))
                                .at(file, lf.key_pos(&fp(&format!("security/{key}"))), "empty")
                                .with_help("DM needs all three of ssl_ca_content, ssl_cert_content and ssl_key_content (error 49001)"),
                        );
                    }
                }
            }
            for (key, v) in [("export_threads", full.export_threads), ("import_threads", full.import_threads)] {
                if v.is_some_and(|n| n < 1) {
                    errors.push(Problem::error("range", format!("`{key}` must be at least 1")).at(
                        file,
                        lf.value_pos(&fp(key)),
                        "too small",
                    ));
                }
            }
            if full.range_concurrency.is_some_and(|n| n < 0) {
                errors.push(Problem::error("range", "`range_concurrency` must not be negative").at(
                    file,
                    lf.value_pos(&fp("range_concurrency")),
                    "negative",
                ));
            }
        }
        if let Some(incr) = &t.source_config.incr_migrate_conf {
            for (key, v) in [("repl_threads", incr.repl_threads), ("repl_batch", incr.repl_batch)] {
                if v.is_some_and(|n| n < 1) {
                    errors.push(Problem::error("range", format!("`{key}` must be at least 1")).at(
                        file,
                        lf.value_pos(&p(&format!("source_config/incr_migrate_conf/{key}"))),
                        "too small",
                    ));
                }
            }
        }

        // lifecycle.ignore_changes must name real fields.
        for (i, path) in t.lifecycle.ignore_changes.iter().enumerate() {
            check_field_path(lf, &p(&format!("lifecycle/ignore_changes/{i}")), path, "TaskSpec", errors);
        }
    }
    for item in ctx.sources {
        let lf = f(item.file);
        for (i, path) in item.spec.lifecycle.ignore_changes.iter().enumerate() {
            check_field_path(lf, &format!("{}/lifecycle/ignore_changes/{i}", item.pointer), path, "SourceSpec", errors);
        }
    }
}

/// One step of a field path: a field name, or a list index / map key in brackets.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Field(String),
    Element,
}

/// Split `source_config.source_conf[0].binlog_name` or `binlog_filter_rule["no-ddl"].ignore_event` into steps
/// (the path syntax plans print). `None` when malformed.
fn parse_path(path: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    let mut chars = path.trim().chars().peekable();
    let mut name = String::new();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                if !name.is_empty() {
                    steps.push(Step::Field(std::mem::take(&mut name)));
                } else if !matches!(steps.last(), Some(Step::Element)) {
                    return None;
                }
            }
            '[' => {
                if !name.is_empty() {
                    steps.push(Step::Field(std::mem::take(&mut name)));
                }
                let mut quote = None;
                loop {
                    match (chars.next()?, quote) {
                        ('"', None) => quote = Some('"'),
                        ('"', Some(_)) => quote = None,
                        ('\\', Some(_)) => {
                            chars.next()?;
                        }
                        (']', None) => break,
                        _ => {}
                    }
                }
                steps.push(Step::Element);
            }
            c if c.is_whitespace() => return None,
            c => name.push(c),
        }
    }
    if !name.is_empty() {
        steps.push(Step::Field(name));
    }
    (!steps.is_empty() && matches!(steps.first(), Some(Step::Field(_)))).then_some(steps)
}

/// Check a field path against the schema of `def`: every field must exist at its level.
fn check_field_path(lf: &LoadedFile, pointer: &str, path: &str, def: &str, errors: &mut Vec<Problem>) {
    let schema = super::schema::cached();
    let defs = schema.get(super::schema::DEFS);
    let Some(steps) = parse_path(path) else {
        errors.push(
            Problem::error("ignore_changes", format!("`{path}` is not a field path"))
                .at(&lf.file, lf.value_pos(pointer), "malformed")
                .with_help("write fields separated by dots, with `[0]` or `[\"name\"]` for list items and map entries, e.g. `source_config.incr_migrate_conf.repl_threads`"),
        );
        return;
    };
    let mut current = defs.and_then(|d| d.get(def));
    for step in steps {
        let Some(node) = current.and_then(|c| resolve(c, defs)) else { return };
        match step {
            Step::Element => {
                current = node.get("items").or_else(|| node.get("additionalProperties").filter(|a| a.is_object()));
                if current.is_none() {
                    return; // not a list or map in the schema: nothing more to check
                }
            }
            Step::Field(seg) => {
                let Some(props) = node.get("properties").and_then(|p| p.as_object()) else { return };
                let Some(next) = props.get(&seg) else {
                    let mut pr = Problem::error(
                        "ignore_changes",
                        format!("`{path}` is not a field path of this resource"),
                    )
                    .at(&lf.file, lf.value_pos(pointer), format!("no field `{seg}` here"));
                    if let Some(s) = did_you_mean(&seg, props.keys().map(String::as_str)) {
                        pr = pr.with_help(format!("did you mean `{s}`?"));
                    } else {
                        pr = pr.with_help(format!(
                            "fields here: {}",
                            props.keys().cloned().collect::<Vec<_>>().join(", ")
                        ));
                    }
                    errors.push(pr);
                    return;
                };
                current = Some(next);
            }
        }
    }
}

/// Follow `$ref` and `anyOf: [{$ref}, {type: null}]` to the referenced definition.
fn resolve<'a>(node: &'a serde_json::Value, defs: Option<&'a serde_json::Value>) -> Option<&'a serde_json::Value> {
    let by_ref = |r: &str| r.strip_prefix("#/definitions/").and_then(|n| defs.and_then(|d| d.get(n)));
    if let Some(r) = node.get("$ref").and_then(|r| r.as_str()) {
        return by_ref(r);
    }
    for key in ["anyOf", "allOf"] {
        for alt in node.get(key).and_then(|a| a.as_array()).into_iter().flatten() {
            if let Some(r) = alt.get("$ref").and_then(|r| r.as_str()) {
                return by_ref(r);
            }
        }
    }
    Some(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths() {
        use Step::*;
        let f = |s: &str| Field(s.to_owned());
        assert_eq!(parse_path("a.b"), Some(vec![f("a"), f("b")]));
        assert_eq!(parse_path("a[0].b"), Some(vec![f("a"), Element, f("b")]));
        assert_eq!(parse_path("m[\"x.y]\"].e"), Some(vec![f("m"), Element, f("e")]));
        assert_eq!(parse_path("stage"), Some(vec![f("stage")]));
        for bad in ["", "a..b", "[0]", "a[0", "a b"] {
            assert_eq!(parse_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn value_lists_have_no_duplicates_and_are_lower_case_where_dm_is() {
        for (tz, refused) in [
            ("+04:00", false),
            ("-12:59", false),
            ("+14:00", false),
            ("+14:01", true),
            ("-13:00", true),
            ("+4:70", true),
            ("Asia/Shanghai", false),
            ("SYSTEM", true),
            ("local", true),
        ] {
            assert_eq!(timezone_problem(tz).is_some(), refused, "{tz}");
        }
        let events: BTreeSet<&str> = BINLOG_EVENTS.iter().copied().collect();
        assert_eq!(events.len(), BINLOG_EVENTS.len());
        assert!(BINLOG_EVENTS.iter().all(|e| e.to_ascii_lowercase() == *e));
        let items: BTreeSet<&str> = CHECKING_ITEMS.iter().copied().collect();
        assert_eq!(items.len(), CHECKING_ITEMS.len());
        for known in ["all dml", "drop table", "truncate table", "multi schema change"] {
            assert!(events.contains(known), "{known}");
        }
        assert!(items.contains("auto_increment_ID"), "DM's spelling, case-sensitive");
    }

    #[test]
    fn names_dm_cannot_route() {
        for ok in ["orders", "mysql-01", "a.b", "a..b", "...", "T_1", "订单"] {
            assert_eq!(unroutable_name(ok, true), None, "{ok}");
        }
        for bad in [".", "..", "a/b", "/", "a\u{1b}b"] {
            assert!(unroutable_name(bad, false).is_some(), "{bad:?}");
        }
        assert!(unroutable_name("templates", true).is_some());
        assert!(unroutable_name("converters", true).is_some());
        assert_eq!(unroutable_name("templates", false), None, "sources have no such route");
    }
}
