//! Where what-if and sweep take recorded probe results from: a journal, or
//! a Prometheus that scraped gwanje when no journal exists.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::time::parse_time;
use crate::analysis::History;
use crate::core::CoreConfig;
use crate::plan::Plan;

/// The recorded probe results to replay.
#[derive(clap::Args)]
pub struct Recorded {
    /// The journal folder (`journal.dir` of the config).
    #[arg(
        long,
        required_unless_present = "prometheus",
        conflicts_with = "prometheus"
    )]
    pub journal: Option<PathBuf>,
    /// Without a journal: rebuild probe results from this Prometheus
    /// (range queries of probe_success and gwanje_router_up; needs
    /// --config, --from and --to).
    #[arg(long, requires_all = ["config", "from", "to"])]
    pub prometheus: Option<String>,
    /// From (RFC 3339); the first record when absent.
    #[arg(long, value_parser = parse_time)]
    pub from: Option<u64>,
    /// To (RFC 3339); the last record when absent.
    #[arg(long, value_parser = parse_time)]
    pub to: Option<u64>,
}

/// Loads a configuration file for a what-if: its errors printed, exit 64.
pub fn plan(file: Option<&Path>) -> Result<Option<Plan>, ExitCode> {
    file.map(crate::config::load).transpose().map_err(|errors| {
        eprintln!("{errors}");
        ExitCode::from(super::EXIT_CONFIG)
    })
}

/// The history and the configuration it was recorded with (or `plan`'s
/// when the record holds none); warnings printed.
pub fn load(rec: &Recorded, plan: Option<&Plan>) -> Result<(History, CoreConfig), ExitCode> {
    let history = match (&rec.journal, &rec.prometheus) {
        (Some(dir), _) => crate::analysis::history::from_journal(dir)
            .map(|h| h.between(rec.from, rec.to))
            .map_err(anyhow::Error::from),
        (None, Some(url)) => {
            let plan = plan.expect("clap requires --config with --prometheus");
            let (from, to) = (rec.from.unwrap_or_default(), rec.to.unwrap_or_default());
            crate::analysis::prometheus::history(url, plan, from, to).map_err(anyhow::Error::from)
        }
        (None, None) => unreachable!("clap requires --journal or --prometheus"),
    };
    let history = history.map_err(|e| {
        eprintln!("gwanje: {e:#}");
        ExitCode::from(super::EXIT_NO_INPUT)
    })?;
    for w in &history.warnings {
        eprintln!("warning: {w}");
    }
    let Some(base) = history
        .config
        .clone()
        .or_else(|| plan.map(Plan::core_config))
    else {
        eprintln!("gwanje: the journal holds no configuration; give --config");
        return Err(ExitCode::from(super::EXIT_NO_INPUT));
    };
    Ok((history, base))
}
