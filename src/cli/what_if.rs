//! `gwanje what-if`: the recorded probe results through another
//! configuration, and what it would have decided differently.

use std::path::PathBuf;
use std::process::ExitCode;

use super::history::{self, Recorded};

/// What if: replay recorded probe results through another configuration.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    recorded: Recorded,
    /// The other configuration.
    #[arg(long)]
    config: PathBuf,
    /// `text` (the differences in words) or `json`.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
}

/// Prints the differences between the recorded and the other configuration.
pub fn run(args: Args) -> ExitCode {
    what_if(&args.recorded, &args.config, &args.format)
}

/// The what-if itself (also behind `gwanje replay --config`, for a release).
pub fn what_if(recorded: &Recorded, config: &std::path::Path, format: &str) -> ExitCode {
    let other = match history::plan(Some(config)) {
        Ok(p) => p.expect("a file was given"),
        Err(code) => return code,
    };
    let (history, base) = match history::load(recorded, Some(&other)) {
        Ok(h) => h,
        Err(code) => return code,
    };
    let result = crate::analysis::whatif::what_if(&history, &base, &other.core_config());
    if format == "json" {
        println!(
            "{}",
            serde_json::to_string(&result).expect("what-if encodes")
        );
    } else {
        print!("{result}");
    }
    ExitCode::SUCCESS
}
