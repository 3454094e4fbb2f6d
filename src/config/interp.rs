//! `${env:NAME}` interpolation in every string value. `$${` writes a literal `${`. Only string values are
//! interpolated (a port or a boolean cannot come from the environment), which the JSON Schema enforces.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;

use super::diag::{FileSource, Problem};
use super::schema_errors::display_path;
use super::yaml::Document;

/// Expand `${env:NAME}` in every string of `value`, in place. Unset variables and malformed references are
/// errors; secrets written in plain text are warnings.
pub(crate) fn interpolate(
    value: &mut Value,
    doc: &Document,
    file: &Arc<FileSource>,
    invalid: &HashSet<String>,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) {
    let mut pointer = String::new();
    let mut cx = Walk { doc, file, invalid, env, errors, warnings };
    walk(value, &mut pointer, &mut cx);
}

struct Walk<'a> {
    doc: &'a Document,
    file: &'a Arc<FileSource>,
    /// Pointers the schema already reported: not interpolated (one error per place).
    invalid: &'a HashSet<String>,
    env: &'a dyn Fn(&str) -> Option<String>,
    errors: &'a mut Vec<Problem>,
    warnings: &'a mut Vec<Problem>,
}

fn walk(value: &mut Value, pointer: &mut String, cx: &mut Walk<'_>) {
    let (doc, file, env) = (cx.doc, cx.file, cx.env);
    match value {
        Value::String(_) if cx.invalid.contains(pointer.as_str()) => {}
        Value::String(s) => {
            let key = pointer.rsplit('/').next().unwrap_or("");
            // Looked up only for a problem: for every string, it cost more than the rest of this walk.
            let span = || doc.nearest(pointer);
            let value_pos = || span().map(|s| s.value).unwrap_or_default();
            if (key == "password" || key == "ssl_key_content") && !s.is_empty() && !s.contains("${env:") {
                let pos = span().map(|s| s.key_or_value()).unwrap_or_default();
                cx.warnings.push(
                    Problem::warning("plain_secret", format!("{} is written in plain text", display_path(pointer)))
                        .at(file, pos, "secret in plain text")
                        .with_help("keep secrets out of git: write `${env:NAME}` and set NAME in the environment"),
                );
            }
            match expand(s, env) {
                Ok(expanded) => *s = expanded,
                Err(Expand::Unset(name)) => cx.errors.push(
                    Problem::error("env_unset", format!("environment variable `{name}` is not set"))
                        .at(file, value_pos(), format!("`${{env:{name}}}` used here"))
                        .with_help(format!("export {name}=... before running dm-apply")),
                ),
                Err(Expand::Malformed(what)) => cx.errors.push(
                    Problem::error("env_syntax", format!("malformed reference in {}: {what}", display_path(pointer)))
                        .at(file, value_pos(), "here")
                        .with_help("write `${env:NAME}` (NAME: letters, digits, `_`), or `$${` for a literal `${`"),
                ),
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&i.to_string());
                walk(item, pointer, cx);
                pointer.truncate(len);
            }
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let len = pointer.len();
                pointer.push('/');
                super::yaml::push_escaped(pointer, k);
                walk(v, pointer, cx);
                pointer.truncate(len);
            }
        }
        _ => {}
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Expand {
    Unset(String),
    Malformed(String),
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Expand one string. The first unset variable or malformed reference is the error.
pub(crate) fn expand(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, Expand> {
    if !s.contains("${") {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        if i > 0 && rest.as_bytes()[i - 1] == b'$' {
            // `$${` → literal `${`
            out.push_str(&rest[..i - 1]);
            out.push_str("${");
            rest = &rest[i + 2..];
            continue;
        }
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            return Err(Expand::Malformed("`${` without a closing `}`".to_owned()));
        };
        let inner = &after[..end];
        let Some(name) = inner.strip_prefix("env:") else {
            return Err(Expand::Malformed(format!("`${{{inner}}}` is not `${{env:NAME}}`")));
        };
        if !valid_name(name) {
            return Err(Expand::Malformed(format!("`{name}` is not a valid variable name")));
        }
        match env(name) {
            Some(v) => out.push_str(&v),
            None => return Err(Expand::Unset(name.to_owned())),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PW" => Some("s3cret".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expansion() {
        assert_eq!(expand("plain", &env), Ok("plain".into()));
        assert_eq!(expand("${env:PW}", &env), Ok("s3cret".into()));
        assert_eq!(expand("a-${env:PW}-b${env:EMPTY}", &env), Ok("a-s3cret-b".into()));
        assert_eq!(expand("$${env:PW}", &env), Ok("${env:PW}".into()));
        assert_eq!(expand("cost $$5 ${env:PW}", &env), Ok("cost $$5 s3cret".into()));
        assert_eq!(expand("${env:NOPE}", &env), Err(Expand::Unset("NOPE".into())));
        assert!(matches!(expand("${env:PW", &env), Err(Expand::Malformed(_))));
        assert!(matches!(expand("${PW}", &env), Err(Expand::Malformed(_))));
        assert!(matches!(expand("${env:1X}", &env), Err(Expand::Malformed(_))));
    }
}
