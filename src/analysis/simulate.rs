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
    // The kernel's first route reads, merged into the world at their times
    // (at the same time, the read first).
    let mut reads: Vec<(Timestamp, Input)> = history
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
        .collect();
    reads.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    for (at, input) in history.world() {
        while reads.last().is_some_and(|(r, _)| *r <= at) {
            let (r, read) = reads.pop().expect("not empty");
            vt.feed(r, read);
        }
        vt.feed(at, input);
    }
    for (r, read) in reads.into_iter().rev() {
        vt.feed(r, read);
    }
    // After the last input, what was pending still happens, up to the end
    // of the record.
    vt.run_until(Timestamp(history.span.1));
    Run {
        effects: vt.take_effects(),
    }
}
