//! The core state machine: health windows, path states and group controllers.

use std::collections::{BTreeMap, VecDeque};

use super::alert::{Alert, AlertKind, AlertName, Scope};
use super::alert_book::AlertBook;
use super::config::CoreConfig;
use super::diagnosis::{Examination, LADDER_EVERY_MS, TRACE_EVERY_MS};
use super::effect::{Effect, Event, Input, Order};
use super::group::{GroupState, Pin};
use super::health::HealthWindow;
use super::path::{PathStatus, SubjectView, classify};
use super::quality::{Evidence, clearly_worse};
use super::shared::{PathReason, PathState};
use super::timers::{Timer, Timers};
use super::types::{GroupName, Observation, PathName, Subject, TargetState, Timestamp};

/// One subject's health window and the times path decisions compare.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Tracked {
    window: HealthWindow,
    last_ok: Option<Timestamp>,
    failing_since: Option<Timestamp>,
    #[serde(default)]
    ok_since: Option<Timestamp>,
    #[serde(default)]
    last_fail: Option<Timestamp>,
}

impl Tracked {
    fn view(&self) -> SubjectView {
        SubjectView {
            state: self.window.state(),
            last_ok: self.last_ok,
            failing_since: self.failing_since,
            ok_since: self.ok_since,
            last_fail: self.last_fail,
        }
    }
}

/// The decision core. Same inputs in the same order give the same effects.
///
/// The polling contract (quinn-proto's): feed each input with
/// [`Core::handle_input`]; call [`Core::handle_timeout`] no later than
/// [`Core::poll_timeout`] says; after either, take every effect with
/// [`Core::poll_effect`] and carry it out. Time is monotonic inside the
/// core: an input stamped earlier than the latest time the core has seen is
/// evaluated at that latest time (its own stamps, e.g. when a probe
/// finished, are kept as data).
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Core {
    now: Timestamp,
    timers: Timers,
    #[serde(with = "super::pairs")]
    health: BTreeMap<Subject, Tracked>,
    paths: BTreeMap<PathName, PathStatus>,
    groups: BTreeMap<GroupName, GroupState>,
    alerts: AlertBook,
    #[serde(default)]
    quality: super::quality::QualityPolicy,
    /// When each group's last route change finished: route reads begun
    /// before it are stale.
    route_changed_at: BTreeMap<GroupName, Timestamp>,
    effects: VecDeque<Effect>,
    /// With peers: the vantages' votes and verdicts.
    #[serde(default)]
    quorum: Option<super::quorum::Quorum>,
    /// Probe results fed so far: the sequence number of this instance's
    /// observation stream.
    #[serde(default)]
    observed: u64,
    /// In a cluster: whether this replica leads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    leadership: Option<super::leadership::Leadership>,
}

impl Core {
    /// An empty core.
    pub fn new() -> Self {
        Core::default()
    }

    /// Feeds one input observed at `now`.
    pub fn handle_input(&mut self, now: Timestamp, input: Input) {
        self.now = self.now.max(now);
        let now = self.now;
        let mut out = Vec::new();
        let evaluate = match input {
            Input::PlanApplied(cfg) => {
                self.apply_plan(cfg, &mut out);
                // A plan that loads means the configuration is good again.
                self.alerts
                    .resolve(now, AlertName::ConfigReloadFailed, &Scope::Gwanje);
                true
            }
            // Also evaluate when a timer is due, so a deadline is never
            // skipped because an input arrived at the same moment.
            Input::ProbeCompleted(obs) => {
                self.observed += 1;
                if let Some(q) = &mut self.quorum {
                    let local = q.config().local.clone();
                    let control = q.is_control(&obs.subject);
                    q.observe(now, &local, self.observed, control, &obs, &mut out);
                }
                if let (Some(l), Some(p)) = (&mut self.leadership, obs.subject.path()) {
                    l.saw(p, obs.at);
                }
                let warning = self.alerts.policy().certificate_warning_ms;
                if self.health.contains_key(&obs.subject) {
                    super::findings::observe(&mut self.alerts, now, &obs, warning);
                }
                self.observe(now, obs, &mut out) | self.timers.next().is_some_and(|d| d <= now)
            }
            Input::RoutesObserved {
                group,
                path,
                read_at,
            } => {
                let stale = self
                    .route_changed_at
                    .get(&group)
                    .is_some_and(|t| read_at < *t);
                if let Some(g) = self.groups.get_mut(&group).filter(|_| !stale) {
                    g.observed(now, path, &self.paths, &mut out);
                }
                !stale
            }
            Input::RouteChangeCompleted { group, to, error } => {
                self.route_changed_at.insert(group.clone(), now);
                if let Some(g) = self.groups.get_mut(&group) {
                    g.completed(now, to, error, &mut out);
                }
                true
            }
            Input::Pin {
                group,
                path,
                until,
                by,
            } => {
                if let Some(g) = self
                    .groups
                    .get_mut(&group)
                    .filter(|g| g.cfg.paths.contains(&path))
                {
                    g.pin = Some(Pin {
                        path: path.clone(),
                        until,
                        by: by.clone(),
                    });
                    out.push(Effect::Event(Event::PinSet {
                        group,
                        path,
                        until,
                        by,
                    }));
                }
                true
            }
            Input::Unpin { group, by } => {
                if let Some(g) = self.groups.get_mut(&group).filter(|g| g.pin.is_some()) {
                    g.pin = None;
                    out.push(Effect::Event(Event::PinCleared { group, by }));
                }
                true
            }
            Input::Unfreeze { group, by } => {
                if let Some(g) = self
                    .groups
                    .get_mut(&group)
                    .filter(|g| g.frozen_until.is_some())
                {
                    g.frozen_until = None;
                    g.switches.clear();
                    out.push(Effect::Event(Event::GroupUnfrozen { group, by }));
                }
                true
            }
            Input::AlertAcknowledged { id, by } => {
                if let Ok(name) = self.alerts.acknowledge(now, &id, &by) {
                    out.push(Effect::Event(Event::AlertAcknowledged { id, name, by }));
                }
                false
            }
            Input::JournalFailing { dropped } => {
                self.alerts
                    .fire(now, AlertKind::JournalWriteFailing { dropped });
                false
            }
            Input::JournalRecovered => {
                self.alerts
                    .resolve(now, AlertName::JournalWriteFailing, &Scope::Gwanje);
                false
            }
            Input::JournalRestoreRefused { lead_ms } => {
                self.alerts
                    .event(now, AlertKind::JournalClockAhead { lead_ms });
                false
            }
            Input::PathExamined {
                path,
                mut examination,
            } => {
                // An answer for a path that is up again is old news.
                if let Some(status) = self
                    .paths
                    .get_mut(&path)
                    .filter(|s| s.state == PathState::Down)
                {
                    // A ladder alone keeps the hops of the last trace, while
                    // the same sizes pass: a new picture makes them stale.
                    let pattern = |e: &Examination| -> Vec<bool> {
                        e.ladder.iter().map(|r| r.received > 0).collect()
                    };
                    if examination.hops.is_empty()
                        && let Some(old) = status.examination.take()
                        && pattern(&old) == pattern(&examination)
                    {
                        examination.hops = old.hops;
                    }
                    status.examination = Some(examination);
                    rediagnose(&path, status, &mut out);
                }
                false
            }
            Input::VantageObserved {
                vantage,
                seq,
                control,
                observation,
            } => {
                // Nobody else speaks for this vantage.
                if let Some(q) = self.quorum.as_mut().filter(|q| q.config().local != vantage) {
                    q.observe(now, &vantage, seq, control, &observation, &mut out);
                }
                self.timers.next().is_some_and(|d| d <= now)
            }
            Input::VantageRestarted { vantage } => {
                if let Some(q) = self.quorum.as_mut().filter(|q| q.config().local != vantage) {
                    q.reset(now, &vantage, &mut out);
                }
                false
            }
            Input::Coordination(c) => {
                if let Some(l) = &mut self.leadership {
                    l.apply(now, c, &mut out);
                }
                true
            }
            Input::OrderRefused {
                group,
                fence,
                highest,
            } => {
                out.push(Effect::Event(Event::OrderRefused {
                    group,
                    fence,
                    highest,
                }));
                false
            }
            Input::ReloadRejected { errors } => {
                self.alerts
                    .fire(now, AlertKind::ConfigReloadFailed { errors });
                false
            }
        };
        if evaluate {
            self.evaluate(now, &mut out);
        }
        self.finish(now, out);
    }

    /// Lets timers fire at `now` (pin expiry, retries, hold-down, failback,
    /// alert re-sends and escalations).
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.now = self.now.max(now);
        let now = self.now;
        let mut out = Vec::new();
        self.evaluate(now, &mut out);
        self.finish(now, out);
    }

    /// The next time [`Core::handle_timeout`] should be called, if any.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.timers.next()
    }

    /// Takes the next pending effect, oldest first.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// The core as a restart finds it in the journal: what operators did
    /// and what gwanje promised (pins, freezes, flap and hold-down history,
    /// alerts with their start times and acknowledgements) is kept; what
    /// must be measured again (health windows, path states, the kernel's
    /// route, changes in flight) is forgotten, and each group reads the
    /// kernel's route again before it moves anything.
    pub fn restarted(mut self) -> Core {
        for t in self.health.values_mut() {
            *t = Tracked {
                window: HealthWindow::new(t.window.policy()),
                last_ok: None,
                failing_since: None,
                ok_since: None,
                last_fail: None,
            };
        }
        let now = self.now;
        for p in self.paths.values_mut() {
            let (last_down, traced, laddered) = (p.last_down, p.examined_at, p.laddered_at);
            *p = PathStatus::new(now);
            p.last_down = last_down;
            // A restart must not reset the examinations' rate limit.
            p.examined_at = traced;
            p.laddered_at = laddered;
        }
        for g in self.groups.values_mut() {
            g.adopted = false;
            g.active = None;
            g.pending = None;
            g.failed_attempts = 0;
        }
        self.route_changed_at.clear();
        self.effects.clear();
        self.quorum = self.quorum.map(|q| q.restarted(now));
        // The session says anew who leads.
        self.leadership = self
            .leadership
            .map(|_| super::leadership::Leadership::new());
        self
    }

    /// In a cluster: this replica's role.
    pub fn leadership(&self) -> Option<&super::leadership::Leadership> {
        self.leadership.as_ref()
    }

    /// The vantages' quorum, when this instance has peers.
    pub fn quorum(&self) -> Option<&super::quorum::Quorum> {
        self.quorum.as_ref()
    }

    /// Probe results fed so far (the last sequence number of the stream).
    pub fn observed(&self) -> u64 {
        self.observed
    }

    /// The latest time the core has seen.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Every alert, firing first, then those recently resolved.
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.alerts()
    }

    /// The alert with id `id`, if the core knows it.
    pub fn alert(&self, id: &str) -> Option<&Alert> {
        self.alerts.get(id)
    }

    /// Queues `out`, updates the alert book from it, queues the alerts now
    /// due, and re-arms the alert timer.
    fn finish(&mut self, now: Timestamp, out: Vec<Effect>) {
        for e in &out {
            if let Effect::Event(e) = e {
                self.alerts.apply(now, e);
                // Back from a cut: what still holds is news again.
                if let Event::VantageReconnected { local: true, .. } = e {
                    self.refire(now);
                }
            }
        }
        self.effects.extend(out);
        let due = self.alerts.due(now);
        if !due.is_empty() {
            self.effects.push_back(Effect::Order(Order::DeliverAlerts {
                alerts: due,
                lease_until: self.alerts.lease_end(now),
            }));
        }
        self.timers.set(Timer::Alerts, self.alerts.next_due());
        // Every remote result moves a vote's expiry, evaluated or not.
        self.timers.set(
            Timer::Quorum,
            self.quorum.as_ref().and_then(|q| q.next_deadline(now)),
        );
    }

    /// Fires again what this instance's isolation held back and still
    /// holds: paths down, groups isolated or with no healthy path, services
    /// degraded.
    fn refire(&mut self, now: Timestamp) {
        for (path, s) in self
            .paths
            .iter()
            .filter(|(_, s)| s.state == PathState::Down)
        {
            self.alerts.fire(
                now,
                AlertKind::PathDown {
                    path: path.clone(),
                    reason: s.reason.clone(),
                    diagnosis: s.diagnosis.clone(),
                },
            );
        }
        for (name, g) in &self.groups {
            if g.isolated {
                self.alerts.fire(
                    now,
                    AlertKind::MonitorIsolated {
                        group: name.clone(),
                    },
                );
            }
            if g.impossible {
                self.alerts.fire(
                    now,
                    AlertKind::FailoverImpossible {
                        group: name.clone(),
                        active: g.active.clone(),
                        unsure: Vec::new(),
                    },
                );
            }
            for (check, losses) in &g.service_degraded {
                self.alerts.fire(
                    now,
                    AlertKind::ServiceDegraded {
                        group: name.clone(),
                        check: check.clone(),
                        losses: losses.clone(),
                    },
                );
            }
        }
    }

    /// The decided health of `subject`, if it is planned.
    pub fn subject_state(&self, subject: &Subject) -> Option<TargetState> {
        self.health.get(subject).map(|t| t.window.state())
    }

    /// Every path with its status.
    pub fn paths(&self) -> &BTreeMap<PathName, PathStatus> {
        &self.paths
    }

    /// Every group with its controller state.
    pub fn groups(&self) -> &BTreeMap<GroupName, GroupState> {
        &self.groups
    }

    fn apply_plan(&mut self, cfg: CoreConfig, out: &mut Vec<Effect>) {
        self.alerts.set_policy(cfg.alerting);
        self.alerts.set_quorum(self.now, cfg.quorum.is_some());
        self.quality = cfg.quality;
        if cfg.cluster != self.leadership.is_some() {
            self.leadership = cfg.cluster.then(super::leadership::Leadership::new);
        }
        let now = self.now;
        match (cfg.quorum, self.quorum.as_mut()) {
            (Some(q), Some(old)) => old.apply(q, now, out),
            (Some(q), None) => self.quorum = Some(super::quorum::Quorum::new(q, now)),
            (None, Some(old)) => {
                // Alone again: what the quorum raised ends with it.
                for v in old
                    .vantages(now)
                    .into_iter()
                    .filter(|v| v.isolated_since.is_some())
                {
                    out.push(Effect::Event(Event::VantageReconnected {
                        vantage: v.name,
                        local: v.local,
                    }));
                }
                if old.degraded() {
                    out.push(Effect::Event(Event::MonitoringRestored));
                }
                self.quorum = None;
            }
            (None, None) => {}
        }
        let mut old = std::mem::take(&mut self.health);
        for s in cfg.subjects {
            // Unchanged thresholds keep their history: a reload never resets a
            // down subject to unknown.
            let tracked = match old.remove(&s.subject) {
                Some(t) if t.window.policy() == s.policy => t,
                _ => Tracked {
                    window: HealthWindow::new(s.policy),
                    last_ok: None,
                    failing_since: None,
                    ok_since: None,
                    last_fail: None,
                },
            };
            self.health.insert(s.subject, tracked);
        }
        let now = self.now;
        self.paths = cfg
            .paths
            .into_iter()
            .map(|p| {
                let status = self
                    .paths
                    .remove(&p)
                    .unwrap_or_else(|| PathStatus::new(now));
                (p, status)
            })
            .collect();
        let mut old_groups = std::mem::take(&mut self.groups);
        for g in cfg.groups {
            // The route state carries over a reload; the rules are the new ones.
            let state = match old_groups.remove(&g.name) {
                Some(mut s) => {
                    if s.active.as_ref().is_some_and(|a| !g.paths.contains(a)) {
                        s.active = None;
                    }
                    s.cfg = g;
                    s
                }
                None => GroupState::new(g),
            };
            self.groups.insert(state.cfg.name.clone(), state);
        }
    }

    /// Records an observation; returns whether paths need re-evaluating.
    fn observe(&mut self, now: Timestamp, obs: Observation, out: &mut Vec<Effect>) -> bool {
        // Results for a subject removed by a reload can still be in flight.
        let Some(tracked) = self.health.get_mut(&obs.subject) else {
            return false;
        };
        // Packets through a path change its quality: judge it again.
        let mut sampled = false;
        if let (Some(p), Some((sent, lost))) = (obs.subject.path(), obs.packets)
            && let Some(status) = self.paths.get_mut(p)
        {
            let check = match &obs.subject {
                Subject::Check(k, _) => Some(k.as_str()),
                _ => None,
            };
            status.quality.record(check, now, sent, lost);
            sampled = true;
        }
        if let Some(status) = obs.subject.path().and_then(|p| self.paths.get_mut(p)) {
            let check = match &obs.subject {
                Subject::Check(k, _) => Some(k.as_str()),
                _ => None,
            };
            let up = tracked.window.state() != TargetState::Down;
            status
                .quality
                .record_probe(check, now, obs.failure.is_some(), obs.packets, up);
        }
        if obs.failure.is_none() {
            tracked.last_ok = Some(obs.at);
            tracked.failing_since = None;
            tracked.ok_since.get_or_insert(obs.at);
        } else {
            tracked.failing_since.get_or_insert(obs.at);
            tracked.ok_since = None;
            tracked.last_fail = Some(obs.at);
        }
        let window = &mut tracked.window;
        let from = window.state();
        // Every result through a path is evidence the witness rules weigh
        // by time (onset and recovery margins), so paths are judged again.
        let through_path = sampled || obs.subject.path().is_some();
        let Some(to) = window.observe(obs.failure.is_none()) else {
            return through_path;
        };

        let behind = obs
            .subject
            .path()
            .filter(|_| matches!(obs.subject, Subject::Check(..)))
            .filter(|p| {
                self.paths
                    .get(*p)
                    .is_some_and(|s| s.state == PathState::Down)
            })
            .cloned();
        out.push(Effect::Event(Event::HealthChanged {
            failures_in_window: window.failures_in_window(),
            subject: obs.subject.clone(),
            from,
            to,
            at: now,
            cause: obs.failure,
            behind,
        }));
        obs.subject.path().is_some()
    }

    fn evaluate(&mut self, now: Timestamp, out: &mut Vec<Effect>) {
        if let Some(q) = &mut self.quorum {
            q.tick(now, out);
        }
        let health = &self.health;
        let state = |s: &Subject| health.get(s).map_or(SubjectView::UNKNOWN, Tracked::view);
        let configs: Vec<_> = self.groups.values().map(|g| &g.cfg).collect();
        let quality = self.quality;
        let evidence: BTreeMap<PathName, Evidence> = self
            .paths
            .iter_mut()
            .map(|(name, status)| (name.clone(), status.quality.evidence(now, &quality)))
            .collect();
        // A subject failing through `path` is the path's failure only when
        // it fails there clearly worse than through the group's other paths.
        let blame = |path: &PathName, s: &Subject| {
            let key = match s {
                Subject::Check(c, _) => Some(c.as_str()),
                _ => None,
            };
            let of = |p: &PathName| evidence.get(p).and_then(|e| e.get(key));
            let failing = of(path).map(|(f, _)| f);
            let on = |q: &PathName| match s {
                Subject::Check(c, _) => Subject::Check(c.clone(), q.clone()),
                _ => Subject::Router(q.clone()),
            };
            let others = configs
                .iter()
                .filter(|g| g.paths.contains(path))
                .filter(|g| match s {
                    Subject::Check(c, _) => g.checks.contains(c),
                    _ => true,
                })
                .flat_map(|g| g.paths.iter())
                // Compared with paths where the same subject works.
                .filter(|q| *q != path && state(&on(q)).state == TargetState::Up)
                .filter_map(|q| of(q).map(|(_, w)| w));
            clearly_worse(failing, others, &quality)
        };
        let mut verdicts = Vec::with_capacity(self.paths.len());
        for (name, status) in &self.paths {
            let blames = |s: &Subject| blame(name, s);
            let (mut to, mut reason) = classify(name, configs.iter().copied(), &state, &blames);
            // Blame sticks until a success clears it: a path blamed for
            // checks failing only through it stays down while those checks
            // still fail here (clearly worse than elsewhere), even when the
            // other paths fail too.
            if let PathReason::ChecksFailing(blamed) = &status.reason
                && status.state == PathState::Down
                && to != PathState::Down
                && blamed.iter().all(|c| {
                    let here = Subject::Check(c.clone(), name.clone());
                    state(&here).state == TargetState::Down && blames(&here)
                })
            {
                to = PathState::Down;
                reason = status.reason.clone();
            }
            verdicts.push((to, reason));
        }
        // A path back from a specific failure (what made it down passes
        // again) forgets the outage's lost packets once the echoes since
        // then show the outage is over.
        for ((name, status), (to, _)) in self.paths.iter_mut().zip(&verdicts) {
            let passes = |s: Subject| {
                self.health
                    .get(&s)
                    .is_none_or(|t| t.window.state() != TargetState::Down)
            };
            let cleared = match &status.reason {
                PathReason::RouterDown => passes(Subject::Router(name.clone())),
                PathReason::ChecksFailing(cs) => cs
                    .iter()
                    .all(|c| passes(Subject::Check(c.clone(), name.clone()))),
                _ => false,
            };
            let back = *to != PathState::Down && cleared;
            if status.state == PathState::Down && back && status.quality.recovering.is_none() {
                status.quality.cause_cleared(now);
            } else if !back {
                // Failing again before the recovery was confirmed: the next
                // recovery starts afresh.
                status.quality.recovering = None;
            }
        }
        let losses: BTreeMap<PathName, super::quality::Losses> = self
            .paths
            .iter_mut()
            .map(|(name, status)| (name.clone(), status.quality.losses(now, &quality)))
            .collect();
        for ((name, status), (mut to, mut reason)) in self.paths.iter_mut().zip(verdicts) {
            // A path that loses too many packets is down, whatever single
            // probes conclude; a specific cause already found is the better
            // reason (the loss is its symptom).
            let own = super::quality::own_loss(name, &losses, &quality);
            if let Some(loss_permille) = status.quality.update(now, &quality, own)
                && to != PathState::Down
            {
                to = PathState::Down;
                reason = if status.quality.recovering.is_some() {
                    // Down for the same cause until its recovery is confirmed.
                    status.reason.clone()
                } else {
                    PathReason::Degraded { loss_permille }
                };
            }
            let back = status.quality.recovered_at.take();
            if to == status.state && reason == status.reason {
                continue;
            }
            let from = status.state;
            if to != from {
                // A confirmed recovery dates from when the path came back.
                status.since = back.filter(|_| to == PathState::Up).unwrap_or(now);
                if to == PathState::Down {
                    status.last_down = Some(now);
                }
            }
            status.state = to;
            status.reason = reason.clone();
            if to != from {
                out.push(Effect::Event(Event::PathChanged {
                    path: name.clone(),
                    from,
                    to,
                    reason,
                    at: now,
                }));
            }
            if to != PathState::Down {
                status.diagnosis = None;
            } else {
                // A new incident needs fresh evidence, unless the last
                // trace is recent enough to be it.
                if from != PathState::Down && due(status.examined_at, now, TRACE_EVERY_MS) {
                    status.examination = None;
                }
                rediagnose(name, status, out);
            }
        }
        // Examined when it goes down; while it stays down the ladder runs
        // again every 10 s and the trace at most once a minute (a repair or
        // a new fault changes the evidence).
        for (name, status) in self.paths.iter_mut() {
            if status.state != PathState::Down || !due(status.laddered_at, now, LADDER_EVERY_MS) {
                continue;
            }
            let trace = due(status.examined_at, now, TRACE_EVERY_MS);
            status.laddered_at = Some(now);
            if trace {
                status.examined_at = Some(now);
            }
            out.push(Effect::Order(Order::ExaminePath {
                path: name.clone(),
                trace,
            }));
        }
        for g in self.groups.values_mut() {
            let leader = self.leadership.as_ref();
            g.passive = leader.is_some_and(|l| !l.may_order(&g.cfg.paths));
            g.fence = leader.and_then(|l| l.fence());
            if g.passive {
                // Retries nothing (also an order that failed after it stepped
                // down): it follows the leader's route, and decides afresh
                // when it leads.
                g.pending.take_if(|p| p.retry_at.is_some());
            }
            g.decide(now, &self.paths, &losses, &quality, &state, out);
        }
        let groups = &self.groups;
        self.timers.retain_groups(|g| groups.contains_key(g));
        for (name, g) in groups {
            self.timers.set(
                Timer::Group(name.clone()),
                g.next_deadline(now, &self.paths),
            );
        }
    }
}

/// Whether `every` ms have passed since `last` (or it never happened).
fn due(last: Option<Timestamp>, now: Timestamp, every: u64) -> bool {
    last.is_none_or(|t| now.since(t) >= every)
}

/// Diagnoses a down path again from its reason and latest examination;
/// says so when the diagnosis changed.
fn rediagnose(name: &PathName, status: &mut PathStatus, out: &mut Vec<Effect>) {
    if status.state != PathState::Down {
        return;
    }
    let d = super::diagnosis::diagnose(&status.reason, status.examination.as_ref());
    if status.diagnosis.as_ref() != Some(&d) {
        status.diagnosis = Some(d.clone());
        out.push(Effect::Event(Event::PathDiagnosed {
            path: name.clone(),
            diagnosis: d,
        }));
    }
}
