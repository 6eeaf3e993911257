//! `gwanje verify`: the canary identity gate before a release.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

/// Run an identity target's canary flow at rising concurrency.
#[derive(clap::Args)]
pub struct Args {
    /// The daemon configuration file (with the catalogs it names).
    #[arg(short, long, env = "GWANJE_CONFIG")]
    config: PathBuf,
    /// The identity target, SERVICE/TARGET.
    #[arg(long)]
    target: String,
    /// Rounds at each concurrency level (every canary runs once a round).
    #[arg(long, default_value_t = 10)]
    rounds: u32,
    /// Concurrency levels, run one after another.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    concurrency: Vec<usize>,
    /// `text` (a table) or `json`.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
}

/// Runs the gate: exit 0 clean, 1 exposed, 2 inconclusive.
pub fn run(args: Args) -> ExitCode {
    use crate::verify::{self, Verdict};
    let plan = match crate::config::load(&args.config) {
        Ok(plan) => plan,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(super::EXIT_CONFIG);
        }
    };
    let request = verify::Request {
        rounds: args.rounds,
        concurrency: args.concurrency,
    };
    let report = tokio::runtime::Runtime::new()
        .context("starting the runtime")
        .and_then(|rt| {
            rt.block_on(async {
                let target = verify::find(&plan, &args.target)?;
                let ctx = crate::probe::ProbeContext::new()
                    .context("reading the resolver configuration")?;
                Ok(verify::run(&ctx, target, &request).await?)
            })
        });
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gwanje verify: {e:#}");
            return ExitCode::from(super::EXIT_CONFIG);
        }
    };
    if args.format == "json" {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        print!("{report}");
    }
    match report.verdict() {
        Verdict::Clean => ExitCode::SUCCESS,
        Verdict::Exposed => ExitCode::from(1),
        Verdict::Inconclusive => ExitCode::from(2),
    }
}
