//! `dm-apply drift`: a read-only report of how DM differs from the configuration, for scheduled jobs.
//!
//! Read-only by construction: the report is built from a [`ReadOnlyDm`], which wraps the client privately and
//! exposes only the live-state fetch (GET requests), so no code path here can reach a mutating endpoint. The
//! report is a pure function of desired and live state; only the command prints and writes files.
//!
//! Three kinds of drift are reported separately:
//! - **config**: a declared resource exists but its configuration differs (what apply would update or replace);
//! - **missing** / **unmanaged**: declared but absent from DM / present in DM but not declared;
//! - **stage**: a task's observed stage differs from the desired one (e.g. Paused with an error while it should
//!   run), or a source's enabled state differs;
//! - **relay** / **binding**: a source with `relay` declared whose relay does not run as declared (on the declared
//!   workers, without error; DM's error is shown), or with `worker_name` declared that is bound elsewhere.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::{Desired, DesiredStage};
use crate::dm::types::Stage;
use crate::dm::{DmClient, DmError};
use crate::live::{self, FetchOptions, Live};
use crate::plan::{Address, AttributeChange, ClusterIdentity, ConfigAction, PlanOptions, build_plan};

/// Version of the drift JSON report.
pub const DRIFT_FORMAT_VERSION: &str = "1.1";

/// A DM-master handle that can only read. The client inside is private and only [`ReadOnlyDm::fetch`] uses it.
pub struct ReadOnlyDm {
    client: DmClient,
}

impl ReadOnlyDm {
    pub fn new(client: DmClient) -> Self {
        ReadOnlyDm { client }
    }

    /// The live state (GET requests only; see `live::fetch_with`).
    pub async fn fetch(&self, opts: &FetchOptions) -> Result<Live, DmError> {
        live::fetch_with(&self.client, opts).await
    }

    /// The first wave of reads, sent now (GET requests only; see `live::Prefetch`).
    pub fn prefetch(&self) -> live::Prefetch {
        live::Prefetch::start(&self.client)
    }

    /// The live state from reads sent by [`ReadOnlyDm::prefetch`].
    pub async fn fetch_prefetched(&self, p: live::Prefetch, opts: &FetchOptions) -> Result<Live, DmError> {
        p.live(&self.client, opts).await
    }

    pub fn addr(&self) -> &str {
        self.client.addr()
    }
}

/// A declared resource whose configuration differs in DM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigDrift {
    pub address: Address,
    /// What apply would do: `update` or `replace`.
    pub action: String,
    pub reasons: Vec<String>,
    /// `before` is DM's value, `after` the configuration's (secrets masked).
    pub attributes: Vec<AttributeChange>,
}

/// A runtime-stage difference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageDrift {
    pub address: Address,
    /// `running`, `stopped`, `enabled` or `disabled`.
    pub desired: String,
    /// Per source (tasks) or one entry (sources), e.g. `s1: Paused`.
    pub observed: Vec<String>,
    /// DM's error messages, if any.
    pub errors: Vec<String>,
}

/// A source whose relay or binding differs from the declared one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlacementDrift {
    pub address: Address,
    /// E.g. `relay on worker1, worker2`, `no relay`, `bound to worker2`.
    pub desired: String,
    /// E.g. `worker1: Running`, `worker2: Paused`, `worker3: not relaying`, `bound to worker1`.
    pub observed: Vec<String>,
    /// DM's error messages, per worker.
    pub errors: Vec<String>,
}

/// Whether relay runs on one declared relay worker (for the Prometheus gauge).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayWorkerState {
    pub source: String,
    pub worker: String,
    pub running: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftCounts {
    pub config: usize,
    pub missing: usize,
    pub unmanaged: usize,
    pub stage: usize,
    #[serde(default)]
    pub relay: usize,
    #[serde(default)]
    pub binding: usize,
}

impl DriftCounts {
    pub fn total(&self) -> usize {
        self.config + self.missing + self.unmanaged + self.stage + self.relay + self.binding
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    pub format_version: String,
    pub cluster: ClusterIdentity,
    pub counts: DriftCounts,
    pub config: Vec<ConfigDrift>,
    pub missing: Vec<Address>,
    pub unmanaged: Vec<Address>,
    pub stage: Vec<StageDrift>,
    #[serde(default)]
    pub relay: Vec<PlacementDrift>,
    #[serde(default)]
    pub binding: Vec<PlacementDrift>,
    /// Every declared relay worker whose state is known, drifted or not.
    #[serde(default)]
    pub relay_workers: Vec<RelayWorkerState>,
    pub warnings: Vec<String>,
}

impl DriftReport {
    pub fn has_drift(&self) -> bool {
        self.counts.total() > 0
    }
}

/// Build the report (pure). Lifecycle guards do not apply: drift reports, it never plans to act. Without
/// `allow_restart`, a change is held as a plain `apply` would hold it (a source update that would restart a dump).
pub fn report(desired: &Desired, live: &Live, state_key: Option<&crate::state::StateKey>) -> DriftReport {
    let opts = PlanOptions { state_key: state_key.cloned(), ..PlanOptions::default() };
    // build_plan only fails on unknown --target addresses, and there are none here.
    let plan = match build_plan(desired, live, &opts) {
        Ok(p) => p,
        Err(e) => {
            return DriftReport {
                format_version: DRIFT_FORMAT_VERSION.into(),
                cluster: ClusterIdentity {
                    addr: live.addr.clone(),
                    cluster_id: live.cluster_id,
                    server_version: live.version.raw.clone(),
                },
                counts: DriftCounts::default(),
                config: vec![],
                missing: vec![],
                unmanaged: vec![],
                stage: vec![],
                relay: vec![],
                binding: vec![],
                relay_workers: vec![],
                warnings: vec![e.to_string()],
            };
        }
    };
    let mut config = vec![];
    let mut missing = vec![];
    for c in &plan.changes {
        match c.action {
            ConfigAction::Create => missing.push(c.address.clone()),
            ConfigAction::Update | ConfigAction::Replace => config.push(ConfigDrift {
                address: c.address.clone(),
                action: if c.action == ConfigAction::Update { "update" } else { "replace" }.into(),
                reasons: c.reasons.clone(),
                attributes: c.attributes.clone(),
            }),
            _ => {}
        }
    }
    let mut stage = vec![];
    for (name, (spec, _)) in &desired.sources {
        if let Some(l) = live.sources.get(name)
            && l.enable != spec.enable
            && !spec.lifecycle.ignore_changes.iter().any(|p| p == "enable")
        {
            {
                stage.push(StageDrift {
                    address: Address::source(name),
                    desired: if spec.enable { "enabled" } else { "disabled" }.into(),
                    observed: vec![if l.enable { "enabled" } else { "disabled" }.into()],
                    errors: vec![],
                });
            }
        }
    }
    for (name, (spec, _)) in &desired.tasks {
        let Some(lt) = live.tasks.get(name) else { continue };
        if spec.lifecycle.ignore_changes.iter().any(|p| p == "stage") {
            continue;
        }
        let Some(st) = &lt.status else {
            // DM cannot say how the task runs (docs/dm-behaviour.md R8.12): unconfirmed is reported, never taken
            // for "as desired".
            stage.push(StageDrift {
                address: Address::task(name),
                desired: match spec.stage {
                    DesiredStage::Running => "running",
                    DesiredStage::Stopped => "stopped",
                }
                .into(),
                observed: vec!["status unavailable".into()],
                errors: lt.status_error.iter().cloned().collect(),
            });
            continue;
        };
        let bad = |s: &Stage| match spec.stage {
            DesiredStage::Running => !matches!(s, Stage::Running | Stage::Finished),
            DesiredStage::Stopped => matches!(s, Stage::Running),
        };
        if st.iter().any(|s| bad(&s.stage)) {
            let mut observed: Vec<String> = st.iter().map(|s| format!("{}: {}", s.source_name, s.stage)).collect();
            observed.sort();
            let errors: Vec<String> = st
                .iter()
                .filter_map(|s| {
                    s.error_msg
                        .as_ref()
                        .filter(|m| !m.trim().is_empty())
                        .map(|m| format!("{}: {}", s.source_name, m.trim()))
                })
                .collect();
            stage.push(StageDrift {
                address: Address::task(name),
                desired: match spec.stage {
                    DesiredStage::Running => "running",
                    DesiredStage::Stopped => "stopped",
                }
                .into(),
                observed,
                errors,
            });
        }
    }
    let (relay, binding, relay_workers) = placement(desired, live);
    let mut warnings = plan.warnings;
    warnings.extend(unreadable_status_explained(desired, live));
    let unmanaged: Vec<Address> = plan.unmanaged.iter().map(|u| u.address.clone()).collect();
    let counts = DriftCounts {
        config: config.len(),
        missing: missing.len(),
        unmanaged: unmanaged.len(),
        stage: stage.len(),
        relay: relay.len(),
        binding: binding.len(),
    };
    DriftReport {
        format_version: DRIFT_FORMAT_VERSION.into(),
        cluster: plan.cluster,
        counts,
        config,
        missing,
        unmanaged,
        stage,
        relay,
        binding,
        relay_workers,
        warnings,
    }
}

/// Why the status of a declared task is unavailable when relay on a worker other than the bound one explains it
/// (DM fails the whole status read then, docs/dm-behaviour.md R8.12): said once per task, with the workers.
fn unreadable_status_explained(desired: &Desired, live: &Live) -> Vec<String> {
    let mut out = vec![];
    for name in desired.tasks.keys() {
        let Some(lt) = live.tasks.get(name).filter(|t| t.status.is_none()) else { continue };
        let mut extra = vec![];
        for sc in &lt.task.source_config.source_conf {
            let bound = live.bound_worker(&sc.source_name).flatten();
            if let Some(r) = live.relay.as_ref().and_then(|m| m.get(&sc.source_name)) {
                extra.extend(
                    r.workers.keys().filter(|w| Some(w.as_str()) != bound).map(|w| format!("{w} ({})", sc.source_name)),
                );
            }
        }
        if !extra.is_empty() {
            out.push(format!(
                "task.{name}: DM cannot report its status while relay runs on a worker other than the source's bound \
                 worker: {}; its stage is not known (not taken as running)",
                extra.join(", ")
            ));
        }
    }
    out
}

/// Relay and binding of the declared sources that exist in DM, against what DM reports (docs/dm-behaviour.md §4,
/// §12). What could not be read is not judged (the fetch's warnings say so).
fn placement(desired: &Desired, live: &Live) -> (Vec<PlacementDrift>, Vec<PlacementDrift>, Vec<RelayWorkerState>) {
    let (mut relay, mut binding, mut gauges) = (vec![], vec![], vec![]);
    for (name, (spec, _)) in &desired.sources {
        let Some(src) = live.sources.get(name) else { continue };
        let bound = live.bound_worker(name);
        if let (Some(w), Some(b)) = (&spec.worker_name, bound)
            && b != Some(w.as_str())
        {
            binding.push(PlacementDrift {
                address: Address::source(name),
                desired: format!("bound to {w}"),
                observed: vec![match b {
                    Some(x) => format!("bound to {x}"),
                    None => "not bound to any worker".into(),
                }],
                errors: vec![],
            });
        }
        let (Some(r), Some(lr)) = (&spec.relay, live.relay_of(name)) else { continue };
        let flag = src.relay_config.as_ref().and_then(|c| c.enable_relay) == Some(true);
        let want: Option<BTreeSet<String>> = match (r.enabled, &r.workers) {
            (false, _) => Some(BTreeSet::new()),
            (true, Some(w)) => Some(w.iter().cloned().collect()),
            (true, None) => bound.map(|b| b.map(|x| BTreeSet::from([x.to_string()])).unwrap_or_default()),
        };
        let Some(want) = want else { continue };
        let mut observed = vec![];
        let mut errors = vec![];
        let mut drift = flag;
        if flag {
            observed.push("relay through relay_config.enable_relay (not by worker name)".to_string());
        }
        let all: BTreeSet<&String> = want.iter().chain(lr.workers.keys()).collect();
        for w in all {
            let state = lr.workers.get(w);
            let shown = match state {
                None => "not relaying".to_string(),
                Some(s) => match &s.stage {
                    Some(st) => st.to_string(),
                    None => "no relay status".to_string(),
                },
            };
            observed.push(format!("{w}: {shown}"));
            if let Some(e) = state.and_then(|s| s.error.as_ref()) {
                errors.push(format!("{w}: {}", e.trim()));
            }
            let wanted = want.contains(w);
            let running = state.is_some_and(|s| s.running());
            if wanted != running {
                drift = true;
            }
            if wanted {
                gauges.push(RelayWorkerState { source: name.clone(), worker: w.clone(), running });
            }
        }
        for m in &lr.unattributed {
            errors.push(format!("(unknown worker): {}", m.trim()));
        }
        if r.enabled && want.is_empty() {
            // Relay belongs on the bound worker, and there is none.
            drift = true;
            observed.push("not bound to any worker".into());
        }
        if drift {
            relay.push(PlacementDrift {
                address: Address::source(name),
                desired: if want.is_empty() && !r.enabled {
                    "no relay".to_string()
                } else if want.is_empty() {
                    "relay on the bound worker".to_string()
                } else {
                    format!("relay on {}", want.iter().cloned().collect::<Vec<_>>().join(", "))
                },
                observed,
                errors,
            });
        }
    }
    (relay, binding, gauges)
}

/// A Prometheus label value: backslash, double quote and line feed escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn fmt_attr(a: &AttributeChange) -> String {
    if a.sensitive {
        return format!("{}: (sensitive value) differs", a.path);
    }
    let show = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_else(|| "(absent)".into());
    format!("{}: DM has {}, configuration has {}", a.path, show(&a.before), show(&a.after))
}

/// Text report; ends with a one-line summary. Names and DM's messages are shown with control characters escaped.
pub fn render_text(r: &DriftReport) -> String {
    use crate::ui::sanitize::inline;
    let mut out = String::new();
    let _ = writeln!(out, "Configuration drift (DM differs from the configuration): {}", r.counts.config);
    for c in &r.config {
        let _ = writeln!(out, "  ~ {} (apply would {})", inline(&c.address.to_string()), c.action);
        for a in &c.attributes {
            let _ = writeln!(out, "      {}", inline(&fmt_attr(a)));
        }
    }
    let _ = writeln!(out, "Missing resources (declared, absent from DM): {}", r.counts.missing);
    for a in &r.missing {
        let _ = writeln!(out, "  + {}", inline(&a.to_string()));
    }
    let _ = writeln!(out, "Unmanaged resources (in DM, not declared): {}", r.counts.unmanaged);
    for a in &r.unmanaged {
        let _ = writeln!(out, "  ? {}", inline(&a.to_string()));
    }
    for (title, list, n) in [
        ("Relay drift (relay does not run as declared)", &r.relay, r.counts.relay),
        ("Binding drift (a source on another worker than declared)", &r.binding, r.counts.binding),
    ] {
        if n == 0 && list.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{title}: {n}");
        for d in list {
            let _ = writeln!(
                out,
                "  ! {} should have {}; observed {}",
                inline(&d.address.to_string()),
                inline(&d.desired),
                inline(&d.observed.join(", "))
            );
            for e in &d.errors {
                let _ = writeln!(out, "      DM error on {}", inline(e));
            }
        }
    }
    let _ = writeln!(out, "Stage drift: {}", r.counts.stage);
    for s in &r.stage {
        let _ = writeln!(
            out,
            "  ! {} should be {}; observed {}",
            inline(&s.address.to_string()),
            s.desired,
            inline(&s.observed.join(", "))
        );
        for e in &s.errors {
            let _ = writeln!(out, "      DM error on {}", inline(e));
        }
    }
    for w in &r.warnings {
        let _ = writeln!(out, "Warning: {}", inline(w));
    }
    if r.has_drift() {
        let placement = if r.counts.relay + r.counts.binding > 0 {
            format!(", {} relay, {} binding", r.counts.relay, r.counts.binding)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "Drift: {} config, {} missing, {} unmanaged, {} stage{placement}.",
            r.counts.config, r.counts.missing, r.counts.unmanaged, r.counts.stage
        );
    } else {
        let _ = writeln!(out, "No drift. DM cluster matches the configuration.");
    }
    out
}

pub fn render_json(r: &DriftReport, timestamp: u64) -> String {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.insert("timestamp".into(), serde_json::json!(timestamp));
        m.insert("has_drift".into(), serde_json::json!(r.has_drift()));
    }
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}

/// Prometheus text exposition. `report` is `None` when the check failed (`dm_apply_up 0`, no drift gauges).
pub fn prometheus_text(report: Option<&DriftReport>, timestamp: u64) -> String {
    let mut out = String::new();
    if let Some(r) = report {
        out.push_str("# HELP dm_apply_drift_resources Resources that differ from the configuration, by kind.\n");
        out.push_str("# TYPE dm_apply_drift_resources gauge\n");
        for (k, n) in [
            ("config", r.counts.config),
            ("missing", r.counts.missing),
            ("unmanaged", r.counts.unmanaged),
            ("stage", r.counts.stage),
            ("relay", r.counts.relay),
            ("binding", r.counts.binding),
        ] {
            let _ = writeln!(out, "dm_apply_drift_resources{{kind=\"{k}\"}} {n}");
        }
        if !r.relay_workers.is_empty() {
            out.push_str(
                "# HELP dm_apply_relay_running Whether relay runs without error on a declared relay worker.\n",
            );
            out.push_str("# TYPE dm_apply_relay_running gauge\n");
            for g in &r.relay_workers {
                let _ = writeln!(
                    out,
                    "dm_apply_relay_running{{source=\"{}\",worker=\"{}\"}} {}",
                    label(&g.source),
                    label(&g.worker),
                    u8::from(g.running)
                );
            }
        }
        out.push_str("# HELP dm_apply_drift Whether any drift was found (1) or none (0).\n");
        out.push_str("# TYPE dm_apply_drift gauge\n");
        let _ = writeln!(out, "dm_apply_drift {}", u8::from(r.has_drift()));
    }
    out.push_str("# HELP dm_apply_up Whether the last drift check could read DM-master and the configuration.\n");
    out.push_str("# TYPE dm_apply_up gauge\n");
    let _ = writeln!(out, "dm_apply_up {}", u8::from(report.is_some()));
    out.push_str("# HELP dm_apply_last_run_timestamp_seconds When the last drift check ran (Unix time).\n");
    out.push_str("# TYPE dm_apply_last_run_timestamp_seconds gauge\n");
    let _ = writeln!(out, "dm_apply_last_run_timestamp_seconds {timestamp}");
    out
}

/// Write the textfile atomically (node_exporter never reads a half-written file).
pub fn write_atomic(path: &Path, content: &str) -> std::io::Result<()> {
    crate::atomic::write(path, content.as_bytes(), crate::atomic::Mode::Default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dm::ServerVersion;
    use crate::dm::types::Unit;
    use crate::plan::testing::{desired_from_yaml, live_after_apply, status};

    const Y: &str = crate::plan::testing::ONE_SOURCE_ONE_TASK;

    #[test]
    fn kinds_are_reported_separately() {
        let v = ServerVersion::parse("v8.5.3");
        let d = desired_from_yaml("dm.yaml", Y).unwrap();
        let mut live = live_after_apply(&d, &v, 0);
        let r = report(&d, &live, Some(&crate::plan::testing::test_key()));
        assert!(!r.has_drift());
        assert!(render_text(&r).ends_with("No drift. DM cluster matches the configuration.\n"));
        live.sources.get_mut("s1").unwrap().enable = false;
        let t = live.tasks["t1"].task.clone();
        live.tasks.get_mut("t1").unwrap().status = Some(status(&t, Stage::Stopped, Unit::Sync));
        live.tasks.get_mut("t1").unwrap().task.target_config.user = "someone".into();
        let r = report(&d, &live, Some(&crate::plan::testing::test_key()));
        assert_eq!(r.counts, DriftCounts { config: 1, missing: 0, unmanaged: 0, stage: 2, relay: 0, binding: 0 });
        assert_eq!(r.config[0].action, "replace");
        assert!(r.stage.iter().any(|s| s.address == Address::source("s1") && s.desired == "enabled"));
        let prom = prometheus_text(Some(&r), 5);
        assert!(prom.contains("dm_apply_drift_resources{kind=\"stage\"} 2\n"));
        assert!(prom.contains("dm_apply_drift 1\n") && prom.contains("dm_apply_last_run_timestamp_seconds 5\n"));
        // `ignore_changes: [stage]` silences the task's stage drift.
        let d2 = desired_from_yaml("dm.yaml", &format!("{Y}    lifecycle: {{ignore_changes: [stage]}}\n")).unwrap();
        let r = report(&d2, &live, Some(&crate::plan::testing::test_key()));
        assert!(!r.stage.iter().any(|s| s.address == Address::task("t1")));
    }

    #[test]
    fn drift_holds_what_a_plain_apply_would_hold() {
        let v = ServerVersion::parse("v8.5.4");
        let yaml = Y.replace("task_mode: incremental", "task_mode: all");
        let d = desired_from_yaml("dm.yaml", &yaml).unwrap();
        let mut live = live_after_apply(&d, &v, 0);
        let t = live.tasks["t1"].task.clone();
        live.tasks.get_mut("t1").unwrap().status = Some(status(&t, Stage::Running, Unit::Dump));
        live.sources.get_mut("s1").unwrap().host = "h-old".into();
        let r = report(&d, &live, Some(&crate::plan::testing::test_key()));
        let s1 = r.config.iter().find(|c| c.address == Address::source("s1")).expect("the source drifts");
        // Reported as drift, but not as something --allow-restart (never given to drift) would allow.
        assert!(!s1.reasons.iter().any(|x| x.contains("allowed")), "{:?}", s1.reasons);
    }

    #[test]
    fn unavailable_status_is_reported_not_taken_for_running() {
        let v = ServerVersion::parse("v8.5.4");
        let d = desired_from_yaml("dm.yaml", Y).unwrap();
        let mut live = live_after_apply(&d, &v, 0);
        let lt = live.tasks.get_mut("t1").unwrap();
        lt.status = None;
        lt.status_error = Some("DM error 49001: worker's query-status response is nil".into());
        let r = report(&d, &live, Some(&crate::plan::testing::test_key()));
        assert_eq!(r.counts.stage, 1, "{r:?}");
        assert_eq!(r.stage[0].observed, ["status unavailable"]);
        assert!(r.stage[0].errors[0].contains("49001"));
        assert!(render_text(&r).contains("status unavailable"), "{}", render_text(&r));
    }

    #[test]
    fn relay_drift_and_gauges() {
        use crate::dm::types::ClusterWorker;
        use crate::live::{LiveRelay, RelayWorker};
        let v = ServerVersion::parse("v8.5.4");
        let yaml = Y.replace(
            "password: pw}",
            "password: pw, worker_name: w1, relay: {enabled: true, workers: [w1, \"w\\\"2\"]}}",
        );
        let d = desired_from_yaml("dm.yaml", &yaml).unwrap();
        let mut live = live_after_apply(&d, &v, 0);
        let w = |n: &str, st: &str, s: &str| ClusterWorker {
            name: n.into(),
            addr: String::new(),
            bound_stage: st.into(),
            bound_source_name: s.into(),
        };
        live.workers = Some(vec![w("w1", "bound", "s1"), w("w\"2", "relay", "")]);
        let relay = LiveRelay {
            workers: [
                ("w1".to_string(), RelayWorker { stage: Some(Stage::Running), error: None }),
                ("w\"2".to_string(), RelayWorker { stage: Some(Stage::Paused), error: Some("boom\n".into()) }),
            ]
            .into(),
            unattributed: vec![],
        };
        live.relay = Some([("s1".to_string(), relay)].into());
        let r = report(&d, &live, Some(&crate::plan::testing::test_key()));
        assert_eq!((r.counts.relay, r.counts.binding), (1, 0), "{r:?}");
        assert_eq!(r.relay[0].errors, ["w\"2: boom"]);
        let prom = prometheus_text(Some(&r), 1);
        assert!(prom.contains("dm_apply_relay_running{source=\"s1\",worker=\"w1\"} 1\n"), "{prom}");
        assert!(prom.contains("dm_apply_relay_running{source=\"s1\",worker=\"w\\\"2\"} 0\n"), "{prom}");
        // Bound elsewhere: binding drift.
        live.workers = Some(vec![w("w9", "bound", "s1")]);
        let r = report(&d, &live, Some(&crate::plan::testing::test_key()));
        assert_eq!(r.counts.binding, 1);
        assert_eq!(r.binding[0].observed, ["bound to w9"]);
    }

    #[test]
    fn atomic_write_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.prom");
        write_atomic(&p, "a 1\n").unwrap();
        write_atomic(&p, "a 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a 2\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert_eq!(prometheus_text(None, 9).lines().filter(|l| l.starts_with("dm_apply_up 0")).count(), 1);
    }
}
