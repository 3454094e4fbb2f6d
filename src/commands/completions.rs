//! `dm-apply completions SHELL`: the completion script, generated from the clap definitions, on stdout.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::commands::EXIT_OK;
use crate::ui::{Data, Ui};

/// The completion script for `shell`.
pub fn script(shell: clap_complete::Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "dm-apply", &mut out);
    out
}

pub fn run(args: &CompletionsArgs, ui: &Ui) -> miette::Result<u8> {
    ui.data(Data::Plain, &String::from_utf8_lossy(&script(args.shell)))?;
    Ok(EXIT_OK)
}
