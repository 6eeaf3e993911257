//! gwanje's deterministic decision core: inputs in, effects out, time passed in.
//!
//! Nothing here reads a clock, opens a socket or spawns a task: the crate
//! depends on serde alone, so the compiler enforces it, and its clippy
//! configuration bans clock reads and hash-ordered collections. The engine
//! owns one [`Core`] and feeds it timestamped inputs; a replay feeds the same
//! inputs and must get the same effects.
#![forbid(unsafe_code)]

mod alerts;
mod config;
mod dampening;
mod diagnosis;
mod effect;
mod findings;
mod group;
mod health;
mod machine;
mod pairs;
mod path;
mod quality;
mod timers;
mod types;

pub use alerts::{ALERT_NAMES, AckError, Alert, AlertBook, AlertPolicy, Severity, alert_id};
pub use config::{CoreConfig, Failback, FlapGuard, GroupConfig, SubjectConfig};
pub use dampening::{DampeningPolicy, Penalty};
pub use diagnosis::{
    Diagnosis, DiagnosisKind, Examination, Hop, LADDER_EVERY_MS, LOCAL, Rung, TRACE_EVERY_MS,
};
pub use effect::{Effect, Input, SwitchReason};
pub use group::{GroupState, Pending, Pin};
pub use health::{HealthPolicy, HealthWindow};
pub use machine::Core;
pub use path::{PathReason, PathState, PathStatus};
pub use quality::{Losses, Quality, QualityPolicy};
pub use timers::{Timer, Timers};
pub use types::{
    FailureKind, GroupName, IdentityFindings, Mismatch, Observation, PathName, Subject, TargetKey,
    TargetState, Timestamp,
};

#[cfg(test)]
mod alert_scenarios;
#[cfg(test)]
mod judgement_scenarios;
#[cfg(test)]
mod replay_tests;
#[cfg(test)]
mod scenarios;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
