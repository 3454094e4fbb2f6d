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
    assert_eq!(code, 2);
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
