//! What can go wrong while building or driving the testbed.

use std::io;
use std::time::Duration;

/// A testbed operation that failed, naming the command or namespace.
#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    /// The machine cannot host the testbed (not root, or a tool is missing).
    #[error("{0}")]
    Unavailable(String),
    /// A command ran and exited non-zero.
    #[error("`{command}` failed: {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A command could not be started.
    #[error("could not run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Entering a namespace, or an I/O step inside one, failed.
    #[error("{what} ({ns}): {source}")]
    Io {
        /// The step.
        what: String,
        /// The namespace, or the file.
        ns: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A thread running inside a namespace panicked.
    #[error("a thread inside namespace {0} panicked")]
    Thread(String),
    /// A condition did not hold within its limit.
    #[error("{what}: not within {limit:?} ({last})")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long it was awaited.
        limit: Duration,
        /// The last state seen.
        last: String,
    },
    /// gwanje exited while something was awaited of it.
    #[error("{what}: gwanje exited ({status})")]
    Exited {
        /// What was awaited.
        what: String,
        /// How it exited.
        status: String,
    },
    /// The run was interrupted (Ctrl-C, SIGTERM).
    #[error("interrupted")]
    Interrupted,
}

impl TestbedError {
    /// An [`TestbedError::Io`] for `what` in `ns`.
    pub fn io(what: impl Into<String>, ns: impl Into<String>, source: io::Error) -> Self {
        TestbedError::Io {
            what: what.into(),
            ns: ns.into(),
            source,
        }
    }
}
