//! Property: for any generated configuration x, plan(x, live(x)) is empty, where live(x) is what DM reads back after
//! dm-apply created x (lossy, reordered), on both server generations. And a plan made from nothing creates
//! exactly the declared resources.

use std::collections::BTreeMap;

use dm_apply::config::*;
use dm_apply::dm::ServerVersion;
use dm_apply::live::Live;
use dm_apply::plan::testing::{desired_from_config, live_after_apply};
use dm_apply::plan::{ConfigAction, PlanOptions, build_plan};
use dm_apply::secret::Secret;
use proptest::prelude::*;

fn opt<T: std::fmt::Debug + Clone>(s: impl Strategy<Value = T>) -> impl Strategy<Value = Option<T>> {
    prop::option::of(s)
}

fn source(i: usize) -> impl Strategy<Value = SourceSpec> {
    (
        any::<bool>(),
        any::<bool>(),
        opt(prop_oneof![Just(Flavor::Mysql), Just(Flavor::Mariadb)]),
        opt(0i64..100),
        opt("[a-z]{1,6}"),
    )
        .prop_map(move |(gtid, enable, flavor, expires, relay_dir)| SourceSpec {
            source_name: format!("src-{i}"),
            host: format!("h{i}.internal"),
            port: 3306,
            user: "u".into(),
            password: Some(Secret::new(format!("pw{i}"))),
            enable_gtid: gtid,
            enable,
            flavor,
            security: None,
            purge: expires.map(|e| PurgeSpec { interval: None, expires: Some(e), remain_space: None }),
            relay_config: relay_dir.map(|d| RelayConfigSpec { relay_dir: Some(d), ..Default::default() }),
            relay: None,
            worker_name: None,
            write_only_version: None,
            lifecycle: Lifecycle::default(),
        })
}

fn rule(sources: Vec<String>, filters: Vec<String>) -> impl Strategy<Value = TableMigrateRuleSpec> {
    (
        prop::sample::select(sources),
        prop::sample::select(vec!["Shop", "shop", "db_*", "Billing"]),
        prop::sample::select(vec!["", "t_*", "Orders"]),
        opt((prop::sample::select(vec!["", "dst"]), opt(prop::sample::select(vec!["", "tbl"])))),
        prop::sample::subsequence(filters.clone(), 0..=filters.len()),
    )
        .prop_map(|(s, schema, table, target, f)| TableMigrateRuleSpec {
            source: TableRuleSourceSpec { source_name: s, schema: schema.into(), table: table.into() },
            target: target.map(|(sch, tbl)| TableRuleTargetSpec {
                schema: Some(sch.to_string()),
                table: tbl.map(str::to_string),
            }),
            binlog_filter_rule: if f.is_empty() { None } else { Some(f) },
        })
}

fn task(i: usize, n_sources: usize) -> impl Strategy<Value = TaskSpec> {
    let names: Vec<String> = (0..n_sources).map(|k| format!("src-{k}")).collect();
    (
        prop::sample::subsequence(names, 1..=n_sources),
        prop::sample::select(vec![TaskMode::All, TaskMode::Full, TaskMode::Incremental]),
        opt(prop::sample::select(vec!["dm_meta", "meta_x"])),
        opt(prop::sample::select(vec![OnDuplicate::Replace, OnDuplicate::Error, OnDuplicate::Ignore])),
        opt(prop::sample::subsequence(vec!["version", "all", "binlog_db"], 0..3)),
        (opt(1i64..64), opt(1i64..500), opt(any::<bool>())),
        (
            opt(1i64..32),
            opt(prop::sample::select(vec!["./d/", "./data"])),
            opt(prop::sample::select(vec![CheckLevel::Required, CheckLevel::Off])),
        ),
        prop::sample::select(vec![DesiredStage::Running, DesiredStage::Stopped]),
        opt(Just("UTC".to_string())),
        any::<bool>(),
    )
        .prop_flat_map(move |(srcs, mode, meta, dup, ici, incr, full, stage, tz, positions)| {
            let filters = vec!["f-a".to_string(), "f-b".to_string()];
            prop::collection::vec(rule(srcs.clone(), filters), 0..5).prop_map(move |rules| TaskSpec {
                name: format!("task-{i}"),
                task_mode: mode,
                shard_mode: None,
                strict_optimistic_shard_mode: None,
                meta_schema: meta.map(str::to_string),
                timezone: tz.clone(),
                enhance_online_schema_change: None,
                on_duplicate: dup,
                ignore_checking_items: ici.clone().map(|v| v.into_iter().map(str::to_string).collect()),
                target_config: TargetConfigSpec {
                    host: "tidb".into(),
                    port: 4000,
                    user: "root".into(),
                    password: Secret::new("tpw"),
                    security: None,
                    session: None,
                },
                binlog_filter_rule: BTreeMap::from([
                    (
                        "f-a".to_string(),
                        BinlogFilterRuleSpec { ignore_event: Some(vec!["drop table".into()]), ignore_sql: None },
                    ),
                    (
                        "f-b".to_string(),
                        BinlogFilterRuleSpec { ignore_event: None, ignore_sql: Some(vec!["^DROP".into()]) },
                    ),
                ]),
                table_migrate_rule: rules,
                source_config: TaskSourceConfigSpec {
                    full_migrate_conf: Some(FullMigrateConfSpec {
                        export_threads: full.0,
                        data_dir: full.1.map(str::to_string),
                        checksum: full.2,
                        ..Default::default()
                    }),
                    incr_migrate_conf: Some(IncrMigrateConfSpec {
                        repl_threads: incr.0,
                        repl_batch: incr.1,
                        safe_mode: incr.2,
                    }),
                    source_conf: srcs
                        .iter()
                        .map(|s| TaskSourceConfSpec {
                            source_name: s.clone(),
                            binlog_name: positions.then(|| "mysql-bin.000001".to_string()),
                            binlog_pos: positions.then_some(4),
                            binlog_gtid: None,
                        })
                        .collect(),
                },
                stage,
                write_only_version: None,
                renamed_from: Default::default(),
                lifecycle: Lifecycle::default(),
            })
        })
}

fn config() -> impl Strategy<Value = ConfigFile> {
    (1usize..4, 0usize..4).prop_flat_map(|(ns, nt)| {
        let sources: Vec<_> = (0..ns).map(source).collect();
        let tasks: Vec<_> = (0..nt).map(|i| task(i, ns)).collect();
        (sources, tasks).prop_map(|(sources, tasks)| ConfigFile { sources, tasks, external_sources: vec![] })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn plan_of_applied_config_is_empty(cfg in config(), rotate in 0usize..7, g in 0usize..4) {
        // The four server generations (their /status versions).
        let v = ServerVersion::parse(["v8.5.3", "v8.5.4", "v26.3.3", "v26.4.0-alpha"][g]);
        let desired = desired_from_config("gen.yaml", cfg);
        let live = live_after_apply(&desired, &v, rotate);
        let p = build_plan(&desired, &live, &PlanOptions { state_key: Some(dm_apply::plan::testing::test_key()), ..PlanOptions::default() }).unwrap();
        prop_assert!(!p.has_changes(), "{:#?}", p.changes);
    }

    #[test]
    fn plan_from_nothing_creates_exactly_the_declared(cfg in config()) {
        let desired = desired_from_config("gen.yaml", cfg);
        let p = build_plan(&desired, &Live::empty("http://x", ServerVersion::parse("v8.5.3")), &PlanOptions::default()).unwrap();
        prop_assert_eq!(p.changes.len(), desired.sources.len() + desired.tasks.len());
        prop_assert!(p.changes.iter().all(|c| c.action == ConfigAction::Create));
    }
}
