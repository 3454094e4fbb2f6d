//! What dm-apply plans and applies where the real DM-master refuses or cannot answer (docs/dm-behaviour.md): changes
//! DM refuses in the current state are shown as blocked and left alone by apply; version-dependent filter events;
//! the precheck DM runs again on every task update. Through the binary, against the in-process simulator.

use crate::plan_common::*;
use dm_apply::dm::types::EnableRelayRequest;
use dm_apply::sim::{Generation, SimServer};

const BASE: &str = r#"
sources:
  - {source_name: s1, host: s1.db, port: 3306, user: u, password: "${env:DM_PASSWORD}", purge: {interval: 3600}}
tasks:
  - name: t1
    task_mode: incremental
    target_config: {host: tidb, port: 4000, user: root, password: "${env:DM_TARGET_PASSWORD}"}
    table_migrate_rule:
      - source: {source_name: s1, schema: shop, table: "*"}
    source_config:
      source_conf: [{source_name: s1, binlog_name: mysql-bin.000042, binlog_pos: 4}]
    stage: running
"#;

fn write(dir: &tempfile::TempDir, yaml: &str) -> String {
    let p = dir.path().join("dm.yaml");
    std::fs::write(&p, yaml).unwrap();
    p.display().to_string()
}

async fn apply(sim: &SimServer, cfg: &str) {
    let (code, out, err) = run(s(&["apply", "-f", cfg, "--addr", &sim.url(), "--auto-approve"])).await;
    assert_eq!(code, 0, "{out}\n{err}");
}

fn mutations(sim: &SimServer) -> Vec<String> {
    sim.control()
        .request_log()
        .iter()
        .filter(|r| r.mutating && !r.path.starts_with("/api/v1/tasks/templates"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_change_while_relay_runs_is_blocked_and_left_alone() {
    // v8.5.3: a relay-enable body gets no `relay_dir` injected there, so DM starts relay next to a running task
    // (on v8.5.4+ the injected field makes it a source update, refused while the task runs: R4.2).
    let (sim, client) = start(Generation::V853).await;
    let dir = tempfile::tempdir().unwrap();
    apply(&sim, &write(&dir, BASE)).await;
    // An operator started relay by worker name, as `dmctl start-relay` does.
    let bound = sim.control().snapshot()["sources"]["s1"]["bound_worker"].as_str().unwrap().to_string();
    let req = EnableRelayRequest { worker_name_list: Some(vec![bound]), ..Default::default() };
    client.enable_relay("s1", Some(&req)).await.unwrap();

    let changed = write(&dir, &BASE.replace("interval: 3600", "interval: 7200"));
    let (code, out, err) = run(s(&["plan", "-f", &changed, "--addr", &sim.url(), "--detailed-exitcode"])).await;
    assert_eq!(code, 2, "a blocked change is still a change:\n{out}\n{err}");
    assert!(out.contains("Changes that apply will NOT carry out now"), "{out}");
    assert!(out.contains("BLOCKED") && out.contains("relay runs for source s1"), "{out}");
    assert!(out.contains("Not applied now: 0 deferred, 1 blocked."), "{out}");
    assert!(!out.contains("dm-apply will perform the following actions"), "{out}");

    let (code, out, err) = run(s(&["plan", "-f", &changed, "--addr", &sim.url(), "-o", "json"])).await;
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["summary"]["blocked"], 1, "{v:#}");
    assert_eq!(v["has_actionable_changes"], false);
    assert_eq!(v["resource_changes"][0]["hold"]["kind"], "blocked");

    let before = mutations(&sim).len();
    let (code, out, err) = run(s(&["apply", "-f", &changed, "--addr", &sim.url(), "--auto-approve"])).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("Nothing to apply now"), "{err}");
    assert_eq!(mutations(&sim)[before..], [] as [String; 0], "apply must not touch a blocked source");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_a_task_on_a_disabled_source_is_blocked_not_planned() {
    let (sim, client) = start(Generation::Head).await;
    let dir = tempfile::tempdir().unwrap();
    apply(&sim, &write(&dir, BASE)).await;
    client.disable_source("s1").await.unwrap();
    // The configuration agrees the source is disabled but still wants the task running: DM refuses that start
    // (38058), so planning it would only make the next apply fail.
    let cfg = write(&dir, &BASE.replace("purge: {interval: 3600}", "purge: {interval: 3600}, enable: false"));
    let mut out = String::new();
    for _ in 0..200 {
        let (code, o, err) = run(s(&["plan", "-f", &cfg, "--addr", &sim.url(), "--detailed-exitcode"])).await;
        assert_ne!(code, 1, "{o}\n{err}");
        out = o;
        if out.contains("BLOCKED") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(out.contains("task.t1") && out.contains("38058"), "{out}");
    let before = mutations(&sim).len();
    let (code, out, err) = run(s(&["apply", "-f", &cfg, "--addr", &sim.url(), "--auto-approve"])).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(mutations(&sim)[before..], [] as [String; 0], "no start of a task on a disabled source");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_key_events_are_refused_against_a_server_that_drops_them() {
    let yaml = BASE.replace(
        "    table_migrate_rule:\n      - source: {source_name: s1, schema: shop, table: \"*\"}",
        "    binlog_filter_rule:\n      no-fk: {ignore_event: [\"add foreign key\"]}\n    table_migrate_rule:\n      - source: {source_name: s1, schema: shop, table: \"*\"}\n        binlog_filter_rule: [no-fk]",
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(&dir, &yaml);
    let (code, out, err) = run(s(&["validate", "-f", &cfg])).await;
    assert_eq!(code, 0, "the event exists in current DM versions:\n{out}\n{err}");
    for (generation, ok) in [(Generation::V853, false), (Generation::Head, true)] {
        let (sim, _client) = start(generation).await;
        let (code, out, err) = run(s(&["plan", "-f", &cfg, "--addr", &sim.url()])).await;
        if ok {
            assert_eq!(code, 0, "{generation:?}:\n{out}\n{err}");
        } else {
            assert_eq!(code, 1, "{generation:?}:\n{out}\n{err}");
            assert!(err.contains("add foreign key") && err.contains("silently drop the whole rule"), "{err}");
        }
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_of_a_positioned_incremental_task_says_dm_prechecks_it_again() {
    let (sim, _client) = start(Generation::Head).await;
    let dir = tempfile::tempdir().unwrap();
    apply(&sim, &write(&dir, BASE)).await;
    let cfg = write(&dir, &BASE.replace("table: \"*\"}", "table: \"order*\"}"));
    let (code, out, err) = run(s(&["plan", "-f", &cfg, "--addr", &sim.url(), "--detailed-exitcode"])).await;
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(out.contains("will be updated in-place"), "{out}");
    // Reasons are wrapped at 100 columns in the text plan: read them as one line.
    let out = out.replace("\n  #  ", " ");
    assert!(out.contains("start position (s1 mysql-bin.000042:4)") && out.contains("(26005)"), "{out}");
    sim.shutdown().await;
}

/// Relay on a worker other than the source's bound one makes DM unable to report the task's status at all, and the
/// whole task list with status fails (docs/dm-behaviour.md R8.12). dm-apply must not read that as "running".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_unavailable_is_never_taken_for_running() {
    // v8.5.3: a relay-enable body is not rewritten there (R4.2), so relay starts next to the running task.
    let (sim, client) = start(Generation::V853).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(&dir, BASE);
    apply(&sim, &cfg).await;
    let snap = sim.control().snapshot();
    let bound = snap["sources"]["s1"]["bound_worker"].as_str().unwrap().to_string();
    let other = snap["workers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["name"].as_str())
        .find(|w| *w != bound)
        .unwrap()
        .to_string();
    let req = EnableRelayRequest { worker_name_list: Some(vec![other]), ..Default::default() };
    client.enable_relay("s1", Some(&req)).await.unwrap();
    assert!(client.task_status("t1").await.is_err(), "the simulator must refuse the status now (R8.12)");

    let (code, out, err) = run(s(&["plan", "-f", &cfg, "--addr", &sim.url(), "--detailed-exitcode"])).await;
    assert_eq!(code, 0, "nothing to do, and nothing planned on a guess:\n{out}\n{err}");
    assert!(out.contains("status of task t1 is unavailable") && out.contains("49001"), "{out}");
    let (code, out, err) = run(s(&["plan", "-f", &cfg, "--addr", &sim.url(), "-o", "json"])).await;
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains("t1")), "{v:#}");

    let (code, out, err) = run(s(&["drift", "-f", &cfg, "--addr", &sim.url()])).await;
    assert_eq!(code, 2, "an unconfirmed stage is drift:\n{out}\n{err}");
    assert!(out.contains("status unavailable"), "{out}");

    // A task stopped by hand must be started, but its start cannot be confirmed: apply says so quickly instead of
    // waiting out --wait-timeout or claiming success.
    client.stop_task("t1", &Default::default()).await.unwrap();
    let (code, out, err) =
        run(s(&["apply", "-f", &cfg, "--addr", &sim.url(), "--auto-approve", "--wait-timeout", "10m"])).await;
    // The planner cannot see that the task is stopped (its status is unavailable): nothing is planned, and apply
    // says the cluster matches only as far as DM can tell.
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("status of task t1 is unavailable"), "{out}");
    sim.shutdown().await;
}

/// With the OpenAPI switched off, every /api/v1 path is a plain-text 404 (R2.2): dm-apply says how to turn it on
/// and never reads it as an empty cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_switched_off_is_an_error_with_the_fix_not_an_empty_cluster() {
    let opts = dm_apply::sim::SimOptions { openapi: false, ..dm_apply::sim::SimOptions::default() };
    let sim = SimServer::start(opts).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(&dir, BASE);
    for cmd in ["plan", "drift"] {
        let (code, out, err) = run(s(&[cmd, "-f", &cfg, "--addr", &sim.url()])).await;
        assert_eq!(code, 1, "{cmd}:\n{out}\n{err}");
        assert!(err.contains("openapi = true"), "{cmd}: {err}");
        assert!(!out.contains("will be created"), "{cmd}: a 404 is not an empty cluster:\n{out}");
    }
    let (code, _, err) = run(s(&["import", "--addr", &sim.url()])).await;
    assert_eq!(code, 1, "{err}");
    sim.shutdown().await;
}

/// DM prechecks every task update again, including the configured start position (R6.3): once that binlog is
/// purged upstream, the update fails with DM's check output, which apply prints verbatim; the task keeps running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_refused_by_the_precheck_prints_dms_check_output_and_keeps_the_task_running() {
    let (sim, client) = start(Generation::V854).await;
    let dir = tempfile::tempdir().unwrap();
    // Start near the end of a 1 GiB binlog file, so the task's checkpoint soon moves into the next file; then
    // purge the configured file only: DM's precheck of the configured position fails, the checkpoint is intact.
    let near_end = BASE.replace("binlog_pos: 4", &format!("binlog_pos: {}", (1u64 << 30) - 300));
    apply(&sim, &write(&dir, &near_end)).await;
    let mut moved = false;
    for _ in 0..500 {
        let snap = sim.control().snapshot();
        let at = snap["tasks"]["t1"]["subtasks"]["s1"]["checkpoint"]["position"].as_str().unwrap_or("").to_string();
        if at.starts_with("(mysql-bin.000043") {
            moved = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(moved, "the checkpoint should reach the next binlog file");
    sim.control().purge_binlogs("s1", Some("mysql-bin.000043"), None).unwrap();
    let cfg = write(&dir, &near_end.replace("table: \"*\"}", "table: \"order*\"}"));
    let (code, out, err) = run(s(&["apply", "-f", &cfg, "--addr", &sim.url(), "--auto-approve"])).await;
    assert_eq!(code, 1, "{out}\n{err}");
    let all = format!("{out}\n{err}");
    assert!(all.contains("26005"), "{all}");
    assert!(all.contains("meta position check") || all.contains("meta_position"), "DM's check output: {all}");
    // The task was stopped for the update and started again after DM refused it.
    let mut running = false;
    for _ in 0..200 {
        let st = client.task_status("t1").await.unwrap();
        if st.iter().all(|x| x.stage == dm_apply::dm::types::Stage::Running) {
            running = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(running, "the task keeps running after a refused update");
    sim.shutdown().await;
}
