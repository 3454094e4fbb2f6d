//! `dm-apply drift` against the simulator: exit codes, the three kinds of drift, the Prometheus file, and that it
//! never sends a mutating request.

use crate::plan_common::*;
use dm_apply::plan::testing::desired_from_yaml;
use dm_apply::sim::Generation;

const CFG: &str = r#"
sources:
  - {source_name: s1, host: h1, port: 3306, user: u, password: pw}
tasks:
  - name: t1
    task_mode: incremental
    target_config: {host: tidb, port: 4000, user: root, password: tpw}
    source_config:
      incr_migrate_conf: {repl_threads: 8}
      source_conf: [{source_name: s1, binlog_name: mysql-bin.000001, binlog_pos: 4}]
"#;

fn prom_value(text: &str, series: &str) -> Option<String> {
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')).map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_reports_each_kind_with_exit_codes_and_metrics() {
    let (sim, client) = start(Generation::Head).await;
    let d = desired_from_yaml("dm.yaml", CFG).unwrap();
    apply_by_hand(&client, &d).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("dm.yaml");
    std::fs::write(&cfg, CFG).unwrap();
    let prom = dir.path().join("dm.prom");
    let args = |fmt: &str| {
        s(&[
            "drift",
            "-f",
            &cfg.display().to_string(),
            "--addr",
            &sim.url(),
            "-o",
            fmt,
            "--prometheus-textfile",
            &prom.display().to_string(),
        ])
    };
    sim.control().clear_log();

    // No drift.
    let (code, out, err) = run(args("text")).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.ends_with("No drift. DM cluster matches the configuration.\n"), "{out}");
    let p = std::fs::read_to_string(&prom).unwrap();
    assert_eq!(prom_value(&p, "dm_apply_drift_resources{kind=\"config\"}").as_deref(), Some("0"));
    assert_eq!(prom_value(&p, "dm_apply_up").as_deref(), Some("1"));
    assert!(prom_value(&p, "dm_apply_last_run_timestamp_seconds").is_some_and(|v| v.parse::<u64>().unwrap() > 0));

    // Config drift (someone changed repl_threads), stage drift (paused with an error), unmanaged (a task created
    // by hand), missing (a declared source that is not in DM).
    sim.control()
        .patch_task("t1", serde_json::json!({"source_config": {"incr_migrate_conf": {"repl_threads": 4}}}))
        .unwrap();
    sim.control().pause_task_with_error("t1", "s1", "[code=10001], Message: upstream unreachable");
    let mut other =
        dm_apply::normalize::task_to_wire(&d.tasks["t1"].0, &dm_apply::dm::ServerVersion::parse("v26.4.0-alpha"));
    other.name = "adhoc".into();
    client.create_task(&other).await.unwrap();
    let cfg2 = CFG.replace("sources:\n", "sources:\n  - {source_name: s9, host: h9, port: 3306, user: u}\n");
    std::fs::write(&cfg, cfg2).unwrap();
    sim.control().clear_log();

    let (code, out, err) = run(args("json")).await;
    assert_eq!(code, 2, "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["format_version"], "1.1");
    assert_eq!(
        v["counts"],
        serde_json::json!({"config": 1, "missing": 1, "unmanaged": 1, "stage": 1, "relay": 0, "binding": 0})
    );
    assert_eq!(v["config"][0]["address"], "task.t1");
    assert_eq!(v["missing"][0], "source.s9");
    assert_eq!(v["unmanaged"][0], "task.adhoc");
    assert!(v["stage"][0]["errors"][0].as_str().unwrap().contains("upstream unreachable"));
    let p = std::fs::read_to_string(&prom).unwrap();
    for k in ["config", "missing", "unmanaged", "stage"] {
        assert_eq!(prom_value(&p, &format!("dm_apply_drift_resources{{kind=\"{k}\"}}")).as_deref(), Some("1"), "{p}");
    }
    let (code, text, _) = run(args("text")).await;
    assert_eq!(code, 2);
    assert!(text.contains("repl_threads: DM has 4, configuration has 8"), "{text}");
    assert!(text.ends_with("Drift: 1 config, 1 missing, 1 unmanaged, 1 stage.\n"), "{text}");

    // Read-only: not one mutating request reached the simulator.
    let log = sim.control().request_log();
    assert!(!log.is_empty());
    assert!(log.iter().all(|r| !r.mutating), "{:?}", log.iter().filter(|r| r.mutating).collect::<Vec<_>>());
    // No temporary file left behind next to the metrics.
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");

    // Error: DM unreachable → exit 1, dm_apply_up 0.
    sim.control().set_offline(true);
    let mut a = args("text");
    a.extend(s(&["--request-timeout", "2s"]));
    let (code, _, err) = run(a).await;
    assert_eq!(code, 1, "{err}");
    let p = std::fs::read_to_string(&prom).unwrap();
    assert_eq!(prom_value(&p, "dm_apply_up").as_deref(), Some("0"));
    assert!(prom_value(&p, "dm_apply_drift_resources{kind=\"config\"}").is_none());
    sim.control().set_offline(false);
    sim.shutdown().await;
}
