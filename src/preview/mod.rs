//! The replication preview: for each task a plan creates, replaces or updates in its table rules, the upstream
//! tables it replicates before and after, and where each goes, computed from the upstreams' live table lists with
//! DM's own matching (docs/plan.md "Preview").
//!
//! It runs after the plan is made, as a separate step, and never changes the plan's actions. It reads only what
//! the changed tasks need ([`fetch`]); a plan without such changes sends no request for it.
//!
//! - [`matching`]: DM's block-allow list, routes and case handling;
//! - [`fetch`]: the bounded, concurrent reads;
//! - [`build`]: the comparison and the warnings (pure);
//! - [`model`]: what plans carry.

pub mod build;
pub mod fetch;
pub mod matching;
pub mod model;

use std::collections::{BTreeMap, BTreeSet};

pub use fetch::Limits;
pub use model::*;

use crate::dm::DmClient;
use crate::dm::types::Task;
use crate::live::Live;
use crate::plan::{ConfigAction, DesiredPayload, Kind, Plan, ResourceChange};
use build::TaskInput;
use matching::{Case, SourceRules, has_upper};

/// Whether a change alters which tables a task replicates or where they go.
fn previewed(c: &ResourceChange) -> Option<&'static str> {
    if c.address.kind != Kind::Task {
        return None;
    }
    match c.action {
        ConfigAction::Create => Some("create"),
        ConfigAction::Replace => Some("replace"),
        ConfigAction::Update
            if c.attributes.iter().any(|a| crate::normalize::path_matches(&a.path, "table_migrate_rule")) =>
        {
            Some("update")
        }
        _ => None,
    }
}

/// The tasks of `plan` to preview, with what they replicate from.
fn inputs<'a>(plan: &'a Plan, live: &'a Live) -> Vec<TaskInput<'a>> {
    let mut out = vec![];
    for c in &plan.changes {
        let Some(action) = previewed(c) else { continue };
        let Some(DesiredPayload::Task(after)) = &c.desired else { continue };
        let existing = live.tasks.get(&c.address.name).filter(|_| action != "create");
        out.push(TaskInput {
            address: c.address.clone(),
            action,
            before: existing.map(|t| &t.task),
            after,
            status: existing.and_then(|t| t.status.as_deref()),
        });
    }
    out
}

/// Sources whose stored patterns (in any task in DM) have upper-case letters: DM lowercases patterns on a
/// case-insensitive upstream when it stores them (docs/dm-behaviour.md R5.10, R9.7), so these upstreams are
/// case-sensitive.
fn stored_upper(live: &Live) -> BTreeSet<String> {
    live.tasks
        .values()
        .flat_map(|t| t.task.table_migrate_rule.iter())
        .filter(|r| has_upper(&r.source.schema) || has_upper(&r.source.table))
        .map(|r| r.source.source_name.clone())
        .collect()
}

/// The preview of `plan`, or `None` when no change needs one (then nothing is read).
pub async fn compute(client: &DmClient, plan: &Plan, live: &Live, limits: Limits) -> Option<Preview> {
    let inputs = inputs(plan, live);
    if inputs.is_empty() {
        return None;
    }
    // Every source any previewed task reads from, with the rule sets (in both case modes: which one applies is
    // decided once the names are known) whose schemas matter.
    let mut sources: BTreeMap<String, Vec<SourceRules>> = BTreeMap::new();
    let mut targets = vec![];
    for i in &inputs {
        let tasks: Vec<&Task> = std::iter::once(i.after).chain(i.before).collect();
        for t in tasks {
            for s in build::sources_of(t) {
                let e = sources.entry(s.to_string()).or_default();
                for case in [Case::Sensitive, Case::Insensitive] {
                    e.push(SourceRules::from_task(t, s, case));
                }
            }
        }
        if let Some(before) = i.before {
            for s in build::sources_of(before) {
                if build::cross_check_possible(i.status, s).is_ok() {
                    targets.push((i.address.name.clone(), s.to_string()));
                }
            }
        }
    }
    // A source the plan creates cannot be asked yet.
    let mut not_yet = BTreeMap::new();
    sources.retain(|s, _| {
        let exists = live.sources.contains_key(s);
        if !exists {
            not_yet.insert(
                s.clone(),
                Err(format!("source {s} does not exist in DM yet: its tables can be previewed once it is created")),
            );
        }
        exists
    });
    let mut fetched = fetch::fetch(client, &fetch::Wants { sources, targets }, limits).await;
    fetched.catalogs.extend(not_yet);
    let mut notes = std::mem::take(&mut fetched.notes);
    for c in &plan.changes {
        if c.address.kind == Kind::Source
            && matches!(c.action, ConfigAction::Update | ConfigAction::Replace)
            && c.attributes.iter().any(|a| a.path == "host" || a.path == "port")
            && fetched.catalogs.contains_key(&c.address.name)
        {
            notes.push(format!(
                "source {} changes its connection in this plan: its tables were listed from the upstream DM \
                 connects to now",
                c.address.name
            ));
        }
    }
    let upper = stored_upper(live);
    let tasks = inputs.iter().map(|i| build::task_preview(i, &fetched, &upper)).collect();
    Some(Preview { tasks, truncated: fetched.truncated, requests: fetched.requests, notes })
}
