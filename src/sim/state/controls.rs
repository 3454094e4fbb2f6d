//! Test-only controls (`SimControl`, `/sim/...`): inject errors, patch stored state, take workers offline, and
//! the state snapshot.

use super::*;

impl State {
    // ------------------------------------------------------------------------------------------ controls

    pub fn pause_with_error(&mut self, task: &str, source: &str, msg: &str) {
        let now = Instant::now();
        self.advance(now);
        let phase = self.phase();
        if let Some(sub) = self.tasks.get_mut(task).and_then(|t| t.subtasks.get_mut(source)) {
            if sub.observed == Stage::Running
                && let Some(since) = sub.run_since.take()
            {
                sub.worked = kept_work(&sub.cfg.task_mode, sub.worked + now.saturating_duration_since(since), phase);
            }
            sub.observed = Stage::Paused;
            sub.pending = None;
            sub.error_msg = Some(msg.to_string());
        }
    }

    pub fn set_relay_error(&mut self, worker: &str, error: Option<String>) -> Result<(), String> {
        let w = self.workers.get_mut(worker).ok_or_else(|| format!("no worker {worker}"))?;
        w.relay_error = error;
        Ok(())
    }

    pub fn set_worker_unreachable(&mut self, worker: &str, unreachable: bool) -> Result<(), String> {
        let w = self.workers.get_mut(worker).ok_or_else(|| format!("no worker {worker}"))?;
        w.unreachable = unreachable;
        Ok(())
    }

    pub fn set_worker_offline(&mut self, worker: &str, offline: bool) -> Result<(), String> {
        let w = self.workers.get_mut(worker).ok_or_else(|| format!("no worker {worker}"))?;
        w.offline = offline;
        if offline {
            // DM unbinds an offline worker but keeps its relay (`handleWorkerOffline`, docs/dm-behaviour.md R12.5).
            if let Some(s) = w.bound.take() {
                // The source moves to another free worker if there is one.
                self.try_bind(&s);
            }
        } else {
            self.bind_unbound();
        }
        Ok(())
    }

    pub fn patch_source(&mut self, source: &str, patch: &Value) -> Result<(), String> {
        let s = self.sources.get_mut(source).ok_or_else(|| format!("no source {source}"))?;
        let mut v = serde_json::to_value(&s.cfg).map_err(|e| e.to_string())?;
        merge_patch(&mut v, patch);
        s.cfg = serde_json::from_value(v).map_err(|e| format!("patched source is not a Source: {e}"))?;
        Ok(())
    }

    pub fn patch_task(&mut self, task: &str, source: Option<&str>, patch: &Value) -> Result<(), String> {
        let t = self.tasks.get_mut(task).ok_or_else(|| format!("no task {task}"))?;
        let mut hit = false;
        for (s, sub) in t.subtasks.iter_mut() {
            if source.is_some_and(|x| x != s) {
                continue;
            }
            let mut v = serde_json::to_value(&sub.cfg).map_err(|e| e.to_string())?;
            merge_patch(&mut v, patch);
            sub.cfg = serde_json::from_value(v).map_err(|e| format!("patched task is not a Task: {e}"))?;
            hit = true;
        }
        if hit { Ok(()) } else { Err(format!("task {task} has no subtask on {}", source.unwrap_or("?"))) }
    }

    pub fn remove_task_raw(&mut self, task: &str) -> bool {
        self.tasks.remove(task).is_some()
    }

    pub fn set_shard_ddl(&mut self, task: &str, source: &str, state: ShardDdlState) -> Result<(), String> {
        let sub = self
            .tasks
            .get_mut(task)
            .and_then(|t| t.subtasks.get_mut(source))
            .ok_or_else(|| format!("task {task} has no subtask on {source}"))?;
        sub.shard = state;
        Ok(())
    }

    pub fn snapshot(&mut self) -> Value {
        let now = Instant::now();
        self.advance(now);
        let phase = self.phase();
        let mut ckpts = BTreeMap::new();
        for (n, t) in self.tasks.iter() {
            for (s, sub) in &t.subtasks {
                let Some(src) = self.sources.get(s) else { continue };
                let id = upstream_id(s, src);
                let worked = total_worked(sub, now);
                let v = self.binlog.snapshot_sub(&sub.ckpt, &id, &sub.cfg.task_mode, worked, phase);
                ckpts.insert((n.clone(), s.clone()), v);
            }
        }
        let source_names: BTreeSet<String> = self.sources.keys().cloned().collect();
        let (upstreams, downstream_meta) = self.binlog.snapshot(&source_names);
        let workers: Vec<Value> = self
            .workers
            .values()
            .map(|w| json!({"name": w.name, "addr": w.addr, "stage": w.stage(), "bound_source": w.bound, "relay_source": w.relay}))
            .collect();
        let sources: serde_json::Map<String, Value> = self
            .sources
            .iter()
            .map(|(n, s)| {
                let mut cfg = serde_json::to_value(&s.cfg).unwrap_or(Value::Null);
                cfg["password"] = s.cfg.password.as_ref().map(|p| json!(p.expose())).unwrap_or(Value::Null);
                (
                    n.clone(),
                    json!({
                        "config": cfg,
                        "server_id": s.server_id,
                        "bound_worker": self.bound_worker(n).map(|w| w.name.clone()),
                        "relay_workers": self.relay_workers(n),
                    }),
                )
            })
            .collect();
        let tasks: serde_json::Map<String, Value> = self
            .tasks
            .iter()
            .map(|(n, t)| {
                let subs: serde_json::Map<String, Value> = t
                    .subtasks
                    .iter()
                    .map(|(s, sub)| {
                        (
                            s.clone(),
                            json!({
                                "expected": match sub.expected { Expected::Running => "Running", Expected::Stopped => "Stopped" },
                                "observed": sub.observed.as_str(),
                                "unit": sub.unit.as_str(),
                                "pending": sub.pending.as_ref().map(|(_, st)| st.as_str()),
                                "error_msg": sub.error_msg,
                                "config": serde_json::to_value(&sub.cfg).unwrap_or(Value::Null),
                                "checkpoint": ckpts.get(&(n.clone(), s.clone())).cloned().unwrap_or(Value::Null),
                                "shard_ddl": (!sub.shard.is_empty()).then(|| json!(sub.shard)),
                            }),
                        )
                    })
                    .collect();
                // Filter rules the workers never apply (an event type the generation does not know,
                // docs/dm-behaviour.md §15).
                let inactive: BTreeSet<String> = t
                    .subtasks
                    .values()
                    .flat_map(|s| crate::sim::filters::inactive_rules(&s.cfg, self.generation))
                    .collect();
                (n.clone(), json!({"subtasks": subs, "cli_args": t.cli_args, "inactive_filter_rules": inactive}))
            })
            .collect();
        let kept: Vec<Value> = self.binlog.meta.keys().map(|(_, m, t)| json!({"task": t, "meta_schema": m})).collect();
        json!({
            "generation": self.generation,
            "workers": workers,
            "sources": sources,
            "tasks": tasks,
            "templates": self.templates,
            "kept_meta": kept,
            "upstreams": upstreams,
            "downstream_meta": downstream_meta,
            "downstream": self.downstream.snapshot(),
        })
    }
}
