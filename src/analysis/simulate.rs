//! Runs a history through the core with a configuration, on the core's one
//! virtual-time driver: the recorded world inputs at their recorded times,
//! the core's own timers when they fall due, and the simulated actuator
//! confirming each route change after the recorded median latency. The
//! kernel's route is the one gwanje first read; after that, the route is
//! wherever the simulated actuator put it.

use crate::core::{Actuator, Core, CoreConfig, Effect, Input, TimerSource, Timestamp, VirtualTime};

use super::history::History;

/// The effects one configuration produced over a history.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// Every effect with the time it was produced.
    pub effects: Vec<(Timestamp, Effect)>,
}

/// Replays `history` through a fresh core configured with `cfg`.
pub fn simulate(history: &History, cfg: &CoreConfig) -> Run {
    let actuator = Actuator {
        latency_ms: history.actuator_ms.max(1),
        ..Actuator::default()
    };
    let mut vt = VirtualTime::new(Core::new(), TimerSource::Own, Some(actuator));
    vt.feed(Timestamp(history.span.0), Input::PlanApplied(cfg.clone()));
    let mut inputs: Vec<(Timestamp, Input)> = history
        .kernel
        .iter()
        .map(|(group, (at, path))| {
            (
                *at,
                Input::RoutesObserved {
                    group: group.clone(),
                    path: path.clone(),
                    read_at: *at,
                },
            )
        })
        .chain(history.world.iter().cloned())
        .collect();
    // Stable: at the same time, a route read comes before the world's inputs.
    inputs.sort_by_key(|(at, _)| *at);
    for (at, input) in inputs {
        vt.feed(at, input);
    }
    // After the last input, what was pending still happens, up to the end
    // of the record.
    vt.run_until(Timestamp(history.span.1));
    Run {
        effects: vt.take_effects(),
    }
}
