//! The `dm-apply` binary: parse arguments, run, map the outcome to an exit code. Everything else is in the library.

// Loading a fleet and planning it allocate and free millions of small values (JSON nodes, strings): mimalloc does
// that in about half the instructions of the system allocator (docs/performance.md, "Loading at fleet scale").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // mimalloc asks for transparent huge pages, and the kernel zeroes each 2 MiB page at its first touch: that was
    // a third of apply's CPU at fleet scale, for memory mostly never used (docs/performance.md, "Huge pages").
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    dm_apply::cli::main()
}
