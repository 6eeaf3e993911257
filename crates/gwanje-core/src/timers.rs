//! Every timer of the core in one table with one next deadline (the model
//! is quinn-proto's `TimerTable`): each group's controller deadline (pin
//! expiry, retry, hold-down, failback, dwell, freeze) and the alert book's
//! (re-send, escalation, event expiry).

use std::collections::BTreeMap;

use super::types::{GroupName, Timestamp};

/// A named timer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Timer {
    /// A failover group's next decision.
    Group(GroupName),
    /// The next alert to send, escalate or expire.
    Alerts,
    /// The next vote to expire (or the quorum's start grace to end).
    Quorum,
}

/// The armed timers.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Timers(#[serde(with = "super::pairs")] BTreeMap<Timer, Timestamp>);

impl Timers {
    /// Arms `timer` at `at`, or disarms it with `None`.
    pub fn set(&mut self, timer: Timer, at: Option<Timestamp>) {
        match at {
            Some(at) => {
                self.0.insert(timer, at);
            }
            None => {
                self.0.remove(&timer);
            }
        }
    }

    /// Disarms every group timer whose group is not in `keep`.
    pub fn retain_groups(&mut self, keep: impl Fn(&GroupName) -> bool) {
        self.0.retain(|t, _| match t {
            Timer::Group(g) => keep(g),
            Timer::Alerts | Timer::Quorum => true,
        });
    }

    /// The earliest armed deadline.
    pub fn next(&self) -> Option<Timestamp> {
        self.0.values().min().copied()
    }

    /// When `timer` fires, if armed.
    pub fn get(&self, timer: &Timer) -> Option<Timestamp> {
        self.0.get(timer).copied()
    }
}
