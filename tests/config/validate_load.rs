//! The loader's library API (`config::load`, `config::analyze_with_env`, and `commands::common::load_for_command` built on them) as plan,
//! apply and drift use it.

use std::path::PathBuf;

use dm_apply::config::{self, DesiredStage, TaskMode};

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

const SOURCE: &str = "sources:\n  - source_name: mysql-01\n    host: db.internal\n    port: 3306\n    user: dm\n    password: ${env:LOAD_TEST_PW}\n";
const TASK: &str = "tasks:\n  - name: t1\n    task_mode: incremental\n    target_config: {host: tidb, port: 4000, user: root, password: \"$${not-env}\"}\n    source_config:\n      source_conf: [{source_name: mysql-01, binlog_name: mysql-bin.000001, binlog_pos: 4}]\n";

fn env(name: &str) -> Option<String> {
    (name == "LOAD_TEST_PW").then(|| "pw-from-env".to_owned())
}

#[test]
fn merges_files_with_origins_and_interpolates() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir, "b/tasks.yml", TASK);
    write(&dir, "a/sources.yaml", SOURCE);
    write(&dir, ".hidden/ignored.yaml", "this: is: not: loaded");
    write(&dir, "notes.txt", "not yaml");
    let a = config::analyze_with_env(&[dir.path().to_path_buf()], &env);
    assert!(a.errors.is_empty(), "{:?}", a.errors);
    assert_eq!(a.files, 2);
    let (src, origin) = &a.desired.sources["mysql-01"];
    assert_eq!(src.password.as_ref().map(|p| p.expose()), Some("pw-from-env"));
    assert!(origin.file.ends_with("a/sources.yaml"), "{origin:?}");
    assert_eq!((origin.line, origin.column), (2, 5));
    let (task, origin) = &a.desired.tasks["t1"];
    assert_eq!(task.task_mode, TaskMode::Incremental);
    assert_eq!(task.stage, DesiredStage::Running);
    assert_eq!(task.target_config.password.expose(), "${not-env}", "`$${{` writes a literal `${{`");
    assert!(origin.file.ends_with("b/tasks.yml"));
    assert_eq!((origin.line, origin.column), (2, 5));
}

#[test]
fn load_returns_every_error_sorted_and_warnings_separately() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        &dir,
        "bad.yaml",
        "sources:\n  - source_name: s1\n    host: h\n    port: 0\n    user: u\n    password: plain\ntasks:\n  - name: t\n    task_mode: full\n    target_config: {host: h, port: 4000, user: u}\n    source_config: {source_conf: [{source_name: nope}]}\n",
    );
    let err = config::load(&[bad]).expect_err("invalid");
    assert_eq!(err.errors.len(), 2, "{:?}", err.errors);
    assert!(err.errors[0].line < err.errors[1].line);
    assert!(err.errors[0].location().ends_with("bad.yaml:4:11"), "{}", err.errors[0].location());
    assert!(err.errors[1].message.contains("`nope`"));
    let rendered = config::render_plain(&err);
    assert!(rendered.contains("the configuration is invalid: 2 errors"), "{rendered}");
    assert!(!rendered.contains("plain\n") && !rendered.contains(": plain"), "{rendered}");
}

#[test]
fn valid_load_carries_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "ok.yaml",
        "sources:\n  - source_name: s1\n    host: h\n    port: 3306\n    user: u\n    password: not-from-env\n",
    );
    let loaded = config::load(&[f]).expect("valid");
    assert_eq!(loaded.desired.sources.len(), 1);
    assert_eq!(loaded.warnings.len(), 1);
    let text = format!("{:?}", loaded.warnings[0]);
    assert!(text.contains("written in plain text"), "{text}");
    assert!(!text.contains("not-from-env"), "{text}");
}

#[test]
fn load_for_command_returns_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "x.yaml", "tasks: {}\n");
    let ui = dm_apply::ui::Ui::plain();
    let err = dm_apply::commands::common::load_for_command(&[f], &ui).expect_err("invalid");
    assert!(format!("{err}").contains("1 error"));
    let empty = write(&dir, "empty.yaml", "");
    let desired = dm_apply::commands::common::load_for_command(&[empty], &ui).expect("an empty file is valid");
    assert!(desired.sources.is_empty() && desired.tasks.is_empty());
}

#[test]
fn a_file_named_twice_is_loaded_once() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "s.yaml", "sources:\n  - {source_name: s1, host: h, port: 3306, user: u}\n");
    let a = config::analyze_with_env(&[f.clone(), dir.path().to_path_buf(), f], &env);
    assert!(a.errors.is_empty(), "{:?}", a.errors);
    assert_eq!(a.files, 1);
}

#[test]
fn schema_rejects_what_semantics_cannot_see() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "x.yaml",
        "sources:\n  - {source_name: s1, host: h, port: 3306, user: u, flavor: postgres, enable: 1, extra: 1}\n",
    );
    let a = config::analyze_with_env(&[f], &env);
    let codes: Vec<&str> = a.errors.iter().map(|p| p.code.as_str()).collect();
    assert_eq!(
        codes,
        ["dm_apply::config::enum", "dm_apply::config::type", "dm_apply::config::unknown_key"],
        "{:?}",
        a.errors
    );
}

#[test]
fn x_keys_hold_anchors_for_merge_keys() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "anchors.yaml",
        "x-mysql: &mysql {host: db.internal, port: 3306, user: dm, password: \"${env:LOAD_TEST_PW}\"}\nsources:\n  - <<: *mysql\n    source_name: s1\n  - <<: *mysql\n    source_name: s2\n    port: 3307\n",
    );
    let a = config::analyze_with_env(&[f], &env);
    assert!(a.errors.is_empty(), "{:?}", a.errors);
    assert_eq!(a.desired.sources["s2"].0.port, 3307);
    assert_eq!(a.desired.sources["s1"].0.host, "db.internal");
    assert_eq!(a.desired.sources["s1"].0.password.as_ref().map(|p| p.expose()), Some("pw-from-env"));
}

#[test]
fn several_documents_in_one_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "multi.yaml", "sources: []\n---\ntasks: []\n");
    let a = config::analyze_with_env(&[f], &env);
    assert_eq!(a.errors.len(), 1);
    assert!(a.errors[0].message.contains("single YAML document"), "{}", a.errors[0].message);
    assert_eq!(a.errors[0].line, 3);
}

#[test]
fn empty_top_level_keys_mean_empty_lists() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "x.yaml", "sources:\n#  - source_name: x\ntasks:\nexternal_sources:\n");
    let a = config::analyze_with_env(&[f], &env);
    assert!(a.errors.is_empty(), "{:?}", a.errors);
}

#[test]
fn a_key_at_the_wrong_level_says_where_it_belongs() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "x.yaml",
        "tasks:\n  - name: t\n    task_mode: full\n    binlog_name: x\n    target_config: {host: h, port: 1, user: u}\n    source_config: {source_conf: [{source_name: s}]}\nexternal_sources: [s]\n",
    );
    let a = config::analyze_with_env(&[f], &env);
    assert_eq!(a.errors.len(), 1, "{:?}", a.errors);
    assert_eq!(a.errors[0].help.as_deref(), Some("`binlog_name` belongs in `tasks[].source_config.source_conf[]`"));
    assert_eq!((a.errors[0].line, a.errors[0].column), (4, 5));
}

#[test]
fn numbers_out_of_the_integer_range_are_schema_errors_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "x.yaml",
        "tasks:\n  - name: t\n    task_mode: incremental\n    target_config: {host: h, port: 4000.0, user: u}\n    source_config:\n      source_conf:\n        - {source_name: s, binlog_name: b, binlog_pos: 18446744073709551615}\nexternal_sources: [s]\n",
    );
    let a = config::analyze_with_env(&[f], &env);
    assert_eq!(a.errors.len(), 1, "{:?}", a.errors);
    assert_eq!(a.errors[0].code, "dm_apply::config::range");
    assert_eq!((a.errors[0].line, a.errors[0].column), (7, 56));
}

#[test]
fn an_unknown_top_level_key_does_not_hide_resource_checks() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "x.yaml",
        "sourcez: []\ntasks:\n  - name: t\n    task_mode: full\n    target_config: {host: h, port: 1, user: u}\n    source_config: {source_conf: [{source_name: missing}]}\n",
    );
    let a = config::analyze_with_env(&[f], &env);
    let codes: Vec<&str> = a.errors.iter().map(|p| p.code.as_str()).collect();
    assert_eq!(codes, ["dm_apply::config::unknown_key", "dm_apply::config::unknown_source"]);
}

#[test]
fn ignore_changes_accepts_the_paths_plans_print() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "x.yaml",
        r#"tasks:
  - name: t
    task_mode: full
    target_config: {host: h, port: 1, user: u}
    binlog_filter_rule: {f: {ignore_event: [all dml]}}
    table_migrate_rule: [{source: {source_name: s, schema: d}, binlog_filter_rule: [f]}]
    source_config: {source_conf: [{source_name: s}]}
    lifecycle:
      ignore_changes:
        - stage
        - source_config.incr_migrate_conf.repl_threads
        - source_config.source_conf[0].binlog_name
        - binlog_filter_rule["f"].ignore_event
        - table_migrate_rule[0].target.schema
        - source_config.source_conf[0].binlog_nam
        - target_config..host
external_sources: [s]
"#,
    );
    let a = config::analyze_with_env(&[f], &env);
    let lines: Vec<(usize, &str)> = a.errors.iter().map(|p| (p.line, p.help.as_deref().unwrap_or(""))).collect();
    assert_eq!(lines.len(), 2, "{:?}", a.errors);
    assert_eq!(lines[0], (15, "did you mean `binlog_name`?"));
    assert_eq!(lines[1].0, 16);
}

#[test]
fn aliased_secrets_are_hidden_where_they_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "x.yaml",
        "x-d: &d {host: h, port: 0, user: u, password: hunter2-aliased}\nsources:\n  - <<: *d\n    source_name: s1\n",
    );
    let a = config::analyze_with_env(&[f], &env);
    assert_eq!(a.errors.len(), 1, "{:?}", a.errors);
    let text = config::render_plain(&a.errors[0]);
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("value written here"), "{text}");
    assert!(text.contains("<<: *d"), "the alias itself stays readable:\n{text}");
}
