//! Each event becomes its metrics and one log line, in one function: the
//! line's words are the renderer's (the same as the replay timeline's and
//! the incident report's), the fields are for machines.

use tracing::Level;

use crate::core::{Event, Order, PathState, Subject, TargetState, render};
use crate::logging::escape;
use crate::metrics::Metrics;
use crate::plan::Plan;

/// The log line of `event`: the renderer's line, escaped whole (operator
/// names and actuator errors reach it).
pub fn log_line(event: &Event) -> String {
    escape(&render::event(event)).to_string()
}

/// Updates the metrics `event` changes and logs its line, with the event's
/// facts as one structured field (`facts`, the journal's JSON of it) for
/// log queries.
pub fn report(event: &Event, detail: Option<&str>, metrics: &Metrics, plan: &Plan) {
    let level = count(event, metrics, plan);
    let line = log_line(event);
    let facts = serde_json::to_string(event).unwrap_or_default();
    let facts = escape(&facts);
    let detail = escape(detail.unwrap_or(""));
    match level {
        Level::ERROR => tracing::error!(event = kind(event), %facts, "{line}"),
        Level::WARN if is_target_down(event) => {
            tracing::warn!(event = kind(event), %facts, detail = %detail, "{line}")
        }
        Level::WARN => tracing::warn!(event = kind(event), %facts, "{line}"),
        Level::INFO => tracing::info!(event = kind(event), %facts, "{line}"),
        _ => tracing::debug!(event = kind(event), %facts, "{line}"),
    }
}

/// Counts an order the engine is about to carry out, and logs its line.
pub fn ordered(order: &Order, metrics: &Metrics) {
    match order {
        Order::ExaminePath { path, trace } => {
            let kind = if *trace { "trace" } else { "ladder" };
            metrics
                .path_examinations_total
                .with_label_values(&[path.as_str(), kind])
                .inc();
            tracing::info!(order = "examine_path", %path, trace, "examining path {path} (packet sizes, and hops when tracing)");
        }
        Order::DeliverAlerts { alerts, .. } => {
            for a in alerts {
                let state = if a.firing() { "firing" } else { "resolved" };
                tracing::debug!(alert = a.name().as_str(), id = %a.id, state, escalated = a.escalated, "alert sent");
            }
        }
        Order::ChangeRoute { .. } => {
            if let Some(line) = render::order(order) {
                tracing::info!(order = "change_route", "{}", escape(&line));
            }
        }
    }
}

fn is_target_down(event: &Event) -> bool {
    matches!(
        event,
        Event::HealthChanged {
            to: TargetState::Down,
            behind: None,
            ..
        }
    )
}

/// The event's name, a field of its log line.
fn kind(event: &Event) -> &'static str {
    match event {
        Event::HealthChanged { .. } => "health_changed",
        Event::PathChanged { .. } => "path_changed",
        Event::PathDiagnosed { .. } => "path_diagnosed",
        Event::RouteChanged { .. } => "route_changed",
        Event::RouteChangeFailed { .. } => "route_change_failed",
        Event::RouteAdopted { .. } => "route_adopted",
        Event::RouteDrifted { .. } => "route_drifted",
        Event::FailoverImpossible { .. } => "failover_impossible",
        Event::FailoverPossibleAgain { .. } => "failover_possible_again",
        Event::ServiceDown { .. } => "service_down",
        Event::ServiceRecovered { .. } => "service_recovered",
        Event::ServiceDegraded { .. } => "service_degraded",
        Event::ServiceDegradationCleared { .. } => "service_degradation_cleared",
        Event::MonitorIsolated { .. } => "monitor_isolated",
        Event::MonitorReconnected { .. } => "monitor_reconnected",
        Event::GroupFrozen { .. } => "group_frozen",
        Event::MovedDespiteFreeze { .. } => "moved_despite_freeze",
        Event::GroupUnfrozen { .. } => "group_unfrozen",
        Event::FailbackAvailable { .. } => "failback_available",
        Event::PinSet { .. } => "pin_set",
        Event::PinCleared { .. } => "pin_cleared",
        Event::AlertAcknowledged { .. } => "alert_acknowledged",
        Event::VerdictChanged { .. } => "verdict_changed",
        Event::VotesChanged { .. } => "votes_changed",
        Event::VantageIsolated { .. } => "vantage_isolated",
        Event::VantageReconnected { .. } => "vantage_reconnected",
        Event::MonitoringDegraded { .. } => "monitoring_degraded",
        Event::MonitoringRestored => "monitoring_restored",
        Event::LeadershipAcquired { .. } => "leadership_acquired",
        Event::LeadershipLost { .. } => "leadership_lost",
        Event::CoordinationLost { .. } => "coordination_lost",
        Event::CoordinationRestored => "coordination_restored",
        Event::OrderRefused { .. } => "order_refused",
        Event::RouteFollowed { .. } => "route_followed",
    }
}

/// Updates the metrics `event` changes; returns how loud its line is.
fn count(event: &Event, metrics: &Metrics, plan: &Plan) -> Level {
    match event {
        Event::HealthChanged {
            subject,
            to,
            behind,
            ..
        } => {
            metrics.targets.set_state(subject, *to);
            if let Subject::Target(t) | Subject::Check(t, _) = subject {
                metrics
                    .target_changes_total
                    .with_label_values(&[t.parts().0, to.as_str()])
                    .inc();
            }
            match (to, behind) {
                // A consequence of a down path: recorded, not shouted.
                (_, Some(_)) => Level::DEBUG,
                (TargetState::Down, None) => Level::WARN,
                _ => Level::INFO,
            }
        }
        Event::PathChanged { path, to, .. } => {
            let p = path.as_str();
            for s in [PathState::Up, PathState::Down, PathState::Unknown] {
                metrics
                    .path_state
                    .with_label_values(&[p, s.as_str()])
                    .set(i64::from(s == *to));
            }
            match to {
                PathState::Up => metrics.path_up.with_label_values(&[p]).set(1),
                PathState::Down => metrics.path_up.with_label_values(&[p]).set(0),
                PathState::Unknown => {
                    let _ = metrics.path_up.remove_label_values(&[p]);
                }
            }
            if *to == PathState::Down {
                Level::WARN
            } else {
                metrics.set_diagnosis(p, None);
                Level::INFO
            }
        }
        Event::PathDiagnosed { path, diagnosis } => {
            metrics.set_diagnosis(path.as_str(), Some(diagnosis));
            Level::WARN
        }
        Event::RouteChanged {
            group,
            from,
            to,
            reason,
            ..
        } => {
            let from = from.as_ref().map_or("none", |p| p.as_str());
            metrics
                .failovers_total
                .with_label_values(&[group.as_str(), from, to.as_str(), reason.label()])
                .inc();
            set_active(metrics, plan, group.as_str(), Some(to.as_str()));
            Level::WARN
        }
        Event::RouteChangeFailed { group, .. } => {
            metrics
                .route_change_failures_total
                .with_label_values(&[group.as_str()])
                .inc();
            Level::ERROR
        }
        Event::RouteAdopted { group, path } => {
            set_active(
                metrics,
                plan,
                group.as_str(),
                path.as_ref().map(|p| p.as_str()),
            );
            Level::INFO
        }
        Event::RouteDrifted { group, .. } => {
            metrics
                .route_drift_total
                .with_label_values(&[group.as_str()])
                .inc();
            Level::WARN
        }
        Event::ServiceDegraded { group, check, .. }
        | Event::ServiceDegradationCleared { group, check } => {
            let (service, target) = check.parts();
            let on = matches!(event, Event::ServiceDegraded { .. });
            metrics
                .service_degraded
                .with_label_values(&[group.as_str(), service, target])
                .set(i64::from(on));
            if on { Level::WARN } else { Level::INFO }
        }
        Event::GroupFrozen { group, .. } | Event::GroupUnfrozen { group, .. } => {
            let on = matches!(event, Event::GroupFrozen { .. });
            metrics
                .group_frozen
                .with_label_values(&[group.as_str()])
                .set(i64::from(on));
            if on { Level::ERROR } else { Level::INFO }
        }
        Event::FailoverImpossible { .. } | Event::MonitorIsolated { .. } => Level::ERROR,
        Event::ServiceDown { .. } | Event::PinSet { .. } | Event::MovedDespiteFreeze { .. } => {
            Level::WARN
        }
        Event::FailoverPossibleAgain { .. }
        | Event::ServiceRecovered { .. }
        | Event::MonitorReconnected { .. }
        | Event::FailbackAvailable { .. }
        | Event::PinCleared { .. }
        | Event::AlertAcknowledged { .. } => Level::INFO,
        Event::VerdictChanged { to, .. } => match to {
            crate::core::Verdict::Down => Level::WARN,
            _ => Level::INFO,
        },
        Event::VantageIsolated { .. } => Level::ERROR,
        Event::MonitoringDegraded { .. } => Level::WARN,
        Event::VotesChanged { .. }
        | Event::VantageReconnected { .. }
        | Event::MonitoringRestored => Level::INFO,
        Event::RouteFollowed { group, to, .. } => {
            set_active(
                metrics,
                plan,
                group.as_str(),
                to.as_ref().map(|p| p.as_str()),
            );
            Level::INFO
        }
        Event::LeadershipAcquired { .. } | Event::CoordinationRestored => Level::INFO,
        Event::LeadershipLost { fault, .. } => {
            if fault.is_some() {
                Level::ERROR
            } else {
                Level::INFO
            }
        }
        Event::CoordinationLost { .. } => Level::ERROR,
        Event::OrderRefused { .. } => Level::ERROR,
    }
}

fn set_active(metrics: &Metrics, plan: &Plan, group: &str, active: Option<&str>) {
    let Some(g) = plan.groups.iter().find(|g| g.name().as_str() == group) else {
        return;
    };
    for p in &g.core.paths {
        let on = Some(p.as_str()) == active;
        metrics
            .group_active_path
            .with_label_values(&[group, p.as_str()])
            .set(i64::from(on));
    }
}
