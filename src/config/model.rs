//! The desired-state model: what a team writes in git.
//!
//! Field names mirror DM's OpenAPI `Source` and `Task` objects so that users can copy from DM's docs. dm-apply's own
//! fields are few: `stage` and `lifecycle` on resources, and top-level `external_sources`. Read-only server fields
//! (`status_list`, `task_name_list`) are not part of the model, and unknown keys are refused (`deny_unknown_fields`),
//! which the generated JSON Schema turns into `additionalProperties: false`.
//!
//! These types are plain data (no spans): the loader keeps a JSON-pointer → source-span index beside them, so every
//! diagnostic can point at `file:line:col` without wrapping each field.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// One YAML file of dm-apply's desired state: DM sources and tasks. Several files merge into one desired state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "dm-apply configuration file")]
pub struct ConfigFile {
    /// Upstream MySQL/MariaDB data sources managed by this repository.
    #[serde(default)]
    #[schemars(example = serde_json::json!([{"source_name": "mysql-orders", "host": "mysql-orders.db.internal", "port": 3306, "user": "dm_sync", "password": "${env:DM_SOURCE_PASSWORD}"}]))]
    pub sources: Vec<SourceSpec>,
    /// Replication tasks managed by this repository.
    #[serde(default)]
    #[schemars(example = serde_json::json!([{"name": "orders-incremental", "task_mode": "incremental", "target_config": {"host": "tidb.db.internal", "port": 4000, "user": "dm_writer", "password": "${env:DM_TARGET_PASSWORD}"}, "table_migrate_rule": [{"source": {"source_name": "mysql-orders", "schema": "orders"}}], "source_config": {"source_conf": [{"source_name": "mysql-orders", "binlog_name": "mysql-bin.000042", "binlog_pos": 4}]}}]))]
    pub tasks: Vec<TaskSpec>,
    /// Sources managed outside this repository that tasks here may use. They are never created, changed or deleted.
    #[serde(default)]
    #[schemars(inner(length(min = 1, max = 32)))]
    #[schemars(example = vec!["mysql-legacy-01"])]
    pub external_sources: Vec<String>,
}

/// Per-resource lifecycle settings (dm-apply's own, not sent to DM).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Lifecycle {
    /// Refuse any plan that would delete or replace this resource.
    #[serde(default)]
    #[schemars(example = true)]
    pub prevent_destroy: bool,
    /// Field paths (e.g. `source_config.incr_migrate_conf.repl_threads`) whose differences are ignored.
    #[serde(default)]
    #[schemars(example = vec!["source_config.incr_migrate_conf.repl_threads", "password"])]
    pub ignore_changes: Vec<String>,
    /// Allow a replacement that restarts this task's migration from scratch (new full dump/load), and a source update
    /// that stops the task in its dump (which then starts over).
    #[serde(default)]
    #[schemars(example = false)]
    pub allow_restart: bool,
}

/// TLS material. Contents, not file paths (DM stores the contents).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecuritySpec {
    /// PEM content of the CA certificate.
    #[schemars(example = &"${env:DM_SOURCE_CA}")]
    pub ssl_ca_content: String,
    /// PEM content of the client certificate.
    #[schemars(example = &"${env:DM_SOURCE_CERT}")]
    pub ssl_cert_content: String,
    /// Private key content: a secret; prefer `${env:NAME}`.
    #[schemars(example = &"${env:DM_SOURCE_KEY}")]
    pub ssl_key_content: Secret,
    /// Allowed common names of the peer certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = vec!["dm-worker"])]
    pub cert_allowed_cn: Option<Vec<String>>,
}

/// Relay-log purge settings of a source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PurgeSpec {
    /// Seconds between relay-log expiry checks (DM default 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = 3600)]
    pub interval: Option<i64>,
    /// Hours after which relay logs expire (DM default 0 = never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = 72)]
    pub expires: Option<i64>,
    /// Minimum free disk space in GB (DM default 15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = 15)]
    pub remain_space: Option<i64>,
}

/// Relay-log settings of a source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RelayConfigSpec {
    /// Do not set `true`: DM-master persists a new source, then refuses (a known server bug), and relay started
    /// this way cannot be purged. Declare `relay: {enabled: true}` on the source instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = false)]
    pub enable_relay: Option<bool>,
    /// Binlog file to start relaying from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"mysql-bin.000001")]
    pub relay_binlog_name: Option<String>,
    /// GTID set to start relaying from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"e9a1fc22-ec08-11e9-b2ac-0242ac110003:1-7849")]
    pub relay_binlog_gtid: Option<String>,
    /// Directory of the relay log on the DM-worker (DM's default `relay-dir`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"./relay_log")]
    pub relay_dir: Option<String>,
}

/// Relay managed by dm-apply: DM-workers pulling the source's binlog to local disk (see docs/config-format.md,
/// "Relay and worker binding"). Absent: relay is not managed (whatever runs is left alone and is no difference).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RelaySpec {
    /// Whether relay runs for the source. `false` stops it on every worker.
    #[schemars(example = true)]
    pub enabled: bool,
    /// DM-workers (by name) that relay the source. Absent: the worker the source is bound to. A worker can relay
    /// one source only, and only a free worker or the source's own bound worker can relay it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1), inner(length(min = 1)))]
    #[schemars(example = vec!["dm-worker-1", "dm-worker-2"])]
    pub workers: Option<Vec<String>>,
}

/// `flavor` of an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    Mysql,
    Mariadb,
}

/// A DM data source (an upstream MySQL/MariaDB). Mirrors DM's OpenAPI `Source`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// Unique name, 1-32 characters.
    #[schemars(length(min = 1, max = 32))]
    #[schemars(example = &"mysql-orders")]
    pub source_name: String,
    /// Upstream host name or IP address.
    #[schemars(example = &"mysql-orders.db.internal")]
    pub host: String,
    /// Upstream port, 1-65535 (MySQL's default is 3306).
    #[schemars(range(min = 1))]
    #[schemars(example = 3306)]
    pub port: u16,
    /// Upstream user (needs replication privileges).
    #[schemars(example = &"dm_sync")]
    pub user: String,
    /// Upstream password. Write-only in DM (reads return `******`); prefer `${env:NAME}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"${env:DM_SOURCE_PASSWORD}")]
    pub password: Option<Secret>,
    /// Pull binlogs by GTID (needs `GTID_MODE=ON` upstream). Default false.
    #[serde(default)]
    #[schemars(example = false)]
    pub enable_gtid: bool,
    /// Whether the source is enabled. Default true (dm-apply always sends it explicitly).
    #[serde(default = "default_true")]
    #[schemars(example = true)]
    pub enable: bool,
    /// `mysql` or `mariadb`; detected by DM when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"mysql")]
    pub flavor: Option<Flavor>,
    /// TLS to the upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = serde_json::json!({"ssl_ca_content": "${env:DM_SOURCE_CA}", "ssl_cert_content": "${env:DM_SOURCE_CERT}", "ssl_key_content": "${env:DM_SOURCE_KEY}"}))]
    pub security: Option<SecuritySpec>,
    /// Relay-log purge settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = serde_json::json!({"interval": 3600, "expires": 72, "remain_space": 15}))]
    pub purge: Option<PurgeSpec>,
    /// Relay-log settings (start point, directory) written with the source. Run relay with `relay`, not with
    /// `relay_config.enable_relay`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = serde_json::json!({"relay_binlog_name": "mysql-bin.000042", "relay_dir": "./relay_log"}))]
    pub relay_config: Option<RelayConfigSpec>,
    /// Whether relay runs for the source and on which DM-workers (dm-apply starts and stops it). Absent: relay is
    /// not managed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = serde_json::json!({"enabled": true, "workers": ["dm-worker-1", "dm-worker-2"]}))]
    pub relay: Option<RelaySpec>,
    /// The DM-worker the source is bound to (the one that runs its tasks). Set at create time, moved with DM's
    /// transfer otherwise (tasks pause and resume around it). Absent: DM picks a free worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    #[schemars(example = &"dm-worker-1")]
    pub worker_name: Option<String>,
    /// Write-only version (never sent to DM): dm-apply re-sends the password and TLS contents when this number
    /// changes, and keeps no fingerprint of them. Without it, dm-apply detects changes through salted fingerprints
    /// in its state record (see docs/plan.md, "Passwords and other write-only values").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = 1)]
    pub write_only_version: Option<u64>,
    /// dm-apply's own lifecycle settings (never sent to DM).
    #[serde(default, skip_serializing_if = "is_default")]
    #[schemars(example = serde_json::json!({"prevent_destroy": true, "ignore_changes": ["password"]}))]
    pub lifecycle: Lifecycle,
}

/// The runtime state apply converges a task to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DesiredStage {
    #[default]
    Running,
    Stopped,
}

/// What a task migrates: `full` (dump + load), `incremental` (binlog replication), `all` (both), `dump` or `load`
/// (the last two only on DM v9.0.0-beta.1 / v26.3 and later).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaskMode {
    Full,
    Incremental,
    All,
    Dump,
    Load,
}

/// How DDL of merged shard tables is coordinated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ShardMode {
    Pessimistic,
    Optimistic,
}

/// How duplicate rows are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnDuplicate {
    Replace,
    Error,
    Ignore,
}

/// Session settings on the downstream (DM HEAD only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetSessionSpec {
    /// `"0"` or `"1"`. Cannot be changed by a task update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"0")]
    pub foreign_key_checks: Option<ForeignKeyChecks>,
}

/// `"0"` (off) or `"1"` (on). Write it quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ForeignKeyChecks {
    #[serde(rename = "0")]
    Off,
    #[serde(rename = "1")]
    On,
}

/// The downstream TiDB.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetConfigSpec {
    /// TiDB host name or IP address.
    #[schemars(example = &"tidb.db.internal")]
    pub host: String,
    /// TiDB port, 1-65535 (TiDB's default is 4000).
    #[schemars(range(min = 1))]
    #[schemars(example = 4000)]
    pub port: u16,
    /// TiDB user.
    #[schemars(example = &"dm_writer")]
    pub user: String,
    /// Downstream password (may be empty); prefer `${env:NAME}`.
    #[serde(default)]
    #[schemars(example = &"${env:DM_TARGET_PASSWORD}")]
    pub password: Secret,
    /// TLS to TiDB. DM returns these contents in plain text on reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = serde_json::json!({"ssl_ca_content": "${env:TIDB_CA}", "ssl_cert_content": "${env:TIDB_CERT}", "ssl_key_content": "${env:TIDB_KEY}"}))]
    pub security: Option<SecuritySpec>,
    /// Session variables (only `foreign_key_checks`; DM HEAD only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = serde_json::json!({"foreign_key_checks": "0"}))]
    pub session: Option<TargetSessionSpec>,
}

/// A binlog filter: matching events or statements are ignored (DM's action is always Ignore).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BinlogFilterRuleSpec {
    /// Binlog event types to ignore, e.g. `all dml`, `drop table`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = vec!["drop database", "truncate table"])]
    pub ignore_event: Option<Vec<String>>,
    /// SQL regular expressions to ignore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = vec!["^DROP\\s+TABLE"])]
    pub ignore_sql: Option<Vec<String>>,
}

/// The upstream tables a rule selects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableRuleSourceSpec {
    /// One of the task's sources.
    #[schemars(example = &"mysql-orders")]
    pub source_name: String,
    /// Schema pattern (`*`, `?` wildcards).
    #[schemars(example = &"orders_*")]
    pub schema: String,
    /// Table pattern; `""` (default) selects the whole schema.
    #[serde(default)]
    #[schemars(example = &"order_*")]
    pub table: String,
}

/// Where selected tables go downstream (a route). Absent: same names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableRuleTargetSpec {
    /// Downstream schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"orders")]
    pub schema: Option<String>,
    /// Downstream table (merges sharded tables into one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"order")]
    pub table: Option<String>,
}

/// Which upstream tables a task migrates, where to, and with which binlog filters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableMigrateRuleSpec {
    /// Upstream tables selected by this rule.
    #[schemars(example = serde_json::json!({"source_name": "mysql-shard-01", "schema": "user_db_*", "table": "user_*"}))]
    pub source: TableRuleSourceSpec,
    /// Route to other downstream names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = serde_json::json!({"schema": "users", "table": "user"}))]
    pub target: Option<TableRuleTargetSpec>,
    /// Names of rules defined in the task's `binlog_filter_rule`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = vec!["no-destructive-ddl"])]
    pub binlog_filter_rule: Option<Vec<String>>,
}

/// How the full import writes to TiDB. `import-into` needs DM v26.3+.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ImportMode {
    Logical,
    Physical,
    ImportInto,
}

/// Dump consistency (mydumper/dumpling `--consistency`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Consistency {
    Auto,
    None,
    Flush,
    Lock,
    Snapshot,
}

/// Post-import checksum/analyze level (physical import).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckLevel {
    Required,
    Optional,
    Off,
}

/// Duplicate handling of the physical import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnDuplicatePhysical {
    None,
    Manual,
}

/// Settings of the full (dump and load) phase. One set for all sources of the task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FullMigrateConfSpec {
    /// Dump threads (DM default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = 4)]
    pub export_threads: Option<i64>,
    /// Load threads (DM default 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = 16)]
    pub import_threads: Option<i64>,
    /// Where the dump is written (DM default `./dumped_data`); an `s3://`-style URL for `import-into`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"./dumped_data")]
    pub data_dir: Option<String>,
    /// Dump consistency mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"auto")]
    pub consistency: Option<Consistency>,
    /// `logical` (default), `physical` or `import-into`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"logical")]
    pub import_mode: Option<ImportMode>,
    /// Local sort directory of the physical import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"./sort_dir")]
    pub sorting_dir: Option<String>,
    /// Disk quota of the physical import, e.g. `200GiB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"80G")]
    pub disk_quota: Option<String>,
    /// Checksum after a physical import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"required")]
    pub checksum: Option<CheckLevel>,
    /// ANALYZE TABLE after a physical import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"optional")]
    pub analyze: Option<CheckLevel>,
    /// Concurrency of range requests (physical import; DM default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = 0)]
    pub range_concurrency: Option<i64>,
    /// Compression of KV pairs sent to TiKV (physical import), e.g. `gzip`. Note the hyphens in the key.
    #[serde(rename = "compress-kv-pairs", default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"gzip")]
    pub compress_kv_pairs: Option<String>,
    /// PD address for the physical import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"pd.db.internal:2379")]
    pub pd_addr: Option<String>,
    /// TLS to PD/TiDB for the import (all three contents are required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = serde_json::json!({"ssl_ca_content": "${env:TIDB_CA}", "ssl_cert_content": "${env:TIDB_CERT}", "ssl_key_content": "${env:TIDB_KEY}"}))]
    pub security: Option<SecuritySpec>,
    /// Duplicate handling of the logical import (DM default `replace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"replace")]
    pub on_duplicate_logical: Option<OnDuplicate>,
    /// Duplicate handling of the physical import (DM default `none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"none")]
    pub on_duplicate_physical: Option<OnDuplicatePhysical>,
}

/// Settings of the incremental (binlog replication) phase. One set for all sources of the task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncrMigrateConfSpec {
    /// Replication threads (DM default 16). Can be changed on a stopped task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = 16)]
    pub repl_threads: Option<i64>,
    /// Statements per transaction (DM default 100). Can be changed on a stopped task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = 100)]
    pub repl_batch: Option<i64>,
    /// Safe mode (DM HEAD only; cannot be changed by an update).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = false)]
    pub safe_mode: Option<bool>,
}

/// One source of a task, with an optional binlog start position (needed by `incremental` tasks).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskSourceConfSpec {
    /// A source declared under `sources` or listed in `external_sources`.
    #[schemars(example = &"mysql-orders")]
    pub source_name: String,
    /// Binlog file to start from, e.g. `mysql-bin.000042`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"mysql-bin.000042")]
    pub binlog_name: Option<String>,
    /// Position in `binlog_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = 4)]
    pub binlog_pos: Option<i64>,
    /// GTID set to start from (with `enable_gtid` sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"03fc0263-28c7-11e7-a653-6c0b84d59f30:1-7041423")]
    pub binlog_gtid: Option<String>,
}

/// The task's sources and phase settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskSourceConfigSpec {
    /// Full (dump and load) phase settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = serde_json::json!({"export_threads": 4, "import_threads": 16, "data_dir": "./dumped_data"}))]
    pub full_migrate_conf: Option<FullMigrateConfSpec>,
    /// Incremental phase settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = serde_json::json!({"repl_threads": 16, "repl_batch": 100}))]
    pub incr_migrate_conf: Option<IncrMigrateConfSpec>,
    /// The task's sources (at least one, each once).
    #[schemars(example = serde_json::json!([{"source_name": "mysql-orders", "binlog_name": "mysql-bin.000042", "binlog_pos": 4}]))]
    pub source_conf: Vec<TaskSourceConfSpec>,
}

/// A DM replication task. Mirrors DM's OpenAPI `Task`, plus `stage` and `lifecycle`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// Unique task name.
    #[schemars(example = &"orders-incremental")]
    pub name: String,
    /// `full`, `incremental`, `all`, `dump` or `load`.
    #[schemars(example = &"incremental")]
    pub task_mode: TaskMode,
    /// Merge sharded tables: `pessimistic` or `optimistic`. Absent: no sharding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"optimistic")]
    pub shard_mode: Option<ShardMode>,
    /// Stricter optimistic sharding (DM v7.2+); only with `shard_mode: optimistic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = false)]
    pub strict_optimistic_shard_mode: Option<bool>,
    /// Downstream schema for checkpoints. dm-apply sends `dm_meta` when absent, on every DM version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"dm_meta")]
    pub meta_schema: Option<String>,
    /// IANA time zone (DM HEAD only); absent means the downstream's zone. `SYSTEM` and `Local` are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"Asia/Shanghai")]
    pub timezone: Option<String>,
    /// Support gh-ost/pt-osc online schema changes (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = true)]
    pub enhance_online_schema_change: Option<bool>,
    /// How the full import resolves duplicate rows. Default `replace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"replace")]
    pub on_duplicate: Option<OnDuplicate>,
    /// Pre-check items to skip, e.g. `auto_increment_ID`, `all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = vec!["auto_increment_ID"])]
    pub ignore_checking_items: Option<Vec<String>>,
    /// The downstream TiDB.
    #[schemars(example = serde_json::json!({"host": "tidb.db.internal", "port": 4000, "user": "dm_writer", "password": "${env:DM_TARGET_PASSWORD}"}))]
    pub target_config: TargetConfigSpec,
    /// Named binlog filters, referenced by `table_migrate_rule[].binlog_filter_rule`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(example = serde_json::json!({"no-destructive-ddl": {"ignore_event": ["drop database", "drop table"]}}))]
    pub binlog_filter_rule: BTreeMap<String, BinlogFilterRuleSpec>,
    /// Which tables to migrate and where.
    #[serde(default)]
    #[schemars(example = serde_json::json!([{"source": {"source_name": "mysql-orders", "schema": "orders", "table": "*"}, "target": {"schema": "orders"}}]))]
    pub table_migrate_rule: Vec<TableMigrateRuleSpec>,
    /// The task's sources and phase settings.
    #[schemars(example = serde_json::json!({"source_conf": [{"source_name": "mysql-orders"}]}))]
    pub source_config: TaskSourceConfigSpec,
    /// Runtime state apply converges to: `running` (default) or `stopped`.
    #[serde(default)]
    #[schemars(example = &"running")]
    pub stage: DesiredStage,
    /// Write-only version (never sent to DM): dm-apply re-sends the values DM does not return (the write-only
    /// `full_migrate_conf` fields; on DM v8.5 also the target TLS, `import_mode` and `pd_addr`) when this number
    /// changes, which replaces the task, and keeps no fingerprint of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = 1)]
    pub write_only_version: Option<u64>,
    /// dm-apply's own lifecycle settings (never sent to DM).
    #[serde(default, skip_serializing_if = "is_default")]
    #[schemars(example = serde_json::json!({"prevent_destroy": true}))]
    pub lifecycle: Lifecycle,
    /// Former name(s) of this task (dm-apply's own, never sent to DM). When a task of that name exists in DM, apply
    /// moves it: stops it, reads its checkpoint, creates this task at that checkpoint, deletes the old one and
    /// starts this one with safe mode (never both running). When none exists, it is a no-op (with a note), so it
    /// can stay in the configuration for a while.
    #[serde(default, skip_serializing_if = "RenamedFrom::is_empty")]
    #[schemars(example = &"orders-v1")]
    pub renamed_from: RenamedFrom,
}

/// `renamed_from`: one former task name, or a list of them (a task renamed more than once).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenamedFrom(pub Vec<String>);

impl RenamedFrom {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl Serialize for RenamedFrom {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for RenamedFrom {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A visitor rather than `untagged`: serde-saphyr keeps locations only without `untagged`.
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RenamedFrom;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a task name or a list of task names")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RenamedFrom, E> {
                Ok(RenamedFrom(vec![v.to_string()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<RenamedFrom, A::Error> {
                let mut out = vec![];
                while let Some(n) = seq.next_element::<String>()? {
                    out.push(n);
                }
                Ok(RenamedFrom(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for RenamedFrom {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RenamedFrom".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A former task name, or a list of former names.",
            "anyOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "items": {"type": "string", "minLength": 1}}
            ]
        })
    }
}

fn default_true() -> bool {
    true
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// Where a declared resource came from, for diagnostics and plans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// Path as given by the user (relative paths stay relative).
    pub file: String,
    /// 1-based line and column of the resource's first key.
    pub line: usize,
    pub column: usize,
}

/// Every declared resource across all files, after validation and `${env:..}` interpolation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Desired {
    /// By `source_name`, sorted.
    pub sources: BTreeMap<String, (SourceSpec, Origin)>,
    /// By task `name`, sorted.
    pub tasks: BTreeMap<String, (TaskSpec, Origin)>,
    pub external_sources: std::collections::BTreeSet<String>,
}
