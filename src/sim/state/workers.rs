//! Workers and masters: binding sources to workers, listing and taking members offline, cluster info
//! (docs/dm-behaviour.md §12).

use super::*;

impl State {
    // ------------------------------------------------------------------------------------------ binding

    pub fn bound_worker(&self, source: &str) -> Option<&Worker> {
        self.workers.values().find(|w| w.bound.as_deref() == Some(source))
    }

    /// Bind a source to a worker in DM's order of preference (docs/dm-behaviour.md §12): a relay worker of the source,
    /// its last-bound worker if free, any free worker.
    pub(super) fn try_bind(&mut self, source: &str) -> bool {
        if self.bound_worker(source).is_some() {
            return true;
        }
        let last = self.sources.get(source).and_then(|s| s.last_bound.clone());
        let pick = self
            .workers
            .values()
            .find(|w| !w.offline && w.bound.is_none() && w.relay.as_deref() == Some(source))
            .or_else(|| last.as_ref().and_then(|l| self.workers.get(l)).filter(|w| w.is_free()))
            .or_else(|| self.workers.values().find(|w| w.is_free()))
            .map(|w| w.name.clone());
        match pick {
            Some(w) => {
                self.bind(source, &w);
                true
            }
            None => false,
        }
    }

    pub(super) fn bind(&mut self, source: &str, worker: &str) {
        if let Some(w) = self.workers.get_mut(worker) {
            w.bound = Some(source.to_string());
        }
        if let Some(s) = self.sources.get_mut(source) {
            s.last_bound = Some(worker.to_string());
        }
    }

    /// A freed worker binds an unbound source (sources in name order).
    pub(super) fn bind_unbound(&mut self) {
        let unbound: Vec<String> = self.sources.keys().filter(|s| self.bound_worker(s).is_none()).cloned().collect();
        for s in unbound {
            if !self.try_bind(&s) {
                break;
            }
        }
    }

    /// Workers relaying for `source` because they were named in `/relay/enable` (the scheduler's relay workers).
    pub(crate) fn relay_workers(&self, source: &str) -> Vec<String> {
        self.workers.values().filter(|w| w.relay.as_deref() == Some(source)).map(|w| w.name.clone()).collect()
    }

    /// [`State::tasks_on`] of every source at once.
    pub(crate) fn tasks_by_source(&self) -> HashMap<String, Vec<String>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for (n, t) in self.tasks.iter() {
            for source in t.subtasks.keys() {
                out.entry(source.clone()).or_default().push(n.clone());
            }
        }
        out
    }

    pub(crate) fn tasks_on(&self, source: &str) -> Vec<String> {
        self.tasks.iter().filter(|(_, t)| t.subtasks.contains_key(source)).map(|(n, _)| n.clone()).collect()
    }

    pub(crate) fn set_expected_on_source(&mut self, source: &str, exp: Expected, now: Instant) {
        let delay = self.stage_delay;
        for t in self.tasks.values_mut() {
            if let Some(sub) = t.subtasks.get_mut(source) {
                set_expected(sub, exp, now, delay);
            }
        }
    }

    // ------------------------------------------------------------------------------------------ cluster

    pub fn list_masters(&mut self) -> R {
        let mut m = self.masters.clone();
        m.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Out::Json(200, json!({"total": m.len(), "data": m})))
    }

    pub fn offline_master(&mut self, name: &str) -> R {
        let before = self.masters.len();
        self.masters.retain(|m| m.name != name);
        if self.masters.len() == before {
            // `ErrMasterMasterNameNotExist` (docs/dm-behaviour.md §12).
            return Err(SimError::new(38048, format!("dm-master with name {name} not exists"))
                .workaround("Please use list-member command to see masters."));
        }
        Ok(Out::Empty(204))
    }

    pub fn list_workers(&mut self) -> R {
        let data: Vec<Value> = self
            .workers
            .values()
            .map(|w| {
                json!({
                    "name": w.name,
                    "addr": w.addr,
                    "bound_stage": w.stage(),
                    // Only the bound source: a worker in the `relay` stage shows `""` (docs/dm-behaviour.md R12.1).
                    "bound_source_name": w.bound.clone().unwrap_or_default(),
                })
            })
            .collect();
        Ok(Out::Json(200, json!({"total": data.len(), "data": data})))
    }

    pub fn offline_worker(&mut self, name: &str) -> R {
        let w = self.workers.get(name).ok_or_else(|| e::worker_not_exist(name))?;
        if !w.offline {
            return Err(SimError::new(
                46005,
                format!("dm-worker with name {name} is still online, must shut it down first"),
            ));
        }
        self.workers.remove(name);
        Ok(Out::Empty(204))
    }

    pub fn cluster_info(&mut self) -> R {
        let mut v = json!({"cluster_id": self.cluster_id});
        if let Some(t) = &self.topology {
            v["topology"] = t.clone();
        }
        Ok(Out::Json(200, v))
    }

    pub fn update_cluster_info(&mut self, topology: Value) -> R {
        self.topology = Some(topology);
        self.cluster_info()
    }
}
