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
    assert!(out.contains("plan failed: see the errors above"), "{out}");
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
