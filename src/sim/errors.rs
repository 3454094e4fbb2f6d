//! DM's handler errors: `terror` values rendered as `[code=N:class=..:scope=..:level=..], Message: ..` and
//! answered as HTTP 400 `{"error_msg", "error_code"}` (semantics §1 "Error handling").

use std::fmt;

/// A handler error of the simulated DM-master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimError {
    pub code: i64,
    pub message: String,
    pub raw_cause: Option<String>,
    pub workaround: Option<String>,
}

impl SimError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        SimError { code, message: message.into(), raw_cause: None, workaround: None }
    }

    pub fn cause(mut self, c: impl Into<String>) -> Self {
        self.raw_cause = Some(c.into());
        self
    }

    pub fn workaround(mut self, w: impl Into<String>) -> Self {
        self.workaround = Some(w.into());
        self
    }

    /// `error_msg` as DM formats it; code 0 errors (not terror errors) are the bare message.
    pub fn error_msg(&self) -> String {
        if self.code == 0 {
            return self.message.clone();
        }
        let (class, scope, level) = class_of(self.code);
        let mut s =
            format!("[code={}:class={class}:scope={scope}:level={level}], Message: {}", self.code, self.message);
        if let Some(c) = &self.raw_cause {
            s.push_str(", RawCause: ");
            s.push_str(c);
        }
        if let Some(w) = &self.workaround {
            s.push_str(", Workaround: ");
            s.push_str(w);
        }
        s
    }
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error_msg())
    }
}

impl std::error::Error for SimError {}

/// terror class/scope/level by code range (`dm/_utils/terror_gen/errors_release.txt`).
fn class_of(code: i64) -> (&'static str, &'static str, &'static str) {
    match code {
        10001..=10999 => ("database", "not-set", "high"),
        11000..=11999 => ("functional", "internal", "high"),
        20000..=20999 => ("config", "internal", "medium"),
        26000..=26999 => ("checker", "internal", "high"),
        36000..=36999 => ("sync-unit", "internal", "high"),
        38000..=38999 => ("dm-master", "internal", "high"),
        40000..=40999 => ("dm-worker", "internal", "high"),
        46000..=46999 => ("scheduler", "internal", "medium"),
        49000..=49999 => ("openapi", "internal", "high"),
        _ => ("not-set", "not-set", "high"),
    }
}

/// Constructors for the errors the simulator raises, with DM's wording where known.
pub mod e {
    use super::SimError;

    pub fn db_driver(host: &str, port: u16) -> SimError {
        SimError::new(10001, "database driver error")
            .cause(format!(
                "dial tcp: lookup {host}: no such host (simulated: hosts ending in .unreachable fail; port {port})"
            ))
            .workaround("Please check the database connection and the database config in configuration file.")
    }
    pub fn source_exists(s: &str) -> SimError {
        SimError::new(46007, format!("source config with ID {s} already exists"))
    }
    pub fn source_not_exist(s: &str) -> SimError {
        SimError::new(46008, format!("source config with ID {s} not exists"))
            .workaround("Please use `operate-source` to create the source config first.")
    }
    pub fn sources_unbound(s: &[String]) -> SimError {
        SimError::new(46009, format!("sources {s:?} have not bound"))
            .workaround("Please check whether there are enough DM-workers, and whether they are online.")
    }
    pub fn source_has_tasks(s: &str, tasks: &[String]) -> SimError {
        SimError::new(
            46010,
            format!("source {s} can only be removed after all subtasks removed, subtasks of tasks {tasks:?} exist"),
        )
        .workaround("Please stop and remove all subtasks of the source, or delete the source with force.")
    }
    pub fn task_exists(t: &str, s: &[String]) -> SimError {
        SimError::new(46014, format!("subtasks with name {t} for sources {s:?} already exist"))
            .workaround("Please use `query-status` command to see tasks.")
    }
    pub fn subtask_op_source_not_exist(s: &[String]) -> SimError {
        SimError::new(46017, format!("sources {s:?} need to be operated not exist"))
    }
    pub fn task_not_exist(t: &str) -> SimError {
        SimError::new(46018, format!("task with name {t} not exist"))
            .workaround("Please use `query-status` command to see tasks.")
    }
    pub fn latch(t: &str) -> SimError {
        SimError::new(46024, format!("{t} is in use by other client, please try again later"))
    }
    pub fn source_cfg_update(s: &str, why: &str) -> SimError {
        SimError::new(46025, format!("source {s} can not be updated when {why}"))
            .workaround("Please stop all running tasks of the source and stop relay before updating it.")
    }
    pub fn subtask_not_exist(t: &str, s: &[String]) -> SimError {
        SimError::new(46034, format!("sub task with name {t} for sources {s:?} not exist"))
    }
    pub fn subtask_cfg_update(t: &str, s: &str, why: &str) -> SimError {
        SimError::new(46035, format!("failed to update subtask config of task {t} for source {s}"))
            .cause(why.to_string())
    }
    pub fn worker_no_start() -> SimError {
        SimError::new(40070, "no mysql source is being handled in the worker")
            .workaround("Please check the source of the worker, or bind a source to it first.")
    }
    pub fn start_on_disabled(task: &str, s: &str) -> SimError {
        SimError::new(38058, format!("start task {task} failed: source: {s} is not enabled"))
            .workaround("Please enable the source first.")
    }
    pub fn meta_not_set(source: &str) -> SimError {
        SimError::new(20022, format!("mysql-instance({source}) must set meta for task-mode incremental"))
            .workaround("Please check the `meta` config in task configuration file.")
    }
    pub fn openapi(msg: impl Into<String>) -> SimError {
        SimError::new(49001, msg)
    }
    pub fn worker_not_exist(w: &str) -> SimError {
        SimError::new(46004, format!("dm-worker with name {w} not exists"))
    }
}
