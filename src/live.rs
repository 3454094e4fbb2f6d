//! Live state: what DM-master has now, fetched in a constant number of requests.
//!
//! `GET /status` (version), `GET /cluster/info`, `GET /sources`, `GET /sources?enable_relay=true` (which sources
//! have relay workers), `GET /tasks?with_status=true` and the state template, concurrently. One failing worker
//! fails a whole `with_status` list, and relay on a worker other than the bound one makes it fail permanently
//! (docs/dm-behaviour.md R8.12), so on failure the task list is read without status and the status of each task
//! that matters is read one by one; what still cannot be read is marked unavailable, with DM's message, and
//! reported as a warning that every plan output shows. "Unavailable" is never read as "running".

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::dm::types::{Source, SubTaskStatus, Task};
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
            tasks: BTreeMap::new(),
            state: StateView::Absent,
            warnings: vec![],
            legacy: Default::default(),
        }
    }
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
    let (version, info, sources, relay, tasks, state) = tokio::join!(
        client.server_version(),
        client.cluster_id(),
        client.list_sources(false, None),
        client.list_sources(false, Some(true)),
        client.list_tasks(true, None, &[]),
        state::store::read(client),
    );
    let version = version?.clone();
    let sources = sources?;
    let mut warnings = vec![];
    let cluster_id = match info {
        Ok(id) => Some(id),
        Err(e) => {
            warnings.push(format!("could not read the cluster id (GET /api/v1/cluster/info): {e}"));
            None
        }
    };
    let relay_sources = match relay {
        Ok(list) => Some(list.into_iter().map(|s| s.source_name).collect()),
        Err(e) => {
            warnings.push(format!(
                "could not read which sources run relay (GET /api/v1/sources?enable_relay=true): {e}; DM may refuse \
                 source updates that the plan shows"
            ));
            None
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
