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

use super::effect::{Effect, SwitchReason};
use super::path::PathState;
use super::types::{TargetKey, Timestamp};

/// Every alert gwanje sends itself; each has a page in `docs/runbooks/`.
pub const ALERT_NAMES: [&str; 15] = [
    "PathDown",
    "TargetDown",
    "FailoverExecuted",
    "FailoverImpossible",
    "ServiceDown",
    "ServiceDegraded",
    "MonitorIsolated",
    "GroupFrozen",
    "RouteDrift",
    "CertificateExpiringSoon",
    "PersonalDataExposed",
    "IdentityMismatch",
    "ConfigReloadFailed",
    "JournalWriteFailing",
    "JournalClockAhead",
];

/// An alert name. An alias, so serde's derive does not take the field for
/// data borrowed from the input.
pub type Name = &'static str;

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

/// Reads an alert name back as the matching entry of [`ALERT_NAMES`].
fn known_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    let name = <String as serde::Deserialize>::deserialize(d)?;
    ALERT_NAMES
        .iter()
        .find(|n| **n == name)
        .copied()
        .ok_or_else(|| serde::de::Error::custom(format!("unknown alert name {name:?}")))
}

/// How urgent an alert is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Severity {
    /// Look at it during working hours.
    Warning,
    /// Page someone now.
    Critical,
}

impl Severity {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Timers of the alert lifecycle, ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AlertPolicy {
    /// Re-send firing alerts this often.
    pub resend_ms: u64,
    /// Keep re-sending a resolution this long.
    pub resolved_resend_ms: u64,
    /// Escalate unacknowledged critical alerts after this long.
    pub escalate_after_ms: u64,
    /// Event alerts (a failover happened) resolve by themselves after this long.
    pub event_ttl_ms: u64,
    /// A certificate warning starts this long before expiry, ms.
    pub certificate_warning_ms: u64,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        AlertPolicy {
            resend_ms: 60_000,
            resolved_resend_ms: 15 * 60_000,
            escalate_after_ms: 10 * 60_000,
            event_ttl_ms: 30 * 60_000,
            certificate_warning_ms: 14 * 86_400_000,
        }
    }
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Alert {
    /// Stable id (from name and labels), used to acknowledge it.
    pub id: String,
    /// The alert name (`alertname`), one of [`ALERT_NAMES`].
    #[serde(deserialize_with = "known_name")]
    pub name: Name,
    /// Severity.
    pub severity: Severity,
    /// Identifying labels (group, path, service, target …).
    pub labels: BTreeMap<String, String>,
    /// One line for the pager.
    pub summary: String,
    /// What happened and what gwanje already did.
    pub description: String,
    /// When it started firing.
    pub starts_at: Timestamp,
    /// When it resolved, if it has.
    pub resolved_at: Option<Timestamp>,
    /// Who acknowledged it, and when.
    pub acknowledged: Option<(String, Timestamp)>,
    /// Whether it has been escalated.
    pub escalated: bool,
    /// It resolves by itself at this time (event alerts).
    pub auto_resolve_at: Option<Timestamp>,
    last_sent: Option<Timestamp>,
}

impl Alert {
    /// Whether it is firing.
    pub fn firing(&self) -> bool {
        self.resolved_at.is_none()
    }
}

/// Every alert gwanje knows, firing or recently resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AlertBook {
    policy: AlertPolicy,
    alerts: BTreeMap<String, Alert>,
}

/// A stable id: FNV-1a over the name and the sorted labels.
pub fn alert_id(name: &str, labels: &BTreeMap<String, String>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |s: &str| {
        for b in s.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(name);
    for (k, v) in labels {
        eat(k);
        eat(v);
    }
    format!("{h:016x}")
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl AlertBook {
    /// An empty book with `policy`.
    pub fn new(policy: AlertPolicy) -> Self {
        AlertBook {
            policy,
            alerts: BTreeMap::new(),
        }
    }

    /// Changes the timers (a reload), keeping every alert.
    pub fn set_policy(&mut self, policy: AlertPolicy) {
        self.policy = policy;
    }

    /// Fires (or keeps firing) an alert; returns its id.
    pub fn fire(
        &mut self,
        now: Timestamp,
        name: &'static str,
        severity: Severity,
        pairs: &[(&str, &str)],
        summary: String,
        description: String,
    ) -> String {
        debug_assert!(
            ALERT_NAMES.contains(&name),
            "alert {name} is not in ALERT_NAMES"
        );
        let labels = labels(pairs);
        let id = alert_id(name, &labels);
        let entry = self.alerts.entry(id.clone()).or_insert_with(|| Alert {
            id: id.clone(),
            name,
            severity,
            labels,
            summary: String::new(),
            description: String::new(),
            starts_at: now,
            resolved_at: None,
            acknowledged: None,
            escalated: false,
            auto_resolve_at: None,
            last_sent: None,
        });
        if entry.resolved_at.is_some() {
            // Firing again after a resolution is a new incident.
            entry.starts_at = now;
            entry.resolved_at = None;
            entry.acknowledged = None;
            entry.escalated = false;
            entry.last_sent = None;
        }
        entry.summary = summary;
        entry.description = description;
        id
    }

    /// Fires an event alert that resolves by itself after the event TTL.
    fn event(
        &mut self,
        now: Timestamp,
        name: &'static str,
        pairs: &[(&str, &str)],
        summary: String,
        description: String,
    ) {
        let id = self.fire(now, name, Severity::Warning, pairs, summary, description);
        if let Some(a) = self.alerts.get_mut(&id) {
            a.auto_resolve_at = Some(Timestamp(now.0.saturating_add(self.policy.event_ttl_ms)));
            a.last_sent = None;
        }
    }

    /// Fires a warning about gwanje itself that resolves by itself after
    /// the event TTL.
    pub fn event_warning(
        &mut self,
        now: Timestamp,
        name: &'static str,
        summary: String,
        description: String,
    ) {
        self.event(now, name, &[], summary, description);
    }

    /// Whether the alert `name` with `pairs` is firing and acknowledged.
    pub fn acknowledged(&self, name: &str, pairs: &[(&str, &str)]) -> bool {
        self.alerts
            .get(&alert_id(name, &labels(pairs)))
            .is_some_and(|a| a.firing() && a.acknowledged.is_some())
    }

    /// Makes a firing alert `name` with `pairs` wanted again: unacknowledged
    /// and sent at once (news of the same incident someone must see).
    pub fn renotify(&mut self, name: &str, pairs: &[(&str, &str)]) {
        if let Some(a) = self
            .alerts
            .get_mut(&alert_id(name, &labels(pairs)))
            .filter(|a| a.firing())
        {
            a.acknowledged = None;
            a.escalated = false;
            a.last_sent = None;
        }
    }

    /// Resolves the alert `name` with `pairs`, if firing.
    pub fn resolve(&mut self, now: Timestamp, name: &str, pairs: &[(&str, &str)]) {
        let id = alert_id(name, &labels(pairs));
        if let Some(a) = self.alerts.get_mut(&id).filter(|a| a.firing()) {
            a.resolved_at = Some(now);
            a.last_sent = None;
        }
    }

    /// Records who acknowledged alert `id`; returns the alert's name.
    pub fn acknowledge(&mut self, now: Timestamp, id: &str, by: &str) -> Result<String, AckError> {
        match self.alerts.get_mut(id) {
            Some(a) if a.firing() => {
                a.acknowledged = Some((by.to_string(), now));
                Ok(a.name.to_string())
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
                && a.severity == Severity::Critical
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
                    && a.severity == Severity::Critical
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

    /// Updates alerts from one core effect.
    pub fn apply(&mut self, now: Timestamp, effect: &Effect) {
        match effect {
            Effect::PathDiagnosed { path, diagnosis } => {
                let p = path.as_str();
                let id = alert_id("PathDown", &labels(&[("path", p)]));
                if let Some(a) = self.alerts.get_mut(&id).filter(|a| a.firing()) {
                    let news = !a
                        .description
                        .contains(&format!("Diagnosis ({})", diagnosis.kind));
                    a.description = format!(
                        "Path {p} is down. Diagnosis ({kind}): {what}. Groups that used it have been moved to a healthy path if one exists; checks behind it are muted as consequences. Runbook section: \"{kind}\".",
                        kind = diagnosis.kind,
                        what = diagnosis.summary
                    );
                    // A new kind reaches the on-call engineer now, not at
                    // the next re-send; refined evidence can wait for it.
                    if news {
                        a.last_sent = None;
                    }
                }
            }
            Effect::PathChanged {
                path, to, reason, ..
            } => {
                let p = path.as_str();
                if *to == PathState::Down {
                    self.fire(
                        now,
                        "PathDown",
                        Severity::Warning,
                        &[("path", p)],
                        format!("path {p} is down: {reason}"),
                        format!("Path {p} is down ({reason}). Groups that used it have been moved to a healthy path if one exists; checks behind it are muted as consequences."),
                    );
                } else {
                    self.resolve(now, "PathDown", &[("path", p)]);
                }
            }
            Effect::RouteChanged {
                group,
                from,
                to,
                reason,
                ..
            } if reason.is_automatic() => {
                let from = from.as_ref().map_or("none", |p| p.as_str());
                let label = reason.label();
                self.event(
                    now,
                    "FailoverExecuted",
                    &[("group", group.as_str()), ("from", from), ("to", to.as_str()), ("reason", label)],
                    format!("{group}: traffic moved from {from} to {to}"),
                    match reason {
                        SwitchReason::Failback => format!("gwanje moved {group} back to the preferred path {to} after it stayed healthy. Nothing to do."),
                        _ => format!("gwanje moved {group} from {from} to {to} because {reason}. Traffic flows through {to}; find out why {from} failed (PathDown)."),
                    },
                );
            }
            Effect::FailoverImpossible {
                group,
                active,
                unsure,
            } => {
                let a = active.as_ref().map_or("none", |p| p.as_str());
                let (summary, description) = if unsure.is_empty() {
                    (
                        format!("{group}: active path {a} is down and no other path is healthy"),
                        format!(
                            "gwanje did not move {group}: every other path is down too. Restore any path, or pin one you know works."
                        ),
                    )
                } else {
                    let checks: Vec<&str> = unsure.iter().map(TargetKey::as_str).collect();
                    let checks = checks.join(", ");
                    (
                        format!("{group}: {checks} fail through {a}, and every other path is down"),
                        format!(
                            "{checks} fail through the active path {a} while every other path of {group} is already down (see PathDown). gwanje cannot tell whether path {a} or the service is at fault: with no healthy path to compare, both explain what it sees. It did not move traffic. Check the service from another network, and path {a}'s next hops."
                        ),
                    )
                };
                self.fire(
                    now,
                    "FailoverImpossible",
                    Severity::Critical,
                    &[("group", group.as_str())],
                    summary,
                    description,
                );
            }
            Effect::FailoverPossibleAgain { group } => {
                self.resolve(now, "FailoverImpossible", &[("group", group.as_str())])
            }
            // A directly probed target (not a check through a path: those
            // are PathDown's and ServiceDown's) that its thresholds call
            // down; a leak or a mix-up has its own, critical alert.
            Effect::HealthChanged {
                subject: crate::types::Subject::Target(key),
                to,
                failures_in_window,
                cause,
                ..
            } if !matches!(
                cause,
                Some(
                    crate::types::FailureKind::PersonalData
                        | crate::types::FailureKind::IdentityMismatch
                )
            ) =>
            {
                let (service, target) = key.parts();
                let pairs = [("service", service), ("target", target)];
                if *to == crate::types::TargetState::Down {
                    let cause = cause.map_or("", |c| c.as_str());
                    self.fire(
                        now,
                        "TargetDown",
                        Severity::Warning,
                        &pairs,
                        format!("{key} is down ({cause})"),
                        format!("{key} failed {failures_in_window} of its recent probes (last failure: {cause}), past its configured fall threshold. It is probed directly, not through a failover path: check the service itself."),
                    );
                } else {
                    self.resolve(now, "TargetDown", &pairs);
                }
            }
            Effect::ServiceDown { group, check } => {
                let (service, target) = check.parts();
                self.fire(
                    now,
                    "ServiceDown",
                    Severity::Critical,
                    &[("group", group.as_str()), ("service", service), ("target", target)],
                    format!("{check} fails through every path"),
                    format!("{check} fails through every path of {group}: the service is down, not a path. gwanje did not switch (it would not help)."),
                );
            }
            Effect::ServiceRecovered { group, check } => {
                let (service, target) = check.parts();
                self.resolve(
                    now,
                    "ServiceDown",
                    &[
                        ("group", group.as_str()),
                        ("service", service),
                        ("target", target),
                    ],
                );
            }
            Effect::ServiceDegraded {
                group,
                check,
                losses,
            } => {
                let (service, target) = check.parts();
                let each: Vec<String> = losses
                    .iter()
                    .map(|(p, l)| format!("{p} {}.{}%", l / 10, l % 10))
                    .collect();
                let each = each.join(", ");
                self.fire(
                    now,
                    "ServiceDegraded",
                    Severity::Warning,
                    &[("group", group.as_str()), ("service", service), ("target", target)],
                    format!("{check} loses packets through every path ({each})"),
                    format!("{check} loses more than the tolerated share of packets through every path of {group} (one-way loss over the quality window: {each}). The loss is common to every path, so no path is blamed and gwanje did not switch (it would not help). Look at the service's own network, its host, or a link every path shares."),
                );
            }
            Effect::ServiceDegradationCleared { group, check } => {
                let (service, target) = check.parts();
                self.resolve(
                    now,
                    "ServiceDegraded",
                    &[
                        ("group", group.as_str()),
                        ("service", service),
                        ("target", target),
                    ],
                );
            }
            Effect::MonitorIsolated { group } => {
                self.fire(
                    now,
                    "MonitorIsolated",
                    Severity::Critical,
                    &[("group", group.as_str())],
                    format!("{group}: every path failed at once; gwanje itself looks cut off"),
                    "gwanje did not move traffic: when every path fails at the same moment, the monitor's own network is the likely cause. Check gwanje's host and uplink.".into(),
                );
            }
            Effect::MonitorReconnected { group } => {
                self.resolve(now, "MonitorIsolated", &[("group", group.as_str())])
            }
            Effect::GroupFrozen {
                group, switches, ..
            } => {
                self.fire(
                    now,
                    "GroupFrozen",
                    Severity::Critical,
                    &[("group", group.as_str())],
                    format!("{group}: {switches} switches too many; automatic failover frozen"),
                    format!("gwanje froze automatic switching of {group} after {switches} switches within the flap window. Pin the path you trust, fix the flapping one, then unfreeze."),
                );
            }
            Effect::GroupUnfrozen { group, .. } => {
                self.resolve(now, "GroupFrozen", &[("group", group.as_str())])
            }
            Effect::RouteDrifted {
                group,
                expected,
                actual,
            } => {
                let e = expected.as_ref().map_or("none", |p| p.as_str());
                let a = actual.as_ref().map_or("none", |p| p.as_str());
                self.event(
                    now,
                    "RouteDrift",
                    &[("group", group.as_str())],
                    format!("{group}: the route was changed outside gwanje ({e} → {a})"),
                    format!("The kernel's route for {group} pointed at {a} instead of {e}; gwanje restored it. Use a pin to move traffic by hand."),
                );
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GroupName, PathName, PathReason};

    fn policy() -> AlertPolicy {
        AlertPolicy {
            resend_ms: 1_000,
            resolved_resend_ms: 5_000,
            escalate_after_ms: 10_000,
            event_ttl_ms: 3_000,
            certificate_warning_ms: 86_400_000,
        }
    }

    fn down(path: &str) -> Effect {
        Effect::PathChanged {
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
            &Effect::PathChanged {
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
            &Effect::MonitorIsolated {
                group: GroupName::new("g"),
            },
        );
        b.apply(
            Timestamp(0),
            &Effect::GroupFrozen {
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
        let moved = |reason| Effect::RouteChanged {
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
        assert_eq!(sent[0].name, "FailoverExecuted");
        assert_eq!(sent[0].labels["reason"], "path_failed");
        let later = b.due(Timestamp(3_000));
        assert_eq!(later.len(), 1);
        assert!(!later[0].firing(), "resolved after the event TTL");
        // Pins and initial installs are not failovers.
        b.apply(Timestamp(4_000), &moved(SwitchReason::Pinned));
        assert!(b.due(Timestamp(4_000)).iter().all(|a| !a.firing()));
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = alert_id("PathDown", &labels(&[("path", "a")]));
        assert_eq!(a, alert_id("PathDown", &labels(&[("path", "a")])));
        assert_ne!(a, alert_id("PathDown", &labels(&[("path", "b")])));
        assert_eq!(a.len(), 16);
    }
}
