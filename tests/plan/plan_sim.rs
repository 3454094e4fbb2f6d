//! `plan` against the in-process simulator over real HTTP: after a configuration was put in place by hand (through
//! the client, with dm-apply's wire forms), plan shows no changes, on both server generations, across runs.

use crate::plan_common::*;
use dm_apply::live;
use dm_apply::plan::testing::desired_from_yaml;
use dm_apply::plan::{Address, ConfigAction, PlanOptions, make_plan};
use dm_apply::saved_plan::{self as saved, StalePlanError, check, file};
use dm_apply::sim::Generation;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_plans_no_changes_after_apply_on_every_generation() {
    // The cases are independent (a simulator each): run at once, a failed assertion fails the test.
    join_all(Generation::ALL.into_iter().map(|generation| {
        tokio::spawn(async move {
            for ex in examples() {
                let (sim, client) = start(generation).await;
                let desired = load(&ex);
                apply_by_hand(&client, &desired).await;
                // Library level, several runs (the simulator reorders lists randomly).
                for _ in 0..5 {
                    let l = live::fetch(&client).await.unwrap();
                    let p = make_plan(&desired, &l, &PlanOptions::default()).unwrap();
                    assert!(!p.has_changes(), "{} on {generation:?}: {:#?}", ex.display(), p.changes);
                }
                // Through the binary.
                for _ in 0..2 {
                    let (code, out, err) =
                        run(s(&["plan", "-f", &ex.display().to_string(), "--addr", &sim.url(), "--detailed-exitcode"]))
                            .await;
                    assert_eq!(code, 0, "{} on {generation:?}:\n{out}\n{err}", ex.display());
                    assert!(out.ends_with("No changes. DM cluster matches the configuration.\n"), "{out}");
                }
                sim.shutdown().await;
            }
        })
    }))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_exit_2_and_planted_secrets_never_appear() {
    let (sim, _client) = start(Generation::Head).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("dm.yaml");
    std::fs::write(
        &cfg,
        r#"
sources:
  - {source_name: s1, host: h1, port: 3306, user: u, password: "${env:PLANTED_A}"}
tasks:
  - name: t1
    task_mode: all
    target_config:
      host: tidb
      port: 4000
      user: root
      password: "${env:PLANTED_B}"
      security: {ssl_ca_content: ca, ssl_cert_content: cert, ssl_key_content: "${env:PLANTED_C}"}
    source_config: {source_conf: [{source_name: s1}]}
"#,
    )
    .unwrap();
    let planted = ["PLANTED-pw-4f1c9a", "PLANTED-tpw-77ab20", "PLANTED-key-9c0e11"];
    let saved_path = dir.path().join("plan.json");
    let mut outputs = vec![];
    for fmt in ["text", "markdown", "json"] {
        let args = s(&[
            "plan",
            "-f",
            &cfg.display().to_string(),
            "--addr",
            &sim.url(),
            "--detailed-exitcode",
            "-o",
            fmt,
            "--out",
            &saved_path.display().to_string(),
        ]);
        let o = tokio::task::spawn_blocking(move || {
            bin()
                .env("PLANTED_A", "PLANTED-pw-4f1c9a")
                .env("PLANTED_B", "PLANTED-tpw-77ab20")
                .env("PLANTED_C", "PLANTED-key-9c0e11")
                .args(&args)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert_eq!(o.status.code(), Some(2), "{fmt}: {}", String::from_utf8_lossy(&o.stderr));
        outputs.push(String::from_utf8_lossy(&o.stdout).to_string());
        outputs.push(String::from_utf8_lossy(&o.stderr).to_string());
        outputs.push(std::fs::read_to_string(&saved_path).unwrap());
    }
    assert!(outputs[0].ends_with("Plan: 2 to add, 0 to change, 0 to destroy.\n"), "{}", outputs[0]);
    assert!(outputs[3].contains("<details>"));
    assert!(outputs[6].contains(&format!("\"format_version\": \"{}\"", dm_apply::plan::FORMAT_VERSION)));
    for o in &outputs {
        for p in planted {
            assert!(!o.contains(p), "secret {p} leaked in:\n{o}");
        }
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_plan_detects_live_config_and_cluster_changes() {
    let (sim, client) = start(Generation::Head).await;
    let yaml = dm_apply::plan::testing::ONE_SOURCE_ONE_TASK;
    let d = desired_from_yaml("dm.yaml", yaml).unwrap();
    apply_by_hand(&client, &d).await;
    let d2 = desired_from_yaml("dm.yaml", &yaml.replace("host: h1", "host: h1b")).unwrap();
    let l = live::fetch(&client).await.unwrap();
    let opts = PlanOptions::default();
    let p = make_plan(&d2, &l, &opts).unwrap();
    assert_eq!(p.change(&Address::source("s1")).unwrap().action, ConfigAction::Update);
    let sp = saved::save(&p, &d2, &l, &opts, &saved::ConfigPaths { paths: vec!["dm.yaml".into()], dir: None });
    // Round trip through a file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.json");
    file::write(&path, &sp).unwrap();
    let sp = file::read(&path).unwrap();
    let l = live::fetch(&client).await.unwrap();
    check::verify(&sp, &d2, &l, "dm.yaml").unwrap();
    let again = make_plan(&d2, &l, &opts).unwrap();
    check::same_plan(&sp.plan, &again).unwrap();
    assert!(again.change(&Address::source("s1")).unwrap().desired.is_some());
    // Config changed.
    let d3 = desired_from_yaml("dm.yaml", &yaml.replace("host: h1", "host: h1c")).unwrap();
    assert!(matches!(check::verify(&sp, &d3, &l, "dm.yaml"), Err(StalePlanError::ConfigChanged { .. })));
    // Someone changed the source in DM.
    sim.control().patch_source("s1", serde_json::json!({"user": "someone"})).unwrap();
    let l = live::fetch(&client).await.unwrap();
    let e = check::verify(&sp, &d2, &l, "dm.yaml").unwrap_err();
    assert!(e.to_string().contains("source.s1"), "{e}");
    // Another cluster.
    let (sim2, client2) = start(Generation::Head).await;
    let mut l2 = live::fetch(&client2).await.unwrap();
    l2.cluster_id = Some(l.cluster_id.unwrap_or(0).wrapping_add(1));
    assert!(matches!(check::verify(&sp, &d2, &l2, "dm.yaml"), Err(StalePlanError::OtherCluster { .. })));
    sim2.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_task_with_error_is_shown_with_dm_message() {
    let (sim, client) = start(Generation::V853).await;
    let yaml = dm_apply::plan::testing::ONE_SOURCE_ONE_TASK;
    let d = desired_from_yaml("dm.yaml", yaml).unwrap();
    apply_by_hand(&client, &d).await;
    sim.control().pause_task_with_error("t1", "s1", "[code=10001:class=database], Message: upstream gone");
    let l = live::fetch(&client).await.unwrap();
    let p = make_plan(&d, &l, &PlanOptions::default()).unwrap();
    let c = p.change(&Address::task("t1")).unwrap();
    assert_eq!(c.actions(), ["start"]);
    let text = dm_apply::render::text::render(&p, false);
    assert!(text.contains("upstream gone") && text.contains("will be started"), "{text}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_relay_filters_and_optional_fields_round_trip_without_diff() {
    let yaml = r#"
sources:
  - source_name: s1
    host: h1
    port: 3306
    user: u
    password: pw
    enable_gtid: true
    security: {ssl_ca_content: CA1, ssl_cert_content: CERT1, ssl_key_content: KEY1, cert_allowed_cn: [b, a]}
    purge: {expires: 12}
    relay_config: {relay_dir: ./relay}
  - {source_name: s2, host: h2, port: 3306, user: u, password: pw2, flavor: mariadb, enable: false}
tasks:
  - name: t1
    task_mode: all
    shard_mode: pessimistic
    timezone: Asia/Shanghai
    ignore_checking_items: [version, all]
    target_config:
      host: tidb
      port: 4000
      user: root
      password: tpw
      security: {ssl_ca_content: TCA, ssl_cert_content: TCERT, ssl_key_content: TKEY}
      session: {foreign_key_checks: "1"}
    binlog_filter_rule:
      fa: {ignore_event: [drop table]}
      fb: {ignore_sql: ["^DROP"]}
    table_migrate_rule:
      - source: {source_name: s1, schema: Shop, table: "Orders_*"}
        target: {schema: shop, table: ""}
        binlog_filter_rule: [fa, fb]
      - source: {source_name: s1, schema: misc}
        binlog_filter_rule: [fb]
      - source: {source_name: s1, schema: audit}
        target: {schema: "", table: x}
    source_config:
      full_migrate_conf: {export_threads: 2, data_dir: ./dump/, consistency: none, checksum: off, disk_quota: 10GiB}
      incr_migrate_conf: {repl_batch: 50, safe_mode: true}
      source_conf: [{source_name: s1}]
    stage: stopped
"#;
    for generation in Generation::ALL {
        let (sim, client) = start(generation).await;
        let d = desired_from_yaml("dm.yaml", yaml).unwrap();
        apply_by_hand(&client, &d).await;
        for _ in 0..4 {
            let l = live::fetch(&client).await.unwrap();
            let p = make_plan(&d, &l, &PlanOptions::default()).unwrap();
            assert!(!p.has_changes(), "{generation:?}: {:#?}", p.changes);
        }
        // The hidden source TLS key changed in git: detected through the fingerprint record.
        let d2 = desired_from_yaml("dm.yaml", &yaml.replace("KEY1", "KEY2")).unwrap();
        let l = live::fetch(&client).await.unwrap();
        let p = make_plan(&d2, &l, &PlanOptions::default()).unwrap();
        let c = p.change(&Address::source("s1")).unwrap();
        assert_eq!(c.action, ConfigAction::Update);
        assert!(c.attributes.iter().any(|a| a.path == "security" && a.sensitive));
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_refused_plan_is_shown_and_exits_1_and_plain_exit_is_0() {
    let (sim, client) = start(Generation::V853).await;
    let yaml = r#"
sources:
  - {source_name: s1, host: h1, port: 3306, user: u, password: pw}
tasks:
  - name: t1
    task_mode: all
    target_config: {host: tidb, port: 4000, user: root, password: tpw}
    source_config: {source_conf: [{source_name: s1}]}
    lifecycle: {prevent_destroy: true}
"#;
    let d = desired_from_yaml("dm.yaml", yaml).unwrap();
    apply_by_hand(&client, &d).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("dm.yaml");
    std::fs::write(&cfg, yaml.replace("task_mode: all", "task_mode: full")).unwrap();
    let f = cfg.display().to_string();
    let (code, out, err) = run(s(&["plan", "-f", &f, "--addr", &sim.url(), "--allow-restart"])).await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("task.t1 must be replaced"), "{out}");
    assert!(err.contains("prevent_destroy") && err.contains("task.t1") && err.contains("dm.yaml:"), "{err}");
    // Without --allow-restart the restart guard is reported too, with how to allow it.
    let (code, _, err) = run(s(&["plan", "-f", &f, "--addr", &sim.url()])).await;
    assert_eq!(code, 1);
    assert!(err.contains("--allow-restart"), "{err}");
    // A plain change: exit 0 without --detailed-exitcode, 2 with it.
    std::fs::write(&cfg, yaml.replace("host: h1", "host: h1-new")).unwrap();
    let (code, out, _) = run(s(&["plan", "-f", &f, "--addr", &sim.url()])).await;
    assert_eq!(code, 0);
    assert!(out.ends_with("Plan: 0 to add, 1 to change, 0 to destroy.\n"), "{out}");
    let (code, _, _) = run(s(&["plan", "-f", &f, "--addr", &sim.url(), "--detailed-exitcode"])).await;
    assert_eq!(code, 2);
    // Bad target address: a user error.
    let (code, _, err) = run(s(&["plan", "-f", &f, "--addr", &sim.url(), "--target", "nope"])).await;
    assert_eq!(code, 1);
    assert!(err.contains("source.NAME"), "{err}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_fetch_uses_a_constant_number_of_requests() {
    let mut counts = vec![];
    for n in [1usize, 6] {
        let (sim, client) = start(Generation::Head).await;
        let mut yaml =
            String::from("sources:\n  - {source_name: s1, host: h1, port: 3306, user: u, password: pw}\ntasks:\n");
        for i in 0..n {
            yaml.push_str(&format!(
                "  - name: t{i}\n    task_mode: incremental\n    target_config: {{host: tidb, port: 4000, user: root, password: tpw}}\n    source_config:\n      source_conf: [{{source_name: s1, binlog_name: mysql-bin.000001, binlog_pos: 4}}]\n"
            ));
        }
        let d = desired_from_yaml("dm.yaml", &yaml).unwrap();
        apply_by_hand(&client, &d).await;
        // A fresh client, so the version is read once more like a new process would.
        let fresh = dm_apply::dm::DmClient::new(&dm_apply::dm::ClientOptions::new(sim.url())).unwrap();
        sim.control().clear_log();
        let l = live::fetch(&fresh).await.unwrap();
        assert_eq!(l.tasks.len(), n);
        let log = sim.control().request_log();
        assert!(log.iter().all(|r| r.method == "GET"), "{log:?}");
        counts.push(log.len());
        sim.shutdown().await;
    }
    assert_eq!(counts[0], counts[1], "requests do not grow with the number of tasks");
    // Version, cluster info, sources, relay sources with their workers' status, workers, tasks, state record.
    assert!(counts[0] <= 7, "{counts:?}");
}
