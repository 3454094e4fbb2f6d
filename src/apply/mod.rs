//! `apply`: turn a plan into a graph of small DM operations and run it.
//!
//! ```text
//! Plan ─▶ compile (steps + dependencies, DM's rules) ─▶ StepGraph ─▶ scheduler (bounded parallelism)
//!                                                                      │ each step: guard re-read, call, wait
//!                                                                      ▼
//!                                                        Event channel ─▶ one reporter (stderr)
//!                                                                      ▼
//!                                                                  ApplyReport
//! ```
//!
//! The executor never decides what to do: it runs the steps the compiler derived from the plan, and reports what
//! happened to each of them. See `docs/apply.md` for the rules.

pub mod compile;
pub mod graph;
mod ops;
pub mod report;
pub mod reporter;
mod scheduler;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

pub use compile::{CompileError, CompileOptions, compile};
pub use graph::{DepKind, Effect, Expect, Guard, ResourceKind, Step, StepGraph, StepId, StepKind, WaitFor};
pub use ops::LiveDigest;
pub use report::{ApplyReport, Counts, Event, Failure, Outcome, StepInfo, StepReport, StopReason};
pub use scheduler::StepResult;

use crate::dm::DmClient;

/// A cancellation flag shared between the Ctrl-C handler and the executor: once set, no new step starts.
#[derive(Debug, Clone)]
pub struct Cancel(Arc<tokio::sync::watch::Sender<bool>>);

impl Default for Cancel {
    fn default() -> Self {
        Cancel(Arc::new(tokio::sync::watch::Sender::new(false)))
    }
}

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.send_replace(true);
    }

    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once cancelled.
    pub async fn cancelled(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }
}

/// How to run an apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Operations in flight at most (`--parallelism`, default 10).
    pub parallelism: usize,
    /// Stop scheduling everything after the first failure (default: only what depends on it).
    pub fail_fast: bool,
    /// How long a started task may take to run, or a stopped one to pause (`--wait-timeout`).
    pub wait_timeout: Duration,
    /// First status poll after a start/stop; doubles up to `poll_max`.
    pub poll_initial: Duration,
    pub poll_max: Duration,
    /// How long an error a task showed before we started it may still show afterwards before it counts as a
    /// failure of the start (the worker needs a moment to pick the start up).
    pub error_grace: Duration,
    /// Retries of a transient failure (connection, timeout, 5xx, DM's 46024 latch) per request.
    pub retries: u32,
    /// First retry delay; doubles per attempt, at most 2 s.
    pub retry_initial: Duration,
    pub cancel: Cancel,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            parallelism: 10,
            fail_fast: false,
            wait_timeout: Duration::from_secs(300),
            poll_initial: Duration::from_millis(50),
            poll_max: Duration::from_secs(1),
            error_grace: Duration::from_secs(3),
            retries: 4,
            retry_initial: Duration::from_millis(100),
            cancel: Cancel::new(),
        }
    }
}

/// Hooks into the plan module that the executor needs: the digest of live resources, for the guards.
#[derive(Clone, Default)]
pub struct Hooks {
    pub digests: Option<Arc<dyn LiveDigest>>,
}

/// Run a step graph against DM-master. Every step ends up in the report: done, failed, skipped (a step it
/// requires did not succeed) or not started (Ctrl-C, `--fail-fast`).
pub async fn execute_graph(
    graph: StepGraph,
    client: &DmClient,
    opts: &ApplyOptions,
    hooks: &Hooks,
    events: UnboundedSender<Event>,
) -> ApplyReport {
    let graph = Arc::new(graph);
    let ctx = Arc::new(ops::Ctx {
        client: client.clone(),
        opts: opts.clone(),
        digests: hooks.digests.clone(),
        events: events.clone(),
        pre_start_errors: Default::default(),
        record_lock: Default::default(),
    });
    let g2 = graph.clone();
    scheduler::run_graph(graph, opts.parallelism, opts.fail_fast, &opts.cancel, &events, move |id| {
        let ctx = ctx.clone();
        let step = g2.step(id).cloned();
        async move {
            match step {
                Some(step) => ops::run_step(ctx, step).await,
                None => Err(Failure::new(format!("internal error: unknown step {id}"))),
            }
        }
    })
    .await
}
