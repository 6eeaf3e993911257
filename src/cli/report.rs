//! `gwanje report`: the incident report from a journal.

use std::path::PathBuf;
use std::process::ExitCode;

use super::time::parse_time;

/// Write the incident report from the journal.
#[derive(clap::Args)]
pub struct Args {
    /// The journal folder.
    #[arg(long)]
    journal: PathBuf,
    /// From (RFC 3339); the first record when absent.
    #[arg(long, value_parser = parse_time)]
    from: Option<u64>,
    /// To (RFC 3339); the last record when absent.
    #[arg(long, value_parser = parse_time)]
    to: Option<u64>,
    /// Only this service's targets and checks.
    #[arg(long)]
    service: Option<String>,
    /// The folder to write into (created when missing).
    #[arg(long)]
    out: PathBuf,
}

/// Writes report.md and report.html into `--out`.
pub fn run(args: Args) -> ExitCode {
    let scope = crate::analysis::report::Scope {
        from: args.from,
        to: args.to,
        service: args.service,
    };
    let report = match crate::analysis::report::build(&args.journal, &scope) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gwanje: {e}");
            return ExitCode::from(super::EXIT_NO_INPUT);
        }
    };
    let out = &args.out;
    let written = std::fs::create_dir_all(out)
        .and_then(|()| std::fs::write(out.join("report.md"), report.markdown()))
        .and_then(|()| std::fs::write(out.join("report.html"), report.html()));
    match written {
        Ok(()) => {
            println!(
                "wrote {} and {}",
                out.join("report.md").display(),
                out.join("report.html").display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gwanje: writing into {}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
}
