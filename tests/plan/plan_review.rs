//! Plans a reviewer can read, through the binary against the simulator: binlog filters under the YAML's rule names
//! (once), table rules named as written, creates without DM's defaults, "no changes" that does not hide unmanaged
//! resources, a "why" column in markdown, repository-relative "declared at" paths, wrapped reasons.

use std::path::Path;

use crate::plan_common::*;

use dm_apply::sim::Generation;

fn sharded() -> (String, std::path::PathBuf) {
    let path = examples().into_iter().find(|p| p.ends_with("sharded-optimistic.yaml")).unwrap();
    (std::fs::read_to_string(&path).unwrap(), path)
}

async fn run_in(dir: &Path, args: Vec<String>, env: &[(&str, &str)]) -> (i32, String, String) {
    let dir = dir.to_path_buf();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    tokio::task::spawn_blocking(move || {
        let mut c = bin();
        c.current_dir(&dir).env("NO_COLOR", "1");
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.args(&args).output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into(),
            String::from_utf8_lossy(&o.stderr).into(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_and_table_rules_read_in_the_configurations_terms() {
    let (sim, client) = start(Generation::V854).await;
    let (text, path) = sharded();
    apply_by_hand(&client, &load(&path)).await;
    // The all-mode task leaves Dump and Load quickly (5 ms stage delay): wait for the Sync unit.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let dir = tempfile::tempdir().unwrap();
    // One filter used by the three shards' rules changes; one shard's table pattern changes.
    let changed = text
        .replace("          - truncate table\n", "          - truncate table\n          - drop index\n")
        .replacen("          table: user_*\n", "          table: user_0*\n", 1);
    std::fs::write(dir.path().join("dm.yaml"), changed).unwrap();
    let (code, out, err) =
        run_in(dir.path(), s(&["plan", "-f", "dm.yaml", "--addr", &sim.url(), "--detailed-exitcode"]), &[]).await;
    assert_eq!(code, 2, "{out}\n{err}");
    // Reasons are wrapped at 100 columns: read them as one line.
    let out = out.replace("\n  #  ", " ");
    assert_eq!(
        out.matches("binlog_filter_rule.no-destructive-ddl.ignore_event").count(),
        1,
        "the changed filter shows once, under its name:\n{out}"
    );
    assert!(!out.contains("binlog_filter_rule.mysql-shard"), "no per-source generated names:\n{out}");
    assert!(out.contains("binlog filter rule no-destructive-ddl"), "the reason names the rule:\n{out}");
    assert!(
        out.contains("table rule mysql-shard-01 user_db_*.user_* (now user_db_*.user_0*)"),
        "the reason names the table rule in the YAML's terms:\n{out}"
    );
    assert!(!out.contains("target.schema") && !out.contains("table_migrate_rule["), "{out}");
    assert!(
        out.contains(r#"~ table_migrate_rule = "mysql-shard-01 user_db_*.user_* (to users.user)" -> "mysql-shard-01 user_db_*.user_0* (to users.user)""#),
        "{out}"
    );
    // Comment lines are wrapped.
    let (_, wrapped, _) = run_in(dir.path(), s(&["plan", "-f", "dm.yaml", "--addr", &sim.url()]), &[]).await;
    for l in wrapped.lines().filter(|l| l.trim_start().starts_with('#')) {
        assert!(l.chars().count() <= 100, "a comment line longer than 100 characters: {l}");
    }
    assert!(wrapped.contains("\n  #  "), "a long reason continues on the next line:\n{wrapped}");
    // JSON keeps the comparable paths (lifecycle.ignore_changes and tools use them).
    let (_, json, _) = run_in(dir.path(), s(&["plan", "-f", "dm.yaml", "--addr", &sim.url(), "-o", "json"]), &[]).await;
    assert!(json.contains("\"path\": \"binlog_filter_rule.mysql-shard-01\""), "{json}");

    // Rotated source passwords: three source updates that pause replication each say why in the summary table.
    let (code, md, err) = run_in(
        dir.path(),
        s(&["plan", "-f", "dm.yaml", "--addr", &sim.url(), "-o", "markdown"]),
        &[("DM_SOURCE_PASSWORD", "rotated-pw")],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(md.contains("| Resource | Actions | Why | Impact |"), "{md}");
    assert_eq!(
        md.matches("| update | password changed in the configuration | stop-update-start: replication of users-merge")
            .count(),
        3,
        "{md}"
    );
    assert!(!md.contains("rotated-pw"));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_show_what_the_configuration_sets_and_paths_are_relative() {
    let (sim, _client) = start(Generation::V853).await;
    let (text, _) = sharded();
    // A git checkout with the configuration in dm/, planned from a subdirectory with an absolute -f path (as CI
    // runners do): "declared at" names the file in the repository.
    let repo = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(repo.path().join(".git")).unwrap();
    std::fs::create_dir_all(repo.path().join("dm")).unwrap();
    std::fs::create_dir_all(repo.path().join("ci")).unwrap();
    std::fs::write(repo.path().join("dm/shards.yaml"), &text).unwrap();
    let abs = repo.path().join("dm").display().to_string();
    let (code, out, err) = run_in(&repo.path().join("ci"), s(&["plan", "-f", &abs, "--addr", &sim.url()]), &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("# declared at dm/shards.yaml:7"), "{out}");
    assert!(!out.contains(&abs), "no absolute runner path:\n{out}");
    // What the YAML sets is shown; what it leaves to DM is one note.
    let block = &out[out.find("# task.users-merge will be created").unwrap()..];
    let block = &block[..block.find("\n    }").unwrap()];
    for set in [
        "+ task_mode = \"all\"",
        "+ shard_mode = \"optimistic\"",
        "+ source_config.incr_migrate_conf.repl_threads = 32",
        "+ source_config.full_migrate_conf.data_dir = \"./dumped_data/users-merge\"",
        "+ binlog_filter_rule.no-test-writes.ignore_sql",
        "+ table_migrate_rule = \"mysql-shard-02 user_db_*.user_* (to users.user)\"",
    ] {
        assert!(block.contains(set), "{set} missing:\n{block}");
    }
    for default in ["purge.", "relay_config.", "safe_mode", "export_threads = 4"] {
        assert!(!out.contains(default), "{default} is DM's default:\n{out}");
    }
    assert!(block.contains("values equal to DM's defaults hidden)"), "{block}");
    assert_eq!(block.matches("binlog_filter_rule.no-destructive-ddl.ignore_event").count(), 1, "{block}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_changes_says_when_dm_holds_unmanaged_resources() {
    let (sim, client) = start(Generation::V854).await;
    let ex = examples().into_iter().find(|p| p.ends_with("single-mysql-incremental.yaml")).unwrap();
    apply_by_hand(&client, &load(&ex)).await;
    let url = sim.url();
    let (code, out, _) = run(s(&["plan", "-f", &ex.display().to_string(), "--addr", &url])).await;
    assert_eq!(code, 0);
    assert!(out.ends_with("No changes. DM cluster matches the configuration.\n"), "{out}");
    // A task created by someone else on the same source.
    let mut other = dm_apply::normalize::task_to_wire(
        &load(&ex).tasks.values().next().unwrap().0,
        &dm_apply::dm::ServerVersion::parse("v8.5.4"),
    );
    other.name = "adhoc".into();
    client.create_task(&other).await.unwrap();
    let (code, out, err) =
        run(s(&["plan", "-f", &ex.display().to_string(), "--addr", &url, "--detailed-exitcode"])).await;
    assert_eq!(code, 0, "managed resources have no changes: {out}\n{err}");
    assert!(out.contains("Unmanaged resources (in DM, not declared; left untouched):\n  task.adhoc"), "{out}");
    assert!(out.ends_with("No changes to managed resources; 1 unmanaged resource in DM (listed above).\n"), "{out}");
    assert!(!out.contains("DM cluster matches the configuration"), "{out}");
    let (_, md, _) = run(s(&["plan", "-f", &ex.display().to_string(), "--addr", &url, "-o", "markdown"])).await;
    assert!(md.starts_with("### dm-apply plan: no changes to managed resources (1 unmanaged in DM)"), "{md}");
    assert!(md.contains("task.adhoc"), "the unmanaged task is listed in the details: {md}");
    sim.shutdown().await;
}
