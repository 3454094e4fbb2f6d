//! Configuration → wire form: the request bodies dm-apply sends, with only the fields this server version applies.

use crate::config::{SecuritySpec, SourceSpec, TaskSpec};
use crate::dm::ServerVersion;
use crate::dm::facts;
use crate::dm::types::{
    BinlogFilterRule, FullMigrateConf, IncrMigrateConf, Purge, RelayConfig, Security, Source, TableMigrateRule,
    TableRuleSource, TableRuleTarget, TargetConfig, TargetSession, Task, TaskSourceConf, TaskSourceConfig,
};

use super::enum_str;

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

/// Fields of a task that this server version cannot apply (HEAD-only fields on older servers): they are not sent,
/// and the plan warns about each.
pub fn unsupported_fields(spec: &TaskSpec, version: &ServerVersion) -> Vec<&'static str> {
    let mut v = vec![];
    if !version.supports_full_migrate_security()
        && spec.source_config.full_migrate_conf.as_ref().is_some_and(|f| f.security.is_some())
    {
        v.push("source_config.full_migrate_conf.security");
    }
    if version.supports_head_task_fields() {
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
        .unwrap_or_else(|| facts::ON_DUPLICATE.to_string())
}

/// The `Task` dm-apply sends for a declared task (target password included: in memory only).
pub fn task_to_wire(spec: &TaskSpec, version: &ServerVersion) -> Task {
    let head = version.supports_head_task_fields();
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
        security: if version.supports_full_migrate_security() {
            f.security.as_ref().map(security_to_wire)
        } else {
            None
        },
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
        meta_schema: Some(spec.meta_schema.clone().unwrap_or_else(|| facts::META_SCHEMA.to_string())),
        timezone: if head { spec.timezone.clone() } else { None },
        enhance_online_schema_change: spec.enhance_online_schema_change.unwrap_or(facts::ENHANCE_ONLINE_SCHEMA_CHANGE),
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
