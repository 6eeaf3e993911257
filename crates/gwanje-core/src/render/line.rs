//! One line per event, order or input: the log line, the replay timeline
//! and the incident report all print these.

use super::words::{keys, or_none};
use crate::coordination::{Coordination, CoordinationFault};
use crate::effect::{Effect, Event, Input, Order};
use crate::types::{GroupName, PathName, TargetKey, TargetState, VantageName};

/// The line for `e`.
pub fn event(e: &Event) -> String {
    super::done(event_words(e))
}

/// The line for an effect: its event's, or its order's when a timeline
/// shows that order.
pub fn effect(e: &Effect) -> Option<String> {
    match e {
        Effect::Event(e) => Some(event(e)),
        Effect::Order(o) => order(o),
    }
}

/// The line for `o`, or `None` for an order a timeline leaves out (an
/// examination every 10 s while a path is down is bookkeeping; the
/// diagnosis it leads to is the news).
pub fn order(o: &Order) -> Option<String> {
    let text = match o {
        Order::ChangeRoute {
            group,
            from,
            to,
            reason,
            attempt,
            fence,
        } => format!(
            "{group}: moving traffic from {} to {to} because {reason} (try {attempt}{})",
            or_none(from),
            fence.map_or(String::new(), |f| format!(", fence {f}"))
        ),
        Order::ExaminePath { .. } => return None,
        Order::DeliverAlerts { alerts, .. } => {
            let parts: Vec<String> = alerts
                .iter()
                .map(|a| {
                    let state = match (a.firing(), a.escalated) {
                        (false, _) => "resolved",
                        (true, true) => "escalated",
                        (true, false) => "firing",
                    };
                    let labels: Vec<String> =
                        a.labels().iter().map(|(k, v)| format!("{k}={v}")).collect();
                    format!("{} {state} {{{}}}", a.name(), labels.join(", "))
                })
                .collect();
            format!("alerts sent: {}", parts.join("; "))
        }
    };
    Some(super::done(text))
}

/// The line for an input worth showing (what people and the plan did), or
/// `None` for the probe results and route reads a timeline leaves out.
pub fn input(i: &Input) -> Option<String> {
    let text = match i {
        Input::PlanApplied(cfg) => format!(
            "configuration applied: {} subjects, {} paths, {} groups",
            cfg.subjects.len(),
            cfg.paths.len(),
            cfg.groups.len()
        ),
        Input::ReloadRejected { errors } => {
            format!("a configuration reload was rejected ({errors} errors)")
        }
        Input::JournalFailing { dropped } => {
            format!("the journal is failing ({dropped} records dropped)")
        }
        Input::JournalRecovered => "the journal writes again".into(),
        Input::JournalRestoreRefused { lead_ms } => format!(
            "the journal found at start was {} s ahead of the clock; its state was not restored",
            lead_ms / 1000
        ),
        Input::VantageRestarted { vantage } => format!(
            "vantage {vantage}'s stream restarted its sequence; what it said before is forgotten"
        ),
        Input::Coordination(Coordination::Lost { fault }) => format!(
            "the coordination store cannot say who leads ({})",
            fault.label()
        ),
        Input::ProbeCompleted(_)
        | Input::Coordination(_)
        | Input::OrderRefused { .. }
        | Input::VantageObserved { .. }
        | Input::RoutesObserved { .. }
        | Input::RouteChangeCompleted { .. }
        | Input::Pin { .. }
        | Input::Unpin { .. }
        | Input::Unfreeze { .. }
        | Input::AlertAcknowledged { .. }
        | Input::PathExamined { .. } => return None,
    };
    Some(super::done(text))
}

/// The sentence an alert raised by the same facts opens with.
pub(super) fn failover_impossible(
    group: &GroupName,
    active: &Option<PathName>,
    unsure: &[TargetKey],
) -> String {
    if unsure.is_empty() {
        format!(
            "{group}: active path {} is down and no other path is healthy; not moving",
            or_none(active)
        )
    } else {
        format!(
            "{group}: {} fail through {} and every other path is down: the path or the service, gwanje cannot tell (no switch)",
            keys(unsure),
            or_none(active)
        )
    }
}

pub(super) fn service_down(group: &GroupName, check: &TargetKey) -> String {
    format!(
        "{group}: {check} fails through every path: the service is down, not a path (no switch)"
    )
}

pub(super) fn service_degraded(
    group: &GroupName,
    check: &TargetKey,
    losses: &[(PathName, u16)],
) -> String {
    format!(
        "{group}: {check} loses packets through every path{}: degraded, not a path (no switch)",
        super::words::losses(losses)
    )
}

pub(super) fn vantage_isolated(vantage: &VantageName) -> String {
    format!("vantage {vantage} is cut off: its controls fail, its votes abstain")
}

pub(super) fn fault_words(f: CoordinationFault) -> &'static str {
    match f {
        CoordinationFault::Unreachable => "the coordination store does not answer",
        CoordinationFault::DeadlinePassed => {
            "no keepalive was acknowledged before the lease's safety deadline"
        }
        CoordinationFault::LeaseLost => "the lease's keepalive failed",
        CoordinationFault::Superseded => "a guarded write was refused: another replica leads",
        CoordinationFault::Misconfigured => {
            "the cluster's name is in use by a configuration whose groups or paths differ"
        }
    }
}

pub(super) fn coordination_lost(f: CoordinationFault) -> String {
    format!(
        "coordination lost: {}; no route changes until it is back",
        fault_words(f)
    )
}

pub(super) fn order_refused(group: &GroupName, fence: Option<u64>, highest: u64) -> String {
    match fence {
        Some(f) => format!(
            "{group}: an actuator refused a route order with fence {f}, older than {highest} it applied (route unchanged)"
        ),
        None => format!("{group}: an actuator refused an unreadable route order (route unchanged)"),
    }
}

pub(super) fn monitor_isolated(group: &GroupName) -> String {
    format!("{group}: every path failed at once: gwanje itself looks cut off (no switch)")
}

pub(super) fn group_frozen(group: &GroupName, switches: u32) -> String {
    format!("{group}: {switches} switches within the flap window; automatic switching frozen")
}

pub(super) fn route_drifted(
    group: &GroupName,
    expected: &Option<PathName>,
    actual: &Option<PathName>,
) -> String {
    format!(
        "{group}: the route was changed outside gwanje ({} instead of {}); restoring",
        or_none(actual),
        or_none(expected)
    )
}

pub(super) fn route_changed(
    group: &GroupName,
    from: &Option<PathName>,
    to: &PathName,
    reason: &crate::shared::SwitchReason,
) -> String {
    format!(
        "{group}: traffic now flows via {to} (was {}); reason: {reason}",
        or_none(from)
    )
}

pub(super) fn path_changed(
    path: &PathName,
    to: crate::shared::PathState,
    reason: &crate::shared::PathReason,
) -> String {
    format!("path {path} is {to}: {reason}")
}

pub(super) fn target_health(
    subject: &crate::types::Subject,
    to: TargetState,
    failures: u32,
    cause: Option<crate::types::FailureKind>,
    behind: &Option<PathName>,
) -> String {
    let cause = cause.map_or(String::new(), |c| format!(", last failure: {}", c.as_str()));
    let behind = behind.as_ref().map_or(String::new(), |p| {
        format!(" (a consequence: path {p} is down)")
    });
    match to {
        // No count: restored from an older journal that kept it only in words.
        TargetState::Down if failures == 0 => format!("{subject} is down{cause}{behind}"),
        TargetState::Down => {
            let plural = if failures == 1 { "" } else { "s" };
            format!("{subject} is down: {failures} failure{plural} in its window{cause}{behind}")
        }
        other => format!("{subject} is {other}{behind}"),
    }
}

fn event_words(e: &Event) -> String {
    match e {
        Event::HealthChanged {
            subject,
            to,
            failures_in_window,
            cause,
            behind,
            ..
        } => target_health(subject, *to, *failures_in_window, *cause, behind),
        Event::PathChanged {
            path, to, reason, ..
        } => path_changed(path, *to, reason),
        Event::PathDiagnosed { path, diagnosis } => format!(
            "path {path} diagnosed ({}): {}",
            diagnosis.kind,
            super::diagnosis::words_of(path, diagnosis)
        ),
        Event::RouteChanged {
            group,
            from,
            to,
            reason,
            ..
        } => route_changed(group, from, to, reason),
        Event::RouteChangeFailed {
            group,
            to,
            attempt,
            error,
            ..
        } => format!("{group}: moving to {to} failed (try {attempt}): {error}; retrying"),
        Event::RouteAdopted { group, path } => {
            format!("{group}: adopted the kernel's route via {}", or_none(path))
        }
        Event::RouteDrifted {
            group,
            expected,
            actual,
        } => route_drifted(group, expected, actual),
        Event::FailoverImpossible {
            group,
            active,
            unsure,
        } => failover_impossible(group, active, unsure),
        Event::FailoverPossibleAgain { group } => format!("{group}: a healthy path exists again"),
        Event::ServiceDown { group, check } => service_down(group, check),
        Event::ServiceRecovered { group, check } => format!("{group}: {check} passes again"),
        Event::ServiceDegraded {
            group,
            check,
            losses,
        } => service_degraded(group, check, losses),
        Event::ServiceDegradationCleared { group, check } => {
            format!("{group}: {check} no longer loses packets through every path")
        }
        Event::MonitorIsolated { group } => monitor_isolated(group),
        Event::MonitorReconnected { group } => format!("{group}: gwanje is connected again"),
        Event::GroupFrozen {
            group, switches, ..
        } => group_frozen(group, *switches),
        Event::MovedDespiteFreeze { group, from, to } => {
            format!("{group}: {from} is down while switching is frozen; moving to {to} anyway")
        }
        Event::GroupUnfrozen { group, by } => {
            format!("{group}: automatic switching resumed ({by})")
        }
        Event::FailbackAvailable { group, to } => {
            format!("{group}: {to} is healthy again; pin it to fail back (manual failback)")
        }
        Event::PinSet {
            group, path, by, ..
        } => format!("{group}: pinned to {path} by {by}"),
        Event::PinCleared { group, by } => format!("{group}: pin cleared ({by})"),
        Event::AlertAcknowledged { name, by, .. } => format!("alert {name} acknowledged by {by}"),
        Event::VerdictChanged {
            target, to, votes, ..
        } => format!(
            "{target} is {to} by the vantages' votes ({})",
            super::words::votes(votes)
        ),
        Event::VotesChanged { target, votes, .. } => format!(
            "{target}: down from {} vantages ({})",
            super::words::down_of(votes),
            super::words::votes(votes)
        ),
        Event::VantageIsolated { vantage, .. } => vantage_isolated(vantage),
        Event::VantageReconnected { vantage, .. } => {
            format!("vantage {vantage}'s controls pass again; it votes again")
        }
        Event::MonitoringDegraded {
            targets,
            min_vantages,
            ..
        } => format!(
            "{targets} targets have fewer than {min_vantages} eligible vantages: verdict unknown"
        ),
        Event::MonitoringRestored => "every target has enough eligible vantages again".into(),
        Event::LeadershipAcquired { fence } => {
            format!(
                "this replica leads (fence {fence}); it orders once every path has fresh results"
            )
        }
        Event::LeadershipLost { fence, fault } => match fault {
            Some(f) => format!(
                "this replica stopped leading (fence {fence}): {}; routes stay as they are",
                fault_words(*f)
            ),
            None => format!("this replica no longer leads (fence {fence})"),
        },
        Event::CoordinationLost { fault } => coordination_lost(*fault),
        Event::CoordinationRestored => "the coordination store answers again".into(),
        Event::OrderRefused {
            group,
            fence,
            highest,
        } => order_refused(group, *fence, *highest),
        Event::RouteFollowed { group, from, to } => format!(
            "{group}: following the leader's route from {} to {}",
            or_none(from),
            or_none(to)
        ),
    }
}
