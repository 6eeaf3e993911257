//! The deterministic decision core: inputs in, effects out, time passed in.
//!
//! Nothing in this module reads a clock, opens a socket or spawns a task
//! (`purity` below checks that mechanically). The engine owns one [`Core`]
//! and feeds it timestamped inputs; a replay can feed the same inputs and
//! must get the same effects.

mod health;
mod machine;
mod types;

pub use health::{HealthPolicy, HealthWindow};
pub use machine::{Core, Effect, Input, TargetConfig};
pub use types::{FailureKind, Observation, TargetKey, TargetState, Timestamp};

#[cfg(test)]
mod purity;
