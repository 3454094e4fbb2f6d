//! `apply`: turn a plan into a graph of small DM operations and run it.
//!
//! ```text
//! Plan ─▶ compile (steps + dependencies, DM's rules) ─▶ StepGraph ─▶ scheduler (bounded parallelism)
//!                                                                      │ each step: guard re-read, call, wait
//!                                                                      ▼
//!                                                        Event channel ─▶ one reporter (stderr; CLI side)
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
mod scheduler;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

pub use compile::{CompileError, CompileOptions, compile};
pub use graph::{DepKind, Effect, Expect, Guard, ResourceKind, Step, StepGraph, StepId, StepKind, WaitFor};
pub use ops::LiveDigest;
/// A duration for people: `5m`, `30s`, `250ms`.
pub use ops::human_duration;
pub use report::{
    ApplyReport, Counts, Event, Failure, LeftReason, LeftStopped, Outcome, REPORT_FORMAT_VERSION, Status, StepInfo,
    StepReport, StopReason, TaskOp, Verification,
};
pub use scheduler::StepResult;

use crate::dm::DmClient;
use crate::dm::retry::RetryPolicy;
use crate::plan::Plan;

/// A cancellation flag shared between the signal handler (SIGINT, SIGTERM, SIGHUP) and the executor: once set, no
/// new step starts and waits for a task's stage end at once.
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
    /// How a mutation that failed transiently (connection, timeout, 5xx, DM's 46024 latch) is sent again: at most
    /// `retry.max_attempts` times in all. The executor is the only layer retrying mutations: its client sends each
    /// one exactly once (`crate::dm::retry` says why this layer). Reads are retried by the client's own policy.
    pub retry: RetryPolicy,
    pub cancel: Cancel,
    /// `--allow-restart`: replacements that restart a migration from scratch are allowed (checked again here,
    /// although the planner already refuses them).
    pub allow_restart: bool,
    /// Tasks whose `lifecycle.allow_restart` is set.
    pub allow_restart_for: BTreeSet<String>,
    /// `--deadline`: overall time limit of the execution. Once it passes no new step starts (the rest are reported
    /// `not started`), and waits in flight end at it; requests in flight finish (each within the request timeout).
    pub deadline: Option<Duration>,
    /// How to write dm-apply's state record.
    pub state: StateOptions,
    /// `--resume-safe-mode`: safe mode after a task resumes from a checkpoint (`None`: the default, 5 minutes).
    pub resume_safe_mode: Option<Duration>,
}

/// How record steps write dm-apply's state record.
#[derive(Debug, Clone, Default)]
pub struct StateOptions {
    /// The target of the task the record's template connects to (`plan.state.home`). `None`: record steps fail.
    pub home: Option<crate::dm::types::TargetConfig>,
    /// The state key (keyed fingerprints); `None`: Argon2id.
    pub key: Option<crate::state::StateKey>,
    /// The lease this apply holds: every write checks it is still ours.
    pub lease_id: Option<String>,
}

impl StateOptions {
    /// For `plan`: the target of its home task (from `desired`, which holds the password), and `key`.
    pub fn for_plan(plan: &Plan, desired: &crate::config::Desired, key: Option<crate::state::StateKey>) -> Self {
        let home = plan.state.home.as_ref().and_then(|h| desired.tasks.get(h)).map(|(spec, _)| {
            let version = crate::dm::ServerVersion::parse(&plan.cluster.server_version);
            crate::normalize::task_to_wire(spec, &version).target_config
        });
        StateOptions { home, key, lease_id: None }
    }
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
            retry: RetryPolicy {
                max_attempts: 5,
                base_delay: Duration::from_millis(100),
                max_delay: Duration::from_secs(2),
            },
            cancel: Cancel::new(),
            allow_restart: false,
            allow_restart_for: BTreeSet::new(),
            deadline: None,
            state: StateOptions::default(),
            resume_safe_mode: None,
        }
    }
}

/// Hooks into the plan module that the executor needs: the digest of live resources, for the guards.
#[derive(Clone, Default)]
pub struct Hooks {
    pub digests: Option<Arc<dyn LiveDigest>>,
}

/// The plan module's digests of live resources, for the guards.
struct PlanDigests {
    version: crate::dm::ServerVersion,
}

impl LiveDigest for PlanDigests {
    fn source(&self, source: &crate::dm::types::Source) -> String {
        crate::plan::planner::source_digest(source)
    }

    fn task(&self, task: &crate::dm::types::Task) -> String {
        crate::plan::planner::task_digest(task, &self.version)
    }
}

impl ApplyOptions {
    /// What the compiler needs of these options.
    pub fn compile_options(&self) -> CompileOptions {
        CompileOptions {
            allow_restart: self.allow_restart,
            allow_restart_for: self.allow_restart_for.clone(),
            skip_record: self.state.home.is_none(),
            resume_safe_mode: self.resume_safe_mode,
        }
    }
}

/// Apply a plan: compile it into steps (refusing, before anything is touched, a plan that deletes without
/// `--prune`, restarts a migration without permission, or lacks a payload) and run them. Events go to `events`;
/// the report lists every step.
pub async fn execute(
    plan: &Plan,
    client: &DmClient,
    opts: &ApplyOptions,
    events: UnboundedSender<Event>,
) -> Result<ApplyReport, CompileError> {
    let graph = compile(plan, &opts.compile_options())?;
    Ok(execute_compiled(graph, plan, client, opts, events).await)
}

/// Run the graph `compile(plan, &opts.compile_options())` made: a caller that compiled the plan already (to refuse
/// it before asking anything) runs that graph instead of compiling again.
pub async fn execute_compiled(
    graph: StepGraph,
    plan: &Plan,
    client: &DmClient,
    opts: &ApplyOptions,
    events: UnboundedSender<Event>,
) -> ApplyReport {
    // The digests depend on the server version (request defaults); the plan recorded the one it saw.
    let version = match client.server_version().await {
        Ok(v) => v.clone(),
        Err(_) => crate::dm::ServerVersion::parse(&plan.cluster.server_version),
    };
    let hooks = Hooks { digests: Some(Arc::new(PlanDigests { version })) };
    execute_graph(graph, client, opts, &hooks, events).await
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
    let deadline = opts.deadline.map(|d| tokio::time::Instant::now() + d);
    let ctx = Arc::new(ops::Ctx {
        deadline,
        // Mutations are retried by `ops` alone (one layer, `opts.retry`); reads keep the client's retries.
        client: client.sending_mutations_once(),
        opts: opts.clone(),
        digests: hooks.digests.clone(),
        events: events.clone(),
        pre_start_errors: Default::default(),
        record_lock: Default::default(),
        record_queue: Default::default(),
        created_tasks: Default::default(),
        resume: Default::default(),
        poll_permits: tokio::sync::Semaphore::new(opts.parallelism.max(1)),
    });
    let g2 = graph.clone();
    let (parallelism, fail_fast, cancel) = (opts.parallelism, opts.fail_fast, opts.cancel.clone());
    let scheduler = async move {
        scheduler::run_graph(graph, parallelism, fail_fast, &cancel, deadline, &events, move |id| {
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
    };
    // The scheduler runs as a task of the runtime, beside its steps: a step that ends wakes it on the worker it ran
    // on, instead of waking the thread that called us (the CLI's `block_on`) through the kernel 10,000 times.
    // Dropping this future still drops the scheduler and its steps, as when it was polled in place.
    let mut task = AbortOnDrop(tokio::spawn(scheduler));
    match (&mut task.0).await {
        Ok(report) => report,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only a runtime shutting down cancels it, and this function runs on that runtime: not reached.
        Err(_) => ApplyReport { steps: vec![], stopped: Some(StopReason::Interrupted) },
    }
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
