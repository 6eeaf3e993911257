//! `gwanje demo`: the simulated network, and breaking it by hand.

use std::process::ExitCode;

use crate::demo::{How, Pace, Thing};

/// Watch a router fail and gwanje move the traffic.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    /// `normal` leaves time to read each step; `fast` is the same story with short pauses.
    #[arg(long, value_enum, default_value = "normal")]
    pace: Pace,
    /// Keep the network up to break and mend by hand (`gwanje demo break …`); Ctrl-C ends it.
    #[arg(long)]
    interactive: bool,
    /// Where --interactive serves gwanje's API on the host.
    #[arg(long, default_value = "127.0.0.1:9470")]
    listen: std::net::SocketAddr,
    /// With --interactive: start Prometheus and Alertmanager (Debian
    /// packages) scraping the demo with the shipped rules.
    #[arg(long, requires = "interactive")]
    with_prometheus: bool,
}

/// What to do to a running `gwanje demo --interactive`.
#[derive(clap::Subcommand)]
enum Action {
    /// Break a router (in one of several ways) or a service.
    Break {
        /// What to break.
        #[arg(value_enum)]
        thing: Thing,
        /// How a router breaks.
        #[arg(long, value_enum, default_value = "forwarding")]
        how: How,
        /// The demo to change, when several run.
        #[arg(long)]
        pid: Option<i32>,
    },
    /// Mend everything broken about a router or a service.
    Mend {
        /// What to mend.
        #[arg(value_enum)]
        thing: Thing,
        /// The demo to change, when several run.
        #[arg(long)]
        pid: Option<i32>,
    },
    /// What can be broken, and the running demo's state.
    List {
        /// The demo to show, when several run.
        #[arg(long)]
        pid: Option<i32>,
    },
}

/// Runs the demo, or changes a running one.
pub fn run(args: Args) -> ExitCode {
    let Some(action) = args.action else {
        return crate::demo::run(&crate::demo::Options {
            pace: args.pace,
            interactive: args.interactive,
            listen: args.listen,
            with_prometheus: args.with_prometheus,
        });
    };
    let done = match action {
        Action::Break { thing, how, pid } => crate::demo::smash(thing, how, pid),
        Action::Mend { thing, pid } => crate::demo::mend(thing, pid),
        Action::List { pid } => crate::demo::list(pid),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gwanje demo: {e}");
            ExitCode::FAILURE
        }
    }
}
