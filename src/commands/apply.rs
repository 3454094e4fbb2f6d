//! `dm-apply apply`: load → fetch → plan → show → confirm → execute → report → verify.
//!
//! stdout carries the plan and the final report (data); progress, warnings and the prompt go to stderr.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::path::PathBuf;

use miette::{IntoDiagnostic, miette};

use crate::apply::{self, ApplyOptions, ApplyReport, Cancel, CompileOptions, StateOptions};
use crate::cli::{ApplyArgs, ConnArgs};
use crate::commands::plan::{client_options, fetch_options, parse_targets};
use crate::commands::{EXIT_ERROR, EXIT_OK};
use crate::config::Desired;
use crate::dm::DmClient;
use crate::live;
use crate::plan::{Plan, PlanOptions, build_plan, make_plan, saved};
use crate::ui::Ui;

/// The question Terraform asks, verbatim (people and wrappers know it).
pub const PROMPT: &str = "Do you want to perform these actions?\n  dm-apply will perform the actions described above.\n  \
                          Only 'yes' will be accepted to approve.\n\n  Enter a value: ";

pub async fn run(args: &ApplyArgs, ui: &Ui) -> miette::Result<u8> {
    let client = client(&args.conn)?;
    let targets = parse_targets(&args.target)?;
    let replace = parse_targets(&args.replace)?;
    let state_key = crate::state::key::load(args.state.state_key_file.as_deref())?;
    let plan_opts = PlanOptions {
        prune: args.prune,
        targets,
        allow_restart: args.allow_restart,
        replace,
        state_key: state_key.clone(),
    };

    let (plan, desired, plan_opts, saved) = match &args.plan {
        Some(path) => {
            if !args.files.is_empty()
                || args.prune
                || !args.target.is_empty()
                || args.allow_restart
                || !args.replace.is_empty()
            {
                ui.warn(
                    "-f/--prune/--target/--allow-restart/--replace are ignored with --plan: the saved plan records \
                     the configuration paths and options it was made with",
                );
            }
            let (plan, desired, opts) = load_saved(path, &client, ui, state_key.clone()).await?;
            (plan, desired, opts, true)
        }
        None => {
            let desired = crate::config::load_for_command(&args.files, ui)?;
            let live = live::fetch_with(&client, &fetch_options(&desired)).await?;
            crate::commands::plan::key_advice(state_key.as_ref(), &live, ui);
            let plan = make_plan(&desired, &live, &plan_opts).map_err(|e| {
                if let Some(p) = &e.plan {
                    print_plan(p, ui);
                }
                miette::Report::new(e)
            })?;
            (plan, desired, plan_opts, false)
        }
    };

    let mut opts = ApplyOptions {
        parallelism: args.parallelism as usize,
        fail_fast: args.fail_fast,
        wait_timeout: args.wait_timeout,
        deadline: args.deadline,
        allow_restart: plan_opts.allow_restart,
        allow_restart_for: allow_restart_for(&desired),
        cancel: Cancel::new(),
        state: StateOptions::for_plan(&plan, &desired, state_key),
        ..ApplyOptions::default()
    };
    // Refuse what cannot be applied before asking anything.
    apply::compile(
        &plan,
        &CompileOptions {
            allow_restart: opts.allow_restart,
            allow_restart_for: opts.allow_restart_for.clone(),
            skip_record: opts.state.home.is_none(),
        },
    )?;

    if !saved {
        print_plan(&plan, ui);
    }
    if !plan.has_actionable_changes() && !plan.writes_record() {
        if plan.has_changes() {
            ui.info("Nothing to apply now: every change in the plan is deferred or blocked (see the plan above).");
        }
        return Ok(EXIT_OK);
    }

    // A saved plan was reviewed when it was made (Terraform does not ask either). Recording write-only values
    // without sending anything changes no replication: no question for that alone.
    if !plan.has_actionable_changes() {
        ui.info("Nothing to change in DM; recording write-only values in dm-apply's state record (nothing is sent).");
    } else if !saved && !args.auto_approve {
        if !ui.interactive {
            return Err(miette!(
                code = "apply::approval",
                help = "review the plan above, then run again with --auto-approve (or save it with `dm-apply plan \
                        --out FILE` and apply that file with `dm-apply apply --plan FILE`)",
                "refusing to apply without approval: stdin is not a terminal, so nobody can answer the prompt; \
                 nothing was changed"
            ));
        }
        if !confirm().await? {
            eprintln!("\nApply cancelled. Nothing was changed.");
            return Ok(EXIT_ERROR);
        }
    }

    let held = take_lease(&client, &plan, &opts, args, ui).await?;
    opts.state.lease_id = held.as_ref().map(|l| l.id.clone());
    let report = execute(&plan, &client, &opts, ui).await;
    if let (Some(lease), Some(home)) = (&held, &opts.state.home) {
        match crate::state::lease::release(&client, home, lease).await {
            Ok(true) => {}
            Ok(false) => ui.warn("the apply lease was no longer this apply's at the end (someone took it over)"),
            Err(e) => ui.warn(format_args!(
                "could not release the apply lease: {e}; the next apply must pass --take-over-lease"
            )),
        }
    }
    let report = report?;
    print!("\n{}", report.render_text());
    let _ = std::io::stdout().flush();
    if !report.success() {
        ui.info(
            "Run `dm-apply plan` to see what is left. Once the cause of the failures is fixed, run apply again: it \
             carries on from the state DM is in now.",
        );
        return Ok(EXIT_ERROR);
    }

    if args.no_verify {
        return Ok(EXIT_OK);
    }
    // `--replace` asked for one re-send, not for one in every plan.
    let verify_opts = PlanOptions { replace: vec![], ..plan_opts };
    verify(&client, &desired, &verify_opts, ui).await
}

/// Take the apply lease before the first mutation (see `state::lease`). `None`: this run holds none (no record
/// can be kept, or `--no-lease`), which is said.
async fn take_lease(
    client: &DmClient,
    plan: &Plan,
    opts: &ApplyOptions,
    args: &ApplyArgs,
    ui: &Ui,
) -> miette::Result<Option<crate::state::Lease>> {
    let (Some(home), Some(target)) = (&plan.state.home, &opts.state.home) else {
        ui.warn(
            "no task is declared, so dm-apply keeps no state record here and no lease keeps another apply out of \
             this run",
        );
        return Ok(None);
    };
    if args.no_lease {
        ui.warn("--no-lease: no lease keeps another apply out of this run");
        return Ok(None);
    }
    let held = crate::state::lease::take(client, target, home, args.take_over_lease, crate::state::lease::SETTLE)
        .await
        .map_err(miette::Report::new)?;
    if let Some(old) = &held.took_over {
        ui.warn(format_args!("--take-over-lease: replaced the apply lease of {}", old.describe(crate::state::now())));
    }
    Ok(Some(held.lease))
}

fn client(conn: &ConnArgs) -> miette::Result<DmClient> {
    Ok(DmClient::new(&client_options(conn))?)
}

fn allow_restart_for(desired: &Desired) -> BTreeSet<String> {
    desired.tasks.iter().filter(|(_, (t, _))| t.lifecycle.allow_restart).map(|(n, _)| n.clone()).collect()
}

/// The plan as `dm-apply plan` prints it (its warnings included).
fn print_plan(plan: &Plan, ui: &Ui) {
    let text = crate::render::text::render(plan, ui.color_stdout);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Ask on stderr, read one line from stdin.
async fn confirm() -> miette::Result<bool> {
    eprint!("\n{PROMPT}");
    let _ = std::io::stderr().flush();
    let line = tokio::task::spawn_blocking(|| {
        let mut s = String::new();
        std::io::stdin().lock().read_line(&mut s).map(|_| s)
    })
    .await
    .into_diagnostic()?
    .into_diagnostic()?;
    Ok(approved(&line))
}

/// Only `yes` approves (Terraform's rule): not `y`, not `YES`.
fn approved(answer: &str) -> bool {
    answer.trim() == "yes"
}

/// Run the plan with the reporter on stderr and Ctrl-C wired to cancellation.
async fn execute(plan: &Plan, client: &DmClient, opts: &ApplyOptions, ui: &Ui) -> miette::Result<ApplyReport> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let reporter = tokio::spawn(apply::reporter::run(rx, *ui));
    let cancel = opts.cancel.clone();
    // The handler is registered before the first step starts (a Ctrl-C from then on is never lost).
    let mut interrupts = Interrupts::register()?;
    let signals = tokio::spawn(async move {
        if interrupts.next().await {
            cancel.cancel();
            // A second Ctrl-C exits at once (steps in flight may then be left unreported).
            if interrupts.next().await {
                eprintln!("\nInterrupted twice: exiting without waiting for the steps in flight.");
                std::process::exit(130);
            }
        }
    });
    let report = apply::execute(plan, client, opts, tx).await;
    let _ = reporter.await;
    signals.abort();
    Ok(report?)
}

/// Ctrl-C (SIGINT), registered when created.
struct Interrupts {
    #[cfg(unix)]
    inner: tokio::signal::unix::Signal,
}

impl Interrupts {
    fn register() -> miette::Result<Self> {
        #[cfg(unix)]
        {
            let inner = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).into_diagnostic()?;
            Ok(Interrupts { inner })
        }
        #[cfg(not(unix))]
        Ok(Interrupts {})
    }

    /// The next interrupt; false when no more can come.
    async fn next(&mut self) -> bool {
        #[cfg(unix)]
        {
            self.inner.recv().await.is_some()
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.is_ok()
        }
    }
}

/// Plan again after applying: "apply, then plan shows no changes" is the promise. A remaining difference means a
/// change did not stick or dm-apply compares something wrongly: exit 1 with the addresses.
async fn verify(client: &DmClient, desired: &Desired, opts: &PlanOptions, ui: &Ui) -> miette::Result<u8> {
    let live = live::fetch_with(client, &fetch_options(desired)).await?;
    let again = build_plan(desired, &live, opts).map_err(miette::Report::new)?;
    if !again.has_actionable_changes() {
        let held: Vec<String> = again.held().map(|c| c.address.to_string()).collect();
        if held.is_empty() {
            ui.info("Verified: a new plan shows no changes.");
        } else {
            ui.info(format!(
                "Verified: a new plan shows nothing more to apply now; still deferred or blocked: {}.",
                held.join(", ")
            ));
        }
        return Ok(EXIT_OK);
    }
    let left: Vec<String> = again
        .changes
        .iter()
        .filter(|c| c.is_actionable())
        .map(|c| format!("{} ({})", c.address, c.actions().join(", ")))
        .collect();
    ui.warn(format_args!(
        "verification failed: after applying, a new plan still shows changes for {}. Run `dm-apply plan` to see \
         them; if they persist across applies, please report it (a difference dm-apply cannot converge)",
        left.join(", ")
    ));
    Ok(EXIT_ERROR)
}

/// A saved plan: read it, reload the configuration from the paths it records (so secrets come from the
/// environment again), re-read DM and refuse a stale plan; then the plan with its payloads rebuilt.
async fn load_saved(
    path: &std::path::Path,
    client: &DmClient,
    ui: &Ui,
    state_key: Option<crate::state::StateKey>,
) -> miette::Result<(Plan, Desired, PlanOptions)> {
    let saved = saved::read(path)?;
    let paths: Vec<PathBuf> = saved.config_paths.iter().map(PathBuf::from).collect();
    let desired = crate::config::load_for_command(&paths, ui)?;
    let live = live::fetch_with(client, &fetch_options(&desired)).await?;
    let plan = saved::rehydrate(&saved, &desired, &live)?;
    let opts = PlanOptions {
        prune: saved.options.prune,
        targets: saved.options.targets.clone(),
        allow_restart: saved.options.allow_restart,
        replace: saved.options.replace.clone(),
        state_key,
    };
    ui.info(format!(
        "Applying the saved plan {} (made from {}): {}",
        path.display(),
        saved.config_paths.join(", "),
        crate::render::text::summary_line(&plan)
    ));
    Ok((plan, desired, opts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_yes_approves() {
        assert!(approved("yes\n"));
        assert!(approved("  yes  "));
        for no in ["y", "YES", "Yes", "no", "", "yes please"] {
            assert!(!approved(no), "{no:?}");
        }
    }
}
