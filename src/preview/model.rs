//! The preview as plans carry it (`Plan::preview`, the `preview` object of `-o json`; docs/plan.md "Preview").
//! Plain data: names come from DM (upstream schema and table names) and are sanitized by the renderers.

use serde::{Deserialize, Serialize};

use crate::plan::Address;

/// At most this many tables are listed per list (the counts are always complete for what was read).
pub const MAX_LISTED: usize = 1000;

/// What the changed tasks of a plan replicate before and after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preview {
    /// One entry per created, replaced, or rule-updated task, in address order.
    pub tasks: Vec<TaskPreview>,
    /// A cap stopped the reading of some table lists: counts are then lower bounds (see `notes`).
    pub truncated: bool,
    /// Requests sent for the preview (schema lists, table lists, migrate targets).
    pub requests: usize,
    /// What limited the preview (caps, sources that do not exist yet).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Preview {
    /// Every warning, with its task.
    pub fn warnings(&self) -> impl Iterator<Item = (&TaskPreview, &PreviewWarning)> {
        self.tasks.iter().flat_map(|t| t.warnings.iter().map(move |w| (t, w)))
    }
}

/// One task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskPreview {
    pub address: Address,
    /// `create`, `update` or `replace`.
    pub action: String,
    /// Tables replicated now (absent for a created task).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<usize>,
    /// Tables replicated after the change.
    pub after: usize,
    pub starts: usize,
    pub stops: usize,
    pub reroutes: usize,
    pub sources: Vec<SourcePreview>,
    #[serde(default)]
    pub warnings: Vec<PreviewWarning>,
}

/// How the upstream compares names, as far as dm-apply can tell (DM's API does not expose
/// `lower_case_table_names`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaseView {
    /// Upper-case upstream names, or upper-case patterns DM stored as written: case-sensitive.
    Sensitive,
    /// Not known and it matters for these patterns: computed as DM does on a case-insensitive upstream (a warning
    /// says what a case-sensitive one would do).
    AssumedInsensitive,
    /// Not known and it does not change the result (no pattern has upper-case letters).
    Irrelevant,
}

/// One source of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourcePreview {
    pub source: String,
    pub case: CaseView,
    /// Why this source could not be previewed, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Every schema the rules can reach was listed.
    pub complete: bool,
    /// Tables replicated now (absent: the source is not in the task now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<usize>,
    /// Tables replicated after the change (absent: the source leaves the task).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<usize>,
    pub starts: TableList,
    pub stops: TableList,
    pub reroutes: RerouteList,
    /// The "before" side checked against DM's own answer, for tasks that exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_check: Option<CrossCheck>,
}

/// Upstream tables and where they go; `tables` holds at most [`MAX_LISTED`] of `count`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableList {
    pub count: usize,
    pub tables: Vec<Mapping>,
}

impl TableList {
    pub fn push(&mut self, m: Mapping) {
        self.count += 1;
        if self.tables.len() < MAX_LISTED {
            self.tables.push(m);
        }
    }
}

/// An upstream table and its target after routes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Mapping {
    pub schema: String,
    pub table: String,
    pub target: Target,
}

/// A downstream table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Target {
    pub schema: String,
    pub table: String,
}

impl Target {
    /// TiDB compares table names without case (`lower_case_table_names` is always 2 there).
    pub fn same_as(&self, other: &Target) -> bool {
        self.schema.to_lowercase() == other.schema.to_lowercase()
            && self.table.to_lowercase() == other.table.to_lowercase()
    }
}

/// Tables that keep replicating but to another target; at most [`MAX_LISTED`] of `count`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RerouteList {
    pub count: usize,
    pub tables: Vec<Reroute>,
}

impl RerouteList {
    pub fn push(&mut self, r: Reroute) {
        self.count += 1;
        if self.tables.len() < MAX_LISTED {
            self.tables.push(r);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reroute {
    pub schema: String,
    pub table: String,
    pub before: Target,
    pub after: Target,
}

/// Outcome of the comparison with `GET /tasks/{t}/sources/{s}/migrate_targets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrossStatus {
    Agrees,
    Disagrees,
    /// DM could not answer (the subtask is not Running or Paused in the Sync unit, or the request failed).
    Unavailable,
}

/// DM's list of what the task replicates now, against dm-apply's computation of the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossCheck {
    pub status: CrossStatus,
    /// Why DM's list is unavailable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Tables DM listed.
    pub dm_tables: usize,
    /// Listed by DM, not replicated according to dm-apply.
    pub only_in_dm: TableList,
    /// Replicated according to dm-apply (upstream tables), not listed by DM.
    pub only_in_dm_apply: TableList,
    /// Both replicate them, to different targets: `before` is dm-apply's target, `after` DM's.
    pub routed_differently: RerouteList,
}

/// What a reviewer should look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WarningKind {
    /// A rule's patterns match no upstream table.
    RuleMatchesNothing,
    /// A rule matches upstream tables, but DM replicates none of them (both schema and table rules on a source).
    RuleHasNoEffect,
    /// Several upstream tables go to one target table and the task has no shard mode.
    RouteMerge,
    /// A table matches several routes on one level: DM's router refuses to choose.
    RouteAmbiguous,
    /// The change stops every table of a source.
    DropsAllTables,
    /// A source of the task replicates no table.
    ReplicatesNothing,
    /// A pattern differs from the upstream's names only in case, and what DM does depends on the upstream's
    /// case sensitivity.
    CaseOnlyDifference,
    /// DM refuses a pattern: the task is not accepted as written.
    InvalidPattern,
    /// DM's migrate targets disagree with dm-apply's computation.
    ModelDisagrees,
}

impl WarningKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WarningKind::RuleMatchesNothing => "rule-matches-nothing",
            WarningKind::RuleHasNoEffect => "rule-has-no-effect",
            WarningKind::RouteMerge => "route-merge",
            WarningKind::RouteAmbiguous => "route-ambiguous",
            WarningKind::DropsAllTables => "drops-all-tables",
            WarningKind::ReplicatesNothing => "replicates-nothing",
            WarningKind::CaseOnlyDifference => "case-only-difference",
            WarningKind::InvalidPattern => "invalid-pattern",
            WarningKind::ModelDisagrees => "model-disagrees",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewWarning {
    pub kind: WarningKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub message: String,
}
