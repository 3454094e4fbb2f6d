//! Snapshot tests of the rendered diagnostics for every input in tests/corpus/ (no colour, fixed width, relative
//! paths, a fixed environment), so wording and positions are reviewed like code.

use std::path::PathBuf;

use dm_apply::config::{self, Analysis, render_plain};

fn env(name: &str) -> Option<String> {
    match name {
        "DM_PW"
        | "DM_TIDB_PW"
        | "DM_SOURCE_PASSWORD"
        | "DM_SHARD_PASSWORD"
        | "DM_CATALOG_PASSWORD"
        | "DM_TARGET_PASSWORD" => Some(format!("hunter2-value-of-{name}")),
        _ => None,
    }
}

fn analyze(paths: &[&str]) -> Analysis {
    // Integration tests run in the package root, so these relative paths are what diagnostics show.
    let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
    config::analyze_with_env(&paths, &env)
}

fn render(a: &Analysis) -> String {
    let mut out = String::new();
    for p in a.warnings.iter().chain(a.errors.iter()) {
        out.push_str(&render_plain(p));
        out.push('\n');
    }
    out.push_str(&format!(
        "== {} error(s), {} warning(s), {} file(s), {} source(s), {} task(s)\n",
        a.errors.len(),
        a.warnings.len(),
        a.files,
        a.desired.sources.len(),
        a.desired.tasks.len()
    ));
    out
}

macro_rules! corpus {
    ($($name:ident => [$($path:expr),+], valid: $valid:expr;)*) => {$(
        #[test]
        fn $name() {
            let a = analyze(&[$($path),+]);
            let text = render(&a);
            assert_eq!(a.errors.is_empty(), $valid, "{text}");
            assert!(!text.contains("hunter2"), "secret leaked:\n{text}");
            insta::assert_snapshot!(stringify!($name), text);
        }
    )*};
}

corpus! {
    syntax_error => ["tests/corpus/syntax-error.yaml"], valid: false;
    tabs => ["tests/corpus/tabs.yaml"], valid: false;
    duplicate_keys => ["tests/corpus/duplicate-keys.yaml"], valid: false;
    unknown_keys => ["tests/corpus/unknown-keys.yaml"], valid: false;
    wrong_types => ["tests/corpus/wrong-types.yaml"], valid: false;
    out_of_range => ["tests/corpus/out-of-range.yaml"], valid: false;
    empty_file => ["tests/corpus/empty.yaml"], valid: true;
    comments_only => ["tests/corpus/comments-only.yaml"], valid: true;
    non_utf8 => ["tests/corpus/non-utf8.yaml"], valid: false;
    missing_path => ["tests/corpus/does-not-exist.yaml"], valid: false;
    no_yaml_dir => ["tests/corpus/no-yaml-dir"], valid: false;
    alias_bomb => ["tests/corpus/alias-bomb.yaml"], valid: false;
    deep_nesting => ["tests/corpus/deep-nesting.yaml"], valid: false;
    top_level_list => ["tests/corpus/top-level-list.yaml"], valid: false;
    tasks_mapping => ["tests/corpus/tasks-mapping.yaml"], valid: false;
    semantic => ["tests/corpus/semantic"], valid: false;
    secrets => ["tests/corpus/secrets"], valid: false;
    broken_single_mysql_incremental => ["tests/corpus/broken-examples/single-mysql-incremental.yaml"], valid: false;
    broken_sharded_optimistic => ["tests/corpus/broken-examples/sharded-optimistic.yaml"], valid: false;
    broken_full_migration => ["tests/corpus/broken-examples/full-migration.yaml"], valid: false;
    examples => ["examples"], valid: true;
}

#[test]
fn big_file_message_without_absolute_paths() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.yaml");
    std::fs::File::create(&big).unwrap().set_len(50 * 1024 * 1024).unwrap();
    let a = config::analyze_with_env(std::slice::from_ref(&big), &env);
    let text = render(&a).replace(&dir.path().display().to_string(), "[TMP]");
    insta::assert_snapshot!("big_file", text);
}

#[test]
fn errors_are_sorted_by_file_then_line() {
    let a = analyze(&["tests/corpus/semantic"]);
    let keys: Vec<(String, usize, usize)> = a
        .errors
        .iter()
        .map(|p| (p.file.as_ref().map(|f| f.name.clone()).unwrap_or_default(), p.line, p.column))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert!(a.errors.len() >= 15, "every problem is reported, not just the first");
}
