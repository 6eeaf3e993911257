//! What an alert is: its name, its typed facts, the labels derived from
//! them, its severity and its place in the lifecycle. Facts only; the words
//! an on-call engineer reads are made from them by `render`.

use std::collections::BTreeMap;

use super::coordination::CoordinationFault;
use super::diagnosis::Diagnosis;
use super::shared::{PathReason, SwitchReason};
use super::types::{
    FailureKind, GroupName, IdentityFindings, PathName, TargetKey, Timestamp, VantageName,
};
use super::vantage::Vote;

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

/// Every alert gwanje sends itself (`alertname`); each has a page in
/// `docs/runbooks/`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum AlertName {
    /// A path is down (its router, or checks failing only through it).
    PathDown,
    /// A directly probed target is down.
    TargetDown,
    /// gwanje moved traffic (a failover or a failback).
    FailoverExecuted,
    /// The active path is down and no other path is healthy.
    FailoverImpossible,
    /// A check fails through every path.
    ServiceDown,
    /// A check loses packets through every path.
    ServiceDegraded,
    /// Every path failed at once: gwanje itself looks cut off.
    MonitorIsolated,
    /// Too many switches: automatic switching is frozen.
    GroupFrozen,
    /// The route was changed outside gwanje.
    RouteDrift,
    /// A TLS certificate expires soon.
    CertificateExpiringSoon,
    /// A response carried a resident registration number.
    PersonalDataExposed,
    /// A canary received a document not its own.
    IdentityMismatch,
    /// A configuration reload was rejected.
    ConfigReloadFailed,
    /// The journal cannot be written.
    JournalWriteFailing,
    /// The journal found at start was dated in the future.
    JournalClockAhead,
    /// A vantage is cut off: its controls fail, its votes abstain.
    VantageIsolated,
    /// Too few vantages are eligible to decide some targets.
    MonitoringDegraded,
    /// The coordination store cannot say who leads: no replica orders.
    CoordinationLost,
    /// An actuator refused a route order (a stale fence or unreadable).
    OrderRefused,
}

impl AlertName {
    /// Every name, in the order the runbooks list them.
    pub const ALL: [AlertName; 19] = [
        AlertName::PathDown,
        AlertName::TargetDown,
        AlertName::FailoverExecuted,
        AlertName::FailoverImpossible,
        AlertName::ServiceDown,
        AlertName::ServiceDegraded,
        AlertName::MonitorIsolated,
        AlertName::GroupFrozen,
        AlertName::RouteDrift,
        AlertName::CertificateExpiringSoon,
        AlertName::PersonalDataExposed,
        AlertName::IdentityMismatch,
        AlertName::ConfigReloadFailed,
        AlertName::JournalWriteFailing,
        AlertName::JournalClockAhead,
        AlertName::VantageIsolated,
        AlertName::MonitoringDegraded,
        AlertName::CoordinationLost,
        AlertName::OrderRefused,
    ];

    /// The `alertname` label (and the runbook's file name).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertName::PathDown => "PathDown",
            AlertName::TargetDown => "TargetDown",
            AlertName::FailoverExecuted => "FailoverExecuted",
            AlertName::FailoverImpossible => "FailoverImpossible",
            AlertName::ServiceDown => "ServiceDown",
            AlertName::ServiceDegraded => "ServiceDegraded",
            AlertName::MonitorIsolated => "MonitorIsolated",
            AlertName::GroupFrozen => "GroupFrozen",
            AlertName::RouteDrift => "RouteDrift",
            AlertName::CertificateExpiringSoon => "CertificateExpiringSoon",
            AlertName::PersonalDataExposed => "PersonalDataExposed",
            AlertName::IdentityMismatch => "IdentityMismatch",
            AlertName::ConfigReloadFailed => "ConfigReloadFailed",
            AlertName::JournalWriteFailing => "JournalWriteFailing",
            AlertName::JournalClockAhead => "JournalClockAhead",
            AlertName::VantageIsolated => "VantageIsolated",
            AlertName::MonitoringDegraded => "MonitoringDegraded",
            AlertName::CoordinationLost => "CoordinationLost",
            AlertName::OrderRefused => "OrderRefused",
        }
    }

    /// How urgent alerts of this name are: critical ones page someone.
    pub fn severity(self) -> Severity {
        match self {
            AlertName::FailoverImpossible
            | AlertName::ServiceDown
            | AlertName::MonitorIsolated
            | AlertName::GroupFrozen
            | AlertName::PersonalDataExposed
            | AlertName::IdentityMismatch
            | AlertName::VantageIsolated
            | AlertName::CoordinationLost => Severity::Critical,
            AlertName::PathDown
            | AlertName::TargetDown
            | AlertName::FailoverExecuted
            | AlertName::ServiceDegraded
            | AlertName::RouteDrift
            | AlertName::CertificateExpiringSoon
            | AlertName::ConfigReloadFailed
            | AlertName::JournalWriteFailing
            | AlertName::JournalClockAhead
            | AlertName::MonitoringDegraded
            | AlertName::OrderRefused => Severity::Warning,
        }
    }
}

impl std::fmt::Display for AlertName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an alert is about: its identity within its name. Labels are made
/// from it, never parsed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// gwanje itself (no labels).
    Gwanje,
    /// One path (`path`).
    Path(PathName),
    /// One vantage (`vantage`).
    Vantage(VantageName),
    /// A directly probed target (`service`, `target`).
    Target(TargetKey),
    /// A failover group (`group`).
    Group(GroupName),
    /// A group's check (`group`, `service`, `target`).
    Check(GroupName, TargetKey),
    /// What one probe saw (`service`, `target`, and `path`, empty for a
    /// directly probed target).
    Probe(TargetKey, Option<PathName>),
    /// One move of a group's traffic (`group`, `from`, `to`, `reason`).
    Move {
        /// The group.
        group: GroupName,
        /// Where traffic was (`none` when it had no route).
        from: Option<PathName>,
        /// Where it went.
        to: PathName,
        /// [`SwitchReason::label`].
        reason: &'static str,
    },
}

impl Scope {
    /// The identifying labels, sorted by name.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut l = BTreeMap::new();
        self.each_label(|k, v| {
            l.insert(k.to_string(), v.to_string());
        });
        l
    }

    /// Calls `put` with each label, in the order of their names (what
    /// [`alert_id`] hashes, without building a map per probe).
    fn each_label(&self, mut put: impl FnMut(&str, &str)) {
        match self {
            Scope::Gwanje => {}
            Scope::Path(p) => put("path", p.as_str()),
            Scope::Vantage(v) => put("vantage", v.as_str()),
            Scope::Target(t) => {
                put("service", t.parts().0);
                put("target", t.parts().1);
            }
            Scope::Group(g) => put("group", g.as_str()),
            Scope::Check(g, t) => {
                put("group", g.as_str());
                put("service", t.parts().0);
                put("target", t.parts().1);
            }
            Scope::Probe(t, p) => {
                put("path", p.as_ref().map_or("", PathName::as_str));
                put("service", t.parts().0);
                put("target", t.parts().1);
            }
            Scope::Move {
                group,
                from,
                to,
                reason,
            } => {
                put("from", from.as_ref().map_or("none", PathName::as_str));
                put("group", group.as_str());
                put("reason", reason);
                put("to", to.as_str());
            }
        }
    }
}

/// One alert's facts: a variant per alert name, with what it is about and
/// the numbers behind it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AlertKind {
    /// A path is down.
    PathDown {
        /// The path.
        path: PathName,
        /// Why it is down.
        reason: PathReason,
        /// What is broken, once diagnosed.
        diagnosis: Option<Diagnosis>,
    },
    /// A directly probed target is past its fall threshold.
    TargetDown {
        /// The target.
        target: TargetKey,
        /// Failures in its window.
        failures: u32,
        /// The last failure's class.
        cause: Option<FailureKind>,
        /// With several vantages: every vantage's vote.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        votes: Vec<Vote>,
    },
    /// gwanje moved a group's traffic by itself.
    FailoverExecuted {
        /// The group.
        group: GroupName,
        /// Where traffic was.
        from: Option<PathName>,
        /// Where it went.
        to: PathName,
        /// Why.
        reason: SwitchReason,
    },
    /// The active path is down and no other path is healthy.
    FailoverImpossible {
        /// The group.
        group: GroupName,
        /// The active path.
        active: Option<PathName>,
        /// Checks failing through the active path while every other path is
        /// down (empty when the active path itself is down).
        unsure: Vec<TargetKey>,
    },
    /// A check fails through every path (with several vantages: from
    /// enough of them).
    ServiceDown {
        /// The group.
        group: GroupName,
        /// The check.
        check: TargetKey,
        /// With several vantages: every vantage's vote.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        votes: Vec<Vote>,
    },
    /// A check loses more than the tolerated share through every path.
    ServiceDegraded {
        /// The group.
        group: GroupName,
        /// The check.
        check: TargetKey,
        /// Each path's one-way loss over the quality window, per mille.
        losses: Vec<(PathName, u16)>,
    },
    /// Every path of a group failed at once.
    MonitorIsolated {
        /// The group.
        group: GroupName,
    },
    /// Automatic switching is frozen.
    GroupFrozen {
        /// The group.
        group: GroupName,
        /// Switches counted in the flap window.
        switches: u32,
    },
    /// The kernel's route was changed outside gwanje (and restored).
    RouteDrift {
        /// The group.
        group: GroupName,
        /// What gwanje set.
        expected: Option<PathName>,
        /// What the kernel had.
        actual: Option<PathName>,
    },
    /// A certificate expires within the warning period.
    CertificateExpiringSoon {
        /// The target that presented it.
        target: TargetKey,
        /// The path it was probed through, if any.
        path: Option<PathName>,
        /// The earliest `notAfter` of the chain, Unix seconds.
        not_after: i64,
        /// When it was last seen.
        seen_at: Timestamp,
    },
    /// A response carried a resident registration number.
    PersonalDataExposed {
        /// The target.
        target: TargetKey,
        /// The path it was probed through, if any.
        path: Option<PathName>,
    },
    /// A canary received a document not its own.
    IdentityMismatch {
        /// The target.
        target: TargetKey,
        /// The path it was probed through, if any.
        path: Option<PathName>,
        /// The round's counts and first mismatches.
        findings: IdentityFindings,
    },
    /// A configuration reload was rejected.
    ConfigReloadFailed {
        /// How many errors the file had.
        errors: u32,
    },
    /// The journal drops records.
    JournalWriteFailing {
        /// Records dropped so far.
        dropped: u64,
    },
    /// The journal found at start lay in the future; it was not restored.
    JournalClockAhead {
        /// How far ahead of the clock, ms.
        lead_ms: u64,
    },
    /// A vantage's controls all fail: its failures are its own.
    VantageIsolated {
        /// The vantage.
        vantage: VantageName,
        /// Whether it is the instance sending the alert.
        local: bool,
    },
    /// Too few eligible vantages to decide some targets.
    MonitoringDegraded {
        /// Targets with too few eligible vantages at the onset.
        targets: u32,
        /// The vantages still eligible then.
        eligible: Vec<VantageName>,
        /// How many the quorum needs.
        min_vantages: u32,
    },
    /// No replica may order route changes: the store cannot say who leads.
    CoordinationLost {
        /// Why.
        fault: CoordinationFault,
    },
    /// An actuator refused a route order.
    OrderRefused {
        /// The group.
        group: GroupName,
        /// The order's fence, when readable.
        fence: Option<u64>,
        /// The highest fence the actuator applied.
        highest: u64,
    },
}

impl AlertKind {
    /// The alert's name.
    pub fn name(&self) -> AlertName {
        match self {
            AlertKind::PathDown { .. } => AlertName::PathDown,
            AlertKind::TargetDown { .. } => AlertName::TargetDown,
            AlertKind::FailoverExecuted { .. } => AlertName::FailoverExecuted,
            AlertKind::FailoverImpossible { .. } => AlertName::FailoverImpossible,
            AlertKind::ServiceDown { .. } => AlertName::ServiceDown,
            AlertKind::ServiceDegraded { .. } => AlertName::ServiceDegraded,
            AlertKind::MonitorIsolated { .. } => AlertName::MonitorIsolated,
            AlertKind::GroupFrozen { .. } => AlertName::GroupFrozen,
            AlertKind::RouteDrift { .. } => AlertName::RouteDrift,
            AlertKind::CertificateExpiringSoon { .. } => AlertName::CertificateExpiringSoon,
            AlertKind::PersonalDataExposed { .. } => AlertName::PersonalDataExposed,
            AlertKind::IdentityMismatch { .. } => AlertName::IdentityMismatch,
            AlertKind::ConfigReloadFailed { .. } => AlertName::ConfigReloadFailed,
            AlertKind::JournalWriteFailing { .. } => AlertName::JournalWriteFailing,
            AlertKind::JournalClockAhead { .. } => AlertName::JournalClockAhead,
            AlertKind::VantageIsolated { .. } => AlertName::VantageIsolated,
            AlertKind::MonitoringDegraded { .. } => AlertName::MonitoringDegraded,
            AlertKind::CoordinationLost { .. } => AlertName::CoordinationLost,
            AlertKind::OrderRefused { .. } => AlertName::OrderRefused,
        }
    }

    /// What it is about: the facts that make its identity.
    pub fn scope(&self) -> Scope {
        match self {
            AlertKind::PathDown { path, .. } => Scope::Path(path.clone()),
            AlertKind::TargetDown { target, .. } => Scope::Target(target.clone()),
            AlertKind::FailoverExecuted {
                group,
                from,
                to,
                reason,
            } => Scope::Move {
                group: group.clone(),
                from: from.clone(),
                to: to.clone(),
                reason: reason.label(),
            },
            AlertKind::FailoverImpossible { group, .. }
            | AlertKind::MonitorIsolated { group }
            | AlertKind::GroupFrozen { group, .. }
            | AlertKind::RouteDrift { group, .. }
            | AlertKind::OrderRefused { group, .. } => Scope::Group(group.clone()),
            AlertKind::ServiceDown { group, check, .. }
            | AlertKind::ServiceDegraded { group, check, .. } => {
                Scope::Check(group.clone(), check.clone())
            }
            AlertKind::CertificateExpiringSoon { target, path, .. }
            | AlertKind::PersonalDataExposed { target, path }
            | AlertKind::IdentityMismatch { target, path, .. } => {
                Scope::Probe(target.clone(), path.clone())
            }
            AlertKind::VantageIsolated { vantage, .. } => Scope::Vantage(vantage.clone()),
            AlertKind::ConfigReloadFailed { .. }
            | AlertKind::JournalWriteFailing { .. }
            | AlertKind::JournalClockAhead { .. }
            | AlertKind::MonitoringDegraded { .. }
            | AlertKind::CoordinationLost { .. } => Scope::Gwanje,
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

/// One alert: its facts and where it stands in its lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Alert {
    /// Stable id (from name and labels), used to acknowledge it.
    pub id: String,
    /// What it is about, with the facts behind it.
    pub kind: AlertKind,
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
    /// When it was last handed out for delivery.
    pub last_sent: Option<Timestamp>,
}

impl Alert {
    /// A new alert about `kind`, firing from `now`.
    pub fn new(now: Timestamp, kind: AlertKind) -> Self {
        Alert {
            id: alert_id(kind.name(), &kind.scope()),
            kind,
            starts_at: now,
            resolved_at: None,
            acknowledged: None,
            escalated: false,
            auto_resolve_at: None,
            last_sent: None,
        }
    }

    /// Whether it is firing.
    pub fn firing(&self) -> bool {
        self.resolved_at.is_none()
    }

    /// Its name (`alertname`).
    pub fn name(&self) -> AlertName {
        self.kind.name()
    }

    /// Its severity.
    pub fn severity(&self) -> Severity {
        self.name().severity()
    }

    /// Its identifying labels (group, path, service, target …).
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.kind.scope().labels()
    }
}

/// A stable id: FNV-1a over the name and the sorted labels, as 16 hex
/// digits (the same ids format version 1 journals hold).
pub fn alert_id(name: AlertName, scope: &Scope) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |s: &str| {
        for b in s.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Each string ends with a zero byte, as version 1 hashed them.
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    eat(name.as_str());
    scope.each_label(|k, v| {
        eat(k);
        eat(v);
    });
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(16);
    for i in (0..16).rev() {
        id.push(char::from(HEX[((h >> (i * 4)) & 0xf) as usize]));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_distinct_and_those_of_version_1() {
        let a = alert_id(AlertName::PathDown, &Scope::Path(PathName::new("a")));
        assert_eq!(
            a,
            alert_id(AlertName::PathDown, &Scope::Path(PathName::new("a")))
        );
        assert_ne!(
            a,
            alert_id(AlertName::PathDown, &Scope::Path(PathName::new("b")))
        );
        assert_eq!(a.len(), 16);
        // FNV-1a of "PathDown\0path\0a\0", as version 1 computed it.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in b"PathDown\0path\0a\0" {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        assert_eq!(u64::from_str_radix(&a, 16).unwrap(), h);
    }

    #[test]
    fn labels_are_hashed_in_the_order_of_their_names() {
        let t = TargetKey::new("portal", "home");
        let (g, p) = (GroupName::new("g"), PathName::new("a"));
        for scope in [
            Scope::Gwanje,
            Scope::Path(p.clone()),
            Scope::Target(t.clone()),
            Scope::Group(g.clone()),
            Scope::Check(g.clone(), t.clone()),
            Scope::Probe(t.clone(), Some(p.clone())),
            Scope::Move {
                group: g.clone(),
                from: None,
                to: p.clone(),
                reason: "failback",
            },
        ] {
            let mut names = Vec::new();
            scope.each_label(|k, _| names.push(k.to_string()));
            let mut sorted = names.clone();
            sorted.sort();
            assert_eq!(names, sorted, "{scope:?}");
        }
    }

    #[test]
    fn labels_come_from_the_facts() {
        let probe = Scope::Probe(TargetKey::new("portal", "home"), None).labels();
        assert_eq!(probe["path"], "");
        assert_eq!(probe["service"], "portal");
        let moved = AlertKind::FailoverExecuted {
            group: GroupName::new("g"),
            from: None,
            to: PathName::new("b"),
            reason: SwitchReason::Failback,
        };
        let l = moved.scope().labels();
        assert_eq!(
            (l["from"].as_str(), l["reason"].as_str()),
            ("none", "failback")
        );
        assert_eq!(moved.name().severity(), Severity::Warning);
    }
}
