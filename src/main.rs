//! The `gwanje` binary: the command line lives in [`gwanje::cli`].

fn main() -> std::process::ExitCode {
    gwanje::cli::main()
}
