//! The tasks map, knowing which tasks `State::advance` has to visit.
//!
//! Walking every subtask on every request made the simulator O(tasks) per request, which a real DM-master is not
//! (at 2,000 tasks it was the simulator's largest cost in the fleet benchmark). A subtask only changes by itself
//! while a stage change is pending or it runs through timed units; otherwise it changes only when a handler takes
//! it mutably. So the map hands out mutable access only through methods that note the task, and `advance` visits
//! the tasks it noted plus those that may still change by themselves (`active`).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Deref;

use super::TaskEntry;

#[derive(Default)]
pub(crate) struct Tasks {
    map: BTreeMap<String, TaskEntry>,
    /// Tasks with a subtask that may change by itself (a pending stage change, or timed units).
    active: BTreeSet<String>,
    /// Tasks taken mutably since the last `advance`.
    touched: BTreeSet<String>,
    /// Every task was taken mutably (`values_mut`) since the last `advance`.
    all_touched: bool,
}

/// Read access is the map's own; there is deliberately no `DerefMut`.
impl Deref for Tasks {
    type Target = BTreeMap<String, TaskEntry>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl Tasks {
    /// `name` is about to be taken mutably: the next `advance` visits it.
    fn note(&mut self, name: &str) {
        if !self.all_touched && !self.touched.contains(name) {
            self.touched.insert(name.to_string());
        }
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut TaskEntry> {
        if !self.map.contains_key(name) {
            return None;
        }
        self.note(name);
        self.map.get_mut(name)
    }

    /// The task, created empty if missing.
    pub fn get_or_insert(&mut self, name: &str) -> &mut TaskEntry {
        self.note(name);
        self.map
            .entry(name.to_string())
            .or_insert_with(|| TaskEntry { subtasks: BTreeMap::new(), cli_args: BTreeMap::new() })
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut TaskEntry> {
        self.all_touched = true;
        self.map.values_mut()
    }

    pub fn remove(&mut self, name: &str) -> Option<TaskEntry> {
        self.active.remove(name);
        self.touched.remove(name);
        self.map.remove(name)
    }

    /// The tasks `advance` has to visit, in name order; the caller reports back with [`Tasks::settle`].
    pub(super) fn take_visits(&mut self) -> Vec<String> {
        let visit: Vec<String> = if self.all_touched {
            self.map.keys().cloned().collect()
        } else {
            self.active.union(&self.touched).cloned().collect()
        };
        self.touched.clear();
        self.all_touched = false;
        visit
    }

    /// After a visit: whether `name` may still change by itself.
    pub(super) fn settle(&mut self, name: &str, active: bool) {
        if active {
            if !self.active.contains(name) {
                self.active.insert(name.to_string());
            }
        } else {
            self.active.remove(name);
        }
    }

    /// The entry of a task being visited, without noting it again.
    pub(super) fn visiting(&mut self, name: &str) -> Option<&mut TaskEntry> {
        self.map.get_mut(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visit(t: &mut Tasks) -> Vec<String> {
        t.take_visits()
    }

    #[test]
    fn only_touched_and_active_tasks_are_visited() {
        let mut t = Tasks::default();
        t.get_or_insert("a");
        t.get_or_insert("b");
        t.get_or_insert("c");
        assert_eq!(visit(&mut t), ["a", "b", "c"]);
        // `b` still has a change pending; `a` and `c` are at rest.
        t.settle("a", false);
        t.settle("b", true);
        t.settle("c", false);
        assert_eq!(visit(&mut t), ["b"], "at rest and untouched: not visited");
        t.settle("b", true);
        let _ = t.get_mut("c");
        let _ = t.get("a"); // read access notes nothing
        assert_eq!(visit(&mut t), ["b", "c"]);
        t.settle("b", false);
        t.settle("c", false);
        assert!(visit(&mut t).is_empty());
        let _ = t.values_mut().count();
        assert_eq!(visit(&mut t), ["a", "b", "c"], "values_mut touches every task");
        t.settle("a", true);
        assert!(t.remove("a").is_some());
        assert!(visit(&mut t).is_empty(), "a removed task is not visited");
        assert!(t.get_mut("missing").is_none());
        assert!(visit(&mut t).is_empty(), "a missing task is not noted");
    }
}
