//! Saved plans (`plan --out FILE`, `apply --plan FILE`, `show FILE`).
//!
//! The file holds the plan as reviewed (no secret, no fingerprint and no salt: payloads are not serialized, and
//! secrets enter the desired digest only as "(sensitive value)"), the options it was made with, a digest of the
//! desired state, the live digest of every resource the plan touches, the observed stages of the resources it
//! covers, the cluster identity, and the configuration paths with the directory `plan` ran in.
//!
//! The file is never trusted to say what to do: `apply --plan` reloads the configuration, re-reads DM, checks that
//! nothing the plan depends on changed ([`check::verify`]), then makes the plan again from the configuration and
//! DM, with the guards and options of the apply command, and runs it only when it equals the file's
//! ([`check::same_plan`]). An edited file is refused; the payloads (with their secrets) always come from the
//! configuration.
//!
//! - [`file`]: reading and writing the file, finding the configuration it was made from.
//! - [`check`]: staleness and the comparison with the recomputed plan.

pub mod check;
pub mod file;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::Desired;
use crate::dm::ServerVersion;
use crate::live::Live;
use crate::normalize;
use crate::plan::planner::{source_digest, task_digest};
use crate::plan::{Address, FORMAT_VERSION, Impact, Kind, Plan, PlanOptions};
use crate::secret::SENSITIVE;

pub use check::{RefusedPlan, StalePlanError};
pub use file::{ConfigLocation, SavedPlanError};

pub const SAVED_FORMAT: &str = "dm-apply-saved-plan";

/// Plan options recorded in the file. Only shown and compared: `apply --plan` takes its options from its own
/// command line and refuses when they differ (options that widen a plan are never read from a file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedOptions {
    pub prune: bool,
    pub targets: Vec<Address>,
    pub allow_restart: bool,
    /// `--replace` addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace: Vec<Address>,
}

impl SavedOptions {
    pub fn of(opts: &PlanOptions) -> Self {
        SavedOptions {
            prune: opts.prune,
            targets: opts.targets.clone(),
            allow_restart: opts.allow_restart,
            replace: opts.replace.clone(),
        }
    }
}

/// Where the configuration was read from when the plan was made.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigPaths {
    /// The `-f` paths, as given.
    pub paths: Vec<String>,
    /// The directory `plan` ran in (`None` when it could not be read).
    pub dir: Option<String>,
}

/// What DM showed of a resource's runtime stage when the plan was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum StageSnapshot {
    Source {
        enabled: bool,
    },
    Task {
        /// Stage per source (subtask); `None` when DM could not report the task's status.
        subtasks: Option<BTreeMap<String, String>>,
    },
}

impl StageSnapshot {
    /// The snapshot of `address` in `live` (`None`: not in DM).
    pub fn of(live: &Live, address: &Address) -> Option<StageSnapshot> {
        match address.kind {
            Kind::Source => live.sources.get(&address.name).map(|s| StageSnapshot::Source { enabled: s.enable }),
            Kind::Task => live.tasks.get(&address.name).map(|t| StageSnapshot::Task {
                subtasks: t
                    .status
                    .as_ref()
                    .map(|list| list.iter().map(|s| (s.source_name.clone(), s.stage.as_str().to_string())).collect()),
            }),
        }
    }
}

impl fmt::Display for StageSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StageSnapshot::Source { enabled: true } => f.write_str("enabled"),
            StageSnapshot::Source { enabled: false } => f.write_str("disabled"),
            StageSnapshot::Task { subtasks: None } => f.write_str("status unavailable"),
            StageSnapshot::Task { subtasks: Some(list) } if list.is_empty() => f.write_str("no subtask"),
            StageSnapshot::Task { subtasks: Some(list) } => {
                let parts: Vec<String> = list
                    .iter()
                    .map(|(source, stage)| format!("{}: {}", crate::ui::sanitize::inline(source), stage_word(stage)))
                    .collect();
                f.write_str(&parts.join(", "))
            }
        }
    }
}

/// A subtask stage for people (DM's word, made safe to print).
fn stage_word(stage: &str) -> std::borrow::Cow<'_, str> {
    if stage.is_empty() { "(no stage)".into() } else { crate::ui::sanitize::inline(stage) }
}

/// The saved plan file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format: String,
    pub format_version: String,
    pub dm_apply_version: String,
    pub plan: Plan,
    pub options: SavedOptions,
    /// Digest of the desired state (without its secrets).
    pub desired_digest: String,
    /// Digest of dm-apply's state record entries at plan time (`None`: there was none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_digest: Option<String>,
    /// The `-f` paths as given to `plan`.
    pub config_paths: Vec<String>,
    /// The directory `plan` ran in: relative `config_paths` are looked up there when the current directory does
    /// not have them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_dir: Option<String>,
    /// Per touched resource: its live digest at plan time (`None`: it did not exist).
    pub live_digests: BTreeMap<Address, Option<String>>,
    /// Per resource the plan covers and DM had: its runtime stage at plan time. `None` in files of dm-apply
    /// versions that did not record stages (such a file is refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<BTreeMap<Address, StageSnapshot>>,
}

/// Replace the secrets of a wire value with `(sensitive value)`.
fn mask_wire(v: &mut Value) {
    const SECRET_KEYS: [&str; 2] = ["password", "ssl_key_content"];
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if SECRET_KEYS.contains(&k.as_str()) {
                    if x.is_string() {
                        *x = Value::String(SENSITIVE.to_string());
                    }
                } else {
                    mask_wire(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(mask_wire),
        _ => {}
    }
}

/// Digest of the desired state as dm-apply would send it to `version`. Secrets do not enter it at all: any hash of
/// a secret in a plan file would let whoever reads the file test password guesses offline. A secret changed between
/// plan and apply is therefore not detected here; apply sends the value the configuration has at apply time.
/// Origins (file names and lines) do not enter it either: the same configuration read from another directory has
/// the same digest.
pub fn desired_digest(desired: &Desired, version: &ServerVersion) -> String {
    let mut sources = serde_json::Map::new();
    for (name, (s, _)) in &desired.sources {
        let mut v = serde_json::to_value(normalize::source_to_wire(s, version)).unwrap_or(Value::Null);
        mask_wire(&mut v);
        let mut entry =
            serde_json::json!({ "wire": v, "lifecycle": s.lifecycle, "write_only_version": s.write_only_version });
        // Relay and binding are not in the wire form; added only when declared, so other digests stay as they were.
        if let Some(m) = entry.as_object_mut() {
            if let Some(r) = &s.relay {
                m.insert("relay".into(), serde_json::to_value(r).unwrap_or(Value::Null));
            }
            if let Some(w) = &s.worker_name {
                m.insert("worker_name".into(), Value::String(w.clone()));
            }
        }
        sources.insert(name.clone(), entry);
    }
    let mut tasks = serde_json::Map::new();
    for (name, (t, _)) in &desired.tasks {
        let mut v = serde_json::to_value(normalize::task_to_wire(t, version)).unwrap_or(Value::Null);
        mask_wire(&mut v);
        tasks.insert(
            name.clone(),
            serde_json::json!({
                "wire": v, "stage": t.stage, "lifecycle": t.lifecycle, "write_only_version": t.write_only_version
            }),
        );
    }
    let ext: Vec<&String> = desired.external_sources.iter().collect();
    normalize::digest(&serde_json::json!({ "sources": sources, "tasks": tasks, "external_sources": ext }))
}

/// Digest of the record's entries (not of its lease): another apply that recorded something makes a saved plan
/// stale. Entries hold only fingerprints whose salts or key stay in DM or with the runners.
fn state_digest(live: &Live) -> Option<String> {
    live.state.record().map(|r| normalize::digest(&serde_json::to_value(&r.resources).unwrap_or(Value::Null)))
}

/// The current live digest of an address (`None`: absent).
pub fn current_digest(live: &Live, address: &Address) -> Option<String> {
    match address.kind {
        Kind::Source => live.sources.get(&address.name).map(source_digest),
        Kind::Task => live.tasks.get(&address.name).map(|t| task_digest(&t.task, &live.version)),
    }
}

/// The resources whose runtime stage a plan depends on: what it changes, what those changes stop or need, and
/// every declared resource in its scope (whose stage drift the plan would otherwise have shown).
pub fn stage_scope(plan: &Plan, desired: &Desired) -> BTreeSet<Address> {
    let mut scope = BTreeSet::new();
    for c in &plan.changes {
        scope.insert(c.address.clone());
        scope.extend(c.depends_on.iter().cloned());
        if let Impact::StopUpdateStart { stopped_tasks } = &c.impact {
            scope.extend(stopped_tasks.iter().map(Address::task));
        }
    }
    if plan.targets.is_empty() {
        scope.extend(desired.sources.keys().map(Address::source));
        scope.extend(desired.tasks.keys().map(Address::task));
    } else {
        for t in &plan.targets {
            scope.insert(t.clone());
            if t.kind == Kind::Task
                && let Some((spec, _)) = desired.tasks.get(&t.name)
            {
                scope.extend(spec.source_config.source_conf.iter().map(|sc| Address::source(&sc.source_name)));
            }
        }
    }
    scope
}

/// The stages of `scope` in `live` (resources DM does not have are left out).
pub fn stages(live: &Live, scope: &BTreeSet<Address>) -> BTreeMap<Address, StageSnapshot> {
    scope.iter().filter_map(|a| StageSnapshot::of(live, a).map(|s| (a.clone(), s))).collect()
}

/// Build the file content for a plan.
pub fn save(plan: &Plan, desired: &Desired, live: &Live, opts: &PlanOptions, config: &ConfigPaths) -> SavedPlan {
    let live_digests = plan
        .changes
        .iter()
        .filter(|c| !c.is_noop())
        .flat_map(|c| match &c.impact {
            // A rename: the digest is the old task's, and the new name must still be free.
            crate::plan::Impact::Replace { renamed_from: Some(old), .. } => {
                vec![(Address::task(old), c.live_digest.clone()), (c.address.clone(), None)]
            }
            _ => vec![(c.address.clone(), c.live_digest.clone())],
        })
        .collect();
    SavedPlan {
        format: SAVED_FORMAT.to_string(),
        format_version: FORMAT_VERSION.to_string(),
        dm_apply_version: env!("CARGO_PKG_VERSION").to_string(),
        plan: plan.clone(),
        options: SavedOptions::of(opts),
        desired_digest: desired_digest(desired, &live.version),
        state_digest: state_digest(live),
        config_paths: config.paths.clone(),
        config_dir: config.dir.clone(),
        live_digests,
        stages: Some(stages(live, &stage_scope(plan, desired))),
    }
}
