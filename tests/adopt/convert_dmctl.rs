//! `dm-apply convert` on the dmctl files in tests/dmctl/: every row of the mapping table (semantics §7), the
//! non-representable fields as warnings, secrets as placeholders, and output that `validate` accepts.

use std::path::PathBuf;
use std::process::Command;

use dm_apply::config;
use dm_apply::convert::{self, ConvertError};

const ALL: &[&str] = &[
    "tests/dmctl/source-mysql-01.yaml",
    "tests/dmctl/source-mariadb-02.yaml",
    "tests/dmctl/task-all.yaml",
    "tests/dmctl/task-incremental.yaml",
    "tests/dmctl/task-no-rules.yaml",
    "tests/dmctl/task-bw-inline.yaml",
];

const SECRETS: &[&str] = &[
    "s3cret-source-pw",
    "plain-target-pw",
    "another-plain-pw",
    "YI4n2HlM3w1Hqc1+bG1PaWQ8q1b0t6AxDuhNmYg1ZNWnSs/5xVHU",
];

fn paths(files: &[&str]) -> Vec<PathBuf> {
    files.iter().map(PathBuf::from).collect()
}

/// The output must load with `config` (env placeholders resolved to dummy values).
fn assert_loads(text: &str) -> config::Analysis {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("converted.yaml");
    std::fs::write(&file, text).unwrap();
    let analysis = config::analyze_with_env(&[file], &|name| name.starts_with("DM_").then(|| "x".to_owned()));
    let errors: Vec<String> = analysis.errors.iter().map(|e| config::render_plain(e)).collect();
    assert!(errors.is_empty(), "converted output does not validate:\n{}\n---\n{text}", errors.join("\n"));
    analysis
}

#[test]
fn converts_every_mapping_row() {
    let conv = convert::convert_files(&paths(ALL)).unwrap();
    let text = convert::render(&conv, "../schemas/dm-apply.schema.json");
    insta::assert_snapshot!("all_files", text);
    let analysis = assert_loads(&text);
    assert_eq!(analysis.desired.sources.len(), 2);
    assert_eq!(analysis.desired.tasks.len(), 4);
    // black-white-list, inline blocks and `--consistency=X` (task-bw-inline.yaml).
    let t = &analysis.desired.tasks["audit-incr"].0;
    let full = t.source_config.full_migrate_conf.as_ref().unwrap();
    assert_eq!((full.export_threads, full.consistency), (Some(2), Some(config::Consistency::Flush)));
    assert_eq!(t.source_config.incr_migrate_conf.as_ref().unwrap().repl_batch, Some(50));
    assert_eq!(t.enhance_online_schema_change, Some(false));
    assert_eq!(t.table_migrate_rule.len(), 2, "route + black-white-list entry");
    for s in SECRETS {
        assert!(!text.contains(s), "a secret was copied into the output");
    }
    assert!(text.starts_with("# yaml-language-server: $schema=../schemas/dm-apply.schema.json\n"));
}

#[test]
fn non_representable_fields_are_warned_at_their_location() {
    let conv = convert::convert_files(&paths(ALL)).unwrap();
    let find = |needle: &str| {
        conv.warnings
            .iter()
            .find(|w| w.message.contains(needle))
            .unwrap_or_else(|| panic!("no warning mentions {needle}: {:#?}", conv.warnings))
            .clone()
    };
    // Do / Error filters are not converted (never inverted into Ignore).
    let w = find("`only-inserts` has action `Do`");
    assert_eq!((w.file.as_str(), w.line), ("tests/dmctl/task-all.yaml", 92));
    find("`refuse-drop` has action `Error`");
    let task = &conv.config.tasks.iter().find(|t| t.name == "orders-all").unwrap();
    assert!(!task.binlog_filter_rule.contains_key("only-inserts"));
    assert!(!task.binlog_filter_rule.contains_key("refuse-drop"));
    assert!(task.binlog_filter_rule.contains_key("ignore-truncate"));
    // Ignore lists, extractors, expression filters, column mappings, validators, task-level knobs.
    for needle in [
        "`ignore-dbs` is not representable",
        "`ignore-tables` is not representable",
        "route extractor `extract-table`",
        "`expression-filter` is not representable",
        "`expression-filters` is not representable",
        "`column-mappings` is not representable",
        "`column-mapping-rules` is not representable",
        "`validators` is not representable",
        "`validator-config-name` is not representable",
        "`case-sensitive` is not representable",
        "`collation_compatible` is not representable",
        "`clean-dump-file` is not representable",
        "syncer `queue-size`",
        "syncer `compact`",
        "mydumper `chunk-filesize`",
        "extra-args `--no-locks`",
        "session variable `sql_mode`",
        "`server-id` is not representable",
        "`checker` is not representable",
        "`filters` is not representable",
        "different dump/load/sync settings",
        "(WIDER)",
        "(NARROWER)",
    ] {
        find(needle);
    }
    let w = find("`remove-meta`");
    assert!(w.message.contains("start-task --remove-meta"), "{}", w.message);
    assert_eq!((w.line, w.column), (12, 1));
}

#[test]
fn secrets_become_placeholders_listed_as_variables() {
    let conv = convert::convert_files(&paths(ALL)).unwrap();
    let names: Vec<&str> = conv.env.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "DM_SOURCE_MARIADB_02_PASSWORD",
            "DM_SOURCE_MYSQL_01_PASSWORD",
            "DM_SOURCE_MYSQL_01_SSL_KEY",
            "DM_TARGET_DM_AUDIT_PASSWORD",
            "DM_TARGET_DM_WRITER_PASSWORD",
            "DM_TARGET_DM_WRITER_SSL_KEY",
        ]
    );
    // The same target user on the same host shares one variable across tasks.
    let targets: Vec<&str> = conv.config.tasks.iter().map(|t| t.target_config.password.expose()).collect();
    assert_eq!(
        targets,
        [
            "${env:DM_TARGET_DM_AUDIT_PASSWORD}",
            "${env:DM_TARGET_DM_WRITER_PASSWORD}",
            "",
            "${env:DM_TARGET_DM_WRITER_PASSWORD}"
        ]
    );
    assert!(conv.env[0].purpose.contains("dmctl-encrypted"));
    // TLS: CA and certificate contents read from the files, the key a placeholder.
    let src = conv.config.sources.iter().find(|s| s.source_name == "mysql-01").unwrap();
    let sec = src.security.as_ref().unwrap();
    assert!(sec.ssl_ca_content.contains("BEGIN CERTIFICATE"));
    assert_eq!(sec.ssl_key_content.expose(), "${env:DM_SOURCE_MYSQL_01_SSL_KEY}");
}

#[test]
fn one_target_user_with_different_passwords_gets_different_variables() {
    let task = |name: &str, pw: &str| convert::Input {
        name: format!("{name}.yaml"),
        text: format!(
            "name: {name}\ntask-mode: all\ntarget-database: {{host: h, port: 4000, user: u, password: {pw}}}\n\
             mysql-instances: [{{source-id: s}}]\n"
        ),
        base_dir: ".".into(),
        optional: false,
    };
    let conv = convert::convert(&[task("t1", "one"), task("t2", "two"), task("t3", "one")]).unwrap();
    let vars: Vec<&str> = conv.config.tasks.iter().map(|t| t.target_config.password.expose()).collect();
    assert_eq!(vars, ["${env:DM_TARGET_U_PASSWORD}", "${env:DM_TARGET_U_PASSWORD_2}", "${env:DM_TARGET_U_PASSWORD}"]);
}

#[test]
fn output_is_stable_whatever_the_input_order() {
    let mut reversed = ALL.to_vec();
    reversed.reverse();
    let a = convert::to_yaml(&convert::convert_files(&paths(ALL)).unwrap().config);
    let b = convert::to_yaml(&convert::convert_files(&paths(&reversed)).unwrap().config);
    assert_eq!(a, b);
}

#[test]
fn a_task_alone_lists_its_sources_as_external() {
    let conv = convert::convert_files(&paths(&["tests/dmctl/task-all.yaml"])).unwrap();
    assert_eq!(conv.config.external_sources, ["mysql-01", "mysql-02"]);
    assert_loads(&convert::render(&conv, "x.json"));
}

fn convert_text(text: &str) -> Result<convert::Conversion, ConvertError> {
    convert::convert(&[convert::Input {
        name: "in.yaml".into(),
        text: text.into(),
        base_dir: ".".into(),
        optional: false,
    }])
}

#[test]
fn invalid_inputs_are_errors_with_locations() {
    let cases = [
        ("just: something\n", "in.yaml: neither a dmctl task file"),
        (
            "name: t\ntarget-database: {host: h, port: 4000, user: u}\nmysql-instances: [{source-id: s}]\n",
            "in.yaml:1:1: `task-mode` is required",
        ),
        (
            "name: t\ntask-mode: sync\ntarget-database: {host: h, port: 4000, user: u}\nmysql-instances: [{source-id: s}]\n",
            "in.yaml:2:1: task-mode `sync`",
        ),
        (
            "name: t\ntask-mode: all\ntarget-database: {host: h, port: 99999, user: u}\nmysql-instances: [{source-id: s}]\n",
            "in.yaml:3:28: `port` is required: a number from 1 to 65535",
        ),
        ("source-id: s\nfrom: {host: h, port: 3306}\n", "in.yaml:2:1: `user` is required"),
        ("a: [\n", "in.yaml: not valid YAML"),
    ];
    for (text, want) in cases {
        let err = convert_text(text).unwrap_err().to_string();
        assert!(err.starts_with(want), "for {text:?}: got {err:?}, want {want:?}");
    }
}

#[test]
fn cli_writes_yaml_to_stdout_and_warnings_to_stderr() {
    let out =
        Command::new(env!("CARGO_BIN_EXE_dm-apply")).args(["convert"]).args(ALL).env("NO_COLOR", "1").output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let conv = convert::convert_files(&paths(ALL)).unwrap();
    assert_eq!(stdout, convert::render(&conv, "../schemas/dm-apply.schema.json"));
    assert!(stderr.contains("warning: tests/dmctl/task-all.yaml:92:5: binlog filter `only-inserts` has action `Do`"));
    assert!(stderr.contains("DM_SOURCE_MYSQL_01_PASSWORD"));
    for s in SECRETS {
        assert!(!stdout.contains(s) && !stderr.contains(s));
    }

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_dm-apply"))
        .args(["convert", "tests/dmctl/task-no-rules.yaml", "-o"])
        .arg(&file)
        .args(["--schema-ref", "https://example.invalid/dm-apply.schema.json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("# yaml-language-server: $schema=https://example.invalid/dm-apply.schema.json\n"));

    let out =
        Command::new(env!("CARGO_BIN_EXE_dm-apply")).args(["convert", "tests/dmctl/missing.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read `tests/dmctl/missing.yaml`"));
}

#[test]
fn wrong_types_never_panic_and_are_reported() {
    let base = "name: t\ntask-mode: all\ntarget-database: {host: h, port: 4000, user: u}\n";
    let cases = [
        "mysql-instances: 5\n",
        "mysql-instances: [5]\n",
        "mysql-instances: [{source-id: s, route-rules: r1, filter-rules: [1, {a: b}], meta: 3}]\nroutes: []\n",
        "mysql-instances: [{source-id: s, block-allow-list: b}]\nblock-allow-list: {b: {do-dbs: x, do-tables: [1, {db-name: d}]}}\n",
        "mysql-instances: [{source-id: s, mydumper-config-name: m, loader: {pool-size: many}, syncer-thread: x}]\nmydumpers: {m: 3}\n",
        "mysql-instances: [{source-id: s, filter-rules: [f]}]\nfilters: {f: {schema-pattern: [x], action: Ignore}}\n",
        "mysql-instances: [{source-id: s}]\nonline-ddl: maybe\nignore-checking-items: {a: 1}\ntimezone: [1]\n",
    ];
    for extra in cases {
        let text = format!("{base}{extra}");
        match convert_text(&text) {
            Ok(conv) => {
                assert!(!conv.warnings.is_empty(), "no warning for {extra:?}");
                if extra.contains("routes: []") {
                    assert!(conv.warnings.iter().any(|w| w.message.contains("`routes` should be a mapping")));
                }
                assert!(conv.warnings.iter().all(|w| w.file == "in.yaml" && w.line >= 1));
            }
            Err(e) => assert!(e.to_string().starts_with("in.yaml:"), "{e}"),
        }
    }
    let src = "source-id: s\nfrom: {host: h, port: 3306, user: u, password: [1], security: x}\npurge: 3\nenable: yes-please\n";
    let conv = convert_text(src).unwrap();
    assert!(conv.config.sources[0].password.is_none());
    for needle in ["password", "`security` should be a mapping", "`purge` should be a mapping", "`enable` should be"] {
        assert!(conv.warnings.iter().any(|w| w.message.contains(needle)), "{needle}: {:#?}", conv.warnings);
    }
}

#[test]
fn a_directory_stands_for_its_yaml_files_and_other_files_there_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["source-mysql-01.yaml", "task-no-rules.yaml"] {
        std::fs::copy(format!("tests/dmctl/{f}"), dir.path().join(f)).unwrap();
    }
    std::fs::write(dir.path().join("notes.yml"), "owner: team-a\n").unwrap();
    std::fs::write(dir.path().join("README.md"), "not yaml").unwrap();
    let conv = convert::convert_files(&[dir.path().to_path_buf()]).unwrap();
    assert_eq!((conv.config.sources.len(), conv.config.tasks.len()), (1, 1));
    assert!(conv.warnings.iter().any(|w| w.file.ends_with("notes.yml") && w.message.contains("skipped")));
    // Named explicitly, the same file is an error.
    let err = convert::convert_files(&[dir.path().join("notes.yml")]).unwrap_err();
    assert!(err.to_string().contains("neither a dmctl task file"), "{err}");
}
