//! Request bodies as DM-master's handlers see them after `c.Bind` into the generated Go structs of a given
//! generation, and as `encoding/json` prints them back in echoes (docs/dm-behaviour.md §2, §3, §10).
//!
//! Two Go details matter: fields the generation's struct does not have are silently dropped, and pointer
//! fields without `omitempty` (`security`, `password`) print as `null` when absent.

use serde_json::Value;

use super::Generation;
use crate::dm::types::{Source, Task};

/// Drop what the generation's `Task` struct has no field for: `timezone`, `target_config.session` and
/// `incr_migrate_conf.safe_mode` exist only on HEAD, `full_migrate_conf.security` from v26.3 on (docs/dm-behaviour.md
/// §15).
pub(crate) fn strip_task(task: &mut Task, g: Generation) {
    if !g.head() {
        task.timezone = None;
        task.target_config.session = None;
        if let Some(i) = task.source_config.incr_migrate_conf.as_mut() {
            i.safe_mode = None;
        }
    }
    if !g.v26()
        && let Some(f) = task.source_config.full_migrate_conf.as_mut()
    {
        f.security = None;
    }
    task.status_list = None;
}

/// A bound `Task` printed by `encoding/json`: `target_config.security` (and, from v26.3, the import's
/// `full_migrate_conf.security`) print `null` when absent.
pub(crate) fn task_json(task: &Task, g: Generation) -> Value {
    let mut v = serde_json::to_value(task).unwrap_or(Value::Null);
    if let Some(t) = v.get_mut("target_config").and_then(Value::as_object_mut) {
        t.entry("security").or_insert(Value::Null);
    }
    if g.v26()
        && let Some(f) = v.pointer_mut("/source_config/full_migrate_conf").and_then(Value::as_object_mut)
    {
        f.entry("security").or_insert(Value::Null);
    }
    if let Some(o) = v.as_object_mut() {
        o.remove("status_list");
    }
    v
}

/// POST/PUT sources answer with the request's source, not normalised: the password as sent, and `password` and
/// `security` print `null` when absent (no `omitempty` on them) (docs/dm-behaviour.md §3).
pub(crate) fn source_echo(src: &Source) -> Value {
    let mut v = serde_json::to_value(src).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.remove("status_list");
        o.remove("task_name_list");
        o.entry("password").or_insert(Value::Null);
        o.entry("security").or_insert(Value::Null);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn absent_pointers_print_null() {
        let src: Source = serde_json::from_value(
            json!({"source_name": "a", "host": "h", "port": 1, "user": "u", "enable": true, "enable_gtid": false}),
        )
        .unwrap();
        let v = source_echo(&src);
        assert_eq!(v["security"], Value::Null);
        assert!(v.as_object().unwrap().contains_key("security"));
        assert!(v.as_object().unwrap().contains_key("password"));
    }

    #[test]
    fn v85_drops_head_only_fields() {
        let mut t: Task = serde_json::from_value(json!({
            "name": "t", "task_mode": "all", "on_duplicate": "replace", "timezone": "UTC",
            "target_config": {"host": "h", "port": 4000, "user": "u", "password": "", "session": {"foreign_key_checks": "1"}},
            "table_migrate_rule": [],
            "source_config": {"source_conf": [], "incr_migrate_conf": {"safe_mode": true},
                "full_migrate_conf": {"security": {"ssl_ca_content": "a", "ssl_cert_content": "b", "ssl_key_content": "c"}}}
        }))
        .unwrap();
        let mut t263 = t.clone();
        strip_task(&mut t, Generation::V854);
        strip_task(&mut t263, Generation::V263);
        let v = task_json(&t, Generation::V854);
        assert!(v.get("timezone").is_none());
        assert!(v["target_config"].get("session").is_none());
        assert_eq!(v["target_config"]["security"], Value::Null);
        assert!(v["source_config"]["full_migrate_conf"].get("security").is_none());
        assert!(v["source_config"]["incr_migrate_conf"].get("safe_mode").is_none());
        let v = task_json(&t263, Generation::V263);
        assert_eq!(v["source_config"]["full_migrate_conf"]["security"]["ssl_ca_content"], json!("a"));
    }
}
