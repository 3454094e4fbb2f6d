//! The simulator's stateful replication behaviour, one test per rule, through the real `DmClient` (raw HTTP for
//! the test-only controls and the legacy endpoints) against an in-process simulator: precheck on create and
//! update with purged upstream binlogs (docs/dm-behaviour.md §5, §6), checkpoints and where a task starts (§7,
//! §8), shard DDL coordination state (§6, §8), legacy endpoints and dmctl-created tasks (§11).

use std::time::Duration;

use crate::simh::*;
use dm_apply::dm::DmClient;
use dm_apply::dm::types::*;
use dm_apply::sim::{Generation, ShardDdlState, ShardingGroup, SimServer};
use serde_json::{Value, json};

/// (status, body text) of a raw request.
/// [`raw`] with a JSON body.
async fn raw_json(sim: &SimServer, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
    let body = body.map(|b| b.to_string());
    raw(sim, method, path, body.as_ref().map(|_| "application/json"), body.as_deref()).await
}

/// An incremental task on source `a` starting at `mysql-bin.000001:4`.
fn incr(name: &str) -> Task {
    task(name, "incremental", &["a"])
}

async fn run_for(c: &DmClient, t: &str, d: Duration) {
    c.start_task(t, &StartTaskRequest::default()).await.unwrap();
    wait_stage(c, t, Stage::Running).await;
    wait_unit(c, t, Unit::Sync).await;
    tokio::time::sleep(d).await;
}

async fn stop(c: &DmClient, t: &str) {
    c.stop_task(t, &StopTaskRequest::default()).await.unwrap();
    wait_stage(c, t, Stage::Paused).await;
}

/// `sync_status` of the subtask on `source`.
async fn sync_status(c: &DmClient, t: &str, source: &str) -> Value {
    let st = c.task_status(t).await.unwrap();
    let s = st.into_iter().find(|s| s.source_name == source).and_then(|s| s.sync_status).expect("sync_status");
    serde_json::to_value(s).unwrap()
}

/// `(mysql-bin.000012, 3456)` → ("mysql-bin.000012", 3456).
fn parse_pos(s: &str) -> (String, i64) {
    let inner = s.trim().strip_prefix('(').and_then(|x| x.strip_suffix(')')).expect(s);
    let (name, pos) = inner.split_once(", ").expect(s);
    (name.to_string(), pos.parse().expect(s))
}

fn snapshot_sub(sim: &SimServer, t: &str, s: &str) -> Value {
    sim.control().snapshot()["tasks"][t]["subtasks"][s].clone()
}

fn at(mut t: Task, name: &str, pos: i64) -> Task {
    t.source_config.source_conf[0].binlog_name = Some(name.into());
    t.source_config.source_conf[0].binlog_pos = Some(pos);
    t
}

// =========================================================================================== precheck (§5, §6)

#[tokio::test]
async fn create_fails_meta_position_check_when_start_binlog_is_purged_26005() {
    for g in [Generation::V854, Generation::Head] {
        let (sim, c) = with_sources(g, &["a"]).await;
        sim.control().purge_binlogs("a", Some("mysql-bin.000010"), None).unwrap();
        let e = c.create_task(&incr("t")).await.unwrap_err();
        assert_eq!((e.status(), e.code()), (Some(400), Some(26005)), "{g:?}");
        let msg = e.to_string();
        assert!(msg.contains("fail to check synchronization configuration with type: check was failed"), "{msg}");
        assert!(msg.contains("\"name\": \"meta position check\""), "{msg}");
        assert!(msg.contains("Could not find first log file name in binary log index file"), "{msg}");
        assert!(msg.contains("address of db instance - a.db.internal:3306"), "{msg}");
        // Nothing was created; a start in a file still present passes.
        assert_eq!(sim.control().snapshot()["tasks"], json!({}));
        let ok = c.create_task(&at(incr("t"), "mysql-bin.000010", 4)).await.unwrap();
        assert_eq!(ok.check_result, "pre-check is passed. ");
    }
}

#[tokio::test]
async fn update_reruns_precheck_and_fails_once_the_start_binlog_is_purged_26005() {
    for g in [Generation::V854, Generation::Head] {
        let (sim, c) = with_sources(g, &["a"]).await;
        let t = incr("t");
        c.create_task(&t).await.unwrap();
        run_for(&c, "t", Duration::ZERO).await;
        stop(&c, "t").await;
        let mut changed = t.clone();
        changed.source_config.incr_migrate_conf = Some(IncrMigrateConf { repl_batch: Some(50), ..Default::default() });
        c.update_task(&changed).await.unwrap();
        sim.control().purge_binlogs("a", Some("mysql-bin.000002"), None).unwrap();
        let e = c.update_task(&changed).await.unwrap_err();
        assert_eq!(e.code(), Some(26005), "{g:?}: {e}");
        assert!(e.to_string().contains("meta position check"));
        // The precheck runs before the task-existence check, like on the server.
        let mut other = changed.clone();
        other.name = "nope".into();
        assert_eq!(c.update_task(&other).await.unwrap_err().code(), Some(26005));
    }
}

#[tokio::test]
async fn meta_position_in_ignore_checking_items_skips_the_check_but_cannot_be_added_by_update() {
    let (sim, c) = with_sources(Generation::V854, &["a"]).await;
    let mut ignoring = incr("ig");
    ignoring.ignore_checking_items = Some(vec!["meta_position".into()]);
    c.create_task(&ignoring).await.unwrap();
    c.create_task(&incr("plain")).await.unwrap();
    for t in ["ig", "plain"] {
        run_for(&c, t, Duration::ZERO).await;
        stop(&c, t).await;
    }
    sim.control().purge_binlogs("a", Some("mysql-bin.000005"), None).unwrap();
    // Created with the item ignored: updates keep passing.
    c.update_task(&ignoring).await.unwrap();
    // Adding it in the update body passes the precheck, but the item is not updatable (46035).
    let mut adding = incr("plain");
    adding.ignore_checking_items = Some(vec!["meta_position".into()]);
    let e = c.update_task(&adding).await.unwrap_err();
    assert_eq!(e.code(), Some(46035), "{e}");
    assert!(e.to_string().contains("should not be changed"), "{e}");
}

#[tokio::test]
async fn modes_with_a_dump_have_no_meta_position_check() {
    let (sim, c) = with_sources(Generation::V854, &["a"]).await;
    sim.control().purge_binlogs("a", Some("mysql-bin.000010"), None).unwrap();
    let t = at(task("t", "all", &["a"]), "mysql-bin.000001", 4);
    c.create_task(&t).await.unwrap();
}

#[tokio::test]
async fn relay_skips_the_meta_position_check() {
    let (sim, c) = with_sources(Generation::V854, &["a"]).await;
    sim.control().purge_binlogs("a", Some("mysql-bin.000010"), None).unwrap();
    c.enable_relay("a", None).await.unwrap();
    c.create_task(&incr("t")).await.unwrap();
}

#[tokio::test]
async fn purged_gtids_fail_the_check_of_a_gtid_source() {
    let (sim, c) = start(fast(Generation::V854)).await;
    let mut s = source("a");
    s.enable_gtid = true;
    c.create_source(&s, None).await.unwrap();
    let uuid = sim.control().snapshot()["upstreams"]["a"]["server_uuid"].as_str().unwrap().to_string();
    sim.control().purge_binlogs("a", None, Some(&format!("{uuid}:1-1000"))).unwrap();
    let mut t = incr("t");
    t.source_config.source_conf[0].binlog_gtid = Some(format!("{uuid}:1-500"));
    let e = c.create_task(&t).await.unwrap_err();
    assert_eq!(e.code(), Some(26005));
    assert!(e.to_string().contains("purged binary logs containing GTIDs"), "{e}");
    t.source_config.source_conf[0].binlog_gtid = Some(format!("{uuid}:1-1000"));
    c.create_task(&t).await.unwrap();
}

#[tokio::test]
async fn precheck_fail_host_and_ignoring_every_item() {
    let (_sim, c) = start(fast(Generation::Head)).await;
    let mut s = source("a");
    s.host = "precheck-fail.internal".into();
    c.create_source(&s, None).await.unwrap();
    let e = c.create_task(&task("t", "all", &["a"])).await.unwrap_err();
    assert_eq!(e.code(), Some(26005));
    assert!(e.to_string().contains("mysql_binlog_format"), "{e}");
    // With every item ignored DM runs no checker: the check result is empty.
    let mut t = task("t", "all", &["a"]);
    t.ignore_checking_items = Some(vec!["all".into()]);
    assert_eq!(c.create_task(&t).await.unwrap().check_result, "");
}

#[tokio::test]
async fn binlog_purge_control_over_http() {
    let (sim, c) = with_sources(Generation::Head, &["a"]).await;
    let (code, _) =
        raw_json(&sim, "PUT", "/sim/sources/a/binlog", Some(json!({"oldest_binlog": "mysql-bin.000010"}))).await;
    assert_eq!(code, 200);
    assert_eq!(sim.control().snapshot()["upstreams"]["a"]["oldest_binlog"], json!("mysql-bin.000010"));
    assert_eq!(c.create_task(&incr("t")).await.unwrap_err().code(), Some(26005));
    let (code, _) = raw_json(&sim, "PUT", "/sim/sources/a/binlog", Some(json!({"oldest_binlog": null}))).await;
    assert_eq!(code, 200);
    c.create_task(&incr("t")).await.unwrap();
    let (code, body) = raw_json(&sim, "PUT", "/sim/sources/a/binlog", Some(json!({"oldest_binlog": "nope"}))).await;
    assert_eq!(code, 400, "{body}");
}

// =========================================================================================== checkpoints (§7, §8)

#[tokio::test]
async fn syncer_position_advances_while_running_and_holds_while_stopped() {
    let (_sim, c) = with_sources(Generation::V854, &["a"]).await;
    c.create_task(&incr("t")).await.unwrap();
    run_for(&c, "t", Duration::from_millis(30)).await;
    let s1 = sync_status(&c, "t", "a").await;
    let (name, p1) = parse_pos(s1["syncer_binlog"].as_str().unwrap());
    assert_eq!(name, "mysql-bin.000001");
    assert!(p1 > 4, "{s1}");
    assert_eq!(s1["syncer_binlog_gtid"], json!(""), "a source without enable_gtid");
    // Read typed: null (what DM sends for none, checked on the raw answer in the shard test) reads as empty.
    assert_eq!(s1["blocking_ddls"], json!([]));
    assert_eq!(s1["unresolved_groups"], json!([]));
    assert!(s1["master_binlog"].as_str().unwrap().starts_with("(mysql-bin."));
    tokio::time::sleep(Duration::from_millis(30)).await;
    let (_, p2) = parse_pos(sync_status(&c, "t", "a").await["syncer_binlog"].as_str().unwrap());
    assert!(p2 > p1);
    stop(&c, "t").await;
    let (_, p3) = parse_pos(sync_status(&c, "t", "a").await["syncer_binlog"].as_str().unwrap());
    tokio::time::sleep(Duration::from_millis(40)).await;
    let (_, p4) = parse_pos(sync_status(&c, "t", "a").await["syncer_binlog"].as_str().unwrap());
    assert_eq!(p3, p4, "stopped: the checkpoint stays put");
}

#[tokio::test]
async fn restart_resumes_from_own_checkpoint_and_records_safe_mode() {
    let (sim, c) = with_sources(Generation::V854, &["a"]).await;
    c.create_task(&incr("t")).await.unwrap();
    run_for(&c, "t", Duration::from_millis(20)).await;
    stop(&c, "t").await;
    let p = sync_status(&c, "t", "a").await["syncer_binlog"].as_str().unwrap().to_string();
    let req = StartTaskRequest { safe_mode_time_duration: Some("30s".into()), ..Default::default() };
    c.start_task("t", &req).await.unwrap();
    wait_stage(&c, "t", Stage::Running).await;
    let ck = &snapshot_sub(&sim, "t", "a")["checkpoint"];
    let starts = ck["starts"].as_array().unwrap();
    assert_eq!(starts.len(), 2);
    assert_eq!(starts[0]["from"], json!("source_conf"));
    assert_eq!(starts[0]["position"], json!("(mysql-bin.000001, 4)"));
    assert_eq!(starts[0]["safe_mode"], json!({"by": "initialization", "duration": "60s"}));
    assert_eq!(starts[1]["from"], json!("checkpoint"));
    assert_eq!(starts[1]["position"], json!(p));
    assert_eq!(starts[1]["safe_mode"], json!({"by": "safe_mode_time_duration", "duration": "30s"}));
    assert_eq!(ck["last_start"], starts[1]);
}

#[tokio::test]
async fn head_keep_meta_recreate_starts_at_the_old_tasks_checkpoint() {
    let (sim, c) = with_sources(Generation::Head, &["a"]).await;
    c.create_task(&incr("t")).await.unwrap();
    run_for(&c, "t", Duration::from_millis(20)).await;
    stop(&c, "t").await;
    let old = sync_status(&c, "t", "a").await["syncer_binlog"].as_str().unwrap().to_string();
    c.delete_task("t", false, true).await.unwrap();
    assert_eq!(sim.control().snapshot()["downstream_meta"][0]["checkpoints"]["a"], json!(old));
    c.create_task(&incr("t")).await.unwrap();
    run_for(&c, "t", Duration::ZERO).await;
    let last = &snapshot_sub(&sim, "t", "a")["checkpoint"]["last_start"];
    assert_eq!((last["from"].clone(), last["position"].clone()), (json!("checkpoint"), json!(old)));
    assert_eq!(sim.control().snapshot()["downstream_meta"], json!([]), "taken by the new task");
}

#[tokio::test]
async fn delete_drops_checkpoints_so_a_recreated_task_starts_from_source_conf() {
    for (g, keep) in [(Generation::V854, true), (Generation::Head, false)] {
        let (sim, c) = with_sources(g, &["a"]).await;
        c.create_task(&incr("t")).await.unwrap();
        run_for(&c, "t", Duration::from_millis(20)).await;
        stop(&c, "t").await;
        // keep_meta is not a v8.5 parameter: sent raw, it is ignored there.
        let (code, _) = raw_json(&sim, "DELETE", &format!("/api/v1/tasks/t?keep_meta={keep}"), None).await;
        assert_eq!(code, 204);
        c.create_task(&incr("t")).await.unwrap();
        run_for(&c, "t", Duration::ZERO).await;
        let last = &snapshot_sub(&sim, "t", "a")["checkpoint"]["last_start"];
        assert_eq!(last["from"], json!("source_conf"), "{g:?}");
        assert_eq!(last["position"], json!("(mysql-bin.000001, 4)"), "{g:?}");
    }
}

#[tokio::test]
async fn replace_carrying_the_checkpoint_in_source_conf_starts_there_with_safe_mode() {
    let (sim, c) = with_sources(Generation::V854, &["a"]).await;
    c.create_task(&incr("t")).await.unwrap();
    run_for(&c, "t", Duration::from_millis(20)).await;
    stop(&c, "t").await;
    let shown = sync_status(&c, "t", "a").await["syncer_binlog"].as_str().unwrap().to_string();
    let (name, pos) = parse_pos(&shown);
    c.delete_task("t", false, false).await.unwrap();
    c.create_task(&at(incr("t"), &name, pos)).await.unwrap();
    let req = StartTaskRequest { safe_mode_time_duration: Some("2m".into()), ..Default::default() };
    c.start_task("t", &req).await.unwrap();
    wait_stage(&c, "t", Stage::Running).await;
    let last = &snapshot_sub(&sim, "t", "a")["checkpoint"]["last_start"];
    assert_eq!(last["from"], json!("source_conf"));
    assert_eq!(last["position"], json!(shown));
    assert_eq!(last["safe_mode"], json!({"by": "safe_mode_time_duration", "duration": "2m"}));
}

#[tokio::test]
async fn head_delete_with_unreachable_downstream_leaves_the_checkpoint() {
    let (sim, c) = with_sources(Generation::Head, &["a"]).await;
    c.create_task(&incr("t")).await.unwrap();
    run_for(&c, "t", Duration::from_millis(10)).await;
    stop(&c, "t").await;
    let old = sync_status(&c, "t", "a").await["syncer_binlog"].clone();
    sim.control().patch_task("t", json!({"target_config": {"host": "tidb.unreachable"}})).unwrap();
    c.delete_task("t", false, false).await.unwrap();
    let meta = &sim.control().snapshot()["downstream_meta"][0];
    assert_eq!((meta["target"].clone(), meta["checkpoints"]["a"].clone()), (json!("tidb.unreachable:4000"), old));
}

#[tokio::test]
async fn remove_meta_starts_over_from_source_conf() {
    let (sim, c) = with_sources(Generation::V854, &["a"]).await;
    c.create_task(&incr("t")).await.unwrap();
    run_for(&c, "t", Duration::from_millis(20)).await;
    stop(&c, "t").await;
    c.start_task("t", &StartTaskRequest { remove_meta: Some(true), ..Default::default() }).await.unwrap();
    wait_stage(&c, "t", Stage::Running).await;
    let last = &snapshot_sub(&sim, "t", "a")["checkpoint"]["last_start"];
    assert_eq!(
        (last["from"].clone(), last["position"].clone()),
        (json!("source_conf"), json!("(mysql-bin.000001, 4)"))
    );
}

#[tokio::test]
async fn all_mode_syncs_from_the_dump_position() {
    let (sim, c) = with_sources(Generation::Head, &["a"]).await;
    c.create_task(&task("t", "all", &["a"])).await.unwrap();
    run_for(&c, "t", Duration::ZERO).await;
    let ck = &snapshot_sub(&sim, "t", "a")["checkpoint"];
    assert_eq!(ck["last_start"]["from"], json!("dump"));
    let master = sim.control().snapshot()["upstreams"]["a"]["master_binlog"].clone();
    assert!(master.as_str().unwrap().starts_with("(mysql-bin."), "{master}");
}

#[tokio::test]
async fn a_checkpoint_purged_while_stopped_pauses_the_task_on_start() {
    let (sim, c) = with_sources(Generation::V854, &["a"]).await;
    c.create_task(&incr("t")).await.unwrap();
    run_for(&c, "t", Duration::from_millis(10)).await;
    stop(&c, "t").await;
    sim.control().purge_binlogs("a", Some("mysql-bin.000003"), None).unwrap();
    c.start_task("t", &StartTaskRequest::default()).await.unwrap();
    let mut last = vec![];
    for _ in 0..200 {
        last = c.task_status("t").await.unwrap();
        if last[0].error_msg.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(last[0].stage, Stage::Paused);
    let msg = last[0].error_msg.clone().unwrap_or_default();
    assert!(msg.contains("code=36069") && msg.contains("ERROR 1236"), "{msg}");
    // The task still wants to run: DM's expected stage stays Running.
    assert_eq!(snapshot_sub(&sim, "t", "a")["expected"], json!("Running"));
}

// =========================================================================================== shard DDL (§6, §8)

fn blocked() -> ShardDdlState {
    ShardDdlState {
        blocking_ddls: vec!["ALTER TABLE `shop`.`orders` ADD COLUMN `c` INT".into()],
        unresolved_groups: vec![ShardingGroup {
            target: "`shop`.`orders`".into(),
            ddl_list: vec!["ALTER TABLE `shop`.`orders` ADD COLUMN `c` INT".into()],
            first_location: "position: (mysql-bin.000001, 1234)".into(),
            synced: vec!["`shop_1`.`orders`".into()],
            unsynced: vec!["`shop_2`.`orders`".into()],
        }],
        unresolved_ddl_lock_id: None,
    }
}

#[tokio::test]
async fn shard_ddl_state_shows_in_sync_status() {
    let (sim, c) = with_sources(Generation::V854, &["a"]).await;
    let mut t = incr("t");
    t.shard_mode = Some("pessimistic".into());
    c.create_task(&t).await.unwrap();
    run_for(&c, "t", Duration::ZERO).await;
    sim.control().set_shard_ddl("t", "a", blocked()).unwrap();
    let st = c.task_status("t").await.unwrap();
    assert_eq!(st[0].unresolved_ddl_lock_id.as_deref(), Some("t-`shop`.`orders`"));
    let s = serde_json::to_value(st[0].sync_status.clone().unwrap()).unwrap();
    assert_eq!(s["blocking_ddls"], json!(["ALTER TABLE `shop`.`orders` ADD COLUMN `c` INT"]));
    assert_eq!(s["unresolved_groups"][0]["unsynced"], json!(["`shop_2`.`orders`"]));
    assert_eq!(s["unresolved_groups"][0]["first_location"], json!("position: (mysql-bin.000001, 1234)"));
    // Cleared over HTTP.
    let (code, _) = raw_json(&sim, "DELETE", "/sim/tasks/t/sources/a/shard_ddl", None).await;
    assert_eq!(code, 200);
    // DM sends null, not [], for no blocking DDL (docs/dm-behaviour.md R8.11).
    let (_, body) = raw_json(&sim, "GET", "/api/v1/tasks/t/status", None).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"][0]["sync_status"]["blocking_ddls"], Value::Null, "{v}");
}

#[tokio::test]
async fn pessimistic_unresolved_shard_group_refuses_update_but_not_stop_or_delete() {
    let (sim, c) = with_sources(Generation::V854, &["a"]).await;
    let mut t = incr("t");
    t.shard_mode = Some("pessimistic".into());
    c.create_task(&t).await.unwrap();
    run_for(&c, "t", Duration::ZERO).await;
    let (code, body) =
        raw_json(&sim, "PUT", "/sim/tasks/t/sources/a/shard_ddl", Some(serde_json::to_value(blocked()).unwrap())).await;
    assert_eq!(code, 200, "{body}");
    stop(&c, "t").await;
    let e = c.update_task(&t).await.unwrap_err();
    assert_eq!(e.code(), Some(46035));
    assert!(e.to_string().contains("36058") && e.to_string().contains("`shop_2`.`orders`"), "{e}");
    c.delete_task("t", false, false).await.unwrap();
}

#[tokio::test]
async fn optimistic_shard_state_does_not_refuse_update() {
    let (sim, c) = with_sources(Generation::V854, &["a"]).await;
    let mut t = incr("t");
    t.shard_mode = Some("optimistic".into());
    c.create_task(&t).await.unwrap();
    run_for(&c, "t", Duration::ZERO).await;
    sim.control().set_shard_ddl("t", "a", blocked()).unwrap();
    stop(&c, "t").await;
    c.update_task(&t).await.unwrap();
}

// =========================================================================================== legacy & dmctl (§11)

fn gateway(body: &str) -> Value {
    // grpc-gateway's JSON is indented with two spaces.
    assert!(body.starts_with("{\n  \""), "{body}");
    js(body)
}

#[tokio::test]
async fn legacy_get_cfg_returns_the_task_yaml_with_the_target_password_masked() {
    for g in [Generation::V854, Generation::Head] {
        let (sim, c) = with_sources(g, &["a", "b"]).await;
        c.create_task(&task("t", "all", &["b", "a"])).await.unwrap();
        let (code, body) = raw_json(&sim, "GET", "/apis/v1alpha1/tasks/t?type=TaskType", None).await;
        assert_eq!(code, 200);
        let v = gateway(&body);
        assert_eq!((v["result"].clone(), v["msg"].clone()), (json!(true), json!("")), "{g:?}");
        let cfg = v["cfg"].as_str().unwrap();
        let doc: Value = serde_saphyr::from_str(cfg).unwrap();
        assert_eq!(doc["name"], json!("t"));
        assert_eq!(doc["target-database"]["password"], json!("******"));
        assert!(!cfg.contains("tidbpw"), "{cfg}");
        // Instances sorted by source, each with generated section names.
        assert_eq!(doc["mysql-instances"][0]["source-id"], json!("a"));
        assert_eq!(doc["mysql-instances"][1]["source-id"], json!("b"));
        assert_eq!(doc["block-allow-list"]["balist-01"]["do-dbs"], json!(["shop"]));
        assert_eq!(doc["clean-dump-file"], json!(false), "an OpenAPI-created task");
        // The type is numeric too.
        let (_, body) = raw_json(&sim, "GET", "/apis/v1alpha1/tasks/t?type=1", None).await;
        assert_eq!(js(&body)["result"], json!(true));
    }
}

#[tokio::test]
async fn legacy_get_cfg_without_type_or_for_an_unknown_task_answers_result_false() {
    let (sim, c) = with_sources(Generation::V854, &["a"]).await;
    c.create_task(&incr("t")).await.unwrap();
    let (code, body) = raw_json(&sim, "GET", "/apis/v1alpha1/tasks/t", None).await;
    assert_eq!(code, 200);
    assert_eq!(gateway(&body), json!({"result": false, "msg": "invalid config op 'InvalidType'", "cfg": ""}));
    let (code, body) = raw_json(&sim, "GET", "/apis/v1alpha1/tasks/nope?type=TaskType", None).await;
    assert_eq!(code, 200);
    assert_eq!(js(&body), json!({"result": false, "msg": "task not found", "cfg": ""}));
    let (code, _) = raw_json(&sim, "GET", "/apis/v1alpha1/tasks/t?type=Bogus", None).await;
    assert_eq!(code, 400);
}

#[tokio::test]
async fn legacy_get_subtask_cfg_returns_each_subtask_as_toml() {
    let (sim, c) = with_sources(Generation::Head, &["a", "b"]).await;
    c.create_task(&task("t", "incremental", &["a", "b"])).await.unwrap();
    let (code, body) = raw_json(&sim, "GET", "/apis/v1alpha1/subtasks/t", None).await;
    assert_eq!(code, 200);
    let v = gateway(&body);
    assert_eq!((v["result"].clone(), v["msg"].clone()), (json!(true), json!("")));
    let cfgs: Vec<String> = v["cfgs"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect();
    assert_eq!(cfgs.len(), 2);
    let mut sources: Vec<bool> =
        ["a", "b"].iter().map(|s| cfgs.iter().any(|c| c.contains(&format!("source-id = \"{s}\"")))).collect();
    sources.dedup();
    assert_eq!(sources, [true]);
    // The server sends the subtask configs as stored: both passwords in clear text.
    assert!(cfgs[0].contains("password = \"tidbpw\"") && cfgs[0].contains("password = \"s3cret\""), "{}", cfgs[0]);
    assert!(cfgs[0].contains("[meta]\nbinlog-name = \"mysql-bin.000001\""), "{}", cfgs[0]);
    let (_, body) = raw_json(&sim, "GET", "/apis/v1alpha1/subtasks/nope", None).await;
    assert_eq!(js(&body), json!({"result": false, "msg": "task not found", "cfgs": []}));
}

const DMCTL: &str = r#"
name: legacy
task-mode: incremental
target-database: {host: tidb.internal, port: 4000, user: root, password: tidbpw}
mysql-instances:
  - source-id: a
    meta: {binlog-name: mysql-bin.000001, binlog-pos: 4}
    block-allow-list: bal
    route-rules: [r1]
    filter-rules: [only-inserts]
    expression-filters: [even]
    syncer-config-name: global
    validator-config-name: v
block-allow-list:
  bal: {do-dbs: [shop], ignore-tables: [{db-name: shop, tbl-name: tmp}]}
routes:
  r1: {schema-pattern: shop, table-pattern: "*", target-schema: dst}
filters:
  only-inserts: {schema-pattern: shop, table-pattern: "", events: [insert], action: Do}
expression-filter:
  even: {schema: shop, table: orders, insert-value-expr: "id % 2 = 0"}
syncers:
  global: {worker-count: 8, batch: 50, compact: true}
validators:
  v: {mode: full}
"#;

async fn dmctl_create(sim: &SimServer, yaml: &str, start: bool) -> (u16, Value) {
    let (code, body) = raw_json(sim, "POST", "/sim/dmctl/tasks", Some(json!({"yaml": yaml, "start": start}))).await;
    (code, js(&body))
}

#[tokio::test]
async fn dmctl_created_task_reads_back_lossy_through_the_openapi_and_fully_through_get_cfg() {
    for g in [Generation::V854, Generation::Head] {
        let (sim, c) = with_sources(g, &["a"]).await;
        let (code, body) = dmctl_create(&sim, DMCTL, false).await;
        assert_eq!((code, body["check_result"].clone()), (201, json!("pre-check is passed. ")), "{body}");
        let t = c.get_task("legacy", false).await.unwrap().unwrap();
        // The Do filter reads back as an ignore rule (tiflow #8972); ignore lists and expression filters are gone.
        let filters = t.binlog_filter_rule.clone().unwrap();
        assert_eq!(filters.len(), 1);
        assert_eq!(filters["a-filter-rule-0"].ignore_event, Some(vec!["insert".to_string()]));
        let mut keys: Vec<(String, String, Option<String>)> = t
            .table_migrate_rule
            .iter()
            .map(|r| {
                (r.source.schema.clone(), r.source.table.clone(), r.target.as_ref().and_then(|x| x.schema.clone()))
            })
            .collect();
        keys.sort();
        assert_eq!(keys, [("shop".into(), "".into(), None), ("shop".into(), "*".into(), Some("dst".into()))]);
        assert_eq!(t.source_config.incr_migrate_conf.as_ref().unwrap().repl_threads, Some(8));
        // The legacy endpoint shows everything.
        let (_, body) = raw_json(&sim, "GET", "/apis/v1alpha1/tasks/legacy?type=TaskType", None).await;
        let doc: Value = serde_saphyr::from_str(js(&body)["cfg"].as_str().unwrap()).unwrap();
        assert_eq!(doc["filters"]["filter-01"]["action"], json!("Do"));
        assert_eq!(
            doc["block-allow-list"]["balist-01"]["ignore-tables"],
            json!([{"db-name": "shop", "tbl-name": "tmp"}])
        );
        assert_eq!(doc["expression-filter"]["expr-filter-01"]["insert-value-expr"], json!("id % 2 = 0"));
        assert_eq!(doc["validators"]["validator-01"]["mode"], json!("full"));
        assert_eq!(doc["syncers"]["sync-01"]["compact"], json!(true));
        assert_eq!(doc["clean-dump-file"], json!(true));
        assert_eq!(doc["target-database"]["password"], json!("******"));
    }
}

#[tokio::test]
async fn openapi_put_of_a_dmctl_created_task_is_refused_and_a_replace_loses_its_extras() {
    let (sim, c) = with_sources(Generation::V854, &["a"]).await;
    let (code, body) = dmctl_create(&sim, DMCTL, true).await;
    assert_eq!(code, 201, "{body}");
    wait_stage(&c, "legacy", Stage::Running).await;
    stop(&c, "legacy").await;
    let read = c.get_task("legacy", false).await.unwrap().unwrap();
    let e = c.update_task(&read).await.unwrap_err();
    assert_eq!(e.code(), Some(46035), "{e}");
    assert!(e.to_string().contains("should not be changed"), "{e}");
    // Replacing it with what the OpenAPI shows drops the extras and turns the Do filter into an ignore filter.
    c.delete_task("legacy", false, false).await.unwrap();
    c.create_task(&read).await.unwrap();
    let (_, body) = raw_json(&sim, "GET", "/apis/v1alpha1/tasks/legacy?type=TaskType", None).await;
    let doc: Value = serde_saphyr::from_str(js(&body)["cfg"].as_str().unwrap()).unwrap();
    assert_eq!(doc["filters"]["filter-01"]["action"], json!("Ignore"));
    assert_eq!(doc["expression-filter"], json!({}));
    assert_eq!(doc["validators"]["validator-01"]["mode"], json!("none"));
    assert_eq!(doc["syncers"]["sync-01"]["compact"], json!(false));
    assert_eq!(doc["block-allow-list"]["balist-01"]["ignore-tables"], json!([]));
}

#[tokio::test]
async fn dmctl_creation_applies_dms_checks() {
    let (sim, c) = with_sources(Generation::Head, &["a"]).await;
    let ctl = sim.control();
    let e = ctl.create_dmctl_task(&DMCTL.replace("source-id: a", "source-id: zz"), false).unwrap_err();
    assert_eq!(e.code, 20031);
    let e = ctl.create_dmctl_task(&DMCTL.replace("route-rules: [r1]", "route-rules: [nope]"), false).unwrap_err();
    assert_eq!(e.code, 20023);
    let cm = DMCTL.replace("validators:", "column-mappings:\n  cm: {schema-pattern: shop}\nvalidators:");
    assert_eq!(ctl.create_dmctl_task(&cm, false).unwrap_err().code, 20064);
    ctl.purge_binlogs("a", Some("mysql-bin.000002"), None).unwrap();
    assert_eq!(ctl.create_dmctl_task(DMCTL, false).unwrap_err().code, 26005);
    ctl.purge_binlogs("a", None, None).unwrap();
    assert_eq!(ctl.create_dmctl_task(DMCTL, false).unwrap(), "pre-check is passed. ");
    assert_eq!(ctl.create_dmctl_task(DMCTL, false).unwrap_err().code, 46014);
    // Created without starting: stopped, like an OpenAPI create.
    assert_eq!(c.task_status("legacy").await.unwrap()[0].stage, Stage::Stopped);
    // Over HTTP, errors have DM's handler shape.
    let (code, body) = dmctl_create(&sim, DMCTL, false).await;
    assert_eq!((code, body["error_code"].clone()), (400, json!(46014)), "{body}");
}

#[tokio::test]
async fn dmctl_created_task_picks_up_kept_checkpoints_too() {
    let (sim, c) = with_sources(Generation::Head, &["a"]).await;
    c.create_task(&incr("legacy")).await.unwrap();
    run_for(&c, "legacy", Duration::from_millis(10)).await;
    stop(&c, "legacy").await;
    let old = sync_status(&c, "legacy", "a").await["syncer_binlog"].clone();
    c.delete_task("legacy", false, true).await.unwrap();
    sim.control().create_dmctl_task(DMCTL, true).unwrap();
    wait_stage(&c, "legacy", Stage::Running).await;
    let last = &snapshot_sub(&sim, "legacy", "a")["checkpoint"]["last_start"];
    assert_eq!((last["from"].clone(), last["position"].clone()), (json!("checkpoint"), old));
}
