//! The JSON Schema of the configuration format, generated from the Rust types with schemars.
//!
//! The checked-in `schemas/dm-apply.schema.json` is this output (a test fails when it is stale), and `validate`
//! runs the same schema through the jsonschema crate, compiled once per process.

use std::sync::OnceLock;

use serde_json::Value;

use super::model::ConfigFile;

/// Top-level keys starting with this are ignored (a place for YAML anchors shared by several resources, as in
/// Docker Compose).
pub const EXTENSION_PREFIX: &str = "x-";

/// Where the schema keeps its definitions (draft 7).
pub(crate) const DEFS: &str = "definitions";

/// The JSON Schema (draft 7) of one configuration file.
pub fn json_schema() -> Value {
    // Draft 7: the newest draft that yaml-language-server (VS Code's YAML extension and most editors) fully
    // supports; the jsonschema crate reads the draft from `$schema`.
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let mut v = generator.into_root_schema_for::<ConfigFile>().to_value();
    bound_int64(&mut v);
    if let Value::Object(map) = &mut v {
        // `sources:` with every entry commented out is null: accept it as empty.
        if let Some(Value::Object(props)) = map.get_mut("properties") {
            for key in ["sources", "tasks", "external_sources"] {
                if let Some(Value::Object(p)) = props.get_mut(key) {
                    p.insert("type".to_owned(), serde_json::json!(["array", "null"]));
                }
            }
        }
        map.insert(
            "patternProperties".to_owned(),
            serde_json::json!({
                "^x-": {
                    "description": "Ignored by dm-apply: a place for YAML anchors (`&name`) that resources reuse with aliases or merge keys (`<<: *name`)."
                }
            }),
        );
    }
    v
}

/// schemars marks `i64` fields with `format: int64` only, which validators do not enforce: add the bounds, so an
/// out-of-range number is a schema error with a position rather than a failure of typed deserialization.
fn bound_int64(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.get("format").and_then(Value::as_str) == Some("int64") {
                map.entry("minimum").or_insert(Value::from(i64::MIN));
                map.entry("maximum").or_insert(Value::from(i64::MAX));
            }
            map.values_mut().for_each(bound_int64);
        }
        Value::Array(items) => items.iter_mut().for_each(bound_int64),
        _ => {}
    }
}

/// The schema, generated once per process.
pub(crate) fn cached() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(json_schema)
}

/// The schema as checked in: pretty JSON with a trailing newline.
pub fn json_schema_text() -> String {
    let mut s = serde_json::to_string_pretty(&json_schema()).unwrap_or_default();
    s.push('\n');
    s
}

/// The compiled validator, built once. `None` only if the generated schema itself is broken (a bug caught by
/// tests), in which case validation falls back to typed deserialization errors.
pub(crate) fn validator() -> Option<&'static jsonschema::Validator> {
    static VALIDATOR: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    VALIDATOR.get_or_init(|| jsonschema::validator_for(cached()).ok()).as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_compiles() {
        assert!(validator().is_some());
    }

    #[test]
    fn schema_rejects_unknown_keys_types_and_enums() {
        let v = validator().unwrap();
        let bad = serde_json::json!({
            "sources": [{"source_name": "a", "host": "h", "port": "x", "user": "u", "enable_gitd": true}],
            "tasks": {"name": "t"},
        });
        let errs: Vec<String> =
            v.iter_errors(&bad).map(|e| format!("{} {} {:?}", e.instance_path(), e.schema_path(), e.kind())).collect();
        for e in &errs {
            eprintln!("{e}");
        }
        assert!(errs.len() >= 3);
    }
}
