//! Renderer snapshots (text, markdown, json) of one plan holding every action kind, plus the markdown size limit.

use dm_apply::config::Desired;
use dm_apply::dm::ServerVersion;
use dm_apply::dm::types::{Stage, Unit};
use dm_apply::live::Live;
use dm_apply::plan::testing::{desired_from_yaml, live_after_apply, status};
use dm_apply::plan::*;
use dm_apply::render;

const OLD: &str = r#"
sources:
  - {source_name: s1, host: h1, port: 3306, user: u, password: pw1}
  - {source_name: s2, host: h2, port: 3306, user: u, password: pw2}
  - {source_name: gone, host: hg, port: 3306, user: u, password: pwg}
tasks:
  - name: t-update
    task_mode: incremental
    target_config: {host: tidb, port: 4000, user: root, password: tpw}
    binlog_filter_rule:
      f1: {ignore_event: [drop table, truncate table]}
    table_migrate_rule:
      - source: {source_name: s1, schema: shop}
        binlog_filter_rule: [f1]
    source_config:
      incr_migrate_conf: {repl_threads: 8}
      source_conf: [{source_name: s1, binlog_name: mysql-bin.000001, binlog_pos: 4}]
  - name: t-replace
    task_mode: all
    target_config: {host: tidb, port: 4000, user: root, password: tpw}
    source_config:
      source_conf: [{source_name: s1}]
  - name: t-paused
    task_mode: incremental
    target_config: {host: tidb, port: 4000, user: root, password: tpw}
    source_config:
      source_conf: [{source_name: s2, binlog_gtid: "3ccc475b-2343-11e7-be21-6c0b84d59f30:1-14"}]
  - name: t-old
    task_mode: all
    target_config: {host: tidb, port: 4000, user: root, password: tpw}
    source_config:
      source_conf: [{source_name: gone}]
"#;

const NEW: &str = r#"
sources:
  - {source_name: s1, host: h1, port: 3306, user: u, password: pw1-rotated}
  - {source_name: s2, host: h2, port: 3306, user: u, password: pw2, enable: false}
  - {source_name: s3, host: h3, port: 3306, user: u, password: pw3}
tasks:
  - name: t-update
    task_mode: incremental
    target_config: {host: tidb, port: 4000, user: root, password: tpw}
    binlog_filter_rule:
      f1: {ignore_event: [drop table, truncate table, drop database]}
    table_migrate_rule:
      - source: {source_name: s1, schema: shop}
        binlog_filter_rule: [f1]
      - source: {source_name: s1, schema: billing}
    source_config:
      incr_migrate_conf: {repl_threads: 16}
      source_conf: [{source_name: s1, binlog_name: mysql-bin.000001, binlog_pos: 4}]
  - name: t-replace
    task_mode: all
    target_config: {host: tidb, port: 4000, user: root, password: tpw}
    source_config:
      source_conf: [{source_name: s1}, {source_name: s3}]
    lifecycle: {allow_restart: true}
  - name: t-paused
    task_mode: incremental
    target_config: {host: tidb, port: 4000, user: root, password: tpw}
    source_config:
      source_conf: [{source_name: s2, binlog_gtid: "3ccc475b-2343-11e7-be21-6c0b84d59f30:1-14"}]
  - name: t-new
    task_mode: incremental
    stage: stopped
    target_config: {host: tidb, port: 4000, user: root, password: tpw}
    source_config:
      source_conf: [{source_name: s3, binlog_name: mysql-bin.000009, binlog_pos: 4}]
"#;

fn d(y: &str) -> Desired {
    desired_from_yaml("dm.yaml", y).unwrap()
}

fn sample_plan() -> Plan {
    let v = ServerVersion::parse("v8.5.3");
    let mut live: Live = live_after_apply(&d(OLD), &v, 0);
    let t = live.tasks["t-paused"].task.clone();
    let mut st = status(&t, Stage::Paused, Unit::Sync);
    st[0].error_msg = Some("[code=10001:class=database:scope=upstream:level=high], Message: connection refused".into());
    live.tasks.get_mut("t-paused").unwrap().status = Some(st);
    live.warnings.push("status of task t-x is unknown: HTTP 400".into());
    let key = Some(dm_apply::plan::testing::test_key());
    make_plan(&d(NEW), &live, &PlanOptions { prune: true, state_key: key, ..Default::default() }).unwrap()
}

#[test]
fn text_snapshot() {
    let p = sample_plan();
    let text = render::text::render(&p, false);
    assert!(text.ends_with(&format!("{}\n", render::text::summary_line(&p))));
    assert!(!text.contains("\x1b["));
    insta::assert_snapshot!("text", text);
    let colored = render::text::render(&p, true);
    assert!(colored.contains("\x1b[32m"));
}

#[test]
fn markdown_snapshot() {
    let md = render::markdown::render(&sample_plan());
    insta::assert_snapshot!("markdown", md);
}

#[test]
fn json_snapshot() {
    let p = sample_plan();
    let mut v: serde_json::Value = serde_json::from_str(&render::json::render(&p, &[])).unwrap();
    assert_eq!(v["format_version"], dm_apply::plan::FORMAT_VERSION);
    v["dm_apply_version"] = "[version]".into();
    insta::assert_json_snapshot!("json", v);
}

#[test]
fn summary_counts_terraform_style() {
    let p = sample_plan();
    // add: s3, t-new, t-replace(replace); change: s1 (password), s2 (disable), t-update; destroy: source.gone,
    // task.t-old, t-replace. t-paused's start is blocked: its only source ends disabled, where DM starts no task
    // (38058), so apply would only fail on it.
    assert_eq!(
        render::text::summary_line(&p),
        "Plan: 3 to add, 3 to change, 3 to destroy. Not applied now: 0 deferred, 1 blocked."
    );
}

#[test]
fn no_changes_text() {
    let v = ServerVersion::parse("v26.4.0-alpha");
    let desired = d(OLD);
    let opts = PlanOptions { state_key: Some(dm_apply::plan::testing::test_key()), ..Default::default() };
    let p = make_plan(&desired, &live_after_apply(&desired, &v, 2), &opts).unwrap();
    assert_eq!(render::text::render(&p, false), "No changes. DM cluster matches the configuration.\n");
    let md = render::markdown::render(&p);
    assert!(md.starts_with("### dm-apply plan: no changes"));
}

#[test]
fn markdown_stays_under_github_limit_with_summary_and_closed_blocks() {
    // 3,000 tasks, all created: the details are far longer than a comment.
    let mut y = String::from("sources:\n  - {source_name: s1, host: h1, port: 3306, user: u, password: pw}\ntasks:\n");
    for i in 0..3000 {
        y.push_str(&format!(
            "  - name: task-{i:05}\n    task_mode: all\n    target_config: {{host: tidb, port: 4000, user: root, password: tpw}}\n    source_config:\n      source_conf: [{{source_name: s1}}]\n"
        ));
    }
    let desired = d(&y);
    let p =
        make_plan(&desired, &Live::empty("http://x", ServerVersion::parse("v8.5.3")), &PlanOptions::default()).unwrap();
    let md = render::markdown::render(&p);
    assert!(md.chars().count() < render::markdown::GITHUB_COMMENT_LIMIT, "{}", md.chars().count());
    assert!(md.starts_with("### dm-apply plan: 3001 to add, 0 to change, 0 to destroy"));
    assert!(md.contains("output truncated"));
    assert!(md.trim_end().ends_with("**Plan: 3001 to add, 0 to change, 0 to destroy.**"));
    assert_eq!(md.matches("<details>").count(), md.matches("</details>").count());
    let fence = md.lines().find(|l| l.starts_with("```") && l.ends_with("diff")).unwrap().trim_end_matches("diff");
    assert_eq!(md.lines().filter(|l| l.starts_with(fence)).count(), 2, "fence opened and closed once");
}

#[test]
fn refused_plan_markdown_and_json_carry_the_errors() {
    let v = ServerVersion::parse("v8.5.3");
    let live = live_after_apply(&d(OLD), &v, 0);
    let new = NEW.replace("lifecycle: {allow_restart: true}", "lifecycle: {allow_restart: false}");
    let err = make_plan(&d(&new), &live, &PlanOptions::default()).unwrap_err();
    let plan = err.plan.as_deref().unwrap();
    let md = render::markdown::render_with_errors(plan, &err.problems);
    assert!(md.starts_with("> [!CAUTION]"), "{md}");
    assert!(md.contains("task.t-replace") && md.contains("restarts its migration"), "{md}");
    let v: serde_json::Value = serde_json::from_str(&render::json::render(plan, &err.problems)).unwrap();
    assert!(v["errors"][0].as_str().unwrap().contains("task.t-replace"));
}
