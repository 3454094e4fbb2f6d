//! The CI recipes in examples/ci/: each file is valid YAML of the expected shape, and every `dm-apply ...` command
//! it runs exists with those flags (parsed with the real clap definition). `validate -f examples` skips them.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use clap::error::ErrorKind;
use dm_apply::cli::Cli;
use serde_json::Value;

fn recipes() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in ["github", "gitlab"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci").join(sub);
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn parse(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{}: invalid YAML: {e}", path.display()))
}

/// Shell scripts of a workflow: GitHub `jobs.*.steps[*].run`, GitLab `*.script`/`before_script`/`after_script`.
fn scripts(path: &Path, doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let obj = doc.as_object().unwrap_or_else(|| panic!("{}: not a mapping", path.display()));
    if let Some(jobs) = obj.get("jobs").and_then(Value::as_object) {
        assert!(obj.contains_key("on"), "{}: a GitHub workflow needs `on`", path.display());
        for (name, job) in jobs {
            let steps = job.get("steps").and_then(Value::as_array);
            let steps = steps.unwrap_or_else(|| panic!("{}: job {name} has no steps", path.display()));
            for step in steps {
                if let Some(run) = step.get("run").and_then(Value::as_str) {
                    out.push(run.to_owned());
                } else {
                    assert!(step.get("uses").is_some(), "{}: a step needs `run` or `uses`", path.display());
                }
            }
        }
    } else {
        assert!(obj.contains_key("stages"), "{}: neither a GitHub workflow nor a GitLab pipeline", path.display());
        for (name, job) in obj {
            let Some(job) = job.as_object() else { continue };
            for key in ["before_script", "script", "after_script"] {
                match job.get(key) {
                    Some(Value::Array(lines)) => {
                        out.extend(lines.iter().map(|l| l.as_str().unwrap_or_default().to_owned()))
                    }
                    Some(Value::String(s)) => out.push(s.clone()),
                    Some(other) => panic!("{}: {name}.{key} is {other}", path.display()),
                    None => {}
                }
            }
        }
    }
    out
}

/// Shell words of a script, with line continuations joined; `None` marks a command separator or redirection.
fn words(script: &str) -> Vec<Option<String>> {
    let text = script.replace("\\\n", " ");
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let mut chars = text.chars().peekable();
    let flush = |cur: &mut String, has: &mut bool, out: &mut Vec<Option<String>>| {
        if *has {
            out.push(Some(std::mem::take(cur)));
            *has = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                has = true;
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    cur.push(d);
                }
            }
            '"' => {
                has = true;
                while let Some(d) = chars.next() {
                    match d {
                        '"' => break,
                        '\\' => {
                            if let Some(e) = chars.next() {
                                cur.push(e);
                            }
                        }
                        _ => cur.push(d),
                    }
                }
            }
            '\\' => {
                has = true;
                if let Some(e) = chars.next() {
                    cur.push(e);
                }
            }
            '#' if !has => {
                // A comment runs to the end of the line.
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
                out.push(None);
            }
            '>' | '<' => {
                // `2> file`: the descriptor number is not an argument.
                if has && cur.chars().all(|c| c.is_ascii_digit()) {
                    cur.clear();
                    has = false;
                }
                flush(&mut cur, &mut has, &mut out);
                out.push(None);
            }
            '|' | ';' | '&' | '\n' | '(' | ')' => {
                flush(&mut cur, &mut has, &mut out);
                out.push(None);
            }
            c if c.is_whitespace() => flush(&mut cur, &mut has, &mut out),
            c => {
                has = true;
                cur.push(c);
            }
        }
    }
    flush(&mut cur, &mut has, &mut out);
    out
}

/// Every `dm-apply ...` command line in a script (arguments up to the first separator or redirection).
fn dm_apply_commands(script: &str) -> Vec<Vec<String>> {
    let w = words(script);
    let mut out = Vec::new();
    for (i, word) in w.iter().enumerate() {
        let starts = word.as_deref() == Some("dm-apply")
            && (i == 0
                || w[i - 1].is_none()
                || matches!(w[i - 1].as_deref(), Some("!" | "if" | "then" | "else" | "do")));
        if starts {
            let args: Vec<String> = w[i..].iter().map_while(|x| x.clone()).collect();
            out.push(args);
        }
    }
    out
}

#[test]
fn word_splitting() {
    let cmds = dm_apply_commands(
        "set +e\ndm-apply plan -f \"$DM_CONFIG\" -o markdown \\\n  --out plan.json > plan.md 2> plan.err; code=$?\n\
         echo \"dm-apply plan is quoted\" # dm-apply in a comment\nif ! dm-apply drift -f dm/; then exit 1; fi\n",
    );
    assert_eq!(
        cmds,
        [
            vec!["dm-apply", "plan", "-f", "$DM_CONFIG", "-o", "markdown", "--out", "plan.json"],
            vec!["dm-apply", "drift", "-f", "dm/"],
        ]
    );
}

#[test]
fn every_dm_apply_command_in_the_recipes_exists_with_those_flags() {
    let files = recipes();
    assert!(files.len() >= 4, "expected the GitHub and GitLab recipes, found {files:?}");
    let mut seen = std::collections::BTreeSet::new();
    for path in &files {
        let doc = parse(path);
        let mut count = 0;
        for script in scripts(path, &doc) {
            for cmd in dm_apply_commands(&script) {
                count += 1;
                match Cli::try_parse_from(&cmd) {
                    Ok(cli) => {
                        seen.insert(format!("{:?}", cli.command).split('(').next().unwrap_or_default().to_owned());
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::DisplayVersion | ErrorKind::DisplayHelp) => {}
                    Err(e) => panic!("{}: `{}` is not a valid dm-apply command:\n{e}", path.display(), cmd.join(" ")),
                }
            }
        }
        assert!(count > 0, "{} runs no dm-apply command", path.display());
    }
    for needed in ["Validate", "Plan", "Apply", "Drift"] {
        assert!(seen.contains(needed), "no recipe runs `dm-apply {}`", needed.to_lowercase());
    }
}

#[test]
fn recipes_follow_the_review_then_apply_flow() {
    let text = |p: &str| std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(p)).unwrap();
    let plan = text("examples/ci/github/dm-plan.yml");
    assert!(plan.contains("--detailed-exitcode") && plan.contains("-o markdown") && plan.contains("--out plan.json"));
    assert!(plan.contains("<!-- dm-apply-plan") && plan.contains("--method PATCH"), "comment updated in place");
    let apply = text("examples/ci/github/dm-apply.yml");
    assert!(apply.contains("dm-apply apply --plan"), "applies the reviewed saved plan");
    assert!(apply.contains("stale"));
    let drift = text("examples/ci/github/dm-drift.yml");
    assert!(drift.contains("schedule:") && drift.contains("exitcode == '2'"));
    let gitlab = text("examples/ci/gitlab/gitlab-ci.yml");
    for needle in ["merge_request_event", "dm-apply apply --plan", "schedule", "--detailed-exitcode"] {
        assert!(gitlab.contains(needle), "gitlab recipe lacks {needle}");
    }
}

#[test]
fn validate_on_the_examples_directory_skips_the_recipes_but_not_when_named() {
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_dm-apply"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .env("NO_COLOR", "1")
            .env("DM_SOURCE_PASSWORD", "x")
            .env("DM_TARGET_PASSWORD", "y")
            .output()
            .unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let (code, err) = run(&["-v", "validate", "-f", "examples"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("note: skipped `examples/ci/github/dm-plan.yml`"), "{err}");
    let (code, err) = run(&["validate", "-f", "examples"]);
    assert_eq!(code, Some(0));
    assert!(!err.contains("skipped"), "the note is only shown with -v: {err}");
    let (code, err) = run(&["validate", "-f", "examples/ci/github/dm-plan.yml"]);
    assert_eq!(code, Some(1), "a file named with -f is validated strictly: {err}");
    assert!(err.contains("unknown top-level key"), "{err}");
}

#[test]
fn the_example_clusters_file_validates() {
    let o = Command::new(env!("CARGO_BIN_EXE_dm-apply"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["validate", "--clusters", "examples/clusters/clusters.yaml"])
        .env("NO_COLOR", "1")
        .env("DM_SOURCE_PASSWORD", "a")
        .env("DM_TARGET_PASSWORD", "b")
        .env("PROD_SOURCE_PASSWORD", "c")
        .env("PROD_TARGET_PASSWORD", "d")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("[staging] 1 source(s), 1 task(s): valid"), "{err}");
    assert!(err.contains("[production] 4 source(s), 2 task(s): valid"), "{err}");
}

/// The run script of the step named `name` of a GitHub workflow.
fn step_script(path: &Path, name: &str) -> String {
    let doc = parse(path);
    for job in doc["jobs"].as_object().unwrap().values() {
        for step in job["steps"].as_array().unwrap() {
            if step.get("name").and_then(Value::as_str) == Some(name) {
                return step["run"].as_str().unwrap().to_owned();
            }
        }
    }
    panic!("{}: no step named {name}", path.display());
}

#[test]
fn the_github_plan_recipe_posts_every_comment_whole_and_never_cuts_the_plan() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci/github/dm-plan.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("head -c"), "the recipe must not cut dm-apply's output");
    assert!(text.contains("--split-comments comments"), "long plans are posted as several comments");
    let script = step_script(&path, "Post or update the plan comment");

    // A fake `gh`: lists the comments in existing.txt, records each PATCH/POST body and each DELETE.
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let gh = bin.join("gh");
    std::fs::write(
        &gh,
        r#"#!/bin/bash
out="$FAKE_GH_OUT"
if [ "$1 $2" = "api --method" ]; then
  method=$3; url=$4; n=$(ls "$out" | wc -l)
  body=""
  for a in "$@"; do case "$a" in body=@*) body=${a#body=@};; esac; done
  if [ -n "$body" ]; then cp "$body" "$out/$(printf %03d "$n")-$method-${url##*/}.md"; else touch "$out/$(printf %03d "$n")-$method-${url##*/}"; fi
else
  cat "$FAKE_GH_EXISTING"
fi
"#,
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&gh, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let work = dir.path().join("work");
    let comments = work.join("comments");
    std::fs::create_dir_all(&comments).unwrap();
    // Two comments of the largest size dm-apply writes, the second with multi-byte characters.
    let big = |c: &str| {
        let mut s = String::from("<details><summary>x</summary>\n\n```diff\n");
        while s.len() + c.len() + 40 < 64_000 {
            s.push_str(c);
            if s.len() % 100 < c.len() {
                s.push('\n');
            }
        }
        s.push_str("\n```\n\n</details>\n\nEND-OF-COMMENT\n");
        assert!(s.len() <= 64_000);
        s
    };
    std::fs::write(comments.join("comment-001.md"), big("a")).unwrap();
    std::fs::write(comments.join("comment-002.md"), big("é")).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    // Three comments from an earlier, longer plan: two are updated, the third deleted.
    let existing = dir.path().join("existing.txt");
    std::fs::write(&existing, "11\n12\n13\n").unwrap();
    let status = Command::new("bash")
        .arg("-eo")
        .arg("pipefail")
        .arg("-c")
        .arg(&script)
        .current_dir(&work)
        .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()))
        .env("FAKE_GH_OUT", &out)
        .env("FAKE_GH_EXISTING", &existing)
        .env("GH_TOKEN", "x")
        .env("PR", "7")
        .env("REPO", "o/r")
        .env("SHA", "0123456789abcdef")
        .status()
        .unwrap();
    assert!(status.success());
    let mut calls: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    calls.sort();
    assert_eq!(calls, ["000-PATCH-11.md", "001-PATCH-12.md", "002-DELETE-13"], "{calls:?}");
    for (call, file) in [("000-PATCH-11.md", "comment-001.md"), ("001-PATCH-12.md", "comment-002.md")] {
        let body = std::fs::read_to_string(out.join(call)).unwrap();
        let whole = std::fs::read_to_string(comments.join(file)).unwrap();
        assert!(body.ends_with(&whole), "{call}: the comment is posted whole");
        assert!(body.starts_with("<!-- dm-apply-plan: dm/ part "), "{call}: marked");
        assert!(body.chars().count() <= 65_536 && body.len() <= 65_536, "{call}: {} bytes", body.len());
    }

    // A first run: no comment yet, both are created.
    std::fs::write(&existing, "").unwrap();
    for e in std::fs::read_dir(&out).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    let status = Command::new("bash")
        .args(["-eo", "pipefail", "-c", &script])
        .current_dir(&work)
        .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()))
        .env("FAKE_GH_OUT", &out)
        .env("FAKE_GH_EXISTING", &existing)
        .env("PR", "7")
        .env("REPO", "o/r")
        .env("SHA", "0123456789abcdef")
        .status()
        .unwrap();
    assert!(status.success());
    let mut calls: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    calls.sort();
    assert_eq!(calls, ["000-POST-comments.md", "001-POST-comments.md"], "{calls:?}");
}
