//! Property test: `convert` never panics, whatever shape a dmctl-looking file has, and every warning points into
//! the file. Keys are drawn from dmctl's vocabulary so that the converter's paths are actually reached.

use dm_apply::convert;
use proptest::prelude::*;
use serde_json::{Map, Value};

const KEYS: &[&str] = &[
    "name",
    "task-mode",
    "source-id",
    "from",
    "host",
    "port",
    "user",
    "password",
    "target-database",
    "mysql-instances",
    "meta",
    "binlog-name",
    "binlog-pos",
    "routes",
    "filters",
    "block-allow-list",
    "route-rules",
    "filter-rules",
    "do-dbs",
    "do-tables",
    "db-name",
    "tbl-name",
    "schema-pattern",
    "table-pattern",
    "target-schema",
    "action",
    "events",
    "mydumpers",
    "loaders",
    "syncers",
    "mydumper-config-name",
    "loader",
    "syncer-thread",
    "extra-args",
    "security",
    "ssl-ca",
    "ssl-key",
    "purge",
    "session",
    "foreign_key_checks",
    "shard-mode",
    "is-sharding",
    "online-ddl",
    "ignore-dbs",
    "a",
    "b",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-5i64..70000).prop_map(|n| Value::Number(n.into())),
        prop::sample::select(vec!["", "all", "Ignore", "Do", "a", "*", "--consistency", "x ${y}", "4000", "gh-ost"])
            .prop_map(|s| Value::String(s.to_owned())),
        prop::sample::select(KEYS.to_vec()).prop_map(|s| Value::String(s.to_owned())),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS.to_vec()), inner), 0..6).prop_map(|kv| {
                let mut m = Map::new();
                for (k, v) in kv {
                    m.insert(k.to_owned(), v);
                }
                Value::Object(m)
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
    #[test]
    fn convert_never_panics(root in prop::collection::vec((prop::sample::select(KEYS.to_vec()), value()), 1..8)) {
        let mut m = Map::new();
        for (k, v) in root {
            m.insert(k.to_owned(), v);
        }
        let text = serde_saphyr::to_string(&Value::Object(m)).unwrap();
        let lines = text.lines().count().max(1);
        let input = convert::Input { name: "p.yaml".into(), text, base_dir: "/nonexistent".into(), optional: false };
        if let Ok(conv) = convert::convert(&[input]) {
            for w in &conv.warnings {
                prop_assert!(w.line >= 1 && w.line <= lines + 1, "{w}");
            }
            let _ = convert::render(&conv, "s.json");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
    /// A valid skeleton with random instance settings and random named blocks: the deep paths run.
    #[test]
    fn convert_never_panics_on_valid_skeletons(
        inst in prop::collection::vec((prop::sample::select(KEYS.to_vec()), value()), 0..6),
        blocks in prop::collection::vec((prop::sample::select(vec!["routes", "filters", "block-allow-list", "mydumpers", "loaders", "syncers"]), prop::collection::vec((prop::sample::select(KEYS.to_vec()), value()), 0..4)), 0..4),
        refs in prop::collection::vec(prop::sample::select(KEYS.to_vec()), 0..3),
    ) {
        let mut instance = Map::new();
        instance.insert("source-id".into(), Value::String("s".into()));
        for (k, v) in inst {
            if k != "source-id" {
                instance.insert(k.to_owned(), v);
            }
        }
        let refs: Vec<Value> = refs.into_iter().map(|r| Value::String(r.to_owned())).collect();
        instance.insert("route-rules".into(), Value::Array(refs.clone()));
        instance.insert("filter-rules".into(), Value::Array(refs.clone()));
        if let Some(Value::String(r)) = refs.first() {
            instance.insert("block-allow-list".into(), Value::String(r.clone()));
            instance.insert("loader-config-name".into(), Value::String(r.clone()));
        }
        let mut root = serde_json::json!({
            "name": "t", "task-mode": "incremental",
            "target-database": {"host": "h", "port": 4000, "user": "u", "password": "p"},
            "mysql-instances": [Value::Object(instance)],
        });
        for (block, entries) in blocks {
            let mut named = Map::new();
            for (k, v) in entries {
                named.insert(k.to_owned(), v);
            }
            root[block] = Value::Object(named);
        }
        let text = serde_saphyr::to_string(&root).unwrap();
        let input = convert::Input { name: "p.yaml".into(), text, base_dir: "/nonexistent".into(), optional: false };
        if let Ok(conv) = convert::convert(&[input]) {
            prop_assert!(!convert::render(&conv, "s.json").contains(": p\n"), "the password was copied");
        }
    }
}
