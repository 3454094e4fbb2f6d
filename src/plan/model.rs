//! The plan model: what `plan` found and what `apply` must do, per resource address.
//!
//! Everything here is plain data, serde-serializable for `-o json` and saved plans. The desired wire payloads
//! (which hold passwords) are `#[serde(skip)]`: they live in memory only; `apply --plan` makes the plan again from the
//! configuration and runs it only when it equals the saved one (`crate::saved_plan`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::{DesiredStage, Origin};
use crate::dm::types::{Source, Stage, Task};

/// Version of the JSON plan format (`-o json` and saved plans). Minor: additive; major: breaking.
pub const FORMAT_VERSION: &str = "1.3";

/// Kind of a managed resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Source,
    Task,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Source => "source",
            Kind::Task => "task",
        }
    }
}

/// `source.<name>` or `task.<name>`. Sources sort before tasks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address {
    pub kind: Kind,
    pub name: String,
}

impl Address {
    pub fn source(name: impl Into<String>) -> Self {
        Address { kind: Kind::Source, name: name.into() }
    }
    pub fn task(name: impl Into<String>) -> Self {
        Address { kind: Kind::Task, name: name.into() }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.kind.as_str(), self.name)
    }
}

/// Error for an address that is not `source.NAME` or `task.NAME`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("`{0}` is not a resource address")]
#[diagnostic(code(plan::address), help("write `source.NAME` or `task.NAME`, e.g. --target task.orders"))]
pub struct AddressParseError(pub String);

impl FromStr for Address {
    type Err = AddressParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, name) = s.split_once('.').ok_or_else(|| AddressParseError(s.to_string()))?;
        let kind = match kind {
            "source" => Kind::Source,
            "task" => Kind::Task,
            _ => return Err(AddressParseError(s.to_string())),
        };
        if name.is_empty() {
            return Err(AddressParseError(s.to_string()));
        }
        Ok(Address { kind, name: name.to_string() })
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What happens to a resource's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConfigAction {
    /// Nothing to change in the configuration (there may still be runtime actions).
    NoOp,
    Create,
    /// In place (`PUT`).
    Update,
    /// Delete then create, because DM refuses the change in place.
    Replace,
    Delete,
}

/// Runtime operations that change no configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeAction {
    /// Start (or resume) a task.
    Start,
    /// Stop a task (the worker shows it as Paused).
    Stop,
    /// `POST /sources/{name}/enable` (DM then starts every task on the source).
    Enable,
    /// `POST /sources/{name}/disable` (DM then stops every task on the source).
    Disable,
    /// Stop relay of a source on some workers (`POST /sources/{name}/relay/disable`); see [`RelayPlan`].
    #[serde(rename = "stop-relay")]
    StopRelay,
    /// Move a source to another worker (`POST /sources/{name}/transfer`); see [`BindingPlan`].
    Transfer,
    /// Start relay of a source (`POST /sources/{name}/relay/enable`); see [`RelayPlan`].
    #[serde(rename = "start-relay")]
    StartRelay,
}

impl RuntimeAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeAction::Start => "start",
            RuntimeAction::Stop => "stop",
            RuntimeAction::Enable => "enable",
            RuntimeAction::Disable => "disable",
            RuntimeAction::StopRelay => "stop-relay",
            RuntimeAction::Transfer => "transfer",
            RuntimeAction::StartRelay => "start-relay",
        }
    }
}

/// Operational impact of a change, so reviewers see the disruption, not just the diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Impact {
    /// A new resource; nothing running is touched.
    Create,
    /// `PUT` with nothing to stop (a source without running tasks).
    InPlace,
    /// Running tasks are stopped, the resource is updated, and what should run is started again.
    /// For a source: the tasks on it that are running now; for a task: the task itself.
    StopUpdateStart { stopped_tasks: Vec<String> },
    /// Delete then create (for a task: see [`ReplaceKind`] for where the new task starts).
    Replace {
        /// True when the new task starts its migration from scratch (new full dump/load or lost position).
        restarts_migration: bool,
        /// Whether apply should delete with `keep_meta=true` (HEAD servers, same name, meta schema and target).
        keep_meta: bool,
        /// The old task is stopped, its checkpoint read from its status, and the new task is created at that
        /// checkpoint (`source_conf`) and started with safe mode covering the overlap.
        #[serde(default)]
        from_checkpoint: bool,
        /// Every subtask of the old task is still as created (never started): nothing is lost.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        not_started: bool,
        /// A declared rename (`renamed_from`): the old task's name. The old task is deleted, the new one created.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        renamed_from: Option<String>,
        /// Sources the replacement adds: they have no checkpoint and start from the configured position.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        new_sources: Vec<String>,
    },
    /// Deletion. For a task without `keep_meta`, its checkpoints in the downstream are dropped.
    Destroy { drops_checkpoints: bool },
    /// Only start/stop/enable/disable.
    RuntimeOnly,
}

impl Impact {
    /// A replace with only the two basic facts (the others default to false/none).
    pub fn replace(restarts_migration: bool, keep_meta: bool) -> Impact {
        Impact::Replace {
            restarts_migration,
            keep_meta,
            from_checkpoint: false,
            not_started: false,
            renamed_from: None,
            new_sources: vec![],
        }
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Impact::Create => "creates a new resource".to_string(),
            Impact::InPlace => "in place, nothing is stopped".to_string(),
            Impact::StopUpdateStart { stopped_tasks } if stopped_tasks.is_empty() => {
                "stop-update-start (nothing runs now, so nothing is interrupted)".to_string()
            }
            Impact::StopUpdateStart { stopped_tasks } => {
                format!("stop-update-start: replication of {} pauses during the update", stopped_tasks.join(", "))
            }
            Impact::Replace {
                restarts_migration,
                keep_meta,
                from_checkpoint,
                not_started,
                renamed_from,
                new_sources,
            } => {
                let mut s = match (renamed_from, restarts_migration, from_checkpoint, keep_meta, not_started) {
                    (Some(old), false, true, ..) => format!(
                        "rename: task {old} is stopped, its checkpoint read, the new task created at it, {old} deleted, \
                         then the new task started with safe mode (never both running); resumes from its checkpoint"
                    ),
                    (Some(old), true, ..) => format!(
                        "rename: task {old} is stopped, the new task created, {old} deleted, then the new task started \
                         (never both running); restarts the migration from scratch (checkpoints are per task name)"
                    ),
                    (Some(old), false, false, ..) => format!(
                        "rename: task {old} is stopped, the new task created from the configuration, {old} deleted, \
                         then the new task started (never both running); {old} had not run yet, so nothing is lost"
                    ),
                    (None, true, ..) => {
                        "replace: restarts the migration from scratch (new full dump and load, checkpoints lost)"
                            .to_string()
                    }
                    (None, false, true, true, _) => "replace: resumes from its checkpoint (read after the stop; \
                                                     checkpoints also kept by keep_meta), started with safe mode"
                        .to_string(),
                    (None, false, true, false, _) => "replace: resumes from its checkpoint (read after the stop, \
                                                      the new task created at it), started with safe mode"
                        .to_string(),
                    (None, false, false, true, _) => {
                        "replace: resumes from its checkpoint (kept by keep_meta), started with safe mode".to_string()
                    }
                    (None, false, false, false, true) => {
                        "replace: the task has not run yet, so nothing is lost".to_string()
                    }
                    (None, false, false, false, false) => {
                        "replace: the new task starts from the binlog positions in the configuration".to_string()
                    }
                };
                if !new_sources.is_empty() {
                    s.push_str(&format!(
                        "; {} new to the task: no checkpoint, starts from the configured position",
                        new_sources.join(", ")
                    ));
                }
                s
            }
            Impact::Destroy { drops_checkpoints: true } => {
                "destroy: the task's checkpoints in the downstream are dropped".to_string()
            }
            Impact::Destroy { drops_checkpoints: false } => "destroy".to_string(),
            Impact::RuntimeOnly => "runtime only, no configuration change".to_string(),
        }
    }
}

/// One attribute line of a diff. `before`/`after` are masked: secrets are never in them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeChange {
    /// Dotted path in the comparable form, e.g. `source_config.incr_migrate_conf.repl_threads`.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<serde_json::Value>,
    /// A secret: rendered as `(sensitive value)`.
    #[serde(default)]
    pub sensitive: bool,
    /// This attribute alone makes DM refuse an in-place update.
    #[serde(default)]
    pub forces_replacement: bool,
}

/// Observed runtime state of one subtask (one source of a task).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedSubtask {
    pub source_name: String,
    pub stage: Stage,
    pub unit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_msg: Option<String>,
}

/// What was observed of a resource at plan time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Observed {
    Source {
        enable: bool,
    },
    Task {
        /// `None` when DM's status could not be read (`status_error` says why).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subtasks: Option<Vec<ObservedSubtask>>,
        /// DM's answer when the status was unavailable. Unavailable is never taken for "running" in reports.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status_error: Option<String>,
    },
}

/// The payload apply sends. Holds secrets; never serialized.
// One per resource change: the size difference does not matter, and unboxed variants keep matching simple.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum DesiredPayload {
    Source(Source),
    Task(Task),
}

/// The relay operations of a source (docs/apply.md, "Relay and worker binding"): stops first (so DM accepts the
/// source's update, and so workers are free for other sources), starts last.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayPlan {
    /// Workers relay is stopped on, named explicitly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    /// Relay started through the source config's `enable_relay` flag is stopped (the only way DM stops it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stop_config_flag: bool,
    /// Workers relay is started on, named explicitly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub start: Vec<String>,
    /// Relay is started on the worker the source is bound to at that moment (no worker named, no request body).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub start_on_bound_worker: bool,
    /// Workers whose relay is stopped only so that DM accepts the source's update, and started again after it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restarted: Vec<String>,
    /// The start names a worker that is free now: apply starts it before creating new sources without a declared
    /// worker, which DM would bind to any free worker.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub claims_free_worker: bool,
}

impl RelayPlan {
    pub fn stops(&self) -> bool {
        !self.stop.is_empty() || self.stop_config_flag
    }
    pub fn starts(&self) -> bool {
        !self.start.is_empty() || self.start_on_bound_worker
    }
}

/// Where a source is bound (docs/dm-behaviour.md R3.1, R3.12, R12.5).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingPlan {
    /// The worker the source is bound to now (`None`: unbound, or a new source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The worker it gets: named in the create request of a new source, or moved to with a transfer (`transfer` in
    /// `runtime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// A new source without a declared worker for which no DM-worker is free: DM creates it unbound. Apply creates
    /// it after the new sources that do get a worker, so that DM gives the free workers to those.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stays_unbound: bool,
    /// Tasks DM pauses before a transfer and resumes on the new worker (the ones expected to run on the source).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paused_tasks: Vec<String>,
    /// Whether apply waits until those tasks run again. Not while relay runs on a worker other than the bound one:
    /// DM cannot report their status then (docs/dm-behaviour.md R8.12).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub confirm: bool,
}

/// Why a planned change is not carried out by this apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HoldKind {
    /// DM will accept the change later, once the resource reaches a state it reaches by itself (e.g. a task
    /// leaving its full dump and load for the Sync unit). Apply leaves it for a later run.
    Deferred,
    /// DM refuses the change in the resource's current state, and it will not get out of that state by itself
    /// (e.g. relay running for a source, shard DDL waiting for coordination). Someone has to act first.
    Blocked,
}

impl HoldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldKind::Deferred => "deferred",
            HoldKind::Blocked => "blocked",
        }
    }
}

/// A change the plan shows but apply does not carry out now, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub kind: HoldKind,
    /// What stands in the way, with DM's own words where there are some.
    pub reason: String,
    /// What the operator can do about it.
    pub remedy: String,
    /// A deferred change: which tasks it waits for, and until when (what `apply --wait-for-sync` polls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<HoldWait>,
}

impl Hold {
    /// DM refuses the change now, and nothing gets it out of the way by itself.
    pub fn blocked(reason: impl Into<String>, remedy: impl Into<String>) -> Hold {
        Hold { kind: HoldKind::Blocked, reason: reason.into(), remedy: remedy.into(), wait: None }
    }

    /// The change can be made once `wait` holds, which the tasks reach by themselves.
    pub fn deferred(reason: impl Into<String>, remedy: impl Into<String>, wait: HoldWait) -> Hold {
        Hold { kind: HoldKind::Deferred, reason: reason.into(), remedy: remedy.into(), wait: Some(wait) }
    }
}

/// The tasks a deferred change waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldWait {
    pub tasks: Vec<String>,
    pub until: WaitUntil,
}

/// What a deferred change waits for its tasks to reach. Ordered from the weaker to the stronger condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitUntil {
    /// No subtask is in its dump any more (in Load or Sync, or finished): stopping the task then loses nothing.
    DumpDone,
    /// Every subtask is in the Sync unit.
    Sync,
}

impl WaitUntil {
    /// "waiting for task.t1 …"
    pub fn goal(self) -> &'static str {
        match self {
            WaitUntil::DumpDone => "to finish its dump",
            WaitUntil::Sync => "to reach the Sync unit",
        }
    }

    /// "task.t1 … after 3m"
    pub fn reached_text(self) -> &'static str {
        match self {
            WaitUntil::DumpDone => "past its dump",
            WaitUntil::Sync => "in the Sync unit",
        }
    }

    /// Whether a task whose subtasks report `status` got there (never for a task without subtasks).
    pub fn reached(self, status: &[crate::dm::types::SubTaskStatus]) -> bool {
        use crate::dm::types::Unit;
        !status.is_empty()
            && status.iter().all(|s| match self {
                WaitUntil::Sync => s.unit == Unit::Sync,
                WaitUntil::DumpDone => s.unit != Unit::Dump || s.stage == Stage::Finished,
            })
    }
}

/// Everything about one resource that differs (or is listed for information).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceChange {
    pub address: Address,
    pub action: ConfigAction,
    /// In execution order (e.g. `disable` before an update, `enable` after it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtime: Vec<RuntimeAction>,
    /// Why, one line each (e.g. "forces replacement: source set changed").
    #[serde(default)]
    pub reasons: Vec<String>,
    pub impact: Impact,
    /// Changed attributes (empty for create/delete: see `before`/`after`).
    #[serde(default)]
    pub attributes: Vec<AttributeChange>,
    /// Number of compared attributes that did not change (text output hides them with this count).
    #[serde(default)]
    pub unchanged_attributes: usize,
    /// Masked comparable form of the live object (absent for create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<serde_json::Value>,
    /// Masked comparable form of the desired object (absent for delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<serde_json::Value>,
    /// The wire payload to create/update with. In memory only (holds secrets).
    #[serde(skip)]
    pub desired: Option<DesiredPayload>,
    /// Whether the source password must be sent with the update (the payload holds it when true; otherwise apply
    /// must send the payload with `password: None`, which keeps the stored one).
    #[serde(default)]
    pub send_password: bool,
    /// Hash of the normalized live object at plan time (absent when it did not exist): apply re-reads and compares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<Observed>,
    /// Desired runtime stage of a task (apply starts a created/replaced/updated task when `running`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_stage: Option<DesiredStage>,
    /// Resources this one needs (a task's sources).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<Address>,
    /// What apply writes to dm-apply's state record for this resource (see `crate::state`). Names fields only:
    /// apply computes the fingerprints from the configuration, so no plan ever carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordPlan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// Set when the change cannot be carried out now (apply skips it and says why; it still counts as a change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<Hold>,
    /// How the change reads in the configuration's terms (filled in by `render::present`; presentation only,
    /// apply never reads it). `None`: the attributes as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<Display>,
    /// Relay operations of a source (with `stop-relay` / `start-relay` in `runtime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<RelayPlan>,
    /// Where a source is bound: at create, or moved with a transfer (`transfer` in `runtime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<BindingPlan>,
    /// The sources a task runs on in DM now (sorted; empty for a task DM does not have), filled by the planner for
    /// apply's compiler (which tasks a source change affects). In memory only: the JSON plan shows them in `before`.
    #[serde(skip)]
    pub live_sources: Vec<String>,
    /// A task start limited to these sources: the task's other sources are disabled (and declared so), and DM
    /// refuses to start a subtask on a disabled source (38058). Empty: the whole task.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub start_on: Vec<String>,
}

/// The attribute lines a reader sees (text and markdown plans), in the configuration's terms. `attributes`,
/// `before` and `after` keep the comparable form (JSON, `lifecycle.ignore_changes` paths).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Display {
    /// Binlog filters under the configuration's rule names (once, not per source), table rules as written in the
    /// configuration; for create and delete only the values that are not DM's defaults.
    pub attributes: Vec<AttributeChange>,
    /// Values of a created or deleted resource left out because they are DM's defaults.
    #[serde(default)]
    pub defaults_hidden: usize,
}

impl ResourceChange {
    /// A resource with nothing to do yet: the planner fills in what differs.
    pub fn new(address: Address) -> Self {
        ResourceChange {
            address,
            action: ConfigAction::NoOp,
            runtime: vec![],
            reasons: vec![],
            impact: Impact::RuntimeOnly,
            attributes: vec![],
            unchanged_attributes: 0,
            before: None,
            after: None,
            desired: None,
            send_password: false,
            live_digest: None,
            observed: None,
            desired_stage: None,
            depends_on: vec![],
            record: None,
            origin: None,
            hold: None,
            display: None,
            relay: None,
            binding: None,
            live_sources: vec![],
            start_on: vec![],
        }
    }

    /// Whether apply carries this change out (not deferred, not blocked).
    pub fn is_actionable(&self) -> bool {
        self.hold.is_none() && !self.is_noop()
    }

    /// Terraform-style action list: `["create"]`, `["update"]`, `["delete","create"]`, `["delete"]`,
    /// followed by runtime actions (`["start"]`, `["update","start"]`...).
    pub fn actions(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = match self.action {
            ConfigAction::NoOp => vec![],
            ConfigAction::Create => vec!["create"],
            ConfigAction::Update => vec!["update"],
            ConfigAction::Replace => vec!["delete", "create"],
            ConfigAction::Delete => vec!["delete"],
        };
        v.extend(self.runtime.iter().map(|r| r.as_str()));
        if v.is_empty() {
            v.push("no-op");
        }
        v
    }

    /// [`Impact::describe`], in this change's terms: a source update pauses its tasks only on that source.
    pub fn describe_impact(&self) -> String {
        match (&self.impact, self.address.kind) {
            (Impact::StopUpdateStart { stopped_tasks }, Kind::Source) if !stopped_tasks.is_empty() => format!(
                "stop-update-start: replication of {} from {} pauses during the update",
                stopped_tasks.join(", "),
                self.address.name
            ),
            _ => self.impact.describe(),
        }
    }

    pub fn is_noop(&self) -> bool {
        self.action == ConfigAction::NoOp && self.runtime.is_empty()
    }
}

/// Which DM cluster a plan was made against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterIdentity {
    pub addr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<u64>,
    pub server_version: String,
}

/// A resource that exists in DM but is not declared (and not pruned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmanaged {
    pub address: Address,
    /// E.g. "not declared; run with --prune to delete it".
    pub note: String,
}

/// Counts for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
    /// Changes apply leaves for later (they are not in the three counts above).
    #[serde(default)]
    pub deferred: usize,
    /// Changes DM refuses in the current state (not in the three counts above).
    #[serde(default)]
    pub blocked: usize,
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: String,
    pub cluster: ClusterIdentity,
    /// Only resources with something to do, sorted by address (sources first).
    pub changes: Vec<ResourceChange>,
    #[serde(default)]
    pub unmanaged: Vec<Unmanaged>,
    /// Things the plan could not read or cannot apply (shown on every output).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// `--target` addresses, when targeting is in effect.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Address>,
    #[serde(default)]
    pub prune: bool,
    /// Things worth knowing that change nothing (trust on first use, where the state record lives).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// dm-apply's state record: where it lives and whether apply must write it.
    #[serde(default)]
    pub state: StatePlan,
    /// What the changed tasks replicate before and after (added after planning by `crate::preview`; `None` when
    /// not computed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<crate::preview::Preview>,
}

/// What apply records for one resource in dm-apply's state record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum RecordPlan {
    /// Record the fingerprints of these write-only fields (computed at apply time from the configuration) and/or
    /// the `write_only_version`. `merge`: keep the entry's other fields (a source update that did not send its
    /// password keeps the password's fingerprint); otherwise the entry is replaced.
    Set {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        fields: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<u64>,
        merge: bool,
        /// Recorded without sending anything (trust on first use).
        #[serde(default)]
        adopt: bool,
    },
    /// The resource was deleted: drop its entry.
    Forget,
}

/// Where dm-apply's state record lives and what apply must do with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatePlan {
    /// The declared task whose target the record's template connects to. `None`: no task is declared, so no
    /// record is kept (write-only values are trusted as they are; no lease).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    /// The record must be written even when no resource changes (an old record to replace).
    #[serde(default)]
    pub rewrite: bool,
}

impl Plan {
    /// Terraform counting: replace counts in add and destroy; runtime-only changes count as change. Held changes
    /// are counted apart.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.hold.as_ref().map(|h| h.kind) {
                Some(HoldKind::Deferred) => {
                    s.deferred += 1;
                    continue;
                }
                Some(HoldKind::Blocked) => {
                    s.blocked += 1;
                    continue;
                }
                None => {}
            }
            match c.action {
                ConfigAction::Create => s.add += 1,
                ConfigAction::Update => s.change += 1,
                ConfigAction::Replace => {
                    s.add += 1;
                    s.destroy += 1
                }
                ConfigAction::Delete => s.destroy += 1,
                ConfigAction::NoOp => {
                    if !c.runtime.is_empty() {
                        s.change += 1
                    }
                }
            }
        }
        s
    }

    /// Anything differs, held changes included (`--detailed-exitcode` exits 2).
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| !c.is_noop())
    }

    /// Something apply would carry out.
    pub fn has_actionable_changes(&self) -> bool {
        self.changes.iter().any(ResourceChange::is_actionable)
    }

    /// The tasks the deferred changes wait for, each with the strongest condition asked of it (what
    /// `apply --wait-for-sync` polls before planning again).
    pub fn waits(&self) -> BTreeMap<String, WaitUntil> {
        let mut out: BTreeMap<String, WaitUntil> = BTreeMap::new();
        let deferred = self.held().filter_map(|c| c.hold.as_ref()).filter(|h| h.kind == HoldKind::Deferred);
        for w in deferred.filter_map(|h| h.wait.as_ref()) {
            for t in &w.tasks {
                let until = out.entry(t.clone()).or_insert(w.until);
                *until = (*until).max(w.until);
            }
        }
        out
    }

    /// The changes apply leaves alone, in address order.
    pub fn held(&self) -> impl Iterator<Item = &ResourceChange> {
        self.changes.iter().filter(|c| c.hold.is_some())
    }

    /// Whether apply writes dm-apply's state record (even when nothing else changes, e.g. to adopt resources).
    pub fn writes_record(&self) -> bool {
        // A held change is not carried out, so nothing of it is recorded either.
        self.state.home.is_some()
            && (self.state.rewrite || self.changes.iter().any(|c| c.record.is_some() && c.hold.is_none()))
    }

    pub fn change(&self, address: &Address) -> Option<&ResourceChange> {
        self.changes.iter().find(|c| &c.address == address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_is_reached_when_every_subtask_got_there() {
        use crate::dm::types::{SubTaskStatus, Unit};
        let sub = |stage: Stage, unit: Unit| SubTaskStatus { stage, unit, ..Default::default() };
        let (sync, load) = (sub(Stage::Running, Unit::Sync), sub(Stage::Running, Unit::Load));
        let (dump, dumped) = (sub(Stage::Running, Unit::Dump), sub(Stage::Finished, Unit::Dump));
        assert!(!WaitUntil::Sync.reached(&[]) && !WaitUntil::DumpDone.reached(&[]), "no subtask: not there");
        assert!(WaitUntil::Sync.reached(&[sync.clone(), sync.clone()]));
        assert!(!WaitUntil::Sync.reached(&[sync.clone(), load.clone()]));
        assert!(WaitUntil::DumpDone.reached(&[sync.clone(), load.clone(), dumped]));
        assert!(!WaitUntil::DumpDone.reached(&[sync, dump]));
        assert!(WaitUntil::DumpDone < WaitUntil::Sync, "Sync is the stronger condition");
    }

    #[test]
    fn address_round_trip() {
        let a: Address = "task.orders".parse().unwrap();
        assert_eq!(a, Address::task("orders"));
        assert_eq!(a.to_string(), "task.orders");
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"task.orders\"");
        assert!("orders".parse::<Address>().is_err());
        assert!("widget.x".parse::<Address>().is_err());
        assert!("task.".parse::<Address>().is_err());
        assert!(Address::source("z") < Address::task("a"));
    }

    #[test]
    fn actions_arrays() {
        let mut c = ResourceChange { action: ConfigAction::Replace, ..ResourceChange::new(Address::task("t")) };
        assert_eq!(c.actions(), ["delete", "create"]);
        c.action = ConfigAction::NoOp;
        c.runtime = vec![RuntimeAction::Start];
        assert_eq!(c.actions(), ["start"]);
        c.runtime.clear();
        assert_eq!(c.actions(), ["no-op"]);
    }
}
