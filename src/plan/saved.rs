//! Saved plans (`plan --out FILE`, `apply --plan FILE`).
//!
//! The file holds the plan (no secret, no fingerprint and no salt: payloads are not serialized, and secrets enter
//! the desired digest only as "(sensitive value)"), a digest of the desired state, the live digest of every resource the plan touches, the cluster
//! identity and the configuration paths. Apply re-loads the configuration, re-reads DM and calls
//! [`verify_saved`] / [`rehydrate`]: a plan made for another cluster, from another configuration, or whose resources
//! changed in DM since, is refused with the resources named.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::*;
use super::planner::{source_digest, task_digest};
use crate::config::Desired;
use crate::dm::ServerVersion;
use crate::live::Live;
use crate::normalize;
use crate::secret::SENSITIVE;

pub const SAVED_FORMAT: &str = "dm-apply-saved-plan";

/// Plan options recorded in the file (apply uses the same).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedOptions {
    pub prune: bool,
    pub targets: Vec<Address>,
    pub allow_restart: bool,
    /// `--replace` addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace: Vec<Address>,
}

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
    pub config_paths: Vec<String>,
    /// Per touched resource: its live digest at plan time (`None`: it did not exist).
    pub live_digests: BTreeMap<Address, Option<String>>,
}

/// A saved plan that must not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum StalePlanError {
    #[error("the saved plan was made for another DM cluster ({planned}), not {current}")]
    #[diagnostic(code(plan::stale_cluster), help("run `dm-apply plan --out FILE` against this cluster"))]
    OtherCluster { planned: String, current: String },
    #[error("Saved plan is stale: DM-master's version changed from {planned} to {current}")]
    #[diagnostic(code(plan::stale_version), help("make a new plan"))]
    VersionChanged { planned: String, current: String },
    #[error("Saved plan is stale: the configuration changed since the plan was made ({paths})")]
    #[diagnostic(code(plan::stale_config), help("make a new plan from the current configuration"))]
    ConfigChanged { paths: String },
    #[error("Saved plan is stale: these resources changed in DM since the plan was made: {}", resources.join(", "))]
    #[diagnostic(code(plan::stale_live), help("someone changed DM meanwhile; review with a new plan"))]
    LiveChanged { resources: Vec<String> },
    #[error("Saved plan is stale: dm-apply's state record in DM changed since the plan was made")]
    #[diagnostic(code(plan::stale_state), help("another apply ran meanwhile; make a new plan"))]
    StateChanged,
}

/// Errors reading or writing a saved plan file.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SavedPlanError {
    #[error("cannot read or write the plan file {path}: {source}")]
    #[diagnostic(code(plan::file))]
    Io { path: String, source: std::io::Error },
    #[error("{path} is not a dm-apply saved plan: {detail}")]
    #[diagnostic(code(plan::file_format), help("write one with `dm-apply plan --out FILE`"))]
    Format { path: String, detail: String },
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

/// Build the file content for a plan.
pub fn save(plan: &Plan, desired: &Desired, live: &Live, opts: &super::PlanOptions, paths: &[String]) -> SavedPlan {
    let live_digests =
        plan.changes.iter().filter(|c| !c.is_noop()).map(|c| (c.address.clone(), c.live_digest.clone())).collect();
    SavedPlan {
        format: SAVED_FORMAT.to_string(),
        format_version: FORMAT_VERSION.to_string(),
        dm_apply_version: env!("CARGO_PKG_VERSION").to_string(),
        plan: plan.clone(),
        options: SavedOptions {
            prune: opts.prune,
            targets: opts.targets.clone(),
            allow_restart: opts.allow_restart,
            replace: opts.replace.clone(),
        },
        desired_digest: desired_digest(desired, &live.version),
        state_digest: state_digest(live),
        config_paths: paths.to_vec(),
        live_digests,
    }
}

/// Write atomically (temporary file in the same directory, then rename), readable by the owner only.
pub fn write(path: &Path, saved: &SavedPlan) -> Result<(), SavedPlanError> {
    let io = |e| SavedPlanError::Io { path: path.display().to_string(), source: e };
    let text = serde_json::to_string_pretty(saved).map_err(|e| io(std::io::Error::other(e)))?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "plan".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let res = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(io)
}

pub fn read(path: &Path) -> Result<SavedPlan, SavedPlanError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SavedPlanError::Io { path: path.display().to_string(), source: e })?;
    let saved: SavedPlan = serde_json::from_str(&text)
        .map_err(|e| SavedPlanError::Format { path: path.display().to_string(), detail: e.to_string() })?;
    if saved.format != SAVED_FORMAT || !saved.format_version.starts_with("1.") {
        return Err(SavedPlanError::Format {
            path: path.display().to_string(),
            detail: format!("format {} {}", saved.format, saved.format_version),
        });
    }
    Ok(saved)
}

/// Refuse a plan made for another cluster, from another configuration, or whose touched resources changed in DM.
pub fn verify_saved(saved: &SavedPlan, desired: &Desired, live: &Live) -> Result<(), StalePlanError> {
    let planned = &saved.plan.cluster;
    let same_cluster = match (planned.cluster_id, live.cluster_id) {
        (Some(a), Some(b)) => a == b,
        _ => planned.addr == live.addr,
    };
    if !same_cluster {
        let show = |addr: &str, id: Option<u64>| match id {
            Some(id) => format!("{addr}, cluster id {id}"),
            None => addr.to_string(),
        };
        return Err(StalePlanError::OtherCluster {
            planned: show(&planned.addr, planned.cluster_id),
            current: show(&live.addr, live.cluster_id),
        });
    }
    if planned.server_version != live.version.raw {
        return Err(StalePlanError::VersionChanged {
            planned: planned.server_version.clone(),
            current: live.version.raw.clone(),
        });
    }
    if desired_digest(desired, &live.version) != saved.desired_digest {
        return Err(StalePlanError::ConfigChanged { paths: saved.config_paths.join(", ") });
    }
    let changed: Vec<String> =
        saved.live_digests.iter().filter(|(a, d)| current_digest(live, a) != **d).map(|(a, _)| a.to_string()).collect();
    if !changed.is_empty() {
        return Err(StalePlanError::LiveChanged { resources: changed });
    }
    if state_digest(live) != saved.state_digest {
        return Err(StalePlanError::StateChanged);
    }
    Ok(())
}

/// Verify, then return the saved plan with its in-memory payloads rebuilt from the configuration (identical to
/// plan time, since the desired digest matched).
pub fn rehydrate(saved: &SavedPlan, desired: &Desired, live: &Live) -> Result<Plan, StalePlanError> {
    verify_saved(saved, desired, live)?;
    let mut plan = saved.plan.clone();
    for c in &mut plan.changes {
        c.desired = match c.address.kind {
            Kind::Source => desired
                .sources
                .get(&c.address.name)
                .map(|(s, _)| DesiredPayload::Source(normalize::source_to_wire(s, &live.version))),
            Kind::Task => desired
                .tasks
                .get(&c.address.name)
                .map(|(t, _)| DesiredPayload::Task(normalize::task_to_wire(t, &live.version))),
        };
    }
    Ok(plan)
}
