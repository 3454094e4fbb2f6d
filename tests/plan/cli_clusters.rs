//! Several clusters: `plan`/`drift`/`validate --clusters FILE` against two in-process simulators at once, output
//! grouped per cluster in file order, combined exit codes, per-cluster credential variables.

use crate::plan_common::*;

use dm_apply::sim::Generation;

struct Setup {
    dir: tempfile::TempDir,
    clusters: String,
}

/// Cluster `a` already runs the example; cluster `b` is empty; `c` (optional) is unreachable.
fn write_setup(a: &str, b: &str, with_unreachable: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let ex =
        std::fs::read_to_string(examples().into_iter().find(|p| p.ends_with("single-mysql-incremental.yaml")).unwrap())
            .unwrap();
    std::fs::create_dir_all(dir.path().join("a")).unwrap();
    std::fs::create_dir_all(dir.path().join("b")).unwrap();
    std::fs::write(dir.path().join("a/dm.yaml"), &ex).unwrap();
    // b's files use a variable that only exists through the clusters file's mapping.
    std::fs::write(dir.path().join("b/dm.yaml"), ex.replace("${env:DM_SOURCE_PASSWORD}", "${env:ONLY_MAPPED}"))
        .unwrap();
    let mut text = format!(
        "clusters:\n  - name: a\n    addr: {a}\n    files: [a/]\n  - name: b\n    addr: {b}\n    files: [b/]\n    env:\n      ONLY_MAPPED: B_SOURCE_PW\n"
    );
    if with_unreachable {
        // A port nothing listens on (bound then released).
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        text.push_str(&format!(
            "  - name: c\n    addr: http://127.0.0.1:{port}\n    files: [a/]\n    request_timeout: 2s\n"
        ));
    }
    let clusters = dir.path().join("clusters.yaml");
    std::fs::write(&clusters, text).unwrap();
    Setup { clusters: clusters.display().to_string(), dir }
}

async fn run_env(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let o = bin().env("B_SOURCE_PW", "b-pw").env_remove("ONLY_MAPPED").args(&args).output().unwrap();
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
async fn plan_and_drift_across_two_simulators() {
    let (sim_a, client_a) = start(Generation::Head).await;
    let (sim_b, _client_b) = start(Generation::V853).await;
    let ex = examples().into_iter().find(|p| p.ends_with("single-mysql-incremental.yaml")).unwrap();
    apply_by_hand(&client_a, &load(&ex)).await;
    let setup = write_setup(&sim_a.url(), &sim_b.url(), false);

    let (code, out, err) = run_env(s(&["plan", "--clusters", &setup.clusters, "--detailed-exitcode"])).await;
    assert_eq!(code, 2, "{out}\n{err}");
    let a = out.find("=== cluster a (").expect("cluster a's section");
    let b = out.find("=== cluster b (").expect("cluster b's section");
    assert!(a < b, "grouped in the clusters file's order:\n{out}");
    assert!(out[a..b].contains("No changes."), "{out}");
    assert!(out[b..].contains("mysql-orders") && !out[b..].contains("No changes."), "{out}");
    assert!(err.contains("2 cluster(s): 1 with changes, 1 without, 0 failed"), "{err}");
    for secret in ["src-pw", "tgt-pw", "b-pw"] {
        assert!(!out.contains(secret) && !err.contains(secret));
    }

    // Without --detailed-exitcode changes exit 0, as for a single plan.
    let (code, _, _) = run_env(s(&["plan", "--clusters", &setup.clusters])).await;
    assert_eq!(code, 0);

    let (code, out, err) = run_env(s(&["plan", "--clusters", &setup.clusters, "-o", "json"])).await;
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let statuses: Vec<&str> =
        doc["clusters"].as_array().unwrap().iter().map(|c| c["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["ok", "changes"]);
    assert!(doc["clusters"][1]["plan"].is_object());

    let (code, out, err) = run_env(s(&["plan", "--clusters", &setup.clusters, "-o", "markdown"])).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("## Cluster `a`") && out.contains("### Summary"), "{out}");

    let (code, out, err) = run_env(s(&["drift", "--clusters", &setup.clusters])).await;
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(out.find("=== cluster a").unwrap() < out.find("=== cluster b").unwrap());
    assert!(err.contains("1 with drift"), "{err}");

    let (code, _, err) = run_env(s(&["validate", "--clusters", &setup.clusters])).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("[b] 1 source(s), 1 task(s): valid"), "{err}");

    // -f and --clusters exclude each other: a usage error, exit 1.
    let (code, _, err) = run_env(s(&["plan", "--clusters", &setup.clusters, "-f", "x"])).await;
    assert_eq!(code, 1, "{err}");
    drop(setup.dir);
    sim_a.shutdown().await;
    sim_b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_cluster_fails_the_run_but_the_others_are_reported() {
    let (sim_a, client_a) = start(Generation::Head).await;
    let (sim_b, _client_b) = start(Generation::Head).await;
    let ex = examples().into_iter().find(|p| p.ends_with("single-mysql-incremental.yaml")).unwrap();
    apply_by_hand(&client_a, &load(&ex)).await;
    let setup = write_setup(&sim_a.url(), &sim_b.url(), true);
    let (code, out, err) = run_env(s(&["plan", "--clusters", &setup.clusters, "--detailed-exitcode"])).await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("[c]   help: check"), "every line of a diagnostic is prefixed: {err}");
    assert!(out.contains("=== cluster a") && out.contains("=== cluster b") && out.contains("=== cluster c"));
    // The failure is said on stderr (stdout carries only data), after that cluster's errors.
    assert!(err.contains("[c] plan failed: see the errors above"), "{err}");
    assert!(!out.contains("see the errors above"), "no message for people on stdout: {out}");
    assert!(err.contains("[c] "), "{err}");
    assert!(err.contains("1 with changes, 1 without, 1 failed"), "{err}");

    // An unset variable is an error of that cluster only.
    let (code, _, err) = tokio::task::spawn_blocking({
        let clusters = setup.clusters.clone();
        move || {
            let o = bin().env_remove("B_SOURCE_PW").args(["validate", "--clusters", &clusters]).output().unwrap();
            (o.status.code(), (), String::from_utf8_lossy(&o.stderr).into_owned())
        }
    })
    .await
    .unwrap();
    assert_eq!(code, Some(1));
    assert!(err.contains("[a] 1 source(s)") && err.contains("[b] invalid"), "{err}");
    sim_a.shutdown().await;
    sim_b.shutdown().await;
}

/// `dm-apply validate ARGS` with cluster b's mapped variable unset: (exit code, stderr).
async fn validate_without_b_password(args: &[&str]) -> (Option<i32>, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let o = bin().env("NO_COLOR", "1").env_remove("B_SOURCE_PW").args(&args).output().unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapped_variable_that_is_unset_is_named_by_validate() {
    let setup = write_setup("http://127.0.0.1:1", "http://127.0.0.1:1", false);
    let (code, err) = validate_without_b_password(&["validate", "--clusters", &setup.clusters]).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("environment variable `B_SOURCE_PW` is not set"), "the variable to set is named: {err}");
    assert!(err.contains("export B_SOURCE_PW=..."), "{err}");
    assert!(!err.contains("`ONLY_MAPPED` is not set"), "the name in the files is never read for b: {err}");
    // --allow-missing-env (a pre-commit hook without the secrets): valid, the mapped variable named as a warning.
    let (code, err) =
        validate_without_b_password(&["validate", "--clusters", &setup.clusters, "--allow-missing-env"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("[b] environment variable `B_SOURCE_PW` is not set (allowed by --allow-missing-env)"),
        "{err}"
    );
    assert!(err.contains("[b] 1 source(s)") && !err.contains("invalid"), "{err}");
    // --cluster narrows the run to the named clusters.
    let (code, err) = validate_without_b_password(&["validate", "--clusters", &setup.clusters, "--cluster", "a"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("[a] 1 source(s)") && !err.contains("[b]"), "{err}");
    let (code, _, err) = run_env(s(&["validate", "--clusters", &setup.clusters, "--cluster", "nope"])).await;
    assert_eq!(code, 1);
    assert!(err.contains("no cluster named `nope`") && err.contains("the file lists a,"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_one_cluster_of_the_clusters_file() {
    let (sim_a, _client_a) = start(Generation::V854).await;
    let (sim_b, client_b) = start(Generation::V854).await;
    let setup = write_setup(&sim_a.url(), &sim_b.url(), false);
    let c = setup.clusters.clone();

    // One cluster per run: --cluster is required, and names a cluster of the file.
    let (code, _, err) = run_env(s(&["apply", "--clusters", &c, "--auto-approve"])).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--cluster"), "{err}");

    // b's files read ${env:ONLY_MAPPED} through the mapping (B_SOURCE_PW), and b's address: nothing else is given.
    let (code, out, err) = run_env(s(&["apply", "--clusters", &c, "--cluster", "b", "--auto-approve"])).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Apply complete!"), "{out}");
    assert!(err.contains("Verified: a new plan shows no changes."), "{err}");
    assert!(!out.contains("b-pw") && !err.contains("b-pw"));
    let live = dm_apply::live::fetch(&client_b).await.unwrap();
    assert!(live.sources.contains_key("mysql-orders"), "applied to b");
    assert!(sim_a.control().request_log().iter().all(|r| !r.mutating), "a untouched");
    let (code, out, _) = run_env(s(&["plan", "--clusters", &c, "--cluster", "b", "--detailed-exitcode"])).await;
    assert_eq!(code, 0, "{out}");

    // The reviewed-plan flow per cluster: plan --out for one cluster, apply exactly that plan.
    let plan_file = setup.dir.path().join("a.plan.json").display().to_string();
    let (code, _, err) = run_env(s(&["plan", "--clusters", &c, "--out", &plan_file, "--detailed-exitcode"])).await;
    assert_eq!(code, 1, "--out needs one cluster: {err}");
    let (code, out, err) =
        run_env(s(&["plan", "--clusters", &c, "--cluster", "a", "--out", &plan_file, "--detailed-exitcode"])).await;
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.contains("apply --clusters") && err.contains("--cluster a --plan"), "{err}");
    let (code, out, err) = run_env(s(&["apply", "--clusters", &c, "--cluster", "a", "--plan", &plan_file])).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("Verified"), "{err}");
    // The saved plan of a is not b's: refused (another cluster).
    let (code, _, err) = run_env(s(&["apply", "--clusters", &c, "--cluster", "b", "--plan", &plan_file])).await;
    assert_eq!(code, 1, "{err}");
    drop(setup.dir);
    sim_a.shutdown().await;
    sim_b.shutdown().await;
}

/// A configuration with `n` tasks on the example's source.
fn many_tasks(n: usize) -> String {
    let mut y = String::from(
        "sources:\n  - {source_name: mysql-orders, host: mysql-orders.db.internal, port: 3306, user: dm_sync, password: \"${env:DM_SOURCE_PASSWORD}\"}\ntasks:\n",
    );
    for i in 0..n {
        y.push_str(&format!(
            "  - name: task-{i:04}\n    task_mode: incremental\n    target_config: {{host: tidb.db.internal, port: 4000, user: dm_writer, password: \"${{env:DM_TARGET_PASSWORD}}\"}}\n    binlog_filter_rule:\n      no-drops-{i}: {{ignore_event: [drop table, truncate table, drop database]}}\n    table_migrate_rule:\n      - source: {{source_name: mysql-orders, schema: orders_{i}, table: \"*\"}}\n        target: {{schema: orders}}\n        binlog_filter_rule: [no-drops-{i}]\n    source_config:\n      source_conf: [{{source_name: mysql-orders, binlog_name: mysql-bin.000042, binlog_pos: 4}}]\n"
        ));
    }
    y
}

/// `<details>` blocks and fences open and close in pairs, in order.
fn assert_closed(md: &str, what: &str) {
    assert_eq!(md.matches("<details>").count(), md.matches("</details>").count(), "{what}:\n{md}");
    let mut open: Option<String> = None;
    for l in md.lines() {
        match &open {
            None if l.starts_with("```") && l.ends_with("diff") => open = Some(l.trim_end_matches("diff").to_string()),
            Some(f) if l == f => open = None,
            _ => {}
        }
    }
    assert!(open.is_none(), "{what}: a fence is left open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_multi_cluster_markdown_plan_fits_github_comments() {
    let (sim_a, _) = start(Generation::V854).await;
    let (sim_b, _) = start(Generation::V853).await;
    let dir = tempfile::tempdir().unwrap();
    for c in ["a", "b"] {
        std::fs::create_dir_all(dir.path().join(c)).unwrap();
        std::fs::write(dir.path().join(c).join("dm.yaml"), many_tasks(150)).unwrap();
    }
    let clusters = dir.path().join("clusters.yaml");
    std::fs::write(
        &clusters,
        format!(
            "clusters:\n  - {{name: a, addr: \"{}\", files: [a/]}}\n  - {{name: b, addr: \"{}\", files: [b/]}}\n",
            sim_a.url(),
            sim_b.url()
        ),
    )
    .unwrap();
    let comments = dir.path().join("comments");
    // A stale comment file of an earlier, longer plan is removed.
    std::fs::create_dir_all(&comments).unwrap();
    std::fs::write(comments.join("comment-099.md"), "old").unwrap();
    let c = clusters.display().to_string();
    let (code, out, err) = run_env(s(&[
        "plan",
        "--clusters",
        &c,
        "-o",
        "markdown",
        "--split-comments",
        &comments.display().to_string(),
        "--detailed-exitcode",
    ]))
    .await;
    assert_eq!(code, 2, "{err}");

    // stdout: one comment, under the limit, every cluster's summary, the details cut (with a way out).
    assert!(out.chars().count() <= 64_000 && out.len() <= 64_000, "{}", out.len());
    assert_closed(&out, "stdout");
    for c in ["a", "b"] {
        assert!(out.contains(&format!("## Cluster `{c}`")), "{c}'s summary");
    }
    assert_eq!(out.matches("**Plan: 151 to add, 0 to change, 0 to destroy.**").count(), 2, "{out}");
    assert!(out.contains("### Summary") && out.contains("2 cluster(s): 2 with changes"), "{out}");
    assert!(out.contains("output truncated") && out.contains("--split-comments"), "{out}");

    // The comments: each under the limit and closed, the first with every summary, nothing of the plan lost.
    let mut files: Vec<_> = std::fs::read_dir(&comments).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    assert!(!files.iter().any(|f| f.ends_with("comment-099.md")), "{files:?}");
    let texts: Vec<String> = files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
    for (i, t) in texts.iter().enumerate() {
        assert!(t.len() <= 64_000, "comment {i}: {} bytes", t.len());
        assert_closed(t, &format!("comment {i}"));
        assert!(t.contains(&format!("comment {} of {}", i + 1, texts.len())), "{t}");
        assert!(!t.contains("src-pw") && !t.contains("tgt-pw"));
    }
    for c in ["a", "b"] {
        assert!(texts[0].contains(&format!("## Cluster `{c}`")), "{c}'s summary in the first comment");
    }
    let all = texts.concat();
    assert!(!all.contains("output truncated"), "nothing cut");
    for i in [0, 77, 149] {
        // Each task's block, in each cluster's details.
        assert_eq!(all.matches(&format!("# task.task-{i:04} will be created")).count(), 2, "task-{i:04}");
    }
    assert!(all.contains("Plan details: cluster `b` (continued)"), "details continue across comments");
    sim_a.shutdown().await;
    sim_b.shutdown().await;
}
