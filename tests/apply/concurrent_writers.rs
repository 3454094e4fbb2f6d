//! Concurrent writers: a second apply running while the first is still at work, and a person changing DM by hand
//! in the middle of an apply. dm-apply re-reads a resource right before changing it (and again before the PUT or
//! delete that follows its own stop); when it is not what the plan saw, that branch stops with a clear message and
//! nothing is overwritten. Checked from the simulator's state and request log. (The case of a change between plan
//! and apply is in `apply_failures.rs`.)

use std::time::Duration;

use crate::apply_common::*;
use crate::rel_common::*;
use dm_apply::apply::Outcome;
use dm_apply::sim::{Generation, LoggedRequest, SimControl, SimOptions};
use serde_json::json;

const CHANGED: &str = "was changed outside this apply since the plan was made; nothing was changed on it";

/// Slow stage transitions, so an apply is still at work when the other writer acts.
async fn slow_env(g: Generation) -> Env {
    env_with(SimOptions {
        generation: g,
        seed: Some(21),
        stage_delay: Duration::from_millis(250),
        ..SimOptions::default()
    })
    .await
}

/// Wait until a request matching `f` has landed, then run `act`.
fn when_landed(
    ctl: &SimControl,
    f: impl Fn(&LoggedRequest) -> bool + Send + 'static,
    act: impl FnOnce() + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let ctl = ctl.clone();
    tokio::spawn(async move {
        loop {
            if ctl.request_log().iter().any(|r| landed(r) && f(r)) {
                act();
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
}

fn failure_of<'a>(r: &'a dm_apply::apply::ApplyReport, label: &str) -> &'a str {
    match outcome_of(r, label) {
        Outcome::Failed { failure } => &failure.message,
        o => panic!("{label}: expected a failure, got {o:?}\n{}", r.render_text()),
    }
}

fn count(log: &[LoggedRequest], method: &str, path: &str) -> usize {
    log.iter().filter(|r| landed(r) && r.method == method && r.path == path).count()
}

async fn repl(env: &Env, task: &str) -> (u64, u64) {
    let t = env.client.get_task(task, false).await.unwrap().expect("task exists");
    let v = serde_json::to_value(&t).unwrap();
    let incr = v.pointer("/source_config/incr_migrate_conf").cloned().unwrap_or_default();
    (incr["repl_batch"].as_u64().unwrap_or(0), incr["repl_threads"].as_u64().unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_apply_does_not_overwrite_what_the_first_just_changed() {
    for g in GENERATIONS {
        let env = slow_env(g).await;
        converge(&env, &desired(&config(&[incr_task("t1", &["mysql-a"], "running", 100)])), false).await;
        // Two pipelines planned from the same state: each changes t1 its own way and adds its own task.
        let a = desired(&config(&[
            incr_task("t1", &["mysql-a"], "running", 200),
            incr_task("ta", &["mysql-a"], "stopped", 100),
        ]));
        let b = desired(&config(&[
            incr_task("t1", &["mysql-a"], "running", 300),
            incr_task("tb", &["mysql-b"], "stopped", 100),
        ]));
        let pa = plan(&env, &a, false).await;
        let pb = plan(&env, &b, false).await;
        let ga = graph_of(&pa);
        env.ctl.clear_log();

        // B starts while A is still at work: A's PUT of t1 has landed, A is waiting for t1 to run again.
        let (tx, rx) = tokio::sync::oneshot::channel();
        let w = when_landed(
            &env.ctl,
            |r| r.method == "PUT" && r.path == "/api/v1/tasks/t1",
            move || {
                let _ = tx.send(());
            },
        );
        let opts = fast();
        let run_a = execute(&env, &pa, &opts);
        let run_b = async {
            let _ = rx.await;
            execute(&env, &pb, &opts).await
        };
        let ((ra, _), (rb, _)) = tokio::join!(run_a, run_b);
        w.await.unwrap();
        let log = env.ctl.request_log();

        assert!(ra.success(), "{g:?}: A\n{}", ra.render_text());
        assert!(!rb.success(), "{g:?}: B\n{}", rb.render_text());
        let msg = failure_of(&rb, "task.t1: stop task");
        assert!(msg.contains(&format!("task.t1 {CHANGED}")), "{msg}");
        assert!(msg.contains("Re-run plan"), "{msg}");
        for step in ["task.t1: update task", "task.t1: start task"] {
            assert!(matches!(outcome_of(&rb, step), Outcome::Skipped { .. }), "{step}\n{}", rb.render_text());
        }
        // B's other branch went on.
        assert!(outcome_of(&rb, "task.tb: create task").is_done(), "{}", rb.render_text());

        // Nothing clobbered: t1 has A's change, was stopped and PUT once (by A), and runs.
        assert_eq!(count(&log, "PUT", "/api/v1/tasks/t1"), 1, "{:#?}", dm_mutations(&log));
        assert_eq!(count(&log, "POST", "/api/v1/tasks/t1/stop"), 1, "{:#?}", dm_mutations(&log));
        assert_eq!(repl(&env, "t1").await.0, 200);
        wait_stage(&env, "t1", "Running").await;
        assert!(env.client.get_task("ta", false).await.unwrap().is_some());
        assert!(env.client.get_task("tb", false).await.unwrap().is_some());
        // A changed only what its plan said (B's own requests, on tb, left out); B's report matches DM.
        audit_run(
            &ga,
            &ra,
            &log.iter()
                .filter(|r| !r.path.contains("/tb") && body_name(r).as_deref() != Some("tb"))
                .cloned()
                .collect::<Vec<_>>(),
        );
        assert_report_matches_dm(&env, &rb).await;

        // B's next plan shows A's change as a difference to review, not something silently lost.
        let again = plan(&env, &b, false).await;
        assert!(again.changes.iter().any(|c| c.address.to_string() == "task.t1" && !c.is_noop()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_changed_by_hand_while_apply_stops_it_is_not_overwritten_and_runs_again() {
    for g in GENERATIONS {
        let env = slow_env(g).await;
        converge(&env, &desired(&config(&[incr_task("t1", &["mysql-a"], "running", 100)])), false).await;
        let d = desired(&config(&[incr_task("t1", &["mysql-a"], "running", 200)]));
        let p = plan(&env, &d, false).await;
        let graph = graph_of(&p);
        env.ctl.clear_log();
        // Someone changes t1 with dmctl right after apply stopped it (apply is waiting for Paused).
        let ctl = env.ctl.clone();
        let w = when_landed(
            &env.ctl,
            |r| r.path == "/api/v1/tasks/t1/stop",
            move || {
                ctl.patch_task("t1", json!({"source_config": {"incr_migrate_conf": {"repl_threads": 4}}}))
                    .expect("patch");
            },
        );
        let (r, _) = execute(&env, &p, &fast()).await;
        w.await.unwrap();
        let log = env.ctl.request_log();
        assert!(!r.success());
        assert!(outcome_of(&r, "task.t1: stop task").is_done());
        let msg = failure_of(&r, "task.t1: update task");
        assert!(msg.contains(&format!("task.t1 {CHANGED}")), "{g:?}: {msg}");
        // The hand-made change survives, ours was not sent, and the task we stopped runs again.
        assert_eq!(count(&log, "PUT", "/api/v1/tasks/t1"), 0, "{:#?}", dm_mutations(&log));
        assert_eq!(repl(&env, "t1").await, (100, 4));
        assert!(outcome_of(&r, "task.t1: start task").is_done(), "{}", r.render_text());
        assert!(outcome_of(&r, "task.t1: wait until Running").is_done(), "{}", r.render_text());
        assert_eq!(stages(&env, "t1").await, ["Running"]);
        audit_run(&graph, &r, &log);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_changed_by_hand_while_its_tasks_are_stopped_is_not_overwritten() {
    for g in GENERATIONS {
        let env = slow_env(g).await;
        converge(&env, &desired(&config(&[incr_task("t1", &["mysql-a"], "running", 100)])), false).await;
        // A source update: apply stops t1 (DM refuses to update a source with running tasks), PUTs, restarts t1.
        let d =
            desired(&config(&[incr_task("t1", &["mysql-a"], "running", 100)]).replacen("user: dm\n", "user: dm2\n", 1));
        let p = plan(&env, &d, false).await;
        let graph = graph_of(&p);
        env.ctl.clear_log();
        let ctl = env.ctl.clone();
        let w = when_landed(
            &env.ctl,
            |r| r.path == "/api/v1/tasks/t1/stop",
            move || {
                ctl.patch_source("mysql-a", json!({"port": 3307})).expect("patch");
            },
        );
        let (r, _) = execute(&env, &p, &fast()).await;
        w.await.unwrap();
        let log = env.ctl.request_log();
        let msg = failure_of(&r, "source.mysql-a: update source");
        assert!(msg.contains(&format!("source.mysql-a {CHANGED}")), "{g:?}: {msg}");
        assert_eq!(count(&log, "PUT", "/api/v1/sources/mysql-a"), 0, "{:#?}", dm_mutations(&log));
        let s = env.client.get_source("mysql-a", false).await.unwrap().unwrap();
        assert_eq!((s.port, s.user.as_str()), (3307, "dm"), "the hand-made change survives, ours was not sent");
        // The task stopped for the update runs again.
        wait_stage(&env, "t1", "Running").await;
        audit_run(&graph, &r, &log);
    }
}
