//! Runs a history through the core with a configuration: the recorded
//! world inputs at their recorded times, the core's own timers when they
//! fall due, and a simulated actuator that confirms each route change after
//! the recorded median latency. The kernel's route is the one gwanje first
//! read; after that, the route is wherever the simulated actuator put it.

use std::collections::BTreeMap;

use super::history::History;
use crate::core::{Core, CoreConfig, Effect, Input, Timestamp};

/// The effects one configuration produced over a history.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// Every effect with the time it was produced.
    pub effects: Vec<(Timestamp, Effect)>,
}

/// Replays `history` through a fresh core configured with `cfg`.
pub fn simulate(history: &History, cfg: &CoreConfig) -> Run {
    let mut core = Core::new();
    let mut run = Run::default();
    let start = Timestamp(history.span.0);
    // Route changes in flight: when the actuator answers, and what.
    let mut pending: BTreeMap<Timestamp, Vec<Input>> = BTreeMap::new();
    let feed = |core: &mut Core, run: &mut Run, pending: &mut BTreeMap<_, Vec<_>>, at, input| {
        core.handle_input(at, input);
        drain(core, run, pending, at, history.actuator_ms);
    };
    feed(
        &mut core,
        &mut run,
        &mut pending,
        start,
        Input::PlanApplied(cfg.clone()),
    );
    let mut kernel: Vec<(Timestamp, Input)> = history
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
    kernel.sort_by_key(|(at, _)| *at);
    let mut inputs = kernel.into_iter().peekable();
    let mut world = history.world.iter().peekable();
    loop {
        let next_input = match (inputs.peek(), world.peek()) {
            (Some((a, _)), Some((b, _))) => Some((*a).min(*b)),
            (Some((a, _)), None) => Some(*a),
            (None, Some((b, _))) => Some(*b),
            (None, None) => None,
        };
        // After the last input, what was pending still happens, up to the
        // end of the record.
        let t = next_input.unwrap_or(Timestamp(history.span.1));
        // Everything due before the next recorded input happens first.
        loop {
            let timer = core.poll_timeout().filter(|d| *d <= t);
            let answer = pending.keys().next().copied().filter(|d| *d <= t);
            match (timer, answer) {
                (None, None) => break,
                (Some(d), a) if a.is_none_or(|a| d < a) => {
                    core.handle_timeout(d);
                    drain(&mut core, &mut run, &mut pending, d, history.actuator_ms);
                }
                (_, Some(a)) => {
                    for input in pending.remove(&a).unwrap_or_default() {
                        feed(&mut core, &mut run, &mut pending, a, input);
                    }
                }
                (Some(_), None) => unreachable!("handled above"),
            }
        }
        if next_input.is_none() {
            break;
        }
        if inputs.peek().is_some_and(|(a, _)| *a == t) {
            let (at, input) = inputs.next().expect("peeked");
            feed(&mut core, &mut run, &mut pending, at, input);
        } else {
            let (at, input) = world.next().expect("peeked");
            feed(&mut core, &mut run, &mut pending, *at, input.clone());
        }
    }
    run
}

fn drain(
    core: &mut Core,
    run: &mut Run,
    pending: &mut BTreeMap<Timestamp, Vec<Input>>,
    at: Timestamp,
    actuator_ms: u64,
) {
    while let Some(e) = core.poll_effect() {
        if let Effect::RouteChangeRequested { group, to, .. } = &e {
            pending
                .entry(Timestamp(at.0 + actuator_ms.max(1)))
                .or_default()
                .push(Input::RouteChangeCompleted {
                    group: group.clone(),
                    to: to.clone(),
                    error: None,
                });
        }
        run.effects.push((at, e));
    }
}
