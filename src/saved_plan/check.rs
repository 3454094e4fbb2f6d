//! What `apply --plan` checks before it runs a saved plan: nothing it depends on changed (stale), the apply's
//! options are the plan's, and the plan made again from the configuration and DM equals the file's.

use std::collections::{BTreeMap, BTreeSet};

use super::{SavedPlan, StageSnapshot, current_digest, desired_digest, stage_scope, stage_word, stages, state_digest};
use crate::config::Desired;
use crate::live::Live;
use crate::plan::{Address, Plan, PlanOptions, ResourceChange};
use crate::ui::sanitize::inline;

/// A saved plan that must not be applied because something changed since it was made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum StalePlanError {
    #[error("the saved plan was made for another DM cluster ({planned}), not {current}")]
    #[diagnostic(
        code(plan::stale_cluster),
        help(
            "apply it to the cluster it was made for (without --addr and DM_APPLY_ADDR, the address recorded in the \
             plan is used), or run `dm-apply plan --out FILE` against this cluster"
        )
    )]
    OtherCluster { planned: String, current: String },
    #[error("Saved plan is stale: DM-master's version changed from {planned} to {current}")]
    #[diagnostic(code(plan::stale_version), help("make a new plan"))]
    VersionChanged { planned: String, current: String },
    #[error("Saved plan is stale: the configuration changed since the plan was made (read {paths})")]
    #[diagnostic(
        code(plan::stale_config),
        help(
            "make a new plan from the current configuration; if this is not the configuration the plan was made \
             from, run apply where that one is, or point at it with -f"
        )
    )]
    ConfigChanged { paths: String },
    #[error(
        "Saved plan is stale: the runtime stage of these resources changed since the plan was made: {}",
        changes.join("; ")
    )]
    #[diagnostic(
        code(plan::stale_stage),
        help(
            "someone started, stopped, enabled or disabled them meanwhile (perhaps on purpose); nothing was \
             changed. Review with a new plan"
        )
    )]
    StageChanged { changes: Vec<String> },
    #[error("Saved plan is stale: these resources changed in DM since the plan was made: {}", resources.join(", "))]
    #[diagnostic(code(plan::stale_live), help("someone changed DM meanwhile; review with a new plan"))]
    LiveChanged { resources: Vec<String> },
    #[error("Saved plan is stale: dm-apply's state record in DM changed since the plan was made")]
    #[diagnostic(code(plan::stale_state), help("another apply ran meanwhile; make a new plan"))]
    StateChanged,
    #[error("the saved plan was made by dm-apply {version}, which did not record the runtime stages apply must check")]
    #[diagnostic(code(plan::stale_format), help("make a new plan with this dm-apply"))]
    NoStages { version: String },
}

/// A saved plan that is not what this apply would run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum RefusedPlan {
    #[error(
        "Saved plan refused: it was made with other options than this apply has: {}; options are never taken from \
         the file",
        differences.join("; ")
    )]
    #[diagnostic(
        code(plan::saved_options),
        help(
            "nothing was changed. Give apply --plan the --prune, --target and --replace flags the plan was made with"
        )
    )]
    OptionsDiffer { differences: Vec<String> },
    #[error(
        "Saved plan refused: it differs from the plan the configuration and DM give now (an edited file is not what \
         was reviewed): {}",
        differences.join("; ")
    )]
    #[diagnostic(
        code(plan::saved_mismatch),
        help(
            "nothing was changed. Make and review a new plan (`dm-apply plan --out FILE`). A plan made with a state \
             key (DM_APPLY_STATE_KEY) needs the same key here"
        )
    )]
    Mismatch { differences: Vec<String> },
}

/// Refuse a plan made for another cluster, from another configuration, or whose resources or their stages changed
/// in DM. `config` names where the configuration was read (for the message).
pub fn verify(saved: &SavedPlan, desired: &Desired, live: &Live, config: &str) -> Result<(), StalePlanError> {
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
        return Err(StalePlanError::ConfigChanged { paths: config.to_string() });
    }
    let Some(planned_stages) = &saved.stages else {
        return Err(StalePlanError::NoStages { version: saved.dm_apply_version.clone() });
    };
    let changes = stage_changes(planned_stages, &stages(live, &stage_scope(&saved.plan, desired)));
    if !changes.is_empty() {
        return Err(StalePlanError::StageChanged { changes });
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

/// `task.x (s1: Running -> Paused)` for every resource whose stage differs.
fn stage_changes(planned: &BTreeMap<Address, StageSnapshot>, now: &BTreeMap<Address, StageSnapshot>) -> Vec<String> {
    let addresses: BTreeSet<&Address> = planned.keys().chain(now.keys()).collect();
    addresses
        .into_iter()
        .filter(|a| planned.get(*a) != now.get(*a))
        .map(|a| format!("{a} ({})", stage_change(planned.get(a), now.get(a))))
        .collect()
}

/// What changed between two stages: per subtask when both list the same subtasks, else the whole of each.
fn stage_change(was: Option<&StageSnapshot>, now: Option<&StageSnapshot>) -> String {
    if let (Some(StageSnapshot::Task { subtasks: Some(a) }), Some(StageSnapshot::Task { subtasks: Some(b) })) =
        (was, now)
        && a.keys().eq(b.keys())
    {
        let parts: Vec<String> = a
            .iter()
            .zip(b.values())
            .filter(|((_, x), y)| x != y)
            .map(|((source, x), y)| format!("{}: {} -> {}", inline(source), stage_word(x), stage_word(y)))
            .collect();
        return parts.join(", ");
    }
    let show = |s: Option<&StageSnapshot>| s.map_or_else(|| "not in DM".to_string(), |s| s.to_string());
    format!("{} -> {}", show(was), show(now))
}

/// The apply's options must be those the plan was made with. `--allow-restart` is not compared: the restart guard
/// is checked again from the configuration and the apply's own flag when the plan is made again.
pub fn same_options(saved: &SavedPlan, opts: &PlanOptions) -> Result<(), RefusedPlan> {
    let mut differences = vec![];
    let with = |b: bool| if b { "with it" } else { "without it" };
    if saved.options.prune != opts.prune {
        differences.push(format!(
            "--prune (the plan was made {}, this apply runs {})",
            with(saved.options.prune),
            with(opts.prune)
        ));
    }
    let list = |v: &[Address]| -> String {
        let set: BTreeSet<String> = v.iter().map(|a| a.to_string()).collect();
        if set.is_empty() { "none".to_string() } else { set.into_iter().collect::<Vec<_>>().join(", ") }
    };
    for (flag, planned, now) in
        [("--target", &saved.options.targets, &opts.targets), ("--replace", &saved.options.replace, &opts.replace)]
    {
        if list(planned) != list(now) {
            differences.push(format!("{flag} (the plan: {}; this apply: {})", list(planned), list(now)));
        }
    }
    if differences.is_empty() { Ok(()) } else { Err(RefusedPlan::OptionsDiffer { differences }) }
}

/// The plan made again (`now`) must equal the file's (`file`) in everything apply acts on: per resource its
/// actions, runtime actions, impact, hold, desired stage, what is sent and recorded, its dependencies and the
/// changed attributes reviewers saw; for the plan, its targets, prune and state record.
pub fn same_plan(file: &Plan, now: &Plan) -> Result<(), RefusedPlan> {
    let mut differences = vec![];
    let by_address = |p: &Plan| -> BTreeMap<Address, ResourceChange> {
        p.changes.iter().map(|c| (c.address.clone(), c.clone())).collect()
    };
    let (file_changes, now_changes) = (by_address(file), by_address(now));
    if file_changes.len() != file.changes.len() {
        differences.push("the file lists a resource more than once".to_string());
    }
    let addresses: BTreeSet<&Address> = file_changes.keys().chain(now_changes.keys()).collect();
    for a in addresses {
        match (file_changes.get(a), now_changes.get(a)) {
            (Some(f), None) if !f.is_noop() || f.record.is_some() => differences.push(format!(
                "{a}: the file plans `{}`, the configuration and DM give no change",
                f.actions().join(", ")
            )),
            (None, Some(n)) if !n.is_noop() || n.record.is_some() => differences.push(format!(
                "{a}: the configuration and DM give `{}`, the file has no change for it",
                n.actions().join(", ")
            )),
            (Some(f), Some(n)) => {
                if let Some(d) = change_difference(f, n) {
                    differences.push(format!("{a}: {d}"));
                }
            }
            _ => {}
        }
    }
    if file.prune != now.prune {
        differences.push(format!("prune: the file says {}, this apply {}", file.prune, now.prune));
    }
    let targets = |p: &Plan| p.targets.iter().map(|a| a.to_string()).collect::<BTreeSet<_>>();
    if targets(file) != targets(now) {
        differences.push("the file's targets differ".to_string());
    }
    if file.state != now.state {
        differences.push("what apply writes to dm-apply's state record differs".to_string());
    }
    if differences.is_empty() { Ok(()) } else { Err(RefusedPlan::Mismatch { differences }) }
}

/// How one resource's change in the file differs from the one made now (`None`: it does not).
fn change_difference(f: &ResourceChange, n: &ResourceChange) -> Option<String> {
    if f.actions() != n.actions() {
        return Some(format!(
            "the file plans `{}`, the configuration and DM give `{}`",
            f.actions().join(", "),
            n.actions().join(", ")
        ));
    }
    if f.impact != n.impact {
        return Some(format!(
            "the file says the impact is \"{}\", it is \"{}\"",
            f.impact.describe(),
            n.impact.describe()
        ));
    }
    let hold = |c: &ResourceChange| c.hold.as_ref().map(|h| h.kind);
    let aspects = [
        (hold(f) != hold(n), "whether it is deferred or blocked"),
        (f.desired_stage != n.desired_stage, "the stage it leaves the task in"),
        (f.send_password != n.send_password, "whether the password is sent"),
        (f.record != n.record, "what is recorded in dm-apply's state record"),
        (f.depends_on != n.depends_on, "its dependencies"),
        (f.attributes != n.attributes, "the changed attributes"),
    ];
    let differ: Vec<&str> = aspects.iter().filter(|(d, _)| *d).map(|(_, what)| *what).collect();
    (!differ.is_empty()).then(|| format!("the file differs in {}", differ.join(", ")))
}
