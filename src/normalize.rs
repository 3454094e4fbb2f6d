//! One comparable form for desired and live resources, and the wire form dm-apply sends.
//!
//! DM's reads are lossy (docs/dm-behaviour.md §9): lists come back in random order, the server fills defaults, masks source
//! passwords and TLS contents, renames binlog filter rules, drops write-only fields and lowercases patterns on
//! case-insensitive upstreams. Both sides are therefore mapped into the same `serde_json::Value` shape here, with
//! those losses applied to both, so that `plan(x, live(x))` is empty. Secrets never enter the comparable form: the
//! planner compares them separately (source passwords through dm-apply's fingerprint record, task target passwords
//! directly) and shows `(sensitive value)`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::config::{SecuritySpec, SourceSpec, TaskSpec};
use crate::dm::ServerVersion;
use crate::dm::types::{
    BinlogFilterRule, FullMigrateConf, IncrMigrateConf, Purge, RelayConfig, Security, Source, TableMigrateRule,
    TableRuleSource, TableRuleTarget, TargetConfig, TargetSession, Task, TaskSourceConf, TaskSourceConfig,
};
use crate::secret::Secret;

/// `meta_schema` dm-apply sends when the user sets none (DM ≤ v8.5.3's own default, on every version).
pub const DEFAULT_META_SCHEMA: &str = "dm_meta";
/// The spec default that v8.5.4+ injects when a client omits `meta_schema`.
pub const SPEC_META_SCHEMA: &str = "dm-meta";

// Server defaults (docs/dm-behaviour.md R2.11, §9).
const PURGE_INTERVAL: i64 = 3600;
const PURGE_EXPIRES: i64 = 0;
const PURGE_REMAIN_SPACE: i64 = 15;
const EXPORT_THREADS: i64 = 4;
const IMPORT_THREADS: i64 = 16;
const DATA_DIR: &str = "./dumped_data";
const IMPORT_MODE: &str = "logical";
const REPL_THREADS: i64 = 16;
const REPL_BATCH: i64 = 100;

/// Which side a wire object comes from: the binlog filter rules read back differently (docs/dm-behaviour.md §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Built by dm-apply from the configuration.
    Desired,
    /// Read from DM.
    Live,
}

fn enum_str<T: Serialize>(t: &T) -> String {
    match serde_json::to_value(t) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

fn security_to_wire(s: &SecuritySpec) -> Security {
    Security {
        ssl_ca_content: s.ssl_ca_content.clone(),
        ssl_cert_content: s.ssl_cert_content.clone(),
        ssl_key_content: s.ssl_key_content.clone(),
        cert_allowed_cn: s.cert_allowed_cn.clone(),
    }
}

/// The `Source` dm-apply sends for a declared source (password included: in memory only).
pub fn source_to_wire(spec: &SourceSpec, _version: &ServerVersion) -> Source {
    Source {
        source_name: spec.source_name.clone(),
        host: spec.host.clone(),
        port: spec.port,
        user: spec.user.clone(),
        password: spec.password.clone(),
        // Always explicit: v8.5.4+ would otherwise create a disabled source (docs/dm-behaviour.md §2).
        enable_gtid: spec.enable_gtid,
        enable: spec.enable,
        flavor: spec.flavor.as_ref().map(enum_str),
        security: spec.security.as_ref().map(security_to_wire),
        purge: spec.purge.as_ref().map(|p| Purge {
            interval: p.interval,
            expires: p.expires,
            remain_space: p.remain_space,
        }),
        relay_config: spec.relay_config.as_ref().map(|r| RelayConfig {
            enable_relay: r.enable_relay,
            relay_binlog_name: r.relay_binlog_name.clone(),
            relay_binlog_gtid: r.relay_binlog_gtid.clone(),
            relay_dir: r.relay_dir.clone(),
        }),
        status_list: None,
        task_name_list: None,
    }
}

/// `full_migrate_conf.security` exists from v9.0.0-beta.1 / v26.3 on (docs/dm-behaviour.md §15); older servers drop it.
fn supports_full_security(version: &ServerVersion) -> bool {
    version.semver.is_some_and(|(major, _, _)| major >= 9)
}

/// Fields of a task that this server version cannot apply (HEAD-only fields on older servers): they are not sent,
/// and the plan warns about each.
pub fn unsupported_fields(spec: &TaskSpec, version: &ServerVersion) -> Vec<&'static str> {
    let mut v = vec![];
    if !supports_full_security(version)
        && spec.source_config.full_migrate_conf.as_ref().is_some_and(|f| f.security.is_some())
    {
        v.push("source_config.full_migrate_conf.security");
    }
    if version.is_head() {
        return v;
    }
    if spec.timezone.is_some() {
        v.push("timezone");
    }
    if spec.source_config.incr_migrate_conf.as_ref().is_some_and(|c| c.safe_mode.is_some()) {
        v.push("source_config.incr_migrate_conf.safe_mode");
    }
    if spec.target_config.session.as_ref().is_some_and(|s| s.foreign_key_checks.is_some()) {
        v.push("target_config.session");
    }
    v
}

/// The effective `on_duplicate` (both `task.on_duplicate` and `full_migrate_conf.on_duplicate_logical` carry it).
fn effective_on_duplicate(spec: &TaskSpec) -> String {
    spec.on_duplicate
        .as_ref()
        .map(enum_str)
        .or_else(|| {
            spec.source_config.full_migrate_conf.as_ref().and_then(|f| f.on_duplicate_logical.as_ref()).map(enum_str)
        })
        .unwrap_or_else(|| "replace".to_string())
}

/// The `Task` dm-apply sends for a declared task (target password included: in memory only).
pub fn task_to_wire(spec: &TaskSpec, version: &ServerVersion) -> Task {
    let head = version.is_head();
    let on_dup = effective_on_duplicate(spec);
    let f = spec.source_config.full_migrate_conf.clone().unwrap_or_default();
    let full = FullMigrateConf {
        export_threads: f.export_threads,
        import_threads: f.import_threads,
        data_dir: f.data_dir,
        consistency: f.consistency.as_ref().map(enum_str),
        import_mode: f.import_mode.as_ref().map(enum_str),
        sorting_dir: f.sorting_dir,
        disk_quota: f.disk_quota,
        checksum: f.checksum.as_ref().map(enum_str),
        analyze: f.analyze.as_ref().map(enum_str),
        range_concurrency: f.range_concurrency,
        compress_kv_pairs: f.compress_kv_pairs,
        pd_addr: f.pd_addr,
        security: if supports_full_security(version) { f.security.as_ref().map(security_to_wire) } else { None },
        // v7.6+ applies only this one; older servers ignore it (docs/dm-behaviour.md §9, the on_duplicate trap).
        on_duplicate_logical: Some(on_dup.clone()),
        on_duplicate_physical: f.on_duplicate_physical.as_ref().map(enum_str),
    };
    let incr = spec.source_config.incr_migrate_conf.as_ref().map(|c| IncrMigrateConf {
        repl_threads: c.repl_threads,
        repl_batch: c.repl_batch,
        safe_mode: if head { c.safe_mode } else { None },
    });
    let session = if head {
        spec.target_config.session.as_ref().and_then(|s| {
            s.foreign_key_checks.as_ref().map(|f| TargetSession { foreign_key_checks: Some(enum_str(f)) })
        })
    } else {
        None
    };
    Task {
        name: spec.name.clone(),
        task_mode: enum_str(&spec.task_mode),
        shard_mode: spec.shard_mode.as_ref().map(enum_str),
        strict_optimistic_shard_mode: Some(spec.strict_optimistic_shard_mode.unwrap_or(false)),
        meta_schema: Some(spec.meta_schema.clone().unwrap_or_else(|| DEFAULT_META_SCHEMA.to_string())),
        timezone: if head { spec.timezone.clone() } else { None },
        enhance_online_schema_change: spec.enhance_online_schema_change.unwrap_or(true),
        on_duplicate: on_dup,
        target_config: TargetConfig {
            host: spec.target_config.host.clone(),
            port: spec.target_config.port,
            user: spec.target_config.user.clone(),
            password: spec.target_config.password.clone(),
            security: spec.target_config.security.as_ref().map(security_to_wire),
            session,
        },
        binlog_filter_rule: if spec.binlog_filter_rule.is_empty() {
            None
        } else {
            Some(
                spec.binlog_filter_rule
                    .iter()
                    .map(|(k, r)| {
                        (
                            k.clone(),
                            BinlogFilterRule { ignore_event: r.ignore_event.clone(), ignore_sql: r.ignore_sql.clone() },
                        )
                    })
                    .collect(),
            )
        },
        table_migrate_rule: spec
            .table_migrate_rule
            .iter()
            .map(|r| TableMigrateRule {
                source: TableRuleSource {
                    source_name: r.source.source_name.clone(),
                    schema: r.source.schema.clone(),
                    table: r.source.table.clone(),
                },
                target: r.target.as_ref().map(|t| TableRuleTarget { schema: t.schema.clone(), table: t.table.clone() }),
                binlog_filter_rule: r.binlog_filter_rule.clone(),
            })
            .collect(),
        source_config: TaskSourceConfig {
            full_migrate_conf: Some(full),
            incr_migrate_conf: incr,
            source_conf: spec
                .source_config
                .source_conf
                .iter()
                .map(|s| TaskSourceConf {
                    source_name: s.source_name.clone(),
                    binlog_name: s.binlog_name.clone(),
                    binlog_pos: s.binlog_pos,
                    binlog_gtid: s.binlog_gtid.clone(),
                })
                .collect(),
        },
        ignore_checking_items: spec.ignore_checking_items.clone(),
        status_list: None,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Comparable form

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

fn insert_opt(m: &mut Map<String, Value>, k: &str, v: Option<Value>) {
    if let Some(v) = v {
        m.insert(k.to_string(), v);
    }
}

fn sorted_set(v: &Option<Vec<String>>) -> Option<Value> {
    let mut v: Vec<String> = v.clone().unwrap_or_default();
    v.sort();
    v.dedup();
    (!v.is_empty()).then(|| json!(v))
}

/// Comparable form of a source. `spec` is the declared source when there is one: fields the server fills in
/// (flavor, relay_dir) are compared only when the user set them. Excluded: `password` and the TLS contents (DM
/// hides them; compared through fingerprints) and `enable` (a runtime action, enable/disable).
pub fn source_comparable(s: &Source, spec: Option<&SourceSpec>) -> Value {
    let mut m = Map::new();
    m.insert("host".into(), json!(s.host));
    m.insert("port".into(), json!(s.port));
    m.insert("user".into(), json!(s.user));
    m.insert("enable_gtid".into(), json!(s.enable_gtid));
    if spec.is_none_or(|sp| sp.flavor.is_some()) {
        insert_opt(&mut m, "flavor", non_empty(&s.flavor).map(|f| json!(f.to_lowercase())));
    }
    // Contents are hidden on GET: only presence and the allowed CNs compare.
    let sec = s.security.as_ref().map(|x| {
        let mut o = Map::new();
        insert_opt(&mut o, "cert_allowed_cn", sorted_set(&x.cert_allowed_cn));
        Value::Object(o)
    });
    m.insert("security".into(), sec.unwrap_or(Value::Null));
    let p = s.purge.clone().unwrap_or_default();
    m.insert(
        "purge".into(),
        json!({
            "interval": p.interval.unwrap_or(PURGE_INTERVAL),
            "expires": p.expires.unwrap_or(PURGE_EXPIRES),
            "remain_space": p.remain_space.unwrap_or(PURGE_REMAIN_SPACE),
        }),
    );
    let r = s.relay_config.clone().unwrap_or_default();
    let mut rm = Map::new();
    rm.insert("enable_relay".into(), json!(r.enable_relay.unwrap_or(false)));
    insert_opt(&mut rm, "relay_binlog_name", non_empty(&r.relay_binlog_name).map(|x| json!(x)));
    insert_opt(&mut rm, "relay_binlog_gtid", non_empty(&r.relay_binlog_gtid).map(|x| json!(x)));
    let relay_dir_declared = spec.is_none_or(|sp| sp.relay_config.as_ref().is_some_and(|r| r.relay_dir.is_some()));
    if relay_dir_declared {
        insert_opt(&mut rm, "relay_dir", non_empty(&r.relay_dir).map(|x| json!(x)));
    }
    m.insert("relay_config".into(), Value::Object(rm));
    Value::Object(m)
}

/// Key of a table migrate rule (a set keyed by source/schema/table, docs/dm-behaviour.md R9.5). With `fold`, the
/// patterns are lowercased, as DM stores them for a case-insensitive upstream (R5.10, R9.7). Public so that plans can
/// name a rule as the configuration writes it (`render::present` finds the declared rule of a key).
pub fn rule_key(r: &TableRuleSource, fold: bool) -> String {
    let (schema, table) =
        if fold { (r.schema.to_lowercase(), r.table.to_lowercase()) } else { (r.schema.clone(), r.table.clone()) };
    if table.is_empty() {
        format!("{}:{}", r.source_name, schema)
    } else {
        format!("{}:{}.{}", r.source_name, schema, table)
    }
}

/// `(index, name)` sort key for server-generated filter names `{source}-filter-rule-{i}`.
fn filter_index(source: &str, name: &str) -> Option<u64> {
    name.strip_prefix(source)?.strip_prefix("-filter-rule-")?.parse().ok()
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Typed comparable form of a task: cheap to build and compare (planning 10,000 unchanged tasks must stay fast);
/// serialized into the `Value` form only for resources that differ. Field order is the display order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskCmp<'a> {
    task_mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    shard_mode: Option<&'a str>,
    #[serde(skip_serializing_if = "is_false")]
    strict_optimistic_shard_mode: bool,
    meta_schema: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    timezone: Option<&'a str>,
    enhance_online_schema_change: bool,
    on_duplicate: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ignore_checking_items: Option<Vec<&'a str>>,
    target_config: TargetCmp<'a>,
    source_config: SourceConfigCmp<'a>,
    table_migrate_rule: BTreeMap<String, RuleCmp<'a>>,
    binlog_filter_rule: BTreeMap<&'a str, Vec<FilterCmp<'a>>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct SecurityCmp<'a> {
    ssl_ca_content: &'a str,
    ssl_cert_content: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cert_allowed_cn: Option<Vec<&'a str>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct SessionCmp<'a> {
    foreign_key_checks: &'a str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct TargetCmp<'a> {
    host: &'a str,
    port: u16,
    user: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    security: Option<SecurityCmp<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<SessionCmp<'a>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct SourceConfCmp<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    binlog_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    binlog_pos: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    binlog_gtid: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct FullCmp<'a> {
    export_threads: i64,
    import_threads: i64,
    data_dir: &'a str,
    /// Not returned by v8.5 (tracked through dm-apply's state record there).
    #[serde(skip_serializing_if = "Option::is_none")]
    import_mode: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consistency: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pd_addr: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    security: Option<SecurityCmp<'a>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct IncrCmp {
    repl_threads: i64,
    repl_batch: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    safe_mode: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct SourceConfigCmp<'a> {
    source_conf: BTreeMap<&'a str, SourceConfCmp<'a>>,
    full_migrate_conf: FullCmp<'a>,
    incr_migrate_conf: IncrCmp,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct RuleTargetCmp<'a> {
    schema: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    table: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct RuleCmp<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<RuleTargetCmp<'a>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct FilterCmp<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ignore_event: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ignore_sql: Option<&'a [String]>,
}

fn ne(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

fn sorted_refs(v: &Option<Vec<String>>) -> Option<Vec<&str>> {
    let mut v: Vec<&str> = v.as_ref()?.iter().map(String::as_str).collect();
    v.sort_unstable();
    v.dedup();
    (!v.is_empty()).then_some(v)
}

fn security_cmp(s: &Security) -> SecurityCmp<'_> {
    SecurityCmp {
        ssl_ca_content: &s.ssl_ca_content,
        ssl_cert_content: &s.ssl_cert_content,
        cert_allowed_cn: sorted_refs(&s.cert_allowed_cn),
    }
}

fn filter_cmp(r: &BinlogFilterRule) -> FilterCmp<'_> {
    FilterCmp {
        ignore_event: r.ignore_event.as_deref().filter(|v| !v.is_empty()),
        ignore_sql: r.ignore_sql.as_deref().filter(|v| !v.is_empty()),
    }
}

/// Per-source list of binlog filter contents (docs/dm-behaviour.md §9): names are regenerated by the server, so only the content,
/// in order, is compared.
fn binlog_filters<'a>(t: &'a Task, side: Side, sources: &[&'a str]) -> BTreeMap<&'a str, Vec<FilterCmp<'a>>> {
    let mut out = BTreeMap::new();
    let Some(defs) = t.binlog_filter_rule.as_ref() else { return out };
    for s in sources {
        let rules = t.table_migrate_rule.iter().filter(|r| r.source.source_name == *s);
        let list: Vec<FilterCmp<'a>> = match side {
            // L_s = concatenation over the source's rules, in order, of the named filters.
            Side::Desired => rules
                .flat_map(|r| r.binlog_filter_rule.iter().flatten())
                .filter_map(|n| defs.get(n))
                .map(filter_cmp)
                .collect(),
            // The server lists all of the source's filter names on every rule: take each once, in index order.
            Side::Live => {
                let mut names: Vec<&String> = vec![];
                for n in rules.flat_map(|r| r.binlog_filter_rule.iter().flatten()) {
                    if !names.contains(&n) {
                        names.push(n);
                    }
                }
                names.sort_by_key(|n| filter_index(s, n).unwrap_or(u64::MAX));
                names.iter().filter_map(|n| defs.get(*n)).map(filter_cmp).collect()
            }
        };
        if !list.is_empty() {
            out.insert(*s, list);
        }
    }
    out
}

/// How a task is compared beyond the fixed rules of [`task_comparable`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CmpOpts<'a> {
    /// Leave the binlog start positions out: they say where a *new* task starts. Once a task exists its stored
    /// position is no diff (a task re-created at its checkpoint stores the checkpoint, not the configured one).
    pub without_positions: bool,
    /// Sources whose table patterns compare case-insensitively (their upstream is, or is not known not to be,
    /// case-insensitive: DM lowercases patterns there, R5.10). `None`: every pattern compares exactly.
    pub fold_case: Option<&'a std::collections::BTreeSet<String>>,
}

/// Comparable form of a task, typed (see [`task_comparable`] for the rules), with positions and exact case.
pub fn task_cmp<'a>(t: &'a Task, side: Side, spec: Option<&TaskSpec>, version: &ServerVersion) -> TaskCmp<'a> {
    task_cmp_with(t, side, spec, version, &CmpOpts::default())
}

/// [`task_cmp`] with options.
pub fn task_cmp_with<'a>(
    t: &'a Task,
    side: Side,
    spec: Option<&TaskSpec>,
    version: &ServerVersion,
    opts: &CmpOpts,
) -> TaskCmp<'a> {
    let head = version.is_head();
    // v8.5 drops target TLS, import_mode and pd_addr on read: never compared there, on either side.
    let full_read_back = version.returns_full_task_config();
    let declared = spec.is_some();
    let meta = ne(&t.meta_schema).unwrap_or(DEFAULT_META_SCHEMA);
    // Not set by the user: DM's default is `dm_meta` or (v8.5.4+ injection) `dm-meta`; both mean "default".
    let meta = if spec.is_some_and(|s| s.meta_schema.is_none()) && meta == SPEC_META_SCHEMA {
        DEFAULT_META_SCHEMA
    } else {
        meta
    };
    let tc = &t.target_config;
    let mut names: Vec<&str> = t.source_config.source_conf.iter().map(|s| s.source_name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let source_conf = t
        .source_config
        .source_conf
        .iter()
        .map(|s| {
            (
                s.source_name.as_str(),
                if opts.without_positions {
                    SourceConfCmp { binlog_name: None, binlog_pos: None, binlog_gtid: None }
                } else {
                    SourceConfCmp {
                        binlog_name: ne(&s.binlog_name),
                        binlog_pos: s.binlog_pos.filter(|p| *p != 0),
                        binlog_gtid: ne(&s.binlog_gtid),
                    }
                },
            )
        })
        .collect();
    let f = t.source_config.full_migrate_conf.as_ref();
    let fspec = spec.and_then(|s| s.source_config.full_migrate_conf.as_ref());
    let dd = f.and_then(|f| ne(&f.data_dir)).unwrap_or(DATA_DIR);
    // A trailing `/` is lost on read.
    let dd = if dd.len() > 1 { dd.trim_end_matches('/') } else { dd };
    let full = FullCmp {
        export_threads: f.and_then(|f| f.export_threads).unwrap_or(EXPORT_THREADS),
        import_threads: f.and_then(|f| f.import_threads).unwrap_or(IMPORT_THREADS),
        data_dir: dd,
        import_mode: full_read_back.then(|| f.and_then(|f| ne(&f.import_mode)).unwrap_or(IMPORT_MODE)),
        consistency: if !declared || fspec.is_some_and(|x| x.consistency.is_some()) {
            f.and_then(|f| ne(&f.consistency))
        } else {
            None
        },
        pd_addr: if full_read_back && (!declared || fspec.is_some_and(|x| x.pd_addr.is_some())) {
            f.and_then(|f| ne(&f.pd_addr))
        } else {
            None
        },
        security: if !declared || supports_full_security(version) {
            f.and_then(|f| f.security.as_ref()).map(security_cmp)
        } else {
            None
        },
    };
    let i = t.source_config.incr_migrate_conf.as_ref();
    let incr = IncrCmp {
        repl_threads: i.and_then(|i| i.repl_threads).unwrap_or(REPL_THREADS),
        repl_batch: i.and_then(|i| i.repl_batch).unwrap_or(REPL_BATCH),
        safe_mode: (head || !declared).then(|| i.and_then(|i| i.safe_mode).unwrap_or(false)),
    };
    // Table rules as a set; rules of sources the task does not have are dropped by DM.
    let mut rules: BTreeMap<String, RuleCmp> = BTreeMap::new();
    for r in &t.table_migrate_rule {
        if !names.contains(&r.source.source_name.as_str()) {
            continue;
        }
        let target = r.target.as_ref().and_then(|x| {
            // A route target as DM reads it back: an empty schema is lost, an empty table reads as absent.
            Some(RuleTargetCmp { schema: ne(&x.schema)?, table: ne(&x.table) })
        });
        let fold = opts.fold_case.is_some_and(|f| f.contains(&r.source.source_name));
        let key = rule_key(&r.source, fold);
        // Two rules with the same key collapse into one; a route (with target) wins, as on the server.
        match rules.get(&key) {
            Some(old) if old.target.is_some() || target.is_none() => {}
            _ => {
                rules.insert(key, RuleCmp { target });
            }
        }
    }
    let binlog_filter_rule = binlog_filters(t, side, &names);
    TaskCmp {
        task_mode: t.task_mode.to_lowercase(),
        shard_mode: ne(&t.shard_mode),
        strict_optimistic_shard_mode: t.strict_optimistic_shard_mode == Some(true),
        meta_schema: meta,
        timezone: if head || !declared { ne(&t.timezone) } else { None },
        enhance_online_schema_change: t.enhance_online_schema_change,
        on_duplicate: if t.on_duplicate.is_empty() { "replace" } else { t.on_duplicate.as_str() },
        ignore_checking_items: sorted_refs(&t.ignore_checking_items),
        target_config: TargetCmp {
            host: &tc.host,
            port: tc.port,
            user: &tc.user,
            security: if full_read_back { tc.security.as_ref().map(security_cmp) } else { None },
            session: if head || !declared {
                tc.session
                    .as_ref()
                    .and_then(|s| ne(&s.foreign_key_checks))
                    .map(|f| SessionCmp { foreign_key_checks: f })
            } else {
                None
            },
        },
        source_config: SourceConfigCmp { source_conf, full_migrate_conf: full, incr_migrate_conf: incr },
        table_migrate_rule: rules,
        binlog_filter_rule,
    }
}

impl TaskCmp<'_> {
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Comparable form of a task. `spec` is the declared task when there is one (it decides which server-filled
/// values count as "not set"). Excluded: the target password and TLS keys (compared by the planner, never printed),
/// write-only `full_migrate_conf` fields (never returned; fingerprinted in dm-apply's state record instead).
pub fn task_comparable(t: &Task, side: Side, spec: Option<&TaskSpec>, version: &ServerVersion) -> Value {
    task_cmp(t, side, spec, version).to_value()
}

/// Write-only `full_migrate_conf` fields (never returned by GET), as one canonical string to fingerprint.
pub fn task_write_only(t: &Task) -> Option<Secret> {
    let f = t.source_config.full_migrate_conf.as_ref()?;
    let v = json!({
        "sorting_dir": f.sorting_dir, "disk_quota": f.disk_quota, "checksum": f.checksum, "analyze": f.analyze,
        "range_concurrency": f.range_concurrency, "compress-kv-pairs": f.compress_kv_pairs,
        "on_duplicate_physical": f.on_duplicate_physical,
    });
    if v.as_object().is_some_and(|o| o.values().all(Value::is_null)) {
        return None;
    }
    Some(Secret::new(v.to_string()))
}

/// A value DM never returns (on this server version), which dm-apply tracks through its state record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOnlyField {
    /// Key in the record, and the attribute path shown in plans (also what `lifecycle.ignore_changes` matches).
    pub key: &'static str,
    /// What the plan says changed, e.g. "password".
    pub label: &'static str,
    /// The canonical value that is fingerprinted (in memory only).
    pub value: Secret,
    /// A secret (shown as `(sensitive value)`); otherwise the plan shows `display`.
    pub sensitive: bool,
    pub display: Option<Value>,
}

/// Record keys of a task's write-only `full_migrate_conf` fields, and of the fields v8.5 drops on read.
pub const TASK_WRITE_ONLY_KEY: &str = "source_config.full_migrate_conf.(write-only fields)";
pub const TASK_TARGET_SECURITY_KEY: &str = "target_config.security";
pub const TASK_IMPORT_MODE_KEY: &str = "source_config.full_migrate_conf.import_mode";
pub const TASK_PD_ADDR_KEY: &str = "source_config.full_migrate_conf.pd_addr";
/// Record keys of a source's write-only values.
pub const SOURCE_PASSWORD_KEY: &str = "password";
pub const SOURCE_SECURITY_KEY: &str = "security";

/// A source's write-only values: its password and TLS contents (DM masks both on every read).
pub fn source_write_only(wire: &Source) -> Vec<WriteOnlyField> {
    let mut v = vec![];
    if let Some(p) = &wire.password {
        v.push(WriteOnlyField {
            key: SOURCE_PASSWORD_KEY,
            label: "password",
            value: p.clone(),
            sensitive: true,
            display: None,
        });
    }
    if let Some(s) = source_security_secret(wire) {
        v.push(WriteOnlyField {
            key: SOURCE_SECURITY_KEY,
            label: "security (TLS contents)",
            value: s,
            sensitive: true,
            display: None,
        });
    }
    v
}

/// A task's write-only values on `version`: the `full_migrate_conf` fields no version returns, and on v8.5 the
/// target TLS, `import_mode` and `pd_addr` (docs/dm-behaviour.md §9). On v26.3+ those are read back and compared
/// directly instead.
pub fn task_write_only_fields(wire: &Task, version: &ServerVersion) -> Vec<WriteOnlyField> {
    let mut v = vec![];
    if let Some(w) = task_write_only(wire) {
        let display = serde_json::from_str(w.expose()).ok();
        v.push(WriteOnlyField {
            key: TASK_WRITE_ONLY_KEY,
            label: "write-only full_migrate_conf fields",
            value: w,
            sensitive: false,
            display,
        });
    }
    if version.returns_full_task_config() {
        return v;
    }
    if let Some(s) = &wire.target_config.security {
        v.push(WriteOnlyField {
            key: TASK_TARGET_SECURITY_KEY,
            label: "target TLS settings",
            value: security_secret(s),
            sensitive: true,
            display: None,
        });
    }
    let f = wire.source_config.full_migrate_conf.as_ref();
    // `logical` is the default: absent and `logical` are the same value.
    if let Some(m) = f.and_then(|f| ne(&f.import_mode)).filter(|m| *m != IMPORT_MODE) {
        v.push(WriteOnlyField {
            key: TASK_IMPORT_MODE_KEY,
            label: "import_mode",
            value: Secret::new(m),
            sensitive: false,
            display: Some(json!(m)),
        });
    }
    if let Some(pd) = f.and_then(|f| ne(&f.pd_addr)) {
        v.push(WriteOnlyField {
            key: TASK_PD_ADDR_KEY,
            label: "pd_addr",
            value: Secret::new(pd),
            sensitive: false,
            display: Some(json!(pd)),
        });
    }
    v
}

fn security_secret(x: &Security) -> Secret {
    let mut cn = x.cert_allowed_cn.clone().unwrap_or_default();
    cn.sort();
    Secret::new(format!(
        "{}\0{}\0{}\0{}",
        x.ssl_ca_content,
        x.ssl_cert_content,
        x.ssl_key_content.expose(),
        cn.join(",")
    ))
}

/// Source TLS contents as one value to fingerprint (DM hides them on GET).
pub fn source_security_secret(s: &Source) -> Option<Secret> {
    s.security
        .as_ref()
        .map(|x| Secret::new(format!("{}\0{}\0{}", x.ssl_ca_content, x.ssl_cert_content, x.ssl_key_content.expose())))
}

/// Whether any secret of a task (target password, TLS keys) differs. Compared directly where DM returns them as
/// sent; v8.5 drops the TLS settings on read (they are tracked through dm-apply's state record there).
pub fn task_secrets_differ(a: &Task, b: &Task, version: &ServerVersion) -> Vec<&'static str> {
    let mut v = vec![];
    if a.target_config.password != b.target_config.password {
        v.push("target_config.password");
    }
    if !version.returns_full_task_config() {
        return v;
    }
    let key = |s: &Option<Security>| s.as_ref().map(|x| x.ssl_key_content.clone());
    if key(&a.target_config.security) != key(&b.target_config.security) {
        v.push("target_config.security.ssl_key_content");
    }
    let fkey = |t: &Task| t.source_config.full_migrate_conf.as_ref().and_then(|f| key(&f.security));
    if fkey(a) != fkey(b) {
        v.push("source_config.full_migrate_conf.security.ssl_key_content");
    }
    v
}

/// Flatten a comparable value into `(path, leaf)` pairs. Objects nest; arrays and scalars are leaves. Keys that are
/// not plain identifiers are bracketed: `table_migrate_rule["mysql-01:db.t"]`.
pub fn flatten(v: &Value) -> Vec<(String, Value)> {
    let mut out = vec![];
    flatten_into(v, String::new(), &mut out);
    out
}

fn flatten_into(v: &Value, prefix: String, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                let plain = !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                let p = match (prefix.is_empty(), plain) {
                    (true, true) => k.clone(),
                    (true, false) => format!("[{}]", json!(k)),
                    (false, true) => format!("{prefix}.{k}"),
                    (false, false) => format!("{prefix}[{}]", json!(k)),
                };
                flatten_into(x, p, out);
            }
        }
        _ => out.push((prefix, v.clone())),
    }
}

/// Whether `path` is `pattern` or below it (`a.b` covers `a.b.c` and `a.b["x"]`).
pub fn path_matches(path: &str, pattern: &str) -> bool {
    let pattern = pattern.trim();
    path == pattern
        || (path.starts_with(pattern) && matches!(path.as_bytes().get(pattern.len()), Some(b'.') | Some(b'[')))
}

/// Canonical JSON text (objects keep their constructed order, which is deterministic) for digests.
pub fn digest(v: &Value) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(v.to_string().as_bytes());
    let d = h.finalize();
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Desired-side options of a task this server cannot honour, turned into warnings.
pub fn unsupported_warnings(spec: &TaskSpec, version: &ServerVersion) -> Vec<String> {
    unsupported_fields(spec, version)
        .into_iter()
        .map(|f| {
            format!(
                "task.{}: `{f}` is not supported by DM-master {version}; it is not sent and cannot be applied",
                spec.name
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testing::{desired_from_yaml, readback_source, readback_task};

    const Y: &str = r#"
sources:
  - {source_name: s1, host: h, port: 3306, user: u, password: pw}
tasks:
  - name: t
    task_mode: all
    timezone: UTC
    on_duplicate: ignore
    target_config: {host: tidb, port: 4000, user: root, password: tpw, session: {foreign_key_checks: "0"}}
    binlog_filter_rule:
      fa: {ignore_event: [drop table]}
      fb: {ignore_sql: ["^DROP"]}
    table_migrate_rule:
      - source: {source_name: s1, schema: Shop, table: "T_*"}
        target: {schema: d, table: ""}
        binlog_filter_rule: [fa, fb]
      - source: {source_name: ghost, schema: x}
    source_config:
      incr_migrate_conf: {safe_mode: true}
      source_conf: [{source_name: s1}]
"#;

    fn head() -> ServerVersion {
        ServerVersion::parse("v26.4.0-alpha")
    }
    fn old() -> ServerVersion {
        ServerVersion::parse("v8.5.3")
    }

    #[test]
    fn wire_is_explicit_and_version_aware() {
        let d = desired_from_yaml("x", Y).unwrap();
        let (spec, _) = &d.tasks["t"];
        let w = task_to_wire(spec, &head());
        assert_eq!(w.meta_schema.as_deref(), Some("dm_meta"));
        assert!(w.enhance_online_schema_change);
        assert_eq!(w.on_duplicate, "ignore");
        let f = w.source_config.full_migrate_conf.as_ref().unwrap();
        assert_eq!(f.on_duplicate_logical.as_deref(), Some("ignore"));
        assert_eq!(w.timezone.as_deref(), Some("UTC"));
        assert!(w.target_config.session.is_some());
        assert_eq!(w.source_config.incr_migrate_conf.as_ref().unwrap().safe_mode, Some(true));
        let w = task_to_wire(spec, &old());
        assert!(w.timezone.is_none() && w.target_config.session.is_none());
        assert_eq!(w.source_config.incr_migrate_conf.as_ref().unwrap().safe_mode, None);
        assert_eq!(unsupported_fields(spec, &old()).len(), 3);
        let mut with_sec = spec.clone();
        with_sec.source_config.full_migrate_conf = Some(crate::config::FullMigrateConfSpec {
            security: Some(SecuritySpec { ssl_ca_content: "ca".into(), ..Default::default() }),
            ..Default::default()
        });
        assert!(unsupported_fields(&with_sec, &old()).contains(&"source_config.full_migrate_conf.security"));
        let w = task_to_wire(&with_sec, &old());
        assert!(w.source_config.full_migrate_conf.as_ref().unwrap().security.is_none());
        assert!(unsupported_fields(spec, &head()).is_empty());
        let s = source_to_wire(&d.sources["s1"].0, &old());
        assert!(s.enable && !s.enable_gtid);
    }

    #[test]
    fn task_readback_compares_equal() {
        let d = desired_from_yaml("x", Y).unwrap();
        let (spec, _) = &d.tasks["t"];
        // The test read-back lowercases patterns, as DM does for a case-insensitive upstream.
        let folded = std::collections::BTreeSet::from(["s1".to_string()]);
        let opts = CmpOpts { fold_case: Some(&folded), without_positions: false };
        for v in [head(), old()] {
            let w = task_to_wire(spec, &v);
            let want = task_cmp_with(&w, Side::Desired, Some(spec), &v, &opts);
            for r in 0..3 {
                let back = readback_task(&w, &v, r);
                let got = task_cmp_with(&back, Side::Live, Some(spec), &v, &opts);
                assert_eq!(want, got);
            }
        }
    }

    #[test]
    fn rules_are_sets_folded_per_source_and_ghost_sources_dropped() {
        let d = desired_from_yaml("x", Y).unwrap();
        let (spec, _) = &d.tasks["t"];
        let w = task_to_wire(spec, &head());
        let c = task_comparable(&w, Side::Desired, Some(spec), &head());
        let rules = c["table_migrate_rule"].as_object().unwrap();
        assert_eq!(rules.keys().collect::<Vec<_>>(), ["s1:Shop.T_*"]);
        // target.table "" reads as absent.
        assert_eq!(rules["s1:Shop.T_*"], json!({"target": {"schema": "d"}}));
        // A case-insensitive upstream: DM lowercases the patterns, so they compare folded.
        let folded = std::collections::BTreeSet::from(["s1".to_string()]);
        let opts = CmpOpts { fold_case: Some(&folded), without_positions: true };
        let c = task_cmp_with(&w, Side::Desired, Some(spec), &head(), &opts).to_value();
        assert_eq!(c["table_migrate_rule"].as_object().unwrap().keys().collect::<Vec<_>>(), ["s1:shop.t_*"]);
    }

    #[test]
    fn positions_can_be_left_out() {
        let d = desired_from_yaml("x", Y).unwrap();
        let (spec, _) = &d.tasks["t"];
        let mut w = task_to_wire(spec, &old());
        w.source_config.source_conf[0].binlog_name = Some("mysql-bin.000002".into());
        w.source_config.source_conf[0].binlog_pos = Some(4);
        let with = task_cmp(&w, Side::Desired, Some(spec), &old()).to_value();
        assert_eq!(with["source_config"]["source_conf"]["s1"]["binlog_name"], "mysql-bin.000002");
        let opts = CmpOpts { without_positions: true, fold_case: None };
        let without = task_cmp_with(&w, Side::Desired, Some(spec), &old(), &opts).to_value();
        assert_eq!(without["source_config"]["source_conf"], json!({"s1": {}}));
    }

    #[test]
    fn filters_compare_by_content_not_name() {
        let d = desired_from_yaml("x", Y).unwrap();
        let (spec, _) = &d.tasks["t"];
        let w = task_to_wire(spec, &head());
        let c = task_comparable(&w, Side::Desired, Some(spec), &head());
        assert_eq!(c["binlog_filter_rule"]["s1"], json!([{"ignore_event": ["drop table"]}, {"ignore_sql": ["^DROP"]}]));
        let mut live = readback_task(&w, &head(), 1);
        let names: Vec<String> = live.binlog_filter_rule.as_ref().unwrap().keys().cloned().collect();
        assert_eq!(names, ["s1-filter-rule-0", "s1-filter-rule-1"]);
        let lc = task_comparable(&live, Side::Live, Some(spec), &head());
        assert_eq!(lc["binlog_filter_rule"], c["binlog_filter_rule"]);
        // Changed content is a difference.
        live.binlog_filter_rule.as_mut().unwrap().get_mut("s1-filter-rule-1").unwrap().ignore_sql =
            Some(vec!["x".into()]);
        assert_ne!(
            task_comparable(&live, Side::Live, Some(spec), &head())["binlog_filter_rule"],
            c["binlog_filter_rule"]
        );
    }

    #[test]
    fn meta_schema_default_spellings() {
        let d = desired_from_yaml("x", Y).unwrap();
        let (spec, _) = &d.tasks["t"];
        let mut w = task_to_wire(spec, &head());
        let want = task_comparable(&w, Side::Desired, Some(spec), &head());
        w.meta_schema = Some("dm-meta".into());
        assert_eq!(task_comparable(&w, Side::Live, Some(spec), &head())["meta_schema"], want["meta_schema"]);
        // Without a declared task (digests), the live value is kept as is.
        assert_eq!(task_comparable(&w, Side::Live, None, &head())["meta_schema"], "dm-meta");
    }

    #[test]
    fn source_defaults_and_masking() {
        let d = desired_from_yaml("x", Y).unwrap();
        let (spec, _) = &d.sources["s1"];
        let w = source_to_wire(spec, &head());
        let live = readback_source(&w, &head());
        assert_eq!(live.password.as_ref().map(|p| p.expose()), Some("******"));
        assert_eq!(source_comparable(&w, Some(spec)), source_comparable(&live, Some(spec)));
        assert!(source_comparable(&live, Some(spec)).get("password").is_none());
        // A user-set flavor is compared.
        let mut spec2 = spec.clone();
        spec2.flavor = Some(crate::config::Flavor::Mariadb);
        assert_ne!(
            source_comparable(&source_to_wire(&spec2, &head()), Some(&spec2)),
            source_comparable(&live, Some(&spec2))
        );
    }

    #[test]
    fn paths() {
        let v = json!({"a": {"b": 1, "x:y.z": {"c": 2}}, "l": [1, 2]});
        let f: Vec<String> = flatten(&v).into_iter().map(|(p, _)| p).collect();
        assert_eq!(f, ["a.b", "a[\"x:y.z\"].c", "l"]);
        assert!(path_matches("a.b", "a"));
        assert!(path_matches("a[\"x\"].c", "a"));
        assert!(!path_matches("ab", "a"));
        assert!(path_matches(
            "source_config.incr_migrate_conf.repl_threads",
            "source_config.incr_migrate_conf.repl_threads"
        ));
    }
}
