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
        "schemas/dm-apply.schema.json is stale: run `UPDATE_SCHEMA=1 cargo test --test config schema_fresh` and commit it"
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

/// Editors show descriptions and examples on hover: every field has both, and every example is valid for its
/// field (so the examples cannot teach a wrong value).
#[test]
fn every_field_has_a_description_and_valid_examples() {
    let schema = dm_apply::config::json_schema();
    let defs = schema["definitions"].clone();
    let mut objects = vec![("(root)".to_string(), schema.clone())];
    for (name, def) in defs.as_object().expect("definitions") {
        objects.push((name.clone(), def.clone()));
    }
    let mut checked = 0;
    for (owner, object) in objects {
        let Some(props) = object["properties"].as_object() else { continue };
        for (field, prop) in props {
            assert!(prop["description"].is_string(), "{owner}.{field} has no description");
            let examples = prop["examples"].as_array().unwrap_or_else(|| panic!("{owner}.{field} has no example"));
            let mut sub = prop.clone();
            sub["definitions"] = defs.clone();
            let validator = jsonschema::draft7::new(&sub).expect("field schema compiles");
            for example in examples {
                let errors: Vec<String> = validator.iter_errors(example).map(|e| e.to_string()).collect();
                assert!(errors.is_empty(), "{owner}.{field}: example {example} is invalid: {errors:?}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 80, "only {checked} examples checked");
}
