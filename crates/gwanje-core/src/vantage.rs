//! Vantages as the quorum sees them: what each one says about a target
//! (its vote), what the vantages together conclude (the verdict), and the
//! quorum's configuration.

use std::fmt;

use super::health::HealthPolicy;
use super::types::{GroupName, Subject, TargetKey, Timestamp, VantageName};

/// Why a vantage's word on a target does not count now.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Abstention {
    /// No result for the target within two of its intervals.
    Stale,
    /// The vantage is cut off (its controls fail): its failures are its own.
    Isolated,
    /// Its latest results were stamped further from this clock than trusted.
    Skewed,
}

/// One vantage's word on one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Ballot {
    /// Its fall/rise window says up (through at least one of its paths).
    Up,
    /// Its window says down (through every path it probes).
    Down,
    /// Its window has not decided yet.
    Unknown,
    /// It does not vote.
    Abstain(Abstention),
}

impl Ballot {
    /// The `verdict` label of `gwanje_target_votes`.
    pub fn as_str(self) -> &'static str {
        match self {
            Ballot::Up => "up",
            Ballot::Down => "down",
            Ballot::Unknown => "unknown",
            Ballot::Abstain(Abstention::Stale) => "stale",
            Ballot::Abstain(Abstention::Isolated) => "isolated",
            Ballot::Abstain(Abstention::Skewed) => "skewed",
        }
    }

    /// Every label, in a fixed order (metrics keep zero series).
    pub const LABELS: [&'static str; 6] = ["up", "down", "unknown", "stale", "isolated", "skewed"];
}

/// A vote: who said what about a target, and since when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Vote {
    /// The vantage.
    pub vantage: VantageName,
    /// What it says.
    pub ballot: Ballot,
    /// Since when it says so.
    pub since: Timestamp,
}

/// What the vantages together conclude about a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Verdict {
    /// Not enough votes either way yet.
    Unknown,
    /// Fewer eligible vantages than the quorum needs: never down.
    Insufficient,
    /// Enough vantages see it up that it cannot be down.
    Up,
    /// At least `k` eligible vantages see it down.
    Down,
}

impl Verdict {
    /// The lowercase label used in logs and the status API.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Unknown => "unknown",
            Verdict::Insufficient => "insufficient",
            Verdict::Up => "up",
            Verdict::Down => "down",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One target the vantages vote on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuorumTarget {
    /// The target.
    pub target: TargetKey,
    /// Its probe interval, ms: a vote older than two of them has expired.
    pub interval_ms: u64,
    /// Down votes needed; `None`: a majority of the eligible, at least 2.
    pub k: Option<u32>,
    /// The fall/rise thresholds each vantage's window applies.
    pub policy: HealthPolicy,
    /// The failover groups it is a check of (empty: probed directly).
    pub groups: Vec<GroupName>,
}

/// How several vantages decide together.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuorumConfig {
    /// This instance's vantage.
    pub local: VantageName,
    /// The vantages whose streams this instance follows.
    pub peers: Vec<VantageName>,
    /// Fewer eligible vantages than this: the verdict is insufficient.
    pub min_vantages: u32,
    /// A result stamped further than this from its receipt does not vote, ms.
    pub max_skew_ms: u64,
    /// A vantage whose latest results fail at this share (per mille) or
    /// more is isolated too; `None`: only its controls decide.
    pub isolation_share_permille: Option<u16>,
    /// This vantage's controls: when every one fails twice in a row, it is isolated.
    pub controls: Vec<Subject>,
    /// The targets voted on.
    pub targets: Vec<QuorumTarget>,
}

impl QuorumConfig {
    /// Down votes a target needs among `eligible` vantages.
    pub fn needed(k: Option<u32>, eligible: u32) -> u32 {
        k.unwrap_or((eligible / 2 + 1).max(2))
    }
}

/// What the status API and metrics show of one vantage.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VantageView {
    /// Its name.
    pub name: VantageName,
    /// Whether it is this instance.
    pub local: bool,
    /// Whether it reported any target within two intervals.
    pub up: bool,
    /// Whether it is isolated, and since when.
    pub isolated_since: Option<Timestamp>,
    /// Receipt time minus result time of its latest result, ms.
    pub lag_ms: i64,
    /// Results refused for clock skew.
    pub skewed: u64,
    /// The last sequence number received from it.
    pub seq: u64,
    /// When its latest result arrived.
    pub last_at: Option<Timestamp>,
}
