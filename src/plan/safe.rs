//! What makes a change to a running task safe: which unit a task is in, whether shard DDL coordination is under
//! way, where a replacement starts (its checkpoint, or from scratch), which upstreams fold letter case, and what
//! looks like an undeclared rename. Pure helpers of the planner (docs/apply.md "Safe changes").

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::model::{Hold, HoldWait, Impact, WaitUntil};
use crate::dm::ServerVersion;
use crate::dm::types::{Stage, SubTaskStatus, Task, Unit};
use crate::live::LiveTask;

/// Modes whose tasks replicate the binlog (have a Sync unit).
pub fn mode_syncs(mode: &str) -> bool {
    matches!(mode, "incremental" | "all")
}

// ------------------------------------------------------------------------------------------------ shard DDL

/// DM's shard DDL coordination state of one subtask, when there is any.
fn ddl_state(s: &SubTaskStatus) -> Option<String> {
    let lock = s.unresolved_ddl_lock_id.as_deref().map(str::trim).filter(|l| !l.is_empty());
    let sync = s.sync_status.as_ref();
    let ddls = sync.map(|x| x.blocking_ddls.as_slice()).unwrap_or(&[]);
    let groups = sync.map(|x| x.unresolved_groups.as_slice()).unwrap_or(&[]);
    if lock.is_none() && ddls.is_empty() && groups.is_empty() {
        return None;
    }
    let mut parts = vec![];
    if let Some(l) = lock {
        parts.push(format!("lock {l}"));
    }
    if !ddls.is_empty() {
        parts.push(format!("blocking DDLs: {}", ddls.join("; ")));
    }
    for g in groups {
        let mut p = format!("group {}", g.target);
        if !g.ddl_list.is_empty() {
            p.push_str(&format!(" DDLs [{}]", g.ddl_list.join("; ")));
        }
        p.push_str(&format!(" synced [{}] unsynced [{}]", g.synced.join(", "), g.unsynced.join(", ")));
        parts.push(p);
    }
    Some(format!("{}: {}", s.source_name, parts.join(", ")))
}

/// A task that waits in shard DDL coordination (an unresolved DDL lock, blocking DDLs or unresolved groups) must not
/// be stopped, updated or replaced: a stop and restart can break or wedge the coordination (docs/dm-behaviour.md
/// R6.6, R8.11). `what` says which change is held ("update", "stop", "replace", ...).
pub fn shard_ddl_hold(lt: &LiveTask, what: &str) -> Option<Hold> {
    let states: Vec<String> = lt.status.as_ref()?.iter().filter_map(ddl_state).collect();
    if states.is_empty() {
        return None;
    }
    let name = &lt.task.name;
    Some(Hold::blocked(
        format!(
            "task {name} is in shard DDL coordination ({}); stopping it for the {what} could break or wedge the \
             coordination",
            states.join("; ")
        ),
        format!(
            "let the coordination finish (the other shards must reach the DDL; see `dmctl shard-ddl-lock` and \
             `dmctl query-status {name}`), or resolve the lock by hand, then apply again"
        ),
    ))
}

/// The source change stops `tasks`; held when one of them is in shard DDL coordination.
pub fn source_stop_hold(source: &str, tasks: &[&LiveTask], what: &str) -> Option<Hold> {
    let held: Vec<Hold> =
        tasks.iter().filter_map(|t| shard_ddl_hold(t, &format!("{what} of source {source}"))).collect();
    if held.is_empty() {
        return None;
    }
    Some(Hold::blocked(
        held.iter().map(|h| h.reason.as_str()).collect::<Vec<_>>().join("; "),
        held.first().map(|h| h.remedy.clone()).unwrap_or_default(),
    ))
}

// ------------------------------------------------------------------------------------------------ dump

/// Whether `lt`'s subtask on `source` is running its dump. DM's dump unit cannot resume: a subtask stopped there
/// dumps again from the start when it runs again (docs/dm-behaviour.md R8.16).
fn dumping_on(lt: &LiveTask, source: &str) -> bool {
    lt.status.iter().flatten().any(|s| s.source_name == source && s.unit == Unit::Dump && s.stage == Stage::Running)
}

/// What stopping tasks mid-dump means for a source change.
#[derive(Debug, PartialEq, Eq)]
pub enum DumpStop {
    /// No task it stops is dumping.
    Nothing,
    /// Some are, and the operator allowed their dumps to start over: the reason to show.
    Allowed(String),
    /// Some are, and their dumps would be lost: wait until they are done.
    Held(Hold),
}

/// A source change that stops the subtasks on `source` of `tasks` (`what`: "update", "disable") while some of them
/// dump. `on_purpose`: stopping them is what the configuration asks (a disable), so it is only said.
/// `allowed(task)`: the operator accepts that the task's migration starts over (`--allow-restart`,
/// `lifecycle.allow_restart`).
pub fn dump_stop(
    source: &str,
    tasks: &[&LiveTask],
    what: &str,
    on_purpose: bool,
    allowed: impl Fn(&str) -> bool,
) -> DumpStop {
    let dumping: Vec<&str> = tasks.iter().filter(|t| dumping_on(t, source)).map(|t| t.task.name.as_str()).collect();
    if dumping.is_empty() {
        return DumpStop::Nothing;
    }
    let list = |d: &[&str]| d.iter().map(|t| format!("{t} (on {source})")).collect::<Vec<_>>().join(", ");
    let lost = "DM cannot resume a dump, so a task stopped in it dumps again from the start when it runs again";
    let held: Vec<&str> = dumping.iter().copied().filter(|t| !on_purpose && !allowed(t)).collect();
    if held.is_empty() {
        let why = if on_purpose { "" } else { " (allowed by --allow-restart or lifecycle.allow_restart)" };
        return DumpStop::Allowed(format!(
            "the {what} of source {source} stops {} in its full dump: {lost}{why}",
            list(&dumping)
        ));
    }
    DumpStop::Held(Hold::deferred(
        format!("the {what} of source {source} would stop {} in its full dump: {lost}", list(&held)),
        "apply again once the dump is done (`dm-apply apply --wait-for-sync` waits for it and then applies), or let \
         the dump start over now with --allow-restart (or `lifecycle: {allow_restart: true}` on the task)",
        HoldWait { tasks: held.iter().map(|t| t.to_string()).collect(), until: WaitUntil::DumpDone },
    ))
}

// ------------------------------------------------------------------------------------------------ units

/// What stands in the way of an in-place update: DM updates a task only while every subtask is in the Sync unit
/// (docs/dm-behaviour.md R6.6, error 40081 inside 46035).
pub enum SyncGate {
    /// Every subtask is in the Sync unit: update now.
    Open,
    /// DM will accept it once the task reaches Sync by itself (it runs its full dump or load).
    Deferred(Hold),
    /// It will not get there by itself (stopped before Sync, no worker): someone has to act.
    Blocked(Hold),
    /// Paused before Sync while the configuration wants it running: start it now, update once it is in Sync.
    StartFirst(String),
}

fn units(st: &[SubTaskStatus]) -> String {
    let mut v: Vec<String> = st
        .iter()
        .map(|s| {
            let unit = if s.unit == Unit::Invalid { "no unit" } else { s.unit.as_str() };
            let stage = if s.stage == Stage::Empty { "unknown" } else { s.stage.as_str() };
            format!("{} in {unit} ({stage})", s.source_name)
        })
        .collect();
    v.sort();
    v.join(", ")
}

/// Whether an update of `lt` can happen now. `wants_running`: the configuration wants the task running.
pub fn sync_gate(lt: &LiveTask, wants_running: bool) -> SyncGate {
    let Some(st) = &lt.status else { return SyncGate::Open };
    if st.iter().all(|s| s.unit == Unit::Sync) {
        return SyncGate::Open;
    }
    let name = &lt.task.name;
    let where_ = units(st);
    let full_phase = st.iter().all(|s| matches!(s.unit, Unit::Sync | Unit::Dump | Unit::Load | Unit::Check));
    let progressing = st.iter().filter(|s| s.unit != Unit::Sync).all(|s| {
        s.stage == Stage::Running
            || (s.stage == Stage::Paused && s.error_msg.as_deref().is_some_and(|m| !m.trim().is_empty()))
    });
    let reason = format!(
        "DM updates a task only in the Sync unit (error 40081), and task {name} is not there on every source: \
         {where_}"
    );
    if full_phase && progressing {
        return SyncGate::Deferred(Hold::deferred(
            format!("{reason}; it gets there once its full dump and load are done"),
            format!(
                "apply again once the task is in Sync (`dm-apply apply --wait-for-sync` waits for it and then \
                 applies), or replace it now with `--replace task.{name}` (restarts the migration from scratch)"
            ),
            HoldWait { tasks: vec![name.clone()], until: WaitUntil::Sync },
        ));
    }
    if full_phase && wants_running {
        return SyncGate::StartFirst(format!("{reason}, and it is paused there"));
    }
    let remedy = if full_phase {
        format!(
            "the task is stopped before Sync and the configuration keeps it stopped: declare `stage: running` until \
             it reaches Sync, or replace it with `--replace task.{name}` (restarts the migration from scratch)"
        )
    } else {
        "DM cannot say which unit every subtask is in (no worker, or the worker does not answer): bring the \
         workers back, then apply again"
            .to_string()
    };
    SyncGate::Blocked(Hold::blocked(reason, remedy))
}

// ------------------------------------------------------------------------------------------------ replace

/// Where the new task of a replacement starts, decided from the old task's state and the new task's mode.
pub struct ReplaceInput<'a> {
    pub old: &'a LiveTask,
    pub new: &'a Task,
    pub version: &'a ServerVersion,
    /// The old task has the same name (a replace, not a rename).
    pub same_name: bool,
    /// Meta schema and target host/port unchanged (checkpoint tables stay where the new task looks for them).
    pub same_meta_and_target: bool,
}

/// The impact of replacing `old` by `new`, and a line saying why, for the plan's reasons.
pub fn replace_impact(i: &ReplaceInput) -> (Impact, String) {
    let old_sources: BTreeSet<&str> =
        i.old.task.source_config.source_conf.iter().map(|s| s.source_name.as_str()).collect();
    let new_sources: Vec<String> = i
        .new
        .source_config
        .source_conf
        .iter()
        .map(|s| s.source_name.clone())
        .filter(|s| !old_sources.contains(s.as_str()))
        .collect();
    let kept: BTreeSet<&str> = i
        .new
        .source_config
        .source_conf
        .iter()
        .map(|s| s.source_name.as_str())
        .filter(|s| old_sources.contains(s))
        .collect();
    let keep_meta = i.same_name && i.same_meta_and_target && i.version.supports_keep_meta();
    let renamed_from = (!i.same_name).then(|| i.old.task.name.clone());
    let mode = i.new.task_mode.as_str();
    let impact = |restarts_migration, keep_meta, from_checkpoint, not_started| Impact::Replace {
        restarts_migration,
        keep_meta,
        from_checkpoint,
        not_started,
        renamed_from: renamed_from.clone(),
        new_sources: new_sources.clone(),
    };
    if !mode_syncs(mode) {
        return (
            impact(true, false, false, false),
            format!("a `{mode}` task has no binlog checkpoint: the new task runs its migration again from scratch"),
        );
    }
    let Some(status) = &i.old.status else {
        // Apply reads the checkpoint after the stop, and refuses to delete the task when it cannot.
        return if mode == "incremental" {
            (
                impact(false, keep_meta, true, false),
                "status unavailable now: apply reads the checkpoint after stopping the task and deletes nothing \
                 when it cannot"
                    .to_string(),
            )
        } else {
            (
                impact(true, false, false, false),
                "status unavailable: whether the task reached the Sync unit is unknown".to_string(),
            )
        };
    };
    let relevant: Vec<&SubTaskStatus> = status.iter().filter(|s| kept.contains(s.source_name.as_str())).collect();
    if !status.is_empty() && status.iter().all(|s| s.stage == Stage::Stopped) {
        return (
            impact(false, false, false, true),
            "every subtask is as created (stage Stopped): the task never ran".to_string(),
        );
    }
    let not_sync: Vec<String> =
        relevant.iter().filter(|s| s.unit != Unit::Sync).map(|s| format!("{} in {}", s.source_name, s.unit)).collect();
    if !not_sync.is_empty() {
        return (
            impact(true, false, false, false),
            format!("not in the Sync unit on every source ({}): no checkpoint to resume from", not_sync.join(", ")),
        );
    }
    if relevant.is_empty() {
        return (
            impact(mode == "all", false, false, false),
            "the new task shares no source with the old one: nothing to resume".to_string(),
        );
    }
    if mode == "incremental" {
        return (
            impact(false, keep_meta, true, false),
            "in the Sync unit on every source: the new task is created at the checkpoint the old one reached"
                .to_string(),
        );
    }
    // `all`: a fresh task dumps again whatever its `source_conf`; only checkpoints kept under the same name, meta
    // schema and target let it continue (docs/dm-behaviour.md R7.5, R7.6, R8.6).
    if keep_meta {
        (
            impact(false, true, false, false),
            "an `all` task resumes only from checkpoints kept under the same name, meta schema and target (keep_meta)"
                .to_string(),
        )
    } else {
        let why = if !i.same_name {
            "checkpoints are kept per task name, so under a new name an `all` task dumps again (declare `task_mode: \
             incremental` to continue from the checkpoint instead)"
        } else if !i.version.supports_keep_meta() {
            "this DM-master drops checkpoints on delete (keep_meta exists only on newer DM-master), so an `all` task \
             dumps again (declare `task_mode: incremental` to continue from the checkpoint instead)"
        } else {
            "the meta schema or target changes, so the kept checkpoints are not found and an `all` task dumps again"
        };
        (impact(true, false, false, false), why.to_string())
    }
}

// ------------------------------------------------------------------------------------------------ checkpoints

/// A binlog position read from DM's `syncer_binlog`, `(mysql-bin.000012, 3456)`. A relay sub-directory suffix
/// (`mysql-bin|000001.000012`) is stripped (docs/dm-behaviour.md R8.11).
pub fn parse_syncer_binlog(s: &str) -> Option<(String, i64)> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    let (name, pos) = inner.rsplit_once(',')?;
    let name = name.trim();
    let pos: i64 = pos.trim().parse().ok()?;
    let name = match name.rsplit_once('.') {
        Some((base, seq)) => match base.rsplit_once('|') {
            Some((real, suffix))
                if !real.is_empty() && !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()) =>
            {
                format!("{real}.{seq}")
            }
            _ => name.to_string(),
        },
        None => name.to_string(),
    };
    if name.is_empty() || pos < 0 {
        return None;
    }
    Some((name, pos))
}

// ------------------------------------------------------------------------------------------------ letter case

/// Sources whose upstream is case-sensitive as far as DM's stored patterns show: DM lowercases every schema and
/// table pattern of a case-insensitive upstream when it stores a task (docs/dm-behaviour.md R5.10, R9.7), so a
/// pattern stored with an upper-case letter proves the upstream keeps case.
pub fn case_sensitive_sources<'a>(tasks: impl Iterator<Item = &'a Task>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for t in tasks {
        for r in &t.table_migrate_rule {
            if r.source.schema.chars().any(char::is_uppercase) || r.source.table.chars().any(char::is_uppercase) {
                out.insert(r.source.source_name.clone());
            }
        }
    }
    out
}

/// Patterns of `desired` that differ from `live` only in letter case, on sources in `folded`: `(source, desired,
/// live)` as `schema.table`.
pub fn case_only_differences(desired: &Task, live: &Task, folded: &BTreeSet<String>) -> Vec<(String, String, String)> {
    let upper = |s: &str| s.chars().any(char::is_uppercase);
    // DM stores lowercase on these sources: only a desired upper-case letter can differ in case alone.
    if !desired.table_migrate_rule.iter().any(|r| upper(&r.source.schema) || upper(&r.source.table)) {
        return vec![];
    }
    let show = |s: &str, t: &str| if t.is_empty() { s.to_string() } else { format!("{s}.{t}") };
    let live_keys: BTreeMap<(String, String, String), (String, String)> = live
        .table_migrate_rule
        .iter()
        .map(|r| {
            (
                (r.source.source_name.clone(), r.source.schema.to_lowercase(), r.source.table.to_lowercase()),
                (r.source.schema.clone(), r.source.table.clone()),
            )
        })
        .collect();
    let mut out = vec![];
    for r in &desired.table_migrate_rule {
        let s = &r.source;
        if !folded.contains(&s.source_name) {
            continue;
        }
        let key = (s.source_name.clone(), s.schema.to_lowercase(), s.table.to_lowercase());
        if let Some((ls, lt)) = live_keys.get(&key)
            && (ls != &s.schema || lt != &s.table)
        {
            out.push((s.source_name.clone(), show(&s.schema, &s.table), show(ls, lt)));
        }
    }
    out.sort();
    out.dedup();
    out
}

// ------------------------------------------------------------------------------------------------ renames

/// What makes two tasks "the same replication": their source names and their table rules (as JSON text).
pub type ReplicationKey = (Vec<String>, String);

/// The [`ReplicationKey`] of a task's comparable form (`None` without sources).
pub fn replication_key(cmp: &Value) -> Option<ReplicationKey> {
    let sources: Vec<String> = cmp.pointer("/source_config/source_conf")?.as_object()?.keys().cloned().collect();
    let rules = cmp.pointer("/table_migrate_rule")?.to_string();
    if sources.is_empty() {
        return None;
    }
    Some((sources, rules))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dm::types::{ShardingGroup, SyncStatus, TableMigrateRule, TableRuleSource, TaskSourceConf};
    use crate::plan::HoldKind;

    fn sub(source: &str, stage: Stage, unit: Unit) -> SubTaskStatus {
        SubTaskStatus { source_name: source.into(), stage, unit, ..Default::default() }
    }

    fn task(name: &str, mode: &str, sources: &[&str]) -> Task {
        let mut t = Task { name: name.into(), task_mode: mode.into(), ..Default::default() };
        t.source_config.source_conf =
            sources.iter().map(|s| TaskSourceConf { source_name: s.to_string(), ..Default::default() }).collect();
        t
    }

    fn live(t: Task, status: Option<Vec<SubTaskStatus>>) -> LiveTask {
        LiveTask::new(t, status)
    }

    #[test]
    fn only_a_running_dump_is_lost_and_only_unallowed_tasks_are_held() {
        let t = |name: &str| Task { name: name.into(), ..Default::default() };
        let dumping =
            live(t("a"), Some(vec![sub("s1", Stage::Running, Unit::Dump), sub("s2", Stage::Running, Unit::Sync)]));
        let also = live(t("b"), Some(vec![sub("s1", Stage::Running, Unit::Dump)]));
        // Paused by an error, or loading: nothing to lose by stopping it.
        let failed = live(
            t("c"),
            Some(vec![SubTaskStatus { error_msg: Some("boom".into()), ..sub("s1", Stage::Paused, Unit::Dump) }]),
        );
        let loading = live(t("d"), Some(vec![sub("s1", Stage::Running, Unit::Load)]));
        let unknown = live(t("e"), None);
        assert_eq!(dump_stop("s1", &[&failed, &loading, &unknown], "update", false, |_| false), DumpStop::Nothing);
        match dump_stop("s1", &[&dumping, &also, &loading], "update", false, |t| t == "b") {
            DumpStop::Held(h) => {
                assert_eq!(h.kind, HoldKind::Deferred);
                assert!(h.reason.contains("would stop a (on s1) in its full dump"), "{}", h.reason);
                assert!(!h.reason.contains("b (on"), "b is allowed: {}", h.reason);
                assert_eq!(h.wait, Some(HoldWait { tasks: vec!["a".into()], until: WaitUntil::DumpDone }));
            }
            other => panic!("{other:?}"),
        }
        match dump_stop("s1", &[&dumping, &also], "update", false, |_| true) {
            DumpStop::Allowed(why) => assert!(why.contains("a (on s1), b (on s1)") && why.contains("allowed")),
            other => panic!("{other:?}"),
        }
        match dump_stop("s1", &[&dumping], "disable", true, |_| false) {
            DumpStop::Allowed(why) => {
                assert!(why.starts_with("the disable of source s1 stops a") && !why.contains("allowed"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn shard_ddl_state_blocks_with_dm_lock_information() {
        let mut s = sub("a", Stage::Running, Unit::Sync);
        assert!(shard_ddl_hold(&live(task("t", "incremental", &["a"]), Some(vec![s.clone()])), "update").is_none());
        s.unresolved_ddl_lock_id = Some("t-`db`.`x`".into());
        s.sync_status = Some(SyncStatus {
            blocking_ddls: vec!["ALTER TABLE x ADD c INT".into()],
            unresolved_groups: vec![ShardingGroup {
                target: "`db`.`x`".into(),
                synced: vec!["`db`.`x1`".into()],
                unsynced: vec!["`db`.`x2`".into()],
                ..Default::default()
            }],
            ..Default::default()
        });
        let h = shard_ddl_hold(&live(task("t", "incremental", &["a"]), Some(vec![s])), "update").unwrap();
        assert_eq!(h.kind, HoldKind::Blocked);
        for part in ["lock t-`db`.`x`", "ALTER TABLE x ADD c INT", "synced [`db`.`x1`]", "unsynced [`db`.`x2`]"] {
            assert!(h.reason.contains(part), "{part}: {}", h.reason);
        }
    }

    #[test]
    fn updates_outside_sync_wait_or_start_first() {
        let t = task("t", "all", &["a", "b"]);
        let gate = |st: Vec<SubTaskStatus>, run: bool| sync_gate(&live(t.clone(), Some(st)), run);
        assert!(matches!(
            gate(vec![sub("a", Stage::Running, Unit::Sync), sub("b", Stage::Running, Unit::Sync)], true),
            SyncGate::Open
        ));
        match gate(vec![sub("a", Stage::Running, Unit::Dump), sub("b", Stage::Running, Unit::Sync)], true) {
            SyncGate::Deferred(h) => assert!(h.reason.contains("a in Dump (Running)"), "{}", h.reason),
            _ => panic!("deferred"),
        }
        assert!(matches!(gate(vec![sub("a", Stage::Paused, Unit::Load)], true), SyncGate::StartFirst(_)));
        assert!(matches!(gate(vec![sub("a", Stage::Paused, Unit::Load)], false), SyncGate::Blocked(_)));
        assert!(matches!(gate(vec![sub("a", Stage::Empty, Unit::Invalid)], true), SyncGate::Blocked(_)));
        assert!(matches!(sync_gate(&live(t, None), true), SyncGate::Open));
    }

    #[test]
    fn where_a_replacement_starts() {
        let v85 = ServerVersion::parse("v8.5.4");
        let head = ServerVersion::parse("v26.4.0-alpha");
        let running = |u| Some(vec![sub("a", Stage::Running, u)]);
        let kind = |old: LiveTask, new: Task, v: &ServerVersion, same_name: bool| {
            let (i, _) = replace_impact(&ReplaceInput {
                old: &old,
                new: &new,
                version: v,
                same_name,
                same_meta_and_target: true,
            });
            match i {
                Impact::Replace {
                    restarts_migration, keep_meta, from_checkpoint, not_started, new_sources, ..
                } => (restarts_migration, keep_meta, from_checkpoint, not_started, new_sources),
                other => panic!("{other:?}"),
            }
        };
        let incr = task("t", "incremental", &["a"]);
        let all = task("t", "all", &["a"]);
        // incremental in Sync: from the checkpoint, on every generation (keep_meta too on HEAD).
        assert_eq!(
            kind(live(incr.clone(), running(Unit::Sync)), incr.clone(), &v85, true),
            (false, false, true, false, vec![])
        );
        assert_eq!(
            kind(live(incr.clone(), running(Unit::Sync)), incr.clone(), &head, true),
            (false, true, true, false, vec![])
        );
        // all in Sync: only keep_meta keeps it; a rename or v8.5 dumps again.
        assert_eq!(
            kind(live(all.clone(), running(Unit::Sync)), all.clone(), &head, true),
            (false, true, false, false, vec![])
        );
        assert!(kind(live(all.clone(), running(Unit::Sync)), all.clone(), &v85, true).0);
        assert!(kind(live(all.clone(), running(Unit::Sync)), all.clone(), &head, false).0);
        // Still dumping: restart; never started: nothing lost; full: restart.
        assert!(kind(live(all.clone(), running(Unit::Dump)), incr.clone(), &head, true).0);
        let fresh = Some(vec![sub("a", Stage::Stopped, Unit::Dump)]);
        assert_eq!(kind(live(all.clone(), fresh), all.clone(), &v85, true), (false, false, false, true, vec![]));
        assert!(kind(live(all.clone(), running(Unit::Sync)), task("t", "full", &["a"]), &head, true).0);
        // A source added by the replace has no checkpoint.
        let wider = task("t", "incremental", &["a", "b"]);
        assert_eq!(kind(live(incr.clone(), running(Unit::Sync)), wider, &v85, true).4, vec!["b".to_string()]);
        // Status unknown: apply checks after the stop.
        assert!(kind(live(incr.clone(), None), incr, &v85, true).2);
    }

    #[test]
    fn stored_upper_case_proves_a_case_sensitive_upstream() {
        let rule = |s: &str, schema: &str| TableMigrateRule {
            source: TableRuleSource { source_name: s.into(), schema: schema.into(), table: "*".into() },
            ..Default::default()
        };
        let mut a = task("x", "incremental", &["a", "b"]);
        a.table_migrate_rule = vec![rule("a", "Shop"), rule("b", "shop")];
        assert_eq!(case_sensitive_sources([&a].into_iter()), BTreeSet::from(["a".to_string()]));
        let mut want = a.clone();
        want.table_migrate_rule = vec![rule("a", "SHOP"), rule("b", "Shop")];
        let folded = BTreeSet::from(["b".to_string()]);
        assert_eq!(
            case_only_differences(&want, &a, &folded),
            vec![("b".to_string(), "Shop.*".to_string(), "shop.*".to_string())]
        );
    }

    #[test]
    fn syncer_binlog_positions() {
        assert_eq!(parse_syncer_binlog("(mysql-bin.000012, 3456)"), Some(("mysql-bin.000012".into(), 3456)));
        assert_eq!(parse_syncer_binlog("(mysql-bin|000001.000012, 4)"), Some(("mysql-bin.000012".into(), 4)));
        assert_eq!(parse_syncer_binlog(" (binlog.000003,17) "), Some(("binlog.000003".into(), 17)));
        for bad in ["", "()", "(x)", "mysql-bin.000001, 4", "(, 4)", "(a.1, -4)", "(a.1, x)"] {
            assert_eq!(parse_syncer_binlog(bad), None, "{bad}");
        }
    }
}
