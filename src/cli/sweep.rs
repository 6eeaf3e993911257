//! `gwanje sweep`: the recorded probe results through each value of one
//! setting, one row per value.

use std::path::PathBuf;
use std::process::ExitCode;

use super::history::{self, Recorded};
use crate::analysis::{sweep as sw, whatif};

/// Replay recorded probe results through each value of one setting.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    recorded: Recorded,
    /// The setting and its values, e.g. detection.fall=2,3,4,5 or
    /// failback.after=2s,10s,30s.
    setting: String,
    /// The configuration to vary (the recorded one when absent).
    #[arg(long)]
    config: Option<PathBuf>,
    /// `text` (a table) or `json`.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
}

/// Prints one row per value.
pub fn run(args: Args) -> ExitCode {
    sweep(
        &args.recorded,
        args.config.as_deref(),
        &args.setting,
        &args.format,
    )
}

/// The sweep itself (also behind `gwanje replay --sweep`, for a release).
pub fn sweep(
    recorded: &Recorded,
    config: Option<&std::path::Path>,
    setting: &str,
    format: &str,
) -> ExitCode {
    let other = match history::plan(config) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (history, base) = match history::load(recorded, other.as_ref()) {
        Ok(h) => h,
        Err(code) => return code,
    };
    let cfg = other.map_or(base, |p| p.core_config());
    let swept = sw::parse(setting)
        .and_then(|(key, values)| sw::sweep(&history, &cfg, &key, &values).map(|r| (key, r)));
    match swept {
        Ok((key, rows)) => {
            if format == "json" {
                println!("{}", serde_json::json!({ "key": key, "rows": rows }));
            } else {
                print!("{}", sw::table(&key, &rows));
                println!("method: {}", whatif::method(&history));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gwanje: {e}");
            ExitCode::from(super::EXIT_CONFIG)
        }
    }
}
