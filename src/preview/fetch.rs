//! Reading the upstreams' table lists through DM-master, within a budget: one schema list per source
//! (`GET /sources/{s}/schemas`, docs/dm-behaviour.md R13.1), one table list per schema the rules can reach
//! (`GET /sources/{s}/schemas/{db}`, R13.2) up to a cap per source, and DM's own migrate targets of existing
//! subtasks (R13.6); concurrently, at most [`Limits::max_requests`] in all.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::matching::SourceRules;
use crate::dm::DmClient;
use crate::dm::types::TaskMigrateTarget;

/// Caps of one preview.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Requests in all (schema lists first, then migrate targets, then table lists, spread over the sources).
    pub max_requests: usize,
    /// Table lists per source.
    pub max_schemas_per_source: usize,
    /// Requests in flight at once. DM-master opens a new upstream connection for each schema or table list.
    pub concurrency: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_requests: 200, max_schemas_per_source: 50, concurrency: 8 }
    }
}

/// What was read of one upstream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    /// `SHOW DATABASES`, as DM answered.
    pub schemas: Vec<String>,
    /// Table lists of the schemas that were read (an error: DM's answer).
    pub tables: BTreeMap<String, Result<Vec<String>, String>>,
    /// Schemas the rules can reach whose table list was not read (caps).
    pub skipped: Vec<String>,
}

impl Catalog {
    /// Every table list the rules need was read.
    pub fn complete(&self) -> bool {
        self.skipped.is_empty() && self.tables.values().all(Result::is_ok)
    }

    /// `(schema, table)` of every table that was read.
    pub fn tables(&self) -> impl Iterator<Item = (&str, &str)> {
        self.tables
            .iter()
            .filter_map(|(s, t)| t.as_ref().ok().map(|t| (s, t)))
            .flat_map(|(s, t)| t.iter().map(move |t| (s.as_str(), t.as_str())))
    }
}

/// Everything the preview read.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    /// Per source; an error is DM's answer to the schema list (or why it was not asked).
    pub catalogs: BTreeMap<String, Result<Catalog, String>>,
    /// Per (task, source).
    pub targets: BTreeMap<(String, String), Result<Vec<TaskMigrateTarget>, String>>,
    pub requests: usize,
    pub truncated: bool,
    pub notes: Vec<String>,
}

/// What to read: per source, the rule sets whose schemas matter; the (task, source) pairs to cross-check.
pub struct Wants {
    pub sources: BTreeMap<String, Vec<SourceRules>>,
    pub targets: Vec<(String, String)>,
}

enum Answer {
    Schemas(String, Result<Vec<String>, String>),
    Tables(String, String, Result<Vec<String>, String>),
    Targets(String, String, Result<Vec<TaskMigrateTarget>, String>),
}

async fn run_all(client: &DmClient, limits: Limits, jobs: Vec<Job>) -> Vec<Answer> {
    let sem = Arc::new(Semaphore::new(limits.concurrency.max(1)));
    let mut set = JoinSet::new();
    for job in jobs {
        let (client, sem) = (client.clone(), sem.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            job.run(&client).await
        });
    }
    let mut out = vec![];
    while let Some(r) = set.join_next().await {
        if let Ok(a) = r {
            out.push(a);
        }
    }
    out
}

enum Job {
    Schemas(String),
    Tables(String, String),
    Targets(String, String),
}

impl Job {
    async fn run(self, client: &DmClient) -> Answer {
        match self {
            Job::Schemas(s) => {
                let r = client.source_schemas(&s).await.map_err(|e| e.to_string());
                Answer::Schemas(s, r)
            }
            Job::Tables(s, db) => {
                let r = client.source_tables(&s, &db).await.map_err(|e| e.to_string());
                Answer::Tables(s, db, r)
            }
            Job::Targets(t, s) => {
                let r = client.migrate_targets(&t, &s, None, None).await.map_err(|e| e.to_string());
                Answer::Targets(t, s, r)
            }
        }
    }
}

/// Read what `wants` needs, within `limits`.
pub async fn fetch(client: &DmClient, wants: &Wants, limits: Limits) -> Fetched {
    let mut out = Fetched::default();
    let mut budget = limits.max_requests;

    // 1. Schema lists.
    let sources: Vec<&String> = wants.sources.keys().collect();
    let asked: Vec<&String> = sources.iter().take(budget).copied().collect();
    for s in sources.iter().skip(asked.len()) {
        out.catalogs.insert((*s).clone(), Err("not read: the preview's request cap was reached".into()));
        out.truncated = true;
    }
    budget -= asked.len();
    out.requests += asked.len();
    let jobs = asked.iter().map(|s| Job::Schemas((*s).clone())).collect();
    for a in run_all(client, limits, jobs).await {
        if let Answer::Schemas(s, r) = a {
            out.catalogs.insert(s, r.map(|schemas| Catalog { schemas, ..Catalog::default() }));
        }
    }

    // 2. Migrate targets (few: one per existing subtask), then table lists, spread over the sources so that one
    // large upstream does not use the whole budget.
    let mut jobs = vec![];
    for (t, s) in &wants.targets {
        if budget == 0 {
            out.targets.insert((t.clone(), s.clone()), Err("not read: the preview's request cap was reached".into()));
            out.truncated = true;
            continue;
        }
        budget -= 1;
        jobs.push(Job::Targets(t.clone(), s.clone()));
    }
    let mut queues: Vec<(String, Vec<String>)> = vec![];
    for (s, rule_sets) in &wants.sources {
        let Some(Ok(cat)) = out.catalogs.get_mut(s) else { continue };
        let mut wanted: Vec<String> = cat
            .schemas
            .iter()
            .filter(|db| rule_sets.iter().any(|r| r.wants_schema(db)))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if wanted.len() > limits.max_schemas_per_source {
            cat.skipped = wanted.split_off(limits.max_schemas_per_source);
        }
        queues.push((s.clone(), wanted));
    }
    let mut round = 0;
    loop {
        let mut any = false;
        for (s, q) in &mut queues {
            let Some(db) = q.get(round) else { continue };
            any = true;
            if budget == 0 {
                if let Some(Ok(cat)) = out.catalogs.get_mut(s.as_str()) {
                    cat.skipped.push(db.clone());
                }
                continue;
            }
            budget -= 1;
            jobs.push(Job::Tables(s.clone(), db.clone()));
        }
        if !any {
            break;
        }
        round += 1;
    }
    out.requests += jobs.len();
    for a in run_all(client, limits, jobs).await {
        match a {
            Answer::Tables(s, db, r) => {
                if let Some(Ok(cat)) = out.catalogs.get_mut(&s) {
                    cat.tables.insert(db, r);
                }
            }
            Answer::Targets(t, s, r) => {
                out.targets.insert((t, s), r);
            }
            Answer::Schemas(..) => {}
        }
    }
    for (s, cat) in &mut out.catalogs {
        let Ok(cat) = cat else { continue };
        cat.skipped.sort();
        if !cat.skipped.is_empty() {
            out.truncated = true;
            out.notes.push(format!(
                "preview truncated: the table lists of {} schema(s) of source {s} were not read (caps: {} schemas \
                 per source, {} requests per run); its counts are lower bounds",
                cat.skipped.len(),
                limits.max_schemas_per_source,
                limits.max_requests
            ));
        }
    }
    if out.catalogs.values().any(|c| matches!(c, Err(e) if e.starts_with("not read"))) {
        out.notes.push(format!(
            "preview truncated: the request cap ({}) was reached before every source's schema list was read",
            limits.max_requests
        ));
    }
    out
}
