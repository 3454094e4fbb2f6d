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

/// The JSON Schema (draft 2020-12) of one configuration file.
pub fn json_schema() -> Value {
    let mut v = schemars::schema_for!(ConfigFile).to_value();
    if let Value::Object(map) = &mut v {
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
    VALIDATOR.get_or_init(|| jsonschema::validator_for(&json_schema()).ok()).as_ref()
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
