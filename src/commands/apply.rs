//! `dm-apply apply`: load → fetch → plan → show → confirm → execute → report → verify.
//!
//! stdout carries the plan and the final report (data; with `-o json` only the JSON report, the plan then goes to
//! stderr); progress, warnings and the prompt go to stderr. SIGINT, SIGTERM and SIGHUP cancel the run (see
//! [`Signals`]); the report then ends `Apply interrupted` and the exit code is 130.

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::Path;

use miette::{IntoDiagnostic, miette};

use crate::apply::{self, ApplyOptions, ApplyReport, Cancel, StateOptions, Status, Verification};
use crate::cli::{ApplyArgs, ConnArgs, ReportFormat};
use crate::commands::common::{client_options, key_advice, load_for_command, parse_targets};
use crate::commands::{EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK};
use crate::config::Desired;
use crate::dm::DmClient;
use crate::live;
use crate::pipeline::fetch_options;
use crate::plan::{Plan, PlanOptions, WaitUntil, build_plan};
use crate::saved_plan::{self, SavedPlan};
use crate::ui::{Data, OutputError, Ui};

/// The question Terraform asks, verbatim (people and wrappers know it).
pub const PROMPT: &str = "Do you want to perform these actions?\n  dm-apply will perform the actions described above.\n  \
                          Only 'yes' will be accepted to approve.\n\n  Enter a value: ";

pub async fn run(args: &ApplyArgs, ui: &Ui) -> miette::Result<u8> {
    // Before anything is loaded or fetched: see the function.
    super::common::no_huge_pages_from_here();
    let json = args.output == ReportFormat::Json;
    // `--clusters FILE --cluster NAME`: that cluster's address, TLS files, paths and variables, as `plan` uses them.
    let cluster = match (&args.clusters, &args.cluster) {
        (Some(file), Some(name)) => Some(crate::clusters::load_one(file, name)?),
        _ => None,
    };
    let targets = parse_targets(&args.target)?;
    let replace = parse_targets(&args.replace)?;
    let state_key = crate::state::key::load(args.state.state_key_file.as_deref())?;
    let plan_opts = PlanOptions {
        prune: args.prune,
        targets,
        allow_restart: args.allow_restart,
        replace,
        state_key: state_key.clone(),
        accept_loss: parse_targets(&args.accept_loss)?,
    };

    let (plan, desired, client, saved) = match &args.plan {
        Some(path) => {
            let (plan, desired, client) = load_saved(path, args, cluster.as_ref(), &plan_opts, ui).await?;
            (plan, desired, client, true)
        }
        None => {
            // As in `plan`: DM's reads go out while the configuration loads (`live::Prefetch`), and a configuration
            // error comes before a client option error.
            let started = match &cluster {
                Some(c) => DmClient::new(&c.client_options()),
                None => DmClient::new(&client_options(&args.conn)),
            }
            .map(|client| {
                let prefetch = live::Prefetch::start(&client);
                (client, prefetch)
            });
            let desired = match &cluster {
                Some(c) => super::clusters::load_for_cluster(c, &c.files)?,
                None => load_for_command(&args.files, ui)?,
            };
            let (client, prefetch) = started?;
            let mut live = prefetch.live(&client, &fetch_options(&desired)).await?;
            key_advice(state_key.as_ref(), &live, ui);
            let mut plan = match crate::legacy::plan(&client, &desired, &mut live, &plan_opts).await {
                Ok(p) => p,
                Err(e) => {
                    if let Some(p) = &e.plan {
                        show_plan(p, ui, json)?;
                    }
                    return Err(miette::Report::new(e));
                }
            };
            if let Some(limit) = args.wait_for_sync {
                let waiting = plan.waits();
                if !waiting.is_empty() {
                    wait_for_sync(&client, &waiting, limit, ui).await?;
                    // Plan again from what DM has now: the update is no longer deferred.
                    live = live::fetch_with(&client, &fetch_options(&desired)).await?;
                    plan = match crate::legacy::plan(&client, &desired, &mut live, &plan_opts).await {
                        Ok(p) => p,
                        Err(e) => {
                            if let Some(p) = &e.plan {
                                show_plan(p, ui, json)?;
                            }
                            return Err(miette::Report::new(e));
                        }
                    };
                }
            }
            // Only for the person who is about to approve it (docs/plan.md "Preview").
            if !args.no_preview && !args.auto_approve && ui.interactive {
                plan.preview = crate::preview::compute(&client, &plan, &live, crate::preview::Limits::default()).await;
            }
            (plan, desired, client, false)
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
        resume_safe_mode: Some(args.resume_safe_mode),
        ..ApplyOptions::default()
    };
    // Refuse what cannot be applied before asking anything; the graph made here is the one that runs.
    let graph = apply::compile(&plan, &opts.compile_options())?;

    if !saved {
        // The plan must reach its reader before anything changes: a closed stdout stops here.
        show_plan(&plan, ui, json)?;
    }
    if !plan.has_actionable_changes() && !plan.writes_record() {
        if plan.has_changes() {
            ui.info("Nothing to apply now: every change in the plan is deferred or blocked (see the plan above).");
        }
        if json {
            ui.data(Data::Json, &ApplyReport::default().render_json(&Verification::Passed, EXIT_OK))?;
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
            crate::ui::eprint("\nApply cancelled. Nothing was changed.\n");
            return Ok(EXIT_ERROR);
        }
    }

    // From here on a signal cancels the run instead of killing the process: registered before the lease and the
    // first step, kept until the report is printed (the verification included).
    let _signals = Signals::install(opts.cancel.clone())?;
    let held = take_lease(&client, &plan, &opts, args, ui).await?;
    opts.state.lease_id = held.as_ref().map(|l| l.id.clone());
    let report = execute(graph, &plan, &client, &opts, ui).await;
    // The lease is a template of its own, which the verifying plan does not read: release it meanwhile.
    let release = async {
        match &held {
            Some(lease) => Some(crate::state::lease::release(&client, lease).await),
            None => None,
        }
    };
    let verification = async {
        match &report {
            Ok(r) if r.status() == Status::Complete && args.no_verify => Verification::Skipped,
            Ok(r) if r.status() == Status::Complete => {
                // `--replace` asked for one re-send, not for one in every plan.
                let verify_opts = PlanOptions { replace: vec![], ..plan_opts.clone() };
                tokio::select! {
                    v = verify(&client, &desired, &verify_opts, &plan, args.wait_timeout, ui) => v,
                    () = opts.cancel.cancelled() => Verification::Interrupted,
                }
            }
            _ => Verification::NotRun,
        }
    };
    let (released, verification) = tokio::join!(release, verification);
    match released {
        Some(Ok(false)) => ui.warn("the apply lease was no longer this apply's at the end (someone took it over)"),
        Some(Err(e)) => {
            ui.warn(format_args!("could not release the apply lease: {e}; the next apply must pass --take-over-lease"))
        }
        Some(Ok(true)) | None => {}
    }
    let mut report = report?;
    if opts.cancel.is_cancelled() {
        report.mark_interrupted();
    }
    let code = match (report.status(), &verification) {
        (Status::Interrupted, _) => EXIT_INTERRUPTED,
        (Status::Failed | Status::StoppedAtDeadline, _) => EXIT_ERROR,
        (Status::Complete, Verification::ChangesLeft { .. } | Verification::Error { .. }) => EXIT_ERROR,
        (Status::Complete, _) => EXIT_OK,
    };
    print_report(&report, &verification, code, ui, json);
    match report.status() {
        Status::Complete => {}
        Status::Interrupted => ui.info(
            "Run apply again to carry on: it plans from the state DM is in now (`dm-apply plan` shows what is left).",
        ),
        Status::Failed | Status::StoppedAtDeadline => ui.info(
            "Run `dm-apply plan` to see what is left. Once the cause of the failures is fixed, run apply again: it \
             carries on from the state DM is in now.",
        ),
    }
    Ok(code)
}

/// The report on stdout (text or JSON); with JSON, the closing lines for people on stderr too. The run has happened
/// by now, so a closed stdout does not change the exit code: the closing lines then go to stderr.
fn print_report(report: &ApplyReport, verification: &Verification, code: u8, ui: &Ui, json: bool) {
    let written = if json {
        ui.data(Data::Json, &report.render_json(verification, code))
    } else {
        ui.data(Data::Text, &format!("\n{}", report.render_text_with(ui.color_stdout)))
    };
    if json || written.is_err() {
        let mut lines = String::new();
        if let Some(l) = report.left_stopped_line() {
            lines.push_str(&ui.paint_stderr("33", &l));
            lines.push('\n');
        }
        lines.push_str(&ui.paint_stderr(report.status().color_code(), &report.summary_line()));
        lines.push('\n');
        crate::ui::eprint(&lines);
    }
    if let Err(e) = written
        && !matches!(e, OutputError::Closed)
    {
        ui.warn(e);
    }
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
    let held =
        crate::state::lease::take(client, target, home, args.take_over_lease).await.map_err(miette::Report::new)?;
    if let Some(old) = &held.took_over {
        ui.warn(format_args!("--take-over-lease: replaced the apply lease of {}", old.describe(crate::state::now())));
    }
    Ok(Some(held.lease))
}

fn allow_restart_for(desired: &Desired) -> BTreeSet<String> {
    desired.tasks.iter().filter(|(_, (t, _))| t.lifecycle.allow_restart).map(|(n, _)| n.clone()).collect()
}

/// The plan as `dm-apply plan` prints it (its warnings included): on stdout, or on stderr when stdout carries the
/// JSON report.
fn show_plan(plan: &Plan, ui: &Ui, json: bool) -> Result<(), OutputError> {
    if json {
        crate::ui::eprint(&crate::render::text::render(plan, ui.color_stderr));
        return Ok(());
    }
    ui.data(Data::Text, &crate::render::text::render(plan, ui.color_stdout))
}

/// Ask on stderr, read one line from stdin.
async fn confirm() -> miette::Result<bool> {
    crate::ui::eprint(&format!("\n{PROMPT}"));
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

/// Run the plan with the reporter on stderr.
async fn execute(
    graph: apply::StepGraph,
    plan: &Plan,
    client: &DmClient,
    opts: &ApplyOptions,
    ui: &Ui,
) -> miette::Result<ApplyReport> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let reporter = tokio::spawn(super::reporter::run(rx, *ui));
    let report = apply::execute_compiled(graph, plan, client, opts, tx).await;
    let _ = reporter.await;
    Ok(report)
}

/// SIGINT (Ctrl-C), SIGTERM (CI cancellation, timeouts, Kubernetes, systemd) and SIGHUP (a closed terminal) all
/// take one path: the first cancels the run (no new step starts, waits and the verification end at once, operations
/// in flight finish, the report is printed, exit 130); a second exits at once with a one-line note.
struct Signals(tokio::task::JoinHandle<()>);

impl Drop for Signals {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Signals {
    fn install(cancel: Cancel) -> miette::Result<Signals> {
        let mut signals = SignalStream::register()?;
        Ok(Signals(tokio::spawn(async move {
            let Some(name) = signals.next().await else { return };
            crate::ui::eprint(&format!("\nReceived {name}; send it again to exit at once, without a report.\n"));
            cancel.cancel();
            if let Some(name) = signals.next().await {
                crate::ui::eprint(&format!(
                    "\nReceived {name} again: exiting at once; steps in flight may or may not have happened (run \
                     `dm-apply plan` to see where DM is).\n"
                ));
                std::process::exit(i32::from(EXIT_INTERRUPTED));
            }
        })))
    }
}

/// The signals that cancel an apply, registered when created (none from then on is lost).
struct SignalStream {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl SignalStream {
    fn register() -> miette::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(SignalStream {
                int: signal(SignalKind::interrupt()).into_diagnostic()?,
                term: signal(SignalKind::terminate()).into_diagnostic()?,
                hup: signal(SignalKind::hangup()).into_diagnostic()?,
            })
        }
        #[cfg(not(unix))]
        Ok(SignalStream {})
    }

    /// The name of the next signal; `None` when no more can come.
    async fn next(&mut self) -> Option<&'static str> {
        #[cfg(unix)]
        {
            tokio::select! {
                Some(()) = self.int.recv() => Some("SIGINT (Ctrl-C)"),
                Some(()) = self.term.recv() => Some("SIGTERM"),
                Some(()) = self.hup.recv() => Some("SIGHUP"),
                else => None,
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.ok().map(|()| "Ctrl-C")
        }
    }
}

/// Plan again after applying: "apply, then plan shows no changes" is the promise. A remaining difference means a
/// change did not stick or dm-apply compares something wrongly: exit 1 with the addresses.
async fn verify(
    client: &DmClient,
    desired: &Desired,
    opts: &PlanOptions,
    applied: &Plan,
    wait: std::time::Duration,
    ui: &Ui,
) -> Verification {
    let again = match settled_live(client, desired, applied, wait, ui).await {
        Ok(live) => build_plan(desired, &live, opts).map_err(miette::Report::new),
        Err(e) => Err(miette::Report::new(e)),
    };
    let again = match again {
        Ok(p) => p,
        Err(report) => {
            ui.diagnostic(&report);
            return Verification::Error { message: format!("{report}") };
        }
    };
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
        return Verification::Passed;
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
        crate::ui::sanitize::inline(&left.join(", "))
    ));
    Verification::ChangesLeft { changes: left }
}

/// `--wait-for-sync`: poll the status of the tasks in `waits` until each got where its deferred change needs it (see
/// [`Plan::waits`]). Fails, before anything was changed, when one pauses with an error, disappears, or `limit`
/// passes.
async fn wait_for_sync(
    client: &DmClient,
    waits: &std::collections::BTreeMap<String, WaitUntil>,
    limit: std::time::Duration,
    ui: &Ui,
) -> miette::Result<()> {
    use crate::dm::types::Stage;
    let start = std::time::Instant::now();
    let list = |f: fn(WaitUntil) -> &'static str| {
        waits.iter().map(|(t, u)| format!("task.{t} {}", f(*u))).collect::<Vec<_>>().join(", ")
    };
    ui.info(format!(
        "--wait-for-sync: waiting up to {} for {}",
        crate::apply::human_duration(limit),
        list(WaitUntil::goal)
    ));
    let mut delay = std::time::Duration::from_millis(100);
    let mut pending: Vec<(&String, WaitUntil)> = waits.iter().map(|(t, u)| (t, *u)).collect();
    let mut last = String::new();
    loop {
        let mut still = vec![];
        for (t, until) in pending {
            let status = client.task_status(t).await.map_err(|e| {
                miette!(
                    code = "apply::wait_for_sync",
                    "--wait-for-sync: cannot read the status of task {t}: {e}; nothing was changed"
                )
            })?;
            if let Some(s) = status
                .iter()
                .find(|s| s.stage == Stage::Paused && s.error_msg.as_deref().is_some_and(|m| !m.trim().is_empty()))
            {
                return Err(miette!(
                    code = "apply::wait_for_sync",
                    help = "fix the cause (see `dmctl query-status`), then apply again",
                    "--wait-for-sync: task {t} paused with an error on source {} before it got there: {}; nothing \
                     was changed",
                    s.source_name,
                    crate::ui::sanitize::inline(s.error_msg.as_deref().unwrap_or(""))
                ));
            }
            if !until.reached(&status) {
                let mut units: Vec<String> =
                    status.iter().map(|s| format!("{} in {}", s.source_name, s.unit)).collect();
                units.sort();
                last = format!("task {t}: {}", units.join(", "));
                still.push((t, until));
            }
        }
        if still.is_empty() {
            ui.info(format!(
                "--wait-for-sync: {} after {}",
                list(WaitUntil::reached_text),
                crate::apply::human_duration(start.elapsed())
            ));
            return Ok(());
        }
        if start.elapsed() >= limit {
            return Err(miette!(
                code = "apply::wait_for_sync",
                help = "raise the limit (--wait-for-sync=2h), or run apply again later",
                "--wait-for-sync: gave up after {} waiting for {} ({}); nothing was changed",
                crate::apply::human_duration(limit),
                list(WaitUntil::goal),
                crate::ui::sanitize::inline(&last)
            ));
        }
        pending = still;
        tokio::time::sleep(delay.min(limit.saturating_sub(start.elapsed()))).await;
        delay = (delay * 2).min(std::time::Duration::from_secs(5));
    }
}

/// The sources this apply enabled (`true`) or disabled (`false`), by name.
fn toggled_sources(applied: &Plan) -> std::collections::BTreeMap<&str, bool> {
    use crate::plan::{Kind, RuntimeAction};
    applied
        .changes
        .iter()
        .filter(|c| c.address.kind == Kind::Source && c.is_actionable())
        .filter_map(|c| {
            c.runtime.iter().rev().find_map(|r| match r {
                RuntimeAction::Enable => Some((c.address.name.as_str(), true)),
                RuntimeAction::Disable => Some((c.address.name.as_str(), false)),
                _ => None,
            })
        })
        .collect()
}

/// Whether DM has carried out the stage changes of enabling or disabling `toggled` sources: DM answers `/disable`
/// before its workers pause the source's tasks, and `/enable` before they run again (docs/dm-behaviour.md §3, §8).
/// A task whose status cannot be read is not waited for.
fn stages_settled(live: &live::Live, desired: &Desired, toggled: &std::collections::BTreeMap<&str, bool>) -> bool {
    use crate::config::DesiredStage;
    use crate::dm::types::Stage;
    live.tasks.values().all(|lt| {
        let should_run = desired.tasks.get(&lt.task.name).is_some_and(|(t, _)| t.stage == DesiredStage::Running);
        lt.status.iter().flatten().all(|sub| match toggled.get(sub.source_name.as_str()) {
            // Disabled: nothing of the source runs any more.
            Some(false) => sub.stage != Stage::Running,
            // Enabled: what should run runs (or stopped on an error, which the plan shows).
            Some(true) if should_run => match sub.stage {
                Stage::Paused | Stage::Stopped => sub.error_msg.as_deref().is_some_and(|m| !m.trim().is_empty()),
                _ => true,
            },
            _ => true,
        })
    })
}

/// The live state for the verification plan. After enabling or disabling sources, DM's workers change the stages
/// of their tasks asynchronously: a plan read at once would see the old stages (a task of a just-disabled source
/// still Running, so a start it will need later is not shown). So wait, up to `wait` (`--wait-timeout`), until
/// those stages have settled; then plan from what DM says, settled or not (saying so).
async fn settled_live(
    client: &DmClient,
    desired: &Desired,
    applied: &Plan,
    wait: std::time::Duration,
    ui: &Ui,
) -> Result<live::Live, crate::dm::DmError> {
    let toggled = toggled_sources(applied);
    let start = std::time::Instant::now();
    let mut delay = std::time::Duration::from_millis(100);
    loop {
        let live = live::fetch_with(client, &fetch_options(desired)).await?;
        if toggled.is_empty() || stages_settled(&live, desired, &toggled) {
            return Ok(live);
        }
        if start.elapsed() >= wait {
            ui.warn(format_args!(
                "DM had not finished pausing or starting the tasks of the sources this apply enabled or disabled \
                 ({}) within --wait-timeout {:?}; the verification reads their stages as they are now",
                toggled.keys().copied().collect::<Vec<_>>().join(", "),
                wait
            ));
            return Ok(live);
        }
        tokio::time::sleep(delay.min(wait.saturating_sub(start.elapsed()))).await;
        delay = (delay * 2).min(std::time::Duration::from_secs(2));
    }
}

/// A saved plan: read it, find and load the configuration it was made from (secrets come from the environment
/// again), read DM (at the given address, or the recorded one with --use-plan-addr), refuse a stale plan, make the plan again with
/// this apply's options and guards, and refuse it unless it equals the file's. Returns the plan made again: what
/// runs never comes from the file.
async fn load_saved(
    path: &Path,
    args: &ApplyArgs,
    cluster: Option<&crate::clusters::Cluster>,
    opts: &PlanOptions,
    ui: &Ui,
) -> miette::Result<(Plan, Desired, DmClient)> {
    let saved = saved_plan::file::read(path)?;
    saved_plan::check::same_options(&saved, opts)?;
    // With --clusters, the cluster's paths, variables and address (from the reviewed clusters file, not the plan).
    let config = saved_plan::file::locate_config(&saved, cluster.map_or(&args.files, |c| &c.files))?;
    let (desired, client) = match cluster {
        Some(c) => (super::clusters::load_for_cluster(c, &config.paths)?, DmClient::new(&c.client_options())?),
        None => (load_for_command(&config.paths, ui)?, saved_plan_client(&saved, &args.conn, args.use_plan_addr, ui)?),
    };
    let mut live = live::fetch_with(&client, &fetch_options(&desired)).await?;
    key_advice(opts.state_key.as_ref(), &live, ui);
    let paths: Vec<String> = config.paths.iter().map(|p| p.display().to_string()).collect();
    let paths = crate::ui::sanitize::inline(&paths.join(", ")).into_owned();
    saved_plan::check::verify(&saved, &desired, &live, &paths)?;
    // Remade like `plan` makes it, the check of what DM holds beyond the OpenAPI included (`--accept-loss` must
    // be given again: options are never read from the file).
    let plan = match crate::legacy::plan(&client, &desired, &mut live, opts).await {
        Ok(p) => p,
        Err(e) => {
            if saved.options.allow_restart && !opts.allow_restart {
                ui.info(
                    "The saved plan was made with --allow-restart: apply --plan needs it too (options are never read \
                     from the file).",
                );
            }
            return Err(miette::Report::new(e));
        }
    };
    saved_plan::check::same_plan(&saved.plan, &plan)?;
    ui.info(format!(
        "Applying the saved plan {} to {} (configuration {}, {}): {}",
        path.display(),
        client.addr(),
        paths,
        config.how,
        crate::render::text::summary_line(&plan)
    ));
    Ok((plan, desired, client))
}

/// The client for a saved plan: the address given (`--addr`, `DM_APPLY_ADDR`), or, with `--use-plan-addr`, the one
/// the plan records. The cluster must be the plan's either way (checked once DM is read). The address decides where
/// passwords are sent and a plan file is an artifact anyone with write access to it can edit, so the recorded one
/// is used only when asked for, and then said.
fn saved_plan_client(saved: &SavedPlan, conn: &ConnArgs, use_plan_addr: bool, ui: &Ui) -> miette::Result<DmClient> {
    let mut opts = client_options(conn);
    if conn.addr.is_none() {
        let recorded = &saved.plan.cluster.addr;
        if !use_plan_addr {
            let shown = crate::ui::sanitize::inline(recorded);
            return Err(miette!(
                code = "apply::saved_addr",
                help = format!(
                    "pass --addr {shown} (or set DM_APPLY_ADDR), or --use-plan-addr to trust the address in the file"
                ),
                "no DM-master address given: the saved plan was made against {shown}, but dm-apply does not send \
                 passwords to an address taken from a file that may have been edited; nothing was changed"
            ));
        }
        // Credentials are replaced by `***` before an address is stored: such an address cannot be used.
        if recorded.contains("***") {
            return Err(miette!(
                code = "apply::saved_addr",
                help =
                    "give the address with --addr or DM_APPLY_ADDR (it must reach the cluster the plan was made for)",
                "the saved plan's DM-master address ({}) had credentials, which are never saved; nothing was changed",
                crate::ui::sanitize::inline(recorded)
            ));
        }
        ui.info(format!(
            "No --addr or DM_APPLY_ADDR given: using the DM-master address recorded in the saved plan, {}",
            crate::ui::sanitize::inline(recorded)
        ));
        opts.addr = recorded.clone();
    }
    Ok(DmClient::new(&opts)?)
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
