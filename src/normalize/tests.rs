use super::*;
use crate::config::SecuritySpec;
use crate::dm::ServerVersion;
use crate::plan::testing::{desired_from_yaml, readback_source, readback_task};
use serde_json::json;

const Y: &str = r#"
sources:
  - {source_name: s1, host: h, port: 3306, user: u, password: pw}
tasks:
  - name: t
    task_mode: all
    timezone: UTC
    on_duplicate: ignore
    target_config: {host: tidb, port: 4000, user: root, password: tpw, session: {foreign_key_checks: "0"}}
    binlog_filter_rule:
      fa: {ignore_event: [drop table]}
      fb: {ignore_sql: ["^DROP"]}
    table_migrate_rule:
      - source: {source_name: s1, schema: Shop, table: "T_*"}
        target: {schema: d, table: ""}
        binlog_filter_rule: [fa, fb]
      - source: {source_name: ghost, schema: x}
    source_config:
      incr_migrate_conf: {safe_mode: true}
      source_conf: [{source_name: s1}]
"#;

fn head() -> ServerVersion {
    ServerVersion::parse("v26.4.0-alpha")
}
fn old() -> ServerVersion {
    ServerVersion::parse("v8.5.3")
}

#[test]
fn wire_is_explicit_and_version_aware() {
    let d = desired_from_yaml("x", Y).unwrap();
    let (spec, _) = &d.tasks["t"];
    let w = task_to_wire(spec, &head());
    assert_eq!(w.meta_schema.as_deref(), Some("dm_meta"));
    assert!(w.enhance_online_schema_change);
    assert_eq!(w.on_duplicate, "ignore");
    let f = w.source_config.full_migrate_conf.as_ref().unwrap();
    assert_eq!(f.on_duplicate_logical.as_deref(), Some("ignore"));
    assert_eq!(w.timezone.as_deref(), Some("UTC"));
    assert!(w.target_config.session.is_some());
    assert_eq!(w.source_config.incr_migrate_conf.as_ref().unwrap().safe_mode, Some(true));
    let w = task_to_wire(spec, &old());
    assert!(w.timezone.is_none() && w.target_config.session.is_none());
    assert_eq!(w.source_config.incr_migrate_conf.as_ref().unwrap().safe_mode, None);
    assert_eq!(unsupported_fields(spec, &old()).len(), 3);
    let mut with_sec = spec.clone();
    with_sec.source_config.full_migrate_conf = Some(crate::config::FullMigrateConfSpec {
        security: Some(SecuritySpec { ssl_ca_content: "ca".into(), ..Default::default() }),
        ..Default::default()
    });
    assert!(unsupported_fields(&with_sec, &old()).contains(&"source_config.full_migrate_conf.security"));
    let w = task_to_wire(&with_sec, &old());
    assert!(w.source_config.full_migrate_conf.as_ref().unwrap().security.is_none());
    assert!(unsupported_fields(spec, &head()).is_empty());
    let s = source_to_wire(&d.sources["s1"].0, &old());
    assert!(s.enable && !s.enable_gtid);
}

#[test]
fn task_readback_compares_equal() {
    let d = desired_from_yaml("x", Y).unwrap();
    let (spec, _) = &d.tasks["t"];
    // The test read-back lowercases patterns, as DM does for a case-insensitive upstream.
    let folded = std::collections::BTreeSet::from(["s1".to_string()]);
    let opts = CmpOpts { fold_case: Some(&folded), without_positions: false };
    for v in [head(), old()] {
        let w = task_to_wire(spec, &v);
        let want = task_cmp_with(&w, Side::Desired, Some(spec), &v, &opts);
        for r in 0..3 {
            let back = readback_task(&w, &v, r);
            let got = task_cmp_with(&back, Side::Live, Some(spec), &v, &opts);
            assert_eq!(want, got);
        }
    }
}

#[test]
fn rules_are_sets_folded_per_source_and_ghost_sources_dropped() {
    let d = desired_from_yaml("x", Y).unwrap();
    let (spec, _) = &d.tasks["t"];
    let w = task_to_wire(spec, &head());
    let c = task_comparable(&w, Side::Desired, Some(spec), &head());
    let rules = c["table_migrate_rule"].as_object().unwrap();
    assert_eq!(rules.keys().collect::<Vec<_>>(), ["s1:Shop.T_*"]);
    // target.table "" reads as absent.
    assert_eq!(rules["s1:Shop.T_*"], json!({"target": {"schema": "d"}}));
    // A case-insensitive upstream: DM lowercases the patterns, so they compare folded.
    let folded = std::collections::BTreeSet::from(["s1".to_string()]);
    let opts = CmpOpts { fold_case: Some(&folded), without_positions: true };
    let c = task_cmp_with(&w, Side::Desired, Some(spec), &head(), &opts).to_value();
    assert_eq!(c["table_migrate_rule"].as_object().unwrap().keys().collect::<Vec<_>>(), ["s1:shop.t_*"]);
}

#[test]
fn positions_can_be_left_out() {
    let d = desired_from_yaml("x", Y).unwrap();
    let (spec, _) = &d.tasks["t"];
    let mut w = task_to_wire(spec, &old());
    w.source_config.source_conf[0].binlog_name = Some("mysql-bin.000002".into());
    w.source_config.source_conf[0].binlog_pos = Some(4);
    let with = task_cmp(&w, Side::Desired, Some(spec), &old()).to_value();
    assert_eq!(with["source_config"]["source_conf"]["s1"]["binlog_name"], "mysql-bin.000002");
    let opts = CmpOpts { without_positions: true, fold_case: None };
    let without = task_cmp_with(&w, Side::Desired, Some(spec), &old(), &opts).to_value();
    assert_eq!(without["source_config"]["source_conf"], json!({"s1": {}}));
}

#[test]
fn filters_compare_by_content_not_name() {
    let d = desired_from_yaml("x", Y).unwrap();
    let (spec, _) = &d.tasks["t"];
    let w = task_to_wire(spec, &head());
    let c = task_comparable(&w, Side::Desired, Some(spec), &head());
    assert_eq!(c["binlog_filter_rule"]["s1"], json!([{"ignore_event": ["drop table"]}, {"ignore_sql": ["^DROP"]}]));
    let mut live = readback_task(&w, &head(), 1);
    let names: Vec<String> = live.binlog_filter_rule.as_ref().unwrap().keys().cloned().collect();
    assert_eq!(names, ["s1-filter-rule-0", "s1-filter-rule-1"]);
    let lc = task_comparable(&live, Side::Live, Some(spec), &head());
    assert_eq!(lc["binlog_filter_rule"], c["binlog_filter_rule"]);
    // Changed content is a difference.
    live.binlog_filter_rule.as_mut().unwrap().get_mut("s1-filter-rule-1").unwrap().ignore_sql = Some(vec!["x".into()]);
    assert_ne!(task_comparable(&live, Side::Live, Some(spec), &head())["binlog_filter_rule"], c["binlog_filter_rule"]);
}

#[test]
fn meta_schema_default_spellings() {
    let d = desired_from_yaml("x", Y).unwrap();
    let (spec, _) = &d.tasks["t"];
    let mut w = task_to_wire(spec, &head());
    let want = task_comparable(&w, Side::Desired, Some(spec), &head());
    w.meta_schema = Some("dm-meta".into());
    assert_eq!(task_comparable(&w, Side::Live, Some(spec), &head())["meta_schema"], want["meta_schema"]);
    // Without a declared task (digests), the live value is kept as is.
    assert_eq!(task_comparable(&w, Side::Live, None, &head())["meta_schema"], "dm-meta");
}

#[test]
fn source_defaults_and_masking() {
    let d = desired_from_yaml("x", Y).unwrap();
    let (spec, _) = &d.sources["s1"];
    let w = source_to_wire(spec, &head());
    let live = readback_source(&w, &head());
    assert_eq!(live.password.as_ref().map(|p| p.expose()), Some("******"));
    assert_eq!(source_comparable(&w, Some(spec)), source_comparable(&live, Some(spec)));
    assert!(source_comparable(&live, Some(spec)).get("password").is_none());
    // A user-set flavor is compared.
    let mut spec2 = spec.clone();
    spec2.flavor = Some(crate::config::Flavor::Mariadb);
    assert_ne!(
        source_comparable(&source_to_wire(&spec2, &head()), Some(&spec2)),
        source_comparable(&live, Some(&spec2))
    );
}

#[test]
fn paths() {
    let v = json!({"a": {"b": 1, "x:y.z": {"c": 2}}, "l": [1, 2]});
    let f: Vec<String> = flatten(&v).into_iter().map(|(p, _)| p).collect();
    assert_eq!(f, ["a.b", "a[\"x:y.z\"].c", "l"]);
    assert!(path_matches("a.b", "a"));
    assert!(path_matches("a[\"x\"].c", "a"));
    assert!(!path_matches("ab", "a"));
    assert!(path_matches(
        "source_config.incr_migrate_conf.repl_threads",
        "source_config.incr_migrate_conf.repl_threads"
    ));
}

#[test]
fn streamed_digest_is_the_digest_of_the_value_form() {
    use sha2::{Digest, Sha256};
    // The digest as it was computed before streaming: the `Value` form's JSON text.
    let by_value = |v: &serde_json::Value| {
        let d = Sha256::digest(v.to_string().as_bytes());
        format!("sha256:{}", d.iter().map(|b| format!("{b:02x}")).collect::<String>())
    };
    let d = desired_from_yaml("x", Y).unwrap();
    let (spec, _) = &d.tasks["t"];
    for version in [head(), old()] {
        let mut w = task_to_wire(spec, &version);
        for side in [Side::Desired, Side::Live] {
            let cmp = task_cmp(&w, side, None, &version);
            assert_eq!(digest_of(&cmp), by_value(&cmp.to_value()));
            assert_eq!(digest(&cmp.to_value()), by_value(&cmp.to_value()));
        }
        // Escaped and non-ASCII text hashes the same way too.
        w.target_config.host = "tí\"db\u{1}\\".into();
        let cmp = task_cmp(&w, Side::Live, None, &version);
        assert_eq!(digest_of(&cmp), by_value(&cmp.to_value()));
    }
    let (source, _) = &d.sources["s1"];
    let v = source_comparable(&source_to_wire(source, &head()), None);
    assert_eq!(digest(&v), by_value(&v));
}
