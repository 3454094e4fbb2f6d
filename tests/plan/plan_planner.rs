//! Planner tests against hand-built live states (every action kind and normalization rule).

use dm_apply::config::Desired;
use dm_apply::dm::ServerVersion;
use dm_apply::dm::types::{BinlogFilterRule, Stage, Unit};
use dm_apply::live::Live;
use dm_apply::plan::testing::{desired_from_yaml, live_after_apply, readback_task, status, test_key};
use dm_apply::plan::*;
use dm_apply::secret::Secret;
use dm_apply::state::StateView;

fn head() -> ServerVersion {
    ServerVersion::parse("v26.4.0-alpha")
}
fn v85() -> ServerVersion {
    ServerVersion::parse("v8.5.3")
}

const BASE: &str = r#"
sources:
  - source_name: s1
    host: h1
    port: 3306
    user: u
    password: pw1
  - source_name: s2
    host: h2
    port: 3306
    user: u
    password: pw2
tasks:
  - name: t1
    task_mode: all
    target_config: {host: tidb, port: 4000, user: root, password: tpw}
    binlog_filter_rule:
      f1: {ignore_event: [drop table]}
      f2: {ignore_sql: ["^DROP"]}
    table_migrate_rule:
      - source: {source_name: s1, schema: Db1, table: "T_*"}
        target: {schema: d, table: ""}
        binlog_filter_rule: [f1, f2]
      - source: {source_name: s1, schema: other}
        binlog_filter_rule: [f2]
    source_config:
      source_conf: [{source_name: s1}]
  - name: t2
    task_mode: incremental
    target_config: {host: tidb, port: 4000, user: root, password: tpw}
    source_config:
      incr_migrate_conf: {repl_threads: 8}
      source_conf:
        - {source_name: s1, binlog_name: mysql-bin.000001, binlog_pos: 4}
        - {source_name: s2, binlog_name: mysql-bin.000002}
"#;

fn desired(yaml: &str) -> Desired {
    desired_from_yaml("dm.yaml", yaml).expect("valid yaml")
}

/// Plans with the key `live_after_apply` records under.
fn plan(d: &Desired, l: &Live) -> Plan {
    make_plan(d, l, &PlanOptions { state_key: Some(test_key()), ..Default::default() }).expect("plan")
}

fn examples() -> Vec<(String, String)> {
    let mut v = vec![];
    for e in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/examples")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yaml") {
            v.push((p.display().to_string(), std::fs::read_to_string(&p).unwrap()));
        }
    }
    assert!(!v.is_empty());
    v
}

#[test]
fn applied_config_plans_no_changes_on_both_generations() {
    let mut cases = examples();
    cases.push(("base".into(), BASE.into()));
    for (name, yaml) in cases {
        let d = desired(&yaml);
        for v in [head(), v85()] {
            for rotate in 0..4 {
                let live = live_after_apply(&d, &v, rotate);
                let p = plan(&d, &live);
                assert!(!p.has_changes(), "{name} on {v} rotate {rotate}: {:#?}", p.changes);
            }
        }
    }
}

#[test]
fn create_everything_on_empty_cluster() {
    let d = desired(BASE);
    let p = plan(&d, &Live::empty("http://x", head()));
    let acts: Vec<(String, Vec<&str>)> = p.changes.iter().map(|c| (c.address.to_string(), c.actions())).collect();
    assert_eq!(
        acts,
        [
            ("source.s1".to_string(), vec!["create"]),
            ("source.s2".to_string(), vec!["create"]),
            ("task.t1".to_string(), vec!["create"]),
            ("task.t2".to_string(), vec!["create"]),
        ]
    );
    assert_eq!(p.summary(), Summary { add: 4, change: 0, destroy: 0, ..Summary::default() });
    let t2 = p.change(&Address::task("t2")).unwrap();
    assert_eq!(t2.depends_on, [Address::source("s1"), Address::source("s2")]);
    assert!(p.change(&Address::source("s1")).unwrap().send_password);
    assert!(matches!(t2.desired, Some(DesiredPayload::Task(_))));
}

#[test]
fn source_update_in_place_and_with_running_tasks() {
    let d = desired(BASE);
    let live = live_after_apply(&d, &head(), 0);
    let d2 = desired(&BASE.replace("host: h2", "host: h2-new"));
    let p = plan(&d2, &live);
    let c = p.change(&Address::source("s2")).unwrap();
    assert_eq!(c.actions(), ["update"]);
    assert_eq!(c.attributes[0].path, "host");
    assert_eq!(c.impact, Impact::StopUpdateStart { stopped_tasks: vec!["t2".into()] });
    assert!(!c.send_password);
    // No task on the source is running: in place.
    let mut live2 = live.clone();
    live2.tasks.get_mut("t2").unwrap().status = Some(status(&live.tasks["t2"].task, Stage::Paused, Unit::Sync));
    let c = plan(&d2, &live2).changes.into_iter().find(|c| c.address == Address::source("s2")).unwrap();
    assert_eq!(c.impact, Impact::InPlace);
}

#[test]
fn source_password_fingerprints() {
    let d = desired(BASE);
    let live = live_after_apply(&d, &head(), 0);
    assert!(!plan(&d, &live).has_changes());
    assert!(plan(&d, &live).notes.is_empty(), "{:?}", plan(&d, &live).notes);
    // Changed password: a sensitive update, password sent, recorded afterwards.
    let d2 = desired(&BASE.replace("password: pw1", "password: pw1-rotated"));
    let p = plan(&d2, &live);
    let c = p.change(&Address::source("s1")).unwrap();
    assert_eq!(c.actions(), ["update"]);
    assert!(c.send_password);
    assert!(c.attributes.iter().any(|a| a.path == "password" && a.sensitive));
    assert!(c.reasons.iter().any(|r| r.contains("password changed")));
    assert!(matches!(&c.record, Some(RecordPlan::Set { fields, adopt: false, .. }) if fields == &["password"]));
    assert_eq!(p.state.home.as_deref(), Some("t1"));
    // No record entry for the source: trusted as it is in DM (trust on first use), a note, no change.
    let mut live2 = live.clone();
    if let StateView::Record { record, .. } = &mut live2.state {
        record.resources.remove("source.s1");
    }
    let p = plan(&d, &live2);
    assert!(!p.has_changes());
    let c = p.change(&Address::source("s1")).unwrap();
    assert!(c.is_noop());
    assert!(matches!(&c.record, Some(RecordPlan::Set { adopt: true, .. })));
    assert!(p.notes.iter().any(|n| n.contains("source.s1") && n.contains("trusted")), "{:?}", p.notes);
    assert!(p.writes_record());
    // ... unless ignored.
    let d3 = desired(&BASE.replace("password: pw1", "password: pw1\n    lifecycle: {ignore_changes: [password]}"));
    assert!(!plan(&d3, &live2).has_changes());
    // Entries made under another key (or without the key): not verifiable, so trusted, never a change.
    let other = dm_apply::state::StateKey::new(b"another-key-0123456789".to_vec(), "t").unwrap();
    let p = make_plan(&d2, &live, &PlanOptions { state_key: Some(other), ..Default::default() }).unwrap();
    assert!(!p.has_changes());
    assert!(p.notes.iter().any(|n| n.contains("another state key")), "{:?}", p.notes);
    let p = make_plan(&d2, &live, &PlanOptions::default()).unwrap();
    assert!(!p.has_changes());
    // Unreadable record: never a diff (a warning comes from live), nothing recorded.
    live2.state = StateView::Unreadable("boom".into());
    let p = plan(&d2, &live2);
    assert!(!p.has_changes() && !p.writes_record());
    // -replace sends the password whatever the record says.
    let opts = PlanOptions { state_key: Some(test_key()), replace: vec![Address::source("s1")], ..Default::default() };
    let c = make_plan(&d, &live, &opts).unwrap().change(&Address::source("s1")).cloned().unwrap();
    assert_eq!(c.actions(), ["update"]);
    assert!(c.send_password);
    // -replace of something not declared is refused.
    let opts = PlanOptions { replace: vec![Address::source("nope")], ..Default::default() };
    assert!(make_plan(&d, &live, &opts).is_err());
}

#[test]
fn write_only_version_mode() {
    let yaml = BASE.replace("password: pw1", "password: pw1\n    write_only_version: 1");
    let d = desired(&yaml);
    let live = live_after_apply(&d, &head(), 0);
    assert!(!plan(&d, &live).has_changes());
    // A new password alone is not seen: no fingerprint is kept in this mode.
    let d2 = desired(&yaml.replace("password: pw1", "password: pw1-rotated"));
    assert!(!plan(&d2, &live).has_changes());
    // Bumping the version sends it, and records the new version.
    let d3 = desired(&yaml.replace("password: pw1", "password: pw1-rotated").replace("version: 1", "version: 2"));
    let p = plan(&d3, &live);
    let c = p.change(&Address::source("s1")).unwrap();
    assert_eq!(c.actions(), ["update"]);
    assert!(c.send_password);
    assert!(c.reasons.iter().any(|r| r.contains("write_only_version changed from 1 to 2")), "{:?}", c.reasons);
    assert!(matches!(&c.record, Some(RecordPlan::Set { version: Some(2), .. })));
    // Switching from fingerprints to a version sends nothing: it is adopted.
    let live_fp = live_after_apply(&desired(BASE), &head(), 0);
    let p = plan(&d, &live_fp);
    assert!(!p.has_changes());
    assert!(matches!(
        &p.change(&Address::source("s1")).unwrap().record,
        Some(RecordPlan::Set { version: Some(1), adopt: true, .. })
    ));
}

#[test]
fn no_declared_task_means_no_record() {
    let only_sources = "sources:\n  - {source_name: s1, host: h1, port: 3306, user: u, password: pw1}\n";
    let d = desired(only_sources);
    let mut live = live_after_apply(&d, &head(), 0);
    live.state = StateView::Absent;
    let p = plan(&desired(&only_sources.replace("pw1", "pw2")), &live);
    assert!(!p.has_changes());
    assert_eq!(p.state.home, None);
    assert!(!p.writes_record());
    assert!(p.notes.iter().any(|n| n.contains("no task is declared")), "{:?}", p.notes);
}

#[test]
fn v85_write_only_task_fields_are_tracked_not_compared() {
    let yaml = BASE.replace(
        "incr_migrate_conf: {repl_threads: 8}",
        "incr_migrate_conf: {repl_threads: 8}\n      full_migrate_conf: {import_mode: physical, pd_addr: \"pd:2379\"}",
    )
    .replace(
        "target_config: {host: tidb, port: 4000, user: root, password: tpw}",
        "target_config: {host: tidb, port: 4000, user: root, password: tpw, security: {ssl_ca_content: CA, ssl_cert_content: CERT, ssl_key_content: KEY}}",
    );
    let d = desired(&yaml);
    for v in [v85(), ServerVersion::parse("v8.5.4"), head()] {
        // v8.5 reads none of them back (`readback_task` drops them): never a diff, never a replace.
        let live = live_after_apply(&d, &v, 0);
        let p = plan(&d, &live);
        assert!(!p.has_changes(), "{v}: {:?}", p.changes);
        // A change of pd_addr is seen through the record on v8.5, by comparison on HEAD: a replace either way.
        let d2 = desired(&yaml.replace("pd:2379", "pd2:2379"));
        let c = make_plan(
            &d2,
            &live,
            &PlanOptions { allow_restart: true, state_key: Some(test_key()), ..Default::default() },
        )
        .unwrap()
        .change(&Address::task("t2"))
        .cloned()
        .unwrap();
        assert_eq!(c.action, ConfigAction::Replace, "{v}");
        assert!(c.attributes.iter().any(|a| a.path.contains("pd_addr")), "{v}: {:?}", c.attributes);
    }
}

#[test]
fn enable_and_disable_source() {
    let d = desired(BASE);
    let mut live = live_after_apply(&d, &head(), 0);
    live.sources.get_mut("s1").unwrap().enable = false;
    let p = plan(&d, &live);
    let c = p.change(&Address::source("s1")).unwrap();
    assert_eq!(c.actions(), ["enable"]);
    assert_eq!(c.impact, Impact::RuntimeOnly);
    assert_eq!(p.summary(), Summary { add: 0, change: 1, destroy: 0, ..Summary::default() });
    let d2 = desired(&BASE.replace("password: pw2", "password: pw2\n    enable: false"));
    let live = live_after_apply(&d, &head(), 0);
    assert_eq!(plan(&d2, &live).change(&Address::source("s2")).unwrap().actions(), ["disable"]);
}

#[test]
fn task_update_in_place_for_updatable_fields() {
    let d = desired(BASE);
    let live = live_after_apply(&d, &head(), 1);
    let d2 = desired(&BASE.replace("repl_threads: 8", "repl_threads: 12"));
    let c = plan(&d2, &live).change(&Address::task("t2")).cloned().unwrap();
    assert_eq!(c.actions(), ["update"]);
    assert_eq!(c.impact, Impact::StopUpdateStart { stopped_tasks: vec!["t2".into()] });
    assert_eq!(c.attributes.len(), 1);
    assert_eq!(c.attributes[0].path, "source_config.incr_migrate_conf.repl_threads");
    assert_eq!(c.attributes[0].before, Some(serde_json::json!(8)));
    assert_eq!(c.attributes[0].after, Some(serde_json::json!(12)));
    // Filters and rules are updatable too.
    let d3 = desired(&BASE.replace("[drop table]", "[drop table, truncate table]"));
    let c = plan(&d3, &live).change(&Address::task("t1")).cloned().unwrap();
    assert_eq!(c.actions(), ["update"], "{:?}", c.attributes);
    assert_eq!(c.attributes[0].path, "binlog_filter_rule.s1");
}

/// BASE as applied on HEAD, with every subtask of `task` in `stage` and `unit`.
fn applied_with(task: &str, stage: Stage, unit: Unit) -> Live {
    let mut live = live_after_apply(&desired(BASE), &head(), 0);
    let t = live.tasks[task].task.clone();
    live.tasks.get_mut(task).unwrap().status = Some(status(&t, stage, unit));
    live
}

#[test]
fn task_update_outside_sync_unit_is_deferred_not_a_replace() {
    let live = applied_with("t2", Stage::Running, Unit::Load);
    let d2 = desired(&BASE.replace("repl_threads: 8", "repl_threads: 12"));
    let p = make_plan(&d2, &live, &PlanOptions::default()).unwrap();
    let c = p.change(&Address::task("t2")).cloned().unwrap();
    // Behaviour changed on purpose: DM accepts the update once the task is in Sync, so it waits (was a replace).
    assert_eq!(c.actions(), ["update"]);
    let hold = c.hold.expect("deferred");
    assert_eq!(hold.kind, dm_apply::plan::HoldKind::Deferred);
    assert!(hold.reason.contains("Sync unit") && hold.reason.contains("in Load"), "{}", hold.reason);
    assert!(p.has_changes() && !p.has_actionable_changes());
    // --replace forces the replacement, which restarts the migration (no checkpoint outside Sync).
    let opts = PlanOptions { replace: vec![Address::task("t2")], allow_restart: true, ..Default::default() };
    let c = make_plan(&d2, &live, &opts).unwrap().change(&Address::task("t2")).cloned().unwrap();
    assert_eq!(c.actions(), ["delete", "create"]);
    assert!(matches!(c.impact, Impact::Replace { restarts_migration: true, .. }), "{:?}", c.impact);
}

#[test]
fn a_source_update_stops_only_tasks_whose_subtask_on_it_runs() {
    // t2 reads from s1 and s2; its subtask on s2 was paused on purpose (dmctl), the one on s1 runs.
    let mut live = applied_with("t2", Stage::Running, Unit::Sync);
    for s in live.tasks.get_mut("t2").unwrap().status.iter_mut().flatten().filter(|s| s.source_name == "s2") {
        s.stage = Stage::Paused;
    }
    // DM looks only at the subtask on the updated source (46025): nothing runs on s2, so the update is in place.
    let p = plan(&desired(&BASE.replace("host: h2", "host: h2-new")), &live);
    assert_eq!(p.change(&Address::source("s2")).unwrap().impact, Impact::InPlace);
    let p = plan(&desired(&BASE.replace("host: h1", "host: h1-new")), &live);
    let c = p.change(&Address::source("s1")).unwrap();
    assert_eq!(c.impact, Impact::StopUpdateStart { stopped_tasks: vec!["t1".into(), "t2".into()] });
    assert_eq!(c.describe_impact(), "stop-update-start: replication of t1, t2 from s1 pauses during the update");
}

#[test]
fn a_task_starts_only_on_its_sources_that_stay_enabled() {
    // s2 declared disabled (and disabled in DM): t2 (on s1 and s2) is paused on both.
    let with_s2_off = BASE.replace("user: u\n    password: pw2", "user: u\n    password: pw2\n    enable: false");
    let d = desired(&with_s2_off);
    let mut live = applied_with("t2", Stage::Paused, Unit::Sync);
    live.sources.get_mut("s2").unwrap().enable = false;
    let p = plan(&d, &live);
    let c = p.change(&Address::task("t2")).unwrap();
    assert_eq!(c.actions(), ["start"]);
    assert!(c.hold.is_none(), "{:?}", c.hold);
    assert_eq!(c.start_on, ["s1"], "DM refuses a start that names s2 (38058)");
    assert!(c.reasons.iter().any(|r| r.contains("stage on s1 is Paused")), "{:?}", c.reasons);
    assert!(!c.reasons.iter().any(|r| r.contains("stage on s2")), "paused on a disabled source is no drift");
    // Running on s1: nothing to do, although nothing runs on s2.
    for sub in live.tasks.get_mut("t2").unwrap().status.iter_mut().flatten().filter(|s| s.source_name == "s1") {
        sub.stage = Stage::Running;
    }
    assert!(plan(&d, &live).change(&Address::task("t2")).is_none_or(|c| c.is_noop()));
    // Every source of the task disabled: nothing can run, and the plan says so instead of failing in apply.
    let all_off = with_s2_off.replace("user: u\n    password: pw1", "user: u\n    password: pw1\n    enable: false");
    let p = plan(&desired(&all_off), &live);
    let c = p.change(&Address::task("t2")).unwrap();
    assert_eq!(c.hold.as_ref().map(|h| h.kind), Some(HoldKind::Blocked), "{c:?}");
}

#[test]
fn a_source_update_waits_for_the_dumps_it_would_restart() {
    // t1 (all, on s1) dumps; t2 (incremental, on s1 and s2) syncs. Both run, so an update of s1 stops both.
    let mut live = applied_with("t1", Stage::Running, Unit::Dump);
    let t = live.tasks["t1"].task.clone();
    let d2 = desired(&BASE.replace("host: h1", "host: h1-new"));
    let p = make_plan(&d2, &live, &PlanOptions::default()).unwrap();
    let c = p.change(&Address::source("s1")).cloned().unwrap();
    assert_eq!(c.actions(), ["update"]);
    let hold = c.hold.expect("deferred");
    assert_eq!(hold.kind, HoldKind::Deferred);
    assert!(hold.reason.contains("t1 (on s1) in its full dump"), "{}", hold.reason);
    assert!(hold.reason.contains("dumps again from the start"), "{}", hold.reason);
    assert!(hold.remedy.contains("--wait-for-sync") && hold.remedy.contains("--allow-restart"), "{}", hold.remedy);
    assert_eq!(hold.wait, Some(HoldWait { tasks: vec!["t1".into()], until: WaitUntil::DumpDone }));
    assert_eq!(p.waits(), std::collections::BTreeMap::from([("t1".to_string(), WaitUntil::DumpDone)]));
    assert!(p.has_changes() && !p.has_actionable_changes());
    // In the JSON, for `--wait-for-sync` and for scripts.
    let json = dm_apply::render::json::render_value(&p, &[]);
    let held = json["resource_changes"].as_array().unwrap().iter().find(|c| c["address"] == "source.s1").unwrap();
    assert_eq!(held["hold"]["wait"], serde_json::json!({"tasks": ["t1"], "until": "dump-done"}));
    // In a pull request: the banner lists it with its reason, then what to do, as two sentences.
    let md = dm_apply::render::markdown::render(&p);
    assert!(md.contains("> [!NOTE]"), "{md}");
    assert!(
        md.contains("> - `source.s1` deferred: the update of source s1 would stop t1 (on s1) in its full dump: "),
        "{md}"
    );
    assert!(md.contains("when it runs again. To do: apply again once the dump is done"), "{md}");

    // Allowed, globally or on the task: planned, and the plan says what it costs.
    let d3 = desired(
        &BASE
            .replace("host: h1", "host: h1-new")
            .replace("task_mode: all\n", "task_mode: all\n    lifecycle: {allow_restart: true}\n"),
    );
    for (d, opts) in [(&d2, PlanOptions { allow_restart: true, ..Default::default() }), (&d3, PlanOptions::default())] {
        let p = make_plan(d, &live, &opts).unwrap();
        let c = p.change(&Address::source("s1")).unwrap();
        assert!(c.hold.is_none(), "{:?}", c.hold);
        assert!(c.reasons.iter().any(|r| r.contains("t1 (on s1) in its full dump") && r.contains("allowed")), "{c:?}");
        assert_eq!(c.impact, Impact::StopUpdateStart { stopped_tasks: vec!["t1".into(), "t2".into()] });
    }
    // t1's own update waits for Sync, the stronger condition: `--wait-for-sync` waits for that.
    let d5 = desired(&BASE.replace("host: h1", "host: h1-new").replace("[drop table]", "[drop table, truncate table]"));
    let p = make_plan(&d5, &live, &PlanOptions::default()).unwrap();
    assert_eq!(
        p.change(&Address::task("t1")).unwrap().hold.as_ref().unwrap().wait.as_ref().unwrap().until,
        WaitUntil::Sync
    );
    assert_eq!(p.waits(), std::collections::BTreeMap::from([("t1".to_string(), WaitUntil::Sync)]));
    // Once the dump is done (Load resumes from its checkpoint), nothing waits.
    live.tasks.get_mut("t1").unwrap().status = Some(status(&t, Stage::Running, Unit::Load));
    let p = make_plan(&d2, &live, &PlanOptions::default()).unwrap();
    assert!(p.change(&Address::source("s1")).unwrap().hold.is_none());
    assert!(p.waits().is_empty());
    // A disable stops the tasks on purpose: said, not held.
    live.tasks.get_mut("t1").unwrap().status = Some(status(&t, Stage::Running, Unit::Dump));
    let d4 = desired(&BASE.replace("user: u\n    password: pw1", "user: u\n    password: pw1\n    enable: false"));
    let p = make_plan(&d4, &live, &PlanOptions::default()).unwrap();
    let c = p.change(&Address::source("s1")).unwrap();
    assert!(c.hold.is_none(), "{:?}", c.hold);
    assert!(c.reasons.iter().any(|r| r.contains("disable of source s1 stops t1 (on s1) in its full dump")), "{c:?}");
}

#[test]
fn replace_for_source_set_and_refused_fields() {
    let d = desired(BASE);
    let live = live_after_apply(&d, &head(), 0);
    let opts = PlanOptions { allow_restart: true, ..Default::default() };
    let d2 = desired(
        &BASE.replace("source_conf: [{source_name: s1}]", "source_conf: [{source_name: s1}, {source_name: s2}]"),
    );
    let p = make_plan(&d2, &live, &opts).unwrap();
    let c = p.change(&Address::task("t1")).unwrap();
    assert_eq!(c.actions(), ["delete", "create"]);
    assert!(
        c.reasons
            .iter()
            .any(|r| r == "forces replacement: source set changed (DM cannot add or remove a task's sources in place)")
    );
    assert_eq!(p.summary(), Summary { add: 1, change: 0, destroy: 1, ..Summary::default() });
    for (from, to, field) in [
        ("task_mode: all", "task_mode: full", "task_mode"),
        ("task_mode: all", "task_mode: all\n    meta_schema: other_meta", "meta_schema"),
        ("task_mode: all", "task_mode: all\n    shard_mode: pessimistic", "shard_mode"),
        ("task_mode: all", "task_mode: all\n    timezone: UTC", "timezone"),
        ("task_mode: all", "task_mode: all\n    enhance_online_schema_change: false", "enhance_online_schema_change"),
        ("task_mode: all", "task_mode: all\n    ignore_checking_items: [version]", "ignore_checking_items"),
        ("task_mode: all", "task_mode: all\n    on_duplicate: error", "on_duplicate"),
    ] {
        let d2 = desired(&BASE.replacen(from, to, 1));
        let c = make_plan(&d2, &live, &opts).unwrap().change(&Address::task("t1")).cloned().unwrap();
        assert_eq!(c.action, ConfigAction::Replace, "{field}");
        assert!(c.attributes.iter().any(|a| a.path == field && a.forces_replacement), "{field}: {:?}", c.attributes);
    }
    // Target host and password (password shown only as sensitive).
    let d2 = desired(&BASE.replacen("user: root, password: tpw}", "user: root, password: new-secret}", 1));
    let c = make_plan(&d2, &live, &opts).unwrap().change(&Address::task("t1")).cloned().unwrap();
    assert_eq!(c.action, ConfigAction::Replace);
    let a = c.attributes.iter().find(|a| a.path == "target_config.password").unwrap();
    assert!(a.sensitive && a.forces_replacement);
    assert!(!serde_json::to_string(&c).unwrap().contains("new-secret"));
}

#[test]
fn restart_guard_and_allow_restart() {
    let d = desired(BASE);
    let live = live_after_apply(&d, &v85(), 0);
    let d2 = desired(&BASE.replace("task_mode: all", "task_mode: full"));
    let err = make_plan(&d2, &live, &PlanOptions::default()).unwrap_err();
    assert!(matches!(&err.problems[0], PlanProblem::RestartNotAllowed { address, origin, .. }
        if address == &Address::task("t1") && origin == "dm.yaml:100"));
    assert!(err.plan.is_some());
    let d3 = desired(&BASE.replace("task_mode: all", "task_mode: full\n    lifecycle: {allow_restart: true}"));
    assert!(make_plan(&d3, &live, &PlanOptions::default()).is_ok());
    // An incremental task with explicit positions resumes from them: no restart.
    let d4 = desired(&BASE.replace(
        "user: root, password: tpw}\n    source_config:\n      incr",
        "user: root2, password: tpw}\n    source_config:\n      incr",
    ));
    let p = make_plan(&d4, &live, &PlanOptions::default()).unwrap();
    // Behaviour changed on purpose: it resumes from the checkpoint it reached, not from the configured positions.
    assert!(matches!(
        p.change(&Address::task("t2")).unwrap().impact,
        Impact::Replace { restarts_migration: false, keep_meta: false, from_checkpoint: true, .. }
    ));
    // On HEAD, same name/meta/target: keep_meta keeps checkpoints.
    let live = live_after_apply(&d, &head(), 0);
    let d5 = desired(&BASE.replace("task_mode: all", "task_mode: all\n    on_duplicate: ignore"));
    let p = make_plan(&d5, &live, &PlanOptions::default()).unwrap();
    assert_eq!(p.change(&Address::task("t1")).unwrap().impact, Impact::replace(false, true));
}

#[test]
fn prevent_destroy_refuses_replace() {
    let d = desired(BASE);
    let live = live_after_apply(&d, &head(), 0);
    let d2 = desired(
        &BASE.replace("task_mode: all", "task_mode: full\n    lifecycle: {prevent_destroy: true, allow_restart: true}"),
    );
    let err = make_plan(&d2, &live, &PlanOptions::default()).unwrap_err();
    assert_eq!(err.problems.len(), 1);
    let msg = err.problems[0].to_string();
    assert!(msg.contains("task.t1") && msg.contains("dm.yaml:100") && msg.contains("prevent_destroy"), "{msg}");
}

#[test]
fn stage_drift_start_and_stop() {
    let d = desired(BASE);
    let mut live = live_after_apply(&d, &head(), 0);
    let t = live.tasks["t1"].task.clone();
    let mut st = status(&t, Stage::Paused, Unit::Sync);
    st[0].error_msg = Some("[code=10001:class=database], Message: cannot connect upstream".into());
    live.tasks.get_mut("t1").unwrap().status = Some(st);
    let p = plan(&d, &live);
    let c = p.change(&Address::task("t1")).unwrap();
    assert_eq!(c.actions(), ["start"]);
    assert!(c.reasons[0].contains("Paused") && c.reasons[0].contains("cannot connect upstream"), "{:?}", c.reasons);
    assert_eq!(p.summary(), Summary { add: 0, change: 1, destroy: 0, ..Summary::default() });
    let d2 = desired(&BASE.replace("task_mode: incremental", "task_mode: incremental\n    stage: stopped"));
    let live = live_after_apply(&d, &head(), 0);
    assert_eq!(plan(&d2, &live).change(&Address::task("t2")).unwrap().actions(), ["stop"]);
    // Unknown status: no stage action.
    let mut live = live_after_apply(&d, &head(), 0);
    live.tasks.get_mut("t2").unwrap().status = None;
    assert!(plan(&d2, &live).change(&Address::task("t2")).is_none_or(|c| c.is_noop()));
}

#[test]
fn undeclared_resources_are_unmanaged_unless_pruned() {
    let full = desired(BASE);
    let live = live_after_apply(&full, &head(), 0);
    let only_s1 = desired(
        r#"
sources:
  - {source_name: s1, host: h1, port: 3306, user: u, password: pw1}
external_sources: [s2]
"#,
    );
    let p = plan(&only_s1, &live);
    assert!(!p.has_changes());
    let un: Vec<String> = p.unmanaged.iter().map(|u| u.address.to_string()).collect();
    assert_eq!(un, ["task.t1", "task.t2"]);
    let p = make_plan(&only_s1, &live, &PlanOptions { prune: true, ..Default::default() }).unwrap();
    let acts: Vec<(String, Vec<&str>)> = p.changes.iter().map(|c| (c.address.to_string(), c.actions())).collect();
    assert_eq!(acts, [("task.t1".to_string(), vec!["delete"]), ("task.t2".to_string(), vec!["delete"])]);
    assert_eq!(p.summary(), Summary { add: 0, change: 0, destroy: 2, ..Summary::default() });
    // s2 is external: never pruned. Without the external listing it would be.
    let none = desired("sources: []\n");
    let p = make_plan(&none, &live, &PlanOptions { prune: true, ..Default::default() }).unwrap();
    assert!(p.change(&Address::source("s2")).is_some_and(|c| c.action == ConfigAction::Delete));
    assert!(p.warnings.iter().any(|w| w.contains("deletes everything")), "{:?}", p.warnings);
    assert_eq!(p.change(&Address::task("t2")).unwrap().depends_on, [Address::source("s1"), Address::source("s2")]);
}

#[test]
fn target_limits_to_resource_and_its_sources() {
    let d = desired(BASE);
    let live = Live::empty("http://x", head());
    let opts = PlanOptions { targets: vec![Address::task("t1")], ..Default::default() };
    let p = make_plan(&d, &live, &opts).unwrap();
    let addrs: Vec<String> = p.changes.iter().map(|c| c.address.to_string()).collect();
    assert_eq!(addrs, ["source.s1", "task.t1"]);
    assert!(p.warnings.iter().any(|w| w.contains("targeting")));
    let bad = PlanOptions { targets: vec![Address::task("nope")], ..Default::default() };
    assert!(matches!(make_plan(&d, &live, &bad).unwrap_err().problems[0], PlanProblem::UnknownTarget(_)));
}

#[test]
fn ignore_changes_removes_fields() {
    let yaml = BASE.to_string() + "    lifecycle: {ignore_changes: [source_config.incr_migrate_conf.repl_threads]}\n";
    let d = desired(&yaml);
    let live = live_after_apply(&d, &head(), 0);
    let d2 = desired(&yaml.replace("repl_threads: 8}", "repl_threads: 99}"));
    assert!(!plan(&d2, &live).has_changes());
}

#[test]
fn normalization_rules() {
    let d = desired(BASE);
    let v = head();
    let mut live = live_after_apply(&d, &v, 0);
    // meta_schema: DM's injected default equals "not set".
    live.tasks.get_mut("t1").unwrap().task.meta_schema = Some("dm-meta".into());
    // Server-renamed filters, in another order of names: compared by content per source.
    let t2 = &mut live.tasks.get_mut("t2").unwrap().task;
    t2.source_config.source_conf.reverse();
    assert!(!plan(&d, &live).has_changes());
    // ... but a user-set meta_schema must match exactly.
    let d2 = desired(&BASE.replace("task_mode: all", "task_mode: all\n    meta_schema: dm_meta"));
    let p = make_plan(&d2, &live, &PlanOptions { allow_restart: true, ..Default::default() }).unwrap();
    assert!(p.change(&Address::task("t1")).is_some());
    // Filter content change on the live side is seen.
    let mut live = live_after_apply(&d, &v, 0);
    let f = live.tasks.get_mut("t1").unwrap().task.binlog_filter_rule.as_mut().unwrap();
    f.insert("s1-filter-rule-0".into(), BinlogFilterRule { ignore_event: Some(vec!["all".into()]), ignore_sql: None });
    assert!(plan(&d, &live).change(&Address::task("t1")).is_some());
    // Lowercased patterns and random order.
    let wire = dm_apply::normalize::task_to_wire(&d.tasks["t1"].0, &v);
    for r in 0..5 {
        let mut live = live_after_apply(&d, &v, 0);
        live.tasks.get_mut("t1").unwrap().task = readback_task(&wire, &v, r);
        assert!(!plan(&d, &live).has_changes());
    }
}

#[test]
fn write_only_fields_tracked_by_fingerprint() {
    let yaml = BASE.replace(
        "incr_migrate_conf: {repl_threads: 8}",
        "incr_migrate_conf: {repl_threads: 8}\n      full_migrate_conf: {checksum: required}",
    );
    let d = desired(&yaml);
    let live = live_after_apply(&d, &head(), 0);
    assert!(!plan(&d, &live).has_changes());
    let d2 = desired(&yaml.replace("checksum: required", "checksum: off"));
    let c =
        make_plan(&d2, &live, &PlanOptions { allow_restart: true, state_key: Some(test_key()), ..Default::default() })
            .unwrap()
            .change(&Address::task("t2"))
            .cloned()
            .unwrap();
    assert_eq!(c.action, ConfigAction::Replace);
}

#[test]
fn head_only_fields_warn_on_old_servers() {
    let d = desired(&BASE.replace("task_mode: all", "task_mode: all\n    timezone: UTC"));
    let live = live_after_apply(&d, &v85(), 0);
    let p = plan(&d, &live);
    assert!(!p.has_changes());
    assert!(p.warnings.iter().any(|w| w.contains("timezone") && w.contains("v8.5.3")), "{:?}", p.warnings);
}

#[test]
fn secrets_are_not_serialized() {
    let d = desired(&BASE.replace("pw1", "PLANTED-SECRET-1").replace("tpw", "PLANTED-SECRET-2"));
    let p = plan(&d, &Live::empty("http://x", head()));
    let s = serde_json::to_string(&p).unwrap();
    assert!(!s.contains("PLANTED-SECRET"), "{s}");
    let _ = Secret::new("x");
}

#[test]
fn unreadable_stage_is_a_warning_not_an_action() {
    let d = desired(BASE);
    let mut live = live_after_apply(&d, &head(), 0);
    let t = live.tasks["t1"].task.clone();
    let mut st = status(&t, Stage::Empty, Unit::Invalid);
    st[0].error_msg = Some("[code=38029], Message: source s1 is not bound".into());
    live.tasks.get_mut("t1").unwrap().status = Some(st);
    let p = plan(&d, &live);
    assert!(p.change(&Address::task("t1")).is_none_or(|c| c.is_noop()));
    assert!(p.warnings.iter().any(|w| w.contains("task.t1") && w.contains("not bound")), "{:?}", p.warnings);
}

#[test]
fn task_changes_carry_their_live_sources_for_the_compiler_and_the_json_does_not() {
    let d = desired(BASE);
    let live = live_after_apply(&d, &head(), 0);
    // t2 leaves s2 (a replace): the compiler must still know it runs on s2 now.
    let d2 = desired(&BASE.replace("        - {source_name: s2, binlog_name: mysql-bin.000002}\n", ""));
    let p =
        make_plan(&d2, &live, &PlanOptions { state_key: Some(test_key()), allow_restart: true, ..Default::default() })
            .expect("plan");
    let t2 = p.change(&Address::task("t2")).unwrap();
    assert_eq!(t2.action, ConfigAction::Replace, "{:#?}", t2.reasons);
    assert_eq!(t2.depends_on, [Address::source("s1")]);
    assert_eq!(t2.live_sources, ["s1", "s2"]);
    // A task DM does not have yet runs nowhere.
    let p = plan(&d, &Live::empty("http://x", head()));
    assert!(p.change(&Address::task("t2")).unwrap().live_sources.is_empty());
    // A fact for apply only: the JSON plan shows the live sources in `before`, not twice.
    let p =
        make_plan(&d2, &live, &PlanOptions { state_key: Some(test_key()), allow_restart: true, ..Default::default() })
            .expect("plan");
    let json = serde_json::to_string(&p).unwrap();
    assert!(!json.contains("live_sources"), "{json}");
    assert!(json.contains("\"s2\""), "the sources are still in `before`");
}
