//! The fuzz target's property on stable Rust: structured-random YAML (nested mappings and lists built from
//! dm-apply's real keys, anchors and aliases, merge keys, odd scalars, `${env:..}` references, invalid UTF-8
//! sequences) goes through the public in-memory loader and every diagnostic is rendered; nothing may panic and
//! every position must lie inside the file. The long runs are done with cargo-fuzz (docs/fuzzing.md); this keeps
//! a few seconds of it in every `cargo test`.

use dm_apply::config::{LoadError, analyze_source, render_plain};
use proptest::prelude::*;

const KEYS: &[&str] = &[
    "source_name",
    "host",
    "port",
    "user",
    "password",
    "enable_gtid",
    "enable",
    "flavor",
    "security",
    "ssl_ca_content",
    "ssl_cert_content",
    "ssl_key_content",
    "cert_allowed_cn",
    "purge",
    "interval",
    "expires",
    "remain_space",
    "relay_config",
    "enable_relay",
    "relay_binlog_name",
    "relay_binlog_gtid",
    "relay_dir",
    "lifecycle",
    "prevent_destroy",
    "ignore_changes",
    "name",
    "task_mode",
    "shard_mode",
    "strict_optimistic_shard_mode",
    "meta_schema",
    "timezone",
    "enhance_online_schema_change",
    "on_duplicate",
    "ignore_checking_items",
    "target_config",
    "session",
    "foreign_key_checks",
    "binlog_filter_rule",
    "ignore_event",
    "ignore_sql",
    "table_migrate_rule",
    "source",
    "target",
    "schema",
    "table",
    "source_config",
    "full_migrate_conf",
    "incr_migrate_conf",
    "source_conf",
    "binlog_name",
    "binlog_pos",
    "binlog_gtid",
    "repl_threads",
    "repl_batch",
    "safe_mode",
    "stage",
    "export_threads",
    "import_mode",
    "compress-kv-pairs",
    "on_duplicate_physical",
    "<<",
    "pasword",
    "\"quoted key\"",
    "'p/a~th'",
    "? complex",
    "1",
    "null",
    "true",
];
const SCALARS: &[&str] = &[
    "3306",
    "0",
    "-1",
    "65536",
    "18446744073709551616",
    "1e400",
    "3306.0",
    "-.inf",
    ".nan",
    "~",
    "null",
    "",
    "true",
    "yes",
    "0x1F",
    "0o17",
    "''",
    "\"\"",
    "\"\\u00e9\\t\\0\"",
    "\"\\uD800\"",
    "${env:DM_SOURCE_PASSWORD}",
    "${env:}",
    "${env:A}${env:BB}",
    "$${env:X}",
    "\"${\"",
    "\"${env:A\"",
    "all dml",
    "drop table",
    "optimistic",
    "pessimistic",
    "running",
    "stopped",
    "incremental",
    "all",
    "mysql",
    "mariadb",
    "UTC",
    "SYSTEM",
    "replace",
    "!!str 5",
    "!!binary aGVsbG8=",
    "!!int x",
    "!!float",
    "!custom v",
    "\"é😀\u{2028}\"",
    "'a''b'",
    "mysql-bin.000001",
    "\"x:1-2\"",
    "\"*\"",
    "\"?\"",
    "\"source_config.source_conf[0].binlog_pos\"",
    "\"target_config.session[k]\"",
    "a-b",
    "ext-1",
    "\"0\"",
];

/// A YAML node before it is written out.
#[derive(Debug, Clone)]
enum Y {
    Scalar(String),
    Alias(u8),
    Map(Vec<(String, Y)>, bool),
    List(Vec<Y>, bool),
    /// `&aN` before the node.
    Anchored(u8, Box<Y>),
}

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(SCALARS).prop_map(str::to_owned),
        1 => "[a-z_*?${}:.-]{0,10}".prop_map(|s| format!("'{s}'")),
        1 => "\\PC{0,6}".prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![8 => proptest::sample::select(KEYS).prop_map(str::to_owned), 1 => "[a-z_]{1,8}"]
}

fn node() -> impl Strategy<Value = Y> {
    let leaf = prop_oneof![12 => scalar().prop_map(Y::Scalar), 1 => (0u8..4).prop_map(Y::Alias)];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            3 => (proptest::collection::vec((key(), inner.clone()), 0..6), any::<bool>()).prop_map(|(m, f)| Y::Map(m, f)),
            2 => (proptest::collection::vec(inner.clone(), 0..4), any::<bool>()).prop_map(|(l, f)| Y::List(l, f)),
            1 => ((0u8..4), inner).prop_map(|(n, y)| Y::Anchored(n, Box::new(y))),
        ]
    })
}

fn s(v: &str) -> Y {
    Y::Scalar(v.to_owned())
}

fn m(entries: &[(&str, Y)]) -> Y {
    Y::Map(entries.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(), false)
}

/// A valid resource, then mutated: each field kept, replaced by a random node, or dropped, plus random fields,
/// so that most inputs get past the schema into interpolation, typed deserialization and the semantic checks.
fn resource(template: Y) -> impl Strategy<Value = Y> {
    let Y::Map(fields, _) = template else { unreachable!() };
    let n = fields.len();
    (proptest::collection::vec((0u8..16, node()), n), proptest::collection::vec((key(), node()), 0..2), any::<bool>())
        .prop_map(move |(choices, extra, flow)| {
            let mut out = Vec::new();
            for ((k, v), (c, random)) in fields.iter().zip(choices) {
                match c {
                    0 => {}
                    1 => out.push((k.clone(), random)),
                    _ => out.push((k.clone(), v.clone())),
                }
            }
            out.extend(extra);
            Y::Map(out, flow)
        })
}

fn source_template(i: u8) -> Y {
    m(&[
        ("source_name", s(&format!("s{i}"))),
        ("host", s("db.internal")),
        ("port", s("3306")),
        ("user", s("dm")),
        ("password", s("${env:DM_SOURCE_PASSWORD}")),
        ("enable_gtid", s("true")),
        ("security", m(&[("ssl_ca_content", s("ca")), ("ssl_cert_content", s("c")), ("ssl_key_content", s("k"))])),
        ("relay_config", m(&[("enable_relay", s("true"))])),
        ("lifecycle", m(&[("prevent_destroy", s("true"))])),
    ])
}

fn task_template(i: u8) -> Y {
    let rule = m(&[
        ("source", m(&[("source_name", s("s1")), ("schema", s("db_*")), ("table", s("'t?'"))])),
        ("target", m(&[("schema", s("x"))])),
        ("binlog_filter_rule", Y::List(vec![s("r")], true)),
    ]);
    m(&[
        ("name", s(&format!("t{i}"))),
        ("task_mode", s("all")),
        ("shard_mode", s("optimistic")),
        ("timezone", s("UTC")),
        (
            "target_config",
            m(&[("host", s("tidb")), ("port", s("4000")), ("user", s("root")), ("password", s("${env:P}"))]),
        ),
        ("binlog_filter_rule", m(&[("r", m(&[("ignore_event", Y::List(vec![s("drop table")], true))]))])),
        ("table_migrate_rule", Y::List(vec![rule], false)),
        (
            "source_config",
            m(&[(
                "source_conf",
                Y::List(
                    vec![m(&[
                        ("source_name", s("s0")),
                        ("binlog_name", s("mysql-bin.000001")),
                        ("binlog_pos", s("4")),
                    ])],
                    false,
                ),
            )]),
        ),
        ("stage", s("running")),
        ("lifecycle", m(&[("ignore_changes", Y::List(vec![s("source_config.incr_migrate_conf.repl_threads")], true))])),
    ])
}

/// A document shaped like a configuration: top-level keys holding lists of (mutated) resources.
fn document() -> impl Strategy<Value = Y> {
    let sources = proptest::collection::vec((0u8..3).prop_flat_map(|i| resource(source_template(i))), 0..4);
    let tasks = proptest::collection::vec((0u8..2).prop_flat_map(|i| resource(task_template(i))), 0..3);
    let external =
        proptest::collection::vec(prop_oneof![Just(s("s1")), Just(s("ext")), scalar().prop_map(Y::Scalar)], 0..3);
    (sources, tasks, external, proptest::option::weighted(0.2, (key(), node())), any::<bool>()).prop_map(
        |(sources, tasks, external, extra, flow)| {
            let mut top = vec![
                ("sources".to_owned(), Y::List(sources, false)),
                ("tasks".to_owned(), Y::List(tasks, false)),
                ("external_sources".to_owned(), Y::List(external, flow)),
            ];
            // Rarely a stray top-level key (an unknown key, or an `x-` extension).
            top.extend(extra);
            Y::Map(top, false)
        },
    )
}

/// Write `y` as YAML: block style (indented) unless the node asked for flow style or sits inside a flow node.
fn write(y: &Y, indent: usize, flow: bool, anchors: &mut u8, out: &mut String) {
    let pad = " ".repeat(indent);
    match y {
        // `{` and `}` end a plain scalar inside a flow collection: quote references there.
        Y::Scalar(s) if flow && s.starts_with('$') => out.push_str(&format!("{s:?}")),
        Y::Scalar(s) => out.push_str(s),
        // Mostly aliases to anchors already written (an unknown anchor only tests one parser error).
        Y::Alias(n) if *anchors & (1 << n) != 0 || *n == 3 => out.push_str(&format!("*a{n}")),
        Y::Alias(_) => out.push_str("aliased"),
        Y::Anchored(n, inner) => {
            out.push_str(&format!("&a{n} "));
            *anchors |= 1 << n;
            write(inner, indent, flow, anchors, out);
        }
        Y::Map(entries, f) if flow || *f || entries.is_empty() => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push_str(": ");
                write(v, indent, true, anchors, out);
            }
            out.push('}');
        }
        Y::List(items, f) if flow || *f || items.is_empty() => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(v, indent, true, anchors, out);
            }
            out.push(']');
        }
        Y::Map(entries, _) => {
            out.push('\n');
            for (k, v) in entries {
                out.push_str(&format!("{pad}{k}: "));
                write(v, indent + 2, false, anchors, out);
                out.push('\n');
            }
        }
        Y::List(items, _) => {
            out.push('\n');
            for v in items {
                out.push_str(&format!("{pad}- "));
                write(v, indent + 2, false, anchors, out);
                out.push('\n');
            }
        }
    }
}

/// Invalid UTF-8 sequences: a lone continuation byte, truncated 2- and 3-byte sequences, an encoded surrogate,
/// an overlong encoding, a byte that never occurs.
const BAD_UTF8: &[&[u8]] = &[b"\x80", b"\xc3", b"\xe2\x80", b"\xed\xa0\x80", b"\xc0\xaf", b"\xff"];

fn check(bytes: &[u8]) {
    let env = |name: &str| match name.len() % 3 {
        0 => None,
        1 => Some(format!("v-{name}")),
        _ => Some(": {x: [\n${env:Y}".to_owned()),
    };
    let a = analyze_source("props.yaml", bytes, &env);
    let lines = bytes.split(|b| *b == b'\n').count();
    for p in a.errors.iter().chain(a.warnings.iter()) {
        assert!(p.line <= lines + 1, "line {} beyond the file ({lines} lines): {}", p.line, p.message);
        let _ = p.location();
        let plain = render_plain(p);
        assert!(!plain.chars().any(|c| c.is_control() && c != '\n' && c != '\t'), "control character in {plain:?}");
        let _ = format!("{:?}", miette::Report::new(p.clone()));
    }
    if !a.errors.is_empty() {
        let _ = render_plain(&LoadError { errors: a.errors.clone(), warnings: a.warnings.clone() });
    }
}

proptest! {
    // Bounded: a few seconds in a debug build on a 2-core CI machine; PROPTEST_CASES=N runs longer.
    #![proptest_config(ProptestConfig {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() { ProptestConfig::default().cases } else { 128 },
        max_shrink_iters: 2000,
        .. ProptestConfig::default()
    })]

    #[test]
    fn structured_yaml_never_panics(doc in document(), bad in proptest::option::weighted(0.2, (any::<prop::sample::Index>(), proptest::sample::select(BAD_UTF8)))) {
        let mut text = String::new();
        write(&doc, 0, false, &mut 0, &mut text);
        let mut bytes = text.into_bytes();
        if let Some((at, seq)) = bad {
            let at = at.index(bytes.len() + 1);
            bytes.splice(at..at, seq.iter().copied());
        }
        check(&bytes);
    }
}
