//! Task stages: the clock that lands asynchronous stage changes, start, stop and query-status
//! (docs/dm-behaviour.md §8).

use super::*;

impl State {
    // ------------------------------------------------------------------------------------------ time

    /// Land the asynchronous transitions that are due and move running subtasks through their units.
    ///
    /// It also records until when no subtask changes by itself ([`State::settled_until`]), so that a read can skip
    /// the walk ([`State::advance_for_read`]).
    pub fn advance(&mut self, now: Instant) {
        let phase = self.phase();
        // Far enough to mean "never", near enough not to overflow.
        let mut wake = Some(now + MAX_STAGE_DELAY);
        let State { tasks, sources, binlog, .. } = self;
        // Only tasks that may change by themselves or that a handler took mutably since the last walk: every
        // other subtask is at rest with nothing pending (`tracked::Tasks`).
        for name in tasks.take_visits() {
            let Some(t) = tasks.visiting(&name) else { continue };
            let mut active = false;
            for sub in t.subtasks.values_mut() {
                // Most subtasks are at rest (an incremental subtask running in Sync, or one not running, with
                // nothing in flight): `advance_sub` would not change them, so they cost one cheap test here.
                if !at_rest(sub, now) {
                    let starts = matches!(&sub.pending, Some((due, Stage::Running)) if now >= *due);
                    advance_sub(sub, now, phase);
                    if starts {
                        run_started(binlog, sources, &t.cli_args, sub, phase);
                    }
                }
                wake = match next_change(sub) {
                    Change::Never => wake,
                    Change::At(due) => {
                        active = true;
                        wake.map(|w| w.min(due))
                    }
                    Change::Continuous => {
                        active = true;
                        None
                    }
                };
            }
            tasks.settle(&name, active);
        }
        self.settled_until = wake;
    }

    /// `advance` for an OpenAPI read: skipped while nothing can have changed since the last walk (no subtask change
    /// is due, none is running through timed units, and nobody took the state to change it since:
    /// `Shared::state` resets `settled_until` when released). Walking every subtask on every request made the
    /// simulator O(tasks) per request, which a real DM-master is not.
    pub fn advance_for_read(&mut self, now: Instant) {
        if self.settled_until.is_some_and(|t| now < t) {
            return;
        }
        self.advance(now);
    }

    /// A transient failure of the workers' query-status (docs/dm-behaviour.md §8): the whole call answers 400 49001.
    pub(super) fn status_glitch(&mut self) -> Result<(), SimError> {
        if self.status_glitches > 0 {
            self.status_glitches -= 1;
            return Err(e::openapi("worker's query-status response is nil"));
        }
        Ok(())
    }

    pub fn task_status(&mut self, name: &str) -> R {
        if !self.tasks.contains_key(name) {
            return Err(e::task_not_exist(name));
        }
        let data = self.status_list(name)?;
        Ok(Out::Json(200, list_answer(data)))
    }

    /// Answers 200 with an empty body, not the docs' 204 (docs/dm-behaviour.md §8); asynchronous: only the expected
    /// stage is written here.
    pub fn start_task(&mut self, name: &str, req: StartTaskRequest, now: Instant) -> R {
        let all: Vec<String> = self.tasks.get(name).map(|t| t.subtasks.keys().cloned().collect()).unwrap_or_default();
        let list = req.source_name_list.clone().filter(|l| !l.is_empty()).unwrap_or_else(|| all.clone());
        // One pass per source, in list order, as `startTask` does: 46008, 20022, 46008, 38058.
        for s in &list {
            let Some(sub) = self.tasks.get(name).and_then(|t| t.subtasks.get(s)) else {
                return Err(e::source_not_exist(s));
            };
            if sub.cfg.task_mode == "incremental"
                && req.start_time.is_none()
                && project::to_subcfg(&sub.cfg, s, false).map(|c| c.meta.is_none()).unwrap_or(true)
            {
                return Err(e::meta_not_set(s));
            }
            match self.sources.get(s) {
                None => return Err(e::source_not_exist(s)),
                Some(src) if !src.cfg.enable => return Err(e::start_on_disabled(name, s)),
                _ => {}
            }
        }
        if list.is_empty() {
            // An unknown task (or one without subtasks): nothing to start, 200.
            return Ok(Out::Empty(200));
        }
        let phase = self.phase();
        let delay = self.stage_delay;
        if req.remove_meta == Some(true) {
            // The checkpoints are dropped in the first listed subtask's target before the args are checked, so a bad
            // `start_time` still leaves them dropped; a target that cannot be reached fails the start
            // (docs/dm-behaviour.md §8).
            if let Some(sub) = list.first().and_then(|s| self.tasks.get(name).and_then(|t| t.subtasks.get(s))) {
                self.connect_target(&sub.cfg.target_config).map_err(|mut err| {
                    err.message = format!("while removing metadata: {}", err.message);
                    err
                })?;
            }
            if let Some(entry) = self.tasks.get_mut(name) {
                for s in &list {
                    if let Some(sub) = entry.subtasks.get_mut(s) {
                        // Checkpoints and metadata are dropped: the migration starts over.
                        sub.ckpt.line = None;
                        sub.ckpt.restored = None;
                        sub.worked = Duration::ZERO;
                        sub.run_since = sub.run_since.map(|_| now);
                        if sub.observed == Stage::Finished {
                            sub.observed = Stage::Paused;
                        }
                        sub.unit = unit_for(&sub.cfg.task_mode, Duration::ZERO, phase).0;
                    }
                }
            }
        }
        // Empty strings count as absent here but are stored; a bad value is a plain error (code 0)
        // (docs/dm-behaviour.md §8).
        let args = taskargs::start_args(&req, self.generation)?;
        let Some(entry) = self.tasks.get_mut(name) else { return Ok(Out::Empty(200)) };
        // The stored CLI args are replaced as a whole, or deleted when the request carries none.
        entry.cli_args = args.unwrap_or_default();
        for s in &list {
            if let Some(sub) = entry.subtasks.get_mut(s) {
                set_expected(sub, Expected::Running, now, delay);
            }
        }
        Ok(Out::Empty(200))
    }

    /// `stopTask` (docs/dm-behaviour.md §8): the CLI args first (a bad `timeout_duration` is a plain error, code 0),
    /// then the expected stage. Without `source_name_list` an unknown task has no sources and nothing happens (200);
    /// with one, the scheduler does not know the task: 46016. Unknown sources of a known task: 46017.
    pub fn stop_task(&mut self, name: &str, req: StopTaskRequest, now: Instant) -> R {
        let args = taskargs::stop_args(&req)?;
        let listed = req.source_name_list.clone().filter(|l| !l.is_empty());
        let Some(entry) = self.tasks.get(name) else {
            return match listed {
                Some(_) => Err(e::subtask_op_task_not_exist(name)),
                None => Ok(Out::Empty(200)),
            };
        };
        let list = listed.unwrap_or_else(|| entry.subtasks.keys().cloned().collect());
        let unknown: Vec<String> = list.iter().filter(|s| !entry.subtasks.contains_key(*s)).cloned().collect();
        if !unknown.is_empty() {
            return Err(e::subtask_op_source_not_exist(&unknown));
        }
        let delay = self.stage_delay;
        let Some(entry) = self.tasks.get_mut(name) else { return Ok(Out::Empty(200)) };
        // Stop also replaces the stored CLI args (only `timeout_duration`), or deletes them.
        entry.cli_args = args.unwrap_or_default();
        for s in &list {
            if let Some(sub) = entry.subtasks.get_mut(s) {
                set_expected(sub, Expected::Stopped, now, delay);
            }
        }
        Ok(Out::Empty(200))
    }
}
