//! The legacy answer about a task's subtasks holds the upstream and downstream passwords in plain text
//! (docs/dm-behaviour.md R11.3). dm-apply reads it before changing a task created with dmctl and in `import`: the
//! planted passwords never appear in any output, at normal verbosity, `-vv` or `RUST_LOG=trace`, refused or not. The
//! test checks that the answer really held them and that dm-apply really read it, so it is not vacuous.

use std::process::{Command, Stdio};

use dm_apply::sim::{SimOptions, SimServer};

const SRC_PW: &str = "planted-legacy-src-pw-5e5e5e";
const TGT_PW: &str = "planted-legacy-tgt-pw-a1a1a1";

const CONFIG: &str = r#"sources:
  - source_name: mysql-a
    host: mysql-a.db.internal
    port: 3306
    user: dm
    password: ${env:PLANT_SRC_PW}
    enable_gtid: false
tasks:
  - name: legacy
    task_mode: incremental
    target_config: {host: tidb.internal, port: 4000, user: root, password: "${env:PLANT_TGT_PW}"}
    table_migrate_rule:
      - {source: {source_name: mysql-a, schema: shop, table: ""}}
    source_config:
      incr_migrate_conf: {repl_batch: 300}
      source_conf:
        - {source_name: mysql-a, binlog_name: mysql-bin.000001, binlog_pos: 4}
    stage: running
"#;

fn dmctl_task() -> String {
    format!(
        r#"
name: legacy
task-mode: incremental
target-database: {{host: tidb.internal, port: 4000, user: root, password: {TGT_PW}}}
mysql-instances:
  - source-id: mysql-a
    meta: {{binlog-name: mysql-bin.000001, binlog-pos: 4}}
    block-allow-list: bal
    expression-filters: [even]
block-allow-list:
  bal: {{do-dbs: [shop]}}
expression-filter:
  even: {{schema: shop, table: orders, insert-value-expr: "id % 2 = 0"}}
validators:
  v: {{mode: full}}
"#
    )
}

/// Run `args` plain, with `-vv` and with `RUST_LOG=trace`; every output, labelled, and the exit codes.
async fn run3(args: &[String], seen: &mut Vec<(String, String)>) -> Vec<Option<i32>> {
    let mut codes = vec![];
    for (verbose, trace) in [(false, false), (true, false), (false, true)] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dm-apply"));
        if verbose {
            cmd.arg("-vv");
        }
        cmd.args(args)
            .env_remove("DM_APPLY_ADDR")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .env("PLANT_SRC_PW", SRC_PW)
            .env("PLANT_TGT_PW", TGT_PW)
            .stdin(Stdio::null());
        if trace {
            cmd.env("RUST_LOG", "trace");
        }
        let o = tokio::task::spawn_blocking(move || cmd.output().expect("binary runs")).await.unwrap();
        let label = format!("{args:?} (verbose={verbose}, trace={trace})");
        seen.push((format!("{label} stdout"), String::from_utf8_lossy(&o.stdout).into_owned()));
        seen.push((format!("{label} stderr"), String::from_utf8_lossy(&o.stderr).into_owned()));
        codes.push(o.status.code());
    }
    codes
}

fn s(list: &[&str]) -> Vec<String> {
    list.iter().map(|x| x.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_legacy_answer_never_leaks_its_passwords() {
    let sim = SimServer::start(SimOptions { seed: Some(9), ..SimOptions::default() }).await.unwrap();
    let url = sim.url();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("dm.yaml");
    // The source first (through dm-apply), then the task with dmctl.
    std::fs::write(&cfg, CONFIG.split("tasks:").next().unwrap()).unwrap();
    let cfg_s = cfg.display().to_string();
    let mut seen = vec![];
    let codes = run3(&s(&["apply", "-f", &cfg_s, "--auto-approve", "--addr", &url]), &mut seen).await;
    assert_eq!(codes[0], Some(0), "{seen:?}");
    sim.control().create_dmctl_task(&dmctl_task(), true).unwrap();
    std::fs::write(&cfg, CONFIG).unwrap();

    // The answer dm-apply reads holds both passwords.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let raw = reqwest::get(format!("{url}/apis/v1alpha1/subtasks/legacy")).await.unwrap().text().await.unwrap();
    assert!(raw.contains(SRC_PW) && raw.contains(TGT_PW), "the planted passwords are in the legacy answer");

    sim.control().clear_log();
    for fmt in ["text", "markdown", "json"] {
        let codes = run3(&s(&["plan", "-f", &cfg_s, "-o", fmt, "--addr", &url]), &mut seen).await;
        assert_eq!(codes, [Some(1); 3], "refused: {fmt}");
    }
    let codes = run3(&s(&["apply", "-f", &cfg_s, "--auto-approve", "--addr", &url]), &mut seen).await;
    assert_eq!(codes, [Some(1); 3]);
    let codes = run3(&s(&["import", "--addr", &url]), &mut seen).await;
    assert_eq!(codes, [Some(0); 3]);
    let reads = sim.control().request_log().iter().filter(|r| r.path == "/apis/v1alpha1/subtasks/legacy").count();
    assert_eq!(reads, 5 * 3, "every plan, apply and import read the legacy answer once");
    // Accepted: read, replaced, verified.
    let args = s(&["apply", "-f", &cfg_s, "--accept-loss", "task.legacy", "--auto-approve", "--addr", &url]);
    let codes = run3(&args, &mut seen).await;
    assert_eq!(codes, [Some(0); 3], "{seen:?}");

    let all: String = seen.iter().map(|(_, t)| t.as_str()).collect();
    assert!(all.contains("expression filter on `shop`.`orders`"), "the outputs talk about the legacy answer");
    assert!(all.contains("TRACE") || all.contains("trace"), "trace logging was on");
    for (what, text) in &seen {
        for p in [SRC_PW, TGT_PW] {
            assert!(!text.contains(p), "{what} leaks a planted password `{p}`:\n{text}");
        }
    }
    sim.shutdown().await;
}
