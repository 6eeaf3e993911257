//! Nouns every part of the core shares (a path's state and why, why a
//! route moves), kept apart so the files that use them never import each
//! other in a circle.

use std::fmt;

use super::types::TargetKey;

/// A path's decided state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum PathState {
    /// Not enough evidence yet.
    Unknown,
    /// Router up and every check passing (or failing everywhere).
    Up,
    /// Router down, or checks failing only through this path.
    Down,
}

impl PathState {
    /// The lowercase label.
    pub fn as_str(self) -> &'static str {
        match self {
            PathState::Unknown => "unknown",
            PathState::Up => "up",
            PathState::Down => "down",
        }
    }
}

impl fmt::Display for PathState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a path is in its state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum PathReason {
    /// Nothing to report.
    None,
    /// The router does not answer.
    RouterDown,
    /// These checks fail through this path but pass through another.
    ChecksFailing(Vec<TargetKey>),
    /// These checks (or the router) have no verdict yet.
    Pending,
    /// It loses this share of probe packets (per mille) over the quality window.
    Degraded {
        /// Loss, per mille.
        loss_permille: u16,
    },
}

/// Why a group's route is being moved.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SwitchReason {
    /// No route was installed; installing the best healthy path.
    Initial,
    /// The active path failed.
    PathFailed {
        /// Why it is down.
        why: PathReason,
    },
    /// A more preferred path has been healthy long enough.
    Failback,
    /// An operator pin.
    Pinned,
    /// Something else changed the route; restoring ours.
    DriftCorrected,
}

impl SwitchReason {
    /// Label for metrics and alerts.
    pub fn label(&self) -> &'static str {
        match self {
            SwitchReason::Initial => "initial",
            SwitchReason::PathFailed { .. } => "path_failed",
            SwitchReason::Failback => "failback",
            SwitchReason::Pinned => "pinned",
            SwitchReason::DriftCorrected => "drift_corrected",
        }
    }

    /// Whether it counts towards the flap guard.
    pub fn is_automatic(&self) -> bool {
        matches!(
            self,
            SwitchReason::PathFailed { .. } | SwitchReason::Failback
        )
    }
}
