//! Saved plans without a server: staleness rules and file properties.

use dm_apply::dm::ServerVersion;
use dm_apply::plan::saved::{self, StalePlanError};
use dm_apply::plan::testing::{desired_from_yaml, live_after_apply};
use dm_apply::plan::{Address, PlanOptions, make_plan};

const Y: &str = r#"
sources:
  - {source_name: s1, host: h1, port: 3306, user: u, password: SECRET-pw-1}
tasks:
  - name: t1
    task_mode: incremental
    target_config: {host: tidb, port: 4000, user: root, password: SECRET-tpw-2}
    source_config:
      source_conf: [{source_name: s1, binlog_name: mysql-bin.000001, binlog_pos: 4}]
"#;

#[test]
fn staleness_rules_and_file() {
    let v = ServerVersion::parse("v8.5.3");
    let d = desired_from_yaml("dm.yaml", Y).unwrap();
    let live = live_after_apply(&d, &v, 0);
    let d2 = desired_from_yaml("dm.yaml", &Y.replace("host: h1", "host: h2")).unwrap();
    let opts = PlanOptions::default();
    let p = make_plan(&d2, &live, &opts).unwrap();
    let sp = saved::save(&p, &d2, &live, &opts, &["dm.yaml".into()]);
    assert!(saved::verify_saved(&sp, &d2, &live).is_ok());
    assert_eq!(sp.live_digests.keys().collect::<Vec<_>>(), [&Address::source("s1")]);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    saved::write(&path, &sp).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("SECRET-"), "{text}");
    // No fingerprint and no salt either: nothing in the file lets a password guess be tested.
    for word in ["salt", "fingerprint", "hmac", "argon2"] {
        assert!(!text.contains(word), "{word} in {text}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // Everything but the in-memory payloads round-trips.
    let back = saved::read(&path).unwrap();
    assert!(back.plan.changes.iter().all(|c| c.desired.is_none()));
    assert_eq!(serde_json::to_value(&back).unwrap(), serde_json::to_value(&sp).unwrap());
    std::fs::write(&path, "{}").unwrap();
    assert!(saved::read(&path).is_err());

    // Another server version.
    let mut l2 = live.clone();
    l2.version = ServerVersion::parse("v8.5.4");
    assert!(matches!(saved::verify_saved(&sp, &d2, &l2), Err(StalePlanError::VersionChanged { .. })));
    // Another apply recorded something in dm-apply's state record meanwhile.
    let mut l3 = live.clone();
    if let dm_apply::state::StateView::Record { record, .. } = &mut l3.state {
        record.resources.remove("source.s1");
    }
    assert!(matches!(saved::verify_saved(&sp, &d2, &l3), Err(StalePlanError::StateChanged)));
    // A resource the plan does not touch changed: still fine.
    let mut l4 = live.clone();
    l4.tasks.get_mut("t1").unwrap().task.source_config.incr_migrate_conf.as_mut().unwrap().repl_batch = Some(7);
    assert!(saved::verify_saved(&sp, &d2, &l4).is_ok());
    // The touched resource was deleted.
    let mut l5 = live.clone();
    l5.sources.remove("s1");
    let e = saved::verify_saved(&sp, &d2, &l5).unwrap_err();
    assert!(e.to_string().contains("source.s1"));
    // A secret is not part of the desired digest (any hash of it in the file could be tested offline): apply sends
    // the value the configuration has at apply time. Anything else changed is detected.
    let d3 = desired_from_yaml("dm.yaml", &Y.replace("host: h1", "host: h2").replace("SECRET-tpw-2", "other")).unwrap();
    assert!(saved::verify_saved(&sp, &d3, &live).is_ok());
    let d4 = desired_from_yaml("dm.yaml", &Y.replace("host: h1", "host: h3")).unwrap();
    assert!(matches!(saved::verify_saved(&sp, &d4, &live), Err(StalePlanError::ConfigChanged { .. })));
    // Rehydrated payloads hold the secrets in memory for apply.
    let plan = saved::rehydrate(&sp, &d2, &live).unwrap();
    assert_eq!(
        dm_apply::plan::planner::payload_password(plan.change(&Address::source("s1")).unwrap()).map(|s| s.expose()),
        Some("SECRET-pw-1")
    );
}
