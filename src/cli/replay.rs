//! `gwanje replay`: the journal through the decision core, as a timeline
//! or (`--verify`) compared with what was recorded.

use std::path::PathBuf;
use std::process::ExitCode;

use super::history::Recorded;
use super::time::parse_time;

/// Replay a journal through the decision core.
#[derive(clap::Args)]
pub struct Args {
    /// The journal folder (`journal.dir` of the config).
    #[arg(long, required_unless_present = "prometheus")]
    journal: Option<PathBuf>,
    /// Show the timeline from this time on (RFC 3339, e.g. 2026-12-03T14:00:00Z).
    #[arg(long, value_parser = parse_time)]
    from: Option<u64>,
    /// Show the timeline up to this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    to: Option<u64>,
    /// `text` (one line per event) or `json` (one object per line).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
    /// Compare every replayed effect with the recorded one; exit 1 on the first difference.
    #[arg(long)]
    verify: bool,
    /// Moved to `gwanje what-if --config` (accepted here until the next release).
    #[arg(long, conflicts_with = "verify", hide = true)]
    config: Option<PathBuf>,
    /// Moved to `gwanje sweep` (accepted here until the next release).
    #[arg(long, conflicts_with = "verify", hide = true)]
    sweep: Option<String>,
    /// Moved to `gwanje what-if --prometheus` (accepted here until the next release).
    #[arg(long, requires_all = ["config", "from", "to"], conflicts_with = "journal", hide = true)]
    prometheus: Option<String>,
}

/// Prints the timeline, or verifies.
pub fn run(args: Args) -> ExitCode {
    if args.config.is_some() || args.sweep.is_some() || args.prometheus.is_some() {
        return moved(args);
    }
    let journal = args.journal.expect("clap requires --journal");
    let outcome = match crate::replay::replay(&journal, args.from, args.to) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("gwanje: {e}");
            return ExitCode::from(super::EXIT_NO_INPUT);
        }
    };
    for w in &outcome.warnings {
        eprintln!("warning: {w}");
    }
    if args.verify {
        return verified(&outcome);
    }
    for e in &outcome.entries {
        if args.format == "json" {
            println!("{}", serde_json::to_string(e).expect("entries encode"));
        } else {
            // Journal text may carry control sequences: escaped for the terminal.
            println!("{}  {}", e.time, crate::logging::escape(&e.text));
        }
    }
    ExitCode::SUCCESS
}

fn verified(outcome: &crate::replay::Outcome) -> ExitCode {
    if outcome.gaps > 0 {
        eprintln!(
            "note: {} gap(s) in the record; verified from each resync snapshot on",
            outcome.gaps
        );
    }
    if outcome.truncated > 0 {
        eprintln!(
            "note: the journal ends inside a step: {} effect(s) of its last input were never recorded (gwanje stopped there)",
            outcome.truncated
        );
    }
    match &outcome.divergence {
        None => {
            println!("identical: {} effects", outcome.identical);
            ExitCode::SUCCESS
        }
        Some(d) => {
            println!(
                "diverged after {} identical effects, at {}:\n  expected: {}\n  got:      {}",
                outcome.identical,
                crate::replay::rfc3339(d.at),
                d.expected,
                d.got
            );
            ExitCode::from(1)
        }
    }
}

/// The what-if flags `replay` had before `what-if` and `sweep` were
/// commands of their own: still accepted, with a note, for one release.
fn moved(args: Args) -> ExitCode {
    let recorded = Recorded {
        journal: args.journal,
        prometheus: args.prometheus,
        from: args.from,
        to: args.to,
    };
    if let Some(setting) = &args.sweep {
        eprintln!(
            "note: `gwanje replay --sweep` is now `gwanje sweep`; this form goes away in the next release"
        );
        return super::sweep::sweep(&recorded, args.config.as_deref(), setting, &args.format);
    }
    eprintln!(
        "note: `gwanje replay --config` is now `gwanje what-if`; this form goes away in the next release"
    );
    let config = args
        .config
        .expect("clap: --config, --sweep or --prometheus");
    super::what_if::what_if(&recorded, &config, &args.format)
}
