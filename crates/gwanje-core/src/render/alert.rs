//! An alert's summary (one line for the pager) and description (what
//! happened, what gwanje already did, what to do). A description of an
//! alert an event raised opens with that event's line.

use super::line;
use super::words::{down_of, keys, mismatch, or_none, vantages, votes as vote_words};
use crate::alert::AlertKind;
use crate::shared::{PathReason, SwitchReason};
use crate::types::{FailureKind, Timestamp};

/// One line for the pager.
pub fn summary(kind: &AlertKind) -> String {
    super::done(summary_words(kind))
}

/// What happened and what gwanje already did, and what to do.
pub fn description(kind: &AlertKind) -> String {
    super::done(description_words(kind))
}

/// Who received what, from the round's first mismatch.
fn who(findings: &crate::types::IdentityFindings) -> String {
    findings.first.first().map_or_else(
        || "a canary received a document not its own".to_string(),
        mismatch,
    )
}

/// Days from `at` to `not_after` (Unix seconds), one decimal.
fn days_left(not_after: i64, at: Timestamp) -> String {
    let left_ms = not_after.saturating_mul(1000).saturating_sub(at.0 as i64);
    format!("{:.1}", left_ms as f64 / 86_400_000.0)
}

fn summary_words(kind: &AlertKind) -> String {
    match kind {
        AlertKind::PathDown { path, reason, .. } => match reason {
            // Restored from an older journal before the path was judged again.
            PathReason::None | PathReason::Pending => format!("path {path} is down"),
            _ => format!("path {path} is down: {reason}"),
        },
        AlertKind::TargetDown {
            target,
            cause,
            votes,
            ..
        } if !votes.is_empty() => format!(
            "{target} is down from {} vantages ({})",
            down_of(votes),
            cause.map_or("", FailureKind::as_str)
        ),
        AlertKind::TargetDown { target, cause, .. } => format!(
            "{target} is down ({})",
            cause.map_or("", FailureKind::as_str)
        ),
        AlertKind::FailoverExecuted {
            group, from, to, ..
        } => format!("{group}: traffic moved from {} to {to}", or_none(from)),
        AlertKind::FailoverImpossible {
            group,
            active,
            unsure,
        } if unsure.is_empty() => format!(
            "{group}: active path {} is down and no other path is healthy",
            or_none(active)
        ),
        AlertKind::FailoverImpossible {
            group,
            active,
            unsure,
        } => format!(
            "{group}: {} fail through {}, and every other path is down",
            keys(unsure),
            or_none(active)
        ),
        AlertKind::ServiceDown { check, votes, .. } if !votes.is_empty() => {
            format!("{check} is down from {} vantages", down_of(votes))
        }
        AlertKind::ServiceDown { check, .. } => format!("{check} fails through every path"),
        AlertKind::ServiceDegraded { check, losses, .. } => format!(
            "{check} loses packets through every path{}",
            super::words::losses(losses)
        ),
        AlertKind::MonitorIsolated { group } => {
            format!("{group}: every path failed at once; gwanje itself looks cut off")
        }
        AlertKind::GroupFrozen { group, switches } => {
            format!("{group}: {switches} switches too many; automatic failover frozen")
        }
        AlertKind::RouteDrift {
            group,
            expected: None,
            actual: None,
        } => format!("{group}: the route was changed outside gwanje"),
        AlertKind::RouteDrift {
            group,
            expected,
            actual,
        } => format!(
            "{group}: the route was changed outside gwanje ({} → {})",
            or_none(expected),
            or_none(actual)
        ),
        AlertKind::CertificateExpiringSoon {
            target,
            not_after,
            seen_at,
            ..
        } => format!(
            "{target}: TLS certificate expires in {} days",
            days_left(*not_after, *seen_at)
        ),
        AlertKind::PersonalDataExposed { target, .. } => {
            format!("{target}: a response carried a resident registration number")
        }
        AlertKind::IdentityMismatch {
            target, findings, ..
        } => format!("{target}: {}", who(findings)),
        AlertKind::ConfigReloadFailed { errors } => format!(
            "gwanje rejected a configuration reload ({errors} errors); the previous configuration keeps running"
        ),
        AlertKind::JournalWriteFailing { dropped } => {
            format!("the journal cannot be written; {dropped} records dropped so far")
        }
        AlertKind::JournalClockAhead { lead_ms } => format!(
            "the journal at start was dated {} s ahead of the system clock; not restored",
            lead_ms / 1000
        ),
        AlertKind::VantageIsolated { vantage, .. } => {
            format!("vantage {vantage} is cut off: its controls fail; its votes abstain")
        }
        AlertKind::MonitoringDegraded {
            targets,
            min_vantages,
            ..
        } => format!(
            "{targets} targets have fewer than {min_vantages} eligible vantages: their verdict is unknown, never down"
        ),
        AlertKind::CoordinationLost { fault } => line::coordination_lost(*fault),
        AlertKind::OrderRefused {
            group,
            fence,
            highest,
        } => line::order_refused(group, *fence, *highest),
    }
}

fn description_words(kind: &AlertKind) -> String {
    match kind {
        AlertKind::PathDown {
            path,
            reason,
            diagnosis,
        } => {
            let down = match reason {
                PathReason::None | PathReason::Pending => format!("path {path} is down"),
                _ => line::path_changed(path, crate::shared::PathState::Down, reason),
            };
            let diagnosed = diagnosis.as_ref().map_or(String::new(), |d| {
                format!(
                    " Diagnosis ({kind}): {what}.",
                    kind = d.kind,
                    what = super::diagnosis::words_of(path, d)
                )
            });
            let section = diagnosis.as_ref().map_or(String::new(), |d| {
                format!(" Runbook section: \"{}\".", d.kind)
            });
            format!(
                "{down}.{diagnosed} Groups that used it have been moved to a healthy path if one exists; checks behind it are muted as consequences.{section}"
            )
        }
        AlertKind::TargetDown {
            target,
            cause,
            votes,
            ..
        } if !votes.is_empty() => format!(
            "{target} is down from {} vantages (votes: {}; last failure: {}). Enough vantages see it down that it is the target, not one site's network: check the service itself.",
            down_of(votes),
            vote_words(votes),
            cause.map_or("none", FailureKind::as_str)
        ),
        AlertKind::TargetDown {
            target,
            failures,
            cause,
            ..
        } => format!(
            "{}. It is probed directly, not through a failover path: check the service itself.",
            line::target_health(
                &crate::types::Subject::Target(target.clone()),
                crate::types::TargetState::Down,
                *failures,
                *cause,
                &None
            )
        ),
        AlertKind::FailoverExecuted {
            group,
            from,
            to,
            reason,
        } => {
            let what = line::route_changed(group, from, to, reason);
            match reason {
                SwitchReason::Failback => format!(
                    "{what}. gwanje moved {group} back to the preferred path {to} after it stayed healthy. Nothing to do."
                ),
                _ => format!(
                    "{what}. Traffic flows through {to}; find out why {} failed (PathDown).",
                    or_none(from)
                ),
            }
        }
        AlertKind::FailoverImpossible {
            group,
            active,
            unsure,
        } => {
            let what = line::failover_impossible(group, active, unsure);
            if unsure.is_empty() {
                format!(
                    "{what}. gwanje did not move {group}: every other path is down too. Restore any path, or pin one you know works."
                )
            } else {
                let a = or_none(active);
                format!(
                    "{what}. With no healthy path to compare, a fault of path {a} and a fault of the service both explain what gwanje sees, so it did not move traffic. Check the service from another network, and path {a}'s next hops."
                )
            }
        }
        AlertKind::ServiceDown {
            group,
            check,
            votes,
        } if !votes.is_empty() => format!(
            "{group}: {check} is down from {} vantages (votes: {}). Every site that can see it sees it down: the service is down, not a path, so gwanje did not switch (it would not help). Check the service itself.",
            down_of(votes),
            vote_words(votes)
        ),
        AlertKind::ServiceDown { group, check, .. } => format!(
            "{}. The service is down, not a path: gwanje did not switch (it would not help).",
            line::service_down(group, check)
        ),
        AlertKind::ServiceDegraded {
            group,
            check,
            losses,
        } => format!(
            "{}. The loss (one-way, over the quality window) is common to every path, so no path is blamed and gwanje did not switch (it would not help). Look at the service's own network, its host, or a link every path shares.",
            line::service_degraded(group, check, losses)
        ),
        AlertKind::MonitorIsolated { group } => format!(
            "{}. gwanje did not move traffic: when every path fails at the same moment, the monitor's own network is the likely cause. Check gwanje's host and uplink.",
            line::monitor_isolated(group)
        ),
        AlertKind::GroupFrozen { group, switches } => format!(
            "{}. Pin the path you trust, fix the flapping one, then unfreeze.",
            line::group_frozen(group, *switches)
        ),
        AlertKind::RouteDrift {
            group,
            expected,
            actual,
        } => format!(
            "{}. gwanje restored it. Use a pin to move traffic by hand.",
            line::route_drifted(group, expected, actual)
        ),
        AlertKind::CertificateExpiringSoon {
            target,
            not_after,
            seen_at,
            ..
        } => format!(
            "The earliest certificate presented by {target} expires in {} days. Renew it before probes (and citizens) start failing.",
            days_left(*not_after, *seen_at)
        ),
        AlertKind::PersonalDataExposed { target, .. } => format!(
            "The probe of {target} received a response with a valid resident registration number (not logged). Treat it as a personal-data incident; the law asks for a report within 72 hours."
        ),
        AlertKind::IdentityMismatch {
            target, findings, ..
        } => {
            let who = who(findings);
            // Say what was seen: another canary's markers, or none of the canary's own.
            let known = findings.mismatches.saturating_sub(findings.unknown_owner);
            let n = findings.requests;
            let (seen, meaning) = match (known, findings.unknown_owner) {
                (0, u) if u > 0 => (
                    format!(
                        "{u} of {n} responses in the round were documents of the step with none of the requesting canary's markers and no other canary's; gwanje cannot tell whose"
                    ),
                    "The service handed a canary a document that is not its own, possibly a real citizen's",
                ),
                (k, 0) => (
                    format!("{k} of {n} responses in the round carried another canary's markers"),
                    "Real citizens are likely receiving each other's documents",
                ),
                (k, u) => (
                    format!(
                        "of {n} responses in the round, {k} carried another canary's markers and {u} were documents with none of the requesting canary's markers"
                    ),
                    "Real citizens are likely receiving each other's documents",
                ),
            };
            // Counts restored from an older journal are unknown until the next round.
            let seen = if n == 0 {
                String::new()
            } else {
                format!(" ({seen})")
            };
            format!(
                "{target}: {who}{seen}. {meaning}: stop issuance or take the release back, and treat it as a personal-data incident (the 72-hour report clock may have started). Resolves on a clean round after it is acknowledged."
            )
        }
        AlertKind::ConfigReloadFailed { .. } => {
            "Run gwanje check-config on the file to see every error with its line and column."
                .into()
        }
        AlertKind::JournalWriteFailing { .. } => "gwanje keeps monitoring and deciding, but what it sees and does is not fully recorded: replay and the incident report will show a gap. Check the journal directory's disk (space, permissions, errors).".into(),
        AlertKind::JournalClockAhead { .. } => "gwanje started without the operator state of its journal (pins, acknowledgements, freezes) because the journal's last records lie in the future: a forged or corrupt record, or a system clock set far back. It monitors and decides as usual; the old segments stay on disk for analysis. Check the host's clock (timedatectl) and who could write the journal folder.".into(),
        AlertKind::VantageIsolated { vantage, local } => format!(
            "{}. Every one of its controls failed twice in a row, so what it sees failing is its own cut: its votes abstain, and it raises no TargetDown or ServiceDown{}. Routes are left as they are. Check {} uplink, first-hop routers and resolver.",
            line::vantage_isolated(vantage),
            if *local { " and no PathDown of its own" } else { "" },
            if *local { "this site's" } else { "that site's" }
        ),
        AlertKind::MonitoringDegraded {
            targets,
            eligible,
            min_vantages,
        } => format!(
            "{targets} targets have fewer eligible vantages than the quorum's {min_vantages} (eligible at the onset: {}). gwanje says \"unknown\" for them: never down, never a switch, so an outage there would go unpaged. Bring a vantage back (its process, its stream and token, its clock), or lower min_vantages knowingly.",
            vantages(eligible)
        ),
        AlertKind::CoordinationLost { fault } => format!(
            "{}. This replica keeps probing and alerting, but neither it nor, if the store is down for all, any replica moves a route: routes stay as they are (fail-static), even if a path fails now. Check the etcd members (etcdctl endpoint health), the management network to them, and their certificates.",
            line::coordination_lost(*fault)
        ),
        AlertKind::OrderRefused {
            group,
            fence,
            highest,
        } => format!(
            "{}. A deposed leader's order, or someone writing the desired-state key by hand; the actuator kept the route of the newer order. Check which replica leads (gwanje_cluster_role) and who can write to etcd.",
            line::order_refused(group, *fence, *highest)
        ),
    }
}
