//! The one loop that runs the core on virtual or recorded time, with the one
//! simulated actuator. The core's scenario tests, `gwanje replay`, what-if
//! and sweep all drive the core through it; the live engine drives it
//! through the journal's seam on the real clock.
//!
//! Two choices make the difference between its users:
//! - whose timers: [`TimerSource::Recorded`] runs the core's timers only when
//!   told ([`VirtualTime::tick`], as a journal recorded them);
//!   [`TimerSource::Own`] runs each one at its deadline, before any later input;
//! - whose actuator: `None` leaves route changes to recorded answers;
//!   `Some(`[`Actuator`]`)` answers them itself, after its latency, on its
//!   [`Kernel`].

use std::collections::{BTreeMap, VecDeque};

use super::effect::{Effect, Input, Order};
use super::machine::Core;
use super::types::{GroupName, PathName, Timestamp};

/// Whose timers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerSource {
    /// Only when [`VirtualTime::tick`] is called (a journal's timeouts).
    Recorded,
    /// Each at its deadline, before anything later happens.
    Own,
}

/// A kernel routing table in memory: each group's route, and every change
/// asked of it. The simulated actuator and the engine's paused-time tests
/// share it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kernel {
    routes: BTreeMap<GroupName, PathName>,
    /// When set, every change is refused (a broken actuator).
    pub refusing: bool,
    /// Every change asked: when, which group, to which path, and whether
    /// it was made.
    pub changes: Vec<(Timestamp, GroupName, PathName, bool)>,
}

/// The error a refusing [`Kernel`] gives.
const REFUSED: &str = "netlink: permission denied";

impl Kernel {
    /// Moves `group`'s route to `to` at `at`, unless refusing.
    pub fn change(
        &mut self,
        at: Timestamp,
        group: &GroupName,
        to: &PathName,
    ) -> Result<(), &'static str> {
        let made = !self.refusing;
        self.changes.push((at, group.clone(), to.clone(), made));
        if !made {
            return Err(REFUSED);
        }
        self.routes.insert(group.clone(), to.clone());
        Ok(())
    }

    /// Sets `group`'s route without asking (another tool changed it, or it
    /// was there at start).
    pub fn set(&mut self, group: &GroupName, to: Option<PathName>) {
        match to {
            Some(p) => self.routes.insert(group.clone(), p),
            None => self.routes.remove(group),
        };
    }

    /// `group`'s route now.
    pub fn route(&self, group: &GroupName) -> Option<&PathName> {
        self.routes.get(group)
    }
}

/// The simulated actuator: carries out each route change on its kernel and
/// answers `latency_ms` later (0: at once, before the next effect).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actuator {
    /// How long a change takes.
    pub latency_ms: u64,
    /// The routing table it changes.
    pub kernel: Kernel,
}

/// The core on virtual or recorded time.
#[derive(Debug, Clone)]
pub struct VirtualTime {
    core: Core,
    timers: TimerSource,
    /// The simulated actuator, when route changes are answered here.
    pub actuator: Option<Actuator>,
    answers: BTreeMap<Timestamp, Vec<Input>>,
    effects: VecDeque<(Timestamp, Effect)>,
    /// When kept, every input given to the core in order (`None`: its
    /// timers ran), the actuator's answers included: a journal in memory.
    pub log: Option<Vec<(Timestamp, Option<Input>)>>,
}

impl VirtualTime {
    /// Drives `core` with `timers` and `actuator`.
    pub fn new(core: Core, timers: TimerSource, actuator: Option<Actuator>) -> Self {
        VirtualTime {
            core,
            timers,
            actuator,
            answers: BTreeMap::new(),
            effects: VecDeque::new(),
            log: None,
        }
    }

    /// Feeds `input` at `at`, after everything due before it.
    pub fn feed(&mut self, at: Timestamp, input: Input) {
        self.run_until(at);
        self.input(at, input);
        self.carry_out(at);
    }

    /// Runs the core's timers at `at` (a recorded timeout), after everything
    /// due before it.
    pub fn tick(&mut self, at: Timestamp) {
        self.run_until(at);
        self.timeout(at);
        self.carry_out(at);
    }

    fn input(&mut self, at: Timestamp, input: Input) {
        if let Some(log) = &mut self.log {
            log.push((at, Some(input.clone())));
        }
        self.core.handle_input(at, input);
    }

    fn timeout(&mut self, at: Timestamp) {
        if let Some(log) = &mut self.log {
            log.push((at, None));
        }
        self.core.handle_timeout(at);
    }

    /// Runs, in time order, every timer (with [`TimerSource::Own`]) and every
    /// actuator answer due at or before `t`.
    pub fn run_until(&mut self, t: Timestamp) {
        // Each step either runs a timer or delivers an answer; both move
        // virtual time forward, and the core re-arms at most one timer per
        // group per step, so the loop ends.
        loop {
            let timer = match self.timers {
                TimerSource::Own => self.core.poll_timeout().filter(|d| *d <= t),
                TimerSource::Recorded => None,
            };
            let answer = self.answers.keys().next().copied().filter(|a| *a <= t);
            match (timer, answer) {
                (None, None) => break,
                (Some(d), a) if a.is_none_or(|a| d < a) => {
                    self.timeout(d);
                    self.carry_out(d);
                }
                (_, Some(a)) => {
                    for input in self.answers.remove(&a).unwrap_or_default() {
                        self.input(a, input);
                        self.carry_out(a);
                    }
                }
                (Some(_), None) => unreachable!("a timer without an answer is run above"),
            }
        }
    }

    /// Takes what the core handed out at `at`, answering route changes when
    /// this driver has the actuator.
    fn carry_out(&mut self, at: Timestamp) {
        while let Some(e) = self.core.poll_effect() {
            let answer = match (&e, &mut self.actuator) {
                (Effect::Order(Order::ChangeRoute { group, to, .. }), Some(act)) => {
                    let error = act.kernel.change(at, group, to).err().map(str::to_string);
                    let input = Input::RouteChangeCompleted {
                        group: group.clone(),
                        to: to.clone(),
                        error,
                    };
                    Some((act.latency_ms, input))
                }
                _ => None,
            };
            self.effects.push_back((at, e));
            match answer {
                Some((0, input)) => self.input(at, input),
                Some((latency, input)) => self
                    .answers
                    .entry(Timestamp(at.0.saturating_add(latency)))
                    .or_default()
                    .push(input),
                None => {}
            }
        }
    }

    /// The next effect produced, with the time it was produced at.
    pub fn poll_effect(&mut self) -> Option<(Timestamp, Effect)> {
        self.effects.pop_front()
    }

    /// Every effect produced and not yet taken.
    pub fn take_effects(&mut self) -> Vec<(Timestamp, Effect)> {
        self.effects.drain(..).collect()
    }

    /// The core, to read.
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// The core, given up.
    pub fn into_core(self) -> Core {
        self.core
    }
}
