//! Validated paths, failover groups and the probe jobs they imply.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

use super::Target;
use crate::core::{GroupConfig, GroupName, HealthPolicy, PathName, Subject};

/// A way out: a gateway, and how probes are sent through it.
#[derive(Debug, Clone, PartialEq)]
pub struct PathSpec {
    /// Name.
    pub name: PathName,
    /// The next hop.
    pub gateway: IpAddr,
    /// Outgoing interface, if fixed.
    pub interface: Option<String>,
    /// Source address for probes through this path.
    pub source: Option<IpAddr>,
    /// Packet mark selecting this path's routing table.
    pub fwmark: Option<u32>,
    /// The routing table holding this path's default route.
    pub table: Option<u32>,
    /// gwanje installs `fwmark → table` and the table's default route, and removes them on exit.
    pub manage_policy_routing: bool,
    /// The router check (ICMP to the gateway through the path).
    pub router: Arc<Target>,
    /// Thresholds for the router check.
    pub router_health: HealthPolicy,
}

/// What carries out a group's route changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Replace the kernel routes over netlink.
    Route,
    /// Run a command (see the README for its environment).
    Exec {
        /// Program and arguments.
        command: Vec<String>,
        /// Time limit.
        timeout: Duration,
    },
    /// POST a JSON body to a URL.
    Webhook {
        /// The URL.
        url: url::Url,
        /// Time limit.
        timeout: Duration,
    },
    /// Decide and report only.
    Observe,
}

impl Action {
    /// The label used in config, logs and the status API.
    pub fn label(&self) -> &'static str {
        match self {
            Action::Route => "route",
            Action::Exec { .. } => "exec",
            Action::Webhook { .. } => "webhook",
            Action::Observe => "observe",
        }
    }
}

/// A failover group: prefixes steered over ordered paths.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    /// The core's view (paths, checks, timers).
    pub core: GroupConfig,
    /// Prefixes whose routes the group owns.
    pub routes: Vec<IpNet>,
    /// How changes are carried out.
    pub action: Action,
    /// Thresholds replacing the checks' own, if the group sets `detection`.
    pub detection: Option<HealthPolicy>,
}

impl GroupSpec {
    /// The group's name.
    pub fn name(&self) -> &GroupName {
        &self.core.name
    }
}

/// One probe the scheduler runs: what it measures and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// What the result is about.
    pub subject: Subject,
    /// The target, with its source bound to the path when there is one.
    pub target: Arc<Target>,
    /// The thresholds the core applies.
    pub health: HealthPolicy,
}

impl Job {
    /// The path label (`""` for plain targets).
    pub fn path_label(&self) -> &str {
        self.subject.path().map_or("", PathName::as_str)
    }
}
