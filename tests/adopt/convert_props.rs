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

/// A valid skeleton with random instance settings and random named blocks: the deep paths run. Counts the
/// conversions that succeed, so that the property is not only ever checked on errors.
#[test]
fn convert_never_panics_on_valid_skeletons() {
    let converted = Cell::new(0usize);
    let mut runner = TestRunner::new(Config { cases: 300, ..Config::default() });
    let strategy = (
        prop::collection::vec((prop::sample::select(KEYS.to_vec()), value()), 0..6),
        prop::collection::vec(
            (
                prop::sample::select(vec!["routes", "filters", "block-allow-list", "mydumpers", "loaders", "syncers"]),
                prop::collection::vec((prop::sample::select(KEYS.to_vec()), value()), 0..4),
            ),
            0..4,
        ),
        prop::collection::vec(prop::sample::select(KEYS.to_vec()), 0..3),
    );
    runner
        .run(&strategy, |(inst, blocks, refs)| {
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
            let input =
                convert::Input { name: "p.yaml".into(), text, base_dir: "/nonexistent".into(), optional: false };
            if let Ok(conv) = convert::convert(&[input]) {
                converted.set(converted.get() + 1);
                prop_assert!(!convert::render(&conv, "s.json").contains(": p\n"), "the password was copied");
            }
            Ok(())
        })
        .unwrap();
    assert!(
        converted.get() >= 30,
        "only {} of 300 skeletons converted: the success path was barely checked",
        converted.get()
    );
}

use std::cell::Cell;

use proptest::test_runner::{Config, TestRunner};

const SCHEMAS: &[&str] = &[
    "orders",
    "Orders",
    "orders*",
    "order?_1",
    "shop",
    "*",
    "test_*",
    "~^test",
    "~^orders_[0-9]",
    "t*",
    "[o-s]*",
    "~^(shop|orders)$",
    "~s",
];
const TABLES: &[&str] = &["t1", "T1", "t*", "t_?", "*", "items", "~^t[0-9]", "~^log_", "~^t[0-9]+$"];
const FILTER_SCHEMAS: &[&str] = &["orders", "*", "test_*", "t*", "shop", "Orders", "orders_?"];
const FILTER_TABLES: &[&str] = &["", "t1", "t*", "*", "items", "T1"];
const EVENTS: &[&str] = &["insert", "drop table", "truncate table", "all dml", "create database"];
/// Names to test: cases, prefixes and lengths around the patterns above (ASCII: see docs/adoption.md for the one
/// non-ASCII letter the proofs leave aside for routes).
const NAMES_S: &[&str] = &["orders", "Orders", "orders_1", "order_1", "shop", "test_a", "TEST_b", "testx", "t9", "x"];
const NAMES_T: &[&str] = &["t1", "T1", "t_2", "t10", "items", "log_x", "x"];

/// do-dbs, do-tables, ignore-dbs, ignore-tables.
type Lists =
    (Vec<&'static str>, Vec<(&'static str, &'static str)>, Vec<&'static str>, Vec<(&'static str, &'static str)>);

#[derive(Debug, Clone)]
struct Case {
    sensitive: bool,
    allow: Option<Lists>,
    filters: Vec<(&'static str, &'static str, Vec<&'static str>)>,
    routes: Vec<(&'static str, &'static str, u8)>,
}

fn case() -> impl Strategy<Value = Case> {
    let s = || prop::sample::select(SCHEMAS.to_vec());
    let t = || prop::sample::select(TABLES.to_vec());
    let allow = prop::option::weighted(
        0.85,
        (
            prop::collection::vec(s(), 0..3),
            prop::collection::vec((s(), t()), 0..3),
            prop::collection::vec(s(), 0..2),
            prop::collection::vec((s(), t()), 0..2),
        ),
    );
    let filters = prop::collection::vec(
        (
            prop::sample::select(FILTER_SCHEMAS.to_vec()),
            prop::sample::select(FILTER_TABLES.to_vec()),
            prop::sample::subsequence(EVENTS.to_vec(), 1..3),
        ),
        0..3,
    );
    let routes =
        prop::collection::vec((s(), prop::sample::select(["", "t*", "t1", "~^t[0-9]", "*"].to_vec()), 0u8..3), 0..3);
    (any::<bool>(), allow, filters, routes).prop_map(|(sensitive, allow, filters, routes)| Case {
        sensitive,
        allow,
        filters,
        routes,
    })
}

fn dmctl_task(c: &Case) -> Value {
    let mut inst = serde_json::json!({"source-id": "s1"});
    let mut task = serde_json::json!({
        "name": "t", "task-mode": "incremental", "case-sensitive": c.sensitive,
        "target-database": {"host": "h", "port": 4000, "user": "u"},
    });
    if let Some((dbs, tables, idbs, itables)) = &c.allow {
        let tbl = |v: &[(&str, &str)]| {
            v.iter().map(|(s, t)| serde_json::json!({"db-name": s, "tbl-name": t})).collect::<Vec<_>>()
        };
        task["block-allow-list"] = serde_json::json!({"ba": {
            "do-dbs": dbs, "do-tables": tbl(tables), "ignore-dbs": idbs, "ignore-tables": tbl(itables),
        }});
        inst["block-allow-list"] = "ba".into();
    }
    let mut filters = Map::new();
    for (i, (s, t, ev)) in c.filters.iter().enumerate() {
        filters.insert(
            format!("f{i}"),
            serde_json::json!({"schema-pattern": s, "table-pattern": t, "events": ev, "action": "Ignore"}),
        );
    }
    inst["filter-rules"] = Value::Array(filters.keys().map(|k| Value::String(k.clone())).collect());
    task["filters"] = Value::Object(filters);
    let mut routes = Map::new();
    for (i, (s, t, target)) in c.routes.iter().enumerate() {
        let mut r = serde_json::json!({"schema-pattern": s, "table-pattern": t});
        match target {
            0 => r["target-schema"] = "dst".into(),
            1 => {
                r["target-schema"] = "dst".into();
                r["target-table"] = "merged".into();
            }
            _ => r["target-table"] = "t_all".into(),
        }
        routes.insert(format!("r{i}"), r);
    }
    inst["route-rules"] = Value::Array(routes.keys().map(|k| Value::String(k.clone())).collect());
    task["routes"] = Value::Object(routes);
    task["mysql-instances"] = Value::Array(vec![inst]);
    task
}

/// For generated allow/deny lists, filters and routes, whenever convert succeeds, the converted task replicates
/// exactly what DM would for the dmctl task (same tables, same ignored events, same routes) over a set of names
/// around the patterns; never more. The reference model is tests/convert_ref/mod.rs.
#[test]
fn converted_rules_replicate_exactly_what_dmctl_does() {
    let converted = Cell::new(0u32);
    let refused = Cell::new(0u32);
    let mut runner = TestRunner::new(Config { cases: 400, ..Config::default() });
    let names_s: Vec<String> = NAMES_S.iter().map(|s| s.to_string()).collect();
    let names_t: Vec<String> = NAMES_T.iter().map(|s| s.to_string()).collect();
    runner
        .run(&case(), |c| {
            let task = dmctl_task(&c);
            let input = convert::Input {
                name: "t.yaml".into(),
                text: serde_saphyr::to_string(&task).unwrap(),
                base_dir: ".".into(),
                optional: false,
            };
            let conv = match convert::convert(&[input]) {
                Ok(conv) => conv,
                Err(convert::ConvertError::CannotCarry { .. }) => {
                    refused.set(refused.get() + 1);
                    return Ok(());
                }
                Err(e) => return Err(proptest::test_runner::TestCaseError::fail(format!("{e:?}"))),
            };
            converted.set(converted.get() + 1);
            let known = |e: &str| dm_apply::config::BINLOG_EVENTS.contains(&e);
            let dmctl = crate::convert_ref::dmctl_instance(&task, "s1", None, &known);
            let out = crate::convert_ref::openapi_instance(&conv.config.tasks[0], "s1");
            let d = crate::convert_ref::compare(&dmctl, &out, &names_s, &names_t, !c.sensitive);
            prop_assert!(d.wider.is_empty(), "WIDER: {:?}\n{:#?}\n{}", d.wider, c, convert::to_yaml(&conv.config));
            prop_assert!(
                d.narrower.is_empty(),
                "narrower: {:?}\n{:#?}\n{}",
                d.narrower,
                c,
                convert::to_yaml(&conv.config)
            );
            prop_assert!(d.routed.is_empty(), "routes: {:?}\n{:#?}\n{}", d.routed, c, convert::to_yaml(&conv.config));
            Ok(())
        })
        .unwrap();
    eprintln!("{} converted, {} refused", converted.get(), refused.get());
    // Not vacuous: a good share of the cases convert.
    assert!(converted.get() >= 100, "only {} of {} cases converted", converted.get(), converted.get() + refused.get());
}
