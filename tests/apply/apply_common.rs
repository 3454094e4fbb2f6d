//! Shared helpers of the apply integration tests: an in-process simulator over real HTTP on 127.0.0.1, plans made
//! with the real planner, applies with fast polling, and request-log helpers.

use std::time::Duration;

use dm_apply::apply::{self, ApplyOptions, ApplyReport, Event, Outcome};
use dm_apply::config::Desired;
use dm_apply::dm::{ClientOptions, DmClient};
use dm_apply::plan::testing::{desired_from_yaml, test_key};
use dm_apply::plan::{Plan, PlanOptions, make_plan};
use dm_apply::sim::{Generation, LoggedRequest, SimControl, SimOptions, SimServer};

pub const GENERATIONS: [Generation; 4] = Generation::ALL;

pub struct Env {
    pub sim: SimServer,
    pub ctl: SimControl,
    pub client: DmClient,
}

pub async fn env(generation: Generation) -> Env {
    env_with(SimOptions { generation, seed: Some(7), ..SimOptions::default() }).await
}

pub async fn env_with(opts: SimOptions) -> Env {
    let sim = SimServer::start(opts).await.expect("simulator starts");
    let ctl = sim.control();
    let mut o = ClientOptions::new(sim.url());
    o.request_timeout = Duration::from_secs(5);
    let client = DmClient::new(&o).expect("client");
    Env { sim, ctl, client }
}

pub fn desired(yaml: &str) -> Desired {
    desired_from_yaml("test.yaml", yaml).expect("valid test YAML")
}

/// Options for tests: fast polling and retries, permissive restarts.
pub fn fast() -> ApplyOptions {
    ApplyOptions {
        wait_timeout: Duration::from_secs(10),
        poll_initial: Duration::from_millis(5),
        poll_max: Duration::from_millis(40),
        error_grace: Duration::from_millis(500),
        retry: dm_apply::dm::RetryPolicy { base_delay: Duration::from_millis(5), ..ApplyOptions::default().retry },
        allow_restart: true,
        ..ApplyOptions::default()
    }
}

pub async fn plan(env: &Env, d: &Desired, prune: bool) -> Plan {
    let live = dm_apply::live::fetch(&env.client).await.expect("fetch");
    let opts = PlanOptions { prune, allow_restart: true, state_key: Some(test_key()), ..Default::default() };
    make_plan(d, &live, &opts).expect("plan")
}

/// `fast()` options that also keep dm-apply's state record (with the tests' key), as the CLI does.
pub fn recording(p: &Plan, d: &Desired) -> ApplyOptions {
    ApplyOptions { state: dm_apply::apply::StateOptions::for_plan(p, d, Some(test_key())), ..fast() }
}

/// Execute a plan; returns the report and the events.
pub async fn execute(env: &Env, plan: &Plan, opts: &ApplyOptions) -> (ApplyReport, Vec<Event>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let report = apply::execute(plan, &env.client, opts, tx).await.expect("plan compiles");
    let mut events = vec![];
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (report, events)
}

/// Plan and apply `d`; panics when a step fails.
pub async fn converge(env: &Env, d: &Desired, prune: bool) -> ApplyReport {
    let p = plan(env, d, prune).await;
    let (r, _) = execute(env, &p, &recording(&p, d)).await;
    assert!(r.success(), "apply failed:\n{}", r.render_text());
    r
}

/// The plan for `d` has nothing to do.
pub async fn assert_no_changes(env: &Env, d: &Desired, prune: bool) {
    let p = plan(env, d, prune).await;
    let left: Vec<String> = p
        .changes
        .iter()
        .filter(|c| !c.is_noop())
        .map(|c| format!("{} {:?} {:?}", c.address, c.actions(), c.reasons))
        .collect();
    assert!(left.is_empty(), "plan after apply is not empty: {left:#?}");
}

/// `METHOD path` of the mutating requests (not faulted) in the log, in arrival order.
pub fn mutations(log: &[LoggedRequest]) -> Vec<String> {
    log.iter()
        .filter(|r| r.mutating && !r.faulted)
        .map(|r| {
            if r.query.is_empty() {
                format!("{} {}", r.method, r.path)
            } else {
                format!("{} {}?{}", r.method, r.path, r.query)
            }
        })
        .collect()
}

/// Mutating requests without the state-record template writes.
pub fn dm_mutations(log: &[LoggedRequest]) -> Vec<String> {
    mutations(log).into_iter().filter(|m| !m.contains("/tasks/templates")).collect()
}

/// Index of the first request matching `needle` (panics when absent).
pub fn pos(list: &[String], needle: &str) -> usize {
    list.iter().position(|m| m == needle).unwrap_or_else(|| panic!("`{needle}` not in {list:#?}"))
}

/// The JSON body of the first `POST path` in the log (`null` without a body); panics when there is none.
pub fn post_body(log: &[LoggedRequest], path: &str) -> serde_json::Value {
    let r = log.iter().find(|r| r.method == "POST" && r.path == path).unwrap_or_else(|| panic!("no POST {path}"));
    serde_json::from_str(r.body.as_deref().unwrap_or("null")).expect("JSON body")
}

/// Mutating requests the server refused (4xx): apply must route around DM's refusals, never hit them.
pub fn refused(log: &[LoggedRequest]) -> Vec<String> {
    log.iter()
        .filter(|r| r.mutating && !r.faulted && (400..500).contains(&r.status))
        .map(|r| format!("{} {} -> {}", r.method, r.path, r.status))
        .collect()
}

pub fn outcome_of<'a>(r: &'a ApplyReport, label: &str) -> &'a Outcome {
    &r.steps
        .iter()
        .find(|s| s.step.label() == label)
        .unwrap_or_else(|| panic!("no step {label}:\n{}", r.render_text()))
        .outcome
}

/// Observed stages of a task's subtasks, from the simulator's snapshot through the API.
pub async fn stages(env: &Env, task: &str) -> Vec<String> {
    let mut v: Vec<String> =
        env.client.task_status(task).await.expect("status").into_iter().map(|s| s.stage.to_string()).collect();
    v.sort();
    v
}

pub const TWO_SOURCES: &str = r#"
sources:
  - source_name: mysql-a
    host: mysql-a.internal
    port: 3306
    user: dm
    password: pw-a
    enable: true
  - source_name: mysql-b
    host: mysql-b.internal
    port: 3306
    user: dm
    password: pw-b
    enable: true
"#;

/// An incremental task from a binlog position on the given sources.
pub fn incr_task(name: &str, sources: &[&str], stage: &str, repl_batch: u32) -> String {
    let rules: String =
        sources.iter().map(|s| format!("      - source: {{source_name: {s}, schema: shop, table: \"*\"}}\n")).collect();
    let confs: String = sources
        .iter()
        .map(|s| format!("        - {{source_name: {s}, binlog_name: mysql-bin.000001, binlog_pos: 4}}\n"))
        .collect();
    format!(
        r#"  - name: {name}
    task_mode: incremental
    meta_schema: dm_meta
    enhance_online_schema_change: true
    on_duplicate: replace
    target_config: {{host: tidb.internal, port: 4000, user: root, password: tidb-pw}}
    table_migrate_rule:
{rules}    source_config:
      incr_migrate_conf: {{repl_threads: 16, repl_batch: {repl_batch}}}
      source_conf:
{confs}    stage: {stage}
"#
    )
}

/// `TWO_SOURCES` plus the given tasks.
pub fn config(tasks: &[String]) -> String {
    if tasks.is_empty() { TWO_SOURCES.to_string() } else { format!("{TWO_SOURCES}tasks:\n{}", tasks.concat()) }
}

/// Poll until every subtask of `task` shows `stage` (the simulator's transitions are asynchronous).
pub async fn wait_stage(env: &Env, task: &str, stage: &str) {
    for _ in 0..400 {
        let s = stages(env, task).await;
        if !s.is_empty() && s.iter().all(|x| x == stage) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("task {task} never reached {stage}: {:?}", stages(env, task).await);
}

/// The report matches DM's state: a create/delete reported done happened, one not done did not (a replacement is a
/// delete then a create); a wait for Running reported done means the task runs.
pub async fn assert_report_matches_dm(env: &Env, r: &ApplyReport) {
    let resources: std::collections::BTreeSet<&str> = r.steps.iter().map(|s| s.step.resource.as_str()).collect();
    for res in resources {
        let steps: Vec<_> = r.steps.iter().filter(|s| s.step.resource == res).collect();
        let create = steps.iter().find(|s| s.step.action.starts_with("create"));
        let delete = steps.iter().find(|s| s.step.action.starts_with("delete"));
        let (kind, name) = res.split_once('.').expect("address");
        let exists = match kind {
            "source" => env.client.get_source(name, false).await.expect("get source").is_some(),
            _ => env.client.get_task(name, false).await.expect("get task").is_some(),
        };
        let expected = match (delete, create) {
            (None, None) => continue,
            (None, Some(c)) => c.outcome.is_done(),
            (Some(d), None) => !d.outcome.is_done(),
            // A replacement: the old one stays unless deleted; the new one exists only if created.
            (Some(d), Some(c)) => !d.outcome.is_done() || c.outcome.is_done(),
        };
        assert_eq!(exists, expected, "{res}: exists={exists}, but the report says:\n{}", r.render_text());
        for s in steps.iter().filter(|s| s.step.action == "wait until Running" && s.outcome.is_done()) {
            let st = stages(env, name).await;
            assert!(st.iter().all(|x| x == "Running" || x == "Finished"), "{}: {st:?}", s.step.label());
        }
    }
}

/// Awaits every task; a panic in one (a failed assertion) fails the caller with that task's own message.
pub async fn join_all<T>(tasks: impl IntoIterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = vec![];
    for t in tasks {
        match t.await {
            Ok(v) => out.push(v),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    out
}
