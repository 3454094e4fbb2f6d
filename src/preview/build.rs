//! From what was read to the preview: per task and source, the tables replicated before and after, the
//! differences, the warnings and the comparison with DM's migrate targets. Pure (no I/O).

use std::collections::{BTreeMap, BTreeSet};

use super::fetch::{Catalog, Fetched};
use super::matching::{Case, RuleView, SourceRules, has_upper, is_system_schema};
use super::model::*;
use crate::dm::types::{Stage, SubTaskStatus, Task, TaskMigrateTarget, Unit};
use crate::plan::Address;

/// One task to preview.
pub struct TaskInput<'a> {
    pub address: Address,
    /// `create`, `update` or `replace`.
    pub action: &'static str,
    /// The task in DM now (absent for a create).
    pub before: Option<&'a Task>,
    /// The task as apply sends it.
    pub after: &'a Task,
    /// The live status of its subtasks (absent when DM could not tell).
    pub status: Option<&'a [SubTaskStatus]>,
}

/// The sources of a task (`source_conf`): rules of other sources are dropped by DM (docs/dm-behaviour.md R5.10).
pub fn sources_of(task: &Task) -> Vec<&str> {
    task.source_config.source_conf.iter().map(|c| c.source_name.as_str()).collect()
}

/// Whether DM can answer migrate targets for this subtask now (docs/dm-behaviour.md R13.6), or why not.
pub fn cross_check_possible(status: Option<&[SubTaskStatus]>, source: &str) -> Result<(), String> {
    let Some(status) = status else { return Err("the task's status could not be read".into()) };
    let Some(sub) = status.iter().find(|s| s.source_name == source) else {
        return Err("DM reported no status for this subtask".into());
    };
    if matches!(sub.stage, Stage::Running | Stage::Paused) && sub.unit == Unit::Sync {
        Ok(())
    } else {
        Err(format!(
            "DM answers migrate targets only for a subtask Running or Paused in the Sync unit; this one is {} in {}",
            sub.stage.as_str(),
            sub.unit.as_str()
        ))
    }
}

/// The case sensitivity to compute with, and how it is known.
fn case_for(known_sensitive: bool, rules: &[&Task], source: &str) -> (Case, CaseView) {
    if known_sensitive {
        return (Case::Sensitive, CaseView::Sensitive);
    }
    let upper = rules
        .iter()
        .flat_map(|t| t.table_migrate_rule.iter())
        .any(|r| r.source.source_name == source && (has_upper(&r.source.schema) || has_upper(&r.source.table)));
    if upper { (Case::Insensitive, CaseView::AssumedInsensitive) } else { (Case::Sensitive, CaseView::Irrelevant) }
}

/// Whether a catalog shows that the upstream is case-sensitive (a case-insensitive MySQL, with
/// `lower_case_table_names=1`, stores every name in lower case).
fn names_have_upper(cat: &Catalog) -> bool {
    cat.schemas.iter().any(|s| has_upper(s)) || cat.tables().any(|(_, t)| has_upper(t))
}

type Replicated = BTreeMap<(String, String), (Target, Option<usize>)>;

fn replicated(rules: &SourceRules, cat: &Catalog) -> Replicated {
    let mut out = BTreeMap::new();
    for (s, t) in cat.tables() {
        if rules.allows(s, t) {
            let r = rules.route(s, t);
            out.insert((s.to_string(), t.to_string()), (Target { schema: r.schema, table: r.table }, r.ambiguous));
        }
    }
    out
}

fn mapping(key: &(String, String), target: &Target) -> Mapping {
    Mapping { schema: key.0.clone(), table: key.1.clone(), target: target.clone() }
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {one}s") }
}

fn sample<'a>(names: impl Iterator<Item = &'a str>, n: usize) -> String {
    let v: Vec<&str> = names.collect();
    let mut s = v.iter().take(n).map(|x| format!("`{x}`")).collect::<Vec<_>>().join(", ");
    if v.len() > n {
        s.push_str(&format!(" and {} more", v.len() - n));
    }
    s
}

struct SourceOutcome {
    preview: SourcePreview,
    after: Option<Replicated>,
    warnings: Vec<PreviewWarning>,
}

fn warn(kind: WarningKind, source: &str, message: String) -> PreviewWarning {
    PreviewWarning { kind, source: Some(source.to_string()), message }
}

/// Warnings about the rules of one source (after the change), given what they replicate.
fn rule_warnings(
    source: &str,
    rules: &SourceRules,
    twin: &SourceRules,
    cat: &Catalog,
    after: &Replicated,
    view: CaseView,
) -> Vec<PreviewWarning> {
    let mut out = vec![];
    let matched = |r: &RuleView, case: Case| -> Vec<(String, String)> {
        cat.tables()
            .filter(|(s, t)| !is_system_schema(s) && r.matches(case, s, t))
            .map(|(s, t)| (s.to_string(), t.to_string()))
            .collect()
    };
    for (i, r) in rules.rules.iter().enumerate() {
        if r.schema.is_none() {
            continue;
        }
        let hits = matched(r, rules.case);
        if hits.is_empty() {
            if !cat.complete() {
                continue;
            }
            let system = r.schema.as_ref().is_some_and(|p| is_system_schema(&p.text));
            let mut msg = format!("rule `{}` of source {source} matches no upstream table", r.label);
            if system {
                msg.push_str(" (DM never replicates system schemas)");
            } else if rules.case == Case::Sensitive
                && let Some(other) = twin.rules.get(i)
            {
                let ci = matched(other, Case::Insensitive);
                if !ci.is_empty() {
                    msg.push_str(&format!(
                        "; ignoring case it would match {}: this upstream compares names with case",
                        sample(
                            ci.iter().map(|(s, t)| format!("{s}.{t}")).collect::<Vec<_>>().iter().map(String::as_str),
                            3
                        )
                    ));
                }
            }
            out.push(warn(WarningKind::RuleMatchesNothing, source, msg));
            continue;
        }
        if !hits.iter().any(|k| after.contains_key(k)) {
            out.push(warn(
                WarningKind::RuleHasNoEffect,
                source,
                format!(
                    "rule `{}` of source {source} matches {} but DM replicates none of them: when a source has both \
                     schema rules (table \"\") and table rules, DM replicates only tables that match one of each",
                    r.label,
                    plural(hits.len(), "upstream table")
                ),
            ));
        }
        if view == CaseView::AssumedInsensitive && r.has_upper {
            // What the same rule matches on a case-sensitive upstream.
            let cs = twin.rules.get(i).map(|t| matched(t, Case::Sensitive).len());
            out.push(warn(
                WarningKind::CaseOnlyDifference,
                source,
                format!(
                    "rule `{}` of source {source} has upper-case letters and the upstream's names are all lower case: \
                     on a case-insensitive upstream (lower_case_table_names 1 or 2) DM lowercases the pattern and it \
                     matches {} (shown here); on a case-sensitive one it matches {}. DM's API does not say which this \
                     upstream is",
                    r.label,
                    plural(hits.len(), "table"),
                    plural(cs.unwrap_or(0), "table")
                ),
            ));
        }
    }
    let ambiguous: Vec<String> =
        after.iter().filter_map(|((s, t), (_, a))| a.map(|n| format!("{s}.{t} ({n} routes)"))).collect();
    if !ambiguous.is_empty() {
        out.push(warn(
            WarningKind::RouteAmbiguous,
            source,
            format!(
                "{} of source {source} match more than one route on the same level ({}): DM's router refuses to \
                 choose, and the syncer then keeps their own names",
                plural(ambiguous.len(), "table"),
                sample(ambiguous.iter().map(String::as_str), 5)
            ),
        ));
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn source_outcome(
    input: &TaskInput,
    source: &str,
    catalog: Option<&Result<Catalog, String>>,
    targets: Option<&Result<Vec<TaskMigrateTarget>, String>>,
    stored_upper: &BTreeSet<String>,
) -> SourceOutcome {
    let in_before = input.before.is_some_and(|t| sources_of(t).contains(&source));
    let in_after = sources_of(input.after).contains(&source);
    let mut tasks: Vec<&Task> = vec![input.after];
    tasks.extend(input.before);
    let empty = |case: CaseView, error: String| SourceOutcome {
        preview: SourcePreview {
            source: source.to_string(),
            case,
            error: Some(error),
            complete: false,
            before: None,
            after: None,
            starts: TableList::default(),
            stops: TableList::default(),
            reroutes: RerouteList::default(),
            cross_check: None,
        },
        after: None,
        warnings: vec![],
    };
    let cat = match catalog {
        Some(Ok(c)) => c,
        Some(Err(e)) => return empty(CaseView::Irrelevant, e.clone()),
        None => return empty(CaseView::Irrelevant, "not read".into()),
    };
    let known = stored_upper.contains(source) || names_have_upper(cat);
    let (case, view) = case_for(known, &tasks, source);
    let before_rules = input.before.filter(|_| in_before).map(|t| SourceRules::from_task(t, source, case));
    let after_rules = in_after.then(|| SourceRules::from_task(input.after, source, case));
    let mut warnings = vec![];
    if let Some(r) = &after_rules
        && !r.invalid.is_empty()
    {
        warnings.push(warn(
            WarningKind::InvalidPattern,
            source,
            format!("DM refuses the task as written: {}", r.invalid.join("; ")),
        ));
        let mut o = empty(view, "a pattern DM refuses; nothing to preview for this source".into());
        o.warnings = warnings;
        return o;
    }
    let before = before_rules.as_ref().map(|r| replicated(r, cat));
    let after = after_rules.as_ref().map(|r| replicated(r, cat));
    let (mut starts, mut stops, mut reroutes) = (TableList::default(), TableList::default(), RerouteList::default());
    let none = Replicated::new();
    let (b, a) = (before.as_ref().unwrap_or(&none), after.as_ref().unwrap_or(&none));
    for (k, (t, _)) in a {
        match b.get(k) {
            None => starts.push(mapping(k, t)),
            Some((bt, _)) if !bt.same_as(t) => {
                reroutes.push(Reroute { schema: k.0.clone(), table: k.1.clone(), before: bt.clone(), after: t.clone() })
            }
            Some(_) => {}
        }
    }
    for (k, (t, _)) in b {
        if !a.contains_key(k) {
            stops.push(mapping(k, t));
        }
    }
    if let (Some(rules), Some(after)) = (&after_rules, &after) {
        let other = if case == Case::Sensitive { Case::Insensitive } else { Case::Sensitive };
        let twin = SourceRules::from_task(input.after, source, other);
        warnings.extend(rule_warnings(source, rules, &twin, cat, after, view));
    }
    let complete = cat.complete();
    match (&before, &after) {
        (Some(b), Some(a)) if !b.is_empty() && a.is_empty() && complete => warnings.push(warn(
            WarningKind::DropsAllTables,
            source,
            format!("this change stops every table of source {source} ({}) in this task", plural(b.len(), "table")),
        )),
        (Some(b), None) if !b.is_empty() => warnings.push(warn(
            WarningKind::DropsAllTables,
            source,
            format!("source {source} leaves the task: its {} stop replicating", plural(b.len(), "table")),
        )),
        (_, Some(a)) if a.is_empty() && complete && before.as_ref().is_none_or(|b| b.is_empty()) => warnings.push(
            warn(WarningKind::ReplicatesNothing, source, format!("the task replicates no table of source {source}")),
        ),
        _ => {}
    }
    let cross_check = match (&before_rules, &before) {
        (Some(rules), Some(b)) => Some(cross_check(input, source, rules, b, cat, targets)),
        _ => None,
    };
    if let Some(cc) = &cross_check
        && cc.status == CrossStatus::Disagrees
    {
        warnings.push(warn(
            WarningKind::ModelDisagrees,
            source,
            format!(
                "DM's migrate targets for source {source} disagree with dm-apply's computation of what the task \
                 replicates now ({} only in DM's list, {} only in dm-apply's, {} routed differently): DM's schema \
                 tracker lists only tables it has seen, but a table only DM lists, or routed differently, means \
                 dm-apply's model of DM's matching is wrong for this task; both lists are shown",
                cc.only_in_dm.count, cc.only_in_dm_apply.count, cc.routed_differently.count
            ),
        ));
    }
    SourceOutcome {
        preview: SourcePreview {
            source: source.to_string(),
            case: view,
            error: None,
            complete,
            before: before.as_ref().map(BTreeMap::len),
            after: after.as_ref().map(BTreeMap::len),
            starts,
            stops,
            reroutes,
            cross_check,
        },
        after,
        warnings,
    }
}

fn cross_check(
    input: &TaskInput,
    source: &str,
    rules: &SourceRules,
    before: &Replicated,
    cat: &Catalog,
    targets: Option<&Result<Vec<TaskMigrateTarget>, String>>,
) -> CrossCheck {
    let unavailable = |detail: String| CrossCheck {
        status: CrossStatus::Unavailable,
        detail: Some(detail),
        dm_tables: 0,
        only_in_dm: TableList::default(),
        only_in_dm_apply: TableList::default(),
        routed_differently: RerouteList::default(),
    };
    if let Err(e) = cross_check_possible(input.status, source) {
        return unavailable(e);
    }
    let list = match targets {
        Some(Ok(l)) => l,
        Some(Err(e)) => return unavailable(format!("DM answered: {e}")),
        None => return unavailable("not read".into()),
    };
    let fold = |s: &str| if rules.case == Case::Insensitive { s.to_lowercase() } else { s.to_string() };
    let mut dm: BTreeMap<(String, String), (String, String, Target)> = BTreeMap::new();
    for m in list {
        dm.insert(
            (fold(&m.source_schema), fold(&m.source_table)),
            (
                m.source_schema.clone(),
                m.source_table.clone(),
                Target { schema: m.target_schema.clone(), table: m.target_table.clone() },
            ),
        );
    }
    let (mut only_dm, mut only_us, mut routed) = (TableList::default(), TableList::default(), RerouteList::default());
    for (s, t, target) in dm.values() {
        if !rules.allows(s, t) {
            only_dm.push(Mapping { schema: s.clone(), table: t.clone(), target: target.clone() });
            continue;
        }
        let r = rules.route(s, t);
        let ours = Target { schema: r.schema, table: r.table };
        if !ours.same_as(target) {
            routed.push(Reroute { schema: s.clone(), table: t.clone(), before: ours, after: target.clone() });
        }
    }
    let read: BTreeSet<&str> = cat.tables.iter().filter(|(_, t)| t.is_ok()).map(|(s, _)| s.as_str()).collect();
    for (k, (target, _)) in before {
        if read.contains(k.0.as_str()) && !dm.contains_key(&(fold(&k.0), fold(&k.1))) {
            only_us.push(mapping(k, target));
        }
    }
    let agrees = only_dm.count == 0 && only_us.count == 0 && routed.count == 0;
    CrossCheck {
        status: if agrees { CrossStatus::Agrees } else { CrossStatus::Disagrees },
        detail: None,
        dm_tables: dm.len(),
        only_in_dm: only_dm,
        only_in_dm_apply: only_us,
        routed_differently: routed,
    }
}

/// Several upstream tables (from any source of the task) into one target table, without shard mode.
fn merge_warnings(task: &Task, afters: &[(String, &Replicated)]) -> Vec<PreviewWarning> {
    if task.shard_mode.is_some() {
        return vec![];
    }
    let mut by_target: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (source, after) in afters {
        for ((s, t), (target, _)) in after.iter() {
            by_target
                .entry((target.schema.to_lowercase(), target.table.to_lowercase()))
                .or_default()
                .push(format!("{source}:{s}.{t}"));
        }
    }
    let merged: Vec<_> = by_target.into_iter().filter(|(_, v)| v.len() > 1).collect();
    if merged.is_empty() {
        return vec![];
    }
    let mut parts = vec![];
    for ((ts, tt), from) in merged.iter().take(10) {
        parts.push(format!("{ts}.{tt} <- {}", sample(from.iter().map(String::as_str), 4)));
    }
    if merged.len() > 10 {
        parts.push(format!("and {} more target tables", merged.len() - 10));
    }
    vec![PreviewWarning {
        kind: WarningKind::RouteMerge,
        source: None,
        message: format!(
            "{} several upstream tables, but the task has no shard_mode, so DM does not coordinate their DDL: {}",
            if merged.len() == 1 {
                "1 target table receives".to_string()
            } else {
                format!("{} target tables receive", merged.len())
            },
            parts.join("; ")
        ),
    }]
}

/// The preview of one task.
pub fn task_preview(input: &TaskInput, fetched: &Fetched, stored_upper: &BTreeSet<String>) -> TaskPreview {
    let mut sources: Vec<&str> = sources_of(input.after);
    for s in input.before.map(sources_of).unwrap_or_default() {
        if !sources.contains(&s) {
            sources.push(s);
        }
    }
    sources.sort_unstable();
    sources.dedup();
    let mut out = TaskPreview {
        address: input.address.clone(),
        action: input.action.to_string(),
        before: input.before.map(|_| 0),
        after: 0,
        starts: 0,
        stops: 0,
        reroutes: 0,
        sources: vec![],
        warnings: vec![],
    };
    let mut afters = vec![];
    let mut outcomes = vec![];
    for s in sources {
        let key = (input.address.name.clone(), s.to_string());
        let o = source_outcome(input, s, fetched.catalogs.get(s), fetched.targets.get(&key), stored_upper);
        outcomes.push(o);
    }
    for o in &outcomes {
        let p = &o.preview;
        out.before = out.before.map(|b| b + p.before.unwrap_or(0));
        out.after += p.after.unwrap_or(0);
        out.starts += p.starts.count;
        out.stops += p.stops.count;
        out.reroutes += p.reroutes.count;
        out.warnings.extend(o.warnings.iter().cloned());
        if let Some(a) = &o.after {
            afters.push((p.source.clone(), a));
        }
    }
    out.warnings.extend(merge_warnings(input.after, &afters));
    out.sources = outcomes.into_iter().map(|o| o.preview).collect();
    out
}
