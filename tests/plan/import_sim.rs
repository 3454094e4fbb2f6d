//! `dm-apply import` against the in-process simulator over real HTTP: for every example, put it in place, import,
//! then plan the imported YAML (passwords set through the variables import lists): no changes. Import is
//! read-only and never writes a secret.

use std::collections::BTreeMap;

use crate::plan_common::*;
use dm_apply::config::{self, ConfigFile, Desired};
use dm_apply::dm::types::Stage;
use dm_apply::import::{self, ImportOptions};
use dm_apply::live;
use dm_apply::normalize;
use dm_apply::plan::{PlanOptions, make_plan};
use dm_apply::sim::Generation;

/// `${env:NAME}` → NAME.
fn var(s: &str) -> Option<String> {
    s.strip_prefix("${env:").and_then(|r| r.strip_suffix('}')).map(str::to_owned)
}

/// The value each variable of the imported file must hold: the secret the original configuration sent.
fn env_for(imported: &ConfigFile, desired: &Desired) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for s in &imported.sources {
        let orig = &desired.sources[&s.source_name].0;
        if let Some(v) = s.password.as_ref().and_then(|p| var(p.expose())) {
            env.insert(v, orig.password.as_ref().map(|p| p.expose().to_owned()).unwrap_or_default());
        }
        if let (Some(sec), Some(o)) = (&s.security, &orig.security) {
            env.insert(var(&sec.ssl_ca_content).unwrap(), o.ssl_ca_content.clone());
            env.insert(var(&sec.ssl_cert_content).unwrap(), o.ssl_cert_content.clone());
            env.insert(var(sec.ssl_key_content.expose()).unwrap(), o.ssl_key_content.expose().to_owned());
        }
    }
    for t in &imported.tasks {
        let orig = &desired.tasks[&t.name].0;
        if let Some(v) = var(t.target_config.password.expose()) {
            env.insert(v, orig.target_config.password.expose().to_owned());
        }
        if let (Some(sec), Some(o)) = (&t.target_config.security, &orig.target_config.security)
            && let Some(v) = var(sec.ssl_key_content.expose())
        {
            env.insert(v, o.ssl_key_content.expose().to_owned());
        }
    }
    env
}

fn load_imported(text: &str, env: &BTreeMap<String, String>) -> (Desired, std::path::PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("imported.yaml");
    std::fs::write(&file, text).unwrap();
    let analysis = config::analyze_with_env(std::slice::from_ref(&file), &|n| env.get(n).cloned());
    let errors: Vec<String> = analysis.errors.iter().map(|e| config::render_plain(e)).collect();
    assert!(errors.is_empty(), "imported YAML does not validate:\n{}\n---\n{text}", errors.join("\n"));
    (analysis.desired, file, dir)
}

fn assert_no_secret(text: &str) {
    for (_, v) in ENV {
        assert!(!text.contains(v), "a password was written by import");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_imports_to_an_empty_plan_on_every_generation() {
    // The cases are independent (a simulator each): run at once, a failed assertion fails the test.
    join_all(Generation::ALL.into_iter().map(|generation| {
        tokio::spawn(async move {
            for ex in examples() {
                let (sim, client) = start(generation).await;
                let desired = load(&ex);
                apply_by_hand(&client, &desired).await;
                let l = live::fetch(&client).await.unwrap();
                sim.control().clear_log();
                let imp = import::import(&l, &ImportOptions::default()).unwrap();
                let text = import::render(&imp, &sim.url(), "../schemas/dm-apply.schema.json");
                assert_no_secret(&text);
                let env = env_for(&imp.config, &desired);
                // Every variable import asks for is one this test can fill.
                for v in &imp.env {
                    assert!(env.contains_key(&v.name), "{}: unexpected variable {}", ex.display(), v.name);
                }
                let (imported, file, _dir) = load_imported(&text, &env);
                assert_eq!(imported.sources.keys().collect::<Vec<_>>(), desired.sources.keys().collect::<Vec<_>>());
                assert_eq!(imported.tasks.keys().collect::<Vec<_>>(), desired.tasks.keys().collect::<Vec<_>>());
                for _ in 0..3 {
                    let l = live::fetch(&client).await.unwrap();
                    let p = make_plan(&imported, &l, &PlanOptions::default()).unwrap();
                    assert!(!p.has_changes(), "{} on {generation:?}:\n{text}\n{:#?}", ex.display(), p.changes);
                }
                // Through the binary, with the variables in the environment.
                let url = sim.url();
                let f = file.display().to_string();
                let out = tokio::task::spawn_blocking(move || {
                    let mut c = bin();
                    c.envs(env.iter()).args(["plan", "-f", &f, "--addr", &url, "--detailed-exitcode"]);
                    c.output().unwrap()
                })
                .await
                .unwrap();
                assert_eq!(
                    out.status.code(),
                    Some(0),
                    "{}: {}\n{}",
                    ex.display(),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                sim.shutdown().await;
            }
        })
    }))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_is_read_only_and_writes_no_secret() {
    let (sim, client) = start(Generation::Head).await;
    let ex = examples().into_iter().find(|p| p.ends_with("sharded-optimistic.yaml")).unwrap();
    let desired = load(&ex);
    apply_by_hand(&client, &desired).await;
    sim.control().clear_log();
    let url = sim.url();
    let out =
        tokio::task::spawn_blocking(move || bin().args(["import", "--addr", &url]).output().unwrap()).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stdout.starts_with("# yaml-language-server: $schema="));
    assert!(stderr.contains("Set these environment variables"), "{stderr}");
    assert_no_secret(&stdout);
    assert_no_secret(&stderr);
    let log = sim.control().request_log();
    assert!(!log.is_empty());
    assert!(log.iter().all(|r| !r.mutating), "import wrote to DM: {log:?}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dmctl_created_resources_import_to_an_empty_plan() {
    // Created without dm-apply (no state record): passwords are untracked, so import marks them ignored.
    let (sim, client) = start(Generation::Head).await;
    let ex = examples().into_iter().find(|p| p.ends_with("single-mysql-incremental.yaml")).unwrap();
    let desired = load(&ex);
    let version = client.server_version().await.unwrap().clone();
    for (spec, _) in desired.sources.values() {
        client.create_source(&normalize::source_to_wire(spec, &version), None).await.unwrap();
    }
    for (name, (spec, _)) in &desired.tasks {
        client.create_task(&normalize::task_to_wire(spec, &version)).await.unwrap();
        client.start_task(name, &Default::default()).await.unwrap();
        for _ in 0..400 {
            let st = client.task_status(name).await.unwrap();
            if st.iter().all(|s| matches!(s.stage, Stage::Running)) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    let l = live::fetch(&client).await.unwrap();
    assert_eq!(l.state, dm_apply::state::StateView::Absent);
    let imp = import::import(&l, &ImportOptions::default()).unwrap();
    let src = &imp.config.sources[0];
    assert_eq!(src.lifecycle.ignore_changes, ["password"]);
    assert!(imp.warnings.iter().any(|w| w.contains("never sent this password")));
    let text = import::render(&imp, &sim.url(), "s.json");
    let (imported, _f, _d) = load_imported(&text, &env_for(&imp.config, &desired));
    let p = make_plan(&imported, &l, &PlanOptions::default()).unwrap();
    assert!(!p.has_changes(), "{text}\n{:#?}", p.changes);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selection_and_unknown_names() {
    let (sim, client) = start(Generation::Head).await;
    let ex = examples().into_iter().find(|p| p.ends_with("sharded-optimistic.yaml")).unwrap();
    let desired = load(&ex);
    apply_by_hand(&client, &desired).await;
    let l = live::fetch(&client).await.unwrap();
    let task = desired.tasks.keys().next().unwrap().clone();
    let imp = import::import(&l, &ImportOptions { sources: vec![], tasks: vec![task.clone()] }).unwrap();
    assert_eq!(imp.config.tasks.len(), 1);
    assert!(imp.config.sources.is_empty());
    let used: Vec<String> =
        desired.tasks[&task].0.source_config.source_conf.iter().map(|s| s.source_name.clone()).collect();
    let mut used_sorted = used.clone();
    used_sorted.sort();
    assert_eq!(imp.config.external_sources, used_sorted);
    let err = import::import(&l, &ImportOptions { sources: vec!["nope".into()], tasks: vec![] }).unwrap_err();
    assert_eq!(err.to_string(), "DM has no source named `nope`");
    // Stable output: two imports of the same cluster are identical (the simulator reorders lists).
    let a = import::render(
        &import::import(&live::fetch(&client).await.unwrap(), &ImportOptions::default()).unwrap(),
        "x",
        "s",
    );
    let b = import::render(
        &import::import(&live::fetch(&client).await.unwrap(), &ImportOptions::default()).unwrap(),
        "x",
        "s",
    );
    assert_eq!(a, b);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converted_dmctl_files_apply_and_import_back_to_an_empty_plan() {
    // dmctl files → convert → put in place → plan (empty) → import → plan (empty).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("source.yaml"),
        "source-id: mysql-01\nenable-gtid: true\nfrom: {host: 10.0.0.11, port: 3306, user: dm, password: pw-1}\n",
    )
    .unwrap();
    std::fs::copy("tests/dmctl/task-bw-inline.yaml", dir.path().join("task.yaml")).unwrap();
    let conv =
        dm_apply::convert::convert_files(&[dir.path().join("source.yaml"), dir.path().join("task.yaml")]).unwrap();
    let text = dm_apply::convert::render(&conv, "s.json");
    let env: BTreeMap<String, String> =
        conv.env.iter().map(|v| (v.name.clone(), format!("secret-of-{}", v.name))).collect();
    let (desired, _f, _d) = load_imported(&text, &env);
    let (sim, client) = start(Generation::Head).await;
    apply_by_hand(&client, &desired).await;
    let l = live::fetch(&client).await.unwrap();
    let p = make_plan(&desired, &l, &PlanOptions::default()).unwrap();
    assert!(!p.has_changes(), "{text}\n{:#?}", p.changes);

    let imp = import::import(&l, &ImportOptions::default()).unwrap();
    let imported_text = import::render(&imp, &sim.url(), "s.json");
    let env2 = env_for(&imp.config, &desired);
    let (imported, _f2, _d2) = load_imported(&imported_text, &env2);
    let p = make_plan(&imported, &l, &PlanOptions::default()).unwrap();
    assert!(!p.has_changes(), "{imported_text}\n{:#?}", p.changes);
    assert!(!imported_text.contains("secret-of-"));
    sim.shutdown().await;
}
