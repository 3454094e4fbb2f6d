//! `dm-apply convert` on the dmctl files in tests/dmctl/: every row of the mapping table, what a task replicates
//! carried exactly or refused (never widened), the non-representable fields as warnings, secrets as placeholders,
//! and output that `validate` accepts. The ignored `tiflow_corpus` test runs PingCAP's own dmctl files.

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

fn rules(t: &config::TaskSpec) -> Vec<(&str, &str, bool)> {
    t.table_migrate_rule
        .iter()
        .map(|r| (r.source.schema.as_str(), r.source.table.as_str(), r.target.is_some()))
        .collect()
}

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
    // The route has no do-tables entry to sit on: its own rule plus `audit`.`*`, which keeps every table of
    // `audit` replicated (in DM a do-tables list narrows the do-dbs list).
    assert_eq!(rules(t), [("audit", "", false), ("audit", "*", false), ("audit", "log_*", true)]);
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
    // A filter DM itself drops (the action is case-sensitive) is left out, said so.
    let w = find("`inert-lowercase-action`: DM drops this rule");
    assert_eq!((w.file.as_str(), w.line), ("tests/dmctl/task-all.yaml", 94));
    let task = &conv.config.tasks.iter().find(|t| t.name == "orders-all").unwrap();
    assert!(!task.binlog_filter_rule.contains_key("inert-lowercase-action"));
    assert!(task.binlog_filter_rule.contains_key("ignore-truncate"));
    // Lists DM does not consult, extractors, column mappings, validators, task-level knobs.
    for needle in [
        "`ignore-dbs` of block-allow list `orders-ba` has no effect",
        "`ignore-tables` of block-allow list `orders-ba` has no effect",
        "route extractor `extract-table`",
        "expression filter `even-only` is not referenced",
        "`column-mappings` is not representable",
        "`column-mapping-rules` is not representable",
        "`validators` is not representable",
        "`validator-config-name` is not representable",
        "`collation_compatible` is not representable",
        "`clean-dump-file` is not representable",
        "syncer `queue-size`",
        "syncer `compact`",
        "mydumper `chunk-filesize`",
        "extra-args `--no-locks`",
        "session variable `sql_mode`",
        "`server-id` is not representable",
        "`checker` is not representable",
        "source-level binlog filters are not part of DM's OpenAPI source",
        "different dump/load/sync settings",
    ] {
        find(needle);
    }
    // Nothing here widens or narrows: no such claim is made.
    assert!(conv.warnings.iter().all(|w| !w.message.contains("WIDER")), "{:#?}", conv.warnings);
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
    assert!(
        stderr.contains("warning: tests/dmctl/task-all.yaml:94:5: binlog filter `inert-lowercase-action`: DM drops"),
        "{stderr}"
    );
    assert!(stderr.contains("DM_SOURCE_MYSQL_01_PASSWORD"));
    for s in SECRETS {
        assert!(!stdout.contains(s) && !stderr.contains(s));
    }

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_dm-apply"))
        .args(["convert", "tests/dmctl/task-no-rules.yaml", "--out"])
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

fn conv_ok(files: &[&str]) -> convert::Conversion {
    convert::convert_files(&paths(files)).unwrap_or_else(|e| panic!("{e:?}"))
}

fn refused(files: &[&str]) -> Vec<convert::CannotCarry> {
    match convert::convert_files(&paths(files)) {
        Err(ConvertError::CannotCarry { items }) => items,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn dmctl_value(file: &str) -> serde_json::Value {
    serde_saphyr::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

fn known_event(e: &str) -> bool {
    config::BINLOG_EVENTS.contains(&e)
}

/// What each source replicates under dmctl vs. converted, over names around the file's patterns.
fn assert_same_scope(file: &str, conv: &convert::Conversion, names_s: &[&str], names_t: &[&str], ci: bool) {
    let task = dmctl_value(file);
    let spec = &conv.config.tasks[0];
    let (s, t): (Vec<String>, Vec<String>) =
        (names_s.iter().map(|x| x.to_string()).collect(), names_t.iter().map(|x| x.to_string()).collect());
    for sc in &spec.source_config.source_conf {
        let dmctl = crate::convert_ref::dmctl_instance(&task, &sc.source_name, None, &known_event);
        let out = crate::convert_ref::openapi_instance(spec, &sc.source_name);
        let d = crate::convert_ref::compare(&dmctl, &out, &s, &t, ci);
        assert!(d.wider.is_empty() && d.narrower.is_empty() && d.routed.is_empty(), "{}: {d:#?}", sc.source_name);
    }
}

#[test]
fn a_filter_on_every_schema_goes_on_the_existing_rule() {
    let conv = conv_ok(&["tests/dmctl/task-star-filter.yaml"]);
    let t = &conv.config.tasks[0];
    // No new allow-list rule: the filter is attached to the one rule there is.
    assert_eq!(rules(t), [("billing", "", false)]);
    assert_eq!(t.table_migrate_rule[0].binlog_filter_rule.as_deref(), Some(&["no-destructive-ddl".to_owned()][..]));
    assert_eq!(
        t.binlog_filter_rule["no-destructive-ddl"].ignore_event.as_deref(),
        Some(&["drop table".to_owned(), "truncate table".to_owned()][..])
    );
    let notes: Vec<&str> = conv.warnings.iter().map(|w| w.message.as_str()).collect();
    assert!(notes.iter().any(|m| m.contains("`ignore-dbs` of block-allow list `billing-only` has no effect")));
    assert!(notes.iter().any(|m| m.contains("is attached to the rule(s) `billing`")), "{notes:#?}");
    assert!(notes.iter().all(|m| !m.contains("WIDER")));
    assert_same_scope(
        "tests/dmctl/task-star-filter.yaml",
        &conv,
        &["billing", "Billing", "scratch", "other"],
        &["invoices", "t1"],
        true,
    );
}

#[test]
fn patterns_inside_the_allow_list_are_carried_without_a_warning() {
    let conv = conv_ok(&["tests/dmctl/task-contained.yaml"]);
    let t = &conv.config.tasks[0];
    // Inside the allow list: the route and the filter get their own rule, which adds nothing.
    let by_source = |s: &str| -> Vec<(&str, &str, bool)> {
        t.table_migrate_rule
            .iter()
            .filter(|r| r.source.source_name == s)
            .map(|r| (r.source.schema.as_str(), r.source.table.as_str(), r.target.is_some()))
            .collect()
    };
    assert_eq!(
        by_source("mysql-01"),
        [("Upper_DB*", "", false), ("Upper_DB*", "Do_Table*", false), ("Upper_DB", "Do_Table", true)]
    );
    assert_eq!(by_source("mysql-02"), [("~^test.*", "", false), ("test_*", "", true)]);
    for w in &conv.warnings {
        assert!(!w.message.contains("WIDER"), "{w}");
        assert!(!w.message.contains("`one-table`") && !w.message.contains("`test-schemas`"), "{w}");
    }
    assert_same_scope(
        "tests/dmctl/task-contained.yaml",
        &conv,
        &["Upper_DB", "upper_db", "Upper_DB2", "test_1", "testx", "TEST_2", "other"],
        &["Do_Table", "do_table", "Do_Table_2", "x"],
        true,
    );
}

#[test]
fn what_would_replicate_more_is_refused_with_its_location() {
    let items = refused(&["tests/dmctl/task-refused.yaml"]);
    let at = |needle: &str| {
        items
            .iter()
            .find(|i| i.what.contains(needle))
            .map(|i| (i.line, i.column))
            .unwrap_or_else(|| panic!("nothing refused about {needle}: {items:#?}"))
    };
    assert_eq!(at("route `outside-route`"), (23, 3));
    assert_eq!(at("`keep-only-inserts` with `action: Do`"), (25, 3));
    assert_eq!(at("`halt-on-drop` with `action: Error`"), (26, 3));
    assert_eq!(at("expression filter `skip-test-rows`"), (11, 26));
    assert_eq!(at("`ignore-dbs` of block-allow list `all-but-scratch`"), (20, 18));
    assert_eq!(at("mydumper extra-args `-B`"), (30, 29));
    assert_eq!(items.len(), 6, "{items:#?}");
    for i in &items {
        assert!(!i.why.is_empty() && !i.help.is_empty(), "{i:?}");
    }
    // On the command line: exit 1, every item on stderr, nothing on stdout or in the file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_dm-apply"))
        .args(["convert", "tests/dmctl/task-refused.yaml", "--out"])
        .arg(&file)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty() && !file.exists());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("6 construct(s)"), "{stderr}");
    assert!(stderr.contains("task-refused.yaml:23:3"), "{stderr}");
}

#[test]
fn a_widening_route_has_an_exact_equivalent_when_it_contains_the_allow_list() {
    // `archive_*` covers more than `archive_2024`: its own rule would widen, but on the rule it contains it is exact.
    let text = "name: t\ntask-mode: all\ntarget-database: {host: h, port: 4000, user: u}\n\
                mysql-instances: [{source-id: s, block-allow-list: b, route-rules: [r]}]\n\
                block-allow-list: {b: {do-dbs: [archive_2024]}}\n\
                routes: {r: {schema-pattern: archive_*, target-schema: archive}}\n";
    let conv = convert_text(text).unwrap();
    assert_eq!(rules(&conv.config.tasks[0]), [("archive_2024", "", true)]);
    // With a second allowed schema outside the route, carrying it there would be wrong: refused.
    let refused = convert_text(&text.replace("[archive_2024]", "[archive_2024, ledger*]"));
    assert!(refused.is_ok(), "ledger* is apart from archive_*: {refused:?}");
    let overlap = convert_text(&text.replace("[archive_2024]", "[\"~^(archive|ledger)_[0-9]+$\"]"));
    match overlap {
        Err(ConvertError::CannotCarry { items }) => {
            assert!(items[0].why.contains("is neither provably inside it nor provably apart from it"), "{items:#?}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn regex_allow_lists_carry_the_routes_they_are_inside_of() {
    let conv = conv_ok(&["tests/dmctl/task-regex.yaml"]);
    let t = &conv.config.tasks[0];
    assert_eq!(rules(t), [("~^shard_[0-9]+$", "", true), ("~^shard_[0-9]+$", "~^orders_[0-9]+$", true)]);
    assert_eq!(t.table_migrate_rule[1].target.as_ref().unwrap().table.as_deref(), Some("orders"));
    assert!(conv.warnings.iter().any(|w| w.message.contains("route `merge-tables`")));
    assert_same_scope(
        "tests/dmctl/task-regex.yaml",
        &conv,
        &["shard_1", "shard_22", "SHARD_3", "shard_x", "shard"],
        &["orders_1", "orders_x", "ORDERS_2", "items"],
        true,
    );
    // A regex whose relation to the route cannot be proved: refused, saying so.
    let text = "name: t\ntask-mode: all\ntarget-database: {host: h, port: 4000, user: u}\n\
                mysql-instances: [{source-id: s, block-allow-list: b, route-rules: [r]}]\n\
                block-allow-list: {b: {do-dbs: [\"~(shard|part)_[0-9]\"]}}\n\
                routes: {r: {schema-pattern: shard_*, target-schema: shop}}\n";
    match convert_text(text) {
        Err(ConvertError::CannotCarry { items }) => {
            assert!(
                items[0].why.contains(
                    "allow entry `~(shard|part)_[0-9]` is neither provably inside it nor provably apart from it"
                ),
                "{items:#?}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn case_sensitivity_decides_what_patterns_contain() {
    let text = |cs: bool, route: &str| {
        format!(
            "name: t\ntask-mode: all\ncase-sensitive: {cs}\ntarget-database: {{host: h, port: 4000, user: u}}\n\
             mysql-instances: [{{source-id: s, block-allow-list: b, route-rules: [r]}}]\n\
             block-allow-list: {{b: {{do-dbs: [Sales*]}}}}\n\
             routes: {{r: {{schema-pattern: {route}, target-schema: sales}}}}\n"
        )
    };
    // Case-insensitive (DM's default): `Sales_EU` is inside `Sales*` however DM's OpenAPI compares case (it takes
    // that from the upstream), so its own rule adds nothing.
    let conv = convert_text(&text(false, "Sales_EU")).unwrap();
    assert_eq!(rules(&conv.config.tasks[0]), [("Sales*", "", false), ("Sales_EU", "", true)]);
    assert!(
        conv.warnings.iter().any(|w| w.message.contains("`Sales*`: this dmctl task compares names case-insensitively"))
    );
    // `sales_eu` is inside `Sales*` only case-insensitively: compared exactly it is not, and DM's OpenAPI may
    // compare exactly, so the rule is not added; the route cannot go on `Sales*` either (it covers only part).
    match convert_text(&text(false, "sales_eu")) {
        Err(ConvertError::CannotCarry { items }) => assert!(items[0].what.contains("route `r`"), "{items:#?}"),
        other => panic!("{other:?}"),
    }
    // Case-sensitive: `sales_eu` is apart from `Sales*`, so the route touches nothing replicated.
    let conv = convert_text(&text(true, "sales_eu")).unwrap();
    assert_eq!(rules(&conv.config.tasks[0]), [("Sales*", "", false)]);
    let notes: Vec<&str> = conv.warnings.iter().map(|w| w.message.as_str()).collect();
    assert!(notes.iter().any(|m| m.contains("route `r` (`sales_eu`) applies to nothing")), "{notes:#?}");
    assert!(notes.iter().any(|m| m.contains("`case-sensitive: true` is not part of DM's OpenAPI task")));
    // A source file's `case-sensitive: true` counts too (DM's worker ORs the two).
    let src = convert::Input {
        name: "s.yaml".into(),
        text: "source-id: s\ncase-sensitive: true\nfrom: {host: h, port: 3306, user: u}\n".into(),
        base_dir: ".".into(),
        optional: false,
    };
    let task =
        convert::Input { name: "t.yaml".into(), text: text(false, "sales_eu"), base_dir: ".".into(), optional: false };
    let conv = convert::convert(&[task, src]).unwrap();
    assert_eq!(rules(&conv.config.tasks[0]), [("Sales*", "", false)]);
}

#[test]
fn an_unknown_event_is_reported_and_not_copied() {
    let conv = conv_ok(&["tests/dmctl/task-unknown-event.yaml"]);
    let t = &conv.config.tasks[0];
    assert_eq!(t.binlog_filter_rule["typo-filter"].ignore_event.as_deref(), Some(&["drop table".to_owned()][..]));
    let w = conv.warnings.iter().find(|w| w.message.contains("`truncate` is not an event type DM knows")).unwrap();
    assert_eq!((w.line, w.column), (15, 28));
    assert!(w.message.contains("`truncate` → `truncate table`?") && w.message.contains("NARROWER"), "{}", w.message);
    // And the output passes validate (which refuses unknown events).
    assert_loads(&convert::render(&conv, "x.json"));
}

#[test]
fn enable_relay_is_not_copied_into_the_source() {
    let conv = conv_ok(&["tests/dmctl/source-mysql-01.yaml"]);
    let s = &conv.config.sources[0];
    let relay = s.relay_config.as_ref().unwrap();
    assert_eq!(relay.enable_relay, None);
    assert_eq!(relay.relay_binlog_name.as_deref(), Some("mysql-bin.000003"));
    let w = conv.warnings.iter().find(|w| w.message.contains("`enable-relay: true` is not copied")).unwrap();
    assert_eq!((w.line, w.column), (11, 1));
    assert!(w.message.contains("dmctl start-relay -s mysql-01"), "{}", w.message);
    let text = convert::render(&conv, "x.json");
    assert!(!text.contains("enable_relay:"), "{text}");
    // validate does not warn about relay either.
    let a = assert_loads(&text);
    assert!(a.warnings.iter().all(|w| !format!("{w:?}").contains("enable_relay")));
}

#[test]
fn a_setting_validate_refuses_fails_the_conversion() {
    let text = "name: t\ntask-mode: all\ntarget-database: {host: h, port: 4000, user: u}\n\
                mysql-instances: [{source-id: s, loader: {import-mode: import-into, dir: ./local}}]\n";
    match convert_text(text) {
        Err(ConvertError::NotValid { problems }) => {
            assert!(problems.iter().any(|p| p.contains("import-into")), "{problems:#?}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn out_creates_missing_folders_and_dash_o_is_a_deprecated_alias() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("repo/dm/cluster.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_dm-apply"))
        .args(["convert", "tests/dmctl/task-no-rules.yaml", "--out"])
        .arg(&nested)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read_to_string(&nested).unwrap().contains("mirror-full"));

    let legacy = dir.path().join("other/dm/cluster.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_dm-apply"))
        .args(["convert", "tests/dmctl/task-no-rules.yaml", "-o"])
        .arg(&legacy)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(legacy.exists());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`-o FILE` is deprecated here; use `--out"));
}

#[test]
fn dash_o_with_a_format_name_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in [&["convert", "tests/dmctl/task-no-rules.yaml"][..], &["import", "--addr", "http://127.0.0.1:9"][..]] {
        for format in ["json", "markdown", "YAML"] {
            let out = Command::new(env!("CARGO_BIN_EXE_dm-apply"))
                .args(cmd)
                .args(["-o", format])
                .current_dir(dir.path())
                .env("NO_COLOR", "1")
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{cmd:?} -o {format}: {stderr}");
            assert!(stderr.contains("looks like an output format") && stderr.contains("--out FILE"), "{stderr}");
            assert!(!dir.path().join(format).exists(), "a file named `{format}` was written");
        }
    }
}

/// PingCAP's own dmctl files: set `DM_APPLY_TIFLOW_CORPUS` to a directory holding the task and source YAML files of
/// tiflow's `dm/` (outside this repository; never commit them), e.g. from a clone or mirror of pingcap/tiflow:
/// `git -C TIFLOW ls-tree -r --name-only HEAD dm/ | grep -E '\.ya?ml$'`, keeping the files that have a top-level
/// `mysql-instances:`, `target-database:` or `source-id:` key (`git -C TIFLOW show HEAD:FILE > DIR/FILE`), then
/// `DM_APPLY_TIFLOW_CORPUS=DIR cargo test --test adopt convert_dmctl::tiflow_corpus -- --ignored --nocapture`. Every task is converted with the
/// source files of its directory (the first file defining each source it uses), every source file alone; each
/// either converts to YAML that validates, plans against the in-process simulator and replicates no more than the
/// dmctl file (reference model over names drawn from its patterns), or is refused naming what it cannot carry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn tiflow_corpus() {
    use std::collections::BTreeMap;

    use dm_apply::dm::{ClientOptions, DmClient};
    use dm_apply::plan::{PlanOptions, make_plan};
    use dm_apply::sim::{SimOptions, SimServer};
    use serde_json::Value;

    let Ok(root) = std::env::var("DM_APPLY_TIFLOW_CORPUS") else {
        eprintln!("DM_APPLY_TIFLOW_CORPUS is not set; nothing to do");
        return;
    };
    let mut files: Vec<PathBuf> = Vec::new();
    let mut stack = vec![PathBuf::from(&root)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                files.push(p);
            }
        }
    }
    files.sort();
    let parsed: BTreeMap<PathBuf, Value> = files
        .iter()
        .filter_map(|f| Some((f.clone(), serde_saphyr::from_str::<Value>(&std::fs::read_to_string(f).ok()?).ok()?)))
        .collect();
    let is_task = |v: &Value| v.get("mysql-instances").is_some() || v.get("target-database").is_some();
    let is_source = |v: &Value| !is_task(v) && (v.get("source-id").is_some() || v.get("from").is_some());

    let sim = SimServer::start(SimOptions::default()).await.unwrap();
    let client = DmClient::new(&ClientOptions::new(sim.url())).unwrap();
    let live = dm_apply::live::fetch(&client).await.unwrap();

    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut refusal_kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();
    let bump = |m: &mut BTreeMap<String, usize>, k: &str| *m.entry(k.to_owned()).or_default() += 1;
    for (file, value) in &parsed {
        let kind = if is_task(value) {
            "task"
        } else if is_source(value) {
            "source"
        } else {
            bump(&mut counts, "not a dmctl task or source file");
            continue;
        };
        bump(&mut counts, &format!("{kind} files"));
        let mut inputs = vec![file.clone()];
        if kind == "task" {
            let dir = file.parent().unwrap();
            for inst in value["mysql-instances"].as_array().into_iter().flatten() {
                let Some(id) = inst["source-id"].as_str() else { continue };
                if let Some((f, _)) = parsed
                    .iter()
                    .find(|(f, v)| f.parent() == Some(dir) && is_source(v) && v["source-id"].as_str() == Some(id))
                    && !inputs.contains(f)
                {
                    inputs.push(f.clone());
                }
            }
        }
        let conv = match convert::convert_files(&inputs) {
            Ok(c) => c,
            Err(ConvertError::CannotCarry { items }) => {
                bump(&mut counts, &format!("{kind}: refused (cannot carry)"));
                for i in items {
                    let what = i.what.split('`').step_by(2).collect::<Vec<_>>().join("…");
                    bump(&mut refusal_kinds, what.trim());
                }
                continue;
            }
            Err(e) => {
                let code = miette::Diagnostic::code(&e).map(|c| c.to_string()).unwrap_or_default();
                bump(&mut counts, &format!("{kind}: refused ({code})"));
                if !matches!(e, ConvertError::Invalid { .. } | ConvertError::NotValid { .. }) {
                    failures.push(format!("{}: {e}", file.display()));
                }
                continue;
            }
        };
        // Validate as `dm-apply validate` does, then plan against the simulator.
        let text = convert::render(&conv, "x.json");
        let env: BTreeMap<String, String> = conv.env.iter().map(|v| (v.name.clone(), "secret".to_owned())).collect();
        let a = config::analyze_source("converted.yaml", text.as_bytes(), &|n| env.get(n).cloned());
        if !a.errors.is_empty() {
            failures.push(format!("{}: does not validate: {}", file.display(), config::render_plain(&a.errors[0])));
            continue;
        }
        if let Err(e) = make_plan(&a.desired, &live, &PlanOptions::default()) {
            failures.push(format!("{}: does not plan: {e:?}", file.display()));
            continue;
        }
        // Never wider: compare with the reference model over names made from the file's own patterns.
        if kind == "task" {
            let ci = value["case-sensitive"].as_bool() != Some(true);
            let (names_s, names_t) = names_around(value);
            for spec in &conv.config.tasks {
                for sc in &spec.source_config.source_conf {
                    let source_file = inputs
                        .iter()
                        .skip(1)
                        .filter_map(|f| parsed.get(f))
                        .find(|v| v["source-id"].as_str() == Some(sc.source_name.as_str()));
                    let ci = ci && source_file.is_none_or(|s| s["case-sensitive"].as_bool() != Some(true));
                    let dmctl = crate::convert_ref::dmctl_instance(value, &sc.source_name, source_file, &known_event);
                    let out = crate::convert_ref::openapi_instance(spec, &sc.source_name);
                    let d = crate::convert_ref::compare(&dmctl, &out, &names_s, &names_t, ci);
                    if !d.wider.is_empty() {
                        failures.push(format!("{} ({}): WIDER {:?}", file.display(), sc.source_name, d.wider));
                    }
                    if !d.routed.is_empty() {
                        failures.push(format!("{} ({}): routes differ {:?}", file.display(), sc.source_name, d.routed));
                    }
                    if !d.narrower.is_empty() {
                        bump(&mut counts, "task: narrower (reported unknown events)");
                    }
                }
            }
        }
        bump(&mut counts, &format!("{kind}: converted, validated, planned"));
    }
    eprintln!("tiflow corpus ({root}):");
    for (k, v) in &counts {
        eprintln!("  {v:4}  {k}");
    }
    eprintln!("refused constructs:");
    for (k, v) in &refusal_kinds {
        eprintln!("  {v:4}  {k}");
    }
    assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n"));
}

/// Names to test a dmctl task with: each wildcard pattern instantiated (`*` as nothing and as `zz`, `?` as `a`, a
/// class as its first member), in its own case, lower and upper case, plus a few unrelated names.
fn names_around(task: &serde_json::Value) -> (Vec<String>, Vec<String>) {
    fn walk(v: &serde_json::Value, key: &str, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    walk(x, k, out);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, key, out)),
            serde_json::Value::String(s) if !s.starts_with('~') && !s.is_empty() => {
                if matches!(key, "do-dbs" | "ignore-dbs" | "db-name" | "schema-pattern" | "tbl-name" | "table-pattern")
                {
                    out.push(format!("{key}\u{0}{s}"));
                }
            }
            _ => {}
        }
    }
    let mut raw = Vec::new();
    walk(task, "", &mut raw);
    let inst = |p: &str, star: &str| {
        let mut o = String::new();
        let mut chars = p.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' => o.push_str(star),
                '?' => o.push('a'),
                '[' => {
                    let first = chars.next().filter(|c| *c != '!').unwrap_or('z');
                    for d in chars.by_ref() {
                        if d == ']' {
                            break;
                        }
                    }
                    o.push(first);
                }
                c => o.push(c),
            }
        }
        o
    };
    let (mut s, mut t) =
        (vec!["other".to_owned(), "mysql".to_owned()], vec!["other_table".to_owned(), "t1".to_owned()]);
    for r in raw {
        let (key, p) = r.split_once('\u{0}').unwrap();
        let list = if matches!(key, "tbl-name" | "table-pattern") { &mut t } else { &mut s };
        for star in ["", "zz", "1"] {
            let n = inst(p, star);
            for v in [n.clone(), n.to_lowercase(), n.to_uppercase()] {
                if !v.is_empty() && !list.contains(&v) {
                    list.push(v);
                }
            }
        }
    }
    (s, t)
}
