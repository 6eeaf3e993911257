//! `gwanje journal export`: the recorded series for Prometheus.

use std::path::PathBuf;
use std::process::ExitCode;

use super::time::parse_time;

/// Work with the journal's history.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Write the recorded series (probe results and durations, target,
    /// path and group states) for `promtool tsdb create-blocks-from openmetrics`.
    Export {
        /// The journal folder.
        #[arg(long)]
        journal: PathBuf,
        /// The format (OpenMetrics text).
        #[arg(long, default_value = "openmetrics", value_parser = ["openmetrics"])]
        format: String,
        /// From (RFC 3339).
        #[arg(long, value_parser = parse_time)]
        from: Option<u64>,
        /// To (RFC 3339).
        #[arg(long, value_parser = parse_time)]
        to: Option<u64>,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Exports the journal's series.
pub fn run(args: Args) -> ExitCode {
    let Action::Export {
        journal,
        format: _,
        from,
        to,
        out,
    } = args.action;
    use crate::analysis::export::{ExportError, openmetrics};
    use std::io::Write;
    let written = match out {
        // Written beside --out and moved there when whole: a failed export
        // leaves an earlier one in place.
        Some(p) => {
            let part = p.with_extension("partial");
            let io = |what: &std::path::Path| {
                let what = format!("{}", what.display());
                move |source| ExportError::Io { what, source }
            };
            std::fs::File::create(&part)
                .map_err(io(&part))
                .and_then(|f| {
                    let mut w = std::io::BufWriter::new(f);
                    openmetrics(&journal, from, to, &mut w)?;
                    w.flush().map_err(io(&part))
                })
                .and_then(|()| std::fs::rename(&part, &p).map_err(io(&p)))
                .inspect_err(|_| {
                    let _ = std::fs::remove_file(&part);
                })
        }
        None => {
            let mut w = std::io::BufWriter::new(std::io::stdout().lock());
            openmetrics(&journal, from, to, &mut w).and_then(|()| {
                w.flush().map_err(|source| ExportError::Io {
                    what: "standard output".into(),
                    source,
                })
            })
        }
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(ExportError::Journal(e)) => {
            eprintln!("gwanje: {e}");
            ExitCode::from(super::EXIT_NO_INPUT)
        }
        Err(e) => {
            eprintln!("gwanje: writing the export: {e}");
            ExitCode::FAILURE
        }
    }
}
