//! `gwanje demo`: builds a small government network in namespaces (the
//! shared [`crate::testbed`]), runs the real gwanje in it, and plays a
//! scripted failure story, narrating what gwanje sees and does. With
//! `--interactive` the network stays up for the user to break and mend.
#![allow(
    clippy::disallowed_methods,
    reason = "the demo narrates and measures in real time, outside the core"
)]

mod companions;
mod interactive;
mod script;
mod setup;
mod vantages;
mod watch;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::testbed::{self, Lab, TestbedError};

pub use interactive::{How, Thing, list, mend, smash};

/// Exit code when the demo cannot run here (EX_NOPERM).
const EXIT_NO_PERMISSION: u8 = 77;
/// Exit code after Ctrl-C or SIGTERM (128 + SIGINT).
const EXIT_INTERRUPTED: u8 = 130;

/// Why the demo stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The testbed failed.
    #[error(transparent)]
    Testbed(#[from] TestbedError),
    /// gwanje ended while the demo ran.
    #[error("gwanje exited during the demo ({0}); its log is in the demo folder")]
    GwanjeExited(String),
    /// gwanje did something the story says it must not.
    #[error("{0}")]
    Story(String),
    /// A file of the demo folder.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// How long the story lingers between acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Pace {
    /// Time to read each step (the whole story in about a minute and a half).
    Normal,
    /// The same story with short pauses (for CI).
    Fast,
}

impl Pace {
    fn scale(self, d: Duration) -> Duration {
        match self {
            Pace::Normal => d,
            Pace::Fast => d / 3,
        }
    }
}

/// What `gwanje demo` was asked to do.
pub struct Options {
    /// How long to linger between acts.
    pub pace: Pace,
    /// Keep the network up for `gwanje demo break|mend|list`.
    pub interactive: bool,
    /// Where the interactive mode serves gwanje's API on the host.
    pub listen: std::net::SocketAddr,
    /// Start Prometheus and Alertmanager beside the interactive demo.
    pub with_prometheus: bool,
}

extern "C" fn on_signal(_: libc::c_int) {
    testbed::interrupt();
}

fn catch_signals() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

/// Whether `path` is a real folder (not a link) owned by root: the only
/// kind of leftover the demo removes.
fn ours(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir() && m.uid() == 0)
}

/// The folder of this run (config, log, journal), private to root and kept
/// after exit until the next demo starts. A folder of that name made by
/// anyone else is refused, never written into.
fn folder() -> Result<PathBuf, DemoError> {
    use std::os::unix::fs::DirBuilderExt;
    let tmp = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix("gwanje-demo-")
                .and_then(|p| p.parse().ok());
            if pid.is_some_and(|p| !testbed::topology::alive(p)) && ours(&e.path()) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = tmp.join(format!("gwanje-demo-{}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|source| DemoError::Io {
            path: dir.clone(),
            source,
        })?;
    Ok(dir)
}

/// Runs the demo; prints everything, returns the exit code.
pub fn run(options: &Options) -> ExitCode {
    if let Err(e) = testbed::topology::preflight() {
        let exe = std::env::current_exe().unwrap_or_else(|_| "gwanje".into());
        eprintln!(
            "gwanje demo builds a simulated network in network namespaces, which needs root, iproute2 and nftables ({e}).\n  Run: sudo {} demo",
            exe.display()
        );
        return ExitCode::from(EXIT_NO_PERMISSION);
    }
    catch_signals();
    match play(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(DemoError::Testbed(TestbedError::Interrupted)) => {
            println!("interrupted: the network and gwanje are gone");
            ExitCode::from(EXIT_INTERRUPTED)
        }
        Err(e) => {
            eprintln!("gwanje demo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn play(options: &Options) -> Result<(), DemoError> {
    let removed = testbed::topology::remove_leftovers()?;
    if !removed.is_empty() {
        println!(
            "removed {} namespace(s) left by an earlier run that did not clean up: {}",
            removed.len(),
            removed.join(", ")
        );
    }
    let dir = folder()?;
    let exe = std::env::current_exe().map_err(|source| DemoError::Io {
        path: "/proc/self/exe".into(),
        source,
    })?;
    println!("gwanje demo: a small government network, simulated in network namespaces");
    println!(
        "  edge (gwanje) ──> router A (primary, 198.18.1.1) ──┐\n                └─> router B (standby, 198.18.2.1) ──┴─> data centre 198.18.100.0/24:\n      citizen portal .1 (with certificate issuance), administrative app .2,\n      mobile-ID API .3, internal DNS .53"
    );
    println!("building the network and starting gwanje…");
    let lab = Lab::start(&exe, &dir, &setup::setup(), |_| Ok(()))?;
    println!(
        "demo pid {}, gwanje pid {}, namespaces {}",
        std::process::id(),
        lab.gwanje.pid(),
        lab.bed.all().map(|n| n.0.as_str()).join(" ")
    );
    let outcome = if options.interactive {
        interactive::serve(&lab, options.listen, options.with_prometheus)
    } else {
        let mut story = script::Story {
            lab: &lab,
            watch: watch::Watch::new(),
            pace: options.pace,
        };
        story.play()
    };
    let stopped = lab.gwanje.terminate();
    drop(lab);
    // The second part: several sites deciding together.
    let outcome = match outcome {
        Ok(()) if !options.interactive => vantages::play(&exe, &dir, options.pace),
        other => other,
    };
    println!();
    match &outcome {
        Ok(()) => epilogue(&exe, &dir),
        Err(_) => println!("gwanje's log: {}", dir.join("gwanje.log").display()),
    }
    stopped?;
    println!("cleaned up: gwanje stopped, namespaces and links removed");
    outcome
}

fn epilogue(exe: &Path, dir: &Path) {
    let journal = dir.join("journal");
    println!("── Where to look next");
    println!(
        "  The flight recorder: every probe result gwanje saw and every decision it made is in\n  {}. Replay it through the same decision code:",
        journal.display()
    );
    let replay = |args: &[&str]| {
        std::process::Command::new(exe)
            .arg("replay")
            .arg("--journal")
            .arg(&journal)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    println!(
        "    $ gwanje replay --journal {} --verify",
        journal.display()
    );
    println!("    {}", replay(&["--verify"]).trim());
    println!(
        "    $ gwanje replay --journal {}   (the timeline; its moves:)",
        journal.display()
    );
    for line in replay(&[])
        .lines()
        .filter(|l| l.contains("traffic now flows"))
    {
        println!("    {line}");
    }
    println!(
        "  Live: `gwanje demo --interactive` keeps the network up; watch http://127.0.0.1:9470/metrics\n  and /api/v1/status, and break things with `gwanje demo break router-a` (see `gwanje demo list`).\n  The configuration it ran: config/demo.yaml and config/demo/*.yaml. The journal stays until the next demo."
    );
}
