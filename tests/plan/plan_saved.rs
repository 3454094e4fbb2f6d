//! Saved plans without a server: staleness rules, the comparison with the plan made again, the configuration
//! lookup, and file properties. (Through the binary against the simulator: tests/apply/apply_saved.rs.)

use dm_apply::dm::ServerVersion;
use dm_apply::dm::types::Stage;
use dm_apply::plan::testing::{desired_from_yaml, live_after_apply};
use dm_apply::plan::{Address, ConfigAction, Impact, PlanOptions, RuntimeAction, make_plan};
use dm_apply::saved_plan::{self as saved, ConfigPaths, RefusedPlan, StalePlanError, check, file};

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

fn paths() -> ConfigPaths {
    ConfigPaths { paths: vec!["dm.yaml".into()], dir: Some("/srv/repo".into()) }
}

#[test]
fn staleness_rules_and_file() {
    let v = ServerVersion::parse("v8.5.3");
    let d = desired_from_yaml("dm.yaml", Y).unwrap();
    let live = live_after_apply(&d, &v, 0);
    let d2 = desired_from_yaml("dm.yaml", &Y.replace("host: h1", "host: h2")).unwrap();
    let opts = PlanOptions::default();
    let p = make_plan(&d2, &live, &opts).unwrap();
    let sp = saved::save(&p, &d2, &live, &opts, &paths());
    assert!(check::verify(&sp, &d2, &live, "dm.yaml").is_ok());
    assert_eq!(sp.live_digests.keys().collect::<Vec<_>>(), [&Address::source("s1")]);
    // Every declared resource's stage is recorded (nothing else of it).
    let stages = sp.stages.as_ref().unwrap();
    assert_eq!(stages.keys().collect::<Vec<_>>(), [&Address::source("s1"), &Address::task("t1")]);
    assert_eq!(stages[&Address::task("t1")].to_string(), "s1: Running");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.json");
    file::write(&path, &sp).unwrap();
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
    let back = file::read(&path).unwrap();
    assert!(back.plan.changes.iter().all(|c| c.desired.is_none()));
    assert_eq!(serde_json::to_value(&back).unwrap(), serde_json::to_value(&sp).unwrap());
    std::fs::write(&path, "{}").unwrap();
    assert!(file::read(&path).is_err());

    // Another server version.
    let mut l2 = live.clone();
    l2.version = ServerVersion::parse("v8.5.4");
    assert!(matches!(check::verify(&sp, &d2, &l2, "dm.yaml"), Err(StalePlanError::VersionChanged { .. })));
    // Another apply recorded something in dm-apply's state record meanwhile.
    let mut l3 = live.clone();
    if let dm_apply::state::StateView::Record { record, .. } = &mut l3.state {
        record.resources.remove("source.s1");
    }
    assert!(matches!(check::verify(&sp, &d2, &l3, "dm.yaml"), Err(StalePlanError::StateChanged)));
    // A resource the plan does not touch changed its configuration: still fine.
    let mut l4 = live.clone();
    l4.tasks.get_mut("t1").unwrap().task.source_config.incr_migrate_conf.as_mut().unwrap().repl_batch = Some(7);
    assert!(check::verify(&sp, &d2, &l4, "dm.yaml").is_ok());
    // The touched resource was deleted.
    let mut l5 = live.clone();
    l5.sources.remove("s1");
    let e = check::verify(&sp, &d2, &l5, "dm.yaml").unwrap_err();
    assert!(e.to_string().contains("source.s1"));
    // A secret is not part of the desired digest (any hash of it in the file could be tested offline): apply sends
    // the value the configuration has at apply time. Anything else changed is detected.
    let d3 = desired_from_yaml("dm.yaml", &Y.replace("host: h1", "host: h2").replace("SECRET-tpw-2", "other")).unwrap();
    assert!(check::verify(&sp, &d3, &live, "dm.yaml").is_ok());
    // ... but the plan made again has the difference, so the file is not what apply would run.
    let e = check::same_plan(&sp.plan, &make_plan(&d3, &live, &opts).unwrap()).unwrap_err();
    assert!(e.to_string().contains("task.t1"), "{e}");
    // A source password is judged by its fingerprint (keyed here: the plan was made with the key).
    let keyed = PlanOptions { state_key: Some(dm_apply::plan::testing::test_key()), ..PlanOptions::default() };
    let spk = saved::save(&make_plan(&d2, &live, &keyed).unwrap(), &d2, &live, &keyed, &paths());
    let d3s = desired_from_yaml("dm.yaml", &Y.replace("host: h1", "host: h2").replace("SECRET-pw-1", "other")).unwrap();
    assert!(check::verify(&spk, &d3s, &live, "dm.yaml").is_ok());
    check::same_plan(&spk.plan, &make_plan(&d2, &live, &keyed).unwrap()).unwrap();
    let e = check::same_plan(&spk.plan, &make_plan(&d3s, &live, &keyed).unwrap()).unwrap_err();
    assert!(e.to_string().contains("source.s1: the file differs in whether the password is sent"), "{e}");
    let d4 = desired_from_yaml("dm.yaml", &Y.replace("host: h1", "host: h3")).unwrap();
    let e = check::verify(&sp, &d4, &live, "there/dm.yaml").unwrap_err();
    assert!(matches!(e, StalePlanError::ConfigChanged { .. }) && e.to_string().contains("there/dm.yaml"), "{e}");
    // The same configuration from another file (another directory): the origins do not count.
    let d5 = desired_from_yaml("/elsewhere/dm.yaml", &Y.replace("host: h1", "host: h2")).unwrap();
    assert!(check::verify(&sp, &d5, &live, "dm.yaml").is_ok());
    // The plan made again equals the file's, and holds the secrets in memory for apply.
    let again = make_plan(&d2, &live, &opts).unwrap();
    check::same_plan(&back.plan, &again).unwrap();
    assert_eq!(
        dm_apply::plan::planner::payload_password(again.change(&Address::source("s1")).unwrap()).map(|s| s.expose()),
        Some("SECRET-pw-1")
    );
}

#[test]
fn a_changed_stage_makes_the_plan_stale_and_names_it() {
    let v = ServerVersion::parse("v8.5.4");
    let d = desired_from_yaml("dm.yaml", Y).unwrap();
    let live = live_after_apply(&d, &v, 0);
    let d2 = desired_from_yaml("dm.yaml", &Y.replace("host: h1", "host: h2")).unwrap();
    let opts = PlanOptions::default();
    let sp = saved::save(&make_plan(&d2, &live, &opts).unwrap(), &d2, &live, &opts, &paths());
    // The task was stopped after planning (its configuration did not change, so no live digest sees it).
    let mut stopped = live.clone();
    for s in stopped.tasks.get_mut("t1").unwrap().status.as_mut().unwrap() {
        s.stage = Stage::Paused;
    }
    let e = check::verify(&sp, &d2, &stopped, "dm.yaml").unwrap_err();
    assert!(matches!(e, StalePlanError::StageChanged { .. }), "{e:?}");
    assert!(e.to_string().contains("task.t1 (s1: Running -> Paused)"), "{e}");
    // The source was disabled.
    let mut disabled = live.clone();
    disabled.sources.get_mut("s1").unwrap().enable = false;
    let e = check::verify(&sp, &d2, &disabled, "dm.yaml").unwrap_err();
    assert!(e.to_string().contains("source.s1 (enabled -> disabled)"), "{e}");
    // Status no longer readable.
    let mut unknown = live.clone();
    unknown.tasks.get_mut("t1").unwrap().status = None;
    let e = check::verify(&sp, &d2, &unknown, "dm.yaml").unwrap_err();
    assert!(e.to_string().contains("task.t1 (s1: Running -> status unavailable)"), "{e}");
    // A file of a dm-apply that recorded no stages is refused.
    let mut old = sp.clone();
    old.stages = None;
    assert!(matches!(check::verify(&old, &d2, &live, "dm.yaml"), Err(StalePlanError::NoStages { .. })));
}

#[test]
fn edits_and_other_options_are_refused() {
    let v = ServerVersion::parse("v8.5.4");
    let d = desired_from_yaml("dm.yaml", Y).unwrap();
    let live = live_after_apply(&d, &v, 0);
    let d2 = desired_from_yaml("dm.yaml", &Y.replace("host: h1", "host: h2")).unwrap();
    let opts = PlanOptions::default();
    let plan = make_plan(&d2, &live, &opts).unwrap();
    let sp = saved::save(&plan, &d2, &live, &opts, &paths());
    let again = make_plan(&d2, &live, &opts).unwrap();
    check::same_plan(&sp.plan, &again).unwrap();
    let refused = |edit: &dyn Fn(&mut dm_apply::plan::Plan)| {
        let mut p = sp.plan.clone();
        edit(&mut p);
        match check::same_plan(&p, &again) {
            Err(e @ RefusedPlan::Mismatch { .. }) => e.to_string(),
            other => panic!("not refused: {other:?}"),
        }
    };
    let e = refused(&|p| p.changes.clear());
    assert!(e.contains("source.s1: the configuration and DM give `update`, the file has no change for it"), "{e}");
    let e = refused(&|p| {
        let mut c = p.changes[0].clone();
        c.address = Address::task("t1");
        c.action = ConfigAction::Delete;
        c.impact = Impact::Destroy { drops_checkpoints: true };
        p.changes.push(c);
    });
    assert!(e.contains("task.t1: the file plans `delete`, the configuration and DM give no change"), "{e}");
    let e = refused(&|p| p.changes[0].action = ConfigAction::Replace);
    assert!(e.contains("source.s1: the file plans `delete, create`, the configuration and DM give `update`"), "{e}");
    let e = refused(&|p| p.changes[0].runtime.push(RuntimeAction::Disable));
    assert!(e.contains("`update, disable`"), "{e}");
    let e = refused(&|p| p.changes[0].impact = Impact::InPlace);
    assert!(e.contains("impact"), "{e}");
    let e = refused(&|p| p.changes[0].send_password = !p.changes[0].send_password);
    assert!(e.contains("whether the password is sent"), "{e}");
    let e = refused(&|p| p.changes[0].attributes.clear());
    assert!(e.contains("the changed attributes"), "{e}");
    let e = refused(&|p| p.prune = true);
    assert!(e.contains("prune"), "{e}");
    let e = refused(&|p| p.targets = vec![Address::task("t1")]);
    assert!(e.contains("targets"), "{e}");
    let e = refused(&|p| p.changes.push(p.changes[0].clone()));
    assert!(e.contains("more than once"), "{e}");

    // Options that widen a plan come from the apply's command line and must be the plan's.
    assert!(check::same_options(&sp, &opts).is_ok());
    for (other, flag) in [
        (
            PlanOptions { prune: true, ..opts.clone() },
            "--prune (the plan was made without it, this apply runs with it)",
        ),
        (
            PlanOptions { targets: vec![Address::task("t1")], ..opts.clone() },
            "--target (the plan: none; this apply: task.t1)",
        ),
        (
            PlanOptions { replace: vec![Address::source("s1")], ..opts.clone() },
            "--replace (the plan: none; this apply: source.s1)",
        ),
    ] {
        let e = check::same_options(&sp, &other).unwrap_err().to_string();
        assert!(e.contains(flag), "{e}");
    }
    // --allow-restart is not compared: the restart guard is checked again when the plan is made again.
    assert!(check::same_options(&sp, &PlanOptions { allow_restart: true, ..opts.clone() }).is_ok());
}

#[test]
fn the_configuration_is_found_from_the_current_directory_then_where_plan_ran() {
    let v = ServerVersion::parse("v8.5.4");
    let d = desired_from_yaml("dm.yaml", Y).unwrap();
    let live = live_after_apply(&d, &v, 0);
    let opts = PlanOptions::default();
    let plan = make_plan(&d, &live, &opts).unwrap();
    let repo = tempfile::tempdir().unwrap();
    std::fs::create_dir(repo.path().join("dm")).unwrap();
    std::fs::write(repo.path().join("dm/dm.yaml"), Y).unwrap();
    // A path that cannot exist relative to the test's current directory.
    let rel = "dm-apply-saved-plan-test-missing/dm";
    let recorded = ConfigPaths { paths: vec![rel.into()], dir: Some(repo.path().display().to_string()) };
    let mut sp = saved::save(&plan, &d, &live, &opts, &recorded);
    std::fs::create_dir_all(repo.path().join(rel)).unwrap();
    let found = file::locate_config(&sp, &[]).unwrap();
    assert_eq!(found.paths, [repo.path().join(rel)]);
    assert!(found.how.contains("where plan ran"), "{}", found.how);
    // -f wins.
    let explicit = [repo.path().join("dm")];
    assert_eq!(file::locate_config(&sp, &explicit).unwrap().paths, explicit);
    // Found nowhere: says where it looked.
    sp.config_dir = Some("/nonexistent-dm-apply-dir".into());
    let e = file::locate_config(&sp, &[]).unwrap_err().to_string();
    assert!(e.contains(rel) && e.contains("/nonexistent-dm-apply-dir"), "{e}");
    // The current directory comes first (Cargo runs tests from the crate root, which has `examples`).
    sp.config_paths = vec!["examples".into()];
    let found = file::locate_config(&sp, &[]).unwrap();
    assert_eq!(found.paths, [std::path::PathBuf::from("examples")]);
    assert_eq!(found.how, "from the current directory");
}
