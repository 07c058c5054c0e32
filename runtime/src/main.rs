//! The `wsrun` binary: everything happens in `wsrun::cli`.
//!
//! The global allocator is mimalloc: a fresh WebAssembly instance per request makes a few
//! hundred short-lived allocations, and mimalloc serves them faster than glibc's malloc (+5.5%
//! req/s on the hello component, `bench/wasm.sh`). Built with `no_thp` so that its arenas are
//! not backed by transparent huge pages: with them an idle Flask worker grew by 8 MiB.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    wsrun::cli::main()
}
