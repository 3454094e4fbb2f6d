//! The checked-in JSON Schema must equal what the Rust types generate. Run with `UPDATE_SCHEMA=1` to rewrite it.

use std::path::Path;

#[test]
fn checked_in_schema_is_fresh() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/dm-apply.schema.json");
    let generated = dm_apply::config::json_schema_text();
    if std::env::var_os("UPDATE_SCHEMA").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write schemas/dm-apply.schema.json");
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == generated,
        "schemas/dm-apply.schema.json is stale: run `UPDATE_SCHEMA=1 cargo test --test schema_fresh` and commit it"
    );
}

#[test]
fn schema_is_draft_7_with_descriptions_and_closed_objects() {
    // Draft 7 is what yaml-language-server (most editors) fully supports.
    let schema = dm_apply::config::json_schema();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    let defs = schema["definitions"].as_object().expect("definitions");
    for name in ["SourceSpec", "TaskSpec", "TargetConfigSpec", "Lifecycle"] {
        assert_eq!(defs[name]["additionalProperties"], false, "{name} must refuse unknown keys");
    }
    assert_eq!(schema["additionalProperties"], false);
    assert!(defs["SourceSpec"]["properties"]["port"]["description"].is_string());
    assert_eq!(defs["SourceSpec"]["properties"]["port"]["minimum"], 1);
    assert_eq!(defs["SourceSpec"]["properties"]["source_name"]["maxLength"], 32);
}
