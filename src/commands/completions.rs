//! `dm-apply completions SHELL`: the completion script, generated from the clap definitions, on stdout.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::commands::EXIT_OK;

/// The completion script for `shell`.
pub fn script(shell: clap_complete::Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "dm-apply", &mut out);
    out
}

pub fn run(args: &CompletionsArgs) -> miette::Result<u8> {
    use std::io::Write;
    std::io::stdout()
        .write_all(&script(args.shell))
        .map_err(|e| miette::miette!("cannot write the completion script: {e}"))?;
    Ok(EXIT_OK)
}
