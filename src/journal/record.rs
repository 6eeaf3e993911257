//! What a journal holds: one record per snapshot, input, timeout or
//! effect, as plain data (the framing is `format`'s).

use serde::{Deserialize, Serialize};

use crate::core::{Core, Effect, Input, Timestamp};

/// Why a segment starts with a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotReason {
    /// gwanje started (fresh, or restored from the journal).
    Start,
    /// The previous segment reached its size or age.
    Rotate,
    /// Records were lost before it (disk or queue trouble): replay cannot
    /// verify across it and restarts from this state.
    Resync,
}

/// One journal record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    /// The core's whole state at `at`.
    Snapshot {
        /// When.
        at: Timestamp,
        /// Why.
        reason: SnapshotReason,
        /// The state.
        core: Box<Core>,
    },
    /// An input fed to the core at `at`.
    Input {
        /// The time it was fed with.
        at: Timestamp,
        /// The input.
        input: Input,
    },
    /// The core's timers ran at `at`.
    Timeout {
        /// The time they ran with.
        at: Timestamp,
    },
    /// An effect the core produced.
    Effect {
        /// The effect.
        effect: Effect,
    },
    /// An effect a version-1 journal recorded (read, never written).
    #[serde(skip)]
    EffectV1 {
        /// What it decided.
        effect: Box<RecordedV1>,
    },
}

impl Record {
    /// The time it carries (effects carry theirs inside).
    pub fn at(&self) -> Option<Timestamp> {
        match self {
            Record::Snapshot { at, .. } | Record::Input { at, .. } | Record::Timeout { at } => {
                Some(*at)
            }
            Record::Effect { .. } | Record::EffectV1 { .. } => None,
        }
    }

    /// The effect it holds in today's shape, if it holds one (a version-1
    /// effect that carried words has none: it is only compared).
    pub fn effect(&self) -> Option<&Effect> {
        match self {
            Record::Effect { effect } => Some(effect),
            Record::EffectV1 { effect } => effect.upgraded.as_ref(),
            _ => None,
        }
    }
}

/// An effect as a version-1 journal recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedV1 {
    /// The record's `effect` without its words (`summary`, `description`).
    pub(super) decided: serde_json::Value,
    /// The same effect in today's shape, when it carried no words (for
    /// analysis: route changes, health and path changes).
    pub upgraded: Option<Effect>,
}
