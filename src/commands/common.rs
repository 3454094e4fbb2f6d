//! Helpers several commands share: connection flags, `--target` parsing, printing what the engine noticed,
//! `--split-comments`. CLI-side (they know clap's argument types and `Ui`); the engine never calls them.

use crate::cli::{ConnArgs, PlanArgs, PlanFormat};
use crate::config::Desired;
use crate::dm::ClientOptions;
use crate::pipeline::{self, ConfigSource, Failure, Notice};
use crate::plan::Address;
use crate::ui::{Ui, Verbosity};

/// What `--insecure-skip-tls-verify` prints, every time (even with `-q`: it is a security warning).
pub const INSECURE_WARNING: &str = "warning: --insecure-skip-tls-verify: the DM-master certificate is NOT verified; \
anyone on the network path can impersonate DM-master and read the passwords sent to it. Use --cacert instead.";

/// Client options from the shared connection flags.
pub fn client_options(conn: &ConnArgs) -> ClientOptions {
    if conn.insecure_skip_tls_verify {
        crate::ui::eprint(&format!("{INSECURE_WARNING}\n"));
    }
    ClientOptions {
        cacert: conn.cacert.clone(),
        cert: conn.cert.clone(),
        key: conn.key.clone(),
        request_timeout: conn.request_timeout,
        insecure_skip_verify: conn.insecure_skip_tls_verify,
        // Everything else (e.g. the retry policy) keeps the client's defaults.
        ..ClientOptions::new(conn.addr.clone().unwrap_or_else(|| crate::cli::DEFAULT_ADDR.to_string()))
    }
}

/// Parse `--target` values.
pub fn parse_targets(targets: &[String]) -> miette::Result<Vec<Address>> {
    targets.iter().map(|t| t.parse::<Address>().map_err(miette::Report::new)).collect()
}

/// Print what a run noticed: warnings, notes, skipped files (those only with `-v`).
pub fn print_notices(notices: &[Notice], ui: &Ui) {
    for n in notices {
        match n {
            Notice::Skipped(f) if ui.verbosity >= Verbosity::Verbose => ui.info(crate::config::skipped_note(f)),
            Notice::Skipped(_) => {}
            Notice::Warning(w) => ui.warn(format_args!("{w:?}")),
            Notice::Note(text) => ui.info(text),
        }
    }
}

/// A failed run as the command's error; an invalid configuration's warnings are printed first.
pub fn failure_report(failure: Failure, ui: &Ui) -> miette::Report {
    if let Failure::Config(e) = &failure {
        for w in &e.warnings {
            ui.warn(format_args!("{:?}", miette::Report::new(w.clone())));
        }
    }
    failure.into_report()
}

/// Load the configuration for plan/apply/drift: warnings printed on stderr, the desired state or the error report.
pub fn load_config(source: ConfigSource<'_>, ui: &Ui) -> miette::Result<Desired> {
    let mut notices = Vec::new();
    let loaded = pipeline::load_config(source, &mut notices);
    print_notices(&notices, ui);
    loaded.map_err(|e| failure_report(Failure::Config(e), ui))
}

/// The configuration of `paths`, read with the process's environment (what plan/apply/drift do without
/// `--clusters`).
pub fn load_for_command(paths: &[std::path::PathBuf], ui: &Ui) -> miette::Result<Desired> {
    load_config(ConfigSource { paths, cluster: None }, ui)
}

/// Say once per run that a state key would make the write-only checks faster, when it would.
pub fn key_advice(key: Option<&crate::state::StateKey>, live: &crate::live::Live, ui: &Ui) {
    if let Some(note) = pipeline::key_note(key, live) {
        ui.info(note);
    }
}

/// `--split-comments` writes markdown: refused with another output format (what would the files hold?).
pub fn check_split_comments(args: &PlanArgs) -> miette::Result<()> {
    if args.split_comments.is_some() && args.output != PlanFormat::Markdown {
        return Err(miette::miette!(
            code = "plan::split_comments",
            help = "add `-o markdown`",
            "--split-comments writes markdown comments and needs `-o markdown`"
        ));
    }
    Ok(())
}

/// Write `comments` as DIR/comment-001.md, comment-002.md, ... (DIR created when missing). Comment files of an
/// earlier run are removed first, so the directory holds exactly this plan's comments, in name order.
pub fn write_comments(dir: &std::path::Path, comments: &[String], ui: &Ui) -> miette::Result<()> {
    let fail =
        |e: std::io::Error| miette::miette!(code = "plan::split_comments", "--split-comments {}: {e}", dir.display());
    std::fs::create_dir_all(dir).map_err(fail)?;
    for entry in std::fs::read_dir(dir).map_err(fail)? {
        let path = entry.map_err(fail)?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let ours = name
            .strip_prefix("comment-")
            .and_then(|r| r.strip_suffix(".md"))
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        if ours {
            std::fs::remove_file(&path).map_err(fail)?;
        }
    }
    for (i, c) in comments.iter().enumerate() {
        let path = dir.join(format!("comment-{:03}.md", i + 1));
        crate::atomic::write(&path, c.as_bytes(), crate::atomic::Mode::Default).map_err(fail)?;
    }
    ui.info(format!("Wrote the plan as {} comment(s) to {} (comment-001.md first).", comments.len(), dir.display()));
    Ok(())
}

/// The binary's allocator (mimalloc) backs its heaps with transparent huge pages. `validate` and `plan` of a fleet
/// are faster with them, but while thousands of requests run on several threads the kernel zeroed fresh 2 MiB pages
/// over and over: 0.3 s of system time in an apply of 1,000 sources and 2,000 tasks, and in the simulator, which
/// builds and drops large answers, ~0.3 s of an apply's wall. apply's own loading, planning and compiling were
/// slower with them too (0.33-0.42 s before the first step, 0.17-0.22 s without). So `apply` and `sim` turn them off
/// at their start (docs/performance.md, "Issue 17, second pass" to "fourth pass").
pub fn no_huge_pages_from_here() {
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}
