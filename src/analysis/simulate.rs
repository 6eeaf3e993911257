//! Runs a history through the core with a configuration, on the core's one
//! virtual-time driver: the recorded world inputs at their recorded times,
//! the core's own timers when they fall due, and the simulated actuator
//! confirming each route change after the recorded median latency. The
//! kernel's route is the one gwanje first read; after that, the route is
//! wherever the simulated actuator put it.

use crate::core::{
    Actuator, Core, CoreConfig, Effect, Event, Input, Order, TimerSource, Timestamp, VirtualTime,
};

use super::history::History;

/// What one configuration decided over a history, as a summary reads it.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// The path changes, route changes and each alert's first firing
    /// delivery, with the time each was produced (the rest, such as an
    /// alert re-sent every minute all day, is not kept: a run's memory
    /// grows with its decisions, not with the record's length).
    pub effects: Vec<(Timestamp, Effect)>,
}

impl Run {
    fn keep(&mut self, at: Timestamp, e: Effect, alerted: &mut std::collections::BTreeSet<String>) {
        let wanted = match &e {
            Effect::Event(Event::PathChanged { .. } | Event::RouteChanged { .. }) => true,
            Effect::Order(Order::DeliverAlerts { alerts, .. }) => alerts
                .iter()
                .filter(|a| a.firing())
                .any(|a| alerted.insert(a.name().to_string())),
            _ => false,
        };
        if wanted {
            self.effects.push((at, e));
        }
    }
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
    let mut run = Run::default();
    let mut alerted = std::collections::BTreeSet::new();
    let mut take = |vt: &mut VirtualTime, run: &mut Run| {
        while let Some((at, e)) = vt.poll_effect() {
            run.keep(at, e, &mut alerted);
        }
    };
    for (at, input) in history.world() {
        while reads.last().is_some_and(|(r, _)| *r <= at) {
            let (r, read) = reads.pop().expect("not empty");
            vt.feed(r, read);
        }
        vt.feed(at, input);
        take(&mut vt, &mut run);
    }
    for (r, read) in reads.into_iter().rev() {
        vt.feed(r, read);
    }
    // After the last input, what was pending still happens, up to the end
    // of the record.
    vt.run_until(Timestamp(history.span.1));
    take(&mut vt, &mut run);
    run
}
