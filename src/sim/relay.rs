//! Source enable/disable and relay: the scheduler's `UpdateSourceCfg` refusal (46025), `StartRelay` /
//! `StopRelay` with and without worker names, purge, and what the workers report for a source
//! (docs/dm-behaviour.md §3, §4).

use std::collections::HashMap;
use std::time::Instant;

use serde_json::{Value, json};

use super::errors::{SimError, e};
use super::state::{Expected, Out, R, State};
use crate::dm::types::*;

impl State {
    /// Whether the source's config has `enable_relay` (set by `enable_relay: true` at create or by the
    /// `worker_name_list: []` quick path): the bound worker then relays without being a named relay worker.
    pub(crate) fn config_relay(&self, source: &str) -> bool {
        self.sources.get(source).and_then(|s| s.cfg.relay_config.as_ref()).and_then(|r| r.enable_relay).unwrap_or(false)
    }

    /// `UpdateSourceCfg` writes a source config only when no task on the source is expected Running and no
    /// relay stage exists for it (relay started with worker names); otherwise 46025 (docs/dm-behaviour.md §3).
    pub(crate) fn check_source_cfg_update(&self, source: &str) -> Result<(), SimError> {
        let running =
            self.tasks.values().any(|t| t.subtasks.get(source).is_some_and(|s| s.expected == Expected::Running));
        if running || !self.relay_workers(source).is_empty() {
            return Err(e::source_cfg_update(source));
        }
        Ok(())
    }

    /// `/enable`: 40070 without a bound worker (even when already enabled), a no-op when enabled, then the
    /// config write (46025 rules), then every task on the source expected Running, even ones stopped on purpose
    /// (docs/dm-behaviour.md §3).
    pub fn enable_source(&mut self, name: &str, now: Instant) -> R {
        if !self.sources.contains_key(name) {
            return Err(e::source_not_exist(name));
        }
        if self.bound_worker(name).is_none() {
            return Err(e::worker_no_start());
        }
        if self.sources[name].cfg.enable {
            return Ok(Out::Empty(200));
        }
        self.check_source_cfg_update(name)?;
        if let Some(s) = self.sources.get_mut(name) {
            s.cfg.enable = true;
        }
        self.set_expected_on_source(name, Expected::Running, now);
        Ok(Out::Empty(200))
    }

    /// `/disable`: a no-op when disabled. A bound source first has every task on it set to expected Stopped, then the
    /// config is written under the 46025 rules: a refusal (relay started) leaves the tasks stopped and the source
    /// enabled. An unbound source skips the stop, so tasks still expected Running refuse it (docs/dm-behaviour.md §3).
    pub fn disable_source(&mut self, name: &str, now: Instant) -> R {
        let Some(s) = self.sources.get(name) else { return Err(e::source_not_exist(name)) };
        if !s.cfg.enable {
            return Ok(Out::Empty(200));
        }
        if self.bound_worker(name).is_some() {
            self.set_expected_on_source(name, Expected::Stopped, now);
        }
        self.check_source_cfg_update(name)?;
        if let Some(s) = self.sources.get_mut(name) {
            s.cfg.enable = false;
        }
        Ok(Out::Empty(200))
    }

    /// `/relay/enable` (docs/dm-behaviour.md §4). Without `worker_name_list` the bound worker is named (40070 if
    /// unbound); an empty list takes the scheduler's quick path. Relay fields that differ from the stored config are
    /// written first, under the 46025 rules, and stay written even if starting relay then fails.
    pub fn enable_relay(&mut self, name: &str, req: EnableRelayRequest) -> R {
        let Some(src) = self.sources.get(name) else { return Err(e::source_not_exist(name)) };
        let workers = match req.worker_name_list.clone() {
            Some(l) => l,
            None => match self.bound_worker(name) {
                Some(w) => vec![w.name.clone()],
                None => return Err(e::worker_no_start()),
            },
        };
        let rc = src.cfg.relay_config.clone().unwrap_or_default();
        let mut new_rc = rc.clone();
        let differs = |want: &Option<String>, have: &Option<String>| {
            want.as_ref().is_some_and(|w| Some(w.as_str()) != have.as_deref().or(Some("")))
        };
        if differs(&req.relay_binlog_name, &rc.relay_binlog_name) {
            new_rc.relay_binlog_name = req.relay_binlog_name.clone();
        }
        if differs(&req.relay_binlog_gtid, &rc.relay_binlog_gtid) {
            new_rc.relay_binlog_gtid = req.relay_binlog_gtid.clone();
        }
        if differs(&req.relay_dir, &rc.relay_dir) {
            new_rc.relay_dir = req.relay_dir.clone();
        }
        if new_rc != rc {
            self.check_source_cfg_update(name)?;
            if let Some(s) = self.sources.get_mut(name) {
                s.cfg.relay_config = Some(new_rc);
            }
        }
        self.start_relay(name, &workers)
    }

    /// The scheduler's `StartRelay`.
    pub(crate) fn start_relay(&mut self, name: &str, workers: &[String]) -> R {
        let started = self.relay_workers(name);
        if workers.is_empty() {
            // Quick path: `enable_relay` goes into the source config and the bound worker relays by itself.
            if !started.is_empty() {
                return Err(SimError::new(
                    46028,
                    format!(
                        "the source has `start-relay` with worker name for workers {}, so it can't `start-relay` without worker name now",
                        e::go_list(&started)
                    ),
                )
                .workaround("Please stop all relay workers first, or specify worker name for `start-relay`."));
            }
            self.set_config_relay(name, true);
            return Ok(Out::Empty(200));
        }
        if self.config_relay(name) {
            return Err(SimError::new(
                46030,
                "the source has `start-relay` automatically for bound worker, so it can't `start-relay` with worker name now",
            )
            .workaround("Please stop relay by `stop-relay` without worker name first."));
        }
        let missing: Vec<String> = workers.iter().filter(|w| !self.workers.contains_key(*w)).cloned().collect();
        if !missing.is_empty() {
            return Err(e::worker_not_exist(&e::go_list(&missing)));
        }
        let (mut bound_w, mut bound_s, mut busy_w, mut busy_s) = (vec![], vec![], vec![], vec![]);
        for w in workers {
            let wk = &self.workers[w];
            if let Some(b) = wk.bound.as_ref().filter(|b| b.as_str() != name) {
                bound_w.push(w.clone());
                bound_s.push(b.clone());
            }
            if let Some(r) = wk.relay.as_ref().filter(|r| r.as_str() != name) {
                busy_w.push(w.clone());
                busy_s.push(r.clone());
            }
        }
        if !bound_w.is_empty() {
            return Err(SimError::new(
                46021,
                format!(
                    "these workers {} have bound for another sources {} respectively",
                    e::go_list(&bound_w),
                    e::go_list(&bound_s)
                ),
            )
            .workaround("Please `start-relay` on free or same source workers."));
        }
        if !busy_w.is_empty() {
            return Err(SimError::new(
                46020,
                format!(
                    "these workers {} have started relay for sources {} respectively",
                    e::go_list(&busy_w),
                    e::go_list(&busy_s)
                ),
            )
            .workaround("Please use `stop-relay` to stop them, or change your topology."));
        }
        for w in workers {
            if let Some(wk) = self.workers.get_mut(w) {
                wk.relay = Some(name.to_string());
            }
        }
        Ok(Out::Empty(200))
    }

    fn set_config_relay(&mut self, name: &str, on: bool) {
        if let Some(s) = self.sources.get_mut(name) {
            s.cfg.relay_config.get_or_insert_with(Default::default).enable_relay = Some(on);
        }
    }

    /// `/relay/disable` (docs/dm-behaviour.md §4). Without a body only the bound worker is named (40070 if unbound), so
    /// relay on other workers keeps running; an empty list takes the quick path.
    pub fn disable_relay(&mut self, name: &str, req: DisableRelayRequest) -> R {
        if !self.sources.contains_key(name) {
            return Err(e::source_not_exist(name));
        }
        let workers = match req.worker_name_list {
            Some(l) => l,
            None => match self.bound_worker(name) {
                Some(w) => vec![w.name.clone()],
                None => return Err(e::worker_no_start()),
            },
        };
        self.stop_relay(name, &workers)
    }

    /// The scheduler's `StopRelay`: a named worker that is not relaying counts as already stopped.
    pub(crate) fn stop_relay(&mut self, name: &str, workers: &[String]) -> R {
        if workers.is_empty() {
            let started = self.relay_workers(name);
            if !started.is_empty() {
                return Err(SimError::new(
                    46029,
                    format!(
                        "the source has `start-relay` with worker name for workers {}, so it can't `stop-relay` without worker name now",
                        e::go_list(&started)
                    ),
                )
                .workaround("Please specify worker names for `stop-relay`."));
            }
            self.set_config_relay(name, false);
            return Ok(Out::Empty(200));
        }
        if self.config_relay(name) {
            return Err(SimError::new(
                46031,
                "the source has `start-relay` automatically for bound worker, so it can't `stop-relay` with worker name now",
            )
            .workaround("Please use `stop-relay` without worker name."));
        }
        let missing: Vec<String> = workers.iter().filter(|w| !self.workers.contains_key(*w)).cloned().collect();
        if !missing.is_empty() {
            return Err(e::worker_not_exist(&e::go_list(&missing)));
        }
        let (mut wrong_w, mut wrong_s) = (vec![], vec![]);
        for w in workers {
            if let Some(r) = self.workers[w].relay.as_ref().filter(|r| r.as_str() != name) {
                wrong_w.push(w.clone());
                wrong_s.push(r.clone());
            }
        }
        if !wrong_w.is_empty() {
            return Err(SimError::new(
                46022,
                format!(
                    "these workers {} have started relay for another sources {} respectively",
                    e::go_list(&wrong_w),
                    e::go_list(&wrong_s)
                ),
            )
            .workaround("Please correct sources in `stop-relay`."));
        }
        for w in workers {
            if let Some(wk) = self.workers.get_mut(w)
                && wk.relay.as_deref() == Some(name)
            {
                wk.relay = None;
            }
        }
        Ok(Out::Empty(200))
    }

    /// `/relay/purge`: asks the workers started with worker names; none gives 49001 (a relay of the
    /// `enable_relay` config is not among them) (docs/dm-behaviour.md §4).
    pub fn purge_relay(&mut self, name: &str, _req: PurgeRelayRequest) -> R {
        if self.relay_workers(name).is_empty() {
            return Err(e::openapi(format!("relay worker for source {name} not found, please `enable-relay` first")));
        }
        Ok(Out::Empty(200))
    }

    /// Whether `worker` runs relay for `source`: named relay, or bound with the config's `enable_relay`.
    pub(crate) fn relays(&self, worker: &str, source: &str) -> bool {
        self.workers.get(worker).is_some_and(|w| {
            w.relay.as_deref() == Some(source) || (w.bound.as_deref() == Some(source) && self.config_relay(source))
        })
    }

    /// The workers DM asks about a source: its named relay workers, then the bound worker if not among them
    /// (`getStatusFromWorkers` with the source specified).
    /// [`State::status_workers`] of every source at once, in one pass over the workers: list answers look it up
    /// per item, and one scan of every worker per item made them quadratic in the fleet's size.
    pub(crate) fn status_workers_by_source(&self) -> HashMap<String, Vec<String>> {
        let mut relay: HashMap<String, Vec<String>> = HashMap::new();
        let mut bound: HashMap<&str, &str> = HashMap::new();
        for w in self.workers.values() {
            if let Some(r) = &w.relay {
                relay.entry(r.clone()).or_default().push(w.name.clone());
            }
            if let Some(b) = &w.bound {
                bound.entry(b.as_str()).or_insert(w.name.as_str());
            }
        }
        for (source, name) in bound {
            let list = relay.entry(source.to_string()).or_default();
            if !list.iter().any(|n| n == name) {
                list.push(name.to_string());
            }
        }
        relay
    }

    pub(crate) fn status_workers(&self, source: &str) -> Vec<String> {
        let mut out = self.relay_workers(source);
        if let Some(b) = self.bound_worker(source)
            && !out.contains(&b.name)
        {
            out.push(b.name.clone());
        }
        out
    }

    /// `GET /sources/{name}/status` entries (docs/dm-behaviour.md §4): one per relay or bound worker; `relay_status`
    /// only where relay runs; an unbound source without relay workers gives one entry with a 38029 error.
    pub(crate) fn source_status_list(&self, name: &str) -> Vec<Value> {
        self.source_status_list_with(name, self.status_workers(name))
    }

    /// [`State::source_status_list`] given the source's status workers.
    pub(crate) fn source_status_list_with(&self, name: &str, workers: Vec<String>) -> Vec<Value> {
        if workers.is_empty() {
            return vec![json!({"source_name": name, "worker_name": "", "error_msg": no_worker_msg(name)})];
        }
        let dir = self
            .sources
            .get(name)
            .and_then(|s| s.cfg.relay_config.as_ref())
            .and_then(|r| r.relay_dir.clone())
            .unwrap_or_default();
        workers
            .iter()
            .map(|w| {
                let wk = &self.workers[w];
                if wk.unreachable || wk.offline {
                    let shown = if self.generation.v26() { w.as_str() } else { "" };
                    return json!({"source_name": name, "worker_name": shown, "error_msg": rpc_error_msg(&wk.addr)});
                }
                let mut v = json!({"source_name": name, "worker_name": w});
                if self.relays(w, name) {
                    // A relay that hit an error is Paused, and the worker's errors come back as `error_msg`, one per
                    // line (`getSourceStatusListFromWorker`).
                    let stage = if wk.relay_error.is_some() { "Paused" } else { "Running" };
                    v["relay_status"] = json!({
                        "master_binlog": "(mysql-bin.000003, 1234)",
                        "master_binlog_gtid": "",
                        "relay_dir": format!("{dir}/{w}"),
                        "relay_binlog_gtid": "",
                        "relay_catch_up_master": wk.relay_error.is_none(),
                        "stage": stage,
                    });
                    if let Some(e) = &wk.relay_error {
                        v["error_msg"] = json!(format!("{e}\n"));
                    }
                }
                v
            })
            .collect()
    }
}

/// `ErrMasterWorkerArgsExtractor` for a source no worker handles (docs/dm-behaviour.md §8).
pub(crate) fn no_worker_msg(source: &str) -> String {
    SimError::new(38029, format!("{source} relevant worker-client not found"))
        .workaround("Please use list-member command to see if the some workers are offline.")
        .error_msg()
}

/// The gRPC error of a worker that does not answer (docs/dm-behaviour.md §8).
pub(crate) fn rpc_error_msg(addr: &str) -> String {
    SimError::new(38008, "grpc request error")
        .cause(format!(
            "rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: dial tcp {addr}: connect: connection refused\""
        ))
        .error_msg()
}
