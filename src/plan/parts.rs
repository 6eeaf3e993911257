//! Parts every probe specification shares (where probes leave from, TLS
//! settings, a compiled pattern), apart so the specifications that use them
//! never import each other in a circle.

use std::net::IpAddr;
use std::path::PathBuf;

/// A compiled regular expression that compares by its source text.
#[derive(Debug, Clone)]
pub struct Pattern(pub regex::bytes::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// Where probes leave from: a source address and/or an interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    /// Bind to this local address.
    pub address: Option<IpAddr>,
    /// Bind to this interface (SO_BINDTODEVICE).
    pub interface: Option<String>,
    /// Mark packets (SO_MARK) so policy routing sends them through a path.
    pub mark: Option<u32>,
}

/// TLS settings for a probe.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TlsSpec {
    /// Extra CA certificates (PEM) trusted besides the system store.
    pub ca_file: Option<PathBuf>,
    /// Server name for SNI and verification, if not the URL's host.
    pub server_name: Option<String>,
    /// Skip verification (expiry is still reported).
    pub insecure_skip_verify: bool,
}
