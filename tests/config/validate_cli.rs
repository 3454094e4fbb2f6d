//! `dm-apply validate` through the real binary: exit codes, summary line, file:line:col of errors, hostile input.

use std::path::Path;
use std::process::{Command, Output};

/// Every variable the examples use (the README's quick start exports the same).
const EXAMPLE_ENV: &[(&str, &str)] = &[("DM_SOURCE_PASSWORD", "src-pw"), ("DM_TARGET_PASSWORD", "target-pw")];

fn validate(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dm-apply"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).arg("--color").arg("never").arg("validate");
    for a in args {
        cmd.arg("-f").arg(a);
    }
    for (k, _) in EXAMPLE_ENV {
        cmd.env_remove(k);
    }
    cmd.env("NO_COLOR", "1").envs(env.iter().copied());
    cmd.output().expect("run dm-apply")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn examples_are_valid() {
    let out = validate(&["examples"], EXAMPLE_ENV);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("5 sources, 3 tasks in 3 files: valid"), "{err}");
    assert!(out.stdout.is_empty(), "validate prints nothing on stdout");
}

#[test]
fn each_example_is_valid_on_its_own() {
    for name in ["single-mysql-incremental", "sharded-optimistic", "full-migration"] {
        let path = format!("examples/{name}.yaml");
        let out = validate(&[&path], EXAMPLE_ENV);
        assert_eq!(out.status.code(), Some(0), "{path}: {}", stderr(&out));
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(&path)).unwrap();
        assert!(text.starts_with("# yaml-language-server: $schema=../schemas/dm-apply.schema.json\n"), "{path}");
    }
}

#[test]
fn examples_without_their_variables_fail() {
    let out = validate(&["examples"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("environment variable `DM_TARGET_PASSWORD` is not set"), "{err}");
    assert!(err.contains("errors in 3 files: invalid"), "{err}");
}

#[test]
fn broken_examples_fail_at_the_right_place() {
    for (file, loc, what) in [
        ("single-mysql-incremental.yaml", "11:5", "unknown key `enable_gitd`"),
        ("sharded-optimistic.yaml", "72:30", "binlog filter rule `no-destructive-dll` is not defined"),
        ("full-migration.yaml", "16:16", "`tasks[0].task_mode` must be one of"),
    ] {
        let path = format!("tests/corpus/broken-examples/{file}");
        let out = validate(&[&path], EXAMPLE_ENV);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{path}: {err}");
        assert!(err.contains(&format!("[{path}:{loc}]")), "{path}: expected {loc} in\n{err}");
        assert!(err.contains(what), "{path}: expected `{what}` in\n{err}");
        assert!(err.contains("1 error in 1 file: invalid"), "{err}");
    }
}

#[test]
fn every_bad_corpus_input_exits_1_without_panicking() {
    for f in [
        "syntax-error.yaml",
        "tabs.yaml",
        "duplicate-keys.yaml",
        "unknown-keys.yaml",
        "wrong-types.yaml",
        "out-of-range.yaml",
        "non-utf8.yaml",
        "no-yaml-dir",
        "alias-bomb.yaml",
        "deep-nesting.yaml",
        "top-level-list.yaml",
        "tasks-mapping.yaml",
        "semantic",
        "secrets",
        "does-not-exist.yaml",
    ] {
        let path = format!("tests/corpus/{f}");
        let out = validate(&[&path], &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{f}: {err}");
        assert!(!err.contains("panicked"), "{f}: {err}");
        assert!(err.contains(": invalid"), "{f}: {err}");
    }
}

#[test]
fn empty_and_comment_only_files_are_valid() {
    let out = validate(&["tests/corpus/empty.yaml", "tests/corpus/comments-only.yaml"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("0 sources, 0 tasks in 2 files: valid"));
}

#[test]
fn missing_path_and_empty_directory_are_clear_errors() {
    let out = validate(&["tests/corpus/does-not-exist.yaml"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot read `tests/corpus/does-not-exist.yaml`: no such file or directory"));
    let out = validate(&["tests/corpus/no-yaml-dir"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no *.yaml or *.yml files in directory `tests/corpus/no-yaml-dir`"));
}

#[test]
fn a_50_mb_file_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.yaml");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(50 * 1024 * 1024).unwrap();
    drop(f);
    let out = validate(&[big.to_str().unwrap()], &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("is too large (50.0 MiB)") && err.contains("limited to 8 MiB"), "{err}");
}

#[test]
fn a_large_but_allowed_file_loads() {
    // ~2 MiB of valid YAML (many sources) stays well within the budgets.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.yaml");
    let mut text = String::from("sources:\n");
    for i in 0..12_000 {
        text.push_str(&format!(
            "  - source_name: mysql-{i:05}\n    host: db-{i}.internal\n    port: 3306\n    user: dm\n    password: ${{env:DM_SOURCE_PASSWORD}}\n"
        ));
    }
    std::fs::write(&path, text).unwrap();
    let out = validate(&[path.to_str().unwrap()], EXAMPLE_ENV);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("12000 sources, 0 tasks in 1 file: valid"));
}

#[test]
fn secrets_never_appear_in_diagnostics() {
    for path in ["tests/corpus/secrets", "tests/corpus/secrets/syntax-error.yaml"] {
        let out = validate(&[path], &[("DM_TARGET_PASSWORD", "hunter2-from-env")]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1));
        assert!(!err.contains("hunter2"), "a secret leaked:\n{err}");
        assert!(err.contains("(sensitive value)"), "{err}");
    }
}

#[test]
fn quiet_still_prints_errors_and_summary() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dm-apply"));
    let out = cmd
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["-q", "--color", "never", "validate", "-f", "tests/corpus/tabs.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("tab") && err.contains("1 error in 1 file: invalid"), "{err}");
}

/// `validate` never opens a network connection. Traced with strace where it is available (Linux CI images
/// usually have it); the source-level guard below always runs.
#[test]
fn validate_opens_no_socket() {
    let available = Command::new("strace").arg("-V").output().is_ok_and(|o| o.status.success());
    if !available {
        eprintln!("strace not installed: only the source-level guard runs");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.txt");
    let out = Command::new("strace")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["-f", "-e", "trace=socket,connect", "-o"])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_dm-apply"))
        .args(["validate", "-f", "examples"])
        .envs(EXAMPLE_ENV.iter().copied())
        .output()
        .unwrap();
    let Ok(text) = std::fs::read_to_string(&trace) else {
        eprintln!("strace could not trace here (ptrace not permitted?): {}", stderr(&out));
        return;
    };
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!text.contains("socket(") && !text.contains("connect("), "validate touched the network:\n{text}");
}

#[test]
fn validate_code_has_no_network_dependency() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("src/commands/validate.rs")];
    for entry in std::fs::read_dir(root.join("src/config")).unwrap() {
        files.push(entry.unwrap().path());
    }
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for word in ["reqwest", "TcpStream", "DmClient", "tokio::net", "UdpSocket", "crate::dm::"] {
            assert!(!text.contains(word), "{} mentions `{word}`", f.display());
        }
    }
}

#[test]
fn an_endless_stream_is_cut_at_the_limit() {
    if !Path::new("/dev/zero").exists() {
        return;
    }
    let out = validate(&["/dev/zero"], &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("is larger than the 8 MiB limit"), "{err}");
}

#[test]
fn allow_missing_env_turns_unset_variables_into_warnings() {
    let strict = validate(&["examples"], &[]);
    assert_eq!(strict.status.code(), Some(1), "{}", stderr(&strict));
    assert!(stderr(&strict).contains("environment variable `DM_SOURCE_PASSWORD` is not set"));

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dm-apply"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args(["--color", "never", "validate", "--allow-missing-env"]);
    cmd.args(["-f", "examples"]).env_remove("DM_SOURCE_PASSWORD").env_remove("DM_TARGET_PASSWORD");
    let out = cmd.output().expect("run dm-apply");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("warning: environment variable `DM_SOURCE_PASSWORD` is not set"), "{err}");
    assert!(err.contains("warning: environment variable `DM_TARGET_PASSWORD` is not set"), "{err}");
    assert!(err.contains("5 sources, 3 tasks in 3 files: valid"), "{err}");

    // Other problems are still errors.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dm-apply"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args(["--color", "never", "validate", "--allow-missing-env"]);
    cmd.args(["-f", "tests/corpus/unknown-keys.yaml"]);
    assert_eq!(cmd.output().expect("run dm-apply").status.code(), Some(1));
}

/// DM takes a UTC offset as a task time zone within [-12:59, +14:00] (`ParseTimeZone`, docs/dm-behaviour.md §15):
/// validate accepts those and refuses the rest, where DM would answer 20008.
#[test]
fn utc_offset_time_zones_are_accepted_where_dm_accepts_them() {
    let dir = tempfile::tempdir().unwrap();
    for (tz, code) in [("+04:00", 0), ("-12:59", 0), ("Asia/Shanghai", 0), ("+14:30", 1), ("SYSTEM", 1)] {
        let f = dir.path().join("dm.yaml");
        std::fs::write(
            &f,
            format!(
                "sources:\n  - {{source_name: s1, host: h, port: 3306, user: u, password: \"${{env:P}}\"}}\ntasks:\n  - name: t\n    task_mode: incremental\n    timezone: \"{tz}\"\n    target_config: {{host: tidb, port: 4000, user: root, password: \"${{env:P}}\"}}\n    source_config:\n      source_conf: [{{source_name: s1, binlog_name: mysql-bin.000001, binlog_pos: 4}}]\n"
            ),
        )
        .unwrap();
        let out = validate(&[f.to_str().unwrap()], &[("P", "pw")]);
        assert_eq!(out.status.code(), Some(code), "{tz}: {}", stderr(&out));
        if code == 1 {
            assert!(stderr(&out).contains("is refused by DM"), "{tz}: {}", stderr(&out));
        }
    }
}
