//! One test per rule of `docs/dm-behaviour.md` the simulator implements, named after the rule, driven through
//! the real `DmClient` (or raw HTTP where the typed client cannot send the request) against an in-process
//! simulator over HTTP on 127.0.0.1.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::simh::*;
use dm_apply::dm::DmClient;
use dm_apply::dm::types::*;
use dm_apply::secret::Secret;
use dm_apply::sim::{FaultKind, Generation, SimOptions, SimServer};
use serde_json::{Value, json};

/// A task that has run into the Sync unit and was stopped: the only state PUT accepts.
async fn synced_and_stopped(c: &DmClient, t: &Task) {
    c.create_task(t).await.unwrap();
    c.start_task(&t.name, &StartTaskRequest::default()).await.unwrap();
    wait_stage(c, &t.name, Stage::Running).await;
    wait_unit(c, &t.name, Unit::Sync).await;
    c.stop_task(&t.name, &StopTaskRequest::default()).await.unwrap();
    wait_stage(c, &t.name, Stage::Paused).await;
}

// =========================================================================================== §2 transport

#[tokio::test]
async fn status_endpoint_reports_release_version() {
    let (sim, _c) = start(fast(Generation::V853)).await;
    let (code, text) = raw(&sim, "GET", "/status", None, None).await;
    assert_eq!(code, 200);
    assert!(text.starts_with("Release Version: v8.5.3\n"), "{text}");
}

#[tokio::test]
async fn unknown_route_is_400_no_matching_operation() {
    let (sim, _c) = start(fast(Generation::Head)).await;
    let (code, body) = raw(&sim, "GET", "/api/v1/nothing/here", None, None).await;
    assert_eq!(code, 400);
    assert_eq!(js(&body), json!({"error": "no matching operation was found"}));
    let (code, _) = raw(&sim, "PATCH", "/api/v1/sources", None, None).await;
    assert_eq!(code, 400);
}

#[tokio::test]
async fn flat_create_source_body_fails_validation() {
    let (sim, _c) = start(fast(Generation::Head)).await;
    let flat = r#"{"source_name":"a","host":"h","port":3306,"user":"u","enable":true,"enable_gtid":false}"#;
    let (code, body) = raw(&sim, "POST", "/api/v1/sources", Some("application/json"), Some(flat)).await;
    assert_eq!(code, 400);
    let v = js(&body);
    assert!(v["error"].as_str().unwrap().contains("property \"source\" is missing"), "{body}");
    assert!(v.get("error_code").is_none());
}

#[tokio::test]
async fn missing_required_field_fails_validation() {
    let (sim, _c) = start(fast(Generation::Head)).await;
    let b = r#"{"source":{"source_name":"a","port":3306,"user":"u","enable":true,"enable_gtid":false}}"#;
    let (code, body) = raw(&sim, "POST", "/api/v1/sources", Some("application/json"), Some(b)).await;
    assert_eq!(code, 400);
    assert!(js(&body)["error"].as_str().unwrap().contains("property \"host\" is missing"), "{body}");
}

#[tokio::test]
async fn body_without_content_type_fails_validation() {
    let (sim, _c) = start(fast(Generation::Head)).await;
    let (code, body) = raw(&sim, "POST", "/api/v1/tasks/t/start", None, Some("{}")).await;
    assert_eq!(code, 400);
    assert!(js(&body)["error"].as_str().unwrap().contains("header Content-Type has unexpected value \"\""), "{body}");
}

#[tokio::test]
async fn json_content_type_with_empty_body_is_eof() {
    let (sim, _c) = start(fast(Generation::Head)).await;
    let (code, body) = raw(&sim, "POST", "/api/v1/tasks/t/start", Some("application/json"), None).await;
    assert_eq!(code, 400);
    assert_eq!(js(&body), json!({"error_msg": "EOF", "error_code": 0}));
}

#[tokio::test]
async fn no_body_and_no_content_type_or_empty_object_accepted() {
    let (sim, _c) = start(fast(Generation::Head)).await;
    // Unknown task: start is a 200 no-op either way.
    assert_eq!(raw(&sim, "POST", "/api/v1/tasks/t/start", None, None).await.0, 200);
    assert_eq!(raw(&sim, "POST", "/api/v1/tasks/t/start", Some("application/json"), Some("{}")).await.0, 200);
}

#[tokio::test]
async fn required_request_body_missing_fails_validation() {
    let (sim, c) = start(fast(Generation::Head)).await;
    c.create_source(&source("mysql-01"), None).await.unwrap();
    let (code, body) = raw(&sim, "PUT", "/api/v1/sources/mysql-01", Some("application/json"), None).await;
    assert_eq!(code, 400);
    assert!(js(&body)["error"].as_str().unwrap().contains("value is required but missing"), "{body}");
}

#[tokio::test]
async fn unknown_json_properties_are_ignored_but_session_is_closed() {
    let (sim, c) = with_sources(Generation::Head, &["mysql-01"]).await;
    let mut t = serde_json::to_value(task("t1", "all", &["mysql-01"])).unwrap();
    t["case_sensitive"] = json!(true);
    let body = json!({"task": t}).to_string();
    assert_eq!(raw(&sim, "POST", "/api/v1/tasks", Some("application/json"), Some(&body)).await.0, 201);
    let mut t2 = t.clone();
    t2["name"] = json!("t2");
    t2["target_config"]["session"] = json!({"sql_mode": ""});
    let body = json!({"task": t2}).to_string();
    let (code, text) = raw(&sim, "POST", "/api/v1/tasks", Some("application/json"), Some(&body)).await;
    assert_eq!(code, 400);
    assert!(text.contains("unsupported"), "{text}");
    assert!(c.get_task("t2", false).await.unwrap().is_none());
}

#[tokio::test]
async fn invalid_boolean_query_parameter_fails_validation() {
    let (sim, _c) = start(fast(Generation::Head)).await;
    let (code, body) = raw(&sim, "GET", "/api/v1/sources?with_status=yes", None, None).await;
    assert_eq!(code, 400);
    assert!(js(&body)["error"].as_str().unwrap().contains("invalid boolean"), "{body}");
    let (code, _) = raw(&sim, "GET", "/api/v1/tasks?stage=running", None, None).await;
    assert_eq!(code, 400, "stage is a capitalised enum");
}

#[tokio::test]
async fn handler_errors_are_400_with_terror_message_and_integer_code() {
    let (sim, _c) = start(fast(Generation::Head)).await;
    let (code, body) = raw(&sim, "GET", "/api/v1/tasks/ghost", None, None).await;
    assert_eq!(code, 400);
    let v = js(&body);
    assert_eq!(v["error_code"], json!(46018));
    let msg = v["error_msg"].as_str().unwrap();
    assert!(
        msg.starts_with(
            "[code=46018:class=scheduler:scope=internal:level=medium], Message: task with name ghost not exist"
        ),
        "{msg}"
    );
}

#[tokio::test]
async fn success_bodies_are_indented_json() {
    let (sim, _c) = start(fast(Generation::Head)).await;
    let (_, body) = raw(&sim, "GET", "/api/v1/cluster/workers", None, None).await;
    assert!(body.contains("\n    \"total\": 3"), "{body}");
}

#[tokio::test]
async fn workers_list_is_sorted_by_name() {
    let (_sim, c) = start(SimOptions { workers: 12, ..fast(Generation::Head) }).await;
    let names: Vec<String> = c.list_workers().await.unwrap().into_iter().map(|w| w.name).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}

#[tokio::test]
async fn head_injects_enable_false_when_omitted() {
    let (sim, c) = start(fast(Generation::Head)).await;
    let b = r#"{"source":{"source_name":"mysql-01","host":"h","port":3306,"user":"u","password":"p"}}"#;
    let (code, body) = raw(&sim, "POST", "/api/v1/sources", Some("application/json"), Some(b)).await;
    assert_eq!(code, 201, "{body}");
    let s = c.get_source("mysql-01", false).await.unwrap().unwrap();
    assert!(!s.enable && !s.enable_gtid, "omitting enable creates a DISABLED source on Head");
}

#[tokio::test]
async fn head_source_put_without_enable_disables_it() {
    let (sim, c) = with_sources(Generation::Head, &["mysql-01"]).await;
    let b = r#"{"source":{"source_name":"mysql-01","host":"h","port":3306,"user":"u"}}"#;
    let (code, body) = raw(&sim, "PUT", "/api/v1/sources/mysql-01", Some("application/json"), Some(b)).await;
    assert_eq!(code, 200, "{body}");
    assert!(!c.get_source("mysql-01", false).await.unwrap().unwrap().enable);
}

#[tokio::test]
async fn v85_requires_enable_property() {
    let (sim, c) = start(fast(Generation::V853)).await;
    let b =
        r#"{"source":{"source_name":"mysql-01","host":"h","port":3306,"user":"u","password":"p","enable_gtid":false}}"#;
    let (code, body) = raw(&sim, "POST", "/api/v1/sources", Some("application/json"), Some(b)).await;
    assert_eq!(code, 400);
    assert!(js(&body)["error"].as_str().unwrap().contains("property \"enable\" is missing"), "{body}");
    assert!(c.get_source("mysql-01", false).await.unwrap().is_none());
}

#[tokio::test]
async fn head_relay_enable_with_json_body_injects_relay_dir() {
    let (sim, c) = with_sources(Generation::Head, &["mysql-01"]).await;
    c.create_task(&task("t", "all", &["mysql-01"])).await.unwrap();
    c.start_task("t", &StartTaskRequest::default()).await.unwrap();
    // `{}` gets relay_dir "./relay_log" injected, which differs from the stored "relay-dir": a config rewrite,
    // refused while a task runs.
    let (code, body) =
        raw(&sim, "POST", "/api/v1/sources/mysql-01/relay/enable", Some("application/json"), Some("{}")).await;
    assert_eq!(code, 400);
    assert_eq!(js(&body)["error_code"], json!(46025));
    // No body: no injection, relay starts.
    c.enable_relay("mysql-01", None).await.unwrap();
    assert_eq!(c.list_sources(false, Some(true)).await.unwrap().len(), 1);
}

#[tokio::test]
async fn v85_relay_enable_with_json_body_has_no_injection() {
    let (sim, c) = with_sources(Generation::V853, &["mysql-01"]).await;
    let (code, _) =
        raw(&sim, "POST", "/api/v1/sources/mysql-01/relay/enable", Some("application/json"), Some("{}")).await;
    assert_eq!(code, 200);
    let s = c.get_source("mysql-01", false).await.unwrap().unwrap();
    assert_eq!(s.relay_config.unwrap().relay_dir.as_deref(), Some("relay-dir"));
}

#[tokio::test]
async fn head_relay_enable_injection_rewrites_relay_dir_when_idle() {
    let (sim, c) = with_sources(Generation::Head, &["mysql-01"]).await;
    let (code, _) =
        raw(&sim, "POST", "/api/v1/sources/mysql-01/relay/enable", Some("application/json"), Some("{}")).await;
    assert_eq!(code, 200);
    let s = c.get_source("mysql-01", false).await.unwrap().unwrap();
    assert_eq!(s.relay_config.unwrap().relay_dir.as_deref(), Some("./relay_log"));
}

// =========================================================================================== §3 sources

#[tokio::test]
async fn source_create_returns_201_echo_with_plain_password() {
    let (sim, _c) = start(fast(Generation::Head)).await;
    let b = json!({"source": {"source_name": "mysql-01", "host": "h", "port": 3306, "user": "u", "password": "pw",
        "enable": true, "enable_gtid": false}})
    .to_string();
    let (code, body) = raw(&sim, "POST", "/api/v1/sources", Some("application/json"), Some(&b)).await;
    assert_eq!(code, 201);
    let v = js(&body);
    assert_eq!(v["password"], json!("pw"));
    assert!(v.get("flavor").is_none() && v.get("status_list").is_none(), "an echo, not normalized: {body}");
}

#[tokio::test]
async fn source_create_echo_password_null_when_none_sent() {
    let (sim, _c) = start(fast(Generation::Head)).await;
    let b =
        r#"{"source":{"source_name":"mysql-01","host":"h","port":3306,"user":"u","enable":true,"enable_gtid":false}}"#;
    let (code, body) = raw(&sim, "POST", "/api/v1/sources", Some("application/json"), Some(b)).await;
    assert_eq!(code, 201);
    assert_eq!(js(&body)["password"], Value::Null);
}

#[tokio::test]
async fn source_get_masks_password() {
    let (_sim, c) = with_sources(Generation::Head, &["mysql-01"]).await;
    let s = c.get_source("mysql-01", false).await.unwrap().unwrap();
    assert_eq!(s.password.as_ref().map(Secret::expose), Some(MASKED_PASSWORD));
    let l = c.list_sources(true, None).await.unwrap();
    assert_eq!(l[0].password.as_ref().map(Secret::expose), Some(MASKED_PASSWORD));
}

#[tokio::test]
async fn source_get_unknown_is_404_with_empty_body() {
    let (sim, _c) = start(fast(Generation::Head)).await;
    let (code, body) = raw(&sim, "GET", "/api/v1/sources/ghost", None, None).await;
    assert_eq!(code, 404);
    assert!(body.is_empty());
}

#[tokio::test]
async fn source_get_hides_security_contents() {
    let (_sim, c) = start(fast(Generation::Head)).await;
    let mut s = source("mysql-01");
    s.security = Some(Security {
        ssl_ca_content: "CA".into(),
        ssl_cert_content: "CERT".into(),
        ssl_key_content: Secret::new("KEY"),
        cert_allowed_cn: Some(vec!["dm".into()]),
    });
    c.create_source(&s, None).await.unwrap();
    let got = c.get_source("mysql-01", false).await.unwrap().unwrap().security.unwrap();
    assert_eq!(
        (got.ssl_ca_content.as_str(), got.ssl_cert_content.as_str(), got.ssl_key_content.expose()),
        ("", "", "")
    );
    assert_eq!(got.cert_allowed_cn, Some(vec!["dm".to_string()]));
    c.create_source(&source("mysql-02"), None).await.unwrap();
    assert!(c.get_source("mysql-02", false).await.unwrap().unwrap().security.is_none());
}

#[tokio::test]
async fn source_get_fills_flavor_purge_and_relay_config() {
    let (_sim, c) = start(fast(Generation::Head)).await;
    let mut m = source("maria");
    m.host = "mariadb-1.internal".into();
    c.create_source(&m, None).await.unwrap();
    let s = c.get_source("maria", false).await.unwrap().unwrap();
    assert_eq!(s.flavor.as_deref(), Some("mariadb"));
    assert_eq!(s.purge, Some(Purge { interval: Some(3600), expires: Some(0), remain_space: Some(15) }));
    let r = s.relay_config.unwrap();
    assert_eq!((r.enable_relay, r.relay_dir.as_deref()), (Some(false), Some("relay-dir")));
}

#[tokio::test]
async fn source_server_id_is_random_and_renewed_on_update() {
    let (sim, c) = with_sources(Generation::Head, &["mysql-01"]).await;
    let id = |sim: &SimServer| sim.control().snapshot()["sources"]["mysql-01"]["server_id"].as_u64().unwrap();
    let before = id(&sim);
    let mut s = source("mysql-01");
    s.password = None;
    c.update_source(&s).await.unwrap();
    assert_ne!(before, id(&sim));
}

#[tokio::test]
async fn source_update_without_password_keeps_old_one() {
    let (sim, c) = with_sources(Generation::Head, &["mysql-01"]).await;
    let mut s = source("mysql-01");
    s.password = None;
    s.port = 3307;
    let echo = c.update_source(&s).await.unwrap();
    assert!(echo.password.is_none(), "PUT echoes the request");
    let snap = sim.control().snapshot();
    assert_eq!(snap["sources"]["mysql-01"]["config"]["password"], json!("s3cret"));
    assert_eq!(snap["sources"]["mysql-01"]["config"]["port"], json!(3307));
}

#[tokio::test]
async fn source_update_with_masked_password_stores_literal() {
    let (sim, c) = with_sources(Generation::Head, &["mysql-01"]).await;
    let got = c.get_source("mysql-01", false).await.unwrap().unwrap();
    let mut back = got.clone();
    back.security = None;
    c.update_source(&back).await.unwrap();
    assert_eq!(sim.control().snapshot()["sources"]["mysql-01"]["config"]["password"], json!("******"));
}

#[tokio::test]
async fn source_create_existing_46007() {
    let (_sim, c) = with_sources(Generation::Head, &["mysql-01"]).await;
    assert_eq!(c.create_source(&source("mysql-01"), None).await.unwrap_err().code(), Some(46007));
}

#[tokio::test]
async fn source_create_unreachable_upstream_10001() {
    let (_sim, c) = start(fast(Generation::Head)).await;
    let mut s = source("mysql-01");
    s.host = "db.unreachable".into();
    assert_eq!(c.create_source(&s, None).await.unwrap_err().code(), Some(10001));
    assert!(c.get_source("mysql-01", false).await.unwrap().is_none());
}

#[tokio::test]
async fn source_create_gtid_mode_off_26007() {
    let (_sim, c) = start(fast(Generation::Head)).await;
    let mut s = source("mysql-01");
    s.host = "db-no-gtid.internal".into();
    s.enable_gtid = true;
    assert_eq!(c.create_source(&s, None).await.unwrap_err().code(), Some(26007));
}

#[tokio::test]
async fn source_name_longer_than_32_refused() {
    let (_sim, c) = start(fast(Generation::Head)).await;
    let long = "s".repeat(33);
    assert_eq!(c.create_source(&source(&long), None).await.unwrap_err().code(), Some(40006));
}

#[tokio::test]
async fn source_create_with_worker_name_must_exist_and_be_free() {
    let (_sim, c) = start(fast(Generation::Head)).await;
    assert_eq!(c.create_source(&source("a"), Some("ghost")).await.unwrap_err().code(), Some(46004));
    c.create_source(&source("a"), Some("worker2")).await.unwrap();
    assert_eq!(c.create_source(&source("b"), Some("worker2")).await.unwrap_err().code(), Some(46033));
}

#[tokio::test]
async fn source_create_with_enable_relay_fails_after_persisting() {
    let (_sim, c) = start(fast(Generation::Head)).await;
    let mut s = source("mysql-01");
    s.relay_config = Some(RelayConfig { enable_relay: Some(true), ..Default::default() });
    assert_eq!(c.create_source(&s, None).await.unwrap_err().code(), Some(46030));
    assert!(c.get_source("mysql-01", false).await.unwrap().is_some(), "persisted before the relay step failed");
}

#[tokio::test]
async fn source_update_refused_with_running_task_46025() {
    let (_sim, c) = with_sources(Generation::Head, &["mysql-01"]).await;
    c.create_task(&task("t", "incremental", &["mysql-01"])).await.unwrap();
    c.start_task("t", &StartTaskRequest::default()).await.unwrap();
    let mut s = source("mysql-01");
    s.password = None;
    assert_eq!(c.update_source(&s).await.unwrap_err().code(), Some(46025));
    c.stop_task("t", &StopTaskRequest::default()).await.unwrap();
    c.update_source(&s).await.unwrap();
}

#[tokio::test]
async fn source_update_refused_with_relay_on_46025() {
    let (_sim, c) = with_sources(Generation::Head, &["mysql-01"]).await;
    c.enable_relay("mysql-01", None).await.unwrap();
    let mut s = source("mysql-01");
    s.password = None;
    assert_eq!(c.update_source(&s).await.unwrap_err().code(), Some(46025));
}

#[tokio::test]
async fn source_update_enable_change_sets_task_stages() {
    let (_sim, c) = with_sources(Generation::Head, &["mysql-01"]).await;
    c.create_task(&task("t", "incremental", &["mysql-01"])).await.unwrap();
    let mut s = source("mysql-01");
    s.password = None;
    s.enable = false;
    c.update_source(&s).await.unwrap();
    s.enable = true;
    c.update_source(&s).await.unwrap();
    wait_stage(&c, "t", Stage::Running).await;
}

#[tokio::test]
async fn source_delete_with_tasks_refused_46010() {
    let (_sim, c) = with_sources(Generation::Head, &["mysql-01"]).await;
    c.create_task(&task("t", "all", &["mysql-01"])).await.unwrap();
    assert_eq!(c.delete_source("mysql-01", false).await.unwrap_err().code(), Some(46010));
}

#[tokio::test]
async fn source_delete_force_removes_subtasks_from_tasks() {
    let (_sim, c) = with_sources(Generation::Head, &["a", "b"]).await;
    c.create_task(&task("multi", "incremental", &["a", "b"])).await.unwrap();
    c.create_task(&task("only-a", "incremental", &["a"])).await.unwrap();
    c.start_task("multi", &StartTaskRequest::default()).await.unwrap();
    c.delete_source("a", true).await.unwrap();
    assert!(c.get_task("only-a", false).await.unwrap().is_none());
    let st = wait_stage(&c, "multi", Stage::Running).await;
    assert_eq!(st.iter().map(|s| s.source_name.as_str()).collect::<Vec<_>>(), ["b"]);
}

#[tokio::test]
async fn source_delete_with_relay_refused_46023() {
    let (_sim, c) = with_sources(Generation::Head, &["mysql-01"]).await;
    c.enable_relay("mysql-01", None).await.unwrap();
    assert_eq!(c.delete_source("mysql-01", true).await.unwrap_err().code(), Some(46023));
}

#[tokio::test]
async fn source_operations_on_unknown_source_46008() {
    let (_sim, c) = start(fast(Generation::Head)).await;
    assert_eq!(c.delete_source("ghost", false).await.unwrap_err().code(), Some(46008));
    assert_eq!(c.source_status("ghost").await.unwrap_err().code(), Some(46008));
    assert_eq!(c.enable_source("ghost").await.unwrap_err().code(), Some(46008));
    assert_eq!(c.disable_source("ghost").await.unwrap_err().code(), Some(46008));
    assert_eq!(c.update_source(&source("ghost")).await.unwrap_err().code(), Some(46008));
}

#[tokio::test]
async fn source_status_of_unbound_source_has_empty_worker() {
    let (_sim, c) = start(SimOptions { workers: 1, ..fast(Generation::Head) }).await;
    c.create_source(&source("a"), None).await.unwrap();
    c.create_source(&source("b"), None).await.unwrap();
    let st = c.source_status("b").await.unwrap();
    assert_eq!(st.len(), 1);
    assert_eq!((st[0].source_name.as_str(), st[0].worker_name.as_str()), ("b", ""));
}

#[tokio::test]
async fn enable_source_needs_bound_worker_40070() {
    let (_sim, c) = start(SimOptions { workers: 1, ..fast(Generation::Head) }).await;
    c.create_source(&source("a"), None).await.unwrap();
    c.create_source(&source("b"), None).await.unwrap();
    assert_eq!(c.enable_source("b").await.unwrap_err().code(), Some(40070), "even when already enabled");
}

#[tokio::test]
async fn enable_source_restarts_all_its_tasks() {
    let (_sim, c) = with_sources(Generation::Head, &["mysql-01"]).await;
    c.create_task(&task("never-started", "incremental", &["mysql-01"])).await.unwrap();
    c.create_task(&task("stopped", "incremental", &["mysql-01"])).await.unwrap();
    c.start_task("stopped", &StartTaskRequest::default()).await.unwrap();
    c.stop_task("stopped", &StopTaskRequest::default()).await.unwrap();
    wait_stage(&c, "stopped", Stage::Paused).await;
    c.disable_source("mysql-01").await.unwrap();
    c.enable_source("mysql-01").await.unwrap();
    wait_stage(&c, "never-started", Stage::Running).await;
    wait_stage(&c, "stopped", Stage::Running).await;
}

#[tokio::test]
async fn disable_source_pauses_its_tasks() {
    let (_sim, c) = with_sources(Generation::Head, &["mysql-01"]).await;
    c.create_task(&task("t", "incremental", &["mysql-01"])).await.unwrap();
    c.start_task("t", &StartTaskRequest::default()).await.unwrap();
    wait_stage(&c, "t", Stage::Running).await;
    c.disable_source("mysql-01").await.unwrap();
    wait_stage(&c, "t", Stage::Paused).await;
    // No-op when already disabled.
    c.disable_source("mysql-01").await.unwrap();
}

#[tokio::test]
async fn transfer_rules() {
    let (sim, c) = start(fast(Generation::Head)).await;
    c.create_source(&source("a"), Some("worker1")).await.unwrap();
    c.create_source(&source("b"), Some("worker2")).await.unwrap();
    assert_eq!(c.transfer_source("a", "ghost").await.unwrap_err().code(), Some(46004));
    assert_eq!(c.transfer_source("a", "worker2").await.unwrap_err().code(), Some(46006), "bound to another");
    c.transfer_source("a", "worker1").await.unwrap();
    // A running task not in Sync blocks a transfer (46019).
    sim.control().set_stage_delay(Duration::from_millis(200));
    c.create_task(&task("t", "all", &["a"])).await.unwrap();
    c.start_task("t", &StartTaskRequest::default()).await.unwrap();
    assert_eq!(c.transfer_source("a", "worker3").await.unwrap_err().code(), Some(46019));
    c.stop_task("t", &StopTaskRequest::default()).await.unwrap();
    c.transfer_source("a", "worker3").await.unwrap();
    assert_eq!(c.source_status("a").await.unwrap()[0].worker_name, "worker3");
}

#[tokio::test]
async fn relay_enable_rules() {
    let (_sim, c) = start(fast(Generation::Head)).await;
    c.create_source(&source("a"), Some("worker1")).await.unwrap();
    c.create_source(&source("b"), Some("worker2")).await.unwrap();
    let on = |w: &str| EnableRelayRequest { worker_name_list: Some(vec![w.to_string()]), ..Default::default() };
    assert_eq!(c.enable_relay("a", Some(&on("ghost"))).await.unwrap_err().code(), Some(46004));
    assert_eq!(c.enable_relay("a", Some(&on("worker2"))).await.unwrap_err().code(), Some(46021));
    c.enable_relay("a", Some(&on("worker3"))).await.unwrap();
    let workers = c.list_workers().await.unwrap();
    assert_eq!(workers[2].bound_stage, "relay");
    assert_eq!(c.enable_relay("b", Some(&on("worker3"))).await.unwrap_err().code(), Some(46020));
    let st = c.source_status("a").await.unwrap();
    assert_eq!(st.len(), 2, "one entry per relay worker plus the bound worker");
}

#[tokio::test]
async fn source_schemas_and_tables_come_from_a_deterministic_catalog() {
    let (sim, c) = with_sources(Generation::Head, &["mysql-01"]).await;
    let a = c.source_schemas("mysql-01").await.unwrap();
    let (sim2, c2) = with_sources(Generation::Head, &["mysql-01"]).await;
    assert_eq!(a, c2.source_schemas("mysql-01").await.unwrap());
    drop(sim2);
    let mut cat = std::collections::BTreeMap::new();
    cat.insert("app".to_string(), vec!["users".to_string()]);
    sim.control().set_catalog("mysql-01", cat);
    assert_eq!(c.source_schemas("mysql-01").await.unwrap(), ["app"]);
    assert_eq!(c.source_tables("mysql-01", "app").await.unwrap(), ["users"]);
}

// =========================================================================================== §5-§8 tasks

#[tokio::test]
async fn task_create_returns_201_with_check_result() {
    let (sim, _c) = with_sources(Generation::Head, &["mysql-01"]).await;
    let body = json!({"task": task("t", "all", &["mysql-01"])}).to_string();
    let (code, text) = raw(&sim, "POST", "/api/v1/tasks", Some("application/json"), Some(&body)).await;
    assert_eq!(code, 201);
    assert_eq!(js(&text)["check_result"], json!("pre-check is passed. "));
}

#[tokio::test]
async fn task_created_stopped_with_unit_by_mode() {
    let (_sim, c) = with_sources(Generation::Head, &["mysql-01"]).await;
    for (mode, unit) in [
        ("all", Unit::Dump),
        ("full", Unit::Dump),
        ("dump", Unit::Dump),
        ("load", Unit::Load),
        ("incremental", Unit::Sync),
    ] {
        let name = format!("t-{mode}");
        c.create_task(&task(&name, mode, &["mysql-01"])).await.unwrap();
        let st = c.task_status(&name).await.unwrap();
        assert_eq!((st[0].stage.clone(), st[0].unit.clone()), (Stage::Stopped, unit), "{mode}");
    }
}

#[tokio::test]
async fn task_create_with_missing_source_46008() {
    let (_sim, c) = with_sources(Generation::Head, &["mysql-01"]).await;
    assert_eq!(c.create_task(&task("t", "all", &["mysql-01", "ghost"])).await.unwrap_err().code(), Some(46008));
}

#[tokio::test]
async fn task_create_on_unbound_source_46009() {
    let (_sim, c) = start(SimOptions { workers: 1, ..fast(Generation::Head) }).await;
    c.create_source(&source("a"), None).await.unwrap();
    c.create_source(&source("b"), None).await.unwrap();
    assert_eq!(c.create_task(&task("t", "all", &["b"])).await.unwrap_err().code(), Some(46009));
}

#[tokio::test]
async fn task_create_existing_46014_and_partial_create_adds_missing_sources() {
    let (_sim, c) = with_sources(Generation::Head, &["a", "b"]).await;
    c.create_task(&task("t", "all", &["a"])).await.unwrap();
    assert_eq!(c.create_task(&task("t", "all", &["a"])).await.unwrap_err().code(), Some(46014));
    c.create_task(&task("t", "all", &["a", "b"])).await.unwrap();
    assert_eq!(c.task_status("t").await.unwrap().len(), 2);
}

#[tokio::test]
async fn task_create_unreachable_downstream_10001() {
    let (_sim, c) = with_sources(Generation::Head, &["a"]).await;
    let mut t = task("t", "all", &["a"]);
    t.target_config.host = "tidb.unreachable".into();
    assert_eq!(c.create_task(&t).await.unwrap_err().code(), Some(10001));
}

#[tokio::test]
async fn task_create_invalid_timezone_20008() {
    let (_sim, c) = with_sources(Generation::Head, &["a"]).await;
    let mut t = task("t", "all", &["a"]);
    t.timezone = Some("SYSTEM".into());
    assert_eq!(c.create_task(&t).await.unwrap_err().code(), Some(20008));
}

#[tokio::test]
async fn task_create_timezone_takes_utc_offsets_in_range() {
    for (tz, ok) in [("+04:00", true), ("-12:59", true), ("+14:00", true), ("+14:01", false), ("-13:00", false)] {
        let (_sim, c) = with_sources(Generation::Head, &["a"]).await;
        let mut t = task("t", "all", &["a"]);
        t.timezone = Some(tz.into());
        let r = c.create_task(&t).await;
        assert_eq!(r.is_ok(), ok, "{tz}: {r:?}");
        if !ok {
            assert_eq!(r.unwrap_err().code(), Some(20008), "{tz}");
        }
    }
}

#[tokio::test]
async fn task_create_unknown_filter_rule_name_49001() {
    let (_sim, c) = with_sources(Generation::Head, &["a"]).await;
    let mut t = task("t", "all", &["a"]);
    t.table_migrate_rule[0].binlog_filter_rule = Some(vec!["nope".into()]);
    let e = c.create_task(&t).await.unwrap_err();
    assert_eq!(e.code(), Some(49001));
    assert!(e.to_string().contains("filter rule name nope not found."), "{e}");
}

#[tokio::test]
async fn task_create_strict_optimistic_without_optimistic_20066() {
    let (_sim, c) = with_sources(Generation::Head, &["a"]).await;
    let mut t = task("t", "all", &["a"]);
    t.strict_optimistic_shard_mode = Some(true);
    assert_eq!(c.create_task(&t).await.unwrap_err().code(), Some(20066));
}

#[tokio::test]
async fn task_create_precheck_failure_is_reported() {
    let (_sim, c) = start(fast(Generation::Head)).await;
    let mut s = source("a");
    s.host = "precheck-fail.internal".into();
    c.create_source(&s, None).await.unwrap();
    assert_eq!(c.create_task(&task("t", "all", &["a"])).await.unwrap_err().code(), Some(26005));
    let mut t = task("t", "all", &["a"]);
    t.ignore_checking_items = Some(vec!["all".into()]);
    c.create_task(&t).await.unwrap();
}

#[tokio::test]
async fn task_operations_on_unknown_task_46018() {
    let (_sim, c) = with_sources(Generation::Head, &["a"]).await;
    let raw_get = c.list_tasks(false, None, &[]).await.unwrap();
    assert!(raw_get.is_empty());
    assert_eq!(c.task_status("ghost").await.unwrap_err().code(), Some(46018));
    assert_eq!(c.update_task(&task("ghost", "all", &["a"])).await.unwrap_err().code(), Some(46018));
    assert_eq!(c.delete_task("ghost", false, false).await.unwrap_err().code(), Some(46018));
    assert!(c.get_task("ghost", false).await.unwrap().is_none(), "GET answers 46018, mapped to absent");
}

#[tokio::test]
async fn task_start_stop_unknown_task_is_200_noop() {
    let (sim, c) = start(fast(Generation::Head)).await;
    c.start_task("ghost", &StartTaskRequest::default()).await.unwrap();
    c.stop_task("ghost", &StopTaskRequest::default()).await.unwrap();
    let log = sim.control().request_log();
    assert!(log.iter().all(|r| r.status == 200));
    // The answer to start/stop is 200 with an empty body (the docs say 204).
    let (code, body) = raw(&sim, "POST", "/api/v1/tasks/ghost/stop", None, None).await;
    assert_eq!((code, body.as_str()), (200, ""));
}

#[tokio::test]
async fn task_start_is_asynchronous() {
    let (sim, c) = start(SimOptions { stage_delay: Duration::from_secs(30), ..fast(Generation::Head) }).await;
    c.create_source(&source("a"), None).await.unwrap();
    c.create_task(&task("t", "incremental", &["a"])).await.unwrap();
    c.start_task("t", &StartTaskRequest::default()).await.unwrap();
    // 200 means only that the expected stage was written.
    assert_eq!(c.task_status("t").await.unwrap()[0].stage, Stage::Stopped);
    let snap = sim.control().snapshot();
    assert_eq!(snap["tasks"]["t"]["subtasks"]["a"]["expected"], json!("Running"));
    assert_eq!(snap["tasks"]["t"]["subtasks"]["a"]["pending"], json!("Running"));
}

#[tokio::test]
async fn task_stop_shows_paused_not_stopped() {
    let (_sim, c) = with_sources(Generation::Head, &["a"]).await;
    c.create_task(&task("t", "incremental", &["a"])).await.unwrap();
    c.start_task("t", &StartTaskRequest::default()).await.unwrap();
    wait_stage(&c, "t", Stage::Running).await;
    c.stop_task("t", &StopTaskRequest { timeout_duration: Some("15s".into()), source_name_list: None }).await.unwrap();
    wait_stage(&c, "t", Stage::Paused).await;
    assert!(c.list_tasks(false, Some("Stopped"), &[]).await.unwrap().is_empty(), "Stopped only for never-started");
    assert_eq!(c.list_tasks(false, Some("Paused"), &[]).await.unwrap().len(), 1);
}

#[tokio::test]
async fn full_task_finishes_and_all_task_reaches_sync() {
    let (_sim, c) = with_sources(Generation::Head, &["a"]).await;
    c.create_task(&task("full", "full", &["a"])).await.unwrap();
    c.create_task(&task("all", "all", &["a"])).await.unwrap();
    c.start_task("full", &StartTaskRequest::default()).await.unwrap();
    c.start_task("all", &StartTaskRequest::default()).await.unwrap();
    wait_stage(&c, "full", Stage::Finished).await;
    wait_unit(&c, "all", Unit::Sync).await;
    assert_eq!(c.task_status("all").await.unwrap()[0].stage, Stage::Running, "all never finishes");
}

#[tokio::test]
async fn finished_task_delete_needs_stop_or_force_49001() {
    let (_sim, c) = with_sources(Generation::Head, &["a"]).await;
    c.create_task(&task("full", "full", &["a"])).await.unwrap();
    c.start_task("full", &StartTaskRequest::default()).await.unwrap();
    wait_stage(&c, "full", Stage::Finished).await;
    let e = c.delete_task("full", false, false).await.unwrap_err();
    assert_eq!(e.code(), Some(49001));
    assert!(e.to_string().contains("have running subtasks"), "{e}");
    c.delete_task("full", true, false).await.unwrap();
}

#[tokio::test]
async fn task_delete_running_without_force_49001() {
    let (_sim, c) = with_sources(Generation::Head, &["a"]).await;
    c.create_task(&task("t", "incremental", &["a"])).await.unwrap();
    c.start_task("t", &StartTaskRequest::default()).await.unwrap();
    assert_eq!(c.delete_task("t", false, false).await.unwrap_err().code(), Some(49001));
    c.stop_task("t", &StopTaskRequest::default()).await.unwrap();
    c.delete_task("t", false, false).await.unwrap();
}

#[tokio::test]
async fn task_start_with_unknown_listed_source_46008() {
    let (_sim, c) = with_sources(Generation::Head, &["a", "b"]).await;
    c.create_task(&task("t", "incremental", &["a"])).await.unwrap();
    let req = StartTaskRequest { source_name_list: Some(vec!["b".into()]), ..Default::default() };
    assert_eq!(c.start_task("t", &req).await.unwrap_err().code(), Some(46008));
}

#[tokio::test]
async fn task_stop_with_unknown_listed_source_46017() {
    let (_sim, c) = with_sources(Generation::Head, &["a", "b"]).await;
    c.create_task(&task("t", "incremental", &["a"])).await.unwrap();
    let req = StopTaskRequest { source_name_list: Some(vec!["b".into()]), ..Default::default() };
    assert_eq!(c.stop_task("t", &req).await.unwrap_err().code(), Some(46017));
}

#[tokio::test]
async fn task_start_incremental_without_meta_or_start_time_20022() {
    let (_sim, c) = with_sources(Generation::Head, &["a"]).await;
    let mut t = task("t", "incremental", &["a"]);
    t.source_config.source_conf[0] = TaskSourceConf { source_name: "a".into(), ..Default::default() };
    c.create_task(&t).await.unwrap();
    assert_eq!(c.start_task("t", &StartTaskRequest::default()).await.unwrap_err().code(), Some(20022));
    let req = StartTaskRequest { start_time: Some("2026-01-02 15:04:05".into()), ..Default::default() };
    c.start_task("t", &req).await.unwrap();
    wait_stage(&c, "t", Stage::Running).await;
}

#[tokio::test]
async fn task_start_on_disabled_source_38058() {
    let (_sim, c) = with_sources(Generation::Head, &["a"]).await;
    c.create_task(&task("t", "all", &["a"])).await.unwrap();
    c.disable_source("a").await.unwrap();
    let e = c.start_task("t", &StartTaskRequest::default()).await.unwrap_err();
    assert_eq!(e.code(), Some(38058));
    assert!(e.to_string().contains("source: a is not enabled"), "{e}");
}

#[tokio::test]
async fn task_start_validates_start_time_and_safe_mode_duration() {
    let (_sim, c) = with_sources(Generation::Head, &["a"]).await;
    c.create_task(&task("t", "all", &["a"])).await.unwrap();
    let bad = StartTaskRequest { start_time: Some("yesterday".into()), ..Default::default() };
    assert!(c.start_task("t", &bad).await.is_err());
    let bad = StartTaskRequest { safe_mode_time_duration: Some("10".into()), ..Default::default() };
    assert!(c.start_task("t", &bad).await.is_err());
    let ok = StartTaskRequest {
        start_time: Some("2026-01-02T15:04:05+08:00".into()),
        safe_mode_time_duration: Some("10s".into()),
        ..Default::default()
    };
    c.start_task("t", &ok).await.unwrap();
}

#[tokio::test]
async fn task_start_remove_meta_restarts_migration() {
    let (_sim, c) = with_sources(Generation::Head, &["a"]).await;
    let t = task("t", "all", &["a"]);
    synced_and_stopped(&c, &t).await;
    c.start_task("t", &StartTaskRequest { remove_meta: Some(true), ..Default::default() }).await.unwrap();
    assert_eq!(c.task_status("t").await.unwrap()[0].unit, Unit::Dump);
}

#[tokio::test]
async fn task_update_refused_while_running_46035() {
    let (_sim, c) = with_sources(Generation::Head, &["a"]).await;
    let t = task("t", "incremental", &["a"]);
    c.create_task(&t).await.unwrap();
    c.start_task("t", &StartTaskRequest::default()).await.unwrap();
    assert_eq!(c.update_task(&t).await.unwrap_err().code(), Some(46035));
}

#[tokio::test]
async fn task_update_refused_when_not_in_sync_unit_46035() {
    let (_sim, c) = with_sources(Generation::Head, &["a"]).await;
    let t = task("t", "all", &["a"]);
    c.create_task(&t).await.unwrap();
    let e = c.update_task(&t).await.unwrap_err();
    assert_eq!(e.code(), Some(46035));
    assert!(e.to_string().contains("40081"), "{e}");
}

#[tokio::test]
async fn task_update_refused_for_non_updatable_field_46035() {
    let (_sim, c) = with_sources(Generation::Head, &["a"]).await;
    let t = task("t", "all", &["a"]);
    synced_and_stopped(&c, &t).await;
    let mut tz = t.clone();
    tz.timezone = Some("Asia/Shanghai".into());
    let mut safe = t.clone();
    safe.source_config.incr_migrate_conf = Some(IncrMigrateConf { safe_mode: Some(true), ..Default::default() });
    let mut fk = t.clone();
    fk.target_config.session = Some(TargetSession { foreign_key_checks: Some("1".into()) });
    let mut full = t.clone();
    full.source_config.full_migrate_conf.as_mut().unwrap().export_threads = Some(8);
    for (what, bad) in [("timezone", tz), ("safe_mode", safe), ("foreign_key_checks", fk), ("full_migrate_conf", full)]
    {
        let e = c.update_task(&bad).await.unwrap_err();
        assert_eq!(e.code(), Some(46035), "{what}");
        assert!(e.to_string().contains("should not be changed"), "{what}: {e}");
    }
}

#[tokio::test]
async fn task_update_accepts_rules_and_repl_settings() {
    let (_sim, c) = with_sources(Generation::Head, &["a"]).await;
    let t = task("t", "all", &["a"]);
    synced_and_stopped(&c, &t).await;
    let mut u = t.clone();
    u.source_config.incr_migrate_conf =
        Some(IncrMigrateConf { repl_threads: Some(8), repl_batch: Some(500), ..Default::default() });
    u.table_migrate_rule.push(TableMigrateRule {
        source: TableRuleSource { source_name: "a".into(), schema: "crm".into(), table: String::new() },
        ..Default::default()
    });
    c.update_task(&u).await.unwrap();
    let got = c.get_task("t", false).await.unwrap().unwrap();
    assert_eq!(got.table_migrate_rule.len(), 2);
    assert_eq!(got.source_config.incr_migrate_conf.unwrap().repl_batch, Some(500));
}

#[tokio::test]
async fn task_update_adding_source_46034() {
    let (_sim, c) = with_sources(Generation::Head, &["a", "b"]).await;
    let t = task("t", "all", &["a"]);
    synced_and_stopped(&c, &t).await;
    assert_eq!(c.update_task(&task("t", "all", &["a", "b"])).await.unwrap_err().code(), Some(46034));
}

#[tokio::test]
async fn task_update_sources_missing_from_body_are_kept() {
    let (_sim, c) = with_sources(Generation::Head, &["a", "b"]).await;
    let t = task("t", "incremental", &["a", "b"]);
    c.create_task(&t).await.unwrap();
    let mut only_a = task("t", "incremental", &["a"]);
    only_a.source_config.incr_migrate_conf = Some(IncrMigrateConf { repl_threads: Some(4), ..Default::default() });
    c.update_task(&only_a).await.unwrap();
    let got = c.get_task("t", false).await.unwrap().unwrap();
    let set: BTreeSet<String> = got.source_config.source_conf.iter().map(|s| s.source_name.clone()).collect();
    assert_eq!(set, ["a".to_string(), "b".to_string()].into());
}

#[tokio::test]
async fn task_update_uses_body_name_not_path() {
    let (sim, c) = with_sources(Generation::Head, &["a"]).await;
    let t = task("real", "incremental", &["a"]);
    c.create_task(&t).await.unwrap();
    let mut u = t.clone();
    u.source_config.incr_migrate_conf = Some(IncrMigrateConf { repl_threads: Some(3), ..Default::default() });
    let body = json!({"task": u}).to_string();
    let (code, text) = raw(&sim, "PUT", "/api/v1/tasks/whatever", Some("application/json"), Some(&body)).await;
    assert_eq!(code, 200, "{text}");
    let got = c.get_task("real", false).await.unwrap().unwrap();
    assert_eq!(got.source_config.incr_migrate_conf.unwrap().repl_threads, Some(3));
}

#[tokio::test]
async fn task_status_ignores_source_name_list() {
    let (sim, c) = with_sources(Generation::Head, &["a", "b"]).await;
    c.create_task(&task("t", "all", &["a", "b"])).await.unwrap();
    let (_, body) = raw(&sim, "GET", "/api/v1/tasks/t/status?source_name_list=a", None, None).await;
    assert_eq!(js(&body)["total"], json!(2));
}

#[tokio::test]
async fn task_status_of_unbound_subtask_has_empty_stage_and_38029() {
    let (sim, c) = start(SimOptions { workers: 1, ..fast(Generation::Head) }).await;
    c.create_source(&source("a"), None).await.unwrap();
    c.create_task(&task("t", "all", &["a"])).await.unwrap();
    sim.control().set_worker_offline("worker1", true).unwrap();
    let st = c.task_status("t").await.unwrap();
    assert_eq!(st[0].stage, Stage::Empty);
    assert!(st[0].error_msg.as_deref().unwrap_or("").contains("code=38029"));
}

#[tokio::test]
async fn task_paused_with_error_keeps_expected_running() {
    let (sim, c) = with_sources(Generation::Head, &["a"]).await;
    c.create_task(&task("t", "incremental", &["a"])).await.unwrap();
    c.start_task("t", &StartTaskRequest::default()).await.unwrap();
    wait_stage(&c, "t", Stage::Running).await;
    sim.control().pause_task_with_error("t", "a", "[code=10006:class=database], Message: boom");
    let st = c.task_status("t").await.unwrap();
    assert_eq!(st[0].stage, Stage::Paused);
    assert!(st[0].error_msg.as_deref().unwrap().contains("boom"));
    // Expected stage is still Running: update needs a stop first.
    assert_eq!(c.update_task(&task("t", "incremental", &["a"])).await.unwrap_err().code(), Some(46035));
    c.start_task("t", &StartTaskRequest::default()).await.unwrap();
    let st = wait_stage(&c, "t", Stage::Running).await;
    assert!(st[0].error_msg.is_none());
}

#[tokio::test]
async fn task_list_filters_stage_and_exact_source_set() {
    let (_sim, c) = with_sources(Generation::Head, &["a", "b"]).await;
    c.create_task(&task("ab", "incremental", &["a", "b"])).await.unwrap();
    c.create_task(&task("a", "incremental", &["a"])).await.unwrap();
    c.start_task("a", &StartTaskRequest::default()).await.unwrap();
    wait_stage(&c, "a", Stage::Running).await;
    let names = |l: Vec<Task>| l.into_iter().map(|t| t.name).collect::<Vec<_>>();
    assert_eq!(names(c.list_tasks(false, Some("Running"), &[]).await.unwrap()), ["a"]);
    assert_eq!(names(c.list_tasks(false, None, &["a".into()]).await.unwrap()), ["a"]);
    assert_eq!(names(c.list_tasks(false, None, &["b".into(), "a".into()]).await.unwrap()), ["ab"]);
}

#[tokio::test]
async fn task_delete_keep_meta_resumes_on_head_only() {
    for (g, unit) in [(Generation::Head, Unit::Sync), (Generation::V853, Unit::Dump)] {
        let (sim, c) = with_sources(g, &["a"]).await;
        let t = task("t", "all", &["a"]);
        synced_and_stopped(&c, &t).await;
        // Sent raw so V85 receives the parameter too (the client drops it there): V85 ignores it.
        let (code, _) = raw(&sim, "DELETE", "/api/v1/tasks/t?keep_meta=true", None, None).await;
        assert_eq!(code, 204);
        c.create_task(&t).await.unwrap();
        assert_eq!(c.task_status("t").await.unwrap()[0].unit, unit, "{g:?}");
    }
}

#[tokio::test]
async fn task_delete_without_keep_meta_starts_over() {
    let (_sim, c) = with_sources(Generation::Head, &["a"]).await;
    let t = task("t", "all", &["a"]);
    synced_and_stopped(&c, &t).await;
    c.delete_task("t", false, false).await.unwrap();
    c.create_task(&t).await.unwrap();
    assert_eq!(c.task_status("t").await.unwrap()[0].unit, Unit::Dump);
}

#[tokio::test]
async fn v85_delete_fails_when_downstream_unreachable_unless_forced() {
    let (sim, c) = with_sources(Generation::V853, &["a"]).await;
    c.create_task(&task("t", "all", &["a"])).await.unwrap();
    sim.control().patch_task("t", json!({"target_config": {"host": "tidb.unreachable"}})).unwrap();
    assert_eq!(c.delete_task("t", false, false).await.unwrap_err().code(), Some(10001));
    c.delete_task("t", true, false).await.unwrap();
    // Head only logs the cleanup failure.
    let (sim, c) = with_sources(Generation::Head, &["a"]).await;
    c.create_task(&task("t", "all", &["a"])).await.unwrap();
    sim.control().patch_task("t", json!({"target_config": {"host": "tidb.unreachable"}})).unwrap();
    c.delete_task("t", false, false).await.unwrap();
}

#[tokio::test]
async fn task_latch_rejects_overlapping_operations_46024() {
    let (sim, c) = with_sources(Generation::Head, &["a"]).await;
    c.create_task(&task("t", "incremental", &["a"])).await.unwrap();
    sim.control().set_latency(Duration::from_millis(400));
    let (c1, c2) = (c.clone(), c.clone());
    let a = tokio::spawn(async move { c1.stop_task("t", &StopTaskRequest::default()).await });
    let b = tokio::spawn(async move { c2.stop_task("t", &StopTaskRequest::default()).await });
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let codes: Vec<Option<i64>> = [&a, &b].iter().map(|r| r.as_ref().err().and_then(|e| e.code())).collect();
    assert!(codes.contains(&Some(46024)) && codes.contains(&None), "{a:?} {b:?}");
    let e = [a, b].into_iter().find_map(Result::err).unwrap();
    assert!(e.is_transient(), "46024 is worth a retry");
}

// =========================================================================================== §9 read-back

#[tokio::test]
async fn task_get_lists_are_shuffled_on_every_read() {
    let (_sim, c) = with_sources(Generation::Head, &["a", "b", "c"]).await;
    c.create_task(&task("t", "all", &["a", "b", "c"])).await.unwrap();
    let mut orders = BTreeSet::new();
    for _ in 0..30 {
        let t = c.get_task("t", false).await.unwrap().unwrap();
        orders.insert(t.source_config.source_conf.iter().map(|s| s.source_name.clone()).collect::<Vec<_>>());
    }
    assert!(orders.len() > 1, "source_conf order never changed: {orders:?}");
}

#[tokio::test]
async fn source_list_order_is_random() {
    let (_sim, c) = with_sources(Generation::Head, &["a", "b", "c"]).await;
    let mut orders = BTreeSet::new();
    for _ in 0..30 {
        orders
            .insert(c.list_sources(false, None).await.unwrap().into_iter().map(|s| s.source_name).collect::<Vec<_>>());
    }
    assert!(orders.len() > 1);
}

#[tokio::test]
async fn binlog_filter_rules_are_renamed_per_source() {
    let (_sim, c) = with_sources(Generation::Head, &["a"]).await;
    let mut t = task("t", "incremental", &["a"]);
    let mut filters = std::collections::BTreeMap::new();
    filters.insert(
        "no-drop".to_string(),
        BinlogFilterRule { ignore_event: Some(vec!["drop table".into()]), ignore_sql: None },
    );
    filters.insert(
        "no-trunc".to_string(),
        BinlogFilterRule { ignore_event: Some(vec!["truncate table".into()]), ignore_sql: None },
    );
    t.binlog_filter_rule = Some(filters);
    t.table_migrate_rule = vec![
        TableMigrateRule {
            source: TableRuleSource { source_name: "a".into(), schema: "shop".into(), table: "orders".into() },
            binlog_filter_rule: Some(vec!["no-drop".into()]),
            ..Default::default()
        },
        TableMigrateRule {
            source: TableRuleSource { source_name: "a".into(), schema: "crm".into(), table: String::new() },
            binlog_filter_rule: Some(vec!["no-trunc".into()]),
            ..Default::default()
        },
    ];
    c.create_task(&t).await.unwrap();
    let got = c.get_task("t", false).await.unwrap().unwrap();
    let f = got.binlog_filter_rule.unwrap();
    assert_eq!(f.keys().cloned().collect::<Vec<_>>(), ["a-filter-rule-0", "a-filter-rule-1"]);
    assert_eq!(f["a-filter-rule-0"].ignore_event, Some(vec!["drop table".to_string()]));
    for r in &got.table_migrate_rule {
        assert_eq!(
            r.binlog_filter_rule.clone().unwrap(),
            ["a-filter-rule-0", "a-filter-rule-1"],
            "every rule lists all names"
        );
    }
}

#[tokio::test]
async fn full_migrate_conf_always_present_with_defaults_and_write_only_fields_dropped() {
    let (_sim, c) = with_sources(Generation::Head, &["a"]).await;
    let mut t = task("t", "incremental", &["a"]);
    t.source_config.full_migrate_conf = Some(FullMigrateConf {
        sorting_dir: Some("/tmp/sort".into()),
        disk_quota: Some("10GB".into()),
        checksum: Some("off".into()),
        on_duplicate_logical: Some("replace".into()),
        ..Default::default()
    });
    c.create_task(&t).await.unwrap();
    let got = c.get_task("t", false).await.unwrap().unwrap();
    let f = got.source_config.full_migrate_conf.unwrap();
    assert_eq!((f.export_threads, f.import_threads), (Some(4), Some(16)));
    assert_eq!(f.data_dir.as_deref(), Some("./dumped_data"));
    assert_eq!(f.import_mode.as_deref(), Some("logical"));
    assert!(
        f.sorting_dir.is_none() && f.disk_quota.is_none() && f.checksum.is_none() && f.on_duplicate_logical.is_none()
    );
    let i = got.source_config.incr_migrate_conf.unwrap();
    assert_eq!((i.repl_threads, i.repl_batch, i.safe_mode), (Some(16), Some(100), Some(false)));
}

#[tokio::test]
async fn on_duplicate_is_reported_from_on_duplicate_logical() {
    let (_sim, c) = with_sources(Generation::Head, &["a"]).await;
    let mut t = task("t", "all", &["a"]);
    t.on_duplicate = "error".into();
    t.source_config.full_migrate_conf = None;
    c.create_task(&t).await.unwrap();
    assert_eq!(c.get_task("t", false).await.unwrap().unwrap().on_duplicate, "replace", "task.on_duplicate ignored");
    let mut t2 = task("t2", "all", &["a"]);
    t2.source_config.full_migrate_conf.as_mut().unwrap().on_duplicate_logical = Some("ignore".into());
    c.create_task(&t2).await.unwrap();
    assert_eq!(c.get_task("t2", false).await.unwrap().unwrap().on_duplicate, "ignore");
}

#[tokio::test]
async fn meta_schema_default_depends_on_generation() {
    for (g, want) in [(Generation::V853, "dm_meta"), (Generation::Head, "dm-meta")] {
        let (_sim, c) = with_sources(g, &["a"]).await;
        let mut t = task("t", "all", &["a"]);
        t.meta_schema = None;
        let created = c.create_task(&t).await.unwrap();
        assert_eq!(created.task.meta_schema.as_deref(), Some(want), "{g:?} echo");
        assert_eq!(c.get_task("t", false).await.unwrap().unwrap().meta_schema.as_deref(), Some(want), "{g:?}");
    }
}

#[tokio::test]
async fn target_table_empty_reads_back_absent_and_empty_target_schema_is_lost() {
    let (_sim, c) = with_sources(Generation::Head, &["a"]).await;
    let mut t = task("t", "all", &["a"]);
    t.table_migrate_rule = vec![
        TableMigrateRule {
            source: TableRuleSource { source_name: "a".into(), schema: "shop".into(), table: String::new() },
            target: Some(TableRuleTarget { schema: Some("shop_all".into()), table: Some(String::new()) }),
            binlog_filter_rule: None,
        },
        TableMigrateRule {
            source: TableRuleSource { source_name: "a".into(), schema: "crm".into(), table: "leads".into() },
            target: Some(TableRuleTarget { schema: Some(String::new()), table: Some("x".into()) }),
            binlog_filter_rule: None,
        },
    ];
    c.create_task(&t).await.unwrap();
    let got = c.get_task("t", false).await.unwrap().unwrap();
    let shop = got.table_migrate_rule.iter().find(|r| r.source.schema == "shop").unwrap();
    assert_eq!(shop.target, Some(TableRuleTarget { schema: Some("shop_all".into()), table: None }));
    let crm = got.table_migrate_rule.iter().find(|r| r.source.schema == "crm").unwrap();
    assert_eq!(crm.target, None);
}

#[tokio::test]
async fn rules_for_sources_not_in_source_conf_are_dropped_and_no_rules_means_everything() {
    let (_sim, c) = with_sources(Generation::Head, &["a", "b"]).await;
    let mut t = task("t", "all", &["a"]);
    t.table_migrate_rule = vec![TableMigrateRule {
        source: TableRuleSource { source_name: "b".into(), schema: "shop".into(), table: String::new() },
        ..Default::default()
    }];
    synced_and_stopped(&c, &t).await;
    let got = c.get_task("t", false).await.unwrap().unwrap();
    assert!(got.table_migrate_rule.is_empty());
    let all = c.source_schemas("a").await.unwrap();
    assert_eq!(c.task_source_schemas("t", "a").await.unwrap(), all, "no allow list: every schema");
}

#[tokio::test]
async fn binlog_positions_come_back_all_or_none() {
    let (_sim, c) = with_sources(Generation::Head, &["a", "b"]).await;
    let mut t = task("t", "incremental", &["a", "b"]);
    t.source_config.source_conf = vec![
        TaskSourceConf { source_name: "a".into(), binlog_gtid: Some("uuid:1-5".into()), ..Default::default() },
        TaskSourceConf { source_name: "b".into(), ..Default::default() },
    ];
    c.create_task(&t).await.unwrap();
    let got = c.get_task("t", false).await.unwrap().unwrap();
    let a = got.source_config.source_conf.iter().find(|s| s.source_name == "a").unwrap();
    assert_eq!(
        (a.binlog_name.as_deref(), a.binlog_pos, a.binlog_gtid.as_deref()),
        (Some(""), Some(0), Some("uuid:1-5"))
    );
    let b = got.source_config.source_conf.iter().find(|s| s.source_name == "b").unwrap();
    assert_eq!((b.binlog_name.clone(), b.binlog_pos, b.binlog_gtid.clone()), (None, None, None));
}

#[tokio::test]
async fn data_dir_suffix_is_stripped_and_trailing_slash_lost() {
    let (sim, c) = with_sources(Generation::Head, &["a"]).await;
    let mut t = task("t", "full", &["a"]);
    t.source_config.full_migrate_conf.as_mut().unwrap().data_dir = Some("./d/".into());
    c.create_task(&t).await.unwrap();
    let got = c.get_task("t", false).await.unwrap().unwrap();
    assert_eq!(got.source_config.full_migrate_conf.unwrap().data_dir.as_deref(), Some("./d"));
    let _ = sim;
}

#[tokio::test]
async fn allow_list_lowercased_for_case_insensitive_upstream() {
    let (_sim, c) = start(fast(Generation::Head)).await;
    let mut s = source("a");
    s.host = "lower-case.internal".into();
    c.create_source(&s, None).await.unwrap();
    let mut t = task("t", "all", &["a"]);
    t.table_migrate_rule[0].source.schema = "Shop".into();
    c.create_task(&t).await.unwrap();
    let got = c.get_task("t", false).await.unwrap().unwrap();
    assert_eq!(got.table_migrate_rule[0].source.schema, "shop");
}

#[tokio::test]
async fn target_password_is_returned_in_plain_text() {
    let (_sim, c) = with_sources(Generation::Head, &["a"]).await;
    c.create_task(&task("t", "all", &["a"])).await.unwrap();
    let got = c.get_task("t", false).await.unwrap().unwrap();
    assert_eq!(got.target_config.password.expose(), "tidbpw");
}

#[tokio::test]
async fn v85_drops_head_only_fields() {
    let (_sim, c) = with_sources(Generation::V853, &["a"]).await;
    let mut t = task("t", "all", &["a"]);
    t.timezone = Some("Asia/Shanghai".into());
    t.target_config.session = Some(TargetSession { foreign_key_checks: Some("1".into()) });
    t.source_config.incr_migrate_conf = Some(IncrMigrateConf { safe_mode: Some(true), ..Default::default() });
    let created = c.create_task(&t).await.unwrap();
    assert!(created.task.timezone.is_none() && created.task.target_config.session.is_none());
    let got = c.get_task("t", false).await.unwrap().unwrap();
    assert!(got.timezone.is_none() && got.target_config.session.is_none());
    assert_eq!(got.source_config.incr_migrate_conf.unwrap().safe_mode, None);
}

#[tokio::test]
async fn v85_rejects_dump_and_load_task_modes() {
    let (_sim, c) = with_sources(Generation::V853, &["a"]).await;
    let e = c.create_task(&task("t", "dump", &["a"])).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(400), None));
}

#[tokio::test]
async fn subtask_configs_that_differ_flip_on_read() {
    let (sim, c) = with_sources(Generation::Head, &["a", "b"]).await;
    c.create_task(&task("t", "incremental", &["a", "b"])).await.unwrap();
    sim.control().patch_subtask("t", "b", json!({"source_config": {"incr_migrate_conf": {"repl_batch": 7}}})).unwrap();
    let mut seen = BTreeSet::new();
    for _ in 0..40 {
        let t = c.get_task("t", false).await.unwrap().unwrap();
        seen.insert(t.source_config.incr_migrate_conf.unwrap().repl_batch);
    }
    assert_eq!(seen, [Some(7), Some(100)].into());
}

// =========================================================================================== §12 binding

#[tokio::test]
async fn deleting_a_source_frees_its_worker_which_binds_an_unbound_source() {
    let (_sim, c) = start(SimOptions { workers: 1, ..fast(Generation::Head) }).await;
    c.create_source(&source("a"), None).await.unwrap();
    c.create_source(&source("b"), None).await.unwrap();
    assert_eq!(c.source_status("b").await.unwrap()[0].worker_name, "");
    c.delete_source("a", false).await.unwrap();
    assert_eq!(c.source_status("b").await.unwrap()[0].worker_name, "worker1");
    let w = &c.list_workers().await.unwrap()[0];
    assert_eq!((w.bound_stage.as_str(), w.bound_source_name.as_str()), ("bound", "b"));
}

#[tokio::test]
async fn offline_worker_rebinds_source_to_a_free_worker() {
    let (sim, c) = start(SimOptions { workers: 2, ..fast(Generation::Head) }).await;
    c.create_source(&source("a"), Some("worker1")).await.unwrap();
    sim.control().set_worker_offline("worker1", true).unwrap();
    assert_eq!(c.source_status("a").await.unwrap()[0].worker_name, "worker2");
}

// =========================================================================================== knobs

#[tokio::test]
async fn faulted_5xx_request_changes_nothing() {
    let (sim, c) = start(fast(Generation::Head)).await;
    sim.control().set_faults(1.0, vec![FaultKind::ServerError]);
    let e = c.create_source(&source("a"), None).await.unwrap_err();
    assert_eq!(e.status(), Some(503));
    assert!(e.is_transient() && e.is_ambiguous());
    sim.control().set_faults(0.0, vec![]);
    assert!(c.get_source("a", false).await.unwrap().is_none());
    let log = sim.control().request_log();
    assert!(log[0].faulted && log[0].mutating && log[0].status == 503);
}

#[tokio::test]
async fn faulted_delay_answers_late_and_changes_nothing() {
    let (sim, c) = start(fast(Generation::Head)).await;
    sim.control().set_fault_delay(Duration::from_millis(30));
    sim.control().set_faults(1.0, vec![FaultKind::Delay]);
    let e = c.create_source(&source("a"), None).await.unwrap_err();
    assert_eq!(e.status(), Some(504));
    sim.control().set_faults(0.0, vec![]);
    assert!(c.get_source("a", false).await.unwrap().is_none());
}

#[tokio::test]
async fn offline_master_drops_connections_and_comes_back() {
    let (sim, c) = start(fast(Generation::Head)).await;
    sim.control().set_offline(true);
    let e = c.list_sources(false, None).await.unwrap_err();
    assert!(matches!(e, dm_apply::dm::DmError::Connect { .. }), "{e:?}");
    sim.control().set_offline(false);
    c.list_sources(false, None).await.unwrap();
}

#[tokio::test]
async fn request_log_records_every_api_request_in_order() {
    let (sim, c) = with_sources(Generation::Head, &["a"]).await;
    sim.control().clear_log();
    c.get_source("a", false).await.unwrap();
    c.delete_source("a", false).await.unwrap();
    let log = sim.control().request_log();
    let seen: Vec<(String, String, u16, bool)> =
        log.iter().map(|r| (r.method.clone(), r.path.clone(), r.status, r.mutating)).collect();
    assert_eq!(
        seen,
        [
            ("GET".into(), "/api/v1/sources/a".into(), 200, false),
            ("DELETE".into(), "/api/v1/sources/a".into(), 204, true)
        ]
    );
}

#[tokio::test]
async fn http_control_api_mirrors_sim_control() {
    let (sim, c) = with_sources(Generation::Head, &["a"]).await;
    let (code, body) = raw(&sim, "GET", "/sim/requests", None, None).await;
    assert_eq!(code, 200);
    assert!(js(&body).as_array().is_some_and(|l| !l.is_empty()));
    assert_eq!(raw(&sim, "DELETE", "/sim/requests", None, None).await.0, 200);
    assert!(sim.control().request_log().is_empty());
    let (code, _) =
        raw(&sim, "PUT", "/sim/faults", Some("application/json"), Some(r#"{"rate":1.0,"kinds":["5xx"]}"#)).await;
    assert_eq!(code, 200);
    assert_eq!(c.list_sources(false, None).await.unwrap_err().status(), Some(503));
    raw(&sim, "PUT", "/sim/faults", Some("application/json"), Some(r#"{"rate":0}"#)).await;
    let (_, state) = raw(&sim, "GET", "/sim/state", None, None).await;
    assert_eq!(js(&state)["sources"]["a"]["bound_worker"], json!("worker1"));
    let (code, _) = raw(&sim, "PATCH", "/sim/sources/a", Some("application/json"), Some(r#"{"port":3400}"#)).await;
    assert_eq!(code, 200);
    assert_eq!(c.get_source("a", false).await.unwrap().unwrap().port, 3400);
}

// =========================================================================================== templates

#[tokio::test]
async fn template_update_uses_body_name_and_adjusts() {
    let (sim, c) = start(fast(Generation::Head)).await;
    let mut t = task("tpl", "all", &["a"]);
    t.meta_schema = None;
    // POST is validated (Head injects "dm-meta"); PUT has no requestBody in the spec, so Task.Adjust's "dm_meta".
    assert_eq!(c.create_template(&t).await.unwrap().meta_schema.as_deref(), Some("dm-meta"));
    let body = json!(t).to_string();
    let (code, text) = raw(&sim, "PUT", "/api/v1/tasks/templates/other", Some("application/json"), Some(&body)).await;
    assert_eq!(code, 200, "{text}");
    assert_eq!(js(&text)["meta_schema"], json!("dm_meta"));
    assert_eq!(c.get_template("tpl").await.unwrap().unwrap().meta_schema.as_deref(), Some("dm_meta"));
    let mut bad = t.clone();
    bad.target_config.host = "x.unreachable".into();
    assert_eq!(c.update_template(&bad).await.unwrap_err().code(), Some(10001));
    assert_eq!(c.update_template(&task("ghost", "all", &["a"])).await.unwrap_err().code(), Some(20051));
}

#[tokio::test]
async fn template_import_copies_tasks() {
    let (sim, c) = with_sources(Generation::Head, &["a"]).await;
    c.create_task(&task("t", "all", &["a"])).await.unwrap();
    let (code, text) =
        raw(&sim, "POST", "/api/v1/tasks/templates/import", Some("application/json"), Some("{\"overwrite\":false}"))
            .await;
    assert_eq!(code, 202);
    assert_eq!(js(&text)["success_task_list"], json!(["t"]));
    let (_, text) =
        raw(&sim, "POST", "/api/v1/tasks/templates/import", Some("application/json"), Some("{\"overwrite\":false}"))
            .await;
    assert_eq!(js(&text)["failed_task_list"][0]["task_name"], json!("t"));
    assert!(c.get_template("t").await.unwrap().is_some());
}

#[tokio::test]
async fn put_table_structure_without_sync_is_500_before_head() {
    // Before HEAD the handler dereferences `sync` unchecked (no spec default for it), whatever the subtask's state.
    for (g, want) in
        [(Generation::V853, 500), (Generation::V854, 500), (Generation::V263, 500), (Generation::Head, 200)]
    {
        let (sim, c) = with_sources(g, &["a"]).await;
        synced_and_stopped(&c, &task("t", "all", &["a"])).await;
        let body = r#"{"sql_content":"CREATE TABLE orders (id int)","flush":true}"#;
        let path = "/api/v1/tasks/t/sources/a/schemas/shop/orders";
        assert_eq!(raw(&sim, "PUT", path, Some("application/json"), Some(body)).await.0, want, "{g:?}");
        let with_sync = r#"{"sql_content":"CREATE TABLE orders (id int)","sync":true}"#;
        let want = if g == Generation::V853 { 500 } else { 200 };
        assert_eq!(raw(&sim, "PUT", path, Some("application/json"), Some(with_sync)).await.0, want, "{g:?}: flush");
    }
}

#[tokio::test]
async fn task_create_without_sources_creates_nothing() {
    let (_sim, c) = start(fast(Generation::Head)).await;
    let t = task("empty", "all", &[]);
    let r = c.create_task(&t).await.unwrap();
    assert_eq!(r.task.name, "empty");
    assert!(c.get_task("empty", false).await.unwrap().is_none());
    assert!(c.list_tasks(false, None, &[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn transfer_pauses_running_sync_tasks_and_resumes_them() {
    let (_sim, c) = start(fast(Generation::Head)).await;
    c.create_source(&source("a"), Some("worker1")).await.unwrap();
    c.create_task(&task("t", "incremental", &["a"])).await.unwrap();
    c.start_task("t", &StartTaskRequest::default()).await.unwrap();
    wait_stage(&c, "t", Stage::Running).await;
    c.transfer_source("a", "worker2").await.unwrap();
    let st = wait_stage(&c, "t", Stage::Running).await;
    assert_eq!(st[0].worker_name, "worker2");
}

#[tokio::test]
async fn status_read_can_fail_transiently_49001() {
    let (sim, c) = with_sources(Generation::Head, &["a"]).await;
    c.create_task(&task("t", "all", &["a"])).await.unwrap();
    sim.control().fail_next_status(2);
    let e = c.task_status("t").await.unwrap_err();
    assert_eq!(e.code(), Some(49001));
    assert!(e.to_string().contains("query-status response is nil"), "{e}");
    assert_eq!(c.list_tasks(true, None, &[]).await.unwrap_err().code(), Some(49001), "one failure fails the list");
    assert_eq!(c.task_status("t").await.unwrap().len(), 1, "then it recovers");
}

#[tokio::test]
async fn endpoints_without_a_body_ignore_content_type() {
    let (sim, _c) = with_sources(Generation::Head, &["a"]).await;
    let (code, _) = raw(&sim, "GET", "/api/v1/sources", Some("application/json"), None).await;
    assert_eq!(code, 200);
    let (code, _) = raw(&sim, "POST", "/api/v1/sources/a/disable", Some("application/json"), None).await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn task_status_of_unreachable_worker_has_empty_stage_and_38008() {
    let (sim, c) = with_sources(Generation::Head, &["a"]).await;
    c.create_task(&task("t", "all", &["a"])).await.unwrap();
    sim.control().set_worker_unreachable("worker1", true).unwrap();
    let st = c.task_status("t").await.unwrap();
    assert_eq!((st[0].stage.clone(), st[0].worker_name.as_str()), (Stage::Empty, "worker1"));
    assert!(st[0].error_msg.as_deref().unwrap_or("").contains("code=38008"));
    sim.control().set_worker_unreachable("worker1", false).unwrap();
    assert_eq!(c.task_status("t").await.unwrap()[0].stage, Stage::Stopped);
}

#[tokio::test]
async fn task_cli_args_are_replaced_by_each_start_and_stop() {
    let (sim, c) = with_sources(Generation::Head, &["a"]).await;
    c.create_task(&task("t", "all", &["a"])).await.unwrap();
    let args = |sim: &SimServer| sim.control().snapshot()["tasks"]["t"]["cli_args"].clone();
    let req = StartTaskRequest { safe_mode_time_duration: Some("10s".into()), ..Default::default() };
    c.start_task("t", &req).await.unwrap();
    assert_eq!(args(&sim), json!({"start_time": "", "safe_mode_time_duration": "10s"}));
    c.stop_task("t", &StopTaskRequest { timeout_duration: Some("5s".into()), ..Default::default() }).await.unwrap();
    assert_eq!(args(&sim), json!({"timeout_duration": "5s"}));
    c.start_task("t", &StartTaskRequest::default()).await.unwrap();
    assert_eq!(args(&sim), json!({}), "a start without args deletes the stored ones");
}

#[tokio::test]
async fn task_start_checks_each_listed_source_in_order() {
    let (_sim, c) = with_sources(Generation::Head, &["a", "b"]).await;
    let mut t = task("t", "incremental", &["a", "b"]);
    t.source_config.source_conf[1] = TaskSourceConf { source_name: "b".into(), ..Default::default() };
    c.create_task(&t).await.unwrap();
    c.disable_source("a").await.unwrap();
    // a fails first (disabled), before b's missing meta is looked at.
    let req = StartTaskRequest { source_name_list: Some(vec!["a".into(), "b".into()]), ..Default::default() };
    assert_eq!(c.start_task("t", &req).await.unwrap_err().code(), Some(38058));
    let req = StartTaskRequest { source_name_list: Some(vec!["b".into(), "a".into()]), ..Default::default() };
    assert_eq!(c.start_task("t", &req).await.unwrap_err().code(), Some(20022));
}

#[tokio::test]
async fn task_get_is_stable_as_a_set_across_reads() {
    let (_sim, c) = with_sources(Generation::Head, &["a", "b"]).await;
    c.create_task(&task("t", "all", &["a", "b"])).await.unwrap();
    let key = |t: Task| {
        let rules: BTreeSet<String> = t.table_migrate_rule.iter().map(|r| serde_json::to_string(r).unwrap()).collect();
        let confs: BTreeSet<String> =
            t.source_config.source_conf.iter().map(|r| serde_json::to_string(r).unwrap()).collect();
        (rules, confs, t.source_config.full_migrate_conf, t.target_config.host)
    };
    let first = key(c.get_task("t", false).await.unwrap().unwrap());
    for _ in 0..10 {
        assert_eq!(key(c.get_task("t", false).await.unwrap().unwrap()), first);
    }
}

#[tokio::test]
async fn v85_requires_enhance_online_schema_change() {
    let (sim, _c) = with_sources(Generation::V853, &["a"]).await;
    let mut t = serde_json::to_value(task("t", "all", &["a"])).unwrap();
    t.as_object_mut().unwrap().remove("enhance_online_schema_change");
    let body = json!({"task": t}).to_string();
    let (code, text) = raw(&sim, "POST", "/api/v1/tasks", Some("application/json"), Some(&body)).await;
    assert_eq!(code, 400);
    assert!(text.contains("property \\\"enhance_online_schema_change\\\" is missing"), "{text}");
    // Head injects `true`.
    let (sim, c) = with_sources(Generation::Head, &["a"]).await;
    assert_eq!(raw(&sim, "POST", "/api/v1/tasks", Some("application/json"), Some(&body)).await.0, 201);
    assert!(c.get_task("t", false).await.unwrap().unwrap().enhance_online_schema_change);
}

// =========================================================================================== generations (§1, §15)

/// Raw JSON request: (status, parsed body or Null).
async fn rj(sim: &SimServer, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let text = body.map(|b| b.to_string());
    let ct = text.as_ref().map(|_| "application/json");
    let (code, out) = raw(sim, method, path, ct, text.as_deref()).await;
    (code, js(&out))
}

fn error_code(v: &Value) -> i64 {
    v["error_code"].as_i64().unwrap_or(-1)
}

fn error_msg(v: &Value) -> &str {
    v["error_msg"].as_str().unwrap_or("")
}

#[tokio::test]
async fn status_reports_each_generations_release() {
    for (g, want) in [
        (Generation::V853, "v8.5.3"),
        (Generation::V854, "v8.5.4"),
        (Generation::V263, "v26.3.3"),
        (Generation::Head, "v26.4.0-alpha"),
    ] {
        let (sim, _c) = start(fast(g)).await;
        let (_, text) = raw(&sim, "GET", "/status", None, None).await;
        assert!(text.starts_with(&format!("Release Version: {want}\n")), "{g:?}: {text}");
    }
    assert_eq!(Generation::ALL.len(), 4);
}

#[tokio::test]
async fn default_generation_is_v854() {
    assert_eq!(SimOptions::default().generation, Generation::V854);
    let (sim, _c) = start(SimOptions { seed: Some(1), ..SimOptions::default() }).await;
    assert!(raw(&sim, "GET", "/status", None, None).await.1.starts_with("Release Version: v8.5.4\n"));
}

#[tokio::test]
async fn default_injection_starts_at_v854() {
    let body = json!({"source": {"source_name": "a", "host": "a.db", "port": 3306, "user": "u", "password": "p"}});
    for (g, want) in
        [(Generation::V853, 400), (Generation::V854, 201), (Generation::V263, 201), (Generation::Head, 201)]
    {
        let (sim, c) = start(fast(g)).await;
        let (code, v) = rj(&sim, "POST", "/api/v1/sources", Some(body.clone())).await;
        assert_eq!(code, want, "{g:?}: {v}");
        if want == 201 {
            assert!(!c.get_source("a", false).await.unwrap().unwrap().enable, "{g:?}: injected enable=false");
        }
    }
}

#[tokio::test]
async fn validator_words_differ_between_kin_openapi_v080_and_v0131() {
    let body = json!({"source": {"source_name": "a", "host": "h", "port": 3306, "user": "u", "enable": "yes", "enable_gtid": false}});
    let (sim, _c) = start(fast(Generation::V853)).await;
    let (_, v) = rj(&sim, "POST", "/api/v1/sources", Some(body.clone())).await;
    assert_eq!(
        v["error"],
        json!(
            "error in openapi3filter.RequestError: request body has an error: doesn't match the schema: Error at \"/source/enable\": Field must be set to boolean or not be present"
        )
    );
    let (sim, _c) = start(fast(Generation::V854)).await;
    let (_, v) = rj(&sim, "POST", "/api/v1/sources", Some(body)).await;
    assert_eq!(
        v["error"],
        json!(
            "error in openapi3filter.RequestError: request body has an error: doesn't match schema #/components/schemas/CreateSourceRequest: Error at \"/source/enable\": value must be a boolean"
        )
    );
    let missing =
        json!({"source": {"source_name": "a", "port": 3306, "user": "u", "enable": true, "enable_gtid": false}});
    let (_, v) = rj(&sim, "POST", "/api/v1/sources", Some(missing)).await;
    assert!(v["error"].as_str().unwrap().ends_with("Error at \"/source/host\": property \"host\" is missing"), "{v}");
}

#[tokio::test]
async fn dump_load_modes_and_import_into_exist_from_v263() {
    for g in Generation::ALL {
        let (sim, _c) = with_sources(g, &["a"]).await;
        let mut t = serde_json::to_value(task("d", "dump", &["a"])).unwrap();
        t["source_config"]["full_migrate_conf"]["data_dir"] = json!("s3://bucket/d");
        let (code, v) = rj(&sim, "POST", "/api/v1/tasks", Some(json!({"task": t}))).await;
        assert_eq!(code, if g.name().starts_with("v8.5") { 400 } else { 201 }, "{g:?}: {v}");
        t["name"] = json!("i");
        t["task_mode"] = json!("full");
        t["source_config"]["full_migrate_conf"]["import_mode"] = json!("import-into");
        let (code, v) = rj(&sim, "POST", "/api/v1/tasks", Some(json!({"task": t}))).await;
        assert_eq!(code, if g.name().starts_with("v8.5") { 400 } else { 201 }, "{g:?}: {v}");
    }
}

#[tokio::test]
async fn stage_filter_paused_is_refused_before_v263() {
    for (g, want) in
        [(Generation::V853, 400), (Generation::V854, 400), (Generation::V263, 200), (Generation::Head, 200)]
    {
        let (sim, _c) = start(fast(g)).await;
        let (code, v) = rj(&sim, "GET", "/api/v1/tasks?stage=Paused", None).await;
        assert_eq!(code, want, "{g:?}: {v}");
        assert_eq!(rj(&sim, "GET", "/api/v1/tasks?stage=Running", None).await.0, 200);
    }
}

// =========================================================================================== v8.5 read-back (§9)

/// A task with every field the generations read back differently.
fn rich_task(sources: &[&str]) -> Value {
    let mut t = serde_json::to_value(task("rich", "all", sources)).unwrap();
    t["target_config"]["security"] = json!({"ssl_ca_content": "CA", "ssl_cert_content": "CERT", "ssl_key_content": "KEY", "cert_allowed_cn": ["tidb"]});
    t["source_config"]["full_migrate_conf"] = json!({"import_mode": "physical", "pd_addr": "pd:2379", "consistency": "none", "on_duplicate_logical": "replace"});
    t["source_config"]["incr_migrate_conf"] = json!({"repl_threads": 8, "repl_batch": 50});
    t
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    k.sort();
    k
}

#[tokio::test]
async fn v85_task_readback_is_short() {
    for g in [Generation::V853, Generation::V854] {
        let (sim, _c) = with_sources(g, &["a"]).await;
        assert_eq!(rj(&sim, "POST", "/api/v1/tasks", Some(json!({"task": rich_task(&["a"])}))).await.0, 201);
        let (_, got) = rj(&sim, "GET", "/api/v1/tasks/rich", None).await;
        assert_eq!(keys(&got["target_config"]), ["host", "password", "port", "security", "user"], "{g:?}");
        assert_eq!(got["target_config"]["security"], Value::Null, "{g:?}: never filled on v8.5");
        assert_eq!(
            keys(&got["source_config"]["full_migrate_conf"]),
            ["consistency", "data_dir", "export_threads", "import_threads"],
            "{g:?}"
        );
        assert_eq!(keys(&got["source_config"]["incr_migrate_conf"]), ["repl_batch", "repl_threads"], "{g:?}");
    }
}

#[tokio::test]
async fn v263_and_head_read_back_import_mode_pd_addr_and_security() {
    for g in [Generation::V263, Generation::Head] {
        let (sim, _c) = with_sources(g, &["a"]).await;
        assert_eq!(rj(&sim, "POST", "/api/v1/tasks", Some(json!({"task": rich_task(&["a"])}))).await.0, 201);
        let (_, got) = rj(&sim, "GET", "/api/v1/tasks/rich", None).await;
        assert_eq!(got["target_config"]["security"]["ssl_key_content"], json!("KEY"), "{g:?}");
        let full = &got["source_config"]["full_migrate_conf"];
        assert_eq!(
            (full["import_mode"].clone(), full["pd_addr"].clone()),
            (json!("physical"), json!("pd:2379")),
            "{g:?}"
        );
        assert!(full.as_object().unwrap().contains_key("security"), "{g:?}");
        let incr = &got["source_config"]["incr_migrate_conf"];
        assert_eq!(incr.get("safe_mode").is_some(), g == Generation::Head, "{g:?}: safe_mode is HEAD's");
    }
}

#[tokio::test]
async fn task_create_echo_prints_target_security_null() {
    let (sim, _c) = with_sources(Generation::V854, &["a"]).await;
    let t = serde_json::to_value(task("t", "all", &["a"])).unwrap();
    let (code, v) = rj(&sim, "POST", "/api/v1/tasks", Some(json!({"task": t}))).await;
    assert_eq!(code, 201);
    assert!(v["task"]["target_config"].as_object().unwrap().contains_key("security"), "{v}");
    assert_eq!(v["task"]["target_config"]["security"], Value::Null);
}

#[tokio::test]
async fn binlog_event_types_per_generation() {
    for g in [Generation::V853, Generation::V854] {
        let (sim, c) = with_sources(g, &["a"]).await;
        let mut t = task("t", "all", &["a"]);
        t.binlog_filter_rule = Some(
            [
                (
                    "fk".to_string(),
                    BinlogFilterRule { ignore_event: Some(vec!["Add Foreign Key".into()]), ignore_sql: None },
                ),
                (
                    "dt".to_string(),
                    BinlogFilterRule {
                        ignore_event: Some(vec!["DROP TABLE".into(), "create schema".into()]),
                        ignore_sql: None,
                    },
                ),
            ]
            .into(),
        );
        t.table_migrate_rule[0].binlog_filter_rule = Some(vec!["fk".into(), "dt".into()]);
        // Accepted by the API on every generation.
        c.create_task(&t).await.unwrap();
        let inactive = sim.control().snapshot()["tasks"]["t"]["inactive_filter_rules"].clone();
        let want = if g == Generation::V853 { json!(["fk"]) } else { json!([]) };
        assert_eq!(inactive, want, "{g:?}: v8.5.3 does not know the foreign-key events");
        let got = c.get_task("t", false).await.unwrap().unwrap();
        let mut events: Vec<Vec<String>> =
            got.binlog_filter_rule.unwrap().values().map(|r| r.ignore_event.clone().unwrap_or_default()).collect();
        events.sort();
        let fk = if g == Generation::V853 { "Add Foreign Key" } else { "add foreign key" };
        assert_eq!(
            events,
            vec![vec![fk.to_string()], vec!["drop table".to_string(), "create database".to_string()]],
            "{g:?}"
        );
    }
}

// =========================================================================================== downstream (§5, §10)

#[tokio::test]
async fn task_create_refused_when_target_does_not_resolve() {
    let (_sim, c) = with_sources(Generation::V854, &["a"]).await;
    let mut t = task("t", "all", &["a"]);
    t.target_config.host = "tidb.invalid".into();
    let err = c.create_task(&t).await.unwrap_err();
    assert!(err.has_code(10001), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("class=database:scope=downstream") && msg.contains("lookup tidb.invalid: no such host"),
        "{msg}"
    );
    assert!(c.get_task("t", false).await.unwrap().is_none());
}

#[tokio::test]
async fn task_create_refused_with_a_wrong_downstream_password() {
    let (sim, c) = with_sources(Generation::V854, &["a"]).await;
    sim.control().register_downstream_account("tidb.internal", 4000, "root", "right");
    let err = c.create_task(&task("t", "all", &["a"])).await.unwrap_err();
    assert!(err.has_code(10001), "{err}");
    assert!(err.to_string().contains("Error 1045 (28000): Access denied for user 'root'@"), "{err}");
    let mut t = task("t", "all", &["a"]);
    t.target_config.password = Secret::new("right");
    c.create_task(&t).await.unwrap();
}

#[tokio::test]
async fn unregistered_downstream_accepts_any_password() {
    let (sim, c) = with_sources(Generation::V854, &["a"]).await;
    sim.control().register_downstream_account("tidb.internal", 4000, "someone-else", "x");
    c.create_task(&task("t", "all", &["a"])).await.unwrap();
}

#[tokio::test]
async fn downstream_accounts_over_the_sim_http_control() {
    let (sim, c) = with_sources(Generation::V854, &["a"]).await;
    let acct = json!({"host": "tidb.internal", "port": 4000, "user": "root", "password": "right"});
    assert_eq!(rj(&sim, "PUT", "/sim/downstream/accounts", Some(acct)).await.0, 200);
    assert!(c.create_task(&task("t", "all", &["a"])).await.unwrap_err().has_code(10001));
    assert_eq!(rj(&sim, "DELETE", "/sim/downstream/accounts", None).await.0, 200);
    c.create_task(&task("t", "all", &["a"])).await.unwrap();
    assert_eq!(rj(&sim, "PUT", "/sim/downstream/accounts", Some(json!({"host": "h"}))).await.0, 400);
}

#[tokio::test]
async fn template_create_connects_to_its_target() {
    let (sim, c) = start(fast(Generation::V854)).await;
    let mut t = task("tpl", "all", &["a"]);
    t.target_config.host = "tidb.unreachable".into();
    let err = c.create_template(&t).await.unwrap_err();
    assert!(err.has_code(10001), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("class=dm-master:scope=downstream") && msg.contains("connect: connection refused"), "{msg}");
    sim.control().register_downstream_account("tidb.internal", 4000, "root", "right");
    let err = c.create_template(&task("tpl", "all", &["a"])).await.unwrap_err();
    assert!(err.to_string().contains("Access denied"), "{err}");
    assert!(c.list_templates().await.unwrap().is_empty(), "nothing stored");
}

#[tokio::test]
async fn template_update_connects_and_keys_on_the_body_name() {
    let (sim, c) = start(fast(Generation::V854)).await;
    c.create_template(&task("tpl", "all", &["a"])).await.unwrap();
    let mut t = task("tpl", "full", &["a"]);
    t.target_config.host = "tidb.test".into();
    let body = serde_json::to_value(&t).unwrap();
    let (code, v) = rj(&sim, "PUT", "/api/v1/tasks/templates/tpl", Some(body)).await;
    assert_eq!((code, error_code(&v)), (400, 10001), "{v}");
    // The path name is ignored: the body's name is written.
    let body = serde_json::to_value(task("tpl", "full", &["a"])).unwrap();
    assert_eq!(rj(&sim, "PUT", "/api/v1/tasks/templates/other", Some(body)).await.0, 200);
    assert_eq!(c.get_template("tpl").await.unwrap().unwrap().task_mode, "full");
    let body = serde_json::to_value(task("ghost", "full", &["a"])).unwrap();
    let (code, v) = rj(&sim, "PUT", "/api/v1/tasks/templates/tpl", Some(body)).await;
    assert_eq!((code, error_code(&v)), (400, 20051), "{v}");
    assert!(error_msg(&v).contains("the openapi task config for 'ghost' does not exist"), "{v}");
}

#[tokio::test]
async fn template_create_existing_is_20050_after_the_connect() {
    let (sim, c) = start(fast(Generation::V854)).await;
    c.create_template(&task("tpl", "all", &["a"])).await.unwrap();
    let (code, v) =
        rj(&sim, "POST", "/api/v1/tasks/templates", Some(serde_json::to_value(task("tpl", "all", &["a"])).unwrap()))
            .await;
    assert_eq!((code, error_code(&v)), (400, 20050), "{v}");
    assert!(error_msg(&v).starts_with("[code=20050:class=config:scope=internal:level=low]"), "{v}");
    let mut t = task("tpl", "all", &["a"]);
    t.target_config.host = "x.invalid".into();
    let err = c.create_template(&t).await.unwrap_err();
    assert!(err.has_code(10001), "the target is checked before the name: {err}");
}

#[tokio::test]
async fn template_get_unknown_is_20051_and_delete_unknown_is_204() {
    let (sim, _c) = start(fast(Generation::V854)).await;
    let (code, v) = rj(&sim, "GET", "/api/v1/tasks/templates/nope", None).await;
    assert_eq!((code, error_code(&v)), (400, 20051));
    assert_eq!(rj(&sim, "DELETE", "/api/v1/tasks/templates/nope", None).await.0, 204);
}

#[tokio::test]
async fn template_is_stored_as_bound_with_its_password() {
    let mut t = serde_json::to_value(task("tpl", "all", &["a"])).unwrap();
    t.as_object_mut().unwrap().remove("meta_schema");
    t["timezone"] = json!("UTC");
    for (g, meta) in [(Generation::V853, "dm_meta"), (Generation::V854, "dm-meta"), (Generation::Head, "dm-meta")] {
        let (sim, _c) = start(fast(g)).await;
        assert_eq!(rj(&sim, "POST", "/api/v1/tasks/templates", Some(t.clone())).await.0, 201, "{g:?}");
        let (_, got) = rj(&sim, "GET", "/api/v1/tasks/templates/tpl", None).await;
        assert_eq!(got["meta_schema"], json!(meta), "{g:?}: defaulted as bound");
        assert_eq!(got["target_config"]["password"], json!("tidbpw"), "{g:?}: returned verbatim");
        assert_eq!(got.get("timezone").is_some(), g == Generation::Head, "{g:?}: unknown fields dropped");
        // PUT has no request body in the spec: nothing is injected, the server default applies.
        let (code, _) = rj(&sim, "PUT", "/api/v1/tasks/templates/tpl", Some(t.clone())).await;
        assert_eq!(code, 200);
        let (_, got) = rj(&sim, "GET", "/api/v1/tasks/templates/tpl", None).await;
        assert_eq!(got["meta_schema"], json!("dm_meta"), "{g:?}");
    }
}

#[tokio::test]
async fn v85_delete_connects_to_the_target_and_fails_unless_forced_past_a_refused_connection() {
    for g in [Generation::V853, Generation::V854] {
        let (sim, c) = with_sources(g, &["a"]).await;
        c.create_task(&task("t", "all", &["a"])).await.unwrap();
        sim.control().patch_task("t", json!({"target_config": {"host": "tidb.unreachable"}})).unwrap();
        let err = c.delete_task("t", false, false).await.unwrap_err();
        assert!(err.has_code(10001) && err.to_string().contains("connection refused"), "{g:?}: {err}");
        c.delete_task("t", true, false).await.expect("force passes a refused connection");
        c.create_task(&task("t", "all", &["a"])).await.unwrap();
        sim.control().patch_task("t", json!({"target_config": {"host": "tidb.invalid"}})).unwrap();
        let err = c.delete_task("t", true, false).await.unwrap_err();
        assert!(err.to_string().contains("no such host"), "{g:?}: force does not pass a lookup failure: {err}");
        sim.control().patch_task("t", json!({"target_config": {"host": "tidb.internal"}})).unwrap();
        sim.control().register_downstream_account("tidb.internal", 4000, "root", "changed");
        let err = c.delete_task("t", true, false).await.unwrap_err();
        assert!(err.to_string().contains("Access denied"), "{g:?}: {err}");
    }
}

#[tokio::test]
async fn v263_and_head_delete_only_log_downstream_failures() {
    for g in [Generation::V263, Generation::Head] {
        let (sim, c) = with_sources(g, &["a"]).await;
        c.create_task(&task("t", "all", &["a"])).await.unwrap();
        sim.control().patch_task("t", json!({"target_config": {"host": "tidb.invalid"}})).unwrap();
        c.delete_task("t", false, false).await.unwrap_or_else(|e| panic!("{g:?}: {e}"));
    }
}

#[tokio::test]
async fn start_with_remove_meta_connects_to_the_target() {
    let (sim, c) = with_sources(Generation::V854, &["a"]).await;
    c.create_task(&task("t", "all", &["a"])).await.unwrap();
    sim.control().register_downstream_account("tidb.internal", 4000, "root", "changed");
    let req = StartTaskRequest { remove_meta: Some(true), ..Default::default() };
    let err = c.start_task("t", &req).await.unwrap_err();
    assert!(
        err.has_code(10001) && err.to_string().contains("Message: while removing metadata: database driver error"),
        "{err}"
    );
    c.start_task("t", &StartTaskRequest::default()).await.unwrap();
}

// =========================================================================================== OpenAPI switched off (§2)

#[tokio::test]
async fn openapi_off_answers_plain_404_and_keeps_status() {
    let (sim, c) = start(SimOptions { openapi: false, ..fast(Generation::V854) }).await;
    for (m, p) in [("GET", "/api/v1/sources"), ("POST", "/api/v1/tasks"), ("GET", "/api/v1/nothing/here")] {
        let resp = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .request(m.parse().unwrap(), format!("{}{p}", sim.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 404, "{m} {p}");
        assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
        assert_eq!(resp.text().await.unwrap(), "404 page not found\n");
    }
    assert_eq!(raw(&sim, "GET", "/status", None, None).await.0, 200);
    assert_eq!(raw(&sim, "GET", "/sim/state", None, None).await.0, 200);
    assert_eq!(c.list_sources(false, None).await.unwrap_err().status(), Some(404));
}

#[tokio::test]
async fn paths_outside_the_api_are_plain_404() {
    let (sim, _c) = start(fast(Generation::V854)).await;
    assert_eq!(raw(&sim, "GET", "/nothing", None, None).await, (404, "404 page not found\n".to_string()));
    // Under /api/v1/ an unknown route is the validator's 400.
    assert_eq!(raw(&sim, "GET", "/api/v1/nothing", None, None).await.0, 400);
}

// =========================================================================================== enable/disable (§3)

/// One source `a` on worker1 with a task `t` on it, and relay started on worker1 by name.
async fn relaying_source(g: Generation, enable: bool) -> (SimServer, DmClient) {
    let (sim, c) = start(SimOptions { workers: 2, ..fast(g) }).await;
    let mut s = source("a");
    s.enable = enable;
    c.create_source(&s, Some("worker1")).await.unwrap();
    c.create_task(&task("t", "all", &["a"])).await.unwrap();
    let req = EnableRelayRequest { worker_name_list: Some(vec!["worker1".into()]), ..Default::default() };
    c.enable_relay("a", Some(&req)).await.unwrap();
    (sim, c)
}

#[tokio::test]
async fn enable_refused_46025_while_relay_is_started() {
    let (_sim, c) = relaying_source(Generation::V854, false).await;
    let err = c.enable_source("a").await.unwrap_err();
    assert!(err.has_code(46025), "{err}");
    assert!(
        err.to_string()
            .contains("source a can only be updated when relay is disabled and no tasks are running for now")
    );
    assert!(!c.get_source("a", false).await.unwrap().unwrap().enable);
}

#[tokio::test]
async fn refused_disable_leaves_the_tasks_stopped_and_the_source_enabled() {
    let (sim, c) = relaying_source(Generation::V854, true).await;
    c.start_task("t", &StartTaskRequest::default()).await.unwrap();
    wait_stage(&c, "t", Stage::Running).await;
    assert!(c.disable_source("a").await.unwrap_err().has_code(46025));
    assert!(c.get_source("a", false).await.unwrap().unwrap().enable, "still enabled");
    assert_eq!(sim.control().snapshot()["tasks"]["t"]["subtasks"]["a"]["expected"], json!("Stopped"));
    wait_stage(&c, "t", Stage::Paused).await;
}

#[tokio::test]
async fn disable_of_an_unbound_source_does_not_stop_its_tasks() {
    let (sim, c) = with_sources(Generation::V854, &["a"]).await;
    c.create_task(&task("t", "incremental", &["a"])).await.unwrap();
    c.start_task("t", &StartTaskRequest::default()).await.unwrap();
    // Every worker goes away: the source is unbound, its task still expected Running.
    for w in ["worker1", "worker2", "worker3"] {
        sim.control().set_worker_offline(w, true).unwrap();
    }
    assert!(c.disable_source("a").await.unwrap_err().has_code(46025));
    assert_eq!(sim.control().snapshot()["tasks"]["t"]["subtasks"]["a"]["expected"], json!("Running"));
    assert!(c.get_source("a", false).await.unwrap().unwrap().enable);
}

#[tokio::test]
async fn put_source_refused_46025_while_relay_is_started() {
    let (_sim, c) = relaying_source(Generation::V854, true).await;
    assert!(c.update_source(&source("a")).await.unwrap_err().has_code(46025));
}

// =========================================================================================== relay (§4)

fn relay_req(workers: &[&str]) -> EnableRelayRequest {
    EnableRelayRequest { worker_name_list: Some(workers.iter().map(|w| w.to_string()).collect()), ..Default::default() }
}

fn stop_req(workers: &[&str]) -> DisableRelayRequest {
    DisableRelayRequest { worker_name_list: Some(workers.iter().map(|w| w.to_string()).collect()) }
}

async fn worker_stage(c: &DmClient, w: &str) -> String {
    c.list_workers().await.unwrap().into_iter().find(|x| x.name == w).unwrap().bound_stage
}

#[tokio::test]
async fn relay_disable_without_body_stops_only_the_bound_workers_relay() {
    let (_sim, c) = start(SimOptions { workers: 2, ..fast(Generation::V854) }).await;
    c.create_source(&source("a"), Some("worker1")).await.unwrap();
    c.enable_relay("a", Some(&relay_req(&["worker1", "worker2"]))).await.unwrap();
    assert_eq!(c.source_status("a").await.unwrap().len(), 2, "one entry per relay worker");
    c.disable_relay("a", None).await.unwrap();
    assert_eq!(worker_stage(&c, "worker2").await, "relay", "worker2 keeps relaying");
    assert_eq!(c.list_sources(false, Some(true)).await.unwrap().len(), 1);
    c.disable_relay("a", Some(&stop_req(&["worker2"]))).await.unwrap();
    assert_eq!(worker_stage(&c, "worker2").await, "free");
    assert!(c.list_sources(false, Some(true)).await.unwrap().is_empty());
}

#[tokio::test]
async fn relay_disable_of_a_worker_that_is_not_relaying_is_not_an_error() {
    let (_sim, c) = start(SimOptions { workers: 2, ..fast(Generation::V854) }).await;
    c.create_source(&source("a"), Some("worker1")).await.unwrap();
    c.disable_relay("a", Some(&stop_req(&["worker2"]))).await.unwrap();
    c.disable_relay("a", None).await.unwrap();
    let err = c.disable_relay("a", Some(&stop_req(&["no-worker"]))).await.unwrap_err();
    assert!(err.has_code(46004) && err.to_string().contains("dm-worker with name [no-worker] not exists"), "{err}");
}

#[tokio::test]
async fn relay_disable_of_a_worker_relaying_another_source_is_46022() {
    let (_sim, c) = start(SimOptions { workers: 3, ..fast(Generation::V854) }).await;
    c.create_source(&source("a"), Some("worker1")).await.unwrap();
    c.create_source(&source("b"), Some("worker2")).await.unwrap();
    c.enable_relay("b", Some(&relay_req(&["worker3"]))).await.unwrap();
    let err = c.disable_relay("a", Some(&stop_req(&["worker3"]))).await.unwrap_err();
    assert!(err.has_code(46022), "{err}");
    let err = c.enable_relay("a", Some(&relay_req(&["worker3"]))).await.unwrap_err();
    assert!(err.has_code(46020), "{err}");
    let err = c.enable_relay("a", Some(&relay_req(&["worker2"]))).await.unwrap_err();
    assert!(err.has_code(46021), "{err}");
}

#[tokio::test]
async fn relay_with_an_empty_worker_list_takes_the_config_quick_path() {
    let (sim, c) = start(SimOptions { workers: 2, ..fast(Generation::V854) }).await;
    c.create_source(&source("a"), Some("worker1")).await.unwrap();
    c.enable_relay("a", Some(&relay_req(&[]))).await.unwrap();
    let got = c.get_source("a", false).await.unwrap().unwrap();
    assert_eq!(got.relay_config.unwrap().enable_relay, Some(true), "written into the source config");
    let st = c.source_status("a").await.unwrap();
    assert!(st.len() == 1 && st[0].relay_status.is_some(), "the bound worker relays: {st:?}");
    assert!(c.list_sources(false, Some(true)).await.unwrap().is_empty(), "not a relay worker by name");
    assert!(c.enable_relay("a", Some(&relay_req(&["worker2"]))).await.unwrap_err().has_code(46030));
    assert!(c.disable_relay("a", None).await.unwrap_err().has_code(46031), "no body names the bound worker");
    let purge = PurgeRelayRequest { relay_binlog_name: "mysql-bin.000001".into(), relay_dir: None };
    assert!(c.purge_relay("a", &purge).await.unwrap_err().has_code(49001));
    c.disable_relay("a", Some(&stop_req(&[]))).await.unwrap();
    let got = c.get_source("a", false).await.unwrap().unwrap();
    assert_eq!(got.relay_config.unwrap().enable_relay, Some(false));
    let _ = sim;
}

#[tokio::test]
async fn relay_quick_path_refused_46028_and_46029_while_workers_relay_by_name() {
    let (_sim, c) = start(SimOptions { workers: 2, ..fast(Generation::V854) }).await;
    c.create_source(&source("a"), Some("worker1")).await.unwrap();
    c.enable_relay("a", Some(&relay_req(&["worker2"]))).await.unwrap();
    let err = c.enable_relay("a", Some(&relay_req(&[]))).await.unwrap_err();
    assert!(err.has_code(46028) && err.to_string().contains("for workers [worker2]"), "{err}");
    assert!(c.disable_relay("a", Some(&stop_req(&[]))).await.unwrap_err().has_code(46029));
}

#[tokio::test]
async fn relay_enable_rewrites_changed_relay_fields_under_the_46025_rules() {
    let (_sim, c) = start(SimOptions { workers: 2, ..fast(Generation::V853) }).await;
    c.create_source(&source("a"), Some("worker1")).await.unwrap();
    c.create_task(&task("t", "incremental", &["a"])).await.unwrap();
    c.start_task("t", &StartTaskRequest::default()).await.unwrap();
    let mut req = relay_req(&["worker2"]);
    req.relay_binlog_name = Some("mysql-bin.000009".into());
    assert!(c.enable_relay("a", Some(&req)).await.unwrap_err().has_code(46025));
    // The same fields as stored do not rewrite the config.
    req.relay_binlog_name = Some(String::new());
    c.enable_relay("a", Some(&req)).await.unwrap();
}

#[tokio::test]
async fn task_status_fails_49001_while_relay_runs_on_another_worker() {
    let (sim, c) = start(SimOptions { workers: 2, ..fast(Generation::V854) }).await;
    c.create_source(&source("a"), Some("worker1")).await.unwrap();
    c.create_task(&task("t", "all", &["a"])).await.unwrap();
    c.enable_relay("a", Some(&relay_req(&["worker1"]))).await.unwrap();
    assert_eq!(c.task_status("t").await.unwrap().len(), 1, "relay on the bound worker is fine");
    c.enable_relay("a", Some(&relay_req(&["worker2"]))).await.unwrap();
    for path in [
        "/api/v1/tasks/t/status",
        "/api/v1/tasks/t?with_status=true",
        "/api/v1/tasks?with_status=true",
        "/api/v1/tasks?stage=Running",
    ] {
        let (code, v) = rj(&sim, "GET", path, None).await;
        assert_eq!((code, error_code(&v)), (400, 49001), "{path}: {v}");
        assert!(error_msg(&v).contains("worker's query-status response is nil"));
    }
    assert_eq!(rj(&sim, "GET", "/api/v1/tasks", None).await.0, 200, "without status the list works");
    c.disable_relay("a", Some(&stop_req(&["worker2"]))).await.unwrap();
    assert_eq!(c.task_status("t").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_relay_only_worker_shows_no_bound_source() {
    // R12.1: `bound_source_name` is the bound source only; a free worker relaying a source shows `relay` and "".
    let (_sim, c) = start(SimOptions { workers: 2, ..fast(Generation::V854) }).await;
    c.create_source(&source("a"), Some("worker1")).await.unwrap();
    c.enable_relay("a", Some(&relay_req(&["worker2"]))).await.unwrap();
    let w = c.list_workers().await.unwrap();
    assert_eq!((w[0].bound_stage.as_str(), w[0].bound_source_name.as_str()), ("bound", "a"));
    assert_eq!((w[1].bound_stage.as_str(), w[1].bound_source_name.as_str()), ("relay", ""));
    // Which source it relays shows only in the source's status.
    let listed = c.list_sources(true, Some(true)).await.unwrap();
    let names: BTreeSet<String> = listed[0]
        .status_list
        .iter()
        .flatten()
        .filter(|e| e.relay_status.is_some())
        .map(|e| e.worker_name.clone())
        .collect();
    assert_eq!(names, BTreeSet::from(["worker2".to_string()]));
}

#[tokio::test]
async fn an_offline_relay_worker_stays_a_relay_worker_and_does_not_answer() {
    // DM unbinds a worker that goes offline but keeps its relay (R12.5, R4.3): the source is still listed as
    // relaying, and the worker's status entry carries the RPC error (no worker name before v26.3, R8.13).
    let (sim, c) = start(SimOptions { workers: 3, ..fast(Generation::V854) }).await;
    c.create_source(&source("a"), Some("worker1")).await.unwrap();
    c.enable_relay("a", Some(&relay_req(&["worker2"]))).await.unwrap();
    sim.control().set_worker_offline("worker2", true).unwrap();
    assert_eq!(c.list_sources(false, Some(true)).await.unwrap().len(), 1, "still a relay worker");
    assert_eq!(worker_stage(&c, "worker2").await, "offline");
    let st = c.source_status("a").await.unwrap();
    assert_eq!(st.len(), 2, "{st:?}");
    let down = st.iter().find(|e| e.relay_status.is_none() && e.error_msg.is_some()).expect("an entry with an error");
    assert!(down.worker_name.is_empty() && down.error_msg.as_deref().unwrap().contains("code=38008"), "{down:?}");
    assert!(c.delete_source("a", true).await.unwrap_err().has_code(46023), "relay still blocks the delete");
}

#[tokio::test]
async fn a_relay_error_shows_as_a_paused_relay_with_the_message() {
    let (sim, c) = start(SimOptions { workers: 2, ..fast(Generation::V854) }).await;
    c.create_source(&source("a"), Some("worker1")).await.unwrap();
    c.enable_relay("a", None).await.unwrap();
    sim.control().set_relay_error("worker1", Some("[code=30034:class=relay] boom")).unwrap();
    let st = c.source_status("a").await.unwrap();
    assert_eq!(st[0].relay_status.as_ref().unwrap().stage, Stage::Paused);
    assert!(st[0].error_msg.as_deref().unwrap().starts_with("[code=30034"), "{st:?}");
    sim.control().set_relay_error("worker1", None).unwrap();
    assert_eq!(c.source_status("a").await.unwrap()[0].relay_status.as_ref().unwrap().stage, Stage::Running);
}

#[tokio::test]
async fn transfer_with_a_running_task_needs_every_subtask_in_sync_stopped_ones_too() {
    // R3.12: with a task expected Running, DM asks the old worker for all its subtasks; a stopped one still in Load
    // refuses the move as well (46019, naming the running tasks).
    let (sim, c) = start(SimOptions { workers: 3, ..fast(Generation::V854) }).await;
    c.create_source(&source("a"), Some("worker1")).await.unwrap();
    sim.control().set_stage_delay(Duration::from_millis(300));
    c.create_task(&task("loading", "all", &["a"])).await.unwrap();
    c.start_task("loading", &StartTaskRequest::default()).await.unwrap();
    c.stop_task("loading", &StopTaskRequest::default()).await.unwrap();
    sim.control().set_stage_delay(Duration::from_millis(1));
    c.create_task(&task("syncing", "incremental", &["a"])).await.unwrap();
    c.start_task("syncing", &StartTaskRequest::default()).await.unwrap();
    wait_stage(&c, "syncing", Stage::Running).await;
    let err = c.transfer_source("a", "worker2").await.unwrap_err();
    assert!(err.has_code(46019), "{err}");
    assert!(
        err.to_string().contains("running tasks [syncing] to be transferred on source a should in sync unit"),
        "{err}"
    );
    // Without a running task nothing is checked.
    c.stop_task("syncing", &StopTaskRequest::default()).await.unwrap();
    c.transfer_source("a", "worker2").await.unwrap();
}

#[tokio::test]
async fn create_on_a_named_worker_checks_the_worker_before_the_name() {
    // R3.1: with `worker_name`, 46004 and 46033 come before 46007.
    let (_sim, c) = start(SimOptions { workers: 2, ..fast(Generation::V854) }).await;
    c.create_source(&source("a"), Some("worker1")).await.unwrap();
    let err = c.create_source(&source("a"), Some("worker1")).await.unwrap_err();
    assert!(err.has_code(46033) && err.to_string().contains("dm-worker with name worker1 not free"), "{err}");
    assert!(c.create_source(&source("a"), Some("ghost")).await.unwrap_err().has_code(46004));
    assert!(c.create_source(&source("a"), Some("worker2")).await.unwrap_err().has_code(46007));
}

#[tokio::test]
async fn unbound_source_status_carries_a_38029_error() {
    let (sim, c) = start(SimOptions { workers: 1, ..fast(Generation::V854) }).await;
    c.create_source(&source("a"), None).await.unwrap();
    c.create_source(&source("b"), None).await.unwrap();
    let st = c.source_status("b").await.unwrap();
    assert_eq!(st[0].worker_name, "");
    let msg = st[0].error_msg.clone().unwrap_or_default();
    assert!(
        msg.starts_with(
            "[code=38029:class=dm-master:scope=internal:level=high], Message: b relevant worker-client not found"
        ),
        "{msg}"
    );
    let _ = sim;
}

#[tokio::test]
async fn unanswering_worker_shows_no_worker_name_before_v263() {
    for (g, want) in [(Generation::V854, ""), (Generation::V263, "worker1")] {
        let (sim, c) = with_sources(g, &["a"]).await;
        c.create_task(&task("t", "all", &["a"])).await.unwrap();
        sim.control().set_worker_unreachable("worker1", true).unwrap();
        let st = c.task_status("t").await.unwrap();
        assert_eq!(st[0].worker_name, want, "{g:?}");
        assert!(st[0].error_msg.as_deref().unwrap_or("").contains("code=38008"));
    }
}

// =========================================================================================== start/stop args (§8)

#[tokio::test]
async fn empty_start_time_and_safe_mode_duration_are_accepted_as_absent() {
    let (sim, c) = with_sources(Generation::V854, &["a"]).await;
    let mut t = task("t", "incremental", &["a"]);
    t.source_config.source_conf[0].binlog_name = None;
    t.source_config.source_conf[0].binlog_pos = None;
    c.create_task(&t).await.unwrap();
    // Without any start_time an incremental task without position is 20022; an empty one counts as given.
    assert!(c.start_task("t", &StartTaskRequest::default()).await.unwrap_err().has_code(20022));
    let body = json!({"start_time": "", "safe_mode_time_duration": ""});
    assert_eq!(rj(&sim, "POST", "/api/v1/tasks/t/start", Some(body)).await.0, 200);
    assert_eq!(sim.control().snapshot()["tasks"]["t"]["cli_args"]["start_time"], json!(""));
}

#[tokio::test]
async fn empty_stop_timeout_duration_is_accepted() {
    let (sim, c) = with_sources(Generation::V854, &["a"]).await;
    c.create_task(&task("t", "all", &["a"])).await.unwrap();
    assert_eq!(rj(&sim, "POST", "/api/v1/tasks/t/stop", Some(json!({"timeout_duration": ""}))).await.0, 200);
}

#[tokio::test]
async fn invalid_durations_are_plain_errors_with_code_0() {
    let (sim, c) = with_sources(Generation::V854, &["a"]).await;
    c.create_task(&task("t", "all", &["a"])).await.unwrap();
    let (code, v) = rj(&sim, "POST", "/api/v1/tasks/t/start", Some(json!({"safe_mode_time_duration": "ten"}))).await;
    assert_eq!((code, error_code(&v)), (400, 0), "{v}");
    assert_eq!(
        error_msg(&v),
        "while converting task command line arguments: error while parse safe-mode-duration, expected in the format like '1s' or '1h': time: invalid duration \"ten\""
    );
    let (code, v) = rj(&sim, "POST", "/api/v1/tasks/t/stop", Some(json!({"timeout_duration": "10"}))).await;
    assert_eq!((code, error_code(&v)), (400, 0), "{v}");
    assert!(error_msg(&v).ends_with("stop_wait_timeout_duration, expected in the format like '1s' or '1h': time: missing unit in duration \"10\""), "{v}");
}

#[tokio::test]
async fn start_time_zone_suffix_refused_on_v85_accepted_from_v263() {
    for g in Generation::ALL {
        let (sim, c) = with_sources(g, &["a"]).await;
        c.create_task(&task("t", "all", &["a"])).await.unwrap();
        for st in ["2024-05-01T10:00:00+04:00", "2024-05-01 10:00:00Z", "2024-05-01T10:00:00+0400"] {
            let (code, v) = rj(&sim, "POST", "/api/v1/tasks/t/start", Some(json!({"start_time": st}))).await;
            let want = if g.name().starts_with("v8.5") { 400 } else { 200 };
            assert_eq!(code, want, "{g:?} {st}: {v}");
            if code == 400 {
                assert_eq!(error_code(&v), 0);
                assert!(error_msg(&v).contains(&format!("parsing time \"{st}\"")), "{v}");
            }
        }
        let (code, v) =
            rj(&sim, "POST", "/api/v1/tasks/t/start", Some(json!({"start_time": "2024-05-01 10:00:00"}))).await;
        assert_eq!(code, 200, "{g:?}: {v}");
    }
}

#[tokio::test]
async fn stop_of_an_unknown_task_with_a_source_list_is_46016() {
    let (sim, _c) = with_sources(Generation::V854, &["a"]).await;
    let (code, v) = rj(&sim, "POST", "/api/v1/tasks/ghost/stop", Some(json!({"source_name_list": ["a"]}))).await;
    assert_eq!((code, error_code(&v)), (400, 46016), "{v}");
    assert!(error_msg(&v).contains("subtasks with name ghost need to be operate not exist"));
    assert_eq!(rj(&sim, "POST", "/api/v1/tasks/ghost/stop", None).await.0, 200, "without a list: a no-op");
}

// =========================================================================================== smaller facts

#[tokio::test]
async fn source_echoes_carry_security_null() {
    let (sim, _c) = start(fast(Generation::V854)).await;
    let src = json!({"source_name": "a", "host": "a.db", "port": 3306, "user": "u", "password": "p", "enable": true, "enable_gtid": false});
    let (code, v) = rj(&sim, "POST", "/api/v1/sources", Some(json!({"source": src.clone()}))).await;
    assert_eq!(code, 201);
    assert!(v.as_object().unwrap().contains_key("security") && v["security"].is_null(), "{v}");
    let (code, v) = rj(&sim, "PUT", "/api/v1/sources/a", Some(json!({"source": src}))).await;
    assert_eq!(code, 200);
    assert!(v.as_object().unwrap().contains_key("security") && v["security"].is_null(), "{v}");
}

#[tokio::test]
async fn add_subtasks_checks_46014_before_46009() {
    let (sim, c) = start(SimOptions { workers: 1, ..fast(Generation::V854) }).await;
    c.create_source(&source("a"), None).await.unwrap();
    c.create_task(&task("t", "all", &["a"])).await.unwrap();
    sim.control().set_worker_offline("worker1", true).unwrap();
    assert!(c.create_task(&task("t", "all", &["a"])).await.unwrap_err().has_code(46014));
    let err = c.create_task(&task("u", "all", &["a"])).await.unwrap_err();
    assert!(err.has_code(46009) && err.to_string().contains("sources [a] have not bound"), "{err}");
}

#[tokio::test]
async fn removing_an_unknown_master_is_38048() {
    let (_sim, c) = start(fast(Generation::V854)).await;
    let err = c.offline_master("master9").await.unwrap_err();
    assert!(err.has_code(38048) && err.to_string().contains("dm-master with name master9 not exists"), "{err}");
}

#[tokio::test]
async fn head_table_structure_schema_source_and_sql_content_must_agree() {
    let (sim, c) = with_sources(Generation::Head, &["a"]).await;
    let path = "/api/v1/tasks/t/sources/a/schemas/shop/orders";
    // Checked before the worker is asked: even for an unknown task.
    for body in [
        json!({"schema_source": "upstream", "sql_content": "CREATE TABLE x (id int)"}),
        json!({"schema_source": "downstream", "sql_content": ""}),
        json!({"schema_source": "sql", "sql_content": "  "}),
    ] {
        let (code, v) = rj(&sim, "PUT", path, Some(body.clone())).await;
        assert_eq!((code, error_code(&v)), (400, 49001), "{body}: {v}");
    }
    synced_and_stopped(&c, &task("t", "all", &["a"])).await;
    assert_eq!(rj(&sim, "PUT", path, Some(json!({"schema_source": "upstream"}))).await.0, 200);
    assert_eq!(rj(&sim, "PUT", path, Some(json!({"sql_content": "CREATE TABLE orders (id int)"}))).await.0, 200);
}

#[tokio::test]
async fn v85_table_structure_requires_sql_content_and_ignores_schema_source() {
    let (sim, c) = with_sources(Generation::V854, &["a"]).await;
    synced_and_stopped(&c, &task("t", "all", &["a"])).await;
    let path = "/api/v1/tasks/t/sources/a/schemas/shop/orders";
    let (code, v) = rj(&sim, "PUT", path, Some(json!({"schema_source": "upstream", "sync": true}))).await;
    assert_eq!(code, 400);
    assert!(v["error"].as_str().unwrap_or("").contains("property \"sql_content\" is missing"), "{v}");
    let body = json!({"schema_source": "upstream", "sql_content": "CREATE TABLE orders (id bigint)", "sync": true});
    assert_eq!(rj(&sim, "PUT", path, Some(body)).await.0, 200, "schema_source is an unknown property: ignored");
    let (code, v) = rj(&sim, "PUT", path, Some(json!({"sql_content": "DROP TABLE orders", "sync": true}))).await;
    assert_eq!((code, error_code(&v)), (400, 49001), "{v}");
    assert!(error_msg(&v).contains("code=44009"), "{v}");
}

#[tokio::test]
async fn table_structure_needs_a_paused_subtask_in_the_sync_unit() {
    let (sim, c) = with_sources(Generation::V854, &["a"]).await;
    c.create_task(&task("t", "all", &["a"])).await.unwrap();
    let err = c.task_source_schemas("t", "a").await.unwrap_err();
    assert!(err.has_code(49001) && err.to_string().contains("code=40051"), "never started: {err}");
    c.start_task("t", &StartTaskRequest::default()).await.unwrap();
    wait_stage(&c, "t", Stage::Running).await;
    wait_unit(&c, "t", Unit::Sync).await;
    assert!(c.task_source_schemas("t", "a").await.unwrap_err().to_string().contains("but not paused"));
    assert!(c.migrate_targets("t", "a", None, None).await.is_ok(), "migrate targets accept Running");
    c.stop_task("t", &StopTaskRequest::default()).await.unwrap();
    wait_stage(&c, "t", Stage::Paused).await;
    assert!(!c.task_source_schemas("t", "a").await.unwrap().is_empty());
    let (code, v) = rj(&sim, "GET", "/api/v1/tasks/t/sources/nope/schemas", None).await;
    assert_eq!((code, error_code(&v)), (400, 40070), "an unknown source has no worker: {v}");
    let (code, v) = rj(&sim, "GET", "/api/v1/tasks/ghost/sources/a/schemas", None).await;
    assert!(code == 400 && error_msg(&v).contains("code=40054"), "{v}");
}

// =========================================================================================== table matching (§13)

/// A task on source `a` with these rules, created, started and left running in the Sync unit.
async fn running_with_rules(c: &DmClient, name: &str, rules: Value) {
    let mut t = task(name, "incremental", &["a"]);
    t.table_migrate_rule = serde_json::from_value(rules).unwrap();
    c.create_task(&t).await.unwrap();
    c.start_task(name, &StartTaskRequest::default()).await.unwrap();
    wait_stage(c, name, Stage::Running).await;
}

async fn targets_of(c: &DmClient, name: &str, schema: Option<&str>, table: Option<&str>) -> Vec<String> {
    let mut v: Vec<String> = c
        .migrate_targets(name, "a", schema, table)
        .await
        .unwrap()
        .into_iter()
        .map(|m| format!("{}.{}>{}.{}", m.source_schema, m.source_table, m.target_schema, m.target_table))
        .collect();
    v.sort();
    v
}

fn cat(entries: &[(&str, &[&str])]) -> std::collections::BTreeMap<String, Vec<String>> {
    entries.iter().map(|(s, t)| (s.to_string(), t.iter().map(|x| x.to_string()).collect())).collect()
}

fn r(schema: &str, table: &str) -> Value {
    json!({"source": {"source_name": "a", "schema": schema, "table": table}})
}

fn rt(schema: &str, table: &str, ts: &str, tt: &str) -> Value {
    json!({"source": {"source_name": "a", "schema": schema, "table": table}, "target": {"schema": ts, "table": tt}})
}

/// R13.7 (2): with schema rules and table rules on one source, a table must match one of each.
#[tokio::test]
async fn r13_7_schema_and_table_rules_must_both_match() {
    let (sim, c) = with_sources(Generation::V854, &["a"]).await;
    sim.control().set_catalog("a", cat(&[("shop", &["orders", "items"]), ("crm", &["accounts"])]));
    running_with_rules(&c, "both", json!([r("shop", ""), r("crm", "accounts")])).await;
    assert!(targets_of(&c, "both", None, None).await.is_empty(), "neither crm.accounts nor shop.* matches both");
    running_with_rules(&c, "narrow", json!([r("shop", ""), r("shop", "ord*")])).await;
    assert_eq!(targets_of(&c, "narrow", None, None).await, ["shop.orders>shop.orders"]);
    running_with_rules(&c, "dbs", json!([r("shop", ""), r("crm", "")])).await;
    assert_eq!(targets_of(&c, "dbs", None, None).await.len(), 3, "schema rules alone: every table of them");
}

/// R13.7 (7), R13.7 (1): no rules replicate everything except system schemas, which no rule can reach.
#[tokio::test]
async fn r13_7_system_schemas_are_never_replicated() {
    let (sim, c) = with_sources(Generation::V854, &["a"]).await;
    sim.control().set_catalog("a", cat(&[("mysql", &["user"]), ("Sys", &["x"]), ("app", &["t"])]));
    running_with_rules(&c, "all", json!([])).await;
    assert_eq!(targets_of(&c, "all", None, None).await, ["app.t>app.t"]);
    running_with_rules(&c, "sys", json!([r("mysql", "*")])).await;
    assert!(targets_of(&c, "sys", None, None).await.is_empty());
}

/// R13.7 (8): table-level routes before schema-level ones; two on one level keep the table's own name.
#[tokio::test]
async fn r13_7_routes_table_level_first_and_ambiguity_keeps_the_name() {
    let (sim, c) = with_sources(Generation::V854, &["a"]).await;
    sim.control().set_catalog("a", cat(&[("shop", &["orders", "order_items", "items"])]));
    running_with_rules(
        &c,
        "t",
        json!([rt("shop", "", "all", ""), rt("shop", "orders", "one", "o"), rt("shop", "order*", "two", "o")]),
    )
    .await;
    // Both lists are non-empty (`shop`, and the table rules): `items` matches no table rule.
    assert_eq!(targets_of(&c, "t", None, None).await, ["shop.order_items>two.o", "shop.orders>shop.orders"]);
    running_with_rules(&c, "s", json!([rt("shop", "", "all", ""), rt("sh*", "", "b", "")])).await;
    assert_eq!(targets_of(&c, "s", None, None).await.len(), 3);
    assert!(targets_of(&c, "s", None, None).await.iter().all(|x| x.contains(">shop.")), "ambiguous: own names");
    running_with_rules(&c, "one", json!([rt("shop", "", "All", "")])).await;
    assert_eq!(targets_of(&c, "one", Some("^shop$"), Some("^orders$")).await, ["shop.orders>All.orders"]);
}

/// R13.7 (3)-(5): wildcards as DM reads them, regexes, and the regex-schema / wildcard-table quirk.
#[tokio::test]
async fn r13_7_wildcards_regexes_and_the_mixed_entry_quirk() {
    let (sim, c) = with_sources(Generation::V854, &["a"]).await;
    sim.control().set_catalog("a", cat(&[("a1", &["x1", "y1", "z1"]), ("b1", &["x1", "y1"]), ("t_7", &["t"])]));
    running_with_rules(&c, "q", json!([r("~^a", "x*"), r("~^b", "y*")])).await;
    assert_eq!(
        targets_of(&c, "q", None, None).await,
        ["a1.x1>a1.x1", "a1.y1>a1.y1", "b1.x1>b1.x1", "b1.y1>b1.y1"],
        "a schema matching one regex takes the table wildcards of every such entry"
    );
    running_with_rules(&c, "g", json!([r("t_[0-9]", "?")])).await;
    assert_eq!(targets_of(&c, "g", None, None).await, ["t_7.t>t_7.t"]);
    let mut bad = task("bad", "incremental", &["a"]);
    bad.table_migrate_rule = serde_json::from_value(json!([r("a*1", "")])).unwrap();
    assert!(c.create_task(&bad).await.is_err(), "`*` must be last: DM refuses the task");
}

/// R13.7 (6), R9.7: a case-insensitive upstream lists lower-case names, stores patterns (routes too) lowercased,
/// keeps route targets as written.
#[tokio::test]
async fn r13_7_case_insensitive_upstreams_lowercase_patterns_and_names() {
    let (sim, c) = start(fast(Generation::V854)).await;
    let mut s = source("a");
    s.host = "lower-case-a.db.internal".into();
    c.create_source(&s, None).await.unwrap();
    sim.control().set_catalog("a", cat(&[("Shop", &["Orders", "Items"])]));
    assert_eq!(c.source_schemas("a").await.unwrap(), ["shop"]);
    assert_eq!(c.source_tables("a", "shop").await.unwrap(), ["items", "orders"]);
    running_with_rules(&c, "t", json!([rt("Shop", "Orders", "Dst", "")])).await;
    assert_eq!(targets_of(&c, "t", None, None).await, ["shop.orders>Dst.orders"]);
    let got = c.get_task("t", false).await.unwrap().unwrap();
    let rule = &got.table_migrate_rule[0];
    assert_eq!((rule.source.schema.as_str(), rule.source.table.as_str()), ("shop", "orders"));
    assert_eq!(rule.target.as_ref().and_then(|t| t.schema.as_deref()), Some("Dst"));
}

/// R13.6: the patterns of migrate targets are regular expressions; R13.7 (9): the tracker lists a table whose
/// structure was set, whatever the rules.
#[tokio::test]
async fn r13_6_migrate_target_patterns_are_regexes_and_the_tracker_keeps_set_structures() {
    let (sim, c) = with_sources(Generation::V854, &["a"]).await;
    sim.control().set_catalog("a", cat(&[("shop", &["orders", "order_items", "customers"]), ("crm", &["x"])]));
    running_with_rules(&c, "t", json!([r("shop", "")])).await;
    assert_eq!(targets_of(&c, "t", None, Some("^order")).await.len(), 2);
    assert_eq!(
        targets_of(&c, "t", None, Some("rs$")).await,
        ["shop.customers>shop.customers", "shop.orders>shop.orders"]
    );
    let err = c.migrate_targets("t", "a", None, Some("*")).await.unwrap_err();
    assert!(err.has_code(49001), "not a regular expression: {err}");
    c.stop_task("t", &StopTaskRequest::default()).await.unwrap();
    wait_stage(&c, "t", Stage::Paused).await;
    let put = OperateTableStructureRequest {
        sql_content: Some("CREATE TABLE ghost (id int primary key)".into()),
        flush: Some(true),
        sync: Some(false),
        ..Default::default()
    };
    c.put_table_structure("t", "a", "crm", "ghost", &put).await.unwrap();
    assert!(targets_of(&c, "t", Some("^crm$"), None).await.contains(&"crm.ghost>crm.ghost".to_string()));
}

// ======================================================================================= PingCAP's own openapi tests

/// dm/tests/openapi `do_complex_operations`, re-stated: read back a source and a task and write them back as
/// read, on a v8.5 master.
#[tokio::test]
async fn pingcap_complex_operations_round_trip_read_backs() {
    for g in [Generation::V853, Generation::V854] {
        let (sim, c) = with_sources(g, &["a", "b"]).await;
        let t = task("t", "all", &["a", "b"]);
        c.create_task(&t).await.unwrap();
        c.start_task("t", &StartTaskRequest::default()).await.unwrap();
        wait_stage(&c, "t", Stage::Running).await;
        wait_unit(&c, "t", Unit::Sync).await;
        let (_, mut src) = rj(&sim, "GET", "/api/v1/sources/a", None).await;
        assert_eq!(
            rj(&sim, "PUT", "/api/v1/sources/a", Some(json!({"source": src.clone()}))).await.0,
            400,
            "{g:?}: 46025"
        );
        let (_, mut got) = rj(&sim, "GET", "/api/v1/tasks/t", None).await;
        let (code, v) = rj(&sim, "PUT", "/api/v1/tasks/t", Some(json!({"task": got.clone()}))).await;
        assert_eq!((code, error_code(&v)), (400, 46035), "{g:?}: running");
        assert_eq!(rj(&sim, "POST", "/api/v1/tasks/t/stop", None).await.0, 200);
        wait_stage(&c, "t", Stage::Paused).await;
        got["source_config"]["incr_migrate_conf"]["repl_threads"] = json!(1);
        let (code, v) = rj(&sim, "PUT", "/api/v1/tasks/t", Some(json!({"task": got}))).await;
        assert_eq!(code, 200, "{g:?}: the short v8.5 read-back writes back unchanged: {v}");
        let (_, after) = rj(&sim, "GET", "/api/v1/tasks/t", None).await;
        assert_eq!(after["source_config"]["incr_migrate_conf"]["repl_threads"], json!(1));
        assert_eq!(rj(&sim, "POST", "/api/v1/tasks/t/start", None).await.0, 200);
        wait_stage(&c, "t", Stage::Running).await;
        assert_eq!(rj(&sim, "POST", "/api/v1/sources/a/disable", None).await.0, 200);
        for _ in 0..200 {
            let st = c.task_status("t").await.unwrap();
            if st.iter().all(|s| s.stage == if s.source_name == "a" { Stage::Paused } else { Stage::Running }) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        src["enable_gtid"] = json!(true);
        src["password"] = json!("123456");
        let (code, v) = rj(&sim, "PUT", "/api/v1/sources/a", Some(json!({"source": src}))).await;
        assert_eq!(code, 200, "{g:?}: {v}");
        assert_eq!(rj(&sim, "POST", "/api/v1/sources/a/enable", None).await.0, 200);
        wait_stage(&c, "t", Stage::Running).await;
        let (code, v) = rj(&sim, "GET", "/api/v1/tasks/t/sources/a/migrate_targets", None).await;
        assert_eq!(code, 200, "{v}");
    }
}

/// dm/tests/openapi `test_relay`, re-stated.
#[tokio::test]
async fn pingcap_relay_sequence() {
    let (sim, c) = start(SimOptions { workers: 2, ..fast(Generation::V854) }).await;
    c.create_source(&source("mysql-01"), None).await.unwrap();
    c.transfer_source("mysql-01", "worker1").await.unwrap();
    let (code, _) =
        rj(&sim, "POST", "/api/v1/sources/mysql-01/relay/enable", Some(json!({"worker_name_list": ["no-worker"]})))
            .await;
    assert_eq!(code, 400);
    let purge = json!({"purge": {"interval": 3600, "expires": 0, "remain_space": 15}});
    assert_eq!(rj(&sim, "POST", "/api/v1/sources/mysql-01/relay/enable", Some(purge.clone())).await.0, 200);
    assert_eq!(rj(&sim, "GET", "/api/v1/sources/no-mysql/status", None).await.0, 400);
    let st = c.source_status("mysql-01").await.unwrap();
    assert!(st.len() == 1 && st[0].relay_status.is_some());
    let (code, _) =
        rj(&sim, "POST", "/api/v1/sources/mysql-01/relay/disable", Some(json!({"worker_name_list": ["no-worker"]})))
            .await;
    assert_eq!(code, 400);
    let purge_req = json!({"relay_binlog_name": "mysql-bin.000001", "relay_dir": ""});
    assert_eq!(rj(&sim, "POST", "/api/v1/sources/mysql-01/relay/purge", Some(purge_req)).await.0, 200);
    c.disable_relay("mysql-01", Some(&stop_req(&["worker1"]))).await.unwrap();
    assert!(c.source_status("mysql-01").await.unwrap()[0].relay_status.is_none());
    let two = json!({"worker_name_list": ["worker1", "worker2"], "purge": {"interval": 3600}});
    assert_eq!(rj(&sim, "POST", "/api/v1/sources/mysql-01/relay/enable", Some(two)).await.0, 200);
    let listed = c.list_sources(true, None).await.unwrap();
    assert_eq!(listed[0].status_list.as_ref().unwrap().len(), 2);
    let st = c.source_status("mysql-01").await.unwrap();
    assert!(st.len() == 2 && st.iter().all(|s| s.relay_status.is_some()), "{st:?}");
    c.disable_relay("mysql-01", Some(&stop_req(&["worker1"]))).await.unwrap();
    c.disable_relay("mysql-01", Some(&stop_req(&["worker2"]))).await.unwrap();
    c.delete_source("mysql-01", false).await.unwrap();
}

/// dm/tests/openapi `test_task_templates`, re-stated.
#[tokio::test]
async fn pingcap_template_sequence() {
    let (sim, c) = with_sources(Generation::V854, &["mysql-01", "mysql-02"]).await;
    let mut bad = serde_json::to_value(task("test", "all", &["mysql-01", "mysql-02"])).unwrap();
    bad["shard_mode"] = json!("pessimistic_xxd");
    assert_eq!(rj(&sim, "POST", "/api/v1/tasks/templates", Some(bad)).await.0, 400);
    let mut t = task("test-1", "all", &["mysql-01", "mysql-02"]);
    t.shard_mode = Some("pessimistic".into());
    c.create_template(&t).await.unwrap();
    assert_eq!(c.list_templates().await.unwrap().len(), 1);
    let (_, mut got) = rj(&sim, "GET", "/api/v1/tasks/templates/test-1", None).await;
    got["task_mode"] = json!("full");
    assert_eq!(rj(&sim, "PUT", "/api/v1/tasks/templates/test-1", Some(got)).await.0, 200);
    assert_eq!(c.get_template("test-1").await.unwrap().unwrap().task_mode, "full");
    c.delete_template("test-1").await.unwrap();
    assert!(c.list_templates().await.unwrap().is_empty());
    c.create_task(&task("test-1", "all", &["mysql-01", "mysql-02"])).await.unwrap();
    let (code, v) = rj(&sim, "POST", "/api/v1/tasks/templates/import", None).await;
    assert_eq!(
        (code, v["success_task_list"].clone(), v["failed_task_list"].clone()),
        (202, json!(["test-1"]), json!([]))
    );
    assert_eq!(c.list_templates().await.unwrap().len(), 1);
}

/// dm/tests/openapi `test_delete_task_with_stopped_downstream`, re-stated: the downstream refuses connections.
#[tokio::test]
async fn pingcap_delete_task_with_stopped_downstream() {
    for (g, plain_delete) in [(Generation::V854, 400), (Generation::Head, 204)] {
        let (sim, c) = with_sources(g, &["mysql-01", "mysql-02"]).await;
        c.create_task(&task("test-no-shard", "all", &["mysql-01", "mysql-02"])).await.unwrap();
        sim.control().patch_task("test-no-shard", json!({"target_config": {"host": "tidb.unreachable"}})).unwrap();
        assert_eq!(rj(&sim, "DELETE", "/api/v1/tasks/test-no-shard", None).await.0, plain_delete, "{g:?}");
        if plain_delete == 400 {
            assert_eq!(rj(&sim, "DELETE", "/api/v1/tasks/test-no-shard?force=true", None).await.0, 204);
        }
        assert!(c.list_tasks(false, None, &[]).await.unwrap().is_empty());
    }
}

/// dm/tests/openapi `start_task_with_condition`: the clients send `"safe_mode_time_duration": ""`.
#[tokio::test]
async fn pingcap_start_with_start_time_and_empty_duration() {
    let (sim, c) = with_sources(Generation::V854, &["mysql-01"]).await;
    let mut t = task("incremental_task_use_start_time", "incremental", &["mysql-01"]);
    t.source_config.source_conf[0].binlog_name = None;
    t.source_config.source_conf[0].binlog_pos = None;
    c.create_task(&t).await.unwrap();
    let body = json!({"start_time": "2026-04-17 08:00:00", "safe_mode_time_duration": ""});
    assert_eq!(rj(&sim, "POST", "/api/v1/tasks/incremental_task_use_start_time/start", Some(body)).await.0, 200);
    wait_stage(&c, "incremental_task_use_start_time", Stage::Running).await;
}

/// dm/tests/openapi `test_cluster`: an online worker cannot be removed; a removed master is gone.
#[tokio::test]
async fn pingcap_cluster_sequence() {
    let (sim, c) = start(fast(Generation::V854)).await;
    assert_eq!(c.list_masters().await.unwrap().len(), 1);
    assert!(c.offline_worker("worker1").await.unwrap_err().has_code(46005));
    sim.control().set_worker_offline("worker1", true).unwrap();
    c.offline_worker("worker1").await.unwrap();
    assert_eq!(c.list_workers().await.unwrap().len(), 2);
    c.offline_master("master1").await.unwrap();
    assert!(c.offline_master("master1").await.unwrap_err().to_string().contains("not exists"));
}

#[tokio::test]
async fn a_hosts_entry_makes_a_reserved_name_resolve() {
    let (sim, c) = start(fast(Generation::V854)).await;
    let mut t = task("tpl", "all", &["a"]);
    t.target_config.host = "state.invalid".into();
    assert!(c.create_template(&t).await.unwrap_err().has_code(10001));
    assert_eq!(rj(&sim, "PUT", "/sim/downstream/hosts", Some(json!({"host": "state.invalid"}))).await.0, 200);
    c.create_template(&t).await.unwrap();
    assert_eq!(sim.control().snapshot()["downstream"]["hosts_entries"], json!(["state.invalid"]));
}
