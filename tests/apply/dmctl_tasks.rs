//! Tasks created with dmctl (docs/dm-behaviour.md §11): their settings that DM's OpenAPI cannot carry (an expression
//! filter, a `Do` binlog filter) are never dropped or inverted silently. The real binary against the simulator:
//! `plan` and `apply` refuse the change before any write and name the loss; `--accept-loss` replaces the task and
//! the next plan is empty; an OpenAPI-created task is read through the legacy endpoint only when the plan changes
//! it, and changes in place as before; `import` warns.

use std::process::{Command, Output, Stdio};

use dm_apply::dm::{ClientOptions, DmClient};
use dm_apply::sim::{Generation, LoggedRequest, SimOptions, SimServer};

const SRC_PW: &str = "dmctl-src-pw-4c1d";
const TGT_PW: &str = "dmctl-tgt-pw-9e7b";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dm-apply"));
    c.stdin(Stdio::null())
        .env_remove("DM_APPLY_ADDR")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .env("DMCTL_SRC_PW", SRC_PW)
        .env("DMCTL_TGT_PW", TGT_PW);
    c
}

async fn run(args: Vec<String>) -> (Option<i32>, String, String) {
    let o: Output =
        tokio::task::spawn_blocking(move || bin().args(&args).output().expect("binary runs")).await.expect("join");
    let (out, err) = (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned());
    for pw in [SRC_PW, TGT_PW] {
        assert!(!out.contains(pw) && !err.contains(pw), "a password leaked:\n{out}\n{err}");
    }
    (o.status.code(), out, flat(&err))
}

/// Diagnostics as one line: miette wraps long messages (at hyphens too) and marks continued lines with `|`.
fn flat(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let l = line.trim_start();
        let l = l.strip_prefix("| ").or_else(|| l.strip_prefix("x ")).unwrap_or(l).trim();
        if !out.is_empty() && !out.ends_with('-') {
            out.push(' ');
        }
        out.push_str(l);
    }
    out
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

const SOURCE: &str = r#"sources:
  - source_name: mysql-a
    host: mysql-a.db.internal
    port: 3306
    user: dm
    password: ${env:DMCTL_SRC_PW}
    enable_gtid: false
"#;

/// A task as dm-apply declares it: one rule on `shop`, incremental from a position, with `repl_batch` and optional
/// extra YAML (binlog filters).
fn task(name: &str, repl_batch: u32, filter: bool) -> String {
    let (rule_filter, defs) = if filter {
        (
            ", binlog_filter_rule: [keep-inserts]",
            "    binlog_filter_rule:\n      keep-inserts: {ignore_event: [insert]}\n",
        )
    } else {
        ("", "")
    };
    format!(
        r#"  - name: {name}
    task_mode: incremental
    target_config: {{host: tidb.internal, port: 4000, user: root, password: "${{env:DMCTL_TGT_PW}}"}}
{defs}    table_migrate_rule:
      - {{source: {{source_name: mysql-a, schema: shop, table: ""}}{rule_filter}}}
    source_config:
      incr_migrate_conf: {{repl_batch: {repl_batch}}}
      source_conf:
        - {{source_name: mysql-a, binlog_name: mysql-bin.000001, binlog_pos: 4}}
    stage: running
"#
    )
}

/// dmctl task files: an expression filter, and a binlog filter with action `Do`.
fn dmctl_expr() -> String {
    format!(
        r#"
name: legacy-expr
task-mode: incremental
target-database: {{host: tidb.internal, port: 4000, user: root, password: {TGT_PW}}}
mysql-instances:
  - source-id: mysql-a
    meta: {{binlog-name: mysql-bin.000001, binlog-pos: 4}}
    block-allow-list: bal
    expression-filters: [even]
    syncer: {{batch: 100}}
block-allow-list:
  bal: {{do-dbs: [shop]}}
expression-filter:
  even: {{schema: shop, table: orders, insert-value-expr: "id % 2 = 0"}}
"#
    )
}

fn dmctl_do() -> String {
    format!(
        r#"
name: legacy-do
task-mode: incremental
target-database: {{host: tidb.internal, port: 4000, user: root, password: {TGT_PW}}}
mysql-instances:
  - source-id: mysql-a
    meta: {{binlog-name: mysql-bin.000001, binlog-pos: 4}}
    block-allow-list: bal
    filter-rules: [keep-inserts]
block-allow-list:
  bal: {{do-dbs: [shop]}}
filters:
  keep-inserts: {{schema-pattern: shop, table-pattern: "", events: [insert], action: Do}}
"#
    )
}

struct World {
    sim: SimServer,
    url: String,
    dir: tempfile::TempDir,
}

impl World {
    async fn new(generation: Generation) -> World {
        let sim = SimServer::start(SimOptions { generation, workers: 2, seed: Some(5), ..SimOptions::default() })
            .await
            .expect("simulator");
        let url = sim.url();
        World { sim, url, dir: tempfile::tempdir().unwrap() }
    }

    /// Write the configuration: the source, then `tasks`.
    fn config(&self, tasks: &[String]) -> String {
        let path = self.dir.path().join("dm.yaml");
        std::fs::write(&path, format!("{SOURCE}tasks:\n{}", tasks.concat())).unwrap();
        path.display().to_string()
    }

    fn log(&self) -> Vec<LoggedRequest> {
        self.sim.control().request_log()
    }

    fn legacy_reads(&self) -> Vec<String> {
        self.log().iter().filter(|r| r.path.starts_with("/apis/")).map(|r| format!("{} {}", r.method, r.path)).collect()
    }

    async fn client(&self) -> DmClient {
        DmClient::new(&ClientOptions::new(self.url.clone())).unwrap()
    }

    async fn wait_running(&self, task: &str) {
        let c = self.client().await;
        for _ in 0..400 {
            let st = c.task_status(task).await.unwrap();
            if !st.is_empty() && st.iter().all(|s| s.stage == dm_apply::dm::types::Stage::Running) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        panic!("{task} never ran");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dmctl_extras_are_refused_before_any_write_then_replaced_with_accept_loss() {
    for g in [Generation::V854, Generation::Head] {
        let w = World::new(g).await;
        // The source and an OpenAPI-created task, through dm-apply.
        let base = w.config(&[task("plain", 100, false)]);
        let (code, out, err) = run(args(&["apply", "-f", &base, "--auto-approve", "--addr", &w.url])).await;
        assert_eq!(code, Some(0), "{g:?}\n{out}\n{err}");
        // Two tasks created with dmctl, running.
        w.sim.control().create_dmctl_task(&dmctl_expr(), true).unwrap();
        w.sim.control().create_dmctl_task(&dmctl_do(), true).unwrap();
        w.wait_running("legacy-expr").await;
        w.wait_running("legacy-do").await;

        // Declared as DM's OpenAPI shows them: nothing changes, and nothing is read through the legacy endpoint.
        let same =
            w.config(&[task("plain", 100, false), task("legacy-expr", 100, false), task("legacy-do", 100, true)]);
        w.sim.control().clear_log();
        let (code, out, err) = run(args(&["plan", "-f", &same, "--detailed-exitcode", "--addr", &w.url])).await;
        assert_eq!(code, Some(0), "{g:?}\n{out}\n{err}");
        assert!(out.contains("No changes."), "{out}");
        assert_eq!(w.legacy_reads(), Vec::<String>::new(), "unchanged tasks are never read");

        // The OpenAPI-created task changes as before (in place), after one legacy read of it alone.
        let plain_changed =
            w.config(&[task("plain", 200, false), task("legacy-expr", 100, false), task("legacy-do", 100, true)]);
        w.sim.control().clear_log();
        let (code, out, err) =
            run(args(&["plan", "-f", &plain_changed, "--detailed-exitcode", "--addr", &w.url])).await;
        assert_eq!(code, Some(2), "{g:?}\n{out}\n{err}");
        assert!(out.contains("Plan: 0 to add, 1 to change, 0 to destroy."), "{out}");
        assert_eq!(w.legacy_reads(), ["GET /apis/v1alpha1/subtasks/plain"]);
        let (code, out, err) = run(args(&["apply", "-f", &plain_changed, "--auto-approve", "--addr", &w.url])).await;
        assert_eq!(code, Some(0), "{g:?}\n{out}\n{err}");
        assert!(out.contains("0 added, 1 changed, 0 destroyed"), "{out}");

        // Changing the dmctl tasks is refused by plan and by apply, naming each loss, before any write.
        let changed =
            w.config(&[task("plain", 200, false), task("legacy-expr", 200, false), task("legacy-do", 200, true)]);
        w.sim.control().clear_log();
        let (code, out, err) = run(args(&["plan", "-f", &changed, "--addr", &w.url])).await;
        assert_eq!(code, Some(1), "{g:?}\n{out}\n{err}");
        assert!(err.contains("task.legacy-expr") && err.contains("expression filter on `shop`.`orders`"), "{err}");
        assert!(err.contains("task.legacy-do") && err.contains("action Do"), "{err}");
        assert!(err.contains("--accept-loss task.legacy-expr"), "says what to do: {err}");
        let mut reads = w.legacy_reads();
        reads.sort();
        assert_eq!(reads, ["GET /apis/v1alpha1/subtasks/legacy-do", "GET /apis/v1alpha1/subtasks/legacy-expr"]);
        w.sim.control().clear_log();
        let (code, out, err) = run(args(&["apply", "-f", &changed, "--auto-approve", "--addr", &w.url])).await;
        assert_eq!(code, Some(1), "{g:?}\n{out}\n{err}");
        assert!(err.contains("expression filter on `shop`.`orders`") && err.contains("action Do"), "{err}");
        let mutations: Vec<String> =
            w.log().iter().filter(|r| r.mutating).map(|r| format!("{} {}", r.method, r.path)).collect();
        assert_eq!(mutations, Vec::<String>::new(), "apply wrote before refusing");
        // One accepted, one not: still refused, naming only the other.
        let (code, _, err) =
            run(args(&["plan", "-f", &changed, "--accept-loss", "task.legacy-expr", "--addr", &w.url])).await;
        assert_eq!(code, Some(1), "{err}");
        assert!(!err.contains("expression filter on") && err.contains("action Do"), "{err}");

        // Accepted: both are replaced (DM refuses an OpenAPI update of a dmctl task), and the next plan is empty.
        let (code, out, err) = run(args(&[
            "plan",
            "-f",
            &changed,
            "--accept-loss",
            "task.legacy-expr",
            "--accept-loss",
            "task.legacy-do",
            "--addr",
            &w.url,
        ]))
        .await;
        assert_eq!(code, Some(0), "{g:?}\n{out}\n{err}");
        assert!(out.contains("DM refuses an OpenAPI update of this task (46035)"), "{out}");
        assert!(out.contains("Plan: 2 to add, 0 to change, 2 to destroy."), "{out}");
        let (code, out, err) = run(args(&[
            "apply",
            "-f",
            &changed,
            "--accept-loss",
            "task.legacy-expr",
            "--accept-loss",
            "task.legacy-do",
            "--auto-approve",
            "--addr",
            &w.url,
        ]))
        .await;
        assert_eq!(code, Some(0), "{g:?}\n{out}\n{err}");
        assert!(err.contains("Verified: a new plan shows no changes."), "{err}");
        w.sim.control().clear_log();
        let (code, out, err) = run(args(&["plan", "-f", &changed, "--detailed-exitcode", "--addr", &w.url])).await;
        assert_eq!(code, Some(0), "{g:?}\n{out}\n{err}");
        assert!(out.contains("No changes."), "{out}");
        assert_eq!(w.legacy_reads(), Vec::<String>::new());
        // What DM holds now is what dm-apply declared: no expression filter, the filter an ignore rule.
        let c = w.client().await;
        let subs = c.subtask_configs("legacy-expr").await.unwrap().unwrap();
        assert!(subs[0].expr_filters.is_empty(), "{subs:?}");
        let subs = c.subtask_configs("legacy-do").await.unwrap().unwrap();
        assert_eq!(subs[0].filters[0].action, "Ignore", "{subs:?}");
        w.sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dmctl_task_without_extras_is_replaced_not_put() {
    let w = World::new(Generation::V854).await;
    let base = w.config(&[]);
    let (code, out, err) = run(args(&["apply", "-f", &base, "--auto-approve", "--addr", &w.url])).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    let plain_dmctl = dmctl_expr().replace("    expression-filters: [even]\n", "");
    w.sim.control().create_dmctl_task(&plain_dmctl, true).unwrap();
    w.wait_running("legacy-expr").await;
    let changed = w.config(&[task("legacy-expr", 300, false)]);
    let (code, out, err) = run(args(&["apply", "-f", &changed, "--auto-approve", "--addr", &w.url])).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    let out = out.replace("\n  #  ", " ");
    assert!(out.contains("created with dmctl"), "the reason is given: {out}");
    assert!(out.contains("1 added, 0 changed, 1 destroyed"), "{out}");
    let refused: Vec<String> = w
        .log()
        .iter()
        .filter(|r| r.mutating && r.status >= 400)
        .map(|r| format!("{} {} {}", r.method, r.path, r.status))
        .collect();
    assert!(refused.is_empty(), "no request DM refuses (no PUT): {refused:?}");
    assert!(!w.log().iter().any(|r| r.method == "PUT" && r.path == "/api/v1/tasks/legacy-expr"), "PUT sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_warns_about_what_the_openapi_does_not_show() {
    let w = World::new(Generation::V854).await;
    let base = w.config(&[]);
    let (code, out, err) = run(args(&["apply", "-f", &base, "--auto-approve", "--addr", &w.url])).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    w.sim.control().create_dmctl_task(&dmctl_expr(), false).unwrap();
    w.sim.control().create_dmctl_task(&dmctl_do(), false).unwrap();
    let (code, out, err) = run(args(&["import", "--addr", &w.url])).await;
    assert_eq!(code, Some(0), "{out}\n{err}");
    for text in [&out, &err] {
        assert!(text.contains("task `legacy-expr` holds settings DM's OpenAPI does not show"), "{text}");
        assert!(text.contains("expression filter on `shop`.`orders`"), "{text}");
        assert!(text.contains("task `legacy-do`") && text.contains("action Do"), "{text}");
    }
    // The warnings are comments of the written file, which stays valid.
    let header: Vec<&str> = out.lines().take_while(|l| l.starts_with('#') || l.is_empty()).collect();
    assert!(header.iter().any(|l| l.contains("legacy-expr") && l.contains("expression filter")), "{out}");
    let path = w.dir.path().join("imported.yaml");
    std::fs::write(&path, &out).unwrap();
    let (code, out2, err2) = run(args(&["validate", "--allow-missing-env", "-f", &path.display().to_string()])).await;
    assert_eq!(code, Some(0), "{out2}\n{err2}");
}
