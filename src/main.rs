//! The `dm-apply` binary: parse arguments, run, map the outcome to an exit code. Everything else is in the library.

fn main() -> std::process::ExitCode {
    dm_apply::cli::main()
}
