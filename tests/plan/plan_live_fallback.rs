//! Live fetch when DM's task list with status fails (one failing worker fails the whole list, docs/dm-behaviour.md §8): the
//! tasks are read without status, status is read per declared task, and what still fails is a warning; the
//! planner then plans no stage action for unknown status. Uses a tiny scripted HTTP server on 127.0.0.1.

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use dm_apply::dm::{ClientOptions, DmClient};
use dm_apply::live::{self, FetchOptions};
use dm_apply::plan::testing::desired_from_yaml;
use dm_apply::plan::{Address, PlanOptions, make_plan};

fn task(name: &str) -> Value {
    json!({
        "name": name, "task_mode": "incremental", "meta_schema": "dm_meta", "enhance_online_schema_change": true,
        "on_duplicate": "replace", "strict_optimistic_shard_mode": false,
        "target_config": {"host": "tidb", "port": 4000, "user": "root", "password": "tpw"},
        "table_migrate_rule": [],
        "source_config": {
            "full_migrate_conf": {"export_threads": 4, "import_threads": 16, "data_dir": "./dumped_data", "import_mode": "logical"},
            "incr_migrate_conf": {"repl_threads": 16, "repl_batch": 100, "safe_mode": false},
            "source_conf": [{"source_name": "s1", "binlog_name": "mysql-bin.000001", "binlog_pos": 4, "binlog_gtid": ""}]
        }
    })
}

fn dm_err(code: i64, msg: &str) -> (StatusCode, Json<Value>) {
    (StatusCode::BAD_REQUEST, Json(json!({"error_msg": msg, "error_code": code})))
}

async fn serve() -> String {
    let app = Router::new()
        .route("/status", get(|| async { "Release Version: v8.5.3\n" }))
        .route("/api/v1/cluster/info", get(|| async { Json(json!({"cluster_id": 42})) }))
        .route(
            "/api/v1/sources",
            get(|| async {
                Json(json!({"total": 1, "data": [{"source_name": "s1", "host": "h1", "port": 3306, "user": "u",
                    "password": "******", "enable": true, "enable_gtid": false, "flavor": "mysql",
                    "purge": {"interval": 3600, "expires": 0, "remain_space": 15},
                    "relay_config": {"enable_relay": false, "relay_dir": "relay-dir"}}]}))
            }),
        )
        .route(
            "/api/v1/tasks",
            get(|Query(q): Query<std::collections::HashMap<String, String>>| async move {
                if q.get("with_status").is_some_and(|v| v == "true") {
                    Err(dm_err(49001, "worker's query-status response is nil"))
                } else {
                    Ok(Json(json!({"total": 3, "data": [task("t1"), task("t2"), task("undeclared")]})))
                }
            }),
        )
        .route(
            "/api/v1/tasks/{name}/status",
            get(|Path(name): Path<String>| async move {
                if name == "t1" {
                    Ok(Json(json!({"total": 1, "data": [{"name": "t1", "source_name": "s1", "worker_name": "w1",
                        "stage": "Paused", "unit": "Sync", "error_msg": "boom"}]})))
                } else {
                    Err(dm_err(38008, "worker unreachable"))
                }
            }),
        )
        .route("/api/v1/tasks/templates/{name}", get(|| async { dm_err(20051, "template not exist") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn status_falls_back_per_task_and_unknown_is_a_warning() {
    let url = serve().await;
    let client = DmClient::new(&ClientOptions::new(url)).unwrap();
    let desired = desired_from_yaml(
        "dm.yaml",
        r#"
sources:
  - {source_name: s1, host: h1, port: 3306, user: u, password: pw, lifecycle: {ignore_changes: [password]}}
tasks:
  - name: t1
    task_mode: incremental
    target_config: {host: tidb, port: 4000, user: root, password: tpw}
    source_config:
      source_conf: [{source_name: s1, binlog_name: mysql-bin.000001, binlog_pos: 4}]
  - name: t2
    task_mode: incremental
    stage: stopped
    target_config: {host: tidb, port: 4000, user: root, password: tpw}
    source_config:
      source_conf: [{source_name: s1, binlog_name: mysql-bin.000001, binlog_pos: 4}]
"#,
    )
    .unwrap();
    let opts = FetchOptions { status_for: Some(desired.tasks.keys().cloned().collect()) };
    let l = live::fetch_with(&client, &opts).await.unwrap();
    assert_eq!(l.cluster_id, Some(42));
    assert!(l.tasks["t1"].status.is_some());
    assert!(l.tasks["t2"].status.is_none());
    assert!(l.tasks["undeclared"].status.is_none(), "status is not read for undeclared tasks");
    assert!(l.warnings.iter().any(|w| w.contains("one by one")), "{:?}", l.warnings);
    assert!(l.warnings.iter().any(|w| w.contains("t2") && w.contains("unavailable")), "{:?}", l.warnings);
    assert_eq!(l.state, dm_apply::state::StateView::Absent);

    let p = make_plan(&desired, &l, &PlanOptions::default()).unwrap();
    // t1 paused with an error → start; t2 unavailable → nothing planned, but the warning is in the plan.
    assert_eq!(p.change(&Address::task("t1")).unwrap().actions(), ["start"]);
    assert!(p.change(&Address::task("t2")).is_none_or(|c| c.is_noop()));
    assert!(p.warnings.iter().any(|w| w.contains("t2")));
    let text = dm_apply::render::text::render(&p, false);
    assert!(text.contains("Warning: status of task t2 is unavailable"), "{text}");
    assert_eq!(p.unmanaged[0].address, Address::task("undeclared"));
}

/// `plan` and `drift` send their reads while the configuration loads (`live::Prefetch`): the live state is the same
/// as reading after loading, the per-task fallback included, although the declared tasks it reads status for are
/// known only after the reads went out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_sent_before_the_configuration_loads_make_the_same_live_state() {
    let url = serve().await;
    let client = DmClient::new(&ClientOptions::new(url)).unwrap();
    let prefetch = live::Prefetch::start(&client);
    let opts = FetchOptions { status_for: Some(["t1".to_string(), "t2".to_string()].into()) };
    let early = prefetch.live(&client, &opts).await.unwrap();
    let late = live::fetch_with(&client, &opts).await.unwrap();
    assert!(early.tasks["t1"].status.is_some());
    assert!(early.tasks["t2"].status.is_none());
    assert!(early.tasks["undeclared"].status.is_none(), "status is not read for undeclared tasks");
    assert_eq!(early.tasks.keys().collect::<Vec<_>>(), late.tasks.keys().collect::<Vec<_>>());
    assert_eq!(early.warnings, late.warnings);
    assert_eq!(early.cluster_id, late.cluster_id);
    assert_eq!(early.state, late.state);
}
