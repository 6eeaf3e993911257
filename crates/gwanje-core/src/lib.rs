//! gwanje's deterministic decision core: inputs in, orders and events out,
//! time passed in. It records facts, never sentences: [`render`] is the one
//! place that puts them in words.
//!
//! Nothing here reads a clock, opens a socket or spawns a task: the crate
//! depends on serde alone, so the compiler enforces it, and its clippy
//! configuration bans clock reads and hash-ordered collections. The engine
//! owns one [`Core`] and feeds it timestamped inputs; a replay feeds the same
//! inputs and must get the same effects.
#![forbid(unsafe_code)]

mod alert;
mod alert_book;
mod config;
mod coordination;
mod dampening;
mod diagnosis;
mod effect;
mod findings;
mod group;
mod health;
mod leadership;
mod machine;
mod pairs;
mod path;
mod quality;
mod quorum;
pub mod render;
mod shared;
mod timers;
mod types;
mod vantage;
pub mod virtual_time;

pub use alert::{Alert, AlertKind, AlertName, AlertPolicy, Scope, Severity, alert_id};
pub use alert_book::{AckError, AlertBook};
pub use config::{CoreConfig, Failback, FlapGuard, GroupConfig, SubjectConfig};
pub use coordination::{Coordination, CoordinationFault};
pub use dampening::{DampeningPolicy, Penalty};
pub use diagnosis::{
    Diagnosis, DiagnosisKind, Evidence, Examination, Examined, Hop, LADDER_EVERY_MS, LOCAL, Rung,
    TRACE_EVERY_MS, diagnose,
};
pub use effect::{Effect, Event, Input, Order};
pub use group::{GroupState, Pending, Pin};
pub use health::{HealthPolicy, HealthWindow};
pub use leadership::Leadership;
pub use machine::Core;
pub use path::PathStatus;
pub use quality::{Losses, Quality, QualityPolicy};
pub use quorum::Quorum;
pub use shared::{PathReason, PathState, SwitchReason};
pub use timers::{Timer, Timers};
pub use types::{
    FailureKind, GroupName, IdentityFindings, Mismatch, Observation, PathName, Subject, TargetKey,
    TargetState, Timestamp, VantageName,
};
pub use vantage::{Abstention, Ballot, QuorumConfig, QuorumTarget, VantageView, Verdict, Vote};
pub use virtual_time::{Actuator, Kernel, TimerSource, VirtualTime};

#[cfg(test)]
mod alert_scenarios;
#[cfg(test)]
mod cluster_scenarios;
#[cfg(test)]
mod judgement_scenarios;
#[cfg(test)]
mod quorum_scenarios;
#[cfg(test)]
mod replay_tests;
#[cfg(test)]
mod scenarios;
#[cfg(test)]
mod sim;
