//! `dm-apply convert`: dmctl `task.yaml` / `source.yaml` files → dm-apply YAML, offline.
//!
//! The mapping follows DM's own converter (docs/dm-behaviour.md §11): a task becomes an OpenAPI-shaped
//! [`TaskSpec`], a source a [`SourceSpec`]. What a task replicates (allow lists, routes, binlog filters) is carried
//! exactly or refused (`scope.rs`): convert never writes a configuration that replicates more than the dmctl files.
//! Whatever cannot be carried that way is a [`CannotCarry`] (exit 1); other settings DM's OpenAPI model cannot hold
//! become a [`Warning`] at their `file:line:col`. Every output is validated in-process before it is returned.
//! Secrets are never copied: passwords (plain or dmctl-encrypted) and TLS private keys become `${env:NAME}`
//! placeholders, listed in [`Conversion::env`].

pub(crate) mod pattern;
pub(crate) mod scope;
mod source;
mod task;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use miette::Diagnostic;
use serde_json::{Map, Value};

use crate::config::model::{ConfigFile, SecuritySpec, SourceSpec, TaskSpec};
use crate::config::yaml::{self, Document};
use crate::secret::Secret;

/// Something in a dmctl file that the output does not carry (or carries differently), with where it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Warning {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
    }
}

/// An environment variable the converted configuration reads, and what to put in it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EnvVar {
    pub name: String,
    pub purpose: String,
}

/// The result of converting a set of dmctl files.
#[derive(Debug, Clone, Default)]
pub struct Conversion {
    pub config: ConfigFile,
    /// Sorted by file, line, column.
    pub warnings: Vec<Warning>,
    /// Sorted by name.
    pub env: Vec<EnvVar>,
    /// Input file names, in the order given.
    pub inputs: Vec<String>,
}

/// One dmctl file's text, with the name shown in warnings and the directory relative TLS paths are resolved from.
#[derive(Debug, Clone)]
pub struct Input {
    pub name: String,
    pub text: String,
    pub base_dir: PathBuf,
    /// Found in a directory: skipped with a warning when it is not a dmctl task or source file.
    pub optional: bool,
}

impl Input {
    pub fn read(path: &Path) -> Result<Input, ConvertError> {
        let name = path.display().to_string();
        let meta =
            std::fs::metadata(path).map_err(|e| ConvertError::Io { file: name.clone(), reason: e.to_string() })?;
        if meta.len() > crate::config::MAX_FILE_BYTES {
            return Err(ConvertError::Io { file: name, reason: "file is larger than 8 MiB".into() });
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConvertError::Io { file: name.clone(), reason: e.to_string() })?;
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(Input { name, text, base_dir, optional: false })
    }
}

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ConvertError {
    #[error("cannot read `{file}`: {reason}")]
    #[diagnostic(code(convert::io))]
    Io { file: String, reason: String },
    #[error("{file}: not valid YAML: {reason}")]
    #[diagnostic(code(convert::yaml), help("fix the YAML syntax; dmctl would refuse this file too"))]
    Yaml { file: String, reason: String },
    #[error(
        "{file}: neither a dmctl task file (no `mysql-instances`/`target-database`) nor a source file (no `source-id`/`from`)"
    )]
    #[diagnostic(code(convert::kind), help("pass dmctl task.yaml and source.yaml files"))]
    UnknownKind { file: String },
    #[error("{file}:{line}:{column}: {message}")]
    #[diagnostic(code(convert::invalid))]
    Invalid { file: String, line: usize, column: usize, message: String },
    #[error("{kind} `{name}` is defined twice ({first} and {second})")]
    #[diagnostic(code(convert::duplicate), help("convert each cluster's files separately"))]
    Duplicate { kind: &'static str, name: String, first: String, second: String },
    #[error(
        "{} construct(s) of the dmctl files cannot be carried into DM's OpenAPI model without replicating more; \
         nothing was written",
        items.len()
    )]
    #[diagnostic(code(convert::cannot_carry))]
    CannotCarry {
        #[related]
        items: Vec<CannotCarry>,
    },
    #[error(
        "the converted configuration does not pass `dm-apply validate` (nothing was written):\n{}",
        problems.join("\n")
    )]
    #[diagnostic(
        code(convert::not_valid),
        help(
            "the dmctl files hold a setting DM refuses (shown above in the converted form: fix it in the dmctl file), \
             or convert mishandled a construct (please report it with the dmctl files)"
        )
    )]
    NotValid { problems: Vec<String> },
}

/// A dmctl construct that cannot be expressed in DM's OpenAPI model without replicating more: where it is, why,
/// and what to do.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, thiserror::Error, Diagnostic)]
#[error("{file}:{line}:{column}: {what}: {why}")]
#[diagnostic(code(convert::cannot_carry), help("{help}"))]
pub struct CannotCarry {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub what: String,
    pub why: String,
    pub help: String,
}

/// Convert the files at `paths` (each a dmctl task or source file).
/// A directory stands for its `*.yaml`/`*.yml` files (not recursive, sorted); there, files that are neither task
/// nor source files are skipped with a warning instead of failing the conversion.
pub fn convert_files(paths: &[PathBuf]) -> Result<Conversion, ConvertError> {
    let mut inputs = Vec::new();
    for p in paths {
        if p.is_dir() {
            let rd = std::fs::read_dir(p)
                .map_err(|e| ConvertError::Io { file: p.display().to_string(), reason: e.to_string() })?;
            let mut files: Vec<PathBuf> = rd
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|f| f.is_file() && f.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            files.sort();
            for f in files {
                let mut input = Input::read(&f)?;
                input.optional = true;
                inputs.push(input);
            }
        } else {
            inputs.push(Input::read(p)?);
        }
    }
    convert(&inputs)
}

/// Convert in-memory dmctl files.
pub fn convert(inputs: &[Input]) -> Result<Conversion, ConvertError> {
    let mut out = Conversion { inputs: inputs.iter().map(|i| i.name.clone()).collect(), ..Default::default() };
    let mut env = EnvNames::default();
    let mut refusals = Vec::new();
    // Parse and classify everything first: a task needs its sources' `case-sensitive`.
    let mut parsed: Vec<(&Input, Document, Map<String, Value>, bool)> = Vec::new();
    for input in inputs {
        let doc = yaml::parse(&input.text)
            .map_err(|e| ConvertError::Yaml { file: input.name.clone(), reason: e.to_string() })?;
        let root = match doc.value.clone() {
            Some(Value::Object(root)) => root,
            _ if input.optional => {
                out.warnings.push(skipped_warning(&input.name));
                continue;
            }
            _ => return Err(ConvertError::UnknownKind { file: input.name.clone() }),
        };
        let is_task = root.contains_key("mysql-instances") || root.contains_key("target-database");
        if !(is_task || root.contains_key("source-id") || root.contains_key("from")) {
            if input.optional {
                out.warnings.push(skipped_warning(&input.name));
                continue;
            }
            return Err(ConvertError::UnknownKind { file: input.name.clone() });
        }
        parsed.push((input, doc, root, is_task));
    }
    let source_case = parsed
        .iter()
        .filter(|p| !p.3)
        .filter_map(|(_, _, root, _)| {
            let id = root.get("source-id")?.as_str()?.to_owned();
            Some((id, root.get("case-sensitive") == Some(&Value::Bool(true))))
        })
        .collect();
    let mut shared = Shared { source_case, ..Shared::default() };

    let mut sources: BTreeMap<String, (SourceSpec, String)> = BTreeMap::new();
    let mut tasks: BTreeMap<String, (TaskSpec, String)> = BTreeMap::new();
    for tasks_now in [false, true] {
        for (input, doc, root, is_task) in &parsed {
            if *is_task != tasks_now {
                continue;
            }
            let mut cx = Cx {
                input,
                doc,
                warnings: &mut out.warnings,
                env: &mut env,
                refusals: &mut refusals,
                shared: &mut shared,
            };
            if *is_task {
                let spec = task::convert(&mut cx, root)?;
                let here = cx.location("");
                if let Some((_, first)) = tasks.get(&spec.name) {
                    return Err(ConvertError::Duplicate {
                        kind: "task",
                        name: spec.name,
                        first: first.clone(),
                        second: here,
                    });
                }
                tasks.insert(spec.name.clone(), (spec, here));
            } else {
                let spec = source::convert(&mut cx, root)?;
                let here = cx.location("");
                if let Some((_, first)) = sources.get(&spec.source_name) {
                    return Err(ConvertError::Duplicate {
                        kind: "source",
                        name: spec.source_name,
                        first: first.clone(),
                        second: here,
                    });
                }
                sources.insert(spec.source_name.clone(), (spec, here));
            }
        }
    }
    if !refusals.is_empty() {
        refusals.sort();
        refusals.dedup();
        return Err(ConvertError::CannotCarry { items: refusals });
    }
    // Sources a task uses but no converted file defines are managed elsewhere (or not converted yet).
    let mut external = BTreeSet::new();
    for (t, here) in tasks.values() {
        for sc in &t.source_config.source_conf {
            if !sources.contains_key(&sc.source_name) && external.insert(sc.source_name.clone()) {
                let (file, line, column) = split_location(here);
                out.warnings.push(Warning {
                    file,
                    line,
                    column,
                    message: format!(
                        "task `{}` uses source `{}`, which none of the converted files defines; it is listed in \
                         external_sources (convert its source.yaml too to manage it here)",
                        t.name, sc.source_name
                    ),
                });
            }
        }
    }
    out.config.external_sources = external.into_iter().collect();
    out.config.sources = sources.into_values().map(|(s, _)| s).collect();
    out.config.tasks = tasks.into_values().map(|(t, _)| t).collect();
    out.warnings.sort();
    out.warnings.dedup();
    out.env = env.vars.into_values().collect();
    validate(&out)?;
    Ok(out)
}

/// Run `dm-apply validate`'s checks on the output (variables set to a dummy value): convert never returns a
/// configuration that validate refuses.
fn validate(conv: &Conversion) -> Result<(), ConvertError> {
    let text = to_yaml(&conv.config);
    let names: BTreeSet<&str> = conv.env.iter().map(|v| v.name.as_str()).collect();
    let analysis = crate::config::analyze_source("converted.yaml", text.as_bytes(), &|n| {
        names.contains(n).then(|| "converted-placeholder".to_owned())
    });
    if analysis.errors.is_empty() {
        return Ok(());
    }
    Err(ConvertError::NotValid { problems: analysis.errors.iter().map(|e| crate::config::render_plain(e)).collect() })
}

/// Render the conversion as a dm-apply configuration file: the schema line, a header naming the inputs, the
/// variables to set and every warning (so a reviewer sees them in the pull request), then the YAML.
pub fn render(conv: &Conversion, schema_ref: &str) -> String {
    let mut s = format!("# yaml-language-server: $schema={schema_ref}\n#\n");
    s.push_str("# Converted by `dm-apply convert` from dmctl files:\n");
    for i in &conv.inputs {
        s.push_str(&format!("#   {}\n", comment_safe(i)));
    }
    if !conv.env.is_empty() {
        s.push_str("#\n# Set these environment variables before running validate/plan/apply:\n");
        for v in &conv.env {
            s.push_str(&format!("#   {}: {}\n", v.name, comment_safe(&v.purpose)));
        }
    }
    if !conv.warnings.is_empty() {
        s.push_str("#\n# Not converted or changed in meaning (review before committing):\n");
        for w in &conv.warnings {
            s.push_str(&format!("#   {}\n", comment_safe(&w.to_string())));
        }
    }
    s.push('\n');
    s.push_str(&to_yaml(&conv.config));
    s
}

/// Serialize a configuration file as YAML, leaving out empty top-level lists.
pub fn to_yaml(config: &ConfigFile) -> String {
    let mut value = serde_json::to_value(config).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.retain(|_, v| !matches!(v, Value::Array(a) if a.is_empty()));
        for list in ["sources", "tasks"] {
            for item in map.get_mut(list).and_then(Value::as_array_mut).into_iter().flatten() {
                strip_lifecycle_defaults(item);
            }
        }
    }
    escape_dollars(&mut value);
    let mut text = serde_saphyr::to_string(&value).unwrap_or_default();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// `lifecycle` holds only what differs from the defaults (`prevent_destroy: false`, `allow_restart: false` and an
/// empty `ignore_changes` say nothing).
fn strip_lifecycle_defaults(resource: &mut Value) {
    let Some(obj) = resource.as_object_mut() else { return };
    if let Some(Value::Object(l)) = obj.get_mut("lifecycle") {
        l.retain(|_, v| !matches!(v, Value::Bool(false)) && !matches!(v, Value::Array(a) if a.is_empty()));
        if l.is_empty() {
            obj.remove("lifecycle");
        }
    }
}

/// A literal `${` in a value is written `$${` (the loader would take it for a reference); the `${env:NAME}`
/// placeholders this module generates are left as they are.
fn escape_dollars(v: &mut Value) {
    match v {
        Value::String(s) if s.contains("${") && !is_placeholder(s) => *s = s.replace("${", "$${"),
        Value::Array(a) => a.iter_mut().for_each(escape_dollars),
        Value::Object(m) => m.values_mut().for_each(escape_dollars),
        _ => {}
    }
}

fn is_placeholder(s: &str) -> bool {
    s.strip_prefix("${env:")
        .and_then(|r| r.strip_suffix('}'))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
}

fn skipped_warning(file: &str) -> Warning {
    Warning {
        file: file.to_owned(),
        line: 1,
        column: 1,
        message: "neither a dmctl task file nor a source file; skipped".to_owned(),
    }
}

/// `file:line:col` → parts (the file name may itself contain colons).
fn split_location(loc: &str) -> (String, usize, usize) {
    let mut parts = loc.rsplitn(3, ':');
    let column = parts.next().and_then(|c| c.parse().ok()).unwrap_or(1);
    let line = parts.next().and_then(|l| l.parse().ok()).unwrap_or(1);
    (parts.next().unwrap_or(loc).to_owned(), line, column)
}

pub(crate) fn comment_safe(s: &str) -> String {
    crate::ui::sanitize::comment(s)
}

/// Converter context for one file.
pub(crate) struct Cx<'a> {
    input: &'a Input,
    doc: &'a Document,
    warnings: &'a mut Vec<Warning>,
    env: &'a mut EnvNames,
    refusals: &'a mut Vec<CannotCarry>,
    shared: &'a mut Shared,
}

/// What the converted source files tell the tasks (sources are converted first).
#[derive(Default)]
pub(crate) struct Shared {
    /// `case-sensitive: true` of each source file, by source id.
    source_case: BTreeMap<String, bool>,
    /// Source-level binlog filters DM's worker adds to every task of the source, by source id.
    pub(crate) source_filters: BTreeMap<String, Vec<scope::FilterIn>>,
}

/// A pointer that names a place in another file (`@@line:column@@file`), for source-level filters carried into a
/// task.
const ELSEWHERE: &str = "@@";

impl Cx<'_> {
    fn pos(&self, pointer: &str) -> (usize, usize) {
        match self.doc.nearest(pointer) {
            Some(s) => {
                let p = s.key_or_value();
                (p.line, p.column)
            }
            None => (1, 1),
        }
    }

    fn location(&self, pointer: &str) -> String {
        let (l, c) = self.pos(pointer);
        format!("{}:{l}:{c}", self.input.name)
    }

    pub(crate) fn warn(&mut self, pointer: &str, message: impl Into<String>) {
        let (file, line, column) = self.place(pointer);
        self.warnings.push(Warning { file, line, column, message: message.into() });
    }

    /// Record something that cannot be carried without replicating more (the conversion then fails).
    pub(crate) fn refuse(&mut self, pointer: &str, what: String, why: impl Into<String>, help: impl Into<String>) {
        let (file, line, column) = self.place(pointer);
        self.refusals.push(CannotCarry { file, line, column, what, why: why.into(), help: help.into() });
    }

    /// The converted source file of `id` says `case-sensitive: true` (DM's worker then matches case-sensitively).
    pub(crate) fn source_case_sensitive(&self, id: &str) -> bool {
        self.shared.source_case.get(id).copied().unwrap_or(false)
    }

    /// `pointer` as a place that stays valid in another file's context.
    pub(crate) fn elsewhere(&self, pointer: &str) -> String {
        let (l, c) = self.pos(pointer);
        format!("{ELSEWHERE}{l}:{c}{ELSEWHERE}{}", self.input.name)
    }

    /// File, line and column of `pointer` (which may name a place in another file, see [`ELSEWHERE`]).
    fn place(&self, pointer: &str) -> (String, usize, usize) {
        if let Some(rest) = pointer.strip_prefix(ELSEWHERE)
            && let Some((lc, file)) = rest.split_once(ELSEWHERE)
        {
            let (l, c) = lc.split_once(':').unwrap_or(("1", "1"));
            return (file.to_owned(), l.parse().unwrap_or(1), c.parse().unwrap_or(1));
        }
        let (l, c) = self.pos(pointer);
        (self.input.name.clone(), l, c)
    }

    pub(crate) fn invalid(&self, pointer: &str, message: impl Into<String>) -> ConvertError {
        let (line, column) = self.pos(pointer);
        ConvertError::Invalid { file: self.input.name.clone(), line, column, message: message.into() }
    }

    /// A required string.
    pub(crate) fn req_str(&self, obj: &Map<String, Value>, ptr: &str, key: &str) -> Result<String, ConvertError> {
        match obj.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            _ => Err(self.invalid(&join(ptr, key), format!("`{key}` is required (a non-empty string)"))),
        }
    }

    /// An optional string; a non-string value is reported and skipped.
    pub(crate) fn opt_str(&mut self, obj: &Map<String, Value>, ptr: &str, key: &str) -> Option<String> {
        match obj.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null => None,
            _ => {
                self.warn(&join(ptr, key), format!("`{key}` should be a string; not converted"));
                None
            }
        }
    }

    pub(crate) fn opt_i64(&mut self, obj: &Map<String, Value>, ptr: &str, key: &str) -> Option<i64> {
        match obj.get(key)? {
            Value::Number(n) if n.as_i64().is_some() => n.as_i64(),
            Value::String(s) if s.trim().parse::<i64>().is_ok() => s.trim().parse().ok(),
            Value::Null => None,
            _ => {
                self.warn(&join(ptr, key), format!("`{key}` should be an integer; not converted"));
                None
            }
        }
    }

    pub(crate) fn opt_bool(&mut self, obj: &Map<String, Value>, ptr: &str, key: &str) -> Option<bool> {
        match obj.get(key)? {
            Value::Bool(b) => Some(*b),
            Value::Null => None,
            _ => {
                self.warn(&join(ptr, key), format!("`{key}` should be true or false; not converted"));
                None
            }
        }
    }

    pub(crate) fn opt_str_list(&mut self, obj: &Map<String, Value>, ptr: &str, key: &str) -> Option<Vec<String>> {
        match obj.get(key)? {
            Value::Array(items) => {
                let mut out = Vec::new();
                for (i, v) in items.iter().enumerate() {
                    match v {
                        Value::String(s) => out.push(s.clone()),
                        _ => self.warn(&format!("{}/{i}", join(ptr, key)), "expected a string; not converted"),
                    }
                }
                Some(out)
            }
            Value::String(s) => Some(vec![s.clone()]),
            Value::Null => None,
            _ => {
                self.warn(&join(ptr, key), format!("`{key}` should be a list of strings; not converted"));
                None
            }
        }
    }

    /// A port number.
    pub(crate) fn port(&self, obj: &Map<String, Value>, ptr: &str) -> Result<u16, ConvertError> {
        let bad = || self.invalid(&join(ptr, "port"), "`port` is required: a number from 1 to 65535");
        let n = match obj.get("port") {
            Some(Value::Number(n)) => n.as_u64().ok_or_else(bad)?,
            Some(Value::String(s)) => s.trim().parse::<u64>().map_err(|_| bad())?,
            _ => return Err(bad()),
        };
        u16::try_from(n).ok().filter(|p| *p > 0).ok_or_else(bad)
    }

    /// Warn about every key of `obj` not in `known`, using `explain` for keys it knows are unrepresentable.
    pub(crate) fn leftovers(
        &mut self,
        obj: &Map<String, Value>,
        ptr: &str,
        known: &[&str],
        explain: &dyn Fn(&str) -> Option<String>,
        what: &str,
    ) {
        for key in obj.keys() {
            if known.contains(&key.as_str()) {
                continue;
            }
            let msg = explain(key).unwrap_or_else(|| format!("unknown {what} key `{key}`; not converted"));
            self.warn(&join(ptr, key), msg);
        }
    }

    /// A password: `${env:NAME}` placeholder, the variable recorded with its purpose. `None` for absent or empty.
    /// Passwords with the same `identity` (e.g. one target user on one host) share a variable.
    pub(crate) fn password(
        &mut self,
        value: Option<&Value>,
        ptr: &str,
        identity: &str,
        var: &str,
        what: &str,
    ) -> Option<Secret> {
        let v = value?;
        let plain = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Null => return None,
            _ => {
                self.warn(ptr, format!("{what} should be a string; not converted"));
                return None;
            }
        };
        if plain.is_empty() {
            return None;
        }
        let encrypted = if looks_dmctl_encrypted(&plain) {
            " (the file holds a dmctl-encrypted value; DM accepts the encrypted form as is)"
        } else {
            ""
        };
        let loc = self.location(ptr);
        // Equal identities share a variable only when the passwords are equal too (compared by fingerprint).
        let identity = format!("{identity}#{}", Secret::new(plain).fingerprint("convert"));
        let name = self.env.claim_keyed(&identity, var, format!("{what}{encrypted}, from {loc}"));
        Some(Secret::new(format!("${{env:{name}}}")))
    }

    /// TLS paths → contents. CA and certificate are read (public material); the private key becomes an env
    /// placeholder (a secret never goes into the output). Missing files are warnings.
    pub(crate) fn security(&mut self, sec: &Map<String, Value>, ptr: &str, var: &str, what: &str) -> SecuritySpec {
        let base = var.strip_suffix("_SSL_KEY").unwrap_or(var);
        let ca = self.read_pem(sec, ptr, "ssl-ca", what, &format!("{base}_SSL_CA"));
        let cert = self.read_pem(sec, ptr, "ssl-cert", what, &format!("{base}_SSL_CERT"));
        let key = match self.opt_str(sec, ptr, "ssl-key") {
            Some(path) if !path.is_empty() => {
                let full = self.resolve(&path);
                if !full.is_file() {
                    self.warn(
                        &join(ptr, "ssl-key"),
                        format!("cannot read `{}`: set the variable to the key's content", full.display()),
                    );
                }
                let loc = self.location(&join(ptr, "ssl-key"));
                // The same key file shares one variable.
                let identity = format!("{var}#{}", full.display());
                let name =
                    self.env.claim_keyed(&identity, var, format!("content of {what} TLS private key `{path}` ({loc})"));
                Secret::new(format!("${{env:{name}}}"))
            }
            _ => {
                let loc = self.location(ptr);
                let name =
                    self.env.claim(var, format!("{what} TLS private key (PEM; the dmctl file names none, {loc})"));
                self.warn(
                    ptr,
                    format!(
                        "{what}: `ssl-key` is missing; DM's OpenAPI needs all of CA, certificate and key: set \
                         ${{env:{name}}} to it"
                    ),
                );
                Secret::new(format!("${{env:{name}}}"))
            }
        };
        let cert_allowed_cn = self.opt_str_list(sec, ptr, "cert-allowed-cn");
        self.leftovers(
            sec,
            ptr,
            &["ssl-ca", "ssl-cert", "ssl-key", "cert-allowed-cn"],
            &|k| Some(format!("`{k}` is not representable (DM's OpenAPI takes TLS file contents only); not converted")),
            "security",
        );
        SecuritySpec { ssl_ca_content: ca, ssl_cert_content: cert, ssl_key_content: key, cert_allowed_cn }
    }

    /// A PEM file's content (public material: read into the output), or, when it cannot be read, a `${env:NAME}`
    /// placeholder for it (so the output still validates and the variable list says what to set).
    fn read_pem(&mut self, sec: &Map<String, Value>, ptr: &str, key: &str, what: &str, var: &str) -> String {
        let (at, why) = match self.opt_str(sec, ptr, key).filter(|p| !p.is_empty()) {
            None => (
                ptr.to_owned(),
                format!("the dmctl file names no `{key}`; DM's OpenAPI needs all of CA, certificate and key"),
            ),
            Some(path) => {
                let full = self.resolve(&path);
                match std::fs::metadata(&full) {
                    Ok(m) if m.len() > 1024 * 1024 => {
                        (join(ptr, key), format!("`{}` is larger than 1 MiB", full.display()))
                    }
                    _ => match std::fs::read_to_string(&full) {
                        Ok(text) => return text,
                        Err(e) => (join(ptr, key), format!("cannot read `{}` ({e})", full.display())),
                    },
                }
            }
        };
        let loc = self.location(&at);
        let name = self.env.claim(var, format!("{what} `{key}` content (PEM): {why} ({loc})"));
        self.warn(&at, format!("{what}: {why}; its content is the placeholder ${{env:{name}}}"));
        format!("${{env:{name}}}")
    }

    fn resolve(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() { p.to_path_buf() } else { self.input.base_dir.join(p) }
    }
}

/// JSON pointer child.
pub(crate) fn join(ptr: &str, key: &str) -> String {
    format!("{ptr}/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// dmctl `encrypt` output: base64 of nonce + AES-GCM ciphertext + tag, so long and base64-only. A heuristic used
/// only to tell the user what they may put in the variable.
fn looks_dmctl_encrypted(s: &str) -> bool {
    s.len() >= 40
        && s.len().is_multiple_of(4)
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}

/// Environment variable names, unique per purpose.
#[derive(Default)]
pub(crate) struct EnvNames {
    vars: BTreeMap<String, EnvVar>,
    used: BTreeSet<String>,
    by_identity: BTreeMap<String, String>,
}

impl EnvNames {
    pub(crate) fn claim_keyed(&mut self, identity: &str, wanted: &str, purpose: String) -> String {
        if let Some(name) = self.by_identity.get(identity) {
            return name.clone();
        }
        let name = self.claim(wanted, purpose);
        self.by_identity.insert(identity.to_owned(), name.clone());
        name
    }

    pub(crate) fn claim(&mut self, wanted: &str, purpose: String) -> String {
        let base = env_name(wanted);
        let mut name = base.clone();
        let mut n = 2;
        while self.used.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        self.used.insert(name.clone());
        self.vars.insert(name.clone(), EnvVar { name: name.clone(), purpose });
        name
    }

    pub(crate) fn into_vars(self) -> Vec<EnvVar> {
        self.vars.into_values().collect()
    }
}

/// `DM_SOURCE_mysql-01_PASSWORD` → `DM_SOURCE_MYSQL_01_PASSWORD`.
pub fn env_name(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_uppercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_matches('_').to_owned();
    if out.starts_with(|c: char| c.is_ascii_digit()) { format!("_{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_are_sanitized_and_unique() {
        assert_eq!(env_name("DM_SOURCE_mysql-01.a_PASSWORD"), "DM_SOURCE_MYSQL_01_A_PASSWORD");
        let mut e = EnvNames::default();
        assert_eq!(e.claim("DM_X_a", "one".into()), "DM_X_A");
        assert_eq!(e.claim("DM_X-A", "two".into()), "DM_X_A_2");
    }

    #[test]
    fn literal_dollar_braces_are_escaped_but_placeholders_kept() {
        let cfg = ConfigFile { external_sources: vec!["a${b}".into(), "${env:X_1}".into()], ..Default::default() };
        let text = to_yaml(&cfg);
        assert!(text.contains("a$${b}") && text.contains("${env:X_1}") && !text.contains("$${env:X_1}"), "{text}");
    }

    #[test]
    fn lifecycle_defaults_are_left_out() {
        let mut src = SourceSpec {
            source_name: "s".into(),
            host: "h".into(),
            port: 3306,
            user: "u".into(),
            ..Default::default()
        };
        src.lifecycle.ignore_changes.push("password".into());
        let text = to_yaml(&ConfigFile { sources: vec![src], ..Default::default() });
        assert!(
            text.contains("ignore_changes") && !text.contains("allow_restart") && !text.contains("prevent_destroy"),
            "{text}"
        );
    }

    #[test]
    fn encrypted_heuristic() {
        assert!(looks_dmctl_encrypted("YI4n2HlM3w1Hqc1+bG1PaWQ8q1b0t6AxDuhNmYg1ZNWnSs/5xVHU"));
        assert!(!looks_dmctl_encrypted("hunter2"));
    }
}
