//! The core state machine: owns every target's health window.

use std::collections::{BTreeMap, VecDeque};

use super::health::{HealthPolicy, HealthWindow};
use super::types::{FailureKind, Observation, TargetKey, TargetState, Timestamp};

/// What the core needs to know about one planned target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetConfig {
    /// The target's identity.
    pub key: TargetKey,
    /// Its health thresholds.
    pub policy: HealthPolicy,
}

/// A timestamped input to the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A (new) plan was applied: these are now the targets.
    PlanApplied(Vec<TargetConfig>),
    /// A probe finished.
    ProbeCompleted(Observation),
}

/// Something the core decided, for the adapters to carry out or report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A target's health state changed.
    TargetChanged {
        /// The target.
        target: TargetKey,
        /// Its state before.
        from: TargetState,
        /// Its state now.
        to: TargetState,
        /// When the deciding observation was made.
        at: Timestamp,
        /// Failures among the results in the window when it changed.
        failures_in_window: u32,
        /// The failure class of the deciding probe, if it failed.
        cause: Option<FailureKind>,
    },
}

/// The decision core. Same inputs in the same order give the same effects.
#[derive(Debug, Default)]
pub struct Core {
    targets: BTreeMap<TargetKey, HealthWindow>,
    effects: VecDeque<Effect>,
}

impl Core {
    /// An empty core with no targets.
    pub fn new() -> Self {
        Core::default()
    }

    /// Feeds one input observed at `now`.
    pub fn handle_input(&mut self, now: Timestamp, input: Input) {
        match input {
            Input::PlanApplied(targets) => self.apply_plan(targets),
            Input::ProbeCompleted(obs) => self.observe(now, obs),
        }
    }

    /// Takes the next pending effect, oldest first.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// The current state of `target`, if it is planned.
    pub fn target_state(&self, target: &TargetKey) -> Option<TargetState> {
        self.targets.get(target).map(HealthWindow::state)
    }

    /// Every planned target with its state, in key order.
    pub fn target_states(&self) -> impl Iterator<Item = (&TargetKey, TargetState)> {
        self.targets.iter().map(|(k, w)| (k, w.state()))
    }

    fn apply_plan(&mut self, targets: Vec<TargetConfig>) {
        let mut old = std::mem::take(&mut self.targets);
        for t in targets {
            // A target whose thresholds did not change keeps its history, so
            // a reload never resets a down target to unknown.
            let window = match old.remove(&t.key) {
                Some(w) if w.policy() == t.policy => w,
                _ => HealthWindow::new(t.policy),
            };
            self.targets.insert(t.key, window);
        }
    }

    fn observe(&mut self, now: Timestamp, obs: Observation) {
        // Results for a target removed by a reload can still be in flight.
        let Some(window) = self.targets.get_mut(&obs.target) else {
            return;
        };
        let from = window.state();
        if let Some(to) = window.observe(obs.failure.is_none()) {
            self.effects.push_back(Effect::TargetChanged {
                failures_in_window: window.failures_in_window(),
                target: obs.target,
                from,
                to,
                at: now,
                cause: obs.failure,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: &str) -> TargetKey {
        TargetKey::new("svc", n)
    }

    fn plan(names: &[&str], policy: HealthPolicy) -> Input {
        Input::PlanApplied(
            names
                .iter()
                .map(|n| TargetConfig {
                    key: key(n),
                    policy,
                })
                .collect(),
        )
    }

    fn probe(core: &mut Core, t: u64, name: &str, failure: Option<FailureKind>) {
        core.handle_input(
            Timestamp(t),
            Input::ProbeCompleted(Observation {
                target: key(name),
                at: Timestamp(t),
                failure,
            }),
        );
    }

    fn drain(core: &mut Core) -> Vec<Effect> {
        std::iter::from_fn(|| core.poll_effect()).collect()
    }

    #[test]
    fn emits_one_effect_per_state_change() {
        let mut core = Core::new();
        core.handle_input(Timestamp(0), plan(&["a"], HealthPolicy::consecutive(2, 1)));
        probe(&mut core, 1, "a", None);
        probe(&mut core, 2, "a", None);
        probe(&mut core, 3, "a", Some(FailureKind::Timeout));
        probe(&mut core, 4, "a", Some(FailureKind::Refused));
        probe(&mut core, 5, "a", Some(FailureKind::Refused));
        let effects = drain(&mut core);
        assert_eq!(effects.len(), 2, "{effects:?}");
        assert_eq!(
            effects[1],
            Effect::TargetChanged {
                target: key("a"),
                from: TargetState::Up,
                to: TargetState::Down,
                at: Timestamp(4),
                failures_in_window: 2,
                cause: Some(FailureKind::Refused),
            }
        );
    }

    #[test]
    fn reload_keeps_state_of_unchanged_targets_only() {
        let policy = HealthPolicy::consecutive(1, 1);
        let mut core = Core::new();
        core.handle_input(Timestamp(0), plan(&["a", "b"], policy));
        probe(&mut core, 1, "a", Some(FailureKind::Timeout));
        probe(&mut core, 1, "b", Some(FailureKind::Timeout));
        core.handle_input(
            Timestamp(2),
            Input::PlanApplied(vec![
                TargetConfig {
                    key: key("a"),
                    policy,
                },
                TargetConfig {
                    key: key("b"),
                    policy: HealthPolicy::consecutive(2, 1),
                },
                TargetConfig {
                    key: key("c"),
                    policy,
                },
            ]),
        );
        assert_eq!(core.target_state(&key("a")), Some(TargetState::Down));
        assert_eq!(core.target_state(&key("b")), Some(TargetState::Unknown));
        assert_eq!(core.target_state(&key("c")), Some(TargetState::Unknown));
    }

    #[test]
    fn results_for_removed_targets_are_ignored() {
        let mut core = Core::new();
        core.handle_input(Timestamp(0), plan(&["a"], HealthPolicy::consecutive(1, 1)));
        core.handle_input(Timestamp(1), plan(&[], HealthPolicy::default()));
        probe(&mut core, 2, "a", Some(FailureKind::Timeout));
        assert!(drain(&mut core).is_empty());
        assert_eq!(core.target_state(&key("a")), None);
    }

    #[test]
    fn same_inputs_same_effects() {
        let run = || {
            let mut core = Core::new();
            core.handle_input(Timestamp(0), plan(&["a", "b"], HealthPolicy::default()));
            for t in 0..200u64 {
                let failure = (t % 7 < 3).then_some(FailureKind::Timeout);
                probe(&mut core, t, if t % 2 == 0 { "a" } else { "b" }, failure);
            }
            drain(&mut core)
        };
        let first = run();
        assert!(!first.is_empty());
        assert_eq!(first, run());
    }

    proptest::proptest! {
        /// Isolated failures (never `fall` of them within the window) never mark a target down.
        #[test]
        fn scattered_failures_below_threshold_never_flip(gaps in proptest::collection::vec(3usize..10, 1..40)) {
            let mut core = Core::new();
            core.handle_input(Timestamp(0), plan(&["a"], HealthPolicy { fall: 2, window: 3, rise: 1 }));
            let mut t = 0;
            for gap in gaps {
                for _ in 0..gap {
                    t += 1;
                    probe(&mut core, t, "a", None);
                }
                t += 1;
                probe(&mut core, t, "a", Some(FailureKind::Timeout));
            }
            proptest::prop_assert_ne!(core.target_state(&key("a")), Some(TargetState::Down));
        }
    }
}
