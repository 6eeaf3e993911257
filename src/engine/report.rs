//! Each effect becomes one log line and its metrics.

use crate::core::{Effect, PathState, Subject, TargetState};
use crate::logging::escape;
use crate::metrics::Metrics;
use crate::plan::Plan;

/// Logs `effect` and updates the metrics it affects.
pub fn report(effect: &Effect, detail: Option<&str>, metrics: &Metrics, plan: &Plan) {
    match effect {
        Effect::HealthChanged {
            subject,
            from,
            to,
            failures_in_window,
            cause,
            behind,
            ..
        } => {
            metrics.targets.set_state(subject, *to);
            if let Subject::Target(t) | Subject::Check(t, _) = subject {
                let service = t.as_str().split('/').next().unwrap_or_default();
                metrics
                    .target_changes_total
                    .with_label_values(&[service, to.as_str()])
                    .inc();
            }
            let cause = cause.map_or("none", |c| c.as_str());
            match (to, behind) {
                // A consequence of a down path: recorded, not shouted.
                (_, Some(path)) => {
                    tracing::debug!(%subject, %from, %to, %path, "health changed behind a down path")
                }
                (TargetState::Down, None) => tracing::warn!(
                    %subject, %from, %to, failures_in_window, cause, detail = detail.unwrap_or(""), "target down"
                ),
                _ => tracing::info!(%subject, %from, %to, "target {to}"),
            }
        }
        Effect::PathChanged {
            path,
            from,
            to,
            reason,
            ..
        } => {
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
                tracing::warn!(%path, %from, %to, %reason, "path down");
            } else {
                metrics.set_diagnosis(p, None);
                tracing::info!(%path, %from, %to, %reason, "path {to}");
            }
        }
        Effect::ExaminePath { path, trace } => {
            let kind = if *trace { "trace" } else { "ladder" };
            metrics
                .path_examinations_total
                .with_label_values(&[path.as_str(), kind])
                .inc();
            tracing::info!(%path, trace, "examining the path (packet sizes, and hops when tracing)");
        }
        Effect::PathDiagnosed { path, diagnosis } => {
            metrics.set_diagnosis(path.as_str(), Some(diagnosis));
            tracing::warn!(%path, kind = %diagnosis.kind, diagnosis = %diagnosis.summary, "path diagnosed");
        }
        Effect::RouteChangeRequested {
            group,
            from,
            to,
            reason,
            attempt,
        } => {
            let from = from.as_ref().map_or("none", |p| p.as_str());
            tracing::info!(%group, from, %to, %reason, attempt, "moving route");
        }
        Effect::RouteChanged {
            group,
            from,
            to,
            reason,
            ..
        } => {
            let from_label = from.as_ref().map_or("none", |p| p.as_str());
            metrics
                .failovers_total
                .with_label_values(&[group.as_str(), from_label, to.as_str(), reason.label()])
                .inc();
            set_active(metrics, plan, group.as_str(), Some(to.as_str()));
            tracing::warn!(%group, from = from_label, %to, %reason, "route moved");
        }
        Effect::RouteChangeFailed {
            group,
            to,
            attempt,
            error,
            retry_at,
        } => {
            metrics
                .route_change_failures_total
                .with_label_values(&[group.as_str()])
                .inc();
            tracing::error!(%group, %to, attempt, error, retry_at_ms = retry_at.0, "route change failed; will retry");
        }
        Effect::RouteAdopted { group, path } => {
            set_active(
                metrics,
                plan,
                group.as_str(),
                path.as_ref().map(|p| p.as_str()),
            );
            tracing::info!(%group, path = path.as_ref().map_or("none", |p| p.as_str()), "adopted the kernel's route");
        }
        Effect::RouteDrifted {
            group,
            expected,
            actual,
        } => {
            metrics
                .route_drift_total
                .with_label_values(&[group.as_str()])
                .inc();
            tracing::warn!(
                %group,
                expected = expected.as_ref().map_or("none", |p| p.as_str()),
                actual = actual.as_ref().map_or("none", |p| p.as_str()),
                "route changed outside gwanje; restoring"
            );
        }
        Effect::FailoverImpossible { group, active, .. } => {
            tracing::error!(%group, active = active.as_ref().map_or("none", |p| p.as_str()), "active path down and no healthy path to move to")
        }
        Effect::FailoverPossibleAgain { group } => {
            tracing::info!(%group, "a healthy path is available again")
        }
        Effect::ServiceDown { group, check } => {
            tracing::warn!(%group, %check, "service down through every path (not a path failure: no switch)")
        }
        Effect::ServiceRecovered { group, check } => {
            tracing::info!(%group, %check, "service recovered")
        }
        Effect::ServiceDegraded {
            group,
            check,
            losses,
        } => {
            let (service, target) = check.parts();
            metrics
                .service_degraded
                .with_label_values(&[group.as_str(), service, target])
                .set(1);
            let losses: Vec<String> = losses.iter().map(|(p, l)| format!("{p}={l}")).collect();
            tracing::warn!(%group, %check, loss_permille = %losses.join(","), "service loses packets through every path (not a path failure: no switch)")
        }
        Effect::ServiceDegradationCleared { group, check } => {
            let (service, target) = check.parts();
            metrics
                .service_degraded
                .with_label_values(&[group.as_str(), service, target])
                .set(0);
            tracing::info!(%group, %check, "service no longer degraded")
        }
        Effect::MonitorIsolated { group } => {
            tracing::error!(%group, "every path failed at once: gwanje itself looks cut off; not switching")
        }
        Effect::MonitorReconnected { group } => tracing::info!(%group, "monitor reconnected"),
        Effect::GroupFrozen {
            group,
            until,
            switches,
        } => {
            metrics
                .group_frozen
                .with_label_values(&[group.as_str()])
                .set(1);
            tracing::error!(%group, switches, until_ms = until.0, "too many switches: automatic switching frozen");
        }
        Effect::GroupUnfrozen { group, by } => {
            metrics
                .group_frozen
                .with_label_values(&[group.as_str()])
                .set(0);
            tracing::info!(%group, by = %escape(by), "automatic switching resumed");
        }
        Effect::FailbackAvailable { group, to } => {
            tracing::info!(%group, %to, "preferred path healthy again; pin it to fail back (manual failback)")
        }
        Effect::PinSet {
            group,
            path,
            until,
            by,
        } => tracing::warn!(%group, %path, until_ms = until.0, by = %escape(by), "pinned"),
        Effect::MovedDespiteFreeze { group, from, to } => {
            tracing::warn!(%group, %from, %to, "moved despite freeze: the active path is down")
        }
        Effect::AlertsDue { alerts, .. } => {
            for a in alerts {
                let state = if a.firing() { "firing" } else { "resolved" };
                tracing::debug!(alert = a.name, id = %a.id, state, escalated = a.escalated, "alert sent");
            }
        }
        Effect::AlertAcknowledged { id, name, by } => {
            tracing::info!(alert = %name, %id, by = %escape(by), "alert acknowledged")
        }
        Effect::PinCleared { group, by } => {
            tracing::info!(%group, by = %escape(by), "pin cleared")
        }
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
