//! The `gwanje` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// Exit code for bad command lines and configurations (EX_USAGE).
const EXIT_CONFIG: u8 = 64;

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
    Run {
        /// The daemon configuration file.
        #[arg(
            short,
            long,
            default_value = "config/gwanje.yaml",
            env = "GWANJE_CONFIG"
        )]
        config: PathBuf,
    },
    /// Validate configuration files and print a summary; every error is listed.
    CheckConfig {
        /// Daemon configuration files to check (with the catalogs they name).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
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
        Command::CheckConfig { files } => check_config(&files),
        Command::Run { config } => match run(config) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("gwanje: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn check_config(files: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for file in files {
        match gwanje::config::load(file) {
            Ok(plan) => print!("{}", plan.summary()),
            Err(errors) => {
                failed = true;
                eprintln!("{errors}");
                eprintln!("{}: {} error(s)", file.display(), errors.0.len());
            }
        }
    }
    if failed {
        ExitCode::from(EXIT_CONFIG)
    } else {
        ExitCode::SUCCESS
    }
}

fn run(config: PathBuf) -> anyhow::Result<ExitCode> {
    let plan = match gwanje::config::load(&config) {
        Ok(plan) => plan,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "gwanje: not starting: {} configuration error(s)",
                errors.0.len()
            );
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    gwanje::logging::init(plan.settings.log_format, &plan.settings.log_level);
    tune_allocator();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listen = plan.settings.listen;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        gwanje::daemon::run(config, plan, listener, shutdown_signal())
            .await
            .context("daemon")?;
        Ok(ExitCode::SUCCESS)
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}

/// glibc keeps a heap arena per thread and raises its mmap threshold after
/// large frees, so freed probe and scrape buffers stay resident. One arena
/// and fixed thresholds keep resident memory close to the live heap (several
/// MB less at 5,000 targets, at no measurable CPU cost; see the fleet benchmark).
fn tune_allocator() {
    // SAFETY: mallopt only adjusts allocator parameters; called before the
    // runtime starts its threads.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
    }
}
