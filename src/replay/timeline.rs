//! Effects and operator inputs in plain words, for the replay timeline.

use crate::core::{Effect, Input, TargetState};

fn or_none(p: &Option<crate::core::PathName>) -> &str {
    p.as_ref().map_or("none", |p| p.as_str())
}

/// One line for an effect, or `None` for what a timeline leaves out.
pub fn effect(e: &Effect) -> Option<String> {
    Some(match e {
        Effect::HealthChanged {
            subject,
            to,
            failures_in_window,
            cause,
            behind,
            ..
        } => {
            let cause = cause.map_or(String::new(), |c| format!(", last failure: {}", c.as_str()));
            let behind = behind.as_ref().map_or(String::new(), |p| {
                format!(" (a consequence: path {p} is down)")
            });
            match to {
                TargetState::Down => format!(
                    "{subject} is down: {failures_in_window} failures in its window{cause}{behind}"
                ),
                other => format!("{subject} is {other}{behind}"),
            }
        }
        Effect::PathChanged {
            path, to, reason, ..
        } => format!("path {path} is {to}: {reason}"),
        // A ladder every 10 s while a path is down is bookkeeping; the
        // diagnosis it leads to is the news.
        Effect::ExaminePath { .. } => return None,
        Effect::PathDiagnosed { path, diagnosis } => {
            format!(
                "path {path} diagnosed ({}): {}",
                diagnosis.kind, diagnosis.summary
            )
        }
        Effect::RouteChangeRequested {
            group,
            from,
            to,
            reason,
            attempt,
        } => format!(
            "{group}: moving traffic from {} to {to} because {reason} (try {attempt})",
            or_none(from)
        ),
        Effect::RouteChanged {
            group,
            from,
            to,
            reason,
            ..
        } => format!(
            "{group}: traffic now flows via {to} (was {}); reason: {reason}",
            or_none(from)
        ),
        Effect::RouteChangeFailed {
            group,
            to,
            attempt,
            error,
            ..
        } => format!("{group}: moving to {to} failed (try {attempt}): {error}; retrying"),
        Effect::RouteAdopted { group, path } => {
            format!("{group}: adopted the kernel's route via {}", or_none(path))
        }
        Effect::RouteDrifted {
            group,
            expected,
            actual,
        } => format!(
            "{group}: the route was changed outside gwanje ({} instead of {}); restoring",
            or_none(actual),
            or_none(expected)
        ),
        Effect::FailoverImpossible {
            group,
            active,
            unsure,
        } if !unsure.is_empty() => {
            let checks: Vec<&str> = unsure.iter().map(|c| c.as_str()).collect();
            format!(
                "{group}: {} fail through {} and every other path is down: the path or the service, gwanje cannot tell (no switch)",
                checks.join(", "),
                or_none(active)
            )
        }
        Effect::FailoverImpossible { group, active, .. } => format!(
            "{group}: active path {} is down and no other path is healthy; not moving",
            or_none(active)
        ),
        Effect::FailoverPossibleAgain { group } => format!("{group}: a healthy path exists again"),
        Effect::ServiceDown { group, check } => format!(
            "{group}: {check} fails through every path: the service is down, not a path (no switch)"
        ),
        Effect::ServiceRecovered { group, check } => format!("{group}: {check} passes again"),
        Effect::ServiceDegraded {
            group,
            check,
            losses,
        } => {
            let each: Vec<String> = losses
                .iter()
                .map(|(p, l)| format!("{p} {}.{}%", l / 10, l % 10))
                .collect();
            format!(
                "{group}: {check} loses packets through every path ({}): degraded, not a path (no switch)",
                each.join(", ")
            )
        }
        Effect::ServiceDegradationCleared { group, check } => {
            format!("{group}: {check} no longer loses packets through every path")
        }
        Effect::MonitorIsolated { group } => {
            format!("{group}: every path failed at once: gwanje itself looks cut off (no switch)")
        }
        Effect::MonitorReconnected { group } => format!("{group}: gwanje is connected again"),
        Effect::GroupFrozen {
            group, switches, ..
        } => format!(
            "{group}: {switches} switches within the flap window; automatic switching frozen"
        ),
        Effect::MovedDespiteFreeze { group, from, to } => {
            format!("{group}: {from} is down while switching is frozen; moving to {to} anyway")
        }
        Effect::GroupUnfrozen { group, by } => {
            format!("{group}: automatic switching resumed ({by})")
        }
        Effect::FailbackAvailable { group, to } => {
            format!("{group}: {to} is healthy again; pin it to fail back (manual failback)")
        }
        Effect::PinSet {
            group, path, by, ..
        } => format!("{group}: pinned to {path} by {by}"),
        Effect::PinCleared { group, by } => format!("{group}: pin cleared ({by})"),
        Effect::AlertsDue { alerts, .. } => {
            let parts: Vec<String> = alerts
                .iter()
                .map(|a| {
                    let state = match (a.firing(), a.escalated) {
                        (false, _) => "resolved",
                        (true, true) => "escalated",
                        (true, false) => "firing",
                    };
                    let labels: Vec<String> =
                        a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    format!("{} {state} {{{}}}", a.name, labels.join(", "))
                })
                .collect();
            format!("alerts sent: {}", parts.join("; "))
        }
        Effect::AlertAcknowledged { name, by, .. } => format!("alert {name} acknowledged by {by}"),
    })
}

/// One line for an input worth showing (what people and the plan did).
pub fn input(i: &Input) -> Option<String> {
    Some(match i {
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
        _ => return None,
    })
}
