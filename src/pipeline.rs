//! One `plan` (or `drift`) run, the same for `dm-apply plan` and for every cluster of `plan --clusters`: load the
//! configuration, read DM, plan (with the legacy check), preview. It returns typed data; the command decides what
//! to print and which exit code that makes (src/commands/), so the single and the multi-cluster command cannot
//! drift apart.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::clusters::Cluster;
use crate::config::{self, Desired, LoadError};
use crate::dm::{ClientOptions, DmClient, DmError};
use crate::drift::{DriftReport, ReadOnlyDm};
use crate::live::{FetchOptions, Live};
use crate::plan::{Plan, PlanError, PlanOptions, PlanProblem};

/// Where the configuration comes from: paths, read with the process's environment or a cluster's variables.
#[derive(Debug, Clone, Copy)]
pub struct ConfigSource<'a> {
    pub paths: &'a [PathBuf],
    /// `${env:NAME}` reads the cluster's mapping (clusters file `env`) when set.
    pub cluster: Option<&'a Cluster>,
}

/// Something a run wants people to know; not an error. The command prints it (or not).
#[derive(Debug)]
pub enum Notice {
    /// A configuration warning.
    Warning(miette::Report),
    /// A file under a directory skipped as not dm-apply configuration (its path).
    Skipped(String),
    /// Advice, e.g. that a state key makes the write-only checks faster.
    Note(String),
}

/// The loaded configuration (origins relative to the repository) with its notices, or every error.
pub fn load_config(source: ConfigSource<'_>, notices: &mut Vec<Notice>) -> Result<Desired, LoadError> {
    let loaded = match source.cluster {
        Some(c) => c.load(source.paths),
        None => config::load(source.paths),
    }?;
    notices.extend(loaded.skipped.into_iter().map(Notice::Skipped));
    notices.extend(loaded.warnings.into_iter().map(Notice::Warning));
    let mut desired = loaded.desired;
    // Plans say where each resource is declared relative to the repository, not the runner's workspace.
    crate::render::paths::relativize_origins(&mut desired);
    Ok(desired)
}

/// Fetch options: per-task status fallback only for declared tasks.
pub fn fetch_options(desired: &Desired) -> FetchOptions {
    FetchOptions { status_for: Some(desired.tasks.keys().cloned().collect::<BTreeSet<_>>()) }
}

/// Without a state key, fingerprints are Argon2id: checking them is slow on purpose. Said once per run, when the
/// record has any.
pub fn key_note(key: Option<&crate::state::StateKey>, live: &Live) -> Option<String> {
    let argon = live.state.record().is_some_and(|r| {
        r.resources
            .values()
            .flat_map(|e| e.fingerprints.values())
            .any(|f| matches!(f, crate::state::Fingerprint::Argon2id { .. }))
    });
    (key.is_none() && argon).then(|| {
        format!(
            "note: no state key ({} or --state-key-file): dm-apply checks write-only values with the memory-hard \
             Argon2id scheme, which is slow on purpose; a key makes plans faster (docs/plan.md)",
            crate::state::key::KEY_ENV
        )
    })
}

/// What `plan` asks for.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    pub client: ClientOptions,
    pub options: PlanOptions,
    /// Compute which tables the changes start and stop replicating (docs/plan.md, "Preview").
    pub preview: bool,
}

/// A plan that was made. `problems` non-empty: the plan was refused (it is still shown so reviewers see what).
#[derive(Debug)]
pub struct Planned {
    pub plan: Plan,
    pub problems: Vec<PlanProblem>,
    pub desired: Desired,
    pub live: Live,
}

/// Why a run produced nothing to show.
#[derive(Debug)]
pub enum Failure {
    Config(LoadError),
    Client(DmError),
    Fetch(DmError),
    /// Refused before a plan existed.
    Refused(PlanError),
}

impl Failure {
    pub fn into_report(self) -> miette::Report {
        match self {
            Failure::Config(e) => miette::Report::new(e),
            Failure::Client(e) | Failure::Fetch(e) => miette::Report::new(e),
            Failure::Refused(e) => miette::Report::new(e),
        }
    }
}

/// One run's result and what it noticed on the way (in order).
#[derive(Debug)]
pub struct Run<T> {
    pub notices: Vec<Notice>,
    pub result: Result<T, Failure>,
}

/// Load, read DM, plan, preview.
pub async fn plan(source: ConfigSource<'_>, req: &PlanRequest) -> Run<Planned> {
    let mut notices = Vec::new();
    let result = plan_inner(source, req, &mut notices).await;
    Run { notices, result }
}

/// Load, read DM through the read-only guard, compare: the drift report.
pub async fn drift(
    source: ConfigSource<'_>,
    client: &ClientOptions,
    key: Option<&crate::state::StateKey>,
) -> Run<DriftReport> {
    let mut notices = Vec::new();
    let result = async {
        // As in `plan_inner`: the reads go out while the configuration loads.
        let started = DmClient::new(client).map(ReadOnlyDm::new).map(|dm| {
            let prefetch = dm.prefetch();
            (dm, prefetch)
        });
        let desired = load_config(source, &mut notices).map_err(Failure::Config)?;
        let (dm, prefetch) = started.map_err(Failure::Client)?;
        let live = dm.fetch_prefetched(prefetch, &fetch_options(&desired)).await.map_err(Failure::Fetch)?;
        Ok(crate::drift::report(&desired, &live, key))
    }
    .await;
    Run { notices, result }
}

async fn plan_inner(
    source: ConfigSource<'_>,
    req: &PlanRequest,
    notices: &mut Vec<Notice>,
) -> Result<Planned, Failure> {
    // DM's reads go out while the configuration loads (see `live::Prefetch`); a configuration error still comes
    // first, then a client option error, as when they ran one after the other.
    let started = DmClient::new(&req.client).map(|client| {
        let prefetch = crate::live::Prefetch::start(&client);
        (client, prefetch)
    });
    let desired = load_config(source, notices).map_err(Failure::Config)?;
    let (client, prefetch) = started.map_err(Failure::Client)?;
    let mut live = prefetch.live(&client, &fetch_options(&desired)).await.map_err(Failure::Fetch)?;
    notices.extend(key_note(req.options.state_key.as_ref(), &live).map(Notice::Note));
    let (mut plan, problems) = match crate::legacy::plan(&client, &desired, &mut live, &req.options).await {
        Ok(p) => (p, vec![]),
        Err(e) => match e.plan {
            Some(p) => (*p, e.problems),
            None => return Err(Failure::Refused(PlanError { problems: e.problems, plan: None })),
        },
    };
    if req.preview {
        // A separate step after planning: it reads only for changed tasks and never changes the plan's actions.
        plan.preview = crate::preview::compute(&client, &plan, &live, crate::preview::Limits::default()).await;
    }
    Ok(Planned { plan, problems, desired, live })
}
