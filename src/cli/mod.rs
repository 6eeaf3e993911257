//! The `gwanje` command line: one file per command, this one the table of
//! them. `src/main.rs` only calls [`main`].

mod check_config;
mod demo;
mod history;
mod journal;
mod replay;
mod report;
mod run;
mod sweep;
mod time;
mod verify;
mod what_if;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for bad command lines and configurations (EX_USAGE).
pub const EXIT_CONFIG: u8 = 64;
/// Exit code for a journal or history that cannot be read (EX_NOINPUT).
pub const EXIT_NO_INPUT: u8 = 66;

/// gwanje (관제): network health monitor and failover controller.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: probe every target, export metrics, serve the API.
    Run(run::Args),
    /// Apply a cluster's route orders on this host without probing or
    /// campaigning (a router host): fences checked, routes read back,
    /// refusals counted and alerted. Needs the config's `cluster` section.
    Actuate(run::Args),
    /// Replay a journal through the decision core: a timeline in plain
    /// words, or (--verify) proof that the core reproduces every recorded
    /// effect.
    Replay(replay::Args),
    /// What if: replay recorded probe results (a journal, or Prometheus)
    /// through another configuration and print what it would have decided
    /// differently.
    WhatIf(what_if::Args),
    /// Replay recorded probe results through each value of one setting
    /// (e.g. detection.fall=2,3,4,5): one row per value.
    Sweep(sweep::Args),
    /// Write the incident report from the journal: report.md and one
    /// self-contained report.html (inline SVG plots) into --out.
    Report(report::Args),
    /// Work with the journal's history (export it for Prometheus).
    Journal(journal::Args),
    /// Watch a router fail and gwanje move the traffic, on a simulated
    /// network in namespaces (root): the whole story in about 90 seconds.
    Demo(demo::Args),
    /// Run an identity target's canary flow at rising concurrency before a
    /// release: exit 0 when every canary got only its own documents, 1 when
    /// any got another's (or a registration number it may not see), 2 when
    /// the flow failed before anything was proven.
    Verify(verify::Args),
    /// Validate configuration files and print a summary; every error is listed.
    CheckConfig(check_config::Args),
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version are not errors; a bad command line is EX_USAGE.
            return if e.use_stderr() {
                ExitCode::from(EXIT_CONFIG)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Run(a) => run::run(a),
        Command::Actuate(a) => run::actuate(a),
        Command::Replay(a) => replay::run(a),
        Command::WhatIf(a) => what_if::run(a),
        Command::Sweep(a) => sweep::run(a),
        Command::Report(a) => report::run(a),
        Command::Journal(a) => journal::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Verify(a) => verify::run(a),
        Command::CheckConfig(a) => check_config::run(a),
    }
}
