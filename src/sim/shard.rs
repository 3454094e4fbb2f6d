//! Shard DDL coordination state of a subtask, set by a test control: what `sync_status` shows while a
//! sharded task waits for its other shards (docs/dm-behaviour.md §8), and the one refusal it causes (§6).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::errors::SimError;

/// One sharding group the syncer has not resolved yet (`sync_status.unresolved_groups[]`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ShardingGroup {
    /// The downstream table the shards merge into, e.g. `` `shop`.`orders` ``.
    pub target: String,
    pub ddl_list: Vec<String>,
    /// Binlog location of the first DDL of the group, e.g. `position: (mysql-bin.000003, 1234)`.
    pub first_location: String,
    /// Upstream tables that have reached the DDL.
    pub synced: Vec<String>,
    /// Upstream tables still waiting.
    pub unsynced: Vec<String>,
}

/// What the control sets for one subtask. The default clears it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ShardDdlState {
    /// DDLs the subtask is blocked on (`sync_status.blocking_ddls`).
    pub blocking_ddls: Vec<String>,
    pub unresolved_groups: Vec<ShardingGroup>,
    /// `unresolved_ddl_lock_id` of the subtask status; `None`: `{task}-{first group's target}` when a group is set.
    pub unresolved_ddl_lock_id: Option<String>,
}

impl ShardDdlState {
    pub fn is_empty(&self) -> bool {
        self.blocking_ddls.is_empty() && self.unresolved_groups.is_empty() && self.unresolved_ddl_lock_id.is_none()
    }

    /// The lock id the status shows.
    pub(crate) fn lock_id(&self, task: &str) -> String {
        match (&self.unresolved_ddl_lock_id, self.unresolved_groups.first()) {
            (Some(id), _) => id.clone(),
            (None, Some(g)) if !g.target.is_empty() => format!("{task}-{}", g.target),
            _ => String::new(),
        }
    }

    /// `blocking_ddls` and `unresolved_groups` as the server sends them: `null` when empty (no `omitempty`, nil
    /// slices).
    pub(crate) fn status_fields(&self) -> (Value, Value) {
        let ddls = if self.blocking_ddls.is_empty() { Value::Null } else { json!(self.blocking_ddls) };
        let groups = if self.unresolved_groups.is_empty() { Value::Null } else { json!(self.unresolved_groups) };
        (ddls, groups)
    }

    /// DM refuses to update a pessimistic sharded subtask while some of its tables' sharding DDL is unsynced
    /// (36058, reported through 46035 by the master, docs/dm-behaviour.md §6). Optimistic mode is not refused.
    pub(crate) fn refuse_update(&self, shard_mode: Option<&str>) -> Option<SimError> {
        if shard_mode != Some("pessimistic") || self.unresolved_groups.is_empty() {
            return None;
        }
        let tables: Vec<&str> =
            self.unresolved_groups.iter().flat_map(|g| g.unsynced.iter().map(String::as_str)).collect();
        let inner = format!(
            "[code=36058:class=sync-unit:scope=internal:level=high], Message: try update config when some tables' ([{}]) sharding DDL not synced not supported, Workaround: Please try again later.",
            tables.join(" ")
        );
        Some(SimError::new(46035, format!("can not update because {inner}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_fields_are_null_and_lock_id_is_derived() {
        let s = ShardDdlState::default();
        assert_eq!(s.status_fields(), (Value::Null, Value::Null));
        let s = ShardDdlState {
            unresolved_groups: vec![ShardingGroup { target: "`db`.`t`".into(), ..Default::default() }],
            ..Default::default()
        };
        assert_eq!(s.lock_id("task"), "task-`db`.`t`");
        assert!(s.refuse_update(Some("pessimistic")).is_some());
        assert!(s.refuse_update(Some("optimistic")).is_none());
    }
}
