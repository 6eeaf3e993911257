//! Fall/rise hysteresis over a sliding window of probe results.
//!
//! A target goes down when `fall` of its last `window` results failed
//! (`window == fall` is the classic "N consecutive failures"), and comes back
//! up after `rise` consecutive successes. One lost packet therefore never
//! flips the state, and a flapping target does not come back on one lucky probe.

use super::types::TargetState;

/// Thresholds for one health window; validated by the config loader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct HealthPolicy {
    /// Failures within the window that mark the target down.
    pub fall: u8,
    /// How many recent results the window holds (`fall..=64`).
    pub window: u8,
    /// Consecutive successes that mark the target up again.
    pub rise: u8,
}

impl HealthPolicy {
    /// The largest window a policy may use (results are kept in a `u64`).
    pub const MAX_WINDOW: u8 = 64;

    /// `fall` consecutive failures down, `rise` consecutive successes up.
    pub const fn consecutive(fall: u8, rise: u8) -> Self {
        HealthPolicy {
            fall,
            window: fall,
            rise,
        }
    }
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy::consecutive(3, 2)
    }
}

/// The state of one health window.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HealthWindow {
    policy: HealthPolicy,
    /// Bit i set = the i-th most recent result failed.
    failures: u64,
    successes_in_row: u8,
    state: TargetState,
}

impl HealthWindow {
    /// A fresh window in state `Unknown`.
    pub fn new(policy: HealthPolicy) -> Self {
        HealthWindow {
            policy,
            failures: 0,
            successes_in_row: 0,
            state: TargetState::Unknown,
        }
    }

    /// The current decided state.
    pub fn state(&self) -> TargetState {
        self.state
    }

    /// The policy this window applies.
    pub fn policy(&self) -> HealthPolicy {
        self.policy
    }

    /// Failures among the results currently held.
    pub fn failures_in_window(&self) -> u32 {
        self.failures.count_ones()
    }

    /// Records one result; returns the new state when it changed.
    pub fn observe(&mut self, ok: bool) -> Option<TargetState> {
        let mask = if self.policy.window >= 64 {
            u64::MAX
        } else {
            (1u64 << self.policy.window) - 1
        };
        self.failures = ((self.failures << 1) | u64::from(!ok)) & mask;
        self.successes_in_row = if ok {
            self.successes_in_row.saturating_add(1)
        } else {
            0
        };

        // Only a failure can bring a target down and only a run of successes
        // can bring it up, so stale failures never block a recovery.
        let next = if !ok && self.failures_in_window() >= u32::from(self.policy.fall) {
            TargetState::Down
        } else if ok && self.state != TargetState::Up && self.successes_in_row >= self.policy.rise {
            TargetState::Up
        } else {
            self.state
        };
        if next == self.state {
            return None;
        }
        if next == TargetState::Up {
            // Old failures must not count against the recovered target, or a
            // k-of-n window would send it straight back down on one failure.
            self.failures = 0;
        }
        self.state = next;
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TargetState::*;

    fn run(policy: HealthPolicy, results: &str) -> Vec<TargetState> {
        let mut w = HealthWindow::new(policy);
        results
            .chars()
            .map(|c| {
                w.observe(c == '+');
                w.state()
            })
            .collect()
    }

    #[test]
    fn consecutive_thresholds_table() {
        let cases: &[(HealthPolicy, &str, TargetState)] = &[
            (HealthPolicy::consecutive(3, 2), "", Unknown),
            (HealthPolicy::consecutive(3, 2), "+", Unknown),
            (HealthPolicy::consecutive(3, 2), "++", Up),
            (HealthPolicy::consecutive(3, 2), "++--", Up),
            (HealthPolicy::consecutive(3, 2), "++---", Down),
            (HealthPolicy::consecutive(3, 2), "++---+", Down),
            (HealthPolicy::consecutive(3, 2), "++---++", Up),
            (HealthPolicy::consecutive(3, 2), "++--+--+", Up),
            (HealthPolicy::consecutive(1, 1), "+-", Down),
            (HealthPolicy::consecutive(3, 2), "---", Down),
        ];
        for (policy, results, want) in cases {
            let got = run(*policy, results).last().copied().unwrap_or(Unknown);
            assert_eq!(got, *want, "policy {policy:?} results {results:?}");
        }
    }

    #[test]
    fn k_of_n_counts_scattered_failures() {
        let policy = HealthPolicy {
            fall: 3,
            window: 5,
            rise: 2,
        };
        assert_eq!(run(policy, "++-+-+-").last(), Some(&Down));
        // The oldest failure has slid out of the window of five.
        assert_eq!(run(policy, "++-+++-+-").last(), Some(&Up));
    }

    #[test]
    fn recovery_clears_old_failures() {
        let policy = HealthPolicy {
            fall: 3,
            window: 10,
            rise: 2,
        };
        let states = run(policy, "---++-");
        assert_eq!(states, vec![Unknown, Unknown, Down, Down, Up, Up]);
    }

    #[test]
    fn full_width_window() {
        let policy = HealthPolicy {
            fall: 64,
            window: 64,
            rise: 1,
        };
        let mut w = HealthWindow::new(policy);
        for _ in 0..63 {
            w.observe(false);
        }
        assert_eq!(w.state(), Unknown);
        assert_eq!(w.observe(false), Some(Down));
    }
}
