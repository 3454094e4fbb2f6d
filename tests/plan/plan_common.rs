//! Shared helpers of the plan/drift integration tests: start a simulator, put a configuration in place by hand
//! (what apply will do), run the binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dm_apply::config::{Desired, DesiredStage};
use dm_apply::dm::types::Stage;
use dm_apply::dm::{ClientOptions, DmClient};
use dm_apply::live;
use dm_apply::normalize;
use dm_apply::plan::Address;
use dm_apply::plan::testing::desired_from_yaml;
use dm_apply::sim::{Generation, SimOptions, SimServer};
use dm_apply::state::store;

pub const ENV: [(&str, &str); 6] = [
    ("DM_SOURCE_PASSWORD", "src-pw"),
    ("DM_TARGET_PASSWORD", "tgt-pw"),
    ("DM_SHARD_PASSWORD", "shard-pw"),
    ("DM_CATALOG_PASSWORD", "cat-pw"),
    ("DM_ORDERS_PASSWORD", "orders-pw"),
    ("DM_PASSWORD", "pw"),
];

pub fn examples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    v.sort();
    v
}

/// The desired state as the CLI sees it (`${env:X}` resolved from `ENV`).
pub fn load(path: &Path) -> Desired {
    let mut text = std::fs::read_to_string(path).unwrap();
    for (k, v) in ENV {
        text = text.replace(&format!("${{env:{k}}}"), v);
    }
    assert!(!text.contains("${env:"), "example {} uses an env var this test does not set", path.display());
    desired_from_yaml(&path.display().to_string(), &text).unwrap()
}

pub async fn start(generation: Generation) -> (SimServer, DmClient) {
    let opts = SimOptions { generation, stage_delay: Duration::from_millis(5), ..SimOptions::default() };
    let sim = SimServer::start(opts).await.unwrap();
    let client = DmClient::new(&ClientOptions::new(sim.url())).unwrap();
    (sim, client)
}

/// What apply will do, done by hand: create sources and tasks from dm-apply's wire forms, start the running ones,
/// record their write-only values (Argon2id, no key: as the CLI without `DM_APPLY_STATE_KEY`).
pub async fn apply_by_hand(client: &DmClient, desired: &Desired) {
    let l = live::fetch(client).await.unwrap();
    let mut updates = vec![];
    for (name, (spec, _)) in &desired.sources {
        let wire = normalize::source_to_wire(spec, &l.version);
        client.create_source(&wire, None).await.unwrap();
        let values = normalize::source_write_only(&wire).into_iter().map(|f| (f.key.to_string(), f.value)).collect();
        updates.push((
            Address::source(name).to_string(),
            store::Update::Set { values, version: spec.write_only_version, merge: false },
        ));
    }
    for (name, (spec, _)) in &desired.tasks {
        let wire = normalize::task_to_wire(spec, &l.version);
        client.create_task(&wire).await.unwrap();
        if spec.stage == DesiredStage::Running {
            client.start_task(name, &Default::default()).await.unwrap();
        }
        let values = normalize::task_write_only_fields(&wire, &l.version)
            .into_iter()
            .map(|f| (f.key.to_string(), f.value))
            .collect();
        updates.push((
            Address::task(name).to_string(),
            store::Update::Set { values, version: spec.write_only_version, merge: false },
        ));
    }
    if let Some((_, (home, _))) = desired.tasks.iter().next() {
        let mut record = dm_apply::state::StateRecord::default();
        store::merge(&mut record, &updates, None);
        let target = normalize::task_to_wire(home, &l.version).target_config;
        store::write(client, &record, &target, false).await.unwrap();
    }
    // Wait until started tasks run (or finish).
    for (name, (spec, _)) in &desired.tasks {
        if spec.stage != DesiredStage::Running {
            continue;
        }
        for _ in 0..400 {
            let st = client.task_status(name).await.unwrap();
            if st.iter().all(|s| matches!(s.stage, Stage::Running | Stage::Finished)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dm-apply"));
    c.env_remove("NO_COLOR").env("RUST_LOG", "error");
    for (k, v) in ENV {
        c.env(k, v);
    }
    c
}

pub async fn run(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let o = bin().args(&args).output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into(),
            String::from_utf8_lossy(&o.stderr).into(),
        )
    })
    .await
    .unwrap()
}

pub fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// Awaits every task; a panic in one (a failed assertion) fails the caller with that task's own message.
pub async fn join_all<T>(tasks: impl IntoIterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = vec![];
    for t in tasks {
        match t.await {
            Ok(v) => out.push(v),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    out
}
