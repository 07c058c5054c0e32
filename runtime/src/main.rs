//! The `wsrun` binary: everything happens in `wsrun::cli`.

fn main() -> std::process::ExitCode {
    wsrun::cli::main()
}
