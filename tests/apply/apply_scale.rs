//! Apply at fleet scale: the state record is written as a group commit (many record steps, few writes, nothing
//! lost), and waits for tasks to run do not take the parallelism slots from creates.

use std::time::Duration;

use crate::apply_common::*;
use dm_apply::plan::Address;
use dm_apply::sim::{Generation, SimOptions};
use dm_apply::state::{StateView, store};

/// `n` sources and one stopped task on the first (the record is kept with a declared task's target).
fn sources(n: usize) -> String {
    let mut y = String::from("sources:\n");
    for i in 0..n {
        y += &format!(
            "  - {{source_name: src-{i}, host: mysql-{i}.internal, port: 3306, user: dm, password: pw-{i}, enable: true}}\n"
        );
    }
    y += "tasks:\n  - name: home\n    task_mode: incremental\n    stage: stopped\n    target_config: {host: tidb.internal, port: 4000, user: root, password: tpw}\n    table_migrate_rule: [{source: {source_name: src-0, schema: shop}}]\n    source_config: {source_conf: [{source_name: src-0, binlog_name: mysql-bin.000001, binlog_pos: 4}]}\n";
    y
}

#[tokio::test]
async fn state_record_writes_are_batched_and_keep_every_fingerprint() {
    let n = 24;
    let env = env_with(SimOptions {
        workers: n,
        generation: Generation::Head,
        seed: Some(3),
        // Latency makes the record steps overlap, as they do against a real master.
        latency: Duration::from_millis(3),
        ..SimOptions::default()
    })
    .await;
    let d = desired(&sources(n));
    let r = converge(&env, &d, false).await;
    assert_eq!(r.summary_line(), format!("Apply complete! Resources: {} added, 0 changed, 0 destroyed.", n + 1));
    let log = env.ctl.request_log();
    let writes = log.iter().filter(|r| r.mutating && r.path.starts_with("/api/v1/tasks/templates")).count();
    assert!(writes >= 1 && writes < n, "{writes} writes of the state record for {n} record steps");
    let StateView::Record { record, target } = store::read(&env.client).await else { panic!("no state record") };
    assert_eq!(target.host, "tidb.internal");
    for i in 0..n {
        let addr: Address = format!("source.src-{i}").parse().unwrap();
        assert!(record.entry(&addr).is_some_and(|e| e.fingerprints.contains_key("password")), "{addr} not recorded");
    }
    // Planning again shows no password change: every fingerprint was recorded.
    assert_no_changes(&env, &d, false).await;
}

/// Record steps become ready together, after every change they record; the first writer gathers those the
/// scheduler is still starting, so one read and one write carry them all (without it: one write for the first
/// step alone, then one for the rest).
#[tokio::test]
async fn record_steps_ready_together_are_written_once() {
    let n = 40;
    let env = env_with(SimOptions {
        workers: n,
        generation: Generation::Head,
        seed: Some(4),
        latency: Duration::from_millis(2),
        ..SimOptions::default()
    })
    .await;
    let d = desired(&sources(n));
    let p = plan(&env, &d, false).await;
    let (r, _) = execute(&env, &p, &recording(&p, &d)).await;
    assert!(r.success(), "{}", r.render_text());
    let log = env.ctl.request_log();
    let writes = log.iter().filter(|r| r.mutating && r.path.starts_with("/api/v1/tasks/templates")).count();
    assert_eq!(writes, 1, "{writes} writes of the state record for {} record steps ready together", n + 1);
    assert_no_changes(&env, &d, false).await;
}

#[tokio::test]
async fn waits_do_not_block_creates_and_polls_stay_bounded() {
    let env = env_with(SimOptions {
        workers: 4,
        seed: Some(5),
        latency: Duration::from_millis(2),
        stage_delay: Duration::from_millis(30),
        ..SimOptions::default()
    })
    .await;
    let tasks: Vec<String> = (0..8).map(|i| incr_task(&format!("t{i}"), &["mysql-a"], "running", 100)).collect();
    let d = desired(&config(&tasks));
    let p = plan(&env, &d, false).await;
    // One slot: the waits (which only poll) must still run beside the other steps and every task must run.
    let opts = dm_apply::apply::ApplyOptions { parallelism: 1, ..fast() };
    let (r, _) = execute(&env, &p, &opts).await;
    assert!(r.success(), "{}", r.render_text());
    for i in 0..8 {
        assert_eq!(stages(&env, &format!("t{i}")).await, ["Running"]);
    }
    // A task created by this apply has no earlier errors to remember: no status read before its start.
    let log = env.ctl.request_log();
    let start = log.iter().position(|r| r.method == "POST" && r.path == "/api/v1/tasks/t0/start").unwrap();
    let create = log.iter().position(|r| r.method == "POST" && r.path == "/api/v1/tasks").unwrap();
    assert!(
        !log[create..start].iter().any(|r| r.path == "/api/v1/tasks/t0/status"),
        "status of t0 read between its create and its start"
    );
    assert_no_changes(&env, &d, false).await;
}
