//! The `dm-apply` binary: parse arguments, run, map the outcome to an exit code. Everything else is in the library.

// Loading a fleet and planning it allocate and free millions of small values (JSON nodes, strings): mimalloc does
// that in about half the instructions of the system allocator (docs/performance.md, "Loading at fleet scale").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    dm_apply::cli::main()
}
