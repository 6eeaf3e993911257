//! Alert lifecycle: which alerts fire, when each is (re)sent, acknowledged
//! and escalated. Pure, like the rest of the core: time is passed in.
//!
//! Firing alerts are re-sent every `resend_ms` with a lease (Alertmanager's
//! `endsAt`) of four resend intervals, as Prometheus does, so an alert
//! neither silently expires nor lingers after gwanje stops. Resolved alerts
//! are re-sent for `resolved_resend_ms`, so a lost notification does not
//! leave an alert open. A critical alert nobody acknowledges within
//! `escalate_after_ms` is re-sent with `escalation="1"` (for a second receiver).

use std::collections::BTreeMap;

use super::alert::{Alert, AlertKind, AlertName, AlertPolicy, Scope, Severity, alert_id};
use super::effect::Event;
use super::shared::PathState;
use super::types::{FailureKind, Subject, TargetState, Timestamp};
use super::vantage::{Ballot, Verdict, Vote};

/// Why an acknowledgement was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckError {
    /// No alert has that id.
    Unknown,
    /// The alert already resolved.
    Resolved,
}

impl std::fmt::Display for AckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AckError::Unknown => "no alert with that id",
            AckError::Resolved => "the alert is already resolved",
        })
    }
}

impl std::error::Error for AckError {}

/// Every alert gwanje knows, firing or recently resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AlertBook {
    policy: AlertPolicy,
    alerts: BTreeMap<String, Alert>,
    /// Several vantages decide: targets and services are down by their
    /// verdict, not by this instance's windows alone.
    #[serde(default)]
    quorum: bool,
    /// This instance's vantage is isolated: what it sees failing is its
    /// own cut, reported once as `VantageIsolated`.
    #[serde(default)]
    isolated_here: bool,
}

impl AlertBook {
    /// An empty book with `policy`.
    pub fn new(policy: AlertPolicy) -> Self {
        AlertBook {
            policy,
            alerts: BTreeMap::new(),
            quorum: false,
            isolated_here: false,
        }
    }

    /// Changes the timers (a reload), keeping every alert.
    pub fn set_policy(&mut self, policy: AlertPolicy) {
        self.policy = policy;
    }

    /// Whether several vantages decide (a plan with peers). Without them
    /// again, what the vantages' verdicts raised resolves: this instance's
    /// own windows raise their alerts afresh if they still see it.
    pub fn set_quorum(&mut self, now: Timestamp, quorum: bool) {
        if self.quorum && !quorum {
            for a in self.alerts.values_mut().filter(|a| a.firing()) {
                let voted = match &a.kind {
                    AlertKind::TargetDown { votes, .. } | AlertKind::ServiceDown { votes, .. } => {
                        !votes.is_empty()
                    }
                    _ => false,
                };
                if voted {
                    a.resolved_at = Some(now);
                    a.last_sent = None;
                }
            }
        }
        self.quorum = quorum;
        if !quorum {
            self.isolated_here = false;
        }
    }

    /// Whether this instance's vantage is isolated now.
    pub fn isolated_here(&self) -> bool {
        self.isolated_here
    }

    /// Fires (or keeps firing) the alert about `kind`, with its facts as
    /// they are now; returns its id.
    pub fn fire(&mut self, now: Timestamp, kind: AlertKind) -> String {
        let fresh = Alert::new(now, kind);
        let id = fresh.id.clone();
        match self.alerts.get_mut(&id) {
            Some(a) if a.firing() => a.kind = fresh.kind,
            // Firing again after a resolution is a new incident.
            _ => {
                self.alerts.insert(id.clone(), fresh);
            }
        }
        id
    }

    /// Fires an event alert that resolves by itself after the event TTL.
    pub fn event(&mut self, now: Timestamp, kind: AlertKind) {
        let id = self.fire(now, kind);
        if let Some(a) = self.alerts.get_mut(&id) {
            a.auto_resolve_at = Some(Timestamp(now.0.saturating_add(self.policy.event_ttl_ms)));
            a.last_sent = None;
        }
    }

    fn firing_mut(&mut self, name: AlertName, scope: &Scope) -> Option<&mut Alert> {
        self.alerts
            .get_mut(&alert_id(name, scope))
            .filter(|a| a.firing())
    }

    /// Whether the alert `name` about `scope` is firing and acknowledged.
    pub fn acknowledged(&self, name: AlertName, scope: &Scope) -> bool {
        self.alerts
            .get(&alert_id(name, scope))
            .is_some_and(|a| a.firing() && a.acknowledged.is_some())
    }

    /// Makes a firing alert wanted again: unacknowledged and sent at once
    /// (news of the same incident someone must see).
    pub fn renotify(&mut self, name: AlertName, scope: &Scope) {
        if let Some(a) = self.firing_mut(name, scope) {
            a.acknowledged = None;
            a.escalated = false;
            a.last_sent = None;
        }
    }

    /// Resolves the alert `name` about `scope`, if firing.
    pub fn resolve(&mut self, now: Timestamp, name: AlertName, scope: &Scope) {
        if let Some(a) = self.firing_mut(name, scope) {
            a.resolved_at = Some(now);
            a.last_sent = None;
        }
    }

    /// Records who acknowledged alert `id`; returns the alert's name.
    pub fn acknowledge(
        &mut self,
        now: Timestamp,
        id: &str,
        by: &str,
    ) -> Result<AlertName, AckError> {
        match self.alerts.get_mut(id) {
            Some(a) if a.firing() => {
                a.acknowledged = Some((by.to_string(), now));
                Ok(a.name())
            }
            Some(_) => Err(AckError::Resolved),
            None => Err(AckError::Unknown),
        }
    }

    /// Every alert, firing first.
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts
            .values()
            .filter(|a| a.firing())
            .chain(self.alerts.values().filter(|a| !a.firing()))
    }

    /// The alerts to send at `now` (new, due for a re-send, escalated or
    /// resolved); forgets resolutions older than the resend period.
    pub fn due(&mut self, now: Timestamp) -> Vec<Alert> {
        let policy = self.policy;
        self.alerts.retain(|_, a| {
            a.resolved_at
                .is_none_or(|r| now.since(r) < policy.resolved_resend_ms)
        });
        let mut out = Vec::new();
        for a in self.alerts.values_mut() {
            if a.firing() && a.auto_resolve_at.is_some_and(|t| now >= t) {
                a.resolved_at = Some(now);
                a.last_sent = None;
            }
            if a.firing()
                && a.severity() == Severity::Critical
                && a.acknowledged.is_none()
                && !a.escalated
                && now.since(a.starts_at) >= policy.escalate_after_ms
            {
                a.escalated = true;
                a.last_sent = None;
            }
            if a.last_sent.is_none_or(|t| now.since(t) >= policy.resend_ms) {
                a.last_sent = Some(now);
                out.push(a.clone());
            }
        }
        out
    }

    /// The alert with id `id`, firing or recently resolved.
    pub fn get(&self, id: &str) -> Option<&Alert> {
        self.alerts.get(id)
    }

    /// The policy in force.
    pub fn policy(&self) -> AlertPolicy {
        self.policy
    }

    /// The next time [`AlertBook::due`] has something to do: a re-send, an
    /// escalation, an event alert expiring, a resolution to forget.
    pub fn next_due(&self) -> Option<Timestamp> {
        let p = self.policy;
        let after = |t: Timestamp, ms: u64| Timestamp(t.0.saturating_add(ms));
        self.alerts
            .values()
            .flat_map(|a| {
                let resend = Some(a.last_sent.map_or(Timestamp(0), |t| after(t, p.resend_ms)));
                let escalate = (a.firing()
                    && a.severity() == Severity::Critical
                    && a.acknowledged.is_none()
                    && !a.escalated)
                    .then(|| after(a.starts_at, p.escalate_after_ms));
                let expire = a.auto_resolve_at.filter(|_| a.firing());
                let forget = a.resolved_at.map(|r| after(r, p.resolved_resend_ms));
                [resend, escalate, expire, forget]
            })
            .flatten()
            .min()
    }

    /// The lease end for a firing alert sent at `now` (Alertmanager `endsAt`).
    pub fn lease_end(&self, now: Timestamp) -> Timestamp {
        Timestamp(
            now.0
                .saturating_add(self.policy.resend_ms.saturating_mul(4)),
        )
    }

    /// Updates alerts from one event the core reported.
    pub fn apply(&mut self, now: Timestamp, event: &Event) {
        match event {
            Event::PathDiagnosed { path, diagnosis } => {
                if let Some(a) = self.firing_mut(AlertName::PathDown, &Scope::Path(path.clone()))
                    && let AlertKind::PathDown { diagnosis: d, .. } = &mut a.kind
                {
                    // A new kind reaches the on-call engineer now, not at
                    // the next re-send; refined evidence can wait for it.
                    if d.as_ref().map(|d| d.kind) != Some(diagnosis.kind) {
                        a.last_sent = None;
                    }
                    *d = Some(diagnosis.clone());
                }
            }
            Event::PathChanged {
                path, to, reason, ..
            } => {
                if *to == PathState::Down {
                    if self.isolated_here {
                        return;
                    }
                    self.fire(
                        now,
                        AlertKind::PathDown {
                            path: path.clone(),
                            reason: reason.clone(),
                            diagnosis: None,
                        },
                    );
                } else {
                    self.resolve(now, AlertName::PathDown, &Scope::Path(path.clone()));
                }
            }
            Event::RouteChanged {
                group,
                from,
                to,
                reason,
                ..
            } if reason.is_automatic() => self.event(
                now,
                AlertKind::FailoverExecuted {
                    group: group.clone(),
                    from: from.clone(),
                    to: to.clone(),
                    reason: reason.clone(),
                },
            ),
            Event::FailoverImpossible {
                group,
                active,
                unsure,
            } if !self.isolated_here => {
                self.fire(
                    now,
                    AlertKind::FailoverImpossible {
                        group: group.clone(),
                        active: active.clone(),
                        unsure: unsure.clone(),
                    },
                );
            }
            Event::FailoverPossibleAgain { group } => self.resolve(
                now,
                AlertName::FailoverImpossible,
                &Scope::Group(group.clone()),
            ),
            // A directly probed target (not a check through a path: those
            // are PathDown's and ServiceDown's) that its thresholds call
            // down; a leak or a mix-up has its own, critical alert.
            Event::HealthChanged {
                subject: Subject::Target(key),
                to,
                failures_in_window,
                cause,
                ..
            } if !self.quorum
                && !matches!(
                    cause,
                    Some(FailureKind::PersonalData | FailureKind::IdentityMismatch)
                ) =>
            {
                if *to == TargetState::Down {
                    self.fire(
                        now,
                        AlertKind::TargetDown {
                            target: key.clone(),
                            failures: *failures_in_window,
                            cause: *cause,
                            votes: Vec::new(),
                        },
                    );
                } else {
                    self.resolve(now, AlertName::TargetDown, &Scope::Target(key.clone()));
                }
            }
            Event::ServiceDown { group, check } if !self.quorum => {
                self.fire(
                    now,
                    AlertKind::ServiceDown {
                        group: group.clone(),
                        check: check.clone(),
                        votes: Vec::new(),
                    },
                );
            }
            Event::ServiceRecovered { group, check } if !self.quorum => self.resolve(
                now,
                AlertName::ServiceDown,
                &Scope::Check(group.clone(), check.clone()),
            ),
            Event::VerdictChanged {
                target,
                groups,
                to,
                votes,
                cause,
                ..
            } => match to {
                Verdict::Down => {
                    let downs = down_votes(votes);
                    // A leak or a mix-up has its own, critical alert.
                    let own_alert = matches!(
                        cause,
                        Some(FailureKind::PersonalData | FailureKind::IdentityMismatch)
                    );
                    if groups.is_empty() && !own_alert {
                        self.fire(
                            now,
                            AlertKind::TargetDown {
                                target: target.clone(),
                                failures: downs,
                                cause: *cause,
                                votes: votes.clone(),
                            },
                        );
                    }
                    for g in groups {
                        self.fire(
                            now,
                            AlertKind::ServiceDown {
                                group: g.clone(),
                                check: target.clone(),
                                votes: votes.clone(),
                            },
                        );
                    }
                }
                Verdict::Up => {
                    self.resolve(now, AlertName::TargetDown, &Scope::Target(target.clone()));
                    for g in groups {
                        let scope = Scope::Check(g.clone(), target.clone());
                        self.resolve(now, AlertName::ServiceDown, &scope);
                    }
                }
                // No new evidence either way: an alert stands until the
                // vantages see the target up.
                Verdict::Unknown | Verdict::Insufficient => {}
            },
            Event::VotesChanged {
                target,
                groups,
                votes,
            } => {
                let scopes =
                    std::iter::once((AlertName::TargetDown, Scope::Target(target.clone()))).chain(
                        groups.iter().map(|g| {
                            (
                                AlertName::ServiceDown,
                                Scope::Check(g.clone(), target.clone()),
                            )
                        }),
                    );
                for (name, scope) in scopes {
                    if let Some(a) = self.firing_mut(name, &scope) {
                        match &mut a.kind {
                            AlertKind::TargetDown {
                                votes: v, failures, ..
                            } => {
                                *v = votes.clone();
                                *failures = down_votes(votes);
                            }
                            AlertKind::ServiceDown { votes: v, .. } => *v = votes.clone(),
                            _ => {}
                        }
                        // Who sees it down is news for the on-call engineer.
                        a.last_sent = None;
                    }
                }
            }
            Event::VantageIsolated { vantage, local } => {
                self.fire(
                    now,
                    AlertKind::VantageIsolated {
                        vantage: vantage.clone(),
                        local: *local,
                    },
                );
                if *local {
                    self.isolated_here = true;
                    // What the cut made fail here is the cut, not news.
                    let consequences: Vec<String> = self
                        .alerts
                        .values()
                        .filter(|a| a.firing() && CUT_CONSEQUENCES.contains(&a.name()))
                        .map(|a| a.id.clone())
                        .collect();
                    for id in consequences {
                        if let Some(a) = self.alerts.get_mut(&id) {
                            a.resolved_at = Some(now);
                            a.last_sent = None;
                        }
                    }
                }
            }
            Event::VantageReconnected { vantage, local } => {
                if *local {
                    self.isolated_here = false;
                }
                self.resolve(
                    now,
                    AlertName::VantageIsolated,
                    &Scope::Vantage(vantage.clone()),
                );
            }
            Event::MonitoringDegraded {
                targets,
                eligible,
                min_vantages,
            } => {
                self.fire(
                    now,
                    AlertKind::MonitoringDegraded {
                        targets: *targets,
                        eligible: eligible.clone(),
                        min_vantages: *min_vantages,
                    },
                );
            }
            Event::MonitoringRestored => {
                self.resolve(now, AlertName::MonitoringDegraded, &Scope::Gwanje)
            }
            Event::CoordinationLost { fault } => {
                self.fire(now, AlertKind::CoordinationLost { fault: *fault });
            }
            Event::CoordinationRestored => {
                self.resolve(now, AlertName::CoordinationLost, &Scope::Gwanje)
            }
            Event::OrderRefused {
                group,
                fence,
                highest,
            } => self.event(
                now,
                AlertKind::OrderRefused {
                    group: group.clone(),
                    fence: *fence,
                    highest: *highest,
                },
            ),
            Event::ServiceDegraded {
                group,
                check,
                losses,
            } if !self.isolated_here => {
                self.fire(
                    now,
                    AlertKind::ServiceDegraded {
                        group: group.clone(),
                        check: check.clone(),
                        losses: losses.clone(),
                    },
                );
            }
            Event::ServiceDegradationCleared { group, check } => self.resolve(
                now,
                AlertName::ServiceDegraded,
                &Scope::Check(group.clone(), check.clone()),
            ),
            Event::MonitorIsolated { group } if !self.isolated_here => {
                self.fire(
                    now,
                    AlertKind::MonitorIsolated {
                        group: group.clone(),
                    },
                );
            }
            Event::MonitorReconnected { group } => self.resolve(
                now,
                AlertName::MonitorIsolated,
                &Scope::Group(group.clone()),
            ),
            Event::GroupFrozen {
                group, switches, ..
            } => {
                self.fire(
                    now,
                    AlertKind::GroupFrozen {
                        group: group.clone(),
                        switches: *switches,
                    },
                );
            }
            Event::GroupUnfrozen { group, .. } => {
                self.resolve(now, AlertName::GroupFrozen, &Scope::Group(group.clone()))
            }
            Event::RouteDrifted {
                group,
                expected,
                actual,
            } => self.event(
                now,
                AlertKind::RouteDrift {
                    group: group.clone(),
                    expected: expected.clone(),
                    actual: actual.clone(),
                },
            ),
            // What no alert is about is listed, so a new event is a
            // decision here, not a silent default.
            Event::HealthChanged { .. }
            | Event::RouteChanged { .. }
            | Event::RouteChangeFailed { .. }
            | Event::RouteAdopted { .. }
            | Event::MovedDespiteFreeze { .. }
            | Event::FailbackAvailable { .. }
            | Event::PinSet { .. }
            | Event::PinCleared { .. }
            | Event::AlertAcknowledged { .. }
            // A role change is news for the log; what it costs pages as
            // CoordinationLost. A followed route is the leader's move,
            // which the leader reports.
            | Event::LeadershipAcquired { .. }
            | Event::LeadershipLost { .. }
            | Event::RouteFollowed { .. } => {}
            // Guarded above: with several vantages the verdict decides;
            // isolated, the cut is reported once.
            Event::ServiceDown { .. }
            | Event::ServiceRecovered { .. }
            | Event::ServiceDegraded { .. }
            | Event::MonitorIsolated { .. }
            | Event::FailoverImpossible { .. } => {}
        }
    }
}

/// Alerts that an isolated vantage's own cut raises here (every path and
/// the services through them fail at once): `VantageIsolated` replaces them.
const CUT_CONSEQUENCES: [AlertName; 4] = [
    AlertName::PathDown,
    AlertName::MonitorIsolated,
    AlertName::FailoverImpossible,
    AlertName::ServiceDegraded,
];

/// How many votes say down.
fn down_votes(votes: &[Vote]) -> u32 {
    let downs = votes.iter().filter(|v| v.ballot == Ballot::Down).count();
    u32::try_from(downs).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GroupName, PathName, PathReason, SwitchReason};

    fn policy() -> AlertPolicy {
        AlertPolicy {
            resend_ms: 1_000,
            resolved_resend_ms: 5_000,
            escalate_after_ms: 10_000,
            event_ttl_ms: 3_000,
            certificate_warning_ms: 86_400_000,
        }
    }

    fn down(path: &str) -> Event {
        Event::PathChanged {
            path: PathName::new(path),
            from: PathState::Up,
            to: PathState::Down,
            reason: PathReason::RouterDown,
            at: Timestamp(0),
        }
    }

    #[test]
    fn firing_alerts_are_resent_and_resolutions_repeated_then_forgotten() {
        let mut b = AlertBook::new(policy());
        b.apply(Timestamp(0), &down("a"));
        assert_eq!(b.due(Timestamp(0)).len(), 1, "new alerts go out at once");
        assert!(b.due(Timestamp(500)).is_empty());
        let again = b.due(Timestamp(1_000));
        assert_eq!(again.len(), 1);
        assert!(again[0].firing());
        b.apply(
            Timestamp(1_200),
            &Event::PathChanged {
                path: PathName::new("a"),
                from: PathState::Down,
                to: PathState::Up,
                reason: PathReason::None,
                at: Timestamp(1_200),
            },
        );
        let resolved = b.due(Timestamp(1_200));
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].resolved_at, Some(Timestamp(1_200)));
        assert_eq!(
            b.due(Timestamp(2_300)).len(),
            1,
            "the resolution is re-sent"
        );
        assert!(
            b.due(Timestamp(7_000)).is_empty(),
            "and forgotten after the resend period"
        );
        assert_eq!(b.alerts().count(), 0);
    }

    #[test]
    fn unacknowledged_critical_alerts_escalate_once() {
        let mut b = AlertBook::new(policy());
        b.apply(
            Timestamp(0),
            &Event::MonitorIsolated {
                group: GroupName::new("g"),
            },
        );
        b.apply(
            Timestamp(0),
            &Event::GroupFrozen {
                group: GroupName::new("h"),
                until: Timestamp(9),
                switches: 4,
            },
        );
        let ids: Vec<String> = b.due(Timestamp(0)).into_iter().map(|a| a.id).collect();
        b.acknowledge(Timestamp(5_000), &ids[1], "kim").unwrap();
        let at_10s = b.due(Timestamp(10_000));
        let escalated: Vec<&Alert> = at_10s.iter().filter(|a| a.escalated).collect();
        assert_eq!(escalated.len(), 1, "only the unacknowledged one escalates");
        assert_eq!(escalated[0].id, ids[0]);
        assert!(
            b.due(Timestamp(10_500)).is_empty(),
            "escalation is sent once, then on the resend schedule"
        );
        assert!(b.acknowledge(Timestamp(1), "nope", "kim").is_err());
    }

    #[test]
    fn event_alerts_resolve_by_themselves() {
        let mut b = AlertBook::new(policy());
        let moved = |reason| Event::RouteChanged {
            group: GroupName::new("g"),
            from: Some(PathName::new("a")),
            to: PathName::new("b"),
            reason,
            at: Timestamp(0),
        };
        b.apply(
            Timestamp(0),
            &moved(SwitchReason::PathFailed {
                why: PathReason::RouterDown,
            }),
        );
        let sent = b.due(Timestamp(0));
        assert_eq!(sent[0].name(), AlertName::FailoverExecuted);
        assert_eq!(sent[0].labels()["reason"], "path_failed");
        let later = b.due(Timestamp(3_000));
        assert_eq!(later.len(), 1);
        assert!(!later[0].firing(), "resolved after the event TTL");
        // Pins and initial installs are not failovers.
        b.apply(Timestamp(4_000), &moved(SwitchReason::Pinned));
        assert!(b.due(Timestamp(4_000)).iter().all(|a| !a.firing()));
    }
}
