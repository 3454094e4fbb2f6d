//! Drive every `DmClient` method against `DM_APPLY_ADDR` (a fresh `dm-apply sim`, usually behind the Prism
//! validating proxy of `../shared/conformance/prism-proxy.sh`). Ignored by default: it needs the external
//! processes. See docs/simulator.md "Conformance" for the commands and the recorded result.
//!
//!     DM_APPLY_ADDR=http://127.0.0.1:4010 cargo test --test sim client_conformance -- --ignored --nocapture

use std::time::Duration;

use dm_apply::dm::types::*;
use dm_apply::dm::{ClientOptions, DmClient, DmError};
use dm_apply::secret::Secret;

fn source(name: &str) -> Source {
    Source {
        source_name: name.into(),
        host: format!("{name}.db.internal"),
        port: 3306,
        user: "dm".into(),
        password: Some(Secret::new("pw")),
        enable_gtid: false,
        enable: true,
        ..Default::default()
    }
}

fn task(name: &str, sources: &[&str]) -> Task {
    Task {
        name: name.into(),
        task_mode: "all".into(),
        meta_schema: Some("dm_meta".into()),
        enhance_online_schema_change: true,
        on_duplicate: "replace".into(),
        target_config: TargetConfig {
            host: "tidb.internal".into(),
            port: 4000,
            user: "root".into(),
            password: Secret::new(""),
            ..Default::default()
        },
        table_migrate_rule: sources
            .iter()
            .map(|s| TableMigrateRule {
                source: TableRuleSource { source_name: s.to_string(), schema: "shop".into(), table: String::new() },
                target: Some(TableRuleTarget { schema: Some("shop".into()), table: None }),
                binlog_filter_rule: None,
            })
            .collect(),
        source_config: TaskSourceConfig {
            full_migrate_conf: Some(FullMigrateConf {
                on_duplicate_logical: Some("replace".into()),
                ..Default::default()
            }),
            incr_migrate_conf: Some(IncrMigrateConf { repl_threads: Some(16), repl_batch: Some(100), safe_mode: None }),
            source_conf: sources
                .iter()
                .map(|s| TaskSourceConf { source_name: s.to_string(), ..Default::default() })
                .collect(),
        },
        ..Default::default()
    }
}

struct Run {
    failures: Vec<String>,
}

impl Run {
    fn ok<T>(&mut self, what: &str, r: Result<T, DmError>) -> Option<T> {
        match r {
            Ok(v) => {
                eprintln!("ok    {what}");
                Some(v)
            }
            Err(e) => {
                eprintln!("FAIL  {what}: {e}");
                self.failures.push(format!("{what}: {e}"));
                None
            }
        }
    }

    /// A call whose answer differs from dm.yaml on purpose (docs/simulator.md "Conformance"): behind Prism with
    /// `--errors` it fails with Prism's own error, which is accepted here; any other failure counts.
    fn known<T>(&mut self, what: &str, why: &str, r: Result<T, DmError>) {
        match r {
            Ok(_) => eprintln!("ok    {what}"),
            Err(e) if e.to_string().contains("stoplight.io/prism") => eprintln!("known {what}: {why}"),
            Err(e) => {
                eprintln!("FAIL  {what}: {e}");
                self.failures.push(format!("{what}: {e}"));
            }
        }
    }

    /// A call expected to be refused by DM (the refusal itself is what the spec's 400 describes).
    fn refused<T: std::fmt::Debug>(&mut self, what: &str, code: i64, r: Result<T, DmError>) {
        match r {
            Err(e) if e.code() == Some(code) => eprintln!("ok    {what} (refused {code})"),
            other => {
                eprintln!("FAIL  {what}: expected DM error {code}, got {other:?}");
                self.failures.push(format!("{what}: expected {code}"));
            }
        }
    }
}

async fn wait_running(c: &DmClient, name: &str) {
    for _ in 0..300 {
        if let Ok(st) = c.task_status(name).await
            && !st.is_empty()
            && st.iter().all(|s| s.stage == Stage::Running && s.unit == Unit::Sync)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
#[ignore = "needs DM_APPLY_ADDR pointing at a fresh simulator (optionally behind Prism)"]
async fn every_client_method_against_dm_apply_addr() {
    let addr = std::env::var("DM_APPLY_ADDR").unwrap_or_else(|_| "http://127.0.0.1:4010".into());
    let c = DmClient::new(&ClientOptions::new(addr)).unwrap();
    let mut run = Run { failures: vec![] };

    run.known(
        "server_version",
        "GET /status is not an OpenAPI operation (docs/dm-behaviour.md §2)",
        c.server_version().await.map(|v| v.raw.clone()),
    );
    run.ok("create_source", c.create_source(&source("mysql-01"), None).await);
    run.ok("create_source worker_name", c.create_source(&source("mysql-02"), Some("worker3")).await);
    run.ok("list_sources", c.list_sources(false, None).await);
    run.ok("list_sources with_status", c.list_sources(true, None).await);
    run.ok("list_sources enable_relay", c.list_sources(false, Some(true)).await);
    run.ok("get_source", c.get_source("mysql-01", true).await);
    run.ok("get_source absent", c.get_source("ghost", false).await);
    let mut upd = source("mysql-01");
    upd.password = None;
    run.ok("update_source", c.update_source(&upd).await);
    run.ok("source_status", c.source_status("mysql-01").await);
    run.ok("disable_source", c.disable_source("mysql-01").await);
    run.ok("enable_source", c.enable_source("mysql-01").await);
    run.ok("transfer_source", c.transfer_source("mysql-02", "worker2").await);
    run.ok("enable_relay no body", c.enable_relay("mysql-02", None).await);
    run.ok(
        "purge_relay",
        c.purge_relay("mysql-02", &PurgeRelayRequest { relay_binlog_name: "mysql-bin.000002".into(), relay_dir: None })
            .await,
    );
    run.ok("disable_relay no body", c.disable_relay("mysql-02", None).await);
    run.ok(
        "enable_relay body",
        c.enable_relay(
            "mysql-02",
            Some(&EnableRelayRequest { worker_name_list: Some(vec!["worker2".into()]), ..Default::default() }),
        )
        .await,
    );
    run.ok(
        "disable_relay body",
        c.disable_relay("mysql-02", Some(&DisableRelayRequest { worker_name_list: Some(vec!["worker2".into()]) }))
            .await,
    );
    run.ok("source_schemas", c.source_schemas("mysql-01").await);
    run.ok("source_tables", c.source_tables("mysql-01", "shop").await);

    let t = task("orders", &["mysql-01", "mysql-02"]);
    run.ok("create_task", c.create_task(&t).await);
    run.refused("create_task again", 46014, c.create_task(&t).await);
    run.ok("list_tasks", c.list_tasks(false, None, &[]).await);
    run.ok("list_tasks with_status stage", c.list_tasks(true, Some("Stopped"), &[]).await);
    run.ok("list_tasks source_name_list", c.list_tasks(false, None, &["mysql-01".into(), "mysql-02".into()]).await);
    run.ok("get_task", c.get_task("orders", true).await);
    run.ok("get_task absent", c.get_task("ghost", false).await);
    run.ok("task_status", c.task_status("orders").await);
    run.ok("start_task", c.start_task("orders", &StartTaskRequest::default()).await);
    wait_running(&c, "orders").await;
    run.ok(
        "start_task body",
        c.start_task(
            "orders",
            &StartTaskRequest {
                source_name_list: Some(vec!["mysql-01".into()]),
                safe_mode_time_duration: Some("10s".into()),
                ..Default::default()
            },
        )
        .await,
    );
    run.ok("migrate_targets", c.migrate_targets("orders", "mysql-01", Some("^shop$"), Some(".*")).await);
    run.ok("task_source_schemas", c.task_source_schemas("orders", "mysql-01").await);
    run.ok("task_source_tables", c.task_source_tables("orders", "mysql-01", "shop").await);
    run.known(
        "get_table_structure",
        "the spec requires `table_create_sql`, the server sends `schema_create_sql`",
        c.get_table_structure("orders", "mysql-01", "shop", "orders").await,
    );
    let put = OperateTableStructureRequest {
        schema_source: Some("sql".into()),
        sql_content: Some("CREATE TABLE orders (id int primary key)".into()),
        flush: Some(true),
        sync: Some(true),
    };
    run.ok("put_table_structure", c.put_table_structure("orders", "mysql-01", "shop", "orders", &put).await);
    run.ok("delete_table_structure", c.delete_table_structure("orders", "mysql-01", "shop", "orders").await);
    run.ok(
        "stop_task body",
        c.stop_task("orders", &StopTaskRequest { timeout_duration: Some("15s".into()), source_name_list: None }).await,
    );
    run.ok("stop_task", c.stop_task("orders", &StopTaskRequest::default()).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut u = t.clone();
    u.source_config.incr_migrate_conf =
        Some(IncrMigrateConf { repl_threads: Some(8), repl_batch: Some(200), safe_mode: None });
    run.ok("update_task", c.update_task(&u).await);
    run.known(
        "convert_task",
        "the server answers 200, the spec says 201 (docs/dm-behaviour.md §2)",
        c.convert_task(&ConverterTaskRequest { task: Some(t.clone()), task_config_file: None }).await,
    );

    let tpl = task("tpl", &["mysql-01"]);
    run.ok("create_template", c.create_template(&tpl).await);
    run.ok("list_templates", c.list_templates().await);
    run.ok("get_template", c.get_template("tpl").await);
    run.known(
        "update_template",
        "the spec declares no requestBody, the server's handler binds a Task from it",
        c.update_template(&tpl).await,
    );
    run.ok("delete_template", c.delete_template("tpl").await);

    run.ok("list_masters", c.list_masters().await);
    run.ok("list_workers", c.list_workers().await);
    run.refused("offline_worker online", 46005, c.offline_worker("worker1").await);
    let info = run.ok("cluster_info", c.cluster_info().await);
    let topo = serde_json::json!({"master_topology_list": [{"name": "master1", "host": "127.0.0.1", "port": 8261}]});
    run.ok(
        "update_cluster_info",
        c.update_cluster_info(&ClusterInfo {
            cluster_id: info.map(|i| i.cluster_id).unwrap_or(0),
            topology: Some(topo),
        })
        .await,
    );

    run.ok("delete_task", c.delete_task("orders", true, true).await);
    run.ok("delete_source", c.delete_source("mysql-02", false).await);
    run.ok("delete_source force", c.delete_source("mysql-01", true).await);
    run.ok("offline_master", c.offline_master("master1").await);

    assert!(run.failures.is_empty(), "failures:\n{}", run.failures.join("\n"));
}
