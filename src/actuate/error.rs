//! Why a route change, a route read or policy routing failed.

/// An actuator failure; the core gets its text and retries.
#[derive(Debug, thiserror::Error)]
pub enum ActuateError {
    /// Netlink is needed but gwanje has no connection.
    #[error("no netlink connection (needs CAP_NET_ADMIN)")]
    NoNetlink,
    /// The kernel refused or failed a netlink request.
    #[error(transparent)]
    Netlink(#[from] super::NetlinkError),
    /// The exec hook ran past its timeout (and was killed).
    #[error("{command} did not finish within {timeout}")]
    HookTimeout {
        /// The hook.
        command: String,
        /// Its timeout.
        timeout: String,
    },
    /// The exec hook could not be started.
    #[error("running {command}: {source}")]
    HookStart {
        /// The hook.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// The exec hook failed; only its exit status is kept (its output may hold anything).
    #[error("{command} exited with {status}")]
    HookFailed {
        /// The hook.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
    /// The webhook could not be reached.
    #[error("webhook {url}: {source}")]
    Webhook {
        /// The URL.
        url: String,
        /// Why.
        source: reqwest::Error,
    },
    /// The webhook answered with a failure status.
    #[error("webhook {url} answered {status}")]
    WebhookStatus {
        /// The URL.
        url: String,
        /// The status.
        status: reqwest::StatusCode,
    },
}
