//! Binlog event filter rules as the subtask config stores them (docs/dm-behaviour.md §5, §9, §15).
//!
//! `SubTaskConfig.Adjust` builds the worker's event filter, which checks each rule's event types in order and
//! rewrites them in place (lower case, `create/drop/alter schema` → `... database`). The first unknown type makes
//! the rule invalid: the error is only logged, the rule stays in the stored config (rewritten up to that event)
//! and the worker never applies it. `add foreign key` / `drop foreign key` are known from v8.5.4 on, so on v8.5.3
//! a rule listing them is accepted by the API and silently inactive.

use super::Generation;
use super::state::State;
use crate::dm::types::Task;

const EVENTS: &[&str] = &[
    "all",
    "all ddl",
    "all dml",
    "",
    "none",
    "none ddl",
    "none dml",
    "insert",
    "update",
    "delete",
    "create database",
    "drop database",
    "alter database",
    "create table",
    "drop table",
    "truncate table",
    "rename table",
    "create index",
    "drop index",
    "create view",
    "drop view",
    "alter table",
    "add table partition",
    "drop table partition",
    "truncate table partition",
    "incompatible ddl changes",
    "value range decrease",
    "precision decrease",
    "modify column",
    "rename column",
    "rename index",
    "drop column",
    "drop primary key",
    "drop unique key",
    "modify default value",
    "modify constraint",
    "modify columns order",
    "modify charset",
    "modify collation",
    "remove auto increment",
    "modify storage engine",
    "reorganize table partition",
    "rebuild table partition",
    "coalesce table partition",
    "split table partition",
    "exchange table partition",
    "modify schema charset and collate",
    "modify table charset and collate",
    "modify table comment",
    "recover table",
    "alter table partitioning",
    "remove table partitioning",
    "add column",
    "set default value",
    "rebase auto id",
    "add primary key",
    "alter index visibility",
    "alter ttl info",
    "alter ttl remove",
    "multi schema change",
];

/// The stored spelling of an event type, or `None` when the generation does not know it.
pub(crate) fn event_type(event: &str, g: Generation) -> Option<String> {
    let lower = event.to_lowercase();
    match lower.as_str() {
        "create schema" => Some("create database".into()),
        "drop schema" => Some("drop database".into()),
        "alter schema" => Some("alter database".into()),
        "add foreign key" | "drop foreign key" if g.knows_foreign_key_events() => Some(lower),
        l if EVENTS.contains(&l) => Some(lower),
        _ => None,
    }
}

/// Rewrite one rule's events as the filter validation does; `false` when the rule is invalid (inactive).
fn normalize(events: &mut [String], g: Generation) -> bool {
    for ev in events.iter_mut() {
        match event_type(ev, g) {
            Some(n) => *ev = n,
            None => return false,
        }
    }
    true
}

impl State {
    /// The task as each subtask stores it: filter events rewritten as the worker's filter validation leaves them.
    pub(crate) fn stored_form(&self, mut task: Task) -> Task {
        if let Some(rules) = task.binlog_filter_rule.as_mut() {
            for rule in rules.values_mut() {
                if let Some(events) = rule.ignore_event.as_mut() {
                    normalize(events, self.generation);
                }
            }
        }
        task
    }
}

/// Names of the task's filter rules the worker does not apply because an event type is unknown.
pub(crate) fn inactive_rules(task: &Task, g: Generation) -> Vec<String> {
    task.binlog_filter_rule
        .iter()
        .flatten()
        .filter(|(_, r)| r.ignore_event.iter().flatten().any(|ev| event_type(ev, g).is_none()))
        .map(|(n, _)| n.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_key_events_from_v854() {
        assert_eq!(event_type("Add Foreign Key", Generation::V853), None);
        assert_eq!(event_type("Add Foreign Key", Generation::V854).as_deref(), Some("add foreign key"));
        assert_eq!(event_type("CREATE SCHEMA", Generation::V853).as_deref(), Some("create database"));
        assert_eq!(event_type("no such event", Generation::Head), None);
    }

    #[test]
    fn rewrite_stops_at_the_first_unknown_event() {
        let mut ev = vec!["DROP TABLE".to_string(), "add foreign key".to_string(), "Truncate Table".to_string()];
        assert!(!normalize(&mut ev, Generation::V853));
        assert_eq!(ev, ["drop table", "add foreign key", "Truncate Table"]);
        let mut ev = vec!["DROP TABLE".to_string(), "add foreign key".to_string(), "Truncate Table".to_string()];
        assert!(normalize(&mut ev, Generation::V854));
        assert_eq!(ev, ["drop table", "add foreign key", "truncate table"]);
    }
}
