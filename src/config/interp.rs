//! `${env:NAME}` interpolation in every string value, and `${file:PATH}` in secret fields. `$${` writes a literal
//! `${`. Only string values are interpolated (a port or a boolean cannot come from the environment), which the JSON
//! Schema enforces.
//!
//! `${file:PATH}` reads a secret from a file (a Kubernetes secret mount, a Vault agent sink): PATH is relative to
//! the YAML file's directory unless absolute, one trailing newline is trimmed, files over [`MAX_SECRET_FILE`] and
//! anything but regular files are refused. It is accepted only where the value is a secret (`password`,
//! `ssl_key_content`), so the content is never shown; errors name the path and the OS error, never the content.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::diag::{FileSource, Problem};
use super::schema_errors::display_path;
use super::yaml::Document;

/// Largest file `${file:PATH}` reads.
pub const MAX_SECRET_FILE: u64 = 1024 * 1024;

/// Fields whose value is a secret: the only places `${file:PATH}` is accepted.
const SECRET_FIELDS: [&str; 2] = ["password", "ssl_key_content"];

/// Options of the interpolation.
#[derive(Debug, Clone, Copy, Default)]
pub struct InterpOptions {
    /// `validate --allow-missing-env`: an unreadable `${file:PATH}` is a warning (like an unset variable) and reads
    /// as a placeholder.
    pub allow_missing_files: bool,
}

/// Expand `${env:NAME}` and `${file:PATH}` in every string of `value`, in place. Unset variables, unreadable files
/// and malformed references are errors; secrets written in plain text are warnings.
#[allow(clippy::too_many_arguments)]
pub(crate) fn interpolate(
    value: &mut Value,
    doc: &Document,
    file: &Arc<FileSource>,
    invalid: &HashSet<String>,
    env: &dyn Fn(&str) -> Option<String>,
    opts: InterpOptions,
    errors: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) {
    let mut pointer = String::new();
    let base = Path::new(&file.name).parent().map(Path::to_path_buf).unwrap_or_default();
    // Each variable is read once per file: a fleet names the same one in thousands of places, and every read of
    // the process environment takes its lock and scans it.
    let seen: RefCell<HashMap<String, Option<String>>> = RefCell::default();
    let cached = |name: &str| -> Option<String> {
        if let Some(v) = seen.borrow().get(name) {
            return v.clone();
        }
        let v = env(name);
        seen.borrow_mut().insert(name.to_owned(), v.clone());
        v
    };
    let mut cx = Walk { doc, file, invalid, env: &cached, base, opts, errors, warnings };
    walk(value, &mut pointer, &mut cx);
}

struct Walk<'a> {
    doc: &'a Document,
    file: &'a Arc<FileSource>,
    /// Pointers the schema already reported: not interpolated (one error per place).
    invalid: &'a HashSet<String>,
    env: &'a dyn Fn(&str) -> Option<String>,
    /// Directory of the YAML file: relative `${file:PATH}` are read from there.
    base: PathBuf,
    opts: InterpOptions,
    errors: &'a mut Vec<Problem>,
    warnings: &'a mut Vec<Problem>,
}

fn walk(value: &mut Value, pointer: &mut String, cx: &mut Walk<'_>) {
    let (doc, file, env) = (cx.doc, cx.file, cx.env);
    match value {
        Value::String(s) => {
            let key = pointer.rsplit('/').next().unwrap_or("");
            let secret_field = SECRET_FIELDS.contains(&key);
            // Nothing to expand and nothing to warn about: most strings of a fleet (a hash lookup of the pointer
            // and a copy of every string cost more than the rest of this walk).
            if !secret_field && !s.contains("${") {
                return;
            }
            if !cx.invalid.is_empty() && cx.invalid.contains(pointer.as_str()) {
                return;
            }
            // Looked up only for a problem: for every string, it cost more than the rest of this walk.
            let span = || doc.nearest(pointer);
            let value_pos = || span().map(|s| s.value).unwrap_or_default();
            if secret_field && !s.is_empty() && !s.contains("${env:") && !s.contains("${file:") {
                let pos = span().map(|s| s.key_or_value()).unwrap_or_default();
                cx.warnings.push(
                    Problem::warning("plain_secret", format!("{} is written in plain text", display_path(pointer)))
                        .at(file, pos, "secret in plain text")
                        .with_help("keep secrets out of git: write `${env:NAME}` and set NAME in the environment"),
                );
            }
            let read = |path: &str| read_secret_file(&cx.base, path);
            let files: FileReader<'_> = &read;
            match expand_with(s, env, secret_field.then_some(files)) {
                Ok(expanded) => *s = expanded,
                Err(Expand::File { path, error }) if cx.opts.allow_missing_files => {
                    cx.warnings.push(
                        Problem::warning("file_unreadable", format!("cannot read secret file `{path}`: {error}"))
                            .at(file, value_pos(), format!("`${{file:{path}}}` used here"))
                            .with_help("allowed by --allow-missing-env; plan, apply and drift need the file"),
                    );
                    *s = format!("unset-file-{path}");
                }
                Err(Expand::File { path, error }) => cx.errors.push(
                    Problem::error("file_unreadable", format!("cannot read secret file `{path}`: {error}"))
                        .at(file, value_pos(), format!("`${{file:{path}}}` used here"))
                        .with_help(
                            "relative paths are read from the YAML file's directory; check that the secret is \
                             mounted (or use `${env:NAME}`)",
                        ),
                ),
                Err(Expand::FileNotAllowed(path)) => cx.errors.push(
                    Problem::error(
                        "file_not_secret",
                        format!(
                            "`${{file:{path}}}` in {}: files are read only into secret fields",
                            display_path(pointer)
                        ),
                    )
                    .at(file, value_pos(), "not a secret field")
                    .with_help(
                        "`${file:PATH}` is accepted in `password` and `ssl_key_content` (whose values are never \
                         shown); write other values in the YAML or use `${env:NAME}`",
                    ),
                ),
                Err(Expand::Unset(name)) => cx.errors.push(
                    Problem::error("env_unset", format!("environment variable `{name}` is not set"))
                        .at(file, value_pos(), format!("`${{env:{name}}}` used here"))
                        .with_help(format!("export {name}=... before running dm-apply")),
                ),
                Err(Expand::Malformed(what)) => cx.errors.push(
                    Problem::error("env_syntax", format!("malformed reference in {}: {what}", display_path(pointer)))
                        .at(file, value_pos(), "here")
                        .with_help(
                            "write `${env:NAME}` (NAME: letters, digits, `_`), `${file:PATH}` in a secret field, or \
                             `$${` for a literal `${`",
                        ),
                ),
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = pointer.len();
                use std::fmt::Write as _;
                let _ = write!(pointer, "/{i}");
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
    /// `${file:PATH}` could not be read (the OS error; never the content).
    File {
        path: String,
        error: String,
    },
    /// `${file:PATH}` outside a secret field.
    FileNotAllowed(String),
}

/// Read a `${file:PATH}` secret: regular files only, at most [`MAX_SECRET_FILE`] bytes, UTF-8, one trailing newline
/// (`\n` or `\r\n`) trimmed. The error is the OS error or what is wrong, never the content.
fn read_secret_file(base: &Path, path: &str) -> Result<String, String> {
    let p = Path::new(path);
    let full = if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
    let shown = |e: String| format!("{e} (reading {})", full.display());
    let meta = std::fs::metadata(&full).map_err(|e| shown(e.to_string()))?;
    if !meta.is_file() {
        return Err(shown("not a regular file".into()));
    }
    let f = std::fs::File::open(&full).map_err(|e| shown(e.to_string()))?;
    let mut bytes = vec![];
    f.take(MAX_SECRET_FILE + 1).read_to_end(&mut bytes).map_err(|e| shown(e.to_string()))?;
    if bytes.len() as u64 > MAX_SECRET_FILE {
        return Err(shown(format!("larger than {MAX_SECRET_FILE} bytes")));
    }
    let mut text = String::from_utf8(bytes).map_err(|_| shown("not UTF-8 text".into()))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Expand one string (`${env:NAME}` only). The first unset variable or malformed reference is the error.
#[cfg(test)]
pub(crate) fn expand(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, Expand> {
    expand_with(s, env, None)
}

/// Reads a `${file:PATH}` secret: the content, or the error to show.
pub(crate) type FileReader<'a> = &'a dyn Fn(&str) -> Result<String, String>;

/// Expand one string; `files` reads `${file:PATH}` (`None`: not allowed here).
pub(crate) fn expand_with(
    s: &str,
    env: &dyn Fn(&str) -> Option<String>,
    files: Option<FileReader<'_>>,
) -> Result<String, Expand> {
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
        if let Some(path) = inner.strip_prefix("file:") {
            if path.is_empty() {
                return Err(Expand::Malformed("`${file:}` names no file".to_owned()));
            }
            let Some(read) = files else { return Err(Expand::FileNotAllowed(path.to_owned())) };
            match read(path) {
                Ok(v) => out.push_str(&v),
                Err(error) => return Err(Expand::File { path: path.to_owned(), error }),
            }
            rest = &after[end + 1..];
            continue;
        }
        let Some(name) = inner.strip_prefix("env:") else {
            return Err(Expand::Malformed(format!("`${{{inner}}}` is not `${{env:NAME}}` or `${{file:PATH}}`")));
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
        assert_eq!(expand("${file:x}", &env), Err(Expand::FileNotAllowed("x".into())));
    }

    #[test]
    fn each_variable_is_read_once_per_file() {
        let reads = std::cell::Cell::new(0);
        let env = |name: &str| {
            reads.set(reads.get() + 1);
            (name == "PW").then(|| "s3cret".to_string())
        };
        let yaml = "sources:\n  - {source_name: a, host: h, port: 3306, user: u, password: \"${env:PW}\"}\n  \
                    - {source_name: b, host: h, port: 3306, user: u, password: \"${env:PW}\"}\n  \
                    - {source_name: c, host: h, port: 3306, user: u, password: \"${env:NOPE}\"}\n  \
                    - {source_name: d, host: h, port: 3306, user: u, password: \"${env:NOPE}\"}\n";
        let a = crate::config::loader::analyze_source("f.yaml", yaml.as_bytes(), &env);
        assert_eq!(reads.get(), 2);
        // An unset variable is still reported at each place it is used.
        let unset: Vec<_> = a.errors.iter().filter(|p| p.code.ends_with("env_unset")).collect();
        assert_eq!(unset.len(), 2, "{:?}", a.errors);
        let pw =
            |n: &str| a.desired.sources.get(n).and_then(|(s, _)| s.password.as_ref().map(|p| p.expose().to_owned()));
        assert_eq!((pw("a"), pw("b")), (Some("s3cret".into()), Some("s3cret".into())));
    }

    #[test]
    fn secret_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "s3cret\r\n").unwrap();
        std::fs::write(dir.path().join("two"), "a\n\n").unwrap();
        let read = |p: &str| read_secret_file(dir.path(), p);
        let files: FileReader<'_> = &read;
        assert_eq!(expand_with("${file:pw}", &env, Some(files)), Ok("s3cret".into()));
        // One trailing newline only.
        assert_eq!(expand_with("${file:two}", &env, Some(files)), Ok("a\n".into()));
        let abs = dir.path().join("pw").display().to_string();
        assert_eq!(expand_with(&format!("x${{file:{abs}}}"), &env, Some(files)), Ok("xs3cret".into()));
        match expand_with("${file:nope}", &env, Some(files)) {
            Err(Expand::File { path, error }) => {
                assert_eq!(path, "nope");
                assert!(error.contains("No such file") && error.contains("nope"), "{error}");
            }
            r => panic!("{r:?}"),
        }
        assert!(matches!(expand_with("${file:.}", &env, Some(files)), Err(Expand::File { .. })));
        std::fs::write(dir.path().join("big"), vec![b'x'; MAX_SECRET_FILE as usize + 1]).unwrap();
        assert!(matches!(expand_with("${file:big}", &env, Some(files)), Err(Expand::File { .. })));
    }
}
