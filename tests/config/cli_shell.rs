//! Shell integration: completion scripts, the generated man page (and its checked-in copy), examples in every
//! subcommand's --help.

use std::process::Command;

use clap::CommandFactory;
use dm_apply::cli::Cli;

fn run(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_dm-apply")).args(args).env("NO_COLOR", "1").output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

fn subcommands() -> Vec<String> {
    Cli::command().get_subcommands().map(|s| s.get_name().to_owned()).collect()
}

#[test]
fn completion_scripts_cover_every_subcommand_and_flag() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let (code, out, err) = run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(err.is_empty(), "{shell}: diagnostics on stderr: {err}");
        for sub in subcommands() {
            assert!(out.contains(&sub), "{shell} completion lacks `{sub}`");
        }
        for flag in ["detailed-exitcode", "auto-approve", "prometheus-textfile", "schema-ref"] {
            assert!(out.contains(flag), "{shell} completion lacks --{flag}");
        }
    }
    let (code, _, err) = run(&["completions", "tcsh"]);
    assert_eq!(code, 1, "a usage error exits 1 (2 means changes/drift)");
    assert!(err.contains("invalid value 'tcsh'"), "{err}");
}

#[test]
fn man_page_is_generated_and_the_checked_in_copy_is_fresh() {
    let (code, out, _) = run(&["man"]);
    assert_eq!(code, 0);
    assert!(out.contains(".TH dm-apply 1"), "{out}");
    for sub in subcommands() {
        assert!(out.contains(&sub), "man page lacks `{sub}`");
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/dm-apply.1");
    if std::env::var_os("UPDATE_MAN").is_some() {
        std::fs::write(path, &out).unwrap();
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == out,
        "docs/dm-apply.1 is stale: regenerate it with `UPDATE_MAN=1 cargo test --test cli_shell` \
         (or `dm-apply man > docs/dm-apply.1`)"
    );
}

#[test]
fn man_out_dir_writes_one_page_per_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(&["man", "--out-dir", &dir.path().display().to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty());
    for sub in subcommands().iter().filter(|s| *s != "help") {
        let page = std::fs::read_to_string(dir.path().join(format!("dm-apply-{sub}.1"))).unwrap();
        assert!(page.contains(&format!(".TH dm-apply-{sub} 1")), "{page}");
        assert!(page.contains(&format!("dm\\-apply {}", sub.replace('-', "\\-"))), "{sub}: usage line missing");
    }
}

#[test]
fn every_subcommand_help_shows_an_example() {
    let cmd = Cli::command();
    for sub in cmd.get_subcommands() {
        let name = sub.get_name();
        let after = sub.get_after_help().map(|s| s.to_string()).unwrap_or_default();
        assert!(after.starts_with("Example"), "`dm-apply {name} --help` has no example");
        assert!(after.contains(&format!("dm-apply {name}")), "`{name}` example does not run `dm-apply {name}`");
        let (code, out, _) = run(&[name, "--help"]);
        assert_eq!(code, 0);
        assert!(out.contains("Example"), "{name} --help:\n{out}");
    }
}

#[test]
fn colour_follows_color_and_no_color_and_data_stays_on_stdout() {
    let run_env = |args: &[&str], no_color: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_dm-apply"));
        c.args(args);
        if no_color {
            c.env("NO_COLOR", "1");
        } else {
            c.env_remove("NO_COLOR");
        }
        let o = c.output().unwrap();
        (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let file = "tests/dmctl/task-no-rules.yaml";
    let (out, err) = run_env(&["--color", "always", "convert", file], false);
    assert!(err.contains("\x1b["), "--color always colours stderr: {err}");
    assert!(!out.contains("\x1b[") && out.starts_with("# yaml-language-server"), "stdout is plain data");
    let (_, err) = run_env(&["--color", "never", "convert", file], false);
    assert!(!err.contains("\x1b["));
    // Not a terminal and NO_COLOR: no colour with the default `auto`.
    let (_, err) = run_env(&["convert", file], true);
    assert!(!err.contains("\x1b[") && err.contains("warning: "));
    let (out, err) = run_env(&["-q", "convert", file], true);
    assert!(err.is_empty(), "-q silences warnings: {err}");
    assert!(out.starts_with("# yaml-language-server"));
}
