//! What the core needs from the plan: subjects with thresholds, paths, groups.

use super::health::HealthPolicy;
use super::types::{GroupName, PathName, Subject, TargetKey};

/// One probed subject and its health thresholds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SubjectConfig {
    /// What is probed.
    pub subject: Subject,
    /// Its thresholds.
    pub policy: HealthPolicy,
}

/// When to move back to a more preferred path that has recovered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Failback {
    /// Automatically, once it has been healthy for this many milliseconds.
    Auto {
        /// Stable period, ms.
        after_ms: u64,
    },
    /// Only when an operator pins it.
    Manual,
}

/// At most `max_switches` automatic switches within `window_ms`, else freeze.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FlapGuard {
    /// Switches allowed within the window.
    pub max_switches: u32,
    /// The window, ms; also how long a frozen group stays frozen.
    pub window_ms: u64,
}

/// A failover group as the core sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroupConfig {
    /// Its name.
    pub name: GroupName,
    /// Paths, most preferred first.
    pub paths: Vec<PathName>,
    /// Targets probed through every path of the group.
    pub checks: Vec<TargetKey>,
    /// No voluntary switch (failback) within this long after a switch, ms.
    pub min_dwell_ms: u64,
    /// A path that was down must be healthy this long before it is chosen again, ms.
    pub hold_down_ms: u64,
    /// Failback policy.
    pub failback: Failback,
    /// Flap guard.
    pub flap_guard: FlapGuard,
    /// Paths that all went down within this span count as monitor isolation, ms.
    pub isolation_window_ms: u64,
    /// First retry delay after a failed route change, ms (doubles up to `retry_max_ms`).
    pub retry_initial_ms: u64,
    /// Longest retry delay, ms.
    pub retry_max_ms: u64,
    /// With no route in the kernel at start, how long the first
    /// installation waits for the preferred path's verdict, ms (about the
    /// time its probes need to decide).
    #[serde(default)]
    pub initial_wait_ms: u64,
    /// How repeated failures of a path delay failing back to it.
    #[serde(default)]
    pub dampening: super::dampening::DampeningPolicy,
}

/// Everything the core is configured with.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CoreConfig {
    /// Every probed subject.
    pub subjects: Vec<SubjectConfig>,
    /// Every path.
    pub paths: Vec<PathName>,
    /// Every failover group.
    pub groups: Vec<GroupConfig>,
    /// Alert timers.
    #[serde(default)]
    pub alerting: super::alert::AlertPolicy,
    /// When a path's packet loss degrades it.
    #[serde(default)]
    pub quality: super::quality::QualityPolicy,
    /// With peers: how this vantage and theirs decide together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<super::vantage::QuorumConfig>,
    /// A replica of a cluster: it orders route changes only while it leads.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cluster: bool,
}
