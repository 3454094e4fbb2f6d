//! Helpers for tests (unit, integration and property tests): a `Desired` from YAML text without the config loader,
//! and an in-process imitation of DM-master's lossy read-back (docs/dm-behaviour.md §9), so that `plan(x, live(x))` can be
//! checked without a server. The imitation is deliberately independent of `normalize` (a shared bug would hide
//! itself): it only transforms wire objects the way the server does.

use std::collections::BTreeMap;

use crate::config::{ConfigFile, Desired, Origin};
use crate::dm::ServerVersion;
use crate::dm::types::{
    FullMigrateConf, IncrMigrateConf, MASKED_PASSWORD, Purge, RelayConfig, Security, Source, Stage, SubTaskStatus,
    TableMigrateRule, Task, Unit,
};
use crate::live::{Live, LiveTask};
use crate::normalize;
use crate::secret::Secret;

/// One source and one incremental task with a binlog position: the smallest configuration tests plan against.
pub const ONE_SOURCE_ONE_TASK: &str = r#"
sources:
  - {source_name: s1, host: h1, port: 3306, user: u, password: pw}
tasks:
  - name: t1
    task_mode: incremental
    target_config: {host: tidb, port: 4000, user: root, password: tpw}
    source_config:
      source_conf: [{source_name: s1, binlog_name: mysql-bin.000001, binlog_pos: 4}]
"#;

/// Parse one YAML document into a `Desired` (origins point at `file` with a line per resource index).
pub fn desired_from_yaml(file: &str, yaml: &str) -> Result<Desired, String> {
    let cfg: ConfigFile = serde_saphyr::from_str(yaml).map_err(|e| e.to_string())?;
    Ok(desired_from_config(file, cfg))
}

pub fn desired_from_config(file: &str, cfg: ConfigFile) -> Desired {
    let mut d = Desired::default();
    for (i, s) in cfg.sources.into_iter().enumerate() {
        let o = Origin { file: file.to_string(), line: i + 1, column: 1 };
        d.sources.insert(s.source_name.clone(), (s, o));
    }
    for (i, t) in cfg.tasks.into_iter().enumerate() {
        let o = Origin { file: file.to_string(), line: 100 + i, column: 1 };
        d.tasks.insert(t.name.clone(), (t, o));
    }
    d.external_sources = cfg.external_sources.into_iter().collect();
    d
}

/// What `GET /sources` returns for a source created with `sent` (HEAD or v8.5 server).
pub fn readback_source(sent: &Source, version: &ServerVersion) -> Source {
    let mut s = sent.clone();
    s.password = Some(Secret::new(MASKED_PASSWORD));
    s.security = sent.security.as_ref().map(|x| Security {
        ssl_ca_content: String::new(),
        ssl_cert_content: String::new(),
        ssl_key_content: Secret::default(),
        cert_allowed_cn: x.cert_allowed_cn.clone(),
    });
    if s.flavor.is_none() {
        s.flavor = Some("mysql".into());
    }
    let p = s.purge.clone().unwrap_or_default();
    s.purge = Some(Purge {
        interval: p.interval.or(Some(3600)),
        expires: p.expires.or(Some(0)),
        remain_space: p.remain_space.or(Some(15)),
    });
    let injected = version.injects_request_defaults() && sent.relay_config.is_some();
    let r = s.relay_config.clone().unwrap_or_default();
    s.relay_config = Some(RelayConfig {
        enable_relay: Some(r.enable_relay.unwrap_or(false)),
        relay_binlog_name: Some(r.relay_binlog_name.unwrap_or_default()),
        relay_binlog_gtid: Some(r.relay_binlog_gtid.unwrap_or_default()),
        relay_dir: Some(r.relay_dir.unwrap_or_else(|| if injected { "./relay_log" } else { "relay-dir" }.into())),
    });
    s
}

/// What `GET /tasks` returns for a task created with `sent`. `rotate` reorders lists (the server's map order).
pub fn readback_task(sent: &Task, version: &ServerVersion, rotate: usize) -> Task {
    let mut t = sent.clone();
    let sources: Vec<String> = t.source_config.source_conf.iter().map(|s| s.source_name.clone()).collect();
    if t.meta_schema.as_deref().is_none_or(str::is_empty) {
        t.meta_schema = Some(if version.injects_request_defaults() { "dm-meta" } else { "dm_meta" }.into());
    }
    t.strict_optimistic_shard_mode = Some(t.strict_optimistic_shard_mode.unwrap_or(false));
    if t.timezone.as_deref() == Some("") {
        t.timezone = None;
    }
    if t.ignore_checking_items.as_ref().is_some_and(Vec::is_empty) {
        t.ignore_checking_items = None;
    }
    let f = t.source_config.full_migrate_conf.clone().unwrap_or_default();
    t.on_duplicate = f.on_duplicate_logical.clone().unwrap_or_else(|| "replace".into());
    let dd = f.data_dir.clone().unwrap_or_else(|| "./dumped_data".into());
    t.source_config.full_migrate_conf = Some(FullMigrateConf {
        export_threads: Some(f.export_threads.unwrap_or(4)),
        import_threads: Some(f.import_threads.unwrap_or(16)),
        data_dir: Some(if dd.len() > 1 { dd.trim_end_matches('/').to_string() } else { dd }),
        consistency: f.consistency.clone(),
        import_mode: Some(f.import_mode.clone().unwrap_or_else(|| "logical".into())),
        pd_addr: f.pd_addr.clone(),
        security: f.security.clone(),
        ..FullMigrateConf::default()
    });
    if !version.returns_full_task_config() {
        // v8.5 reads back neither the target TLS nor import_mode, pd_addr and security.
        t.target_config.security = None;
        if let Some(f) = t.source_config.full_migrate_conf.as_mut() {
            f.import_mode = None;
            f.pd_addr = None;
            f.security = None;
        }
    }
    let i = t.source_config.incr_migrate_conf.clone().unwrap_or_default();
    t.source_config.incr_migrate_conf = Some(IncrMigrateConf {
        repl_threads: Some(i.repl_threads.unwrap_or(16)),
        repl_batch: Some(i.repl_batch.unwrap_or(100)),
        safe_mode: Some(i.safe_mode.unwrap_or(false)),
    });
    for s in &mut t.source_config.source_conf {
        if s.binlog_name.is_some() || s.binlog_pos.is_some() || s.binlog_gtid.is_some() {
            s.binlog_name = Some(s.binlog_name.clone().unwrap_or_default());
            s.binlog_pos = Some(s.binlog_pos.unwrap_or(0));
            s.binlog_gtid = Some(s.binlog_gtid.clone().unwrap_or_default());
        }
    }
    // Filters are rebuilt per source and renamed `{source}-filter-rule-{i}`.
    let defs = t.binlog_filter_rule.clone().unwrap_or_default();
    let mut filters = BTreeMap::new();
    let mut names_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in &sources {
        let mut i = 0;
        for r in t.table_migrate_rule.iter().filter(|r| &r.source.source_name == s) {
            for n in r.binlog_filter_rule.iter().flatten() {
                if let Some(d) = defs.get(n) {
                    let name = format!("{s}-filter-rule-{i}");
                    filters.insert(name.clone(), d.clone());
                    names_of.entry(s.clone()).or_default().push(name);
                    i += 1;
                }
            }
        }
    }
    t.binlog_filter_rule = if filters.is_empty() { None } else { Some(filters) };
    // Rules: routes first, then the allow list; duplicates by key dropped; unknown sources dropped.
    let mut routes = vec![];
    let mut allow = vec![];
    let mut seen = std::collections::BTreeSet::new();
    let mut rules: Vec<TableMigrateRule> = t.table_migrate_rule.clone();
    rules.sort_by_key(|r| r.target.as_ref().and_then(|x| x.schema.clone()).is_none_or(|s| s.is_empty()));
    for mut r in rules {
        if !sources.contains(&r.source.source_name) {
            continue;
        }
        // A case-sensitive upstream (the Linux default): patterns keep their case.
        if !seen.insert((r.source.source_name.clone(), r.source.schema.clone(), r.source.table.clone())) {
            continue;
        }
        r.target = r.target.filter(|x| x.schema.as_deref().is_some_and(|s| !s.is_empty())).map(|mut x| {
            if x.table.as_deref() == Some("") {
                x.table = None;
            }
            x
        });
        r.binlog_filter_rule = names_of.get(&r.source.source_name).cloned();
        if r.target.is_some() { routes.push(r) } else { allow.push(r) }
    }
    routes.extend(allow);
    if !routes.is_empty() {
        let k = rotate % routes.len();
        routes.rotate_left(k);
    }
    t.table_migrate_rule = routes;
    if !t.source_config.source_conf.is_empty() {
        let k = rotate % t.source_config.source_conf.len();
        t.source_config.source_conf.rotate_left(k);
    }
    t.status_list = None;
    t
}

/// Subtask status of a task in `stage` on each of its sources.
pub fn status(t: &Task, stage: Stage, unit: Unit) -> Vec<SubTaskStatus> {
    t.source_config
        .source_conf
        .iter()
        .map(|s| SubTaskStatus {
            name: t.name.clone(),
            source_name: s.source_name.clone(),
            worker_name: "worker1".into(),
            stage: stage.clone(),
            unit: unit.clone(),
            ..SubTaskStatus::default()
        })
        .collect()
}

/// The state key of test records (keyed fingerprints are fast; Argon2id would make property tests crawl).
pub fn test_key() -> crate::state::StateKey {
    crate::state::StateKey::new(b"dm-apply-test-state-key".to_vec(), "tests").expect("long enough")
}

/// The live state DM would show after dm-apply applied `desired` (tasks in their desired stage), including the
/// state record apply writes (keyed with [`test_key`]: plan with `PlanOptions { state_key: Some(test_key()), .. }`).
pub fn live_after_apply(desired: &Desired, version: &ServerVersion, rotate: usize) -> Live {
    use crate::state::store::{Update, merge};
    let mut live = Live::empty("http://127.0.0.1:8261", version.clone());
    live.cluster_id = Some(7);
    let mut updates = vec![];
    for (name, (spec, _)) in &desired.sources {
        let wire = normalize::source_to_wire(spec, version);
        let values = normalize::source_write_only(&wire).into_iter().map(|f| (f.key.to_string(), f.value)).collect();
        updates.push((
            crate::plan::Address::source(name).to_string(),
            Update::Set { values, version: spec.write_only_version, merge: false },
        ));
        live.sources.insert(name.clone(), readback_source(&wire, version));
    }
    for (name, (spec, _)) in &desired.tasks {
        let wire = normalize::task_to_wire(spec, version);
        let values = normalize::task_write_only_fields(&wire, version)
            .into_iter()
            .map(|f| (f.key.to_string(), f.value))
            .collect();
        updates.push((
            crate::plan::Address::task(name).to_string(),
            Update::Set { values, version: spec.write_only_version, merge: false },
        ));
        let stage = match spec.stage {
            crate::config::DesiredStage::Running => Stage::Running,
            crate::config::DesiredStage::Stopped => Stage::Paused,
        };
        let task = readback_task(&wire, version, rotate);
        let st = status(&task, stage, Unit::Sync);
        live.tasks.insert(name.clone(), LiveTask::new(task, Some(st)));
    }
    let mut record = crate::state::StateRecord::default();
    merge(&mut record, &updates, Some(&test_key()));
    let target = desired.tasks.values().next().map(|(t, _)| normalize::task_to_wire(t, version).target_config);
    live.state = crate::state::StateView::Record { record, target: target.unwrap_or_default() };
    live
}
