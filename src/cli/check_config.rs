//! `gwanje check-config`: every error of every file, with its line.

use std::path::PathBuf;
use std::process::ExitCode;

/// Validate configuration files and print a summary; every error is listed.
#[derive(clap::Args)]
pub struct Args {
    /// Daemon configuration files to check (with the catalogs they name).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// Checks each file; exit 64 when any has an error.
pub fn run(args: Args) -> ExitCode {
    let mut failed = false;
    for file in &args.files {
        match crate::config::load(file) {
            Ok(plan) => print!("{}", plan.summary()),
            Err(errors) => {
                failed = true;
                eprintln!("{errors}");
                eprintln!("{}: {} error(s)", file.display(), errors.0.len());
            }
        }
    }
    if failed {
        ExitCode::from(super::EXIT_CONFIG)
    } else {
        ExitCode::SUCCESS
    }
}
