//! Comparable form: desired and live objects mapped into the same shape, DM's read-back losses applied to both
//! (docs/dm-behaviour.md §9).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::config::{SourceSpec, TaskSpec};
use crate::dm::ServerVersion;
use crate::dm::facts;
use crate::dm::types::{BinlogFilterRule, Security, Source, TableRuleSource, Task};

use super::{Side, ne};

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
        insert_opt(&mut m, "flavor", ne(&s.flavor).map(|f| json!(f.to_lowercase())));
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
            "interval": p.interval.unwrap_or(facts::PURGE_INTERVAL),
            "expires": p.expires.unwrap_or(facts::PURGE_EXPIRES),
            "remain_space": p.remain_space.unwrap_or(facts::PURGE_REMAIN_SPACE),
        }),
    );
    let r = s.relay_config.clone().unwrap_or_default();
    let mut rm = Map::new();
    rm.insert("enable_relay".into(), json!(r.enable_relay.unwrap_or(false)));
    insert_opt(&mut rm, "relay_binlog_name", ne(&r.relay_binlog_name).map(|x| json!(x)));
    insert_opt(&mut rm, "relay_binlog_gtid", ne(&r.relay_binlog_gtid).map(|x| json!(x)));
    let relay_dir_declared = spec.is_none_or(|sp| sp.relay_config.as_ref().is_some_and(|r| r.relay_dir.is_some()));
    if relay_dir_declared {
        insert_opt(&mut rm, "relay_dir", ne(&r.relay_dir).map(|x| json!(x)));
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
                names.sort_by_key(|n| facts::filter_rule_index(s, n).unwrap_or(u64::MAX));
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
    let head = version.supports_head_task_fields();
    // v8.5 drops target TLS, import_mode and pd_addr on read: never compared there, on either side.
    let full_read_back = version.returns_full_task_config();
    let declared = spec.is_some();
    let meta = ne(&t.meta_schema).unwrap_or(facts::META_SCHEMA);
    // Not set by the user: DM's default is `dm_meta` or (v8.5.4+ injection) `dm-meta`; both mean "default".
    let meta = if spec.is_some_and(|s| s.meta_schema.is_none()) && meta == facts::META_SCHEMA_INJECTED {
        facts::META_SCHEMA
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
    let dd = f.and_then(|f| ne(&f.data_dir)).unwrap_or(facts::DATA_DIR);
    // A trailing `/` is lost on read.
    let dd = if dd.len() > 1 { dd.trim_end_matches('/') } else { dd };
    let full = FullCmp {
        export_threads: f.and_then(|f| f.export_threads).unwrap_or(facts::EXPORT_THREADS),
        import_threads: f.and_then(|f| f.import_threads).unwrap_or(facts::IMPORT_THREADS),
        data_dir: dd,
        import_mode: full_read_back.then(|| f.and_then(|f| ne(&f.import_mode)).unwrap_or(facts::IMPORT_MODE)),
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
        security: if !declared || version.supports_full_migrate_security() {
            f.and_then(|f| f.security.as_ref()).map(security_cmp)
        } else {
            None
        },
    };
    let i = t.source_config.incr_migrate_conf.as_ref();
    let incr = IncrCmp {
        repl_threads: i.and_then(|i| i.repl_threads).unwrap_or(facts::REPL_THREADS),
        repl_batch: i.and_then(|i| i.repl_batch).unwrap_or(facts::REPL_BATCH),
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
        on_duplicate: if t.on_duplicate.is_empty() { facts::ON_DUPLICATE } else { t.on_duplicate.as_str() },
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
    digest_of(v)
}

/// [`digest`] of the JSON text of any serializable value, streamed into the hash: the same digest as of its
/// `Value` form (serde_json writes a struct's fields and a map's keys in the order its `Value` keeps), without
/// building that form (planning 10,000 tasks digests every live task).
pub fn digest_of<T: Serialize + ?Sized>(v: &T) -> String {
    use sha2::{Digest, Sha256};
    struct Hashing(Sha256);
    impl std::io::Write for Hashing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut h = Hashing(Sha256::new());
    // Writing into a hash cannot fail, and serializing these types has no error case.
    let _ = serde_json::to_writer(&mut h, v);
    let d = h.0.finalize();
    let mut hex = String::with_capacity(7 + 64);
    hex.push_str("sha256:");
    for b in d {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 15)]));
    }
    hex
}
