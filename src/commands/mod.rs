//! One module per subcommand. Each `run` returns the process exit code, or a report that `cli::main` prints and
//! turns into exit code 1.

use crate::cli::Command;
use crate::ui::Ui;

pub mod apply;
pub mod clusters;
pub mod common;
pub mod completions;
pub mod convert;
pub mod drift;
pub mod import;
pub mod man;
pub mod plan;
pub mod relay;
pub mod reporter;
pub mod show;
pub mod sim;
pub mod validate;

/// Exit code: success, no changes, no drift.
pub const EXIT_OK: u8 = 0;
/// Exit code: an error (invalid input, failed request, failed step).
pub const EXIT_ERROR: u8 = 1;
/// Exit code with `--detailed-exitcode` / for `drift`: changes or drift present.
pub const EXIT_CHANGES: u8 = 2;
/// Exit code of an apply interrupted by SIGINT (Ctrl-C), SIGTERM or SIGHUP, after its report (128 + SIGINT, what
/// shells show for Ctrl-C; the same for every signal so CI needs one rule).
pub const EXIT_INTERRUPTED: u8 = 130;

pub fn run(command: Command, ui: &Ui) -> miette::Result<u8> {
    match command {
        Command::Validate(args) => validate::run(&args, ui),
        Command::Plan(args) => runtime()?.block_on(plan::run(&args, ui)),
        Command::Apply(args) => runtime()?.block_on(apply::run(&args, ui)),
        Command::Show(args) => show::run(&args, ui),
        Command::Drift(args) => runtime()?.block_on(drift::run(&args, ui)),
        Command::Convert(args) => convert::run(&args, ui),
        Command::Import(args) => runtime()?.block_on(import::run(&args, ui)),
        Command::Relay(args) => runtime()?.block_on(relay::run(&args, ui)),
        Command::Completions(args) => completions::run(&args, ui),
        Command::Man(args) => man::run(&args, ui),
        Command::Sim(args) => runtime()?.block_on(sim::run(&args, ui)),
    }
}

fn runtime() -> miette::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| miette::miette!("cannot start the async runtime: {e}"))
}
