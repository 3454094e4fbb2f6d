//! What the binary prints, whatever it is fed: every command that prints data survives a closed stdout (no panic,
//! exit 1, quietly); the exit-code table of README.md, row by row; a diagnostic past column 65,535 of a one-line JSON
//! file (`jq -c`) renders shortened around the error instead of panicking; names and messages from DM-master cannot
//! drive the terminal or break the markdown comment.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use dm_apply::sim::{SimOptions, SimServer};

const SOURCE_PW: &str = "output-source-pw-7a7a";
const TARGET_PW: &str = "output-target-pw-8b8b";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dm-apply"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("DM_APPLY_ADDR")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .env("DM_SOURCE_PASSWORD", SOURCE_PW)
        .env("DM_TARGET_PASSWORD", TARGET_PW)
        .stdin(Stdio::null());
    c
}

async fn run(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || bin().args(&args).output().expect("run")).await.expect("join")
}

/// Run with stdout closed before the binary writes anything (the reader of `dm-apply ... | head -c1` gone).
async fn run_closed(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let mut child = bin().args(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
        drop(child.stdout.take());
        child.wait_with_output().expect("wait")
    })
    .await
    .expect("join")
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

async fn start_sim() -> SimServer {
    SimServer::start(SimOptions { workers: 6, seed: Some(4), ..SimOptions::default() }).await.expect("sim")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_that_prints_data_survives_a_closed_stdout() {
    let sim = start_sim().await;
    let url = sim.url();
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("plan.json").display().to_string();
    let o = run(&["plan", "-f", "examples", "--out", &saved, "--addr", &url]).await;
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let cases: Vec<Vec<&str>> = vec![
        vec!["plan", "-f", "examples", "--addr", &url],
        vec!["plan", "-f", "examples", "-o", "markdown", "--addr", &url],
        vec!["plan", "-f", "examples", "-o", "json", "--addr", &url],
        vec!["drift", "-f", "examples", "--addr", &url],
        vec!["drift", "-f", "examples", "-o", "json", "--addr", &url],
        vec!["import", "--addr", &url],
        vec!["convert", "tests/dmctl/task-all.yaml"],
        vec!["completions", "bash"],
        vec!["man"],
        vec!["--help"],
        vec!["plan", "--help"],
        vec!["--version"],
        vec!["validate", "-f", "examples"],
        vec!["apply", "-f", "examples", "--auto-approve", "-o", "json", "--addr", &url],
        vec!["show", &saved],
        vec!["show", &saved, "-o", "json"],
    ];
    for args in &cases {
        let o = run_closed(args).await;
        let (_, err) = text(&o);
        assert_ne!(o.status.code(), Some(101), "{args:?} panicked:\n{err}");
        assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{args:?}:\n{err}");
        assert!(o.status.code().is_some(), "{args:?} was killed by a signal");
    }
    // Data commands whose output was lost end with exit 1; help and version, asked for, exit 0.
    for args in [&cases[0], &cases[2], &cases[5], &cases[7], &cases[14], &cases[15]] {
        assert_eq!(run_closed(args).await.status.code(), Some(1), "{args:?}");
    }
    assert_eq!(run_closed(&["--version"]).await.status.code(), Some(0));

    // apply: the plan could not be shown, so nothing is changed. The JSON apply above changed DM (its plan went to
    // stderr); the text one against a fresh simulator must not.
    let fresh = start_sim().await;
    let o = run_closed(&["apply", "-f", "examples", "--auto-approve", "--addr", &fresh.url()]).await;
    assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
    assert!(fresh.control().request_log().iter().all(|r| !r.mutating), "apply changed DM without showing the plan");
    // apply --plan prints no plan: it runs, and the report's closing line goes to stderr instead.
    let o = run_closed(&["apply", "--plan", &saved, "--addr", &fresh.url()]).await;
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("Apply complete! Resources: 8 added"), "{err}");
}

/// The table in README.md "Commands and exit codes", through the binary.
/// DM's reads go out while the configuration loads; what is reported is still the configuration's error first, then
/// a bad address, as when the two ran one after the other.
#[tokio::test]
async fn a_broken_configuration_is_reported_before_a_bad_address() {
    for cmd in ["plan", "drift", "apply"] {
        let o = run(&[cmd, "-f", "tests/corpus/syntax-error.yaml", "--addr", "ftp://dm:8261"]).await;
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{cmd}: {err}");
        assert!(err.contains("invalid YAML"), "{cmd}: {err}");
        assert!(!err.contains("must start with http"), "{cmd}: the configuration error comes first: {err}");
        assert!(out.is_empty(), "{cmd}: {out}");
        let o = run(&[cmd, "-f", "examples", "--addr", "ftp://dm:8261"]).await;
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{cmd}: {err}");
        assert!(err.contains("must start with http"), "{cmd}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exit_code_table_holds() {
    let sim = start_sim().await;
    let url = sim.url();
    let code = |o: &Output| o.status.code();
    // Usage errors exit 1, never 2 (which means "changes" / "drift").
    for args in [
        vec!["plan", "-f", "examples", "--detailed-exitcod", "--addr", url.as_str()],
        vec!["drift", "-f", "examples", "--bogus", "--addr", url.as_str()],
        vec!["apply", "-f", "examples", "--auto-aprove"],
        vec!["validate"],
        vec!["nosuchcommand"],
        vec![],
        vec!["completions", "tcsh"],
        vec!["plan", "-f", "examples", "--request-timeout", "soon"],
    ] {
        let o = run(&args).await;
        assert_eq!(code(&o), Some(1), "{args:?}: {:?}", text(&o));
        assert!(!text(&o).1.is_empty(), "{args:?}: the usage error is explained");
        assert!(o.stdout.is_empty(), "{args:?}: nothing on stdout");
    }
    // --help and --version exit 0, on stdout.
    for args in [vec!["--help"], vec!["--version"], vec!["apply", "--help"], vec!["help", "plan"]] {
        let o = run(&args).await;
        assert_eq!(code(&o), Some(0), "{args:?}");
        assert!(!o.stdout.is_empty(), "{args:?}");
    }
    // validate: 0 valid, 1 invalid.
    assert_eq!(code(&run(&["validate", "-f", "examples"]).await), Some(0));
    assert_eq!(code(&run(&["validate", "-f", "tests/corpus/broken-examples/full-migration.yaml"]).await), Some(1));
    // plan: 2 with --detailed-exitcode and changes, 0 without changes, 1 on error.
    assert_eq!(code(&run(&["plan", "-f", "examples", "--addr", &url]).await), Some(0));
    assert_eq!(code(&run(&["plan", "-f", "examples", "--detailed-exitcode", "--addr", &url]).await), Some(2));
    assert_eq!(code(&run(&["plan", "-f", "examples", "--addr", "http://127.0.0.1:9"]).await), Some(1));
    // drift: 2 drift present, 1 error.
    assert_eq!(code(&run(&["drift", "-f", "examples", "--addr", &url]).await), Some(2));
    assert_eq!(code(&run(&["drift", "-f", "examples", "--addr", "http://127.0.0.1:9"]).await), Some(1));
    // apply: 0 applied and verified; then plan 0 and drift 0.
    let o = run(&["apply", "-f", "examples", "--auto-approve", "--addr", &url]).await;
    assert_eq!(code(&o), Some(0), "{:?}", text(&o));
    assert_eq!(code(&run(&["plan", "-f", "examples", "--detailed-exitcode", "--addr", &url]).await), Some(0));
    assert_eq!(code(&run(&["drift", "-f", "examples", "--addr", &url]).await), Some(0));
    // apply: 1 when a step fails.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "sources:\n  - {source_name: bad, host: mysql.unreachable, port: 3306, user: dm, password: \"${env:DM_SOURCE_PASSWORD}\"}\n",
    )
    .unwrap();
    let o = run(&["apply", "-f", &bad.display().to_string(), "--auto-approve", "--addr", &url]).await;
    assert_eq!(code(&o), Some(1), "{:?}", text(&o));
    // convert, import, completions, man: 0.
    assert_eq!(code(&run(&["convert", "tests/dmctl/task-all.yaml"]).await), Some(0));
    assert_eq!(code(&run(&["import", "--addr", &url]).await), Some(0));
    assert_eq!(code(&run(&["completions", "zsh"]).await), Some(0));
    assert_eq!(code(&run(&["man"]).await), Some(0));
    // 130 after a signal: tests/apply_signals.rs. 101 (a panic) never: the test above and fuzz_props.
}

/// `jq -c` writes a whole configuration on one line: an error past column 65,535 is shown shortened around it
/// (miette panicked on it: exit 101), with its real line and column, by validate and plan alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_type_past_column_65535_of_a_one_line_json_file_is_reported() {
    let mut sources = vec![];
    for i in 0..800 {
        sources.push(serde_json::json!({
            "source_name": format!("s{i}"), "host": format!("mysql-{i}.db.internal.example.com"), "port": 3306,
            "user": "dm", "password": "${env:DM_SOURCE_PASSWORD}", "enable_gtid": false,
        }));
    }
    sources[799]["port"] = serde_json::json!("not-a-number");
    let one_line = serde_json::to_string(&serde_json::json!({ "sources": sources })).unwrap();
    let col = one_line.find("\"not-a-number\"").unwrap() + 1;
    assert!(col > 65_535 && !one_line.contains('\n'));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.json.yaml");
    std::fs::write(&file, &one_line).unwrap();
    let f = file.display().to_string();
    let sim = start_sim().await;
    for args in [vec!["validate", "-f", f.as_str()], vec!["plan", "-f", f.as_str(), "--addr", &sim.url()]] {
        let o = run(&args).await;
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}:\n{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(err.contains(&format!("{f}:1:{col}")), "{args:?}: position of the error:\n{err}");
        assert!(err.contains("\"not-a-number\""), "the snippet shows the error: {err}");
        assert!(err.contains('…'), "the line is shortened: {err}");
        assert!(err.lines().all(|l| l.chars().count() < 500), "no 100 kB line on the terminal:\n{err}");
    }
}

/// Names and messages from DM-master with escape sequences, bidi overrides and markdown: every output shows them
/// escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_and_messages_from_dm_cannot_drive_the_terminal_or_break_the_comment() {
    let sim = start_sim().await;
    let url = sim.url();
    let ctl = sim.control();
    let o = run(&["apply", "-f", "examples", "--auto-approve", "--addr", &url]).await;
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    // Behind dm-apply's back: a source whose name clears the screen and retitles the terminal, one whose name would
    // close the comment's <details> and break its table; a task paused with a hostile error message.
    let client = {
        let mut o = dm_apply::dm::ClientOptions::new(url.clone());
        o.retry = dm_apply::dm::RetryPolicy::none();
        dm_apply::dm::DmClient::new(&o).unwrap()
    };
    for name in ["x\u{1b}[2J\u{1b}]0;pwned\u{7}", "y`|</details>\u{202e}"] {
        client.create_source(&hostile_source(name), None).await.expect("create the hostile source");
    }
    ctl.pause_task_with_error(
        "orders-incremental",
        "mysql-orders",
        "[code=10001:class=database] boom\u{1b}[2J\u{1b}]8;;http://evil/\u{7}click\u{9b}31m\nApply complete!",
    );
    // The drift report shows DM's message escaped, not a forged line.
    let (out, _) = text(&run(&["drift", "-f", "examples", "--addr", &url]).await);
    assert!(out.contains("boom\\u{1b}[2J"), "{out}");
    assert!(!out.lines().any(|l| l.starts_with("Apply complete!")), "{out}");
    let hostile = |s: &str| s.chars().any(|c| (c.is_control() && c != '\n' && c != '\t') || c == '\u{202e}');
    for args in [
        vec!["plan", "-f", "examples", "--addr", &url],
        vec!["plan", "-f", "examples", "--prune", "--addr", &url],
        vec!["plan", "-f", "examples", "--prune", "-o", "markdown", "--addr", &url],
        vec!["drift", "-f", "examples", "--addr", &url],
        vec!["import", "--addr", &url],
        vec!["-v", "apply", "-f", "examples", "--auto-approve", "--addr", &url],
    ] {
        let o = run(&args).await;
        let (out, err) = text(&o);
        assert!(!hostile(&out), "{args:?} stdout carries raw control characters:\n{out:?}");
        assert!(!hostile(&err), "{args:?} stderr carries raw control characters:\n{err:?}");
        if args.contains(&"markdown") {
            let markup = outside_code(&out);
            assert_eq!(markup.matches("</details>").count(), 1, "only the comment's own </details>:\n{out}");
            assert_eq!(markup.matches("<details>").count(), 1, "{out}");
            assert!(out.contains("\\u{1b}[2J"), "the name is shown escaped:\n{out}");
            // Every table row keeps its four cells.
            for row in out.lines().filter(|l| l.starts_with("| ") && !l.starts_with("|---")) {
                let cells = row.replace("\\|", "").matches('|').count();
                assert_eq!(cells, 5, "a broken table row: {row}");
            }
        }
    }
}

/// The Markdown outside fenced blocks and code spans (where text is literal): what GitHub interprets.
fn outside_code(md: &str) -> String {
    let mut out = String::new();
    let mut fence: Option<String> = None;
    for line in md.lines() {
        let t = line.trim_start();
        if let Some(f) = &fence {
            if t.starts_with(f.as_str()) && t.trim_end().chars().all(|c| c == '`') {
                fence = None;
            }
            continue;
        }
        if t.starts_with("```") {
            fence = Some(t.chars().take_while(|c| *c == '`').collect());
            continue;
        }
        // Drop code spans: a run of n backticks up to the next run of exactly n.
        let b: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < b.len() {
            if b[i] == '`' {
                let n = b[i..].iter().take_while(|c| **c == '`').count();
                let mut j = i + n;
                let mut closed = None;
                while j < b.len() {
                    if b[j] == '`' {
                        let m = b[j..].iter().take_while(|c| **c == '`').count();
                        if m == n {
                            closed = Some(j + m);
                            break;
                        }
                        j += m;
                    } else {
                        j += 1;
                    }
                }
                match closed {
                    Some(e) => i = e,
                    None => {
                        out.extend(&b[i..i + n]);
                        i += n;
                    }
                }
                continue;
            }
            out.push(b[i]);
            i += 1;
        }
        out.push('\n');
    }
    out
}

#[test]
fn names_dm_cannot_route_are_refused_at_their_position() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("dm.yaml");
    for (name, is_task, why) in [
        (".", false, "current or parent directory"),
        ("..", false, "current or parent directory"),
        ("a/b", false, "contains `/`"),
        ("templates", true, "task name `templates` is taken by DM-master's own route"),
        ("converters", true, "task name `converters` is taken by DM-master's own route"),
        ("..", true, "current or parent directory"),
    ] {
        let yaml = if is_task {
            format!(
                "external_sources: [mysql-a]\ntasks:\n  - name: \"{name}\"\n    task_mode: incremental\n    target_config: \
                 {{host: t, port: 4000, user: u, password: \"${{env:DM_TARGET_PASSWORD}}\"}}\n    table_migrate_rule:\n      \
                 - source: {{source_name: mysql-a, schema: s, table: \"*\"}}\n    source_config:\n      source_conf:\n        \
                 - {{source_name: mysql-a, binlog_name: mysql-bin.000001, binlog_pos: 4}}\n"
            )
        } else {
            format!(
                "sources:\n  - source_name: \"{name}\"\n    host: h\n    port: 3306\n    user: u\n    password: \
                 \"${{env:DM_SOURCE_PASSWORD}}\"\n"
            )
        };
        std::fs::write(&cfg, &yaml).unwrap();
        let o = bin().args(["validate", "-f", &cfg.display().to_string()]).output().unwrap();
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "`{name}` accepted:\n{err}");
        assert!(err.contains(why), "{name}: {err}");
        let at = if is_task { "3:11" } else { "2:18" };
        let shown = Path::new(&cfg).display().to_string();
        assert!(err.contains(&format!("{shown}:{at}")), "{name}: position:\n{err}");
        assert!(err.contains("help:"), "{err}");
    }
    // Ordinary names, dots inside included, are fine.
    std::fs::write(
        &cfg,
        "sources:\n  - {source_name: mysql.a..b, host: h, port: 3306, user: u, password: \"${env:DM_SOURCE_PASSWORD}\"}\n",
    )
    .unwrap();
    let o = bin().args(["validate", "-f", &cfg.display().to_string()]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
}

/// A source whose name comes from a hostile server's point of view (any characters).
fn hostile_source(name: &str) -> dm_apply::dm::types::Source {
    dm_apply::dm::types::Source {
        source_name: name.to_string(),
        host: "hostile.db.internal".into(),
        port: 3306,
        user: "dm".into(),
        password: Some(dm_apply::secret::Secret::new("s3cret-hostile")),
        enable: true,
        ..Default::default()
    }
}
