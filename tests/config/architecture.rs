//! The engine/CLI boundary and the module graph, enforced (docs/architecture.md).
//!
//! The CLI is `src/cli.rs`, `src/commands/`, `src/ui/` and `src/main.rs`; every other module under `src/` is the
//! engine. Outside comments, an engine file must not mention:
//! - `crate::cli`, `crate::commands`, `clap` (argument types belong to the CLI);
//! - `std::process::exit` or an `EXIT_*` constant (exit codes are the CLI's mapping of typed outcomes);
//! - the `Ui` type, or anything of `crate::ui` other than its pure string helpers `crate::ui::sanitize`,
//!   `crate::ui::redact` and `crate::ui::style` (the engine returns warnings and notes as data; it never prints).
//!
//! And no `live` ↔ `plan` cycle: `src/plan/` reads `crate::live`, so `src/live.rs` must not name `crate::plan`.

use std::path::{Path, PathBuf};

/// The `crate::ui` modules the engine may use: pure functions on strings, no output.
const ALLOWED_UI: [&str; 3] = ["sanitize", "redact", "style"];

/// A rule broken at `file:line`.
#[derive(Debug, PartialEq)]
struct Violation {
    file: String,
    line: usize,
    what: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.what)
    }
}

/// Whether `path` (relative to `src/`, with `/`) is CLI side.
fn is_cli(rel: &str) -> bool {
    rel == "cli.rs" || rel == "main.rs" || rel.starts_with("commands/") || rel.starts_with("ui/")
}

/// The code part of a line: line comments (`//`, `///`, `//!`) dropped. A `//` inside a string literal also cuts
/// the line, which can only hide a mention, never invent one.
fn code(line: &str) -> &str {
    match line.find("//") {
        Some(i) => &line[..i],
        None => line,
    }
}

/// `word` appears in `text` as a whole identifier.
fn has_word(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

/// What an engine source line must not say, if anything.
fn engine_line_problem(line: &str) -> Option<String> {
    let c = code(line);
    for banned in ["crate::cli", "crate::commands", "std::process::exit"] {
        if c.contains(banned) {
            return Some(format!("the engine names `{banned}`"));
        }
    }
    if has_word(c, "clap") {
        return Some("the engine names `clap`".into());
    }
    if has_word(c, "Ui") {
        return Some("the engine names the `Ui` type (return warnings as data instead)".into());
    }
    let ident = |ch: char| ch.is_ascii_alphanumeric() || ch == '_';
    for (i, _) in c.match_indices("EXIT_") {
        if !c[..i].chars().next_back().is_some_and(ident) {
            return Some("the engine names an `EXIT_*` exit code".into());
        }
    }
    for (i, m) in c.match_indices("crate::ui::") {
        let rest = &c[i + m.len()..];
        let names: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => group.split('}').next().unwrap_or("").split(',').map(str::trim).collect(),
            None => vec![rest.split(|ch: char| !ident(ch)).next().unwrap_or("")],
        };
        if let Some(bad) = names.iter().find(|n| !n.is_empty() && !ALLOWED_UI.contains(n)) {
            return Some(format!(
                "the engine uses `crate::ui::{bad}` (allowed: crate::ui::{{{}}})",
                ALLOWED_UI.join(", ")
            ));
        }
    }
    None
}

/// Every `.rs` file under `dir`, as (path relative to `src/` with `/`, full path).
fn sources(src: &Path) -> Vec<(String, PathBuf)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("read src/") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(src, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(src).expect("under src").to_string_lossy().replace('\\', "/");
            (rel, p)
        })
        .collect()
}

/// Check one engine file's text.
fn check_engine_file(rel: &str, text: &str) -> Vec<Violation> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            engine_line_problem(l).map(|what| Violation { file: format!("src/{rel}"), line: i + 1, what })
        })
        .collect()
}

/// The `live` ↔ `plan` cycle: `live.rs` naming `crate::plan` while `src/plan/` names `crate::live`.
fn cycle(files: &[(String, String)]) -> Vec<Violation> {
    let mentions = |rel: &str, what: &str| {
        files
            .iter()
            .filter(|(r, _)| r == rel || (rel.ends_with('/') && r.starts_with(rel)))
            .flat_map(|(r, t)| {
                t.lines().enumerate().filter(|(_, l)| code(l).contains(what)).map(move |(i, _)| (r.clone(), i + 1))
            })
            .collect::<Vec<_>>()
    };
    let live_to_plan = mentions("live.rs", "crate::plan");
    let plan_to_live = mentions("plan/", "crate::live");
    if live_to_plan.is_empty() || plan_to_live.is_empty() {
        return vec![];
    }
    let (pf, pl) = &plan_to_live[0];
    live_to_plan
        .into_iter()
        .map(|(file, line)| Violation {
            file: format!("src/{file}"),
            line,
            what: format!("`live` names `crate::plan` while `plan` names `crate::live` (src/{pf}:{pl}): a cycle"),
        })
        .collect()
}

#[test]
fn the_engine_does_not_depend_on_the_cli_and_live_plan_have_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files: Vec<(String, String)> = sources(&src)
        .into_iter()
        .map(|(rel, p)| {
            let text = std::fs::read_to_string(&p).expect("read source");
            (rel, text)
        })
        .collect();
    // The scan saw the tree (a wrong path must not pass by finding nothing).
    assert!(files.iter().any(|(r, _)| r == "pipeline.rs") && files.iter().any(|(r, _)| r == "commands/plan.rs"));
    let engine_files = files.iter().filter(|(r, _)| !is_cli(r)).count();
    assert!(engine_files > 50, "only {engine_files} engine files found");
    let mut violations: Vec<Violation> =
        files.iter().filter(|(r, _)| !is_cli(r)).flat_map(|(r, t)| check_engine_file(r, t)).collect();
    violations.extend(cycle(&files));
    let list: Vec<String> = violations.iter().map(ToString::to_string).collect();
    assert!(list.is_empty(), "module boundary broken (docs/architecture.md):\n{}", list.join("\n"));
}

#[test]
fn main_rs_stays_small() {
    let main = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/main.rs")).expect("main.rs");
    assert!(main.lines().count() < 30, "src/main.rs has {} lines", main.lines().count());
}

#[test]
fn the_scanner_finds_planted_violations() {
    let planted = "use crate::cli::PlanArgs;\n\
                   use crate::commands::EXIT_OK;\n\
                   fn f(ui: &Ui) {}\n\
                   use crate::ui::{sanitize, Data};\n\
                   let x = crate::ui::eprint(\"x\");\n\
                   std::process::exit(2);\n\
                   #[derive(clap::Args)]\n\
                   return EXIT_CHANGES;\n\
                   // a comment may say crate::cli and &Ui\n\
                   use crate::ui::{redact, sanitize};\n\
                   let s = crate::ui::style::Style::new(true);\n\
                   let n = MY_EXIT_CODE + Uid;\n";
    let v = check_engine_file("x.rs", planted);
    let lines: Vec<usize> = v.iter().map(|v| v.line).collect();
    assert_eq!(lines, [1, 2, 3, 4, 5, 6, 7, 8], "{v:?}");
    assert_eq!(v[0].to_string(), "src/x.rs:1: the engine names `crate::cli`");
    assert!(v[3].what.contains("crate::ui::Data"), "{}", v[3]);

    let files = vec![
        ("live.rs".to_string(), "use std::x;\nuse crate::plan::Address;\n".to_string()),
        ("plan/safe.rs".to_string(), "use crate::live::Live;\n".to_string()),
    ];
    let c = cycle(&files);
    assert_eq!(c.len(), 1, "{c:?}");
    assert!(c[0].to_string().starts_with("src/live.rs:2: `live` names `crate::plan`"), "{}", c[0]);
    // One direction alone is no cycle.
    assert!(cycle(&files[1..]).is_empty());
    assert!(is_cli("commands/plan.rs") && is_cli("ui/style.rs") && !is_cli("clusters.rs") && !is_cli("pipeline.rs"));
}
