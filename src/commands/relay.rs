//! `dm-apply relay purge SOURCE --before BINLOG`: delete old relay log files of a source on every worker relaying
//! it. An action, not state: it asks like apply (`--auto-approve`; refused without a terminal) and changes nothing
//! else.
//!
//! DM purges relay logs only on the workers relay was started on by name (docs/dm-behaviour.md R4.7); for a source
//! without any it answers 49001, so the command checks first and refuses with the reason.

use std::io::BufRead;

use miette::IntoDiagnostic;

use crate::cli::{RelayArgs, RelayCommand, RelayPurgeArgs};
use crate::commands::common::client_options;
use crate::commands::{EXIT_ERROR, EXIT_OK};
use crate::dm::types::PurgeRelayRequest;
use crate::dm::{DmClient, DmError};
use crate::ui::Ui;
use crate::ui::sanitize::inline;

/// Why a purge was not sent.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PurgeError {
    #[error("source `{0}` does not exist in DM")]
    #[diagnostic(code(relay::unknown_source), help("list the sources with `dm-apply import` or `dmctl get-config`"))]
    UnknownSource(String),
    #[error("source `{0}` has no relay workers, so DM has no relay log to purge for it (it answers 49001)")]
    #[diagnostic(
        code(relay::no_relay),
        help(
            "DM purges relay logs only on workers relay was started on by name: declare `relay: {{enabled: true}}` \
             on the source and apply. Relay started through `relay_config.enable_relay` cannot be purged through the \
             API"
        )
    )]
    NoRelay(String),
    #[error("`--before` must name a binlog file, e.g. mysql-bin.000042 (got `{0}`)")]
    #[diagnostic(code(relay::binlog), help("give the file name only, without a directory"))]
    BadBinlog(String),
    #[error(
        "refusing to purge without approval: stdin is not a terminal, so nobody can answer the prompt; nothing was purged"
    )]
    #[diagnostic(code(relay::approval), help("run again with --auto-approve"))]
    NoApproval,
    #[error("DM-master refused the purge of source `{source_name}`'s relay logs: {error}")]
    #[diagnostic(
        code(relay::purge),
        help("DM's message above comes from the worker that refused; nothing more was purged after it")
    )]
    Refused { source_name: String, error: DmError },
}

pub async fn run(args: &RelayArgs, ui: &Ui) -> miette::Result<u8> {
    match &args.command {
        RelayCommand::Purge(p) => purge(p, ui).await,
    }
}

/// A binlog file name: no path, no control characters, not empty.
fn valid_binlog(name: &str) -> bool {
    !name.trim().is_empty()
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control)
        && name != ".."
        && name != "."
}

async fn purge(args: &RelayPurgeArgs, ui: &Ui) -> miette::Result<u8> {
    if !valid_binlog(&args.before) {
        return Err(PurgeError::BadBinlog(inline(&args.before).into_owned()).into());
    }
    let client = DmClient::new(&client_options(&args.conn))?;
    let name = &args.source;
    if client.get_source(name, false).await?.is_none() {
        return Err(PurgeError::UnknownSource(inline(name).into_owned()).into());
    }
    let workers = relay_workers(&client, name, ui).await?;
    let Some(workers) = workers else {
        return Err(PurgeError::NoRelay(inline(name).into_owned()).into());
    };
    let on = if workers.is_empty() { "its relay workers".to_string() } else { workers.join(", ") };
    let sub = args.sub_dir.as_deref().map(|d| format!(" (relay sub-directory {d})")).unwrap_or_default();
    ui.info(inline(&format!(
        "Relay logs of source {name} older than {}{sub} will be deleted on {on}. Tasks reading them must be past that \
         file, or they fail and cannot resume.",
        args.before
    )));
    if !args.auto_approve {
        if !ui.interactive {
            return Err(PurgeError::NoApproval.into());
        }
        if !confirm().await? {
            crate::ui::eprint("\nPurge cancelled. Nothing was deleted.\n");
            return Ok(EXIT_ERROR);
        }
    }
    let req = PurgeRelayRequest { relay_binlog_name: args.before.clone(), relay_dir: args.sub_dir.clone() };
    client
        .purge_relay(name, &req)
        .await
        .map_err(|error| PurgeError::Refused { source_name: inline(name).into_owned(), error })?;
    ui.info(inline(&format!("Purged the relay logs of source {name} older than {} on {on}.", args.before)));
    Ok(EXIT_OK)
}

/// The workers relay was started on by name for `source`: `None` when there is none. One list request, with the
/// workers' status; when that fails (one worker that cannot be asked fails it), the list without status says at
/// least whether there is one (the names are then unknown: an empty list).
async fn relay_workers(client: &DmClient, source: &str, ui: &Ui) -> miette::Result<Option<Vec<String>>> {
    match client.list_sources(true, Some(true)).await {
        Ok(list) => Ok(list.into_iter().find(|s| s.source_name == source).map(|s| {
            let mut w: Vec<String> = s
                .status_list
                .unwrap_or_default()
                .into_iter()
                .filter(|e| e.relay_status.is_some() && !e.worker_name.is_empty())
                .map(|e| e.worker_name)
                .collect();
            w.sort();
            w.dedup();
            w
        })),
        Err(e) => {
            ui.warn(format_args!("could not read the relay workers' status ({e}); checking only that relay runs"));
            let list = client.list_sources(false, Some(true)).await?;
            Ok(list.iter().any(|s| s.source_name == source).then(Vec::new))
        }
    }
}

/// Ask on stderr, read one line from stdin; only `yes` approves (as apply).
async fn confirm() -> miette::Result<bool> {
    crate::ui::eprint(
        "\nDo you want to purge these relay logs?\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ",
    );
    let line = tokio::task::spawn_blocking(|| {
        let mut s = String::new();
        std::io::stdin().lock().read_line(&mut s).map(|_| s)
    })
    .await
    .into_diagnostic()?
    .into_diagnostic()?;
    Ok(line.trim() == "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binlog_names() {
        assert!(valid_binlog("mysql-bin.000042"));
        for bad in ["", " ", "../x", "a/b", "..", "a\nb"] {
            assert!(!valid_binlog(bad), "{bad:?}");
        }
    }
}
