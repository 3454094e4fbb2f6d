//! 10,000 tasks plan in memory (correctness at scale; the time is printed, not asserted: CI machines vary).

use dm_apply::config::ConfigFile;
use dm_apply::dm::ServerVersion;
use dm_apply::plan::testing::{desired_from_config, live_after_apply};
use dm_apply::plan::{PlanOptions, make_plan};

#[test]
fn ten_thousand_tasks() {
    let one: ConfigFile = serde_saphyr::from_str(
        r#"
sources:
  - {source_name: s0, host: h0, port: 3306, user: u, password: pw}
tasks:
  - name: t
    task_mode: incremental
    target_config: {host: tidb, port: 4000, user: root, password: tpw}
    binlog_filter_rule: {f: {ignore_event: [drop table]}}
    table_migrate_rule:
      - source: {source_name: s0, schema: db, table: "t_*"}
        target: {schema: d}
        binlog_filter_rule: [f]
    source_config:
      source_conf: [{source_name: s0, binlog_name: mysql-bin.000001, binlog_pos: 4}]
"#,
    )
    .unwrap();
    let mut cfg = ConfigFile::default();
    for s in 0..20 {
        let mut src = one.sources[0].clone();
        src.source_name = format!("s{s}");
        cfg.sources.push(src);
    }
    for i in 0..10_000 {
        let mut t = one.tasks[0].clone();
        let s = format!("s{}", i % 20);
        t.name = format!("t{i}");
        t.table_migrate_rule[0].source.source_name = s.clone();
        t.table_migrate_rule[0].source.schema = format!("db{i}");
        t.source_config.source_conf[0].source_name = s;
        cfg.tasks.push(t);
    }
    let d = desired_from_config("big.yaml", cfg);
    let v = ServerVersion::parse("v8.5.3");
    let live = live_after_apply(&d, &v, 3);
    let t = std::time::Instant::now();
    let p = make_plan(&d, &live, &PlanOptions::default()).unwrap();
    eprintln!("planned 10,000 unchanged tasks in {:?}", t.elapsed());
    assert!(!p.has_changes());
}
