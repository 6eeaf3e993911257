//! This instance as a vantage point, and the peers whose observations it follows.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::core::{Subject, VantageName};

/// The default `vantage.min_vantages`.
pub const DEFAULT_MIN_VANTAGES: u32 = 2;
/// The bounds of `vantage.min_vantages`.
pub const MIN_VANTAGES: std::ops::RangeInclusive<u32> = 1..=64;
/// The default `vantage.max_skew`.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(5);
/// The bounds of `vantage.max_skew`: at least a second, above a stream's
/// own delay (its 100 ms of coalescing, the network and the engine).
pub const MAX_SKEW: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(60);
/// The most peers one instance follows.
pub const MAX_PEERS: usize = 63;

/// The `vantage` and `peers` sections.
#[derive(Debug, Clone, PartialEq)]
pub struct VantageSpec {
    /// This vantage's name (default: the host name).
    pub name: VantageName,
    /// Its site, if named.
    pub site: Option<String>,
    /// Free labels (e.g. `isp`), shown in the status API.
    pub labels: BTreeMap<String, String>,
    /// Its control subjects: all failing twice in a row isolate it.
    pub controls: Vec<Subject>,
    /// Fewer eligible vantages than this: verdicts are insufficient.
    pub min_vantages: u32,
    /// Results stamped further than this from their receipt do not vote.
    pub max_skew: Duration,
    /// A latest-result failure share (per mille) that also isolates it.
    pub isolation_share_permille: Option<u16>,
    /// The instances whose observation streams it follows.
    pub peers: Vec<PeerSpec>,
}

impl Default for VantageSpec {
    fn default() -> Self {
        VantageSpec {
            name: VantageName::new("gwanje"),
            site: None,
            labels: BTreeMap::new(),
            controls: Vec::new(),
            min_vantages: DEFAULT_MIN_VANTAGES,
            max_skew: DEFAULT_MAX_SKEW,
            isolation_share_permille: None,
            peers: Vec::new(),
        }
    }
}

/// One followed peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    /// The vantage name it must report under.
    pub name: VantageName,
    /// Its API's base URL (`http` or `https`).
    pub url: url::Url,
    /// The file holding the observer (or admin) token it accepts.
    pub token_file: PathBuf,
    /// The CA that signed its certificate (`https`), else the system's.
    pub ca_file: Option<PathBuf>,
}
