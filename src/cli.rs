//! Command-line definitions (clap derive) and dispatch. Each subcommand's behaviour lives in `commands::<name>`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use crate::duration::{parse_duration, parse_request_timeout};
use crate::ui::{ColorChoice, Data, OutputError, Ui, Verbosity};

/// Declarative management of TiDB Data Migration (DM) sources and tasks.
///
/// Describe sources and tasks in YAML, then validate, plan and apply them against DM-master's OpenAPI.
#[derive(Debug, Parser)]
#[command(name = "dm-apply", version, propagate_version = true, max_term_width = 110)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// When to use colour (NO_COLOR is honoured with `auto`).
    #[arg(long, value_enum, global = true, default_value_t = ColorChoice::Auto, help_heading = GLOBAL)]
    pub color: ColorChoice,

    /// Print less: only errors and the data asked for.
    #[arg(short, long, global = true, conflicts_with = "verbose", help_heading = GLOBAL)]
    pub quiet: bool,

    /// Print more (-v: requests and steps; -vv: debug logs). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = GLOBAL)]
    pub verbose: u8,
}

/// Help heading of the options every command takes (kept apart from each command's own).
const GLOBAL: &str = "Global options";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check configuration files offline (YAML, JSON Schema, semantic checks).
    #[command(after_help = "Examples:\n  dm-apply validate -f examples/\n  \
                            dm-apply validate -f dm/ --allow-missing-env   # secrets not available (pre-commit)")]
    Validate(ValidateArgs),
    /// Compare the configuration with DM-master and print what apply would do.
    #[command(after_help = "Examples:\n  dm-apply plan -f dm/ --addr http://dm-master:8261\n  \
                            dm-apply plan -f dm/ -o markdown --detailed-exitcode --out plan.json")]
    Plan(PlanArgs),
    /// Make DM-master match the configuration (or a saved plan).
    #[command(after_help = "Examples:\n  dm-apply apply -f dm/ --auto-approve\n  dm-apply apply --plan plan.json\n  \
                            dm-apply apply --plan plan.json -o json > report.json   # machine-readable report")]
    Apply(ApplyArgs),
    /// Print a saved plan (`plan --out FILE`) as `plan` printed it (offline: no DM-master, no secrets needed).
    #[command(after_help = "Examples:\n  dm-apply show plan.json\n  dm-apply show plan.json -o markdown > plan.md")]
    Show(ShowArgs),
    /// Report, read-only, how DM-master differs from the configuration (for scheduled jobs).
    #[command(
        after_help = "Example:\n  dm-apply drift -f dm/ -o json --prometheus-textfile /var/lib/node_exporter/dm.prom"
    )]
    Drift(DriftArgs),
    /// Convert dmctl task.yaml/source.yaml files into dm-apply YAML (offline; warns about what cannot be kept).
    #[command(
        after_help = "Examples:\n  dm-apply convert dmctl/source-*.yaml dmctl/task.yaml --out dm/cluster.yaml\n  \
                            dm-apply convert task.yaml > task.dm-apply.yaml"
    )]
    Convert(ConvertArgs),
    /// Write dm-apply YAML for what already runs in a DM cluster (read-only; secrets become ${env:..} placeholders).
    #[command(after_help = "Examples:\n  dm-apply import --addr http://dm-master:8261 --out dm/cluster.yaml\n  \
                            dm-apply import --task orders --source mysql-01 > dm/orders.yaml")]
    Import(ImportArgs),
    /// Operator chores on relay (DM-workers' local copy of an upstream's binlog) that are actions, not state.
    #[command(
        after_help = "Example:\n  dm-apply relay purge mysql-orders --before mysql-bin.000042 --addr http://dm-master:8261"
    )]
    Relay(RelayArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish) on stdout.
    #[command(
        after_help = "Examples:\n  dm-apply completions bash > ~/.local/share/bash-completion/completions/dm-apply\n  \
                            dm-apply completions zsh > \"${fpath[1]}/_dm-apply\"\n  \
                            dm-apply completions fish > ~/.config/fish/completions/dm-apply.fish\n  \
                            dm-apply completions powershell >> $PROFILE"
    )]
    Completions(CompletionsArgs),
    /// Print the man page (generated from these definitions), or write one page per subcommand to a directory.
    #[command(after_help = "Examples:\n  dm-apply man | man -l -\n  dm-apply man --out-dir /usr/local/share/man/man1")]
    Man(ManArgs),
    /// Run the bundled DM-master simulator (for tests, demos and CI dry runs).
    #[command(after_help = "Example:\n  dm-apply sim --listen 127.0.0.1:8261 --workers 3")]
    Sim(SimArgs),
}

/// Which configuration files to read.
#[derive(Debug, Clone, Args)]
pub struct FileArgs {
    /// A YAML file, or a directory whose *.yaml/*.yml files are read recursively in sorted order. Repeatable.
    #[arg(short = 'f', long = "file", value_name = "PATH", required_unless_present = "clusters")]
    pub files: Vec<PathBuf>,
    /// Run for every cluster of this clusters file (address, TLS files, config paths, credential variables),
    /// concurrently, output grouped per cluster; exit 1 if any failed, else 2 if any has changes. Replaces -f/--addr.
    #[arg(long, value_name = "FILE", conflicts_with = "files")]
    pub clusters: Option<PathBuf>,
    /// With --clusters: only this cluster of the file. Repeatable.
    #[arg(long, value_name = "NAME", requires = "clusters")]
    pub cluster: Vec<String>,
}

/// DM-master's address when neither `--addr` nor `DM_APPLY_ADDR` gives one (and no saved plan records one).
pub const DEFAULT_ADDR: &str = "http://127.0.0.1:8261";

/// How to reach DM-master. Shared by every command that talks to it.
#[derive(Debug, Clone, Args)]
pub struct ConnArgs {
    /// DM-master address [default: http://127.0.0.1:8261; `apply --plan`: the address recorded in the plan].
    #[arg(long, env = "DM_APPLY_ADDR", value_name = "URL")]
    pub addr: Option<String>,
    /// PEM file of the CA that signed DM-master's certificate (https).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (with --key).
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM private key of the client certificate (with --cert).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Timeout of one HTTP request, e.g. 30s, 500ms, 2m (at least 1ms).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_request_timeout)]
    pub request_timeout: Duration,
    /// DANGEROUS: accept any server certificate (expired, self-signed, wrong host name). Anyone on the network
    /// path can then read the passwords sent to DM-master. A warning is printed every time.
    #[arg(long)]
    pub insecure_skip_tls_verify: bool,
}

/// dm-apply's state record (fingerprints of write-only values such as source passwords).
#[derive(Debug, Clone, Args)]
pub struct StateArgs {
    /// File holding the state key (at least 16 bytes; one trailing newline is ignored). With a key, fingerprints
    /// are keyed HMACs (fast, and useless to whoever lacks the key); without one they are Argon2id (slow on purpose).
    /// `DM_APPLY_STATE_KEY` can hold the key itself.
    #[arg(long, env = "DM_APPLY_STATE_KEY_FILE", value_name = "FILE")]
    pub state_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Markdown,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub files: FileArgs,
    /// Report an unset `${env:NAME}` or an unreadable `${file:PATH}` as a warning instead of an error (for
    /// pre-commit hooks and pull requests from forks, where the secrets are not available). plan, apply and drift
    /// still require every variable and file.
    #[arg(long)]
    pub allow_missing_env: bool,
}

#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub files: FileArgs,
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Output format on stdout.
    #[arg(short, long, value_enum, default_value_t = PlanFormat::Text)]
    pub output: PlanFormat,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Write the plan to FILE for `apply --plan FILE` (no secret is written). With --clusters: one --cluster.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// With `-o markdown`: also write the plan as pull-request comments DIR/comment-001.md, comment-002.md, ...,
    /// each at most 64,000 bytes, nothing cut (stdout may cut the details to fit one comment). Post them in order.
    #[arg(long, value_name = "DIR")]
    pub split_comments: Option<PathBuf>,
    /// Limit the plan to these resources (`source.NAME`, `task.NAME`) and what they depend on. Repeatable.
    #[arg(long, value_name = "ADDRESS")]
    pub target: Vec<String>,
    /// Delete resources that exist in DM but are no longer declared (otherwise they are listed as unmanaged).
    #[arg(long)]
    pub prune: bool,
    /// Allow replacements that restart a migration from scratch (otherwise such a plan is an error), and source
    /// updates that stop a task in its dump (otherwise deferred until the dump is done).
    #[arg(long)]
    pub allow_restart: bool,
    /// Re-send the write-only values of this resource (`source.NAME`: an update with its password; `task.NAME`: a
    /// replace, which also forces the replacement of a task whose update is deferred), whatever dm-apply's state
    /// record says. Repeatable; `-replace ADDRESS` works too.
    #[arg(long, value_name = "ADDRESS")]
    pub replace: Vec<String>,
    /// Update or replace this task (`task.NAME`) even though DM holds settings of it that dm-apply's configuration
    /// cannot carry (set with dmctl: validators, expression filters, `Do` filters...): they are lost. Repeatable.
    #[arg(long, value_name = "ADDRESS")]
    pub accept_loss: Vec<String>,
    #[command(flatten)]
    pub state: StateArgs,
    /// Do not read the upstreams' table lists to preview which tables the changed tasks start or stop
    /// replicating (the preview costs a few requests per source of a changed task; none when nothing changes).
    #[arg(long)]
    pub no_preview: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    /// Configuration files (not needed with --clusters). With --plan: where the configuration the plan was made
    /// from is (by default the paths recorded in the plan, looked up in the current directory, then where plan ran).
    #[arg(short = 'f', long = "file", value_name = "PATH", required_unless_present_any = ["plan", "clusters"])]
    pub files: Vec<PathBuf>,
    /// Apply one cluster of this clusters file (named by --cluster), with its address, TLS files, configuration
    /// paths and credential variables, as `plan --clusters` plans it. Replaces -f/--addr.
    #[arg(long, value_name = "FILE", conflicts_with = "files", requires = "cluster")]
    pub clusters: Option<PathBuf>,
    /// The cluster of --clusters to apply (one per run: each cluster's report and exit code stand alone).
    #[arg(long, value_name = "NAME", requires = "clusters")]
    pub cluster: Option<String>,
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Apply this saved plan, exactly: the plan is made again from the configuration and DM and runs only when it
    /// equals the file (refused when the file was edited, or DM or the configuration changed since). --prune,
    /// --target and --replace must be those the plan was made with.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// Delete resources that exist in DM but are no longer declared.
    #[arg(long)]
    pub prune: bool,
    /// Limit to these resources and what they depend on. Repeatable.
    #[arg(long, value_name = "ADDRESS")]
    pub target: Vec<String>,
    /// Allow replacements that restart a migration from scratch, and source updates that stop a task in its dump.
    #[arg(long)]
    pub allow_restart: bool,
    /// Re-send the write-only values of this resource (`source.NAME`: an update with its password; `task.NAME`: a
    /// replace, which also forces the replacement of a task whose update is deferred), whatever dm-apply's state
    /// record says. Repeatable; `-replace ADDRESS` works too.
    #[arg(long, value_name = "ADDRESS")]
    pub replace: Vec<String>,
    /// Update or replace this task (`task.NAME`) even though DM holds settings of it that dm-apply's configuration
    /// cannot carry (set with dmctl): they are lost. Repeatable.
    #[arg(long, value_name = "ADDRESS")]
    pub accept_loss: Vec<String>,
    /// Safe mode after a task resumes from its checkpoint (a replace or rename): DM's safe_mode_time_duration, in
    /// binlog time from the first event, covering the events replayed since the last flushed checkpoint.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub resume_safe_mode: Duration,
    /// Wait until the tasks a deferred change waits for get there (an update: the Sync unit; a source update: the
    /// end of their dump), then plan again and apply (default limit 1h). Not with --plan.
    #[arg(long, value_name = "DURATION", num_args = 0..=1, require_equals = true, default_missing_value = "1h",
          value_parser = parse_duration, conflicts_with = "plan")]
    pub wait_for_sync: Option<Duration>,
    #[command(flatten)]
    pub state: StateArgs,
    /// Replace the apply lease another apply holds (one that died and left it behind). Says whose lease it was.
    #[arg(long, conflicts_with = "no_lease")]
    pub take_over_lease: bool,
    /// Apply without taking the lease (when dm-apply's state record cannot be written): nothing keeps another
    /// apply out meanwhile.
    #[arg(long)]
    pub no_lease: bool,
    /// With --plan and no --addr/DM_APPLY_ADDR: use the DM-master address recorded in the saved plan. Explicit,
    /// because the address decides where passwords are sent and a plan file can be edited.
    #[arg(long, requires = "plan")]
    pub use_plan_addr: bool,
    /// Maximum number of operations in flight.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub parallelism: u32,
    /// Stop scheduling everything after the first failure (default: only what depends on it).
    #[arg(long)]
    pub fail_fast: bool,
    /// How long to wait for a started task to run (or a stopped one to pause).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub wait_timeout: Duration,
    /// Skip the plan made after applying that checks nothing is left to do.
    #[arg(long)]
    pub no_verify: bool,
    /// Do not preview which tables the changed tasks start or stop replicating before asking for approval (the
    /// preview is computed only when apply asks; see `plan --no-preview`).
    #[arg(long)]
    pub no_preview: bool,
    /// Format of the final report on stdout: `json` is a versioned machine-readable report (every step with its
    /// outcome, DM code and message; the tasks left stopped; counts); the plan and progress then go to stderr.
    #[arg(short, long, value_enum, default_value_t = ReportFormat::Text)]
    pub output: ReportFormat,
    /// Overall time limit of the execution, e.g. 10m: afterwards no new step starts, waits in flight end, and the
    /// report lists the rest as not started (exit 1). Each request is still bounded by --request-timeout.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub deadline: Option<Duration>,
}

#[derive(Debug, Clone, Args)]
pub struct ShowArgs {
    /// The saved plan (written by `dm-apply plan --out FILE`).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Output format on stdout (the same output as `plan -o FORMAT` printed).
    #[arg(short, long, value_enum, default_value_t = PlanFormat::Text)]
    pub output: PlanFormat,
}

#[derive(Debug, Clone, Args)]
pub struct DriftArgs {
    #[command(flatten)]
    pub files: FileArgs,
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Output format on stdout.
    #[arg(short, long, value_enum, default_value_t = ReportFormat::Text)]
    pub output: ReportFormat,
    /// Also write Prometheus gauges to this file (atomically), for node_exporter's textfile collector.
    #[arg(long, value_name = "PATH")]
    pub prometheus_textfile: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ConvertArgs {
    /// dmctl task.yaml and source.yaml files (the kind of each is detected from its keys), or directories of them.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Write the dm-apply YAML to FILE instead of stdout (missing parent directories are created).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Deprecated spelling of --out (for plan and drift, -o is the output format).
    #[arg(short = 'o', long = "output", value_name = "FILE", hide = true, conflicts_with = "out")]
    pub legacy_out: Option<PathBuf>,
    /// What the `# yaml-language-server: $schema=` line points at (a path relative to the output file, or a URL).
    #[arg(long, value_name = "PATH_OR_URL", default_value = "../schemas/dm-apply.schema.json")]
    pub schema_ref: String,
}

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Import this source. Repeatable. Without --source and --task, everything is imported.
    #[arg(long = "source", value_name = "NAME")]
    pub sources: Vec<String>,
    /// Import this task (its sources not imported are listed in external_sources). Repeatable.
    #[arg(long = "task", value_name = "NAME")]
    pub tasks: Vec<String>,
    /// Write the YAML to FILE instead of stdout (missing parent directories are created).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Deprecated spelling of --out (for plan and drift, -o is the output format).
    #[arg(short = 'o', long = "output", value_name = "FILE", hide = true, conflicts_with = "out")]
    pub legacy_out: Option<PathBuf>,
    /// What the `# yaml-language-server: $schema=` line points at (a path relative to the output file, or a URL).
    #[arg(long, value_name = "PATH_OR_URL", default_value = "../schemas/dm-apply.schema.json")]
    pub schema_ref: String,
}

#[derive(Debug, Clone, Args)]
pub struct RelayArgs {
    #[command(subcommand)]
    pub command: RelayCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum RelayCommand {
    /// Delete a source's relay log files older than a binlog file, on every worker relaying it (asks first).
    #[command(after_help = "Examples:\n  dm-apply relay purge mysql-orders --before mysql-bin.000042\n  \
                            dm-apply relay purge mysql-orders --before mysql-bin.000042 --auto-approve   # CI")]
    Purge(RelayPurgeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct RelayPurgeArgs {
    /// The source whose relay logs are purged.
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// Relay log files before this binlog file are deleted (e.g. mysql-bin.000042; the file itself is kept).
    #[arg(long, value_name = "BINLOG")]
    pub before: String,
    /// Relay sub-directory the binlog file name refers to (e.g. 2ae76434-f79f-11e8-bde2-0242ac130008.000001);
    /// DM's default is the newest one.
    #[arg(long, value_name = "DIR")]
    pub sub_dir: Option<String>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// Write dm-apply.1 and dm-apply-<subcommand>.1 into DIR instead of printing dm-apply.1.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Simulator")]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8261", value_name = "HOST:PORT")]
    pub listen: String,
    /// Number of DM-workers (each can be bound to one source).
    #[arg(long, default_value_t = 3)]
    pub workers: usize,
    /// Latency added to every request, in milliseconds.
    #[arg(long, default_value_t = 0, help_heading = "Faults and latency")]
    pub latency_ms: u64,
    /// Fraction (0.0-1.0) of requests that fail with an injected fault.
    #[arg(long, default_value_t = 0.0, help_heading = "Faults and latency")]
    pub fault_rate: f64,
    /// Kinds of injected faults, comma separated: 5xx, reset, delay.
    #[arg(long, value_delimiter = ',', default_value = "5xx,reset,delay", help_heading = "Faults and latency")]
    pub fault_kinds: Vec<String>,
    /// Which DM-master generation to mimic: `v8.5.3` (v8.5.0-v8.5.3: no request-default injection), `v8.5.4`
    /// (v8.5.4-v8.5.7: default injection, otherwise v8.5), `v26.3` or `head`. `v8.5` means `v8.5.3`.
    #[arg(long, default_value = "v8.5.4")]
    pub generation: String,
    /// `on`: DM-master runs with `openapi = true`; `off`: every `/api/v1/...` request answers a plain-text
    /// `404 page not found`, as a master without OpenAPI does.
    #[arg(long, default_value = "on", value_name = "on|off")]
    pub openapi: String,
    /// Seed for the simulator's random choices (list order, server ids), for reproducible runs.
    #[arg(long)]
    pub seed: Option<u64>,
    /// How long an asynchronous transition takes (start → Running, stop → Paused), in milliseconds. Full and all
    /// tasks spend three times this in each of the Dump and Load units.
    #[arg(long, default_value_t = 20)]
    pub stage_delay_ms: u64,
    /// Serve https with this PEM certificate chain (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key", help_heading = "TLS")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert", help_heading = "TLS")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by a CA in this PEM file (mutual TLS; needs --tls-cert).
    #[arg(long, value_name = "FILE", requires = "tls_cert", help_heading = "TLS")]
    pub tls_client_ca: Option<PathBuf>,
}

/// Terraform spells it `-replace ADDRESS` / `-replace=ADDRESS`; clap knows only `--replace`.
fn terraform_replace(arg: std::ffi::OsString) -> std::ffi::OsString {
    match arg.to_str() {
        Some(a) if a == "-replace" || a.starts_with("-replace=") => format!("-{a}").into(),
        _ => arg,
    }
}

/// Entry point of the binary.
///
/// Exit codes: 0 success; 1 any error, usage errors included (a mistyped flag must not read as "changes present"
/// to `plan --detailed-exitcode` or as "drift" to `drift`, which use 2); 2 changes or drift present; 130 apply
/// interrupted (SIGINT, SIGTERM or SIGHUP). A panic is a bug: every output path is checked, so 101 never happens.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(std::env::args_os().map(terraform_replace)) {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let verbosity = match (cli.quiet, cli.verbose) {
        (true, _) => Verbosity::Quiet,
        (false, 0) => Verbosity::Normal,
        (false, 1) => Verbosity::Verbose,
        _ => Verbosity::Debug,
    };
    let ui = Ui::new(cli.color, verbosity);
    crate::ui::install(&ui);
    init_logging(&ui);
    let color = ui.color_stderr;
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .color(color)
                .unicode(color)
                .terminal_links(false)
                // A `--flag` or an address split at a hyphen cannot be copied from the message.
                .word_splitter(textwrap::WordSplitter::NoHyphenation)
                .build(),
        )
    }));
    match crate::commands::run(cli.command, &ui) {
        Ok(code) => ExitCode::from(code),
        // The reader of stdout went away (`| head`): nothing left to say to anyone.
        Err(report) if matches!(report.downcast_ref::<OutputError>(), Some(OutputError::Closed)) => ExitCode::from(1),
        Err(report) => {
            ui.diagnostic(&report);
            ExitCode::from(1)
        }
    }
}

/// `--help` and `--version` print and exit 0; every other parse error is a usage error: message on stderr, exit 1.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let ok = matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
    let text = if ok { e.render().to_string() } else { e.render().ansi().to_string() };
    if ok {
        // Help goes to stdout (it is what was asked for); a closed stdout is not an error worth a panic.
        let _ = Ui::plain().data(Data::Plain, &text);
        ExitCode::SUCCESS
    } else {
        let colors = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        crate::ui::install(&Ui { color_stderr: colors, ..Ui::plain() });
        crate::ui::eprint(&if colors { text } else { e.render().to_string() });
        ExitCode::from(1)
    }
}

fn init_logging(ui: &Ui) {
    use tracing_subscriber::EnvFilter;
    let default = match ui.verbosity {
        Verbosity::Quiet => "error",
        Verbosity::Normal => "warn",
        Verbosity::Verbose => "dm_apply=info",
        Verbosity::Debug => "dm_apply=debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::ui::LogWriter)
        .with_ansi(ui.color_stderr)
        .with_target(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn single_dash_replace() {
        let args = ["dm-apply", "plan", "-f", "x", "-replace", "source.a", "-replace=task.b"];
        let cli = Cli::parse_from(args.iter().map(|a| terraform_replace((*a).into())));
        match cli.command {
            Command::Plan(p) => assert_eq!(p.replace, ["source.a", "task.b"]),
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn request_timeouts_are_not_zero() {
        assert_eq!(parse_request_timeout("1ms"), Ok(Duration::from_millis(1)));
        for zero in ["0", "0s", "0ms", "0.0001s", "0h"] {
            assert!(parse_request_timeout(zero).unwrap_err().contains("greater than zero"), "{zero}");
        }
    }
}
