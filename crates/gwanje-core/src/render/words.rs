//! Small pieces of wording shared by every sentence: a path or "none", a
//! per-mille share as a percentage, why a path is down, why a route moved,
//! and what a canary received.

use std::fmt;

use crate::shared::{PathReason, SwitchReason};
use crate::types::{FailureKind, Mismatch, PathName, TargetKey, VantageName};
use crate::vantage::{Ballot, Vote};

/// A path's name, or `none`.
pub(super) fn or_none(p: &Option<PathName>) -> &str {
    p.as_ref().map_or("none", PathName::as_str)
}

/// A per-mille share as a percentage with one decimal, e.g. `12.5%`.
pub fn permille(v: u16) -> String {
    format!("{}.{}%", v / 10, v % 10)
}

/// Each path's loss, as ` (a 12.5%, b 30.0%)`; nothing when none is known.
pub(super) fn losses(losses: &[(PathName, u16)]) -> String {
    if losses.is_empty() {
        return String::new();
    }
    let each: Vec<String> = losses
        .iter()
        .map(|(p, l)| format!("{p} {}", permille(*l)))
        .collect();
    format!(" ({})", each.join(", "))
}

/// A failure class's label, or `none`.
pub fn failure_label(f: Option<FailureKind>) -> &'static str {
    f.map_or("none", FailureKind::as_str)
}

/// Keys joined with commas.
pub(super) fn keys(k: &[TargetKey]) -> String {
    let names: Vec<&str> = k.iter().map(TargetKey::as_str).collect();
    names.join(", ")
}

/// "canary A received canary B's document at step S".
pub fn mismatch(m: &Mismatch) -> String {
    let whose = if m.owner == Mismatch::NOT_A_CANARY {
        "a document with none of its own markers and no other canary's (owner unknown)".to_string()
    } else {
        format!("canary {}'s document", m.owner)
    };
    format!("canary {} received {whose} at step {}", m.canary, m.step)
}

impl fmt::Display for PathReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathReason::None => f.write_str("healthy"),
            PathReason::RouterDown => f.write_str("router unreachable"),
            PathReason::ChecksFailing(c) => {
                write!(f, "checks failing only through this path: {}", keys(c))
            }
            PathReason::Pending => f.write_str("waiting for first results"),
            PathReason::Degraded { loss_permille } => write!(
                f,
                "degraded: {} of probe packets lost over the quality window",
                permille(*loss_permille)
            ),
        }
    }
}

impl fmt::Display for SwitchReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwitchReason::PathFailed { why } => write!(f, "path failed ({why})"),
            other => f.write_str(other.label()),
        }
    }
}

/// How many of the voting vantages say down, as `2 of 3`.
pub(super) fn down_of(votes: &[Vote]) -> String {
    let voting = votes
        .iter()
        .filter(|v| !matches!(v.ballot, Ballot::Abstain(_)))
        .count();
    let down = votes.iter().filter(|v| v.ballot == Ballot::Down).count();
    format!("{down} of {voting}")
}

/// Every vote, grouped: `down: a, b; up: c; stale: d`.
pub(super) fn votes(votes: &[Vote]) -> String {
    let mut parts = Vec::new();
    for label in Ballot::LABELS {
        let names: Vec<&str> = votes
            .iter()
            .filter(|v| v.ballot.as_str() == label)
            .map(|v| v.vantage.as_str())
            .collect();
        if !names.is_empty() {
            parts.push(format!("{label}: {}", names.join(", ")));
        }
    }
    parts.join("; ")
}

/// Vantage names joined with commas, or `none`.
pub(super) fn vantages(v: &[VantageName]) -> String {
    if v.is_empty() {
        return "none".into();
    }
    let names: Vec<&str> = v.iter().map(VantageName::as_str).collect();
    names.join(", ")
}
