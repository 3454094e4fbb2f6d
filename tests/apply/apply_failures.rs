//! Failures midway, concurrent modification, DM's latch, injected faults, Ctrl-C and --fail-fast: the report says
//! exactly what happened (checked against the simulator), and a second apply converges.

use std::time::Duration;

use crate::apply_common::*;
use dm_apply::apply::{ApplyOptions, Event, Outcome, StopReason};
use dm_apply::sim::{FaultKind, Generation, SimOptions};
use serde_json::json;

fn with_unreachable(cfg: &str) -> String {
    cfg.replacen("host: mysql-b.internal", "host: mysql-b.unreachable", 1)
}

#[tokio::test]
async fn a_source_that_cannot_be_created_skips_its_tasks_and_a_second_apply_converges() {
    for g in GENERATIONS {
        let env = env(g).await;
        let tasks = [
            incr_task("on-a", &["mysql-a"], "running", 100),
            incr_task("on-b", &["mysql-b"], "running", 100),
            incr_task("on-ab", &["mysql-a", "mysql-b"], "running", 100),
        ];
        let broken = desired(&with_unreachable(&config(&tasks)));
        let p = plan(&env, &broken, false).await;
        let (r, _) = execute(&env, &p, &fast()).await;
        assert!(!r.success());
        match outcome_of(&r, "source.mysql-b: create source") {
            Outcome::Failed { failure } => {
                assert_eq!(failure.http_status, Some(400), "{failure:?}");
                assert_eq!(failure.dm_code, Some(10001), "{failure:?}");
            }
            o => panic!("{g:?}: {o:?}"),
        }
        for t in ["on-b", "on-ab"] {
            assert!(
                matches!(outcome_of(&r, &format!("task.{t}: create task")), Outcome::Skipped { .. }),
                "{}",
                r.render_text()
            );
        }
        // The independent branch went on.
        assert!(outcome_of(&r, "task.on-a: wait until Running").is_done());
        assert!(r.summary_line().starts_with("Apply failed: 1 of "), "{}", r.summary_line());
        assert!(r.summary_line().ends_with("Resources: 2 added, 0 changed, 0 destroyed."), "{}", r.summary_line());
        assert_report_matches_dm(&env, &r).await;

        // Fixed configuration: the second apply finishes the job.
        let fixed = desired(&config(&tasks));
        let r2 = converge(&env, &fixed, false).await;
        assert_eq!(r2.summary_line(), "Apply complete! Resources: 3 added, 0 changed, 0 destroyed.", "{g:?}");
        assert_no_changes(&env, &fixed, false).await;
    }
}

#[tokio::test]
async fn a_task_that_pauses_with_an_error_fails_with_dms_message() {
    for g in GENERATIONS {
        // Slow transitions, so the error is injected before the task ever runs.
        let env = env_with(SimOptions {
            generation: g,
            seed: Some(1),
            stage_delay: Duration::from_millis(300),
            ..SimOptions::default()
        })
        .await;
        let d = desired(&config(&[incr_task("orders", &["mysql-a"], "running", 100)]));
        let p = plan(&env, &d, false).await;
        let ctl = env.ctl.clone();
        let msg = "[code=10006:class=database:scope=not-set:level=high], Message: execute statement failed: \
                   Duplicate entry '1' for key 'PRIMARY'";
        let injector = tokio::spawn(async move {
            loop {
                if ctl.request_log().iter().any(|r| r.method == "POST" && r.path == "/api/v1/tasks/orders/start") {
                    ctl.pause_task_with_error("orders", "mysql-a", msg);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        let (r, _) = execute(&env, &p, &fast()).await;
        injector.await.unwrap();
        match outcome_of(&r, "task.orders: wait until Running") {
            Outcome::Failed { failure } => {
                assert!(failure.message.contains("paused with an error on source mysql-a"), "{failure:?}");
                assert!(failure.message.contains("Duplicate entry"), "{failure:?}");
                assert_eq!(failure.dm_code, Some(10006));
            }
            o => panic!("{g:?}: {o:?}\n{}", r.render_text()),
        }
        assert!(outcome_of(&r, "task.orders: start task").is_done());
        assert_report_matches_dm(&env, &r).await;

        // The next plan shows the paused task with DM's error; applying it starts the task again. The error the
        // task already shows is not mistaken for a new failure while the worker picks the start up.
        let p2 = plan(&env, &d, false).await;
        let c = p2.changes.iter().find(|c| c.address.to_string() == "task.orders").expect("stage drift");
        assert!(c.reasons.iter().any(|r| r.contains("Duplicate entry")), "{:?}", c.reasons);
        let opts = ApplyOptions { error_grace: Duration::from_secs(3), ..fast() };
        let (r2, _) = execute(&env, &p2, &opts).await;
        assert!(r2.success(), "{}", r2.render_text());
        assert_no_changes(&env, &d, false).await;
    }
}

#[tokio::test]
async fn a_resource_changed_after_the_plan_is_not_clobbered() {
    for g in GENERATIONS {
        let env = env(g).await;
        let before = [incr_task("t-a", &["mysql-a"], "running", 100), incr_task("t-b", &["mysql-b"], "running", 100)];
        converge(&env, &desired(&config(&before)), false).await;
        let after = desired(&config(&[
            incr_task("t-a", &["mysql-a"], "running", 200),
            incr_task("t-b", &["mysql-b"], "running", 200),
        ]));
        let p = plan(&env, &after, false).await;
        // Someone else changes t-a between plan and apply.
        env.ctl.patch_task("t-a", json!({"source_config": {"incr_migrate_conf": {"repl_threads": 4}}})).expect("patch");
        env.ctl.clear_log();
        let (r, _) = execute(&env, &p, &fast()).await;
        match outcome_of(&r, "task.t-a: stop task") {
            Outcome::Failed { failure } => assert!(
                failure.message.contains("task.t-a was changed outside this apply since the plan was made"),
                "{failure:?}"
            ),
            o => panic!("{g:?}: {o:?}"),
        }
        for step in ["task.t-a: update task", "task.t-a: start task"] {
            assert!(matches!(outcome_of(&r, step), Outcome::Skipped { .. }), "{step}\n{}", r.render_text());
        }
        let m = dm_mutations(&env.ctl.request_log());
        assert!(!m.iter().any(|x| x.contains("/tasks/t-a")), "t-a was touched: {m:#?}");
        assert!(m.contains(&"PUT /api/v1/tasks/t-b".to_string()), "the other branch went on: {m:#?}");
        assert_eq!(stages(&env, "t-a").await, ["Running"]);

        // A source changed behind our back is refused the same way, before its tasks are stopped.
        let src_change = desired(&config(&[]).replacen("user: dm\n", "user: dm2\n", 1));
        let p = plan(&env, &src_change, false).await;
        env.ctl.patch_source("mysql-a", json!({"port": 3307})).expect("patch");
        env.ctl.clear_log();
        let (r, _) = execute(&env, &p, &fast()).await;
        assert!(!r.success());
        assert!(r.render_text().contains("source.mysql-a was changed outside this apply"), "{}", r.render_text());
        assert!(dm_mutations(&env.ctl.request_log()).is_empty(), "{:?}", dm_mutations(&env.ctl.request_log()));
    }
}

#[tokio::test]
async fn dms_task_latch_is_retried() {
    let mut env = env(Generation::Head).await;
    // The client alone retries the latch too: switch that off to see the executor's own retry.
    let mut o = dm_apply::dm::ClientOptions::new(env.sim.url());
    o.retry = dm_apply::dm::client::RetryPolicy::none();
    env.client = dm_apply::dm::DmClient::new(&o).unwrap();
    let t = |batch| config(&[incr_task("orders", &["mysql-a"], "running", batch)]);
    converge(&env, &desired(&t(100)), false).await;
    let p = plan(&env, &desired(&t(200)), false).await;
    // Another client holds the task's latch for a while (a slow start of the already running task).
    env.ctl.set_latency(Duration::from_millis(400));
    let other = env.client.clone();
    let holder = tokio::spawn(async move { other.start_task("orders", &Default::default()).await });
    while !env.ctl.request_log().iter().any(|r| r.path == "/api/v1/tasks/orders/start" && r.status == 0) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    env.ctl.set_latency(Duration::ZERO);
    let opts = ApplyOptions {
        retry: dm_apply::dm::RetryPolicy { base_delay: Duration::from_millis(100), ..fast().retry },
        ..fast()
    };
    let (r, events) = execute(&env, &p, &opts).await;
    holder.await.unwrap().unwrap();
    assert!(r.success(), "{}", r.render_text());
    let latched =
        env.ctl.request_log().iter().filter(|r| r.path == "/api/v1/tasks/orders/stop" && r.status == 400).count();
    assert!(latched >= 1, "the stop never met the latch");
    assert!(
        events.iter().any(|e| matches!(e, Event::Progress { message, .. } if message.contains("46024"))),
        "the retry is reported"
    );
}

#[tokio::test]
async fn injected_server_errors_and_resets_are_retried_or_settled_by_reading() {
    for g in GENERATIONS {
        let env = env(g).await;
        let d = desired(&config(&[
            incr_task("t1", &["mysql-a"], "running", 100),
            incr_task("t2", &["mysql-a", "mysql-b"], "running", 100),
            incr_task("t3", &["mysql-b"], "stopped", 100),
        ]));
        let p = plan(&env, &d, false).await;
        env.ctl.set_faults(0.25, vec![FaultKind::ServerError, FaultKind::Reset]);
        let opts = ApplyOptions { retry: dm_apply::dm::RetryPolicy { max_attempts: 9, ..fast().retry }, ..fast() };
        let (r, _) = execute(&env, &p, &opts).await;
        env.ctl.set_faults(0.0, vec![]);
        assert!(r.success(), "{g:?}\n{}", r.render_text());
        assert!(env.ctl.request_log().iter().any(|r| r.faulted), "no fault was injected");
        assert_no_changes(&env, &d, false).await;
    }
}

#[tokio::test]
async fn ctrl_c_lets_steps_in_flight_finish_and_reports_the_rest() {
    let env = env(Generation::Head).await;
    let d = desired(&config(&[
        incr_task("t1", &["mysql-a"], "running", 100),
        incr_task("t2", &["mysql-b"], "running", 100),
    ]));
    let p = plan(&env, &d, false).await;
    let opts = ApplyOptions { parallelism: 1, ..fast() };
    let cancel = opts.cancel.clone();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // Cancel as soon as the first step started (as Ctrl-C would).
    let watcher = tokio::spawn(async move {
        let mut events = vec![];
        while let Some(e) = rx.recv().await {
            if matches!(e, Event::Started { .. }) {
                cancel.cancel();
            }
            events.push(e);
        }
        events
    });
    let r = dm_apply::apply::execute(&p, &env.client, &opts, tx).await.unwrap();
    let events = watcher.await.unwrap();
    assert_eq!(r.stopped, Some(StopReason::Interrupted));
    assert!(events.contains(&Event::Stopping { reason: StopReason::Interrupted }));
    assert!(r.steps[0].outcome.is_done(), "the step in flight finished: {}", r.render_text());
    assert!(r.steps[1..].iter().all(|s| matches!(s.outcome, Outcome::NotStarted { reason: StopReason::Interrupted })));
    assert!(r.summary_line().starts_with("Apply interrupted: 0 of "), "{}", r.summary_line());
    assert_report_matches_dm(&env, &r).await;
    // Only the one step that ran touched DM.
    assert_eq!(dm_mutations(&env.ctl.request_log()).len(), 1);
    converge(&env, &d, false).await;
    assert_no_changes(&env, &d, false).await;
}

#[tokio::test]
async fn fail_fast_stops_everything_after_the_first_failure() {
    let env = env(Generation::V853).await;
    let d = desired(&with_unreachable(&config(&[incr_task("on-a", &["mysql-a"], "running", 100)])));
    let p = plan(&env, &d, false).await;
    let opts = ApplyOptions { parallelism: 1, fail_fast: true, ..fast() };
    let (r, _) = execute(&env, &p, &opts).await;
    assert_eq!(r.stopped, Some(StopReason::FailFast));
    assert!(matches!(outcome_of(&r, "source.mysql-b: create source"), Outcome::Failed { .. }));
    assert!(matches!(outcome_of(&r, "task.on-a: create task"), Outcome::NotStarted { reason: StopReason::FailFast }));
    assert_report_matches_dm(&env, &r).await;
}

/// DM stops every task of a bound source before it writes a disable, so a disable it then refuses (46025: relay
/// started since the plan was made) has already stopped them (docs/dm-behaviour.md R3.11). The failed step says
/// which tasks are now stopped.
#[tokio::test]
async fn a_refused_disable_names_the_tasks_dm_already_stopped() {
    // v8.5.3: a relay-enable body is not rewritten there, so relay can be started next to a running task.
    let env = env(Generation::V853).await;
    let running = config(&[incr_task("t1", &["mysql-a"], "running", 100)]);
    converge(&env, &desired(&running), false).await;
    let disabled = running.replacen("password: pw-a\n    enable: true", "password: pw-a\n    enable: false", 1);
    let d = desired(&disabled);
    let p = plan(&env, &d, false).await;
    assert!(p.changes.iter().any(|c| c.address.to_string() == "source.mysql-a" && c.hold.is_none()), "{p:#?}");
    // Relay starts between the plan and the apply.
    let bound = env.ctl.snapshot()["sources"]["mysql-a"]["bound_worker"].as_str().unwrap().to_string();
    let req = dm_apply::dm::types::EnableRelayRequest { worker_name_list: Some(vec![bound]), ..Default::default() };
    env.client.enable_relay("mysql-a", Some(&req)).await.unwrap();
    let (r, _) = execute(&env, &p, &fast()).await;
    assert!(!r.success());
    match outcome_of(&r, "source.mysql-a: disable source") {
        Outcome::Failed { failure } => {
            assert_eq!(failure.dm_code, Some(46025), "{failure:?}");
            assert!(failure.message.contains("stays enabled"), "{}", failure.message);
            assert!(failure.message.contains("these are now stopped: task.t1"), "{}", failure.message);
        }
        o => panic!("{o:?}\n{}", r.render_text()),
    }
    wait_stage(&env, "t1", "Paused").await;
    assert!(env.ctl.snapshot()["sources"]["mysql-a"]["config"]["enable"].as_bool().unwrap(), "still enabled");
}
