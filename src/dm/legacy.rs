//! DM-master's legacy answer about a task's full configuration (docs/dm-behaviour.md §11), read into a small typed
//! structure of exactly the settings DM's OpenAPI task model cannot carry.
//!
//! dm-apply reads `GET /apis/v1alpha1/subtasks/{name}` (GetSubTaskCfg, R11.3): one TOML document per subtask, as DM
//! stores it. It has no side effect. `GET /apis/v1alpha1/tasks/{name}?type=TaskType` (GetCfg, R11.2) would give the
//! same settings as one dmctl YAML with the target password masked, but it clears the TLS contents through a pointer
//! shared with DM-master's in-memory configuration (R11.4): reading it could leave a TLS-configured task without its
//! certificates until DM-master reloads. So dm-apply never calls GetCfg.
//!
//! The subtask answer holds the upstream and downstream passwords and TLS contents in plain text. It is therefore:
//! decoded straight into [`LegacySubtask`], which has no field for any of them (serde skips `from`, `to` and every
//! key it does not name); never logged (the client logs method, path, status and size only); size-checked like every
//! answer; and every error about it names the task, the document's position and line at most, never its text (the
//! TOML parser's own messages quote the offending line, and serde's quote values, so neither is shown).

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, de};

/// Most subtasks accepted in one answer (one per source of the task).
pub const MAX_SUBTASKS: usize = 10_000;

/// The legacy gateway's envelope of `GET /apis/v1alpha1/subtasks/{name}`: `cfgs` holds the TOML documents.
#[derive(Debug, Deserialize)]
pub(crate) struct SubTaskCfgAnswer {
    #[serde(default)]
    pub result: bool,
    #[serde(default)]
    pub msg: Option<String>,
    #[serde(default)]
    pub cfgs: Option<Vec<String>>,
}

/// A TOML scalar read for comparison only: its display form (`"64"`, `0`, `true`), whatever its type.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scalar(pub String);

impl Scalar {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a scalar")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Scalar, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar("(list)".into()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Scalar, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar("(table)".into()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A route rule of a subtask (`router.TableRule`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct LegacyRoute {
    #[serde(rename = "schema-pattern")]
    pub schema: String,
    #[serde(rename = "table-pattern")]
    pub table: String,
    #[serde(rename = "target-schema")]
    pub target_schema: String,
    #[serde(rename = "target-table")]
    pub target_table: String,
    /// Whether the rule extracts the table, schema or source name into a column (regexpr router), which DM's
    /// OpenAPI cannot express.
    #[serde(rename = "extract-table")]
    pub extract_table: Option<IgnoredAny>,
    #[serde(rename = "extract-schema")]
    pub extract_schema: Option<IgnoredAny>,
    #[serde(rename = "extract-source")]
    pub extract_source: Option<IgnoredAny>,
}

impl LegacyRoute {
    pub fn extracts(&self) -> bool {
        self.extract_table.is_some() || self.extract_schema.is_some() || self.extract_source.is_some()
    }
}

/// A binlog event filter rule of a subtask (`bf.BinlogEventRule`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct LegacyFilter {
    #[serde(rename = "schema-pattern")]
    pub schema: String,
    #[serde(rename = "table-pattern")]
    pub table: String,
    pub events: Vec<String>,
    #[serde(rename = "sql-pattern")]
    pub sql: Vec<String>,
    /// `Do`, `Ignore` or `Error`.
    pub action: String,
}

/// An expression filter of a subtask; only where it applies is kept (its expressions are shown to nobody).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct LegacyExprFilter {
    pub schema: String,
    pub table: String,
}

/// A table of a block-allow list.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct LegacyTable {
    #[serde(rename = "db-name")]
    pub schema: String,
    #[serde(rename = "tbl-name")]
    pub table: String,
}

/// A block-allow list of a subtask (`filter.Rules`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct LegacyAllowList {
    #[serde(rename = "do-dbs")]
    pub do_dbs: Vec<String>,
    #[serde(rename = "do-tables")]
    pub do_tables: Vec<LegacyTable>,
    #[serde(rename = "ignore-dbs")]
    pub ignore_dbs: Vec<String>,
    #[serde(rename = "ignore-tables")]
    pub ignore_tables: Vec<LegacyTable>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct LegacyValidator {
    pub mode: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct LegacyExperimental {
    #[serde(rename = "async-checkpoint-flush")]
    pub async_checkpoint_flush: bool,
}

/// One subtask's configuration (`SubTaskConfig`), reduced to what dm-apply compares with DM's OpenAPI model.
/// Deliberately without `from` and `to`: the connection settings and secrets are never decoded.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct LegacySubtask {
    pub name: String,
    #[serde(rename = "source-id")]
    pub source: String,
    pub mode: String,
    #[serde(rename = "case-sensitive")]
    pub case_sensitive: bool,
    /// Empty for tasks created through the OpenAPI (which never sets it); `loose` or `strict` for dmctl ones.
    #[serde(rename = "collation_compatible")]
    pub collation: String,
    /// Deprecated; dmctl tasks carry DM's defaults (1 and 10), OpenAPI ones zeros.
    #[serde(rename = "heartbeat-update-interval")]
    pub heartbeat_update: i64,
    #[serde(rename = "heartbeat-report-interval")]
    pub heartbeat_report: i64,
    /// `true` by default for dmctl tasks; the OpenAPI never sets it.
    #[serde(rename = "clean-dump-file")]
    pub clean_dump_file: bool,
    pub timezone: String,
    #[serde(rename = "shadow-table-rules")]
    pub shadow_rules: Vec<String>,
    #[serde(rename = "trash-table-rules")]
    pub trash_rules: Vec<String>,
    pub experimental: LegacyExperimental,
    #[serde(rename = "route-rules")]
    pub routes: Vec<LegacyRoute>,
    #[serde(rename = "filter-rules")]
    pub filters: Vec<LegacyFilter>,
    /// Column mappings: refused by DM since v6.6, counted in case a task from before is still stored.
    #[serde(rename = "mapping-rule", deserialize_with = "count")]
    pub column_mappings: usize,
    #[serde(rename = "expression-filter")]
    pub expr_filters: Vec<LegacyExprFilter>,
    #[serde(rename = "block-allow-list")]
    pub allow_list: Option<LegacyAllowList>,
    /// The deprecated name of the same list (used when `block-allow-list` is absent).
    #[serde(rename = "black-white-list")]
    pub black_white_list: Option<LegacyAllowList>,
    // MydumperConfig (inlined in the TOML)
    pub threads: Option<Scalar>,
    #[serde(rename = "chunk-filesize")]
    pub chunk_filesize: Option<Scalar>,
    #[serde(rename = "statement-size")]
    pub statement_size: Option<Scalar>,
    pub rows: Option<Scalar>,
    #[serde(rename = "where")]
    pub where_: Option<Scalar>,
    #[serde(rename = "skip-tz-utc")]
    pub skip_tz_utc: Option<Scalar>,
    #[serde(rename = "extra-args")]
    pub extra_args: Option<Scalar>,
    // LoaderConfig
    #[serde(rename = "on-duplicate-physical")]
    pub on_duplicate_physical: Option<Scalar>,
    #[serde(rename = "disk-quota-physical")]
    pub disk_quota: Option<Scalar>,
    #[serde(rename = "checksum-physical")]
    pub checksum: Option<Scalar>,
    pub analyze: Option<Scalar>,
    #[serde(rename = "range-concurrency")]
    pub range_concurrency: Option<Scalar>,
    #[serde(rename = "compress-kv-pairs")]
    pub compress_kv_pairs: Option<Scalar>,
    // SyncerConfig
    #[serde(rename = "queue-size")]
    pub queue_size: Option<Scalar>,
    #[serde(rename = "checkpoint-flush-interval")]
    pub checkpoint_flush_interval: Option<Scalar>,
    pub compact: Option<Scalar>,
    #[serde(rename = "multiple-rows")]
    pub multiple_rows: Option<Scalar>,
    #[serde(rename = "safe-mode")]
    pub safe_mode: Option<Scalar>,
    #[serde(rename = "safe-mode-duration")]
    pub safe_mode_duration: Option<Scalar>,
    #[serde(rename = "ValidatorCfg")]
    pub validator: LegacyValidator,
}

impl LegacySubtask {
    /// The block-allow list DM applies (`block-allow-list`, else the deprecated `black-white-list`).
    pub fn effective_allow_list(&self) -> Option<&LegacyAllowList> {
        self.allow_list.as_ref().or(self.black_white_list.as_ref())
    }
}

/// The number of items of a list, without building them.
fn count<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = usize;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<usize, A::Error> {
            let mut n = 0;
            while a.next_element::<IgnoredAny>()?.is_some() {
                n += 1;
            }
            Ok(n)
        }
    }
    d.deserialize_seq(V)
}

/// Why one subtask document could not be read. Never holds any of its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseProblem {
    /// 1-based position of the document in the answer.
    pub document: usize,
    /// 1-based line where the TOML parser stopped, when it says.
    pub line: Option<usize>,
}

impl std::fmt::Display for ParseProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "subtask document {} is not a subtask configuration DM writes", self.document)?;
        if let Some(l) = self.line {
            write!(f, " (TOML parsing stopped at its line {l})")?;
        }
        Ok(())
    }
}

/// Read one subtask document. The document's text is dropped by the caller right after; the error carries positions
/// only.
pub fn parse_subtask(document: usize, text: &str) -> Result<LegacySubtask, ParseProblem> {
    toml::from_str::<LegacySubtask>(text).map_err(|e| ParseProblem {
        document,
        line: e.span().map(|s| text.get(..s.start).map(|t| t.matches('\n').count() + 1).unwrap_or(1)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"is-sharding = false
collation_compatible = "loose"
name = "legacy"
mode = "incremental"
source-id = "a"
heartbeat-update-interval = 1
heartbeat-report-interval = 10
timezone = ""
mapping-rule = []
threads = 4
chunk-filesize = "64"
rows = 0
disk-quota-physical = 0
worker-count = 8
compact = true
safe-mode-duration = "60s"
clean-dump-file = true

[from]
host = "a.db"
password = "upstream-secret"

[to]
host = "tidb"
password = "downstream-secret"

[to.security]
ssl-key-bytes = [1, 2, 3]

[[route-rules]]
schema-pattern = "shop"
table-pattern = "*"
target-schema = "dst"
target-table = ""

[[filter-rules]]
schema-pattern = "shop"
table-pattern = ""
events = ["insert"]
action = "Do"

[[expression-filter]]
schema = "shop"
table = "orders"
insert-value-expr = "id % 2 = 0"

[block-allow-list]
do-dbs = ["shop"]

[[block-allow-list.ignore-tables]]
db-name = "shop"
tbl-name = "tmp"

[ValidatorCfg]
mode = "full"
validate-interval = "10s"
"#;

    #[test]
    fn reads_only_what_it_names() {
        let s = parse_subtask(1, DOC).unwrap();
        assert_eq!(s.source, "a");
        assert_eq!(s.collation, "loose");
        assert_eq!(s.heartbeat_update, 1);
        assert!(s.clean_dump_file);
        assert_eq!(s.routes[0].target_schema, "dst");
        assert!(!s.routes[0].extracts());
        assert_eq!(s.filters[0].action, "Do");
        assert_eq!(s.expr_filters[0].table, "orders");
        assert_eq!(s.effective_allow_list().unwrap().ignore_tables[0].table, "tmp");
        assert_eq!(s.validator.mode, "full");
        assert_eq!(s.compact.as_ref().map(Scalar::as_str), Some("true"));
        assert_eq!(s.chunk_filesize.as_ref().map(Scalar::as_str), Some("64"));
        // Nothing of `from`/`to` is kept anywhere.
        let shown = format!("{s:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn errors_never_quote_the_document() {
        let bad = DOC.replace("rows = 0", "rows = \"downstream-secret");
        let e = parse_subtask(2, &bad).unwrap_err();
        let shown = e.to_string();
        assert!(!shown.contains("secret"), "{shown}");
        assert_eq!(e.document, 2);
        assert_eq!(e.line, Some(12));
        // A value of the wrong type: serde's message would quote it.
        let typed = DOC.replace("heartbeat-update-interval = 1", "heartbeat-update-interval = \"downstream-secret\"");
        let e = parse_subtask(1, &typed).unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }
}
