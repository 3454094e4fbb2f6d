//! Map JSON Schema errors (JSON pointers) to diagnostics at `file:line:col`, with messages written for people.
//! Values are quoted only when the path is not a secret.

use std::sync::Arc;

use jsonschema::ValidationError;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;

use super::diag::{FileSource, Problem, did_you_mean};
use super::schema;
use super::yaml::{Document, Pos, is_secret_key};

/// Validate one document. Returns (instance pointer, problem) pairs.
pub(crate) fn check(value: &Value, doc: &Document, file: &Arc<FileSource>) -> Vec<(String, Problem)> {
    let Some(validator) = schema::validator() else { return Vec::new() };
    // The usual case: valid. Checking that stops at the first error and builds no error paths, about twice as
    // fast as collecting them; only an invalid file is walked again to collect every error.
    if validator.is_valid(value) {
        return Vec::new();
    }
    let root_schema = schema::cached();
    let mut out = Vec::new();
    let mut flat = Vec::new();
    for e in validator.iter_errors(value) {
        flatten(e.to_owned(), &mut flat);
    }
    for e in flat {
        let pointer = e.instance_path.clone();
        for (ptr, mut p) in to_problems(&e, &pointer, doc, file, root_schema) {
            // A value that came through an alias is labelled where it is used; also show where it is written.
            if let Some(span) = doc.span(&ptr)
                && span.defined.offset != span.value.offset
                && p.line == span.value.line
                && p.column == span.value.column
            {
                p = p.also(file, span.defined, "value written here");
            }
            out.push((ptr, p));
        }
    }
    // One problem per place and message (anyOf branches can repeat the same finding).
    out.sort_by(|a, b| (a.1.line, a.1.column, &a.1.message).cmp(&(b.1.line, b.1.column, &b.1.message)));
    out.dedup_by(|a, b| a.1.line == b.1.line && a.1.column == b.1.column && a.1.message == b.1.message);
    out
}

/// A schema error, owned and flattened.
struct Flat {
    kind: ValidationErrorKind,
    instance: Value,
    instance_path: String,
    schema_path: String,
    text: String,
}

/// `anyOf` (how schemars writes `Option<Struct>`) hides the useful errors in its branches: for a non-null value,
/// keep the errors of the branches that are not the `null` alternative.
fn flatten(e: ValidationError<'static>, out: &mut Vec<Flat>) {
    let text = e.to_string();
    let parts = e.into_parts();
    let is_null = parts.instance.is_null();
    let is_null_type = |b: &ValidationError<'static>| matches!(b.kind(), ValidationErrorKind::Type { kind: TypeKind::Single(t) } if *t == jsonschema::JsonType::Null);
    match parts.kind {
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context }
            if !is_null && context.iter().any(|branch| !branch.iter().any(is_null_type)) =>
        {
            for branch in context {
                if branch.iter().any(is_null_type) {
                    continue;
                }
                for inner in branch {
                    flatten(inner, out);
                }
            }
        }
        kind => out.push(Flat {
            kind,
            instance: parts.instance.into_owned(),
            instance_path: parts.instance_path.as_str().to_owned(),
            schema_path: parts.schema_path.as_str().to_owned(),
            text,
        }),
    }
}

/// Where each field name is allowed: `binlog_name` → [`tasks[].source_config.source_conf[]`], for "belongs in"
/// hints when a key is put at the wrong level.
fn field_places(root: &Value) -> &'static std::collections::HashMap<String, Vec<String>> {
    static PLACES: std::sync::OnceLock<std::collections::HashMap<String, Vec<String>>> = std::sync::OnceLock::new();
    PLACES.get_or_init(|| {
        let mut out: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
        let defs = root.get(super::schema::DEFS);
        fn target<'a>(node: &'a Value, defs: Option<&'a Value>) -> Option<&'a Value> {
            let by_ref = |r: &str| r.strip_prefix("#/definitions/").and_then(|n| defs.and_then(|d| d.get(n)));
            if let Some(r) = node.get("$ref").and_then(Value::as_str) {
                return by_ref(r);
            }
            for key in ["anyOf", "allOf"] {
                for alt in node.get(key).and_then(Value::as_array).into_iter().flatten() {
                    if let Some(r) = alt.get("$ref").and_then(Value::as_str) {
                        return by_ref(r);
                    }
                }
            }
            Some(node)
        }
        fn walk(
            node: &Value,
            path: &str,
            defs: Option<&Value>,
            depth: usize,
            out: &mut std::collections::HashMap<String, Vec<String>>,
        ) {
            if depth > 12 {
                return;
            }
            let Some(node) = target(node, defs) else { return };
            if let Some(items) = node.get("items") {
                walk(items, &format!("{path}[]"), defs, depth + 1, out);
            }
            if let Some(add) = node.get("additionalProperties").filter(|a| a.is_object()) {
                walk(add, &format!("{path}.<name>"), defs, depth + 1, out);
            }
            for (k, v) in node.get("properties").and_then(Value::as_object).into_iter().flatten() {
                let child = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                let place = if path.is_empty() { "the top level".to_owned() } else { path.to_owned() };
                out.entry(k.clone()).or_default().push(place);
                walk(v, &child, defs, depth + 1, out);
            }
        }
        walk(root, "", defs, 0, &mut out);
        out
    })
}

/// `/tasks/0/source_config` → `tasks[0].source_config`.
pub(crate) fn display_path(pointer: &str) -> String {
    if pointer.is_empty() {
        return "the top level".to_owned();
    }
    let mut s = String::new();
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if seg.parse::<usize>().is_ok() {
            s.push_str(&format!("[{seg}]"));
        } else {
            if !s.is_empty() {
                s.push('.');
            }
            s.push_str(&seg);
        }
    }
    format!("`{s}`")
}

fn is_secret_path(pointer: &str) -> bool {
    pointer.split('/').any(is_secret_key)
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn type_name(t: &jsonschema::JsonType) -> &'static str {
    use jsonschema::JsonType as J;
    match t {
        J::Array => "a list",
        J::Boolean => "a boolean",
        J::Integer => "an integer",
        J::Null => "null",
        J::Number => "a number",
        J::Object => "a mapping",
        J::String => "a string",
    }
}

fn expected_types(kind: &TypeKind) -> String {
    match kind {
        TypeKind::Single(t) => type_name(t).to_owned(),
        TypeKind::Multiple(set) => {
            let names: Vec<&str> =
                set.iter().filter(|t| *t != jsonschema::JsonType::Null).map(|t| type_name(&t)).collect();
            names.join(" or ")
        }
    }
}

fn to_problems(
    e: &Flat,
    pointer: &str,
    doc: &Document,
    file: &Arc<FileSource>,
    root_schema: &Value,
) -> Vec<(String, Problem)> {
    let span = doc.nearest(pointer).map(|s| s.key_or_value()).unwrap_or(Pos { offset: 0, len: 0, line: 1, column: 1 });
    let value_span = doc.nearest(pointer).map(|s| s.value).unwrap_or(span);
    let instance = &e.instance;
    let at = display_path(pointer);
    let secret = is_secret_path(pointer);
    let one = |p: Problem| vec![(pointer.to_owned(), p)];
    match &e.kind {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let schema_ptr = e.schema_path.as_str();
            let parent = schema_ptr.strip_suffix("/additionalProperties").unwrap_or(schema_ptr);
            let allowed: Vec<String> = root_schema
                .pointer(&format!("{parent}/properties"))
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            unexpected
                .iter()
                .map(|key| {
                    let child = format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
                    let pos = doc.span(&child).map(|s| s.key_or_value()).unwrap_or(span);
                    let msg = if pointer.is_empty() {
                        format!("unknown top-level key `{key}`")
                    } else {
                        format!("unknown key `{key}` in {at}")
                    };
                    let mut p = Problem::error("unknown_key", msg).at(file, pos, "not a known key here");
                    if pointer.is_empty() {
                        let near = did_you_mean(&key.replace('-', "_"), ["sources", "tasks", "external_sources"]);
                        p = p.with_help(format!(
                            "{}a configuration file may contain only `sources`, `tasks`, `external_sources` and `x-` keys (ignored; for YAML anchors)",
                            near.map(|s| format!("did you mean `{s}`? ")).unwrap_or_default()
                        ));
                    } else if key == "status_list" || key == "task_name_list" {
                        p = p.with_help(format!("`{key}` is read-only server state; remove it"));
                    } else if let Some(s) = did_you_mean(key, allowed.iter().map(String::as_str)) {
                        p = p.with_help(format!("did you mean `{s}`?"));
                    } else if let Some(places) = field_places(root_schema).get(key.as_str()) {
                        let places: Vec<String> = places.iter().map(|pl| format!("`{pl}`")).collect();
                        p = p.with_help(format!("`{key}` belongs in {}", places.join(" or ")));
                    } else if !allowed.is_empty() {
                        p = p.with_help(format!("allowed keys here: {}", allowed.join(", ")));
                    }
                    (child, p)
                })
                .collect()
        }
        ValidationErrorKind::Required { property } => {
            let prop = property.as_str().unwrap_or("?");
            let what = match pointer {
                p if p.starts_with("/sources/") && p.matches('/').count() == 2 => " of this source",
                p if p.starts_with("/tasks/") && p.matches('/').count() == 2 => " of this task",
                _ => "",
            };
            one(Problem::error("missing_key", format!("missing required key `{prop}` in {at}")).at(
                file,
                span,
                format!("`{prop}`{what} is missing"),
            ))
        }
        ValidationErrorKind::Type { kind } => {
            let expected = expected_types(kind);
            let got = json_type(instance);
            let mut p = Problem::error("type", format!("{at} must be {expected}, not {got}")).at(
                file,
                value_span,
                format!("expected {expected}"),
            );
            if pointer.is_empty() {
                p = Problem::error("type", format!("a configuration file must be a mapping, not {got}"))
                    .at(file, value_span, "expected a mapping")
                    .with_help("write top-level keys `sources:`, `tasks:` and `external_sources:`");
            } else if instance.as_str().is_some_and(|s| s.contains("${")) {
                p = p.with_help("`${env:NAME}` is supported in string values only; write the value itself here");
            } else if expected == "a list" && instance.is_object() {
                p = p.with_help("write each item as a list entry starting with `- `");
            } else if expected.contains("integer")
                && instance.as_str().is_some_and(|s| s.trim().parse::<f64>().is_ok())
                && !secret
            {
                p = p.with_help("remove the quotes around the number");
            }
            one(p)
        }
        ValidationErrorKind::Enum { options } => {
            let choices: Vec<String> = options
                .as_array()
                .map(|a| a.iter().map(|o| o.as_str().map_or_else(|| o.to_string(), |s| format!("`{s}`"))).collect())
                .unwrap_or_default();
            let mut msg = format!("{at} must be one of {}", choices.join(", "));
            if !secret {
                match instance {
                    Value::String(s) => msg.push_str(&format!(", not `{s}`")),
                    other => msg.push_str(&format!(", not {}", json_type(other))),
                }
            }
            let mut p = Problem::error("enum", msg).at(file, value_span, "not an allowed value");
            if let Some(s) = instance.as_str() {
                let opts: Vec<&str> =
                    options.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
                if s == "overwrite" {
                    p = p.with_help("`overwrite` was DM v5.3/v5.4's name; use `replace`");
                } else if let Some(m) = did_you_mean(s, opts) {
                    p = p.with_help(format!("did you mean `{m}`?"));
                } else if s.contains("${") {
                    p = p.with_help("`${env:NAME}` cannot be used for a value with a fixed set of choices");
                }
            }
            one(p)
        }
        ValidationErrorKind::Minimum { limit } | ValidationErrorKind::ExclusiveMinimum { limit } => {
            let got = if secret { String::new() } else { format!(" (it is {instance})") };
            one(Problem::error("range", format!("{at} must be at least {limit}{got}")).at(
                file,
                value_span,
                "too small",
            ))
        }
        ValidationErrorKind::Maximum { limit } | ValidationErrorKind::ExclusiveMaximum { limit } => {
            let got = if secret { String::new() } else { format!(" (it is {instance})") };
            one(Problem::error("range", format!("{at} must be at most {limit}{got}")).at(file, value_span, "too large"))
        }
        ValidationErrorKind::MinLength { limit } => one(Problem::error(
            "length",
            format!("{at} must have at least {limit} character(s)"),
        )
        .at(file, value_span, "too short")),
        ValidationErrorKind::MaxLength { limit } => {
            let n = instance.as_str().map_or(0, |s| s.chars().count());
            one(Problem::error("length", format!("{at} must have at most {limit} characters (it has {n})"))
                .at(file, value_span, "too long"))
        }
        ValidationErrorKind::MinItems { limit } => one(Problem::error(
            "length",
            format!("{at} must have at least {limit} item(s)"),
        )
        .at(file, value_span, "too few items")),
        _ => {
            let msg = if secret { format!("{at} is invalid") } else { format!("{at}: {}", e.text) };
            one(Problem::error("schema", msg).at(file, value_span, "invalid"))
        }
    }
}
