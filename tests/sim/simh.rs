//! Shared helpers for tests that drive the real `DmClient` against an in-process simulator.

use std::time::Duration;

use dm_apply::dm::types::*;
use dm_apply::dm::{ClientOptions, DmClient, RetryPolicy};
use dm_apply::secret::Secret;
use dm_apply::sim::{Generation, SimOptions, SimServer};

/// Fast, reproducible options: 5 ms stage transitions, fixed seed.
pub fn fast(generation: Generation) -> SimOptions {
    SimOptions { generation, seed: Some(7), stage_delay: Duration::from_millis(5), ..SimOptions::default() }
}

pub async fn start(opts: SimOptions) -> (SimServer, DmClient) {
    let sim = SimServer::start(opts).await.expect("simulator starts");
    let mut o = ClientOptions::new(sim.url());
    o.request_timeout = Duration::from_secs(10);
    // No retries: these tests look at each answer the simulator gives.
    o.retry = RetryPolicy::none();
    let client = DmClient::new(&o).expect("client");
    (sim, client)
}

pub fn source(name: &str) -> Source {
    Source {
        source_name: name.to_string(),
        host: format!("{name}.db.internal"),
        port: 3306,
        user: "dm".into(),
        password: Some(Secret::new("s3cret")),
        enable_gtid: false,
        enable: true,
        ..Default::default()
    }
}

pub fn task(name: &str, mode: &str, sources: &[&str]) -> Task {
    Task {
        name: name.to_string(),
        task_mode: mode.to_string(),
        meta_schema: Some("dm_meta".into()),
        enhance_online_schema_change: true,
        on_duplicate: "replace".into(),
        target_config: TargetConfig {
            host: "tidb.internal".into(),
            port: 4000,
            user: "root".into(),
            password: Secret::new("tidbpw"),
            ..Default::default()
        },
        table_migrate_rule: sources
            .iter()
            .map(|s| TableMigrateRule {
                source: TableRuleSource { source_name: s.to_string(), schema: "shop".into(), table: String::new() },
                ..Default::default()
            })
            .collect(),
        source_config: TaskSourceConfig {
            full_migrate_conf: Some(FullMigrateConf {
                on_duplicate_logical: Some("replace".into()),
                ..Default::default()
            }),
            incr_migrate_conf: None,
            source_conf: sources
                .iter()
                .map(|s| TaskSourceConf {
                    source_name: s.to_string(),
                    binlog_name: (mode == "incremental").then(|| "mysql-bin.000001".to_string()),
                    binlog_pos: (mode == "incremental").then_some(4),
                    binlog_gtid: None,
                })
                .collect(),
        },
        ..Default::default()
    }
}

/// Poll task status until every subtask shows `stage` (or fail after ~5 s).
pub async fn wait_stage(c: &DmClient, task: &str, stage: Stage) -> Vec<SubTaskStatus> {
    let mut last = vec![];
    for _ in 0..500 {
        last = c.task_status(task).await.expect("status");
        if !last.is_empty() && last.iter().all(|s| s.stage == stage) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("task {task} never reached {stage}: {last:?}");
}

/// Poll until every subtask is in `unit`.
pub async fn wait_unit(c: &DmClient, task: &str, unit: Unit) {
    for _ in 0..500 {
        let st = c.task_status(task).await.expect("status");
        if !st.is_empty() && st.iter().all(|s| s.unit == unit) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("task {task} never reached unit {unit}");
}

/// A request the typed client would never send: (status, body text).
pub async fn raw(sim: &SimServer, method: &str, path: &str, ct: Option<&str>, body: Option<&str>) -> (u16, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut req = http.request(method.parse().unwrap(), format!("{}{}", sim.url(), path));
    if let Some(ct) = ct {
        req = req.header("content-type", ct);
    }
    if let Some(b) = body {
        req = req.body(b.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

pub fn js(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or(serde_json::Value::Null)
}

pub async fn with_sources(g: Generation, names: &[&str]) -> (SimServer, DmClient) {
    let (sim, c) = start(fast(g)).await;
    for n in names {
        c.create_source(&source(n), None).await.unwrap();
    }
    (sim, c)
}
