//! Live state: what DM-master has now, fetched in a constant number of requests.
//!
//! `GET /status` (version), `GET /cluster/info`, `GET /sources`, `GET /sources?enable_relay=true&with_status=true`
//! (which sources have relay workers, and each worker's relay status), `GET /cluster/workers` (binding and free
//! workers), `GET /tasks?with_status=true` and the state template, concurrently. One failing worker
//! fails a whole `with_status` list, and relay on a worker other than the bound one makes it fail permanently
//! (docs/dm-behaviour.md R8.12), so on failure the task list is read without status and the status of each task
//! that matters is read one by one; what still cannot be read is marked unavailable, with DM's message, and
//! reported as a warning that every plan output shows. "Unavailable" is never read as "running". The relay list
//! with status falls back to the list without status (which sources, not which workers); a failed worker list is
//! a warning.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::dm::types::{ClusterWorker, Source, Stage, SubTaskStatus, Task};
use crate::dm::{DmClient, DmError, ServerVersion};
use crate::state::{self, StateView};

/// A task as read from DM, with its subtask status when it could be read.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveTask {
    pub task: Task,
    /// `None`: status unavailable (`status_error` says why).
    pub status: Option<Vec<SubTaskStatus>>,
    /// Why the status could not be read (DM's answer), when `status` is `None`.
    pub status_error: Option<String>,
}

impl LiveTask {
    /// A task read with its status.
    pub fn new(task: Task, status: Option<Vec<SubTaskStatus>>) -> Self {
        LiveTask { task, status, status_error: None }
    }
}

/// Everything `plan` and `drift` need from DM-master.
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    /// Address of DM-master as it may be shown and stored (`DmClient::addr`: credentials replaced by `***`).
    pub addr: String,
    pub version: ServerVersion,
    pub cluster_id: Option<u64>,
    pub sources: BTreeMap<String, Source>,
    /// Sources with relay workers started by name: DM refuses their update, enable and disable (46025) while
    /// relay runs (docs/dm-behaviour.md R4.3). `None` when it could not be read.
    pub relay_sources: Option<BTreeSet<String>>,
    /// Relay of the sources that have relay workers started by name, by source (sources without are absent).
    /// `None` when the workers could not be read (a warning says why).
    pub relay: Option<BTreeMap<String, LiveRelay>>,
    /// DM-workers, with their stage and bound source (docs/dm-behaviour.md R12.1). `None` when they could not be
    /// read (a warning says why).
    pub workers: Option<Vec<ClusterWorker>>,
    pub tasks: BTreeMap<String, LiveTask>,
    /// dm-apply's state record (write-only values, apply lease), as read.
    pub state: StateView,
    /// What could not be read.
    pub warnings: Vec<String>,
    /// The full (legacy) configuration of the tasks a plan would PUT or replace, read after a first planning pass
    /// (`crate::legacy::plan`); empty and not consulted after a plain fetch.
    pub legacy: crate::legacy::LegacyReads,
}

impl Live {
    /// An empty cluster (for tests and first runs).
    pub fn empty(addr: &str, version: ServerVersion) -> Self {
        Live {
            addr: addr.to_string(),
            version,
            cluster_id: None,
            sources: BTreeMap::new(),
            relay_sources: Some(BTreeSet::new()),
            relay: Some(BTreeMap::new()),
            workers: None,
            tasks: BTreeMap::new(),
            state: StateView::Absent,
            warnings: vec![],
            legacy: Default::default(),
        }
    }
}

impl Live {
    /// The worker `source` is bound to: `None` when the workers could not be read, `Some(None)` when unbound.
    pub fn bound_worker(&self, source: &str) -> Option<Option<&str>> {
        let workers = self.workers.as_ref()?;
        Some(
            workers.iter().find(|w| w.bound_stage == "bound" && w.bound_source_name == source).map(|w| w.name.as_str()),
        )
    }

    /// A worker by name (`None` also when the workers could not be read).
    pub fn worker(&self, name: &str) -> Option<&ClusterWorker> {
        self.workers.as_ref()?.iter().find(|w| w.name == name)
    }

    /// The relay workers of `source` started by name: `None` when unknown (the read failed, or DM listed the
    /// source as relaying without saying on which workers).
    pub fn relay_of(&self, source: &str) -> Option<LiveRelay> {
        match &self.relay {
            Some(m) => Some(m.get(source).cloned().unwrap_or_default()),
            // Known not to relay even when the per-worker read failed.
            None if self.relay_sources.as_ref().is_some_and(|r| !r.contains(source)) => Some(LiveRelay::default()),
            None => None,
        }
    }
}

/// One worker's relay for a source, as DM reports it (docs/dm-behaviour.md R3.6).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RelayWorker {
    /// The relay's stage (`Running`, `Paused`...); `None` while the worker shows no relay status (just started, or
    /// it could not be asked).
    pub stage: Option<Stage>,
    /// DM's error for this worker, when it reported one or could not be asked.
    pub error: Option<String>,
}

impl RelayWorker {
    /// Relay runs on the worker without error.
    pub fn running(&self) -> bool {
        self.stage == Some(Stage::Running) && self.error.is_none()
    }
}

/// The relay of one source: the workers relay was started on by name (docs/dm-behaviour.md R4.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LiveRelay {
    pub workers: BTreeMap<String, RelayWorker>,
    /// Errors of status entries DM gave without a worker name (a relay worker that did not answer, on v8.5): the
    /// worker set may then be incomplete.
    pub unattributed: Vec<String>,
}

impl LiveRelay {
    pub fn names(&self) -> BTreeSet<String> {
        self.workers.keys().cloned().collect()
    }
}

/// The relay workers of each source listed by `GET /sources?enable_relay=true&with_status=true`. Every listed source
/// has at least one worker started by name; its status lists each of them plus the bound worker (R3.6), and only a
/// worker that relays shows a relay status. So: an entry of another worker than the bound one is a relay worker;
/// the bound worker is one when it shows a relay status or is the only entry.
fn relay_from_status(list: &[Source], workers: Option<&[ClusterWorker]>) -> BTreeMap<String, LiveRelay> {
    let mut out = BTreeMap::new();
    for s in list {
        // `None`: unknown (the workers could not be read); `Some(None)`: unbound, so every entry is a relay worker.
        let bound: Option<Option<&str>> = workers.map(|ws| {
            ws.iter()
                .find(|w| w.bound_stage == "bound" && w.bound_source_name == s.source_name)
                .map(|w| w.name.as_str())
        });
        let entries = s.status_list.as_deref().unwrap_or_default();
        let mut relay = LiveRelay::default();
        for e in entries {
            let error = e.error_msg.as_deref().map(str::trim).filter(|m| !m.is_empty()).map(str::to_string);
            if e.worker_name.is_empty() {
                relay.unattributed.push(error.unwrap_or_else(|| "a status entry without a worker name".into()));
                continue;
            }
            let not_bound = match bound {
                Some(b) => b != Some(e.worker_name.as_str()),
                None => false,
            };
            let relays = e.relay_status.is_some() || entries.len() == 1 || not_bound;
            if relays {
                let stage = e.relay_status.as_ref().map(|r| r.stage.clone());
                relay.workers.insert(e.worker_name.clone(), RelayWorker { stage, error });
            }
        }
        if entries.is_empty() {
            relay.unattributed.push("DM listed the source as relaying without a status".into());
        }
        out.insert(s.source_name.clone(), relay);
    }
    out
}

/// Options of a fetch.
#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// When the task list with status fails, read status one by one for these tasks only (the declared ones).
    /// `None`: every task.
    pub status_for: Option<BTreeSet<String>>,
}

/// Read the live state. Fails only when the configuration itself cannot be read (version, sources or tasks);
/// unreadable status or state record become warnings.
pub async fn fetch(client: &DmClient) -> Result<Live, DmError> {
    fetch_with(client, &FetchOptions::default()).await
}

pub async fn fetch_with(client: &DmClient, opts: &FetchOptions) -> Result<Live, DmError> {
    assemble(client, opts, Reads::send(client).await).await
}

/// The first wave of reads: always these seven, sent at once, before anything is made of their answers.
struct Reads {
    version: Result<ServerVersion, DmError>,
    info: Result<u64, DmError>,
    sources: Result<Vec<Source>, DmError>,
    relay: Result<Vec<Source>, DmError>,
    workers: Result<Vec<ClusterWorker>, DmError>,
    tasks: Result<Vec<Task>, DmError>,
    state: StateView,
}

impl Reads {
    async fn send(client: &DmClient) -> Reads {
        let (version, info, sources, relay, workers, tasks, state) = tokio::join!(
            client.server_version(),
            client.cluster_id(),
            client.list_sources(false, None),
            client.list_sources(true, Some(true)),
            client.list_workers(),
            client.list_tasks(true, None, &[]),
            state::store::read(client),
        );
        Reads { version: version.cloned(), info, sources, relay, workers, tasks, state }
    }
}

/// The first wave sent in the background, so that the caller can load its configuration meanwhile: the reads do
/// not depend on it (only the one-by-one status fallback does, and it runs in [`Prefetch::live`]). On a large
/// fleet, loading the files and DM's answer take about as long. Dropped without [`Prefetch::live`] (the
/// configuration did not load), the reads are abandoned.
pub struct Prefetch(tokio::task::JoinHandle<Reads>);

impl Prefetch {
    pub fn start(client: &DmClient) -> Prefetch {
        let client = client.clone();
        Prefetch(tokio::spawn(async move { Reads::send(&client).await }))
    }

    /// The live state from the reads sent at [`Prefetch::start`] (the same result as [`fetch_with`]).
    pub async fn live(mut self, client: &DmClient, opts: &FetchOptions) -> Result<Live, DmError> {
        let reads = match (&mut self.0).await {
            Ok(reads) => reads,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Cancelled: only a runtime shutting down does that; read again rather than invent an error.
            Err(_) => Reads::send(client).await,
        };
        assemble(client, opts, reads).await
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn assemble(client: &DmClient, opts: &FetchOptions, reads: Reads) -> Result<Live, DmError> {
    let Reads { version, info, sources, relay, workers, tasks, state } = reads;
    let version = version?;
    let sources = sources?;
    let mut warnings = vec![];
    let cluster_id = match info {
        Ok(id) => Some(id),
        Err(e) => {
            warnings.push(format!("could not read the cluster id (GET /api/v1/cluster/info): {e}"));
            None
        }
    };
    let workers = match workers {
        Ok(w) => Some(w),
        Err(e) => {
            warnings.push(format!(
                "could not read the DM-workers (GET /api/v1/cluster/workers): {e}; worker binding and free workers \
                 are not checked in this run"
            ));
            None
        }
    };
    let (relay_sources, relay) = match relay {
        Ok(list) => {
            let relay = relay_from_status(&list, workers.as_deref());
            for (name, r) in &relay {
                for m in &r.unattributed {
                    warnings.push(format!(
                        "relay of source {name}: DM could not tell on which worker ({}); its relay workers may be \
                         more than the plan shows",
                        first_line(m)
                    ));
                }
            }
            (Some(relay.keys().cloned().collect()), Some(relay))
        }
        // One relay worker that cannot be asked fails the whole list with status: ask which sources relay only.
        Err(e) => {
            match client.list_sources(false, Some(true)).await {
                Ok(list) => {
                    warnings.push(format!(
                    "could not read the relay workers (GET /api/v1/sources?enable_relay=true&with_status=true): {e}; \
                     relay of {} is not judged in this run",
                    if list.is_empty() { "no source".to_string() } else { list.iter().map(|s| s.source_name.as_str()).collect::<Vec<_>>().join(", ") }
                ));
                    (Some(list.into_iter().map(|s| s.source_name).collect()), None)
                }
                Err(e2) => {
                    warnings.push(format!(
                        "could not read which sources run relay (GET /api/v1/sources?enable_relay=true): {e2}; DM may \
                     refuse source updates that the plan shows, and relay is not judged in this run"
                    ));
                    (None, None)
                }
            }
        }
    };
    let tasks: Vec<LiveTask> = match tasks {
        Ok(list) => list
            .into_iter()
            .map(|mut t| {
                let status = t.status_list.take();
                // A task listed with status but without a status list: unavailable.
                let status_error = status.is_none().then(|| "DM listed the task without a status".to_string());
                LiveTask { task: t, status, status_error }
            })
            .collect(),
        Err(e) if e.status().is_some() || e.is_transient() => {
            warnings.push(format!("the task list with status failed ({e}); reading task status one by one"));
            let list = client.list_tasks(false, None, &[]).await?;
            per_task_status(client, list, opts, &mut warnings).await
        }
        Err(e) => return Err(e),
    };
    if let Some(p) = state.problem() {
        warnings.push(format!("{p}; changes of write-only values (source passwords) cannot be detected in this run"));
    }
    Ok(Live {
        addr: client.addr().to_string(),
        version,
        cluster_id,
        sources: sources.into_iter().map(|s| (s.source_name.clone(), s)).collect(),
        relay_sources,
        relay,
        workers,
        tasks: tasks.into_iter().map(|t| (t.task.name.clone(), t)).collect(),
        state,
        warnings,
        legacy: Default::default(),
    })
}

/// Fallback: `GET /tasks/{name}/status` for the tasks that matter, a few at a time.
async fn per_task_status(
    client: &DmClient,
    list: Vec<Task>,
    opts: &FetchOptions,
    warnings: &mut Vec<String>,
) -> Vec<LiveTask> {
    let sem = Arc::new(tokio::sync::Semaphore::new(8));
    let mut set = tokio::task::JoinSet::new();
    for (i, t) in list.iter().enumerate() {
        if opts.status_for.as_ref().is_some_and(|s| !s.contains(&t.name)) {
            continue;
        }
        let (client, sem, name) = (client.clone(), sem.clone(), t.name.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            (i, client.task_status(&name).await)
        });
    }
    let mut status: BTreeMap<usize, Result<Vec<SubTaskStatus>, String>> = BTreeMap::new();
    while let Some(r) = set.join_next().await {
        if let Ok((i, r)) = r {
            match r {
                Ok(s) => {
                    status.insert(i, Ok(s));
                }
                Err(e) => {
                    warnings.push(format!("status of task {} is unavailable: {e}", list[i].name));
                    status.insert(i, Err(e.to_string()));
                }
            }
        }
    }
    list.into_iter()
        .enumerate()
        .map(|(i, mut t)| {
            t.status_list = None;
            match status.remove(&i) {
                Some(Ok(s)) => LiveTask::new(t, Some(s)),
                Some(Err(e)) => LiveTask { task: t, status: None, status_error: Some(e) },
                // Not asked (not a declared task).
                None => LiveTask { task: t, status: None, status_error: Some("status not read".into()) },
            }
        })
        .collect()
}

/// The first non-empty line of a DM message, for one-line warnings.
fn first_line(m: &str) -> &str {
    m.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("")
}
