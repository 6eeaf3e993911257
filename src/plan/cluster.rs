//! The `cluster` section: replicated controllers coordinated on etcd.

use std::path::PathBuf;
use std::time::Duration;

/// The default `cluster.lease_ttl`.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(3);
/// The bounds of `cluster.lease_ttl`: etcd raises a TTL below about 2 s
/// (1.5 election timeouts) on its own; a minute is the longest a standby
/// may wait to take over.
pub const LEASE_TTL: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(2)..=Duration::from_secs(60);
/// How long before the lease's end a leader stops ordering: the room for a
/// late keepalive answer, a slow clock rate and an order in flight.
pub const SAFETY_MARGIN: Duration = Duration::from_secs(1);
/// The most etcd endpoints.
pub const MAX_ENDPOINTS: usize = 9;

/// The `cluster` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    /// The cluster's name: its keys live under `/gwanje/<name>/`.
    pub name: String,
    /// This replica's name (default: the vantage name).
    pub replica: String,
    /// etcd's client URLs (`http` or `https`).
    pub endpoints: Vec<url::Url>,
    /// The CA that signed the members' certificates (`https`).
    pub ca_file: Option<PathBuf>,
    /// A client certificate and its key, for etcd's client-cert auth.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// The election lease's time to live.
    pub lease_ttl: Duration,
    /// Whether this replica applies the leader's orders to its own kernel
    /// (co-located) rather than leaving them to `gwanje actuate` hosts.
    pub actuate: bool,
    /// Where the actuator keeps the highest fence it applied.
    pub fence_file: PathBuf,
    /// A digest of the groups and paths the replicas steer: replicas of
    /// one cluster must agree on it.
    pub fingerprint: String,
    /// Whether it campaigns to lead (a replica); `gwanje actuate` only applies orders.
    pub campaign: bool,
}

impl ClusterSpec {
    /// How long after a keepalive was sent the leader may act on it.
    pub fn act_for(&self, granted_ttl: Duration) -> Duration {
        granted_ttl.saturating_sub(SAFETY_MARGIN)
    }
}

/// The digest replicas of one cluster must share: each group's name,
/// prefixes and paths (in order), and each path's name and gateway. Probe
/// timings may differ between replicas; what they steer may not.
pub fn fingerprint(paths: &[super::PathSpec], groups: &[super::GroupSpec]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in paths {
        h.update(format!("path {} {}\n", p.name, p.gateway));
    }
    for g in groups {
        let mut routes: Vec<String> = g.routes.iter().map(ToString::to_string).collect();
        routes.sort();
        let order: Vec<&str> = g.core.paths.iter().map(|p| p.as_str()).collect();
        h.update(format!(
            "group {} {} {}\n",
            g.name(),
            routes.join(","),
            order.join(",")
        ));
    }
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}
