//! Loading: discover files, read them safely, parse YAML with spans, validate against the JSON Schema,
//! interpolate `${env:NAME}`, build typed specs, run the semantic checks, merge into [`Desired`].
//!
//! Every problem of every file is collected (nothing stops at the first), then sorted by file and line.

use std::collections::{BTreeSet, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::diag::{FileSource, LoadError, Problem};
use super::interp;
use super::model::{ConfigFile, Desired, Origin, SourceSpec, TaskSpec};
use super::semantic;
use super::yaml::{self, Document, NodeSpan, Pos};

/// Files larger than this are refused before they are read.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;
/// Directories deeper than this below a given path are not searched.
const MAX_DIR_DEPTH: usize = 32;

/// A successful load.
#[derive(Debug)]
pub struct Loaded {
    pub desired: Desired,
    pub warnings: Vec<miette::Report>,
    /// Files skipped as not dm-apply configuration.
    pub skipped: Vec<String>,
}

/// Everything a load found, valid or not (what `validate` prints).
#[derive(Debug, Default)]
pub struct Analysis {
    pub desired: Desired,
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
    /// Number of files read (skipped ones not included).
    pub files: usize,
    /// Files found under a directory and skipped as not dm-apply configuration (see [`is_foreign`]).
    pub skipped: Vec<String>,
}

/// One parsed file and what the later passes need from it.
pub(crate) struct LoadedFile {
    pub file: Arc<FileSource>,
    pub doc: Document,
}

impl LoadedFile {
    /// The span of `pointer` or its nearest ancestor (the file start if none).
    pub fn span(&self, pointer: &str) -> NodeSpan {
        self.doc.nearest(pointer).unwrap_or_else(|| {
            let start = Pos { offset: 0, len: 0, line: 1, column: 1 };
            NodeSpan { value: start, defined: start, key: None }
        })
    }

    /// Position of the key of `pointer` when it has one, else of its value.
    pub fn key_pos(&self, pointer: &str) -> Pos {
        self.span(pointer).key_or_value()
    }

    pub fn value_pos(&self, pointer: &str) -> Pos {
        self.span(pointer).value
    }
}

/// A typed resource with where it came from.
pub(crate) struct Item<T> {
    pub spec: T,
    /// Index into the loaded files.
    pub file: usize,
    /// JSON pointer of the resource, e.g. `/tasks/2`.
    pub pointer: String,
}

/// Load and validate; `Err` holds every error when anything is invalid.
pub fn load(paths: &[PathBuf]) -> Result<Loaded, LoadError> {
    let analysis = analyze(paths);
    finish(analysis)
}

pub(crate) fn finish(analysis: Analysis) -> Result<Loaded, LoadError> {
    if analysis.errors.is_empty() {
        Ok(Loaded {
            desired: analysis.desired,
            warnings: analysis.warnings.into_iter().map(miette::Report::new).collect(),
            skipped: analysis.skipped,
        })
    } else {
        Err(LoadError { errors: analysis.errors, warnings: analysis.warnings })
    }
}

/// The `-v` note for a skipped file.
pub fn skipped_note(file: &str) -> String {
    format!(
        "note: skipped `{file}`: not a dm-apply configuration (no top-level sources, tasks or external_sources); \
         name it with -f to check it anyway"
    )
}

/// Run every pass over `paths`, reading `${env:NAME}` from the process environment.
pub fn analyze(paths: &[PathBuf]) -> Analysis {
    analyze_with_env(paths, &|name| std::env::var(name).ok())
}

/// Like [`analyze`], with an explicit environment (tests).
pub fn analyze_with_env(paths: &[PathBuf], env: &dyn Fn(&str) -> Option<String>) -> Analysis {
    analyze_with_options(paths, env, interp::InterpOptions::default())
}

/// Like [`analyze_with_env`], with interpolation options (`validate --allow-missing-env`).
pub fn analyze_with_options(
    paths: &[PathBuf],
    env: &dyn Fn(&str) -> Option<String>,
    opts: interp::InterpOptions,
) -> Analysis {
    let mut errors = Vec::new();
    let files = discover(paths, &mut errors);
    let mut loaded: Vec<LoadedFile> = Vec::new();
    let mut skipped = Vec::new();
    for (order, (path, from_dir)) in files.iter().enumerate() {
        if let Some(lf) = read_and_parse(path, order, &mut errors) {
            // Only files found by walking a directory may be skipped: a file named with -f is always checked.
            if *from_dir && lf.doc.value.as_ref().is_some_and(is_foreign) {
                skipped.push(lf.file.name.clone());
                continue;
            }
            loaded.push(lf);
        }
    }
    let file_count = files.len() - skipped.len();
    // Only other tools' YAML found: an empty desired state here would make `plan --prune` delete everything.
    if file_count == 0 && !skipped.is_empty() {
        errors.push(
            Problem::error(
                "no_config",
                format!(
                    "no dm-apply configuration found: all {} YAML file(s) under the given directories have none of \
                     the top-level keys sources, tasks or external_sources (first: `{}`)",
                    skipped.len(),
                    skipped[0]
                ),
            )
            .with_help("point -f at the directory that holds the DM configuration (or name a file to check it)"),
        );
    }
    // The skipped files are known only here; every other pass is shared with `analyze_source`.
    Analysis { skipped, ..analyze_parsed(loaded, file_count, errors, env, opts) }
}

/// Run every pass over one in-memory file, as if a file named `name` held `bytes`: the same size limit, UTF-8
/// check, parsing, schema, interpolation and semantic checks as [`analyze_with_env`] (which shares this code), for
/// callers that do not have a path (the fuzz target, property tests, editors).
pub fn analyze_source(name: &str, bytes: &[u8], env: &dyn Fn(&str) -> Option<String>) -> Analysis {
    let mut errors = Vec::new();
    let mut loaded = Vec::new();
    if bytes.len() as u64 > MAX_FILE_BYTES {
        errors.push(too_large(name, 0, Some(bytes.len() as u64)));
    } else if let Some(lf) = parse_bytes(name, 0, bytes.to_vec(), &mut errors) {
        loaded.push(lf);
    }
    analyze_parsed(loaded, 1, errors, env, interp::InterpOptions::default())
}

/// The passes after reading: schema, interpolation, typed specs, semantic checks, merge.
fn analyze_parsed(
    mut loaded: Vec<LoadedFile>,
    file_count: usize,
    mut errors: Vec<Problem>,
    env: &dyn Fn(&str) -> Option<String>,
    opts: interp::InterpOptions,
) -> Analysis {
    let mut warnings = Vec::new();
    let mut sources: Vec<Item<SourceSpec>> = Vec::new();
    let mut tasks: Vec<Item<TaskSpec>> = Vec::new();
    let mut external: Vec<(usize, String, String)> = Vec::new();
    // Names of resources that failed the schema: still "declared" for cross-reference checks.
    let mut broken_sources: BTreeSet<String> = BTreeSet::new();

    for (fi, lf) in loaded.iter_mut().enumerate() {
        for (pos, msg) in std::mem::take(&mut lf.doc.problems) {
            errors.push(Problem::error("yaml", msg).at(&lf.file, pos, "here"));
        }
        let Some(mut value) = lf.doc.value.take() else { continue };
        let schema_errors = super::schema_errors::check(&value, &lf.doc, &lf.file);
        let broken: HashSet<String> = schema_errors.iter().filter_map(|(p, _)| resource_prefix(p)).collect();
        let invalid_pointers: HashSet<String> = schema_errors.iter().map(|(p, _)| p.clone()).collect();
        // A problem outside any resource (an unknown top-level key, a bad `external_sources` entry) does not stop
        // the resources' own checks, only the whole-file deserialization below.
        let top_level_broken = schema_errors.iter().any(|(p, _)| resource_prefix(p).is_none());
        errors.extend(schema_errors.into_iter().map(|(_, p)| p));

        // `x-` keys only hold anchors; their content already reached the resources through aliases.
        // A top-level key left empty (`sources:` with every entry commented out) means an empty list.
        if let Value::Object(map) = &mut value {
            map.retain(|k, v| !k.starts_with(super::schema::EXTENSION_PREFIX) && !v.is_null());
        }
        interp::interpolate(&mut value, &lf.doc, &lf.file, &invalid_pointers, env, opts, &mut errors, &mut warnings);
        let lf = &*lf;

        // The usual case, nothing reported by the schema: the whole file deserializes in one pass, read from the
        // value in place (no copy of it).
        let whole = (broken.is_empty() && !top_level_broken).then(|| ConfigFile::deserialize(&value));
        if let Some(Ok(file)) = whole {
            sources.extend(file.sources.into_iter().enumerate().map(|(i, spec)| Item {
                spec,
                file: fi,
                pointer: format!("/sources/{i}"),
            }));
            tasks.extend(file.tasks.into_iter().enumerate().map(|(i, spec)| Item {
                spec,
                file: fi,
                pointer: format!("/tasks/{i}"),
            }));
        } else {
            // Typed resources, one at a time, so one broken resource does not hide the others from later checks.
            if let Some(items) = value.get("sources").and_then(Value::as_array) {
                for (i, item) in items.iter().enumerate() {
                    let pointer = format!("/sources/{i}");
                    if broken.contains(&pointer) {
                        if let Some(n) = item.get("source_name").and_then(Value::as_str) {
                            broken_sources.insert(n.to_owned());
                        }
                        continue;
                    }
                    match SourceSpec::deserialize(item) {
                        Ok(spec) => sources.push(Item { spec, file: fi, pointer }),
                        Err(e) => errors.push(typed_error(lf, &pointer, &e)),
                    }
                }
            }
            if let Some(items) = value.get("tasks").and_then(Value::as_array) {
                for (i, item) in items.iter().enumerate() {
                    let pointer = format!("/tasks/{i}");
                    if broken.contains(&pointer) {
                        continue;
                    }
                    match TaskSpec::deserialize(item) {
                        Ok(spec) => tasks.push(Item { spec, file: fi, pointer }),
                        Err(e) => errors.push(typed_error(lf, &pointer, &e)),
                    }
                }
            }
            // The whole file must also deserialize (catches anything the per-resource pass did not look at).
            if let Some(Err(e)) = whole {
                errors.push(typed_error(lf, "", &e));
            }
        }
        if let Some(items) = value.get("external_sources").and_then(Value::as_array) {
            for (i, item) in items.iter().enumerate() {
                if let Some(n) = item.as_str() {
                    external.push((fi, format!("/external_sources/{i}"), n.to_owned()));
                }
            }
        }
        // The value is no longer needed (the typed resources and the spans are): freed here, before the desired
        // state is built.
    }

    let ctx = semantic::Context {
        files: &loaded,
        sources: &sources,
        tasks: &tasks,
        external: &external,
        broken_sources: &broken_sources,
    };
    semantic::check(&ctx, &mut errors, &mut warnings);

    let mut desired = Desired::default();
    for item in sources {
        let origin = origin(&loaded[item.file], &item.pointer);
        desired.sources.entry(item.spec.source_name.clone()).or_insert((item.spec, origin));
    }
    for item in tasks {
        let origin = origin(&loaded[item.file], &item.pointer);
        desired.tasks.entry(item.spec.name.clone()).or_insert((item.spec, origin));
    }
    desired.external_sources = external.into_iter().map(|(_, _, n)| n).collect();

    errors.sort_by_key(Problem::sort_key);
    warnings.sort_by_key(Problem::sort_key);
    cap(&mut errors, "errors");
    cap(&mut warnings, "warnings");
    Analysis { desired, errors, warnings, files: file_count, skipped: Vec::new() }
}

/// Most errors (and most warnings) one load reports; the rest are counted in a final note.
pub const MAX_REPORTED: usize = 100;

/// Aliases multiply one written problem into thousands (a 2.5 KB file of nested aliases to a malformed
/// `${env:..}` gave 21,903 errors, about 15 s and megabytes of snippets; found by fuzzing). Past the first
/// [`MAX_REPORTED`] problems, only their number is told.
fn cap(problems: &mut Vec<Problem>, what: &str) {
    if problems.len() <= MAX_REPORTED {
        return;
    }
    let more = problems.len() - MAX_REPORTED;
    let severity_error = problems[0].is_error();
    problems.truncate(MAX_REPORTED);
    let msg = format!("{more} more {what} not shown (only the first {MAX_REPORTED} are reported)");
    let help =
        "fix the ones shown and run again; many similar problems often come from one anchor used through aliases";
    let note = if severity_error { Problem::error("too_many", msg) } else { Problem::warning("too_many", msg) };
    problems.push(note.with_help(help));
}

fn origin(lf: &LoadedFile, pointer: &str) -> Origin {
    let pos = lf.value_pos(pointer);
    Origin { file: lf.file.name.clone(), line: pos.line, column: pos.column }
}

/// `/sources/3/port` → `/sources/3`.
fn resource_prefix(pointer: &str) -> Option<String> {
    let mut parts = pointer.split('/').skip(1);
    let kind = parts.next()?;
    let idx = parts.next()?;
    if (kind == "sources" || kind == "tasks") && idx.parse::<usize>().is_ok() {
        Some(format!("/{kind}/{idx}"))
    } else {
        None
    }
}

/// A typed-deserialization failure the schema did not catch (should not happen; kept as a safety net). serde's
/// message can quote the offending value, so quoted text is dropped from it.
fn typed_error(lf: &LoadedFile, pointer: &str, e: &serde_json::Error) -> Problem {
    let msg = e.to_string();
    let mut clean = String::new();
    let mut in_quote = false;
    for c in msg.chars() {
        if c == '"' || c == '`' {
            if !in_quote {
                clean.push_str("`…`");
            }
            in_quote = !in_quote;
        } else if !in_quote {
            clean.push(c);
        }
    }
    Problem::error("type", format!("invalid configuration: {clean}")).at(&lf.file, lf.key_pos(pointer), "in this item")
}

/// dm-apply's top-level keys.
const TOP_LEVEL_KEYS: [&str; 3] = ["sources", "tasks", "external_sources"];

/// Whether a document found under a directory is some other tool's YAML (a CI workflow, a Helm values file...):
/// a mapping with none of dm-apply's top-level keys. A key within a small edit distance of one of them (`task`,
/// `source`, `external-sources`) keeps the file in, so that the typo is reported ("did you mean") rather than the
/// file silently ignored.
pub fn is_foreign(value: &Value) -> bool {
    let Value::Object(map) = value else { return false };
    // The same nearness as the "did you mean" of the unknown-key error, so a kept near miss always gets one.
    !map.keys().any(|k| super::diag::did_you_mean(&k.replace('-', "_"), TOP_LEVEL_KEYS).is_some())
}

/// Expand the given paths into files: a file as is, a directory recursively (sorted, `*.yaml`/`*.yml`, hidden
/// entries skipped). Each file is read once even when named twice.
/// Each file comes with whether it was found by walking a directory.
fn discover(paths: &[PathBuf], errors: &mut Vec<Problem>) -> Vec<(PathBuf, bool)> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for path in paths {
        let shown = path.display().to_string();
        match std::fs::metadata(path) {
            Err(e) => errors.push(
                Problem::error("io", format!("cannot read `{shown}`: {}", io_reason(&e)))
                    .with_help("check the path given with -f/--file"),
            ),
            Ok(m) if m.is_dir() => {
                if walk(path, 0, &mut out, &mut seen, errors) == 0 {
                    errors.push(
                        Problem::error("no_files", format!("no *.yaml or *.yml files in directory `{shown}`"))
                            .with_help("point -f at a configuration file or a directory that contains some"),
                    );
                }
            }
            Ok(_) => {
                let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
                if seen.insert(key) {
                    out.push((path.clone(), false));
                }
            }
        }
    }
    out
}

/// Returns how many YAML files were found (including ones already seen).
fn walk(
    dir: &Path,
    depth: usize,
    out: &mut Vec<(PathBuf, bool)>,
    seen: &mut HashSet<PathBuf>,
    errors: &mut Vec<Problem>,
) -> usize {
    if depth > MAX_DIR_DEPTH {
        return 0;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            errors.push(Problem::error("io", format!("cannot read directory `{}`: {}", dir.display(), io_reason(&e))));
            return 0;
        }
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    let mut found = 0;
    for entry in entries {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        // Symlinked directories are not followed (no loops); symlinked files are.
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            found += walk(&path, depth + 1, out, seen, errors);
        } else if (name.ends_with(".yaml") || name.ends_with(".yml"))
            && std::fs::metadata(&path).is_ok_and(|m| m.is_file())
        {
            found += 1;
            let key = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            if seen.insert(key) {
                out.push((path, true));
            }
        }
    }
    found
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    }
}

/// The "file too large" error; `size` is `None` for a stream only known to exceed the limit.
fn too_large(name: &str, order: usize, size: Option<u64>) -> Problem {
    let limit = MAX_FILE_BYTES / (1024 * 1024);
    let msg = match size {
        Some(size) => format!(
            "`{name}` is too large ({:.1} MiB); configuration files are limited to {limit} MiB",
            size as f64 / (1024.0 * 1024.0)
        ),
        None => format!("`{name}` is larger than the {limit} MiB limit of configuration files"),
    };
    Problem::error("too_large", msg)
        .with_help("split the configuration into several files in a directory")
        .in_file(&FileSource::new(name, order, "", &[]))
}

fn read_and_parse(path: &Path, order: usize, errors: &mut Vec<Problem>) -> Option<LoadedFile> {
    let name = path.display().to_string();
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            errors.push(
                Problem::error("io", format!("cannot read `{name}`: {}", io_reason(&e))).in_file(&FileSource::new(
                    &name,
                    order,
                    "",
                    &[],
                )),
            );
            return None;
        }
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size > MAX_FILE_BYTES {
        errors.push(too_large(&name, order, Some(size)));
        return None;
    }
    // The size can change between stat and read (or the file is a pipe): never read more than the limit. Sized
    // from the stat, a large file is read in one go rather than into a buffer doubled twenty times.
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).saturating_add(1));
    if let Err(e) = (&mut file).take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes) {
        errors.push(
            Problem::error("io", format!("cannot read `{name}`: {}", io_reason(&e))).in_file(&FileSource::new(
                &name,
                order,
                "",
                &[],
            )),
        );
        return None;
    }
    if bytes.len() as u64 > MAX_FILE_BYTES {
        errors.push(too_large(&name, order, None));
        return None;
    }
    parse_bytes(&name, order, bytes, errors)
}

/// UTF-8 check and YAML parse of one file's content (at most [`MAX_FILE_BYTES`]).
fn parse_bytes(name: &str, order: usize, bytes: Vec<u8>, errors: &mut Vec<Problem>) -> Option<LoadedFile> {
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let bytes = e.as_bytes();
            let prefix = String::from_utf8_lossy(&bytes[..valid]).into_owned();
            let line = prefix.matches('\n').count() + 1;
            let column = prefix.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            // Show the text up to the end of the bad line (the bad bytes as U+FFFD), secret-looking values hidden.
            let line_end = bytes[valid..].iter().position(|b| *b == b'\n').map_or(bytes.len(), |i| valid + i);
            let shown = format!("{prefix}{}", String::from_utf8_lossy(&bytes[valid..line_end]));
            let file = FileSource::new(name, order, &shown, &yaml::heuristic_secret_ranges(&shown));
            errors.push(
                Problem::error(
                    "utf8",
                    format!("`{name}` is not valid UTF-8 (invalid byte at line {line}, column {column})"),
                )
                .at(&file, Pos { offset: valid, len: '\u{FFFD}'.len_utf8(), line, column }, "invalid UTF-8 here")
                .with_help("save the file as UTF-8"),
            );
            return None;
        }
    };
    // YAML counts a lone `\r` (classic Mac OS line ending) as a line break, but the diagnostics count `\n` only
    // (miette's snippets, `file:line:col`, the duplicate-key lookup), so every position after one was wrong, past
    // the end of the file (found by fuzzing). No current editor saves such files: refuse them, clearly.
    if let Some(cr) = text.contains('\r').then(|| lone_carriage_return(&text)).flatten() {
        let prefix = &text[..cr];
        let line = prefix.matches('\n').count() + 1;
        let column = prefix.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        // FileSource shows every `\r` as a space (a raw carriage return would make the terminal overwrite the
        // snippet) but finds secrets with `\r` still counted as a line break, as YAML does.
        let file = FileSource::new(name, order, &text, &yaml::heuristic_secret_ranges(&text));
        errors.push(
            Problem::error(
                "line_break",
                format!(
                    "`{name}` uses a carriage return without a line feed as a line break (line {line}, column {column})"
                ),
            )
            .at(&file, Pos { offset: cr, len: 1, line, column }, "carriage return here")
            .with_help("save the file with Unix (LF) or Windows (CRLF) line endings"),
        );
        return None;
    }
    // The document keeps the text (the fast reader reads it again to place a problem).
    match yaml::parse_owned(text) {
        Ok(doc) => {
            let file = FileSource::new(name, order, doc.text(), &doc.secret_ranges);
            Some(LoadedFile { file, doc })
        }
        Err(unparsed) => {
            let yaml::Unparsed { error, text } = *unparsed;
            let file = FileSource::new(name, order, &text, &yaml::heuristic_secret_ranges(&text));
            errors.push(yaml::syntax_problem(&error, &file, &text));
            None
        }
    }
}

/// The first `\r` not followed by `\n`.
fn lone_carriage_return(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    b.iter().enumerate().position(|(i, c)| *c == b'\r' && b.get(i + 1) != Some(&b'\n'))
}

#[cfg(test)]
mod foreign_file_tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    const WORKFLOW: &str = "name: plan\non:\n  pull_request: {}\njobs:\n  plan:\n    runs-on: ubuntu-latest\n";
    const DM: &str = "external_sources: [s1]\n";

    #[test]
    fn classification() {
        let v = |t: &str| yaml::parse(t).unwrap().value.unwrap();
        assert!(is_foreign(&v(WORKFLOW)));
        assert!(is_foreign(&v("stages: [plan]\nvariables: {A: b}\nplan: {script: [x]}\n")));
        assert!(!is_foreign(&v(DM)));
        assert!(!is_foreign(&v("sources: []\nname: x\n")));
        // Near misses stay in, to be reported.
        for near in ["task: []\n", "source: []\n", "external-sources: []\n", "Tasks: []\n", "sorces: []\n"] {
            assert!(!is_foreign(&v(near)), "{near}");
        }
        // Not a mapping: validated strictly.
        assert!(!is_foreign(&v("- a\n- b\n")));
    }

    #[test]
    fn directory_walk_skips_foreign_files_but_named_files_are_strict() {
        let dir = tempfile::tempdir().unwrap();
        let wf = write(dir.path(), "ci/github/plan.yml", WORKFLOW);
        write(dir.path(), "dm.yaml", DM);
        let a = analyze_with_env(&[dir.path().to_path_buf()], &|_| None);
        assert!(a.errors.is_empty(), "{:?}", a.errors);
        assert_eq!(a.files, 1);
        assert_eq!(a.skipped, [wf.display().to_string()]);
        assert_eq!(a.desired.external_sources.len(), 1);

        let a = analyze_with_env(std::slice::from_ref(&wf), &|_| None);
        assert!(!a.errors.is_empty(), "a file named explicitly must be validated strictly");
        assert!(a.skipped.is_empty());
    }

    #[test]
    fn a_directory_of_only_foreign_files_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "ci/plan.yml", WORKFLOW);
        let a = analyze_with_env(&[dir.path().to_path_buf()], &|_| None);
        assert_eq!(a.skipped.len(), 1);
        let text: Vec<String> = a.errors.iter().map(render_plain_problem).collect();
        assert!(text.iter().any(|t| t.contains("no dm-apply configuration found")), "{text:?}");
    }

    #[test]
    fn near_miss_under_a_directory_is_an_error_with_a_suggestion() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "typo.yaml", "task:\n  - name: t\n");
        let a = analyze_with_env(&[dir.path().to_path_buf()], &|_| None);
        assert!(a.skipped.is_empty());
        let text: Vec<String> = a.errors.iter().map(render_plain_problem).collect();
        assert!(text.iter().any(|t| t.contains("did you mean") && t.contains("tasks")), "{text:?}");
    }

    fn render_plain_problem(p: &Problem) -> String {
        super::super::diag::render_plain(p)
    }
}
