//! A stateful simulator of DM-master's OpenAPI (`dm-apply sim`, and in-process for tests).
//!
//! It implements the server behaviour described in `docs/dm-behaviour.md`, per server generation
//! ([`Generation`]): request validation answers, masked passwords, lossy and randomly ordered task reads, tasks
//! created stopped, asynchronous start/stop, the refusal rules with DM's error codes, worker binding, relay, a fake
//! upstream catalog and a fake downstream with accounts. It shares only the wire types (`crate::dm::types`) with
//! the client, none of its logic, so a client bug cannot hide itself behind the same bug here.
//!
//! Test-only controls (request log, fault injection, changing state behind a client's back) live on
//! [`SimControl`] in-process and under `/sim/...` over HTTP, never under `/api/v1`.

mod bound;
mod catalog;
mod checkpoint;
mod clock;
mod downstream;
mod errors;
mod filters;
mod generation;
mod http;
mod legacy;
mod net;
mod precheck;
mod project;
mod relay;
mod schema;
mod selector;
mod shard;
mod state;
mod taskargs;
mod templates;
mod tls;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use errors::SimError;
pub use generation::Generation;
pub use shard::{ShardDdlState, ShardingGroup};
pub use tls::SimTls;

/// An injected fault. A faulted request never changes state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultKind {
    /// Answer 503 without doing anything.
    ServerError,
    /// Drop the connection without answering (TCP reset).
    Reset,
    /// Wait `fault_delay` (default 2 s), then answer 504 without doing anything: exercises client timeouts.
    Delay,
}

impl FaultKind {
    pub fn parse(s: &str) -> Option<FaultKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "5xx" | "500" | "503" | "server-error" | "servererror" => Some(FaultKind::ServerError),
            "reset" | "connection-reset" => Some(FaultKind::Reset),
            "delay" | "slow" => Some(FaultKind::Delay),
            _ => None,
        }
    }

    pub fn all() -> Vec<FaultKind> {
        vec![FaultKind::ServerError, FaultKind::Reset, FaultKind::Delay]
    }
}

/// Knobs of a simulator instance.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Number of DM-workers (`worker1`..`workerN`); each can be bound to one source.
    pub workers: usize,
    /// Added to every `/api/v1` request (held while a task latch is held).
    pub latency: Duration,
    /// Fraction (0.0–1.0) of requests answered with an injected fault.
    pub fault_rate: f64,
    pub fault_kinds: Vec<FaultKind>,
    pub generation: Generation,
    /// Seed of every random choice (list order, server ids, faults); `None` picks one.
    pub seed: Option<u64>,
    /// Time an asynchronous transition takes (start → Running, stop → Paused). A full/all task spends three
    /// times this in each of Dump and Load.
    pub stage_delay: Duration,
    /// How long a `Delay` fault waits before answering.
    pub fault_delay: Duration,
    /// Serve https (optionally requiring client certificates) instead of http.
    pub tls: Option<SimTls>,
    /// `openapi = true` in `dm-master.toml`. When false, every `/api/v1/...` request is a plain-text `404 page not
    /// found`, while `/status` and the legacy `/apis/...` routes are still served (docs/dm-behaviour.md §2).
    pub openapi: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            workers: 3,
            latency: Duration::ZERO,
            fault_rate: 0.0,
            fault_kinds: FaultKind::all(),
            generation: Generation::default(),
            seed: None,
            stage_delay: Duration::from_millis(20),
            fault_delay: Duration::from_secs(2),
            tls: None,
            openapi: true,
        }
    }
}

/// One request the simulator received (`/sim/...` requests are not logged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    /// Raw query string (without `?`), `""` when none.
    pub query: String,
    /// HTTP status answered; 0 when the connection was dropped (reset fault, offline) or still in flight.
    pub status: u16,
    /// Anything but GET/HEAD.
    pub mutating: bool,
    /// A fault was injected instead of handling the request.
    pub faulted: bool,
    /// The request body as text, `None` when there was none (extra beyond SIM-API.md).
    pub body: Option<String>,
    /// The request's Content-Type header, `None` when absent (extra).
    pub content_type: Option<String>,
}

/// Mutable knobs shared by the server and its controls.
pub(crate) struct Knobs {
    pub latency: Duration,
    pub fault_rate: f64,
    pub fault_kinds: Vec<FaultKind>,
    pub fault_delay: Duration,
}

pub(crate) struct Shared {
    pub state: Mutex<state::State>,
    pub knobs: Mutex<Knobs>,
    pub log: Mutex<Vec<LoggedRequest>>,
    pub latches: Mutex<std::collections::HashSet<String>>,
    pub offline: AtomicBool,
    pub generation: Generation,
    pub openapi: bool,
}

/// The locked state (see [`Shared::state`]).
pub(crate) struct StateGuard<'a> {
    guard: std::sync::MutexGuard<'a, state::State>,
    unsettle: bool,
}

impl std::ops::Deref for StateGuard<'_> {
    type Target = state::State;
    fn deref(&self) -> &state::State {
        &self.guard
    }
}

impl std::ops::DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut state::State {
        &mut self.guard
    }
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        if self.unsettle {
            self.guard.unsettle();
        }
    }
}

impl Shared {
    /// The state, for anything that may change it: when released, the next `advance` walks every subtask again.
    pub(crate) fn state(&self) -> StateGuard<'_> {
        StateGuard { guard: self.state.lock().unwrap_or_else(|p| p.into_inner()), unsettle: true }
    }
    /// The state, for an OpenAPI read: reads change no subtask, so `advance` may keep skipping the walk.
    pub(crate) fn state_read(&self) -> StateGuard<'_> {
        StateGuard { guard: self.state.lock().unwrap_or_else(|p| p.into_inner()), unsettle: false }
    }
    pub(crate) fn knobs(&self) -> std::sync::MutexGuard<'_, Knobs> {
        self.knobs.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub(crate) fn log(&self) -> std::sync::MutexGuard<'_, Vec<LoggedRequest>> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running simulator.
pub struct SimServer {
    addr: std::net::SocketAddr,
    https: bool,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    join: Option<tokio::task::JoinHandle<()>>,
}

impl SimServer {
    /// Start on `127.0.0.1` on a free port.
    pub async fn start(opts: SimOptions) -> std::io::Result<SimServer> {
        Self::start_on(opts, "127.0.0.1:0").await
    }

    /// Start on `listen` (`HOST:PORT`; port 0 picks a free one).
    pub async fn start_on(opts: SimOptions, listen: &str) -> std::io::Result<SimServer> {
        // Check the TLS material before binding, so a bad file does not leave a port half set up.
        let tls = match &opts.tls {
            Some(t) => {
                Some(tls::server_config(t).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?)
            }
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(state::State::new(&opts, &addr.to_string())),
            knobs: Mutex::new(Knobs {
                latency: opts.latency,
                fault_rate: if opts.fault_rate.is_finite() { opts.fault_rate.clamp(0.0, 1.0) } else { 0.0 },
                fault_kinds: opts.fault_kinds.clone(),
                fault_delay: opts.fault_delay,
            }),
            log: Mutex::new(Vec::new()),
            latches: Mutex::new(Default::default()),
            offline: AtomicBool::new(false),
            generation: opts.generation,
            openapi: opts.openapi,
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = http::router(shared.clone());
        let https = tls.is_some();
        let listener = match tls {
            Some(config) => net::SimListener::tls(listener, config)?,
            None => net::SimListener::new(listener),
        };
        let join = tokio::spawn(async move {
            let svc = app.into_make_service_with_connect_info::<net::ConnMeta>();
            let _ = axum::serve(listener, svc)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(SimServer { addr, https, shared, stop: Some(stop), join: Some(join) })
    }

    /// `http://127.0.0.1:PORT`, or `https://...` when serving TLS.
    pub fn url(&self) -> String {
        format!("{}://{}", if self.https { "https" } else { "http" }, self.addr)
    }

    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    pub fn control(&self) -> SimControl {
        SimControl { shared: self.shared.clone() }
    }

    /// Stop serving and wait for the server task to end.
    pub async fn shutdown(mut self) {
        self.stop_now();
        if let Some(j) = self.join.take() {
            // Keep-alive connections would hold graceful shutdown open: give it a moment, then abort.
            let abort = j.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), j).await.is_err() {
                abort.abort();
            }
        }
    }

    fn stop_now(&mut self) {
        self.shared.offline.store(true, Ordering::SeqCst);
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.stop_now();
        if let Some(j) = self.join.take() {
            j.abort();
        }
    }
}

/// In-process control of a simulator (the same surface is served under `/sim/...`).
#[derive(Clone)]
pub struct SimControl {
    shared: Arc<Shared>,
}

impl SimControl {
    /// Every `/api/v1` and `/status` request, in arrival order.
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.shared.log().clone()
    }

    pub fn clear_log(&self) {
        self.shared.log().clear();
    }

    pub fn set_faults(&self, rate: f64, kinds: Vec<FaultKind>) {
        let mut k = self.shared.knobs();
        k.fault_rate = if rate.is_finite() { rate.clamp(0.0, 1.0) } else { 0.0 };
        k.fault_kinds = kinds;
    }

    pub fn set_fault_delay(&self, d: Duration) {
        self.shared.knobs().fault_delay = d;
    }

    pub fn set_latency(&self, d: Duration) {
        self.shared.knobs().latency = d;
    }

    /// Hold the scheduler latch of task `task` as another client in the middle of an operation would: until
    /// [`Self::release_task_latch`], every create, update, start, stop and delete of the task is refused with 46024.
    /// `false` when the latch was already held.
    pub fn hold_task_latch(&self, task: &str) -> bool {
        self.shared.latches.lock().unwrap_or_else(|p| p.into_inner()).insert(task.to_string())
    }

    pub fn release_task_latch(&self, task: &str) {
        self.shared.latches.lock().unwrap_or_else(|p| p.into_inner()).remove(task);
    }

    pub fn set_stage_delay(&self, d: Duration) {
        self.shared.state().stage_delay = d.min(state::MAX_STAGE_DELAY);
    }

    /// The subtask of `task` on `source` is observed `Paused` with `error_msg` (its expected stage stays Running,
    /// like a worker pausing on an error). Does nothing if there is no such subtask.
    pub fn pause_task_with_error(&self, task: &str, source: &str, error_msg: &str) {
        self.shared.state().pause_with_error(task, source, error_msg);
    }

    /// The next `count` task-status reads (status, `with_status`/`stage` lists) fail with 400 49001 "worker's
    /// query-status response is nil", as while a worker has no subtasks yet (docs/dm-behaviour.md §8).
    pub fn fail_next_status(&self, count: u32) {
        self.shared.state().status_glitches = count;
    }

    /// While offline, every `/api/v1` and `/status` connection is dropped without an answer (`/sim` still works).
    pub fn set_offline(&self, offline: bool) {
        self.shared.offline.store(offline, Ordering::SeqCst);
    }

    /// A worker goes offline (its source is unbound and re-bound to a free worker if any) or comes back.
    pub fn set_worker_offline(&self, worker: &str, offline: bool) -> Result<(), String> {
        self.shared.state().set_worker_offline(worker, offline)
    }

    /// The relay on `worker` stops on `error` (`None`: runs again): the source's status shows its relay `Paused`
    /// with the error (docs/dm-behaviour.md R3.6).
    pub fn set_relay_error(&self, worker: &str, error: Option<&str>) -> Result<(), String> {
        self.shared.state().set_relay_error(worker, error.map(str::to_string))
    }

    /// A worker stops answering but stays registered and bound: task status shows stage `""` with a 38008
    /// message until it is reachable again.
    pub fn set_worker_unreachable(&self, worker: &str, unreachable: bool) -> Result<(), String> {
        self.shared.state().set_worker_unreachable(worker, unreachable)
    }

    /// Full internal state as JSON, for assertions. Stored passwords are included (this is test-only).
    pub fn snapshot(&self) -> serde_json::Value {
        self.shared.state().snapshot()
    }

    /// Merge `patch` (JSON merge patch, RFC 7386) into the stored config of a source, behind the client's back.
    pub fn patch_source(&self, source: &str, patch: serde_json::Value) -> Result<(), String> {
        self.shared.state().patch_source(source, &patch)
    }

    /// Merge `patch` into the stored config of every subtask of `task` (as an OpenAPI `Task` document).
    pub fn patch_task(&self, task: &str, patch: serde_json::Value) -> Result<(), String> {
        self.shared.state().patch_task(task, None, &patch)
    }

    /// Merge `patch` into the stored config of one subtask only, so GET flips between differing configs
    /// (docs/dm-behaviour.md §9).
    pub fn patch_subtask(&self, task: &str, source: &str, patch: serde_json::Value) -> Result<(), String> {
        self.shared.state().patch_task(task, Some(source), &patch)
    }

    /// Remove a task without any check (as if someone used dmctl).
    pub fn remove_task(&self, task: &str) -> bool {
        self.shared.state().remove_task_raw(task)
    }

    /// Set the fake upstream catalog of a source: schema → tables.
    pub fn set_catalog(&self, source: &str, catalog: std::collections::BTreeMap<String, Vec<String>>) {
        self.shared.state().catalogs.insert(source.to_string(), catalog);
    }

    pub fn generation(&self) -> Generation {
        self.shared.generation
    }

    /// The upstream of `source` has purged its binlogs: `oldest_binlog` (e.g. `mysql-bin.000010`) is the oldest
    /// file left (`None`: nothing purged), `purged_gtid` its `gtid_purged` (`None`: the GTIDs of the purged
    /// files). Create and update of a task starting before that fail the precheck (26005), and a subtask whose
    /// run starts there pauses with the syncer's error (docs/dm-behaviour.md §5, §6, §8).
    pub fn purge_binlogs(
        &self,
        source: &str,
        oldest_binlog: Option<&str>,
        purged_gtid: Option<&str>,
    ) -> Result<(), String> {
        self.shared.state().binlog.purge(source, oldest_binlog, purged_gtid)
    }

    /// Creates a task from a dmctl task file (YAML text), as `dmctl start-task` does: the same checks as an
    /// OpenAPI create (sources, binding, downstream, precheck), stored with its full configuration, and started
    /// when `start`. Answers the precheck's check result. Its OpenAPI reads are the server's lossy projection;
    /// `GET /apis/v1alpha1/tasks/{name}?type=TaskType` shows all of it (docs/dm-behaviour.md §11).
    pub fn create_dmctl_task(&self, yaml: &str, start: bool) -> Result<String, SimError> {
        let now = std::time::Instant::now();
        let mut st = self.shared.state();
        st.advance(now);
        st.create_dmctl_task(yaml, start, now)
    }

    /// Sets (or, with the default value, clears) the shard DDL coordination state the status of one subtask
    /// shows (docs/dm-behaviour.md §8).
    pub fn set_shard_ddl(&self, task: &str, source: &str, state: ShardDdlState) -> Result<(), String> {
        self.shared.state().set_shard_ddl(task, source, state)
    }

    /// Register an account of the fake downstream database at `host:port`. Once an account is registered for a
    /// `(host, port, user)`, a connection with another password is refused like MySQL does (`Access denied`);
    /// without one, any password is accepted (docs/dm-behaviour.md §10).
    pub fn register_downstream_account(&self, host: &str, port: u16, user: &str, password: &str) {
        self.shared.state().downstream.register(host, port, user, password);
    }

    /// Forget every registered downstream account and hosts entry.
    pub fn clear_downstream_accounts(&self) {
        self.shared.state().downstream.clear();
    }

    /// A hosts-file entry on DM-master's machine: `host` resolves (even a reserved `.invalid` name) to a
    /// database that accepts connections. For tests that pin around a known client bug; a real cluster would
    /// need the same entry and a database behind it.
    pub fn add_hosts_entry(&self, host: &str) {
        self.shared.state().downstream.add_host(host);
    }
}
