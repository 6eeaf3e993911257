//! The failover controller of one group: which path its route uses, and when
//! to move it.
//!
//! Rules, in the order they apply:
//! 1. Nothing moves before the kernel's current route has been read and adopted.
//! 2. One route change at a time; a failed change is retried with backoff.
//! 3. An operator pin wins until it expires.
//! 4. A frozen group (flap guard) makes no automatic change until the freeze
//!    ends, except one: leaving a down active path for an eligible one (a
//!    freeze stops oscillation; it never holds traffic on a dead path).
//! 5. Monitor isolation (every path down at once) makes no change.
//! 6. With no route at all (none in the kernel at start), install the best
//!    path once the preferred path has a verdict, or after `initial_wait_ms`:
//!    the first installation is not a switch, not an alert, and not counted.
//! 7. If the active path is down, move to the most preferred eligible path;
//!    with none, report that failover is impossible.
//! 8. If the active path is up and a more preferred path is eligible, fail
//!    back after the stable period and the dwell time (auto) or offer it (manual).
//!
//! A path is eligible when it is up and, if it was ever down, has stayed up
//! for the hold-down time. Automatic switches count towards the flap guard.
//!
//! Failback waits `after` from the path's recovery (the outage's lost
//! packets are forgotten, see `quality`), needs 10 echoes within the
//! tolerated loss since then, and never goes to a path whose dampening
//! penalty is above the reuse threshold (a path failing again and again).
//! Leaving a degraded path needs a target significantly better by the same
//! measure (its share of lost echoes lower by the quality margin and three
//! standard errors). A check losing more than the tolerated share through
//! every path is reported as the service's degradation (no path is at
//! fault, none is moved to).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::config::{Failback, GroupConfig};
use super::dampening::Penalty;
use super::effect::{Effect, Event, Order};
use super::path::{PathStatus, SubjectView, service_down, witnessed};
use super::quality::{Losses, QualityPolicy, significantly_worse};
use super::shared::{PathReason, PathState, SwitchReason};
use super::types::{PathName, Subject, TargetKey, TargetState, Timestamp};

/// A route change being carried out or waiting for a retry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pending {
    /// Target path.
    pub to: PathName,
    /// Why.
    pub reason: SwitchReason,
    /// `None` while in flight; the retry time after a failure.
    pub retry_at: Option<Timestamp>,
}

/// An operator pin.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pin {
    /// The pinned path.
    pub path: PathName,
    /// Expiry.
    pub until: Timestamp,
    /// Who set it.
    pub by: String,
}

/// One group's controller state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroupState {
    /// Configuration.
    pub cfg: GroupConfig,
    /// Whether the kernel's route has been read at least once.
    pub adopted: bool,
    /// When it was.
    #[serde(default)]
    pub adopted_at: Option<Timestamp>,
    /// The path the route uses (as confirmed).
    pub active: Option<PathName>,
    /// A change in progress.
    pub pending: Option<Pending>,
    /// Consecutive failed tries of the current change.
    pub failed_attempts: u32,
    /// When the route last changed.
    pub last_switch: Option<Timestamp>,
    /// Automatic switches within the flap window.
    pub switches: VecDeque<Timestamp>,
    /// Frozen by the flap guard until then.
    pub frozen_until: Option<Timestamp>,
    /// Operator pin.
    pub pin: Option<Pin>,
    /// Checks judged a service failure (failing through every path, no
    /// down path explaining them), held until they pass somewhere.
    pub service_down: BTreeSet<TargetKey>,
    /// Failover impossible is being reported.
    pub impossible: bool,
    /// Monitor isolation is being reported.
    pub isolated: bool,
    failback_offered: Option<PathName>,
    /// Each path's dampening penalty.
    #[serde(default)]
    pub penalties: BTreeMap<PathName, Penalty>,
    /// The last failure of each path already penalised.
    #[serde(default)]
    penalised: BTreeMap<PathName, Timestamp>,
    /// Checks losing more than the tolerated share through every path,
    /// with each path's loss (per mille) when it was raised.
    #[serde(default)]
    pub service_degraded: BTreeMap<TargetKey, Vec<(PathName, u16)>>,
    /// In a cluster, while this replica may not order (it follows, or
    /// leads without fresh evidence yet): the route is the leader's.
    #[serde(default)]
    pub passive: bool,
    /// The fence its orders carry while this replica leads.
    #[serde(default)]
    pub fence: Option<u64>,
}

impl GroupState {
    /// A group whose route has not been read yet.
    pub fn new(cfg: GroupConfig) -> Self {
        GroupState {
            cfg,
            adopted: false,
            adopted_at: None,
            active: None,
            pending: None,
            failed_attempts: 0,
            last_switch: None,
            switches: VecDeque::new(),
            frozen_until: None,
            pin: None,
            service_down: BTreeSet::new(),
            impossible: false,
            isolated: false,
            failback_offered: None,
            penalties: BTreeMap::new(),
            penalised: BTreeMap::new(),
            service_degraded: BTreeMap::new(),
            passive: false,
            fence: None,
        }
    }

    /// Whether `path`'s dampening penalty keeps it from being a failback
    /// target at `now`.
    pub fn suppressed(&self, now: Timestamp, path: &PathName) -> bool {
        self.penalties
            .get(path)
            .is_some_and(|p| p.suppressed(now, &self.cfg.dampening))
    }

    /// The earliest time `path` can be failed back to, as far as its
    /// dampening penalty is concerned.
    pub fn reusable_at(&self, path: &PathName) -> Option<Timestamp> {
        self.penalties
            .get(path)
            .map(|p| p.reusable_at(&self.cfg.dampening))
    }

    /// The earliest time `path` could be failed back to if it stays clean:
    /// its stable period, the dwell time and its dampening penalty. `None`
    /// while it is not up, or failback is manual.
    pub fn earliest_failback(
        &self,
        path: &PathName,
        paths: &BTreeMap<PathName, PathStatus>,
    ) -> Option<Timestamp> {
        let Failback::Auto { after_ms } = self.cfg.failback else {
            return None;
        };
        let s = paths.get(path).filter(|s| s.state == PathState::Up)?;
        let after = |t: Timestamp, ms: u64| Timestamp(t.0.saturating_add(ms));
        let clean = s.quality.clean_since.unwrap_or(s.since);
        [
            Some(after(s.since, after_ms.max(self.cfg.hold_down_ms))),
            Some(after(clean, after_ms)),
            self.last_switch.map(|t| after(t, self.cfg.min_dwell_ms)),
            self.reusable_at(path),
        ]
        .into_iter()
        .flatten()
        .max()
    }

    /// Adds a penalty for each path failure not yet counted.
    fn penalise(&mut self, paths: &BTreeMap<PathName, PathStatus>) {
        for p in &self.cfg.paths {
            let Some(down) = paths.get(p).and_then(|s| s.last_down) else {
                continue;
            };
            if self.penalised.get(p) != Some(&down) {
                self.penalised.insert(p.clone(), down);
                self.penalties
                    .entry(p.clone())
                    .or_default()
                    .add(down, &self.cfg.dampening);
            }
        }
    }

    /// Raises or clears each check's degradation: more than the tolerated
    /// loss through every path it is checked through; cleared (hysteresis)
    /// when some path's loss falls to half the tolerated share.
    fn degradation(
        &mut self,
        losses: &BTreeMap<PathName, Losses>,
        quality: &QualityPolicy,
        out: &mut Vec<Effect>,
    ) {
        for c in &self.cfg.checks {
            let each: Vec<(PathName, Option<u16>)> = self
                .cfg
                .paths
                .iter()
                .map(|p| {
                    let l = losses
                        .get(p)
                        .and_then(|l| l.checks.get(c.as_str()).copied().flatten());
                    (p.clone(), l)
                })
                .collect();
            let per_path: Option<Vec<(PathName, u16)>> =
                each.iter().map(|(p, l)| Some((p.clone(), (*l)?))).collect();
            let raised = self.service_degraded.contains_key(c);
            let lossy = per_path.as_ref().is_some_and(|v| {
                !v.is_empty() && v.iter().all(|(_, l)| *l > quality.tolerated_permille)
            });
            // Any path with a judgement that is clean again clears it.
            let clean = each
                .iter()
                .any(|(_, l)| l.is_some_and(|l| l <= quality.tolerated_permille / 2));
            if !raised && lossy {
                let losses = per_path.unwrap_or_default();
                self.service_degraded.insert(c.clone(), losses.clone());
                out.push(Effect::Event(Event::ServiceDegraded {
                    group: self.cfg.name.clone(),
                    check: c.clone(),
                    losses,
                }));
            } else if raised && clean {
                self.service_degraded.remove(c);
                out.push(Effect::Event(Event::ServiceDegradationCleared {
                    group: self.cfg.name.clone(),
                    check: c.clone(),
                }));
            }
        }
        // A check a reload removed is cleared, so its alert resolves.
        let gone: Vec<TargetKey> = self
            .service_degraded
            .keys()
            .filter(|c| !self.cfg.checks.contains(c))
            .cloned()
            .collect();
        for c in gone {
            self.service_degraded.remove(&c);
            out.push(Effect::Event(Event::ServiceDegradationCleared {
                group: self.cfg.name.clone(),
                check: c,
            }));
        }
    }

    fn rank(&self, p: &PathName) -> usize {
        self.cfg
            .paths
            .iter()
            .position(|q| q == p)
            .unwrap_or(usize::MAX)
    }

    fn state_of(paths: &BTreeMap<PathName, PathStatus>, p: &PathName) -> PathState {
        paths.get(p).map_or(PathState::Unknown, |s| s.state)
    }

    fn eligible(&self, now: Timestamp, status: Option<&PathStatus>) -> bool {
        status.is_some_and(|s| {
            s.state == PathState::Up
                && (s.last_down.is_none() || now.since(s.since) >= self.cfg.hold_down_ms)
                && s.quality.settled(now, self.cfg.hold_down_ms)
                && s.quality.known_since_recovery()
        })
    }

    fn best(&self, now: Timestamp, paths: &BTreeMap<PathName, PathStatus>) -> Option<PathName> {
        self.cfg
            .paths
            .iter()
            .find(|p| self.eligible(now, paths.get(*p)))
            .cloned()
    }

    /// The kernel's route was read.
    pub fn observed(
        &mut self,
        now: Timestamp,
        path: Option<PathName>,
        paths: &BTreeMap<PathName, PathStatus>,
        out: &mut Vec<Effect>,
    ) {
        let group = self.cfg.name.clone();
        if !self.adopted {
            // A restart adopts what the kernel has: traffic never flips blindly.
            self.adopted = true;
            self.adopted_at = Some(now);
            self.active = path.clone();
            out.push(Effect::Event(Event::RouteAdopted { group, path }));
            return;
        }
        if self.pending.is_some() || path == self.active {
            return;
        }
        if self.passive {
            // The leader moved it (or will put it back): not ours to correct.
            let from = std::mem::replace(&mut self.active, path.clone());
            out.push(Effect::Event(Event::RouteFollowed {
                group,
                from,
                to: path,
            }));
            return;
        }
        out.push(Effect::Event(Event::RouteDrifted {
            group,
            expected: self.active.clone(),
            actual: path.clone(),
        }));
        match self.active.clone() {
            // Restore gwanje's route, unless it points at a dead path (then
            // the normal decision below picks the best one).
            Some(a) if Self::state_of(paths, &a) != PathState::Down => {
                self.request(a, SwitchReason::DriftCorrected, out)
            }
            Some(_) => self.active = path,
            None => self.active = path,
        }
    }

    /// A requested change finished.
    pub fn completed(
        &mut self,
        now: Timestamp,
        to: PathName,
        error: Option<String>,
        out: &mut Vec<Effect>,
    ) {
        let Some(pending) = self.pending.take_if(|p| p.to == to && p.retry_at.is_none()) else {
            return;
        };
        let group = self.cfg.name.clone();
        match error {
            None => {
                let from = self.active.replace(to.clone());
                if pending.reason.is_automatic() {
                    self.switches.push_back(now);
                }
                self.last_switch = Some(now);
                self.failed_attempts = 0;
                self.failback_offered = None;
                out.push(Effect::Event(Event::RouteChanged {
                    group,
                    from,
                    to,
                    reason: pending.reason,
                    at: now,
                }));
            }
            Some(error) => {
                self.failed_attempts += 1;
                let shift = (self.failed_attempts - 1).min(20);
                let delay = (self.cfg.retry_initial_ms << shift).min(self.cfg.retry_max_ms);
                let retry_at = Timestamp(now.0 + delay);
                out.push(Effect::Event(Event::RouteChangeFailed {
                    group,
                    to: to.clone(),
                    attempt: self.failed_attempts,
                    error,
                    retry_at,
                }));
                self.pending = Some(Pending {
                    retry_at: Some(retry_at),
                    ..pending
                });
            }
        }
    }

    fn request(&mut self, to: PathName, reason: SwitchReason, out: &mut Vec<Effect>) {
        out.push(Effect::Order(Order::ChangeRoute {
            group: self.cfg.name.clone(),
            from: self.active.clone(),
            to: to.clone(),
            reason: reason.clone(),
            attempt: self.failed_attempts + 1,
            fence: self.fence,
        }));
        self.pending = Some(Pending {
            to,
            reason,
            retry_at: None,
        });
    }

    fn switch_guarded(
        &mut self,
        now: Timestamp,
        to: PathName,
        reason: SwitchReason,
        out: &mut Vec<Effect>,
    ) {
        let window = self.cfg.flap_guard.window_ms;
        while self
            .switches
            .front()
            .is_some_and(|t| now.since(*t) >= window)
        {
            self.switches.pop_front();
        }
        if self.switches.len() as u32 >= self.cfg.flap_guard.max_switches {
            let until = Timestamp(now.0 + window);
            self.frozen_until = Some(until);
            out.push(Effect::Event(Event::GroupFrozen {
                group: self.cfg.name.clone(),
                until,
                switches: self.switches.len() as u32,
            }));
            return;
        }
        self.request(to, reason, out);
    }

    fn set_flag(
        flag: &mut bool,
        value: bool,
        on: impl FnOnce() -> Effect,
        off: impl FnOnce() -> Effect,
        out: &mut Vec<Effect>,
    ) {
        if *flag != value {
            *flag = value;
            out.push(if value { on() } else { off() });
        }
    }

    /// Applies the rules at `now` (idempotent: safe to call at any time).
    pub fn decide(
        &mut self,
        now: Timestamp,
        paths: &BTreeMap<PathName, PathStatus>,
        losses: &BTreeMap<PathName, Losses>,
        quality: &QualityPolicy,
        health: &impl Fn(&Subject) -> SubjectView,
        out: &mut Vec<Effect>,
    ) {
        let group = self.cfg.name.clone();
        self.penalise(paths);
        let any_up = self
            .cfg
            .paths
            .iter()
            .any(|p| Self::state_of(paths, p) == PathState::Up);
        // A check failing through every path says "service" unless a down
        // path could explain it: one the check has not passed through since
        // it went down. A path down for other reasons that still carried
        // this check (router A dropping large packets while the portal's
        // small pages passed) explains nothing.
        let explained = |c: &TargetKey| {
            self.cfg.paths.iter().any(|p| {
                paths
                    .get(p)
                    .filter(|s| s.state == PathState::Down)
                    .is_some_and(|s| {
                        // A success stamped just after, by a probe in
                        // flight, is no proof: the same margin as `witnessed`.
                        health(&Subject::Check(c.clone(), p.clone()))
                            .last_ok
                            .is_none_or(|ok| ok.since(s.since) <= self.cfg.isolation_window_ms)
                    })
            })
        };
        let verdicts: Vec<(TargetKey, bool)> = self
            .cfg
            .checks
            .iter()
            .map(|c| {
                // Once raised, it holds until the check passes somewhere: a
                // path's reason changing (blame to loss) is no new evidence.
                let raised = self.service_down.contains(c);
                let down =
                    service_down(&self.cfg, c, health) && (raised || (any_up && !explained(c)));
                (c.clone(), down)
            })
            .collect();
        for (c, down) in verdicts {
            let c = &c;
            if down && self.service_down.insert(c.clone()) {
                out.push(Effect::Event(Event::ServiceDown {
                    group: group.clone(),
                    check: c.clone(),
                }));
            } else if !down && self.service_down.remove(c) {
                out.push(Effect::Event(Event::ServiceRecovered {
                    group: group.clone(),
                    check: c.clone(),
                }));
            }
        }
        self.degradation(losses, quality, out);
        let downs: Option<Vec<Timestamp>> = self
            .cfg
            .paths
            .iter()
            .map(|p| {
                paths
                    .get(p)
                    .filter(|s| s.state == PathState::Down)
                    .map(|s| s.since)
            })
            .collect();
        let isolated = downs.is_some_and(|d| {
            let (lo, hi) = (d.iter().min().copied(), d.iter().max().copied());
            matches!((lo, hi), (Some(lo), Some(hi)) if hi.since(lo) <= self.cfg.isolation_window_ms)
        });
        let g = group.clone();
        let g2 = group.clone();
        Self::set_flag(
            &mut self.isolated,
            isolated,
            || Effect::Event(Event::MonitorIsolated { group: g }),
            || Effect::Event(Event::MonitorReconnected { group: g2 }),
            out,
        );

        if !self.adopted || self.passive {
            return;
        }
        if let Some(p) = &self.pending {
            match p.retry_at {
                // Retry by deciding afresh: the best target may have changed.
                Some(at) if now >= at => self.pending = None,
                _ => return,
            }
        }
        if let Some(pin) = self.pin.clone() {
            if now < pin.until {
                if self.active.as_ref() != Some(&pin.path) {
                    self.request(pin.path, SwitchReason::Pinned, out);
                }
                return;
            }
            self.pin = None;
            out.push(Effect::Event(Event::PinCleared {
                group: group.clone(),
                by: "expired".into(),
            }));
        }
        if let Some(until) = self.frozen_until {
            if now < until {
                self.leave_dead_path_while_frozen(now, paths, quality, health, out);
                return;
            }
            self.frozen_until = None;
            self.switches.clear();
            out.push(Effect::Event(Event::GroupUnfrozen {
                group: group.clone(),
                by: "expired".into(),
            }));
        }
        if self.isolated {
            return;
        }
        let best = self.best(now, paths);
        let Some(active) = self.active.clone() else {
            // Installing the standby because it reported first would be a
            // failback a minute later: wait for the preferred path's verdict.
            let verdict = self
                .cfg
                .paths
                .first()
                .is_none_or(|p| Self::state_of(paths, p) != PathState::Unknown);
            let waited = self
                .adopted_at
                .is_none_or(|t| now.since(t) >= self.cfg.initial_wait_ms);
            if let Some(b) = best.filter(|_| verdict || waited) {
                self.request(b, SwitchReason::Initial, out);
            }
            return;
        };
        match Self::state_of(paths, &active) {
            PathState::Down => match self.failover_target(now, paths, &active, quality, health) {
                Some(b) => {
                    let why = paths
                        .get(&active)
                        .map(|s| s.reason.clone())
                        .expect("a down path has a status");
                    self.switch_guarded(now, b, SwitchReason::PathFailed { why }, out);
                }
                None => {
                    let others_down = self
                        .cfg
                        .paths
                        .iter()
                        .filter(|p| **p != active)
                        .all(|p| Self::state_of(paths, p) == PathState::Down);
                    let g = group.clone();
                    let a = Some(active.clone());
                    Self::set_flag(
                        &mut self.impossible,
                        others_down,
                        || {
                            Effect::Event(Event::FailoverImpossible {
                                group: g,
                                active: a,
                                unsure: Vec::new(),
                            })
                        },
                        || {
                            Effect::Event(Event::FailoverPossibleAgain {
                                group: group.clone(),
                            })
                        },
                        out,
                    );
                }
            },
            PathState::Up => {
                // Checks failing through the active path while every other
                // path is down: the path or the service, gwanje cannot tell.
                let others_down = self
                    .cfg
                    .paths
                    .iter()
                    .filter(|p| **p != active)
                    .all(|p| Self::state_of(paths, p) == PathState::Down);
                let unsure: Vec<TargetKey> = self
                    .cfg
                    .checks
                    .iter()
                    // A check the service explains is no reason to move.
                    .filter(|c| {
                        others_down
                            && !self.service_down.contains(*c)
                            && health(&Subject::Check((*c).clone(), active.clone())).state
                                == TargetState::Down
                    })
                    .cloned()
                    .collect();
                let g = group.clone();
                let a = Some(active.clone());
                Self::set_flag(
                    &mut self.impossible,
                    !unsure.is_empty(),
                    || {
                        Effect::Event(Event::FailoverImpossible {
                            group: g,
                            active: a,
                            unsure,
                        })
                    },
                    || {
                        Effect::Event(Event::FailoverPossibleAgain {
                            group: group.clone(),
                        })
                    },
                    out,
                );
                let Some(b) = self
                    .cfg
                    .paths
                    .iter()
                    .find(|p| self.eligible(now, paths.get(*p)) && !self.suppressed(now, p))
                    .filter(|b| self.rank(b) < self.rank(&active))
                    .cloned()
                else {
                    return;
                };
                match self.cfg.failback {
                    Failback::Auto { after_ms } => {
                        // Failback needs clean quality for the whole stable
                        // period, over enough packets not to be a lucky streak.
                        let stable = paths.get(&b).is_some_and(|s| {
                            now.since(s.since) >= after_ms
                                && s.quality.settled(now, after_ms)
                                && s.quality.clean_for(now, after_ms)
                                && s.quality.judged_since_recovery(quality)
                        });
                        let dwelled = self
                            .last_switch
                            .is_none_or(|t| now.since(t) >= self.cfg.min_dwell_ms);
                        if stable && dwelled {
                            self.switch_guarded(now, b, SwitchReason::Failback, out);
                        }
                    }
                    Failback::Manual => {
                        if self.failback_offered.as_ref() != Some(&b) {
                            self.failback_offered = Some(b.clone());
                            out.push(Effect::Event(Event::FailbackAvailable { group, to: b }));
                        }
                    }
                }
            }
            PathState::Unknown => {}
        }
    }

    /// While frozen: a down active path is still left for an eligible one.
    fn leave_dead_path_while_frozen(
        &mut self,
        now: Timestamp,
        paths: &BTreeMap<PathName, PathStatus>,
        quality: &QualityPolicy,
        health: &impl Fn(&Subject) -> SubjectView,
        out: &mut Vec<Effect>,
    ) {
        let Some(active) = self.active.clone() else {
            return;
        };
        if self.isolated || Self::state_of(paths, &active) != PathState::Down {
            return;
        }
        let Some(to) = self.failover_target(now, paths, &active, quality, health) else {
            return;
        };
        let why = paths
            .get(&active)
            .map(|s| s.reason.clone())
            .expect("a down path has a status");
        out.push(Effect::Event(Event::MovedDespiteFreeze {
            group: self.cfg.name.clone(),
            from: active,
            to: to.clone(),
        }));
        self.request(to, SwitchReason::PathFailed { why }, out);
    }

    /// The best eligible path whose evidence was taken while `failed` was
    /// failing: every subject failing on `failed` must have succeeded on the
    /// candidate since. Without it, a failure reaching all paths a moment
    /// apart (the service, or gwanje's own uplink) would move traffic. Away
    /// from a degraded path, the candidate must also be clearly better by
    /// its echoes over the window: clean, or losing less by the quality
    /// margin and three standard errors.
    fn failover_target(
        &self,
        now: Timestamp,
        paths: &BTreeMap<PathName, PathStatus>,
        failed: &PathName,
        quality: &QualityPolicy,
        health: &impl Fn(&Subject) -> SubjectView,
    ) -> Option<PathName> {
        // Degraded is a judgement on a sample: the candidate must be better
        // by a significant margin, even when it lost next to nothing (a
        // clean-looking start of 20 echoes is no proof).
        let better = |p: &PathName| match (paths.get(failed), paths.get(p)) {
            (Some(f), Some(c)) if matches!(f.reason, PathReason::Degraded { .. }) => {
                significantly_worse(f.quality.echoes, c.quality.echoes, quality)
            }
            _ => true,
        };
        let pairs = |p: &PathName| -> Vec<Subject> {
            std::iter::once(Subject::Router(p.clone()))
                .chain(
                    self.cfg
                        .checks
                        .iter()
                        .map(|c| Subject::Check(c.clone(), p.clone())),
                )
                .collect()
        };
        self.cfg
            .paths
            .iter()
            .filter(|p| *p != failed && self.eligible(now, paths.get(*p)) && better(p))
            .find(|p| {
                pairs(failed).into_iter().zip(pairs(p)).all(|(f, c)| {
                    let f = health(&f);
                    f.state == TargetState::Up
                        || witnessed(&health(&c), &f, self.cfg.isolation_window_ms)
                        || f.failing_since.is_none()
                })
            })
            .cloned()
    }

    /// The next time `decide` could act without a new input.
    pub fn next_deadline(
        &self,
        now: Timestamp,
        paths: &BTreeMap<PathName, PathStatus>,
    ) -> Option<Timestamp> {
        let mut at: Vec<Timestamp> = Vec::new();
        at.extend(self.pending.as_ref().and_then(|p| p.retry_at));
        if self.active.is_none() {
            at.extend(
                self.adopted_at
                    .map(|t| Timestamp(t.0.saturating_add(self.cfg.initial_wait_ms))),
            );
        }
        at.extend(self.pin.as_ref().map(|p| p.until));
        at.extend(self.frozen_until);
        for p in &self.cfg.paths {
            if let Some(s) = paths.get(p).filter(|s| s.state == PathState::Up) {
                if s.last_down.is_some() {
                    at.push(Timestamp(s.since.0 + self.cfg.hold_down_ms));
                }
                at.extend(self.reusable_at(p));
                if let Failback::Auto { after_ms } = self.cfg.failback {
                    at.push(Timestamp(s.since.0 + after_ms.max(self.cfg.hold_down_ms)));
                    if let Some(clean) = s.quality.clean_since {
                        at.push(Timestamp(clean.0 + after_ms.max(self.cfg.hold_down_ms)));
                    }
                }
            }
        }
        at.extend(
            self.last_switch
                .map(|t| Timestamp(t.0 + self.cfg.min_dwell_ms)),
        );
        at.into_iter().filter(|t| *t > now).min()
    }
}
