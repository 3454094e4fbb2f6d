//! One layer retries mutations: under apply, a mutation DM keeps refusing with a retryable error (the 46024
//! latch) is sent at most `ApplyOptions::retry.max_attempts` times, although the client keeps its own (read)
//! retries; outside apply the client alone retries the latch, with its own budget.

use std::time::Duration;

use crate::apply_common::*;
use dm_apply::apply::{ApplyOptions, Outcome};
use dm_apply::dm::types::StopTaskRequest;
use dm_apply::dm::{ClientOptions, DmClient, RetryPolicy};
use dm_apply::sim::Generation;

fn budget(n: u32) -> ApplyOptions {
    let retry =
        RetryPolicy { max_attempts: n, base_delay: Duration::from_millis(2), max_delay: Duration::from_millis(8) };
    ApplyOptions { retry, ..fast() }
}

/// The mutating requests on task `name` (its own path and below it).
fn task_mutations(env: &Env, name: &str) -> Vec<(String, String, u16)> {
    let own = format!("/api/v1/tasks/{name}");
    env.ctl
        .request_log()
        .into_iter()
        .filter(|r| r.mutating && (r.path == own || r.path.starts_with(&format!("{own}/"))))
        .map(|r| (r.method, r.path, r.status))
        .collect()
}

#[tokio::test]
async fn a_latched_mutation_is_sent_at_most_max_attempts_times() {
    for g in [Generation::V854, Generation::Head] {
        let mut env = env(g).await;
        // The client's own budget is larger than the executor's: were both to retry, the requests would multiply.
        let mut o = ClientOptions::new(env.sim.url());
        o.retry =
            RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(1), max_delay: Duration::from_millis(4) };
        env.client = DmClient::new(&o).unwrap();
        let t = |batch| config(&[incr_task("orders", &["mysql-a"], "running", batch)]);
        converge(&env, &desired(&t(100)), false).await;
        let p = plan(&env, &desired(&t(200)), false).await;
        assert!(env.ctl.hold_task_latch("orders"));
        env.ctl.clear_log();
        let (r, _) = execute(&env, &p, &budget(3)).await;
        env.ctl.release_task_latch("orders");
        assert!(!r.success(), "{}", r.render_text());
        let sent = task_mutations(&env, "orders");
        // The first mutation of the task is refused every time, sent exactly 3 times; nothing after it is sent.
        assert_eq!(sent.len(), 3, "{g:?}: {sent:?}");
        assert!(sent.iter().all(|s| s == &sent[0] && s.2 == 400), "{g:?}: {sent:?}");
        let failed = r.steps.iter().find_map(|s| match &s.outcome {
            Outcome::Failed { failure } => Some(failure.clone()),
            _ => None,
        });
        assert_eq!(failed.and_then(|f| f.dm_code), Some(46024), "{}", r.render_text());
        // Once the latch is free, the same plan goes through.
        let (r2, _) = execute(&env, &p, &budget(3)).await;
        assert!(r2.success(), "{g:?}: {}", r2.render_text());
    }
}

#[tokio::test]
async fn outside_apply_the_client_alone_retries_the_latch() {
    let env = env(Generation::V854).await;
    converge(&env, &desired(&config(&[incr_task("orders", &["mysql-a"], "running", 100)])), false).await;
    let mut o = ClientOptions::new(env.sim.url());
    o.retry =
        RetryPolicy { max_attempts: 3, base_delay: Duration::from_millis(1), max_delay: Duration::from_millis(4) };
    let client = DmClient::new(&o).unwrap();
    env.ctl.hold_task_latch("orders");
    env.ctl.clear_log();
    let e = client.stop_task("orders", &StopTaskRequest::default()).await.unwrap_err();
    assert_eq!(e.code(), Some(46024));
    assert_eq!(task_mutations(&env, "orders").len(), 3);
    // The executor's view of the same client sends each mutation once.
    env.ctl.clear_log();
    let once = client.sending_mutations_once();
    once.stop_task("orders", &StopTaskRequest::default()).await.unwrap_err();
    assert_eq!(task_mutations(&env, "orders").len(), 1);
    env.ctl.release_task_latch("orders");
}

/// A create is not preceded by a guard re-read (DM refuses a duplicate itself); a resource created by someone else
/// since the plan still fails the create with the guard's message, and nothing is changed on it.
#[tokio::test]
async fn a_task_created_outside_since_the_plan_is_not_touched() {
    for g in [Generation::V854, Generation::Head] {
        let env = env(g).await;
        converge(&env, &desired(&config(&[])), false).await;
        let mine = desired(&config(&[incr_task("orders", &["mysql-a"], "running", 100)]));
        let p = plan(&env, &mine, false).await;
        // Someone else creates the task (another batch size) between plan and apply.
        let theirs = desired(&config(&[incr_task("orders", &["mysql-a"], "stopped", 300)]));
        let other = plan(&env, &theirs, false).await;
        let (r, _) = execute(&env, &other, &fast()).await;
        assert!(r.success(), "{}", r.render_text());
        env.ctl.clear_log();
        let (r, _) = execute(&env, &p, &fast()).await;
        assert!(!r.success());
        match outcome_of(&r, "task.orders: create task") {
            Outcome::Failed { failure } => assert!(
                failure.message.contains(
                    "task.orders was created outside this apply since the plan was made; nothing was changed on it"
                ),
                "{failure:?}"
            ),
            o => panic!("{g:?}: {o:?}"),
        }
        let sent = task_mutations(&env, "orders");
        assert!(sent.is_empty(), "only the refused create, on /tasks: {sent:?}");
        let posts: Vec<u16> = env
            .ctl
            .request_log()
            .iter()
            .filter(|r| r.method == "POST" && r.path == "/api/v1/tasks")
            .map(|r| r.status)
            .collect();
        assert_eq!(posts, vec![400], "{g:?}");
        let t = env.client.get_task("orders", false).await.unwrap().unwrap();
        assert_eq!(t.source_config.source_conf.len(), 1);
        assert!(
            !env.client
                .task_status("orders")
                .await
                .unwrap()
                .iter()
                .any(|s| s.stage == dm_apply::dm::types::Stage::Running)
        );
    }
}
