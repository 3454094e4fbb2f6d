//! One comparable form for desired and live resources, and the wire form dm-apply sends.
//!
//! DM's reads are lossy (semantics §4): lists come back in random order, the server fills defaults, masks source
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

// Server defaults (semantics §3, §4).
const PURGE_INTERVAL: i64 = 3600;
const PURGE_EXPIRES: i64 = 0;
const PURGE_REMAIN_SPACE: i64 = 15;
const EXPORT_THREADS: i64 = 4;
const IMPORT_THREADS: i64 = 16;
const DATA_DIR: &str = "./dumped_data";
const IMPORT_MODE: &str = "logical";
const REPL_THREADS: i64 = 16;
const REPL_BATCH: i64 = 100;

/// Which side a wire object comes from: the binlog filter rules read back differently (§4.2).
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
        // Always explicit: v8.5.4+ would otherwise create a disabled source (semantics §1).
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

/// Fields of a task that this server version cannot apply (HEAD-only fields on older servers): they are not sent,
/// and the plan warns about each.
pub fn unsupported_fields(spec: &TaskSpec, version: &ServerVersion) -> Vec<&'static str> {
    let mut v = vec![];
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
        security: f.security.as_ref().map(security_to_wire),
        // v7.6+ applies only this one; older servers ignore it (semantics §4.2 "on_duplicate trap").
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

/// Non-secret part of TLS settings: CA and certificate are public; the key is compared separately.
fn security_public(s: &Security) -> Value {
    let mut m = Map::new();
    m.insert("ssl_ca_content".into(), json!(s.ssl_ca_content));
    m.insert("ssl_cert_content".into(), json!(s.ssl_cert_content));
    insert_opt(&mut m, "cert_allowed_cn", sorted_set(&s.cert_allowed_cn));
    Value::Object(m)
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

/// Key of a table migrate rule (§4.2: a set keyed by source/schema/table). Patterns are lowercased because DM
/// lowercases them on case-insensitive upstreams.
fn rule_key(r: &TableRuleSource) -> String {
    let schema = r.schema.to_lowercase();
    let table = r.table.to_lowercase();
    if table.is_empty() {
        format!("{}:{}", r.source_name, schema)
    } else {
        format!("{}:{}.{}", r.source_name, schema, table)
    }
}

/// A route target as DM reads it back: an empty schema is lost, an empty table reads as absent.
fn rule_target(t: &Option<TableRuleTarget>) -> Option<Value> {
    let t = t.as_ref()?;
    let schema = non_empty(&t.schema)?;
    let mut m = Map::new();
    m.insert("schema".into(), json!(schema));
    insert_opt(&mut m, "table", non_empty(&t.table).map(|x| json!(x)));
    Some(Value::Object(m))
}

fn filter_value(r: &BinlogFilterRule) -> Value {
    let mut m = Map::new();
    insert_opt(&mut m, "ignore_event", r.ignore_event.clone().filter(|v| !v.is_empty()).map(|v| json!(v)));
    insert_opt(&mut m, "ignore_sql", r.ignore_sql.clone().filter(|v| !v.is_empty()).map(|v| json!(v)));
    Value::Object(m)
}

/// `(index, name)` sort key for server-generated filter names `{source}-filter-rule-{i}`.
fn filter_index(source: &str, name: &str) -> Option<u64> {
    name.strip_prefix(source)?.strip_prefix("-filter-rule-")?.parse().ok()
}

/// Per-source list of binlog filter contents (§4.2): names are regenerated by the server, so only the content,
/// in order, is compared.
fn binlog_filters(t: &Task, side: Side, sources: &[String]) -> Map<String, Value> {
    let empty = BTreeMap::new();
    let defs = t.binlog_filter_rule.as_ref().unwrap_or(&empty);
    let mut out = Map::new();
    for s in sources {
        let rules = t.table_migrate_rule.iter().filter(|r| &r.source.source_name == s);
        let list: Vec<Value> = match side {
            // L_s = concatenation over the source's rules, in order, of the named filters.
            Side::Desired => rules
                .flat_map(|r| r.binlog_filter_rule.iter().flatten())
                .filter_map(|n| defs.get(n))
                .map(filter_value)
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
                names.iter().filter_map(|n| defs.get(*n)).map(filter_value).collect()
            }
        };
        if !list.is_empty() {
            out.insert(s.clone(), Value::Array(list));
        }
    }
    out
}

/// Comparable form of a task. `spec` is the declared task when there is one (it decides which server-filled
/// values count as "not set"). Excluded: the target password and TLS keys (compared by the planner, never printed),
/// write-only `full_migrate_conf` fields (never returned; fingerprinted in dm-apply's state record instead).
pub fn task_comparable(t: &Task, side: Side, spec: Option<&TaskSpec>, version: &ServerVersion) -> Value {
    let head = version.is_head();
    let declared = spec.is_some();
    let mut m = Map::new();
    m.insert("task_mode".into(), json!(t.task_mode.to_lowercase()));
    insert_opt(&mut m, "shard_mode", non_empty(&t.shard_mode).map(|x| json!(x)));
    if t.strict_optimistic_shard_mode == Some(true) {
        m.insert("strict_optimistic_shard_mode".into(), json!(true));
    }
    let meta = non_empty(&t.meta_schema).unwrap_or(DEFAULT_META_SCHEMA);
    // Not set by the user: DM's default is `dm_meta` or (v8.5.4+ injection) `dm-meta`; both mean "default".
    let meta = if spec.is_some_and(|s| s.meta_schema.is_none()) && meta == SPEC_META_SCHEMA {
        DEFAULT_META_SCHEMA
    } else {
        meta
    };
    m.insert("meta_schema".into(), json!(meta));
    if head || !declared {
        insert_opt(&mut m, "timezone", non_empty(&t.timezone).map(|x| json!(x)));
    }
    m.insert("enhance_online_schema_change".into(), json!(t.enhance_online_schema_change));
    let on_dup = if t.on_duplicate.is_empty() { "replace" } else { t.on_duplicate.as_str() };
    m.insert("on_duplicate".into(), json!(on_dup));
    insert_opt(&mut m, "ignore_checking_items", sorted_set(&t.ignore_checking_items));

    let tc = &t.target_config;
    let mut tm = Map::new();
    tm.insert("host".into(), json!(tc.host));
    tm.insert("port".into(), json!(tc.port));
    tm.insert("user".into(), json!(tc.user));
    insert_opt(&mut tm, "security", tc.security.as_ref().map(security_public));
    if head || !declared {
        insert_opt(
            &mut tm,
            "session",
            tc.session
                .as_ref()
                .and_then(|s| non_empty(&s.foreign_key_checks))
                .map(|f| json!({ "foreign_key_checks": f })),
        );
    }
    m.insert("target_config".into(), Value::Object(tm));

    // Sources of the task: a map keyed by source name (random order on GET).
    let mut sc = Map::new();
    let mut names: Vec<String> = t.source_config.source_conf.iter().map(|s| s.source_name.clone()).collect();
    names.sort();
    names.dedup();
    let mut conf = BTreeMap::new();
    for s in &t.source_config.source_conf {
        let mut o = Map::new();
        insert_opt(&mut o, "binlog_name", non_empty(&s.binlog_name).map(|x| json!(x)));
        insert_opt(&mut o, "binlog_pos", s.binlog_pos.filter(|p| *p != 0).map(|x| json!(x)));
        insert_opt(&mut o, "binlog_gtid", non_empty(&s.binlog_gtid).map(|x| json!(x)));
        conf.insert(s.source_name.clone(), Value::Object(o));
    }
    sc.insert("source_conf".into(), Value::Object(conf.into_iter().collect()));

    let f = t.source_config.full_migrate_conf.clone().unwrap_or_default();
    let fspec = spec.and_then(|s| s.source_config.full_migrate_conf.as_ref());
    let mut fm = Map::new();
    fm.insert("export_threads".into(), json!(f.export_threads.unwrap_or(EXPORT_THREADS)));
    fm.insert("import_threads".into(), json!(f.import_threads.unwrap_or(IMPORT_THREADS)));
    let dd = non_empty(&f.data_dir).unwrap_or(DATA_DIR);
    // A trailing `/` is lost on read.
    let dd = if dd.len() > 1 { dd.trim_end_matches('/') } else { dd };
    fm.insert("data_dir".into(), json!(dd));
    fm.insert("import_mode".into(), json!(non_empty(&f.import_mode).unwrap_or(IMPORT_MODE)));
    if !declared || fspec.is_some_and(|x| x.consistency.is_some()) {
        insert_opt(&mut fm, "consistency", non_empty(&f.consistency).map(|x| json!(x)));
    }
    if !declared || fspec.is_some_and(|x| x.pd_addr.is_some()) {
        insert_opt(&mut fm, "pd_addr", non_empty(&f.pd_addr).map(|x| json!(x)));
    }
    insert_opt(&mut fm, "security", f.security.as_ref().map(security_public));
    sc.insert("full_migrate_conf".into(), Value::Object(fm));

    let i = t.source_config.incr_migrate_conf.clone().unwrap_or_default();
    let mut im = Map::new();
    im.insert("repl_threads".into(), json!(i.repl_threads.unwrap_or(REPL_THREADS)));
    im.insert("repl_batch".into(), json!(i.repl_batch.unwrap_or(REPL_BATCH)));
    if head || !declared {
        im.insert("safe_mode".into(), json!(i.safe_mode.unwrap_or(false)));
    }
    sc.insert("incr_migrate_conf".into(), Value::Object(im));
    m.insert("source_config".into(), Value::Object(sc));

    // Table rules as a set; rules of sources the task does not have are dropped by DM.
    let mut rules: BTreeMap<String, Value> = BTreeMap::new();
    for r in &t.table_migrate_rule {
        if !names.contains(&r.source.source_name) {
            continue;
        }
        let key = rule_key(&r.source);
        let target = rule_target(&r.target);
        let v = match &target {
            Some(tg) => json!({ "target": tg }),
            None => json!({}),
        };
        // Two rules with the same key collapse into one; a route (with target) wins, as on the server.
        match rules.get(&key) {
            Some(old) if old.get("target").is_some() || target.is_none() => {}
            _ => {
                rules.insert(key, v);
            }
        }
    }
    m.insert("table_migrate_rule".into(), Value::Object(rules.into_iter().collect()));
    m.insert("binlog_filter_rule".into(), Value::Object(binlog_filters(t, side, &names)));
    Value::Object(m)
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

/// Source TLS contents as one value to fingerprint (DM hides them on GET).
pub fn source_security_secret(s: &Source) -> Option<Secret> {
    s.security
        .as_ref()
        .map(|x| Secret::new(format!("{}\0{}\0{}", x.ssl_ca_content, x.ssl_cert_content, x.ssl_key_content.expose())))
}

/// Whether any secret of a task (target password, TLS keys) differs. Compared directly: DM returns them as sent.
pub fn task_secrets_differ(a: &Task, b: &Task) -> Vec<&'static str> {
    let mut v = vec![];
    if a.target_config.password != b.target_config.password {
        v.push("target_config.password");
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
                "task.{}: `{f}` is not supported by DM-master {version} (HEAD only); it is not sent and cannot be applied",
                spec.name
            )
        })
        .collect()
}
