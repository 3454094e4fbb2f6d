//! Wire types of DM-master's `/api/v1`, shaped as the real server sends and accepts them
//! (`docs/dm-behaviour.md`), not as the public docs page shows them.
//!
//! The client and the simulator share these types and nothing else. Parsing is tolerant where the server is
//! loose: every optional field may be absent or null, lists come in any order, and stage/unit strings the spec
//! does not list are kept as `Unknown(..)` instead of failing the whole response.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::secret::Secret;

/// What `GET /sources` returns for a source password, always (docs/dm-behaviour.md §3).
pub const MASKED_PASSWORD: &str = "******";

/// TLS material of a source or a target. On GET of a source the three contents come back empty.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Security {
    #[serde(default)]
    pub ssl_ca_content: String,
    #[serde(default)]
    pub ssl_cert_content: String,
    /// A private key: never printed.
    #[serde(default)]
    pub ssl_key_content: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_allowed_cn: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Purge {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remain_space: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RelayConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_relay: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_binlog_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_binlog_gtid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_dir: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RelayStatus {
    #[serde(default)]
    pub master_binlog: String,
    #[serde(default)]
    pub master_binlog_gtid: String,
    #[serde(default)]
    pub relay_dir: String,
    #[serde(default)]
    pub relay_binlog_gtid: String,
    #[serde(default)]
    pub relay_catch_up_master: bool,
    #[serde(default)]
    pub stage: Stage,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SourceStatus {
    pub source_name: String,
    #[serde(default)]
    pub worker_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_status: Option<RelayStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_msg: Option<String>,
}

/// `Source`. `password` is `"******"` on every GET; a PUT without it keeps the stored one.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Source {
    pub source_name: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    #[serde(default)]
    pub enable_gtid: bool,
    #[serde(default)]
    pub enable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flavor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<Security>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge: Option<Purge>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_config: Option<RelayConfig>,
    /// Read-only, present with `with_status=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_list: Option<Vec<SourceStatus>>,
    /// Read-only, present with `with_status=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_name_list: Option<Vec<String>>,
}

/// `POST /sources` body: the wrapper is required (the docs page's flat body is refused).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateSourceRequest {
    pub source: Source,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_name: Option<String>,
}

/// `PUT /sources/{name}` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateSourceRequest {
    pub source: Source,
}

/// `{"total": n, "data": [...]}` list envelope, as DM sends it: both fields always present, `total` equal to the
/// number of items. Both are optional here only so that [`ListResponse::into_items`] can say what is wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"), expecting = "an object {\"total\": n, \"data\": [...]}")]
pub struct ListResponse<T> {
    #[serde(default)]
    pub total: Option<i64>,
    #[serde(default)]
    pub data: Option<Vec<T>>,
}

impl<T> ListResponse<T> {
    /// The items, or what is wrong with the envelope. `null_is_empty`: a `null` (or absent) `data` means no items
    /// (only for the one list DM can send as `null`); otherwise it is an error, never an empty list.
    pub fn into_items(self, null_is_empty: bool) -> Result<Vec<T>, String> {
        let data = match self.data {
            Some(d) => d,
            None if null_is_empty => Vec::new(),
            None => return Err("`data` is null or missing, where DM sends an array".into()),
        };
        match self.total {
            Some(t) if t == data.len() as i64 => Ok(data),
            Some(t) => Err(format!("`total` is {t} but `data` holds {} items", data.len())),
            None if null_is_empty => Ok(data),
            None => Err("`total` is missing".into()),
        }
    }
}

fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WorkerNameRequest {
    pub worker_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EnableRelayRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_name_list: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_binlog_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_binlog_gtid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_dir: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DisableRelayRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_name_list: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PurgeRelayRequest {
    pub relay_binlog_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_dir: Option<String>,
}

// ---------------------------------------------------------------------------------------------------------------
// Tasks

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TargetSession {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreign_key_checks: Option<String>,
}

/// `TaskTargetDataBase`. The password is stored and returned in plain text by DM, but dm-apply never prints it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TargetConfig {
    pub host: String,
    pub port: u16,
    pub user: String,
    #[serde(default)]
    pub password: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<Security>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<TargetSession>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BinlogFilterRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_event: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_sql: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct TableRuleSource {
    pub source_name: String,
    pub schema: String,
    #[serde(default)]
    pub table: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct TableRuleTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TableMigrateRule {
    pub source: TableRuleSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TableRuleTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binlog_filter_rule: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FullMigrateConf {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_threads: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_threads: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sorting_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_quota: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analyze: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_concurrency: Option<i64>,
    #[serde(rename = "compress-kv-pairs", default, skip_serializing_if = "Option::is_none")]
    pub compress_kv_pairs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pd_addr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<Security>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_duplicate_logical: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_duplicate_physical: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IncrMigrateConf {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repl_threads: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repl_batch: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safe_mode: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TaskSourceConf {
    pub source_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binlog_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binlog_pos: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binlog_gtid: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TaskSourceConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_migrate_conf: Option<FullMigrateConf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incr_migrate_conf: Option<IncrMigrateConf>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub source_conf: Vec<TaskSourceConf>,
}

/// `Task`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Task {
    pub name: String,
    pub task_mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict_optimistic_shard_mode: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_schema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default = "default_enhance_online_schema_change")]
    pub enhance_online_schema_change: bool,
    #[serde(default)]
    pub on_duplicate: String,
    pub target_config: TargetConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binlog_filter_rule: Option<BTreeMap<String, BinlogFilterRule>>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub table_migrate_rule: Vec<TableMigrateRule>,
    pub source_config: TaskSourceConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_checking_items: Option<Vec<String>>,
    /// Read-only, present with `with_status=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_list: Option<Vec<SubTaskStatus>>,
}

/// A task read without the field: the spec's default (docs/dm-behaviour.md R2.11).
fn default_enhance_online_schema_change() -> bool {
    super::facts::ENHANCE_ONLINE_SCHEMA_CHANGE
}

/// `POST /tasks` and `PUT /tasks/{name}` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRequest {
    pub task: Task,
}

/// `POST /tasks` (201) and `PUT /tasks/{name}` (200) answer on v6.1+: `{task, check_result}`.
/// v6.0 answered a bare `Task`; the client accepts both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperateTaskResponse {
    pub task: Task,
    #[serde(default)]
    pub check_result: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StartTaskRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_meta: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name_list: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safe_mode_time_duration: Option<String>,
}

impl StartTaskRequest {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StopTaskRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name_list: Option<Vec<String>>,
}

impl StopTaskRequest {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Observed stage of a subtask or relay. The server emits `pb.Stage` names verbatim, including ones the spec does
/// not list (`New`, `Pausing`, `InvalidStage`, `""` when the worker query failed): those are kept as `Unknown`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Stage {
    Stopped,
    Running,
    Paused,
    Finished,
    #[default]
    Empty,
    Unknown(String),
}

impl Stage {
    pub fn as_str(&self) -> &str {
        match self {
            Stage::Stopped => "Stopped",
            Stage::Running => "Running",
            Stage::Paused => "Paused",
            Stage::Finished => "Finished",
            Stage::Empty => "",
            Stage::Unknown(s) => s,
        }
    }

    pub fn parse(s: &str) -> Stage {
        match s {
            "Stopped" => Stage::Stopped,
            "Running" => Stage::Running,
            "Paused" => Stage::Paused,
            "Finished" => Stage::Finished,
            "" => Stage::Empty,
            other => Stage::Unknown(other.to_string()),
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Stage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Stage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Stage::parse(&Option::<String>::deserialize(d)?.unwrap_or_default()))
    }
}

/// Processing unit of a subtask: `Check|Dump|Load|Sync`, capitalised; anything else is kept as `Unknown`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Unit {
    Check,
    Dump,
    Load,
    Sync,
    #[default]
    Invalid,
    Unknown(String),
}

impl Unit {
    pub fn as_str(&self) -> &str {
        match self {
            Unit::Check => "Check",
            Unit::Dump => "Dump",
            Unit::Load => "Load",
            Unit::Sync => "Sync",
            Unit::Invalid => "InvalidUnit",
            Unit::Unknown(s) => s,
        }
    }

    pub fn parse(s: &str) -> Unit {
        match s {
            "Check" => Unit::Check,
            "Dump" => Unit::Dump,
            "Load" => Unit::Load,
            "Sync" => Unit::Sync,
            "InvalidUnit" | "" => Unit::Invalid,
            other => Unit::Unknown(other.to_string()),
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Unit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Unit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Unit::parse(&Option::<String>::deserialize(d)?.unwrap_or_default()))
    }
}

/// The part of a subtask's `sync_status` dm-apply acts on (docs/dm-behaviour.md R8.11): where the syncer has got to
/// (a replace resumes from there) and the shard DDL coordination it waits on (no stop or update then). Typed, so a
/// large or hostile status list is never built as JSON trees; the other fields are skipped.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SyncStatus {
    /// The last flushed checkpoint, `(file, pos)`; with relay the file may carry a `|NNNNNN.seq` suffix.
    #[serde(default)]
    pub syncer_binlog: String,
    #[serde(default)]
    pub syncer_binlog_gtid: String,
    #[serde(default)]
    pub master_binlog: String,
    /// `null` when empty.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub blocking_ddls: Vec<String>,
    /// `null` when empty; pessimistic shard mode only.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub unresolved_groups: Vec<ShardingGroup>,
}

/// One shard group waiting for DDL coordination (`sync_status.unresolved_groups[]`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ShardingGroup {
    #[serde(default)]
    pub target: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub ddl_list: Vec<String>,
    #[serde(default)]
    pub first_location: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub synced: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub unsynced: Vec<String>,
}

/// `SubTaskStatus`. Of the per-unit status objects only `sync_status` is read, typed ([`SyncStatus`]); the dump and
/// load ones are skipped.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SubTaskStatus {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub source_name: String,
    #[serde(default)]
    pub worker_name: String,
    #[serde(default)]
    pub stage: Stage,
    #[serde(default)]
    pub unit: Unit,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unresolved_ddl_lock_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_msg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_status: Option<SyncStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TaskMigrateTarget {
    pub source_schema: String,
    pub source_table: String,
    pub target_schema: String,
    pub target_table: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TableStructure {
    #[serde(default)]
    pub schema_name: String,
    #[serde(default)]
    pub table_name: String,
    #[serde(default)]
    pub schema_create_sql: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OperateTableStructureRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql_content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ConverterTaskRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Task>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_config_file: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ConverterTaskResponse {
    pub task: Task,
    #[serde(default)]
    pub task_config_file: String,
}

// ---------------------------------------------------------------------------------------------------------------
// Cluster

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClusterMaster {
    pub name: String,
    #[serde(default)]
    pub alive: bool,
    #[serde(default)]
    pub leader: bool,
    #[serde(default)]
    pub addr: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClusterWorker {
    pub name: String,
    #[serde(default)]
    pub addr: String,
    /// `offline|free|bound|relay`.
    #[serde(default)]
    pub bound_stage: String,
    #[serde(default)]
    pub bound_source_name: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ClusterInfo {
    #[serde(default)]
    pub cluster_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<serde_json::Value>,
}

/// Body of the `{error_msg, error_code}` error shape (handler errors, always HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ErrorWithMessage {
    pub error_msg: String,
    pub error_code: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_stage_and_unit_are_kept() {
        let s: SubTaskStatus = serde_json::from_str(
            r#"{"name":"t","source_name":"s","worker_name":"w","stage":"Pausing","unit":"Relay"}"#,
        )
        .unwrap();
        assert_eq!(s.stage, Stage::Unknown("Pausing".into()));
        assert_eq!(s.unit, Unit::Unknown("Relay".into()));
        let s: SubTaskStatus = serde_json::from_str(r#"{"stage":null,"unit":""}"#).unwrap();
        assert_eq!(s.stage, Stage::Empty);
        assert_eq!(s.unit, Unit::Invalid);
    }

    #[test]
    fn source_tolerates_missing_and_null_fields() {
        let s: Source = serde_json::from_str(
            r#"{"source_name":"a","host":"h","port":3306,"user":"u","password":null,"security":null}"#,
        )
        .unwrap();
        assert!(s.password.is_none() && s.security.is_none() && !s.enable);
    }

    #[test]
    fn list_envelope_must_be_dms() {
        let items =
            |s: &str, null_ok: bool| serde_json::from_str::<ListResponse<String>>(s).unwrap().into_items(null_ok);
        assert_eq!(items(r#"{"total":1,"data":["a"]}"#, false), Ok(vec!["a".to_string()]));
        assert_eq!(items(r#"{"total":0,"data":[]}"#, false), Ok(vec![]));
        assert!(items(r#"{"total":0,"data":null}"#, false).unwrap_err().contains("null"));
        assert!(items(r#"{"total":0}"#, false).is_err());
        assert!(items(r#"{"data":[]}"#, false).unwrap_err().contains("total"));
        assert!(items(r#"{"total":2,"data":["a"]}"#, false).unwrap_err().contains("2"));
        // The source status list of a source whose worker reported nothing.
        assert_eq!(items(r#"{"total":0,"data":null}"#, true), Ok(vec![]));
    }
}
