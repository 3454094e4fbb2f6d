//! Field coverage: a configuration that sets every field of a source and a task to a non-default value goes
//! config → wire → DM (the simulator, through `dm-apply apply`) → `dm-apply import` → config, and every field must
//! come back, or be listed in [`NOT_READ_BACK`] with the reason and the docs/dm-behaviour.md rule.
//!
//! The fields are enumerated from the serde types: the JSON schema generated from them (`schemas/`, kept fresh by
//! `tests/config` `schema_fresh`) names every property, and the fixture must set each one (a new field the fixture
//! does not set fails `fixture_sets_every_field`). The fixture's specs are then serialized to JSON and compared with
//! the imported specs leaf by leaf.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use dm_apply::config::{self, Desired};
use dm_apply::dm::facts;
use dm_apply::dm::{ClientOptions, DmClient};
use dm_apply::import::{self, ImportOptions};
use dm_apply::live;
use dm_apply::sim::{Generation, SimOptions, SimServer};
use serde_json::{Map, Value};

/// Two sources because two source fields exclude each other: relay through the config flag (`relay_config.
/// enable_relay`) and relay by worker name (`relay`), docs/dm-behaviour.md R4.3.
const FIXTURE: &str = r#"
sources:
  - source_name: mysql-a
    host: mysql-a.db.internal
    port: 3307
    user: dm_a
    password: ${env:PW_A}
    enable_gtid: true
    enable: true
    flavor: mariadb
    security:
      ssl_ca_content: CA-A
      ssl_cert_content: CERT-A
      ssl_key_content: ${env:KEY_A}
      cert_allowed_cn: [dm-a]
    purge: {interval: 7200, expires: 48, remain_space: 30}
    relay_config:
      enable_relay: false
      relay_binlog_name: mysql-bin.000002
      relay_binlog_gtid: "3ccc475b-2343-11e7-be21-6c0b84d59f30:1-5"
      relay_dir: /data/relay-a
    worker_name: worker2
    write_only_version: 3
    lifecycle: {prevent_destroy: true, ignore_changes: [purge], allow_restart: true}
  - source_name: mysql-b
    host: mysql-b.db.internal
    port: 3306
    user: dm_b
    password: ${env:PW_B}
    enable_gtid: false
    enable: false
    relay: {enabled: true, workers: [worker1, worker3]}
    worker_name: worker1
tasks:
  - name: orders
    task_mode: all
    shard_mode: optimistic
    strict_optimistic_shard_mode: true
    meta_schema: dm_meta_orders
    timezone: Asia/Shanghai
    enhance_online_schema_change: false
    on_duplicate: ignore
    ignore_checking_items: [version]
    target_config:
      host: tidb.db.internal
      port: 4001
      user: dm_writer
      password: ${env:TARGET_PW}
      security:
        ssl_ca_content: CA-T
        ssl_cert_content: CERT-T
        ssl_key_content: ${env:TARGET_KEY}
        cert_allowed_cn: [tidb]
      session: {foreign_key_checks: "0"}
    binlog_filter_rule:
      no-drops: {ignore_event: [drop table, truncate table], ignore_sql: ["^DROP"]}
    table_migrate_rule:
      - source: {source_name: mysql-a, schema: shop, table: "orders_*"}
        target: {schema: shop_all, table: orders}
        binlog_filter_rule: [no-drops]
    source_config:
      full_migrate_conf:
        export_threads: 8
        import_threads: 32
        data_dir: /data/dump
        consistency: none
        import_mode: physical
        sorting_dir: /data/sort
        disk_quota: 100GiB
        checksum: optional
        analyze: "off"
        range_concurrency: 4
        compress-kv-pairs: gzip
        pd_addr: "pd-0:2379"
        security:
          ssl_ca_content: CA-PD
          ssl_cert_content: CERT-PD
          ssl_key_content: ${env:PD_KEY}
          cert_allowed_cn: [pd]
        on_duplicate_logical: ignore
        on_duplicate_physical: manual
      incr_migrate_conf: {repl_threads: 8, repl_batch: 200, safe_mode: true}
      source_conf:
        - {source_name: mysql-a, binlog_name: mysql-bin.000003, binlog_pos: 1234, binlog_gtid: "3ccc475b-2343-11e7-be21-6c0b84d59f30:1-9"}
    stage: stopped
    write_only_version: 2
    renamed_from: orders-old
    lifecycle: {prevent_destroy: true, ignore_changes: [timezone], allow_restart: true}
"#;

const ENV: [(&str, &str); 6] = [
    ("PW_A", "pw-a-secret"),
    ("PW_B", "pw-b-secret"),
    ("KEY_A", "KEY-A"),
    ("TARGET_PW", "target-secret"),
    ("TARGET_KEY", "KEY-T"),
    ("PD_KEY", "KEY-PD"),
];

/// On which generations a field is not read back.
#[derive(Clone, Copy)]
enum On {
    All,
    /// v8.5.x: dropped on read (docs/dm-behaviour.md R9.2).
    V85,
    /// Everything but HEAD: not applied, so not sent (docs/dm-behaviour.md R9.3, §15).
    NotHead,
}

impl On {
    fn applies(self, g: Generation) -> bool {
        match self {
            On::All => true,
            On::V85 => matches!(g, Generation::V853 | Generation::V854),
            On::NotHead => g != Generation::Head,
        }
    }
}

/// Fields (schema paths, `source.` / `task.` prefixed; a path covers what is below it) that do not come back as
/// written, with why. Anything else that does not come back is a bug.
const NOT_READ_BACK: &[(&str, On, &str)] = &[
    ("source.password", On::All, "DM masks it on every read (R3.5); import writes an ${env:} placeholder"),
    ("source.security.ssl_ca_content", On::All, "DM masks TLS contents (R3.5); import writes a placeholder"),
    ("source.security.ssl_cert_content", On::All, "DM masks TLS contents (R3.5); import writes a placeholder"),
    ("source.security.ssl_key_content", On::All, "DM masks TLS contents (R3.5); import writes a placeholder"),
    (
        "source.relay_config.enable_relay",
        On::All,
        "`true` makes DM refuse the create (R3.4); `false` is the default, which import leaves out",
    ),
    ("source.write_only_version", On::All, "dm-apply's own setting, never sent to DM"),
    ("source.lifecycle", On::All, "dm-apply's own setting, never sent to DM"),
    ("task.write_only_version", On::All, "dm-apply's own setting, never sent to DM"),
    ("task.lifecycle", On::All, "dm-apply's own setting, never sent to DM"),
    ("task.renamed_from", On::All, "dm-apply's own setting, never sent to DM"),
    ("task.target_config.password", On::All, "import never writes a secret (R9.10): an ${env:} placeholder"),
    ("task.target_config.security.ssl_key_content", On::All, "import never writes a secret (R9.3): a placeholder"),
    ("task.source_config.full_migrate_conf.security.ssl_key_content", On::All, "a secret (R9.3): a placeholder"),
    (
        "task.source_config.full_migrate_conf.on_duplicate_logical",
        On::All,
        "the same setting as task.on_duplicate, which import writes (R9.4, R9.8)",
    ),
    ("task.source_config.full_migrate_conf.security", On::V85, "not supported before v9.0.0-beta.1 / v26.3 (§15)"),
    ("task.timezone", On::NotHead, "HEAD only (R9.3, §15)"),
    ("task.source_config.incr_migrate_conf.safe_mode", On::NotHead, "HEAD only (R9.3, §15)"),
    ("task.target_config.session", On::NotHead, "HEAD only (R9.3, §15)"),
];

/// Write-only on every generation (docs/dm-behaviour.md R9.4) or dropped by v8.5 (R9.2), from `dm::facts`.
fn not_read_back(path: &str, g: Generation) -> Option<String> {
    let under = |p: &str, pat: &str| p == pat || p.starts_with(&format!("{pat}."));
    for f in facts::TASK_WRITE_ONLY_FULL_FIELDS {
        if under(path, &format!("task.source_config.full_migrate_conf.{f}")) {
            return Some("never returned by DM (R9.4)".into());
        }
    }
    if matches!(g, Generation::V853 | Generation::V854) {
        for f in facts::TASK_FIELDS_DROPPED_BY_V85 {
            if under(path, &format!("task.{f}")) {
                return Some("dropped on read by v8.5 (R9.2)".into());
            }
        }
    }
    NOT_READ_BACK.iter().find(|(p, on, _)| on.applies(g) && under(path, p)).map(|(_, _, why)| why.to_string())
}

// ---------------------------------------------------------------------------------------------------------------
// Field enumeration from the schema generated from the serde types

fn schema() -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas/dm-apply.schema.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Every property path below `node` (`*` for a map's keys; arrays are transparent).
fn schema_paths(defs: &Map<String, Value>, node: &Value, path: &str, depth: usize, out: &mut BTreeSet<String>) {
    assert!(depth < 20, "schema recursion at {path}");
    if let Some(r) = node.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap();
        return schema_paths(defs, &defs[name], path, depth + 1, out);
    }
    for k in ["anyOf", "oneOf", "allOf"] {
        for alt in node.get(k).and_then(Value::as_array).into_iter().flatten() {
            schema_paths(defs, alt, path, depth + 1, out);
        }
    }
    if let Some(items) = node.get("items").filter(|i| i.is_object()) {
        schema_paths(defs, items, path, depth + 1, out);
    }
    if let Some(ap) = node.get("additionalProperties").filter(|a| a.is_object()) {
        let p = format!("{path}.*");
        out.insert(p.clone());
        schema_paths(defs, ap, &p, depth + 1, out);
    }
    for (k, v) in node.get("properties").and_then(Value::as_object).into_iter().flatten() {
        let p = format!("{path}.{k}");
        out.insert(p.clone());
        schema_paths(defs, v, &p, depth + 1, out);
    }
}

fn all_schema_paths() -> BTreeSet<String> {
    let s = schema();
    let defs = s["definitions"].as_object().unwrap();
    let mut out = BTreeSet::new();
    schema_paths(defs, &defs["SourceSpec"], "source", 0, &mut out);
    schema_paths(defs, &defs["TaskSpec"], "task", 0, &mut out);
    out
}

/// Schema paths a value sets (map keys as `*` where the schema has a map).
fn value_paths(v: &Value, path: &str, schema: &BTreeSet<String>, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            let is_map = schema.contains(&format!("{path}.*"));
            for (k, x) in m {
                let p = if is_map { format!("{path}.*") } else { format!("{path}.{k}") };
                out.insert(p.clone());
                value_paths(x, &p, schema, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| value_paths(x, path, schema, out)),
        _ => {}
    }
}

fn load_fixture() -> Desired {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dm.yaml");
    std::fs::write(&file, FIXTURE).unwrap();
    let env: BTreeMap<&str, &str> = ENV.into_iter().collect();
    let a = config::analyze_with_env(&[file], &|n| env.get(n).map(|v| v.to_string()));
    let errors: Vec<String> = a.errors.iter().map(|e| config::render_plain(e)).collect();
    assert!(errors.is_empty(), "fixture does not validate:\n{}", errors.join("\n"));
    a.desired
}

fn fixture_json(d: &Desired) -> (Vec<Value>, Vec<Value>) {
    let sources = d.sources.values().map(|(s, _)| serde_json::to_value(s).unwrap()).collect();
    let tasks = d.tasks.values().map(|(t, _)| serde_json::to_value(t).unwrap()).collect();
    (sources, tasks)
}

#[test]
fn fixture_sets_every_field() {
    let schema = all_schema_paths();
    assert!(schema.contains("task.source_config.full_migrate_conf.pd_addr"), "schema walk found too little");
    let (sources, tasks) = fixture_json(&load_fixture());
    let mut set = BTreeSet::new();
    sources.iter().for_each(|s| value_paths(s, "source", &schema, &mut set));
    tasks.iter().for_each(|t| value_paths(t, "task", &schema, &mut set));
    let missing: Vec<&String> = schema.difference(&set).collect();
    assert!(
        missing.is_empty(),
        "the field-coverage fixture does not set these fields (set them to a non-default value in FIXTURE, see \
         docs/adding-a-field.md): {missing:?}"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Round trip

/// A spec as `(schema path, key) → leaf`: list items are keyed by their identity, binlog filters are resolved
/// into the table rules that use them (DM renames them, R9.6: only the contents, in order, are the same).
fn leaves(kind: &str, v: &Value) -> BTreeMap<String, (String, Value)> {
    let mut v = v.clone();
    if kind == "task" {
        let defs = v.get("binlog_filter_rule").cloned().unwrap_or(Value::Null);
        if let Some(obj) = v.as_object_mut() {
            obj.remove("binlog_filter_rule");
        }
        for r in v.get_mut("table_migrate_rule").and_then(Value::as_array_mut).into_iter().flatten() {
            if let Some(names) = r.get("binlog_filter_rule").and_then(Value::as_array).cloned() {
                let contents: Vec<Value> =
                    names.iter().map(|n| defs.get(n.as_str().unwrap_or("")).cloned().unwrap_or(Value::Null)).collect();
                r["binlog_filter_rule"] = Value::Array(contents);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&v, kind, kind, &mut out);
    out
}

fn identity(path: &str, item: &Value) -> Option<String> {
    let s = |p: &str| item.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
    match path {
        "task.table_migrate_rule" => {
            Some(format!("{}:{}.{}", s("/source/source_name"), s("/source/schema"), s("/source/table")))
        }
        "task.source_config.source_conf" => Some(s("/source_name")),
        _ => None,
    }
}

fn walk(v: &Value, path: &str, key: &str, out: &mut BTreeMap<String, (String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                walk(x, &format!("{path}.{k}"), &format!("{key}.{k}"), out);
            }
        }
        Value::Array(a) if a.iter().all(Value::is_object) && !a.is_empty() && identity(path, &a[0]).is_some() => {
            for x in a {
                let id = identity(path, x).unwrap_or_default();
                walk(x, path, &format!("{key}[{id}]"), out);
            }
        }
        _ => {
            out.insert(key.to_string(), (path.to_string(), v.clone()));
        }
    }
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dm-apply"));
    c.env_remove("NO_COLOR").env("RUST_LOG", "error");
    for (k, v) in ENV {
        c.env(k, v);
    }
    c
}

async fn round_trip(generation: Generation) -> Vec<String> {
    let d = load_fixture();
    let opts = SimOptions { generation, stage_delay: std::time::Duration::from_millis(5), ..SimOptions::default() };
    let sim = SimServer::start(opts).await.unwrap();
    let url = sim.url();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dm.yaml");
    std::fs::write(&file, FIXTURE).unwrap();
    let (f, u) = (file.display().to_string(), url.clone());
    let out = tokio::task::spawn_blocking(move || {
        bin().args(["apply", "-f", &f, "--addr", &u, "--auto-approve"]).output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "apply on {generation:?}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let client = DmClient::new(&ClientOptions::new(url.clone())).unwrap();
    let l = live::fetch(&client).await.unwrap();
    let imp = import::import(&l, &ImportOptions::default()).unwrap();
    sim.shutdown().await;

    let (want_sources, want_tasks) = fixture_json(&d);
    let got_sources: Vec<Value> = imp.config.sources.iter().map(|s| serde_json::to_value(s).unwrap()).collect();
    let got_tasks: Vec<Value> = imp.config.tasks.iter().map(|t| serde_json::to_value(t).unwrap()).collect();
    let by = |v: &[Value], k: &str| -> BTreeMap<String, Value> {
        v.iter().map(|x| (x[k].as_str().unwrap_or("").to_string(), x.clone())).collect()
    };
    let mut lost = vec![];
    for (kind, want, got) in [
        ("source", by(&want_sources, "source_name"), by(&got_sources, "source_name")),
        ("task", by(&want_tasks, "name"), by(&got_tasks, "name")),
    ] {
        assert_eq!(want.keys().collect::<Vec<_>>(), got.keys().collect::<Vec<_>>(), "{kind}s on {generation:?}");
        for (name, w) in &want {
            let gl = leaves(kind, &got[name]);
            for (key, (path, value)) in leaves(kind, w) {
                let back = gl.get(&key).map(|(_, v)| v);
                if back == Some(&value) {
                    continue;
                }
                // A secret that is not read back is written as a variable, never as the value.
                let secret = path.ends_with("password") || path.ends_with("ssl_key_content");
                if let (true, Some(b)) = (secret, back) {
                    let text = b.as_str().unwrap_or_default();
                    assert!(text.starts_with("${env:") && text != value, "{name}: {key} on {generation:?}: {b}");
                }
                if not_read_back(&path, generation).is_none() {
                    lost.push(format!("{name}: {key}: wrote {value}, import gave {}", back.unwrap_or(&Value::Null)));
                }
            }
        }
    }
    // `on_duplicate_logical` is exempt because `task.on_duplicate` carries it: that one must come back.
    let t = &got_tasks[0];
    assert_eq!(t["on_duplicate"], "ignore", "on {generation:?}");
    lost
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_round_trips_through_dm_and_import() {
    let mut lost = vec![];
    for g in Generation::ALL {
        lost.extend(round_trip(g).await.into_iter().map(|l| format!("{g:?}: {l}")));
    }
    assert!(
        lost.is_empty(),
        "fields that did not come back (fix, or list in NOT_READ_BACK with the rule):\n{}",
        lost.join("\n")
    );
}
