//! DM's handler errors: `terror` values rendered as `[code=N:class=..:scope=..:level=..], Message: ..` and
//! answered as HTTP 400 `{"error_msg", "error_code"}` (docs/dm-behaviour.md §2, §14).

use std::fmt;

/// A handler error of the simulated DM-master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimError {
    pub code: i64,
    pub message: String,
    pub raw_cause: Option<String>,
    pub workaround: Option<String>,
    /// Overrides the code's class, as `terror.WithClass` does (e.g. `dm-master` on template errors).
    pub class: Option<&'static str>,
    /// Overrides the code's scope, as `terror.WithScope` does (`upstream`/`downstream` on connection errors).
    pub scope: Option<&'static str>,
}

impl SimError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        SimError { code, message: message.into(), raw_cause: None, workaround: None, class: None, scope: None }
    }

    pub fn with_class(mut self, class: &'static str) -> Self {
        self.class = Some(class);
        self
    }

    pub fn with_scope(mut self, scope: &'static str) -> Self {
        self.scope = Some(scope);
        self
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
        let (class, scope) = (self.class.unwrap_or(class), self.scope.unwrap_or(scope));
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

/// terror class/scope/level of a code (`dm/_utils/terror_gen/errors_release.txt`): exact for the codes the
/// simulator raises, by range otherwise (docs/dm-behaviour.md §14).
fn class_of(code: i64) -> (&'static str, &'static str, &'static str) {
    match code {
        10001 => ("database", "not-set", "high"),
        20050 | 20051 => ("config", "internal", "low"),
        20067..=20069 => ("config", "internal", "high"),
        26000..=26999 => ("task-check", "internal", "medium"),
        38048 => ("dm-master", "internal", "low"),
        40005 | 40006 => ("dm-worker", "internal", "medium"),
        44000..=44999 => ("schema-tracker", "internal", "medium"),
        46001 | 46019..=46023 => ("scheduler", "internal", "high"),
        46009 | 46010 | 46015..=46017 => ("dm-master", "internal", "medium"),
        46024..=46025 | 46028..=46033 | 46035 => ("scheduler", "internal", "low"),
        10002..=10999 => ("database", "not-set", "high"),
        11000..=11999 => ("functional", "internal", "high"),
        20000..=20999 => ("config", "internal", "medium"),
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

    /// `ErrDBDriverError` around a driver error, scoped to the side that was connected to.
    pub fn db_driver(scope: &'static str, cause: impl Into<String>) -> SimError {
        SimError::new(10001, "database driver error")
            .cause(cause)
            .workaround("Please check the database connection and the database config in configuration file.")
            .with_scope(scope)
    }
    pub fn source_exists(s: &str) -> SimError {
        SimError::new(46007, format!("source config with ID {s} already exists"))
    }
    pub fn source_not_exist(s: &str) -> SimError {
        SimError::new(46008, format!("source config with ID {s} not exists"))
    }
    pub fn sources_unbound(s: &[String]) -> SimError {
        SimError::new(46009, format!("sources {} have not bound", go_list(s)))
    }
    pub fn source_has_tasks(s: &str, tasks: &[String]) -> SimError {
        SimError::new(46010, format!("source with name {s} need to operate has existing tasks {}", go_list(tasks)))
            .workaround("Please `stop-task` first.")
    }
    pub fn task_exists(t: &str, s: &[String]) -> SimError {
        SimError::new(46014, format!("subtasks with name {t} for sources {} already exist", go_list(s)))
            .workaround("Please use `query-status` command to see tasks.")
    }
    /// `UpdateExpectSubTaskStage` on a task the scheduler does not know.
    pub fn subtask_op_task_not_exist(t: &str) -> SimError {
        SimError::new(46016, format!("subtasks with name {t} need to be operate not exist"))
            .workaround("Please use `query-status` command to see tasks.")
    }
    pub fn subtask_op_source_not_exist(s: &[String]) -> SimError {
        SimError::new(46017, format!("sources {} need to be operate not exist", go_list(s)))
    }
    pub fn task_not_exist(t: &str) -> SimError {
        SimError::new(46018, format!("task with name {t} not exist"))
            .workaround("Please use `query-status` command to see tasks.")
    }
    /// `ErrSchedulerLatchInUse`: `what` is the scheduler step that wanted the task's latch.
    pub fn latch(what: &str, t: &str) -> SimError {
        SimError::new(46024, format!("when {what}, resource {t} is in use by other client"))
            .workaround("Please try again later")
    }
    /// `UpdateSourceCfg` refuses while a task on the source is expected Running or a relay stage exists.
    pub fn source_cfg_update(s: &str) -> SimError {
        SimError::new(
            46025,
            format!("source {s} can only be updated when relay is disabled and no tasks are running for now"),
        )
    }
    pub fn subtask_not_exist(t: &str, s: &[String]) -> SimError {
        SimError::new(46034, format!("subtasks with name {t} for sources {} not exist", go_list(s)))
            .workaround("Please create this subtask first.")
    }
    pub fn subtask_cfg_update(t: &str, s: &str, why: &str) -> SimError {
        SimError::new(
            46035,
            format!("subtask with name {t} source name {s} can only update when no running tasks for now"),
        )
        .cause(why.to_string())
    }
    pub fn worker_no_start() -> SimError {
        SimError::new(40070, "no mysql source is being handled in the worker")
    }
    pub fn start_on_disabled(task: &str, s: &str) -> SimError {
        SimError::new(38058, format!("can not start task: {task} reason: source: {s} is not enabled"))
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

    /// Go's `%v` of a `[]string`: `[a b]`.
    pub fn go_list(items: &[String]) -> String {
        format!("[{}]", items.join(" "))
    }
}
