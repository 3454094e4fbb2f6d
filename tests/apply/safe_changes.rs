//! Changes to running replication that must not surprise its operator, through the real binary against the
//! simulator: a replace resumes from the checkpoint the task reached, a declared rename moves a task at its
//! checkpoint without ever running both, an update during the full dump waits (`--wait-for-sync`), a task in
//! shard DDL coordination is not stopped, and a change of letter case in a pattern is shown or noted as having no
//! effect (docs/apply.md "Safe changes").

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use dm_apply::sim::{Generation, ShardDdlState, ShardingGroup, SimControl, SimOptions, SimServer};
use serde_json::Value;

/// The generations whose checkpoint handling differs: v8.5 drops checkpoints on delete; HEAD keeps them with
/// `keep_meta`.
const GENS: [Generation; 2] = [Generation::V854, Generation::Head];

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn run(args: &[&str]) -> Out {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let o = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_dm-apply"))
            .args(&args)
            .env("NO_COLOR", "1")
            .env("DM_APPLY_STATE_KEY", "safe-changes-test-key-0123456789")
            .stdin(Stdio::null())
            .output()
            .expect("binary runs")
    })
    .await
    .expect("join");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout\n{}\n--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

async fn sim(generation: Generation, stage_delay: Duration) -> SimServer {
    SimServer::start(SimOptions { generation, seed: Some(11), stage_delay, ..SimOptions::default() })
        .await
        .expect("simulator")
}

struct Cfg {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Cfg {
    fn new() -> Cfg {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dm.yaml");
        Cfg { _dir: dir, path }
    }

    fn write(&self, yaml: &str) -> &Path {
        std::fs::write(&self.path, yaml).expect("write config");
        &self.path
    }

    fn p(&self) -> &str {
        self.path.to_str().expect("utf-8 path")
    }
}

async fn apply(cfg: &Cfg, url: &str, extra: &[&str]) -> Out {
    let mut a = vec!["apply", "-f", cfg.p(), "--auto-approve", "--addr", url, "--wait-timeout", "20s"];
    a.extend_from_slice(extra);
    run(&a).await
}

async fn plan(cfg: &Cfg, url: &str, extra: &[&str]) -> Out {
    let mut a = vec!["plan", "-f", cfg.p(), "--detailed-exitcode", "--addr", url];
    a.extend_from_slice(extra);
    run(&a).await
}

const SOURCES: &str = r#"
sources:
  - {source_name: mysql-a, host: mysql-a.internal, port: 3306, user: dm, password: pw-a, enable: true}
"#;

/// One task on mysql-a. `extra` lines go under the task (4-space indent).
fn task(name: &str, mode: &str, pattern: &str, repl_batch: u32, extra: &str) -> String {
    format!(
        r#"{SOURCES}
tasks:
  - name: {name}
    task_mode: {mode}
    target_config: {{host: tidb.internal, port: 4000, user: root, password: tidb-pw}}
    table_migrate_rule:
      - source: {{source_name: mysql-a, schema: "{pattern}", table: "*"}}
    source_config:
      incr_migrate_conf: {{repl_batch: {repl_batch}}}
      source_conf:
        - {{source_name: mysql-a, binlog_name: mysql-bin.000001, binlog_pos: 4}}
{extra}"#
    )
}

fn subtask(ctl: &SimControl, task: &str) -> Value {
    ctl.snapshot()["tasks"][task]["subtasks"]["mysql-a"].clone()
}

/// Mutating `METHOD path` requests, state-record writes left out.
fn mutations(ctl: &SimControl) -> Vec<String> {
    ctl.request_log()
        .iter()
        .filter(|r| r.mutating && !r.faulted && !r.path.contains("/tasks/templates"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn index(list: &[String], needle: &str) -> usize {
    list.iter().position(|m| m == needle).unwrap_or_else(|| panic!("`{needle}` not in {list:#?}"))
}

/// The checkpoint the apply read, from the `read checkpoint` step's note in the JSON report.
fn checkpoint_read(report: &str) -> String {
    let v: Value = serde_json::from_str(report).expect("JSON report");
    let note = v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["action"] == "read checkpoint")
        .and_then(|s| s["message"].as_str())
        .unwrap_or_else(|| panic!("no read checkpoint step: {report}"))
        .to_string();
    // "checkpoint of task T: mysql-a (mysql-bin.000001, 1234)"
    let at = note.split("mysql-a ").nth(1).expect("position in the note");
    at.split(')').next().map(|p| format!("{p})")).expect("position")
}

async fn let_it_replicate() {
    tokio::time::sleep(Duration::from_millis(150)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replace_resumes_from_the_checkpoint_with_safe_mode_and_the_next_plan_is_empty() {
    for g in GENS {
        let sim = sim(g, Duration::from_millis(20)).await;
        let (url, ctl) = (sim.url(), sim.control());
        let cfg = Cfg::new();
        cfg.write(&task("orders", "incremental", "shop", 100, ""));
        let o = apply(&cfg, &url, &[]).await;
        assert_eq!(o.code, 0, "{g:?} {o:?}");
        let_it_replicate().await;
        // DM refuses this field in place: a replace.
        cfg.write(&task("orders", "incremental", "shop", 100, "    enhance_online_schema_change: false\n"));
        let o = plan(&cfg, &url, &[]).await;
        assert_eq!(o.code, 2, "{g:?} {o:?}");
        assert!(o.stdout.contains("resumes from its checkpoint"), "{g:?} {o:?}");
        assert!(!o.stdout.contains("restarts the migration"), "{g:?} {o:?}");

        let o = apply(&cfg, &url, &["-o", "json", "--resume-safe-mode", "2m"]).await;
        assert_eq!(o.code, 0, "{g:?} {o:?}");
        let at = checkpoint_read(&o.stdout);
        assert_ne!(at, "(mysql-bin.000001, 4)", "the task had replicated past the configured position");
        let sub = subtask(&ctl, "orders");
        let first = &sub["checkpoint"]["starts"][0];
        assert_eq!(first["position"], at.as_str(), "{g:?}: the new task starts where the old one was: {sub:#}");
        assert_eq!(first["safe_mode"]["by"], "safe_mode_time_duration", "{g:?} {sub:#}");
        assert_eq!(first["safe_mode"]["duration"], "120s", "{g:?} {sub:#}");
        // The new task stores the checkpoint as its start position (DM prechecks it on create).
        assert_eq!(
            sub["config"]["source_config"]["source_conf"][0]["binlog_pos"],
            serde_json::json!(
                at.trim_end_matches(')').rsplit(", ").next().and_then(|p| p.parse::<i64>().ok()).expect("pos")
            )
        );
        let o = plan(&cfg, &url, &[]).await;
        assert_eq!(o.code, 0, "{g:?}: positions in git are not a diff for an existing task: {o:?}");
        assert!(o.stdout.contains("No changes."), "{o:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_rename_moves_the_task_at_its_checkpoint_and_never_runs_both() {
    for g in GENS {
        let sim = sim(g, Duration::from_millis(20)).await;
        let (url, ctl) = (sim.url(), sim.control());
        let cfg = Cfg::new();
        cfg.write(&task("orders", "incremental", "shop", 100, ""));
        assert_eq!(apply(&cfg, &url, &[]).await.code, 0);
        let_it_replicate().await;
        ctl.clear_log();
        cfg.write(&task("orders-v2", "incremental", "shop", 100, "    renamed_from: orders\n"));
        let o = plan(&cfg, &url, &[]).await;
        assert_eq!(o.code, 2, "{g:?} {o:?}");
        assert!(o.stdout.contains("rename: task orders is stopped"), "{g:?} {o:?}");
        assert!(!o.stdout.contains("unmanaged"), "the old task is the rename's, not unmanaged: {o:?}");

        let o = apply(&cfg, &url, &["-o", "json"]).await;
        assert_eq!(o.code, 0, "{g:?} {o:?}");
        let at = checkpoint_read(&o.stdout);
        let m = mutations(&ctl);
        let stop_old = index(&m, "POST /api/v1/tasks/orders/stop");
        let create_new = index(&m, "POST /api/v1/tasks");
        let delete_old = index(&m, "DELETE /api/v1/tasks/orders");
        let start_new = index(&m, "POST /api/v1/tasks/orders-v2/start");
        assert!(stop_old < create_new && create_new < delete_old && delete_old < start_new, "{g:?} {m:#?}");
        assert!(!m.iter().any(|x| x == "POST /api/v1/tasks/orders/start"), "the old task is never started: {m:#?}");
        assert!(ctl.snapshot()["tasks"].get("orders").is_none(), "the old task is gone");
        let first = &subtask(&ctl, "orders-v2")["checkpoint"]["starts"][0];
        assert_eq!(first["from"], "source_conf", "{g:?} {first:#}");
        assert_eq!(first["position"], at.as_str(), "{g:?} {first:#}");
        assert_eq!(first["safe_mode"]["by"], "safe_mode_time_duration", "{g:?} {first:#}");

        let o = plan(&cfg, &url, &[]).await;
        assert_eq!(o.code, 0, "{g:?} {o:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renamed_from_a_task_that_is_gone_is_a_note_and_an_undeclared_rename_is_pointed_out() {
    let sim = sim(Generation::V854, Duration::from_millis(20)).await;
    let url = sim.url();
    let cfg = Cfg::new();
    cfg.write(&task("orders", "incremental", "shop", 100, "    renamed_from: [orders-v0, orders-old]\n"));
    let o = plan(&cfg, &url, &[]).await;
    assert_eq!(o.code, 2, "{o:?}");
    assert!(o.stdout.contains("renamed_from names no task that exists in DM"), "{o:?}");
    assert!(o.stdout.contains("Plan: 2 to add, 0 to change, 0 to destroy."), "{o:?}");
    assert_eq!(apply(&cfg, &url, &[]).await.code, 0);
    // Renamed in git without saying so: a create plus an unmanaged task with the same replication.
    cfg.write(&task("orders-v2", "incremental", "shop", 100, ""));
    let o = plan(&cfg, &url, &[]).await;
    assert_eq!(o.code, 2, "{o:?}");
    let all = format!("{}{}", o.stdout, o.stderr);
    assert!(all.contains("this looks like a rename"), "{o:?}");
    assert!(all.contains("renamed_from: orders"), "{o:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_during_the_dump_is_pending_and_wait_for_sync_applies_it() {
    for g in GENS {
        // Dump and Load take 3 × 400 ms each.
        let sim = sim(g, Duration::from_millis(400)).await;
        let (url, ctl) = (sim.url(), sim.control());
        let cfg = Cfg::new();
        cfg.write(&task("orders", "all", "shop", 100, ""));
        assert_eq!(apply(&cfg, &url, &[]).await.code, 0);
        assert_ne!(subtask(&ctl, "orders")["unit"], "Sync", "still in its full migration");
        ctl.clear_log();
        cfg.write(&task("orders", "all", "shop", 200, ""));
        let o = plan(&cfg, &url, &[]).await;
        assert_eq!(o.code, 2, "{g:?}: a pending change is a change: {o:?}");
        assert!(o.stdout.contains("deferred"), "{g:?} {o:?}");
        assert!(o.stdout.contains("mysql-a in Dump") || o.stdout.contains("mysql-a in Load"), "{g:?} {o:?}");
        assert!(!o.stdout.contains("delete, create") && !o.stdout.contains("-/+"), "not a replace: {o:?}");
        let o = apply(&cfg, &url, &[]).await;
        assert_eq!(o.code, 0, "{g:?} {o:?}");
        assert!(o.stderr.contains("Nothing to apply now"), "{o:?}");
        assert!(mutations(&ctl).is_empty(), "apply left the task alone: {:#?}", mutations(&ctl));

        let o = apply(&cfg, &url, &["--wait-for-sync=30s"]).await;
        assert_eq!(o.code, 0, "{g:?} {o:?}");
        assert!(o.stderr.contains("in the Sync unit after"), "{o:?}");
        let m = mutations(&ctl);
        index(&m, "PUT /api/v1/tasks/orders");
        assert!(!m.iter().any(|x| x.starts_with("DELETE")), "updated in place, never replaced: {m:#?}");
        assert_eq!(subtask(&ctl, "orders")["config"]["source_config"]["incr_migrate_conf"]["repl_batch"], 200, "{g:?}");
        let o = plan(&cfg, &url, &[]).await;
        assert_eq!(o.code, 0, "{g:?} {o:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_update_waits_for_the_dump_it_would_restart() {
    // Not version-dependent: every DM dumps again after a stop in the dump. Dump and Load take 3 × 1 s each.
    let sim = sim(Generation::V854, Duration::from_millis(1000)).await;
    let (url, ctl) = (sim.url(), sim.control());
    let cfg = Cfg::new();
    let config = task("orders", "all", "shop", 100, "");
    cfg.write(&config);
    assert_eq!(apply(&cfg, &url, &[]).await.code, 0);
    assert_eq!(subtask(&ctl, "orders")["unit"], "Dump", "the test needs the task in its dump");
    ctl.clear_log();
    // The source's user changes: DM takes a source update only with its tasks stopped (46025).
    cfg.write(&config.replace("user: dm,", "user: dm2,"));
    let o = plan(&cfg, &url, &[]).await;
    assert_eq!(o.code, 2, "a deferred change is a change: {o:?}");
    assert!(o.stdout.contains("deferred"), "{o:?}");
    assert!(o.stdout.contains("would stop orders (on mysql-a) in its full dump"), "{o:?}");
    assert!(o.stdout.contains("dumps again from the start"), "{o:?}");
    let o = plan(&cfg, &url, &["-o", "json"]).await;
    let v: Value = serde_json::from_str(&o.stdout).expect("JSON plan");
    let src = v["resource_changes"].as_array().unwrap().iter().find(|c| c["address"] == "source.mysql-a").unwrap();
    assert_eq!(src["hold"]["wait"], serde_json::json!({"tasks": ["orders"], "until": "dump-done"}), "{o:?}");
    let o = apply(&cfg, &url, &[]).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stderr.contains("Nothing to apply now"), "{o:?}");
    assert!(mutations(&ctl).is_empty(), "the dump was left alone: {:#?}", mutations(&ctl));
    assert_eq!(subtask(&ctl, "orders")["unit"], "Dump", "still dumping, so the wait below is not vacuous");

    let o = apply(&cfg, &url, &["--wait-for-sync=60s"]).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stderr.contains("for task.orders to finish its dump"), "{o:?}");
    assert!(o.stderr.contains("task.orders past its dump after"), "{o:?}");
    let m = mutations(&ctl);
    let (stop, put, start) = (
        index(&m, "POST /api/v1/tasks/orders/stop"),
        index(&m, "PUT /api/v1/sources/mysql-a"),
        index(&m, "POST /api/v1/tasks/orders/start"),
    );
    assert!(stop < put && put < start, "{m:#?}");
    assert_ne!(subtask(&ctl, "orders")["unit"], "Dump", "stopped after its dump, it went on from there");
    assert_eq!(plan(&cfg, &url, &[]).await.code, 0);

    // With --allow-restart the update goes ahead now, and the plan says what it costs.
    let sim = self::sim(Generation::V854, Duration::from_millis(1000)).await;
    let (url, ctl) = (sim.url(), sim.control());
    cfg.write(&config);
    assert_eq!(apply(&cfg, &url, &[]).await.code, 0);
    assert_eq!(subtask(&ctl, "orders")["unit"], "Dump");
    ctl.clear_log();
    cfg.write(&config.replace("user: dm,", "user: dm2,"));
    let o = apply(&cfg, &url, &["--allow-restart"]).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("stops orders (on mysql-a) in its full dump"), "{o:?}");
    index(&mutations(&ctl), "PUT /api/v1/sources/mysql-a");
    assert_eq!(
        subtask(&ctl, "orders")["unit"],
        "Dump",
        "still in its dump after the restart (that the dump starts over is the simulator's unit test)"
    );
    assert_eq!(plan(&cfg, &url, &[]).await.code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_in_shard_ddl_coordination_is_not_stopped() {
    for g in GENS {
        let sim = sim(g, Duration::from_millis(20)).await;
        let (url, ctl) = (sim.url(), sim.control());
        let cfg = Cfg::new();
        cfg.write(&task("orders", "incremental", "shop", 100, "    shard_mode: pessimistic\n"));
        assert_eq!(apply(&cfg, &url, &[]).await.code, 0);
        ctl.set_shard_ddl(
            "orders",
            "mysql-a",
            ShardDdlState {
                blocking_ddls: vec!["ALTER TABLE `shop`.`t1` ADD COLUMN c INT".into()],
                unresolved_groups: vec![ShardingGroup {
                    target: "`shop`.`t`".into(),
                    ddl_list: vec!["ALTER TABLE `shop`.`t` ADD COLUMN c INT".into()],
                    first_location: "position: (mysql-bin.000001, 1234)".into(),
                    synced: vec!["`shop`.`t1`".into()],
                    unsynced: vec!["`shop`.`t2`".into()],
                }],
                unresolved_ddl_lock_id: None,
            },
        )
        .expect("shard state");
        ctl.clear_log();
        // An update, and a source change that would stop the task around it.
        let changed = task("orders", "incremental", "shop", 300, "    shard_mode: pessimistic\n")
            .replace("enable: true}", "enable: true, purge: {interval: 1800}}");
        cfg.write(&changed);
        let o = plan(&cfg, &url, &[]).await;
        assert_eq!(o.code, 2, "{g:?} {o:?}");
        assert!(o.stdout.contains("shard DDL coordination"), "{g:?} {o:?}");
        assert!(o.stdout.contains("orders-`shop`.`t`"), "the lock id is shown: {o:?}");
        assert!(o.stdout.contains("unsynced [`shop`.`t2`]"), "{o:?}");
        assert!(o.stdout.contains("blocked"), "{o:?}");
        let o = apply(&cfg, &url, &[]).await;
        assert_eq!(o.code, 0, "{g:?} {o:?}");
        let m = mutations(&ctl);
        assert!(!m.iter().any(|x| x.ends_with("/stop")), "{g:?}: no stop request: {m:#?}");
        assert!(m.is_empty(), "{g:?}: nothing was changed: {m:#?}");
        assert_eq!(subtask(&ctl, "orders")["observed"], "Running");
        // Once the coordination is over, the change goes through.
        ctl.set_shard_ddl("orders", "mysql-a", ShardDdlState::default()).expect("clear");
        assert_eq!(apply(&cfg, &url, &[]).await.code, 0);
        assert_eq!(plan(&cfg, &url, &[]).await.code, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_only_pattern_change_is_planned_on_a_case_sensitive_upstream() {
    for g in Generation::ALL {
        let sim = sim(g, Duration::from_millis(20)).await;
        let (url, ctl) = (sim.url(), sim.control());
        let cfg = Cfg::new();
        cfg.write(&task("orders", "incremental", "User_db_*", 100, ""));
        assert_eq!(apply(&cfg, &url, &[]).await.code, 0);
        assert_eq!(plan(&cfg, &url, &[]).await.code, 0, "{g:?}");
        cfg.write(&task("orders", "incremental", "User_DB_*", 100, ""));
        let o = plan(&cfg, &url, &[]).await;
        assert_eq!(o.code, 2, "{g:?}: DM keeps upper case here, so the change matters: {o:?}");
        assert!(o.stdout.contains("User_DB_*"), "{o:?}");
        let o = apply(&cfg, &url, &[]).await;
        assert_eq!(o.code, 0, "{g:?} {o:?}");
        let stored = subtask(&ctl, "orders")["config"].to_string();
        assert!(stored.contains("User_DB_*"), "{g:?} {stored}");
        let o = plan(&cfg, &url, &[]).await;
        assert_eq!(o.code, 0, "{g:?} {o:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_only_pattern_change_on_a_case_insensitive_upstream_is_noted_as_no_effect() {
    for g in GENS {
        let sim = sim(g, Duration::from_millis(20)).await;
        let url = sim.url();
        let cfg = Cfg::new();
        let lower = |y: String| y.replace("mysql-a.internal", "mysql-a.lower-case.internal");
        cfg.write(&lower(task("orders", "incremental", "user_db_*", 100, "")));
        assert_eq!(apply(&cfg, &url, &[]).await.code, 0);
        cfg.write(&lower(task("orders", "incremental", "User_DB_*", 100, "")));
        let o = plan(&cfg, &url, &[]).await;
        assert_eq!(o.code, 0, "{g:?}: no perpetual diff: {o:?}");
        assert!(o.stdout.contains("only in letter case") && o.stdout.contains("no effect"), "{g:?} {o:?}");
        let o = apply(&cfg, &url, &[]).await;
        assert_eq!(o.code, 0, "{g:?} {o:?}");
        let o = plan(&cfg, &url, &[]).await;
        assert_eq!(o.code, 0, "{g:?} {o:?}");
        // --replace re-creates the task with the configured patterns; DM lowercases them again: still no diff.
        let o = apply(&cfg, &url, &["--replace", "task.orders"]).await;
        assert_eq!(o.code, 0, "{g:?} {o:?}");
        assert_eq!(plan(&cfg, &url, &[]).await.code, 0, "{g:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_case_change_is_settled_by_replace_on_a_case_sensitive_upstream() {
    let sim = sim(Generation::V854, Duration::from_millis(20)).await;
    let (url, ctl) = (sim.url(), sim.control());
    let cfg = Cfg::new();
    cfg.write(&task("orders", "incremental", "user_db_*", 100, ""));
    assert_eq!(apply(&cfg, &url, &[]).await.code, 0);
    // No stored pattern of mysql-a has an upper-case letter: DM cannot tell this upstream from a case-insensitive one.
    cfg.write(&task("orders", "incremental", "User_DB_*", 100, ""));
    let o = plan(&cfg, &url, &[]).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("--replace task.orders"), "the note says how to apply it: {o:?}");
    let o = apply(&cfg, &url, &["--replace", "task.orders"]).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert!(subtask(&ctl, "orders")["config"].to_string().contains("User_DB_*"));
    let o = plan(&cfg, &url, &[]).await;
    assert_eq!(o.code, 0, "{o:?}");
    assert!(!o.stdout.contains("only in letter case"), "now compared exactly: {o:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_create_says_where_the_task_is_and_at_which_checkpoint() {
    let sim = sim(Generation::V854, Duration::from_millis(20)).await;
    let (url, ctl) = (sim.url(), sim.control());
    ctl.register_downstream_account("tidb.internal", 4000, "root", "tidb-pw");
    let cfg = Cfg::new();
    cfg.write(&task("orders", "incremental", "shop", 100, ""));
    assert_eq!(apply(&cfg, &url, &[]).await.code, 0);
    let_it_replicate().await;
    // A wrong target password: a replace whose create DM refuses (it cannot log in, 10001).
    cfg.write(&task("orders", "incremental", "shop", 100, "").replace("password: tidb-pw", "password: wrong-pw"));
    // (The state record's template connects to that target too: no lease for this run.)
    let o = apply(&cfg, &url, &["-o", "json", "--no-lease"]).await;
    assert_eq!(o.code, 1, "{o:?}");
    let at = checkpoint_read(&o.stdout);
    let report: Value = serde_json::from_str(&o.stdout).expect("report");
    let create = report["steps"].as_array().unwrap().iter().find(|s| s["action"] == "create task").expect("create");
    let msg = create["message"].as_str().unwrap_or_default();
    assert_eq!(create["outcome"], "failed", "{o:?}");
    assert!(msg.contains("was deleted for its replacement and is not re-created"), "{msg}");
    assert!(msg.contains(&format!("mysql-a {at}")), "the positions to re-create it by hand: {msg}");
    assert!(!o.stdout.contains("wrong-pw") && !o.stderr.contains("wrong-pw"), "a password leaked");

    // A rename whose create is refused leaves the old task stopped and in place.
    cfg.write(&task("orders", "incremental", "shop", 100, ""));
    assert_eq!(apply(&cfg, &url, &[]).await.code, 0, "the task is created again");
    cfg.write(
        &task("orders-v2", "incremental", "shop", 100, "    renamed_from: orders\n")
            .replace("password: tidb-pw", "password: wrong-pw"),
    );
    let o = apply(&cfg, &url, &["--no-lease"]).await;
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stdout.contains("task orders is stopped and still exists (it was not deleted)"), "{o:?}");
    let snap = ctl.snapshot();
    assert!(snap["tasks"].get("orders-v2").is_none());
    assert_eq!(snap["tasks"]["orders"]["subtasks"]["mysql-a"]["observed"], "Paused", "stopped, never both running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_rename_plan_applies_as_saved() {
    let sim = sim(Generation::V854, Duration::from_millis(20)).await;
    let (url, ctl) = (sim.url(), sim.control());
    let cfg = Cfg::new();
    cfg.write(&task("orders", "incremental", "shop", 100, ""));
    assert_eq!(apply(&cfg, &url, &[]).await.code, 0);
    cfg.write(&task("orders-v2", "incremental", "shop", 100, "    renamed_from: orders\n"));
    let saved = cfg.path.with_file_name("plan.json");
    let saved = saved.to_str().expect("utf-8");
    let o = run(&["plan", "-f", cfg.p(), "--addr", &url, "--out", saved]).await;
    assert_eq!(o.code, 0, "{o:?}");
    let o = run(&["apply", "--plan", saved, "--addr", &url, "--wait-timeout", "20s"]).await;
    assert_eq!(o.code, 0, "the saved plan is not stale: {o:?}");
    assert!(ctl.snapshot()["tasks"].get("orders").is_none());
    assert_eq!(subtask(&ctl, "orders-v2")["checkpoint"]["starts"][0]["safe_mode"]["by"], "safe_mode_time_duration");
}
