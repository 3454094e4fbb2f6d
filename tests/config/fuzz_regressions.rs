//! Inputs the fuzzer (docs/fuzzing.md) found crashing the loader, kept so they stay fixed: each goes through the
//! public loader, from memory and from a real file, and must give clean diagnostics. Also checks that the
//! in-memory entry point the fuzzer uses is the same pipeline as the path-based one.

use std::path::{Path, PathBuf};

use dm_apply::config::{Analysis, LoadError, analyze_source, analyze_with_env, render_plain};

fn env(name: &str) -> Option<String> {
    (name != "UNSET").then(|| format!("value-of-{name}"))
}

/// Everything a user would see of an analysis: each problem's code, location and rendered report.
fn shown(a: &Analysis) -> Vec<String> {
    a.errors
        .iter()
        .chain(a.warnings.iter())
        .map(|p| {
            let plain = render_plain(p);
            assert!(!plain.chars().any(|c| c.is_control() && c != '\n' && c != '\t'), "control character in {plain:?}");
            format!("{} {} {plain}", p.code, p.location())
        })
        .collect()
}

/// Run `bytes` through both entry points; they must agree, and every diagnostic must render.
fn analyze_both(name: &str, bytes: &[u8]) -> Analysis {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    let from_file = analyze_with_env(std::slice::from_ref(&path), &env);
    let from_memory = analyze_source(&path.display().to_string(), bytes, &env);
    assert_eq!(shown(&from_file), shown(&from_memory), "{name}: file and in-memory analyses differ");
    assert_eq!(from_file.desired.sources.len(), from_memory.desired.sources.len());
    assert_eq!(from_file.desired.tasks.len(), from_memory.desired.tasks.len());
    let lines = bytes.split(|b| *b == b'\n').count();
    for p in from_memory.errors.iter().chain(from_memory.warnings.iter()) {
        assert!(p.line <= lines + 1, "{name}: line {} beyond the file ({lines} lines): {}", p.line, p.message);
        let _ = format!("{:?}", miette::Report::new(p.clone()));
    }
    if !from_memory.errors.is_empty() {
        let _ = render_plain(&LoadError { errors: from_memory.errors.clone(), warnings: from_memory.warnings.clone() });
    }
    from_memory
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml") {
            out.push(p);
        }
    }
}

#[test]
fn in_memory_entry_point_matches_the_file_loader() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    yaml_files(&root.join("examples"), &mut files);
    yaml_files(&root.join("tests/corpus"), &mut files);
    yaml_files(&root.join("fuzz/seeds"), &mut files);
    assert!(files.len() > 20, "corpus not found");
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        analyze_both(&f.file_name().unwrap().to_string_lossy(), &bytes);
    }
}

#[test]
fn in_memory_size_limit() {
    let big = vec![b'#'; dm_apply::config::MAX_FILE_BYTES as usize + 1];
    let a = analyze_source("big.yaml", &big, &env);
    assert_eq!(a.errors.len(), 1);
    assert_eq!(a.errors[0].code, "dm_apply::config::too_large");
    assert!(render_plain(&a.errors[0]).contains("limited to 8 MiB"));
}

/// Every file under tests/fuzz-regressions/ (the findings, one per file, named after what they hit) gives
/// diagnostics and no panic.
#[test]
fn every_fuzz_finding_gives_clean_diagnostics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut files = Vec::new();
    yaml_files(&dir, &mut files);
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        analyze_both(&f.file_name().unwrap().to_string_lossy(), &bytes);
    }
}

/// Finding 1: YAML counts a lone `\r` as a line break, the diagnostics did not, so positions after one pointed
/// past the end of the file. Such files are now refused at the carriage return; `\r\n` files still load.
#[test]
fn lone_carriage_return_is_refused_where_it_is() {
    let a = analyze_both("cr.yaml", b"sources:\n  - source_name: a\r    host: h\n");
    assert_eq!(a.errors.len(), 1, "{:?}", shown(&a));
    let e = &a.errors[0];
    assert_eq!(e.code, "dm_apply::config::line_break");
    assert_eq!((e.line, e.column), (2, 19));
    let out = render_plain(e);
    assert!(out.contains("carriage return here") && out.contains("LF"), "{out}");
    assert!(!out.contains('\r'), "raw carriage return in the rendered snippet");

    let crlf = b"sources:\r\n  - source_name: a\r\n    host: h\r\n    port: 3306\r\n    user: u\r\n";
    let a = analyze_both("crlf.yaml", crlf);
    assert!(a.errors.is_empty(), "{:?}", shown(&a));
    assert_eq!(a.desired.sources.len(), 1);
}

/// The same finding in the file the fuzzer produced (a mutated example with carriage returns mid-line).
#[test]
fn fuzz_input_with_carriage_returns() {
    let bytes = include_bytes!("../fuzz-regressions/lone-carriage-return.yaml");
    let a = analyze_both("lone-carriage-return.yaml", bytes);
    assert!(a.errors.iter().any(|e| e.code == "dm_apply::config::line_break"), "{:?}", shown(&a));
}

/// Finding 2: control characters of the file reached the terminal, raw in the snippet next to a syntax error
/// (`\x1b[2J` clears the screen) and decoded in messages quoting a key (`"\e]0;..."` retitles the terminal).
#[test]
fn control_characters_are_shown_escaped() {
    let a = analyze_both("esc.yaml", include_bytes!("../fuzz-regressions/raw-escape-next-to-syntax-error.yaml"));
    assert_eq!(a.errors[0].code, "dm_apply::config::yaml");
    assert!(render_plain(&a.errors[0]).contains("bad: ?[2J"));

    let a = analyze_both("key.yaml", include_bytes!("../fuzz-regressions/escaped-control-chars-in-key.yaml"));
    let unknown = a.errors.iter().find(|e| e.code == "dm_apply::config::unknown_key").expect("unknown key");
    assert!(unknown.message.contains(r"\u{1b}]0;pwned\u{7}\u{1b}[31mhost"), "{}", unknown.message);
}

/// Finding 3 (a libFuzzer timeout): nested aliases to a list holding a malformed `${env:..}` reference turned a
/// 2.5 KB file into 21,903 errors, about 15 s of rendering and megabytes of output. A load now reports at most
/// `MAX_REPORTED` errors, then one note with the number left out.
#[test]
fn alias_amplified_problems_are_capped() {
    let a = analyze_both("amplified.yaml", include_bytes!("../fuzz-regressions/alias-amplified-problems.yaml"));
    let max = dm_apply::config::MAX_REPORTED;
    assert_eq!(a.errors.len(), max + 1);
    let note = a.errors.last().unwrap();
    assert_eq!(note.code, "dm_apply::config::too_many");
    assert!(
        note.message.ends_with(&format!("more errors not shown (only the first {max} are reported)")),
        "{}",
        note.message
    );
    let hidden: usize = note.message.split(' ').next().unwrap().parse().unwrap();
    assert!(hidden > 10_000, "{}", note.message);
}
