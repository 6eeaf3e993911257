//! Where alerts go, as the plan names them.

use std::path::PathBuf;

/// Where alerts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receiver {
    /// An Alertmanager (one replica; list every replica, never a load balancer).
    Alertmanager(url::Url),
    /// A generic webhook; the body is signed when a secret is set.
    Webhook {
        /// Where to POST.
        url: url::Url,
        /// File holding the HMAC-SHA256 secret.
        hmac_secret_file: Option<PathBuf>,
    },
}

impl Receiver {
    /// The `receiver` label: the URL without credentials or query.
    pub fn label(&self) -> String {
        let url = match self {
            Receiver::Alertmanager(u) | Receiver::Webhook { url: u, .. } => u,
        };
        format!(
            "{}://{}{}",
            url.scheme(),
            url.host_str().unwrap_or_default(),
            url.port().map(|p| format!(":{p}")).unwrap_or_default()
        )
    }
}
