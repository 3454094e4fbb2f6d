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

/// One YAML file's content. Several files merge into one [`Desired`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "dm-apply configuration file")]
pub struct ConfigFile {
    /// Upstream MySQL/MariaDB data sources managed by this repository.
    #[serde(default)]
    pub sources: Vec<SourceSpec>,
    /// Replication tasks managed by this repository.
    #[serde(default)]
    pub tasks: Vec<TaskSpec>,
    /// Sources managed outside this repository that tasks here may use. They are never created, changed or deleted.
    #[serde(default)]
    pub external_sources: Vec<String>,
}

/// Per-resource lifecycle settings (dm-apply's own, not sent to DM).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Lifecycle {
    /// Refuse any plan that would delete or replace this resource.
    #[serde(default)]
    pub prevent_destroy: bool,
    /// Field paths (e.g. `source_config.incr_migrate_conf.repl_threads`) whose differences are ignored.
    #[serde(default)]
    pub ignore_changes: Vec<String>,
    /// Allow a replacement that restarts this task's migration from scratch (new full dump/load).
    #[serde(default)]
    pub allow_restart: bool,
}

/// TLS material. Contents, not file paths (DM stores the contents).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecuritySpec {
    pub ssl_ca_content: String,
    pub ssl_cert_content: String,
    /// Private key content: a secret; prefer `${env:NAME}`.
    pub ssl_key_content: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_allowed_cn: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PurgeSpec {
    /// Seconds between relay-log expiry checks (DM default 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    /// Hours after which relay logs expire (DM default 0 = never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
    /// Minimum free disk space in GB (DM default 15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remain_space: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RelayConfigSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_relay: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_binlog_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_binlog_gtid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_dir: Option<String>,
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
    pub source_name: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Upstream password. Write-only in DM (reads return `******`); prefer `${env:NAME}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// Pull binlogs by GTID (needs `GTID_MODE=ON` upstream). Default false.
    #[serde(default)]
    pub enable_gtid: bool,
    /// Whether the source is enabled. Default true (dm-apply always sends it explicitly).
    #[serde(default = "default_true")]
    pub enable: bool,
    /// Detected by DM when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flavor: Option<Flavor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SecuritySpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge: Option<PurgeSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_config: Option<RelayConfigSpec>,
    #[serde(default, skip_serializing_if = "is_default")]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaskMode {
    Full,
    Incremental,
    All,
    Dump,
    Load,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ShardMode {
    Pessimistic,
    Optimistic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnDuplicate {
    Replace,
    Error,
    Ignore,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetSessionSpec {
    /// `"0"` or `"1"`. Cannot be changed by a task update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreign_key_checks: Option<ForeignKeyChecks>,
}

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
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Downstream password (may be empty); prefer `${env:NAME}`.
    #[serde(default)]
    pub password: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SecuritySpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<TargetSessionSpec>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BinlogFilterRuleSpec {
    /// Binlog event types to ignore, e.g. `all dml`, `drop table`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_event: Option<Vec<String>>,
    /// SQL regular expressions to ignore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_sql: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableRuleSourceSpec {
    /// One of the task's sources.
    pub source_name: String,
    /// Schema pattern (`*`, `?` wildcards).
    pub schema: String,
    /// Table pattern; `""` (default) selects the whole schema.
    #[serde(default)]
    pub table: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableRuleTargetSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableMigrateRuleSpec {
    pub source: TableRuleSourceSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TableRuleTargetSpec>,
    /// Names of rules defined in the task's `binlog_filter_rule`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binlog_filter_rule: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ImportMode {
    Logical,
    Physical,
    ImportInto,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Consistency {
    Auto,
    None,
    Flush,
    Lock,
    Snapshot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckLevel {
    Required,
    Optional,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnDuplicatePhysical {
    None,
    Manual,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FullMigrateConfSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_threads: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_threads: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<Consistency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_mode: Option<ImportMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sorting_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_quota: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<CheckLevel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analyze: Option<CheckLevel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_concurrency: Option<i64>,
    #[serde(rename = "compress-kv-pairs", default, skip_serializing_if = "Option::is_none")]
    pub compress_kv_pairs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pd_addr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SecuritySpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_duplicate_logical: Option<OnDuplicate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_duplicate_physical: Option<OnDuplicatePhysical>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncrMigrateConfSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repl_threads: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repl_batch: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safe_mode: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskSourceConfSpec {
    pub source_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binlog_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binlog_pos: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binlog_gtid: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskSourceConfigSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_migrate_conf: Option<FullMigrateConfSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incr_migrate_conf: Option<IncrMigrateConfSpec>,
    pub source_conf: Vec<TaskSourceConfSpec>,
}

/// A DM replication task. Mirrors DM's OpenAPI `Task`, plus `stage` and `lifecycle`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    pub name: String,
    pub task_mode: TaskMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_mode: Option<ShardMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict_optimistic_shard_mode: Option<bool>,
    /// Downstream schema for checkpoints. dm-apply sends `dm_meta` when absent, on every DM version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_schema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enhance_online_schema_change: Option<bool>,
    /// How the full import resolves duplicate rows. Default `replace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_duplicate: Option<OnDuplicate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_checking_items: Option<Vec<String>>,
    pub target_config: TargetConfigSpec,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub binlog_filter_rule: BTreeMap<String, BinlogFilterRuleSpec>,
    #[serde(default)]
    pub table_migrate_rule: Vec<TableMigrateRuleSpec>,
    pub source_config: TaskSourceConfigSpec,
    /// Runtime state apply converges to: `running` (default) or `stopped`.
    #[serde(default)]
    pub stage: DesiredStage,
    #[serde(default, skip_serializing_if = "is_default")]
    pub lifecycle: Lifecycle,
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
